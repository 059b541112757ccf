//! `iobox run`'s /metrics, /healthz and /readyz on a real listener, scraped while it runs a live test camera
//! beside an RTSP camera that is down.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common;

/// A plain HTTP/1.1 GET on 127.0.0.1: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The value of one series in the text format.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn metrics_and_health_say_which_camera_is_down_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("iobox.toml"),
        format!(
            "[store]\npath = \"events.sqlite\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [[camera]]\nname = \"cam\"\nkind = \"test\"\nwidth = 160\nheight = 120\nfps = 10\n\
             [[camera]]\nname = \"dead\"\nkind = \"rtsp\"\nuri = \"rtsp://127.0.0.1:{closed}/cam\"\nreconnect_max_s = 1\n"
        ),
    )
    .unwrap();
    let child = common::spawn_iobox(&["run", "--config", "iobox.toml", "--for", "600"], dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        assert!(Instant::now() < deadline, "no metrics of a running camera and a retried one in 120 s");
        if let Some((200, text)) = get(port, "/metrics")
            && value(&text, "iobox_camera_frames_processed_total{camera=\"cam\"}").unwrap_or(0.0) >= 5.0
            && value(&text, "iobox_camera_reconnects_total{camera=\"dead\"}").unwrap_or(0.0) >= 1.0
            && value(&text, "iobox_store_written_records_total").unwrap_or(0.0) > 0.0
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    for series in [
        "iobox_camera_up{camera=\"cam\"} 1",
        "iobox_camera_up{camera=\"dead\"} 0",
        "iobox_camera_frames_dropped_total{camera=\"cam\"}",
        "iobox_camera_queue_depth{camera=\"cam\"}",
        "iobox_camera_last_frame_timestamp_seconds{camera=\"cam\"}",
        "iobox_inference_seconds_bucket{model=\"face\",le=\"+Inf\"}",
        "iobox_store_batch_seconds_count",
        "iobox_store_pending_records",
        "iobox_database_bytes",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    assert!(text.contains("# TYPE iobox_inference_seconds histogram"), "{text}");
    let (code, body) = get(port, "/healthz").unwrap();
    assert_eq!(code, 503, "a camera is down: {body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["failing"], serde_json::json!(["camera 'dead'"]), "{health}");
    assert_eq!(health["cameras"]["cam"]["ok"], true, "{health}");
    assert_eq!(health["cameras"]["dead"]["state"], "reconnecting", "{health}");
    assert!(health["cameras"]["dead"]["problem"].as_str().unwrap().contains("camera 'dead'"), "{health}");
    assert_eq!(health["components"]["store"]["ok"], true, "{health}");
    let (code, body) = get(port, "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(get(port, "/nothing").unwrap().0, 404);
    // SAFETY: signalling our own child; SIGTERM is the clean stop.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(common::text(&out).contains(&format!("metrics and health at http://127.0.0.1:{port}/metrics")));
    assert!(get(port, "/metrics").is_none(), "the listener closes with the run");
}
