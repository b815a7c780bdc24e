//! Replicas started together on a fresh PostgreSQL database (issue 23,
//! item 1): one used to die with `duplicate key value violates unique
//! constraint "pg_type_typname_nsp_index"` as both created the same tables.
//! Migrations are serialised by an advisory lock: every instance serves,
//! and every `gardien migrate` succeeds. During a rolling upgrade an
//! instance of the older binary still starts on the database the newer one
//! migrated. An instance waiting for another's migration says so, and
//! answers its probes meanwhile.

use std::time::{Duration, Instant};

use sea_orm::{
    sqlx::{self, Connection},
    ConnectionTrait, Database,
};

use super::{
    cluster::{postgres_binaries, Cluster},
    process::{logged_addr, Deployment},
};
use crate::helpers::fresh_postgres_url;

const INSTANCES: usize = 4;

/// A database of the test's own, `gardien_test_…`, dropped at the end: on
/// the server of `GARDIEN_TEST_POSTGRES_URL` when it is set, else on a
/// private cluster. Under CI a missing PostgreSQL fails the test.
struct FreshDatabase {
    admin_url: String,
    name: String,
    _cluster: Option<Cluster>,
}

impl FreshDatabase {
    async fn create() -> Option<Self> {
        let (admin_url, cluster) = match std::env::var("GARDIEN_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let Some(bin) = postgres_binaries() else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "PostgreSQL is needed under CI: set GARDIEN_TEST_POSTGRES_URL \
                         or install its server binaries (initdb, pg_ctl)"
                    );
                    eprintln!("skipped: no PostgreSQL");
                    return None;
                };
                let cluster = Cluster::start(&bin);
                (cluster.url(), Some(cluster))
            }
        };
        let name = format!("gardien_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str())
            .await
            .expect("PostgreSQL answers");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a test database is created");
        admin.close().await.ok();
        Some(Self {
            admin_url,
            name,
            _cluster: cluster,
        })
    }

    fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    async fn drop_database(self) {
        let admin = Database::connect(self.admin_url.as_str())
            .await
            .expect("PostgreSQL answers");
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("the test database is dropped");
        admin.close().await.ok();
    }
}

/// `INSTANCES` deployments on `database`, each with its own data folder
/// (kept alive by the first value).
fn deployments_on(database: &FreshDatabase) -> (Vec<tempfile::TempDir>, Vec<Deployment>) {
    let dirs: Vec<_> = (0..INSTANCES)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let deployments = dirs
        .iter()
        .map(|dir| Deployment::new(dir.path(), Some(database.url())))
        .collect();
    (dirs, deployments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_replicas_started_together_on_a_fresh_postgresql_database_all_serve() {
    let Some(database) = FreshDatabase::create().await else {
        return;
    };
    let (_dirs, deployments) = deployments_on(&database);

    // `start` panics with the process's log if it does not come to listen.
    let servers = futures::future::join_all(deployments.iter().map(Deployment::start)).await;

    for server in &servers {
        let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap_or_else(|error| panic!("{error:?}\n{}", server.logs()))
            .into_inner()
            .status();
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }
    drop(servers);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_migrate_commands_run_together_on_a_fresh_postgresql_database_all_succeed() {
    let Some(database) = FreshDatabase::create().await else {
        return;
    };
    let (_dirs, deployments) = deployments_on(&database);

    let outputs =
        futures::future::join_all(deployments.iter().map(|d| d.output(&["migrate"]))).await;

    for output in &outputs {
        assert!(
            output.status.success(),
            "gardien migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The migrations ran once in all: one instance applied them, the
    // others found nothing left to do.
    let applied: Vec<usize> = outputs
        .iter()
        .filter_map(|output| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let line = stderr
                .lines()
                .find(|l| l.contains("migration(s) applied"))?;
            line.split_whitespace().next()?.parse().ok()
        })
        .collect();
    assert_eq!(applied.len(), INSTANCES, "{applied:?}");
    assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_binary_starts_on_a_database_a_newer_one_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::new(dir.path(), fresh_postgres_url().await);
    let migrated = deployment.output(&["migrate"]).await;
    assert!(migrated.status.success(), "{migrated:?}");
    // What a newer gardien leaves behind: a migration this binary lacks.
    deployment
        .connect_db()
        .await
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) \
             VALUES ('m29991231_000001_from_a_newer_gardien', 0)",
        )
        .await
        .unwrap();

    let again = deployment.output(&["migrate"]).await;
    let server = deployment.start().await;

    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
}

/// An instance started while another migrates waited on the migration lock
/// without a word, and its metrics address did not answer, so an
/// orchestrator saw a dead process. It now logs that it waits, answers
/// `/livez` 200 and `/readyz` 503 meanwhile, and becomes ready once the
/// other is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_waiting_for_another_migration_says_so_and_answers_its_probes() {
    use crate::probes::get;
    let Some(database) = FreshDatabase::create().await else {
        return;
    };
    // Another instance migrating: the lock held by a session of the test's.
    let mut other = sqlx::PgConnection::connect(&database.url()).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(gardien::store::db::MIGRATION_LOCK)
        .execute(&mut other)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), Some(database.url()));
    deployment.set("GARDIEN_METRICS_ADDR", "127.0.0.1:0");

    let starting = deployment.spawn(&["serve"]);
    let wait = Duration::from_secs(20);
    let announced = starting.log_line("metrics on", wait).await;
    let waiting = starting.log_line("another instance", wait).await;

    let metrics = announced
        .as_deref()
        .and_then(logged_addr)
        .unwrap_or_else(|| panic!("no metrics address while waiting:\n{}", starting.logs()));
    let waiting =
        waiting.unwrap_or_else(|| panic!("nothing logged about the wait:\n{}", starting.logs()));
    assert!(waiting.contains("\"level\":\"INFO\""), "{waiting}");
    let live = get(metrics, "/livez").await;
    let ready = get(metrics, "/readyz").await;
    assert_eq!(live.0, 200, "{live:?}");
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.contains("migration"), "{ready:?}");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(gardien::store::db::MIGRATION_LOCK)
        .execute(&mut other)
        .await
        .unwrap();
    let server = starting.listening(Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = get(metrics, "/readyz").await;
        if ready.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {ready:?}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    other.close().await.ok();
    database.drop_database().await;
}
