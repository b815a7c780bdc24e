//! The `security_events` rows: the journal of each account.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::security_event;

/// Appends `row` to its account's journal.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: security_event::Model) -> Result<(), DbErr> {
    security_event::Entity::insert(security_event::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Filters of the customer's journal.
#[derive(Default)]
pub struct Filter {
    pub kinds: Vec<String>,
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub only_unacknowledged: bool,
}

/// Up to `limit` events of an account matching `filter`, newest first,
/// older than the event `before` when given (ids are time-ordered UUIDv7).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    filter: &Filter,
    limit: u64,
    before: Option<Uuid>,
) -> Result<Vec<security_event::Model>, DbErr> {
    let mut query = security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id))
        .order_by_desc(security_event::Column::Id)
        .limit(limit);
    if !filter.kinds.is_empty() {
        query = query.filter(security_event::Column::Kind.is_in(filter.kinds.clone()));
    }
    if let Some(from) = filter.from_ms {
        query = query.filter(security_event::Column::OccurredAt.gte(from));
    }
    if let Some(until) = filter.until_ms {
        query = query.filter(security_event::Column::OccurredAt.lt(until));
    }
    if filter.only_unacknowledged {
        query = query.filter(security_event::Column::AcknowledgedAt.is_null());
    }
    if let Some(before) = before {
        query = query.filter(security_event::Column::Id.lt(before));
    }
    query.all(conn).await
}

/// How many events of an account are not yet acknowledged, and how many
/// are disputed.
pub async fn unacknowledged_and_disputed<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<(u64, u64), DbErr> {
    let events =
        || security_event::Entity::find().filter(security_event::Column::AccountId.eq(account_id));
    let unacknowledged = events()
        .filter(security_event::Column::AcknowledgedAt.is_null())
        .count(conn)
        .await?;
    let disputed = events()
        .filter(security_event::Column::DisputedAt.is_not_null())
        .count(conn)
        .await?;
    Ok((unacknowledged, disputed))
}

/// Whether an account has an event of `kind` from `address` other than
/// `except`.
pub async fn exists_from<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    kind: &str,
    address: &str,
    except: Uuid,
) -> Result<bool, DbErr> {
    Ok(security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id))
        .filter(security_event::Column::Kind.eq(kind))
        .filter(security_event::Column::ClientAddress.eq(address))
        .filter(security_event::Column::Id.ne(except))
        .one(conn)
        .await?
        .is_some())
}

/// Of `ids`, the events that belong to account `account_id`.
pub async fn of_account_among<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    ids: Vec<Uuid>,
) -> Result<Vec<security_event::Model>, DbErr> {
    security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id))
        .filter(security_event::Column::Id.is_in(ids))
        .all(conn)
        .await
}

pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<security_event::Model>, DbErr> {
    security_event::Entity::find_by_id(id).one(conn).await
}

/// The event a service recorded under its own id `source_event_id`.
pub async fn by_source<C: ConnectionTrait>(
    conn: &C,
    service: &str,
    source_event_id: &str,
) -> Result<Option<security_event::Model>, DbErr> {
    security_event::Entity::find()
        .filter(security_event::Column::ActorName.eq(service))
        .filter(security_event::Column::SourceEventId.eq(source_event_id))
        .one(conn)
        .await
}

/// How many of `ids` are events of account `account_id`.
pub async fn count_of_account_among<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<u64, DbErr> {
    security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id))
        .filter(security_event::Column::Id.is_in(ids))
        .count(conn)
        .await
}

/// Marks the not yet acknowledged events among `ids` of an account seen at
/// `now`; answers how many.
pub async fn acknowledge<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    ids: impl IntoIterator<Item = Uuid>,
    now: i64,
) -> Result<u64, DbErr> {
    Ok(security_event::Entity::update_many()
        .col_expr(security_event::Column::AcknowledgedAt, Expr::value(now))
        .filter(security_event::Column::AccountId.eq(account_id))
        .filter(security_event::Column::Id.is_in(ids))
        .filter(security_event::Column::AcknowledgedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Marks event `id` disputed at `now` unless it already is; `false` when it
/// was.
pub async fn dispute<C: ConnectionTrait>(conn: &C, id: Uuid, now: i64) -> Result<bool, DbErr> {
    Ok(security_event::Entity::update_many()
        .col_expr(security_event::Column::DisputedAt, Expr::value(now))
        .filter(security_event::Column::Id.eq(id))
        .filter(security_event::Column::DisputedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected
        > 0)
}

/// How many events of `kind` an account has had since `since`.
pub async fn count_since<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    kind: &str,
    since: i64,
) -> Result<u64, DbErr> {
    security_event::Entity::find()
        .filter(security_event::Column::AccountId.eq(account_id))
        .filter(security_event::Column::Kind.eq(kind))
        .filter(security_event::Column::OccurredAt.gt(since))
        .count(conn)
        .await
}
