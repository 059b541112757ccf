//! The `iobox` command: parse arguments, load the config, run, and turn errors into a message and an exit
//! code (0 success, 1 failure, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use std::io::Write as _;

use iobox::config::{Config, DEFAULT_CONFIG};
use iobox::infer::{ModelKind, ModelSource};
use iobox::stop::Stop;

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
    Blur(cmds::blur::BlurArgs),
    /// Run the appliance: cameras from the config, faces blurred, events to SQLite.
    Run(cmds::run::RunArgs),
    /// Show what the models see, frame by frame: faces, expressions, people, keypoints, tracks, floor positions.
    Analyze(cmds::analyze::AnalyzeArgs),
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
    Calibrate(cmds::calibrate::CalibrateCommand),
    /// Figures for a store manager (footfall, dwell, funnels, queues, mood), k-anonymous.
    Report(cmds::report::ReportArgs),
    /// Write every event table to one CSV or Parquet file each, for BI tools (raw rows, not k-suppressed).
    Export(cmds::report::ExportArgs),
    /// The staff dashboard: footfall, heatmaps, zones, journeys, cameras, and its JSON API (log in first).
    Serve(cmds::serve::ServeArgs),
    /// Dashboard users: add (with a password and a role), list, remove.
    #[command(subcommand)]
    User(cmds::serve::UserCommand),
    /// Draw where people were (presence) or lingered (dwell) on the floor plan, with a colour bar (PNG).
    Heatmap(cmds::report::HeatmapArgs),
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the embedded default configuration (a commented starting point).
    Default,
    /// Validate a config file and print what it resolves to.
    Check { file: PathBuf },
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

mod cmds;

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
        Command::Blur(args) => cmds::blur::blur(args),
        Command::Run(args) => cmds::run::run_appliance(args),
        Command::Analyze(args) => cmds::analyze::analyze(args),
        Command::Report(args) => cmds::report::report(args),
        Command::Export(args) => cmds::report::export(args),
        Command::Heatmap(args) => cmds::report::heatmap(args),
        Command::Serve(args) => cmds::serve::serve(args),
        Command::User(cmd) => cmds::serve::user(cmd),
        Command::Sync(args) => cmds::chain::sync(args),
        Command::Chain(cmd) => cmds::chain::chain(cmd),
        Command::Doctor(args) => cmds::doctor::doctor(args),
        Command::Calibrate(cmd) => cmds::calibrate::calibrate(cmd),
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
