//! Fills a SQLite file with 30 days of simulated shopper events for 8 cameras through the real store
//! writer, measures the records/s the writer sustains, then times `iobox report` over the whole period.
//!
//!   cargo bench --bench report                       generate into a temp dir, time the report, print
//!   cargo bench --bench report -- --db X --generate-only --json    (what scripts/bench.py runs)
//!   ... --compare-groups     also time the heat and mood queries counting people by their tokens against
//!                            the same queries summing per-bucket counts (before tokens), interleaved
//!
//! The store: open 08:00-20:00 UTC every day; cameras 0 and 1 watch entrances (entries, exits, a counting
//! line), the others aisles; every camera has 4 zones (one shelf, and a queue on the last two cameras).
//! Per camera ~60 tracks an hour (x0.5-1.5 over the day), each visiting 1-4 zones with dwell 5-120 s,
//! touching shelves half the time, and ending with its journey. Occupancy (and queue) samples every 5 s
//! per zone, mood per zone and heat (~60 cells) per camera every 15 minutes. `frame_log` is not simulated
//! (the report does not read it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use iobox::behaviour::{Direction, Event, Name, TrackTokens};
use iobox::store::{Record, RecordSender, Writer, WriterOptions};
use iobox::track::TrackId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const OPEN_H: i64 = 8;
const CLOSE_H: i64 = 20;
const SAMPLE_MS: i64 = 5_000;
const BUCKET_MS: i64 = 900_000;

struct Args {
    db: Option<PathBuf>,
    days: i64,
    cameras: usize,
    reps: usize,
    generate_only: bool,
    compare_groups: bool,
    json: bool,
}

fn args() -> Args {
    let mut a =
        Args { db: None, days: 30, cameras: 8, reps: 5, generate_only: false, compare_groups: false, json: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--db" => a.db = it.next().map(PathBuf::from),
            "--days" => a.days = it.next().and_then(|v| v.parse().ok()).expect("--days N"),
            "--cameras" => a.cameras = it.next().and_then(|v| v.parse().ok()).expect("--cameras N"),
            "--reps" => a.reps = it.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--generate-only" => a.generate_only = true,
            "--compare-groups" => a.compare_groups = true,
            "--json" => a.json = true,
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

struct Camera {
    zones: Vec<Name>,
    entrance: bool,
    shelf: usize,
    queue: Option<usize>,
}

fn cameras(n: usize) -> Vec<Camera> {
    (0..n)
        .map(|i| {
            let entrance = i < 2;
            let queue = (i + 2 >= n && n > 2).then_some(3);
            let names = [
                if entrance { format!("entrance-{i}") } else { format!("aisle-{i}") },
                format!("promo-{i}"),
                format!("shelf-{i}"),
                if queue.is_some() { format!("till-{i}") } else { format!("corner-{i}") },
            ];
            Camera { zones: names.iter().map(|s| Name::from(s.as_str())).collect(), entrance, shelf: 2, queue }
        })
        .collect()
}

/// Busier at lunch and after work.
fn traffic(hour: i64) -> f64 {
    match hour {
        8..=10 => 0.5,
        11..=13 => 1.4,
        14..=16 => 0.9,
        _ => 1.5,
    }
}

/// One camera's day: returns the records sent.
fn simulate_day(rng: &mut StdRng, tx: &RecordSender, cam_index: usize, cam: &Camera, day_start: i64) -> u64 {
    let mut sent = 0u64;
    let mut send = |event: Event| {
        // The writer's channel drops when full: wait for room instead (the writer is what is measured).
        while tx.queued() > 8_192 {
            std::thread::sleep(Duration::from_micros(200));
        }
        tx.send(Record::Event { camera: cam_index, event });
        sent += 1;
    };
    let open = day_start + OPEN_H * HOUR;
    let close = day_start + CLOSE_H * HOUR;
    for h in OPEN_H..CLOSE_H {
        let n = (60.0 * traffic(h) * rng.random_range(0.8..1.2)) as usize;
        for _ in 0..n {
            let track = TrackId(rng.random());
            let start = day_start + h * HOUR + rng.random_range(0..HOUR);
            let mut t = start;
            if cam.entrance {
                send(Event::Entry { zone: cam.zones[0].clone(), track, at_ms: t });
                send(Event::LineCrossed { line: Name::from("door"), track, direction: Direction::In, at_ms: t + 800 });
            }
            let visits = rng.random_range(1..=4usize);
            let mut journey = Vec::with_capacity(visits);
            for v in 0..visits {
                let z = if v == 0 && cam.entrance { 0 } else { rng.random_range(0..cam.zones.len()) };
                if journey.last() == Some(&cam.zones[z]) {
                    continue;
                }
                let dwell = if Some(z) == cam.queue {
                    rng.random_range(30_000..300_000)
                } else {
                    rng.random_range(5_000..120_000)
                };
                send(Event::ZoneEntered { zone: cam.zones[z].clone(), track, at_ms: t });
                if z == cam.shelf && rng.random_bool(0.5) {
                    send(Event::ShelfInteraction {
                        zone: cam.zones[z].clone(),
                        track,
                        start_ms: t + dwell / 3,
                        duration_ms: rng.random_range(300..8_000),
                    });
                }
                send(Event::ZoneExited { zone: cam.zones[z].clone(), track, at_ms: t + dwell, dwell_ms: dwell });
                journey.push(cam.zones[z].clone());
                t += dwell + rng.random_range(1_000..20_000);
            }
            if cam.entrance {
                send(Event::Exit { zone: cam.zones[0].clone(), track, at_ms: t });
            }
            send(Event::Journey { track, zones: journey, start_ms: start, end_ms: t });
        }
    }
    let mut at = open;
    while at < close {
        for (z, zone) in cam.zones.iter().enumerate() {
            let count = rng.random_range(0..5u32);
            send(Event::Occupancy { zone: zone.clone(), at_ms: at, count });
            if Some(z) == cam.queue {
                let mean = i64::from(count) * rng.random_range(10_000..40_000);
                send(Event::QueueSample {
                    zone: zone.clone(),
                    at_ms: at,
                    length: count,
                    mean_wait_ms: mean,
                    max_wait_ms: 2 * mean,
                });
            }
        }
        at += SAMPLE_MS;
    }
    let mut bucket = open;
    while bucket < close {
        for zone in &cam.zones {
            let mut counts = [0u32; 7];
            for c in counts.iter_mut() {
                *c = rng.random_range(0..40);
            }
            let samples = counts.iter().sum();
            let tokens = tokens(rng, 0..25);
            send(Event::MoodBucket {
                zone: zone.clone(),
                bucket_start_ms: bucket,
                counts,
                samples,
                uncertain: rng.random_range(0..40),
                tracks: tokens.len() as u32,
                tokens,
            });
        }
        for cell in 0..60 {
            let tokens = tokens(rng, 1..20);
            let tracks = tokens.len() as u32;
            send(Event::HeatCell {
                bucket_start_ms: bucket,
                cx: cell % 10,
                cy: cell / 10,
                presence: tracks * rng.random_range(5..50),
                dwell_ms: i64::from(tracks) * rng.random_range(500..20_000),
                tracks,
                tokens,
            });
        }
        bucket += BUCKET_MS;
    }
    sent
}

/// Tokens of a number of tracks drawn from `count` (random tokens: each bucket's people are new ones).
fn tokens(rng: &mut StdRng, count: std::ops::Range<usize>) -> TrackTokens {
    let n = rng.random_range(count);
    TrackTokens::new((0..n).map(|_| rng.random()).collect())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Fill {
    records: u64,
    seconds: f64,
    per_day: Vec<f64>,
}

fn fill(db: &Path, days: i64, n_cameras: usize) -> Fill {
    let cams = cameras(n_cameras);
    let names: Vec<String> = (0..n_cameras).map(|i| format!("cam-{i}")).collect();
    let options = WriterOptions { retention: None, ..WriterOptions::default() };
    let writer = Writer::start_with(db, &names, options).expect("writer starts");
    let tx = writer.sender();
    let mut rng = StdRng::seed_from_u64(7);
    let today = iobox::store::writer::now_ms().div_euclid(DAY) * DAY;
    let started = Instant::now();
    let (mut records, mut per_day) = (0u64, Vec::new());
    for d in 0..days {
        let day_start = today - (days - d) * DAY;
        let t = Instant::now();
        let mut sent = 0;
        for (i, cam) in cams.iter().enumerate() {
            sent += simulate_day(&mut rng, &tx, i, cam, day_start);
        }
        while tx.queued() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        per_day.push(sent as f64 / t.elapsed().as_secs_f64());
        records += sent;
    }
    drop(tx);
    let stats = writer.finish().expect("writer finishes");
    assert_eq!(stats.dropped, 0, "the generator waits for room; nothing may be dropped");
    assert_eq!(stats.written, records);
    Fill { records, seconds: started.elapsed().as_secs_f64(), per_day }
}

/// The heat and mood queries over the whole database as the report and dashboard run them (groups: the
/// union of the buckets' tokens) and as they ran before tokens (groups: the sum of per-bucket counts),
/// interleaved, `reps` times each: median ms per query.
fn compare_groups(db: &Path, reps: usize) -> serde_json::Value {
    use iobox::store::query::{Period, heat_cells, mood_per_zone};
    let conn = iobox::store::open_ro(db).expect("database opens");
    let sum_sql = |sql: &str| {
        let mut stmt = conn.prepare_cached(sql).expect("query prepares");
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).expect("query runs");
        let mut n = 0;
        for row in rows {
            row.expect("row");
            n += 1;
        }
        n
    };
    let heat_sum = "SELECT SUM(tracks), cell_m, cx, cy, SUM(presence), SUM(dwell_ms) FROM heat
                    GROUP BY cell_m, cx, cy ORDER BY cell_m, cy, cx";
    let mood_sum = "SELECT SUM(tracks), zone, SUM(angry), SUM(disgust), SUM(fear), SUM(happy), SUM(sad),
                           SUM(surprise), SUM(neutral), SUM(samples) FROM mood GROUP BY zone ORDER BY zone";
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut time = |i: usize, f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        assert!(f() > 0, "the query returns rows");
        t[i].push(start.elapsed().as_secs_f64() * 1000.0);
    };
    for _ in 0..reps.max(1) {
        time(0, &mut || heat_cells(&conn, Period::ALL, 5, None).expect("heat").len());
        time(1, &mut || sum_sql(heat_sum));
        time(2, &mut || mood_per_zone(&conn, Period::ALL, 5).expect("mood").len());
        time(3, &mut || sum_sql(mood_sum));
    }
    let [a, b, c, d] = &mut t;
    serde_json::json!({
        "reps": reps.max(1),
        "heat_tokens_ms": median(a), "heat_sum_ms": median(b),
        "mood_tokens_ms": median(c), "mood_sum_ms": median(d),
    })
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = a.db.clone().unwrap_or_else(|| tmp.path().join("report-bench.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let f = fill(&db, a.days, a.cameras);
    let size_mb = std::fs::metadata(&db).map(|m| m.len() as f64 / 1_048_576.0).unwrap_or(0.0);
    let per_day_median = median(&mut f.per_day.clone());
    let mut report_s = serde_json::Map::new();
    if !a.generate_only {
        for format in ["table", "csv", "json"] {
            let mut times: Vec<f64> = (0..a.reps)
                .map(|_| {
                    let t = Instant::now();
                    let out = Command::new(env!("CARGO_BIN_EXE_iobox"))
                        .args(["report", "--db", db.to_str().unwrap(), "--from", &format!("-{}d", a.days + 1)])
                        .args(["--format", format])
                        .output()
                        .expect("iobox runs");
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                    t.elapsed().as_secs_f64()
                })
                .collect();
            report_s.insert(format.into(), median(&mut times).into());
        }
    }
    let groups = a.compare_groups.then(|| compare_groups(&db, 3 * a.reps));
    let summary = serde_json::json!({
        "days": a.days,
        "cameras": a.cameras,
        "records": f.records,
        "fill_seconds": f.seconds,
        "records_per_s_overall": f.records as f64 / f.seconds,
        "records_per_s_median_day": per_day_median,
        "records_per_s_per_day": f.per_day,
        "db_mb": size_mb,
        "report_seconds_median": report_s,
        "groups": groups,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "{} records ({} days x {} cameras) in {:.1} s: {:.0} records/s overall, {:.0} records/s median per day; {:.0} MiB",
            f.records,
            a.days,
            a.cameras,
            f.seconds,
            f.records as f64 / f.seconds,
            per_day_median,
            size_mb
        );
        if let Some(g) = &groups {
            println!("groups over the whole database (median ms): {g}");
        }
        for (format, s) in &report_s {
            println!("iobox report --format {format}: {:.3} s (median of {})", s.as_f64().unwrap_or(0.0), a.reps);
        }
    }
}
