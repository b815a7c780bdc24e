//! Time as a parameter: the domain asks a [`Clock`], never the system, so
//! tests move time instead of sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

/// Unix time in milliseconds, the unit stored in the database.
pub type Millis = i64;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now_ms(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// The wall clock plus an offset that tests move forward; frozen, it stops
/// at the moment it was frozen and moves only when a test advances it.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    offset_ms: Arc<AtomicI64>,
    /// The wall-clock time it was frozen at, or 0 while it follows the wall.
    frozen_at: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Stops the clock where it is: from now on only [`Self::advance`]
    /// moves it, so a test measuring delays is not hurt by a slow machine.
    pub fn freeze(&self) {
        let _ = self.frozen_at.compare_exchange(
            0,
            SystemClock.now_ms(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            0 => SystemClock.now_ms(),
            frozen => frozen,
        };
        base.saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// When a request arrived: read once, where it enters (the authentication
/// middleware), and carried in the request's extensions, so every check and
/// write of that request sees one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTime(pub Millis);

/// Converts stored milliseconds to a protobuf timestamp.
pub fn to_timestamp(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_milliseconds_towards_the_past() {
        assert_eq!(to_timestamp(1_500).seconds, 1);
        assert_eq!(to_timestamp(1_500).nanos, 500_000_000);
        assert_eq!(to_timestamp(-1).seconds, -1);
        assert_eq!(to_timestamp(-1).nanos, 999_000_000);
    }

    #[test]
    fn manual_clock_moves_forward() {
        let clock = ManualClock::new();
        let before = clock.now_ms();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now_ms() - before >= 3_600_000);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        clock.freeze();
        let at = clock.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(clock.now_ms(), at);
        clock.advance(std::time::Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), at + 1500);
    }
}
