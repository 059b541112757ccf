//! The store's outbox and its delivery to head office while `iobox run` runs, and `iobox sync` once.
//!
//! A thread closes what has closed every `[chain] every_s` and delivers it; a failure (server down, network
//! gone) backs off with jitter up to 5 minutes and says how large and old the backlog is. The outbox lives
//! in the store's SQLite file, so nothing is lost however long the box is offline or whenever it restarts.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::alerts::BacklogAlerts;
use crate::chain::sync::{Backoff, SyncOptions, SyncStatus, Syncer};
use crate::chain::{self, Target};
use crate::clock::Clock;
use crate::config::Config;
use crate::stop::Stop;

use super::JobError;

/// The syncer of `config`'s `[chain]`, or `None` when the store belongs to no chain.
pub fn syncer_for(config: &Config) -> Result<Option<Syncer>, JobError> {
    let Some(c) = &config.chain else {
        return Ok(None);
    };
    let target = c
        .url
        .as_deref()
        .map(|u| Target::new(u, "chain.url", c.password_file.as_deref(), c.ca_file.as_deref()))
        .transpose()?;
    let options = SyncOptions {
        store: c.store.clone(),
        db: config.store_path.clone(),
        k: config.min_tracks,
        grace: c.grace,
        batch: c.batch,
        retention: config.store.retention,
    };
    Ok(Some(Syncer::new(options, target)?))
}

/// The running delivery of a run.
pub struct SyncThread {
    stop: Stop,
    status: Arc<Mutex<SyncStatus>>,
    thread: JoinHandle<()>,
}

impl SyncThread {
    /// Closes and delivers every `every`, and once more when stopped; after each attempt the backlog's
    /// age goes to the `sync_backlog` alert rules.
    pub fn start(
        mut syncer: Syncer,
        every: Duration,
        clock: Arc<dyn Clock>,
        mut alerts: Option<BacklogAlerts>,
    ) -> std::io::Result<SyncThread> {
        let stop = Stop::new();
        let status = syncer.status.clone();
        let s = stop.clone();
        let thread = std::thread::Builder::new().name("chain-sync".into()).spawn(move || {
            let mut backoff = Backoff::default();
            let mut wait = Duration::ZERO;
            loop {
                let stopping = s.sleep(wait);
                wait = match pass(&mut syncer, clock.as_ref()) {
                    Ok(()) => {
                        backoff.succeed();
                        every
                    }
                    Err(e) => {
                        let retry = backoff.fail();
                        let st = syncer.status.lock().map(|g| g.clone()).unwrap_or_default();
                        tracing::warn!(
                            backlog_rows = st.backlog_rows,
                            backlog_age_s = st.backlog_age_s.unwrap_or(0.0).round(),
                            failures = backoff.failures(),
                            "chain: {e}; the outbox keeps every row, next try in {:.0} s",
                            retry.as_secs_f64()
                        );
                        retry
                    }
                };
                if let Some(a) = alerts.as_mut() {
                    let age = syncer.status.lock().map(|g| g.backlog_age_s).unwrap_or_default();
                    a.observe(age, clock.wall_ms());
                }
                if stopping {
                    break;
                }
            }
        })?;
        Ok(SyncThread { stop, status, thread })
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// One last pass (what closed during the run), then the status.
    pub fn finish(self) -> SyncStatus {
        self.stop.request();
        let _ = self.thread.join();
        self.status.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

fn pass(syncer: &mut Syncer, clock: &dyn Clock) -> Result<(), chain::Error> {
    let (closed, delivered) = syncer.pass(clock.wall_ms(), |_| {})?;
    if closed.rows > 0 || delivered.rows > 0 {
        tracing::info!(
            days = closed.days,
            rows_written = closed.rows,
            rows_sent = delivered.rows,
            applied = delivered.applied,
            "chain: outbox"
        );
    }
    Ok(())
}
