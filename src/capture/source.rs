//! Where a camera's frames come from: the [`FrameSource`] trait, and the thread, status and retries that
//! every source shares.
//!
//! Behind the trait: GStreamer pipelines ([`super::gst_source::GstSource`]: files, RTSP, V4L2,
//! `videotestsrc`), USB cameras read with nokhwa ([`super::usb::UsbSource`]) and, for tests of the whole
//! store pipeline without GStreamer, [`super::test_source::TestSource`]. The run loop sees only the trait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::queue::{FrameSender, QueuePolicy};
use super::{Error, Result, SourceSpec};
use crate::clock::Clock;
use crate::stop::Stop;

/// What a source gets to deliver its frames.
pub struct SourceContext<'a> {
    /// The camera's index in the run: stamped into every frame's meta.
    pub camera_index: usize,
    pub tx: &'a FrameSender,
    pub stop: &'a Stop,
    pub status: &'a Arc<CameraStatus>,
    /// Frames are stamped with this clock's monotonic time when they are captured.
    pub clock: &'a Arc<dyn Clock>,
}

/// A camera, a file or a test's frames.
pub trait FrameSource: Send {
    /// The camera's name, as configured.
    fn name(&self) -> &str;

    /// How frames queue up between this source and the worker: live sources drop the oldest when the
    /// worker falls behind, files and tests wait.
    fn queue_policy(&self) -> QueuePolicy;

    /// Frames are timed by their position in the stream (a file read as fast as it can be decoded), not by
    /// when they arrived.
    fn stream_timed(&self) -> bool;

    /// Checks made before the source's thread starts (a library to initialise). The default has none.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// Delivers frames into `ctx.tx` until the source ends, fails for good, or a stop is requested. Live
    /// sources retry by themselves ([`retry_with_backoff`]).
    fn run(&mut self, ctx: &SourceContext<'_>) -> Result<()>;
}

/// Starts `source` on a thread of its own, pushing frames into `tx` until it ends or `stop` is set.
pub fn start(
    mut source: Box<dyn FrameSource>,
    camera_index: usize,
    tx: FrameSender,
    stop: Stop,
    clock: Arc<dyn Clock>,
) -> Result<CameraHandle> {
    source.prepare()?;
    let status = Arc::new(CameraStatus::new(source.name()));
    let thread_status = status.clone();
    let thread = std::thread::Builder::new()
        .name(format!("cam-{}", source.name()))
        .spawn(move || {
            let ctx = SourceContext { camera_index, tx: &tx, stop: &stop, status: &thread_status, clock: &clock };
            let result = source.run(&ctx);
            match &result {
                Ok(()) => thread_status.set_state(CameraState::Ended),
                Err(e) => {
                    thread_status.set_error(&e.to_string());
                    thread_status.set_state(CameraState::Failed);
                }
            }
            result
        })
        .map_err(|e| Error::Stream {
            camera: format!("camera '{}'", status.name),
            message: format!("cannot start thread: {e}"),
        })?;
    Ok(CameraHandle { status, thread })
}

/// What a camera is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    Starting,
    Running,
    /// Waiting to reconnect after the error in `CameraStatus::last_error`.
    Reconnecting,
    /// The source ended normally (a file reached its end, or a stop was requested).
    Ended,
    /// The source failed and will not be retried (files).
    Failed,
}

/// Live counters and state of one camera, shared with the rest of the process.
#[derive(Debug)]
pub struct CameraStatus {
    pub name: String,
    pub frames: AtomicU64,
    pub reconnects: AtomicU64,
    /// Length of the stream in milliseconds when the source knows it (files), else 0.
    pub duration_ms: AtomicU64,
    /// Stream position of the newest frame, in milliseconds.
    pub position_ms: AtomicU64,
    state: Mutex<CameraState>,
    last_error: Mutex<Option<String>>,
}

impl CameraStatus {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            frames: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            duration_ms: AtomicU64::new(0),
            position_ms: AtomicU64::new(0),
            state: Mutex::new(CameraState::Starting),
            last_error: Mutex::new(None),
        }
    }

    pub fn state(&self) -> CameraState {
        self.state.lock().map(|s| s.clone()).unwrap_or(CameraState::Failed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn set_state(&self, state: CameraState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    pub(crate) fn set_error(&self, error: &str) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error.to_string());
        }
    }
}

/// A running camera.
pub struct CameraHandle {
    pub status: Arc<CameraStatus>,
    thread: JoinHandle<Result<()>>,
}

impl CameraHandle {
    /// Waits for the camera's thread: `Err` if the source failed for good.
    pub fn join(self) -> Result<()> {
        self.thread.join().unwrap_or_else(|_| {
            Err(Error::Stream {
                camera: format!("camera '{}'", self.status.name),
                message: "capture thread panicked".into(),
            })
        })
    }
}

/// Runs `attempt` until the source ends, retrying live sources with exponential backoff (reset when an
/// attempt delivered frames, counted in `status.frames`). `attempt` returns whether it stopped on request.
pub(super) fn retry_with_backoff(
    spec: &SourceSpec,
    stop: &Stop,
    status: &CameraStatus,
    mut attempt: impl FnMut() -> Result<bool>,
) -> Result<()> {
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    let mut backoff = FIRST_BACKOFF;
    loop {
        if stop.requested() {
            return Ok(());
        }
        status.set_state(CameraState::Starting);
        let before = status.frames.load(Ordering::Relaxed);
        let outcome = attempt();
        if status.frames.load(Ordering::Relaxed) > before {
            backoff = FIRST_BACKOFF;
        }
        match outcome {
            Ok(true) => return Ok(()),                        // stopped on request
            Ok(false) if !spec.reconnects() => return Ok(()), // a file reached its end
            Ok(false) => {
                tracing::warn!(camera = %spec.name, "stream ended; reconnecting in {:.1} s", backoff.as_secs_f32());
                status.set_error("stream ended");
            }
            Err(e) if !spec.reconnects() => return Err(e),
            Err(e) => {
                tracing::warn!(camera = %spec.name, "{e}; reconnecting in {:.1} s", backoff.as_secs_f32());
                status.set_error(&e.to_string());
            }
        }
        status.set_state(CameraState::Reconnecting);
        if stop.sleep(backoff) {
            return Ok(());
        }
        status.reconnects.fetch_add(1, Ordering::Relaxed);
        backoff = (backoff * 2).min(spec.reconnect_max);
    }
}
