//! The one writer thread. Producers never block: records go through a bounded channel (a full channel
//! drops and counts). The thread writes batches in one transaction each; a batch that fails (disk full,
//! database locked) is kept and retried, so nothing already handed over is lost while the disk recovers.
//! Dropping every sender, or [`Writer::finish`], flushes what is left and ends the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use rusqlite::{Connection, params};

use super::{Result, open_rw, sql_err};
use crate::behaviour::{Direction, Event};

/// One thing to store. `camera` is the camera's index in the configuration.
#[derive(Debug, Clone)]
pub enum Record {
    Frame {
        camera: usize,
        ts_ms: i64,
        seq: u64,
        faces_blurred: u32,
        frames_dropped: u64,
    },
    /// A shopper-behaviour event from the camera's `Behaviour`.
    Event {
        camera: usize,
        event: Event,
    },
    /// A store visit that ended (`fuse`): no camera, it belongs to the store.
    Visit {
        store: crate::fuse::StoreTrackId,
        start_ms: i64,
        end_ms: i64,
        camera_tracks: u32,
    },
    /// A camera track became part of a store visit (`fuse`).
    VisitMember {
        store: crate::fuse::StoreTrackId,
        camera: usize,
        track: crate::behaviour::TrackId,
        at_ms: i64,
    },
}

/// How the writer keeps the database.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Rows older than this are deleted at start and every hour (`None`: kept for ever).
    pub retention: Option<Duration>,
    /// Largest size the database may grow to, in bytes (`None`: the disk is the limit).
    pub max_bytes: Option<u64>,
    /// Side of a heatmap cell in metres, recorded with each heat row.
    pub heat_cell_m: f64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { retention: Some(Duration::from_secs(30 * 86_400)), max_bytes: None, heat_cell_m: 0.5 }
    }
}

/// Counters of the writer, returned by [`Writer::finish`].
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct WriterStats {
    pub written: u64,
    pub batches: u64,
    pub failed_batches: u64,
    /// Records dropped because the channel was full or the retry buffer overflowed.
    pub dropped: u64,
}

/// The writer as it runs, for metrics: totals so far, whether it is failing now, and the time of each
/// batch since the last look.
#[derive(Debug, Default)]
pub struct WriterLive {
    pub written: AtomicU64,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
    /// Records lost in the writer (retry buffer overflow, shutdown while failing).
    pub dropped: AtomicU64,
    pub failing: std::sync::atomic::AtomicBool,
    batch_seconds: std::sync::Mutex<Vec<f64>>,
}

impl WriterLive {
    /// The batch times (s) recorded since the last call.
    pub fn take_batch_seconds(&self) -> Vec<f64> {
        std::mem::take(&mut *self.batch_seconds.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn batch(&self, seconds: f64) {
        let mut v = self.batch_seconds.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 10_000 {
            v.push(seconds);
        }
    }
}

/// The producers' end; cheap to clone.
#[derive(Clone)]
pub struct RecordSender {
    tx: Sender<Record>,
    dropped: Arc<AtomicU64>,
}

impl RecordSender {
    /// Hands a record to the writer without blocking; a full channel drops it and counts the drop.
    pub fn send(&self, record: Record) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Records dropped because the channel was full, so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub struct Writer {
    sender: Option<RecordSender>,
    thread: JoinHandle<WriterStats>,
    path: PathBuf,
    live: Arc<WriterLive>,
}

const CHANNEL: usize = 16_384;
const BATCH: usize = 1_024;
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Records kept for retry while the database cannot be written.
const RETRY_LIMIT: usize = 200_000;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Writer {
    /// Opens the database, records the start of a run and the camera names, and starts the thread.
    pub fn start(path: &Path, cameras: &[String]) -> Result<Writer> {
        Self::start_with(path, cameras, WriterOptions::default())
    }

    pub fn start_with(path: &Path, cameras: &[String], options: WriterOptions) -> Result<Writer> {
        let conn = open_rw(path)?;
        let err = sql_err(path);
        if let Some(max) = options.max_bytes {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).map_err(&err)?;
            conn.pragma_update(None, "max_page_count", (max as i64 / page).max(16)).map_err(&err)?;
        }
        if let Some(keep) = options.retention {
            let purged = super::purge_older_than(&conn, path, now_ms() - keep.as_millis() as i64)?;
            if purged > 0 {
                tracing::info!(db = %path.display(), rows = purged, "retention: deleted rows older than {} days", keep.as_secs() / 86_400);
            }
        }
        let started_ms = now_ms();
        let names = cameras.to_vec();
        let registered = match register(&conn, &names, started_ms) {
            Ok(r) => Some(r),
            Err(e) if is_full(&e) => {
                tracing::error!(db = %path.display(), "the database is full ({e}); events are kept in memory until there is room - the video path keeps running");
                None
            }
            Err(e) => return Err(err(e)),
        };
        let (tx, rx) = channel::bounded(CHANNEL);
        let dropped = Arc::new(AtomicU64::new(0));
        let thread_path = path.to_path_buf();
        let thread_dropped = dropped.clone();
        let live = Arc::new(WriterLive::default());
        let thread_live = live.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                write_loop(
                    conn,
                    &thread_path,
                    Registration { names, started_ms, ids: registered },
                    rx,
                    &thread_dropped,
                    options,
                    &thread_live,
                )
            })
            .map_err(|e| super::Error::Io { path: path.to_path_buf(), message: format!("cannot start writer: {e}") })?;
        Ok(Writer { sender: Some(RecordSender { tx, dropped }), thread, path: path.to_path_buf(), live })
    }

    /// The writer's live counters.
    pub fn live(&self) -> Arc<WriterLive> {
        self.live.clone()
    }

    pub fn sender(&self) -> RecordSender {
        self.sender.clone().expect("sender is present until finish")
    }

    /// Flushes everything sent so far, marks the run ended and stops the thread. Other clones of the sender
    /// must be dropped first, or this waits for them.
    pub fn finish(mut self) -> Result<WriterStats> {
        self.sender.take();
        self.thread
            .join()
            .map_err(|_| super::Error::Io { path: self.path.clone(), message: "the writer thread panicked".into() })
    }
}

fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// Records the run and the camera names; returns the run id and each camera's id.
fn register(conn: &Connection, names: &[String], started_ms: i64) -> rusqlite::Result<(i64, Vec<i64>)> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO runs (started_at_ms, iobox_version) VALUES (?1, ?2)",
        params![started_ms, env!("CARGO_PKG_VERSION")],
    )?;
    let run_id = tx.last_insert_rowid();
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        tx.execute("INSERT OR IGNORE INTO cameras (name) VALUES (?1)", [name])?;
        ids.push(tx.query_row("SELECT id FROM cameras WHERE name = ?1", [name], |r| r.get::<_, i64>(0))?);
    }
    tx.commit()?;
    Ok((run_id, ids))
}

/// The run's rows, registered at start or, when the database was full then, as soon as there is room.
struct Registration {
    names: Vec<String>,
    started_ms: i64,
    ids: Option<(i64, Vec<i64>)>,
}

fn write_loop(
    mut conn: Connection,
    path: &Path,
    mut run: Registration,
    rx: Receiver<Record>,
    dropped: &AtomicU64,
    options: WriterOptions,
    live: &WriterLive,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut last_purge = Instant::now();
    let mut pending: Vec<Record> = Vec::with_capacity(BATCH);
    let mut open = true;
    let mut last_error_log: Option<Instant> = None;
    while open || !pending.is_empty() {
        // Gather a batch: wait for the first record, then take what arrives within the window.
        let deadline = Instant::now() + BATCH_WINDOW;
        while open && pending.len() < BATCH {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(r) => pending.push(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // Whatever else is waiting too (a backlog that built up while the database refused writes): the
        // channel keeps flowing, and a shutdown is noticed even while writes keep failing. Only what is
        // waiting now: a producer as fast as this loop would otherwise keep it here, growing the batch
        // past RETRY_LIMIT and dropping records although every write succeeds.
        for _ in 0..rx.len().max(1) {
            if !open {
                break;
            }
            match rx.try_recv() {
                Ok(r) => pending.push(r),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if pending.len() > RETRY_LIMIT {
            let excess = pending.len() - RETRY_LIMIT;
            pending.drain(..excess);
            stats.dropped += excess as u64;
            live.dropped.fetch_add(excess as u64, Ordering::Relaxed);
        }
        if let Some(keep) = options.retention.filter(|_| last_purge.elapsed() > Duration::from_secs(3600)) {
            last_purge = Instant::now();
            if let Err(e) = super::purge_older_than(&conn, path, now_ms() - keep.as_millis() as i64) {
                tracing::error!(db = %path.display(), "retention purge failed: {e}");
            }
        }
        if pending.is_empty() {
            continue;
        }
        if run.ids.is_none() {
            run.ids = register(&conn, &run.names, run.started_ms).ok();
        }
        let batch_started = Instant::now();
        let outcome = match &run.ids {
            Some((run_id, camera_ids)) => write_batch(&mut conn, *run_id, camera_ids, &pending, options.heat_cell_m),
            None => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("cannot record the run".into()),
            )),
        };
        match outcome {
            Ok(()) => {
                stats.written += pending.len() as u64;
                stats.batches += 1;
                live.batch(batch_started.elapsed().as_secs_f64());
                live.written.fetch_add(pending.len() as u64, Ordering::Relaxed);
                live.batches.fetch_add(1, Ordering::Relaxed);
                live.failing.store(false, Ordering::Relaxed);
                pending.clear();
                if last_error_log.take().is_some() {
                    tracing::info!(db = %path.display(), "database writable again; backlog written");
                }
            }
            Err(e) => {
                stats.failed_batches += 1;
                live.failed_batches.fetch_add(1, Ordering::Relaxed);
                live.failing.store(true, Ordering::Relaxed);
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    let hint = if is_full(&e) {
                        " - the disk (or [store] max_size_mb) is full: free space or raise the limit; video keeps running"
                    } else {
                        ""
                    };
                    tracing::error!(
                        db = %path.display(),
                        "cannot write events ({e}){hint}; keeping {} in memory and retrying",
                        pending.len()
                    );
                    last_error_log = Some(Instant::now());
                }
                if !open {
                    // Shutting down and the database still refuses: give up on what is left.
                    tracing::error!(db = %path.display(), "{} events could not be written before shutdown", pending.len());
                    stats.dropped += pending.len() as u64;
                    pending.clear();
                } else {
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
    stats.dropped += dropped.load(Ordering::Relaxed);
    if let Some((run_id, _)) = &run.ids
        && let Err(e) = conn.execute("UPDATE runs SET ended_at_ms = ?1 WHERE id = ?2", params![now_ms(), run_id])
    {
        tracing::error!(db = %path.display(), "cannot record the end of the run: {e}");
    }
    stats
}

fn write_batch(
    conn: &mut Connection,
    run: i64,
    camera_ids: &[i64],
    batch: &[Record],
    cell_m: f64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for r in batch {
        match r {
            Record::Frame { camera, ts_ms, seq, faces_blurred, frames_dropped } => {
                tx.prepare_cached(
                    "INSERT INTO frame_log (run_id, camera_id, ts_ms, seq, faces_blurred, frames_dropped)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    run,
                    camera_ids[*camera],
                    ts_ms,
                    *seq as i64,
                    faces_blurred,
                    *frames_dropped as i64
                ])?;
            }
            Record::Event { camera, event } => write_event(&tx, run, camera_ids[*camera], event, cell_m)?,
            Record::Visit { store, start_ms, end_ms, camera_tracks } => {
                tx.prepare_cached(
                    "INSERT INTO visits (run_id, store_track, start_ms, end_ms, camera_tracks) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![run, store.to_string(), start_ms, end_ms, camera_tracks])?;
            }
            Record::VisitMember { store, camera, track, at_ms } => {
                tx.prepare_cached(
                    "INSERT INTO visit_members (run_id, store_track, camera_id, track, joined_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![run, store.to_string(), camera_ids[*camera], track.to_string(), at_ms])?;
            }
        }
    }
    tx.commit()
}

fn write_event(tx: &rusqlite::Transaction<'_>, run: i64, cam: i64, event: &Event, cell_m: f64) -> rusqlite::Result<()> {
    let point = |kind: &str, ts: i64, track: String, place: &str, direction: Option<&str>, duration: Option<i64>| {
        tx.prepare_cached(
            "INSERT INTO events (run_id, camera_id, kind, ts_ms, track, place, direction, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![run, cam, kind, ts, track, place, direction, duration])
        .map(|_| ())
    };
    match event {
        Event::Entry { zone, track, at_ms } => point("entry", *at_ms, track.to_string(), zone.as_str(), None, None),
        Event::Exit { zone, track, at_ms } => point("exit", *at_ms, track.to_string(), zone.as_str(), None, None),
        Event::ZoneEntered { zone, track, at_ms } => {
            point("zone_entered", *at_ms, track.to_string(), zone.as_str(), None, None)
        }
        Event::ZoneExited { zone, track, at_ms, dwell_ms } => {
            point("zone_exited", *at_ms, track.to_string(), zone.as_str(), None, Some(*dwell_ms))
        }
        Event::LineCrossed { line, track, direction, at_ms } => {
            let d = match direction {
                Direction::In => "in",
                Direction::Out => "out",
            };
            point("line_crossed", *at_ms, track.to_string(), line.as_str(), Some(d), None)
        }
        Event::ShelfInteraction { zone, track, start_ms, duration_ms } => {
            point("interaction", *start_ms, track.to_string(), zone.as_str(), None, Some(*duration_ms))
        }
        Event::Occupancy { zone, at_ms, count } => tx
            .prepare_cached("INSERT INTO occupancy (run_id, camera_id, zone, ts_ms, count) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![run, cam, zone.as_str(), at_ms, count])
            .map(|_| ()),
        Event::QueueSample { zone, at_ms, length, mean_wait_ms, max_wait_ms } => tx
            .prepare_cached(
                "INSERT INTO queue_samples (run_id, camera_id, zone, ts_ms, length, mean_wait_ms, max_wait_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![run, cam, zone.as_str(), at_ms, length, mean_wait_ms, max_wait_ms])
            .map(|_| ()),
        Event::Journey { track, zones, start_ms, end_ms } => {
            let zones: Vec<&str> = zones.iter().map(|z| z.as_str()).collect();
            let zones = serde_json::to_string(&zones).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(
                "INSERT INTO journeys (run_id, camera_id, track, start_ms, end_ms, zones) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![run, cam, track.to_string(), start_ms, end_ms, zones])
            .map(|_| ())
        }
        Event::MoodBucket { zone, bucket_start_ms, counts, samples, uncertain, tracks, tokens } => tx
            .prepare_cached(
                "INSERT INTO mood (run_id, camera_id, zone, bucket_start_ms, angry, disgust, fear, happy, sad, surprise,
                 neutral, samples, tracks, track_tokens, uncertain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                run,
                cam,
                zone.as_str(),
                bucket_start_ms,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                counts[4],
                counts[5],
                counts[6],
                samples,
                tracks,
                tokens.to_le_bytes(),
                uncertain
            ])
            .map(|_| ()),
        Event::HeatCell { bucket_start_ms, cx, cy, presence, dwell_ms, tracks, tokens } => tx
            .prepare_cached(
                "INSERT INTO heat (run_id, camera_id, bucket_start_ms, cell_m, cx, cy, presence, dwell_ms, tracks,
                 track_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![run, cam, bucket_start_ms, cell_m, cx, cy, presence, dwell_ms, tracks, tokens.to_le_bytes()])
            .map(|_| ()),
    }
}
