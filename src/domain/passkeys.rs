//! Passkeys (WebAuthn, with webauthn-rs): registration, use as a second
//! factor, sign-in without password, and the check a reset needs.
//!
//! The server's half of each ceremony (its challenge, the credentials it
//! allows) stays in the database until the browser's answer comes back,
//! and is used once. A signature counter that does not move forward is a
//! sign of a copied authenticator: the assertion is refused and the
//! customer's journal records it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Webauthn, WebauthnError,
};

use super::{
    deps::{Db, Hashing, Mailing, Sealing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    factors, notices,
    principal::{Actor, ClientInfo, CustomerSession},
    sessions, throttle,
    types::Locale,
};
use crate::{
    clock::Millis,
    config::PasskeyConfig,
    crypto::{
        secretbox::Sealer,
        token::{self, TokenKind},
    },
    entity::{account, passkey, passkey_ceremony},
    kinds::PasswordState,
    mail::Mail,
    store,
};

/// A ceremony lives this long (the browser's prompt included).
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Passkeys one account may hold.
pub const MAX_PASSKEYS: usize = 10;

/// What the customer's front end needs to run a ceremony, shown once.
pub struct Ceremony {
    pub token: SecretString,
    pub options_json: String,
    pub expires_at: i64,
}

/// A passkey as the customer sees it.
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&passkey::Model> for PasskeyView {
    fn from(row: &passkey::Model) -> Self {
        Self {
            id: row.id,
            name: row.name.clone(),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// The relying party as configured (checked at start-up).
fn relying_party(config: &PasskeyConfig) -> Result<Webauthn> {
    let origins = config
        .parsed_origins()
        .map_err(|(_, why)| Error::internal(anyhow::anyhow!(why)))?;
    let mut builder = webauthn_rs::WebauthnBuilder::new(&config.rp_id, &origins[0])
        .map_err(Error::internal)?
        .rp_name(&config.rp_name)
        .timeout(std::time::Duration::from_millis(CEREMONY_TTL_MS as u64));
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(Error::internal)
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(Error::internal)
}

fn credential_id(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The signature counter webauthn-rs keeps inside a passkey.
fn counter_of(passkey: &Passkey) -> i64 {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .unwrap_or(0) as i64
}

/// Seals a ceremony's state (its challenge above all) to the ceremony's id.
fn seal_state(sealer: &Sealer, id: Uuid, state: &impl serde::Serialize) -> Result<String> {
    let json = serde_json::to_vec(state).map_err(Error::internal)?;
    sealer.seal(&json, id.as_bytes()).map_err(Error::internal)
}

fn open_state<T: serde::de::DeserializeOwned>(
    sealer: &Sealer,
    ceremony: &passkey_ceremony::Model,
) -> Result<T> {
    let json = sealer
        .open(&ceremony.state, ceremony.id.as_bytes())
        .map_err(Error::internal)?;
    serde_json::from_slice(&json).map_err(Error::internal)
}

#[allow(clippy::too_many_arguments)]
async fn new_ceremony<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    purpose: &str,
    account_id: Option<Uuid>,
    bound_to: Option<Uuid>,
    state: &impl serde::Serialize,
    now: i64,
    expires_at: i64,
) -> Result<Option<SecretString>> {
    let secret = bound_to
        .is_none()
        .then(|| token::generate(TokenKind::PasskeyCeremony));
    let id = Uuid::now_v7();
    let state = seal_state(sealer, id, state)?;
    store::passkeys::insert_ceremony(
        conn,
        passkey_ceremony::Model {
            id,
            token_hash: secret.as_ref().map(token::hash_secret),
            bound_to,
            purpose: purpose.into(),
            account_id,
            state,
            created_at: now,
            expires_at,
        },
    )
    .await?;
    Ok(secret)
}

/// The ceremony a client names by its token: unknown, used or of another
/// purpose is `TOKEN_INVALID`, ended is `TOKEN_EXPIRED`. It is used up here,
/// whatever comes next.
async fn take_by_token(
    ctx: &impl Db,
    now: Millis,
    purpose: &str,
    presented: &str,
) -> Result<passkey_ceremony::Model> {
    let ceremony = find_by_token(ctx, purpose, presented).await?;
    if !store::passkeys::take_ceremony(ctx.db(), ceremony.id).await? {
        return Err(Error::TokenInvalid);
    }
    if ceremony.expires_at <= now {
        return Err(Error::TokenExpired);
    }
    Ok(ceremony)
}

/// The ceremony a client names by its token, not used up yet.
async fn find_by_token(
    ctx: &impl Db,
    purpose: &str,
    presented: &str,
) -> Result<passkey_ceremony::Model> {
    if !token::well_formed(TokenKind::PasskeyCeremony, presented) {
        return Err(Error::TokenInvalid);
    }
    store::passkeys::ceremony_by_token_hash(ctx.db(), &token::hash(presented))
        .await?
        .filter(|c| c.purpose == purpose)
        .ok_or(Error::TokenInvalid)
}

#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn begin_registration(
    ctx: &(impl Db + Settings + Hashing + Sealing),
    now: Millis,
    caller: &CustomerSession,
    password: Option<SecretString>,
) -> Result<Ceremony> {
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    factors::require_recent_auth(ctx, now, caller, &account, password).await?;
    store::passkeys::delete_expired_ceremonies(ctx.db(), now).await?;
    let existing = store::passkeys::of_account(ctx.db(), account.id).await?;
    if existing.len() >= MAX_PASSKEYS {
        return Err(Error::InvalidStateTransition(format!(
            "the account has {MAX_PASSKEYS} passkeys already: remove one first"
        )));
    }
    let exclude = existing
        .iter()
        .filter_map(|row| serde_json::from_str::<Passkey>(&row.credential).ok())
        .map(|passkey| passkey.cred_id().clone())
        .collect::<Vec<_>>();
    let (mut options, state) = relying_party(&ctx.config().passkeys)?
        .start_passkey_registration(
            account.id,
            &account.login,
            &account.login,
            (!exclude.is_empty()).then_some(exclude),
        )
        .map_err(Error::internal)?;
    // A discoverable credential, so that it can also sign in without the
    // login being typed.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    let expires_at = now + CEREMONY_TTL_MS;
    let token = new_ceremony(
        ctx.db(),
        ctx.sealer(),
        "register",
        Some(account.id),
        None,
        &state,
        now,
        expires_at,
    )
    .await?
    .ok_or_else(|| Error::internal(anyhow::anyhow!("no ceremony token")))?;
    Ok(Ceremony {
        token,
        options_json: to_json(&options)?,
        expires_at,
    })
}

/// Adds the passkey; answers it and, when the account had no second
/// factor before, its new recovery codes.
#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn finish_registration(
    ctx: &(impl Db + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    presented: &str,
    credential: &RegisterPublicKeyCredential,
    name: String,
) -> Result<(PasskeyView, Vec<String>)> {
    let ceremony = take_by_token(ctx, now, "register", presented).await?;
    if ceremony.account_id != Some(caller.account_id) {
        return Err(Error::TokenInvalid);
    }
    let state: PasskeyRegistration = open_state(ctx.sealer(), &ceremony)?;
    let passkey = match relying_party(&ctx.config().passkeys)?
        .finish_passkey_registration(credential, &state)
    {
        Ok(passkey) => passkey,
        Err(error) => {
            tracing::info!(%error, "passkey registration refused");
            // webauthn-rs refuses a credential of the exclusion list (one
            // registered already) as an altered algorithm.
            let known = store::passkeys::by_credential_id(
                ctx.db(),
                &credential_id(credential.raw_id.as_slice()),
            )
            .await?;
            return Err(match known {
                Some(_) => Error::AlreadyExists {
                    what: "passkey",
                    field: "credential_json".into(),
                },
                None => Error::InvalidCredentials,
            });
        }
    };
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let row = passkey::Model {
        id: Uuid::now_v7(),
        account_id: account.id,
        credential_id: credential_id(passkey.cred_id().as_slice()),
        name,
        credential: to_json(&passkey)?,
        sign_count: counter_of(&passkey),
        created_at: now,
        last_used_at: None,
    };
    let txn = ctx.begin_write().await?;
    let fresh = store::accounts::by_id(&txn, account.id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let codes = if factors::has_second_factor(&fresh) {
        Vec::new()
    } else {
        let codes = factors::new_recovery_codes();
        store::second_factor::delete_recovery_codes(&txn, account.id).await?;
        factors::store_recovery_codes(&txn, now, account.id, &codes).await?;
        codes
    };
    // Ceremonies begun side by side cannot add more than the limit.
    if store::passkeys::of_account(&txn, account.id).await?.len() >= MAX_PASSKEYS {
        return Err(Error::InvalidStateTransition(format!(
            "the account has {MAX_PASSKEYS} passkeys already: remove one first"
        )));
    }
    if let Err(error) = store::passkeys::insert(&txn, row.clone(), now).await {
        return Err(match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::AlreadyExists {
                what: "passkey",
                field: "credential_json".into(),
            },
            _ => error.into(),
        });
    }
    let change = notices::Reported {
        kind: EventKind::PasskeyAdded,
        actor: &Actor::customer(),
        client,
        details: serde_json::json!({ "passkey_id": row.id.to_string(), "name": row.name }),
    };
    notices::record_and_report(&txn, ctx, now, &account, change, |report_token| {
        Mail::PasskeyAdded {
            login: account.login.clone(),
            name: row.name.clone(),
            report_token,
        }
    })
    .await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(passkey_id = %row.id, "passkey added");
    Ok((PasskeyView::from(&row), codes))
}

pub async fn list(ctx: &impl Db, caller: &CustomerSession) -> Result<Vec<PasskeyView>> {
    Ok(store::passkeys::of_account(ctx.db(), caller.account_id)
        .await?
        .iter()
        .map(PasskeyView::from)
        .collect())
}

#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn rename(
    ctx: &(impl Db + Settings + Hashing),
    now: Millis,
    caller: &CustomerSession,
    id: Uuid,
    name: String,
    password: Option<SecretString>,
) -> Result<PasskeyView> {
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    factors::require_recent_auth(ctx, now, caller, &account, password).await?;
    if !store::passkeys::rename(ctx.db(), account.id, id, &name).await? {
        return Err(Error::NotFound("passkey"));
    }
    let row = store::passkeys::of_account_by_id(ctx.db(), account.id, id)
        .await?
        .ok_or(Error::NotFound("passkey"))?;
    Ok(PasskeyView::from(&row))
}

#[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
pub async fn remove(
    ctx: &(impl Db + Hashing + Mailing),
    now: Millis,
    caller: &CustomerSession,
    client: &ClientInfo,
    id: Uuid,
    password: Option<SecretString>,
) -> Result<()> {
    let account = store::accounts::by_id(ctx.db(), caller.account_id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    factors::require_recent_auth(ctx, now, caller, &account, password).await?;
    let row = store::passkeys::of_account_by_id(ctx.db(), account.id, id)
        .await?
        .ok_or(Error::NotFound("passkey"))?;
    let txn = ctx.begin_write().await?;
    if !store::passkeys::delete(&txn, account.id, id, now).await? {
        return Err(Error::NotFound("passkey"));
    }
    let after = store::accounts::by_id(&txn, account.id)
        .await?
        .ok_or(Error::NotFound("account"))?;
    if !factors::has_second_factor(&after) {
        store::second_factor::delete_recovery_codes(&txn, account.id).await?;
    }
    let change = notices::Reported {
        kind: EventKind::PasskeyRemoved,
        actor: &Actor::customer(),
        client,
        details: serde_json::json!({ "passkey_id": row.id.to_string(), "name": row.name }),
    };
    notices::record_and_report(&txn, ctx, now, &account, change, |report_token| {
        Mail::PasskeyRemoved {
            login: account.login.clone(),
            name: row.name.clone(),
            report_token,
        }
    })
    .await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(passkey_id = %row.id, "passkey removed");
    Ok(())
}

/// The request options for `account_id`'s passkeys, bound to a login
/// challenge or a reset link (`bound_to`) until `expires_at`; `None` when
/// the account has no passkey.
#[allow(clippy::too_many_arguments)]
pub async fn start_check<C: ConnectionTrait>(
    conn: &C,
    config: &PasskeyConfig,
    sealer: &Sealer,
    account_id: Uuid,
    purpose: &str,
    bound_to: Uuid,
    now: i64,
    expires_at: i64,
) -> Result<Option<String>> {
    let passkeys = store::passkeys::of_account(conn, account_id)
        .await?
        .iter()
        .filter_map(|row| serde_json::from_str::<Passkey>(&row.credential).ok())
        .collect::<Vec<_>>();
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (options, state) = relying_party(config)?
        .start_passkey_authentication(&passkeys)
        .map_err(Error::internal)?;
    new_ceremony(
        conn,
        sealer,
        purpose,
        Some(account_id),
        Some(bound_to),
        &state,
        now,
        expires_at,
    )
    .await?;
    Ok(Some(to_json(&options)?))
}

/// An assertion that verified, to be made effective with [`consume`] in
/// the transaction of what it unlocks.
pub struct Checked {
    use_up: UseUp,
    passkey_id: Uuid,
    seen_count: i64,
    new_count: i64,
    credential: Option<String>,
    pub account_id: Uuid,
}

/// How a checked ceremony is used up, once.
#[derive(Clone, Copy)]
enum UseUp {
    /// A stored ceremony (bound to a challenge or a reset link): deleted.
    Take(Uuid),
    /// A sign-in's ceremony, which lives in its sealed token: its id kept
    /// until it ends.
    Tombstone { id: Uuid, expires_at: i64 },
}

/// The server's half of a ceremony, opened.
enum CeremonyState {
    Discoverable(DiscoverableAuthentication),
    Bound(PasskeyAuthentication),
}

/// A sign-in ceremony as sealed into its token.
#[derive(serde::Serialize, serde::Deserialize)]
struct LoginCeremony {
    expires_at: i64,
    state: DiscoverableAuthentication,
}

enum Refusal {
    Invalid,
    /// The counter did not move forward: passkey `.0` may be a copy.
    Cloned(Uuid),
}

/// Verifies `assertion` for the ceremony bound to `bound_to` (a login
/// challenge or a reset link of `account`). A refused assertion is
/// `INVALID_CREDENTIALS`; a copied authenticator is recorded on the way.
pub async fn check_bound(
    ctx: &(impl Db + Settings + Sealing),
    now: Millis,
    account: &account::Model,
    bound_to: Uuid,
    assertion: &PublicKeyCredential,
    client: &ClientInfo,
) -> Result<Checked> {
    let Some(ceremony) = store::passkeys::ceremony_bound_to(ctx.db(), bound_to).await? else {
        return Err(Error::InvalidCredentials);
    };
    if ceremony.expires_at <= now || ceremony.account_id != Some(account.id) {
        return Err(Error::InvalidCredentials);
    }
    let state = CeremonyState::Bound(open_state(ctx.sealer(), &ceremony)?);
    let outcome = verify(
        ctx,
        UseUp::Take(ceremony.id),
        state,
        Some(account.id),
        assertion,
    )
    .await?;
    settle(ctx, now, outcome, client).await
}

/// Verifies the assertion against the ceremony's state and the stored
/// passkey; `account_id` when the account is known beforehand.
async fn verify(
    ctx: &(impl Db + Settings + Sealing),
    use_up: UseUp,
    state: CeremonyState,
    account_id: Option<Uuid>,
    assertion: &PublicKeyCredential,
) -> Result<std::result::Result<Checked, (Refusal, Option<Uuid>)>> {
    let rp = relying_party(&ctx.config().passkeys)?;
    let Some(row) =
        store::passkeys::by_credential_id(ctx.db(), &credential_id(assertion.get_credential_id()))
            .await?
    else {
        tracing::info!("passkey assertion refused: unknown credential");
        return Ok(Err((Refusal::Invalid, None)));
    };
    if account_id.is_some_and(|id| id != row.account_id) {
        tracing::info!("passkey assertion refused: another account's credential");
        return Ok(Err((Refusal::Invalid, None)));
    }
    let mut passkey: Passkey = serde_json::from_str(&row.credential).map_err(Error::internal)?;
    let result = match state {
        CeremonyState::Discoverable(state) => {
            // Sign-in without password: the user handle must name the owner.
            match rp.identify_discoverable_authentication(assertion) {
                Ok((user, _)) if user == row.account_id => {}
                _ => {
                    tracing::info!(
                        "passkey assertion refused: the user handle names another account"
                    );
                    return Ok(Err((Refusal::Invalid, Some(row.account_id))));
                }
            }
            rp.finish_discoverable_authentication(
                assertion,
                state,
                &[DiscoverableKey::from(&passkey)],
            )
        }
        CeremonyState::Bound(state) => rp.finish_passkey_authentication(assertion, &state),
    };
    let result = match result {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Ok(Err((Refusal::Cloned(row.id), Some(row.account_id))))
        }
        Err(error) => {
            tracing::info!(%error, "passkey assertion refused");
            return Ok(Err((Refusal::Invalid, Some(row.account_id))));
        }
    };
    // The ceremony's copy of the counter may be older than the stored one.
    let new_count = i64::from(result.counter());
    if (new_count > 0 || row.sign_count > 0) && new_count <= row.sign_count {
        return Ok(Err((Refusal::Cloned(row.id), Some(row.account_id))));
    }
    let credential = match passkey.update_credential(&result) {
        Some(true) => Some(to_json(&passkey)?),
        _ => None,
    };
    Ok(Ok(Checked {
        use_up,
        passkey_id: row.id,
        seen_count: row.sign_count,
        new_count,
        credential,
        account_id: row.account_id,
    }))
}

async fn settle(
    ctx: &impl Db,
    now: Millis,
    outcome: std::result::Result<Checked, (Refusal, Option<Uuid>)>,
    client: &ClientInfo,
) -> Result<Checked> {
    match outcome {
        Ok(checked) => Ok(checked),
        Err((Refusal::Invalid, _)) => Err(Error::InvalidCredentials),
        Err((Refusal::Cloned(passkey_id), account_id)) => {
            if let Some(account_id) = account_id {
                tracing::warn!(%account_id, %passkey_id, "passkey counter went back: possible clone");
                events::record(
                    ctx.db(),
                    now,
                    account_id,
                    EventKind::PasskeyCloneSuspected,
                    &Actor::customer(),
                    client,
                    serde_json::json!({ "passkey_id": passkey_id.to_string() }),
                )
                .await?;
            }
            Err(Error::InvalidCredentials)
        }
    }
}

/// Makes a checked assertion effective in `conn`'s transaction: its
/// ceremony used up and the passkey's counter moved, each exactly once (a
/// replay or a concurrent use finds them changed: `INVALID_CREDENTIALS`).
pub async fn consume<C: ConnectionTrait>(conn: &C, checked: &Checked, now: i64) -> Result<()> {
    match checked.use_up {
        UseUp::Take(id) => {
            if !store::passkeys::take_ceremony(conn, id).await? {
                return Err(Error::InvalidCredentials);
            }
        }
        UseUp::Tombstone { id, expires_at } => {
            if !store::passkeys::insert_tombstone(conn, id, expires_at).await? {
                return Err(Error::TokenInvalid);
            }
        }
    }
    if !store::passkeys::record_use(
        conn,
        checked.passkey_id,
        checked.seen_count,
        checked.new_count,
        checked.credential.clone(),
        now,
    )
    .await?
    {
        return Err(Error::InvalidCredentials);
    }
    Ok(())
}

/// `BeginPasskeyLogin`: a discoverable-credential ceremony. Anonymous
/// callers start many and finish few: its state travels sealed in the token
/// (AES-256-GCM, bound to the ceremony's id) instead of a row, and only a
/// used ceremony's id is kept, until it ends.
pub async fn begin_login(ctx: &(impl Db + Settings + Sealing), now: Millis) -> Result<Ceremony> {
    // One call in 64 sweeps the ended ceremonies and tombstones.
    if rand::random::<u8>() < 4 {
        store::passkeys::delete_expired_ceremonies(ctx.db(), now).await?;
    }
    let (mut options, state) = relying_party(&ctx.config().passkeys)?
        .start_discoverable_authentication()
        .map_err(Error::internal)?;
    // The page chooses conditional mediation itself; the plain prompt works
    // everywhere.
    options.mediation = None;
    let expires_at = now + CEREMONY_TTL_MS;
    let id = Uuid::now_v7();
    let sealed = seal_state(ctx.sealer(), id, &LoginCeremony { expires_at, state })?;
    Ok(Ceremony {
        token: SecretString::from(format!(
            "{}{}.{sealed}",
            TokenKind::PasskeyCeremony.prefix(),
            id.simple()
        )),
        options_json: to_json(&options)?,
        expires_at,
    })
}

/// The sign-in ceremony a token carries: its id and what it sealed.
fn open_login_token(sealer: &Sealer, presented: &str) -> Result<(Uuid, LoginCeremony)> {
    let body = presented
        .strip_prefix(TokenKind::PasskeyCeremony.prefix())
        .filter(|body| body.len() <= 4096)
        .ok_or(Error::TokenInvalid)?;
    let (id, sealed) = body.split_once('.').ok_or(Error::TokenInvalid)?;
    let id = Uuid::try_parse(id).map_err(|_| Error::TokenInvalid)?;
    let json = sealer
        .open(sealed, id.as_bytes())
        .map_err(|_| Error::TokenInvalid)?;
    let ceremony = serde_json::from_slice(&json).map_err(|_| Error::TokenInvalid)?;
    Ok((id, ceremony))
}

/// `FinishPasskeyLogin`: a session from a passkey alone, while the
/// password is not suspended.
#[tracing::instrument(skip_all)]
pub async fn finish_login(
    ctx: &(impl Db + Mailing),
    now: Millis,
    client: &ClientInfo,
    presented: &str,
    assertion: &PublicKeyCredential,
) -> Result<sessions::SessionGrant> {
    // The ceremony is used up by this call whatever its outcome: in the
    // transaction of the session on success (of concurrent answers exactly
    // one opens it), at once otherwise.
    let (id, ceremony) = open_login_token(ctx.sealer(), presented)?;
    if store::passkeys::ceremony_exists(ctx.db(), id).await? {
        return Err(Error::TokenInvalid);
    }
    if ceremony.expires_at <= now {
        return Err(Error::TokenExpired);
    }
    let expires_at = ceremony.expires_at;
    let use_up = || async move {
        store::passkeys::insert_tombstone(ctx.db(), id, expires_at)
            .await
            .map(drop)
            .map_err(Error::from)
    };
    // Failures count against the presented credential, known or not: a
    // back-off that only registered passkeys met would tell them apart.
    // It is not the password's back-off, which a passkey neither feeds nor
    // clears. No signature can be guessed, so a success is not counted.
    let key = token::hash(&format!(
        "passkey:{}",
        credential_id(assertion.get_credential_id())
    ));
    if let Err(error) = throttle::check_backoff(ctx, now, &key).await {
        use_up().await?;
        return Err(error);
    }
    let outcome = verify(
        ctx,
        UseUp::Tombstone { id, expires_at },
        CeremonyState::Discoverable(ceremony.state),
        None,
        assertion,
    )
    .await?;
    if outcome.is_err() {
        use_up().await?;
        throttle::begin_attempt(ctx, now, &key).await?;
    }
    let owner = match &outcome {
        Ok(checked) => Some(checked.account_id),
        Err((_, account_id)) => *account_id,
    };
    let account = match owner {
        Some(id) => store::accounts::by_id(ctx.db(), id).await?,
        None => None,
    };
    let checked = match settle(ctx, now, outcome, client).await {
        Ok(checked) => checked,
        Err(error) => {
            if let Some(account) = &account {
                events::record(
                    ctx.db(),
                    now,
                    account.id,
                    EventKind::LoginFailed,
                    &Actor::customer(),
                    client,
                    serde_json::json!({ "reason": "invalid_passkey" }),
                )
                .await?;
            }
            tracing::info!("passkey login refused: invalid credentials");
            return Err(error);
        }
    };
    let Some(account) = account else {
        use_up().await?;
        return Err(Error::InvalidCredentials);
    };
    let locale = Locale::parse(&account.locale);
    match PasswordState::parse(&account.password_state) {
        PasswordState::Active => {}
        PasswordState::Suspended => {
            // The seed's rule: access stays closed until the account is
            // secured by the reset procedure, a passkey included.
            use_up().await?;
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
            return Err(super::suspension::refusal(ctx.db(), ctx, account.id)
                .await?
                .for_account(locale));
        }
        _ => {
            use_up().await?;
            return Err(Error::InvalidCredentials);
        }
    }
    let txn = ctx.begin_write().await?;
    if let Err(error) = consume(&txn, &checked, now).await {
        drop(txn);
        use_up().await?;
        return Err(error);
    }
    let grant = sessions::create(&txn, ctx, account.id, client, true, now).await?;
    store::second_factor::set_last_login(&txn, account.id, now).await?;
    throttle::clear_failures(&txn, &key).await?;
    super::factor_reset::cancel_on_second_factor_login(&txn, &account, client, now).await?;
    let login_event = events::record(
        &txn,
        now,
        account.id,
        EventKind::LoginSucceeded,
        &Actor::customer(),
        client,
        serde_json::json!({
            "session_id": grant.session_id.to_string(),
            "second_factor": true,
            "method": "passkey",
        }),
    )
    .await?;
    // Suspended between the check and now: nothing is committed.
    if !store::accounts::by_id(&txn, account.id)
        .await?
        .is_some_and(|a| PasswordState::parse(&a.password_state) == PasswordState::Active)
    {
        drop(txn);
        use_up().await?;
        return Err(super::suspension::refusal(ctx.db(), ctx, account.id)
            .await?
            .for_account(locale));
    }
    notices::new_login(&txn, ctx, now, &account, client, login_event).await?;
    notices::commit(txn, ctx).await?;
    tracing::info!(account_id = %account.id, "passkey login succeeded");
    Ok(grant)
}

/// `GetResetPasskeyOptions`: request options bound to the reset link.
pub async fn reset_options(
    ctx: &(impl Db + Settings + Sealing),
    now: Millis,
    presented: &str,
) -> Result<String> {
    let (row, account) = super::links::presented::<crate::entity::reset_token::Entity>(
        ctx.db(),
        now,
        TokenKind::Reset,
        presented,
    )
    .await?;
    start_check(
        ctx.db(),
        &ctx.config().passkeys,
        ctx.sealer(),
        account.id,
        "reset",
        row.id,
        now,
        (now + CEREMONY_TTL_MS).min(row.expires_at),
    )
    .await?
    .ok_or_else(|| Error::InvalidStateTransition("the account has no passkey".into()))
}
