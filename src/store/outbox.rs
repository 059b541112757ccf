//! The chain outbox: what a store sends its head office, decided and written here, delivered by
//! [`crate::chain`].
//!
//! When an hour or a day closes (it ended at least `grace` ago, so that late events are in), its figures
//! are written to the `outbox` table: exactly the k-suppressed figures of the store's own report of that
//! hour or day ([`super::query`]), one row per kind and dimension, so that head office's figure for a day
//! is the store's. Hours carry the footfall; days carry every kind:
//!
//! | kind          | dim          | figures (the report's, for the whole store)                          |
//! |---------------|--------------|----------------------------------------------------------------------|
//! | `footfall`    | `""`         | entries, exits, hours left out (`buckets_suppressed`)                |
//! | `visits`      | `""`         | store visits, median and p90 length, camera tracks per visit          |
//! | `zone`        | zone         | stays, tracks, mean stay, and stays per fixed bin ([`query::DWELL_BINS_S`]) |
//! | `queue`       | zone         | samples, mean and max length, mean and max wait                       |
//! | `funnel`      | `from>to`    | tracks that entered `from`, of those that reached `to` later          |
//! | `interaction` | zone         | shelf interactions, tracks, mean duration                             |
//! | `heat`        | `cell_m:cx:cy` | presence, dwell, tracks in one floor cell                           |
//! | `mood`        | zone         | faces read and not read, and, where readable, counts per expression   |
//!
//! A suppressed row is sent too, with no figures: head office learns that the figure exists and is hidden,
//! which the store's own report says as well. Nothing per person is ever here: no track id, no token, no
//! sketch. A day's figures depend on its week and month ([`super::series`]): until both have closed, the
//! day is looked at again once a day, and a row whose figures changed gets the next revision (and is sent
//! again); head office keeps the highest revision of each row.
//!
//! Rows are written per day in one SQLite transaction, with the day's state (`outbox_days`), so a crash
//! leaves a day either wholly written or not at all. [`pending`] and [`mark_delivered`] are the delivery
//! side: a row is pending while its revision is above the one head office acknowledged.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::Result;
use super::query::{self, Period};
use crate::buckets::{self, Level};

/// What to close and how.
#[derive(Debug, Clone, Copy)]
pub struct CloseOptions {
    /// The store's `privacy.min_tracks`.
    pub k: u32,
    /// How long after its end a bucket waits for late events.
    pub grace_ms: i64,
    pub now_ms: i64,
    /// Days before this are never looked at again (their rows may have been deleted by retention).
    pub keep_from_ms: Option<i64>,
}

/// What one pass wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// Days looked at.
    pub days: u64,
    /// Rows written new or with a new revision.
    pub rows: u64,
}

/// One row to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    /// `hour` or `day`.
    pub bucket: String,
    pub bucket_start_ms: i64,
    /// The bucket's start as the store's local wall time (`YYYY-MM-DDTHH:MM:SS`).
    pub local_start: String,
    pub dim: String,
    pub revision: i64,
    pub suppressed: bool,
    /// The figures as a JSON object; `None` when suppressed.
    pub figures: Option<String>,
    pub k: u32,
}

/// Rows not yet acknowledged by head office.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub rows: u64,
    /// When the oldest of them was written (ms).
    pub oldest_ms: Option<i64>,
}

/// A row as computed, before it is compared with what is stored.
#[derive(Debug, Clone, PartialEq)]
struct Fresh {
    kind: &'static str,
    bucket: Level,
    start_ms: i64,
    dim: String,
    figures: Option<String>,
}

fn err(conn: &Connection) -> impl Fn(rusqlite::Error) -> super::Error + '_ {
    query::err(conn)
}

/// Closes every hour and day that ended at least `grace` before `now`, and looks again at the days whose
/// week or month was still open; see the module docs. Safe to call as often as wanted: a day is only
/// recomputed when another hour (today) or day (earlier days) has closed since it was last written.
pub fn close(conn: &Connection, opts: &CloseOptions) -> Result<Closed> {
    let e = err(conn);
    let closed_before = opts.now_ms.saturating_sub(opts.grace_ms);
    let mut done = Closed::default();
    let mut day = match first_day(conn)? {
        Some(d) => d,
        None => return Ok(done),
    };
    while day < closed_before {
        let day_end = buckets::next(day, Level::Day);
        let state: Option<(i64, bool)> = conn
            .query_row("SELECT stage_ms, final FROM outbox_days WHERE day_start_ms = ?1", [day], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(&e)?;
        // The day's stage: the last closed hour while it is open, the last closed day after.
        let stage = if day_end <= closed_before {
            buckets::floor(closed_before, Level::Day).max(day_end)
        } else {
            buckets::floor(closed_before, Level::Hour)
        };
        let old = opts.keep_from_ms.is_some_and(|keep| day < keep);
        let skip = match state {
            Some((_, true)) => true,
            Some((stage_ms, false)) => stage_ms >= stage || old,
            None => old,
        };
        if !skip {
            let fresh = day_rows(conn, day, day_end, closed_before, opts.k)?;
            let week_end = buckets::next(buckets::floor(day, Level::Week), Level::Week);
            let month_end = buckets::next(buckets::floor(day, Level::Month), Level::Month);
            let fin = day_end <= closed_before && week_end.max(month_end) <= closed_before;
            done.rows += write_day(conn, day, stage, fin, &fresh, opts)?;
            done.days += 1;
        }
        day = next_seen_day(conn, day_end)?.unwrap_or(i64::MAX);
    }
    Ok(done)
}

/// The first day to look at: the first the box saw (final days are skipped quickly; a day never written
/// before is written whenever its data appears, even behind days already closed, as after a clock fix).
fn first_day(conn: &Connection) -> Result<Option<i64>> {
    next_seen_day(conn, i64::MIN)
}

/// The first day at or after `from_ms` with a frame or an event in it.
fn next_seen_day(conn: &Connection, from_ms: i64) -> Result<Option<i64>> {
    let e = err(conn);
    let first: Option<i64> = conn
        .query_row(
            "SELECT MIN(t) FROM (SELECT MIN(ts_ms) AS t FROM frame_log WHERE ts_ms >= ?1
                                 UNION ALL SELECT MIN(ts_ms) FROM events WHERE ts_ms >= ?1)",
            [from_ms],
            |r| r.get(0),
        )
        .map_err(&e)?;
    Ok(first.map(|t| buckets::floor(t, Level::Day)))
}

/// First and last time anything was seen in `[from, to)`.
fn seen_span(conn: &Connection, from_ms: i64, to_ms: i64) -> Result<Option<(i64, i64)>> {
    let e = err(conn);
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT MIN(a), MAX(b) FROM (
                SELECT MIN(ts_ms) AS a, MAX(ts_ms) AS b FROM frame_log WHERE ts_ms >= ?1 AND ts_ms < ?2
                UNION ALL SELECT MIN(ts_ms), MAX(ts_ms) FROM events WHERE ts_ms >= ?1 AND ts_ms < ?2)",
            params![from_ms, to_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(&e)?;
    Ok(lo.zip(hi))
}

/// A report row as JSON figures: every field but its keys and the suppression flag; `None` when suppressed.
fn figures<T: Serialize>(row: &T, keys: &[&str]) -> Option<String> {
    let mut v = serde_json::to_value(row).ok()?;
    let map = v.as_object_mut()?;
    if map.get("suppressed").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    map.remove("suppressed");
    for k in keys {
        map.remove(*k);
    }
    Some(v.to_string())
}

/// The rows of one day: its closed hours' footfall, and every kind for the day once it has closed.
fn day_rows(conn: &Connection, day: i64, day_end: i64, closed_before: i64, k: u32) -> Result<Vec<Fresh>> {
    let mut out = Vec::new();
    let day_period = Period { from_ms: day, to_ms: day_end };
    let Some((first, last)) = seen_span(conn, day, day_end)? else {
        return Ok(out);
    };
    let released = super::released::build(conn, day_period, k)?;
    let mut hour = buckets::floor(first, Level::Hour);
    while hour <= last && buckets::next(hour, Level::Hour) <= closed_before {
        let end = buckets::next(hour, Level::Hour);
        let sum = released.sum(Period { from_ms: hour, to_ms: end }, Level::Hour, None);
        let hidden = sum.all_suppressed();
        let figures =
            (!hidden).then(|| serde_json::json!({ "entries": sum.value[0], "exits": sum.value[1] }).to_string());
        out.push(Fresh { kind: "footfall", bucket: Level::Hour, start_ms: hour, dim: String::new(), figures });
        hour = end;
    }
    if day_end > closed_before {
        return Ok(out);
    }
    let mut add = |kind: &'static str, dim: String, figures: Option<String>| {
        out.push(Fresh { kind, bucket: Level::Day, start_ms: day, dim, figures });
    };
    // The day as `iobox report` for it says it: the sum of its released hours.
    let sum = released.sum(day_period, Level::Hour, None);
    let hidden = sum.all_suppressed();
    add(
        "footfall",
        String::new(),
        (!hidden).then(|| {
            serde_json::json!({ "entries": sum.value[0], "exits": sum.value[1], "buckets_suppressed": sum.suppressed })
                .to_string()
        }),
    );
    add("visits", String::new(), figures(&query::visits(conn, day_period, k)?, &[]));
    let histograms: HashMap<String, query::DwellHistogram> =
        query::dwell_histograms(conn, day_period, k)?.into_iter().map(|h| (h.zone.clone(), h)).collect();
    for z in query::dwell_per_zone(conn, day_period, k)? {
        let mut fig = figures(&z, &["zone", "median_ms", "p90_ms"]);
        if let (Some(text), Some(h)) = (&fig, histograms.get(&z.zone))
            && let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(text)
        {
            m.insert("bins".into(), serde_json::to_value(&h.bins).unwrap_or(Value::Null));
            m.insert("hidden".into(), serde_json::to_value(h.hidden).unwrap_or(Value::Null));
            fig = Some(Value::Object(m).to_string());
        }
        add("zone", z.zone.clone(), fig);
    }
    for q in query::queues(conn, day_period, k)? {
        add("queue", q.zone.clone(), figures(&q, &["zone"]));
    }
    for f in query::funnel_pairs(conn, day_period, k)? {
        add("funnel", format!("{}>{}", f.from, f.to), figures(&f, &["from", "to", "share"]));
    }
    for i in query::interactions(conn, day_period, k)? {
        add("interaction", i.zone.clone(), figures(&i, &["zone"]));
    }
    for h in query::heat_cells(conn, day_period, k, None)? {
        add("heat", format!("{}:{}:{}", h.cell_m, h.cx, h.cy), figures(&h, &[]));
    }
    for m in query::mood_per_zone(conn, day_period, k)? {
        add("mood", m.zone.clone(), figures(&m, &["zone", "shares"]));
    }
    Ok(out)
}

/// A row's natural key: kind, bucket, bucket start, dim.
type RowKey = (String, String, i64, String);

/// Writes one day's rows in one transaction: new rows at revision 1, changed ones at the next revision,
/// rows no longer there as suppressed. Returns the rows written.
fn write_day(conn: &Connection, day: i64, stage: i64, fin: bool, fresh: &[Fresh], opts: &CloseOptions) -> Result<u64> {
    let e = err(conn);
    let tx = conn.unchecked_transaction().map_err(&e)?;
    let mut stored: HashMap<RowKey, (i64, Option<String>)> = HashMap::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT kind, bucket, bucket_start_ms, dim, id, figures FROM outbox WHERE day_start_ms = ?1",
            )
            .map_err(&e)?;
        let mut rows = stmt.query([day]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            stored.insert(
                (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?, r.get(2).map_err(&e)?, r.get(3).map_err(&e)?),
                (r.get(4).map_err(&e)?, r.get(5).map_err(&e)?),
            );
        }
    }
    tx.execute(
        "INSERT INTO outbox_days (day_start_ms, stage_ms, final, written_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (day_start_ms) DO UPDATE SET stage_ms = ?2, final = ?3, written_at_ms = ?4",
        params![day, stage, fin, opts.now_ms],
    )
    .map_err(&e)?;
    let mut written = 0u64;
    for f in fresh {
        let key = (f.kind.to_string(), f.bucket.as_str().to_string(), f.start_ms, f.dim.clone());
        match stored.remove(&key) {
            Some((_, figures)) if figures == f.figures => {}
            Some((id, _)) => {
                tx.execute(
                    "UPDATE outbox SET revision = revision + 1, suppressed = ?2, figures = ?3, k = ?4, written_at_ms = ?5
                     WHERE id = ?1",
                    params![id, f.figures.is_none(), f.figures, opts.k, opts.now_ms],
                )
                .map_err(&e)?;
                written += 1;
            }
            None => {
                tx.execute(
                    "INSERT INTO outbox (day_start_ms, kind, bucket, bucket_start_ms, local_start, dim, revision,
                                         suppressed, figures, k, written_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?10)",
                    params![
                        day,
                        f.kind,
                        f.bucket.as_str(),
                        f.start_ms,
                        buckets::local_wall(f.start_ms),
                        f.dim,
                        f.figures.is_none(),
                        f.figures,
                        opts.k,
                        opts.now_ms
                    ],
                )
                .map_err(&e)?;
                written += 1;
            }
        }
    }
    // Rows that are no longer there (their events were deleted): hidden from now on.
    for (_, (id, figures)) in stored {
        if figures.is_some() {
            tx.execute(
                "UPDATE outbox SET revision = revision + 1, suppressed = 1, figures = NULL, written_at_ms = ?2 WHERE id = ?1",
                params![id, opts.now_ms],
            )
            .map_err(&e)?;
            written += 1;
        }
    }
    tx.commit().map_err(&e)?;
    Ok(written)
}

/// Up to `limit` rows head office has not acknowledged, oldest first.
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxRow>> {
    let e = err(conn);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, kind, bucket, bucket_start_ms, local_start, dim, revision, suppressed, figures, k
             FROM outbox WHERE delivered_revision < revision ORDER BY id LIMIT ?1",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                bucket: r.get(2)?,
                bucket_start_ms: r.get(3)?,
                local_start: r.get(4)?,
                dim: r.get(5)?,
                revision: r.get(6)?,
                suppressed: r.get(7)?,
                figures: r.get(8)?,
                k: r.get(9)?,
            })
        })
        .map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

/// Records that head office holds these rows at these revisions (a row rewritten meanwhile stays pending).
pub fn mark_delivered(conn: &Connection, rows: &[(i64, i64)]) -> Result<()> {
    let e = err(conn);
    let tx = conn.unchecked_transaction().map_err(&e)?;
    {
        let mut stmt = tx
            .prepare_cached("UPDATE outbox SET delivered_revision = MAX(delivered_revision, ?2) WHERE id = ?1")
            .map_err(&e)?;
        for (id, revision) in rows {
            stmt.execute(params![id, revision]).map_err(&e)?;
        }
    }
    tx.commit().map_err(&e)
}

/// Rows head office has not acknowledged, and since when.
pub fn backlog(conn: &Connection) -> Result<Backlog> {
    if super::schema::version(conn).map_err(err(conn))? < 9 {
        return Ok(Backlog::default());
    }
    conn.query_row("SELECT COUNT(*), MIN(written_at_ms) FROM outbox WHERE delivered_revision < revision", [], |r| {
        Ok(Backlog { rows: r.get::<_, i64>(0)?.max(0) as u64, oldest_ms: r.get(1)? })
    })
    .map_err(err(conn))
}

/// Marks every row pending again (head office lost its copy, or the box moved to a new server).
pub fn resend_all(conn: &Connection) -> Result<u64> {
    Ok(conn.execute("UPDATE outbox SET delivered_revision = 0", []).map_err(err(conn))? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{Event, Name, TrackId};
    use crate::store::{Record, Writer, WriterOptions, open_rw};

    const HOUR: i64 = 3_600_000;
    const K: u32 = 5;

    /// Tuesday 2030-01-01 00:00 local (the tests' TZ is whatever the machine's is: days come from it).
    fn day0() -> i64 {
        buckets::floor(1_893_499_200_000, Level::Day)
    }

    /// `n` tracks entering at `hour` of `day` and staying a minute in "shelf", written by one run.
    fn shoppers(path: &std::path::Path, day: i64, hour: i64, n: u64, first_track: u64) {
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(path, &["door".to_string()], options).unwrap();
        let tx = writer.sender();
        let at = day + hour * HOUR;
        tx.send(Record::Frame { camera: 0, ts_ms: at, seq: 1, faces_blurred: 0, frames_dropped: 0 });
        for i in 0..n {
            let track = TrackId(first_track + i);
            let t = at + i as i64 * 1000;
            tx.send(Record::Event { camera: 0, event: Event::Entry { zone: Name::from("entrance"), track, at_ms: t } });
            tx.send(Record::Event {
                camera: 0,
                event: Event::ZoneExited { zone: Name::from("shelf"), track, at_ms: t + 60_000, dwell_ms: 60_000 },
            });
        }
        drop(tx);
        writer.finish().unwrap();
    }

    fn opts(now_ms: i64) -> CloseOptions {
        CloseOptions { k: K, grace_ms: 15 * 60_000, now_ms, keep_from_ms: None }
    }

    fn day_entries(conn: &Connection, day: i64) -> (Option<u64>, i64) {
        conn.query_row(
            "SELECT figures, revision FROM outbox WHERE kind = 'footfall' AND bucket = 'day' AND bucket_start_ms = ?1",
            [day],
            |r| {
                let f: Option<String> = r.get(0)?;
                let v = f.map(|f| serde_json::from_str::<Value>(&f).unwrap()["entries"].as_u64().unwrap());
                Ok((v, r.get(1)?))
            },
        )
        .unwrap()
    }

    #[test]
    fn hours_close_after_the_grace_days_when_they_end_and_a_pass_again_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let day = day0();
        shoppers(&path, day, 10, 6, 1);
        shoppers(&path, day, 11, 7, 100);
        let conn = open_rw(&path).unwrap();
        // 11:10: hour 10 ended 10 minutes ago, within the grace: nothing yet.
        assert_eq!(close(&conn, &opts(day + 11 * HOUR + 10 * 60_000)).unwrap().rows, 0);
        // 11:20: hour 10 closes, alone.
        let c = close(&conn, &opts(day + 11 * HOUR + 20 * 60_000)).unwrap();
        assert_eq!(c, Closed { days: 1, rows: 1 });
        let hours: Vec<(i64, String)> = conn
            .prepare("SELECT bucket_start_ms, figures FROM outbox WHERE bucket = 'hour'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(hours, vec![(day + 10 * HOUR, r#"{"entries":6,"exits":0}"#.to_string())]);
        // The same moment again: nothing to do.
        assert_eq!(close(&conn, &opts(day + 11 * HOUR + 20 * 60_000)).unwrap(), Closed::default());
        // The next morning: hour 11 and the whole day, every kind of the day's report.
        let c = close(&conn, &opts(day + 33 * HOUR)).unwrap();
        assert!(c.rows >= 3, "{c:?}");
        assert_eq!(day_entries(&conn, day), (Some(13), 1));
        let zone: String = conn
            .query_row("SELECT figures FROM outbox WHERE kind = 'zone' AND dim = 'shelf'", [], |r| r.get(0))
            .unwrap();
        let zone: Value = serde_json::from_str(&zone).unwrap();
        assert_eq!(zone["visits"], 13);
        // 13 stays of a minute: all in the 60-120 s bin, shown (13 >= k).
        assert_eq!(zone["bins"], serde_json::json!([0, 0, 13, 0, 0, 0, 0, 0, 0]));
        assert_eq!(zone["hidden"], 0);
        assert!(zone.get("median_ms").is_none(), "medians do not add up across stores: not sent");
        assert_eq!(close(&conn, &opts(day + 33 * HOUR)).unwrap(), Closed::default());
    }

    #[test]
    fn late_events_give_the_day_a_new_revision_that_is_pending_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let day = day0();
        shoppers(&path, day, 10, 6, 1);
        let conn = open_rw(&path).unwrap();
        close(&conn, &opts(day + 25 * HOUR)).unwrap();
        assert_eq!(day_entries(&conn, day), (Some(6), 1));
        let rows = pending(&conn, 1000).unwrap();
        assert!(!rows.is_empty());
        let acked: Vec<(i64, i64)> = rows.iter().map(|r| (r.id, r.revision)).collect();
        mark_delivered(&conn, &acked).unwrap();
        assert_eq!(backlog(&conn).unwrap().rows, 0);
        // Late shoppers on that day; the next pass on the same day does not look again, the next day's does.
        shoppers(&path, day, 15, 5, 500);
        assert_eq!(close(&conn, &opts(day + 26 * HOUR)).unwrap().rows, 0);
        assert!(close(&conn, &opts(day + 49 * HOUR)).unwrap().rows > 0);
        assert_eq!(day_entries(&conn, day), (Some(11), 2));
        let again = pending(&conn, 1000).unwrap();
        assert!(again.iter().any(|r| r.kind == "footfall" && r.bucket == "day" && r.revision == 2));
        // An acknowledgement of the old revision does not clear the new one.
        let day_row = again.iter().find(|r| r.kind == "footfall" && r.bucket == "day").unwrap();
        mark_delivered(&conn, &[(day_row.id, 1)]).unwrap();
        assert!(pending(&conn, 1000).unwrap().iter().any(|r| r.id == day_row.id));
        mark_delivered(&conn, &[(day_row.id, 2)]).unwrap();
        assert!(!pending(&conn, 1000).unwrap().iter().any(|r| r.id == day_row.id));
    }

    #[test]
    fn a_small_day_is_sent_suppressed_and_a_vanished_row_is_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let day = day0();
        shoppers(&path, day, 10, 3, 1);
        shoppers(&path, day, 12, 6, 100);
        shoppers(&path, day, 14, 7, 200);
        let conn = open_rw(&path).unwrap();
        close(&conn, &opts(day + 25 * HOUR)).unwrap();
        let hour10: (bool, Option<String>) = conn
            .query_row(
                "SELECT suppressed, figures FROM outbox WHERE bucket = 'hour' AND bucket_start_ms = ?1",
                [day + 10 * HOUR],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(hour10, (true, None), "3 shoppers: sent as suppressed, no figures");
        // The day is the sum of its shown hours, as the store's report says it: hour 12 is hidden with hour
        // 10 (the day, 16, minus hours 12 and 14 would be the 3 of hour 10).
        assert_eq!(day_entries(&conn, day), (Some(7), 1));
        // The shelf stays are deleted (say, by hand): the shelf row is withdrawn at the next revision.
        conn.execute("DELETE FROM events WHERE place = 'shelf'", []).unwrap();
        close(&conn, &opts(day + 49 * HOUR)).unwrap();
        let shelf: (bool, Option<String>, i64) = conn
            .query_row(
                "SELECT suppressed, figures, revision FROM outbox WHERE kind = 'zone' AND dim = 'shelf'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(shelf, (true, None, 2));
    }

    #[test]
    fn no_track_id_or_token_is_ever_in_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let day = day0();
        shoppers(&path, day, 10, 8, 0xabcdef);
        let conn = open_rw(&path).unwrap();
        close(&conn, &opts(day + 25 * HOUR)).unwrap();
        let all: String = conn.query_row("SELECT group_concat(figures, ' ') FROM outbox", [], |r| r.get(0)).unwrap();
        let track: String = conn.query_row("SELECT track FROM events LIMIT 1", [], |r| r.get(0)).unwrap();
        assert!(!all.contains(&track), "{all}");
        assert!(!all.contains("token"), "{all}");
    }
}

#[cfg(test)]
mod bin_props {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use crate::store::query::{DWELL_BINS_S, dwell_bin, shown_bins};

    proptest! {
        /// Whatever the stays: a shown bin holds 0 or at least k tracks, and the hidden bins together hold
        /// none or at least k (so the zone's total minus the shown bins gives no small group away).
        #[test]
        fn a_histogram_never_shows_or_leaves_a_small_group(
            stays in proptest::collection::vec((0u64..40, 0i64..7_200_000), 0..120),
            k in 2u32..8,
        ) {
            let mut bins = vec![HashSet::new(); DWELL_BINS_S.len() + 1];
            for (track, ms) in &stays {
                bins[dwell_bin(*ms)].insert(*track);
            }
            let shown = shown_bins(&bins, k);
            let k = k as usize;
            let mut hidden = HashSet::new();
            for (b, s) in bins.iter().zip(&shown) {
                if *s {
                    prop_assert!(b.is_empty() || b.len() >= k);
                } else {
                    hidden.extend(b.iter().copied());
                }
            }
            let all: HashSet<u64> = bins.iter().flatten().copied().collect();
            prop_assert!(hidden.is_empty() || hidden.len() >= k || hidden.len() == all.len());
        }
    }
}
