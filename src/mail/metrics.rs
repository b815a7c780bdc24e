//! The outbox worker's counters, which the metrics endpoint exports (the
//! queue's depth and age are read from the database: `store::outbox`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since start-up, shared by the worker and the metrics exporter.
#[derive(Debug, Default)]
pub struct OutboxMetrics {
    /// Delivery attempts, successful or not.
    pub attempts: AtomicU64,
    /// Messages accepted by the transport.
    pub delivered: AtomicU64,
    /// Failed attempts (each one, transient or permanent).
    pub failures: AtomicU64,
    /// Messages given up on (permanent rejection or attempts exhausted).
    pub abandoned: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounters {
    pub attempts: u64,
    pub delivered: u64,
    pub failures: u64,
    pub abandoned: u64,
}

impl OutboxMetrics {
    pub fn snapshot(&self) -> OutboxCounters {
        OutboxCounters {
            attempts: self.attempts.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
