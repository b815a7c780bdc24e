//! `gardien-bench <scenario>|all`: see `BENCHMARKS.md`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use gardien_bench::{self as bench, Options, SCENARIOS};

/// mimalloc: the request path allocates many small, short-lived objects
/// across the runtime's threads, where glibc's allocator spent about a fifth
/// of an introspection's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "gardien's benchmark: scenarios as ratios to this machine's ceilings")]
struct Args {
    /// login, introspect, isolation, reset-burst, flood-memory, flood-limited,
    /// mixed, passkey-login, or all.
    #[arg(default_value = "all")]
    scenario: Vec<String>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    #[arg(long, default_value_t = 500)]
    flood_connections: usize,
    /// `Login` calls from one address in the `flood-limited` scenario.
    #[arg(long, default_value_t = 5_000)]
    limited_flood_calls: u64,
    /// `postgres://…`; the embedded SQLite otherwise.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    json: Option<PathBuf>,
    /// The server under test and the echo baseline speak TLS (a CA and a
    /// certificate made for the run).
    #[arg(long)]
    tls: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scenarios = if args.scenario.iter().any(|s| s == "all") {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenario
    };
    let options = Options {
        scenarios,
        duration: Duration::from_secs_f64(args.duration),
        concurrency: args.concurrency,
        connections: args.connections,
        accounts: args.accounts,
        flood_connections: args.flood_connections,
        limited_flood_calls: args.limited_flood_calls,
        database_url: args.database_url,
        json: args.json,
        tls: if args.tls {
            Some(bench::TlsMaterial::generate()?)
        } else {
            None
        },
    };
    let report = bench::run(&options).await?;
    print!("{}", report.table());
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if report.unexpected_errors() > 0 {
        anyhow::bail!("{} unexpected errors", report.unexpected_errors());
    }
    Ok(())
}
