//! The JSON API, and the data behind every page: each `*_data` function parses the route's query parameters,
//! asks the k-suppressed queries of [`crate::store::query`] on the blocking pool, and returns a serializable
//! answer that the API sends as JSON and the pages draw.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{Local, TimeZone};
use serde::Serialize;

use super::auth::{Role, Viewer};
use super::http::{Query, Refusal, blocking, bytes};
use super::routes::{self, HEAT_PARAMS, JOURNEY_PARAMS, RANGE_PARAMS};
use super::{AppState, CameraInfo};
use crate::alerts::AlertKind;
use crate::calibration::FitMethod;
use crate::heatmap::HeatKind;
use crate::jobs::report::Hourly;
use crate::live::Still;
use crate::store::query::{
    self, FunnelPair, Gate, HeatCell, JourneyCount, LiveCount, LiveQueue, Movement, Period, QueueStats,
    ShelfInteractions, ZoneDwell, ZoneMood,
};

/// Samples within this long of the newest one count as live.
pub(crate) const LIVE_WINDOW_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub(crate) fn now_ms() -> i64 {
    crate::store::writer::now_ms()
}

pub(crate) fn local_rfc3339(ms: i64) -> Option<String> {
    Local.timestamp_millis_opt(ms).single().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

/// A period as the API reports it: open ends are `null`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Range {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// RFC 3339, local time.
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Range {
    fn of(period: Period) -> Range {
        let open = |ms: i64| ms == i64::MIN || ms == i64::MAX;
        let from_ms = (!open(period.from_ms)).then_some(period.from_ms);
        let to_ms = (!open(period.to_ms)).then_some(period.to_ms);
        Range { from_ms, to_ms, from: from_ms.and_then(local_rfc3339), to: to_ms.and_then(local_rfc3339) }
    }
}

fn today_ms(now: i64) -> i64 {
    crate::when::parse_time("today", now).unwrap_or(now - DAY_MS)
}

// ---- overview --------------------------------------------------------------------------------------------

/// An alert as the dashboard shows it: the value is a fact about people, so it is gated like any count
/// (for count rules the group is the count; a dwell alert is about one person).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertRow {
    pub state: crate::alerts::AlertState,
    pub rule: String,
    pub kind: AlertKind,
    pub camera: String,
    pub zone: String,
    pub value: Option<f64>,
    pub threshold: f64,
    pub since_ms: i64,
    pub at_ms: i64,
    pub suppressed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Alerts {
    /// Whether alerts are being collected (`iobox run --serve` with rules).
    pub live: bool,
    /// Newest first.
    pub recent: Vec<AlertRow>,
    /// The configured rules, described.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overview {
    pub range: Range,
    pub k: u32,
    /// Per camera, then the whole store (`camera: null`).
    pub entries_exits: Vec<Movement>,
    pub footfall_per_hour: Vec<Hourly>,
    /// The people in the store now (entered minus exited today, each visit once).
    pub store_occupancy: query::StoreOccupancy,
    /// Store visits that began in the period (each person once however many cameras saw them) and how
    /// long they lasted.
    pub visits: query::Visits,
    /// The newest occupancy sample of each zone (within a minute of the newest sample stored).
    pub occupancy: Vec<LiveCount>,
    /// The newest sample of each queue zone.
    pub live_queues: Vec<LiveQueue>,
    /// Queue statistics over the period.
    pub queues: Vec<QueueStats>,
    pub alerts: Alerts,
}

pub(crate) async fn overview_data(state: &AppState, raw: Option<&str>) -> Result<Overview, Refusal> {
    let q = Query::parse(raw, RANGE_PARAMS)?;
    let now = now_ms();
    let period = q.period(now, today_ms(now))?;
    let (s, k) = (state.clone(), state.k);
    let (
        query::Movements { entries_exits, footfall_per_hour: footfall },
        store_occupancy,
        visits,
        occupancy,
        live_queues,
        queues,
    ) = blocking(move || {
        Ok(s.db.with(|c| {
            Ok((
                query::movements(c, period, k)?,
                query::store_occupancy(c, now, k)?,
                query::visits(c, period, k)?,
                query::latest_occupancy(c, LIVE_WINDOW_MS, k)?,
                query::latest_queues(c, LIVE_WINDOW_MS, k)?,
                query::queues(c, period, k)?,
            ))
        })?)
    })
    .await?;
    let recent = state
        .live
        .as_ref()
        .map(|l| l.recent_alerts())
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let group = if a.kind == AlertKind::Dwell { 1 } else { a.value.max(0.0) as u64 };
            let gate = Gate::new(state.k, &[group]);
            AlertRow {
                state: a.state,
                rule: a.rule.to_string(),
                kind: a.kind,
                camera: a.camera.to_string(),
                zone: a.zone.to_string(),
                value: gate.show(a.value),
                threshold: a.threshold,
                since_ms: a.since_ms,
                at_ms: a.at_ms,
                suppressed: gate.suppressed(),
            }
        })
        .collect();
    Ok(Overview {
        range: Range::of(period),
        k: state.k,
        entries_exits,
        footfall_per_hour: footfall
            .into_iter()
            .map(|row| Hourly { hour: local_rfc3339(row.hour_start_ms).unwrap_or_default(), row })
            .collect(),
        store_occupancy,
        visits,
        occupancy,
        live_queues,
        queues,
        alerts: Alerts {
            live: state.live.is_some() && !state.rules.is_empty(),
            recent,
            rules: state.rules.iter().map(|r| r.to_string()).collect(),
        },
    })
}

// ---- heatmap ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanInfo {
    pub url: &'static str,
    pub width: u32,
    pub height: u32,
    pub pixels_per_metre: f64,
    pub origin_px: [f64; 2],
}

/// A zone of a camera's calibration, in floor metres.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ZoneShape {
    pub camera: String,
    pub name: String,
    pub kind: &'static str,
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Heatmap {
    pub range: Range,
    pub k: u32,
    /// `presence` or `dwell`.
    pub kind: HeatKind,
    /// What a cell's value counts: track-frames (presence) or seconds (dwell).
    pub unit: &'static str,
    pub camera: Option<String>,
    /// The largest value of a shown cell (the top of the colour bar).
    pub max: Option<f64>,
    pub shown: usize,
    pub suppressed: usize,
    /// Cells `[cx, cx+1) x [cy, cy+1)` in units of `cell_m` metres; suppressed ones without figures.
    pub cells: Vec<HeatCell>,
    pub plan: Option<PlanInfo>,
    pub zones: Vec<ZoneShape>,
}

impl Heatmap {
    /// A shown cell's value in the map's unit.
    pub fn value(&self, c: &HeatCell) -> Option<f64> {
        self.kind.value(c)
    }
}

pub(crate) fn zone_shapes(state: &AppState, camera: Option<&str>) -> Vec<ZoneShape> {
    let mut out: Vec<ZoneShape> = Vec::new();
    for c in state.cameras.iter().filter(|c| camera.is_none_or(|n| n == c.name)) {
        for z in c.calibration().map(|cal| cal.zones.as_slice()).unwrap_or_default() {
            // Cameras of a site share zone names and shapes on the one plan: draw each zone once.
            if camera.is_none() && out.iter().any(|o| o.name == z.name) {
                continue;
            }
            out.push(ZoneShape {
                camera: c.name.clone(),
                name: z.name.clone(),
                kind: z.kind.as_str(),
                polygon: z.polygon.points.iter().map(|p| [p.x, p.y]).collect(),
            });
        }
    }
    out
}

pub(crate) async fn heatmap_data(state: &AppState, raw: Option<&str>) -> Result<Heatmap, Refusal> {
    let q = Query::parse(raw, HEAT_PARAMS)?;
    let now = now_ms();
    let period = q.period(now, now - 7 * DAY_MS)?;
    let kind = if q.choice(&routes::KIND)? == HeatKind::Dwell.as_str() { HeatKind::Dwell } else { HeatKind::Presence };
    let camera = q.get("camera").map(|c| state.camera(c).map(|c| c.name.clone())).transpose().map_err(|mut r| {
        r.status = StatusCode::BAD_REQUEST;
        r
    })?;
    let (s, k, cam) = (state.clone(), state.k, camera.clone());
    let cells = blocking(move || Ok(s.db.with(|c| query::heat_cells(c, period, k, cam.as_deref()))?)).await?;
    let mut map = Heatmap {
        range: Range::of(period),
        k: state.k,
        kind,
        unit: kind.unit(),
        camera: camera.clone(),
        max: None,
        shown: cells.iter().filter(|c| !c.suppressed).count(),
        suppressed: cells.iter().filter(|c| c.suppressed).count(),
        cells,
        plan: state.plan.as_ref().and_then(|p| {
            p.image.as_ref().map(|i| PlanInfo {
                url: "/api/plan.png",
                width: i.width,
                height: i.height,
                pixels_per_metre: p.floor.pixels_per_metre,
                origin_px: [p.floor.origin_px.0, p.floor.origin_px.1],
            })
        }),
        zones: zone_shapes(state, camera.as_deref()),
    };
    map.max = map.cells.iter().filter_map(|c| map.value(c)).reduce(f64::max);
    Ok(map)
}

// ---- zones and journeys ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Zones {
    pub range: Range,
    pub k: u32,
    pub dwell: Vec<ZoneDwell>,
    /// Every ordered pair of zones some track took: of those who entered `from`, how many went on to `to`.
    pub funnel: Vec<FunnelPair>,
    pub interactions: Vec<ShelfInteractions>,
    pub queues: Vec<QueueStats>,
    pub mood: Vec<ZoneMood>,
}

pub(crate) async fn zones_data(state: &AppState, raw: Option<&str>) -> Result<Zones, Refusal> {
    let q = Query::parse(raw, RANGE_PARAMS)?;
    let now = now_ms();
    let period = q.period(now, now - 7 * DAY_MS)?;
    let (s, k) = (state.clone(), state.k);
    blocking(move || {
        Ok(s.db.with(|c| {
            Ok(Zones {
                range: Range::of(period),
                k,
                dwell: query::dwell_per_zone(c, period, k)?,
                funnel: query::funnel_pairs(c, period, k)?,
                interactions: query::interactions(c, period, k)?,
                queues: query::queues(c, period, k)?,
                mood: query::mood_per_zone(c, period, k)?,
            })
        })?)
    })
    .await
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Journeys {
    pub range: Range,
    pub k: u32,
    pub top: usize,
    /// Most tracks first.
    pub journeys: Vec<JourneyCount>,
}

pub(crate) async fn journeys_data(state: &AppState, raw: Option<&str>) -> Result<Journeys, Refusal> {
    let q = Query::parse(raw, JOURNEY_PARAMS)?;
    let now = now_ms();
    let period = q.period(now, now - 7 * DAY_MS)?;
    let top = q.int(&routes::TOP, 10)? as usize;
    let (s, k) = (state.clone(), state.k);
    let journeys = blocking(move || Ok(s.db.with(|c| query::top_journeys(c, period, k, top))?)).await?;
    Ok(Journeys { range: Range::of(period), k: state.k, top, journeys })
}

// ---- cameras ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PreviewInfo {
    pub url: String,
    /// `live` (from the run in this process) or `snapshot` (the run's snapshot file).
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CalibrationSummary {
    pub file: String,
    pub rms_px: f64,
    pub rms_m: f64,
    pub max_px: f64,
    pub max_m: f64,
    pub points: usize,
    pub inliers: usize,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CameraRow {
    pub name: String,
    pub kind: String,
    pub preview: Option<PreviewInfo>,
    pub calibrated: bool,
    /// Integrators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_error: Option<String>,
}

/// Where a camera's preview would come from now, without reading it.
fn preview_source(state: &AppState, cam: &CameraInfo) -> Option<&'static str> {
    if state.live.as_ref().is_some_and(|l| l.preview(&cam.name).is_some()) {
        return Some("live");
    }
    state.snapshot_path(cam).filter(|p| p.is_file()).map(|_| "snapshot")
}

/// The camera's latest anonymized still: live from the run in this process, else its snapshot file.
fn still(state: &AppState, cam: &CameraInfo) -> Result<(Still, &'static str), Refusal> {
    if let Some(s) = state.live.as_ref().and_then(|l| l.preview(&cam.name)) {
        return Ok((s, "live"));
    }
    if let Some(path) = state.snapshot_path(cam).filter(|p| p.is_file()) {
        return Still::from_snapshot(&path).map(|s| (s, "snapshot")).map_err(|e| Refusal::internal(e.to_string()));
    }
    Err(Refusal::not_found(format!(
        "no preview of camera '{}': none is shared by a run in this process (iobox run --serve) and [output] \
         snapshot is {}",
        cam.name,
        if state.snapshot.is_some() { "not written yet" } else { "not set" }
    )))
}

pub(crate) fn cameras_data(state: &AppState, viewer: &Viewer) -> Vec<CameraRow> {
    let integrator = viewer.role == Role::Integrator;
    state
        .cameras
        .iter()
        .map(|c| CameraRow {
            name: c.name.clone(),
            kind: c.kind.clone(),
            preview: preview_source(state, c)
                .map(|source| PreviewInfo { url: format!("/api/cameras/{}/preview.jpg", c.name), source }),
            calibrated: c.calibration().is_some(),
            calibration: c.calibration().filter(|_| integrator).map(|cal| CalibrationSummary {
                file: cal.path.display().to_string(),
                rms_px: cal.fit.rms_px,
                rms_m: cal.fit.rms_m,
                max_px: cal.fit.max_px,
                max_m: cal.fit.max_m,
                points: cal.points.len(),
                inliers: cal.fit.inlier_count(),
                url: format!("/cameras/{}/calibration", c.name),
            }),
            calibration_error: c.calibration.as_ref().and_then(|r| r.as_ref().err()).filter(|_| integrator).cloned(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PointRow {
    pub index: usize,
    pub image_px: [f64; 2],
    pub floor_m: [f64; 2],
    pub residual_px: f64,
    pub residual_m: f64,
    pub inlier: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LineRow {
    pub name: String,
    pub from: [f64; 2],
    pub to: [f64; 2],
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CalibrationDetail {
    pub camera: String,
    pub file: String,
    pub image_width: u32,
    pub image_height: u32,
    /// `exact` (4 pairs: zero residuals say nothing) or `ransac`.
    pub method: &'static str,
    pub rms_px: f64,
    pub max_px: f64,
    pub rms_m: f64,
    pub max_m: f64,
    pub inliers: usize,
    pub points: Vec<PointRow>,
    pub zones: Vec<ZoneShape>,
    pub lines: Vec<LineRow>,
    /// The overlay on the latest anonymized still, when there is one.
    pub overlay: Option<String>,
    pub plan_overlay: String,
}

pub(crate) fn calibration_data(state: &AppState, camera: &str) -> Result<CalibrationDetail, Refusal> {
    let cam = state.camera(camera)?;
    let cal = cam.calibrated()?;
    Ok(CalibrationDetail {
        camera: cam.name.clone(),
        file: cal.path.display().to_string(),
        image_width: cal.image_width,
        image_height: cal.image_height,
        method: match cal.fit.method {
            FitMethod::Exact => "exact",
            FitMethod::Ransac { .. } => "ransac",
        },
        rms_px: cal.fit.rms_px,
        max_px: cal.fit.max_px,
        rms_m: cal.fit.rms_m,
        max_m: cal.fit.max_m,
        inliers: cal.fit.inlier_count(),
        points: cal
            .points
            .iter()
            .zip(&cal.fit.residuals)
            .enumerate()
            .map(|(i, (p, r))| PointRow {
                index: i,
                image_px: [p.image.0, p.image.1],
                floor_m: [p.floor.x, p.floor.y],
                residual_px: r.px,
                residual_m: r.m,
                inlier: r.inlier,
            })
            .collect(),
        zones: zone_shapes(state, Some(&cam.name)),
        lines: cal
            .lines
            .iter()
            .map(|l| LineRow { name: l.name.clone(), from: [l.from.x, l.from.y], to: [l.to.x, l.to.y] })
            .collect(),
        overlay: preview_source(state, cam).map(|_| format!("/api/cameras/{}/overlay.png", cam.name)),
        plan_overlay: format!("/api/cameras/{}/plan-overlay.png", cam.name),
    })
}

// ---- handlers --------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Me {
    name: String,
    role: Role,
    k: u32,
}

pub(crate) async fn me(State(state): State<AppState>, Extension(v): Extension<Viewer>) -> Json<impl Serialize> {
    Json(Me { name: v.name, role: v.role, k: state.k })
}

pub(crate) async fn overview(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Overview>, Refusal> {
    overview_data(&s, q.as_deref()).await.map(Json)
}

pub(crate) async fn heatmap(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Heatmap>, Refusal> {
    heatmap_data(&s, q.as_deref()).await.map(Json)
}

pub(crate) async fn zones(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Zones>, Refusal> {
    zones_data(&s, q.as_deref()).await.map(Json)
}

pub(crate) async fn journeys(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Journeys>, Refusal> {
    journeys_data(&s, q.as_deref()).await.map(Json)
}

pub(crate) async fn cameras(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<CameraRow>>, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    Ok(Json(cameras_data(&s, &v)))
}

pub(crate) async fn preview(
    State(s): State<AppState>,
    Path(camera): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    let cam = s.camera(&camera)?.name.clone();
    let (still, source) = blocking(move || still(&s, s.camera(&cam)?)).await?;
    let mut resp = bytes("image/jpeg", still.jpeg().to_vec());
    resp.headers_mut().insert("x-preview-source", HeaderValue::from_static(source));
    Ok(resp)
}

pub(crate) async fn calibration(
    State(s): State<AppState>,
    Path(camera): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<CalibrationDetail>, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    calibration_data(&s, &camera).map(Json)
}

pub(crate) async fn overlay(
    State(s): State<AppState>,
    Path(camera): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    let cam = s.camera(&camera)?.name.clone();
    let png = blocking(move || {
        let cam = s.camera(&cam)?;
        let cal = cam.calibrated()?;
        let (still, _) = still(&s, cam)?;
        let pic = crate::overlay::camera_overlay_on_still(&still, cal).map_err(|e| Refusal::internal(e.to_string()))?;
        pic.png().map_err(|e| Refusal::internal(e.to_string()))
    })
    .await?;
    Ok(bytes("image/png", png))
}

pub(crate) async fn plan_overlay(
    State(s): State<AppState>,
    Path(camera): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    let cam = s.camera(&camera)?.name.clone();
    let png = blocking(move || {
        let cam = s.camera(&cam)?;
        let cal = cam.calibrated()?;
        let pic = crate::overlay::plan_overlay(&[cal]).map_err(|e| Refusal::internal(e.to_string()))?;
        pic.png().map_err(|e| Refusal::internal(e.to_string()))
    })
    .await?;
    Ok(bytes("image/png", png))
}

pub(crate) async fn plan(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    let plan = s
        .plan
        .as_ref()
        .and_then(|p| p.image.as_ref())
        .ok_or_else(|| Refusal::not_found("no camera's calibration has a readable floor plan"))?;
    Ok(bytes("image/png", plan.png.clone()))
}

/// The heatmap as a picture with its colour bar: what `iobox heatmap` draws, for the same parameters as
/// /api/heatmap.
pub(crate) async fn heatmap_png(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, Refusal> {
    let map = heatmap_data(&s, q.as_deref()).await?;
    let plan =
        s.plan.as_ref().map(|p| p.floor.clone()).ok_or_else(|| {
            Refusal::not_found("no camera has a calibration, and the heatmap is drawn on its floor plan")
        })?;
    let kind = map.kind;
    let title = crate::jobs::heatmap::title(kind, map.range.from_ms, map.range.to_ms, map.camera.as_deref());
    let png = blocking(move || {
        let (pic, _) = crate::jobs::heatmap::draw(&plan, &map.cells, kind, &title);
        pic.png().map_err(|e| Refusal::internal(e.to_string()))
    })
    .await?;
    Ok(bytes("image/png", png))
}

pub(crate) async fn openapi(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, Refusal> {
    Query::parse(q.as_deref(), &[])?;
    Ok(bytes("application/json", s.openapi.clone()))
}
