//! Logging: human-readable by default, JSON on request. Log lines carry the
//! RPC span (method, request id, principal) and never a secret.

use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber writing to standard error. Safe to call
/// more than once (later calls do nothing).
pub fn init(format: LogFormat, level: &str) {
    init_with_writer(format, level, std::io::stderr);
}

pub fn init_with_writer<W>(format: LogFormat, level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("GARDIEN_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Already initialised (tests start several servers in one process).
    drop(result);
}
