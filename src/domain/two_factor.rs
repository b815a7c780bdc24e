//! Two-factor authentication with TOTP (RFC 6238) and recovery codes.
//!
//! A code is accepted once per account: accepting it is a compare-and-set
//! on the last used time step, in the same transaction as what the code
//! unlocks, so of concurrent uses exactly one wins. Recovery codes are
//! single use the same way. Every code checked counts against the login's
//! back-off, and only a complete success clears it.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::revocation::RevocationCause as Cause;
use super::{
    deps::{Db, Hashing, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    notices, passkeys,
    principal::{Actor, ClientInfo, CustomerSession},
    sessions, throttle,
};
use crate::{
    clock::Millis,
    crypto::{token, totp},
    entity::{account, login_challenge},
    kinds::PasswordState,
    mail::Mail,
    store,
};

pub use super::factors::{
    hash_recovery_code, recovery_codes_left, require_recent_auth, RECOVERY_CODES,
};
use super::factors::{new_recovery_codes, store_recovery_codes};
/// A challenge dies after this many wrong codes.
pub const MAX_WRONG_CODES: i32 = 5;
const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// A pending enrolment must be confirmed within this time.
const ENROLMENT_TTL_MS: i64 = 15 * 60 * 1000;

/// A second factor as the customer gave it.
#[derive(Clone)]
pub enum SecondFactor {
    Totp(SecretString),
    RecoveryCode(SecretString),
    /// A WebAuthn assertion, checked with [`passkeys::check_bound`] before
    /// the transaction and made effective with [`passkeys::consume`].
    Passkey(Box<webauthn_rs::prelude::PublicKeyCredential>),
}

/// What an authenticator app needs, shown once.
pub struct Enrollment {
    pub secret_base32: SecretString,
    pub otpauth_uri: SecretString,
    pub qr_png: Vec<u8>,
}

async fn load(db: &DatabaseConnection, account_id: Uuid) -> Result<account::Model> {
    store::accounts::by_id(db, account_id)
        .await?
        .ok_or(Error::NotFound("account"))
}

/// The associated data of an account's sealed TOTP secrets.
pub(crate) fn aad(account_id: Uuid) -> Vec<u8> {
    account_id.as_bytes().to_vec()
}

#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn begin_enrollment(
    ctx: &(impl Db + Settings + Hashing + Sealing),
    now: Millis,
    caller: &CustomerSession,
    password: Option<SecretString>,
) -> Result<Enrollment> {
    let account = load(ctx.db(), caller.account_id).await?;
    if account.totp_secret.is_some() {
        return Err(Error::TotpAlreadyEnabled);
    }
    require_recent_auth(ctx, now, caller, &account, password).await?;
    let secret = totp::generate_secret();
    let sealed = ctx
        .sealer()
        .seal(secret.expose_secret(), &aad(account.id))
        .map_err(Error::internal)?;
    let uri = totp::otpauth_uri(
        secret.expose_secret(),
        &ctx.config().totp.issuer,
        &account.login,
    );
    let qr_png = totp::qr_png(&uri).map_err(Error::internal)?;
    store::second_factor::begin_enrollment(ctx.db(), account.id, sealed, now).await?;
    Ok(Enrollment {
        secret_base32: SecretString::from(totp::to_base32(secret.expose_secret())),
        otpauth_uri: SecretString::from(uri),
        qr_png,
    })
}

/// The pending secret of `account_id` as sealed now, if it is still the
/// enrolment begun at `pending_at` with `secret`.
async fn resealed_pending<C: ConnectionTrait>(
    conn: &C,
    ctx: &impl Sealing,
    account_id: Uuid,
    pending_at: i64,
    secret: &[u8],
) -> Result<Option<String>> {
    let Some(current) = store::accounts::by_id(conn, account_id).await? else {
        return Ok(None);
    };
    let (Some(sealed), Some(at)) = (current.totp_pending_secret, current.totp_pending_at) else {
        return Ok(None);
    };
    let same = at == pending_at
        && current.totp_secret.is_none()
        && ctx
            .sealer()
            .open(&sealed, &aad(account_id))
            .is_ok_and(|opened| bool::from(subtle::ConstantTimeEq::ct_eq(&opened[..], secret)));
    Ok(same.then_some(sealed))
}

/// Activates the pending secret with a code from it; returns the recovery
/// codes, shown this once. The confirming code cannot be used again.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn confirm_enrollment(
    ctx: &(impl Db + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    code: SecretString,
) -> Result<Vec<String>> {
    let account = load(ctx.db(), caller.account_id).await?;
    if account.totp_secret.is_some() {
        return Err(Error::TotpAlreadyEnabled);
    }
    let (Some(pending), Some(pending_at)) = (&account.totp_pending_secret, account.totp_pending_at)
    else {
        return Err(Error::InvalidStateTransition(
            "no enrolment is pending: call BeginTotpEnrollment first".into(),
        ));
    };
    if now - pending_at > ENROLMENT_TTL_MS {
        return Err(Error::InvalidStateTransition(
            "the enrolment has expired: call BeginTotpEnrollment again".into(),
        ));
    }
    let key = throttle::key(&account.login);
    throttle::begin_attempt(ctx, now, &key).await?;
    let secret = ctx
        .sealer()
        .open(pending, &aad(account.id))
        .map_err(Error::internal)?;
    let step = totp::verify(&secret, code.expose_secret(), now).ok_or(Error::InvalidCredentials)?;

    let codes = new_recovery_codes();
    let txn = ctx.begin_write().await?;
    let mut pending = pending.clone();
    loop {
        let activated =
            store::second_factor::activate(&txn, account.id, pending.clone(), step, now).await?;
        if activated {
            break;
        }
        // A key rotation may have re-sealed the same secret meanwhile: it is
        // still this enrolment if it opens to the secret the code matched.
        pending = match resealed_pending(&txn, ctx, account.id, pending_at, &secret).await? {
            Some(resealed) if resealed != pending => resealed,
            _ => {
                return Err(Error::InvalidStateTransition(
                    "the enrolment changed meanwhile; start again".into(),
                ))
            }
        };
    }
    // A passkey may have brought codes already: these replace them.
    store::second_factor::delete_recovery_codes(&txn, account.id).await?;
    store_recovery_codes(&txn, now, account.id, &codes).await?;
    throttle::clear_failures(&txn, &key).await?;
    let change = notices::Reported {
        kind: EventKind::TotpEnabled,
        actor: &Actor::customer(),
        client,
        details: serde_json::json!({}),
    };
    notices::record_and_report(&txn, ctx, now, &account, change, |report_token| {
        Mail::TotpEnabled {
            login: account.login.clone(),
            report_token,
        }
    })
    .await?;
    notices::commit(txn, ctx).await?;
    Ok(codes)
}

/// Turns 2FA off: the password and a second factor; ends the other sessions.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn disable(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    password: SecretString,
    factor: SecondFactor,
) -> Result<u64> {
    let account = load(ctx.db(), caller.account_id).await?;
    if account.totp_secret.is_none() {
        return Err(Error::TotpNotEnabled);
    }
    throttle::check_password(ctx, now, &account, password).await?;
    throttle::begin_attempt(ctx, now, &throttle::key(&account.login)).await?;
    let txn = ctx.begin_write().await?;
    accept_second_factor(&txn, ctx, &account, &factor, client, now).await?;
    // The recovery codes stay while a passkey does.
    store::accounts::remove_second_factor(&txn, account.id, account.passkey_count > 0, now).await?;
    let revoked = sessions::revoke_all(
        &txn,
        now,
        account.id,
        Some(caller.session_id),
        Cause::TotpDisabled,
        &Actor::customer(),
        client,
    )
    .await?;
    throttle::clear_failures(&txn, &throttle::key(&account.login)).await?;
    let change = notices::Reported {
        kind: EventKind::TotpDisabled,
        actor: &Actor::customer(),
        client,
        details: serde_json::json!({ "sessions_revoked": revoked }),
    };
    notices::record_and_report(&txn, ctx, now, &account, change, |report_token| {
        Mail::TotpDisabled {
            login: account.login.clone(),
            report_token,
        }
    })
    .await?;
    notices::commit(txn, ctx).await?;
    Ok(revoked)
}

/// Replaces every recovery code: recent authentication and a current TOTP code.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn regenerate_recovery_codes(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    password: Option<SecretString>,
    code: SecretString,
) -> Result<Vec<String>> {
    let account = load(ctx.db(), caller.account_id).await?;
    if account.totp_secret.is_none() {
        return Err(Error::TotpNotEnabled);
    }
    require_recent_auth(ctx, now, caller, &account, password).await?;
    throttle::begin_attempt(ctx, now, &throttle::key(&account.login)).await?;
    let codes = new_recovery_codes();
    let txn = ctx.begin_write().await?;
    accept_second_factor(&txn, ctx, &account, &SecondFactor::Totp(code), client, now).await?;
    store::second_factor::delete_recovery_codes(&txn, account.id).await?;
    store_recovery_codes(&txn, now, account.id, &codes).await?;
    throttle::clear_failures(&txn, &throttle::key(&account.login)).await?;
    events::record(
        &txn,
        now,
        account.id,
        EventKind::RecoveryCodesRegenerated,
        &Actor::customer(),
        client,
        serde_json::json!({}),
    )
    .await?;
    notices::send(
        &txn,
        ctx,
        now,
        &account,
        &Mail::RecoveryCodesRegenerated {
            login: account.login.clone(),
        },
    )
    .await?;
    notices::commit(txn, ctx).await?;
    Ok(codes)
}

/// Checks a second factor and consumes it, inside the caller's transaction:
/// the TOTP step or the recovery code can never be accepted twice. The
/// caller counts the attempt (`throttle::begin_attempt`) before opening the
/// transaction.
pub async fn accept_second_factor<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    account: &account::Model,
    factor: &SecondFactor,
    client: &ClientInfo,
    now: i64,
) -> Result<()> {
    match factor {
        // Checked before the transaction (see `SecondFactor::Passkey`).
        SecondFactor::Passkey(_) => return Err(Error::InvalidCredentials),
        SecondFactor::Totp(code) => {
            let sealed = account.totp_secret.as_ref().ok_or(Error::TotpNotEnabled)?;
            let secret = ctx
                .sealer()
                .open(sealed, &aad(account.id))
                .map_err(Error::internal)?;
            let step = totp::verify(&secret, code.expose_secret(), now)
                .ok_or(Error::InvalidCredentials)?;
            if !store::second_factor::accept_step(conn, account.id, step).await? {
                // Replay of a code already used.
                return Err(Error::InvalidCredentials);
            }
        }
        SecondFactor::RecoveryCode(code) => {
            let hash = hash_recovery_code(code.expose_secret());
            if !store::second_factor::use_recovery_code(conn, account.id, &hash, now).await? {
                return Err(Error::InvalidCredentials);
            }
            let remaining = recovery_codes_left(conn, account.id).await?;
            events::record(
                conn,
                now,
                account.id,
                EventKind::RecoveryCodeUsed,
                &Actor::customer(),
                client,
                serde_json::json!({ "remaining": remaining }),
            )
            .await?;
            notices::send(
                conn,
                ctx,
                now,
                account,
                &Mail::RecoveryCodeUsed {
                    login: account.login.clone(),
                    remaining,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// A pending 2FA step of `Login`, shown once.
pub struct Challenge {
    pub token: SecretString,
    pub expires_at: i64,
    /// Whether a TOTP code can answer it.
    pub totp: bool,
    /// The request options for the account's passkeys, if it has any.
    pub passkey_options: Option<String>,
}

pub async fn create_challenge<C: ConnectionTrait>(
    conn: &C,
    config: &crate::config::Config,
    sealer: &crate::crypto::secretbox::Sealer,
    account: &account::Model,
    client: &ClientInfo,
    now: i64,
) -> Result<Challenge> {
    let account_id = account.id;
    let secret = token::generate(token::TokenKind::Challenge);
    let expires_at = now + CHALLENGE_TTL_MS;
    let id = Uuid::now_v7();
    let challenge = login_challenge::Model {
        id,
        account_id,
        token_hash: token::hash_secret(&secret),
        created_at: now,
        expires_at,
        wrong_codes: 0,
        used_at: None,
        revoked_at: None,
        client_address: client.address.clone(),
        user_agent: client.user_agent.clone(),
    };
    store::challenges::insert(conn, challenge).await?;
    let passkey_options = if account.passkey_count > 0 {
        passkeys::start_check(
            conn,
            &config.passkeys,
            sealer,
            account_id,
            "second_factor",
            id,
            now,
            expires_at,
        )
        .await?
    } else {
        None
    };
    Ok(Challenge {
        token: secret,
        expires_at,
        totp: account.totp_secret.is_some(),
        passkey_options,
    })
}

/// `VerifyLoginChallenge`: the second step of a 2FA login.
#[tracing::instrument(skip_all)]
pub async fn verify_challenge(
    ctx: &(impl Db + Mailing),
    now: Millis,
    presented: &str,
    factor: SecondFactor,
    client: &ClientInfo,
) -> Result<sessions::SessionGrant> {
    if !token::well_formed(token::TokenKind::Challenge, presented) {
        return Err(Error::TokenInvalid);
    }
    let challenge = store::challenges::by_token_hash(ctx.db(), &token::hash(presented))
        .await?
        .ok_or(Error::TokenInvalid)?;
    if challenge.used_at.is_some()
        || challenge.revoked_at.is_some()
        || challenge.wrong_codes >= MAX_WRONG_CODES
    {
        return Err(Error::TokenInvalid);
    }
    if challenge.expires_at <= now {
        return Err(Error::TokenExpired);
    }
    let account = load(ctx.db(), challenge.account_id).await?;
    throttle::begin_attempt(ctx, now, &throttle::key(&account.login)).await?;
    let checked = match &factor {
        SecondFactor::Passkey(assertion) => {
            match passkeys::check_bound(ctx, now, &account, challenge.id, assertion, client).await {
                Ok(checked) => Some(checked),
                Err(error) => {
                    if matches!(error, Error::InvalidCredentials) {
                        record_wrong_code(ctx.db(), now, &challenge, &account, client).await?;
                    }
                    return Err(error);
                }
            }
        }
        _ => None,
    };
    let txn = ctx.begin_write().await?;
    if !store::challenges::use_once(&txn, challenge.id, MAX_WRONG_CODES, now).await? {
        return Err(Error::TokenInvalid);
    }
    let accepted = match &checked {
        Some(checked) => passkeys::consume(&txn, checked, now).await,
        None => accept_second_factor(&txn, ctx, &account, &factor, client, now).await,
    };
    if let Err(error) = accepted {
        drop(txn);
        if matches!(error, Error::InvalidCredentials) {
            record_wrong_code(ctx.db(), now, &challenge, &account, client).await?;
        }
        return Err(error);
    }
    if PasswordState::parse(&account.password_state) != PasswordState::Active {
        return Err(super::suspension::refusal(&txn, ctx, account.id)
            .await?
            .for_account(super::types::Locale::parse(&account.locale)));
    }
    let grant = sessions::create(&txn, ctx, account.id, client, true, now).await?;
    store::second_factor::set_last_login(&txn, account.id, now).await?;
    throttle::clear_failures(&txn, &throttle::key(&account.login)).await?;
    super::factor_reset::cancel_on_second_factor_login(&txn, &account, client, now).await?;
    let login_event = events::record(
        &txn,
        now,
        account.id,
        EventKind::LoginSucceeded,
        &Actor::customer(),
        client,
        serde_json::json!({ "session_id": grant.session_id.to_string(), "second_factor": true }),
    )
    .await?;
    super::notices::new_login(&txn, ctx, now, &account, client, login_event).await?;
    notices::commit(txn, ctx).await?;
    Ok(grant)
}

async fn record_wrong_code(
    db: &DatabaseConnection,
    now: Millis,
    challenge: &login_challenge::Model,
    account: &account::Model,
    client: &ClientInfo,
) -> Result<()> {
    let txn = crate::store::db::begin_write(db).await?;
    store::challenges::count_wrong_code(&txn, challenge.id).await?;
    events::record(
        &txn,
        now,
        account.id,
        EventKind::LoginFailed,
        &Actor::customer(),
        client,
        serde_json::json!({ "reason": "invalid_second_factor" }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn recovery_codes_match_whatever_the_case_and_separators(
            code in "[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}",
            noise in "[ _.-]{0,3}",
        ) {
            let typed = format!("{noise}{}{noise}", code.to_ascii_uppercase().replace('-', &noise));
            prop_assert_eq!(hash_recovery_code(&typed), hash_recovery_code(&code));
        }

        #[test]
        fn any_recovery_code_hashes_without_panicking(code in "\\PC{0,100}|.{0,100}") {
            prop_assert_eq!(hash_recovery_code(&code).len(), 64);
        }
    }
}
