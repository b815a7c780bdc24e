//! The `[key_rotation]` section: how values sealed under an older key are
//! re-sealed under the sealing key (the first of `totp.encryption_keys`),
//! by `gardien keys rotate` and by a background task of `serve`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRotationConfig {
    /// `serve` re-seals, in the background, every value not yet under the
    /// sealing key.
    pub online: bool,
    /// Values re-sealed per transaction.
    pub batch_size: u64,
    /// Pause between two batches, leaving the database to the service.
    pub pause_ms: u64,
    /// How often the background task looks again (an instance that still
    /// seals with an older key during a rolling change leaves new values
    /// under it).
    pub rescan_secs: u64,
}

impl Default for KeyRotationConfig {
    fn default() -> Self {
        Self {
            online: true,
            batch_size: 200,
            pause_ms: 100,
            rescan_secs: 600,
        }
    }
}

impl KeyRotationConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 || self.batch_size > 10_000 {
            return Err("`key_rotation.batch_size`: must be between 1 and 10000".into());
        }
        if self.pause_ms > 60_000 {
            return Err("`key_rotation.pause_ms`: must be at most 60000".into());
        }
        if self.rescan_secs == 0 {
            return Err("`key_rotation.rescan_secs`: must be at least 1".into());
        }
        Ok(())
    }
}
