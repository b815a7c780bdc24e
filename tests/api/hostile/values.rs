//! The hostile values of one field: empty, blank, oversized, control
//! characters, log injection, odd Unicode, invalid UTF-8, malformed tokens,
//! out-of-range enums and numbers, far timestamps, huge repeated fields.

use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value};

use super::cases::*;

pub(super) fn encode_len_delimited(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 10);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// The encoding of `field` alone, holding `value`.
pub(super) fn field_alone(field: &FieldDescriptor, value: Value) -> Vec<u8> {
    let mut message = DynamicMessage::new(field.parent_message().clone());
    message.set_field(field, value);
    message.encode_to_vec()
}

/// A hostile value of one field: its encoding alone, and what it must get.
pub(super) struct Variant {
    pub(super) label: String,
    pub(super) bytes: Vec<u8>,
    pub(super) expect: Expect,
    /// Refused while decoding, before any other field is looked at.
    pub(super) decode: bool,
}

pub(super) fn hostile_strings(field: &FieldDescriptor) -> Vec<(String, String)> {
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
pub(super) fn variants(field: &FieldDescriptor, path: &str, now_secs: i64) -> Vec<Variant> {
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
