//! Raw pixels for tests and benchmarks, behind the `raw-pixels` feature (never on in the iobox binary).
//!
//! Without this module nothing outside the crate can read a captured [`Frame`]'s pixels or make an
//! [`AnonymizedFrame`] other than through the worker ([`crate::worker::Perception::process`]) and the
//! blur jobs: tests compare frames before and after the blur, and benchmarks time the models on raw frames.

use crate::anonymize::{AnonymizedFrame, Anonymizer, Region};
use crate::capture::{Frame, RgbView};
use crate::geometry::BoxInImage;

/// A frame's raw pixels.
pub trait RawPixels {
    fn raw_view(&self) -> RgbView<'_>;
    /// A packed copy of the raw pixels.
    fn raw_image(&self) -> image::RgbImage {
        self.raw_view().to_rgb_image()
    }
}

impl RawPixels for Frame {
    fn raw_view(&self) -> RgbView<'_> {
        self.view()
    }
}

/// Blurs `boxes` (and what the anonymizer holds over) outside the worker's path.
pub fn anonymize(anonymizer: &mut Anonymizer, frame: Frame, boxes: &[BoxInImage]) -> AnonymizedFrame {
    let hold_frames = anonymizer.hold_frames();
    let regions: Vec<Region> = boxes.iter().map(|&bbox| Region { bbox, hold_frames }).collect();
    anonymizer.anonymize_regions(frame, &regions)
}
