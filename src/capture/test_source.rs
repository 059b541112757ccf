//! Frames from images in memory: a camera for tests of the whole store pipeline (capture, perception,
//! fusion, behaviour, store) without GStreamer or a device. It plays its images in turn, `frames` frames in
//! all at `fps`, each stamped with its position in that stream, and waits for the worker (no drops), so a
//! run over it stores the same times on every machine.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;

use super::queue::QueuePolicy;
use super::source::{CameraState, FrameSource, SourceContext};
use super::{Frame, FrameMeta, Pixels, PooledVec, Result, pack_rgb};

pub struct TestSource {
    name: String,
    images: Vec<image::RgbImage>,
    frames: u64,
    fps: f64,
}

impl TestSource {
    /// A camera called `name` that shows `images` in turn (at least one), `frames` frames at `fps`.
    pub fn new(name: impl Into<String>, images: Vec<image::RgbImage>, frames: u64, fps: f64) -> Self {
        assert!(!images.is_empty(), "a test source needs an image");
        assert!(fps > 0.0, "a test source needs a frame rate");
        Self { name: name.into(), images, frames, fps }
    }
}

impl FrameSource for TestSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn queue_policy(&self) -> QueuePolicy {
        QueuePolicy::Block
    }

    fn stream_timed(&self) -> bool {
        true
    }

    fn run(&mut self, ctx: &SourceContext<'_>) -> Result<()> {
        ctx.status.set_state(CameraState::Running);
        let pool = Arc::new(ArrayQueue::new(4));
        for seq in 0..self.frames {
            if ctx.stop.requested() {
                break;
            }
            let img = &self.images[(seq % self.images.len() as u64) as usize];
            let (width, height) = img.dimensions();
            let mut data: Vec<u8> = pool.pop().unwrap_or_default();
            let stride = pack_rgb(img, &mut data);
            let pts = Duration::from_secs_f64(seq as f64 / self.fps);
            ctx.status.frames.fetch_add(1, Ordering::Relaxed);
            ctx.status.position_ms.store(pts.as_millis() as u64, Ordering::Relaxed);
            let meta = FrameMeta {
                camera: ctx.camera_index,
                seq,
                pts: Some(pts),
                captured: ctx.clock.monotonic(),
                fps: Some(self.fps),
            };
            let pixels = Pixels::Owned(PooledVec { data, pool: Some(pool.clone()) });
            if ctx.tx.push(Frame { pixels, width, height, stride, meta }).is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::queue::frame_queue;
    use crate::clock::ManualClock;

    #[test]
    fn a_test_source_plays_its_images_in_turn_timed_by_position() {
        let images = vec![image::RgbImage::from_pixel(5, 3, image::Rgb([9, 9, 9])); 2];
        let source = TestSource::new("t", images, 7, 10.0);
        let (tx, rx) = frame_queue(2, source.queue_policy());
        let clock = ManualClock::starting_at(0);
        let handle = super::super::source::start(Box::new(source), 3, tx, crate::stop::Stop::new(), clock).unwrap();
        let mut got = Vec::new();
        while let Ok(Some(f)) = rx.recv_timeout(Duration::from_secs(5)) {
            assert_eq!((f.width(), f.height(), f.meta.camera), (5, 3, 3));
            assert_eq!(f.view().pixel(4, 2), [9, 9, 9]);
            got.push(f.meta.pts.unwrap().as_millis());
        }
        handle.join().unwrap();
        assert_eq!(got, [0, 100, 200, 300, 400, 500, 600]);
    }
}
