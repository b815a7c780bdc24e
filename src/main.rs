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
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // An error may echo a value it could not use: a key, a URL
            // with its password.
            let shown = gardien::telemetry::scrub(&format!("{error:#}"), std::env::vars());
            eprintln!("gardien: {shown}");
            std::process::ExitCode::FAILURE
        }
    }
}
