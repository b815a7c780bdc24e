//! Graceful shutdown of the real process: SIGTERM during a load of slow
//! calls (argon2 logins and account creations) lets every in-flight call
//! finish, refuses new ones, exits 0 within the grace period, and loses
//! nothing that was acknowledged.

use std::time::{Duration, Instant};

use gardien::{
    entity::{account, session},
    proto::accountsecurity::v1::{
        self as pb, account_security_service_client::AccountSecurityServiceClient,
    },
};
use sea_orm::EntityTrait;
use tonic::{transport::Channel, Code};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use uuid::Uuid;

use super::{
    invariants::{lost, Ledger, Snapshot},
    process::Deployment,
};
use crate::helpers::{authed, fresh_postgres_url, STRONG_PASSWORD};

const GRACE: Duration = Duration::from_secs(15);
const LOGINS: usize = 8;
const CREATIONS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_calls_refuses_new_ones_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), fresh_postgres_url().await);
    deployment.set("GARDIEN_SHUTDOWN_GRACE_SECS", GRACE.as_secs());
    // Slower hashing than the default (never weaker): each login keeps a
    // worker busy long enough to be caught in flight.
    deployment.set("GARDIEN_PASSWORD__ARGON2_ITERATIONS", 20);
    let service = deployment.credential("service", "onboarding").await;
    let mut server = deployment.start().await;
    let client = AccountSecurityServiceClient::new(server.channel());
    let mut ledger = Ledger::default();
    let logins: Vec<String> = (0..LOGINS).map(|n| format!("customer{n}")).collect();
    let created =
        futures::future::join_all(logins.iter().map(|login| create(&client, &service, login)))
            .await;
    for id in created {
        ledger
            .accounts
            .push(id.expect("accounts are created before the signal"));
    }
    // A JSON log line: the latency a number, the call's span once.
    let finished = {
        let mut found = None;
        for _ in 0..100 {
            found = server
                .logs()
                .lines()
                .find(|line| line.contains("rpc finished"))
                .map(str::to_string);
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found.expect("a call's last line")
    };
    let line: serde_json::Value = serde_json::from_str(&finished).unwrap();
    assert!(line["latency_ms"].as_f64().is_some(), "{finished}");
    assert!(line["span"]["method"].is_string(), "{finished}");
    assert!(line.get("spans").is_none(), "{finished}");

    // In flight: logins queued on the two hashing workers, and creations.
    let in_flight_logins: Vec<_> = logins
        .iter()
        .map(|login| {
            let (mut client, login) = (client.clone(), login.clone());
            tokio::spawn(async move {
                let outcome = client
                    .login(pb::LoginRequest {
                        login,
                        password: STRONG_PASSWORD.into(),
                    })
                    .await;
                (outcome, Instant::now())
            })
        })
        .collect();
    let in_flight_creations: Vec<_> = (0..CREATIONS)
        .map(|n| {
            let (client, service) = (client.clone(), service.clone());
            tokio::spawn(async move {
                let outcome = create(&client, &service, &format!("late{n}")).await;
                (outcome, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        in_flight_logins.iter().any(|call| !call.is_finished()),
        "the load finished before the signal: make hashing slower"
    );
    server.terminate();
    let signalled = Instant::now();

    // New calls are refused, on a new connection as on the old one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = AccountSecurityServiceClient::new(server.channel());
    for (name, mut client) in [
        ("new connection", fresh),
        ("open connection", client.clone()),
    ] {
        let started = Instant::now();
        let refused = client.login(pb::LoginRequest {
            login: "customer0".into(),
            password: STRONG_PASSWORD.into(),
        });
        let refused = tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .unwrap_or_else(|_| panic!("a call on the {name} hung after SIGTERM"))
            .expect_err("a call after SIGTERM is refused");
        // A new connection is refused (UNAVAILABLE); on the open one the
        // server's GOAWAY makes the client give the call up unsent.
        assert!(
            matches!(refused.code(), Code::Unavailable | Code::Cancelled),
            "{name}: {refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    let health = HealthClient::new(server.channel())
        .check(HealthCheckRequest::default())
        .await;
    assert!(
        health.is_err(),
        "a stopping server takes no new call: {health:?}"
    );
    let refused_at = Instant::now();

    // Every call in flight at the signal completes.
    let mut sessions = Vec::new();
    let mut finished_after_refusals = 0;
    for call in in_flight_logins {
        let (outcome, finished) = call.await.unwrap();
        finished_after_refusals += usize::from(finished > refused_at);
        let response = outcome.expect("an in-flight login completes");
        match response.into_inner().result {
            Some(pb::login_response::Result::Session(grant)) => sessions.push(grant.session_id),
            other => panic!("expected a session, got {other:?}"),
        }
    }
    for call in in_flight_creations {
        let (outcome, finished) = call.await.unwrap();
        finished_after_refusals += usize::from(finished > refused_at);
        ledger
            .accounts
            .push(outcome.expect("an in-flight creation completes"));
    }
    assert!(
        finished_after_refusals > 0,
        "every call had finished before the new ones were refused: make hashing slower"
    );
    let status = server
        .wait(GRACE)
        .await
        .expect("the process exits within the grace period");
    let drained = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        server.logs()
    );
    assert!(server.logs().contains("shutdown requested"));

    // Nothing acknowledged is lost: a new process on the same database.
    let mut restarted = deployment.start().await;
    let db = deployment.connect_db().await;
    let snapshot = Snapshot::load(&db).await;
    assert!(
        lost(&ledger, &snapshot).is_empty(),
        "{:#?}",
        lost(&ledger, &snapshot)
    );
    let stored = session::Entity::find().all(&db).await.unwrap();
    for id in &sessions {
        let id = Uuid::parse_str(id).unwrap();
        assert!(stored.iter().any(|s| s.id == id), "session {id} lost");
    }
    assert_eq!(
        stored.len(),
        sessions.len(),
        "a refused login left a session"
    );
    assert_eq!(
        account::Entity::find().all(&db).await.unwrap().len(),
        LOGINS + CREATIONS
    );
    restarted.terminate();
    assert!(restarted.wait(GRACE).await.is_some_and(|s| s.success()));
    eprintln!(
        "SIGTERM: {} logins and {CREATIONS} creations in flight all completed ({finished_after_refusals} \
         after new calls were refused), exit 0 after {:.1} s (grace {GRACE:?}); {} acknowledged changes, 0 lost",
        sessions.len(),
        drained.as_secs_f64(),
        ledger.len() + sessions.len()
    );
}

async fn create(
    client: &AccountSecurityServiceClient<Channel>,
    service: &str,
    login: &str,
) -> Result<Uuid, tonic::Status> {
    let response = client
        .clone()
        .create_account(authed(
            service,
            pb::CreateAccountRequest {
                login: login.into(),
                email: format!("{login}@example.org"),
                password: STRONG_PASSWORD.into(),
                locale: pb::Locale::En.into(),
                ..Default::default()
            },
        ))
        .await?;
    Ok(Uuid::parse_str(&response.into_inner().account.unwrap().account_id).unwrap())
}
