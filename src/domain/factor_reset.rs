//! Support resets of the second factor. An agent first records on a ticket
//! how they verified the customer's identity; `ResetTotp` then only
//! schedules the removal (`support.factor_reset_delay_secs`, 24 h by
//! default), tells the customer at once (e-mail with a single-use cancel
//! link, an event in the information centre, a ticket message) and waits:
//! the link, or a login with the second factor, cancels it. A background
//! task completes the resets that are due, reading the clock like every
//! other rule, so tests move time instead of sleeping.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{
    deps::{Db, JobClock, Mailing},
    error::{Error, Result},
    events::{self, EventKind},
    notices,
    principal::{Actor, ActorKind, ClientInfo},
    records::{FactorReset, Verification},
    revocation::RevocationCause,
    sessions,
    support::{self, Status, Viewer},
    types::Locale,
};
use crate::{
    clock::Millis,
    crypto::token::{self, TokenKind},
    entity::{account, factor_reset, identity_verification, ticket},
    mail::{templates::utc_date_and_time, Mail},
    store,
};

pub const MAX_EVIDENCE_REFERENCE_CHARS: usize = 200;
/// Most due resets one pass of the background task completes.
const BATCH: u64 = 32;

pub const PENDING: &str = store::factor_resets::PENDING;
pub const CANCELLED: &str = store::factor_resets::CANCELLED;
pub const COMPLETED: &str = store::factor_resets::COMPLETED;

pub use super::records::{Cancellation, Method};

impl Cancellation {
    fn actor(self) -> Actor {
        match self {
            Cancellation::CancelLink | Cancellation::SecondFactorLogin | Cancellation::Dispute => {
                Actor::customer()
            }
            Cancellation::FactorChanged => Actor::system(),
        }
    }
}

fn agent_actor(agent: &str) -> Actor {
    Actor {
        kind: ActorKind::SupportAgent,
        name: Some(agent.to_string()),
    }
}

/// What gardien writes on the ticket, in the account's language. Never the
/// agent's reason, notes or evidence.
enum Notice {
    Scheduled { effective_at: i64 },
    Cancelled,
    Completed,
}

fn ticket_message(notice: &Notice, locale: Locale) -> String {
    match (notice, locale) {
        (Notice::Scheduled { effective_at }, Locale::En) => {
            let (date, time) = utc_date_and_time(*effective_at);
            format!(
                "Following the request made to support, two-factor authentication will be \
                 removed on {date} at {time} (UTC). Until then it keeps working; logging in \
                 with the second factor, or the link sent by e-mail, cancels the removal."
            )
        }
        (Notice::Scheduled { effective_at }, Locale::Fr) => {
            let (date, time) = utc_date_and_time(*effective_at);
            format!(
                "À la suite de la demande faite au support, la double authentification sera \
                 supprimée le {date} à {time} (UTC). D'ici là, elle fonctionne toujours ; se \
                 connecter avec le second facteur, ou ouvrir le lien reçu par e-mail, annule \
                 la suppression."
            )
        }
        (Notice::Cancelled, Locale::En) => {
            "The scheduled removal of two-factor authentication was cancelled.".into()
        }
        (Notice::Cancelled, Locale::Fr) => {
            "La suppression programmée de la double authentification a été annulée.".into()
        }
        (Notice::Completed, Locale::En) => {
            "Two-factor authentication was removed as scheduled, and every session was signed out."
                .into()
        }
        (Notice::Completed, Locale::Fr) => {
            "La double authentification a été supprimée comme prévu, et toutes les sessions ont \
             été fermées."
                .into()
        }
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A ticket an agent may act on for the account: open, about an account.
async fn open_ticket<C: ConnectionTrait>(
    conn: &C,
    agent: &str,
    ticket_id: Uuid,
) -> Result<ticket::Model> {
    let found = support::visible_ticket(conn, &Viewer::Agent(agent.to_string()), ticket_id).await?;
    if found.status == Status::Closed.as_str() {
        return Err(Error::InvalidStateTransition("the ticket is closed".into()));
    }
    Ok(found)
}

/// `VerifyTicketIdentity`: records how the agent verified the customer.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, method = method.as_str()))]
pub async fn verify_identity(
    db: &DatabaseConnection,
    now: Millis,
    agent: &str,
    client: &ClientInfo,
    ticket_id: Uuid,
    method: Method,
    evidence_reference: &str,
) -> Result<Verification> {
    let found = open_ticket(db, agent, ticket_id).await?;
    let Some(account_id) = found.account_id else {
        return Err(Error::InvalidStateTransition(
            "the ticket is about no account".into(),
        ));
    };
    let model = identity_verification::Model {
        id: Uuid::now_v7(),
        ticket_id: found.id,
        account_id,
        method: method.as_str().into(),
        agent: agent.to_string(),
        evidence_reference: evidence_reference.to_string(),
        verified_at: now,
    };
    let txn = crate::store::db::begin_write(db).await?;
    store::verifications::insert(&txn, model.clone()).await?;
    events::record(
        &txn,
        now,
        account_id,
        EventKind::SupportIdentityVerified,
        &agent_actor(agent),
        client,
        serde_json::json!({
            "ticket_id": found.id.to_string(),
            "reference": found.reference,
            "method": method.as_str(),
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(Verification::from(&model))
}

fn unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// `ResetTotp`: schedules the removal of the account's 2FA under a ticket
/// that carries an identity verification, and tells the customer at once.
#[tracing::instrument(skip_all, fields(account_id = %account_id, ticket_id = %ticket_id))]
pub async fn request(
    ctx: &(impl Db + Mailing),
    now: Millis,
    agent: &str,
    client: &ClientInfo,
    account_id: Uuid,
    ticket_id: Uuid,
    reason: &str,
) -> Result<FactorReset> {
    let found = open_ticket(ctx.db(), agent, ticket_id).await?;
    if found.account_id != Some(account_id) {
        return Err(Error::invalid(
            "ticket_id",
            "is not a ticket of this account",
        ));
    }
    let verification = store::verifications::latest_on_ticket(ctx.db(), found.id, account_id)
        .await?
        .ok_or(Error::IdentityNotVerified)?;
    let account = store::accounts::by_id(ctx.db(), account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    if !super::factors::has_second_factor(&account) {
        return Err(Error::TotpNotEnabled);
    }
    let delay_ms = i64::try_from(
        ctx.config()
            .support
            .factor_reset_delay_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let effective_at = now.saturating_add(delay_ms);
    let cancel_token = token::generate(TokenKind::FactorResetCancel);
    let reset = factor_reset::Model {
        id: Uuid::now_v7(),
        account_id,
        ticket_id: found.id,
        verification_id: verification.id,
        requested_by: agent.to_string(),
        reason: reason.to_string(),
        requested_at: now,
        due_at: effective_at,
        totp_enabled_at: account.totp_enabled_at,
        cancel_token_hash: token::hash_secret(&cancel_token),
        status: PENDING.into(),
        pending_account_id: Some(account_id),
        cancelled_at: None,
        cancelled_via: None,
        completed_at: None,
    };
    let txn = ctx.begin_write().await?;
    if let Err(error) = store::factor_resets::insert(&txn, reset.clone()).await {
        return Err(if unique_violation(&error) {
            Error::FactorResetPending
        } else {
            error.into()
        });
    }
    events::record(
        &txn,
        now,
        account_id,
        EventKind::FactorResetRequested,
        &agent_actor(agent),
        client,
        serde_json::json!({
            "ticket_id": found.id.to_string(),
            "reference": found.reference,
            "factor_reset_id": reset.id.to_string(),
            "effective_at": rfc3339(effective_at),
        }),
    )
    .await?;
    let locale = Locale::parse(&account.locale);
    support::post_system_message(
        &txn,
        found.id,
        &ticket_message(&Notice::Scheduled { effective_at }, locale),
        now,
    )
    .await?;
    let mail = Mail::FactorResetScheduled {
        login: account.login.clone(),
        effective_at,
        cancel_token: cancel_token.expose_secret().to_string(),
    };
    notices::send(&txn, ctx, now, &account, &mail).await?;
    notices::commit(txn, ctx).await?;
    Ok(FactorReset::new(&reset, Some(&verification)))
}

/// Marks `reset` cancelled if it is still pending and not yet due; records
/// the event and the ticket message. Whether this call cancelled it.
async fn cancel<C: ConnectionTrait>(
    conn: &C,
    reset: &factor_reset::Model,
    account: &account::Model,
    how: Cancellation,
    client: &ClientInfo,
    now: i64,
) -> Result<bool> {
    // Once due, the reset belongs to the background task.
    let only_before_due = how != Cancellation::FactorChanged;
    if !store::factor_resets::cancel(conn, reset.id, how.as_str(), only_before_due, now).await? {
        return Ok(false);
    }
    events::record(
        conn,
        now,
        account.id,
        EventKind::FactorResetCancelled,
        &how.actor(),
        client,
        serde_json::json!({
            "ticket_id": reset.ticket_id.to_string(),
            "factor_reset_id": reset.id.to_string(),
            "via": how.as_str(),
        }),
    )
    .await?;
    support::post_system_message(
        conn,
        reset.ticket_id,
        &ticket_message(&Notice::Cancelled, Locale::parse(&account.locale)),
        now,
    )
    .await?;
    Ok(true)
}

/// `CancelFactorReset`: the single-use link of the factor-reset e-mail.
#[tracing::instrument(skip_all)]
pub async fn cancel_by_link(
    db: &DatabaseConnection,
    now: Millis,
    presented: &str,
    client: &ClientInfo,
) -> Result<()> {
    if !token::well_formed(TokenKind::FactorResetCancel, presented) {
        return Err(Error::TokenInvalid);
    }
    let reset = store::factor_resets::by_cancel_token_hash(db, &token::hash(presented))
        .await?
        .ok_or(Error::TokenInvalid)?;
    match reset.status.as_str() {
        PENDING => {}
        COMPLETED => return Err(Error::TokenExpired),
        _ => return Err(Error::TokenInvalid),
    }
    if reset.due_at <= now {
        return Err(Error::TokenExpired);
    }
    let account = store::accounts::by_id(db, reset.account_id)
        .await?
        .ok_or(Error::TokenInvalid)?;
    let txn = crate::store::db::begin_write(db).await?;
    if !cancel(
        &txn,
        &reset,
        &account,
        Cancellation::CancelLink,
        client,
        now,
    )
    .await?
    {
        return Err(Error::TokenInvalid);
    }
    txn.commit().await?;
    tracing::info!(factor_reset_id = %reset.id, "factor reset cancelled from its link");
    Ok(())
}

/// After a successful login with the second factor, in the login's
/// transaction: the customer still holds the factor, so a pending support
/// reset of it is cancelled.
pub async fn cancel_on_second_factor_login<C: ConnectionTrait>(
    conn: &C,
    account: &account::Model,
    client: &ClientInfo,
    now: i64,
) -> Result<()> {
    let pending = store::factor_resets::pending_of_account(conn, account.id).await?;
    for reset in &pending {
        cancel(
            conn,
            reset,
            account,
            Cancellation::SecondFactorLogin,
            client,
            now,
        )
        .await?;
    }
    Ok(())
}

/// In the dispute's transaction: a customer who says the scheduling of a
/// reset of their factor (`event`, FACTOR_RESET_REQUESTED) was not them
/// stops it, as the e-mailed cancel link would. Whether one was stopped.
pub async fn cancel_on_dispute<C: ConnectionTrait>(
    conn: &C,
    account: &account::Model,
    event: &crate::entity::security_event::Model,
    client: &ClientInfo,
    now: i64,
) -> Result<bool> {
    if EventKind::parse(&event.kind) != Some(EventKind::FactorResetRequested) {
        return Ok(false);
    }
    let reset_id = serde_json::from_str::<serde_json::Value>(&event.details)
        .ok()
        .and_then(|details| details["factor_reset_id"].as_str()?.parse::<Uuid>().ok());
    let Some(reset_id) = reset_id else {
        return Ok(false);
    };
    let Some(reset) = store::factor_resets::by_id_of_account(conn, reset_id, account.id).await?
    else {
        return Ok(false);
    };
    cancel(conn, &reset, account, Cancellation::Dispute, client, now).await
}

/// Completes every reset that is due; returns how many took effect.
pub async fn complete_due(ctx: &(impl Db + Mailing), now: Millis) -> Result<usize> {
    let due = store::factor_resets::due(ctx.db(), now, BATCH).await?;
    let mut completed = 0;
    for reset in due {
        if complete(ctx, &reset, now).await? {
            completed += 1;
        }
    }
    Ok(completed)
}

/// Makes one due reset take effect, unless another instance did or the
/// enrolment it was requested against is gone.
#[tracing::instrument(skip_all, fields(factor_reset_id = %reset.id, account_id = %reset.account_id))]
async fn complete(
    ctx: &(impl Db + Mailing),
    reset: &factor_reset::Model,
    now: i64,
) -> Result<bool> {
    let txn = ctx.begin_write().await?;
    let Some(account) = store::accounts::by_id(&txn, reset.account_id).await? else {
        return Ok(false);
    };
    let client = ClientInfo::default();
    if !super::factors::has_second_factor(&account)
        || account.totp_enabled_at != reset.totp_enabled_at
    {
        // Turned off or enrolled anew meanwhile: this reset is not about
        // the current factor.
        cancel(
            &txn,
            reset,
            &account,
            Cancellation::FactorChanged,
            &client,
            now,
        )
        .await?;
        txn.commit().await?;
        return Ok(false);
    }
    if !store::factor_resets::complete(&txn, reset.id, now).await? {
        return Ok(false);
    }
    let actor = agent_actor(&reset.requested_by);
    store::accounts::remove_second_factor(&txn, account.id, false, now).await?;
    for removed in store::passkeys::delete_all(&txn, account.id, now).await? {
        events::record(
            &txn,
            now,
            account.id,
            EventKind::PasskeyRemoved,
            &actor,
            &client,
            serde_json::json!({ "passkey_id": removed.id.to_string(), "name": removed.name }),
        )
        .await?;
    }
    let revoked = sessions::revoke_all(
        &txn,
        now,
        account.id,
        None,
        RevocationCause::SupportFactorReset,
        &actor,
        &client,
    )
    .await?;
    let details = serde_json::json!({
        "ticket_id": reset.ticket_id.to_string(),
        "factor_reset_id": reset.id.to_string(),
        "sessions_revoked": revoked,
    });
    let event_id = events::record(
        &txn,
        now,
        account.id,
        EventKind::TotpDisabled,
        &actor,
        &client,
        details.clone(),
    )
    .await?;
    events::record(
        &txn,
        now,
        account.id,
        EventKind::FactorResetCompleted,
        &actor,
        &client,
        details,
    )
    .await?;
    support::post_system_message(
        &txn,
        reset.ticket_id,
        &ticket_message(&Notice::Completed, Locale::parse(&account.locale)),
        now,
    )
    .await?;
    let report_token = notices::report_token(&txn, now, account.id, Some(event_id)).await?;
    let mail = Mail::TotpDisabled {
        login: account.login.clone(),
        report_token,
    };
    notices::send(&txn, ctx, now, &account, &mail).await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(
        sessions_revoked = revoked,
        "support factor reset took effect"
    );
    Ok(true)
}

/// Completes due resets every `support.factor_reset_poll_ms` until
/// `shutdown`.
pub async fn run(ctx: impl Db + Mailing + JobClock, shutdown: tokio_util::sync::CancellationToken) {
    let poll = std::time::Duration::from_millis(ctx.config().support.factor_reset_poll_ms.max(10));
    loop {
        if let Err(error) = complete_due(&ctx, ctx.now()).await {
            tracing::warn!(error = %format!("{error:#}").escape_debug(), "factor resets: cannot complete due resets");
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// The pending reset of an account, with its verification (for the review).
pub async fn pending<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Option<FactorReset>> {
    let Some(reset) = store::factor_resets::pending_one_of_account(conn, account_id).await? else {
        return Ok(None);
    };
    let verification = store::verifications::by_id(conn, reset.verification_id).await?;
    Ok(Some(FactorReset::new(&reset, verification.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_messages_are_in_the_account_language() {
        let at = 1_796_376_900_000;
        for notice in [
            Notice::Scheduled { effective_at: at },
            Notice::Cancelled,
            Notice::Completed,
        ] {
            let en = ticket_message(&notice, Locale::En);
            let fr = ticket_message(&notice, Locale::Fr);
            assert_ne!(en, fr);
            assert!(en.to_lowercase().contains("two-factor authentication"));
            assert!(fr.contains("double authentification"));
        }
    }

    #[test]
    fn methods_round_trip() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.as_str()), Some(*method));
        }
    }
}
