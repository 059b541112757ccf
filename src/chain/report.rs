//! `iobox chain report`: every store side by side, from head office's database.
//!
//! Every figure is a sum of figures the stores released (each already k-suppressed by its own box), and
//! k is applied again to every chain-level sum of people: a sum over 1 to k-1 is hidden. A store's day is
//! exactly what that store's own `iobox report` says for the day.

use chrono::{Datelike, Duration, NaiveDate};
use postgres::Client;
use serde::Serialize;

use super::{Result, db};

#[derive(Debug, Clone)]
pub struct ChainReportOptions {
    /// First day, in each store's local time.
    pub from: NaiveDate,
    /// Day after the last.
    pub to: NaiveDate,
    /// k at chain level (default: the largest k any store used in the period, at least 1).
    pub k: Option<u32>,
    /// Zones in the top list.
    pub top: usize,
}

/// One store's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreDay {
    pub store: String,
    pub day: String,
    pub entries: Option<i64>,
    pub exits: Option<i64>,
    pub suppressed: bool,
}

/// The chain's day: the stores' released entries added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainDay {
    pub day: String,
    pub entries: Option<i64>,
    pub stores_reporting: i64,
    /// Stores whose day is hidden by their own box.
    pub stores_hidden: i64,
}

/// One store's ISO week and the week before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreWeek {
    pub store: String,
    /// The Monday.
    pub week: String,
    pub entries: Option<i64>,
    /// The week before: `None` when it has no days or its sum is hidden.
    pub previous: Option<i64>,
    /// `entries / previous - 1`.
    pub change: Option<f64>,
    pub days: i64,
    pub days_hidden: i64,
}

/// A zone name over every store that has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneTotal {
    pub zone: String,
    pub stays: Option<i64>,
    pub mean_stay_s: Option<f64>,
    pub stores: i64,
    pub suppressed: bool,
}

/// A store's queue zone over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreQueue {
    pub store: String,
    pub zone: String,
    pub samples: i64,
    /// Mean wait of the people in the queue (the days' means weighted by people queueing).
    pub mean_wait_s: Option<f64>,
    pub max_wait_s: Option<f64>,
    pub days_hidden: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub server: String,
    pub from: String,
    pub to: String,
    pub k: u32,
    pub stores: Vec<String>,
    pub footfall: Vec<StoreDay>,
    pub chain_per_day: Vec<ChainDay>,
    pub weeks: Vec<StoreWeek>,
    pub top_zones: Vec<ZoneTotal>,
    pub queues: Vec<StoreQueue>,
}

fn gate(k: u32, people: i64) -> bool {
    people == 0 || people >= i64::from(k)
}

pub fn report(client: &mut Client, server: &str, o: &ChainReportOptions) -> Result<ChainReport> {
    let e = db(server);
    let (from, to) = (o.from.to_string(), o.to.to_string());
    let stores: Vec<String> = client
        .query("SELECT store FROM iobox_chain.stores ORDER BY store", &[])
        .map_err(&e)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let k = match o.k {
        Some(k) => k.max(1),
        None => {
            let row = client
                .query_one(
                    "SELECT COALESCE(MAX(k), 1) FROM iobox_chain.facts WHERE local_start >= $1::text::date AND local_start < $2::text::date",
                    &[&from, &to],
                )
                .map_err(&e)?;
            row.get::<_, i32>(0).max(1) as u32
        }
    };
    let footfall: Vec<StoreDay> = client
        .query(
            "SELECT store, day::text, entries, exits, suppressed FROM iobox_chain.footfall_daily
             WHERE day >= $1::text::date AND day < $2::text::date ORDER BY store, day",
            &[&from, &to],
        )
        .map_err(&e)?
        .iter()
        .map(|r| StoreDay { store: r.get(0), day: r.get(1), entries: r.get(2), exits: r.get(3), suppressed: r.get(4) })
        .collect();
    let mut chain_per_day: Vec<ChainDay> = Vec::new();
    for d in &footfall {
        if chain_per_day.last().is_none_or(|c| c.day != d.day) {
            let at = chain_per_day.partition_point(|c| c.day < d.day);
            if chain_per_day.get(at).is_none_or(|c| c.day != d.day) {
                chain_per_day.insert(
                    at,
                    ChainDay { day: d.day.clone(), entries: Some(0), stores_reporting: 0, stores_hidden: 0 },
                );
            }
        }
        let c = chain_per_day.iter_mut().find(|c| c.day == d.day).expect("inserted above");
        c.stores_reporting += 1;
        match d.entries {
            Some(n) if !d.suppressed => c.entries = c.entries.map(|t| t + n),
            _ => c.stores_hidden += 1,
        }
    }
    for c in &mut chain_per_day {
        c.entries = c.entries.filter(|&n| gate(k, n));
    }
    // Weeks from the one before `from` (for the first week's change).
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let first_week = monday(o.from);
    let before = (first_week - Duration::days(7)).to_string();
    let rows = client
        .query(
            "SELECT store, date_trunc('week', day)::date::text AS week,
                    (sum(entries) FILTER (WHERE NOT suppressed))::int8, count(*), count(*) FILTER (WHERE suppressed)
             FROM iobox_chain.footfall_daily WHERE day >= $1::text::date AND day < $2::text::date
             GROUP BY store, week ORDER BY store, week",
            &[&before, &to],
        )
        .map_err(&e)?;
    let mut weeks: Vec<StoreWeek> = Vec::new();
    let mut last: Option<(String, NaiveDate, Option<i64>)> = None;
    for r in &rows {
        let store: String = r.get(0);
        let week_text: String = r.get(1);
        let week = NaiveDate::parse_from_str(&week_text, "%Y-%m-%d").unwrap_or(first_week);
        let entries: Option<i64> = r.get::<_, Option<i64>>(2).filter(|&n| gate(k, n));
        let previous = match &last {
            Some((s, w, n)) if *s == store && *w + Duration::days(7) == week => *n,
            _ => None,
        };
        last = Some((store.clone(), week, entries));
        if week < first_week {
            continue;
        }
        let change = match (entries, previous) {
            (Some(n), Some(p)) if p > 0 => Some(n as f64 / p as f64 - 1.0),
            _ => None,
        };
        weeks.push(StoreWeek {
            store,
            week: week_text,
            entries,
            previous,
            change,
            days: r.get(3),
            days_hidden: r.get(4),
        });
    }
    let top_zones: Vec<ZoneTotal> = client
        .query(
            "SELECT zone, (sum(stays))::int8, (sum(tracks))::int8, count(DISTINCT store),
                    sum(stays * mean_stay_s) / NULLIF(sum(stays), 0)
             FROM iobox_chain.zone_daily WHERE NOT suppressed AND day >= $1::text::date AND day < $2::text::date
             GROUP BY zone ORDER BY 2 DESC, zone LIMIT $3",
            &[&from, &to, &(o.top as i64)],
        )
        .map_err(&e)?
        .iter()
        .map(|r| {
            let shown = gate(k, r.get::<_, Option<i64>>(2).unwrap_or(0));
            ZoneTotal {
                zone: r.get(0),
                stays: r.get::<_, Option<i64>>(1).filter(|_| shown),
                mean_stay_s: r.get::<_, Option<f64>>(4).filter(|_| shown),
                stores: r.get(3),
                suppressed: !shown,
            }
        })
        .collect();
    let queues: Vec<StoreQueue> = client
        .query(
            "SELECT store, zone, COALESCE(sum(samples), 0)::int8,
                    sum(mean_wait_s * mean_length * samples) / NULLIF(sum(mean_length * samples), 0),
                    max(max_wait_s), count(*) FILTER (WHERE suppressed)
             FROM iobox_chain.queue_daily WHERE day >= $1::text::date AND day < $2::text::date
             GROUP BY store, zone ORDER BY store, zone",
            &[&from, &to],
        )
        .map_err(&e)?
        .iter()
        .map(|r| StoreQueue {
            store: r.get(0),
            zone: r.get(1),
            samples: r.get(2),
            mean_wait_s: r.get(3),
            max_wait_s: r.get(4),
            days_hidden: r.get(5),
        })
        .collect();
    Ok(ChainReport {
        server: server.to_string(),
        from,
        to,
        k,
        stores,
        footfall,
        chain_per_day,
        weeks,
        top_zones,
        queues,
    })
}

fn n(v: Option<i64>) -> String {
    v.map_or_else(|| "hidden".to_string(), |n| n.to_string())
}

impl ChainReport {
    /// The report as text for a terminal.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Chain report, {} to {} (days in each store's local time), {} stores, k = {}",
            self.from,
            self.to,
            self.stores.len(),
            self.k
        );
        let _ = writeln!(
            s,
            "\"hidden\": fewer than k people, or hidden by the store so that a small group cannot be worked out.\n"
        );
        let _ = writeln!(s, "Footfall per day, all stores (entries)");
        for d in &self.chain_per_day {
            let _ = writeln!(
                s,
                "  {}  {:>9}  from {} stores{}",
                d.day,
                n(d.entries),
                d.stores_reporting - d.stores_hidden,
                if d.stores_hidden > 0 { format!(" ({} hidden)", d.stores_hidden) } else { String::new() }
            );
        }
        let _ = writeln!(s, "\nFootfall per store per day (entries)");
        for d in &self.footfall {
            let _ = writeln!(s, "  {:<20} {}  {:>7}", d.store, d.day, n(d.entries));
        }
        let _ = writeln!(s, "\nWeek over week (entries, ISO weeks from Monday)");
        for w in &self.weeks {
            let change = w.change.map_or_else(|| "-".into(), |c| format!("{:+.1}%", c * 100.0));
            let _ = writeln!(
                s,
                "  {:<20} {}  {:>7}  previous {:>7}  {:>7}  ({} days, {} hidden)",
                w.store,
                w.week,
                n(w.entries),
                n(w.previous),
                change,
                w.days,
                w.days_hidden
            );
        }
        let _ = writeln!(s, "\nTop zones (stays, all stores)");
        for z in &self.top_zones {
            let mean = z.mean_stay_s.map_or_else(|| "-".into(), |m| format!("{m:.0} s"));
            let _ = writeln!(s, "  {:<20} {:>7}  mean stay {:>6}  in {} stores", z.zone, n(z.stays), mean, z.stores);
        }
        let _ = writeln!(s, "\nQueues (wait of the people queueing)");
        for q in &self.queues {
            let mean = q.mean_wait_s.map_or_else(|| "-".into(), |m| format!("{m:.0} s"));
            let max = q.max_wait_s.map_or_else(|| "-".into(), |m| format!("{m:.0} s"));
            let _ = writeln!(
                s,
                "  {:<20} {:<16} mean {:>6}  max {:>6}  ({} days hidden)",
                q.store, q.zone, mean, max, q.days_hidden
            );
        }
        s
    }
}
