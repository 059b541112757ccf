//! `iobox report`: what a store manager asks of the events, as a terminal table, CSV or JSON.
//!
//! Every figure comes from `store::query` and goes through its one k-anonymity rule: a row about fewer than
//! `k` distinct tracks (the config's `privacy.min_tracks`) is shown as suppressed, never as a number.
//!
//! Times on the command line ([`parse_time`]): RFC 3339 (`2026-11-29T09:00:00+01:00`), a local date
//! (`2026-11-29`: local midnight) or local date and time (`2026-11-29T09:00`, `2026-11-29 09:00`), `now`,
//! `today` (local midnight), or relative to now (`-7d`, `-12h`, `-30m`, `-2w`, `+1h`). Hours in the report
//! are whole UTC hours labelled in local time (the `TZ` variable, else the system's zone).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::JobError;
use crate::behaviour::EMOTIONS;
use crate::store::query::{
    self, FootfallHour, FunnelPair, FunnelStep, JourneyCount, Movement, Period, QueueStats, ShelfInteractions, Visits,
    ZoneDwell, ZoneMood,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One block per section, each after a `#` comment line.
    Csv,
    /// One JSON object.
    Json,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub db: PathBuf,
    pub period: Period,
    /// Suppress rows about fewer distinct tracks than this.
    pub k: u32,
    /// A funnel to follow (zone names in order); without one, every ordered pair of zones.
    pub funnel: Option<Vec<String>>,
    /// How many of the most frequent journeys.
    pub top_journeys: usize,
}

/// Footfall in one hour, with the hour's local label.
#[derive(Debug, Clone, Serialize)]
pub struct Hourly {
    /// Start of the hour, RFC 3339 in local time.
    pub hour: String,
    #[serde(flatten)]
    pub row: FootfallHour,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Funnel {
    /// Every ordered pair of zones some track took.
    Pairs(Vec<FunnelPair>),
    /// The requested sequence.
    Sequence(Vec<FunnelStep>),
}

/// The whole report (`--format json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub database: PathBuf,
    /// RFC 3339, local time; `None`: open-ended.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The period reported: the one asked for, snapped outward to whole buckets.
    pub period: Period,
    /// The buckets the period was snapped to, and the period asked for.
    pub snapped: crate::buckets::Snapped,
    pub k: u32,
    pub cameras: Vec<String>,
    /// Store visits: each person counted once however many cameras saw them.
    pub visits: Visits,
    /// Per camera, then the whole store (`camera: null`).
    pub entries_exits: Vec<Movement>,
    pub footfall_per_hour: Vec<Hourly>,
    pub dwell: Vec<ZoneDwell>,
    pub funnel: Funnel,
    pub queues: Vec<QueueStats>,
    pub interactions: Vec<ShelfInteractions>,
    pub mood: Vec<ZoneMood>,
    pub top_journeys: Vec<JourneyCount>,
}

fn open_end(ms: i64) -> bool {
    ms == i64::MIN || ms == i64::MAX
}

/// Runs every query over the period.
pub fn build(options: &ReportOptions) -> Result<Report, JobError> {
    let conn = crate::store::open_ro(&options.db)?;
    let snapped = snap(options.period);
    let (p, k) = (Period { from_ms: snapped.from_ms, to_ms: snapped.to_ms }, options.k);
    let funnel = match &options.funnel {
        Some(zones) => Funnel::Sequence(query::funnel(&conn, p, k, zones)?),
        None => Funnel::Pairs(query::funnel_pairs(&conn, p, k)?),
    };
    let movements = query::movements(&conn, p, k)?;
    let stamp = |ms: i64| (!open_end(ms)).then(|| local(ms).map(|t| t.to_rfc3339())).flatten();
    Ok(Report {
        database: options.db.clone(),
        from: stamp(p.from_ms),
        to: stamp(p.to_ms),
        period: p,
        snapped,
        k,
        cameras: query::cameras(&conn)?,
        visits: query::visits(&conn, p, k)?,
        entries_exits: movements.entries_exits,
        footfall_per_hour: movements
            .footfall_per_hour
            .into_iter()
            .map(|row| Hourly { hour: local(row.hour_start_ms).map(|t| t.to_rfc3339()).unwrap_or_default(), row })
            .collect(),
        dwell: query::dwell_per_zone(&conn, p, k)?,
        funnel,
        queues: query::queues(&conn, p, k)?,
        interactions: query::interactions(&conn, p, k)?,
        mood: query::mood_per_zone(&conn, p, k)?,
        top_journeys: query::top_journeys(&conn, p, k, options.top_journeys)?,
    })
}

/// Renders the report in `format`.
pub fn render(report: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        ReportFormat::Table => render_table(report),
        ReportFormat::Csv => render_csv(report),
    }
}

// ---- time arguments --------------------------------------------------------------------------------------

pub use crate::when::format_day;
use crate::when::local;

/// A `--from` / `--to` value as ms since the epoch (see [`crate::when::parse_time`]).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, JobError> {
    crate::when::parse_time(s, now_ms).map_err(JobError::Usage)
}

/// The period from `--from` / `--to` (see [`crate::when::period`]).
pub fn period(from: Option<&str>, to: Option<&str>, now_ms: i64, default_from_ms: i64) -> Result<Period, JobError> {
    crate::when::period(from, to, now_ms, default_from_ms).map_err(JobError::Usage)
}

/// A period snapped outward to whole buckets (hours, days, ISO weeks or months by its length): every
/// report, page and export of figures covers whole buckets only.
pub fn snap(p: Period) -> crate::buckets::Snapped {
    crate::buckets::snap(p.from_ms, p.to_ms, crate::store::writer::now_ms())
}

/// How a report says what it covers: "whole days", and what was asked when snapping moved it.
pub fn snapped_note(s: &crate::buckets::Snapped) -> String {
    let whole = format!("whole {}s", s.level.as_str());
    if s.moved() {
        format!(
            "{whole}; asked for {} to {}",
            span(s.requested_from_ms, "the beginning"),
            span(s.requested_to_ms, "the latest event")
        )
    } else {
        whole
    }
}

// ---- sections: one model for the table and CSV renderings ------------------------------------------------

#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    /// The whole store in a camera column.
    AllCameras,
    Int(u64),
    Num(f64),
    Ms(f64),
    Share(f64),
    /// A figure hidden by the k rule.
    Suppressed,
    /// A figure that cannot be trusted (mood where too few faces were read).
    NotRead,
}

struct Row {
    cells: Vec<Cell>,
    suppressed: bool,
}

struct Section {
    /// CSV name; headers are CSV names too (the table shows them with spaces).
    key: &'static str,
    title: String,
    headers: Vec<String>,
    /// How many leading columns are keys (text, left-aligned).
    keys: usize,
    rows: Vec<Row>,
    /// Each suppressed cell stands alone (a matrix), rather than the whole row's figures.
    per_cell: bool,
}

fn figure<T>(v: Option<T>, f: impl FnOnce(T) -> Cell) -> Cell {
    v.map(f).unwrap_or(Cell::Suppressed)
}

fn camera_cell(c: &Option<String>) -> Cell {
    c.as_ref().map(|c| Cell::Text(c.clone())).unwrap_or(Cell::AllCameras)
}

fn section(key: &'static str, title: impl Into<String>, headers: &[&str], keys: usize, rows: Vec<Row>) -> Section {
    Section {
        key,
        title: title.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        keys,
        rows,
        per_cell: false,
    }
}

fn entries_exits_section(r: &Report) -> Section {
    let rows = r
        .entries_exits
        .iter()
        .map(|m| Row {
            cells: vec![
                camera_cell(&m.camera),
                figure(m.entries, Cell::Int),
                figure(m.exits, Cell::Int),
                Cell::Int(m.buckets_suppressed),
            ],
            suppressed: m.suppressed,
        })
        .collect();
    let title = format!(
        "Entries and exits (the sum of the {}s shown; {}s left out are counted, not added)",
        r.snapped.level.as_str(),
        r.snapped.level.as_str()
    );
    section("entries_exits", title, &["camera", "entries", "exits", left_out(r)], 1, rows)
}

/// The column that counts the buckets a row's figures leave out ("hours_suppressed", ...).
fn left_out(r: &Report) -> &'static str {
    match r.snapped.level {
        crate::buckets::Level::Hour => "hours_suppressed",
        crate::buckets::Level::Day => "days_suppressed",
        crate::buckets::Level::Week => "weeks_suppressed",
        crate::buckets::Level::Month => "months_suppressed",
    }
}

/// Table: one row per hour, one column per camera and the store. CSV: one row per hour and camera.
fn footfall_section(r: &Report, matrix: bool) -> Section {
    let title = "Footfall per hour (entries; hours in local time)";
    if !matrix {
        let rows = r
            .footfall_per_hour
            .iter()
            .map(|h| Row {
                cells: vec![Cell::Text(h.hour.clone()), camera_cell(&h.row.camera), figure(h.row.entries, Cell::Int)],
                suppressed: h.row.suppressed,
            })
            .collect();
        return section("footfall_per_hour", title, &["hour", "camera", "entries"], 2, rows);
    }
    // Cameras that saw entries in the period (aisle cameras see none), then the store.
    let mut columns: Vec<Option<String>> = r
        .cameras
        .iter()
        .filter(|c| r.footfall_per_hour.iter().any(|h| h.row.camera.as_ref() == Some(*c)))
        .cloned()
        .map(Some)
        .collect();
    columns.push(None);
    let mut headers = vec!["hour".to_string()];
    headers.extend(columns.iter().map(|c| c.clone().unwrap_or_else(|| "all_cameras".into())));
    let mut rows: Vec<Row> = Vec::new();
    let mut current: Option<i64> = None;
    for h in &r.footfall_per_hour {
        if current != Some(h.row.hour_start_ms) {
            current = Some(h.row.hour_start_ms);
            let mut cells = vec![Cell::Text(format_day(h.row.hour_start_ms))];
            cells.extend(columns.iter().map(|_| Cell::Int(0)));
            rows.push(Row { cells, suppressed: false });
        }
        if let (Some(row), Some(col)) = (rows.last_mut(), columns.iter().position(|c| *c == h.row.camera)) {
            row.cells[col + 1] = figure(h.row.entries, Cell::Int);
            row.suppressed |= h.row.suppressed;
        }
    }
    Section { key: "footfall_per_hour", title: title.into(), headers, keys: 1, rows, per_cell: true }
}

fn dwell_section(r: &Report) -> Section {
    let rows = r
        .dwell
        .iter()
        .map(|d| Row {
            cells: vec![
                Cell::Text(d.zone.clone()),
                figure(d.visits, Cell::Int),
                figure(d.tracks, Cell::Int),
                figure(d.mean_ms, Cell::Ms),
                figure(d.median_ms, Cell::Ms),
                figure(d.p90_ms, |v| Cell::Ms(v as f64)),
                Cell::Int(d.buckets_suppressed),
            ],
            suppressed: d.suppressed,
        })
        .collect();
    section(
        "dwell",
        "Dwell per zone (visits, people, time spent)",
        &["zone", "visits", "tracks", "mean_ms", "median_ms", "p90_ms", left_out(r)],
        1,
        rows,
    )
}

fn funnel_section(r: &Report) -> Section {
    match &r.funnel {
        Funnel::Pairs(pairs) => {
            let rows = pairs
                .iter()
                .map(|p| Row {
                    cells: vec![
                        Cell::Text(p.from.clone()),
                        Cell::Text(p.to.clone()),
                        figure(p.entered, Cell::Int),
                        figure(p.reached, Cell::Int),
                        figure(p.share, Cell::Share),
                        Cell::Int(p.buckets_suppressed),
                    ],
                    suppressed: p.suppressed,
                })
                .collect();
            section(
                "funnel",
                "Funnel: of the people who entered a zone, those who went on to another",
                &["from", "to", "entered", "reached", "share", left_out(r)],
                2,
                rows,
            )
        }
        Funnel::Sequence(steps) => {
            let names: Vec<&str> = steps.iter().map(|s| s.zone.as_str()).collect();
            let rows = steps
                .iter()
                .map(|s| Row {
                    cells: vec![
                        Cell::Int(s.step as u64),
                        Cell::Text(s.zone.clone()),
                        figure(s.tracks, Cell::Int),
                        figure(s.share_of_first, Cell::Share),
                        figure(s.share_of_previous, Cell::Share),
                        Cell::Int(s.buckets_suppressed),
                    ],
                    suppressed: s.suppressed,
                })
                .collect();
            section(
                "funnel",
                format!("Funnel {}", names.join(" > ")),
                &["step", "zone", "tracks", "of_first", "of_previous", left_out(r)],
                2,
                rows,
            )
        }
    }
}

fn queues_section(r: &Report) -> Section {
    let rows = r
        .queues
        .iter()
        .map(|q| Row {
            cells: vec![
                Cell::Text(q.zone.clone()),
                figure(q.samples, Cell::Int),
                figure(q.tracks, Cell::Int),
                figure(q.mean_length, Cell::Num),
                figure(q.max_length, Cell::Int),
                figure(q.mean_wait_ms, Cell::Ms),
                figure(q.max_wait_ms, |v| Cell::Ms(v as f64)),
                Cell::Int(q.buckets_suppressed),
            ],
            suppressed: q.suppressed,
        })
        .collect();
    section(
        "queues",
        "Queues",
        &["zone", "samples", "tracks", "mean_length", "max_length", "mean_wait_ms", "max_wait_ms", left_out(r)],
        1,
        rows,
    )
}

fn interactions_section(r: &Report) -> Section {
    let rows = r
        .interactions
        .iter()
        .map(|i| Row {
            cells: vec![
                Cell::Text(i.zone.clone()),
                figure(i.interactions, Cell::Int),
                figure(i.tracks, Cell::Int),
                figure(i.mean_duration_ms, Cell::Ms),
                Cell::Int(i.buckets_suppressed),
            ],
            suppressed: i.suppressed,
        })
        .collect();
    section(
        "interactions",
        "Shelf interactions",
        &["zone", "interactions", "tracks", "mean_duration_ms", left_out(r)],
        1,
        rows,
    )
}

fn mood_section(r: &Report) -> Section {
    let rows = r
        .mood
        .iter()
        .map(|m| {
            let mut cells = vec![
                Cell::Text(m.zone.clone()),
                figure(m.samples, Cell::Int),
                figure(m.uncertain, Cell::Int),
                figure(m.read_share, Cell::Share),
                figure(m.tracks, Cell::Int),
            ];
            for i in 0..EMOTIONS.len() {
                cells.push(match &m.shares {
                    Some(s) => Cell::Share(s.0[i]),
                    None if m.suppressed => Cell::Suppressed,
                    None => Cell::NotRead,
                });
            }
            cells.push(Cell::Int(m.buckets_suppressed));
            Row { cells, suppressed: m.suppressed }
        })
        .collect();
    let mut headers = vec!["zone", "samples", "uncertain", "read_share", "tracks"];
    headers.extend(EMOTIONS);
    headers.push(left_out(r));
    section(
        "mood",
        format!(
            "Mood per zone (share of each dominant expression among the faces read; samples: track-frames whose \
             face was read, uncertain: seen but too small, turned away or unclear; shares only where {:.0}% \
             or more, and {} or more, were read)",
            query::MIN_READ_SHARE * 100.0,
            query::MIN_READS
        ),
        &headers,
        1,
        rows,
    )
}

fn journeys_section(r: &Report) -> Section {
    let rows = r
        .top_journeys
        .iter()
        .map(|j| Row {
            cells: vec![Cell::Text(j.zones.join(" > ")), figure(j.tracks, Cell::Int), Cell::Int(j.buckets_suppressed)],
            suppressed: j.suppressed,
        })
        .collect();
    section("top_journeys", "Top journeys (zone sequences)", &["zones", "tracks", left_out(r)], 1, rows)
}

/// Each section as its own CSV (header line and rows, as `--format csv` writes them): key, title, text and
/// the number of rows.
pub fn csv_sections(r: &Report) -> Vec<(&'static str, String, String, u64)> {
    sections(r, false)
        .into_iter()
        .map(|s| {
            let mut text = format!("{},suppressed\n", s.headers.join(","));
            for row in &s.rows {
                let cells: Vec<String> = row.cells.iter().map(csv_text).collect();
                let _ = writeln!(text, "{},{}", cells.join(","), row.suppressed);
            }
            (s.key, s.title, text, s.rows.len() as u64)
        })
        .collect()
}

fn visits_section(r: &Report) -> Section {
    let v = &r.visits;
    let row = Row {
        cells: vec![
            figure(v.visits, Cell::Int),
            figure(v.median_duration_ms, Cell::Ms),
            figure(v.p90_duration_ms, |ms| Cell::Ms(ms as f64)),
            figure(v.camera_tracks_per_visit, Cell::Num),
            Cell::Int(v.buckets_suppressed),
        ],
        suppressed: v.suppressed,
    };
    section(
        "visits",
        "Store visits (each person once, however many cameras saw them; duration from first to last sight)",
        &["visits", "median_duration_ms", "p90_duration_ms", "camera_tracks_per_visit", left_out(r)],
        0,
        vec![row],
    )
}

fn sections(r: &Report, matrix: bool) -> Vec<Section> {
    vec![
        visits_section(r),
        entries_exits_section(r),
        footfall_section(r, matrix),
        dwell_section(r),
        funnel_section(r),
        queues_section(r),
        interactions_section(r),
        mood_section(r),
        journeys_section(r),
    ]
}

// ---- table ------------------------------------------------------------------------------------------------

fn human_ms(ms: f64) -> String {
    let s = ms / 1000.0;
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let s = s.round() as i64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = (s / 60.0).round() as i64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

fn table_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::AllCameras => "all cameras".into(),
        Cell::Int(n) => n.to_string(),
        Cell::Num(x) => format!("{x:.1}"),
        Cell::Ms(ms) => human_ms(*ms),
        Cell::Share(x) => format!("{:.0}%", x * 100.0),
        Cell::Suppressed => "suppressed".into(),
        Cell::NotRead => "not readable".into(),
    }
}

fn span(ms: i64, open: &str) -> String {
    if open_end(ms) { open.to_string() } else { hour_label_exact(ms) }
}

fn hour_label_exact(ms: i64) -> String {
    local(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| ms.to_string())
}

fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let offset = local(crate::store::writer::now_ms()).map(|t| t.format("%:z").to_string()).unwrap_or_default();
    let _ = writeln!(out, "iobox report");
    let _ = writeln!(out, "  database  {}", r.database.display());
    let _ = writeln!(
        out,
        "  period    {} to {} (local time, UTC{offset})",
        span(r.period.from_ms, "the beginning"),
        span(r.period.to_ms, "the latest event")
    );
    let _ = writeln!(out, "  buckets   {}", snapped_note(&r.snapped));
    let _ = writeln!(out, "  cameras   {}", if r.cameras.is_empty() { "none".into() } else { r.cameras.join(", ") });
    let _ = writeln!(
        out,
        "  privacy   k = {}: a row about fewer than {} different people is shown as \"suppressed\"",
        r.k, r.k
    );
    for s in sections(r, true) {
        let _ = writeln!(out, "\n{}", s.title);
        if s.rows.is_empty() {
            let _ = writeln!(out, "  (nothing in this period)");
            continue;
        }
        let headers: Vec<String> = s.headers.iter().map(|h| h.replace("_ms", "").replace('_', " ")).collect();
        let cells: Vec<Vec<String>> = s
            .rows
            .iter()
            .map(|row| {
                row.cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        // A suppressed row says so once, in its first figure column.
                        let first = i == s.keys;
                        let repeated = i > 0 && matches!((c, &row.cells[i - 1]), (Cell::NotRead, Cell::NotRead));
                        if (matches!(c, Cell::Suppressed) && !s.per_cell && !first) || repeated {
                            String::new()
                        } else {
                            table_text(c)
                        }
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([headers[i].chars().count()]).max().unwrap_or(0))
            .collect();
        let line = |fields: &[String]| {
            let mut l = String::new();
            for (i, f) in fields.iter().enumerate() {
                let pad = widths[i] - f.chars().count();
                l.push_str("  ");
                if i < s.keys {
                    l.push_str(f);
                    l.push_str(&" ".repeat(pad));
                } else {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(f);
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&headers));
        for row in &cells {
            let _ = writeln!(out, "{}", line(row));
        }
    }
    out
}

// ---- CSV --------------------------------------------------------------------------------------------------

fn csv_text(c: &Cell) -> String {
    let s = match c {
        Cell::Text(s) => s.clone(),
        Cell::AllCameras => "*".into(),
        Cell::Int(n) => n.to_string(),
        Cell::Num(x) => format!("{x:.3}"),
        Cell::Ms(ms) => format!("{ms:.0}"),
        Cell::Share(x) => format!("{x:.4}"),
        Cell::Suppressed | Cell::NotRead => String::new(),
    };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn render_csv(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# iobox report: database {}, period {} to {} (ms {}..{}; {}), k = {}: rows about fewer than k tracks \
         are suppressed (figures empty); camera * = all cameras",
        r.database.display(),
        r.from.as_deref().unwrap_or("beginning"),
        r.to.as_deref().unwrap_or("latest event"),
        r.period.from_ms,
        r.period.to_ms,
        snapped_note(&r.snapped),
        r.k
    );
    for s in sections(r, false) {
        let _ = writeln!(out, "\n# {}: {}", s.key, s.title);
        let _ = writeln!(out, "{},suppressed", s.headers.join(","));
        for row in &s.rows {
            let cells: Vec<String> = row.cells.iter().map(csv_text).collect();
            let _ = writeln!(out, "{},{}", cells.join(","), row.suppressed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Local, NaiveDate, TimeZone};

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn times_in_every_form() {
        assert_eq!(parse_time("now", NOW).unwrap(), NOW);
        assert_eq!(parse_time("-7d", NOW).unwrap(), NOW - 7 * 86_400_000);
        assert_eq!(parse_time("-12h", NOW).unwrap(), NOW - 12 * 3_600_000);
        assert_eq!(parse_time("+30m", NOW).unwrap(), NOW + 30 * 60_000);
        assert_eq!(parse_time("-2w", NOW).unwrap(), NOW - 14 * 86_400_000);
        assert_eq!(parse_time("2027-01-15T08:00:00Z", NOW).unwrap(), 1_800_000_000_000);
        assert_eq!(parse_time("2027-01-15T09:00:00+01:00", NOW).unwrap(), 1_800_000_000_000);
        // Local forms agree with chrono's own local conversion.
        let midnight =
            Local.from_local_datetime(&NaiveDate::from_ymd_opt(2027, 1, 15).unwrap().and_hms_opt(0, 0, 0).unwrap());
        assert_eq!(parse_time("2027-01-15", NOW).unwrap(), midnight.earliest().unwrap().timestamp_millis());
        assert_eq!(
            parse_time("2027-01-15 09:30", NOW).unwrap() - parse_time("2027-01-15T09:00", NOW).unwrap(),
            1_800_000
        );
        let today = parse_time("today", NOW).unwrap();
        assert!(today <= NOW && NOW - today < 25 * 3_600_000);
        for bad in ["yesterday", "-7x", "-d", "2027-13-01", "", "7d"] {
            let e = parse_time(bad, NOW).unwrap_err().to_string();
            assert!(e.contains("is not a time") && e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn periods_default_to_open_ends() {
        let week_ago = NOW - 7 * 86_400_000;
        assert_eq!(period(None, None, NOW, week_ago).unwrap(), Period { from_ms: week_ago, to_ms: i64::MAX });
        assert_eq!(period(None, None, NOW, i64::MIN).unwrap(), Period::ALL);
        assert_eq!(
            period(Some("-1d"), Some("now"), NOW, week_ago).unwrap(),
            Period { from_ms: NOW - 86_400_000, to_ms: NOW }
        );
        let e = period(Some("now"), Some("-1d"), NOW, week_ago).unwrap_err().to_string();
        assert!(e.contains("not before"), "{e}");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human_ms(16_800.0), "16.8 s");
        assert_eq!(human_ms(245_000.0), "4m 05s");
        assert_eq!(human_ms(3_720_000.0), "1h 02m");
        assert_eq!(csv_text(&Cell::Text("a,b".into())), "\"a,b\"");
        assert_eq!(csv_text(&Cell::Suppressed), "");
    }
}
