//! The privacy fence, tried as a hostile integrator would: a camera config cannot make iobox write or send
//! raw video.

use std::path::Path;

use crate::common;

/// Files in `dir` (recursively) whose names start with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_named(&path, prefix));
        } else if entry.file_name().to_string_lossy().starts_with(prefix) {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn a_custom_template_that_tees_raw_frames_to_files_is_refused() {
    // The hole as reported: a tee beside iobox's appsink writing unblurred JPEGs. `config check` and
    // `run` refuse it, naming the template and the element, and nothing is written.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my.gst"),
        "uridecodebin name=source ! videoconvert ! tee name=t ! queue ! videoconvert ! capsfilter name=size caps=video/x-raw,format=RGB ! appsink name=frames t. ! queue leaky=downstream ! videoconvert ! jpegenc ! multifilesink location=raw-%05d.jpg",
    )
    .unwrap();
    let config = format!(
        "[store]\npath = \"x.sqlite\"\n[[camera]]\nname = \"door\"\nkind = \"file\"\nuri = \"{}\"\npipeline = \"my.gst\"\n",
        common::sample_clip().display()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    for args in [&["config", "check", "c.toml"][..], &["run", "--config", "c.toml", "--for", "3"]] {
        let o = common::iobox(args, dir.path());
        let t = common::text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(t.contains("my.gst") && t.contains("`t`") && t.contains("tee") && t.contains("not allowed"), "{t}");
    }
    assert_eq!(files_named(dir.path(), "raw-"), Vec::<String>::new());
}

#[test]
fn a_camera_uri_cannot_add_elements_to_the_pipeline() {
    // The injection as reported: a uri that closes the quote and adds a file sink. The uri is the
    // rtspsrc's location, all of it: the camera is unreachable and retried, and no file is written.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!(
        "rtsp://127.0.0.1:{port}/cam\\\" protocols=tcp ! rtph264depay ! h264parse ! filesink location=raw.h264 rtspsrc location=\\\"rtsp://127.0.0.1:{port}/x"
    );
    let config = format!(
        "[store]\npath = \"x.sqlite\"\n[[camera]]\nname = \"door\"\nkind = \"rtsp\"\nuri = \"{uri}\"\nreconnect_max_s = 1\n"
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let o = common::iobox(&["config", "check", "c.toml"], dir.path());
    let t = common::text(&o);
    assert!(o.status.success(), "{t}");
    // The check prints the template untouched and the uri as one value.
    assert!(
        t.contains("rtspsrc name=source")
            && t.contains("source uri")
            && !t.contains("filesink location=raw.h264 rtspsrc location=\"rtsp"),
        "{t}"
    );
    let o = common::iobox(&["run", "--config", "c.toml", "--for", "3"], dir.path());
    assert!(common::text(&o).contains("camera 'door'"), "{}", common::text(&o));
    assert_eq!(files_named(dir.path(), "raw"), Vec::<String>::new());
}

/// Runs iobox under `umask 000` (the most permissive a service manager could leave), in `cwd`.
fn iobox_with_open_umask(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_iobox"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn everything_iobox_writes_is_readable_by_its_own_user_only() {
    let dir = tempfile::tempdir().unwrap();
    // A photo blurred into a new folder, and a run with its database, recording and snapshot.
    let photo = common::root().join("tests/data/empty_room.jpg");
    let o = iobox_with_open_umask(&["blur", photo.to_str().unwrap(), "photos/out.jpg", "-q"], dir.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let config = common::sample_config(dir.path(), "");
    let o = iobox_with_open_umask(
        &["run", "--config", config.to_str().unwrap(), "--for", "4", "--record", "videos/{camera}.mkv"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let o = iobox_with_open_umask(
        &["export", "--config", config.to_str().unwrap(), "--format", "csv", "--out", "exports"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let mut checked = 0;
    for folder in ["photos", "videos", "snapshots", "exports"] {
        let folder = dir.path().join(folder);
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
        for f in std::fs::read_dir(&folder).unwrap().flatten() {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
            checked += 1;
        }
    }
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("sample.sqlite") {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} files checked");
}
