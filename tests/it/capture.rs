//! Capture through real GStreamer pipelines, and `iobox run` end to end on files.

use std::time::Duration;

use iobox::capture::{self, QueuePolicy, SourceKind, SourceSpec};
use iobox::stop::Stop;

use crate::common;

#[test]
fn a_live_test_source_delivers_frames_of_the_configured_size_and_drops_when_the_worker_is_slow() {
    let mut spec = SourceSpec::new("test", SourceKind::Test, "");
    spec.width = Some(320);
    spec.height = Some(240);
    spec.fps = Some(30);
    assert_eq!(spec.queue_policy(), QueuePolicy::DropOldest);
    let (tx, rx) = capture::queue::frame_queue(2, spec.queue_policy());
    let stop = Stop::new();
    let cam = capture::spawn(&spec, 0, tx, stop.clone()).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap().expect("a frame within 10 s");
    assert_eq!((first.width(), first.height()), (320, 240));
    assert_eq!(first.meta.fps, Some(30.0));
    drop(first);
    // A slow consumer (here: none until the source has made a dozen frames more than the queue holds): the
    // queue keeps only the newest frames and counts what it dropped. However slow the machine, the source
    // keeps producing: wait for it (not for a number of seconds).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rx.stats().dropped() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the live source stopped producing: {} dropped",
            rx.stats().dropped()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dropped = rx.stats().dropped();
    let newest = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    stop.request();
    // The frame handed over is one of the newest: every frame before it was either the first or dropped.
    assert!(newest.meta.seq > dropped, "seq {} after {dropped} dropped: an old frame was kept", newest.meta.seq);
    drop(newest);
    while rx.recv_timeout(Duration::from_millis(200)).is_ok_and(|f| f.is_some()) {}
    cam.join().unwrap();
}

/// Stopping a file partway (Ctrl-C, `--max-duration`, a job that has what it needs) is a clean end, not a
/// "truncated or damaged" file: the stop makes the appsink answer EOS, and that EOS is the request's.
#[test]
fn a_file_stopped_partway_ends_cleanly() {
    for stop_after in [1u64, 10, 40] {
        let stop = Stop::new();
        let (rx, cam) = capture::open_file(&common::sample_clip(), &stop).unwrap();
        let mut frames = 0u64;
        while let Ok(frame) = rx.recv() {
            frames += 1;
            drop(frame);
            if frames == stop_after {
                stop.request();
            }
        }
        assert!(frames >= stop_after && frames < 200, "stopped after {frames} frames");
        cam.join().unwrap_or_else(|e| panic!("stopped after {stop_after} frames: {e}"));
    }
}

#[test]
fn run_processes_two_cameras_records_anonymized_video_and_logs_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let clip = common::sample_clip();
    let config = format!(
        r#"
[store]
path = "events.sqlite"
[output]
record = "rec/{{camera}}.mkv"
snapshot = "snap/{{camera}}.jpg"
snapshot_every_s = 1
[[camera]]
name = "aisle"
kind = "file"
uri = "{clip}"
[[camera]]
name = "shop"
kind = "file"
uri = "{shop}"
"#,
        clip = clip.display(),
        shop = common::data("store-aisle.mp4").display()
    );
    std::fs::write(dir.path().join("iobox.toml"), config).unwrap();
    // Both cameras are files: the run ends when both have been processed completely.
    let o = common::iobox(&["run", "--config", "iobox.toml", "--json"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cams = report["cameras"].as_array().unwrap();
    let aisle = cams.iter().find(|c| c["name"] == "aisle").unwrap();
    let shop = cams.iter().find(|c| c["name"] == "shop").unwrap();
    // Files are processed completely (back-pressure, no drops).
    assert_eq!(aisle["frames_processed"], 1394, "{report}");
    assert_eq!(aisle["frames_dropped"], 0);
    assert_eq!(shop["frames_processed"], 67, "{report}");

    // Every processed frame is in the database, which only its owner can read.
    let db = dir.path().join("events.sqlite");
    let conn = iobox::store::open_ro(&db).unwrap();
    let summary = iobox::store::frame_summary(&conn, &db).unwrap();
    let row = |name: &str| summary.iter().find(|s| s.camera == name).unwrap().clone();
    assert_eq!(row("aisle").frames, 1394);
    assert_eq!(row("shop").frames, 67);
    assert!(row("aisle").faces_blurred > 0 && row("shop").faces_blurred > 0, "{summary:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600);

    // The recording decodes with one frame per processed frame; the snapshot exists.
    let (frames, w, h) = iobox::capture::encode::count_frames(&dir.path().join("rec/aisle.mkv")).unwrap();
    assert_eq!((frames, w, h), (1394, 768, 432));
    assert!(dir.path().join("snap/aisle.jpg").is_file());
    assert!(dir.path().join("snap/shop.jpg").is_file());
}

#[test]
fn with_no_config_run_processes_the_bundled_sample() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::iobox(&["run", "--for", "8", "--json"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["cameras"][0]["name"], "sample");
    // Frames processed in 8 s depend on the machine; that the sample was read, blurred and logged does not.
    let cam = &report["cameras"][0];
    assert!(cam["frames_processed"].as_u64().unwrap() > 0 && cam["frames_failed"] == 0, "{report}");
    assert!(cam["error"].is_null(), "{report}");
    assert!(dir.path().join("iobox.sqlite").is_file(), "the default database is created in the working directory");
}
