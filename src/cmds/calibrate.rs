//! `iobox calibrate`: check a calibration, draw it, turn files into a site.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::{load_config, model_source};

#[derive(Subcommand)]
pub(crate) enum CalibrateCommand {
    /// Validate a calibration file (or every *.toml in a folder) and print the fit and its error per point.
    Check { path: PathBuf },
    /// Draw the calibration on an anonymized frame (floor grid every metre, zones, lines, point pairs with
    /// their residuals) and on the floor plan (field of view, zones, lines).
    Overlay {
        file: PathBuf,
        /// A photo or video from this camera (faces are blurred before drawing).
        #[arg(long)]
        frame: PathBuf,
        /// With a video: the time of the frame to use, in seconds.
        #[arg(long, default_value_t = 0.0)]
        at: f64,
        /// The camera picture (PNG).
        #[arg(long)]
        out: PathBuf,
        /// The floor-plan picture (default: OUT with -plan before .png).
        #[arg(long)]
        plan_out: Option<PathBuf>,
        /// Take model settings from this config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Turn one-file calibrations (each with its own floor plan, zones and lines) into one site file and
    /// camera files that name it; each old file is kept beside it as FILE.one-file.bak.
    ToSite {
        /// The cameras' calibration files (one folder).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The site file to write, in the same folder (it must not exist yet).
        #[arg(long)]
        site: PathBuf,
    },
}

pub(crate) fn calibrate(cmd: CalibrateCommand) -> Result<ExitCode> {
    match cmd {
        CalibrateCommand::Check { path } => {
            let cals = if path.is_dir() {
                iobox::calibration::Calibration::load_dir(&path)?
            } else {
                vec![iobox::calibration::Calibration::load(&path)?]
            };
            for cal in &cals {
                outln!("{}", cal.check_report())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        CalibrateCommand::ToSite { files, site } => {
            let written = iobox::jobs::calibrate::to_site(&files, &site)?;
            outln!("{written}")?;
            Ok(ExitCode::SUCCESS)
        }
        CalibrateCommand::Overlay { file, frame, at, out, plan_out, config } => {
            use iobox::jobs::calibrate;
            if !(at.is_finite() && at >= 0.0) {
                bail!("--at {at}: give a time in seconds from the start");
            }
            let cal = iobox::calibration::Calibration::load(&file)?;
            let config = load_config(config.as_ref())?;
            let models = model_source(&config)?;
            let anonymized = calibrate::anonymized_frame(
                &frame,
                std::time::Duration::from_secs_f64(at),
                &models,
                config.perception,
            )?;
            let plan_out = plan_out.unwrap_or_else(|| calibrate::plan_path_for(&out));
            calibrate::overlay(&cal, &anonymized, &out, &plan_out)?;
            outln!("{}\n{}", out.display(), plan_out.display())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
