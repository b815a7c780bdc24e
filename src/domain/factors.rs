//! What every second factor shares: whether the account has one, recent
//! authentication, and the recovery codes that stand in for any of them.

use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    deps::{Db, Hashing, Settings},
    error::{Error, Result},
    principal::CustomerSession,
    throttle,
};
use crate::{
    clock::Millis,
    crypto::{token, totp},
    entity::account,
    store,
};

pub const RECOVERY_CODES: usize = 10;

/// Whether the account has a second factor: TOTP or a passkey.
pub fn has_second_factor(account: &account::Model) -> bool {
    account.totp_secret.is_some() || account.passkey_count > 0
}

/// Recent authentication: a young session, or the current password now.
pub async fn require_recent_auth(
    ctx: &(impl Db + Settings + Hashing),
    now: Millis,
    caller: &CustomerSession,
    account: &account::Model,
    password: Option<SecretString>,
) -> Result<()> {
    let window_ms = ctx.config().totp.recent_auth_secs as i64 * 1000;
    if now - caller.authenticated_at <= window_ms {
        return Ok(());
    }
    match password {
        Some(password) => {
            throttle::check_password(ctx, now, account, password).await?;
            throttle::clear_failures(ctx.db(), &throttle::key(&account.login)).await
        }
        None => Err(Error::RecentAuthenticationRequired),
    }
}

/// Ten codes of 80 random bits, `xxxx-xxxx-xxxx-xxxx` in lowercase base32.
pub(crate) fn new_recovery_codes() -> Vec<String> {
    use rand::{rngs::OsRng, RngCore};
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            OsRng.fill_bytes(&mut bytes);
            let text = totp::to_base32(&bytes).to_lowercase();
            text.as_bytes()
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of its canonical form
/// (lowercase, without separators or spaces).
pub fn hash_recovery_code(code: &str) -> String {
    let canonical: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    token::hash(&format!("recovery:{canonical}"))
}

pub(crate) async fn store_recovery_codes<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    codes: &[String],
) -> Result<()> {
    let hashes = codes.iter().map(|code| hash_recovery_code(code)).collect();
    Ok(store::second_factor::insert_recovery_codes(conn, account_id, hashes, now).await?)
}

pub async fn recovery_codes_left<C: ConnectionTrait>(conn: &C, account_id: Uuid) -> Result<u64> {
    Ok(store::second_factor::recovery_codes_left(conn, account_id).await?)
}
