//! Live sessions and credentials cached in memory, without weakening
//! revocation: a revoked token or credential is refused on the very next
//! call, on every instance (DESIGN.md §6).
//!
//! Every revocation of a session or a credential, on any instance or by the
//! command line, adds one to `revocation_clock.generation` in the transaction
//! that revokes ([`bump`]). A cached entry records the generation read
//! *before* its row was read. A call uses an entry only if the generation,
//! read by a query that *started after the call arrived*, is still the
//! entry's: a revocation acknowledged before the call arrived has committed,
//! so that query sees it and the entry is passed over for the database.
//!
//! Those reads are shared: one query serves every call that arrived before it
//! started, as a group commit serves many writers, so under load the check
//! costs a fraction of a query per call instead of two row reads. A call
//! arrives when the authentication middleware receives it
//! ([`AuthCache::during_call`]); its credential and its session lookups may
//! both use one read started after that. When the generation cannot be
//! read, nothing is served from the cache.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::{watch, Notify};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use super::{error::Result, principal::Principal};
use crate::store::revocation_clock::{self, Held};

tokio::task_local! {
    /// Where this instance's clock stood when the current call arrived.
    static ARRIVAL: Arrival;
}

#[derive(Clone, Copy)]
struct Arrival {
    /// Which cache's clock (calls of several instances can share a process).
    reader: usize,
    /// Reads that had started when the call arrived.
    started: u64,
}

/// A call waits at most this long for a fresh generation, then goes to the
/// database as if there were no cache.
const WAIT_FOR_GENERATION: Duration = Duration::from_secs(2);

/// Moves the revocation clock; call it in the transaction that revokes.
pub async fn bump<C: ConnectionTrait>(conn: &C) -> Result<()> {
    Ok(revocation_clock::bump(conn).await?)
}

/// Reads the generation on the held connection, waiting at most
/// [`WAIT_FOR_GENERATION`].
async fn read_generation(db: &DatabaseConnection, held: &mut Option<Held>) -> Option<i64> {
    revocation_clock::read(db, held, WAIT_FOR_GENERATION).await
}

/// What a live session's cache entry keeps: enough to authenticate and
/// introspect, nothing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSession {
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub second_factor_used: bool,
}

#[derive(Clone, Copy)]
struct Reading {
    /// Which read this is (1, 2, …); 0 before the first.
    index: u64,
    generation: Option<i64>,
}

struct Reader {
    db: DatabaseConnection,
    /// Reads started so far.
    started: AtomicU64,
    wanted: Notify,
    latest: watch::Sender<Reading>,
    stop: CancellationToken,
}

impl Reader {
    async fn run(self: Arc<Self>) {
        let mut held = None;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.wanted.notified() => {}
            }
            // Let the calls already received on this worker run first, so
            // that those which will wait for this read register before it
            // starts: under load this halves the reads (measured on
            // PostgreSQL), at no cost when idle.
            tokio::task::yield_now().await;
            // Counted before the query is sent: a caller that saw the old
            // count arrived before this read started, and waits for the next.
            let index = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            let generation = read_generation(&self.db, &mut held).await;
            self.latest.send_replace(Reading { index, generation });
        }
    }
}

/// The cache of one instance; see the module documentation.
pub struct AuthCache {
    capacity: usize,
    reader: Arc<Reader>,
    running: OnceLock<()>,
    sessions: Mutex<HashMap<String, (i64, LiveSession)>>,
    credentials: Mutex<HashMap<String, (i64, Principal)>>,
    _stop_reader: DropGuard,
}

impl AuthCache {
    /// At most `capacity` sessions and as many credentials; 0 turns the
    /// cache off (every call reads the database).
    pub fn new(db: DatabaseConnection, capacity: usize) -> Self {
        let stop = CancellationToken::new();
        let (latest, _) = watch::channel(Reading {
            index: 0,
            generation: None,
        });
        Self {
            capacity,
            reader: Arc::new(Reader {
                db,
                started: AtomicU64::new(0),
                wanted: Notify::new(),
                latest,
                stop: stop.clone(),
            }),
            running: OnceLock::new(),
            sessions: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            _stop_reader: stop.drop_guard(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Runs one call, marking when it arrived: every generation the call
    /// asks for may then come from any read started after that moment, so a
    /// call that checks a credential and then a session waits for one read,
    /// not two.
    pub async fn during_call<F: std::future::Future>(&self, call: F) -> F::Output {
        let arrival = Arrival {
            reader: self.reader_id(),
            started: self.reader.started.load(Ordering::SeqCst),
        };
        ARRIVAL.scope(arrival, call).await
    }

    fn reader_id(&self) -> usize {
        Arc::as_ptr(&self.reader) as usize
    }

    /// The revocation generation, read by a query that started after this
    /// call; `None` when the cache is off or the read failed.
    pub async fn generation(&self) -> Option<i64> {
        if !self.enabled() {
            return None;
        }
        self.running.get_or_init(|| {
            tokio::spawn(self.reader.clone().run());
        });
        let mut latest = self.reader.latest.subscribe();
        let arrived = ARRIVAL
            .try_with(|arrival| (arrival.reader == self.reader_id()).then_some(arrival.started))
            .ok()
            .flatten()
            .unwrap_or_else(|| self.reader.started.load(Ordering::SeqCst));
        if latest.borrow().index <= arrived {
            self.reader.wanted.notify_one();
        }
        let fresh = async {
            latest
                .wait_for(|reading| reading.index > arrived)
                .await
                .map(|reading| reading.generation)
        };
        tokio::time::timeout(WAIT_FOR_GENERATION, fresh)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// The cached live session of a token hash, if cached at `generation`.
    pub fn session(&self, token_hash: &str, generation: i64) -> Option<LiveSession> {
        let sessions = lock(&self.sessions);
        match sessions.get(token_hash) {
            Some((at, live)) if *at == generation => Some(*live),
            _ => None,
        }
    }

    /// Keeps a session read live after `generation` was read.
    pub fn keep_session(&self, token_hash: &str, generation: i64, live: LiveSession) {
        if self.enabled() {
            keep(&self.sessions, self.capacity, token_hash, generation, live);
        }
    }

    pub fn credential(&self, secret_hash: &str, generation: i64) -> Option<Principal> {
        let credentials = lock(&self.credentials);
        match credentials.get(secret_hash) {
            Some((at, principal)) if *at == generation => Some(principal.clone()),
            _ => None,
        }
    }

    pub fn keep_credential(&self, secret_hash: &str, generation: i64, principal: Principal) {
        if self.enabled() {
            keep(
                &self.credentials,
                self.capacity,
                secret_hash,
                generation,
                principal,
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Entries are plain values written whole; a panic elsewhere cannot leave
    // one half-written.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn keep<T>(
    map: &Mutex<HashMap<String, (i64, T)>>,
    capacity: usize,
    key: &str,
    generation: i64,
    value: T,
) {
    let mut map = lock(map);
    if map.len() >= capacity && !map.contains_key(key) {
        // Entries of older generations can never be used again.
        map.retain(|_, (at, _)| *at >= generation);
        if map.len() >= capacity {
            map.clear();
        }
    }
    map.insert(key.to_owned(), (generation, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(n: u128) -> LiveSession {
        LiveSession {
            id: Uuid::from_u128(n),
            account_id: Uuid::from_u128(n + 1),
            created_at: 1,
            expires_at: 2,
            last_seen_at: 1,
            second_factor_used: false,
        }
    }

    async fn cache(capacity: usize) -> AuthCache {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        AuthCache::new(db, capacity)
    }

    #[tokio::test]
    async fn an_entry_is_used_only_at_its_own_generation() {
        let cache = cache(10).await;
        cache.keep_session("h", 3, live(1));
        assert_eq!(cache.session("h", 3), Some(live(1)));
        assert_eq!(cache.session("h", 4), None);
        assert_eq!(cache.session("other", 3), None);
    }

    #[tokio::test]
    async fn a_full_cache_drops_stale_entries_first_then_everything() {
        let cache = cache(2).await;
        cache.keep_session("a", 1, live(1));
        cache.keep_session("b", 2, live(2));
        cache.keep_session("c", 2, live(3));
        assert_eq!(cache.session("a", 1), None, "stale entry dropped");
        assert_eq!(cache.session("b", 2), Some(live(2)));
        cache.keep_session("d", 2, live(4));
        assert_eq!(
            lock(&cache.sessions).len(),
            1,
            "full of live entries: cleared"
        );
        assert_eq!(cache.session("d", 2), Some(live(4)));
    }

    #[tokio::test]
    async fn capacity_zero_keeps_nothing_and_reads_no_generation() {
        let cache = cache(0).await;
        cache.keep_session("a", 1, live(1));
        assert_eq!(cache.session("a", 1), None);
        assert_eq!(cache.generation().await, None);
    }

    /// An in-memory database with only the revocation clock, at 0.
    async fn clock_db() -> DatabaseConnection {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE revocation_clock (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL);
             INSERT INTO revocation_clock VALUES (1, 0);",
        )
        .await
        .unwrap();
        db
    }

    #[tokio::test]
    async fn the_generation_follows_every_bump() {
        let db = clock_db().await;
        let cache = AuthCache::new(db.clone(), 10);
        assert_eq!(cache.generation().await, Some(0));
        for expected in 1..=5 {
            bump(&db).await.unwrap();
            // The read that answers started after the bump committed.
            assert_eq!(cache.generation().await, Some(expected));
        }
        let concurrent: Vec<_> = futures::future::join_all((0..50).map(|_| cache.generation()))
            .await
            .into_iter()
            .collect();
        assert!(concurrent.iter().all(|g| *g == Some(5)));
        assert!(
            cache.reader.started.load(Ordering::SeqCst) < 6 + 50,
            "concurrent calls share reads"
        );
    }

    #[tokio::test]
    async fn a_sqlite_file_is_read_in_place_and_sees_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        db.execute_unprepared(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE revocation_clock (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL);
             INSERT INTO revocation_clock VALUES (1, 0);",
        )
        .await
        .unwrap();
        let mut held = None;
        assert_eq!(read_generation(&db, &mut held).await, Some(0));
        assert!(matches!(held, Some(Held::SqliteFile(_))));
        bump(&db).await.unwrap();
        assert_eq!(read_generation(&db, &mut held).await, Some(1));
        // Another connection on the same file, as the command line's would be.
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute(
                "UPDATE revocation_clock SET generation = 7 WHERE id = 1",
                [],
            )
            .unwrap();
        assert_eq!(read_generation(&db, &mut held).await, Some(7));
        // Without the table (a file that is not gardien's) nothing is served.
        other.execute("DROP TABLE revocation_clock", []).unwrap();
        assert_eq!(read_generation(&db, &mut held).await, None);
        assert!(held.is_none(), "reopened at the next read");

        let memory = clock_db().await;
        let mut held = None;
        assert_eq!(read_generation(&memory, &mut held).await, Some(0));
        assert!(
            matches!(held, Some(Held::Sqlite(_))),
            "in memory: the pool's options"
        );
    }

    #[tokio::test]
    async fn one_call_waits_for_one_read_that_started_after_it_arrived() {
        let db = clock_db().await;
        let cache = AuthCache::new(db.clone(), 10);
        assert_eq!(cache.generation().await, Some(0));
        let reads_before = cache.reader.started.load(Ordering::SeqCst);
        // Committed before the call arrives: the call must see it.
        bump(&db).await.unwrap();
        let (first, second) = cache
            .during_call(async {
                let first = cache.generation().await;
                let second = cache.generation().await;
                (first, second)
            })
            .await;
        assert_eq!((first, second), (Some(1), Some(1)));
        assert_eq!(
            cache.reader.started.load(Ordering::SeqCst),
            reads_before + 1,
            "the second lookup of the call reuses the read of the first"
        );
        // The next call arrives after another bump: a fresh read again.
        bump(&db).await.unwrap();
        let next = cache.during_call(cache.generation()).await;
        assert_eq!(next, Some(2));
        assert_eq!(
            cache.reader.started.load(Ordering::SeqCst),
            reads_before + 2
        );
    }
}
