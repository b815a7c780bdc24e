//! The protobuf codec of both services: prost's, except that a request body
//! that does not decode (invalid UTF-8 in a string, a wrong wire type, a
//! truncated field) answers INVALID_ARGUMENT naming the field, instead of
//! the INTERNAL that tonic answers. A malformed request is the caller's
//! error; INTERNAL stays for the server's own failures, so that it keeps
//! meaning something in alerts.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    codec::{BufferSettings, DecodeBuf, Decoder},
    Status,
};
use tonic_prost::{ProstCodec, ProstEncoder};

use crate::domain::error::{Error, FieldViolation};

/// Named in `build.rs` (`codec_path`) for every generated service and client.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(PhantomData)
    }
}

#[derive(Debug, Clone)]
pub struct RequestDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| malformed(&error))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// INVALID_ARGUMENT for a body that is not a valid message, naming the
/// field where decoding failed when prost knows it.
pub fn malformed(error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let (field, cause) = field_path(&text);
    let description = format!("is not a valid protobuf value: {cause}");
    match field {
        Some(field) => Error::InvalidArgument(vec![FieldViolation::new(field, description)]).into(),
        None => super::status::malformed_request(cause),
    }
}

/// The field path (`postal_address.line1`) and the cause in prost's
/// `failed to decode Protobuf message: PostalAddress.line1:
/// CreateAccountRequest.postal_address: <cause>`, innermost first.
fn field_path(text: &str) -> (Option<String>, &str) {
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut fields = Vec::new();
    while let Some((location, tail)) = rest.split_once(": ") {
        let Some((message, field)) = location.split_once('.') else {
            break;
        };
        let identifier =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !identifier(message) || !identifier(field) {
            break;
        }
        fields.push(field);
        rest = tail;
    }
    fields.reverse();
    ((!fields.is_empty()).then(|| fields.join(".")), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_of_a_nested_field_is_outermost_first() {
        assert_eq!(
            field_path(
                "failed to decode Protobuf message: PostalAddress.line1: \
                 CreateAccountRequest.postal_address: invalid string value: data is not UTF-8 encoded"
            ),
            (
                Some("postal_address.line1".to_string()),
                "invalid string value: data is not UTF-8 encoded"
            )
        );
    }

    #[test]
    fn an_error_outside_any_field_names_none() {
        assert_eq!(
            field_path("failed to decode Protobuf message: invalid varint"),
            (None, "invalid varint")
        );
    }

    #[test]
    fn invalid_utf8_answers_invalid_argument_naming_the_field() {
        use tonic_types::StatusExt;
        // Field 1 (login) holding the bytes ff fe.
        let error =
            crate::proto::accountsecurity::v1::LoginRequest::decode(&[0x0a, 0x02, 0xff, 0xfe][..])
                .unwrap_err();
        let status = malformed(&error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["login"]);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use tonic_types::StatusExt;

    use super::*;
    use crate::proto::{accountsecurity::v1 as pb, support::v1 as spb};

    fn refused_by_name<T: Message + Default>(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Err(error) = T::decode(bytes) {
            let status = malformed(&error);
            prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
            if let Some(request) = status.get_details_bad_request() {
                prop_assert!(request.field_violations.iter().all(|v| !v.field.is_empty()));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_body_decodes_or_is_invalid_argument(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            refused_by_name::<pb::CreateAccountRequest>(&bytes)?;
            refused_by_name::<pb::VerifyLoginChallengeRequest>(&bytes)?;
            refused_by_name::<pb::ListSecurityEventsRequest>(&bytes)?;
            refused_by_name::<pb::UpdateContactDetailsRequest>(&bytes)?;
            refused_by_name::<spb::ListTicketQueueRequest>(&bytes)?;
        }

        #[test]
        fn any_error_text_splits_without_panicking(text in "\\PC{0,200}") {
            let (field, cause) = field_path(&text);
            prop_assert!(text.ends_with(cause));
            prop_assert!(field.is_none_or(|f| !f.is_empty()));
        }
    }
}
