//! One hashing thread's work: argon2id in a buffer kept for the thread's
//! life, PHC strings written and parsed, constant-time comparison.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::{Argon2Params, HashError, Job, Verified, Work};

pub(super) const SALT_BYTES: usize = 16;
pub(super) const OUTPUT_BYTES: usize = 32;
/// Stored hashes asking for more than this are refused rather than computed:
/// 1 GiB or 64 passes is far beyond any sane setting and would stall a worker
/// or exhaust memory.
const MAX_STORED_MEMORY_KIB: u32 = 1 << 20;
const MAX_STORED_ITERATIONS: u32 = 64;

/// The service's own verify, outside the pool: the benchmark times it
/// beside the plain argon2 verify, whose buffer is allocated per call.
/// Each call goes through a hashing worker's code (its kept buffer, the
/// stored hash parsed, the constant-time comparison).
pub struct ServiceVerifier {
    worker: Worker,
    pub(super) password: &'static [u8],
    pub(super) phc: String,
}

impl ServiceVerifier {
    /// Hashes a password once with `params`, to verify it afterwards.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let mut worker = Worker {
            params: params.to_argon2().map_err(HashError::Internal)?,
            memory: Vec::new(),
        };
        let password = b"correct horse battery staple";
        let phc = worker.hash(password)?;
        Ok(Self {
            worker,
            password,
            phc,
        })
    }

    /// One verify of the right password.
    pub fn verify(&mut self) -> Result<(), HashError> {
        match self.worker.verify(self.password, Some(&self.phc))? {
            Verified::Valid { .. } => Ok(()),
            Verified::Invalid => Err(HashError::Internal("the password did not verify".into())),
        }
    }
}

pub(super) struct Worker {
    params: Params,
    /// Sized for `params` on first use and kept for the thread's life.
    memory: Vec<Block>,
}

impl Worker {
    pub(super) fn new(params: Params) -> Self {
        Self {
            params,
            memory: Vec::new(),
        }
    }

    pub(super) fn run(mut self, receiver: &Mutex<Receiver<Job>>, depth: &AtomicUsize) {
        loop {
            // The lock is held only while waiting; a poisoned lock cannot
            // leave the receiver in a bad state, so carry on with it.
            let next = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .recv();
            let Ok(job) = next else {
                return; // every pool handle is gone
            };
            depth.fetch_sub(1, Ordering::Relaxed);
            let Job {
                password,
                span,
                work,
            } = job;
            let _entered = span.enter();
            let password = password.expose_secret().as_bytes();
            // A caller that gave up (its request timed out or was cancelled)
            // no longer costs a hash. A panic in argon2 must not shrink the
            // pool; the dropped reply sender tells the caller.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| match work {
                Work::Hash(reply) if !reply.is_closed() => {
                    let _ = reply.send(self.hash(password));
                }
                Work::Verify(phc, reply) if !reply.is_closed() => {
                    let _ = reply.send(self.verify(password, phc.as_deref()));
                }
                Work::Task(task) => task(),
                Work::Hash(_) | Work::Verify(..) => {}
            }));
        }
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_BYTES];
        OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|error| HashError::Internal(format!("no randomness for the salt: {error}")))?;
        let mut output = [0u8; OUTPUT_BYTES];
        let params = self.params.clone();
        self.compute(&params, Version::V0x13, password, &salt, &mut output)?;
        let salt = SaltString::encode_b64(&salt).map_err(internal)?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(internal)?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &[u8], phc: Option<&str>) -> Result<Verified, HashError> {
        let Some(stored) = phc.and_then(|phc| Stored::parse(phc, &self.params)) else {
            self.dummy_verify(password)?;
            return Ok(Verified::Invalid);
        };
        let mut output = vec![0u8; stored.hash.len()];
        let params = stored.params.clone();
        self.compute(&params, stored.version, password, &stored.salt, &mut output)?;
        if bool::from(output.ct_eq(&stored.hash)) {
            Ok(Verified::Valid {
                needs_rehash: stored.needs_rehash,
            })
        } else {
            Ok(Verified::Invalid)
        }
    }

    /// Costs what a verify with the configured parameters costs.
    fn dummy_verify(&mut self, password: &[u8]) -> Result<(), HashError> {
        let mut output = [0u8; OUTPUT_BYTES];
        let params = self.params.clone();
        self.compute(
            &params,
            Version::V0x13,
            password,
            &[0u8; SALT_BYTES],
            &mut output,
        )?;
        std::hint::black_box(output.ct_eq(&[0u8; OUTPUT_BYTES]));
        Ok(())
    }

    /// Runs argon2id in the worker's buffer, or in a buffer of its own when
    /// `params` need more memory than the configured ones (an old, stronger
    /// hash), so the worker never keeps more than the configured amount.
    fn compute(
        &mut self,
        params: &Params,
        version: Version,
        password: &[u8],
        salt: &[u8],
        output: &mut [u8],
    ) -> Result<(), HashError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
        let blocks = params.block_count();
        let result = if blocks <= self.params.block_count() {
            if self.memory.len() < blocks {
                self.memory = allocate(self.params.block_count())?;
            }
            argon2.hash_password_into_with_memory(password, salt, output, &mut self.memory)
        } else {
            argon2.hash_password_into_with_memory(password, salt, output, allocate(blocks)?)
        };
        result.map_err(internal)
    }
}

/// Fails instead of aborting the process when memory is short.
fn allocate(blocks: usize) -> Result<Vec<Block>, HashError> {
    let mut memory = Vec::new();
    memory
        .try_reserve_exact(blocks)
        .map_err(|_| HashError::Internal(format!("cannot allocate {blocks} KiB for argon2")))?;
    memory.resize(blocks, Block::new());
    Ok(memory)
}

fn internal(error: impl std::fmt::Display) -> HashError {
    HashError::Internal(error.to_string())
}

/// A stored argon2id PHC string, decoded.
struct Stored {
    params: Params,
    version: Version,
    salt: Vec<u8>,
    hash: Vec<u8>,
    needs_rehash: bool,
}

impl Stored {
    /// `None` for anything but a well-formed argon2id hash within the limits.
    fn parse(phc: &str, configured: &Params) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        if Algorithm::try_from(parsed.algorithm).ok()? != Algorithm::Argon2id {
            return None;
        }
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        if params.m_cost() > MAX_STORED_MEMORY_KIB || params.t_cost() > MAX_STORED_ITERATIONS {
            tracing::warn!(
                m_cost = params.m_cost(),
                t_cost = params.t_cost(),
                "stored password hash exceeds the verification limits; treated as invalid"
            );
            return None;
        }
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?.to_vec();
        if salt.len() < argon2::MIN_SALT_LEN {
            return None;
        }
        let hash = parsed.hash?.as_bytes().to_vec();
        let needs_rehash = version != Version::V0x13
            || params.m_cost() != configured.m_cost()
            || params.t_cost() != configured.t_cost()
            || params.p_cost() != configured.p_cost()
            || !params.keyid().is_empty()
            || !params.data().is_empty()
            || hash.len() != OUTPUT_BYTES
            || salt.len() < SALT_BYTES;
        Some(Self {
            params,
            version,
            salt,
            hash,
            needs_rehash,
        })
    }
}
