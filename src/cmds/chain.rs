//! `iobox sync` (a box delivers its outbox once) and `iobox chain ...` (head office: set up the server, add
//! stores, report over all of them).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use iobox::chain::report::ChainReportOptions;
use iobox::chain::sync::Backoff;
use iobox::chain::{self, Target};

use crate::cmds::DbArgs;

#[derive(Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Mark every row of the outbox as not delivered first (a new head-office server, or one restored from
    /// an old backup); the server keeps the highest revision of each row, so nothing is counted twice.
    #[arg(long)]
    pub resend: bool,
    /// When the server cannot be reached, keep trying (backing off, with jitter) for up to this long.
    #[arg(long, value_name = "SECONDS")]
    pub retry_for: Option<f64>,
    /// Close as if it were this time (YYYY-MM-DD[THH:MM], RFC 3339, or -2d): less than now is closed
    /// (for replaying a box's history day by day); never later than now.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Head office's PostgreSQL.
#[derive(Args)]
pub struct ServerArgs {
    /// Connection string (`host=... port=... user=... dbname=...` or `postgresql://...`).
    #[arg(long, env = "IOBOX_CHAIN_URL")]
    pub url: String,
    /// A file holding the password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// PEM certificate authorities for the server's TLS certificate (default: the system's).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

impl ServerArgs {
    fn connect(&self) -> Result<(Target, chain::Client)> {
        let target = Target::new(&self.url, "--url", self.password_file.as_deref(), self.ca_file.as_deref())?;
        let client = target.connect()?;
        Ok((target, client))
    }
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Create or upgrade head office's schema `iobox_chain` and its views (as the database's owner).
    Init {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Add a store and the login its box uses (or give an existing store's box a new password). The login
    /// can write only this store's figures. Prints the box's `[chain]` section.
    AddStore {
        /// The store's id: 1 to 63 lowercase letters, digits, '-' or '_'.
        store: String,
        /// A file holding the box's new password.
        #[arg(long)]
        box_password_file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Every store side by side: footfall per store per day, week over week, top zones, queue times.
    Report {
        /// First day (YYYY-MM-DD, each store's local day).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// k at chain level (default: the largest k the stores used).
        #[arg(long)]
        k: Option<u32>,
        /// Zones in the top list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub fn sync(args: SyncArgs) -> Result<ExitCode> {
    let config = args.db.load()?;
    let Some(chain_config) = &config.chain else {
        bail!("{}: no [chain] section: set chain.store (and chain.url) to deliver this store's figures", config.origin);
    };
    let mut syncer = iobox::jobs::sync::syncer_for(&config)?.context("no [chain] section")?;
    if args.resend {
        let n = syncer.resend_all()?;
        tracing::info!(rows = n, "every outbox row marked to be sent again");
    }
    let deadline = args
        .retry_for
        .map(|s| {
            if s.is_finite() && s >= 0.0 {
                Ok(Instant::now() + Duration::from_secs_f64(s))
            } else {
                Err(anyhow::anyhow!("--retry-for {s}: give a number of seconds"))
            }
        })
        .transpose()?;
    let bar = if args.quiet || args.json {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
        b.enable_steady_tick(Duration::from_millis(200));
        b.set_message("closing the outbox");
        b
    };
    let as_of = match &args.as_of {
        Some(t) => {
            let now = iobox::clock::system().wall_ms();
            let at = iobox::jobs::report::parse_time(t, now).with_context(|| format!("--as-of {t:?}"))?;
            if at > now {
                bail!("--as-of {t}: that is later than now; the outbox only closes what has ended");
            }
            Some(at)
        }
        None => None,
    };
    let mut backoff = Backoff::default();
    let (closed, delivered) = loop {
        let now = as_of.unwrap_or_else(|| iobox::clock::system().wall_ms());
        match syncer.pass(now, |d| bar.set_message(format!("sent {} rows in {} batches", d.rows, d.batches))) {
            Ok(done) => break done,
            Err(e) => {
                let retryable = matches!(e, chain::Error::Db { .. });
                match deadline {
                    Some(d) if retryable && Instant::now() < d => {
                        let wait = backoff.fail().min(d.saturating_duration_since(Instant::now()));
                        bar.suspend(|| eprintln!("{e}; trying again in {:.1} s", wait.as_secs_f64()));
                        std::thread::sleep(wait);
                    }
                    _ => {
                        bar.finish_and_clear();
                        let status = syncer.status.lock().map(|s| s.clone()).unwrap_or_default();
                        return Err(anyhow::Error::new(e).context(format!(
                            "delivery failed; the outbox keeps its {} rows for the next try",
                            status.backlog_rows
                        )));
                    }
                }
            }
        }
    };
    bar.finish_and_clear();
    let status = syncer.status.lock().map(|s| s.clone()).unwrap_or_default();
    if args.json {
        let out = serde_json::json!({ "closed": closed, "delivered": delivered, "status": status });
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        eprintln!("outbox: {} days looked at, {} rows written", closed.days, closed.rows);
        match &status.target {
            Some(t) => eprintln!(
                "sent to {t} as store '{}': {} rows in {} batches ({} applied, {} already there); backlog {} rows",
                chain_config.store,
                delivered.rows,
                delivered.batches,
                delivered.applied,
                delivered.unchanged,
                status.backlog_rows
            ),
            None => eprintln!("no chain.url: nothing sent; the outbox holds {} rows", status.backlog_rows),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn day(s: &str, flag: &str) -> Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| format!("{flag} {s:?}: give a day as YYYY-MM-DD"))
}

pub fn chain(cmd: ChainCommand) -> Result<ExitCode> {
    match cmd {
        ChainCommand::Init { server } => {
            let (target, mut client) = server.connect()?;
            let done = chain::schema::init(&mut client, &target.label)?;
            if done.from_version == done.to_version {
                eprintln!(
                    "{}: schema iobox_chain already at version {}; views refreshed",
                    target.label, done.to_version
                );
            } else {
                eprintln!(
                    "{}: schema iobox_chain from version {} to {}",
                    target.label, done.from_version, done.to_version
                );
            }
        }
        ChainCommand::AddStore { store, box_password_file, server } => {
            let password = std::fs::read_to_string(&box_password_file)
                .with_context(|| format!("cannot read {}", box_password_file.display()))?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.len() < 12 {
                bail!("{}: a box's password needs at least 12 characters", box_password_file.display());
            }
            let (target, mut client) = server.connect()?;
            let role = chain::schema::add_store(&mut client, &target.label, &store, password)?;
            eprintln!("store '{store}' can now deliver as the PostgreSQL role {role}; its box's config:");
            writeln!(
                std::io::stdout().lock(),
                "[chain]\nstore = \"{store}\"\nurl = \"host=HEAD-OFFICE-HOST port=5432 dbname=DATABASE user={role} sslmode=require\"\npassword_file = \"/etc/iobox/chain.password\""
            )?;
        }
        ChainCommand::Report { from, to, k, top, json, server } => {
            let from = day(&from, "--from")?;
            let to = day(&to, "--to")?;
            if to < from {
                bail!("--to {to} is before --from {from}");
            }
            let (target, mut client) = server.connect()?;
            let options = ChainReportOptions { from, to: to.succ_opt().unwrap_or(to), k, top };
            let report = chain::report::report(&mut client, &target.label, &options)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(out, "{}", report.text())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
