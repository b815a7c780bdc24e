//! The Redis store: the same GCRA step as in process, run as one Lua script
//! per check so that instances sharing Redis share every limit atomically.
//! Each key expires when its credit is full again, so Redis holds only the
//! keys in use. A check that Redis does not answer within
//! `rate_limit.redis_timeout_ms` is an error, never a hang.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use super::gcra::Quota;
use crate::config::RateLimitConfig;

/// KEYS[1]: the key; ARGV: now, interval and tolerance in microseconds.
/// Returns 0 when allowed, else the wait in microseconds.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now - tolerance
if ahead > 0 then return ahead end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

pub struct RedisStore {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl RedisStore {
    pub fn new(config: &RateLimitConfig) -> anyhow::Result<Self> {
        let url = config
            .redis_url
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("`rate_limit.redis_url` is required"))?;
        let client = redis::Client::open(url.expose_secret())
            .map_err(|error| anyhow::anyhow!("`rate_limit.redis_url`: {error}"))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| anyhow::anyhow!("rate-limit Redis client: {error}"))?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
            prefix: config.redis_key_prefix.clone(),
            timeout,
        })
    }

    /// Redis answers `PING` within the timeout (the readiness probe).
    pub async fn ping(&self) -> Result<(), RedisStoreError> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        tokio::time::timeout(self.timeout, command.query_async::<String>(&mut connection))
            .await
            .map_err(|_| RedisStoreError::Timeout(self.timeout))??;
        Ok(())
    }

    /// `Ok(Ok(()))` allowed, `Ok(Err(wait))` limited, `Err` Redis failed.
    pub async fn check(
        &self,
        key: &str,
        now_us: i64,
        quota: Quota,
    ) -> Result<Result<(), Duration>, RedisStoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(now_us)
            .arg(quota.interval_us)
            .arg(quota.tolerance_us);
        let wait_us: i64 =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| RedisStoreError::Timeout(self.timeout))??;
        Ok(match u64::try_from(wait_us) {
            Ok(0) | Err(_) => Ok(()),
            Ok(wait) => Err(Duration::from_micros(wait)),
        })
    }
}
