//! `iobox report` and `iobox export` on a real database: the one `iobox run` writes for the bundled
//! sample clip (six people, one at a time; tests/data/ground_truth.toml). The report's figures are checked
//! against the database (read here with plain SQL, an oracle independent of `store::query`) and against the
//! footage; exports are read back with a CSV reader and the parquet crate.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;
use serde_json::Value;

use crate::common;

fn sample_db() -> &'static Path {
    common::sample_db()
}

fn report_json(db: &Path, config: Option<&Path>, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--db", db.to_str().unwrap(), "--from", "2000-01-01", "--format", "json"];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    args.extend(extra);
    let out = common::iobox(&args, db.parent().unwrap());
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Per zone: the DB's (visits, distinct tracks, durations) of `zone_exited` events.
fn dwell_from_db(conn: &Connection) -> HashMap<String, (i64, i64, Vec<i64>)> {
    let mut out: HashMap<String, (i64, i64, Vec<i64>)> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT place, COUNT(*), COUNT(DISTINCT track) FROM events WHERE kind = 'zone_exited' GROUP BY place")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))).unwrap();
    for row in rows {
        let (zone, visits, tracks) = row.unwrap();
        out.insert(zone, (visits, tracks, Vec::new()));
    }
    let mut stmt = conn.prepare("SELECT place, duration_ms FROM events WHERE kind = 'zone_exited'").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).unwrap();
    for row in rows {
        let (zone, d) = row.unwrap();
        out.get_mut(&zone).unwrap().2.push(d);
    }
    out
}

/// Each track's journey (zone names) from the DB.
fn journeys_from_db(conn: &Connection) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare("SELECT zones FROM journeys").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|z| serde_json::from_str(&z.unwrap()).unwrap()).collect()
}

fn find<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r[key] == value).unwrap_or_else(|| panic!("no {key} = {value} in {rows}"))
}

#[test]
fn the_report_matches_the_database_and_the_footage() {
    let db = sample_db();
    let conn = iobox::store::open_ro(db).unwrap();
    let report = report_json(db, Some(&common::config_with_k(db.parent().unwrap(), 1)), &[]);
    let people = common::sample_people();
    assert_eq!(report["k"], 1);
    assert_eq!(report["cameras"], serde_json::json!(["sample"]));

    // Store visits: one per person, each seen by the one camera.
    assert_eq!(report["visits"]["visits"], people, "{}", report["visits"]);
    assert_eq!(report["visits"]["visits"], int(&conn, "SELECT COUNT(*) FROM visits"));

    // Entries and exits: one each per person in the clip, per camera and for the store.
    let ee = &report["entries_exits"];
    assert_eq!(ee.as_array().unwrap().len(), 2);
    for row in ee.as_array().unwrap() {
        assert_eq!(row["entries"], int(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'entry'"));
        assert_eq!(row["exits"], int(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'exit'"));
        assert_eq!(row["entries"], people, "one entry per person in the footage");
        assert_eq!(row["exits"], people, "one exit per person in the footage");
        assert_eq!(row["suppressed"], false);
    }
    assert_eq!(ee[1]["camera"], Value::Null);

    // Footfall per hour adds up to the entries, for the camera and for the store.
    for camera in [Value::from("sample"), Value::Null] {
        let sum: i64 = report["footfall_per_hour"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["camera"] == camera)
            .map(|h| h["entries"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, people, "{camera}");
    }

    // Dwell per zone: visits, tracks, mean, median and p90 as computed from the raw events.
    let dwell = dwell_from_db(&conn);
    assert_eq!(report["dwell"].as_array().unwrap().len(), dwell.len());
    for (zone, (visits, tracks, mut durations)) in dwell {
        let row = find(&report["dwell"], "zone", &zone);
        durations.sort();
        let n = durations.len();
        let mean = durations.iter().sum::<i64>() as f64 / n as f64;
        let median =
            if n % 2 == 1 { durations[n / 2] as f64 } else { (durations[n / 2 - 1] + durations[n / 2]) as f64 / 2.0 };
        let p90 = durations[(0.9 * n as f64).ceil() as usize - 1];
        assert_eq!((row["visits"].as_i64(), row["tracks"].as_i64()), (Some(visits), Some(tracks)), "{zone}");
        assert!((row["mean_ms"].as_f64().unwrap() - mean).abs() < 1e-6, "{zone}: {row}");
        assert_eq!(row["median_ms"].as_f64(), Some(median), "{zone}");
        assert_eq!(row["p90_ms"].as_i64(), Some(p90), "{zone}");
    }
    // Every one of the six people stands at the table (ground truth), each for seconds, not frames.
    let table = find(&report["dwell"], "zone", "table");
    assert_eq!(table["tracks"], people);
    assert!(table["median_ms"].as_f64().unwrap() > 5000.0, "{table}");

    // Funnel pairs: recomputed from the journeys.
    let journeys = journeys_from_db(&conn);
    let reached = |a: &str, b: &str| {
        journeys
            .iter()
            .filter(|j| j.iter().position(|z| z == a).is_some_and(|i| j[i + 1..].iter().any(|z| z == b)))
            .count() as i64
    };
    let entered = |a: &str| journeys.iter().filter(|j| j.iter().any(|z| z == a)).count() as i64;
    let pairs = report["funnel"]["pairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    for p in pairs {
        let (a, b) = (p["from"].as_str().unwrap(), p["to"].as_str().unwrap());
        assert_eq!(p["reached"], reached(a, b), "{p}");
        assert_eq!(p["entered"], entered(a), "{p}");
    }
    // A requested funnel.
    let seq = report_json(db, Some(&common::config_with_k(db.parent().unwrap(), 1)), &["--funnel", "entrance,table"]);
    let steps = seq["funnel"]["sequence"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["tracks"], entered("entrance"));
    assert_eq!(steps[1]["tracks"], reached("entrance", "table"));

    // Top journeys: every journey of the run, the most frequent first.
    let top = report["top_journeys"].as_array().unwrap();
    let total: i64 = top.iter().map(|j| j["tracks"].as_i64().unwrap()).sum();
    assert_eq!(total, journeys.iter().filter(|j| !j.is_empty()).count() as i64);
    assert_eq!(total, people, "one journey per person");
    assert!(top.windows(2).all(|w| w[0]["tracks"].as_i64() >= w[1]["tracks"].as_i64()));

    // Interactions and mood as summed from the tables.
    for row in report["interactions"].as_array().unwrap() {
        let zone = row["zone"].as_str().unwrap();
        let n = int(&conn, &format!("SELECT COUNT(*) FROM events WHERE kind = 'interaction' AND place = '{zone}'"));
        assert_eq!(row["interactions"], n);
    }
    // On the sample every face is seen from above or behind: each is counted as seen but not read, and
    // no zone prints a mood (it says it cannot be read).
    let mood = report["mood"].as_array().unwrap();
    assert!(!mood.is_empty(), "the sample run writes mood buckets");
    for row in mood {
        let zone = row["zone"].as_str().unwrap();
        assert_eq!(row["samples"], int(&conn, &format!("SELECT SUM(samples) FROM mood WHERE zone = '{zone}'")));
        let uncertain = int(&conn, &format!("SELECT SUM(uncertain) FROM mood WHERE zone = '{zone}'"));
        assert_eq!(row["uncertain"], uncertain);
        assert!(uncertain > 0, "{row}");
        assert_eq!(
            (&row["readable"], &row["shares"], &row["counts"]),
            (&serde_json::json!(false), &serde_json::json!(null), &serde_json::json!(null)),
            "{row}"
        );
        assert!(row["read_share"].as_f64().unwrap() < 0.5, "{row}");
    }
    assert_eq!(report["queues"], serde_json::json!([]), "the sample has no queue zone");

    // The heatmap query for the dashboard: summed cells, suppressed below k distinct people (by tokens).
    let all = iobox::store::query::Period::ALL;
    let cells = iobox::store::query::heat_cells(&conn, all, 1, Some("sample")).unwrap();
    assert_eq!(cells.len() as i64, int(&conn, "SELECT COUNT(DISTINCT cx || ',' || cy) FROM heat"));
    let presence: u64 = cells.iter().map(|c| c.presence.unwrap()).sum();
    assert_eq!(presence as i64, int(&conn, "SELECT SUM(presence) FROM heat"));
    for c in iobox::store::query::heat_cells(&conn, all, 5, None).unwrap() {
        let tracks = common::distinct_tokens(&conn, &format!("FROM heat WHERE cx = {} AND cy = {}", c.cx, c.cy));
        assert_eq!(c.suppressed, tracks < 5, "{c:?}");
        assert_eq!(c.tracks.is_none(), c.suppressed);
    }
}

/// Group sizes of a report row, from the database: the rule is that a row is suppressed exactly when one
/// of them is between 1 and k-1.
fn hidden(groups: &[i64], k: i64) -> bool {
    groups.iter().any(|&g| g > 0 && g < k)
}

#[test]
fn with_the_default_k_rows_about_fewer_than_five_people_are_suppressed() {
    let db = sample_db();
    let conn = iobox::store::open_ro(db).unwrap();
    // No --config: the embedded default, k = 5.
    let report = report_json(db, None, &[]);
    assert_eq!(report["k"], 5);
    let k = 5;
    let (mut shown, mut suppressed) = (0, 0);
    let mut check = |row: &Value, groups: &[i64], figures: &[&str]| {
        let is = hidden(groups, k);
        assert_eq!(row["suppressed"], is, "{row} groups {groups:?}");
        for f in figures {
            assert_eq!(row[*f].is_null(), is, "{f} of {row}");
        }
        if is { suppressed += 1 } else { shown += 1 }
    };
    for row in report["dwell"].as_array().unwrap() {
        let zone = row["zone"].as_str().unwrap();
        let t = int(
            &conn,
            &format!("SELECT COUNT(DISTINCT track) FROM events WHERE kind = 'zone_exited' AND place = '{zone}'"),
        );
        check(row, &[t], &["visits", "tracks", "mean_ms", "median_ms", "p90_ms"]);
    }
    for row in report["interactions"].as_array().unwrap() {
        let zone = row["zone"].as_str().unwrap();
        let t = int(
            &conn,
            &format!("SELECT COUNT(DISTINCT track) FROM events WHERE kind = 'interaction' AND place = '{zone}'"),
        );
        check(row, &[t], &["interactions", "tracks", "mean_duration_ms"]);
    }
    for row in report["mood"].as_array().unwrap() {
        let zone = row["zone"].as_str().unwrap();
        let t = common::distinct_tokens(&conn, &format!("FROM mood WHERE zone = '{zone}'"));
        check(row, &[t], &["samples", "uncertain", "read_share", "tracks"]);
        // Shown or not, no share of expressions: too few of the sample's faces can be read.
        assert!(row["counts"].is_null() && row["shares"].is_null() && row["readable"] == false, "{row}");
    }
    for row in report["entries_exits"].as_array().unwrap() {
        let e = int(&conn, "SELECT COUNT(DISTINCT track) FROM events WHERE kind = 'entry'");
        let x = int(&conn, "SELECT COUNT(DISTINCT track) FROM events WHERE kind = 'exit'");
        check(row, &[e, x], &["entries", "exits"]);
    }
    let journeys = journeys_from_db(&conn);
    for row in report["top_journeys"].as_array().unwrap() {
        let zones: Vec<String> = serde_json::from_value(row["zones"].clone()).unwrap();
        let n = journeys.iter().filter(|j| **j == zones).count() as i64;
        check(row, &[n], &["tracks"]);
    }
    // The table zone, where all six people stood, is shown; some smaller group is suppressed.
    assert_eq!(find(&report["dwell"], "zone", "table")["tracks"], common::sample_people());
    assert!(shown > 0 && suppressed > 0, "shown {shown}, suppressed {suppressed}");

    // The table format says "suppressed" where JSON says null.
    let out = common::iobox(&["report", "--db", db.to_str().unwrap(), "--from", "2000-01-01"], db.parent().unwrap());
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("suppressed") && text.contains("Dwell per zone") && text.contains("k = 5"), "{text}");
    // A zone whose mood is shown (enough people) but whose faces could not be read says so.
    if report["mood"].as_array().unwrap().iter().any(|m| m["suppressed"] == false) {
        assert!(text.contains("not readable"), "{text}");
    }

    // With k above the six people of the clip, every row about people is suppressed, mood included (its
    // people are counted once however many buckets the run spans).
    let report = report_json(db, Some(&common::config_with_k(db.parent().unwrap(), 7)), &[]);
    for section in ["entries_exits", "dwell", "interactions", "top_journeys", "footfall_per_hour", "mood"] {
        for row in report[section].as_array().unwrap() {
            assert_eq!(row["suppressed"], true, "{section}: {row}");
        }
    }
    for row in report["funnel"]["pairs"].as_array().unwrap() {
        assert_eq!(row["suppressed"], true, "{row}");
    }
}

/// A small RFC 4180 reader: fields, quotes, doubled quotes, newlines inside quotes.
/// A CSV file as iobox writes it: its `#` note line first (returned), then RFC 4180 rows.
fn export_csv(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (note, rest) = text.split_once('\n').unwrap();
    assert!(note.starts_with("# iobox "), "{}: {note}", path.display());
    (note.to_string(), parse_csv(rest))
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

const TABLES: [(&str, &str); 9] = [
    ("visits", "start_ms"),
    ("visit_members", "joined_ms"),
    ("events", "ts_ms"),
    ("occupancy", "ts_ms"),
    ("queue_samples", "ts_ms"),
    ("journeys", "start_ms"),
    ("mood", "bucket_start_ms"),
    ("heat", "bucket_start_ms"),
    ("frame_log", "ts_ms"),
];

#[test]
fn csv_and_parquet_exports_hold_every_row() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    let db = sample_db();
    let conn = iobox::store::open_ro(db).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "parquet"] {
        let out = dir.path().join(format);
        let run = common::iobox(
            &["export", "--format", format, "--db", db.to_str().unwrap(), "--out", out.to_str().unwrap()],
            dir.path(),
        );
        assert!(run.status.success(), "{}", common::text(&run));
        for (table, _) in TABLES {
            assert!(out.join(format!("{table}.{format}")).is_file(), "{table}.{format}");
        }
    }
    let count = |table: &str| int(&conn, &format!("SELECT COUNT(*) FROM {table}"));
    assert!(count("events") > 0 && count("journeys") > 0 && count("frame_log") > 1000);
    assert!(count("visits") > 0 && count("visit_members") >= count("visits"));

    // CSV: a header, then one line per row, in time order.
    for (table, time) in TABLES {
        let (note, rows) = export_csv(&dir.path().join("csv").join(format!("{table}.csv")));
        assert!(note.contains("per-event rows") && note.contains("NOT k-anonymous"), "{note}");
        assert_eq!(rows.len() as i64 - 1, count(table), "{table}");
        let t = rows[0].iter().position(|h| h == time).unwrap();
        let times: Vec<i64> = rows[1..].iter().map(|r| r[t].parse().unwrap()).collect();
        if table != "frame_log" {
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{table} in time order");
        }
    }
    let events = export_csv(&dir.path().join("csv/events.csv")).1;
    assert_eq!(events[0], ["id", "run_id", "camera", "kind", "ts_ms", "track", "place", "direction", "duration_ms"]);
    let (id, kind, ts, track, duration): (i64, String, i64, String, Option<i64>) = conn
        .query_row("SELECT id, kind, ts_ms, track, duration_ms FROM events ORDER BY ts_ms, id LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(events[1][0], id.to_string());
    assert_eq!(
        (events[1][2].as_str(), events[1][3].as_str(), events[1][5].as_str()),
        ("sample", kind.as_str(), track.as_str())
    );
    assert_eq!(events[1][4], ts.to_string());
    assert_eq!(events[1][8], duration.map(|d| d.to_string()).unwrap_or_default());
    let journeys = export_csv(&dir.path().join("csv/journeys.csv")).1;
    let zones: Vec<String> = serde_json::from_str(&journeys[1][6]).unwrap();
    assert!(!zones.is_empty(), "the quoted JSON list survives the CSV");

    // Parquet: the same row counts, and the same values, read back with the parquet crate.
    for (table, _) in TABLES {
        let file = std::fs::File::open(dir.path().join("parquet").join(format!("{table}.parquet"))).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), count(table), "{table}");
    }
    let reader =
        SerializedFileReader::new(std::fs::File::open(dir.path().join("parquet/events.parquet")).unwrap()).unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap();
    assert!(kv.iter().any(|e| e.key == "iobox.rows" && e.value.as_deref() == Some("per-event")), "{kv:?}");
    let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(rows[0].get_long(0).unwrap(), id);
    assert_eq!(rows[0].get_string(2).unwrap(), "sample");
    assert_eq!(rows[0].get_string(3).unwrap(), &kind);
    assert_eq!(rows[0].get_timestamp_millis(4).unwrap(), ts);
    assert_eq!(rows[0].get_string(5).unwrap(), &track);
    // duration_ms is NULL except for stays and interactions.
    let with_duration = rows.iter().filter(|r| r.get_long(8).is_ok()).count() as i64;
    assert_eq!(with_duration, int(&conn, "SELECT COUNT(duration_ms) FROM events"));
    let dwell_sum: i64 = rows.iter().filter_map(|r| r.get_long(8).ok()).sum();
    assert_eq!(dwell_sum, int(&conn, "SELECT SUM(duration_ms) FROM events"));
    let heat =
        SerializedFileReader::new(std::fs::File::open(dir.path().join("parquet/heat.parquet")).unwrap()).unwrap();
    let cells: Vec<_> = heat.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(cells[0].get_double(3).unwrap(), 0.5);
    let presence: i64 = cells.iter().map(|r| r.get_long(6).unwrap()).sum();
    assert_eq!(presence, int(&conn, "SELECT SUM(presence) FROM heat"));

    // A period: only the rows inside it.
    let first = int(&conn, "SELECT MIN(ts_ms) FROM events");
    let out = dir.path().join("period");
    let from = chrono::DateTime::from_timestamp_millis(first + 1).unwrap().to_rfc3339();
    let run = common::iobox(
        &["export", "--format", "csv", "--db", db.to_str().unwrap(), "--out", out.to_str().unwrap(), "--from", &from],
        dir.path(),
    );
    assert!(run.status.success(), "{}", common::text(&run));
    let rows = export_csv(&out.join("events.csv")).1;
    assert_eq!(rows.len() as i64 - 1, int(&conn, &format!("SELECT COUNT(*) FROM events WHERE ts_ms >= {}", first + 1)));
    assert!(common::text(&run).contains("NOT k-anonymous"), "the command says so too");

    // --k-anonymous: the report's sections, the same rows as the report's CSV, suppressed alike.
    for k in ["5", "7"] {
        let out = dir.path().join(format!("k{k}"));
        let config = common::config_with_k(dir.path(), k.parse().unwrap());
        let args = ["--db", db.to_str().unwrap(), "--config", config.to_str().unwrap(), "--from", "2000-01-01"];
        let run = common::iobox(
            &[&["export", "--k-anonymous", "--format", "csv", "--out", out.to_str().unwrap()][..], &args[..]].concat(),
            dir.path(),
        );
        assert!(run.status.success(), "{}", common::text(&run));
        let report = common::iobox(&[&["report", "--format", "csv"][..], &args[..]].concat(), dir.path());
        let report = String::from_utf8(report.stdout).unwrap();
        for section in ["entries_exits", "footfall_per_hour", "dwell", "top_journeys"] {
            let (note, rows) = export_csv(&out.join(format!("{section}.csv")));
            assert!(note.contains("k-anonymous export") && note.contains(&format!("k = {k}")), "{note}");
            let block = report.split(&format!("# {section}: ")).nth(1).unwrap().split_once('\n').unwrap().1;
            let block = format!("{}\n", block.split("\n\n").next().unwrap().trim_end());
            assert_eq!(parse_csv(&block), rows, "{section} at k = {k}");
            assert_eq!(rows[0].last().map(String::as_str), Some("suppressed"));
        }
    }
    let run = common::iobox(
        &["export", "--k-anonymous", "--format", "parquet", "--db", db.to_str().unwrap(), "--out", "x"],
        dir.path(),
    );
    assert!(!run.status.success() && common::text(&run).contains("--format csv"), "{}", common::text(&run));
}

#[test]
fn report_errors_are_clear_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    let out = common::iobox(&["report", "--db", missing.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("no such database file"), "{}", common::text(&out));

    let newer = dir.path().join("newer.sqlite");
    iobox::store::open_rw(&newer).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let out = common::iobox(&["report", "--db", newer.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("newer than this iobox"), "{}", common::text(&out));

    let db = sample_db();
    let out = common::iobox(&["report", "--db", db.to_str().unwrap(), "--from", "last tuesday"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("is not a time"), "{}", common::text(&out));

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = common::iobox(
        &["export", "--format", "csv", "--db", db.to_str().unwrap(), "--out", file.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("a-file"), "{}", common::text(&out));
}

/// A store's week written through the real writer: on Tuesday 2030-01-01 (UTC) 10 shoppers enter in the
/// 09:00 hour, 12 at 10:00 and 2 at 11:00; on Monday 8, Wednesday 9, Thursday 7 and Friday 2 (all at noon).
fn differencing_db(dir: &Path) -> std::path::PathBuf {
    use iobox::behaviour::{Event, Name, TrackId};
    use iobox::store::{Record, Writer, WriterOptions};
    let path = dir.join("week.sqlite");
    let _ = std::fs::remove_file(&path);
    let options = WriterOptions { retention: None, ..WriterOptions::default() };
    let writer = Writer::start_with(&path, &["door".to_string()], options).unwrap();
    let tx = writer.sender();
    const H: i64 = 3_600_000;
    let tuesday = 1_893_456_000_000i64;
    let mut id = 0u64;
    let mut enter = |at: i64, n: u64| {
        for i in 0..n {
            id += 1;
            let event =
                Event::Entry { zone: Name::from("door"), track: TrackId(0xA000 + id), at_ms: at + i as i64 * 60_000 };
            tx.send(Record::Event { camera: 0, event });
        }
    };
    enter(tuesday + 9 * H, 10);
    enter(tuesday + 10 * H, 12);
    enter(tuesday + 11 * H, 2);
    for (day, n) in [(-1i64, 8u64), (1, 9), (2, 7), (3, 2)] {
        enter(tuesday + day * 24 * H + 12 * H, n);
    }
    drop(tx);
    writer.finish().unwrap();
    path
}

/// The store's shown entries over `[from, to)` (UTC) and how many buckets were left out.
fn store_entries(db: &Path, from: &str, to: &str) -> (i64, i64) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["report", "--db", db.to_str().unwrap(), "--from", from, "--to", to, "--format", "json"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = v["entries_exits"].as_array().unwrap().iter().find(|m| m["camera"].is_null()).unwrap().clone();
    (store["entries"].as_i64().unwrap_or(0), store["buckets_suppressed"].as_i64().unwrap())
}

#[test]
fn differencing_a_day_by_its_hours_or_days_by_days_reveals_no_one() {
    const K: i64 = 5;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differencing");
    std::fs::create_dir_all(&dir).unwrap();
    let db = differencing_db(&dir);
    // The attack works on the raw rows: the day (24 entries) minus its hours of 5 or more (10 and 12) is the
    // 2 who came at 11:00.
    let conn = iobox::store::open_ro(&db).unwrap();
    let per_hour: Vec<i64> = (0..24)
        .map(|h| {
            let from = 1_893_456_000_000i64 + h * 3_600_000;
            conn.query_row(
                "SELECT COUNT(*) FROM events WHERE kind = 'entry' AND ts_ms >= ?1 AND ts_ms < ?2",
                [from, from + 3_600_000],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect();
    let raw_day: i64 = per_hour.iter().sum();
    assert_eq!(raw_day - per_hour.iter().filter(|n| **n >= K).sum::<i64>(), 2);

    // Through iobox: the day minus each of its hours.
    let (day, day_left_out) = store_entries(&db, "2030-01-01", "2030-01-02");
    let mut hours = 0;
    for h in 0..24 {
        let to = if h == 23 { "2030-01-02".to_string() } else { format!("2030-01-01T{:02}:00", h + 1) };
        let (n, _) = store_entries(&db, &format!("2030-01-01T{h:02}:00"), &to);
        assert!(n == 0 || n >= K, "hour {h} shows {n}");
        hours += n;
    }
    let gap = day - hours;
    assert!(gap == 0 || gap >= K, "the day ({day}) minus its hours ({hours}) isolates {gap}");
    assert_eq!(day_left_out, 2, "the 11:00 hour and the next-smallest (09:00) are left out");
    // A minute-cut period is snapped to whole hours and says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["report", "--db", db.to_str().unwrap(), "--from", "2030-01-01T09:17", "--to", "2030-01-01T11:40"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = common::text(&out);
    assert!(text.contains("whole hours; asked for 2030-01-01 09:17:00 to 2030-01-01 11:40:00"), "{text}");
    assert!(text.contains("2030-01-01 09:00:00 to 2030-01-01 12:00:00"), "{text}");

    // Monday to Friday minus Monday to Thursday, and every day of the week at hour level.
    let (mon_fri, _) = store_entries(&db, "2029-12-31", "2030-01-05");
    let (mon_thu, _) = store_entries(&db, "2029-12-31", "2030-01-04");
    let (tue_fri, _) = store_entries(&db, "2030-01-01", "2030-01-05");
    for (a, b, what) in [(mon_fri, mon_thu, "Mon-Fri minus Mon-Thu"), (mon_fri, tue_fri, "Mon-Fri minus Tue-Fri")] {
        let gap = a - b;
        assert!(gap == 0 || gap >= K, "{what}: {a} - {b} = {gap}");
    }
    let days = ["2029-12-31", "2030-01-01", "2030-01-02", "2030-01-03", "2030-01-04", "2030-01-05"];
    let each: Vec<i64> = days.windows(2).map(|w| store_entries(&db, w[0], w[1]).0).collect();
    assert!(each.iter().all(|&n| n == 0 || n >= K), "{each:?}");
    let gap = mon_fri - each.iter().sum::<i64>();
    assert!(gap == 0 || gap >= K, "Mon-Fri ({mon_fri}) minus its days ({each:?}) isolates {gap}");
    // Friday's 2 are never shown, and neither is Thursday, which would give them away from the week.
    assert_eq!((each[3], each[4]), (0, 0), "{each:?}");
}
