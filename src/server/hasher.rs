//! Password checks on a pool of their own: a fixed number of threads (2), run at a lower CPU priority, fed
//! by a short bounded queue. Argon2 costs ~19 MiB and tens of milliseconds per check, so a flood of logins
//! must neither take memory without bound nor take the threads that answer queries or the cores that carry
//! the video path: when the queue is full a login is answered 503 at once, without hashing.

use std::thread::JoinHandle;

use argon2::{Argon2, PasswordHash};
use crossbeam::channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

/// Most argon2 memory a stored hash may ask for: 64 MiB (the defaults use 19 MiB).
const MAX_ARGON2_KIB: u32 = 64 * 1024;

/// Whether `password` matches the PHC string (false for a malformed one or one asking for more than
/// 64 MiB), computed in `memory`, a buffer the caller keeps between checks (the password threads each
/// keep one), so that a flood of logins does not allocate and free 19 MiB per guess.
pub(crate) fn verify_password_in(password: &str, phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let Ok(params) = argon2::Params::try_from(&hash) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm.as_str()) else { return false };
    let Ok(version) = hash.version.map(argon2::Version::try_from).transpose() else { return false };
    if params.m_cost() > MAX_ARGON2_KIB {
        return false;
    }
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.as_bytes().len()) else { return false };
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    argon.hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), out, &mut memory[..blocks]).is_ok()
        && argon2::password_hash::phc::Output::new(out).is_ok_and(|o| o == *expected)
}

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
                    let ok = verify_password_in(&job.password, &job.phc, &mut memory);
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
        let phc = {
            use argon2::PasswordHasher;
            Argon2::default().hash_password(b"correct horse").unwrap().to_string()
        };
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
