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
//! - A session remembers the password hash it was made with: `iobox user add --replace` (a new password)
//!   or `iobox user remove` ends every session of that user at its next request.
//! - Failed logins are limited per client address (5 within 5 minutes; IPv6 per /64) and per account name
//!   (10 within 15 minutes, from any address). A login takes its slot in both counts *before* its password
//!   is checked, under one lock, so concurrent attempts cannot race past the limit; a success gives back
//!   only its own slot and never clears failures of another account or address. Over the limit: 429
//!   with `Retry-After`, and no hashing.
//! - Password checks run on their own small pool ([`super::hasher`]); a full queue answers 503 at once. An
//!   unknown user name costs the same argon2 work as a wrong password.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::hasher::Busy;
use super::http::{Refusal, blocking, is_api};
use super::{AppState, pages};

pub const COOKIE: &str = "iobox_session";
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
/// The query parameters of the login form.
pub(crate) const LOGIN_PARAMS: &[super::http::Param] = &[super::http::Param {
    name: "next",
    kind: super::http::ParamKind::LocalPath,
    description: "The page to show after logging in.",
}];

pub fn hash_password(password: &str) -> Result<String, Error> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(Error::BadPassword);
    }
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| Error::Hash(e.to_string()))
}

/// A hash nobody's password matches, verified against for unknown names so they cost the same time.
pub(crate) fn decoy_hash() -> String {
    let random: [u8; 16] = rand::random();
    let pw: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hash_password(&pw).unwrap_or_default()
}

// ---- sessions --------------------------------------------------------------------------------------------

/// Most sessions kept; beyond, the one nearest its expiry is dropped.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    user: String,
    /// The user's password hash when the session began: a different one now means the password changed.
    stamp: String,
    expires: Instant,
}

/// A live session's user and the password hash it was made with.
pub(crate) struct SessionUser {
    pub user: String,
    pub stamp: String,
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

    /// A new session for `user`, whose password hash is `stamp`: 32 random bytes as 64 hex digits.
    pub fn create(&self, user: &str, stamp: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(t, _)| t.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            token.clone(),
            Session { user: user.to_string(), stamp: stamp.to_string(), expires: now + self.ttl },
        );
        token
    }

    /// The user of a live session.
    pub fn user(&self, token: &str) -> Option<SessionUser> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some(s) if s.expires > Instant::now() => Some(SessionUser { user: s.user.clone(), stamp: s.stamp.clone() }),
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

/// A limit on failed logins: at most `max` within `window`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub max: usize,
    pub window: Duration,
}

/// Per client address (IPv6: per /64).
pub(crate) const PER_ADDRESS: Limit = Limit { max: 5, window: Duration::from_secs(300) };
/// Per account name, from any address.
pub(crate) const PER_ACCOUNT: Limit = Limit { max: 10, window: Duration::from_secs(900) };
/// Most addresses or names remembered; beyond, those with only old failures are forgotten first.
const MAX_KEYS: usize = 10_000;

/// The address a limit counts: an IPv4 address, or an IPv6 address's /64 (one subscriber's prefix).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The account a limit counts: the name as typed, lower-cased and clipped (unknown names count too).
fn account_key(name: &str) -> String {
    name.trim().to_lowercase().chars().take(64).collect()
}

/// Times of logins that failed or are being checked, per key.
struct Counts<K> {
    map: HashMap<K, VecDeque<Instant>>,
    limit: Limit,
}

impl<K: std::hash::Hash + Eq + Clone> Counts<K> {
    fn new(limit: Limit) -> Self {
        Counts { map: HashMap::new(), limit }
    }

    /// `Err(wait)` while `key` is at its limit.
    fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(q) = self.map.get_mut(key) else { return Ok(()) };
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.limit.window) {
            q.pop_front();
        }
        if q.len() >= self.limit.max {
            let oldest = *q.front().expect("not empty");
            return Err(self.limit.window.saturating_sub(now.duration_since(oldest)).max(Duration::from_secs(1)));
        }
        if q.is_empty() {
            self.map.remove(key);
        }
        Ok(())
    }

    fn take(&mut self, key: &K, now: Instant) {
        if self.map.len() >= MAX_KEYS {
            let window = self.limit.window;
            self.map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        self.map.entry(key.clone()).or_default().push_back(now);
    }

    fn give_back(&mut self, key: &K, at: Instant) {
        if let Some(q) = self.map.get_mut(key) {
            if let Some(i) = q.iter().position(|t| *t == at) {
                q.remove(i);
            }
            if q.is_empty() {
                self.map.remove(key);
            }
        }
    }
}

/// Which limit a login is over, and for how long.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Limited {
    Address(Duration),
    Account(Duration),
}

impl Limited {
    pub fn wait(&self) -> Duration {
        match self {
            Limited::Address(d) | Limited::Account(d) => *d,
        }
    }
}

/// A login's slot in both counts, taken before its password is checked. Dropped as it is, it stays as a
/// failure; [`Attempts::succeeded`] or [`Attempts::not_checked`] give it back.
#[must_use]
#[derive(Debug)]
pub(crate) struct Slot {
    address: IpAddr,
    account: String,
    at: Instant,
}

/// Failed logins per client address and per account.
pub(crate) struct Attempts {
    counts: Mutex<(Counts<IpAddr>, Counts<String>)>,
}

impl Default for Attempts {
    fn default() -> Self {
        Self::with_limits(PER_ADDRESS, PER_ACCOUNT)
    }
}

impl Attempts {
    pub fn with_limits(address: Limit, account: Limit) -> Self {
        Attempts { counts: Mutex::new((Counts::new(address), Counts::new(account))) }
    }

    /// Takes a slot for a login of `name` from `ip`, or says which limit it is over. Check and take are
    /// one step under one lock.
    pub fn begin(&self, ip: IpAddr, name: &str) -> Result<Slot, Limited> {
        let (address, account) = (address_key(ip), account_key(name));
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (by_address, by_account) = &mut *counts;
        by_address.check(&address, now).map_err(Limited::Address)?;
        by_account.check(&account, now).map_err(Limited::Account)?;
        by_address.take(&address, now);
        by_account.take(&account, now);
        Ok(Slot { address, account, at: now })
    }

    /// The login succeeded: its own slot is given back, nothing else changes.
    pub fn succeeded(&self, slot: Slot) {
        self.give_back(slot);
    }

    /// The password was never checked (the pool was busy): the slot is given back.
    pub fn not_checked(&self, slot: Slot) {
        self.give_back(slot);
    }

    fn give_back(&self, slot: Slot) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.0.give_back(&slot.address, slot.at);
        counts.1.give_back(&slot.account, slot.at);
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
    let Some(session) = state.sessions.user(&token) else {
        return unauthorized("the session has expired or is unknown").into_response();
    };
    let (s, name) = (state.clone(), session.user.clone());
    let user = match blocking(move || Ok(s.db.with(|c| crate::store::users::find(c, &name))?)).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let Some(user) = user else {
        state.sessions.remove(&token);
        return unauthorized("the session's user no longer exists").into_response();
    };
    if user.password_hash != session.stamp {
        state.sessions.remove(&token);
        return unauthorized("the user's password has changed since this session began").into_response();
    }
    let Some(role) = Role::parse(&user.role).ok().map(|r| (user.name, r)) else {
        state.sessions.remove(&token);
        return unauthorized("the session's user has no known role").into_response();
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
pub(crate) fn next_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 300
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        && !next.starts_with("/login");
    if ok { next.to_string() } else { "/".to_string() }
}

/// GET /login.
pub(crate) async fn login_form(State(state): State<AppState>, req: Request) -> Result<Response, Refusal> {
    let q = super::http::Query::parse(req.uri().query(), LOGIN_PARAMS)?;
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
    let name = form.name.trim().to_string();
    let slot = match state.attempts.begin(ip, &name) {
        Ok(slot) => slot,
        Err(limited) => {
            let secs = limited.wait().as_secs().max(1);
            let html = pages::login_page(
                &state,
                &format!("Too many failed logins. Try again in {secs} s."),
                &form.next,
                Some(&name),
            );
            let reason = match limited {
                Limited::Address(_) => format!(
                    "{} failed logins from {ip} within {} minutes",
                    PER_ADDRESS.max,
                    PER_ADDRESS.window.as_secs() / 60
                ),
                Limited::Account(_) => format!(
                    "{} failed logins as {:?} within {} minutes",
                    PER_ACCOUNT.max,
                    super::http::clip(&name),
                    PER_ACCOUNT.window.as_secs() / 60
                ),
            };
            return Err(Refusal::new(StatusCode::TOO_MANY_REQUESTS, reason)
                .with_header(header::RETRY_AFTER, &secs.to_string())
                .with_html(html));
        }
    };
    let (s, n) = (state.clone(), name.clone());
    let user = match blocking(move || {
        Ok(if valid_name(&n).is_ok() { s.db.with(|c| crate::store::users::find(c, &n))? } else { None })
    })
    .await
    {
        Ok(u) => u,
        Err(e) => {
            state.attempts.not_checked(slot);
            return Err(e);
        }
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| state.decoy_hash.clone());
    let ok = match state.hasher.verify(form.password, hash).await {
        Ok(ok) => ok,
        Err(Busy) => {
            state.attempts.not_checked(slot);
            let html =
                pages::login_page(&state, "The dashboard is busy. Try again in a moment.", &form.next, Some(&name));
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} password checks already waiting", super::hasher::QUEUE),
            )
            .with_header(header::RETRY_AFTER, "1")
            .with_html(html));
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        // The slot stays: it is this failure.
        drop(slot);
        let html = pages::login_page(&state, "Wrong name or password.", &form.next, Some(&name));
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, format!("failed login as {:?}", super::http::clip(&name)))
            .with_html(html));
    };
    state.attempts.succeeded(slot);
    let token = state.sessions.create(&user.name, &user.password_hash);
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
    use super::super::hasher::verify_password_in;
    use super::*;
    use argon2::PasswordHash;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        // The argon2 crate's own check agrees with ours.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert_ne!(hash_password("correct horse").unwrap(), h, "a random salt each time");
        assert!(matches!(hash_password("short"), Err(Error::BadPassword)));
        // Right, wrong and malformed, with a kept buffer, reused.
        let mut memory = Vec::new();
        assert!(!verify_password_in("correct horse", "not a hash", &mut memory));
        for _ in 0..2 {
            assert!(verify_password_in("correct horse", &h, &mut memory));
            assert!(!verify_password_in("Correct horse", &h, &mut memory));
            assert!(!verify_password_in("correct horse", "not a hash", &mut memory));
        }
        assert_eq!(memory.len() * 1024, 19 * 1024 * 1024, "19 MiB of 1 KiB blocks");
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
        let t = s.create("ana", "$argon2id$1");
        assert_eq!(t.len(), 64);
        let u = s.user(&t).unwrap();
        assert_eq!((u.user.as_str(), u.stamp.as_str()), ("ana", "$argon2id$1"));
        assert_ne!(s.create("ana", "$argon2id$1"), t);
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.user(&t).is_none());
        let t = Sessions::new(Duration::from_secs(60)).create("bo", "");
        let s2 = Sessions::new(Duration::from_secs(60));
        assert!(s2.user(&t).is_none(), "a token from elsewhere is unknown");
    }

    #[test]
    fn failed_logins_are_limited_per_address_and_per_account_before_any_check() {
        let a = Attempts::with_limits(
            Limit { max: 3, window: Duration::from_secs(60) },
            Limit { max: 5, window: Duration::from_secs(60) },
        );
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // Slots are taken before checking: three logins in flight at once use up the address.
        let in_flight: Vec<Slot> = (0..3).map(|_| a.begin(ip("10.0.0.1"), "ana").unwrap()).collect();
        assert!(matches!(a.begin(ip("10.0.0.1"), "bo"), Err(Limited::Address(_))));
        // One of them succeeds: only its own slot comes back.
        let mut in_flight = in_flight.into_iter();
        a.succeeded(in_flight.next().unwrap());
        let s = a.begin(ip("10.0.0.1"), "bo").unwrap();
        // bo logging in does not clear ana's failures, nor the address's.
        a.succeeded(s);
        drop(in_flight);
        let _ = a.begin(ip("10.0.0.1"), "ana").unwrap();
        assert!(matches!(a.begin(ip("10.0.0.1"), "ana"), Err(Limited::Address(_))));
        // ana has 3 failures; 2 more from other addresses reach the account limit, for any address.
        let _ = a.begin(ip("10.0.0.2"), "ANA ").unwrap();
        let _ = a.begin(ip("10.0.0.3"), "ana").unwrap();
        let limited = a.begin(ip("10.0.0.4"), "ana").unwrap_err();
        assert!(matches!(limited, Limited::Account(_)), "{limited:?}");
        assert!(limited.wait() >= Duration::from_secs(1));
        // Another account from that address is fine; a password never checked gives its slot back.
        let s = a.begin(ip("10.0.0.4"), "bo").unwrap();
        a.not_checked(s);
        // IPv6 addresses of one /64 share a count; another /64 has its own.
        for i in 0..3 {
            let _ = a.begin(ip(&format!("2001:db8:1:2::{i}")), &format!("u{i}")).unwrap();
        }
        assert!(a.begin(ip("2001:db8:1:2:ffff::9"), "x").is_err());
        assert!(a.begin(ip("2001:db8:1:3::1"), "x").is_ok());
        assert_eq!(address_key(ip("::ffff:10.0.0.9")), ip("10.0.0.9"));
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
