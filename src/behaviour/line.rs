//! Line crossing with hysteresis, one [`LineState`] per (track, line).

use crate::geometry::{PointOnFloor, cross};

use super::{Direction, Side};

/// A counting line, precomputed: `signed` is positive on the line's in-side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineGeom {
    from: PointOnFloor,
    /// Unit vector from -> to.
    ux: f64,
    uy: f64,
    len: f64,
    /// +1 when the in-side is where `geometry::cross` is positive (the right on a y-down plan), else -1.
    in_sign: f64,
}

impl LineGeom {
    /// `None` for a degenerate (shorter than 1 mm) or non-finite line.
    pub fn new(from: PointOnFloor, to: PointOnFloor, in_side: Side) -> Option<Self> {
        let len = from.distance(&to);
        (len.is_finite() && len >= 1e-3).then(|| LineGeom {
            from,
            ux: (to.x - from.x) / len,
            uy: (to.y - from.y) / len,
            len,
            in_sign: match in_side {
                Side::Right => 1.0,
                Side::Left => -1.0,
            },
        })
    }

    /// Signed distance from the (infinite) line, positive on the in-side.
    pub fn signed(&self, p: PointOnFloor) -> f64 {
        let to = PointOnFloor::new(self.from.x + self.ux, self.from.y + self.uy);
        self.in_sign * cross(self.from, to, p)
    }

    /// Position of `p`'s projection along the segment, 0 at `from`, `len` at `to`.
    fn along(&self, p: PointOnFloor) -> f64 {
        (p.x - self.from.x) * self.ux + (p.y - self.from.y) * self.uy
    }
}

/// One track's state against one line.
///
/// `side` is the last side the track was seen farther than the hysteresis from the line (`true` = in-side).
/// Every change of the raw sign between consecutive samples records where (along the segment) and when (the
/// first sample on the new side) the path met the line. When the track next shows up beyond the hysteresis on
/// the other side, that is a crossing if the last recorded meeting point lies on the segment (within the
/// tolerance); the side flips either way, so walking round the end of a line is no crossing and crossings of
/// one line by one track alternate In/Out.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineState {
    side: Option<bool>,
    prev: Option<(PointOnFloor, f64)>,
    /// Along-segment position and time of the latest raw sign change.
    met: Option<(f64, i64)>,
}

impl LineState {
    pub fn update(
        &mut self,
        line: &LineGeom,
        t: i64,
        p: PointOnFloor,
        hysteresis_m: f64,
        tolerance_m: f64,
    ) -> Option<(Direction, i64)> {
        let s = line.signed(p);
        if let Some((q, sq)) = self.prev
            && (sq >= 0.0) != (s >= 0.0)
        {
            let k = sq / (sq - s);
            let hit = PointOnFloor::new(q.x + (p.x - q.x) * k, q.y + (p.y - q.y) * k);
            self.met = Some((line.along(hit), t));
        }
        self.prev = Some((p, s));

        let now = if s > hysteresis_m {
            true
        } else if s < -hysteresis_m {
            false
        } else {
            return None;
        };
        let was = self.side.replace(now);
        if was != Some(!now) {
            return None;
        }
        let met = self.met.take()?;
        let on_segment = met.0 >= -tolerance_m && met.0 <= line.len + tolerance_m;
        on_segment.then_some((if now { Direction::In } else { Direction::Out }, met.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> LineGeom {
        // Along x from 0 to 4; the in-side is y > 0 (the right of from->to on a y-down plan).
        LineGeom::new(PointOnFloor::new(0.0, 0.0), PointOnFloor::new(4.0, 0.0), Side::Right).unwrap()
    }

    fn run(path: &[(f64, f64)]) -> Vec<(Direction, i64)> {
        let l = line();
        let mut s = LineState::default();
        path.iter()
            .enumerate()
            .filter_map(|(i, &(x, y))| s.update(&l, i as i64 * 100, PointOnFloor::new(x, y), 0.15, 0.2))
            .collect()
    }

    #[test]
    fn in_side_follows_the_plan_orientation() {
        let l = line();
        assert!(l.signed(PointOnFloor::new(1.0, 1.0)) > 0.0);
        let left = LineGeom::new(PointOnFloor::new(0.0, 0.0), PointOnFloor::new(4.0, 0.0), Side::Left).unwrap();
        assert!(left.signed(PointOnFloor::new(1.0, 1.0)) < 0.0);
    }

    #[test]
    fn walking_across_and_back_is_in_then_out() {
        let c = run(&[(2.0, -1.0), (2.0, -0.1), (2.0, 0.1), (2.0, 1.0), (2.0, 0.05), (2.0, -0.5)]);
        assert_eq!(c, vec![(Direction::In, 200), (Direction::Out, 500)]);
    }

    #[test]
    fn jitter_on_the_line_counts_once() {
        let c = run(&[(2.0, -1.0), (2.0, 0.1), (2.0, -0.1), (2.0, 0.14), (2.0, -0.14), (2.0, 0.1), (2.0, 1.0)]);
        assert_eq!(c, vec![(Direction::In, 500)]);
    }

    #[test]
    fn passing_beyond_the_end_is_no_crossing() {
        assert_eq!(run(&[(5.0, -1.0), (5.0, 1.0)]), vec![]);
        assert_eq!(run(&[(4.1, -1.0), (4.1, 1.0)]).len(), 1, "within tolerance");
    }

    #[test]
    fn starting_on_the_line_is_no_crossing() {
        assert_eq!(run(&[(2.0, 0.0), (2.0, 1.0), (2.0, 2.0)]), vec![]);
    }
}
