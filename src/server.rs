//! Server assembly in one place: database and migrations, the domain
//! context, the outbox worker, health and reflection, the tower stack, and
//! graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::{server::HealthReporter, ServingStatus};
use tower::ServiceBuilder;

use crate::{
    clock::{SharedClock, SystemClock},
    config::Config,
    crypto::{
        password::{Argon2Params, HashingPool},
        secretbox::Sealer,
    },
    domain::{self, password::PasswordPolicy},
    grpc::{account_security::AccountSecurity, support::Support},
    mail::{outbox::Worker, transport::Transport},
    metrics::Readiness,
    middleware::{
        auth::AuthLayer,
        catch_panic::CatchPanicLayer,
        client_address::ClientAddressLayer,
        cors::BrowserCorsLayer,
        load_shed::LoadShedLayer,
        locale::LocaleLayer,
        rate_limit::{RateLimitLayer, RateLimitMetrics, RateLimiter},
        request_id::RequestIdLayer,
        trace::TraceLayer,
    },
    proto::{
        accountsecurity::v1::account_security_service_server::AccountSecurityServiceServer,
        support::v1::support_service_server::SupportServiceServer, FILE_DESCRIPTOR_SET,
    },
    store::db,
};

mod listener;
mod preflight;
mod tls;

pub use preflight::preflight;
use tls::Tls;

/// A built server: listening, migrated, ready to `run`.
pub struct Application {
    listener: TcpListener,
    /// The listener's TLS, when `tls.cert_file` and `tls.key_file` are set.
    tls: Option<Tls>,
    /// The metrics endpoint, serving (probes included) from the start of
    /// `build`, so that an instance waiting at start-up answers `/livez`.
    metrics: Option<crate::metrics::Endpoint>,
    readiness: Readiness,
    ctx: domain::Context,
    config: Arc<Config>,
    limiter: Arc<RateLimiter>,
}

fn argon2_params(config: &Config) -> Argon2Params {
    Argon2Params {
        memory_kib: config.password.argon2_memory_kib,
        iterations: config.password.argon2_iterations,
        parallelism: config.password.argon2_parallelism,
    }
}

/// Builds the domain context from a configuration and a connected database.
pub fn context(
    config: Arc<Config>,
    db: DatabaseConnection,
    clock: SharedClock,
) -> anyhow::Result<domain::Context> {
    let params = argon2_params(&config);
    let hasher = HashingPool::new(
        params,
        config.hashing_workers(),
        config.password.hashing_queue,
    )
    .map_err(|error| anyhow::anyhow!("password hashing: {error}"))?;
    let policy = PasswordPolicy::new(config.password.min_chars, config.password.max_chars)
        .map_err(|error| anyhow::anyhow!("password policy: {error}"))?;
    let sealer = sealer(&config)?;
    let auth_cache = Arc::new(domain::auth_cache::AuthCache::new(
        db.clone(),
        config.session.cache_capacity,
    ));
    let background = Arc::new(domain::background::Background::new(
        config.background.queue_capacity,
    ));
    Ok(domain::Context {
        sealer,
        db,
        clock,
        hasher,
        policy,
        config,
        auth_cache,
        outbox_signal: Arc::new(tokio::sync::Notify::new()),
        outbox_metrics: Arc::new(crate::mail::metrics::OutboxMetrics::default()),
        background,
    })
}

/// The sealing keys in effect: `totp.encryption_keys` (the first seals),
/// else `totp.encryption_key`, else the key file (created if missing).
pub fn sealer(config: &Config) -> anyhow::Result<Sealer> {
    use secrecy::ExposeSecret;
    let context = |key: String| move |error| anyhow::Error::new(error).context(key);
    if !config.totp.encryption_keys.is_empty() {
        let keys = config
            .totp
            .encryption_keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                Sealer::from_base64(key.expose_secret())
                    .map_err(context(format!("`totp.encryption_keys[{i}]`")))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Sealer::ring(keys).map_err(context("`totp.encryption_keys`".into()));
    }
    match &config.totp.encryption_key {
        Some(key) => Sealer::from_base64(key.expose_secret())
            .map_err(context("`totp.encryption_key`".into())),
        None => {
            crate::store::files::create_private_dir_all(&config.data_dir)?;
            Sealer::load_or_create_key_file(&config.totp_key_file())
                .map_err(context("`totp.key_file`".into()))
        }
    }
}

impl Application {
    /// Connects, migrates and binds `listen_addr` (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        // A configuration serve cannot run with is refused before anything
        // is written or connected.
        preflight(&config)?;
        let tls = Tls::from_config(&config.tls)?;
        let limiter = Arc::new(RateLimiter::new(&config.rate_limit, clock.clone())?);
        // From here on a start-up that waits (on the database, on another
        // instance's migration) answers `/livez`, and `/readyz` says why not.
        let metrics = match config.metrics_addr {
            Some(addr) => Some(crate::metrics::Endpoint::start(
                TcpListener::bind(addr).await.map_err(|error| {
                    anyhow::anyhow!("cannot listen on metrics_addr {addr}: {error}")
                })?,
            )?),
            None => None,
        };
        let step = |step| {
            if let Some(metrics) = &metrics {
                metrics.starting(step);
            }
        };
        step("database: connecting");
        let db = db::connect(&config).await?;
        // The key file of a first start is made once the database answers
        // (a start-up refused before leaves nothing behind), and before the
        // migrations (one refused over the key leaves the database as it was).
        sealer(&config)?;
        step("migrations pending");
        let applied = db::migrate(&db).await?;
        tracing::info!(applied, "database ready");
        let ctx = context(config.clone(), db, clock)?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", config.listen_addr))?;
        let readiness = Readiness {
            db: ctx.db.clone(),
            sqlite_file: db::SqliteFile::opened(&config),
            limiter: limiter.clone(),
            timeout: Duration::from_secs(config.database.connect_timeout_secs),
        };
        if let Some(metrics) = &metrics {
            metrics.up(ctx.clone(), readiness.clone());
        }
        Ok(Self {
            listener,
            tls,
            metrics,
            readiness,
            ctx,
            config,
            limiter,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.config.listen_addr)
    }

    /// Where the metrics endpoint listens, when `metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(crate::metrics::Endpoint::addr)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn context(&self) -> &domain::Context {
        &self.ctx
    }

    /// Counters of the rate limiter (calls limited, backend failures).
    pub fn rate_limit_metrics(&self) -> Arc<RateLimitMetrics> {
        self.limiter.metrics.clone()
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run(self) -> anyhow::Result<()> {
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            trigger.cancel();
        });
        self.run_until(shutdown).await
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight calls for
    /// at most `shutdown_grace_secs`.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            tls,
            metrics,
            readiness,
            ctx,
            config,
            limiter,
        } = self;
        let addr = listener.local_addr()?;

        let (health, health_service) = tonic_health::server::health_reporter();
        let ready = readiness.check().await;
        if let Err(reason) = &ready {
            tracing::warn!(%reason, "not ready: not serving until it is");
        }
        set_health(&health, serving_status(ready.is_ok())).await;
        let probe_stop = CancellationToken::new();
        let probe = tokio::spawn(probe_readiness(
            readiness.clone(),
            ready.is_ok(),
            health.clone(),
            probe_stop.clone(),
        ));
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let worker = Worker {
            db: ctx.db.clone(),
            clock: ctx.clock.clone(),
            config: config.mail.clone(),
            sealer: ctx.sealer.clone(),
            transport: Transport::from_config(&config.mail, config.mail_dir())?,
            signal: ctx.outbox_signal.clone(),
            metrics: ctx.outbox_metrics.clone(),
        };
        if let Some(metrics) = &metrics {
            metrics.stop_on(shutdown.clone());
        }
        let worker_stop = CancellationToken::new();
        let worker_task = tokio::spawn(worker.run(worker_stop.clone()));
        let factor_resets =
            tokio::spawn(domain::factor_reset::run(ctx.clone(), worker_stop.clone()));
        let rotation = config.key_rotation.online.then(|| {
            tokio::spawn(domain::keys::run_online(
                ctx.db.clone(),
                ctx.sealer.clone(),
                config.key_rotation.clone(),
                worker_stop.clone(),
            ))
        });
        let background_stop = CancellationToken::new();
        let background = ctx.background.clone();
        let background_workers = config.background.workers;
        let background_stopped = background_stop.clone();
        let background_task = tokio::spawn(async move {
            background.run(background_workers, background_stopped).await;
        });
        let sweeper = tokio::spawn(domain::pending::run(
            ctx.clone(),
            background_stop.clone(),
            domain::recovery::perform,
        ));

        let max_message = config.max_message_bytes;
        let account_security = AccountSecurityServiceServer::new(AccountSecurity::new(ctx.clone()))
            .max_decoding_message_size(max_message);
        let support = SupportServiceServer::new(Support::new(ctx.clone()))
            .max_decoding_message_size(max_message);

        let stack = ServiceBuilder::new()
            .layer(BrowserCorsLayer::new(&config.cors_allowed_origins))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(RequestIdLayer)
            .layer(LocaleLayer)
            .layer(ClientAddressLayer::new(
                config.rate_limit.trusted_networks(),
            ))
            .layer(TraceLayer)
            .layer(CatchPanicLayer)
            .layer(LoadShedLayer::new(config.max_concurrent_requests))
            .layer(RateLimitLayer::per_address(limiter.clone()))
            .layer(AuthLayer::new(ctx.clone()))
            .layer(RateLimitLayer::per_principal(limiter))
            .into_inner();

        match &tls {
            Some(_) => {
                tracing::info!(%addr, "gardien listening (gRPC, health, reflection) over TLS")
            }
            None if addr.ip().is_loopback() => {
                tracing::info!(%addr, "gardien listening (gRPC, health, reflection) in plaintext on loopback")
            }
            None => tracing::warn!(
                %addr,
                "gardien listening in plaintext beyond loopback (tls.plaintext_allowed): \
                 whatever is in front must terminate TLS"
            ),
        }
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let draining = shutdown.clone();
        let probe_stop_on_exit = probe_stop.clone();
        let health_on_stop = health.clone();
        let router = Server::builder()
            .accept_http1(true)
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .layer(stack)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(account_security)
            .add_service(support);
        let stopped = async move {
            draining.cancelled().await;
            tracing::info!("shutdown requested: refusing new calls, draining in-flight ones");
            // The probe stops first, so that it cannot report SERVING again.
            probe_stop.cancel();
            let _ = probe.await;
            set_health(&health_on_stop, ServingStatus::NotServing).await;
        };
        let limits = listener::Limits::new(
            config.max_connections,
            config.max_connections_per_address,
            Duration::from_secs(config.connection_idle_secs),
            config.rate_limit.trusted_networks(),
        );
        let server: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match tls {
            None => {
                let incoming = listener::plaintext(listener, limits);
                Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
            }
            Some(tls) => {
                tokio::spawn(tls.clone().watch(shutdown.clone()));
                let incoming = listener::tls(listener, tls, limits);
                Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
            }
        };
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result.map_err(anyhow::Error::from),
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over, closing remaining calls");
                Ok(())
            }
        };
        probe_stop_on_exit.cancel();
        // Requests answered OK are still in the queue: they are done before
        // the outbox worker stops (their e-mails wait in the outbox if the
        // worker is gone by then).
        background_stop.cancel();
        let _ = sweeper.await;
        if tokio::time::timeout(grace, background_task).await.is_err() {
            tracing::error!("background work not finished within the grace period");
        }
        worker_stop.cancel();
        let _ = worker_task.await;
        let _ = factor_resets.await;
        if let Some(rotation) = rotation {
            let _ = rotation.await;
        }
        tracing::info!("gardien stopped");
        result
    }
}

/// How often readiness is checked so that health follows it.
const READINESS_PROBE_INTERVAL: Duration = Duration::from_millis(500);

fn serving_status(ready: bool) -> ServingStatus {
    if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// The overall status (service "") and both gardien services.
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health
        .set_service_status(
            <AccountSecurityServiceServer<AccountSecurity> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <SupportServiceServer<Support> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Checks [`Readiness`] every [`READINESS_PROBE_INTERVAL`] and keeps health
/// in step: `NOT_SERVING` while the database does not answer (or lacks a
/// migration) or the configured Redis does not answer `PING` (load
/// balancers and orchestrators then send calls elsewhere), `SERVING` again
/// as soon as both do. The pool and the Redis client reconnect on their
/// own; nothing restarts.
async fn probe_readiness(
    readiness: Readiness,
    mut serving: bool,
    health: HealthReporter,
    stop: CancellationToken,
) {
    loop {
        let checked = tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(READINESS_PROBE_INTERVAL) => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    checked = readiness.check() => checked,
                }
            }
        };
        if checked.is_ok() == serving {
            continue;
        }
        serving = checked.is_ok();
        match checked {
            Ok(()) => tracing::info!("ready again: serving"),
            Err(reason) => tracing::warn!(%reason, "not ready: not serving until it is"),
        }
        set_health(&health, serving_status(serving)).await;
    }
}

/// Reflection over the gardien services, health and reflection itself, and
/// the `google.rpc` error details so that clients such as grpcurl decode them.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
