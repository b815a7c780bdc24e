//! Getting back in: reset links, forgotten login identifiers, and password
//! changes. Requests answer the same whether or not an account matches; the
//! work happens off the response path and the e-mail goes through the
//! outbox.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::revocation::RevocationCause as Cause;
use super::{
    accounts, compromised,
    deps::{Db, Hashing, JobClock, Jobs, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    links, notices, password, pending,
    principal::{Actor, ClientInfo, CustomerSession},
    records::LiftMethod,
    sessions, suspension, throttle, two_factor,
    types::Locale,
};
use crate::{
    clock::Millis,
    crypto::token::{self, TokenKind},
    entity::{account, reset_token},
    kinds::PasswordState,
    mail::{outbox, Mail},
    store,
};

const HOUR_MS: i64 = 3_600_000;

/// Does the work of a recorded reset or reminder request
/// ([`pending::Work`]).
pub fn perform(
    ctx: impl Db + Mailing + JobClock + 'static,
    kind: pending::Kind,
    input: String,
    client: ClientInfo,
    claim: pending::Claim,
) -> futures::future::BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        // A job of its own: it reads the time when it starts.
        let now = ctx.now();
        match kind {
            pending::Kind::PasswordReset => {
                send_reset_links(&ctx, now, &input, &client, claim).await
            }
            pending::Kind::LoginRecovery => {
                send_login_reminder(&ctx, now, &input, &client, claim).await
            }
        }
    })
}

/// Accounts matching what a customer typed: a login identifier or a
/// contact e-mail (which several accounts may share).
async fn matching_accounts(
    db: &DatabaseConnection,
    login_or_email: &str,
) -> Result<Vec<account::Model>> {
    let typed = login_or_email.trim().to_lowercase();
    Ok(store::accounts::matching(db, &typed, typed.contains('@'), None).await?)
}

/// Answers at once; the matching accounts (if any) get a link shortly. The
/// request is recorded (sealed) before anything is looked up, so the answer
/// and its timing are the same whether or not an account matches, and a
/// request answered OK survives a full queue or a restart.
pub async fn request_reset(
    ctx: &(impl Db + Mailing + Jobs + JobClock + Clone + 'static),
    now: Millis,
    login_or_email: &str,
    client: &ClientInfo,
) -> Result<()> {
    pending::record(
        ctx,
        now,
        pending::Kind::PasswordReset,
        login_or_email,
        client,
        perform,
    )
    .await
}

/// The work of a recorded reset request: a link to every matching account
/// under its hourly limit, in one transaction that also deletes the request.
pub(super) async fn send_reset_links(
    ctx: &(impl Db + Mailing),
    now: Millis,
    login_or_email: &str,
    client: &ClientInfo,
    claim: pending::Claim,
) -> Result<()> {
    // Looked up before the transaction: holding its connection while
    // waiting for a second one could starve the pool.
    let accounts = matching_accounts(ctx.db(), login_or_email).await?;
    let txn = ctx.begin_write().await?;
    let mut queued = Vec::new();
    for account in accounts {
        lock_account(&txn, account.id).await?;
        // The account as it is under the lock: an e-mail change confirmed
        // since the lookup must not get a live link sent to the old address.
        let Some(account) = store::accounts::by_id(&txn, account.id).await? else {
            continue;
        };
        if recent_events(&txn, account.id, EventKind::PasswordResetRequested, now).await?
            >= u64::from(ctx.config().reset.max_requests_per_hour)
        {
            tracing::info!(account_id = %account.id, "reset request over the hourly limit, ignored");
            continue;
        }
        let secret = token::generate(TokenKind::Reset);
        let token_id = Uuid::now_v7();
        let ttl_secs = ctx.config().reset.token_ttl_secs;
        // Only the newest link is valid.
        suspension::invalidate_reset_tokens(&txn, now, account.id, None).await?;
        let link = reset_token::Model {
            id: token_id,
            account_id: account.id,
            token_hash: token::hash_secret(&secret),
            created_at: now,
            expires_at: now + ttl_secs as i64 * 1000,
            used_at: None,
            invalidated_at: None,
        };
        store::tokens::insert_reset(&txn, link).await?;
        events::record(
            &txn,
            now,
            account.id,
            EventKind::PasswordResetRequested,
            &Actor::customer(),
            client,
            serde_json::json!({}),
        )
        .await?;
        outbox::enqueue(
            &txn,
            &ctx.config().mail,
            ctx.sealer(),
            now,
            Some(account.id),
            &account.email,
            Locale::parse(&account.locale),
            &Mail::ResetLink {
                login: account.login.clone(),
                token: secret.expose_secret().to_string(),
                valid_minutes: ttl_secs.div_ceil(60),
            },
        )
        .await?;
        queued.push(account.id);
    }
    claim.finish(&txn).await?;
    txn.commit().await?;
    if !queued.is_empty() {
        ctx.outbox_signal().notify_one();
    }
    for account_id in queued {
        tracing::info!(%account_id, "reset link queued");
    }
    Ok(())
}

async fn recent_events<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    kind: EventKind,
    now: i64,
) -> Result<u64> {
    Ok(store::events::count_since(conn, account_id, kind.as_str(), now - HOUR_MS).await?)
}

/// Serialises the requests of one account for the rest of the transaction
/// (a row lock on PostgreSQL, the write lock on SQLite), so that the hourly
/// count cannot be raced.
async fn lock_account<C: ConnectionTrait>(conn: &C, account_id: Uuid) -> Result<()> {
    Ok(store::accounts::lock(conn, account_id).await?)
}

/// Answers at once; the address gets its login identifiers if any account
/// has it. Recorded like [`request_reset`].
pub async fn recover_login(
    ctx: &(impl Db + Mailing + Jobs + JobClock + Clone + 'static),
    now: Millis,
    email: &str,
    client: &ClientInfo,
) -> Result<()> {
    pending::record(
        ctx,
        now,
        pending::Kind::LoginRecovery,
        email,
        client,
        perform,
    )
    .await
}

/// The work of a recorded reminder request, in one transaction that also
/// deletes the request.
pub(super) async fn send_login_reminder(
    ctx: &(impl Db + Mailing),
    now: Millis,
    email: &str,
    client: &ClientInfo,
    claim: pending::Claim,
) -> Result<()> {
    let mut logins = Vec::new();
    let mut first: Option<account::Model> = None;
    // Looked up before the transaction: holding its connection while
    // waiting for a second one could starve the pool.
    let accounts = matching_accounts(ctx.db(), email).await?;
    let txn = ctx.begin_write().await?;
    for account in accounts {
        lock_account(&txn, account.id).await?;
        if recent_events(&txn, account.id, EventKind::LoginRecoveryRequested, now).await?
            >= u64::from(ctx.config().reset.max_requests_per_hour)
        {
            continue;
        }
        events::record(
            &txn,
            now,
            account.id,
            EventKind::LoginRecoveryRequested,
            &Actor::customer(),
            client,
            serde_json::json!({}),
        )
        .await?;
        logins.push(account.login.clone());
        first.get_or_insert(account);
    }
    let queued = first.is_some();
    if let Some(account) = first {
        outbox::enqueue(
            &txn,
            &ctx.config().mail,
            ctx.sealer(),
            now,
            Some(account.id),
            &account.email,
            Locale::parse(&account.locale),
            &Mail::LoginRecovery { logins },
        )
        .await?;
    }
    claim.finish(&txn).await?;
    txn.commit().await?;
    if queued {
        ctx.outbox_signal().notify_one();
    }
    Ok(())
}

pub struct CompleteReset {
    pub token: String,
    pub new_password: SecretString,
    /// Required when the account has 2FA: a reset never bypasses it.
    pub second_factor: Option<two_factor::SecondFactor>,
}

#[tracing::instrument(skip_all)]
pub async fn complete_reset(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    client: &ClientInfo,
    request: CompleteReset,
) -> Result<()> {
    let (row, account) =
        links::presented::<reset_token::Entity>(ctx.db(), now, TokenKind::Reset, &request.token)
            .await?;
    // On a 2FA account the attempt is counted before the password checks:
    // the refusal of a known-compromised password must not become an
    // unthrottled oracle for someone holding the link but not the factor.
    let factor = match (
        super::factors::has_second_factor(&account),
        &request.second_factor,
    ) {
        (false, _) => None,
        (true, None) => {
            return Err(Error::SecondFactorRequired {
                field: if account.totp_secret.is_some() {
                    "totp_code"
                } else {
                    "passkey_assertion_json"
                }
                .into(),
            })
        }
        (true, Some(factor)) => {
            throttle::begin_attempt(ctx, now, &throttle::key(&account.login)).await?;
            Some(factor)
        }
    };
    // A passkey answers the options of GetResetPasskeyOptions, bound to
    // this link.
    let passkey_check = match factor {
        Some(two_factor::SecondFactor::Passkey(assertion)) => {
            Some(super::passkeys::check_bound(ctx, now, &account, row.id, assertion, client).await?)
        }
        _ => None,
    };
    let checked = check_policy(ctx, &account, &request.new_password, None).await?;
    let hash = ctx.hasher().hash(checked.secret()).await?;
    let actor = Actor::customer();
    let txn = ctx.begin_write().await?;
    // Of concurrent uses of one token exactly one passes this line.
    links::consume::<reset_token::Entity, _>(&txn, &row, now).await?;
    if let Some(passkey_check) = &passkey_check {
        super::passkeys::consume(&txn, passkey_check, now).await?;
    } else if let Some(factor) = factor {
        // A wrong or replayed code rolls the whole reset back: the link
        // stays usable and the password unchanged.
        two_factor::accept_second_factor(&txn, ctx, &account, factor, client, now).await?;
    }
    store::challenges::revoke_all(&txn, account.id, now).await?;
    let was_suspended = store::accounts::by_id(&txn, account.id)
        .await?
        .is_some_and(|a| PasswordState::parse(&a.password_state) == PasswordState::Suspended);
    set_password(&txn, now, &account, hash).await?;
    suspension::invalidate_reset_tokens(&txn, now, account.id, Some(row.id)).await?;
    let sessions_revoked = sessions::revoke_all(
        &txn,
        now,
        account.id,
        None,
        Cause::PasswordReset,
        &actor,
        client,
    )
    .await?;
    if was_suspended {
        suspension::close_suspension(&txn, now, account.id, &actor, LiftMethod::PasswordReset)
            .await?;
        events::record(
            &txn,
            now,
            account.id,
            EventKind::SuspensionLifted,
            &actor,
            client,
            serde_json::json!({ "method": "password_reset" }),
        )
        .await?;
    }
    let event_id = events::record(
        &txn,
        now,
        account.id,
        EventKind::PasswordResetCompleted,
        &actor,
        client,
        serde_json::json!({ "sessions_revoked": sessions_revoked }),
    )
    .await?;
    notify_password_changed(&txn, ctx, now, &account, event_id).await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(account_id = %account.id, was_suspended, "password reset completed");
    metrics::counter!("gardien_password_resets_total").increment(1);
    Ok(())
}

/// `ChangePassword`: needs the current password; ends every other session.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn change_password(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    current: SecretString,
    new_password: SecretString,
) -> Result<u64> {
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    throttle::check_password(ctx, now, &account, current.clone()).await?;
    throttle::clear_failures(ctx.db(), &throttle::key(&account.login)).await?;
    let checked = check_policy(ctx, &account, &new_password, Some(&current)).await?;
    let hash = ctx.hasher().hash(checked.secret()).await?;
    let txn = ctx.begin_write().await?;
    let changed = store::accounts::set_password(
        &txn,
        account.id,
        hash,
        None,
        Some(PasswordState::Active),
        now,
    )
    .await?;
    if !changed {
        return Err(suspension::refusal(&txn, ctx, account.id)
            .await?
            .for_account(Locale::parse(&account.locale)));
    }
    suspension::invalidate_reset_tokens(&txn, now, account.id, None).await?;
    let revoked = sessions::revoke_all(
        &txn,
        now,
        account.id,
        Some(caller.session_id),
        Cause::PasswordChange,
        &Actor::customer(),
        client,
    )
    .await?;
    store::challenges::revoke_all(&txn, account.id, now).await?;
    let event_id = events::record(
        &txn,
        now,
        account.id,
        EventKind::PasswordChanged,
        &Actor::customer(),
        client,
        serde_json::json!({ "sessions_revoked": revoked }),
    )
    .await?;
    notify_password_changed(&txn, ctx, now, &account, event_id).await?;
    notices::commit(txn, ctx).await?;
    Ok(revoked)
}

/// Checks `new_password` (field `new_password`) for `account`: not the
/// `current` one when given, the policy, and none of the account's known
/// compromised passwords. Refusals are told in the account's language.
async fn check_policy(
    ctx: &(impl Db + Hashing),
    account: &account::Model,
    new_password: &SecretString,
    current: Option<&SecretString>,
) -> Result<password::NewPassword> {
    const FIELD: &str = "new_password";
    let locale = Locale::parse(&account.locale);
    let same_as_current = current.is_some_and(|current| {
        password::normalize(current.expose_secret())
            == password::normalize(new_password.expose_secret())
    });
    if same_as_current {
        return Err(Error::PasswordTooWeak {
            field: FIELD.into(),
            rejection: password::PasswordRejection::SameAsCurrent,
        }
        .for_account(locale));
    }
    let checked =
        accounts::check_new_password(ctx, new_password, &account.login, &account.email, FIELD)
            .await
            .map_err(|error| error.for_account(locale))?;
    compromised::ensure_not_compromised(ctx, account.id, &checked, FIELD)
        .await
        .map_err(|error| error.for_account(locale))?;
    Ok(checked)
}

async fn set_password<C: sea_orm::ConnectionTrait>(
    conn: &C,
    now: i64,
    account: &account::Model,
    hash: String,
) -> Result<()> {
    store::accounts::set_password(
        conn,
        account.id,
        hash,
        Some(PasswordState::Active),
        None,
        now,
    )
    .await?;
    throttle::clear_failures(conn, &throttle::key(&account.login)).await
}

async fn notify_password_changed<C: sea_orm::ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    event_id: Uuid,
) -> Result<()> {
    let report_token = notices::report_token(conn, now, account.id, Some(event_id)).await?;
    let mail = Mail::PasswordChanged {
        login: account.login.clone(),
        report_token,
    };
    notices::send(conn, ctx, now, account, &mail).await
}
