//! `--tls`: a CA and a `localhost` certificate made for the run; the server
//! under test and the echo baseline speak TLS with them, and the clients
//! trust the CA.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub ca_pem: String,
    /// The server's chain, leaf first.
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsMaterial {
    pub fn generate() -> anyhow::Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "gardien-bench CA");
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
            .signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: issuer.pem(),
            cert_pem: format!("{}{}", leaf.pem(), issuer.pem()),
            key_pem: key.serialize_pem(),
        })
    }

    /// The echo baseline's server side.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// An endpoint to `addr` over TLS, trusting the run's CA.
    pub fn endpoint(&self, addr: std::net::SocketAddr) -> anyhow::Result<Endpoint> {
        Ok(Channel::from_shared(format!("https://{addr}"))?.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&self.ca_pem))
                .domain_name("localhost"),
        )?)
    }
}
