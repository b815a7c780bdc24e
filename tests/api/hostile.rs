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
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey},
    transport::Channel,
    Code, Status,
};

use crate::helpers::*;

/// The server's default `max_message_bytes`.
const MAX_MESSAGE: usize = 1024 * 1024;
const CONTROL: &str = "a\0b\r\nc\td\u{1b}[31m\u{7f}\u{85}\u{2028}e";
/// A newline and a forged JSON log line: must never become a line of its own.
const FORGED: &str = "forged-by-hostile-input";
const LOG_INJECTION: &str =
    "x\n{\"level\":\"ERROR\",\"fields\":{\"message\":\"forged-by-hostile-input\"}}\n";
/// A lone combining mark, a right-to-left override, zero-width characters, a
/// BOM and the replacement character.
const ODD_UNICODE: &str = "\u{301}abc\u{202e}gnp.exe\u{200b}\u{200d}\u{feff}\u{fffd}";

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

#[derive(Clone)]
enum Header {
    Ascii(Vec<u8>),
    Binary(Vec<u8>),
}

/// What a case must get beyond the common rules.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
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

struct Case {
    label: String,
    body: Vec<u8>,
    headers: Vec<(String, Header)>,
    expect: Expect,
}

/// `/package.Service/Method` of every RPC of the gardien services.
fn gardien_methods(pool: &DescriptorPool) -> Vec<(String, MethodDescriptor)> {
    pool.services()
        .filter(|s| s.package_name().starts_with("gardien."))
        .flat_map(|s| {
            s.methods()
                .map(|m| (format!("/{}/{}", s.full_name(), m.name()), m))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn token_prefix(field: &str) -> Option<&'static str> {
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
fn plausible_text(field: &FieldDescriptor) -> Option<String> {
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

fn timestamp(desc: &MessageDescriptor, seconds: i64, nanos: i32) -> Value {
    let mut t = DynamicMessage::new(desc.clone());
    t.set_field_by_name("seconds", Value::I64(seconds));
    t.set_field_by_name("nanos", Value::I32(nanos));
    Value::Message(t)
}

fn plausible(desc: &MessageDescriptor, now_secs: i64) -> DynamicMessage {
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

fn encode_len_delimited(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 10);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// The encoding of `field` alone, holding `value`.
fn field_alone(field: &FieldDescriptor, value: Value) -> Vec<u8> {
    let mut message = DynamicMessage::new(field.parent_message().clone());
    message.set_field(field, value);
    message.encode_to_vec()
}

/// A hostile value of one field: its encoding alone, and what it must get.
struct Variant {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
    /// Refused while decoding, before any other field is looked at.
    decode: bool,
}

fn hostile_strings(field: &FieldDescriptor) -> Vec<(String, String)> {
    let mut values = vec![
        ("empty".to_string(), String::new()),
        ("blank".to_string(), " \t  ".to_string()),
        ("10 KiB".to_string(), "a".repeat(10 * 1024)),
        (
            "just under the message limit".to_string(),
            "a".repeat(MAX_MESSAGE - 4096),
        ),
        (
            "over the message limit".to_string(),
            "a".repeat(MAX_MESSAGE + 1),
        ),
        (
            "control characters and NUL".to_string(),
            CONTROL.to_string(),
        ),
        ("log injection".to_string(), LOG_INJECTION.to_string()),
        ("odd Unicode".to_string(), ODD_UNICODE.to_string()),
        (
            "SQL and template syntax".to_string(),
            "' OR 1=1; --{{ 7*7 }}%s%n".to_string(),
        ),
    ];
    let prefix = token_prefix(field.name()).unwrap_or("gds_");
    if field.name().ends_with("token") {
        values.extend([
            (
                "token of another kind".into(),
                format!("gdc_{}", "A".repeat(43)),
            ),
            (
                "unknown token prefix".into(),
                format!("gdz_{}", "A".repeat(43)),
            ),
            (
                "token too long".into(),
                format!("{prefix}{}", "A".repeat(4096)),
            ),
            ("token too short".into(), prefix.to_string()),
            (
                "token with base64 garbage".into(),
                format!("{prefix}{}", "!".repeat(43)),
            ),
            (
                "token with multibyte characters".into(),
                format!("{prefix}{}A", "é".repeat(21)),
            ),
            (
                "token with standard base64".into(),
                "AAAAAAAAAAAAAAAAAAAAAA+/AA==".into(),
            ),
            (
                "token with NUL".into(),
                format!("{prefix}{}\0{}", "A".repeat(21), "A".repeat(21)),
            ),
        ]);
    }
    values
}

/// Every hostile value of `field`; `path` is its name as the server must
/// report it, `plausible_parent` the message it is set into.
fn variants(field: &FieldDescriptor, path: &str, now_secs: i64) -> Vec<Variant> {
    let mut out = Vec::new();
    let must_name = Expect::InvalidField(path.to_string());
    // Decoding names a member of a oneof by the oneof's name.
    let decoded_name = match field.containing_oneof() {
        Some(oneof) => Expect::InvalidField(match path.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.{}", oneof.name()),
            None => oneof.name().to_string(),
        }),
        None => must_name.clone(),
    };
    let number = field.number();
    match field.kind() {
        Kind::String => {
            for (label, text) in hostile_strings(field) {
                let value = Value::String(text);
                let value = if field.is_list() {
                    Value::List(vec![value])
                } else {
                    value
                };
                out.push(Variant {
                    label,
                    bytes: field_alone(field, value),
                    expect: Expect::Documented,
                    decode: false,
                });
            }
            for (label, raw) in [
                ("invalid UTF-8", &b"ab\xff\xfecd"[..]),
                ("UTF-8-encoded surrogate", &b"\xed\xa0\x80"[..]),
                ("overlong UTF-8", &b"\xc0\xaf"[..]),
            ] {
                out.push(Variant {
                    label: label.into(),
                    bytes: encode_len_delimited(number, raw),
                    expect: decoded_name.clone(),
                    decode: true,
                });
            }
            if field.is_list() {
                out.push(Variant {
                    label: "100k empty elements".into(),
                    bytes: field_alone(
                        field,
                        Value::List(vec![Value::String(String::new()); 100_000]),
                    ),
                    expect: Expect::Documented,
                    decode: false,
                });
                let id = uuid::Uuid::now_v7().to_string();
                out.push(Variant {
                    label: "20k identifiers".into(),
                    bytes: field_alone(field, Value::List(vec![Value::String(id); 20_000])),
                    expect: Expect::Documented,
                    decode: false,
                });
            }
        }
        Kind::Enum(_) => {
            let named = |n: i32| {
                if field.is_list() {
                    Value::List(vec![Value::EnumNumber(n)])
                } else {
                    Value::EnumNumber(n)
                }
            };
            for n in [999, -1, i32::MAX, i32::MIN] {
                out.push(Variant {
                    label: format!("enum value {n}"),
                    bytes: field_alone(field, named(n)),
                    expect: must_name.clone(),
                    decode: false,
                });
            }
            if field.is_list() {
                out.push(Variant {
                    label: "UNSPECIFIED in the list".into(),
                    bytes: field_alone(field, named(0)),
                    expect: must_name.clone(),
                    decode: false,
                });
                for (n, expect) in [(1, Expect::Documented), (999, must_name.clone())] {
                    out.push(Variant {
                        label: format!("100k elements of {n}"),
                        bytes: field_alone(field, Value::List(vec![Value::EnumNumber(n); 100_000])),
                        expect,
                        decode: false,
                    });
                }
            }
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            let invalid = [
                ("i64::MIN seconds", i64::MIN, 0),
                ("i64::MAX seconds", i64::MAX, 0),
                ("before 1970", -1, 0),
                ("year 0", -62_167_219_200, 0),
                ("year 10000", 253_402_300_800, 0),
                ("negative nanos", now_secs, -1),
                ("nanos of a whole second", now_secs, 1_000_000_000),
            ];
            for (label, seconds, nanos) in invalid {
                out.push(Variant {
                    label: label.into(),
                    bytes: field_alone(field, timestamp(&m, seconds, nanos)),
                    expect: must_name.clone(),
                    decode: false,
                });
            }
            for (label, seconds) in [("1970-01-01", 0), ("9999-12-31", 253_402_300_799)] {
                out.push(Variant {
                    label: label.into(),
                    bytes: field_alone(field, timestamp(&m, seconds, 0)),
                    expect: Expect::Documented,
                    decode: false,
                });
            }
        }
        Kind::Message(m) => {
            // Each hostile value of a part, inside an otherwise plausible message.
            let base = plausible(&m, now_secs);
            for inner in m.fields() {
                let mut rest = base.clone();
                rest.clear_field(&inner);
                let rest = rest.encode_to_vec();
                for v in variants(&inner, &format!("{path}.{}", inner.name()), now_secs) {
                    let nested = [rest.as_slice(), v.bytes.as_slice()].concat();
                    out.push(Variant {
                        label: format!("{}: {}", inner.name(), v.label),
                        bytes: encode_len_delimited(number, &nested),
                        expect: v.expect,
                        decode: v.decode,
                    });
                }
            }
            out.push(Variant {
                label: "empty message".into(),
                bytes: encode_len_delimited(number, &[]),
                expect: Expect::Documented,
                decode: false,
            });
        }
        Kind::Int64 => {
            for n in [i64::MIN, i64::MAX, -1] {
                out.push(Variant {
                    label: format!("{n}"),
                    bytes: field_alone(field, Value::I64(n)),
                    expect: Expect::Documented,
                    decode: false,
                });
            }
        }
        Kind::Uint32 => {
            out.push(Variant {
                label: "u32::MAX".into(),
                bytes: field_alone(field, Value::U32(u32::MAX)),
                expect: Expect::Documented,
                decode: false,
            });
        }
        Kind::Bool => out.push(Variant {
            label: "true".into(),
            bytes: field_alone(field, Value::Bool(true)),
            expect: Expect::Documented,
            decode: false,
        }),
        other => panic!("{}: no hostile values for {other:?}", field.full_name()),
    }
    // The right number with the wrong wire type.
    let mut wrong = Vec::new();
    let wire = if field.kind() == Kind::String || matches!(field.kind(), Kind::Message(_)) {
        prost::encoding::encode_key(number, prost::encoding::WireType::Varint, &mut wrong);
        prost::encoding::encode_varint(7, &mut wrong);
        "varint"
    } else {
        wrong = encode_len_delimited(number, b"xyz");
        "length-delimited"
    };
    if !field.is_packed() || wire == "varint" {
        out.push(Variant {
            label: format!("wire type {wire}"),
            bytes: wrong,
            expect: decoded_name,
            decode: true,
        });
    }
    out
}

fn body_cases(method: &MethodDescriptor, now_secs: i64) -> Vec<Case> {
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
fn metadata_cases(method: &MethodDescriptor, roles: &[Role], now_secs: i64) -> Vec<Case> {
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
