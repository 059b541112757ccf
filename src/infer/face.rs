//! RetinaFace-MobileNet0.25 face detection (contract in models/manifest.toml and models/README.md).

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use super::resize::Bilinear;
use super::{ModelKind, ModelSource, Result, run_err};
use crate::capture::RgbView;
use crate::geometry::{BoxInImage, PointInImage, nms};

/// Face detector settings.
#[derive(Debug, Clone, Copy)]
pub struct FaceConfig {
    /// The frame is resized so that its longer side is this many pixels (rounded to a multiple of 32).
    /// Larger finds smaller faces and costs more.
    pub input_long_side: u32,
    /// Minimum face score (0..1).
    pub min_score: f32,
    /// Overlap above which the weaker of two detections is dropped.
    pub nms_iou: f32,
}

impl Default for FaceConfig {
    fn default() -> Self {
        Self { input_long_side: 640, min_score: 0.5, nms_iou: 0.4 }
    }
}

/// One detected face, in frame pixels.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: BoxInImage,
    pub score: f32,
    /// Eyes (left, right in the image), nose, mouth corners.
    pub landmarks: [PointInImage; 5],
}

const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
const STEPS_AND_SIZES: [(u32, [f32; 2]); 3] = [(8, [16.0, 32.0]), (16, [64.0, 128.0]), (32, [256.0, 512.0])];

pub struct FaceDetector {
    session: Session,
    /// Time spent inside ONNX Runtime's `run` alone (no pre- or post-processing).
    pub run_time: crate::stats::Ring,
    config: FaceConfig,
    input: Array4<f32>,
    resize: Bilinear,
    /// Prior boxes (cx, cy, w, h), normalised, for the current input size.
    priors: Vec<[f32; 4]>,
    priors_for: (usize, usize),
    candidates: Vec<Face>,
    keep: Vec<usize>,
}

/// The model input size for a frame: longer side `long_side`, aspect kept, both multiples of 32.
pub fn input_size(width: u32, height: u32, long_side: u32) -> (usize, usize) {
    let scale = long_side as f32 / width.max(height) as f32;
    let round = |v: f32| (((v / 32.0).round() as usize).max(1)) * 32;
    (round(width as f32 * scale), round(height as f32 * scale))
}

fn priors(in_w: usize, in_h: usize, out: &mut Vec<[f32; 4]>) {
    out.clear();
    for (step, sizes) in STEPS_AND_SIZES {
        let rows = in_h.div_ceil(step as usize);
        let cols = in_w.div_ceil(step as usize);
        for i in 0..rows {
            for j in 0..cols {
                for m in sizes {
                    out.push([
                        (j as f32 + 0.5) * step as f32 / in_w as f32,
                        (i as f32 + 0.5) * step as f32 / in_h as f32,
                        m / in_w as f32,
                        m / in_h as f32,
                    ]);
                }
            }
        }
    }
}

impl FaceDetector {
    pub fn new(models: &ModelSource, config: FaceConfig) -> Result<Self> {
        Ok(Self {
            run_time: crate::stats::Ring::default(),
            session: models.load(ModelKind::Face)?,
            config,
            input: Array4::zeros((1, 3, 32, 32)),
            resize: Bilinear::default(),
            priors: Vec::new(),
            priors_for: (0, 0),
            candidates: Vec::new(),
            keep: Vec::new(),
        })
    }

    /// Detects faces in `frame`, replacing the contents of `faces`.
    pub fn detect(&mut self, frame: &RgbView<'_>, faces: &mut Vec<Face>) -> Result<()> {
        faces.clear();
        let whole = (0.0, 0.0, frame.width as f32, frame.height as f32);
        self.detect_in(frame, whole, self.config.input_long_side, faces)
    }

    /// Detects faces inside `region` (x, y, width, height in frame pixels) resized so that its longer side
    /// is `long_side` (a larger scale than the whole frame's finds smaller faces), and adds them to
    /// `faces` in frame pixels.
    pub fn detect_in(
        &mut self,
        frame: &RgbView<'_>,
        region: (f32, f32, f32, f32),
        long_side: u32,
        faces: &mut Vec<Face>,
    ) -> Result<()> {
        let (rx, ry, rw, rh) = region;
        if !(rw >= 1.0 && rh >= 1.0) {
            return Ok(());
        }
        let (in_w, in_h) = input_size(rw.round() as u32, rh.round() as u32, long_side);
        if self.input.shape() != [1, 3, in_h, in_w] {
            self.input = Array4::zeros((1, 3, in_h, in_w));
        }
        if self.priors_for != (in_w, in_h) {
            priors(in_w, in_h, &mut self.priors);
            self.priors_for = (in_w, in_h);
        }
        if region == (0.0, 0.0, frame.width as f32, frame.height as f32) {
            self.resize.prepare(frame.width, frame.height, in_w as u32, in_h as u32);
        } else {
            self.resize.prepare_region(frame.width, frame.height, region, in_w as u32, in_h as u32);
        }
        {
            let plane = in_w * in_h;
            let data = self.input.as_slice_mut().expect("standard layout");
            self.resize.for_each(frame, |x, y, [r, g, b]| {
                let i = y * in_w + x;
                data[i] = b - MEAN_BGR[0];
                data[plane + i] = g - MEAN_BGR[1];
                data[2 * plane + i] = r - MEAN_BGR[2];
            });
        }
        let err = run_err(ModelKind::Face);
        let input = TensorRef::from_array_view(self.input.view()).map_err(&err)?;
        let started = std::time::Instant::now();
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(&err)?;
        self.run_time.push(started.elapsed());
        let (_, loc) = outputs["loc"].try_extract_tensor::<f32>().map_err(&err)?;
        let (_, conf) = outputs["conf"].try_extract_tensor::<f32>().map_err(&err)?;
        let (_, landms) = outputs["landms"].try_extract_tensor::<f32>().map_err(&err)?;
        let n = self.priors.len();
        if loc.len() != n * 4 || conf.len() != n * 2 || landms.len() != n * 10 {
            return Err(super::Error::Run {
                kind: ModelKind::Face,
                message: format!("model returned {} boxes for {} priors", loc.len() / 4, n),
            });
        }
        // Normalised model coordinates -> frame pixels.
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        let to_x = |v: f32| rx + v * rw;
        let to_y = |v: f32| ry + v * rh;
        self.candidates.clear();
        for (i, p) in self.priors.iter().enumerate() {
            let score = conf[i * 2 + 1];
            if score < self.config.min_score {
                continue;
            }
            let l = &loc[i * 4..i * 4 + 4];
            let cx = p[0] + l[0] * 0.1 * p[2];
            let cy = p[1] + l[1] * 0.1 * p[3];
            let w = p[2] * (l[2] * 0.2).exp();
            let h = p[3] * (l[3] * 0.2).exp();
            let bbox = BoxInImage::new(
                to_x(cx - w / 2.0).max(0.0),
                to_y(cy - h / 2.0).max(0.0),
                to_x(cx + w / 2.0).min(fw),
                to_y(cy + h / 2.0).min(fh),
            );
            let lm = &landms[i * 10..i * 10 + 10];
            let point = |k: usize| PointInImage {
                x: to_x(p[0] + lm[2 * k] * 0.1 * p[2]),
                y: to_y(p[1] + lm[2 * k + 1] * 0.1 * p[3]),
            };
            self.candidates.push(Face { bbox, score, landmarks: [point(0), point(1), point(2), point(3), point(4)] });
        }
        // Faces already found (an earlier region) take part in the suppression, so none is counted twice.
        self.candidates.extend_from_slice(faces);
        faces.clear();
        nms(&mut self.candidates, |f| (f.bbox, f.score), self.config.nms_iou, &mut self.keep);
        faces.extend(self.keep.iter().map(|&k| self.candidates[k]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_keeps_aspect_and_multiples_of_32() {
        assert_eq!(input_size(1920, 1080, 640), (640, 352));
        assert_eq!(input_size(480, 640, 640), (480, 640));
        assert_eq!(input_size(10, 10, 640), (640, 640));
    }

    #[test]
    fn prior_count_matches_the_three_strides() {
        let mut p = Vec::new();
        priors(640, 480, &mut p);
        assert_eq!(p.len(), (80 * 60 + 40 * 30 + 20 * 15) * 2);
    }
}
