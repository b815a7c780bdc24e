//! GCRA, the generic cell rate algorithm: one number per key, the
//! theoretical arrival time (TAT), in microseconds.

use std::time::Duration;

use crate::config::Limit;

/// A limit in the units GCRA works in: microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Time one call uses up.
    pub interval_us: i64,
    /// How far ahead of now the TAT may run: `burst × interval`.
    pub tolerance_us: i64,
}

impl From<Limit> for Quota {
    fn from(limit: Limit) -> Self {
        let interval_us = 60_000_000 / i64::from(limit.per_minute.max(1));
        Self {
            interval_us,
            tolerance_us: interval_us * i64::from(limit.burst.max(1)),
        }
    }
}

/// One GCRA step: the new TAT if the call is allowed, else the wait.
pub fn gcra(tat_us: Option<i64>, now_us: i64, quota: Quota) -> Result<i64, Duration> {
    let new_tat = tat_us.unwrap_or(now_us).max(now_us) + quota.interval_us;
    let ahead = new_tat - now_us - quota.tolerance_us;
    if ahead > 0 {
        Err(Duration::from_micros(u64::try_from(ahead).unwrap_or(0)))
    } else {
        Ok(new_tat)
    }
}
