//! Perception on real data: pose against COCO keypoints, expressions on the face photos, the pose model
//! backing up the face detector, and tracking on real footage against counts written down by watching it.

use iobox::testing::RawPixels;
use std::collections::HashSet;

use iobox::anonymize::BlurConfig;
use iobox::capture::still;
use iobox::infer::emotion::{EMOTIONS, Expression, top};
use iobox::infer::face::FaceConfig;
use iobox::infer::pose::{PoseConfig, PoseEstimator};
use iobox::jobs::analyze::{AnalyzeJob, Record};
use iobox::stop::Stop;
use iobox::track::TrackerConfig;
use iobox::worker::{CameraPerception, Perception, PerceptionConfig};

use crate::common;

/// PCK tolerance: a keypoint is found when it lies within this fraction of the larger side of the
/// person's annotated box (PCK@0.1 with box normalisation).
const PCK_TOLERANCE: f64 = 0.1;

#[test]
fn pose_finds_most_visible_coco_keypoints_within_a_tenth_of_the_person_size() {
    let gt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::data("coco/test_coco.json")).unwrap()).unwrap();
    let mut pose = PoseEstimator::new(&common::models(), PoseConfig { input_long_side: 512, min_score: 0.2 }).unwrap();
    let (mut visible, mut found, mut people) = (0, 0, 0);
    let mut people_out = Vec::new();
    for image in gt["images"].as_array().unwrap() {
        let frame = still::read(&common::data("coco").join(image["file_name"].as_str().unwrap())).unwrap();
        pose.estimate(&frame.raw_view(), &mut people_out).unwrap();
        let mut used = HashSet::new();
        for ann in gt["annotations"].as_array().unwrap().iter().filter(|a| a["image_id"] == image["id"]) {
            if ann["num_keypoints"].as_u64().unwrap() == 0 {
                continue;
            }
            people += 1;
            let b: Vec<f64> = ann["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let gt_box = iobox::geometry::BoxInImage::from_xywh(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32);
            let kps: Vec<f64> = ann["keypoints"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            // The prediction that overlaps this person most (each prediction used once).
            let best = people_out
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .max_by(|a, b| a.1.bbox.iou(&gt_box).total_cmp(&b.1.bbox.iou(&gt_box)))
                .filter(|(_, p)| p.bbox.iou(&gt_box) > 0.1);
            let tol = PCK_TOLERANCE * b[2].max(b[3]);
            for k in 0..17 {
                if kps[k * 3 + 2] < 1.0 {
                    continue;
                }
                visible += 1;
                if let Some((_, p)) = best {
                    let kp = &p.keypoints[k];
                    let d = ((kp.point.x as f64 - kps[k * 3]).powi(2) + (kp.point.y as f64 - kps[k * 3 + 1]).powi(2))
                        .sqrt();
                    if kp.score >= 0.2 && d <= tol {
                        found += 1;
                    }
                }
            }
            if let Some((i, _)) = best {
                used.insert(i);
            }
        }
    }
    let share = found as f64 / visible as f64;
    println!(
        "pose, COCO test images: {found}/{visible} labelled keypoints of {people} people within {PCK_TOLERANCE} of the box size = {share:.3}"
    );
    assert_eq!(people, 12, "12 of the 14 annotated people have keypoints");
    assert!(share >= 0.80, "PCK@0.1 {share:.3}");
}

#[derive(serde::Deserialize)]
struct LabelledFace {
    image: String,
    x: f32,
    y: f32,
    expression: String,
}

/// The labelled faces of tests/data/expressions/labels.toml (how they were labelled: the file's header).
fn labelled_faces() -> Vec<LabelledFace> {
    #[derive(serde::Deserialize)]
    struct File {
        face: Vec<LabelledFace>,
    }
    let text = std::fs::read_to_string(common::data("expressions/labels.toml")).unwrap();
    toml::from_str::<File>(&text).unwrap().face
}

/// On 38 faces labelled by watching (28 smiling, 10 neutral; 14 more unclear ones not scored), each
/// face is read right or called uncertain: measured 32 read, 31 of them right (the one wrong: a neutral
/// face read as fear), 6 uncertain, all of them neutral; before alignment and the uncertainty rules every
/// face was read and 32 of 38 were right (3 neutral faces read as happy). Neither smiles nor straight faces
/// are turned into the other.
#[test]
fn labelled_faces_are_read_right_or_called_uncertain() {
    let mut perception =
        Perception::new(&common::models(), PerceptionConfig { pose_every: 0, ..PerceptionConfig::default() }).unwrap();
    let faces = labelled_faces();
    let (mut scored, mut read, mut right, mut uncertain) = (0, 0, 0, 0);
    let mut confusion: std::collections::BTreeMap<(String, &str), u32> = Default::default();
    for image in faces.iter().map(|f| f.image.as_str()).collect::<std::collections::BTreeSet<_>>() {
        let mut cam = CameraPerception::new(BlurConfig::default(), TrackerConfig::default(), None);
        perception.process(still::read(&common::data(image)).unwrap(), &mut cam).unwrap();
        for f in faces.iter().filter(|f| f.image == image && f.expression != "unclear") {
            scored += 1;
            let point = iobox::geometry::PointInImage { x: f.x, y: f.y };
            let seen = cam.faces.iter().find(|s| s.face.bbox.contains(point));
            let seen = seen.unwrap_or_else(|| panic!("no face found at {},{} in {image}", f.x, f.y));
            let said = match seen.emotion.expect("expressions are on") {
                Expression::Read(p) => {
                    read += 1;
                    let said = EMOTIONS[top(&p)];
                    right += usize::from(said == f.expression);
                    said
                }
                Expression::Uncertain => {
                    uncertain += 1;
                    "uncertain"
                }
            };
            *confusion.entry((f.expression.clone(), said)).or_default() += 1;
        }
    }
    println!("expressions, labelled faces: {scored} scored, {read} read, {right} right, {uncertain} uncertain");
    println!("  (labelled, said): {confusion:?}");
    assert_eq!(scored, 38, "the labelled set");
    assert_eq!(read + uncertain, scored);
    assert!(read >= 28, "{read} of {scored} faces read");
    assert!(right as f64 >= 0.9 * read as f64, "{right} of {read} read right");
    let said = |label: &str, as_: &str| confusion.get(&(label.to_string(), as_)).copied().unwrap_or(0);
    assert!(said("happy", "happy") >= 25, "smiles read as happy: {confusion:?}");
    assert_eq!(said("neutral", "happy"), 0, "no straight face read as a smile: {confusion:?}");
    assert!(
        confusion.iter().filter(|((l, s), _)| l == "happy" && *s != "happy" && *s != "uncertain").count() == 0,
        "no smile read as another expression: {confusion:?}"
    );
}

/// Faces the detector is not sure of, too small, turned away or too tilted are uncertain, never read: on
/// the bundled sample the faces found are seen from above or behind (18 of them looked at: backs of heads,
/// a head turned away, the floor, the wall; a person reads no expression there), and none is read.
#[test]
fn faces_seen_from_above_on_the_sample_are_uncertain() {
    let mut seen = 0;
    let mut read = 0;
    let job = AnalyzeJob {
        input: common::sample_clip(),
        models: common::models(),
        perception: PerceptionConfig::default(),
        blur: BlurConfig::default(),
        calibration: None,
    };
    job.run(&Stop::new(), |record| {
        if let Record::Frame(f) = record {
            seen += f.faces.len();
            read += f.faces.iter().filter(|x| x.expression == Some("read")).count();
        }
    })
    .unwrap();
    println!("expressions, sample clip: {seen} faces found, {read} read");
    assert!(seen >= 50, "the sample's faces are found (and blurred): {seen}");
    assert_eq!(read, 0);
}

#[test]
fn the_pose_model_alone_still_blurs_most_faces_when_the_face_detector_sees_none() {
    // A face detector that finds nothing (a score threshold above 1): the heads the pose model sees
    // are still blurred. Coverage as in the dlib recall test.
    let config = PerceptionConfig {
        face: FaceConfig { min_score: 1.1, ..FaceConfig::default() },
        pose: PoseConfig { input_long_side: 512, min_score: 0.2 },
        emotion_enabled: false,
        ..PerceptionConfig::default()
    };
    let mut perception = Perception::new(&common::models(), config).unwrap();
    let (covered, total, heads) = common::dlib_centres_blurred(&mut perception, |o| o.heads_added);
    println!("pose-only head blur: {covered}/{total} annotated faces have their centre blurred ({heads} head regions)");
    // MoveNet reports at most six people per frame and these are group photos of up to seven, many cut off
    // at the chest: the backup catches most faces, not all (measured: 28 of 43).
    assert!(covered as f64 >= 0.6 * total as f64, "{covered}/{total}");
}

fn confirmed_tracks(file: &std::path::Path) -> (usize, u64) {
    let job = AnalyzeJob {
        input: file.to_path_buf(),
        models: common::models(),
        perception: PerceptionConfig { emotion_enabled: false, ..PerceptionConfig::default() },
        blur: BlurConfig::default(),
        calibration: None,
    };
    let mut ids = HashSet::new();
    let frames = job
        .run(&Stop::new(), |r| {
            if let Record::Frame(f) = r {
                ids.extend(f.people.iter().filter_map(|p| p.track.clone()));
            }
        })
        .unwrap();
    (ids.len(), frames)
}

fn ground_truth_people(section: &str) -> usize {
    let gt: toml::Value = toml::from_str(&std::fs::read_to_string(common::data("ground_truth.toml")).unwrap()).unwrap();
    gt[section]["people"].as_integer().unwrap() as usize
}

/// Confirmed tracks may differ from the people counted by eye by this many, either way: a person lost
/// behind another can come back with a new id (one more), and a person who walks in behind another and
/// takes over their box can continue that person's track (an id swap: one fewer). Both happen in the
/// store-aisle clip, where the third shopper walks in right behind the woman in teal.
const TRACK_MARGIN: usize = 1;

#[test]
fn tracking_the_sample_clip_gives_one_track_per_person() {
    let people = ground_truth_people("one-by-one-person-detection");
    let (tracks, frames) = confirmed_tracks(&common::sample_clip());
    println!("one-by-one clip: {tracks} confirmed tracks over {frames} frames; {people} people by eye");
    assert!((people - TRACK_MARGIN..=people + TRACK_MARGIN).contains(&tracks), "{tracks} tracks for {people} people");
}

#[test]
fn tracking_the_store_aisle_gives_one_track_per_shopper() {
    let people = ground_truth_people("store-aisle");
    let (tracks, frames) = confirmed_tracks(&common::data("store-aisle.mp4"));
    println!("store aisle: {tracks} confirmed tracks over {frames} frames; {people} people by eye");
    assert!((people - TRACK_MARGIN..=people + TRACK_MARGIN).contains(&tracks), "{tracks} tracks for {people} people");
}
