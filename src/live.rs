//! What a running appliance shares with the dashboard in the same process (`iobox run --serve`): the latest
//! anonymized still of each camera and the most recent alerts.
//!
//! A [`Still`] is made only from an [`AnonymizedFrame`] (or read back from the run's own snapshot file,
//! itself written from one), so the dashboard's previews and calibration overlays can show no other pixels.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::alerts::Alert;
use crate::anonymize::AnonymizedFrame;

/// Quality of the preview JPEGs (they are small and refreshed every few seconds).
const JPEG_QUALITY: u8 = 80;
/// Alerts kept for the dashboard.
const RECENT_ALERTS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("preview: {0}")]
    Encode(String),
    #[error("snapshot {path}: {message}")]
    Snapshot { path: std::path::PathBuf, message: String },
}

/// One anonymized picture of a camera, as JPEG.
#[derive(Clone)]
pub struct Still {
    jpeg: Arc<[u8]>,
    width: u32,
    height: u32,
    /// When it was taken (ms since the epoch; for a file source, the file's clock).
    at_ms: i64,
}

impl std::fmt::Debug for Still {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Still({}x{}, {} bytes, at {})", self.width, self.height, self.jpeg.len(), self.at_ms)
    }
}

impl Still {
    /// Encodes an anonymized frame as JPEG.
    pub fn from_anonymized(frame: &AnonymizedFrame, at_ms: i64) -> Result<Still, Error> {
        let image = frame.view().to_rgb_image();
        let mut out = Vec::with_capacity(64 * 1024);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&image)
            .map_err(|e| Error::Encode(e.to_string()))?;
        Ok(Still { jpeg: out.into(), width: image.width(), height: image.height(), at_ms })
    }

    /// Reads the snapshot `iobox run` writes from anonymized frames (`[output] snapshot`). The path comes
    /// from the config, never from a request. A PNG snapshot is re-encoded as JPEG.
    pub fn from_snapshot(path: &Path) -> Result<Still, Error> {
        let err = |message: String| Error::Snapshot { path: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let image = crate::capture::still::decode_image(&bytes, path).map_err(|e| err(e.to_string()))?;
        let jpeg: Arc<[u8]> = if bytes.starts_with(&[0xFF, 0xD8]) {
            bytes.into()
        } else {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&image)
                .map_err(|e| err(e.to_string()))?;
            out.into()
        };
        Ok(Still { jpeg, width: image.width(), height: image.height(), at_ms: modified })
    }

    pub fn jpeg(&self) -> &[u8] {
        &self.jpeg
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    /// The pixels, for drawing an overlay on.
    pub(crate) fn decode(&self) -> Result<image::RgbImage, Error> {
        image::ImageReader::with_format(Cursor::new(&self.jpeg[..]), image::ImageFormat::Jpeg)
            .decode()
            .map(|i| i.to_rgb8())
            .map_err(|e| Error::Encode(e.to_string()))
    }
}

/// The shared state: written by the run's workers and alert engines, read by the dashboard.
pub struct Live {
    previews: RwLock<HashMap<String, Still>>,
    alerts: Mutex<VecDeque<Alert>>,
    /// How often a worker makes a new still of each camera.
    pub preview_every: Duration,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("preview_every", &self.preview_every).finish_non_exhaustive()
    }
}

impl Live {
    pub fn new(preview_every: Duration) -> Arc<Live> {
        Arc::new(Live { previews: RwLock::default(), alerts: Mutex::default(), preview_every })
    }

    pub fn set_preview(&self, camera: &str, still: Still) {
        self.previews.write().unwrap_or_else(|e| e.into_inner()).insert(camera.to_string(), still);
    }

    pub fn preview(&self, camera: &str) -> Option<Still> {
        self.previews.read().unwrap_or_else(|e| e.into_inner()).get(camera).cloned()
    }

    /// Keeps an alert (the newest [`RECENT_ALERTS`]).
    pub fn push_alert(&self, alert: &Alert) {
        let mut a = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        if a.len() == RECENT_ALERTS {
            a.pop_front();
        }
        a.push_back(alert.clone());
    }

    /// The recent alerts, newest first.
    pub fn recent_alerts(&self) -> Vec<Alert> {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().cloned().collect()
    }
}
