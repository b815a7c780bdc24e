//! AES-256-GCM sealing of secrets at rest (TOTP secrets), so a copy of the
//! database alone does not yield anyone's second factor.
//!
//! A sealed value is `v1:<key id>:base64(nonce || ciphertext || tag)` with a
//! fresh random 96-bit nonce each time. The caller binds the value to its row
//! with the associated data (the account id), so a sealed secret copied onto
//! another account does not open.
//!
//! Keys rotate: a [`Sealer`] holds one or more keys, seals under the first
//! and opens under the key its id names. The id is derived from the key
//! (8 hex digits of a SHA-256 of it), so two keys can never be configured
//! under the same id by mistake. Values sealed before key ids existed
//! (`base64(…)` alone, "legacy") are tried against every key, the sealing
//! key first.
//!
//! The type is called [`Sealer`] because `secrecy::SecretBox` is already in
//! use across the crate.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};

/// AES-256 key length.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The format marker that starts every value sealed with a key id.
pub const FORMAT_PREFIX: &str = "v1:";
/// Length of a key id: 8 hex digits.
const KEY_ID_LEN: usize = 8;
/// Length of `v1:<key id>:`, what a sealed value starts with.
pub const PREFIX_LEN: usize = FORMAT_PREFIX.len() + KEY_ID_LEN + 1;

/// Messages name paths and lengths, never key bytes: in particular a base64
/// decoding error is not kept as a source, since it quotes the offending
/// character of the key.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a sealing key must be {KEY_LEN} bytes, got {len}")]
    KeyLength { len: usize },
    #[error("the sealing key is not standard base64")]
    KeyEncoding,
    #[error("cannot read or create the sealing key file {}", path.display())]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the sealing key file {} is accessible by group or others (mode {mode:03o}); \
         it must be mode 0600",
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("the sealing key file {} does not hold {KEY_LEN} base64-encoded bytes", path.display())]
    KeyFileMalformed { path: PathBuf },
    #[error("no sealing key is configured")]
    NoKey,
    #[error("the sealing key {id} is listed twice")]
    DuplicateKey { id: KeyId },
    #[error("sealing failed")]
    Seal,
    #[error("the sealed value is not base64 of a nonce, ciphertext and tag")]
    Malformed,
    #[error("the sealed value does not open with this key and associated data")]
    Unauthentic,
    #[error("the sealed value names key {id}, which is not configured")]
    UnknownKey { id: KeyId },
}

/// The public name of a key: 8 hex digits of `SHA-256("gardien sealing key
/// id" || key)`. It tells keys apart and reveals nothing usable of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN / 2]);

impl KeyId {
    fn of(key: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"gardien sealing key id\0")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN / 2];
        id.copy_from_slice(&digest[..KEY_ID_LEN / 2]);
        Self(id)
    }

    fn parse(text: &str) -> Option<Self> {
        if text.len() != KEY_ID_LEN || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN / 2];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(Self(id))
    }

    /// What every value sealed under this key starts with (no SQL `LIKE`
    /// wildcard in it).
    pub fn prefix(&self) -> String {
        format!("{FORMAT_PREFIX}{self}:")
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Which key a sealed value says it was sealed under, read from its prefix
/// alone (nothing is decrypted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedBy {
    /// Sealed before key ids existed: no prefix.
    Legacy,
    Key(KeyId),
}

impl SealedBy {
    /// `None` for a value with the format marker but no valid key id.
    pub fn of(sealed: &str) -> Option<Self> {
        let Some(rest) = sealed.strip_prefix(FORMAT_PREFIX) else {
            return Some(Self::Legacy);
        };
        let (id, _) = rest.split_once(':')?;
        KeyId::parse(id).map(Self::Key)
    }
}

impl fmt::Display for SealedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Legacy => f.write_str("legacy"),
            Self::Key(id) => id.fmt(f),
        }
    }
}

#[derive(Clone)]
struct Key {
    id: KeyId,
    cipher: Aes256Gcm,
}

/// Seals values under its first AES-256-GCM key and opens them under any
/// of its keys.
#[derive(Clone)]
pub struct Sealer {
    /// Never empty; the first seals.
    keys: Arc<[Key]>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer over exactly 32 key bytes.
    pub fn from_key(key: &[u8]) -> Result<Self, SealError> {
        let cipher =
            Aes256Gcm::new_from_slice(key).map_err(|_| SealError::KeyLength { len: key.len() })?;
        Ok(Self {
            keys: Arc::new([Key {
                id: KeyId::of(key),
                cipher,
            }]),
        })
    }

    /// The keys of `sealers`, in order: the first seals, all open. Refuses
    /// an empty list and a key listed twice.
    pub fn ring(sealers: impl IntoIterator<Item = Sealer>) -> Result<Self, SealError> {
        let mut keys: Vec<Key> = Vec::new();
        for key in sealers.into_iter().flat_map(|s| s.keys.to_vec()) {
            if keys.iter().any(|k| k.id == key.id) {
                return Err(SealError::DuplicateKey { id: key.id });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Self { keys: keys.into() })
    }

    /// The id of the key that seals.
    pub fn sealing_key(&self) -> KeyId {
        self.keys[0].id
    }

    /// Every key id, the sealing one first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// A sealer over the standard base64 of 32 bytes (surrounding whitespace,
    /// such as a file's final newline, is ignored).
    pub fn from_base64(key: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| SealError::KeyEncoding)?;
        Self::from_key(&bytes)
    }

    /// Loads `path`, or creates it holding 32 random bytes (base64, one line)
    /// with mode 0600 if it does not exist.
    ///
    /// Refuses a file that group or others can access in any way (as OpenSSH
    /// does for private keys), and one that does not hold exactly 32 base64
    /// bytes. The file is created with `create_new`, so of two processes
    /// starting together one creates it and the other loads it.
    pub fn load_or_create_key_file(path: &Path) -> Result<Self, SealError> {
        match create_key_file(path) {
            Ok(sealer) => {
                // Losing this file makes every enrolled TOTP secret unreadable.
                tracing::warn!(path = %path.display(), "created a new sealing key file; back it up");
                Ok(sealer)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Self::load_key_file(path),
            Err(e) => Err(SealError::KeyFileIo {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Loads an existing key file, with the checks of
    /// [`Self::load_or_create_key_file`].
    pub fn load_key_file(path: &Path) -> Result<Self, SealError> {
        let io_error = |source| SealError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SealError::KeyFilePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        // A key file is 45 bytes; refuse to read something huge by mistake.
        if metadata.len() > 1024 {
            return Err(SealError::KeyFileMalformed {
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            ErrorKind::InvalidData => SealError::KeyFileMalformed {
                path: path.to_path_buf(),
            },
            _ => io_error(e),
        })?;
        Self::from_base64(&text).map_err(|_| SealError::KeyFileMalformed {
            path: path.to_path_buf(),
        })
    }

    /// Encrypts `plaintext` under the sealing key and a fresh random nonce,
    /// binding `aad` (the caller passes the row's id).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        // 96 random bits per message: collisions stay negligible far beyond
        // the number of TOTP enrolments this key will ever seal.
        OsRng.fill_bytes(&mut nonce);
        let key = &self.keys[0];
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{}{}", key.id.prefix(), STANDARD.encode(sealed)))
    }

    /// Decrypts the output of [`Sealer::seal`] with the key its id names, or
    /// a legacy value (no id) with whichever key opens it; a key not
    /// configured, a wrong `aad` or any altered byte is an error.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let sealed_by = SealedBy::of(sealed).ok_or(SealError::Malformed)?;
        let body = match sealed_by {
            SealedBy::Legacy => sealed,
            SealedBy::Key(_) => &sealed[PREFIX_LEN..],
        };
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let decrypt = |key: &Key| {
            key.cipher.decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
        };
        match sealed_by {
            SealedBy::Key(id) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.id == id)
                    .ok_or(SealError::UnknownKey { id })?;
                decrypt(key).map_err(|_| SealError::Unauthentic)
            }
            SealedBy::Legacy => self
                .keys
                .iter()
                .find_map(|key| decrypt(key).ok())
                .ok_or(SealError::Unauthentic),
        }
    }

    /// Whether `sealed` is already sealed under the sealing key.
    pub fn is_current(&self, sealed: &str) -> bool {
        SealedBy::of(sealed) == Some(SealedBy::Key(self.sealing_key()))
    }
}

/// Creates `path` with a new random key, failing with `AlreadyExists` if it
/// is there. The mode is set at creation, so the key is never readable by
/// others, not even briefly.
fn create_key_file(path: &Path) -> std::io::Result<Sealer> {
    let mut key = [0u8; KEY_LEN];
    OsRng.fill_bytes(&mut key);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file
        .write_all(format!("{}\n", STANDARD.encode(key)).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // An empty or partial file would be refused as malformed at every
        // later start; without it the next start simply tries again.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Sealer::from_key(&key).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &[u8] = b"0190f3a2-0000-7000-8000-000000000001";

    fn sealer() -> Sealer {
        Sealer::from_key(&[7u8; KEY_LEN]).unwrap()
    }

    #[test]
    fn sealed_value_opens_to_the_plaintext() {
        let sealed = sealer().seal(b"totp secret bytes", ACCOUNT).unwrap();
        assert_eq!(
            sealer().open(&sealed, ACCOUNT).unwrap(),
            b"totp secret bytes"
        );
    }

    #[test]
    fn sealed_value_does_not_open_for_another_account() {
        let sealed = sealer().seal(b"secret", ACCOUNT).unwrap();
        let result = sealer().open(&sealed, b"0190f3a2-0000-7000-8000-000000000002");
        assert!(matches!(result, Err(SealError::Unauthentic)));
    }

    #[test]
    fn sealed_value_does_not_open_under_another_key() {
        let sealed = sealer().seal(b"secret", ACCOUNT).unwrap();
        let other = Sealer::from_key(&[8u8; KEY_LEN]).unwrap();
        assert!(matches!(
            other.open(&sealed, ACCOUNT),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let sealed = sealer().seal(b"secret", ACCOUNT).unwrap();
        let (prefix, body) = sealed.split_at(PREFIX_LEN);
        let body = STANDARD.decode(body).unwrap();
        for i in 0..body.len() {
            let mut tampered = body.clone();
            tampered[i] ^= 0x01;
            let result = sealer().open(&format!("{prefix}{}", STANDARD.encode(&tampered)), ACCOUNT);
            assert!(matches!(result, Err(SealError::Unauthentic)), "byte {i}");
        }
    }

    /// A value as sealed before key ids existed: base64 alone.
    fn legacy_seal(key: &[u8], plaintext: &[u8], aad: &[u8]) -> String {
        let nonce = [3u8; NONCE_LEN];
        let ciphertext = Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap();
        STANDARD.encode([nonce.as_slice(), &ciphertext].concat())
    }

    fn ring(keys: &[u8]) -> Sealer {
        Sealer::ring(
            keys.iter()
                .map(|&k| Sealer::from_key(&[k; KEY_LEN]).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_value_names_its_key() {
        let sealed = sealer().seal(b"secret", ACCOUNT).unwrap();
        let id = sealer().sealing_key();
        assert!(sealed.starts_with(&format!("v1:{id}:")), "{sealed}");
        assert_eq!(id.to_string().len(), 8);
        assert!(id.to_string().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(SealedBy::of(&sealed), Some(SealedBy::Key(id)));
        assert!(sealer().is_current(&sealed));
        assert_ne!(ring(&[8]).sealing_key(), id);
    }

    #[test]
    fn legacy_values_open_under_any_configured_key() {
        let old = legacy_seal(&[7u8; KEY_LEN], b"enrolled long ago", ACCOUNT);
        assert_eq!(SealedBy::of(&old), Some(SealedBy::Legacy));
        for keys in [&[7u8][..], &[9, 7], &[9, 8, 7], &[7, 9]] {
            let sealer = ring(keys);
            assert_eq!(sealer.open(&old, ACCOUNT).unwrap(), b"enrolled long ago");
            assert!(!sealer.is_current(&old));
        }
        assert!(matches!(
            ring(&[9, 8]).open(&old, ACCOUNT),
            Err(SealError::Unauthentic)
        ));
        assert!(matches!(
            ring(&[9, 7]).open(&old, b"another account"),
            Err(SealError::Unauthentic)
        ));
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens_by_its_id() {
        let under_old = ring(&[7]).seal(b"old", ACCOUNT).unwrap();
        let rotated = ring(&[9, 7]);
        let under_new = rotated.seal(b"new", ACCOUNT).unwrap();

        assert!(rotated.is_current(&under_new));
        assert!(!rotated.is_current(&under_old));
        assert_eq!(rotated.sealing_key(), ring(&[9]).sealing_key());
        assert_eq!(
            rotated.key_ids(),
            [ring(&[9]).sealing_key(), ring(&[7]).sealing_key()]
        );
        assert_eq!(rotated.open(&under_old, ACCOUNT).unwrap(), b"old");
        assert_eq!(rotated.open(&under_new, ACCOUNT).unwrap(), b"new");
        // Once the old key is removed, its values name a key that is gone.
        let old_id = ring(&[7]).sealing_key();
        assert!(matches!(
            ring(&[9]).open(&under_old, ACCOUNT),
            Err(SealError::UnknownKey { id }) if id == old_id
        ));
        assert!(matches!(
            ring(&[7]).open(&under_new, ACCOUNT),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_value_relabelled_with_another_key_id_does_not_open() {
        let keys = ring(&[9, 7]);
        let under_old = ring(&[7]).seal(b"secret", ACCOUNT).unwrap();
        let relabelled = under_old.replacen(
            &ring(&[7]).sealing_key().to_string(),
            &ring(&[9]).sealing_key().to_string(),
            1,
        );
        assert!(matches!(
            keys.open(&relabelled, ACCOUNT),
            Err(SealError::Unauthentic)
        ));
        for bad in ["v1:", "v1:zz:AAAA", "v1:ABCDEF01:AAAA", "v1:abcdef0:AAAA"] {
            assert!(
                matches!(keys.open(bad, ACCOUNT), Err(SealError::Malformed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_ring_refuses_no_key_and_a_key_twice_without_showing_it() {
        assert!(matches!(Sealer::ring([]), Err(SealError::NoKey)));
        let error = Sealer::ring([
            Sealer::from_key(&[7u8; KEY_LEN]).unwrap(),
            Sealer::from_key(&[9u8; KEY_LEN]).unwrap(),
            Sealer::from_key(&[7u8; KEY_LEN]).unwrap(),
        ])
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&ring(&[7]).sealing_key().to_string()),
            "{message}"
        );
        assert!(
            !message.contains(&STANDARD.encode([7u8; KEY_LEN])),
            "{message}"
        );
    }

    #[test]
    fn truncated_or_non_base64_values_are_malformed() {
        let short = STANDARD.encode([0u8; NONCE_LEN + TAG_LEN - 1]);
        for sealed in ["", "not base64!", short.as_str()] {
            assert!(matches!(
                sealer().open(sealed, ACCOUNT),
                Err(SealError::Malformed)
            ));
        }
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let a = sealer().seal(b"secret", ACCOUNT).unwrap();
        let b = sealer().seal(b"secret", ACCOUNT).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(matches!(
            Sealer::from_key(&[0u8; 31]),
            Err(SealError::KeyLength { len: 31 })
        ));
        assert!(Sealer::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(matches!(
            Sealer::from_base64(&STANDARD.encode([1u8; 33])),
            Err(SealError::KeyLength { len: 33 })
        ));
        assert!(matches!(
            Sealer::from_base64("not*base64"),
            Err(SealError::KeyEncoding)
        ));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let shown = format!("{:?}", Sealer::from_key(&[0xabu8; KEY_LEN]).unwrap());
        assert_eq!(shown, "Sealer { .. }");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_0600_and_reloads_to_the_same_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp.key");

        let created = Sealer::load_or_create_key_file(&path).unwrap();
        let sealed = created.seal(b"secret", ACCOUNT).unwrap();
        let reloaded = Sealer::load_or_create_key_file(&path).unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert_eq!(STANDARD.decode(text.trim_end()).unwrap().len(), KEY_LEN);
        assert_eq!(reloaded.open(&sealed, ACCOUNT).unwrap(), b"secret");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_is_refused_with_its_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp.key");
        std::fs::write(&path, format!("{}\n", STANDARD.encode([1u8; 32]))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let error = Sealer::load_or_create_key_file(&path).unwrap_err();

        assert!(matches!(
            error,
            SealError::KeyFilePermissions { mode: 0o644, .. }
        ));
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains(&STANDARD.encode([1u8; 32])), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn malformed_key_files_are_refused_with_their_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let short = STANDARD.encode([1u8; 16]);
        let cases: [&[u8]; 4] = [b"", b"not base64 at all\n", short.as_bytes(), &[0xff; 44]];
        for (i, contents) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("bad{i}.key"));
            std::fs::write(&path, contents).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

            let error = Sealer::load_or_create_key_file(&path).unwrap_err();

            assert!(
                matches!(error, SealError::KeyFileMalformed { .. }),
                "case {i}: {error}"
            );
            assert!(error.to_string().contains(&path.display().to_string()));
        }
    }
}
