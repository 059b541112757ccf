//! Time-bucketed aggregates that never hold a per-person record past their bucket: mood histograms per zone
//! and heatmap cells. Buckets are aligned to multiples of their length (epoch milliseconds).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::geometry::PointOnFloor;

use super::{Event, Mood, Name, TrackId};

/// The distinct tracks behind one bucket of one zone or floor cell, as sorted, distinct 16-bit tokens.
///
/// A token is a keyed hash of the track id and the zone or cell, under a key drawn at random per run and
/// never stored ([`TokenKey`]). Tokens let a report count the distinct people behind a zone or cell over
/// many buckets (the size of the union), which a per-bucket count cannot (a person in two buckets would
/// count twice). Two tracks can share a token (about 1 in 65,536 per pair), so the union's size is a lower
/// bound of the distinct tracks: suppression errs towards hiding. The same track has unrelated tokens in
/// different zones, cells and runs, so tokens link nothing across places.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackTokens(Vec<u16>);

impl TrackTokens {
    /// Sorts and removes repeats.
    pub fn new(mut tokens: Vec<u16>) -> Self {
        tokens.sort_unstable();
        tokens.dedup();
        TrackTokens(tokens)
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Little-endian, two bytes per token (how the store keeps them).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|t| t.to_le_bytes()).collect()
    }
}

/// The per-run secret behind [`TrackTokens`]: drawn from the OS's generator, held in memory only.
#[derive(Clone, Copy)]
pub(crate) struct TokenKey(u64);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn random() -> Self {
        TokenKey(rand::random())
    }

    /// The token of `track` in `scope` (a zone index, a cell).
    pub fn token(self, scope: impl Hash, track: TrackId) -> u16 {
        let mut h = DefaultHasher::new();
        self.0.hash(&mut h);
        scope.hash(&mut h);
        track.0.hash(&mut h);
        let x = h.finish();
        // Fold all 64 bits into the 16 kept.
        (x ^ (x >> 16) ^ (x >> 32) ^ (x >> 48)) as u16
    }
}

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

/// Per-zone histograms of the dominant emotion of track-frames inside the zone, and the count of
/// track-frames whose face could not be read.
#[derive(Debug)]
pub(crate) struct MoodBuckets {
    bucket_ms: i64,
    start: Option<i64>,
    zones: Vec<Name>,
    counts: Vec<[u32; 7]>,
    uncertain: Vec<u32>,
    /// One token per distinct track of the open bucket, per zone (before collisions are merged).
    tokens: Vec<Vec<u16>>,
    seen: HashSet<(usize, TrackId)>,
    key: TokenKey,
}

impl MoodBuckets {
    pub fn new(zones: Vec<Name>, bucket_ms: i64, key: TokenKey) -> Self {
        let n = zones.len();
        Self {
            bucket_ms,
            start: None,
            zones,
            counts: vec![[0; 7]; n],
            uncertain: vec![0; n],
            tokens: vec![Vec::new(); n],
            seen: HashSet::new(),
            key,
        }
    }

    /// Closes the open bucket if `t` lies past it, and opens `t`'s bucket.
    pub fn roll(&mut self, t: i64, out: &mut Vec<Event>) {
        let b = bucket_of(t, self.bucket_ms);
        if self.start != Some(b) {
            self.close(out);
            self.start = Some(b);
        }
    }

    /// One track-frame's face inside `zone`: a read counts towards its dominant class, anything else
    /// (uncertain, or probabilities that are not numbers) as uncertain.
    pub fn add(&mut self, zone: usize, track: TrackId, mood: &Mood) {
        match mood {
            Mood::Read(p) if let Some(k) = dominant(p) => self.counts[zone][k] += 1,
            _ => self.uncertain[zone] += 1,
        }
        if self.seen.insert((zone, track)) {
            self.tokens[zone].push(self.key.token(("zone", zone), track));
        }
    }

    /// Emits the open bucket's non-empty zones and leaves no bucket open.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(start) = self.start.take() {
            for (z, counts) in self.counts.iter().enumerate() {
                let samples = counts.iter().sum::<u32>();
                let uncertain = self.uncertain[z];
                if samples + uncertain > 0 {
                    let tokens = std::mem::take(&mut self.tokens[z]);
                    out.push(Event::MoodBucket {
                        zone: self.zones[z].clone(),
                        bucket_start_ms: start,
                        counts: *counts,
                        samples,
                        uncertain,
                        tracks: tokens.len() as u32,
                        tokens: TrackTokens::new(tokens),
                    });
                }
            }
        }
        self.counts.iter_mut().for_each(|c| *c = [0; 7]);
        self.uncertain.iter_mut().for_each(|c| *c = 0);
        self.tokens.iter_mut().for_each(Vec::clear);
        self.seen.clear();
    }
}

/// A heatmap cell index: `floor(x / cell_m), floor(y / cell_m)`.
pub(crate) type Cell = (i32, i32);

#[derive(Debug, Default, Clone)]
struct HeatAcc {
    presence: u32,
    dwell_ms: i64,
    /// One token per distinct track (before collisions are merged).
    tokens: Vec<u16>,
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
    key: TokenKey,
}

impl HeatBuckets {
    pub fn new(bucket_ms: i64, cell_m: f64, key: TokenKey) -> Self {
        Self { bucket_ms, cell_m, start: None, cells: HashMap::new(), seen: HashSet::new(), order: Vec::new(), key }
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
            acc.tokens.push(self.key.token(("cell", cell), track));
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
                let a = self.cells.get_mut(&(cx, cy)).expect("a listed cell");
                out.push(Event::HeatCell {
                    bucket_start_ms: start,
                    cx,
                    cy,
                    presence: a.presence,
                    dwell_ms: a.dwell_ms,
                    tracks: a.tokens.len() as u32,
                    tokens: TrackTokens::new(std::mem::take(&mut a.tokens)),
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
    fn a_track_keeps_its_token_in_one_place_and_not_across_places() {
        let key = TokenKey(0x5eed);
        let t = TrackId(42);
        // Across 1000 cells one track's tokens look unrelated (a collision is 1 in 65,536 per pair).
        let across: HashSet<u16> = (0..1000).map(|i| key.token(("cell", (i, 0)), t)).collect();
        assert!(across.len() >= 985, "{}", across.len());
        // 1000 tracks in one zone: nearly all distinct, so the union of tokens counts people.
        let tracks: HashSet<u16> = (0..1000u64).map(|i| key.token(("zone", 0usize), TrackId(i))).collect();
        assert!(tracks.len() >= 985, "{}", tracks.len());
        // Another run's key gives other tokens.
        let other = TokenKey(0x5eee);
        let same = (0..1000u64).filter(|&i| key.token(0, TrackId(i)) == other.token(0, TrackId(i))).count();
        assert!(same <= 3, "{same}");
    }

    #[test]
    fn buckets_carry_one_token_per_track_and_the_same_token_in_the_next_bucket() {
        let mut heat = HeatBuckets::new(1000, 0.5, TokenKey(7));
        let mut out = Vec::new();
        heat.roll(0, &mut out);
        for track in [1, 2, 2, 3, 1] {
            heat.add_presence((0, 0), TrackId(track));
        }
        heat.roll(1000, &mut out);
        heat.add_presence((0, 0), TrackId(2));
        heat.close(&mut out);
        let tokens: Vec<&TrackTokens> = out
            .iter()
            .map(|e| match e {
                Event::HeatCell { tokens, tracks, .. } => {
                    assert_eq!(tokens.len(), *tracks as usize);
                    tokens
                }
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(tokens[0].len(), 3);
        assert_eq!(tokens[1].len(), 1);
        assert!(tokens[0].as_slice().contains(&tokens[1].as_slice()[0]), "track 2 keeps its token");
        assert_eq!(tokens[0].to_le_bytes().len(), 6);
    }

    #[test]
    fn cells_floor_towards_minus_infinity() {
        let h = HeatBuckets::new(1000, 0.5, TokenKey::random());
        assert_eq!(h.cell(PointOnFloor::new(0.74, 1.0)), (1, 2));
        assert_eq!(h.cell(PointOnFloor::new(-0.1, 0.0)), (-1, 0));
    }
}
