//! USB cameras read directly with nokhwa (V4L2 on Linux), for boxes where a GStreamer V4L2 pipeline is not
//! wanted. Frames are decoded into a small pool of reused buffers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam::queue::ArrayQueue;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};

use super::queue::QueuePolicy;
use super::source::{CameraState, FrameSource, SourceContext, retry_with_backoff};
use super::{Error, Frame, FrameMeta, Pixels, PooledVec, Result, SourceSpec};

/// The camera index from `uri`: "0", "1", ... or "/dev/videoN".
pub fn parse_index(uri: &str) -> Option<u32> {
    let s = uri.trim();
    s.strip_prefix("/dev/video").unwrap_or(s).parse().ok()
}

/// Names of the USB cameras nokhwa can see.
pub fn list() -> Result<Vec<String>> {
    nokhwa::query(ApiBackend::Video4Linux)
        .map(|cams| cams.iter().map(|c| format!("{}: {}", c.index(), c.human_name())).collect())
        .map_err(|e| Error::Usb { index: 0, message: e.to_string() })
}

/// A USB camera read with nokhwa; `uri` is its index.
pub struct UsbSource {
    spec: SourceSpec,
}

impl UsbSource {
    pub fn new(spec: SourceSpec) -> Self {
        Self { spec }
    }
}

impl FrameSource for UsbSource {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn queue_policy(&self) -> QueuePolicy {
        QueuePolicy::DropOldest
    }

    fn stream_timed(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &SourceContext<'_>) -> Result<()> {
        let spec = &self.spec;
        let index = parse_index(&spec.uri).ok_or_else(|| Error::Usb {
            index: 0,
            message: format!("{}: uri {:?} is not a camera index (0, 1, ...) or /dev/videoN", spec.label(), spec.uri),
        })?;
        let pool = Arc::new(ArrayQueue::new(4));
        retry_with_backoff(spec, ctx.stop, ctx.status, || run_once(index, ctx, &pool).map(|()| true))
    }
}

fn run_once(index: u32, ctx: &SourceContext<'_>, pool: &Arc<ArrayQueue<Vec<u8>>>) -> Result<()> {
    let SourceContext { camera_index, tx, stop, status, clock } = *ctx;
    let usb_err = |message: String| Error::Usb { index, message };
    let device = format!("/dev/video{index}");
    if !std::path::Path::new(&device).exists() {
        return Err(usb_err(format!(
            "no camera at {device} (is it plugged in, and is the user in the 'video' group?)"
        )));
    }
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
    let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), format).map_err(|e| usb_err(e.to_string()))?;
    camera.open_stream().map_err(|e| usb_err(e.to_string()))?;
    status.set_state(CameraState::Running);
    let fps = camera.frame_rate() as f64;
    while !stop.requested() {
        let raw = camera.frame().map_err(|e| usb_err(e.to_string()))?;
        let res = raw.resolution();
        let (width, height) = (res.width(), res.height());
        let stride = width as usize * 3;
        let mut data = pool.pop().unwrap_or_default();
        data.resize(stride * height as usize, 0);
        raw.decode_image_to_buffer::<RgbFormat>(&mut data).map_err(|e| usb_err(e.to_string()))?;
        let seq = status.frames.fetch_add(1, Ordering::Relaxed);
        let meta = FrameMeta { camera: camera_index, seq, pts: None, captured: clock.monotonic(), fps: Some(fps) };
        let frame =
            Frame { pixels: Pixels::Owned(PooledVec { data, pool: Some(pool.clone()) }), width, height, stride, meta };
        if tx.push(frame).is_err() {
            break;
        }
    }
    let _ = camera.stop_stream();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_parse_from_numbers_and_device_paths() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("/dev/video2"), Some(2));
        assert_eq!(parse_index("front"), None);
    }
}
