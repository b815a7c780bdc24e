//! TLS on the gRPC listener with certificates the tests make: every service
//! over TLS (tonic, grpcurl through reflection, gRPC-Web), plaintext
//! refused, the `health-check` command, and the pair rotated under load.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gardien::proto::{accountsecurity::v1 as pb, support::v1 as spb};
use prost::Message;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{client::TlsStream, TlsConnector};

use crate::helpers::*;

/// A TLS connection to `app` trusting `ca`, offering `alpn`.
async fn connect_tls(app: &TestApp, ca: &str, alpn: &[u8]) -> TlsStream<tokio::net::TcpStream> {
    connect_tls_to(app.addr, ca, alpn).await
}

async fn connect_tls_to(
    addr: std::net::SocketAddr,
    ca: &str,
    alpn: &[u8],
) -> TlsStream<tokio::net::TcpStream> {
    try_connect_tls_to(addr, ca, alpn)
        .await
        .expect("TLS handshake")
}

async fn try_connect_tls_to(
    addr: std::net::SocketAddr,
    ca: &str,
    alpn: &[u8],
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// The leaf certificate a new connection is served.
async fn served_leaf(app: &TestApp, ca: &str) -> Vec<u8> {
    served_leaf_at(app.addr, ca).await
}

async fn served_leaf_at(addr: std::net::SocketAddr, ca: &str) -> Vec<u8> {
    let stream = connect_tls_to(addr, ca, b"h2").await;
    let (_, session) = stream.get_ref();
    session.peer_certificates().unwrap()[0].to_vec()
}

/// grpcurl, which CI installs; elsewhere a test needing it is skipped.
fn grpcurl() -> Option<tokio::process::Command> {
    match std::process::Command::new("grpcurl")
        .arg("-version")
        .output()
    {
        Ok(output) if output.status.success() => Some(tokio::process::Command::new("grpcurl")),
        _ if std::env::var_os("CI").is_some() => panic!("grpcurl is needed under CI"),
        _ => {
            eprintln!("skipped: grpcurl is not installed");
            None
        }
    }
}

#[tokio::test]
async fn every_service_answers_over_tls_and_a_plaintext_client_is_refused() {
    let ca = TestCa::new("gardien test CA");
    let (app, files) = spawn_tls_app_with(&ca, |_| {}).await;

    // AccountSecurityService and SupportService with a tonic client.
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let tickets = app
        .support()
        .await
        .list_tickets(authed(
            &session.session_token,
            spb::ListTicketsRequest::default(),
        ))
        .await
        .unwrap();
    assert!(tickets.into_inner().tickets.is_empty());
    // Health.
    let status = tonic_health::pb::health_client::HealthClient::new(app.channel().await)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // gRPC-Web from a browser: HTTP/1.1 inside TLS, on the same port.
    let (head, frame) = crate::grpc_web::grpc_web_login(&app, "jean", STRONG_PASSWORD);
    let mut stream = connect_tls(&app, &ca.pem(), b"http/1.1").await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("no gRPC-Web answer")
        .ok();
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    let body = crate::grpc_web::body_of(&response);
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let answer = pb::LoginResponse::decode(&body[5..5 + len]).unwrap();
    assert!(
        matches!(answer.result, Some(pb::login_response::Result::Session(_))),
        "{answer:?}"
    );

    // grpcurl with -cacert, through reflection.
    if let Some(mut listing) = grpcurl() {
        let ca_file = files.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let target = format!("localhost:{}", app.addr.port());
        let listed = listing
            .args(["-cacert", ca_file.to_str().unwrap(), &target, "list"])
            .output()
            .await
            .unwrap();
        let services = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.status.success(), "{listed:?}");
        for service in [
            "gardien.accountsecurity.v1.AccountSecurityService",
            "gardien.support.v1.SupportService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                services.contains(service),
                "{service} not listed: {services}"
            );
        }
        let checked = grpcurl()
            .unwrap()
            .args([
                "-cacert",
                ca_file.to_str().unwrap(),
                &target,
                "grpc.health.v1.Health/Check",
            ])
            .output()
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&checked.stdout).contains("SERVING"),
            "{checked:?}"
        );
        // Without the CA the server's certificate is not trusted.
        let untrusted = grpcurl()
            .unwrap()
            .args([&target, "list"])
            .output()
            .await
            .unwrap();
        assert!(!untrusted.status.success());
    }

    // A plaintext client gets nothing from the TLS port.
    let plaintext = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let refused = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        assert!(
            refused.is_err(),
            "a plaintext call was answered: {refused:?}"
        );
    }
}

/// `gardien health-check` speaks TLS when `[tls]` is set: trusting the
/// chain in `tls.cert_file` by default, or `--ca-file`; a CA that did not
/// sign the server's certificate fails the check.
#[tokio::test]
async fn the_health_check_command_speaks_tls() {
    let ca = TestCa::new("gardien test CA");
    let (app, files) = spawn_tls_app_with(&ca, |_| {}).await;
    let other_ca = files.path().join("other-ca.pem");
    std::fs::write(&other_ca, TestCa::new("another CA").pem()).unwrap();
    let own_ca = files.path().join("ca.pem");
    std::fs::write(&own_ca, ca.pem()).unwrap();
    let data = tempfile::tempdir().unwrap();
    // A child process awaited, so that the server of this runtime answers it.
    let check = |extra: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gardien"))
            .arg("health-check")
            .args(extra)
            .env("GARDIEN_LISTEN_ADDR", app.addr.to_string())
            .env("GARDIEN_DATA_DIR", data.path())
            .env("GARDIEN_TLS__CERT_FILE", files.path().join("tls.crt"))
            .env("GARDIEN_TLS__KEY_FILE", files.path().join("tls.key"))
            .output()
    };
    let default = check(&[]).await.unwrap();
    assert!(default.status.success(), "{default:?}");
    assert_eq!(String::from_utf8_lossy(&default.stdout).trim(), "SERVING");
    let given = check(&["--ca-file", own_ca.to_str().unwrap()])
        .await
        .unwrap();
    assert!(given.status.success(), "{given:?}");
    let wrong = check(&["--ca-file", other_ca.to_str().unwrap()])
        .await
        .unwrap();
    assert!(!wrong.status.success(), "{wrong:?}");
}

/// Plaintext stays the default on loopback; on an address other machines
/// reach it is refused naming `tls`, unless allowed on purpose.
#[test]
fn plaintext_beyond_loopback_needs_tls_or_an_explicit_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.listen_addr = "127.0.0.1:50051".parse().unwrap();
    config.validate().expect("plaintext on loopback");
    config.listen_addr = "0.0.0.0:50051".parse().unwrap();
    let refused = config.validate().unwrap_err().to_string();
    assert!(refused.contains("`tls`"), "{refused}");
    config.listen_addr = "[::]:50051".parse().unwrap();
    assert!(config.validate().is_err());
    config.tls.plaintext_allowed = true;
    config.validate().expect("allowed on purpose");
    config.tls.plaintext_allowed = false;
    config.tls.cert_file = Some(dir.path().join("tls.crt"));
    config.tls.key_file = Some(dir.path().join("tls.key"));
    config.validate().expect("TLS on every interface");
}

/// Item 4 of the TLS issue: 30 s of calls, over connections made before
/// and during the swap, while the pair is replaced (written in place, cert
/// then key), then replaced by broken pairs: no call fails, new connections
/// get the new certificate within seconds, and a broken pair is refused
/// while the previous one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_swap_under_load_fails_no_call_and_a_broken_pair_keeps_the_old() {
    let ca = TestCa::new("gardien test CA");
    let (app, files) = spawn_tls_app_with(&ca, |_| {}).await;
    let app = Arc::new(app);
    let first = served_leaf(&app, &ca.pem()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (app, stop, ok, failed) = (app.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            // Worker 0 keeps its first connection throughout; the others
            // open a new one every 25 calls.
            let mut channel = app.channel().await;
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if worker > 0 && calls % 25 == 24 {
                    channel = app.channel().await;
                }
                let answer = tonic_health::pb::health_client::HealthClient::new(channel.clone())
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await;
                match answer {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        eprintln!("failed during the swap: {status:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                calls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;

    // A new pair, written in place: the certificate, then the key.
    let second = ca.server_leaf();
    std::fs::write(files.path().join("tls.crt"), &second.chain_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(files.path().join("tls.key"), &second.key_pem).unwrap();
    let swapped = Instant::now();
    loop {
        if served_leaf(&app, &ca.pem()).await == second.der {
            break;
        }
        assert!(
            swapped.elapsed() < Duration::from_secs(10),
            "new connections still get the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(first, second.der);
    tokio::time::sleep(Duration::from_secs(6)).await;

    // A key that is no key, then a pair whose key is another certificate's.
    std::fs::write(files.path().join("tls.key"), "not a key\n").unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(served_leaf(&app, &ca.pem()).await, second.der);
    let third = ca.server_leaf();
    std::fs::write(files.path().join("tls.crt"), &third.chain_pem).unwrap();
    std::fs::write(files.path().join("tls.key"), &second.key_pem).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(served_leaf(&app, &ca.pem()).await, second.der);

    tokio::time::sleep(Duration::from_secs(30).saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} of {} calls failed", ok + failed);
    assert!(ok > 400, "only {ok} calls in 30 s");
}

/// A service credential bound to `binding`, made through the library; its
/// secret, registered for the log checks.
async fn bound_credential(app: &TestApp, name: &str, binding: &str) -> String {
    let (_, secret) = gardien::domain::credentials::create_bound(
        &app.ctx.db,
        app.ctx.now(),
        name,
        gardien::domain::principal::Role::Service,
        Some(binding),
        None,
    )
    .await
    .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&secret).to_string();
    register_secret(&secret);
    secret
}

/// Item 3 of the TLS issue: with `tls.client_ca_file`, a credential bound to
/// a certificate identity works only from a connection presenting that
/// certificate; unbound credentials and customer sessions work as before,
/// without any certificate.
#[tokio::test]
async fn a_certificate_bound_credential_works_only_with_its_certificate() {
    use gardien::domain::{credentials, principal::Role};
    let ca = TestCa::new("gardien test CA");
    let clients = TestCa::new("gardien clients CA");
    let client_ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(client_ca_file.path(), clients.pem()).unwrap();
    let client_ca = client_ca_file.path().to_path_buf();
    let (app, _files) = spawn_tls_app_with(&ca, |config| {
        config.tls.client_ca_file = Some(client_ca);
    })
    .await;
    let identity = "spiffe://example.org/ns/billing/sa/billing";
    let bound = bound_credential(&app, "billing-bound", identity).await;

    let right = clients.client_leaf(identity);
    let other = clients.client_leaf("spiffe://example.org/ns/shop/sa/shop");
    let stranger = TestCa::new("someone else's CA").client_leaf(identity);
    let create = |channel: tonic::transport::Channel, token: &str, login: &str| {
        let request = authed(
            token,
            pb::CreateAccountRequest {
                login: login.into(),
                email: format!("{login}@example.fr"),
                password: STRONG_PASSWORD.into(),
                ..Default::default()
            },
        );
        async move {
            pb::account_security_service_client::AccountSecurityServiceClient::new(channel)
                .create_account(request)
                .await
        }
    };

    let with_it = app.channel_as(Some(&right)).await.unwrap();
    create(with_it, &bound, "marie")
        .await
        .expect("the bound credential with its certificate");
    for (what, channel) in [
        ("no certificate", app.channel_as(None).await.unwrap()),
        (
            "another certificate",
            app.channel_as(Some(&other)).await.unwrap(),
        ),
    ] {
        let refused = create(channel, &bound, "paul").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{what}");
    }
    // A certificate from a CA the server does not trust: no connection.
    let untrusted = match app.channel_as(Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => create(channel, &bound, "paul").await.is_err(),
    };
    assert!(untrusted, "a client certificate of an unknown CA was taken");

    // The identity counts only in the field its kind names: the URI as the
    // subject's common name, or spelled as a DNS name, is not the URI.
    for (what, leaf) in [
        (
            "the URI as common name",
            clients.client_leaf_with(Vec::new(), identity),
        ),
        (
            "the URI as a DNS name",
            clients.client_leaf_with(
                vec![rcgen::SanType::DnsName(identity.try_into().unwrap())],
                "x",
            ),
        ),
    ] {
        let channel = app.channel_as(Some(&leaf)).await.unwrap();
        let refused = create(channel, &bound, "paul").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{what}");
    }
    // dns: bindings match DNS names in any case; cn: the only common name.
    for (binding, leaf, login) in [
        (
            "dns:Billing.Example.org",
            clients.client_leaf_with(
                vec![rcgen::SanType::DnsName(
                    "BILLING.example.ORG".try_into().unwrap(),
                )],
                "x",
            ),
            "lea",
        ),
        (
            "cn:reporting",
            clients.client_leaf_with(Vec::new(), "reporting"),
            "noe",
        ),
    ] {
        let name = format!("bound-{login}");
        let secret = bound_credential(&app, &name, binding).await;
        let channel = app.channel_as(Some(&leaf)).await.unwrap();
        create(channel, &secret, login)
            .await
            .unwrap_or_else(|status| panic!("{binding}: {status:?}"));
        let other = app.channel_as(Some(&right)).await.unwrap();
        let refused = create(other, &secret, "paul").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{binding}");
    }
    // A URI that spells a dns: or cn: binding is still a URI.
    for (binding, spelled) in [
        ("dns:svc.example.org", "dns:svc.example.org"),
        ("cn:svc", "cn:svc"),
    ] {
        let name = format!("spelled-{}", &binding[..2]);
        let secret = bound_credential(&app, &name, binding).await;
        let leaf =
            clients.client_leaf_with(vec![rcgen::SanType::URI(spelled.try_into().unwrap())], "x");
        let channel = app.channel_as(Some(&leaf)).await.unwrap();
        let refused = create(channel, &secret, "paul").await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "{binding} from a URI"
        );
    }
    // A binding that names no kind, or a wildcard, is refused by name.
    for binding in ["billing", "dns:*.example.org", "cn:", "dns:"] {
        let refused = credentials::create_bound(
            &app.ctx.db,
            app.ctx.now(),
            "never",
            Role::Service,
            Some(binding),
            None,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{binding} was taken"));
        assert!(
            format!("{refused:?}").contains("bind_certificate"),
            "{binding}"
        );
    }

    // Unbound credentials and customers need no certificate.
    let plain = app.channel_as(None).await.unwrap();
    create(plain, &app.service_token, "jeanne")
        .await
        .expect("an unbound credential");
    app.login("marie", STRONG_PASSWORD)
        .await
        .expect("a customer without a certificate");
}

/// `SIGHUP` reloads the pair at once in the real binary (which would die of
/// the signal if nothing handled it), and the server keeps serving.
#[tokio::test]
async fn sighup_reloads_the_certificate_and_the_server_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new("gardien test CA");
    let (cert, key) = ca.server_leaf().write_to(files.path());
    let mut deployment = crate::faults::process::Deployment::new(data.path(), None);
    deployment.set("GARDIEN_TLS__CERT_FILE", cert.display());
    deployment.set("GARDIEN_TLS__KEY_FILE", key.display());
    let mut server = deployment.start().await;
    let first = served_leaf_at(server.addr, &ca.pem()).await;

    let second = ca.server_leaf();
    second.write_to(files.path());
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .logs()
        .contains("SIGHUP: reloading the TLS certificate")
    {
        assert!(
            Instant::now() < deadline,
            "no reload on SIGHUP:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.wait(Duration::from_millis(500)).await.is_none(),
        "SIGHUP ended the server"
    );
    while served_leaf_at(server.addr, &ca.pem()).await != second.der {
        assert!(Instant::now() < deadline, "the new pair is not served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(first, second.der);
    server.terminate();
    assert!(server.wait(Duration::from_secs(15)).await.is_some());
}

/// `gardien credential create --bind-certificate` binds, `credential list`
/// shows the binding, and an empty identity is refused by name.
#[tokio::test]
async fn the_command_line_binds_a_credential_and_lists_the_binding() {
    let data = tempfile::tempdir().unwrap();
    let deployment = crate::faults::process::Deployment::new(data.path(), None);
    let identity = "spiffe://example.org/ns/billing/sa/billing";
    let created = deployment
        .output(&[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "billing",
            "--bind-certificate",
            identity,
        ])
        .await;
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_string();
    register_secret(&secret);
    assert!(created.status.success(), "{created:?}");
    assert!(String::from_utf8_lossy(&created.stderr).contains(identity));
    let listed = deployment.output(&["credential", "list"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    let line = listed
        .lines()
        .find(|line| line.contains("billing"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.ends_with(identity), "{listed}");
    assert!(!listed.contains(&secret));
    let refused = deployment
        .output(&[
            "credential",
            "create",
            "--role",
            "service",
            "--name",
            "shop",
            "--bind-certificate",
            " ",
        ])
        .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("bind_certificate"),
        "{refused:?}"
    );
}

/// A pair whose certificate has expired is refused: at start-up naming
/// `tls.cert_file` and the date, and as a replacement (the previous pair
/// stays, since every client would refuse the new one).
#[tokio::test]
async fn an_expired_certificate_is_refused_at_start_and_as_a_replacement() {
    let ca = TestCa::new("gardien test CA");
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = ca.expired_server_leaf().write_to(files.path());
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path());
    config.tls.cert_file = Some(cert);
    config.tls.key_file = Some(key);
    let refused = match gardien::Application::build(config).await {
        Ok(_) => panic!("started with an expired certificate"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        refused.contains("`tls.cert_file`") && refused.contains("expired on"),
        "{refused}"
    );

    let (app, files) = spawn_tls_app_with(&ca, |_| {}).await;
    let first = served_leaf(&app, &ca.pem()).await;
    ca.expired_server_leaf().write_to(files.path());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(served_leaf(&app, &ca.pem()).await, first);
    app.login("nobody", STRONG_PASSWORD).await.unwrap_err();
    // Nor a CA's own certificate, nor one meant for clients only.
    for (what, pair) in [
        ("a CA's certificate", ca.own_pair()),
        ("a client certificate", ca.client_only_server_leaf()),
    ] {
        pair.write_to(files.path());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            served_leaf(&app, &ca.pem()).await,
            first,
            "{what} was taken"
        );
    }
}

/// A new pair is noticed by its content: written with the same size and
/// the previous modification time (as `cp -p`, `rsync -t` or a
/// reproducible archive leave it), it is served all the same.
#[tokio::test]
async fn a_new_pair_with_the_same_size_and_time_is_noticed() {
    let ca = TestCa::new("gardien test CA");
    let (app, files) = spawn_tls_app_with(&ca, |_| {}).await;
    let (cert, key) = (files.path().join("tls.crt"), files.path().join("tls.key"));
    let old = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let times = (
        std::fs::metadata(&cert).unwrap().modified().unwrap(),
        std::fs::metadata(&key).unwrap().modified().unwrap(),
    );
    let new = (0..200)
        .map(|_| ca.server_leaf())
        .find(|leaf| leaf.chain_pem.len() == old.0.len() && leaf.key_pem.len() == old.1.len())
        .expect("a leaf of the same size");
    new.write_to(files.path());
    for (path, time) in [(&cert, times.0), (&key, times.1)] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_leaf(&app, &ca.pem()).await != new.der {
        assert!(Instant::now() < deadline, "the new pair was not noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A flood of idle connections (the handshake done, then nothing) cannot
/// use up the process's descriptors: one address keeps at most
/// `max_connections_per_address` (more are closed at once), and beyond
/// `max_connections` the listener waits for one to close.
#[tokio::test]
async fn idle_connections_are_capped_per_address_and_in_total() {
    let ca = TestCa::new("gardien test CA");
    let (app, _files) =
        spawn_tls_app_with(&ca, |config| config.max_connections_per_address = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_tls(&app, &ca.pem(), b"h2").await);
    }
    let fifth = tokio::time::timeout(
        Duration::from_secs(5),
        try_connect_tls_to(app.addr, &ca.pem(), b"h2"),
    )
    .await
    .expect("the fifth connection is closed at once");
    assert!(
        fifth.is_err(),
        "a fifth connection from one address was served"
    );
    // A closed connection gives its place back.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while try_connect_tls_to(app.addr, &ca.pem(), b"h2")
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);

    let (app, _files) = spawn_tls_app_with(&ca, |config| config.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_tls(&app, &ca.pem(), b"h2").await);
    }
    let waiting = tokio::spawn({
        let (addr, ca) = (app.addr, ca.pem());
        async move { try_connect_tls_to(addr, &ca, b"h2").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a fourth connection was accepted");
    held.pop();
    let fourth = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the fourth connection is accepted once one closes")
        .unwrap();
    assert!(fourth.is_ok(), "{fourth:?}");
}

/// The client CA file is watched like the pair: replaced, its new CAs
/// apply to new connections (a compromised client CA is dropped without a
/// restart).
#[tokio::test]
async fn a_replaced_client_ca_file_applies_to_new_connections() {
    let ca = TestCa::new("gardien test CA");
    let (old_clients, new_clients) = (TestCa::new("old clients"), TestCa::new("new clients"));
    let client_ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(client_ca_file.path(), old_clients.pem()).unwrap();
    let path = client_ca_file.path().to_path_buf();
    let (app, _files) =
        spawn_tls_app_with(&ca, |config| config.tls.client_ca_file = Some(path)).await;
    let health = |channel: tonic::transport::Channel| async move {
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
    };
    let (old_leaf, new_leaf) = (
        old_clients.client_leaf("spiffe://example.org/a"),
        new_clients.client_leaf("spiffe://example.org/a"),
    );
    let works = |leaf| {
        let app = &app;
        async move {
            match app.channel_as(Some(leaf)).await {
                Ok(channel) => health(channel).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    assert!(works(&old_leaf).await);
    assert!(!works(&new_leaf).await);
    std::fs::write(client_ca_file.path(), new_clients.pem()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !works(&new_leaf).await {
        assert!(
            Instant::now() < deadline,
            "the new client CA was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!works(&old_leaf).await, "the old client CA still applies");
}

/// A connection over which nothing goes (the handshake done, then not a
/// byte) is closed after `connection_idle_secs`, giving its place back.
#[tokio::test]
async fn a_connection_idle_past_its_limit_is_closed() {
    let ca = TestCa::new("gardien test CA");
    let (app, _files) = spawn_tls_app_with(&ca, |config| {
        config.connection_idle_secs = 1;
        config.max_connections_per_address = 1;
    })
    .await;
    let mut idle = connect_tls(&app, &ca.pem(), b"h2").await;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut byte))
        .await
        .expect("the idle connection is still open after 5 s");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // Its place is free again: a call goes through.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app
        .login("nobody", STRONG_PASSWORD)
        .await
        .unwrap_err()
        .code()
        != tonic::Code::Unauthenticated
    {
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
