//! Login with a password, and the per-login back-off against guessing.
//!
//! The failure counter is keyed by a hash of the normalised login
//! identifier, known or not, so back-off never tells which logins exist. An
//! attempt is counted *before* the password is verified, by one atomic
//! upsert, so parallel guesses can never run more verifications than the
//! back-off allows; a success sets it back to zero.

use std::time::Duration;

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement,
    TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    accounts::{STATE_ACTIVE, STATE_SUSPENDED},
    error::{Error, Result},
    events::{self, EventKind},
    password,
    principal::{Actor, ClientInfo},
    sessions::{self, SessionGrant},
    two_factor,
    types::Login,
    Context,
};
use crate::{
    crypto::{password::Verified, token},
    entity::{account, login_throttle},
};

/// What `Login` answers when the password is right.
pub enum LoginOutcome {
    Session(SessionGrant),
    /// The account has 2FA: `VerifyLoginChallenge` finishes the login.
    Challenge(two_factor::Challenge),
}

/// The throttle row of a login identifier.
pub fn throttle_key(login: &str) -> String {
    token::hash(&format!("login:{}", login.trim().to_lowercase()))
}

#[tracing::instrument(skip_all, fields(login = %login.escape_debug()))]
pub async fn login(
    ctx: &Context,
    login: &str,
    password: SecretString,
    client: &ClientInfo,
) -> Result<LoginOutcome> {
    let login = login.trim().to_lowercase();
    let key = throttle_key(&login);
    begin_attempt(ctx, &key).await?;

    // A login that no account can have (control characters, NUL, spaces)
    // is not looked up: it answers as an unknown one, dummy hash included.
    let account = match Login::parse("login", &login) {
        Ok(valid) => {
            account::Entity::find()
                .filter(account::Column::Login.eq(valid.as_str()))
                .one(&ctx.db)
                .await?
        }
        Err(_) => None,
    };
    let normalized = SecretString::from(password::normalize(password.expose_secret()));
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = ctx.hasher.verify(normalized.clone(), stored).await?;

    let (account, needs_rehash) = match (account, verified) {
        (Some(account), Verified::Valid { needs_rehash }) => (account, needs_rehash),
        (account, _) => {
            if let Some(account) = account {
                // Recorded off the response path so that a known login does
                // not answer more slowly than an unknown one.
                let ctx = ctx.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let result = events::record(
                        &ctx.db,
                        ctx.now(),
                        account.id,
                        EventKind::LoginFailed,
                        &Actor::customer(),
                        &client,
                        serde_json::json!({ "reason": "invalid_password" }),
                    )
                    .await;
                    if let Err(error) = result {
                        tracing::warn!(%error, "could not record a failed login");
                    }
                });
            }
            // Authentication failures are logged (ASVS V16.3.1); the span
            // carries the login as typed, escaped.
            tracing::info!("login refused: invalid credentials");
            return Err(Error::InvalidCredentials);
        }
    };

    if account.password_state == STATE_SUSPENDED {
        events::record(
            &ctx.db,
            ctx.now(),
            account.id,
            EventKind::LoginFailed,
            &Actor::customer(),
            client,
            serde_json::json!({ "reason": "password_suspended" }),
        )
        .await?;
        return Err(Error::PasswordSuspended {
            help_url: ctx.config.mail.help_url.clone(),
        });
    }
    if account.password_state != STATE_ACTIVE {
        return Err(Error::InvalidCredentials);
    }

    let new_hash = if needs_rehash {
        Some(ctx.hasher.hash(normalized).await?)
    } else {
        None
    };
    let now = ctx.now();
    let txn = ctx.db.begin().await?;
    let mut update = account::Entity::update_many()
        .col_expr(
            account::Column::UpdatedAt,
            Expr::col(account::Column::UpdatedAt),
        )
        .filter(account::Column::Id.eq(account.id))
        .filter(account::Column::PasswordState.eq(STATE_ACTIVE));
    if let Some(hash) = new_hash {
        update = update.col_expr(account::Column::PasswordHash, Expr::value(hash));
    }
    if account.totp_secret.is_none() {
        update = update.col_expr(account::Column::LastLoginAt, Expr::value(now));
    }
    if update.exec(&txn).await?.rows_affected != 1 {
        // Suspended between the check and now.
        return Err(Error::PasswordSuspended {
            help_url: ctx.config.mail.help_url.clone(),
        });
    }
    if account.totp_secret.is_some() {
        // The failure count is cleared only once the second factor passes:
        // a new challenge must not give a code guesser a fresh allowance.
        let challenge = two_factor::create_challenge(&txn, account.id, client, now).await?;
        events::record(
            &txn,
            now,
            account.id,
            EventKind::LoginChallenged,
            &Actor::customer(),
            client,
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        return Ok(LoginOutcome::Challenge(challenge));
    }
    clear_failures(&txn, &key).await?;
    let grant = sessions::create(&txn, ctx, account.id, client, false, now).await?;
    let login_event = events::record(
        &txn,
        now,
        account.id,
        EventKind::LoginSucceeded,
        &Actor::customer(),
        client,
        serde_json::json!({ "session_id": grant.session_id.to_string(), "second_factor": false }),
    )
    .await?;
    super::notices::new_login(&txn, ctx, now, &account, client, login_event).await?;
    txn.commit().await?;
    tracing::info!(account_id = %account.id, "login succeeded");
    Ok(LoginOutcome::Session(grant))
}

/// Verifies an account's current password, counted against its back-off;
/// the caller clears the failures once everything it checks has passed.
pub async fn check_password(
    ctx: &Context,
    account: &account::Model,
    password: SecretString,
) -> Result<()> {
    begin_attempt(ctx, &throttle_key(&account.login)).await?;
    let normalized = SecretString::from(password::normalize(password.expose_secret()));
    match ctx
        .hasher
        .verify(normalized, account.password_hash.clone())
        .await?
    {
        Verified::Valid { .. } => Ok(()),
        Verified::Invalid => Err(Error::InvalidCredentials),
    }
}

/// The delay imposed after the `failures`-th consecutive failure.
pub fn backoff_after(ctx: &Context, failures: u32) -> Duration {
    let free = ctx.config.login.free_failures;
    if failures <= free {
        return Duration::ZERO;
    }
    let exponent = (failures - free - 1).min(20);
    Duration::from_secs((1u64 << exponent).min(ctx.config.login.max_backoff_secs))
}

/// Counts one attempt against `key`, or refuses it while backed off.
///
/// One statement, atomic on both engines: it creates the row or adds one to
/// its count and sets the back-off that count earns, but only while the row
/// is neither backed off nor at the limit; no row back means refused.
pub async fn begin_attempt(ctx: &Context, key: &str) -> Result<()> {
    let now = ctx.now();
    let backend = ctx.db.get_database_backend();
    let first_until = backoff_until(ctx, 1, now);
    let sql = attempt_sql(ctx, backend);
    let counted = ctx
        .db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                key.into(),
                now.into(),
                first_until.into(),
                (ctx.config.login.max_failures as i32).into(),
            ],
        ))
        .await?;
    if counted.is_some() {
        return Ok(());
    }
    // Refused: say for how long.
    let row = login_throttle::Entity::find_by_id(key.to_string())
        .one(&ctx.db)
        .await?;
    let now = ctx.now();
    let retry_after = match row.and_then(|row| row.backoff_until) {
        Some(until) if until > now => Duration::from_millis((until - now) as u64),
        _ => Duration::from_secs(ctx.config.login.max_backoff_secs),
    };
    Err(Error::LoginBackoff { retry_after })
}

/// When the back-off earned by the `failures`-th failure ends, if it has one.
fn backoff_until(ctx: &Context, failures: u32, now: i64) -> Option<i64> {
    let delay = backoff_after(ctx, failures);
    (!delay.is_zero()).then(|| now + delay.as_millis() as i64)
}

/// The statement of [`begin_attempt`]: `$1` key, `$2` now, `$3` the back-off
/// of a first failure, `$4` the failure limit. The back-off a count earns is
/// spelled out as a `CASE` over the counts from the configuration (the delay
/// stops growing after 21 steps), so both engines compute it alike.
fn attempt_sql(ctx: &Context, backend: DbBackend) -> String {
    let free = ctx.config.login.free_failures;
    let last = ctx.config.login.max_failures.min(free + 21);
    let mut case = format!("CASE WHEN login_throttle.failures + 1 <= {free} THEN NULL");
    for failures in free + 1..last {
        let delay = backoff_after(ctx, failures).as_millis();
        case.push_str(&format!(
            " WHEN login_throttle.failures + 1 = {failures} THEN $2 + {delay}"
        ));
    }
    let longest = backoff_after(ctx, last).as_millis();
    case.push_str(&format!(" ELSE $2 + {longest} END"));
    let sql = format!(
        "INSERT INTO login_throttle (login_key, failures, last_failure_at, backoff_until) \
         VALUES ($1, 1, $2, $3) \
         ON CONFLICT (login_key) DO UPDATE SET \
             failures = login_throttle.failures + 1, \
             last_failure_at = $2, \
             backoff_until = {case} \
         WHERE (login_throttle.backoff_until IS NULL OR login_throttle.backoff_until <= $2) \
           AND login_throttle.failures < $4 \
         RETURNING failures"
    );
    match backend {
        // `?NNN` is SQLite's numbered parameter.
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql,
    }
}

/// Forgets the failures of `key` (a success, a reset or a password change).
pub async fn clear_failures<C: ConnectionTrait>(conn: &C, key: &str) -> Result<()> {
    login_throttle::Entity::update_many()
        .col_expr(login_throttle::Column::Failures, Expr::value(0))
        .col_expr(
            login_throttle::Column::BackoffUntil,
            Expr::value(Option::<i64>::None),
        )
        .filter(login_throttle::Column::LoginKey.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}
