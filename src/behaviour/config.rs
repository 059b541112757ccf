//! Tunables and per-kind switches for [`super::Behaviour`].

use serde::{Deserialize, Serialize};

use super::Error;

/// Which event kinds are emitted. All on by default.
///
/// Switching a kind off only silences its events (and skips work nothing else needs): zone membership is still
/// tracked when `zones` is off, because queue samples, occupancy, mood and journeys are built on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSwitches {
    /// `Entry` / `Exit` (tracks starting / ending in an `Entrance` zone).
    pub entry_exit: bool,
    /// `ZoneEntered` / `ZoneExited`.
    pub zones: bool,
    /// `LineCrossed`.
    pub lines: bool,
    /// `QueueSample` for `Queue` zones.
    pub queue: bool,
    /// `Occupancy` for every zone.
    pub occupancy: bool,
    /// `ShelfInteraction` for `Shelf` zones.
    pub shelf: bool,
    /// `Journey` when a track ends.
    pub journey: bool,
    /// `MoodBucket`.
    pub mood: bool,
    /// `HeatCell`.
    pub heatmap: bool,
}

impl Default for EventSwitches {
    fn default() -> Self {
        Self {
            entry_exit: true,
            zones: true,
            lines: true,
            queue: true,
            occupancy: true,
            shelf: true,
            journey: true,
            mood: true,
            heatmap: true,
        }
    }
}

/// Parameters of the behaviour state machines. Times in milliseconds, distances in floor metres.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enter_ms` | 500 | a track must stay inside a zone this long to count as entered |
/// | `exit_ms` | 1000 | ... and outside this long to count as exited |
/// | `margin_m` | 0.5 | ... unless it is farther than this from the polygon's edge: then it exits at once |
/// | `line_hysteresis_m` | 0.15 | a crossing goes from farther than this on one side to farther than this on the other |
/// | `line_tolerance_m` | 0.2 | the crossing point may lie this far beyond either end of the segment |
/// | `queue_sample_ms` | 5000 | period of `QueueSample` and `Occupancy` (aligned to multiples of it) |
/// | `reach_m` | 1.0 | a wrist in a shelf counts only while the ground point is this close to the shelf |
/// | `interaction_gap_ms` | 700 | an interaction ends once no wrist has been in the shelf this long |
/// | `interaction_min_ms` | 300 | shorter interactions are dropped |
/// | `mood_bucket_ms` | 900 000 (15 min) | mood histogram bucket (aligned) |
/// | `heat_bucket_ms` | 900 000 (15 min) | heatmap bucket (aligned) |
/// | `cell_m` | 0.5 | heatmap cell side |
/// | `entrance_margin_m` | 0.15 | a track's first (last) sample this close to an entrance zone counts as an entry (exit): a detector sees a person entering from under the camera a few frames late, a little past the zone's edge |
/// | `heat_max_gap_ms` | 2000 | most dwell one track-sample adds to a heat cell (bridges a track unseen for a while) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviourConfig {
    pub events: EventSwitches,
    pub enter_ms: i64,
    pub exit_ms: i64,
    pub margin_m: f64,
    pub line_hysteresis_m: f64,
    pub line_tolerance_m: f64,
    pub queue_sample_ms: i64,
    pub reach_m: f64,
    pub interaction_gap_ms: i64,
    pub interaction_min_ms: i64,
    pub mood_bucket_ms: i64,
    pub heat_bucket_ms: i64,
    pub cell_m: f64,
    pub heat_max_gap_ms: i64,
    pub entrance_margin_m: f64,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            events: EventSwitches::default(),
            enter_ms: 500,
            exit_ms: 1000,
            margin_m: 0.5,
            line_hysteresis_m: 0.15,
            line_tolerance_m: 0.2,
            queue_sample_ms: 5000,
            reach_m: 1.0,
            interaction_gap_ms: 700,
            interaction_min_ms: 300,
            mood_bucket_ms: 15 * 60 * 1000,
            heat_bucket_ms: 15 * 60 * 1000,
            cell_m: 0.5,
            heat_max_gap_ms: 2000,
            entrance_margin_m: 0.15,
        }
    }
}

impl BehaviourConfig {
    /// Durations must be >= 0 (periods > 0) and distances finite and >= 0 (`cell_m` > 0).
    pub fn validate(&self) -> Result<(), Error> {
        let non_negative_ms = [
            ("enter_ms", self.enter_ms),
            ("exit_ms", self.exit_ms),
            ("interaction_gap_ms", self.interaction_gap_ms),
            ("interaction_min_ms", self.interaction_min_ms),
            ("heat_max_gap_ms", self.heat_max_gap_ms),
        ];
        for (field, v) in non_negative_ms {
            if v < 0 {
                return Err(Error::Config { field, reason: "must be >= 0" });
            }
        }
        let periods = [
            ("queue_sample_ms", self.queue_sample_ms),
            ("mood_bucket_ms", self.mood_bucket_ms),
            ("heat_bucket_ms", self.heat_bucket_ms),
        ];
        for (field, v) in periods {
            if v <= 0 {
                return Err(Error::Config { field, reason: "must be > 0" });
            }
        }
        let metres = [
            ("margin_m", self.margin_m),
            ("entrance_margin_m", self.entrance_margin_m),
            ("line_hysteresis_m", self.line_hysteresis_m),
            ("line_tolerance_m", self.line_tolerance_m),
            ("reach_m", self.reach_m),
        ];
        for (field, v) in metres {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Config { field, reason: "must be a finite number >= 0" });
            }
        }
        if !(self.cell_m.is_finite() && self.cell_m > 0.0) {
            return Err(Error::Config { field: "cell_m", reason: "must be a finite number > 0" });
        }
        Ok(())
    }
}
