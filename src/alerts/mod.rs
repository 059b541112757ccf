//! Real-time alerts: rules over the behaviour events, and a publisher that sends what they fire to an MQTT
//! broker and/or a webhook.
//!
//! - [`Engine`] is pure code, one per camera (built with the rules that apply to it): feed it every
//!   [`Event`] the camera's [`crate::behaviour::Behaviour`] produces ([`Engine::event`]) and the clock once
//!   per frame ([`Engine::tick`]); it pushes [`Alert`]s into a buffer the caller owns.
//! - [`publish::Publisher`] owns the network: a thread that turns alerts into JSON and hands them to the MQTT
//!   client and the webhook, and a thread that drives the MQTT connection. Workers give it alerts through a
//!   bounded channel with `try_send`, so a slow or dead broker never slows the video path.
//!
//! # Rules
//! - `queue_length`: the `QueueSample` length of a `Queue` zone is above `above` at every sample for at least
//!   `for_ms` (the first sample above starts the clock; `for_ms` = 0 fires on that sample).
//! - `occupancy`: the same with the `Occupancy` count of any zone.
//! - `dwell`: someone has been inside the zone for more than `above` seconds, and is still inside: it fires
//!   on the first frame past the threshold, not when the person leaves. Each stay fires at most once.
//! - `sync_backlog`: the oldest figure head office has not acknowledged (`[chain]`) is more than `above`
//!   minutes old ([`BacklogEngine`], checked after every delivery attempt); it clears when delivery has
//!   caught up. No camera or zone: `camera` and `zone` are empty in its payload.
//!
//! Samples come every `behaviour.queue_sample_ms` (5 s by default), so the hold of a count rule is checked
//! on samples: a `for_s` of 2 fires on the second sample in a row above the threshold, 5 s after the first.
//!
//! After a rule fires it stays quiet for `cooldown_ms` (per rule, zone and camera: an engine is one camera,
//! a rule one zone). When the condition behind a fired alert ends (the count is back at or below the
//! threshold; the person who stayed too long left) the engine sends a `cleared` alert.
//!
//! # Payload
//! One JSON object per alert (the serialization of [`Alert`]), for example
//! `{"state":"fired","rule":"long-stay","kind":"dwell","camera":"sample","zone":"table","value":8.04,
//! "threshold":8,"since_ms":1767000000000,"at_ms":1767000008040,"site":"store-12"}`:
//!
//! | field | meaning |
//! |---|---|
//! | `state` | `fired`, or `cleared` when the condition behind a fired alert has ended |
//! | `rule`, `kind` | the rule's name and kind (`queue_length`, `dwell`, `occupancy`, `sync_backlog`) |
//! | `camera`, `zone` | where |
//! | `value` | people in the queue / zone, the stay in seconds (fired: so far; cleared: the whole stay), or the backlog's age in minutes |
//! | `threshold` | the rule's `above` |
//! | `since_ms` | when the condition started: first sample above, or when the person entered (ms since the epoch) |
//! | `at_ms` | when it fired (or cleared) |
//! | `site` | the `[alerts] site` label, absent when not set |
//!
//! Privacy: counts, durations, names and times only; no track id, position or picture ever leaves.

pub mod publish;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::behaviour::{Event, Name, TrackId};

pub use publish::{AlertReport, AlertSink, BacklogAlerts, CameraAlerts, Publisher};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// `QueueSample` lengths of a `Queue` zone.
    QueueLength,
    /// Stays in a zone (`ZoneEntered` / `ZoneExited`).
    Dwell,
    /// `Occupancy` counts of a zone.
    Occupancy,
    /// The age of the oldest figure head office has not acknowledged (`[chain]`), in minutes.
    SyncBacklog,
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertKind::QueueLength => "queue_length",
            AlertKind::Dwell => "dwell",
            AlertKind::Occupancy => "occupancy",
            AlertKind::SyncBacklog => "sync_backlog",
        })
    }
}

/// One `[[alert]]` rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique; also the last level of the MQTT topic.
    pub name: String,
    pub kind: AlertKind,
    /// Only this camera (otherwise every camera with the zone).
    pub camera: Option<String>,
    pub zone: String,
    /// People (`queue_length`, `occupancy`) or seconds (`dwell`) that must be exceeded.
    pub above: f64,
    /// How long a count must stay above `above` (count rules only).
    pub for_ms: i64,
    /// No second alert from this rule (and camera) within this time of the last.
    pub cooldown_ms: i64,
}

impl Rule {
    /// Does the rule watch `camera`?
    pub fn applies_to(&self, camera: &str) -> bool {
        self.camera.as_deref().is_none_or(|c| c == camera)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == AlertKind::SyncBacklog {
            return write!(
                f,
                "'{}': head office's backlog older than {} min, cooldown {} s",
                self.name,
                self.above,
                self.cooldown_ms as f64 / 1000.0
            );
        }
        write!(f, "'{}': {} in zone '{}'", self.name, self.kind, self.zone)?;
        if let Some(c) = &self.camera {
            write!(f, " of camera '{c}'")?;
        }
        match self.kind {
            AlertKind::Dwell => write!(f, " over {} s", self.above)?,
            _ => write!(f, " above {} for {} s", self.above, self.for_ms as f64 / 1000.0)?,
        }
        write!(f, ", cooldown {} s", self.cooldown_ms as f64 / 1000.0)
    }
}

/// An MQTT broker address: `mqtt://[user[:password]@]host[:port]` (or `tcp://`); port 1883 by default.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl MqttTarget {
    /// Parses a broker URL; the message says what is wrong.
    pub fn parse(url: &str) -> Result<MqttTarget, String> {
        let rest = match url.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => rest,
            Some(("mqtts" | "ssl" | "wss" | "ws", _)) => {
                return Err(format!("{url:?}: TLS and websockets are not built in; use mqtt://host:port"));
            }
            _ => return Err(format!("{url:?} is not mqtt://host[:port]")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(format!("{url:?}: give no path; the topic is [alerts] topic"));
        }
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            Some((u, p)) => (Some(u.to_string()), (!p.is_empty()).then(|| p.to_string())),
            None => (None, None),
        };
        let (host, port) = match hostport.strip_prefix('[').and_then(|h| h.split_once(']')) {
            // [::1]:1883
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("{url:?}: bad port {p:?}"))?,
            None => 1883,
        };
        Ok(MqttTarget { host: host.to_string(), port, username, password })
    }
}

impl fmt::Debug for MqttTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        write!(
            f,
            "mqtt://{}{}:{}",
            self.username.as_deref().map(|u| format!("{u}@")).unwrap_or_default(),
            self.host,
            self.port
        )
    }
}

impl fmt::Display for MqttTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The `[alerts]` section and the `[[alert]]` rules, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    pub mqtt: Option<MqttTarget>,
    /// Topic prefix: an alert goes to `{topic}/{rule}`.
    pub topic: String,
    /// `http://` URL the same JSON is POSTed to.
    pub webhook: Option<String>,
    /// Label added to every payload.
    pub site: Option<String>,
    pub rules: Vec<Rule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { mqtt: None, topic: DEFAULT_TOPIC.to_string(), webhook: None, site: None, rules: Vec::new() }
    }
}

pub const DEFAULT_TOPIC: &str = "iobox/alerts";

/// Problems found when alerts are started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("alert '{rule}': {message}")]
    Rule { rule: String, message: String },
    #[error("alerts: cannot start the publisher: {0}")]
    Start(String),
}

/// Checks the rules against the cameras' zones (calibrations): every rule must find its zone on at least one
/// of its cameras, a rule for one camera on that camera, and a `queue_length` rule a `Queue` zone.
pub fn check_zones<'a>(
    rules: &[Rule],
    cameras: impl Iterator<Item = (&'a str, Option<&'a crate::calibration::Calibration>)> + Clone,
) -> Result<(), Error> {
    use crate::calibration::ZoneKind;
    for rule in rules.iter().filter(|r| r.kind != AlertKind::SyncBacklog) {
        let err = |message: String| Error::Rule { rule: rule.name.clone(), message };
        let mut found = false;
        for (camera, cal) in cameras.clone().filter(|(c, _)| rule.applies_to(c)) {
            let zone = cal.and_then(|cal| cal.zones.iter().find(|z| z.name == rule.zone));
            match zone {
                Some(z) if rule.kind == AlertKind::QueueLength && z.kind != ZoneKind::Queue => {
                    return Err(err(format!(
                        "zone '{}' of camera '{camera}' is not a queue zone (kind = \"queue\" in its calibration)",
                        rule.zone
                    )));
                }
                Some(_) => found = true,
                None if rule.camera.is_some() => {
                    return Err(err(match cal {
                        Some(cal) => format!("camera '{camera}' has no zone '{}' ({})", rule.zone, cal.path.display()),
                        None => format!("camera '{camera}' has no calibration, so no zones"),
                    }));
                }
                None => {}
            }
        }
        if !found {
            return Err(err(format!("no camera has a zone '{}'", rule.zone)));
        }
    }
    Ok(())
}

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Fired,
    Cleared,
}

/// What the engine reports, and exactly what is published (see the module doc for the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub state: AlertState,
    pub rule: Name,
    pub kind: AlertKind,
    pub camera: Name,
    pub zone: Name,
    /// People, or seconds for `dwell`.
    #[serde(serialize_with = "number")]
    pub value: f64,
    #[serde(serialize_with = "number")]
    pub threshold: f64,
    pub since_ms: i64,
    pub at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Name>,
}

/// Whole numbers as JSON integers (`3`, not `3.0`).
fn number<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 { s.serialize_i64(*v as i64) } else { s.serialize_f64(*v) }
}

/// One rule's state on one camera.
#[derive(Debug)]
struct RuleState {
    name: Name,
    kind: AlertKind,
    zone: Name,
    above: f64,
    for_ms: i64,
    cooldown_ms: i64,
    last_fired: Option<i64>,
    /// Count rules: the first sample of the current run of samples above the threshold.
    since: Option<i64>,
    /// Count rules: the current run has fired.
    fired: bool,
    /// Dwell rules: the stays in progress.
    inside: Vec<Stay>,
}

#[derive(Debug, Clone, Copy)]
struct Stay {
    track: TrackId,
    entered_ms: i64,
    fired: bool,
}

impl RuleState {
    fn cooling(&self, at_ms: i64) -> bool {
        self.last_fired.is_some_and(|last| at_ms - last < self.cooldown_ms)
    }
}

/// The rules of one camera. Pure: times are the caller's (the `at_ms` of the events and frames).
#[derive(Debug)]
pub struct Engine {
    camera: Name,
    site: Option<Name>,
    rules: Vec<RuleState>,
}

/// The `sync_backlog` rules: pure code, fed the backlog's age after every delivery attempt.
#[derive(Debug)]
pub struct BacklogEngine {
    rules: Vec<(Rule, Option<i64>, Option<i64>)>,
    site: Option<Name>,
}

impl BacklogEngine {
    /// The `sync_backlog` rules of `rules`; `None` when there are none.
    pub fn new(rules: &[Rule], site: Option<&str>) -> Option<BacklogEngine> {
        let rules: Vec<_> =
            rules.iter().filter(|r| r.kind == AlertKind::SyncBacklog).map(|r| (r.clone(), None, None)).collect();
        (!rules.is_empty()).then(|| BacklogEngine { rules, site: site.map(Into::into) })
    }

    /// The backlog's oldest row is `age_s` old at `at_ms` (`None`: no backlog).
    pub fn observe(&mut self, age_s: Option<f64>, at_ms: i64, out: &mut Vec<Alert>) {
        let minutes = age_s.unwrap_or(0.0) / 60.0;
        for (rule, fired_since, last_fired) in &mut self.rules {
            let over = age_s.is_some() && minutes > rule.above;
            let alert = |state, since_ms| Alert {
                state,
                rule: rule.name.as_str().into(),
                kind: AlertKind::SyncBacklog,
                camera: "".into(),
                zone: "".into(),
                value: (minutes * 100.0).round() / 100.0,
                threshold: rule.above,
                since_ms,
                at_ms,
                site: self.site.clone(),
            };
            match (over, *fired_since) {
                (true, None) if last_fired.is_none_or(|t| at_ms - t >= rule.cooldown_ms) => {
                    let since = at_ms - (age_s.unwrap_or(0.0) * 1000.0) as i64;
                    out.push(alert(AlertState::Fired, since));
                    *fired_since = Some(since);
                    *last_fired = Some(at_ms);
                }
                (false, Some(since)) => {
                    out.push(alert(AlertState::Cleared, since));
                    *fired_since = None;
                }
                _ => {}
            }
        }
    }
}

impl Engine {
    /// The rules that apply to `camera`; `None` when none does.
    pub fn new(camera: &str, rules: &[Rule], site: Option<&str>) -> Option<Engine> {
        let rules: Vec<RuleState> = rules
            .iter()
            .filter(|r| r.kind != AlertKind::SyncBacklog && r.applies_to(camera))
            .map(|r| RuleState {
                name: r.name.as_str().into(),
                kind: r.kind,
                zone: r.zone.as_str().into(),
                above: r.above,
                for_ms: r.for_ms,
                cooldown_ms: r.cooldown_ms,
                last_fired: None,
                since: None,
                fired: false,
                inside: Vec::new(),
            })
            .collect();
        (!rules.is_empty()).then(|| Engine { camera: camera.into(), site: site.map(Into::into), rules })
    }

    /// One behaviour event of this camera.
    pub fn event(&mut self, event: &Event, out: &mut Vec<Alert>) {
        match event {
            Event::QueueSample { zone, at_ms, length, .. } => {
                self.sample(AlertKind::QueueLength, zone, *at_ms, *length, out)
            }
            Event::Occupancy { zone, at_ms, count } => self.sample(AlertKind::Occupancy, zone, *at_ms, *count, out),
            Event::ZoneEntered { zone, track, at_ms } => {
                for r in self.rules.iter_mut().filter(|r| r.kind == AlertKind::Dwell && r.zone == *zone) {
                    if !r.inside.iter().any(|s| s.track == *track) {
                        r.inside.push(Stay { track: *track, entered_ms: *at_ms, fired: false });
                    }
                }
            }
            Event::ZoneExited { zone, track, at_ms, dwell_ms } => {
                let Engine { camera, site, rules } = self;
                for r in rules.iter_mut().filter(|r| r.kind == AlertKind::Dwell && r.zone == *zone) {
                    let Some(k) = r.inside.iter().position(|s| s.track == *track) else { continue };
                    let stay = r.inside.swap_remove(k);
                    if stay.fired {
                        let value = *dwell_ms as f64 / 1000.0;
                        out.push(make_alert(camera, site, r, AlertState::Cleared, value, stay.entered_ms, *at_ms));
                    }
                }
            }
            _ => {}
        }
    }

    /// The camera's clock at a processed frame: fires dwell rules for people still inside.
    pub fn tick(&mut self, at_ms: i64, out: &mut Vec<Alert>) {
        let Engine { camera, site, rules } = self;
        for r in rules.iter_mut().filter(|r| r.kind == AlertKind::Dwell) {
            let limit_ms = (r.above * 1000.0).round() as i64;
            for k in 0..r.inside.len() {
                let stay = r.inside[k];
                // Firing starts the cooldown, so with one set the rule fires at most once per tick.
                if stay.fired || at_ms - stay.entered_ms <= limit_ms || r.cooling(at_ms) {
                    continue;
                }
                r.inside[k].fired = true;
                r.last_fired = Some(at_ms);
                let value = (at_ms - stay.entered_ms) as f64 / 1000.0;
                out.push(make_alert(camera, site, r, AlertState::Fired, value, stay.entered_ms, at_ms));
            }
        }
    }

    fn sample(&mut self, kind: AlertKind, zone: &Name, at_ms: i64, count: u32, out: &mut Vec<Alert>) {
        let Engine { camera, site, rules } = self;
        let value = f64::from(count);
        for r in rules.iter_mut().filter(|r| r.kind == kind && r.zone == *zone) {
            if value > r.above {
                let since = *r.since.get_or_insert(at_ms);
                if !r.fired && at_ms - since >= r.for_ms && !r.cooling(at_ms) {
                    r.fired = true;
                    r.last_fired = Some(at_ms);
                    out.push(make_alert(camera, site, r, AlertState::Fired, value, since, at_ms));
                }
            } else {
                let since = r.since.take();
                if std::mem::take(&mut r.fired) {
                    out.push(make_alert(camera, site, r, AlertState::Cleared, value, since.unwrap_or(at_ms), at_ms));
                }
            }
        }
    }
}

fn make_alert(
    camera: &Name,
    site: &Option<Name>,
    r: &RuleState,
    state: AlertState,
    value: f64,
    since_ms: i64,
    at_ms: i64,
) -> Alert {
    Alert {
        state,
        rule: r.name.clone(),
        kind: r.kind,
        camera: camera.clone(),
        zone: r.zone.clone(),
        value,
        threshold: r.above,
        since_ms,
        at_ms,
        site: site.clone(),
    }
}
