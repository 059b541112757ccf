//! A chain of stores on a real PostgreSQL 15 started by each test on 127.0.0.1 (initdb and pg_ctl, as the
//! `postgres` user when the tests run as root): boxes with simulated weeks of shoppers written through the
//! real store writer deliver with `iobox sync`; head office reads with `iobox chain report` and SQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use iobox::behaviour::{Event, Name, TrackId};
use iobox::buckets::{self, Level};
use iobox::store::{Record, Writer, WriterOptions};
use serde_json::Value;

use crate::common::{iobox, text};
use crate::pg::Postgres;
pub(crate) use crate::shoppers::simulate;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Today's local midnight.
pub(crate) fn today() -> i64 {
    buckets::floor(iobox::clock::system().wall_ms(), Level::Day)
}

/// The start of the local day `n` days after the day that starts at `day`.
pub(crate) fn plus_days(day: i64, n: i64) -> i64 {
    buckets::floor(day + n * DAY + 12 * HOUR, Level::Day)
}

fn local_day(ms: i64) -> String {
    buckets::local_wall(ms)[..10].to_string()
}

/// A box: its folder, database and config (`[chain]` as `store`, logging in as `login`).
struct Box_ {
    dir: tempfile::TempDir,
}

impl Box_ {
    fn new(pg: &Postgres, store: &str, login: &str, password: &str, batch: usize) -> Box_ {
        Self::with(pg, store, login, password, batch, "", "")
    }

    /// With more connection parameters and more `[chain]` settings.
    fn with(pg: &Postgres, store: &str, login: &str, password: &str, batch: usize, params: &str, chain: &str) -> Box_ {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("chain.password"), format!("{password}\n")).unwrap();
        let config = format!(
            "[store]\npath = \"store.sqlite\"\nretention_days = 0\n[privacy]\nmin_tracks = 5\n\
             [chain]\nstore = \"{store}\"\nurl = \"{} {params}\"\npassword_file = \"chain.password\"\nbatch = {batch}\n{chain}\
             [[camera]]\nname = \"door\"\nkind = \"test\"\n[[camera]]\nname = \"floor\"\nkind = \"test\"\n",
            pg.url(login)
        );
        std::fs::write(dir.path().join("box.toml"), config).unwrap();
        Box_ { dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("store.sqlite")
    }

    fn config(&self) -> String {
        self.dir.path().join("box.toml").display().to_string()
    }

    fn sync(&self, extra: &[&str]) -> Output {
        let config = self.config();
        let mut args = vec!["sync", "--config", &config, "--quiet"];
        args.extend_from_slice(extra);
        iobox(&args, self.dir.path())
    }

    fn sync_ok(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = self.sync(&args);
        assert!(out.status.success(), "iobox sync: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The store's own report of one local day, as `iobox report` gives it.
    fn report_day(&self, day: i64) -> Value {
        let (from, to) = (local_day(day), local_day(plus_days(day, 1)));
        let db = self.db().display().to_string();
        let out = iobox(
            &["report", "--db", &db, "--config", &self.config(), "--from", &from, "--to", &to, "--format", "json"],
            self.dir.path(),
        );
        assert!(out.status.success(), "iobox report: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Sets up head office: schema, and stores with their boxes' passwords.
fn head_office(pg: &Postgres, stores: &[(&str, &str)]) {
    let admin = pg.admin_url();
    let out = iobox(&["chain", "init", "--url", &admin], Path::new("."));
    assert!(out.status.success(), "chain init: {}", text(&out));
    for (store, password) in stores {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, password).unwrap();
        let out = iobox(
            &["chain", "add-store", store, "--box-password-file", pw.to_str().unwrap(), "--url", &admin],
            Path::new("."),
        );
        assert!(out.status.success(), "chain add-store: {}", text(&out));
        assert!(text(&out).contains(&format!("user={}", iobox::chain::schema::role_of(store))), "{}", text(&out));
    }
}

/// A fact's natural key at head office within a store: kind, bucket, start (ms), dim.
type Key = (String, String, i64, String);
/// A fact's revision, suppression and figures.
type Held = (i32, bool, Option<Value>);
/// An outbox row: kind, bucket, start (ms), dim, revision, figures, revision acknowledged.
type OutboxRow = (String, String, i64, String, i64, Option<String>, i64);

/// Every fact of one store: (kind, bucket, start, dim) -> (revision, suppressed, figures).
fn facts(pg: &Postgres, store: &str) -> std::collections::BTreeMap<Key, Held> {
    pg.admin("chain")
        .query(
            "SELECT kind, bucket, (extract(epoch FROM bucket_start) * 1000)::int8, dim, revision, suppressed, figures::text
             FROM iobox_chain.facts WHERE store = $1",
            &[&store],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let figures: Option<String> = r.get(6);
            ((r.get(0), r.get(1), r.get(2), r.get(3)), (r.get(4), r.get(5), figures.map(|f| serde_json::from_str(&f).unwrap())))
        })
        .collect()
}

/// The outbox of a box as head office should hold it: (kind, bucket, start ms, dim) -> (revision, figures).
fn outbox(db: &Path) -> Vec<OutboxRow> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT kind, bucket, bucket_start_ms, dim, revision, figures, delivered_revision FROM outbox ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn day_footfall(pg: &Postgres, store: &str, day: i64) -> (Option<i64>, i32) {
    let row = pg
        .admin("chain")
        .query_one(
            "SELECT entries, revision FROM iobox_chain.footfall_daily WHERE store = $1 AND day = $2::text::date",
            &[&store, &local_day(day)],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_box_offline_for_a_week_catches_up_and_head_office_equals_the_stores_own_reports() {
    let pg = Postgres::start();
    head_office(&pg, &[("north", "north-box-password"), ("south", "south-box-password")]);
    let first = plus_days(today(), -10);
    let days: Vec<i64> = (0..9).map(|d| plus_days(first, d)).collect();
    let north = Box_::new(&pg, "north", "iobox_box_north", "north-box-password", 200);
    let south = Box_::new(&pg, "south", "iobox_box_south", "south-box-password", 200);
    simulate(&north.db(), &days, 1.0, 1);
    simulate(&south.db(), &days, 2.0, 2);

    // North is offline for a week: each day's figures close into its outbox and wait, none lost.
    pg.kill();
    let mut backlog = 0u64;
    for d in 1..=7 {
        let as_of = buckets::local_wall(plus_days(first, d) + 8 * HOUR);
        let out = north.sync(&["--as-of", &as_of]);
        assert!(!out.status.success(), "the server is down");
        let msg = text(&out);
        assert!(msg.contains("iobox_box_north@127.0.0.1"), "{msg}");
        let rows: u64 = msg
            .split("keeps its ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(rows > backlog, "day {d}: the backlog grows ({backlog} -> {rows}): {msg}");
        backlog = rows;
    }
    pg.resume();
    let done = north.sync_ok(&[]);
    assert!(done["delivered"]["rows"].as_u64().unwrap() >= backlog, "{done}");
    assert_eq!(done["status"]["backlog_rows"], 0, "{done}");
    let done = south.sync_ok(&[]);
    assert_eq!(done["status"]["backlog_rows"], 0, "{done}");
    for b in [&north, &south] {
        assert!(outbox(&b.db()).iter().all(|r| r.6 == r.4), "every row acknowledged at its revision");
    }

    // Head office's report against the stores' own reports, day by day.
    let (from, to) = (local_day(first), local_day(days[8]));
    let out =
        iobox(&["chain", "report", "--from", &from, "--to", &to, "--json", "--url", &pg.admin_url()], Path::new("."));
    assert!(out.status.success(), "chain report: {}", text(&out));
    let chain: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(chain["k"], 5);
    let footfall = chain["footfall"].as_array().unwrap();
    assert_eq!(footfall.len(), 18, "9 days of 2 stores");
    let mut zone_stays = std::collections::HashMap::<String, i64>::new();
    let mut hidden_hours = 0;
    for (store, b) in [("north", &north), ("south", &south)] {
        for &day in &days {
            let own = b.report_day(day);
            let whole =
                own["entries_exits"].as_array().unwrap().iter().find(|m| m["camera"].is_null()).unwrap().clone();
            let row = footfall.iter().find(|f| f["store"] == store && f["day"] == local_day(day)).unwrap();
            assert_eq!(
                row["entries"],
                whole["entries"],
                "{store} {}: head office {row} vs the store {whole}",
                local_day(day)
            );
            assert_eq!(row["exits"], whole["exits"], "{store} {}", local_day(day));
            hidden_hours += whole["buckets_suppressed"].as_u64().unwrap();
            for z in own["dwell"].as_array().unwrap() {
                if let Some(v) = z["visits"].as_i64() {
                    *zone_stays.entry(z["zone"].as_str().unwrap().to_string()).or_default() += v;
                }
            }
        }
    }
    assert!(hidden_hours > 0, "some hours of 3 or 4 shoppers are hidden, and the day is the sum of the rest");
    for z in chain["top_zones"].as_array().unwrap() {
        assert_eq!(z["stays"].as_i64(), zone_stays.get(z["zone"].as_str().unwrap()).copied(), "{z}");
    }
    assert_eq!(chain["top_zones"][0]["zone"], "shelf", "every shopper stays at the shelf");
    // Week over week: the per-week sums of the days.
    for w in chain["weeks"].as_array().unwrap() {
        let sum: i64 = footfall
            .iter()
            .filter(|f| f["store"] == w["store"] && f["day"].as_str().unwrap() >= w["week"].as_str().unwrap())
            .filter(|f| {
                let monday = chrono::NaiveDate::parse_from_str(w["week"].as_str().unwrap(), "%Y-%m-%d").unwrap();
                let d = chrono::NaiveDate::parse_from_str(f["day"].as_str().unwrap(), "%Y-%m-%d").unwrap();
                (d - monday).num_days() < 7
            })
            .map(|f| f["entries"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(w["entries"].as_i64(), Some(sum), "{w}");
    }
    let queues = chain["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2, "one checkout per store: {queues:?}");
    // The text report says the same.
    let out = iobox(&["chain", "report", "--from", &from, "--to", &to, "--url", &pg.admin_url()], Path::new("."));
    assert!(text(&out).contains("Week over week") && text(&out).contains("north"), "{}", text(&out));

    // Nothing per person reached head office: figures only, no track ids.
    let dump: String = pg
        .admin("chain")
        .query_one("SELECT string_agg(figures::text, ' ') FROM iobox_chain.facts", &[])
        .unwrap()
        .get(0);
    let conn = rusqlite::Connection::open(north.db()).unwrap();
    let track: String = conn.query_row("SELECT track FROM events LIMIT 1", [], |r| r.get(0)).unwrap();
    assert!(!dump.contains(&track) && !dump.contains("track\""), "no track id in what was sent");
}

#[test]
fn replays_lost_acknowledgements_and_stale_revisions_never_change_a_count() {
    let pg = Postgres::start();
    head_office(&pg, &[("east", "east-box-password")]);
    let days: Vec<i64> = (1..=3).rev().map(|d| plus_days(today(), -d)).collect();
    let east = Box_::new(&pg, "east", "iobox_box_east", "east-box-password", 500);
    simulate(&east.db(), &days, 1.0, 3);
    // As of noon of the last day: the first two days and that morning's hours close, and are delivered.
    let noon = buckets::local_wall(days[2] + 12 * HOUR);
    let first = east.sync_ok(&["--as-of", &noon]);
    let held = facts(&pg, "east");
    assert_eq!(held.len() as u64, first["delivered"]["rows"].as_u64().unwrap());
    assert_eq!(first["delivered"]["applied"].as_u64().unwrap(), held.len() as u64, "{first}");
    let (entries, revision) = day_footfall(&pg, "east", days[1]);
    assert_eq!(revision, 1);
    let entries = entries.expect("a day of 60 shoppers is shown");
    // A crash between the server's commit and the box's: a copy of the box that never recorded the
    // acknowledgement delivers the same rows again.
    let before = east.dir.path().join("before.sqlite");
    {
        let c = rusqlite::Connection::open(east.db()).unwrap();
        c.execute("VACUUM INTO ?1", [before.to_str().unwrap()]).unwrap();
        let copy = rusqlite::Connection::open(&before).unwrap();
        copy.execute("UPDATE outbox SET delivered_revision = 0", []).unwrap();
    }
    let copy = east.dir.path().join("copy.toml");
    std::fs::write(&copy, std::fs::read_to_string(east.config()).unwrap().replace("store.sqlite", "before.sqlite"))
        .unwrap();
    let replay =
        iobox(&["sync", "--config", copy.to_str().unwrap(), "--as-of", &noon, "--json", "--quiet"], east.dir.path());
    assert!(replay.status.success(), "{}", text(&replay));
    let replay: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(replay["delivered"]["applied"], 0, "{replay}");
    assert_eq!(replay["delivered"]["unchanged"].as_u64().unwrap(), held.len() as u64, "{replay}");
    assert_eq!(facts(&pg, "east"), held, "the replay changed nothing");

    // Late events for the second day (its grace long over): the day is looked at again when the next day
    // closes, and its rows get the next revision.
    simulate_late_entries(&east.db(), days[1] + 15 * HOUR, 10);
    let now = east.sync_ok(&[]);
    assert!(now["closed"]["rows"].as_u64().unwrap() > 0, "{now}");
    let (late, revision) = day_footfall(&pg, "east", days[1]);
    assert_eq!((late, revision), (Some(entries + 10), 2), "the rewritten day, at revision 2");
    // The stale copy (revision 1 of that day) arrives late: the count stays.
    let stale = iobox(&["sync", "--config", copy.to_str().unwrap(), "--resend", "--json", "--quiet"], east.dir.path());
    assert!(stale.status.success(), "{}", text(&stale));
    let stale: Value = serde_json::from_slice(&stale.stdout).unwrap();
    assert!(stale["delivered"]["unchanged"].as_u64().unwrap() > 0, "{stale}");
    assert_eq!(day_footfall(&pg, "east", days[1]), (Some(entries + 10), 2), "a stale revision never wins");
    // And the box's own report agrees with head office.
    let own = east.report_day(days[1]);
    let whole = own["entries_exits"].as_array().unwrap().iter().find(|m| m["camera"].is_null()).unwrap().clone();
    assert_eq!(whole["entries"].as_i64(), Some(entries + 10));
}

/// `n` more shoppers entering at `at_ms`, written by a second run of the writer.
fn simulate_late_entries(db: &Path, at_ms: i64, n: u64) {
    let writer = Writer::start_with(
        db,
        &["door".to_string(), "floor".to_string()],
        WriterOptions { retention: None, ..WriterOptions::default() },
    )
    .unwrap();
    let tx = writer.sender();
    for i in 0..n {
        let track = TrackId(0xdead_0000 + i);
        tx.send(Record::Event {
            camera: 0,
            event: Event::Entry { zone: Name::from("entrance"), track, at_ms: at_ms + i as i64 * 1000 },
        });
        tx.send(Record::Event {
            camera: 0,
            event: Event::Exit { zone: Name::from("entrance"), track, at_ms: at_ms + 600_000 },
        });
    }
    drop(tx);
    writer.finish().unwrap();
}

#[test]
fn the_server_killed_mid_sync_loses_nothing_and_counts_nothing_twice() {
    let pg = Postgres::start();
    head_office(&pg, &[("west", "west-box-password")]);
    let days: Vec<i64> = (1..=6).rev().map(|d| plus_days(today(), -d)).collect();
    let west = Box_::new(&pg, "west", "iobox_box_west", "west-box-password", 20);
    simulate(&west.db(), &days, 1.0, 4);
    // The server holds the third batch inside its transaction until it is killed (and only this server
    // process: after the restart the trigger lets everything through).
    let mut admin = pg.admin("chain");
    let started: String = admin.query_one("SELECT pg_postmaster_start_time()::text", &[]).unwrap().get(0);
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION iobox_chain.hold() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                IF pg_postmaster_start_time() = '{started}'::timestamptz AND (SELECT count(*) FROM iobox_chain.facts) >= 40 THEN
                    PERFORM pg_sleep(600);
                END IF;
                RETURN NULL;
             END $$;
             CREATE TRIGGER hold BEFORE INSERT ON iobox_chain.facts FOR EACH STATEMENT EXECUTE FUNCTION iobox_chain.hold();"
        ))
        .unwrap();
    drop(admin);
    let config = west.config();
    let mut sync = crate::common::spawn_iobox(
        &["sync", "--config", &config, "--retry-for", "300", "--json", "--quiet"],
        west.dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held: i64 = pg
            .admin("chain")
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND application_name = 'iobox'",
                &[],
            )
            .unwrap()
            .get(0);
        if held > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the third batch never reached the server");
        assert!(sync.try_wait().unwrap().is_none(), "iobox sync ended before the third batch");
        std::thread::sleep(Duration::from_millis(50));
    }
    let committed: i64 = pg.admin("chain").query_one("SELECT count(*) FROM iobox_chain.facts", &[]).unwrap().get(0);
    assert_eq!(committed, 40, "two batches committed before the kill");
    pg.kill();
    pg.resume();
    let out = sync.wait_with_output().unwrap();
    assert!(out.status.success(), "iobox sync: {}", text(&out));
    assert!(text(&out).contains("trying again"), "the cut connection was retried: {}", text(&out));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["status"]["backlog_rows"], 0, "{done}");
    // Head office holds exactly the outbox: every row once, at its revision, with its figures.
    let held = facts(&pg, "west");
    let rows = outbox(&west.db());
    assert_eq!(held.len(), rows.len());
    for (kind, bucket, start, dim, revision, figures, delivered) in rows {
        assert_eq!(delivered, revision);
        let (rev, suppressed, fig) = held
            .get(&(kind.clone(), bucket.clone(), start, dim.clone()))
            .unwrap_or_else(|| panic!("{kind} {bucket} {start} {dim} missing"));
        assert_eq!(i64::from(*rev), revision);
        assert_eq!(*suppressed, figures.is_none());
        assert_eq!(fig.clone(), figures.map(|f| serde_json::from_str::<Value>(&f).unwrap()));
    }
}

#[test]
fn a_box_cannot_write_another_stores_figures() {
    let pg = Postgres::start();
    head_office(&pg, &[("alpha", "alpha-box-password"), ("beta", "beta-box-password")]);
    let day = plus_days(today(), -2);
    let alpha = Box_::new(&pg, "alpha", "iobox_box_alpha", "alpha-box-password", 500);
    simulate(&alpha.db(), &[day], 1.0, 5);
    alpha.sync_ok(&[]);
    let alpha_facts = facts(&pg, "alpha");
    assert!(!alpha_facts.is_empty());

    // Beta's box configured as alpha: refused before anything is sent.
    let rogue = Box_::new(&pg, "alpha", "iobox_box_beta", "beta-box-password", 500);
    simulate(&rogue.db(), &[day], 3.0, 6);
    let out = rogue.sync(&[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("bound to store 'beta', not to store 'alpha'"), "{}", text(&out));
    // And the server itself refuses beta's login any row of alpha, whatever the client does.
    let url = format!("{} password=beta-box-password", pg.url("iobox_box_beta"));
    let mut beta = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let insert = beta.execute(
        "INSERT INTO iobox_chain.facts (store, kind, bucket, bucket_start, dim, local_start, revision, suppressed, figures, k)
         VALUES ('alpha', 'footfall', 'day', now(), 'x', now(), 1, false, '{\"entries\": 999}', 5)",
        &[],
    );
    let e = insert.unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("row-level security"), "{e:?}");
    let updated = beta
        .execute(
            "UPDATE iobox_chain.facts SET revision = 99, figures = '{\"entries\": 999}' WHERE store = 'alpha'",
            &[],
        )
        .unwrap();
    assert_eq!(updated, 0, "alpha's rows are invisible to beta's box");
    let seen: i64 = beta.query_one("SELECT count(*) FROM iobox_chain.facts", &[]).unwrap().get(0);
    assert_eq!(seen, 0);
    assert!(beta.execute("DELETE FROM iobox_chain.facts", &[]).is_err(), "a box cannot delete");
    assert!(beta.batch_execute("DROP VIEW iobox_chain.footfall_daily").is_err(), "nor change the schema");
    assert_eq!(facts(&pg, "alpha"), alpha_facts, "alpha's figures are untouched");
    // A wrong password is a clear error, not a hang.
    let wrong = Box_::new(&pg, "beta", "iobox_box_beta", "not-the-password", 500);
    simulate(&wrong.db(), &[day], 1.0, 7);
    let out = wrong.sync(&[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("password authentication failed"), "{}", text(&out));
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it (openssl).
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    let ca = "-subj /CN=iobox-test-CA -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    let mut args = vec!["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    args.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    args.extend(ca.split(' '));
    run(&args);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

#[test]
fn a_box_delivers_over_tls_and_refuses_a_server_it_cannot_verify() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let pg = Postgres::start_tls(certs.path());
    head_office(&pg, &[("tls-1", "tls-box-password")]);
    let day = plus_days(today(), -2);
    let ca = format!("ca_file = \"{}\"\n", certs.path().join("ca.crt").display());
    let verified = Box_::with(&pg, "tls-1", "iobox_box_tls_1", "tls-box-password", 500, "sslmode=require", &ca);
    simulate(&verified.db(), &[day], 1.0, 10);
    let done = verified.sync_ok(&[]);
    assert!(done["delivered"]["applied"].as_u64().unwrap() > 0, "{done}");
    assert_eq!(facts(&pg, "tls-1").len() as u64, done["delivered"]["rows"].as_u64().unwrap());
    // The system's roots do not know this CA: refused, nothing sent.
    let unknown = Box_::with(&pg, "tls-1", "iobox_box_tls_1", "tls-box-password", 500, "sslmode=require", "");
    simulate(&unknown.db(), &[day], 1.0, 11);
    let out = unknown.sync(&[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("certificate"), "{}", text(&out));
    // Without TLS the server refuses the box (it asks for TLS on TCP).
    let plain = Box_::with(&pg, "tls-1", "iobox_box_tls_1", "tls-box-password", 500, "sslmode=disable", "");
    simulate(&plain.db(), &[day], 1.0, 12);
    let out = plain.sync(&[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no encryption"), "{}", text(&out));
}
