//! Zone figures as they may be released: dwell, funnels, journeys, queues, shelf interactions, mood and
//! heatmap cells, each decided per **series** (a zone, a zone pair, a funnel step, a journey, a heat cell)
//! in fixed buckets ([`crate::buckets`]), as entries and exits are in [`super::released`].
//!
//! A series is a stream of person rows: who (a track, or a track token) was seen in it when. For every
//! hour, day, week and month with rows, the bucket is **suppressed** when it holds 1 to k-1 distinct
//! people. Then, along every sum a reader could subtract (a day = its hours, a week and a month = their
//! days), until nothing changes: a shown parent whose suppressed parts hold 1 to k-1 distinct people
//! together (the parent minus its shown parts would be about them) has its smallest shown part with people
//! suppressed too, or itself when none is left. (A suppressed parent has fewer than k people, so each of
//! its parts has too: its parts are all suppressed and cannot add up to it.)
//!
//! A report over a period at one level ([`crate::buckets::snap`]) then computes a series' figures from the
//! rows of its shown buckets only, and says how many buckets with people it left out: two reports can only
//! differ by whole released buckets. The decision of a bucket depends only on the rows of its series in the
//! weeks and months around it, never on what was asked.

use crate::buckets::{self, Level, Snapped};

use super::query::Period;

/// A request snapped to whole buckets, and the stretch of time whose rows decide its buckets: the whole
/// weeks and months around it (a day's decision depends on its week and its month).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub snapped: Snapped,
    /// `[from_ms, to_ms)`: the rows to read.
    pub from_ms: i64,
    pub to_ms: i64,
}

fn open(ms: i64) -> bool {
    ms == i64::MIN || ms == i64::MAX
}

impl Window {
    pub fn new(period: Period, now_ms: i64) -> Window {
        let snapped = buckets::snap(period.from_ms, period.to_ms, now_ms);
        let from_ms = if open(snapped.from_ms) {
            snapped.from_ms
        } else {
            buckets::floor(snapped.from_ms, Level::Week).min(buckets::floor(snapped.from_ms, Level::Month))
        };
        let to_ms = if open(snapped.to_ms) {
            snapped.to_ms
        } else {
            let last = snapped.to_ms - 1;
            let w = buckets::next(buckets::floor(last, Level::Week), Level::Week);
            let m = buckets::next(buckets::floor(last, Level::Month), Level::Month);
            w.max(m)
        };
        Window { snapped, from_ms, to_ms }
    }

    /// The snapped period the figures are about.
    pub fn period(&self) -> Period {
        Period { from_ms: self.snapped.from_ms, to_ms: self.snapped.to_ms }
    }

    /// Whether `ts_ms` lies in the snapped period.
    pub fn holds(&self, ts_ms: i64) -> bool {
        ts_ms >= self.snapped.from_ms && ts_ms < self.snapped.to_ms
    }
}

/// One bucket of one level in a series.
#[derive(Debug, Clone)]
struct Bucket {
    start_ms: i64,
    end_ms: i64,
    /// Distinct people, sorted.
    people: Vec<u64>,
    shown: bool,
}

/// The decision for one series: which of its buckets at the period's level are shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decision {
    /// The period's level buckets with people, in time order: (start, end, shown).
    buckets: Vec<(i64, i64, bool)>,
    /// Buckets in the period with people.
    pub with_people: u64,
    /// Of those, suppressed.
    pub suppressed: u64,
}

impl Decision {
    /// Whether a row at `ts_ms` counts: its bucket is shown, or holds no one (a queue sample in an hour
    /// without people).
    pub fn shows(&self, ts_ms: i64) -> bool {
        let i = self.buckets.partition_point(|b| b.0 <= ts_ms);
        i == 0 || {
            let (_, end, shown) = self.buckets[i - 1];
            ts_ms >= end || shown
        }
    }

    /// Nothing about anyone is shown: every bucket with people is suppressed.
    pub fn all_suppressed(&self) -> bool {
        self.with_people > 0 && self.suppressed == self.with_people
    }
}

/// Decides series ([`Decider::decide`]), or a whole and its parts ([`Decider::decide_family`]), reusing its
/// buffers.
#[derive(Debug, Default)]
pub(crate) struct Decider {
    /// Per member (0: the series, or the whole of a family; 1..: its parts), per level, its buckets.
    members: Vec<[Vec<Bucket>; 4]>,
    hidden: Vec<u64>,
    scratch: Vec<(i64, u64)>,
    /// Part buckets of one whole bucket: (part, index).
    at: Vec<(usize, usize)>,
}

fn level_index(level: Level) -> usize {
    Level::ALL.iter().position(|&l| l == level).expect("every level is in ALL")
}

/// Fills `levels` with the buckets of `rows` (in time order), each gated on its own.
fn load(levels: &mut [Vec<Bucket>; 4], rows: &[(i64, u64)], k: u32) {
    for (li, level) in Level::ALL.into_iter().enumerate() {
        let cells = &mut levels[li];
        cells.clear();
        for &(ts, person) in rows {
            match cells.last_mut() {
                Some(b) if ts < b.end_ms => b.people.push(person),
                _ => {
                    let start_ms = buckets::floor(ts, level);
                    let end_ms = buckets::next(start_ms, level);
                    cells.push(Bucket { start_ms, end_ms, people: vec![person], shown: true });
                }
            }
        }
        for b in cells.iter_mut() {
            b.people.sort_unstable();
            b.people.dedup();
            b.shown = !(1..k as usize).contains(&b.people.len());
        }
    }
}

/// The union of the people of the hidden buckets among `parts`, in `hidden`; its size.
fn hidden_people<'a>(parts: impl Iterator<Item = &'a Bucket>, hidden: &mut Vec<u64>) -> usize {
    hidden.clear();
    for c in parts.filter(|c| !c.shown) {
        hidden.extend_from_slice(&c.people);
    }
    hidden.sort_unstable();
    hidden.dedup();
    hidden.len()
}

/// The part to hide next: the smallest shown one with people (then the earliest).
fn smallest_shown<'a>(parts: impl Iterator<Item = &'a Bucket>) -> Option<usize> {
    parts
        .enumerate()
        .filter(|(_, c)| c.shown && !c.people.is_empty())
        .min_by_key(|(i, c)| (c.people.len(), c.start_ms, *i))
        .map(|(i, _)| i)
}

/// When the shown `whole` minus its shown `parts` would be 1 to k-1 people (the union of the hidden
/// parts'), hides the smallest shown part with people, or the whole when none is left. Whether it hid
/// anything.
fn hide_one(whole: &mut Bucket, parts: &mut [Bucket], hidden: &mut Vec<u64>, k: usize) -> bool {
    if !whole.shown || !(1..k).contains(&hidden_people(parts.iter(), hidden)) {
        return false;
    }
    match smallest_shown(parts.iter()) {
        Some(i) => parts[i].shown = false,
        None => whole.shown = false,
    }
    true
}

impl Decider {
    /// Decides the buckets of one series from its person rows `(ts_ms, person)` inside `window` (any order;
    /// sorted here), for the window's period at its level.
    pub fn decide(&mut self, window: &Window, rows: &mut [(i64, u64)], k: u32) -> Decision {
        rows.sort_unstable();
        self.members.resize_with(1, Default::default);
        load(&mut self.members[0], rows, k);
        self.protect(k);
        self.decision(0, window)
    }

    /// Decides a whole and its parts together (a heat cell of the whole store and of each of its cameras):
    /// `rows` are `(member, ts_ms, person)`, member 0 the whole's own rows and 1..=`parts` each part's.
    /// Besides each member's days, weeks and months, in every bucket the whole minus its shown parts
    /// isolates no one. Decisions come back whole first, then part by part.
    pub fn decide_family(
        &mut self,
        window: &Window,
        rows: &mut [(u32, i64, u64)],
        parts: usize,
        k: u32,
    ) -> Vec<Decision> {
        rows.sort_unstable();
        self.members.resize_with(parts + 1, Default::default);
        for member in 0..=parts {
            let lo = rows.partition_point(|r| (r.0 as usize) < member);
            let hi = rows.partition_point(|r| (r.0 as usize) <= member);
            self.scratch.clear();
            self.scratch.extend(rows[lo..hi].iter().map(|r| (r.1, r.2)));
            load(&mut self.members[member], &self.scratch, k);
        }
        self.protect(k);
        (0..=parts).map(|m| self.decision(m, window)).collect()
    }

    fn decision(&self, member: usize, window: &Window) -> Decision {
        let mut d = Decision::default();
        for b in &self.members[member][level_index(window.snapped.level)] {
            d.buckets.push((b.start_ms, b.end_ms, b.shown));
            if window.holds(b.start_ms) {
                d.with_people += 1;
                d.suppressed += u64::from(!b.shown);
            }
        }
        d
    }

    /// Suppresses buckets until no day, week or month minus its shown parts, and no whole minus its shown
    /// parts, isolates 1 to k-1 people.
    fn protect(&mut self, k: u32) {
        let k = k as usize;
        let relations = [(Level::Day, Level::Hour), (Level::Week, Level::Day), (Level::Month, Level::Day)];
        loop {
            let mut changed = false;
            for levels in self.members.iter_mut() {
                for (parent, child) in relations {
                    let (pi, ci) = (level_index(parent), level_index(child));
                    let (parents, children) = if pi < ci {
                        let (a, b) = levels.split_at_mut(ci);
                        (&mut a[pi], &mut b[0])
                    } else {
                        let (a, b) = levels.split_at_mut(pi);
                        (&mut b[0], &mut a[ci])
                    };
                    for p in parents.iter_mut() {
                        let lo = children.partition_point(|c| c.start_ms < p.start_ms);
                        let hi = children.partition_point(|c| c.start_ms < p.end_ms);
                        changed |= hide_one(p, &mut children[lo..hi], &mut self.hidden, k);
                    }
                }
            }
            if self.members.len() > 1 {
                changed |= self.protect_wholes(k);
            }
            if !changed {
                return;
            }
        }
    }

    /// The whole-and-parts relation of a family, in every bucket of every level.
    fn protect_wholes(&mut self, k: usize) -> bool {
        let mut changed = false;
        let (whole, members) = self.members.split_first_mut().expect("a family has a whole");
        for (li, wholes) in whole.iter_mut().enumerate() {
            for w in wholes.iter_mut().filter(|w| w.shown) {
                // The part buckets at the same start: (member, index).
                self.at.clear();
                for (m, levels) in members.iter().enumerate() {
                    let cells = &levels[li];
                    let i = cells.partition_point(|c| c.start_ms < w.start_ms);
                    if cells.get(i).is_some_and(|c| c.start_ms == w.start_ms) {
                        self.at.push((m, i));
                    }
                }
                let parts = self.at.iter().map(|&(m, i)| &members[m][li][i]);
                if !(1..k).contains(&hidden_people(parts, &mut self.hidden)) {
                    continue;
                }
                match smallest_shown(self.at.iter().map(|&(m, i)| &members[m][li][i])) {
                    Some(j) => {
                        let (m, i) = self.at[j];
                        members[m][li][i].shown = false;
                    }
                    None => w.shown = false,
                }
                changed = true;
            }
        }
        changed
    }
}

/// Decides many series at once: `rows` are `(series, ts_ms, person)` with series ids below `series`; one
/// [`Decision`] per id comes back (the default, nothing suppressed, for an id without rows).
pub(crate) fn decide_all(window: &Window, rows: &mut [(u32, i64, u64)], series: usize, k: u32) -> Vec<Decision> {
    rows.sort_unstable();
    let mut out = vec![Decision::default(); series];
    let mut decider = Decider::default();
    let mut scratch: Vec<(i64, u64)> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let id = rows[i].0;
        let j = i + rows[i..].partition_point(|r| r.0 == id);
        scratch.clear();
        scratch.extend(rows[i..j].iter().map(|r| (r.1, r.2)));
        if let Some(d) = out.get_mut(id as usize) {
            *d = decider.decide(window, &mut scratch, k);
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000;

    fn monday() -> i64 {
        // 2026-11-23 (a Monday), local midnight.
        buckets::floor(buckets::floor(1_763_900_000_000, Level::Week) + 36 * H, Level::Day)
    }

    /// One series with `hours[i]` new people in hour i of `day`, each seen twice in the hour.
    fn rows_of(day: i64, hours: &[u64], first_person: u64) -> Vec<(i64, u64)> {
        let mut rows = Vec::new();
        let mut p = first_person;
        for (i, &n) in hours.iter().enumerate() {
            for _ in 0..n {
                rows.push((day + i as i64 * H + 60_000, p));
                rows.push((day + i as i64 * H + 120_000, p));
                p += 1;
            }
        }
        rows
    }

    fn window(from: i64, to: i64) -> Window {
        Window::new(Period { from_ms: from, to_ms: to }, to)
    }

    #[test]
    fn a_day_minus_its_shown_hours_gives_no_one_away() {
        let day = monday() + 24 * H;
        let mut rows = rows_of(day, &[10, 12, 2], 0);
        let hours = window(day, day + 24 * H);
        let d = Decider::default().decide(&hours, &mut rows, 5);
        // 2 alone in hour 2: hidden; the day minus hours 0 and 1 would be those 2, so hour 0 goes too.
        assert_eq!(
            (d.shows(day + 60_000), d.shows(day + H + 60_000), d.shows(day + 2 * H + 60_000)),
            (false, true, false)
        );
        assert_eq!((d.with_people, d.suppressed), (3, 2));
        let days = window(day, day + 3 * 24 * H);
        assert_eq!(days.snapped.level, Level::Day);
        let d = Decider::default().decide(&days, &mut rows, 5);
        assert!(d.shows(day + 2 * H + 60_000), "the day as a whole is shown");
        // The same person in two hidden hours counts once: 3 people in hours 1 and 2 (each hidden alone)
        // beside 10 in hour 0: hiding hours 1 and 2 leaves 3 people to be found by subtraction.
        let mut rows = rows_of(day, &[10], 0);
        for p in 100..103 {
            rows.push((day + H + 5, p));
            rows.push((day + 2 * H + 5, p));
        }
        let d = Decider::default().decide(&hours, &mut rows, 5);
        assert!(!d.shows(day + 60_000), "hour 0 must go: the day minus it is 3 people");
    }

    #[test]
    fn nothing_is_hidden_that_need_not_be() {
        let day = monday();
        let mut rows = rows_of(day, &[10, 12, 5], 0);
        let d = Decider::default().decide(&window(day, day + 24 * H), &mut rows, 5);
        assert_eq!(d.suppressed, 0);
        assert!(!d.all_suppressed());
        let mut none: Vec<(i64, u64)> = Vec::new();
        let d = Decider::default().decide(&window(day, day + 24 * H), &mut none, 5);
        assert_eq!((d.with_people, d.suppressed), (0, 0));
        assert!(d.shows(day), "a bucket with no one in it hides nothing");
    }

    #[test]
    fn series_are_decided_apart() {
        let day = monday();
        let mut rows: Vec<(u32, i64, u64)> =
            rows_of(day, &[10, 12, 2], 0).into_iter().map(|(t, p)| (1, t, p)).collect();
        rows.extend(rows_of(day, &[6, 6, 6], 0).into_iter().map(|(t, p)| (0, t, p)));
        let d = decide_all(&window(day, day + 24 * H), &mut rows, 3, 5);
        assert_eq!((d[0].suppressed, d[1].suppressed, d[2].with_people), (0, 2, 0));
    }

    #[test]
    fn a_whole_minus_a_shown_part_gives_no_part_away() {
        let day = monday();
        // Hour 9: part 0 has 10 people, part 1 has 2: the whole (12) minus part 0 would be part 1's 2.
        let mut rows: Vec<(u32, i64, u64)> = (0..10).map(|p| (1, day + 9 * H, p)).collect();
        rows.extend((100..102).map(|p| (2, day + 9 * H, p)));
        let whole: Vec<(u32, i64, u64)> = rows.iter().map(|r| (0, r.1, r.2)).collect();
        rows.extend(whole);
        let w = window(day + 9 * H, day + 10 * H);
        let d = Decider::default().decide_family(&w, &mut rows, 2, 5);
        let at = day + 9 * H;
        assert_eq!((d[0].shows(at), d[1].shows(at), d[2].shows(at)), (true, false, false));
        // Three more people on part 1: both parts stand on their own.
        rows.extend((102..105).flat_map(|p| [(2, day + 9 * H, p), (0, day + 9 * H, p)]));
        let d = Decider::default().decide_family(&w, &mut rows, 2, 5);
        assert_eq!((d[0].shows(at), d[1].shows(at), d[2].shows(at)), (true, true, true));
    }

    proptest! {
        /// Whatever the people: in every day, week and month of the series, a shown parent minus its shown
        /// parts is 0 or k or more distinct people; a bucket with 1 to k-1 people is never shown.
        #[test]
        fn no_parent_minus_its_parts_isolates_fewer_than_k(
            k in 2u32..7,
            seen in prop::collection::vec((0i64..(30 * 24), 0u64..40), 0..200),
            offset_days in 0i64..60,
        ) {
            let start = monday() + offset_days * 24 * H;
            let mut rows: Vec<(i64, u64)> = seen.iter().map(|&(h, p)| (start + h * H + 1000, p)).collect();
            for level_span in [24 * H, 10 * 24 * H, 90 * 24 * H] {
                let w = window(start, start + level_span);
                let mut decider = Decider::default();
                decider.decide(&w, &mut rows, k);
                let k = k as usize;
                for li in 0..4 {
                    for b in &decider.members[0][li] {
                        prop_assert!(!b.shown || !(1..k).contains(&b.people.len()));
                    }
                }
                for (pi, ci) in [(1, 0), (2, 1), (3, 1)] {
                    for p in decider.members[0][pi].iter().filter(|p| p.shown) {
                        let mut hidden: Vec<u64> = decider.members[0][ci]
                            .iter()
                            .filter(|c| c.start_ms >= p.start_ms && c.start_ms < p.end_ms && !c.shown)
                            .flat_map(|c| c.people.iter().copied())
                            .collect();
                        hidden.sort_unstable();
                        hidden.dedup();
                        prop_assert!(!(1..k).contains(&hidden.len()), "{} hidden under a shown parent", hidden.len());
                    }
                }
            }
        }
    }

    proptest! {
        /// Whatever the parts: in every bucket of every level, a shown whole minus its shown parts is 0 or k
        /// or more distinct people, and each part's days, weeks and months hold as a series alone does.
        #[test]
        fn no_whole_minus_its_parts_isolates_fewer_than_k(
            k in 2u32..7,
            seen in prop::collection::vec((0u32..3, 0i64..(10 * 24), 0u64..30), 0..150),
        ) {
            let start = monday();
            let mut rows: Vec<(u32, i64, u64)> = seen
                .iter()
                .flat_map(|&(c, h, p)| {
                    let person = p + 100 * u64::from(c);
                    [(1 + c, start + h * H + 1000, person), (0, start + h * H + 1000, person)]
                })
                .collect();
            let w = window(start, start + 10 * 24 * H);
            let mut decider = Decider::default();
            decider.decide_family(&w, &mut rows, 3, k);
            let k = k as usize;
            for li in 0..4 {
                for whole in decider.members[0][li].iter().filter(|b| b.shown) {
                    let mut hidden: Vec<u64> = decider.members[1..]
                        .iter()
                        .flat_map(|m| m[li].iter())
                        .filter(|c| c.start_ms == whole.start_ms && !c.shown)
                        .flat_map(|c| c.people.iter().copied())
                        .collect();
                    hidden.sort_unstable();
                    hidden.dedup();
                    prop_assert!(!(1..k).contains(&hidden.len()), "level {li}: {} hidden under a shown whole", hidden.len());
                }
                for m in &decider.members {
                    for b in &m[li] {
                        prop_assert!(!b.shown || !(1..k).contains(&b.people.len()));
                    }
                }
            }
        }
    }
}
