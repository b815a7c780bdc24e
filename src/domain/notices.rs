//! Security notices to the customer: the outbox e-mail in the account's
//! language, and the single-use "this wasn't me" link (valid 7 days) that
//! the notices of password, 2FA, contact e-mail and new-login changes carry.

use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{
    deps::{OutboxSignal, Sealing, Settings},
    error::Result,
    events::EventKind,
    principal::{Actor, ClientInfo},
    types::Locale,
};
use crate::{
    crypto::token::{self, TokenKind},
    entity::account,
    mail::{outbox, Mail},
    store,
};

pub const REPORT_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Queues `mail` to the account's contact e-mail, in the caller's transaction.
pub async fn send<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    mail: &Mail,
) -> Result<()> {
    send_to(conn, ctx, now, account, &account.email, mail).await
}

/// Queues `mail` to another address of the account (e.g. a new e-mail).
pub async fn send_to<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    recipient: &str,
    mail: &Mail,
) -> Result<()> {
    outbox::enqueue(
        conn,
        &ctx.config().mail,
        ctx.sealer(),
        now,
        Some(account.id),
        recipient,
        Locale::parse(&account.locale),
        mail,
    )
    .await?;
    Ok(())
}

/// A change to record in the journal and report to the customer.
pub struct Reported<'a> {
    pub kind: EventKind,
    pub actor: &'a Actor,
    pub client: &'a ClientInfo,
    pub details: serde_json::Value,
}

/// The one way a reported change ends, in the caller's transaction: the
/// event recorded, a "this wasn't me" link bound to it, and the notice
/// (built around that link by `mail`) queued to the contact e-mail. Commit
/// with [`commit`]. Answers the event's id.
pub async fn record_and_report<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    change: Reported<'_>,
    mail: impl FnOnce(String) -> Mail,
) -> Result<Uuid> {
    let event_id = super::events::record(
        conn,
        now,
        account.id,
        change.kind,
        change.actor,
        change.client,
        change.details,
    )
    .await?;
    let report_token = report_token(conn, now, account.id, Some(event_id)).await?;
    send(conn, ctx, now, account, &mail(report_token)).await?;
    Ok(event_id)
}

/// Commits a transaction that queued e-mail, then wakes the outbox worker.
pub async fn commit(txn: sea_orm::DatabaseTransaction, ctx: &impl OutboxSignal) -> Result<()> {
    txn.commit().await?;
    ctx.outbox_signal().notify_one();
    Ok(())
}

/// A new "this wasn't me" token about `event_id`; only its hash is stored.
pub async fn report_token<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    event_id: Option<Uuid>,
) -> Result<String> {
    let secret = token::generate(TokenKind::Report);
    store::tokens::insert_report(
        conn,
        account_id,
        token::hash_secret(&secret),
        event_id,
        now,
        now + REPORT_TTL_MS,
    )
    .await?;
    Ok(secret.expose_secret().to_string())
}

/// Revokes every unused "this wasn't me" link of an account: each went to
/// the contact e-mail of its time, which the customer has just replaced.
pub async fn invalidate_report_tokens<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
) -> Result<u64> {
    Ok(store::tokens::withdraw_reports(conn, account_id, now).await?)
}

/// Whether the login `event_id` of `account` from `client` earns a
/// new-address notice: not its first login, and no other successful login
/// came from that address.
async fn new_login_due<C: ConnectionTrait>(
    conn: &C,
    account: &account::Model,
    client: &super::principal::ClientInfo,
    event_id: Uuid,
) -> Result<bool> {
    let (Some(_), Some(address)) = (account.last_login_at, client.address.as_deref()) else {
        return Ok(false);
    };
    let kind = super::events::EventKind::LoginSucceeded.as_str();
    let seen = store::events::exists_from(conn, account.id, kind, address, event_id).await?;
    Ok(!seen)
}

/// After a successful login: tells the customer when it came from an
/// address this account never logged in from (not on the very first login).
pub async fn new_login<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    client: &super::principal::ClientInfo,
    event_id: Uuid,
) -> Result<()> {
    if !new_login_due(conn, account, client, event_id).await? {
        return Ok(());
    }
    send_new_login(conn, ctx, now, account, client, event_id).await
}

/// The new-address notice of the login `event_id`, once it is known due.
pub async fn send_new_login<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    client: &super::principal::ClientInfo,
    event_id: Uuid,
) -> Result<()> {
    let Some(address) = client.address.as_deref() else {
        return Ok(());
    };
    let report_token = report_token(conn, now, account.id, Some(event_id)).await?;
    let mail = Mail::NewLogin {
        login: account.login.clone(),
        address: address.to_string(),
        report_token,
    };
    send(conn, ctx, now, account, &mail).await
}
