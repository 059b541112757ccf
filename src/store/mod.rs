//! The local SQLite store: the only module that knows rusqlite.
//!
//! - [`schema`]: versioned migrations (`PRAGMA user_version`), WAL, foreign keys.
//! - [`writer`]: one writer thread that batches records into transactions.
//! - [`query`]: read-only report queries (footfall, dwell, funnels, queues, mood, heat), k-suppressed.
//! - [`outbox`]: the figures of each closed hour and day for the chain's head office, k-suppressed, revised.
//! - [`export`]: raw rows of the event tables for BI exports (not k-suppressed).
//! - [`users`]: dashboard logins (names, argon2 hashes, roles).
//!
//! Readers that ask many questions (the dashboard) share read-only connections through a [`ReadPool`].
//!
//! The database file is created with mode 0600 (owner only). Nothing stored identifies a person: no pixels,
//! no crops, no embeddings, and no id that outlives a run.

pub mod export;
pub mod outbox;
pub mod query;
pub mod released;
pub mod schema;
pub(crate) mod series;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::OpenFlags;

pub use writer::{Record, RecordSender, Writer, WriterOptions, WriterStats};

/// A database connection, for modules that hold one without knowing SQLite.
pub type Connection = rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("database {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(
        "database {path} has schema version {found}, newer than this iobox understands ({supported}); use a newer iobox or another database file"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("database {path}: there is already a user called '{name}' (add --replace to change it)")]
    UserExists { path: PathBuf, name: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite { path: path.to_path_buf(), source }
}

/// Creates the file with mode 0600 if it does not exist yet (SQLite would use the umask, often 0644).
fn create_private(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: path.to_path_buf(), message: e.to_string() })?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), message: e.to_string() }),
        }
    }
    Ok(())
}

/// Opens (creating and migrating as needed) the database for writing.
pub fn open_rw(path: &Path) -> Result<Connection> {
    create_private(path)?;
    let conn = Connection::open(path).map_err(sql_err(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_err(path))?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_err(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err(path))?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(sql_err(path))?;
    schema::migrate(&conn, path)?;
    Ok(conn)
}

/// Opens the database read-only (reports, dashboard). Refuses a schema newer than this binary.
pub fn open_ro(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::Io { path: path.to_path_buf(), message: "no such database file".into() });
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql_err(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_err(path))?;
    let version = schema::version(&conn).map_err(sql_err(path))?;
    if version > schema::LATEST {
        return Err(Error::TooNew { path: path.to_path_buf(), found: version, supported: schema::LATEST });
    }
    Ok(conn)
}

/// Read-only connections to one database, opened on demand and kept for reuse (a connection is used by
/// one thread at a time; the dashboard answers requests on several).
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReadPool {
    /// Opens one connection now, so that a missing or too new database is an error at start.
    pub fn open(path: &Path, max_idle: usize) -> Result<ReadPool> {
        let first = open_ro(path)?;
        Ok(ReadPool { path: path.to_path_buf(), idle: Mutex::new(vec![first]), max_idle: max_idle.max(1) })
    }

    /// Runs `f` on an idle connection (or a new one), then keeps the connection for the next caller.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_ro(&self.path)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        out
    }
}

/// What the retention purge sweeps: each table with a time column, and "older than ?1" written so that
/// one of the table's indexes finds the rows (the purge runs every hour; a full scan of a month of the
/// per-frame log would not do). `frame_log`'s index leads with the camera; a journey ends after it starts.
const TIMED_TABLES: [(&str, &str); 9] = [
    ("frame_log", "camera_id IN (SELECT id FROM cameras) AND ts_ms < ?1"),
    ("events", "ts_ms < ?1"),
    ("occupancy", "ts_ms < ?1"),
    ("queue_samples", "ts_ms < ?1"),
    ("journeys", "start_ms < ?1 AND end_ms < ?1"),
    ("mood", "bucket_start_ms < ?1"),
    ("heat", "bucket_start_ms < ?1"),
    ("visits", "start_ms < ?1 AND end_ms < ?1"),
    ("visit_members", "joined_ms < ?1 AND store_track NOT IN (SELECT store_track FROM visits WHERE end_ms >= ?1)"),
];

/// Deletes every row older than `cutoff_ms` (and runs that ended before it). Returns the rows deleted.
pub fn purge_older_than(conn: &Connection, path: &Path, cutoff_ms: i64) -> Result<u64> {
    let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
    let mut n = 0u64;
    for (table, older) in TIMED_TABLES {
        n += tx.execute(&format!("DELETE FROM {table} WHERE {older}"), [cutoff_ms]).map_err(sql_err(path))? as u64;
    }
    // A run still referenced by rows stays (the list is only built when some run ended before the cutoff).
    let referenced: Vec<String> = TIMED_TABLES.iter().map(|(table, _)| format!("SELECT run_id FROM {table}")).collect();
    let runs = format!("DELETE FROM runs WHERE ended_at_ms < ?1 AND id NOT IN ({})", referenced.join(" UNION "));
    n += tx.execute(&runs, [cutoff_ms]).map_err(sql_err(path))? as u64;
    tx.commit().map_err(sql_err(path))?;
    Ok(n)
}

/// Per-camera totals from the frame log, for summaries and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraSummary {
    pub camera: String,
    pub frames: i64,
    pub faces_blurred: i64,
    pub frames_dropped: i64,
}

pub fn frame_summary(conn: &Connection, path: &Path) -> Result<Vec<CameraSummary>> {
    let mut stmt = conn
        .prepare(
            "SELECT c.name, COUNT(f.seq), COALESCE(SUM(f.faces_blurred), 0), COALESCE(MAX(f.frames_dropped), 0)
             FROM cameras c LEFT JOIN frame_log f ON f.camera_id = c.id
             GROUP BY c.id ORDER BY c.name",
        )
        .map_err(sql_err(path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(CameraSummary {
                camera: r.get(0)?,
                frames: r.get(1)?,
                faces_blurred: r.get(2)?,
                frames_dropped: r.get(3)?,
            })
        })
        .map_err(sql_err(path))?;
    rows.collect::<std::result::Result<Vec<_>, _>>().map_err(sql_err(path))
}

/// Frames logged for `camera` with `from_ms <= ts_ms < to_ms`.
pub fn frames_between(conn: &Connection, path: &Path, camera: &str, from_ms: i64, to_ms: i64) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM frame_log f JOIN cameras c ON c.id = f.camera_id
         WHERE c.name = ?1 AND f.ts_ms >= ?2 AND f.ts_ms < ?3",
        rusqlite::params![camera, from_ms, to_ms],
        |r| r.get(0),
    )
    .map_err(sql_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hourly purge finds old rows through an index in every table: no full scan of a month of rows.
    #[test]
    fn the_purge_uses_an_index_in_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_rw(&dir.path().join("p.sqlite")).unwrap();
        for (table, older) in TIMED_TABLES {
            let sql = format!("EXPLAIN QUERY PLAN DELETE FROM {table} WHERE {older}");
            let mut stmt = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = stmt.query_map([0], |r| r.get(3)).unwrap().map(|r| r.unwrap()).collect();
            let search = format!("SEARCH {table} USING ");
            assert!(plan.iter().any(|p| p.starts_with(&search) && p.contains("INDEX")), "{table}: {plan:?}");
            assert!(!plan.iter().any(|p| p.starts_with(&format!("SCAN {table}"))), "{table}: {plan:?}");
        }
    }
}
