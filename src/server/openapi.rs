//! The OpenAPI 3.1 document served at /api/openapi.json, written from the route table ([`super::routes`]):
//! every route, its query parameters, what it answers, and who may call it.

use serde_json::{Map, Value, json};

use super::auth::Access;
use super::http::ParamKind;
use super::routes::{Answer, ROUTES, Route};

/// The top-level fields of each JSON answer (documented; the answers carry more detail per row).
fn schema_of(path: &str) -> Value {
    let obj = |props: &[(&str, &str)]| {
        let p: Map<String, Value> = props.iter().map(|(k, d)| (k.to_string(), json!({ "description": d }))).collect();
        json!({ "type": "object", "properties": p })
    };
    let range = "The period: from_ms, to_ms (ms since the epoch, null when open), from, to (RFC 3339, local)";
    let k = "k: rows about fewer than k distinct people are suppressed (figures null, suppressed: true)";
    match path {
        "/api/me" => obj(&[("name", "user name"), ("role", "staff or integrator"), ("k", k)]),
        "/api/overview" => obj(&[
            ("range", range),
            ("k", k),
            ("entries_exits", "per camera, then the whole store (camera null): entries, exits, suppressed"),
            ("footfall_per_hour", "hour (RFC 3339), hour_start_ms, camera (null: whole store), entries, suppressed"),
            ("occupancy", "newest sample per camera and zone: camera, zone, at_ms, count, suppressed"),
            (
                "live_queues",
                "newest sample per queue zone: camera, zone, at_ms, length, mean_wait_ms, max_wait_ms, suppressed",
            ),
            (
                "queues",
                "per queue zone over the period: samples, tracks, mean_length, max_length, mean_wait_ms, max_wait_ms",
            ),
            (
                "alerts",
                "live (bool), recent (newest first: state, rule, kind, camera, zone, value, threshold, since_ms, at_ms, suppressed), rules",
            ),
        ]),
        "/api/heatmap" => obj(&[
            ("range", range),
            ("k", k),
            ("kind", "presence or dwell"),
            ("unit", "track-frames or seconds"),
            ("camera", "the camera asked for, or null"),
            ("max", "largest shown value"),
            ("shown", "cells shown"),
            ("suppressed", "cells suppressed"),
            (
                "cells",
                "cell_m, cx, cy (cell [cx, cx+1) x [cy, cy+1) in cell_m metres), presence, dwell_ms, tracks, suppressed",
            ),
            ("plan", "url, width, height, pixels_per_metre, origin_px of the floor plan, or null"),
            ("zones", "camera, name, kind, polygon (floor metres)"),
        ]),
        "/api/zones" => obj(&[
            ("range", range),
            ("k", k),
            ("dwell", "zone, visits, tracks, mean_ms, median_ms, p90_ms, suppressed"),
            ("funnel", "from, to, entered, reached, share, suppressed"),
            ("interactions", "zone, interactions, tracks, mean_duration_ms, suppressed"),
            ("queues", "zone, samples, tracks, mean_length, max_length, mean_wait_ms, max_wait_ms, suppressed"),
            (
                "mood",
                "zone, samples (faces read), uncertain (seen, not read), read_share, tracks, readable, counts and shares per expression (null where not readable), suppressed",
            ),
        ]),
        "/api/journeys" => obj(&[
            ("range", range),
            ("k", k),
            ("top", "how many were asked for"),
            ("journeys", "zones (in order), tracks, suppressed; most tracks first"),
        ]),
        "/api/cameras" => json!({ "type": "array", "items": obj(&[
            ("name", "camera name"),
            ("kind", "file, rtsp, v4l2, test or usb"),
            ("preview", "url and source (live or snapshot) of the anonymized preview, or null"),
            ("calibrated", "whether the camera has a calibration"),
            ("calibration", "integrators: file, rms_px, rms_m, max_px, max_m, points, inliers, url"),
            ("calibration_error", "integrators: why the calibration could not be loaded"),
        ]) }),
        "/api/cameras/{camera}/calibration" => obj(&[
            ("camera", "camera name"),
            ("file", "the calibration file"),
            ("image_width", "px"),
            ("image_height", "px"),
            ("method", "exact or ransac"),
            ("rms_px", "root-mean-square reprojection error over the inliers, pixels"),
            ("rms_m", "the same on the floor, metres"),
            ("max_px", "largest inlier error, pixels"),
            ("max_m", "largest inlier error, metres"),
            ("inliers", "pairs the fit used"),
            ("points", "index, image_px, floor_m, residual_px, residual_m, inlier"),
            ("zones", "camera, name, kind, polygon"),
            ("lines", "name, from, to"),
            ("overlay", "url of the overlay on the latest anonymized still, or null"),
            ("plan_overlay", "url of the floor-plan overlay"),
        ]),
        "/api/openapi.json" => json!({ "type": "object", "description": "an OpenAPI 3.1 document" }),
        _ => json!({ "type": "object" }),
    }
}

fn param_schema(kind: ParamKind, cameras: &[String]) -> Value {
    match kind {
        ParamKind::Time => {
            json!({ "type": "string", "maxLength": 200, "examples": ["-7d", "today", "2026-11-29", "2026-11-29T09:00"] })
        }
        ParamKind::Choice(words) => json!({ "type": "string", "enum": words }),
        ParamKind::Camera => json!({ "type": "string", "enum": cameras }),
        ParamKind::Int(lo, hi) => json!({ "type": "integer", "minimum": lo, "maximum": hi }),
        ParamKind::LocalPath => json!({ "type": "string", "pattern": "^/", "maxLength": 200 }),
    }
}

fn operation(route: &Route, cameras: &[String]) -> Value {
    let mut params: Vec<Value> = route
        .params
        .iter()
        .map(|p| {
            json!({ "name": p.name, "in": "query", "required": false, "description": p.description,
                    "schema": param_schema(p.kind, cameras) })
        })
        .collect();
    if route.path.contains("{camera}") {
        params.push(
            json!({ "name": "camera", "in": "path", "required": true, "description": "a camera name from the config",
                            "schema": { "type": "string", "enum": cameras } }),
        );
    }
    let error = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let mut responses = Map::new();
    match route.answer {
        Answer::Redirect => {
            responses.insert(
                "303".into(),
                json!({ "description": "done; Location says where to go, Set-Cookie sets (or clears) the session cookie" }),
            );
        }
        Answer::Json => {
            responses.insert(
                "200".into(),
                json!({ "description": route.summary, "content": { "application/json": { "schema": schema_of(route.path) } } }),
            );
        }
        a => {
            responses
                .insert("200".into(), json!({ "description": route.summary, "content": { a.content_type(): {} } }));
        }
    }
    if !route.params.is_empty() {
        responses.insert(
            "400".into(),
            json!({ "description": "a query parameter is unknown, repeated or invalid", "content": error }),
        );
    }
    if route.access != Access::Public {
        responses
            .insert("401".into(), json!({ "description": "no session (pages: the login form)", "content": error }));
    }
    if route.access == Access::Integrator {
        responses.insert("403".into(), json!({ "description": "the user is not an integrator", "content": error }));
    }
    if route.path.contains("{camera}") {
        responses.insert(
            "404".into(),
            json!({ "description": "no such camera, or nothing to show for it yet", "content": error }),
        );
    }
    if route.method == "post" {
        responses.insert(
            "403".into(),
            json!({ "description": "a cross-site request (Origin or Sec-Fetch-Site)", "content": error }),
        );
        responses.insert("413".into(), json!({ "description": "a body over 16 KiB", "content": error }));
    }
    if route.path == "/login" && route.method == "post" {
        responses.insert("401".into(), json!({ "description": "wrong name or password (the login form again)" }));
        responses.insert(
            "429".into(),
            json!({ "description": "too many failed logins from this address; Retry-After says how long to wait" }),
        );
    }
    let tag = if route.path.starts_with("/api/") {
        "api"
    } else if route.path.starts_with("/static/") {
        "static"
    } else if matches!(route.path, "/login" | "/logout") {
        "session"
    } else {
        "pages"
    };
    let id: String = format!("{}{}", route.method, route.path)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut op = json!({
        "summary": route.summary,
        "operationId": id.trim_end_matches('_'),
        "tags": [tag],
        "parameters": params,
        "responses": responses,
        "x-iobox-access": match route.access { Access::Public => "public", Access::Staff => "staff", Access::Integrator => "integrator" },
    });
    if route.access == Access::Public {
        op["security"] = json!([]);
    }
    if route.path == "/login" && route.method == "post" {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/x-www-form-urlencoded": { "schema": {
                "type": "object", "required": ["name", "password"],
                "properties": { "name": { "type": "string", "maxLength": 64 }, "password": { "type": "string", "maxLength": 1024 },
                                "next": { "type": "string", "pattern": "^/" } } } } }
        });
    }
    op
}

/// The document, for a config with these cameras.
pub(crate) fn document(cameras: &[String]) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route, cameras);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "iobox dashboard",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The staff dashboard's pages and JSON API. Every route but the login form, the style sheet \
                            and the script needs the session cookie from POST /login. Figures about fewer than k \
                            distinct people are suppressed exactly as in `iobox report`. Times: RFC 3339, local dates, \
                            `today`, `now` or relative (-7d)."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "session": [] }],
        "tags": [
            { "name": "pages", "description": "HTML pages" },
            { "name": "api", "description": "JSON and pictures" },
            { "name": "session", "description": "logging in and out" },
            { "name": "static", "description": "the style sheet and script" }
        ],
        "paths": paths,
        "components": {
            "securitySchemes": { "session": { "type": "apiKey", "in": "cookie", "name": super::auth::COOKIE } },
            "schemas": { "Error": { "type": "object", "required": ["error", "status"], "properties": {
                "error": { "type": "string" }, "status": { "type": "integer" } } } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_once_with_its_method() {
        let doc = document(&["sample".into()]);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut n = 0;
        for r in ROUTES {
            let op = &paths[r.path][r.method];
            assert!(op.is_object(), "{} {}", r.method, r.path);
            n += 1;
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, n);
        let heat = &paths["/api/heatmap"]["get"];
        let names: Vec<_> =
            heat["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["from", "to", "kind", "camera"]);
        assert_eq!(heat["parameters"][3]["schema"]["enum"], json!(["sample"]));
        assert_eq!(paths["/login"]["get"]["security"], json!([]));
        assert!(paths["/api/cameras/{camera}/overlay.png"]["get"]["responses"]["403"].is_object());
    }
}
