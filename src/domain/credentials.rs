//! Credentials of internal services, support agents and the security team.
//! The secret is shown once at creation; only its SHA-256 is stored.

use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    auth_cache,
    deps::{Db, LiveCache},
    error::{Error, FieldViolation, Result},
    principal::{Principal, Role},
};
use crate::{
    crypto::token::{self, TokenKind},
    entity::credential,
    store,
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
    create_bound(conn, now, name, role, None, None).await
}

/// A certificate identity a credential can be bound to, in the form the
/// binding is stored and compared in: a URI (`spiffe://…`), matched against
/// the certificate's URI names exactly; `dns:NAME`, matched against its DNS
/// names without regard to case; or `cn:NAME`, matched against its subject
/// common name when it has exactly one. The kind is explicit, so that a URI
/// binding is never met by a common name or a DNS name spelling the URI.
pub fn parse_certificate_identity(raw: &str) -> Result<String, FieldViolation> {
    let bad = |why: &str| Err(FieldViolation::new("bind_certificate", why));
    let identity = raw.trim();
    if identity.is_empty() || identity.len() > 2048 {
        return bad("must have 1 to 2048 characters");
    }
    if identity
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return bad("must not contain spaces or control characters");
    }
    if let Some(name) = identity.strip_prefix("dns:") {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return bad("dns: must be followed by a DNS name (no wildcard)");
        }
        return Ok(format!("dns:{name}"));
    }
    if let Some(name) = identity.strip_prefix("cn:") {
        if name.is_empty() {
            return bad("cn: must be followed by the subject's common name");
        }
        return Ok(identity.to_string());
    }
    match identity.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            Ok(identity.to_string())
        }
        _ => bad("must be a URI (spiffe://…), dns:NAME or cn:NAME"),
    }
}

/// [`create`], the credential bound to a client certificate identity when
/// `bound_certificate` is given: without that certificate it is refused.
/// `created_by` names the operator who asked for it, kept on the row.
pub async fn create_bound<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    name: &str,
    role: Role,
    bound_certificate: Option<&str>,
    created_by: Option<&str>,
) -> Result<(credential::Model, SecretString)> {
    let name = parse_name(name).map_err(|v| Error::InvalidArgument(vec![v]))?;
    let bound_certificate = bound_certificate
        .map(parse_certificate_identity)
        .transpose()
        .map_err(|v| Error::InvalidArgument(vec![v]))?;
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
        bound_certificate,
        created_by: created_by.map(str::to_string),
        revoked_by: None,
    };
    store::credentials::insert(conn, model.clone())
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

/// [`create_bound`]; when a credential of that name exists, `AlreadyExists`,
/// or with `replace` a new secret for it if it is live: the old secret is
/// refused from the next call on, on every instance. The role must be the
/// existing one's; a revoked credential is refused (it stays revoked, with
/// who revoked it). Answers whether it replaced one.
pub async fn create_or_replace(
    conn: &sea_orm::DatabaseConnection,
    now: i64,
    name: &str,
    role: Role,
    bound_certificate: Option<&str>,
    created_by: Option<&str>,
    replace: bool,
) -> Result<(credential::Model, SecretString, bool)> {
    let txn = crate::store::db::begin_write(conn).await?;
    let parsed = parse_name(name).map_err(|v| Error::InvalidArgument(vec![v]))?;
    let existing = match store::credentials::by_name(&txn, &parsed).await? {
        Some(existing) if replace => existing,
        _ => {
            let (created, secret) =
                create_bound(&txn, now, name, role, bound_certificate, created_by).await?;
            txn.commit().await?;
            return Ok((created, secret, false));
        }
    };
    if existing.revoked_at.is_some() {
        return Err(Error::InvalidStateTransition(format!(
            "the credential {:?} was revoked (by {}); a revoked credential is not brought \
             back: create one under another name",
            existing.name,
            existing.revoked_by.as_deref().unwrap_or("-")
        )));
    }
    if existing.role != role.as_str() {
        return Err(Error::invalid(
            "role",
            format!(
                "the credential {:?} has the role {}; a replacement keeps it",
                existing.name, existing.role
            ),
        ));
    }
    let bound_certificate = bound_certificate
        .map(parse_certificate_identity)
        .transpose()
        .map_err(|v| Error::InvalidArgument(vec![v]))?;
    let secret = token::generate(TokenKind::Credential);
    let replaced = store::credentials::replace_secret(
        &txn,
        existing,
        token::hash_secret(&secret),
        bound_certificate,
        now,
        created_by,
    )
    .await?;
    auth_cache::bump(&txn).await?;
    txn.commit().await?;
    Ok((replaced, secret, true))
}

pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<credential::Model>> {
    Ok(store::credentials::all(conn).await?)
}

/// Revokes by name; the very next call with the secret is refused, on every
/// instance (the revocation clock moves in the same transaction).
/// `revoked_by` names the operator, kept on the row.
pub async fn revoke(
    conn: &sea_orm::DatabaseConnection,
    now: i64,
    name: &str,
    revoked_by: Option<&str>,
) -> Result<credential::Model> {
    let txn = crate::store::db::begin_write(conn).await?;
    let found = store::credentials::by_name(&txn, name)
        .await?
        .ok_or(Error::NotFound("credential"))?;
    if found.revoked_at.is_some() {
        return Ok(found);
    }
    let revoked = store::credentials::revoke(&txn, found, now, revoked_by).await?;
    auth_cache::bump(&txn).await?;
    txn.commit().await?;
    Ok(revoked)
}

/// The principal of a presented credential secret, if it is live: from the
/// cache when the revocation clock allows (see `auth_cache`).
pub async fn authenticate(ctx: &(impl Db + LiveCache), secret: &str) -> Result<Option<Principal>> {
    if !token::well_formed(TokenKind::Credential, secret) {
        return Ok(None);
    }
    let hash = token::hash(secret);
    let generation = ctx.auth_cache().generation().await;
    if let Some(principal) = generation.and_then(|g| ctx.auth_cache().credential(&hash, g)) {
        return Ok(Some(principal));
    }
    let found = store::credentials::live_by_secret_hash(ctx.db(), &hash).await?;
    let principal = found.and_then(|c| {
        Role::parse(&c.role).map(|role| Principal::Credential {
            id: c.id,
            name: c.name,
            role,
            bound_certificate: c.bound_certificate,
        })
    });
    if let (Some(generation), Some(principal)) = (generation, &principal) {
        ctx.auth_cache()
            .keep_credential(&hash, generation, principal.clone());
    }
    Ok(principal)
}
