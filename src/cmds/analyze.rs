//! `iobox analyze`: what the models see, frame by frame.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::{load_config, model_source, stop_on_signal};

#[derive(Args)]
pub(crate) struct AnalyzeArgs {
    /// An image (.jpg, .png) or a video.
    pub(crate) input: PathBuf,
    /// The camera's calibration file, for floor positions in metres.
    #[arg(long)]
    pub(crate) calibration: Option<PathBuf>,
    /// Take model settings from this config file.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// One JSON object per frame (JSON Lines), then an `end` record.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    use iobox::jobs::analyze::{AnalyzeJob, Record};
    use std::io::Write;
    let config = load_config(args.config.as_ref())?;
    let models = model_source(&config)?;
    let calibration = args.calibration.as_deref().map(iobox::calibration::Calibration::load).transpose()?;
    let job = AnalyzeJob { input: args.input, models, perception: config.perception, blur: config.blur, calibration };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    job.run(&stop_on_signal(), |record| {
        let line = if args.json {
            serde_json::to_string(&record).unwrap_or_default()
        } else {
            match &record {
                Record::Frame(f) => {
                    let moods: Vec<String> = f
                        .faces
                        .iter()
                        .filter_map(|x| match &x.emotion {
                            Some(e) => e.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, v)| format!("{k} {v:.2}")),
                            None => x.expression.map(str::to_string),
                        })
                        .collect();
                    let tracks: Vec<String> = f.people.iter().filter_map(|p| p.track.clone()).collect();
                    format!(
                        "frame {}: {} faces [{}], {} people, tracks [{}]",
                        f.frame,
                        f.faces.len(),
                        moods.join(", "),
                        f.people.len(),
                        tracks.join(", ")
                    )
                }
                Record::End { frames, .. } => format!("{frames} frames"),
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            write_error.get_or_insert(e);
        }
    })?;
    out.flush()?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}
