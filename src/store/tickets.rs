//! The `tickets` rows and their `ticket_messages`.

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::{ticket, ticket_message};

/// How many verified tickets of an account are neither resolved nor closed.
pub async fn open_of_account<C: ConnectionTrait>(conn: &C, account_id: Uuid) -> Result<u64, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .filter(ticket::Column::Unverified.eq(false))
        .filter(ticket::Column::Status.is_not_in(["resolved", "closed"]))
        .count(conn)
        .await
}

/// The last `limit` tickets of an account, newest first.
pub async fn recent_of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    limit: u64,
) -> Result<Vec<ticket::Model>, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .order_by_desc(ticket::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn by_id<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<ticket::Model>, DbErr> {
    ticket::Entity::find_by_id(id).one(conn).await
}

/// Inserts a ticket; a client request id the account already used is the
/// database's unique violation, for the caller to tell.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: ticket::Model) -> Result<(), DbErr> {
    ticket::Entity::insert(ticket::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The ticket an account opened under its own request id `request_id`
/// (so that a retried creation answers the first one).
pub async fn by_request_id<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    request_id: &str,
) -> Result<Option<ticket::Model>, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .filter(ticket::Column::ClientRequestId.eq(request_id))
        .one(conn)
        .await
}

/// Appends a message to its ticket (the ticket's counts are the caller's).
pub async fn insert_message<C: ConnectionTrait>(
    conn: &C,
    row: ticket_message::Model,
) -> Result<(), DbErr> {
    ticket_message::Entity::insert(ticket_message::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Up to `limit` messages of a ticket, oldest first, after the message
/// `after` when given; internal notes only with `with_internal`.
pub async fn messages<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Uuid,
    with_internal: bool,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<ticket_message::Model>, DbErr> {
    let mut query = ticket_message::Entity::find()
        .filter(ticket_message::Column::TicketId.eq(ticket_id))
        .order_by_asc(ticket_message::Column::Id)
        .limit(limit);
    if !with_internal {
        query = query.filter(ticket_message::Column::InternalNote.eq(false));
    }
    if let Some(after) = after {
        query = query.filter(ticket_message::Column::Id.gt(after));
    }
    query.all(conn).await
}

/// Up to `limit` verified tickets of an account, newest first, older than
/// the ticket `before` when given; of the `statuses` only, unless empty.
pub async fn of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    statuses: &[&str],
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<ticket::Model>, DbErr> {
    let mut query = ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .filter(ticket::Column::Unverified.eq(false))
        .order_by_desc(ticket::Column::Id)
        .limit(limit);
    if !statuses.is_empty() {
        query = query.filter(ticket::Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some(before) = before {
        query = query.filter(ticket::Column::Id.lt(before));
    }
    query.all(conn).await
}

/// Filters of the agents' queue; an empty list or `None` filters nothing.
pub struct Queue<'a> {
    pub statuses: Vec<&'a str>,
    pub excluded_statuses: Vec<&'a str>,
    pub categories: Vec<&'a str>,
    pub assignee: Option<&'a str>,
    pub unassigned_only: bool,
    pub unverified_only: bool,
    pub reference: Option<&'a str>,
}

/// Up to `limit` tickets matching `filter`, oldest first, after the ticket
/// `after` when given.
pub async fn queue<C: ConnectionTrait>(
    conn: &C,
    filter: &Queue<'_>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<ticket::Model>, DbErr> {
    let mut query = ticket::Entity::find()
        .order_by_asc(ticket::Column::Id)
        .limit(limit);
    if !filter.excluded_statuses.is_empty() {
        query = query
            .filter(ticket::Column::Status.is_not_in(filter.excluded_statuses.iter().copied()));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(ticket::Column::Status.is_in(filter.statuses.iter().copied()));
    }
    if !filter.categories.is_empty() {
        query = query.filter(ticket::Column::Category.is_in(filter.categories.iter().copied()));
    }
    if let Some(assignee) = filter.assignee {
        query = query.filter(ticket::Column::Assignee.eq(assignee));
    }
    if filter.unassigned_only {
        query = query.filter(ticket::Column::Assignee.is_null());
    }
    if filter.unverified_only {
        query = query.filter(ticket::Column::Unverified.eq(true));
    }
    if let Some(reference) = filter.reference {
        query = query.filter(ticket::Column::Reference.eq(reference));
    }
    if let Some(after) = after {
        query = query.filter(ticket::Column::Id.gt(after));
    }
    query.all(conn).await
}

/// Counts a new message on ticket `id` (`public` when customers see it) and
/// sets its status, only while it is not closed and has fewer than
/// `max_messages`; `false` when it was not counted.
pub async fn count_message<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    public: bool,
    status: &str,
    max_messages: i32,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(ticket::Entity::update_many()
        .col_expr(
            ticket::Column::MessageCount,
            Expr::col(ticket::Column::MessageCount).add(1),
        )
        .col_expr(
            ticket::Column::PublicMessageCount,
            Expr::col(ticket::Column::PublicMessageCount).add(i32::from(public)),
        )
        .col_expr(ticket::Column::Status, Expr::value(status))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
        .filter(ticket::Column::Id.eq(id))
        .filter(ticket::Column::MessageCount.lt(max_messages))
        .filter(ticket::Column::Status.ne("closed"))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Counts a system message customers see on ticket `id`, whatever its
/// status and count.
pub async fn count_system_message<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: i64,
) -> Result<(), DbErr> {
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::MessageCount,
            Expr::col(ticket::Column::MessageCount).add(1),
        )
        .col_expr(
            ticket::Column::PublicMessageCount,
            Expr::col(ticket::Column::PublicMessageCount).add(1),
        )
        .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
        .filter(ticket::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Closes ticket `id` unless it already is; `false` when it was.
pub async fn close<C: ConnectionTrait>(conn: &C, id: Uuid, now: i64) -> Result<bool, DbErr> {
    Ok(ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value("closed"))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
        .filter(ticket::Column::Id.eq(id))
        .filter(ticket::Column::Status.ne("closed"))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Gives ticket `id` to `assignee` unless it is closed; `false` when it is
/// (or does not exist).
pub async fn assign<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    assignee: &str,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(ticket::Entity::update_many()
        .col_expr(ticket::Column::Assignee, Expr::value(assignee))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
        .filter(ticket::Column::Id.eq(id))
        .filter(ticket::Column::Status.ne("closed"))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Sets the status of ticket `id` to `to` only while it is `from`; `false`
/// when it changed meanwhile.
pub async fn set_status<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(to))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
        .filter(ticket::Column::Id.eq(id))
        .filter(ticket::Column::Status.eq(from))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}
