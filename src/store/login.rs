//! The fast paths of `Login`: the attempt counted and the account read in
//! one trip, and a successful login's writes in one trip.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, QueryResult, Statement,
};

use super::throttle::{self, Schedule};
use crate::{
    entity::{account, security_event, session},
    kinds::PasswordState,
};

/// An account found by its login, and whether it ever logged in from the
/// caller's address.
pub struct Found {
    pub account: account::Model,
    pub seen_here: bool,
}

impl FromQueryResult for Found {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            account: account::Model::from_query_result(row, prefix)?,
            seen_here: row.try_get(prefix, "seen_here")?,
        })
    }
}

/// The check for an earlier event of kind `$5` on the account from the
/// address `$6` (no address: `= NULL` holds for no row).
const SEEN_HERE: &str = "EXISTS ( \
    SELECT 1 FROM security_events \
    WHERE security_events.account_id = accounts.id \
      AND security_events.kind = $5 AND security_events.client_address = $6 \
) AS seen_here";

/// What [`count_and_find`] saw. One per call, moved once: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Counted {
    /// The attempt was refused: backed off or at the limit.
    Refused,
    /// The attempt was counted; the account, if the login has one.
    Counted(Option<Found>),
}

/// [`throttle::count_attempt`] and the account of `login` read in one trip:
/// one statement on PostgreSQL (one row, its `counted` null when the attempt
/// is refused, its account columns null when there is no account); two on
/// SQLite, which has no writing `WITH` (a `counted` row when the attempt is
/// counted, then the account's row if there is one). `seen_kind` is the
/// event kind whose earlier presence from `address` sets `seen_here`.
pub async fn count_and_find(
    db: &DatabaseConnection,
    schedule: &impl Schedule,
    key: &str,
    login: &str,
    address: Option<&str>,
    seen_kind: &str,
    now: i64,
) -> Result<Counted, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "WITH attempt AS ({}) \
             SELECT (SELECT counted FROM attempt) AS counted, accounts.*, {} \
             FROM (SELECT 1) AS one LEFT JOIN accounts ON accounts.login = $7",
            throttle::attempt_sql(schedule, backend),
            SEEN_HERE
        ),
        _ => format!(
            "{}; SELECT accounts.*, {} FROM accounts WHERE accounts.login = ?7",
            throttle::attempt_sql(schedule, backend),
            SEEN_HERE.replace('$', "?")
        ),
    };
    let [v1, v2, v3, v4] = throttle::attempt_values(schedule, key, now);
    let values = [
        v1,
        v2,
        v3,
        v4,
        seen_kind.into(),
        address.into(),
        login.into(),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let (mut counted, mut found) = (false, None);
    for row in rows {
        // A column the row does not have reads as absent.
        counted |= matches!(row.try_get::<Option<i32>>("", "counted"), Ok(Some(_)));
        if let Ok(Some(_)) = row.try_get::<Option<uuid::Uuid>>("", "id") {
            found = Some(Found::from_query_result(&row, "")?);
        }
    }
    Ok(if counted {
        Counted::Counted(found)
    } else {
        Counted::Refused
    })
}

/// The writes of a successful login without a second factor: the account's
/// last login (and a rehashed password), the back-off of `key` cleared, the
/// session and its journal entry, each only while the password is still
/// active.
pub struct Opening<'a> {
    pub account_id: uuid::Uuid,
    pub key: &'a str,
    pub new_hash: Option<String>,
    pub session: session::Model,
    pub event: security_event::Model,
    pub now: i64,
}

/// The writes on PostgreSQL: every write hangs on the account update, whose
/// `WHERE` is checked again after waiting for a concurrent suspension. It
/// answers one row (one row affected) when the session is open.
const WRITES_POSTGRES: &str = "\
    WITH updated AS ( \
        UPDATE accounts SET last_login_at = $1, password_hash = COALESCE($2, password_hash) \
        WHERE id = $3 AND password_state = $4 RETURNING id \
    ), cleared AS ( \
        UPDATE login_throttle SET failures = 0, backoff_until = NULL \
        WHERE login_key = $5 AND EXISTS (SELECT 1 FROM updated) \
    ), opened AS ( \
        INSERT INTO sessions (id, account_id, token_hash, created_at, last_seen_at, \
            expires_at, revoked_at, revoke_reason, client_address, user_agent, \
            second_factor_used) \
        SELECT $6, id, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM updated \
    ), recorded AS ( \
        INSERT INTO security_events (id, account_id, kind, occurred_at, actor_kind, \
            actor_name, client_address, user_agent, details, acknowledged_at, \
            disputed_at, source_event_id) \
        SELECT $16, id, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26 FROM updated \
    ) \
    SELECT id FROM updated";

/// The writes on SQLite: four statements run in turn in one transaction
/// (which holds the write lock from the first); each writes only while the
/// password is active, so all write or none do, and the session insert
/// answers a row when they do.
const WRITES_SQLITE: &str = "\
    UPDATE accounts SET last_login_at = $1, password_hash = COALESCE($2, password_hash) \
    WHERE id = $3 AND password_state = $4; \
    UPDATE login_throttle SET failures = 0, backoff_until = NULL \
    WHERE login_key = $5 AND EXISTS \
        (SELECT 1 FROM accounts WHERE id = $3 AND password_state = $4); \
    INSERT INTO sessions (id, account_id, token_hash, created_at, last_seen_at, expires_at, \
        revoked_at, revoke_reason, client_address, user_agent, second_factor_used) \
    SELECT $6, id, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
    FROM accounts WHERE id = $3 AND password_state = $4 RETURNING id; \
    INSERT INTO security_events (id, account_id, kind, occurred_at, actor_kind, actor_name, \
        client_address, user_agent, details, acknowledged_at, disputed_at, source_event_id) \
    SELECT $16, id, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26 \
    FROM accounts WHERE id = $3 AND password_state = $4";

impl Opening<'_> {
    fn statement(self, backend: DbBackend) -> Statement {
        let Opening {
            account_id,
            key,
            new_hash,
            session,
            event,
            now,
        } = self;
        // Every column of both rows is named here, so a column added to
        // either entity fails to compile until it is written.
        let session::Model {
            id: session_id,
            account_id: _,
            token_hash,
            created_at,
            last_seen_at,
            expires_at,
            revoked_at,
            revoke_reason,
            client_address: session_address,
            user_agent: session_agent,
            second_factor_used,
        } = session;
        let security_event::Model {
            id: event_id,
            account_id: _,
            kind,
            occurred_at,
            actor_kind,
            actor_name,
            client_address,
            user_agent,
            details,
            acknowledged_at,
            disputed_at,
            source_event_id,
        } = event;
        let values: [sea_orm::Value; 26] = [
            now.into(),
            new_hash.into(),
            account_id.into(),
            PasswordState::Active.as_str().into(),
            key.into(),
            session_id.into(),
            token_hash.into(),
            created_at.into(),
            last_seen_at.into(),
            expires_at.into(),
            revoked_at.into(),
            revoke_reason.into(),
            session_address.into(),
            session_agent.into(),
            second_factor_used.into(),
            event_id.into(),
            kind.into(),
            occurred_at.into(),
            actor_kind.into(),
            actor_name.into(),
            client_address.into(),
            user_agent.into(),
            details.into(),
            acknowledged_at.into(),
            disputed_at.into(),
            source_event_id.into(),
        ];
        let sql = match backend {
            DbBackend::Postgres => WRITES_POSTGRES,
            _ => WRITES_SQLITE,
        };
        Statement::from_sql_and_values(backend, sql, values)
    }
}

/// Writes `opening` as its own transaction, in one trip: one statement on
/// PostgreSQL, one `BEGIN`…`COMMIT` batch on SQLite. `false` when the
/// password was no longer active and nothing was written.
pub async fn open(db: &DatabaseConnection, opening: Opening<'_>) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let writes = opening.statement(backend);
    Ok(match backend {
        DbBackend::Postgres => db.execute_raw(writes).await?.rows_affected() > 0,
        _ => super::db::sqlite_in_transaction(db, writes).await? > 0,
    })
}

/// Writes `opening` in the caller's transaction; `false` as for [`open`].
pub async fn open_in<C: ConnectionTrait>(txn: &C, opening: Opening<'_>) -> Result<bool, DbErr> {
    let writes = opening.statement(txn.get_database_backend());
    Ok(txn.execute_raw(writes).await?.rows_affected() > 0)
}

/// Marks a login of a 2FA account that passed its password: `updated_at`
/// touched and a rehashed password stored, only while the password is still
/// active. `false` when it no longer is.
pub async fn password_passed<C: ConnectionTrait>(
    txn: &C,
    account_id: uuid::Uuid,
    new_hash: Option<String>,
) -> Result<bool, DbErr> {
    let mut update = account::Entity::update_many()
        .col_expr(
            account::Column::UpdatedAt,
            Expr::col(account::Column::UpdatedAt),
        )
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::PasswordState.eq(PasswordState::Active.as_str()));
    if let Some(hash) = new_hash {
        update = update.col_expr(account::Column::PasswordHash, Expr::value(hash));
    }
    Ok(update.exec(txn).await?.rows_affected == 1)
}
