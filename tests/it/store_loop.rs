//! The whole store pipeline in one process without GStreamer: two test sources (frames from a real crowd
//! photo, tests/data/crowd) through perception, the store's fusion, behaviour and the SQLite store, timed by
//! a hand-driven clock, so every stored time is known in advance on any machine.

use std::path::Path;
use std::sync::Arc;

use iobox::calibration::{PointPair, fit_homography};
use iobox::capture::FrameSource;
use iobox::capture::test_source::TestSource;
use iobox::clock::ManualClock;
use iobox::config::Config;
use iobox::jobs::run::{RunOptions, run_sources};
use iobox::stop::Stop;

use crate::common;

/// Full-frame crowd pixels (at the test's half scale, 960x540) to floor metres: the street seen from a high
/// camera, about 13 m across at the bottom of the frame and 26 m at the top, 14 m deep.
fn street() -> iobox::calibration::FloorFromImage {
    let pairs = [
        PointPair::new((0.0, 540.0), (6.0, 14.0)),
        PointPair::new((960.0, 540.0), (19.0, 14.0)),
        PointPair::new((960.0, 0.0), (26.0, 0.0)),
        PointPair::new((0.0, 0.0), (0.0, 0.0)),
    ];
    fit_homography(&pairs).unwrap().floor_from_image
}

/// A calibration for the crop that starts at `left` px: the street's mapping moved by the crop.
fn crop_calibration(dir: &Path, name: &str, left: u32, width: u32, height: u32) -> std::path::PathBuf {
    let h = street();
    let mut text = format!(
        "camera = \"{name}\"\nimage_width = {width}\nimage_height = {height}\n\
         [floor_plan]\nimage = \"plan.png\"\npixels_per_metre = 20.0\n\
         [[zones]]\nname = \"street\"\nkind = \"zone\"\npolygon = [[0, 0], [26, 0], [26, 14], [0, 14]]\n"
    );
    for (x, y) in [
        (5.0, 5.0),
        (width as f64 - 5.0, 5.0),
        (width as f64 - 5.0, height as f64 - 5.0),
        (5.0, height as f64 - 5.0),
        (width as f64 / 2.0, height as f64 / 2.0),
    ] {
        let (fx, fy) = h.project((x + left as f64, y)).unwrap();
        text.push_str(&format!("[[points]]\nimage = [{x:.1}, {y:.1}]\nfloor = [{fx:.4}, {fy:.4}]\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The crowd frame at half size, cut into a left and a right camera that share 240 px.
fn crops() -> (image::RgbImage, image::RgbImage) {
    let full = image::open(common::data("crowd/mot17-04_f0.jpg")).unwrap().to_rgb8();
    let half = image::imageops::resize(&full, 960, 540, image::imageops::FilterType::Triangle);
    let left = image::imageops::crop_imm(&half, 0, 0, 600, 540).to_image();
    let right = image::imageops::crop_imm(&half, 360, 0, 600, 540).to_image();
    (left, right)
}

#[test]
fn a_store_of_two_test_sources_runs_without_gstreamer_on_a_hand_driven_clock() {
    const FRAMES: u64 = 24;
    const FPS: f64 = 10.0;
    // Monday 2 March 2026, 10:00 UTC: a day the machine's own clock is nowhere near.
    const START_MS: i64 = 1_772_445_600_000;
    let dir = tempfile::tempdir().unwrap();
    let left_cal = crop_calibration(dir.path(), "left", 0, 600, 540);
    let right_cal = crop_calibration(dir.path(), "right", 360, 600, 540);
    let text = format!(
        "[runtime]\nworkers = 1\n[models]\ndir = \"{models}\"\n[store]\npath = \"store.sqlite\"\n\
         [[camera]]\nname = \"left\"\nkind = \"file\"\nuri = \"unused-left.mp4\"\ncalibration = \"{}\"\n\
         [[camera]]\nname = \"right\"\nkind = \"file\"\nuri = \"unused-right.mp4\"\ncalibration = \"{}\"\n",
        left_cal.display(),
        right_cal.display(),
        models = common::root().join("models").display(),
    );
    let config = Config::parse(&text, &dir.path().join("store.toml"), dir.path()).unwrap();
    let (left, right) = crops();
    let sources: Vec<Box<dyn FrameSource>> = vec![
        Box::new(TestSource::new("left", vec![left], FRAMES, FPS)),
        Box::new(TestSource::new("right", vec![right], FRAMES, FPS)),
    ];
    let clock = ManualClock::starting_at(START_MS);
    let options = RunOptions { clock: Some(clock.clone() as Arc<dyn iobox::clock::Clock>), ..Default::default() };
    let report = run_sources(&config, sources, &Stop::new(), &options).unwrap();
    println!("{}", serde_json::to_string(&report).unwrap());
    for cam in &report.cameras {
        assert_eq!((cam.frames_processed, cam.frames_dropped, cam.error.as_deref()), (FRAMES, 0, None), "{}", cam.name);
    }

    let conn = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    // Every frame is stored at the clock's start plus its place in the stream: to the millisecond.
    let off =
        count(&format!("SELECT COUNT(*) FROM frame_log WHERE ts_ms != {START_MS} + seq * {}", (1000.0 / FPS) as i64));
    assert_eq!(off, 0, "frames stored at times other than the clock's");
    assert_eq!(count("SELECT COUNT(*) FROM frame_log"), 2 * FRAMES as i64);
    // The people standing in the street: each camera tracks those it sees; where the crops overlap, the
    // store joins the two cameras' tracks of one person into one visit.
    let tracks = |camera: &str| {
        count(&format!(
            "SELECT COUNT(DISTINCT track) FROM visit_members m JOIN cameras c ON c.id = m.camera_id WHERE c.name = '{camera}'"
        ))
    };
    let (left_tracks, right_tracks) = (tracks("left"), tracks("right"));
    let visits = count("SELECT COUNT(*) FROM visits");
    let both = count("SELECT COUNT(*) FROM visits WHERE camera_tracks >= 2");
    println!("tracks: left {left_tracks}, right {right_tracks}; store visits {visits}, {both} seen by both");
    assert_eq!(report.store_visits as i64, visits);
    assert!(left_tracks >= 8 && right_tracks >= 8, "people are tracked in both crops");
    // tests/data/crowd/ground_truth.toml has 12 people (7 clear) with their feet in the shared 240 px.
    assert!((4..=12).contains(&both), "people in the overlap are joined across the cameras: {both}");
    assert!(visits <= 48, "no more visits than people in the photo: {visits}");
    assert_eq!(visits + both, left_tracks + right_tracks, "each joined visit holds one track of each camera");
    // Visits lie inside the clock's span of the run, and none is longer than the stream.
    let span_ms = ((FRAMES - 1) as f64 * 1000.0 / FPS) as i64;
    let outside = count(&format!(
        "SELECT COUNT(*) FROM visits WHERE start_ms < {START_MS} OR end_ms > {START_MS} + {span_ms} OR end_ms < start_ms"
    ));
    assert_eq!(outside, 0, "visits outside the run's clock span");
    let zone_entries = count(&format!(
        "SELECT COUNT(*) FROM events WHERE kind = 'zone_entered' AND ts_ms BETWEEN {START_MS} AND {START_MS} + {span_ms}"
    ));
    assert!(zone_entries >= left_tracks.min(right_tracks), "behaviour ran on the clock's times: {zone_entries}");
}
