//! The machine's own ceilings, measured in the same run: argon2id on every
//! core, and a bare tonic server answering `grpc.health.v1.Health/Check`.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Barrier,
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use super::load::{self, Stats};
use gardien::crypto::password::{Argon2Params, ServiceVerifier};

#[derive(Debug, Clone, Serialize)]
pub struct Argon2Ceiling {
    pub threads: usize,
    pub verifies: u64,
    pub seconds: f64,
    /// Mean time of one hash on a busy core, in milliseconds.
    pub ms_per_hash: f64,
    /// Hashes per second over every core: the login ceiling.
    pub per_second: f64,
}

impl Argon2Ceiling {
    /// Two timings as one: hashes over their summed time.
    pub fn pooled_with(&self, other: &Argon2Ceiling) -> Argon2Ceiling {
        let verifies = self.verifies + other.verifies;
        let seconds = self.seconds + other.seconds;
        let per_second = verifies as f64 / seconds.max(f64::MIN_POSITIVE);
        Argon2Ceiling {
            threads: self.threads,
            verifies,
            seconds,
            ms_per_hash: self.threads as f64 * 1000.0 / per_second.max(f64::MIN_POSITIVE),
            per_second,
        }
    }
}

/// Which verify a timing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashPath {
    /// The argon2 crate's own: a fresh buffer per hash. The ceiling.
    Plain,
    /// The service's hashing workers' ([`ServiceVerifier`]): one buffer
    /// kept, the stored hash parsed, a constant-time comparison.
    Service,
}

/// Hashes with the configured parameters on `threads` threads for
/// `duration`, every thread starting together once set up.
pub fn argon2_ceiling(
    params: Argon2Params,
    threads: usize,
    duration: Duration,
    path: HashPath,
) -> anyhow::Result<Argon2Ceiling> {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (argon, stop, done, ready) =
                (argon.clone(), stop.clone(), done.clone(), ready.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let service = (path == HashPath::Service).then(|| ServiceVerifier::new(params));
                // Past the barrier even on failure, or the timer would wait forever.
                ready.wait();
                let mut service = service.transpose()?;
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    match service.as_mut() {
                        Some(service) => service.verify()?,
                        None => argon
                            .hash_password_into(
                                b"correct horse battery staple",
                                b"sixteen byte salt",
                                &mut out,
                            )
                            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    let seconds = start.elapsed().as_secs_f64();
    let verifies = done.load(Ordering::Relaxed);
    let per_second = verifies as f64 / seconds;
    Ok(Argon2Ceiling {
        threads,
        verifies,
        seconds,
        ms_per_hash: threads as f64 * 1000.0 / per_second.max(f64::MIN_POSITIVE),
        per_second,
    })
}

/// A bare tonic server (health only) driven like `introspect`, over TLS
/// (tonic's own) when `tls` is given.
pub async fn echo(
    duration: Duration,
    concurrency: usize,
    connections: usize,
    tls: Option<&crate::TlsMaterial>,
) -> anyhow::Result<Stats> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.server())?;
    }
    let server = tokio::spawn(builder.add_service(service).serve_with_incoming_shutdown(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        async move { stopped.cancelled().await },
    ));
    let clients: Vec<_> = load::channels(addr, connections, tls)
        .await?
        .into_iter()
        .map(HealthClient::new)
        .collect();
    let stats = load::drive(
        duration,
        concurrency,
        load::op(move |worker, _| {
            let mut client = clients[worker % clients.len()].clone();
            async move {
                client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code())
            }
        }),
    )
    .await;
    stop.cancel();
    let _ = server.await;
    Ok(stats)
}
