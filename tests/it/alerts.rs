//! Alerts end to end: the real `iobox run` on the sample clip, rules that fire on that footage, a real
//! mosquitto broker on 127.0.0.1 (started here), a subscriber, and a tiny webhook server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A mosquitto on 127.0.0.1 with a port of its own; killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        Self::start_on(dir, free_port())
    }

    fn start_on(dir: &Path, port: u16) -> Broker {
        assert!(
            Path::new(MOSQUITTO).is_file(),
            "{MOSQUITTO} is missing: the alert tests need the mosquitto MQTT broker; run `make test` or \
             `scripts/setup.sh test`, which install it"
        );
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {MOSQUITTO}: {e}"));
        let mut broker = Broker { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
                panic!("mosquitto exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (right now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Subscribes to `filter` and waits for the broker's SubAck; messages come out of the receiver as
/// (topic, payload).
fn subscribe(port: u16, filter: &str) -> mpsc::Receiver<(String, Vec<u8>)> {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (client, mut connection) = Client::new(MqttOptions::new("iobox-test-subscriber", "127.0.0.1", port), 16);
    client.subscribe(filter, QoS::AtLeastOnce).unwrap();
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _client = client; // keep the request channel open
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic, p.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return, // the broker is stopped at the end of the test
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("the broker acknowledges the subscription");
    rx
}

/// An HTTP server on 127.0.0.1 that answers every POST with 200; the bodies come out of the receiver.
fn webhook_server() -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, &tx));
        }
    });
    (port, rx)
}

/// Requests on one connection (keep-alive or not): request line + content type, body.
fn serve(stream: TcpStream, tx: &mpsc::Sender<(String, Vec<u8>)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap(),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let _ = tx.send((format!("{} {content_type}", request_line.trim_end()), body));
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
    }
}

fn config(mqtt_port: u16, webhook_port: u16) -> String {
    format!(
        r#"
[store]
path = "events.sqlite"

[alerts]
mqtt = "mqtt://127.0.0.1:{mqtt_port}"
topic = "iobox-test/alerts"
webhook = "http://127.0.0.1:{webhook_port}/hook"
site = "test-site"

[[alert]]
name = "long-stay"
kind = "dwell"
zone = "table"
above = 8
cooldown_s = 0

[[alert]]
name = "someone-in"
kind = "occupancy"
camera = "sample"
zone = "floor"
above = 0
for_s = 2

[[camera]]
name = "sample"
kind = "file"
uri = "{clip}"
calibration = "{calibration}"
"#,
        clip = common::sample_clip().display(),
        calibration = common::root().join("calibration/sample.toml").display(),
    )
}

fn run(dir: &Path, config: &str) -> (Value, String) {
    std::fs::write(dir.join("iobox.toml"), config).unwrap();
    let o = common::iobox(&["run", "--config", "iobox.toml", "--json"], dir);
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cam = &report["cameras"][0];
    assert_eq!(cam["frames_processed"], 1394, "{report}");
    assert_eq!(cam["frames_failed"], 0, "{report}");
    (report, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn alerts_on_the_sample_clip_reach_a_real_broker_and_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let messages = subscribe(broker.port, "iobox-test/alerts/#");
    let (hook_port, posts) = webhook_server();
    let started_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (report, log) = run(dir.path(), &config(broker.port, hook_port));

    let a = &report["alerts"];
    let (fired, cleared) = (a["fired"].as_u64().unwrap(), a["cleared"].as_u64().unwrap());
    let total = (fired + cleared) as usize;
    assert_eq!(a["mqtt_sent"].as_u64(), Some(fired + cleared), "{a}\n{log}");
    assert_eq!(a["webhook_posted"].as_u64(), Some(fired + cleared), "{a}\n{log}");
    assert_eq!((a["dropped"].as_u64(), a["errors"].as_u64()), (Some(0), Some(0)), "{a}\n{log}");

    // Everything sent arrives (iobox waited for the broker to take it; delivery to us is asynchronous).
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < total && Instant::now() < deadline {
        if let Ok(m) = messages.recv_timeout(Duration::from_millis(100)) {
            received.push(m);
        }
    }
    assert_eq!(received.len(), total, "{a}: {received:?}\n{log}");

    let mut payloads = Vec::new();
    for (topic, payload) in &received {
        let text = String::from_utf8(payload.clone()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["at_ms", "camera", "kind", "rule", "since_ms", "site", "state", "threshold", "value", "zone"],
            "{text}"
        );
        assert_eq!(topic, &format!("iobox-test/alerts/{}", v["rule"].as_str().unwrap()));
        assert_eq!((v["camera"].as_str(), v["site"].as_str()), (Some("sample"), Some("test-site")), "{text}");
        let (since, at) = (v["since_ms"].as_i64().unwrap(), v["at_ms"].as_i64().unwrap());
        // Files run on their own clock: the start of the run plus the position in the clip (~2.5 min).
        assert!(started_ms - 60_000 < since && since <= at && at < started_ms + 400_000, "{text}");
        payloads.push(v);
    }
    let of = |rule: &str, state: &str| -> Vec<&Value> {
        payloads.iter().filter(|v| v["rule"] == rule && v["state"] == state).collect()
    };

    // People stand at the table for 10-25 s each: the dwell rule fires for several of them, while they
    // are still there (each stay clears after it fired, with the whole stay, when the person leaves).
    let stays = of("long-stay", "fired");
    assert!(stays.len() >= 3, "{payloads:#?}\n{log}");
    for v in &stays {
        assert_eq!(
            (v["kind"].as_str(), v["zone"].as_str(), v["threshold"].as_f64()),
            (Some("dwell"), Some("table"), Some(8.0))
        );
        let value = v["value"].as_f64().unwrap();
        assert!(value > 8.0 && value < 9.0, "fires on the first frame past 8 s: {v}");
        let held = (v["at_ms"].as_i64().unwrap() - v["since_ms"].as_i64().unwrap()) as f64 / 1000.0;
        assert!((held - value).abs() < 1e-9, "{v}");
        let end = of("long-stay", "cleared").into_iter().find(|c| c["since_ms"] == v["since_ms"]);
        let end = end.unwrap_or_else(|| panic!("no cleared alert for {v}: {payloads:#?}"));
        let whole = end["value"].as_f64().unwrap();
        assert!(whole > value && whole < 60.0 && end["at_ms"].as_i64() > v["at_ms"].as_i64(), "{v} {end}");
    }
    // Someone is on the floor for two samples in a row: the occupancy rule fires (once: cooldown 300 s).
    let busy = of("someone-in", "fired");
    assert_eq!(busy.len(), 1, "{payloads:#?}");
    let v = busy[0];
    assert_eq!(
        (v["kind"].as_str(), v["zone"].as_str(), v["threshold"].as_i64()),
        (Some("occupancy"), Some("floor"), Some(0))
    );
    let people = v["value"].as_i64().unwrap();
    assert!((1..=5).contains(&people), "{v}");
    assert!(v["at_ms"].as_i64().unwrap() - v["since_ms"].as_i64().unwrap() >= 2000, "{v}");

    // The webhook got the same JSON, POSTed as application/json.
    let mut hooks = Vec::new();
    while let Ok((request, body)) = posts.recv_timeout(Duration::from_millis(500)) {
        assert!(request.starts_with("POST /hook ") && request.ends_with("application/json"), "{request}");
        hooks.push(String::from_utf8(body).unwrap());
    }
    let mut mqtt: Vec<String> = received.iter().map(|(_, p)| String::from_utf8(p.clone()).unwrap()).collect();
    hooks.sort();
    mqtt.sort();
    assert_eq!(hooks, mqtt);
    drop(broker);
}

#[test]
fn a_dead_broker_and_webhook_do_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on either port.
    let (report, log) = run(dir.path(), &config(free_port(), free_port()));
    let a = &report["alerts"];
    assert!(a["fired"].as_u64().unwrap() >= 3, "the rules still fire: {a}");
    assert_eq!((a["mqtt_sent"].as_u64(), a["webhook_posted"].as_u64()), (Some(0), Some(0)), "{a}");
    assert!(a["errors"].as_u64().unwrap() > 0, "{a}");
    // The failures are logged, but at most every 30 s, not once per attempt.
    let most = (report["seconds"].as_f64().unwrap() / 30.0) as usize + 2;
    let mqtt_warnings = log.lines().filter(|l| l.contains("MQTT broker")).count();
    let webhook_warnings = log.lines().filter(|l| l.contains("webhook")).count();
    assert!((1..=most).contains(&mqtt_warnings), "{mqtt_warnings} MQTT warnings:\n{log}");
    assert!((1..=most).contains(&webhook_warnings), "{webhook_warnings} webhook warnings:\n{log}");
}

#[test]
fn alerts_wait_for_a_broker_that_comes_up_late() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("iobox.toml"), config(port, free_port())).unwrap();
    let child = common::spawn_iobox(&["run", "--config", "iobox.toml", "--json"], dir.path());
    // The run starts with nothing on the port; the first alerts fire about 3 s into the clip.
    std::thread::sleep(Duration::from_secs(4));
    let broker = Broker::start_on(dir.path(), port);
    let messages = subscribe(broker.port, "iobox-test/alerts/#");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["cameras"][0]["frames_processed"], 1394, "{report}");
    let a = &report["alerts"];
    // Nothing was lost: the alerts from before the broker came up were queued and sent after it.
    let total = a["fired"].as_u64().unwrap() + a["cleared"].as_u64().unwrap();
    assert_eq!((a["mqtt_sent"].as_u64(), a["dropped"].as_u64()), (Some(total), Some(0)), "{a}\n{}", common::text(&o));
    assert!(common::text(&o).contains("connected to MQTT broker"), "{}", common::text(&o));
    // ... and the subscriber (which connected after iobox) sees at least the later ones.
    let first = messages.recv_timeout(Duration::from_secs(10)).expect("alerts arrive once the broker is up");
    assert!(first.0.starts_with("iobox-test/alerts/"), "{first:?}");
}

#[test]
fn a_rule_whose_zone_no_camera_has_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let good = config(free_port(), free_port());
    for (bad, expected) in [
        (good.replace("zone = \"table\"", "zone = \"tabel\""), "alert 'long-stay': no camera has a zone 'tabel'"),
        (
            good.replace("kind = \"dwell\"", "kind = \"queue_length\""),
            "alert 'long-stay': zone 'table' of camera 'sample' is not a queue zone",
        ),
    ] {
        std::fs::write(dir.path().join("iobox.toml"), bad).unwrap();
        let o = common::iobox(&["run", "--config", "iobox.toml"], dir.path());
        assert!(!o.status.success() && common::text(&o).contains(expected), "{}", common::text(&o));
        assert!(!dir.path().join("events.sqlite").exists(), "refused before the database is created");
    }
}

#[test]
fn head_office_out_of_reach_shows_in_the_run_report_and_raises_a_backlog_alert() {
    let dir = tempfile::tempdir().unwrap();
    // Two days this store closed before: their figures wait in the outbox for a server that is not there.
    let days = [crate::chain::plus_days(crate::chain::today(), -3), crate::chain::plus_days(crate::chain::today(), -2)];
    crate::chain::simulate(&dir.path().join("events.sqlite"), &days, 1.0, 9);
    let (hook, bodies) = webhook_server();
    let dead = free_port();
    let config = format!(
        r#"
[store]
path = "events.sqlite"
retention_days = 0

[chain]
store = "store-9"
url = "host=127.0.0.1 port={dead} user=iobox_box_store_9 dbname=chain connect_timeout=2"
every_s = 1

[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[[alert]]
name = "head-office-behind"
kind = "sync_backlog"
above = 0
cooldown_s = 0

[[camera]]
name = "cam"
kind = "test"
width = 160
height = 120
fps = 5
"#
    );
    // A few seconds are enough: delivery is tried at the start, every second after, and once more at the
    // end, so the backlog has aged by the last try however fast the machine is.
    std::fs::write(dir.path().join("iobox.toml"), config).unwrap();
    let o = common::iobox(&["run", "--config", "iobox.toml", "--for", "3", "--json"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let chain = &report["chain"];
    assert_eq!(chain["store"], "store-9", "{report}");
    assert!(chain["backlog_rows"].as_u64().unwrap() > 20, "two days of figures wait: {chain}");
    assert!(chain["backlog_age_s"].as_f64().unwrap() > 0.0, "{chain}");
    assert_eq!(chain["rows_delivered"], 0, "{chain}");
    assert!(chain["last_error"].as_str().unwrap().contains("Connection refused"), "{chain}");
    assert!(log.contains("the outbox keeps every row"), "{log}");
    let (line, body) = bodies.recv_timeout(Duration::from_secs(10)).expect("the backlog alert reached the webhook");
    assert!(line.starts_with("POST /hook"), "{line}");
    let alert: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (alert["rule"].as_str(), alert["kind"].as_str(), alert["state"].as_str()),
        (Some("head-office-behind"), Some("sync_backlog"), Some("fired")),
        "{alert}"
    );
    assert!(alert["value"].as_f64().unwrap() > 0.0, "minutes behind: {alert}");
}
