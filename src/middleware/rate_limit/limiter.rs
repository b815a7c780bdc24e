//! The limiter behind the rate-limit layer: GCRA (the generic cell rate
//! algorithm) over keyed counters, either in this process or in Redis, and
//! the fail-open/fail-closed rule when Redis cannot answer.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT). A key
//! whose TAT has passed is exactly as good as a key never seen, so idle keys
//! can be dropped at any time without changing an answer: that is what keeps
//! the in-process store bounded.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use crate::{
    clock::SharedClock,
    config::{ClassLimits, RateLimitBackend, RateLimitConfig},
};

pub use super::gcra::{gcra, Quota};
use super::redis_store::RedisStore;

/// The method classes, from strictest to most generous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Credential,
    Write,
    Read,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Credential => "credential",
            Class::Write => "write",
            Class::Read => "read",
        }
    }
}

/// What a limit is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A client address (IPv6 addresses by their /64).
    Address(String),
    /// An authenticated principal (`c:<account>` or `k:<credential>`).
    Principal(String),
}

/// The answer for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Limited {
        retry_after: Duration,
    },
    /// The shared store is unreachable and the class fails closed.
    Unavailable,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct RateLimitMetrics {
    /// Calls refused with `RATE_LIMITED`.
    pub limited: AtomicU64,
    /// Checks the backend could not answer (error or timeout).
    pub backend_errors: AtomicU64,
    /// Calls let through because the backend failed and the class fails open.
    pub failed_open: AtomicU64,
    /// Calls refused because the backend failed and the class fails closed.
    pub failed_closed: AtomicU64,
}

/// The in-process store: a bounded map of TATs.
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    max_keys: usize,
    sweep_interval_us: i64,
}

struct MemoryState {
    tats: HashMap<String, i64>,
    last_sweep_us: i64,
}

impl MemoryStore {
    pub fn new(max_keys: usize, sweep_interval: Duration) -> Self {
        Self {
            state: Mutex::new(MemoryState {
                tats: HashMap::new(),
                last_sweep_us: 0,
            }),
            max_keys: max_keys.max(2),
            sweep_interval_us: i64::try_from(sweep_interval.as_micros()).unwrap_or(i64::MAX),
        }
    }

    pub fn check(&self, key: &str, now_us: i64, quota: Quota) -> Result<(), Duration> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if now_us - state.last_sweep_us >= self.sweep_interval_us {
            state.tats.retain(|_, tat| *tat > now_us);
            state.last_sweep_us = now_us;
        }
        let new_tat = gcra(state.tats.get(key).copied(), now_us, quota)?;
        if !state.tats.contains_key(key) && state.tats.len() >= self.max_keys {
            make_room(&mut state.tats, now_us, self.max_keys);
        }
        state.tats.insert(key.to_string(), new_tat);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .tats
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops idle keys; if the map is still full, drops the half nearest to full
/// credit (the cheapest to forget), so that an insertion costs an amortised
/// constant even under a flood of distinct keys.
fn make_room(tats: &mut HashMap<String, i64>, now_us: i64, max_keys: usize) {
    tats.retain(|_, tat| *tat > now_us);
    if tats.len() < max_keys {
        return;
    }
    let mut values: Vec<i64> = tats.values().copied().collect();
    let middle = values.len() / 2;
    let (_, median, _) = values.select_nth_unstable(middle);
    let median = *median;
    tats.retain(|_, tat| *tat > median);
}

enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
}

/// Shared by both rate-limit layers of a server.
pub struct RateLimiter {
    enabled: bool,
    backend: Backend,
    clock: SharedClock,
    credential: ClassLimits,
    read: ClassLimits,
    write: ClassLimits,
    pub metrics: Arc<RateLimitMetrics>,
}

impl RateLimiter {
    /// Whether the shared store answers: always with the in-process one;
    /// Redis must answer `PING` within `rate_limit.redis_timeout_ms`.
    pub async fn ping(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Redis(redis) => redis.ping().await.map_err(|error| error.to_string()),
        }
    }

    /// Builds the limiter; the Redis connection is opened lazily, so a
    /// Redis outage at start-up does not stop the server.
    pub fn new(config: &RateLimitConfig, clock: SharedClock) -> anyhow::Result<Self> {
        let backend = match config.backend {
            RateLimitBackend::Memory => Backend::Memory(MemoryStore::new(
                config.max_keys,
                Duration::from_secs(config.sweep_interval_secs),
            )),
            RateLimitBackend::Redis => Backend::Redis(RedisStore::new(config)?),
        };
        Ok(Self {
            enabled: config.enabled,
            backend,
            clock,
            credential: config.credential,
            read: config.read,
            write: config.write,
            metrics: Arc::new(RateLimitMetrics::default()),
        })
    }

    fn limits(&self, class: Class) -> &ClassLimits {
        match class {
            Class::Credential => &self.credential,
            Class::Read => &self.read,
            Class::Write => &self.write,
        }
    }

    /// Counts one call of `class` against `scope`.
    pub async fn check(&self, class: Class, scope: &Scope) -> Decision {
        if !self.enabled {
            return Decision::Allow;
        }
        let limits = self.limits(class);
        let (quota, key) = match scope {
            Scope::Address(address) => (
                Quota::from(limits.per_address),
                format!("{}:a:{address}", class.as_str()),
            ),
            Scope::Principal(principal) => (
                Quota::from(limits.per_principal),
                format!("{}:p:{principal}", class.as_str()),
            ),
        };
        let now_us = self.clock.now_ms().saturating_mul(1000);
        let answer = match &self.backend {
            Backend::Memory(store) => Ok(store.check(&key, now_us, quota)),
            Backend::Redis(store) => store.check(&key, now_us, quota).await,
        };
        match answer {
            Ok(Ok(())) => Decision::Allow,
            Ok(Err(retry_after)) => {
                self.metrics.limited.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    class = class.as_str(),
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited"
                );
                Decision::Limited { retry_after }
            }
            Err(error) => {
                self.metrics.backend_errors.fetch_add(1, Ordering::Relaxed);
                if limits.fail_open {
                    self.metrics.failed_open.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(class = class.as_str(), %error, "rate-limit backend unavailable: failing open");
                    Decision::Allow
                } else {
                    self.metrics.failed_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(class = class.as_str(), %error, "rate-limit backend unavailable: failing closed");
                    Decision::Unavailable
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limit;

    const QUOTA: Quota = Quota {
        interval_us: 10_000_000,
        tolerance_us: 30_000_000,
    };

    #[test]
    fn gcra_allows_the_burst_then_one_call_per_interval() {
        let store = MemoryStore::new(1000, Duration::from_secs(60));
        let now = 1_000_000_000;
        for _ in 0..3 {
            assert_eq!(store.check("k", now, QUOTA), Ok(()));
        }
        assert_eq!(
            store.check("k", now, QUOTA),
            Err(Duration::from_secs(10)),
            "the fourth call waits one interval"
        );
        assert!(store.check("k", now + 9_999_999, QUOTA).is_err());
        assert_eq!(store.check("k", now + 10_000_000, QUOTA), Ok(()));
        assert!(store.check("k", now + 10_000_000, QUOTA).is_err());
    }

    #[test]
    fn a_refused_call_does_not_push_the_wait_further() {
        let store = MemoryStore::new(1000, Duration::from_secs(60));
        let now = 1_000_000_000;
        for _ in 0..3 {
            store.check("k", now, QUOTA).unwrap();
        }
        for _ in 0..100 {
            assert_eq!(store.check("k", now, QUOTA), Err(Duration::from_secs(10)));
        }
    }

    #[test]
    fn keys_never_exceed_the_cap_under_a_flood_of_distinct_keys() {
        let store = MemoryStore::new(1000, Duration::from_secs(3600));
        let now = 1_000_000_000;
        for i in 0..50_000 {
            store.check(&format!("address-{i}"), now, QUOTA).unwrap();
            assert!(store.len() <= 1000, "{} keys after {i}", store.len());
        }
    }

    #[test]
    fn idle_keys_are_swept_once_their_credit_is_full() {
        let store = MemoryStore::new(1000, Duration::from_secs(60));
        let now = 1_000_000_000;
        for i in 0..500 {
            store.check(&format!("address-{i}"), now, QUOTA).unwrap();
        }
        assert_eq!(store.len(), 500);
        store.check("late", now + 61_000_000, QUOTA).unwrap();
        assert_eq!(store.len(), 1, "only the key just used remains");
    }

    #[test]
    fn the_quota_follows_the_configured_rate_and_burst() {
        let quota = Quota::from(Limit::new(6, 3));
        assert_eq!(quota, QUOTA);
    }
}
