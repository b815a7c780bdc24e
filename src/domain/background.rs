//! Work done off the response path (reset links, login reminders, failed
//! login records), so that an answer and its timing do not depend on
//! whether an account exists. The work waits in a queue of fixed size and a
//! fixed number of workers run it, each on at most one pooled connection at
//! a time: a burst of anonymous calls can neither grow memory nor take the
//! connection pool from the other calls. A job that fails (a database that
//! is restarting, a busy lock) is retried with growing pauses; one that
//! still fails is logged as an error.
//!
//! Reset and reminder requests are recorded in the database before their
//! caller is told OK ([`super::pending`]): for them this queue only runs the
//! work, and a full queue or a restart delays it without losing it.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use super::error::{Error, Result};

type JobFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A job: called again for each attempt.
type Job = Box<dyn Fn() -> JobFuture + Send + Sync>;

struct Queued {
    what: &'static str,
    job: Job,
}

/// Pauses before the second, third… attempt of a failed job.
const RETRY_PAUSES: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(15),
];

/// The queue; [`Background::run`] starts its workers.
pub struct Background {
    sender: mpsc::Sender<Queued>,
    receiver: Arc<Mutex<mpsc::Receiver<Queued>>>,
}

impl Background {
    /// A queue holding at most `capacity` jobs waiting for a worker.
    pub fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Self {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }

    /// Queues `job` (a closure called once per attempt); answers
    /// [`Error::Overloaded`] at once when the queue is full, and logs it.
    pub fn submit<F, Fut>(&self, what: &'static str, job: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.submit_quietly(what, job)
            .inspect_err(|error| match error {
                Error::Overloaded { .. } => {
                    tracing::warn!(what, "background queue full: request refused");
                }
                _ => tracing::error!(what, "background queue closed: request refused"),
            })
    }

    /// [`Background::submit`] for work whose refusal the caller handles
    /// itself (a recorded request the sweeper hands over later): nothing is
    /// logged.
    pub fn submit_quietly<F, Fut>(&self, what: &'static str, job: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let job: Job = Box::new(move || -> JobFuture { Box::pin(job()) });
        self.sender
            .try_send(Queued { what, job })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => Error::Overloaded {
                    retry_after: Duration::from_secs(1),
                },
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Unavailable(anyhow::anyhow!("the background queue is closed"))
                }
            })
    }

    /// Runs `workers` workers until `stop`; then they finish what is
    /// queued and return.
    pub async fn run(&self, workers: usize, stop: CancellationToken) {
        let tasks = (0..workers.max(1))
            .map(|_| tokio::spawn(work(self.receiver.clone(), stop.clone())))
            .collect::<Vec<_>>();
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "background worker stopped");
            }
        }
    }
}

async fn work(receiver: Arc<Mutex<mpsc::Receiver<Queued>>>, stop: CancellationToken) {
    loop {
        let next = {
            let mut receiver = receiver.lock().await;
            let waited = tokio::select! {
                biased;
                queued = receiver.recv() => Some(queued),
                () = stop.cancelled() => None,
            };
            // Stopping: what is still queued is done first.
            waited.unwrap_or_else(|| receiver.try_recv().ok())
        };
        let Some(queued) = next else {
            return;
        };
        run_with_retries(queued).await;
    }
}

async fn run_with_retries(Queued { what, job }: Queued) {
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        let Err(error) = job().await else {
            return;
        };
        match pauses.next() {
            Some(pause) => {
                tracing::warn!(%error, what, retry_in_ms = pause.as_millis() as u64, "background job failed; retrying");
                tokio::time::sleep(*pause).await;
            }
            None => {
                tracing::error!(%error, what, attempts = RETRY_PAUSES.len() + 1, "background job failed; given up");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_queued_jobs_all_run() {
        let background = Arc::new(Background::new(2));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let done = done.clone();
            background
                .submit("test", move || {
                    let done = done.clone();
                    async move {
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                })
                .unwrap();
        }
        let refused = background.submit("test", || async { Ok(()) });
        assert!(matches!(refused, Err(Error::Overloaded { .. })));

        let stop = CancellationToken::new();
        stop.cancel();
        background.run(2, stop).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            2,
            "queued jobs run before stopping"
        );
    }

    #[tokio::test]
    async fn a_failing_job_is_retried_until_it_succeeds() {
        let background = Background::new(4);
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        background
            .submit("test", move || {
                let attempts = counted.clone();
                async move {
                    if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Error::Unavailable(anyhow::anyhow!("database restarting")))
                    } else {
                        Ok(())
                    }
                }
            })
            .unwrap();
        let stop = CancellationToken::new();
        stop.cancel();
        background.run(1, stop).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }
}
