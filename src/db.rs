//! Database connection and migrations. SQLite (the embedded default) runs in
//! WAL mode with full fsync on commit, so nothing acknowledged is lost on a
//! crash; PostgreSQL is used as is.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::config::Config;

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
