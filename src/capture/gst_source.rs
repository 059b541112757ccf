//! Cameras as GStreamer pipelines, supervised: a live camera that fails or goes quiet is torn down and
//! started again with exponential backoff, and never affects any other camera.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::queue::QueuePolicy;
use super::source::{CameraState, CameraStatus, FrameSource, SourceContext, retry_with_backoff};
use super::{Error, Frame, FrameMeta, Pixels, Result};

/// What kind of source a camera is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A video file, processed frame by frame (no drops) unless `realtime`.
    File,
    /// An IP camera over RTSP.
    Rtsp,
    /// A V4L2 device through GStreamer.
    V4l2,
    /// GStreamer's `videotestsrc`.
    Test,
    /// A USB camera read directly with nokhwa.
    Usb,
}

impl SourceKind {
    /// Live sources drop old frames and reconnect; files block and end.
    pub fn is_live(self) -> bool {
        !matches!(self, SourceKind::File)
    }

    fn builtin_template(self) -> Option<(&'static str, &'static str)> {
        match self {
            SourceKind::File => Some(("pipelines/file.gst", include_str!("../../pipelines/file.gst"))),
            SourceKind::Rtsp => Some(("pipelines/rtsp.gst", include_str!("../../pipelines/rtsp.gst"))),
            SourceKind::V4l2 => Some(("pipelines/v4l2.gst", include_str!("../../pipelines/v4l2.gst"))),
            SourceKind::Test => Some(("pipelines/test.gst", include_str!("../../pipelines/test.gst"))),
            SourceKind::Usb => None,
        }
    }
}

/// Everything needed to open one camera.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    pub kind: SourceKind,
    /// File path, RTSP URL, device path or USB index, depending on `kind`.
    pub uri: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    /// A launch-description template that replaces the built-in one.
    pub template: Option<PathBuf>,
    /// Files only: pace frames at the file's own rate, dropping when behind, like a live camera.
    pub realtime: bool,
    /// How long a live camera may take to deliver its first frame, and then may go quiet, before it is
    /// restarted.
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
}

impl SourceSpec {
    pub fn new(name: impl Into<String>, kind: SourceKind, uri: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            uri: uri.into(),
            width: None,
            height: None,
            fps: None,
            template: None,
            realtime: false,
            connect_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(30),
        }
    }

    /// How errors name this source: `camera 'door'`, or `video file /path/clip.mp4` for files.
    pub fn label(&self) -> String {
        match self.kind {
            SourceKind::File => format!("video file {}", self.uri),
            _ => format!("camera '{}'", self.name),
        }
    }

    /// How frames queue up for this source.
    pub fn queue_policy(&self) -> QueuePolicy {
        if self.kind.is_live() || self.realtime { QueuePolicy::DropOldest } else { QueuePolicy::Block }
    }

    /// Reconnect after errors and end-of-stream?
    pub(super) fn reconnects(&self) -> bool {
        self.kind.is_live()
    }

    /// The pipeline template's name (its path, or `pipelines/NAME.gst` for a built-in one) and its text.
    pub fn template(&self) -> Result<(String, String)> {
        match &self.template {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::BadPipeline {
                    camera: self.label(),
                    description: path.display().to_string(),
                    message: format!("cannot read pipeline template: {e}"),
                })?;
                Ok((path.display().to_string(), text.trim().to_string()))
            }
            None => {
                let (name, text) = self.kind.builtin_template().ok_or_else(|| Error::BadPipeline {
                    camera: self.label(),
                    description: String::new(),
                    message:
                        "USB cameras are read with nokhwa, not a GStreamer pipeline (use kind = \"v4l2\" for GStreamer)"
                            .into(),
                })?;
                Ok((name.to_string(), text.trim().to_string()))
            }
        }
    }

    /// What a camera's pipeline is, in words: the template and the values iobox sets on its elements.
    pub fn describe(&self) -> Result<String> {
        let (name, text) = self.template()?;
        let mut out = format!("{text}  [{name}");
        if self.kind != SourceKind::Test {
            out.push_str(&format!("; source uri {:?}", self.uri));
        }
        if let (Some(w), Some(h)) = (self.width, self.height) {
            out.push_str(&format!("; {w}x{h}"));
        }
        if let Some(f) = self.fps {
            out.push_str(&format!("; {f} fps"));
        }
        out.push(']');
        Ok(out)
    }

    /// Parses the template, refuses any element outside [`template_check`]'s allow-list, and sets the
    /// camera's uri, size and rate as properties of the elements named `source` and `size`: nothing from
    /// the config is ever spliced into launch text. The pipeline is returned in the NULL state, with the
    /// `frames` appsink.
    pub fn build_pipeline(&self) -> Result<(gst::Pipeline, gst_app::AppSink, String)> {
        super::init()?;
        let (template_name, text) = self.template()?;
        let bad =
            |message: String| Error::BadPipeline { camera: self.label(), description: template_name.clone(), message };
        if let Some(placeholder) = PLACEHOLDERS.iter().find(|p| text.contains(*p)) {
            return Err(bad(format!(
                "placeholder {placeholder} is no longer filled in (a value spliced into launch text could add elements): name the source element `source` (iobox sets its uri, location or device) and a capsfilter `size` (iobox sets width, height and framerate)"
            )));
        }
        if !text.contains("name=frames") {
            return Err(Error::NoAppsink { camera: self.label(), template: template_name });
        }
        let pipeline = super::template_check::parse(&text).map_err(|e| bad(e.to_string()))?;
        let appsink = pipeline
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| bad("`frames` must be an appsink".into()))?;
        if self.kind != SourceKind::Test {
            let source = pipeline.by_name("source").ok_or_else(|| {
                bad("no element named `source` to receive the camera's uri (add `name=source` to the source element)".into())
            })?;
            let property = ["uri", "location", "device"]
                .into_iter()
                .find(|p| source.find_property(p).is_some_and(|s| s.value_type() == String::static_type()))
                .ok_or_else(|| bad("the element named `source` has no uri, location or device property".into()))?;
            let value = match (self.kind, property) {
                (SourceKind::File, "uri") => file_uri(Path::new(&self.uri), &self.label())?,
                (SourceKind::File, _) => {
                    if !Path::new(&self.uri).is_file() {
                        return Err(Error::FileNotFound { path: PathBuf::from(&self.uri) });
                    }
                    self.uri.clone()
                }
                _ => self.uri.clone(),
            };
            source.set_property(property, &value);
        }
        if self.width.is_some() || self.height.is_some() || self.fps.is_some() {
            let size = pipeline
                .by_name("size")
                .filter(|e| e.factory().is_some_and(|f| f.name() == "capsfilter"))
                .ok_or_else(|| {
                    bad("width, height or fps is set but the template has no capsfilter named `size` to receive them"
                        .into())
                })?;
            let mut caps = size
                .property::<Option<gst::Caps>>("caps")
                .unwrap_or_else(|| gst::Caps::new_empty_simple("video/x-raw"));
            let int = |field: &str, v: u32| i32::try_from(v).map_err(|_| bad(format!("{field} = {v} is out of range")));
            let (w, h, f) = (
                self.width.map(|v| int("width", v)).transpose()?,
                self.height.map(|v| int("height", v)).transpose()?,
                self.fps.map(|v| int("fps", v)).transpose()?,
            );
            for s in caps.make_mut().iter_mut() {
                if let (Some(w), Some(h)) = (w, h) {
                    s.set("width", w);
                    s.set("height", h);
                }
                if let Some(f) = f {
                    s.set("framerate", gst::Fraction::new(f, 1));
                }
            }
            size.set_property("caps", &caps);
        }
        let description = self.describe()?;
        Ok((pipeline, appsink, description))
    }
}

/// The placeholders templates once had; a template that still holds one is refused with how to convert it.
const PLACEHOLDERS: [&str; 6] = ["{uri}", "{size}", "{rate}", "{width}", "{height}", "{fps}"];

fn file_uri(path: &Path, camera: &str) -> Result<String> {
    if !path.is_file() {
        return Err(Error::FileNotFound { path: path.to_path_buf() });
    }
    let abs = std::fs::canonicalize(path)
        .map_err(|e| Error::Stream { camera: camera.to_string(), message: format!("{}: {e}", path.display()) })?;
    gst::glib::filename_to_uri(&abs, None)
        .map(|u| u.to_string())
        .map_err(|e| Error::Stream { camera: camera.to_string(), message: format!("{}: {e}", path.display()) })
}

/// Why one pipeline run ended.
enum Ended {
    Eos,
    Stopped,
}

/// A camera read through a GStreamer pipeline: the built-in template for its kind, or its own.
pub struct GstSource {
    spec: SourceSpec,
}

impl GstSource {
    pub fn new(spec: SourceSpec) -> Self {
        Self { spec }
    }
}

impl FrameSource for GstSource {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn queue_policy(&self) -> QueuePolicy {
        self.spec.queue_policy()
    }

    fn stream_timed(&self) -> bool {
        self.spec.kind == SourceKind::File && !self.spec.realtime
    }

    fn prepare(&mut self) -> Result<()> {
        super::init()
    }

    fn run(&mut self, ctx: &SourceContext<'_>) -> Result<()> {
        let spec = &self.spec;
        // Checked once before the first attempt: a template that is refused or a file that is missing is
        // not retried.
        let (_, _, description) = spec.build_pipeline()?;
        tracing::debug!(camera = %spec.name, %description, "pipeline");
        retry_with_backoff(spec, ctx.stop, ctx.status, || run_once(spec, ctx).map(|e| matches!(e, Ended::Stopped)))
    }
}

/// Caps seen last, so the video layout is parsed once per caps change rather than once per frame.
struct Layout {
    caps: gst::Caps,
    width: u32,
    height: u32,
    stride: usize,
    fps: Option<f64>,
}

/// A frame's buffer with its width, height, stride and frame rate.
type SampleFrame = (gst::Buffer, (u32, u32, usize, Option<f64>));

fn frame_from_sample(sample: &gst::Sample, layout: &mut Option<Layout>) -> std::result::Result<SampleFrame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    if layout.as_ref().is_none_or(|l| l.caps.as_ref() != caps) {
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("unusable caps {caps}: {e}"))?;
        if info.format() != gst_video::VideoFormat::Rgb {
            return Err(format!("pipeline must deliver RGB, got {:?}", info.format()));
        }
        let fps = info.fps();
        *layout = Some(Layout {
            caps: caps.to_owned(),
            width: info.width(),
            height: info.height(),
            stride: info.stride()[0] as usize,
            fps: (fps.numer() > 0 && fps.denom() > 0).then(|| fps.numer() as f64 / fps.denom() as f64),
        });
    }
    let l = layout.as_ref().expect("layout set above");
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    Ok((buffer, (l.width, l.height, l.stride, l.fps)))
}

fn run_once(spec: &SourceSpec, ctx: &SourceContext<'_>) -> Result<Ended> {
    let SourceContext { camera_index, tx, stop, status, clock } = *ctx;
    let camera = spec.label();
    let (pipeline, appsink, _) = spec.build_pipeline()?;

    let live_drop = spec.queue_policy() == QueuePolicy::DropOldest;
    appsink.set_property("sync", spec.realtime && !spec.kind.is_live());
    appsink.set_max_buffers(if live_drop { 1 } else { 2 });
    appsink.set_drop(live_drop);

    let sink_tx = tx.clone();
    let sink_status = status.clone();
    let sink_stop = stop.clone();
    let sink_clock = clock.clone();
    let mut layout: Option<Layout> = None;
    let copies = Arc::new(AtomicU64::new(0));
    let sink_copies = copies.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                if sink_stop.requested() {
                    return Err(gst::FlowError::Eos);
                }
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (mut buffer, (width, height, stride, fps)) =
                    frame_from_sample(&sample, &mut layout).map_err(|msg| {
                        gst::element_error!(sink, gst::StreamError::Format, ("{}", msg));
                        gst::FlowError::Error
                    })?;
                let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
                if let Some(p) = pts {
                    sink_status.position_ms.store(p.as_millis() as u64, Ordering::Relaxed);
                }
                drop(sample); // our reference is now the only one: the buffer can be written in place
                if !buffer.is_writable() {
                    sink_copies.fetch_add(1, Ordering::Relaxed);
                    buffer.make_mut();
                }
                let mapped = buffer.into_mapped_buffer_writable().map_err(|_| gst::FlowError::Error)?;
                if mapped.len() < stride * height as usize {
                    return Err(gst::FlowError::Error);
                }
                let seq = sink_status.frames.fetch_add(1, Ordering::Relaxed);
                let meta = FrameMeta { camera: camera_index, seq, pts, captured: sink_clock.monotonic(), fps };
                let frame = Frame { pixels: Pixels::Gst(mapped), width, height, stride, meta };
                sink_tx.push(frame).map_err(|_| gst::FlowError::Eos)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason is on the bus.
            if let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
                && let gst::MessageView::Error(err) = msg.view()
            {
                return Err(stream_error(&camera, err));
            }
            return Err(Error::Stream { camera: camera.clone(), message: "pipeline refused to start".into() });
        }
        status.set_state(CameraState::Running);
        let started = Instant::now();
        let mut last_count = status.frames.load(Ordering::Relaxed);
        let mut last_progress = Instant::now();
        let mut got_any = false;
        let mut first_warning: Option<String> = None;
        loop {
            if stop.requested() {
                return Ok(Ended::Stopped);
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Error, gst::MessageType::Eos, gst::MessageType::Warning],
            );
            if let Some(msg) = msg {
                match msg.view() {
                    // A stop request makes the appsink answer EOS: that end is the request, not the file's.
                    gst::MessageView::Eos(..) if stop.requested() => return Ok(Ended::Stopped),
                    gst::MessageView::Eos(..) => {
                        check_complete(spec, status, first_warning.as_deref())?;
                        return Ok(Ended::Eos);
                    }
                    gst::MessageView::Error(err) => return Err(stream_error(&camera, err)),
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(camera = %spec.name, "GStreamer warning: {}", w.error());
                        first_warning.get_or_insert_with(|| w.error().to_string());
                    }
                    _ => {}
                }
            }
            let count = status.frames.load(Ordering::Relaxed);
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
                if !got_any && let Some(d) = pipeline.query_duration::<gst::ClockTime>() {
                    status.duration_ms.store(d.mseconds(), Ordering::Relaxed);
                }
                got_any = true;
            } else if spec.kind.is_live() {
                let (limit, since) =
                    if got_any { (spec.stall_timeout, last_progress) } else { (spec.connect_timeout, started) };
                if since.elapsed() > limit {
                    return Err(Error::Stalled { camera: camera.clone(), seconds: limit.as_secs() });
                }
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let copied = copies.load(Ordering::Relaxed);
    if copied > 0 {
        tracing::debug!(camera = %spec.name, copied, "frames copied because their buffer was shared");
    }
    result
}

/// A file that ends well before its own stated duration is truncated or damaged: say so rather than
/// pretending it was processed completely.
fn check_complete(spec: &SourceSpec, status: &CameraStatus, warning: Option<&str>) -> Result<()> {
    let duration = status.duration_ms.load(Ordering::Relaxed);
    let position = status.position_ms.load(Ordering::Relaxed);
    let frames = status.frames.load(Ordering::Relaxed);
    if spec.kind != SourceKind::File || duration == 0 {
        return Ok(());
    }
    let slack = (duration / 50).max(1000);
    if position + slack < duration || frames == 0 {
        let mut message = format!(
            "the stream ended at {:.1} s of its {:.1} s after {frames} frames: the file is truncated or damaged",
            position as f64 / 1000.0,
            duration as f64 / 1000.0
        );
        if let Some(w) = warning {
            message.push_str(&format!(" (decoder: {w})"));
        }
        return Err(Error::Stream { camera: spec.label(), message });
    }
    Ok(())
}

fn stream_error(camera: &str, err: &gst::message::Error) -> Error {
    let from = err.src().map(|s| s.path_string().to_string()).unwrap_or_default();
    let mut message = format!("{} (from {from})", err.error());
    if let Some(debug) = err.debug() {
        let debug = debug.to_string();
        let first = debug.lines().last().unwrap_or(&debug);
        message.push_str(&format!(": {first}"));
    }
    Error::Stream { camera: camera.to_string(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_rate_are_set_on_the_size_capsfilter() {
        let mut spec = SourceSpec::new("cam", SourceKind::Test, "");
        spec.width = Some(320);
        spec.height = Some(240);
        spec.fps = Some(5);
        let (pipeline, _, description) = spec.build_pipeline().unwrap();
        let caps = pipeline.by_name("size").unwrap().property::<gst::Caps>("caps");
        let s = caps.structure(0).unwrap();
        assert_eq!((s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap()), (320, 240));
        assert_eq!(s.get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(5, 1));
        assert!(description.contains("320x240") && description.contains("5 fps"), "{description}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let spec = SourceSpec::new("cam", SourceKind::File, "/nonexistent/video.mp4");
        let err = spec.build_pipeline().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/video.mp4"), "{err}");
    }

    #[test]
    fn an_old_template_placeholder_is_refused_with_how_to_convert() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gst");
        std::fs::write(&path, "videotestsrc ! video/x-raw,width={width} ! appsink name=frames").unwrap();
        let mut spec = SourceSpec::new("door", SourceKind::Test, "");
        spec.template = Some(path);
        let err = spec.build_pipeline().unwrap_err().to_string();
        assert!(err.contains("door") && err.contains("{width}") && err.contains("`size`"), "{err}");
    }

    #[test]
    fn size_without_a_size_capsfilter_names_the_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gst");
        std::fs::write(&path, "videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames").unwrap();
        let mut spec = SourceSpec::new("door", SourceKind::Test, "");
        spec.template = Some(path.clone());
        spec.fps = Some(5);
        let err = spec.build_pipeline().unwrap_err().to_string();
        assert!(err.contains("door") && err.contains("fps") && err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn a_hostile_uri_is_a_property_value_and_adds_no_element() {
        // The injection as reported: a uri that closes the quote and adds a file sink.
        let hostile = r#"rtsp://127.0.0.1:1/cam" protocols=tcp ! rtph264depay ! h264parse ! filesink location=raw.h264 rtspsrc location="rtsp://127.0.0.1:1/x"#;
        for (kind, property) in [(SourceKind::Rtsp, "location"), (SourceKind::V4l2, "device")] {
            let spec = SourceSpec::new("door", kind, hostile);
            let (pipeline, _, _) = spec.build_pipeline().unwrap();
            let (_, text) = spec.template().unwrap();
            let built = pipeline.children().len();
            let templated = super::super::template_check::parse(&text).unwrap().children().len();
            assert_eq!(built, templated, "{kind:?}: the uri added elements");
            assert!(pipeline.children().iter().all(|e| e.factory().unwrap().name() != "filesink"));
            let source = pipeline.by_name("source").unwrap();
            assert_eq!(source.property::<Option<String>>(property).as_deref(), Some(hostile), "{kind:?}");
        }
    }
}
