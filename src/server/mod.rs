//! The staff dashboard and its JSON API: `iobox serve`, or `iobox run --serve` in the appliance's process.
//!
//! - [`routes`]: the table of every route (method, path, who may use it, what it answers, its query
//!   parameters); the router, the guards and the OpenAPI document are all made from it.
//! - [`auth`]: argon2 passwords, sessions, roles, the guard, login rate limiting.
//! - [`http`]: refusals and their log lines, query parameter parsing, body limit, security headers.
//! - [`api`]: the JSON answers (and the pictures); [`pages`]: the same data as HTML; [`charts`]: inline SVG.
//! - [`openapi`]: the OpenAPI 3.1 document.
//!
//! The dashboard reads the database through its own read-only connections ([`crate::store::ReadPool`]) and
//! only through the k-suppressed queries of [`crate::store::query`], with the config's `min_tracks` as k,
//! exactly as `iobox report`. The only pixels it serves are anonymized stills ([`crate::live::Still`]),
//! overlays drawn on them, and the floor plan. It serves no file by a path taken from a request: camera
//! names in paths are looked up among the config's cameras, and the style sheet and script are compiled in.
//!
//! Requests are answered by a small tokio runtime (2 threads) on a thread of its own; database queries and
//! pictures run on its blocking pool, password checks on a pool of their own ([`hasher`]: 2 threads at a
//! lower priority, a queue of 8, then 503).
//!
//! Hostile clients: connections are accepted by iobox's own loop on hyper, with a header read timeout (also
//! between requests on a kept-alive connection), a 32 KiB limit on a request's head, a limit on open
//! connections (beyond it a new connection is closed at once) and a request timeout (tower-http, 408). Every
//! request's `Host` must be an IP address, `localhost`, or a name in `[dashboard] hosts` (DNS rebinding).

pub(crate) mod api;
pub mod auth;
pub(crate) mod charts;
pub(crate) mod hasher;
pub(crate) mod http;
pub(crate) mod openapi;
pub(crate) mod pages;
pub(crate) mod routes;

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::calibration::{Calibration, FloorPlan};
use crate::config::Config;
use crate::live::Live;
use crate::store::ReadPool;

pub use auth::Role;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dashboard: cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("dashboard: {0}")]
    Start(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// A camera as the dashboard knows it.
pub(crate) struct CameraInfo {
    pub name: String,
    pub kind: String,
    /// The calibration, or why it could not be loaded; `None` when the camera has none.
    pub calibration: Option<Result<Calibration, String>>,
}

impl CameraInfo {
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref().and_then(|c| c.as_ref().ok())
    }

    /// The calibration, or a 404 saying why there is none.
    pub fn calibrated(&self) -> Result<&Calibration, http::Refusal> {
        match &self.calibration {
            Some(Ok(cal)) => Ok(cal),
            Some(Err(e)) => Err(http::Refusal::not_found(format!("camera '{}': {e}", self.name))),
            None => Err(http::Refusal::not_found(format!("camera '{}' has no calibration", self.name))),
        }
    }
}

/// The site's floor plan (the first calibrated camera's, as `iobox heatmap`): its scale, and when its image
/// can be read, the PNG served at /api/plan.png and its size.
pub(crate) struct Plan {
    pub floor: FloorPlan,
    pub image: Option<PlanImage>,
}

pub(crate) struct PlanImage {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What every request handler shares.
pub(crate) struct Inner {
    pub k: u32,
    pub db: ReadPool,
    pub cameras: Vec<CameraInfo>,
    pub plan: Option<Plan>,
    pub sessions: auth::Sessions,
    pub attempts: auth::Attempts,
    pub hasher: hasher::Hasher,
    /// Checked against for unknown user names, so that they cost the same as a wrong password.
    pub decoy_hash: String,
    /// The `Host` names accepted besides IP addresses and `localhost`.
    pub hosts: http::Hosts,
    pub secure_cookie: bool,
    pub live: Option<Arc<Live>>,
    /// `[output] snapshot` with `{camera}`: the run's anonymized snapshot files.
    pub snapshot: Option<String>,
    pub rules: Vec<crate::alerts::Rule>,
    pub openapi: String,
}

#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The config's camera of this name (the name in a request path is only ever compared, never used).
    pub fn camera(&self, name: &str) -> Result<&CameraInfo, http::Refusal> {
        self.cameras
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| http::Refusal::not_found(format!("no camera called {:?} in the config", http::clip(name))))
    }

    /// The snapshot file of a config camera.
    pub fn snapshot_path(&self, camera: &CameraInfo) -> Option<PathBuf> {
        self.snapshot.as_ref().map(|t| PathBuf::from(t.replace("{camera}", &camera.name)))
    }
}

/// A running dashboard.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Opens the database (creating and upgrading it when needed, so that the users table exists), loads
    /// the cameras' calibrations and the floor plan, binds `listen` and starts answering. Port 0 picks a
    /// free port: see [`Server::addr`].
    pub fn start(config: &Config, listen: SocketAddr, live: Option<Arc<Live>>) -> Result<Server, Error> {
        drop(crate::store::open_rw(&config.store_path)?);
        let db = ReadPool::open(&config.store_path, 4)?;
        let users = db.with(crate::store::users::count)?;
        let cameras: Vec<CameraInfo> = config
            .cameras
            .iter()
            .map(|c| CameraInfo {
                name: c.source.name.clone(),
                kind: format!("{:?}", c.source.kind).to_lowercase(),
                calibration: c.calibration.as_deref().map(|p| Calibration::load(p).map_err(|e| e.to_string())),
            })
            .collect();
        for c in &cameras {
            if let Some(Err(e)) = &c.calibration {
                tracing::warn!(camera = %c.name, "dashboard: calibration not shown: {e}");
            }
        }
        let plan = load_plan(&cameras);
        let listener =
            std::net::TcpListener::bind(listen).map_err(|e| Error::Listen { addr: listen, message: e.to_string() })?;
        listener.set_nonblocking(true).map_err(|e| Error::Start(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| Error::Start(e.to_string()))?;
        let state = AppState(Arc::new(Inner {
            k: config.min_tracks,
            db,
            cameras,
            plan,
            sessions: auth::Sessions::new(config.dashboard.session),
            attempts: auth::Attempts::default(),
            hasher: hasher::Hasher::start().map_err(|e| Error::Start(format!("password threads: {e}")))?,
            decoy_hash: auth::decoy_hash(),
            hosts: http::Hosts::new(&config.dashboard.hosts),
            secure_cookie: config.dashboard.secure_cookie,
            live,
            snapshot: config.snapshot.clone(),
            rules: config.alerts.rules.clone(),
            openapi: openapi::document(&config.cameras.iter().map(|c| c.source.name.clone()).collect::<Vec<_>>())
                .to_string(),
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("dashboard")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Start(e.to_string()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = routes::router(state);
        let limits = Limits {
            max_connections: max_connections(config.dashboard.max_connections),
            header_timeout: config.dashboard.header_timeout,
            request_timeout: config.dashboard.request_timeout,
        };
        let thread = std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, app, limits, rx).await,
                        Err(e) => tracing::error!("dashboard: {e}"),
                    }
                });
                // Connections still open after the shutdown signal are dropped here.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| Error::Start(e.to_string()))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "dashboard: listening on {addr}, reachable from other machines; it speaks plain HTTP, so put it \
                 behind a TLS proxy (and set [dashboard] secure_cookie = true) or keep it on 127.0.0.1"
            );
        }
        tracing::info!("dashboard listening on http://{addr}");
        if users == 0 {
            tracing::warn!(
                "dashboard: no users yet. Create the first one on this box with:  iobox user add NAME --role \
                 integrator{}",
                if config.origin.starts_with('<') { String::new() } else { format!(" --config {}", config.origin) }
            );
        }
        Ok(Server { addr, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish (2 s at most) and returns.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// What the accept loop holds a hostile client to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    request_timeout: Duration,
}

/// Largest request head (request line and headers) read; hyper's default is ~400 KiB per connection.
const MAX_HEAD: usize = 32 * 1024;

/// The connection limit, lowered to what the process's open-file limit allows (with room for the
/// database, the cameras and the models), after raising that limit as far as the system lets it.
fn max_connections(wanted: usize) -> usize {
    let files = raise_open_file_limit();
    let allowed = files.saturating_sub(256).max(16) as usize;
    if wanted > allowed {
        tracing::warn!(
            "dashboard: [dashboard] max_connections = {wanted} is more than the open-file limit ({files}) allows; \
             using {allowed}"
        );
        allowed
    } else {
        wanted
    }
}

/// Raises the soft open-file limit to the hard one (as Go and nginx do); returns the soft limit now.
fn raise_open_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit { rlim_cur: l.rlim_max, rlim_max: l.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l = raised;
            }
        }
        l.rlim_cur
    }
}

/// Accepts connections until `stop`: each is served by hyper with the header read timeout and head size
/// limit, holds one of `max_connections` permits while open (none left: closed at once), and each request
/// is cut off after the request timeout. On `stop`, requests in flight get 2 s to finish.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEAD).keep_alive(true);
    let mut last_full_warning: Option<std::time::Instant> = None;
    loop {
        let (stream, client) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("dashboard: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                last_full_warning = Some(std::time::Instant::now());
                tracing::warn!(
                    client = %client.ip(),
                    "dashboard: {} connections open, the limit; new ones are closed at once",
                    limits.max_connections
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(client));
            app.clone().oneshot(req)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %client.ip(), "dashboard: connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await.is_err() {
        tracing::debug!("dashboard: requests still in flight at shutdown are dropped");
    }
}

/// The floor plan of the first calibrated camera (every camera of a site shares one plan), its image
/// re-encoded as PNG.
fn load_plan(cameras: &[CameraInfo]) -> Option<Plan> {
    let cal = cameras.iter().find_map(CameraInfo::calibration)?;
    let image = match crate::capture::still::open_image(&cal.floor_plan.image) {
        Ok(i) => {
            let mut png = std::io::Cursor::new(Vec::new());
            i.write_to(&mut png, image::ImageFormat::Png).ok().map(|_| PlanImage {
                png: png.into_inner(),
                width: i.width(),
                height: i.height(),
            })
        }
        Err(e) => {
            tracing::warn!(
                "dashboard: floor plan {}: {e}; heatmaps are drawn on a grid",
                cal.floor_plan.image.display()
            );
            None
        }
    };
    Some(Plan { floor: cal.floor_plan.clone(), image })
}
