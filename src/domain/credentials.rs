//! Credentials of internal services, support agents and the security team.
//! The secret is shown once at creation; only its SHA-256 is stored.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    error::{Error, FieldViolation, Result},
    principal::{Principal, Role},
};
use crate::{
    crypto::token::{self, TokenKind},
    entity::credential,
};

/// A credential name: 1–64 of `a-z 0-9 . _ -`.
pub fn parse_name(raw: &str) -> Result<String, FieldViolation> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(FieldViolation::new("name", "must have 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(FieldViolation::new(
            "name",
            "may contain only letters a-z, digits, '.', '_' and '-'",
        ));
    }
    Ok(name.to_string())
}

/// Creates a credential and returns it with its secret, which is never
/// stored nor shown again.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    name: &str,
    role: Role,
) -> Result<(credential::Model, SecretString)> {
    let name = parse_name(name).map_err(|v| Error::InvalidArgument(vec![v]))?;
    if !matches!(role, Role::Service | Role::Agent | Role::Security) {
        return Err(Error::invalid("role", "must be service, agent or security"));
    }
    let secret = token::generate(TokenKind::Credential);
    let model = credential::Model {
        id: Uuid::now_v7(),
        name,
        role: role.as_str().to_string(),
        secret_hash: token::hash_secret(&secret),
        created_at: now,
        revoked_at: None,
    };
    let active: credential::ActiveModel = model.clone().into();
    credential::Entity::insert(active)
        .exec_without_returning(conn)
        .await
        .map_err(|error| match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::AlreadyExists {
                what: "credential",
                field: "name".into(),
            },
            _ => error.into(),
        })?;
    Ok((model, secret))
}

pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<credential::Model>> {
    Ok(credential::Entity::find()
        .order_by_asc(credential::Column::CreatedAt)
        .all(conn)
        .await?)
}

/// Revokes by name; the very next call with the secret is refused.
pub async fn revoke<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    name: &str,
) -> Result<credential::Model> {
    let found = credential::Entity::find()
        .filter(credential::Column::Name.eq(name))
        .one(conn)
        .await?
        .ok_or(Error::NotFound("credential"))?;
    if found.revoked_at.is_some() {
        return Ok(found);
    }
    let mut active: credential::ActiveModel = found.into();
    active.revoked_at = Set(Some(now));
    Ok(sea_orm::ActiveModelTrait::update(active, conn).await?)
}

/// The principal of a presented credential secret, if it is live.
pub async fn authenticate<C: ConnectionTrait>(conn: &C, secret: &str) -> Result<Option<Principal>> {
    if !token::well_formed(TokenKind::Credential, secret) {
        return Ok(None);
    }
    let found = credential::Entity::find()
        .filter(credential::Column::SecretHash.eq(token::hash(secret)))
        .filter(credential::Column::RevokedAt.is_null())
        .one(conn)
        .await?;
    Ok(found.and_then(|c| {
        Role::parse(&c.role).map(|role| Principal::Credential {
            id: c.id,
            name: c.name,
            role,
        })
    }))
}
