//! The configuration as the real binary reads it: `check-config` refuses
//! what `serve` would refuse, naming the key, and `serve` refuses it before
//! it touches the database; `GARDIEN_LOG` is the log filter's one variable.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Output,
    time::Duration,
};

use crate::faults::process::Deployment;

/// `gardien <args>` to its end; `None` for a process still running after
/// 15 s (a `serve` that accepted what it should have refused; it is killed).
async fn run_for(deployment: &Deployment, args: &[&str]) -> Option<Output> {
    tokio::time::timeout(Duration::from_secs(15), deployment.output(args))
        .await
        .ok()
}

async fn run(deployment: &Deployment, args: &[&str]) -> Output {
    run_for(deployment, args)
        .await
        .unwrap_or_else(|| panic!("gardien {args:?} still runs after 15 s"))
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

/// One configuration `serve` cannot run with: what sets it (`{dir}` in a
/// variable stands for the test's folder, which holds `data/`), what to make
/// in that folder first, and the key the refusal must name.
struct Bad {
    what: &'static str,
    env: &'static [(&'static str, &'static str)],
    file: Option<&'static str>,
    key_file: Option<(&'static str, u32)>,
    prepare: Option<fn(&Path)>,
    names: &'static str,
}

/// `{dir}/a-file`: a file where a folder is expected.
fn make_a_file(dir: &Path) {
    std::fs::write(dir.join("a-file"), "not a folder\n").unwrap();
}

const BAD: &[Bad] = &[
    Bad {
        what: "a PostgreSQL connection parameter the driver does not take",
        env: &[(
            "GARDIEN_DATABASE_URL",
            "postgres://127.0.0.1:1/gardien?user=app&pasword=S3CRtypo",
        )],
        file: None,
        key_file: None,
        prepare: None,
        names: "is not one the PostgreSQL driver takes",
    },
    Bad {
        what: "an OTLP endpoint that is not an http(s) address",
        env: &[("GARDIEN_TRACES__OTLP_ENDPOINT", "collector:4317")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.otlp_endpoint`",
    },
    Bad {
        what: "an OTLP endpoint with credentials in it",
        env: &[(
            "GARDIEN_TRACES__OTLP_ENDPOINT",
            "http://user:s3cretpw@collector:4317",
        )],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.otlp_endpoint`",
    },
    Bad {
        what: "an OTLP endpoint with a port out of range",
        env: &[("GARDIEN_TRACES__OTLP_ENDPOINT", "http://collector:99999")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.otlp_endpoint`",
    },
    Bad {
        what: "an OTLP endpoint with a signed port",
        env: &[("GARDIEN_TRACES__OTLP_ENDPOINT", "http://collector:+4317")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.otlp_endpoint`",
    },
    Bad {
        what: "an OTLP endpoint with an IPv6 zone",
        env: &[(
            "GARDIEN_TRACES__OTLP_ENDPOINT",
            "http://[fe80::1%25eth0]:4317",
        )],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.otlp_endpoint`",
    },
    Bad {
        what: "a sampling ratio above 1",
        env: &[("GARDIEN_TRACES__SAMPLE_RATIO", "1.5")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`traces.sample_ratio`",
    },
    Bad {
        what: "an SMTP host with its port",
        env: &[("GARDIEN_MAIL__SMTP__HOST", "smtp.example.com:587")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`mail.smtp.host`",
    },
    Bad {
        what: "an outbox that would poll without pause",
        env: &[("GARDIEN_MAIL__POLL_INTERVAL_MS", "0")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`mail.poll_interval_ms`",
    },
    Bad {
        what: "plaintext on every interface without tls.plaintext_allowed",
        env: &[("GARDIEN_LISTEN_ADDR", "0.0.0.0:57993")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`tls`",
    },
    Bad {
        what: "a TLS certificate without its key",
        env: &[("GARDIEN_TLS__CERT_FILE", "{dir}/a-file")],
        file: None,
        key_file: None,
        prepare: Some(make_a_file),
        names: "`tls.key_file`",
    },
    Bad {
        what: "a TLS certificate file that holds no certificate",
        env: &[
            ("GARDIEN_TLS__CERT_FILE", "{dir}/a-file"),
            ("GARDIEN_TLS__KEY_FILE", "{dir}/a-file"),
        ],
        file: None,
        key_file: None,
        prepare: Some(make_a_file),
        names: "`tls.cert_file`",
    },
    Bad {
        what: "a mail.from_name with a line break (a header injection)",
        env: &[("GARDIEN_MAIL__FROM_NAME", "x\r\nBcc: evil@evil.example")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`mail.from_name`",
    },
    Bad {
        what: "a mail.from_address that is not an address",
        env: &[("GARDIEN_MAIL__FROM_ADDRESS", "not an address")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`mail.from_address`",
    },
    Bad {
        what: "a mail.from_address with two @",
        env: &[("GARDIEN_MAIL__FROM_ADDRESS", "a@b@c")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`mail.from_address`",
    },
    Bad {
        what: "a session lifetime whose milliseconds overflow",
        env: &[("GARDIEN_SESSION__ABSOLUTE_TTL_SECS", "9300000000000000")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`session.absolute_ttl_secs`",
    },
    Bad {
        what: "a recent-authentication window whose milliseconds overflow",
        env: &[("GARDIEN_TOTP__RECENT_AUTH_SECS", "9223372036854775807")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`totp.recent_auth_secs`",
    },
    Bad {
        what: "an argon2 memory no machine has",
        env: &[("GARDIEN_PASSWORD__ARGON2_MEMORY_KIB", "4294967295")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`password.argon2_memory_kib`",
    },
    Bad {
        what: "a metrics_addr on listen_addr's port of every interface",
        env: &[
            ("GARDIEN_LISTEN_ADDR", "127.0.0.1:57991"),
            ("GARDIEN_METRICS_ADDR", "0.0.0.0:57991"),
        ],
        file: None,
        key_file: None,
        prepare: None,
        names: "`metrics_addr`",
    },
    Bad {
        what: "a log_level that names no level",
        env: &[],
        file: Some("log_level = \"loud\"\n"),
        key_file: None,
        prepare: None,
        names: "`log_level`",
    },
    Bad {
        what: "a target without a level",
        env: &[],
        file: Some("log_level = \"gardien=loud,info\"\n"),
        key_file: None,
        prepare: None,
        names: "`log_level`",
    },
    Bad {
        what: "a GARDIEN_LOG that names no level",
        env: &[("GARDIEN_LOG", "loud")],
        file: None,
        key_file: None,
        prepare: None,
        names: "GARDIEN_LOG",
    },
    Bad {
        what: "a malformed sealing key file",
        env: &[],
        file: None,
        key_file: Some(("not a key\n", 0o600)),
        prepare: None,
        names: "`totp.key_file`",
    },
    Bad {
        what: "a sealing key file others can read",
        env: &[],
        file: None,
        key_file: Some(("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 0o644)),
        prepare: None,
        names: "`totp.key_file`",
    },
    Bad {
        what: "a Redis URL that does not parse",
        env: &[
            ("GARDIEN_RATE_LIMIT__ENABLED", "true"),
            ("GARDIEN_RATE_LIMIT__BACKEND", "redis"),
            (
                "GARDIEN_RATE_LIMIT__REDIS_URL",
                "redis://127.0.0.1:notaport",
            ),
        ],
        file: None,
        key_file: None,
        prepare: None,
        names: "`rate_limit.redis_url`",
    },
    Bad {
        what: "the metrics endpoint on the gRPC address",
        env: &[
            ("GARDIEN_LISTEN_ADDR", "127.0.0.1:50998"),
            ("GARDIEN_METRICS_ADDR", "127.0.0.1:50998"),
        ],
        file: None,
        key_file: None,
        prepare: None,
        names: "`metrics_addr`",
    },
    Bad {
        what: "a database URL that does not parse",
        env: &[(
            "GARDIEN_DATABASE_URL",
            "postgres://gardien@127.0.0.1:notaport/gardien",
        )],
        file: None,
        key_file: None,
        prepare: None,
        names: "`database_url`",
    },
    Bad {
        what: "a PostgreSQL URL with an unknown sslmode",
        env: &[(
            "GARDIEN_DATABASE_URL",
            "postgres://gardien@127.0.0.1:5432/gardien?sslmode=bogus",
        )],
        file: None,
        key_file: None,
        prepare: None,
        names: "`database_url`",
    },
    Bad {
        what: "a key file in a folder that does not exist",
        env: &[("GARDIEN_TOTP__KEY_FILE", "{dir}/missing/totp.key")],
        file: None,
        key_file: None,
        prepare: None,
        names: "`totp.key_file`",
    },
    Bad {
        what: "a data_dir that is a file",
        env: &[("GARDIEN_DATA_DIR", "{dir}/a-file")],
        file: None,
        key_file: None,
        prepare: Some(make_a_file),
        names: "`data_dir`",
    },
    Bad {
        what: "a data_dir inside a file",
        env: &[("GARDIEN_DATA_DIR", "{dir}/a-file/data")],
        file: None,
        key_file: None,
        prepare: Some(make_a_file),
        names: "`data_dir`",
    },
];

/// Issue 23 item 4: `check-config` passed what `serve` then refused (after
/// migrating) or silently replaced. Each bad value is now refused by both,
/// naming its key, and `serve` refuses it before it creates the database.
#[tokio::test]
async fn check_config_and_serve_refuse_what_serve_cannot_run_with_before_the_database() {
    let mut problems = Vec::new();
    for bad in BAD {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let mut deployment = Deployment::new(&data_dir, None);
        if bad.file.is_some() {
            deployment.unset("GARDIEN_LOG");
        }
        for (key, value) in bad.env {
            deployment.set(key, value.replace("{dir}", &dir.path().to_string_lossy()));
        }
        if let Some(prepare) = bad.prepare {
            prepare(dir.path());
        }
        if let Some((text, mode)) = bad.key_file {
            use std::os::unix::fs::PermissionsExt;
            let path = data_dir.join("totp.key");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let file = write_config(dir.path(), bad.file.unwrap_or(""));

        for command in ["check-config", "serve"] {
            let Some(output) = run_for(&deployment, &["--config", &file, command]).await else {
                problems.push(format!("{command} ran with {}", bad.what));
                continue;
            };
            let said = stderr(&output);
            let said = said.lines().last().unwrap_or_default();
            if output.status.success() {
                problems.push(format!("{command} accepted {}: {said}", bad.what));
            } else if !said.contains(bad.names) {
                problems.push(format!(
                    "{command} refused {} without naming {}: {said}",
                    bad.what, bad.names
                ));
            }
        }
        if data_dir.join("gardien.db").exists() {
            problems.push(format!("serve created the database for {}", bad.what));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The sample configuration and the default one pass, and check-config
/// creates nothing (no key file, no database).
#[tokio::test]
async fn check_config_passes_a_good_configuration_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let deployment = Deployment::new(&data_dir, None);
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gardien.toml");

    for args in [&["check-config"][..], &["--config", sample, "check-config"]] {
        let output = run(&deployment, args).await;

        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("configuration is valid"));
    }
    assert!(!data_dir.exists(), "check-config created {data_dir:?}");
}

/// A refused value is not echoed when it is a secret: a sealing key given
/// without the list's brackets, a TOML line holding a key, a database URL's
/// password. Each once reached stderr whole (found by an outside trial).
#[tokio::test]
async fn refusals_never_echo_a_key_or_a_password() {
    const KEY: &str = "edqd8AWdN+95F6oMPS2+ov6KqL/SY21k5wtSMdcULmI=";
    // What is wrong, the variable that carries it, the file, and what must
    // not be shown.
    type Case<'a> = (&'a str, Option<(&'a str, String)>, String, &'a [&'a str]);
    let cases: [Case; 3] = [
        (
            "a key without brackets",
            Some(("GARDIEN_TOTP__ENCRYPTION_KEYS", KEY.to_string())),
            String::new(),
            &[KEY],
        ),
        (
            "an unterminated key in the file",
            None,
            format!("[totp]\nencryption_key = \"{KEY}\n"),
            &[KEY, "edqd8AWdN"],
        ),
        (
            "a database URL that does not parse",
            Some((
                "GARDIEN_DATABASE_URL",
                "postgres://u:S3cretDb Pw@@:x/db".to_string(),
            )),
            String::new(),
            &["S3cretDb"],
        ),
    ];
    let mut problems = Vec::new();
    for (what, env, file, secrets) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let mut deployment = Deployment::new(&data_dir, None);
        if let Some((key, value)) = &env {
            deployment.set(key, value);
        }
        let file = write_config(dir.path(), &file);
        for command in ["check-config", "serve"] {
            let Some(output) = run_for(&deployment, &["--config", &file, command]).await else {
                problems.push(format!("{command} ran with {what}"));
                continue;
            };
            let said = format!(
                "{}{}",
                stderr(&output),
                String::from_utf8_lossy(&output.stdout)
            );
            if output.status.success() {
                continue;
            }
            for secret in secrets {
                if said.contains(secret) {
                    problems.push(format!("{command} echoed a secret for {what}: {said}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A data_dir the server may not create files in is refused by both,
/// naming it. Root creates files whatever the mode: the test needs another
/// user, and is skipped as root.
#[tokio::test]
async fn check_config_and_serve_refuse_a_data_dir_they_cannot_write_in() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    if std::fs::metadata(dir.path()).unwrap().uid() == 0 {
        eprintln!("skipped: root writes in any folder");
        return;
    }
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let deployment = Deployment::new(&data_dir, None);

    for command in ["check-config", "serve"] {
        let output = run(&deployment, &[command]).await;

        assert!(!output.status.success(), "{command} accepted it");
        assert!(
            stderr(&output).contains("`data_dir`"),
            "{}",
            stderr(&output)
        );
    }
}

/// A refused start-up used to leave a new sealing key file behind: serve
/// made `totp.key` before it connected to the database. Now nothing is
/// written in the data directory until the database answers.
#[tokio::test]
async fn a_start_up_refused_over_the_database_writes_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            "a database URL that does not parse",
            "postgres://gardien@127.0.0.1:notaport/gardien".to_string(),
        ),
        (
            "a PostgreSQL server that does not answer",
            format!("postgres://gardien@127.0.0.1:{closed}/gardien"),
        ),
    ];
    let mut problems = Vec::new();
    for (what, url) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let mut deployment = Deployment::new(&data_dir, Some(url));
        deployment.set("GARDIEN_DATABASE__CONNECT_TIMEOUT_SECS", 1);

        let output = run(&deployment, &["serve"]).await;

        if output.status.success() {
            problems.push(format!("serve ran with {what}"));
        }
        let written: Vec<_> = std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        if !written.is_empty() {
            problems.push(format!("serve refused {what} but wrote {written:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An SMTP relay given with credentials in its host (`smtp://user:pw@host`)
/// was accepted, and check-config printed the password. It is refused,
/// naming the key and the settings that take credentials, and the password
/// is shown nowhere.
#[tokio::test]
async fn an_smtp_host_with_credentials_is_refused_without_showing_them() {
    const PASSWORD: &str = "Sm7pRelayS3cret";
    let hosts = [
        format!("smtp://relay-user:{PASSWORD}@relay.example.com"),
        format!("relay-user:{PASSWORD}@relay.example.com"),
        format!("smtps://relay-user:{PASSWORD}@relay.example.com:465"),
    ];
    let mut problems = Vec::new();
    for host in &hosts {
        let dir = tempfile::tempdir().unwrap();
        let mut deployment = Deployment::new(&dir.path().join("data"), None);
        deployment.set("GARDIEN_MAIL__TRANSPORT", "smtp");
        deployment.set("GARDIEN_MAIL__SMTP__HOST", host);
        for command in ["check-config", "serve"] {
            let Some(output) = run_for(&deployment, &[command]).await else {
                problems.push(format!("{command} ran with host {host:?}"));
                continue;
            };
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                stderr(&output)
            );
            let last = stderr(&output)
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            if output.status.success() {
                problems.push(format!("{command} accepted a host with credentials"));
            } else if !(last.contains("`mail.smtp.host`")
                && last.contains("mail.smtp.username")
                && last.contains("mail.smtp.password"))
            {
                problems.push(format!(
                    "{command} refused it without naming the host and the credential keys: {last}"
                ));
            }
            if said.contains(PASSWORD) {
                problems.push(format!("{command} showed the password"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every key of `value`, dotted (`mail.smtp.host`), with its value.
fn flatten(prefix: &str, value: serde_json::Value, into: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                flatten(&format!("{prefix}{key}."), value, into);
            }
        }
        value => {
            into.insert(prefix.trim_end_matches('.').to_string(), value);
        }
    }
}

/// The keys a TOML text shows commented out (`# key = …`), dotted with
/// their section.
fn commented_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line
            .strip_prefix('#')
            .and_then(|l| l.trim_start().split_once(" = "))
        {
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.insert(format!("{section}{key}"));
            }
        }
    }
    keys
}

/// `deploy/gardien.toml` lists every configuration key with its default,
/// checked against the configuration itself so that it cannot drift (it
/// lacked `metrics_addr`, `cors_allowed_origins` and `[mail.smtp]`): read
/// with unknown keys refused, every key it sets holds the default, and
/// every key it leaves out has no default (unset, or an empty list) and is
/// shown commented out in its section.
#[test]
fn the_sample_configuration_lists_every_key_with_its_default() {
    use figment::{
        providers::{Format, Toml},
        Figment,
    };
    let text = include_str!("../../deploy/gardien.toml");
    let sample = Figment::from(Toml::string(text));
    if let Err(error) = sample.extract::<gardien::config::Config>() {
        panic!("the sample does not load: {error}");
    }
    let mut set = BTreeMap::new();
    flatten("", sample.extract().unwrap(), &mut set);
    let mut defaults = BTreeMap::new();
    flatten(
        "",
        serde_json::to_value(gardien::config::Config::default()).unwrap(),
        &mut defaults,
    );
    let commented = commented_keys(text);

    let mut problems = Vec::new();
    for (key, default) in &defaults {
        let unset = default.is_null() || default.as_array().is_some_and(Vec::is_empty);
        match set.get(key) {
            Some(value) if value == default => {}
            Some(value) => problems.push(format!(
                "{key} = {value} in the sample, {default} by default"
            )),
            None if unset && commented.contains(key) => {}
            None if unset => {
                problems.push(format!("{key} (no default) is not shown commented out"))
            }
            None => problems.push(format!("{key} = {default} is missing")),
        }
    }
    for key in commented.iter().filter(|key| !defaults.contains_key(*key)) {
        problems.push(format!(
            "{key} is shown commented out but is no configuration key"
        ));
    }
    assert!(
        problems.is_empty(),
        "deploy/gardien.toml:\n{}",
        problems.join("\n")
    );
}

/// A start-up that fails says why in the format of the logs: a JSON line
/// (level ERROR, the reason in `error`) with `GARDIEN_LOG_FORMAT=json`, a
/// `gardien: …` line with text logs.
#[tokio::test]
async fn a_fatal_start_up_error_is_written_in_the_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    deployment.set("GARDIEN_LISTEN_ADDR", "0.0.0.0:0");
    let output = run(&deployment, &["serve"]).await;
    assert!(!output.status.success());
    let said = stderr(&output);
    let last = said.lines().last().unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|_| panic!("not a JSON line: {said}"));
    assert_eq!(line["level"], "ERROR", "{last}");
    assert!(
        line["error"].as_str().is_some_and(|e| e.contains("tls")),
        "{last}"
    );

    deployment.set("GARDIEN_LOG_FORMAT", "text");
    let output = run(&deployment, &["serve"]).await;
    let said = stderr(&output);
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("gardien: ") && last.contains("tls"),
        "{said}"
    );
}
