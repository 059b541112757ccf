//! Frames in, and (anonymized) frames out. The only module that knows GStreamer or nokhwa.
//!
//! - [`Frame`]: one captured RGB frame. It implements neither `Clone` nor `Serialize`, and its pixels can be
//!   changed only inside this crate: [`crate::anonymize`] is the one place that does, and the one place that
//!   turns a `Frame` into an [`AnonymizedFrame`](crate::anonymize::AnonymizedFrame).
//! - [`queue`]: the bounded per-camera queue between a source's streaming thread and the worker.
//! - [`gst_source`]: cameras as GStreamer launch descriptions (`pipelines/*.gst`), reconnected with backoff.
//! - [`usb`]: USB cameras read directly with nokhwa.
//! - [`template_check`]: the allow-list every camera pipeline template must pass (no sink, tee or encoder).
//! - [`still`]: single images read with the `image` crate.
//! - [`encode`]: anonymized frames written to video files. It lives here because only `capture` may know
//!   GStreamer; it accepts nothing but `AnonymizedFrame`s.

pub mod doctor;
pub mod encode;
pub mod gst_source;
pub mod queue;
pub mod source;
pub mod still;
pub mod template_check;
pub mod test_source;
pub mod usb;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;

pub use gst_source::{GstSource, SourceKind, SourceSpec};
pub use queue::{FrameReceiver, FrameSender, QueuePolicy, QueueStats};
pub use source::{CameraHandle, CameraState, CameraStatus, FrameSource, SourceContext};

/// Errors at the capture boundary. Each names the camera or file it is about: `camera` holds a label such
/// as `camera 'door'` or `video file /path/clip.mp4` (see [`SourceSpec::label`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    #[error("video file {path} does not exist")]
    FileNotFound { path: PathBuf },
    #[error("{camera}: the pipeline description is invalid: {message}\n  pipeline: {description}")]
    BadPipeline { camera: String, description: String, message: String },
    #[error("{camera}: pipeline template {template} has no `appsink name=frames`")]
    NoAppsink { camera: String, template: String },
    #[error("{camera}: {message}")]
    Stream { camera: String, message: String },
    #[error("{camera}: no frame arrived within {seconds} s")]
    Stalled { camera: String, seconds: u64 },
    #[error("USB camera {index}: {message}")]
    Usb { index: u32, message: String },
    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("output {path}: {message}")]
    Output { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Initialise GStreamer once per process.
pub fn init() -> Result<()> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| e.to_string())).clone().map_err(Error::Init)
}

/// Opens a video file for reading every frame in order (back-pressure, no drops): the frames arrive on the
/// receiver until the file ends; the handle's `join` says whether it ended well.
pub fn open_file(path: &std::path::Path, stop: &crate::stop::Stop) -> Result<(FrameReceiver, CameraHandle)> {
    let spec = SourceSpec::new("file", SourceKind::File, path.to_string_lossy());
    let (tx, rx) = queue::frame_queue(4, spec.queue_policy());
    let handle = source::start(Box::new(GstSource::new(spec)), 0, tx, stop.clone(), crate::clock::system())?;
    Ok((rx, handle))
}

/// Starts a configured camera (see [`source_for`]) on its own thread, timed by the system clock.
pub fn spawn(spec: &SourceSpec, camera_index: usize, tx: FrameSender, stop: crate::stop::Stop) -> Result<CameraHandle> {
    source::start(source_for(spec), camera_index, tx, stop, crate::clock::system())
}

/// The source a configured camera reads from: nokhwa for `kind = "usb"`, else a GStreamer pipeline.
pub fn source_for(spec: &SourceSpec) -> Box<dyn FrameSource> {
    match spec.kind {
        SourceKind::Usb => Box::new(usb::UsbSource::new(spec.clone())),
        _ => Box::new(GstSource::new(spec.clone())),
    }
}

/// Lays `img` out in `data` (reused: resized, not reallocated when large enough) with GStreamer's default
/// stride, which it returns.
pub(crate) fn pack_rgb(img: &image::RgbImage, data: &mut Vec<u8>) -> usize {
    let (w, h) = img.dimensions();
    let stride = default_rgb_stride(w);
    data.resize(stride * h as usize, 0);
    for (y, src) in img.chunks_exact(w as usize * 3).enumerate() {
        data[y * stride..y * stride + src.len()].copy_from_slice(src);
    }
    stride
}

/// Bytes per row of a packed RGB image as GStreamer lays it out by default (rows padded to 4 bytes).
pub fn default_rgb_stride(width: u32) -> usize {
    (width as usize * 3 + 3) & !3
}

/// Where a frame came from and when.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// Index of the camera in the configuration.
    pub camera: usize,
    /// Frame number since the capture started, from 0 (counting on across reconnects).
    pub seq: u64,
    /// Stream position, where the source has one.
    pub pts: Option<Duration>,
    /// When the frame reached the queue: the run clock's monotonic time ([`crate::clock::Clock::monotonic`]);
    /// the run loop turns it into wall time with its [`crate::clock::Timeline`].
    pub captured: Duration,
    /// Frames per second as the source negotiated it, if known.
    pub fps: Option<f64>,
}

/// A read-only view of packed RGB pixels with a row stride.
#[derive(Clone, Copy)]
pub struct RgbView<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

impl<'a> RgbView<'a> {
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * 3]
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = y as usize * self.stride + x as usize * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Copies the pixels into a tightly packed `image::RgbImage` (for writing stills and pictures).
    pub(crate) fn to_rgb_image(self) -> image::RgbImage {
        let mut out = image::RgbImage::new(self.width, self.height);
        let row_bytes = self.width as usize * 3;
        for (y, dst) in out.chunks_exact_mut(row_bytes).enumerate() {
            dst.copy_from_slice(self.row(y as u32));
        }
        out
    }
}

/// A mutable view of packed RGB pixels with a row stride.
pub struct RgbViewMut<'a> {
    pub data: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

enum Pixels {
    /// A GStreamer buffer mapped for writing: no copy of the frame was made.
    Gst(gstreamer::MappedBuffer<gstreamer::buffer::Writable>),
    /// Pixels in our own memory.
    Owned(PooledVec),
}

/// A byte buffer handed back to its pool (if any) when dropped, so sources can reuse frame memory.
pub(crate) struct PooledVec {
    pub(crate) data: Vec<u8>,
    pub(crate) pool: Option<Arc<ArrayQueue<Vec<u8>>>>,
}

/// Lets GStreamer wrap the buffer (recordings) and hand it back to the pool when it is done with it.
impl AsMut<[u8]> for PooledVec {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl AsRef<[u8]> for PooledVec {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PooledVec {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool
            && self.data.capacity() > 0
        {
            let _ = pool.push(std::mem::take(&mut self.data));
        }
    }
}

/// One captured frame, packed RGB. Not `Clone`, not `Serialize`: raw pixels never leave the worker except
/// through [`crate::anonymize`].
///
/// Outside the crate a frame's pixels cannot be read, and an anonymized frame cannot be made from it
/// except by the worker's blur:
///
/// ```compile_fail
/// fn leak(frame: &iobox::capture::Frame) -> Vec<u8> {
///     frame.view().data.to_vec() // `view` is private to the crate
/// }
/// ```
///
/// ```compile_fail
/// fn launder(a: &mut iobox::anonymize::Anonymizer, frame: iobox::capture::Frame) {
///     let _ = a.anonymize_regions(frame, &[]); // only the worker's path blurs
/// }
/// ```
///
/// while the blurred frame's pixels can be read:
///
/// ```
/// fn show(frame: &iobox::anonymize::AnonymizedFrame) -> Vec<u8> {
///     frame.view().data.to_vec()
/// }
/// ```
pub struct Frame {
    pixels: Pixels,
    width: u32,
    height: u32,
    stride: usize,
    pub meta: FrameMeta,
}

impl Frame {
    /// A frame over pixels in our own memory (`data.len() >= stride * height`).
    pub(crate) fn from_vec(data: Vec<u8>, width: u32, height: u32, stride: usize, meta: FrameMeta) -> Self {
        assert!(data.len() >= stride * height as usize, "frame buffer too small");
        Self { pixels: Pixels::Owned(PooledVec { data, pool: None }), width, height, stride, meta }
    }

    /// A frame from a tightly packed RGB image, re-laid out with GStreamer's default stride.
    pub fn from_rgb_image(img: &image::RgbImage, meta: FrameMeta) -> Self {
        let mut data = Vec::new();
        let stride = pack_rgb(img, &mut data);
        Self::from_vec(data, img.width(), img.height(), stride, meta)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    fn bytes(&self) -> &[u8] {
        match &self.pixels {
            Pixels::Gst(m) => m.as_slice(),
            Pixels::Owned(v) => &v.data,
        }
    }

    /// The raw pixels: inside the crate only (the worker's models and the blur). Outside it, pixels are
    /// reached only through [`AnonymizedFrame::view`](crate::anonymize::AnonymizedFrame::view).
    pub(crate) fn view(&self) -> RgbView<'_> {
        RgbView { data: self.bytes(), width: self.width, height: self.height, stride: self.stride }
    }

    /// Mutable pixels: for the anonymizer only.
    pub(crate) fn view_mut(&mut self) -> RgbViewMut<'_> {
        let data = match &mut self.pixels {
            Pixels::Gst(m) => m.as_mut_slice(),
            Pixels::Owned(v) => v.data.as_mut_slice(),
        };
        RgbViewMut { data, width: self.width, height: self.height, stride: self.stride }
    }
}
