//! Password policy (DESIGN.md §6, NIST SP 800-63B): length in code points
//! after NFKC normalisation, never truncated, no composition rules; refused
//! when common (a bundled blocklist) or guessable (zxcvbn, with the login and
//! e-mail as context words). A new password is hashed only as the
//! [`NewPassword`] that [`PasswordPolicy::check`] returns; a login attempt
//! goes through [`normalize`] alone, so both see the same bytes.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::SecretString;
use unicode_normalization::UnicodeNormalization;
use zxcvbn::Score;

/// The 30,000 most common passwords, lower case, one per line; lines
/// starting with `#` are comments (origin and licence).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Context words shorter than this are too likely to occur by chance in a
/// passphrase to refuse it outright; zxcvbn still weighs them.
const MIN_CONTEXT_WORD_CHARS: usize = 4;

const GENERIC_FEEDBACK: &str = "add more words that are less common, or make the password longer";

/// How long a new password must and may be, in Unicode code points after NFKC.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    /// Default 15, never below 8.
    pub min_chars: usize,
    /// Default 256, never below 128.
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 15,
            max_chars: 256,
        }
    }
}

/// NFKC-normalized password, ready to hash. Never printed (Debug shows `NewPassword([redacted])`).
pub struct NewPassword(SecretString);

impl NewPassword {
    /// The normalized password, to hand to the hashing pool.
    pub fn secret(&self) -> SecretString {
        self.0.clone()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// Why a new password was refused. The messages are safe to show the customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("the password must have at least {min} characters")]
    TooShort { min: usize },
    #[error("the password must have at most {max} characters")]
    TooLong { max: usize },
    #[error("the password is among the most common passwords")]
    Common,
    #[error("the password is too easy to guess: it is based on your login or e-mail address")]
    ContainsLogin,
    #[error("the password is too easy to guess: {feedback}")]
    Guessable { feedback: String },
    #[error("the new password must differ from the current one")]
    SameAsCurrent,
    #[error("this password was in use when the account was suspended or reported compromised; choose another")]
    KnownCompromised,
}

impl PasswordRejection {
    /// The rule broken, as `ErrorInfo.metadata["rule"]` names it (listed in
    /// the proto comment of `ERROR_REASON_PASSWORD_TOO_WEAK`).
    pub fn rule(&self) -> &'static str {
        match self {
            PasswordRejection::TooShort { .. } => "too_short",
            PasswordRejection::TooLong { .. } => "too_long",
            PasswordRejection::Common => "too_common",
            PasswordRejection::ContainsLogin => "contains_login",
            PasswordRejection::Guessable { .. } => "too_guessable",
            PasswordRejection::SameAsCurrent => "same_as_current",
            PasswordRejection::KnownCompromised => "known_compromised",
        }
    }
}

impl PasswordPolicy {
    /// Refuses `min_chars` below 8, `max_chars` below 128, or `min_chars`
    /// above `max_chars`; the message names the field.
    pub fn new(min_chars: usize, max_chars: usize) -> Result<Self, String> {
        if min_chars < 8 {
            return Err(format!("min_chars must be at least 8, got {min_chars}"));
        }
        if max_chars < 128 {
            return Err(format!("max_chars must be at least 128, got {max_chars}"));
        }
        if min_chars > max_chars {
            return Err(format!(
                "min_chars ({min_chars}) must not exceed max_chars ({max_chars})"
            ));
        }
        Ok(Self {
            min_chars,
            max_chars,
        })
    }

    /// `context`: words the password must not be built from (login, e-mail and its parts).
    pub fn check(&self, raw: &str, context: &[&str]) -> Result<NewPassword, PasswordRejection> {
        let password = normalize(raw);
        let chars = password.chars().count();
        let blank = password
            .chars()
            .all(|c| c.is_whitespace() || c.is_control());
        if chars < self.min_chars || blank {
            return Err(PasswordRejection::TooShort {
                min: self.min_chars,
            });
        }
        if chars > self.max_chars {
            return Err(PasswordRejection::TooLong {
                max: self.max_chars,
            });
        }

        let lower = password.to_lowercase();
        if is_common(&lower) {
            return Err(PasswordRejection::Common);
        }

        let words = context_words(context);
        let built_from_context = words.iter().any(|word| {
            word.chars().count() >= MIN_CONTEXT_WORD_CHARS
                && (lower.contains(word.as_str()) || word.contains(lower.as_str()))
        });
        if built_from_context {
            return Err(PasswordRejection::ContainsLogin);
        }

        let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(scored_prefix(&password), &inputs);
        if entropy.score() < Score::Three {
            return Err(PasswordRejection::Guessable {
                feedback: feedback_text(entropy.feedback()),
            });
        }

        Ok(NewPassword(SecretString::from(password)))
    }
}

/// NFKC normalization used at login too, so NFC and NFD forms of the same password match.
pub fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

/// zxcvbn scores at most this many leading characters: a password is not
/// decided by its tail, and a prefix scores no stronger than the whole, so
/// cutting can refuse more, not less.
const ZXCVBN_MAX_CHARS: usize = 64;
/// Never score fewer leading characters than this.
const ZXCVBN_MIN_CHARS: usize = 12;
/// Bound on (l33t substitution sets × characters²), zxcvbn's cost driver.
const ZXCVBN_BUDGET: usize = 100_000;
/// zxcvbn 3.1's l33t table (`matching/mod.rs`), one entry per letter.
const L33T_TABLE: [&str; 12] = [
    "4@", "8", "({[<", "3", "69", "1!|", "1|7", "0", "$5", "+7", "%", "2",
];
/// Characters standing for two letters, each doubling the substitution sets.
const L33T_SHARED: [char; 3] = ['1', '|', '7'];

/// The prefix zxcvbn scores: at most 64 characters, fewer when distinct
/// l33t characters make scoring expensive (zxcvbn tries every combination of
/// their substitutions over every substring). BENCHMARKS.md has the timings
/// behind the budget.
fn scored_prefix(password: &str) -> &str {
    let mut seen: Vec<char> = Vec::new();
    let mut end = 0;
    for (count, (index, c)) in password.char_indices().take(ZXCVBN_MAX_CHARS).enumerate() {
        if !seen.contains(&c) && L33T_TABLE.iter().any(|subs| subs.contains(c)) {
            seen.push(c);
        }
        let chars = count + 1;
        if chars > ZXCVBN_MIN_CHARS && l33t_substitution_sets(&seen) * chars * chars > ZXCVBN_BUDGET
        {
            break;
        }
        end = index + c.len_utf8();
    }
    password.get(..end).unwrap_or(password)
}

/// An upper estimate of how many substitution sets zxcvbn tries for the
/// l33t characters `seen`.
fn l33t_substitution_sets(seen: &[char]) -> usize {
    let per_letter: usize = L33T_TABLE
        .iter()
        .map(|subs| subs.chars().filter(|c| seen.contains(c)).count().max(1))
        .product();
    per_letter << L33T_SHARED.iter().filter(|c| seen.contains(c)).count()
}

/// `lower` is on the list, or is a list entry followed only by digits,
/// punctuation and spaces ("dragon2026!!"): cracking rule sets try those
/// decorations first, so they add next to nothing.
fn is_common(lower: &str) -> bool {
    if COMMON_PASSWORDS.contains(lower) {
        return true;
    }
    let stem = lower.trim_end_matches(|c: char| {
        c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace()
    });
    !stem.is_empty() && stem.len() < lower.len() && COMMON_PASSWORDS.contains(stem)
}

/// The context words normalized like the password, plus the local part of
/// anything that looks like an e-mail address.
fn context_words(context: &[&str]) -> Vec<String> {
    let mut words = Vec::with_capacity(context.len() * 2);
    for word in context {
        let word = normalize(word.trim()).to_lowercase();
        if word.is_empty() {
            continue;
        }
        if let Some((local, _domain)) = word.split_once('@') {
            if !local.is_empty() {
                words.push(local.to_owned());
            }
        }
        words.push(word);
    }
    words
}

fn feedback_text(feedback: Option<&zxcvbn::feedback::Feedback>) -> String {
    let Some(feedback) = feedback else {
        return GENERIC_FEEDBACK.to_owned();
    };
    let sentences: Vec<String> = feedback
        .warning()
        .map(|warning| warning.to_string())
        .into_iter()
        .chain(feedback.suggestions().iter().map(ToString::to_string))
        .filter(|sentence| !sentence.trim().is_empty())
        .collect();
    if sentences.is_empty() {
        GENERIC_FEEDBACK.to_owned()
    } else {
        sentences.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const STRONG_15: &str = "tulip Vortex 93";

    fn check(raw: &str) -> Result<NewPassword, PasswordRejection> {
        PasswordPolicy::default().check(raw, &[])
    }

    #[test]
    fn a_fourteen_character_password_is_too_short_by_default() {
        assert_eq!(
            check("tulip Vortex 9").unwrap_err(),
            PasswordRejection::TooShort { min: 15 }
        );
    }

    #[test]
    fn a_strong_fifteen_character_password_is_accepted() {
        let password = check(STRONG_15).unwrap();
        assert_eq!(password.secret().expose_secret(), STRONG_15);
    }

    #[test]
    fn a_strong_128_character_password_is_accepted() {
        let raw = "Orchid-lantern 47 drifts past quartz harbours; ".repeat(3);
        let raw: String = raw.chars().take(128).collect();
        assert_eq!(raw.chars().count(), 128);
        assert!(check(&raw).is_ok());
    }

    #[test]
    fn length_is_counted_in_code_points_not_bytes() {
        // 15 code points, 30 bytes.
        let raw = "жёлтый кит плыл";
        assert_eq!(raw.chars().count(), 15);
        assert!(check(raw).is_ok());
    }

    #[test]
    fn a_300_character_password_is_too_long() {
        let raw = "Orchid-lantern 47 drifts past quartz harbours; ".repeat(7);
        let raw: String = raw.chars().take(300).collect();
        assert_eq!(
            check(&raw).unwrap_err(),
            PasswordRejection::TooLong { max: 256 }
        );
    }

    #[test]
    fn a_common_password_with_a_number_appended_is_refused() {
        let rejection = check("password1234567").unwrap_err();
        assert!(
            matches!(
                rejection,
                PasswordRejection::Common | PasswordRejection::Guessable { .. }
            ),
            "{rejection:?}"
        );
    }

    #[test]
    fn a_long_blocklisted_password_is_common_whatever_its_case() {
        assert_eq!(
            check("passwordstandard").unwrap_err(),
            PasswordRejection::Common
        );
        assert_eq!(
            check("1234567890QWERTY").unwrap_err(),
            PasswordRejection::Common
        );
    }

    #[test]
    fn a_blocklisted_stem_with_a_decorated_tail_is_common() {
        assert_eq!(
            check("superman2026!!!!").unwrap_err(),
            PasswordRejection::Common
        );
    }

    #[test]
    fn a_password_built_from_the_login_is_guessable() {
        let rejection = PasswordPolicy::default()
            .check("jeanmartin2026!!", &["jeanmartin", "jm@example.org"])
            .unwrap_err();
        assert_eq!(rejection, PasswordRejection::ContainsLogin);
        assert_eq!(rejection.rule(), "contains_login");
    }

    #[test]
    fn a_password_built_from_the_email_local_part_is_guessable_whatever_its_case() {
        let rejection = PasswordPolicy::default()
            .check("Zorglub-Tango 1984", &["jm", "ZorgLub@example.org"])
            .unwrap_err();
        assert_eq!(rejection, PasswordRejection::ContainsLogin);
    }

    #[test]
    fn short_context_words_do_not_refuse_a_strong_password_outright() {
        assert!(PasswordPolicy::default()
            .check("tulip Vortex 93 jm", &["jm"])
            .is_ok());
    }

    #[test]
    fn a_weak_password_gets_zxcvbn_feedback() {
        let rejection = check("aaaaaaaaaaaaaaaaaaaa").unwrap_err();
        let PasswordRejection::Guessable { feedback } = rejection else {
            panic!("expected Guessable, got {rejection:?}");
        };
        assert!(!feedback.is_empty());
    }

    #[test]
    fn zxcvbn_scores_at_most_64_characters_of_an_ordinary_password() {
        let passphrase = "correct horse battery staple ".repeat(9);
        assert_eq!(scored_prefix(&passphrase).chars().count(), ZXCVBN_MAX_CHARS);
        assert_eq!(scored_prefix(STRONG_15), STRONG_15);
    }

    #[test]
    fn zxcvbn_scores_a_shorter_prefix_of_a_password_dense_in_l33t_characters() {
        let dense: String = "4@8({[<3691!|7$5+%2".chars().cycle().take(256).collect();
        let scored = scored_prefix(&dense).chars().count();
        assert!((ZXCVBN_MIN_CHARS..32).contains(&scored), "{scored}");
        // One more character would have gone over the budget.
        let longer: Vec<char> = dense.chars().take(scored + 1).collect();
        assert!(l33t_substitution_sets(&longer) * (scored + 1).pow(2) > ZXCVBN_BUDGET);
    }

    #[test]
    fn a_password_of_spaces_or_control_characters_is_too_short() {
        assert_eq!(
            check(&" ".repeat(20)).unwrap_err(),
            PasswordRejection::TooShort { min: 15 }
        );
        assert_eq!(
            check(&"\u{1}\t".repeat(10)).unwrap_err(),
            PasswordRejection::TooShort { min: 15 }
        );
    }

    #[test]
    fn nfc_and_nfd_forms_normalize_to_the_same_string() {
        let nfc = "Cr\u{e8}me br\u{fb}l\u{e9}e au caf\u{e9} du matin";
        let nfd = "Cre\u{300}me bru\u{302}le\u{301}e au cafe\u{301} du matin";
        assert_ne!(nfc, nfd);
        assert_eq!(normalize(nfc), normalize(nfd));
        let accepted = check(nfd).unwrap();
        assert_eq!(accepted.secret().expose_secret(), nfc);
    }

    #[test]
    fn compatibility_forms_are_folded_before_counting() {
        // Fullwidth letters fold to ASCII under NFKC.
        assert_eq!(normalize("\u{ff21}\u{ff22}"), "AB");
    }

    #[test]
    fn the_blocklist_holds_at_least_ten_thousand_passwords() {
        assert!(
            COMMON_PASSWORDS.len() >= 10_000,
            "{}",
            COMMON_PASSWORDS.len()
        );
        assert!(COMMON_PASSWORDS.contains("123456"));
        assert!(!COMMON_PASSWORDS.iter().any(|p| p.starts_with('#')));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", check(STRONG_15).unwrap());
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("Vortex"));
    }

    #[test]
    fn policy_bounds_are_enforced_and_named() {
        assert!(PasswordPolicy::new(7, 256)
            .unwrap_err()
            .contains("min_chars"));
        assert!(PasswordPolicy::new(8, 127)
            .unwrap_err()
            .contains("max_chars"));
        assert!(PasswordPolicy::new(200, 150)
            .unwrap_err()
            .contains("min_chars"));
        let policy = PasswordPolicy::new(8, 128).unwrap();
        assert_eq!((policy.min_chars, policy.max_chars), (8, 128));
    }

    #[test]
    fn a_custom_minimum_applies() {
        let policy = PasswordPolicy::new(20, 256).unwrap();
        assert_eq!(
            policy.check(STRONG_15, &[]).unwrap_err(),
            PasswordRejection::TooShort { min: 20 }
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    proptest! {
        // zxcvbn costs milliseconds per password.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn normalisation_is_idempotent(raw in "\\PC{0,64}|.{0,64}") {
            let once = normalize(&raw);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn any_password_is_decided_without_panicking(
            raw in prop_oneof![any::<String>(), "\\PC{0,300}", "[4@8({<3691!|7$5+%2 ]{0,260}"],
            context in proptest::collection::vec("\\PC{0,20}", 0..3),
        ) {
            let policy = PasswordPolicy::default();
            let words: Vec<&str> = context.iter().map(String::as_str).collect();
            let chars = normalize(&raw).chars().count();
            match policy.check(&raw, &words) {
                // What is hashed is the normalised form, within the bounds.
                Ok(accepted) => {
                    let hashed = accepted.secret();
                    prop_assert_eq!(hashed.expose_secret(), normalize(&raw));
                    prop_assert!((policy.min_chars..=policy.max_chars).contains(&chars));
                }
                Err(PasswordRejection::TooShort { .. }) => prop_assert!(
                    chars < policy.min_chars
                        || normalize(&raw).chars().all(|c| c.is_whitespace() || c.is_control())
                ),
                Err(PasswordRejection::TooLong { .. }) => prop_assert!(chars > policy.max_chars),
                Err(_) => {}
            }
        }
    }
}
