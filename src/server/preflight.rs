//! What `serve` checks before it touches the database or the disk, beyond
//! the checks of `Config::load`; `check-config` runs the same. Nothing is
//! written, nothing connects: every refusal names its key.

use std::{path::Path, str::FromStr, sync::Arc};

use sea_orm::sqlx::{postgres::PgConnectOptions, sqlite::SqliteConnectOptions};
use secrecy::ExposeSecret;

use super::{argon2_params, sealer, tls::Tls};
use crate::{
    clock::SystemClock,
    config::{Config, MailTransportKind},
    crypto::secretbox::Sealer,
    domain::password::PasswordPolicy,
    mail::transport::Transport,
    middleware::rate_limit::RateLimiter,
    store::db,
};

/// The TLS files (read and checked as a pair), the sealing keys (an
/// existing key file is read; a missing one must be creatable), the database URL as the driver parses it, the folders serve
/// writes in, the hashing parameters, the rate limiter (the Redis URL) and
/// the mail transport.
pub fn preflight(config: &Config) -> anyhow::Result<()> {
    check_database_url(config)?;
    check_folders(config)?;
    Tls::from_config(&config.tls)?;
    let keys_configured =
        config.totp.encryption_key.is_some() || !config.totp.encryption_keys.is_empty();
    let key_file = config.totp_key_file();
    if keys_configured {
        sealer(config)?;
    } else if key_file.exists() {
        Sealer::load_key_file(&key_file)
            .map_err(|error| anyhow::Error::new(error).context("`totp.key_file`"))?;
    }
    argon2_params(config).validate().map_err(|error| {
        anyhow::anyhow!(
            "`password.argon2_memory_kib` / `argon2_iterations` / `argon2_parallelism`: {error}"
        )
    })?;
    PasswordPolicy::new(config.password.min_chars, config.password.max_chars)
        .map_err(|error| anyhow::anyhow!("`password.min_chars` / `max_chars`: {error}"))?;
    RateLimiter::new(&config.rate_limit, Arc::new(SystemClock))?;
    Transport::from_config(&config.mail, config.mail_dir())
        .map_err(|error| anyhow::anyhow!("`mail.smtp`: {error}"))?;
    Ok(())
}

/// The URL as the driver reads it when it connects: a port that is not a
/// number or an unknown `sslmode` is refused here rather than by `serve`
/// once it has started. The driver's messages never quote the URL.
fn check_database_url(config: &Config) -> anyhow::Result<()> {
    let Some(url) = &config.database_url else {
        return Ok(());
    };
    let url = url.expose_secret();
    let parsed = if db::is_sqlite(url) {
        SqliteConnectOptions::from_str(url).map(drop)
    } else {
        PgConnectOptions::from_str(url).map(drop)
    };
    parsed.map_err(|error| anyhow::anyhow!("`database_url`: {error}"))
}

/// The folders serve creates files in: `data_dir` when something lives
/// there (the SQLite file, the key file, the e-mail folder), the key file's
/// folder when it is created, and the `file` transport's folder. Each must
/// be a folder serve can write in, or one it can create.
fn check_folders(config: &Config) -> anyhow::Result<()> {
    let keys_configured =
        config.totp.encryption_key.is_some() || !config.totp.encryption_keys.is_empty();
    let files = config.mail.transport == MailTransportKind::File;
    let uses_data_dir = config.database_url.is_none()
        || (!keys_configured && config.totp.key_file.is_none())
        || (files && config.mail.dir.is_none());
    if uses_data_dir {
        writable_folder(&config.data_dir).map_err(|why| anyhow::anyhow!("`data_dir`: {why}"))?;
    }
    if let (false, Some(key_file)) = (keys_configured, &config.totp.key_file) {
        if !key_file.exists() {
            let folder = key_file
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            existing_writable_folder(folder)
                .map_err(|why| anyhow::anyhow!("`totp.key_file`: {why}"))?;
        }
    }
    if let (true, Some(dir)) = (files, &config.mail.dir) {
        writable_folder(dir).map_err(|why| anyhow::anyhow!("`mail.dir`: {why}"))?;
    }
    Ok(())
}

/// `path` is a folder this process may create files in, or it does not
/// exist and its nearest existing ancestor is one (so that creating it
/// works).
fn writable_folder(path: &Path) -> Result<(), String> {
    let mut missing = false;
    for ancestor in path.ancestors() {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(ancestor) {
            Ok(_) => {
                return existing_writable_folder(ancestor).map_err(|why| {
                    if missing {
                        format!("cannot create {}: {why}", path.display())
                    } else {
                        why
                    }
                })
            }
            // Missing, or under a file: the ancestor above tells which.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                missing = true
            }
            Err(error) => return Err(format!("{}: {error}", ancestor.display())),
        }
    }
    Err(format!("{}: no existing folder above it", path.display()))
}

/// `path` exists, is a folder, and this process may create files in it.
fn existing_writable_folder(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!("the folder {} does not exist", path.display()),
        _ => format!("{}: {error}", path.display()),
    })?;
    if !metadata.is_dir() {
        return Err(format!("{} is not a folder", path.display()));
    }
    if !db::may_write(path, &metadata) {
        return Err(format!("{} is not writable", path.display()));
    }
    Ok(())
}
