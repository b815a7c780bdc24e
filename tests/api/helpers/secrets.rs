//! Secret hygiene across the whole suite.
//!
//! Every secret a test sends or receives is registered: the clients of
//! `client()` and `support()` go through [`Recorded`], which decodes each
//! request and response against the descriptor set and registers every
//! string field named like a secret (passwords, tokens, codes, TOTP secrets,
//! recovery codes) and every bearer token; helpers register what they read
//! elsewhere (credential secrets, TOTP codes, tokens in e-mails). The log of
//! every server in the process is checked against the whole registry when
//! each `TestApp` is dropped, and is also written with the registry to
//! `target/tmp/gardien-test-logs/<pid>.{log,secrets,codes}` so that CI can
//! scan the complete log of the run once it has ended.

use super::*;

/// Secrets shorter than this (6-digit codes) are matched as whole words, and
/// never in the `timestamp` field, whose microseconds would match by chance;
/// longer ones anywhere.
const SHORT_SECRET: usize = 8;
/// Nothing shorter is a secret of this service (a TOTP code has 6 digits).
const MIN_SECRET: usize = 6;

/// Where the log and the registry of this test process are written.
pub fn hygiene_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gardien-test-logs")
}

struct Registry {
    secrets: std::collections::HashSet<String>,
    long_file: Option<std::fs::File>,
    short_file: Option<std::fs::File>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let open = |extension: &str| {
            let dir = hygiene_dir();
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::File::create(dir.join(format!("{}.{extension}", std::process::id()))).ok()
        };
        Mutex::new(Registry {
            secrets: Default::default(),
            long_file: open("secrets"),
            short_file: open("codes"),
        })
    })
}

/// Appends log bytes to this process's log file.
pub(super) fn log_to_file(bytes: &[u8]) {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let dir = hygiene_dir();
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{}.log", std::process::id()));
        std::fs::File::create(path).ok().map(Mutex::new)
    });
    if let Some(file) = file {
        file.lock().unwrap().write_all(bytes).unwrap();
    }
}

/// The forms in which a secret could reach a log line: as given, NFKC
/// normalised (what the server hashes), escaped for JSON or by
/// `escape_debug`, in either case when it is plain ASCII, without a token's
/// kind prefix, and a recovery code without its dashes.
fn secret_forms(secret: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    let mut forms = vec![secret.to_string(), secret.nfkc().collect()];
    let json = serde_json::to_string(secret).unwrap();
    forms.push(json[1..json.len() - 1].to_string());
    forms.push(secret.escape_debug().to_string());
    if secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        forms.push(secret.to_lowercase());
        forms.push(secret.to_uppercase());
        forms.push(secret.replace('-', ""));
        if gardien::crypto::token::TokenKind::of(secret).is_some()
            && secret.len() == gardien::crypto::token::TOKEN_LEN
        {
            forms.push(secret[4..].to_string());
        }
    }
    forms
        .into_iter()
        .flat_map(|form| {
            // One pattern per line in the files CI reads.
            form.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .filter(|form| form.chars().count() >= MIN_SECRET)
        .collect()
}

/// Registers a secret that no log line may contain.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET {
        return;
    }
    let mut registry = registry().lock().unwrap();
    for form in secret_forms(secret) {
        if !registry.secrets.insert(form.clone()) {
            continue;
        }
        let file = if form.len() < SHORT_SECRET {
            registry.short_file.as_mut()
        } else {
            registry.long_file.as_mut()
        };
        if let Some(file) = file {
            writeln!(file, "{form}").unwrap();
        }
    }
}

/// Registers every token (`gd?_` and 43 base64url characters) in `text`.
pub fn register_tokens_in(text: &str) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("gd") {
        let start = from + found;
        from = start + 2;
        let body: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if bytes.get(start + 3) == Some(&b'_')
            && gardien::crypto::token::TokenKind::of(&body).is_some()
            && body.len() >= gardien::crypto::token::TOKEN_LEN
        {
            register_secret(&body[..gardien::crypto::token::TOKEN_LEN]);
        }
    }
}

/// Where in a log a registered secret was found, without showing it.
pub struct Leak {
    pub secret_chars: usize,
    pub line: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a registered secret ({} characters) reached the logs, in this line (secret masked): {}",
            self.secret_chars, self.line
        )
    }
}

/// Multi-pattern search: long secrets are found by their first 8 bytes in a
/// hash map, so a scan costs one look-up per byte of log whatever the number
/// of secrets; short ones by whole words.
struct Matcher {
    long: std::collections::HashMap<u64, Vec<String>>,
    short: std::collections::HashSet<String>,
}

impl Matcher {
    fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Self {
        let mut long: std::collections::HashMap<u64, Vec<String>> = Default::default();
        let mut short = std::collections::HashSet::new();
        for secret in secrets {
            if secret.len() < SHORT_SECRET {
                short.insert(secret.clone());
            } else {
                long.entry(prefix_key(secret.as_bytes()))
                    .or_default()
                    .push(secret.clone());
            }
        }
        Self { long, short }
    }

    fn scan(&self, text: &[u8]) -> Option<Leak> {
        let leak = |line_of: usize, secret: &str| {
            let start = text[..line_of]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let end = text[line_of..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| line_of + p);
            let line = String::from_utf8_lossy(&text[start..end]).replace(secret, "<SECRET>");
            Leak {
                secret_chars: secret.chars().count(),
                line,
            }
        };
        for at in 0..text.len().saturating_sub(SHORT_SECRET - 1) {
            if let Some(candidates) = self.long.get(&prefix_key(&text[at..])) {
                if let Some(secret) = candidates
                    .iter()
                    .find(|s| text[at..].starts_with(s.as_bytes()))
                {
                    return Some(leak(at, secret));
                }
            }
        }
        if self.short.is_empty() {
            return None;
        }
        let mut offset = 0;
        for line in text.split(|&b| b == b'\n') {
            let skip = timestamp_field(line);
            let mut word_start = None;
            for (i, &b) in line.iter().chain(std::iter::once(&b' ')).enumerate() {
                let in_word = b.is_ascii_alphanumeric() || b == b'_';
                match (in_word, word_start) {
                    (true, None) => word_start = Some(i),
                    (false, Some(start)) => {
                        word_start = None;
                        if skip.contains(&start) || i - start >= SHORT_SECRET {
                            continue;
                        }
                        let word = std::str::from_utf8(&line[start..i]).unwrap_or_default();
                        if self.short.contains(word) {
                            return Some(leak(offset + start, word));
                        }
                    }
                    _ => {}
                }
            }
            offset += line.len() + 1;
        }
        None
    }
}

fn prefix_key(bytes: &[u8]) -> u64 {
    let mut key = [0u8; 8];
    key.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(key)
}

/// The byte range of the value of `"timestamp":"…"` in a JSON log line.
fn timestamp_field(line: &[u8]) -> std::ops::Range<usize> {
    const KEY: &[u8] = b"\"timestamp\":\"";
    let Some(key) = line.windows(KEY.len()).position(|w| w == KEY) else {
        return 0..0;
    };
    let start = key + KEY.len();
    let end = line[start..]
        .iter()
        .position(|&b| b == b'"')
        .map_or(line.len(), |p| start + p);
    start..end
}

/// The first registered secret found in `text`, if any.
pub fn find_secret_in(text: &[u8]) -> Option<Leak> {
    let registry = registry().lock().unwrap();
    Matcher::new(&registry.secrets).scan(text)
}

/// Length of the captured log so far, to check only what follows.
pub fn log_position() -> usize {
    log_buffer().lock().unwrap().len()
}

/// Panics if a registered secret was logged since `position`.
pub fn assert_no_secret_logged_since(position: usize) {
    let window = log_buffer().lock().unwrap()[position..].to_vec();
    if let Some(leak) = find_secret_in(&window) {
        panic!("{leak}");
    }
}
