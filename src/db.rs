//! Database connection and migrations. SQLite (the embedded default) runs in
//! WAL mode with full fsync on commit, so nothing acknowledged is lost on a
//! crash; PostgreSQL is used as is.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::config::Config;

/// How long a pooled connection may sit unused before it is checked on
/// being handed out.
const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(1);

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Connects to the configured database (creating the data directory for the
/// embedded SQLite file).
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.effective_database_url();
    let url = url.expose_secret();
    if is_sqlite(url) && config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot create data_dir {}: {error}",
                config.data_dir.display()
            )
        })?;
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(config.database.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(config.database.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(config.database.connect_timeout_secs))
        // A connection is checked with a round trip before it is handed out
        // only once it has sat idle: one used within the last second is
        // known to work, and checking it on every acquire cost a round trip
        // per statement (a third of a login's trips to SQLite's threads).
        // A connection that died while in use (a database restart) fails
        // its statement as UNAVAILABLE and is closed when it goes back.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_CHECK)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .map_err(|error| anyhow::anyhow!("cannot connect to the database: {error}"))
}

/// Applies pending migrations; returns how many ran.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let pending = Migrator::get_pending_migrations(db).await?.len();
    Migrator::up(db, None).await?;
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};

    /// `.cargo/config.toml` builds SQLite with its query planner stability
    /// guarantee: a statement with `LIMIT ?` runs again with another bound
    /// value without being prepared again.
    #[test]
    fn a_bound_limit_does_not_prepare_the_statement_again() {
        let db = Connection::open_in_memory().unwrap();
        let options: Vec<String> = db
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|option| option == "ENABLE_QPSG"),
            "{options:?}"
        );
        db.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let mut statement = db.prepare("SELECT x FROM t WHERE x > ?1 LIMIT ?2").unwrap();
        for (above, limit) in [(0, 1), (1, 2), (0, 3)] {
            let rows = statement
                .query_map([above, limit], |row| row.get::<_, i64>(0))
                .unwrap()
                .count();
            assert_eq!(rows as i64, limit.min(3 - above));
        }
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
    }
}
