//! Schema migrations. `PRAGMA user_version` holds the number of migrations applied; each migration runs in
//! its own transaction, so a database is always at exactly one version. Append new migrations, never edit
//! an applied one.
//!
//! Tables (see README.md, "Data stored"):
//! - `runs`: one row per start of `iobox run` (start and end time, iobox version).
//! - `cameras`: camera names from the config; ids are stable across runs.
//! - `frame_log`: one row per processed frame: camera, time, faces blurred, frames dropped so far.

use std::path::Path;

use rusqlite::Connection;

use super::{Error, Result, sql_err};

const MIGRATIONS: &[&str] = &[
    // 1: runs, cameras, the per-frame log.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER,
        iobox_version TEXT NOT NULL
     );
     CREATE TABLE cameras (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
     );
     CREATE TABLE frame_log (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        ts_ms INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        faces_blurred INTEGER NOT NULL,
        frames_dropped INTEGER NOT NULL
     );
     CREATE INDEX frame_log_camera_ts ON frame_log(camera_id, ts_ms);",
];

/// The schema version this binary writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database up to [`LATEST`]; refuses a newer one.
pub fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let current = version(conn).map_err(sql_err(path))?;
    if current > LATEST {
        return Err(Error::TooNew { path: path.to_path_buf(), found: current, supported: LATEST });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i as i64 + 1;
        let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
        tx.execute_batch(sql).map_err(sql_err(path))?;
        tx.pragma_update(None, "user_version", to).map_err(sql_err(path))?;
        tx.commit().map_err(sql_err(path))?;
        tracing::info!(db = %path.display(), version = to, "database schema upgraded");
    }
    Ok(())
}
