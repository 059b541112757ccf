//! The configuration file: `RawConfig` is exactly what TOML says (unknown keys are errors), `Config` is the
//! validated form the rest of iobox uses. Relative paths are taken relative to the config file's folder
//! (for the embedded default: relative to the iobox checkout or `$IOBOX_HOME`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::{AlertKind, AlertsConfig, MqttTarget, Rule};
use crate::anonymize::{BlurConfig, BlurMethod};
use crate::behaviour::BehaviourConfig;
use crate::capture::{SourceKind, SourceSpec};
use crate::fuse::{Adjacency, FusionConfig};
use crate::infer::ModelKind;
use crate::store::WriterOptions;
use crate::track::TrackerConfig;
use crate::worker::PerceptionConfig;

/// The configuration `iobox run` uses when none is given: the bundled sample clip, the bundled models and
/// a SQLite file in the working directory.
pub const DEFAULT_CONFIG: &str = include_str!("../iobox.default.toml");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub models: RawModels,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub face: RawFace,
    #[serde(default)]
    pub blur: RawBlur,
    #[serde(default)]
    pub people: RawPeople,
    #[serde(default)]
    pub pose: RawPose,
    #[serde(default)]
    pub emotion: RawEmotion,
    /// Tracker tuning; every field optional (see `track::TrackerConfig`).
    #[serde(default)]
    pub tracking: TrackerConfig,
    /// Behaviour tuning and per-kind switches; every field optional (see `behaviour::BehaviourConfig`).
    #[serde(default)]
    pub behaviour: BehaviourConfig,
    #[serde(default)]
    pub privacy: RawPrivacy,
    #[serde(default)]
    pub output: RawOutput,
    #[serde(default)]
    pub camera: Vec<RawCamera>,
    /// Where alerts go (see `alerts`).
    #[serde(default)]
    pub alerts: RawAlerts,
    /// Alert rules.
    #[serde(default)]
    pub alert: Vec<RawAlert>,
    /// The staff dashboard (`iobox serve`, `iobox run --serve`).
    #[serde(default)]
    pub dashboard: RawDashboard,
    /// Joining the cameras' tracks into store visits (see `fuse`).
    #[serde(default)]
    pub fusion: RawFusion,
    /// The chain's head office: where this store's closed figures are delivered (see `chain`).
    pub chain: Option<RawChain>,
    /// Prometheus metrics and health of `iobox run` (see `metrics`).
    #[serde(default)]
    pub metrics: RawMetrics,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Address of /metrics, /healthz and /readyz (default 127.0.0.1:9464).
    pub listen: Option<String>,
    /// Let clients other than this machine read them (default false).
    pub allow_remote: Option<bool>,
    /// Serve them at all (default true).
    pub enabled: Option<bool>,
}

/// Where `iobox run` says how it is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `None`: switched off.
    pub listen: Option<std::net::SocketAddr>,
    pub allow_remote: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChain {
    /// This store's id at head office (the server binds the box's credential to it).
    pub store: String,
    /// A PostgreSQL connection string (`host=... user=... dbname=...` or `postgresql://...`); empty: the
    /// outbox is kept but nothing is sent.
    pub url: Option<String>,
    /// A file holding the password (kept out of the config).
    pub password_file: Option<PathBuf>,
    /// PEM file of the certificate authorities that sign the server's certificate (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// Minutes a closed hour or day waits for late events before it is written (default 15).
    pub grace_min: Option<f64>,
    /// Seconds between delivery attempts (default 60).
    pub every_s: Option<f64>,
    /// Rows per transaction (default 500).
    pub batch: Option<usize>,
}

/// Where this store's figures go.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub store: String,
    pub url: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub grace: Duration,
    pub every: Duration,
    pub batch: usize,
}

/// Whether `s` can name a store at head office: 1 to 63 of a-z, 0-9, '-', '_', starting with a letter or
/// digit.
pub fn is_store_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

fn validate_chain(
    raw: RawChain,
    invalid: &dyn Fn(&str, String) -> Error,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ChainConfig> {
    if !is_store_id(&raw.store) {
        return Err(invalid(
            "chain.store",
            format!("{:?} must be 1 to 63 lowercase letters, digits, '-' or '_'", raw.store),
        ));
    }
    let grace = raw.grace_min.unwrap_or(15.0);
    if !(grace.is_finite() && (0.0..=1440.0).contains(&grace)) {
        return Err(invalid("chain.grace_min", format!("{grace} is not between 0 and 1440 minutes")));
    }
    let every = raw.every_s.unwrap_or(60.0);
    if !(every.is_finite() && (1.0..=86_400.0).contains(&every)) {
        return Err(invalid("chain.every_s", format!("{every} is not between 1 and 86400 seconds")));
    }
    let batch = raw.batch.unwrap_or(500);
    if !(1..=10_000).contains(&batch) {
        return Err(invalid("chain.batch", format!("{batch} is not between 1 and 10000 rows")));
    }
    // Parsed by `chain` (the only module that knows PostgreSQL) when the run starts.
    let url = raw.url.filter(|u| !u.trim().is_empty());
    Ok(ChainConfig {
        store: raw.store,
        url,
        password_file: raw.password_file.as_deref().map(resolve),
        ca_file: raw.ca_file.as_deref().map(resolve),
        grace: Duration::from_secs_f64(grace * 60.0),
        every: Duration::from_secs_f64(every),
        batch,
    })
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFusion {
    /// Metres within which two cameras' tracks are one person.
    pub tolerance_m: Option<f64>,
    /// Cameras whose views do not overlap but lead to one another.
    #[serde(default)]
    pub adjacency: Vec<RawAdjacency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdjacency {
    pub from: String,
    pub to: String,
    /// Seconds a person may take from leaving `from`'s view to appearing in `to`'s.
    pub within_s: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDashboard {
    /// Address and port to listen on (default 127.0.0.1:8080).
    pub listen: Option<String>,
    /// Hours a login lasts (default 12).
    pub session_hours: Option<f64>,
    /// Mark the session cookie `Secure` (only behind a TLS-terminating proxy; default false).
    pub secure_cookie: Option<bool>,
    /// Seconds between live preview stills per camera with `iobox run --serve` (default 2).
    pub preview_every_s: Option<f64>,
    /// Names besides IP addresses and `localhost` that requests may carry in `Host` (a reverse proxy's or
    /// the box's DNS name; default none).
    pub hosts: Option<Vec<String>>,
    /// Most connections open at once; beyond, new ones are closed at once (default 1024).
    pub max_connections: Option<u64>,
    /// Seconds a client has to send a request's headers, also between requests (default 10).
    pub header_timeout_s: Option<f64>,
    /// Seconds a request may take before it is answered 408 (default 30).
    pub request_timeout_s: Option<f64>,
}

/// The dashboard's validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    pub listen: std::net::SocketAddr,
    pub session: Duration,
    pub secure_cookie: bool,
    pub preview_every: Duration,
    pub hosts: Vec<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            session: Duration::from_secs(12 * 3600),
            secure_cookie: false,
            preview_every: Duration::from_secs(2),
            hosts: Vec::new(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// `mqtt://[user[:password]@]host[:port]`.
    pub mqtt: Option<String>,
    /// Topic prefix (default "iobox/alerts"); each rule publishes to `{topic}/{rule}`.
    pub topic: Option<String>,
    /// `http://` URL each alert's JSON is POSTed to.
    pub webhook: Option<String>,
    /// A label for this site in every payload.
    pub site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub name: String,
    pub kind: AlertKind,
    pub camera: Option<String>,
    /// Every kind but `sync_backlog` watches a zone.
    #[serde(default)]
    pub zone: String,
    /// People (queue_length, occupancy) or seconds (dwell).
    pub above: f64,
    /// queue_length / occupancy: seconds the count must stay above (default 0).
    pub for_s: Option<f64>,
    /// Seconds before the rule fires again (default 300).
    pub cooldown_s: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<PathBuf>,
    /// Days events are kept (default 30); 0 keeps them for ever.
    pub retention_days: Option<u32>,
    /// Largest size of the database file, in MiB (default: no limit but the disk).
    pub max_size_mb: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    /// Reports suppress any bucket with fewer distinct tracks than this (default 5).
    pub min_tracks: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawModels {
    pub dir: Option<PathBuf>,
    pub face: Option<PathBuf>,
    pub person: Option<PathBuf>,
    pub pose: Option<PathBuf>,
    pub emotion: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    pub onnxruntime: Option<PathBuf>,
    pub workers: Option<usize>,
    pub intra_threads: Option<usize>,
    pub shed_load: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFace {
    pub input_size: Option<u32>,
    pub min_score: Option<f32>,
    /// A second face pass around people whose faces are too small for the first (default true).
    pub small_faces: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBlur {
    pub method: Option<BlurMethod>,
    pub margin: Option<f32>,
    pub hold_frames: Option<u32>,
    pub strength: Option<f32>,
    /// A detected person's head region is blurred when no face box covers it and it is at least this
    /// many pixels tall (default 8, at most 32).
    pub head_min_px: Option<f32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPeople {
    /// Run the person detector (and the tracker) on every n-th frame (default 1).
    pub every_n_frames: Option<u32>,
    /// Largest square of the frame one detector run covers, in frame pixels (default 720); the frame is
    /// cut into overlapping squares of this side or its shorter side. 0: the whole frame in one run.
    pub tile_size: Option<u32>,
    /// Frames whose longer side is at most this many pixels run whole, without tiles (default 832).
    pub tile_above: Option<u32>,
    pub min_score: Option<f32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPose {
    pub enabled: Option<bool>,
    pub input_size: Option<u32>,
    pub min_score: Option<f32>,
    pub every_n_frames: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEmotion {
    pub enabled: Option<bool>,
    pub min_face_px: Option<f32>,
    pub min_face_score: Option<f32>,
    pub min_confidence: Option<f32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub record: Option<String>,
    pub snapshot: Option<String>,
    pub snapshot_every_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCamera {
    pub name: String,
    pub kind: SourceKind,
    #[serde(default)]
    pub uri: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub pipeline: Option<PathBuf>,
    #[serde(default)]
    pub realtime: bool,
    pub queue: Option<usize>,
    pub connect_timeout_s: Option<f64>,
    pub stall_timeout_s: Option<f64>,
    pub reconnect_max_s: Option<f64>,
    pub calibration: Option<PathBuf>,
}

/// Frames buffered per camera when `queue` is not set: 0.6 s at 10 fps, so that a worker rides out one
/// slow (tiled) detector run without dropping frames; a live camera drops the oldest frame when it is full.
pub const DEFAULT_QUEUE: usize = 6;

/// A camera as the appliance runs it.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub source: SourceSpec,
    pub queue_depth: usize,
    /// The camera's calibration file (floor plan, zones, lines), if any.
    pub calibration: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from (a file, or "embedded default").
    pub origin: String,
    pub store_path: PathBuf,
    pub models_dir: Option<PathBuf>,
    pub model_overrides: Vec<(ModelKind, PathBuf)>,
    pub onnxruntime: Option<PathBuf>,
    pub workers: usize,
    pub intra_threads: usize,
    pub blur: BlurConfig,
    /// Face detector, pose, emotion and tracker settings.
    pub perception: PerceptionConfig,
    /// Event rules and switches.
    pub behaviour: BehaviourConfig,
    /// How the database is kept: retention, size limit, heatmap cell size.
    pub store: WriterOptions,
    /// k: reports suppress any bucket with fewer distinct tracks.
    pub min_tracks: u32,
    /// Recording path template with `{camera}`.
    pub record: Option<String>,
    pub snapshot: Option<String>,
    pub snapshot_every: Duration,
    pub cameras: Vec<CameraConfig>,
    /// Alert rules and where they are published.
    pub alerts: AlertsConfig,
    /// The staff dashboard.
    pub dashboard: DashboardConfig,
    /// How the cameras' tracks are joined into store visits.
    pub fusion: FusionConfig,
    /// Head office, if this store belongs to a chain.
    pub chain: Option<ChainConfig>,
    /// The metrics and health listener.
    pub metrics: MetricsConfig,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Read { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, path, &base)
    }

    /// The embedded default, with paths resolved against the iobox checkout (or `$IOBOX_HOME`).
    pub fn embedded_default() -> Result<Config> {
        let base = crate::paths::find_upwards(Path::new("samples"))
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let mut c = Self::parse(DEFAULT_CONFIG, Path::new("<embedded default>"), &base)?;
        // The database goes in the working directory, not the checkout.
        c.store_path = PathBuf::from("iobox.sqlite");
        Ok(c)
    }

    /// Parses TOML text; `path` names it in errors and `base` anchors relative paths.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| Error::Parse { path: path.to_path_buf(), message: describe_toml_error(text, &e) })?;
        validate(raw, path, base)
    }
}

/// A TOML error as `line N: message (at `the line`)`, for every TOML file iobox reads.
pub(crate) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {msg} (at `{snippet}`)")
        }
        None => msg,
    }
}

fn validate(raw: RawConfig, path: &Path, base: &Path) -> Result<Config> {
    let invalid =
        |field: &str, message: String| Error::Invalid { path: path.to_path_buf(), field: field.to_string(), message };
    let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };

    if raw.camera.is_empty() {
        return Err(invalid("camera", "at least one [[camera]] is needed".into()));
    }
    let mut names = HashSet::new();
    let mut cameras = Vec::with_capacity(raw.camera.len());
    for (i, c) in raw.camera.into_iter().enumerate() {
        let field = |f: &str| format!("camera[{i}].{f}");
        if !is_plain_name(&c.name) {
            return Err(invalid(
                &field("name"),
                format!("{:?} must be non-empty letters, digits, '-', '_' or '.'", c.name),
            ));
        }
        if !names.insert(c.name.clone()) {
            return Err(invalid(&field("name"), format!("camera name '{}' is used twice", c.name)));
        }
        if c.uri.trim().is_empty() && c.kind != SourceKind::Test {
            return Err(invalid(&field("uri"), format!("camera '{}' of kind {:?} needs a uri", c.name, c.kind)));
        }
        if c.width.is_some() != c.height.is_some() {
            return Err(invalid(&field("width"), "set both width and height, or neither".into()));
        }
        for (f, v, max) in [("width", c.width, MAX_SIDE_PX), ("height", c.height, MAX_SIDE_PX), ("fps", c.fps, MAX_FPS)]
        {
            if let Some(v) = v
                && !(1..=max).contains(&v)
            {
                return Err(invalid(&field(f), format!("{v} is not between 1 and {max}")));
            }
        }
        let seconds = |f: &str, v: Option<f64>, default: f64| -> Result<Duration> {
            let v = v.unwrap_or(default);
            if !(v.is_finite() && v > 0.0 && v <= MAX_CAMERA_WAIT_S) {
                return Err(invalid(&field(f), format!("{v} is not between 0 and {MAX_CAMERA_WAIT_S} seconds")));
            }
            Ok(Duration::from_secs_f64(v))
        };
        let uri = match c.kind {
            SourceKind::File => resolve(Path::new(&c.uri)).to_string_lossy().into_owned(),
            _ => c.uri,
        };
        let mut source = SourceSpec::new(c.name, c.kind, uri);
        source.width = c.width;
        source.height = c.height;
        source.fps = c.fps;
        source.template = c.pipeline.as_deref().map(resolve);
        source.realtime = c.realtime;
        source.connect_timeout = seconds("connect_timeout_s", c.connect_timeout_s, 20.0)?;
        source.stall_timeout = seconds("stall_timeout_s", c.stall_timeout_s, 10.0)?;
        source.reconnect_max = seconds("reconnect_max_s", c.reconnect_max_s, 30.0)?;
        let queue_depth = c.queue.unwrap_or(DEFAULT_QUEUE);
        if !(1..=64).contains(&queue_depth) {
            return Err(invalid(&field("queue"), format!("{queue_depth} is not between 1 and 64")));
        }
        cameras.push(CameraConfig { source, queue_depth, calibration: c.calibration.as_deref().map(resolve) });
    }

    raw.tracking.check().map_err(|(field, message)| invalid(&format!("tracking.{field}"), message))?;
    let mut perception = PerceptionConfig { tracker: raw.tracking, ..PerceptionConfig::default() };
    if let Some(shed) = raw.runtime.shed_load {
        perception.shed_load = shed;
    }
    let size = |field: &str, v: u32| model_input_size(v).map_err(|m| invalid(field, m));
    let score = |field: &str, v: f32| min_score(v).map_err(|m| invalid(field, m));
    if let Some(s) = raw.face.input_size {
        perception.face.input_long_side = size("face.input_size", s)?;
    }
    if let Some(s) = raw.face.min_score {
        perception.face.min_score = score("face.min_score", s)?;
    }
    if let Some(b) = raw.face.small_faces {
        perception.small_faces = b;
    }
    if let Some(s) = raw.pose.input_size {
        perception.pose.input_long_side = size("pose.input_size", s)?;
    }
    if let Some(s) = raw.pose.min_score {
        perception.pose.min_score = score("pose.min_score", s)?;
    }
    let every = |field: &str, n: u32| {
        if (1..=30).contains(&n) { Ok(n) } else { Err(invalid(field, format!("{n} is not between 1 and 30"))) }
    };
    if let Some(n) = raw.people.every_n_frames {
        perception.people_every = every("people.every_n_frames", n)?;
    }
    if let Some(t) = raw.people.tile_size {
        if t != 0 && !(128..=4096).contains(&t) {
            return Err(invalid(
                "people.tile_size",
                format!("{t} is not 0 (whole frame) or between 128 and 4096 pixels"),
            ));
        }
        perception.person.tile_px = t;
    }
    if let Some(t) = raw.people.tile_above {
        if t > 8192 {
            return Err(invalid("people.tile_above", format!("{t} is more than 8192 pixels")));
        }
        perception.person.tile_above = t;
    }
    if let Some(s) = raw.people.min_score {
        perception.person.min_score = score("people.min_score", s)?;
    }
    if let Some(n) = raw.pose.every_n_frames {
        perception.pose_every = every("pose.every_n_frames", n)?;
    }
    // Pose only adds keypoints (wrists, ankles, heads): the person detector's head regions stay the blur's
    // backup whether pose runs or not.
    if raw.pose.enabled == Some(false) {
        perception.pose_every = 0;
    }
    if let Some(problem) = perception.cadence_problem() {
        return Err(invalid("pose.every_n_frames", problem));
    }
    if let Some(px) = raw.blur.head_min_px {
        if !(0.0..=32.0).contains(&px) {
            return Err(invalid(
                "blur.head_min_px",
                format!("{px} is not between 0 and 32 pixels (a larger head can be recognised and is always blurred)"),
            ));
        }
        perception.head_min_px = px;
    }
    if let Some(e) = raw.emotion.enabled {
        perception.emotion_enabled = e;
    }
    if let Some(px) = raw.emotion.min_face_px {
        if !(16.0..=512.0).contains(&px) {
            return Err(invalid("emotion.min_face_px", format!("{px} is not between 16 and 512 pixels")));
        }
        perception.emotion.min_face_px = px;
    }
    if let Some(c) = raw.emotion.min_face_score {
        if !(0.0..=1.0).contains(&c) {
            return Err(invalid("emotion.min_face_score", format!("{c} is not between 0 and 1")));
        }
        perception.emotion.min_face_score = c;
    }
    if let Some(c) = raw.emotion.min_confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(invalid("emotion.min_confidence", format!("{c} is not between 0 and 1")));
        }
        perception.emotion.min_confidence = c;
    }

    let mut blur = BlurConfig::default();
    if let Some(m) = raw.blur.method {
        blur.method = m;
    }
    if let Some(m) = raw.blur.margin {
        if !(0.0..=1.0).contains(&m) {
            return Err(invalid("blur.margin", format!("{m} is not between 0 and 1")));
        }
        blur.margin = m;
    }
    if let Some(h) = raw.blur.hold_frames {
        if h > 300 {
            return Err(invalid("blur.hold_frames", format!("{h} is more than 300 frames")));
        }
        blur.hold_frames = h;
    }
    if let Some(s) = raw.blur.strength {
        if !(0.02..=1.0).contains(&s) {
            return Err(invalid("blur.strength", format!("{s} is not between 0.02 and 1")));
        }
        blur.strength = s;
    }

    if let Some(r) = &raw.output.record {
        record_path(r, cameras.len()).map_err(|m| invalid("output.record", m))?;
    }
    if let Some(t) = &raw.output.snapshot
        && cameras.len() > 1
        && !t.contains("{camera}")
    {
        return Err(invalid("output.snapshot", "with several cameras the path must contain {camera}".into()));
    }
    if let Some(s) = &raw.output.snapshot
        && !crate::capture::still::is_image_path(Path::new(s))
    {
        return Err(invalid("output.snapshot", format!("{s:?} must end in .jpg or .png")));
    }
    let snapshot_every = raw.output.snapshot_every_s.unwrap_or(10.0);
    if !(snapshot_every.is_finite() && snapshot_every > 0.0 && snapshot_every <= 86_400.0) {
        return Err(invalid("output.snapshot_every_s", format!("{snapshot_every} is not between 0 and 86400 seconds")));
    }

    raw.behaviour.validate().map_err(|e| invalid("behaviour", e.to_string()))?;
    let alerts = validate_alerts(raw.alerts, raw.alert, &names, &raw.behaviour, raw.chain.is_some(), &invalid)?;
    let dashboard = validate_dashboard(raw.dashboard, &invalid)?;
    let chain = raw.chain.map(|c| validate_chain(c, &invalid, &resolve)).transpose()?;
    let metrics = {
        let listen = raw.metrics.listen.as_deref().unwrap_or("127.0.0.1:9464");
        let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
            invalid("metrics.listen", format!("{listen:?} is not an address and port (127.0.0.1:9464)"))
        })?;
        MetricsConfig {
            listen: raw.metrics.enabled.unwrap_or(true).then_some(addr),
            allow_remote: raw.metrics.allow_remote.unwrap_or(false),
        }
    };
    let retention_days = raw.store.retention_days.unwrap_or(30);
    if retention_days > 3650 {
        return Err(invalid("store.retention_days", format!("{retention_days} is more than ten years")));
    }
    if let Some(mb) = raw.store.max_size_mb
        && !(1..=MAX_STORE_MB).contains(&mb)
    {
        return Err(invalid("store.max_size_mb", format!("{mb} is not between 1 and {MAX_STORE_MB}")));
    }
    let store = WriterOptions {
        retention: (retention_days > 0).then(|| Duration::from_secs(retention_days as u64 * 86_400)),
        max_bytes: raw.store.max_size_mb.map(|mb| mb * 1024 * 1024),
        heat_cell_m: raw.behaviour.cell_m,
    };
    let min_tracks = raw.privacy.min_tracks.unwrap_or(5);
    if !(1..=1000).contains(&min_tracks) {
        return Err(invalid("privacy.min_tracks", format!("{min_tracks} is not between 1 and 1000")));
    }
    // By default one worker per camera up to one per core, the cores shared out between them.
    let cores = crate::infer::default_threads();
    let workers = raw.runtime.workers.unwrap_or_else(|| cameras.len().clamp(1, cores));
    if !(1..=64).contains(&workers) {
        return Err(invalid("runtime.workers", format!("{workers} is not between 1 and 64")));
    }
    let intra_threads = raw.runtime.intra_threads.unwrap_or_else(|| (cores / workers).max(1));
    if !(1..=256).contains(&intra_threads) {
        return Err(invalid("runtime.intra_threads", format!("{intra_threads} is not between 1 and 256")));
    }
    let mut model_overrides = Vec::new();
    for (kind, p) in [
        (ModelKind::Face, raw.models.face),
        (ModelKind::Person, raw.models.person),
        (ModelKind::Pose, raw.models.pose),
        (ModelKind::Emotion, raw.models.emotion),
    ] {
        if let Some(p) = p {
            model_overrides.push((kind, resolve(&p)));
        }
    }
    let mut fusion = FusionConfig::default();
    if let Some(t) = raw.fusion.tolerance_m {
        if !(0.1..=5.0).contains(&t) {
            return Err(invalid("fusion.tolerance_m", format!("{t} is not between 0.1 and 5 metres")));
        }
        fusion.tolerance_m = t;
    }
    for (i, a) in raw.fusion.adjacency.iter().enumerate() {
        let field = |f: &str| format!("fusion.adjacency[{i}].{f}");
        let camera = |f: &str, name: &str| {
            cameras
                .iter()
                .position(|c: &CameraConfig| c.source.name == name)
                .ok_or_else(|| invalid(&field(f), format!("'{name}' is not the name of a [[camera]]")))
        };
        let (from, to) = (camera("from", &a.from)?, camera("to", &a.to)?);
        if from == to {
            return Err(invalid(&field("to"), "a camera cannot lead to itself".into()));
        }
        if !(0.1..=600.0).contains(&a.within_s) {
            return Err(invalid(&field("within_s"), format!("{} is not between 0.1 and 600 seconds", a.within_s)));
        }
        fusion.adjacency.push(Adjacency { from, to, within_ms: (a.within_s * 1000.0).round() as i64 });
    }
    let resolve_template = |t: Option<String>| {
        t.map(|t| if Path::new(&t).is_absolute() { t } else { base.join(t).to_string_lossy().into_owned() })
    };

    Ok(Config {
        origin: path.display().to_string(),
        store_path: resolve(&raw.store.path.unwrap_or_else(|| PathBuf::from("iobox.sqlite"))),
        models_dir: raw.models.dir.as_deref().map(resolve),
        model_overrides,
        onnxruntime: raw.runtime.onnxruntime.as_deref().map(resolve),
        workers,
        intra_threads,
        blur,
        perception,
        behaviour: raw.behaviour,
        store,
        min_tracks,
        record: resolve_template(raw.output.record),
        snapshot: resolve_template(raw.output.snapshot),
        snapshot_every: Duration::from_secs_f64(snapshot_every),
        cameras,
        alerts,
        dashboard,
        fusion,
        chain,
        metrics,
    })
}

/// The largest frame side a camera may be set to (16K video).
const MAX_SIDE_PX: u32 = 16_384;
/// The highest frame rate a camera may be set to.
const MAX_FPS: u32 = 240;
/// The longest a camera's connect, stall and reconnect waits may be: a day.
const MAX_CAMERA_WAIT_S: f64 = 86_400.0;
/// The largest database size limit: 1 TiB.
const MAX_STORE_MB: u64 = 1 << 20;

fn validate_dashboard(raw: RawDashboard, invalid: &dyn Fn(&str, String) -> Error) -> Result<DashboardConfig> {
    let mut d = DashboardConfig::default();
    if let Some(l) = raw.listen {
        d.listen = l.parse().map_err(|_| {
            invalid("dashboard.listen", format!("{l:?} is not an address and port such as \"127.0.0.1:8080\""))
        })?;
    }
    if let Some(h) = raw.session_hours {
        if !(h > 0.0 && h <= 24.0 * 30.0) {
            return Err(invalid("dashboard.session_hours", format!("{h} is not between 0 and 720 hours")));
        }
        d.session = Duration::from_secs_f64(h * 3600.0);
    }
    d.secure_cookie = raw.secure_cookie.unwrap_or(false);
    if let Some(s) = raw.preview_every_s {
        if !(0.2..=3600.0).contains(&s) {
            return Err(invalid("dashboard.preview_every_s", format!("{s} is not between 0.2 and 3600 seconds")));
        }
        d.preview_every = Duration::from_secs_f64(s);
    }
    if let Some(hosts) = raw.hosts {
        for (i, h) in hosts.iter().enumerate() {
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && h.bytes().any(|b| b.is_ascii_alphabetic());
            if !ok {
                return Err(invalid(
                    &format!("dashboard.hosts[{i}]"),
                    format!("{h:?} is not a DNS name such as \"iobox.store-12.example\" (no port, no scheme)"),
                ));
            }
        }
        d.hosts = hosts;
    }
    if let Some(n) = raw.max_connections {
        if !(16..=65_536).contains(&n) {
            return Err(invalid("dashboard.max_connections", format!("{n} is not between 16 and 65536")));
        }
        d.max_connections = n as usize;
    }
    if let Some(s) = raw.header_timeout_s {
        if !(0.5..=300.0).contains(&s) {
            return Err(invalid("dashboard.header_timeout_s", format!("{s} is not between 0.5 and 300 seconds")));
        }
        d.header_timeout = Duration::from_secs_f64(s);
    }
    if let Some(s) = raw.request_timeout_s {
        if !(1.0..=3600.0).contains(&s) {
            return Err(invalid("dashboard.request_timeout_s", format!("{s} is not between 1 and 3600 seconds")));
        }
        d.request_timeout = Duration::from_secs_f64(s);
    }
    Ok(d)
}

/// A model's input size (the longer side, in pixels), as the config and the command line accept it.
pub fn model_input_size(v: u32) -> std::result::Result<u32, String> {
    if !(64..=4096).contains(&v) || !v.is_multiple_of(32) {
        return Err(format!("{v} is not a multiple of 32 between 64 and 4096 pixels"));
    }
    Ok(v)
}

/// A detector's minimum score, as the config and the command line accept it.
pub fn min_score(v: f32) -> std::result::Result<f32, String> {
    if !(0.05..=0.99).contains(&v) {
        return Err(format!("{v} is not between 0.05 and 0.99"));
    }
    Ok(v)
}

/// A recording path (`[output] record`, `--record`): a video file, named per camera when there are several.
pub fn record_path(r: &str, cameras: usize) -> std::result::Result<(), String> {
    if !crate::capture::encode::is_video_path(Path::new(r)) {
        return Err(format!("{r:?} must end in .mp4 or .mkv"));
    }
    if cameras > 1 && !r.contains("{camera}") {
        return Err("with several cameras the path must contain {camera}".into());
    }
    Ok(())
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
}

fn validate_alerts(
    raw: RawAlerts,
    rules: Vec<RawAlert>,
    cameras: &HashSet<String>,
    behaviour: &BehaviourConfig,
    chain: bool,
    invalid: &dyn Fn(&str, String) -> Error,
) -> Result<AlertsConfig> {
    let mqtt = raw.mqtt.as_deref().map(MqttTarget::parse).transpose().map_err(|m| invalid("alerts.mqtt", m))?;
    let topic = raw.topic.unwrap_or_else(|| crate::alerts::DEFAULT_TOPIC.to_string());
    if topic.is_empty() || topic.contains(['+', '#', '\0']) || topic.starts_with('/') || topic.ends_with('/') {
        return Err(invalid("alerts.topic", format!("{topic:?} must be a topic without wildcards or end slashes")));
    }
    if let Some(w) = &raw.webhook {
        let rest = w.strip_prefix("http://").ok_or_else(|| {
            invalid("alerts.webhook", format!("{w:?} must be an http:// URL (https is not built in)"))
        })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("alerts.webhook", format!("{w:?} names no host")));
        }
    }
    if let Some(site) = &raw.site
        && (site.trim().is_empty() || site.len() > 200)
    {
        return Err(invalid("alerts.site", "must be 1 to 200 characters".into()));
    }
    let mut out = Vec::with_capacity(rules.len());
    let mut names = HashSet::new();
    for (i, r) in rules.into_iter().enumerate() {
        let field = |f: &str| format!("alert[{i}].{f}");
        if !is_plain_name(&r.name) {
            return Err(invalid(
                &field("name"),
                format!("{:?} must be non-empty letters, digits, '-', '_' or '.'", r.name),
            ));
        }
        if !names.insert(r.name.clone()) {
            return Err(invalid(&field("name"), format!("alert name '{}' is used twice", r.name)));
        }
        if let Some(c) = &r.camera
            && !cameras.contains(c)
        {
            return Err(invalid(&field("camera"), format!("there is no [[camera]] named '{c}'")));
        }
        if r.kind == AlertKind::SyncBacklog {
            if !chain {
                return Err(invalid(
                    &field("kind"),
                    "sync_backlog rules watch head office's backlog: set [chain]".into(),
                ));
            }
            if !r.zone.is_empty() || r.camera.is_some() || r.for_s.is_some() {
                return Err(invalid(
                    &field("zone"),
                    "a sync_backlog rule has no zone, camera or for_s: `above` is the backlog's age in minutes".into(),
                ));
            }
            if !(r.above.is_finite() && (0.0..=10_080.0).contains(&r.above)) {
                return Err(invalid(&field("above"), format!("{} is not a number of minutes (0 to 10080)", r.above)));
            }
            let cooldown = r.cooldown_s.unwrap_or(3600.0);
            if !(0.0..=86_400.0).contains(&cooldown) {
                return Err(invalid(&field("cooldown_s"), format!("{cooldown} is not between 0 and 86400 seconds")));
            }
            out.push(Rule {
                for_ms: 0,
                cooldown_ms: (cooldown * 1000.0).round() as i64,
                name: r.name,
                kind: r.kind,
                camera: None,
                zone: String::new(),
                above: r.above,
            });
            continue;
        }
        if r.zone.is_empty() {
            return Err(invalid(&field("zone"), "must name a zone of the camera's calibration".into()));
        }
        let dwell = r.kind == AlertKind::Dwell;
        let (above_ok, unit) = if dwell {
            (r.above > 0.0 && r.above <= 86_400.0, "a number of seconds (0 to 86400)")
        } else {
            ((0.0..=10_000.0).contains(&r.above) && r.above.fract() == 0.0, "a whole number of people (0 to 10000)")
        };
        if !above_ok {
            return Err(invalid(&field("above"), format!("{} is not {unit}", r.above)));
        }
        if dwell && r.for_s.is_some() {
            return Err(invalid(
                &field("for_s"),
                "a dwell rule's time is `above`; for_s is for queue_length and occupancy".into(),
            ));
        }
        let seconds = |f: &str, v: Option<f64>, default: f64| -> Result<i64> {
            let v = v.unwrap_or(default);
            if !(0.0..=86_400.0).contains(&v) {
                return Err(invalid(&field(f), format!("{v} is not between 0 and 86400 seconds")));
            }
            Ok((v * 1000.0).round() as i64)
        };
        let (switch, needs) = match r.kind {
            AlertKind::QueueLength => (behaviour.events.queue, "behaviour.events.queue"),
            AlertKind::Occupancy => (behaviour.events.occupancy, "behaviour.events.occupancy"),
            AlertKind::Dwell => (behaviour.events.zones, "behaviour.events.zones"),
            AlertKind::SyncBacklog => (true, ""),
        };
        if !switch {
            return Err(invalid(&field("kind"), format!("{} rules need {needs}, which is off", r.kind)));
        }
        out.push(Rule {
            for_ms: seconds("for_s", r.for_s, 0.0)?,
            cooldown_ms: seconds("cooldown_s", r.cooldown_s, 300.0)?,
            name: r.name,
            kind: r.kind,
            camera: r.camera,
            zone: r.zone,
            above: r.above,
        });
    }
    Ok(AlertsConfig { mqtt, topic, webhook: raw.webhook, site: raw.site, rules: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("test.toml"), Path::new("/base"))
    }

    #[test]
    fn pose_emotion_and_tracking_settings_are_read_and_checked() {
        let c = parse(
            "[pose]\ninput_size = 384\nevery_n_frames = 2\n[emotion]\nenabled = false\n[tracking]\nconfirm_hits = 5\n\
             [[camera]]\nname = \"a\"\nkind = \"test\"\ncalibration = \"cal/a.toml\"\n",
        )
        .unwrap();
        assert_eq!(c.perception.pose.input_long_side, 384);
        assert_eq!(c.perception.pose_every, 2);
        assert!(!c.perception.emotion_enabled);
        assert_eq!(c.perception.tracker.confirm_hits, 5);
        assert_eq!(c.cameras[0].calibration, Some(PathBuf::from("/base/cal/a.toml")));
        let err =
            parse("[pose]\ninput_size = 300\n[[camera]]\nname = \"a\"\nkind = \"test\"\n").unwrap_err().to_string();
        assert!(err.contains("pose.input_size"), "{err}");
        let err =
            parse("[tracking]\nconfirm = 5\n[[camera]]\nname = \"a\"\nkind = \"test\"\n").unwrap_err().to_string();
        assert!(err.contains("confirm"), "{err}");
        // Out of range is an error naming the field, never a silent clamp.
        for (setting, field, says) in [
            ("match_iou = 2.0", "tracking.match_iou", "between 0 and 1"),
            ("high_score = 0.3\nlow_score = 0.6", "tracking.low_score", "above high_score"),
            ("confirm_hits = 0", "tracking.confirm_hits", "at least 1"),
            ("position_noise = -1.0", "tracking.position_noise", "positive"),
            ("tentative_buffer = -0.5", "tracking.tentative_buffer", "0 or more"),
        ] {
            let err = parse(&format!("[tracking]\n{setting}\n[[camera]]\nname = \"a\"\nkind = \"test\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains(says), "{setting}: {err}");
        }
        let cam = "[[camera]]\nname = \"a\"\nkind = \"test\"\n";
        let c = parse(&format!("[emotion]\nmin_face_score = 0.95\nmin_confidence = 0.6\n{cam}")).unwrap();
        assert_eq!((c.perception.emotion.min_face_score, c.perception.emotion.min_confidence), (0.95, 0.6));
        for field in ["min_face_score", "min_confidence"] {
            let err = parse(&format!("[emotion]\n{field} = 1.5\n{cam}")).unwrap_err().to_string();
            assert!(err.contains(&format!("emotion.{field}")) && err.contains("between 0 and 1"), "{err}");
        }
    }

    #[test]
    fn fusion_adjacencies_name_cameras_and_have_ranges() {
        let cams = "[[camera]]\nname = \"door\"\nkind = \"test\"\n[[camera]]\nname = \"aisle\"\nkind = \"test\"\n";
        let adj = |from: &str, to: &str, s: f64| {
            format!(
                "[fusion]\ntolerance_m = 1.2\n[[fusion.adjacency]]\nfrom = \"{from}\"\nto = \"{to}\"\nwithin_s = {s}\n{cams}"
            )
        };
        let c = parse(&adj("door", "aisle", 8.0)).unwrap();
        assert_eq!(c.fusion.tolerance_m, 1.2);
        assert_eq!(c.fusion.adjacency, [crate::fuse::Adjacency { from: 0, to: 1, within_ms: 8000 }]);
        for (text, field, says) in [
            (adj("door", "till", 8.0), "fusion.adjacency[0].to", "'till' is not the name of a [[camera]]"),
            (adj("door", "door", 8.0), "fusion.adjacency[0].to", "cannot lead to itself"),
            (adj("door", "aisle", 0.0), "fusion.adjacency[0].within_s", "between 0.1 and 600"),
            (format!("[fusion]\ntolerance_m = 50.0\n{cams}"), "fusion.tolerance_m", "between 0.1 and 5"),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn workers_default_to_one_per_camera_up_to_the_cores_and_load_shedding_can_be_turned_off() {
        let cores = crate::infer::default_threads();
        let cams =
            |n: usize| (0..n).map(|i| format!("[[camera]]\nname = \"c{i}\"\nkind = \"test\"\n")).collect::<String>();
        for n in [1, 4] {
            let c = parse(&cams(n)).unwrap();
            assert_eq!(c.workers, n.min(cores), "{n} cameras");
            assert_eq!(c.intra_threads, (cores / n.min(cores)).max(1), "{n} cameras");
            assert!(c.perception.shed_load);
        }
        let c = parse(&format!("[runtime]\nworkers = 1\nshed_load = false\n{}", cams(4))).unwrap();
        assert_eq!((c.workers, c.intra_threads, c.perception.shed_load), (1, cores, false));
        let err = parse(&format!("[runtime]\nshed_load = 3\n{}", cams(1))).unwrap_err().to_string();
        assert!(err.contains("shed_load"), "{err}");
    }

    #[test]
    fn people_and_pose_cadences_must_leave_no_frame_uncovered() {
        let cam = "[[camera]]\nname = \"a\"\nkind = \"test\"\n";
        let c =
            parse(&format!("[people]\nevery_n_frames = 3\ntile_size = 0\n[pose]\nevery_n_frames = 6\n{cam}")).unwrap();
        assert_eq!((c.perception.people_every, c.perception.pose_every, c.perception.person.tile_px), (3, 6, 0));
        // Pose keypoints are matched to the people of the same frame.
        let err =
            parse(&format!("[people]\nevery_n_frames = 3\n[pose]\nevery_n_frames = 4\n{cam}")).unwrap_err().to_string();
        assert!(err.contains("pose.every_n_frames") && err.contains("people.every_n_frames"), "{err}");
        // Turning pose off keeps the person detector's head backup: people still run.
        let c = parse(&format!("[pose]\nenabled = false\n{cam}")).unwrap();
        assert_eq!(c.perception.pose_every, 0);
        assert!(c.perception.people_every > 0);
        // The backup cannot be switched off through its size threshold.
        for bad in ["head_min_px = 33", "head_min_px = -1", "head_min_px = nan"] {
            let err = parse(&format!("[blur]\n{bad}\n{cam}")).unwrap_err().to_string();
            assert!(err.contains("blur.head_min_px"), "{bad}: {err}");
        }
        for bad in [
            "[people]\nevery_n_frames = 0",
            "[people]\nevery_n_frames = 31",
            "[people]\ntile_size = 100",
            "[pose]\nevery_n_frames = 0",
        ] {
            let err = parse(&format!("{bad}\n{cam}")).unwrap_err().to_string();
            assert!(err.contains("every_n_frames") || err.contains("tile_size"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_held_backup_region_lasts_until_its_model_runs_again() {
        for (every, hold) in [(1, 5), (2, 0), (10, 5), (30, 2)] {
            let h = PerceptionConfig::backup_hold(every, hold);
            assert!(h >= every && h >= hold, "every {every}, hold {hold}: {h}");
        }
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let c = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.cameras.len(), 1);
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let err = parse("[[camera]]\nname = \"a\"\nkind = \"test\"\ncolour = 3\n").unwrap_err().to_string();
        assert!(err.contains("line 4") && err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let err =
            parse("[[camera]]\nname = \"a\"\nkind = \"file\"\nuri = \"x.mp4\"\nfps = 0\n").unwrap_err().to_string();
        assert!(err.contains("camera[0].fps"), "{err}");
        let err = parse("[blur]\nmargin = 3.0\n[[camera]]\nname = \"a\"\nkind = \"test\"\n").unwrap_err().to_string();
        assert!(err.contains("blur.margin"), "{err}");
        let err = parse("[[camera]]\nname = \"a\"\nkind = \"test\"\n[[camera]]\nname = \"a\"\nkind = \"test\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("camera[1].name") && err.contains("twice"), "{err}");
    }

    #[test]
    fn alert_rules_are_read_and_checked() {
        let cam = "[[camera]]\nname = \"a\"\nkind = \"test\"\n";
        let c = parse(&format!(
            "[alerts]\nmqtt = \"mqtt://127.0.0.1:1884\"\nwebhook = \"http://127.0.0.1:8080/hook\"\nsite = \"s\"\n\
             [[alert]]\nname = \"long-queue\"\nkind = \"queue_length\"\ncamera = \"a\"\nzone = \"till\"\n\
             above = 3\nfor_s = 20\n[[alert]]\nname = \"stay\"\nkind = \"dwell\"\nzone = \"table\"\nabove = 8.5\n\
             cooldown_s = 0\n{cam}"
        ))
        .unwrap();
        let a = &c.alerts;
        assert_eq!(
            (a.mqtt.as_ref().unwrap().port, a.topic.as_str(), a.site.as_deref()),
            (1884, "iobox/alerts", Some("s"))
        );
        assert_eq!(a.rules.len(), 2);
        assert_eq!((a.rules[0].for_ms, a.rules[0].cooldown_ms, a.rules[0].above), (20_000, 300_000, 3.0));
        assert_eq!(
            (a.rules[1].kind, a.rules[1].cooldown_ms, a.rules[1].camera.as_deref()),
            (AlertKind::Dwell, 0, None)
        );
        assert!(parse(cam).unwrap().alerts.rules.is_empty());

        let rule = "[[alert]]\nname = \"r\"\nzone = \"z\"\n";
        for (text, field) in [
            (format!("{rule}kind = \"occupancy\"\nabove = 1.5\n"), "alert[0].above"),
            (format!("{rule}kind = \"dwell\"\nabove = 0\n"), "alert[0].above"),
            (format!("{rule}kind = \"dwell\"\nabove = 5\nfor_s = 3\n"), "alert[0].for_s"),
            (format!("{rule}kind = \"occupancy\"\nabove = 1\ncamera = \"b\"\n"), "alert[0].camera"),
            (format!("{rule}kind = \"occupancy\"\nabove = 1\ncooldown_s = -1\n"), "alert[0].cooldown_s"),
            (format!("{rule}kind = \"occupancy\"\nabove = 1\n{rule}kind = \"dwell\"\nabove = 1\n"), "alert[1].name"),
            (
                format!("[behaviour.events]\noccupancy = false\n{rule}kind = \"occupancy\"\nabove = 1\n"),
                "alert[0].kind",
            ),
            ("[alerts]\nmqtt = \"mqtts://x\"\n".to_string(), "alerts.mqtt"),
            ("[alerts]\nwebhook = \"https://x/hook\"\n".to_string(), "alerts.webhook"),
            ("[alerts]\ntopic = \"a/#\"\n".to_string(), "alerts.topic"),
        ] {
            let err = parse(&format!("{text}{cam}")).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        let err = parse(&format!("{rule}kind = \"loud\"\nabove = 1\n{cam}")).unwrap_err().to_string();
        assert!(err.contains("loud") && err.contains("line"), "{err}");
    }

    #[test]
    fn the_chain_section_and_backlog_rules_are_read_and_checked() {
        let cam = "[[camera]]\nname = \"a\"\nkind = \"test\"\n";
        assert!(parse(cam).unwrap().chain.is_none());
        let chain = "[chain]\nstore = \"store-042\"\nurl = \"host=hq user=box dbname=chain\"\n";
        let c = parse(&format!("{chain}{cam}")).unwrap().chain.unwrap();
        assert_eq!(
            (c.store.as_str(), c.grace, c.every, c.batch),
            ("store-042", Duration::from_secs(900), Duration::from_secs(60), 500)
        );
        let backlog = "[[alert]]\nname = \"hq\"\nkind = \"sync_backlog\"\nabove = 120\n";
        let rules = parse(&format!("{chain}{backlog}{cam}")).unwrap().alerts.rules;
        assert_eq!((rules[0].kind, rules[0].above, rules[0].cooldown_ms), (AlertKind::SyncBacklog, 120.0, 3_600_000));
        for (text, field) in [
            ("[chain]\nstore = \"Store 1\"\n".to_string(), "chain.store"),
            ("[chain]\nstore = \"\"\n".to_string(), "chain.store"),
            ("[chain]\nstore = \"s\"\nbatch = 0\n".to_string(), "chain.batch"),
            ("[chain]\nstore = \"s\"\nevery_s = 0\n".to_string(), "chain.every_s"),
            ("[chain]\nstore = \"s\"\ngrace_min = -1\n".to_string(), "chain.grace_min"),
            ("[chain]\nstore = \"s\"\nhost = \"x\"\n".to_string(), "host"),
            (backlog.to_string(), "alert[0].kind"),
            (format!("{chain}{backlog}zone = \"till\"\n"), "alert[0].zone"),
            (format!("{chain}[[alert]]\nname = \"hq\"\nkind = \"sync_backlog\"\nabove = -5\n"), "alert[0].above"),
        ] {
            let err = parse(&format!("{text}{cam}")).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn dashboard_settings_are_read_and_checked() {
        let cam = "[[camera]]\nname = \"a\"\nkind = \"test\"\n";
        let c = parse(cam).unwrap();
        assert_eq!(c.dashboard, DashboardConfig::default());
        assert_eq!(c.dashboard.listen.to_string(), "127.0.0.1:8080");
        let c =
            parse(&format!("[dashboard]\nlisten = \"0.0.0.0:9000\"\nsession_hours = 1\nsecure_cookie = true\n{cam}"))
                .unwrap();
        assert_eq!(c.dashboard.listen.port(), 9000);
        assert_eq!(c.dashboard.session, Duration::from_secs(3600));
        assert!(c.dashboard.secure_cookie);
        for (text, field) in [
            ("[dashboard]\nlisten = \"localhost\"\n", "dashboard.listen"),
            ("[dashboard]\nsession_hours = 0\n", "dashboard.session_hours"),
            ("[dashboard]\npreview_every_s = 0\n", "dashboard.preview_every_s"),
            ("[dashboard]\nhosts = [\"http://x.example\"]\n", "dashboard.hosts[0]"),
            ("[dashboard]\nhosts = [\"ok.example\", \"x.example:80\"]\n", "dashboard.hosts[1]"),
            ("[dashboard]\nmax_connections = 4294967295\n", "dashboard.max_connections"),
            ("[dashboard]\nheader_timeout_s = 1e308\n", "dashboard.header_timeout_s"),
            ("[dashboard]\nrequest_timeout_s = -1\n", "dashboard.request_timeout_s"),
            ("[dashboard]\nport = 1\n", "port"),
        ] {
            let err = parse(&format!("{text}{cam}")).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = parse("[store]\npath = \"db/x.sqlite\"\n[[camera]]\nname = \"a\"\nkind = \"file\"\nuri = \"v.mp4\"\n")
            .unwrap();
        assert_eq!(c.store_path, PathBuf::from("/base/db/x.sqlite"));
        assert_eq!(c.cameras[0].source.uri, "/base/v.mp4");
    }
}
