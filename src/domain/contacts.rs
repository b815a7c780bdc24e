//! Contact details: read them with when and by whom each last changed,
//! change them (recent authentication required), and their history. Every
//! change is told to the contact e-mail with a "this wasn't me" link. A new
//! contact e-mail takes effect only once the new address confirms it; the
//! old address is told when it is asked for and when it takes effect, and
//! the links mailed to it before stop working then.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    deps::{Db, Hashing, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    links, notices,
    principal::{Actor, ClientInfo, CustomerSession},
    records::{Account, ContactChange},
    throttle,
    types::{Email, Phone, PostalAddress},
};
use crate::{
    clock::Millis,
    crypto::token::{self, TokenKind},
    entity::{account, contact_change, email_change},
    mail::{outbox, Mail},
    store,
};

pub use crate::kinds::Field;

const CONFIRMATION_TTL_MS: i64 = 24 * 3600 * 1000;

pub struct ContactView {
    pub account: Account,
    pub last_changes: Vec<ContactChange>,
    pub pending_email: Option<PendingEmail>,
}

/// A new contact e-mail waiting for its confirmation.
pub struct PendingEmail {
    pub new_email: String,
    pub expires_at: i64,
}

impl ContactView {
    pub fn last_change(&self, field: Field) -> Option<&ContactChange> {
        self.last_changes.iter().find(|c| c.field == Some(field))
    }
}

/// The contact details, their last changes and the e-mail change pending
/// at `now`.
pub async fn get(db: &DatabaseConnection, account_id: Uuid, now: i64) -> Result<ContactView> {
    let account = store::accounts::by_id(db, account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let mut last_changes = Vec::new();
    for field in [Field::Email, Field::Phone, Field::PostalAddress] {
        if let Some(change) = store::contacts::last_change(db, account_id, field.as_str()).await? {
            last_changes.push(ContactChange::from(&change));
        }
    }
    let pending_email = store::contacts::pending_email(db, account_id, now)
        .await?
        .map(|pending| PendingEmail {
            new_email: pending.new_email,
            expires_at: pending.expires_at,
        });
    Ok(ContactView {
        account: Account::from(&account),
        last_changes,
        pending_email,
    })
}

/// A validated `UpdateContactDetails`: only the fields in the mask.
#[derive(Default)]
pub struct Update {
    pub email: Option<Email>,
    pub phone: Option<Option<Phone>>,
    pub address: Option<PostalAddress>,
}

/// One line, as the proto renders it: "line1, line2, postal_code city,
/// country_code", empty parts omitted.
pub fn address_text(address: &PostalAddress) -> String {
    fn join<'a>(parts: impl IntoIterator<Item = &'a Option<String>>, separator: &str) -> String {
        parts
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(separator)
    }
    let locality = Some(join([&address.postal_code, &address.city], " "));
    join(
        [
            &address.line1,
            &address.line2,
            &locality,
            &address.country_code,
        ],
        ", ",
    )
}

fn stored_address(account: &account::Model) -> String {
    address_text(&PostalAddress {
        line1: account.address_line1.clone(),
        line2: account.address_line2.clone(),
        postal_code: account.postal_code.clone(),
        city: account.city.clone(),
        country_code: account.country_code.clone(),
    })
}

/// Applies phone and address at once; an e-mail change waits for the new
/// address to confirm. Returns whether an e-mail change is pending.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn update(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    password: Option<SecretString>,
    update: Update,
) -> Result<bool> {
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let window_ms = ctx.config().totp.recent_auth_secs as i64 * 1000;
    if now - caller.authenticated_at > window_ms {
        let Some(password) = password else {
            return Err(Error::RecentAuthenticationRequired);
        };
        throttle::check_password(ctx, now, &account, password).await?;
        throttle::clear_failures(ctx.db(), &throttle::key(&account.login)).await?;
    }
    let actor = Actor::customer();
    let txn = ctx.begin_write().await?;
    let mut changes = Vec::new();
    let mut phone_column = None;
    if let Some(phone) = &update.phone {
        let new = phone.as_ref().map(|p| p.as_str().to_string());
        phone_column = Some(new.clone());
        changes.push((
            Field::Phone,
            account.phone.clone().unwrap_or_default(),
            new.unwrap_or_default(),
        ));
    }
    let mut address_columns = None;
    if let Some(address) = &update.address {
        address_columns = Some(store::contacts::Address {
            line1: address.line1.clone(),
            line2: address.line2.clone(),
            postal_code: address.postal_code.clone(),
            city: address.city.clone(),
            country_code: address.country_code.clone(),
        });
        changes.push((
            Field::PostalAddress,
            stored_address(&account),
            address_text(address),
        ));
    }
    store::contacts::update_details(&txn, account.id, phone_column, address_columns, now).await?;
    for (field, old, new) in changes {
        let event_id =
            record_change(&txn, now, &account, field, &old, &new, &actor, client).await?;
        let report_token = notices::report_token(&txn, now, account.id, Some(event_id)).await?;
        let notice = Mail::ContactDetailsChanged {
            login: account.login.clone(),
            field,
            removed: new.is_empty(),
            report_token,
        };
        notices::send(&txn, ctx, now, &account, &notice).await?;
    }
    let pending = match &update.email {
        Some(email) if email.as_str() != account.email => {
            request_email_change(&txn, ctx, now, &account, email, client).await?;
            true
        }
        _ => false,
    };
    notices::commit(txn, ctx).await?;
    Ok(pending)
}

#[allow(clippy::too_many_arguments)]
async fn record_change<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account: &account::Model,
    field: Field,
    old: &str,
    new: &str,
    actor: &Actor,
    client: &ClientInfo,
) -> Result<Uuid> {
    let event_id = events::record(
        conn,
        now,
        account.id,
        EventKind::ContactDetailsChanged,
        actor,
        client,
        serde_json::json!({ "field": field.as_str() }),
    )
    .await?;
    let change = contact_change::Model {
        id: Uuid::now_v7(),
        account_id: account.id,
        field: field.as_str().into(),
        old_value: old.into(),
        new_value: new.into(),
        changed_at: now,
        actor_kind: actor.kind.as_str().into(),
        actor_name: actor.name.clone(),
        client_address: client.address.clone(),
        event_id: Some(event_id),
    };
    store::contacts::insert_change(conn, change).await?;
    Ok(event_id)
}

async fn request_email_change<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    now: i64,
    account: &account::Model,
    email: &Email,
    client: &ClientInfo,
) -> Result<()> {
    // Only the newest request can be confirmed.
    store::contacts::cancel_pending_emails(conn, account.id, now).await?;
    let secret = token::generate(TokenKind::EmailConfirmation);
    let request = email_change::Model {
        id: Uuid::now_v7(),
        account_id: account.id,
        new_email: email.as_str().into(),
        token_hash: token::hash_secret(&secret),
        created_at: now,
        expires_at: now + CONFIRMATION_TTL_MS,
        confirmed_at: None,
        cancelled_at: None,
        client_address: client.address.clone(),
    };
    store::contacts::insert_email_change(conn, request).await?;
    let event_id = events::record(
        conn,
        now,
        account.id,
        EventKind::ContactEmailChangeRequested,
        &Actor::customer(),
        client,
        serde_json::json!({ "new_email": email.as_str() }),
    )
    .await?;
    let report_token = notices::report_token(conn, now, account.id, Some(event_id)).await?;
    let to_old = Mail::EmailChangeRequested {
        login: account.login.clone(),
        new_email: email.as_str().into(),
        report_token,
    };
    notices::send(conn, ctx, now, account, &to_old).await?;
    let to_new = Mail::ConfirmEmail {
        login: account.login.clone(),
        token: secret.expose_secret().to_string(),
    };
    notices::send_to(conn, ctx, now, account, email.as_str(), &to_new).await
}

/// Messages that must not reach an address the customer has left.
const WITHDRAWN_ON_EMAIL_CHANGE: &[&str] = &["reset_link", "login_recovery"];

/// Undoes a reported e-mail change: the address it replaced (where the
/// report link was sent) is the contact e-mail again, so the notices of the
/// report and the next reset link reach the customer rather than the
/// address they disowned. Links and queued reset or reminder e-mails sent
/// to the disowned address die with it. Only while the address the change
/// set is still the contact e-mail; returns the account as it now is.
pub(super) async fn restore_disowned_email<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account: &account::Model,
    event_id: Uuid,
    client: &ClientInfo,
) -> Result<Option<account::Model>> {
    let Some(change) =
        store::contacts::change_of_event(conn, account.id, event_id, Field::Email.as_str()).await?
    else {
        return Ok(None);
    };
    if change.new_value != account.email {
        return Ok(None);
    }
    let restored = store::contacts::set_email(
        conn,
        account.id,
        change.old_value.clone(),
        Some(change.new_value.clone()),
        now,
    )
    .await?;
    if !restored {
        return Ok(None);
    }
    super::suspension::invalidate_reset_tokens(conn, now, account.id, None).await?;
    notices::invalidate_report_tokens(conn, now, account.id).await?;
    outbox::withdraw(
        conn,
        account.id,
        &change.new_value,
        WITHDRAWN_ON_EMAIL_CHANGE,
    )
    .await?;
    record_change(
        conn,
        now,
        account,
        Field::Email,
        &change.new_value,
        &change.old_value,
        &Actor::customer(),
        client,
    )
    .await?;
    Ok(Some(account::Model {
        email: change.old_value,
        ..account.clone()
    }))
}

/// `ConfirmEmailChange`: the link sent to the new address makes it the
/// contact e-mail. In the same transaction, what was mailed to the old
/// address stops working (reset links, "this wasn't me" links, messages
/// still queued for it), and the old address is told, with a fresh
/// "this wasn't me" link.
#[tracing::instrument(skip_all)]
pub async fn confirm_email(
    ctx: &(impl Db + Mailing),
    now: Millis,
    presented: &str,
    client: &ClientInfo,
) -> Result<()> {
    let (row, account) = links::presented::<email_change::Entity>(
        ctx.db(),
        now,
        TokenKind::EmailConfirmation,
        presented,
    )
    .await?;
    let txn = ctx.begin_write().await?;
    links::consume::<email_change::Entity, _>(&txn, &row, now).await?;
    store::contacts::set_email(&txn, account.id, row.new_email.clone(), None, now).await?;
    let resets = super::suspension::invalidate_reset_tokens(&txn, now, account.id, None).await?;
    let reports = notices::invalidate_report_tokens(&txn, now, account.id).await?;
    let queued =
        outbox::withdraw(&txn, account.id, &account.email, WITHDRAWN_ON_EMAIL_CHANGE).await?;
    let event_id = record_change(
        &txn,
        now,
        &account,
        Field::Email,
        &account.email,
        &row.new_email,
        &Actor::customer(),
        client,
    )
    .await?;
    let report_token = notices::report_token(&txn, now, account.id, Some(event_id)).await?;
    let to_old = Mail::EmailChanged {
        login: account.login.clone(),
        new_email: row.new_email.clone(),
        report_token,
    };
    notices::send_to(&txn, ctx, now, &account, &account.email, &to_old).await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(
        account_id = %account.id,
        reset_links_revoked = resets,
        report_links_revoked = reports,
        messages_withdrawn = queued,
        "contact e-mail changed"
    );
    Ok(())
}

/// The history of contact changes, newest first.
pub async fn changes(
    db: &DatabaseConnection,
    account_id: Uuid,
    page_size: u64,
    before: Option<Uuid>,
) -> Result<(Vec<ContactChange>, Option<Uuid>)> {
    let rows = store::contacts::changes(db, account_id, page_size + 1, before).await?;
    let (rows, next) = super::page(rows, page_size, |r| r.id);
    Ok((rows.iter().map(ContactChange::from).collect(), next))
}
