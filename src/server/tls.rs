//! TLS on the gRPC listener: the certificate pair read from `tls.cert_file`
//! and `tls.key_file`, swapped for new connections when the files change
//! (or on `SIGHUP`) while connections in flight keep theirs; a pair that
//! does not load is refused with a log line and the previous one stays.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
    RootCertStore, ServerConfig,
};
use tokio::net::TcpStream;
use tokio_rustls::{server::TlsStream, TlsAcceptor};
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
            rustls::pki_types::pem::Error::Io(error) => {
                return anyhow::anyhow!("`tls.key_file` {}: {error}", key_file.display())
            }
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

/// A leaf every client would refuse (a CA's certificate, one not for
/// servers, one outside its validity period) is refused, so that the
/// previous pair stays (or start-up says why); one close to its end is
/// warned about.
fn check_validity(cert_file: &Path, leaf: &CertificateDer<'_>) -> anyhow::Result<()> {
    use x509_parser::time::ASN1Time;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf).map_err(|error| {
        anyhow::anyhow!(
            "`tls.cert_file` {}: the first certificate does not parse: {error}",
            cert_file.display()
        )
    })?;
    if leaf
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|constraints| constraints.value.ca)
    {
        anyhow::bail!(
            "`tls.cert_file` {}: the first certificate is a CA's, not the server's",
            cert_file.display()
        );
    }
    if let Ok(Some(usage)) = leaf.extended_key_usage() {
        if !usage.value.server_auth && !usage.value.any {
            anyhow::bail!(
                "`tls.cert_file` {}: the certificate is not for servers (no serverAuth usage)",
                cert_file.display()
            );
        }
    }
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

/// What the watched files held when last loaded: any rewrite changes it,
/// whatever the size or modification time.
type Stamp = Option<[u8; 32]>;

fn stamp(path: &Path) -> Stamp {
    use sha2::Digest;
    let bytes = std::fs::read(path).ok()?;
    Some(sha2::Sha256::digest(bytes).into())
}

/// The listener's TLS: the server configuration (replaced whole when the
/// client CA file changes) and the pair it serves.
#[derive(Clone)]
pub struct Tls {
    server: Arc<RwLock<Arc<ServerConfig>>>,
    current: Arc<Current>,
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    /// The files as they were read at start-up (taken before reading them:
    /// a change in between is seen as one).
    loaded: Stamps,
}

type Stamps = (Stamp, Stamp, Stamp);

fn stamps(cert_file: &Path, key_file: &Path, client_ca_file: Option<&Path>) -> Stamps {
    (
        stamp(cert_file),
        stamp(key_file),
        client_ca_file.and_then(stamp),
    )
}

fn server_config(
    current: &Arc<Current>,
    client_ca_file: Option<&Path>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let builder = match client_ca_file {
        Some(ca_file) => builder.with_client_cert_verifier(client_verifier(ca_file)?),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(current.clone());
    // h2 for gRPC; http/1.1 for gRPC-Web from browsers.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

impl Tls {
    /// `None` when the listener speaks plaintext; an error naming the
    /// setting when a file does not load.
    pub fn from_config(config: &TlsConfig) -> anyhow::Result<Option<Self>> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let loaded = stamps(cert_file, key_file, config.client_ca_file.as_deref());
        let current = Arc::new(Current(RwLock::new(load_pair(cert_file, key_file)?)));
        let server = server_config(&current, config.client_ca_file.as_deref())?;
        Ok(Some(Self {
            server: Arc::new(RwLock::new(server)),
            current,
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: config.client_ca_file.clone(),
            loaded,
        }))
    }

    /// The handshake of one accepted connection, bounded in time; `None`
    /// when it fails (logged at debug: any client can cause it).
    pub async fn handshake(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let server = self.server.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |server| server.clone(),
        );
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(server).accept(stream))
            .await
        {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }

    /// Loads the client CA file again; the previous CAs stay when it fails.
    fn reload_client_ca(&self) {
        let Some(ca_file) = &self.client_ca_file else {
            return;
        };
        match server_config(&self.current, Some(ca_file)) {
            Ok(server) => {
                match self.server.write() {
                    Ok(mut current) => *current = server,
                    Err(poisoned) => *poisoned.into_inner() = server,
                }
                tracing::info!(
                    client_ca_file = %ca_file.display(),
                    "client CA certificates loaded: new connections are checked against them"
                );
            }
            Err(error) => tracing::error!(
                %error,
                "client CA certificates not reloaded: the previous ones still apply"
            ),
        }
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
        let stamps = || {
            stamps(
                &self.cert_file,
                &self.key_file,
                self.client_ca_file.as_deref(),
            )
        };
        // From the files as loaded: a change made before this task first
        // runs is seen too.
        let mut seen = self.loaded;
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
                    self.reload_client_ca();
                }
                () = tokio::time::sleep(WATCH_INTERVAL) => {
                    let now = stamps();
                    if now.0 != seen.0 || now.1 != seen.1 {
                        self.reload();
                    }
                    if now.2 != seen.2 {
                        self.reload_client_ca();
                    }
                    seen = now;
                }
            }
        }
    }
}
