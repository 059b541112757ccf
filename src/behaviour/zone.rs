//! Zone membership with inertia, one [`ZoneState`] per (track, zone).

use crate::geometry::{PointOnFloor, PolygonOnFloor};

/// Distance from `p` to the nearest point on the polygon's boundary (0 on an edge).
pub(crate) fn distance_to_boundary(poly: &PolygonOnFloor, p: PointOnFloor) -> f64 {
    let pts = &poly.points;
    let n = pts.len();
    (0..n).map(|i| distance_to_segment(p, pts[i], pts[(i + 1) % n])).fold(f64::INFINITY, f64::min)
}

fn distance_to_segment(p: PointOnFloor, a: PointOnFloor, b: PointOnFloor) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    p.distance(&PointOnFloor::new(a.x + t * dx, a.y + t * dy))
}

/// The inertia parameters (see `BehaviourConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZoneTiming {
    pub enter_ms: i64,
    pub exit_ms: i64,
    pub margin_m: f64,
}

/// One track's membership of one zone.
///
/// `Outside -> Entering` on the first sample inside; `Entering -> Inside` once samples have stayed inside for
/// `enter_ms` (any sample outside resets to `Outside`). `Inside -> Outside` once samples have stayed outside for
/// `exit_ms` (a sample back inside cancels), or at once on a sample farther than `margin_m` from the polygon.
/// Confirmed transitions are dated at the first sample of the run that confirmed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ZoneState {
    #[default]
    Outside,
    Entering {
        since: i64,
    },
    Inside {
        entered_at: i64,
        out_since: Option<i64>,
    },
}

/// What one sample did to a [`ZoneState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZoneChange {
    Entered { at_ms: i64 },
    Exited { at_ms: i64, dwell_ms: i64 },
}

impl ZoneState {
    /// Feeds one sample at `t`; `distance_outside` is asked only for samples outside a zone the track is in.
    pub fn update(
        &mut self,
        t: i64,
        inside: bool,
        distance_outside: impl FnOnce() -> f64,
        timing: ZoneTiming,
    ) -> Option<ZoneChange> {
        match *self {
            ZoneState::Outside | ZoneState::Entering { .. } if !inside => {
                *self = ZoneState::Outside;
                None
            }
            ZoneState::Outside | ZoneState::Entering { .. } => {
                let since = match *self {
                    ZoneState::Entering { since } => since,
                    _ => t,
                };
                if t - since >= timing.enter_ms {
                    *self = ZoneState::Inside { entered_at: since, out_since: None };
                    Some(ZoneChange::Entered { at_ms: since })
                } else {
                    *self = ZoneState::Entering { since };
                    None
                }
            }
            ZoneState::Inside { entered_at, .. } if inside => {
                *self = ZoneState::Inside { entered_at, out_since: None };
                None
            }
            ZoneState::Inside { entered_at, out_since } => {
                let out_since = out_since.unwrap_or(t);
                if t - out_since >= timing.exit_ms || distance_outside() > timing.margin_m {
                    *self = ZoneState::Outside;
                    Some(ZoneChange::Exited { at_ms: out_since, dwell_ms: out_since - entered_at })
                } else {
                    *self = ZoneState::Inside { entered_at, out_since: Some(out_since) };
                    None
                }
            }
        }
    }

    /// The track ended (last seen at `last_seen`): closes an open stay. A stay already on its way out ends at
    /// its first sample outside, otherwise at the last sample.
    pub fn close(&mut self, last_seen: i64) -> Option<ZoneChange> {
        let closed = match *self {
            ZoneState::Inside { entered_at, out_since } => {
                let at_ms = out_since.unwrap_or(last_seen).max(entered_at);
                Some(ZoneChange::Exited { at_ms, dwell_ms: at_ms - entered_at })
            }
            _ => None,
        };
        *self = ZoneState::Outside;
        closed
    }

    /// When the current confirmed stay began, if the track is (confirmed) inside.
    pub fn entered_at(&self) -> Option<i64> {
        match *self {
            ZoneState::Inside { entered_at, .. } => Some(entered_at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: ZoneTiming = ZoneTiming { enter_ms: 500, exit_ms: 1000, margin_m: 0.5 };

    /// Feeds (t, inside, distance) samples and returns the changes.
    fn run(samples: &[(i64, bool, f64)]) -> Vec<ZoneChange> {
        let mut s = ZoneState::default();
        samples.iter().filter_map(|&(t, i, d)| s.update(t, i, || d, T)).collect()
    }

    #[test]
    fn enters_after_enter_ms_dated_at_first_inside_sample() {
        let c = run(&[(0, false, 1.0), (100, true, 0.0), (400, true, 0.0), (600, true, 0.0)]);
        assert_eq!(c, vec![ZoneChange::Entered { at_ms: 100 }]);
    }

    #[test]
    fn a_short_visit_is_not_an_entry() {
        let c = run(&[(100, true, 0.0), (400, true, 0.0), (500, false, 0.1), (700, true, 0.0), (1000, true, 0.0)]);
        assert_eq!(c, vec![]);
    }

    #[test]
    fn standing_on_the_edge_does_not_flap() {
        let mut samples = vec![(0, true, 0.0), (600, true, 0.0)];
        for k in 0..50 {
            samples.push((700 + k * 100, k % 2 == 0, 0.05));
        }
        assert_eq!(run(&samples), vec![ZoneChange::Entered { at_ms: 0 }]);
    }

    #[test]
    fn exits_after_exit_ms_or_at_once_beyond_the_margin() {
        let slow = run(&[(0, true, 0.0), (500, true, 0.0), (1000, false, 0.2), (1500, false, 0.2), (2000, false, 0.2)]);
        assert_eq!(slow, vec![ZoneChange::Entered { at_ms: 0 }, ZoneChange::Exited { at_ms: 1000, dwell_ms: 1000 }]);
        let fast = run(&[(0, true, 0.0), (500, true, 0.0), (1000, false, 0.2), (1100, false, 0.8)]);
        assert_eq!(fast, vec![ZoneChange::Entered { at_ms: 0 }, ZoneChange::Exited { at_ms: 1000, dwell_ms: 1000 }]);
    }

    #[test]
    fn close_ends_at_the_first_outside_sample_or_the_last_sample() {
        let mut s = ZoneState::Inside { entered_at: 10, out_since: None };
        assert_eq!(s.close(90), Some(ZoneChange::Exited { at_ms: 90, dwell_ms: 80 }));
        let mut s = ZoneState::Inside { entered_at: 10, out_since: Some(50) };
        assert_eq!(s.close(90), Some(ZoneChange::Exited { at_ms: 50, dwell_ms: 40 }));
        assert_eq!(ZoneState::Entering { since: 3 }.close(9), None);
    }

    #[test]
    fn distances_to_a_square() {
        let sq = PolygonOnFloor::new(vec![
            PointOnFloor::new(0.0, 0.0),
            PointOnFloor::new(2.0, 0.0),
            PointOnFloor::new(2.0, 2.0),
            PointOnFloor::new(0.0, 2.0),
        ]);
        assert!((distance_to_boundary(&sq, PointOnFloor::new(1.0, 0.5)) - 0.5).abs() < 1e-12);
        assert!((distance_to_boundary(&sq, PointOnFloor::new(5.0, 6.0)) - 5.0).abs() < 1e-12);
    }
}
