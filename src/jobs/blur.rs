//! `iobox blur IN OUT`: anonymize a video or image file offline.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::anonymize::BlurConfig;
use crate::capture::encode::{VideoWriter, is_video_path};
use crate::capture::{self, still};
use crate::infer::ModelSource;
use crate::infer::face::FaceConfig;
use crate::stop::Stop;
use crate::track::TrackerConfig;
use crate::worker::{CameraPerception, Perception, PerceptionConfig};

use super::JobError;

pub struct BlurJob {
    pub input: PathBuf,
    pub output: PathBuf,
    pub models: ModelSource,
    pub face: FaceConfig,
    pub blur: BlurConfig,
    /// Also run the person detector and the pose model and blur heads the face detector missed.
    pub pose_backup: bool,
    pub progress: bool,
}

/// What a blur run did, with per-stage medians (milliseconds per frame).
#[derive(Debug, Clone, Serialize)]
pub struct BlurReport {
    pub input: PathBuf,
    pub output: PathBuf,
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub faces_detected: u64,
    /// Heads blurred because the pose model or the person detector saw them and no face box covered them.
    pub heads_added: u64,
    pub regions_blurred: u64,
    pub seconds: f64,
    pub fps: f64,
    pub face_ms: f64,
    pub pose_ms: f64,
    pub blur_ms: f64,
    pub encode_ms: f64,
}

impl BlurJob {
    pub fn run(self, stop: &Stop) -> Result<BlurReport, JobError> {
        if !self.input.exists() {
            return Err(capture::Error::FileNotFound { path: self.input.clone() }.into());
        }
        let in_still = still::is_image_path(&self.input);
        let out_still = still::is_image_path(&self.output);
        if in_still != out_still || !(out_still || is_video_path(&self.output)) {
            return Err(JobError::Usage(format!(
                "{} -> {}: an image must be written as .jpg/.png, a video as .mp4/.mkv",
                self.input.display(),
                self.output.display()
            )));
        }
        let backup = u32::from(self.pose_backup);
        let config = PerceptionConfig {
            face: self.face,
            people_every: backup,
            pose_every: backup,
            ..PerceptionConfig::faces_only()
        };
        let mut perception = Perception::new(&self.models, config)?;
        let blur = if in_still { BlurConfig { hold_frames: 0, ..self.blur } } else { self.blur };
        let mut cam = CameraPerception::new(blur, TrackerConfig::default(), None);
        if in_still {
            self.blur_image(&mut perception, &mut cam)
        } else {
            self.blur_video(&mut perception, &mut cam, stop)
        }
    }

    fn blur_image(&self, perception: &mut Perception, cam: &mut CameraPerception) -> Result<BlurReport, JobError> {
        let start = Instant::now();
        let frame = still::read(&self.input)?;
        let (width, height) = (frame.width(), frame.height());
        let out = perception.process(frame, cam)?;
        let t = Instant::now();
        out.frame.save_image(&self.output)?;
        let encode_ms = t.elapsed().as_secs_f64() * 1000.0;
        let seconds = start.elapsed().as_secs_f64();
        Ok(BlurReport {
            input: self.input.clone(),
            output: self.output.clone(),
            frames: 1,
            width,
            height,
            faces_detected: out.faces_detected as u64,
            heads_added: (out.heads_added + out.person_heads_added) as u64,
            regions_blurred: out.frame.regions_blurred() as u64,
            seconds,
            fps: 1.0 / seconds,
            face_ms: perception.times.face.median_ms(),
            pose_ms: perception.times.pose.median_ms(),
            blur_ms: perception.times.blur.median_ms(),
            encode_ms,
        })
    }

    fn blur_video(
        &self,
        perception: &mut Perception,
        cam: &mut CameraPerception,
        stop: &Stop,
    ) -> Result<BlurReport, JobError> {
        let start = Instant::now();
        let (rx, camera) = capture::open_file(&self.input, stop)?;
        let bar = self.progress.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent:>3}% {elapsed}<{eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(format!("blurring {}", self.input.display()));
            bar
        });
        let mut writer: Option<VideoWriter> = None;
        let mut encode = crate::stats::Ring::default();
        let (mut frames, mut faces, mut heads, mut regions) = (0u64, 0u64, 0u64, 0u64);
        let (mut width, mut height) = (0, 0);
        let mut failure: Option<JobError> = None;
        while let Ok(frame) = rx.recv() {
            if failure.is_some() {
                continue; // drain so the capture thread can finish
            }
            let pts = frame.meta.pts;
            let fps = frame.meta.fps.unwrap_or(25.0);
            if writer.is_none() {
                width = frame.width();
                height = frame.height();
                match VideoWriter::create(&self.output, width, height, fps) {
                    Ok(w) => writer = Some(w),
                    Err(e) => {
                        failure = Some(e.into());
                        stop.request();
                        continue;
                    }
                }
            }
            let out = match perception.process(frame, cam) {
                Ok(out) => out,
                Err(e) => {
                    failure = Some(e.into());
                    stop.request();
                    continue;
                }
            };
            faces += out.faces_detected as u64;
            heads += (out.heads_added + out.person_heads_added) as u64;
            regions += out.frame.regions_blurred() as u64;
            let w = writer.as_mut().expect("created above");
            let t = Instant::now();
            if let Err(e) = w.push(out.frame) {
                failure = Some(e.into());
                stop.request();
                continue;
            }
            encode.push(t.elapsed());
            frames += 1;
            if let Some(bar) = &bar {
                let total = camera.status.duration_ms.load(Ordering::Relaxed);
                if total > 0 && bar.length() != Some(total) {
                    bar.set_length(total);
                }
                bar.set_position(pts.unwrap_or(Duration::ZERO).as_millis() as u64);
            }
        }
        let capture_result = camera.join();
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        if let Some(e) = failure {
            return Err(e);
        }
        capture_result?;
        let Some(writer) = writer else {
            return Err(JobError::Usage(format!("{} holds no video frames", self.input.display())));
        };
        let t = Instant::now();
        writer.finish()?;
        encode.push(t.elapsed());
        let seconds = start.elapsed().as_secs_f64();
        Ok(BlurReport {
            input: self.input.clone(),
            output: self.output.clone(),
            frames,
            width,
            height,
            faces_detected: faces,
            heads_added: heads,
            regions_blurred: regions,
            seconds,
            fps: frames as f64 / seconds,
            face_ms: perception.times.face.median_ms(),
            pose_ms: perception.times.pose.median_ms(),
            blur_ms: perception.times.blur.median_ms(),
            encode_ms: encode.median_ms(),
        })
    }
}
