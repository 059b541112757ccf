//! What a worker does to each frame, in order, on the raw frame it alone holds:
//!
//! 1. faces (RetinaFace);
//! 2. people and keypoints (MoveNet, every `pose_every` frames);
//! 3. emotion on the raw face crops (only probabilities are kept);
//! 4. heads that the pose model sees but no face box covers;
//! 5. the blur of faces and those heads (the frame becomes an `AnonymizedFrame`);
//! 6. tracking, floor positions and per-track emotion smoothing.
//!
//! The face detector and the pose model back each other up: a head with visible nose, eye or ear
//! keypoints is blurred even when the face detector missed it. On frames where pose does not run, the
//! heads it found last stay blurred through the anonymizer's hold-over, so the blur never waits for the
//! pose model.

use std::collections::HashMap;

use serde::Serialize;

use crate::anonymize::{AnonymizedFrame, Anonymizer, BlurConfig};
use crate::behaviour::Observation;
use crate::calibration::Calibration;
use crate::capture::Frame;
use crate::geometry::{BoxInImage, PointInImage, PointOnFloor};
use crate::infer::emotion::{EmotionClassifier, EmotionConfig, EmotionProbs};
use crate::infer::face::{Face, FaceConfig, FaceDetector};
use crate::infer::pose::{self, Person, PoseConfig, PoseEstimator};
use crate::infer::{self, ModelSource};
use crate::stats::Ring;
use crate::track::{Detection, TrackId, TrackState, Tracker, TrackerConfig};

/// Everything a worker needs to know to perceive.
#[derive(Debug, Clone, Copy)]
pub struct PerceptionConfig {
    pub face: FaceConfig,
    pub pose: PoseConfig,
    /// Run the pose model on every n-th frame (1 = every frame); 0 turns pose (and tracking) off.
    pub pose_every: u32,
    pub emotion: EmotionConfig,
    pub emotion_enabled: bool,
    /// A head keypoint counts as visible from this score.
    pub head_keypoint_score: f32,
    /// Ankles count for the ground point from this score.
    pub ankle_score: f32,
    /// Weight of the newest frame in a track's smoothed emotion (exponential moving average).
    pub emotion_smoothing: f32,
    pub tracker: TrackerConfig,
}

impl Default for PerceptionConfig {
    fn default() -> Self {
        Self {
            face: FaceConfig::default(),
            pose: PoseConfig::default(),
            pose_every: 1,
            emotion: EmotionConfig::default(),
            emotion_enabled: true,
            head_keypoint_score: 0.3,
            ankle_score: 0.3,
            emotion_smoothing: 0.3,
            tracker: TrackerConfig::default(),
        }
    }
}

/// Per-stage times of the worker.
#[derive(Debug, Default, Clone)]
pub struct StageTimes {
    pub face: Ring,
    pub pose: Ring,
    /// Emotion time of frames with at least one face classified.
    pub emotion: Ring,
    /// Blur time of frames in which something was blurred.
    pub blur: Ring,
    pub track: Ring,
}

/// A worker's timings: medians per frame of each stage (ms), and the total time spent inside ONNX Runtime.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageSummary {
    pub frames: u64,
    pub face_ms: f64,
    pub pose_ms: f64,
    pub emotion_ms: f64,
    pub blur_ms: f64,
    pub track_ms: f64,
    /// Medians of the models' own `run` calls.
    pub face_run_ms: f64,
    pub pose_run_ms: f64,
    pub emotion_run_ms: f64,
    /// Sum of every model `run` call: the time the frames would take with nothing but inference.
    pub inference_seconds: f64,
}

/// A face in one frame, with its (unsmoothed) expression.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FaceSeen {
    #[serde(flatten)]
    pub face: Face,
    pub emotion: Option<EmotionProbs>,
}

/// A person in one frame, with its anonymous track and floor position.
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
    /// The track's smoothed expression, on frames where its face was read.
    pub emotion: Option<EmotionProbs>,
}

impl PersonSeen {
    /// What the behaviour stage sees of this person: only a confirmed track on a calibrated floor.
    pub fn observation(&self) -> Option<Observation> {
        Some(Observation {
            track: self.track?,
            ground: self.floor?,
            left_wrist: self.left_wrist_floor,
            right_wrist: self.right_wrist_floor,
            emotion: self.emotion,
        })
    }
}

/// The models and reused buffers one worker owns.
pub struct Perception {
    config: PerceptionConfig,
    detector: FaceDetector,
    pose: Option<PoseEstimator>,
    emotion: Option<EmotionClassifier>,
    faces: Vec<Face>,
    emotions: Vec<Option<EmotionProbs>>,
    face_boxes: Vec<BoxInImage>,
    people: Vec<Person>,
    regions: Vec<BoxInImage>,
    detections: Vec<Detection>,
    tracks: Vec<TrackState>,
    pub times: StageTimes,
}

/// Per-camera state: the anonymizer's hold-over, the tracker, smoothed emotions, the calibration, and the
/// latest frame's observations.
pub struct CameraPerception {
    pub anonymizer: Anonymizer,
    tracker: Tracker,
    frame_no: u64,
    smoothed: HashMap<TrackId, EmotionProbs>,
    pub calibration: Option<Calibration>,
    /// Faces of the last frame.
    pub faces: Vec<FaceSeen>,
    /// People of the last frame on which pose ran (empty on other frames).
    pub people: Vec<PersonSeen>,
    /// Whether pose (and tracking) ran on the last frame.
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
            smoothed: HashMap::new(),
            calibration,
            faces: Vec::new(),
            people: Vec::new(),
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

/// Does any face box cover most of this head?
fn covered(head: &BoxInImage, faces: &[BoxInImage]) -> bool {
    faces.iter().any(|f| f.intersection(head) >= 0.5 * head.area().min(f.area()) || f.contains(head.centre()))
}

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
            pose: if config.pose_every > 0 { Some(PoseEstimator::new(models, config.pose)?) } else { None },
            emotion: if config.emotion_enabled { Some(EmotionClassifier::new(models, config.emotion)?) } else { None },
            faces: Vec::new(),
            emotions: Vec::new(),
            face_boxes: Vec::new(),
            people: Vec::new(),
            regions: Vec::new(),
            detections: Vec::new(),
            tracks: Vec::new(),
            times: StageTimes::default(),
        })
    }

    pub fn summary(&self) -> StageSummary {
        let pose = self.pose.as_ref().map(|p| &p.run_time);
        let emotion = self.emotion.as_ref().map(|e| &e.run_time);
        let total = self.detector.run_time.total_ms()
            + pose.map_or(0.0, |r| r.total_ms())
            + emotion.map_or(0.0, |r| r.total_ms());
        StageSummary {
            frames: self.times.face.count(),
            face_ms: self.times.face.median_ms(),
            pose_ms: self.times.pose.median_ms(),
            emotion_ms: self.times.emotion.median_ms(),
            blur_ms: self.times.blur.median_ms(),
            track_ms: self.times.track.median_ms(),
            face_run_ms: self.detector.run_time.median_ms(),
            pose_run_ms: pose.map_or(0.0, |r| r.median_ms()),
            emotion_run_ms: emotion.map_or(0.0, |r| r.median_ms()),
            inference_seconds: total / 1000.0,
        }
    }

    /// Perceives and anonymizes one frame of `cam`. On a model failure the frame is dropped, never passed
    /// on unblurred.
    pub fn process(&mut self, frame: Frame, cam: &mut CameraPerception) -> Result<Processed, infer::Error> {
        let view = frame.view();
        // 1. Faces.
        let t = std::time::Instant::now();
        self.detector.detect(&view, &mut self.faces)?;
        self.times.face.push(t.elapsed());
        self.face_boxes.clear();
        self.face_boxes.extend(self.faces.iter().map(|f| f.bbox));

        // 2. People, on pose frames.
        let pose_due = self.pose.is_some() && cam.frame_no.is_multiple_of(self.config.pose_every.max(1) as u64);
        cam.frame_no += 1;
        self.people.clear();
        if pose_due {
            let t = std::time::Instant::now();
            self.pose.as_mut().expect("pose_due implies a model").estimate(&view, &mut self.people)?;
            self.times.pose.push(t.elapsed());
        }

        // 3. Expressions, on the raw crops; only probabilities are kept.
        self.emotions.clear();
        if let Some(emotion) = self.emotion.as_mut() {
            let t = std::time::Instant::now();
            emotion.classify(&view, &self.face_boxes, &mut self.emotions)?;
            if self.emotions.iter().any(Option::is_some) {
                self.times.emotion.push(t.elapsed());
            }
        } else {
            self.emotions.extend(self.faces.iter().map(|_| None));
        }

        // 4. Heads the face detector missed.
        self.regions.clear();
        self.regions.extend_from_slice(&self.face_boxes);
        let mut heads_added = 0;
        for p in &self.people {
            if let Some(head) = head_box(p, self.config.head_keypoint_score)
                && !covered(&head, &self.face_boxes)
            {
                self.regions.push(head);
                heads_added += 1;
            }
        }

        // 5. The blur: from here on only the anonymized frame exists.
        let t = std::time::Instant::now();
        let frame = cam.anonymizer.anonymize(frame, &self.regions);
        if frame.regions_blurred() > 0 {
            self.times.blur.push(t.elapsed());
        }

        // 6. Tracking, floor positions, smoothed emotions.
        cam.faces.clear();
        cam.faces.extend(self.faces.iter().zip(&self.emotions).map(|(f, e)| FaceSeen { face: *f, emotion: *e }));
        cam.people.clear();
        cam.ended.clear();
        cam.pose_ran = pose_due;
        if pose_due {
            let t = std::time::Instant::now();
            self.detections.clear();
            self.detections.extend(self.people.iter().map(|p| Detection { bbox: p.bbox, score: p.score }));
            cam.tracker.update(&self.detections, &mut self.tracks);
            cam.ended.extend_from_slice(cam.tracker.ended());
            for id in &cam.ended {
                cam.smoothed.remove(id);
            }
            for (i, person) in self.people.iter().enumerate() {
                let track = self.tracks.iter().find(|t| t.detection == i).map(|t| t.id);
                let ground = ground_point(person, self.config.ankle_score);
                let calib = cam.calibration.as_ref();
                let floor = calib.and_then(|c| c.floor_from_image(ground));
                let wrist = |k: usize| {
                    person.keypoint(k, self.config.ankle_score).and_then(|p| calib.and_then(|c| c.floor_from_image(p)))
                };
                let emotion = track.and_then(|id| {
                    let head = head_box(person, self.config.head_keypoint_score);
                    let face = self.faces.iter().zip(&self.emotions).find_map(|(f, e)| {
                        let c = f.bbox.centre();
                        let in_head = head.map_or(
                            person.bbox.contains(c) && c.y < person.bbox.y1 + person.bbox.height() * 0.4,
                            |h| h.expanded(0.25).contains(c),
                        );
                        if in_head { *e } else { None }
                    });
                    match face {
                        Some(p) => {
                            let a = self.config.emotion_smoothing;
                            let s = cam.smoothed.entry(id).or_insert(p);
                            for k in 0..7 {
                                s[k] = (1.0 - a) * s[k] + a * p[k];
                            }
                            Some(*s)
                        }
                        // No face read for this person in this frame: nothing to report for this frame.
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
            self.times.track.push(t.elapsed());
        }
        Ok(Processed { frame, faces_detected: self.faces.len(), heads_added })
    }
}

#[cfg(test)]
mod tests {
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
    fn ground_point_prefers_the_ankles() {
        let p = person(&[(pose::LEFT_ANKLE, 100.0, 390.0), (pose::RIGHT_ANKLE, 140.0, 395.0)]);
        assert_eq!(ground_point(&p, 0.3), PointInImage { x: 120.0, y: 395.0 });
        assert_eq!(ground_point(&person(&[]), 0.3), PointInImage { x: 120.0, y: 400.0 });
    }
}
