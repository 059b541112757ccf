//! Still images in and out (JPEG and PNG), for `iobox blur photo.jpg out.jpg` and for pictures.

use std::path::Path;
use std::time::SystemTime;

use super::{Error, Frame, FrameMeta, Result, RgbView};

/// Is this path an image we read as a still rather than as a video?
pub fn is_image_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Reads a JPEG or PNG into a frame of camera 0.
pub fn read(path: &Path) -> Result<Frame> {
    let img =
        image::open(path).map_err(|e| Error::Image { path: path.to_path_buf(), message: e.to_string() })?.to_rgb8();
    let meta = FrameMeta { camera: 0, seq: 0, pts: None, captured_at: SystemTime::now(), fps: None };
    Ok(Frame::from_rgb_image(&img, meta))
}

/// Writes pixels as JPEG or PNG (by extension). Callers pass the view of an anonymized frame, or a picture
/// drawn over one.
pub(crate) fn write(view: &RgbView<'_>, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Output {
            path: path.to_path_buf(),
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    view.to_rgb_image().save(path).map_err(|e| Error::Output { path: path.to_path_buf(), message: e.to_string() })
}
