//! `iobox run`: the appliance, one store. Sources -> per-camera queues -> workers (perceive: faces, blur,
//! people, tracks) -> the store's fusion -> behaviour -> the database.
//!
//! The loop sees cameras only as [`FrameSource`]s and time only through a [`Clock`]: `iobox run` gives it
//! the configured GStreamer and nokhwa cameras and the system clock, a test can give it
//! [`TestSource`](crate::capture::test_source::TestSource)s and a
//! [`ManualClock`](crate::clock::ManualClock) and run the whole store without GStreamer. Stored times are
//! the wall clock at the start of the run plus monotonic time since (a file read faster than real time:
//! plus its stream position), so a dwell never stretches or shrinks when the wall clock is set.
//!
//! Each camera runs on its own supervised capture thread; a camera that fails is retried (live) or
//! reported (files) without touching the others. Workers own their models; camera `i` is handled by
//! worker `i % workers`, so each camera's frames stay in order. The store writer is a thread of its own.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::Select;
use serde::Serialize;

use crate::behaviour::{Behaviour, Event, Observation};
use crate::capture::encode::VideoWriter;
use crate::capture::{self, CameraHandle, CameraState, FrameReceiver, FrameSource};
use crate::clock::{Clock, Timeline};
use crate::config::Config;
use crate::fuse::{FusionEvent, StoreFusion};
use crate::infer::ModelSource;
use crate::metrics::Metrics;
use crate::stop::Stop;
use crate::store::{Record, RecordSender, Writer};
use crate::worker::{CameraPerception, Perception, PersonSeen, StageSummary};

use super::JobError;

/// Extra controls for a run (tests and the CLI).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop this long after the cameras start (otherwise run until every camera ends or a stop is requested).
    pub max_duration: Option<Duration>,
    /// The run's time (the system clock when `None`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Share the latest anonymized still of each camera and the alerts with a dashboard in this process.
    pub live: Option<std::sync::Arc<crate::live::Live>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CameraReport {
    pub name: String,
    pub frames_processed: u64,
    pub frames_failed: u64,
    pub frames_dropped: u64,
    /// Frames processed per second of the camera's own time in the run (first to last frame processed):
    /// what the box sustained for this camera.
    pub sustained_fps: f64,
    /// Share of the camera's frames dropped before processing (0..1).
    pub dropped_fraction: f64,
    pub faces_detected: u64,
    /// Behaviour events this camera produced (entries, dwell, crossings, samples, ...).
    pub events: u64,
    pub reconnects: u64,
    /// Why the camera stopped for good (files, bad pipelines).
    pub error: Option<String>,
    /// The last problem of a live camera that is being retried (unreachable, stream ended, stalled).
    pub last_problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub database: PathBuf,
    pub seconds: f64,
    pub cameras: Vec<CameraReport>,
    pub events_written: u64,
    pub events_dropped: u64,
    /// Store visits recorded: each person's camera tracks joined across the cameras, counted once.
    pub store_visits: u64,
    /// Per worker: stage timings and the time spent inside ONNX Runtime.
    pub workers: Vec<StageSummary>,
    /// Alerts fired and delivered, when rules are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::alerts::AlertReport>,
    /// Head office delivery, when the store belongs to a chain: the outbox's backlog and what was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::chain::sync::SyncStatus>,
}

impl RunReport {
    /// Cameras that failed for good.
    pub fn failed(&self) -> impl Iterator<Item = &CameraReport> {
        self.cameras.iter().filter(|c| c.error.is_some())
    }
}

/// One camera as a worker sees it.
struct CameraSlot {
    index: usize,
    name: String,
    rx: FrameReceiver,
    /// A live (or paced) camera whose queue drops frames when the worker falls behind.
    drops_when_behind: bool,
    perception: CameraPerception,
    recorder: Option<VideoWriter>,
    record_path: Option<PathBuf>,
    snapshot_path: Option<PathBuf>,
    last_snapshot: Option<Instant>,
    last_preview: Option<Instant>,
    processed: u64,
    /// When the first and the latest frame of this camera were processed.
    frames_span: Option<(Instant, Instant)>,
    failed: u64,
    faces: u64,
    open: bool,
    /// Zones, lines and the rest, when the camera is calibrated.
    behaviour: Option<Behaviour>,
    observations: Vec<Observation>,
    /// This frame's confirmed tracks on the floor, for store fusion.
    floor_tracks: Vec<(crate::track::TrackId, crate::geometry::PointOnFloor)>,
    fusion_events: Vec<FusionEvent>,
    events: Vec<Event>,
    events_out: u64,
    /// Files are timed by their own clock (start of the run + stream position), so that dwell times are
    /// real even when the file is processed faster than real time; live cameras by the wall clock.
    file_clock: Option<i64>,
    last_ms: i64,
    /// The behaviour has been flushed after the camera closed.
    finished: bool,
    /// The alert rules watching this camera, fed with its events.
    alerts: Option<crate::alerts::CameraAlerts>,
    /// This camera's series of the run's metrics.
    processed_total: crate::metrics::CounterSeries,
    failed_total: crate::metrics::CounterSeries,
    last_frame: crate::metrics::GaugeSeries,
}

#[derive(Debug, Default)]
struct WorkerTotals {
    /// Per camera: index, processed, failed, faces, events, sustained frames/s.
    per_camera: Vec<(usize, u64, u64, u64, u64, f64)>,
    stages: StageSummary,
}

/// Runs the configured cameras.
pub fn run(config: &Config, stop: &Stop, options: &RunOptions) -> Result<RunReport, JobError> {
    let sources = config.cameras.iter().map(|c| capture::source_for(&c.source)).collect();
    run_sources(config, sources, stop, options)
}

/// Runs the store with `sources[i]` as the frames of `config.cameras[i]` (its calibration, queue and
/// outputs stay as configured).
pub fn run_sources(
    config: &Config,
    sources: Vec<Box<dyn FrameSource>>,
    stop: &Stop,
    options: &RunOptions,
) -> Result<RunReport, JobError> {
    let started = Instant::now();
    if sources.len() != config.cameras.len()
        || sources.iter().zip(&config.cameras).any(|(s, c)| s.name() != c.source.name)
    {
        let given: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        return Err(JobError::Usage(format!(
            "{} sources ({}) for {} configured cameras",
            sources.len(),
            given.join(", "),
            config.cameras.len()
        )));
    }
    let timeline = Arc::new(Timeline::new(options.clock.clone().unwrap_or_else(crate::clock::system)));
    crate::infer::runtime::ensure_loaded(config.onnxruntime.as_deref())?;
    let mut models = ModelSource::new(
        config.models_dir.clone().or_else(crate::infer::find_models_dir).unwrap_or_else(|| "models".into()),
    );
    models.overrides = config.model_overrides.clone();
    models.intra_threads = config.intra_threads;
    // Load every worker's models before opening cameras: a bad model stops the run before anything starts.
    let mut perceptions = Vec::with_capacity(config.workers);
    for _ in 0..config.workers {
        perceptions.push(Perception::new(&models, config.perception)?);
    }
    // Calibrations too: a bad file stops the run with its own message.
    let mut calibrations = Vec::with_capacity(config.cameras.len());
    let mut behaviours = Vec::with_capacity(config.cameras.len());
    for cam in &config.cameras {
        let cal = cam.calibration.as_deref().map(crate::calibration::Calibration::load).transpose()?;
        if let Some(c) = &cal
            && c.camera != cam.source.name
        {
            return Err(JobError::Usage(format!(
                "{}: calibrates camera '{}', but is configured for camera '{}'",
                c.path.display(),
                c.camera,
                cam.source.name
            )));
        }
        behaviours.push(
            cal.as_ref()
                .map(|c| Behaviour::for_calibration(c, config.behaviour.clone()))
                .transpose()
                .map_err(|e| JobError::Usage(format!("camera '{}': {e}", cam.source.name)))?,
        );
        calibrations.push(cal);
    }

    let names: Vec<String> = config.cameras.iter().map(|c| c.source.name.clone()).collect();
    let zones = names.iter().map(String::as_str).zip(calibrations.iter().map(Option::as_ref));
    crate::alerts::check_zones(&config.alerts.rules, zones).map_err(|e| JobError::Usage(e.to_string()))?;
    let writer = Writer::start_with(&config.store_path, &names, config.store)?;
    let mut alerts = crate::alerts::Publisher::start(&config.alerts).map_err(|e| JobError::Usage(e.to_string()))?;
    if let (Some(a), Some(live)) = (alerts.as_mut(), options.live.clone()) {
        a.set_sink(std::sync::Arc::new(move |alert| live.push_alert(alert)));
    }
    let run_start_ms = timeline.now_ms();
    let sync = match (super::sync::syncer_for(config)?, &config.chain) {
        (Some(syncer), Some(c)) => Some(
            super::sync::SyncThread::start(
                syncer,
                c.every,
                timeline.clock().clone(),
                alerts.as_ref().and_then(crate::alerts::Publisher::backlog_alerts),
            )
            .map_err(|e| JobError::Usage(format!("cannot start the chain delivery thread: {e}")))?,
        ),
        _ => None,
    };

    let metrics = Metrics::new();
    let _metrics_server = config.metrics.listen.and_then(|listen| {
        match crate::metrics::MetricsServer::start(metrics.clone(), listen, config.metrics.allow_remote) {
            Ok(s) => {
                tracing::info!("metrics and health at http://{}/metrics, /healthz, /readyz", s.addr());
                Some(s)
            }
            Err(e) => {
                tracing::warn!("metrics: cannot listen on {listen} ({e}); the run goes on without /metrics");
                None
            }
        }
    });
    let mut handles: Vec<Option<CameraHandle>> = Vec::new();
    let mut slots: Vec<Vec<CameraSlot>> = (0..config.workers).map(|_| Vec::new()).collect();
    let mut start_errors: Vec<Option<String>> = vec![None; names.len()];
    let mut queue_stats = Vec::with_capacity(names.len());
    for (i, (cam, source)) in config.cameras.iter().zip(sources).enumerate() {
        let policy = source.queue_policy();
        let stream_timed = source.stream_timed();
        let (tx, rx) = capture::queue::frame_queue(cam.queue_depth, policy);
        queue_stats.push(rx.stats().clone());
        match capture::source::start(source, i, tx, stop.clone(), timeline.clock().clone()) {
            Ok(h) => handles.push(Some(h)),
            Err(e) => {
                tracing::error!(camera = %cam.source.name, "{e}");
                start_errors[i] = Some(e.to_string());
                handles.push(None);
            }
        }
        let fill = |t: &Option<String>| t.as_ref().map(|t| PathBuf::from(t.replace("{camera}", &cam.source.name)));
        slots[i % config.workers].push(CameraSlot {
            index: i,
            name: cam.source.name.clone(),
            rx,
            drops_when_behind: policy == capture::queue::QueuePolicy::DropOldest,
            perception: CameraPerception::new(config.blur, config.perception.tracker, calibrations[i].take()),
            recorder: None,
            record_path: fill(&config.record),
            snapshot_path: fill(&config.snapshot),
            last_snapshot: None,
            last_preview: None,
            processed: 0,
            frames_span: None,
            failed: 0,
            faces: 0,
            open: true,
            behaviour: behaviours[i].take(),
            observations: Vec::new(),
            floor_tracks: Vec::new(),
            fusion_events: Vec::new(),
            events: Vec::new(),
            events_out: 0,
            file_clock: stream_timed.then_some(run_start_ms),
            last_ms: run_start_ms,
            finished: false,
            alerts: alerts.as_ref().and_then(|a| a.for_camera(&cam.source.name)),
            processed_total: metrics.frames_processed.with_label_values(&[cam.source.name.as_str()]),
            failed_total: metrics.frames_failed.with_label_values(&[cam.source.name.as_str()]),
            last_frame: metrics.last_frame.with_label_values(&[cam.source.name.as_str()]),
        });
    }

    // One store: every calibrated camera's tracks joined into visits on the shared floor plan.
    let fusion = Arc::new(Mutex::new(Store { fusion: StoreFusion::new(config.fusion.clone()), visits: 0 }));
    // `--for` counts from when the cameras start, not from before the models load.
    let deadline = options.max_duration.map(|d| Instant::now() + d);
    let snapshot_every = config.snapshot_every;
    let mut worker_threads = Vec::new();
    for (w, (perception, cams)) in perceptions.into_iter().zip(slots).enumerate() {
        let records = writer.sender();
        let outputs = Outputs {
            snapshot_every,
            live: options.live.clone(),
            fusion: fusion.clone(),
            timeline: timeline.clone(),
            metrics: metrics.clone(),
        };
        worker_threads.push(
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker_loop(perception, cams, records, outputs))
                .map_err(|e| JobError::Usage(format!("cannot start worker thread: {e}")))?,
        );
    }

    // Watch the deadline and the wall clock; workers end when their cameras end.
    let mut wall_checked = Instant::now();
    let mut sampler = Sampler::new(&names);
    let records = writer.sender();
    let writer_live = writer.live();
    while !worker_threads.iter().all(|t| t.is_finished()) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.request();
        }
        if sampler.due() {
            let cams =
                CamerasNow { names: &names, handles: &handles, queues: &queue_stats, start_errors: &start_errors };
            let sources = Sources {
                records: &records,
                writer: &writer_live,
                db: &config.store_path,
                alerts: alerts.as_ref(),
                sync: sync.as_ref(),
            };
            sampler.sample(&metrics, &cams, &sources);
        }
        if wall_checked.elapsed() >= Duration::from_secs(10) {
            wall_checked = Instant::now();
            if let Some(step) = timeline.follow_wall() {
                tracing::warn!(
                    "the wall clock was set {:+.1} s; stored times follow it from now",
                    step as f64 / 1000.0
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.request();
    drop(records);
    let mut totals = WorkerTotals::default();
    let mut workers = Vec::new();
    for t in worker_threads {
        if let Ok(mut wt) = t.join() {
            totals.per_camera.append(&mut wt.per_camera);
            workers.push(wt.stages);
        }
    }
    let mut cameras = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let (frames_processed, frames_failed, faces, events, sustained_fps) = totals
            .per_camera
            .iter()
            .find(|(idx, ..)| *idx == i)
            .map(|&(_, p, f, faces, events, fps)| (p, f, faces, events, fps))
            .unwrap_or_default();
        let frames_dropped = queue_stats[i].dropped();
        let (error, reconnects, last_problem) = match handle {
            Some(h) => {
                let reconnects = h.status.reconnects.load(std::sync::atomic::Ordering::Relaxed);
                let last_problem = h.status.last_error();
                let state = h.status.state();
                let err = h.join().err().map(|e| e.to_string());
                let err = err.or_else(|| (state == CameraState::Failed).then(|| "failed".to_string()));
                (err, reconnects, last_problem)
            }
            None => (start_errors[i].take(), 0, None),
        };
        cameras.push(CameraReport {
            name: names[i].clone(),
            frames_processed,
            frames_failed,
            frames_dropped,
            sustained_fps,
            dropped_fraction: frames_dropped as f64 / (frames_processed + frames_failed + frames_dropped).max(1) as f64,
            faces_detected: faces,
            events,
            reconnects,
            error,
            last_problem,
        });
    }
    // Every camera has ended: the visits still open end too.
    let store_visits = {
        let mut ended = Vec::new();
        let mut store = fusion.lock().unwrap_or_else(|e| e.into_inner());
        store.fusion.finish(&mut ended);
        send_visits(&mut store, &mut ended, &writer.sender());
        store.visits
    };
    let ws = writer.finish()?;
    // The last delivery (what closed during the run) before the alerts close: it may still raise one.
    let chain = sync.map(super::sync::SyncThread::finish);
    let alerts = alerts.map(crate::alerts::Publisher::finish);
    Ok(RunReport {
        database: config.store_path.clone(),
        seconds: started.elapsed().as_secs_f64(),
        cameras,
        events_written: ws.written,
        events_dropped: ws.dropped,
        store_visits,
        workers,
        alerts,
        chain,
    })
}

/// The cameras as the watch loop sees them, for metrics and health.
struct CamerasNow<'a> {
    names: &'a [String],
    handles: &'a [Option<CameraHandle>],
    queues: &'a [Arc<capture::queue::QueueStats>],
    start_errors: &'a [Option<String>],
}

/// The rest of the run, for metrics and health.
struct Sources<'a> {
    records: &'a RecordSender,
    writer: &'a crate::store::writer::WriterLive,
    db: &'a std::path::Path,
    alerts: Option<&'a crate::alerts::Publisher>,
    sync: Option<&'a super::sync::SyncThread>,
}

/// Copies the run's counters into the metrics once a second, and the camera rates every 10 s.
struct Sampler {
    last: Instant,
    last_rate: Instant,
    /// Frames processed per camera at the last rate.
    processed: Vec<u64>,
    seen_frame: Vec<bool>,
}

impl Sampler {
    fn new(names: &[String]) -> Sampler {
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap_or_else(Instant::now);
        Sampler {
            last: long_ago,
            last_rate: Instant::now(),
            processed: vec![0; names.len()],
            seen_frame: vec![false; names.len()],
        }
    }

    fn due(&self) -> bool {
        self.last.elapsed() >= Duration::from_secs(1)
    }

    fn sample(&mut self, m: &Metrics, cams: &CamerasNow<'_>, src: &Sources<'_>) {
        use crate::metrics::{Component, Health};
        use std::sync::atomic::Ordering::Relaxed;
        self.last = Instant::now();
        let rate_due = self.last_rate.elapsed() >= Duration::from_secs(10);
        let mut health = Health::default();
        for (i, name) in cams.names.iter().enumerate() {
            let label = [name.as_str()];
            Metrics::raise(&m.frames_dropped.with_label_values(&label), cams.queues[i].dropped());
            m.queue_depth.with_label_values(&label).set(cams.queues[i].depth() as i64);
            let processed = m.frames_processed.with_label_values(&label).get();
            self.seen_frame[i] |= processed > 0;
            if rate_due {
                let secs = self.last_rate.elapsed().as_secs_f64();
                m.fps.with_label_values(&label).set((processed - self.processed[i].min(processed)) as f64 / secs);
                self.processed[i] = processed;
            }
            let component = match &cams.handles[i] {
                Some(h) => {
                    Metrics::raise(&m.reconnects.with_label_values(&label), h.status.reconnects.load(Relaxed));
                    let state = h.status.state();
                    m.camera_up.with_label_values(&label).set(i64::from(state == CameraState::Running));
                    let (ok, word) = match state {
                        CameraState::Starting => (true, "starting"),
                        CameraState::Running => (true, "running"),
                        CameraState::Reconnecting => (false, "reconnecting"),
                        CameraState::Ended => (true, "ended"),
                        CameraState::Failed => (false, "failed"),
                    };
                    Component {
                        ok,
                        state: word.into(),
                        problem: (!ok).then(|| h.status.last_error()).flatten(),
                        ready: self.seen_frame[i] || state == CameraState::Ended,
                    }
                }
                None => {
                    m.camera_up.with_label_values(&label).set(0);
                    Component { ok: false, state: "failed".into(), problem: cams.start_errors[i].clone(), ready: false }
                }
            };
            health.cameras.insert(name.clone(), component);
        }
        m.store_pending.set(src.records.queued() as i64);
        Metrics::raise(&m.store_dropped, src.records.dropped() + src.writer.dropped.load(Relaxed));
        Metrics::raise(&m.store_written, src.writer.written.load(Relaxed));
        for t in src.writer.take_batch_seconds() {
            m.store_batch.observe(t);
        }
        let failing = src.writer.failing.load(Relaxed);
        m.store_failing.set(i64::from(failing));
        health.components.insert(
            "store".into(),
            Component {
                ok: !failing,
                state: if failing { "failing" } else { "writing" }.into(),
                problem: failing.then(|| format!("cannot write to {} (see the log)", src.db.display())),
                ready: true,
            },
        );
        if rate_due {
            let wal =
                src.db.with_extension(format!("{}-wal", src.db.extension().and_then(|e| e.to_str()).unwrap_or("")));
            let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            m.database_bytes.set((size(src.db) + size(&wal)) as i64);
        }
        if let Some(a) = src.alerts {
            let c = a.counts();
            Metrics::raise(&m.alerts_fired, c.fired);
            Metrics::raise(&m.alerts_dropped, c.dropped);
        }
        if let Some(sync) = src.sync {
            let st = sync.status();
            m.chain_backlog_rows.set(st.backlog_rows as i64);
            m.chain_backlog_age.set(st.backlog_age_s.unwrap_or(0.0));
            Metrics::raise(&m.chain_delivered, st.rows_delivered);
            m.chain_failures.set(i64::from(st.failures_in_a_row));
            let ok = st.failures_in_a_row < 3;
            health.components.insert(
                "chain".into(),
                Component {
                    ok,
                    state: if ok { "delivering" } else { "failing" }.into(),
                    problem: if ok { None } else { st.last_error.clone() },
                    ready: true,
                },
            );
        }
        if rate_due {
            self.last_rate = Instant::now();
        }
        m.set_health(health);
    }
}

/// Where a worker's anonymized stills go besides the recording.
struct Outputs {
    snapshot_every: Duration,
    /// The dashboard's previews, with `iobox run --serve`.
    live: Option<std::sync::Arc<crate::live::Live>>,
    /// The store's fusion, shared by every worker.
    fusion: Arc<Mutex<Store>>,
    /// Wall times for the frames' monotonic capture times.
    timeline: Arc<Timeline>,
    metrics: Arc<Metrics>,
}

/// The store's fusion and the visits it has ended so far.
struct Store {
    fusion: StoreFusion,
    visits: u64,
}

fn worker_loop(
    mut perception: Perception,
    mut cams: Vec<CameraSlot>,
    records: RecordSender,
    outputs: Outputs,
) -> WorkerTotals {
    let mut last_error_log: Option<Instant> = None;
    let mut next = 0usize;
    // Each model's (runs, total ms) after the previous frame, for the inference histograms.
    let mut model_seen = perception.model_totals().map(|(_, runs, ms)| (runs, ms));
    loop {
        for slot in cams.iter_mut().filter(|c| !c.open && !c.finished) {
            finish_behaviour(slot, &records, &outputs.fusion);
        }
        if cams.iter().all(|c| !c.open) {
            break;
        }
        // Round-robin over cameras with a frame waiting; block (with a timeout) only when none has one.
        let mut got = None;
        for k in 0..cams.len() {
            let i = (next + k) % cams.len();
            if !cams[i].open {
                continue;
            }
            match cams[i].rx.recv_timeout(Duration::ZERO) {
                Ok(Some(frame)) => {
                    got = Some((i, frame));
                    break;
                }
                Ok(None) => {}
                Err(_) => close_slot(&mut cams[i]),
            }
        }
        let Some((i, frame)) = got.or_else(|| wait_any(&mut cams)) else {
            continue;
        };
        next = i + 1;
        let slot = &mut cams[i];
        let meta = frame.meta;
        // Never before the camera's previous frame: behaviour's durations only grow.
        let at_ms = frame_time_ms(slot.file_clock, &meta, &outputs.timeline).max(slot.last_ms);
        // Behind: on average a frame is waiting for every open camera of this worker that would drop
        // frames (a file read as fast as possible only waits).
        let live = cams.iter().filter(|c| c.open && c.drops_when_behind);
        let (open, waiting) = live.fold((0, 0), |(n, w), c| (n + 1, w + c.rx.waiting()));
        perception.set_behind(open > 0 && waiting >= open);
        let slot = &mut cams[i];
        match perception.process(frame, &mut slot.perception) {
            Ok(out) => {
                slot.processed += 1;
                slot.processed_total.inc();
                slot.last_frame.set(at_ms as f64 / 1000.0);
                for (i, (model, runs, total_ms)) in perception.model_totals().into_iter().enumerate() {
                    let (runs_before, ms_before) = model_seen[i];
                    if runs > runs_before {
                        outputs.metrics.inference.with_label_values(&[model]).observe((total_ms - ms_before) / 1000.0);
                    }
                    model_seen[i] = (runs, total_ms);
                }
                let now = Instant::now();
                slot.frames_span = Some((slot.frames_span.map_or(now, |s| s.0), now));
                slot.faces += out.faces_detected as u64;
                slot.last_ms = at_ms;
                records.send(Record::Frame {
                    camera: slot.index,
                    ts_ms: at_ms,
                    seq: meta.seq,
                    faces_blurred: out.frame.regions_blurred() as u32,
                    frames_dropped: slot.rx.stats().dropped(),
                });
                behave(slot, at_ms, &records, &outputs.fusion);
                if let Some(live) = &outputs.live
                    && slot.last_preview.is_none_or(|t| t.elapsed() >= live.preview_every)
                {
                    slot.last_preview = Some(Instant::now());
                    match crate::live::Still::from_anonymized(&out.frame, at_ms) {
                        Ok(still) => live.set_preview(&slot.name, still),
                        Err(e) => tracing::warn!(camera = %slot.name, "{e}"),
                    }
                }
                if let Some(path) = &slot.snapshot_path
                    && slot.last_snapshot.is_none_or(|t| t.elapsed() >= outputs.snapshot_every)
                {
                    slot.last_snapshot = Some(Instant::now());
                    if let Err(e) = out.frame.save_image(path) {
                        tracing::warn!(camera = %slot.name, "snapshot: {e}");
                    }
                }
                if slot.record_path.is_some() {
                    record(slot, out.frame);
                }
            }
            Err(e) => {
                // Fail closed: a frame whose faces could not be found is dropped, never passed on.
                slot.failed += 1;
                slot.failed_total.inc();
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(camera = %slot.name, "frame dropped: {e}");
                    last_error_log = Some(Instant::now());
                }
            }
        }
    }
    WorkerTotals {
        per_camera: cams
            .iter()
            .map(|c| {
                let fps = match c.frames_span {
                    Some((first, last)) if c.processed > 1 && last > first => {
                        (c.processed - 1) as f64 / (last - first).as_secs_f64()
                    }
                    _ => 0.0,
                };
                (c.index, c.processed, c.failed, c.faces, c.events_out, fps)
            })
            .collect(),
        stages: perception.summary(),
    }
}

/// When a frame was seen, in wall ms: a stream-timed source's start plus the frame's stream position, else
/// the frame's monotonic capture time on the run's timeline.
fn frame_time_ms(stream_start_ms: Option<i64>, meta: &capture::FrameMeta, timeline: &Timeline) -> i64 {
    match (stream_start_ms, meta.pts) {
        (Some(start), Some(pts)) => start + pts.as_millis() as i64,
        _ => timeline.wall_ms_at(meta.captured),
    }
}

/// Appends the frame to the camera's recording at `slot.record_path`, opening it with the first frame.
fn record(slot: &mut CameraSlot, frame: crate::anonymize::AnonymizedFrame) {
    let Some(path) = &slot.record_path else { return };
    if slot.recorder.is_none() {
        match VideoWriter::create(path, frame.width(), frame.height(), frame.meta().fps.unwrap_or(10.0)) {
            Ok(w) => slot.recorder = Some(w),
            Err(e) => {
                tracing::error!(camera = %slot.name, "recording disabled: {e}");
                slot.record_path = None;
                return;
            }
        }
    }
    if let Some(rec) = slot.recorder.as_mut()
        && let Err(e) = rec.push(frame)
    {
        tracing::error!(camera = %slot.name, "recording stopped: {e}");
        if let Some(rec) = slot.recorder.take() {
            let _ = rec.finish();
        }
        slot.record_path = None;
    }
}

/// Feeds the camera's confirmed, floor-located tracks to its behaviour and to the store's fusion, and
/// stores what comes out.
fn behave(slot: &mut CameraSlot, at_ms: i64, records: &RecordSender, fusion: &Mutex<Store>) {
    let Some(behaviour) = slot.behaviour.as_mut() else { return };
    if !slot.perception.people_ran {
        return;
    }
    slot.observations.clear();
    slot.observations.extend(slot.perception.people.iter().filter_map(PersonSeen::observation));
    slot.floor_tracks.clear();
    slot.floor_tracks.extend(slot.observations.iter().map(|o| (o.track, o.ground)));
    {
        let mut store = fusion.lock().unwrap_or_else(|e| e.into_inner());
        store.fusion.update(slot.index, at_ms, &slot.floor_tracks, &slot.perception.ended, &mut slot.fusion_events);
        send_visits(&mut store, &mut slot.fusion_events, records);
    }
    behaviour.frame(at_ms, &slot.observations, &mut slot.events);
    for id in &slot.perception.ended {
        behaviour.end_track(*id, &mut slot.events);
    }
    if let Some(alerts) = slot.alerts.as_mut() {
        alerts.frame(at_ms, &slot.events);
    }
    slot.events_out += slot.events.len() as u64;
    for event in slot.events.drain(..) {
        records.send(Record::Event { camera: slot.index, event });
    }
}

/// The visits that ended and the camera tracks that joined one, to the database (the writer's channel
/// never blocks).
fn send_visits(store: &mut Store, events: &mut Vec<FusionEvent>, records: &RecordSender) {
    for e in events.drain(..) {
        match e {
            FusionEvent::Ended { store: id, start_ms, end_ms, camera_tracks } => {
                store.visits += 1;
                records.send(Record::Visit { store: id, start_ms, end_ms, camera_tracks });
            }
            FusionEvent::Joined { store: id, camera, track, at_ms, .. } => {
                records.send(Record::VisitMember { store: id, camera, track, at_ms });
            }
            FusionEvent::Started { .. } => {}
        }
    }
}

/// After the camera's last frame: close open dwells, interactions, journeys and buckets, and end its
/// tracks in the store's fusion.
fn finish_behaviour(slot: &mut CameraSlot, records: &RecordSender, fusion: &Mutex<Store>) {
    slot.finished = true;
    let ended = slot.perception.finish();
    if slot.behaviour.is_some() {
        let mut store = fusion.lock().unwrap_or_else(|e| e.into_inner());
        store.fusion.update(slot.index, slot.last_ms, &[], &ended, &mut slot.fusion_events);
        send_visits(&mut store, &mut slot.fusion_events, records);
    }
    if let Some(behaviour) = slot.behaviour.as_mut() {
        behaviour.flush(slot.last_ms, &mut slot.events);
        if let Some(alerts) = slot.alerts.as_mut() {
            alerts.events(&slot.events);
        }
        slot.events_out += slot.events.len() as u64;
        for event in slot.events.drain(..) {
            records.send(Record::Event { camera: slot.index, event });
        }
    }
}

fn close_slot(slot: &mut CameraSlot) {
    slot.open = false;
    if let Some(rec) = slot.recorder.take() {
        match rec.finish() {
            Ok(n) => tracing::info!(camera = %slot.name, frames = n, "recording finished"),
            Err(e) => tracing::error!(camera = %slot.name, "recording: {e}"),
        }
    }
}

/// Blocks up to 100 ms for a frame from any open camera.
fn wait_any(cams: &mut [CameraSlot]) -> Option<(usize, capture::Frame)> {
    let open: Vec<usize> = (0..cams.len()).filter(|&i| cams[i].open).collect();
    if open.is_empty() {
        return None;
    }
    let mut sel = Select::new();
    for &i in &open {
        sel.recv(cams[i].rx.channel());
    }
    let op = sel.select_timeout(Duration::from_millis(100)).ok()?;
    let i = open[op.index()];
    match op.recv(cams[i].rx.channel()) {
        Ok(frame) => Some((i, frame)),
        Err(_) => {
            close_slot(&mut cams[i]);
            None
        }
    }
}
