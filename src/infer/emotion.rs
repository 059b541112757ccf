//! Facial expression (mini-Xception trained on FER2013) on face crops of the raw frame. Only the seven
//! class probabilities, or the word that the face could not be read, leave this module: the crops live in
//! a reused input tensor and are overwritten by the next frame.
//!
//! # Honest reads
//! FER2013's faces are frontal, upright and fill the picture with the eyes at about the same place. A face
//! is therefore **aligned** before the model sees it: rotated, scaled and moved (one similarity transform)
//! so that the detector's two eye landmarks land where FER2013's eyes are ([`EYE_Y`], [`EYE_DISTANCE`]).
//! A face is [`Expression::Uncertain`] rather than read when
//! - the detector is not sure it is a face (`min_face_score`, above the blur's threshold: the blur
//!   takes anything that may be a face, a read needs a face; on the bundled sample the faces found
//!   score 0.50-0.81, and the 18 of them looked at were backs of heads, the floor or the wall);
//! - it is smaller than `min_face_px` (its longer side): too few pixels for an expression;
//! - its eyes are closer together than [`MIN_EYE_SHARE`] of the box's width, or tilted by more than
//!   [`MAX_ROLL_DEG`]: turned away or seen from above, unlike anything the model was trained on;
//! - the model's most likely class has less than `min_confidence`.
//!
//! Reports count uncertain faces beside the read ones, so a camera whose faces cannot be read says so.

use ndarray::ArrayView4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use super::face::Face;
use super::{ModelKind, ModelSource, Result, run_err};
use crate::capture::RgbView;

/// Class order of the model's output.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
pub const HAPPY: usize = 3;
pub const NEUTRAL: usize = 6;

pub type EmotionProbs = [f32; 7];

/// What the expression model made of one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expression {
    /// The class probabilities of a face large, frontal and clear enough to read.
    Read(EmotionProbs),
    /// A face seen but not read: too small, turned away, or the model unsure (see the module docs).
    Uncertain,
}

impl Expression {
    pub fn probabilities(&self) -> Option<&EmotionProbs> {
        match self {
            Expression::Read(p) => Some(p),
            Expression::Uncertain => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EmotionConfig {
    /// Faces smaller than this (the longer side of the face box, pixels) are uncertain: too few pixels.
    pub min_face_px: f32,
    /// Faces the detector scored lower than this are uncertain.
    pub min_face_score: f32,
    /// Reads whose most likely class has less than this probability are uncertain.
    pub min_confidence: f32,
}

impl Default for EmotionConfig {
    fn default() -> Self {
        Self { min_face_px: 36.0, min_face_score: 0.9, min_confidence: 0.5 }
    }
}

const SIDE: usize = 64;
/// Where an aligned face's eyes are, as a share of the crop's side: their height, and the distance
/// between them. This is where a detector's box grown by a tenth on each side (the crop iobox used
/// before alignment) puts an upright face's eyes; of the templates tried on the labelled faces in
/// tests/data/expressions (README there), tighter crops read worse.
pub const EYE_Y: f32 = 0.42;
pub const EYE_DISTANCE: f32 = 0.36;
/// Faces whose eyes are closer than this share of the box's width are turned too far to read.
pub const MIN_EYE_SHARE: f32 = 0.25;
/// Faces tilted more than this (the line between the eyes against the horizontal) are not read.
pub const MAX_ROLL_DEG: f32 = 30.0;

/// The similarity transform from crop pixels to frame pixels that puts `face`'s eyes at the template's
/// place, or `None` when the face is too turned or tilted to read: `(a, b, tx, ty)` with
/// `x = a*u - b*v + tx`, `y = b*u + a*v + ty` for a crop pixel centre `(u, v)`.
pub(crate) fn alignment(face: &Face) -> Option<(f32, f32, f32, f32)> {
    let [left, right, ..] = face.landmarks;
    // The image's left eye first, whichever the detector called it.
    let (l, r) = if left.x <= right.x { (left, right) } else { (right, left) };
    let (dx, dy) = (r.x - l.x, r.y - l.y);
    let distance = (dx * dx + dy * dy).sqrt();
    if !distance.is_finite() || distance < MIN_EYE_SHARE * face.bbox.width() {
        return None;
    }
    if dy.atan2(dx).abs().to_degrees() > MAX_ROLL_DEG {
        return None;
    }
    // Crop units per frame pixel, inverted: frame pixels per crop pixel along the eye line.
    let scale = distance / (EYE_DISTANCE * SIDE as f32);
    let (a, b) = (scale * dx / distance, scale * dy / distance);
    // The crop's eye midpoint maps to the frame's.
    let (u, v) = (SIDE as f32 / 2.0, EYE_Y * SIDE as f32);
    let (mx, my) = ((l.x + r.x) / 2.0, (l.y + r.y) / 2.0);
    Some((a, b, mx - (a * u - b * v), my - (b * u + a * v)))
}

/// Grey level (BT.601, 0..255) of the frame at `(x, y)`, bilinear, clamped to the frame's edge.
fn grey_at(frame: &RgbView<'_>, x: f32, y: f32) -> f32 {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let x = (x - 0.5).clamp(0.0, w - 1.0);
    let y = (y - 0.5).clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(frame.width - 1), (y0 + 1).min(frame.height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    // ITU-R BT.601 luma, as OpenCV's RGB2GRAY that the model was trained with.
    let g = |x, y| {
        let [r, g, b] = frame.pixel(x, y);
        0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
    };
    let top = g(x0, y0) * (1.0 - fx) + g(x1, y0) * fx;
    let bottom = g(x0, y1) * (1.0 - fx) + g(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

pub struct EmotionClassifier {
    session: Session,
    /// Time spent inside ONNX Runtime's `run` alone (no pre- or post-processing).
    pub run_time: crate::stats::Ring,
    config: EmotionConfig,
    /// Crops for up to as many faces as any frame had so far, `[n, 64, 64, 1]` packed; reused.
    input: Vec<f32>,
}

impl EmotionClassifier {
    pub fn new(models: &ModelSource, config: EmotionConfig) -> Result<Self> {
        Ok(Self {
            run_time: crate::stats::Ring::default(),
            session: models.load(ModelKind::Emotion)?,
            config,
            input: Vec::new(),
        })
    }

    /// Reads each face: `out[i]` is `faces[i]`'s [`Expression`]. `out` is cleared first.
    pub fn classify(&mut self, frame: &RgbView<'_>, faces: &[Face], out: &mut Vec<Expression>) -> Result<()> {
        out.clear();
        let (min_px, min_score) = (self.config.min_face_px, self.config.min_face_score);
        let transform = |f: &Face| {
            let readable = f.score >= min_score && f.bbox.width().max(f.bbox.height()) >= min_px;
            readable.then(|| alignment(f)).flatten()
        };
        let chosen = faces.iter().filter(|f| transform(f).is_some()).count();
        out.extend(faces.iter().map(|_| Expression::Uncertain));
        if chosen == 0 || frame.width == 0 || frame.height == 0 {
            return Ok(());
        }
        if self.input.len() < chosen * SIDE * SIDE {
            self.input.resize(chosen * SIDE * SIDE, 0.0);
        }
        for (slot, (a, b, tx, ty)) in faces.iter().filter_map(transform).enumerate() {
            let crop = &mut self.input[slot * SIDE * SIDE..(slot + 1) * SIDE * SIDE];
            for v in 0..SIDE {
                for u in 0..SIDE {
                    let (cu, cv) = (u as f32 + 0.5, v as f32 + 0.5);
                    let grey = grey_at(frame, a * cu - b * cv + tx, b * cu + a * cv + ty);
                    crop[v * SIDE + u] = (grey / 255.0 - 0.5) * 2.0;
                }
            }
        }
        let err = run_err(ModelKind::Emotion);
        let crops = ArrayView4::from_shape((chosen, SIDE, SIDE, 1), &self.input[..chosen * SIDE * SIDE])
            .expect("the buffer holds `chosen` crops");
        let input = TensorRef::from_array_view(crops).map_err(&err)?;
        let started = std::time::Instant::now();
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(&err)?;
        self.run_time.push(started.elapsed());
        let (_, probs) = outputs["predictions"].try_extract_tensor::<f32>().map_err(&err)?;
        if probs.len() != chosen * 7 {
            return Err(super::Error::Run {
                kind: ModelKind::Emotion,
                message: format!("{} values for {chosen} faces", probs.len()),
            });
        }
        let mut rows = probs.chunks_exact(7);
        for (slot, f) in out.iter_mut().zip(faces) {
            if transform(f).is_some() {
                let row = rows.next().expect("one row per chosen face");
                let p: EmotionProbs = std::array::from_fn(|k| row[k]);
                if p.iter().all(|v| v.is_finite()) && p[top(&p)] >= self.config.min_confidence {
                    *slot = Expression::Read(p);
                }
            }
        }
        Ok(())
    }
}

/// Index of the most likely class.
pub fn top(p: &EmotionProbs) -> usize {
    (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(NEUTRAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BoxInImage, PointInImage};
    use proptest::prelude::*;

    fn face(left: (f32, f32), right: (f32, f32), bbox: BoxInImage) -> Face {
        let p = |(x, y)| PointInImage { x, y };
        let nose = p(((left.0 + right.0) / 2.0, left.1 + 10.0));
        Face { bbox, score: 0.99, landmarks: [p(left), p(right), nose, nose, nose] }
    }

    /// Where crop pixel centre `(u, v)` lands in the frame.
    fn map((a, b, tx, ty): (f32, f32, f32, f32), (u, v): (f32, f32)) -> (f32, f32) {
        (a * u - b * v + tx, b * u + a * v + ty)
    }

    fn template_eyes() -> [(f32, f32); 2] {
        let (half, y) = (EYE_DISTANCE * SIDE as f32 / 2.0, EYE_Y * SIDE as f32);
        [(SIDE as f32 / 2.0 - half, y), (SIDE as f32 / 2.0 + half, y)]
    }

    proptest! {
        /// Whatever the face's place, size and tilt (within the limits): the template's eyes land on the
        /// face's eyes, whichever eye the detector called left.
        #[test]
        fn the_template_eyes_land_on_the_face_eyes(
            cx in 20f32..1900.0, cy in 20f32..1060.0, distance in 10f32..300.0, roll in -29f32..29.0, swap: bool,
        ) {
            let (dx, dy) = (distance * roll.to_radians().cos() / 2.0, distance * roll.to_radians().sin() / 2.0);
            let (l, r) = ((cx - dx, cy - dy), (cx + dx, cy + dy));
            let bbox = BoxInImage::new(cx - distance, cy - distance, cx + distance, cy + 1.5 * distance);
            let f = if swap { face(r, l, bbox) } else { face(l, r, bbox) };
            let t = alignment(&f).expect("an upright, frontal face");
            let [tl, tr] = template_eyes();
            for (got, want) in [(map(t, tl), l), (map(t, tr), r)] {
                prop_assert!((got.0 - want.0).abs() < 0.01 * distance && (got.1 - want.1).abs() < 0.01 * distance,
                    "{got:?} != {want:?}");
            }
        }
    }

    #[test]
    fn turned_or_tilted_faces_are_not_aligned() {
        let bbox = BoxInImage::new(0.0, 0.0, 100.0, 120.0);
        assert!(alignment(&face((30.0, 40.0), (70.0, 40.0), bbox)).is_some());
        // Eyes a fifth of the box apart: the head is turned to a profile.
        assert!(alignment(&face((40.0, 40.0), (60.0, 40.0), bbox)).is_none());
        // Tilted by 40 degrees.
        let (dx, dy) = (20.0 * 40f32.to_radians().cos(), 20.0 * 40f32.to_radians().sin());
        assert!(alignment(&face((50.0 - dx, 50.0 - dy), (50.0 + dx, 50.0 + dy), bbox)).is_none());
        // Eyes on one point, or not numbers.
        assert!(alignment(&face((50.0, 40.0), (50.0, 40.0), bbox)).is_none());
        assert!(alignment(&face((f32::NAN, 40.0), (70.0, 40.0), bbox)).is_none());
    }
}
