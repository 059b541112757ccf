//! What the worker does to each frame: find faces on the raw frame, then blur them. Later stages (pose,
//! emotion, tracking) join here; the raw frame never leaves this module except as an `AnonymizedFrame`.

use crate::anonymize::{AnonymizedFrame, Anonymizer};
use crate::capture::Frame;
use crate::geometry::BoxInImage;
use crate::infer::face::{Face, FaceDetector};
use crate::stats::Ring;

/// Per-stage times of the worker.
#[derive(Debug, Default, Clone)]
pub struct StageTimes {
    pub face: Ring,
    /// Blur time of frames in which something was blurred.
    pub blur: Ring,
}

/// The models and reused buffers one worker owns.
pub struct Perception {
    pub detector: FaceDetector,
    faces: Vec<Face>,
    regions: Vec<BoxInImage>,
    pub times: StageTimes,
}

/// The outcome of one frame.
pub struct Processed {
    pub frame: AnonymizedFrame,
    pub faces_detected: usize,
}

impl Perception {
    pub fn new(detector: FaceDetector) -> Self {
        Self { detector, faces: Vec::new(), regions: Vec::new(), times: StageTimes::default() }
    }

    /// Faces found in the last processed frame.
    pub fn faces(&self) -> &[Face] {
        &self.faces
    }

    /// Detects faces and blurs them. On a detector failure the frame is dropped, not passed on unblurred.
    pub fn process(&mut self, frame: Frame, anonymizer: &mut Anonymizer) -> Result<Processed, crate::infer::Error> {
        let t = std::time::Instant::now();
        self.detector.detect(&frame.view(), &mut self.faces)?;
        self.times.face.push(t.elapsed());
        self.regions.clear();
        self.regions.extend(self.faces.iter().map(|f| f.bbox));
        let t = std::time::Instant::now();
        let frame = anonymizer.anonymize(frame, &self.regions);
        if frame.regions_blurred() > 0 {
            self.times.blur.push(t.elapsed());
        }
        Ok(Processed { frame, faces_detected: self.faces.len() })
    }
}
