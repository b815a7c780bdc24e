//! Random bearer secrets (256 bits from the OS CSPRNG), stored only as their
//! SHA-256 and looked up by that hash (so no secret is ever compared).
//!
//! Each kind carries a short prefix so that a leaked secret is recognisable
//! by scanners and routed to the right table by the authentication layer.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::{rngs::OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Service, agent and security-team credentials.
    Credential,
    /// Customer sessions.
    Session,
    /// Password-reset links.
    Reset,
    /// Pending 2FA login challenges.
    Challenge,
    /// "This wasn't me" links in security notices.
    Report,
    /// Confirmation links sent to a new contact e-mail.
    EmailConfirmation,
    /// "Cancel, this was not me" links of a scheduled support factor reset.
    FactorResetCancel,
    /// WebAuthn ceremonies in progress (passkey registration and sign-in).
    PasskeyCeremony,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Credential => "gdc_",
            TokenKind::Session => "gds_",
            TokenKind::Reset => "gdr_",
            TokenKind::Challenge => "gdl_",
            TokenKind::Report => "gdx_",
            TokenKind::EmailConfirmation => "gde_",
            TokenKind::FactorResetCancel => "gdf_",
            TokenKind::PasskeyCeremony => "gdp_",
        }
    }

    /// The kind a presented secret claims to be, from its prefix.
    pub fn of(secret: &str) -> Option<TokenKind> {
        [
            TokenKind::Credential,
            TokenKind::Session,
            TokenKind::Reset,
            TokenKind::Challenge,
            TokenKind::Report,
            TokenKind::EmailConfirmation,
            TokenKind::FactorResetCancel,
            TokenKind::PasskeyCeremony,
        ]
        .into_iter()
        .find(|kind| secret.starts_with(kind.prefix()))
    }
}

/// Length of a token: prefix plus 43 base64url characters.
pub const TOKEN_LEN: usize = 4 + 43;

/// A fresh secret of the given kind; the caller shows it once and stores
/// only [`hash`] of it.
pub fn generate(kind: TokenKind) -> SecretString {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(format!(
        "{}{}",
        kind.prefix(),
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn hash_secret(secret: &SecretString) -> String {
    hash(secret.expose_secret())
}

/// Whether `presented` has the shape of a token of `kind` (cheap check
/// before any database look-up).
pub fn well_formed(kind: TokenKind, presented: &str) -> bool {
    presented.len() == TOKEN_LEN
        && presented.starts_with(kind.prefix())
        && presented[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate(TokenKind::Session);
        let b = generate(TokenKind::Session);
        assert!(well_formed(TokenKind::Session, a.expose_secret()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(TokenKind::of(a.expose_secret()), Some(TokenKind::Session));
        assert!(!well_formed(TokenKind::Reset, a.expose_secret()));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        assert!(!well_formed(TokenKind::Session, "gds_short"));
        assert!(!well_formed(
            TokenKind::Session,
            &format!("gds_{}", "!".repeat(43))
        ));
        assert!(!well_formed(TokenKind::Session, &"é".repeat(24)));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    const KINDS: [TokenKind; 6] = [
        TokenKind::Credential,
        TokenKind::Session,
        TokenKind::Reset,
        TokenKind::Challenge,
        TokenKind::Report,
        TokenKind::EmailConfirmation,
    ];

    fn presented() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "gd[a-z]_[A-Za-z0-9_!+/=é-]{0,60}",
            "(gdc|gds|gdr|gdl|gdx|gde)_[A-Za-z0-9_-]{43}",
            "\\PC{0,100}",
        ]
    }

    proptest! {
        #[test]
        fn a_presented_secret_is_classified_without_panicking(secret in presented()) {
            let claimed = TokenKind::of(&secret);
            for kind in KINDS {
                let formed = well_formed(kind, &secret);
                // Well formed for a kind only with that kind's prefix, at the exact length.
                prop_assert!(!formed || (claimed == Some(kind) && secret.len() == TOKEN_LEN));
            }
            prop_assert_eq!(hash(&secret).len(), 64);
        }

        #[test]
        fn generated_secrets_are_well_formed_for_their_kind_only(index in 0usize..6) {
            let kind = KINDS[index];
            let secret = generate(kind);
            let secret = secret.expose_secret();
            prop_assert_eq!(TokenKind::of(secret), Some(kind));
            for other in KINDS {
                prop_assert_eq!(well_formed(other, secret), other == kind);
            }
        }
    }
}
