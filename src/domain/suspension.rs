//! Password suspension by the security team (or a service such as fraud
//! detection), and lifting it. A suspension revokes every session and every
//! reset link at once and tells the customer what to do.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::revocation::RevocationCause as Cause;
use super::{
    deps::{Db, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    principal::{Actor, ClientInfo},
    records::{LiftMethod, Suspension},
    sessions,
    types::Locale,
};
use crate::{
    clock::Millis,
    entity::{account, suspension},
    kinds::PasswordState,
    mail::{outbox, Mail},
    store,
};

pub use crate::kinds::Reason;

pub struct SuspendRequest {
    pub account_id: Uuid,
    pub reason: Reason,
    pub note: String,
    pub evidence_event_ids: Vec<Uuid>,
}

pub struct Suspended {
    pub suspension: Suspension,
    pub already_suspended: bool,
    pub sessions_revoked: u64,
}

#[tracing::instrument(skip_all, fields(account_id = %request.account_id, reason = request.reason.as_str()))]
pub async fn suspend(
    ctx: &(impl Db + Mailing),
    now: Millis,
    actor: &Actor,
    client: &ClientInfo,
    request: SuspendRequest,
) -> Result<Suspended> {
    let account = store::accounts::by_id(ctx.db(), request.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    if PasswordState::parse(&account.password_state) == PasswordState::Unset {
        return Err(Error::InvalidStateTransition(
            "the account has no password to suspend".into(),
        ));
    }
    if !request.evidence_event_ids.is_empty() {
        let known = store::events::of_account_among(
            ctx.db(),
            account.id,
            request.evidence_event_ids.clone(),
        )
        .await?;
        if let Some((index, _)) = request
            .evidence_event_ids
            .iter()
            .enumerate()
            .find(|(_, id)| !known.iter().any(|event| event.id == **id))
        {
            return Err(Error::invalid(
                format!("evidence_event_ids[{index}]"),
                "is not an event of this account",
            ));
        }
    }
    let txn = ctx.begin_write().await?;
    let done = suspend_in(&txn, ctx, &account, actor, client, &request, now).await?;
    if done.already_suspended {
        return Ok(done);
    }
    super::notices::commit(txn, ctx).await?;
    tracing::info!(
        sessions_revoked = done.sessions_revoked,
        "password suspended"
    );
    metrics::counter!("gardien_password_suspensions_total", "reason" => request.reason.as_str())
        .increment(1);
    Ok(done)
}

/// The suspension itself, inside the caller's transaction (so that a
/// "this wasn't me" report commits it with the dispute). An already
/// suspended password is left as it is and its open suspension returned.
pub async fn suspend_in<C: ConnectionTrait>(
    txn: &C,
    ctx: &(impl Settings + Sealing),
    account: &account::Model,
    actor: &Actor,
    client: &ClientInfo,
    request: &SuspendRequest,
    now: i64,
) -> Result<Suspended> {
    // The compare-and-set comes first: it takes the write lock, and of two
    // concurrent suspensions exactly one records a suspension.
    if !store::accounts::set_password_state(txn, account.id, None, PasswordState::Suspended, now)
        .await?
    {
        let existing = active_suspension(txn, account.id)
            .await?
            .ok_or(Error::internal(anyhow::anyhow!(
                "suspended account without suspension"
            )))?;
        return Ok(Suspended {
            suspension: Suspension::from(&existing),
            already_suspended: true,
            sessions_revoked: 0,
        });
    }
    let model = suspension::Model {
        id: Uuid::now_v7(),
        account_id: account.id,
        reason: request.reason.as_str().to_string(),
        note: request.note.clone(),
        evidence_event_ids: serde_json::to_string(
            &request
                .evidence_event_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>(),
        )
        .map_err(Error::internal)?,
        suspended_at: now,
        suspended_by_kind: actor.kind.as_str().to_string(),
        suspended_by_name: actor.name.clone(),
        lifted_at: None,
        lifted_by_kind: None,
        lifted_by_name: None,
        lift_method: None,
    };
    store::suspensions::insert(txn, model.clone()).await?;
    super::compromised::record(txn, now, account.id, super::compromised::Cause::Suspended).await?;
    let sessions_revoked =
        sessions::revoke_all(txn, now, account.id, None, Cause::Suspension, actor, client).await?;
    invalidate_reset_tokens(txn, now, account.id, None).await?;
    crate::store::challenges::revoke_all(txn, account.id, now).await?;
    events::record(
        txn,
        now,
        account.id,
        EventKind::PasswordSuspended,
        actor,
        client,
        serde_json::json!({
            "suspension_id": model.id.to_string(),
            "reason": request.reason.as_str(),
            "sessions_revoked": sessions_revoked,
        }),
    )
    .await?;
    outbox::enqueue(
        txn,
        &ctx.config().mail,
        ctx.sealer(),
        now,
        Some(account.id),
        &account.email,
        Locale::parse(&account.locale),
        &Mail::SuspensionNotice {
            login: account.login.clone(),
            reason: request.reason,
        },
    )
    .await?;
    Ok(Suspended {
        suspension: Suspension::from(&model),
        already_suspended: false,
        sessions_revoked,
    })
}

#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn lift(
    db: &DatabaseConnection,
    now: Millis,
    actor: &Actor,
    client: &ClientInfo,
    account_id: Uuid,
    note: &str,
) -> Result<Suspension> {
    let account = store::accounts::by_id(db, account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let restored = if account.password_hash.is_some() {
        PasswordState::Active
    } else {
        PasswordState::Unset
    };
    let txn = crate::store::db::begin_write(db).await?;
    let lifted = store::accounts::set_password_state(
        &txn,
        account.id,
        Some(PasswordState::Suspended),
        restored,
        now,
    )
    .await?;
    if !lifted {
        return Err(Error::InvalidStateTransition(
            "the password is not suspended".into(),
        ));
    }
    let lifted = close_suspension(&txn, now, account.id, actor, LiftMethod::SecurityTeam).await?;
    events::record(
        &txn,
        now,
        account.id,
        EventKind::SuspensionLifted,
        actor,
        client,
        serde_json::json!({ "method": "security_team", "note": note }),
    )
    .await?;
    txn.commit().await?;
    lifted
        .map(|row| Suspension::from(&row))
        .ok_or(Error::internal(anyhow::anyhow!(
            "suspended account without suspension"
        )))
}

pub async fn active_suspension<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Option<suspension::Model>> {
    Ok(store::suspensions::active(conn, account_id).await?)
}

/// The answer to a suspended password: the help link and the reason of
/// the open suspension (never its note, which is for the staff).
pub async fn refusal<C: ConnectionTrait>(
    conn: &C,
    ctx: &impl Settings,
    account_id: Uuid,
) -> Result<Error> {
    let reason = active_suspension(conn, account_id)
        .await?
        .and_then(|open| Reason::parse(&open.reason));
    Ok(Error::PasswordSuspended {
        help_url: ctx.config().mail.help_url.clone(),
        reason,
    })
}

/// Marks the open suspension of an account lifted; returns it.
pub async fn close_suspension<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    actor: &Actor,
    method: LiftMethod,
) -> Result<Option<suspension::Model>> {
    let Some(open) = active_suspension(conn, account_id).await? else {
        return Ok(None);
    };
    let lift = store::suspensions::Lift {
        by_kind: actor.kind.as_str(),
        by_name: actor.name.clone(),
        method: method.as_str(),
    };
    Ok(Some(store::suspensions::lift(conn, open, lift, now).await?))
}

/// Invalidates every unused reset token of an account but `except`.
pub async fn invalidate_reset_tokens<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    except: Option<Uuid>,
) -> Result<u64> {
    Ok(store::tokens::withdraw_resets(conn, account_id, except, now).await?)
}
