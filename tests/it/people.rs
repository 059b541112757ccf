//! The person detector on crowded footage with ground truth written down by watching
//! (tests/data/crowd/ground_truth.toml), and the blur's backup between model runs on the bundled clip.

use iobox::anonymize::BlurConfig;
use iobox::capture::{self, Frame, FrameMeta, RgbView};
use iobox::geometry::{BoxInImage, PixelRect};
use iobox::infer::person::{Coverage, PersonBox, PersonConfig, PersonDetector};
use iobox::stop::Stop;
use iobox::testing::RawPixels;
use iobox::track::TrackerConfig;
use iobox::worker::{CameraPerception, Perception, PerceptionConfig, head_region};

use crate::common;

struct GtPerson {
    bbox: BoxInImage,
    clear: bool,
}

fn meta() -> FrameMeta {
    FrameMeta { camera: 0, seq: 0, pts: None, captured: std::time::Duration::ZERO, fps: None }
}

fn crowd_truth() -> Vec<(String, Vec<GtPerson>)> {
    let text = std::fs::read_to_string(common::data("crowd/ground_truth.toml")).unwrap();
    let gt: toml::Value = toml::from_str(&text).unwrap();
    gt["image"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| {
            let people = img["person"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let b: Vec<f32> =
                        p["box"].as_array().unwrap().iter().map(|v| v.as_integer().unwrap() as f32).collect();
                    let flag = |k: &str| p.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
                    GtPerson {
                        bbox: BoxInImage::new(b[0], b[1], b[2], b[3]),
                        clear: !flag("occluded") && !flag("unsure"),
                    }
                })
                .collect();
            (img["file"].as_str().unwrap().to_string(), people)
        })
        .collect()
}

/// The crowd frame scaled by `scale` (Lanczos, as a camera's own scaler would), as a frame.
fn scaled_frame(file: &str, scale: f32) -> Frame {
    let img = image::open(common::data("crowd").join(file)).unwrap().to_rgb8();
    let (w, h) = ((img.width() as f32 * scale).round() as u32, (img.height() as f32 * scale).round() as u32);
    let small = image::imageops::resize(&img, w, h, image::imageops::FilterType::Lanczos3);
    Frame::from_rgb_image(&small, meta())
}

const BANDS: [(f32, f32, &str); 3] =
    [(0.0, 60.0, "under 60 px"), (60.0, 120.0, "60-120 px"), (120.0, f32::MAX, "over 120 px")];

/// Clear people found (IoU >= 0.4, one detection each), per height band: (found, total).
fn recall_by_band(people: &[GtPerson], scale: f32, found: &[PersonBox]) -> [(usize, usize); 3] {
    let mut out = [(0, 0); 3];
    let mut used = vec![false; found.len()];
    for p in people.iter().filter(|p| p.clear) {
        let b = BoxInImage::new(p.bbox.x1 * scale, p.bbox.y1 * scale, p.bbox.x2 * scale, p.bbox.y2 * scale);
        let band = BANDS.iter().position(|&(lo, hi, _)| (lo..hi).contains(&b.height())).unwrap();
        out[band].1 += 1;
        let best = found
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .map(|(i, d)| (d.bbox.iou(&b), i))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((iou, i)) = best
            && iou >= 0.4
        {
            used[i] = true;
            out[band].0 += 1;
        }
    }
    out
}

fn detect_crowd(config: PersonConfig, scale: f32) -> ([(usize, usize); 3], usize) {
    let mut detector = PersonDetector::new(&common::models(), config).unwrap();
    let mut total = [(0, 0); 3];
    let mut most = 0;
    let mut found = Vec::new();
    for (file, people) in crowd_truth() {
        let frame = scaled_frame(&file, scale);
        detector.detect(&frame.raw_view(), &mut found).unwrap();
        most = most.max(found.len());
        for (t, r) in total.iter_mut().zip(recall_by_band(&people, scale, &found)) {
            t.0 += r.0;
            t.1 += r.1;
        }
    }
    (total, most)
}

fn describe(r: &[(usize, usize); 3]) -> String {
    BANDS
        .iter()
        .zip(r)
        .filter(|(_, r)| r.1 > 0)
        .map(|(b, r)| format!("{}: {}/{}", b.2, r.0, r.1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fraction(r: (usize, usize)) -> f64 {
    r.0 as f64 / r.1.max(1) as f64
}

#[test]
fn tiles_find_the_small_people_of_a_crowded_street() {
    // At a third of 1920x1080 (640x360) the 31 clear people of each frame are 39-83 px tall. A frame this
    // small runs whole by default (`tile_above`); here it is tiled on purpose, into two 360x360 squares.
    let scale = 1.0 / 3.0;
    let (tiled, most) = detect_crowd(PersonConfig { tile_above: 0, ..PersonConfig::default() }, scale);
    let (whole, _) = detect_crowd(PersonConfig { tile_px: 0, ..PersonConfig::default() }, scale);
    println!("crowd at 640x360, tiles: {} (most people in one frame: {most})", describe(&tiled));
    println!("crowd at 640x360, whole frame: {}", describe(&whole));
    // Measured: 35/42 under 60 px with tiles, 19/42 with the whole frame; the margin allows a few.
    assert!(fraction(tiled[0]) >= 0.7, "under 60 px: {:?}", tiled[0]);
    assert!(fraction(tiled[1]) >= 0.6, "60-120 px: {:?}", tiled[1]);
    assert!(tiled[0].0 > whole[0].0 + 5, "tiles must find clearly more small people: {tiled:?} vs {whole:?}");
    // No cap on people per frame (MoveNet's is six).
    assert!(most >= 20, "only {most} people in the busiest frame");
}

#[test]
fn the_detector_finds_most_people_at_every_size() {
    let mut by_band = [(0, 0); 3];
    for scale in [1.0, 0.5] {
        let (r, _) = detect_crowd(PersonConfig::default(), scale);
        println!("crowd at scale {scale}: {}", describe(&r));
        for (t, r) in by_band.iter_mut().zip(r) {
            t.0 += r.0;
            t.1 += r.1;
        }
    }
    println!("crowd, scales 1 and 1/2 together: {}", describe(&by_band));
    assert!(fraction(by_band[1]) >= 0.75, "60-120 px: {:?}", by_band[1]);
    assert!(fraction(by_band[2]) >= 0.75, "over 120 px: {:?}", by_band[2]);
}

#[test]
fn after_a_frame_that_shed_load_the_detector_runs_on_the_whole_frame() {
    // A crowded street at 1280x720 (the default tiles it into two 720x720 squares). The person detector is
    // due every 2nd frame; the worker is behind on frame 1 only, so the run on frame 2 covers the whole
    // frame in one model run, and the run on frame 4 is tiled again.
    let file = &crowd_truth()[0].0;
    let frame = scaled_frame(file, 2.0 / 3.0);
    assert_eq!((frame.width(), frame.height()), (1280, 720));
    let mut detector = PersonDetector::new(&common::models(), PersonConfig::default()).unwrap();
    let mut found = Vec::new();
    detector.detect_in(&frame.raw_view(), Coverage::AsConfigured, &mut found).unwrap();
    let tiled = found.len();
    detector.detect_in(&frame.raw_view(), Coverage::WholeFrame, &mut found).unwrap();
    let whole = found.len();
    println!("{file} at 1280x720: {tiled} people tiled, {whole} whole");
    assert!(tiled > whole + 5, "tiles should find clearly more people here: {tiled} vs {whole}");

    let config = PerceptionConfig {
        people_every: 2,
        pose_every: 0,
        emotion_enabled: false,
        small_faces: false,
        ..PerceptionConfig::default()
    };
    let mut perception = Perception::new(&common::models(), config).unwrap();
    let mut cam = CameraPerception::new(BlurConfig::default(), TrackerConfig::default(), None);
    let mut runs = Vec::new();
    for n in 0..5 {
        perception.set_behind(n == 1);
        perception.process(copy(&frame), &mut cam).unwrap();
        if cam.people_ran {
            runs.push((n, cam.people.len()));
        }
    }
    assert_eq!(runs, [(0, tiled), (2, whole), (4, tiled)], "(frame, people) of each detector run");
    assert_eq!(perception.summary().frames_shed, 1);
}

fn detail(view: &RgbView<'_>, r: &PixelRect) -> f64 {
    common::detail(view, r.x, r.y, r.width, r.height)
}

fn covered(r: &PixelRect, regions: &[PixelRect]) -> f64 {
    let mut inside = 0u64;
    for y in r.y..r.y + r.height {
        for x in r.x..r.x + r.width {
            if regions.iter().any(|b| b.contains(x, y)) {
                inside += 1;
            }
        }
    }
    inside as f64 / (r.width as u64 * r.height as u64).max(1) as f64
}

fn copy(frame: &Frame) -> Frame {
    Frame::from_rgb_image(&frame.raw_image(), frame.meta)
}

/// People and pose on every frame: each frame's heads.
fn reference() -> PerceptionConfig {
    PerceptionConfig { people_every: 1, pose_every: 1, emotion_enabled: false, ..PerceptionConfig::default() }
}

#[test]
fn every_head_on_every_frame_is_smoothed_when_the_models_run_every_tenth_frame() {
    // The reference: the person detector on every frame of the raw clip gives each frame's heads. The run
    // under test detects people and pose only every 10th frame with a hold-over of 2: the backup regions
    // must still cover every reference head on the nine frames in between, and smooth it.
    heads_between_runs_are_smoothed(PerceptionConfig { people_every: 10, pose_every: 10, ..reference() }, false);
}

#[test]
fn every_head_on_every_frame_is_smoothed_while_the_worker_sheds_load() {
    // Scheduled every 5th frame, but the worker is always behind: each run is deferred to every 10th frame,
    // past the backup regions' hold of 5; the deferred frames must blur the last runs' heads again.
    let shedding = PerceptionConfig { people_every: 5, pose_every: 5, shed_load: true, ..reference() };
    heads_between_runs_are_smoothed(shedding, true);
}

/// Runs `sparse_config` (whose person detector runs on every 10th frame) beside a reference that detects
/// people on every frame, on the first 330 frames of the sample clip, and asserts that every head the
/// reference tracked at the last sparse run is covered and smoothed on every frame.
fn heads_between_runs_are_smoothed(sparse_config: PerceptionConfig, behind: bool) {
    let reference_config = reference();
    let blur = BlurConfig { hold_frames: 2, ..BlurConfig::default() };
    let mut reference = Perception::new(&common::models(), reference_config).unwrap();
    let mut sparse = Perception::new(&common::models(), sparse_config).unwrap();
    sparse.set_behind(behind);
    let mut ref_cam = CameraPerception::new(blur, TrackerConfig::default(), None);
    let mut cam = CameraPerception::new(blur, TrackerConfig::default(), None);

    capture::init().unwrap();
    let stop = Stop::new();
    let (rx, handle) = capture::open_file(&common::sample_clip(), &stop).unwrap();
    // Frames 0-329 hold the first two visitors, walking in, standing with their backs to the camera, and
    // walking out: faces turn away, heads move.
    // A person who walks in between two runs cannot be known before the next run: only the heads of
    // people the reference already tracked on the frame of the last run count.
    let (mut heads, mut between, mut failures) = (0, 0, Vec::new());
    let mut at_last_run = std::collections::HashSet::new();
    for n in 0..330u32 {
        let Ok(frame) = rx.recv() else { break };
        let raw = copy(&frame);
        reference.process(copy(&frame), &mut ref_cam).unwrap();
        let out = sparse.process(frame, &mut cam).unwrap();
        let (w, h) = (raw.width(), raw.height());
        if n % 10 == 0 {
            at_last_run = ref_cam.people.iter().filter_map(|p| p.track).collect();
        }
        for p in &ref_cam.people {
            if !p.track.as_ref().is_some_and(|t| at_last_run.contains(t)) {
                continue;
            }
            let head = head_region(&p.person.bbox);
            // A box cut by the frame's edge (a person half out of view) has no head where its top is.
            let b = p.person.bbox;
            if head.height() < 16.0 || b.x1 < 2.0 || b.y1 < 2.0 || b.x2 > w as f32 - 2.0 {
                continue;
            }
            let Some(rect) = head.to_pixel_rect(w, h) else { continue };
            heads += 1;
            if n % 10 != 0 {
                between += 1;
            }
            let cov = covered(&rect, cam.anonymizer.last_regions());
            let (before, after) = (detail(&raw.raw_view(), &rect), detail(&out.frame.view(), &rect));
            // Covered, and smoothed unless it was smooth already (hair seen from behind has little detail).
            // The reference region is a generous guess around the head (wall at its corners), and up to 15%
            // of it may be outside the blur, so "smoothed" means less than 60% of the detail left.
            if cov < 0.85 || (before >= 4.0 && after > 0.6 * before) {
                failures.push(format!("frame {n}: head {rect:?} covered {cov:.2}, detail {before:.1} -> {after:.1}"));
            }
        }
    }
    stop.request();
    drop(rx);
    let _ = handle.join();
    println!(
        "{heads} reference heads, {between} of them on frames between model runs; {} not smoothed",
        failures.len()
    );
    for f in failures.iter().take(20) {
        println!("  {f}");
    }
    assert!(between > 100, "the clip should show heads between model runs ({between})");
    assert!(failures.is_empty(), "{} of {heads} heads left sharp", failures.len());
}

#[test]
fn a_person_whose_face_no_model_finds_has_the_head_blurred() {
    // Faces turned off (a score threshold above 1) and no pose: the person detector's head regions alone.
    let config = PerceptionConfig {
        face: iobox::infer::face::FaceConfig { min_score: 1.1, ..Default::default() },
        people_every: 1,
        pose_every: 0,
        emotion_enabled: false,
        ..PerceptionConfig::default()
    };
    let mut perception = Perception::new(&common::models(), config).unwrap();
    let (covered_centres, total, faces) = common::dlib_centres_blurred(&mut perception, |o| o.faces_detected);
    assert_eq!(faces, 0);
    println!("person-box heads alone: {covered_centres}/{total} annotated faces have their centre blurred");
    // Group photos cut off at the chest: boxes without legs put the head region lower than on a standing
    // person, so not every face is caught this way; most are.
    assert!(covered_centres as f64 >= 0.6 * total as f64, "{covered_centres}/{total}");
}

#[test]
fn faces_too_small_for_the_whole_frame_are_found_around_the_people() {
    // Far people: each dlib group photo at 0.3 of its size (faces of 11-33 px) in the middle of an empty
    // 1280x720 frame. The whole-frame face pass sees the frame at 640 px (faces of 5-16 px there); the
    // small-face pass looks again, enlarged, around the heads of the people the person detector found.
    let scale = 0.3;
    let mut photos = Vec::new();
    for xml in ["training.xml", "testing.xml"] {
        for (file, boxes) in common::dlib_boxes(&common::data("dlib_faces").join(xml)) {
            let img = image::open(common::data("dlib_faces").join(&file)).unwrap().to_rgb8();
            let (w, h) = ((img.width() as f32 * scale) as u32, (img.height() as f32 * scale) as u32);
            let small = image::imageops::resize(&img, w, h, image::imageops::FilterType::Lanczos3);
            let mut canvas = image::RgbImage::from_pixel(1280, 720, image::Rgb([120, 120, 120]));
            let (ox, oy) = (500u32, 300u32);
            image::imageops::overlay(&mut canvas, &small, ox as i64, oy as i64);
            let faces: Vec<BoxInImage> = boxes
                .iter()
                .map(|b| {
                    let (x, y) = (ox as f32 + b.left as f32 * scale, oy as f32 + b.top as f32 * scale);
                    BoxInImage::new(x, y, x + b.width as f32 * scale, y + b.height as f32 * scale)
                })
                .collect();
            photos.push((canvas, faces));
        }
    }
    let found = |small_faces: bool| {
        let config = PerceptionConfig {
            people_every: 1,
            pose_every: 0,
            emotion_enabled: false,
            small_faces,
            ..PerceptionConfig::default()
        };
        let mut perception = Perception::new(&common::models(), config).unwrap();
        let (mut hit, mut total, mut smallest) = (0, 0, f32::MAX);
        for (canvas, truth) in &photos {
            let mut cam = CameraPerception::new(
                BlurConfig { hold_frames: 0, ..BlurConfig::default() },
                TrackerConfig::default(),
                None,
            );
            perception.process(Frame::from_rgb_image(canvas, meta()), &mut cam).unwrap();
            for t in truth {
                total += 1;
                if let Some(f) = cam.faces.iter().find(|f| f.face.bbox.iou(t) >= 0.3) {
                    hit += 1;
                    smallest = smallest.min(t.height());
                    let _ = f;
                }
            }
        }
        (hit, total, smallest)
    };
    let (without, total, _) = found(false);
    let (with, _, smallest) = found(true);
    println!(
        "far faces (11-33 px) in 1280x720: {without}/{total} found by the whole-frame pass, {with}/{total} with the small-face pass (smallest found {smallest:.1} px)"
    );
    assert!(with >= without + 5, "the small-face pass must find clearly more faces: {without} -> {with} of {total}");
    assert!(smallest <= 14.0, "faces of about 10 px must be found (smallest {smallest:.1} px)");
}
