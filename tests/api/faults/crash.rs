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
        support::v1::{self as spb, support_service_client::SupportServiceClient},
    },
};
use rand::Rng;
use sea_orm::{ConnectionTrait, EntityTrait};
use tonic::{transport::Channel, Status};
use uuid::Uuid;

use super::{
    invariants::{inconsistencies, lost, Ledger, Snapshot},
    process::Deployment,
};
use crate::helpers::{authed, fresh_postgres_url, token_in, NEW_PASSWORD, STRONG_PASSWORD};

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
                        if load
                            .lifecycle(&format!("c{cycle}n{n}l{lifecycle}"))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            })
            .collect();
        let delay = rand::thread_rng().gen_range(300..2_500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill().await;
        killed.store(true, Ordering::SeqCst);
        for client in clients {
            tokio::time::timeout(Duration::from_secs(30), client)
                .await
                .expect("a client hung after the kill")
                .unwrap();
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
    let stranded = deliver_after_lease(&db, &deployment.mail_dir).await;
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

/// One client of the load.
struct Load {
    accounts: AccountSecurityServiceClient<Channel>,
    support: SupportServiceClient<Channel>,
    service: String,
    security: String,
    mail_dir: PathBuf,
    killed: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Load {
    /// An account from creation to a completed reset of its suspended
    /// password; stops at the first failed call.
    async fn lifecycle(&self, login: &str) -> Result<(), Status> {
        let mut accounts = self.accounts.clone();
        let email = format!("{login}@example.org");
        let created = accounts
            .create_account(authed(
                &self.service,
                pb::CreateAccountRequest {
                    login: login.into(),
                    email: email.clone(),
                    password: STRONG_PASSWORD.into(),
                    locale: pb::Locale::En.into(),
                    ..Default::default()
                },
            ))
            .await?;
        let account_id = created.into_inner().account.unwrap().account_id;
        let account = Uuid::parse_str(&account_id).unwrap();
        self.ledger.lock().unwrap().accounts.push(account);

        let source = Uuid::new_v4().to_string();
        let recorded = accounts
            .record_activity(authed(
                &self.service,
                pb::RecordActivityRequest {
                    account_id: account_id.clone(),
                    service_event_id: source.clone(),
                    kind: pb::ActivityKind::OrderPlaced.into(),
                    reference: format!("ORD-{login}"),
                    amount_minor: 4_200,
                    currency: "EUR".into(),
                    ..Default::default()
                },
            ))
            .await?;
        let event = recorded.into_inner().event.unwrap().event_id;
        let activity = (Uuid::parse_str(&event).unwrap(), source);
        self.ledger.lock().unwrap().activities.push(activity);

        let login_response = accounts
            .login(pb::LoginRequest {
                login: login.into(),
                password: STRONG_PASSWORD.into(),
            })
            .await?;
        let Some(pb::login_response::Result::Session(session)) = login_response.into_inner().result
        else {
            panic!("a login without 2FA gives a session");
        };
        let ticket = self
            .support
            .clone()
            .create_ticket(authed(
                &session.session_token,
                spb::CreateTicketRequest {
                    client_request_id: Uuid::new_v4().to_string(),
                    category: spb::TicketCategory::SecurityVerification.into(),
                    subject: "Was my account used?".into(),
                    body: "Please check the recent orders.".into(),
                    linked_event_ids: vec![event],
                },
            ))
            .await?;
        let ticket = ticket.into_inner().ticket.unwrap().ticket_id;
        self.ledger
            .lock()
            .unwrap()
            .tickets
            .push(Uuid::parse_str(&ticket).unwrap());

        let suspended = accounts
            .suspend_password(authed(
                &self.security,
                pb::SuspendPasswordRequest {
                    account_id: account_id.clone(),
                    reason: pb::SuspensionReason::SuspectedCompromise.into(),
                    note: "order disputed".into(),
                    evidence_event_ids: vec![],
                },
            ))
            .await?;
        let suspension = suspended.into_inner().suspension.unwrap().suspension_id;
        self.ledger
            .lock()
            .unwrap()
            .suspensions
            .push(Uuid::parse_str(&suspension).unwrap());

        accounts
            .request_password_reset(pb::RequestPasswordResetRequest {
                login_or_email: login.into(),
            })
            .await?;
        let token = self.reset_link(&email).await?;
        accounts
            .complete_password_reset(pb::CompletePasswordResetRequest {
                reset_token: token,
                new_password: NEW_PASSWORD.into(),
                second_factor: None,
            })
            .await?;
        self.ledger.lock().unwrap().resets.push(account);
        Ok(())
    }

    /// The token of the reset link e-mailed to `email`, once delivered.
    async fn reset_link(&self, email: &str) -> Result<String, Status> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.killed.load(Ordering::SeqCst) {
            if let Some(mail) = mail_to(&self.mail_dir, email) {
                return Ok(token_in(&mail));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Status::unavailable("no reset link arrived"))
    }
}

fn mail_to(dir: &Path, email: &str) -> Option<String> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find(|text| {
            text.contains("token=gdr_")
                && text
                    .lines()
                    .any(|l| l.starts_with("To:") && l.contains(email))
        })
}

fn eml(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.eml"))
}

pub async fn integrity_check(db: &sea_orm::DatabaseConnection) -> String {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
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
/// delivered (rows a killed worker had claimed but not finished).
async fn deliver_after_lease(db: &sea_orm::DatabaseConnection, mail_dir: &Path) -> usize {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(LEASE_MS as u64 + 1_000));
    assert!(clock.now_ms() > LEASE_MS);
    let worker = Worker {
        db: db.clone(),
        clock: Arc::new(clock),
        config: MailConfig::default(),
        transport: Transport::File(mail_dir.to_path_buf()),
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
