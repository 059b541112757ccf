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

/// A frame in which every known face has been blurred. Only [`Anonymizer`] makes one (in the worker's path); every
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
    regions: Vec<PixelRect>,
    scratch: Scratch,
}

/// A new region that covers at least this share of a held region's area replaces it (the same face found
/// again, a little moved). A smaller region inside a held one (a face box inside a person's head region)
/// never replaces it: the held region stays blurred for its own hold.
const REPLACES_HELD: f32 = 0.8;
/// A held region grows by this fraction per side for each frame it is not seen.
const HOLD_GROWTH: f32 = 0.05;
/// [`Anonymizer::held_after`] stops growing after this many frames (a region held for long covers much of
/// the frame by then).
const MAX_HELD_GROWTH_STEPS: u32 = 64;

impl Anonymizer {
    pub fn new(config: BlurConfig) -> Self {
        Self { config, held: Vec::new(), next_held: Vec::new(), regions: Vec::new(), scratch: Scratch::default() }
    }

    /// The region `bbox` becomes when it has been held for `frames` frames without being found again.
    pub fn held_after(bbox: BoxInImage, frames: u32) -> BoxInImage {
        (0..frames.min(MAX_HELD_GROWTH_STEPS)).fold(bbox, |b, _| b.expanded(HOLD_GROWTH))
    }

    /// Frames a detection stays blurred after it was last seen (`[blur] hold_frames`).
    pub fn hold_frames(&self) -> u32 {
        self.config.hold_frames
    }

    /// The pixel rectangles blurred in the last frame.
    pub fn last_regions(&self) -> &[PixelRect] {
        &self.regions
    }

    /// Blurs `regions`, each held for its own number of frames (never fewer than the config's
    /// `hold_frames`), plus the regions held over from earlier frames.
    pub(crate) fn anonymize_regions(&mut self, mut frame: Frame, regions: &[Region]) -> AnonymizedFrame {
        let (w, h) = (frame.width(), frame.height());
        self.next_held.clear();
        for r in regions {
            self.next_held.push(Held { region: r.bbox, frames_left: r.hold_frames.max(self.config.hold_frames) });
        }
        for held in &self.held {
            // Found again: a new region that covers the held one replaces it, unless the new one would be
            // let go sooner (a face box inside a head that the pose model must find again).
            let seen_again = regions.iter().any(|r| {
                r.bbox.intersection(&held.region) >= REPLACES_HELD * held.region.area()
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
                    gaussian(&mut view, rect, radius_for(rect, self.config.strength), &mut self.scratch)
                }
                BlurMethod::Pixelate => {
                    pixelate(&mut view, rect, radius_for(rect, self.config.strength) * 2, &mut self.scratch)
                }
                BlurMethod::Solid => fill(&mut view, rect, [128, 128, 128]),
            }
        }
        AnonymizedFrame { frame, regions_blurred: self.regions.len() }
    }
}

fn radius_for(rect: &PixelRect, strength: f32) -> usize {
    ((rect.width.max(rect.height) as f32 * strength).round() as usize).max(2)
}

/// Box radius, in cells of the reduced region, that the gaussian aims for: the region is reduced by the
/// largest whole factor that leaves at least this radius, so the three passes stay cheap whatever the size.
const REDUCED_RADIUS: usize = 4;
/// Largest cell side: keeps a cell's channel sum (at most 255 per pixel) within `u32`.
const MAX_CELL: usize = 4096;

/// Buffers reused by every blur: they grow to the largest region seen and are not freed, so a steady
/// stream of frames allocates nothing.
#[derive(Default)]
struct Scratch {
    /// Channel sums of one row of cells, per column of the region, while its rows are added up.
    column_sums: Vec<u32>,
    /// Channel sums of each cell of the region reduced by area averaging, row-major RGB.
    sums: Vec<u32>,
    /// The reduced region as means, blurred in place.
    small: Vec<f32>,
    /// `small` transposed, for the passes along its rows.
    turned: Vec<f32>,
    /// A copy of the lines of `small` with their ends repeated, for a box pass.
    padded: Vec<f32>,
    /// The moving sums of a box pass.
    window: Vec<f32>,
    /// Each row of the blurred reduced region, interpolated to the region's width.
    wide: Vec<f32>,
    /// Interpolation taps of each column, then of each row, of the region.
    taps_x: Vec<Tap>,
    taps_y: Vec<Tap>,
}

/// Linear interpolation between cells `a` and `b` (`b` weighted `w`) of the reduced region.
#[derive(Debug, Clone, Copy)]
struct Tap {
    a: usize,
    b: usize,
    w: f32,
}

/// A gaussian blur of `rect` with sigma close to `radius` (at least that), edges clamped to the rectangle.
///
/// Its cost per pixel does not grow with the radius or the region: the region is reduced by area
/// averaging by a whole factor (1 for small regions), blurred there by three box passes of radius
/// `radius / factor` (rounded up) in each direction, and interpolated bilinearly back into the frame. The
/// reduction and the interpolation only add to the blur, so the result is at least as smooth as three box
/// passes of `radius` at full size would make it. Two reads or writes per pixel of the region, the rest on
/// the reduced copy (at most about 64 x 64 cells at the default strength).
fn gaussian(view: &mut RgbViewMut<'_>, rect: &PixelRect, radius: usize, scratch: &mut Scratch) {
    if rect.width == 0 || rect.height == 0 {
        return;
    }
    let factor = (radius / REDUCED_RADIUS).clamp(1, MAX_CELL);
    let small_radius = radius.div_ceil(factor);
    let (rw, rh) = (rect.width as usize, rect.height as usize);
    let (sw, sh) = reduce(view, rect, factor, scratch);
    let Scratch { sums, small, turned, padded, window, wide, taps_x, taps_y, .. } = scratch;
    small.clear();
    for cy in 0..sh {
        let rows = cell_len(cy, factor, rh);
        for cx in 0..sw {
            let scale = 1.0 / (cell_len(cx, factor, rw) * rows) as f32;
            small.extend(sums[(cy * sw + cx) * 3..][..3].iter().map(|&s| s as f32 * scale));
        }
    }
    // Three box passes down the columns (units of one row), then three along the rows, run down the
    // columns of the transposed region: every pass is then a moving sum over whole rows.
    for (across, lines) in [(sw, sh), (sh, sw)] {
        for _ in 0..3 {
            box_pass(small, across * 3, small_radius.min(lines - 1), padded, window);
        }
        transpose(small, turned, across, lines);
        std::mem::swap(small, turned);
    }
    let blurred: &[f32] = if factor == 1 {
        small
    } else {
        taps(rw, factor, taps_x);
        wide.resize(sh * rw * 3, 0.0);
        for (row, out) in small.chunks_exact(sw * 3).zip(wide.chunks_exact_mut(rw * 3)) {
            for (px, t) in out.chunks_exact_mut(3).zip(taps_x.iter()) {
                let (a, b) = (&row[t.a * 3..][..3], &row[t.b * 3..][..3]);
                for c in 0..3 {
                    px[c] = a[c] + (b[c] - a[c]) * t.w;
                }
            }
        }
        wide
    };
    taps(rh, factor, taps_y);
    for (k, t) in taps_y.iter().enumerate() {
        let (a, b) = (&blurred[t.a * rw * 3..][..rw * 3], &blurred[t.b * rw * 3..][..rw * 3]);
        let out = &mut view.data[(rect.y as usize + k) * view.stride + rect.x as usize * 3..][..rw * 3];
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = round_to_byte(a + (b - a) * t.w);
        }
    }
}

/// Rounds `v` (a mean of bytes, so within 0..=255 but for float error) to the nearest byte. Adding
/// 1.5 * 2^23 leaves the rounded value in the low bits of the float: unlike `as u8`, this vectorizes.
fn round_to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 12_582_912.0).to_bits() as u8
}

/// Transposes the `width` x `height` RGB image in `src` into `dst` (`height` x `width`).
fn transpose(src: &[f32], dst: &mut Vec<f32>, width: usize, height: usize) {
    dst.resize(src.len(), 0.0);
    for (y, row) in src.chunks_exact(width * 3).enumerate() {
        for (x, px) in row.chunks_exact(3).enumerate() {
            dst[(x * height + y) * 3..][..3].copy_from_slice(px);
        }
    }
}

/// Sums `rect` into `scratch.sums`, by cells of `cell` x `cell` pixels (smaller at the right and bottom
/// edges). Returns the number of cells across and down.
fn reduce(view: &RgbViewMut<'_>, rect: &PixelRect, cell: usize, scratch: &mut Scratch) -> (usize, usize) {
    let (rw, rh) = (rect.width as usize, rect.height as usize);
    let (sw, sh) = (rw.div_ceil(cell), rh.div_ceil(cell));
    let Scratch { column_sums, sums, .. } = scratch;
    sums.clear();
    sums.resize(sw * sh * 3, 0);
    column_sums.clear();
    column_sums.resize(rw * 3, 0);
    for k in 0..rh {
        let row = &view.data[(rect.y as usize + k) * view.stride + rect.x as usize * 3..][..rw * 3];
        if cell == 1 {
            for (total, &v) in sums[k * rw * 3..][..rw * 3].iter_mut().zip(row) {
                *total = v as u32;
            }
            continue;
        }
        for (total, &v) in column_sums.iter_mut().zip(row) {
            *total += v as u32;
        }
        if (k + 1) % cell == 0 || k + 1 == rh {
            let cells = &mut sums[k / cell * sw * 3..][..sw * 3];
            for (total, columns) in cells.chunks_exact_mut(3).zip(column_sums.chunks(cell * 3)) {
                for column in columns.chunks_exact(3) {
                    for c in 0..3 {
                        total[c] += column[c];
                    }
                }
            }
            column_sums.fill(0);
        }
    }
    (sw, sh)
}

/// Pixels in cell `i` of a line of `n` pixels cut into cells of `cell`.
fn cell_len(i: usize, cell: usize, n: usize) -> usize {
    cell.min(n - i * cell)
}

/// One box pass of radius `r` along `data`, in place, taken as a line of units of `unit` values each
/// (a pixel, or a whole row): each unit becomes the mean of the `2r + 1` units around it, the line's end
/// units repeated beyond its ends.
fn box_pass(data: &mut [f32], unit: usize, r: usize, padded: &mut Vec<f32>, window: &mut Vec<f32>) {
    let last = data.len() - unit;
    padded.clear();
    for _ in 0..r {
        padded.extend_from_slice(&data[..unit]);
    }
    padded.extend_from_slice(data);
    for _ in 0..r {
        padded.extend_from_slice(&data[last..]);
    }
    window.clear();
    window.resize(unit, 0.0);
    for u in padded[..2 * r * unit].chunks_exact(unit) {
        for (sum, &v) in window.iter_mut().zip(u) {
            *sum += v;
        }
    }
    let scale = 1.0 / (2 * r + 1) as f32;
    for (k, out) in data.chunks_exact_mut(unit).enumerate() {
        let (leave, enter) = (&padded[k * unit..][..unit], &padded[(k + 2 * r) * unit..][..unit]);
        for (((o, sum), &e), &l) in out.iter_mut().zip(window.iter_mut()).zip(enter).zip(leave) {
            *sum += e;
            *o = *sum * scale;
            *sum -= l;
        }
    }
}

/// Bilinear taps for each of `n` pixels from the centres of the cells `reduce` made of them.
fn taps(n: usize, cell: usize, out: &mut Vec<Tap>) {
    let cells = n.div_ceil(cell);
    let centre = |i: usize| (i * cell + ((i + 1) * cell).min(n) - 1) as f32 / 2.0;
    out.clear();
    let mut i = 0;
    for k in 0..n {
        let x = k as f32;
        while i + 1 < cells && centre(i + 1) <= x {
            i += 1;
        }
        let (c0, last) = (centre(i), i + 1 == cells);
        out.push(if last || x <= c0 {
            Tap { a: i, b: i, w: 0.0 }
        } else {
            Tap { a: i, b: i + 1, w: (x - c0) / (centre(i + 1) - c0) }
        });
    }
}

/// Flat blocks of `block` x `block` pixels, each the mean of the pixels it covers.
fn pixelate(view: &mut RgbViewMut<'_>, rect: &PixelRect, block: usize, scratch: &mut Scratch) {
    if rect.width == 0 || rect.height == 0 {
        return;
    }
    let block = block.clamp(2, MAX_CELL);
    let (rw, rh) = (rect.width as usize, rect.height as usize);
    let (sw, sh) = reduce(view, rect, block, scratch);
    for cy in 0..sh {
        let y = rect.y as usize + cy * block;
        let means = &mut scratch.sums[cy * sw * 3..][..sw * 3];
        let out = &mut view.data[y * view.stride + rect.x as usize * 3..][..rw * 3];
        for (cx, (pixels, mean)) in out.chunks_mut(block * 3).zip(means.chunks_exact_mut(3)).enumerate() {
            let n = (cell_len(cx, block, rw) * cell_len(cy, block, rh)) as u32;
            let colour = [0, 1, 2].map(|c| ((mean[c] + n / 2) / n) as u8);
            for px in pixels.chunks_exact_mut(3) {
                px.copy_from_slice(&colour);
            }
        }
        repeat_row(view, rect, y, y + cell_len(cy, block, rh));
    }
}

fn fill(view: &mut RgbViewMut<'_>, rect: &PixelRect, colour: [u8; 3]) {
    let start = rect.y as usize * view.stride + rect.x as usize * 3;
    for px in view.data[start..start + rect.width as usize * 3].chunks_exact_mut(3) {
        px.copy_from_slice(&colour);
    }
    repeat_row(view, rect, rect.y as usize, (rect.y + rect.height) as usize);
}

/// Copies frame row `from`, within the rectangle's columns, onto rows `from + 1 .. to`.
fn repeat_row(view: &mut RgbViewMut<'_>, rect: &PixelRect, from: usize, to: usize) {
    let (x, len) = (rect.x as usize * 3, rect.width as usize * 3);
    for y in from + 1..to {
        view.data.copy_within(from * view.stride + x..from * view.stride + x + len, y * view.stride + x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::capture::{RgbView, still};
    use proptest::prelude::*;

    /// Packed RGB pixels with `pad` spare bytes at the end of each row, filled with noise from `seed`.
    fn noise(width: u32, height: u32, pad: usize, mut seed: u64) -> (Vec<u8>, usize) {
        let stride = width as usize * 3 + pad;
        let data = (0..stride * height as usize)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        (data, stride)
    }

    fn view_mut(data: &mut [u8], width: u32, height: u32, stride: usize) -> RgbViewMut<'_> {
        RgbViewMut { data, width, height, stride }
    }

    /// Mean absolute Laplacian of the green channel inside `rect` (its border rows and columns excluded).
    fn detail(view: &RgbView<'_>, rect: &PixelRect) -> f64 {
        let g = |x: u32, y: u32| view.pixel(x, y)[1] as f64;
        let (mut sum, mut n) = (0.0, 0.0);
        for y in rect.y + 1..rect.y + rect.height - 1 {
            for x in rect.x + 1..rect.x + rect.width - 1 {
                sum += (4.0 * g(x, y) - g(x - 1, y) - g(x + 1, y) - g(x, y - 1) - g(x, y + 1)).abs();
                n += 1.0;
            }
        }
        sum / n
    }

    /// The gaussian as it was: three box passes at full size, with `u8` lines in between.
    fn three_full_size_passes(view: &mut RgbViewMut<'_>, rect: &PixelRect, radius: usize) {
        let (rw, rh) = (rect.width as usize, rect.height as usize);
        let (x0, y0, stride) = (rect.x as usize, rect.y as usize, view.stride);
        let line = |src: &[u8], dst: &mut [u8]| {
            let n = src.len() / 3;
            let r = radius.min(n - 1) as isize;
            let window = (2 * r + 1) as u32;
            let at = |i: isize, c: usize| src[i.clamp(0, n as isize - 1) as usize * 3 + c] as u32;
            for c in 0..3 {
                let mut sum: u32 = (-r..=r).map(|i| at(i, c)).sum();
                for i in 0..n as isize {
                    dst[i as usize * 3 + c] = ((sum + window / 2) / window) as u8;
                    sum = sum + at(i + r + 1, c) - at(i - r, c);
                }
            }
        };
        for _ in 0..3 {
            for y in y0..y0 + rh {
                let row = &mut view.data[y * stride + x0 * 3..][..rw * 3];
                let src = row.to_vec();
                line(&src, row);
            }
            for x in x0..x0 + rw {
                let src: Vec<u8> = (y0..y0 + rh).flat_map(|y| view.data[y * stride + x * 3..][..3].to_vec()).collect();
                let mut dst = vec![0; rh * 3];
                line(&src, &mut dst);
                for (k, y) in (y0..y0 + rh).enumerate() {
                    view.data[y * stride + x * 3..][..3].copy_from_slice(&dst[k * 3..k * 3 + 3]);
                }
            }
        }
    }

    /// A region of `side` x `side` centred in the frame, and the face box inside it (the default margin
    /// taken off again).
    fn centred(frame: &Frame, side: u32) -> (PixelRect, PixelRect) {
        let region =
            PixelRect { x: (frame.width() - side) / 2, y: (frame.height() - side) / 2, width: side, height: side };
        let m = (side as f32 * 0.2 / 1.4).round() as u32;
        (region, PixelRect { x: region.x + m, y: region.y + m, width: side - 2 * m, height: side - 2 * m })
    }

    #[test]
    fn a_face_box_inside_a_held_head_region_does_not_cut_the_head_short() {
        // A person's head region held for 5 frames; from the next frame on a face box, inside it and held
        // for 2, is found on every frame. The head region must stay blurred for its whole hold, and the
        // face box must not replace it.
        let meta = FrameMeta { camera: 0, seq: 0, pts: None, captured: std::time::Duration::ZERO, fps: None };
        let pixels = image::RgbImage::new(640, 480);
        let mut anonymizer = Anonymizer::new(BlurConfig { hold_frames: 2, margin: 0.0, ..BlurConfig::default() });
        let head = BoxInImage::new(100.0, 50.0, 325.0, 174.0);
        let face = BoxInImage::new(170.0, 60.0, 250.0, 150.0);
        let head_rect = head.to_pixel_rect(640, 480).unwrap();
        for frame_no in 0..=5 {
            let regions: &[Region] = if frame_no == 0 {
                &[Region { bbox: head, hold_frames: 5 }]
            } else {
                &[Region { bbox: face, hold_frames: 2 }]
            };
            anonymizer.anonymize_regions(Frame::from_rgb_image(&pixels, meta), regions);
            let covers = |r: &PixelRect| {
                r.x <= head_rect.x
                    && r.y <= head_rect.y
                    && r.x + r.width >= head_rect.x + head_rect.width
                    && r.y + r.height >= head_rect.y + head_rect.height
            };
            assert!(
                anonymizer.last_regions().iter().any(covers),
                "frame {frame_no}: head {head_rect:?} not covered by {:?}",
                anonymizer.last_regions()
            );
        }
        // The same face found again, a little moved, replaces its held box: one region, not a trail.
        let moved = BoxInImage::new(172.0, 61.0, 252.0, 151.0);
        for _ in 0..6 {
            anonymizer
                .anonymize_regions(Frame::from_rgb_image(&pixels, meta), &[Region { bbox: moved, hold_frames: 2 }]);
        }
        assert_eq!(anonymizer.last_regions().len(), 1, "{:?}", anonymizer.last_regions());
    }

    #[test]
    fn the_gaussian_leaves_no_more_detail_than_three_full_size_passes_at_any_size() {
        let photo = still::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlib_faces/2008_002470.jpg"))
            .unwrap()
            .view()
            .to_rgb_image();
        let big = image::imageops::resize(&photo, 1280, 850, image::imageops::Triangle);
        let (noisy, _) = noise(1280, 720, 0, 7);
        let noisy = image::RgbImage::from_raw(1280, 720, noisy).unwrap();
        let meta = FrameMeta { camera: 0, seq: 0, pts: None, captured: std::time::Duration::ZERO, fps: None };
        let strength = BlurConfig::default().strength;
        let mut scratch = Scratch::default();
        let mut failed = Vec::new();
        let cases = [
            ("photo", &photo, &[12, 24, 40, 63, 64, 100, 160, 250][..]),
            ("photo scaled up", &big, &[250, 400, 600]),
            ("noise", &noisy, &[12, 24, 40, 63, 64, 100, 160, 250, 400, 600]),
        ];
        for (name, pixels, sides) in cases {
            for &side in sides {
                let original = Frame::from_rgb_image(pixels, meta);
                let (region, face) = centred(&original, side);
                let radius = radius_for(&region, strength);
                let mut now = Frame::from_rgb_image(pixels, meta);
                gaussian(&mut now.view_mut(), &region, radius, &mut scratch);
                let mut before = Frame::from_rgb_image(pixels, meta);
                three_full_size_passes(&mut before.view_mut(), &region, radius);
                let (d0, d_now, d_before) =
                    (detail(&original.view(), &face), detail(&now.view(), &face), detail(&before.view(), &face));
                println!(
                    "{name}, {side} px: detail {d0:.2}, after three full-size passes {d_before:.3}, now {d_now:.3}"
                );
                // Smoothed as the dlib test demands, and no less than before (within rounding).
                if d_now >= 0.35 * d0 || d_now > d_before * 1.1 + 0.1 {
                    failed.push(format!("{name}, {side} px: {d0:.2} -> {d_now:.3} (was {d_before:.3})"));
                }
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn a_blur_touches_only_its_rectangle_and_only_mixes_its_colours(
            (width, height, x, y, w, h) in (1u32..260, 1u32..260)
                .prop_flat_map(|(fw, fh)| (Just(fw), Just(fh), 0..fw, 0..fh))
                .prop_flat_map(|(fw, fh, x, y)| (Just(fw), Just(fh), Just(x), Just(y), 1..=fw - x, 1..=fh - y)),
            pad in 0usize..7,
            radius in 0usize..100,
            method in prop_oneof![Just(BlurMethod::Gaussian), Just(BlurMethod::Pixelate), Just(BlurMethod::Solid)],
            seed in 1u64..,
        ) {
            let rect = PixelRect { x, y, width: w, height: h };
            let (original, stride) = noise(width, height, pad, seed);
            let mut data = original.clone();
            // Scratch left over from a larger, different region must not leak into this one.
            let mut scratch = Scratch::default();
            let (mut other, other_stride) = noise(300, 300, 0, seed ^ 0x5555);
            let whole = PixelRect { x: 0, y: 0, width: 300, height: 300 };
            gaussian(&mut view_mut(&mut other, 300, 300, other_stride), &whole, 37, &mut scratch);
            pixelate(&mut view_mut(&mut other, 300, 300, other_stride), &whole, 37, &mut scratch);
            let mut view = view_mut(&mut data, width, height, stride);
            match method {
                BlurMethod::Gaussian => gaussian(&mut view, &rect, radius, &mut scratch),
                BlurMethod::Pixelate => pixelate(&mut view, &rect, radius, &mut scratch),
                BlurMethod::Solid => fill(&mut view, &rect, [128, 128, 128]),
            }
            let inside = |i: usize| {
                let (px, py) = ((i % stride / 3) as u32, (i / stride) as u32);
                i % stride < width as usize * 3 && rect.contains(px, py)
            };
            // Each channel's range over the rectangle: a blur only averages, so nothing may leave it.
            let mut range = [(255u8, 0u8); 3];
            for (i, &v) in original.iter().enumerate().filter(|&(i, _)| inside(i)) {
                let r = &mut range[i % stride % 3];
                *r = (r.0.min(v), r.1.max(v));
            }
            for (i, (&a, &b)) in original.iter().zip(&data).enumerate() {
                if !inside(i) {
                    prop_assert_eq!(a, b, "byte {} outside the rectangle changed", i);
                } else if method == BlurMethod::Solid {
                    prop_assert_eq!(b, 128);
                } else {
                    let (lo, hi) = range[i % stride % 3];
                    prop_assert!((lo..=hi).contains(&b), "byte {} = {} outside {}..={}", i, b, lo, hi);
                }
            }
            // Pixelation: each block is the rounded mean of the pixels it covers.
            if method == BlurMethod::Pixelate {
                let block = radius.clamp(2, MAX_CELL) as u32;
                for by in (y..y + h).step_by(block as usize) {
                    for bx in (x..x + w).step_by(block as usize) {
                        let bytes: Vec<usize> = (by..(by + block).min(y + h))
                            .flat_map(|py| (bx..(bx + block).min(x + w)).map(move |px| py as usize * stride + px as usize * 3))
                            .collect();
                        let n = bytes.len() as u32;
                        for c in 0..3 {
                            let mean = (bytes.iter().map(|&i| original[i + c] as u32).sum::<u32>() + n / 2) / n;
                            prop_assert!(bytes.iter().all(|&i| data[i + c] as u32 == mean), "block at {},{}", bx, by);
                        }
                    }
                }
            }
        }
    }
}
