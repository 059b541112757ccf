//! Face blurring, in place, and the only way to make an [`AnonymizedFrame`].
//!
//! Every region handed to [`Anonymizer::anonymize`] (face boxes, heads found by the pose model, head
//! regions of detected people) is grown by a margin and blurred. A region seen in one frame stays blurred
//! for its own number of frames after it was last seen, growing a little each frame to follow motion: the
//! one- and two-frame misses of a detector are the classic way faces leak out of blurred video, and a
//! region found by a model that runs only every n-th frame must be held at least until that model runs
//! again (the worker sets each region's hold; see [`Region`]).

use serde::{Deserialize, Serialize};

use crate::capture::{Frame, FrameMeta, RgbView, RgbViewMut};
use crate::geometry::{BoxInImage, PixelRect};

/// How a region is made unrecognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BlurMethod {
    /// A strong gaussian blur (three box-blur passes).
    #[default]
    Gaussian,
    /// Large flat blocks.
    Pixelate,
    /// A solid grey fill.
    Solid,
}

#[derive(Debug, Clone, Copy)]
pub struct BlurConfig {
    pub method: BlurMethod,
    /// Fraction of the box's width and height added on each side before blurring.
    pub margin: f32,
    /// Frames a region stays blurred after it was last detected.
    pub hold_frames: u32,
    /// Blur radius as a fraction of the (grown) region's larger side, per pass; also the block size for
    /// pixelation.
    pub strength: f32,
}

impl Default for BlurConfig {
    fn default() -> Self {
        Self { method: BlurMethod::Gaussian, margin: 0.2, hold_frames: 5, strength: 0.125 }
    }
}

/// A frame in which every known face has been blurred. Only [`Anonymizer::anonymize`] makes one; every
/// path by which pixels leave the process (video files, stills, previews, overlays) takes this type.
pub struct AnonymizedFrame {
    frame: Frame,
    regions_blurred: usize,
}

impl AnonymizedFrame {
    pub fn view(&self) -> RgbView<'_> {
        self.frame.view()
    }

    pub fn meta(&self) -> &FrameMeta {
        &self.frame.meta
    }

    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    pub fn height(&self) -> u32 {
        self.frame.height()
    }

    /// Regions blurred in this frame (detections plus held-over ones).
    pub fn regions_blurred(&self) -> usize {
        self.regions_blurred
    }

    /// The blurred frame itself, for output sinks in `capture` that hand its buffer on without a copy.
    pub(crate) fn into_frame(self) -> Frame {
        self.frame
    }

    /// Writes the frame as a JPEG or PNG.
    pub fn save_image(&self, path: &std::path::Path) -> crate::capture::Result<()> {
        crate::capture::still::write(&self.view(), path)
    }
}

/// A region to blur in this frame, and for how many later frames it stays blurred if nothing is found
/// there again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub bbox: BoxInImage,
    pub hold_frames: u32,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    region: BoxInImage,
    frames_left: u32,
}

/// Blurs regions in place, remembering recent regions for the hold-over. One per camera.
pub struct Anonymizer {
    config: BlurConfig,
    held: Vec<Held>,
    next_held: Vec<Held>,
    regions_in: Vec<Region>,
    regions: Vec<PixelRect>,
    scratch: Scratch,
}

/// Detections overlapping a held region this much replace it.
const SAME_REGION_IOU: f32 = 0.3;
/// A held region grows by this fraction per side for each frame it is not seen.
const HOLD_GROWTH: f32 = 0.05;

impl Anonymizer {
    pub fn new(config: BlurConfig) -> Self {
        Self {
            config,
            held: Vec::new(),
            next_held: Vec::new(),
            regions_in: Vec::new(),
            regions: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Frames a detection stays blurred after it was last seen (`[blur] hold_frames`).
    pub fn hold_frames(&self) -> u32 {
        self.config.hold_frames
    }

    /// The pixel rectangles blurred in the last frame.
    pub fn last_regions(&self) -> &[PixelRect] {
        &self.regions
    }

    /// Blurs `detections` (plus regions held over from earlier frames) and returns the anonymized frame.
    /// Each detection stays held for `hold_frames` of the config.
    pub fn anonymize(&mut self, frame: Frame, detections: &[BoxInImage]) -> AnonymizedFrame {
        let hold = self.config.hold_frames;
        self.regions_in.clear();
        self.regions_in.extend(detections.iter().map(|&bbox| Region { bbox, hold_frames: hold }));
        let regions = std::mem::take(&mut self.regions_in);
        let out = self.anonymize_regions(frame, &regions);
        self.regions_in = regions;
        out
    }

    /// Blurs `regions`, each held for its own number of frames (never fewer than the config's
    /// `hold_frames`), plus the regions held over from earlier frames.
    pub fn anonymize_regions(&mut self, mut frame: Frame, regions: &[Region]) -> AnonymizedFrame {
        let (w, h) = (frame.width(), frame.height());
        self.next_held.clear();
        for r in regions {
            self.next_held.push(Held { region: r.bbox, frames_left: r.hold_frames.max(self.config.hold_frames) });
        }
        for held in &self.held {
            // Found again: a new region in the same place replaces the held one, unless the new one would
            // be let go sooner (a face box inside a head that the pose model must find again).
            let seen_again = regions.iter().any(|r| {
                (r.bbox.iou(&held.region) > SAME_REGION_IOU || r.bbox.contains(held.region.centre()))
                    && r.hold_frames.max(self.config.hold_frames) + 1 >= held.frames_left
            });
            if !seen_again && held.frames_left > 0 {
                self.next_held
                    .push(Held { region: held.region.expanded(HOLD_GROWTH), frames_left: held.frames_left - 1 });
            }
        }
        std::mem::swap(&mut self.held, &mut self.next_held);
        // Blur everything now held: this frame's detections and the unmatched regions of earlier frames.
        self.regions.clear();
        for held in &self.held {
            if let Some(rect) = held.region.expanded(self.config.margin).to_pixel_rect(w, h) {
                self.regions.push(rect);
            }
        }
        let mut view = frame.view_mut();
        for rect in &self.regions {
            match self.config.method {
                BlurMethod::Gaussian => {
                    let radius = radius_for(rect, self.config.strength);
                    for _ in 0..3 {
                        box_blur(&mut view, rect, radius, &mut self.scratch);
                    }
                }
                BlurMethod::Pixelate => pixelate(&mut view, rect, radius_for(rect, self.config.strength) * 2),
                BlurMethod::Solid => fill(&mut view, rect, [128, 128, 128]),
            }
        }
        AnonymizedFrame { frame, regions_blurred: self.regions.len() }
    }
}

fn radius_for(rect: &PixelRect, strength: f32) -> usize {
    ((rect.width.max(rect.height) as f32 * strength).round() as usize).max(2)
}

/// Line buffers reused by every blur pass.
#[derive(Default)]
struct Scratch {
    src: Vec<u8>,
    dst: Vec<u8>,
}

/// One box-blur pass over `rect`, horizontal then vertical, with edges clamped to the rectangle.
/// Three passes approximate a gaussian with sigma close to `radius`.
fn box_blur(view: &mut RgbViewMut<'_>, rect: &PixelRect, radius: usize, scratch: &mut Scratch) {
    let (rw, rh) = (rect.width as usize, rect.height as usize);
    let (x0, y0) = (rect.x as usize, rect.y as usize);
    let stride = view.stride;
    for y in y0..y0 + rh {
        let row = &mut view.data[y * stride + x0 * 3..][..rw * 3];
        scratch.src.clear();
        scratch.src.extend_from_slice(row);
        blur_line(&scratch.src, row, radius);
    }
    scratch.dst.resize(rh * 3, 0);
    for x in x0..x0 + rw {
        scratch.src.clear();
        for y in y0..y0 + rh {
            let i = y * stride + x * 3;
            scratch.src.extend_from_slice(&view.data[i..i + 3]);
        }
        blur_line(&scratch.src, &mut scratch.dst, radius);
        for (k, y) in (y0..y0 + rh).enumerate() {
            let i = y * stride + x * 3;
            view.data[i..i + 3].copy_from_slice(&scratch.dst[k * 3..k * 3 + 3]);
        }
    }
}

/// Box-blurs a line of RGB pixels from `src` into `dst` (moving sum, edges clamped).
fn blur_line(src: &[u8], dst: &mut [u8], radius: usize) {
    let n = src.len() / 3;
    if n == 0 {
        return;
    }
    let r = radius.min(n - 1) as isize;
    let window = (2 * r + 1) as u32;
    let last = n as isize - 1;
    let at = |i: isize, c: usize| src[i.clamp(0, last) as usize * 3 + c] as u32;
    let mut sums = [0u32; 3];
    for (c, sum) in sums.iter_mut().enumerate() {
        *sum = (-r..=r).map(|i| at(i, c)).sum();
    }
    for i in 0..n as isize {
        for (c, sum) in sums.iter_mut().enumerate() {
            dst[i as usize * 3 + c] = ((*sum + window / 2) / window) as u8;
            *sum = *sum + at(i + r + 1, c) - at(i - r, c);
        }
    }
}

fn pixelate(view: &mut RgbViewMut<'_>, rect: &PixelRect, block: usize) {
    let block = block.max(2) as u32;
    let stride = view.stride;
    let mut by = rect.y;
    while by < rect.y + rect.height {
        let bh = block.min(rect.y + rect.height - by);
        let mut bx = rect.x;
        while bx < rect.x + rect.width {
            let bw = block.min(rect.x + rect.width - bx);
            let mut sum = [0u32; 3];
            for y in by..by + bh {
                for x in bx..bx + bw {
                    let i = y as usize * stride + x as usize * 3;
                    for (c, total) in sum.iter_mut().enumerate() {
                        *total += view.data[i + c] as u32;
                    }
                }
            }
            let n = bw * bh;
            let mean = sum.map(|s| ((s + n / 2) / n) as u8);
            fill(view, &PixelRect { x: bx, y: by, width: bw, height: bh }, mean);
            bx += bw;
        }
        by += bh;
    }
}

fn fill(view: &mut RgbViewMut<'_>, rect: &PixelRect, colour: [u8; 3]) {
    let stride = view.stride;
    for y in rect.y..rect.y + rect.height {
        let start = y as usize * stride + rect.x as usize * 3;
        for px in view.data[start..start + rect.width as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&colour);
        }
    }
}
