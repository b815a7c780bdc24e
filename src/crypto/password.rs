//! Argon2id password hashing on a bounded pool of dedicated threads
//! (DESIGN.md §6 and §7).
//!
//! Hashing is the one CPU-heavy thing the service does. It runs on its own OS
//! threads, never on the async runtime, behind a bounded queue: a login flood
//! gets [`HashError::Overloaded`] at once instead of growing memory or
//! starving `IntrospectSession`. Each worker keeps one argon2 memory buffer
//! for its whole life, so memory stays at `workers` × `memory_kib` however
//! many verifies go through. The threads run at the lowest scheduling
//! priority (`SCHED_IDLE`, else nice 19) so that, when hashing saturates the
//! cores, the async runtime that answers every other call still gets them
//! first.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;
use tracing::Span;

const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;
/// Stored hashes asking for more than this are refused rather than computed:
/// 1 GiB or 64 passes is far beyond any sane setting and would stall a worker
/// or exhaust memory.
const MAX_STORED_MEMORY_KIB: u32 = 1 << 20;
const MAX_STORED_ITERATIONS: u32 = 64;

/// Argon2id cost parameters (the defaults are OWASP's minimum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Accepts whatever the argon2 crate accepts (memory ≥ 8 KiB × parallelism,
    /// iterations ≥ 1, 1 ≤ parallelism < 2^24); the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.to_argon2().map(|_| ())
    }

    fn to_argon2(self) -> Result<Params, String> {
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_BYTES),
        )
        .map_err(|error| {
            let field = match error {
                argon2::Error::MemoryTooLittle | argon2::Error::MemoryTooMuch => {
                    "memory_kib (at least 8 × parallelism)"
                }
                argon2::Error::TimeTooSmall => "iterations (at least 1)",
                argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => {
                    "parallelism (between 1 and 2^24 - 1)"
                }
                _ => "argon2 parameters",
            };
            format!("invalid {field}: {error}")
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the hashing queue is full")]
    Overloaded,
    #[error("hashing failed: {0}")]
    Internal(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    Invalid,
    /// `needs_rehash`: the stored hash was made with other parameters than
    /// the configured ones; store a fresh hash of the password.
    Valid {
        needs_rehash: bool,
    },
}

enum Work {
    Hash(oneshot::Sender<Result<String, HashError>>),
    Verify(Option<String>, oneshot::Sender<Result<Verified, HashError>>),
    /// Other CPU-heavy password work (the strength check); replies itself.
    Task(Box<dyn FnOnce() + Send>),
}

struct Job {
    password: SecretString,
    span: Span,
    work: Work,
}

struct Inner {
    sender: SyncSender<Job>,
    params: Argon2Params,
    workers: usize,
    queue: usize,
    depth: Arc<AtomicUsize>,
}

/// A handle on the hashing threads; cheap to clone. The threads stop when the
/// last handle is dropped and the queue has drained.
#[derive(Clone)]
pub struct HashingPool {
    inner: Arc<Inner>,
}

impl HashingPool {
    /// `workers` dedicated OS threads; at most `queue` jobs waiting beyond those running.
    pub fn new(params: Argon2Params, workers: usize, queue: usize) -> Result<Self, HashError> {
        let argon2_params = params.to_argon2().map_err(HashError::Internal)?;
        if workers == 0 {
            return Err(HashError::Internal("workers must be at least 1".into()));
        }
        let (sender, receiver) = mpsc::sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let depth = Arc::new(AtomicUsize::new(0));
        let cpus = placement(&allowed_cpus(), workers);
        for index in 0..workers {
            let cpu = cpus.get(index).copied().flatten();
            let worker = Worker {
                params: argon2_params.clone(),
                memory: Vec::new(),
            };
            let receiver = Arc::clone(&receiver);
            let depth = Arc::clone(&depth);
            thread::Builder::new()
                .name(format!("argon2-worker-{index}"))
                .spawn(move || {
                    lower_priority();
                    if let Some(cpu) = cpu {
                        pin_to(cpu);
                    }
                    worker.run(&receiver, &depth)
                })
                .map_err(|error| {
                    HashError::Internal(format!("cannot start a hashing thread: {error}"))
                })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                sender,
                params,
                workers,
                queue,
                depth,
            }),
        })
    }

    pub fn params(&self) -> Argon2Params {
        self.inner.params
    }

    /// Hashes with the configured parameters and a 16-byte random salt; the
    /// result is a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let (reply, result) = oneshot::channel();
        self.submit(password, Work::Hash(reply))?;
        result.await.map_err(|_| worker_lost())?
    }

    /// Verifies against a PHC string. `None` verifies against a dummy hash made with the current params
    /// (same cost, always Invalid) so an unknown login takes as long as a wrong password.
    /// needs_rehash is true when the stored PHC's algorithm/params are weaker than (differ from) the configured ones.
    pub async fn verify(
        &self,
        password: SecretString,
        phc: Option<String>,
    ) -> Result<Verified, HashError> {
        let (reply, result) = oneshot::channel();
        self.submit(password, Work::Verify(phc, reply))?;
        result.await.map_err(|_| worker_lost())?
    }

    /// Runs `task` on a hashing thread, behind the same bounded queue: for
    /// CPU-heavy password work that must not hold an async runtime thread.
    pub async fn run<R: Send + 'static>(
        &self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let (reply, result) = oneshot::channel();
        let work = Work::Task(Box::new(move || {
            if !reply.is_closed() {
                let _ = reply.send(task());
            }
        }));
        self.submit(SecretString::from(String::new()), work)?;
        result.await.map_err(|_| worker_lost())
    }

    /// Jobs waiting, not yet picked by a worker.
    pub fn queue_depth(&self) -> usize {
        self.inner.depth.load(Ordering::Relaxed)
    }

    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    pub fn queue_bound(&self) -> usize {
        self.inner.queue
    }

    fn submit(&self, password: SecretString, work: Work) -> Result<(), HashError> {
        let job = Job {
            password,
            span: Span::current(),
            work,
        };
        // Counted before sending so that the worker's decrement cannot come first.
        self.inner.depth.fetch_add(1, Ordering::Relaxed);
        match self.inner.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.inner.depth.fetch_sub(1, Ordering::Relaxed);
                match error {
                    TrySendError::Full(_) => Err(HashError::Overloaded),
                    TrySendError::Disconnected(_) => Err(worker_lost()),
                }
            }
        }
    }
}

/// The service's own verify, outside the pool: the benchmark times it
/// beside the plain argon2 verify, whose buffer is allocated per call.
/// Each call goes through a hashing worker's code (its kept buffer, the
/// stored hash parsed, the constant-time comparison).
pub struct ServiceVerifier {
    worker: Worker,
    password: &'static [u8],
    phc: String,
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

/// The lowest CPU priority for the calling hashing thread: Linux's
/// `SCHED_IDLE`, which any other runnable thread preempts at once on waking
/// (nice 19 alone lets a hash finish its time slice first, a few
/// milliseconds that showed in the isolation benchmark's p99), else nice 19.
/// A failure only costs isolation, so it is logged, not fatal.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if let Err(error) = idle {
            tracing::debug!(?error, "SCHED_IDLE refused; nice 19 instead");
            let thread = rustix::thread::gettid();
            if let Err(error) = rustix::process::setpriority_process(Some(thread), 19) {
                tracing::warn!(%error, "cannot lower the hashing thread's priority");
            }
        }
    }
}

/// The CPUs this process may run on, in order; empty if unknown.
fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_getaffinity, CpuSet};
        if let Ok(set) = sched_getaffinity(None) {
            return (0..CpuSet::MAX_CPU)
                .filter(|&cpu| set.is_set(cpu))
                .collect();
        }
    }
    Vec::new()
}

/// The CPU each worker keeps to, when there are at least as many workers as
/// CPUs (the default: one per core): worker `i` on the `i`-th CPU, round
/// the list again if there are more. Left to the scheduler, two hashing
/// threads (which run at the lowest priority) sometimes queued on one core
/// while the other sat idle: 2–3% of the machine on PostgreSQL login
/// floods. With fewer workers than CPUs nothing is pinned, so that a busy
/// core never holds a hash that an idle one could run.
fn placement(allowed: &[usize], workers: usize) -> Vec<Option<usize>> {
    if allowed.len() < 2 || workers < allowed.len() {
        return vec![None; workers];
    }
    (0..workers)
        .map(|index| Some(allowed[index % allowed.len()]))
        .collect()
}

/// Keeps the calling hashing thread on `cpu`; a failure costs only speed.
fn pin_to(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_setaffinity, CpuSet};
        let mut set = CpuSet::new();
        set.set(cpu);
        if let Err(error) = sched_setaffinity(None, &set) {
            tracing::debug!(%error, cpu, "cannot keep the hashing thread on one CPU");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

fn worker_lost() -> HashError {
    HashError::Internal("the hashing worker stopped".into())
}

struct Worker {
    params: Params,
    /// Sized for `params` on first use and kept for the thread's life.
    memory: Vec<Block>,
}

impl Worker {
    fn run(mut self, receiver: &Mutex<Receiver<Job>>, depth: &AtomicUsize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};
    use std::sync::Mutex;
    use tracing::Instrument;

    /// Cheap parameters so the tests run fast.
    const FAST: Argon2Params = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn secret(password: &str) -> SecretString {
        SecretString::from(password)
    }

    fn pool(params: Argon2Params) -> HashingPool {
        HashingPool::new(params, 2, 16).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_with_the_same_password_and_no_rehash() {
        let pool = pool(Argon2Params::default());
        let phc = pool.hash(secret("correct horse battery")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let verified = pool
            .verify(secret("correct horse battery"), Some(phc))
            .await
            .unwrap();
        assert_eq!(
            verified,
            Verified::Valid {
                needs_rehash: false
            }
        );
    }

    #[test]
    fn workers_are_pinned_one_per_cpu_only_when_they_cover_every_cpu() {
        assert_eq!(placement(&[0, 1], 2), vec![Some(0), Some(1)]);
        assert_eq!(placement(&[2, 5], 3), vec![Some(2), Some(5), Some(2)]);
        assert_eq!(placement(&[0, 1, 2, 3], 2), vec![None, None]);
        assert_eq!(placement(&[0], 1), vec![None]);
        assert_eq!(placement(&[], 2), vec![None, None]);
    }

    #[test]
    fn the_allowed_cpus_are_those_of_the_process() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[tokio::test]
    async fn a_wrong_password_is_invalid() {
        let pool = pool(FAST);
        let phc = pool.hash(secret("correct horse battery")).await.unwrap();
        let verified = pool
            .verify(secret("correct horse battery!"), Some(phc))
            .await
            .unwrap();
        assert_eq!(verified, Verified::Invalid);
    }

    #[test]
    fn the_service_verifier_verifies_its_password_with_the_workers_code() {
        let mut verifier = ServiceVerifier::new(FAST).unwrap();
        assert!(verifier.phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        for _ in 0..3 {
            verifier.verify().unwrap();
        }
        verifier.password = b"another password";
        assert!(verifier.verify().is_err());
    }

    #[tokio::test]
    async fn an_unknown_account_is_invalid() {
        let verified = pool(FAST).verify(secret("anything"), None).await.unwrap();
        assert_eq!(verified, Verified::Invalid);
    }

    #[tokio::test]
    async fn salts_are_random() {
        let pool = pool(FAST);
        let first = pool.hash(secret("same password")).await.unwrap();
        let second = pool.hash(secret("same password")).await.unwrap();
        assert_ne!(first, second);
        let salt = PasswordHash::new(&first).unwrap().salt.unwrap();
        assert_eq!(salt.decode_b64(&mut [0u8; 64]).unwrap().len(), SALT_BYTES);
    }

    #[tokio::test]
    async fn a_hash_made_with_weaker_params_verifies_and_needs_rehash() {
        let weak = Argon2Params {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        };
        let phc = pool(weak).hash(secret("correct horse")).await.unwrap();
        let verified = pool(Argon2Params::default())
            .verify(secret("correct horse"), Some(phc))
            .await
            .unwrap();
        assert_eq!(verified, Verified::Valid { needs_rehash: true });
    }

    #[tokio::test]
    async fn a_hash_needing_more_memory_than_configured_still_verifies() {
        let strong = Argon2Params {
            memory_kib: 4096,
            iterations: 1,
            parallelism: 2,
        };
        let phc = pool(strong).hash(secret("correct horse")).await.unwrap();
        let verified = pool(FAST)
            .verify(secret("correct horse"), Some(phc))
            .await
            .unwrap();
        assert_eq!(verified, Verified::Valid { needs_rehash: true });
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        let pool = pool(FAST);
        let params = FAST.to_argon2().unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"interop", &SaltString::encode_b64(&[7u8; 16]).unwrap())
            .unwrap()
            .to_string();
        let verified = pool.verify(secret("interop"), Some(theirs)).await.unwrap();
        assert_eq!(
            verified,
            Verified::Valid {
                needs_rehash: false
            }
        );

        let ours = pool.hash(secret("interop")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .verify_password(b"interop", &parsed)
            .is_ok());
    }

    #[tokio::test]
    async fn malformed_or_foreign_hashes_are_invalid() {
        let pool = pool(FAST);
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            FAST.to_argon2().unwrap(),
        )
        .hash_password(b"pw", &SaltString::encode_b64(&[1u8; 16]).unwrap())
        .unwrap()
        .to_string();
        let huge = "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let short_salt = "$argon2id$v=19$m=1024,t=1,p=1$AAAA$\
                          AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for phc in [
            "",
            "not a hash",
            "$argon2id$v=19$m=1024,t=1,p=1$",
            "$argon2id$v=19$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
            "$bcrypt$v=19$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
            "$argon2id$v=99$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            huge,
            short_salt,
            &argon2i,
        ] {
            let verified = pool.verify(secret("pw"), Some(phc.to_owned())).await;
            assert_eq!(verified.unwrap(), Verified::Invalid, "{phc}");
        }
    }

    #[tokio::test]
    async fn long_passwords_hash_and_verify() {
        let pool = pool(FAST);
        for length in [128, 1000] {
            let password: String = "é-Zx9 ".chars().cycle().take(length).collect();
            let phc = pool.hash(secret(&password)).await.unwrap();
            let verified = pool.verify(secret(&password), Some(phc)).await.unwrap();
            assert_eq!(
                verified,
                Verified::Valid {
                    needs_rehash: false
                }
            );
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_at_once() {
        let slow = Argon2Params {
            memory_kib: 19_456,
            iterations: 4,
            parallelism: 1,
        };
        let pool = HashingPool::new(slow, 1, 1).unwrap();
        // Every task submits on its first poll, all within microseconds, while
        // one hash takes tens of milliseconds: at most one job runs and one
        // waits; one more of slack in case the worker finished the first.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(secret("correct horse")).await })
            })
            .collect();
        let mut accepted = 0;
        let mut overloaded = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => accepted += 1,
                Err(HashError::Overloaded) => overloaded += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(
            overloaded >= 1,
            "accepted {accepted}, overloaded {overloaded}"
        );
        assert!(
            accepted <= pool.workers() + pool.queue_bound() + 1,
            "{accepted}"
        );
        assert_eq!(accepted + overloaded, 8);
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_break_the_pool() {
        let pool = HashingPool::new(FAST, 1, 4).unwrap();
        let abandoned = pool.hash(secret("abandoned"));
        // Submit, then drop the future before the result arrives.
        let _ = tokio::time::timeout(std::time::Duration::ZERO, abandoned).await;
        let phc = pool.hash(secret("next")).await.unwrap();
        let verified = pool.verify(secret("next"), Some(phc)).await.unwrap();
        assert_eq!(
            verified,
            Verified::Valid {
                needs_rehash: false
            }
        );
    }

    #[tokio::test]
    async fn the_caller_span_is_entered_on_the_worker() {
        use tracing_subscriber::layer::{Context, SubscriberExt};
        use tracing_subscriber::registry::LookupSpan;
        use tracing_subscriber::Layer;

        struct EnteredOn(Arc<Mutex<Vec<(String, String)>>>);
        impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for EnteredOn {
            fn on_enter(&self, id: &tracing::Id, ctx: Context<'_, S>) {
                let name = ctx.span(id).map(|span| span.name()).unwrap_or_default();
                let thread = thread::current().name().unwrap_or_default().to_owned();
                self.0.lock().unwrap().push((name.to_owned(), thread));
            }
        }

        let entered = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(EnteredOn(Arc::clone(&entered)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let pool = HashingPool::new(FAST, 1, 1).unwrap();
        pool.hash(secret("traced"))
            .instrument(tracing::info_span!("login_request"))
            .await
            .unwrap();
        let entered = entered.lock().unwrap();
        assert!(
            entered.contains(&("login_request".into(), "argon2-worker-0".into())),
            "{entered:?}"
        );
    }

    #[test]
    fn params_are_validated_naming_the_field() {
        assert!(Argon2Params::default().validate().is_ok());
        let bad_memory = Argon2Params {
            memory_kib: 4,
            ..Argon2Params::default()
        };
        assert!(bad_memory.validate().unwrap_err().contains("memory_kib"));
        let bad_iterations = Argon2Params {
            iterations: 0,
            ..Argon2Params::default()
        };
        assert!(bad_iterations
            .validate()
            .unwrap_err()
            .contains("iterations"));
        let bad_parallelism = Argon2Params {
            parallelism: 0,
            ..Argon2Params::default()
        };
        assert!(bad_parallelism
            .validate()
            .unwrap_err()
            .contains("parallelism"));
        assert!(HashingPool::new(bad_memory, 1, 1).is_err());
        assert!(HashingPool::new(FAST, 0, 1).is_err());
    }
}
