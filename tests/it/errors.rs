//! Bad input gets a clear error naming the file, field or camera, and a non-zero exit where iobox
//! cannot go on; one bad camera never stops the others.

use std::path::Path;

use crate::common;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn camera_config(extra: &str) -> String {
    format!("{extra}\n[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\n", common::sample_clip().display())
}

#[test]
fn a_missing_video_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::iobox(&["blur", "no/such/clip.mp4", "out.mp4"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(t.contains("no/such/clip.mp4") && t.contains("does not exist"), "{t}");
}

#[test]
fn a_corrupt_video_names_the_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // The first 64 KiB of the real clip, then garbage: a typical interrupted copy.
    let mut bytes = std::fs::read(common::sample_clip()).unwrap();
    bytes.truncate(65_536);
    bytes.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(dir.path().join("broken.mp4"), bytes).unwrap();
    let o = common::iobox(&["blur", "broken.mp4", "out.mp4", "-q"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    let t = common::text(&o);
    assert!(t.contains("broken.mp4"), "{t}");
}

#[test]
fn a_malformed_config_names_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.toml",
        "[store]\npath = \"x.sqlite\"\n[[camera]]\nname = \"door\"\nkind = \"rtsp\"\nuri = \"rtsp://x\"\nfps = \"ten\"\n",
    );
    let o = common::iobox(&["run", "--config", "bad.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(t.contains("bad.toml") && t.contains("line 7") && t.contains("fps"), "{t}");

    write(dir.path(), "bad2.toml", "[[camera]]\nname = \"door\"\nkind = \"webcam\"\n");
    let t = common::text(&common::iobox(&["run", "--config", "bad2.toml"], dir.path()));
    assert!(t.contains("line 3") && t.contains("webcam") && t.contains("rtsp"), "{t}");

    write(dir.path(), "bad3.toml", &camera_config("[blur]\nhold_frames = 100000"));
    let o = common::iobox(&["run", "--config", "bad3.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(common::text(&o).contains("blur.hold_frames"), "{}", common::text(&o));
}

#[test]
fn a_truncated_bundled_model_is_refused_with_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for f in ["movenet_multipose.onnx", "fer_mini_xception.onnx"] {
        std::fs::copy(common::root().join("models").join(f), models.join(f)).unwrap();
    }
    let face = std::fs::read(common::root().join("models/retinaface_mnet025.onnx")).unwrap();
    std::fs::write(models.join("retinaface_mnet025.onnx"), &face[..face.len() / 2]).unwrap();
    write(dir.path(), "c.toml", &camera_config("[models]\ndir = \"models\""));
    let o = common::iobox(&["run", "--config", "c.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(t.contains("retinaface_mnet025.onnx") && t.contains("sha256") && t.contains("expected"), "{t}");
}

#[test]
fn a_truncated_replacement_model_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let face = std::fs::read(common::root().join("models/retinaface_mnet025.onnx")).unwrap();
    std::fs::write(dir.path().join("my-face.onnx"), &face[..10_000]).unwrap();
    write(dir.path(), "c.toml", &camera_config("[models]\nface = \"my-face.onnx\""));
    let o = common::iobox(&["run", "--config", "c.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(t.contains("my-face.onnx") && t.contains("could not be loaded"), "{t}");
}

#[test]
fn a_model_with_the_wrong_inputs_is_refused_with_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = common::root().join("models/fer_mini_xception.onnx");
    write(dir.path(), "c.toml", &camera_config(&format!("[models]\nface = \"{}\"", wrong.display())));
    let o = common::iobox(&["run", "--config", "c.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(
        t.contains("fer_mini_xception.onnx")
            && t.contains("face detector")
            && t.contains("expected input 'input' float32 [B,3,H,W]")
            && t.contains("found 'input' float32 [?,64,64,1]"),
        "{t}"
    );
}

#[test]
fn an_unreachable_camera_is_retried_and_never_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = camera_config(&format!(
        "[[camera]]\nname = \"dead\"\nkind = \"rtsp\"\nuri = \"rtsp://127.0.0.1:{closed_port}/cam\"\nreconnect_max_s = 1\n\
         [[camera]]\nname = \"usb\"\nkind = \"usb\"\nuri = \"7\"\nreconnect_max_s = 1\n"
    ));
    write(dir.path(), "c.toml", &config);
    let o = common::iobox(&["run", "--config", "c.toml", "--for", "6", "--json"], dir.path());
    let t = common::text(&o);
    assert!(o.status.success(), "live cameras that are down are retried, not fatal: {t}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cam = |n: &str| report["cameras"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    // The file camera beside them runs: it processed frames and has no error. (How many frames fit in the
    // run's seconds depends on the machine's speed, so that is not asserted.)
    let sample = cam("sample");
    assert!(sample["frames_processed"].as_u64().unwrap() > 0 && sample["error"].is_null(), "{report}");
    let dead = cam("dead");
    assert_eq!(dead["frames_processed"], 0);
    assert!(dead["reconnects"].as_u64().unwrap() >= 1, "{report}");
    let problem = dead["last_problem"].as_str().unwrap();
    assert!(problem.contains("camera 'dead'"), "{problem}");
    let usb = cam("usb");
    assert!(usb["last_problem"].as_str().unwrap().contains("/dev/video7"), "{report}");
    assert!(t.contains("camera 'dead'") && t.contains("reconnecting"), "the log says what is wrong: {t}");
}

#[test]
fn a_binary_without_onnx_runtime_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("iobox");
    std::fs::copy(env!("CARGO_BIN_EXE_iobox"), &exe).unwrap();
    let o = std::process::Command::new(&exe)
        .args(["blur", "in.jpg", "out.jpg"])
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("IOBOX_HOME")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = common::text(&o);
    assert!(
        t.contains("ONNX Runtime shared library not found") && t.contains("make setup") && t.contains("ORT_DYLIB_PATH"),
        "{t}"
    );
}

#[test]
fn stdout_closed_early_ends_quietly_and_a_full_disk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A reader that goes away before iobox writes (`iobox config default | true`).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["config", "default"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked") && err.trim().is_empty(), "{err}");
    // Standard output on a full disk.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_iobox"))
        .args(["config", "default"])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to standard output") && !err.contains("panicked"), "{err}");
}

#[test]
fn numbers_out_of_range_in_a_config_or_calibration_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, field) in [
        ("width = 4294967295\nheight = 720", "width"),
        ("fps = 4294967295", "fps"),
        ("connect_timeout_s = 1e308", "connect_timeout_s"),
        ("stall_timeout_s = 1e308", "stall_timeout_s"),
    ] {
        let config = format!(
            "[[camera]]\nname = \"sample\"\nkind = \"file\"\nuri = \"{}\"\n{extra}\n",
            common::sample_clip().display()
        );
        write(dir.path(), "c.toml", &config);
        let o = common::iobox(&["config", "check", "c.toml"], dir.path());
        let t = common::text(&o);
        assert_eq!(o.status.code(), Some(1), "{extra}: {t}");
        assert!(t.contains(field) && t.contains("between") && !t.contains("panicked"), "{extra}: {t}");
    }
    let good = std::fs::read_to_string(common::root().join("calibration/sample.toml")).unwrap();
    for (from, to, field) in [
        ("pixels_per_metre = ", "pixels_per_metre = 1e30 #", "pixels_per_metre"),
        ("floor = [", "floor = [99999999999, 1.69] #", "floor"),
    ] {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good, "{from} is in the sample calibration");
        write(dir.path(), "cal.toml", &bad);
        let o = common::iobox(&["calibrate", "check", "cal.toml"], dir.path());
        let t = common::text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains(field) && t.contains("cal.toml"), "{t}");
    }
}

#[test]
fn doctor_says_which_camera_cannot_be_reached_and_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = camera_config(&format!(
        "[[camera]]\nname = \"dead\"\nkind = \"rtsp\"\nuri = \"rtsp://user:pw@127.0.0.1:{closed}/cam\"\n\
         [[camera]]\nname = \"gone\"\nkind = \"file\"\nuri = \"nowhere.mp4\"\n"
    ));
    write(dir.path(), "c.toml", &config);
    let o = common::iobox(&["doctor", "--config", "c.toml"], dir.path());
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("ok    gstreamer") && t.contains("ok    onnxruntime") && t.contains("ok    camera 'sample'"),
        "{t}"
    );
    assert!(t.contains("FAIL  camera 'dead'") && t.contains("Connection refused"), "{t}");
    assert!(!t.contains("user:pw"), "no camera password in the output: {t}");
    assert!(t.contains("FAIL  camera 'gone'") && t.contains("nowhere.mp4"), "{t}");
    assert!(t.contains("fix:") && t.contains("2 checks failed"), "{t}");
    let o = common::iobox(&["doctor", "--config", "c.toml", "--json"], dir.path());
    let checks: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let failed: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["camera 'dead'", "camera 'gone'"], "{checks}");
}
