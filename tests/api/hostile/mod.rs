//! Hostile input for every RPC of both services, generated from the
//! descriptor set the server serves, so a new RPC or field cannot be left
//! out: each field of each request gets empty, blank, oversized,
//! control-character, log-injection, odd-Unicode and invalid-UTF-8 values,
//! malformed tokens, out-of-range enums, huge repeated fields, extreme
//! integers and far-past/far-future timestamps; each RPC also gets malformed
//! bodies and hostile metadata. Every answer must be a documented status
//! (never INTERNAL nor UNKNOWN, which is what a panic or a leaked database
//! error becomes); INVALID_ARGUMENT must name a field of the request; and
//! the server must still answer health checks afterwards.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};
use gardien::{
    domain::principal::Role, middleware::auth::allowed_roles, proto::FILE_DESCRIPTOR_SET,
};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey},
    transport::Channel,
    Code, Status,
};

use crate::helpers::*;
mod cases;
mod values;

use cases::*;

/// Passes bytes through: the cases are encoded by hand.
#[derive(Clone, Copy)]
pub(crate) struct RawCodec;
pub(crate) struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// The fields a status names, up to the first `.` or `[`.
fn top_fields(status: &Status) -> Vec<String> {
    bad_fields(status)
        .into_iter()
        .map(|f| f.split(['.', '[']).next().unwrap_or_default().to_string())
        .collect()
}

fn names(input: &MessageDescriptor) -> Vec<String> {
    input
        .fields()
        .map(|f| f.name().to_string())
        .chain(input.oneofs().map(|o| o.name().to_string()))
        .collect()
}

/// Why the answer to `case` breaks the rules, if it does.
fn judge(
    method: &MethodDescriptor,
    case: &Case,
    answer: &Result<Vec<u8>, Status>,
) -> Option<String> {
    let status = match answer {
        Ok(body) => {
            if let Err(error) = DynamicMessage::decode(method.output(), body.as_slice()) {
                return Some(format!("OK with an undecodable response: {error}"));
            }
            return match &case.expect {
                Expect::Documented => None,
                other => Some(format!("accepted, expected {other:?}")),
            };
        }
        Err(status) => status,
    };
    let code = status.code();
    let described = format!(
        "{code:?} {:?} fields {:?}",
        status.message(),
        bad_fields(status)
    );
    let documented = matches!(
        code,
        Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::OutOfRange
    );
    if !documented {
        return Some(format!("undocumented status: {described}"));
    }
    if code == Code::OutOfRange && case.body.len() <= MAX_MESSAGE {
        return Some(format!(
            "OUT_OF_RANGE for a message within the limit: {described}"
        ));
    }
    if code == Code::InvalidArgument && case.expect != Expect::Invalid {
        let known = names(&method.input());
        let fields = top_fields(status);
        if fields.is_empty() {
            return Some(format!("INVALID_ARGUMENT names no field: {described}"));
        }
        if let Some(unknown) = fields.iter().find(|f| !known.contains(f)) {
            return Some(format!(
                "names {unknown:?}, not a request field: {described}"
            ));
        }
    }
    match &case.expect {
        Expect::Documented => None,
        Expect::Invalid if code == Code::InvalidArgument => None,
        Expect::InvalidField(field)
            if code == Code::InvalidArgument
                && bad_fields(status).iter().any(|f| {
                    f == field
                        || f.starts_with(&format!("{field}["))
                        || f.starts_with(&format!("{field}."))
                }) =>
        {
            None
        }
        Expect::Code(expected) if *expected == code => None,
        other => Some(format!("expected {other:?}, got {described}")),
    }
}

async fn send(
    channel: &Channel,
    path: &str,
    case: &Case,
    credential: Option<&str>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(case.body.clone());
    let metadata = request.metadata_mut();
    if let Some(token) = credential {
        metadata.insert(
            "authorization",
            AsciiMetadataValue::try_from(format!("Bearer {token}")).unwrap(),
        );
    }
    for (key, value) in &case.headers {
        match value {
            Header::Ascii(bytes) => {
                let key = MetadataKey::from_bytes(key.as_bytes()).unwrap();
                metadata.insert(key, AsciiMetadataValue::try_from(bytes.as_slice()).unwrap());
            }
            Header::Binary(bytes) => {
                let key = MetadataKey::from_bytes(key.as_bytes()).unwrap();
                metadata.insert_bin(key, BinaryMetadataValue::from_bytes(bytes));
            }
        }
    }
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    grpc.unary(request, path, RawCodec)
        .await
        .map(|response| response.into_inner())
}

/// As a well-behaved client would: UNAVAILABLE (SQLite busy while a
/// background task writes) is retried a few times.
async fn send_retrying(
    channel: &Channel,
    path: &str,
    case: &Case,
    credential: Option<&str>,
) -> Result<Vec<u8>, Status> {
    let mut answer = send(channel, path, case, credential).await;
    for _ in 0..5 {
        match &answer {
            Err(status)
                if status.code() == Code::Unavailable && reason(status) == "UNAVAILABLE" =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                answer = send(channel, path, case, credential).await;
            }
            _ => break,
        }
    }
    answer
}

/// The credential an RPC's first allowed role presents.
struct Caller {
    role: Role,
    token: Option<String>,
    login: String,
}

impl Caller {
    async fn new(app: &TestApp, roles: &[Role], index: usize) -> Caller {
        let role = roles[0];
        let login = format!("hostile-{index}");
        let token = match role {
            Role::Anonymous => None,
            Role::Service => Some(app.service_token.clone()),
            Role::Security => Some(app.security_token.clone()),
            Role::Agent => Some(app.agent_token.clone()),
            Role::Customer => {
                let mut client = app.client().await;
                let request = || {
                    authed(
                        &app.service_token,
                        gardien::proto::accountsecurity::v1::CreateAccountRequest {
                            login: login.clone(),
                            email: format!("{login}@example.com"),
                            password: STRONG_PASSWORD.into(),
                            ..Default::default()
                        },
                    )
                };
                let mut created = client.create_account(request()).await;
                for _ in 0..5 {
                    match &created {
                        Err(status) if status.code() == Code::Unavailable => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            created = client.create_account(request()).await;
                        }
                        _ => break,
                    }
                }
                created.unwrap();
                None
            }
        };
        let mut caller = Caller { role, token, login };
        if role == Role::Customer {
            caller.log_in_again(app).await;
        }
        caller
    }

    /// A fresh session (again after a case ended the last one: `Logout`).
    async fn log_in_again(&mut self, app: &TestApp) {
        for _ in 0..10 {
            match app.login(&self.login, STRONG_PASSWORD).await {
                Ok(grant) => {
                    self.token = Some(grant.session_token);
                    return;
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    app.clock.advance(std::time::Duration::from_secs(3600));
                }
                Err(status) if status.code() == Code::Unavailable => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(status) => panic!("cannot log {} in again: {status:?}", self.login),
            }
        }
        panic!("{} stays backed off", self.login);
    }
}

#[tokio::test]
pub async fn every_rpc_answers_hostile_input_with_a_documented_status() {
    let app = spawn_app_with(|config| {
        // x-forwarded-for is read only from a trusted proxy.
        config.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let channel = app.channel().await;
    let now_secs = app.clock_now() / 1000;
    let methods = gardien_methods(&pool);
    assert!(methods.len() >= 39, "only {} RPCs found", methods.len());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // Answers by code, to show where the cases ended.
    let mut answers: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut failures = Vec::new();
    for (index, (path, method)) in methods.iter().enumerate() {
        let roles = allowed_roles(path).unwrap_or_else(|| panic!("{path} has no policy entry"));
        let mut caller = Caller::new(&app, roles, index).await;
        let mut cases = body_cases(method, now_secs);
        cases.extend(metadata_cases(method, roles, now_secs));
        for case in &cases {
            let replaces_credential = case.headers.iter().any(|(k, _)| k == "authorization");
            let credential = if replaces_credential {
                None
            } else {
                caller.token.as_deref()
            };
            let mut answer = send_retrying(&channel, path, case, credential).await;
            let session_ended = matches!(&answer,
                Err(s) if ["UNAUTHENTICATED", "SESSION_REVOKED"].contains(&reason(s).as_str()));
            if caller.role == Role::Customer && !replaces_credential && session_ended {
                caller.log_in_again(&app).await;
                answer = send_retrying(&channel, path, case, caller.token.as_deref()).await;
            }
            if let Some(why) = judge(method, case, &answer) {
                failures.push(format!("{path} [{}]: {why}", case.label));
            }
            let column = match answer.as_ref().map_err(Status::code) {
                Err(Code::InvalidArgument) => 0,
                Err(Code::Unauthenticated | Code::PermissionDenied) => 1,
                Ok(_) => 2,
                Err(_) => 3,
            };
            answers.entry(method.name().to_string()).or_default()[column] += 1;
        }
        counts.insert(method.name().to_string(), cases.len());
    }

    eprintln!("hostile inputs per RPC:        tried  INVALID_ARG  UNAUTH/DENIED     OK  other");
    let mut totals = [0; 4];
    for (method, count) in &counts {
        let [invalid, refused, ok, other] = answers.get(method).copied().unwrap_or_default();
        eprintln!("  {method:<28} {count:>5} {invalid:>12} {refused:>14} {ok:>6} {other:>6}");
        for (total, n) in totals.iter_mut().zip([invalid, refused, ok, other]) {
            *total += n;
        }
    }
    let [invalid, refused, ok, other] = totals;
    let total = counts.values().sum::<usize>();
    eprintln!(
        "  {:<28} {total:>5} {invalid:>12} {refused:>14} {ok:>6} {other:>6}",
        "total"
    );
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("FAILED {failure}");
        }
        // The causes of INTERNAL answers, from the server's log.
        captured_logs()
            .lines()
            .filter(|line| line.contains("\"ERROR\""))
            .for_each(|line| eprintln!("LOG {line}"));
    }
    assert!(
        failures.is_empty(),
        "{} hostile input(s) got an undocumented answer:\n{}",
        failures.len(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (path, method) in &methods {
        let count = counts.get(method.name()).copied().unwrap_or_default();
        assert!(count >= 30, "{path}: only {count} hostile inputs");
    }

    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gardien.accountsecurity.v1.AccountSecurityService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

/// Log lines that mention `marker`, parsed.
fn log_lines_with(marker: &str) -> Vec<serde_json::Value> {
    let logs = captured_logs();
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a log line is not JSON: {line:?}"
        );
    }
    logs.lines()
        .filter(|line| line.contains(marker))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn strings_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => out.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn names_with_newlines_and_control_characters_cannot_forge_log_lines() {
    let app = spawn_app().await;
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
    let injected = format!(
        "{marker}\n{{\"level\":\"ERROR\",\"fields\":{{\"message\":\"{FORGED}\"}}}}\r\n\u{1b}[2J"
    );
    let login = app
        .client()
        .await
        .login(gardien::proto::accountsecurity::v1::LoginRequest {
            login: injected.clone(),
            password: STRONG_PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(login.code(), Code::Unauthenticated | Code::InvalidArgument),
        "{login:?}"
    );
    let session = {
        app.create_account("escaped", "escaped@example.com", STRONG_PASSWORD)
            .await;
        app.login("escaped", STRONG_PASSWORD).await.unwrap()
    };
    let ticket = app
        .support()
        .await
        .create_ticket(authed(
            &session.session_token,
            gardien::proto::support::v1::CreateTicketRequest {
                category: gardien::proto::support::v1::TicketCategory::Other.into(),
                subject: injected.clone(),
                body: injected.clone(),
                ..Default::default()
            },
        ))
        .await;
    assert!(
        ticket
            .as_ref()
            .err()
            .is_none_or(|s| s.code() == Code::InvalidArgument),
        "{ticket:?}"
    );
    let forged_login = app.login(&injected, STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(forged_login.code(), login.code());

    // What was typed as a login is logged as its pseudonym only (it may be
    // a password typed in the wrong field), so the injection never reaches
    // a line; anything else logged with the marker is escaped.
    let pseudonym = gardien::telemetry::pseudonym(&injected);
    assert!(
        captured_logs().contains(&pseudonym),
        "the refused login was not logged at all"
    );
    let lines = log_lines_with(&marker);
    for line in &lines {
        let mut strings = Vec::new();
        strings_in(line, &mut strings);
        for text in strings.iter().filter(|t| t.contains(&marker)) {
            assert!(
                !text.chars().any(char::is_control),
                "a logged value holds raw control characters: {text:?}"
            );
        }
    }
    for line in captured_logs().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_ne!(
            value["fields"]["message"]
                .as_str()
                .or(value["message"].as_str()),
            Some(FORGED),
            "a forged line made it into the log: {line}"
        );
    }
}
