//! Properties of the edge parsers over hostile strings: none panics; an
//! accepted value is canonical (parsing it again gives it back unchanged);
//! a refusal names the field it was given.

use proptest::prelude::*;

use super::*;

/// Arbitrary Unicode, printable ASCII with controls and padding, and
/// near-misses of each format, so that both branches of every parser run.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\t\r\n\u{0}\u{7f}\u{85}\u{2028}\u{202e}\u{301}]{0,80}",
        "\\s{0,3}[A-Za-z0-9._-]{0,70}\\s{0,3}",
        "[A-Za-z0-9._%+-]{0,70}@[A-Za-z0-9.-]{0,40}\\.[a-zA-Z]{0,4}",
        // Letters whose lower case is longer, or not a letter.
        "[a-z]{1,5}@[a-zA-ZİΣẞÅǅ\u{212a}\u{130}-]{1,8}\\.[a-zA-ZİΣ]{2,3}",
        "\\+?[0-9 ]{0,20}",
        "[0-9a-fA-F-]{30,40}",
        "\\PC{0,300}",
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_]{1,20}(\\[[0-9]{1,3}\\])?"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn logins_are_canonical_or_refused_by_name(raw in hostile(), field in field_name()) {
        match Login::parse(&field, &raw) {
            Ok(login) => {
                let text = login.as_str();
                prop_assert!((3..=64).contains(&text.len()));
                prop_assert!(!text.bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace()));
                prop_assert_eq!(Login::parse(&field, text), Ok(login.clone()));
            }
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn emails_are_canonical_or_refused_by_name(raw in hostile(), field in field_name()) {
        match Email::parse(&field, &raw) {
            Ok(email) => {
                let text = email.as_str();
                prop_assert!(text.len() <= 254);
                prop_assert!(!text.chars().any(|c| c.is_control() || c.is_whitespace()));
                prop_assert_eq!(text.matches('@').count(), 1);
                prop_assert_eq!(Email::parse(&field, text), Ok(email.clone()));
                prop_assert_eq!(email.lookup_key(), text.to_lowercase());
            }
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn phones_are_canonical_or_refused_by_name(raw in hostile(), field in field_name()) {
        match Phone::parse_optional(&field, &raw) {
            Ok(Some(phone)) => {
                prop_assert!(phone.as_str().starts_with('+'));
                prop_assert_eq!(Phone::parse_optional(&field, phone.as_str()), Ok(Some(phone.clone())));
            }
            Ok(None) => prop_assert!(raw.trim().is_empty()),
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn addresses_are_canonical_or_refused_part_by_part(
        parts in proptest::collection::vec(hostile(), 5),
        field in field_name(),
    ) {
        match PostalAddress::parse(&field, &parts[0], &parts[1], &parts[2], &parts[3], &parts[4]) {
            Ok(address) => {
                let part = |p: &Option<String>| p.clone().unwrap_or_default();
                let again = PostalAddress::parse(
                    &field,
                    &part(&address.line1),
                    &part(&address.line2),
                    &part(&address.postal_code),
                    &part(&address.city),
                    &part(&address.country_code),
                );
                prop_assert_eq!(again, Ok(address));
            }
            Err(violations) => {
                prop_assert!(!violations.is_empty());
                let prefix = format!("{field}.");
                for violation in violations {
                    prop_assert!(violation.field.starts_with(&prefix), "{}", violation.field);
                }
            }
        }
    }

    #[test]
    fn free_text_is_bounded_and_canonical(raw in hostile(), max in 0usize..400, field in field_name()) {
        match parse_text(&field, &raw, max) {
            Ok(text) => {
                prop_assert!(text.chars().count() <= max);
                prop_assert!(!text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
                prop_assert_eq!(parse_text(&field, &text, max), Ok(text.clone()));
            }
            Err(violation) => prop_assert_eq!(&violation.field, &field),
        }
        match parse_line(&field, &raw, max) {
            Ok(line) => {
                prop_assert!(line.chars().count() <= max);
                prop_assert!(!line.chars().any(char::is_control));
                prop_assert_eq!(parse_line(&field, &line, max), Ok(line.clone()));
            }
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn ticket_texts_are_required_bounded_and_canonical(raw in hostile(), field in field_name()) {
        let max = crate::domain::support::MAX_SUBJECT_CHARS;
        match crate::domain::support::check_text(&field, &raw, max) {
            Ok(subject) => {
                prop_assert!(!subject.is_empty() && subject.chars().count() <= max);
                prop_assert_eq!(crate::domain::support::check_text(&field, &subject, max), Ok(subject.clone()));
            }
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn identifiers_round_trip_and_anything_else_is_refused_by_name(
        raw in hostile(),
        bytes in any::<[u8; 16]>(),
        field in field_name(),
    ) {
        let id = uuid::Uuid::from_bytes(bytes);
        prop_assert_eq!(parse_id(&field, &id.to_string()), Ok(id));
        match parse_id(&field, &raw) {
            Ok(parsed) => prop_assert_eq!(parse_id(&field, &parsed.to_string()), Ok(parsed)),
            Err(violation) => prop_assert_eq!(violation.field, field),
        }
    }

    #[test]
    fn violations_become_one_invalid_argument_naming_every_field(
        fields in proptest::collection::vec(field_name(), 0..8),
    ) {
        let mut violations = Violations::default();
        for field in &fields {
            violations.push(FieldViolation::new(field.clone(), "is wrong"));
        }
        match violations.finish() {
            Ok(()) => prop_assert!(fields.is_empty()),
            Err(Error::InvalidArgument(found)) => {
                let named: Vec<_> = found.into_iter().map(|v| v.field).collect();
                prop_assert_eq!(named, fields);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
