//! `gardien-bench`: the project's own benchmark. It starts an in-process
//! server (embedded SQLite by default, or a PostgreSQL URL), seeds accounts
//! and sessions, measures the machine's ceilings in the same run, and reports
//! every scenario as a ratio to them. The client shares the server's process,
//! so its CPU and RSS count against the server's.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod baseline;
mod cpu;
mod load;
mod passkey;
mod report;
mod scenarios;
mod seed;
mod tls;

use std::{path::PathBuf, time::Duration};

use serde::Serialize;

pub use load::Stats;
pub use report::Report;
pub use tls::TlsMaterial;

/// The scenarios, in the order `all` runs them.
pub const SCENARIOS: [&str; 8] = [
    "login",
    "introspect",
    "isolation",
    "reset-burst",
    "flood-memory",
    "flood-limited",
    "mixed",
    "passkey-login",
];

#[derive(Debug, Clone)]
pub struct Options {
    pub scenarios: Vec<String>,
    pub duration: Duration,
    pub concurrency: usize,
    pub connections: usize,
    pub accounts: usize,
    /// Connections of the `flood-memory` scenario.
    pub flood_connections: usize,
    /// `Login` calls from one address in the `flood-limited` scenario.
    pub limited_flood_calls: u64,
    pub database_url: Option<String>,
    pub json: Option<PathBuf>,
    /// With `--tls`: the server under test and the echo baseline speak
    /// TLS with this material.
    pub tls: Option<TlsMaterial>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scenarios: SCENARIOS.iter().map(|s| s.to_string()).collect(),
            duration: Duration::from_secs(10),
            concurrency: 64,
            connections: 8,
            accounts: 64,
            flood_connections: 500,
            limited_flood_calls: 5_000,
            database_url: None,
            json: None,
            tls: None,
        }
    }
}

/// One scenario's figures and its ratio against the target.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub ratio: f64,
    pub target: String,
    pub met: bool,
    /// Failed calls whose status the scenario does not expect.
    pub unexpected_errors: u64,
    pub runs: Vec<(String, Stats)>,
    pub notes: Vec<String>,
}

/// Runs the chosen scenarios against a fresh in-process server.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let bench = seed::Bench::start(options).await?;
    let mut report = Report::new(options, &bench);
    for name in &options.scenarios {
        let outcome = match name.as_str() {
            "login" => scenarios::login(&bench, options, &mut report).await?,
            "introspect" => scenarios::introspect(&bench, options, &mut report).await?,
            "isolation" => scenarios::isolation(&bench, options).await?,
            "reset-burst" => scenarios::reset_burst(&bench, options).await?,
            "flood-memory" => scenarios::flood_memory(&bench, options).await?,
            "flood-limited" => scenarios::flood_limited(options).await?,
            "mixed" => scenarios::mixed(&bench, options).await?,
            "passkey-login" => passkey::passkey_login(options).await?,
            other => anyhow::bail!("unknown scenario `{other}` (one of {SCENARIOS:?} or all)"),
        };
        report.outcomes.push(outcome);
    }
    bench.stop();
    Ok(report)
}
