//! A software WebAuthn authenticator for tests and the benchmark: ES256
//! keys, attestation "none", user presence and verification always given,
//! a signature counter the caller can set. It takes the options JSON
//! gardien answers (`{"publicKey": …}`) and answers the JSON a browser's
//! `PublicKeyCredential` gives.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One passkey held by the software authenticator.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The user handle the relying party gave at registration.
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    /// The next assertion signs `counter + 1` (0 stays 0: no counter).
    pub counter: u32,
    /// Whether the user-verification flag is set.
    pub user_verified: bool,
}

fn options(json: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("options: {e}"))?;
    Ok(value.get("publicKey").cloned().unwrap_or(value))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    let mut at = value;
    for key in path {
        at = at
            .get(key)
            .ok_or_else(|| format!("options: no {}", path.join(".")))?;
    }
    at.as_str()
        .ok_or_else(|| format!("options: {} is not text", path.join(".")))
}

/// CBOR: a head of major type `major` with argument `value`.
fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend([major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((value as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend((value as u32).to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        head(out, 0, value as u64);
    } else {
        head(out, 1, (-1 - value) as u64);
    }
}

fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    head(out, 2, value.len() as u64);
    out.extend_from_slice(value);
}

fn string(out: &mut Vec<u8>, value: &str) {
    head(out, 3, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": kind,
        "challenge": challenge,
        "origin": origin,
        "crossOrigin": false,
    }))
    .expect("JSON")
}

impl SoftPasskey {
    /// Answers `navigator.credentials.create` for `creation_options_json`
    /// as a page at `origin` would get it: the new passkey and the
    /// credential JSON to send back.
    pub fn register(creation_options_json: &str, origin: &str) -> Result<(Self, String), String> {
        Self::register_with_counter(creation_options_json, origin, 0)
    }

    /// [`Self::register`] with a signature counter at `counter` (0: none).
    pub fn register_with_counter(
        creation_options_json: &str,
        origin: &str,
        counter: u32,
    ) -> Result<(Self, String), String> {
        let options = options(creation_options_json)?;
        let challenge = text(&options, &["challenge"])?.to_string();
        let rp_id = text(&options, &["rp", "id"])?.to_string();
        let user_handle = B64
            .decode(text(&options, &["user", "id"])?)
            .map_err(|e| format!("options: user.id: {e}"))?;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "key generation failed".to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "key loading failed".to_string())?;
        let mut credential_id = vec![0u8; 32];
        rng.fill(&mut credential_id)
            .map_err(|_| "randomness failed".to_string())?;
        let passkey = Self {
            key,
            credential_id,
            user_handle,
            rp_id,
            counter,
            user_verified: true,
        };
        let json = passkey.attestation(&challenge, origin);
        Ok((passkey, json))
    }

    /// This same credential, offered again to a new registration ceremony.
    pub fn register_again(
        &self,
        creation_options_json: &str,
        origin: &str,
    ) -> Result<String, String> {
        let options = options(creation_options_json)?;
        Ok(self.attestation(text(&options, &["challenge"])?, origin))
    }

    fn attestation(&self, challenge: &str, origin: &str) -> String {
        let point = self.key.public_key().as_ref(); // 0x04 || x || y
        let mut cose = Vec::new();
        head(&mut cose, 5, 5);
        int(&mut cose, 1);
        int(&mut cose, 2); // kty: EC2
        int(&mut cose, 3);
        int(&mut cose, -7); // alg: ES256
        int(&mut cose, -1);
        int(&mut cose, 1); // crv: P-256
        int(&mut cose, -2);
        bytes(&mut cose, &point[1..33]);
        int(&mut cose, -3);
        bytes(&mut cose, &point[33..65]);

        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(UP | UV | AT);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(cose);

        let mut object = Vec::new();
        head(&mut object, 5, 3);
        string(&mut object, "fmt");
        string(&mut object, "none");
        string(&mut object, "attStmt");
        head(&mut object, 5, 0);
        string(&mut object, "authData");
        bytes(&mut object, &auth_data);

        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(object),
                "clientDataJSON": B64.encode(client_data("webauthn.create", challenge, origin)),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get` for `request_options_json` as a
    /// page at `origin` would get it: the assertion JSON to send back.
    pub fn assert(&mut self, request_options_json: &str, origin: &str) -> Result<String, String> {
        let options = options(request_options_json)?;
        let challenge = text(&options, &["challenge"])?.to_string();
        Ok(self.sign(&challenge, origin))
    }

    /// An assertion over `challenge` (base64url, as the options give it).
    pub fn sign(&mut self, challenge: &str, origin: &str) -> String {
        if self.counter > 0 {
            self.counter += 1;
        }
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(if self.user_verified { UP | UV } else { UP });
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("signing");
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_heads_take_the_shortest_form() {
        let mut out = Vec::new();
        int(&mut out, -7);
        int(&mut out, 24);
        int(&mut out, 500);
        assert_eq!(out, [0x26, 0x18, 24, 0x19, 0x01, 0xf4]);
    }

    #[test]
    fn registration_answers_the_challenge_for_the_origin() {
        let options = r#"{"publicKey":{"challenge":"Y2hhbGxlbmdl","rp":{"id":"localhost","name":"x"},"user":{"id":"AAECAw","name":"u","displayName":"u"}}}"#;
        let (passkey, json) = SoftPasskey::register(options, "http://localhost:8080").unwrap();
        assert_eq!(passkey.user_handle, [0, 1, 2, 3]);
        let value: Value = serde_json::from_str(&json).unwrap();
        let client = B64
            .decode(value["response"]["clientDataJSON"].as_str().unwrap())
            .unwrap();
        let client: Value = serde_json::from_slice(&client).unwrap();
        assert_eq!(client["challenge"], "Y2hhbGxlbmdl");
        assert_eq!(client["origin"], "http://localhost:8080");
        assert_eq!(client["type"], "webauthn.create");
    }
}
