//! Customer accounts: creation by an onboarding service, and the status view
//! for services, agents and the security team.

use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    deps::{Db, Hashing, Settings},
    error::{Error, Result},
    events::{self, EventKind},
    password::NewPassword,
    principal::{Actor, ClientInfo},
    records::{Account, PasswordState, Suspension},
    types::{Email, Locale, Login, Phone, PostalAddress},
};
use crate::{clock::Millis, entity::account, store};

/// A validated `CreateAccount` request.
pub struct NewAccount {
    pub login: Login,
    pub email: Email,
    pub phone: Option<Phone>,
    pub address: PostalAddress,
    pub locale: Locale,
    /// The customer's chosen password, checked against the policy here.
    pub password: Option<SecretString>,
}

/// Words a password must not be built from.
pub fn context_words<'a>(login: &'a str, email: &'a str) -> Vec<&'a str> {
    let mut words = vec![login, email];
    if let Some((local, _)) = email.split_once('@') {
        words.push(local);
    }
    words
}

/// Checks a new password against the policy for the account `login` /
/// `email`. The strength estimate takes milliseconds of CPU, so it runs on
/// the hashing threads, not on the async runtime; `field` names the request
/// field in the error.
pub async fn check_new_password(
    ctx: &impl Hashing,
    raw: &SecretString,
    login: &str,
    email: &str,
    field: &str,
) -> Result<NewPassword> {
    let policy = ctx.policy().clone();
    let (raw, login, email) = (raw.clone(), login.to_owned(), email.to_owned());
    ctx.hasher()
        .run(move || policy.check(raw.expose_secret(), &context_words(&login, &email)))
        .await?
        .map_err(|rejection| Error::PasswordTooWeak {
            field: field.to_string(),
            rejection,
        })
}

#[tracing::instrument(skip_all, fields(login = %crate::telemetry::pseudonym(new.login.as_str())))]
pub async fn create(
    ctx: &(impl Db + Hashing),
    now: Millis,
    actor: &Actor,
    client: &ClientInfo,
    new: NewAccount,
) -> Result<Account> {
    let password_hash = match &new.password {
        Some(raw) => {
            let checked =
                check_new_password(ctx, raw, new.login.as_str(), new.email.as_str(), "password")
                    .await
                    .map_err(|error| error.for_account(new.locale))?;
            Some(ctx.hasher().hash(checked.secret()).await?)
        }
        None => None,
    };
    let model = account::Model {
        id: Uuid::now_v7(),
        login: new.login.as_str().to_string(),
        email: new.email.as_str().to_string(),
        phone: new.phone.map(|p| p.as_str().to_string()),
        address_line1: new.address.line1,
        address_line2: new.address.line2,
        postal_code: new.address.postal_code,
        city: new.address.city,
        country_code: new.address.country_code,
        locale: new.locale.as_str().to_string(),
        password_state: if password_hash.is_some() {
            PasswordState::Active
        } else {
            PasswordState::Unset
        }
        .as_str()
        .to_string(),
        password_hash,
        last_login_at: None,
        totp_secret: None,
        totp_pending_secret: None,
        totp_pending_at: None,
        totp_last_step: None,
        totp_enabled_at: None,
        passkey_count: 0,
        created_at: now,
        updated_at: now,
    };
    let txn = ctx.begin_write().await?;
    store::accounts::insert(&txn, model.clone())
        .await
        .map_err(|error| match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::AlreadyExists {
                what: "an account with this login",
                field: "login".into(),
            },
            _ => error.into(),
        })?;
    events::record(
        &txn,
        now,
        model.id,
        EventKind::AccountCreated,
        actor,
        client,
        serde_json::json!({ "login": model.login }),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(account_id = %model.id, "account created");
    Ok(Account::from(&model))
}

/// Everything `GetAccountStatus` tells about an account.
pub struct AccountStatus {
    pub account: Account,
    pub last_login_at: Option<i64>,
    pub active_suspension: Option<Suspension>,
    pub active_sessions: u64,
    pub consecutive_failed_logins: u32,
    pub login_backoff_until: Option<i64>,
}

pub enum AccountSelector {
    Id(Uuid),
    Login(Login),
}

pub async fn find(ctx: &impl Db, selector: &AccountSelector) -> Result<Account> {
    Ok(Account::from(&find_row(ctx.db(), selector).await?))
}

async fn find_row(db: &DatabaseConnection, selector: &AccountSelector) -> Result<account::Model> {
    let found = match selector {
        AccountSelector::Id(id) => store::accounts::by_id(db, *id).await?,
        AccountSelector::Login(login) => store::accounts::by_login(db, login.as_str()).await?,
    };
    found.ok_or(Error::NotFound("account"))
}

/// The account and its live state as at `now`.
pub async fn status(
    ctx: &(impl Db + Settings),
    selector: &AccountSelector,
    now: i64,
) -> Result<AccountStatus> {
    let account = find_row(ctx.db(), selector).await?;
    let active_suspension = store::suspensions::active(ctx.db(), account.id).await?;
    let idle_ms = ctx.config().session.idle_ttl_secs as i64 * 1000;
    let active_sessions =
        store::sessions::count_live(ctx.db(), account.id, now, now - idle_ms).await?;
    let throttle = store::throttle::find(ctx.db(), &super::throttle::key(&account.login)).await?;
    Ok(AccountStatus {
        active_suspension: active_suspension.as_ref().map(Suspension::from),
        last_login_at: account.last_login_at,
        active_sessions,
        consecutive_failed_logins: throttle.as_ref().map_or(0, |t| t.failures.max(0) as u32),
        login_backoff_until: throttle
            .and_then(|t| t.backoff_until)
            .filter(|until| *until > now),
        account: Account::from(&account),
    })
}
