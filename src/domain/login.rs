//! Login with a password, and the per-login back-off against guessing.
//!
//! The failure counter is keyed by a hash of the normalised login
//! identifier, known or not, so back-off never tells which logins exist. An
//! attempt is counted *before* the password is verified, by one atomic
//! upsert, so parallel guesses can never run more verifications than the
//! back-off allows; a success sets it back to zero.

use std::time::Duration;

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryResult, Statement,
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    accounts::{STATE_ACTIVE, STATE_SUSPENDED},
    error::{Error, Result},
    events::{self, EventKind},
    password,
    principal::{Actor, ClientInfo},
    sessions::{self, SessionGrant},
    suspension, two_factor,
    types::{Locale, Login},
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

/// An account found by its login, and whether it ever logged in from the
/// caller's address (a login from a new one is notified).
struct Found {
    account: account::Model,
    seen_here: bool,
}

impl FromQueryResult for Found {
    fn from_query_result(row: &QueryResult, prefix: &str) -> std::result::Result<Self, DbErr> {
        Ok(Self {
            account: account::Model::from_query_result(row, prefix)?,
            seen_here: row.try_get(prefix, "seen_here")?,
        })
    }
}

/// The check for an earlier successful login of the account from the
/// address (`$5` the event kind, `$6` the address; no address: `= NULL`
/// holds for no row).
const SEEN_HERE: &str = "EXISTS ( \
    SELECT 1 FROM security_events \
    WHERE security_events.account_id = accounts.id \
      AND security_events.kind = $5 AND security_events.client_address = $6 \
) AS seen_here";

/// The parameters of [`attempt_sql`] (`$1`–`$4`), then the event kind and
/// address of [`SEEN_HERE`] and the login (`$5`–`$7`).
fn attempt_and_login_values(
    ctx: &Context,
    key: &str,
    now: i64,
    address: Option<&str>,
    login: &str,
) -> [sea_orm::Value; 7] {
    [
        key.into(),
        now.into(),
        backoff_until(ctx, 1, now).into(),
        (ctx.config.login.max_failures as i32).into(),
        EventKind::LoginSucceeded.as_str().into(),
        address.into(),
        login.into(),
    ]
}

/// [`begin_attempt`] and the account read in one trip to the database: one
/// statement on PostgreSQL (one row, its `counted` null when the attempt is
/// refused, its account columns null when there is no account); two on
/// SQLite, which has no writing `WITH` (a `counted` row when the attempt is
/// counted, then the account's row if there is one). The account read is
/// ignored when the attempt is refused.
async fn count_and_find(
    ctx: &Context,
    key: &str,
    login: &str,
    address: Option<&str>,
) -> Result<Option<Found>> {
    let now = ctx.now();
    let backend = ctx.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "WITH attempt AS ({}) \
             SELECT (SELECT counted FROM attempt) AS counted, accounts.*, {} \
             FROM (SELECT 1) AS one LEFT JOIN accounts ON accounts.login = $7",
            attempt_sql(ctx, backend),
            SEEN_HERE
        ),
        _ => format!(
            "{}; SELECT accounts.*, {} FROM accounts WHERE accounts.login = ?7",
            attempt_sql(ctx, backend),
            SEEN_HERE.replace('$', "?")
        ),
    };
    let rows = ctx
        .db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            attempt_and_login_values(ctx, key, now, address, login),
        ))
        .await?;
    let (mut counted, mut found) = (false, None);
    for row in rows {
        // A column the row does not have reads as absent.
        counted |= matches!(row.try_get::<Option<i32>>("", "counted"), Ok(Some(_)));
        if let Ok(Some(_)) = row.try_get::<Option<uuid::Uuid>>("", "id") {
            found = Some(Found::from_query_result(&row, "")?);
        }
    }
    if !counted {
        return Err(refused(ctx, key).await?);
    }
    Ok(found)
}

/// The throttle row of a login identifier.
pub fn throttle_key(login: &str) -> String {
    token::hash(&format!("login:{}", login.trim().to_lowercase()))
}

// The login as typed may be a password typed in the wrong field: the span
// carries its pseudonym, never the text.
#[tracing::instrument(skip_all, fields(login = %crate::telemetry::pseudonym(login)))]
pub async fn login(
    ctx: &Context,
    login: &str,
    password: SecretString,
    client: &ClientInfo,
) -> Result<LoginOutcome> {
    let login = login.trim().to_lowercase();
    let key = throttle_key(&login);
    let address = client.address.as_deref();
    // A login that no account can have (control characters, NUL, spaces)
    // is not looked up: it answers as an unknown one, dummy hash included.
    let found = match Login::parse("login", &login) {
        Ok(valid) => count_and_find(ctx, &key, valid.as_str(), address).await?,
        Err(_) => {
            begin_attempt(ctx, &key).await?;
            None
        }
    };
    let (account, seen_here) = match found {
        Some(Found { account, seen_here }) => (Some(account), seen_here),
        None => (None, false),
    };
    let normalized = SecretString::from(password::normalize(password.expose_secret()));
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = ctx.hasher.verify(normalized.clone(), stored).await?;

    let (account, needs_rehash) = match (account, verified) {
        (Some(account), Verified::Valid { needs_rehash }) => (account, needs_rehash),
        (account, _) => {
            if let Some(account) = account {
                // Recorded off the response path so that a known login does
                // not answer more slowly than an unknown one. A full queue
                // is not waited for (that would tell known logins apart):
                // the failure is then only in the log.
                let job_ctx = ctx.clone();
                let job_client = client.clone();
                let account_id = account.id;
                let queued = ctx.background.submit("failed login record", move || {
                    let (ctx, client) = (job_ctx.clone(), job_client.clone());
                    async move {
                        events::record(
                            &ctx.db,
                            ctx.now(),
                            account_id,
                            EventKind::LoginFailed,
                            &Actor::customer(),
                            &client,
                            serde_json::json!({ "reason": "invalid_password" }),
                        )
                        .await?;
                        Ok(())
                    }
                });
                if queued.is_err() {
                    tracing::warn!(%account_id, "failed login not recorded as an event: background queue full");
                }
            }
            // Authentication failures are logged (ASVS V16.3.1); the span
            // carries the pseudonym of the login as typed.
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
        return Err(suspension::refusal(&ctx.db, ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
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
    if account.totp_secret.is_none() {
        // Not on the very first login, nor from an address seen before.
        let notice_due = account.last_login_at.is_some() && client.address.is_some() && !seen_here;
        return open_session(ctx, &account, &key, new_hash, client, notice_due, now).await;
    }
    // Two factors: the password is accepted, the second factor finishes the
    // login. The failure count is cleared only once it passes: a new
    // challenge must not give a code guesser a fresh allowance.
    let txn = ctx.begin_write().await?;
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
    if update.exec(&txn).await?.rows_affected != 1 {
        // Suspended between the check and now.
        return Err(suspension::refusal(&txn, ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
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
    Ok(LoginOutcome::Challenge(challenge))
}

/// The writes of a successful login without a second factor: the account's
/// last login (and a rehashed password), the back-off reset, the session and
/// the journal entry, each only while the password is still active, then the
/// new-address notice if one is due. They go to the database in one round
/// trip instead of four: as one statement on PostgreSQL, as one batch of
/// statements between `BEGIN` and `COMMIT` on SQLite (with a notice, in a
/// transaction that the notice joins). Suspended meanwhile: nothing is
/// written and the login is refused as suspended.
async fn open_session(
    ctx: &Context,
    account: &account::Model,
    key: &str,
    new_hash: Option<String>,
    client: &ClientInfo,
    notice_due: bool,
    now: i64,
) -> Result<LoginOutcome> {
    let (session, grant) = sessions::new_row(ctx, account.id, client, false, now);
    let event = events::new_row(
        now,
        account.id,
        EventKind::LoginSucceeded,
        &Actor::customer(),
        client,
        serde_json::json!({ "session_id": grant.session_id.to_string(), "second_factor": false }),
    );
    let event_id = event.id;
    let values = write_values(account, key, new_hash, session, event, now);
    let backend = ctx.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => WRITES_POSTGRES,
        _ => WRITES_SQLITE,
    };
    let writes = Statement::from_sql_and_values(backend, sql, values);
    // Nothing is affected, and nothing written, once the password is no
    // longer active.
    let opened = if !notice_due && backend == DbBackend::Postgres {
        // No notice to send: the one statement is the whole transaction.
        ctx.db.execute_raw(writes).await?.rows_affected() > 0
    } else if !notice_due {
        // SQLite: the batch and its transaction in one trip.
        crate::db::sqlite_in_transaction(&ctx.db, writes).await? > 0
    } else {
        let txn = ctx.begin_write().await?;
        let opened = txn.execute_raw(writes).await?.rows_affected() > 0;
        if opened {
            if notice_due {
                super::notices::send_new_login(&txn, ctx, now, account, client, event_id).await?;
            }
            txn.commit().await?;
        }
        opened
    };
    if !opened {
        return Err(suspension::refusal(&ctx.db, ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
    tracing::info!(account_id = %account.id, "login succeeded");
    Ok(LoginOutcome::Session(grant))
}

/// [`open_session`] on PostgreSQL: every write hangs on the account update,
/// whose `WHERE` is checked again after waiting for a concurrent suspension.
/// It answers one row (one row affected) when the session is open.
const WRITES_POSTGRES: &str = "\
    WITH updated AS ( \
        UPDATE accounts SET last_login_at = $1, password_hash = COALESCE($2, password_hash) \
        WHERE id = $3 AND password_state = $4 RETURNING id \
    ), cleared AS ( \
        UPDATE login_throttle SET failures = 0, backoff_until = NULL \
        WHERE login_key = $5 AND EXISTS (SELECT 1 FROM updated) \
    ), opened AS ( \
        INSERT INTO sessions (id, account_id, token_hash, created_at, last_seen_at, \
            expires_at, revoked_at, revoke_reason, client_address, user_agent, \
            second_factor_used) \
        SELECT $6, id, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM updated \
    ), recorded AS ( \
        INSERT INTO security_events (id, account_id, kind, occurred_at, actor_kind, \
            actor_name, client_address, user_agent, details, acknowledged_at, \
            disputed_at, source_event_id) \
        SELECT $16, id, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26 FROM updated \
    ) \
    SELECT id FROM updated";

/// [`open_session`] on SQLite: four statements run in turn in the caller's
/// transaction (which holds the write lock from the first); each writes only
/// while the password is active, so all write or none do, and the session
/// insert answers a row when they do.
const WRITES_SQLITE: &str = "\
    UPDATE accounts SET last_login_at = $1, password_hash = COALESCE($2, password_hash) \
    WHERE id = $3 AND password_state = $4; \
    UPDATE login_throttle SET failures = 0, backoff_until = NULL \
    WHERE login_key = $5 AND EXISTS \
        (SELECT 1 FROM accounts WHERE id = $3 AND password_state = $4); \
    INSERT INTO sessions (id, account_id, token_hash, created_at, last_seen_at, expires_at, \
        revoked_at, revoke_reason, client_address, user_agent, second_factor_used) \
    SELECT $6, id, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
    FROM accounts WHERE id = $3 AND password_state = $4 RETURNING id; \
    INSERT INTO security_events (id, account_id, kind, occurred_at, actor_kind, actor_name, \
        client_address, user_agent, details, acknowledged_at, disputed_at, source_event_id) \
    SELECT $16, id, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26 \
    FROM accounts WHERE id = $3 AND password_state = $4";

/// The parameters of [`WRITES_POSTGRES`] and [`WRITES_SQLITE`].
fn write_values(
    account: &account::Model,
    key: &str,
    new_hash: Option<String>,
    session: crate::entity::session::Model,
    event: crate::entity::security_event::Model,
    now: i64,
) -> [sea_orm::Value; 26] {
    [
        now.into(),
        new_hash.into(),
        account.id.into(),
        STATE_ACTIVE.into(),
        key.into(),
        session.id.into(),
        session.token_hash.into(),
        session.created_at.into(),
        session.last_seen_at.into(),
        session.expires_at.into(),
        session.revoked_at.into(),
        session.revoke_reason.into(),
        session.client_address.into(),
        session.user_agent.into(),
        session.second_factor_used.into(),
        event.id.into(),
        event.kind.into(),
        event.occurred_at.into(),
        event.actor_kind.into(),
        event.actor_name.into(),
        event.client_address.into(),
        event.user_agent.into(),
        event.details.into(),
        event.acknowledged_at.into(),
        event.disputed_at.into(),
        event.source_event_id.into(),
    ]
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
    Err(refused(ctx, key).await?)
}

/// The refusal of an attempt on `key`, saying for how long.
async fn refused(ctx: &Context, key: &str) -> Result<Error> {
    let row = login_throttle::Entity::find_by_id(key.to_string())
        .one(&ctx.db)
        .await?;
    let now = ctx.now();
    let retry_after = match row.and_then(|row| row.backoff_until) {
        Some(until) if until > now => Duration::from_millis((until - now) as u64),
        _ => Duration::from_secs(ctx.config.login.max_backoff_secs),
    };
    Ok(Error::LoginBackoff { retry_after })
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
         RETURNING failures AS counted"
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
