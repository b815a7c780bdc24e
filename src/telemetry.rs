//! Logging: human-readable by default, JSON on request. Log lines carry the
//! RPC span (method, request id, principal) and never a secret.

mod otel;
mod scrub;

pub use otel::{continue_caller, TraceGuard};
pub use scrub::scrub;

use std::io::IsTerminal;

use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

use crate::config::LogFormat;

/// What stands in the logs for a login or an e-mail address as a caller
/// typed it (which may be a password typed in the wrong field): a keyed
/// hash, the same for the same text (case and surrounding spaces aside)
/// for the life of the process, so that lines can be correlated without
/// the text being written. The key is drawn at random when the process
/// starts and never leaves it.
pub fn pseudonym(typed: &str) -> String {
    use hmac::{Mac, SimpleHmac};
    use rand::RngCore;
    use sha2::Sha256;
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        key
    });
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = <SimpleHmac<Sha256> as Mac>::new_from_slice(key) else {
        return "h:-".into();
    };
    mac.update(typed.trim().to_lowercase().as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("h:{}", hex::encode(&digest[..8]))
}

/// Installs the global subscriber writing to standard error, in colour only
/// when that is a terminal and `NO_COLOR` is unset: a log file or a
/// collector gets plain text. `level` is the configuration's `log_level`
/// (which `GARDIEN_LOG` overrides). Safe to call more than once (later
/// calls do nothing).
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    init_with_writer(format, level, std::io::stderr, ansi)
}

/// Whether text logs get terminal colour codes (<https://no-color.org>: any
/// non-empty `NO_COLOR` turns them off).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// [`init`] with another writer; `ansi` adds terminal colour codes to text
/// logs. A filter that does not parse is an error, never replaced.
pub fn init_with_writer<W>(
    format: LogFormat,
    level: &str,
    writer: W,
    ansi: bool,
) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(format, level, writer, ansi, None)
}

/// [`init`], and the spans exported over OTLP when `traces` names an
/// endpoint; keep the guard while the command runs (it sends the last spans
/// when dropped). Call it inside the runtime.
pub fn init_traced(
    format: LogFormat,
    level: &str,
    traces: &crate::config::TracesConfig,
) -> anyhow::Result<Option<TraceGuard>> {
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let (tracer, guard) = match otel::tracer(traces)? {
        Some((tracer, guard)) => (Some(tracer), Some(guard)),
        None => (None, None),
    };
    install(format, level, std::io::stderr, ansi, tracer)?;
    if let (Some(_), Some(endpoint)) = (&guard, &traces.otlp_endpoint) {
        tracing::info!(
            endpoint = %endpoint,
            service_name = %traces.service_name,
            "traces: spans are sent over OTLP"
        );
    }
    Ok(guard)
}

/// sea-orm traces its `connect` with the connection options as a field,
/// the database URL and password included: never logged nor exported.
fn holds_no_secret(metadata: &tracing::Metadata<'_>) -> bool {
    !(metadata.target().starts_with("sea_orm") && metadata.name().starts_with("connect"))
}

/// What the exported spans take: gardien's at INFO (each RPC and its steps)
/// and sea-orm's database calls, which it traces at TRACE.
const EXPORTED_SPANS: &str = "info,sea_orm=trace";

fn install<W>(
    format: LogFormat,
    level: &str,
    writer: W,
    ansi: bool,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::{
        filter::{filter_fn, FilterExt},
        layer::SubscriberExt,
        util::SubscriberInitExt,
        Layer,
    };
    let filter = EnvFilter::try_new(level)
        .map_err(|error| anyhow::anyhow!("`log_level` (or GARDIEN_LOG): {error}"))?
        .and(filter_fn(holds_no_secret));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            // The call's span once ("span"), not again in a list.
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(EnvFilter::new(EXPORTED_SPANS).and(filter_fn(holds_no_secret)))
    });
    let result = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init();
    // Already initialised (tests start several servers in one process).
    if result.is_ok() && format == LogFormat::Json {
        JSON.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// Whether this process logs JSON lines.
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reports the error that stops the command, already scrubbed of secrets:
/// a JSON line at ERROR when the logs are JSON (`json_wanted` says so when
/// the error came before logging started, from `--log-format` or
/// `GARDIEN_LOG_FORMAT`), else `gardien: …` on standard error.
pub fn fatal(shown: &str, json_wanted: bool) {
    let json = JSON.load(std::sync::atomic::Ordering::Relaxed)
        || (json_wanted
            && init_with_writer(LogFormat::Json, "error", std::io::stderr, false).is_ok()
            && JSON.load(std::sync::atomic::Ordering::Relaxed));
    if json {
        tracing::error!(error = %shown, "gardien stopped");
    } else {
        eprintln!("gardien: {shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}

#[cfg(test)]
mod pseudonym_tests {
    use super::pseudonym;

    #[test]
    fn a_pseudonym_correlates_without_the_text() {
        let typed = "MySecretPassw0rd-2039620849";
        let hashed = pseudonym(typed);
        assert!(!hashed.contains("MySecret") && hashed.starts_with("h:"));
        assert_eq!(hashed.len(), 2 + 16);
        assert_eq!(pseudonym(" mysecretpassw0rd-2039620849 "), hashed);
        assert_ne!(pseudonym("jean"), hashed);
    }
}
