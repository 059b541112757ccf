//! Anonymized frames out to a video file (H.264 in MP4 or Matroska).
//!
//! [`VideoWriter::push`] takes an [`AnonymizedFrame`] by value: a raw [`Frame`](super::Frame) cannot be
//! written. A frame captured by GStreamer is handed to the encoder as the same buffer, without a copy.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::{Error, Pixels, Result, default_rgb_stride};
use crate::anonymize::AnonymizedFrame;

pub struct VideoWriter {
    path: PathBuf,
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    width: u32,
    height: u32,
    frame_duration: gst::ClockTime,
    frames: u64,
}

/// Can this path be written as a video?
pub fn is_video_path(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(), Some("mp4" | "mkv"))
}

impl VideoWriter {
    /// Opens `path` for `width` x `height` RGB frames at `fps`.
    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self> {
        super::init()?;
        let out_err = |message: String| Error::Output { path: path.to_path_buf(), message };
        let template = match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("mp4") => include_str!("../../pipelines/record-mp4.gst"),
            Some("mkv") => include_str!("../../pipelines/record-mkv.gst"),
            _ => return Err(out_err("unsupported video extension (use .mp4 or .mkv)".into())),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| out_err(format!("cannot create folder {}: {e}", dir.display())))?;
        }
        let location = path.to_str().ok_or_else(|| out_err("path is not valid UTF-8".into()))?;
        let pipeline = gst::parse::launch_full(template.trim(), None, gst::ParseFlags::FATAL_ERRORS)
            .map_err(|e| out_err(format!("cannot build encoder: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| out_err("encoder description is not a pipeline".into()))?;
        // The path is a property of the file sink, never spliced into the launch text.
        pipeline
            .by_name("out")
            .ok_or_else(|| out_err("encoder has no filesink named out".into()))?
            .set_property("location", location);
        let appsrc = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| out_err("encoder has no appsrc named src".into()))?;
        let fps = if fps.is_finite() && fps > 0.0 { fps } else { 25.0 };
        let rate = gst::Fraction::approximate_f64(fps).unwrap_or(gst::Fraction::new(25, 1));
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, width, height)
            .fps(rate)
            .build()
            .map_err(|e| out_err(e.to_string()))?;
        let caps = info.to_caps().map_err(|e| out_err(e.to_string()))?;
        appsrc.set_caps(Some(&caps));
        appsrc.set_format(gst::Format::Time);
        appsrc.set_block(true);
        appsrc.set_max_bytes(4 * info.size() as u64);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| out_err(pipeline_error(&pipeline).unwrap_or_else(|| "encoder refused to start".into())))?;
        let frame_duration =
            gst::ClockTime::from_nseconds((1e9 * rate.denom() as f64 / rate.numer() as f64).round() as u64);
        Ok(Self { path: path.to_path_buf(), pipeline, appsrc, width, height, frame_duration, frames: 0 })
    }

    /// Appends one frame. Frames must all have the size given to `create`.
    pub fn push(&mut self, frame: AnonymizedFrame) -> Result<()> {
        let frame = frame.into_frame();
        if frame.width != self.width || frame.height != self.height {
            return Err(self.error(format!(
                "frame is {}x{}, the video is {}x{}",
                frame.width, frame.height, self.width, self.height
            )));
        }
        let default_stride = default_rgb_stride(frame.width);
        let mut buffer = if frame.stride == default_stride {
            match frame.pixels {
                Pixels::Gst(mapped) => mapped.into_buffer(),
                Pixels::Owned(v) => gst::Buffer::from_mut_slice(v),
            }
        } else {
            // Re-lay rows to the stride GStreamer expects for this caps.
            let view = frame.view();
            let mut data = vec![0u8; default_stride * frame.height as usize];
            for y in 0..frame.height {
                let row = view.row(y);
                data[y as usize * default_stride..][..row.len()].copy_from_slice(row);
            }
            gst::Buffer::from_mut_slice(data)
        };
        {
            let b = buffer.make_mut();
            b.set_pts(self.frame_duration * self.frames);
            b.set_duration(self.frame_duration);
        }
        self.appsrc.push_buffer(buffer).map_err(|e| {
            let detail = pipeline_error(&self.pipeline).unwrap_or_else(|| format!("{e:?}"));
            self.error(format!("encoder stopped: {detail}"))
        })?;
        self.frames += 1;
        Ok(())
    }

    /// Ends the stream and waits until the file is complete.
    pub fn finish(self) -> Result<u64> {
        let _ = self.appsrc.end_of_stream();
        let bus = self.pipeline.bus().expect("a pipeline has a bus");
        let result = match bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(msg) => match msg.view() {
                gst::MessageView::Error(err) => Err(self.error(err.error().to_string())),
                _ => Ok(self.frames),
            },
            None => Err(self.error("encoder did not finish within 60 s".into())),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    fn error(&self, message: String) -> Error {
        Error::Output { path: self.path.clone(), message }
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn pipeline_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    let msg = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(200), &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(err.error().to_string()),
        _ => None,
    }
}

/// Counts the frames of a video file by decoding it (used by tests and `iobox blur` checks).
pub fn count_frames(path: &Path) -> Result<(u64, u32, u32)> {
    super::init()?;
    let (rx, handle) = super::open_file(path, &crate::stop::Stop::new())?;
    let (mut n, mut w, mut h) = (0u64, 0u32, 0u32);
    while let Ok(frame) = rx.recv() {
        n += 1;
        w = frame.width();
        h = frame.height();
    }
    handle.join()?;
    Ok((n, w, h))
}
