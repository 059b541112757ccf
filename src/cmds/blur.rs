//! `iobox blur`: a video or photo with every face blurred.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;

use iobox::anonymize::{BlurConfig, BlurMethod};
use iobox::infer::face::FaceConfig;
use iobox::jobs::blur::BlurJob;

use crate::{load_config, model_source, stop_on_signal};

#[derive(Args)]
pub(crate) struct BlurArgs {
    /// Input video (anything GStreamer decodes) or image (.jpg, .png).
    pub(crate) input: PathBuf,
    /// Output: .mp4 or .mkv for a video, .jpg or .png for an image.
    pub(crate) output: PathBuf,
    /// Take face and blur settings from this config file (flags below override it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// gaussian, pixelate or solid.
    #[arg(long, value_enum)]
    pub(crate) method: Option<BlurMethod>,
    /// Longer side, in pixels, of the image the face detector sees (larger finds smaller faces).
    #[arg(long)]
    pub(crate) face_size: Option<u32>,
    /// Minimum face score, 0..1.
    #[arg(long)]
    pub(crate) min_score: Option<f32>,
    /// Frames a face stays blurred after it was last detected.
    #[arg(long)]
    pub(crate) hold: Option<u32>,
    /// Also run the person detector and the pose model, and blur the head of every person whose face the
    /// face detector missed (slower; `iobox run` always does this).
    #[arg(long)]
    pub(crate) pose_backup: bool,
    /// Print a JSON report (frames, faces, per-stage milliseconds) when done.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

pub(crate) fn blur(args: BlurArgs) -> Result<ExitCode> {
    let config = load_config(args.config.as_ref())?;
    let models = model_source(&config)?;
    let mut face: FaceConfig = config.perception.face;
    if let Some(s) = args.face_size {
        face.input_long_side = iobox::config::model_input_size(s).map_err(|m| anyhow!("--face-size: {m}"))?;
    }
    if let Some(s) = args.min_score {
        face.min_score = iobox::config::min_score(s).map_err(|m| anyhow!("--min-score: {m}"))?;
    }
    let mut blur: BlurConfig = config.blur;
    if let Some(m) = args.method {
        blur.method = m;
    }
    if let Some(h) = args.hold {
        blur.hold_frames = h;
    }
    let job = BlurJob {
        input: args.input,
        output: args.output,
        models,
        face,
        blur,
        pose_backup: args.pose_backup,
        progress: !args.quiet && !args.json,
    };
    let report = job.run(&stop_on_signal())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        eprintln!(
            "{} -> {}: {} frames ({}x{}), {} faces blurred, {:.1} s ({:.1} frames/s)",
            report.input.display(),
            report.output.display(),
            report.frames,
            report.width,
            report.height,
            report.regions_blurred,
            report.seconds,
            report.fps
        );
    }
    Ok(ExitCode::SUCCESS)
}
