//! Still images in and out (JPEG and PNG), for `iobox blur photo.jpg out.jpg` and for pictures.

use std::path::Path;

use super::{Error, Frame, FrameMeta, Result, RgbView};

/// Is this path an image we read as a still rather than as a video?
pub fn is_image_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// The largest image iobox decodes: a side of 16384 pixels, and 512 MiB of decoder memory. A larger one
/// (a 20000x20000 PNG is 1.2 GB of pixels) is refused before it is decoded.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
const MAX_IMAGE_ALLOC: u64 = 512 << 20;

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    limits
}

/// Decodes a JPEG or PNG file within the size limits, as packed RGB.
pub fn open_image(path: &Path) -> Result<image::RgbImage> {
    let err = |message: String| Error::Image { path: path.to_path_buf(), message };
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    reader.limits(limits());
    Ok(reader.decode().map_err(|e| err(e.to_string()))?.to_rgb8())
}

/// Decodes JPEG or PNG bytes within the size limits; `what` names them in errors.
pub fn decode_image(bytes: &[u8], what: &Path) -> Result<image::RgbImage> {
    let err = |message: String| Error::Image { path: what.to_path_buf(), message };
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| err(e.to_string()))?;
    reader.limits(limits());
    Ok(reader.decode().map_err(|e| err(e.to_string()))?.to_rgb8())
}

/// Reads a JPEG or PNG into a frame of camera 0.
pub fn read(path: &Path) -> Result<Frame> {
    let img = open_image(path)?;
    let meta = FrameMeta { camera: 0, seq: 0, pts: None, captured: std::time::Duration::ZERO, fps: None };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_over_the_size_limit_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let wide = dir.path().join("wide.png");
        image::RgbImage::new(MAX_IMAGE_SIDE + 1, 1).save(&wide).unwrap();
        let e = read(&wide).err().expect("refused").to_string();
        assert!(e.contains("wide.png") && e.to_lowercase().contains("limit"), "{e}");
        let bytes = std::fs::read(&wide).unwrap();
        assert!(decode_image(&bytes, &wide).is_err());
        // At the limit it is read.
        let ok = dir.path().join("ok.png");
        image::RgbImage::new(MAX_IMAGE_SIDE, 1).save(&ok).unwrap();
        assert_eq!(read(&ok).unwrap().width(), MAX_IMAGE_SIDE);
    }
}
