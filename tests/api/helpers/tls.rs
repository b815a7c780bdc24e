//! Certificates made by the tests (a CA and the leaves it signs) and a
//! server that speaks TLS with them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use super::*;

/// A certificate authority of the tests' own.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

/// A leaf signed by a [`TestCa`]: its PEM chain (leaf, then the CA) and key.
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap();
        Self { issuer, key_pem }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server leaf for `localhost` and 127.0.0.1.
    pub fn server_leaf(&self) -> Leaf {
        self.leaf(vec!["localhost".into(), "127.0.0.1".into()])
    }

    pub fn leaf(&self, names: Vec<String>) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    /// The CA's own certificate and key, as a pair no server should use.
    pub fn own_pair(&self) -> Leaf {
        Leaf {
            chain_pem: self.issuer.pem(),
            key_pem: self.key_pem.clone(),
            der: self.issuer.der().to_vec(),
        }
    }

    /// A leaf for `localhost` meant for clients only (clientAuth usage).
    pub fn client_only_server_leaf(&self) -> Leaf {
        self.leaf_with(vec!["localhost".into(), "127.0.0.1".into()], |params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        })
    }

    /// A server leaf that expired in 2020.
    pub fn expired_server_leaf(&self) -> Leaf {
        self.leaf_with(vec!["localhost".into(), "127.0.0.1".into()], |params| {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        })
    }

    fn leaf_with(&self, names: Vec<String>, adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        params
            .distinguished_name
            .push(DnType::CommonName, "gardien test");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    /// Writes the chain and the key as `tls.crt` and `tls.key` in `dir`.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, &self.chain_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// A server speaking TLS with a leaf of `ca` whose files are in the
/// returned folder; its clients ([`TestApp::channel`]) trust `ca`.
pub async fn spawn_tls_app_with(
    ca: &TestCa,
    adjust: impl FnOnce(&mut Config),
) -> (TestApp, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = ca.server_leaf().write_to(files.path());
    let mut app = spawn_app_with(|config| {
        config.tls.cert_file = Some(cert);
        config.tls.key_file = Some(key);
        adjust(config);
    })
    .await;
    app.tls_ca = Some(ca.pem());
    (app, files)
}

impl TestCa {
    /// A client leaf whose identity is `uri` (a SPIFFE ID), signed by this CA.
    pub fn client_leaf(&self, uri: &str) -> Leaf {
        self.client_leaf_with(
            vec![rcgen::SanType::URI(uri.try_into().unwrap())],
            "a gardien client",
        )
    }

    /// A client leaf with these alternative names and common name.
    pub fn client_leaf_with(&self, names: Vec<rcgen::SanType>, common_name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl TestApp {
    /// A TLS channel presenting `identity` as its client certificate.
    pub async fn channel_as(
        &self,
        identity: Option<&Leaf>,
    ) -> Result<Channel, tonic::transport::Error> {
        let ca = self.tls_ca.as_ref().expect("a TLS server");
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("localhost");
        if let Some(leaf) = identity {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                &leaf.chain_pem,
                &leaf.key_pem,
            ));
        }
        Channel::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}
