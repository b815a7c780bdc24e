//! PostgreSQL stopped under load, on a private cluster (never the shared
//! one): calls answer UNAVAILABLE with a retry hint within a bound (no hang,
//! no INTERNAL), health turns NOT_SERVING; once PostgreSQL is back the same
//! server process recovers on its own: health SERVING, calls succeed, the
//! outbox worker delivers again.

use std::time::{Duration, Instant};

use gardien::proto::accountsecurity::v1 as pb;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_types::StatusExt;

use super::cluster::{postgres_binaries, Cluster};
use crate::helpers::{authed, reason, spawn_app_with, AsClient, TestApp, STRONG_PASSWORD};

/// The longest a call may take while the database is down: the pool's
/// acquire timeout (2 s here) plus scheduling slack.
const CALL_BOUND: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
pub async fn a_postgresql_outage_answers_unavailable_and_the_same_server_recovers() {
    let Some(bin) = postgres_binaries() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL server binaries (initdb, pg_ctl) are needed under CI"
        );
        eprintln!("skipped: no PostgreSQL server binaries");
        return;
    };
    let cluster = Cluster::start(&bin);
    let url = cluster.url();
    let app = spawn_app_with(|config| {
        config.database_url = Some(SecretString::from(url));
        config.database.connect_timeout_secs = 2;
    })
    .await;
    let account = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    assert_eq!(health(&app).await, ServingStatus::Serving);
    let up = load(&app, &account, Duration::from_millis(600)).await;
    assert!(up.iter().all(|call| call.outcome.is_ok()), "{up:?}");

    // Stopped under load: the calls in flight and every later one answer.
    let stop = CancellationToken::new();
    let during = {
        let stop = stop.clone();
        let (client, service, account) = (
            app.client().await,
            app.service_token.clone(),
            account.clone(),
        );
        tokio::spawn(async move { load_with(client, service, account, stop).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg_ctl(&["stop", "-m", "immediate"]);
    let stopped = Instant::now();
    wait_for_health(&app, ServingStatus::NotServing, Duration::from_secs(10)).await;
    let not_serving = Instant::now();
    // A call in flight at the stop may take up to CALL_BOUND (a pool
    // acquire for the revocation clock, then one for the row); wait that
    // long so that each caller starts calls after NOT_SERVING too.
    tokio::time::sleep(CALL_BOUND + Duration::from_millis(1_500)).await;
    stop.cancel();
    let down = during.await.unwrap();
    for call in &down {
        let Err(status) = &call.outcome else { continue };
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "{}: {status:?}",
            call.name
        );
        if reason(status) == "UNAVAILABLE" {
            assert!(
                status.get_details_retry_info().is_some(),
                "{}: no retry hint",
                call.name
            );
        }
    }
    let after: Vec<_> = down
        .iter()
        .filter(|call| call.started > not_serving)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|call| call.outcome.is_err()),
        "{after:?}"
    );
    assert!(
        down.iter().any(|call| call.outcome.is_ok()),
        "no call before the stop: {down:?}"
    );
    eprintln!(
        "PostgreSQL stopped under load: NOT_SERVING after {:.1} s; {} calls, {} answered UNAVAILABLE, \
         none INTERNAL, the longest {:.1} s",
        (not_serving - stopped).as_secs_f64(),
        down.len(),
        down.iter().filter(|call| call.outcome.is_err()).count(),
        down.iter().map(|call| call.took).max().unwrap_or_default().as_secs_f64(),
    );

    cluster.start_server();
    let restarted = Instant::now();
    wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(20)).await;
    let mut recovered = Vec::new();
    for _ in 0..40 {
        recovered = load(&app, &account, Duration::from_millis(300)).await;
        if recovered.iter().all(|call| call.outcome.is_ok()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered.iter().all(|call| call.outcome.is_ok()),
        "{recovered:?}"
    );
    // The outbox worker survived the outage too.
    let mails = app.mails_to("jean@example.fr").len();
    app.request_reset("jean").await;
    app.reset_token_from_mail("jean@example.fr", mails + 1)
        .await;
    eprintln!(
        "PostgreSQL back: SERVING and calls succeed {:.1} s after the restart",
        restarted.elapsed().as_secs_f64()
    );
}

#[derive(Debug)]
struct Call {
    name: &'static str,
    started: Instant,
    took: Duration,
    outcome: Result<(), tonic::Status>,
}

async fn load(app: &TestApp, account: &str, duration: Duration) -> Vec<Call> {
    let client = app.client().await;
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        stopper.cancel();
    });
    load_with(client, app.service_token.clone(), account.into(), stop).await
}

/// Mixed calls from three clients until `stop`, each call's outcome. A
/// call that does not answer within [`CALL_BOUND`] fails the test.
async fn load_with(
    client: AsClient,
    service: String,
    account: String,
    stop: CancellationToken,
) -> Vec<Call> {
    let mut clients = Vec::new();
    for n in 0..3 {
        let (client, service, account) = (client.clone(), service.clone(), account.clone());
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut i = 0;
            while !stop.is_cancelled() {
                i += 1;
                let mut client = client.clone();
                let started = Instant::now();
                let (name, outcome) = match (n + i) % 4 {
                    0 => ("GetAccountStatus", {
                        let request = pb::GetAccountStatusRequest {
                            account_id: account.clone(),
                            login: String::new(),
                        };
                        bounded(client.get_account_status(authed(&service, request))).await
                    }),
                    1 => ("RecordActivity", {
                        let request = pb::RecordActivityRequest {
                            account_id: account.clone(),
                            service_event_id: uuid::Uuid::new_v4().to_string(),
                            kind: pb::ActivityKind::OrderPlaced.into(),
                            reference: "ORD-1".into(),
                            ..Default::default()
                        };
                        bounded(client.record_activity(authed(&service, request))).await
                    }),
                    // Anonymous: answered OK only once the request is
                    // recorded, so never while the database is down.
                    2 => ("RequestPasswordReset", {
                        // No such account (the request is recorded all
                        // the same); jean's hourly limit stays whole.
                        let request = pb::RequestPasswordResetRequest {
                            login_or_email: "nobody".into(),
                        };
                        bounded(client.request_password_reset(request)).await
                    }),
                    _ => ("SuspendPassword", {
                        let request = pb::SuspendPasswordRequest {
                            account_id: account.clone(),
                            reason: pb::SuspensionReason::FraudAlert.into(),
                            ..Default::default()
                        };
                        bounded(client.suspend_password(authed(&service, request))).await
                    }),
                };
                calls.push(Call {
                    name,
                    started,
                    took: started.elapsed(),
                    outcome,
                });
            }
            calls
        }));
    }
    let mut calls = Vec::new();
    for client in clients {
        calls.extend(client.await.unwrap());
    }
    calls
}

async fn bounded<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<(), tonic::Status> {
    let started = Instant::now();
    match tokio::time::timeout(CALL_BOUND, call).await {
        Ok(outcome) => outcome.map(|_| ()),
        Err(_) => panic!(
            "a call hung for {:?} while the database was down",
            started.elapsed()
        ),
    }
}

async fn health(app: &TestApp) -> ServingStatus {
    let mut client = HealthClient::new(app.channel().await);
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match tokio::time::timeout(CALL_BOUND, client.check(request)).await {
        Ok(Ok(response)) => response.into_inner().status(),
        other => panic!("health must answer whatever the database does: {other:?}"),
    }
}

async fn wait_for_health(app: &TestApp, expected: ServingStatus, within: Duration) {
    let started = Instant::now();
    while started.elapsed() < within {
        if health(app).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health did not turn {expected:?} within {within:?}");
}
