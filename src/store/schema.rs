//! Schema migrations. `PRAGMA user_version` holds the number of migrations applied; each migration runs in
//! its own transaction, so a database is always at exactly one version. Append new migrations, never edit
//! an applied one.
//!
//! Tables (see docs/events-and-schema.md, "Data stored"):
//! - `runs`: one row per start of `iobox run` (start and end time, iobox version).
//! - `cameras`: camera names from the config; ids are stable across runs.
//! - `frame_log`: one row per processed frame: camera, time, faces blurred, frames dropped so far.
//! - `events`: entries, exits, zone entered/exited (with dwell), line crossings, shelf interactions.
//! - `occupancy`, `queue_samples`: per-zone samples over time.
//! - `journeys`: the ordered zones one track visited, written when the track ends.
//! - `visits`: one row per store visit (camera tracks joined across cameras), its random store track id,
//!   first and last time seen and how many camera tracks it joined.
//! - `visit_members`: the camera tracks of each store visit (store track, camera, camera track, when it
//!   joined): random per-run ids linked to each other by floor position and time, never to a person.
//! - `mood`: per zone and time bucket, a histogram of dominant expressions and the count of faces seen but
//!   not read (never per person).
//! - `heat`: per floor cell and time bucket, presence, dwell and distinct tracks (never per-person points).
//!   Both have `track_tokens` (from migration 4): the bucket's tracks as 16-bit tokens keyed per run and per
//!   zone or cell (`behaviour::TrackTokens`, little-endian), so that reports count the distinct people behind
//!   many buckets exactly instead of summing per-bucket counts; NULL in rows written before.
//! - `outbox_days`, `outbox` (from migration 9): the figures each closed day and hour sends to the chain's
//!   head office (`store::outbox`): the same k-suppressed figures as the store's own report of that day or
//!   hour, one row per kind and dimension (zone, pair of zones, floor cell) as JSON, with a revision that
//!   grows when the row is rewritten and the revision head office acknowledged. Never a track id, token or anything per person.
//! - `users`: dashboard logins: name, argon2 password hash (a PHC string), role (`staff` or `integrator`).
//!
//! Times are milliseconds since the Unix epoch. `track` columns hold the random per-run track id (16 hex
//! digits); nothing in the database can link it to a person or another run; only `visit_members` links the
//! camera tracks of one store visit to each other.

use std::path::Path;

use rusqlite::Connection;

use super::{Error, Result, sql_err};

/// The migrations, in order; `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
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
    // 2: shopper-behaviour events.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        kind TEXT NOT NULL CHECK (kind IN ('entry', 'exit', 'zone_entered', 'zone_exited', 'line_crossed', 'interaction')),
        ts_ms INTEGER NOT NULL,
        track TEXT NOT NULL,
        place TEXT NOT NULL,
        direction TEXT CHECK (direction IN ('in', 'out')),
        duration_ms INTEGER
     );
     CREATE INDEX events_kind_ts ON events(kind, ts_ms);
     CREATE INDEX events_ts ON events(ts_ms);
     CREATE TABLE occupancy (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        zone TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        count INTEGER NOT NULL
     );
     CREATE INDEX occupancy_ts ON occupancy(ts_ms);
     CREATE TABLE queue_samples (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        zone TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        length INTEGER NOT NULL,
        mean_wait_ms INTEGER NOT NULL,
        max_wait_ms INTEGER NOT NULL
     );
     CREATE INDEX queue_samples_ts ON queue_samples(ts_ms);
     CREATE TABLE journeys (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        track TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        zones TEXT NOT NULL
     );
     CREATE INDEX journeys_start ON journeys(start_ms);
     CREATE TABLE mood (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        zone TEXT NOT NULL,
        bucket_start_ms INTEGER NOT NULL,
        angry INTEGER NOT NULL, disgust INTEGER NOT NULL, fear INTEGER NOT NULL, happy INTEGER NOT NULL,
        sad INTEGER NOT NULL, surprise INTEGER NOT NULL, neutral INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        tracks INTEGER NOT NULL
     );
     CREATE INDEX mood_bucket ON mood(bucket_start_ms);
     CREATE TABLE heat (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        bucket_start_ms INTEGER NOT NULL,
        cell_m REAL NOT NULL,
        cx INTEGER NOT NULL,
        cy INTEGER NOT NULL,
        presence INTEGER NOT NULL,
        dwell_ms INTEGER NOT NULL,
        tracks INTEGER NOT NULL
     );
     CREATE INDEX heat_bucket ON heat(bucket_start_ms);",
    // 3: dashboard users (`iobox user add`); passwords only as argon2 PHC strings.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('staff', 'integrator')),
        created_at_ms INTEGER NOT NULL
     );",
    // 4: the tracks behind mood and heat buckets as tokens, for exact k-anonymity over many buckets.
    "ALTER TABLE mood ADD COLUMN track_tokens BLOB;
     ALTER TABLE heat ADD COLUMN track_tokens BLOB;",
    // 5: faces seen but not read (too small, turned away, or the model unsure), beside the read ones.
    "ALTER TABLE mood ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;",
    // 6: store visits: camera tracks joined across the store's cameras (`fuse`), one row per visit.
    "CREATE TABLE visits (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        store_track TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        camera_tracks INTEGER NOT NULL
     );
     CREATE INDEX visits_start ON visits(start_ms);",
    // 7: which camera tracks made up each store visit, so that journeys and funnels follow the whole visit.
    "CREATE TABLE visit_members (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        store_track TEXT NOT NULL,
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        track TEXT NOT NULL,
        joined_ms INTEGER NOT NULL
     );
     CREATE INDEX visit_members_track ON visit_members(run_id, camera_id, track);
     CREATE INDEX visit_members_joined ON visit_members(joined_ms);",
    // 8: finding whether a visit has ended (the store seen empty, `query::store_occupancy`).
    "CREATE INDEX visits_track ON visits(run_id, store_track);",
    // 9: the chain outbox (`outbox`): each closed day's k-suppressed figures for head office, with a revision
    // per day, and the frame log by time (which days and hours the box saw).
    "CREATE TABLE outbox_days (
        day_start_ms INTEGER PRIMARY KEY,
        stage_ms INTEGER NOT NULL,
        final INTEGER NOT NULL DEFAULT 0,
        written_at_ms INTEGER NOT NULL
     );
     CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        day_start_ms INTEGER NOT NULL REFERENCES outbox_days(day_start_ms),
        kind TEXT NOT NULL,
        bucket TEXT NOT NULL CHECK (bucket IN ('hour', 'day')),
        bucket_start_ms INTEGER NOT NULL,
        local_start TEXT NOT NULL,
        dim TEXT NOT NULL,
        revision INTEGER NOT NULL,
        suppressed INTEGER NOT NULL,
        figures TEXT,
        k INTEGER NOT NULL,
        written_at_ms INTEGER NOT NULL,
        delivered_revision INTEGER NOT NULL DEFAULT 0,
        UNIQUE (kind, bucket, bucket_start_ms, dim)
     );
     CREATE INDEX outbox_pending ON outbox(id) WHERE delivered_revision < revision;
     CREATE INDEX frame_log_ts ON frame_log(ts_ms);",
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
