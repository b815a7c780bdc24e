//! Secrets at rest. A link gardien e-mails (password reset, "this wasn't
//! me", e-mail confirmation) must never be written to the database in
//! clear: clearing the body once sent does not erase it from SQLite's WAL
//! and freed pages, nor from PostgreSQL's dead tuples, WAL and backups, and
//! whoever reads a copy of those files would take over every account with
//! a pending link.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use gardien::{
    crypto::token::{TokenKind, TOKEN_LEN},
    entity::outbox,
    proto::accountsecurity::v1 as pb,
};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use secrecy::ExposeSecret;

use crate::helpers::*;

const ACCOUNTS: usize = 4;
/// Bytes of a token matched at a time: short enough to find a token that
/// PostgreSQL compressed (pglz keeps runs of 8 literal bytes), long enough
/// (48 random bits) that nothing else matches by chance.
const WINDOW: usize = 8;

/// Attack: copy the database files (or a backup) after a run of resets,
/// login reminders, e-mail changes and security notices, and carve the
/// mailed links out of them with `grep -a`.
#[tokio::test]
pub async fn mailed_links_cannot_be_carved_from_the_database_files() {
    let app = spawn_app().await;
    let wal_start = wal_segment(&app).await;

    for n in 0..ACCOUNTS {
        mail_every_kind_of_link(&app, n).await;
    }
    let rows = wait_until_every_mail_is_sent(&app, ACCOUNTS * 6).await;
    assert!(rows.iter().all(|row| row.secret_sealed.is_none()
        && row.body_text.is_empty()
        && row.body_html.is_none()));

    let mut tokens = Vec::new();
    for n in 0..ACCOUNTS {
        for recipient in [old_address(n), new_address(n)] {
            for mail in app.mails_to(&recipient) {
                tokens.extend(tokens_in(&mail));
            }
        }
    }
    tokens.sort();
    tokens.dedup();
    let count = |prefix: &str| tokens.iter().filter(|t| t.starts_with(prefix)).count();
    assert_eq!(count("gdr_"), 2 * ACCOUNTS, "reset links mailed");
    assert_eq!(count("gdx_"), 2 * ACCOUNTS, "report links mailed");
    assert_eq!(count("gde_"), ACCOUNTS, "confirmation links mailed");

    let files = database_files(&app, wal_start).await;
    assert!(!files.is_empty());
    let carved = carve(&tokens, &files);
    assert!(
        carved.is_empty(),
        "{} of the {} mailed links can be carved from the database files: {carved:?}",
        carved.len(),
        tokens.len()
    );
}

fn old_address(n: usize) -> String {
    format!("atrest{n}@example.fr")
}

fn new_address(n: usize) -> String {
    format!("atrest{n}.new@example.org")
}

/// Six e-mails to account `n`: a reset link (used), its password-changed
/// notice, a second reset link (left live), a login reminder, the notice of
/// an e-mail change to the old address and its confirmation link to the new.
async fn mail_every_kind_of_link(app: &TestApp, n: usize) {
    let login = format!("atrest{n}");
    let email = old_address(n);
    app.create_account(&login, &email, STRONG_PASSWORD).await;
    app.reset_password_by_email(&login, &email, NEW_PASSWORD)
        .await;
    app.wait_for_mails(&email, 2).await;
    app.request_reset(&login).await;
    app.wait_for_mails(&email, 3).await;
    app.client()
        .await
        .recover_login(pb::RecoverLoginRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    app.wait_for_mails(&email, 4).await;
    let session = app.login(&login, NEW_PASSWORD).await.unwrap();
    app.client()
        .await
        .update_contact_details(authed(
            &session.session_token,
            pb::UpdateContactDetailsRequest {
                email: new_address(n),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
                current_password: NEW_PASSWORD.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    app.wait_for_mails(&email, 5).await;
    app.wait_for_mails(&new_address(n), 1).await;
}

/// Waits (bounded) until the outbox holds at least `count` rows, all sent.
async fn wait_until_every_mail_is_sent(app: &TestApp, count: usize) -> Vec<outbox::Model> {
    for _ in 0..300 {
        let rows = outbox::Entity::find().all(&app.ctx.db).await.unwrap();
        if rows.len() >= count && rows.iter().all(|row| row.status == "sent") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outbox did not send every e-mail");
}

/// Every link token (`gd?_` and 43 base64url characters) in `text`.
fn tokens_in(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("token=gd") {
        let start = from + found + "token=".len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        from = start;
        if token.len() == TOKEN_LEN && TokenKind::of(&token).is_some() {
            tokens.push(token);
        }
    }
    tokens
}

/// The raw bytes a copy of the database would hold, by name. SQLite: every
/// file of the data directory (database, `-wal`, `-shm`) but the mail
/// folder. PostgreSQL: a `pg_dump`, the WAL segments written since
/// `wal_start`, and after a `CHECKPOINT` every relation file of the test
/// database (tables, TOAST, indexes), read without vacuuming.
async fn database_files(app: &TestApp, wal_start: Option<String>) -> Vec<(String, Vec<u8>)> {
    let config = &app.ctx.config;
    let Some(wal_start) = wal_start else {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&config.data_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(read(&path));
            }
        }
        assert!(files.iter().any(|(name, _)| name.ends_with("gardien.db")));
        return files;
    };
    let db = &app.ctx.db;
    let data_directory = PathBuf::from(query_string(db, "SHOW data_directory").await);
    let wal_end = query_string(db, "SELECT pg_walfile_name(pg_current_wal_lsn())").await;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(data_directory.join("pg_wal")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.len() == 24 && name >= wal_start && name <= wal_end {
            files.push(read(&path));
        }
    }
    assert!(
        !files.is_empty(),
        "no WAL segment from {wal_start} to {wal_end}"
    );

    let url = config.effective_database_url();
    let dump = std::process::Command::new("pg_dump")
        .arg(url.expose_secret())
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump failed");
    assert!(String::from_utf8_lossy(&dump.stdout).contains("COPY public.outbox"));
    files.push(("pg_dump".into(), dump.stdout));

    db.execute_unprepared("CHECKPOINT").await.unwrap();
    let oid = query_string(
        db,
        "SELECT oid::text FROM pg_database WHERE datname = current_database()",
    )
    .await;
    let outbox_file = query_string(db, "SELECT pg_relation_filepath('outbox')").await;
    let base = data_directory.join("base").join(oid);
    assert!(data_directory.join(&outbox_file).starts_with(&base));
    for entry in std::fs::read_dir(&base).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(read(&path));
        }
    }
    assert!(files
        .iter()
        .any(|(name, _)| *name == data_directory.join(&outbox_file).display().to_string()));
    files
}

/// PostgreSQL: the WAL segment being written now; `None` on SQLite.
async fn wal_segment(app: &TestApp) -> Option<String> {
    let db = &app.ctx.db;
    (db.get_database_backend() == DbBackend::Postgres).then_some(())?;
    Some(query_string(db, "SELECT pg_walfile_name(pg_current_wal_lsn())").await)
}

async fn query_string(db: &sea_orm::DatabaseConnection, sql: &str) -> String {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

fn read(path: &Path) -> (String, Vec<u8>) {
    (path.display().to_string(), std::fs::read(path).unwrap())
}

/// For each token found in `files` (any `WINDOW` bytes of its random part),
/// its kind and the file; never the token itself.
fn carve(tokens: &[String], files: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let mut windows: HashMap<&[u8], usize> = HashMap::new();
    for (index, token) in tokens.iter().enumerate() {
        for window in token.as_bytes()[4..].windows(WINDOW) {
            windows.insert(window, index);
        }
    }
    let mut found = vec![None; tokens.len()];
    for (name, bytes) in files {
        for window in bytes.windows(WINDOW) {
            if let Some(&index) = windows.get(window) {
                found[index].get_or_insert_with(|| name.clone());
            }
        }
    }
    found
        .into_iter()
        .enumerate()
        .filter_map(|(index, file)| Some((tokens[index][..4].to_string(), file?)))
        .collect()
}

/// What gardien creates on disk is its user's alone, whatever the umask:
/// the mail folder's messages hold reset links, the SQLite file every
/// account (they were 0644 in 0755 folders).
#[cfg(unix)]
#[tokio::test]
async fn the_files_gardien_creates_are_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let app =
        spawn_app_with(|config| config.data_dir = config.data_dir.join("made-by-gardien")).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let data_dir = app.ctx.config.data_dir.clone();
    assert_eq!(mode(&data_dir), 0o700, "{}", data_dir.display());
    assert_eq!(mode(&app.mail_dir), 0o700, "{}", app.mail_dir.display());
    let mails: Vec<PathBuf> = std::fs::read_dir(&app.mail_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!mails.is_empty());
    for mail in &mails {
        assert_eq!(mode(mail), 0o600, "{}", mail.display());
    }
    if app.ctx.config.database_url.is_none() {
        for name in ["gardien.db", "gardien.db-wal", "gardien.db-shm"] {
            let file = data_dir.join(name);
            if file.exists() {
                assert_eq!(mode(&file), 0o600, "{}", file.display());
            }
        }
        assert!(data_dir.join("gardien.db").exists());
    }
}
