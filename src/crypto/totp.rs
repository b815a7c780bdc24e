//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1,
//! 6 digits, 30-second steps, the server clock ±1 step.
//!
//! The codes, the base32 form and the otpauth URI come from `totp-rs`. What
//! is ours: time comes in as Unix milliseconds and [`verify`] says which step
//! a code matched, because accepting each step once per account is the
//! caller's compare-and-set in the database (replay protection).

use qrcodegen::{QrCode, QrCodeEcc};
use rand::{rngs::OsRng, RngCore};
use secrecy::SecretBox;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Length of a time step (RFC 6238 default, what authenticator apps assume).
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Secret length: 160 bits, the HMAC-SHA-1 output size (RFC 4226 §4).
pub const SECRET_LEN: usize = 20;

/// Pixels per QR module: large enough to scan from a screen.
const QR_SCALE: i32 = 8;
/// Light modules around the symbol, the minimum the QR standard asks for.
const QR_QUIET_ZONE: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    // Neither message carries the URI: it holds the secret.
    #[error("the otpauth URI is too long for a QR code")]
    UriTooLong,
    #[error("cannot encode the QR code as PNG")]
    Png(#[source] png::EncodingError),
}

/// A fresh 160-bit secret from the OS CSPRNG, filled in place on the heap
/// so no copy is left on the stack; it is zeroed when dropped.
pub fn generate_secret() -> SecretBox<[u8; SECRET_LEN]> {
    SecretBox::init_with_mut(|secret: &mut [u8; SECRET_LEN]| OsRng.fill_bytes(secret))
}

/// RFC 4648 base32, uppercase, without padding: the form authenticator apps
/// expect in an otpauth URI and for manual entry.
pub fn to_base32(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

/// The time step of a Unix time in milliseconds (floor division, so times
/// before the epoch do not round towards step 0).
pub fn step_at(now_ms: i64) -> i64 {
    now_ms.div_euclid(STEP_SECS * 1000)
}

/// The generator for `secret` (its copy is zeroed when dropped). Unchecked:
/// the RFC test secret and a stored secret of any length must still work.
fn generator(secret: &[u8], digits: usize, issuer: Option<&str>, label: &str) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        1,
        STEP_SECS.unsigned_abs(),
        secret.to_vec(),
        issuer.map(str::to_owned),
        label.to_owned(),
    )
}

/// The code of `generator` at time step `step`, zero-padded; empty (which
/// matches nothing) before the epoch, where the server clock never is.
fn code_of(generator: &TOTP, step: i64) -> String {
    u64::try_from(step)
        .ok()
        .and_then(|step| step.checked_mul(STEP_SECS.unsigned_abs()))
        .map(|time| generator.generate(time))
        .unwrap_or_default()
}

/// The code of `secret` at time step `step` with `digits` digits. RFC 4226
/// allows 6 to 8 digits; any other count gives an empty code.
pub fn code_at_step(secret: &[u8], step: i64, digits: usize) -> String {
    if !(6..=8).contains(&digits) {
        return String::new();
    }
    code_of(&generator(secret, digits, None, ""), step)
}

/// Checks a 6-digit code at the step of `now_ms` and the steps either side
/// (clock drift and typing time). Returns the matched step, for the caller's
/// once-only compare-and-set; `None` when the code is wrong or is not exactly
/// six ASCII digits.
///
/// All three candidates are computed and compared in constant time, so the
/// timing says nothing about how close a wrong code was.
pub fn verify(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generator = generator(secret, DIGITS, None, "");
    let now = step_at(now_ms);
    let mut matched = None;
    // Oldest first: on the rare code that matches two steps, the earlier one
    // burns fewer future steps in the caller's compare-and-set.
    for step in [now - 1, now, now + 1] {
        let candidate = code_of(&generator, step);
        let equal = bool::from(candidate.as_bytes().ct_eq(code.as_bytes()));
        if equal && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The provisioning URI of Google's Key Uri Format, which authenticator apps
/// read from the QR code. Issuer and label are percent-encoded, so a colon in
/// either cannot be mistaken for the separator; SHA-1, 6 digits and 30 s are
/// the format's defaults and so are not written out.
pub fn otpauth_uri(secret: &[u8], issuer: &str, label: &str) -> String {
    generator(secret, DIGITS, Some(issuer), label).get_url()
}

/// The URI as a black-on-white QR code PNG (8-bit greyscale, medium error
/// correction, quiet zone included).
pub fn qr_png(uri: &str) -> Result<Vec<u8>, TotpError> {
    let qr = QrCode::encode_text(uri, QrCodeEcc::Medium).map_err(|_| TotpError::UriTooLong)?;
    // At most (177 + 8) * 8 = 1480 pixels a side, so none of this overflows.
    let side = (qr.size() + 2 * QR_QUIET_ZONE) * QR_SCALE;
    let mut pixels = Vec::with_capacity(usize::try_from(side * side).unwrap_or(0));
    for y in 0..side {
        for x in 0..side {
            // Out-of-range modules read as light, which draws the quiet zone.
            let dark = qr.get_module(x / QR_SCALE - QR_QUIET_ZONE, y / QR_SCALE - QR_QUIET_ZONE);
            pixels.push(if dark { 0x00 } else { 0xff });
        }
    }

    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side.unsigned_abs(), side.unsigned_abs());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(TotpError::Png)?;
    writer.write_image_data(&pixels).map_err(TotpError::Png)?;
    writer.finish().map_err(TotpError::Png)?;
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use sha1::{Digest, Sha1};

    /// The RFC 6238 Appendix B SHA-1 secret.
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    /// Some time well inside a step, 1111111111 s after the epoch.
    const NOW_MS: i64 = 1_111_111_111_000;

    #[test]
    fn codes_match_rfc_6238_appendix_b_sha1_vectors() {
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (unix_secs, expected) in vectors {
            let step = step_at(unix_secs * 1000);
            assert_eq!(
                code_at_step(RFC_SECRET, step, 8),
                expected,
                "at {unix_secs}"
            );
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_of_the_eight() {
        assert_eq!(code_at_step(RFC_SECRET, step_at(59_000), DIGITS), "287082");
        assert_eq!(
            code_at_step(RFC_SECRET, step_at(1_111_111_109_000), DIGITS),
            "081804"
        );
    }

    #[test]
    fn steps_are_floored_thirty_second_windows() {
        assert_eq!(step_at(0), 0);
        assert_eq!(step_at(29_999), 0);
        assert_eq!(step_at(30_000), 1);
        assert_eq!(step_at(-1), -1);
    }

    /// HMAC (RFC 2104) and dynamic truncation (RFC 4226 §5.3) written out on
    /// bare SHA-1, so a mistake in how the module drives the `hmac` crate
    /// cannot hide behind the same mistake here.
    fn reference_code(key: &[u8], counter: u64) -> String {
        const BLOCK: usize = 64;
        assert!(
            key.len() <= BLOCK,
            "keys here are shorter than a SHA-1 block"
        );
        let mut padded = [0u8; BLOCK];
        padded[..key.len()].copy_from_slice(key);
        let ipad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha1::new()
            .chain_update(&ipad)
            .chain_update(counter.to_be_bytes())
            .finalize();
        let mac = Sha1::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize();
        let offset = (mac[19] & 0x0f) as usize;
        let word = u32::from_be_bytes(mac[offset..offset + 4].try_into().unwrap());
        format!("{:06}", (word & 0x7fff_ffff) % 1_000_000)
    }

    #[test]
    fn codes_agree_with_an_independent_hmac_sha1_for_a_random_secret() {
        let secret = generate_secret();
        let start = step_at(NOW_MS);
        for step in start..start + 50 {
            assert_eq!(
                code_at_step(secret.expose_secret(), step, DIGITS),
                reference_code(secret.expose_secret(), step as u64),
                "at step {step}"
            );
        }
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.expose_secret().len(), 20);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn verify_accepts_the_previous_current_and_next_step() {
        let now = step_at(NOW_MS);
        for step in [now - 1, now, now + 1] {
            let code = code_at_step(RFC_SECRET, step, DIGITS);
            assert_eq!(verify(RFC_SECRET, &code, NOW_MS), Some(step), "step {step}");
        }
    }

    #[test]
    fn verify_refuses_codes_two_steps_away() {
        let now = step_at(NOW_MS);
        for step in [now - 2, now + 2] {
            let code = code_at_step(RFC_SECRET, step, DIGITS);
            assert_eq!(verify(RFC_SECRET, &code, NOW_MS), None, "step {step}");
        }
    }

    #[test]
    fn verify_refuses_another_secrets_code() {
        let code = code_at_step(b"another secret, 20 b", step_at(NOW_MS), DIGITS);
        assert_ne!(code, code_at_step(RFC_SECRET, step_at(NOW_MS), DIGITS));
        assert_eq!(verify(RFC_SECRET, &code, NOW_MS), None);
    }

    #[test]
    fn verify_refuses_codes_that_are_not_six_ascii_digits() {
        let current = code_at_step(RFC_SECRET, step_at(NOW_MS), DIGITS);
        let padded = format!(" {current}");
        let eight = code_at_step(RFC_SECRET, step_at(NOW_MS), 8);
        for code in [
            "12345",
            "1234567",
            "12a456",
            "",
            "１２３４５６",
            &padded,
            &eight,
        ] {
            assert_eq!(verify(RFC_SECRET, code, NOW_MS), None, "{code:?}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648_vectors_without_padding() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in vectors {
            assert_eq!(to_base32(input.as_bytes()), expected);
        }
        assert_eq!(to_base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn base32_decode(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0);
        for c in text.bytes() {
            let value = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                _ => panic!("not base32: {c}"),
            };
            buffer = (buffer << 5) | u32::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn otpauth_uri_round_trips_every_field() {
        let secret = generate_secret();
        let (issuer, label) = ("Gardien Bank & Co", "zoé:o'hara@example.com");

        let uri = otpauth_uri(secret.expose_secret(), issuer, label);

        let rest = uri.strip_prefix("otpauth://totp/").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        assert!(!path.contains(' ') && !query.contains(' '));
        let (path_issuer, path_label) = path.split_once(':').unwrap();
        assert_eq!(percent_decode(path_issuer), issuer);
        assert_eq!(percent_decode(path_label), label);
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap())
            .collect();
        let param = |name: &str| {
            let found: Vec<_> = params.iter().filter(|(k, _)| *k == name).collect();
            assert_eq!(found.len(), 1, "{name} appears once");
            found[0].1
        };
        assert_eq!(base32_decode(param("secret")), secret.expose_secret());
        assert_eq!(percent_decode(param("issuer")), issuer);
        // SHA-1, 6 digits and 30 s are the format's defaults: left out.
        assert_eq!(params.len(), 2, "{query}");
    }

    #[test]
    fn qr_png_is_a_square_png() {
        let uri = otpauth_uri(RFC_SECRET, "Gardien", "alice@example.com");

        let png_bytes = qr_png(&uri).unwrap();

        assert!(png_bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]));
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % QR_SCALE.unsigned_abs(), 0);
        assert!(info.width >= (21 + 8) * 8);
    }

    #[test]
    fn qr_png_refuses_a_uri_too_long_for_any_qr_version() {
        let uri = "x".repeat(8000);
        assert!(matches!(qr_png(&uri), Err(TotpError::UriTooLong)));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_code_at_any_time_is_checked_without_panicking(
            secret in proptest::collection::vec(any::<u8>(), 0..64),
            code in prop_oneof![any::<String>(), "[0-9]{0,8}", "[٠-٩0-9]{6}"],
            now_ms in any::<i64>(),
        ) {
            if let Some(step) = verify(&secret, &code, now_ms) {
                prop_assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((step - step_at(now_ms)).abs() <= 1);
            }
        }

        #[test]
        fn the_current_code_is_accepted(
            secret in proptest::collection::vec(any::<u8>(), 20),
            now_ms in 0i64..=253_402_300_799_000,
        ) {
            let code = code_at_step(&secret, step_at(now_ms), DIGITS);
            prop_assert_eq!(code.len(), DIGITS);
            let step = verify(&secret, &code, now_ms);
            prop_assert!(step.is_some_and(|s| (s - step_at(now_ms)).abs() <= 1));
        }
    }
}
