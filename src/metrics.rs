//! Prometheus metrics on a separate HTTP port (`metrics_addr`, off by
//! default): RPCs by method and status, latency histograms, login outcomes,
//! suspensions and resets, rate-limit rejections, hashing-pool queue depth,
//! outbox gauges and database pool usage.
//!
//! Counters are recorded where things happen (`metrics` macros, no-ops
//! while no recorder is installed); gauges are sampled at each scrape.

use std::{net::SocketAddr, sync::Arc, sync::OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{self, Error},
    entity::outbox,
    mail::outbox::{FAILED, PENDING, SENDING},
    middleware::rate_limit::RateLimitMetrics,
};

/// The process-wide recorder, installed on first use.
fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// One finished RPC (`path` as the caller sent it). The `method` label is
/// the path of a method the server has, else "unknown": a label never takes
/// what a caller made up, so made-up paths cannot grow the endpoint without
/// bound.
pub fn rpc(path: &str, code: tonic::Code, seconds: f64) {
    let method = if crate::middleware::auth::allowed_roles(path).is_some() {
        path.to_string()
    } else {
        "unknown".to_string()
    };
    let code = format!("{code:?}");
    metrics::counter!("gardien_rpc_requests_total", "method" => method.clone(), "code" => code)
        .increment(1);
    metrics::histogram!("gardien_rpc_duration_seconds", "method" => method).record(seconds);
}

/// The outcome of a `Login` call.
pub fn login_outcome<T>(result: &Result<T, Error>, challenged: impl FnOnce(&T) -> bool) {
    let outcome = match result {
        Ok(value) if challenged(value) => "challenged",
        Ok(_) => "success",
        Err(error) => match error.kind() {
            Error::InvalidCredentials => "invalid",
            Error::PasswordSuspended { .. } => "suspended",
            Error::LoginBackoff { .. } | Error::Overloaded { .. } => "throttled",
            _ => "error",
        },
    };
    metrics::counter!("gardien_logins_total", "outcome" => outcome).increment(1);
}

pub fn suspension(reason: &'static str) {
    metrics::counter!("gardien_password_suspensions_total", "reason" => reason).increment(1);
}

pub fn password_reset() {
    metrics::counter!("gardien_password_resets_total").increment(1);
}

/// Serves `GET /metrics` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    ctx: domain::Context,
    rate_limits: Arc<RateLimitMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let handle = handle()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on metrics_addr {addr}: {error}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (handle, ctx, rate_limits) = (handle.clone(), ctx.clone(), rate_limits.clone());
            async move {
                sample(&ctx, &rate_limits).await;
                handle.render()
            }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "metrics endpoint stopped");
        }
    });
    tracing::info!(addr = %bound, "metrics on http://{bound}/metrics");
    Ok(bound)
}

/// Gauges read at scrape time.
async fn sample(ctx: &domain::Context, rate_limits: &RateLimitMetrics) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::gauge!("gardien_hashing_queue_depth").set(ctx.hasher.queue_depth() as f64);
    metrics::gauge!("gardien_hashing_queue_bound").set(ctx.hasher.queue_bound() as f64);
    metrics::gauge!("gardien_rate_limited_total").set(rate_limits.limited.load(Relaxed) as f64);
    metrics::gauge!("gardien_rate_limit_backend_errors_total")
        .set(rate_limits.backend_errors.load(Relaxed) as f64);
    for status in [PENDING, SENDING, FAILED] {
        if let Ok(count) = outbox::Entity::find()
            .filter(outbox::Column::Status.eq(status))
            .count(&ctx.db)
            .await
        {
            metrics::gauge!("gardien_outbox_messages", "status" => status).set(count as f64);
        }
    }
    if let Ok(oldest) = outbox::Entity::find()
        .filter(outbox::Column::Status.is_in([PENDING, SENDING]))
        .order_by_asc(outbox::Column::CreatedAt)
        .one(&ctx.db)
        .await
    {
        let age = oldest.map_or(0.0, |row| {
            (ctx.now() - row.created_at).max(0) as f64 / 1000.0
        });
        metrics::gauge!("gardien_outbox_oldest_pending_seconds").set(age);
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
