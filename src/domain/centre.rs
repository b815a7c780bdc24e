//! The information centre: activity reported by other services, the
//! customer acknowledging what they saw, and acting on what they did not do
//! ("this wasn't me"), from the journal or from the link in a notice.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::revocation::RevocationCause as Cause;
use super::{
    compromised,
    deps::{Db, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    links, notices,
    principal::{Actor, ClientInfo},
    records::Event,
    sessions, support,
    suspension::{self, Reason, SuspendRequest},
};
use crate::{
    clock::Millis,
    crypto::token::TokenKind,
    entity::{account, report_token, security_event},
    mail::Mail,
    store,
};

/// Activity other services report into the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    OrderPlaced,
    ServiceOrdered,
    ServiceCancelled,
    DomainTransfer,
    ApiKeyCreated,
}

impl ActivityKind {
    pub fn event_kind(self) -> EventKind {
        match self {
            ActivityKind::OrderPlaced => EventKind::OrderPlaced,
            ActivityKind::ServiceOrdered => EventKind::ServiceOrdered,
            ActivityKind::ServiceCancelled => EventKind::ServiceCancelled,
            ActivityKind::DomainTransfer => EventKind::DomainTransfer,
            ActivityKind::ApiKeyCreated => EventKind::ApiKeyCreated,
        }
    }
}

pub struct Activity {
    pub account_id: Uuid,
    pub service_event_id: String,
    pub kind: ActivityKind,
    pub occurred_at: i64,
    pub reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub items_summary: String,
    pub client: ClientInfo,
}

/// Records activity; a repeat of the same service event id returns the
/// first event and `true`.
#[tracing::instrument(skip_all, fields(account_id = %activity.account_id))]
pub async fn record_activity(
    ctx: &impl Db,
    service: &Actor,
    activity: Activity,
) -> Result<(Event, bool)> {
    let service_name = service.name.clone().unwrap_or_default();
    if let Some(existing) = find_source(ctx.db(), &service_name, &activity.service_event_id).await?
    {
        if existing.account_id != activity.account_id {
            return Err(Error::invalid(
                "service_event_id",
                "was already used for another account",
            ));
        }
        return Ok((Event::from(&existing), true));
    }
    store::accounts::by_id(ctx.db(), activity.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let mut details = serde_json::json!({ "reference": activity.reference });
    if !activity.currency.is_empty() {
        details["amount_minor"] = activity.amount_minor.into();
        details["currency"] = activity.currency.clone().into();
    }
    if !activity.items_summary.is_empty() {
        details["items_summary"] = activity.items_summary.clone().into();
    }
    let model = security_event::Model {
        id: Uuid::now_v7(),
        account_id: activity.account_id,
        kind: activity.kind.event_kind().as_str().into(),
        occurred_at: activity.occurred_at,
        actor_kind: service.kind.as_str().into(),
        actor_name: Some(service_name.clone()),
        client_address: activity.client.address.clone(),
        user_agent: activity.client.user_agent.clone(),
        details: details.to_string(),
        acknowledged_at: None,
        disputed_at: None,
        source_event_id: Some(activity.service_event_id.clone()),
    };
    match store::events::insert(ctx.db(), model.clone()).await {
        Ok(_) => Ok((Event::from(&model), false)),
        Err(error)
            if matches!(
                error.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            // A concurrent retry won; answer with its event.
            let existing = find_source(ctx.db(), &service_name, &activity.service_event_id)
                .await?
                .ok_or(Error::internal(anyhow::anyhow!("activity vanished")))?;
            Ok((Event::from(&existing), true))
        }
        Err(error) => Err(error.into()),
    }
}

async fn find_source(
    db: &DatabaseConnection,
    service: &str,
    source_event_id: &str,
) -> Result<Option<security_event::Model>> {
    Ok(store::events::by_source(db, service, source_event_id).await?)
}

/// Marks the caller's events seen; returns how many were newly marked. All
/// or nothing: an id that is not one of the caller's events (another
/// customer's, or none) is `NotFound` and nothing changes.
pub async fn acknowledge(
    db: &DatabaseConnection,
    now: Millis,
    account_id: Uuid,
    event_ids: &[Uuid],
) -> Result<u64> {
    let wanted: std::collections::BTreeSet<Uuid> = event_ids.iter().copied().collect();
    let txn = crate::store::db::begin_write(db).await?;
    let own =
        store::events::count_of_account_among(&txn, account_id, wanted.iter().copied()).await?;
    if own != wanted.len() as u64 {
        return Err(Error::NotFound("security event"));
    }
    let marked = store::events::acknowledge(&txn, account_id, wanted, now).await?;
    txn.commit().await?;
    Ok(marked)
}

/// What a dispute did.
pub struct Disputed {
    pub ticket: crate::entity::ticket::Model,
    pub password_suspended: bool,
    pub sessions_revoked: u64,
}

/// How the customer reached us: from a session (which survives unless the
/// password gets suspended) or from a notice's link.
pub enum Via {
    Session(Uuid),
    Link,
}

/// "This wasn't me" on one of the caller's events, in one transaction:
/// the event is marked disputed, a linked high-priority ticket opened, the
/// other sessions revoked and, for the configured kinds, the password
/// suspended with reason "customer reported".
#[tracing::instrument(skip_all, fields(account_id = %account_id, event_id = %event_id))]
pub async fn dispute(
    ctx: &(impl Db + Mailing),
    now: Millis,
    account_id: Uuid,
    event_id: Uuid,
    comment: &str,
    client: &ClientInfo,
    via: Via,
) -> Result<Disputed> {
    let account = store::accounts::by_id(ctx.db(), account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let event = store::events::by_id(ctx.db(), event_id)
        .await?
        .filter(|e| e.account_id == account_id)
        .ok_or(Error::NotFound("security event"))?;
    let txn = ctx.begin_write().await?;
    let marked = store::events::dispute(&txn, event.id, now).await?;
    if !marked && matches!(via, Via::Session(_)) {
        return Err(Error::AlreadyExists {
            what: "a dispute of this event",
            field: "event_id".into(),
        });
    }
    let done = secure_account(
        &txn,
        ctx,
        &account,
        Some(&event),
        comment,
        client,
        &via,
        now,
    )
    .await?;
    notices::commit(txn, ctx).await?;
    Ok(done)
}

#[allow(clippy::too_many_arguments)]
async fn secure_account<C: ConnectionTrait>(
    txn: &C,
    ctx: &(impl Settings + Sealing),
    account: &account::Model,
    event: Option<&security_event::Model>,
    comment: &str,
    client: &ClientInfo,
    via: &Via,
    now: i64,
) -> Result<Disputed> {
    // A reported e-mail change gives the address back first, so that what
    // follows reaches the customer.
    let restored = match event {
        Some(event) => {
            super::contacts::restore_disowned_email(txn, now, account, event.id, client).await?
        }
        None => None,
    };
    let account = restored.as_ref().unwrap_or(account);
    // A disputed scheduling of a support reset of the factor stops it.
    if let Some(event) = event {
        super::factor_reset::cancel_on_dispute(txn, account, event, client, now).await?;
    }
    let kind = event.map(|e| e.kind.clone()).unwrap_or_default();
    let summary = events::summary(EventKind::parse(&kind), super::types::Locale::En);
    let body = if comment.is_empty() {
        "The customer reported this action as not theirs."
    } else {
        comment
    };
    let ticket = support::open_dispute_ticket(
        txn,
        account.id,
        event.map(|e| e.id),
        &format!("Reported as not done by the customer: {summary}"),
        body,
        client,
        now,
    )
    .await?;
    let suspend = matches!(via, Via::Link)
        || ctx
            .config()
            .information_centre
            .suspend_on_dispute
            .contains(&kind);
    let mut password_suspended = false;
    let mut sessions_revoked = 0;
    if suspend && account.password_hash.is_some() {
        let request = SuspendRequest {
            account_id: account.id,
            reason: Reason::CustomerReported,
            note: format!(
                "customer reported event {} ({kind}); ticket {}",
                event.map(|e| e.id.to_string()).unwrap_or_default(),
                ticket.reference
            ),
            evidence_event_ids: event.map(|e| vec![e.id]).unwrap_or_default(),
        };
        let done =
            suspension::suspend_in(txn, ctx, account, &Actor::customer(), client, &request, now)
                .await?;
        password_suspended = true;
        sessions_revoked += done.sessions_revoked;
    }
    // The password in use is known compromised, suspended or not.
    let cause = match via {
        Via::Link => compromised::Cause::Reported,
        Via::Session(_) => compromised::Cause::Disputed,
    };
    compromised::record(txn, now, account.id, cause).await?;
    let except = match via {
        Via::Session(session_id) if !password_suspended => Some(*session_id),
        _ => None,
    };
    sessions_revoked += sessions::revoke_all(
        txn,
        now,
        account.id,
        except,
        Cause::Dispute,
        &Actor::customer(),
        client,
    )
    .await?;
    let event_kind = if matches!(via, Via::Link) {
        EventKind::UnauthorizedChangeReported
    } else {
        EventKind::EventDisputed
    };
    events::record(
        txn,
        now,
        account.id,
        event_kind,
        &Actor::customer(),
        client,
        serde_json::json!({
            "disputed_event_id": event.map(|e| e.id.to_string()),
            "ticket_id": ticket.id.to_string(),
            "password_suspended": password_suspended,
        }),
    )
    .await?;
    notices::send(
        txn,
        ctx,
        now,
        account,
        &Mail::DisputeReceived {
            login: account.login.clone(),
            reference: ticket.reference.clone(),
        },
    )
    .await?;
    Ok(Disputed {
        ticket,
        password_suspended,
        sessions_revoked,
    })
}

/// `ReportUnauthorizedChange`: the single-use link from a security notice
/// does what a dispute does, without a login, and always suspends.
#[tracing::instrument(skip_all)]
pub async fn report_unauthorized_change(
    ctx: &(impl Db + Mailing),
    now: Millis,
    presented: &str,
    comment: &str,
    client: &ClientInfo,
) -> Result<String> {
    let (row, account) =
        links::presented::<report_token::Entity>(ctx.db(), now, TokenKind::Report, presented)
            .await?;
    let event = match row.event_id {
        Some(id) => store::events::by_id(ctx.db(), id).await?,
        None => None,
    };
    let txn = ctx.begin_write().await?;
    links::consume::<report_token::Entity, _>(&txn, &row, now).await?;
    if let Some(event) = &event {
        store::events::dispute(&txn, event.id, now).await?;
    }
    let done = secure_account(
        &txn,
        ctx,
        &account,
        event.as_ref(),
        comment,
        client,
        &Via::Link,
        now,
    )
    .await?;
    notices::commit(txn, ctx).await?;
    Ok(done.ticket.reference)
}
