//! What `iobox doctor` asks of capture: the GStreamer elements iobox's pipelines use, and whether each
//! camera can be reached, without starting it.

use std::net::ToSocketAddrs;
use std::time::Duration;

use gstreamer as gst;

use super::{SourceKind, SourceSpec};

/// GStreamer elements and what needs them (package hints for Debian).
const ELEMENTS: &[(&str, &str, &str)] = &[
    ("filesrc", "files", "gstreamer1.0-plugins-base"),
    ("decodebin", "files and cameras", "gstreamer1.0-plugins-base"),
    ("videoconvert", "every camera", "gstreamer1.0-plugins-base"),
    ("videoscale", "every camera", "gstreamer1.0-plugins-base"),
    ("appsink", "every camera", "gstreamer1.0-plugins-base"),
    ("appsrc", "recordings", "gstreamer1.0-plugins-base"),
    ("videotestsrc", "test cameras", "gstreamer1.0-plugins-base"),
    ("rtspsrc", "RTSP cameras", "gstreamer1.0-plugins-good"),
    ("rtph264depay", "RTSP cameras (H.264)", "gstreamer1.0-plugins-good"),
    ("v4l2src", "V4L2 cameras", "gstreamer1.0-plugins-good"),
    ("avdec_h264", "H.264 decoding", "gstreamer1.0-libav"),
    ("x264enc", "recordings", "gstreamer1.0-plugins-ugly"),
    ("matroskamux", "recordings (.mkv)", "gstreamer1.0-plugins-good"),
    ("mp4mux", "recordings (.mp4)", "gstreamer1.0-plugins-good"),
];

/// Elements that are missing: (element, what needs it, the package that has it).
pub fn missing_elements() -> Result<Vec<(&'static str, &'static str, &'static str)>, String> {
    gst::init().map_err(|e| format!("GStreamer does not start: {e}"))?;
    Ok(ELEMENTS.iter().copied().filter(|(name, _, _)| gst::ElementFactory::find(name).is_none()).collect())
}

/// The GStreamer version.
pub fn gstreamer_version() -> String {
    gst::version_string().to_string()
}

/// Whether the camera can be reached now: `Ok(what was found)` or `Err(what to fix)`.
pub fn reach(spec: &SourceSpec, timeout: Duration) -> Result<String, String> {
    match spec.kind {
        SourceKind::File => {
            let path = std::path::Path::new(&spec.uri);
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() => Ok(format!("{} ({} MiB)", path.display(), m.len() / 1_048_576)),
                Ok(_) => Err(format!("{} is not a file", path.display())),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        }
        SourceKind::Rtsp => {
            let rest = spec.uri.split_once("://").map_or(spec.uri.as_str(), |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                hostport.to_string()
            } else {
                format!("{hostport}:554")
            };
            let addrs: Vec<_> = with_port
                .to_socket_addrs()
                .map_err(|e| format!("{with_port}: cannot resolve ({e}): check the camera's address in its uri"))?
                .collect();
            let mut last = String::from("no address");
            for a in addrs {
                match std::net::TcpStream::connect_timeout(&a, timeout) {
                    Ok(_) => return Ok(format!("{a} answers")),
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            Err(format!("{last}: is the camera on, on this network, and its RTSP port open?"))
        }
        SourceKind::V4l2 => {
            let dev = if spec.uri.is_empty() { "/dev/video0" } else { spec.uri.as_str() };
            device(dev)
        }
        SourceKind::Usb => device(&format!("/dev/video{}", spec.uri.trim())),
        SourceKind::Test => Ok("a test pattern (videotestsrc)".into()),
    }
}

fn device(path: &str) -> Result<String, String> {
    match std::fs::OpenOptions::new().read(true).open(path) {
        Ok(_) => Ok(format!("{path} opens")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(format!("{path}: permission denied: add the iobox user to the 'video' group"))
        }
        Err(e) => Err(format!("{path}: {e}: is the camera plugged in?")),
    }
}
