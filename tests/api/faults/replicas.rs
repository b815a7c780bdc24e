//! Replicas started together on a fresh PostgreSQL database (issue 23,
//! item 1): one used to die with `duplicate key value violates unique
//! constraint "pg_type_typname_nsp_index"` as both created the same tables.
//! Migrations are serialised by an advisory lock: every instance serves,
//! and every `gardien migrate` succeeds. During a rolling upgrade an
//! instance of the older binary still starts on the database the newer one
//! migrated.

use sea_orm::{ConnectionTrait, Database};

use super::{
    cluster::{postgres_binaries, Cluster},
    process::Deployment,
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
