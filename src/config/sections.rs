//! The sections of the configuration file and their defaults.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// How long a support reset of the second factor (`ResetTotp`) waits
    /// before it takes effect; the customer can cancel it meanwhile.
    pub factor_reset_delay_secs: u64,
    /// How often each instance looks for factor resets that are due.
    pub factor_reset_poll_ms: u64,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            factor_reset_delay_secs: 24 * 3600,
            factor_reset_poll_ms: 10_000,
        }
    }
}

/// Work done off the response path (reset links, login reminders, failed
/// login records): a queue of fixed size served by a fixed number of workers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackgroundConfig {
    /// Workers, each on at most one pooled connection at a time; fewer than
    /// `database.max_connections`, so calls always find a connection.
    pub workers: usize,
    /// Jobs allowed to wait in memory. Reset and reminder requests are
    /// recorded in the database first: beyond it they wait there, and the
    /// sweeper hands them over as room frees up.
    pub queue_capacity: usize,
    /// How often each instance looks for recorded requests nobody works on
    /// (left by a crash, a full queue or a failed attempt).
    pub rescan_ms: u64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue_capacity: 1024,
            rescan_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InformationCentreConfig {
    /// Event kinds whose dispute ("this wasn't me") suspends the password.
    pub suspend_on_dispute: Vec<String>,
}

impl Default for InformationCentreConfig {
    fn default() -> Self {
        Self {
            suspend_on_dispute: [
                "login_succeeded",
                "order_placed",
                "service_ordered",
                "password_changed",
                "password_reset_completed",
                "totp_enabled",
                "totp_disabled",
                "passkey_added",
                "passkey_removed",
                "contact_details_changed",
                "contact_email_change_requested",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Minimum length in Unicode code points after NFKC (never below 8).
    pub min_chars: usize,
    /// Maximum length in code points (at least 128).
    pub max_chars: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashing threads; 0 means one per core.
    pub hashing_workers: usize,
    /// Hashing jobs allowed to wait; beyond it `RESOURCE_EXHAUSTED`.
    pub hashing_queue: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub absolute_ttl_secs: u64,
    pub idle_ttl_secs: u64,
    /// Live sessions (and as many credentials) each instance keeps in
    /// memory; a revocation anywhere still takes effect on the next call.
    /// 0 reads the database on every call.
    pub cache_capacity: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Consecutive failures allowed before any back-off.
    pub free_failures: u32,
    /// The back-off doubles from one second up to this many seconds.
    pub max_backoff_secs: u64,
    /// Consecutive failures after which only a password reset reopens login.
    pub max_failures: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetConfig {
    pub token_ttl_secs: u64,
    /// Reset or login-recovery e-mails sent per account and hour.
    pub max_requests_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TotpConfig {
    /// Issuer shown by authenticator apps.
    pub issuer: String,
    /// A session younger than this counts as a recent authentication.
    pub recent_auth_secs: u64,
    /// Base64 of the 32-byte AES-256-GCM key sealing TOTP secrets. Shared by
    /// every instance; without it (and without `encryption_keys`) a key file
    /// in `data_dir` is used (created with mode 0600 on first start).
    #[serde(serialize_with = "super::redacted")]
    pub encryption_key: Option<SecretString>,
    /// Several such keys, for rotation: the first seals, every one opens.
    /// Replaces `encryption_key` (set one or the other).
    #[serde(serialize_with = "super::redacted_list")]
    pub encryption_keys: Vec<SecretString>,
    /// The key file; default `<data_dir>/totp.key`.
    pub key_file: Option<PathBuf>,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            issuer: "gardien".into(),
            recent_auth_secs: 600,
            encryption_key: None,
            encryption_keys: Vec::new(),
            key_file: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout_secs: 5,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_chars: 15,
            max_chars: 256,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hashing_workers: 0,
            hashing_queue: 64,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            absolute_ttl_secs: 12 * 3600,
            idle_ttl_secs: 3600,
            cache_capacity: 100_000,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            max_backoff_secs: 15 * 60,
            max_failures: 100,
        }
    }
}

impl Default for ResetConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 30 * 60,
            max_requests_per_hour: 5,
        }
    }
}
