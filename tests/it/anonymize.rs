//! Face blurring on real photos and the bundled clip.

use iobox::anonymize::{BlurConfig, BlurMethod};
use iobox::capture::{RgbView, still};
use iobox::geometry::{BoxInImage, PixelRect};
use iobox::testing::RawPixels;
use iobox::track::TrackerConfig;
use iobox::worker::{CameraPerception, Perception, PerceptionConfig};

use crate::common::{self, GtBox};

/// The face detector alone (as `iobox blur` without --pose-backup).
fn faces_only() -> Perception {
    Perception::new(
        &common::models(),
        PerceptionConfig { pose_every: 0, emotion_enabled: false, ..PerceptionConfig::default() },
    )
    .unwrap()
}

fn camera(blur: BlurConfig) -> CameraPerception {
    CameraPerception::new(blur, TrackerConfig::default(), None)
}

/// Mean absolute Laplacian (detail) of the green channel inside a box.
fn detail(view: &RgbView<'_>, b: &GtBox) -> f64 {
    common::detail(view, b.left, b.top, b.width, b.height)
}

fn distinct_colours(view: &RgbView<'_>, b: &GtBox) -> usize {
    let mut seen = std::collections::HashSet::new();
    for y in b.top..(b.top + b.height).min(view.height) {
        for x in b.left..(b.left + b.width).min(view.width) {
            seen.insert(view.pixel(x, y));
        }
    }
    seen.len()
}

/// Fraction of the box's pixels inside the union of `regions`.
fn coverage(b: &GtBox, regions: &[PixelRect]) -> f64 {
    let mut covered = 0u64;
    for y in b.top..b.top + b.height {
        for x in b.left..b.left + b.width {
            if regions.iter().any(|r| r.contains(x, y)) {
                covered += 1;
            }
        }
    }
    covered as f64 / (b.width * b.height) as f64
}

#[test]
fn every_annotated_face_in_the_dlib_set_is_blurred() {
    let mut perception = faces_only();
    let mut total = 0;
    let mut blurred = 0;
    let mut misses = Vec::new();
    for xml in ["training.xml", "testing.xml"] {
        for (file, boxes) in common::dlib_boxes(&common::data("dlib_faces").join(xml)) {
            let path = common::data("dlib_faces").join(&file);
            let original = still::read(&path).unwrap();
            let mut cam = camera(BlurConfig { hold_frames: 0, ..BlurConfig::default() });
            let out = perception.process(still::read(&path).unwrap(), &mut cam).unwrap();
            for b in &boxes {
                total += 1;
                let cov = coverage(b, cam.anonymizer.last_regions());
                let before = detail(&original.raw_view(), b);
                let after = detail(&out.frame.view(), b);
                // Covered and really smoothed: most of the face's fine detail is gone.
                if cov >= 0.9 && after < 0.35 * before {
                    blurred += 1;
                } else {
                    misses.push(format!("{file} {b:?}: coverage {cov:.2}, detail {before:.1} -> {after:.1}"));
                }
            }
        }
    }
    let recall = blurred as f64 / total as f64;
    println!("face-blur recall on the dlib set: {blurred}/{total} = {recall:.3}");
    for m in &misses {
        println!("  missed: {m}");
    }
    assert_eq!(total, 43, "the dlib set has 43 annotated faces");
    assert_eq!(blurred, 43, "every annotated face must be blurred: {misses:#?}");
}

#[test]
fn a_photo_without_faces_is_left_unchanged() {
    let mut perception = faces_only();
    let path = common::data("empty_room.jpg");
    let original = still::read(&path).unwrap();
    let mut cam = camera(BlurConfig::default());
    let out = perception.process(still::read(&path).unwrap(), &mut cam).unwrap();
    assert_eq!(out.faces_detected, 0);
    assert_eq!(out.frame.regions_blurred(), 0);
    let (a, b) = (original.raw_view(), out.frame.view());
    for y in 0..a.height {
        assert_eq!(a.row(y), b.row(y), "row {y} changed");
    }
}

#[test]
fn a_face_stays_blurred_for_the_hold_over_after_the_detector_misses_it() {
    let path = common::data("dlib_faces/2008_002506.jpg");
    let mut perception = faces_only();
    let mut cam = camera(BlurConfig { hold_frames: 2, ..BlurConfig::default() });
    // Frame 0: the detector sees the faces.
    let first = perception.process(still::read(&path).unwrap(), &mut cam).unwrap();
    assert!(first.faces_detected >= 3);
    let faces: Vec<BoxInImage> = cam.faces.iter().map(|f| f.face.bbox).collect();
    let mut anonymizer = cam.anonymizer;
    let original = still::read(&path).unwrap();
    // Frames 1..=3: the detector "misses" (no detections passed in).
    for frame_no in 1..=3 {
        let out = iobox::testing::anonymize(&mut anonymizer, still::read(&path).unwrap(), &[]);
        for f in &faces {
            let b = GtBox { left: f.x1 as u32, top: f.y1 as u32, width: f.width() as u32, height: f.height() as u32 };
            let (before, after) = (detail(&original.raw_view(), &b), detail(&out.view(), &b));
            if frame_no <= 2 {
                assert!(after < 0.35 * before, "frame {frame_no}: held face not blurred ({before:.1} -> {after:.1})");
            } else {
                assert_eq!(after, before, "frame {frame_no}: hold-over should have expired");
            }
        }
    }
}

#[test]
fn pixelate_and_solid_also_cover_every_face() {
    let path = common::data("dlib_faces/2008_002470.jpg");
    let boxes = &common::dlib_boxes(&common::data("dlib_faces/testing.xml"))
        .into_iter()
        .find(|(f, _)| f == "2008_002470.jpg")
        .unwrap()
        .1;
    let original = still::read(&path).unwrap();
    for method in [BlurMethod::Pixelate, BlurMethod::Solid] {
        let mut perception = faces_only();
        let mut cam = camera(BlurConfig { method, ..BlurConfig::default() });
        let out = perception.process(still::read(&path).unwrap(), &mut cam).unwrap();
        for b in boxes {
            assert!(coverage(b, cam.anonymizer.last_regions()) >= 0.9, "{method:?} {b:?}");
            // Flat blocks (or one flat fill) leave only a handful of colours where the face was.
            let before = distinct_colours(&original.raw_view(), b);
            let after = distinct_colours(&out.frame.view(), b);
            let limit = if method == BlurMethod::Solid { 1 } else { 25 };
            assert!(after <= limit && before >= 20 * after, "{method:?} {b:?}: {before} -> {after} colours");
        }
    }
}

#[test]
fn the_bundled_clip_blurs_end_to_end_with_the_same_frame_count_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blurred.mp4");
    let o =
        common::iobox(&["blur", common::sample_clip().to_str().unwrap(), out.to_str().unwrap(), "--json"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (in_frames, in_w, in_h) = iobox::capture::encode::count_frames(&common::sample_clip()).unwrap();
    let (out_frames, out_w, out_h) = iobox::capture::encode::count_frames(&out).unwrap();
    println!("input {in_frames} frames {in_w}x{in_h}; output {out_frames} frames {out_w}x{out_h}; report {report}");
    assert_eq!(in_frames, 1394);
    assert_eq!(report["frames"], in_frames);
    assert_eq!((out_frames, out_w, out_h), (in_frames, in_w, in_h));
    assert!(report["faces_detected"].as_u64().unwrap() > 0, "people in the clip show their faces");
}
