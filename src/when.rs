//! Times as people write them on the command line and in the dashboard's addresses: `--from`, `--to`,
//! `?from=`, `?to=` (RFC 3339, a local date or date and time, now, today, or relative to now), and the local
//! day a report prints. Local time is the `TZ` variable, else the system's zone.

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone};

use crate::store::query::Period;

pub fn local(ms: i64) -> Option<DateTime<Local>> {
    Local.timestamp_millis_opt(ms).single()
}

pub fn local_naive(t: NaiveDateTime) -> Option<i64> {
    match Local.from_local_datetime(&t) {
        LocalResult::Single(d) => Some(d.timestamp_millis()),
        LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
        // In a DST gap: the first instant after it.
        LocalResult::None => {
            Local.from_local_datetime(&(t + chrono::Duration::hours(1))).earliest().map(|d| d.timestamp_millis())
        }
    }
}

/// `YYYY-MM-DD HH:MM` in local time, for titles.
pub fn format_day(ms: i64) -> String {
    local(ms).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| ms.to_string())
}

/// A `--from` / `--to` value as ms since the epoch (see the module docs for the forms).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a time: use RFC 3339 (2026-11-29T09:00:00+01:00), a local date (2026-11-29) or date and \
             time (2026-11-29T09:00), now, today, or a time relative to now (-7d, -12h, -30m, -2w, +1h)"
        )
    };
    if t == "now" {
        return Ok(now_ms);
    }
    if t == "today" {
        let today = local(now_ms).ok_or_else(bad)?.date_naive();
        return local_naive(today.and_hms_opt(0, 0, 0).ok_or_else(bad)?).ok_or_else(bad);
    }
    if let Some((sign, rest)) = t.strip_prefix('-').map(|r| (-1, r)).or_else(|| t.strip_prefix('+').map(|r| (1, r))) {
        let split = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (digits, unit) = rest.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let unit_ms = match unit {
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        return n.checked_mul(unit_ms).and_then(|d| now_ms.checked_add(sign * d)).ok_or_else(bad);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local_naive(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?).ok_or_else(bad);
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return local_naive(d).ok_or_else(bad);
        }
    }
    Err(bad())
}

/// The period from `--from` / `--to`: without `--from` from `default_from_ms` (`iobox report`: 7 days ago),
/// without `--to` open-ended (a file processed faster than real time is stamped by its own clock, ahead of
/// the wall clock).
pub fn period(from: Option<&str>, to: Option<&str>, now_ms: i64, default_from_ms: i64) -> Result<Period, String> {
    let from_ms = match from {
        Some(s) => parse_time(s, now_ms)?,
        None => default_from_ms,
    };
    let to_ms = match to {
        Some(s) => parse_time(s, now_ms)?,
        None => i64::MAX,
    };
    if from_ms >= to_ms {
        return Err(format!("--from {} is not before --to {}", from.unwrap_or("(default)"), to.unwrap_or("")));
    }
    Ok(Period { from_ms, to_ms })
}
