//! Bounded fuzzing of every parser that reads outside input: the config file, the calibration file, a
//! camera pipeline template (parsed by GStreamer, then the allow-list check), and every query parameter
//! parser of the dashboard (the query string, times, choices, numbers, camera names, the `next` path, the
//! `Host` header and the session cookie).
//!
//! Each target starts from its corpus in `fuzz/corpus/TARGET/` (real files and the inputs that once broke
//! iobox) and runs every seed, then a fixed number of proptest-generated mutations of them: byte flips,
//! insertions, deletions, duplications, splices of two seeds and a dictionary of hostile tokens (huge and
//! non-finite numbers, quotes, brackets, NULs, placeholders, sink elements). Every input runs on a thread of
//! its own with a deadline: a panic or a hang fails the test and prints the input, to be added to the
//! corpus. `cargo test --release fuzz` runs them; `IOBOX_FUZZ_CASES=N` runs more.
//!
//! cargo-fuzz needs a nightly toolchain for its sanitizer flags, which a fresh Debian machine and CI here do
//! not have; these targets run in `make test` on the stable toolchain instead.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

/// Longest any one input may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// Hostile tokens spliced into inputs.
const DICTIONARY: &[&str] = &[
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "4294967295",
    "18446744073709551615",
    "99999999999999999999999",
    "-0",
    "0",
    "-1",
    "\"",
    "'",
    "[",
    "]]",
    "[[",
    "{",
    "}",
    "=",
    "\n",
    "\r\n",
    "\0",
    "\\",
    "\\u0000",
    "%00",
    "%",
    "%zz",
    "&",
    "&&",
    "..",
    "../../",
    "//",
    "{camera}",
    "{uri}",
    "!",
    " ! ",
    "tee name=t",
    "filesink location=x",
    "appsink name=frames",
    "multifilesink",
    "( ",
    " )",
    "name=",
    "from=",
    "to=",
    "-99999999d",
    "9999-12-31T23:59:59",
    "0000-01-01",
    "T",
    ":",
    "[::1]",
    "\u{202e}",
    "\u{fffd}",
    "é",
];

/// One change to an input.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Token(usize, usize),
    Truncate(usize),
    Splice(usize, usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        1 => (any::<usize>(), 1usize..256).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        3 => (any::<usize>(), 0..DICTIONARY.len()).prop_map(|(p, t)| Edit::Token(p, t)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(s, p, q)| Edit::Splice(s, p, q)),
    ];
    proptest::collection::vec(edit, 1..8)
}

fn apply(seed: &[u8], edits: &[Edit], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let at = |p: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { p % (v.len() + 1) };
    for e in edits {
        match *e {
            Edit::Flip(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] ^= b | 1;
            }
            Edit::Flip(..) => {}
            Edit::Insert(p, b) => {
                let i = at(p, &v);
                v.insert(i, b);
            }
            Edit::Delete(p, n) => {
                let i = at(p, &v);
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Duplicate(p, n) => {
                let i = at(p, &v);
                let end = (i + n).min(v.len());
                let part: Vec<u8> = v[i..end].to_vec();
                v.splice(i..i, part);
            }
            Edit::Token(p, t) => {
                let i = at(p, &v);
                v.splice(i..i, DICTIONARY[t].bytes());
            }
            Edit::Truncate(p) => {
                let i = at(p, &v);
                v.truncate(i);
            }
            Edit::Splice(s, p, q) if !corpus.is_empty() => {
                let other = &corpus[s % corpus.len()];
                let from = if other.is_empty() { 0 } else { q % other.len() };
                let i = at(p, &v);
                v.truncate(i);
                v.extend_from_slice(&other[from..]);
            }
            Edit::Splice(..) => {}
        }
        v.truncate(1 << 16);
    }
    v
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// Every file of a target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "{} is empty", dir.display());
    seeds
}

/// Runs `f(input)` on its own thread: a panic or running past [`DEADLINE`] fails, naming the input.
///
/// With `IOBOX_FUZZ_LOG=FILE`, each input is written to FILE first, so that an input that crashes the
/// process outright (a fault in a C library) is left there.
fn bounded(target: &str, input: &[u8], f: fn(&[u8])) {
    if let Some(log) = std::env::var_os("IOBOX_FUZZ_LOG") {
        let _ = std::fs::write(log, input);
    }
    let (tx, rx) = mpsc::channel();
    let owned = input.to_vec();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| f(&owned));
            let _ = tx.send(outcome.is_ok());
        })
        .unwrap();
    match rx.recv_timeout(DEADLINE) {
        Ok(true) => {
            let _ = worker.join();
        }
        Ok(false) => panic!("{target}: panicked on input {:?}", String::from_utf8_lossy(input)),
        Err(_) => {
            panic!("{target}: no answer within {DEADLINE:?} (a hang) on input {:?}", String::from_utf8_lossy(input))
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("IOBOX_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The corpus, then `n` mutations of it, through `f`.
fn fuzz(target: &'static str, n: u32, f: fn(&[u8])) {
    let seeds = corpus(target);
    for s in &seeds {
        bounded(target, s, f);
    }
    let mut runner = TestRunner::new(RunnerConfig { cases: cases(n), failure_persistence: None, ..Default::default() });
    let seeds2 = seeds.clone();
    runner
        .run(&(0..seeds.len(), edits()), move |(i, edits)| {
            let input = apply(&seeds2[i], &edits, &seeds2);
            bounded(target, &input, f);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn config(input: &[u8]) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = crate::config::Config::parse(&text(input), Path::new("fuzz.toml"), base) {
        assert!(e.to_string().contains("fuzz.toml"), "an error that does not name the file: {e}");
    }
}

fn calibration(input: &[u8]) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration");
    if let Ok(cal) = crate::calibration::Calibration::parse(&text(input), Path::new("fuzz-cal.toml"), &base) {
        // What a valid calibration is used for must not panic or hang either: both mappings and the overlay
        // of its zones and lines on a small canvas.
        if let Some(p) = cal.fit.floor_from_image.apply(crate::geometry::PointInImage { x: 10.0, y: 10.0 }) {
            let _ = cal.fit.image_from_floor.apply(p);
        }
        let _ = crate::overlay::plan_overlay(&[&cal]);
    }
}

fn template(input: &[u8]) {
    crate::capture::init().unwrap();
    let _ = crate::capture::template_check::parse(&text(input));
}

fn query(input: &[u8]) {
    use crate::server::http::{Hosts, Query};
    let raw = text(input);
    let mut lines = raw.splitn(2, '\n');
    let (q, rest) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    for route in crate::server::routes::ROUTES {
        if let Ok(parsed) = Query::parse(Some(q), route.params) {
            let _ = parsed.period(1_764_600_000_000, 1_764_000_000_000);
            for p in route.params {
                let _ = parsed.int(p, 10);
                let _ = parsed.choice(p);
            }
            if let Some(next) = parsed.get("next") {
                let n = crate::server::auth::next_path(next);
                assert!(n.starts_with('/') && !n.starts_with("//"), "{n}");
            }
        }
    }
    let _ = crate::jobs::report::parse_time(q, 1_764_600_000_000);
    let _ = crate::jobs::report::period(Some(q), Some(rest), 1_764_600_000_000, 0);
    let _ = Hosts::new(&["iobox.example".into()]).check(Some(q));
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_str(q) {
        headers.insert(axum::http::header::COOKIE, v);
        let _ = crate::server::auth::session_token(&headers);
    }
}

#[test]
fn fuzz_config() {
    fuzz("config", 3000, config);
}

#[test]
fn fuzz_calibration() {
    fuzz("calibration", 3000, calibration);
}

#[test]
fn fuzz_template() {
    fuzz("template", 1000, template);
}

#[test]
fn fuzz_query() {
    fuzz("query", 20000, query);
}

#[test]
fn mutations_change_inputs_and_stay_bounded() {
    let seeds = vec![b"abc".to_vec(), b"xyz".to_vec()];
    let mut runner = TestRunner::deterministic();
    let mut changed = 0;
    for _ in 0..200 {
        let e = edits().new_tree(&mut runner).unwrap().current();
        let out = apply(&seeds[0], &e, &seeds);
        assert!(out.len() <= 1 << 16);
        changed += usize::from(out != seeds[0]);
    }
    assert!(changed > 150, "{changed} of 200 mutations changed the input");
}
