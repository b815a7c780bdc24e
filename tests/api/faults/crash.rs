//! Crash safety: the real server process takes a mixed load of
//! state-changing calls and is killed with SIGKILL at a random moment, then
//! restarted on the same database, cycle after cycle. After each kill every
//! acknowledged change must be in the database with its security event and
//! no transaction may be half-applied; at the end every e-mail whose outbox
//! row committed must reach the mail folder.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use gardien::{
    clock::{Clock, ManualClock},
    config::MailConfig,
    crypto::secretbox::Sealer,
    entity::outbox,
    mail::{
        metrics::OutboxMetrics,
        outbox::{Worker, LEASE_MS, SENT},
        transport::Transport,
    },
    proto::{
        accountsecurity::v1::{
            self as pb, account_security_service_client::AccountSecurityServiceClient,
        },
        support::v1::support_service_client::SupportServiceClient,
    },
};
use rand::Rng;
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::{
    invariants::{inconsistencies, integrity_check, lost, Ledger, Snapshot},
    lifecycle::Load,
    process::Deployment,
};
use crate::helpers::{authed, fresh_postgres_url, NEW_PASSWORD};

/// Kill/restart cycles; each runs a load for a random 0.3-2.5 s.
const CYCLES: usize = 10;
/// Concurrent clients, each running account lifecycles one after another.
const CLIENTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_changes_survive_sigkill_at_random_moments() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::new(dir.path(), fresh_postgres_url().await);
    let service = deployment.credential("service", "billing").await;
    let security = deployment.credential("security", "secops").await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut verified = HashSet::new();

    for cycle in 0..CYCLES {
        let mut server = deployment.start().await;
        let killed = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let load = Load {
                    accounts: AccountSecurityServiceClient::new(server.channel()),
                    support: SupportServiceClient::new(server.channel()),
                    service: service.clone(),
                    security: security.clone(),
                    mail_dir: deployment.mail_dir.clone(),
                    killed: killed.clone(),
                    ledger: ledger.clone(),
                };
                tokio::spawn(async move {
                    for lifecycle in 0.. {
                        let login = format!("c{cycle}n{n}l{lifecycle}");
                        if let Err(status) = load.lifecycle(&login).await {
                            // Before the kill, every call must succeed.
                            return (!load.killed.load(Ordering::SeqCst)).then_some(status);
                        }
                    }
                    None
                })
            })
            .collect();
        let delay = rand::thread_rng().gen_range(300..2_500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed.store(true, Ordering::SeqCst);
        server.kill().await;
        for client in clients {
            let failed = tokio::time::timeout(Duration::from_secs(30), client)
                .await
                .expect("a client hung after the kill")
                .unwrap();
            assert!(
                failed.is_none(),
                "a call failed before the kill: {failed:?}"
            );
        }
        assert!(
            !server.logs().contains("panicked"),
            "the server panicked:\n{}",
            server.logs()
        );

        let db = deployment.connect_db().await;
        if deployment.is_sqlite() {
            assert_eq!(integrity_check(&db).await, "ok", "cycle {cycle}");
        }
        let snapshot = Snapshot::load(&db).await;
        db.close().await.ok();
        let ledger = ledger.lock().unwrap();
        let lost = lost(&ledger, &snapshot);
        assert!(
            lost.is_empty(),
            "cycle {cycle}: acknowledged changes lost: {lost:#?}"
        );
        let broken = inconsistencies(&snapshot, NEW_PASSWORD, &mut verified);
        assert!(
            broken.is_empty(),
            "cycle {cycle}: half-applied changes: {broken:#?}"
        );
        eprintln!(
            "cycle {cycle}: killed after {delay} ms; {} acknowledged changes so far, none lost",
            ledger.len()
        );
    }

    // A last restart: the outbox worker delivers what the killed ones left.
    let mut server = deployment.start().await;
    let db = deployment.connect_db().await;
    wait_until_no_pending_mail(&db).await;
    let mut accounts = AccountSecurityServiceClient::new(server.channel());
    let acknowledged = ledger.lock().unwrap().accounts.clone();
    let snapshot = Snapshot::load(&db).await;
    for id in &acknowledged {
        let status = accounts
            .get_account_status(authed(
                &service,
                pb::GetAccountStatusRequest {
                    account_id: id.to_string(),
                    login: String::new(),
                },
            ))
            .await
            .expect("an acknowledged account is served after the restart")
            .into_inner();
        let stored = snapshot.accounts.iter().find(|a| a.id == *id).unwrap();
        assert_eq!(
            status.active_suspension.is_some(),
            stored.password_state == "suspended"
        );
    }
    server.terminate();
    assert!(server
        .wait(Duration::from_secs(15))
        .await
        .is_some_and(|s| s.success()));

    // A row a killed worker had claimed waits for its lease to pass; a
    // worker whose clock is past the lease delivers it.
    let stranded = deliver_after_lease(&db, &deployment).await;
    let rows = outbox::Entity::find().all(&db).await.unwrap();
    let undelivered: Vec<_> = rows
        .iter()
        .filter(|row| row.status != SENT || !eml(&deployment.mail_dir, row.id).is_file())
        .map(|row| (row.id, row.kind.clone(), row.status.clone()))
        .collect();
    assert!(
        undelivered.is_empty(),
        "committed e-mails not delivered: {undelivered:#?}"
    );
    let ledger = ledger.lock().unwrap();
    eprintln!(
        "crash safety ({}): {CYCLES} SIGKILL/restart cycles, {} acknowledged changes \
         ({} accounts, {} activities, {} tickets, {} suspensions, {} resets), 0 lost, \
         0 half-applied; {} e-mails committed, all delivered ({stranded} after their lease); {:.1} s",
        if deployment.is_sqlite() { "SQLite" } else { "PostgreSQL" },
        ledger.len(),
        ledger.accounts.len(),
        ledger.activities.len(),
        ledger.tickets.len(),
        ledger.suspensions.len(),
        ledger.resets.len(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        ledger.len() >= CYCLES,
        "the load acknowledged too little to prove anything"
    );
    assert!(!ledger.resets.is_empty() && !ledger.suspensions.is_empty());
}

/// Waits (bounded) until the running server's worker has sent every due row.
async fn wait_until_no_pending_mail(db: &sea_orm::DatabaseConnection) {
    for _ in 0..300 {
        let rows = outbox::Entity::find().all(db).await.unwrap();
        if rows.iter().all(|row| row.status != "pending") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the restarted server did not deliver the queued e-mails");
}

/// Runs a worker whose clock is past every lease; returns how many rows it
/// delivered (rows a killed worker had claimed but not finished). It opens
/// the rows' sealed secrets with the deployment's key file.
async fn deliver_after_lease(db: &sea_orm::DatabaseConnection, deployment: &Deployment) -> usize {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(LEASE_MS as u64 + 1_000));
    assert!(clock.now_ms() > LEASE_MS);
    let worker = Worker {
        db: db.clone(),
        clock: Arc::new(clock),
        config: MailConfig::default(),
        sealer: Sealer::load_or_create_key_file(&deployment.data_dir.join("totp.key")).unwrap(),
        transport: Transport::File(deployment.mail_dir.clone()),
        signal: Arc::new(tokio::sync::Notify::new()),
        metrics: Arc::new(OutboxMetrics::default()),
    };
    let mut delivered = 0;
    loop {
        match worker.drain_once().await.unwrap() {
            0 => return delivered,
            n => delivered += n,
        }
    }
}

fn eml(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.eml"))
}
