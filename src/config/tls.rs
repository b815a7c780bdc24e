//! `[tls]`: TLS on the gRPC listener (gRPC-Web on the same port included),
//! optional client certificates, and plaintext only where it stays on the
//! machine unless allowed on purpose.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. With `key_file`, the listener
    /// speaks TLS only; both files are watched and a new valid pair serves
    /// new connections within seconds (also on `SIGHUP`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates are asked for
    /// and checked (mutual TLS). Callers without a certificate still
    /// connect; a credential bound to a certificate identity then fails.
    pub client_ca_file: Option<PathBuf>,
    /// Plaintext on an address other than loopback is refused unless this
    /// is set, for a proxy or service mesh that terminates TLS in front.
    pub plaintext_allowed: bool,
}

impl TlsConfig {
    /// Whether the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }

    /// The settings' own consistency and the plaintext rule for `listen_addr`.
    pub(super) fn check(&self, listen_addr: SocketAddr) -> Result<(), (&'static str, String)> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(("tls.key_file", "is needed with tls.cert_file".into()));
            }
            (None, Some(_)) => {
                return Err(("tls.cert_file", "is needed with tls.key_file".into()));
            }
            _ => {}
        }
        if self.client_ca_file.is_some() && !self.enabled() {
            return Err((
                "tls.client_ca_file",
                "needs tls.cert_file and tls.key_file (client certificates are a TLS feature)"
                    .into(),
            ));
        }
        if !self.enabled() && !listen_addr.ip().is_loopback() && !self.plaintext_allowed {
            return Err((
                "tls",
                format!(
                    "listen_addr {listen_addr} is reachable from other machines and the listener \
                     would speak plaintext: set tls.cert_file and tls.key_file, or \
                     tls.plaintext_allowed = true when a proxy or mesh in front terminates TLS"
                ),
            ));
        }
        Ok(())
    }
}
