//! The checks of the passkey requests: WebAuthn JSON parsed here, so that
//! an unreadable answer is `INVALID_ARGUMENT` naming its field.

use secrecy::SecretString;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{one, optional_password, required, Validate};
use crate::{
    domain::{
        error::{Error, FieldViolation},
        types::{parse_id, parse_line},
    },
    proto::accountsecurity::v1 as pb,
};

/// The largest WebAuthn answer taken (attestation objects are a few KiB).
const MAX_JSON_BYTES: usize = 64 * 1024;
const MAX_NAME_CHARS: usize = 64;

/// A WebAuthn JSON answer of type `T` in `field`.
pub(crate) fn webauthn_json<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &str,
) -> Result<T, Error> {
    required(field, value)?;
    if value.len() > MAX_JSON_BYTES {
        return Err(Error::invalid(field, "must be at most 65536 bytes"));
    }
    serde_json::from_str(value).map_err(|_| {
        Error::invalid(
            field,
            "must be the PublicKeyCredential JSON the browser answered (binary members base64url)",
        )
    })
}

/// Characters that reorder the text around them (a name shown in an e-mail
/// must read as typed).
fn reorders_text(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn name(raw: &str) -> Result<String, Error> {
    let name = one(parse_line("name", raw, MAX_NAME_CHARS))?;
    if name.chars().any(reorders_text) {
        return Err(Error::invalid(
            "name",
            "must not contain bidirectional control characters",
        ));
    }
    if name.is_empty() {
        return Err(Error::InvalidArgument(vec![FieldViolation::new(
            "name",
            "is required",
        )]));
    }
    Ok(name)
}

impl Validate for pb::BeginPasskeyRegistrationRequest {
    type Valid = Option<SecretString>;
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        optional_password(self.current_password)
    }
}

pub struct FinishRegistration {
    pub ceremony_token: String,
    pub credential: RegisterPublicKeyCredential,
    pub name: String,
}

impl Validate for pb::FinishPasskeyRegistrationRequest {
    type Valid = FinishRegistration;
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        required("ceremony_token", &self.ceremony_token)?;
        let name = name(&self.name)?;
        let credential = webauthn_json("credential_json", &self.credential_json)?;
        Ok(FinishRegistration {
            ceremony_token: self.ceremony_token,
            credential,
            name,
        })
    }
}

impl Validate for pb::ListPasskeysRequest {
    type Valid = ();
    fn validate(self, _now_ms: i64) -> Result<(), Error> {
        Ok(())
    }
}

impl Validate for pb::RenamePasskeyRequest {
    type Valid = (Uuid, String, Option<SecretString>);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let id = one(parse_id("passkey_id", &self.passkey_id))?;
        let name = name(&self.name)?;
        Ok((id, name, optional_password(self.current_password)?))
    }
}

impl Validate for pb::RemovePasskeyRequest {
    type Valid = (Uuid, Option<SecretString>);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let id = one(parse_id("passkey_id", &self.passkey_id))?;
        Ok((id, optional_password(self.current_password)?))
    }
}

impl Validate for pb::BeginPasskeyLoginRequest {
    type Valid = ();
    fn validate(self, _now_ms: i64) -> Result<(), Error> {
        Ok(())
    }
}

impl Validate for pb::FinishPasskeyLoginRequest {
    type Valid = (String, PublicKeyCredential);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        required("ceremony_token", &self.ceremony_token)?;
        let assertion = webauthn_json("assertion_json", &self.assertion_json)?;
        Ok((self.ceremony_token, assertion))
    }
}

impl Validate for pb::GetResetPasskeyOptionsRequest {
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        required("reset_token", &self.reset_token)?;
        Ok(self.reset_token)
    }
}
