//! SQLite busy/locked: another connection holds the write lock (`BEGIN
//! IMMEDIATE`) while the server takes writes. Shorter than the busy timeout
//! (10 s), the writes wait and succeed once it is released; longer, they
//! answer UNAVAILABLE with a retry hint. Reads go on meanwhile (WAL), and
//! afterwards `PRAGMA integrity_check` is ok and nothing is half-applied.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use gardien::proto::accountsecurity::v1 as pb;
use sea_orm::sqlx::{Connection, Executor, SqliteConnection};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use super::invariants::{inconsistencies, integrity_check, lost, Ledger, Snapshot};
use crate::helpers::{authed, spawn_app_with, TestApp, NEW_PASSWORD, STRONG_PASSWORD};

/// What one write was and how it ended.
type Write = (Change, Result<(), tonic::Status>);

#[derive(Debug)]
enum Change {
    Activity(Uuid, String),
    Account(String),
    Suspension(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_sqlite_database_makes_writes_wait_or_answer_unavailable_never_corrupts() {
    // SQLite whatever database the rest of the suite runs on.
    let app = spawn_app_with(|config| config.database_url = None).await;
    let first = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let second = app
        .create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let third = app
        .create_account("paul", "paul@example.fr", STRONG_PASSWORD)
        .await;
    let url = app.ctx.config.effective_database_url();
    let mut holder = SqliteConnection::connect(url.expose_secret())
        .await
        .unwrap();

    // A lock shorter than the busy timeout: the writes wait, then succeed.
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let waiting = writes(&app, &first, "short").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "writes finished while another connection held the write lock instead of waiting for it"
    );
    read(&app, &first).await;
    holder.execute("COMMIT").await.unwrap();
    let short = finish(waiting).await;
    for (change, outcome) in &short {
        assert!(outcome.is_ok(), "{change:?} was not retried: {outcome:?}");
    }

    // Longer than the busy timeout: UNAVAILABLE with a retry hint, in time.
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let locked_at = Instant::now();
    let refused = finish(writes(&app, &second, "long").await).await;
    let waited = locked_at.elapsed();
    read(&app, &second).await;
    holder.execute("COMMIT").await.unwrap();
    assert!(
        waited < Duration::from_secs(20),
        "writes hung for {waited:?}"
    );
    for (change, outcome) in &refused {
        let status = outcome.as_ref().expect_err("the lock was held throughout");
        assert_eq!(status.code(), Code::Unavailable, "{change:?}: {status:?}");
        assert!(
            status.get_details_retry_info().is_some(),
            "{change:?}: no retry hint"
        );
    }

    // Released: writes work again, the file is sound, and the database holds
    // exactly the acknowledged changes.
    let after = finish(writes(&app, &third, "after").await).await;
    assert!(
        after.iter().all(|(_, outcome)| outcome.is_ok()),
        "{after:?}"
    );
    assert_eq!(integrity_check(&app.ctx.db).await, "ok");
    let snapshot = Snapshot::load(&app.ctx.db).await;
    let mut ledger = Ledger::default();
    for (change, outcome) in short.iter().chain(&refused).chain(&after) {
        let present = match change {
            Change::Activity(id, source) => {
                if outcome.is_ok() {
                    ledger.activities.push((*id, source.clone()));
                }
                snapshot
                    .events
                    .iter()
                    .any(|e| e.source_event_id.as_deref() == Some(source))
            }
            Change::Account(login) => snapshot.accounts.iter().any(|a| &a.login == login),
            Change::Suspension(account) => snapshot
                .suspensions
                .iter()
                .any(|s| s.account_id.to_string() == *account),
        };
        assert_eq!(present, outcome.is_ok(), "{change:?}: {outcome:?}");
    }
    assert!(lost(&ledger, &snapshot).is_empty());
    let broken = inconsistencies(&snapshot, NEW_PASSWORD, &mut HashSet::new());
    assert!(broken.is_empty(), "{broken:#?}");
    eprintln!(
        "SQLite locked: {} writes waited and succeeded, {} answered UNAVAILABLE after {:.1} s, integrity ok",
        short.len(),
        refused.len(),
        waited.as_secs_f64()
    );
}

/// Writes of three kinds, sent at once.
async fn writes(app: &TestApp, account: &str, tag: &str) -> Vec<JoinHandle<Write>> {
    let base = app.client().await;
    let mut calls = Vec::new();
    for n in 0..4 {
        let source = format!("{tag}-{n}");
        let request = pb::RecordActivityRequest {
            account_id: account.into(),
            service_event_id: source.clone(),
            kind: pb::ActivityKind::OrderPlaced.into(),
            reference: source.clone(),
            ..Default::default()
        };
        let (mut client, token) = (base.clone(), app.service_token.clone());
        calls.push(tokio::spawn(async move {
            let outcome = client
                .record_activity(authed(&token, request))
                .await
                .map(|response| response.into_inner().event.unwrap().event_id);
            let id = outcome
                .as_ref()
                .map_or(Uuid::nil(), |id| Uuid::parse_str(id).unwrap());
            (Change::Activity(id, source), outcome.map(|_| ()))
        }));
    }
    let login = format!("{tag}-account");
    let request = pb::CreateAccountRequest {
        login: login.clone(),
        email: format!("{login}@example.org"),
        password: STRONG_PASSWORD.into(),
        locale: pb::Locale::Fr.into(),
        ..Default::default()
    };
    let (mut client, token) = (base.clone(), app.service_token.clone());
    calls.push(tokio::spawn(async move {
        let outcome = client.create_account(authed(&token, request)).await;
        (Change::Account(login), outcome.map(|_| ()))
    }));
    let request = pb::SuspendPasswordRequest {
        account_id: account.into(),
        reason: pb::SuspensionReason::CredentialLeak.into(),
        ..Default::default()
    };
    let (mut client, token) = (base.clone(), app.security_token.clone());
    let account = account.to_string();
    calls.push(tokio::spawn(async move {
        let outcome = client.suspend_password(authed(&token, request)).await;
        (Change::Suspension(account), outcome.map(|_| ()))
    }));
    calls
}

async fn finish(calls: Vec<JoinHandle<Write>>) -> Vec<Write> {
    let mut done = Vec::new();
    for call in calls {
        done.push(
            tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .expect("a write hung")
                .unwrap(),
        );
    }
    done
}

/// Reads are served while another connection holds the write lock.
async fn read(app: &TestApp, account: &str) {
    let started = Instant::now();
    app.client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: account.into(),
                login: String::new(),
            },
        ))
        .await
        .expect("reads go on during a write lock");
    assert!(started.elapsed() < Duration::from_secs(2));
}
