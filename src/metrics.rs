//! What a running box says about itself: Prometheus metrics (`/metrics`, the text format) and health
//! (`/healthz`, `/readyz`), on a listener of their own (`[metrics] listen`, 127.0.0.1:9464 by default),
//! readable without a dashboard login, from loopback only unless `[metrics] allow_remote`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `iobox_camera_frames_processed_total`, `_failed_total`, `_dropped_total` | camera | frames through the pipeline, failed (dropped, fail closed), dropped by the queue |
//! | `iobox_camera_reconnects_total` | camera | reconnects of a live camera |
//! | `iobox_camera_up` | camera | 1 while the camera delivers frames |
//! | `iobox_camera_fps` | camera | frames processed per second over the last 10 s |
//! | `iobox_camera_queue_depth` | camera | frames waiting for a worker |
//! | `iobox_camera_last_frame_timestamp_seconds` | camera | when the camera's newest frame was processed (age: `time() - ...`) |
//! | `iobox_inference_seconds` | model | per frame, the model's run time (histogram) |
//! | `iobox_store_batch_seconds` | | the writer's transaction time per batch (histogram) |
//! | `iobox_store_pending_records`, `iobox_store_dropped_records_total`, `iobox_store_written_records_total`, `iobox_store_failing` | | the writer's queue, losses, throughput, and whether it cannot write now |
//! | `iobox_database_bytes` | | the SQLite file with its WAL |
//! | `iobox_alerts_fired_total`, `iobox_alerts_dropped_total` | | alerts raised, and lost on the way out |
//! | `iobox_chain_backlog_rows`, `iobox_chain_backlog_age_seconds`, `iobox_chain_delivered_rows_total`, `iobox_chain_failures` | | head office delivery |
//! | `process_*` | | RSS, virtual memory, open files, threads, CPU seconds (the `prometheus` process collector) |
//!
//! Health: every camera and component with `ok` and what is wrong. `/healthz` is 503 when a camera is
//! down (reconnecting or failed), the writer cannot write, or head office has failed 3 times in a row;
//! `/readyz` is 503 until every camera has delivered a frame, and whenever `/healthz` is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use serde::Serialize;

/// One series of a counter, and of a gauge, for callers that keep them (a camera's own).
pub use prometheus::{Gauge as GaugeSeries, IntCounter as CounterSeries};

/// Every metric of a run.
pub struct Metrics {
    registry: Registry,
    pub frames_processed: IntCounterVec,
    pub frames_failed: IntCounterVec,
    pub frames_dropped: IntCounterVec,
    pub reconnects: IntCounterVec,
    pub camera_up: IntGaugeVec,
    pub fps: GaugeVec,
    pub queue_depth: IntGaugeVec,
    pub last_frame: GaugeVec,
    pub inference: HistogramVec,
    pub store_batch: Histogram,
    pub store_pending: IntGauge,
    pub store_dropped: IntCounter,
    pub store_written: IntCounter,
    pub store_failing: IntGauge,
    pub database_bytes: IntGauge,
    pub alerts_fired: IntCounter,
    pub alerts_dropped: IntCounter,
    pub chain_backlog_rows: IntGauge,
    pub chain_backlog_age: Gauge,
    pub chain_delivered: IntCounter,
    pub chain_failures: IntGauge,
    health: Mutex<Health>,
}

/// One camera or component as health reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Component {
    pub ok: bool,
    /// `running`, `reconnecting`, `ended`, ...
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Ready: a camera has delivered a frame; a component is ready when it is ok.
    #[serde(skip)]
    pub ready: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    pub cameras: BTreeMap<String, Component>,
    pub components: BTreeMap<String, Component>,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.cameras.values().chain(self.components.values()).all(|c| c.ok)
    }

    pub fn ready(&self) -> bool {
        self.healthy() && self.cameras.values().all(|c| c.ready)
    }

    /// The names of what is not ok (or, with `ready`, not ready).
    pub fn failing(&self, ready: bool) -> Vec<String> {
        let bad = |c: &Component| !c.ok || (ready && !c.ready);
        self.cameras
            .iter()
            .filter(|(_, c)| bad(c))
            .map(|(n, _)| format!("camera '{n}'"))
            .chain(self.components.iter().filter(|(_, c)| bad(c)).map(|(n, _)| n.clone()))
            .collect()
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("a valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn gauge_vec(r: &Registry, name: &str, help: &str, label: &str) -> GaugeVec {
    let m = GaugeVec::new(Opts::new(name, help), &[label]).expect("a valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn register<M: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: M) -> M {
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        }
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| HistogramOpts::new(name, help).buckets(buckets);
        let model_buckets = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let batch_buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
        Arc::new(Metrics {
            frames_processed: counter_vec(
                &r,
                "iobox_camera_frames_processed_total",
                "Frames anonymized and perceived.",
                "camera",
            ),
            frames_failed: counter_vec(
                &r,
                "iobox_camera_frames_failed_total",
                "Frames dropped because perception failed (fail closed).",
                "camera",
            ),
            frames_dropped: counter_vec(
                &r,
                "iobox_camera_frames_dropped_total",
                "Frames the camera's queue dropped because the workers were behind.",
                "camera",
            ),
            reconnects: counter_vec(&r, "iobox_camera_reconnects_total", "Reconnects of a live camera.", "camera"),
            camera_up: int_gauge_vec(&r, "iobox_camera_up", "1 while the camera delivers frames.", "camera"),
            fps: gauge_vec(&r, "iobox_camera_fps", "Frames processed per second over the last 10 s.", "camera"),
            queue_depth: int_gauge_vec(&r, "iobox_camera_queue_depth", "Frames waiting for a worker.", "camera"),
            last_frame: gauge_vec(
                &r,
                "iobox_camera_last_frame_timestamp_seconds",
                "When the camera's newest frame was processed (Unix time).",
                "camera",
            ),
            inference: register(
                &r,
                HistogramVec::new(
                    seconds("iobox_inference_seconds", "A model's run time per frame.", model_buckets),
                    &["model"],
                )
                .expect("a valid metric"),
            ),
            store_batch: register(
                &r,
                Histogram::with_opts(seconds(
                    "iobox_store_batch_seconds",
                    "The store writer's transaction time per batch.",
                    batch_buckets,
                ))
                .expect("a valid metric"),
            ),
            store_pending: register(
                &r,
                IntGauge::new("iobox_store_pending_records", "Records waiting for the store writer.").expect("valid"),
            ),
            store_dropped: register(
                &r,
                IntCounter::new(
                    "iobox_store_dropped_records_total",
                    "Records lost because the writer's queue was full.",
                )
                .expect("valid"),
            ),
            store_written: register(
                &r,
                IntCounter::new("iobox_store_written_records_total", "Records written to SQLite.").expect("valid"),
            ),
            store_failing: register(
                &r,
                IntGauge::new("iobox_store_failing", "1 while the store writer cannot write (disk full, locked).")
                    .expect("valid"),
            ),
            database_bytes: register(
                &r,
                IntGauge::new("iobox_database_bytes", "The SQLite database with its write-ahead log.").expect("valid"),
            ),
            alerts_fired: register(&r, IntCounter::new("iobox_alerts_fired_total", "Alerts raised.").expect("valid")),
            alerts_dropped: register(
                &r,
                IntCounter::new("iobox_alerts_dropped_total", "Alerts lost on the way to MQTT or the webhook.")
                    .expect("valid"),
            ),
            chain_backlog_rows: register(
                &r,
                IntGauge::new("iobox_chain_backlog_rows", "Outbox rows head office has not acknowledged.")
                    .expect("valid"),
            ),
            chain_backlog_age: register(
                &r,
                Gauge::new("iobox_chain_backlog_age_seconds", "Age of the oldest unacknowledged outbox row.")
                    .expect("valid"),
            ),
            chain_delivered: register(
                &r,
                IntCounter::new("iobox_chain_delivered_rows_total", "Outbox rows delivered to head office.")
                    .expect("valid"),
            ),
            chain_failures: register(
                &r,
                IntGauge::new("iobox_chain_failures", "Delivery attempts failed in a row.").expect("valid"),
            ),
            registry: r,
            health: Mutex::new(Health::default()),
        })
    }

    /// A counter raised to `total` (counters only go up; sources report totals).
    pub fn raise(counter: &IntCounter, total: u64) {
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }

    pub fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
    }

    pub fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("metrics: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Whether a client at `peer` may read: loopback always, others only when allowed.
pub fn allowed(peer: &SocketAddr, allow_remote: bool) -> bool {
    allow_remote || peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback()
}

/// The running listener.
pub struct MetricsServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `listen` (port 0: any free port) on a thread of its own.
    pub fn start(metrics: Arc<Metrics>, listen: SocketAddr, allow_remote: bool) -> std::io::Result<MetricsServer> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("metrics".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("metrics: cannot start: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("metrics: {e}");
                        return;
                    }
                };
                let app = router(metrics, allow_remote);
                let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    });
                if let Err(e) = serve.await {
                    tracing::error!("metrics: {e}");
                }
            });
        })?;
        Ok(MetricsServer { addr, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(metrics: Arc<Metrics>, allow_remote: bool) -> axum::Router {
    use axum::extract::{ConnectInfo, State};
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    type St = State<(Arc<Metrics>, bool)>;
    fn refuse() -> Response {
        (StatusCode::FORBIDDEN, "metrics are readable from this machine only ([metrics] allow_remote)\n")
            .into_response()
    }
    async fn metrics_page(State((m, remote)): St, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
        if !allowed(&peer, remote) {
            return refuse();
        }
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render()).into_response()
    }
    fn health_page(m: &Metrics, ready: bool) -> Response {
        let h = m.health();
        let ok = if ready { h.ready() } else { h.healthy() };
        let body = serde_json::json!({
            "status": if ok { "ok" } else { "unhealthy" },
            "failing": h.failing(ready),
            "cameras": h.cameras,
            "components": h.components,
        });
        let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
    async fn healthz(State((m, remote)): St, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
        if !allowed(&peer, remote) {
            return refuse();
        }
        health_page(&m, false)
    }
    async fn readyz(State((m, remote)): St, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
        if !allowed(&peer, remote) {
            return refuse();
        }
        health_page(&m, true)
    }
    axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state((metrics, allow_remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_reads_unless_allowed() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(allowed(&at("127.0.0.1:5000"), false));
        assert!(allowed(&at("127.0.0.2:5000"), false));
        assert!(allowed(&at("[::1]:5000"), false));
        assert!(allowed(&at("[::ffff:127.0.0.1]:5000"), false));
        assert!(!allowed(&at("10.1.2.3:5000"), false));
        assert!(!allowed(&at("[::ffff:10.1.2.3]:5000"), false));
        assert!(allowed(&at("10.1.2.3:5000"), true));
    }

    #[test]
    fn health_names_what_fails_and_readiness_waits_for_a_first_frame() {
        let cam = |ok, ready| Component { ok, state: "running".into(), problem: None, ready };
        let mut h = Health::default();
        h.cameras.insert("door".into(), cam(true, true));
        h.cameras.insert("till".into(), cam(true, false));
        h.components.insert("store".into(), cam(true, true));
        assert!(h.healthy() && !h.ready());
        assert_eq!(h.failing(true), vec!["camera 'till'"]);
        h.components.insert("store".into(), cam(false, true));
        assert_eq!(h.failing(false), vec!["store"]);
    }

    #[test]
    fn the_text_format_carries_the_camera_label() {
        let m = Metrics::new();
        m.frames_processed.with_label_values(&["door"]).inc_by(3);
        Metrics::raise(&m.frames_dropped.with_label_values(&["door"]), 5);
        Metrics::raise(&m.frames_dropped.with_label_values(&["door"]), 4);
        m.inference.with_label_values(&["face"]).observe(0.012);
        let text = m.render();
        assert!(text.contains("iobox_camera_frames_processed_total{camera=\"door\"} 3"), "{text}");
        assert!(text.contains("iobox_camera_frames_dropped_total{camera=\"door\"} 5"), "{text}");
        assert!(text.contains("iobox_inference_seconds_bucket{model=\"face\",le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("# TYPE iobox_store_batch_seconds histogram"), "{text}");
    }
}
