//! The `gardien` command: parse the command line and run it.

use clap::Parser;

/// mimalloc: the request path allocates many small, short-lived objects
/// across the runtime's threads, where glibc's allocator spent about a fifth
/// of an introspection's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = gardien::cli::Cli::parse();
    let json_wanted = match cli.log_format {
        Some(format) => format == gardien::config::LogFormat::Json,
        None => std::env::var("GARDIEN_LOG_FORMAT")
            .is_ok_and(|format| format.trim().eq_ignore_ascii_case("json")),
    };
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // An error may echo a value it could not use: a key, a URL
            // with its password.
            let shown = gardien::telemetry::scrub(&format!("{error:#}"), std::env::vars());
            gardien::telemetry::fatal(&shown, json_wanted);
            std::process::ExitCode::FAILURE
        }
    }
}
