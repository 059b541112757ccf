//! The chain's head office at scale: 500 stores x 30 days of figures delivered to a real PostgreSQL 15
//! (started here, as the tests do), each store by its own login through row-level security, then the chain
//! report over all of them. `cargo bench --bench chain -- [--stores N] [--days D] [--clients C]`; prints one
//! JSON object (scripts/bench.py --only chain puts it in BENCHMARKS.md).
//!
//! One store's month is simulated through the real writer and closed by the real outbox; every store
//! delivers those rows (the server's work does not depend on the figures), in the box's own batches.

#[path = "../tests/it/pg.rs"]
mod pg;
#[path = "../tests/it/shoppers.rs"]
mod shoppers;

use std::time::{Duration, Instant};

use iobox::buckets::{self, Level};
use iobox::chain::report::ChainReportOptions;
use iobox::chain::{self, Target};
use iobox::store::outbox::{self, CloseOptions};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (stores, days, clients, batch) =
        (arg("--stores", 500), arg("--days", 30), arg("--clients", 4), arg("--batch", 500));
    let pg = pg::Postgres::start_durable();
    let mut admin = pg.admin("chain");
    chain::schema::init(&mut admin, "bench").unwrap();

    // One store's month, closed by the real outbox.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.sqlite");
    let now = iobox::clock::system().wall_ms();
    let today = buckets::floor(now, Level::Day);
    let day_starts: Vec<i64> =
        (1..=days as i64).rev().map(|d| buckets::floor(today - d * 86_400_000 + 43_200_000, Level::Day)).collect();
    shoppers::simulate(&db, &day_starts, 1.0, 42);
    let conn = iobox::store::open_rw(&db).unwrap();
    let t = Instant::now();
    let closed =
        outbox::close(&conn, &CloseOptions { k: 5, grace_ms: 900_000, now_ms: now, keep_from_ms: None }).unwrap();
    let close_s = t.elapsed().as_secs_f64();
    let rows = outbox::pending(&conn, usize::MAX >> 1).unwrap();
    eprintln!("one store: {} days closed into {} rows in {close_s:.2} s", closed.days, rows.len());

    // The stores and their logins.
    let t = Instant::now();
    let names: Vec<String> = (0..stores).map(|i| format!("store-{i:04}")).collect();
    for s in &names {
        chain::schema::add_store(&mut admin, "bench", s, &format!("{s}-password")).unwrap();
    }
    eprintln!("{stores} stores added in {:.1} s", t.elapsed().as_secs_f64());

    // Delivery: `clients` boxes at a time, each connecting with its own login, checking its binding and
    // sending its rows in batches.
    let deliver = |names: &[String]| -> (u64, u64) {
        let (mut applied, mut unchanged) = (0, 0);
        for s in names {
            let url = format!("{} password={s}-password", pg.url(&chain::schema::role_of(s)));
            let target = Target::new(&url, "bench", None, None).unwrap();
            let mut client = target.connect().unwrap();
            chain::sync::check_binding(&mut client, &target, s).unwrap();
            for b in rows.chunks(batch) {
                let p = chain::sync::push(&mut client, &target, s, b).unwrap();
                applied += p.applied;
                unchanged += p.unchanged;
            }
        }
        (applied, unchanged)
    };
    let run = |label: &str| -> (f64, u64, u64) {
        let t = Instant::now();
        let per = names.len().div_ceil(clients);
        let (applied, unchanged) = std::thread::scope(|scope| {
            let handles: Vec<_> = names.chunks(per).map(|part| scope.spawn(|| deliver(part))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{label}: {} rows in {s:.1} s ({:.0} rows/s; {applied} applied, {unchanged} unchanged)",
            applied + unchanged,
            (applied + unchanged) as f64 / s
        );
        (s, applied, unchanged)
    };
    let (first_s, first_applied, _) = run("first delivery");
    let (replay_s, replay_applied, replay_unchanged) = run("replay of everything");
    let total = (rows.len() * stores) as u64;
    assert_eq!(first_applied, total, "every row applied once");
    assert_eq!((replay_applied, replay_unchanged), (0, total), "a replay changes nothing");
    let _ = admin.batch_execute("VACUUM ANALYZE iobox_chain.facts");
    let size: i64 = admin.query_one("SELECT pg_total_relation_size('iobox_chain.facts')", &[]).unwrap().get(0);

    // The chain report over the month, and over the last week.
    let first = chrono::NaiveDate::parse_from_str(&buckets::local_wall(day_starts[0])[..10], "%Y-%m-%d").unwrap();
    let last =
        chrono::NaiveDate::parse_from_str(&buckets::local_wall(*day_starts.last().unwrap())[..10], "%Y-%m-%d").unwrap();
    let mut month = Vec::new();
    let mut week = Vec::new();
    let mut footfall_rows = 0;
    for _ in 0..5 {
        let o = ChainReportOptions { from: first, to: last.succ_opt().unwrap(), k: None, top: 10 };
        let t = Instant::now();
        let r = chain::report::report(&mut admin, "bench", &o).unwrap();
        month.push(t.elapsed().as_secs_f64());
        footfall_rows = r.footfall.len();
        let o = ChainReportOptions {
            from: last - chrono::Duration::days(6),
            to: last.succ_opt().unwrap(),
            k: None,
            top: 10,
        };
        let t = Instant::now();
        chain::report::report(&mut admin, "bench", &o).unwrap();
        week.push(t.elapsed().as_secs_f64());
    }
    assert_eq!(footfall_rows, stores * days);
    let out = serde_json::json!({
        "stores": stores, "days": days, "clients": clients, "batch": batch,
        "rows_per_store": rows.len(), "rows": total,
        "one_store_close_s": close_s,
        "first_delivery_s": first_s, "first_rows_per_s": total as f64 / first_s,
        "replay_s": replay_s, "replay_rows_per_s": total as f64 / replay_s,
        "facts_mib": size as f64 / 1_048_576.0,
        "report_month_median_s": median(month), "report_week_median_s": median(week),
    });
    println!("{out}");
    std::thread::sleep(Duration::from_millis(10));
}
