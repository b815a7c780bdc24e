//! The `login_throttle` rows: one failure count and back-off per login key.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement,
};

use crate::entity::login_throttle;

/// The back-off a failure count earns, as the domain's policy sets it.
pub trait Schedule {
    /// Failures allowed without any delay.
    fn free_failures(&self) -> u32;
    /// Failures after which every attempt is refused until a success.
    fn max_failures(&self) -> u32;
    /// The delay after the `failures`-th consecutive failure, in ms.
    fn delay_ms(&self, failures: u32) -> u64;
}

/// The statement that counts an attempt: `$1` key, `$2` now, `$3` the
/// back-off of a first failure, `$4` the failure limit. It creates the row
/// or adds one to its count and sets the back-off that count earns, but only
/// while the row is neither backed off nor at the limit; it answers a
/// `counted` row when the attempt is counted. The back-off is spelled out as
/// a `CASE` over the counts (the delay stops growing after 21 steps), so both
/// engines compute it alike.
pub fn attempt_sql(schedule: &impl Schedule, backend: DbBackend) -> String {
    let free = schedule.free_failures();
    let last = schedule.max_failures().min(free + 21);
    let mut case = format!("CASE WHEN login_throttle.failures + 1 <= {free} THEN NULL");
    for failures in free + 1..last {
        let delay = schedule.delay_ms(failures);
        case.push_str(&format!(
            " WHEN login_throttle.failures + 1 = {failures} THEN $2 + {delay}"
        ));
    }
    let longest = schedule.delay_ms(last);
    case.push_str(&format!(" ELSE $2 + {longest} END"));
    let sql = format!(
        "INSERT INTO login_throttle (login_key, failures, last_failure_at, backoff_until) \
         VALUES ($1, 1, $2, $3) \
         ON CONFLICT (login_key) DO UPDATE SET \
             failures = login_throttle.failures + 1, \
             last_failure_at = $2, \
             backoff_until = {case} \
         WHERE (login_throttle.backoff_until IS NULL OR login_throttle.backoff_until <= $2) \
           AND login_throttle.failures < $4 \
         RETURNING failures AS counted"
    );
    match backend {
        // `?NNN` is SQLite's numbered parameter.
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql,
    }
}

/// The values of [`attempt_sql`].
pub fn attempt_values(schedule: &impl Schedule, key: &str, now: i64) -> [sea_orm::Value; 4] {
    [
        key.into(),
        now.into(),
        first_backoff_until(schedule, now).into(),
        (schedule.max_failures() as i32).into(),
    ]
}

/// When the back-off of a first failure ends, if it has one.
fn first_backoff_until(schedule: &impl Schedule, now: i64) -> Option<i64> {
    let delay = schedule.delay_ms(1);
    (delay > 0).then(|| now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)))
}

/// Counts one attempt against `key`, in one atomic statement on both
/// engines; `false` when it is refused (backed off or at the limit).
pub async fn count_attempt<C: ConnectionTrait>(
    conn: &C,
    schedule: &impl Schedule,
    key: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let counted = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            attempt_sql(schedule, backend),
            attempt_values(schedule, key, now),
        ))
        .await?;
    Ok(counted.is_some())
}

/// The end of `key`'s back-off, if it has a row with one.
pub async fn backoff_until<C: ConnectionTrait>(conn: &C, key: &str) -> Result<Option<i64>, DbErr> {
    Ok(login_throttle::Entity::find_by_id(key.to_string())
        .one(conn)
        .await?
        .and_then(|row| row.backoff_until))
}

/// The row of `key`, if any.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    key: &str,
) -> Result<Option<login_throttle::Model>, DbErr> {
    login_throttle::Entity::find_by_id(key.to_string())
        .one(conn)
        .await
}

/// Forgets the failures of `key` (a success, a reset or a password change).
pub async fn clear<C: ConnectionTrait>(conn: &C, key: &str) -> Result<(), DbErr> {
    login_throttle::Entity::update_many()
        .col_expr(login_throttle::Column::Failures, Expr::value(0))
        .col_expr(
            login_throttle::Column::BackoffUntil,
            Expr::value(Option::<i64>::None),
        )
        .filter(login_throttle::Column::LoginKey.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}
