//! The `[rate_limit]` section: per-address and per-principal limits for
//! each method class, the backend (in-process or Redis), trusted proxies and
//! memory bounds.

use std::net::IpAddr;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackend {
    /// Counters in this process: limits hold per instance.
    #[default]
    Memory,
    /// Counters in Redis (`rate_limit.redis_url`): limits hold across instances.
    Redis,
}

/// A GCRA limit: a sustained rate and a burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Sustained calls per minute.
    pub per_minute: u32,
    /// Calls allowed back to back before the sustained rate applies.
    pub burst: u32,
}

impl Limit {
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }
}

/// Limits of one method class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassLimits {
    /// Per client address, checked before authentication.
    pub per_address: Limit,
    /// Per authenticated principal (customer account or credential),
    /// checked after authentication.
    pub per_principal: Limit,
    /// When the Redis backend is unreachable: `true` lets calls through,
    /// `false` refuses them with `UNAVAILABLE`.
    pub fail_open: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `false` turns every limit off.
    pub enabled: bool,
    pub backend: RateLimitBackend,
    /// `redis://[user:password@]host:port[/db]`; required with `backend = "redis"`.
    #[serde(serialize_with = "super::redacted")]
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key (instances sharing limits use the same).
    pub redis_key_prefix: String,
    /// A Redis check slower than this counts as Redis being unreachable.
    pub redis_timeout_ms: u64,
    /// Peers (IPs or CIDRs) whose `x-forwarded-for` names the client.
    pub trusted_proxies: Vec<String>,
    /// Most keys the in-process backend holds; beyond it the keys nearest
    /// to full credit are evicted first.
    pub max_keys: usize,
    /// How often the in-process backend drops idle keys.
    pub sweep_interval_secs: u64,
    /// `Login`, `VerifyLoginChallenge`, `RequestPasswordReset`,
    /// `RecoverLogin`, `CompletePasswordReset`, `CreateRecoveryTicket`,
    /// `ReportUnauthorizedChange`, `ConfirmEmailChange`, `CancelFactorReset`.
    #[serde(deserialize_with = "credential_limits")]
    pub credential: ClassLimits,
    /// `Get…`, `List…`, `IntrospectSession`, health and reflection.
    #[serde(deserialize_with = "read_limits")]
    pub read: ClassLimits,
    /// Every other RPC.
    #[serde(deserialize_with = "write_limits")]
    pub write: ClassLimits,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: RateLimitBackend::Memory,
            redis_url: None,
            redis_key_prefix: "gardien:rl:".into(),
            redis_timeout_ms: 100,
            trusted_proxies: Vec::new(),
            max_keys: 100_000,
            sweep_interval_secs: 60,
            credential: ClassLimits {
                per_address: Limit::new(30, 10),
                per_principal: Limit::new(30, 10),
                fail_open: false,
            },
            read: ClassLimits {
                per_address: Limit::new(60_000, 2_000),
                per_principal: Limit::new(60_000, 2_000),
                fail_open: true,
            },
            write: ClassLimits {
                per_address: Limit::new(6_000, 500),
                per_principal: Limit::new(600, 100),
                fail_open: true,
            },
        }
    }
}

/// A class table as written: any key left out keeps that class's default,
/// so `GARDIEN_RATE_LIMIT__CREDENTIAL__PER_ADDRESS__BURST=5` alone works.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PartialClass {
    per_address: PartialLimit,
    per_principal: PartialLimit,
    fail_open: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PartialLimit {
    per_minute: Option<u32>,
    burst: Option<u32>,
}

impl PartialLimit {
    fn over(self, default: Limit) -> Limit {
        Limit {
            per_minute: self.per_minute.unwrap_or(default.per_minute),
            burst: self.burst.unwrap_or(default.burst),
        }
    }
}

impl PartialClass {
    fn over(self, default: ClassLimits) -> ClassLimits {
        ClassLimits {
            per_address: self.per_address.over(default.per_address),
            per_principal: self.per_principal.over(default.per_principal),
            fail_open: self.fail_open.unwrap_or(default.fail_open),
        }
    }
}

fn credential_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ClassLimits, D::Error> {
    Ok(PartialClass::deserialize(d)?.over(RateLimitConfig::default().credential))
}

fn read_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ClassLimits, D::Error> {
    Ok(PartialClass::deserialize(d)?.over(RateLimitConfig::default().read))
}

fn write_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ClassLimits, D::Error> {
    Ok(PartialClass::deserialize(d)?.over(RateLimitConfig::default().write))
}

/// A trusted proxy entry: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

impl RateLimitConfig {
    /// The parsed `trusted_proxies`.
    pub fn trusted_networks(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|entry| parse_network(entry))
            .collect()
    }

    /// Checks the values serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        for entry in &self.trusted_proxies {
            if parse_network(entry).is_none() {
                return Err(format!(
                    "`rate_limit.trusted_proxies`: {entry:?} is not an IP address or CIDR"
                ));
            }
        }
        for (class, limits) in [
            ("credential", &self.credential),
            ("read", &self.read),
            ("write", &self.write),
        ] {
            for (scope, limit) in [
                ("per_address", limits.per_address),
                ("per_principal", limits.per_principal),
            ] {
                if limit.per_minute == 0 || limit.burst == 0 {
                    return Err(format!(
                        "`rate_limit.{class}.{scope}`: per_minute and burst must be at least 1"
                    ));
                }
            }
        }
        if self.max_keys < 1000 {
            return Err("`rate_limit.max_keys`: must be at least 1000".into());
        }
        if self.sweep_interval_secs == 0 {
            return Err("`rate_limit.sweep_interval_secs`: must be at least 1".into());
        }
        if self.redis_timeout_ms == 0 || self.redis_timeout_ms > 5_000 {
            return Err("`rate_limit.redis_timeout_ms`: must be between 1 and 5000".into());
        }
        match (&self.backend, &self.redis_url) {
            (RateLimitBackend::Redis, None) => {
                return Err(
                    "`rate_limit.redis_url`: required when rate_limit.backend = \"redis\"".into(),
                )
            }
            (_, Some(url)) => {
                let url = url.expose_secret();
                if !url.starts_with("redis://") {
                    return Err("`rate_limit.redis_url`: must start with redis://".into());
                }
            }
            _ => {}
        }
        Ok(())
    }
}
