//! `[passkeys]`: the WebAuthn relying party.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PasskeyConfig {
    /// The relying-party id: the site's registrable domain (`example.com`).
    /// A passkey is bound to it for good: changing it orphans every passkey.
    pub rp_id: String,
    /// The name authenticators show beside the account.
    pub rp_name: String,
    /// The web origins allowed to run the ceremonies
    /// (`https://account.example.com`); each must be `rp_id` or a subdomain
    /// of it.
    pub origins: Vec<String>,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        Self {
            rp_id: "localhost".into(),
            rp_name: "gardien".into(),
            origins: vec!["http://localhost:8080".into()],
        }
    }
}

impl PasskeyConfig {
    /// The origins, parsed; the key and why when one is not usable.
    pub fn parsed_origins(&self) -> Result<Vec<url::Url>, (&'static str, String)> {
        if self.origins.is_empty() {
            return Err(("passkeys.origins", "must list at least one origin".into()));
        }
        self.origins
            .iter()
            .map(|origin| match url::Url::parse(origin) {
                Ok(url)
                    if matches!(url.scheme(), "https" | "http")
                        && url.host_str().is_some()
                        && url.path() == "/"
                        && url.query().is_none() =>
                {
                    Ok(url)
                }
                _ => Err((
                    "passkeys.origins",
                    format!("{origin:?} is not an http(s) origin (scheme, host and port only)"),
                )),
            })
            .collect()
    }

    /// Checks that webauthn-rs takes the relying party as configured.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.rp_id.is_empty() || self.rp_id.contains(['/', ':', ' ']) {
            return Err((
                "passkeys.rp_id",
                "must be a domain name, e.g. example.com".into(),
            ));
        }
        if self.rp_name.is_empty() || self.rp_name.len() > 64 {
            return Err(("passkeys.rp_name", "must be 1 to 64 bytes".into()));
        }
        let origins = self.parsed_origins()?;
        for origin in &origins {
            webauthn_rs::WebauthnBuilder::new(&self.rp_id, origin).map_err(|_| {
                (
                    "passkeys.origins",
                    format!(
                        "{origin} is not on the relying party {:?} (nor a subdomain of it)",
                        self.rp_id
                    ),
                )
            })?;
        }
        Ok(())
    }
}
