//! `iobox report`, `iobox export`, `iobox heatmap`: what the store's figures say.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cmds::ReadArgs;

#[derive(Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: iobox::jobs::report::ReportFormat,
    /// Follow these zones in order (A,B,C) instead of listing every pair of zones.
    #[arg(long, value_delimiter = ',')]
    pub(crate) funnel: Option<Vec<String>>,
    /// How many of the most frequent journeys to list.
    #[arg(long, default_value_t = 10)]
    pub(crate) top: usize,
}

pub(crate) fn report(args: ReportArgs) -> Result<ExitCode> {
    use iobox::jobs::report::{ReportOptions, build, render};
    let (config, db, period) = args.read.resolve(|now| now - 7 * 86_400_000)?;
    let options = ReportOptions {
        db,
        period,
        k: config.min_tracks,
        funnel: args.funnel.filter(|z| !z.is_empty()),
        top_journeys: args.top,
    };
    out!("{}", render(&build(&options)?, args.format))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    #[arg(long, value_enum)]
    pub(crate) format: iobox::jobs::export::ExportFormat,
    /// Folder for the files (created if missing): events, occupancy, queue_samples, journeys, mood, heat,
    /// frame_log, each .csv or .parquet.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Write the reports' k-suppressed sections over whole buckets (one CSV each) instead of per-event rows.
    #[arg(long)]
    pub(crate) k_anonymous: bool,
    #[command(flatten)]
    pub(crate) read: ReadArgs,
}

pub(crate) fn export(args: ExportArgs) -> Result<ExitCode> {
    let (config, db, period) = args.read.resolve(|_| i64::MIN)?;
    let written = if args.k_anonymous {
        if args.format != iobox::jobs::export::ExportFormat::Csv {
            bail!("--k-anonymous writes CSV only (the report's sections): use --format csv");
        }
        let options =
            iobox::jobs::report::ReportOptions { db, period, k: config.min_tracks, funnel: None, top_journeys: 10 };
        iobox::jobs::export::export_k_anonymous(&options, &args.out)?
    } else {
        eprintln!("note: {}", iobox::jobs::export::PER_EVENT_NOTE);
        iobox::jobs::export::export(&db, period, args.format, &args.out)?
    };
    for f in written {
        outln!("{}\t{} rows", f.path.display(), f.rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct HeatmapArgs {
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    /// presence (where people are) or dwell (where they linger).
    #[arg(long, value_enum, default_value = "presence")]
    pub(crate) kind: iobox::heatmap::HeatKind,
    /// Only this camera (default: every camera on the floor plan).
    #[arg(long)]
    pub(crate) camera: Option<String>,
    /// The picture to write (.png).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

pub(crate) fn heatmap(args: HeatmapArgs) -> Result<ExitCode> {
    use iobox::jobs::heatmap::{heatmap, site_floor_plan};
    let (config, db, period) = args.read.resolve(|now| now - 7 * 86_400_000)?;
    if let Some(c) = &args.camera
        && !config.cameras.iter().any(|cam| &cam.source.name == c)
    {
        bail!("--camera {c}: no such camera in {}", config.origin);
    }
    let plan = site_floor_plan(&config)?;
    let title = iobox::jobs::heatmap::title(
        args.kind,
        (period.from_ms != i64::MIN).then_some(period.from_ms),
        (period.to_ms != i64::MAX).then_some(period.to_ms),
        args.camera.as_deref(),
    );
    let (picture, legend) = heatmap(&db, &plan, period, config.min_tracks, args.kind, args.camera.as_deref(), &title)?;
    picture.save(&args.out)?;
    eprintln!(
        "{}: {} cells, {} suppressed (fewer than {} people), scale 0..{:.1} {}",
        args.out.display(),
        legend.cells_drawn,
        legend.cells_suppressed,
        config.min_tracks,
        legend.max,
        legend.unit
    );
    Ok(ExitCode::SUCCESS)
}
