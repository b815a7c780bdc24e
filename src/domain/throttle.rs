//! The per-login back-off against guessing, shared by every check of a
//! password or a second factor.
//!
//! The failure counter is keyed by a hash of the normalised login
//! identifier, known or not, so back-off never tells which logins exist. An
//! attempt is counted *before* the secret is verified, by one atomic upsert,
//! so parallel guesses can never run more verifications than the back-off
//! allows; a success sets it back to zero.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};

use super::{
    deps::{Db, Hashing, Settings},
    error::{Error, Result},
    password,
};
use crate::{
    clock::Millis,
    config::LoginConfig,
    crypto::{password::Verified, token},
    entity::account,
    store,
};

/// The back-off schedule of the configuration: `free_failures` without
/// delay, then 1 s doubling up to `max_backoff_secs`.
pub struct Backoff<'a>(pub &'a LoginConfig);

impl Backoff<'_> {
    /// The delay imposed after the `failures`-th consecutive failure.
    pub fn after(&self, failures: u32) -> Duration {
        let free = self.0.free_failures;
        if failures <= free {
            return Duration::ZERO;
        }
        let exponent = (failures - free - 1).min(20);
        Duration::from_secs((1u64 << exponent).min(self.0.max_backoff_secs))
    }
}

impl store::throttle::Schedule for Backoff<'_> {
    fn free_failures(&self) -> u32 {
        self.0.free_failures
    }
    fn max_failures(&self) -> u32 {
        self.0.max_failures
    }
    fn delay_ms(&self, failures: u32) -> u64 {
        u64::try_from(self.after(failures).as_millis()).unwrap_or(u64::MAX)
    }
}

/// The throttle row of a login identifier.
pub fn key(login: &str) -> String {
    token::hash(&format!("login:{}", login.trim().to_lowercase()))
}

/// Counts one attempt against `key`, or refuses it while backed off.
pub async fn begin_attempt(ctx: &(impl Db + Settings), now: Millis, key: &str) -> Result<()> {
    let schedule = Backoff(&ctx.config().login);
    if store::throttle::count_attempt(ctx.db(), &schedule, key, now).await? {
        return Ok(());
    }
    Err(refused(ctx, now, key).await?)
}

/// Refuses an attempt while `key` is backed off, without counting it.
pub async fn check_backoff(ctx: &(impl Db + Settings), now: Millis, key: &str) -> Result<()> {
    match store::throttle::backoff_until(ctx.db(), key).await? {
        Some(until) if until > now => Err(Error::LoginBackoff {
            retry_after: Duration::from_millis((until - now) as u64),
        }),
        _ => Ok(()),
    }
}

/// The refusal of an attempt on `key`, saying for how long.
pub async fn refused(ctx: &(impl Db + Settings), now: Millis, key: &str) -> Result<Error> {
    let until = store::throttle::backoff_until(ctx.db(), key).await?;
    let retry_after = match until {
        Some(until) if until > now => Duration::from_millis((until - now) as u64),
        _ => Duration::from_secs(ctx.config().login.max_backoff_secs),
    };
    Ok(Error::LoginBackoff { retry_after })
}

/// Forgets the failures of `key` (a success, a reset or a password change).
pub async fn clear_failures<C: ConnectionTrait>(conn: &C, key: &str) -> Result<()> {
    store::throttle::clear(conn, key).await?;
    Ok(())
}

/// Verifies an account's current password, counted against its back-off;
/// the caller clears the failures once everything it checks has passed.
pub async fn check_password(
    ctx: &(impl Db + Settings + Hashing),
    now: Millis,
    account: &account::Model,
    password: SecretString,
) -> Result<()> {
    begin_attempt(ctx, now, &key(&account.login)).await?;
    let normalized = SecretString::from(password::normalize(password.expose_secret()));
    match ctx
        .hasher()
        .verify(normalized, account.password_hash.clone())
        .await?
    {
        Verified::Valid { .. } => Ok(()),
        Verified::Invalid => Err(Error::InvalidCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_after_the_free_failures_up_to_the_cap() {
        let config = LoginConfig {
            free_failures: 3,
            max_backoff_secs: 10,
            ..LoginConfig::default()
        };
        let backoff = Backoff(&config);
        let delays: Vec<u64> = (1..=8).map(|n| backoff.after(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 10]);
    }
}
