//! The deploy files as an operator would use them: the Kubernetes example
//! (`deploy/kubernetes.yaml`) starts the real binary with its variables and
//! the ones Kubernetes adds, and its probes answer on the ports it names;
//! the container image and the systemd unit carry what they promise.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use serde::Deserialize;
use serde_yaml::Value;

use crate::helpers::*;

const MANIFEST: &str = include_str!("../../deploy/kubernetes.yaml");

fn documents() -> Vec<Value> {
    serde_yaml::Deserializer::from_str(MANIFEST)
        .map(|document| Value::deserialize(document).expect("deploy/kubernetes.yaml parses"))
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes.yaml"))
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// The port of an address such as "0.0.0.0:9090".
fn port_of(address: &str) -> u64 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The container's port named `name`.
fn named_port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|port| port["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn answer(addr: SocketAddr, path: &str) -> Option<u16> {
    let get = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), get)
        .await
        .ok()
        .flatten()
}

/// Every probe points at an endpoint the binary serves, on the port where
/// the manifest's own variables put it; the binary starts with exactly the
/// manifest's variables (the Secrets filled in, the mounts in folders of
/// the test) plus those Kubernetes adds for the Service, and those probes
/// answer 200.
#[tokio::test]
async fn the_kubernetes_example_starts_and_its_probes_answer() {
    let Some(redis_url) = external_service("GARDIEN_TEST_REDIS_URL") else {
        return;
    };
    let documents = documents();
    let deployment = of_kind(&documents, "Deployment");
    let service = of_kind(&documents, "Service");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // The variables, the Secrets' keys filled in as the comment says.
    let mut env = BTreeMap::new();
    let mut secret_keys = Vec::new();
    for variable in container["env"].as_sequence().unwrap() {
        let name = text(&variable["name"]).to_string();
        match (&variable["value"], &variable["valueFrom"]["secretKeyRef"]) {
            (Value::String(value), _) => {
                env.insert(name, value.clone());
            }
            (_, Value::Mapping(reference)) => {
                assert_eq!(
                    reference[&Value::from("name")],
                    Value::from("gardien-secrets")
                );
                secret_keys.push((name, text(&reference[&Value::from("key")]).to_string()));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let data = tempfile::tempdir().unwrap();
    let database_url = match database_url().await {
        Some(url) => url,
        None => format!(
            "sqlite://{}?mode=rwc",
            data.path().join("gardien.db").display()
        ),
    };
    let sealing_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    for (name, key) in &secret_keys {
        let value = match key.as_str() {
            "database-url" => database_url.clone(),
            "redis-url" => redis_url.clone(),
            "sealing-keys" => format!("[\"{sealing_key}\"]"),
            other => panic!("{name} reads a Secret key the header does not describe: {other}"),
        };
        env.insert(name.clone(), value);
    }
    assert!(
        MANIFEST.contains("database-url") && MANIFEST.contains("sealing-keys"),
        "the header tells how to make the Secret"
    );

    // The mounts, as folders of the test; TLS files from a CA of the test.
    let mounts = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cluster CA");
    for mount in container["volumeMounts"].as_sequence().unwrap() {
        let path = text(&mount["mountPath"]);
        let local = mounts.path().join(text(&mount["name"]));
        std::fs::create_dir_all(&local).unwrap();
        if text(&mount["name"]) == "tls" {
            ca.server_leaf().write_to(&local);
        }
        for value in env.values_mut() {
            if let Some(rest) = value.strip_prefix(path) {
                *value = format!("{}{rest}", local.display());
            }
        }
    }

    // Probes: the endpoints the binary serves, on the metrics address.
    let metrics_port = named_port(container, "metrics");
    assert_eq!(port_of(&env["GARDIEN_METRICS_ADDR"]), metrics_port);
    assert_eq!(
        port_of(&env["GARDIEN_LISTEN_ADDR"]),
        named_port(container, "grpc")
    );
    assert_eq!(
        text(&service["spec"]["ports"][0]["targetPort"]),
        "grpc",
        "the Service sends to the gRPC port"
    );
    let mut probes = Vec::new();
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if container[probe].is_null() {
            continue;
        }
        let get = &container[probe]["httpGet"];
        assert_eq!(text(&get["port"]), "metrics", "{probe}");
        probes.push((probe, text(&get["path"]).to_string()));
    }
    let path_of = |name: &str| {
        probes
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(_, path)| path.clone())
    };
    assert_eq!(path_of("livenessProbe").as_deref(), Some("/livez"));
    assert_eq!(path_of("readinessProbe").as_deref(), Some("/readyz"));
    // /livez answers from the first moment: a start-up probe on it would
    // check nothing.
    assert_ne!(path_of("startupProbe").as_deref(), Some("/livez"));
    // Hardening a cluster's "restricted" policy asks for; no trusted proxy
    // range that takes in the pods themselves.
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    assert!(!env.contains_key("GARDIEN_RATE_LIMIT__TRUSTED_PROXIES"));
    let policy = of_kind(&documents, "NetworkPolicy");
    let metrics_rule = policy["spec"]["ingress"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|rule| rule["ports"][0]["port"].as_str() == Some("metrics"))
        .expect("a rule for the metrics port");
    assert!(
        metrics_rule["from"].is_sequence(),
        "the metrics port is open to every pod"
    );

    // Ports of this test's own: the same addresses, other port numbers.
    let (grpc, metrics) = (free_port(), free_port());
    env.insert("GARDIEN_LISTEN_ADDR".into(), format!("0.0.0.0:{grpc}"));
    env.insert(
        "GARDIEN_METRICS_ADDR".into(),
        format!("127.0.0.1:{metrics}"),
    );
    // What Kubernetes adds to every pod for a Service named gardien.
    for (name, value) in [
        ("GARDIEN_SERVICE_HOST", "10.96.0.12"),
        ("GARDIEN_SERVICE_PORT", "50051"),
        ("GARDIEN_SERVICE_PORT_GRPC", "50051"),
        ("GARDIEN_PORT", "tcp://10.96.0.12:50051"),
        ("GARDIEN_PORT_50051_TCP", "tcp://10.96.0.12:50051"),
        ("GARDIEN_PORT_50051_TCP_PROTO", "tcp"),
        ("GARDIEN_PORT_50051_TCP_PORT", "50051"),
        ("GARDIEN_PORT_50051_TCP_ADDR", "10.96.0.12"),
    ] {
        env.insert(name.into(), value.into());
    }
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gardien.toml");
    let run = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gardien"));
        command
            .args(["--config", config])
            .args(args)
            .env_clear()
            .envs(&env)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    };
    let checked = run(&["check-config"]).output().await.unwrap();
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{said}");
    assert!(
        said.contains("GARDIEN_PORT sets no configuration key"),
        "{said}"
    );
    assert!(!String::from_utf8_lossy(&checked.stdout).contains(&sealing_key));

    let mut server = run(&["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for (probe, path) in &probes {
        loop {
            if let Ok(Some(status)) = server.try_wait() {
                panic!("gardien serve exited: {status}");
            }
            if answer(addr, path).await == Some(200) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{probe} {path} never answered 200"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // And the gRPC port speaks TLS with the mounted pair.
    let probe = tokio::process::Command::new(env!("CARGO_BIN_EXE_gardien"))
        .args(["health-check", "--ca-file"])
        .arg(mounts.path().join("tls").join("tls.crt"))
        .current_dir(mounts.path())
        .env_clear()
        .env("GARDIEN_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
        .env(
            "GARDIEN_TLS__CERT_FILE",
            mounts.path().join("tls").join("tls.crt"),
        )
        .env(
            "GARDIEN_TLS__KEY_FILE",
            mounts.path().join("tls").join("tls.key"),
        )
        .output()
        .await
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");
    server.kill().await.ok();
}

/// The image runs as a fixed non-root user with its data in a volume, a
/// stripped binary and a health check; the build context leaves out what
/// it does not need; the systemd unit's user is created by sysusers.d.
#[test]
fn the_image_and_the_unit_carry_what_they_promise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .expect("a multi-stage build")
        .1;
    for wanted in [
        "USER 10001",
        "VOLUME [\"/var/lib/gardien\"]",
        "HEALTHCHECK",
        "GARDIEN_DATA_DIR=/var/lib/gardien",
    ] {
        assert!(runtime.contains(wanted), "the image lacks {wanted}");
    }
    assert!(
        dockerfile.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"),
        "the binary is stripped"
    );
    let manifest = documents();
    let pod = &of_kind(&manifest, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(10001));

    let ignored = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for path in ["target", ".git", "gardien-data"] {
        assert!(
            ignored.lines().any(|line| line.trim_matches('/') == path),
            ".dockerignore keeps {path}"
        );
    }
    let unit = std::fs::read_to_string(root.join("deploy/gardien.service")).unwrap();
    for wanted in [
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        "MemoryDenyWriteExecute=true",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(wanted), "the unit lacks {wanted:?}");
    }
    // The hashing threads lower their own priority (setpriority,
    // sched_setscheduler: @resources); denying them would kill the service.
    assert!(
        !unit
            .lines()
            .any(|line| line.starts_with("SystemCallFilter=~") && line.contains("@resources")),
        "the unit denies @resources"
    );
    let sysusers = std::fs::read_to_string(root.join("deploy/gardien.sysusers")).unwrap();
    let user = unit
        .lines()
        .find_map(|line| line.strip_prefix("User="))
        .expect("the unit names its user");
    assert!(
        sysusers
            .lines()
            .any(|line| line.split_whitespace().take(2).eq(["u", user])),
        "deploy/gardien.sysusers creates {user}"
    );
}
