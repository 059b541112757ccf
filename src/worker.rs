//! What a worker does to each frame, in order, on the raw frame it alone holds:
//!
//! 1. faces (RetinaFace), every frame;
//! 2. people (NanoDet person detector, every `people_every` frames), tiled so that small people count;
//!    where their faces are too small for step 1, a second face pass on the region around their heads,
//!    enlarged;
//! 3. keypoints (MoveNet MultiPose, every `pose_every` frames, a multiple of `people_every`), matched to
//!    the detector's people: pose adds wrists, ankles and heads, but never decides how many people there
//!    are (MoveNet returns at most six);
//! 4. emotion on the raw faces, aligned by their eyes (only probabilities, or "uncertain", are kept);
//! 5. the blur of faces and of the backup regions: heads the pose model sees that no face box covers,
//!    and the head region of every detected and every tracked person (fail closed: a person whose head
//!    would be at least `head_min_px` tall is never left unblurred because the face detector missed them
//!    or let them go between detector runs). The frame becomes an `AnonymizedFrame`.
//! 6. tracking on the detector's boxes, floor positions and per-track emotion smoothing.
//!
//! No gap between model runs: a backup region found by a model that runs every n-th frame is held for at
//! least n frames (n - 1 frames until the model runs again, plus the anonymizer's own hold-over), so every
//! frame between two runs is covered; see [`PerceptionConfig::backup_hold`].

use std::collections::HashMap;

use serde::Serialize;

use crate::anonymize::{AnonymizedFrame, Anonymizer, BlurConfig, Region};
use crate::behaviour::{Mood, Observation};
use crate::calibration::Calibration;
use crate::capture::Frame;
use crate::geometry::{BoxInImage, PointInImage, PointOnFloor};
use crate::infer::emotion::{EmotionClassifier, EmotionConfig, EmotionProbs, Expression};
use crate::infer::face::{Face, FaceConfig, FaceDetector};
use crate::infer::person::{Coverage, PersonBox, PersonConfig, PersonDetector};
use crate::infer::pose::{self, Keypoint, Person, PoseConfig, PoseEstimator};
use crate::infer::{self, ModelSource};
use crate::stats::Ring;
use crate::track::{Detection, TrackId, TrackState, Tracker, TrackerConfig};

/// Everything a worker needs to know to perceive.
#[derive(Debug, Clone, Copy)]
pub struct PerceptionConfig {
    pub face: FaceConfig,
    pub person: PersonConfig,
    /// Run the person detector (and the tracker) on every n-th frame (1 = every frame); 0 turns people,
    /// tracking and the person-box head backup off (`iobox blur` without `--pose-backup`).
    pub people_every: u32,
    pub pose: PoseConfig,
    /// Run the pose model on every n-th frame, a multiple of `people_every`; 0 turns pose off (people are
    /// still detected and tracked, without wrists, ankles or pose heads).
    pub pose_every: u32,
    pub emotion: EmotionConfig,
    pub emotion_enabled: bool,
    /// A head keypoint counts as visible from this score.
    pub head_keypoint_score: f32,
    /// Ankles count for the ground point from this score.
    pub ankle_score: f32,
    /// A detected person's head region is blurred when no face box covers it and it would be at least
    /// this many pixels tall (smaller heads cannot be recognised). 0 blurs every detected person's head.
    pub head_min_px: f32,
    /// Weight of the newest frame in a track's smoothed emotion (exponential moving average).
    pub emotion_smoothing: f32,
    /// On frames with people whose faces are too small for the whole-frame face pass, look again at the
    /// region around their heads, enlarged (one more face run on those frames).
    pub small_faces: bool,
    /// When the worker falls behind its cameras (see [`Perception::set_behind`]), a due person-detector
    /// run may wait up to `people_every` more frames (pose with it) and expressions are skipped, so that
    /// frames are not dropped; a camera's next detector run after a frame that shed load covers the whole
    /// frame in one model run instead of tiles. Faces are still detected on every frame, and the backup
    /// heads of the last runs are blurred again on every frame where a run is deferred (at most
    /// [`PerceptionConfig::people_gap`] frames between runs).
    pub shed_load: bool,
    pub tracker: TrackerConfig,
}

impl Default for PerceptionConfig {
    fn default() -> Self {
        Self {
            face: FaceConfig::default(),
            person: PersonConfig::default(),
            people_every: 2,
            pose: PoseConfig::default(),
            pose_every: 2,
            emotion: EmotionConfig::default(),
            emotion_enabled: true,
            head_keypoint_score: 0.3,
            ankle_score: 0.3,
            head_min_px: 8.0,
            emotion_smoothing: 0.3,
            small_faces: true,
            shed_load: true,
            tracker: TrackerConfig::default(),
        }
    }
}

impl PerceptionConfig {
    /// Face detection only, as `iobox blur` runs by default.
    pub fn faces_only() -> Self {
        Self { people_every: 0, pose_every: 0, emotion_enabled: false, ..Self::default() }
    }

    /// Frames a backup region found by a model that runs every `every` frames stays blurred: until that
    /// model has run again, whatever `[blur] hold_frames` says.
    pub fn backup_hold(every: u32, hold_frames: u32) -> u32 {
        hold_frames.max(every)
    }

    /// The most frames between two person-detector runs: `people_every`, twice that when load may be shed.
    pub fn people_gap(&self) -> u32 {
        self.people_every * if self.shed_load { 2 } else { 1 }
    }

    /// Whether the person detector runs on a frame `gap` frames after its last run (`u32::MAX` before
    /// the first): on schedule, unless the worker is shedding load and the longest gap is not reached.
    pub fn people_due(&self, gap: u32, shedding: bool) -> bool {
        gap >= self.people_every && !(shedding && self.shed_load && gap < self.people_gap())
    }

    /// Why this combination of cadences cannot run, if it cannot.
    pub fn cadence_problem(&self) -> Option<String> {
        if self.pose_every > 0 && self.people_every == 0 {
            return Some("pose needs the person detector: people.every_n_frames must not be 0".into());
        }
        if self.pose_every > 0 && !self.pose_every.is_multiple_of(self.people_every.max(1)) {
            return Some(format!(
                "pose.every_n_frames ({}) must be a multiple of people.every_n_frames ({}): pose keypoints are matched to the people detected in the same frame",
                self.pose_every, self.people_every
            ));
        }
        None
    }
}

/// Per-stage times of the worker.
#[derive(Debug, Default, Clone)]
pub struct StageTimes {
    pub face: Ring,
    /// Person detection, on frames where it ran (all tiles).
    pub people: Ring,
    pub pose: Ring,
    /// Emotion time of frames with at least one face classified.
    pub emotion: Ring,
    /// Blur time of frames in which something was blurred.
    pub blur: Ring,
    pub track: Ring,
    /// Frames on which load was shed (see [`PerceptionConfig::shed_load`]).
    pub shed: u64,
}

/// A worker's timings: medians per frame of each stage (ms), and the total time spent inside ONNX Runtime.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageSummary {
    pub frames: u64,
    /// Frames on which the worker was behind and shed load (person detector deferred, no expressions).
    pub frames_shed: u64,
    pub face_ms: f64,
    pub people_ms: f64,
    pub pose_ms: f64,
    pub emotion_ms: f64,
    pub blur_ms: f64,
    pub track_ms: f64,
    /// Medians of the models' own `run` calls.
    pub face_run_ms: f64,
    /// One tile's model run.
    pub people_run_ms: f64,
    pub pose_run_ms: f64,
    pub emotion_run_ms: f64,
    /// Sum of every model `run` call: the time the frames would take with nothing but inference.
    pub inference_seconds: f64,
}

/// A face in one frame, with its (unsmoothed) expression when the model looked at it.
#[derive(Debug, Clone, Copy)]
pub struct FaceSeen {
    pub face: Face,
    pub emotion: Option<Expression>,
}

/// A person in one frame (the detector's box, with the pose model's keypoints when it ran and matched),
/// with its anonymous track and floor position.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PersonSeen {
    #[serde(flatten)]
    pub person: Person,
    /// `None` until the tracker confirms the person.
    pub track: Option<TrackId>,
    /// Where the person stands in the image: between the ankles, or the bottom centre of the box.
    pub ground_in_image: PointInImage,
    /// The same on the floor plan, when the camera is calibrated.
    pub floor: Option<PointOnFloor>,
    /// Floor positions of the wrists (for shelf interactions), when visible and calibrated.
    pub left_wrist_floor: Option<PointOnFloor>,
    pub right_wrist_floor: Option<PointOnFloor>,
    /// On frames where the track's face was seen: its smoothed expression, or uncertain.
    pub emotion: Option<Expression>,
}

impl PersonSeen {
    /// What the behaviour stage sees of this person: only a confirmed track on a calibrated floor.
    pub fn observation(&self) -> Option<Observation> {
        Some(Observation {
            track: self.track?,
            ground: self.floor?,
            left_wrist: self.left_wrist_floor,
            right_wrist: self.right_wrist_floor,
            emotion: self.emotion.map(|e| match e {
                Expression::Read(p) => Mood::Read(p),
                Expression::Uncertain => Mood::Uncertain,
            }),
        })
    }
}

/// The models and reused buffers one worker owns.
pub struct Perception {
    config: PerceptionConfig,
    detector: FaceDetector,
    people_model: Option<PersonDetector>,
    pose: Option<PoseEstimator>,
    emotion: Option<EmotionClassifier>,
    faces: Vec<Face>,
    /// The expressions of `faces`, when the model looked at them this frame (else empty).
    emotions: Vec<Expression>,
    face_boxes: Vec<BoxInImage>,
    boxes: Vec<PersonBox>,
    poses: Vec<Person>,
    pose_match: PoseMatch,
    people: Vec<Person>,
    regions: Vec<Region>,
    detections: Vec<Detection>,
    tracks: Vec<TrackState>,
    behind: bool,
    pub times: StageTimes,
}

/// Per-camera state: the anonymizer's hold-over, the tracker, smoothed emotions, the calibration, and the
/// latest frame's observations.
pub struct CameraPerception {
    pub anonymizer: Anonymizer,
    tracker: Tracker,
    frame_no: u64,
    /// Frames since the person detector last ran on this camera (`u32::MAX` before the first run).
    since_people: u32,
    /// Person-detector runs so far (pose runs on every `pose_every / people_every`-th).
    people_runs: u64,
    /// Whether a frame of this camera shed load since the person detector last ran: its next run then
    /// covers the whole frame in one model run instead of tiles, so that a worker behind its cameras
    /// catches up instead of dropping frames.
    shed_since_people: bool,
    /// Backup heads of the last pose run and the last person-detector run, blurred again on frames
    /// where a due detector run is deferred.
    pose_backup: Vec<Region>,
    people_backup: Vec<Region>,
    smoothed: HashMap<TrackId, EmotionProbs>,
    pub calibration: Option<Calibration>,
    /// Faces of the last frame.
    pub faces: Vec<FaceSeen>,
    /// People of the last frame on which the person detector ran (empty on other frames).
    pub people: Vec<PersonSeen>,
    /// Whether the person detector (and tracking) ran on the last frame.
    pub people_ran: bool,
    /// Whether the pose model ran on the last frame.
    pub pose_ran: bool,
    /// Tracks that ended with the last frame.
    pub ended: Vec<TrackId>,
}

impl CameraPerception {
    pub fn new(blur: BlurConfig, tracker: TrackerConfig, calibration: Option<Calibration>) -> Self {
        Self {
            anonymizer: Anonymizer::new(blur),
            tracker: Tracker::new(tracker),
            frame_no: 0,
            since_people: u32::MAX,
            people_runs: 0,
            shed_since_people: false,
            pose_backup: Vec::new(),
            people_backup: Vec::new(),
            smoothed: HashMap::new(),
            calibration,
            faces: Vec::new(),
            people: Vec::new(),
            people_ran: false,
            pose_ran: false,
            ended: Vec::new(),
        }
    }

    /// Ends every live track (end of stream); their ids are returned and forgotten.
    pub fn finish(&mut self) -> Vec<TrackId> {
        let ended = self.tracker.finish();
        for id in &ended {
            self.smoothed.remove(id);
        }
        ended
    }
}

/// The outcome of one frame.
pub struct Processed {
    pub frame: AnonymizedFrame,
    pub faces_detected: usize,
    /// Head regions blurred because the pose model saw a head no face box covered.
    pub heads_added: usize,
    /// Head regions blurred from a detected person's box because neither model found the face.
    pub person_heads_added: usize,
    /// People the detector found (on frames where it ran).
    pub people_detected: usize,
}

/// The head box of a person from its visible head keypoints, or `None` when no head keypoint is visible.
pub fn head_box(person: &Person, min_score: f32) -> Option<BoxInImage> {
    let head = [pose::NOSE, pose::LEFT_EYE, pose::RIGHT_EYE, pose::LEFT_EAR, pose::RIGHT_EAR];
    let (mut x1, mut y1, mut x2, mut y2) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    let mut any = false;
    for p in head.iter().filter_map(|&k| person.keypoint(k, min_score)) {
        any = true;
        x1 = x1.min(p.x);
        y1 = y1.min(p.y);
        x2 = x2.max(p.x);
        y2 = y2.max(p.y);
    }
    if !any {
        return None;
    }
    // Head size from what is visible: the keypoints' own spread, the shoulders, or the body's height.
    let spread = (x2 - x1).max(y2 - y1);
    let shoulders =
        match (person.keypoint(pose::LEFT_SHOULDER, min_score), person.keypoint(pose::RIGHT_SHOULDER, min_score)) {
            (Some(a), Some(b)) => ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt() * 0.7,
            _ => 0.0,
        };
    let body = person.bbox.height() / 7.0;
    let size = (spread * 1.6).max(shoulders).max(body).max(12.0);
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    Some(BoxInImage::new(cx - size / 2.0, cy - size * 0.6, cx + size / 2.0, cy + size * 0.5))
}

/// Where a detected person's head is, from the box alone: the top fifth of the box, as wide as the box
/// but at most 40% of its height. Generous on purpose (it is blurred when no model found the face).
pub fn head_region(bbox: &BoxInImage) -> BoxInImage {
    let h = bbox.height();
    let w = bbox.width().min(0.4 * h).max(0.2 * h);
    let cx = (bbox.x1 + bbox.x2) / 2.0;
    let top = h * 0.2;
    BoxInImage::new(cx - w / 2.0, bbox.y1 - 0.02 * h, cx + w / 2.0, bbox.y1 + top)
}

/// Does any face box cover most of this head?
fn covered(head: &BoxInImage, faces: &[BoxInImage]) -> bool {
    faces.iter().any(|f| f.intersection(head) >= 0.5 * head.area().min(f.area()) || f.contains(head.centre()))
}

/// Buffers for [`match_poses`], reused from frame to frame.
#[derive(Default)]
struct PoseMatch {
    pairs: Vec<(f32, usize, usize)>,
    used: Vec<bool>,
    /// Per detected box: the index of its pose model person, if any.
    of_box: Vec<Option<usize>>,
}

/// The pose model's person that belongs to each detected box (greedy by IoU, at least `min_iou`), as
/// indices into `poses`, in `m.of_box`.
fn match_poses(boxes: &[PersonBox], poses: &[Person], min_iou: f32, m: &mut PoseMatch) {
    m.pairs.clear();
    for (i, b) in boxes.iter().enumerate() {
        for (j, p) in poses.iter().enumerate() {
            let iou = b.bbox.iou(&p.bbox);
            if iou >= min_iou {
                m.pairs.push((iou, i, j));
            }
        }
    }
    m.pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    m.of_box.clear();
    m.of_box.resize(boxes.len(), None);
    m.used.clear();
    m.used.resize(poses.len(), false);
    for &(_, i, j) in &m.pairs {
        if m.of_box[i].is_none() && !m.used[j] {
            m.of_box[i] = Some(j);
            m.used[j] = true;
        }
    }
}

/// A head region smaller than this at the face detector's scale gets the small-face pass (RetinaFace's
/// smallest prior is 16 px).
const SMALL_HEAD_IN_INPUT: f32 = 24.0;
/// Heads smaller than this in the frame are not looked at again (a face of 5 px cannot be recognised).
const SMALL_HEAD_MIN_PX: f32 = 8.0;
/// The small-face pass enlarges its region at most this much.
const ZOOM_MAX: f32 = 3.0;

/// Least IoU between a detected box and MoveNet's box of the same person.
const POSE_MATCH_IOU: f32 = 0.3;
const NO_KEYPOINT: Keypoint = Keypoint { point: PointInImage { x: 0.0, y: 0.0 }, score: 0.0 };

fn ground_point(person: &Person, ankle_score: f32) -> PointInImage {
    match (person.keypoint(pose::LEFT_ANKLE, ankle_score), person.keypoint(pose::RIGHT_ANKLE, ankle_score)) {
        (Some(a), Some(b)) => PointInImage { x: (a.x + b.x) / 2.0, y: a.y.max(b.y) },
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => PointInImage { x: (person.bbox.x1 + person.bbox.x2) / 2.0, y: person.bbox.y2 },
    }
}

impl Perception {
    /// Loads the models this configuration needs.
    pub fn new(models: &ModelSource, config: PerceptionConfig) -> Result<Self, infer::Error> {
        Ok(Self {
            config,
            detector: FaceDetector::new(models, config.face)?,
            people_model: if config.people_every > 0 {
                Some(PersonDetector::new(models, config.person)?)
            } else {
                None
            },
            pose: if config.pose_every > 0 { Some(PoseEstimator::new(models, config.pose)?) } else { None },
            emotion: if config.emotion_enabled { Some(EmotionClassifier::new(models, config.emotion)?) } else { None },
            faces: Vec::new(),
            emotions: Vec::new(),
            face_boxes: Vec::new(),
            boxes: Vec::new(),
            poses: Vec::new(),
            pose_match: PoseMatch::default(),
            people: Vec::new(),
            regions: Vec::new(),
            detections: Vec::new(),
            tracks: Vec::new(),
            behind: false,
            times: StageTimes::default(),
        })
    }

    /// One more face pass over the heads of the people whose faces are too small for the whole-frame
    /// pass (a head region under `SMALL_HEAD_IN_INPUT` pixels at the face detector's scale), on the region
    /// that holds them, enlarged up to `ZOOM_MAX` times within the face detector's usual input size.
    fn small_face_pass(&mut self, view: &crate::capture::RgbView<'_>) -> Result<(), infer::Error> {
        let (fw, fh) = (view.width as f32, view.height as f32);
        let long = self.config.face.input_long_side as f32;
        let scale = long / fw.max(fh);
        let (mut x1, mut y1, mut x2, mut y2, mut smallest) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN, f32::MAX);
        for b in &self.boxes {
            let head = head_region(&b.bbox);
            if head.height() * scale >= SMALL_HEAD_IN_INPUT || head.height() < SMALL_HEAD_MIN_PX {
                continue;
            }
            let grown = head.expanded(0.5);
            (x1, y1, x2, y2) = (x1.min(grown.x1), y1.min(grown.y1), x2.max(grown.x2), y2.max(grown.y2));
            smallest = smallest.min(head.height());
        }
        if smallest == f32::MAX {
            return Ok(());
        }
        let (x1, y1, x2, y2) = (x1.max(0.0), y1.max(0.0), x2.min(fw), y2.min(fh));
        let (rw, rh) = (x2 - x1, y2 - y1);
        let zoom = (SMALL_HEAD_IN_INPUT / smallest).clamp(1.0, ZOOM_MAX);
        let side = (rw.max(rh) * zoom).min(long);
        // Only worth a run when the region is seen larger than in the whole-frame pass.
        if side < rw.max(rh) * scale * 1.25 || side < 64.0 {
            return Ok(());
        }
        let side = ((side / 32.0).round().max(2.0) * 32.0) as u32;
        self.detector.detect_in(view, (x1, y1, rw, rh), side, &mut self.faces)?;
        self.face_boxes.clear();
        self.face_boxes.extend(self.faces.iter().map(|f| f.bbox));
        Ok(())
    }

    /// Tells the worker whether it has fallen behind its cameras (frames are waiting); with
    /// `shed_load`, the next frames then skip what can wait (see [`PerceptionConfig::shed_load`]).
    pub fn set_behind(&mut self, behind: bool) {
        self.behind = behind;
    }

    /// Each model's runs so far and their total time (ms): face, people, pose, emotion (metrics take the
    /// difference after each frame).
    pub fn model_totals(&self) -> [(&'static str, u64, f64); 4] {
        let ring = |r: Option<&crate::stats::Ring>| r.map_or((0, 0.0), |r| (r.count(), r.total_ms()));
        let face = ring(Some(&self.detector.run_time));
        let people = ring(self.people_model.as_ref().map(|p| &p.run_time));
        let pose = ring(self.pose.as_ref().map(|p| &p.run_time));
        let emotion = ring(self.emotion.as_ref().map(|e| &e.run_time));
        [
            ("face", face.0, face.1),
            ("people", people.0, people.1),
            ("pose", pose.0, pose.1),
            ("emotion", emotion.0, emotion.1),
        ]
    }

    pub fn summary(&self) -> StageSummary {
        let pose = self.pose.as_ref().map(|p| &p.run_time);
        let people = self.people_model.as_ref().map(|p| &p.run_time);
        let emotion = self.emotion.as_ref().map(|e| &e.run_time);
        let total = self.detector.run_time.total_ms()
            + people.map_or(0.0, |r| r.total_ms())
            + pose.map_or(0.0, |r| r.total_ms())
            + emotion.map_or(0.0, |r| r.total_ms());
        StageSummary {
            frames: self.times.face.count(),
            frames_shed: self.times.shed,
            face_ms: self.times.face.median_ms(),
            people_ms: self.times.people.median_ms(),
            pose_ms: self.times.pose.median_ms(),
            emotion_ms: self.times.emotion.median_ms(),
            blur_ms: self.times.blur.median_ms(),
            track_ms: self.times.track.median_ms(),
            face_run_ms: self.detector.run_time.median_ms(),
            people_run_ms: people.map_or(0.0, |r| r.median_ms()),
            pose_run_ms: pose.map_or(0.0, |r| r.median_ms()),
            emotion_run_ms: emotion.map_or(0.0, |r| r.median_ms()),
            inference_seconds: total / 1000.0,
        }
    }

    /// Perceives and anonymizes one frame of `cam`. On a model failure the frame is dropped, never passed
    /// on unblurred.
    pub fn process(&mut self, frame: Frame, cam: &mut CameraPerception) -> Result<Processed, infer::Error> {
        let view = frame.view();
        let cfg = self.config;
        // 1. Faces.
        let t = std::time::Instant::now();
        self.detector.detect(&view, &mut self.faces)?;
        self.times.face.push(t.elapsed());
        self.face_boxes.clear();
        self.face_boxes.extend(self.faces.iter().map(|f| f.bbox));

        // 2. People, on detector frames; 3. keypoints on pose frames, matched to them.
        let frame_no = cam.frame_no;
        if frame_no == 0 {
            cam.tracker.set_frames_per_update(cfg.people_every);
        }
        cam.frame_no += 1;
        let shedding = self.behind && cfg.shed_load;
        self.times.shed += u64::from(shedding);
        cam.shed_since_people |= shedding;
        let gap = cam.since_people.saturating_add(1);
        let people_due = self.people_model.is_some() && cfg.people_due(gap, shedding);
        let pose_due = people_due
            && self.pose.is_some()
            && cam.people_runs.is_multiple_of((cfg.pose_every / cfg.people_every.max(1)).max(1) as u64);
        if people_due {
            cam.since_people = 0;
            cam.people_runs += 1;
        } else {
            cam.since_people = gap;
        }
        self.boxes.clear();
        self.poses.clear();
        self.people.clear();
        if people_due {
            let t = std::time::Instant::now();
            let coverage = if cam.shed_since_people { Coverage::WholeFrame } else { Coverage::AsConfigured };
            cam.shed_since_people = false;
            self.people_model.as_mut().expect("people_due implies a model").detect_in(
                &view,
                coverage,
                &mut self.boxes,
            )?;
            self.times.people.push(t.elapsed());
        }
        if pose_due {
            let t = std::time::Instant::now();
            self.pose.as_mut().expect("pose_due implies a model").estimate(&view, &mut self.poses)?;
            self.times.pose.push(t.elapsed());
        }
        // Small faces: where the detector found people whose faces the whole-frame face pass sees too small,
        // the face detector looks again at the region around their heads, enlarged.
        if people_due && cfg.small_faces {
            self.small_face_pass(&view)?;
        }
        match_poses(&self.boxes, &self.poses, POSE_MATCH_IOU, &mut self.pose_match);
        for (b, m) in self.boxes.iter().zip(&self.pose_match.of_box) {
            let keypoints = m.map_or([NO_KEYPOINT; 17], |j| self.poses[j].keypoints);
            self.people.push(Person { bbox: b.bbox, score: b.score, keypoints });
        }
        // Tracking needs only the boxes; it runs before the blur so that the blur can follow the tracks.
        if people_due {
            let t = std::time::Instant::now();
            self.detections.clear();
            self.detections.extend(self.people.iter().map(|p| Detection { bbox: p.bbox, score: p.score }));
            cam.tracker.update(&self.detections, &mut self.tracks);
            self.times.track.push(t.elapsed());
        }

        // 4. Expressions, on the raw faces aligned by their eyes; only probabilities, or "uncertain", are
        //    kept.
        self.emotions.clear();
        if let Some(emotion) = self.emotion.as_mut().filter(|_| !shedding) {
            let t = std::time::Instant::now();
            emotion.classify(&view, &self.faces, &mut self.emotions)?;
            if self.emotions.iter().any(|e| matches!(e, Expression::Read(_))) {
                self.times.emotion.push(t.elapsed());
            }
        }

        // 5. What to blur: faces; heads the pose model saw (every pose model person, matched to a box or
        //    not) that no face covers; the head region of every detected person whose head no face box
        //    or pose head covers.
        let hold = cam.anonymizer.hold_frames();
        self.regions.clear();
        self.regions.extend(self.face_boxes.iter().map(|&bbox| Region { bbox, hold_frames: hold }));
        let pose_hold = PerceptionConfig::backup_hold(cfg.pose_every, hold);
        let people_hold = PerceptionConfig::backup_hold(cfg.people_every, hold);
        // A detector run deferred while shedding load: the backup heads of the last runs are blurred again
        // (held once more from this frame, as large as they have grown while held since that run), so that
        // a deferral never lets them lapse.
        let deferred = self.people_model.is_some() && !people_due && cfg.people_due(gap, false);
        if deferred {
            let again = cam
                .pose_backup
                .iter()
                .chain(&cam.people_backup)
                .map(|r| Region { bbox: Anonymizer::held_after(r.bbox, gap), hold_frames: r.hold_frames });
            self.regions.extend(again);
        }
        let mut heads_added = 0;
        let first_pose_head = self.regions.len();
        for p in &self.poses {
            if let Some(head) = head_box(p, cfg.head_keypoint_score)
                && !covered(&head, &self.face_boxes)
            {
                self.regions.push(Region { bbox: head, hold_frames: pose_hold });
                heads_added += 1;
            }
        }
        let mut person_heads_added = 0;
        let first_person_head = self.regions.len();
        for b in &self.boxes {
            let head = head_region(&b.bbox);
            if head.height() < cfg.head_min_px {
                continue;
            }
            // Blurred even where a face box covers it: the face box is let go after `hold_frames`, the
            // head region only when the detector has run again.
            let found = covered(&head, &self.face_boxes)
                || self.regions[first_pose_head..].iter().any(|r| head.contains(r.bbox.centre()));
            if !found {
                person_heads_added += 1;
            }
            self.regions.push(Region { bbox: head, hold_frames: people_hold });
        }
        // People the tracker follows: the head along the path the tracker expects until the detector runs
        // again (a person walks out of a region held in place), and the head of a tracked person the
        // detector missed this time, where the tracker expects them.
        if people_due {
            for (_, now, ahead) in cam.tracker.live_ahead(1.0) {
                let (h0, h1) = (head_region(&now), head_region(&ahead));
                if h0.height().max(h1.height()) < cfg.head_min_px || !(h1.x2 - h1.x1).is_finite() {
                    continue;
                }
                let path = BoxInImage::new(h0.x1.min(h1.x1), h0.y1.min(h1.y1), h0.x2.max(h1.x2), h0.y2.max(h1.y2));
                self.regions.push(Region { bbox: path, hold_frames: people_hold });
            }
        }

        // What a deferral blurs again: the person heads and paths of the last detector run and the pose
        // heads of the last pose run.
        if pose_due {
            cam.pose_backup.clear();
            cam.pose_backup.extend_from_slice(&self.regions[first_pose_head..first_person_head]);
        }
        if people_due {
            cam.people_backup.clear();
            cam.people_backup.extend_from_slice(&self.regions[first_person_head..]);
        }

        // The blur: from here on only the anonymized frame exists.
        let t = std::time::Instant::now();
        let frame = cam.anonymizer.anonymize_regions(frame, &self.regions);
        if frame.regions_blurred() > 0 {
            self.times.blur.push(t.elapsed());
        }

        // 6. Tracking, floor positions, smoothed emotions.
        cam.faces.clear();
        let emotions = &self.emotions;
        cam.faces.extend(
            self.faces.iter().enumerate().map(|(i, f)| FaceSeen { face: *f, emotion: emotions.get(i).copied() }),
        );
        cam.people.clear();
        cam.ended.clear();
        cam.people_ran = people_due;
        cam.pose_ran = pose_due;
        if people_due {
            cam.ended.extend_from_slice(cam.tracker.ended());
            for id in &cam.ended {
                cam.smoothed.remove(id);
            }
            for (i, person) in self.people.iter().enumerate() {
                let track = self.tracks.iter().find(|t| t.detection == i).map(|t| t.id);
                let ground = ground_point(person, cfg.ankle_score);
                let calib = cam.calibration.as_ref();
                let floor = calib.and_then(|c| c.floor_from_image(ground));
                let wrist = |k: usize| {
                    person.keypoint(k, cfg.ankle_score).and_then(|p| calib.and_then(|c| c.floor_from_image(p)))
                };
                let emotion = track.and_then(|id| {
                    let head = head_box(person, cfg.head_keypoint_score).unwrap_or_else(|| head_region(&person.bbox));
                    let face = self
                        .faces
                        .iter()
                        .zip(&self.emotions)
                        .find_map(|(f, e)| head.expanded(0.25).contains(f.bbox.centre()).then_some(*e));
                    match face {
                        Some(Expression::Read(p)) => {
                            let a = cfg.emotion_smoothing;
                            let s = cam.smoothed.entry(id).or_insert(p);
                            for k in 0..7 {
                                s[k] = (1.0 - a) * s[k] + a * p[k];
                            }
                            Some(Expression::Read(*s))
                        }
                        // Seen, not read: counted as such, and the smoothed read is left as it was.
                        Some(Expression::Uncertain) => Some(Expression::Uncertain),
                        // No face looked at for this person in this frame: nothing to report for this frame.
                        None => None,
                    }
                });
                cam.people.push(PersonSeen {
                    person: *person,
                    track,
                    ground_in_image: ground,
                    floor,
                    left_wrist_floor: wrist(pose::LEFT_WRIST),
                    right_wrist_floor: wrist(pose::RIGHT_WRIST),
                    emotion,
                });
            }
        }
        Ok(Processed {
            frame,
            faces_detected: self.faces.len(),
            heads_added,
            person_heads_added,
            people_detected: self.boxes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Whatever the load, the person detector runs at least every `people_gap()` frames and never
        /// more often than every `people_every`; without load it keeps its schedule.
        #[test]
        fn shedding_never_stretches_the_detector_past_the_held_span(
            every in 1u32..10, shed in any::<bool>(), behind in proptest::collection::vec(any::<bool>(), 1..300)
        ) {
            let cfg = PerceptionConfig { people_every: every, shed_load: shed, ..PerceptionConfig::default() };
            let mut since = u32::MAX;
            let mut runs = Vec::new();
            for (i, &b) in behind.iter().enumerate() {
                let gap = since.saturating_add(1);
                if cfg.people_due(gap, b) { runs.push(i); since = 0; } else { since = gap; }
            }
            prop_assert_eq!(runs.first(), Some(&0));
            for w in runs.windows(2) {
                let gap = (w[1] - w[0]) as u32;
                prop_assert!(gap >= every && gap <= cfg.people_gap(), "gap {} every {}", gap, every);
                // A run later than scheduled only ever follows frames that were all behind.
                prop_assert!(behind[w[0] + every as usize..w[1]].iter().all(|&x| x));
            }
            let last = *runs.last().unwrap();
            prop_assert!((behind.len() - 1 - last) < cfg.people_gap() as usize);
            if !shed {
                prop_assert!(runs.iter().enumerate().all(|(k, &i)| i == k * every as usize));
            }
        }
    }

    use super::*;
    use crate::infer::pose::Keypoint;

    fn person(points: &[(usize, f32, f32)]) -> Person {
        let mut keypoints = [Keypoint { point: PointInImage { x: 0.0, y: 0.0 }, score: 0.0 }; 17];
        for &(k, x, y) in points {
            keypoints[k] = Keypoint { point: PointInImage { x, y }, score: 0.9 };
        }
        Person { bbox: BoxInImage::new(80.0, 80.0, 160.0, 400.0), score: 0.9, keypoints }
    }

    #[test]
    fn a_visible_head_gives_a_box_around_it() {
        let p = person(&[(pose::NOSE, 120.0, 100.0), (pose::LEFT_EYE, 125.0, 95.0), (pose::RIGHT_EYE, 115.0, 95.0)]);
        let h = head_box(&p, 0.3).unwrap();
        assert!(h.contains(PointInImage { x: 120.0, y: 100.0 }));
        assert!(h.width() >= 320.0 / 7.0 - 1.0, "{h:?}");
        assert!(head_box(&person(&[]), 0.3).is_none());
    }

    #[test]
    fn a_person_box_gives_a_head_region_at_its_top() {
        let b = BoxInImage::new(100.0, 50.0, 160.0, 250.0);
        let h = head_region(&b);
        // The top fifth, centred, at least as wide as a head of a fifth of the height.
        assert!(h.y1 <= b.y1 && (h.y2 - (b.y1 + 40.0)).abs() < 1e-3, "{h:?}");
        assert!(h.width() >= 40.0 - 1e-3 && h.width() <= 80.0 + 1e-3, "{h:?}");
        assert!(h.contains(PointInImage { x: 130.0, y: 70.0 }));
    }

    #[test]
    fn poses_match_the_detected_boxes_they_overlap_most() {
        let boxes = [
            PersonBox { bbox: BoxInImage::new(0.0, 0.0, 100.0, 300.0), score: 0.8 },
            PersonBox { bbox: BoxInImage::new(400.0, 0.0, 500.0, 300.0), score: 0.8 },
            PersonBox { bbox: BoxInImage::new(800.0, 0.0, 900.0, 300.0), score: 0.8 },
        ];
        let mut a = person(&[]);
        a.bbox = BoxInImage::new(405.0, 10.0, 505.0, 300.0);
        let mut b = person(&[]);
        b.bbox = BoxInImage::new(5.0, 5.0, 100.0, 290.0);
        let mut far = person(&[]);
        far.bbox = BoxInImage::new(2000.0, 0.0, 2100.0, 300.0);
        let mut m = PoseMatch::default();
        match_poses(&boxes, &[a, b, far], POSE_MATCH_IOU, &mut m);
        assert_eq!(m.of_box, vec![Some(1), Some(0), None]);
        // More people than poses: every person stays, the unmatched ones without keypoints.
        match_poses(&boxes, &[], POSE_MATCH_IOU, &mut m);
        assert_eq!(m.of_box, vec![None, None, None]);
    }

    #[test]
    fn ground_point_prefers_the_ankles() {
        let p = person(&[(pose::LEFT_ANKLE, 100.0, 390.0), (pose::RIGHT_ANKLE, 140.0, 395.0)]);
        assert_eq!(ground_point(&p, 0.3), PointInImage { x: 120.0, y: 395.0 });
        assert_eq!(ground_point(&person(&[]), 0.3), PointInImage { x: 120.0, y: 400.0 });
    }
}
