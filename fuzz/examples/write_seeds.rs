//! Writes the seed corpus of `validate_request`: for each RPC, its selector
//! byte followed by an empty body, a plausible request (every field set to a
//! value of the right shape) and an extreme one (times, enums and integers
//! at their limits), built from the descriptor set.
//!
//!     cargo run --example write_seeds -- corpus/validate_request

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};

fn plausible(desc: &MessageDescriptor, extreme: bool) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let name = field.name();
        let one = match field.kind() {
            Kind::String if name.ends_with("_id") || name.ends_with("_ids") => {
                Value::String(uuid::Uuid::nil().to_string())
            }
            Kind::String if name == "page_token" => continue,
            Kind::String if name.ends_with("token") => {
                Value::String(format!("gds_{}", "A".repeat(43)))
            }
            Kind::String => Value::String(
                match name {
                    "email" => "jean@example.fr",
                    "phone" => "+33612345678",
                    "country_code" => "FR",
                    "currency" => "EUR",
                    "totp_code" => "123456",
                    "client_address" => "192.0.2.1",
                    "paths" => "phone",
                    n if n.contains("password") => "correct horse battery staple 42",
                    _ => "jean.martin",
                }
                .to_string(),
            ),
            Kind::Enum(_) => Value::EnumNumber(if extreme { -1 } else { 1 }),
            Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                let mut t = DynamicMessage::new(m);
                let seconds = if extreme { i64::MAX } else { 1_799_999_000 };
                t.set_field_by_name("seconds", Value::I64(seconds));
                Value::Message(t)
            }
            Kind::Message(m) => Value::Message(plausible(&m, extreme)),
            Kind::Uint32 => Value::U32(if extreme { u32::MAX } else { 10 }),
            Kind::Int64 => Value::I64(if extreme { i64::MIN } else { 1999 }),
            Kind::Bool => Value::Bool(true),
            _ => continue,
        };
        let value = if field.is_list() {
            Value::List(vec![one])
        } else {
            one
        };
        message.set_field(&field, value);
    }
    message
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: write_seeds DIR");
    std::fs::create_dir_all(&dir).expect("cannot create the corpus folder");
    let pool = DescriptorPool::decode(gardien::proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let methods = gardien::grpc::validate::METHODS;
    for (index, path) in methods.iter().enumerate() {
        let (service, method) = path[1..].split_once('/').expect("a method path");
        let input = pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .expect("every method is in the descriptor set")
            .input();
        let selector = u8::try_from(index).expect("fewer than 256 RPCs");
        let seeds = [
            ("empty", Vec::new()),
            ("plausible", plausible(&input, false).encode_to_vec()),
            ("extreme", plausible(&input, true).encode_to_vec()),
        ];
        for (suffix, body) in seeds {
            let mut seed = vec![selector];
            seed.extend(body);
            std::fs::write(format!("{dir}/{method}-{suffix}"), seed).expect("cannot write a seed");
        }
    }
    println!("{} seeds in {dir}", methods.len() * 3);
}
