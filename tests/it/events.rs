//! Shopper-behaviour events end to end on real footage, the privacy of what is stored, and that nothing
//! committed is ever lost (SIGKILL, a full database, a graceful stop).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rusqlite::Connection;

use crate::common;

// The tests read the database with plain SQL (rusqlite directly): the library's `store` is the only
// module of iobox that knows rusqlite, but the tests look at the file the way an auditor would.

fn open_ro(db: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
}

fn query_i64(conn: &Connection, sql: &str, params: &[&str]) -> rusqlite::Result<i64> {
    conn.query_row(sql, rusqlite::params_from_iter(params), |r| r.get(0))
}

fn query_rows(conn: &Connection, sql: &str, params: &[&str]) -> rusqlite::Result<Vec<Vec<i64>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| (0..n).map(|i| r.get(i)).collect())?;
    rows.collect()
}

fn query_rows_text(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

fn integrity_check(db: &Path) -> String {
    open_ro(db).unwrap().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

fn gt_visits() -> Vec<(f64, f64)> {
    let gt: toml::Value = toml::from_str(&std::fs::read_to_string(common::data("ground_truth.toml")).unwrap()).unwrap();
    gt["one-by-one-person-detection"]["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["enter_s"].as_integer().unwrap() as f64, v["leave_s"].as_integer().unwrap() as f64))
        .collect()
}

fn run_default(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--db", "events.sqlite", "--json"];
    args.extend_from_slice(extra);
    let o = common::iobox(&args, dir);
    assert!(o.status.success(), "{}", common::text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn entries_exits_and_dwell_on_the_sample_clip_match_what_a_person_counted() {
    let dir = tempfile::tempdir().unwrap();
    run_default(dir.path(), &[]);
    let db = dir.path().join("events.sqlite");
    let conn = open_ro(&db).unwrap();
    let visits = gt_visits();
    let count = |kind: &str| query_i64(&conn, "SELECT COUNT(*) FROM events WHERE kind = ?1", &[kind]).unwrap();
    let (entries, exits) = (count("entry"), count("exit"));
    println!("entries {entries}, exits {exits}; {} visits by eye", visits.len());
    assert_eq!(entries as usize, visits.len(), "one entry per person walking in");
    assert_eq!(exits as usize, visits.len(), "one exit per person walking out");

    // Dwell on the floor the camera sees, per visit, in order, against the times written down by eye
    // (whole seconds, from 1 frame/s contact sheets: allow 2.5 s at each end of a visit).
    let start: i64 = query_i64(&conn, "SELECT MIN(ts_ms) FROM frame_log", &[]).unwrap();
    let rows = query_rows(
        &conn,
        "SELECT ts_ms - duration_ms, ts_ms, duration_ms FROM events WHERE kind = 'zone_exited' AND place = 'floor' ORDER BY ts_ms",
        &[],
    )
    .unwrap();
    assert_eq!(rows.len(), visits.len(), "{rows:?}");
    for (row, (enter_s, leave_s)) in rows.iter().zip(&visits) {
        let entered = (row[0] - start) as f64 / 1000.0;
        let left = (row[1] - start) as f64 / 1000.0;
        let dwell = row[2] as f64 / 1000.0;
        println!("visit {enter_s}-{leave_s} s by eye; on the floor {entered:.1}-{left:.1} s, dwell {dwell:.1} s");
        assert!((entered - enter_s).abs() <= 2.5, "entered at {entered:.1} s, by eye {enter_s} s");
        assert!((left - leave_s).abs() <= 2.5, "left at {left:.1} s, by eye {leave_s} s");
        assert!((dwell - (leave_s - enter_s)).abs() <= 5.0);
    }
    // Everyone went to the table.
    assert_eq!(
        query_i64(
            &conn,
            "SELECT COUNT(DISTINCT track) FROM events WHERE kind = 'zone_entered' AND place = 'table'",
            &[]
        )
        .unwrap(),
        6
    );
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM journeys", &[]).unwrap(), 6);
}

#[test]
fn the_database_holds_no_pixels_crops_or_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    run_default(dir.path(), &["--record", "rec/{camera}.mp4"]);
    let db = dir.path().join("events.sqlite");
    let conn = open_ro(&db).unwrap();
    // Every column of every table, with the largest value stored in it.
    let tables = query_rows_text(&conn, "SELECT name FROM sqlite_master WHERE type = 'table'");
    assert!(tables.len() >= 9, "{tables:?}");
    let mut checked = 0;
    for table in &tables {
        let columns = query_rows_text(&conn, &format!("SELECT name FROM pragma_table_info('{table}')"));
        for column in &columns {
            if column == "track_tokens" {
                // The one binary column: two bytes per distinct track of the bucket and nothing else.
                let bad = query_i64(
                    &conn,
                    &format!(
                        "SELECT COUNT(*) FROM \"{table}\" WHERE typeof(track_tokens) != 'blob'
                         OR LENGTH(track_tokens) % 2 != 0 OR LENGTH(track_tokens) > 2 * tracks
                         OR LENGTH(track_tokens) = 0"
                    ),
                    &[],
                )
                .unwrap();
                assert_eq!(bad, 0, "{table}.track_tokens holds more than a token per track");
                checked += 1;
                continue;
            }
            // No binary data anywhere else.
            let blobs =
                query_i64(&conn, &format!("SELECT COUNT(*) FROM \"{table}\" WHERE typeof(\"{column}\") = 'blob'"), &[])
                    .unwrap();
            assert_eq!(blobs, 0, "{table}.{column} holds binary data");
            // No long values: nothing the size of a crop or an embedding (a 128-float vector as text is
            // over 1 KB); the longest legitimate values are journeys' zone lists.
            let longest = query_i64(
                &conn,
                &format!("SELECT COALESCE(MAX(LENGTH(CAST(\"{column}\" AS TEXT))), 0) FROM \"{table}\""),
                &[],
            )
            .unwrap();
            assert!(longest < 200, "{table}.{column} holds a value of {longest} characters");
            checked += 1;
        }
    }
    // Track ids are 16 hex digits and nothing else.
    let ids = query_rows_text(&conn, "SELECT DISTINCT track FROM events UNION SELECT DISTINCT track FROM journeys");
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|t| t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit())), "{ids:?}");
    // The whole file is small: no frame could hide in it (a single 768x432 RGB frame is ~1 MB).
    let size = std::fs::metadata(&db).unwrap().len();
    println!("{checked} columns in {} tables checked; database {size} bytes", tables.len());
    assert!(size < 1_000_000, "{size} bytes");
}

#[test]
fn switched_off_event_kinds_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[behaviour.events]\nmood = false\nheatmap = false\njourney = false\n[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\ncalibration = \"{}\"\n",
        common::sample_clip().display(),
        common::root().join("calibration/sample.toml").display()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let o = common::iobox(&["run", "--config", "c.toml", "--db", "events.sqlite"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let db = dir.path().join("events.sqlite");
    let conn = open_ro(&db).unwrap();
    for table in ["mood", "heat", "journeys"] {
        assert_eq!(query_i64(&conn, &format!("SELECT COUNT(*) FROM {table}"), &[]).unwrap(), 0, "{table}");
    }
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'entry'", &[]).unwrap(), 6);
}

#[test]
fn retention_purges_old_rows_at_start() {
    use iobox::behaviour::{Event, Name};
    use iobox::store::{Record, Writer, WriterOptions};
    use iobox::track::TrackId;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let now = iobox::store::writer::now_ms();
    let day = 86_400_000i64;
    // 40 days of one entry a day, written with retention off.
    let w = Writer::start_with(&db, &["cam".into()], WriterOptions { retention: None, ..WriterOptions::default() })
        .unwrap();
    let tx = w.sender();
    for d in 0..40 {
        let event =
            Event::Entry { zone: Name::from("door"), track: TrackId(1000 + d as u64), at_ms: now - d * day - 1000 };
        tx.send(Record::Event { camera: 0, event });
    }
    drop(tx);
    w.finish().unwrap();
    let conn = open_ro(&db).unwrap();
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM events", &[]).unwrap(), 40);
    drop(conn);
    // Starting again with the default 30 days deletes the ten older ones.
    Writer::start(&db, &["cam".into()]).unwrap().finish().unwrap();
    let conn = open_ro(&db).unwrap();
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM events", &[]).unwrap(), 30);
    let oldest = query_i64(&conn, "SELECT MIN(ts_ms) FROM events", &[]).unwrap();
    assert!(oldest >= now - 30 * day, "oldest row {} days old", (now - oldest) / day);
}

#[test]
fn an_older_database_is_upgraded_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.sqlite");
    // A version-1 database as the first iobox wrote it (frame log only), with a row in it.
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(iobox::store::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (started_at_ms, iobox_version) VALUES (1, '0.0.9');
             INSERT INTO cameras (name) VALUES ('cam');
             INSERT INTO frame_log VALUES (1, 1, 5, 0, 2, 0);",
        )
        .unwrap();
    }
    iobox::store::Writer::start_with(
        &db,
        &["cam".into()],
        iobox::store::WriterOptions { retention: None, ..Default::default() },
    )
    .unwrap()
    .finish()
    .unwrap();
    let conn = open_ro(&db).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, iobox::store::schema::LATEST);
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM frame_log", &[]).unwrap(), 1, "old rows kept");
    assert_eq!(query_i64(&conn, "SELECT COUNT(*) FROM events", &[]).unwrap(), 0, "events table exists now");
    drop(conn);
    // A database from a newer iobox.
    let newer = dir.path().join("new.sqlite");
    Connection::open(&newer).unwrap().pragma_update(None, "user_version", iobox::store::schema::LATEST + 5).unwrap();
    let o = common::iobox(&["run", "--db", newer.to_str().unwrap(), "--for", "1"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(t.contains("new.sqlite") && t.contains("newer than this iobox"), "{t}");
}

/// The frames and events committed to the database: (table, rowid-like key) pairs as strings.
fn committed(db: &Path) -> std::collections::BTreeSet<String> {
    let conn = open_ro(db).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for row in query_rows_text(&conn, "SELECT 'f' || run_id || ':' || camera_id || ':' || seq FROM frame_log") {
        out.insert(row);
    }
    for row in query_rows_text(&conn, "SELECT 'e' || id || ':' || kind || ':' || ts_ms FROM events") {
        out.insert(row);
    }
    out
}

#[test]
fn sigkill_while_writing_never_loses_committed_events_or_corrupts_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let mut before = std::collections::BTreeSet::new();
    let mut rng = 0x9e3779b97f4a7c15u64;
    for round in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iobox"))
            .args(["run", "--db", db.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(2500 + rng % 3000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let report = integrity_check(&db);
        assert_eq!(report, "ok", "round {round}: {report}");
        let now = committed(&db);
        let lost: Vec<_> = before.difference(&now).take(5).collect();
        assert!(lost.is_empty(), "round {round}: committed rows lost: {lost:?}");
        assert!(now.len() > before.len(), "round {round}: the run wrote something ({} rows)", now.len());
        println!("round {round}: {} rows committed, none lost", now.len());
        before = now;
    }
}

#[test]
fn a_full_database_is_reported_and_the_video_path_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[store]\npath = \"full.sqlite\"\nmax_size_mb = 1\nretention_days = 0\n[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\ncalibration = \"{}\"\n",
        common::sample_clip().display(),
        common::root().join("calibration/sample.toml").display()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    // Fill the 1 MiB database to the brim first: the schema through iobox, then rows until SQLite says
    // the database is full, then make a little room so the run starts normally and fills it while it runs.
    let db = dir.path().join("full.sqlite");
    iobox::store::Writer::start(&db, &["sample".into()]).unwrap().finish().unwrap();
    let conn = Connection::open(&db).unwrap();
    let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
    conn.pragma_update(None, "max_page_count", 1024 * 1024 / page).unwrap();
    let mut i = 0i64;
    loop {
        let r = conn.execute("INSERT INTO occupancy VALUES (1, 1, 'a-long-zone-name-to-fill-pages', ?1, 1)", [i]);
        match r {
            Ok(_) => i += 1,
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => break,
            Err(e) => panic!("{e}"),
        }
    }
    conn.execute("DELETE FROM occupancy WHERE rowid IN (SELECT rowid FROM occupancy LIMIT 200)", []).unwrap();
    drop(conn);
    println!("{i} rows filled the database");
    let o = common::iobox(&["run", "--config", "c.toml", "--record", "rec/{camera}.mp4", "--json"], dir.path());
    let t = common::text(&o);
    assert!(t.contains("full.sqlite") && t.contains("is full"), "the log says the database is full: {t}");
    // What could not be written by the end is counted, said, and in the exit code (3: records lost).
    assert!(t.contains("records could not be written to") && t.contains("are lost"), "{t}");
    assert_eq!(o.status.code(), Some(3), "{t}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{t}"));
    assert_eq!(report["cameras"][0]["frames_processed"], 1394, "the video path kept running: {report}");
    let (frames, ..) = iobox::capture::encode::count_frames(&dir.path().join("rec/sample.mp4")).unwrap();
    assert_eq!(frames, 1394, "the anonymized recording is complete");
    assert_eq!(integrity_check(&dir.path().join("full.sqlite")), "ok");
}

#[test]
fn a_graceful_stop_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    let child = Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["run", "--db", db.to_str().unwrap(), "--json"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    // SIGTERM, as systemd stops a service.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let processed = report["cameras"][0]["frames_processed"].as_i64().unwrap();
    assert!(processed > 10 && processed < 1394, "stopped part-way: {processed}");
    let conn = open_ro(&db).unwrap();
    assert_eq!(
        query_i64(&conn, "SELECT COUNT(*) FROM frame_log", &[]).unwrap(),
        processed,
        "every processed frame was logged"
    );
    assert_eq!(report["events_dropped"], 0);
    let ended = query_i64(&conn, "SELECT COUNT(*) FROM runs WHERE ended_at_ms IS NOT NULL", &[]).unwrap();
    assert_eq!(ended, 1, "the run was closed");
}

/// One real clip as two cameras that overlap: the sample cut by `videocrop` into its left 480 px and its
/// right 480 px (192 px seen by both), each crop with its own calibration onto the one floor plan
/// (tests/data/crops: the sample's calibration points that fall inside each crop, moved by the crop).
/// Every visitor walks from one crop into the other; each camera counts every entry, but the store counts
/// each of the six visitors once, as one visit that both cameras saw.
#[test]
fn two_overlapping_cameras_count_each_visitor_once_as_a_store_visit() {
    let dir = tempfile::tempdir().unwrap();
    let crops = common::data("crops");
    let mut config = String::from("[runtime]\nworkers = 1\n");
    for name in ["left", "right"] {
        config.push_str(&format!(
            "[[camera]]\nname = \"{name}\"\nkind = \"file\"\nuri = \"{}\"\npipeline = \"{}\"\ncalibration = \"{}\"\n",
            common::sample_clip().display(),
            crops.join(format!("{name}.gst")).display(),
            crops.join(format!("{name}.toml")).display()
        ));
    }
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let o = common::iobox(&["run", "--config", "c.toml", "--db", "v.sqlite", "--json"], dir.path());
    let t = common::text(&o);
    assert!(o.status.success(), "{t}");
    let run: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{t}"));
    let conn = Connection::open(dir.path().join("v.sqlite")).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let people = common::sample_people();
    let entries = count("SELECT COUNT(*) FROM events WHERE kind = 'entry'");
    let visits = count("SELECT COUNT(*) FROM visits");
    let both = count("SELECT COUNT(*) FROM visits WHERE camera_tracks >= 2");
    println!("two crops: {entries} camera entries, {visits} store visits, {both} seen by both cameras");
    assert_eq!(run["store_visits"], visits);
    assert_eq!(visits, people, "one store visit per visitor");
    assert_eq!(both, people, "each visitor was seen by both cameras and joined");
    assert!(entries > people, "the cameras alone count visitors twice: {entries}");
    // Journeys follow the whole visit: the camera tracks that joined each visit are recorded, and the
    // journeys of both cameras' tracks of one visitor are one store journey.
    let members = count("SELECT COUNT(*) FROM visit_members");
    assert_eq!(members, count("SELECT SUM(camera_tracks) FROM visits"));
    let camera_journeys = count("SELECT COUNT(*) FROM journeys WHERE zones != '[]'");
    let ro = iobox::store::open_ro(&dir.path().join("v.sqlite")).unwrap();
    let store_journeys: u64 = iobox::store::query::top_journeys(&ro, iobox::store::query::Period::ALL, 1, 1000)
        .unwrap()
        .iter()
        .map(|j| j.tracks.unwrap())
        .sum();
    // The store's entries and exits count each visit once although both cameras see every visitor enter.
    let m = iobox::store::query::movements(&ro, iobox::store::query::Period::ALL, 1).unwrap();
    let store = m.entries_exits.iter().find(|m| m.camera.is_none()).unwrap();
    let cameras: u64 = m.entries_exits.iter().filter(|m| m.camera.is_some()).map(|m| m.entries.unwrap()).sum();
    println!(
        "{camera_journeys} camera journeys, {store_journeys} store journeys; entries {cameras} by camera, {:?} by the store",
        store.entries
    );
    assert_eq!(cameras, entries as u64);
    assert_eq!(store.entries, Some(people as u64), "each visitor enters the store once");
    // The floor's heatmap does not add up the two views where they overlap: per cell and bucket it is the
    // camera that saw most of it.
    let heat = |camera: Option<&str>| -> u64 {
        let cells = iobox::store::query::heat_cells(&ro, iobox::store::query::Period::ALL, 1, camera).unwrap();
        cells.iter().map(|c| c.presence.unwrap()).sum()
    };
    let (floor, left, right) = (heat(None), heat(Some("left")), heat(Some("right")));
    println!("heat presence: floor {floor}, left {left}, right {right}");
    assert!(floor >= left.max(right) && floor < left + right, "floor {floor}, left {left}, right {right}");
    assert!(camera_journeys > people, "{camera_journeys}");
    assert_eq!(store_journeys, people as u64, "one journey per visitor");
}
