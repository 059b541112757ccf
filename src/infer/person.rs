//! NanoDet-m (416x416, COCO) as iobox's person detector: every person in the frame, however many.
//!
//! Contract (models/manifest.toml): input `input` float32 [1,3,416,416], BGR, `(v - mean) / std` with
//! NanoDet's own mean and std. Per stride s in (8, 16, 32), on a grid of (416/s)^2 cells in row-major
//! order: `cls_s{s}` [1,N,80] class scores with the sigmoid already applied (column 0 is "person"), and
//! `box_s{s}` [1,N,44], for each side (left, top, right, bottom) 11 logits of a distribution over
//! distances 0..=10 in units of s (Generalized Focal Loss). A cell's box is its centre ((col + 0.5) * s,
//! (row + 0.5) * s) minus/plus the expected distances. The decoder is written from that contract and
//! checked against annotated person boxes (tests/it/people.rs), not copied from any package.
//!
//! People far from a high camera are small: a large frame is cut into overlapping tiles, each resized to
//! the model's 416x416, so that a person keeps more of their pixels than in one squeezed whole frame. Detections from all tiles are merged by NMS,
//! and a box cut by a tile's inner edge gives way to the whole box found in the neighbouring tile.

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use super::resize::Bilinear;
use super::{ModelKind, ModelSource, Result, run_err};
use crate::capture::RgbView;
use crate::geometry::{BoxInImage, nms};

/// The model's input side.
pub const INPUT: usize = 416;
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
const BINS: usize = 11;
const CLASSES: usize = 80;
const STRIDES: [(usize, &str, &str); 3] =
    [(8, "cls_s8", "box_s8"), (16, "cls_s16", "box_s16"), (32, "cls_s32", "box_s32")];
/// A box cut by a tile's inner edge is the same person as another kept box when this much of the smaller
/// of the two lies inside the other (SAHI's "intersection over smaller" merge, only at tile seams).
const SEAM_INSIDE: f32 = 0.45;
/// A box edge this close to a tile's inner edge (fraction of the tile side) counts as cut by it.
const SEAM_MARGIN: f32 = 0.02;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonConfig {
    /// Largest tile side in frame pixels: a frame that is tiled is cut into overlapping square tiles of
    /// `min(tile_px, shorter frame side)` (a 1280x720 frame into two 720x720 squares, a 1920x1080 frame
    /// into six with the default 720). 0: never tiled.
    pub tile_px: u32,
    /// Frames whose longer side is at most this run whole, letterboxed (default 832, twice the model's
    /// input: such a frame loses at most half its resolution, and people there are large enough; tiles
    /// of a small frame enlarge people past what the model knows and find parts of them as people).
    pub tile_above: u32,
    /// Minimum person score (0..1). Low, so that the tracker's second stage sees partly hidden people.
    pub min_score: f32,
    /// Overlap above which the weaker of two detections is dropped.
    pub nms_iou: f32,
}

impl Default for PersonConfig {
    fn default() -> Self {
        Self { tile_px: 720, tile_above: 832, min_score: 0.3, nms_iou: 0.5 }
    }
}

/// One detected person, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PersonBox {
    #[serde(rename = "box")]
    pub bbox: BoxInImage,
    pub score: f32,
}

/// A square (or, for `tile_px = 0`, whole-frame) region of the frame run through the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tile {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// The tiles that cover a `width` x `height` frame: squares of side `min(tile_px, shorter side)`, evenly
/// spaced so that they overlap rather than leave a strip out. Squares, because NanoDet squeezed to a
/// different aspect misses people (on the sample clip, a whole 768x432 frame squeezed to 416x416 lost
/// most of the tracks that two 432x432 tiles keep). `tile_px = 0`: one square of the longer side, the
/// frame in its top-left corner (letterboxed; the rest repeats the frame's edge pixels).
pub fn tiles(width: u32, height: u32, tile_px: u32, out: &mut Vec<Tile>) {
    out.clear();
    let (w, h) = (width as f32, height as f32);
    if tile_px == 0 || width == 0 || height == 0 {
        let side = w.max(h);
        out.push(Tile { x: 0.0, y: 0.0, width: side, height: side });
        return;
    }
    let side = (tile_px as f32).min(w).min(h);
    let starts = |len: f32| {
        let n = (len / side).ceil().max(1.0) as usize;
        let step = if n > 1 { (len - side) / (n - 1) as f32 } else { 0.0 };
        (0..n).map(move |i| (i as f32 * step).round())
    };
    for y in starts(h) {
        for x in starts(w) {
            out.push(Tile { x, y, width: side, height: side });
        }
    }
}

/// How much of a frame one detector run spends model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Tiled as [`PersonConfig`] says (one run per tile on a large frame).
    AsConfigured,
    /// The whole frame letterboxed into one model run, whatever its size: a quarter to a sixth of the
    /// cost of the tiles of a 720p or 1080p frame, with the recall of people under ~120 px that costs
    /// (BENCHMARKS.md, "Person detector").
    WholeFrame,
}

pub struct PersonDetector {
    session: Session,
    /// Time spent inside ONNX Runtime's `run` alone, per tile.
    pub run_time: crate::stats::Ring,
    config: PersonConfig,
    input: Array4<f32>,
    resize: Bilinear,
    tiles: Vec<Tile>,
    /// Candidates, and per candidate whether it touches an inner tile edge.
    candidates: Vec<(PersonBox, bool)>,
    keep: Vec<usize>,
    merged: Vec<(PersonBox, bool)>,
    gone: Vec<bool>,
}

impl PersonDetector {
    pub fn new(models: &ModelSource, config: PersonConfig) -> Result<Self> {
        Ok(Self {
            session: models.load(ModelKind::Person)?,
            run_time: crate::stats::Ring::default(),
            config,
            input: Array4::zeros((1, 3, INPUT, INPUT)),
            resize: Bilinear::default(),
            tiles: Vec::new(),
            candidates: Vec::new(),
            keep: Vec::new(),
            merged: Vec::new(),
            gone: Vec::new(),
        })
    }

    /// The tile side for a frame of this size (0: the whole frame).
    fn effective_tile_px(&self, width: u32, height: u32) -> u32 {
        if width.max(height) <= self.config.tile_above { 0 } else { self.config.tile_px }
    }

    /// Finds the people in `frame`, replacing the contents of `people`: tiled as configured.
    pub fn detect(&mut self, frame: &RgbView<'_>, people: &mut Vec<PersonBox>) -> Result<()> {
        self.detect_in(frame, Coverage::AsConfigured, people)
    }

    /// Finds the people in `frame` with the given coverage, replacing the contents of `people`.
    pub fn detect_in(&mut self, frame: &RgbView<'_>, coverage: Coverage, people: &mut Vec<PersonBox>) -> Result<()> {
        people.clear();
        self.candidates.clear();
        let tile_px = match coverage {
            Coverage::AsConfigured => self.effective_tile_px(frame.width, frame.height),
            Coverage::WholeFrame => 0,
        };
        tiles(frame.width, frame.height, tile_px, &mut self.tiles);
        for t in 0..self.tiles.len() {
            let tile = self.tiles[t];
            self.run_tile(frame, tile)?;
        }
        nms(&mut self.candidates, |c| (c.0.bbox, c.0.score), self.config.nms_iou, &mut self.keep);
        // Tile seams: a box cut by a tile's inner edge that mostly lies inside another kept box is the
        // same person, seen whole in the neighbouring tile (the cut box goes) or cut there too (the two
        // halves become one box).
        self.merged.clear();
        self.merged.extend(self.keep.iter().map(|&k| self.candidates[k]));
        let gone = &mut self.gone;
        gone.clear();
        gone.resize(self.merged.len(), false);
        for i in 0..self.merged.len() {
            let (p, cut) = self.merged[i];
            if !cut || gone[i] {
                continue;
            }
            let other = (0..self.merged.len()).find(|&j| {
                j != i && !gone[j] && {
                    let q = self.merged[j].0.bbox;
                    p.bbox.intersection(&q) >= SEAM_INSIDE * p.bbox.area().min(q.area())
                }
            });
            if let Some(j) = other {
                let (q, q_cut) = self.merged[j];
                if q_cut {
                    let b = BoxInImage::new(
                        p.bbox.x1.min(q.bbox.x1),
                        p.bbox.y1.min(q.bbox.y1),
                        p.bbox.x2.max(q.bbox.x2),
                        p.bbox.y2.max(q.bbox.y2),
                    );
                    self.merged[j] = (PersonBox { bbox: b, score: p.score.max(q.score) }, false);
                }
                gone[i] = true;
            }
        }
        people.extend(self.merged.iter().zip(gone.iter()).filter(|(_, g)| !**g).map(|(m, _)| m.0));
        Ok(())
    }

    fn run_tile(&mut self, frame: &RgbView<'_>, tile: Tile) -> Result<()> {
        self.resize.prepare_region(
            frame.width,
            frame.height,
            (tile.x, tile.y, tile.width, tile.height),
            INPUT as u32,
            INPUT as u32,
        );
        {
            let plane = INPUT * INPUT;
            let data = self.input.as_slice_mut().expect("standard layout");
            self.resize.for_each(frame, |x, y, [r, g, b]| {
                let i = y * INPUT + x;
                data[i] = (b - MEAN_BGR[0]) / STD_BGR[0];
                data[plane + i] = (g - MEAN_BGR[1]) / STD_BGR[1];
                data[2 * plane + i] = (r - MEAN_BGR[2]) / STD_BGR[2];
            });
        }
        let err = run_err(ModelKind::Person);
        let input = TensorRef::from_array_view(self.input.view()).map_err(&err)?;
        let started = std::time::Instant::now();
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(&err)?;
        self.run_time.push(started.elapsed());
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        let (sx, sy) = (tile.width / INPUT as f32, tile.height / INPUT as f32);
        // Inner edges: a tile side that is not the frame's own edge.
        let edge = (SEAM_MARGIN * tile.width.min(tile.height)).max(3.0);
        let inner = (tile.x > 0.5, tile.y > 0.5, tile.x + tile.width < fw - 0.5, tile.y + tile.height < fh - 0.5);
        for (stride, cls_name, box_name) in STRIDES {
            let (_, cls) = outputs[cls_name].try_extract_tensor::<f32>().map_err(&err)?;
            let (_, reg) = outputs[box_name].try_extract_tensor::<f32>().map_err(&err)?;
            let cols = INPUT / stride;
            let cells = cols * cols;
            if cls.len() != cells * CLASSES || reg.len() != cells * 4 * BINS {
                return Err(super::Error::Run {
                    kind: ModelKind::Person,
                    message: format!("{cls_name}/{box_name}: {} and {} values for {cells} cells", cls.len(), reg.len()),
                });
            }
            for cell in 0..cells {
                let score = cls[cell * CLASSES];
                if score.is_nan() || score < self.config.min_score {
                    continue;
                }
                let (row, col) = (cell / cols, cell % cols);
                let (cx, cy) = ((col as f32 + 0.5) * stride as f32, (row as f32 + 0.5) * stride as f32);
                let d = &reg[cell * 4 * BINS..(cell + 1) * 4 * BINS];
                let side = |k: usize| expected_bin(&d[k * BINS..(k + 1) * BINS]) * stride as f32;
                let (l, t, r, b) = (side(0), side(1), side(2), side(3));
                let x1 = (tile.x + (cx - l) * sx).max(tile.x);
                let y1 = (tile.y + (cy - t) * sy).max(tile.y);
                let x2 = (tile.x + (cx + r) * sx).min(tile.x + tile.width).min(fw);
                let y2 = (tile.y + (cy + b) * sy).min(tile.y + tile.height).min(fh);
                if x2 <= x1 || y2 <= y1 {
                    continue;
                }
                let cut = (inner.0 && x1 <= tile.x + edge)
                    || (inner.1 && y1 <= tile.y + edge)
                    || (inner.2 && x2 >= tile.x + tile.width - edge)
                    || (inner.3 && y2 >= tile.y + tile.height - edge);
                self.candidates.push((PersonBox { bbox: BoxInImage::new(x1, y1, x2, y2), score }, cut));
            }
        }
        Ok(())
    }
}

/// The expected value (in bins) of a softmax over `logits`.
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (i, &v) in logits.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    if sum > 0.0 && sum.is_finite() { weighted / sum } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_16_by_9_frame_takes_two_overlapping_squares() {
        let mut t = Vec::new();
        tiles(1280, 720, 720, &mut t);
        assert_eq!(
            t,
            vec![
                Tile { x: 0.0, y: 0.0, width: 720.0, height: 720.0 },
                Tile { x: 560.0, y: 0.0, width: 720.0, height: 720.0 }
            ]
        );
        tiles(1920, 1080, 720, &mut t);
        assert_eq!(t.len(), 6, "{t:?}");
        tiles(768, 432, 720, &mut t);
        assert_eq!(t.len(), 2);
        tiles(1920, 1080, 0, &mut t);
        assert_eq!(t, vec![Tile { x: 0.0, y: 0.0, width: 1920.0, height: 1920.0 }]);
    }

    #[test]
    fn expected_bin_of_a_sharp_distribution_is_its_peak() {
        let mut l = [-20.0f32; BINS];
        l[7] = 20.0;
        assert!((expected_bin(&l) - 7.0).abs() < 1e-3);
        assert!((expected_bin(&[0.0; BINS]) - 5.0).abs() < 1e-5);
    }

    proptest! {
        /// Tiles always cover every pixel of the frame.
        #[test]
        fn tiles_cover_the_frame(w in 1u32..4000, h in 1u32..4000, tile in 0u32..2000) {
            let mut t = Vec::new();
            tiles(w, h, tile, &mut t);
            prop_assert!(!t.is_empty());
            for tl in &t {
                prop_assert!(tl.x >= 0.0 && tl.y >= 0.0);
                // Only the letterboxed whole frame (tile 0) reaches past the frame's edge.
                prop_assert!(tile == 0 || (tl.x + tl.width <= w as f32 + 0.5 && tl.y + tl.height <= h as f32 + 0.5));
            }
            // Sample points on a grid: each lies in some tile.
            for i in 0..=20u32 {
                for j in 0..=20u32 {
                    let (x, y) = (w as f32 * i as f32 / 20.0, h as f32 * j as f32 / 20.0);
                    prop_assert!(t.iter().any(|tl| x >= tl.x - 0.5 && x <= tl.x + tl.width + 0.5 && y >= tl.y - 0.5 && y <= tl.y + tl.height + 0.5), "({x},{y}) uncovered in {w}x{h} tile {tile}: {t:?}");
                }
            }
        }

        #[test]
        fn expected_bin_is_within_range(l in proptest::collection::vec(-50f32..50.0, BINS)) {
            let e = expected_bin(&l);
            prop_assert!((0.0..=(BINS - 1) as f32 + 1e-3).contains(&e));
        }
    }
}
