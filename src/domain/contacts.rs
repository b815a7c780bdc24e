//! Contact details: read them with when and by whom each last changed,
//! change them (recent authentication required), and their history. Every
//! change is told to the contact e-mail with a "this wasn't me" link. A new
//! contact e-mail takes effect only once the new address confirms it; the
//! old address is told when it is asked for and when it takes effect, and
//! the links mailed to it before stop working then.

use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    error::{Error, Result},
    events::{self, EventKind},
    links, notices,
    principal::{Actor, ClientInfo, CustomerSession},
    throttle,
    types::{Email, Phone, PostalAddress},
    Context,
};
use crate::{
    crypto::token::{self, TokenKind},
    entity::{account, contact_change, email_change},
    mail::{outbox, Mail},
};

pub use crate::kinds::Field;

const CONFIRMATION_TTL_MS: i64 = 24 * 3600 * 1000;

pub struct ContactView {
    pub account: account::Model,
    pub last_changes: Vec<contact_change::Model>,
    pub pending_email: Option<email_change::Model>,
}

impl ContactView {
    pub fn last_change(&self, field: Field) -> Option<&contact_change::Model> {
        self.last_changes.iter().find(|c| c.field == field.as_str())
    }
}

/// The contact details, their last changes and the e-mail change pending
/// at `now`.
pub async fn get(ctx: &Context, account_id: Uuid, now: i64) -> Result<ContactView> {
    let account = account::Entity::find_by_id(account_id)
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let mut last_changes = Vec::new();
    for field in [Field::Email, Field::Phone, Field::PostalAddress] {
        if let Some(change) = contact_change::Entity::find()
            .filter(contact_change::Column::AccountId.eq(account_id))
            .filter(contact_change::Column::Field.eq(field.as_str()))
            .order_by_desc(contact_change::Column::Id)
            .one(&ctx.db)
            .await?
        {
            last_changes.push(change);
        }
    }
    let pending_email = email_change::Entity::find()
        .filter(email_change::Column::AccountId.eq(account_id))
        .filter(email_change::Column::ConfirmedAt.is_null())
        .filter(email_change::Column::CancelledAt.is_null())
        .filter(email_change::Column::ExpiresAt.gt(now))
        .order_by_desc(email_change::Column::Id)
        .one(&ctx.db)
        .await?;
    Ok(ContactView {
        account,
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
    ctx: &Context,
    caller: &CustomerSession,
    client: &ClientInfo,
    password: Option<SecretString>,
    update: Update,
) -> Result<bool> {
    let account = account::Entity::find_by_id(caller.account_id)
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let window_ms = ctx.config.totp.recent_auth_secs as i64 * 1000;
    if ctx.now() - caller.authenticated_at > window_ms {
        let Some(password) = password else {
            return Err(Error::RecentAuthenticationRequired);
        };
        throttle::check_password(ctx, &account, password).await?;
        throttle::clear_failures(&ctx.db, &throttle::key(&account.login)).await?;
    }
    let now = ctx.now();
    let actor = Actor::customer();
    let txn = ctx.begin_write().await?;
    let mut change = account::Entity::update_many()
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account.id));
    let mut changes = Vec::new();
    if let Some(phone) = &update.phone {
        let new = phone.as_ref().map(|p| p.as_str().to_string());
        change = change.col_expr(account::Column::Phone, Expr::value(new.clone()));
        changes.push((
            Field::Phone,
            account.phone.clone().unwrap_or_default(),
            new.unwrap_or_default(),
        ));
    }
    if let Some(address) = &update.address {
        change = change
            .col_expr(
                account::Column::AddressLine1,
                Expr::value(address.line1.clone()),
            )
            .col_expr(
                account::Column::AddressLine2,
                Expr::value(address.line2.clone()),
            )
            .col_expr(
                account::Column::PostalCode,
                Expr::value(address.postal_code.clone()),
            )
            .col_expr(account::Column::City, Expr::value(address.city.clone()))
            .col_expr(
                account::Column::CountryCode,
                Expr::value(address.country_code.clone()),
            );
        changes.push((
            Field::PostalAddress,
            stored_address(&account),
            address_text(address),
        ));
    }
    change.exec(&txn).await?;
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
    txn.commit().await?;
    ctx.outbox_signal.notify_one();
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
    contact_change::Entity::insert(contact_change::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account.id),
        field: Set(field.as_str().into()),
        old_value: Set(old.into()),
        new_value: Set(new.into()),
        changed_at: Set(now),
        actor_kind: Set(actor.kind.as_str().into()),
        actor_name: Set(actor.name.clone()),
        client_address: Set(client.address.clone()),
        event_id: Set(Some(event_id)),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(event_id)
}

async fn request_email_change<C: ConnectionTrait>(
    conn: &C,
    ctx: &Context,
    now: i64,
    account: &account::Model,
    email: &Email,
    client: &ClientInfo,
) -> Result<()> {
    // Only the newest request can be confirmed.
    email_change::Entity::update_many()
        .col_expr(email_change::Column::CancelledAt, Expr::value(now))
        .filter(email_change::Column::AccountId.eq(account.id))
        .filter(email_change::Column::ConfirmedAt.is_null())
        .filter(email_change::Column::CancelledAt.is_null())
        .exec(conn)
        .await?;
    let secret = token::generate(TokenKind::EmailConfirmation);
    email_change::Entity::insert(email_change::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account.id),
        new_email: Set(email.as_str().into()),
        token_hash: Set(token::hash_secret(&secret)),
        created_at: Set(now),
        expires_at: Set(now + CONFIRMATION_TTL_MS),
        confirmed_at: Set(None),
        cancelled_at: Set(None),
        client_address: Set(client.address.clone()),
    })
    .exec_without_returning(conn)
    .await?;
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
    let Some(change) = contact_change::Entity::find()
        .filter(contact_change::Column::EventId.eq(event_id))
        .filter(contact_change::Column::AccountId.eq(account.id))
        .filter(contact_change::Column::Field.eq(Field::Email.as_str()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    if change.new_value != account.email {
        return Ok(None);
    }
    let restored = account::Entity::update_many()
        .col_expr(
            account::Column::Email,
            Expr::value(change.old_value.clone()),
        )
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account.id))
        .filter(account::Column::Email.eq(change.new_value.clone()))
        .exec(conn)
        .await?;
    if restored.rows_affected != 1 {
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
pub async fn confirm_email(ctx: &Context, presented: &str, client: &ClientInfo) -> Result<()> {
    let (row, account) =
        links::presented::<email_change::Entity>(ctx, TokenKind::EmailConfirmation, presented)
            .await?;
    let now = ctx.now();
    let txn = ctx.begin_write().await?;
    links::consume::<email_change::Entity, _>(&txn, &row, now).await?;
    account::Entity::update_many()
        .col_expr(account::Column::Email, Expr::value(row.new_email.clone()))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account.id))
        .exec(&txn)
        .await?;
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
    txn.commit().await?;
    ctx.outbox_signal.notify_one();
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
    ctx: &Context,
    account_id: Uuid,
    page_size: u64,
    before: Option<Uuid>,
) -> Result<(Vec<contact_change::Model>, Option<Uuid>)> {
    let mut query = contact_change::Entity::find()
        .filter(contact_change::Column::AccountId.eq(account_id))
        .order_by_desc(contact_change::Column::Id)
        .limit(page_size + 1);
    if let Some(before) = before {
        query = query.filter(contact_change::Column::Id.lt(before));
    }
    Ok(super::page(query.all(&ctx.db).await?, page_size, |r| r.id))
}
