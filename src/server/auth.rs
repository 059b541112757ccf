//! Logins: argon2 password hashes, in-memory sessions behind a cookie, roles, the per-route guard, and
//! failed-login rate limiting per client address.
//!
//! - Passwords are stored only as argon2id PHC strings (the `argon2` crate's default parameters: 19 MiB,
//!   2 passes), made by `iobox user add`.
//! - A login makes a session: a random 256-bit token (hex) kept in memory with its expiry, sent as the cookie
//!   `iobox_session` with `HttpOnly; SameSite=Strict; Path=/` (and `Secure` when `[dashboard] secure_cookie`
//!   says the dashboard is behind TLS). A restart logs everyone out. Each request looks the user up again,
//!   so `iobox user remove` and role changes take effect at once.
//! - CSRF: the cookie is `SameSite=Strict`, so browsers send it only with requests from the dashboard's own
//!   pages; on top, every POST whose `Origin` (or `Sec-Fetch-Site`) says it comes from another site is
//!   refused. Every other route is a GET that changes nothing.
//! - After 5 failed logins from one address within 5 minutes, that address gets 429 until the oldest
//!   failure is 5 minutes old. An unknown user name costs the same argon2 work as a wrong password.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::http::{Refusal, blocking, is_api};
use super::{AppState, pages};

pub const COOKIE: &str = "iobox_session";
const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
pub const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user name {0:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@'")]
    BadName(String),
    #[error("the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    BadPassword,
    #[error("role {0:?}: use staff or integrator")]
    BadRole(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// What a user may see: staff the figures, integrators also the cameras' calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Staff,
    Integrator,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Integrator => "integrator",
        }
    }

    pub fn parse(s: &str) -> Result<Role, Error> {
        match s {
            "staff" => Ok(Role::Staff),
            "integrator" => Ok(Role::Integrator),
            other => Err(Error::BadRole(other.to_string())),
        }
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (the login page, the style sheet and script).
    Public,
    /// Any logged-in user.
    Staff,
    /// Logged-in integrators.
    Integrator,
}

/// The logged-in user of a request (a request extension set by [`guard`]).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub name: String,
    pub role: Role,
}

pub fn valid_name(name: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok { Ok(()) } else { Err(Error::BadName(name.to_string())) }
}

/// An argon2id PHC string for `password` with a random salt.
pub fn hash_password(password: &str) -> Result<String, Error> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(Error::BadPassword);
    }
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash nobody's password matches, verified against for unknown names so they cost the same time.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        let pw: String = random.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&pw).unwrap_or_default()
    })
}

// ---- sessions --------------------------------------------------------------------------------------------

struct Session {
    user: String,
    expires: Instant,
}

/// Sessions in memory, by token.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Sessions { map: Mutex::default(), ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `user`: 32 random bytes as 64 hex digits.
    pub fn create(&self, user: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(token.clone(), Session { user: user.to_string(), expires: now + self.ttl });
        token
    }

    /// The user of a live session.
    pub fn user(&self, token: &str) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.user.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(token);
    }
}

/// The session token of a request's `Cookie` headers, if it has the right shape.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

fn cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

// ---- failed-login rate limit -----------------------------------------------------------------------------

/// Failed logins per client address.
#[derive(Default)]
pub(crate) struct Attempts {
    map: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Attempts {
    /// `Err(wait)` while the address has had too many failures.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(q) = map.get_mut(&ip) else { return Ok(()) };
        while q.front().is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW) {
            q.pop_front();
        }
        if q.len() >= MAX_FAILURES {
            let oldest = *q.front().expect("not empty");
            return Err(FAILURE_WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        if q.is_empty() {
            map.remove(&ip);
        }
        Ok(())
    }

    fn failed(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            // Many addresses: forget those whose failures are old.
            let now = Instant::now();
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW));
        }
        map.entry(ip).or_default().push_back(Instant::now());
    }

    fn succeeded(&self, ip: IpAddr) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }
}

// ---- cross-site requests ---------------------------------------------------------------------------------

/// Refuses a state-changing request that a browser says comes from another site.
fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let forbidden = |why: String| Refusal::new(StatusCode::FORBIDDEN, format!("cross-site request refused: {why}"));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(forbidden(format!("Sec-Fetch-Site is {site:?}")));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let ok = !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"));
        if !ok {
            return Err(forbidden(format!("Origin {:?} is not this dashboard ({host})", super::http::clip(origin))));
        }
    }
    Ok(())
}

// ---- the guard on every route ----------------------------------------------------------------------------

/// Lets a request through when its session's user may use the route; 401 without a (live) session (pages
/// get the login form), 403 for staff on integrator routes.
pub(crate) async fn guard(State((state, access)): State<(AppState, Access)>, mut req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let wanted = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| path.clone());
    let unauthorized = |reason: &str| {
        let r = Refusal::new(StatusCode::UNAUTHORIZED, reason);
        if is_api(&path) {
            r
        } else {
            let html = pages::login_page(&state, "Please log in.", &wanted, None);
            r.with_html(html)
        }
    };
    let Some(token) = session_token(req.headers()) else { return unauthorized("no session").into_response() };
    let Some(name) = state.sessions.user(&token) else {
        return unauthorized("the session has expired or is unknown").into_response();
    };
    let s = state.clone();
    let user = match blocking(move || Ok(s.db.with(|c| crate::store::users::find(c, &name))?)).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let Some(role) = user.and_then(|u| Role::parse(&u.role).ok().map(|r| (u.name, r))) else {
        state.sessions.remove(&token);
        return unauthorized("the session's user no longer exists").into_response();
    };
    let viewer = Viewer { name: role.0, role: role.1 };
    if access == Access::Integrator && viewer.role != Role::Integrator {
        let r = Refusal::new(
            StatusCode::FORBIDDEN,
            format!("user '{}' is {}; this needs the integrator role", viewer.name, viewer.role.as_str()),
        );
        let r = if is_api(&path) {
            r
        } else {
            r.with_html(pages::error_page(
                &state,
                &viewer,
                StatusCode::FORBIDDEN,
                "Only integrators can see camera calibration.",
            ))
        };
        return r.into_response();
    }
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

// ---- handlers --------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after logging in: a path on this site, else the overview.
fn next_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 300
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        && !next.starts_with("/login");
    if ok { next.to_string() } else { "/".to_string() }
}

/// GET /login.
pub(crate) async fn login_form(State(state): State<AppState>, req: Request) -> Result<Response, Refusal> {
    let q = super::http::Query::parse(req.uri().query(), super::routes::LOGIN_PARAMS)?;
    let next = next_path(q.get("next").unwrap_or("/"));
    let html = pages::login_page(&state, "", &next, None);
    Ok(axum::response::Html(html).into_response())
}

/// POST /login: checks the password, makes a session, sets the cookie and goes on to `next`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, FormRejection>,
) -> Result<Response, Refusal> {
    same_origin(&headers)?;
    let form = form.map_err(|e| Refusal::new(e.status(), format!("login form: {}", e.body_text())))?.0;
    let ip = client.ip();
    if let Err(wait) = state.attempts.check(ip) {
        let secs = wait.as_secs().max(1);
        let html =
            pages::login_page(&state, &format!("Too many failed logins. Try again in {secs} s."), &form.next, None);
        return Err(Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_FAILURES} failed logins from {ip} within 5 minutes"),
        )
        .with_header(header::RETRY_AFTER, &secs.to_string())
        .with_html(html));
    }
    let name = form.name.trim().to_string();
    let (s, password, n) = (state.clone(), form.password, name.clone());
    let user = blocking(move || {
        let user = if valid_name(&n).is_ok() { s.db.with(|c| crate::store::users::find(c, &n))? } else { None };
        let hash = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or_else(|| decoy_hash());
        let ok = verify_password(&password, hash);
        Ok(user.filter(|_| ok))
    })
    .await?;
    let Some(user) = user else {
        state.attempts.failed(ip);
        let html = pages::login_page(&state, "Wrong name or password.", &form.next, Some(&name));
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, format!("failed login as {:?}", super::http::clip(&name)))
            .with_html(html));
    };
    state.attempts.succeeded(ip);
    let token = state.sessions.create(&user.name);
    tracing::info!(user = %user.name, role = %user.role, client = %ip, "logged in");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie(&token, state.sessions.ttl(), state.secure_cookie)),
            (header::LOCATION, next_path(&form.next)),
        ],
    )
        .into_response())
}

/// POST /logout: ends the session and clears the cookie.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Refusal> {
    same_origin(&headers)?;
    if let Some(token) = session_token(&headers) {
        state.sessions.remove(&token);
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie("", Duration::ZERO, state.secure_cookie)),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("Correct horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse").unwrap(), h, "a random salt each time");
        assert!(matches!(hash_password("short"), Err(Error::BadPassword)));
    }

    #[test]
    fn names_tokens_and_next_paths() {
        assert!(valid_name("ana.m@store-12").is_ok());
        for bad in ["", "a b", "ana'--", &"x".repeat(65)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
        let mut h = HeaderMap::new();
        let t = "ab".repeat(32);
        h.insert(header::COOKIE, format!("x=1; {COOKIE}={t}; y=2").parse().unwrap());
        assert_eq!(session_token(&h), Some(t));
        h.insert(header::COOKIE, format!("{COOKIE}=../../etc").parse().unwrap());
        assert_eq!(session_token(&h), None);
        assert_eq!(next_path("/zones?from=-7d"), "/zones?from=-7d");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "/login", "zones"] {
            assert_eq!(next_path(bad), "/", "{bad}");
        }
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new(Duration::from_millis(50));
        let t = s.create("ana");
        assert_eq!(t.len(), 64);
        assert_eq!(s.user(&t).as_deref(), Some("ana"));
        assert_ne!(s.create("ana"), t);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.user(&t), None);
        let t = Sessions::new(Duration::from_secs(60)).create("bo");
        let s2 = Sessions::new(Duration::from_secs(60));
        assert_eq!(s2.user(&t), None, "a token from elsewhere is unknown");
    }

    #[test]
    fn failed_logins_are_limited_per_address() {
        let a = Attempts::default();
        let (x, y): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(a.check(x).is_ok());
            a.failed(x);
        }
        assert!(a.check(x).is_err());
        assert!(a.check(y).is_ok());
        a.succeeded(x);
        assert!(a.check(x).is_ok());
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h).is_ok(), "no Origin: not a browser's cross-site request");
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(same_origin(&h).unwrap_err().status, StatusCode::FORBIDDEN);
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(same_origin(&h).is_err());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(same_origin(&h).is_err());
    }
}
