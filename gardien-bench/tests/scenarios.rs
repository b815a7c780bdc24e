//! A short run of every benchmark scenario, so the program cannot rot. It
//! asserts that no call failed unexpectedly, never a speed.

use std::time::Duration;

use gardien_bench::{self as bench, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_scenario_runs_without_unexpected_errors() {
    let options = Options {
        duration: Duration::from_millis(1500),
        concurrency: 4,
        connections: 2,
        accounts: 6,
        flood_connections: 16,
        limited_flood_calls: 300,
        ..Options::default()
    };

    let report = bench::run(&options).await.unwrap();

    assert_eq!(
        report.outcomes.len(),
        bench::SCENARIOS.len(),
        "{}",
        report.table()
    );
    assert_eq!(report.unexpected_errors(), 0, "{}", report.table());
    for outcome in &report.outcomes {
        let calls: u64 = outcome.runs.iter().map(|(_, stats)| stats.ok).sum();
        assert!(
            calls > 0,
            "{} made no successful call\n{}",
            outcome.scenario,
            report.table()
        );
    }
}

/// `--tls`: the server under test and the echo baseline speak TLS, and the
/// scenarios that compare against them still make calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_run_over_tls() {
    let options = Options {
        scenarios: vec!["login".into(), "introspect".into()],
        duration: Duration::from_millis(1500),
        concurrency: 4,
        connections: 2,
        accounts: 6,
        tls: Some(bench::TlsMaterial::generate().unwrap()),
        ..Options::default()
    };

    let report = bench::run(&options).await.unwrap();

    assert!(report.tls && report.table().contains("TLS"));
    assert_eq!(report.unexpected_errors(), 0, "{}", report.table());
    let echo = report.echo.as_ref().expect("introspect measures the echo");
    assert!(echo.ok > 0, "{}", report.table());
    for outcome in &report.outcomes {
        let calls: u64 = outcome.runs.iter().map(|(_, stats)| stats.ok).sum();
        assert!(calls > 0, "{}\n{}", outcome.scenario, report.table());
    }
}
