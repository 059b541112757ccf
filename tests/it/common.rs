//! Shared helpers: paths into the checkout, the bundled models, running the iobox binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use iobox::infer::ModelSource;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(rel: &str) -> PathBuf {
    root().join("tests/data").join(rel)
}

pub fn sample_clip() -> PathBuf {
    root().join("samples/one-by-one-person-detection.mp4")
}

pub fn models() -> ModelSource {
    let mut m = ModelSource::new(root().join("models"));
    m.intra_threads = 2;
    m
}

/// Runs the iobox binary with `args` in `cwd`.
pub fn iobox(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(args)
        .current_dir(cwd)
        .env("IOBOX_LOG", "info")
        .output()
        .expect("iobox binary runs")
}

/// Starts the iobox binary with `args` in `cwd`, stdout and stderr piped (for `wait_with_output`).
pub fn spawn_iobox(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(args)
        .current_dir(cwd)
        .env("IOBOX_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iobox binary starts")
}

/// A config for the bundled sample clip (as the embedded default) that also writes an anonymized snapshot
/// per camera to `snapshots/{camera}.jpg` beside it.
pub fn sample_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("sample.toml");
    let root = root();
    std::fs::write(
        &path,
        format!(
            "[store]\npath = \"sample.sqlite\"\n[output]\nsnapshot = \"snapshots/{{camera}}.jpg\"\nsnapshot_every_s = 5\n\
             {extra}\n[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\ncalibration = \"{}\"\n",
            sample_clip().display(),
            root.join("calibration/sample.toml").display()
        ),
    )
    .unwrap();
    path
}

/// A config for the bundled sample (its camera and calibration) with `[privacy] min_tracks = k`, written as
/// `k{k}.toml` in `dir` (the same file whichever test asks, so tests sharing a directory agree on it).
pub fn config_with_k(dir: &Path, k: u32) -> PathBuf {
    let path = dir.join(format!("k{k}.toml"));
    std::fs::write(
        &path,
        format!(
            "[privacy]\nmin_tracks = {k}\n[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\ncalibration = \"{}\"\n",
            sample_clip().display(),
            root().join("calibration/sample.toml").display()
        ),
    )
    .unwrap();
    path
}

/// The database of one real `iobox run` on the bundled sample, calibrated as the embedded default config
/// (entries, exits, dwell, journeys, mood, heat) and also writing the anonymized snapshot
/// `snapshots/sample.jpg` beside it; made once per test binary and shared read-only (report, export,
/// heatmap, dashboard). Six people, one at a time (tests/data/ground_truth.toml).
pub fn sample_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sample-run");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("sample.sqlite");
        let config = sample_config(&dir, "");
        let out = iobox(&["run", "--config", config.to_str().unwrap(), "--db", db.to_str().unwrap(), "--json"], &dir);
        assert!(out.status.success(), "{}", text(&out));
        db
    })
}

/// The people who walk through the sample clip, as counted by watching it (tests/data/ground_truth.toml).
pub fn sample_people() -> i64 {
    let gt: toml::Value = toml::from_str(&std::fs::read_to_string(data("ground_truth.toml")).unwrap()).unwrap();
    gt["one-by-one-person-detection"]["people"].as_integer().unwrap()
}

/// The distinct tracks behind mood or heat rows (`FROM ... WHERE ...`): the union of their track tokens,
/// two little-endian bytes each, counted here without iobox's SQL aggregate.
pub fn distinct_tokens(conn: &rusqlite::Connection, from_where: &str) -> i64 {
    let mut stmt = conn.prepare(&format!("SELECT track_tokens {from_where}")).unwrap();
    let blobs: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).unwrap().map(|b| b.unwrap()).collect();
    let tokens: std::collections::BTreeSet<u16> =
        blobs.iter().flat_map(|b| b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]]))).collect();
    tokens.len() as i64
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A face box from the dlib imglab files.
#[derive(Debug, Clone, Copy)]
pub struct GtBox {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// (image file, boxes) from a dlib imglab XML file.
pub fn dlib_boxes(xml: &Path) -> Vec<(String, Vec<GtBox>)> {
    let text = std::fs::read_to_string(xml).unwrap();
    let attr = |tag: &str, name: &str| -> u32 {
        let key = format!("{name}='");
        let start = tag.find(&key).unwrap_or_else(|| panic!("{name} in {tag}")) + key.len();
        tag[start..start + tag[start..].find('\'').unwrap()].parse().unwrap()
    };
    let mut out = Vec::new();
    for image in text.split("<image ").skip(1) {
        let file_start = image.find("file='").unwrap() + 6;
        let file = image[file_start..file_start + image[file_start..].find('\'').unwrap()].to_string();
        let boxes = image
            .split("<box ")
            .skip(1)
            .map(|b| GtBox {
                left: attr(b, "left"),
                top: attr(b, "top"),
                width: attr(b, "width"),
                height: attr(b, "height"),
            })
            .collect();
        out.push((file, boxes));
    }
    out
}

/// Mean absolute Laplacian (detail) of the green channel inside the rectangle at (`left`, `top`) of
/// `width` x `height` pixels: how much fine structure a blur left.
pub fn detail(view: &iobox::capture::RgbView<'_>, left: u32, top: u32, width: u32, height: u32) -> f64 {
    let (mut sum, mut n) = (0f64, 0f64);
    for y in top.max(1)..(top + height).min(view.height - 1) {
        for x in left.max(1)..(left + width).min(view.width - 1) {
            let g = |x: u32, y: u32| view.pixel(x, y)[1] as f64;
            sum += (4.0 * g(x, y) - g(x - 1, y) - g(x + 1, y) - g(x, y - 1) - g(x, y + 1)).abs();
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

/// Runs every dlib photo through `perception` (no hold-over) and counts the annotated faces whose centre
/// lies in a blurred region: (faces with their centre blurred, faces, sum of `count(&processed)`).
pub fn dlib_centres_blurred(
    perception: &mut iobox::worker::Perception,
    count: impl Fn(&iobox::worker::Processed) -> usize,
) -> (usize, usize, usize) {
    use iobox::anonymize::BlurConfig;
    use iobox::track::TrackerConfig;
    use iobox::worker::CameraPerception;
    let (mut covered, mut total, mut counted) = (0, 0, 0);
    for xml in ["training.xml", "testing.xml"] {
        for (file, boxes) in dlib_boxes(&data("dlib_faces").join(xml)) {
            let mut cam = CameraPerception::new(
                BlurConfig { hold_frames: 0, ..BlurConfig::default() },
                TrackerConfig::default(),
                None,
            );
            let out = perception
                .process(iobox::capture::still::read(&data("dlib_faces").join(&file)).unwrap(), &mut cam)
                .unwrap();
            counted += count(&out);
            let regions = cam.anonymizer.last_regions();
            for b in boxes {
                total += 1;
                if regions.iter().any(|r| r.contains(b.left + b.width / 2, b.top + b.height / 2)) {
                    covered += 1;
                }
            }
        }
    }
    (covered, total, counted)
}
