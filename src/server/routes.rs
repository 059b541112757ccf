//! Every route of the dashboard in one table: the router is built from it, each route's guard comes from
//! its [`Access`], and the OpenAPI document is written from it. A route cannot exist without being
//! documented, and cannot be documented without existing.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};

use super::auth::{self, Access};
use super::http::{self, BODY_LIMIT, Param, ParamKind};
use super::{AppState, api, pages};

/// What a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Html,
    Json,
    Png,
    Jpeg,
    Css,
    Js,
    /// 303 to another page, setting or clearing the session cookie.
    Redirect,
}

impl Answer {
    pub fn content_type(&self) -> &'static str {
        match self {
            Answer::Html => "text/html; charset=utf-8",
            Answer::Json => "application/json",
            Answer::Png => "image/png",
            Answer::Jpeg => "image/jpeg",
            Answer::Css => "text/css; charset=utf-8",
            Answer::Js => "text/javascript; charset=utf-8",
            Answer::Redirect => "text/plain",
        }
    }
}

pub(crate) struct Route {
    pub method: &'static str,
    /// axum's syntax: `{camera}` is a path parameter (a camera name from the config).
    pub path: &'static str,
    pub access: Access,
    pub answer: Answer,
    pub summary: &'static str,
    pub params: &'static [Param],
    pub handler: fn() -> MethodRouter<AppState>,
}

pub(crate) const FROM: Param = Param {
    name: "from",
    kind: ParamKind::Time,
    description: "Start: RFC 3339, a local date (2026-11-29) or date and time (2026-11-29T09:00), now, today, \
                  or relative to now (-7d, -12h, -30m, -2w). Default: see the route.",
};
pub(crate) const TO: Param =
    Param { name: "to", kind: ParamKind::Time, description: "End (exclusive), in the same forms. Default: no end." };
pub(crate) const KIND: Param = Param {
    name: "kind",
    kind: ParamKind::Choice(&["presence", "dwell"]),
    description: "presence: track-frames in each floor cell; dwell: seconds people spent in it. Default presence.",
};
pub(crate) const CAMERA: Param = Param {
    name: "camera",
    kind: ParamKind::Camera,
    description: "Only this camera (a name from the config). Default: every camera on the shared floor plan.",
};
pub(crate) const TOP: Param =
    Param { name: "top", kind: ParamKind::Int(1, 100), description: "How many journeys, 1 to 100. Default 10." };

pub(crate) const RANGE_PARAMS: &[Param] = &[FROM, TO];
pub(crate) const HEAT_PARAMS: &[Param] = &[FROM, TO, KIND, CAMERA];
pub(crate) const JOURNEY_PARAMS: &[Param] = &[FROM, TO, TOP];

macro_rules! route {
    ($method:literal $path:literal, $access:ident, $answer:ident, $params:expr, $summary:literal, $handler:expr) => {
        Route {
            method: $method,
            path: $path,
            access: Access::$access,
            answer: Answer::$answer,
            summary: $summary,
            params: $params,
            handler: || $handler,
        }
    };
}

/// Every route.
pub(crate) static ROUTES: &[Route] = &[
    // Pages.
    route!("get" "/", Staff, Html, RANGE_PARAMS,
        "Overview: footfall (default today), live occupancy and queues, recent alerts", get(pages::overview)),
    route!("get" "/heatmap", Staff, Html, HEAT_PARAMS,
        "Heatmap of presence or dwell on the floor plan, with a legend and a time range (default 7 days)",
        get(pages::heatmap)),
    route!("get" "/zones", Staff, Html, RANGE_PARAMS,
        "Dwell, funnel, shelf interactions, queues and mood per zone, as charts (default 7 days)", get(pages::zones)),
    route!("get" "/journeys", Staff, Html, JOURNEY_PARAMS,
        "The most common paths between zones (default 7 days)", get(pages::journeys)),
    route!("get" "/cameras", Staff, Html, &[],
        "Each camera's anonymized preview; for integrators, its calibration error", get(pages::cameras)),
    route!("get" "/cameras/{camera}/calibration", Integrator, Html, &[],
        "A camera's calibration overlay, reprojection error and point table", get(pages::calibration)),
    route!("get" "/login", Public, Html, auth::LOGIN_PARAMS, "The login form", get(auth::login_form)),
    route!("post" "/login", Public, Redirect, &[],
        "Log in (form fields name, password, next); sets the session cookie and redirects (303)", post(auth::login)),
    route!("post" "/logout", Staff, Redirect, &[], "Log out: ends the session, clears the cookie", post(auth::logout)),
    route!("get" "/static/app.css", Public, Css, &[], "The style sheet", get(pages::css)),
    route!("get" "/static/app.js", Public, Js, &[], "The script (preview refresh, range presets)", get(pages::js)),
    // The JSON API.
    route!("get" "/api/me", Staff, Json, &[], "The logged-in user and role", get(api::me)),
    route!("get" "/api/overview", Staff, Json, RANGE_PARAMS,
        "Entries, exits and footfall per hour (default today), live occupancy and queue samples, recent alerts",
        get(api::overview)),
    route!("get" "/api/heatmap", Staff, Json, HEAT_PARAMS,
        "Heatmap cells (k-suppressed) with the floor plan's scale and zones (default 7 days)", get(api::heatmap)),
    route!("get" "/api/heatmap.png", Staff, Png, HEAT_PARAMS,
        "The heatmap as a picture with its colour bar, as iobox heatmap draws it (default 7 days)",
        get(api::heatmap_png)),
    route!("get" "/api/zones", Staff, Json, RANGE_PARAMS,
        "Dwell, funnel pairs, shelf interactions, queues and mood per zone (default 7 days)", get(api::zones)),
    route!("get" "/api/journeys", Staff, Json, JOURNEY_PARAMS,
        "The most frequent zone sequences (default 7 days)", get(api::journeys)),
    route!("get" "/api/cameras", Staff, Json, &[],
        "The cameras, their preview and (integrators) calibration summary", get(api::cameras)),
    route!("get" "/api/cameras/{camera}/preview.jpg", Staff, Jpeg, &[],
        "The camera's latest anonymized still (live with iobox run --serve, else the run's snapshot file)",
        get(api::preview)),
    route!("get" "/api/cameras/{camera}/calibration", Integrator, Json, &[],
        "The camera's calibration: fit, reprojection error, every point pair", get(api::calibration)),
    route!("get" "/api/cameras/{camera}/overlay.png", Integrator, Png, &[],
        "The calibration drawn on the camera's latest anonymized still", get(api::overlay)),
    route!("get" "/api/cameras/{camera}/plan-overlay.png", Integrator, Png, &[],
        "The camera's field of view, zones, lines and points on the floor plan", get(api::plan_overlay)),
    route!("get" "/api/plan.png", Staff, Png, &[], "The site's floor plan", get(api::plan)),
    route!("get" "/api/openapi.json", Staff, Json, &[], "This document (OpenAPI 3.1)", get(api::openapi)),
];

/// The router: every route behind its guard, a JSON or HTML 404 for the rest, the body limit, and the
/// request log outermost.
pub(crate) fn router(state: AppState) -> Router {
    let mut r: Router<AppState> = Router::new();
    for route in ROUTES {
        // A second method on a path already routed (GET and POST /login) is merged into it by axum.
        let guarded = (route.handler)()
            .route_layer(axum::middleware::from_fn_with_state((state.clone(), route.access), auth::guard));
        r = r.route(route.path, guarded);
    }
    r.fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::log_and_guard))
        .with_state(state)
}
