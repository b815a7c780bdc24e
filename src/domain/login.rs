//! Login with a password (the back-off against guessing is in
//! [`super::throttle`]).

use secrecy::{ExposeSecret, SecretString};

use super::{
    deps::{Db, Hashing, Jobs, Mailing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    password,
    principal::{Actor, ClientInfo},
    sessions::{self, SessionGrant},
    suspension, throttle, two_factor,
    types::{Locale, Login},
};
use crate::{
    clock::Millis,
    crypto::password::Verified,
    entity::account,
    kinds::PasswordState,
    store::{self, login::Counted},
};

/// What `Login` answers when the password is right.
pub enum LoginOutcome {
    Session(SessionGrant),
    /// The account has 2FA: `VerifyLoginChallenge` finishes the login.
    Challenge(two_factor::Challenge),
}

/// The attempt counted against `key` and the account of `login` read, in
/// one trip; the account's row and whether it ever logged in from
/// `address` (a login from a new one is notified).
async fn count_and_find(
    ctx: &(impl Db + Settings),
    now: Millis,
    key: &str,
    login: &str,
    address: Option<&str>,
) -> Result<Option<store::login::Found>> {
    let counted = store::login::count_and_find(
        ctx.db(),
        &throttle::Backoff(&ctx.config().login),
        key,
        login,
        address,
        EventKind::LoginSucceeded.as_str(),
        now,
    )
    .await?;
    match counted {
        Counted::Counted(found) => Ok(found),
        Counted::Refused => Err(throttle::refused(ctx, now, key).await?),
    }
}

// The login as typed may be a password typed in the wrong field: the span
// carries its pseudonym, never the text.
#[tracing::instrument(skip_all, fields(login = %crate::telemetry::pseudonym(login)))]
pub async fn login(
    ctx: &(impl Db + Hashing + Mailing + Jobs + Clone + 'static),
    now: Millis,
    login: &str,
    password: SecretString,
    client: &ClientInfo,
) -> Result<LoginOutcome> {
    let result = attempt(ctx, now, login, password, client).await;
    let outcome = match &result {
        Ok(LoginOutcome::Challenge(_)) => "challenged",
        Ok(LoginOutcome::Session(_)) => "success",
        Err(error) => match error.kind() {
            Error::InvalidCredentials => "invalid",
            Error::PasswordSuspended { .. } => "suspended",
            Error::LoginBackoff { .. } | Error::Overloaded { .. } => "throttled",
            _ => "error",
        },
    };
    metrics::counter!("gardien_logins_total", "outcome" => outcome).increment(1);
    result
}

async fn attempt(
    ctx: &(impl Db + Hashing + Mailing + Jobs + Clone + 'static),
    now: Millis,
    login: &str,
    password: SecretString,
    client: &ClientInfo,
) -> Result<LoginOutcome> {
    let login = login.trim().to_lowercase();
    let key = throttle::key(&login);
    let address = client.address.as_deref();
    // A login that no account can have (control characters, NUL, spaces)
    // is not looked up: it answers as an unknown one, dummy hash included.
    let found = match Login::parse("login", &login) {
        Ok(valid) => count_and_find(ctx, now, &key, valid.as_str(), address).await?,
        Err(_) => {
            throttle::begin_attempt(ctx, now, &key).await?;
            None
        }
    };
    let (account, seen_here) = match found {
        Some(store::login::Found { account, seen_here }) => (Some(account), seen_here),
        None => (None, false),
    };
    let normalized = SecretString::from(password::normalize(password.expose_secret()));
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = ctx.hasher().verify(normalized.clone(), stored).await?;

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
                let queued = ctx.background().submit("failed login record", move || {
                    let (ctx, client) = (job_ctx.clone(), job_client.clone());
                    async move {
                        events::record(
                            ctx.db(),
                            now,
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

    if PasswordState::parse(&account.password_state) == PasswordState::Suspended {
        events::record(
            ctx.db(),
            now,
            account.id,
            EventKind::LoginFailed,
            &Actor::customer(),
            client,
            serde_json::json!({ "reason": "password_suspended" }),
        )
        .await?;
        return Err(suspension::refusal(ctx.db(), ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
    if PasswordState::parse(&account.password_state) != PasswordState::Active {
        return Err(Error::InvalidCredentials);
    }

    let new_hash = if needs_rehash {
        Some(ctx.hasher().hash(normalized).await?)
    } else {
        None
    };
    if !super::factors::has_second_factor(&account) {
        // Not on the very first login, nor from an address seen before.
        let notice_due = account.last_login_at.is_some() && client.address.is_some() && !seen_here;
        return open_session(ctx, &account, &key, new_hash, client, notice_due, now).await;
    }
    // Two factors: the password is accepted, the second factor finishes the
    // login. The failure count is cleared only once it passes: a new
    // challenge must not give a code guesser a fresh allowance.
    let txn = ctx.begin_write().await?;
    if !store::login::password_passed(&txn, account.id, new_hash).await? {
        // Suspended between the check and now.
        return Err(suspension::refusal(&txn, ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
    let challenge =
        two_factor::create_challenge(&txn, ctx.config(), ctx.sealer(), &account, client, now)
            .await?;
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
    ctx: &(impl Db + Mailing),
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
    let opening = store::login::Opening {
        account_id: account.id,
        key,
        new_hash,
        session,
        event,
        now,
    };
    // Nothing is affected, and nothing written, once the password is no
    // longer active.
    let opened = if !notice_due {
        // No notice to send: the writes are the whole transaction.
        store::login::open(ctx.db(), opening).await?
    } else {
        let txn = ctx.begin_write().await?;
        let opened = store::login::open_in(&txn, opening).await?;
        if opened {
            super::notices::send_new_login(&txn, ctx, now, account, client, event_id).await?;
            super::notices::commit(txn, ctx).await?;
        }
        opened
    };
    if !opened {
        return Err(suspension::refusal(ctx.db(), ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
    tracing::info!(account_id = %account.id, "login succeeded");
    Ok(LoginOutcome::Session(grant))
}
