//! The parts every request goes through: refusals (an error status with a reason that is logged), query
//! parameters parsed against the route's list, the request log with its body-size check, and the headers
//! every response carries.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::store::query::Period;

/// Bodies larger than this are refused with 413 (the only body the dashboard reads is the login form).
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// Why a request was refused; travels in the response's extensions to the request log.
#[derive(Debug, Clone)]
pub(crate) struct Reason(pub String);

/// A refused request: its status, the reason logged, and what the client is told.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    /// Logged; also shown to the client unless `public` says otherwise.
    pub reason: String,
    /// What the client sees when it should not see the reason (internal errors).
    pub public: Option<String>,
    /// An HTML page to send instead of the JSON error (pages, not the API).
    pub html: Option<String>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Refusal {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal { status, reason: reason.into(), public: None, html: None, headers: Vec::new() }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// A failure on our side: the reason is logged, the client only learns that something failed.
    pub fn internal(reason: impl Into<String>) -> Self {
        let mut r = Self::new(StatusCode::INTERNAL_SERVER_ERROR, reason);
        r.public = Some("internal error (see the iobox log)".into());
        r
    }

    pub fn with_html(mut self, html: String) -> Self {
        self.html = Some(html);
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// What the client reads.
    pub fn message(&self) -> &str {
        self.public.as_deref().unwrap_or(&self.reason)
    }
}

impl From<crate::store::Error> for Refusal {
    fn from(e: crate::store::Error) -> Self {
        Refusal::internal(e.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = match &self.html {
            Some(html) => (self.status, Html(html.clone())).into_response(),
            None => {
                let body = serde_json::json!({ "error": self.message(), "status": self.status.as_u16() });
                (self.status, axum::Json(body)).into_response()
            }
        };
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp.extensions_mut().insert(Reason(self.reason));
        resp
    }
}

/// Is this a request for the JSON API (errors as JSON) rather than a page (errors as HTML)?
pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api"
}

// ---- query parameters ------------------------------------------------------------------------------------

/// What a query parameter holds; the OpenAPI document is written from the same list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// A time in any form `iobox report --from` takes.
    Time,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A camera name from the config.
    Camera,
    /// A whole number in this range.
    Int(i64, i64),
    /// A path on this site to go to after logging in.
    LocalPath,
}

/// A query parameter a route accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
}

/// Longest query parameter value accepted.
const MAX_VALUE: usize = 200;

/// The query parameters of a request, checked against the route's list: unknown names, repeated names,
/// values longer than 200 characters, control characters and undecodable strings are refused.
#[derive(Debug, Default)]
pub(crate) struct Query {
    values: Vec<(&'static str, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>, allowed: &'static [Param]) -> Result<Query, Refusal> {
        let mut values: Vec<(&'static str, String)> = Vec::new();
        let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(Query { values }) };
        let pairs: Vec<(String, String)> = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
            &format!("/?{raw}")
                .parse()
                .map_err(|_| Refusal::bad_request("the query string is not a valid URI query"))?,
        )
        .map_err(|e| Refusal::bad_request(format!("the query string cannot be read: {e}")))?
        .0;
        for (name, value) in pairs {
            let Some(p) = allowed.iter().find(|p| p.name == name) else {
                let known: Vec<_> = allowed.iter().map(|p| p.name).collect();
                return Err(Refusal::bad_request(format!(
                    "unknown parameter {:?} (this address takes: {})",
                    clip(&name),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            };
            if values.iter().any(|(n, _)| *n == p.name) {
                return Err(Refusal::bad_request(format!("parameter {} given twice", p.name)));
            }
            if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
                return Err(Refusal::bad_request(format!(
                    "parameter {}: {:?} is too long or has control characters",
                    p.name,
                    clip(&value)
                )));
            }
            values.push((p.name, value));
        }
        Ok(Query { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A whole number parameter within its declared range.
    pub fn int(&self, p: &Param, default: i64) -> Result<i64, Refusal> {
        let ParamKind::Int(lo, hi) = p.kind else { return Ok(default) };
        match self.get(p.name) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| {
                Refusal::bad_request(format!("{}: {:?} is not a whole number from {lo} to {hi}", p.name, clip(v)))
            }),
        }
    }

    /// A choice parameter: one of its words (the first is the default).
    pub fn choice(&self, p: &Param) -> Result<&'static str, Refusal> {
        let ParamKind::Choice(words) = p.kind else { return Err(Refusal::internal("not a choice parameter")) };
        match self.get(p.name) {
            None => Ok(words[0]),
            Some(v) => words.iter().find(|w| **w == v).copied().ok_or_else(|| {
                Refusal::bad_request(format!("{}: {:?} is not one of {}", p.name, clip(v), words.join(", ")))
            }),
        }
    }

    /// The period of `from` and `to`: times as `iobox report` reads them; without `from`, `default_from`;
    /// without `to`, open-ended; snapped outward to whole buckets as reports are.
    pub fn period(&self, now_ms: i64, default_from: i64) -> Result<Period, Refusal> {
        let asked = crate::when::period(self.get("from"), self.get("to"), now_ms, default_from)
            .map_err(|e| Refusal::bad_request(format!("from/to: {e}")))?;
        let s = crate::buckets::snap(asked.from_ms, asked.to_ms, now_ms);
        Ok(Period { from_ms: s.from_ms, to_ms: s.to_ms })
    }
}

/// A value as it may appear in a log line or message: at most 80 characters.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 80 { s.to_string() } else { s.chars().take(80).collect::<String>() + "..." }
}

// ---- the Host header -------------------------------------------------------------------------------------

/// The `Host` names a request may carry. An IP address (any: it cannot be rebound) and `localhost` are
/// always accepted; any other name must be configured in `[dashboard] hosts`, so that a page on a domain
/// an attacker rebinds to this box's address (DNS rebinding) cannot read the dashboard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    pub fn new(names: &[String]) -> Hosts {
        Hosts { names: names.iter().map(|n| normalize_host(n)).collect() }
    }

    /// `Err(why)` when the `Host` value is not this dashboard.
    pub fn check(&self, host: Option<&str>) -> Result<(), String> {
        let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
            return Err("the request has no Host header".into());
        };
        let name = host_name(host).ok_or_else(|| format!("Host {:?} is not a host and port", clip(host)))?;
        let name = normalize_host(name);
        if name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
        {
            Ok(())
        } else {
            Err(format!(
                "Host {:?} is not an address or name of this dashboard (add it to [dashboard] hosts)",
                clip(host)
            ))
        }
    }
}

fn normalize_host(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The name or address of a `Host` value without its port; IPv6 addresses in brackets.
fn host_name(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())).then_some(addr);
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let ok = !name.is_empty()
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(name)
}

// ---- the request log and the headers of every response -------------------------------------------------

/// Logs every refused request (method, path, status, reason, client), refuses a foreign `Host` (421) and
/// bodies over [`BODY_LIMIT`] before they are read, and adds the security headers.
pub(crate) async fn log_and_guard(
    State(state): State<super::AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = clip(req.uri().path());
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let host = req.headers().get(header::HOST).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    let mut resp = match (state.hosts.check(host), declared) {
        (Err(why), _) => Refusal::new(StatusCode::MISDIRECTED_REQUEST, why).into_response(),
        (Ok(()), Some(n)) if n > BODY_LIMIT as u64 => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a body of {n} bytes is over the {BODY_LIMIT}-byte limit"),
        )
        .into_response(),
        (Ok(()), _) => next.run(req).await,
    };
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        let reason =
            resp.extensions().get::<Reason>().map(|r| r.0.clone()).unwrap_or_else(|| default_reason(status, &method));
        if status.is_server_error() {
            tracing::error!(method = %method, path = ?path, status = status.as_u16(), reason = %reason, client = %client.ip(), "request failed");
        } else {
            tracing::warn!(method = %method, path = ?path, status = status.as_u16(), reason = %reason, client = %client.ip(), "request refused");
        }
    } else {
        tracing::debug!(method = %method, path = ?path, status = status.as_u16(), client = %client.ip(), "request");
    }
    add_security_headers(resp.headers_mut(), &path);
    resp
}

fn default_reason(status: StatusCode, method: &Method) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is over the {BODY_LIMIT}-byte limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the body is not a form".into(),
        s => s.canonical_reason().unwrap_or("refused").to_string(),
    }
}

fn add_security_headers(h: &mut HeaderMap, path: &str) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    // Inline SVG charts need no script or style from anywhere else; nothing is loaded from another origin.
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Not no-referrer: with it, browsers send `Origin: null` on the dashboard's own form posts.
    set(h, header::REFERRER_POLICY, "same-origin");
    if path.starts_with("/static/") {
        set(h, header::CACHE_CONTROL, "private, max-age=3600");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
}

/// A response with a body and its content type.
pub(crate) fn bytes(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// Runs blocking work (SQLite, argon2, images) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Refusal::internal(format!("worker task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &[Param] = &[
        Param { name: "from", kind: ParamKind::Time, description: "" },
        Param { name: "to", kind: ParamKind::Time, description: "" },
        Param { name: "kind", kind: ParamKind::Choice(&["presence", "dwell"]), description: "" },
        Param { name: "top", kind: ParamKind::Int(1, 100), description: "" },
    ];

    #[test]
    fn query_parameters_are_checked_against_the_route() {
        let q = Query::parse(Some("from=2026-01-01&kind=dwell&top=5"), P).unwrap();
        assert_eq!(q.get("from"), Some("2026-01-01"));
        assert_eq!(q.choice(&P[2]).unwrap(), "dwell");
        assert_eq!(q.int(&P[3], 10).unwrap(), 5);
        assert_eq!(Query::parse(None, P).unwrap().choice(&P[2]).unwrap(), "presence");
        assert_eq!(Query::parse(Some("top="), P).unwrap().int(&P[3], 10).unwrap(), 10);
        for bad in [
            "camera=x",
            "from=a&from=b",
            "from=%00",
            "kind=heat",
            "top=0",
            "top=1%20OR%201=1",
            "kind=presence'%20OR%20'1'='1",
        ] {
            let q = Query::parse(Some(bad), P);
            let refused = match q {
                Err(r) => r,
                Ok(q) => q.choice(&P[2]).and_then(|_| q.int(&P[3], 10)).unwrap_err(),
            };
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let long = format!("from={}", "9".repeat(300));
        assert!(Query::parse(Some(&long), P).is_err());
        let q = Query::parse(Some("from=yesterday%27;DROP%20TABLE%20users;--"), P).unwrap();
        assert!(q.period(0, 0).is_err());
    }

    #[test]
    fn only_addresses_localhost_and_configured_names_are_accepted_as_host() {
        let h = Hosts::new(&["Iobox.Store-12.example.".to_string()]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "192.168.1.20:80",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "LOCALHOST",
            "iobox.store-12.example",
            "iobox.store-12.example.:443",
        ] {
            assert!(h.check(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("evil.example"),
            Some("evil.example:8080"),
            Some("127.0.0.1.evil.example"),
            Some("iobox.store-12.example.evil"),
            Some("[::1"),
            Some("[::1]x"),
            Some("127.0.0.1:99999"),
            Some("a b"),
            Some("x@127.0.0.1"),
        ] {
            let e = h.check(bad).unwrap_err();
            assert!(e.contains("Host"), "{bad:?}: {e}");
        }
        assert!(Hosts::default().check(Some("iobox.store-12.example")).is_err());
    }
}
