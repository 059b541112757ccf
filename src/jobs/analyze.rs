//! `iobox analyze IMAGE_OR_VIDEO [--calibration FILE] --json`: what the models see, frame by frame.
//!
//! One JSON object per frame (JSON Lines): faces with score and expression, people with 17 keypoints,
//! anonymous track ids and floor positions. Pixels never appear in the output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::anonymize::BlurConfig;
use crate::calibration::Calibration;
use crate::capture::{self, still};
use crate::geometry::{BoxInImage, PointInImage, PointOnFloor};
use crate::infer::ModelSource;
use crate::infer::emotion::{EMOTIONS, EmotionProbs, Expression};
use crate::infer::pose::KEYPOINTS;
use crate::stop::Stop;
use crate::worker::{CameraPerception, Perception, PerceptionConfig};

use super::JobError;

#[derive(Debug, Clone, Serialize)]
pub struct FaceJson {
    #[serde(rename = "box")]
    pub bbox: BoxInImage,
    pub score: f32,
    /// `"read"`, `"uncertain"` (too small, turned away or unclear: see `infer::emotion`), or absent
    /// when expressions are off.
    pub expression: Option<&'static str>,
    /// Class probabilities, when the face was read.
    pub emotion: Option<BTreeMap<&'static str, f32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeypointJson {
    pub name: &'static str,
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonJson {
    #[serde(rename = "box")]
    pub bbox: BoxInImage,
    pub score: f32,
    pub keypoints: Vec<KeypointJson>,
    /// Anonymous id, random per run; absent until the tracker confirms the person.
    pub track: Option<String>,
    pub ground_in_image: PointInImage,
    /// Metres on the floor plan, when a calibration was given.
    pub floor: Option<PointOnFloor>,
    /// `"read"` or `"uncertain"` on frames where the track's face was seen.
    pub expression: Option<&'static str>,
    /// The track's smoothed expression, on frames where its face was read.
    pub emotion: Option<BTreeMap<&'static str, f32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameJson {
    pub frame: u64,
    pub pts_ms: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceJson>,
    /// People, on frames where the pose model ran.
    pub people: Vec<PersonJson>,
    /// Tracks that ended with this frame.
    pub ended_tracks: Vec<String>,
}

/// One line of `iobox analyze` output.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Frame(FrameJson),
    /// After the last frame: how many frames, and the tracks still live at the end of the stream.
    End {
        frames: u64,
        ended_tracks: Vec<String>,
    },
}

fn expression_word(e: &Expression) -> &'static str {
    match e {
        Expression::Read(_) => "read",
        Expression::Uncertain => "uncertain",
    }
}

fn emotion_map(p: &EmotionProbs) -> BTreeMap<&'static str, f32> {
    EMOTIONS.iter().copied().zip(p.iter().copied()).collect()
}

pub struct AnalyzeJob {
    pub input: PathBuf,
    pub models: ModelSource,
    pub perception: PerceptionConfig,
    pub blur: BlurConfig,
    pub calibration: Option<Calibration>,
}

impl AnalyzeJob {
    /// Runs over every frame, calling `each` with its description. Returns the number of frames.
    pub fn run(self, stop: &Stop, mut each: impl FnMut(Record)) -> Result<u64, JobError> {
        if !self.input.exists() {
            return Err(capture::Error::FileNotFound { path: self.input.clone() }.into());
        }
        let mut perception = Perception::new(&self.models, self.perception)?;
        let mut cam = CameraPerception::new(self.blur, self.perception.tracker, self.calibration);
        let mut n = 0u64;
        let mut describe = |perception: &mut Perception, cam: &mut CameraPerception, frame: capture::Frame| {
            let (width, height, pts) = (frame.width(), frame.height(), frame.meta.pts);
            perception.process(frame, cam).map(|_| {
                let json = FrameJson {
                    frame: n,
                    pts_ms: pts.map(|p| p.as_millis() as u64),
                    width,
                    height,
                    faces: cam
                        .faces
                        .iter()
                        .map(|f| FaceJson {
                            bbox: f.face.bbox,
                            score: f.face.score,
                            expression: f.emotion.as_ref().map(expression_word),
                            emotion: f.emotion.as_ref().and_then(Expression::probabilities).map(emotion_map),
                        })
                        .collect(),
                    people: cam
                        .people
                        .iter()
                        .map(|p| PersonJson {
                            bbox: p.person.bbox,
                            score: p.person.score,
                            keypoints: p
                                .person
                                .keypoints
                                .iter()
                                .zip(KEYPOINTS)
                                .map(|(k, name)| KeypointJson { name, x: k.point.x, y: k.point.y, score: k.score })
                                .collect(),
                            track: p.track.map(|t| t.to_string()),
                            ground_in_image: p.ground_in_image,
                            floor: p.floor,
                            expression: p.emotion.as_ref().map(expression_word),
                            emotion: p.emotion.as_ref().and_then(Expression::probabilities).map(emotion_map),
                        })
                        .collect(),
                    ended_tracks: cam.ended.iter().map(|t| t.to_string()).collect(),
                };
                n += 1;
                json
            })
        };
        if still::is_image_path(&self.input) {
            each(Record::Frame(describe(&mut perception, &mut cam, still::read(&self.input)?)?));
            each(Record::End { frames: 1, ended_tracks: cam.finish().iter().map(|t| t.to_string()).collect() });
            return Ok(1);
        }
        let (rx, camera) = capture::open_file(&self.input, stop)?;
        let mut failure = None;
        while let Ok(frame) = rx.recv() {
            if failure.is_some() {
                continue;
            }
            match describe(&mut perception, &mut cam, frame) {
                Ok(json) => each(Record::Frame(json)),
                Err(e) => {
                    failure = Some(e);
                    stop.request();
                }
            }
        }
        camera.join()?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let frames = n;
        each(Record::End { frames, ended_tracks: cam.finish().iter().map(|t| t.to_string()).collect() });
        Ok(frames)
    }
}
