//! Per-camera calibration: the image<->floor homography, and the zones and lines that behaviour analysis
//! counts against, all in floor metres.
//!
//! One TOML file per camera (`calibration/<camera>.toml`, format in `calibration/README.md`) lists at least
//! four image-to-floor point pairs. [`fit_homography`] fits `floor_from_image` to them with the normalised DLT
//! (Hartley normalisation of both point sets, then the null vector of the 2n x 9 DLT matrix from a one-sided
//! Jacobi SVD, so no normal equations square the condition number). With more than four pairs it runs RANSAC
//! over minimal 4-point samples (every sample when there are few pairs, else a seeded random draw, so
//! results are reproducible), keeps the pairs whose floor point reprojects within `inlier_threshold_px` of
//! its image point, and refits on those: normalised DLT, then a few Levenberg-Marquardt steps that minimise
//! the reprojection error in pixels (what the threshold and the report measure; the DLT's algebraic error
//! weights pairs unevenly under strong perspective). The fit reports each pair's residual in image pixels
//! (floor -> image) and in metres (image -> floor).
//!
//! Besides the usual degeneracies (fewer than 4 pairs, duplicates, collinear points) the fit refuses two
//! mistakes no camera can produce: pairs that fold the floor over (some point would lie behind the horizon:
//! usually two floor points swapped) and a mirrored mapping (usually a floor plan measured with y pointing
//! up; floor y grows *down* the plan, see [`crate::geometry`]).
//!
//! Several cameras map onto one floor plan: [`Calibration::load_dir`] loads `calibration/*.toml` and insists
//! they share the plan image and scale, and that a zone or line named in two files is the same one.
//!
//! Pure code: no camera, model or database.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::geometry::{NotSimple, PointInImage, PointOnFloor, PolygonOnFloor};

// ---------------------------------------------------------------------------------------------------------
// Homography
// ---------------------------------------------------------------------------------------------------------

/// Marker for camera image pixels (see [`PointInImage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSpace {}

/// Marker for floor metres (see [`PointOnFloor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorSpace {}

/// A plane-to-plane projective map from space `From` to space `To`, named like a variable
/// `to_from_from`: the plain `Homography` is `floor_from_image`, `Homography<ImageSpace, FloorSpace>` is
/// `image_from_floor`. Maps `(x, y, 1)` to `(X, Y, W)` and returns `(X/W, Y/W)`.
///
/// The sign of the matrix is fixed so that `W > 0` for points the camera sees: a point that maps to or
/// beyond the horizon (`W <= 0`) has no image, and `project`/`apply` return `None` for it.
pub struct Homography<To = FloorSpace, From = ImageSpace> {
    m: [[f64; 3]; 3],
    _spaces: PhantomData<fn(From) -> To>,
}

/// `floor_from_image`.
pub type FloorFromImage = Homography<FloorSpace, ImageSpace>;
/// `image_from_floor`.
pub type ImageFromFloor = Homography<ImageSpace, FloorSpace>;

impl<To, From> Clone for Homography<To, From> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<To, From> Copy for Homography<To, From> {}
impl<To, From> PartialEq for Homography<To, From> {
    fn eq(&self, other: &Self) -> bool {
        self.m == other.m
    }
}
impl<To, From> fmt::Debug for Homography<To, From> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Homography").field(&self.m).finish()
    }
}

/// `W` below this fraction of `|h31 x| + |h32 y| + |h33|` counts as the horizon.
const HORIZON_EPS: f64 = 1e-12;

impl<To, From> Homography<To, From> {
    /// Wraps a row-major matrix as is (its sign decides which side of the horizon is visible).
    pub fn from_matrix(m: [[f64; 3]; 3]) -> Self {
        Self { m, _spaces: PhantomData }
    }

    /// The row-major matrix.
    pub fn matrix(&self) -> [[f64; 3]; 3] {
        self.m
    }

    /// The homogeneous weight `W` of `(x, y)`: positive on the visible side of the horizon.
    pub fn weight(&self, (x, y): (f64, f64)) -> f64 {
        self.m[2][0] * x + self.m[2][1] * y + self.m[2][2]
    }

    /// Maps a point; `None` when it maps to or behind the horizon (`W <= eps`) or is not finite.
    pub fn project(&self, (x, y): (f64, f64)) -> Option<(f64, f64)> {
        let m = &self.m;
        let w = self.weight((x, y));
        let scale = (m[2][0] * x).abs() + (m[2][1] * y).abs() + m[2][2].abs();
        if w.is_nan() || w <= HORIZON_EPS * scale {
            return None;
        }
        let px = (m[0][0] * x + m[0][1] * y + m[0][2]) / w;
        let py = (m[1][0] * x + m[1][1] * y + m[1][2]) / w;
        (px.is_finite() && py.is_finite()).then_some((px, py))
    }

    /// The inverse map (`image_from_floor` from `floor_from_image`), keeping the visible side's `W > 0`;
    /// `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Homography<From, To>> {
        let m = &self.m;
        let det = det3(m);
        let norm = frobenius(m);
        if !det.is_finite() || norm == 0.0 || det.abs() <= 1e-14 * norm * norm * norm {
            return None;
        }
        // Adjugate / det: dividing by det (not just its magnitude) keeps W > 0 on the visible side.
        let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
        let inv = [
            [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
            [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
            [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
        ];
        Some(Homography::from_matrix(inv).scaled_to_unit())
    }

    /// The same map with the matrix divided by its (positive) Frobenius norm.
    fn scaled_to_unit(self) -> Self {
        let n = frobenius(&self.m);
        if n > 0.0 && n.is_finite() { Self::from_matrix(self.m.map(|row| row.map(|v| v / n))) } else { self }
    }
}

impl Homography<FloorSpace, ImageSpace> {
    /// `floor_from_image`: the floor point under an image pixel; `None` at or above the horizon.
    pub fn apply(&self, p: PointInImage) -> Option<PointOnFloor> {
        self.project((p.x as f64, p.y as f64)).map(|(x, y)| PointOnFloor::new(x, y))
    }
}

impl Homography<ImageSpace, FloorSpace> {
    /// `image_from_floor`: where a floor point appears in the image; `None` when it is behind the camera.
    /// The point may lie outside the frame.
    pub fn apply(&self, p: PointOnFloor) -> Option<PointInImage> {
        self.project((p.x, p.y)).map(|(x, y)| PointInImage { x: x as f32, y: y as f32 })
    }
}

type Mat3 = [[f64; 3]; 3];

fn det3(m: &Mat3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn frobenius(m: &[[f64; 3]; 3]) -> f64 {
    m.iter().flatten().map(|v| v * v).sum::<f64>().sqrt()
}

fn mul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut r = [[0.0; 3]; 3];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------------------
// Fitting
// ---------------------------------------------------------------------------------------------------------

/// One correspondence: a pixel in the camera image and the floor point (metres) it shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPair {
    pub image: (f64, f64),
    pub floor: PointOnFloor,
}

impl PointPair {
    pub fn new(image: (f64, f64), floor: (f64, f64)) -> Self {
        Self { image, floor: PointOnFloor::new(floor.0, floor.1) }
    }
}

/// Which of a pair's two points an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Image,
    Floor,
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Space::Image => "image",
            Space::Floor => "floor",
        })
    }
}

/// Two image points closer than this many pixels are the same point.
pub const SAME_IMAGE_POINT_PX: f64 = 0.5;
/// Two floor points closer than this many metres are the same point.
pub const SAME_FLOOR_POINT_M: f64 = 0.005;
/// Three points are collinear when the triangle's height is below this fraction of its longest side
/// (about 0.1 degrees): a 4-point fit through such points amplifies every click error enormously.
pub const COLLINEAR_TOLERANCE: f64 = 2e-3;

const MIN_RANDOM_SAMPLES: usize = 100;

/// How [`fit_homography_with`] runs RANSAC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// A pair is an inlier when its floor point reprojects within this many pixels of its image point.
    pub inlier_threshold_px: f64,
    /// Samples of 4 pairs to draw (at least 100); when there are no more distinct samples than this, all
    /// of them are tried instead.
    pub max_samples: usize,
    /// Seed of the sample draw, so a file always gives the same fit.
    pub seed: u64,
    /// Accept a mirror-image mapping (a camera whose image is flipped left-right). Calibration files
    /// never do: flip such a stream in its pipeline instead.
    pub allow_mirrored: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self { inlier_threshold_px: 8.0, max_samples: 2000, seed: 0x10b0_ca1b, allow_mirrored: false }
    }
}

/// How a fit was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FitMethod {
    /// Exactly 4 pairs: the homography passes through all of them, so the residuals are zero and say
    /// nothing about the calibration's accuracy.
    Exact,
    /// RANSAC over `samples` minimal samples (`exhaustive`: every choice of 4 pairs), then a least-squares
    /// refit on the inliers: normalised DLT, polished by Levenberg-Marquardt on the pixel error.
    Ransac { samples: usize, exhaustive: bool, threshold_px: f64 },
}

/// One pair's disagreement with the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Residual {
    /// Pixels between the image point and its floor point mapped into the image.
    pub px: f64,
    /// Metres between the floor point and its image point mapped onto the floor.
    pub m: f64,
    /// Whether the final fit used this pair (RANSAC rejects the others as outliers).
    pub inlier: bool,
}

/// A fitted calibration homography and how well it matches its pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub floor_from_image: FloorFromImage,
    pub image_from_floor: ImageFromFloor,
    pub method: FitMethod,
    /// One per pair, in the pairs' order.
    pub residuals: Vec<Residual>,
    /// Root-mean-square and largest residuals over the inliers.
    pub rms_px: f64,
    pub max_px: f64,
    pub rms_m: f64,
    pub max_m: f64,
}

impl Fit {
    /// Indices of the pairs RANSAC rejected.
    pub fn outliers(&self) -> Vec<usize> {
        self.residuals.iter().enumerate().filter(|(_, r)| !r.inlier).map(|(i, _)| i).collect()
    }

    pub fn inlier_count(&self) -> usize {
        self.residuals.iter().filter(|r| r.inlier).count()
    }
}

/// Why a set of pairs gives no usable homography. The message names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("points: {given} pairs given; at least 4 are needed")]
    TooFewPairs { given: usize },
    #[error("points[{index}].{space}: ({x}, {y}) is not a finite number")]
    NotFinite { index: usize, space: Space, x: f64, y: f64 },
    #[error(
        "points[{second}].{space}: ({x}, {y}) is the same point as points[{first}].{space} \
         (each pair needs its own point)"
    )]
    Duplicate { space: Space, first: usize, second: usize, x: f64, y: f64 },
    #[error(
        "points: 3 points are collinear: {}, {}, {} (their {space} positions lie on one line; with only 4 \
         pairs, no 3 may be in a line)",
        indices[0],
        indices[1],
        indices[2]
    )]
    Collinear { space: Space, indices: [usize; 3] },
    #[error(
        "points: no 4 of the {given} pairs are in general position (every choice of 4 has 3 points in a \
         line); spread the points over the floor"
    )]
    NoGeneralPosition { given: usize },
    #[error("points: {}", folded_message(indices))]
    Folded { indices: Vec<usize> },
    #[error(
        "points: the floor points are a mirror image of the image points; floor y must grow down the \
         plan (is the plan measured with y up, or x and y swapped?)"
    )]
    Mirrored,
    #[error(
        "points: only {inliers} of {given} pairs agree within {threshold_px} px; check the pairs (or raise \
         inlier_threshold_px)"
    )]
    NoConsensus { inliers: usize, given: usize, threshold_px: f64 },
    #[error("points: the fitted homography is singular")]
    Singular,
}

fn folded_message(indices: &[usize]) -> String {
    let list = indices.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let which = match indices.len() {
        0 => "some pairs".to_string(),
        1 => format!("pair {list}"),
        _ => format!("pairs {list}"),
    };
    format!(
        "{which} would lie beyond the horizon of the others: no camera sees the floor like this (are two \
         floor points swapped?)"
    )
}

/// [`fit_homography_with`] with the default options (8 px inlier threshold, fixed seed).
pub fn fit_homography(pairs: &[PointPair]) -> Result<Fit, FitError> {
    fit_homography_with(pairs, &FitOptions::default())
}

/// Fits `floor_from_image` to the pairs: an exact normalised DLT for 4 pairs; for more, RANSAC over
/// minimal samples, then a least-squares refit on the inliers (normalised DLT polished by
/// Levenberg-Marquardt on the pixel error), repeated until the inlier set settles.
pub fn fit_homography_with(pairs: &[PointPair], opts: &FitOptions) -> Result<Fit, FitError> {
    let n = pairs.len();
    if n < 4 {
        return Err(FitError::TooFewPairs { given: n });
    }
    for (i, p) in pairs.iter().enumerate() {
        if !(p.image.0.is_finite() && p.image.1.is_finite()) {
            return Err(FitError::NotFinite { index: i, space: Space::Image, x: p.image.0, y: p.image.1 });
        }
        if !(p.floor.x.is_finite() && p.floor.y.is_finite()) {
            return Err(FitError::NotFinite { index: i, space: Space::Floor, x: p.floor.x, y: p.floor.y });
        }
    }
    for j in 0..n {
        for i in 0..j {
            let (a, b) = (pairs[i], pairs[j]);
            if dist(a.image, b.image) < SAME_IMAGE_POINT_PX {
                let (x, y) = b.image;
                return Err(FitError::Duplicate { space: Space::Image, first: i, second: j, x, y });
            }
            if a.floor.distance(&b.floor) < SAME_FLOOR_POINT_M {
                let (x, y) = (b.floor.x, b.floor.y);
                return Err(FitError::Duplicate { space: Space::Floor, first: i, second: j, x, y });
            }
        }
    }

    if n == 4 {
        let all = [0, 1, 2, 3];
        if let Some((space, indices)) = collinear_triple(pairs, &all) {
            return Err(FitError::Collinear { space, indices });
        }
        let h = dlt(pairs, &all).ok_or(FitError::Singular)?;
        let h = orient(h, pairs, &all, opts.allow_mirrored).map_err(Problem::into_error)?;
        return finish(pairs, h, vec![true; 4], FitMethod::Exact);
    }

    let threshold = opts.inlier_threshold_px;
    let total = binomial4(n);
    let exhaustive = total <= opts.max_samples as u128;
    let mut search = Search { pairs, opts, best: None, general: 0, mirrored: 0, folded: 0, samples: 0 };
    if exhaustive {
        for a in 0..n {
            for b in a + 1..n {
                for c in b + 1..n {
                    for d in c + 1..n {
                        search.try_sample([a, b, c, d]);
                    }
                }
            }
        }
    } else {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        for _ in 0..opts.max_samples.max(MIN_RANDOM_SAMPLES) {
            let s = rand::seq::index::sample(&mut rng, n, 4);
            let mut s = [s.index(0), s.index(1), s.index(2), s.index(3)];
            s.sort_unstable();
            search.try_sample(s);
        }
    }
    let samples = search.samples;
    let Some(best) = search.best else {
        return Err(if search.general == 0 {
            FitError::NoGeneralPosition { given: n }
        } else if search.mirrored > 0 && search.folded == 0 {
            FitError::Mirrored
        } else {
            FitError::Folded { indices: Vec::new() }
        });
    };

    // Refit on the inliers until the inlier set settles.
    let (mut model, mut mask) = (best.model, best.mask);
    for _ in 0..10 {
        let idx: Vec<usize> = (0..n).filter(|&i| mask[i]).collect();
        let Some(h) = dlt(pairs, &idx) else { break };
        let h = refine(pairs, &idx, h);
        let Ok(h) = orient(h, pairs, &idx, opts.allow_mirrored) else { break };
        let Some(inv) = h.inverse() else { break };
        let new_mask: Vec<bool> = pairs.iter().map(|p| px_residual(&inv, p) <= threshold).collect();
        let count = new_mask.iter().filter(|&&b| b).count();
        if count < 4 || count * 2 < n {
            break;
        }
        model = h;
        if new_mask == mask {
            break;
        }
        mask = new_mask;
    }
    // The mask must describe the model it comes with.
    let inv = model.inverse().ok_or(FitError::Singular)?;
    let mask: Vec<bool> = pairs.iter().map(|p| px_residual(&inv, p) <= threshold).collect();
    let inliers = mask.iter().filter(|&&b| b).count();
    if inliers < 4 || inliers * 2 < n {
        return Err(FitError::NoConsensus { inliers, given: n, threshold_px: threshold });
    }
    finish(pairs, model, mask, FitMethod::Ransac { samples, exhaustive, threshold_px: threshold })
}

struct Candidate {
    model: FloorFromImage,
    mask: Vec<bool>,
    inliers: usize,
    cost: f64,
}

struct Search<'a> {
    pairs: &'a [PointPair],
    opts: &'a FitOptions,
    best: Option<Candidate>,
    /// Samples with no 3 points collinear, and of those the ones refused as mirrored or folded.
    general: usize,
    mirrored: usize,
    folded: usize,
    samples: usize,
}

impl Search<'_> {
    fn try_sample(&mut self, s: [usize; 4]) {
        self.samples += 1;
        if collinear_triple(self.pairs, &s).is_some() {
            return;
        }
        self.general += 1;
        let Some(h) = dlt(self.pairs, &s) else { return };
        let h = match orient(h, self.pairs, &s, self.opts.allow_mirrored) {
            Ok(h) => h,
            Err(Problem::Mirrored) => {
                self.mirrored += 1;
                return;
            }
            Err(_) => {
                self.folded += 1;
                return;
            }
        };
        let Some(inv) = h.inverse() else { return };
        let t = self.opts.inlier_threshold_px;
        let residuals: Vec<f64> = self.pairs.iter().map(|p| px_residual(&inv, p)).collect();
        let mask: Vec<bool> = residuals.iter().map(|&r| r <= t).collect();
        let inliers = mask.iter().filter(|&&b| b).count();
        // Squared residual of inliers, the threshold squared for outliers.
        let cost: f64 = residuals.iter().map(|&r| r.min(t).powi(2)).sum();
        let better = match &self.best {
            None => true,
            // MSAC: the lowest cost wins, so a model that fits the inliers exactly beats one that stretches
            // to take in one more point at the edge of the threshold.
            Some(b) => cost < b.cost || cost == b.cost && inliers > b.inliers,
        };
        if better {
            self.best = Some(Candidate { model: h, mask, inliers, cost });
        }
    }
}

fn binomial4(n: usize) -> u128 {
    let n = n as u128;
    if n < 4 { 0 } else { n * (n - 1) * (n - 2) * (n - 3) / 24 }
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

fn floor_xy(p: &PointPair) -> (f64, f64) {
    (p.floor.x, p.floor.y)
}

fn px_residual(image_from_floor: &ImageFromFloor, p: &PointPair) -> f64 {
    image_from_floor.project(floor_xy(p)).map_or(f64::INFINITY, |q| dist(q, p.image))
}

fn m_residual(floor_from_image: &FloorFromImage, p: &PointPair) -> f64 {
    floor_from_image.project(p.image).map_or(f64::INFINITY, |q| dist(q, floor_xy(p)))
}

/// Are `a`, `b`, `c` in a line, relative to the size of their triangle?
fn collinear(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> bool {
    let longest = dist(a, b).max(dist(b, c)).max(dist(c, a));
    if longest == 0.0 {
        return true;
    }
    let area2 = ((b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)).abs();
    area2 / longest <= COLLINEAR_TOLERANCE * longest
}

/// The first triple among `idx` that is collinear in the image or on the floor.
fn collinear_triple(pairs: &[PointPair], idx: &[usize]) -> Option<(Space, [usize; 3])> {
    for (space, get) in
        [(Space::Image, (|p: &PointPair| p.image) as fn(&PointPair) -> (f64, f64)), (Space::Floor, floor_xy)]
    {
        for a in 0..idx.len() {
            for b in a + 1..idx.len() {
                for c in b + 1..idx.len() {
                    let t = [idx[a], idx[b], idx[c]];
                    if collinear(get(&pairs[t[0]]), get(&pairs[t[1]]), get(&pairs[t[2]])) {
                        return Some((space, t));
                    }
                }
            }
        }
    }
    None
}

/// Hartley normalisation: the similarity that moves the points' centroid to the origin and their mean
/// distance from it to sqrt(2). Returns (T, T^-1).
fn normaliser(pts: &[(f64, f64)]) -> Option<(Mat3, Mat3)> {
    let n = pts.len() as f64;
    let (cx, cy) = pts.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
    let (cx, cy) = (cx / n, cy / n);
    let mean = pts.iter().map(|p| dist(*p, (cx, cy))).sum::<f64>() / n;
    if !(mean > 0.0 && mean.is_finite()) {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean;
    let t = [[s, 0.0, -s * cx], [0.0, s, -s * cy], [0.0, 0.0, 1.0]];
    let inv = [[1.0 / s, 0.0, cx], [0.0, 1.0 / s, cy], [0.0, 0.0, 1.0]];
    Some((t, inv))
}

/// Normalised DLT over the pairs at `idx`: the matrix of `floor_from_image`, sign not yet fixed.
fn dlt(pairs: &[PointPair], idx: &[usize]) -> Option<[[f64; 3]; 3]> {
    let img: Vec<(f64, f64)> = idx.iter().map(|&i| pairs[i].image).collect();
    let flr: Vec<(f64, f64)> = idx.iter().map(|&i| floor_xy(&pairs[i])).collect();
    let (ti, _) = normaliser(&img)?;
    let (tf, tf_inv) = normaliser(&flr)?;
    let apply = |t: &[[f64; 3]; 3], p: (f64, f64)| (t[0][0] * p.0 + t[0][2], t[1][1] * p.1 + t[1][2]);
    let mut a: Vec<[f64; 9]> = Vec::with_capacity(2 * idx.len().max(5));
    for (p, q) in img.iter().zip(&flr) {
        let (x, y) = apply(&ti, *p);
        let (u, v) = apply(&tf, *q);
        a.push([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u]);
        a.push([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v]);
    }
    let h = smallest_right_singular_vector(&mut a);
    let hn = [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], h[8]]];
    let m = mul3(&mul3(&tf_inv, &hn), &ti);
    m.iter().flatten().all(|v| v.is_finite()).then_some(m)
}

/// Polishes a DLT fit by Levenberg-Marquardt on the reprojection error in image pixels (floor point ->
/// image), the error the inlier threshold and the report use: the DLT minimises an algebraic error instead,
/// which weights the pairs unevenly under strong perspective. Works in the Hartley-normalised coordinates
/// with `image_from_floor`'s last entry fixed to 1 (the floor centroid is in view, so it is not 0). Returns
/// `floor_from_image`; the input unchanged if it cannot improve on it.
fn refine(pairs: &[PointPair], idx: &[usize], floor_from_image: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let img: Vec<(f64, f64)> = idx.iter().map(|&i| pairs[i].image).collect();
    let flr: Vec<(f64, f64)> = idx.iter().map(|&i| floor_xy(&pairs[i])).collect();
    let (Some((ti, ti_inv)), Some((tf, tf_inv))) = (normaliser(&img), normaliser(&flr)) else {
        return floor_from_image;
    };
    let Some(g) = FloorFromImage::from_matrix(floor_from_image).inverse() else { return floor_from_image };
    let gn = mul3(&mul3(&ti, &g.matrix()), &tf_inv);
    if gn[2][2].is_nan() || gn[2][2].abs() <= 1e-9 * frobenius(&gn) {
        return floor_from_image;
    }
    let mut p: [f64; 8] = std::array::from_fn(|k| gn[k / 3][k % 3] / gn[2][2]);
    let at = |t: &[[f64; 3]; 3], q: (f64, f64)| (t[0][0] * q.0 + t[0][2], t[1][1] * q.1 + t[1][2]);
    let pts: Vec<((f64, f64), (f64, f64))> = flr.iter().zip(&img).map(|(f, i)| (at(&tf, *f), at(&ti, *i))).collect();
    // Sum of squared residuals, with the Jacobian's normal equations when asked.
    let eval = |p: &[f64; 8], with_jacobian: bool| -> Option<(f64, [[f64; 8]; 8], [f64; 8])> {
        let (mut cost, mut jtj, mut jtr) = (0.0, [[0.0; 8]; 8], [0.0; 8]);
        for &((x, y), (u0, v0)) in &pts {
            let w = p[6] * x + p[7] * y + 1.0;
            if w.is_nan() || w <= 1e-9 {
                return None;
            }
            let u = (p[0] * x + p[1] * y + p[2]) / w;
            let v = (p[3] * x + p[4] * y + p[5]) / w;
            let (ru, rv) = (u - u0, v - v0);
            cost += ru * ru + rv * rv;
            if with_jacobian {
                let ju = [x / w, y / w, 1.0 / w, 0.0, 0.0, 0.0, -u * x / w, -u * y / w];
                let jv = [0.0, 0.0, 0.0, x / w, y / w, 1.0 / w, -v * x / w, -v * y / w];
                for a in 0..8 {
                    jtr[a] += ju[a] * ru + jv[a] * rv;
                    for b in 0..8 {
                        jtj[a][b] += ju[a] * ju[b] + jv[a] * jv[b];
                    }
                }
            }
        }
        cost.is_finite().then_some((cost, jtj, jtr))
    };
    let Some((mut cost, mut jtj, mut jtr)) = eval(&p, true) else { return floor_from_image };
    let mut lambda = 1e-3;
    for _ in 0..100 {
        if cost <= 1e-24 {
            break;
        }
        let mut improved = false;
        while lambda < 1e12 {
            let mut a = jtj;
            for (k, row) in a.iter_mut().enumerate() {
                row[k] += lambda * jtj[k][k].max(1e-12);
            }
            let Some(step) = solve8(a, jtr.map(|v| -v)) else { break };
            let trial: [f64; 8] = std::array::from_fn(|k| p[k] + step[k]);
            match eval(&trial, false) {
                Some((c, _, _)) if c < cost => {
                    let done = (cost - c) <= 1e-12 * cost;
                    p = trial;
                    (cost, jtj, jtr) = eval(&p, true).expect("just evaluated");
                    lambda = (lambda / 10.0).max(1e-12);
                    improved = !done;
                    break;
                }
                _ => lambda *= 10.0,
            }
        }
        if !improved {
            break;
        }
    }
    let gn = [[p[0], p[1], p[2]], [p[3], p[4], p[5]], [p[6], p[7], 1.0]];
    let g = Homography::<ImageSpace, FloorSpace>::from_matrix(mul3(&mul3(&ti_inv, &gn), &tf));
    g.inverse().map_or(floor_from_image, |h| h.matrix())
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` when `a` is singular.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].is_nan() || a[pivot][col].abs() <= 1e-14 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, below) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (r, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + r] -= f * b[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The unit vector `h` minimising `|A h|`: the right singular vector of the smallest singular value,
/// by one-sided (Hestenes) Jacobi SVD. Works on `a` in place; fine for any number of rows, including the
/// 8 of a minimal sample (one column then goes to zero).
fn smallest_right_singular_vector(a: &mut [[f64; 9]]) -> [f64; 9] {
    let mut v = [[0.0; 9]; 9];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..8 {
            for q in p + 1..9 {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for r in a.iter() {
                    alpha += r[p] * r[p];
                    beta += r[q] * r[q];
                    gamma += r[p] * r[q];
                }
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                // A rotation this small changes nothing in f64 (rounding noise on a column that is already
                // ~0 would otherwise keep the sweeps going).
                if t.abs() <= f64::EPSILON {
                    continue;
                }
                rotated = true;
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for r in a.iter_mut() {
                    let (x, y) = (r[p], r[q]);
                    r[p] = c * x - s * y;
                    r[q] = s * x + c * y;
                }
                for r in v.iter_mut() {
                    let (x, y) = (r[p], r[q]);
                    r[p] = c * x - s * y;
                    r[q] = s * x + c * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let norm2 = |j: usize| a.iter().map(|r| r[j] * r[j]).sum::<f64>();
    let k = (0..9).min_by(|&i, &j| norm2(i).total_cmp(&norm2(j))).unwrap_or(8);
    std::array::from_fn(|i| v[i][k])
}

enum Problem {
    Folded(Vec<usize>),
    Mirrored,
    Singular,
}

impl Problem {
    fn into_error(self) -> FitError {
        match self {
            Problem::Folded(i) => FitError::Folded { indices: i },
            Problem::Mirrored => FitError::Mirrored,
            Problem::Singular => FitError::Singular,
        }
    }
}

/// Fixes the sign so the pairs' image points have `W > 0`, refuses folds (mixed signs) and, unless
/// allowed, mirror images (`det < 0`: a camera above the floor sees the plan the right way round), and
/// scales the matrix to unit norm.
fn orient(
    m: [[f64; 3]; 3],
    pairs: &[PointPair],
    idx: &[usize],
    allow_mirrored: bool,
) -> Result<FloorFromImage, Problem> {
    let h = FloorFromImage::from_matrix(m).scaled_to_unit();
    let ws: Vec<f64> = idx.iter().map(|&i| h.weight(pairs[i].image)).collect();
    let positive = ws.iter().filter(|&&w| w > 0.0).count();
    let negative = ws.iter().filter(|&&w| w < 0.0).count();
    if positive + negative < ws.len() {
        return Err(Problem::Folded(idx.iter().zip(&ws).filter(|(_, w)| **w == 0.0).map(|(i, _)| *i).collect()));
    }
    let h = if negative > positive { FloorFromImage::from_matrix(h.m.map(|r| r.map(|v| -v))) } else { h };
    if positive > 0 && negative > 0 {
        let minority: Vec<usize> = idx.iter().copied().filter(|&i| h.weight(pairs[i].image) < 0.0).collect();
        return Err(Problem::Folded(minority));
    }
    let det = det3(&h.m);
    if det == 0.0 || !det.is_finite() {
        return Err(Problem::Singular);
    }
    if det < 0.0 && !allow_mirrored {
        return Err(Problem::Mirrored);
    }
    Ok(h)
}

fn finish(pairs: &[PointPair], h: FloorFromImage, mask: Vec<bool>, method: FitMethod) -> Result<Fit, FitError> {
    let inv = h.inverse().ok_or(FitError::Singular)?;
    let residuals: Vec<Residual> = pairs
        .iter()
        .zip(mask)
        .map(|(p, inlier)| Residual { px: px_residual(&inv, p), m: m_residual(&h, p), inlier })
        .collect();
    let used: Vec<&Residual> = residuals.iter().filter(|r| r.inlier).collect();
    let k = used.len().max(1) as f64;
    let rms = |f: fn(&Residual) -> f64| (used.iter().map(|r| f(r).powi(2)).sum::<f64>() / k).sqrt();
    let max = |f: fn(&Residual) -> f64| used.iter().map(|r| f(r)).fold(0.0, f64::max);
    Ok(Fit {
        floor_from_image: h,
        image_from_floor: inv,
        method,
        rms_px: rms(|r| r.px),
        max_px: max(|r| r.px),
        rms_m: rms(|r| r.m),
        max_m: max(|r| r.m),
        residuals,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Floor plan, zones, lines
// ---------------------------------------------------------------------------------------------------------

/// The furthest a calibration's floor points, zones and lines may lie from the plan's origin, in metres.
pub const MAX_FLOOR_M: f64 = 10_000.0;
/// The finest floor plan scale: plan pixels per metre.
pub const MAX_PLAN_PX_PER_M: f64 = 1_000.0;
/// The furthest the plan's origin may lie outside the plan image, in pixels.
pub const MAX_PLAN_PX: f64 = 1_000_000.0;

/// A point on the floor plan image, in its pixels (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PointOnPlan {
    pub x: f64,
    pub y: f64,
}

/// The site's floor plan image and its scale; shared by every camera of a site.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorPlan {
    /// The plan image, resolved against the calibration file's folder. Not required to exist when the
    /// file is loaded (the check report says when it is missing); only drawing needs it.
    pub image: PathBuf,
    pub pixels_per_metre: f64,
    /// The plan pixel of floor point (0, 0) m.
    pub origin_px: (f64, f64),
}

impl FloorPlan {
    pub fn plan_from_floor(&self, p: PointOnFloor) -> PointOnPlan {
        PointOnPlan {
            x: self.origin_px.0 + p.x * self.pixels_per_metre,
            y: self.origin_px.1 + p.y * self.pixels_per_metre,
        }
    }

    pub fn floor_from_plan(&self, p: PointOnPlan) -> PointOnFloor {
        PointOnFloor::new(
            (p.x - self.origin_px.0) / self.pixels_per_metre,
            (p.y - self.origin_px.1) / self.pixels_per_metre,
        )
    }
}

/// What a zone is for; behaviour analysis treats each kind its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    Entrance,
    Queue,
    Shelf,
    #[default]
    Zone,
}

impl ZoneKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ZoneKind::Entrance => "entrance",
            ZoneKind::Queue => "queue",
            ZoneKind::Shelf => "shelf",
            ZoneKind::Zone => "zone",
        }
    }
}

/// A named area of the floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub kind: ZoneKind,
    pub polygon: PolygonOnFloor,
}

/// Which side of a line, walking from `from` to `to` on the plan (seen from above, y down), counts as in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InSide {
    Left,
    Right,
}

/// A named counting line segment on the floor with an "in" side.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub from: PointOnFloor,
    pub to: PointOnFloor,
    pub in_side: InSide,
}

impl Line {
    pub fn length(&self) -> f64 {
        self.from.distance(&self.to)
    }
}

/// Why a polygon is not simple, in words naming its points and edges; `None` when it is simple.
pub fn polygon_problem(poly: &PolygonOnFloor) -> Option<String> {
    poly.not_simple().map(|why| match why {
        NotSimple::TooFewPoints(n) => format!("{n} points; a polygon needs at least 3"),
        NotSimple::ZeroLengthEdge(i) => {
            format!("edge {i} has zero length (points {i} and {} are the same)", (i + 1) % poly.points.len())
        }
        NotSimple::EdgesCross(i, j) => format!("not a simple polygon (edges {i} and {j} cross)"),
        NotSimple::NoArea => "not a simple polygon (it has no area: all points in a line)".into(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// The calibration file
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read calibration {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("calibration {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("calibration {path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
    #[error("calibration {path}: {source}")]
    Fit { path: PathBuf, source: FitError },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalibration {
    camera: String,
    image_width: u32,
    image_height: u32,
    inlier_threshold_px: Option<f64>,
    /// The site file (floor plan, zones, lines) this camera maps onto, relative to this file; without it,
    /// this file holds them itself (the older, one-file form).
    site: Option<PathBuf>,
    /// With a site: the zones and lines of the site this camera sees (default: all of them).
    sees: Option<Vec<String>>,
    floor_plan: Option<RawFloorPlan>,
    #[serde(default)]
    points: Vec<RawPoint>,
    #[serde(default)]
    zones: Vec<RawZone>,
    #[serde(default)]
    lines: Vec<RawLine>,
}

/// A site file: the store's floor plan and the zones and lines on it, defined once for every camera.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    floor_plan: RawFloorPlan,
    #[serde(default)]
    zones: Vec<RawZone>,
    #[serde(default)]
    lines: Vec<RawLine>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawFloorPlan {
    image: PathBuf,
    pixels_per_metre: f64,
    origin_px: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    image: [f64; 2],
    floor: [f64; 2],
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    #[serde(default)]
    kind: ZoneKind,
    polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    name: String,
    from: [f64; 2],
    to: [f64; 2],
    in_side: InSide,
}

/// One camera's validated calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The file it came from.
    pub path: PathBuf,
    /// The camera's name in the iobox config.
    pub camera: String,
    /// The resolution the image points were taken at.
    pub image_width: u32,
    pub image_height: u32,
    pub floor_plan: FloorPlan,
    pub points: Vec<PointPair>,
    pub zones: Vec<Zone>,
    pub lines: Vec<Line>,
    /// `fit.floor_from_image` and its inverse `fit.image_from_floor`, with the residuals.
    pub fit: Fit,
}

impl Calibration {
    /// Reads and validates one calibration file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Read { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, path, &base)
    }

    /// Parses TOML text; `path` names it in errors and `base` anchors relative paths (the site file, or
    /// the plan image).
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Calibration> {
        let mut raw: RawCalibration = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: crate::config::describe_toml_error(text, &e),
        })?;
        let Some(site) = raw.site.take() else {
            if raw.sees.is_some() {
                return Err(Error::Invalid {
                    path: path.to_path_buf(),
                    field: "sees".into(),
                    message: "names zones of a site file; add `site = \"site.toml\"` or remove it".into(),
                });
            }
            return validate(raw, path, base);
        };
        let invalid =
            |field: &str, message: String| Error::Invalid { path: path.to_path_buf(), field: field.into(), message };
        if raw.floor_plan.is_some() || !raw.zones.is_empty() || !raw.lines.is_empty() {
            return Err(invalid(
                "site",
                format!(
                    "this camera takes its floor plan, zones and lines from {}: remove [floor_plan], [[zones]] and \
                     [[lines]] here (edit them in the site file)",
                    site.display()
                ),
            ));
        }
        let site_path = if site.is_absolute() { site } else { base.join(site) };
        let (site_raw, site_base) = read_site(&site_path)?;
        // The site is checked as a whole, its errors naming the site file and its own indices.
        let sees = raw.sees.take();
        let whole = RawCalibration {
            floor_plan: Some(site_raw.floor_plan),
            zones: site_raw.zones,
            lines: site_raw.lines,
            ..raw
        };
        let mut cal = validate_with(whole, path, &site_path, &site_base)?;
        if let Some(names) = sees {
            for (i, name) in names.iter().enumerate() {
                if cal.zone(name).is_none() && !cal.lines.iter().any(|l| &l.name == name) {
                    return Err(invalid(
                        &format!("sees[{i}]"),
                        format!("{name:?} is no zone or line of {}", site_path.display()),
                    ));
                }
            }
            cal.zones.retain(|z| names.contains(&z.name));
            cal.lines.retain(|l| names.contains(&l.name));
        }
        Ok(cal)
    }

    /// Loads every `*.toml` in `dir` (sorted by file name): the cameras of one site, all mapping onto one
    /// floor plan. They must share the plan image, scale and origin, name different cameras, and agree on
    /// any zone or line they both name. An empty folder gives an empty list.
    pub fn load_dir(dir: &Path) -> Result<Vec<Calibration>> {
        let read_err = |e: std::io::Error| Error::Read { path: dir.to_path_buf(), message: e.to_string() };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        // A site file there is read through the cameras that name it.
        files.retain(|f| std::fs::read_to_string(f).map_or(true, |t| !is_site_file(&t)));
        let cals = files.iter().map(|f| Calibration::load(f)).collect::<Result<Vec<_>>>()?;
        check_site(&cals)?;
        Ok(cals)
    }

    /// The floor point under an image pixel; `None` at or above the horizon.
    pub fn floor_from_image(&self, p: PointInImage) -> Option<PointOnFloor> {
        self.fit.floor_from_image.apply(p)
    }

    /// Where a floor point appears in the image (possibly outside the frame); `None` behind the camera.
    pub fn image_from_floor(&self, p: PointOnFloor) -> Option<PointInImage> {
        self.fit.image_from_floor.apply(p)
    }

    /// Whether a pixel position lies inside the calibrated frame.
    pub fn in_image(&self, p: PointInImage) -> bool {
        p.x >= 0.0 && p.y >= 0.0 && p.x <= self.image_width as f32 && p.y <= self.image_height as f32
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    /// What `iobox calibrate check` prints: the fit, its errors, one row per pair, the zones and lines,
    /// and warnings.
    pub fn check_report(&self) -> String {
        let mut out = String::new();
        let mut warnings: Vec<String> = Vec::new();
        let fit = &self.fit;
        let (w, h) = (self.image_width as f64, self.image_height as f64);
        let _ = writeln!(out, "calibration {} for camera {:?}", self.path.display(), self.camera);
        let _ = writeln!(out, "camera image: {}x{} px", self.image_width, self.image_height);
        let plan = &self.floor_plan;
        let missing = if plan.image.is_file() { "" } else { " (missing)" };
        let _ = writeln!(
            out,
            "floor plan: {}{missing}, {} px/m, floor (0, 0) m at plan pixel ({}, {})",
            plan.image.display(),
            plan.pixels_per_metre,
            plan.origin_px.0,
            plan.origin_px.1
        );
        if !missing.is_empty() {
            warnings.push(format!("the floor plan image {} does not exist", plan.image.display()));
        }

        let n = self.points.len();
        match fit.method {
            FitMethod::Exact => {
                let _ = writeln!(out, "fit: normalised DLT through exactly 4 pairs");
                warnings.push(
                    "with exactly 4 pairs the fit passes through every pair, so the errors below are zero and \
                     prove nothing; add pairs (6-10, spread over the floor) to measure the calibration"
                        .into(),
                );
            }
            FitMethod::Ransac { samples, exhaustive, threshold_px } => {
                let how = if exhaustive { "every one" } else { "seeded random draw" };
                let _ = writeln!(
                    out,
                    "fit: RANSAC over {n} pairs ({samples} samples of 4, {how}), inlier threshold {threshold_px} px, \
                     then a least-squares refit on the {} inliers (normalised DLT, polished to the least pixel error)",
                    fit.inlier_count()
                );
            }
        }
        let _ = writeln!(
            out,
            "error over inliers: RMS {:.2} px / {:.3} m, max {:.2} px / {:.3} m",
            fit.rms_px, fit.rms_m, fit.max_px, fit.max_m
        );
        let outliers = fit.outliers();
        if !outliers.is_empty() {
            let list = outliers.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
            let which = if outliers.len() == 1 { "pair" } else { "pairs" };
            warnings.push(format!("{which} {list} disagree with the others and were left out (outliers): check them"));
        }
        if let Some(gsd) = ground_sampling(&fit.floor_from_image, (w / 2.0, h / 2.0)) {
            let _ = writeln!(out, "at the image centre one pixel is about {:.1} cm of floor", gsd * 100.0);
        }
        let _ = writeln!(out, "{}", horizon_line(&fit.floor_from_image, w, h));
        let m = fit.floor_from_image.matrix();
        let _ = writeln!(out, "floor_from_image (row-major, unit norm):");
        for row in m {
            let _ = writeln!(out, "  [{:>14.6e} {:>14.6e} {:>14.6e}]", row[0], row[1], row[2]);
        }

        let _ = writeln!(out, "\npoints:");
        let _ = writeln!(out, "    #    image x   image y   floor x  floor y    err px    err m  used");
        for (i, (p, r)) in self.points.iter().zip(&fit.residuals).enumerate() {
            let _ = writeln!(
                out,
                "  {:>3}  {:>9.1} {:>9.1}  {:>8.3} {:>8.3}  {:>8.2} {:>8.3}  {}",
                i,
                p.image.0,
                p.image.1,
                p.floor.x,
                p.floor.y,
                r.px,
                r.m,
                if r.inlier { "inlier" } else { "OUTLIER" }
            );
        }

        let in_view = |q: PointOnFloor| self.image_from_floor(q).is_some_and(|p| self.in_image(p));
        let _ = writeln!(out, "\nzones: {}", self.zones.len());
        for z in &self.zones {
            let seen = z.polygon.points.iter().filter(|&&q| in_view(q)).count();
            let _ = writeln!(
                out,
                "  {:<16} {:<8} {:>7.2} m2  {}/{} corners in view",
                z.name,
                z.kind.as_str(),
                z.polygon.area(),
                seen,
                z.polygon.points.len()
            );
            if seen == 0 && !in_view(z.polygon.centroid()) {
                warnings.push(format!("zone {:?} is not in this camera's view", z.name));
            }
        }
        let _ = writeln!(out, "lines: {}", self.lines.len());
        for l in &self.lines {
            let seen = [l.from, l.to].iter().filter(|&&q| in_view(q)).count();
            let side = match l.in_side {
                InSide::Left => "left",
                InSide::Right => "right",
            };
            let _ = writeln!(
                out,
                "  {:<16} ({:.2}, {:.2}) -> ({:.2}, {:.2}) m, {:.2} m long, in on the {side}, {seen}/2 ends in view",
                l.name,
                l.from.x,
                l.from.y,
                l.to.x,
                l.to.y,
                l.length()
            );
            let mid = PointOnFloor::new((l.from.x + l.to.x) / 2.0, (l.from.y + l.to.y) / 2.0);
            if seen == 0 && !in_view(mid) {
                warnings.push(format!("line {:?} is not in this camera's view", l.name));
            }
        }
        if warnings.is_empty() {
            let _ = writeln!(out, "\nok");
        } else {
            let _ = writeln!(out, "\nwarnings:");
            for w in warnings {
                let _ = writeln!(out, "  - {w}");
            }
        }
        out
    }
}

/// Metres of floor per image pixel at `p` (geometric mean of the two axes).
fn ground_sampling(h: &FloorFromImage, p: (f64, f64)) -> Option<f64> {
    let c = h.project(p)?;
    let dx = h.project((p.0 + 1.0, p.1))?;
    let dy = h.project((p.0, p.1 + 1.0))?;
    Some((dist(c, dx) * dist(c, dy)).sqrt())
}

/// Where the floor's horizon (`W = 0`) runs through the frame, if it does.
fn horizon_line(h: &FloorFromImage, w: f64, ht: f64) -> String {
    let corners = [(0.0, 0.0), (w, 0.0), (w, ht), (0.0, ht)];
    let visible = corners.iter().filter(|&&c| h.project(c).is_some()).count();
    let m = h.matrix();
    match visible {
        4 => "horizon: outside the frame (every pixel looks at the floor plane)".into(),
        0 => "horizon: the whole frame is above the floor's horizon (check the pairs)".into(),
        _ if m[2][1].abs() > 1e-300 => {
            let y_at = |x: f64| -(m[2][0] * x + m[2][2]) / m[2][1];
            format!(
                "horizon: crosses the frame from (0, {:.0}) to ({w}, {:.0}); pixels beyond it are not floor",
                y_at(0.0),
                y_at(w)
            )
        }
        _ => "horizon: crosses the frame; pixels beyond it are not floor".into(),
    }
}

fn fmt_xy(p: [f64; 2]) -> String {
    format!("({}, {})", p[0], p[1])
}

/// The largest site file read (a plan with thousands of zones is well under it).
const MAX_SITE_BYTES: u64 = 1 << 20;

/// Reads and parses a site file; its folder anchors the plan image.
fn read_site(path: &Path) -> Result<(RawSite, PathBuf)> {
    let read_err = |message: String| Error::Read { path: path.to_path_buf(), message };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_SITE_BYTES {
        return Err(read_err(format!("a site file is a regular file of at most {MAX_SITE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    let site: RawSite = toml::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: crate::config::describe_toml_error(&text, &e),
    })?;
    Ok((site, path.parent().map(Path::to_path_buf).unwrap_or_default()))
}

/// Whether a TOML file is a site file (a floor plan without a camera) rather than a camera's calibration.
pub fn is_site_file(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| !t.contains_key("camera") && t.contains_key("floor_plan"))
}

fn validate(raw: RawCalibration, path: &Path, base: &Path) -> Result<Calibration> {
    validate_with(raw, path, path, base)
}

/// Validates a calibration whose floor plan, zones and lines come from `site_path` (the file itself in the
/// one-file form): errors in those name that file.
fn validate_with(raw: RawCalibration, path: &Path, site_path: &Path, base: &Path) -> Result<Calibration> {
    let invalid = |field: &str, message: String| {
        let site_field = ["floor_plan", "zones", "lines"].iter().any(|f| field.starts_with(f));
        let path = if site_field { site_path } else { path };
        Error::Invalid { path: path.to_path_buf(), field: field.to_string(), message }
    };
    let Some(fp) = raw.floor_plan else {
        return Err(invalid("floor_plan", "is missing: give [floor_plan] here, or `site = \"site.toml\"`".into()));
    };
    let finite = |p: [f64; 2]| p[0].is_finite() && p[1].is_finite();
    // Floor points further out than any store, and plan pixels beyond any image, are typing errors; left
    // in, they make drawing and fitting run on numbers no canvas holds.
    let on_floor = |p: [f64; 2]| p[0].abs() <= MAX_FLOOR_M && p[1].abs() <= MAX_FLOOR_M;

    if raw.camera.is_empty() || !raw.camera.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
        return Err(invalid("camera", format!("{:?} must be non-empty letters, digits, '-', '_' or '.'", raw.camera)));
    }
    let (w, h) = (raw.image_width, raw.image_height);
    if w == 0 {
        return Err(invalid("image_width", "must be at least 1".into()));
    }
    if h == 0 {
        return Err(invalid("image_height", "must be at least 1".into()));
    }
    let threshold = raw.inlier_threshold_px.unwrap_or(FitOptions::default().inlier_threshold_px);
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(invalid("inlier_threshold_px", format!("{threshold} must be a positive number of pixels")));
    }

    if fp.image.as_os_str().is_empty() {
        return Err(invalid("floor_plan.image", "must name the plan image".into()));
    }
    if !(fp.pixels_per_metre.is_finite() && fp.pixels_per_metre > 0.0) {
        return Err(invalid(
            "floor_plan.pixels_per_metre",
            format!("{} must be a positive number", fp.pixels_per_metre),
        ));
    }
    if fp.pixels_per_metre > MAX_PLAN_PX_PER_M {
        return Err(invalid(
            "floor_plan.pixels_per_metre",
            format!("{} is more than {MAX_PLAN_PX_PER_M} plan pixels per metre", fp.pixels_per_metre),
        ));
    }
    let origin = fp.origin_px.unwrap_or([0.0, 0.0]);
    if !finite(origin) {
        return Err(invalid("floor_plan.origin_px", format!("{} is not a finite point", fmt_xy(origin))));
    }
    if origin[0].abs() > MAX_PLAN_PX || origin[1].abs() > MAX_PLAN_PX {
        return Err(invalid(
            "floor_plan.origin_px",
            format!("{} is more than {MAX_PLAN_PX} pixels out", fmt_xy(origin)),
        ));
    }
    let floor_plan = FloorPlan {
        image: if fp.image.is_absolute() { fp.image } else { base.join(fp.image) },
        pixels_per_metre: fp.pixels_per_metre,
        origin_px: (origin[0], origin[1]),
    };

    if raw.points.len() < 4 {
        return Err(invalid("points", format!("{} pairs given; at least 4 [[points]] are needed", raw.points.len())));
    }
    let mut points = Vec::with_capacity(raw.points.len());
    for (i, p) in raw.points.iter().enumerate() {
        if !finite(p.image) {
            return Err(invalid(&format!("points[{i}].image"), format!("{} is not a finite point", fmt_xy(p.image))));
        }
        if !finite(p.floor) {
            return Err(invalid(&format!("points[{i}].floor"), format!("{} is not a finite point", fmt_xy(p.floor))));
        }
        if !on_floor(p.floor) {
            return Err(invalid(
                &format!("points[{i}].floor"),
                format!("{} is more than {MAX_FLOOR_M} m from the origin", fmt_xy(p.floor)),
            ));
        }
        let [x, y] = p.image;
        if x < 0.0 || y < 0.0 || x > w as f64 || y > h as f64 {
            return Err(invalid(
                &format!("points[{i}].image"),
                format!("{} is outside the {w}x{h} image", fmt_xy(p.image)),
            ));
        }
        points.push(PointPair::new((x, y), (p.floor[0], p.floor[1])));
    }
    let opts = FitOptions { inlier_threshold_px: threshold, ..FitOptions::default() };
    let fit = fit_homography_with(&points, &opts).map_err(|source| Error::Fit { path: path.to_path_buf(), source })?;

    let mut zones: Vec<Zone> = Vec::with_capacity(raw.zones.len());
    for (i, z) in raw.zones.into_iter().enumerate() {
        check_name(&z.name, "zone", &format!("zones[{i}].name"), zones.iter().map(|z| &z.name))
            .map_err(|(f, m)| invalid(&f, m))?;
        let mut pts = z.polygon;
        if let Some(j) = pts.iter().position(|p| !finite(*p)) {
            return Err(invalid(&format!("zones[{i}].polygon"), format!("point {j} {} is not finite", fmt_xy(pts[j]))));
        }
        if let Some(j) = pts.iter().position(|p| !on_floor(*p)) {
            return Err(invalid(
                &format!("zones[{i}].polygon"),
                format!("point {j} {} is more than {MAX_FLOOR_M} m from the origin", fmt_xy(pts[j])),
            ));
        }
        // A closing point that repeats the first is accepted and dropped.
        if pts.len() > 3 && pts.first() == pts.last() {
            pts.pop();
        }
        let polygon = PolygonOnFloor::new(pts.iter().map(|p| PointOnFloor::new(p[0], p[1])).collect());
        if let Some(problem) = polygon_problem(&polygon) {
            return Err(invalid(&format!("zones[{i}].polygon"), problem));
        }
        zones.push(Zone { name: z.name, kind: z.kind, polygon });
    }

    let mut lines: Vec<Line> = Vec::with_capacity(raw.lines.len());
    for (i, l) in raw.lines.into_iter().enumerate() {
        check_name(&l.name, "line", &format!("lines[{i}].name"), lines.iter().map(|l| &l.name))
            .map_err(|(f, m)| invalid(&f, m))?;
        if !finite(l.from) {
            return Err(invalid(&format!("lines[{i}].from"), format!("{} is not a finite point", fmt_xy(l.from))));
        }
        if !on_floor(l.from) {
            return Err(invalid(
                &format!("lines[{i}].from"),
                format!("{} is more than {MAX_FLOOR_M} m from the origin", fmt_xy(l.from)),
            ));
        }
        if !finite(l.to) {
            return Err(invalid(&format!("lines[{i}].to"), format!("{} is not a finite point", fmt_xy(l.to))));
        }
        if !on_floor(l.to) {
            return Err(invalid(
                &format!("lines[{i}].to"),
                format!("{} is more than {MAX_FLOOR_M} m from the origin", fmt_xy(l.to)),
            ));
        }
        let line = Line {
            name: l.name,
            from: PointOnFloor::new(l.from[0], l.from[1]),
            to: PointOnFloor::new(l.to[0], l.to[1]),
            in_side: l.in_side,
        };
        if line.length() < SAME_FLOOR_POINT_M {
            return Err(invalid(
                &format!("lines[{i}]"),
                format!("from and to are the same point {}; a line needs length", fmt_xy(l.from)),
            ));
        }
        lines.push(line);
    }

    Ok(Calibration {
        path: path.to_path_buf(),
        camera: raw.camera,
        image_width: w,
        image_height: h,
        floor_plan,
        points,
        zones,
        lines,
        fit,
    })
}

/// One-file calibrations (each with its own floor plan, zones and lines) turned into a site file and camera
/// files that name it: what `iobox calibrate to-site` writes. The files must agree as the cameras of one
/// folder must ([`Calibration::load_dir`]); the site gets every zone and line of any of them, and each
/// camera `sees` exactly the ones it had, so behaviour is unchanged. `site` must lie in the files' folder
/// (the plan image stays where it was). Returns the site's text and each file's new text.
pub fn to_site(files: &[PathBuf], site: &Path) -> Result<(String, Vec<(PathBuf, String)>)> {
    let cals = files.iter().map(|f| Calibration::load(f)).collect::<Result<Vec<_>>>()?;
    check_site(&cals)?;
    let no_files = || Error::Read { path: site.to_path_buf(), message: "no calibration files given".into() };
    let first = files.first().ok_or_else(no_files)?;
    let folder = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    if !same_path(&folder(first), &folder(site)) || files.iter().any(|f| !same_path(&folder(f), &folder(first))) {
        return Err(Error::Invalid {
            path: site.to_path_buf(),
            field: "site".into(),
            message: format!("put the site file and the calibrations in one folder ({})", folder(first).display()),
        });
    }
    let site_name = site.file_name().map(PathBuf::from).unwrap_or_else(|| site.to_path_buf());
    let mut merged: Option<RawSite> = None;
    let mut cameras = Vec::new();
    for file in files {
        let read_err = |message: String| Error::Read { path: file.clone(), message };
        let text = std::fs::read_to_string(file).map_err(|e| read_err(e.to_string()))?;
        let raw: RawCalibration = toml::from_str(&text)
            .map_err(|e| Error::Parse { path: file.clone(), message: crate::config::describe_toml_error(&text, &e) })?;
        let Some(plan) = raw.floor_plan.clone() else {
            return Err(Error::Invalid {
                path: file.clone(),
                field: "site".into(),
                message: "already names a site file".into(),
            });
        };
        let m = merged.get_or_insert_with(|| RawSite { floor_plan: plan, zones: Vec::new(), lines: Vec::new() });
        for z in &raw.zones {
            if !m.zones.iter().any(|o| o.name == z.name) {
                m.zones.push(z.clone());
            }
        }
        for l in &raw.lines {
            if !m.lines.iter().any(|o| o.name == l.name) {
                m.lines.push(l.clone());
            }
        }
        let mut doc: toml_edit::DocumentMut =
            text.parse().map_err(|e: toml_edit::TomlError| read_err(e.to_string()))?;
        for key in ["floor_plan", "zones", "lines"] {
            doc.remove(key);
        }
        doc["site"] = toml_edit::value(site_name.display().to_string());
        let sees: toml_edit::Array =
            raw.zones.iter().map(|z| z.name.as_str()).chain(raw.lines.iter().map(|l| l.name.as_str())).collect();
        doc["sees"] = toml_edit::value(sees);
        cameras.push((file.clone(), doc.to_string()));
    }
    let merged = merged.ok_or_else(no_files)?;
    let body =
        toml::to_string(&merged).map_err(|e| Error::Parse { path: site.to_path_buf(), message: e.to_string() })?;
    let from: Vec<String> = files
        .iter()
        .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into()))
        .collect();
    let text = format!(
        "# The site: the store's floor plan and its zones and lines in metres, shared by every camera file that\n\
         # names it (site = \"{}\"). Written by `iobox calibrate to-site` from {}.\n\n{body}",
        site_name.display(),
        from.join(", ")
    );
    Ok((text, cameras))
}

fn check_name<'a>(
    name: &str,
    what: &str,
    field: &str,
    mut earlier: impl Iterator<Item = &'a String>,
) -> std::result::Result<(), (String, String)> {
    if name.trim().is_empty() {
        return Err((field.to_string(), format!("a {what} needs a name")));
    }
    if earlier.any(|n| n == name) {
        return Err((field.to_string(), format!("{name:?} is already the name of another {what} in this file")));
    }
    Ok(())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_points(a: &[PointOnFloor], b: &[PointOnFloor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| close(p.x, q.x) && close(p.y, q.y))
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Cross-file rules for the cameras of one site.
fn check_site(cals: &[Calibration]) -> Result<()> {
    let Some(first) = cals.first() else { return Ok(()) };
    let invalid = |c: &Calibration, field: &str, message: String| Error::Invalid {
        path: c.path.clone(),
        field: field.to_string(),
        message,
    };
    let first_name = first.path.display();
    let mut cameras: HashMap<&str, &Path> = HashMap::new();
    let mut zones: HashMap<&str, (&Zone, &Path)> = HashMap::new();
    let mut lines: HashMap<&str, (&Line, &Path)> = HashMap::new();
    for c in cals {
        if let Some(other) = cameras.insert(&c.camera, &c.path) {
            return Err(invalid(c, "camera", format!("{:?} is already calibrated in {}", c.camera, other.display())));
        }
        let (a, b) = (&first.floor_plan, &c.floor_plan);
        let why = "the cameras of one calibration folder map onto one floor plan";
        if !same_path(&a.image, &b.image) {
            return Err(invalid(
                c,
                "floor_plan.image",
                format!("{} differs from {} in {first_name}; {why}", b.image.display(), a.image.display()),
            ));
        }
        if !close(a.pixels_per_metre, b.pixels_per_metre) {
            return Err(invalid(
                c,
                "floor_plan.pixels_per_metre",
                format!("{} differs from {} in {first_name}; {why}", b.pixels_per_metre, a.pixels_per_metre),
            ));
        }
        if !(close(a.origin_px.0, b.origin_px.0) && close(a.origin_px.1, b.origin_px.1)) {
            return Err(invalid(
                c,
                "floor_plan.origin_px",
                format!("{:?} differs from {:?} in {first_name}; {why}", b.origin_px, a.origin_px),
            ));
        }
        for (i, z) in c.zones.iter().enumerate() {
            match zones.get(z.name.as_str()) {
                Some((other, file))
                    if other.kind != z.kind || !same_points(&other.polygon.points, &z.polygon.points) =>
                {
                    return Err(invalid(
                        c,
                        &format!("zones[{i}]"),
                        format!(
                            "zone {:?} is defined differently in {}; a zone is a place on the shared floor, so \
                             every file that names it must give the same kind and polygon (or use another name)",
                            z.name,
                            file.display()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    zones.insert(&z.name, (z, &c.path));
                }
            }
        }
        for (i, l) in c.lines.iter().enumerate() {
            match lines.get(l.name.as_str()) {
                Some((other, file))
                    if other.in_side != l.in_side || !same_points(&[other.from, other.to], &[l.from, l.to]) =>
                {
                    return Err(invalid(
                        c,
                        &format!("lines[{i}]"),
                        format!(
                            "line {:?} is defined differently in {}; every file that names a line must give the \
                             same from, to and in_side (or use another name)",
                            l.name,
                            file.display()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    lines.insert(&l.name, (l, &c.path));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    // ---- synthetic cameras ------------------------------------------------------------------------------

    /// A pinhole camera above the floor: at plan position `pos`, `height` metres up, heading `yaw` on the
    /// plan, pitched down by `pitch` from horizontal, focal length `f` pixels, principal point at the centre.
    #[derive(Debug, Clone, Copy)]
    struct Camera {
        pos: (f64, f64),
        height: f64,
        yaw: f64,
        pitch: f64,
        f: f64,
        width: f64,
        height_px: f64,
    }

    type V3 = [f64; 3];

    fn dot(a: V3, b: V3) -> f64 {
        a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    }

    impl Camera {
        /// Right, image-down and forward axes in (plan x, plan y, up).
        fn axes(&self) -> (V3, V3, V3) {
            let (s, c) = self.yaw.sin_cos();
            let (sp, cp) = self.pitch.sin_cos();
            let right = [-s, c, 0.0];
            let down = [-sp * c, -sp * s, -cp];
            let fwd = [cp * c, cp * s, -sp];
            (right, down, fwd)
        }

        fn image_from_floor(&self, p: (f64, f64)) -> Option<(f64, f64)> {
            let (r, d, f) = self.axes();
            let v = [p.0 - self.pos.0, p.1 - self.pos.1, -self.height];
            let z = dot(v, f);
            (z > 1e-9)
                .then(|| (self.width / 2.0 + self.f * dot(v, r) / z, self.height_px / 2.0 + self.f * dot(v, d) / z))
        }

        fn floor_from_image(&self, p: (f64, f64)) -> Option<(f64, f64)> {
            let (r, d, f) = self.axes();
            let (xn, yn) = ((p.0 - self.width / 2.0) / self.f, (p.1 - self.height_px / 2.0) / self.f);
            let ray: V3 = std::array::from_fn(|i| xn * r[i] + yn * d[i] + f[i]);
            (ray[2] < -1e-9).then(|| {
                let s = self.height / -ray[2];
                (self.pos.0 + s * ray[0], self.pos.1 + s * ray[1])
            })
        }

        /// A random pixel whose floor point lies within `max_dist` metres of the camera's foot.
        fn random_pair(&self, rng: &mut StdRng, max_dist: f64) -> PointPair {
            self.random_pair_in(rng, (0.0, 1.0), (0.0, 1.0), usize::MAX, max_dist).expect("the camera sees floor")
        }

        /// Like `random_pair`, from the part `x` x `y` (fractions of the frame), in at most `tries` draws.
        fn random_pair_in(
            &self,
            rng: &mut StdRng,
            x: (f64, f64),
            y: (f64, f64),
            tries: usize,
            max_dist: f64,
        ) -> Option<PointPair> {
            (0..tries).find_map(|_| {
                let p = (rng.random_range(x.0..x.1) * self.width, rng.random_range(y.0..y.1) * self.height_px);
                self.floor_from_image(p).filter(|&q| dist(q, self.pos) <= max_dist).map(|q| PointPair::new(p, q))
            })
        }

        /// `n` pairs spread over the usable part of the image (one per cell of a 4 x 3 grid, in random
        /// order, as a calibration should be), with distinct, not collinear points.
        fn pairs(&self, rng: &mut StdRng, n: usize) -> Vec<PointPair> {
            loop {
                let mut cells: Vec<usize> = (0..12).collect();
                cells.sort_by_key(|_| rng.random::<u32>());
                let pairs: Vec<PointPair> = (0..n)
                    .map(|k| {
                        let c = cells[k % 12];
                        let (cx, cy) = ((c % 4) as f64 / 4.0, (c / 4) as f64 / 3.0);
                        self.random_pair_in(rng, (cx, cx + 0.25), (cy, cy + 1.0 / 3.0), 50, self.max_dist())
                            .unwrap_or_else(|| self.random_pair(rng, self.max_dist()))
                    })
                    .collect();
                let ok = fit_homography(&pairs);
                if !matches!(ok, Err(FitError::Duplicate { .. } | FitError::Collinear { .. })) {
                    return pairs;
                }
            }
        }

        fn max_dist(&self) -> f64 {
            (4.0 * self.height).min(25.0)
        }
    }

    fn arb_camera() -> impl Strategy<Value = Camera> {
        (
            (-20.0f64..20.0, -20.0f64..20.0),
            2.0f64..8.0,
            0.0f64..std::f64::consts::TAU,
            25f64..90.0,
            300.0f64..2000.0,
            prop_oneof![Just((640.0, 480.0)), Just((768.0, 432.0)), Just((1280.0, 720.0)), Just((1920.0, 1080.0))],
        )
            .prop_map(|(pos, height, yaw, pitch_deg, f, (width, height_px))| Camera {
                pos,
                height,
                yaw,
                pitch: pitch_deg.to_radians(),
                f,
                width,
                height_px,
            })
            // Enough floor in view to place points on.
            .prop_filter("sees some floor", |c| {
                let mut rng = StdRng::seed_from_u64(1);
                (0..400)
                    .filter(|_| {
                        let p = (rng.random_range(0.0..c.width), rng.random_range(0.0..c.height_px));
                        c.floor_from_image(p).is_some_and(|q| dist(q, c.pos) <= c.max_dist())
                    })
                    .count()
                    > 40
            })
    }

    fn gaussian(rng: &mut StdRng) -> f64 {
        // Box-Muller.
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn exact_pairs_give_back_the_camera(cam in arb_camera(), n in 4usize..12, seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let pairs = cam.pairs(&mut rng, n);
            let fit = fit_homography(&pairs).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert!(fit.outliers().is_empty());
            prop_assert!(fit.max_px < 1e-6, "max_px {}", fit.max_px);
            for _ in 0..20 {
                let other = cam.random_pair(&mut rng, cam.max_dist());
                let floor = fit.floor_from_image.project(other.image).unwrap();
                prop_assert!(dist(floor, floor_xy(&other)) < 1e-6, "floor error {}", dist(floor, floor_xy(&other)));
                let image = fit.image_from_floor.project(floor_xy(&other)).unwrap();
                prop_assert!(dist(image, other.image) < 1e-6, "image error {}", dist(image, other.image));
            }
            // Floor points behind the camera's image plane have no image, as with the true camera.
            let (_, _, f) = cam.axes();
            for _ in 0..20 {
                let q = (cam.pos.0 + rng.random_range(-3.0..3.0) * cam.height, cam.pos.1 + rng.random_range(-3.0..3.0) * cam.height);
                let depth = dot([q.0 - cam.pos.0, q.1 - cam.pos.1, -cam.height], f);
                if depth.abs() > 0.05 * cam.height {
                    prop_assert_eq!(fit.image_from_floor.project(q).is_some(), depth > 0.0);
                }
                if let (Some(a), Some(b)) = (fit.image_from_floor.project(q), cam.image_from_floor(q)) {
                    prop_assert!(dist(a, b) < 1e-6 * (1.0 + dist(b, (0.0, 0.0))));
                }
            }
        }

        #[test]
        fn one_pixel_of_noise_keeps_the_error_small(cam in arb_camera(), n in 8usize..20, seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let truth = cam.pairs(&mut rng, n);
            let noisy: Vec<PointPair> = truth
                .iter()
                .map(|p| PointPair { image: (p.image.0 + gaussian(&mut rng), p.image.1 + gaussian(&mut rng)), ..*p })
                .collect();
            let fit = match fit_homography(&noisy) {
                Err(FitError::Duplicate { .. } | FitError::Collinear { .. }) => return Err(TestCaseError::reject("degenerate")),
                other => other.map_err(|e| TestCaseError::fail(format!("{e}")))?,
            };
            prop_assert!(fit.outliers().is_empty(), "outliers {:?}", fit.outliers());
            // The fit minimises the pixel error, so it fits the noisy points at least as well as the truth does.
            let noise_rms = (truth.iter().zip(&noisy).map(|(t, p)| dist(t.image, p.image).powi(2)).sum::<f64>() / n as f64).sqrt();
            prop_assert!(fit.rms_px <= noise_rms + 1e-9, "rms {} px, noise {} px", fit.rms_px, noise_rms);
            // Held-out points among the fitted ones land near where the true camera puts them.
            let mut errs: Vec<f64> = (0..25)
                .map(|_| {
                    let (a, b) = (rng.random_range(0.0..1.0), rng.random_range(0.0..1.0));
                    let (a, b) = if a + b > 1.0 { (1.0 - a, 1.0 - b) } else { (a, b) };
                    let [i, j, k] = [0, 1, 2].map(|_| rng.random_range(0..n));
                    let (pi, pj, pk) = (truth[i].image, truth[j].image, truth[k].image);
                    let image = (pi.0 + a * (pj.0 - pi.0) + b * (pk.0 - pi.0), pi.1 + a * (pj.1 - pi.1) + b * (pk.1 - pi.1));
                    let floor = cam.floor_from_image(image).unwrap();
                    fit.image_from_floor.project(floor).map_or(f64::INFINITY, |q| dist(q, image))
                })
                .collect();
            errs.sort_by(f64::total_cmp);
            // Within twice the noise: the held-out points inherit the fit's error, which grows towards the
            // edges of the fitted points on steeply tilted cameras.
            prop_assert!(errs[errs.len() / 2] < 2.0 * noise_rms.max(1.0), "median held-out error {} px", errs[errs.len() / 2]);
        }

        #[test]
        fn ransac_rejects_gross_outliers(cam in arb_camera(), k in 1usize..=2, seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut pairs = cam.pairs(&mut rng, 10);
            let mut bad: Vec<usize> = rand::seq::index::sample(&mut rng, 10, k).into_vec();
            bad.sort_unstable();
            for &i in &bad {
                let a = rng.random_range(0.0..std::f64::consts::TAU);
                let r = rng.random_range(30.0..150.0);
                pairs[i].image.0 += r * a.cos();
                pairs[i].image.1 += r * a.sin();
            }
            let fit = match fit_homography(&pairs) {
                Err(FitError::Duplicate { .. }) => return Err(TestCaseError::reject("duplicate")),
                other => other.map_err(|e| TestCaseError::fail(format!("{e}")))?,
            };
            prop_assert!(matches!(fit.method, FitMethod::Ransac { exhaustive: true, .. }), "{:?}", fit.method);
            prop_assert_eq!(fit.outliers(), bad);
            prop_assert!(fit.max_px < 1e-6);
            for _ in 0..10 {
                let other = cam.random_pair(&mut rng, cam.max_dist());
                let floor = fit.floor_from_image.project(other.image).unwrap();
                prop_assert!(dist(floor, floor_xy(&other)) < 1e-6);
            }
        }

        #[test]
        fn random_sampling_is_reproducible_and_finds_the_outlier(cam in arb_camera(), seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut pairs = cam.pairs(&mut rng, 12);
            pairs[5].image.0 += 60.0;
            let opts = FitOptions { max_samples: 300, ..FitOptions::default() };
            let a = match fit_homography_with(&pairs, &opts) {
                Err(FitError::Duplicate { .. }) => return Err(TestCaseError::reject("duplicate")),
                other => other.map_err(|e| TestCaseError::fail(format!("{e}")))?,
            };
            let b = fit_homography_with(&pairs, &opts).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert!(matches!(a.method, FitMethod::Ransac { exhaustive: false, samples: 300, .. }), "{:?}", a.method);
            prop_assert_eq!(a.outliers(), vec![5]);
        }

        #[test]
        fn plan_pixels_and_metres_round_trip(x in -50.0f64..50.0, y in -50.0f64..50.0, ppm in 1.0f64..500.0, ox in -100.0f64..100.0, oy in -100.0f64..100.0) {
            let plan = FloorPlan { image: PathBuf::from("p.png"), pixels_per_metre: ppm, origin_px: (ox, oy) };
            let back = plan.floor_from_plan(plan.plan_from_floor(PointOnFloor::new(x, y)));
            prop_assert!((back.x - x).abs() < 1e-9 && (back.y - y).abs() < 1e-9);
        }
    }

    // ---- homography basics ------------------------------------------------------------------------------

    #[test]
    fn inverse_round_trips_and_keeps_the_visible_side() {
        let h = FloorFromImage::from_matrix([[0.01, 0.002, -1.0], [0.0005, 0.03, -2.0], [0.0, 0.004, 1.0]]);
        let inv = h.inverse().unwrap();
        for p in [(0.0, 0.0), (100.0, 50.0), (640.0, 480.0)] {
            let q = h.project(p).unwrap();
            let back = inv.project(q).unwrap();
            assert!(dist(back, p) < 1e-9, "{p:?} -> {q:?} -> {back:?}");
        }
        // y = -250 is the horizon: W = 0.004 y + 1.
        assert!(h.project((10.0, -250.0)).is_none());
        assert!(h.project((10.0, -400.0)).is_none());
        assert!(h.project((10.0, -249.0)).is_some());
        // A negated matrix is the same map but sees the other half-plane.
        let neg = FloorFromImage::from_matrix(h.matrix().map(|r| r.map(|v| -v)));
        assert!(neg.project((100.0, 50.0)).is_none());
        assert!(FloorFromImage::from_matrix([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]).inverse().is_none());
    }

    #[test]
    fn apply_uses_the_named_spaces() {
        let pairs = [
            PointPair::new((0.0, 0.0), (0.0, 0.0)),
            PointPair::new((100.0, 0.0), (1.0, 0.0)),
            PointPair::new((100.0, 100.0), (1.0, 1.0)),
            PointPair::new((0.0, 100.0), (0.0, 1.0)),
        ];
        let fit = fit_homography(&pairs).unwrap();
        assert_eq!(fit.method, FitMethod::Exact);
        let f = fit.floor_from_image.apply(PointInImage { x: 50.0, y: 25.0 }).unwrap();
        assert!((f.x - 0.5).abs() < 1e-9 && (f.y - 0.25).abs() < 1e-9);
        let i = fit.image_from_floor.apply(PointOnFloor::new(0.3, 0.7)).unwrap();
        assert!((i.x - 30.0).abs() < 1e-4 && (i.y - 70.0).abs() < 1e-4);
    }

    #[test]
    fn jacobi_svd_finds_the_null_vector() {
        // Rows orthogonal to h = (1, -2, 3, 0, 0, 1, 0, 0, 2) / |.|, plus an exact solution.
        let h = [1.0, -2.0, 3.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0];
        let mut rng = StdRng::seed_from_u64(7);
        let mut a: Vec<[f64; 9]> = (0..12)
            .map(|_| {
                let mut r: [f64; 9] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
                let k = r.iter().zip(&h).map(|(x, y)| x * y).sum::<f64>() / h.iter().map(|v| v * v).sum::<f64>();
                r.iter_mut().zip(&h).for_each(|(x, y)| *x -= k * y);
                r
            })
            .collect();
        let v = smallest_right_singular_vector(&mut a);
        let n = h.iter().map(|v| v * v).sum::<f64>().sqrt();
        let cos = v.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>() / n;
        assert!((cos.abs() - 1.0).abs() < 1e-12, "cos {cos}");
    }

    #[test]
    fn degenerate_pairs_are_refused_with_their_indices() {
        let square = |extra: &[PointPair]| {
            let mut v = vec![
                PointPair::new((10.0, 10.0), (0.0, 0.0)),
                PointPair::new((110.0, 10.0), (1.0, 0.0)),
                PointPair::new((110.0, 110.0), (1.0, 1.0)),
                PointPair::new((10.0, 110.0), (0.0, 1.0)),
            ];
            v.extend_from_slice(extra);
            v
        };
        assert_eq!(fit_homography(&square(&[])[..3]).unwrap_err(), FitError::TooFewPairs { given: 3 });
        let mut p = square(&[]);
        p[3].image = (110.0, 60.0);
        assert_eq!(fit_homography(&p).unwrap_err(), FitError::Collinear { space: Space::Image, indices: [1, 2, 3] });
        let mut p = square(&[]);
        p[2].floor = PointOnFloor::new(0.5, 0.5);
        assert_eq!(fit_homography(&p).unwrap_err(), FitError::Collinear { space: Space::Floor, indices: [1, 2, 3] });
        let mut p = square(&[]);
        p.swap(0, 1);
        p[0].floor = PointOnFloor::new(0.0, 0.0);
        p[1].floor = PointOnFloor::new(1.0, 0.0);
        assert!(matches!(fit_homography(&p).unwrap_err(), FitError::Folded { .. }));
        let mut p = square(&[]);
        p.iter_mut().for_each(|q| q.floor.y = -q.floor.y);
        assert_eq!(fit_homography(&p).unwrap_err(), FitError::Mirrored);
        let opts = FitOptions { allow_mirrored: true, ..FitOptions::default() };
        assert!(fit_homography_with(&p, &opts).is_ok());
        // All on one line with one point off it: every 4 have 3 in a line.
        let line: Vec<PointPair> = (0..5)
            .map(|i| PointPair::new((10.0 + 20.0 * i as f64, 10.0), (i as f64, 0.0)))
            .chain([PointPair::new((50.0, 100.0), (2.0, 3.0))])
            .collect();
        assert_eq!(fit_homography(&line).unwrap_err(), FitError::NoGeneralPosition { given: 6 });
    }

    // ---- the file ---------------------------------------------------------------------------------------

    const GOOD: &str = r#"
camera = "entrance"
image_width = 1920
image_height = 1080

[floor_plan]
image = "plan.png"
pixels_per_metre = 50.0

[[points]]
image = [200.0, 900.0]
floor = [1.0, 5.0]

[[points]]
image = [1700.0, 900.0]
floor = [4.0, 5.0]

[[points]]
image = [1500.0, 300.0]
floor = [4.0, 1.0]

[[points]]
image = [400.0, 300.0]
floor = [1.0, 1.0]

[[points]]
image = [960.0, 500.0]
floor = [2.52, 2.62]

[[zones]]
name = "entrance"
kind = "entrance"
polygon = [[0, 0], [2, 0], [2, 1.5], [0, 1.5]]

[[zones]]
name = "till"
kind = "queue"
polygon = [[3, 3], [4, 3], [4, 4], [3, 4]]

[[lines]]
name = "door"
from = [0.0, 3.0]
to = [2.5, 3.0]
in_side = "left"
"#;

    fn parse(text: &str) -> Result<Calibration> {
        Calibration::parse(text, Path::new("cam.toml"), Path::new("/site/calibration"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn a_good_file_loads() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.camera, "entrance");
        assert_eq!(c.floor_plan.image, PathBuf::from("/site/calibration/plan.png"));
        assert_eq!(c.floor_plan.origin_px, (0.0, 0.0));
        assert_eq!(c.zones[1].kind, ZoneKind::Queue);
        assert_eq!(c.zone("till").unwrap().name, "till");
        assert_eq!(c.lines[0].in_side, InSide::Left);
        assert!(c.fit.outliers().is_empty());
        assert!(matches!(c.fit.method, FitMethod::Ransac { exhaustive: true, .. }));
        // The 5th point sits close to where the other 4 put it.
        assert!(c.fit.max_px < 8.0, "{}", c.fit.max_px);
        let p = c.floor_from_image(PointInImage { x: 200.0, y: 900.0 }).unwrap();
        assert!(p.distance(&PointOnFloor::new(1.0, 5.0)) < 0.05);
        let back = c.image_from_floor(p).unwrap();
        assert!((back.x - 200.0).abs() < 0.1 && (back.y - 900.0).abs() < 0.1);
        let report = c.check_report();
        for want in ["camera \"entrance\"", "1920x1080", "RMS", "inlier", "till", "door", "(missing)"] {
            assert!(report.contains(want), "report lacks {want:?}:\n{report}");
        }
        assert_eq!(report.lines().filter(|l| l.trim_end().ends_with("inlier")).count(), 5, "{report}");
    }

    #[test]
    fn every_malformed_file_names_its_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                edit("image = [1700.0, 900.0]", "image = [1990.0, 40.0]"),
                "cam.toml: points[1].image: (1990, 40) is outside the 1920x1080 image",
            ),
            (
                edit("image = [1700.0, 900.0]", "image = [-1.0, 40.0]"),
                "points[1].image: (-1, 40) is outside the 1920x1080 image",
            ),
            (
                edit("image = [1500.0, 300.0]", "image = [200.0, 900.0]"),
                "points[2].image: (200, 900) is the same point as points[0].image",
            ),
            (
                edit("floor = [4.0, 1.0]", "floor = [1.0, 5.0]"),
                "points[2].floor: (1, 5) is the same point as points[0].floor",
            ),
            (
                GOOD.replace(
                    "polygon = [[3, 3], [4, 3], [4, 4], [3, 4]]",
                    "polygon = [[3, 3], [4, 4], [4, 3], [3, 4]]",
                ),
                "cam.toml: zones[1].polygon: not a simple polygon (edges 0 and 2 cross)",
            ),
            (
                GOOD.replace("polygon = [[0, 0], [2, 0], [2, 1.5], [0, 1.5]]", "polygon = [[0, 0], [2, 0]]"),
                "zones[0].polygon: 2 points; a polygon needs at least 3",
            ),
            (
                GOOD.replace("polygon = [[0, 0], [2, 0], [2, 1.5], [0, 1.5]]", "polygon = [[0, 0], [1, 0], [2, 0]]"),
                "zones[0].polygon: not a simple polygon (it has no area",
            ),
            (
                GOOD.replace(
                    "polygon = [[0, 0], [2, 0], [2, 1.5], [0, 1.5]]",
                    "polygon = [[0, 0], [2, 0], [2, 0], [0, 1.5]]",
                ),
                "zones[0].polygon: edge 1 has zero length",
            ),
            (
                GOOD.replace("name = \"till\"", "name = \"entrance\""),
                "zones[1].name: \"entrance\" is already the name of another zone",
            ),
            (GOOD.replace("kind = \"queue\"", "kind = \"checkout\""), "line 37: unknown variant `checkout`"),
            (GOOD.replace("to = [2.5, 3.0]", "to = [0.0, 3.0]"), "cam.toml: lines[0]: from and to are the same point"),
            (
                GOOD.replace("in_side = \"left\"", "in_side = \"inside\""),
                "unknown variant `inside`, expected `left` or `right`",
            ),
            (GOOD.replace("in_side = \"left\"\n", ""), "missing field `in_side`"),
            (
                GOOD.replace("pixels_per_metre = 50.0", "pixels_per_metre = 0.0"),
                "floor_plan.pixels_per_metre: 0 must be a positive number",
            ),
            (
                GOOD.replace("pixels_per_metre = 50.0", "pixels_per_metre = 50.0\nscale = 2"),
                "line 9: unknown field `scale`",
            ),
            (
                GOOD.replace("image_height = 1080", "image_height = 1080\nimage_hieght = 1080"),
                "line 5: unknown field `image_hieght`",
            ),
            (GOOD.replace("image_height = 1080", "image_height = 0"), "image_height: must be at least 1"),
            (
                GOOD.replace("camera = \"entrance\"", "camera = \"front door\""),
                "camera: \"front door\" must be non-empty",
            ),
            (GOOD.replace("image_width = 1920", "image_width = 1920 px"), "line 3:"),
            (
                GOOD.replace("inlier_threshold_px", "x")
                    .replace("image_width = 1920", "image_width = 1920\ninlier_threshold_px = -1"),
                "inlier_threshold_px: -1 must be a positive number",
            ),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.contains(want), "want {want:?}\n got {got:?}");
        }
    }

    /// GOOD's first four points (a 4-point file), with `edit` applied.
    fn four_points(edit: impl Fn(&str) -> String) -> String {
        let cut = GOOD.find("[[points]]\nimage = [960.0").unwrap();
        let zones = GOOD.find("[[zones]]").unwrap();
        edit(&format!("{}{}", &GOOD[..cut], &GOOD[zones..]))
    }

    #[test]
    fn geometric_mistakes_in_the_pairs_are_named() {
        let c = parse(&four_points(|s| s.to_string())).unwrap();
        assert_eq!(c.fit.method, FitMethod::Exact);
        assert!(c.check_report().contains("exactly 4 pairs"));

        let three = four_points(|s| s.replacen("[[points]]\nimage = [400.0", "[[nopoints]]\nimage = [400.0", 1));
        assert!(err(&three).contains("unknown field `nopoints`"));
        let three = {
            let s = four_points(|s| s.to_string());
            let a = s.find("[[points]]\nimage = [400.0").unwrap();
            let b = s.find("[[zones]]").unwrap();
            format!("{}{}", &s[..a], &s[b..])
        };
        assert!(err(&three).contains("points: 3 pairs given; at least 4 [[points]] are needed"), "{}", err(&three));

        let collinear = four_points(|s| s.replace("image = [400.0, 300.0]", "image = [1600.0, 600.0]"));
        assert!(
            err(&collinear).contains("cam.toml: points: 3 points are collinear: 1, 2, 3 (their image positions"),
            "{}",
            err(&collinear)
        );
        let collinear = four_points(|s| s.replace("floor = [1.0, 1.0]", "floor = [2.5, 3.0]"));
        assert!(
            err(&collinear).contains("points: 3 points are collinear: 0, 2, 3 (their floor positions"),
            "{}",
            err(&collinear)
        );

        // Two floor points swapped: the mapping would fold the floor over the horizon.
        let swapped = four_points(|s| {
            s.replace("floor = [4.0, 5.0]", "floor = [X]")
                .replace("floor = [4.0, 1.0]", "floor = [4.0, 5.0]")
                .replace("floor = [X]", "floor = [4.0, 1.0]")
        });
        assert!(err(&swapped).contains("beyond the horizon"), "{}", err(&swapped));
        // A plan measured with y up.
        let mirrored = four_points(|s| {
            s.replace("floor = [1.0, 5.0]", "floor = [1.0, -5.0]")
                .replace("floor = [4.0, 5.0]", "floor = [4.0, -5.0]")
                .replace("floor = [4.0, 1.0]", "floor = [4.0, -1.0]")
                .replace("floor = [1.0, 1.0]", "floor = [1.0, -1.0]")
        });
        assert!(err(&mirrored).contains("mirror image"), "{}", err(&mirrored));
    }

    #[test]
    fn an_outlier_in_the_file_is_reported() {
        let more = "floor = [2.52, 2.62]\n\n[[points]]\nimage = [960.0, 800.0]\nfloor = [2.52, 4.49]\n\n\
                    [[points]]\nimage = [1200.0, 650.0]\nfloor = [3.06, 3.62]\n\n\
                    [[points]]\nimage = [700.0, 300.0]\nfloor = [3.0, 1.0]";
        let c = parse(&GOOD.replace("floor = [2.52, 2.62]", more)).unwrap();
        let report = c.check_report();
        assert_eq!(c.fit.outliers(), vec![7], "{report}");
        assert!(c.fit.max_px < 2.0, "{report}");
        assert!(report.contains("OUTLIER") && report.contains("pair 7 disagree"), "{report}");
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let e = Calibration::load(Path::new("/nonexistent/cam.toml")).unwrap_err();
        assert!(matches!(e, Error::Read { .. }));
        assert!(e.to_string().starts_with("cannot read calibration /nonexistent/cam.toml"));
    }

    #[test]
    fn a_folder_maps_several_cameras_onto_one_plan() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("a.toml", GOOD);
        write("b.toml", &GOOD.replace("camera = \"entrance\"", "camera = \"till\""));
        write("notes.md", "not a calibration");
        let cals = Calibration::load_dir(dir.path()).unwrap();
        assert_eq!(cals.iter().map(|c| c.camera.as_str()).collect::<Vec<_>>(), ["entrance", "till"]);
        assert_eq!(cals[0].floor_plan, cals[1].floor_plan);

        write("b.toml", &GOOD.replace("camera = \"entrance\"", "camera = \"till\"").replace("50.0", "40.0"));
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: floor_plan.pixels_per_metre: 40 differs from 50 in"), "{e}");

        write(
            "b.toml",
            &GOOD.replace("camera = \"entrance\"", "camera = \"till\"").replace("\"plan.png\"", "\"other.png\""),
        );
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: floor_plan.image:"), "{e}");

        write(
            "b.toml",
            &GOOD
                .replace("pixels_per_metre = 50.0", "pixels_per_metre = 50.0\norigin_px = [10, 0]")
                .replace("camera = \"entrance\"", "camera = \"till\""),
        );
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: floor_plan.origin_px:"), "{e}");

        write("b.toml", GOOD);
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: camera: \"entrance\" is already calibrated in"), "{e}");

        write(
            "b.toml",
            &GOOD.replace("camera = \"entrance\"", "camera = \"till\"").replace("[4, 4], [3, 4]", "[4, 4.5], [3, 4]"),
        );
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: zones[1]: zone \"till\" is defined differently in"), "{e}");

        write(
            "b.toml",
            &GOOD
                .replace("camera = \"entrance\"", "camera = \"till\"")
                .replace("in_side = \"left\"", "in_side = \"right\""),
        );
        let e = Calibration::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml: lines[0]: line \"door\" is defined differently in"), "{e}");

        let empty = tempfile::tempdir().unwrap();
        assert!(Calibration::load_dir(empty.path()).unwrap().is_empty());
        assert!(matches!(Calibration::load_dir(&dir.path().join("nope")), Err(Error::Read { .. })));
    }

    #[test]
    fn a_closing_point_that_repeats_the_first_is_dropped() {
        let c = parse(
            &GOOD.replace("[[0, 0], [2, 0], [2, 1.5], [0, 1.5]]", "[[0, 0], [2, 0], [2, 1.5], [0, 1.5], [0, 0]]"),
        )
        .unwrap();
        assert_eq!(c.zones[0].polygon.points.len(), 4);
    }

    /// Every file in the crate's `calibration/` folder (the documented example site) loads and fits well.
    #[test]
    fn the_bundled_calibration_folder_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration");
        let cals = Calibration::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cals.is_empty());
        for c in &cals {
            assert!(c.fit.outliers().is_empty(), "{}", c.check_report());
            assert!(c.fit.rms_px < 3.0, "{}", c.check_report());
            assert!(c.floor_plan.image.is_file(), "{}", c.check_report());
        }
    }

    /// GOOD split by hand into a site file and a camera file naming it, in a temporary folder.
    fn split_good(dir: &Path, sees: &str) -> (PathBuf, PathBuf) {
        let at = GOOD.find("[[zones]]").unwrap();
        let plan_start = GOOD.find("[floor_plan]").unwrap();
        let plan_end = GOOD[plan_start..].find("\n\n").unwrap() + plan_start;
        let site = format!("{}\n\n{}", &GOOD[plan_start..plan_end], &GOOD[at..]);
        let camera = format!("{}site = \"site.toml\"\n{sees}\n{}", &GOOD[..plan_start], &GOOD[plan_end..at]);
        std::fs::write(dir.join("site.toml"), site).unwrap();
        std::fs::write(dir.join("cam.toml"), camera).unwrap();
        (dir.join("site.toml"), dir.join("cam.toml"))
    }

    #[test]
    fn a_camera_takes_its_plan_zones_and_lines_from_the_site_file() {
        let dir = tempfile::tempdir().unwrap();
        let (site, cam) = split_good(dir.path(), "");
        let c = Calibration::load(&cam).unwrap();
        let whole = Calibration::parse(GOOD, &cam, dir.path()).unwrap();
        assert_eq!(
            (&c.zones, &c.lines, &c.fit, &c.floor_plan),
            (&whole.zones, &whole.lines, &whole.fit, &whole.floor_plan)
        );
        // A folder with the site file reads the cameras only.
        assert_eq!(Calibration::load_dir(dir.path()).unwrap().len(), 1);
        // `sees` keeps only the named zones and lines.
        split_good(dir.path(), "sees = [\"till\", \"door\"]");
        let c = Calibration::load(&cam).unwrap();
        assert_eq!(c.zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(), ["till"]);
        assert_eq!(c.lines.len(), 1);
        // Errors name the file and field they are in.
        split_good(dir.path(), "sees = [\"bakery\"]");
        let e = Calibration::load(&cam).unwrap_err().to_string();
        assert!(e.contains("cam.toml") && e.contains("sees[0]") && e.contains("bakery"), "{e}");
        split_good(dir.path(), "");
        let bad = std::fs::read_to_string(&site).unwrap().replace("[[3, 3], [4, 3]", "[[3, 3], [3, 3]");
        std::fs::write(&site, bad).unwrap();
        let e = Calibration::load(&cam).unwrap_err().to_string();
        assert!(e.contains("site.toml") && e.contains("zones[1].polygon"), "{e}");
        // A camera file that names a site and also holds zones is refused, saying how to mend it.
        let both = format!("site = \"site.toml\"\n{GOOD}");
        let e = Calibration::parse(&both, &cam, dir.path()).unwrap_err().to_string();
        assert!(e.contains("remove [floor_plan]"), "{e}");
        let e = Calibration::parse(
            &format!("site = \"/dev\"\n{}", &GOOD[..GOOD.find("[floor_plan]").unwrap()]),
            &cam,
            dir.path(),
        );
        assert!(e.unwrap_err().to_string().contains("regular file"));
    }

    #[test]
    fn one_file_calibrations_convert_to_a_site_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let other =
            GOOD.replace("camera = \"entrance\"", "camera = \"aisle\"").replace("name = \"till\"", "name = \"shelf\"");
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::fs::write(&a, GOOD).unwrap();
        std::fs::write(&b, other).unwrap();
        let before = [Calibration::load(&a).unwrap(), Calibration::load(&b).unwrap()];
        let site = dir.path().join("site.toml");
        let (site_text, cameras) = to_site(&[a.clone(), b.clone()], &site).unwrap();
        std::fs::write(&site, site_text).unwrap();
        for (file, text) in &cameras {
            assert!(text.contains("site = \"site.toml\"") && !text.contains("[[zones]]"), "{text}");
            std::fs::write(file, text).unwrap();
        }
        for (old, file) in before.iter().zip([&a, &b]) {
            let new = Calibration::load(file).unwrap();
            assert_eq!((&new.zones, &new.lines, &new.fit), (&old.zones, &old.lines, &old.fit));
        }
        let site_zones: Vec<String> = toml::from_str::<RawSite>(&std::fs::read_to_string(&site).unwrap())
            .unwrap()
            .zones
            .into_iter()
            .map(|z| z.name)
            .collect();
        assert_eq!(site_zones, ["entrance", "till", "shelf"]);
        // Converted files are not converted again; a site elsewhere is refused.
        assert!(to_site(std::slice::from_ref(&a), &site).unwrap_err().to_string().contains("already names a site"));
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(&a, GOOD).unwrap();
        let e = to_site(&[a], &elsewhere.path().join("site.toml")).unwrap_err().to_string();
        assert!(e.contains("one folder"), "{e}");
    }
}
