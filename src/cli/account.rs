//! `gardien account …`: the security team's daily work on one account from
//! the command line. Every change goes through the same domain code as the
//! RPCs and is recorded in the customer's journal with the operator as
//! actor (`SECURITY_TEAM`, the operator's name), from the client
//! "gardien command line".

use std::{io::BufRead, sync::Arc};

use clap::Subcommand;
use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    clock::SystemClock,
    config::Config,
    domain::{
        accounts::{self, AccountSelector, NewAccount},
        credentials, events,
        principal::{Actor, ActorKind, ClientInfo},
        sessions, suspension,
        types::{Email, Locale, Login, Phone, PostalAddress},
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
    credentials::parse_name(&raw.to_ascii_lowercase()).map_err(|v| v.description)
}

fn client() -> ClientInfo {
    ClientInfo {
        address: None,
        user_agent: Some(CLIENT.into()),
    }
}

fn selector(raw: &str) -> anyhow::Result<AccountSelector> {
    if let Ok(id) = Uuid::parse_str(raw.trim()) {
        return Ok(AccountSelector::Id(id));
    }
    Login::parse("account", raw)
        .map(AccountSelector::Login)
        .map_err(|v| anyhow::anyhow!("account: {} (give its id or its login)", v.description))
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

pub async fn run(config: Config, command: AccountCommand) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let db = db::connect(&config).await?;
    db::migrate(&db).await?;
    let ctx = server::context(config, db, Arc::new(SystemClock))?;
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
        AccountCommand::Show { account, events } => show(&ctx, now, &account, events).await?,
        AccountCommand::Suspend {
            account,
            reason,
            note,
            operator,
        } => {
            let account_id = accounts::find(&ctx, &selector(&account)?).await?.id;
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
                    note,
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
            note,
            operator,
        } => {
            let account_id = accounts::find(&ctx, &selector(&account)?).await?.id;
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
            let account_id = accounts::find(&ctx, &selector(&account)?).await?.id;
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

async fn show(ctx: &Context, now: i64, account: &str, count: u64) -> anyhow::Result<()> {
    let status = accounts::status(ctx, &selector(account)?, now).await?;
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
        let (entries, _) = events::list(&ctx.db, a.id, &Default::default(), count, None).await?;
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
