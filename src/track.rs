//! Short-lived anonymous track ids, ByteTrack-style.
//!
//! A [`Tracker`] turns per-frame person boxes ([`Detection`]) into tracks that keep one [`TrackId`] while the
//! same person stays in view:
//!
//! - **Motion model.** Each track carries a constant-velocity Kalman filter on (centre x, centre y,
//!   aspect = width / height, height), as in SORT, DeepSORT and ByteTrack, with process and measurement
//!   noise proportional to the box height. It is predicted every frame and updated when the track is matched.
//! - **Association** (ByteTrack, Zhang et al. 2022), every frame, by IoU between the *predicted* track box
//!   and the detection box, each stage an optimal assignment (Hungarian / Kuhn–Munkres, written below):
//!   1. high-score detections against every confirmed track, tracked or lost;
//!   2. the remaining low-score detections against the confirmed tracks that were tracked last frame and
//!      are still unmatched (a person half hidden behind a shelf scores low but is still there);
//!   3. the remaining high-score detections against tentative tracks.
//!
//!   Detections left over with a score of at least [`TrackerConfig::new_track_score`] start tentative tracks.
//! - **Confirmation.** A tentative track that misses a single frame before it has
//!   [`TrackerConfig::confirm_hits`] hits is deleted at once, so a one-frame false detection never becomes a
//!   confirmed track. A confirmed track that misses frames is kept ("lost") for up to
//!   [`TrackerConfig::max_missed`] frames, predicted by its motion model, and can be matched again.
//!
//! # Ids
//! A [`TrackId`] is a random 64-bit value drawn from an OS-seeded generator when a track is *confirmed*
//! (tentative tracks have no id, so false detections consume none). Ids are checked against every id this
//! `Tracker` has issued, so they are unique within a run; being random rather than sequential, they carry no
//! order and nothing links a person across runs or days. Nothing here keeps appearance, only boxes.
//!
//! # Output
//! [`Tracker::update`] fills a caller-owned `Vec<TrackState>` with the confirmed tracks matched this frame,
//! each with the index of its detection so the caller can attach keypoints. [`Tracker::ended`] lists the ids
//! of confirmed tracks that were dropped this frame, and [`Tracker::finish`] ends every live track at the end
//! of a stream. The frames a track spends tentative (the first `confirm_hits - 1`) are not reported.

use std::collections::HashSet;
use std::fmt;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Serialize, Serializer};

use crate::geometry::BoxInImage;

/// An anonymous, random, per-run track id. Displays and serializes as 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for TrackId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One person box from the detector in the current frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BoxInImage,
    /// Detector confidence in `[0, 1]`.
    pub score: f32,
}

/// Tracker settings. [`Default`] gives ByteTrack's published settings for a 30 fps stream
/// (`match_thresh` 0.8, `track_buffer` 30) with four changes, each documented on its field: the score
/// thresholds are set for MoveNet MultiPose's person scores (which sit around 0.25-0.6 for clearly visible
/// people, where ByteTrack's YOLOX detector gives 0.5-0.9), a track needs three hits rather than two to be
/// confirmed, tentative tracks match with a buffered IoU, and a newborn track's velocity is less certain. The last two keep fast walkers at low frame rates
/// (up to about 40 px per frame in a 1280x720 frame) on one id. Deserializes with defaults for missing fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Detections scoring at least this are "high" and take part in the first association stage
    /// (ByteTrack `track_thresh`, 0.5 there). Default 0.3, for MoveNet's scores.
    pub high_score: f32,
    /// Detections scoring below this are ignored; those in `[low_score, high_score)` are "low" and can only
    /// extend a track that was tracked last frame. Default 0.15.
    pub low_score: f32,
    /// An unmatched high detection starts a tentative track only if it scores at least this
    /// (ByteTrack `track_thresh + 0.1`). Default 0.3: on the store-aisle and sample clips, people MoveNet
    /// sees clearly score 0.3-0.6.
    pub new_track_score: f32,
    /// Least IoU for a match in the first stage (high detections against confirmed tracks); ByteTrack's
    /// `match_thresh` 0.8 on the cost `1 - IoU`. Default 0.2.
    pub match_iou: f32,
    /// Least IoU for a match in the second stage (low detections against tracked tracks). Default 0.5.
    pub low_match_iou: f32,
    /// Least IoU for a match between a remaining high detection and a tentative track. Default 0.3.
    pub tentative_match_iou: f32,
    /// Both boxes are grown by this fraction of their size on every side before the tentative-track IoU
    /// (the "buffered IoU" of C-BIoU, Yang et al. 2023). A newborn track has no velocity yet, and at the
    /// low frame rates an appliance may run at, a walker moves a good part of their own width per frame.
    /// Default 0.5 (each box doubles in width and height).
    pub tentative_buffer: f32,
    /// Matched frames in a row a track needs to be confirmed and get an id (at least 1). Default 3.
    pub confirm_hits: u32,
    /// Frames a confirmed track is kept while unmatched before it ends. Default 30 (one second at 30 fps).
    pub max_missed: u32,
    /// Kalman position noise, as a fraction of the box height (DeepSORT `std_weight_position`). Default 1/20.
    pub position_noise: f32,
    /// Kalman velocity noise, as a fraction of the box height per frame (DeepSORT `std_weight_velocity`).
    /// Default 1/160.
    pub velocity_noise: f32,
    /// Standard deviation of a newborn track's velocity, as a fraction of the box height per frame.
    /// DeepSORT uses `10 * std_weight_velocity` = 1/16, tuned for 30 fps; 1/4 lets a track take most of its
    /// speed from its second hit, so fast walkers at low frame rates are predicted well when briefly missed.
    /// Default 1/4.
    pub initial_velocity_noise: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_score: 0.3,
            low_score: 0.15,
            new_track_score: 0.3,
            match_iou: 0.2,
            low_match_iou: 0.5,
            tentative_match_iou: 0.3,
            tentative_buffer: 0.5,
            confirm_hits: 3,
            max_missed: 30,
            position_noise: 1.0 / 20.0,
            velocity_noise: 1.0 / 160.0,
            initial_velocity_noise: 1.0 / 4.0,
        }
    }
}

impl TrackerConfig {
    /// The first setting outside its meaningful range, as (field, what is wrong): scores and IoUs in
    /// `[0, 1]`, `low_score <= high_score`, `confirm_hits >= 1`, a non-negative buffer, positive noise. A
    /// config file's `[tracking]` is checked with this (an error names the field); [`Self::sanitized`] is
    /// for settings made in code.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let unit = [
            ("high_score", self.high_score),
            ("low_score", self.low_score),
            ("new_track_score", self.new_track_score),
            ("match_iou", self.match_iou),
            ("low_match_iou", self.low_match_iou),
            ("tentative_match_iou", self.tentative_match_iou),
        ];
        for (field, v) in unit {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err((field, format!("{v} is not between 0 and 1")));
            }
        }
        if self.low_score > self.high_score {
            return Err(("low_score", format!("{} is above high_score ({})", self.low_score, self.high_score)));
        }
        if !(self.tentative_buffer.is_finite() && self.tentative_buffer >= 0.0) {
            return Err(("tentative_buffer", format!("{} is not 0 or more", self.tentative_buffer)));
        }
        if self.confirm_hits == 0 {
            return Err(("confirm_hits", "must be at least 1".into()));
        }
        for (field, v) in [
            ("position_noise", self.position_noise),
            ("velocity_noise", self.velocity_noise),
            ("initial_velocity_noise", self.initial_velocity_noise),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err((field, format!("{v} is not a positive number")));
            }
        }
        Ok(())
    }

    /// The same settings with every value brought into its meaningful range: scores and IoUs into `[0, 1]`
    /// (non-finite values take the default), `low_score <= high_score`, `confirm_hits >= 1`, a non-negative
    /// buffer, positive noise.
    pub fn sanitized(self) -> Self {
        let d = Self::default();
        let unit = |v: f32, dv: f32| if v.is_finite() { v.clamp(0.0, 1.0) } else { dv };
        let positive = |v: f32, dv: f32| if v.is_finite() && v > 0.0 { v } else { dv };
        let high_score = unit(self.high_score, d.high_score);
        Self {
            high_score,
            low_score: unit(self.low_score, d.low_score).min(high_score),
            new_track_score: unit(self.new_track_score, d.new_track_score),
            match_iou: unit(self.match_iou, d.match_iou),
            low_match_iou: unit(self.low_match_iou, d.low_match_iou),
            tentative_match_iou: unit(self.tentative_match_iou, d.tentative_match_iou),
            tentative_buffer: if self.tentative_buffer.is_finite() {
                self.tentative_buffer.max(0.0)
            } else {
                d.tentative_buffer
            },
            confirm_hits: self.confirm_hits.max(1),
            max_missed: self.max_missed,
            position_noise: positive(self.position_noise, d.position_noise),
            velocity_noise: positive(self.velocity_noise, d.velocity_noise),
            initial_velocity_noise: positive(self.initial_velocity_noise, d.initial_velocity_noise),
        }
    }
}

/// A confirmed track matched in the current frame, as reported by [`Tracker::update`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackState {
    pub id: TrackId,
    /// The Kalman-filtered box after this frame's update.
    pub bbox: BoxInImage,
    /// Index of the matched detection in the slice passed to [`Tracker::update`].
    pub detection: usize,
    /// Score of the matched detection.
    pub score: f32,
    /// Frames this track has been matched, including this one.
    pub hits: u32,
    /// Frames since the track was born (0 in its first frame).
    pub age: u32,
    /// True in the one frame in which the track became confirmed and got its id.
    pub just_confirmed: bool,
}

/// A confirmed track that is still alive, matched this frame or not; see [`Tracker::live`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LiveTrack {
    pub id: TrackId,
    /// The filtered box when matched this frame, the predicted box otherwise.
    pub bbox: BoxInImage,
    pub hits: u32,
    pub age: u32,
    /// Frames in a row without a match (0 when matched this frame).
    pub missed: u32,
}

/// Multi-object tracker for one camera. Create one per stream; see the [module docs](self).
///
/// Memory grows only with the number of tracks alive at once, plus 8 bytes or so per id issued (kept to
/// guarantee uniqueness within the run).
pub struct Tracker {
    /// The settings in use: `configured`, with its frame counts turned into updates.
    config: TrackerConfig,
    /// The settings as given, frame counts in frames of the video.
    configured: TrackerConfig,
    tracks: Vec<Track>,
    rng: StdRng,
    issued: HashSet<u64>,
    ended: Vec<TrackId>,
    // Per-frame scratch, reused so a steady-state frame allocates nothing.
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    /// Per detection: the box when usable, otherwise `None`.
    usable: Vec<Option<BoxInImage>>,
    /// Per detection: already matched this frame.
    taken: Vec<bool>,
    high: Vec<usize>,
    low: Vec<usize>,
    pool: Vec<usize>,
    /// Predicted box of each track, by index in `tracks`.
    predicted: Vec<BoxInImage>,
    weights: Vec<f64>,
    pairs: Vec<(usize, usize)>,
    hungarian: Hungarian,
}

struct Track {
    /// `None` while tentative.
    id: Option<TrackId>,
    kf: BoxKalman,
    hits: u32,
    age: u32,
    missed: u32,
    /// Detection matched this frame.
    matched: Option<usize>,
}

impl Tracker {
    /// A tracker with `config` (after [`TrackerConfig::sanitized`]) and a fresh OS-seeded id generator.
    pub fn new(config: TrackerConfig) -> Self {
        Self::with_rng(config, StdRng::from_os_rng())
    }

    fn with_rng(config: TrackerConfig, rng: StdRng) -> Self {
        Self {
            config: config.sanitized(),
            configured: config.sanitized(),
            tracks: Vec::new(),
            rng,
            issued: HashSet::new(),
            ended: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// The tracker is updated on every `n`-th frame of the video (the person detector's cadence):
    /// `max_missed`, given in frames of the video, becomes a count of updates, so that a lost person is
    /// given up after the same time whatever the cadence. `confirm_hits` stays a count of detections: two
    /// hits at a lower cadence let short false tracks through (measured on the store-aisle clip).
    /// Call before the first update.
    pub fn set_frames_per_update(&mut self, n: u32) {
        let n = n.max(1);
        self.config = TrackerConfig { max_missed: self.configured.max_missed.div_ceil(n), ..self.configured };
    }

    /// Advances one frame. `out` is cleared and filled with the confirmed tracks matched to one of
    /// `detections` in this frame. Detections with a non-finite or empty box are ignored.
    pub fn update(&mut self, detections: &[Detection], out: &mut Vec<TrackState>) {
        out.clear();
        self.ended.clear();
        let cfg = self.config;
        let s = &mut self.scratch;

        // Predict every track and remember the predicted box for association.
        s.predicted.clear();
        for t in &mut self.tracks {
            t.kf.predict(&cfg, t.missed == 0);
            t.age = t.age.saturating_add(1);
            t.matched = None;
            s.predicted.push(t.kf.bbox());
        }

        // Split the detections by score.
        s.usable.clear();
        s.taken.clear();
        s.high.clear();
        s.low.clear();
        for (i, d) in detections.iter().enumerate() {
            let b = d.bbox;
            let ok =
                [b.x1, b.y1, b.x2, b.y2, d.score].iter().all(|v| v.is_finite()) && b.width() > 0.0 && b.height() > 0.0;
            s.usable.push(ok.then_some(b));
            s.taken.push(false);
            if !ok {
                continue;
            }
            if d.score >= cfg.high_score {
                s.high.push(i);
            } else if d.score >= cfg.low_score {
                s.low.push(i);
            }
        }

        // Stage 1: high detections against all confirmed tracks (tracked and lost).
        s.pool.clear();
        s.pool.extend(self.tracks.iter().enumerate().filter(|(_, t)| t.id.is_some()).map(|(i, _)| i));
        associate(&mut self.tracks, s, Pool::High, cfg.match_iou, 0.0);

        // Stage 2: low detections against confirmed tracks that were tracked last frame and are unmatched.
        s.pool.clear();
        s.pool.extend(
            self.tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.id.is_some() && t.missed == 0 && t.matched.is_none())
                .map(|(i, _)| i),
        );
        associate(&mut self.tracks, s, Pool::Low, cfg.low_match_iou, 0.0);

        // Stage 3: the remaining high detections against tentative tracks.
        s.pool.clear();
        s.pool.extend(self.tracks.iter().enumerate().filter(|(_, t)| t.id.is_none()).map(|(i, _)| i));
        associate(&mut self.tracks, s, Pool::High, cfg.tentative_match_iou, cfg.tentative_buffer);

        // Update the matched, age the unmatched, drop the dead.
        let (rng, issued, ended) = (&mut self.rng, &mut self.issued, &mut self.ended);
        self.tracks.retain_mut(|t| {
            let Some(d) = t.matched else {
                t.missed = t.missed.saturating_add(1);
                return match t.id {
                    None => false,
                    Some(id) if t.missed > cfg.max_missed => {
                        ended.push(id);
                        false
                    }
                    Some(_) => true,
                };
            };
            t.kf.update(&cfg, measurement(&detections[d].bbox));
            t.hits = t.hits.saturating_add(1);
            t.missed = 0;
            let just_confirmed = t.id.is_none() && t.hits >= cfg.confirm_hits;
            if just_confirmed {
                t.id = Some(draw_id(rng, issued));
            }
            if let Some(id) = t.id {
                out.push(t.state(id, d, detections[d].score, just_confirmed));
            }
            true
        });

        // Unmatched confident high detections start tentative tracks.
        for &d in &s.high {
            if s.taken[d] || detections[d].score < cfg.new_track_score {
                continue;
            }
            let mut t = Track {
                id: None,
                kf: BoxKalman::initiate(&cfg, measurement(&detections[d].bbox)),
                hits: 1,
                age: 0,
                missed: 0,
                matched: Some(d),
            };
            if cfg.confirm_hits <= 1 {
                let id = draw_id(&mut self.rng, &mut self.issued);
                t.id = Some(id);
                out.push(t.state(id, d, detections[d].score, true));
            }
            self.tracks.push(t);
        }
    }

    /// Ids of the confirmed tracks that ended in the last [`update`](Self::update) (unmatched for more than
    /// `max_missed` frames), valid until the next update.
    pub fn ended(&self) -> &[TrackId] {
        &self.ended
    }

    /// Every confirmed track still alive after the last update, matched or lost.
    pub fn live(&self) -> impl Iterator<Item = LiveTrack> + '_ {
        self.tracks.iter().filter_map(|t| {
            t.id.map(|id| LiveTrack { id, bbox: t.kf.bbox(), hits: t.hits, age: t.age, missed: t.missed })
        })
    }

    /// Every confirmed track still alive, with the box it had after the last update and the box the motion
    /// model expects `steps` updates later: the path a person will take until the tracker sees them again.
    pub fn live_ahead(&self, steps: f64) -> impl Iterator<Item = (TrackId, BoxInImage, BoxInImage)> + '_ {
        self.tracks.iter().filter_map(move |t| t.id.map(|id| (id, t.kf.bbox(), t.kf.bbox_ahead(steps))))
    }

    /// Ends every track (end of stream) and returns the ids of the confirmed ones (they are not repeated in
    /// [`ended`](Self::ended), which this clears). Tentative tracks are dropped silently. The tracker stays
    /// usable and keeps avoiding the ids it has issued.
    pub fn finish(&mut self) -> Vec<TrackId> {
        self.ended.clear();
        let ids = self.tracks.iter().filter_map(|t| t.id).collect();
        self.tracks.clear();
        ids
    }
}

impl Track {
    fn state(&self, id: TrackId, detection: usize, score: f32, just_confirmed: bool) -> TrackState {
        TrackState { id, bbox: self.kf.bbox(), detection, score, hits: self.hits, age: self.age, just_confirmed }
    }
}

/// Draws a fresh non-zero id that this tracker has never issued.
fn draw_id(rng: &mut StdRng, issued: &mut HashSet<u64>) -> TrackId {
    loop {
        let v = rng.next_u64();
        if v != 0 && issued.insert(v) {
            return TrackId(v);
        }
    }
}

#[derive(Clone, Copy)]
enum Pool {
    High,
    Low,
}

/// One association stage: the tracks in `s.pool` against the untaken detections of `which`, by IoU of the
/// predicted track box (both boxes grown by `buffer` on every side), pairs below `min_iou` not allowed.
/// Sets `matched` on tracks and `taken` on detections.
fn associate(tracks: &mut [Track], s: &mut Scratch, which: Pool, min_iou: f32, buffer: f32) {
    let dets = match which {
        Pool::High => &mut s.high,
        Pool::Low => &mut s.low,
    };
    let taken = &s.taken;
    dets.retain(|&d| !taken[d]);
    if s.pool.is_empty() || dets.is_empty() {
        return;
    }
    let (rows, cols) = (s.pool.len(), dets.len());
    s.weights.clear();
    for &t in &s.pool {
        let p = s.predicted[t].expanded(buffer);
        for &d in dets.iter() {
            let iou = s.usable[d].map_or(0.0, |b| p.iou(&b.expanded(buffer)));
            // Weight IoU - min_iou (> 0 when allowed): maximizing the total is ByteTrack's assignment with a
            // cost limit (`lapjv(cost = 1 - IoU, cost_limit = 1 - min_iou)`).
            let w = if iou.is_finite() && iou >= min_iou { f64::from(iou - min_iou) + 1e-9 } else { 0.0 };
            s.weights.push(w);
        }
    }
    s.hungarian.max_weight_matching(rows, cols, &s.weights, &mut s.pairs);
    for &(r, c) in &s.pairs {
        let d = dets[c];
        tracks[s.pool[r]].matched = Some(d);
        s.taken[d] = true;
    }
}

/// The Kalman measurement of a box: (centre x, centre y, width / height, height).
fn measurement(b: &BoxInImage) -> [f64; 4] {
    let c = b.centre();
    let h = f64::from(b.height());
    [f64::from(c.x), f64::from(c.y), f64::from(b.width()) / h, h]
}

/// Constant-velocity Kalman filter on `[cx, cy, a, h, vcx, vcy, va, vh]` with measurement `[cx, cy, a, h]`,
/// one step per frame; noise as in DeepSORT / ByteTrack, proportional to the box height.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BoxKalman {
    mean: [f64; 8],
    cov: [[f64; 8]; 8],
}

/// Smallest height the filter reports, so a long-lost track never produces an inverted box.
const MIN_HEIGHT: f64 = 1.0;

// Small fixed-size matrix code reads best with explicit indices.
#[allow(clippy::needless_range_loop)]
impl BoxKalman {
    fn initiate(cfg: &TrackerConfig, z: [f64; 4]) -> Self {
        let (wp, wv) = (f64::from(cfg.position_noise), f64::from(cfg.initial_velocity_noise));
        let h = z[3];
        let std = [2.0 * wp * h, 2.0 * wp * h, 1e-2, 2.0 * wp * h, wv * h, wv * h, 1e-5, wv * h];
        let mut mean = [0.0; 8];
        mean[..4].copy_from_slice(&z);
        let mut cov = [[0.0; 8]; 8];
        for i in 0..8 {
            cov[i][i] = std[i] * std[i];
        }
        Self { mean, cov }
    }

    /// One frame ahead. A track that was not tracked last frame keeps its height (ByteTrack zeroes the height
    /// velocity of lost tracks) so it neither vanishes nor balloons while unseen.
    fn predict(&mut self, cfg: &TrackerConfig, tracked: bool) {
        if !tracked {
            self.mean[7] = 0.0;
        }
        let (wp, wv) = (f64::from(cfg.position_noise), f64::from(cfg.velocity_noise));
        let h = self.mean[3].max(MIN_HEIGHT);
        let q = [wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h];
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        // cov = F cov F^T + Q, with F = [[I, I], [0, I]].
        let p = &mut self.cov;
        for i in 0..4 {
            for j in 0..8 {
                p[i][j] += p[i + 4][j];
            }
        }
        for row in p.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for i in 0..8 {
            p[i][i] += q[i] * q[i];
        }
        self.mean[3] = self.mean[3].max(MIN_HEIGHT);
    }

    fn update(&mut self, cfg: &TrackerConfig, z: [f64; 4]) {
        let wp = f64::from(cfg.position_noise);
        let h = self.mean[3].max(MIN_HEIGHT);
        let r = [wp * h, wp * h, 1e-1, wp * h];
        // Innovation covariance S = H P H^T + R (the top-left 4x4 block of P plus R).
        let mut s = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = 0.5 * (self.cov[i][j] + self.cov[j][i]);
            }
            s[i][i] += r[i] * r[i];
        }
        let Some(l) = cholesky4(&s) else {
            return;
        };
        // Kalman gain K = P H^T S^-1: row i of K solves S k = (P H^T)_i, S being symmetric.
        let mut k = [[0.0; 4]; 8];
        for (i, ki) in k.iter_mut().enumerate() {
            let mut b = [0.0; 4];
            b.copy_from_slice(&self.cov[i][..4]);
            *ki = cholesky4_solve(&l, b);
        }
        let innovation: [f64; 4] = std::array::from_fn(|j| z[j] - self.mean[j]);
        for i in 0..8 {
            self.mean[i] += (0..4).map(|j| k[i][j] * innovation[j]).sum::<f64>();
        }
        // P -= K S K^T = K (H P): H P is the top four rows of P.
        let hp: [[f64; 8]; 4] = std::array::from_fn(|j| self.cov[j]);
        for i in 0..8 {
            for c in 0..8 {
                self.cov[i][c] -= (0..4).map(|j| k[i][j] * hp[j][c]).sum::<f64>();
            }
        }
        // Keep P exactly symmetric against rounding.
        for i in 0..8 {
            for c in i + 1..8 {
                let v = 0.5 * (self.cov[i][c] + self.cov[c][i]);
                self.cov[i][c] = v;
                self.cov[c][i] = v;
            }
        }
        self.mean[3] = self.mean[3].max(MIN_HEIGHT);
    }

    fn bbox(&self) -> BoxInImage {
        self.bbox_ahead(0.0)
    }

    /// The box the constant-velocity model expects `steps` updates from now (the state is not changed).
    fn bbox_ahead(&self, steps: f64) -> BoxInImage {
        let at = |i: usize| self.mean[i] + self.mean[i + 4] * steps;
        let [cx, cy, a, h] = [at(0), at(1), at(2).max(0.0), at(3).max(MIN_HEIGHT)];
        let w = (a * h).max(0.0);
        BoxInImage::new((cx - w / 2.0) as f32, (cy - h / 2.0) as f32, (cx + w / 2.0) as f32, (cy + h / 2.0) as f32)
    }
}

/// Lower Cholesky factor of a symmetric positive-definite 4x4 matrix; `None` if it is not.
fn cholesky4(a: &[[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let mut l = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let s = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves `L L^T x = b` given the Cholesky factor `L`.
fn cholesky4_solve(l: &[[f64; 4]; 4], b: [f64; 4]) -> [f64; 4] {
    let mut y = [0.0; 4];
    for i in 0..4 {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        x[i] = (y[i] - (i + 1..4).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

/// Kuhn–Munkres (Hungarian) assignment with potentials, O(rows² · cols), reusing its buffers.
#[derive(Debug, Default)]
pub(crate) struct Hungarian {
    u: Vec<f64>,
    v: Vec<f64>,
    /// `p[j]`: 1-based row assigned to 1-based column `j` (0 = none); `p[0]` is the row being inserted.
    p: Vec<usize>,
    way: Vec<usize>,
    minv: Vec<f64>,
    used: Vec<bool>,
    assigned: Vec<usize>,
}

impl Hungarian {
    /// Assigns every one of `rows` rows to a distinct one of `cols >= rows` columns at the least total
    /// `cost(row, col)` (finite costs). `col_of_row` is cleared and filled with each row's column.
    pub(crate) fn min_cost_assignment(
        &mut self,
        rows: usize,
        cols: usize,
        cost: impl Fn(usize, usize) -> f64,
        col_of_row: &mut Vec<usize>,
    ) {
        assert!(rows <= cols, "min_cost_assignment needs rows <= cols");
        let (n, m) = (rows, cols);
        for (buf, len) in [(&mut self.u, n + 1), (&mut self.v, m + 1)] {
            buf.clear();
            buf.resize(len, 0.0);
        }
        self.p.clear();
        self.p.resize(m + 1, 0);
        self.way.clear();
        self.way.resize(m + 1, 0);
        for i in 1..=n {
            self.p[0] = i;
            let mut j0 = 0;
            self.minv.clear();
            self.minv.resize(m + 1, f64::INFINITY);
            self.used.clear();
            self.used.resize(m + 1, false);
            loop {
                self.used[j0] = true;
                let i0 = self.p[j0];
                let mut delta = f64::INFINITY;
                let mut j1 = 0;
                for j in 1..=m {
                    if self.used[j] {
                        continue;
                    }
                    let cur = cost(i0 - 1, j - 1) - self.u[i0] - self.v[j];
                    if cur < self.minv[j] {
                        self.minv[j] = cur;
                        self.way[j] = j0;
                    }
                    if self.minv[j] < delta {
                        delta = self.minv[j];
                        j1 = j;
                    }
                }
                if j1 == 0 {
                    // Only with non-finite costs; keep the loop finite by taking any free column.
                    j1 = (1..=m).find(|&j| !self.used[j]).expect("a free column exists while rows <= cols");
                    self.way[j1] = j0;
                    delta = 0.0;
                }
                for j in 0..=m {
                    if self.used[j] {
                        self.u[self.p[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.minv[j] -= delta;
                    }
                }
                j0 = j1;
                if self.p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = self.way[j0];
                self.p[j0] = self.p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        col_of_row.clear();
        col_of_row.resize(n, usize::MAX);
        for j in 1..=m {
            if self.p[j] != 0 {
                col_of_row[self.p[j] - 1] = j - 1;
            }
        }
    }

    /// Maximum-weight bipartite matching on a row-major `rows` x `cols` weight matrix; only pairs with weight
    /// `> 0` may be matched. `pairs` is cleared and filled with the matched `(row, col)` pairs, by row.
    pub(crate) fn max_weight_matching(
        &mut self,
        rows: usize,
        cols: usize,
        weights: &[f64],
        pairs: &mut Vec<(usize, usize)>,
    ) {
        debug_assert_eq!(weights.len(), rows * cols);
        pairs.clear();
        if rows == 0 || cols == 0 {
            return;
        }
        // Cost -w for an allowed pair and 0 otherwise: a full assignment's cost is minus the weight of its
        // allowed pairs, so the optimal one is a maximum-weight matching once disallowed pairs are dropped.
        let cost = |w: f64| if w > 0.0 { -w } else { 0.0 };
        let mut assigned = std::mem::take(&mut self.assigned);
        if rows <= cols {
            self.min_cost_assignment(rows, cols, |r, c| cost(weights[r * cols + c]), &mut assigned);
            pairs.extend(
                assigned.iter().enumerate().map(|(r, &c)| (r, c)).filter(|&(r, c)| weights[r * cols + c] > 0.0),
            );
        } else {
            self.min_cost_assignment(cols, rows, |c, r| cost(weights[r * cols + c]), &mut assigned);
            pairs.extend(
                assigned.iter().enumerate().map(|(c, &r)| (r, c)).filter(|&(r, c)| weights[r * cols + c] > 0.0),
            );
            pairs.sort_unstable();
        }
        self.assigned = assigned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, RngCore, SeedableRng};
    use std::collections::HashMap;

    const W: f32 = 1280.0;
    const H: f32 = 720.0;

    fn det(b: BoxInImage, score: f32) -> Detection {
        Detection { bbox: b, score }
    }

    // ---- ids ----

    #[test]
    fn frame_counts_follow_the_detector_cadence() {
        let mut t = Tracker::new(TrackerConfig { confirm_hits: 3, max_missed: 30, ..TrackerConfig::default() });
        t.set_frames_per_update(2);
        assert_eq!((t.config.confirm_hits, t.config.max_missed), (3, 15));
        t.set_frames_per_update(10);
        assert_eq!((t.config.confirm_hits, t.config.max_missed), (3, 3));
        t.set_frames_per_update(1);
        assert_eq!((t.config.confirm_hits, t.config.max_missed), (3, 30));
    }

    #[test]
    fn live_ahead_follows_a_walker() {
        let mut t =
            Tracker::with_rng(TrackerConfig { confirm_hits: 1, ..TrackerConfig::default() }, StdRng::seed_from_u64(7));
        let mut out = Vec::new();
        for k in 0..6 {
            let x = 100.0 + 20.0 * k as f32;
            t.update(&[Detection { bbox: BoxInImage::new(x, 100.0, x + 50.0, 250.0), score: 0.9 }], &mut out);
        }
        let (_, now, ahead) = t.live_ahead(1.0).next().expect("a live track");
        // Moving right about 20 px per update: the box one update ahead is further right, same size.
        assert!(ahead.x1 > now.x1 + 10.0 && ahead.x1 < now.x1 + 30.0, "{now:?} -> {ahead:?}");
        assert!((ahead.height() - now.height()).abs() < 5.0);
    }

    #[test]
    fn track_ids_print_and_serialize_as_sixteen_hex_digits() {
        let id = TrackId(0xab);
        assert_eq!(id.to_string(), "00000000000000ab");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"00000000000000ab\"");
        assert_eq!(TrackId(u64::MAX).to_string(), "ffffffffffffffff");
    }

    #[test]
    fn tracker_can_move_to_a_worker_thread() {
        fn send<T: Send>() {}
        send::<Tracker>();
    }

    #[test]
    fn draw_id_skips_ids_already_issued() {
        let rng = StdRng::seed_from_u64(7);
        let first = rng.clone().next_u64();
        let mut issued = HashSet::from([first]);
        let mut rng = rng;
        let id = draw_id(&mut rng, &mut issued);
        assert_ne!(id.0, first);
        assert!(issued.contains(&id.0) && issued.len() == 2);
    }

    #[test]
    fn ids_differ_between_trackers() {
        // A fresh tracker is seeded from the OS, so the same scene gets different ids in each run.
        let scene: Vec<_> =
            (0..5).map(|k| det(BoxInImage::from_xywh(100.0 + 5.0 * k as f32, 100.0, 80.0, 200.0), 0.9)).collect();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            for d in &scene {
                t.update(std::slice::from_ref(d), &mut out);
            }
            ids.push(out[0].id);
        }
        assert_ne!(ids[0], ids[1]);
    }

    // ---- Kalman filter ----

    fn cfg() -> TrackerConfig {
        TrackerConfig::default()
    }

    fn assert_symmetric_with_positive_diagonal(kf: &BoxKalman) {
        for i in 0..8 {
            assert!(kf.cov[i][i] > 0.0, "diagonal {i} = {}", kf.cov[i][i]);
            for j in 0..8 {
                assert!((kf.cov[i][j] - kf.cov[j][i]).abs() <= 1e-9 * (1.0 + kf.cov[i][j].abs()));
                // Cauchy-Schwarz for a PSD matrix.
                assert!(kf.cov[i][j].powi(2) <= kf.cov[i][i] * kf.cov[j][j] * (1.0 + 1e-9));
            }
        }
    }

    #[test]
    fn kalman_initiates_at_the_measurement_with_zero_velocity() {
        let kf = BoxKalman::initiate(&cfg(), [100.0, 200.0, 0.5, 180.0]);
        assert_eq!(kf.mean, [100.0, 200.0, 0.5, 180.0, 0.0, 0.0, 0.0, 0.0]);
        let b = kf.bbox();
        assert_eq!(b, BoxInImage::new(55.0, 110.0, 145.0, 290.0));
        assert_symmetric_with_positive_diagonal(&kf);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn kalman_predict_moves_by_the_velocity_and_grows_uncertainty() {
        let mut kf = BoxKalman::initiate(&cfg(), [100.0, 200.0, 0.5, 180.0]);
        kf.mean[4] = 7.0;
        kf.mean[5] = -3.0;
        let before = kf.cov;
        kf.predict(&cfg(), true);
        assert!((kf.mean[0] - 107.0).abs() < 1e-12 && (kf.mean[1] - 197.0).abs() < 1e-12);
        for i in 0..8 {
            assert!(kf.cov[i][i] > before[i][i]);
        }
        // Position and velocity become correlated.
        assert!(kf.cov[0][4] > 0.0);
        assert_symmetric_with_positive_diagonal(&kf);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn kalman_update_pulls_towards_the_measurement_and_shrinks_uncertainty() {
        let mut kf = BoxKalman::initiate(&cfg(), [100.0, 200.0, 0.5, 180.0]);
        kf.predict(&cfg(), true);
        let before = kf.cov;
        kf.update(&cfg(), [120.0, 200.0, 0.5, 180.0]);
        assert!(kf.mean[0] > 100.0 && kf.mean[0] < 120.0, "{}", kf.mean[0]);
        assert!(kf.mean[4] > 0.0, "velocity learns the direction of motion");
        for i in 0..8 {
            assert!(kf.cov[i][i] < before[i][i]);
        }
        assert_symmetric_with_positive_diagonal(&kf);
    }

    #[test]
    fn kalman_learns_a_constant_velocity() {
        let mut kf = BoxKalman::initiate(&cfg(), [50.0, 300.0, 0.4, 200.0]);
        for k in 1..=40 {
            kf.predict(&cfg(), true);
            let k = f64::from(k);
            kf.update(&cfg(), [50.0 + 12.0 * k, 300.0 - 2.0 * k, 0.4, 200.0 + 0.5 * k]);
        }
        assert!((kf.mean[4] - 12.0).abs() < 0.1, "vx {}", kf.mean[4]);
        assert!((kf.mean[5] + 2.0).abs() < 0.1, "vy {}", kf.mean[5]);
        assert!((kf.mean[7] - 0.5).abs() < 0.1, "vh {}", kf.mean[7]);
        kf.predict(&cfg(), true);
        assert!((kf.mean[0] - (50.0 + 12.0 * 41.0)).abs() < 1.0);
        assert_symmetric_with_positive_diagonal(&kf);
    }

    #[test]
    fn kalman_of_a_lost_track_keeps_its_height() {
        let mut kf = BoxKalman::initiate(&cfg(), [50.0, 300.0, 0.4, 200.0]);
        kf.mean[7] = -30.0;
        for _ in 0..100 {
            kf.predict(&cfg(), false);
        }
        assert_eq!(kf.mean[3], 200.0);
        let b = kf.bbox();
        assert!(b.height() > 0.0 && b.width() > 0.0);
    }

    #[test]
    fn cholesky_solves_a_symmetric_positive_definite_system() {
        let a = [[4.0, 1.0, 0.5, 0.0], [1.0, 3.0, 0.2, 0.1], [0.5, 0.2, 2.0, 0.3], [0.0, 0.1, 0.3, 1.0]];
        let l = cholesky4(&a).unwrap();
        let x = cholesky4_solve(&l, [1.0, 2.0, 3.0, 4.0]);
        for (i, row) in a.iter().enumerate() {
            let bi: f64 = (0..4).map(|j| row[j] * x[j]).sum();
            assert!((bi - (i + 1) as f64).abs() < 1e-12);
        }
        assert!(
            cholesky4(&[[1.0, 2.0, 0.0, 0.0], [2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
                .is_none()
        );
    }

    proptest! {
        #[test]
        fn kalman_stays_finite_and_positive_definite(
            start in (0f64..1280.0, 0f64..720.0, 0.2f64..1.0, 20f64..600.0),
            steps in proptest::collection::vec(
                (any::<bool>(), -50f64..50.0, -50f64..50.0, -0.1f64..0.1, -30f64..30.0),
                1..60,
            ),
        ) {
            let mut kf = BoxKalman::initiate(&cfg(), [start.0, start.1, start.2, start.3]);
            let mut z = [start.0, start.1, start.2, start.3];
            for (seen, dx, dy, da, dh) in steps {
                kf.predict(&cfg(), true);
                z = [z[0] + dx, z[1] + dy, (z[2] + da).clamp(0.1, 2.0), (z[3] + dh).clamp(10.0, 700.0)];
                if seen {
                    kf.update(&cfg(), z);
                }
                prop_assert!(kf.mean.iter().all(|v| v.is_finite()));
                prop_assert!(cholesky4(&std::array::from_fn(|i| std::array::from_fn(|j| kf.cov[i][j]))).is_some());
                let b = kf.bbox();
                prop_assert!(b.height() >= 0.999 && b.width() >= 0.0);
            }
        }
    }

    // ---- assignment ----

    /// Least total cost over every injective map of rows into columns (rows <= cols).
    fn brute_min_cost(rows: usize, cols: usize, cost: &[f64]) -> f64 {
        fn go(r: usize, rows: usize, cols: usize, cost: &[f64], used: &mut Vec<bool>) -> f64 {
            if r == rows {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for c in 0..cols {
                if !used[c] {
                    used[c] = true;
                    best = best.min(cost[r * cols + c] + go(r + 1, rows, cols, cost, used));
                    used[c] = false;
                }
            }
            best
        }
        go(0, rows, cols, cost, &mut vec![false; cols])
    }

    /// Greatest total weight of a matching using only positive-weight pairs.
    fn brute_max_weight(rows: usize, cols: usize, w: &[f64]) -> f64 {
        fn go(r: usize, rows: usize, cols: usize, w: &[f64], used: &mut Vec<bool>) -> f64 {
            if r == rows {
                return 0.0;
            }
            let mut best = go(r + 1, rows, cols, w, used);
            for c in 0..cols {
                if !used[c] && w[r * cols + c] > 0.0 {
                    used[c] = true;
                    best = best.max(w[r * cols + c] + go(r + 1, rows, cols, w, used));
                    used[c] = false;
                }
            }
            best
        }
        go(0, rows, cols, w, &mut vec![false; cols])
    }

    fn matrix(max: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
        (0..=max, 0..=max).prop_flat_map(|(r, c)| {
            (Just(r), Just(c), proptest::collection::vec(prop_oneof![Just(0.0), 0f64..1.0, -1f64..0.0], r * c))
        })
    }

    #[test]
    fn hungarian_solves_a_known_matrix() {
        // A 4x4 textbook instance with a unique optimum (69 + 37 + 11 + 23), also checked by brute force.
        let cost = [82.0, 83.0, 69.0, 92.0, 77.0, 37.0, 49.0, 92.0, 11.0, 69.0, 5.0, 86.0, 8.0, 9.0, 98.0, 23.0];
        let mut h = Hungarian::default();
        let mut cols = Vec::new();
        h.min_cost_assignment(4, 4, |r, c| cost[r * 4 + c], &mut cols);
        assert_eq!(cols, vec![2, 1, 0, 3]);
        let total: f64 = cols.iter().enumerate().map(|(r, &c)| cost[r * 4 + c]).sum();
        assert_eq!(total, 140.0);
        assert_eq!(total, brute_min_cost(4, 4, &cost));
    }

    proptest! {
        #[test]
        fn hungarian_matches_brute_force(rows in 0usize..=6, extra in 0usize..=3, seed in any::<u64>()) {
            let cols = rows + extra;
            let mut rng = StdRng::seed_from_u64(seed);
            // Small integers make ties common, which is where assignment code goes wrong.
            let cost: Vec<f64> = (0..rows * cols).map(|_| f64::from(rng.random_range(-5i32..10))).collect();
            let mut h = Hungarian::default();
            let mut assigned = Vec::new();
            h.min_cost_assignment(rows, cols, |r, c| cost[r * cols + c], &mut assigned);
            prop_assert_eq!(assigned.len(), rows);
            let distinct: HashSet<_> = assigned.iter().collect();
            prop_assert_eq!(distinct.len(), rows);
            prop_assert!(assigned.iter().all(|&c| c < cols));
            let total: f64 = assigned.iter().enumerate().map(|(r, &c)| cost[r * cols + c]).sum();
            prop_assert!((total - brute_min_cost(rows, cols, &cost)).abs() < 1e-9);
        }

        #[test]
        fn max_weight_matching_matches_brute_force((rows, cols, w) in matrix(6)) {
            let mut h = Hungarian::default();
            let mut pairs = Vec::new();
            // Run twice on the same solver to check that reused buffers do not leak state.
            for _ in 0..2 {
                h.max_weight_matching(rows, cols, &w, &mut pairs);
                let rs: HashSet<_> = pairs.iter().map(|p| p.0).collect();
                let cs: HashSet<_> = pairs.iter().map(|p| p.1).collect();
                prop_assert!(rs.len() == pairs.len() && cs.len() == pairs.len());
                prop_assert!(pairs.iter().all(|&(r, c)| r < rows && c < cols && w[r * cols + c] > 0.0));
                let total: f64 = pairs.iter().map(|&(r, c)| w[r * cols + c]).sum();
                prop_assert!((total - brute_max_weight(rows, cols, &w)).abs() < 1e-9);
            }
        }
    }

    // ---- tracker: scenes ----

    /// A person walking in a straight line at constant velocity.
    #[derive(Debug, Clone, Copy)]
    struct Walker {
        x: f32,
        y: f32,
        vx: f32,
        vy: f32,
        w: f32,
        h: f32,
    }

    impl Walker {
        fn at(&self, frame: usize) -> BoxInImage {
            let f = frame as f32;
            BoxInImage::from_xywh(self.x + self.vx * f, self.y + self.vy * f, self.w, self.h)
        }
    }

    fn jitter(b: BoxInImage, px: f32, rng: &mut StdRng) -> BoxInImage {
        let mut j = || if px > 0.0 { rng.random_range(-px..=px) } else { 0.0 };
        BoxInImage::new(b.x1 + j(), b.y1 + j(), b.x2 + j(), b.y2 + j())
    }

    /// A walker crossing the whole frame left to right or right to left, inside the frame throughout.
    fn crossing_walker() -> impl Strategy<Value = (Walker, usize)> {
        (150f32..350.0, 0.35f32..0.5, 2f32..40.0, -0.25f32..0.25, any::<bool>(), 0f32..1.0).prop_map(
            |(h, aspect, speed, slope, leftwards, ypos)| {
                let w = h * aspect;
                let frames = ((W - w) / speed).floor() as usize;
                let vy = speed * slope;
                // Keep the whole walk vertically inside the frame.
                let dy = vy * frames as f32;
                let (lo, hi) = (0f32.max(-dy), (H - h).min(H - h - dy));
                let y = lo + (hi - lo).max(0.0) * ypos;
                let (x, vx) = if leftwards { (W - w, -speed) } else { (0.0, speed) };
                (Walker { x, y, vx, vy, w, h }, frames + 1)
            },
        )
    }

    /// Per frame, whether the detector saw the person: misses with probability `p`, never more than
    /// `max_run` in a row.
    fn misses(frames: usize, p: f64, max_run: usize, rng: &mut StdRng) -> Vec<bool> {
        let mut run = 0;
        (0..frames)
            .map(|_| {
                let miss = run < max_run && rng.random_bool(p);
                run = if miss { run + 1 } else { 0 };
                !miss
            })
            .collect()
    }

    /// Checks the invariants every update must keep and returns the confirmed ids seen this frame.
    fn step(t: &mut Tracker, dets: &[Detection], out: &mut Vec<TrackState>) {
        t.update(dets, out);
        let ids: HashSet<_> = out.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), out.len(), "one state per id");
        let used: HashSet<_> = out.iter().map(|s| s.detection).collect();
        assert_eq!(used.len(), out.len(), "one track per detection");
        for s in out.iter() {
            assert!(s.detection < dets.len());
            assert!(s.hits >= t.config.confirm_hits && s.hits <= s.age + 1);
        }
        assert_eq!(t.live().filter(|l| l.missed == 0).count(), out.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// (b) A person walking across the frame keeps one id despite jitter and missed detections.
        #[test]
        fn a_walker_keeps_one_id((walker, frames) in crossing_walker(), p_miss in 0f64..0.3, seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let seen = misses(frames, p_miss, 3, &mut rng);
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            let mut ids = HashSet::new();
            let mut run = 0;
            let mut confirmable = false;
            for (f, &seen) in seen.iter().enumerate() {
                let dets: Vec<_> = if seen {
                    vec![det(jitter(walker.at(f), 3.0, &mut rng), rng.random_range(0.65..=1.0))]
                } else {
                    vec![]
                };
                run = if seen { run + 1 } else { 0 };
                confirmable |= run >= 3;
                step(&mut t, &dets, &mut out);
                ids.extend(out.iter().map(|s| s.id));
                prop_assert!(t.ended().is_empty(), "ended at frame {f}");
            }
            prop_assert_eq!(ids.len(), usize::from(confirmable), "ids {:?}", ids);
            let finished = t.finish();
            prop_assert_eq!(finished.len(), ids.len());
        }

        /// (c) A one-frame false detection among empty frames never becomes a confirmed track.
        #[test]
        fn a_one_frame_detection_is_never_confirmed(
            before in 0usize..5,
            after in 0usize..40,
            b in (-100f32..1300.0, -100f32..800.0, 0f32..600.0, 0f32..600.0),
            score in 0f32..=1.0,
        ) {
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            let d = [det(BoxInImage::from_xywh(b.0, b.1, b.2, b.3), score)];
            for f in 0..before + 1 + after {
                let dets: &[Detection] = if f == before { &d } else { &[] };
                step(&mut t, dets, &mut out);
                prop_assert!(out.is_empty());
                prop_assert!(t.ended().is_empty());
                prop_assert_eq!(t.live().count(), 0);
            }
            prop_assert!(t.finish().is_empty());
        }

        /// (d) Two people crossing paths in straight lines keep their own ids. With `occlusion`, the person
        /// behind (the shorter box) is, while the boxes overlap a lot, either not detected or detected with a
        /// low score, as a detector with non-maximum suppression does.
        #[test]
        fn crossing_people_do_not_swap_ids(
            h in (180f32..320.0, 180f32..320.0),
            speed in (3f32..25.0, 3f32..25.0),
            dy in -60f32..60.0,
            meet in 400f32..880.0,
            occlusion in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let frames = 60usize;
            let mid = 30.0;
            // Both reach x = meet (their centres) at frame `mid`.
            let centred =
                |cx: f32, cy: f32, vx: f32, h: f32| Walker { x: cx - 0.2 * h, y: cy - h / 2.0, vx, vy: 0.0, w: 0.4 * h, h };
            let a = centred(meet - speed.0 * mid, 300.0, speed.0, h.0);
            let b = centred(meet + speed.1 * mid, 300.0 + dy, -speed.1, h.1);
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            let mut owner: HashMap<TrackId, usize> = HashMap::new();
            let mut overlapping_frames = 0;
            for f in 0..frames {
                let truth = [a.at(f), b.at(f)];
                let overlap = truth[0].iou(&truth[1]) > 0.0;
                overlapping_frames += usize::from(overlap);
                let mut dets = vec![
                    (0, det(jitter(truth[0], 2.0, &mut rng), 0.9)),
                    (1, det(jitter(truth[1], 2.0, &mut rng), 0.9)),
                ];
                if occlusion && truth[0].iou(&truth[1]) > 0.2 {
                    let behind = usize::from(h.1 < h.0);
                    if rng.random_bool(0.5) {
                        dets.remove(behind);
                    } else {
                        dets[behind].1.score = 0.3;
                    }
                }
                if dets.len() == 2 && rng.random_bool(0.5) {
                    dets.swap(0, 1);
                }
                let plain: Vec<_> = dets.iter().map(|d| d.1).collect();
                step(&mut t, &plain, &mut out);
                if f >= 3 && !overlap {
                    prop_assert_eq!(out.len(), 2, "frame {}", f);
                }
                // While the boxes overlap either assignment is a fair reading; outside, each id must stay on
                // its own person.
                if !overlap {
                    for s in &out {
                        let who = dets[s.detection].0;
                        prop_assert_eq!(*owner.entry(s.id).or_insert(who), who, "id swapped at frame {}", f);
                    }
                }
            }
            prop_assert!(overlapping_frames > 0);
            prop_assert_eq!(owner.len(), 2);
        }

        /// (e) N well-separated walkers give N confirmed tracks.
        #[test]
        fn separated_walkers_give_one_track_each(
            n in 1usize..=6,
            params in proptest::collection::vec((0.3f32..0.5, 1f32..25.0, any::<bool>(), 0f32..1.0), 6),
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let frames = 30usize;
            let lane = H / n as f32;
            let walkers: Vec<Walker> = params[..n].iter().enumerate().map(|(i, &(aspect, speed, left, xpos))| {
                let h = (lane - 20.0).min(300.0);
                let w = h * aspect;
                let span = speed * frames as f32;
                let x = xpos * (W - w - span).max(0.0) + if left { span } else { 0.0 };
                Walker { x, y: i as f32 * lane + 10.0, vx: if left { -speed } else { speed }, vy: 0.0, w, h }
            }).collect();
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            let mut ids = HashSet::new();
            for f in 0..frames {
                let mut dets: Vec<_> =
                    walkers.iter().map(|w| det(jitter(w.at(f), 3.0, &mut rng), rng.random_range(0.6..=1.0))).collect();
                // Detector output order carries no meaning.
                for i in (1..dets.len()).rev() {
                    dets.swap(i, rng.random_range(0..=i));
                }
                step(&mut t, &dets, &mut out);
                ids.extend(out.iter().map(|s| s.id));
                if f >= 2 {
                    prop_assert_eq!(out.len(), n);
                }
            }
            prop_assert_eq!(ids.len(), n);
            prop_assert_eq!(t.live().count(), n);
        }

        /// (a) Ids issued in a run are unique, however chaotic the scene; every id ends exactly once.
        #[test]
        fn ids_in_a_run_are_unique(seed in any::<u64>(), frames in 1usize..300, crowd in 1usize..12) {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut t = Tracker::new(TrackerConfig { max_missed: 5, ..TrackerConfig::default() });
            let mut out = Vec::new();
            let mut confirmed = Vec::new();
            let mut ended = Vec::new();
            // People who come and go, plus clutter.
            let mut people: Vec<Walker> = Vec::new();
            for f in 0..frames {
                if people.len() < crowd && rng.random_bool(0.1) {
                    let h = rng.random_range(60f32..300.0);
                    people.push(Walker {
                        x: rng.random_range(0f32..1200.0),
                        y: rng.random_range(0f32..500.0),
                        vx: rng.random_range(-20f32..20.0),
                        vy: rng.random_range(-5f32..5.0),
                        w: 0.4 * h,
                        h,
                    });
                }
                people.retain(|_| !rng.random_bool(0.02));
                let mut dets = Vec::new();
                for p in &people {
                    if rng.random_bool(0.8) {
                        let b = jitter(p.at(f), 4.0, &mut rng);
                        dets.push(det(b, rng.random_range(0.05f32..=1.0)));
                    }
                }
                for _ in 0..rng.random_range(0..4) {
                    let (x, y) = (rng.random_range(0f32..1200.0), rng.random_range(0f32..600.0));
                    let b = BoxInImage::from_xywh(x, y, rng.random_range(1f32..300.0), rng.random_range(1f32..300.0));
                    dets.push(det(b, rng.random_range(0f32..=1.0)));
                }
                step(&mut t, &dets, &mut out);
                confirmed.extend(out.iter().filter(|s| s.just_confirmed).map(|s| s.id));
                ended.extend_from_slice(t.ended());
            }
            ended.extend(t.finish());
            let unique: HashSet<_> = confirmed.iter().collect();
            prop_assert_eq!(unique.len(), confirmed.len());
            prop_assert!(confirmed.iter().all(|id| id.0 != 0));
            let mut a = confirmed.clone();
            let mut b = ended.clone();
            a.sort_unstable_by_key(|i| i.0);
            b.sort_unstable_by_key(|i| i.0);
            prop_assert_eq!(a, b, "every confirmed id ends exactly once");
        }
    }

    // ---- tracker: unit behaviour ----

    fn walk(t: &mut Tracker, w: &Walker, frames: std::ops::Range<usize>, score: f32, out: &mut Vec<TrackState>) {
        for f in frames {
            step(t, &[det(w.at(f), score)], out);
        }
    }

    const STROLL: Walker = Walker { x: 100.0, y: 200.0, vx: 10.0, vy: 1.0, w: 80.0, h: 200.0 };

    #[test]
    fn a_track_is_confirmed_on_its_third_hit() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        walk(&mut t, &STROLL, 0..2, 0.9, &mut out);
        assert!(out.is_empty());
        walk(&mut t, &STROLL, 2..3, 0.9, &mut out);
        assert_eq!(out.len(), 1);
        let s = out[0];
        assert!(s.just_confirmed && s.hits == 3 && s.age == 2 && s.detection == 0 && s.score == 0.9);
        walk(&mut t, &STROLL, 3..4, 0.9, &mut out);
        assert!(!out[0].just_confirmed && out[0].id == s.id && out[0].hits == 4);
        assert!(out[0].bbox.iou(&STROLL.at(3)) > 0.9);
    }

    #[test]
    fn confirm_hits_of_one_confirms_at_birth() {
        let mut t = Tracker::new(TrackerConfig { confirm_hits: 0, ..TrackerConfig::default() });
        assert_eq!(t.config.confirm_hits, 1);
        let mut out = Vec::new();
        walk(&mut t, &STROLL, 0..1, 0.9, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].just_confirmed && out[0].hits == 1 && out[0].age == 0);
    }

    #[test]
    fn a_tentative_track_that_misses_a_frame_is_dropped() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        walk(&mut t, &STROLL, 0..2, 0.9, &mut out);
        step(&mut t, &[], &mut out);
        walk(&mut t, &STROLL, 3..4, 0.9, &mut out);
        assert!(out.is_empty(), "the restarted track has one hit");
        walk(&mut t, &STROLL, 4..6, 0.9, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hits, 3);
    }

    #[test]
    fn low_scores_extend_a_track_but_never_start_one() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        walk(&mut t, &STROLL, 0..10, 0.2, &mut out);
        assert!(out.is_empty() && t.live().count() == 0);
        walk(&mut t, &STROLL, 10..15, 0.9, &mut out);
        let id = out[0].id;
        walk(&mut t, &STROLL, 15..25, 0.2, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, id);
        // Below low_score a detection is ignored.
        walk(&mut t, &STROLL, 25..26, 0.05, &mut out);
        assert!(out.is_empty());
        // Once lost, a low detection cannot revive the track, but a high one can.
        walk(&mut t, &STROLL, 26..27, 0.2, &mut out);
        assert!(out.is_empty());
        walk(&mut t, &STROLL, 27..28, 0.9, &mut out);
        assert_eq!(out[0].id, id);
    }

    #[test]
    fn a_lost_track_is_kept_for_max_missed_frames_then_ends() {
        let cfg = TrackerConfig { max_missed: 4, ..TrackerConfig::default() };
        let mut t = Tracker::new(cfg);
        let mut out = Vec::new();
        walk(&mut t, &STROLL, 0..5, 0.9, &mut out);
        let id = out[0].id;
        for missed in 1..=4 {
            step(&mut t, &[], &mut out);
            assert!(t.ended().is_empty());
            let live: Vec<_> = t.live().collect();
            assert_eq!(live.len(), 1);
            assert_eq!((live[0].id, live[0].missed), (id, missed));
            // The lost track coasts along its predicted path.
            assert!(live[0].bbox.iou(&STROLL.at(4 + missed as usize)) > 0.8);
        }
        step(&mut t, &[], &mut out);
        assert_eq!(t.ended(), &[id]);
        assert_eq!(t.live().count(), 0);
        step(&mut t, &[], &mut out);
        assert!(t.ended().is_empty(), "ended() lasts one frame");
    }

    #[test]
    fn a_track_survives_an_occlusion_and_keeps_its_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        let fast = Walker { vx: 35.0, ..STROLL };
        walk(&mut t, &fast, 0..8, 0.9, &mut out);
        let id = out[0].id;
        for _ in 8..18 {
            step(&mut t, &[], &mut out);
        }
        walk(&mut t, &fast, 18..20, 0.9, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, id);
    }

    #[test]
    fn finish_ends_every_confirmed_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        let other = Walker { y: 450.0, x: 900.0, vx: -10.0, ..STROLL };
        for f in 0..5 {
            step(&mut t, &[det(STROLL.at(f), 0.9), det(other.at(f), 0.9)], &mut out);
        }
        // And a tentative one that must not be reported.
        step(
            &mut t,
            &[det(STROLL.at(5), 0.9), det(other.at(5), 0.9), det(BoxInImage::from_xywh(600.0, 10.0, 50.0, 100.0), 0.9)],
            &mut out,
        );
        let mut ids: Vec<_> = out.iter().map(|s| s.id).collect();
        let mut finished = t.finish();
        ids.sort_unstable_by_key(|i| i.0);
        finished.sort_unstable_by_key(|i| i.0);
        assert_eq!(ids, finished);
        assert_eq!(t.live().count(), 0);
        assert!(t.finish().is_empty());
    }

    #[test]
    fn bad_boxes_are_ignored() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        let bad = [
            det(BoxInImage { x1: f32::NAN, y1: 0.0, x2: 10.0, y2: 10.0 }, 0.9),
            det(BoxInImage::new(5.0, 5.0, 5.0, 50.0), 0.9),
            det(BoxInImage::new(5.0, 5.0, 50.0, 50.0), f32::NAN),
            det(BoxInImage::new(0.0, 0.0, f32::INFINITY, 50.0), 0.9),
        ];
        for _ in 0..5 {
            step(&mut t, &bad, &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn steady_state_updates_do_not_grow_the_scratch_buffers() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        let walkers: Vec<_> =
            (0..5).map(|i| Walker { y: 10.0 + 140.0 * i as f32, h: 120.0, w: 50.0, ..STROLL }).collect();
        let mut dets = Vec::new();
        let mut frame = |t: &mut Tracker, f: usize, out: &mut Vec<TrackState>| {
            dets.clear();
            dets.extend(walkers.iter().map(|w| det(w.at(f), 0.9)));
            t.update(&dets, out);
        };
        for f in 0..5 {
            frame(&mut t, f, &mut out);
        }
        let caps = |t: &Tracker, out: &Vec<TrackState>| {
            let s = &t.scratch;
            [
                out.capacity(),
                t.tracks.capacity(),
                s.usable.capacity(),
                s.high.capacity(),
                s.pool.capacity(),
                s.predicted.capacity(),
                s.weights.capacity(),
                s.pairs.capacity(),
                s.hungarian.u.capacity(),
                s.hungarian.minv.capacity(),
                t.issued.capacity(),
            ]
        };
        let before = caps(&t, &out);
        for f in 5..50 {
            frame(&mut t, f, &mut out);
        }
        assert_eq!(out.len(), 5);
        assert_eq!(caps(&t, &out), before);
    }

    #[test]
    fn config_round_trips_and_sanitizes() {
        let c: TrackerConfig = serde_json::from_str(r#"{"confirm_hits": 4}"#).unwrap();
        assert_eq!(c, TrackerConfig { confirm_hits: 4, ..TrackerConfig::default() });
        let s = TrackerConfig {
            high_score: 0.3,
            low_score: 0.6,
            match_iou: 2.0,
            position_noise: -1.0,
            ..TrackerConfig::default()
        }
        .sanitized();
        assert_eq!((s.high_score, s.low_score, s.match_iou, s.position_noise), (0.3, 0.3, 1.0, 1.0 / 20.0));
        assert_eq!(TrackerConfig::default().sanitized(), TrackerConfig::default());
    }
}
