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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use argon2::Params;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tracing::Span;

mod placement;
#[cfg(test)]
mod tests;
mod worker;

use placement::{allowed_cpus, lower_priority, pin_to, placement};
pub use worker::ServiceVerifier;
use worker::{Worker, OUTPUT_BYTES};

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
            let worker = Worker::new(argon2_params.clone());
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

fn worker_lost() -> HashError {
    HashError::Internal("the hashing worker stopped".into())
}
