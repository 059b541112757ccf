//! Read-only report queries, every figure behind the same k-anonymity rule.
//!
//! Open the database with [`super::open_ro`], pick a [`Period`] and `k` (the config's `privacy.min_tracks`),
//! and ask. Each function returns rows whose figures are `Option`s and a `suppressed` flag.
//!
//! # The rule
//! A row is **suppressed** when some group of people it counts has between 1 and `k - 1` distinct tracks:
//! then every figure of the row is `None` (JSON `null`, `"suppressed": true`) and only its key (zone, hour,
//! camera) is shown. A group of 0 tracks describes no one and is shown as 0. [`Gate`] is the rule; every
//! query goes through it. The groups of each row are listed on its type; most rows count one group.
//!
//! Distinct tracks are counted over `events` and `journeys`. `mood` and `heat` rows are per-bucket
//! aggregates with no track ids; each holds its tracks as 16-bit tokens keyed per run and per zone or cell
//! (`behaviour::TrackTokens`), and their groups are the size of the union of the tokens over the buckets:
//! the distinct tracks, or fewer when two tracks share a token (rare), never more, so a person present in
//! many buckets counts once. Rows written before tokens existed (schema version 3) count as their largest
//! per-bucket `tracks`, also never more than the distinct tracks.
//!
//! Entries and exits ([`movements`]) come in fixed buckets decided once per bucket and camera, and no
//! released figure can be subtracted from another (the store from its cameras, a day from its hours, a week
//! or month from its days) to isolate 1 to k-1 people: see [`super::released`]. Every zone figure (dwell,
//! funnels, journeys, queues, interactions, mood, heat cells) is decided the same way per series and bucket
//! along days, weeks and months ([`super::series`]) and made of its shown buckets only, with the number of
//! buckets left out (`buckets_suppressed`).
//!
//! Rows are taken by time: events by `ts_ms`, journeys by `start_ms`, samples by `ts_ms`, mood and heat by
//! `bucket_start_ms`, always `from_ms <= t < to_ms`.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use rusqlite::{Connection, params};
use serde::{Serialize, Serializer};

use super::series::{self, Decision, Window};
use super::{Error, Result};
use crate::behaviour::EMOTIONS;

/// A time range `[from_ms, to_ms)`, milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Period {
    /// Everything ever stored.
    pub const ALL: Period = Period { from_ms: i64::MIN, to_ms: i64::MAX };
}

/// The one suppression rule (see the module docs): built from the distinct-track counts of the groups a
/// row counts, it shows the row's figures or hides them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    shown: bool,
}

impl Gate {
    pub fn new(k: u32, groups: &[u64]) -> Gate {
        Gate { shown: groups.iter().all(|&g| g == 0 || g >= u64::from(k)) }
    }

    /// `Some(v)` when the row is shown.
    pub fn show<T>(&self, v: T) -> Option<T> {
        self.shown.then_some(v)
    }

    pub fn suppressed(&self) -> bool {
        !self.shown
    }
}

/// Entries in one hour. Group: the entering tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FootfallHour {
    /// Start of the hour (a whole UTC hour), ms.
    pub hour_start_ms: i64,
    /// `None`: the whole store (every camera).
    pub camera: Option<String>,
    pub entries: Option<u64>,
    pub suppressed: bool,
}

/// Entries and exits over the period: the sum of its buckets' released figures. Groups: entering tracks,
/// exiting tracks, per bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movement {
    /// `None`: the whole store.
    pub camera: Option<String>,
    pub entries: Option<u64>,
    pub exits: Option<u64>,
    /// Every bucket with people in it is suppressed.
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// Stays in a zone (`zone_exited` events). Group: the tracks that stayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneDwell {
    pub zone: String,
    pub visits: Option<u64>,
    pub tracks: Option<u64>,
    pub mean_ms: Option<f64>,
    /// Mean of the two middle values when the count is even.
    pub median_ms: Option<f64>,
    /// Nearest rank.
    pub p90_ms: Option<i64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// Of the tracks that entered `from`, those that entered `to` later. Groups: both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelPair {
    pub from: String,
    pub to: String,
    pub entered: Option<u64>,
    pub reached: Option<u64>,
    /// `reached / entered`.
    pub share: Option<f64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// One step of a requested funnel: the tracks that entered every zone up to this one, in order. Group:
/// those tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    pub step: usize,
    pub zone: String,
    pub tracks: Option<u64>,
    pub share_of_first: Option<f64>,
    pub share_of_previous: Option<f64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// A queue zone's samples. Group: the tracks with zone events in the zone (samples carry no tracks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub zone: String,
    pub samples: Option<u64>,
    pub tracks: Option<u64>,
    pub mean_length: Option<f64>,
    pub max_length: Option<u64>,
    /// Mean wait of the people in the queue over all samples (sample means weighted by length).
    pub mean_wait_ms: Option<f64>,
    pub max_wait_ms: Option<i64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// Shelf interactions in a zone. Group: the interacting tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShelfInteractions {
    pub zone: String,
    pub interactions: Option<u64>,
    pub tracks: Option<u64>,
    pub mean_duration_ms: Option<f64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// Dominant-expression counts, one per class of [`EMOTIONS`]; serializes as an object keyed by class.
#[derive(Debug, Clone, PartialEq)]
pub struct PerEmotion<T>(pub [T; 7]);

impl<T: Serialize> Serialize for PerEmotion<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(7))?;
        for (name, v) in EMOTIONS.iter().zip(&self.0) {
            m.serialize_entry(name, v)?;
        }
        m.end()
    }
}

/// Expressions in a zone. Group: the distinct tracks over its buckets (by their tokens), whose faces
/// were seen, read or not.
///
/// The figures per expression are shown only where mood can be read ([`ZoneMood::readable`]): at least
/// [`MIN_READ_SHARE`] of the faces seen were read, and at least [`MIN_READS`] of them. Elsewhere the
/// row says how many faces were seen and what share could be read, and nothing about what they showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneMood {
    pub zone: String,
    /// Track-frames whose face was read.
    pub samples: Option<u64>,
    /// Track-frames whose face was seen but not read (too small, turned away, not surely a face, or the
    /// model unsure).
    pub uncertain: Option<u64>,
    /// `samples / (samples + uncertain)`.
    pub read_share: Option<f64>,
    pub tracks: Option<u64>,
    /// Enough faces were read for the shares to mean something.
    pub readable: bool,
    pub counts: Option<PerEmotion<u64>>,
    pub shares: Option<PerEmotion<f64>>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// Below this share of faces read, a zone's mood is not shown.
pub const MIN_READ_SHARE: f64 = 0.5;
/// Below this many faces read, a zone's mood is not shown.
pub const MIN_READS: u64 = 20;

/// A sequence of zones and the tracks that took exactly it. Group: those tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyCount {
    pub zones: Vec<String>,
    pub tracks: Option<u64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// A heatmap cell `[cx, cx+1) x [cy, cy+1)` in units of `cell_m` metres on the floor plan. Group: the
/// distinct tracks over its buckets (by their tokens; over all cameras, each camera's tracks are its own).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatCell {
    pub cell_m: f64,
    pub cx: i64,
    pub cy: i64,
    /// Track-frames in the cell.
    pub presence: Option<u64>,
    pub dwell_ms: Option<i64>,
    pub tracks: Option<u64>,
    pub suppressed: bool,
    /// Buckets with people left out of the figures (suppressed, or hidden so as not to give another away).
    pub buckets_suppressed: u64,
}

/// The `track_tokens` column, or `NULL` in a database from before it existed (read-only connections do not
/// migrate).
fn tokens_column(conn: &Connection) -> Result<&'static str> {
    let version = super::schema::version(conn).map_err(err(conn))?;
    Ok(if version >= 4 { "track_tokens" } else { "NULL" })
}

/// The mood table's `uncertain` column, or `0` in a database from before faces were counted unread.
fn uncertain_column(conn: &Connection) -> Result<&'static str> {
    let version = super::schema::version(conn).map_err(err(conn))?;
    Ok(if version >= 5 { "uncertain" } else { "0" })
}

pub(super) fn err(conn: &Connection) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite { path: conn.path().unwrap_or("").into(), source }
}

/// A track id as a number: the 16 hex digits iobox writes, or a hash of anything else.
pub(super) fn track_key(track: &str) -> u64 {
    u64::from_str_radix(track, 16).unwrap_or_else(|_| {
        let mut h = DefaultHasher::new();
        track.hash(&mut h);
        h.finish()
    })
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

/// Camera names, in name order.
pub fn cameras(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM cameras ORDER BY name").map_err(err(conn))?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(err(conn))?;
    rows.collect::<rusqlite::Result<Vec<String>>>().map_err(err(conn))
}

/// Entries and exits over a period and entries per hour, from one decision of its buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Movements {
    /// Per camera (every camera, 0 where none), then the whole store.
    pub entries_exits: Vec<Movement>,
    /// By hour, then camera name, the store last.
    pub footfall_per_hour: Vec<FootfallHour>,
}

/// Entries and exits per camera and for the whole store (last), over the period snapped to whole buckets
/// ([`crate::buckets::snap`]): the sum of the buckets' released cells ([`super::released`]), suppressed
/// when every bucket with people is, with the count of buckets left out; and the released hour cells of
/// the same period, the same whatever period asks.
pub fn movements(conn: &Connection, period: Period, k: u32) -> Result<Movements> {
    let snapped = crate::buckets::snap(period.from_ms, period.to_ms, super::writer::now_ms());
    let period = Period { from_ms: snapped.from_ms, to_ms: snapped.to_ms };
    let released = super::released::build(conn, period, k)?;
    let series: Vec<Option<usize>> = (0..released.cameras.len()).map(Some).chain([None]).collect();
    let entries_exits = series
        .into_iter()
        .map(|camera| {
            let sum = released.sum(period, snapped.level, camera);
            let hidden = sum.all_suppressed();
            Movement {
                camera: camera.map(|c| released.cameras[c].clone()),
                entries: (!hidden).then_some(sum.value[0]),
                exits: (!hidden).then_some(sum.value[1]),
                suppressed: hidden,
                buckets_suppressed: sum.suppressed,
            }
        })
        .collect();
    let footfall_per_hour = released
        .hours(period)
        .into_iter()
        .map(|(key, cell)| FootfallHour {
            hour_start_ms: key.start_ms,
            camera: key.camera.map(|c| released.cameras[c].clone()),
            entries: cell.shown.then_some(cell.value[0]),
            suppressed: !cell.shown,
        })
        .collect();
    Ok(Movements { entries_exits, footfall_per_hour })
}

/// Store visits ([`crate::fuse`]): each person's camera tracks joined across the store's cameras, counted
/// once however many cameras saw them. Group: the visits (each is one person), decided per bucket of the
/// visits' starts like entries ([`super::series`]), so that a day minus its hours gives no visit away.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visits {
    pub visits: Option<u64>,
    /// First to last time any camera saw the visit.
    pub median_duration_ms: Option<f64>,
    pub p90_duration_ms: Option<i64>,
    /// Camera tracks joined per visit on average: 1 where no visit was seen by two cameras (or one camera
    /// lost and found the person again).
    pub camera_tracks_per_visit: Option<f64>,
    pub suppressed: bool,
    /// Buckets with visits left out of the figures.
    pub buckets_suppressed: u64,
}

/// The store visits that began in the period (none in a database from before visits were recorded), from
/// their released buckets.
pub fn visits(conn: &Connection, period: Period, k: u32) -> Result<Visits> {
    let w = window(period);
    // (start, visit, duration, camera tracks)
    let mut rows: Vec<(i64, u64, i64, u64)> = Vec::new();
    if super::schema::version(conn).map_err(err(conn))? >= 6 {
        let mut stmt = conn
            .prepare(
                "SELECT start_ms, store_track, end_ms - start_ms, camera_tracks FROM visits
                 WHERE start_ms >= ?1 AND start_ms < ?2",
            )
            .map_err(err(conn))?;
        let mut q = stmt.query(params![w.from_ms, w.to_ms]).map_err(err(conn))?;
        while let Some(r) = q.next().map_err(err(conn))? {
            let e = err(conn);
            let visit = track_key(r.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(&e)?);
            rows.push((r.get(0).map_err(&e)?, visit, r.get::<_, i64>(2).map_err(&e)?.max(0), u(r.get(3).map_err(&e)?)));
        }
    }
    let mut people: Vec<(i64, u64)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let decision = series::Decider::default().decide(&w, &mut people, k);
    let shown: Vec<&(i64, u64, i64, u64)> = rows.iter().filter(|r| w.holds(r.0) && decision.shows(r.0)).collect();
    let n = shown.len() as u64;
    let mut durations: Vec<i64> = shown.iter().map(|r| r.2).collect();
    let camera_tracks: u64 = shown.iter().map(|r| r.3).sum();
    let gate = released_gate(k, &[n], &decision);
    let (_, median, p90) = dwell_stats(&mut durations);
    Ok(Visits {
        visits: gate.show(n),
        median_duration_ms: gate.show(median).filter(|_| n > 0),
        p90_duration_ms: gate.show(p90).filter(|_| n > 0),
        camera_tracks_per_visit: gate.show(share(camera_tracks, n)).filter(|_| n > 0),
        suppressed: gate.suppressed(),
        buckets_suppressed: decision.suppressed,
    })
}

/// Mean, median (mean of the middle two for an even count) and nearest-rank p90 of `v` (sorted here).
fn dwell_stats(v: &mut [i64]) -> (f64, f64, i64) {
    if v.is_empty() {
        return (0.0, 0.0, 0);
    }
    v.sort_unstable();
    let n = v.len();
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let median = if n % 2 == 1 { v[n / 2] as f64 } else { (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0 };
    let rank = (0.9 * n as f64).ceil() as usize;
    (mean, median, v[rank.clamp(1, n) - 1])
}

/// The window of rows that decide `period`'s buckets ([`super::series`]).
fn window(period: Period) -> Window {
    Window::new(period, super::writer::now_ms())
}

/// A series' gate: hidden when every bucket with people was, else the k rule on the shown rows' groups.
fn released_gate(k: u32, groups: &[u64], decision: &Decision) -> Gate {
    if decision.all_suppressed() { Gate { shown: false } } else { Gate::new(k, groups) }
}

/// Names (zones, journeys) as dense series ids.
#[derive(Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() as u32 - 1);
        self.names.len() as u32 - 1
    }
}

/// A zone event as the zone sections read it: (place id, ts, track, duration).
type ZoneEvent = (u32, i64, u64, Option<i64>);

/// Rows of `events` of these kinds in the window.
fn zone_events(conn: &Connection, kinds: &str, w: &Window, names: &mut Names) -> Result<Vec<ZoneEvent>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT place, ts_ms, track, duration_ms FROM events WHERE kind IN ({kinds}) AND ts_ms >= ?1 AND ts_ms < ?2"
        ))
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![w.from_ms, w.to_ms]).map_err(err(conn))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let place = names.id(r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(&e)?);
        let track = track_key(r.get_ref(2).and_then(|v| Ok(v.as_str()?)).map_err(&e)?);
        out.push((place, r.get(1).map_err(&e)?, track, r.get(3).map_err(&e)?));
    }
    Ok(out)
}

/// One decision per place of `rows` ([`zone_events`]).
fn decide_places(w: &Window, rows: &[ZoneEvent], places: usize, k: u32) -> Vec<Decision> {
    let mut seen: Vec<(u32, i64, u64)> = rows.iter().map(|r| (r.0, r.1, r.2)).collect();
    series::decide_all(w, &mut seen, places, k)
}

/// The stays in each zone (`zone_exited` with a duration) of the period's released buckets.
struct Stays {
    names: Vec<String>,
    decisions: Vec<Decision>,
    /// Per zone: (duration, track) of each shown stay; a zone with stays only in suppressed buckets is
    /// here with none.
    zones: HashMap<u32, Vec<(i64, u64)>>,
}

fn shown_stays(conn: &Connection, period: Period, k: u32) -> Result<Stays> {
    let w = window(period);
    let mut names = Names::default();
    let rows = zone_events(conn, "'zone_exited'", &w, &mut names)?;
    let decisions = decide_places(&w, &rows, names.names.len(), k);
    let mut zones: HashMap<u32, Vec<(i64, u64)>> = HashMap::new();
    for &(zone, ts, track, duration) in rows.iter().filter(|r| w.holds(r.1)) {
        let entry = zones.entry(zone).or_default();
        if let (true, Some(d)) = (decisions[zone as usize].shows(ts), duration) {
            entry.push((d, track));
        }
    }
    Ok(Stays { names: names.names, decisions, zones })
}

/// Upper edges of the dwell histogram's bins, in seconds; the last bin is open (an hour or more). Fixed for
/// every store and day, so that histograms add up across days and stores (a median does not).
pub const DWELL_BINS_S: [i64; 8] = [30, 60, 120, 300, 600, 1200, 1800, 3600];

/// How long stays in a zone lasted, over the fixed bins [`DWELL_BINS_S`]. Group: the zone's tracks (as in
/// [`ZoneDwell`]), then each bin's tracks: a bin with 1 to k-1 is hidden, and when the hidden bins hold 1 to
/// k-1 tracks together (the zone's total minus the shown bins would be about them) the smallest shown bin is
/// hidden too, until they hold none or at least k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DwellHistogram {
    pub zone: String,
    /// Stays per bin (`DWELL_BINS_S.len() + 1` of them); `None`: hidden.
    pub bins: Option<Vec<Option<u64>>>,
    /// Stays in the hidden bins together.
    pub hidden: Option<u64>,
    pub suppressed: bool,
}

/// The bin of a stay of `ms`.
pub fn dwell_bin(ms: i64) -> usize {
    DWELL_BINS_S.iter().position(|&edge| ms < edge * 1000).unwrap_or(DWELL_BINS_S.len())
}

/// Which bins may be shown: `bins[i]` holds the tracks of bin `i` (see [`DwellHistogram`]).
pub fn shown_bins(bins: &[HashSet<u64>], k: u32) -> Vec<bool> {
    let k = k as usize;
    let mut shown: Vec<bool> = bins.iter().map(|b| b.is_empty() || b.len() >= k).collect();
    loop {
        let hidden: HashSet<u64> =
            bins.iter().zip(&shown).filter(|(_, s)| !**s).flat_map(|(b, _)| b.iter().copied()).collect();
        if hidden.is_empty() || hidden.len() >= k {
            return shown;
        }
        let smallest = (0..bins.len()).filter(|&i| shown[i] && !bins[i].is_empty()).min_by_key(|&i| (bins[i].len(), i));
        match smallest {
            Some(i) => shown[i] = false,
            None => return shown,
        }
    }
}

/// The dwell histogram of every zone with stays in the period, from the same released buckets as
/// [`dwell_per_zone`]: a zone suppressed there is suppressed here.
pub fn dwell_histograms(conn: &Connection, period: Period, k: u32) -> Result<Vec<DwellHistogram>> {
    let stays = shown_stays(conn, period, k)?;
    let mut out: Vec<DwellHistogram> = stays
        .zones
        .into_iter()
        .map(|(zone, shown)| {
            let tracks: HashSet<u64> = shown.iter().map(|s| s.1).collect();
            let gate = released_gate(k, &[tracks.len() as u64], &stays.decisions[zone as usize]);
            let mut counts = vec![0u64; DWELL_BINS_S.len() + 1];
            let mut groups = vec![HashSet::new(); DWELL_BINS_S.len() + 1];
            for &(ms, track) in &shown {
                let b = dwell_bin(ms);
                counts[b] += 1;
                groups[b].insert(track);
            }
            let visible = shown_bins(&groups, k);
            let hidden: u64 = counts.iter().zip(&visible).filter(|(_, v)| !**v).map(|(c, _)| c).sum();
            let bins: Vec<Option<u64>> = counts.iter().zip(&visible).map(|(&c, &v)| v.then_some(c)).collect();
            DwellHistogram {
                zone: stays.names[zone as usize].clone(),
                bins: gate.show(bins),
                hidden: gate.show(hidden),
                suppressed: gate.suppressed(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok(out)
}

/// Dwell per zone from `zone_exited` events, by zone name (zones are named on the site's floor plan), from
/// the zone's released buckets ([`super::series`]).
pub fn dwell_per_zone(conn: &Connection, period: Period, k: u32) -> Result<Vec<ZoneDwell>> {
    let stays = shown_stays(conn, period, k)?;
    let mut out: Vec<ZoneDwell> = stays
        .zones
        .into_iter()
        .map(|(zone, shown)| {
            let mut durations: Vec<i64> = shown.iter().map(|s| s.0).collect();
            let tracks: HashSet<u64> = shown.iter().map(|s| s.1).collect();
            let d = &stays.decisions[zone as usize];
            let gate = released_gate(k, &[tracks.len() as u64], d);
            let (mean, median, p90) = dwell_stats(&mut durations);
            let some = !durations.is_empty();
            ZoneDwell {
                zone: stays.names[zone as usize].clone(),
                visits: gate.show(durations.len() as u64),
                tracks: gate.show(tracks.len() as u64),
                mean_ms: gate.show(mean).filter(|_| some),
                median_ms: gate.show(median).filter(|_| some),
                p90_ms: gate.show(p90).filter(|_| some),
                suppressed: gate.suppressed(),
                buckets_suppressed: d.suppressed,
            }
        })
        .collect();
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok(out)
}

/// Each store visit's journey that started in the window: the zones of its camera tracks' journeys, in the
/// order those started, consecutive repeats collapsed (a visit seen by one camera is that camera's journey;
/// a camera track that joined no visit, as in a database from before visits, is a journey alone). Zone names
/// interned.
struct Journeys {
    names: Vec<String>,
    /// Per visit: when its journey started, its key, and its zones as indices into `names`.
    tracks: Vec<(i64, u64, Vec<usize>)>,
}

fn journeys(conn: &Connection, w: &Window) -> Result<Journeys> {
    let members = super::schema::version(conn).map_err(err(conn))? >= 7;
    let sql = if members {
        "SELECT j.track, j.start_ms, j.zones, m.store_track FROM journeys j
         LEFT JOIN visit_members m ON m.run_id = j.run_id AND m.camera_id = j.camera_id AND m.track = j.track
         WHERE j.start_ms >= ?1 AND j.start_ms < ?2 ORDER BY j.start_ms"
    } else {
        "SELECT track, start_ms, zones, NULL FROM journeys WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms"
    };
    let mut stmt = conn.prepare(sql).map_err(err(conn))?;
    let mut rows = stmt.query(params![w.from_ms, w.to_ms]).map_err(err(conn))?;
    let mut names = Names::default();
    let mut by_visit: HashMap<u64, (i64, Vec<usize>)> = HashMap::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let store = r.get_ref(3).map_err(&e)?.as_str_or_null().map_err(|s| e(s.into()))?;
        // Store and camera track ids are both random 64-bit numbers: one key space.
        let visit = match store {
            Some(store) => track_key(store),
            None => track_key(r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(&e)?),
        };
        let start: i64 = r.get(1).map_err(&e)?;
        let text = r.get_ref(2).and_then(|v| Ok(v.as_str()?)).map_err(&e)?;
        // A journey the writer did not write (not a JSON list of names) counts as no zones.
        let zones: Vec<&str> = serde_json::from_str(text).unwrap_or_default();
        let (first, seq) = by_visit.entry(visit).or_insert((start, Vec::new()));
        *first = (*first).min(start);
        for z in zones {
            let i = names.id(z) as usize;
            if seq.last() != Some(&i) {
                seq.push(i);
            }
        }
    }
    let tracks = by_visit.into_iter().map(|(visit, (start, seq))| (start, visit, seq)).collect();
    Ok(Journeys { names: names.names, tracks })
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// Calls `f(a, b)` for every zone `b` a journey entered after its first visit of `a` (each pair once), and
/// `f(a, None)` for every zone it entered.
fn pairs_of(seq: &[usize], seen_a: &mut [bool], seen_b: &mut [bool], mut f: impl FnMut(usize, Option<usize>)) {
    seen_a.iter_mut().for_each(|s| *s = false);
    for (i, &a) in seq.iter().enumerate() {
        if seen_a[a] {
            continue;
        }
        seen_a[a] = true;
        f(a, None);
        seen_b.iter_mut().for_each(|s| *s = false);
        for &b in &seq[i + 1..] {
            if b != a && !seen_b[b] {
                seen_b[b] = true;
                f(a, Some(b));
            }
        }
    }
}

/// Every ordered pair of zones A -> B (A != B) some track took: of the tracks that entered A, those that
/// entered B after (their first visit of) A. Each pair is a series of its own (the tracks that took it),
/// and both figures come from its released buckets. Ordered by A, then most reached first.
pub fn funnel_pairs(conn: &Connection, period: Period, k: u32) -> Result<Vec<FunnelPair>> {
    let w = window(period);
    let j = journeys(conn, &w)?;
    let n = j.names.len();
    let (mut seen_a, mut seen_b) = (vec![false; n], vec![false; n]);
    let mut rows: Vec<(u32, i64, u64)> = Vec::new();
    for (start, track, seq) in &j.tracks {
        pairs_of(seq, &mut seen_a, &mut seen_b, |a, b| {
            if let Some(b) = b {
                rows.push(((a * n + b) as u32, *start, *track));
            }
        });
    }
    let decisions = series::decide_all(&w, &mut rows, n * n, k);
    let mut entered = vec![0u64; n * n];
    let mut reached = vec![0u64; n * n];
    let mut taken = vec![false; n * n];
    for (start, _, seq) in j.tracks.iter().filter(|t| w.holds(t.0)) {
        pairs_of(seq, &mut seen_a, &mut seen_b, |a, b| match b {
            Some(b) => {
                let pair = a * n + b;
                taken[pair] = true;
                if decisions[pair].shows(*start) {
                    reached[pair] += 1;
                }
            }
            None => {
                for b in (0..n).filter(|&b| b != a) {
                    if decisions[a * n + b].shows(*start) {
                        entered[a * n + b] += 1;
                    }
                }
            }
        });
    }
    let mut out = Vec::new();
    for a in 0..n {
        for b in 0..n {
            let pair = a * n + b;
            if !taken[pair] {
                continue;
            }
            let d = &decisions[pair];
            let (e, r) = (entered[pair], reached[pair]);
            let gate = released_gate(k, &[e, r], d);
            out.push(FunnelPair {
                from: j.names[a].clone(),
                to: j.names[b].clone(),
                entered: gate.show(e),
                reached: gate.show(r),
                share: gate.show(share(r, e)),
                suppressed: gate.suppressed(),
                buckets_suppressed: d.suppressed,
            });
        }
    }
    out.sort_by(|x, y| x.from.cmp(&y.from).then(r_of(y).cmp(&r_of(x))).then(x.to.cmp(&y.to)));
    Ok(out)
}

/// Sort key that keeps suppressed rows after shown ones without revealing their counts.
fn r_of(p: &FunnelPair) -> u64 {
    p.reached.unwrap_or(0)
}

/// How far along `zones` (by name) a journey went: 0 when it never entered the first.
fn steps_taken(seq: &[usize], ids: &[Option<usize>]) -> usize {
    let mut from = 0;
    for (step, id) in ids.iter().enumerate() {
        match id.and_then(|id| seq[from..].iter().position(|&z| z == id)) {
            Some(p) => from += p + 1,
            None => return step,
        }
    }
    ids.len()
}

/// A requested funnel: step i counts the tracks that entered `zones[0]`, then `zones[1]` after it, ...,
/// then `zones[i]`. A zone no journey names gives 0 from that step on. Each step is a series of its own.
pub fn funnel(conn: &Connection, period: Period, k: u32, zones: &[String]) -> Result<Vec<FunnelStep>> {
    let w = window(period);
    let j = journeys(conn, &w)?;
    let ids: Vec<Option<usize>> = zones.iter().map(|z| j.names.iter().position(|n| n == z)).collect();
    let mut rows: Vec<(u32, i64, u64)> = Vec::new();
    for (start, track, seq) in &j.tracks {
        for step in 0..steps_taken(seq, &ids) {
            rows.push((step as u32, *start, *track));
        }
    }
    let decisions = series::decide_all(&w, &mut rows, zones.len(), k);
    let mut counts = vec![0u64; zones.len()];
    for (start, _, seq) in j.tracks.iter().filter(|t| w.holds(t.0)) {
        for (step, c) in counts.iter_mut().enumerate().take(steps_taken(seq, &ids)) {
            *c += u64::from(decisions[step].shows(*start));
        }
    }
    Ok(zones
        .iter()
        .enumerate()
        .map(|(i, zone)| {
            let gate = released_gate(k, &[counts[i]], &decisions[i]);
            FunnelStep {
                step: i + 1,
                zone: zone.clone(),
                tracks: gate.show(counts[i]),
                share_of_first: gate.show(share(counts[i], counts[0])),
                share_of_previous: gate.show(share(counts[i], counts[i.saturating_sub(1)])),
                suppressed: gate.suppressed(),
                buckets_suppressed: decisions[i].suppressed,
            }
        })
        .collect())
}

/// The most frequent zone sequences (non-empty), most tracks first, at most `limit`; each sequence is a
/// series of its own.
pub fn top_journeys(conn: &Connection, period: Period, k: u32, limit: usize) -> Result<Vec<JourneyCount>> {
    let w = window(period);
    let j = journeys(conn, &w)?;
    let mut sequences: HashMap<&[usize], u32> = HashMap::new();
    let mut rows: Vec<(u32, i64, u64)> = Vec::new();
    for (start, track, seq) in j.tracks.iter().filter(|t| !t.2.is_empty()) {
        let next = sequences.len() as u32;
        let id = *sequences.entry(seq.as_slice()).or_insert(next);
        rows.push((id, *start, *track));
    }
    let decisions = series::decide_all(&w, &mut rows, sequences.len(), k);
    let mut counts = vec![(0u64, false); sequences.len()];
    for (start, _, seq) in j.tracks.iter().filter(|t| !t.2.is_empty() && w.holds(t.0)) {
        let id = sequences[seq.as_slice()] as usize;
        counts[id].1 = true;
        counts[id].0 += u64::from(decisions[id].shows(*start));
    }
    let mut ranked: Vec<(Vec<String>, u64, usize)> = sequences
        .iter()
        .filter(|(_, id)| counts[**id as usize].1)
        .map(|(seq, &id)| (seq.iter().map(|&z| j.names[z].clone()).collect(), counts[id as usize].0, id as usize))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(limit);
    Ok(ranked
        .into_iter()
        .map(|(zones, n, id)| {
            let gate = released_gate(k, &[n], &decisions[id]);
            JourneyCount {
                zones,
                tracks: gate.show(n),
                suppressed: gate.suppressed(),
                buckets_suppressed: decisions[id].suppressed,
            }
        })
        .collect())
}

/// Queue statistics per queue zone (the zones with `queue_samples`). The zone's people are the tracks
/// with zone events in it; the samples of its suppressed buckets are left out.
pub fn queues(conn: &Connection, period: Period, k: u32) -> Result<Vec<QueueStats>> {
    let w = window(period);
    let mut names = Names::default();
    let mut stmt = conn
        .prepare(
            "SELECT zone, ts_ms, length, mean_wait_ms, max_wait_ms FROM queue_samples WHERE ts_ms >= ?1 AND ts_ms < ?2",
        )
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![w.period().from_ms, w.period().to_ms]).map_err(err(conn))?;
    let mut samples: Vec<(u32, i64, i64, i64, i64)> = Vec::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let zone = names.id(r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(&e)?);
        samples.push((
            zone,
            r.get(1).map_err(&e)?,
            r.get(2).map_err(&e)?,
            r.get(3).map_err(&e)?,
            r.get(4).map_err(&e)?,
        ));
    }
    drop(rows);
    let queue_zones = names.names.len();
    let mut people = zone_events(conn, "'zone_entered', 'zone_exited'", &w, &mut names)?;
    people.retain(|r| (r.0 as usize) < queue_zones);
    let decisions = decide_places(&w, &people, queue_zones, k);
    let mut tracks: Vec<HashSet<u64>> = vec![HashSet::new(); queue_zones];
    for &(zone, ts, track, _) in people.iter().filter(|r| w.holds(r.1)) {
        if decisions[zone as usize].shows(ts) {
            tracks[zone as usize].insert(track);
        }
    }
    // Per zone: samples, length sum, longest, wait sum (weighted by length), longest wait.
    let mut acc = vec![(0u64, 0i64, 0i64, 0f64, 0i64); queue_zones];
    for &(zone, ts, length, mean_wait, max_wait) in &samples {
        if decisions[zone as usize].shows(ts) {
            let a = &mut acc[zone as usize];
            *a = (a.0 + 1, a.1 + length, a.2.max(length), a.3 + (mean_wait * length) as f64, a.4.max(max_wait));
        }
    }
    let mut out: Vec<QueueStats> = (0..queue_zones)
        .map(|z| {
            let (n, len_sum, max_len, wait_sum, max_wait) = acc[z];
            let people = tracks[z].len() as u64;
            let gate = released_gate(k, &[people], &decisions[z]);
            QueueStats {
                zone: names.names[z].clone(),
                samples: gate.show(n),
                tracks: gate.show(people),
                mean_length: gate.show(share(u(len_sum), n)),
                max_length: gate.show(u(max_len)),
                mean_wait_ms: gate.show(if len_sum > 0 { wait_sum / len_sum as f64 } else { 0.0 }),
                max_wait_ms: gate.show(max_wait),
                suppressed: gate.suppressed(),
                buckets_suppressed: decisions[z].suppressed,
            }
        })
        .collect();
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok(out)
}

/// Shelf interactions per zone, from the zone's released buckets.
pub fn interactions(conn: &Connection, period: Period, k: u32) -> Result<Vec<ShelfInteractions>> {
    let w = window(period);
    let mut names = Names::default();
    let rows = zone_events(conn, "'interaction'", &w, &mut names)?;
    let decisions = decide_places(&w, &rows, names.names.len(), k);
    // Per zone: interactions, tracks, duration sum and count.
    let mut zones: HashMap<u32, (u64, HashSet<u64>, i64, u64)> = HashMap::new();
    for &(zone, ts, track, duration) in rows.iter().filter(|r| w.holds(r.1)) {
        let z = zones.entry(zone).or_default();
        if decisions[zone as usize].shows(ts) {
            z.0 += 1;
            z.1.insert(track);
            if let Some(d) = duration {
                z.2 += d;
                z.3 += 1;
            }
        }
    }
    let mut out: Vec<ShelfInteractions> = zones
        .into_iter()
        .map(|(zone, (n, tracks, duration_sum, durations))| {
            let d = &decisions[zone as usize];
            let gate = released_gate(k, &[tracks.len() as u64], d);
            ShelfInteractions {
                zone: names.names[zone as usize].clone(),
                interactions: gate.show(n),
                tracks: gate.show(tracks.len() as u64),
                mean_duration_ms: gate.show(share(u(duration_sum), durations)),
                suppressed: gate.suppressed(),
                buckets_suppressed: d.suppressed,
            }
        })
        .collect();
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok(out)
}

/// The people of a mood or heat row: its tokens, or, in a row written before tokens (schema 3), its
/// `tracks` as the same made-up tokens 0, 1, ... in every bucket (so the group of old rows is their largest
/// bucket's, never more than the distinct people; with new rows in the same cell, at most that plus the
/// new tokens).
fn people_of(tokens: Option<&[u8]>, tracks: i64, out: &mut Vec<u64>) {
    out.clear();
    match tokens {
        Some(bytes) => out.extend(bytes.chunks_exact(2).map(|p| u64::from(u16::from_le_bytes([p[0], p[1]])))),
        None => out.extend(0..u(tracks).min(1 << 16)),
    }
}

/// Expressions per zone: counts per class summed over the zone's released mood buckets, and each class's
/// share, where enough faces were read (see [`ZoneMood`]).
pub fn mood_per_zone(conn: &Connection, period: Period, k: u32) -> Result<Vec<ZoneMood>> {
    let w = window(period);
    let tokens = tokens_column(conn)?;
    let uncertain = uncertain_column(conn)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT zone, bucket_start_ms, angry, disgust, fear, happy, sad, surprise, neutral, samples, {tokens}, tracks,
                    {uncertain}
             FROM mood WHERE bucket_start_ms >= ?1 AND bucket_start_ms < ?2"
        ))
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![w.from_ms, w.to_ms]).map_err(err(conn))?;
    let mut names = Names::default();
    // Per row: zone, bucket, the 7 counts, samples, uncertain.
    let mut figures: Vec<(u32, i64, [u64; 7], u64, u64)> = Vec::new();
    let mut people: Vec<(u32, i64, u64)> = Vec::new();
    let mut scratch = Vec::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let zone = names.id(r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(&e)?);
        let bucket: i64 = r.get(1).map_err(&e)?;
        let mut counts = [0u64; 7];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = u(r.get(i + 2).map_err(&e)?);
        }
        people_of(
            r.get_ref(10).map_err(&e)?.as_blob_or_null().map_err(|s| e(s.into()))?,
            r.get(11).map_err(&e)?,
            &mut scratch,
        );
        people.extend(scratch.iter().map(|&p| (zone, bucket, p)));
        figures.push((zone, bucket, counts, u(r.get(9).map_err(&e)?), u(r.get(12).map_err(&e)?)));
    }
    let decisions = series::decide_all(&w, &mut people, names.names.len(), k);
    let mut zones: HashMap<u32, ([u64; 7], u64, u64, HashSet<u64>)> = HashMap::new();
    for &(zone, bucket, counts, samples, unread) in figures.iter().filter(|f| w.holds(f.1)) {
        let z = zones.entry(zone).or_default();
        if decisions[zone as usize].shows(bucket) {
            for (a, c) in z.0.iter_mut().zip(counts) {
                *a += c;
            }
            z.1 += samples;
            z.2 += unread;
        }
    }
    for &(zone, bucket, person) in people.iter().filter(|p| w.holds(p.1)) {
        if let Some(z) = zones.get_mut(&zone)
            && decisions[zone as usize].shows(bucket)
        {
            z.3.insert(person);
        }
    }
    let mut out: Vec<ZoneMood> = zones
        .into_iter()
        .map(|(zone, (counts, samples, uncertain, tracks))| {
            let d = &decisions[zone as usize];
            let read_share = share(samples, samples + uncertain);
            let readable = samples >= MIN_READS && read_share >= MIN_READ_SHARE;
            let gate = released_gate(k, &[tracks.len() as u64], d);
            let figures = gate.show(()).filter(|_| readable);
            ZoneMood {
                zone: names.names[zone as usize].clone(),
                samples: gate.show(samples),
                uncertain: gate.show(uncertain),
                read_share: gate.show(read_share),
                tracks: gate.show(tracks.len() as u64),
                readable,
                counts: figures.map(|_| PerEmotion(counts)),
                shares: figures.map(|_| PerEmotion(counts.map(|c| share(c, samples)))),
                suppressed: gate.suppressed(),
                buckets_suppressed: d.suppressed,
            }
        })
        .collect();
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok(out)
}

/// Heatmap cells summed over the cell's released buckets (one camera, or all of them: the floor plan is
/// shared), ordered by row then column. Each cell is a series of its own, decided together with its share
/// on each camera ([`series::Decider::decide_family`]), so that the store's cell minus one camera's never
/// gives another camera's few people away.
pub fn heat_cells(conn: &Connection, period: Period, k: u32, camera: Option<&str>) -> Result<Vec<HeatCell>> {
    let w = window(period);
    let tokens = tokens_column(conn)?;
    let only: Option<i64> = match camera {
        Some(name) => match conn.query_row("SELECT id FROM cameras WHERE name = ?1", [name], |r| r.get(0)) {
            Ok(id) => Some(id),
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(Vec::new()),
            Err(e) => return Err(err(conn)(e)),
        },
        None => None,
    };
    // Camera ids as parts of a cell's family, and the part asked for.
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM cameras ORDER BY id").map_err(err(conn))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err(conn))?;
        rows.collect::<rusqlite::Result<_>>().map_err(err(conn))?
    };
    let member = only.map_or(0, |id| 1 + ids.iter().position(|&c| c == id).unwrap_or(0));
    // One cell at a time, in output order: only one cell's rows are held.
    let mut stmt = conn
        .prepare(&format!(
            "SELECT cell_m, cx, cy, bucket_start_ms, presence, dwell_ms, {tokens}, tracks, camera_id
             FROM heat WHERE bucket_start_ms >= ?1 AND bucket_start_ms < ?2 ORDER BY cell_m, cy, cx"
        ))
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![w.from_ms, w.to_ms]).map_err(err(conn))?;
    let mut out = Vec::new();
    let mut cell = HeatFamily::default();
    let mut decider = series::Decider::default();
    let mut scratch = Vec::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let key = (r.get::<_, f64>(0).map_err(&e)?, r.get(1).map_err(&e)?, r.get(2).map_err(&e)?);
        if cell.key != Some(key) {
            out.extend(cell.finish(&w, &mut decider, ids.len(), member, k));
            cell.key = Some(key);
        }
        let camera_id: i64 = r.get(8).map_err(&e)?;
        let part = ids.iter().position(|&c| c == camera_id).unwrap_or(0) as u32;
        let bucket: i64 = r.get(3).map_err(&e)?;
        people_of(
            r.get_ref(6).map_err(&e)?.as_blob_or_null().map_err(|s| e(s.into()))?,
            r.get(7).map_err(&e)?,
            &mut scratch,
        );
        let lo = cell.tokens.len();
        cell.tokens.extend_from_slice(&scratch);
        cell.rows.push(HeatRow {
            part,
            bucket,
            presence: u(r.get(4).map_err(&e)?),
            dwell_ms: r.get(5).map_err(&e)?,
            tokens: lo..cell.tokens.len(),
        });
    }
    out.extend(cell.finish(&w, &mut decider, ids.len(), member, k));
    Ok(out)
}

/// One camera's row of a heat cell in one bucket.
struct HeatRow {
    part: u32,
    bucket: i64,
    presence: u64,
    dwell_ms: i64,
    /// Its people, in [`HeatFamily::tokens`].
    tokens: std::ops::Range<usize>,
}

/// The rows of one heat cell being read, every camera's.
#[derive(Default)]
struct HeatFamily {
    key: Option<(f64, i64, i64)>,
    rows: Vec<HeatRow>,
    tokens: Vec<u64>,
    /// (member, bucket, person) for the decision: the whole (0) and each camera (1 + part).
    people: Vec<(u32, i64, u64)>,
    /// Indices into `rows` of the member asked for.
    mine: Vec<usize>,
    seen: Vec<u64>,
}

impl HeatFamily {
    /// The cell's released figures for `member` (0: the whole floor, 1 + i: camera part i), if the period
    /// holds any of its rows; emptied for the next cell.
    ///
    /// Cameras whose views overlap see the same people in a cell: the whole floor's cell in a bucket is the
    /// camera row that saw most of it (most presence), never their sum, so overlaps do not count twice.
    fn finish(
        &mut self,
        w: &Window,
        decider: &mut series::Decider,
        parts: usize,
        member: usize,
        k: u32,
    ) -> Option<HeatCell> {
        let key = self.key.take()?;
        self.rows.sort_by_key(|r| (r.bucket, std::cmp::Reverse(r.presence), r.part));
        self.people.clear();
        self.mine.clear();
        let mut last_bucket = None;
        for (i, r) in self.rows.iter().enumerate() {
            let speaks_for_the_floor = last_bucket != Some(r.bucket);
            last_bucket = Some(r.bucket);
            for &p in &self.tokens[r.tokens.clone()] {
                self.people.push((1 + r.part, r.bucket, p));
                if speaks_for_the_floor {
                    self.people.push((0, r.bucket, p));
                }
            }
            let asked = if member == 0 { speaks_for_the_floor } else { member == 1 + r.part as usize };
            if asked && w.holds(r.bucket) {
                self.mine.push(i);
            }
        }
        let decision = decider.decide_family(w, &mut self.people, parts, k).swap_remove(member);
        let (mut presence, mut dwell_ms) = (0u64, 0i64);
        self.seen.clear();
        for &i in &self.mine {
            let r = &self.rows[i];
            if decision.shows(r.bucket) {
                presence += r.presence;
                dwell_ms += r.dwell_ms;
                self.seen.extend_from_slice(&self.tokens[r.tokens.clone()]);
            }
        }
        self.seen.sort_unstable();
        self.seen.dedup();
        let any = !self.mine.is_empty();
        self.rows.clear();
        self.tokens.clear();
        if !any {
            return None;
        }
        let gate = released_gate(k, &[self.seen.len() as u64], &decision);
        Some(HeatCell {
            cell_m: key.0,
            cx: key.1,
            cy: key.2,
            presence: gate.show(presence),
            dwell_ms: gate.show(dwell_ms),
            tracks: gate.show(self.seen.len() as u64),
            suppressed: gate.suppressed(),
            buckets_suppressed: decision.suppressed,
        })
    }
}

/// The people in the store now: the store visits that entered since local midnight minus those that
/// exited, each counted once however many cameras see the door (`visit_members`; a camera track that
/// joined no visit counts alone). A store closes every night, so the count starts from 0 each day, and it
/// never goes below 0 (a person who left unseen is forgotten at midnight). It starts from 0 again whenever
/// the store was seen empty: for [`SEEN_EMPTY_MS`] no visit was open on any camera while a camera was
/// running (someone who left through a door no camera counts is forgotten then). Group: the people counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreOccupancy {
    /// Counted from (local midnight, or the last time the store was seen empty), ms.
    pub since_ms: i64,
    pub people: Option<u64>,
    pub suppressed: bool,
}

/// How long no visit may be open, with a camera running, for the store to count as seen empty.
pub const SEEN_EMPTY_MS: i64 = 60_000;

/// The start of the latest stretch between `since_ms` and `now_ms` of at least [`SEEN_EMPTY_MS`] in which
/// no store visit was open and some camera logged frames.
fn seen_empty_since(conn: &Connection, since_ms: i64, now_ms: i64) -> Result<Option<i64>> {
    if super::schema::version(conn).map_err(err(conn))? < 7 {
        return Ok(None);
    }
    // Every visit that overlaps the day: ended ones from `visits`; open ones (members joined, not yet
    // ended) until now in a run still going, or until their last member in a run that stopped without
    // ending them.
    let newest_run: Option<i64> = conn.query_row("SELECT MAX(id) FROM runs", [], |r| r.get(0)).map_err(err(conn))?;
    let mut stmt = conn
        .prepare(
            "SELECT start_ms, end_ms FROM visits WHERE end_ms >= ?1 AND start_ms <= ?2
             UNION ALL
             SELECT MIN(m.joined_ms), CASE WHEN m.run_id = ?3 THEN ?2 ELSE MAX(m.joined_ms) END
             FROM visit_members m
             WHERE m.joined_ms >= ?1 - 86400000 AND m.joined_ms <= ?2 AND NOT EXISTS
                   (SELECT 1 FROM visits v WHERE v.run_id = m.run_id AND v.store_track = m.store_track)
             GROUP BY m.run_id, m.store_track",
        )
        .map_err(err(conn))?;
    let mut open: Vec<(i64, i64)> = stmt
        .query_map(params![since_ms, now_ms, newest_run.unwrap_or(-1)], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(err(conn))?
        .collect::<rusqlite::Result<_>>()
        .map_err(err(conn))?;
    open.sort_unstable();
    // The gaps between the visits' merged spans, newest first.
    let mut gaps = Vec::new();
    let mut covered_to = since_ms;
    for (start, end) in open {
        if start > covered_to {
            gaps.push((covered_to, start));
        }
        covered_to = covered_to.max(end);
    }
    if now_ms > covered_to {
        gaps.push((covered_to, now_ms));
    }
    // Some camera logged a frame inside the gap (per camera, so that the (camera, ts) index answers).
    let mut seen = conn
        .prepare(
            "SELECT EXISTS(SELECT 1 FROM cameras c WHERE EXISTS
                 (SELECT 1 FROM frame_log f WHERE f.camera_id = c.id AND f.ts_ms > ?1 AND f.ts_ms < ?2))",
        )
        .map_err(err(conn))?;
    for &(from, to) in gaps.iter().rev().filter(|(from, to)| to - from >= SEEN_EMPTY_MS) {
        if seen.query_row(params![from, to], |r| r.get::<_, bool>(0)).map_err(err(conn))? {
            return Ok(Some(from));
        }
    }
    Ok(None)
}

pub fn store_occupancy(conn: &Connection, now_ms: i64, k: u32) -> Result<StoreOccupancy> {
    let midnight = crate::buckets::floor(now_ms, crate::buckets::Level::Day);
    let since_ms = seen_empty_since(conn, midnight, now_ms)?.unwrap_or(midnight);
    let visit = if super::schema::version(conn).map_err(err(conn))? >= 7 {
        "COALESCE((SELECT m.store_track FROM visit_members m
                   WHERE m.run_id = e.run_id AND m.camera_id = e.camera_id AND m.track = e.track LIMIT 1), e.track)"
    } else {
        "e.track"
    };
    let count = |kind: &str| -> Result<i64> {
        conn.query_row(
            &format!(
                "SELECT COUNT(DISTINCT {visit}) FROM events e WHERE e.kind = ?1 AND e.ts_ms >= ?2 AND e.ts_ms <= ?3"
            ),
            // After the store was seen empty: strictly after the moment the last visit ended.
            params![kind, if since_ms == midnight { since_ms } else { since_ms + 1 }, now_ms],
            |r| r.get(0),
        )
        .map_err(err(conn))
    };
    let inside = u(count("entry")? - count("exit")?);
    let gate = Gate::new(k, &[inside]);
    Ok(StoreOccupancy { since_ms, people: gate.show(inside), suppressed: gate.suppressed() })
}

/// The newest occupancy sample of a zone. Group: the people counted (a live count is its own group).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCount {
    pub camera: String,
    pub zone: String,
    /// When the sample was taken, ms.
    pub at_ms: i64,
    pub count: Option<u64>,
    pub suppressed: bool,
}

/// The newest sample of a queue zone. Group: the people in the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveQueue {
    pub camera: String,
    pub zone: String,
    pub at_ms: i64,
    pub length: Option<u64>,
    pub mean_wait_ms: Option<i64>,
    pub max_wait_ms: Option<i64>,
    pub suppressed: bool,
}

/// The newest occupancy sample of every (camera, zone) sampled within `window_ms` of the newest sample in
/// the database, ordered by camera and zone. Zones whose camera stopped earlier than that are left out.
pub fn latest_occupancy(conn: &Connection, window_ms: i64, k: u32) -> Result<Vec<LiveCount>> {
    let mut stmt = conn
        .prepare(
            "SELECT c.name, o.zone, o.ts_ms, o.count FROM occupancy o JOIN cameras c ON c.id = o.camera_id
             WHERE o.ts_ms >= (SELECT MAX(ts_ms) FROM occupancy) - ?1 ORDER BY o.ts_ms",
        )
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![window_ms]).map_err(err(conn))?;
    let mut newest: HashMap<(String, String), (i64, i64)> = HashMap::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        newest.insert((r.get(0).map_err(&e)?, r.get(1).map_err(&e)?), (r.get(2).map_err(&e)?, r.get(3).map_err(&e)?));
    }
    let mut out: Vec<LiveCount> = newest
        .into_iter()
        .map(|((camera, zone), (at_ms, count))| {
            let gate = Gate::new(k, &[u(count)]);
            LiveCount { camera, zone, at_ms, count: gate.show(u(count)), suppressed: gate.suppressed() }
        })
        .collect();
    out.sort_by(|a, b| (&a.camera, &a.zone).cmp(&(&b.camera, &b.zone)));
    Ok(out)
}

/// The newest sample of every queue zone sampled within `window_ms` of the newest queue sample.
pub fn latest_queues(conn: &Connection, window_ms: i64, k: u32) -> Result<Vec<LiveQueue>> {
    let mut stmt = conn
        .prepare(
            "SELECT c.name, q.zone, q.ts_ms, q.length, q.mean_wait_ms, q.max_wait_ms
             FROM queue_samples q JOIN cameras c ON c.id = q.camera_id
             WHERE q.ts_ms >= (SELECT MAX(ts_ms) FROM queue_samples) - ?1 ORDER BY q.ts_ms",
        )
        .map_err(err(conn))?;
    let mut rows = stmt.query(params![window_ms]).map_err(err(conn))?;
    type Sample = (i64, i64, i64, i64);
    let mut newest: HashMap<(String, String), Sample> = HashMap::new();
    while let Some(r) = rows.next().map_err(err(conn))? {
        let e = err(conn);
        let key = (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?);
        newest
            .insert(key, (r.get(2).map_err(&e)?, r.get(3).map_err(&e)?, r.get(4).map_err(&e)?, r.get(5).map_err(&e)?));
    }
    let mut out: Vec<LiveQueue> = newest
        .into_iter()
        .map(|((camera, zone), (at_ms, length, mean, max))| {
            let gate = Gate::new(k, &[u(length)]);
            LiveQueue {
                camera,
                zone,
                at_ms,
                length: gate.show(u(length)),
                mean_wait_ms: gate.show(mean),
                max_wait_ms: gate.show(max),
                suppressed: gate.suppressed(),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.camera, &a.zone).cmp(&(&b.camera, &b.zone)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{Event, Name, TrackId, TrackTokens};
    use crate::store::{Record, Writer, WriterOptions, open_ro, open_rw};

    const K: u32 = 5;
    const HOUR: i64 = 3_600_000;
    /// 2030-01-01T10:00:00Z, a whole hour.
    const T0: i64 = 1_893_492_000_000;

    fn name(s: &str) -> Name {
        Name::from(s)
    }

    /// A database filled through the real writer: zone "few" stayed in by k-1 tracks, "edge" by k, "many"
    /// by k+1; entries in hour 0 by k-1 tracks and in hour 1 by k; one queue zone with k tracks; mood and
    /// heat with `tracks` around k; journeys around k.
    fn database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(&path, &["door".to_string(), "aisle".to_string()], options).unwrap();
        let tx = writer.sender();
        let mut id = 0u64;
        let mut next = || {
            id += 1;
            TrackId(0x1000 + id)
        };
        let send = |camera: usize, event: Event| tx.send(Record::Event { camera, event });
        let mut tracks = Vec::new();
        // Entries: k-1 in the first hour, k in the second; exits: k at the start of the third hour, the last a
        // minute after the others.
        for i in 0..(2 * K as i64 - 1) {
            let t = next();
            tracks.push(t);
            let at = if i < K as i64 - 1 { T0 + 60_000 * i } else { T0 + HOUR + 60_000 * i };
            send(0, Event::Entry { zone: name("entrance"), track: t, at_ms: at });
        }
        for (i, t) in tracks[..K as usize].iter().enumerate() {
            let at_ms = T0 + 2 * HOUR + if i + 1 == K as usize { 60_000 } else { 0 };
            send(0, Event::Exit { zone: name("entrance"), track: *t, at_ms });
        }
        // Zone stays on the aisle camera: few = k-1 tracks (two visits each), edge = k, many = k+1.
        for (zone, n) in [("few", K - 1), ("edge", K), ("many", K + 1)] {
            for i in 0..n as i64 {
                let t = next();
                let visits = if zone == "few" { 2 } else { 1 };
                for v in 0..visits {
                    let at = T0 + 10_000 * i + v * 1000;
                    send(1, Event::ZoneEntered { zone: name(zone), track: t, at_ms: at });
                    send(
                        1,
                        Event::ZoneExited { zone: name(zone), track: t, at_ms: at + 1000, dwell_ms: 1000 * (i + 1) },
                    );
                }
                send(1, Event::ShelfInteraction { zone: name(zone), track: t, start_ms: T0 + i, duration_ms: 500 });
                send(
                    1,
                    Event::Journey {
                        track: t,
                        zones: vec![name("edge"), name(zone)],
                        start_ms: T0 + i,
                        end_ms: T0 + i + 5000,
                    },
                );
            }
        }
        // A queue: k distinct tracks through "till", samples with lengths 0..=3.
        for i in 0..K as i64 {
            let t = next();
            send(1, Event::ZoneEntered { zone: name("till"), track: t, at_ms: T0 + i });
            send(1, Event::ZoneExited { zone: name("till"), track: t, at_ms: T0 + i + 9000, dwell_ms: 9000 });
        }
        for (i, len) in [0u32, 1, 3, 2].into_iter().enumerate() {
            let at_ms = T0 + 5000 * i as i64;
            let mean_wait_ms = 1000 * i64::from(len);
            send(
                1,
                Event::QueueSample {
                    zone: name("till"),
                    at_ms,
                    length: len,
                    mean_wait_ms,
                    max_wait_ms: 2 * mean_wait_ms,
                },
            );
        }
        // Occupancy: "few" sampled twice (3, then 7); the door's entrance an hour before (too old to be live).
        send(1, Event::Occupancy { zone: name("few"), at_ms: T0, count: 3 });
        send(1, Event::Occupancy { zone: name("few"), at_ms: T0 + 5000, count: 7 });
        send(0, Event::Occupancy { zone: name("entrance"), at_ms: T0 - HOUR, count: 9 });
        // Mood: "few" has k-1 tracks in one bucket; "many" k+1 split over two buckets, 20 faces read and 4
        // not; "lone" one track in k buckets (k per-bucket tracks summed, but one person); "blurry" k+1
        // tracks whose faces were mostly not read (20 read, 30 not).
        let tokens = |t: std::ops::Range<u16>| TrackTokens::new(t.collect());
        let mood = |zone: &str, bucket: i64, counts: [u32; 7], uncertain: u32, tokens: TrackTokens| Event::MoodBucket {
            zone: name(zone),
            bucket_start_ms: T0 + bucket * 900_000,
            counts,
            samples: counts.iter().sum(),
            uncertain,
            tracks: tokens.len() as u32,
            tokens,
        };
        send(1, mood("few", 0, [0, 0, 0, 4, 0, 0, 4], 0, tokens(0..K as u16 - 1)));
        send(1, mood("many", 0, [2, 0, 0, 4, 0, 0, 10], 3, tokens(10..13)));
        send(1, mood("many", 1, [0, 0, 0, 0, 0, 0, 4], 1, tokens(13..K as u16 + 11)));
        for bucket in 0..i64::from(K) {
            send(1, mood("lone", bucket, [0, 0, 0, 1, 0, 0, 0], 0, tokens(99..100)));
        }
        send(1, mood("blurry", 0, [0, 0, 0, 20, 0, 0, 0], 30, tokens(200..K as u16 + 201)));
        // Heat: cell (1, 1) on both cameras, k-1 + 1 tracks; cell (2, 1) k-1 tracks on one; cell (3, 1) one
        // track in k buckets.
        let heat = |cx: i32, bucket: i64, tokens: TrackTokens| Event::HeatCell {
            bucket_start_ms: T0 + bucket * 900_000,
            cx,
            cy: 1,
            presence: 10 * tokens.len() as u32,
            dwell_ms: 1000 * tokens.len() as i64,
            tracks: tokens.len() as u32,
            tokens,
        };
        send(0, heat(1, 0, tokens(0..K as u16 - 1)));
        send(1, heat(1, 0, tokens(50..51)));
        send(1, heat(2, 0, tokens(0..K as u16 - 1)));
        for bucket in 0..i64::from(K) {
            send(1, heat(3, bucket, tokens(7..8)));
        }
        drop(tx);
        let stats = writer.finish().unwrap();
        assert_eq!(stats.dropped, 0);
        (dir, path)
    }

    /// A day of zone figures through the real writer: 10, 12 and 2 shoppers in three hours, each staying at
    /// the shelf, touching it, walking entrance -> shelf, seen on a heat cell and in a mood bucket.
    fn zone_day(day: i64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("day.sqlite");
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(&path, &["aisle".to_string()], options).unwrap();
        let tx = writer.sender();
        let send = |event: Event| tx.send(Record::Event { camera: 0, event });
        let mut id = 0u16;
        for (hour, n) in [(9i64, 10u16), (10, 12), (11, 2)] {
            let at = day + hour * HOUR;
            let tokens = TrackTokens::new((id..id + n).collect());
            for i in 0..n {
                let track = TrackId(0x5000 + u64::from(id + i));
                let t = at + i64::from(i) * 60_000;
                send(Event::ZoneExited { zone: name("shelf"), track, at_ms: t, dwell_ms: 30_000 });
                send(Event::ShelfInteraction { zone: name("shelf"), track, start_ms: t, duration_ms: 2000 });
                let zones = vec![name("entrance"), name("shelf")];
                send(Event::Journey { track, zones, start_ms: t, end_ms: t + 40_000 });
                let store = crate::fuse::StoreTrackId(0x9000 + u64::from(id + i));
                tx.send(Record::Visit { store, start_ms: t, end_ms: t + 40_000, camera_tracks: 1 });
            }
            send(Event::HeatCell {
                bucket_start_ms: at,
                cx: 4,
                cy: 2,
                presence: 10 * u32::from(n),
                dwell_ms: 1000 * i64::from(n),
                tracks: u32::from(n),
                tokens: tokens.clone(),
            });
            send(Event::MoodBucket {
                zone: name("shelf"),
                bucket_start_ms: at,
                counts: [0, 0, 0, 3 * u32::from(n), 0, 0, 0],
                samples: 3 * u32::from(n),
                uncertain: 0,
                tracks: u32::from(n),
                tokens,
            });
            id += n;
        }
        drop(tx);
        assert_eq!(writer.finish().unwrap().dropped, 0);
        (dir, path)
    }

    #[test]
    fn every_zone_figure_of_a_day_minus_its_hours_gives_no_one_away() {
        let day = crate::buckets::floor(T0, crate::buckets::Level::Day);
        let (_dir, path) = zone_day(day);
        let conn = open_ro(&path).unwrap();
        // Each section's additive figures of one series, for a period: what an attacker would subtract.
        let figures = |p: Period| -> Vec<(&'static str, u64)> {
            let dwell = dwell_per_zone(&conn, p, K).unwrap();
            let touch = interactions(&conn, p, K).unwrap();
            let pairs = funnel_pairs(&conn, p, K).unwrap();
            let steps = funnel(&conn, p, K, &["entrance".into(), "shelf".into()]).unwrap();
            let top = top_journeys(&conn, p, K, 5).unwrap();
            let heat = heat_cells(&conn, p, K, None).unwrap();
            let mood = mood_per_zone(&conn, p, K).unwrap();
            let store = visits(&conn, p, K).unwrap();
            let first = |v: Option<u64>| v.unwrap_or(0);
            vec![
                ("store visits", first(store.visits)),
                ("dwell visits", dwell.first().map_or(0, |d| first(d.visits))),
                ("dwell tracks", dwell.first().map_or(0, |d| first(d.tracks))),
                ("interactions", touch.first().map_or(0, |t| first(t.interactions))),
                ("funnel pair", pairs.iter().find(|f| f.from == "entrance").map_or(0, |f| first(f.reached))),
                ("funnel step 2", first(steps[1].tracks)),
                ("top journey", top.first().map_or(0, |j| first(j.tracks))),
                ("heat presence", heat.first().map_or(0, |h| first(h.presence))),
                ("heat tracks", heat.first().map_or(0, |h| first(h.tracks))),
                ("mood samples", mood.first().map_or(0, |m| first(m.samples))),
            ]
        };
        // The raw attack: the day's 24 minus hours 9 and 10 (10 and 12 shown) would be the 2 of hour 11. A
        // period of up to two days is reported in hours; the day as one figure comes in longer periods.
        let three_days = figures(Period { from_ms: day, to_ms: day + 3 * 24 * HOUR });
        let one_day = figures(Period { from_ms: day, to_ms: day + 24 * HOUR });
        let mut hours = vec![0u64; three_days.len()];
        for h in 0..24 {
            let one = figures(Period { from_ms: day + h * HOUR, to_ms: day + (h + 1) * HOUR });
            for (sum, (_, n)) in hours.iter_mut().zip(&one) {
                *sum += n;
            }
        }
        for (((what, days_n), sum), (_, day_n)) in three_days.iter().zip(&hours).zip(&one_day) {
            // Each shopper counts once per figure here (one visit, one touch, one journey, one cell per hour),
            // or 10 times (heat presence) or 3 (faces read).
            let per_person = match *what {
                "heat presence" => 10,
                "mood samples" => 3,
                _ => 1,
            };
            assert_eq!(days_n, &(24 * per_person), "{what}: the day, in a report of days, is shown whole");
            let gap = (days_n - sum) / per_person;
            assert!(
                gap == 0 || gap >= u64::from(K),
                "{what}: the day ({days_n}) minus its hours ({sum}) isolates {gap}"
            );
            assert_eq!(*sum, 12 * per_person, "{what}: hour 9 goes with hour 11");
            assert_eq!(day_n, sum, "{what}: a report of the day's hours is the sum of the hours");
        }
        let dwell = |p: Period| dwell_per_zone(&conn, p, K).unwrap()[0].buckets_suppressed;
        assert_eq!(dwell(Period { from_ms: day, to_ms: day + 24 * HOUR }), 2, "hours 9 and 11 are left out");
        assert_eq!(dwell(Period { from_ms: day, to_ms: day + 3 * 24 * HOUR }), 0);
    }

    #[test]
    fn the_store_now_holds_who_entered_today_and_has_not_left() {
        let (_dir, path) = database();
        let conn = open_ro(&path).unwrap();
        // 2k-1 entered in the first two hours, k left at the third: k-1 inside, suppressed at k.
        let now = T0 + 3 * HOUR;
        let o = store_occupancy(&conn, now, 1).unwrap();
        assert_eq!(
            (o.people, o.since_ms),
            (Some(u64::from(K) - 1), crate::buckets::floor(now, crate::buckets::Level::Day))
        );
        assert!(store_occupancy(&conn, now, K).unwrap().suppressed);
        // Before the exits, all of them; the next day, nobody (the store closed at midnight).
        assert_eq!(store_occupancy(&conn, T0 + 2 * HOUR - 1, 1).unwrap().people, Some(2 * u64::from(K) - 1));
        assert_eq!(store_occupancy(&conn, T0 + 24 * HOUR, 1).unwrap().people, Some(0));
    }

    /// One door camera: A enters and leaves unseen (no exit, the visit ends at 1 min); B enters `b_after_ms`
    /// after T0 and is still inside. Frames are logged once a minute in the minutes given.
    fn empty_store(frames: std::ops::Range<i64>, b_after_ms: i64) -> (tempfile::TempDir, std::path::PathBuf) {
        use crate::fuse::StoreTrackId;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.sqlite");
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(&path, &["door".to_string()], options).unwrap();
        let tx = writer.sender();
        for (seq, m) in frames.enumerate() {
            let ts_ms = T0 + m * 60_000;
            tx.send(Record::Frame { camera: 0, ts_ms, seq: seq as u64, faces_blurred: 0, frames_dropped: 0 });
        }
        let (a, b) = (TrackId(0xa), TrackId(0xb));
        let b_at = T0 + b_after_ms;
        let entry =
            |track, at_ms| Record::Event { camera: 0, event: Event::Entry { zone: name("entrance"), track, at_ms } };
        tx.send(entry(a, T0 + 1000));
        tx.send(Record::VisitMember { store: StoreTrackId(1), camera: 0, track: a, at_ms: T0 + 1000 });
        tx.send(Record::Visit { store: StoreTrackId(1), start_ms: T0 + 1000, end_ms: T0 + 60_000, camera_tracks: 1 });
        tx.send(entry(b, b_at));
        tx.send(Record::VisitMember { store: StoreTrackId(2), camera: 0, track: b, at_ms: b_at });
        drop(tx);
        writer.finish().unwrap();
        (dir, path)
    }

    #[test]
    fn the_store_seen_empty_starts_counting_again() {
        let midnight = crate::buckets::floor(T0, crate::buckets::Level::Day);
        let people = |frames: std::ops::Range<i64>, b_after_ms: i64, now: i64| {
            let (_dir, path) = empty_store(frames, b_after_ms);
            let o = store_occupancy(&open_ro(&path).unwrap(), now, 1).unwrap();
            (o.people, o.since_ms)
        };
        // Cameras ran through minutes 0-5 and nobody was seen from 1 to 4 min: A is forgotten.
        assert_eq!(people(0..6, 240_000, T0 + 300_000), (Some(1), T0 + 60_000));
        // No frames in that stretch (the box was off): it was not seen empty, A still counts.
        assert_eq!(people(4..6, 240_000, T0 + 300_000), (Some(2), midnight));
        // B came in 30 s after A's visit ended: nobody for 30 s is not empty long enough.
        assert_eq!(people(0..6, 90_000, T0 + 150_000), (Some(2), midnight));
        // B has been inside since T0: never empty.
        assert_eq!(people(0..6, 0, T0 + 300_000), (Some(2), midnight));
    }

    #[test]
    fn the_store_heatmap_minus_one_camera_gives_no_one_away() {
        // One cell in one hour: 10 people on the door camera, 2 on the aisle camera. The store's cell (12)
        // minus the door's (10) would be the aisle's 2, so the door's share is hidden too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.sqlite");
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(&path, &["door".to_string(), "aisle".to_string()], options).unwrap();
        let tx = writer.sender();
        for (camera, tokens) in [(0, 0..10u16), (1, 100..102)] {
            let tokens = TrackTokens::new(tokens.collect());
            let n = tokens.len() as u32;
            let event =
                Event::HeatCell { bucket_start_ms: T0, cx: 3, cy: 3, presence: n, dwell_ms: 100, tracks: n, tokens };
            tx.send(Record::Event { camera, event });
        }
        drop(tx);
        writer.finish().unwrap();
        let conn = open_ro(&path).unwrap();
        let p = Period { from_ms: T0, to_ms: T0 + HOUR };
        let cell = |camera: Option<&str>| heat_cells(&conn, p, K, camera).unwrap()[0].clone();
        // The floor's cell is the camera that saw most of it (overlapping views see the same people).
        assert_eq!((cell(None).presence, cell(None).tracks), (Some(10), Some(10)));
        assert!(cell(Some("aisle")).suppressed);
        assert!(cell(Some("door")).suppressed, "{:?}", cell(Some("door")));
        assert!(heat_cells(&conn, p, K, Some("till")).unwrap().is_empty(), "an unknown camera has no cells");
    }

    #[test]
    fn every_query_suppresses_groups_smaller_than_k_and_shows_the_rest() {
        let (_dir, path) = database();
        let conn = open_ro(&path).unwrap();
        let all = Period::ALL;

        // Footfall: hour 0 has k-1 entering tracks (suppressed by its own gate), hour 1 has k: shown alone, it
        // would give hour 0 away as the day's 2k-1 minus k, so it is suppressed too (the day is shown).
        let f = movements(&conn, all, K).unwrap().footfall_per_hour;
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.iter().all(|row| row.suppressed && row.entries.is_none()), "{f:?}");
        assert_eq!(f[0].camera.as_deref(), Some("door"));
        assert_eq!(f[1].camera, None);
        assert_eq!(f[2].hour_start_ms, T0 + HOUR);

        // Entries/exits: door has 2k-1 entries and k exits (shown); aisle none (0 shown).
        let m = movements(&conn, all, K).unwrap().entries_exits;
        let cams: Vec<_> = m.iter().map(|r| r.camera.clone()).collect();
        assert_eq!(cams, [Some("aisle".into()), Some("door".into()), None]);
        assert_eq!((m[0].entries, m[0].exits, m[0].suppressed), (Some(0), Some(0), false));
        assert_eq!((m[1].entries, m[1].exits), (Some(2 * u64::from(K) - 1), Some(u64::from(K))));
        assert_eq!(m[1].buckets_suppressed, 0);
        assert_eq!(m[2], Movement { camera: None, ..m[1].clone() });
        // The first two hours are reported hour by hour, and both are suppressed: the period is too.
        let m = movements(&conn, Period { from_ms: T0, to_ms: T0 + 2 * HOUR }, K).unwrap().entries_exits;
        assert_eq!((m[1].entries, m[1].exits, m[1].suppressed, m[1].buckets_suppressed), (None, None, true, 2));
        // A minute into the third hour is snapped to its end: the k exits are shown, the entries' hours
        // are left out and counted.
        let m = movements(&conn, Period { from_ms: T0, to_ms: T0 + 2 * HOUR + 1 }, K).unwrap().entries_exits;
        assert_eq!((m[1].entries, m[1].exits, m[1].suppressed), (Some(0), Some(u64::from(K)), false));
        assert_eq!(m[1].buckets_suppressed, 2);

        // Dwell: few (k-1 tracks, 2(k-1) visits) suppressed; edge (k) and many (k+1) shown with exact stats.
        let d = dwell_per_zone(&conn, all, K).unwrap();
        let zone = |z: &str| d.iter().find(|r| r.zone == z).unwrap().clone();
        let few = zone("few");
        assert!(few.suppressed);
        assert_eq!((few.visits, few.tracks, few.mean_ms, few.median_ms, few.p90_ms), (None, None, None, None, None));
        let edge = zone("edge");
        assert!(!edge.suppressed);
        // Durations 1..=5 s.
        assert_eq!((edge.visits, edge.tracks), (Some(5), Some(5)));
        assert_eq!((edge.mean_ms, edge.median_ms, edge.p90_ms), (Some(3000.0), Some(3000.0), Some(5000)));
        let many = zone("many");
        // Durations 1..=6 s: median 3.5 s, p90 = 6th of 6 (ceil(5.4)).
        assert_eq!((many.tracks, many.median_ms, many.p90_ms), (Some(6), Some(3500.0), Some(6000)));
        assert_eq!(zone("till").tracks, Some(5));
        // At k = 1 nothing is suppressed, and "few" shows its two visits per track.
        let few1 = dwell_per_zone(&conn, all, 1).unwrap().into_iter().find(|r| r.zone == "few").unwrap();
        assert_eq!((few1.visits, few1.tracks, few1.suppressed), (Some(8), Some(4), false));

        // Interactions: one per track.
        let i = interactions(&conn, all, K).unwrap();
        let shown: Vec<_> = i.iter().map(|r| (r.zone.as_str(), r.interactions, r.suppressed)).collect();
        assert_eq!(shown, [("edge", Some(5), false), ("few", None, true), ("many", Some(6), false)]);
        assert_eq!(i[0].mean_duration_ms, Some(500.0));

        // Queue: k tracks through the zone; lengths 0, 1, 3, 2; waits weighted by length.
        let q = queues(&conn, all, K).unwrap();
        assert_eq!(q.len(), 1);
        let q = &q[0];
        assert_eq!(
            (q.zone.as_str(), q.samples, q.tracks, q.max_length, q.suppressed),
            ("till", Some(4), Some(5), Some(3), false)
        );
        assert_eq!(q.mean_length, Some(1.5));
        // (1*1000 + 3*3000 + 2*2000) / 6
        assert_eq!(q.mean_wait_ms, Some(14_000.0 / 6.0));
        assert_eq!(q.max_wait_ms, Some(6000));
        assert!(queues(&conn, all, K + 1).unwrap()[0].suppressed);

        // Mood: few has k-1 tracks (suppressed); many k+1 distinct over its two buckets (shown); lone one
        // person in k buckets (suppressed).
        let mood = mood_per_zone(&conn, all, K).unwrap();
        assert_eq!(mood.len(), 4);
        // Blurry: shown (k+1 people), but with 40% of its faces read it says so and nothing more.
        let blurry = &mood[0];
        assert_eq!((blurry.zone.as_str(), blurry.suppressed, blurry.readable), ("blurry", false, false));
        assert_eq!((blurry.samples, blurry.uncertain, blurry.read_share), (Some(20), Some(30), Some(0.4)));
        assert!(blurry.counts.is_none() && blurry.shares.is_none());
        assert!(mood[1].suppressed && mood[1].counts.is_none() && mood[1].shares.is_none());
        assert_eq!((mood[2].zone.as_str(), mood[2].tracks, mood[2].suppressed), ("lone", None, true));
        // Lone at k = 1: shown, but k reads are too few to be read.
        let lone = mood_per_zone(&conn, all, 1).unwrap().remove(2);
        assert_eq!((lone.samples, lone.tracks, lone.readable), (Some(u64::from(K)), Some(1), false));
        assert!(lone.shares.is_none());
        let many = &mood[3];
        assert_eq!((many.samples, many.uncertain, many.tracks, many.readable), (Some(20), Some(4), Some(6), true));
        assert_eq!(many.counts.as_ref().unwrap().0, [2, 0, 0, 4, 0, 0, 14]);
        assert_eq!(many.shares.as_ref().unwrap().0[6], 0.7);
        assert_eq!(many.read_share, Some(20.0 / 24.0));

        // Heat: cell (1,1) has k-1 tracks on the door camera and 1 on the aisle camera in one bucket: the
        // floor's cell is the door camera's (overlapping views are not summed), k-1, suppressed; (2,1) k-1
        // (suppressed), (3,1) one person over k buckets (suppressed).
        let h = heat_cells(&conn, all, K, None).unwrap();
        let cells: Vec<_> = h.iter().map(|c| (c.cx, c.cy, c.tracks, c.presence, c.suppressed)).collect();
        assert_eq!(cells, [(1, 1, None, None, true), (2, 1, None, None, true), (3, 1, None, None, true)]);
        let h1 = heat_cells(&conn, all, 1, None).unwrap();
        assert_eq!((h1[0].tracks, h1[0].presence, h1[0].dwell_ms), (Some(4), Some(40), Some(4000)));
        assert_eq!((h1[2].tracks, h1[2].presence), (Some(1), Some(10 * u64::from(K))));
        assert_eq!(h[0].cell_m, 0.5);
        // One camera alone: (1,1) has k-1 on the door camera.
        let door = heat_cells(&conn, all, K, Some("door")).unwrap();
        assert_eq!(door.len(), 1);
        assert!(door[0].suppressed);
        assert!(heat_cells(&conn, all, K, Some("nowhere")).unwrap().is_empty());

        // Journeys: [edge, few] x4, [edge] x5 (edge then edge collapses), [edge, many] x6.
        let top = top_journeys(&conn, all, K, 10).unwrap();
        let rows: Vec<_> = top.iter().map(|j| (j.zones.join(">"), j.tracks, j.suppressed)).collect();
        assert_eq!(
            rows,
            [("edge>many".into(), Some(6), false), ("edge".into(), Some(5), false), ("edge>few".into(), None, true)]
        );
        assert_eq!(top_journeys(&conn, all, K, 1).unwrap().len(), 1);

        // Funnel pairs: 15 entered edge; 6 reached many (shown), 4 reached few (suppressed).
        let pairs = funnel_pairs(&conn, all, K).unwrap();
        let rows: Vec<_> =
            pairs.iter().map(|p| (p.from.as_str(), p.to.as_str(), p.entered, p.reached, p.suppressed)).collect();
        assert_eq!(rows, [("edge", "many", Some(15), Some(6), false), ("edge", "few", None, None, true)]);
        assert_eq!(pairs[0].share, Some(0.4));

        // A requested funnel.
        let steps = funnel(&conn, all, K, &["edge".into(), "many".into(), "few".into()]).unwrap();
        let rows: Vec<_> = steps.iter().map(|s| (s.step, s.tracks, s.share_of_first, s.suppressed)).collect();
        assert_eq!(
            rows,
            [(1, Some(15), Some(1.0), false), (2, Some(6), Some(0.4), false), (3, Some(0), Some(0.0), false)]
        );
        let steps = funnel(&conn, all, K, &["edge".into(), "few".into()]).unwrap();
        assert!(steps[1].suppressed && steps[1].tracks.is_none() && steps[1].share_of_previous.is_none());
        let steps = funnel(&conn, all, K, &["nowhere".into(), "edge".into()]).unwrap();
        assert_eq!((steps[0].tracks, steps[1].tracks), (Some(0), Some(0)));

        // A period with nothing in it gives no rows (and zeros for the cameras).
        let empty = Period { from_ms: 0, to_ms: 1 };
        assert!(dwell_per_zone(&conn, empty, K).unwrap().is_empty());
        let m = movements(&conn, empty, K).unwrap();
        assert!(m.footfall_per_hour.is_empty());
        assert_eq!(m.entries_exits[2].entries, Some(0));
        assert_eq!(cameras(&conn).unwrap(), ["aisle", "door"]);

        // Live: the newest queue sample (length 2) is shown at k = 2, suppressed at k = 5.
        let live = latest_queues(&conn, 60_000, 2).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].zone.as_str(), live[0].at_ms, live[0].length), ("till", T0 + 15_000, Some(2)));
        assert_eq!((live[0].mean_wait_ms, live[0].max_wait_ms), (Some(2000), Some(4000)));
        assert!(latest_queues(&conn, 60_000, K).unwrap()[0].suppressed);
        let occ = latest_occupancy(&conn, 60_000, K).unwrap();
        assert_eq!(occ.len(), 1, "{occ:?}");
        assert_eq!((occ[0].camera.as_str(), occ[0].zone.as_str(), occ[0].count), ("aisle", "few", Some(7)));
        assert_eq!(latest_occupancy(&conn, 2 * HOUR, K).unwrap().len(), 2);
        assert!(latest_occupancy(&conn, 60_000, 8).unwrap()[0].suppressed);
    }

    /// Through the real writer and queries: a quiet door (k-2 shoppers) beside a busy one (2k) in the same
    /// hour: the store's total is shown, both doors are suppressed, so 2k + k-2 minus 2k gives nothing away.
    #[test]
    fn store_totals_do_not_reveal_a_quiet_camera() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(&path, &["quiet".to_string(), "busy".to_string()], options).unwrap();
        let tx = writer.sender();
        for (camera, n) in [(0usize, K - 2), (1, 2 * K)] {
            for i in 0..n {
                let track = TrackId(((camera as u64) << 32) + u64::from(i) + 1);
                let at_ms = T0 + i64::from(i) * 1000;
                tx.send(Record::Event { camera, event: Event::Entry { zone: name("door"), track, at_ms } });
                let at_ms = at_ms + 60_000;
                tx.send(Record::Event { camera, event: Event::Exit { zone: name("door"), track, at_ms } });
            }
        }
        drop(tx);
        writer.finish().unwrap();
        let conn = open_ro(&path).unwrap();
        let Movements { entries_exits: m, footfall_per_hour: f } = movements(&conn, Period::ALL, K).unwrap();
        let rows: Vec<_> = m.iter().map(|r| (r.camera.as_deref(), r.entries, r.suppressed)).collect();
        assert_eq!(rows, [(Some("busy"), None, true), (Some("quiet"), None, true), (None, Some(13), false)]);
        let rows: Vec<_> = f.iter().map(|r| (r.camera.as_deref(), r.entries)).collect();
        assert_eq!(rows, [(Some("busy"), None), (Some("quiet"), None), (None, Some(13))]);
        // At k = 3 the quiet door (3) is shown: nothing to protect.
        let m = movements(&conn, Period::ALL, 3).unwrap().entries_exits;
        assert!(m.iter().all(|r| !r.suppressed), "{m:?}");
    }

    #[test]
    fn the_gate_hides_groups_of_one_to_k_minus_one() {
        assert!(Gate::new(5, &[4]).suppressed());
        assert!(!Gate::new(5, &[5]).suppressed());
        assert!(!Gate::new(5, &[0]).suppressed());
        assert!(Gate::new(5, &[100, 1]).suppressed());
        assert!(!Gate::new(1, &[1]).suppressed());
        assert_eq!(Gate::new(5, &[3]).show(3), None);
    }

    /// A database from before tokens (schema 3) is read without them (each bucket's own count, the largest
    /// per group), and once upgraded its new rows' tokens count with the old rows.
    #[test]
    fn buckets_from_before_tokens_count_as_their_largest_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &crate::store::schema::MIGRATIONS[..3] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO runs (id, started_at_ms, iobox_version) VALUES (1, 0, 'old');
                 INSERT INTO cameras (id, name) VALUES (1, 'door');
                 INSERT INTO heat VALUES (1, 1, 0, 0.5, 0, 0, 10, 100, 3), (1, 1, 900000, 0.5, 0, 0, 10, 100, 4),
                                         (1, 1, 0, 0.5, 1, 0, 10, 100, 6);
                 INSERT INTO mood VALUES (1, 1, 'a', 0, 0, 0, 0, 2, 0, 0, 0, 2, 2),
                                         (1, 1, 'a', 900000, 0, 0, 0, 3, 0, 0, 0, 3, 3);",
            )
            .unwrap();
        }
        let conn = open_ro(&path).unwrap();
        let h = heat_cells(&conn, Period::ALL, K, None).unwrap();
        let cells: Vec<_> = h.iter().map(|c| (c.cx, c.suppressed)).collect();
        assert_eq!(cells, [(0, true), (1, false)], "3 + 4 per bucket is at least 4 people, not 7");
        assert_eq!(heat_cells(&conn, Period::ALL, 1, None).unwrap()[0].tracks, Some(4));
        assert_eq!(mood_per_zone(&conn, Period::ALL, 1).unwrap()[0].tracks, Some(3));
        drop(conn);

        // Upgraded: a new bucket with 5 tokens (1-5) in cell (0, 0) makes it at least 5 people; the old
        // buckets' made-up tokens 0-3 add the one not among them.
        drop(open_rw(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            let tokens = TrackTokens::new((1..=5).collect()).to_le_bytes();
            conn.execute("INSERT INTO heat VALUES (1, 1, 1800000, 0.5, 0, 0, 10, 100, 5, ?1)", params![tokens])
                .unwrap();
        }
        let conn = open_ro(&path).unwrap();
        let h = heat_cells(&conn, Period::ALL, K, None).unwrap();
        assert_eq!((h[0].tracks, h[0].suppressed), (Some(6), false));
    }

    #[test]
    fn dwell_statistics() {
        assert_eq!(dwell_stats(&mut [5, 1, 3]), (3.0, 3.0, 5));
        assert_eq!(dwell_stats(&mut [4, 1, 3, 2]), (2.5, 2.5, 4));
        let mut v: Vec<i64> = (1..=20).collect();
        assert_eq!(dwell_stats(&mut v).2, 18);
        assert_eq!(dwell_stats(&mut []), (0.0, 0.0, 0));
    }
}
