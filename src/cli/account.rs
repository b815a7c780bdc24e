//! `gardien account …`: the security team's daily work on one account from
//! the command line. Every change goes through the same domain code as the
//! RPCs and is recorded in the customer's journal with the operator as
//! actor (`SECURITY_TEAM`, the operator's name), from the client
//! "gardien command line".

use std::{io::BufRead, sync::Arc};

use clap::Subcommand;
use secrecy::SecretString;
use uuid::Uuid;

use sea_orm::DatabaseConnection;

use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    domain::{
        accounts::{self, AccountSelector, NewAccount},
        credentials,
        deps::{Db, Settings},
        events,
        principal::{Actor, ActorKind, ClientInfo},
        sessions, suspension,
        types::{parse_text, Email, Locale, Login, Phone, PostalAddress},
        Context,
    },
    kinds::Reason,
    server,
    store::db,
};

/// How the command line appears as the client of what it records.
pub const CLIENT: &str = "gardien command line";

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create a customer account; prints its id.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long, default_value = "en")]
        locale: String,
        /// Read the initial password from the first line of standard input
        /// (without it the customer sets one through a reset link).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print an account's state, open suspension and latest journal
    /// entries (writes nothing).
    Show {
        /// The account's id or login.
        account: String,
        /// How many journal entries, newest first.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=500))]
        events: u64,
    },
    /// Suspend the account's password: every session and reset link ends,
    /// the customer is e-mailed the reset procedure.
    Suspend {
        /// The account's id or login.
        account: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
            Reason::ALL.iter().map(|r| r.as_str())
        ))]
        reason: String,
        /// For the staff only (the customer never sees it).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        operator: Operator,
    },
    /// Lift the open suspension of the account's password.
    Lift {
        /// The account's id or login.
        account: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        operator: Operator,
    },
    /// End every live session of the account (cause SECURITY_TEAM).
    RevokeSessions {
        /// The account's id or login.
        account: String,
        #[command(flatten)]
        operator: Operator,
    },
}

/// Who is acting, recorded as the actor of what the command changes.
#[derive(Debug, clap::Args)]
pub struct Operator {
    /// The operator's name as recorded (letters a-z, digits, '.', '_',
    /// '-'); default the login name of the shell ($USER).
    #[arg(long = "operator", env = "USER", value_parser = parse_operator)]
    pub name: String,
}

impl Operator {
    fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::SecurityTeam,
            name: Some(self.name.clone()),
        }
    }
}

/// An operator's name, checked like a credential's.
pub fn parse_operator(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    // Checked as given (then kept in lower case), so that no letter
    // outside a-z becomes one, and naming someone: a letter or digit.
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        || !raw.bytes().any(|b| b.is_ascii_alphanumeric())
    {
        return Err(
            "must be a name of letters a-z, digits, '.', '_' and '-', with a letter or digit"
                .into(),
        );
    }
    credentials::parse_name(&raw.to_ascii_lowercase()).map_err(|v| v.description)
}

fn client() -> ClientInfo {
    ClientInfo {
        address: None,
        user_agent: Some(CLIENT.into()),
    }
}

/// The account `raw` names: `id:…` or `login:…`, or without a prefix its
/// id (the hyphenated form) or its login. A value that is the id of one
/// account and the login of another is refused, naming the prefixes.
async fn selector(ctx: &impl Db, raw: &str) -> anyhow::Result<AccountSelector> {
    let raw = raw.trim();
    let bad_login =
        |v: crate::domain::error::FieldViolation| anyhow::anyhow!("account: {}", v.description);
    if let Some(id) = raw.strip_prefix("id:") {
        let id = Some(id.trim())
            .filter(|id| id.len() == 36)
            .and_then(|id| Uuid::try_parse(id).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("account: id:{id} is not an account id (8-4-4-4-12 hex digits)")
            })?;
        return Ok(AccountSelector::Id(id));
    }
    if let Some(login) = raw.strip_prefix("login:") {
        return Ok(AccountSelector::Login(
            Login::parse("account", login).map_err(bad_login)?,
        ));
    }
    let as_id = (raw.len() == 36)
        .then(|| Uuid::try_parse(raw).ok())
        .flatten()
        .map(AccountSelector::Id);
    let as_login = Login::parse("account", raw)
        .ok()
        .map(AccountSelector::Login);
    let mut found = Vec::new();
    for selector in [as_id, as_login].into_iter().flatten() {
        if accounts::find(ctx, &selector).await.is_ok() {
            found.push(selector);
        }
    }
    match (found.pop(), found.pop()) {
        (Some(_), Some(_)) => anyhow::bail!(
            "account: {raw:?} is the id of one account and the login of another: give \
             id:{raw} or login:{raw}"
        ),
        (Some(selector), None) => Ok(selector),
        _ => anyhow::bail!("account {raw:?} not found (give its id or its login)"),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn actor_text(actor: &Actor) -> String {
    match &actor.name {
        Some(name) => format!("{}:{name}", actor.kind.as_str()),
        None => actor.kind.as_str().to_string(),
    }
}

/// What `account show` reads with: the database and the settings, nothing
/// that could create a key or a table.
struct ReadOnly {
    db: DatabaseConnection,
    config: Config,
}

impl Db for ReadOnly {
    fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

impl Settings for ReadOnly {
    fn config(&self) -> &Config {
        &self.config
    }
}

/// The context of a command that changes an account beside a running
/// server: the server's database as it is (never migrated here) and the
/// server's sealing key (never a new one, which would seal the customer's
/// e-mail with a key the server does not have).
async fn beside_the_server(config: Config) -> anyhow::Result<Context> {
    let keys_given =
        config.totp.encryption_key.is_some() || !config.totp.encryption_keys.is_empty();
    if !keys_given && !config.totp_key_file().exists() {
        anyhow::bail!(
            "no sealing key: {} does not exist and totp.encryption_keys is not set; run this \
             with the server's configuration (its data_dir or its keys)",
            config.totp_key_file().display()
        );
    }
    let db = db::connect_existing(&config).await?;
    server::context(Arc::new(config), db, Arc::new(SystemClock))
}

/// A note as `SuspendPassword` and `LiftSuspension` take it.
fn note(raw: &str) -> anyhow::Result<String> {
    parse_text("note", raw, 2000).map_err(|v| anyhow::anyhow!("--note: {}", v.description))
}

pub async fn run(config: Config, command: AccountCommand) -> anyhow::Result<()> {
    if let AccountCommand::Show { account, events } = &command {
        let db = db::connect_existing(&config).await?;
        let read = ReadOnly { db, config };
        let now = SystemClock.now_ms();
        return show(&read, now, account, *events).await;
    }
    let ctx = match command {
        AccountCommand::Create { .. } => {
            let config = Arc::new(config);
            let db = db::connect(&config).await?;
            db::migrate(&db).await?;
            server::context(config, db, Arc::new(SystemClock))?
        }
        _ => beside_the_server(config).await?,
    };
    let now = ctx.now();
    match command {
        AccountCommand::Create {
            login,
            email,
            phone,
            locale,
            password_stdin,
        } => {
            let invalid = |v: crate::domain::error::FieldViolation| {
                anyhow::anyhow!("--{}: {}", v.field, v.description)
            };
            let new = NewAccount {
                login: Login::parse("login", &login).map_err(invalid)?,
                email: Email::parse("email", &email).map_err(invalid)?,
                phone: Phone::parse_optional("phone", &phone).map_err(invalid)?,
                address: PostalAddress::default(),
                locale: match locale.as_str() {
                    "en" => Locale::En,
                    "fr" => Locale::Fr,
                    _ => anyhow::bail!("--locale: must be en or fr"),
                },
                password: if password_stdin {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    Some(SecretString::from(
                        line.trim_end_matches(['\r', '\n']).to_string(),
                    ))
                } else {
                    None
                },
            };
            let created =
                accounts::create(&ctx, now, &Actor::system(), &ClientInfo::default(), new).await?;
            println!("{}", created.id);
        }
        AccountCommand::Show { .. } => {}
        AccountCommand::Suspend {
            account,
            reason,
            note: note_given,
            operator,
        } => {
            let account_id = accounts::find(&ctx, &selector(&ctx, &account).await?)
                .await?
                .id;
            let reason = Reason::parse(&reason)
                .ok_or_else(|| anyhow::anyhow!("--reason: unknown reason {reason:?}"))?;
            let done = suspension::suspend(
                &ctx,
                now,
                &operator.actor(),
                &client(),
                suspension::SuspendRequest {
                    account_id,
                    reason,
                    note: note(&note_given)?,
                    evidence_event_ids: Vec::new(),
                },
            )
            .await?;
            if done.already_suspended {
                eprintln!(
                    "the password of {account_id} was already suspended (since {}); nothing changed",
                    rfc3339(done.suspension.suspended_at)
                );
            } else {
                eprintln!(
                    "password of {account_id} suspended by {}: {} session(s) ended, the customer \
                     is e-mailed the reset procedure",
                    operator.name, done.sessions_revoked
                );
            }
            println!("{}", done.suspension.id);
        }
        AccountCommand::Lift {
            account,
            note: note_given,
            operator,
        } => {
            let note = note(&note_given)?;
            let account_id = accounts::find(&ctx, &selector(&ctx, &account).await?)
                .await?
                .id;
            suspension::lift(
                &ctx.db,
                now,
                &operator.actor(),
                &client(),
                account_id,
                &note,
            )
            .await?;
            eprintln!("suspension of {account_id} lifted by {}", operator.name);
        }
        AccountCommand::RevokeSessions { account, operator } => {
            let account_id = accounts::find(&ctx, &selector(&ctx, &account).await?)
                .await?
                .id;
            let ended = sessions::revoke_for_security_team(
                &ctx.db,
                now,
                account_id,
                &operator.actor(),
                &client(),
            )
            .await?;
            eprintln!(
                "{ended} session(s) of {account_id} ended by {}",
                operator.name
            );
            println!("{ended}");
        }
    }
    Ok(())
}

async fn show(ctx: &ReadOnly, now: i64, account: &str, count: u64) -> anyhow::Result<()> {
    let status = accounts::status(ctx, &selector(ctx, account).await?, now).await?;
    let a = &status.account;
    let or_never = |at: Option<i64>| at.map_or_else(|| "never".to_string(), rfc3339);
    println!("id               {}", a.id);
    println!("login            {}", a.login.escape_debug());
    println!("email            {}", a.email.escape_debug());
    println!(
        "phone            {}",
        a.phone.as_deref().unwrap_or("-").escape_debug()
    );
    println!("password         {}", a.password_state.as_str());
    println!(
        "two-factor       {}",
        if a.totp_enabled { "on" } else { "off" }
    );
    println!("created          {}", rfc3339(a.created_at));
    println!("last login       {}", or_never(status.last_login_at));
    println!("live sessions    {}", status.active_sessions);
    println!("failed logins    {}", status.consecutive_failed_logins);
    match &status.active_suspension {
        Some(s) => println!(
            "suspension       since {} by {}, reason {}, note {:?}",
            rfc3339(s.suspended_at),
            actor_text(&s.suspended_by),
            s.reason.map_or("other", Reason::as_str),
            s.note
        ),
        None => println!("suspension       none"),
    }
    if count > 0 {
        let (entries, _) = events::list(ctx.db(), a.id, &Default::default(), count, None).await?;
        println!("journal (newest first):");
        for event in entries {
            let details = event
                .details
                .iter()
                .map(|(key, value)| format!("{key}={}", value.escape_debug()))
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "  {}  {:<28}  {:<28}  {details}",
                rfc3339(event.occurred_at),
                event.kind.map_or("unknown", |kind| kind.as_str()),
                actor_text(&event.actor)
            );
        }
    }
    Ok(())
}
