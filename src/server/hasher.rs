//! Password checks on a pool of their own: a fixed number of threads (2), run at a lower CPU priority, fed
//! by a short bounded queue. Argon2 costs ~19 MiB and tens of milliseconds per check, so a flood of logins
//! must neither take memory without bound nor take the threads that answer queries or the cores that carry
//! the video path: when the queue is full a login is answered 503 at once, without hashing.

use std::thread::JoinHandle;

use crossbeam::channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

/// How many checks run at once.
pub(crate) const THREADS: usize = 2;
/// How many more may wait for a thread.
pub(crate) const QUEUE: usize = 8;
/// The pool's threads' nice value (the video path runs at 0).
const NICE: i32 = 10;

struct Job {
    password: String,
    phc: String,
    reply: oneshot::Sender<bool>,
}

/// The queue is full: try again shortly.
#[derive(Debug)]
pub(crate) struct Busy;

pub(crate) struct Hasher {
    jobs: Option<Sender<Job>>,
    /// Kept so that the queue stays open even with no thread (the test's stuck pool).
    _queue: crossbeam::channel::Receiver<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl Hasher {
    pub fn start() -> std::io::Result<Hasher> {
        Self::with_threads(THREADS)
    }

    fn with_threads(n: usize) -> std::io::Result<Hasher> {
        let (tx, rx) = bounded::<Job>(QUEUE);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rx = rx.clone();
            threads.push(std::thread::Builder::new().name(format!("dashboard-hash-{i}")).spawn(move || {
                lower_priority();
                // One argon2 buffer per thread, kept: memory stays at THREADS x 19 MiB however many logins.
                let mut memory = Vec::new();
                for job in rx.iter() {
                    let ok = super::auth::verify_password_in(&job.password, &job.phc, &mut memory);
                    let _ = job.reply.send(ok);
                }
            })?);
        }
        Ok(Hasher { jobs: Some(tx), _queue: rx, threads })
    }

    /// Whether `password` matches the PHC string `phc`, checked on the pool; [`Busy`] at once when
    /// [`QUEUE`] checks already wait.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        self.submit(password, phc)?.await.map_err(|_| Busy)
    }

    fn submit(&self, password: String, phc: String) -> Result<oneshot::Receiver<bool>, Busy> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(Busy)?;
        match jobs.try_send(Job { password, phc, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Lowers this thread's CPU priority (Linux: nice is per thread), so that password checks yield to the
/// cameras' work.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id changes only its scheduling priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, NICE) != 0 {
            tracing::debug!("dashboard: cannot lower the password threads' priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_run_on_the_pool_and_a_full_queue_answers_busy_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let phc = super::super::auth::hash_password("correct horse").unwrap();
        let h = Hasher::start().unwrap();
        rt.block_on(async {
            assert!(h.verify("correct horse".into(), phc.clone()).await.unwrap());
            assert!(!h.verify("wrong horse!".into(), phc.clone()).await.unwrap());
        });
        // No thread takes jobs: exactly QUEUE wait, every further one is refused without waiting.
        let stuck = Hasher::with_threads(0).unwrap();
        let taken: Vec<_> = (0..40).map(|_| stuck.submit("wrong horse!".into(), phc.clone())).collect();
        assert_eq!(taken.iter().filter(|r| r.is_ok()).count(), QUEUE);
        assert!(taken[QUEUE..].iter().all(|r| r.is_err()));
    }
}
