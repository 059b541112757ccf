//! Store fusion: the tracks of every camera of a store, on the shared floor plan, joined into **store
//! tracks**, one per person and visit, by position and time alone. No face, embedding or appearance is
//! used or kept: where two views overlap, the same person is where both cameras put them; where views do
//! not overlap, a configured adjacency ("door A leads to aisle B within 8 s") carries a visit across the
//! gap when only one visit could have made the crossing. Pure code: no camera, model or database.
//!
//! # How a camera track finds its store track
//! Each camera reports, frame by frame, its confirmed tracks and their floor points, and the tracks its
//! tracker ended ([`StoreFusion::update`]). A camera track seen for the first time joins
//! - **by overlap** the store track that another camera sees at the same place: a *fresh* member (seen in
//!   the last [`FusionConfig::fresh_ms`]) whose position, moved on by its velocity, lies within
//!   [`FusionConfig::tolerance_m`] (the calibrations' floor error plus a person's width). A store track
//!   this camera already sees in this frame is someone else; one whose member on this camera was not seen
//!   in this frame may be the same person under a new id (the camera's tracker lost and found them), and
//!   is joined the same way. When several store tracks are that close, it joins the nearest only if the
//!   next is at least twice as far; otherwise it starts a store track of its own (two people side by side
//!   stay two);
//! - else **by hand-over** the one store track that every camera has lost within an adjacency's window
//!   from a camera that leads to this one; with two or more waiting, it joins none (a visit is kept apart
//!   rather than joined to the wrong person);
//! - else it starts a new store track: a new visit ([`FusionEvent::Started`]).
//!
//! A store track ends ([`FusionEvent::Ended`]) when all its camera tracks have ended (or stopped being
//! reported for [`FusionConfig::lost_ms`]: a camera that died) and no hand-over can still join it.
//!
//! # Ids
//! [`StoreTrackId`]s are random 64-bit values from an OS-seeded generator, unique within a run, like camera
//! track ids: nothing links a visit across runs.
//!
//! # Time
//! Times are milliseconds on one clock for every camera of the store (the run's monotonic clock), passed
//! in by the caller: tests drive fusion with a clock of their own.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Serialize, Serializer};

use crate::geometry::PointOnFloor;
use crate::track::TrackId;

/// A store-wide visit's anonymous id, random per run. Displays as 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreTrackId(pub u64);

impl fmt::Display for StoreTrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for StoreTrackId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Camera `from` leads to camera `to` (one way: configure both for a passage used both ways): a person
/// lost by `from` may appear in `to` within `within_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjacency {
    pub from: usize,
    pub to: usize,
    pub within_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FusionConfig {
    /// Two cameras' tracks closer than this on the floor (metres) can be one person.
    pub tolerance_m: f64,
    /// A member seen this recently (ms) places its store track for others to join.
    pub fresh_ms: i64,
    /// A camera track not reported for this long (ms) is taken as ended.
    pub lost_ms: i64,
    /// Cameras whose views do not overlap but lead to one another.
    pub adjacency: Vec<Adjacency>,
}

impl Default for FusionConfig {
    fn default() -> Self {
        Self { tolerance_m: 0.8, fresh_ms: 1_000, lost_ms: 5_000, adjacency: Vec::new() }
    }
}

/// How a camera track came to its store track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Joined {
    /// Seen first by this camera: a new visit.
    New,
    /// Where another camera sees the same person.
    Overlap,
    /// Across a gap between cameras, along an adjacency.
    Handover,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FusionEvent {
    /// A new visit.
    Started { store: StoreTrackId, at_ms: i64 },
    /// A camera track became part of a store track.
    Joined { store: StoreTrackId, camera: usize, track: TrackId, how: Joined, at_ms: i64 },
    /// A visit is over: first and last time any camera saw it, and how many camera tracks it joined.
    Ended { store: StoreTrackId, start_ms: i64, end_ms: i64, camera_tracks: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Member {
    camera: usize,
    track: TrackId,
    floor: PointOnFloor,
    at_ms: i64,
    /// Metres per millisecond, smoothed.
    velocity: (f64, f64),
    live: bool,
}

impl Member {
    fn predicted(&self, at_ms: i64) -> PointOnFloor {
        // Motion is trusted for a second at most: beyond, people stop and turn.
        let dt = (at_ms - self.at_ms).clamp(0, 1_000) as f64;
        PointOnFloor { x: self.floor.x + self.velocity.0 * dt, y: self.floor.y + self.velocity.1 * dt }
    }
}

#[derive(Debug)]
struct StoreTrack {
    id: StoreTrackId,
    members: Vec<Member>,
    start_ms: i64,
    last_ms: i64,
    camera_tracks: u32,
    /// When the last live member ended, and on which camera (hand-over from there).
    lost: Option<(i64, usize)>,
}

impl StoreTrack {
    /// A member on `camera` was seen in this frame: the camera sees this person as someone else.
    fn seen_by(&self, camera: usize, at_ms: i64) -> bool {
        self.members.iter().any(|m| m.live && m.camera == camera && m.at_ms >= at_ms)
    }
}

/// Smoothing weight of the newest displacement in a member's velocity.
const VELOCITY_WEIGHT: f64 = 0.3;

/// The store tracks of one store (see the module docs).
pub struct StoreFusion {
    config: FusionConfig,
    tracks: HashMap<StoreTrackId, StoreTrack>,
    of_camera_track: HashMap<(usize, TrackId), StoreTrackId>,
    issued: HashSet<u64>,
    rng: StdRng,
}

impl StoreFusion {
    pub fn new(config: FusionConfig) -> Self {
        Self::with_rng(config, StdRng::from_os_rng())
    }

    /// With a seeded generator, for tests that want the same ids twice.
    pub fn with_seed(config: FusionConfig, seed: u64) -> Self {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: FusionConfig, rng: StdRng) -> Self {
        Self { config, tracks: HashMap::new(), of_camera_track: HashMap::new(), issued: HashSet::new(), rng }
    }

    /// The store track a camera track belongs to.
    pub fn store_of(&self, camera: usize, track: TrackId) -> Option<StoreTrackId> {
        self.of_camera_track.get(&(camera, track)).copied()
    }

    /// Store tracks not yet ended.
    pub fn open(&self) -> usize {
        self.tracks.len()
    }

    /// One frame of `camera` at `at_ms`: its confirmed tracks and their floor points, and the tracks its
    /// tracker ended with this frame. Events go to `out`.
    pub fn update(
        &mut self,
        camera: usize,
        at_ms: i64,
        seen: &[(TrackId, PointOnFloor)],
        ended: &[TrackId],
        out: &mut Vec<FusionEvent>,
    ) {
        let finite = |p: &PointOnFloor| p.x.is_finite() && p.y.is_finite();
        // Known tracks move first, so that a new one sees which store tracks this frame already placed.
        for &(track, floor) in seen.iter().filter(|(_, p)| finite(p)) {
            if let Some(store) = self.of_camera_track.get(&(camera, track)).copied() {
                self.move_member(store, camera, track, floor, at_ms);
            }
        }
        for &(track, floor) in seen.iter().filter(|(_, p)| finite(p)) {
            if !self.of_camera_track.contains_key(&(camera, track)) {
                self.place(camera, track, floor, at_ms, out);
            }
        }
        for &track in ended {
            self.end_member(camera, track, at_ms);
        }
        self.expire(at_ms, out);
    }

    /// Ends store tracks that no camera track can join any more as of `now_ms`: every member ended or
    /// unreported for `lost_ms`, and every hand-over window from their last camera passed.
    pub fn expire(&mut self, now_ms: i64, out: &mut Vec<FusionEvent>) {
        let lost_ms = self.config.lost_ms;
        let mut gone = Vec::new();
        for t in self.tracks.values_mut() {
            let mut latest_stale: Option<(i64, usize)> = None;
            for m in t.members.iter_mut().filter(|m| m.live && now_ms - m.at_ms > lost_ms) {
                m.live = false;
                if latest_stale.is_none_or(|(at, _)| m.at_ms >= at) {
                    latest_stale = Some((m.at_ms, m.camera));
                }
            }
            if t.members.iter().any(|m| m.live) {
                continue;
            }
            if t.lost.is_none() {
                t.lost = latest_stale;
            }
            let Some((lost_at, from)) = t.lost else { continue };
            let window = self.config.adjacency.iter().filter(|a| a.from == from).map(|a| a.within_ms).max();
            if window.is_none_or(|w| now_ms - lost_at > w) {
                gone.push(t.id);
            }
        }
        gone.sort_unstable();
        for id in gone {
            self.close(id, out);
        }
    }

    /// Ends every store track (the end of the run).
    pub fn finish(&mut self, out: &mut Vec<FusionEvent>) {
        let mut ids: Vec<StoreTrackId> = self.tracks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.close(id, out);
        }
    }

    fn close(&mut self, id: StoreTrackId, out: &mut Vec<FusionEvent>) {
        if let Some(t) = self.tracks.remove(&id) {
            for m in &t.members {
                self.of_camera_track.remove(&(m.camera, m.track));
            }
            out.push(FusionEvent::Ended {
                store: id,
                start_ms: t.start_ms,
                end_ms: t.last_ms,
                camera_tracks: t.camera_tracks,
            });
        }
    }

    fn move_member(&mut self, store: StoreTrackId, camera: usize, track: TrackId, floor: PointOnFloor, at_ms: i64) {
        let Some(t) = self.tracks.get_mut(&store) else { return };
        if let Some(m) = t.members.iter_mut().find(|m| m.camera == camera && m.track == track) {
            let dt = (at_ms - m.at_ms) as f64;
            if dt > 0.0 {
                let v = ((floor.x - m.floor.x) / dt, (floor.y - m.floor.y) / dt);
                let w = VELOCITY_WEIGHT;
                m.velocity = ((1.0 - w) * m.velocity.0 + w * v.0, (1.0 - w) * m.velocity.1 + w * v.1);
            }
            m.floor = floor;
            m.at_ms = m.at_ms.max(at_ms);
            m.live = true;
            t.last_ms = t.last_ms.max(at_ms);
            t.lost = None;
        }
    }

    fn end_member(&mut self, camera: usize, track: TrackId, at_ms: i64) {
        let Some(store) = self.of_camera_track.get(&(camera, track)).copied() else { return };
        let Some(t) = self.tracks.get_mut(&store) else { return };
        if let Some(m) = t.members.iter_mut().find(|m| m.camera == camera && m.track == track) {
            m.live = false;
        }
        if !t.members.iter().any(|m| m.live) {
            t.lost = Some((at_ms, camera));
        }
    }

    /// A camera track seen for the first time: joins by overlap, by hand-over, or starts a visit.
    fn place(&mut self, camera: usize, track: TrackId, floor: PointOnFloor, at_ms: i64, out: &mut Vec<FusionEvent>) {
        let (store, how) = match self.by_overlap(camera, floor, at_ms).or_else(|| self.by_handover(camera, at_ms)) {
            Some(found) => found,
            None => {
                let id = self.draw_id();
                let t = StoreTrack {
                    id,
                    members: Vec::new(),
                    start_ms: at_ms,
                    last_ms: at_ms,
                    camera_tracks: 0,
                    lost: None,
                };
                self.tracks.insert(id, t);
                out.push(FusionEvent::Started { store: id, at_ms });
                (id, Joined::New)
            }
        };
        let t = self.tracks.get_mut(&store).expect("the store track was just found or made");
        // Ended members have nothing more to say; forget them (their camera tracks never come back).
        for m in t.members.iter().filter(|m| !m.live) {
            self.of_camera_track.remove(&(m.camera, m.track));
        }
        t.members.retain(|m| m.live);
        t.members.push(Member { camera, track, floor, at_ms, velocity: (0.0, 0.0), live: true });
        t.camera_tracks += 1;
        t.last_ms = t.last_ms.max(at_ms);
        t.lost = None;
        self.of_camera_track.insert((camera, track), store);
        out.push(FusionEvent::Joined { store, camera, track, how, at_ms });
    }

    fn by_overlap(&self, camera: usize, floor: PointOnFloor, at_ms: i64) -> Option<(StoreTrackId, Joined)> {
        let (tolerance, fresh) = (self.config.tolerance_m, self.config.fresh_ms);
        let mut best: Option<(f64, StoreTrackId)> = None;
        let mut second = f64::INFINITY;
        for t in self.tracks.values().filter(|t| !t.seen_by(camera, at_ms)) {
            let d = t
                .members
                .iter()
                .filter(|m| m.live && (at_ms - m.at_ms).abs() <= fresh)
                .map(|m| m.predicted(at_ms).distance(&floor))
                .fold(f64::INFINITY, f64::min);
            if d > tolerance {
                continue;
            }
            match best {
                Some((b, _)) if d >= b => second = second.min(d),
                _ => {
                    if let Some((b, _)) = best {
                        second = second.min(b);
                    }
                    best = Some((d, t.id));
                }
            }
        }
        let (d, id) = best?;
        (second >= 2.0 * d).then_some((id, Joined::Overlap))
    }

    fn by_handover(&self, camera: usize, at_ms: i64) -> Option<(StoreTrackId, Joined)> {
        let adjacency = &self.config.adjacency;
        let mut waiting = self.tracks.values().filter(|t| {
            !t.members.iter().any(|m| m.live)
                && t.lost.is_some_and(|(lost_at, from)| {
                    adjacency.iter().any(|a| a.from == from && a.to == camera && at_ms - lost_at <= a.within_ms)
                })
        });
        let one = waiting.next()?;
        waiting.next().is_none().then_some((one.id, Joined::Handover))
    }

    fn draw_id(&mut self) -> StoreTrackId {
        loop {
            let v = self.rng.next_u64();
            if self.issued.insert(v) {
                return StoreTrackId(v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
