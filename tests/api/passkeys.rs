//! Passkeys with a software authenticator (`soft-passkey`): registration,
//! second factor, sign-in without password, removal, replays, wrong
//! origin or relying party, a counter that goes back, suspension and reset.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use soft_passkey::SoftPasskey;

use crate::helpers::*;

/// The origin the default configuration allows.
const ORIGIN: &str = "http://localhost:8080";

/// A customer with a session and a passkey: (account id, session token,
/// passkey, recovery codes).
async fn customer_with_passkey(
    app: &TestApp,
    login: &str,
) -> (String, String, SoftPasskey, Vec<String>) {
    let email = format!("{login}@example.fr");
    let account_id = app
        .create_account(login, &email, "correct horse battery staple")
        .await;
    let session = app
        .login(login, "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let (passkey, finished) = register(app, &session, "Laptop").await;
    let finished = finished.unwrap();
    (account_id, session, passkey, finished.recovery_codes)
}

pub(crate) async fn register(
    app: &TestApp,
    session: &str,
    name: &str,
) -> (
    SoftPasskey,
    Result<pb::FinishPasskeyRegistrationResponse, tonic::Status>,
) {
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let (passkey, credential_json) =
        SoftPasskey::register(&begun.creation_options_json, ORIGIN).unwrap();
    let finished = app
        .client()
        .await
        .finish_passkey_registration(authed(
            session,
            pb::FinishPasskeyRegistrationRequest {
                ceremony_token: begun.ceremony_token,
                credential_json,
                name: name.into(),
            },
        ))
        .await
        .map(|r| r.into_inner());
    (passkey, finished)
}

async fn begin_login(app: &TestApp) -> pb::BeginPasskeyLoginResponse {
    app.client()
        .await
        .begin_passkey_login(pb::BeginPasskeyLoginRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn finish_login(
    app: &TestApp,
    ceremony_token: &str,
    assertion_json: String,
) -> Result<pb::SessionGrant, tonic::Status> {
    app.client()
        .await
        .finish_passkey_login(pb::FinishPasskeyLoginRequest {
            ceremony_token: ceremony_token.into(),
            assertion_json,
        })
        .await
        .map(|r| r.into_inner().session.unwrap())
}

/// A whole passwordless sign-in with `passkey`.
pub(crate) async fn passwordless(
    app: &TestApp,
    passkey: &mut SoftPasskey,
) -> Result<pb::SessionGrant, tonic::Status> {
    let begun = begin_login(app).await;
    let assertion = passkey.assert(&begun.request_options_json, ORIGIN).unwrap();
    finish_login(app, &begun.ceremony_token, assertion).await
}

async fn login_challenge(app: &TestApp, login: &str) -> pb::LoginChallenge {
    let response = app
        .client()
        .await
        .login(pb::LoginRequest {
            login: login.into(),
            password: "correct horse battery staple".into(),
        })
        .await
        .unwrap()
        .into_inner();
    match response.result {
        Some(pb::login_response::Result::Challenge(challenge)) => challenge,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn passkey_code(json: String) -> pb::verify_login_challenge_request::Code {
    pb::verify_login_challenge_request::Code::PasskeyAssertionJson(json)
}

#[tokio::test]
pub async fn a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone() {
    let app = spawn_app().await;
    let (account_id, session, mut passkey, codes) = customer_with_passkey(&app, "claire").await;
    // The first second factor comes with recovery codes.
    assert_eq!(codes.len(), 10);
    let events = app.events_of(&account_id).await;
    assert!(events.contains(&"passkey_added".to_string()), "{events:?}");
    let mails = app.wait_for_mails("claire@example.fr", 1).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("A passkey was added") && m.contains("Laptop")),
        "no passkey notice among {} mails",
        mails.len()
    );

    let listed = app
        .client()
        .await
        .list_passkeys(authed(&session, pb::ListPasskeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .passkeys;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Laptop");
    assert!(listed[0].last_used_at.is_none());

    // The password alone no longer opens a session.
    let challenge = login_challenge(&app, "claire").await;
    assert_eq!(
        challenge.methods,
        [
            pb::SecondFactorMethod::Passkey as i32,
            pb::SecondFactorMethod::RecoveryCode as i32
        ]
    );
    assert!(!challenge.passkey_options_json.is_empty());
    let assertion = passkey
        .assert(&challenge.passkey_options_json, ORIGIN)
        .unwrap();
    let grant = app
        .verify_challenge(&challenge.challenge_token, passkey_code(assertion.clone()))
        .await
        .unwrap();
    assert_eq!(grant.account_id, account_id);
    // Replayed on the same challenge, now used.
    let replay = app
        .verify_challenge(&challenge.challenge_token, passkey_code(assertion))
        .await
        .unwrap_err();
    assert_eq!(reason(&replay), "TOKEN_INVALID");

    // Passwordless.
    let grant = passwordless(&app, &mut passkey).await.unwrap();
    assert_eq!(grant.account_id, account_id);
    let sessions = app
        .client()
        .await
        .list_sessions(authed(
            &grant.session_token,
            pb::ListSessionsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(sessions.iter().any(|s| s.current && s.second_factor_used));
    let listed = app
        .client()
        .await
        .list_passkeys(authed(&session, pb::ListPasskeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .passkeys;
    assert!(listed[0].last_used_at.is_some());
}

#[tokio::test]
pub async fn replayed_assertions_and_ceremonies_are_refused() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "replay").await;
    let begun = begin_login(&app).await;
    let assertion = passkey.assert(&begun.request_options_json, ORIGIN).unwrap();
    finish_login(&app, &begun.ceremony_token, assertion.clone())
        .await
        .unwrap();
    // The same ceremony again.
    let again = finish_login(&app, &begun.ceremony_token, assertion.clone())
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "TOKEN_INVALID");
    // The same assertion on a new ceremony: its challenge is not this one.
    let other = begin_login(&app).await;
    let replayed = finish_login(&app, &other.ceremony_token, assertion)
        .await
        .unwrap_err();
    assert_eq!(reason(&replayed), "INVALID_CREDENTIALS");
    // A ceremony is used up by a failed answer too.
    let retried = passkey.assert(&other.request_options_json, ORIGIN).unwrap();
    let retried = finish_login(&app, &other.ceremony_token, retried)
        .await
        .unwrap_err();
    assert_eq!(reason(&retried), "TOKEN_INVALID");
}

#[tokio::test]
pub async fn another_origin_or_relying_party_is_refused() {
    let app = spawn_app().await;
    let (_, session, mut passkey, _) = customer_with_passkey(&app, "phished").await;
    let begun = begin_login(&app).await;
    let phished = passkey
        .assert(&begun.request_options_json, "https://gardien.example.net")
        .unwrap();
    let refused = finish_login(&app, &begun.ceremony_token, phished)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");

    passkey.rp_id = "example.net".into();
    let begun = begin_login(&app).await;
    let other_rp = passkey.assert(&begun.request_options_json, ORIGIN).unwrap();
    let refused = finish_login(&app, &begun.ceremony_token, other_rp)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");

    // Registration from another origin.
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let (_, credential_json) =
        SoftPasskey::register(&begun.creation_options_json, "https://gardien.example.net").unwrap();
    let refused = app
        .client()
        .await
        .finish_passkey_registration(authed(
            &session,
            pb::FinishPasskeyRegistrationRequest {
                ceremony_token: begun.ceremony_token,
                credential_json,
                name: "Phone".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
}

#[tokio::test]
pub async fn an_assertion_without_user_verification_is_refused() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "noverify").await;
    passkey.user_verified = false;
    let refused = passwordless(&app, &mut passkey).await.unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
}

#[tokio::test]
pub async fn a_counter_that_goes_back_is_refused_and_recorded() {
    let app = spawn_app().await;
    let login = "cloned";
    let account_id = app
        .create_account(login, "cloned@example.fr", "correct horse battery staple")
        .await;
    let session = app
        .login(login, "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    // An authenticator with a counter, at 5 when registered.
    let (mut passkey, credential_json) =
        SoftPasskey::register_with_counter(&begun.creation_options_json, ORIGIN, 5).unwrap();
    app.client()
        .await
        .finish_passkey_registration(authed(
            &session,
            pb::FinishPasskeyRegistrationRequest {
                ceremony_token: begun.ceremony_token,
                credential_json,
                name: "Key".into(),
            },
        ))
        .await
        .unwrap();
    // Signs 6, then 7.
    passwordless(&app, &mut passkey).await.unwrap();
    passwordless(&app, &mut passkey).await.unwrap();
    // A copy of the key still at 5 signs 6 again.
    passkey.counter = 5;
    let refused = passwordless(&app, &mut passkey).await.unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
    let events = app.events_of(&account_id).await;
    assert!(
        events.contains(&"passkey_clone_suspected".to_string()),
        "{events:?}"
    );
    // The genuine key, ahead, still works.
    passkey.counter = 20;
    passwordless(&app, &mut passkey).await.unwrap();
}

#[tokio::test]
pub async fn a_suspended_password_blocks_passwordless_sign_in_and_the_reset_needs_the_passkey() {
    let app = spawn_app().await;
    let (account_id, _, mut passkey, _) = customer_with_passkey(&app, "suspended").await;
    app.suspend(&account_id).await;
    let refused = passwordless(&app, &mut passkey).await.unwrap_err();
    assert_eq!(reason(&refused), "PASSWORD_SUSPENDED");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    app.request_reset("suspended").await;
    let token = app.reset_token_from_mail("suspended@example.fr", 3).await;
    let new_password = "a brand new passphrase for this";
    // The contact e-mail alone does not open the account.
    let refused = app
        .complete_reset(&token, new_password, None)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "SECOND_FACTOR_REQUIRED");
    // An assertion that answers no options of this link.
    let stray = passkey.sign("c3RyYXktY2hhbGxlbmdlLW9mLW5vLWNlcmVtb255", ORIGIN);
    let refused = app
        .client()
        .await
        .complete_password_reset(pb::CompletePasswordResetRequest {
            reset_token: token.clone(),
            new_password: new_password.into(),
            second_factor: Some(
                pb::complete_password_reset_request::SecondFactor::PasskeyAssertionJson(stray),
            ),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");

    let options = app
        .client()
        .await
        .get_reset_passkey_options(pb::GetResetPasskeyOptionsRequest {
            reset_token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .request_options_json;
    let assertion = passkey.assert(&options, ORIGIN).unwrap();
    app.client()
        .await
        .complete_password_reset(pb::CompletePasswordResetRequest {
            reset_token: token,
            new_password: new_password.into(),
            second_factor: Some(
                pb::complete_password_reset_request::SecondFactor::PasskeyAssertionJson(assertion),
            ),
        })
        .await
        .unwrap();
    // Secured: the passkey opens the account again, and the overview
    // no longer asks for a passkey (there is one).
    let grant = passwordless(&app, &mut passkey).await.unwrap();
    let overview = app
        .client()
        .await
        .get_security_overview(authed(
            &grant.session_token,
            pb::GetSecurityOverviewRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overview.passkeys, 1);
    assert!(!overview
        .recommended_actions
        .iter()
        .any(|a| a.kind == pb::RecommendedActionKind::AddPasskey as i32));
}

#[tokio::test]
pub async fn after_a_suspension_the_overview_recommends_a_passkey() {
    let app = spawn_app().await;
    let account_id = app
        .create_account(
            "recommend",
            "recommend@example.fr",
            "correct horse battery staple",
        )
        .await;
    let session = app
        .login("recommend", "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let actions = |overview: pb::GetSecurityOverviewResponse| {
        overview
            .recommended_actions
            .iter()
            .map(|a| a.kind)
            .collect::<Vec<_>>()
    };
    let before = app
        .client()
        .await
        .get_security_overview(authed(&session, pb::GetSecurityOverviewRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(!actions(before).contains(&(pb::RecommendedActionKind::AddPasskey as i32)));
    app.suspend(&account_id).await;
    app.reset_password_by_email(
        "recommend",
        "recommend@example.fr",
        "another fine passphrase here",
    )
    .await;
    let session = app
        .login("recommend", "another fine passphrase here")
        .await
        .unwrap()
        .session_token;
    let after = app
        .client()
        .await
        .get_security_overview(authed(&session, pb::GetSecurityOverviewRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(actions(after).contains(&(pb::RecommendedActionKind::AddPasskey as i32)));
}

#[tokio::test]
pub async fn a_removed_passkey_opens_nothing_and_the_customer_is_told() {
    let app = spawn_app().await;
    let (account_id, session, mut passkey, _) = customer_with_passkey(&app, "removal").await;
    let passkey_id = app
        .client()
        .await
        .list_passkeys(authed(&session, pb::ListPasskeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .passkeys[0]
        .passkey_id
        .clone();
    // Another customer cannot rename or remove it.
    app.create_account("other", "other@example.fr", "correct horse battery staple")
        .await;
    let other = app
        .login("other", "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let refused = app
        .client()
        .await
        .remove_passkey(authed(
            &other,
            pb::RemovePasskeyRequest {
                passkey_id: passkey_id.clone(),
                current_password: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let refused = app
        .client()
        .await
        .rename_passkey(authed(
            &other,
            pb::RenamePasskeyRequest {
                passkey_id: passkey_id.clone(),
                name: "Mine".into(),
                current_password: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    let renamed = app
        .client()
        .await
        .rename_passkey(authed(
            &session,
            pb::RenamePasskeyRequest {
                passkey_id: passkey_id.clone(),
                name: "Work laptop".into(),
                current_password: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .passkey
        .unwrap();
    assert_eq!(renamed.name, "Work laptop");

    app.client()
        .await
        .remove_passkey(authed(
            &session,
            pb::RemovePasskeyRequest {
                passkey_id,
                current_password: String::new(),
            },
        ))
        .await
        .unwrap();
    let events = app.events_of(&account_id).await;
    assert!(
        events.contains(&"passkey_removed".to_string()),
        "{events:?}"
    );
    let mails = app.wait_for_mails("removal@example.fr", 2).await;
    assert!(mails
        .iter()
        .any(|m| m.contains("A passkey was removed") && m.contains("Work laptop")));
    let refused = passwordless(&app, &mut passkey).await.unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
    // No second factor is left: the password opens a session, and the
    // recovery codes went with the last factor.
    let grant = app
        .login("removal", "correct horse battery staple")
        .await
        .unwrap();
    let overview = app
        .client()
        .await
        .get_security_overview(authed(
            &grant.session_token,
            pb::GetSecurityOverviewRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overview.passkeys, 0);
    assert_eq!(overview.recovery_codes_remaining, 0);
}

#[tokio::test]
pub async fn passwordless_refusals_do_not_tell_whether_a_passkey_exists() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "enumerated").await;
    // A bad signature from a registered passkey.
    let begun = begin_login(&app).await;
    let mut bad: serde_json::Value =
        serde_json::from_str(&passkey.assert(&begun.request_options_json, ORIGIN).unwrap())
            .unwrap();
    {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        let mut signature = URL_SAFE_NO_PAD
            .decode(bad["response"]["signature"].as_str().unwrap())
            .unwrap();
        let last = signature.len() - 1;
        signature[last] ^= 1;
        bad["response"]["signature"] = serde_json::json!(URL_SAFE_NO_PAD.encode(signature));
    }
    let known = finish_login(&app, &begun.ceremony_token, bad.to_string())
        .await
        .unwrap_err();
    // A passkey the server never saw.
    let begun = begin_login(&app).await;
    let (mut stranger, _) = SoftPasskey::register(
        r#"{"publicKey":{"challenge":"AAAA","rp":{"id":"localhost","name":"x"},"user":{"id":"AAAAAAAAAAAAAAAAAAAAAA","name":"x","displayName":"x"}}}"#,
        ORIGIN,
    )
    .unwrap();
    let unknown = finish_login(
        &app,
        &begun.ceremony_token,
        stranger
            .assert(&begun.request_options_json, ORIGIN)
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(known.code(), unknown.code());
    assert_eq!(known.message(), unknown.message());
    assert_eq!(reason(&known), reason(&unknown));
    assert_eq!(reason(&known), "INVALID_CREDENTIALS");
}

#[tokio::test]
pub async fn a_ceremony_belongs_to_the_account_that_began_it() {
    let app = spawn_app().await;
    app.create_account("first", "first@example.fr", "correct horse battery staple")
        .await;
    app.create_account(
        "second",
        "second@example.fr",
        "correct horse battery staple",
    )
    .await;
    let first = app
        .login("first", "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let second = app
        .login("second", "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &first,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let (_, credential_json) = SoftPasskey::register(&begun.creation_options_json, ORIGIN).unwrap();
    let refused = app
        .client()
        .await
        .finish_passkey_registration(authed(
            &second,
            pb::FinishPasskeyRegistrationRequest {
                ceremony_token: begun.ceremony_token,
                credential_json,
                name: "Stolen".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_INVALID");
}

#[tokio::test]
pub async fn bad_passkey_input_names_the_field() {
    let app = spawn_app().await;
    app.create_account(
        "fields",
        "fields@example.fr",
        "correct horse battery staple",
    )
    .await;
    let session = app
        .login("fields", "correct horse battery staple")
        .await
        .unwrap()
        .session_token;
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    for (credential_json, name, field) in [
        ("{not json", "Laptop", "credential_json"),
        ("{}", "Laptop", "credential_json"),
        ("", "Laptop", "credential_json"),
        ("{}", "", "name"),
        ("{}", "a\u{7}bell", "name"),
        ("{}", "photo\u{202e}gnp.exe", "name"),
    ] {
        let refused = app
            .client()
            .await
            .finish_passkey_registration(authed(
                &session,
                pb::FinishPasskeyRegistrationRequest {
                    ceremony_token: begun.ceremony_token.clone(),
                    credential_json: credential_json.into(),
                    name: name.into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{field}");
        assert_eq!(bad_fields(&refused), [field]);
    }
    let refused = app
        .client()
        .await
        .finish_passkey_login(pb::FinishPasskeyLoginRequest {
            ceremony_token: "gdp_x".into(),
            assertion_json: "[]".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), ["assertion_json"]);
    let refused = app
        .client()
        .await
        .remove_passkey(authed(
            &session,
            pb::RemovePasskeyRequest {
                passkey_id: "not-an-id".into(),
                current_password: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), ["passkey_id"]);
}

#[tokio::test]
pub async fn registration_needs_a_recent_login_and_refuses_a_credential_twice_or_an_eleventh() {
    let app = spawn_app().await;
    let (_, session, passkey, _) = customer_with_passkey(&app, "limits").await;
    // The same credential again (an authenticator ignoring excludeCredentials).
    let begun = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let again = passkey
        .register_again(&begun.creation_options_json, ORIGIN)
        .unwrap();
    let refused = app
        .client()
        .await
        .finish_passkey_registration(authed(
            &session,
            pb::FinishPasskeyRegistrationRequest {
                ceremony_token: begun.ceremony_token,
                credential_json: again,
                name: "Twice".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);
    // Nine more make ten; the eleventh is refused.
    for i in 0..9 {
        let (_, finished) = register(&app, &session, &format!("Key {i}")).await;
        assert!(finished.unwrap().recovery_codes.is_empty());
    }
    let refused = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_STATE_TRANSITION");
    // An old session needs the password again.
    app.clock.advance(Duration::from_secs(11 * 60));
    for call in ["begin", "remove"] {
        let refused = match call {
            "begin" => app
                .client()
                .await
                .begin_passkey_registration(authed(
                    &session,
                    pb::BeginPasskeyRegistrationRequest::default(),
                ))
                .await
                .unwrap_err(),
            _ => app
                .client()
                .await
                .remove_passkey(authed(
                    &session,
                    pb::RemovePasskeyRequest {
                        passkey_id: uuid::Uuid::now_v7().to_string(),
                        current_password: String::new(),
                    },
                ))
                .await
                .unwrap_err(),
        };
        assert_eq!(reason(&refused), "RECENT_AUTHENTICATION_REQUIRED", "{call}");
    }
    let wrong = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest {
                current_password: "not the password at all".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
}

#[tokio::test]
pub async fn an_ended_ceremony_is_token_expired_and_a_reset_without_passkey_has_no_options() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "expired").await;
    let begun = begin_login(&app).await;
    let assertion = passkey.assert(&begun.request_options_json, ORIGIN).unwrap();
    app.clock.advance(Duration::from_secs(6 * 60));
    let refused = finish_login(&app, &begun.ceremony_token, assertion)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_EXPIRED");

    app.create_account("plain", "plain@example.fr", "correct horse battery staple")
        .await;
    app.request_reset("plain").await;
    let token = app.reset_token_from_mail("plain@example.fr", 1).await;
    let refused = app
        .client()
        .await
        .get_reset_passkey_options(pb::GetResetPasskeyOptionsRequest { reset_token: token })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "INVALID_STATE_TRANSITION");
    let refused = app
        .client()
        .await
        .get_reset_passkey_options(pb::GetResetPasskeyOptionsRequest {
            reset_token: "gdr_unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_INVALID");
}

#[tokio::test]
pub async fn concurrent_answers_to_one_ceremony_open_one_session() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "race").await;
    let begun = begin_login(&app).await;
    let assertion = passkey.assert(&begun.request_options_json, ORIGIN).unwrap();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (app_addr, token, assertion) = (
            app.client().await,
            begun.ceremony_token.clone(),
            assertion.clone(),
        );
        calls.push(tokio::spawn(async move {
            let mut client = app_addr;
            client
                .finish_passkey_login(pb::FinishPasskeyLoginRequest {
                    ceremony_token: token,
                    assertion_json: assertion,
                })
                .await
        }));
    }
    let mut opened = 0;
    for call in calls {
        if call.await.unwrap().is_ok() {
            opened += 1;
        }
    }
    assert_eq!(opened, 1);
}

#[tokio::test]
pub async fn a_support_factor_reset_removes_the_passkeys_after_its_delay() {
    use gardien::proto::support::v1 as spb;
    let app = spawn_app_with(|config| {
        config.support.factor_reset_poll_ms = 20;
        config.session.absolute_ttl_secs = 72 * 3600;
        config.session.idle_ttl_secs = 72 * 3600;
    })
    .await;
    let (account_id, session, mut passkey, _) = customer_with_passkey(&app, "lostkey").await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(
            &session,
            spb::CreateTicketRequest {
                client_request_id: "lost-key".into(),
                category: spb::TicketCategory::SecurityVerification.into(),
                subject: "I lost my security key".into(),
                body: "The key with my passkey is gone.".into(),
                linked_event_ids: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    app.verify_ticket_identity(&ticket.ticket_id).await;
    app.reset_totp(
        &account_id,
        &ticket.ticket_id,
        "identity checked on a video call",
    )
    .await
    .unwrap();
    // Not before the delay: the passkey still works.
    passwordless(&app, &mut passkey).await.unwrap();
    // That sign-in used the factor the reset is about: it cancelled it.
    let events = app.events_of(&account_id).await;
    assert!(
        events.contains(&"factor_reset_cancelled".to_string()),
        "{events:?}"
    );

    app.reset_totp(
        &account_id,
        &ticket.ticket_id,
        "asked again, identity checked",
    )
    .await
    .unwrap();
    app.clock.advance(Duration::from_secs(2 * 24 * 3600));
    app.wait_for_due_factor_resets().await;
    let events = app.events_of(&account_id).await;
    assert!(
        events.contains(&"factor_reset_completed".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"passkey_removed".to_string()),
        "{events:?}"
    );
    let refused = passwordless(&app, &mut passkey).await.unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
    // The password alone opens the account again.
    app.login("lostkey", "correct horse battery staple")
        .await
        .unwrap();
}

#[tokio::test]
pub async fn the_back_off_does_not_tell_a_registered_passkey_from_an_unknown_one() {
    let app = spawn_app().await;
    let (_, _, mut passkey, _) = customer_with_passkey(&app, "backoff").await;
    let (mut stranger, _) = SoftPasskey::register(
        r#"{"publicKey":{"challenge":"AAAA","rp":{"id":"localhost","name":"x"},"user":{"id":"AAAAAAAAAAAAAAAAAAAAAA","name":"x","displayName":"x"}}}"#,
        ORIGIN,
    )
    .unwrap();
    let mut answers = Vec::new();
    for key in [&mut passkey, &mut stranger] {
        let mut seen = Vec::new();
        for _ in 0..10 {
            let begun = begin_login(&app).await;
            let mut bad: serde_json::Value =
                serde_json::from_str(&key.assert(&begun.request_options_json, ORIGIN).unwrap())
                    .unwrap();
            // Signed over another challenge: a bad signature for this one.
            bad["response"]["clientDataJSON"] = serde_json::from_str::<serde_json::Value>(
                &key.sign("b3RoZXItY2hhbGxlbmdl", ORIGIN),
            )
            .unwrap()["response"]["clientDataJSON"]
                .clone();
            let refused = finish_login(&app, &begun.ceremony_token, bad.to_string())
                .await
                .unwrap_err();
            seen.push(reason(&refused));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].contains(&"LOGIN_BACKOFF".to_string()),
        "{answers:?}"
    );
    // The back-off of failed passkey sign-ins is not the password's.
    app.login_challenge("backoff", "correct horse battery staple")
        .await
        .unwrap();
}

#[tokio::test]
pub async fn ceremony_challenges_are_sealed_at_rest() {
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    let (_, session, _, _) = customer_with_passkey(&app, "atrest").await;
    let begun = begin_login(&app).await;
    let registration = app
        .client()
        .await
        .begin_passkey_registration(authed(
            &session,
            pb::BeginPasskeyRegistrationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let challenge = |json: &str| {
        serde_json::from_str::<serde_json::Value>(json).unwrap()["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let challenges = [
        challenge(&begun.request_options_json),
        challenge(&registration.creation_options_json),
    ];
    let rows = gardien::entity::passkey_ceremony::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        for challenge in &challenges {
            assert!(
                !row.state.contains(challenge.as_str()),
                "a challenge is stored in clear"
            );
        }
    }
}
