//! Raw rows of the event tables for BI exports (`iobox export`), streamed without holding a table in
//! memory. Camera ids are replaced by camera names; times stay milliseconds since the Unix epoch.
//!
//! These rows are **not** k-suppressed: they are the store's own anonymous events (random per-run track
//! ids, zone names, times, counts), for the store's own analysis.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::Error;
use super::query::Period;

/// How a column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// Milliseconds since the Unix epoch (an exporter may mark it as a timestamp).
    pub time: bool,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: false, time: false }
}

const fn time(name: &'static str) -> Column {
    Column { name, kind: Kind::Int, nullable: false, time: true }
}

const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: true, time: false }
}

/// An exported table: its columns and the query (period as `?1`, `?2`) that yields them in time order.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    sql: &'static str,
    /// The schema version that created the table: an older database exports it empty.
    since_schema: i64,
}

use Kind::{Int, Real, Text};

/// Every table `iobox export` writes, in that order.
pub const TABLES: &[Table] = &[
    // The store first: each person's visit once, however many cameras saw them, then which camera tracks
    // made it up (the drill-down into the per-camera tables below).
    Table {
        name: "visits",
        columns: &[
            col("run_id", Int),
            col("store_track", Text),
            time("start_ms"),
            time("end_ms"),
            col("duration_ms", Int),
            col("camera_tracks", Int),
        ],
        sql: "SELECT v.run_id, v.store_track, v.start_ms, v.end_ms, v.end_ms - v.start_ms, v.camera_tracks
              FROM visits v WHERE v.start_ms >= ?1 AND v.start_ms < ?2 ORDER BY v.start_ms, v.rowid",
        since_schema: 6,
    },
    Table {
        name: "visit_members",
        columns: &[
            col("run_id", Int),
            col("store_track", Text),
            col("camera", Text),
            col("track", Text),
            time("joined_ms"),
        ],
        sql: "SELECT m.run_id, m.store_track, c.name, m.track, m.joined_ms
              FROM visit_members m JOIN cameras c ON c.id = m.camera_id
              WHERE m.joined_ms >= ?1 AND m.joined_ms < ?2 ORDER BY m.joined_ms, m.rowid",
        since_schema: 7,
    },
    Table {
        name: "events",
        columns: &[
            col("id", Int),
            col("run_id", Int),
            col("camera", Text),
            col("kind", Text),
            time("ts_ms"),
            col("track", Text),
            col("place", Text),
            nullable("direction", Text),
            nullable("duration_ms", Int),
        ],
        sql: "SELECT e.id, e.run_id, c.name, e.kind, e.ts_ms, e.track, e.place, e.direction, e.duration_ms
              FROM events e JOIN cameras c ON c.id = e.camera_id
              WHERE e.ts_ms >= ?1 AND e.ts_ms < ?2 ORDER BY e.ts_ms, e.id",
        since_schema: 1,
    },
    Table {
        name: "occupancy",
        columns: &[col("run_id", Int), col("camera", Text), col("zone", Text), time("ts_ms"), col("count", Int)],
        sql: "SELECT o.run_id, c.name, o.zone, o.ts_ms, o.count FROM occupancy o JOIN cameras c ON c.id = o.camera_id
              WHERE o.ts_ms >= ?1 AND o.ts_ms < ?2 ORDER BY o.ts_ms",
        since_schema: 1,
    },
    Table {
        name: "queue_samples",
        columns: &[
            col("run_id", Int),
            col("camera", Text),
            col("zone", Text),
            time("ts_ms"),
            col("length", Int),
            col("mean_wait_ms", Int),
            col("max_wait_ms", Int),
        ],
        sql: "SELECT q.run_id, c.name, q.zone, q.ts_ms, q.length, q.mean_wait_ms, q.max_wait_ms
              FROM queue_samples q JOIN cameras c ON c.id = q.camera_id
              WHERE q.ts_ms >= ?1 AND q.ts_ms < ?2 ORDER BY q.ts_ms",
        since_schema: 1,
    },
    Table {
        name: "journeys",
        columns: &[
            col("id", Int),
            col("run_id", Int),
            col("camera", Text),
            col("track", Text),
            time("start_ms"),
            time("end_ms"),
            col("zones", Text),
        ],
        sql: "SELECT j.id, j.run_id, c.name, j.track, j.start_ms, j.end_ms, j.zones
              FROM journeys j JOIN cameras c ON c.id = j.camera_id
              WHERE j.start_ms >= ?1 AND j.start_ms < ?2 ORDER BY j.start_ms, j.id",
        since_schema: 1,
    },
    Table {
        name: "mood",
        columns: &[
            col("run_id", Int),
            col("camera", Text),
            col("zone", Text),
            time("bucket_start_ms"),
            col("angry", Int),
            col("disgust", Int),
            col("fear", Int),
            col("happy", Int),
            col("sad", Int),
            col("surprise", Int),
            col("neutral", Int),
            col("samples", Int),
            col("uncertain", Int),
            col("tracks", Int),
        ],
        sql: "SELECT m.run_id, c.name, m.zone, m.bucket_start_ms, m.angry, m.disgust, m.fear, m.happy, m.sad,
                     m.surprise, m.neutral, m.samples, m.uncertain, m.tracks
              FROM mood m JOIN cameras c ON c.id = m.camera_id
              WHERE m.bucket_start_ms >= ?1 AND m.bucket_start_ms < ?2 ORDER BY m.bucket_start_ms",
        since_schema: 1,
    },
    Table {
        name: "heat",
        columns: &[
            col("run_id", Int),
            col("camera", Text),
            time("bucket_start_ms"),
            col("cell_m", Real),
            col("cx", Int),
            col("cy", Int),
            col("presence", Int),
            col("dwell_ms", Int),
            col("tracks", Int),
        ],
        sql: "SELECT h.run_id, c.name, h.bucket_start_ms, h.cell_m, h.cx, h.cy, h.presence, h.dwell_ms, h.tracks
              FROM heat h JOIN cameras c ON c.id = h.camera_id
              WHERE h.bucket_start_ms >= ?1 AND h.bucket_start_ms < ?2 ORDER BY h.bucket_start_ms",
        since_schema: 1,
    },
    Table {
        name: "frame_log",
        columns: &[
            col("run_id", Int),
            col("camera", Text),
            time("ts_ms"),
            col("seq", Int),
            col("faces_blurred", Int),
            col("frames_dropped", Int),
        ],
        sql: "SELECT f.run_id, c.name, f.ts_ms, f.seq, f.faces_blurred, f.frames_dropped
              FROM frame_log f JOIN cameras c ON c.id = f.camera_id
              WHERE f.ts_ms >= ?1 AND f.ts_ms < ?2 ORDER BY f.camera_id, f.ts_ms",
        since_schema: 1,
    },
];

/// One value of an exported row, borrowed from the database row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

const MAX_COLUMNS: usize = 16;

/// Calls `each` with every row of `table` in `period`, in time order; returns the number of rows. `each`
/// may stop the export with its own error.
pub fn for_each_row<E: From<Error>>(
    conn: &Connection,
    table: &Table,
    period: Period,
    mut each: impl FnMut(&[Value<'_>]) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let err = |source| Error::Sqlite { path: conn.path().unwrap_or("").into(), source };
    let n = table.columns.len();
    assert!(n <= MAX_COLUMNS, "table {} has too many columns", table.name);
    let version = super::schema::version(conn).map_err(err)?;
    if version < table.since_schema {
        return Ok(0);
    }
    // Faces seen but not read are counted from schema version 5 on; before, none were.
    let sql = if version < 5 {
        std::borrow::Cow::Owned(table.sql.replace("m.uncertain", "0"))
    } else {
        std::borrow::Cow::Borrowed(table.sql)
    };
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut rows = stmt.query([period.from_ms, period.to_ms]).map_err(err)?;
    let mut count = 0;
    while let Some(r) = rows.next().map_err(err)? {
        let mut values = [Value::Null; MAX_COLUMNS];
        for (i, v) in values.iter_mut().enumerate().take(n) {
            *v = match r.get_ref(i).map_err(err)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(x) => Value::Int(x),
                ValueRef::Real(x) => Value::Real(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(std::str::from_utf8(t).unwrap_or("")),
            };
        }
        each(&values[..n])?;
        count += 1;
    }
    Ok(count)
}
