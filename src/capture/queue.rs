//! The bounded queue between one camera's streaming thread and the worker.
//!
//! Live cameras use [`QueuePolicy::DropOldest`]: the producer never blocks, and when the queue is full the
//! oldest frame is dropped and counted, so the worker always sees the newest frames. Files use
//! [`QueuePolicy::Block`]: back-pressure slows decoding down to the worker's pace and no frame is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TrySendError};

use super::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Never block the producer; drop the oldest frame when full.
    DropOldest,
    /// Block the producer when full (offline files: every frame is processed).
    Block,
}

/// Counters an operator wants to see for each queue.
#[derive(Debug, Default)]
pub struct QueueStats {
    pub pushed: AtomicU64,
    pub dropped: AtomicU64,
    /// Frames a worker took.
    pub taken: AtomicU64,
}

impl QueueStats {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Frames waiting for a worker now (approximately: the counters are read one after the other).
    pub fn depth(&self) -> u64 {
        let out = self.dropped() + self.taken.load(Ordering::Relaxed);
        self.pushed().saturating_sub(out)
    }
}

/// Producer end. Cloneable so a reconnecting camera can hand it to each new pipeline.
#[derive(Clone)]
pub struct FrameSender {
    tx: Sender<Frame>,
    /// A receiver on the same channel, used only to drop the oldest frame when full (`DropOldest` only:
    /// holding it means this sender never sees the consumer go away, so live sources watch a stop flag).
    oldest: Option<Receiver<Frame>>,
    policy: QueuePolicy,
    stats: Arc<QueueStats>,
}

/// Consumer end.
pub struct FrameReceiver {
    rx: Receiver<Frame>,
    stats: Arc<QueueStats>,
}

/// The consumer has gone away.
#[derive(Debug)]
pub struct Disconnected;

/// A queue of `depth` frames (at least 1).
pub fn frame_queue(depth: usize, policy: QueuePolicy) -> (FrameSender, FrameReceiver) {
    let (tx, rx) = channel::bounded(depth.max(1));
    let stats = Arc::new(QueueStats::default());
    (
        FrameSender {
            tx,
            oldest: (policy == QueuePolicy::DropOldest).then(|| rx.clone()),
            policy,
            stats: stats.clone(),
        },
        FrameReceiver { rx, stats },
    )
}

impl FrameSender {
    pub fn push(&self, frame: Frame) -> Result<(), Disconnected> {
        self.stats.pushed.fetch_add(1, Ordering::Relaxed);
        match self.policy {
            QueuePolicy::Block => self.tx.send(frame).map_err(|_| Disconnected),
            QueuePolicy::DropOldest => {
                let mut frame = frame;
                loop {
                    match self.tx.try_send(frame) {
                        Ok(()) => return Ok(()),
                        Err(TrySendError::Disconnected(_)) => return Err(Disconnected),
                        Err(TrySendError::Full(back)) => {
                            frame = back;
                            if self.oldest.as_ref().is_some_and(|rx| rx.try_recv().is_ok()) {
                                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        }
    }

    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.stats
    }
}

impl FrameReceiver {
    /// The next frame; `Ok(None)` on timeout, `Err` once every sender is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Frame>, Disconnected> {
        match self.rx.recv_timeout(timeout) {
            Ok(f) => {
                self.stats.taken.fetch_add(1, Ordering::Relaxed);
                Ok(Some(f))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Disconnected),
        }
    }

    pub fn recv(&self) -> Result<Frame, Disconnected> {
        let f = self.rx.recv().map_err(|_| Disconnected)?;
        self.stats.taken.fetch_add(1, Ordering::Relaxed);
        Ok(f)
    }

    /// Frames queued and not yet taken.
    pub fn waiting(&self) -> usize {
        self.rx.len()
    }

    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.stats
    }

    /// The underlying channel, for selecting over several cameras.
    pub(crate) fn channel(&self) -> &Receiver<Frame> {
        &self.rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameMeta;
    use std::time::Duration;

    fn frame(seq: u64) -> Frame {
        let meta = FrameMeta { camera: 0, seq, pts: None, captured: Duration::ZERO, fps: None };
        Frame::from_vec(vec![0; 12], 1, 1, 4, meta)
    }

    #[test]
    fn drop_oldest_keeps_the_newest_frames_and_counts_drops() {
        let (tx, rx) = frame_queue(2, QueuePolicy::DropOldest);
        for i in 0..10 {
            tx.push(frame(i)).unwrap();
        }
        assert_eq!(rx.stats().dropped(), 8);
        assert_eq!(rx.stats().pushed(), 10);
        let seqs: Vec<u64> = (0..2).map(|_| rx.recv().unwrap().meta.seq).collect();
        assert_eq!(seqs, vec![8, 9]);
    }

    #[test]
    fn receiver_sees_disconnect_after_draining() {
        let (tx, rx) = frame_queue(2, QueuePolicy::Block);
        tx.push(frame(0)).unwrap();
        drop(tx);
        assert!(rx.recv().is_ok());
        assert!(rx.recv().is_err());
    }
}
