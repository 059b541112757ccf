//! Facial expression (mini-Xception trained on FER2013) on face crops of the raw frame. Only the seven
//! class probabilities leave this module: the crops live in a reused input tensor and are overwritten by
//! the next frame.

use ndarray::ArrayView4;
use ort::session::Session;
use ort::value::TensorRef;

use super::resize::Bilinear;
use super::{ModelKind, ModelSource, Result, run_err};
use crate::capture::RgbView;
use crate::geometry::BoxInImage;

/// Class order of the model's output.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
pub const HAPPY: usize = 3;
pub const NEUTRAL: usize = 6;

pub type EmotionProbs = [f32; 7];

#[derive(Debug, Clone, Copy)]
pub struct EmotionConfig {
    /// Faces smaller than this (the longer side of the face box, pixels) are skipped: the model is noise there.
    pub min_face_px: f32,
    /// The face box is grown by this fraction on each side before cropping (the model was trained on
    /// loose crops).
    pub crop_margin: f32,
}

impl Default for EmotionConfig {
    fn default() -> Self {
        Self { min_face_px: 36.0, crop_margin: 0.1 }
    }
}

const SIDE: usize = 64;

pub struct EmotionClassifier {
    session: Session,
    /// Time spent inside ONNX Runtime's `run` alone (no pre- or post-processing).
    pub run_time: crate::stats::Ring,
    config: EmotionConfig,
    /// Crops for up to as many faces as any frame had so far, `[n, 64, 64, 1]` packed; reused.
    input: Vec<f32>,
    resize: Bilinear,
}

impl EmotionClassifier {
    pub fn new(models: &ModelSource, config: EmotionConfig) -> Result<Self> {
        Ok(Self {
            run_time: crate::stats::Ring::default(),
            session: models.load(ModelKind::Emotion)?,
            config,
            input: Vec::new(),
            resize: Bilinear::default(),
        })
    }

    /// Classifies each face large enough; `out[i]` is `Some(probabilities)` for `faces[i]` or `None` when
    /// the face was too small. `out` is cleared first.
    pub fn classify(
        &mut self,
        frame: &RgbView<'_>,
        faces: &[BoxInImage],
        out: &mut Vec<Option<EmotionProbs>>,
    ) -> Result<()> {
        out.clear();
        out.extend(faces.iter().map(|_| None));
        let chosen = faces.iter().filter(|f| f.width().max(f.height()) >= self.config.min_face_px).count();
        if chosen == 0 {
            return Ok(());
        }
        if self.input.len() < chosen * SIDE * SIDE {
            self.input.resize(chosen * SIDE * SIDE, 0.0);
        }
        {
            let data = &mut self.input[..chosen * SIDE * SIDE];
            let large = faces.iter().filter(|f| f.width().max(f.height()) >= self.config.min_face_px);
            for (slot, f) in large.enumerate() {
                let g = f.expanded(self.config.crop_margin);
                let (x1, y1) = (g.x1.max(0.0), g.y1.max(0.0));
                let (x2, y2) = (g.x2.min(frame.width as f32), g.y2.min(frame.height as f32));
                let crop = &mut data[slot * SIDE * SIDE..(slot + 1) * SIDE * SIDE];
                self.resize.prepare_region(
                    frame.width,
                    frame.height,
                    (x1, y1, x2 - x1, y2 - y1),
                    SIDE as u32,
                    SIDE as u32,
                );
                self.resize.for_each(frame, |x, y, [r, g, b]| {
                    // ITU-R BT.601 luma, as OpenCV's RGB2GRAY that the model was trained with.
                    let grey = 0.299 * r + 0.587 * g + 0.114 * b;
                    crop[y * SIDE + x] = (grey / 255.0 - 0.5) * 2.0;
                });
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
            if f.width().max(f.height()) >= self.config.min_face_px {
                let row = rows.next().expect("one row per chosen face");
                *slot = Some(std::array::from_fn(|k| row[k]));
            }
        }
        Ok(())
    }
}

/// Index of the most likely class.
pub fn top(p: &EmotionProbs) -> usize {
    (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(NEUTRAL)
}
