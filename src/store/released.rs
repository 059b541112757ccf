//! Entries and exits as they may be released: in fixed buckets ([`crate::buckets`]: hours, local days, ISO
//! weeks, months), per camera and for the whole store, with one suppression decision per bucket and camera
//! that every report, every dashboard page and every level shares.
//!
//! A bucket's figures are suppressed when its entering or exiting tracks number 1 to k-1 ([`super::query::Gate`]).
//! On top, no released figure may be subtracted from another to isolate 1 to k-1 people. The relations a
//! reader can subtract along are all sums: the store is the sum of its cameras in every bucket, a day the
//! sum of its hours, a week and a month the sums of their days. For each such relation (a parent and its
//! parts), until nothing changes:
//!
//! - a shown parent whose suppressed parts hold 1 to k-1 tracks together (parent minus the shown parts
//!   would give them away): the smallest shown part with people is suppressed too; with none left, the
//!   parent is;
//! - a suppressed parent with people, all of whose parts with people are shown (the parts would add up to
//!   it): the smallest such part is suppressed.
//!
//! Only ever suppressing more, this ends. A report over several buckets adds up the buckets' released
//! figures and says how many were suppressed, so it too is a sum of released figures and can be
//! subtracted from others without learning more than they say. Tracks are per camera and each enters
//! (and exits) once, so the hours of a day add up to the day. The store counts each store visit once
//! (`visit_members`: two cameras that see the same door see the same visitor), so it is at most the sum of
//! its cameras; the rule above still hides the smallest shown camera when the suppressed ones hold 1 to
//! k-1 people, which is what the store minus the shown cameras could be about at most.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, params};

use super::Result;
use super::query::{Gate, Period};
use crate::buckets::{self, Level};

/// Most buckets of any one level looked at (about 7 years of hours); older ones are not released.
const MAX_BUCKETS: usize = 65_536;

/// One camera (or the store, `None`) in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub level: Level,
    pub start_ms: i64,
    pub camera: Option<usize>,
}

/// Figures and groups of one cell: entries and exits, entering and exiting tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    pub value: [u64; 2],
    pub tracks: [u64; 2],
    pub shown: bool,
}

/// Every cell of a stretch of time, decided.
#[derive(Debug)]
pub struct Released {
    pub cameras: Vec<String>,
    cells: HashMap<Key, Cell>,
}

/// What a period adds up to for one camera or the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sum {
    /// The shown buckets' entries and exits.
    pub value: [u64; 2],
    /// Buckets with people in them, and how many of those are suppressed.
    pub buckets: u64,
    pub suppressed: u64,
}

impl Sum {
    /// Nothing about anyone is shown: every bucket with people is suppressed.
    pub fn all_suppressed(&self) -> bool {
        self.buckets > 0 && self.suppressed == self.buckets
    }
}

impl Released {
    /// The released figures of `period` (whole `level` buckets) for a camera or the store.
    pub fn sum(&self, period: Period, level: Level, camera: Option<usize>) -> Sum {
        let mut s = Sum::default();
        for (key, cell) in &self.cells {
            if key.level != level
                || key.camera != camera
                || key.start_ms < period.from_ms
                || key.start_ms >= period.to_ms
            {
                continue;
            }
            if cell.tracks.iter().any(|&t| t > 0) {
                s.buckets += 1;
            }
            if cell.shown {
                s.value[0] += cell.value[0];
                s.value[1] += cell.value[1];
            } else {
                s.suppressed += 1;
            }
        }
        s
    }

    /// The hour cells in `period` with events, by hour then camera (the store last).
    pub(crate) fn hours(&self, period: Period) -> Vec<(Key, Cell)> {
        let mut v: Vec<(Key, Cell)> = self
            .cells
            .iter()
            .filter(|(k, c)| {
                k.level == Level::Hour && k.start_ms >= period.from_ms && k.start_ms < period.to_ms && c.value[0] > 0
            })
            .map(|(k, c)| (*k, *c))
            .collect();
        v.sort_by_key(|(k, _)| (k.start_ms, k.camera.is_none(), k.camera));
        v
    }
}

/// Decides every cell of the buckets around `period`: every hour, day, week and month that overlaps it,
/// with the whole weeks and months around it (a day's decision depends on its week and month).
pub fn build(conn: &Connection, period: Period, k: u32) -> Result<Released> {
    let err = super::query::err(conn);
    let cameras = super::query::cameras(conn)?;
    let (first, last): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT MIN(ts_ms), MAX(ts_ms) FROM events WHERE kind IN ('entry', 'exit') AND ts_ms >= ?1 AND ts_ms < ?2",
            params![period.from_ms, period.to_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(&err)?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Released { cameras, cells: HashMap::new() });
    };
    let from = buckets::floor(first, Level::Week).min(buckets::floor(first, Level::Month));
    let to = {
        let w = buckets::next(buckets::floor(last, Level::Week), Level::Week);
        let m = buckets::next(buckets::floor(last, Level::Month), Level::Month);
        w.max(m)
    };
    let index: HashMap<&str, usize> = cameras.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    // The store counts each visit once however many cameras saw it enter (`visit_members`, schema 7); a
    // camera track that joined no visit counts as one.
    let members = super::schema::version(conn).map_err(&err)? >= 7;
    let sql = if members {
        "SELECT c.name, e.ts_ms, e.track, e.kind = 'exit', m.store_track FROM events e
         JOIN cameras c ON c.id = e.camera_id
         LEFT JOIN visit_members m ON m.run_id = e.run_id AND m.camera_id = e.camera_id AND m.track = e.track
         WHERE e.kind IN ('entry', 'exit') AND e.ts_ms >= ?1 AND e.ts_ms < ?2"
    } else {
        "SELECT c.name, e.ts_ms, e.track, e.kind = 'exit', NULL FROM events e JOIN cameras c ON c.id = e.camera_id
         WHERE e.kind IN ('entry', 'exit') AND e.ts_ms >= ?1 AND e.ts_ms < ?2"
    };
    let mut stmt = conn.prepare(sql).map_err(&err)?;
    let mut rows = stmt.query(params![from, to]).map_err(&err)?;
    // Per cell: counts and the distinct (camera, track) pairs of each group; for the store, (STORE, visit).
    const STORE: usize = usize::MAX;
    type Groups = ([u64; 2], [HashSet<(usize, u64)>; 2]);
    let mut acc: HashMap<Key, Groups> = HashMap::new();
    while let Some(r) = rows.next().map_err(&err)? {
        let name: String = r.get(0).map_err(&err)?;
        let ts: i64 = r.get(1).map_err(&err)?;
        let track = super::query::track_key(&r.get::<_, String>(2).map_err(&err)?);
        let g = usize::from(r.get::<_, bool>(3).map_err(&err)?);
        let visit: Option<String> = r.get(4).map_err(&err)?;
        let Some(&cam) = index.get(name.as_str()) else { continue };
        let of_store = match &visit {
            Some(v) => (STORE, super::query::track_key(v)),
            None => (cam, track),
        };
        for level in Level::ALL {
            let start_ms = buckets::floor(ts, level);
            let e = acc.entry(Key { level, start_ms, camera: Some(cam) }).or_default();
            e.0[g] += 1;
            e.1[g].insert((cam, track));
            acc.entry(Key { level, start_ms, camera: None }).or_default().1[g].insert(of_store);
        }
    }
    let mut cells: HashMap<Key, Cell> = acc
        .into_iter()
        .map(|(key, (value, tracks))| {
            let tracks = [tracks[0].len() as u64, tracks[1].len() as u64];
            // The store's entries and exits are its distinct visits (or camera tracks without one).
            let value = if key.camera.is_none() { tracks } else { value };
            (key, Cell { value, tracks, shown: !Gate::new(k, &tracks).suppressed() })
        })
        .collect();
    let relations = relations(&cells, cameras.len(), from, to);
    protect(&mut cells, &relations, k);
    Ok(Released { cameras, cells })
}

/// Every parent and its parts among the cells: the store and its cameras in each bucket, each day and its
/// hours, each week and month and their days (for the store and every camera).
pub(crate) fn relations(cells: &HashMap<Key, Cell>, cameras: usize, from: i64, to: i64) -> Vec<(Key, Vec<Key>)> {
    let mut out = Vec::new();
    let series: Vec<Option<usize>> = (0..cameras).map(Some).chain([None]).collect();
    let mut starts_with_events: HashSet<(Level, i64)> = HashSet::new();
    for k in cells.keys() {
        starts_with_events.insert((k.level, k.start_ms));
    }
    for &(level, start_ms) in &starts_with_events {
        let parts = (0..cameras).map(|c| Key { level, start_ms, camera: Some(c) }).collect();
        out.push((Key { level, start_ms, camera: None }, parts));
    }
    for (parent, child) in [(Level::Day, Level::Hour), (Level::Week, Level::Day), (Level::Month, Level::Day)] {
        for start in buckets::starts(from, to, parent, MAX_BUCKETS) {
            if !starts_with_events.contains(&(parent, start)) {
                continue;
            }
            let end = buckets::next(start, parent);
            let children = buckets::starts(start, end, child, MAX_BUCKETS);
            for &camera in &series {
                let parts = children.iter().map(|&s| Key { level: child, start_ms: s, camera }).collect();
                out.push((Key { level: parent, start_ms: start, camera }, parts));
            }
        }
    }
    out.sort_by_key(|(p, _)| *p);
    out
}

/// Suppresses cells until no relation gives a suppressed group away (see the module docs).
pub(crate) fn protect(cells: &mut HashMap<Key, Cell>, relations: &[(Key, Vec<Key>)], k: u32) {
    let k = u64::from(k);
    let get = |cells: &HashMap<Key, Cell>, key: &Key| {
        cells.get(key).copied().unwrap_or(Cell { shown: true, ..Cell::default() })
    };
    loop {
        let mut changed = false;
        for (parent, parts) in relations {
            let p = get(cells, parent);
            for g in 0..2 {
                let hidden: u64 = parts.iter().map(|c| get(cells, c)).filter(|c| !c.shown).map(|c| c.tracks[g]).sum();
                let leaks = if p.shown { (1..k).contains(&hidden) } else { p.tracks[g] > 0 && hidden == 0 };
                if !leaks {
                    continue;
                }
                let smallest = parts
                    .iter()
                    .filter(|c| {
                        let c = get(cells, c);
                        c.shown && c.tracks[g] > 0
                    })
                    .min_by_key(|c| (get(cells, c).tracks[g], **c));
                match smallest {
                    Some(c) => {
                        if let Some(cell) = cells.get_mut(c) {
                            cell.shown = false;
                            changed = true;
                        }
                    }
                    None if p.shown => {
                        if let Some(cell) = cells.get_mut(parent) {
                            cell.shown = false;
                            changed = true;
                        }
                    }
                    None => {}
                }
            }
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000;

    /// A day (at `day`) of one camera's hours with these entering tracks (entries = tracks, no exits).
    fn day_of_hours(day: i64, hours: &[u64], k: u32) -> HashMap<Key, Cell> {
        let mut cells = HashMap::new();
        let mut put = |level, start_ms, camera, n: u64| {
            let tracks = [n, 0];
            cells.insert(
                Key { level, start_ms, camera },
                Cell { value: tracks, tracks, shown: !Gate::new(k, &tracks).suppressed() },
            );
        };
        let total: u64 = hours.iter().sum();
        for (i, &n) in hours.iter().enumerate() {
            if n > 0 {
                put(Level::Hour, day + i as i64 * H, Some(0), n);
                put(Level::Hour, day + i as i64 * H, None, n);
            }
        }
        for level in [Level::Day, Level::Week, Level::Month] {
            for camera in [Some(0), None] {
                put(level, buckets::floor(day, level), camera, total);
            }
        }
        cells
    }

    fn decide(day: i64, hours: &[u64], k: u32) -> HashMap<Key, Cell> {
        let mut cells = day_of_hours(day, hours, k);
        let from = buckets::floor(day, Level::Week).min(buckets::floor(day, Level::Month));
        let to = buckets::next(buckets::floor(day, Level::Month), Level::Month)
            .max(buckets::next(buckets::floor(day, Level::Week), Level::Week));
        let rel = relations(&cells, 1, from, to);
        protect(&mut cells, &rel, k);
        cells
    }

    #[test]
    fn a_day_minus_its_shown_hours_gives_no_one_away() {
        let day = buckets::floor(1_764_000_000_000, Level::Day);
        // 10, 12 and 2 people in three hours: the day (24) minus 10 and 12 would be the 2. The next-smallest
        // hour (10) goes too.
        let cells = decide(day, &[10, 12, 2], 5);
        let shown = |i: i64| cells[&Key { level: Level::Hour, start_ms: day + i * H, camera: Some(0) }].shown;
        assert_eq!((shown(0), shown(1), shown(2)), (false, true, false));
        assert!(cells[&Key { level: Level::Day, start_ms: day, camera: Some(0) }].shown);
        // Nothing to protect: every hour shown.
        let cells = decide(day, &[10, 12, 5], 5);
        assert!((0..3).all(|i| cells[&Key { level: Level::Hour, start_ms: day + i * H, camera: Some(0) }].shown));
    }

    /// One hour of cameras with these (entering, exiting) tracks and the store as their sum, decided on
    /// the store-and-cameras relation alone: (cameras suppressed, store suppressed).
    fn store_of(k: u32, parts: &[[u64; 2]]) -> (Vec<bool>, bool) {
        let cell = |tracks: [u64; 2]| Cell { value: tracks, tracks, shown: !Gate::new(k, &tracks).suppressed() };
        let key = |camera| Key { level: Level::Hour, start_ms: 0, camera };
        let mut cells: HashMap<Key, Cell> = parts.iter().enumerate().map(|(i, &p)| (key(Some(i)), cell(p))).collect();
        let total = [parts.iter().map(|p| p[0]).sum(), parts.iter().map(|p| p[1]).sum()];
        cells.insert(key(None), cell(total));
        let relation = [(key(None), (0..parts.len()).map(|i| key(Some(i))).collect())];
        protect(&mut cells, &relation, k);
        ((0..parts.len()).map(|i| !cells[&key(Some(i))].shown).collect(), !cells[&key(None)].shown)
    }

    #[test]
    fn the_store_never_gives_away_a_suppressed_camera() {
        // A quiet camera (3) beside a busy one (10): the store's 13 would reveal 13 - 10 = 3, so the busy
        // one goes too and the store stays.
        assert_eq!(store_of(5, &[[3, 3], [10, 10]]), (vec![true, true], false));
        // Two quiet ones (3 + 3 = 6 >= k) hide each other.
        assert_eq!(store_of(5, &[[3, 3], [3, 3], [10, 10]]), (vec![true, true, false], false));
        // The smallest shown camera goes first.
        assert_eq!(store_of(5, &[[2, 2], [7, 7], [6, 6]]), (vec![true, false, true], false));
        // The exits can leak on their own.
        assert_eq!(store_of(5, &[[6, 2], [6, 9]]), (vec![true, true], false));
        // Nothing to leak: zeros are shown, large parts stay.
        assert_eq!(store_of(5, &[[0, 0], [5, 5], [9, 9]]), (vec![false, false, false], false));
        // One camera alone: the store is itself.
        assert_eq!(store_of(5, &[[3, 3]]), (vec![true], true));
        assert_eq!(store_of(5, &[[0, 0], [3, 3]]), (vec![false, true], true));
    }

    proptest! {
        /// Whatever the hours: for every relation, a shown parent minus its shown parts is 0 or k or more
        /// people, and a suppressed parent with people has a suppressed part with people; cells hidden by
        /// their own gate stay hidden.
        #[test]
        fn no_relation_isolates_fewer_than_k(
            k in 2u32..7,
            hours in prop::collection::vec(prop_oneof![3 => 0u64..1, 2 => 1u64..5, 2 => 5u64..15], 1..24),
            offset_days in 0i64..400,
        ) {
            let day = buckets::floor(1_700_000_000_000 + offset_days * 86_400_000, Level::Day);
            let cells = decide(day, &hours, k);
            let from = buckets::floor(day, Level::Week).min(buckets::floor(day, Level::Month));
            let to = buckets::next(buckets::floor(day, Level::Month), Level::Month)
                .max(buckets::next(buckets::floor(day, Level::Week), Level::Week));
            let get = |key: &Key| cells.get(key).copied().unwrap_or(Cell { shown: true, ..Cell::default() });
            for (parent, parts) in relations(&cells, 1, from, to) {
                let p = get(&parent);
                let hidden: u64 = parts.iter().map(get).filter(|c| !c.shown).map(|c| c.tracks[0]).sum();
                if p.shown {
                    prop_assert!(hidden == 0 || hidden >= u64::from(k), "{parent:?}: {hidden} hidden");
                } else if p.tracks[0] > 0 {
                    prop_assert!(hidden > 0, "{parent:?} is the sum of its shown parts");
                }
            }
            for (key, c) in &cells {
                if Gate::new(k, &c.tracks).suppressed() {
                    prop_assert!(!c.shown, "{key:?}");
                }
            }
        }

        /// Whatever the cameras: a shown store minus its shown cameras is 0 or k or more people in each
        /// group, a camera its own gate hid stays hidden, and nothing is hidden when nothing needed to be.
        #[test]
        fn the_store_minus_its_cameras_isolates_no_one(
            k in 2u32..8,
            parts in prop::collection::vec((0u64..12, 0u64..12), 1..8),
        ) {
            let parts: Vec<[u64; 2]> = parts.into_iter().map(|(a, b)| [a, b]).collect();
            let (hidden, store_hidden) = store_of(k, &parts);
            for (p, &h) in parts.iter().zip(&hidden) {
                prop_assert!(h || !Gate::new(k, p).suppressed(), "a camera its gate hides stays hidden");
            }
            if !store_hidden {
                for g in 0..2 {
                    let gone: u64 = parts.iter().zip(&hidden).filter(|(_, h)| **h).map(|(p, _)| p[g]).sum();
                    prop_assert!(gone == 0 || gone >= u64::from(k), "group {} gives away {}", g, gone);
                }
            }
            if parts.iter().all(|p| !Gate::new(k, p).suppressed()) {
                prop_assert!(hidden.iter().all(|h| !h));
            }
        }
    }
}
