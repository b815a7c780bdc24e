//! `gardien keys status|rotate|generate`: what each sealing key still
//! seals, re-sealing under the newest key, and new keys.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use rand::{rngs::OsRng, RngCore};
use tokio_util::sync::CancellationToken;

use super::KeysCommand;
use crate::{
    config::Config,
    crypto::secretbox::{SealedBy, Sealer, KEY_LEN},
    domain::keys::{self, ColumnStatus, Pace},
    server,
    store::db,
};

pub(super) async fn run(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::Generate = command {
        return generate();
    }
    let sealer = server::sealer(&config)?;
    let db = db::connect(&config).await?;
    db::migrate(&db).await?;
    match command {
        KeysCommand::Generate | KeysCommand::Status => {
            print_status(&sealer, &keys::status(&db).await?);
            Ok(())
        }
        KeysCommand::Rotate {
            batch_size,
            pause_ms,
        } => {
            let mut pace = Pace::from(&config.key_rotation);
            pace.batch_size = batch_size.unwrap_or(pace.batch_size);
            pace.pause = pause_ms.map_or(pace.pause, Duration::from_millis);
            let stop = CancellationToken::new();
            let interrupt = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    interrupt.cancel();
                }
            });
            let done = keys::rotate(&db, &sealer, pace, &stop).await?;
            eprintln!(
                "re-sealed {} value(s) under key {}; {} changed by the service meanwhile; \
                 {} open under no configured key",
                done.resealed,
                sealer.sealing_key(),
                done.changed_meanwhile,
                done.unopenable
            );
            print_status(&sealer, &keys::status(&db).await?);
            anyhow::ensure!(!stop.is_cancelled(), "interrupted before the end");
            anyhow::ensure!(
                done.unopenable == 0,
                "{} value(s) open under no configured key (see the log): they were left as they are",
                done.unopenable
            );
            Ok(())
        }
    }
}

/// A new key on stdout, alone, for `totp.encryption_keys`.
fn generate() -> anyhow::Result<()> {
    let mut key = [0u8; KEY_LEN];
    OsRng.fill_bytes(&mut key);
    let id = Sealer::from_key(&key)?.sealing_key();
    eprintln!("a new sealing key, id {id}; put it first in totp.encryption_keys:");
    println!("{}", STANDARD.encode(key));
    Ok(())
}

/// One line per key (configured keys first, the sealing one on top), with
/// its role, its total and its count in each sealed column.
fn print_status(sealer: &Sealer, columns: &[ColumnStatus]) {
    let mut rows: Vec<Option<SealedBy>> = sealer
        .key_ids()
        .into_iter()
        .map(|id| Some(SealedBy::Key(id)))
        .collect();
    rows.push(Some(SealedBy::Legacy));
    for column in columns {
        for key in column.values.keys() {
            if !rows.contains(key) {
                rows.push(*key);
            }
        }
    }
    let mut header = format!("{:<9} {:<9} {:>9}", "key", "role", "total");
    for column in columns {
        header.push_str(&format!("  {}", column.column));
    }
    println!("{header}");
    let mut outstanding = 0;
    for key in rows {
        let (name, role) = match key {
            Some(SealedBy::Key(id)) if id == sealer.sealing_key() => (id.to_string(), "sealing"),
            Some(SealedBy::Key(id)) if sealer.key_ids().contains(&id) => {
                (id.to_string(), "opening")
            }
            // Values under a key that is not configured cannot be opened.
            Some(SealedBy::Key(id)) => (id.to_string(), "missing"),
            Some(SealedBy::Legacy) => ("legacy".to_string(), "opening"),
            None => ("malformed".to_string(), "-"),
        };
        let counts: Vec<u64> = columns
            .iter()
            .map(|c| c.values.get(&key).copied().unwrap_or(0))
            .collect();
        let total: u64 = counts.iter().sum();
        if role != "sealing" {
            outstanding += total;
        }
        let mut line = format!("{name:<9} {role:<9} {total:>9}");
        for (count, column) in counts.iter().zip(columns) {
            line.push_str(&format!("  {count:>width$}", width = column.column.len()));
        }
        println!("{line}");
    }
    if outstanding == 0 {
        eprintln!(
            "every sealed value is under the sealing key {}",
            sealer.sealing_key()
        );
    } else {
        eprintln!(
            "{outstanding} value(s) not under the sealing key {}: `gardien keys rotate` \
             re-seals them (so does `serve` with key_rotation.online)",
            sealer.sealing_key()
        );
    }
}
