//! The configuration as the real binary reads it: `check-config` refuses
//! what `serve` would refuse, naming the key, and `serve` refuses it before
//! it touches the database; `GARDIEN_LOG` is the log filter's one variable.

use std::{path::Path, process::Output, time::Duration};

use crate::faults::process::Deployment;

/// `gardien <args>` to its end; a process still running after 30 s (a
/// `serve` that accepted what it should have refused) fails the test.
async fn run(deployment: &Deployment, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(30), deployment.output(args))
        .await
        .unwrap_or_else(|_| panic!("gardien {args:?} still runs after 30 s"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("gardien.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn check_config_takes_gardien_log_as_the_log_filter() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    deployment.set("GARDIEN_LOG", "gardien=debug,info");
    let file = write_config(dir.path(), "log_level = \"warn\"\n");

    let output = run(&deployment, &["--config", &file, "check-config"]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("log_level: \"gardien=debug,info\""),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        !stderr(&output).contains("GARDIEN_LOG"),
        "GARDIEN_LOG was reported as unknown: {}",
        stderr(&output)
    );
}

#[tokio::test]
async fn serve_logs_with_the_filter_of_gardien_log_over_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    // The file asks for errors only; GARDIEN_LOG for info, which shows the
    // "listening" line `start` waits for.
    deployment.set("GARDIEN_LOG", "info");
    let file = write_config(dir.path(), "log_level = \"error\"\n");

    let server = deployment.start_with(&["--config", &file, "serve"]).await;

    let logs = server.logs();
    assert!(
        !logs.contains("sets no configuration key"),
        "GARDIEN_LOG was reported as unknown:\n{logs}"
    );
}

#[tokio::test]
async fn gardien_log_level_is_refused_naming_gardien_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    deployment.set("GARDIEN_LOG_LEVEL", "debug");

    for args in [&["check-config"][..], &["serve"]] {
        let output = run(&deployment, args).await;

        assert!(!output.status.success(), "{args:?} accepted it");
        assert!(
            stderr(&output).contains("GARDIEN_LOG "),
            "{}",
            stderr(&output)
        );
    }
    assert!(!dir.path().join("gardien.db").exists());
}
