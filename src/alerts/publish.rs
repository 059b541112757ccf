//! Getting alerts out: MQTT (rumqttc, QoS 1) and an HTTP webhook (ureq), on threads of their own.
//!
//! ```text
//! worker ──try_send──> [bounded channel] ──> "alerts" thread ──try_publish──> [rumqttc queue] ──> "alerts-mqtt"
//!                                                  └── POST (2 s timeout) ──> webhook
//! ```
//! - Workers never wait: a full channel drops the alert and counts it.
//! - The `alerts` thread serializes each alert once, queues it for MQTT without blocking (a full queue, which
//!   means the broker has been unreachable for a while, drops it and counts it) and POSTs it to the webhook.
//!   A webhook that fails is left alone for 10 s, so a dead one costs at most one timeout per 10 s.
//! - The `alerts-mqtt` thread drives the rumqttc connection: connects, reconnects with backoff (0.5 s
//!   doubling to 10 s) and logs failures at most every 30 s.
//! - [`Publisher::finish`] (after the workers have ended): the `alerts` thread empties the channel and asks
//!   the MQTT connection to disconnect after what is queued; the broker gets up to 5 s for that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TrySendError, bounded};
use rumqttc::{Client, Connection, MqttOptions, Outgoing, Packet, QoS};
use serde::Serialize;

use super::{Alert, AlertState, AlertsConfig, BacklogEngine, Engine, Error, MqttTarget};
use crate::behaviour::Event;

/// Alerts waiting for the publisher thread.
const CHANNEL: usize = 256;
/// Alerts rumqttc holds while the broker is away.
const MQTT_QUEUE: usize = 128;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);
const WEBHOOK_PAUSE: Duration = Duration::from_secs(10);
const MQTT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long `finish` waits for the broker to take what is queued.
const FLUSH: Duration = Duration::from_secs(5);
const LOG_EVERY: Duration = Duration::from_secs(30);

/// What happened to the alerts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertReport {
    /// Alerts the rules fired (`fired`) and ended (`cleared`).
    pub fired: u64,
    pub cleared: u64,
    /// Alerts written to the MQTT broker's connection (QoS 1).
    pub mqtt_sent: u64,
    /// Alerts the webhook answered with a 2xx status.
    pub webhook_posted: u64,
    /// Alerts lost to full queues (the publisher or the MQTT client behind, or the broker away).
    pub dropped: u64,
    /// Webhook posts that failed or were skipped while it was failing, and MQTT connection failures.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    fired: AtomicU64,
    cleared: AtomicU64,
    mqtt_sent: AtomicU64,
    webhook_posted: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) -> AlertReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AlertReport {
            fired: get(&self.fired),
            cleared: get(&self.cleared),
            mqtt_sent: get(&self.mqtt_sent),
            webhook_posted: get(&self.webhook_posted),
            dropped: get(&self.dropped),
            errors: get(&self.errors),
        }
    }
}

/// Logs at most once per `LOG_EVERY`, saying how many were held back.
#[derive(Debug, Default)]
struct RateLimit {
    last: Option<Instant>,
    held: u64,
}

impl RateLimit {
    /// When it is time to log: `Some` of a note on how many were held back since the last log.
    fn allow(&mut self) -> Option<String> {
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(match std::mem::take(&mut self.held) {
            0 => String::new(),
            n => format!(" ({n} more since the last report)"),
        })
    }
}

/// Something else that sees every alert the engines raise (the dashboard's recent alerts), called on the
/// worker thread: it must not block.
pub type AlertSink = Arc<dyn Fn(&Alert) + Send + Sync>;

/// The running publisher of a run: hand [`CameraAlerts`] to the workers, then [`Publisher::finish`].
pub struct Publisher {
    config: AlertsConfig,
    sink: Option<AlertSink>,
    tx: Option<Sender<Alert>>,
    dispatcher: Option<JoinHandle<()>>,
    mqtt: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Publisher {
    /// Starts the threads; `None` when there are no rules. Nothing is connected yet when this returns: a
    /// broker that is down is retried in the background, never an error here.
    pub fn start(config: &AlertsConfig) -> Result<Option<Publisher>, Error> {
        if config.rules.is_empty() {
            return Ok(None);
        }
        let counters = Arc::new(Counters::default());
        let closing = Arc::new(AtomicBool::new(false));
        let (mqtt_client, mqtt) = match &config.mqtt {
            Some(target) => {
                let (client, connection) = Client::new(mqtt_options(target), MQTT_QUEUE);
                let (target, closing, counters) = (target.clone(), closing.clone(), counters.clone());
                let thread = std::thread::Builder::new()
                    .name("alerts-mqtt".into())
                    .spawn(move || drive_mqtt(connection, &target, &closing, &counters))
                    .map_err(|e| Error::Start(e.to_string()))?;
                (Some(client), Some(thread))
            }
            None => (None, None),
        };
        let webhook = config.webhook.clone().map(Webhook::new);
        let (tx, rx) = bounded(CHANNEL);
        let topic = config.topic.clone();
        let c = counters.clone();
        let dispatcher = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || dispatch(rx, mqtt_client, &topic, webhook, &closing, &c))
            .map_err(|e| Error::Start(e.to_string()))?;
        if config.mqtt.is_none() && config.webhook.is_none() {
            tracing::warn!("alerts: rules but neither [alerts] mqtt nor webhook: alerts are only logged");
        }
        Ok(Some(Publisher {
            config: config.clone(),
            sink: None,
            tx: Some(tx),
            dispatcher: Some(dispatcher),
            mqtt,
            counters,
        }))
    }

    /// Also hands every alert to `sink` (set before [`Publisher::for_camera`]).
    pub fn set_sink(&mut self, sink: AlertSink) {
        self.sink = Some(sink);
    }

    /// The rule engine of `camera` wired to this publisher; `None` when no rule watches the camera.
    pub fn for_camera(&self, camera: &str) -> Option<CameraAlerts> {
        let engine = Engine::new(camera, &self.config.rules, self.config.site.as_deref())?;
        Some(CameraAlerts {
            engine,
            tx: self.tx.clone()?,
            sink: self.sink.clone(),
            out: Vec::new(),
            counters: self.counters.clone(),
            drop_log: RateLimit::default(),
        })
    }

    /// The counts so far (metrics).
    pub fn counts(&self) -> AlertReport {
        self.counters.report()
    }

    /// The `sync_backlog` rules wired to this publisher; `None` when there are none.
    pub fn backlog_alerts(&self) -> Option<BacklogAlerts> {
        let engine = BacklogEngine::new(&self.config.rules, self.config.site.as_deref())?;
        Some(BacklogAlerts {
            engine,
            tx: self.tx.clone()?,
            sink: self.sink.clone(),
            out: Vec::new(),
            counters: self.counters.clone(),
            drop_log: RateLimit::default(),
        })
    }

    /// After the workers are done (their `CameraAlerts` dropped): sends what is queued, closes the MQTT
    /// connection (waiting up to 5 s for the broker) and returns the counts.
    pub fn finish(mut self) -> AlertReport {
        drop(self.tx.take());
        if let Some(t) = self.dispatcher.take() {
            let _ = t.join();
        }
        if let Some(t) = self.mqtt.take() {
            let deadline = Instant::now() + FLUSH;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                // Its thread ends at its next connection error; the process does not wait for it.
                tracing::warn!("alerts: the MQTT broker did not take the last alerts within {FLUSH:?}");
            }
        }
        self.counters.report()
    }
}

/// One camera's rule engine and its end of the publisher's channel; lives in the worker.
pub struct CameraAlerts {
    engine: Engine,
    tx: Sender<Alert>,
    sink: Option<AlertSink>,
    out: Vec<Alert>,
    counters: Arc<Counters>,
    drop_log: RateLimit,
}

impl CameraAlerts {
    /// A processed frame at `at_ms` and the behaviour events it produced: evaluates the rules and hands
    /// what fires to the publisher without waiting.
    pub fn frame(&mut self, at_ms: i64, events: &[Event]) {
        for e in events {
            self.engine.event(e, &mut self.out);
        }
        self.engine.tick(at_ms, &mut self.out);
        self.send();
    }

    /// Events without a frame (the end of the stream): no clock tick.
    pub fn events(&mut self, events: &[Event]) {
        for e in events {
            self.engine.event(e, &mut self.out);
        }
        self.send();
    }

    fn send(&mut self) {
        hand_over(&mut self.out, &self.tx, self.sink.as_ref(), &self.counters, &mut self.drop_log);
    }
}

/// The `sync_backlog` rules wired to the publisher; lives in the chain delivery thread.
pub struct BacklogAlerts {
    engine: BacklogEngine,
    tx: Sender<Alert>,
    sink: Option<AlertSink>,
    out: Vec<Alert>,
    counters: Arc<Counters>,
    drop_log: RateLimit,
}

impl BacklogAlerts {
    /// The backlog's oldest row is `age_s` old (`None`: nothing waits) at `at_ms`.
    pub fn observe(&mut self, age_s: Option<f64>, at_ms: i64) {
        self.engine.observe(age_s, at_ms, &mut self.out);
        hand_over(&mut self.out, &self.tx, self.sink.as_ref(), &self.counters, &mut self.drop_log);
    }
}

/// Counts, logs and hands `out`'s alerts to the sink and the publisher's channel, never waiting.
fn hand_over(
    out: &mut Vec<Alert>,
    tx: &Sender<Alert>,
    sink: Option<&AlertSink>,
    counters: &Counters,
    drop_log: &mut RateLimit,
) {
    for alert in out.drain(..) {
        match alert.state {
            AlertState::Fired => Counters::add(&counters.fired),
            AlertState::Cleared => Counters::add(&counters.cleared),
        }
        tracing::info!(
            rule = %alert.rule, camera = %alert.camera, zone = %alert.zone, value = alert.value,
            "alert {}", if alert.state == AlertState::Fired { "fired" } else { "cleared" }
        );
        if let Some(sink) = sink {
            sink(&alert);
        }
        match tx.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                Counters::add(&counters.dropped);
                if let Some(held) = drop_log.allow() {
                    tracing::warn!("alerts: the publisher is behind; alert dropped{held}");
                }
            }
        }
    }
}

fn mqtt_options(target: &MqttTarget) -> MqttOptions {
    let id = format!("iobox-{:08x}", rand::random::<u32>());
    let mut o = MqttOptions::new(id, target.host.clone(), target.port);
    o.set_keep_alive(Duration::from_secs(30));
    if let Some(user) = &target.username {
        o.set_credentials(user.clone(), target.password.clone().unwrap_or_default());
    }
    o
}

/// The `alerts` thread: until every sender is gone.
fn dispatch(
    rx: Receiver<Alert>,
    mqtt: Option<Client>,
    topic: &str,
    mut webhook: Option<Webhook>,
    closing: &AtomicBool,
    counters: &Counters,
) {
    let mut full_log = RateLimit::default();
    for alert in rx.iter() {
        let json = match serde_json::to_vec(&alert) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("alerts: cannot serialize {alert:?}: {e}");
                continue;
            }
        };
        if let Some(client) = &mqtt {
            let topic = format!("{topic}/{}", alert.rule);
            if client.try_publish(topic, QoS::AtLeastOnce, false, json.clone()).is_err() {
                Counters::add(&counters.dropped);
                if let Some(held) = full_log.allow() {
                    tracing::warn!("alerts: MQTT queue full (is the broker reachable?); alert dropped{held}");
                }
            }
        }
        if let Some(w) = webhook.as_mut() {
            w.post(&json, counters);
        }
    }
    if let Some(client) = mqtt {
        closing.store(true, Ordering::Relaxed);
        // After what is queued; if the queue is full the connection thread sees `closing` instead.
        let _ = client.try_disconnect();
    }
}

/// The `alerts-mqtt` thread: drives the connection (rumqttc reconnects on the next poll after an error).
fn drive_mqtt(mut connection: Connection, target: &MqttTarget, closing: &AtomicBool, counters: &Counters) {
    let mut backoff = Duration::from_millis(500);
    let mut log = RateLimit::default();
    for event in connection.iter() {
        match event {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("alerts: connected to MQTT broker {target}");
                backoff = Duration::from_millis(500);
                log = RateLimit::default();
            }
            Ok(rumqttc::Event::Outgoing(Outgoing::Publish(_))) => Counters::add(&counters.mqtt_sent),
            Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                Counters::add(&counters.errors);
                if closing.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(held) = log.allow() {
                    tracing::warn!("alerts: MQTT broker {target}: {e}; retrying{held}");
                }
                // Sleep in steps so that closing is not held up.
                let until = Instant::now() + backoff;
                while Instant::now() < until && !closing.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if closing.load(Ordering::Relaxed) {
                    break;
                }
                backoff = (backoff * 2).min(MQTT_BACKOFF_MAX);
            }
        }
    }
}

/// HTTP POST of each alert's JSON; after a failure the webhook is skipped for `WEBHOOK_PAUSE`.
struct Webhook {
    url: String,
    agent: ureq::Agent,
    paused_until: Option<Instant>,
    log: RateLimit,
}

impl Webhook {
    fn new(url: String) -> Self {
        let config = ureq::Agent::config_builder().timeout_global(Some(WEBHOOK_TIMEOUT)).build();
        Self { url, agent: ureq::Agent::new_with_config(config), paused_until: None, log: RateLimit::default() }
    }

    fn post(&mut self, json: &[u8], counters: &Counters) {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            Counters::add(&counters.errors);
            return;
        }
        match self.agent.post(&self.url).content_type("application/json").send(json) {
            Ok(_) => {
                self.paused_until = None;
                Counters::add(&counters.webhook_posted);
            }
            Err(e) => {
                Counters::add(&counters.errors);
                self.paused_until = Some(Instant::now() + WEBHOOK_PAUSE);
                if let Some(held) = self.log.allow() {
                    tracing::warn!("alerts: webhook {}: {e}; paused for {WEBHOOK_PAUSE:?}{held}", self.url);
                }
            }
        }
    }
}
