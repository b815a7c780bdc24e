//! Sealing-key rotation: many enrolled accounts whose TOTP secrets are
//! sealed under an old key (some in the format from before key ids) are
//! re-sealed under a new key while the service runs. Every code verifies
//! during and after, `gardien keys status` shows nothing left under the old
//! key, and a SIGKILL of the real binary mid-rotation loses no secret.
//!
//! The accounts are written straight into the database (one argon2 hash
//! shared by all) rather than enrolled one by one through the API, which
//! would take an argon2 verification and two codes per account.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use futures::StreamExt;
use gardien::{
    config::KeyRotationConfig,
    crypto::{
        secretbox::{KeyId, SealedBy, Sealer},
        totp,
    },
    domain::keys,
    entity::account,
};
use rand::RngCore;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use tokio::process::Command;
use uuid::Uuid;

use crate::helpers::*;

/// Enrolled accounts in each test.
const ACCOUNTS: usize = 10_000;

/// A fresh random sealing key (base64), registered so that no log line may
/// show it.
fn new_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let key = STANDARD.encode(key);
    register_secret(&key);
    key
}

fn key_id(key: &str) -> KeyId {
    Sealer::from_base64(key).unwrap().sealing_key()
}

fn ring(keys: &[&str]) -> Sealer {
    Sealer::ring(keys.iter().map(|k| Sealer::from_base64(k).unwrap())).unwrap()
}

/// A value as gardien sealed it before key ids existed: base64 alone.
fn legacy_seal(key: &str, plaintext: &[u8], aad: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ciphertext = Aes256Gcm::new_from_slice(&STANDARD.decode(key).unwrap())
        .unwrap()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap();
    STANDARD.encode([nonce.as_slice(), &ciphertext].concat())
}

struct Seeded {
    id: Uuid,
    login: String,
    secret: Vec<u8>,
}

/// Writes `count` accounts with TOTP enabled into the database: every
/// third secret sealed as before key ids existed, the others under `key`
/// with its id. They log in with `password_hash` when given.
async fn seed(
    db: &DatabaseConnection,
    key: &str,
    count: usize,
    password_hash: Option<String>,
) -> Vec<Seeded> {
    let sealer = Sealer::from_base64(key).unwrap();
    let run = &Uuid::new_v4().simple().to_string()[..6];
    let seeded: Vec<Seeded> = (0..count)
        .map(|i| {
            let mut secret = vec![0u8; 20];
            rand::thread_rng().fill_bytes(&mut secret);
            Seeded {
                id: Uuid::new_v4(),
                login: format!("rot{run}n{i}"),
                secret,
            }
        })
        .collect();
    for chunk in seeded.chunks(250) {
        let rows = chunk.iter().enumerate().map(|(i, s)| {
            let aad = s.id.as_bytes();
            let sealed = if i % 3 == 0 {
                legacy_seal(key, &s.secret, aad)
            } else {
                sealer.seal(&s.secret, aad).unwrap()
            };
            account::ActiveModel {
                id: Set(s.id),
                login: Set(s.login.clone()),
                email: Set(format!("{}@example.com", s.login)),
                locale: Set("en".into()),
                password_hash: Set(password_hash.clone()),
                password_state: Set(if password_hash.is_some() {
                    "active"
                } else {
                    "unset"
                }
                .into()),
                totp_secret: Set(Some(sealed)),
                totp_enabled_at: Set(Some(1)),
                created_at: Set(1),
                updated_at: Set(1),
                ..Default::default()
            }
        });
        account::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    seeded
}

/// How many `accounts.totp_secret` values each key seals.
async fn totp_secrets_by_key(db: &DatabaseConnection) -> BTreeMap<Option<SealedBy>, u64> {
    keys::status(db)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.column == "accounts.totp_secret")
        .unwrap()
        .values
}

fn under(counts: &BTreeMap<Option<SealedBy>, u64>, key: SealedBy) -> u64 {
    counts.get(&Some(key)).copied().unwrap_or(0)
}

/// Every seeded secret is still there and opens under `sealer` to the very
/// bytes seeded.
async fn assert_every_secret_opens(db: &DatabaseConnection, seeded: &[Seeded], sealer: &Sealer) {
    let stored: BTreeMap<Uuid, Option<String>> = account::Entity::find()
        .filter(account::Column::Id.is_in(seeded.iter().map(|s| s.id)))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.totp_secret))
        .collect();
    assert_eq!(stored.len(), seeded.len(), "accounts went missing");
    for s in seeded {
        let sealed = stored[&s.id]
            .as_deref()
            .unwrap_or_else(|| panic!("the secret of {} was lost", s.login));
        let opened = sealer
            .open(sealed, s.id.as_bytes())
            .unwrap_or_else(|e| panic!("the secret of {} does not open: {e}", s.login));
        assert!(opened == s.secret, "the secret of {} changed", s.login);
    }
}

/// The real binary with only this configuration: its own data directory,
/// `database_url` and the sealing keys `keys` (the first seals).
fn gardien(data_dir: &Path, database_url: &str, keys: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gardien"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GARDIEN_") {
            command.env_remove(key);
        }
    }
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    command
        .args(args)
        .env("GARDIEN_DATA_DIR", data_dir)
        .env("GARDIEN_DATABASE_URL", database_url)
        .env("GARDIEN_LISTEN_ADDR", "127.0.0.1:0")
        .env("GARDIEN_LOG_FORMAT", "json")
        .env("GARDIEN_LOG", "info")
        .env("GARDIEN_MAIL__TRANSPORT", "file")
        .env("GARDIEN_RATE_LIMIT__ENABLED", "false")
        .env(
            "GARDIEN_TOTP__ENCRYPTION_KEYS",
            format!("[{}]", keys.join(", ")),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary to its end; returns (stdout, stderr), failing on a
/// non-zero exit.
async fn run_to_end(mut command: Command) -> (String, String) {
    let output = command.output().await.expect("the gardien binary runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "gardien failed:\n{stdout}\n{stderr}"
    );
    if let Some(leak) = find_secret_in(format!("{stdout}\n{stderr}").as_bytes()) {
        panic!("{leak}");
    }
    (stdout, stderr)
}

/// The total of one row (`key` is a key id or `legacy`) of `keys status`.
fn status_total(stdout: &str, key: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no row {key} in:\n{stdout}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Asserts what `keys status` printed: everything under `new`, nothing under
/// `old` nor in the legacy format.
fn assert_status_all_under(stdout: &str, new: &str, old: &str, count: usize) {
    let (new, old) = (key_id(new).to_string(), key_id(old).to_string());
    assert_eq!(status_total(stdout, &new), count as u64, "{stdout}");
    assert_eq!(status_total(stdout, &old), 0, "{stdout}");
    assert_eq!(status_total(stdout, "legacy"), 0, "{stdout}");
    assert!(stdout.contains(&format!("{new:<9} sealing")), "{stdout}");
}

/// Logs `account` in with its password and a fresh TOTP code.
async fn totp_login(app: &TestApp, account: &Seeded) -> Result<(), tonic::Status> {
    let challenge = app.login_challenge(&account.login, STRONG_PASSWORD).await?;
    let code = totp_code(&totp::to_base32(&account.secret), app.clock_now());
    app.verify_totp(&challenge, &code).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_totp_code_verifies_while_the_service_rotates_to_a_new_key() {
    let started = Instant::now();
    let (old, new) = (new_key(), new_key());
    let first = spawn_app_with(|config| {
        config.totp.encryption_keys = vec![old.clone().into()];
        config.key_rotation.online = false;
    })
    .await;
    first
        .create_account("template", "template@example.com", STRONG_PASSWORD)
        .await;
    let hash = account::Entity::find()
        .filter(account::Column::Login.eq("template"))
        .one(&first.ctx.db)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let mut seeded = seed(&first.ctx.db, &old, ACCOUNTS, hash).await;
    seeded.sort_by_key(|s| s.id);
    let seeded = Arc::new(seeded);
    let seeding = started.elapsed();
    first.stop();

    // The new key goes first; the service re-seals in the background, in
    // batches of 200 with a pause, so that logins run during the rotation.
    let app = Arc::new(
        first
            .spawn_second_instance(|config| {
                config.totp.encryption_keys = vec![new.clone().into(), old.clone().into()];
                config.key_rotation = KeyRotationConfig {
                    online: true,
                    batch_size: 200,
                    pause_ms: 25,
                    rescan_secs: 3600,
                };
            })
            .await,
    );
    let (old_id, new_id) = (SealedBy::Key(key_id(&old)), SealedBy::Key(key_id(&new)));

    let rotated = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (db, rotated) = (app.ctx.db.clone(), rotated.clone());
        tokio::spawn(async move {
            let mut mixed_seen = false;
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let counts = totp_secrets_by_key(&db).await;
                let left = under(&counts, old_id) + under(&counts, SealedBy::Legacy);
                mixed_seen |= left > 0 && under(&counts, new_id) > 0;
                if left == 0 {
                    rotated.store(true, Ordering::SeqCst);
                    return mixed_seen;
                }
                assert!(
                    Instant::now() < deadline,
                    "the rotation did not end: {counts:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Logins take accounts from both ends of the id order: the rotation
    // goes by id, so these are secrets still under the old key (or legacy)
    // and secrets already under the new one.
    let next = Arc::new(AtomicUsize::new(0));
    let during: Arc<Mutex<Vec<SealedBy>>> = Default::default();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (app, seeded, next, rotated, during) = (
                app.clone(),
                seeded.clone(),
                next.clone(),
                rotated.clone(),
                during.clone(),
            );
            tokio::spawn(async move {
                while !rotated.load(Ordering::SeqCst) {
                    let account =
                        &seeded[from_both_ends(next.fetch_add(1, Ordering::SeqCst), seeded.len())];
                    let sealed = account::Entity::find_by_id(account.id)
                        .one(&app.ctx.db)
                        .await
                        .unwrap()
                        .unwrap()
                        .totp_secret
                        .unwrap();
                    if let Err(status) = totp_login(&app, account).await {
                        panic!(
                            "{} could not log in during the rotation: {status:?}",
                            account.login
                        );
                    }
                    if !rotated.load(Ordering::SeqCst) {
                        during.lock().unwrap().push(SealedBy::of(&sealed).unwrap());
                    }
                }
            })
        })
        .collect();
    let mixed_seen = monitor.await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let rotation = started.elapsed() - seeding;

    let during = during.lock().unwrap().clone();
    let count = |key| during.iter().filter(|&&k| k == key).count();
    eprintln!(
        "{ACCOUNTS} accounts seeded in {:.1} s, rotated in {:.1} s; {} logins during it \
         ({} legacy, {} old key, {} new key)",
        seeding.as_secs_f64(),
        rotation.as_secs_f64(),
        during.len(),
        count(SealedBy::Legacy),
        count(old_id),
        count(new_id)
    );
    assert!(mixed_seen, "the rotation was never seen half done");
    assert!(
        count(SealedBy::Legacy) > 0 && count(old_id) > 0 && count(new_id) > 0,
        "logins during the rotation did not cover every kind of value"
    );

    // After: every account that logged in, and as many others, again.
    app.clock.advance(Duration::from_secs(30));
    let used = next.load(Ordering::SeqCst).min(seeded.len() / 2);
    let again = (0..used)
        .map(|k| from_both_ends(k, seeded.len()))
        .chain(seeded.len() / 4..seeded.len() / 4 + used);
    futures::stream::iter(again)
        .for_each_concurrent(4, |k| {
            let (app, account) = (&app, &seeded[k]);
            async move {
                if let Err(status) = totp_login(app, account).await {
                    panic!(
                        "{} could not log in after the rotation: {status:?}",
                        account.login
                    );
                }
            }
        })
        .await;

    // Nothing is left under the old key: it can go.
    let dir = tempfile::tempdir().unwrap();
    let url = app.ctx.config.effective_database_url();
    let (stdout, _) = run_to_end(gardien(
        dir.path(),
        url.expose_secret(),
        &[&new, &old],
        &["keys", "status"],
    ))
    .await;
    assert_status_all_under(&stdout, &new, &old, ACCOUNTS);
    assert_every_secret_opens(&app.ctx.db, &seeded, &ring(&[&new])).await;
    assert!(captured_logs().contains("key rotation: progress"));
}

/// The `k`-th index taken alternately from the end and from the start.
fn from_both_ends(k: usize, len: usize) -> usize {
    if k % 2 == 0 {
        len - 1 - k / 2
    } else {
        k / 2
    }
}

/// Polls until at least `count` secrets are under `key`; panics after 60 s.
async fn wait_until_under(db: &DatabaseConnection, key: SealedBy, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while under(&totp_secrets_by_key(db).await, key) < count {
        assert!(Instant::now() < deadline, "the rotation made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_in_the_middle_of_a_rotation_loses_no_secret() {
    let (old, new) = (new_key(), new_key());
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_url().await.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("gardien.db").display()
        )
    });
    run_to_end(gardien(dir.path(), &url, &[&old], &["migrate"])).await;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let seeded = seed(&db, &old, ACCOUNTS, None).await;
    let both = ring(&[&new, &old]);
    let new_id = SealedBy::Key(key_id(&new));
    let left = |counts: &BTreeMap<Option<SealedBy>, u64>| {
        under(counts, SealedBy::Key(key_id(&old))) + under(counts, SealedBy::Legacy)
    };

    // `gardien keys rotate`, killed once a few batches are in.
    let mut rotate = gardien(
        dir.path(),
        &url,
        &[&new, &old],
        &["keys", "rotate", "--batch-size", "50", "--pause-ms", "20"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_until_under(&db, new_id, 500).await;
    rotate.kill().await.unwrap();
    let counts = totp_secrets_by_key(&db).await;
    assert!(left(&counts) > 0, "the rotation ended before the kill");
    assert_every_secret_opens(&db, &seeded, &both).await;
    let after_cli = under(&counts, new_id);

    // `gardien serve` and its background rotation, killed the same way.
    let mut serve = gardien(dir.path(), &url, &[&new, &old], &["serve"]);
    serve
        .env("GARDIEN_KEY_ROTATION__BATCH_SIZE", "50")
        .env("GARDIEN_KEY_ROTATION__PAUSE_MS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut serve = serve.spawn().unwrap();
    wait_until_under(&db, new_id, after_cli + 500).await;
    serve.kill().await.unwrap();
    let counts = totp_secrets_by_key(&db).await;
    assert!(left(&counts) > 0, "the rotation ended before the kill");
    assert_every_secret_opens(&db, &seeded, &both).await;
    eprintln!(
        "killed `keys rotate` with {after_cli} and `serve` with {} of {ACCOUNTS} secrets re-sealed; none lost",
        under(&counts, new_id)
    );

    // A last run finishes; the old key is then no longer needed.
    let (stdout, stderr) = run_to_end(gardien(
        dir.path(),
        &url,
        &[&new, &old],
        &["keys", "rotate"],
    ))
    .await;
    assert_status_all_under(&stdout, &new, &old, ACCOUNTS);
    assert!(stderr.contains("key rotation: progress"), "{stderr}");
    let (stdout, _) = run_to_end(gardien(
        dir.path(),
        &url,
        &[&new, &old],
        &["keys", "status"],
    ))
    .await;
    assert_status_all_under(&stdout, &new, &old, ACCOUNTS);
    assert_every_secret_opens(&db, &seeded, &ring(&[&new])).await;
}
