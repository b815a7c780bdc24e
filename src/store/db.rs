//! Database connection and migrations. SQLite (the embedded default) runs in
//! WAL mode with full fsync on commit, so nothing acknowledged is lost on a
//! crash; PostgreSQL is used as is.

use std::{path::Path, path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sea_query::Values, sqlx, ConnAcquireErr, ConnectOptions, Database, DatabaseConnection,
    DatabaseTransaction, DbErr, RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
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
        super::files::create_private_dir_all(&config.data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot create data_dir {}: {error}",
                config.data_dir.display()
            )
        })?;
        let file = config.data_dir.join("gardien.db");
        super::files::create_private_file(&file).map_err(|error| {
            anyhow::anyhow!("cannot create the database {}: {error}", file.display())
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

/// The embedded database's file as this instance opened it. A file deleted
/// or replaced under a running instance leaves its connections on the old
/// file, where every write from then on is lost: readiness checks that the
/// file at the path is still the one opened, and writable.
#[derive(Debug, Clone)]
pub struct SqliteFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SqliteFile {
    /// The file of the configured SQLite database once it is open; `None`
    /// on PostgreSQL or for an in-memory database.
    pub fn opened(config: &Config) -> Option<Self> {
        let url = config.effective_database_url();
        let url = url.expose_secret();
        if !is_sqlite(url) {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename().to_path_buf();
        let identity = identity(&std::fs::metadata(&path).ok()?);
        Some(Self { path, identity })
    }

    /// Checked from the path alone: opening the file, then closing that
    /// descriptor, would drop the locks SQLite holds on it in this process.
    pub fn check(&self) -> Result<(), String> {
        let path = self.path.display();
        let metadata = std::fs::metadata(&self.path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => format!("the SQLite file {path} is gone"),
            _ => format!("the SQLite file {path}: {error}"),
        })?;
        if identity(&metadata) != self.identity {
            return Err(format!(
                "the SQLite file {path} was replaced: this instance still uses the one it opened"
            ));
        }
        if !may_write(&self.path, &metadata) {
            return Err(format!("the SQLite file {path} is not writable"));
        }
        Ok(())
    }
}

/// Which file a path names: device and inode.
#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Whether this process may write the file `path`, or create files in the
/// folder `path`: asked of the kernel (which knows the process's user and
/// groups, and a read-only mount) where it can be, else read from the mode.
/// Nothing is opened.
#[cfg(target_os = "linux")]
pub fn may_write(path: &Path, metadata: &std::fs::Metadata) -> bool {
    use rustix::fs::{access, Access};
    let needed = if metadata.is_dir() {
        Access::WRITE_OK | Access::EXEC_OK
    } else {
        Access::WRITE_OK
    };
    access(path, needed).is_ok()
}

#[cfg(not(target_os = "linux"))]
pub fn may_write(_: &Path, metadata: &std::fs::Metadata) -> bool {
    !metadata.permissions().readonly()
}

/// Begins a transaction that may write. On SQLite it takes the write lock
/// at `BEGIN` (waiting up to the busy timeout): a deferred transaction that
/// read first could not upgrade to a writer once another connection had
/// committed, and failed at once with `SQLITE_BUSY` whatever the timeout.
/// PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// The PostgreSQL advisory lock that serialises migrations across
/// instances ("gardien" in ASCII).
pub const MIGRATION_LOCK: i64 = 0x0067_6172_6469_656e;

/// Applies pending migrations; returns how many ran. On PostgreSQL one
/// instance migrates at a time, holding [`MIGRATION_LOCK`] on a connection
/// of its own; the others wait (saying so in the log), then find nothing
/// left to do. SQLite is one instance's.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<usize> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return migrate_unlocked(db).await;
    }
    let mut conn = db.get_postgres_connection_pool().acquire().await?;
    // Whatever happens (an error, a cancelled start-up), the session ends
    // when the connection is dropped, and the lock with it.
    conn.close_on_drop();
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !free {
        tracing::info!("another instance is migrating the database: waiting for it to finish");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
        tracing::info!("the other instance's migration is over");
    }
    let migrated = migrate_unlocked(db).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    migrated
}

/// Migrations of a newer gardien already applied (a rolling upgrade under
/// way) are left alone: they only add, and this binary runs beside them.
async fn migrate_unlocked(db: &DatabaseConnection) -> anyhow::Result<usize> {
    Migrator::install(db).await?;
    let pending = pending_migrations(db).await?;
    if pending > 0 {
        Migrator::up(db, None).await?;
    }
    Ok(pending)
}

/// Connects to a database that must already exist with every migration of
/// this binary applied, and changes nothing to get there: no data folder,
/// file or table is created and no migration is run (for the commands that
/// work beside a running server).
pub async fn connect_existing(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.effective_database_url();
    let url = url.expose_secret();
    if is_sqlite(url) {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
        let path = options.get_filename();
        if !path.exists() {
            anyhow::bail!(
                "no database at {}: `gardien serve` or `gardien migrate` makes it",
                path.display()
            );
        }
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(2)
        .connect_timeout(Duration::from_secs(config.database.connect_timeout_secs))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| opts.create_if_missing(false));
    let db = Database::connect(options).await?;
    match pending_migrations(&db).await {
        Ok(0) => Ok(db),
        Ok(pending) => anyhow::bail!(
            "the database lacks {pending} migration(s) of this binary: run `gardien migrate` \
             (or start `gardien serve`) first"
        ),
        Err(_) => anyhow::bail!(
            "the database has no gardien tables: run `gardien migrate` (or start `gardien \
             serve`) first"
        ),
    }
}

/// This binary's migrations that the database has not applied; creates
/// nothing (an error if no migration ever ran).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    use sea_orm::EntityTrait;
    let applied: std::collections::HashSet<String> = migration::seaql_migrations::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.version)
        .collect();
    Ok(Migrator::migrations()
        .iter()
        .filter(|m| !applied.contains(m.name()))
        .count())
}

/// Runs `statement` (one or several `;`-separated statements) on SQLite
/// between `BEGIN IMMEDIATE` and `COMMIT`, all in one trip to the
/// connection's thread instead of the three that a transaction opened from
/// sea-orm takes; answers how many rows its statements return (give the
/// write that decides whether anything happened a `RETURNING` clause: the
/// count of changed rows cannot tell, since SQLite reports the previous
/// statement's changes again for `BEGIN` and `COMMIT`). It runs in a task
/// of its own, so a caller that goes away mid-way cannot hand the
/// connection back to the pool with the transaction open; on any error it
/// rolls back, and a connection that cannot roll back is closed rather than
/// reused.
pub async fn sqlite_in_transaction(
    db: &DatabaseConnection,
    statement: Statement,
) -> Result<usize, DbErr> {
    let pool = db.get_sqlite_connection_pool().clone();
    let task = tokio::spawn(async move {
        let mut conn = pool.acquire().await.map_err(|error| match error {
            sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            error => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))),
        })?;
        let sql = format!("BEGIN IMMEDIATE; {}; COMMIT", statement.sql);
        let values = statement.values.unwrap_or(Values(Vec::new()));
        let done = sqlx::query_with(sqlx::AssertSqlSafe(sql.as_str()), SqlxValues(values))
            .fetch_all(&mut *conn)
            .await;
        match done {
            Ok(rows) => Ok(rows.len()),
            Err(error) => {
                // Also fails when `BEGIN` itself was refused and nothing is
                // open; closing the connection then costs only a reconnect.
                if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                    conn.close_on_drop();
                }
                Err(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(error))))
            }
        }
    });
    task.await
        .map_err(|error| DbErr::Custom(format!("the database task stopped: {error}")))?
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};
    use sea_orm::{ConnectionTrait, DbBackend};

    use super::*;

    #[tokio::test]
    async fn a_failed_batch_rolls_back_and_leaves_its_connection_usable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let mut options = ConnectOptions::new(url);
        // One connection: the next batch gets the one that failed.
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .await
            .unwrap();

        let duplicate = "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)";
        let failed =
            sqlite_in_transaction(&db, Statement::from_string(DbBackend::Sqlite, duplicate)).await;
        let written = sqlite_in_transaction(
            &db,
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO t VALUES ($1); INSERT INTO t VALUES ($2) RETURNING x",
                [2.into(), 3.into()],
            ),
        )
        .await;

        assert!(failed.is_err());
        assert_eq!(written.unwrap(), 1);
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT x FROM t ORDER BY x",
            ))
            .await
            .unwrap();
        let xs: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get("", "x").unwrap())
            .collect();
        assert_eq!(xs, vec![2, 3]);
    }

    /// A write transaction that reads first still writes when another
    /// connection wrote in between: it holds the write lock from `BEGIN`,
    /// so the other writer waits (here, with no busy timeout, gives up)
    /// instead of making the transaction fail with `SQLITE_BUSY`.
    #[tokio::test]
    async fn a_write_transaction_that_reads_first_is_not_made_busy_by_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let connect = |busy: Duration| {
            let mut options = ConnectOptions::new(url.clone());
            options
                .max_connections(1)
                .min_connections(1)
                .map_sqlx_sqlite_opts(move |opts| {
                    opts.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .busy_timeout(busy)
                });
            Database::connect(options)
        };
        let db = connect(Duration::from_secs(10)).await.unwrap();
        let other = connect(Duration::ZERO).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .await
            .unwrap();

        let txn = begin_write(&db).await.unwrap();
        txn.query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT x FROM t"))
            .await
            .unwrap();
        let _ = other.execute_unprepared("UPDATE t SET x = 2").await;
        txn.execute_unprepared("UPDATE t SET x = 3").await.unwrap();
        txn.commit().await.unwrap();
    }

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
