//! Session lifetimes and revocation, and password changes.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn list(app: &TestApp, token: &str) -> Result<pb::ListSessionsResponse, tonic::Status> {
    app.client()
        .await
        .list_sessions(authed(token, pb::ListSessionsRequest::default()))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
pub async fn an_idle_session_expires_after_the_idle_timeout() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(Duration::from_secs(59 * 60));
    list(&app, &grant.session_token).await.unwrap();
    app.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(
        list(&app, &grant.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn an_active_session_still_ends_at_its_absolute_lifetime() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    for _ in 0..23 {
        app.clock.advance(Duration::from_secs(30 * 60));
        list(&app, &grant.session_token).await.unwrap();
    }
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        list(&app, &grant.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn logout_and_revocation_take_effect_on_the_very_next_call() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let second = app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        list(&app, &first.session_token)
            .await
            .unwrap()
            .sessions
            .len(),
        2
    );

    app.client()
        .await
        .revoke_session(authed(
            &first.session_token,
            pb::RevokeSessionRequest {
                session_id: second.session_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        list(&app, &second.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    app.client()
        .await
        .logout(authed(&first.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    assert_eq!(
        list(&app, &first.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn introspection_follows_revocation_immediately() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let introspect = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .introspect_session(authed(
                    &app.service_token,
                    pb::IntrospectSessionRequest {
                        session_token: token,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let answer = introspect(grant.session_token.clone()).await;
    assert!(answer.active);
    assert_eq!(answer.account_id, id);
    assert!(!answer.second_factor_used);
    app.client()
        .await
        .logout(authed(&grant.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    assert!(!introspect(grant.session_token.clone()).await.active);
    assert!(!introspect("gds_garbage".into()).await.active);
    // A customer may not introspect.
    let other = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let status = app
        .client()
        .await
        .introspect_session(authed(
            &other.session_token,
            pb::IntrospectSessionRequest {
                session_token: other.session_token.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
pub async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let change = |current: &str, new: &str| {
        let request = authed(
            &here.session_token,
            pb::ChangePasswordRequest {
                current_password: current.into(),
                new_password: new.into(),
            },
        );
        let app = &app;
        async move { app.client().await.change_password(request).await }
    };
    let wrong = change("not my password at all", NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let weak = change(STRONG_PASSWORD, "jean-jean-jean-jean")
        .await
        .unwrap_err();
    assert_eq!(weak.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&weak), ["new_password"]);

    let done = change(STRONG_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.sessions_revoked, 1);
    assert_eq!(
        list(&app, &elsewhere.session_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    list(&app, &here.session_token).await.unwrap();
    assert!(app.login("jean", STRONG_PASSWORD).await.is_err());
    app.login("jean", NEW_PASSWORD).await.unwrap();
    assert!(app
        .events_of(&id)
        .await
        .contains(&"password_changed".to_string()));
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert!(mails[0].contains("Subject: Your password was changed"));
}
