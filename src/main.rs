//! The `iobox` command: parse arguments, load the config, run, and turn errors into a message and an exit
//! code (0 success, 1 failure, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

use std::io::Write as _;

use iobox::anonymize::{BlurConfig, BlurMethod};
use iobox::config::{Config, DEFAULT_CONFIG};
use iobox::infer::face::FaceConfig;
use iobox::infer::{ModelKind, ModelSource};
use iobox::jobs::blur::BlurJob;
use iobox::jobs::run::{RunOptions, run};
use iobox::stop::Stop;

mod cmds;

#[derive(Parser)]
#[command(
    name = "iobox",
    version,
    about = "Privacy-first retail behaviour appliance: blurs every face, keeps only anonymous events.",
    long_about = "iobox reads camera streams or video files, blurs every face before anything else sees the \
                  frame, and writes anonymous events to a local SQLite file. No raw frame is stored or sent.\n\n\
                  Start here:\n  iobox run                      process the bundled sample clip with the default config\n  \
                  iobox blur IN.mp4 OUT.mp4      anonymize a video (or IN.jpg OUT.jpg for a photo)\n  \
                  iobox config default > my.toml write the default config, edit it, then: iobox run --config my.toml"
)]
struct Cli {
    /// More log output (-v info, -vv debug). IOBOX_LOG=... overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Anonymize a video or image file: every face blurred, same size and frame count.
    Blur(BlurArgs),
    /// Run the appliance: cameras from the config, faces blurred, events to SQLite.
    Run(RunArgs),
    /// Show what the models see, frame by frame: faces, expressions, people, keypoints, tracks, floor positions.
    Analyze(AnalyzeArgs),
    /// Check the bundled models against models/manifest.toml and load each one.
    Models {
        /// Folder with the models (default: models/ of the iobox checkout, or $IOBOX_MODELS).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Camera calibration (image <-> floor plan): check a file, draw it on a frame and on the plan.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),
    /// Figures for a store manager (footfall, dwell, funnels, queues, mood), k-anonymous.
    Report(ReportArgs),
    /// Write every event table to one CSV or Parquet file each, for BI tools (raw rows, not k-suppressed).
    Export(ExportArgs),
    /// The staff dashboard: footfall, heatmaps, zones, journeys, cameras, and its JSON API (log in first).
    Serve(ServeArgs),
    /// Dashboard users: add (with a password and a role), list, remove.
    #[command(subcommand)]
    User(UserCommand),
    /// Draw where people were (presence) or lingered (dwell) on the floor plan, with a colour bar (PNG).
    Heatmap(HeatmapArgs),
    /// Close this store's finished hours and days into its outbox and deliver them to head office once
    /// (`iobox run` does this continually when `[chain]` is set).
    Sync(cmds::chain::SyncArgs),
    /// Head office: set up the chain's PostgreSQL, add stores, report over every store.
    #[command(subcommand)]
    Chain(cmds::chain::ChainCommand),
    /// Check this box: GStreamer plugins, ONNX Runtime, models, cameras, disk, clock, head office; says
    /// what to fix (exit 1 when a check fails).
    Doctor(cmds::doctor::DoctorArgs),
}

#[derive(Args)]
struct HeatmapArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// presence (where people are) or dwell (where they linger).
    #[arg(long, value_enum, default_value = "presence")]
    kind: iobox::heatmap::HeatKind,
    /// Only this camera (default: every camera on the floor plan).
    #[arg(long)]
    camera: Option<String>,
    /// The picture to write (.png).
    #[arg(long)]
    out: PathBuf,
}

/// Where the dashboard and `iobox user` find the database.
#[derive(Args)]
struct DbArgs {
    /// Config file: the database, cameras, `[privacy] min_tracks`, `[dashboard]` (default: the embedded config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The SQLite file to use instead of the config's.
    #[arg(long)]
    db: Option<PathBuf>,
}

impl DbArgs {
    fn load(&self) -> Result<Config> {
        let mut config = load_config(self.config.as_ref())?;
        if let Some(db) = &self.db {
            config.store_path = db.clone();
        }
        Ok(config)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address and port to listen on (default: [dashboard] listen, 127.0.0.1:8080). Port 0 picks a free one.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a dashboard user; the password is asked for without echo (or read from stdin).
    Add {
        name: String,
        /// staff: the figures; integrator: also each camera's calibration.
        #[arg(long, value_enum)]
        role: iobox::server::Role,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Change the password and role of an existing user.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the users and their roles.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a user (their sessions end at their next request).
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The database and the period read by `iobox report` and `iobox export`.
#[derive(Args)]
struct ReadArgs {
    /// Config file: the database, and `[privacy] min_tracks` for reports (default: the embedded config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The SQLite file to read instead of the config's.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Start: RFC 3339, a local date (2026-11-29) or date and time, today, or relative (-7d, -12h).
    /// Default: report 7 days ago, export everything.
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// End (exclusive), in the same forms. Default: no end.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
}

impl ReadArgs {
    /// The config, the database path and the period (from `default_from(now)` without `--from`).
    fn resolve(&self, default_from: impl FnOnce(i64) -> i64) -> Result<(Config, PathBuf, iobox::store::query::Period)> {
        let config = load_config(self.config.as_ref())?;
        let now = iobox::store::writer::now_ms();
        let period = iobox::jobs::report::period(self.from.as_deref(), self.to.as_deref(), now, default_from(now))?;
        let db = self.db.clone().unwrap_or_else(|| config.store_path.clone());
        Ok((config, db, period))
    }
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    read: ReadArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: iobox::jobs::report::ReportFormat,
    /// Follow these zones in order (A,B,C) instead of listing every pair of zones.
    #[arg(long, value_delimiter = ',')]
    funnel: Option<Vec<String>>,
    /// How many of the most frequent journeys to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long, value_enum)]
    format: iobox::jobs::export::ExportFormat,
    /// Folder for the files (created if missing): events, occupancy, queue_samples, journeys, mood, heat,
    /// frame_log, each .csv or .parquet.
    #[arg(long)]
    out: PathBuf,
    /// Write the reports' k-suppressed sections over whole buckets (one CSV each) instead of per-event rows.
    #[arg(long)]
    k_anonymous: bool,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Subcommand)]
enum CalibrateCommand {
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the embedded default configuration (a commented starting point).
    Default,
    /// Validate a config file and print what it resolves to.
    Check { file: PathBuf },
}

#[derive(Args)]
struct BlurArgs {
    /// Input video (anything GStreamer decodes) or image (.jpg, .png).
    input: PathBuf,
    /// Output: .mp4 or .mkv for a video, .jpg or .png for an image.
    output: PathBuf,
    /// Take face and blur settings from this config file (flags below override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// gaussian, pixelate or solid.
    #[arg(long, value_enum)]
    method: Option<BlurMethod>,
    /// Longer side, in pixels, of the image the face detector sees (larger finds smaller faces).
    #[arg(long)]
    face_size: Option<u32>,
    /// Minimum face score, 0..1.
    #[arg(long)]
    min_score: Option<f32>,
    /// Frames a face stays blurred after it was last detected.
    #[arg(long)]
    hold: Option<u32>,
    /// Also run the person detector and the pose model, and blur the head of every person whose face the
    /// face detector missed (slower; `iobox run` always does this).
    #[arg(long)]
    pose_backup: bool,
    /// Print a JSON report (frames, faces, per-stage milliseconds) when done.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// An image (.jpg, .png) or a video.
    input: PathBuf,
    /// The camera's calibration file, for floor positions in metres.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Take model settings from this config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One JSON object per frame (JSON Lines), then an `end` record.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Config file (default: the embedded config, which processes the bundled sample clip).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Write events to this SQLite file instead of the config's.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Also record each camera's anonymized video here (.mp4 or .mkv; `{camera}` becomes the camera name).
    #[arg(long, value_name = "PATH")]
    record: Option<String>,
    /// Stop after this many seconds of capture (counted from when the cameras start, after the models load).
    #[arg(long = "for", value_name = "SECONDS")]
    duration: Option<f64>,
    /// Print the run report as JSON.
    #[arg(long)]
    json: bool,
    /// Also serve the staff dashboard from this process, with live anonymized previews and alerts; it keeps
    /// serving after the cameras end, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// With --serve: address and port (default: [dashboard] listen).
    #[arg(long, requires = "serve")]
    listen: Option<std::net::SocketAddr>,
}

/// `println!` that returns the write's error instead of panicking (stdout closed early, a full disk):
/// see [`quiet_on_broken_pipe`].
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).context("cannot write to standard output")
    };
}

/// `print!` likewise.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*).context("cannot write to standard output")
    };
}

/// Whether `e` comes from standard output closed by its reader (`iobox report | head`): the command
/// then ends quietly, as Unix tools do.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

fn main() -> ExitCode {
    // Everything iobox writes (the database, recordings, snapshots, exports, pictures, and what GStreamer
    // and SQLite create for it) is readable by its own user only: files 0600, folders 0700.
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // Two malloc arenas, set before any thread starts. glibc's default (8 per core) gives each of the threads
    // GStreamer starts anew on every camera reconnect (rtspsrc, decoders) an arena whose freed memory is
    // kept: measured 0.91 MiB more RSS per RTSP reconnect (342 -> 415 MiB over 80) with the default, 0.02 MiB
    // (229 -> 231 MiB) with two (tests/it/rtsp.rs). Frame buffers are reused, so contention is low.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.verbose);
    // Output is flushed here so that a write error (a full disk) is reported rather than lost at exit.
    let result = dispatch(cli.command).and_then(|code| {
        std::io::Write::flush(&mut std::io::stdout()).context("cannot write to standard output")?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,iobox=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOBOX_LOG").unwrap_or_else(|_| default.into());
    // Colours only on a terminal: logs piped to a file or journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

fn stop_on_signal() -> Stop {
    let stop = Stop::new();
    on_signal(&[&stop]);
    stop
}

/// Ctrl-C and SIGTERM request each of `stops` (the handler can be installed once per process).
fn on_signal(stops: &[&Stop]) {
    let stops: Vec<Stop> = stops.iter().map(|s| (*s).clone()).collect();
    if let Err(e) = ctrlc::set_handler(move || stops.iter().for_each(Stop::request)) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::embedded_default()?,
    })
}

fn model_source(config: &Config) -> Result<ModelSource> {
    iobox::infer::runtime::ensure_loaded(config.onnxruntime.as_deref())?;
    let dir = config.models_dir.clone().or_else(iobox::infer::find_models_dir).context(
        "the bundled models were not found: run iobox from its checkout, or set IOBOX_MODELS or [models] dir",
    )?;
    let mut models = ModelSource::new(dir);
    models.overrides = config.model_overrides.clone();
    models.intra_threads = config.intra_threads;
    Ok(models)
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Blur(args) => blur(args),
        Command::Run(args) => run_appliance(args),
        Command::Analyze(args) => analyze(args),
        Command::Report(args) => report(args),
        Command::Export(args) => export(args),
        Command::Heatmap(args) => heatmap(args),
        Command::Serve(args) => serve(args),
        Command::User(cmd) => user(cmd),
        Command::Sync(args) => cmds::chain::sync(args),
        Command::Chain(cmd) => cmds::chain::chain(cmd),
        Command::Doctor(args) => cmds::doctor::doctor(args),
        Command::Calibrate(CalibrateCommand::Check { path }) => {
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
        Command::Calibrate(CalibrateCommand::ToSite { files, site }) => {
            let written = iobox::jobs::calibrate::to_site(&files, &site)?;
            outln!("{written}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Calibrate(CalibrateCommand::Overlay { file, frame, at, out, plan_out, config }) => {
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
        Command::Models { dir } => {
            let mut config = Config::embedded_default()?;
            if dir.is_some() {
                config.models_dir = dir;
            }
            let models = model_source(&config)?;
            for kind in ModelKind::ALL {
                let session = models.load(kind)?;
                drop(session);
                outln!("{kind}: ok")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Default) => {
            out!("{DEFAULT_CONFIG}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let c = Config::load(&file)?;
            outln!("{}: ok", file.display())?;
            outln!("  database: {}", c.store_path.display())?;
            for cam in &c.cameras {
                let desc = if cam.source.kind == iobox::capture::SourceKind::Usb {
                    format!("USB camera {}", cam.source.uri)
                } else {
                    // Parsed and checked against the allow-list, as `run` will.
                    cam.source.build_pipeline()?.2
                };
                outln!("  camera '{}': {desc}", cam.source.name)?;
            }
            for rule in &c.alerts.rules {
                outln!("  alert {rule}")?;
            }
            if let Some(m) = &c.alerts.mqtt {
                outln!("  alerts to {m}, topic {}/<rule>", c.alerts.topic)?;
            }
            if let Some(w) = &c.alerts.webhook {
                outln!("  alerts to {w}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn blur(args: BlurArgs) -> Result<ExitCode> {
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

fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
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

fn run_appliance(args: RunArgs) -> Result<ExitCode> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(db) = args.db {
        config.store_path = db;
    }
    if let Some(r) = args.record {
        iobox::config::record_path(&r, config.cameras.len()).map_err(|m| anyhow!("--record: {m}"))?;
        config.record = Some(r);
    }
    if let Some(s) = args.duration
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--for {s}: give a positive number of seconds");
    }
    tracing::info!(config = %config.origin, db = %config.store_path.display(), cameras = config.cameras.len(), "starting");
    // The run requests its own stop when its cameras end; the dashboard serves on until a signal.
    let (stop, signal) = (Stop::new(), Stop::new());
    on_signal(&[&stop, &signal]);
    let live = args.serve.then(|| iobox::live::Live::new(config.dashboard.preview_every));
    let server = match &live {
        Some(live) => Some(iobox::server::Server::start(
            &config,
            args.listen.unwrap_or(config.dashboard.listen),
            Some(live.clone()),
        )?),
        None => None,
    };
    let options =
        RunOptions { max_duration: args.duration.map(std::time::Duration::from_secs_f64), live, ..Default::default() };
    let report = run(&config, &stop, &options)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for c in &report.cameras {
            eprintln!(
                "camera '{}': {} frames ({:.1}/s sustained), {} faces blurred, {} dropped ({:.1}%), {} reconnects{}{}",
                c.name,
                c.frames_processed,
                c.sustained_fps,
                c.faces_detected,
                c.frames_dropped,
                c.dropped_fraction * 100.0,
                c.reconnects,
                c.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default(),
                c.last_problem
                    .as_ref()
                    .filter(|_| c.error.is_none())
                    .map(|e| format!(", last problem: {e}"))
                    .unwrap_or_default()
            );
        }
        eprintln!(
            "{} events written to {} in {:.1} s",
            report.events_written,
            report.database.display(),
            report.seconds
        );
        if let Some(a) = &report.alerts {
            eprintln!(
                "alerts: {} fired, {} cleared; {} sent to MQTT, {} to the webhook, {} dropped, {} errors",
                a.fired, a.cleared, a.mqtt_sent, a.webhook_posted, a.dropped, a.errors
            );
        }
        if let Some(c) = &report.chain {
            eprintln!(
                "chain: store '{}': {} rows delivered{}, backlog {} rows{}{}",
                c.store,
                c.rows_delivered,
                c.target.as_ref().map(|t| format!(" to {t}")).unwrap_or_else(|| " (no chain.url)".into()),
                c.backlog_rows,
                c.backlog_age_s.map(|a| format!(", the oldest {a:.0} s old")).unwrap_or_default(),
                c.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
            );
        }
        if let Some(r) = &config.record {
            for c in &config.cameras {
                eprintln!("anonymized video of '{}': {}", c.source.name, r.replace("{camera}", &c.source.name));
            }
        }
    }
    if let Some(server) = server {
        if !signal.requested() {
            eprintln!("the cameras have ended; the dashboard is still at http://{} (Ctrl-C to stop)", server.addr());
            while !signal.sleep(std::time::Duration::from_secs(3600)) {}
        }
        server.stop();
    }
    if report.events_dropped > 0 {
        eprintln!(
            "error: {} records could not be written to {} and are lost (see the log for why)",
            report.events_dropped,
            report.database.display()
        );
    }
    // 1: a camera failed for good; 3: every camera ran but records were lost.
    Ok(if report.failed().next().is_some() {
        ExitCode::from(1)
    } else if report.events_dropped > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let config = args.db.load()?;
    let stop = stop_on_signal();
    let server = iobox::server::Server::start(&config, args.listen.unwrap_or(config.dashboard.listen), None)?;
    eprintln!("dashboard: http://{} (Ctrl-C to stop)", server.addr());
    while !stop.sleep(std::time::Duration::from_secs(3600)) {}
    server.stop();
    Ok(ExitCode::SUCCESS)
}

fn user(cmd: UserCommand) -> Result<ExitCode> {
    use iobox::server::auth;
    use iobox::store::users;
    match cmd {
        UserCommand::Add { name, role, password_stdin, replace, db } => {
            auth::valid_name(&name)?;
            let config = db.load()?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let first = rpassword::prompt_password(format!("password for {name}: "))
                    .context("reading the password (use --password-stdin without a terminal)")?;
                let again = rpassword::prompt_password("again: ")?;
                if first != again {
                    bail!("the two passwords differ");
                }
                first
            };
            let hash = auth::hash_password(&password)?;
            let user = users::User {
                name: name.clone(),
                password_hash: hash,
                role: role.as_str().to_string(),
                created_at_ms: iobox::store::writer::now_ms(),
            };
            let existed = users::add(&config.store_path, &user, replace)?;
            eprintln!(
                "{} user '{name}' ({}) in {}",
                if existed { "changed" } else { "added" },
                role.as_str(),
                config.store_path.display()
            );
        }
        UserCommand::List { db } => {
            let config = db.load()?;
            drop(iobox::store::open_rw(&config.store_path)?);
            let pool = iobox::store::ReadPool::open(&config.store_path, 1)?;
            for u in pool.with(users::list)? {
                outln!("{}\t{}", u.name, u.role)?;
            }
        }
        UserCommand::Remove { name, db } => {
            let config = db.load()?;
            if !users::remove(&config.store_path, &name)? {
                bail!("there is no user called '{name}' in {}", config.store_path.display());
            }
            eprintln!("removed user '{name}'");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs) -> Result<ExitCode> {
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

fn heatmap(args: HeatmapArgs) -> Result<ExitCode> {
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

fn export(args: ExportArgs) -> Result<ExitCode> {
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
