//! The pages: server-rendered HTML from the same data as the API ([`super::api`]), charts as inline SVG,
//! one style sheet and one small script compiled into the binary.

use std::fmt::Write as _;

use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Local, TimeZone};

use super::AppState;
use super::api::{self, Range};
use super::auth::{Role, Viewer};
use super::charts::{self, Bar, esc, fmt_num};
use super::http::{Refusal, bytes, is_api};
use crate::heatmap::HeatKind;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

const NAV: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/heatmap", "Heatmaps"),
    ("/zones", "Zones"),
    ("/journeys", "Journeys"),
    ("/cameras", "Cameras"),
];

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\"><title>{} · iobox</title><link rel=\"stylesheet\" \
         href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>",
        esc(title)
    )
}

/// A page with the navigation, the user and the logout button.
fn layout(state: &AppState, viewer: &Viewer, title: &str, active: &str, body: &str) -> String {
    let mut nav = String::new();
    for (href, name) in NAV {
        let class = if href == active { " class=\"active\"" } else { "" };
        let _ = write!(nav, "<a href=\"{href}\"{class}>{name}</a>");
    }
    format!(
        "{}<body><header><nav><span class=\"brand\">iobox</span>{nav}</nav><div class=\"who\">{} ({})\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form></div></header>\
         <main><h1>{}</h1>{body}</main><footer>Figures about fewer than {k} people are suppressed (k = {k}), \
         as in <code>iobox report</code>. No picture shown here has an unblurred face.</footer></body></html>",
        head(title),
        esc(&viewer.name),
        viewer.role.as_str(),
        esc(title),
        k = state.k
    )
}

/// The login form (401 pages show it too).
pub(crate) fn login_page(state: &AppState, message: &str, next: &str, name: Option<&str>) -> String {
    let no_users = state.db.with(crate::store::users::count).map(|n| n == 0).unwrap_or(false);
    let hint = if no_users {
        "<p class=\"hint\" id=\"first-user\">There are no users yet. On the box, create the first one with \
         <code>iobox user add NAME --role integrator</code> (add <code>--config FILE</code> for your config), \
         then log in here.</p>"
    } else {
        ""
    };
    let message = if message.is_empty() { String::new() } else { format!("<p class=\"message\">{}</p>", esc(message)) };
    format!(
        "{}<body class=\"login\"><main><h1>iobox</h1>{message}{hint}<form method=\"post\" action=\"/login\" \
         id=\"login\"><label>Name <input name=\"name\" autocomplete=\"username\" required maxlength=\"64\" \
         value=\"{}\"></label><label>Password <input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required maxlength=\"1024\"></label><input type=\"hidden\" name=\"next\" \
         value=\"{}\"><button type=\"submit\">Log in</button></form></main></body></html>",
        head("Log in"),
        esc(name.unwrap_or("")),
        esc(next)
    )
}

pub(crate) fn error_page(state: &AppState, viewer: &Viewer, status: StatusCode, message: &str) -> String {
    let body = format!("<p class=\"message\" id=\"error\">{}</p><p><a href=\"/\">Overview</a></p>", esc(message));
    layout(state, viewer, &format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")), "", &body)
}

/// A page's answer, or its refusal as an HTML page.
fn respond(state: &AppState, viewer: &Viewer, page: Result<String, Refusal>) -> Response {
    match page {
        Ok(html) => Html(html).into_response(),
        Err(r) if r.html.is_some() => r.into_response(),
        Err(r) => {
            let html = error_page(state, viewer, r.status, r.message());
            r.with_html(html).into_response()
        }
    }
}

fn local_input(ms: Option<i64>) -> String {
    ms.and_then(|ms| Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

fn local_label(ms: Option<i64>, open: &str) -> String {
    ms.and_then(|ms| Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| open.to_string())
}

/// Percent-encodes a query value.
fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The time range picker: from/to inputs, presets, and `extra` fields (kept in the presets' links too).
fn range_form(action: &str, range: &Range, extra_fields: &str, extra_query: &[(&str, String)]) -> String {
    let keep: String =
        extra_query.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("&{k}={}", urlenc(v))).collect();
    let preset = |label: &str, from: &str| format!("<a href=\"{action}?from={from}{}\">{label}</a>", esc(&keep));
    format!(
        "<form class=\"range\" method=\"get\" action=\"{action}\" id=\"range\"><label>From <input type=\"datetime-local\" \
         name=\"from\" value=\"{}\"></label><label>To <input type=\"datetime-local\" name=\"to\" value=\"{}\"></label>\
         {extra_fields}<button type=\"submit\">Show</button><span class=\"presets\">{} {} {} {}</span></form>\
         <p class=\"period\">{} to {}</p>",
        local_input(range.from_ms),
        local_input(range.to_ms),
        preset("Today", "today"),
        preset("7 days", "-7d"),
        preset("30 days", "-30d"),
        preset("All", "2000-01-01"),
        local_label(range.from_ms, "the beginning"),
        local_label(range.to_ms, "now"),
    )
}

fn secs(ms: f64) -> String {
    let s = ms / 1000.0;
    if s < 90.0 { format!("{s:.1} s") } else { format!("{:.1} min", s / 60.0) }
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "<span class=\"muted\">suppressed</span>".into())
}

fn age(at_ms: i64) -> String {
    let s = (api::now_ms() - at_ms) / 1000;
    if s < 0 {
        "ahead of the clock (a file's own time)".into()
    } else if s < 120 {
        format!("{s} s ago")
    } else if s < 7200 {
        format!("{} min ago", s / 60)
    } else {
        format!("at {}", local_label(Some(at_ms), ""))
    }
}

// ---- pages -----------------------------------------------------------------------------------------------

pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = api::overview_data(&state, q.as_deref()).await.map(|o| {
        let store = o.entries_exits.iter().find(|m| m.camera.is_none());
        let mut b = range_form("/", &o.range, "", &[]);
        let _ = write!(
            b,
            "<section class=\"cards\"><div class=\"card\" id=\"entries\"><h2>Entries</h2><p class=\"big\">{}</p></div>\
             <div class=\"card\" id=\"exits\"><h2>Exits</h2><p class=\"big\">{}</p></div>\
             <div class=\"card\" id=\"inside\"><h2>In the store now</h2><p class=\"big\">{}</p></div>\
             <div class=\"card\" id=\"visits\"><h2>Visits</h2><p class=\"big\">{}</p><p>{}</p></div></section>",
            opt(store.and_then(|m| m.entries), |v| v.to_string()),
            opt(store.and_then(|m| m.exits), |v| v.to_string()),
            opt(o.store_occupancy.people, |v| v.to_string()),
            opt(o.visits.visits, |v| v.to_string()),
            match (o.visits.visits, o.visits.median_duration_ms) {
                (Some(0), _) => String::new(),
                (_, Some(ms)) => format!("typical length {}", secs(ms)),
                _ => format!("length hidden: fewer than {} people", o.k),
            },
        );
        let cols: Vec<(String, Option<f64>)> = o
            .footfall_per_hour
            .iter()
            .filter(|h| h.row.camera.is_none())
            .map(|h| (h.hour.clone(), h.row.entries.map(|e| e as f64)))
            .collect();
        let _ = write!(
            b,
            "<section><h2>Footfall per hour</h2>{}</section>",
            charts::columns("footfall", "Entries per hour, whole store", &cols, o.k)
        );
        b.push_str("<section><h2>Occupancy now</h2>");
        if o.occupancy.is_empty() {
            b.push_str("<p class=\"empty\">No occupancy samples in the database.</p>");
        } else {
            b.push_str("<table id=\"occupancy\"><tr><th>camera</th><th>zone</th><th>people</th><th>sampled</th></tr>");
            for r in &o.occupancy {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    esc(&r.camera),
                    esc(&r.zone),
                    opt(r.count, |v| v.to_string()),
                    age(r.at_ms)
                );
            }
            b.push_str("</table>");
        }
        b.push_str("</section><section><h2>Queues</h2>");
        if o.live_queues.is_empty() && o.queues.is_empty() {
            b.push_str("<p class=\"empty\">No queue zones sampled.</p>");
        } else {
            b.push_str("<table id=\"queues-now\"><tr><th>zone</th><th>now</th><th>mean wait now</th><th>sampled</th></tr>");
            for r in &o.live_queues {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    esc(&r.zone),
                    opt(r.length, |v| v.to_string()),
                    opt(r.mean_wait_ms, |v| secs(v as f64)),
                    age(r.at_ms)
                );
            }
            b.push_str("</table>");
            b.push_str(&queue_table("queues", &o.queues));
        }
        b.push_str("</section><section><h2>Alerts</h2>");
        if o.alerts.recent.is_empty() {
            let _ = write!(
                b,
                "<p class=\"empty\" id=\"alerts\">{}</p>",
                if o.alerts.live {
                    "No alert so far."
                } else if o.alerts.rules.is_empty() {
                    "No alert rules are configured."
                } else {
                    "Alerts are shown while iobox run --serve runs the rules."
                }
            );
        } else {
            b.push_str("<table id=\"alerts\"><tr><th>when</th><th>rule</th><th>state</th><th>camera</th><th>zone</th><th>value</th></tr>");
            for a in &o.alerts.recent {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                    local_label(Some(a.at_ms), ""),
                    esc(&a.rule),
                    if a.state == crate::alerts::AlertState::Fired { "fired" } else { "cleared" },
                    esc(&a.camera),
                    esc(&a.zone),
                    opt(a.value, fmt_num)
                );
            }
            b.push_str("</table>");
        }
        if !o.alerts.rules.is_empty() {
            b.push_str("<details><summary>Rules</summary><ul>");
            for r in &o.alerts.rules {
                let _ = write!(b, "<li>{}</li>", esc(r));
            }
            b.push_str("</ul></details>");
        }
        b.push_str("</section><section><h2>Entries and exits per camera</h2><table id=\"entries-exits\"><tr><th>camera</th><th>entries</th><th>exits</th></tr>");
        for m in &o.entries_exits {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                m.camera.as_deref().map(esc).unwrap_or_else(|| "<b>whole store</b>".into()),
                opt(m.entries, |v| v.to_string()),
                opt(m.exits, |v| v.to_string())
            );
        }
        b.push_str("</table></section>");
        layout(&state, &viewer, "Overview", "/", &format!("<div data-reload=\"30\"></div>{b}"))
    });
    respond(&state, &viewer, page)
}

fn queue_table(id: &str, queues: &[crate::store::query::QueueStats]) -> String {
    if queues.is_empty() {
        return String::new();
    }
    let mut b = format!(
        "<table id=\"{id}\"><tr><th>queue zone</th><th>samples</th><th>people</th><th>mean length</th><th>longest</th>\
         <th>mean wait</th><th>longest wait</th></tr>"
    );
    for q in queues {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&q.zone),
            opt(q.samples, |v| v.to_string()),
            opt(q.tracks, |v| v.to_string()),
            opt(q.mean_length, |v| format!("{v:.1}")),
            opt(q.max_length, |v| v.to_string()),
            opt(q.mean_wait_ms, secs),
            opt(q.max_wait_ms, |v| secs(v as f64)),
        );
    }
    b.push_str("</table>");
    b
}

pub(crate) async fn heatmap(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = api::heatmap_data(&state, q.as_deref()).await.map(|map| {
        let mut kinds = String::new();
        for k in ["presence", "dwell"] {
            let sel = if map.kind.as_str() == k { " selected" } else { "" };
            let _ = write!(kinds, "<option value=\"{k}\"{sel}>{k}</option>");
        }
        let mut cams = String::from("<option value=\"\">all cameras</option>");
        for c in &state.cameras {
            let sel = if map.camera.as_deref() == Some(c.name.as_str()) { " selected" } else { "" };
            let _ = write!(cams, "<option value=\"{0}\"{sel}>{0}</option>", esc(&c.name));
        }
        let extra = format!(
            "<label>Show <select name=\"kind\">{kinds}</select></label><label>Camera <select name=\"camera\">{cams}</select></label>"
        );
        let keep = [("kind", map.kind.as_str().to_string()), ("camera", map.camera.clone().unwrap_or_default())];
        let mut b = range_form("/heatmap", &map.range, &extra, &keep);
        let png_query: String = [
            ("from", map.range.from.clone()),
            ("to", map.range.to.clone()),
            ("kind", Some(map.kind.as_str().to_string())),
            ("camera", map.camera.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlenc(&v))))
        .collect::<Vec<_>>()
        .join("&");
        let what = if map.kind == HeatKind::Dwell {
            "Seconds people spent in each floor cell"
        } else {
            "How often people stood in each floor cell (track-frames)"
        };
        let _ = write!(
            b,
            "<p>{what}, {} cells shown, {} suppressed.{}</p><figure class=\"heat\">{}<figcaption>{}</figcaption></figure>\
             <p><a id=\"png\" href=\"/api/heatmap.png?{}\" download=\"heatmap.png\">Download as a picture</a></p>",
            map.shown,
            map.suppressed,
            if map.plan.is_none() { " No floor plan is configured: cells are drawn on a 1 m grid." } else { "" },
            charts::heatmap(&map),
            charts::legend(&map),
            esc(&png_query)
        );
        layout(&state, &viewer, "Heatmaps", "/heatmap", &b)
    });
    respond(&state, &viewer, page)
}

pub(crate) async fn zones(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = api::zones_data(&state, q.as_deref()).await.map(|z| {
        let mut b = range_form("/zones", &z.range, "", &[]);
        let dwell: Vec<Bar> = z
            .dwell
            .iter()
            .map(|d| Bar {
                label: d.zone.clone(),
                value: d.median_ms.map(|m| m / 1000.0),
                text: match (d.median_ms, d.p90_ms, d.tracks) {
                    (Some(m), Some(p), Some(t)) => format!("median {}, p90 {}, {t} people", secs(m), secs(p as f64)),
                    _ => String::new(),
                },
                marker: d.p90_ms.map(|p| p as f64 / 1000.0),
            })
            .collect();
        let _ = write!(
            b,
            "<section><h2>Dwell per zone</h2><p class=\"note\">Bar: median stay; tick: 90th percentile.</p>{}</section>",
            charts::bars("dwell", "Dwell per zone", &dwell, z.k)
        );
        let funnel: Vec<Bar> = z
            .funnel
            .iter()
            .take(20)
            .map(|p| Bar {
                label: format!("{} → {}", p.from, p.to),
                value: p.share.map(|s| s * 100.0),
                text: match (p.share, p.reached, p.entered) {
                    (Some(s), Some(r), Some(e)) => format!("{:.0}% ({r} of {e})", s * 100.0),
                    _ => String::new(),
                },
                marker: None,
            })
            .collect();
        let _ = write!(
            b,
            "<section><h2>Funnel</h2><p class=\"note\">Of the people who entered the first zone, the share who went \
             on to the second.</p>{}</section>",
            charts::bars("funnel", "Funnel between zones", &funnel, z.k)
        );
        let inter: Vec<Bar> = z
            .interactions
            .iter()
            .map(|i| Bar {
                label: i.zone.clone(),
                value: i.interactions.map(|n| n as f64),
                text: match (i.interactions, i.tracks, i.mean_duration_ms) {
                    (Some(n), Some(t), Some(d)) => format!("{n} by {t} people, mean {}", secs(d)),
                    _ => String::new(),
                },
                marker: None,
            })
            .collect();
        let _ = write!(
            b,
            "<section><h2>Shelf interactions</h2>{}</section>",
            charts::bars("interactions", "Shelf interactions", &inter, z.k)
        );
        if !z.queues.is_empty() {
            let _ = write!(b, "<section><h2>Queues</h2>{}</section>", queue_table("queues", &z.queues));
        }
        let mood: Vec<(String, charts::MoodBar)> = z
            .mood
            .iter()
            .map(|m| {
                let bar = match (&m.shares, m.read_share) {
                    (Some(s), _) => charts::MoodBar::Shares(s.0),
                    (None, Some(read)) if !m.suppressed => charts::MoodBar::NotReadable(read),
                    _ => charts::MoodBar::Suppressed,
                };
                (m.zone.clone(), bar)
            })
            .collect();
        let _ = write!(
            b,
            "<section><h2>Mood</h2><p class=\"note\">Share of each dominant expression among the faces read in the \
             zone (never per person). Faces too small, turned away or unclear are not read; where fewer than half \
             the faces seen could be read, the zone says so instead.</p>{}</section>",
            charts::stacked("mood", "Mood per zone", &mood, z.k)
        );
        layout(&state, &viewer, "Zones", "/zones", &b)
    });
    respond(&state, &viewer, page)
}

pub(crate) async fn journeys(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = api::journeys_data(&state, q.as_deref()).await.map(|j| {
        let extra = format!(
            "<label>Top <input type=\"number\" name=\"top\" min=\"1\" max=\"100\" value=\"{}\"></label>",
            j.top
        );
        let mut b = range_form("/journeys", &j.range, &extra, &[("top", j.top.to_string())]);
        let rows: Vec<Bar> = j
            .journeys
            .iter()
            .map(|r| Bar {
                label: r.zones.join(" → "),
                value: r.tracks.map(|t| t as f64),
                text: r.tracks.map(|t| format!("{t} people")).unwrap_or_default(),
                marker: None,
            })
            .collect();
        let _ = write!(
            b,
            "<section><p class=\"note\">Each person's zones in the order visited; the most frequent paths first.</p>{}</section>",
            charts::bars("journeys", "Most common journeys", &rows, j.k)
        );
        layout(&state, &viewer, "Journeys", "/journeys", &b)
    });
    respond(&state, &viewer, page)
}

pub(crate) async fn cameras(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = super::http::Query::parse(q.as_deref(), &[]).map(|_| {
        let rows = api::cameras_data(&state, &viewer);
        let mut b = String::from("<div class=\"cameras\">");
        for c in &rows {
            let _ = write!(b, "<section class=\"camera\" id=\"camera-{0}\"><h2>{0}</h2><p class=\"note\">{1}</p>", esc(&c.name), esc(&c.kind));
            match &c.preview {
                Some(p) => {
                    let _ = write!(
                        b,
                        "<img class=\"preview\" src=\"{}\" data-refresh=\"5\" alt=\"anonymized preview of {}\" width=\"384\"><p class=\"note\">{}</p>",
                        esc(&p.url),
                        esc(&c.name),
                        if p.source == "live" { "live, faces blurred" } else { "latest snapshot, faces blurred" }
                    );
                }
                None => b.push_str("<p class=\"empty\">No preview: start the cameras with <code>iobox run --serve</code>, or set <code>[output] snapshot</code>.</p>"),
            }
            if let Some(cal) = &c.calibration {
                let _ = write!(
                    b,
                    "<p>Calibration: RMS {:.2} px / {:.1} cm over {} of {} points. <a href=\"{}\">Overlay and points</a></p>",
                    cal.rms_px,
                    cal.rms_m * 100.0,
                    cal.inliers,
                    cal.points,
                    esc(&cal.url)
                );
            } else if let Some(e) = &c.calibration_error {
                let _ = write!(b, "<p class=\"message\">Calibration: {}</p>", esc(e));
            } else if !c.calibrated && viewer.role == Role::Integrator {
                b.push_str("<p class=\"note\">Not calibrated: no events from this camera.</p>");
            }
            b.push_str("</section>");
        }
        b.push_str("</div>");
        layout(&state, &viewer, "Cameras", "/cameras", &b)
    });
    respond(&state, &viewer, page)
}

pub(crate) async fn calibration(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(camera): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let page = super::http::Query::parse(q.as_deref(), &[]).and_then(|_| api::calibration_data(&state, &camera)).map(|c| {
        let mut b = format!(
            "<p>{} — {}x{} px, fit: {}. Reprojection error over {} inliers of {} points: <b id=\"rms\">RMS {:.2} px, \
             {:.1} cm</b> (largest {:.2} px, {:.1} cm).</p>",
            esc(&c.file),
            c.image_width,
            c.image_height,
            c.method,
            c.inliers,
            c.points.len(),
            c.rms_px,
            c.rms_m * 100.0,
            c.max_px,
            c.max_m * 100.0
        );
        match &c.overlay {
            Some(url) => {
                let _ = write!(
                    b,
                    "<figure><img id=\"overlay\" src=\"{}\" alt=\"calibration overlay on an anonymized frame\"><figcaption>1 m floor grid, zones, lines; rings: picked image points, dots: where their floor points land.</figcaption></figure>",
                    esc(url)
                );
            }
            None => b.push_str("<p class=\"empty\">No anonymized frame of this camera yet, so no overlay on the picture (start with <code>iobox run --serve</code>, or set <code>[output] snapshot</code>).</p>"),
        }
        let _ = write!(b, "<figure><img id=\"plan-overlay\" src=\"{}\" alt=\"field of view and zones on the floor plan\"><figcaption>Field of view, zones, lines and points on the floor plan.</figcaption></figure>", esc(&c.plan_overlay));
        b.push_str("<table id=\"points\"><tr><th>#</th><th>image x, y (px)</th><th>floor x, y (m)</th><th>error (px)</th><th>error (cm)</th><th>used</th></tr>");
        for p in &c.points {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"num\">{:.1}, {:.1}</td><td class=\"num\">{:.2}, {:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.1}</td><td>{}</td></tr>",
                p.index,
                p.image_px[0],
                p.image_px[1],
                p.floor_m[0],
                p.floor_m[1],
                p.residual_px,
                p.residual_m * 100.0,
                if p.inlier { "yes" } else { "outlier" }
            );
        }
        b.push_str("</table>");
        layout(&state, &viewer, &format!("Calibration of {}", c.camera), "/cameras", &b)
    });
    respond(&state, &viewer, page)
}

pub(crate) async fn css() -> Response {
    bytes("text/css; charset=utf-8", CSS)
}

pub(crate) async fn js() -> Response {
    bytes("text/javascript; charset=utf-8", JS)
}

/// Anything no route matches: 404, as JSON under /api/, else a small page.
pub(crate) async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let r = Refusal::not_found(format!("no such address: {:?}", super::http::clip(&path)));
    if is_api(&path) {
        r.into_response()
    } else {
        let html = format!(
            "{}<body><main><h1>Not found</h1><p>There is no page here. <a href=\"/\">Overview</a></p></main></body></html>",
            head("Not found")
        );
        r.with_html(html).into_response()
    }
}
