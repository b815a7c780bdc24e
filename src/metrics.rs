//! Prometheus metrics on a separate HTTP port (`metrics_addr`, off by
//! default): RPCs by method and status, latency histograms, login outcomes,
//! suspensions and resets, rate-limit rejections, hashing-pool queue depth,
//! outbox gauges and database pool usage. The same port answers the
//! probes from the start of start-up: `/livez` while the process runs,
//! `/readyz` 503 while start-up waits (on the database, on another
//! instance's migration), then per [`Readiness`].
//!
//! Counters are recorded where things happen, through the `metrics` facade
//! (no-ops while no recorder is installed); the counters this instance
//! keeps in atomics (rate limiter, outbox worker) are exported as counters
//! at each scrape, and gauges sampled then. Every metric is described here
//! ([`describe`]), so that each has its `# HELP`.

use std::{net::SocketAddr, sync::Arc, sync::OnceLock, time::Duration};

use axum::http::StatusCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod process;

use crate::{
    domain,
    middleware::rate_limit::{RateLimitMetrics, RateLimiter},
    store,
};

/// Whether this instance can serve: on SQLite, the file at the database's
/// path is still the one opened and is writable; the database answers a
/// read within `timeout` with every migration of this binary applied; and
/// the rate limiter's shared store (Redis, when configured) answers `PING`.
/// `/readyz` and the gRPC health service both follow it.
#[derive(Clone)]
pub struct Readiness {
    pub db: DatabaseConnection,
    pub sqlite_file: Option<store::db::SqliteFile>,
    pub limiter: Arc<RateLimiter>,
    pub timeout: Duration,
}

impl Readiness {
    /// `Err` with a short reason naming what is not ready.
    pub async fn check(&self) -> Result<(), String> {
        if let Some(file) = &self.sqlite_file {
            file.check().map_err(|why| format!("database: {why}"))?;
        }
        let pending = tokio::time::timeout(self.timeout, store::db::pending_migrations(&self.db));
        match pending.await {
            Err(_) => return Err(format!("database: no answer within {:?}", self.timeout)),
            Ok(Err(error)) => return Err(format!("database: {error}")),
            Ok(Ok(0)) => {}
            Ok(Ok(pending)) => return Err(format!("database: {pending} migration(s) not applied")),
        }
        self.limiter
            .ping()
            .await
            .map_err(|error| format!("redis: {error}"))
    }
}

/// The process-wide recorder, installed on first use; a caller arriving
/// while another installs it waits for that one's handle.
fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .and_then(PrometheusBuilder::install_recorder)
                .inspect(|_| describe())
                .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Where start-up is, as the endpoint answers it.
#[derive(Clone)]
enum Phase {
    /// Start-up under way: `/readyz` answers 503 with this step.
    Starting(&'static str),
    /// Serving: `/readyz` follows [`Readiness`]; `/metrics` samples the
    /// gauges of this context.
    Up(Arc<(domain::Context, Readiness)>),
}

/// The endpoint serving `GET /metrics`, `/livez` and `/readyz` from the
/// moment it is bound, so that an instance waiting at start-up answers its
/// probes; it stops when dropped.
pub struct Endpoint {
    addr: SocketAddr,
    phase: watch::Sender<Phase>,
    stop: CancellationToken,
}

impl Endpoint {
    /// Starts serving on `listener`; `/readyz` answers 503 until [`Self::up`].
    pub fn start(listener: tokio::net::TcpListener) -> anyhow::Result<Self> {
        let handle = handle()?;
        let addr = listener.local_addr()?;
        let (phase, watched) = watch::channel(Phase::Starting("starting up"));
        let scraped = watched.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let (handle, phase) = (handle.clone(), scraped.borrow().clone());
                    async move {
                        if let Phase::Up(up) = phase {
                            let (ctx, readiness) = &*up;
                            sample(ctx, &readiness.limiter.metrics).await;
                        }
                        handle.render()
                    }
                }),
            )
            .route("/livez", axum::routing::get(|| async { "live\n" }))
            .route(
                "/readyz",
                axum::routing::get(move || {
                    let phase = watched.borrow().clone();
                    async move {
                        let ready = match phase {
                            Phase::Starting(step) => Err(step.to_string()),
                            Phase::Up(up) => up.1.check().await,
                        };
                        match ready {
                            Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                            Err(reason) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("not ready: {reason}\n"),
                            ),
                        }
                    }
                }),
            );
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "metrics endpoint stopped");
            }
        });
        tracing::info!(%addr, "metrics on http://{addr}/metrics");
        Ok(Self { addr, phase, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The step start-up is at, the reason `/readyz` gives meanwhile.
    pub fn starting(&self, step: &'static str) {
        self.phase.send_replace(Phase::Starting(step));
    }

    /// Start-up is over: `/readyz` follows `readiness` from now on.
    pub fn up(&self, ctx: domain::Context, readiness: Readiness) {
        self.phase
            .send_replace(Phase::Up(Arc::new((ctx, readiness))));
    }

    /// Stops serving once `shutdown` is cancelled (or this is dropped).
    pub fn stop_on(&self, shutdown: CancellationToken) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => stop.cancel(),
                () = stop.cancelled() => {}
            }
        });
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The `# HELP` of every metric gardien exports, wherever it is counted.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "gardien_rpc_requests_total",
        "RPCs finished, by service, method and gRPC code (unknown methods as \"unknown\")."
    );
    describe_histogram!(
        "gardien_rpc_duration_seconds",
        Unit::Seconds,
        "RPC latency, by service, method and gRPC code."
    );
    describe_counter!("gardien_logins_total", "Login attempts, by outcome.");
    describe_counter!(
        "gardien_password_suspensions_total",
        "Passwords suspended, by reason."
    );
    describe_counter!(
        "gardien_password_resets_total",
        "Passwords reset with a reset link."
    );
    describe_counter!(
        "gardien_auth_cache_lookups_total",
        "Lookups of the session and credential cache, by kind and result (hit, miss)."
    );
    describe_gauge!(
        "gardien_hashing_queue_depth",
        "Password hashing jobs waiting for a hashing thread."
    );
    describe_gauge!(
        "gardien_hashing_queue_bound",
        "Hashing jobs allowed to wait (password.hashing_queue)."
    );
    describe_counter!(
        "gardien_rate_limited_total",
        "Calls refused with RATE_LIMITED by this instance."
    );
    describe_counter!(
        "gardien_rate_limit_backend_errors_total",
        "Rate-limit checks the backend (Redis) did not answer in time or failed."
    );
    describe_counter!(
        "gardien_rate_limit_failed_open_total",
        "Calls let through because the backend failed and their class fails open."
    );
    describe_counter!(
        "gardien_rate_limit_failed_closed_total",
        "Calls refused because the backend failed and their class fails closed."
    );
    describe_counter!(
        "gardien_outbox_delivery_attempts_total",
        "E-mail delivery attempts by this instance's outbox worker."
    );
    describe_counter!(
        "gardien_outbox_delivered_total",
        "E-mails accepted by the transport from this instance's outbox worker."
    );
    describe_counter!(
        "gardien_outbox_delivery_failures_total",
        "Failed e-mail delivery attempts (transient or permanent) of this instance."
    );
    describe_counter!(
        "gardien_outbox_abandoned_total",
        "E-mails given up on by this instance (permanent rejection or attempts exhausted)."
    );
    describe_gauge!(
        "gardien_outbox_messages",
        "Outbox e-mails of every instance, by status (queued, failed)."
    );
    describe_gauge!(
        "gardien_outbox_oldest_pending_seconds",
        Unit::Seconds,
        "Age of the oldest e-mail waiting to be sent."
    );
    describe_gauge!(
        "gardien_db_pool_connections",
        "Database connections of this instance's pool."
    );
    describe_gauge!(
        "gardien_db_pool_idle_connections",
        "Idle database connections of this instance's pool."
    );
    process::describe();
}

/// Gauges read at scrape time, and the counters kept by this instance's
/// outbox worker and rate limiter.
async fn sample(ctx: &domain::Context, rate_limits: &RateLimitMetrics) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::gauge!("gardien_hashing_queue_depth").set(ctx.hasher.queue_depth() as f64);
    metrics::gauge!("gardien_hashing_queue_bound").set(ctx.hasher.queue_bound() as f64);
    let sent = ctx.outbox_metrics.snapshot();
    // The atomics only grow: `absolute` sets each counter to its value.
    for (name, value) in [
        (
            "gardien_rate_limited_total",
            rate_limits.limited.load(Relaxed),
        ),
        (
            "gardien_rate_limit_backend_errors_total",
            rate_limits.backend_errors.load(Relaxed),
        ),
        (
            "gardien_rate_limit_failed_open_total",
            rate_limits.failed_open.load(Relaxed),
        ),
        (
            "gardien_rate_limit_failed_closed_total",
            rate_limits.failed_closed.load(Relaxed),
        ),
        ("gardien_outbox_delivery_attempts_total", sent.attempts),
        ("gardien_outbox_delivered_total", sent.delivered),
        ("gardien_outbox_delivery_failures_total", sent.failures),
        ("gardien_outbox_abandoned_total", sent.abandoned),
    ] {
        metrics::counter!(name).absolute(value);
    }
    process::sample();
    if let Ok(depth) = store::outbox::depth(&ctx.db, ctx.now()).await {
        metrics::gauge!("gardien_outbox_messages", "status" => "queued").set(depth.queued as f64);
        metrics::gauge!("gardien_outbox_messages", "status" => "failed").set(depth.failed as f64);
        metrics::gauge!("gardien_outbox_oldest_pending_seconds")
            .set(depth.oldest_pending_age_ms as f64 / 1000.0);
    }
    let (size, idle) = match ctx.db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = ctx.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = ctx.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    metrics::gauge!("gardien_db_pool_connections").set(f64::from(size));
    metrics::gauge!("gardien_db_pool_idle_connections").set(idle as f64);
}

#[cfg(test)]
mod tests {
    /// Servers built at the same moment in one process (the tests) share
    /// the recorder: every one gets it, none is refused for installing it
    /// second.
    #[test]
    fn servers_started_together_all_get_the_recorder() {
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        super::handle().map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for handle in handles {
                assert_eq!(handle.join().unwrap(), Ok(()));
            }
        });
    }
}
