//! Anonymous shopper behaviour from floor tracks: pure code, no I/O, no clock.
//!
//! One [`Behaviour`] per camera. Feed it, in time order, every processed frame ([`Behaviour::frame`]: the
//! time and the confirmed tracks visible, each as an [`Observation`] in floor metres), tell it when the
//! tracker ends a track ([`Behaviour::end_track`]), and call [`Behaviour::flush`] at the end of the stream. It
//! pushes [`Event`]s into a buffer the caller owns and reuses.
//!
//! What turns into what (parameters in [`BehaviourConfig`]):
//! - **Entry / Exit**: a track whose first sample is inside an `Entrance` zone (or within
//!   `entrance_margin_m` of it) is an entry; one whose last sample is there when the tracker ends it is an
//!   exit. `flush` ends tracks without
//!   exits: the stream stopped, the person did not leave.
//! - **ZoneEntered / ZoneExited** with inertia (`zone::ZoneState`): in for `enter_ms` to enter, out for
//!   `exit_ms` (or farther than `margin_m` from the polygon) to exit; each transition is dated at its first
//!   sample, so `dwell_ms` = exit time - entry time. A track that ends inside exits at its last sample (or at
//!   the first sample of an exit already under way).
//! - **LineCrossed** with hysteresis (`line::LineState`): from beyond -h to beyond +h through the segment.
//! - **QueueSample / Occupancy**: at every multiple of `queue_sample_ms`, stamped at that multiple, from the
//!   zone memberships holding just before the first frame at or after it.
//! - **ShelfInteraction** (`shelf::InteractionState`): a wrist in a `Shelf` polygon while the ground
//!   point is within `reach_m` of it; reported when it ends.
//! - **Journey**: the zones a track entered, in order of confirmation, when it ends.
//! - **MoodBucket / HeatCell** (`aggregate`): aligned time buckets, emitted when a frame arrives past the
//!   bucket or on `flush`; nothing per person survives a bucket but a 16-bit token per zone or cell
//!   ([`TrackTokens`]), so that reports can count distinct people over many buckets.
//!
//! Events come out in the order they are confirmed, so their times are not monotonic: an entry is dated up
//! to `enter_ms` before the frame that confirmed it, and whatever a track's end closes is dated at its last
//! sample. Privacy by construction: events hold only track ids, zone/line names, times in ms, counts and
//! heatmap cell indices; no coordinate, pixel or emotion score leaves this module.

mod aggregate;
mod config;
mod line;
mod shelf;
mod zone;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::geometry::{PointOnFloor, PolygonOnFloor};

pub use config::{BehaviourConfig, EventSwitches};

pub use aggregate::TrackTokens;
use aggregate::{Cell, HeatBuckets, MoodBuckets, TokenKey};
use line::{LineGeom, LineState};
use shelf::InteractionState;
use zone::{ZoneChange, ZoneState, ZoneTiming, distance_to_boundary};

pub use crate::track::TrackId;

/// The emotion classes, in the order of [`Observation::emotion`] and [`Event::MoodBucket`] counts.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// A zone or line name, shared (cloning it does not allocate). Serializes as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name(s.into())
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What a zone is for. Every kind gets enter/exit, occupancy, mood and journeys; some get more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneKind {
    /// Tracks starting / ending here are entries / exits.
    Entrance,
    /// Also sampled as a queue (length and waiting times).
    Queue,
    /// Also watched for wrist interactions.
    Shelf,
    /// Just a zone.
    Zone,
}

/// A zone as configured: a simple polygon in floor metres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneSpec {
    pub name: String,
    pub kind: ZoneKind,
    pub polygon: PolygonOnFloor,
}

/// A side of a directed line as seen on the floor plan (x right, y down), facing from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Left,
    Right,
}

/// A counting line: the segment `from`-`to`; crossing towards `in_side` is [`Direction::In`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineSpec {
    pub name: String,
    pub from: PointOnFloor,
    pub to: PointOnFloor,
    pub in_side: Side,
}

/// One confirmed track in one frame, projected onto the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub track: TrackId,
    /// The person's ground point.
    pub ground: PointOnFloor,
    /// The wrists' keypoints projected the same way, when the pose model found them.
    pub left_wrist: Option<PointOnFloor>,
    pub right_wrist: Option<PointOnFloor>,
    /// What was made of the track's face in this frame, when one was seen.
    pub emotion: Option<Mood>,
}

/// What was made of a track's face in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mood {
    /// Class probabilities (order of [`EMOTIONS`]) of a face that could be read.
    Read([f32; 7]),
    /// A face too small, turned away or unclear to read: counted, never guessed.
    Uncertain,
}

impl Observation {
    /// A track at `ground` with no wrists and no emotion.
    pub fn at(track: TrackId, ground: PointOnFloor) -> Self {
        Self { track, ground, left_wrist: None, right_wrist: None, emotion: None }
    }
}

/// Which way a line was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards the line's `in_side`.
    In,
    Out,
}

/// What the module reports. Ids, names, times (ms, the caller's clock), counts and grid cells only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Entry {
        zone: Name,
        track: TrackId,
        at_ms: i64,
    },
    Exit {
        zone: Name,
        track: TrackId,
        at_ms: i64,
    },
    ZoneEntered {
        zone: Name,
        track: TrackId,
        at_ms: i64,
    },
    ZoneExited {
        zone: Name,
        track: TrackId,
        at_ms: i64,
        dwell_ms: i64,
    },
    LineCrossed {
        line: Name,
        track: TrackId,
        direction: Direction,
        at_ms: i64,
    },
    /// Tracks (confirmed) inside a `Queue` zone and how long they have been inside, at `at_ms`.
    QueueSample {
        zone: Name,
        at_ms: i64,
        length: u32,
        mean_wait_ms: i64,
        max_wait_ms: i64,
    },
    /// Tracks (confirmed) inside a zone at `at_ms`.
    Occupancy {
        zone: Name,
        at_ms: i64,
        count: u32,
    },
    ShelfInteraction {
        zone: Name,
        track: TrackId,
        start_ms: i64,
        duration_ms: i64,
    },
    /// The zones a track entered, consecutive repeats collapsed; first and last sample times.
    Journey {
        track: TrackId,
        zones: Vec<Name>,
        start_ms: i64,
        end_ms: i64,
    },
    /// Dominant-emotion histogram of track-frames inside `zone` in the bucket (order of [`EMOTIONS`]);
    /// `samples` is the sum of `counts`, `uncertain` the track-frames whose face was seen but could not
    /// be read, `tracks` the distinct tracks behind either (for k-anonymity).
    MoodBucket {
        zone: Name,
        bucket_start_ms: i64,
        counts: [u32; 7],
        samples: u32,
        uncertain: u32,
        tracks: u32,
        /// The same tracks as tokens, to count distinct people over many buckets (kept out of JSON).
        #[serde(skip)]
        tokens: TrackTokens,
    },
    /// Floor cell `[cx, cx+1) x [cy, cy+1)` in units of `cell_m`: track-frames in it, ms spent in it, and the
    /// distinct tracks that touched it during the bucket.
    HeatCell {
        bucket_start_ms: i64,
        cx: i32,
        cy: i32,
        presence: u32,
        dwell_ms: i64,
        tracks: u32,
        /// The same tracks as tokens, to count distinct people over many buckets (kept out of JSON).
        #[serde(skip)]
        tokens: TrackTokens,
    },
}

/// A refused zone, line or configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("behaviour config: {field} {reason}")]
    Config { field: &'static str, reason: &'static str },
    #[error("zone {name:?}: the polygon must be simple (3+ distinct vertices, no self-crossing) and finite")]
    ZonePolygon { name: String },
    #[error("line {name:?}: the ends must be finite and at least 1 mm apart")]
    DegenerateLine { name: String },
    #[error("a {what} name must not be empty")]
    EmptyName { what: &'static str },
    #[error("{what} name {name:?} is used twice")]
    DuplicateName { what: &'static str, name: String },
}

/// Inputs the module refused or skipped (kept for tests and debugging; not reported anywhere yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames older than the previous one (ignored).
    pub frames_out_of_order: u64,
    /// Observations with a non-finite ground point (ignored).
    pub observations_rejected: u64,
}

#[derive(Debug)]
struct Zone {
    name: Name,
    kind: ZoneKind,
    polygon: PolygonOnFloor,
}

#[derive(Debug)]
struct Line {
    name: Name,
    geom: LineGeom,
}

/// Everything known about one live track. Recycled through `Behaviour::spare` so steady state does not
/// allocate per track.
#[derive(Debug)]
struct TrackState {
    first_ms: i64,
    last_ms: i64,
    last_ground: PointOnFloor,
    last_cell: Cell,
    /// Indexed like `Behaviour::zones`.
    zones: Vec<ZoneState>,
    /// Indexed like `Behaviour::zones`; only `Shelf` zones ever leave `Idle`.
    shelves: Vec<InteractionState>,
    /// Indexed like `Behaviour::lines`.
    lines: Vec<LineState>,
    /// Zone indices entered, consecutive repeats collapsed.
    journey: Vec<usize>,
}

impl TrackState {
    fn new() -> Self {
        Self {
            first_ms: 0,
            last_ms: 0,
            last_ground: PointOnFloor::new(0.0, 0.0),
            last_cell: (0, 0),
            zones: Vec::new(),
            shelves: Vec::new(),
            lines: Vec::new(),
            journey: Vec::new(),
        }
    }

    fn reset(&mut self, t: i64, ground: PointOnFloor, zones: usize, lines: usize) {
        self.first_ms = t;
        self.last_ms = t;
        self.last_ground = ground;
        self.zones.clear();
        self.zones.resize(zones, ZoneState::default());
        self.shelves.clear();
        self.shelves.resize(zones, InteractionState::default());
        self.lines.clear();
        self.lines.resize(lines, LineState::default());
        self.journey.clear();
    }
}

/// The behaviour state machines of one camera.
#[derive(Debug)]
pub struct Behaviour {
    config: BehaviourConfig,
    timing: ZoneTiming,
    zones: Vec<Zone>,
    lines: Vec<Line>,
    tracks: HashMap<TrackId, TrackState>,
    spare: Vec<TrackState>,
    last_frame_ms: Option<i64>,
    next_sample_ms: Option<i64>,
    mood: MoodBuckets,
    heat: HeatBuckets,
    /// Reused: (count, wait sum, wait max) per zone at a sample.
    sample_scratch: Vec<(u32, i64, i64)>,
    /// Reused: the ids `flush` ends, sorted.
    id_scratch: Vec<TrackId>,
    counters: Counters,
}

impl Behaviour {
    /// Checks the zones (simple polygons, unique non-empty names), lines (unique non-empty names, not
    /// degenerate) and the configuration.
    pub fn new(zones: Vec<ZoneSpec>, lines: Vec<LineSpec>, config: BehaviourConfig) -> Result<Self, Error> {
        config.validate()?;
        let zones = zones
            .into_iter()
            .map(|z| {
                let finite = z.polygon.points.iter().all(|p| p.x.is_finite() && p.y.is_finite());
                if !(finite && z.polygon.is_simple()) {
                    return Err(Error::ZonePolygon { name: z.name });
                }
                Ok(Zone { name: Name::from(z.name.as_str()), kind: z.kind, polygon: z.polygon })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lines = lines
            .into_iter()
            .map(|l| match LineGeom::new(l.from, l.to, l.in_side) {
                Some(geom) => Ok(Line { name: Name::from(l.name.as_str()), geom }),
                None => Err(Error::DegenerateLine { name: l.name }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_names("zone", zones.iter().map(|z| &z.name))?;
        check_names("line", lines.iter().map(|l| &l.name))?;

        let timing = ZoneTiming { enter_ms: config.enter_ms, exit_ms: config.exit_ms, margin_m: config.margin_m };
        let key = TokenKey::random();
        let mood = MoodBuckets::new(zones.iter().map(|z| z.name.clone()).collect(), config.mood_bucket_ms, key);
        let heat = HeatBuckets::new(config.heat_bucket_ms, config.cell_m, key);
        Ok(Self {
            config,
            timing,
            zones,
            lines,
            tracks: HashMap::new(),
            spare: Vec::new(),
            last_frame_ms: None,
            next_sample_ms: None,
            mood,
            heat,
            sample_scratch: Vec::new(),
            id_scratch: Vec::new(),
            counters: Counters::default(),
        })
    }

    /// Tracks seen and not yet ended.
    pub fn live_tracks(&self) -> usize {
        self.tracks.len()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// One processed frame at `at_ms`: the confirmed tracks visible in it (each at most once). A frame older
    /// than the previous one is ignored and counted. Tracks absent from a frame keep their state until
    /// [`Behaviour::end_track`]; they are simply not sampled.
    pub fn frame(&mut self, at_ms: i64, tracks: &[Observation], out: &mut Vec<Event>) {
        if self.last_frame_ms.is_some_and(|last| at_ms < last) {
            self.counters.frames_out_of_order += 1;
            return;
        }
        self.last_frame_ms = Some(at_ms);
        self.sample_if_due(at_ms, out);

        let events = self.config.events;
        if events.heatmap {
            // The time since each track's previous sample was spent in that sample's cell, in the open bucket.
            for o in tracks {
                if let Some(st) = self.tracks.get(&o.track) {
                    let dt = (at_ms - st.last_ms).min(self.config.heat_max_gap_ms);
                    if dt > 0 {
                        self.heat.add_dwell(st.last_cell, dt);
                    }
                }
            }
            self.heat.roll(at_ms, out);
        }
        if events.mood {
            self.mood.roll(at_ms, out);
        }
        for o in tracks {
            self.observe(at_ms, o, out);
        }
    }

    /// The tracker ended `track`: closes its stays and interactions (at its last sample), reports an exit if
    /// it was last seen in an `Entrance` zone, and its journey. Unknown tracks are ignored.
    pub fn end_track(&mut self, track: TrackId, out: &mut Vec<Event>) {
        if let Some(mut st) = self.tracks.remove(&track) {
            self.close_track(track, &mut st, true, out);
            self.spare.push(st);
        }
    }

    /// End of stream at `at_ms`: takes a due queue/occupancy sample, ends every live track (in id order; no
    /// `Exit`, since the stream stopped rather than the person leaving), and closes the mood and heatmap
    /// buckets. The `Behaviour` can then start a new stream.
    pub fn flush(&mut self, at_ms: i64, out: &mut Vec<Event>) {
        if self.last_frame_ms.is_none_or(|last| at_ms >= last) {
            self.sample_if_due(at_ms, out);
        }
        let mut ids = std::mem::take(&mut self.id_scratch);
        ids.clear();
        ids.extend(self.tracks.keys().copied());
        ids.sort_unstable();
        for &id in &ids {
            if let Some(mut st) = self.tracks.remove(&id) {
                self.close_track(id, &mut st, false, out);
                self.spare.push(st);
            }
        }
        self.id_scratch = ids;
        if self.config.events.mood {
            self.mood.close(out);
        }
        if self.config.events.heatmap {
            self.heat.close(out);
        }
        self.last_frame_ms = None;
        self.next_sample_ms = None;
    }

    /// Emits queue and occupancy samples for the latest multiple of the period at or before `at_ms`, if one
    /// fell due since the last; missed periods (a gap in the stream) are not back-filled.
    fn sample_if_due(&mut self, at_ms: i64, out: &mut Vec<Event>) {
        let period = self.config.queue_sample_ms;
        let boundary = at_ms.div_euclid(period) * period;
        let due = self.next_sample_ms.is_some_and(|next| at_ms >= next);
        if self.next_sample_ms.is_none() || due {
            self.next_sample_ms = Some(boundary + period);
        }
        let events = self.config.events;
        if !due || !(events.queue || events.occupancy) {
            return;
        }
        let acc = &mut self.sample_scratch;
        acc.clear();
        acc.resize(self.zones.len(), (0, 0, 0));
        for st in self.tracks.values() {
            for (z, zs) in st.zones.iter().enumerate() {
                if let Some(entered) = zs.entered_at() {
                    let wait = (boundary - entered).max(0);
                    let a = &mut acc[z];
                    *a = (a.0 + 1, a.1 + wait, a.2.max(wait));
                }
            }
        }
        for (zone, &(count, sum, max)) in self.zones.iter().zip(acc.iter()) {
            if events.occupancy {
                out.push(Event::Occupancy { zone: zone.name.clone(), at_ms: boundary, count });
            }
            if events.queue && zone.kind == ZoneKind::Queue {
                let mean = if count > 0 { sum / i64::from(count) } else { 0 };
                out.push(Event::QueueSample {
                    zone: zone.name.clone(),
                    at_ms: boundary,
                    length: count,
                    mean_wait_ms: mean,
                    max_wait_ms: max,
                });
            }
        }
    }

    /// Feeds one observation to its track's state machines.
    fn observe(&mut self, t: i64, o: &Observation, out: &mut Vec<Event>) {
        let g = o.ground;
        if !(g.x.is_finite() && g.y.is_finite()) {
            self.counters.observations_rejected += 1;
            return;
        }
        let Behaviour { config, timing, zones, lines, tracks, spare, mood, heat, .. } = self;
        let events = config.events;
        let st = match tracks.entry(o.track) {
            MapEntry::Occupied(e) => e.into_mut(),
            MapEntry::Vacant(v) => {
                let mut st = spare.pop().unwrap_or_else(TrackState::new);
                st.reset(t, g, zones.len(), lines.len());
                if events.entry_exit
                    && let Some(z) = zones.iter().find(|z| {
                        z.kind == ZoneKind::Entrance
                            && (z.polygon.contains(g)
                                || distance_to_boundary(&z.polygon, g) <= config.entrance_margin_m)
                    })
                {
                    out.push(Event::Entry { zone: z.name.clone(), track: o.track, at_ms: t });
                }
                v.insert(st)
            }
        };

        let wrists = [o.left_wrist, o.right_wrist];
        for (z, zone) in zones.iter().enumerate() {
            let inside = zone.polygon.contains(g);
            match st.zones[z].update(t, inside, || distance_to_boundary(&zone.polygon, g), *timing) {
                Some(ZoneChange::Entered { at_ms }) => {
                    if events.zones {
                        out.push(Event::ZoneEntered { zone: zone.name.clone(), track: o.track, at_ms });
                    }
                    if st.journey.last() != Some(&z) {
                        st.journey.push(z);
                    }
                }
                Some(ZoneChange::Exited { at_ms, dwell_ms }) if events.zones => {
                    out.push(Event::ZoneExited { zone: zone.name.clone(), track: o.track, at_ms, dwell_ms });
                }
                Some(ZoneChange::Exited { .. }) | None => {}
            }
            if events.shelf && zone.kind == ZoneKind::Shelf {
                let wrist_in =
                    wrists.iter().flatten().any(|w| w.x.is_finite() && w.y.is_finite() && zone.polygon.contains(*w));
                // Standing in front of the shelf: inside its polygon, or within reach of it.
                let touching = wrist_in && (inside || distance_to_boundary(&zone.polygon, g) <= config.reach_m);
                if let Some((start_ms, duration_ms)) =
                    st.shelves[z].update(t, touching, config.interaction_gap_ms, config.interaction_min_ms)
                {
                    out.push(Event::ShelfInteraction {
                        zone: zone.name.clone(),
                        track: o.track,
                        start_ms,
                        duration_ms,
                    });
                }
            }
            if events.mood
                && let Some(p) = &o.emotion
                && st.zones[z].entered_at().is_some()
            {
                mood.add(z, o.track, p);
            }
        }

        if events.lines {
            for (line, ls) in lines.iter().zip(st.lines.iter_mut()) {
                if let Some((direction, at_ms)) =
                    ls.update(&line.geom, t, g, config.line_hysteresis_m, config.line_tolerance_m)
                {
                    out.push(Event::LineCrossed { line: line.name.clone(), track: o.track, direction, at_ms });
                }
            }
        }

        if events.heatmap {
            let cell = heat.cell(g);
            heat.add_presence(cell, o.track);
            st.last_cell = cell;
        }
        st.last_ms = t;
        st.last_ground = g;
    }

    /// Everything a track's end closes, dated at its last sample.
    fn close_track(&self, track: TrackId, st: &mut TrackState, exit: bool, out: &mut Vec<Event>) {
        let (config, events) = (&self.config, self.config.events);
        for (z, zone) in self.zones.iter().enumerate() {
            if let Some(ZoneChange::Exited { at_ms, dwell_ms }) = st.zones[z].close(st.last_ms)
                && events.zones
            {
                out.push(Event::ZoneExited { zone: zone.name.clone(), track, at_ms, dwell_ms });
            }
            if let Some((start_ms, duration_ms)) = st.shelves[z].close(st.last_ms, config.interaction_min_ms)
                && events.shelf
            {
                out.push(Event::ShelfInteraction { zone: zone.name.clone(), track, start_ms, duration_ms });
            }
        }
        if exit
            && events.entry_exit
            && let Some(z) = self.zones.iter().find(|z| {
                z.kind == ZoneKind::Entrance
                    && (z.polygon.contains(st.last_ground)
                        || distance_to_boundary(&z.polygon, st.last_ground) <= self.config.entrance_margin_m)
            })
        {
            out.push(Event::Exit { zone: z.name.clone(), track, at_ms: st.last_ms });
        }
        if events.journey {
            out.push(Event::Journey {
                track,
                zones: st.journey.iter().map(|&z| self.zones[z].name.clone()).collect(),
                start_ms: st.first_ms,
                end_ms: st.last_ms,
            });
        }
    }
}

fn check_names<'a>(what: &'static str, names: impl Iterator<Item = &'a Name>) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.as_str().is_empty() {
            return Err(Error::EmptyName { what });
        }
        if !seen.insert(n.as_str()) {
            return Err(Error::DuplicateName { what, name: n.to_string() });
        }
    }
    Ok(())
}

impl Behaviour {
    /// A camera's behaviour from its calibration: every zone and line of the file.
    pub fn for_calibration(cal: &crate::calibration::Calibration, config: BehaviourConfig) -> Result<Self, Error> {
        use crate::calibration::{InSide, ZoneKind as CalKind};
        let zones = cal
            .zones
            .iter()
            .map(|z| ZoneSpec {
                name: z.name.clone(),
                kind: match z.kind {
                    CalKind::Entrance => ZoneKind::Entrance,
                    CalKind::Queue => ZoneKind::Queue,
                    CalKind::Shelf => ZoneKind::Shelf,
                    CalKind::Zone => ZoneKind::Zone,
                },
                polygon: z.polygon.clone(),
            })
            .collect();
        let lines = cal
            .lines
            .iter()
            .map(|l| LineSpec {
                name: l.name.clone(),
                from: l.from,
                to: l.to,
                in_side: match l.in_side {
                    InSide::Left => Side::Left,
                    InSide::Right => Side::Right,
                },
            })
            .collect();
        Self::new(zones, lines, config)
    }
}
