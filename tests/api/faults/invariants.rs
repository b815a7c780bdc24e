//! What must hold in the database whatever moment a process died at: every
//! acknowledged change is there with its security event, and the rows that
//! one transaction writes together are all there or all absent (no
//! suspension without its event and notice, no reset token consumed without
//! the password having changed, no live session on a suspended password).

use std::collections::{HashMap, HashSet};

use gardien::entity::{
    account, outbox, reset_token, security_event, session, suspension, ticket, ticket_message,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use uuid::Uuid;

/// Changes the clients saw answered OK, by what they should have written.
#[derive(Debug, Default)]
pub struct Ledger {
    /// `CreateAccount`: the account id.
    pub accounts: Vec<Uuid>,
    /// `RecordActivity`: the event id and the service's own id.
    pub activities: Vec<(Uuid, String)>,
    /// `CreateTicket`: the ticket id.
    pub tickets: Vec<Uuid>,
    /// `SuspendPassword`: the suspension id.
    pub suspensions: Vec<Uuid>,
    /// `CompletePasswordReset`: the account id (the new password is the
    /// same for every account).
    pub resets: Vec<Uuid>,
}

impl Ledger {
    pub fn len(&self) -> usize {
        self.accounts.len()
            + self.activities.len()
            + self.tickets.len()
            + self.suspensions.len()
            + self.resets.len()
    }
}

/// Every row the checks need, read at once.
pub struct Snapshot {
    pub accounts: Vec<account::Model>,
    pub events: Vec<security_event::Model>,
    pub suspensions: Vec<suspension::Model>,
    pub reset_tokens: Vec<reset_token::Model>,
    pub outbox: Vec<outbox::Model>,
    pub tickets: Vec<ticket::Model>,
    pub messages: Vec<ticket_message::Model>,
    pub sessions: Vec<session::Model>,
}

impl Snapshot {
    pub async fn load(db: &DatabaseConnection) -> Self {
        Self {
            accounts: account::Entity::find().all(db).await.unwrap(),
            events: security_event::Entity::find().all(db).await.unwrap(),
            suspensions: suspension::Entity::find().all(db).await.unwrap(),
            reset_tokens: reset_token::Entity::find().all(db).await.unwrap(),
            outbox: outbox::Entity::find().all(db).await.unwrap(),
            tickets: ticket::Entity::find().all(db).await.unwrap(),
            messages: ticket_message::Entity::find().all(db).await.unwrap(),
            sessions: session::Entity::find().all(db).await.unwrap(),
        }
    }

    fn events_of<'a>(
        &'a self,
        account: Uuid,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a security_event::Model> + 'a {
        self.events
            .iter()
            .filter(move |e| e.account_id == account && e.kind == kind)
    }

    fn mails_of(&self, account: Uuid, kind: &str) -> usize {
        self.outbox
            .iter()
            .filter(|m| m.account_id == Some(account) && m.kind == kind)
            .count()
    }
}

fn detail(event: &security_event::Model, key: &str) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&event.details).ok()?;
    details[key].as_str().map(str::to_string)
}

/// Acknowledged changes missing from `db` (with their event), one line each.
pub fn lost(ledger: &Ledger, db: &Snapshot) -> Vec<String> {
    let mut lost = Vec::new();
    for id in &ledger.accounts {
        if !db.accounts.iter().any(|a| a.id == *id)
            || db.events_of(*id, "account_created").count() != 1
        {
            lost.push(format!("account {id} or its account_created event"));
        }
    }
    for (id, source) in &ledger.activities {
        if !db
            .events
            .iter()
            .any(|e| e.id == *id && e.source_event_id.as_deref() == Some(source))
        {
            lost.push(format!("activity event {id} ({source})"));
        }
    }
    for id in &ledger.tickets {
        let Some(ticket) = db.tickets.iter().find(|t| t.id == *id) else {
            lost.push(format!("ticket {id}"));
            continue;
        };
        let account = ticket.account_id.unwrap_or_default();
        if !db
            .events_of(account, "ticket_created")
            .any(|e| detail(e, "ticket_id") == Some(id.to_string()))
        {
            lost.push(format!("ticket_created event of ticket {id}"));
        }
    }
    for id in &ledger.suspensions {
        let Some(found) = db.suspensions.iter().find(|s| s.id == *id) else {
            lost.push(format!("suspension {id}"));
            continue;
        };
        if !db
            .events_of(found.account_id, "password_suspended")
            .any(|e| detail(e, "suspension_id") == Some(id.to_string()))
        {
            lost.push(format!("password_suspended event of suspension {id}"));
        }
    }
    for account in &ledger.resets {
        let used = db
            .reset_tokens
            .iter()
            .any(|t| t.account_id == *account && t.used_at.is_some());
        if !used || db.events_of(*account, "password_reset_completed").count() == 0 {
            lost.push(format!("completed reset of account {account}"));
        }
    }
    lost
}

/// Rows of one transaction that disagree (a half-applied change), one line
/// each. The new password of a completed reset is verified once per account
/// (argon2 is slow); `verified` remembers which were.
pub fn inconsistencies(
    db: &Snapshot,
    reset_password: &str,
    verified: &mut HashSet<Uuid>,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut problem =
        |account: Uuid, what: String| found.push(format!("account {account}: {what}"));
    let mut suspensions: HashMap<Uuid, Vec<&suspension::Model>> = HashMap::new();
    for s in &db.suspensions {
        suspensions.entry(s.account_id).or_default().push(s);
    }
    for account in &db.accounts {
        let id = account.id;
        let count = |kind: &str| db.events_of(id, kind).count();
        if count("account_created") != 1 {
            problem(id, "not exactly one account_created event".into());
        }

        // Suspensions: state, rows, events and notices agree.
        let own = suspensions.get(&id).map(Vec::as_slice).unwrap_or_default();
        let open: Vec<_> = own.iter().filter(|s| s.lifted_at.is_none()).collect();
        let suspended = account.password_state == "suspended";
        if open.len() != usize::from(suspended) {
            problem(
                id,
                format!(
                    "password_state {} with {} open suspension(s)",
                    account.password_state,
                    open.len()
                ),
            );
        }
        if count("password_suspended") != own.len() {
            problem(
                id,
                format!(
                    "{} suspension(s), {} password_suspended event(s)",
                    own.len(),
                    count("password_suspended")
                ),
            );
        }
        for s in own {
            if !db.events_of(id, "password_suspended").any(|e| {
                detail(e, "suspension_id") == Some(s.id.to_string())
                    && e.occurred_at == s.suspended_at
            }) {
                problem(id, format!("suspension {} without its event", s.id));
            }
        }
        let lifted = own.iter().filter(|s| s.lifted_at.is_some()).count();
        if count("suspension_lifted") != lifted {
            problem(
                id,
                format!(
                    "{lifted} lifted suspension(s), {} suspension_lifted event(s)",
                    count("suspension_lifted")
                ),
            );
        }
        if db.mails_of(id, "suspension_notice") != own.len() {
            problem(
                id,
                format!(
                    "{} suspension(s), {} notice(s) queued",
                    own.len(),
                    db.mails_of(id, "suspension_notice")
                ),
            );
        }
        if let Some(open) = open.first() {
            let live = db.sessions.iter().filter(|s| {
                s.account_id == id && s.revoked_at.is_none() && s.created_at <= open.suspended_at
            });
            if live.count() > 0 {
                problem(id, "a session outlived the suspension".into());
            }
        }

        // Resets: requests, tokens, links, uses, events, notices, password.
        let tokens: Vec<_> = db
            .reset_tokens
            .iter()
            .filter(|t| t.account_id == id)
            .collect();
        if count("password_reset_requested") != tokens.len()
            || db.mails_of(id, "reset_link") != tokens.len()
        {
            problem(
                id,
                format!(
                    "{} reset token(s), {} request event(s), {} link(s) queued",
                    tokens.len(),
                    count("password_reset_requested"),
                    db.mails_of(id, "reset_link")
                ),
            );
        }
        let used: Vec<_> = tokens.iter().filter_map(|t| t.used_at).collect();
        let completed: Vec<_> = db
            .events_of(id, "password_reset_completed")
            .map(|e| e.occurred_at)
            .collect();
        let mut used_sorted = used.clone();
        used_sorted.sort_unstable();
        let mut completed_sorted = completed.clone();
        completed_sorted.sort_unstable();
        if used_sorted != completed_sorted {
            problem(
                id,
                format!("reset tokens used at {used:?}, resets completed at {completed:?}"),
            );
        }
        if db.mails_of(id, "password_changed") != completed.len() {
            problem(
                id,
                format!(
                    "{} reset(s), {} password-changed notice(s)",
                    completed.len(),
                    db.mails_of(id, "password_changed")
                ),
            );
        }
        if !used.is_empty() && verified.insert(id) && !password_is(account, reset_password) {
            problem(
                id,
                "a reset token was consumed but the password did not change".into(),
            );
        }

        // Logins: one session per login_succeeded event.
        let sessions = db.sessions.iter().filter(|s| s.account_id == id).count();
        if count("login_succeeded") != sessions {
            problem(
                id,
                format!(
                    "{sessions} session(s), {} login_succeeded event(s)",
                    count("login_succeeded")
                ),
            );
        }
    }
    for t in &db.tickets {
        let messages = db.messages.iter().filter(|m| m.ticket_id == t.id).count();
        let account = t.account_id.unwrap_or_default();
        let events = db
            .events_of(account, "ticket_created")
            .filter(|e| detail(e, "ticket_id") == Some(t.id.to_string()))
            .count();
        if messages == 0 || events != 1 {
            found.push(format!(
                "ticket {}: {messages} message(s), {events} ticket_created event(s)",
                t.id
            ));
        }
    }
    found
}

fn password_is(account: &account::Model, password: &str) -> bool {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    account
        .password_hash
        .as_deref()
        .and_then(|hash| PasswordHash::new(hash).ok())
        .is_some_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
}

/// `PRAGMA integrity_check` of a SQLite database: "ok" when sound.
pub async fn integrity_check(db: &sea_orm::DatabaseConnection) -> String {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}
