//! `iobox calibrate overlay`: the calibration drawn on an anonymized frame and on the floor plan.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::anonymize::{AnonymizedFrame, BlurConfig};
use crate::calibration::Calibration;
use crate::capture::{self, still};
use crate::infer::ModelSource;
use crate::overlay;
use crate::stop::Stop;
use crate::worker::{CameraPerception, Perception, PerceptionConfig};

use super::JobError;

/// Reads one frame (a still, or the first video frame at or after `at`) and anonymizes it with the face
/// detector and the pose backup.
pub fn anonymized_frame(
    input: &Path,
    at: Duration,
    models: &ModelSource,
    perception: PerceptionConfig,
) -> Result<AnonymizedFrame, JobError> {
    if !input.exists() {
        return Err(capture::Error::FileNotFound { path: input.to_path_buf() }.into());
    }
    let raw = if still::is_image_path(input) {
        still::read(input)?
    } else {
        let stop = Stop::new();
        let (rx, cam) = capture::open_file(input, &stop)?;
        let mut chosen = None;
        while let Ok(frame) = rx.recv() {
            if chosen.is_none() && frame.meta.pts.unwrap_or(Duration::ZERO) >= at {
                chosen = Some(frame);
                stop.request();
            }
        }
        let _ = cam.join();
        chosen
            .ok_or_else(|| JobError::Usage(format!("{} has no frame at {:.1} s", input.display(), at.as_secs_f64())))?
    };
    let config = PerceptionConfig { emotion_enabled: false, people_every: 1, pose_every: 1, ..perception };
    let mut p = Perception::new(models, config)?;
    let mut cam = CameraPerception::new(BlurConfig { hold_frames: 0, ..BlurConfig::default() }, config.tracker, None);
    Ok(p.process(raw, &mut cam)?.frame)
}

/// Writes the camera overlay to `out` and the floor-plan overlay to `plan_out`.
pub fn overlay(cal: &Calibration, frame: &AnonymizedFrame, out: &Path, plan_out: &Path) -> Result<(), JobError> {
    overlay::camera_overlay(frame, cal).save(out)?;
    overlay::plan_overlay(&[cal])?.save(plan_out)?;
    Ok(())
}

/// `x.png` -> `x-plan.png`.
pub fn plan_path_for(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "overlay".into());
    out.with_file_name(format!("{stem}-plan.png"))
}
