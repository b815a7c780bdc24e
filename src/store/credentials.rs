//! The `credentials` rows: service, agent and security-team bearer secrets
//! (their hashes).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::entity::credential;

/// Inserts a credential; a taken name is the database's unique violation.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: credential::Model) -> Result<(), DbErr> {
    credential::Entity::insert(credential::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Every credential, oldest first.
pub async fn all<C: ConnectionTrait>(conn: &C) -> Result<Vec<credential::Model>, DbErr> {
    credential::Entity::find()
        .order_by_asc(credential::Column::CreatedAt)
        .all(conn)
        .await
}

pub async fn by_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::Name.eq(name))
        .one(conn)
        .await
}

/// The unrevoked credential whose secret hashes to `secret_hash`.
pub async fn live_by_secret_hash<C: ConnectionTrait>(
    conn: &C,
    secret_hash: &str,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::SecretHash.eq(secret_hash))
        .filter(credential::Column::RevokedAt.is_null())
        .one(conn)
        .await
}

/// Marks `row` revoked at `now`; answers the row as updated.
pub async fn revoke<C: ConnectionTrait>(
    conn: &C,
    row: credential::Model,
    now: i64,
    revoked_by: Option<&str>,
) -> Result<credential::Model, DbErr> {
    let mut active: credential::ActiveModel = row.into();
    active.revoked_at = Set(Some(now));
    active.revoked_by = Set(revoked_by.map(str::to_string));
    sea_orm::ActiveModelTrait::update(active, conn).await
}

/// Gives `row` a new secret (and binding), live again from `now`, as
/// created by `created_by`; answers the row as updated.
pub async fn replace_secret<C: ConnectionTrait>(
    conn: &C,
    row: credential::Model,
    secret_hash: String,
    bound_certificate: Option<String>,
    now: i64,
    created_by: Option<&str>,
) -> Result<credential::Model, DbErr> {
    let mut active: credential::ActiveModel = row.into();
    active.secret_hash = Set(secret_hash);
    active.bound_certificate = Set(bound_certificate);
    active.created_at = Set(now);
    active.created_by = Set(created_by.map(str::to_string));
    active.revoked_at = Set(None);
    active.revoked_by = Set(None);
    sea_orm::ActiveModelTrait::update(active, conn).await
}
