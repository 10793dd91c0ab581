//! Argon2 on a budget. Each hash takes about 19 MiB and tens of milliseconds of a core, on
//! purpose; so an anonymous flood of sign-ins or set-password posts must not be able to start
//! as many as it likes. At most one hash per core runs at a time, a request waits briefly for
//! a turn, and one that can't get one is told "busy" at once (503 with `Retry-After`) instead
//! of joining a queue that grows. No database connection is held meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{ServiceError, ServiceResult};

/// How long a request waits for a turn before it is told to come back.
pub const QUEUE_WAIT: Duration = Duration::from_millis(250);

type Job = Box<dyn FnOnce() + Send>;

/// A turn in the password budget (see `PasswordWork::turn`).
pub struct Turn(tokio::sync::OwnedSemaphorePermit);

pub struct PasswordWork {
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    /// Hashes and verifications run so far.
    done: Arc<AtomicU64>,
    /// The work runs on `size` threads of its own, not the shared blocking pool: each
    /// thread's allocator keeps the 19 MiB an Argon2 run freed, so running it on whichever of
    /// hundreds of pool threads is free would grow memory with every new thread it touched.
    jobs: std::sync::mpsc::Sender<Job>,
}

impl PasswordWork {
    pub fn new(size: usize, wait: Duration) -> PasswordWork {
        let size = size.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..size {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || loop {
                    let job = queue.lock().map(|q| q.recv());
                    match job {
                        // A panicking job loses its answer (the caller sees an error), not
                        // the thread.
                        Ok(Ok(job)) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        _ => return,
                    }
                })
                .expect("a password thread starts");
        }
        PasswordWork {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            done: Arc::default(),
            jobs,
        }
    }

    /// One permit per core.
    pub fn sized_to_machine() -> PasswordWork {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordWork::new(cores, QUEUE_WAIT)
    }

    /// Hashes and verifications run so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Hashes in flight now.
    pub fn in_flight(&self) -> usize {
        self.size - self.permits.available_permits()
    }

    /// A turn in the budget, waited for at most the queue wait. Taken *before* any other
    /// work of a sign-in, so a flood told "busy" costs no database work either.
    pub async fn turn(&self) -> ServiceResult<Turn> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ServiceError::Busy)?
            .map_err(|_| ServiceError::Busy)?;
        Ok(Turn(permit))
    }

    /// Runs `work` (a hash or a verification) on the password threads under the budget.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let turn = self.turn().await?;
        self.run_in(turn, work).await
    }

    /// Runs `work` in a turn taken earlier with `turn`.
    pub async fn run_in<T: Send + 'static>(
        &self,
        turn: Turn,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let permit = turn.0;
        let done = self.done.clone();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let _ = reply.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("the password threads stopped")))?;
        answer
            .await
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("password work failed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_beyond_the_budget_is_refused_at_once_not_queued() {
        let work = Arc::new(PasswordWork::new(2, Duration::from_millis(50)));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut running = vec![];
        for _ in 0..2 {
            let (work, wait) = (work.clone(), wait.clone());
            running.push(tokio::spawn(async move {
                work.run(move || wait.lock().unwrap().recv().ok()).await
            }));
        }
        while work.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        let third = work.run(|| ()).await;
        assert!(matches!(third, Err(ServiceError::Busy)), "{third:?}");
        release.send(()).unwrap();
        release.send(()).unwrap();
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
        assert_eq!(work.in_flight(), 0);
        assert!(work.run(|| 7).await.is_ok_and(|n| n == 7), "free again");
    }
}
