//! `iobox run`: the appliance.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use iobox::jobs::run::{RunOptions, run};
use iobox::stop::Stop;

use crate::{load_config, on_signal};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Config file (default: the embedded config, which processes the bundled sample clip).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Write events to this SQLite file instead of the config's.
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
    /// Also record each camera's anonymized video here (.mp4 or .mkv; `{camera}` becomes the camera name).
    #[arg(long, value_name = "PATH")]
    pub(crate) record: Option<String>,
    /// Stop after this many seconds of capture (counted from when the cameras start, after the models load).
    #[arg(long = "for", value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
    /// Print the run report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also serve the staff dashboard from this process, with live anonymized previews and alerts; it keeps
    /// serving after the cameras end, until Ctrl-C.
    #[arg(long)]
    pub(crate) serve: bool,
    /// With --serve: address and port (default: [dashboard] listen).
    #[arg(long, requires = "serve")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

pub(crate) fn run_appliance(args: RunArgs) -> Result<ExitCode> {
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
