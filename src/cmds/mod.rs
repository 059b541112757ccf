//! The commands of the `iobox` binary that live in their own file: each one's arguments and run.

pub mod analyze;
pub mod blur;
pub mod calibrate;
pub mod chain;
pub mod doctor;
pub mod report;
pub mod run;
pub mod serve;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use iobox::config::Config;

use crate::load_config;

/// Where the dashboard and `iobox user` find the database.
#[derive(Args)]
pub(crate) struct DbArgs {
    /// Config file: the database, cameras, `[privacy] min_tracks`, `[dashboard]` (default: the embedded config).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// The SQLite file to use instead of the config's.
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
}

impl DbArgs {
    pub(crate) fn load(&self) -> Result<Config> {
        let mut config = load_config(self.config.as_ref())?;
        if let Some(db) = &self.db {
            config.store_path = db.clone();
        }
        Ok(config)
    }
}

/// The database and the period read by `iobox report` and `iobox export`.
#[derive(Args)]
pub(crate) struct ReadArgs {
    /// Config file: the database, and `[privacy] min_tracks` for reports (default: the embedded config).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// The SQLite file to read instead of the config's.
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
    /// Start: RFC 3339, a local date (2026-11-29) or date and time, today, or relative (-7d, -12h).
    /// Default: report 7 days ago, export everything.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) from: Option<String>,
    /// End (exclusive), in the same forms. Default: no end.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) to: Option<String>,
}

impl ReadArgs {
    /// The config, the database path and the period (from `default_from(now)` without `--from`).
    pub(crate) fn resolve(
        &self,
        default_from: impl FnOnce(i64) -> i64,
    ) -> Result<(Config, PathBuf, iobox::store::query::Period)> {
        let config = load_config(self.config.as_ref())?;
        let now = iobox::store::writer::now_ms();
        let period = iobox::jobs::report::period(self.from.as_deref(), self.to.as_deref(), now, default_from(now))?;
        let db = self.db.clone().unwrap_or_else(|| config.store_path.clone());
        Ok((config, db, period))
    }
}
