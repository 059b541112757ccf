//! Delivery: the box's outbox pushed to head office in batches.
//!
//! Each batch is one PostgreSQL transaction of upserts keyed by (store, kind, bucket, bucket start, dim)
//! that only ever replace a row with a higher revision; after the server's commit, the box marks the rows
//! delivered at the revisions sent. So a batch sent twice (an acknowledgement lost, a crash between the
//! server's commit and the box's), or an old revision arriving late, changes nothing. The server refuses a
//! row of another store (row-level security, see [`super::schema`]), and the box checks its binding before
//! sending anything. Failures back off exponentially with jitter (1 s to 5 min); the outbox waits, however
//! long the box is offline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::Client;
use rand::Rng;
use serde::Serialize;

use super::{Error, Result, Target, db, schema};
use crate::store::outbox::{self, Backlog, CloseOptions, OutboxRow};

/// What one push did on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pushed {
    /// Rows inserted or raised to a higher revision.
    pub applied: u64,
    /// Rows the server already held at this revision or a higher one.
    pub unchanged: u64,
}

/// Checks that the server is set up and that this login is bound to `store`.
pub fn check_binding(client: &mut Client, target: &Target, store: &str) -> Result<()> {
    let found = schema::version(client, &target.label)?;
    if found > schema::LATEST {
        return Err(Error::TooNew { target: target.label.clone(), found, supported: schema::LATEST });
    }
    if found < schema::LATEST {
        return Err(Error::NotInitialised { target: target.label.clone(), found, supported: schema::LATEST });
    }
    let bound: Option<String> =
        client.query_one("SELECT iobox_chain.my_store()", &[]).map_err(db(&target.label))?.get(0);
    match bound {
        Some(b) if b == store => Ok(()),
        Some(b) => Err(Error::WrongStore {
            target: target.label.clone(),
            store: store.to_string(),
            bound: format!("store '{b}'"),
        }),
        None => Err(Error::WrongStore {
            target: target.label.clone(),
            store: store.to_string(),
            bound: "no store (add it with `iobox chain add-store`)".into(),
        }),
    }
}

/// The one upsert: a row replaces the server's only with a higher revision.
const UPSERT: &str = "
    INSERT INTO iobox_chain.facts (store, kind, bucket, bucket_start, dim, local_start, revision, suppressed, figures, k)
    SELECT $1, t.kind, t.bucket, timestamptz 'epoch' + t.start_ms * interval '1 millisecond', t.dim,
           t.local_start::timestamp, t.revision, t.suppressed, t.figures::jsonb, t.k
    FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int4[], $8::bool[], $9::text[], $10::int4[])
         AS t(kind, bucket, start_ms, dim, local_start, revision, suppressed, figures, k)
    ON CONFLICT (store, kind, bucket, bucket_start, dim) DO UPDATE
        SET local_start = EXCLUDED.local_start, revision = EXCLUDED.revision, suppressed = EXCLUDED.suppressed,
            figures = EXCLUDED.figures, k = EXCLUDED.k, received_at = now()
        WHERE iobox_chain.facts.revision < EXCLUDED.revision";

/// Sends `rows` of `store` in one transaction.
pub fn push(client: &mut Client, target: &Target, store: &str, rows: &[OutboxRow]) -> Result<Pushed> {
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let buckets: Vec<&str> = rows.iter().map(|r| r.bucket.as_str()).collect();
    let starts: Vec<i64> = rows.iter().map(|r| r.bucket_start_ms).collect();
    let dims: Vec<&str> = rows.iter().map(|r| r.dim.as_str()).collect();
    let locals: Vec<&str> = rows.iter().map(|r| r.local_start.as_str()).collect();
    let revisions: Vec<i32> = rows.iter().map(|r| r.revision.clamp(1, i64::from(i32::MAX)) as i32).collect();
    let suppressed: Vec<bool> = rows.iter().map(|r| r.suppressed).collect();
    let figures: Vec<Option<&str>> = rows.iter().map(|r| r.figures.as_deref()).collect();
    let ks: Vec<i32> = rows.iter().map(|r| r.k.min(i32::MAX as u32) as i32).collect();
    let mut tx = client.transaction().map_err(db(&target.label))?;
    let applied = tx
        .execute(UPSERT, &[&store, &kinds, &buckets, &starts, &dims, &locals, &revisions, &suppressed, &figures, &ks])
        .map_err(db(&target.label))?;
    tx.commit().map_err(db(&target.label))?;
    Ok(Pushed { applied, unchanged: rows.len() as u64 - applied })
}

/// What one delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub batches: u64,
    pub rows: u64,
    pub applied: u64,
    pub unchanged: u64,
}

/// Sends every pending row of the outbox, `batch` rows per transaction, marking each batch delivered after
/// the server's commit. `each` is told after every batch (progress).
pub fn deliver(
    db_conn: &crate::store::Connection,
    client: &mut Client,
    target: &Target,
    store: &str,
    batch: usize,
    mut each: impl FnMut(&Delivered),
) -> Result<Delivered> {
    let mut done = Delivered::default();
    loop {
        let rows = outbox::pending(db_conn, batch)?;
        if rows.is_empty() {
            return Ok(done);
        }
        let pushed = push(client, target, store, &rows)?;
        let acked: Vec<(i64, i64)> = rows.iter().map(|r| (r.id, r.revision)).collect();
        outbox::mark_delivered(db_conn, &acked)?;
        done.batches += 1;
        done.rows += rows.len() as u64;
        done.applied += pushed.applied;
        done.unchanged += pushed.unchanged;
        each(&done);
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s, ... up to 5 minutes, each drawn from its upper half.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MOST: Duration = Duration::from_secs(300);

    /// The wait after one more failure.
    pub fn fail(&mut self) -> Duration {
        let ceiling = Self::FIRST.saturating_mul(1u32 << self.failures.min(16)).min(Self::MOST);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    pub fn succeed(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// How delivery stands, for `iobox run --json`, logs and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub store: String,
    /// Head office, `user@host:port/db`; `None`: the outbox is kept but nothing is sent.
    pub target: Option<String>,
    /// Rows head office has not acknowledged, and the age of the oldest in seconds.
    pub backlog_rows: u64,
    pub backlog_age_s: Option<f64>,
    pub rows_delivered: u64,
    pub last_delivered_ms: Option<i64>,
    pub failures_in_a_row: u32,
    pub last_error: Option<String>,
}

/// What a box needs to close and deliver.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub store: String,
    pub db: PathBuf,
    pub k: u32,
    pub grace: Duration,
    pub batch: usize,
    /// Days before this are never recomputed (retention deletes their rows).
    pub retention: Option<Duration>,
}

/// One box's outbox and its head office: [`Syncer::pass`] closes what has closed and delivers it.
pub struct Syncer {
    options: SyncOptions,
    target: Option<Target>,
    client: Option<Client>,
    db: crate::store::Connection,
    pub status: Arc<Mutex<SyncStatus>>,
}

impl Syncer {
    pub fn new(options: SyncOptions, target: Option<Target>) -> Result<Syncer> {
        let db = crate::store::open_rw(&options.db)?;
        let status = SyncStatus {
            store: options.store.clone(),
            target: target.as_ref().map(|t| t.label.clone()),
            ..SyncStatus::default()
        };
        Ok(Syncer { options, target, client: None, db, status: Arc::new(Mutex::new(status)) })
    }

    pub fn db_path(&self) -> &Path {
        &self.options.db
    }

    /// Closes every bucket that ended at least the grace before `now_ms`, then, with a server, delivers
    /// the backlog. A failed delivery keeps the outbox and drops the connection (the next pass reconnects).
    pub fn pass(&mut self, now_ms: i64, each: impl FnMut(&Delivered)) -> Result<(outbox::Closed, Delivered)> {
        let opts = CloseOptions {
            k: self.options.k,
            grace_ms: self.options.grace.as_millis() as i64,
            now_ms,
            keep_from_ms: self.options.retention.map(|r| now_ms - r.as_millis() as i64),
        };
        let closed = outbox::close(&self.db, &opts)?;
        let delivered = match &self.target {
            None => Delivered::default(),
            Some(target) => {
                let result = (|| {
                    if self.client.is_none() {
                        let mut c = target.connect()?;
                        check_binding(&mut c, target, &self.options.store)?;
                        self.client = Some(c);
                    }
                    let client = self.client.as_mut().expect("connected above");
                    deliver(&self.db, client, target, &self.options.store, self.options.batch, each)
                })();
                if result.is_err() {
                    self.client = None;
                }
                self.note(now_ms, &result);
                if result.is_err() {
                    // The backlog as it stands, for the error's caller.
                    self.refresh_backlog(now_ms)?;
                }
                result?
            }
        };
        self.refresh_backlog(now_ms)?;
        Ok((closed, delivered))
    }

    fn note(&self, now_ms: i64, result: &Result<Delivered>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(d) => {
                s.rows_delivered += d.rows;
                if d.rows > 0 {
                    s.last_delivered_ms = Some(now_ms);
                }
                s.failures_in_a_row = 0;
                s.last_error = None;
            }
            Err(e) => {
                s.failures_in_a_row += 1;
                s.last_error = Some(e.to_string());
            }
        }
    }

    /// The backlog now.
    pub fn refresh_backlog(&self, now_ms: i64) -> Result<Backlog> {
        let b = outbox::backlog(&self.db)?;
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.backlog_rows = b.rows;
        s.backlog_age_s = b.oldest_ms.map(|t| (now_ms - t).max(0) as f64 / 1000.0);
        Ok(b)
    }

    /// Every row pending again (a new server, or one that lost its data).
    pub fn resend_all(&self) -> Result<u64> {
        Ok(outbox::resend_all(&self.db)?)
    }
}
