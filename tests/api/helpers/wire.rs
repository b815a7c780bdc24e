//! The protobuf tap: every request and response of the test clients is
//! decoded against the descriptor set, and its secret fields registered.

use super::*;

/// What a gRPC method takes and answers, and each message's fields, from
/// the descriptor set served through reflection.
struct Schema {
    methods: std::collections::HashMap<String, (String, String)>,
    messages: std::collections::HashMap<String, Vec<prost_types::FieldDescriptorProto>>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use prost::Message;
        fn add(
            messages: &mut std::collections::HashMap<
                String,
                Vec<prost_types::FieldDescriptorProto>,
            >,
            scope: &str,
            message: &prost_types::DescriptorProto,
        ) {
            let name = format!("{scope}.{}", message.name());
            for nested in &message.nested_type {
                add(messages, &name, nested);
            }
            messages.insert(name, message.field.clone());
        }
        let set =
            prost_types::FileDescriptorSet::decode(gardien::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut schema = Schema {
            methods: Default::default(),
            messages: Default::default(),
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    schema.methods.insert(
                        format!("/{package}.{}/{}", service.name(), method.name()),
                        (method.input_type().into(), method.output_type().into()),
                    );
                }
            }
            for message in &file.message_type {
                add(&mut schema.messages, &format!(".{package}"), message);
            }
        }
        schema
    })
}

/// Whether a proto field holds a secret, by its name: passwords, tokens,
/// codes and TOTP secrets, but not paging tokens nor postal or country codes.
pub fn is_secret_field(name: &str) -> bool {
    const NOT_SECRET: [&str; 4] = [
        "page_token",
        "next_page_token",
        "postal_code",
        "country_code",
    ];
    !NOT_SECRET.contains(&name)
        && (name.contains("password")
            || name.contains("secret")
            || name.contains("otpauth")
            || name.ends_with("_token")
            || name.ends_with("_code")
            || name.ends_with("_codes"))
}

/// Registers the secret fields of an encoded message of type `type_name`
/// (and of the messages inside it; everything inside a secret field is secret).
fn register_secret_fields(type_name: &str, mut bytes: &[u8], inside_secret: bool) {
    use prost::encoding::decode_varint;
    use prost_types::field_descriptor_proto::Type;
    let Some(fields) = schema().messages.get(type_name) else {
        return;
    };
    while !bytes.is_empty() {
        let Ok(key) = decode_varint(&mut bytes) else {
            return;
        };
        let skip = match key & 7 {
            0 => decode_varint(&mut bytes).map(|_| 0).unwrap_or(usize::MAX),
            1 => 8,
            5 => 4,
            2 => {
                let Ok(len) = decode_varint(&mut bytes) else {
                    return;
                };
                let len = len as usize;
                if bytes.len() < len {
                    return;
                }
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                let number = (key >> 3) as i32;
                if let Some(field) = fields.iter().find(|f| f.number() == number) {
                    let secret = inside_secret || is_secret_field(field.name());
                    match field.r#type() {
                        Type::String if secret => {
                            register_secret(&String::from_utf8_lossy(value));
                        }
                        Type::String if field.name().ends_with("_json") => {
                            register_webauthn_secrets(value);
                        }
                        Type::Message => register_secret_fields(field.type_name(), value, secret),
                        _ => {}
                    }
                }
                0
            }
            _ => usize::MAX,
        };
        if skip > bytes.len() {
            return;
        }
        bytes = &bytes[skip..];
    }
}

/// The WebAuthn JSON of the passkey RPCs (options, attestations,
/// assertions): its challenge, signature, client data and attestation
/// object must not reach the logs; the options and credentials as a whole
/// are registered too.
fn register_webauthn_secrets(value: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(value) else {
        return;
    };
    let options = json.get("publicKey").unwrap_or(&json);
    for text in [
        &options["challenge"],
        &json["response"]["signature"],
        &json["response"]["clientDataJSON"],
        &json["response"]["attestationObject"],
        &json["response"]["authenticatorData"],
    ]
    .into_iter()
    .filter_map(|v| v.as_str())
    {
        register_secret(text);
    }
    register_secret(&String::from_utf8_lossy(value));
}

/// A body that passes through unchanged while registering the secret fields
/// of each gRPC message in it.
pub struct Tap {
    inner: tonic::body::Body,
    message_type: Option<String>,
    pending: Vec<u8>,
}

impl Tap {
    fn new(inner: tonic::body::Body, message_type: Option<String>) -> Self {
        Self {
            inner,
            message_type,
            pending: Vec::new(),
        }
    }

    fn inspect(&mut self, data: &[u8]) {
        let Some(message_type) = &self.message_type else {
            return;
        };
        self.pending.extend_from_slice(data);
        // Length-prefixed messages: a compression flag and a 4-byte length.
        while self.pending.len() >= 5 {
            let len = u32::from_be_bytes(self.pending[1..5].try_into().unwrap()) as usize;
            if self.pending.len() < 5 + len {
                break;
            }
            let frame: Vec<u8> = self.pending.drain(..5 + len).collect();
            if frame[0] == 0 {
                register_secret_fields(message_type, &frame[5..], false);
            }
        }
    }
}

impl http_body::Body for Tap {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.inspect(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A channel that registers every secret crossing it (see [`Tap`]) and
/// every bearer token it carries.
#[derive(Clone)]
pub struct Recorded {
    inner: Channel,
}

impl Recorded {
    pub fn new(inner: Channel) -> Self {
        Self { inner }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Recorded {
    type Response = http::Response<Tap>;
    type Error = tonic::transport::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some((_, token)) = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
        {
            register_secret(token);
        }
        let (input, output) = schema().methods.get(request.uri().path()).cloned().unzip();
        let request = request.map(|body| tonic::body::Body::new(Tap::new(body, input)));
        let future = tower::Service::call(&mut self.inner, request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| Tap::new(body, output)))
        })
    }
}
