//! The dashboard end to end: the real `iobox serve` (and `iobox run --serve`) on a copy of the database the
//! real `iobox run` wrote for the sample clip, users made with the real `iobox user add`, requests over real
//! HTTP on 127.0.0.1 (ureq, and raw TCP where a client would tidy the request up), and a real headless
//! Chromium driven through chromedriver. Figures are checked against the database with plain SQL.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::common;

const ANA: (&str, &str) = ("ana", "ana-integrator-pw");
const BO: (&str, &str) = ("bo", "bo-staff-password");

// ---- fixtures --------------------------------------------------------------------------------------------

/// A folder with a copy of the sample run's database and snapshot, a config with `k`, and two users.
struct Site {
    dir: PathBuf,
    config: PathBuf,
    db: PathBuf,
}

fn add_user(config: &Path, name: &str, role: &str, password: &str) {
    add_user_args(config, name, role, password, &[]);
}

fn add_user_args(config: &Path, name: &str, role: &str, password: &str, more: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["user", "add", name, "--role", role, "--password-stdin", "--config", config.to_str().unwrap()])
        .args(more)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
}

fn site(name: &str, k: u32) -> Site {
    site_with(name, k, "")
}

/// [`site`] with more config text (after `[privacy]`).
fn site_with(name: &str, k: u32, extra: &str) -> Site {
    let sample = common::sample_db();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("server-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("snapshots")).unwrap();
    let db = dir.join("sample.sqlite");
    iobox::store::open_ro(sample).unwrap().execute("VACUUM INTO ?1", [db.to_str().unwrap()]).unwrap();
    std::fs::copy(sample.parent().unwrap().join("snapshots/sample.jpg"), dir.join("snapshots/sample.jpg")).unwrap();
    let config = common::sample_config(&dir, &format!("[privacy]\nmin_tracks = {k}\n{extra}"));
    add_user(&config, ANA.0, "integrator", ANA.1);
    add_user(&config, BO.0, "staff", BO.1);
    Site { dir, config, db }
}

/// A running iobox with the dashboard; its log is collected; killed when dropped.
struct Dashboard {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Dashboard {
    /// `iobox serve --config CONFIG --listen 127.0.0.1:0`.
    fn serve(config: &Path) -> Dashboard {
        Self::spawn(&["serve", "--config", config.to_str().unwrap()], config.parent().unwrap())
    }

    fn spawn(args: &[&str], cwd: &Path) -> Dashboard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iobox"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(cwd)
            .env("IOBOX_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("dashboard listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().parse::<SocketAddr>().unwrap());
                }
                l.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the dashboard did not start: {}", log.lock().unwrap())
        });
        Dashboard { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) for a log line containing every one of `needles`; returns it.
    fn wait_log(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "no log line with {needles:?} in:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The refusal log line of a request: method, path (quoted as logged), status, and a reason containing
    /// `reason`.
    fn refusal(&self, method: &str, path: &str, status: u16, reason: &str) -> String {
        self.wait_log(
            &[
                &format!("method={method} "),
                &format!("path={path:?} "),
                &format!("status={status} "),
                "reason=",
                reason,
            ],
            Duration::from_secs(5),
        )
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn into_resp(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.unwrap();
    let headers = r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let status = r.status().as_u16();
    let body = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    Resp { status, headers, body }
}

fn get(d: &Dashboard, path: &str, cookie: Option<&str>) -> Resp {
    let mut req = agent().get(&d.url(path));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    into_resp(req.call())
}

fn post_form(d: &Dashboard, path: &str, body: &str, cookie: Option<&str>, headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().post(&d.url(path)).header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    into_resp(req.send(body))
}

/// Logs in; returns the `Cookie` header value.
fn login(d: &Dashboard, (name, password): (&str, &str)) -> String {
    let r = post_form(d, "/login", &format!("name={name}&password={password}"), None, &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").unwrap();
    set.split(';').next().unwrap().to_string()
}

/// One request exactly as written (no client tidies the path), `Connection: close`.
fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    raw_from(None, addr, request)
}

/// [`raw`] from another loopback address (`127.0.0.2`, ...: the whole of 127/8 is this machine).
fn raw_from(local: Option<std::net::IpAddr>, addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = match local {
        None => TcpStream::connect(addr).unwrap(),
        Some(ip) => {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(&SocketAddr::new(ip, 0).into()).unwrap();
            sock.connect(&addr.into()).unwrap();
            sock.into()
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (413) and stop reading before the whole request is written.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Resp { status, headers, body: buf.get(split + 4..).unwrap_or_default().to_vec() }
}

fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---- tests -----------------------------------------------------------------------------------------------

#[test]
fn the_first_start_explains_how_to_create_the_first_user() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::sample_config(dir.path(), "");
    let d = Dashboard::serve(&config);
    let line = d.wait_log(&["no users yet", "iobox user add NAME --role integrator --config"], Duration::from_secs(5));
    assert!(line.contains(config.to_str().unwrap()), "{line}");
    let page = get(&d, "/login", None);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("id=\"first-user\"") && page.text().contains("iobox user add NAME"),
        "{}",
        page.text()
    );
    // Nothing but the login page without a session, even on an empty database.
    assert_eq!(get(&d, "/", None).status, 401);
    assert_eq!(get(&d, "/api/overview", None).status, 401);
    // The database was created (users table and all) by the dashboard itself.
    let conn = iobox::store::open_ro(&dir.path().join("sample.sqlite")).unwrap();
    assert_eq!(int(&conn, "SELECT COUNT(*) FROM users"), 0);
}

#[test]
fn login_sessions_cookies_and_roles() {
    let site = site("auth", 5);
    let d = Dashboard::serve(&site.config);

    // No session: pages answer 401 with the login form, the API 401 JSON; both logged.
    let page = get(&d, "/zones?from=-30d", None);
    assert_eq!(page.status, 401);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("<form method=\"post\" action=\"/login\" id=\"login\">"), "{html}");
    assert!(html.contains("name=\"next\" value=\"/zones?from=-30d\""), "{html}");
    d.refusal("GET", "/zones", 401, "");
    let api = get(&d, "/api/zones", None);
    assert_eq!(api.status, 401);
    assert_eq!(api.json(), json!({ "error": "no session", "status": 401 }));
    d.refusal("GET", "/api/zones", 401, "reason=no session client=");
    // A made-up token is no session either.
    let fake = format!("{}={}", iobox::server::auth::COOKIE, "0".repeat(64));
    assert_eq!(get(&d, "/api/me", Some(&fake)).status, 401);

    // Wrong password, unknown user: 401, the form again, logged without saying which.
    let wrong = post_form(&d, "/login", "name=ana&password=nope-nope-nope", None, &[]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Wrong name or password.") && wrong.header("set-cookie").is_none());
    d.refusal("POST", "/login", 401, "failed login as \"ana\"");
    assert_eq!(post_form(&d, "/login", "name=nobody&password=whatever-123", None, &[]).status, 401);

    // A login: 303 to `next`, and the cookie's flags.
    let r = post_form(&d, "/login", &format!("name=ana&password={}&next=%2Fzones%3Ffrom%3D-30d", ANA.1), None, &[]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/zones?from=-30d"));
    let set = r.header("set-cookie").unwrap().to_string();
    let flags: BTreeSet<&str> = set.split(';').skip(1).map(str::trim).collect();
    assert!(flags.contains("HttpOnly") && flags.contains("SameSite=Strict") && flags.contains("Path=/"), "{set}");
    assert!(flags.contains("Max-Age=43200") && !flags.contains("Secure"), "{set}");
    let token = set.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}: 256 random bits");
    let ana = format!("{}={token}", iobox::server::auth::COOKIE);
    d.wait_log(&["logged in", "user=ana", "role=integrator"], Duration::from_secs(5));
    // An open redirect is not possible: a `next` off the site goes to the overview.
    let r = post_form(&d, "/login", &format!("name=ana&password={}&next=%2F%2Fevil.example", ANA.1), None, &[]);
    assert_eq!(r.header("location"), Some("/"));

    let me = get(&d, "/api/me", Some(&ana)).json();
    assert_eq!(me, json!({ "name": "ana", "role": "integrator", "k": 5 }));
    let page = get(&d, "/zones", Some(&ana));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("ana (integrator)"));
    // Every response carries the security headers.
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // Roles: staff read the figures and previews; calibration pages and API are integrators' only.
    let bo = login(&d, BO);
    assert_eq!(get(&d, "/api/me", Some(&bo)).json()["role"], "staff");
    for path in ["/", "/heatmap", "/zones", "/journeys", "/cameras", "/api/cameras/sample/preview.jpg"] {
        assert_eq!(get(&d, path, Some(&bo)).status, 200, "{path}");
    }
    for path in [
        "/cameras/sample/calibration",
        "/api/cameras/sample/calibration",
        "/api/cameras/sample/overlay.png",
        "/api/cameras/sample/plan-overlay.png",
    ] {
        let r = get(&d, path, Some(&bo));
        assert_eq!(r.status, 403, "{path}");
        d.refusal("GET", path, 403, "needs the integrator role");
        assert_eq!(get(&d, path, Some(&ana)).status, 200, "{path}");
    }
    assert!(get(&d, "/cameras/sample/calibration", Some(&bo)).text().contains("Only integrators"));
    // Staff do not see calibration details in the camera list either.
    let cams = get(&d, "/api/cameras", Some(&bo)).json();
    assert!(cams[0].get("calibration").is_none(), "{cams}");
    assert!(get(&d, "/api/cameras", Some(&ana)).json()[0]["calibration"].is_object());

    // CSRF: a POST from another site is refused (and logged), even with a valid session.
    let r = post_form(&d, "/logout", "", Some(&bo), &[("Origin", "http://evil.example")]);
    assert_eq!(r.status, 403);
    d.refusal("POST", "/logout", 403, "cross-site request refused");
    let r = post_form(&d, "/login", &format!("name=bo&password={}", BO.1), None, &[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(r.status, 403);
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 200, "the refused logout changed nothing");
    // A same-origin logout ends the session and clears the cookie.
    let origin = format!("http://{}", d.addr);
    let r = post_form(&d, "/logout", "", Some(&bo), &[("Origin", &origin)]);
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 401);
    assert_eq!(get(&d, "/api/me", Some(&ana)).status, 200, "other sessions live on");

    // A removed user's session ends at the next request.
    let out = common::iobox(&["user", "remove", "ana", "--config", site.config.to_str().unwrap()], &site.dir);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(get(&d, "/api/me", Some(&ana)).status, 401);
    d.refusal("GET", "/api/me", 401, "no longer exists");
}

#[test]
fn failed_logins_are_rate_limited_per_address() {
    let site = site("ratelimit", 5);
    let d = Dashboard::serve(&site.config);
    for _ in 0..5 {
        assert_eq!(post_form(&d, "/login", "name=bo&password=wrong-password", None, &[]).status, 401);
    }
    // Now even the right password waits.
    let r = post_form(&d, "/login", &format!("name=bo&password={}", BO.1), None, &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    d.refusal("POST", "/login", 429, "5 failed logins");
}

/// A login form POST as a browser on this dashboard sends it, from `local`.
fn login_from(d: &Dashboard, local: &str, (name, password): (&str, &str)) -> Resp {
    let body = format!("name={name}&password={password}");
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        d.addr,
        body.len()
    );
    raw_from(Some(local.parse().unwrap()), d.addr, req.as_bytes())
}

#[test]
fn login_limits_hold_per_account_and_address_and_a_new_password_ends_sessions() {
    let site = site_with("limits", 5, "[dashboard]\nhosts = [\"iobox.store-12.test\"]\n");
    let d = Dashboard::serve(&site.config);
    let (ana, bo) = (login(&d, ANA), login(&d, BO));
    let wrong = |local: &str| login_from(&d, local, (ANA.0, "not-her-password")).status;

    // A staff login between an attacker's guesses at the integrator's password clears nothing.
    for _ in 0..4 {
        assert_eq!(wrong("127.0.0.1"), 401);
    }
    assert_eq!(login_from(&d, "127.0.0.1", BO).status, 303);
    assert_eq!(wrong("127.0.0.1"), 401);
    assert_eq!(wrong("127.0.0.1"), 429);
    assert_eq!(login_from(&d, "127.0.0.1", ANA).status, 429, "the address waits, even with the right password");
    d.refusal("POST", "/login", 429, "5 failed logins from 127.0.0.1 within 5 minutes");
    // From other addresses the account itself is limited: 10 failures in all, then 429 from anywhere.
    for _ in 0..5 {
        assert_eq!(wrong("127.0.0.2"), 401);
    }
    let r = login_from(&d, "127.0.0.3", ANA);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some_and(|w| w.parse::<u64>().is_ok_and(|w| (1..=900).contains(&w))));
    d.refusal("POST", "/login", 429, "10 failed logins as \"ana\" within 15 minutes");
    // Another account from that address is not affected.
    assert_eq!(login_from(&d, "127.0.0.3", BO).status, 303);
    // The sessions made before all this still work.
    assert_eq!(get(&d, "/api/me", Some(&ana)).json()["name"], "ana");

    // A new password (user add --replace) ends the user's sessions; removing a user ends theirs.
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 200);
    add_user_args(&site.config, BO.0, "staff", "a-new-password-for-bo", &["--replace"]);
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 401);
    d.refusal("GET", "/api/me", 401, "password has changed since this session began");
    // (127.0.0.1 is still waiting out its failures: log in from another address.)
    let r = login_from(&d, "127.0.0.4", (BO.0, "a-new-password-for-bo"));
    assert_eq!(r.status, 303, "{}", r.text());
    let bo = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 200);
    let out = Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["user", "remove", ANA.0, "--config", site.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(get(&d, "/api/me", Some(&ana)).status, 401);

    // DNS rebinding: a foreign Host is refused even when Origin matches it; addresses, localhost and the
    // configured name are accepted.
    let port = d.addr.port();
    let with_host = |host: &str| {
        let req = format!(
            "GET /api/me HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nCookie: {bo}\r\nConnection: close\r\n\r\n"
        );
        raw(d.addr, req.as_bytes())
    };
    for foreign in [format!("evil.example:{port}"), "127.0.0.1.nip.io".into(), "localhost.evil.example".into()] {
        let r = with_host(&foreign);
        assert_eq!(r.status, 421, "{foreign}: {}", r.text());
        assert!(!r.text().contains("\"bo\""), "{}", r.text());
    }
    d.refusal("GET", "/api/me", 421, "is not an address or name of this dashboard");
    for ours in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("IOBOX.store-12.test:{port}")] {
        let r = with_host(&ours);
        assert_eq!(r.status, 200, "{ours}: {}", r.text());
        assert_eq!(r.json()["name"], "bo");
    }
    let r = raw(d.addr, b"GET /login HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 421, "no Host at all: {}", r.text());
}

/// The peak resident memory of a process (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

#[test]
fn a_login_flood_and_idle_connections_leave_the_dashboard_answering() {
    let site = site_with("flood", 5, "[dashboard]\nheader_timeout_s = 3\n");
    let d = Dashboard::serve(&site.config);
    let bo = login(&d, BO);
    let t_start = Instant::now();
    let before = peak_rss_mib(d.child.id());

    // 300 connections that send half a request head and then nothing.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(d.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    // 300 wrong logins at once, from one address, each on its own connection.
    let start = Arc::new(std::sync::Barrier::new(301));
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let (start, url) = (start.clone(), d.url("/login"));
            std::thread::spawn(move || {
                start.wait();
                let r = agent()
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(format!("name=ana&password=guess-number-{i}"));
                r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
            })
        })
        .collect();
    start.wait();
    // Meanwhile a logged-in user's requests are answered, each within a second.
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    while answered < 5 || flood.iter().any(|t| !t.is_finished()) {
        let t0 = Instant::now();
        let r = get(&d, "/api/me", Some(&bo));
        slowest = slowest.max(t0.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap().expect("every login is answered")).collect();
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert!(count(401) <= 5, "at most 5 passwords were checked: {statuses:?}");
    assert_eq!(count(401) + count(429) + count(503), 300, "{statuses:?}");
    assert!(slowest < Duration::from_secs(1), "a logged-in request waited {slowest:?} during the flood");
    let peak = peak_rss_mib(d.child.id());
    assert!(peak < 150.0, "peak RSS {peak:.0} MiB during the flood");

    // The idle connections are closed by the server once their header time is up.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut rest = Vec::new();
        if let Err(e) = s.read_to_end(&mut rest) {
            assert!(
                !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                "an idle connection is still open: {e}"
            );
        }
    }
    assert_eq!(get(&d, "/api/me", Some(&bo)).status, 200);
    eprintln!(
        "flood: {} x 401, {} x 429, {} x 503; slowest logged-in request {slowest:?} of {answered}; peak RSS \
         {before:.0} MiB before, {peak:.0} MiB during; {:?}",
        count(401),
        count(429),
        count(503),
        t_start.elapsed()
    );
}

/// Per zone: distinct tracks of `kind` events in the database.
fn tracks_per_place(conn: &Connection, kind: &str) -> HashMap<String, i64> {
    let mut stmt =
        conn.prepare("SELECT place, COUNT(DISTINCT track) FROM events WHERE kind = ?1 GROUP BY place").unwrap();
    stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

fn journeys_in_db(conn: &Connection) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare("SELECT zones FROM journeys").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|z| serde_json::from_str(&z.unwrap()).unwrap()).collect()
}

#[test]
fn every_endpoint_answers_what_the_database_holds() {
    let site1 = site("api-k1", 1);
    let site5 = site("api-k5", 5);
    let conn = iobox::store::open_ro(&site1.db).unwrap();
    let people = int(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'entry'");
    assert_eq!(people, 6, "the sample clip has six people");
    let d1 = Dashboard::serve(&site1.config);
    let d5 = Dashboard::serve(&site5.config);
    let (a1, a5) = (login(&d1, ANA), login(&d5, ANA));
    let all = "from=2000-01-01";

    // Overview: entries and exits, footfall per hour, live occupancy.
    let o = get(&d1, &format!("/api/overview?{all}"), Some(&a1)).json();
    assert_eq!(o["k"], 1);
    let store = o["entries_exits"].as_array().unwrap().iter().find(|m| m["camera"].is_null()).unwrap().clone();
    assert_eq!(store["entries"], people);
    assert_eq!(store["exits"], int(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'exit'"));
    let footfall: i64 = o["footfall_per_hour"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["camera"].is_null())
        .map(|h| h["entries"].as_i64().unwrap())
        .sum();
    assert_eq!(footfall, people);
    // The store's visits lead: each person once, with the median length of a visit.
    assert_eq!(o["visits"]["visits"], int(&conn, "SELECT COUNT(*) FROM visits"));
    assert_eq!(o["visits"]["visits"], people);
    let median = o["visits"]["median_duration_ms"].as_f64().unwrap();
    let (shortest, longest) = conn
        .query_row("SELECT MIN(end_ms - start_ms), MAX(end_ms - start_ms) FROM visits", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .unwrap();
    assert!((shortest as f64..=longest as f64).contains(&median), "{median} outside {shortest}..{longest}");
    let newest = int(&conn, "SELECT MAX(ts_ms) FROM occupancy");
    let occ = o["occupancy"].as_array().unwrap();
    let zones_sampled =
        int(&conn, &format!("SELECT COUNT(DISTINCT zone) FROM occupancy WHERE ts_ms >= {}", newest - 60_000));
    assert_eq!(occ.len() as i64, zones_sampled);
    for row in occ {
        let zone = row["zone"].as_str().unwrap();
        let (at, count): (i64, i64) = conn
            .query_row("SELECT ts_ms, count FROM occupancy WHERE zone = ?1 ORDER BY ts_ms DESC LIMIT 1", [zone], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((row["at_ms"].as_i64(), row["count"].as_i64()), (Some(at), Some(count)), "{row}");
    }
    assert_eq!(o["alerts"]["live"], false);
    // The default overview is today's: the sample run happened today (its file clock starts at the run).
    let today = get(&d1, "/api/overview", Some(&a1)).json();
    assert!(today["range"]["from_ms"].as_i64().unwrap() <= int(&conn, "SELECT MIN(ts_ms) FROM events"));
    // At k = 5 the live counts of fewer than 5 people are suppressed, zero is shown.
    let o5 = get(&d5, &format!("/api/overview?{all}"), Some(&a5)).json();
    for row in o5["occupancy"].as_array().unwrap() {
        let n = occ.iter().find(|r| r["zone"] == row["zone"]).unwrap()["count"].as_i64().unwrap();
        assert_eq!(row["suppressed"], n > 0 && n < 5, "{row}");
        assert_eq!(row["count"].is_null(), n > 0 && n < 5, "{row}");
    }

    // Zones: dwell, interactions and mood as in the database, suppressed exactly where a group is 1..k-1.
    let z1 = get(&d1, &format!("/api/zones?{all}"), Some(&a1)).json();
    let z5 = get(&d5, &format!("/api/zones?{all}"), Some(&a5)).json();
    let stays = tracks_per_place(&conn, "zone_exited");
    assert_eq!(z1["dwell"].as_array().unwrap().len(), stays.len());
    let mut suppressed = 0;
    for (row1, row5) in z1["dwell"].as_array().unwrap().iter().zip(z5["dwell"].as_array().unwrap()) {
        let zone = row1["zone"].as_str().unwrap();
        let visits =
            int(&conn, &format!("SELECT COUNT(*) FROM events WHERE kind = 'zone_exited' AND place = '{zone}'"));
        assert_eq!((row1["visits"].as_i64(), row1["tracks"].as_i64()), (Some(visits), Some(stays[zone])), "{row1}");
        let hidden = stays[zone] < 5;
        assert_eq!(row5["suppressed"], hidden, "{row5}");
        assert_eq!(row5["median_ms"].is_null(), hidden, "{row5}");
        suppressed += hidden as usize;
    }
    for row in z5["interactions"].as_array().unwrap() {
        let t = tracks_per_place(&conn, "interaction")[row["zone"].as_str().unwrap()];
        assert_eq!(row["suppressed"], t < 5, "{row}");
        suppressed += (t < 5) as usize;
    }
    for row in z5["mood"].as_array().unwrap() {
        let zone = row["zone"].as_str().unwrap();
        let t = common::distinct_tokens(&conn, &format!("FROM mood WHERE zone = '{zone}'"));
        assert_eq!(row["suppressed"], t < 5, "{row}");
        if t >= 5 {
            assert_eq!(row["samples"], int(&conn, &format!("SELECT SUM(samples) FROM mood WHERE zone = '{zone}'")));
        }
    }
    let journeys = journeys_in_db(&conn);
    for p in z1["funnel"].as_array().unwrap() {
        let (a, b) = (p["from"].as_str().unwrap(), p["to"].as_str().unwrap());
        let reached = journeys
            .iter()
            .filter(|j| j.iter().position(|z| z == a).is_some_and(|i| j[i + 1..].iter().any(|z| z == b)))
            .count();
        assert_eq!(p["reached"], reached, "{p}");
    }

    // Journeys: every journey counted once at k = 1; at k = 5 the rarer paths are suppressed.
    let j1 = get(&d1, &format!("/api/journeys?{all}&top=100"), Some(&a1)).json();
    let total: i64 = j1["journeys"].as_array().unwrap().iter().map(|j| j["tracks"].as_i64().unwrap()).sum();
    assert_eq!(total, journeys.iter().filter(|j| !j.is_empty()).count() as i64);
    let j5 = get(&d5, &format!("/api/journeys?{all}&top=1"), Some(&a5)).json();
    assert_eq!((j5["top"].as_i64(), j5["journeys"].as_array().unwrap().len()), (Some(1), 1));
    for row in get(&d5, &format!("/api/journeys?{all}"), Some(&a5)).json()["journeys"].as_array().unwrap() {
        let zones: Vec<String> = serde_json::from_value(row["zones"].clone()).unwrap();
        let n = journeys.iter().filter(|j| **j == zones).count();
        assert_eq!(row["suppressed"], n < 5, "{row}");
        suppressed += (n < 5) as usize;
    }

    // Heatmap: the cells summed over the period, per kind and camera; suppressed by the distinct tracks
    // over the buckets (the union of their tokens).
    let h1 = get(&d1, &format!("/api/heatmap?{all}"), Some(&a1)).json();
    let cells = h1["cells"].as_array().unwrap();
    assert_eq!(cells.len() as i64, int(&conn, "SELECT COUNT(DISTINCT cx || ',' || cy) FROM heat"));
    let presence: i64 = cells.iter().map(|c| c["presence"].as_i64().unwrap()).sum();
    assert_eq!(presence, int(&conn, "SELECT SUM(presence) FROM heat"));
    assert_eq!(h1["max"].as_f64(), cells.iter().map(|c| c["presence"].as_f64().unwrap()).reduce(f64::max));
    assert_eq!(
        h1["plan"],
        json!({ "url": "/api/plan.png", "width": 600, "height": 400, "pixels_per_metre": 100.0, "origin_px": [0.0, 0.0] })
    );
    let zone_names: BTreeSet<&str> =
        h1["zones"].as_array().unwrap().iter().map(|z| z["name"].as_str().unwrap()).collect();
    assert_eq!(zone_names, BTreeSet::from(["entrance", "floor", "side-door", "table"]));
    let dwell = get(&d1, &format!("/api/heatmap?{all}&kind=dwell&camera=sample"), Some(&a1)).json();
    assert_eq!(
        (dwell["kind"].as_str(), dwell["unit"].as_str(), dwell["camera"].as_str()),
        (Some("dwell"), Some("seconds"), Some("sample"))
    );
    let dwell_max =
        int(&conn, "SELECT MAX(d) FROM (SELECT SUM(dwell_ms) AS d FROM heat GROUP BY cx, cy)") as f64 / 1000.0;
    assert_eq!(dwell["max"].as_f64(), Some(dwell_max));
    let h5 = get(&d5, &format!("/api/heatmap?{all}"), Some(&a5)).json();
    let mut hidden_cells = 0;
    for c in h5["cells"].as_array().unwrap() {
        let t = common::distinct_tokens(&conn, &format!("FROM heat WHERE cx = {} AND cy = {}", c["cx"], c["cy"]));
        assert_eq!(c["suppressed"], t < 5, "{c}");
        assert_eq!(c["presence"].is_null(), t < 5, "{c}");
        hidden_cells += (t < 5) as usize;
    }
    assert_eq!(h5["suppressed"], hidden_cells);
    assert!(suppressed > 0 && hidden_cells > 0, "with k = 5 some rows and cells of the sample are suppressed");
    // The heatmap page draws the same cells, and the legend.
    let page = get(&d5, &format!("/heatmap?{all}"), Some(&a5)).text();
    assert_eq!(page.matches("<rect class=\"cell\"").count(), h5["shown"].as_u64().unwrap() as usize);
    assert_eq!(page.matches("<rect class=\"cell suppressed\"").count(), hidden_cells);
    assert!(page.contains("id=\"legend\"") && page.contains("fewer than 5 people"));
    // The same as a picture: what `iobox heatmap` draws (the plan, a title band, the colour bar).
    let png = get(&d5, &format!("/api/heatmap.png?{all}&kind=dwell"), Some(&a5));
    assert_eq!(png.header("content-type"), Some("image/png"));
    let img = image::load_from_memory(&png.body).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (600 + 110, 400 + 24));
    let cli = site5.dir.join("cli-heatmap.png");
    let out = common::iobox(
        &[
            "heatmap",
            "--config",
            site5.config.to_str().unwrap(),
            "--from",
            "2000-01-01",
            "--kind",
            "dwell",
            "--out",
            cli.to_str().unwrap(),
        ],
        &site5.dir,
    );
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(img, image::open(&cli).unwrap().to_rgb8(), "the dashboard's picture is the command's");
    assert!(page.contains("href=\"/api/heatmap.png?from="), "{page}");

    // Cameras, calibration, previews and pictures.
    let cal = iobox::calibration::Calibration::load(&common::root().join("calibration/sample.toml")).unwrap();
    let cams = get(&d1, "/api/cameras", Some(&a1)).json();
    assert_eq!(cams.as_array().unwrap().len(), 1);
    assert_eq!(cams[0]["name"], "sample");
    assert_eq!(cams[0]["preview"], json!({ "url": "/api/cameras/sample/preview.jpg", "source": "snapshot" }));
    assert!((cams[0]["calibration"]["rms_px"].as_f64().unwrap() - cal.fit.rms_px).abs() < 1e-9, "{cams}");
    let detail = get(&d1, "/api/cameras/sample/calibration", Some(&a1)).json();
    assert_eq!(detail["points"].as_array().unwrap().len(), cal.points.len());
    for (p, r) in detail["points"].as_array().unwrap().iter().zip(&cal.fit.residuals) {
        assert!((p["residual_px"].as_f64().unwrap() - r.px).abs() < 1e-9, "{p}");
        assert_eq!(p["inlier"].as_bool(), Some(r.inlier));
    }
    assert_eq!(detail["overlay"], "/api/cameras/sample/overlay.png");
    let page = get(&d1, "/cameras/sample/calibration", Some(&a1)).text();
    assert!(page.contains(&format!("RMS {:.2} px", cal.fit.rms_px)) && page.contains("id=\"points\""), "{page}");
    let jpeg = get(&d1, "/api/cameras/sample/preview.jpg", Some(&a1));
    assert_eq!((jpeg.header("content-type"), jpeg.header("x-preview-source")), (Some("image/jpeg"), Some("snapshot")));
    assert_eq!(jpeg.body, std::fs::read(site1.dir.join("snapshots/sample.jpg")).unwrap(), "the run's own snapshot");
    for (path, size) in [
        ("/api/cameras/sample/overlay.png", (768, 432)),
        ("/api/cameras/sample/plan-overlay.png", (600, 400)),
        ("/api/plan.png", (600, 400)),
    ] {
        let r = get(&d1, path, Some(&a1));
        assert_eq!(r.header("content-type"), Some("image/png"), "{path}");
        let img = image::load_from_memory(&r.body).unwrap();
        assert_eq!((img.width(), img.height()), size, "{path}");
    }
    let missing = get(&d1, "/api/cameras/nowhere/preview.jpg", Some(&a1));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("no camera called \"nowhere\""));
}

#[test]
fn the_openapi_document_lists_every_route_and_nothing_else() {
    let site = site("openapi", 5);
    let d = Dashboard::serve(&site.config);
    let ana = login(&d, ANA);
    let doc = get(&d, "/api/openapi.json", Some(&ana));
    assert_eq!(doc.header("content-type"), Some("application/json"));
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["session"]["name"], iobox::server::auth::COOKIE);
    let paths = doc["paths"].as_object().unwrap();
    let mut listed = BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            listed.insert(format!("{method} {path}"));
            let public = op["security"] == json!([]);
            let concrete = path.replace("{camera}", "sample");
            if method == "get" {
                // Every documented GET exists and answers what it says, to a logged-in integrator...
                let r = get(&d, &concrete, Some(&ana));
                assert_eq!(r.status, 200, "{path}: {}", r.text());
                let documented: Vec<&String> = op["responses"]["200"]["content"].as_object().unwrap().keys().collect();
                let ct = r.header("content-type").unwrap();
                assert!(
                    documented.iter().any(|d| ct.starts_with(d.split(';').next().unwrap())),
                    "{path}: {ct} vs {documented:?}"
                );
                if ct == "application/json" {
                    r.json();
                }
            }
            // ... and nothing but the login form, the style sheet and the script answers without a session.
            let anonymous =
                if method == "get" { get(&d, &concrete, None) } else { post_form(&d, &concrete, "", None, &[]) };
            if public {
                assert_ne!(anonymous.status, 401, "{method} {path}");
            } else {
                assert_eq!(anonymous.status, 401, "{method} {path}");
            }
        }
    }
    let expected = [
        "get /",
        "get /heatmap",
        "get /zones",
        "get /journeys",
        "get /cameras",
        "get /cameras/{camera}/calibration",
        "get /login",
        "post /login",
        "post /logout",
        "get /static/app.css",
        "get /static/app.js",
        "get /api/me",
        "get /api/overview",
        "get /api/heatmap",
        "get /api/heatmap.png",
        "get /api/zones",
        "get /api/journeys",
        "get /api/cameras",
        "get /api/cameras/{camera}/preview.jpg",
        "get /api/cameras/{camera}/calibration",
        "get /api/cameras/{camera}/overlay.png",
        "get /api/cameras/{camera}/plan-overlay.png",
        "get /api/plan.png",
        "get /api/openapi.json",
    ];
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let extra: Vec<_> = listed.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&listed).collect();
    assert!(extra.is_empty() && missing.is_empty(), "undocumented {missing:?}, unexpected {extra:?}");
    // What the document does not list does not exist.
    for path in ["/api/users", "/admin", "/api/heatmap.csv", "/static/app.map"] {
        assert_eq!(get(&d, path, Some(&ana)).status, 404, "{path}");
    }
    assert_eq!(post_form(&d, "/api/zones", "", Some(&ana), &[]).status, 405);
    d.refusal("POST", "/api/zones", 405, "not allowed");
}

#[test]
fn hostile_requests_fail_safely_and_are_logged() {
    let site = site("hostile", 5);
    let conn = iobox::store::open_ro(&site.db).unwrap();
    let before = (int(&conn, "SELECT COUNT(*) FROM users"), int(&conn, "SELECT COUNT(*) FROM events"));
    let d = Dashboard::serve(&site.config);
    let ana = login(&d, ANA);

    // Path traversal: nothing is served from disk by a request's path; every try is 404 (or 400) and logged.
    let secret_markers = ["[package]", "root:", "$argon2", "SQLite format"];
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/..%5c..%5cCargo.toml",
        "/api/cameras/..%2f..%2f..%2fetc%2fpasswd/preview.jpg",
        "/api/cameras/%2e%2e/preview.jpg",
        "/api/cameras/..%252f..%252fsample.sqlite/preview.jpg",
        "/cameras/..%2F..%2Fsample.sqlite/calibration",
        "/api/cameras/sample/../../sample.sqlite",
        "/../../../../etc/passwd",
        "//etc/passwd",
        "/api/plan.png/../../sample.sqlite",
    ] {
        let r = raw(
            d.addr,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {ana}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
        let body = r.text();
        assert!(secret_markers.iter().all(|m| !body.contains(m)), "{path}: {body}");
        d.refusal("GET", path, r.status, "");
    }

    // SQL injection (and plain nonsense) in every query parameter of every route that takes one: 400, the
    // reason logged, the database untouched.
    let doc = get(&d, "/api/openapi.json", Some(&ana)).json();
    let nasty = [
        "' OR '1'='1",
        "1; DROP TABLE users; --",
        "sample' --",
        "-7d' UNION SELECT password_hash FROM users --",
        "2026-01-01\") OR 1=1 --",
        "%00",
    ];
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        for p in op["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            if name == "next" {
                continue; // /login's `next` is not a filter: any value is answered with the form (checked below)
            }
            for value in nasty {
                let enc: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
                let url = format!("{path}?{name}={enc}");
                let r = get(&d, &url, Some(&ana));
                assert_eq!(r.status, 400, "{url}: {}", r.text());
                assert!(!r.text().contains("$argon2"), "{url}");
                d.refusal("GET", path, 400, name);
                tried += 1;
            }
        }
    }
    assert!(tried >= 6 * 12, "every query parameter of every page and API route ({tried} requests)");
    let login_page = get(&d, "/login?next=%27%20OR%201%3D1--%22%3E%3Cscript%3E", None);
    assert_eq!(login_page.status, 200);
    assert!(!login_page.text().contains("\"><script>"), "the value is escaped in the form");
    // Unknown and repeated parameters, broken encodings.
    for url in [
        "/api/zones?where=1",
        "/api/zones?from=-7d&from=-1d",
        "/api/heatmap?kind=presence&kind=dwell",
        "/api/journeys?top=%FF%FE",
    ] {
        assert_eq!(get(&d, url, Some(&ana)).status, 400, "{url}");
    }
    // A login form carrying SQL is just a wrong password.
    let r = post_form(&d, "/login", "name=ana%27--&password=%27%20OR%20%271%27%3D%271", None, &[]);
    assert_eq!(r.status, 401);

    // Oversized bodies: 413 before the body is read (Content-Length) or while reading it (chunked).
    let big = format!("name=ana&password={}", "x".repeat(1 << 20));
    let r = raw(
        d.addr,
        format!(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413);
    d.refusal("POST", "/login", 413, "over the 16384-byte limit");
    let chunk = "a".repeat(8192);
    let mut req = String::from(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    req.push_str("5\r\nname=\r\n");
    for _ in 0..8 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let r = raw(d.addr, req.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());
    // A body on any other route is not read at all.
    let r = raw(
        d.addr,
        format!("POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 1 << 30)
            .as_bytes(),
    );
    assert_eq!(r.status, 413);

    // Still serving, nothing changed.
    assert_eq!(get(&d, "/api/me", Some(&ana)).status, 200);
    let after = (int(&conn, "SELECT COUNT(*) FROM users"), int(&conn, "SELECT COUNT(*) FROM events"));
    assert_eq!(before, after);
    assert_eq!(int(&conn, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'"), 1);
}

#[test]
fn run_with_serve_shares_live_anonymized_previews_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    // A rule the sample fires (people stay at the table for more than 5 s); no broker: alerts are only
    // collected for the dashboard and logged.
    let rule = "[dashboard]\npreview_every_s = 1\n[[alert]]\nname = \"long-stay\"\nkind = \"dwell\"\nzone = \"table\"\nabove = 5\n";
    let config = common::sample_config(dir.path(), rule);
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace("snapshot = ", "# snapshot = ")).unwrap();
    add_user(&config, ANA.0, "integrator", ANA.1);
    let mut d = Dashboard::spawn(&["run", "--serve", "--config", config.to_str().unwrap()], dir.path());
    let ana = login(&d, ANA);
    // A live preview appears while the cameras run: built from anonymized frames in this process.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jpeg = loop {
        let r = get(&d, "/api/cameras/sample/preview.jpg", Some(&ana));
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(Instant::now() < deadline, "no live preview: {}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(jpeg.header("x-preview-source"), Some("live"));
    let img = image::load_from_memory(&jpeg.body).unwrap();
    assert_eq!((img.width(), img.height()), (768, 432));
    let overlay = get(&d, "/api/cameras/sample/overlay.png", Some(&ana));
    assert_eq!(overlay.status, 200);
    assert_eq!(get(&d, "/api/cameras", Some(&ana)).json()[0]["preview"]["source"], "live");
    // The cameras end; the dashboard stays, with the alerts the run raised (values about one person
    // suppressed at k = 5).
    d.wait_log(&["the cameras have ended; the dashboard is still at"], Duration::from_secs(180));
    let o = get(&d, "/api/overview?from=2000-01-01", Some(&ana)).json();
    assert_eq!(o["alerts"]["live"], true);
    let recent = o["alerts"]["recent"].as_array().unwrap();
    assert!(!recent.is_empty(), "{o}");
    assert!(recent.iter().all(|a| a["rule"] == "long-stay" && a["zone"] == "table" && a["value"].is_null()), "{o}");
    let fired = recent.iter().filter(|a| a["state"] == "fired").count();
    assert_eq!(fired, d.log().matches("alert fired").count());
    assert!(get(&d, "/", Some(&ana)).text().contains("long-stay"));
    // SIGTERM stops both, cleanly.
    let pid = d.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "iobox run --serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", d.log());
    let conn = iobox::store::open_ro(&dir.path().join("sample.sqlite")).unwrap();
    assert_eq!(int(&conn, "SELECT COUNT(*) FROM events WHERE kind = 'entry'"), 6);
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn a_real_browser_logs_in_and_sees_the_heatmap_and_its_legend() {
    for bin in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            Path::new(bin).is_file(),
            "{bin} is missing: the browser test needs Debian's chromium and chromium-driver; run `make test` or \
             `scripts/setup.sh test`, which install them"
        );
    }
    let site = site("browser", 5);
    let d = Dashboard::serve(&site.config);
    let api = get(&d, "/api/heatmap?from=2000-01-01", Some(&login(&d, ANA))).json();
    let (shown, hidden) = (api["shown"].as_u64().unwrap() as usize, api["suppressed"].as_u64().unwrap() as usize);
    assert!(shown > 0);

    let port = free_port();
    let driver_log = std::fs::File::create(site.dir.join("chromedriver.log")).unwrap();
    let mut driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(driver_log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = site.dir.join("chromium-profile");
    let start = d.url("/heatmap?from=2000-01-01");
    let base = d.url("");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outcome = rt.block_on(async {
        use fantoccini::{ClientBuilder, Locator};
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1200", format!("--user-data-dir={}", profile.display())
            ] }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        let result: Result<_, fantoccini::error::CmdError> = async {
            // Not logged in: the heatmap address shows the login form.
            client.goto(&start).await?;
            let form = client.find(Locator::Css("form#login")).await?;
            client.find(Locator::Css("input[name=name]")).await?.send_keys(ANA.0).await?;
            client.find(Locator::Css("input[name=password]")).await?.send_keys(ANA.1).await?;
            form.find(Locator::Css("button[type=submit]")).await?.click().await?;
            // Logged in, back on the heatmap.
            client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("svg#heatmap")).await?;
            let url = client.current_url().await?;
            let cells = client.find_all(Locator::Css("svg#heatmap rect.cell:not(.suppressed)")).await?.len();
            let hatched = client.find_all(Locator::Css("svg#heatmap rect.cell.suppressed")).await?.len();
            client.find(Locator::Css("svg#legend rect.colour-bar")).await?;
            let legend_text = client.execute("return document.querySelector('#legend').textContent", vec![]).await?;
            // The floor plan under the cells was fetched and decoded, and the drawing has a size on screen.
            let plan: Value = client
                .execute(
                    "return new Promise(done => { const i = new Image(); i.onload = () => done([i.naturalWidth, \
                     i.naturalHeight, performance.getEntriesByType('resource').filter(e => \
                     e.name.endsWith('/api/plan.png')).length]); i.onerror = () => done(null); \
                     i.src = '/api/plan.png'; })",
                    vec![],
                )
                .await?;
            // Where each shown cell and the colour bar are on screen (device pixels), and their colours.
            let layout: Value = client
                .execute(
                    "const d = window.devicePixelRatio; \
                     const box = e => { const b = e.getBoundingClientRect(); return [b.x * d, b.y * d, b.width * d, b.height * d]; }; \
                     return { heatmap: box(document.querySelector('#heatmap')), \
                              bar: box(document.querySelector('#legend rect.colour-bar')), \
                              cells: Array.from(document.querySelectorAll('#heatmap rect.cell:not(.suppressed)')) \
                                     .map(r => box(r).concat([r.getAttribute('fill')])) };",
                    vec![],
                )
                .await?;
            let png = client.screenshot().await?;
            // The other pages render too, with their charts and pictures (CSP lets nothing else in); their
            // screenshots are kept for a person to look at.
            let mut pages = Vec::new();
            for (name, path, selector) in [
                ("overview", "/?from=2000-01-01", "#visits"),
                ("zones", "/zones?from=2000-01-01", "svg#dwell"),
                ("journeys", "/journeys?from=2000-01-01", "svg#journeys"),
                ("cameras", "/cameras", "img.preview"),
                ("calibration", "/cameras/sample/calibration", "img#overlay"),
            ] {
                client.goto(&format!("{base}{path}")).await?;
                client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(selector)).await?;
                let images: Value = client
                    .execute(
                        "return Promise.all(Array.from(document.images).map(i => i.decode().then(() => \
                         [i.naturalWidth, i.naturalHeight], () => null)));",
                        vec![],
                    )
                    .await?;
                pages.push((name, images, client.screenshot().await?));
            }
            Ok((url, cells, hatched, legend_text, plan, layout, png, pages))
        }
        .await;
        let result = match result {
            Ok(r) => Ok(r),
            Err(e) => Err(format!("{e}\npage: {}", client.source().await.unwrap_or_default())),
        };
        let _ = client.close().await;
        result
    });
    let _ = driver.kill();
    let _ = driver.wait();
    let (url, cells, hatched, legend_text, plan, layout, png, pages) = outcome.unwrap_or_else(|e| {
        panic!(
            "browser: {e}\nchromedriver log: {}\ndashboard log: {}",
            std::fs::read_to_string(site.dir.join("chromedriver.log")).unwrap_or_default(),
            d.log()
        )
    });
    assert_eq!((url.path(), url.query()), ("/heatmap", Some("from=2000-01-01")));
    assert_eq!((cells, hatched), (shown, hidden), "the page draws every cell the API reports");
    let legend_text = legend_text.as_str().unwrap_or_default();
    assert!(legend_text.contains("track-frames") && legend_text.contains("fewer than 5 people"), "{legend_text}");
    assert_eq!(plan[0].as_u64(), Some(600), "{plan}");
    assert!(plan[2].as_u64().unwrap() >= 1, "the SVG's floor plan was loaded by the page: {plan}");
    let rect = |v: &Value| -> [f64; 4] { std::array::from_fn(|i| v[i].as_f64().unwrap()) };
    let heat = rect(&layout["heatmap"]);
    assert!(heat[2] >= 400.0 && heat[3] >= 250.0, "{layout}");

    let shot = site.dir.join("heatmap.png");
    std::fs::write(&shot, &png).unwrap();
    let screenshots = common::root().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    std::fs::copy(&shot, screenshots.join("heatmap.png")).unwrap();
    for (name, images, png) in &pages {
        std::fs::write(screenshots.join(format!("{name}.png")), png).unwrap();
        for img in images.as_array().unwrap() {
            assert!(img[0].as_u64().unwrap_or(0) > 0, "{name}: a picture did not load: {images}");
        }
    }
    let decoded = |name: &str| pages.iter().find(|p| p.0 == name).unwrap().1.clone();
    assert_eq!(decoded("cameras"), json!([[768, 432]]), "the anonymized preview");
    assert_eq!(decoded("calibration"), json!([[768, 432], [600, 400]]), "the overlay and the plan overlay");
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    // The median colour of a 9x9 patch of the screenshot.
    let patch = |x: f64, y: f64| -> [i32; 3] {
        std::array::from_fn(|c| {
            let mut v: Vec<i32> = (-4..=4)
                .flat_map(|dy| (-4..=4).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| img.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)[c] as i32)
                .collect();
            v.sort();
            v[v.len() / 2]
        })
    };
    // Each shown cell is on screen in its colour, blended over the plan (fill-opacity 0.7).
    for cell in layout["cells"].as_array().unwrap() {
        let r = rect(cell);
        let fill = cell[4].as_str().unwrap();
        let want: [i32; 3] = std::array::from_fn(|c| i32::from_str_radix(&fill[1 + 2 * c..3 + 2 * c], 16).unwrap());
        let got = patch(r[0] + r[2] / 2.0, r[1] + r[3] / 2.0);
        for c in 0..3 {
            let expected = (0.7 * want[c] as f64 + 0.3 * 250.0) as i32;
            assert!((got[c] - expected).abs() <= 30, "cell {cell}: screen {got:?}, fill {fill}, {}", shot.display());
        }
    }
    // The colour bar runs from the dark to the light end of the colour map (as the PNG's).
    let bar = rect(&layout["bar"]);
    let (left, right) =
        (patch(bar[0] + 6.0, bar[1] + bar[3] / 2.0), patch(bar[0] + bar[2] - 6.0, bar[1] + bar[3] / 2.0));
    assert!(left.iter().all(|&c| c < 70), "{left:?}");
    assert!(right[0] > 235 && right[1] > 225 && right[2] > 120, "{right:?}");
}
