//! Time-bucketed aggregates that never hold a per-person record past their bucket: mood histograms per zone
//! and heatmap cells. Buckets are aligned to multiples of their length (epoch milliseconds).

use std::collections::{HashMap, HashSet};

use crate::geometry::PointOnFloor;

use super::{Event, Name, TrackId};

fn bucket_of(t: i64, bucket_ms: i64) -> i64 {
    t.div_euclid(bucket_ms) * bucket_ms
}

/// Index of the most probable emotion; `None` when any probability is not finite. Ties go to the first.
pub(crate) fn dominant(probabilities: &[f32; 7]) -> Option<usize> {
    if !probabilities.iter().all(|p| p.is_finite()) {
        return None;
    }
    let mut best = 0;
    for (i, &p) in probabilities.iter().enumerate().skip(1) {
        if p > probabilities[best] {
            best = i;
        }
    }
    Some(best)
}

/// Per-zone histograms of the dominant emotion of track-frames inside the zone.
#[derive(Debug)]
pub(crate) struct MoodBuckets {
    bucket_ms: i64,
    start: Option<i64>,
    zones: Vec<Name>,
    counts: Vec<[u32; 7]>,
    tracks: Vec<u32>,
    seen: HashSet<(usize, TrackId)>,
}

impl MoodBuckets {
    pub fn new(zones: Vec<Name>, bucket_ms: i64) -> Self {
        let n = zones.len();
        Self { bucket_ms, start: None, zones, counts: vec![[0; 7]; n], tracks: vec![0; n], seen: HashSet::new() }
    }

    /// Closes the open bucket if `t` lies past it, and opens `t`'s bucket.
    pub fn roll(&mut self, t: i64, out: &mut Vec<Event>) {
        let b = bucket_of(t, self.bucket_ms);
        if self.start != Some(b) {
            self.close(out);
            self.start = Some(b);
        }
    }

    pub fn add(&mut self, zone: usize, track: TrackId, probabilities: &[f32; 7]) {
        if let Some(k) = dominant(probabilities) {
            self.counts[zone][k] += 1;
            if self.seen.insert((zone, track)) {
                self.tracks[zone] += 1;
            }
        }
    }

    /// Emits the open bucket's non-empty zones and leaves no bucket open.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(start) = self.start.take() {
            for (z, counts) in self.counts.iter().enumerate() {
                let samples = counts.iter().sum::<u32>();
                if samples > 0 {
                    out.push(Event::MoodBucket {
                        zone: self.zones[z].clone(),
                        bucket_start_ms: start,
                        counts: *counts,
                        samples,
                        tracks: self.tracks[z],
                    });
                }
            }
        }
        self.counts.iter_mut().for_each(|c| *c = [0; 7]);
        self.tracks.iter_mut().for_each(|c| *c = 0);
        self.seen.clear();
    }
}

/// A heatmap cell index: `floor(x / cell_m), floor(y / cell_m)`.
pub(crate) type Cell = (i32, i32);

#[derive(Debug, Default, Clone, Copy)]
struct HeatAcc {
    presence: u32,
    dwell_ms: i64,
    tracks: u32,
}

/// Floor-grid presence and dwell per bucket.
#[derive(Debug)]
pub(crate) struct HeatBuckets {
    bucket_ms: i64,
    cell_m: f64,
    start: Option<i64>,
    cells: HashMap<Cell, HeatAcc>,
    seen: HashSet<(Cell, TrackId)>,
    order: Vec<Cell>,
}

impl HeatBuckets {
    pub fn new(bucket_ms: i64, cell_m: f64) -> Self {
        Self { bucket_ms, cell_m, start: None, cells: HashMap::new(), seen: HashSet::new(), order: Vec::new() }
    }

    pub fn cell(&self, p: PointOnFloor) -> Cell {
        // `as` saturates (and maps NaN to 0); callers pass finite points.
        ((p.x / self.cell_m).floor() as i32, (p.y / self.cell_m).floor() as i32)
    }

    pub fn roll(&mut self, t: i64, out: &mut Vec<Event>) {
        let b = bucket_of(t, self.bucket_ms);
        if self.start != Some(b) {
            self.close(out);
            self.start = Some(b);
        }
    }

    pub fn add_presence(&mut self, cell: Cell, track: TrackId) {
        let acc = self.cells.entry(cell).or_default();
        acc.presence += 1;
        if self.seen.insert((cell, track)) {
            acc.tracks += 1;
        }
    }

    pub fn add_dwell(&mut self, cell: Cell, ms: i64) {
        self.cells.entry(cell).or_default().dwell_ms += ms;
    }

    /// Emits the open bucket's cells (sorted by row, then column) and leaves no bucket open.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(start) = self.start.take() {
            self.order.clear();
            self.order.extend(self.cells.keys().copied());
            self.order.sort_unstable_by_key(|&(cx, cy)| (cy, cx));
            for &(cx, cy) in &self.order {
                let a = self.cells[&(cx, cy)];
                out.push(Event::HeatCell {
                    bucket_start_ms: start,
                    cx,
                    cy,
                    presence: a.presence,
                    dwell_ms: a.dwell_ms,
                    tracks: a.tracks,
                });
            }
        }
        self.cells.clear();
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_picks_the_largest_and_refuses_nan() {
        assert_eq!(dominant(&[0.1, 0.0, 0.0, 0.7, 0.1, 0.0, 0.1]), Some(3));
        assert_eq!(dominant(&[0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]), Some(0));
        assert_eq!(dominant(&[f32::NAN, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]), None);
    }

    #[test]
    fn buckets_align_to_their_length() {
        assert_eq!(bucket_of(1_234, 1_000), 1_000);
        assert_eq!(bucket_of(-1, 1_000), -1_000);
    }

    #[test]
    fn cells_floor_towards_minus_infinity() {
        let h = HeatBuckets::new(1000, 0.5);
        assert_eq!(h.cell(PointOnFloor::new(0.74, 1.0)), (1, 2));
        assert_eq!(h.cell(PointOnFloor::new(-0.1, 0.0)), (-1, 0));
    }
}
