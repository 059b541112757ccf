//! MoveNet MultiPose Lightning: up to six people per frame, 17 COCO keypoints each.

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use super::face::input_size;
use super::resize::Bilinear;
use super::{ModelKind, ModelSource, Result, run_err};
use crate::capture::RgbView;
use crate::geometry::{BoxInImage, PointInImage};

/// COCO-17 keypoint order.
pub const KEYPOINTS: [&str; 17] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

pub const NOSE: usize = 0;
pub const LEFT_EYE: usize = 1;
pub const RIGHT_EYE: usize = 2;
pub const LEFT_EAR: usize = 3;
pub const RIGHT_EAR: usize = 4;
pub const LEFT_SHOULDER: usize = 5;
pub const RIGHT_SHOULDER: usize = 6;
pub const LEFT_WRIST: usize = 9;
pub const RIGHT_WRIST: usize = 10;
pub const LEFT_ANKLE: usize = 15;
pub const RIGHT_ANKLE: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct PoseConfig {
    /// The frame is resized so that its longer side is this many pixels (multiple of 32). 256 suits people
    /// that fill a good part of the frame; 384-512 finds smaller, more distant people.
    pub input_long_side: u32,
    /// Minimum person score (0..1). Low, so the tracker's second stage sees partly hidden people; the
    /// tracker decides what counts.
    pub min_score: f32,
}

impl Default for PoseConfig {
    fn default() -> Self {
        Self { input_long_side: 256, min_score: 0.15 }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Keypoint {
    #[serde(flatten)]
    pub point: PointInImage,
    pub score: f32,
}

/// One person, in frame pixels.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Person {
    #[serde(rename = "box")]
    pub bbox: BoxInImage,
    pub score: f32,
    pub keypoints: [Keypoint; 17],
}

impl Person {
    /// The keypoint if its score reaches `min_score`.
    pub fn keypoint(&self, index: usize, min_score: f32) -> Option<PointInImage> {
        let k = &self.keypoints[index];
        (k.score >= min_score).then_some(k.point)
    }
}

pub struct PoseEstimator {
    session: Session,
    /// Time spent inside ONNX Runtime's `run` alone (no pre- or post-processing).
    pub run_time: crate::stats::Ring,
    config: PoseConfig,
    input: Array4<i32>,
    resize: Bilinear,
    raw: Vec<f32>,
}

const PEOPLE: usize = 6;
const STRIDE: usize = 56;

impl PoseEstimator {
    pub fn new(models: &ModelSource, config: PoseConfig) -> Result<Self> {
        Ok(Self {
            run_time: crate::stats::Ring::default(),
            session: models.load(ModelKind::Pose)?,
            config,
            input: Array4::zeros((1, 32, 32, 3)),
            resize: Bilinear::default(),
            raw: Vec::with_capacity(PEOPLE * STRIDE),
        })
    }

    /// Runs the model and returns its raw output (`[6 x 56]`: 17 x (y, x, score), box, score; normalised).
    pub fn run_raw(&mut self, frame: &RgbView<'_>) -> Result<&[f32]> {
        let (in_w, in_h) = input_size(frame.width, frame.height, self.config.input_long_side);
        if self.input.shape() != [1, in_h, in_w, 3] {
            self.input = Array4::zeros((1, in_h, in_w, 3));
        }
        self.resize.prepare(frame.width, frame.height, in_w as u32, in_h as u32);
        {
            let data = self.input.as_slice_mut().expect("standard layout");
            self.resize.for_each(frame, |x, y, px| {
                let i = (y * in_w + x) * 3;
                for c in 0..3 {
                    data[i + c] = px[c].round() as i32;
                }
            });
        }
        let err = run_err(ModelKind::Pose);
        let input = TensorRef::from_array_view(self.input.view()).map_err(&err)?;
        let started = std::time::Instant::now();
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(&err)?;
        self.run_time.push(started.elapsed());
        let (_, out) = outputs["output_0"].try_extract_tensor::<f32>().map_err(&err)?;
        if out.len() != PEOPLE * STRIDE {
            return Err(super::Error::Run {
                kind: ModelKind::Pose,
                message: format!("{} values, expected 336", out.len()),
            });
        }
        self.raw.clear();
        self.raw.extend_from_slice(out);
        Ok(&self.raw)
    }

    /// Finds the people in `frame`, replacing the contents of `people`.
    pub fn estimate(&mut self, frame: &RgbView<'_>, people: &mut Vec<Person>) -> Result<()> {
        people.clear();
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        let min_score = self.config.min_score;
        let raw = self.run_raw(frame)?;
        for p in raw.chunks_exact(STRIDE) {
            let score = p[55];
            if score < min_score {
                continue;
            }
            let keypoints = std::array::from_fn(|k| Keypoint {
                point: PointInImage { x: p[k * 3 + 1] * fw, y: p[k * 3] * fh },
                score: p[k * 3 + 2],
            });
            let bbox = BoxInImage::new(p[52] * fw, p[51] * fh, p[54] * fw, p[53] * fh);
            people.push(Person { bbox, score, keypoints });
        }
        Ok(())
    }
}
