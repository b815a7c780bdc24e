//! TLS on the gRPC listener: the certificate pair read from `tls.cert_file`
//! and `tls.key_file`, swapped for new connections when the files change
//! (or on `SIGHUP`) while connections in flight keep theirs; a pair that
//! does not load is refused with a log line and the previous one stays.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
    RootCertStore, ServerConfig,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{server::TlsStream, TlsAcceptor};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;

/// How often the certificate files are looked at for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// A certificate this close to its end is warned about at each load.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The pair in the two files, checked: a chain, a key the provider reads,
/// and that key belonging to the chain's first certificate.
fn load_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| anyhow::anyhow!("`tls.cert_file` {}: {error}", cert_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "`tls.cert_file` {}: no PEM certificate in it",
            cert_file.display()
        );
    }
    check_validity(cert_file, &chain[0])?;
    // The key's own error could quote key material: only its kind is told.
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| {
        let why = match error {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it",
            rustls::pki_types::pem::Error::Io(_) => "cannot be read",
            _ => "not a PEM private key",
        };
        anyhow::anyhow!("`tls.key_file` {}: {why}", key_file.display())
    })?;
    let pair = CertifiedKey::from_der(chain, key, &provider()).map_err(|error| {
        anyhow::anyhow!(
            "`tls.key_file` {} does not go with `tls.cert_file` {}: {error}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(Arc::new(pair))
}

/// A leaf outside its validity period would fail every client's check:
/// refused, so that the previous pair stays (or start-up says why); one
/// close to its end is warned about.
fn check_validity(cert_file: &Path, leaf: &CertificateDer<'_>) -> anyhow::Result<()> {
    use x509_parser::time::ASN1Time;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf).map_err(|error| {
        anyhow::anyhow!(
            "`tls.cert_file` {}: the first certificate does not parse: {error}",
            cert_file.display()
        )
    })?;
    let validity = leaf.validity();
    let now = ASN1Time::now();
    if now > validity.not_after {
        anyhow::bail!(
            "`tls.cert_file` {}: the certificate expired on {}",
            cert_file.display(),
            validity.not_after
        );
    }
    if now < validity.not_before {
        anyhow::bail!(
            "`tls.cert_file` {}: the certificate is not valid before {}",
            cert_file.display(),
            validity.not_before
        );
    }
    if validity.not_after.timestamp() - now.timestamp() < EXPIRY_WARNING.as_secs() as i64 {
        tracing::warn!(
            cert_file = %cert_file.display(),
            not_after = %validity.not_after,
            "the TLS certificate expires within a week"
        );
    }
    Ok(())
}

fn client_verifier(
    ca_file: &Path,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .map_err(|error| anyhow::anyhow!("`tls.client_ca_file` {}: {error}", ca_file.display()))?
    {
        let cert = cert.map_err(|error| {
            anyhow::anyhow!("`tls.client_ca_file` {}: {error}", ca_file.display())
        })?;
        roots.add(cert).map_err(|error| {
            anyhow::anyhow!("`tls.client_ca_file` {}: {error}", ca_file.display())
        })?;
    }
    if roots.is_empty() {
        anyhow::bail!(
            "`tls.client_ca_file` {}: no PEM certificate in it",
            ca_file.display()
        );
    }
    // Customers' front ends come without a certificate: asked, not required.
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|error| anyhow::anyhow!("`tls.client_ca_file` {}: {error}", ca_file.display()))
}

/// The pair new connections get; replaced whole when the files change.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |pair| pair.clone(),
        ))
    }
}

/// What a file looked like when last loaded: a rewrite changes one of these.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// The listener's TLS: the acceptor and the pair it serves.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Tls {
    /// `None` when the listener speaks plaintext; an error naming the
    /// setting when a file does not load.
    pub fn from_config(config: &TlsConfig) -> anyhow::Result<Option<Self>> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let current = Arc::new(Current(RwLock::new(load_pair(cert_file, key_file)?)));
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS protocol versions")?;
        let builder = match &config.client_ca_file {
            Some(ca_file) => builder.with_client_cert_verifier(client_verifier(ca_file)?),
            None => builder.with_no_client_auth(),
        };
        let mut server = builder.with_cert_resolver(current.clone());
        // h2 for gRPC; http/1.1 for gRPC-Web from browsers.
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            current,
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        }))
    }

    /// Loads the files again; the old pair stays when the new one fails.
    fn reload(&self) {
        match load_pair(&self.cert_file, &self.key_file) {
            Ok(pair) => {
                match self.current.0.write() {
                    Ok(mut current) => *current = pair,
                    Err(poisoned) => *poisoned.into_inner() = pair,
                }
                tracing::info!(
                    cert_file = %self.cert_file.display(),
                    "TLS certificate loaded: new connections get it"
                );
            }
            Err(error) => tracing::error!(
                %error,
                "TLS certificate not reloaded: the previous one is still served"
            ),
        }
    }

    /// Reloads when either file changes or on `SIGHUP`, until `stop`.
    pub async fn watch(self, stop: CancellationToken) {
        let stamps = || (stamp(&self.cert_file), stamp(&self.key_file));
        let mut seen = stamps();
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hangup_received = async {
                #[cfg(unix)]
                if let Some(hangup) = hangup.as_mut() {
                    hangup.recv().await;
                    return;
                }
                std::future::pending::<()>().await;
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = hangup_received => {
                    tracing::info!("SIGHUP: reloading the TLS certificate");
                    seen = stamps();
                    self.reload();
                }
                () = tokio::time::sleep(WATCH_INTERVAL) => {
                    let now = stamps();
                    if now != seen {
                        seen = now;
                        self.reload();
                    }
                }
            }
        }
    }

    /// Accepted connections after their handshake, as tonic serves them:
    /// handshakes run apart, so one slow client holds up no other.
    pub fn incoming(
        &self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(128);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of descriptors and the like: wait, never spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small frames go out at once (see the plaintext listener).
                let _ = stream.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send(Ok(stream)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}
