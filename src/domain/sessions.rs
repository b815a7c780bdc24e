//! Customer sessions: opaque 256-bit bearer tokens stored as SHA-256, with
//! an absolute lifetime and an idle timeout, revoked server side.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    auth_cache::{self, LiveSession},
    deps::{Db, LiveCache, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    principal::{Actor, ClientInfo, CustomerSession},
    records::Session,
    revocation::{self, RevocationCause},
    types::Locale,
};
use crate::{
    clock::Millis,
    crypto::token::{self, TokenKind},
    entity::session,
    store,
};

/// Idle sessions are touched at most this often, to spare a write per call.
const TOUCH_EVERY_MS: i64 = 30_000;

/// A new session, with its token shown once.
pub struct SessionGrant {
    pub token: SecretString,
    pub session_id: Uuid,
    pub account_id: Uuid,
    pub expires_at: i64,
    pub idle_expires_at: i64,
}

fn idle_ms(ctx: &impl Settings) -> i64 {
    ctx.config().session.idle_ttl_secs as i64 * 1000
}

/// Inserts a session in the caller's transaction.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    ctx: &impl Settings,
    account_id: Uuid,
    client: &ClientInfo,
    second_factor_used: bool,
    now: i64,
) -> Result<SessionGrant> {
    let (row, grant) = new_row(ctx, account_id, client, second_factor_used, now);
    store::sessions::insert(conn, row).await?;
    Ok(grant)
}

/// The row of a new session, and its grant: the token, shown once, is not
/// in the row, only its hash.
pub fn new_row(
    ctx: &impl Settings,
    account_id: Uuid,
    client: &ClientInfo,
    second_factor_used: bool,
    now: i64,
) -> (session::Model, SessionGrant) {
    let token = token::generate(TokenKind::Session);
    let id = Uuid::now_v7();
    let expires_at = now + ctx.config().session.absolute_ttl_secs as i64 * 1000;
    let row = session::Model {
        id,
        account_id,
        token_hash: token::hash_secret(&token),
        created_at: now,
        last_seen_at: now,
        expires_at,
        revoked_at: None,
        revoke_reason: None,
        client_address: client.address.clone(),
        user_agent: client.user_agent.clone(),
        second_factor_used,
    };
    let grant = SessionGrant {
        token,
        session_id: id,
        account_id,
        expires_at,
        idle_expires_at: (now + idle_ms(ctx)).min(expires_at),
    };
    (row, grant)
}

fn is_live(ctx: &impl Settings, session: &LiveSession, now: i64) -> bool {
    session.expires_at > now && session.last_seen_at + idle_ms(ctx) > now
}

/// The session of a presented token, if it is live; refreshes its idle
/// timer. A session revoked while live is `Error::SessionRevoked` with its
/// cause; an unknown or expired token is `None`.
pub async fn authenticate(
    ctx: &(impl Db + Settings + LiveCache),
    now: Millis,
    presented: &str,
) -> Result<Option<CustomerSession>> {
    let live = match find_live(ctx, now, presented).await? {
        Lookup::Live(live) => live,
        Lookup::Revoked { cause, account_id } => {
            let help_url =
                (cause == RevocationCause::Suspension).then(|| ctx.config().mail.help_url.clone());
            let error = Error::SessionRevoked { cause, help_url };
            // Told in the account's language: the account is known.
            return Err(match account_language(ctx.db(), account_id).await? {
                Some(locale) => error.for_account(locale),
                None => error,
            });
        }
        Lookup::NotLive => return Ok(None),
    };
    Ok(Some(CustomerSession {
        account_id: live.account_id,
        session_id: live.id,
        authenticated_at: live.created_at,
        second_factor_used: live.second_factor_used,
    }))
}

/// The language of account `account_id` (`None` if it is gone): what a
/// customer is told in, on every call made with their session.
pub async fn account_language(db: &DatabaseConnection, account_id: Uuid) -> Result<Option<Locale>> {
    let locale = store::accounts::locale(db, account_id).await?;
    Ok(locale.as_deref().map(Locale::parse))
}

/// What a presented session token is.
enum Lookup {
    Live(LiveSession),
    /// Revoked while live, and still within its absolute lifetime.
    Revoked {
        cause: RevocationCause,
        account_id: Uuid,
    },
    /// Unknown, malformed, expired, or revoked too long ago to tell.
    NotLive,
}

/// The live session of a presented token, from the cache when the
/// revocation clock allows (see `auth_cache`), else from the database; its
/// use is recorded at most every `TOUCH_EVERY_MS`. A revoked session's cause
/// comes from the row read on a cache miss, so telling it costs no query.
async fn find_live(
    ctx: &(impl Db + Settings + LiveCache),
    now: Millis,
    presented: &str,
) -> Result<Lookup> {
    if !token::well_formed(TokenKind::Session, presented) {
        return Ok(Lookup::NotLive);
    }
    let hash = token::hash(presented);
    let cache = ctx.auth_cache();
    // Read before the row: an entry is only as fresh as this generation.
    let generation = cache.generation().await;
    let cached = generation
        .and_then(|g| cache.session(&hash, g))
        .filter(|live| is_live(ctx, live, now));
    metrics::counter!(
        "gardien_auth_cache_lookups_total",
        "kind" => "session",
        "result" => if cached.is_some() { "hit" } else { "miss" }
    )
    .increment(1);
    let live = match cached {
        Some(live) => live,
        None => {
            let row = store::sessions::by_token_hash(ctx.db(), &hash).await?;
            let Some(row) = row else {
                return Ok(Lookup::NotLive);
            };
            if row.revoked_at.is_some() {
                return Ok(revocation::reported(&row, idle_ms(ctx), now).map_or(
                    Lookup::NotLive,
                    |cause| Lookup::Revoked {
                        cause,
                        account_id: row.account_id,
                    },
                ));
            }
            let live = LiveSession::from(&row);
            if !is_live(ctx, &live, now) {
                return Ok(Lookup::NotLive);
            }
            live
        }
    };
    let touched = touch(ctx.db(), live, now).await?;
    // A hit that was not touched is already cached as it is.
    if let (Some(generation), true) = (generation, cached != Some(touched)) {
        cache.keep_session(&hash, generation, touched);
    }
    Ok(Lookup::Live(touched))
}

impl From<&session::Model> for LiveSession {
    fn from(row: &session::Model) -> Self {
        Self {
            id: row.id,
            account_id: row.account_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen_at: row.last_seen_at,
            second_factor_used: row.second_factor_used,
        }
    }
}

/// Records use of a live session (at most every `TOUCH_EVERY_MS`).
async fn touch(db: &DatabaseConnection, mut live: LiveSession, now: i64) -> Result<LiveSession> {
    if now - live.last_seen_at > TOUCH_EVERY_MS {
        store::sessions::touch(db, live.id, now).await?;
        live.last_seen_at = now;
    }
    Ok(live)
}

/// `IntrospectSession`: what another service needs to trust a token.
pub struct Introspection {
    pub session: Option<LiveSession>,
    pub idle_expires_at: i64,
    /// Why an inactive token was revoked, while that is told.
    pub revoked: Option<RevocationCause>,
}

pub async fn introspect(
    ctx: &(impl Db + Settings + LiveCache),
    now: Millis,
    presented: &str,
) -> Result<Introspection> {
    let (session, revoked) = match find_live(ctx, now, presented).await? {
        Lookup::Live(live) => (Some(live), None),
        Lookup::Revoked { cause, .. } => (None, Some(cause)),
        Lookup::NotLive => (None, None),
    };
    let idle_expires_at = session
        .as_ref()
        .map_or(0, |s| (s.last_seen_at + idle_ms(ctx)).min(s.expires_at));
    Ok(Introspection {
        session,
        idle_expires_at,
        revoked,
    })
}

/// At most this many session IDs are listed in a `session_revoked` event;
/// its `sessions_revoked` detail has the full count.
const LISTED_SESSION_IDS: u64 = 50;

/// Revokes every live session of an account but `except`, in the caller's
/// transaction, and records which ended in one `session_revoked` event
/// (none when no session ended); returns how many.
pub async fn revoke_all<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    except: Option<Uuid>,
    cause: RevocationCause,
    actor: &Actor,
    client: &ClientInfo,
) -> Result<u64> {
    let revoked =
        store::sessions::revoke_all(conn, account_id, except, cause.as_str(), now).await?;
    if revoked == 0 {
        return Ok(0);
    }
    auth_cache::bump(conn).await?;
    // The rows this statement revoked, as this transaction sees them.
    let ended =
        store::sessions::revoked_at(conn, account_id, cause.as_str(), now, LISTED_SESSION_IDS)
            .await?;
    let session_ids = ended
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    events::record(
        conn,
        now,
        account_id,
        EventKind::SessionRevoked,
        actor,
        client,
        serde_json::json!({
            "cause": cause.name(),
            "sessions_revoked": revoked,
            "session_ids": session_ids,
        }),
    )
    .await?;
    Ok(revoked)
}

/// Ends every live session of an account for the security team (the
/// command line's `account revoke-sessions`), recorded with the operator as
/// actor; returns how many ended.
pub async fn revoke_for_security_team(
    db: &DatabaseConnection,
    now: Millis,
    account_id: Uuid,
    operator: &Actor,
    client: &ClientInfo,
) -> Result<u64> {
    let txn = crate::store::db::begin_write(db).await?;
    if store::accounts::by_id(&txn, account_id).await?.is_none() {
        return Err(Error::NotFound("account"));
    }
    let revoked = revoke_all(
        &txn,
        now,
        account_id,
        None,
        RevocationCause::SecurityTeam,
        operator,
        client,
    )
    .await?;
    txn.commit().await?;
    Ok(revoked)
}

/// Ends one session of the caller's account (`NotFound` for another's).
/// A session of the caller's that has already ended succeeds unchanged.
pub async fn revoke(
    db: &DatabaseConnection,
    now: Millis,
    caller: &CustomerSession,
    session_id: Uuid,
    cause: RevocationCause,
    client: &ClientInfo,
) -> Result<()> {
    let kind = match cause {
        RevocationCause::Logout => EventKind::Logout,
        _ => EventKind::SessionRevoked,
    };
    let txn = crate::store::db::begin_write(db).await?;
    let account_id = caller.account_id;
    if !store::sessions::revoke_one(&txn, session_id, account_id, cause.as_str(), now).await? {
        return match store::sessions::belongs_to(&txn, session_id, account_id).await? {
            true => Ok(()),
            false => Err(Error::NotFound("session")),
        };
    }
    auth_cache::bump(&txn).await?;
    events::record(
        &txn,
        now,
        caller.account_id,
        kind,
        &Actor::customer(),
        client,
        serde_json::json!({ "session_id": session_id.to_string(), "cause": cause.name() }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// One page of the caller's live sessions, newest first.
pub async fn list(
    ctx: &(impl Db + Settings),
    now: Millis,
    caller: &CustomerSession,
    page_size: u64,
    after: Option<Uuid>,
) -> Result<(Vec<Session>, Option<Uuid>)> {
    let rows = store::sessions::live_of_account(
        ctx.db(),
        caller.account_id,
        now,
        now - idle_ms(ctx),
        page_size + 1,
        after,
    )
    .await?;
    let (rows, next) = super::page(rows, page_size, |r| r.id);
    let idle_ms = idle_ms(ctx);
    Ok((
        rows.iter().map(|row| Session::new(row, idle_ms)).collect(),
        next,
    ))
}
