//! A real RTSP server (gstreamer-rtsp-server, in this process, on 127.0.0.1) feeds `iobox run`; the server
//! goes away and comes back on the same port, and iobox reconnects while its other camera keeps running.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer_rtsp_server as rtsp;
use rtsp::glib;
use rtsp::prelude::*;

use crate::common;

struct Server {
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl Server {
    /// Serves the bundled clip (H.264, real time) at rtsp://127.0.0.1:PORT/cam; port 0 picks a free one.
    fn start(port: u16) -> Server {
        Self::start_kicking(port, None)
    }

    /// [`Server::start`], closing every client's connection every `kick` (a camera that keeps dropping).
    fn start_kicking(port: u16, kick: Option<Duration>) -> Server {
        iobox::capture::init().unwrap();
        let clip = common::sample_clip();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ctx = glib::MainContext::new();
            let main_loop = glib::MainLoop::new(Some(&ctx), false);
            ctx.with_thread_default(|| {
                let server = rtsp::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service(&port.to_string());
                let factory = rtsp::RTSPMediaFactory::new();
                factory.set_launch(&format!(
                    "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )",
                    clip.display()
                ));
                factory.set_shared(true);
                server.mount_points().unwrap().add_factory("/cam", factory);
                let source = server.attach(Some(&ctx)).expect("RTSP server attaches");
                if let Some(every) = kick {
                    let s = server.clone();
                    let kicker = glib::timeout_source_new(every, None, glib::Priority::DEFAULT, move || {
                        s.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
                        glib::ControlFlow::Continue
                    });
                    kicker.attach(Some(&ctx));
                }
                tx.send((server.bound_port() as u16, main_loop.clone())).unwrap();
                main_loop.run();
                // Going away: close every client connection and the listening socket.
                server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
                if let Some(s) = ctx.find_source_by_id(&source) {
                    s.destroy();
                }
                while ctx.iteration(false) {}
            })
            .unwrap();
        });
        let (port, main_loop) = rx.recv_timeout(Duration::from_secs(10)).expect("server started");
        Server { main_loop, thread: Some(thread), port }
    }

    fn stop(mut self) {
        self.main_loop.quit();
        self.thread.take().unwrap().join().unwrap();
    }
}

fn frames(db: &Path, camera: &str, from: i64, to: i64) -> i64 {
    match iobox::store::open_ro(db) {
        Ok(conn) => iobox::store::frames_between(&conn, db, camera, from, to).unwrap_or(0),
        Err(_) => 0,
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn iobox_reconnects_to_an_rtsp_camera_that_goes_away_and_comes_back() {
    let server = Server::start(0);
    let port = server.port;
    assert_ne!(port, 0);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    std::fs::write(
        dir.path().join("iobox.toml"),
        format!(
            "[store]\npath = \"events.sqlite\"\n\
             [[camera]]\nname = \"ipcam\"\nkind = \"rtsp\"\nuri = \"rtsp://127.0.0.1:{port}/cam\"\n\
             connect_timeout_s = 10\nstall_timeout_s = 3\nreconnect_max_s = 1\n\
             [[camera]]\nname = \"other\"\nkind = \"test\"\nwidth = 160\nheight = 120\nfps = 10\n"
        ),
    )
    .unwrap();
    let start = iobox::store::writer::now_ms();
    // Stopped by the test when it has seen what it waits for (waits are for events, not for seconds).
    let child = common::spawn_iobox(&["run", "--config", "iobox.toml", "--for", "600", "--json"], dir.path());

    wait_for("frames from the RTSP camera", Duration::from_secs(120), || frames(&db, "ipcam", start, i64::MAX) >= 20);
    server.stop();
    let down = iobox::store::writer::now_ms();
    // The camera stays away until the other camera has shown that it runs on without it.
    wait_for("the other camera during the outage", Duration::from_secs(120), || {
        frames(&db, "other", down, i64::MAX) >= 20
    });
    let server = Server::start(port);
    let up = iobox::store::writer::now_ms();
    wait_for("frames after the camera came back", Duration::from_secs(120), || {
        frames(&db, "ipcam", up, i64::MAX) >= 20
    });
    server.stop();
    // SAFETY: signalling our own child; SIGTERM is iobox's clean stop (the report is printed).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };

    let out = child.wait_with_output().unwrap();
    let log = common::text(&out);
    assert!(out.status.success(), "{log}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cam = |n: &str| report["cameras"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    assert!(cam("ipcam")["reconnects"].as_u64().unwrap() >= 1, "{report}");
    let during_outage = frames(&db, "other", down, up);
    println!(
        "ipcam: {} frames before, {} after; other camera during the outage: {during_outage}",
        frames(&db, "ipcam", start, down),
        frames(&db, "ipcam", up, i64::MAX)
    );
    assert!(during_outage >= 20, "the other camera kept running during the outage: {during_outage} frames");
    assert!(log.contains("camera 'ipcam'") && log.contains("reconnecting"), "{log}");
}

/// Resident memory of a process (`VmRSS`), in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[test]
fn a_hundred_reconnects_do_not_grow_memory() {
    use std::io::BufRead;
    // The camera drops every connection after a second and a half; iobox reconnects each time.
    let server = Server::start_kicking(0, Some(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("iobox.toml"),
        format!(
            "[store]\npath = \"events.sqlite\"\n\
             [[camera]]\nname = \"ipcam\"\nkind = \"rtsp\"\nuri = \"rtsp://127.0.0.1:{}/cam\"\n\
             connect_timeout_s = 10\nstall_timeout_s = 2\nreconnect_max_s = 1\n",
            server.port
        ),
    )
    .unwrap();
    let mut child = common::spawn_iobox(&["run", "--config", "iobox.toml", "--for", "900"], dir.path());
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    std::thread::spawn(move || {
        let mut n = 0;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("reconnecting in") {
                n += 1;
                let _ = tx.send(n);
            }
        }
    });
    let wait_until = |target: usize| {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(n) if n >= target => return,
                Ok(_) => {}
                Err(e) => panic!("iobox stopped reconnecting before {target}: {e}"),
            }
            assert!(Instant::now() < deadline, "no {target} reconnects in 10 minutes");
        }
    };
    // Warm up (decoders, thread pools and allocator arenas reach their working size), then 80 more.
    wait_until(20);
    let warm = rss_mib(pid);
    wait_until(100);
    let after = rss_mib(pid);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    server.stop();
    let per_reconnect = (after - warm) / 80.0;
    println!("RSS after 20 reconnects {warm:.1} MiB, after 100 {after:.1} MiB: {per_reconnect:.3} MiB per reconnect");
    assert!(warm > 0.0 && after > 0.0);
    assert!(
        per_reconnect < 0.1,
        "memory grew {per_reconnect:.3} MiB per reconnect ({warm:.1} -> {after:.1} MiB over 80); exit {:?}",
        out.status
    );
}
