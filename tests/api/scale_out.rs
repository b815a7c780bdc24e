//! Several instances on one database behave as one service: revocation is
//! seen everywhere at once, single-use tokens stay single-use, and the
//! outbox delivers each e-mail exactly once. These run on the suite's
//! database: SQLite (a shared file, compare-and-set claims) and PostgreSQL
//! when `GARDIEN_TEST_POSTGRES_URL` is set (`FOR UPDATE SKIP LOCKED`).

use std::{collections::HashSet, time::Duration};

use gardien::{
    domain::types::Locale,
    entity::outbox,
    mail::{outbox as mail_outbox, Mail},
    proto::accountsecurity::v1 as pb,
};
use sea_orm::{EntityTrait, TransactionTrait};
use tonic::Code;

use crate::helpers::*;

async fn list_sessions(app: &TestApp, token: &str) -> Result<usize, tonic::Status> {
    app.client()
        .await
        .list_sessions(authed(token, pb::ListSessionsRequest::default()))
        .await
        .map(|response| response.into_inner().sessions.len())
}

#[tokio::test]
pub async fn a_session_revoked_through_one_instance_is_refused_by_the_other_on_the_next_call() {
    let a = spawn_app().await;
    let b = a.spawn_second_instance(|_| {}).await;
    a.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = b.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(list_sessions(&a, &grant.session_token).await.unwrap(), 1);
    assert_eq!(list_sessions(&b, &grant.session_token).await.unwrap(), 1);

    a.client()
        .await
        .logout(authed(&grant.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();

    let refused = list_sessions(&b, &grant.session_token).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let introspected = b
        .client()
        .await
        .introspect_session(authed(
            &b.service_token,
            pb::IntrospectSessionRequest {
                session_token: grant.session_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!introspected.active);
}

async fn introspect(app: &TestApp, session_token: &str) -> Result<bool, tonic::Status> {
    app.client()
        .await
        .introspect_session(authed(
            &app.service_token,
            pb::IntrospectSessionRequest {
                session_token: session_token.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner().active)
}

/// Both instances keep live sessions and credentials in memory; a
/// revocation committed anywhere (here the command line's, on neither
/// instance) must still be refused by each on its very next call.
#[tokio::test]
pub async fn cached_sessions_and_credentials_revoked_elsewhere_are_refused_on_the_next_call() {
    let a = spawn_app().await;
    let b = a.spawn_second_instance(|_| {}).await;
    let account = a
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let account = uuid::Uuid::parse_str(&account).unwrap();
    let grant = a.login("jean", STRONG_PASSWORD).await.unwrap();
    // Warm both caches with the session and the service credential.
    for _ in 0..3 {
        assert!(introspect(&a, &grant.session_token).await.unwrap());
        assert!(introspect(&b, &grant.session_token).await.unwrap());
    }

    // The session ends through the database alone: a suspension by a
    // third party, as another instance would commit it.
    gardien::domain::sessions::revoke_all(
        &a.ctx.db,
        a.ctx.now(),
        account,
        None,
        gardien::domain::revocation::RevocationCause::Suspension,
        &gardien::domain::principal::Actor::system(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(!introspect(&a, &grant.session_token).await.unwrap());
    assert!(!introspect(&b, &grant.session_token).await.unwrap());

    // The credential is revoked by the command line's code path.
    gardien::domain::credentials::revoke(&a.ctx.db, a.ctx.now(), "billing", None)
        .await
        .unwrap();
    for app in [&a, &b] {
        let refused = introspect(app, &grant.session_token).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}

#[tokio::test]
pub async fn a_reset_link_used_on_one_instance_is_refused_on_the_other() {
    let a = spawn_app().await;
    let b = a.spawn_second_instance(|_| {}).await;
    a.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    a.request_reset("jean").await;
    // Either worker may deliver it: look in both mail folders.
    let mut token = None;
    for _ in 0..300 {
        let mails = [a.mails_to("jean@example.fr"), b.mails_to("jean@example.fr")].concat();
        if let Some(mail) = mails.iter().find(|m| m.contains("token=gdr_")) {
            token = Some(token_in(mail));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = token.expect("a reset e-mail");
    a.complete_reset(&token, NEW_PASSWORD, None).await.unwrap();
    let refused = b
        .complete_reset(&token, NEW_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

/// The `.eml` files in a mail folder, by outbox id.
fn delivered_ids(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(&app.mail_dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    entry
                        .file_name()
                        .to_str()
                        .and_then(|name| name.strip_suffix(".eml"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn two_instances_deliver_each_of_200_outbox_e_mails_exactly_once() {
    let a = spawn_app().await;
    let b = a.spawn_second_instance(|_| {}).await;

    // A round: 200 e-mails become due at once, in one commit, and both
    // workers are woken. A busy machine may let one worker drain a whole
    // round before the other wakes, which proves nothing about sharing, so
    // rounds repeat (at most 5) until both have taken part.
    let mut rounds = 0;
    let (mut by_a, mut by_b) = (Vec::new(), Vec::new());
    while rounds < 5 && (by_a.is_empty() || by_b.is_empty()) {
        rounds += 1;
        let txn = a.ctx.db.begin().await.unwrap();
        let now = a.ctx.now();
        for i in 0..200 {
            mail_outbox::enqueue(
                &txn,
                &a.ctx.config.mail,
                &a.ctx.sealer,
                now,
                None,
                &format!("customer{i}.round{rounds}@example.fr"),
                Locale::En,
                &Mail::PasswordChanged {
                    login: format!("customer{i}"),
                    report_token: format!("gdx_test{rounds}x{i}"),
                },
            )
            .await
            .unwrap();
        }
        txn.commit().await.unwrap();
        a.ctx.outbox_signal.notify_one();
        b.ctx.outbox_signal.notify_one();

        // Wait (bounded) for the real workers to mark every row sent.
        let mut rows = Vec::new();
        for _ in 0..600 {
            rows = outbox::Entity::find().all(&a.ctx.db).await.unwrap();
            if rows.iter().all(|row| row.status == mail_outbox::SENT) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rows.len(), 200 * rounds);
        for row in &rows {
            assert_eq!(row.status, mail_outbox::SENT, "{}", row.id);
            assert_eq!(row.attempts, 1, "{} was claimed more than once", row.id);
        }

        // Each instance writes to its own folder: an e-mail sent by both
        // would appear in both.
        by_a = delivered_ids(&a);
        by_b = delivered_ids(&b);
        let set_a: HashSet<_> = by_a.iter().cloned().collect();
        let set_b: HashSet<_> = by_b.iter().cloned().collect();
        let twice: Vec<_> = set_a.intersection(&set_b).collect();
        assert!(
            twice.is_empty(),
            "{} delivered by both instances, e.g. {:?}",
            twice.len(),
            twice.first()
        );
        let all: HashSet<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let union: HashSet<String> = set_a.union(&set_b).cloned().collect();
        assert_eq!(union, all, "every row delivered, nothing else");
    }
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both workers took part in {rounds} rounds: {} and {}",
        by_a.len(),
        by_b.len()
    );
}
