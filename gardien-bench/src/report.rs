//! The report: baselines, one row per run, and the JSON written by `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use super::{baseline, load::Stats, seed::Bench, Options, Outcome};

#[derive(Debug, Serialize)]
pub struct Report {
    pub database: String,
    /// Whether the server and the echo baseline spoke TLS.
    pub tls: bool,
    pub cores: usize,
    pub concurrency: usize,
    pub connections: usize,
    pub duration_secs: f64,
    pub hashing_workers: usize,
    pub hashing_queue: usize,
    pub argon2: Option<baseline::Argon2Ceiling>,
    pub echo: Option<Stats>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn new(options: &Options, bench: &Bench) -> Self {
        Self {
            database: if options.database_url.is_some() {
                "postgres"
            } else {
                "sqlite"
            }
            .into(),
            tls: options.tls.is_some(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency: options.concurrency,
            connections: options.connections,
            duration_secs: options.duration.as_secs_f64(),
            hashing_workers: bench.ctx.hasher.workers(),
            hashing_queue: bench.ctx.hasher.queue_bound(),
            argon2: None,
            echo: None,
            outcomes: Vec::new(),
        }
    }

    /// Times argon2 verifies on every core for `duration`, off the async
    /// runtime: the ceiling with [`baseline::HashPath::Plain`].
    pub async fn time_argon2(
        &self,
        bench: &Bench,
        duration: std::time::Duration,
        path: baseline::HashPath,
    ) -> anyhow::Result<baseline::Argon2Ceiling> {
        let (params, cores) = (bench.ctx.hasher.params(), self.cores);
        tokio::task::spawn_blocking(move || baseline::argon2_ceiling(params, cores, duration, path))
            .await?
    }

    /// The bare tonic echo throughput, measured once.
    pub async fn echo(&mut self, options: &Options) -> anyhow::Result<f64> {
        if self.echo.is_none() {
            self.echo = Some(
                baseline::echo(
                    options.duration,
                    options.concurrency,
                    options.connections,
                    options.tls.as_ref(),
                )
                .await?,
            );
        }
        Ok(self.echo.as_ref().map_or(0.0, |e| e.per_second))
    }

    pub fn unexpected_errors(&self) -> u64 {
        self.outcomes.iter().map(|o| o.unexpected_errors).sum()
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "database {}{} | {} cores | {} in flight over {} connections | {} s per run | hashing {} workers + {} queue",
            self.database, if self.tls { " | TLS" } else { "" }, self.cores, self.concurrency, self.connections, self.duration_secs, self.hashing_workers, self.hashing_queue
        );
        if let Some(a) = &self.argon2 {
            let _ = writeln!(
                out,
                "argon2 ceiling: {:.1}/s ({} threads, {:.1} ms per hash)",
                a.per_second, a.threads, a.ms_per_hash
            );
        }
        let _ = writeln!(
            out,
            "{:<26} {:>10} {:>9} {:>9} {:>9}  errors",
            "run", "calls/s", "p50 ms", "p99 ms", "p999 ms"
        );
        let mut row = |name: &str, s: &Stats| {
            let ms = |us: u64| us as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{name:<26} {:>10.1} {:>9.2} {:>9.2} {:>9.2}  {:?}",
                s.per_second,
                ms(s.p50_us),
                ms(s.p99_us),
                ms(s.p999_us),
                s.errors
            );
        };
        if let Some(echo) = &self.echo {
            row("echo (bare tonic)", echo);
        }
        for outcome in &self.outcomes {
            for (name, stats) in &outcome.runs {
                row(&format!("{}: {name}", outcome.scenario), stats);
            }
        }
        let _ = writeln!(
            out,
            "\n{:<14} {:>8}  {:<4} {:>10}  target",
            "scenario", "ratio", "met", "unexpected"
        );
        for o in &self.outcomes {
            let _ = writeln!(
                out,
                "{:<14} {:>8.3}  {:<4} {:>10}  {}",
                o.scenario,
                o.ratio,
                if o.met { "yes" } else { "NO" },
                o.unexpected_errors,
                o.target
            );
            for note in &o.notes {
                let _ = writeln!(out, "               {note}");
            }
        }
        out
    }
}
