//! The hostile cases, generated from the descriptor set: for each field
//! of each request the values it must survive, malformed bodies, and
//! hostile metadata.

use gardien::domain::principal::Role;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use tonic::Code;

use super::values::*;
/// The server's default `max_message_bytes`.
pub(super) const MAX_MESSAGE: usize = 1024 * 1024;
pub(super) const CONTROL: &str = "a\0b\r\nc\td\u{1b}[31m\u{7f}\u{85}\u{2028}e";
/// A newline and a forged JSON log line: must never become a line of its own.
pub(super) const FORGED: &str = "forged-by-hostile-input";
pub(super) const LOG_INJECTION: &str =
    "x\n{\"level\":\"ERROR\",\"fields\":{\"message\":\"forged-by-hostile-input\"}}\n";
/// A lone combining mark, a right-to-left override, zero-width characters, a
/// BOM and the replacement character.
pub(super) const ODD_UNICODE: &str = "\u{301}abc\u{202e}gnp.exe\u{200b}\u{200d}\u{feff}\u{fffd}";

#[derive(Clone)]
pub(super) enum Header {
    Ascii(Vec<u8>),
    Binary(Vec<u8>),
}

/// What a case must get beyond the common rules.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expect {
    /// Any documented status.
    Documented,
    /// INVALID_ARGUMENT naming this field (or an element or part of it).
    InvalidField(String),
    /// INVALID_ARGUMENT; the body is not a protobuf message, so no field
    /// may be nameable.
    Invalid,
    /// Exactly this code.
    Code(Code),
}

pub(super) struct Case {
    pub(super) label: String,
    pub(super) body: Vec<u8>,
    pub(super) headers: Vec<(String, Header)>,
    pub(super) expect: Expect,
}

/// `/package.Service/Method` of every RPC of the gardien services.
pub(super) fn gardien_methods(pool: &DescriptorPool) -> Vec<(String, MethodDescriptor)> {
    pool.services()
        .filter(|s| s.package_name().starts_with("gardien."))
        .flat_map(|s| {
            s.methods()
                .map(|m| (format!("/{}/{}", s.full_name(), m.name()), m))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(super) fn token_prefix(field: &str) -> Option<&'static str> {
    Some(match field {
        "session_token" => "gds_",
        "reset_token" => "gdr_",
        "challenge_token" => "gdl_",
        "report_token" => "gdx_",
        "confirmation_token" => "gde_",
        _ => return None,
    })
}

/// A value that passes the field's own checks where one is easy to guess
/// from its name, so that the hostile value of another field is what the
/// server decides on.
pub(super) fn plausible_text(field: &FieldDescriptor) -> Option<String> {
    let name = field.name();
    if field.full_name().ends_with("CreateAccountRequest.password") || name == "page_token" {
        // Optional; an account without a password skips hashing.
        return None;
    }
    if let Some(prefix) = token_prefix(name) {
        return Some(format!("{prefix}{}", "A".repeat(43)));
    }
    Some(
        match name {
            "login" | "login_or_email" => "hostile-user",
            "email" => "hostile@example.com",
            "reachable_contact" => "hostile@example.net",
            "totp_code" => "123456",
            "recovery_code" => "abcd-efgh-ijkl",
            "phone" => "+33612345678",
            "country_code" => "FR",
            "postal_code" => "75001",
            "currency" => "EUR",
            "client_address" => "192.0.2.1",
            "assignee" => "agent-alice",
            "reference" => "T-ABCDEFGH",
            "paths" => "phone",
            n if n.contains("password") => "a wrong but long passphrase 77",
            n if n.ends_with("_id") || n.ends_with("_ids") => {
                return Some(uuid::Uuid::now_v7().to_string())
            }
            _ => "hostile test text",
        }
        .to_string(),
    )
}

pub(super) fn timestamp(desc: &MessageDescriptor, seconds: i64, nanos: i32) -> Value {
    let mut t = DynamicMessage::new(desc.clone());
    t.set_field_by_name("seconds", Value::I64(seconds));
    t.set_field_by_name("nanos", Value::I32(nanos));
    Value::Message(t)
}

pub(super) fn plausible(desc: &MessageDescriptor, now_secs: i64) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let one = match field.kind() {
            Kind::String => plausible_text(&field).map(Value::String),
            Kind::Enum(_) => Some(Value::EnumNumber(1)),
            Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                Some(timestamp(&m, now_secs - 60, 0))
            }
            Kind::Message(m) => Some(Value::Message(plausible(&m, now_secs))),
            Kind::Uint32 => Some(Value::U32(10)),
            Kind::Int64 => Some(Value::I64(100)),
            _ => None,
        };
        if let Some(one) = one {
            let value = if field.is_list() {
                Value::List(vec![one])
            } else {
                one
            };
            message.set_field(&field, value);
        }
    }
    message
}

pub(super) fn body_cases(method: &MethodDescriptor, now_secs: i64) -> Vec<Case> {
    let input = method.input();
    let base = plausible(&input, now_secs);
    let mut cases = vec![
        Case {
            label: "empty message".into(),
            body: Vec::new(),
            headers: Vec::new(),
            expect: Expect::Documented,
        },
        Case {
            label: "plausible message".into(),
            body: base.encode_to_vec(),
            headers: Vec::new(),
            expect: Expect::Documented,
        },
    ];
    for (label, body) in [
        ("a truncated varint", vec![0x08, 0xff]),
        ("a truncated length", vec![0x0a, 0x05, b'a']),
        ("field number 0", vec![0x00, 0x01]),
        ("wire type 7", vec![0x0f]),
        ("ten 0xff bytes", vec![0xff; 10]),
    ] {
        cases.push(Case {
            label: format!("body with {label}"),
            body,
            headers: Vec::new(),
            expect: Expect::Invalid,
        });
    }
    let mut unknown = base.encode_to_vec();
    unknown.extend(encode_len_delimited(999, &[0; 512]));
    cases.push(Case {
        label: "an unknown field".into(),
        body: unknown,
        headers: Vec::new(),
        expect: Expect::Documented,
    });
    for field in input.fields() {
        for empty_base in [true, false] {
            let mut rest = if empty_base {
                DynamicMessage::new(input.clone())
            } else {
                base.clone()
            };
            rest.clear_field(&field);
            let rest = rest.encode_to_vec();
            for v in variants(&field, field.name(), now_secs) {
                let body = [rest.as_slice(), v.bytes.as_slice()].concat();
                // On an empty base another field may be refused first.
                let expect = match (&v.expect, empty_base) {
                    (Expect::InvalidField(_), true) if !v.decode => Expect::Documented,
                    _ => v.expect,
                };
                cases.push(Case {
                    label: format!(
                        "{}{}: {}",
                        field.name(),
                        if empty_base { " (alone)" } else { "" },
                        v.label
                    ),
                    body,
                    headers: Vec::new(),
                    expect,
                });
            }
        }
    }
    cases
}

/// Hostile metadata, each on the plausible message; those replacing
/// `authorization` must be refused where the RPC needs a credential.
pub(super) fn metadata_cases(
    method: &MethodDescriptor,
    roles: &[Role],
    now_secs: i64,
) -> Vec<Case> {
    let body = plausible(&method.input(), now_secs).encode_to_vec();
    let ascii = |v: &[u8]| Header::Ascii(v.to_vec());
    let refused = if roles.contains(&Role::Anonymous) {
        Expect::Documented
    } else {
        Expect::Code(Code::Unauthenticated)
    };
    let token = |p: &str, rest: &str| ascii(format!("Bearer {p}{rest}").as_bytes());
    let a43 = "A".repeat(43);
    let auth: Vec<(&str, Header)> = vec![
        ("invalid UTF-8", ascii(b"Bearer \xff\xfe\xfd")),
        ("bytes without a scheme", ascii(b"\x80\x81\x82")),
        (
            "8 KiB",
            ascii(format!("Bearer {}", "A".repeat(8 * 1024)).as_bytes()),
        ),
        ("another scheme", ascii(b"Basic dXNlcjpwYXNz")),
        ("a scheme alone", ascii(b"Bearer")),
        ("a blank token", ascii(b"Bearer    ")),
        (
            "a tab for a space",
            ascii(format!("Bearer\tgds_{a43}").as_bytes()),
        ),
        ("a reset token", token("gdr_", &a43)),
        ("an unknown session", token("gds_", &a43)),
        ("an unknown credential", token("gdc_", &a43)),
        ("base64 garbage", token("gds_", &"!".repeat(43))),
        ("a token too long", token("gds_", &"A".repeat(4000))),
        ("an unknown prefix", token("xyz_", &a43)),
    ];
    let mut cases: Vec<Case> = auth
        .into_iter()
        .map(|(label, value)| Case {
            label: format!("authorization with {label}"),
            body: body.clone(),
            headers: vec![("authorization".into(), value)],
            expect: refused.clone(),
        })
        .collect();
    let many_hops = vec!["203.0.113.7"; 500].join(", ");
    let others: Vec<(&str, Vec<(String, Header)>)> = vec![
        (
            "x-request-id with invalid UTF-8",
            vec![("x-request-id".into(), ascii(b"\xff\xfe"))],
        ),
        (
            "x-request-id of 8 KiB",
            vec![("x-request-id".into(), ascii(&[b'r'; 8192]))],
        ),
        (
            "x-request-id with JSON",
            vec![("x-request-id".into(), ascii(b"{\"level\":\"ERROR\"}"))],
        ),
        (
            "x-request-id with a tab",
            vec![("x-request-id".into(), ascii(b"a b\tc"))],
        ),
        (
            "x-request-id-bin",
            vec![("x-request-id-bin".into(), Header::Binary(vec![0, 1, 0xff]))],
        ),
        (
            "x-forwarded-for with invalid UTF-8",
            vec![("x-forwarded-for".into(), ascii(b"\xff\xfe"))],
        ),
        (
            "x-forwarded-for with non-addresses",
            vec![(
                "x-forwarded-for".into(),
                ascii(b"not-an-ip, 999.1.1.1, ::ffff:1.2.3.4, ,,"),
            )],
        ),
        (
            "x-forwarded-for with 500 hops",
            vec![("x-forwarded-for".into(), ascii(many_hops.as_bytes()))],
        ),
        (
            "user-agent with invalid UTF-8",
            vec![("user-agent".into(), ascii(b"Mozilla\xff\xfe"))],
        ),
        (
            "user-agent of 8 KiB",
            vec![("user-agent".into(), ascii(&[b'u'; 8192]))],
        ),
        (
            "user-agent with a tab",
            vec![("user-agent".into(), ascii(b"a\tb"))],
        ),
        (
            "grpc-timeout garbage",
            vec![("grpc-timeout".into(), ascii(b"soon"))],
        ),
        (
            "grpc-timeout of 99999999 hours",
            vec![("grpc-timeout".into(), ascii(b"99999999H"))],
        ),
        (
            "200 extra headers",
            (0..200)
                .map(|i| (format!("x-hostile-{i}"), ascii(b"v")))
                .collect(),
        ),
        (
            "a 12 KiB header",
            vec![("x-hostile-padding".into(), ascii(&[b'p'; 12 * 1024]))],
        ),
    ];
    cases.extend(others.into_iter().map(|(label, headers)| Case {
        label: label.into(),
        body: body.clone(),
        headers,
        expect: Expect::Documented,
    }));
    // Over the server's 16 KiB HTTP/2 header-list limit: refused before
    // anything holds it.
    cases.push(Case {
        label: "a 64 KiB header".into(),
        body,
        headers: vec![("x-hostile-padding".into(), ascii(&[b'p'; 64 * 1024]))],
        expect: Expect::Code(Code::ResourceExhausted),
    });
    cases
}
