//! AES-256-GCM sealing of TOTP secrets at rest, so a copy of the database
//! alone does not yield anyone's second factor.
//!
//! A sealed value is `base64(nonce || ciphertext || tag)` with a fresh random
//! 96-bit nonce each time. The caller binds the value to its row with the
//! associated data (the account id), so a sealed secret copied onto another
//! account does not open.
//!
//! The type is called [`Sealer`] because `secrecy::SecretBox` is already in
//! use across the crate.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::{rngs::OsRng, RngCore};

/// AES-256 key length.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

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
    #[error("sealing failed")]
    Seal,
    #[error("the sealed value is not base64 of a nonce, ciphertext and tag")]
    Malformed,
    #[error("the sealed value does not open with this key and associated data")]
    Unauthentic,
}

/// Seals and opens values under one AES-256-GCM key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
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
        Ok(Self { cipher })
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
        let io_error = |source| SealError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        match create_key_file(path) {
            Ok(sealer) => {
                // Losing this file makes every enrolled TOTP secret unreadable.
                tracing::warn!(path = %path.display(), "created a new sealing key file; back it up");
                return Ok(sealer);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(e)),
        }

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

    /// Encrypts `plaintext` under a fresh random nonce, binding `aad` (the
    /// caller passes the account id).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        // 96 random bits per message: collisions stay negligible far beyond
        // the number of TOTP enrolments this key will ever seal.
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
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
        Ok(STANDARD.encode(sealed))
    }

    /// Decrypts the output of [`Sealer::seal`]; a wrong key, wrong `aad` or
    /// any altered byte is an error.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| SealError::Unauthentic)
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
            Err(SealError::Unauthentic)
        ));
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let sealed = STANDARD
            .decode(sealer().seal(b"secret", ACCOUNT).unwrap())
            .unwrap();
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            let result = sealer().open(&STANDARD.encode(&tampered), ACCOUNT);
            assert!(matches!(result, Err(SealError::Unauthentic)), "byte {i}");
        }
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
