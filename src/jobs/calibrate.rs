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

/// `iobox calibrate to-site`: writes the site file and the converted camera files (each old one kept as
/// FILE.one-file.bak), then reads them back and checks that every camera has the same fit, zones and lines
/// as before; on any difference or error the old files are put back. Returns what it did, in words.
pub fn to_site(files: &[PathBuf], site: &Path) -> Result<String, JobError> {
    if site.exists() {
        return Err(JobError::Usage(format!("{} exists already; name a new site file", site.display())));
    }
    let before = files.iter().map(|f| Calibration::load(f)).collect::<Result<Vec<_>, _>>()?;
    let (site_text, cameras) = crate::calibration::to_site(files, site)?;
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| JobError::Output { path: path.to_path_buf(), message: e.to_string() })
    };
    let backup = |f: &Path| PathBuf::from(format!("{}.one-file.bak", f.display()));
    write(site, &site_text)?;
    let restore = || {
        for f in files {
            let _ = std::fs::rename(backup(f), f);
        }
        let _ = std::fs::remove_file(site);
    };
    for (file, text) in &cameras {
        let kept = std::fs::copy(file, backup(file))
            .map_err(|e| JobError::Output { path: backup(file), message: e.to_string() })
            .and_then(|_| write(file, text));
        if let Err(e) = kept {
            restore();
            return Err(e);
        }
    }
    for (old, file) in before.iter().zip(files) {
        let same = Calibration::load(file).map(|new| {
            new.zones == old.zones && new.lines == old.lines && new.fit == old.fit && new.floor_plan == old.floor_plan
        });
        if !matches!(same, Ok(true)) {
            restore();
            return Err(JobError::Usage(format!(
                "{} did not read back the same after conversion ({}); the old files are back",
                file.display(),
                same.err().map_or_else(|| "zones, lines or fit differ".to_string(), |e| e.to_string())
            )));
        }
    }
    Ok(format!(
        "wrote {} ({} zones, {} lines) and {} camera files naming it; the old files are kept as FILE.one-file.bak",
        site.display(),
        before.iter().flat_map(|c| &c.zones).map(|z| &z.name).collect::<std::collections::HashSet<_>>().len(),
        before.iter().flat_map(|c| &c.lines).map(|l| &l.name).collect::<std::collections::HashSet<_>>().len(),
        cameras.len()
    ))
}
