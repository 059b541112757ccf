//! Fixed, aligned time buckets: every figure iobox releases is about whole hours, local days, ISO weeks
//! (Monday to Sunday) or calendar months, never an arbitrary span, so two reports cannot be cut at
//! different minutes and subtracted.
//!
//! A requested period is snapped outward to whole buckets of one [`Level`], chosen by its length (up to
//! 2 days: hours; up to 62 days: days; up to 53 weeks: weeks; longer: months), and reports say so.
//! Boundaries are local time (the `TZ` variable, else the system's zone); a day across a daylight-saving
//! change is 23 or 25 hours long. Open ends stay open.

use chrono::{DateTime, Datelike, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use serde::Serialize;

/// Bucket sizes, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Hour,
    Day,
    Week,
    Month,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Hour, Level::Day, Level::Week, Level::Month];

    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Hour => "hour",
            Level::Day => "day",
            Level::Week => "week",
            Level::Month => "month",
        }
    }

    /// The level a period of this many milliseconds is reported in.
    pub fn for_span(span_ms: i64) -> Level {
        const H: i64 = 3_600_000;
        if span_ms <= 48 * H {
            Level::Hour
        } else if span_ms <= 62 * 24 * H {
            Level::Day
        } else if span_ms <= 53 * 7 * 24 * H {
            Level::Week
        } else {
            Level::Month
        }
    }
}

/// Earliest and latest instants bucket arithmetic is done on (years 1000 to 9000); beyond, times are
/// clamped, which only matters for open ends.
const MIN_MS: i64 = -30_610_224_000_000;
const MAX_MS: i64 = 221_845_392_000_000;

fn local(ms: i64) -> DateTime<Local> {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    Local.timestamp_millis_opt(ms).single().unwrap_or_else(|| Local.timestamp_millis_opt(0).unwrap())
}

/// The instant of a local wall-clock time: the earlier one when it happens twice, the first instant after
/// a gap when it does not happen.
fn instant(t: NaiveDateTime) -> i64 {
    match Local.from_local_datetime(&t) {
        LocalResult::Single(d) => d.timestamp_millis(),
        LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
        LocalResult::None => {
            let later = t + Duration::hours(1);
            match Local.from_local_datetime(&later) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.timestamp_millis(),
                LocalResult::None => later.and_utc().timestamp_millis(),
            }
        }
    }
}

fn midnight(d: NaiveDate) -> i64 {
    instant(d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The start of the bucket of `level` that holds `ms`.
/// The local wall time at `ms`, as `YYYY-MM-DDTHH:MM:SS` (no zone): what a bucket's start reads as in the
/// store, for readers that group by local day and hour.
pub fn local_wall(ms: i64) -> String {
    local(ms).naive_local().format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub fn floor(ms: i64, level: Level) -> i64 {
    let t = local(ms);
    match level {
        // Whole UTC hours: local hours in every zone with a whole-hour offset, and DST-safe.
        Level::Hour => ms.clamp(MIN_MS, MAX_MS).div_euclid(3_600_000) * 3_600_000,
        Level::Day => midnight(t.date_naive()),
        Level::Week => {
            let d = t.date_naive();
            midnight(d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
        }
        Level::Month => midnight(t.date_naive().with_day(1).expect("day 1 exists")),
    }
}

/// The start of the bucket after the one that starts at `start`.
pub fn next(start: i64, level: Level) -> i64 {
    let t = local(start);
    let d = t.date_naive();
    let n = match level {
        Level::Hour => return start.saturating_add(3_600_000),
        Level::Day => midnight(d + Duration::days(1)),
        Level::Week => midnight(d + Duration::days(7)),
        Level::Month => {
            let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
            midnight(NaiveDate::from_ymd_opt(y, m, 1).expect("day 1 exists"))
        }
    };
    // Never stuck: a bucket is at least an hour long.
    n.max(start.saturating_add(3_600_000))
}

/// The smallest multiple of `level` buckets that covers `ms` from below: `ms` itself on a boundary.
pub fn ceil(ms: i64, level: Level) -> i64 {
    let f = floor(ms, level);
    if f >= ms { f } else { next(f, level) }
}

/// A period as it is reported: the request, and the whole buckets that cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapped {
    pub level: Level,
    /// What was asked, `[from_ms, to_ms)`.
    pub requested_from_ms: i64,
    pub requested_to_ms: i64,
    /// Whole buckets: `from_ms` a bucket start (or open), `to_ms` a bucket start (or open).
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Snapped {
    /// Whether snapping changed the period.
    pub fn moved(&self) -> bool {
        self.from_ms != self.requested_from_ms || self.to_ms != self.requested_to_ms
    }
}

fn open(ms: i64) -> bool {
    ms == i64::MIN || ms == i64::MAX
}

/// Snaps `[from_ms, to_ms)` outward to whole buckets of the level its length asks for (the next level when
/// snapping makes it longer than that level's limit); open ends stay open (an open start is reported in
/// months, an open end in the level its length up to now asks for).
pub fn snap(from_ms: i64, to_ms: i64, now_ms: i64) -> Snapped {
    let span = match (open(from_ms), open(to_ms)) {
        (true, _) => i64::MAX,
        (false, true) => now_ms.saturating_sub(from_ms).max(0),
        (false, false) => to_ms.saturating_sub(from_ms),
    };
    let mut level = Level::for_span(span);
    loop {
        let from = if open(from_ms) { from_ms } else { floor(from_ms, level) };
        let to = if open(to_ms) { to_ms } else { ceil(to_ms, level).max(next(from, level)) };
        // Snapping outward can make the period long enough for the next level: then that one.
        let grown = if open(from) || open(to) { level } else { Level::for_span(to.saturating_sub(from)) };
        if grown <= level {
            return Snapped { level, requested_from_ms: from_ms, requested_to_ms: to_ms, from_ms: from, to_ms: to };
        }
        level = grown;
    }
}

/// The starts of every `level` bucket in `[from_ms, to_ms)` (both bucket starts; at most `max`).
pub fn starts(from_ms: i64, to_ms: i64, level: Level, max: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = floor(from_ms, level);
    while t < to_ms && out.len() < max {
        out.push(t);
        t = next(t, level);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_follow_the_length_asked_for() {
        let h = 3_600_000;
        assert_eq!(Level::for_span(h), Level::Hour);
        assert_eq!(Level::for_span(48 * h), Level::Hour);
        assert_eq!(Level::for_span(7 * 24 * h), Level::Day);
        assert_eq!(Level::for_span(90 * 24 * h), Level::Week);
        assert_eq!(Level::for_span(400 * 24 * h), Level::Month);
    }

    #[test]
    fn a_week_starts_on_monday_and_a_month_on_the_first() {
        // 2026-11-26 is a Thursday.
        let thu = midnight(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()) + 15 * 3_600_000 + 7;
        assert_eq!(local(floor(thu, Level::Week)).date_naive(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(local(floor(thu, Level::Month)).date_naive(), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(
            local(next(floor(thu, Level::Month), Level::Month)).date_naive(),
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
        let dec = midnight(NaiveDate::from_ymd_opt(2026, 12, 10).unwrap());
        assert_eq!(
            local(next(floor(dec, Level::Month), Level::Month)).date_naive(),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        // Thursday 09:17 to 11:40 is snapped to 09:00 to 12:00, and says it moved.
        let s = snap(thu - 6 * 3_600_000 + 17 * 60_000, thu - 4 * 3_600_000 + 40 * 60_000, thu);
        assert_eq!(s.level, Level::Hour);
        assert_eq!(s.to_ms - s.from_ms, 3 * 3_600_000);
        assert!(s.moved());
        let again = snap(s.from_ms, s.to_ms, thu);
        assert!(!again.moved(), "whole buckets stay as they are");
        assert_eq!(snap(i64::MIN, i64::MAX, thu).from_ms, i64::MIN);
    }

    proptest! {
        #[test]
        fn buckets_tile_time(ms in -2_000_000_000_000i64..4_000_000_000_000i64, l in 0usize..4) {
            let level = Level::ALL[l];
            let f = floor(ms, level);
            let n = next(f, level);
            prop_assert!(f <= ms && ms < n, "{f} <= {ms} < {n}");
            prop_assert_eq!(floor(f, level), f);
            prop_assert_eq!(floor(n, level), n);
            prop_assert_eq!(floor(n - 1, level), f);
            // Coarser buckets start on finer bucket boundaries (weeks and months on days, days on hours).
            if level != Level::Hour {
                prop_assert_eq!(floor(f, Level::Day), f);
            }
        }

        #[test]
        fn snapping_covers_the_request_with_whole_buckets(
            from in -2_000_000_000_000i64..4_000_000_000_000i64,
            len in 1i64..40_000_000_000,
        ) {
            let to = from.saturating_add(len);
            let s = snap(from, to, to);
            prop_assert!(s.from_ms <= from && s.to_ms >= to);
            prop_assert_eq!(floor(s.from_ms, s.level), s.from_ms);
            prop_assert_eq!(floor(s.to_ms, s.level), s.to_ms);
            prop_assert_eq!(snap(s.from_ms, s.to_ms, to).from_ms, s.from_ms);
        }
    }
}
