//! The security team's command line (`gardien account …`, `gardien
//! credential …`) against a running server's database: each change takes
//! effect on the server's next call and is recorded with the operator.

use std::process::Output;

use gardien::proto::accountsecurity::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use secrecy::ExposeSecret;
use tonic::Code;

use crate::helpers::*;

/// `gardien <args>` on `app`'s database and data directory (its sealing
/// key), with only the variables given here: `user` as `$USER`.
fn gardien(app: &TestApp, user: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gardien"));
    command
        .args(args)
        .env_clear()
        .env("GARDIEN_DATA_DIR", &app.ctx.config.data_dir)
        .env(
            "GARDIEN_DATABASE_URL",
            app.ctx.config.effective_database_url().expose_secret(),
        );
    if let Some(user) = user {
        command.env("USER", user);
    }
    let output = command.output().expect("the gardien binary runs");
    if let Some(leak) = find_secret_in(&[output.stdout.clone(), output.stderr.clone()].concat()) {
        panic!("gardien {args:?} printed a secret: {leak}");
    }
    output
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// The account's newest event of `kind`.
async fn newest(
    app: &TestApp,
    account_id: &str,
    kind: &str,
) -> gardien::entity::security_event::Model {
    use gardien::entity::security_event::{Column, Entity};
    Entity::find()
        .filter(Column::AccountId.eq(uuid::Uuid::parse_str(account_id).unwrap()))
        .filter(Column::Kind.eq(kind))
        .order_by_desc(Column::Id)
        .one(&app.ctx.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} event"))
}

fn assert_by_operator(event: &gardien::entity::security_event::Model, operator: &str) {
    assert_eq!(event.actor_kind, "security_team", "{event:?}");
    assert_eq!(event.actor_name.as_deref(), Some(operator), "{event:?}");
    assert_eq!(
        event.user_agent.as_deref(),
        Some("gardien command line"),
        "{event:?}"
    );
}

async fn password_state(app: &TestApp, login: &str) -> pb::PasswordState {
    app.account_by_login(login).await.password_state()
}

#[tokio::test]
async fn the_security_team_works_an_account_from_the_command_line() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();

    // show: by login or id, what the team needs, nothing written.
    let events_before = app.events_of(&id).await.len();
    let shown = ok(&gardien(&app, None, &["account", "show", "jean"]));
    assert!(shown.contains(&id), "{shown}");
    assert!(shown.contains("password         active"), "{shown}");
    assert!(shown.contains("live sessions    1"), "{shown}");
    assert!(shown.contains("login_succeeded"), "{shown}");
    assert_eq!(ok(&gardien(&app, None, &["account", "show", &id])), shown);
    assert_eq!(app.events_of(&id).await.len(), events_before);

    // revoke-sessions: the session is refused on the server's next call,
    // with the cause, and the journal names the operator.
    let ended = ok(&gardien(
        &app,
        None,
        &["account", "revoke-sessions", "jean", "--operator", "alice"],
    ));
    assert_eq!(ended.trim(), "1");
    let introspected = app
        .client()
        .await
        .introspect_session(authed(
            &app.service_token,
            pb::IntrospectSessionRequest {
                session_token: session.session_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!introspected.active);
    assert_eq!(
        introspected.revocation_cause(),
        pb::SessionRevocationCause::SecurityTeam
    );
    let revoked = newest(&app, &id, "session_revoked").await;
    assert_by_operator(&revoked, "alice");
    assert!(revoked.details.contains("SECURITY_TEAM"), "{revoked:?}");

    // suspend: by id, the operator from $USER; the customer is e-mailed.
    let suspended = ok(&gardien(
        &app,
        Some("bob"),
        &[
            "account",
            "suspend",
            &id,
            "--reason",
            "credential_leak",
            "--note",
            "seen on a paste site",
        ],
    ));
    assert!(
        uuid::Uuid::parse_str(suspended.trim()).is_ok(),
        "{suspended}"
    );
    assert_eq!(
        password_state(&app, "jean").await,
        pb::PasswordState::Suspended
    );
    assert_by_operator(&newest(&app, &id, "password_suspended").await, "bob");
    app.wait_for_mails("jean@example.fr", 1).await;
    let login = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(login.code(), Code::FailedPrecondition, "{login:?}");
    // Again: nothing changes, and it says so.
    let again = gardien(
        &app,
        None,
        &[
            "account",
            "suspend",
            "jean",
            "--reason",
            "other",
            "--operator",
            "bob",
        ],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already suspended"));
    assert_eq!(ok(&again).trim(), suspended.trim());
    let shown = ok(&gardien(&app, None, &["account", "show", "jean"]));
    assert!(
        shown.contains("suspension       since") && shown.contains("security_team:bob"),
        "{shown}"
    );

    // lift: the password works again; a second lift is refused.
    ok(&gardien(
        &app,
        None,
        &[
            "account",
            "lift",
            "jean",
            "--operator",
            "alice",
            "--note",
            "verified by phone",
        ],
    ));
    assert_eq!(
        password_state(&app, "jean").await,
        pb::PasswordState::Active
    );
    assert_by_operator(&newest(&app, &id, "suspension_lifted").await, "alice");
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let said = refused(&gardien(
        &app,
        None,
        &["account", "lift", "jean", "--operator", "alice"],
    ));
    assert!(said.contains("not suspended"), "{said}");
}

#[tokio::test]
async fn the_command_line_refuses_what_it_cannot_record() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let events_before = app.events_of(&id).await.len();
    // No operator: neither --operator nor $USER.
    let said = refused(&gardien(
        &app,
        None,
        &["account", "revoke-sessions", "jean"],
    ));
    assert!(said.contains("--operator"), "{said}");
    // An operator name that could not be read back as one.
    let said = refused(&gardien(
        &app,
        None,
        &[
            "account",
            "revoke-sessions",
            "jean",
            "--operator",
            "alice smith",
        ],
    ));
    assert!(said.contains("--operator"), "{said}");
    // An unknown account, by login and by id.
    for account in ["nobody", "01900000-0000-7000-8000-000000000000"] {
        let said = refused(&gardien(
            &app,
            Some("alice"),
            &["account", "revoke-sessions", account],
        ));
        assert!(said.contains("account"), "{account}: {said}");
    }
    let said = refused(&gardien(&app, None, &["account", "show", "no such login!"]));
    assert!(said.contains("account"), "{said}");
    // An unknown reason, named with the values it takes.
    let said = refused(&gardien(
        &app,
        Some("alice"),
        &["account", "suspend", "jean", "--reason", "because"],
    ));
    assert!(
        said.contains("--reason") && said.contains("credential_leak"),
        "{said}"
    );
    assert_eq!(app.events_of(&id).await.len(), events_before);
}

/// `credential create` and `credential revoke` keep who did them, and
/// `credential list` shows it.
#[tokio::test]
async fn credentials_keep_the_operators_who_created_and_revoked_them() {
    let app = spawn_app().await;
    let secret = ok(&gardien(
        &app,
        Some("bob"),
        &[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "reports",
        ],
    ));
    register_secret(secret.trim());
    ok(&gardien(
        &app,
        None,
        &[
            "credential",
            "revoke",
            "--name",
            "reports",
            "--operator",
            "carol",
        ],
    ));
    // The same name again: refused with the way out, or replaced on
    // purpose, when the old secret stops working on the running server.
    let said = refused(&gardien(
        &app,
        Some("bob"),
        &[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "billing",
        ],
    ));
    assert!(said.contains("--replace"), "{said}");
    let refused_role = refused(&gardien(
        &app,
        Some("bob"),
        &[
            "credential",
            "create",
            "--role",
            "agent",
            "--name",
            "billing",
            "--replace",
        ],
    ));
    assert!(refused_role.contains("role"), "{refused_role}");
    status_with(&app, &app.service_token).await.unwrap();
    let replaced = ok(&gardien(
        &app,
        Some("dora"),
        &[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "billing",
            "--replace",
        ],
    ));
    let replaced = replaced.trim().to_string();
    register_secret(&replaced);
    assert_ne!(replaced, app.service_token);
    let old = status_with(&app, &app.service_token).await.unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated, "{old:?}");
    status_with(&app, &replaced).await.unwrap();
    // A revoked credential is not brought back: it stays revoked, with who
    // revoked it.
    let said = refused(&gardien(
        &app,
        Some("mallory"),
        &[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "reports",
            "--replace",
        ],
    ));
    assert!(said.contains("revoked") && said.contains("carol"), "{said}");
    let listed = ok(&gardien(&app, None, &["credential", "list"]));
    let line = listed
        .lines()
        .find(|line| line.contains("reports"))
        .unwrap_or_else(|| panic!("{listed}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &words[1..],
        ["service", "reports", "revoked", "bob", "carol", "-"],
        "{listed}"
    );
    assert!(!listed.contains(secret.trim()));
    let billing = listed
        .lines()
        .find(|line| line.contains("billing"))
        .unwrap();
    assert!(
        billing.contains("active") && billing.contains("dora"),
        "{listed}"
    );
}

async fn status_with(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.client()
        .await
        .get_account_status(authed(
            token,
            pb::GetAccountStatusRequest {
                account_id: String::new(),
                login: "nobody".into(),
            },
        ))
        .await
        .map(|_| ())
        .or_else(|status| match status.code() {
            Code::NotFound => Ok(()),
            _ => Err(status),
        })
}

/// `account show` writes nothing, even where there is nothing to show: no
/// database file, table or sealing key is made; and the changing commands
/// never make a sealing key of their own (the customer's e-mail would be
/// sealed with a key the server does not have).
#[tokio::test]
async fn the_command_line_creates_nothing_beside_the_server() {
    let empty = tempfile::tempdir().unwrap();
    let data = empty.path().join("data");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gardien"))
            .args(args)
            .env_clear()
            .env("GARDIEN_DATA_DIR", &data)
            .env("USER", "alice")
            .output()
            .unwrap()
    };
    let said = refused(&run(&["account", "show", "jean"]));
    assert!(said.contains("no database"), "{said}");
    let said = refused(&run(&["account", "revoke-sessions", "jean"]));
    assert!(said.contains("sealing key"), "{said}");
    assert!(!data.exists(), "the data folder was made");

    // On a running server's database, without its key file: refused.
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let elsewhere = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gardien"))
        .args(["account", "suspend", "jean", "--reason", "other"])
        .env_clear()
        .env("GARDIEN_DATA_DIR", elsewhere.path())
        .env(
            "GARDIEN_DATABASE_URL",
            app.ctx.config.effective_database_url().expose_secret(),
        )
        .env("USER", "alice")
        .output()
        .unwrap();
    let said = refused(&output);
    assert!(said.contains("sealing key"), "{said}");
    assert!(!elsewhere.path().join("totp.key").exists());
    assert_eq!(
        password_state(&app, "jean").await,
        pb::PasswordState::Active
    );
}

/// What the RPCs refuse, the command line refuses: a note with control
/// characters or longer than 2000 characters. A value that is one
/// account's id and another's login is refused as ambiguous, and `id:` /
/// `login:` say which. A second revocation of a credential says who
/// revoked it and changes nothing.
#[tokio::test]
async fn the_command_line_checks_what_the_rpcs_check() {
    let app = spawn_app().await;
    let victim = app
        .create_account("victim", "victim@example.fr", STRONG_PASSWORD)
        .await;
    for bad in ["staff \u{1b}[31mnote", &"x".repeat(2001), "\u{9b}31m"] {
        let said = refused(&gardien(
            &app,
            Some("alice"),
            &[
                "account", "suspend", "victim", "--reason", "other", "--note", bad,
            ],
        ));
        assert!(said.contains("--note"), "{said}");
    }
    assert_eq!(
        password_state(&app, "victim").await,
        pb::PasswordState::Active
    );

    ok(&gardien(
        &app,
        Some("alice"),
        &["account", "suspend", "victim", "--reason", "other"],
    ));
    for bad in ["staff \u{1b}[31mnote", &"x".repeat(2001), "\u{7f}"] {
        let said = refused(&gardien(
            &app,
            Some("alice"),
            &["account", "lift", "victim", "--note", bad],
        ));
        assert!(said.contains("--note"), "{said}");
    }
    ok(&gardien(
        &app,
        Some("alice"),
        &["account", "lift", "victim"],
    ));
    // Operator names: as typed, with a letter or digit.
    for bad in ["\u{212a}", "..", "-", "élodie"] {
        let said = refused(&gardien(
            &app,
            None,
            &["account", "revoke-sessions", "victim", "--operator", bad],
        ));
        assert!(said.contains("--operator"), "{bad}: {said}");
    }

    // A login spelled as the victim's id.
    app.create_account(&victim, "other@example.fr", STRONG_PASSWORD)
        .await;
    let said = refused(&gardien(&app, None, &["account", "show", &victim]));
    assert!(said.contains("id:") && said.contains("login:"), "{said}");
    let simple = victim.replace('-', "");
    let said = refused(&gardien(
        &app,
        None,
        &["account", "show", &format!("id:{simple}")],
    ));
    assert!(said.contains("not an account id"), "{said}");
    let by_id = ok(&gardien(
        &app,
        None,
        &["account", "show", &format!("id:{victim}")],
    ));
    assert!(by_id.contains("victim@example.fr"), "{by_id}");
    let by_login = ok(&gardien(
        &app,
        None,
        &["account", "show", &format!("login:{victim}")],
    ));
    assert!(by_login.contains("other@example.fr"), "{by_login}");

    ok(&gardien(
        &app,
        None,
        &[
            "credential",
            "revoke",
            "--name",
            "agent-alice",
            "--operator",
            "sec.lead",
        ],
    ));
    let again = gardien(
        &app,
        None,
        &[
            "credential",
            "revoke",
            "--name",
            "agent-alice",
            "--operator",
            "other",
        ],
    );
    let said = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(
        said.contains("already revoked") && said.contains("sec.lead"),
        "{said}"
    );
    assert!(!said.contains("operator=\"other\""), "{said}");
}
