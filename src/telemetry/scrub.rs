//! Secrets out of the errors shown to an operator: a configuration or
//! connection error may echo the value it could not use (a sealing key, a
//! database URL with its password), and that text ends up in terminals,
//! CI logs and journald.

/// What replaces a secret.
const REDACTED: &str = "[REDACTED]";

/// Words in a `GARDIEN_*` variable's or a configuration key's name that
/// mark its value as secret.
const SECRET_WORDS: &[&str] = &["KEY", "URL", "PASSWORD", "SECRET", "TOKEN"];

/// Whether a variable's or key's name (upper case) marks a secret value: a
/// file's or folder's path (`TLS__KEY_FILE`, `totp.key_file`) is not one,
/// and an operator needs to read it in the error.
fn is_secret_name(name: &str) -> bool {
    !(name.ends_with("_FILE") || name.ends_with("_DIR"))
        && SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// `text` with every secret removed: the values of secret-bearing
/// `GARDIEN_*` variables of `env`, a URL's password, the value of a
/// secret-named key on a `key = value` line, and long base64 runs (keys).
pub fn scrub(text: &str, env: impl IntoIterator<Item = (String, String)>) -> String {
    let mut text = text.to_string();
    let mut values: Vec<String> = env
        .into_iter()
        .filter(|(name, value)| {
            name.starts_with("GARDIEN_") && is_secret_name(name) && value.chars().count() >= 4
        })
        .map(|(_, value)| value)
        .collect();
    // Longest first, so a value that contains another goes whole.
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    for value in values {
        text = text.replace(&value, REDACTED);
    }
    let lines: Vec<String> = text.lines().map(scrub_line).collect();
    let mut scrubbed = lines.join("\n");
    if text.ends_with('\n') {
        scrubbed.push('\n');
    }
    scrubbed
}

fn scrub_line(line: &str) -> String {
    base64_runs(&key_values(&url_passwords(line)))
}

/// `scheme://user:password@host` loses its password; a password may hold
/// `@` or spaces, so the user part ends at the last `@` before a quote.
fn url_passwords(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(['"', '\'', '`']).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(last_at) if authority[..last_at].contains(':') => {
                let colon = authority[..last_at].find(':').unwrap_or(0);
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[last_at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `encryption_key = "…"` (as a TOML error quotes the line) keeps the key
/// and loses the value.
fn key_values(line: &str) -> String {
    let Some(equals) = line.find('=') else {
        return line.to_string();
    };
    let name = line[..equals]
        .trim_end()
        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if name.is_empty() || !is_secret_name(&name) {
        return line.to_string();
    }
    format!("{}= {REDACTED}", &line[..equals])
}

/// Runs of 40 or more base64 characters (a 32-byte key is 44): a path
/// seldom qualifies, as it holds `.`, `-` or `_`, or many `/`.
fn base64_runs(line: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let slashes = run.matches('/').count();
        if run.len() >= 40 && slashes * 8 <= run.len() {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "edqd8AWdN+95F6oMPS2+ov6KqL/SY21k5wtSMdcULmI=";

    fn none() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn a_key_echoed_by_the_configuration_loader_goes() {
        let text = format!(
            "invalid configuration: `totp.encryption_keys` (or GARDIEN_TOTP__ENCRYPTION_KEYS): \
             invalid type: found string \"{KEY}\", expected a sequence"
        );
        let scrubbed = scrub(&text, none());
        assert!(!scrubbed.contains(KEY), "{scrubbed}");
        assert!(scrubbed.contains("`totp.encryption_keys`"), "{scrubbed}");
    }

    #[test]
    fn the_values_of_secret_variables_go_whatever_their_shape() {
        let env = [
            (
                "GARDIEN_TOTP__ENCRYPTION_KEYS".to_string(),
                "[\"short\"".to_string(),
            ),
            ("GARDIEN_LOG".to_string(), "info".to_string()),
        ];
        let scrubbed = scrub("found [\"short\" at info level", env);
        assert_eq!(scrubbed, "found [REDACTED] at info level");
    }

    #[test]
    fn paths_of_key_files_stay_for_the_operator_to_read() {
        let env = [(
            "GARDIEN_TLS__KEY_FILE".to_string(),
            "/etc/gardien/tls/tls.key".to_string(),
        )];
        let text = "`tls.key_file` /etc/gardien/tls/tls.key: Permission denied\nkey_file = \"/k\"";
        let scrubbed = scrub(text, env);
        assert_eq!(scrubbed, text);
    }

    #[test]
    fn a_url_loses_its_password_even_with_at_signs_and_spaces() {
        let text = "The connection string 'postgres://u:S3cretDb Pw@@:x/db' cannot be parsed.";
        let scrubbed = scrub(text, none());
        assert!(!scrubbed.contains("S3cret"), "{scrubbed}");
        assert!(
            scrubbed.contains("postgres://u:[REDACTED]@:x/db"),
            "{scrubbed}"
        );
        let plain = "redis://127.0.0.1:6379/0 refused";
        assert_eq!(scrub(plain, none()), plain);
    }

    #[test]
    fn a_quoted_secret_line_keeps_its_key_and_loses_its_value() {
        let text =
            "TOML parse error at line 3\n3 | encryption_key = \"abc\n  |                  ^\n";
        let scrubbed = scrub(text, none());
        assert!(!scrubbed.contains("\"abc"), "{scrubbed}");
        assert!(
            scrubbed.contains("encryption_key = [REDACTED]"),
            "{scrubbed}"
        );
        let line = "3 | database_url = \"postgres://u:S3cretToml@h/db\" x";
        assert!(!scrub(line, none()).contains("S3cretToml"));
        let harmless = "log_level = \"loud\" is not a level";
        assert_eq!(scrub(harmless, none()), harmless);
    }

    #[test]
    fn paths_and_ordinary_words_stay() {
        let text = "`totp.key_file`: cannot read /var/lib/gardien/keys/totp-sealing.key";
        assert_eq!(scrub(text, none()), text);
    }
}
