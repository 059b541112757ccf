//! Calibration from the integrator's side: `iobox calibrate check` and `iobox calibrate overlay` on the
//! worked example, and broken files named clearly. (The fit itself, synthetic-camera round trips and every
//! malformed case are unit- and property-tested in src/calibration.rs.)

use iobox::testing::RawPixels;
use std::time::Duration;

use iobox::worker::PerceptionConfig;

use crate::common;

#[test]
fn check_prints_the_fit_and_each_point() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::iobox(
        &["calibrate", "check", common::root().join("calibration/sample.toml").to_str().unwrap()],
        dir.path(),
    );
    let t = common::text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("RMS") && t.contains("inlier"), "{t}");
    assert_eq!(t.lines().filter(|l| l.trim_end().ends_with("inlier")).count(), 8, "{t}");
}

#[test]
fn check_names_the_field_of_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(common::root().join("calibration/sample.toml")).unwrap();
    let cases = [
        // A point outside the 768x432 image.
        ("image = [764.0, 251.0]", "image = [790.0, 251.0]", "points[1].image"),
        // The same image point twice.
        ("image = [524.0, 260.0]", "image = [4.0, 248.0]", "points[2].image"),
        // A zone whose edges cross.
        (
            "polygon = [[2.80, 0.50], [3.80, 0.50], [3.80, 1.60], [2.80, 1.60]]",
            "polygon = [[2.80, 0.50], [3.80, 1.60], [3.80, 0.50], [2.80, 1.60]]",
            "zones[0].polygon",
        ),
        // A line of zero length.
        ("to = [4.60, 1.65]", "to = [1.40, 1.65]", "lines[0]"),
        // A typo in a key.
        ("in_side = \"left\"", "inside = \"left\"", "inside"),
    ];
    for (from, to, field) in cases {
        assert!(good.contains(from), "{from}");
        let path = dir.path().join("cam.toml");
        std::fs::write(&path, good.replacen(from, to, 1)).unwrap();
        let o = common::iobox(&["calibrate", "check", "cam.toml"], dir.path());
        let t = common::text(&o);
        assert_eq!(o.status.code(), Some(1), "{field}: {t}");
        assert!(t.contains("cam.toml") && t.contains(field), "expected {field:?} in: {t}");
    }
}

#[test]
fn overlay_draws_on_the_anonymized_frame_and_on_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cal = common::root().join("calibration/sample.toml");
    let out = dir.path().join("overlay.png");
    let o = common::iobox(
        &[
            "calibrate",
            "overlay",
            cal.to_str().unwrap(),
            "--frame",
            common::sample_clip().to_str().unwrap(),
            "--at",
            "12",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let camera = image::open(&out).unwrap().to_rgb8();
    let plan = image::open(dir.path().join("overlay-plan.png")).unwrap().to_rgb8();
    assert_eq!(camera.dimensions(), (768, 432));
    assert_eq!(plan.dimensions(), image::image_dimensions(common::root().join("calibration/site-plan.png")).unwrap());

    // The picture was drawn over the blurred frame: where the person's head is, it matches the anonymized
    // frame and not the raw one.
    let frame = iobox::jobs::calibrate::anonymized_frame(
        &common::sample_clip(),
        Duration::from_secs(12),
        &common::models(),
        PerceptionConfig::default(),
    )
    .unwrap();
    assert!(frame.regions_blurred() >= 1, "the person at the table has a blurred head");
    let blurred = frame.view();
    // The raw frame at 12 s, decoded the same way, for comparison.
    let raw = raw_frame_at(12.0);
    let (mut d_blurred, mut d_raw, mut n) = (0f64, 0f64, 0f64);
    for y in 40..90 {
        for x in 400..480 {
            let c = camera.get_pixel(x, y).0;
            let b = blurred.pixel(x, y);
            let r = raw.raw_view().pixel(x, y);
            for k in 0..3 {
                d_blurred += (c[k] as f64 - b[k] as f64).abs();
                d_raw += (c[k] as f64 - r[k] as f64).abs();
            }
            n += 3.0;
        }
    }
    println!(
        "head region: mean difference to the blurred frame {:.1}, to the raw frame {:.1}",
        d_blurred / n,
        d_raw / n
    );
    assert!(d_blurred / n < 0.5 * (d_raw / n), "the overlay is built on the anonymized frame");
}

fn raw_frame_at(seconds: f64) -> iobox::capture::Frame {
    let stop = iobox::stop::Stop::new();
    let (rx, cam) = iobox::capture::open_file(&common::sample_clip(), &stop).unwrap();
    let mut chosen = None;
    while let Ok(f) = rx.recv() {
        if chosen.is_none() && f.meta.pts.unwrap() >= Duration::from_secs_f64(seconds) {
            chosen = Some(f);
            stop.request();
        }
    }
    cam.join().unwrap();
    chosen.unwrap()
}
