//! The load driver: a fixed number of in-flight calls for a fixed duration,
//! latencies in an HDR histogram, failures counted by status code.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::{transport::Channel, Code};

/// One call of a scenario: `worker` is the caller's index, `n` its count.
pub type Op = Arc<dyn Fn(usize, u64) -> BoxFuture<'static, Result<(), Code>> + Send + Sync>;

/// Wraps an async closure as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Code>> + Send + 'static,
{
    Arc::new(move |worker, n| Box::pin(f(worker, n)))
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub calls: u64,
    pub ok: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// Failed calls by gRPC status code name.
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    /// Calls that failed with a status other than `expected`.
    pub fn unexpected_errors(&self, expected: &[Code]) -> u64 {
        self.errors
            .iter()
            .filter(|(code, _)| !expected.iter().any(|e| format!("{e:?}") == **code))
            .map(|(_, n)| n)
            .sum()
    }
}

/// When a load run stops, and how fast each caller goes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Stop at this much time after the start...
    pub duration: Duration,
    /// ...or once this many calls have started, whichever comes first.
    pub calls: Option<u64>,
    /// Each caller starts a call at most this often (`None`: back to back).
    pub interval: Option<Duration>,
}

impl Plan {
    pub fn for_duration(duration: Duration) -> Self {
        Self {
            duration,
            calls: None,
            interval: None,
        }
    }
}

/// Runs `op` with `concurrency` callers for `duration`.
pub async fn drive(duration: Duration, concurrency: usize, op: Op) -> Stats {
    drive_plan(Plan::for_duration(duration), concurrency, op).await
}

/// Runs `op` with `concurrency` callers as `plan` says.
pub async fn drive_plan(plan: Plan, concurrency: usize, op: Op) -> Stats {
    run(plan, concurrency, op).await.stats()
}

/// What runs counted, before it is summed up: runs of one kind add up.
pub struct Tally {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    calls: u64,
    seconds: f64,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            hist: new_histogram(),
            errors: BTreeMap::new(),
            calls: 0,
            seconds: 0.0,
        }
    }

    pub fn add(&mut self, other: &Tally) {
        let _ = self.hist.add(&other.hist);
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
        self.calls += other.calls;
        self.seconds += other.seconds;
    }

    pub fn stats(&self) -> Stats {
        let seconds = self.seconds;
        Stats {
            calls: self.calls,
            ok: self.hist.len(),
            seconds,
            per_second: self.hist.len() as f64 / seconds.max(f64::MIN_POSITIVE),
            p50_us: self.hist.value_at_quantile(0.50),
            p99_us: self.hist.value_at_quantile(0.99),
            p999_us: self.hist.value_at_quantile(0.999),
            errors: self.errors.clone(),
        }
    }
}

/// Runs `op` with `concurrency` callers as `plan` says; the run lasts until
/// the last call in flight at the end of the plan has finished.
pub async fn run(plan: Plan, concurrency: usize, op: Op) -> Tally {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let started = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let op = op.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let mut n = 0u64;
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    if let Some(limit) = plan.calls {
                        if started.fetch_add(1, Ordering::Relaxed) >= limit {
                            break;
                        }
                    }
                    if let Some(interval) = plan.interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += interval;
                    }
                    let began = Instant::now();
                    match op(worker, n).await {
                        Ok(()) => {
                            let us = began.elapsed().as_micros() as u64;
                            hist.saturating_record(us.max(1));
                        }
                        Err(code) => *errors.entry(format!("{code:?}")).or_default() += 1,
                    }
                    n += 1;
                }
                (hist, errors, n)
            })
        })
        .collect();
    let mut tally = Tally::new();
    for task in tasks {
        if let Ok((hist, errors, calls)) = task.await {
            tally.add(&Tally {
                hist,
                errors,
                calls,
                seconds: 0.0,
            });
        }
    }
    tally.seconds = start.elapsed().as_secs_f64();
    tally
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits; these bounds are valid.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// `count` HTTP/2 connections to `addr`, over TLS when `tls` is given.
pub async fn channels(
    addr: std::net::SocketAddr,
    count: usize,
    tls: Option<&crate::TlsMaterial>,
) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let endpoint = match tls {
            Some(tls) => tls.endpoint(addr)?,
            None => Channel::from_shared(format!("http://{addr}"))?,
        };
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}
