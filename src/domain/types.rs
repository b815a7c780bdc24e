//! Validated domain inputs, parsed once at the edge. A value of one of these
//! types is known to be well-formed; the parse error names the field.

use super::error::{Error, FieldViolation};
pub use crate::kinds::Locale;

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A login identifier: 3–64 of `a-z 0-9 . _ -`, case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        let value = raw.trim().to_ascii_lowercase();
        if value.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if !(3..=64).contains(&value.len()) {
            return Err(FieldViolation::new(field, "must have 3 to 64 characters"));
        }
        if !value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(FieldViolation::new(
                field,
                "may contain only letters a-z, digits, '.', '_' and '-'",
            ));
        }
        Ok(Login(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact e-mail address (pragmatic check: one `@`, a dotted domain, no
/// spaces or control characters, at most 254 bytes). Stored as given, with
/// the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if has_control(raw) {
            return Err(FieldViolation::new(
                field,
                "must not contain control characters",
            ));
        }
        if value.len() > 254 {
            return Err(FieldViolation::new(
                field,
                "must have at most 254 characters",
            ));
        }
        let invalid = || FieldViolation::new(field, "is not a valid e-mail address");
        if has_control(value) || value.contains(char::is_whitespace) {
            return Err(invalid());
        }
        // The syntax is lettre's, the transport's own: an address stored
        // here is one the mail transport accepts.
        let address: lettre::Address = value.parse().map_err(|_| invalid())?;
        // Checked in the stored (lower-case) form, which must parse again:
        // some capitals lower-case to a letter and a combining mark.
        let (local, domain) = (address.user(), address.domain().to_lowercase());
        // Beyond the syntax, a domain on the internet: dotted, and made of
        // letters, digits and hyphens (which also keeps its lower case stable).
        if local.len() > 64
            || !domain.contains('.')
            || domain.ends_with('.')
            || !domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        {
            return Err(invalid());
        }
        let email = format!("{local}@{domain}");
        if email.parse::<lettre::Address>().is_err() {
            return Err(invalid());
        }
        if email.len() > 254 {
            return Err(FieldViolation::new(
                field,
                "must have at most 254 characters",
            ));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used to match an address typed by a customer.
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A phone number in E.164: `+` then 7 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// An empty value means "no phone".
    pub fn parse_optional(field: &str, raw: &str) -> Result<Option<Self>, FieldViolation> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let digits = value.strip_prefix('+').unwrap_or("");
        if !(7..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(FieldViolation::new(
                field,
                "must be in E.164 form: '+' then 7 to 15 digits, e.g. +33612345678",
            ));
        }
        Ok(Some(Phone(value.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address; every part optional, each bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostalAddress {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
}

impl PostalAddress {
    pub fn parse(
        field: &str,
        line1: &str,
        line2: &str,
        postal_code: &str,
        city: &str,
        country_code: &str,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let mut part = |name: &str, raw: &str, max: usize| -> Option<String> {
            let value = raw.trim();
            if value.is_empty() {
                return None;
            }
            if value.chars().count() > max {
                violations.push(FieldViolation::new(
                    format!("{field}.{name}"),
                    format!("must have at most {max} characters"),
                ));
            } else if has_control(value) {
                violations.push(FieldViolation::new(
                    format!("{field}.{name}"),
                    "must not contain control characters",
                ));
            }
            Some(value.to_string())
        };
        let address = PostalAddress {
            line1: part("line1", line1, 200),
            line2: part("line2", line2, 200),
            postal_code: part("postal_code", postal_code, 20),
            city: part("city", city, 100),
            country_code: match country_code.trim() {
                "" => None,
                code => Some(code.to_ascii_uppercase()),
            },
        };
        if let Some(code) = &address.country_code {
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                violations.push(FieldViolation::new(
                    format!("{field}.country_code"),
                    "must be an ISO 3166-1 alpha-2 code such as FR",
                ));
            }
        }
        if violations.is_empty() {
            Ok(address)
        } else {
            Err(violations)
        }
    }
}

/// Free text from a caller (notes, reasons): bounded, no control characters
/// except line breaks and tabs.
pub fn parse_text(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if value.chars().count() > max_chars {
        return Err(FieldViolation::new(
            field,
            format!("must have at most {max_chars} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A one-line value from a caller (a name, a reference, a filter): trimmed,
/// at most `max_chars`, no control characters at all.
pub fn parse_line(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if value.chars().count() > max_chars {
        return Err(FieldViolation::new(
            field,
            format!("must have at most {max_chars} characters"),
        ));
    }
    if has_control(value) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A UUID as sent by a client.
pub fn parse_id(field: &str, raw: &str) -> Result<uuid::Uuid, FieldViolation> {
    if raw.trim().is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| {
        FieldViolation::new(field, "must be an identifier returned by gardien (a UUID)")
    })
}

/// Collects violations and turns them into one `InvalidArgument` error.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    pub fn check_many<T>(&mut self, result: Result<T, Vec<FieldViolation>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violations) => {
                self.0.extend(violations);
                None
            }
        }
    }

    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn logins_are_lowercased_and_bounded() {
        assert_eq!(
            Login::parse("login", " Jean.Martin ").unwrap().as_str(),
            "jean.martin"
        );
        assert!(Login::parse("login", "ab").is_err());
        assert!(Login::parse("login", &"a".repeat(65)).is_err());
        assert_eq!(
            Login::parse("login", "jean martin").unwrap_err().field,
            "login"
        );
        assert!(Login::parse("login", "").is_err());
    }

    #[test]
    fn emails_need_a_dotted_domain() {
        assert_eq!(
            Email::parse("email", "Jean@Example.FR").unwrap().as_str(),
            "Jean@example.fr"
        );
        for bad in [
            "",
            "jean",
            "jean@",
            "@example.fr",
            "jean@example",
            "a b@example.fr",
            "jean@ex..fr",
            "a@b@c.fr",
            "jean@example.fr\n",
            // Lower-cases to `i` and a combining dot, which no domain has.
            "jean@İstanbul.tr",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phones_are_e164() {
        assert!(Phone::parse_optional("phone", "+33612345678")
            .unwrap()
            .is_some());
        assert!(Phone::parse_optional("phone", "").unwrap().is_none());
        for bad in [
            "0612345678",
            "+0612345678",
            "+33 6 12",
            "+1234567890123456",
            "+12ab45678",
        ] {
            assert!(
                Phone::parse_optional("phone", bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn address_parts_are_bounded_and_named() {
        let errors = PostalAddress::parse("postal_address", &"x".repeat(201), "", "", "", "FRA")
            .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["postal_address.line1", "postal_address.country_code"]
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(input in ".{0,300}") {
            let _ = Login::parse("login", &input);
            let _ = Email::parse("email", &input);
            let _ = Phone::parse_optional("phone", &input);
            let _ = parse_text("note", &input, 100);
            let _ = parse_id("id", &input);
        }

        #[test]
        fn accepted_logins_are_canonical(input in "[A-Za-z0-9._-]{3,64}") {
            let login = Login::parse("login", &input).unwrap();
            prop_assert_eq!(login.as_str(), input.to_ascii_lowercase());
        }
    }
}
