//! The revocation clock: one generation number, moved in every transaction
//! that revokes a session or a credential, and read on a connection of its
//! own (outside the pool) by the authentication cache.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// Moves the revocation clock; call it in the transaction that revokes.
pub async fn bump<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    conn.execute_raw(Statement::from_string(
        backend,
        "UPDATE revocation_clock SET generation = generation + 1 WHERE id = 1",
    ))
    .await?;
    Ok(())
}

const READ_GENERATION: &str = "SELECT generation FROM revocation_clock WHERE id = 1";

/// The reader's own connection, opened outside the pool: a read never waits
/// for a pool slot behind a flood of logins, and the pool keeps every slot it
/// was given (even a pool of one).
pub enum Held {
    /// A SQLite file, read in place: one row through SQLite's shared-memory
    /// WAL index takes microseconds on the calling thread, where a pooled
    /// connection sends each query to its own thread and waits for that
    /// thread to be scheduled (up to milliseconds on busy cores). It sees
    /// every commit of every process on the file, as any connection does.
    SqliteFile(rusqlite::Connection),
    /// An in-memory SQLite database, reachable only through the pool's own
    /// connect options.
    Sqlite(sea_orm::sqlx::SqliteConnection),
    Postgres(sea_orm::sqlx::PgConnection),
}

impl Held {
    async fn open(db: &DatabaseConnection) -> Option<Self> {
        use sea_orm::sqlx::ConnectOptions;
        let opened = match db.get_database_backend() {
            DbBackend::Sqlite => match sqlite_file(db).await {
                Some(path) => return open_sqlite_file(&path).map(Self::SqliteFile),
                None => db
                    .get_sqlite_connection_pool()
                    .connect_options()
                    .connect()
                    .await
                    .map(Self::Sqlite),
            },
            DbBackend::Postgres => db
                .get_postgres_connection_pool()
                .connect_options()
                .connect()
                .await
                .map(Self::Postgres),
            _ => return None,
        };
        opened
            .inspect_err(|error| tracing::debug!(%error, "revocation clock: cannot connect"))
            .ok()
    }
}

/// The file of the pool's main database, as SQLite itself names it; `None`
/// for an in-memory one (SQLite gives it no file).
async fn sqlite_file(db: &DatabaseConnection) -> Option<std::path::PathBuf> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA database_list",
        ))
        .await
        .ok()?;
    rows.iter().find_map(|row| {
        let name: String = row.try_get_by_index(1).ok()?;
        let file: String = row.try_get_by_index(2).ok()?;
        (name == "main" && !file.is_empty()).then(|| file.into())
    })
}

fn open_sqlite_file(path: &std::path::Path) -> Option<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    // Never creates a file, and refuses to write: it only reads the clock.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = rusqlite::Connection::open_with_flags(path, flags).and_then(|connection| {
        // A lock held elsewhere answers at once (the calls then read the
        // database) instead of stalling the worker thread in a busy wait.
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    });
    opened
        .inspect_err(|error| tracing::debug!(%error, "revocation clock: cannot open the file"))
        .ok()
}

/// Reads the generation on the held connection (opened again after an error,
/// for example once PostgreSQL is back after a restart), waiting at most
/// `wait` for the connection and again for the read.
pub async fn read(db: &DatabaseConnection, held: &mut Option<Held>, wait: Duration) -> Option<i64> {
    use sea_orm::sqlx::query_scalar;
    if held.is_none() {
        // Bounded like a read: an unreachable server must not hold up every
        // later read.
        *held = tokio::time::timeout(wait, Held::open(db))
            .await
            .ok()
            .flatten();
    }
    let read = async {
        match held.as_mut()? {
            Held::SqliteFile(connection) => connection
                .prepare_cached(READ_GENERATION)
                .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
                .inspect_err(|error| tracing::debug!(%error, "revocation clock: read failed"))
                .ok(),
            Held::Sqlite(connection) => query_scalar::<_, i64>(READ_GENERATION)
                .fetch_one(&mut *connection)
                .await
                .ok(),
            Held::Postgres(connection) => query_scalar::<_, i64>(READ_GENERATION)
                .fetch_one(&mut *connection)
                .await
                .ok(),
        }
    };
    let generation = tokio::time::timeout(wait, read).await.ok().flatten();
    if generation.is_none() {
        // Failed or timed out: the next read opens a new connection.
        *held = None;
    }
    generation
}
