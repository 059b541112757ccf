//! Pictures for people: calibration overlays on an anonymized camera frame and on the floor plan.
//!
//! A [`Picture`] of a camera is made only from an [`AnonymizedFrame`]; the floor-plan picture starts from
//! the plan image. Drawing is plain code over `imageproc` primitives; labels use an 8x8 bitmap font.

use std::path::Path;

use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_hollow_circle_mut, draw_line_segment_mut};

use crate::anonymize::AnonymizedFrame;
use crate::calibration::{Calibration, InSide, ZoneKind};
use crate::geometry::{PointInImage, PointOnFloor};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("picture {path}: {message}")]
    Io { path: std::path::PathBuf, message: String },
}

/// A rectangle in picture pixels: (x0, y0, x1, y1), end exclusive; may reach outside the picture.
pub type Rect = (i64, i64, i64, i64);

/// An image being drawn on.
pub struct Picture {
    image: RgbImage,
}

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([255, 230, 0]);
const POINT: Rgb<u8> = Rgb([0, 255, 255]);
const REPROJECTED: Rgb<u8> = Rgb([255, 0, 255]);
const OUTLIER: Rgb<u8> = Rgb([255, 60, 60]);
const FOV: Rgb<u8> = Rgb([40, 40, 40]);

pub fn zone_colour(kind: ZoneKind) -> Rgb<u8> {
    match kind {
        ZoneKind::Entrance => Rgb([0, 200, 80]),
        ZoneKind::Queue => Rgb([255, 140, 0]),
        ZoneKind::Shelf => Rgb([40, 120, 255]),
        ZoneKind::Zone => Rgb([200, 200, 200]),
    }
}

const LINE: Rgb<u8> = Rgb([230, 30, 30]);

impl Picture {
    /// A picture of a camera frame: only ever made from a frame whose faces were blurred.
    pub fn from_anonymized(frame: &AnonymizedFrame) -> Self {
        Self { image: frame.view().to_rgb_image() }
    }

    /// A picture of a camera from the dashboard's latest still, itself made only from an anonymized frame.
    pub fn from_still(still: &crate::live::Still) -> Result<Self, Error> {
        let image = still.decode().map_err(|e| Error::Io { path: "preview".into(), message: e.to_string() })?;
        Ok(Self { image })
    }

    /// PNG bytes (for the dashboard).
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.image
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| Error::Io { path: "png".into(), message: e.to_string() })?;
        Ok(out.into_inner())
    }

    /// A floor plan (or any non-camera picture) from a PNG or JPEG file.
    pub fn open_plan(path: &Path) -> Result<Self, Error> {
        let image = crate::capture::still::open_image(path)
            .map_err(|e| Error::Io { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Self { image })
    }

    pub fn blank(width: u32, height: u32, colour: Rgb<u8>) -> Self {
        Self { image: RgbImage::from_pixel(width.max(1), height.max(1), colour) }
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }

    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: path.to_path_buf(), message: e.to_string() })?;
        }
        self.image.save(path).map_err(|e| Error::Io { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Copies `other` into this picture with its top-left corner at (x, y).
    pub fn paste(&mut self, other: &Picture, x: u32, y: u32) {
        image::imageops::replace(&mut self.image, &other.image, x as i64, y as i64);
    }

    /// Pixels of `rect` (x0, y0, x1, y1; end exclusive) that also lie in `clip` and in the picture.
    fn clipped(&self, rect: Rect, clip: Rect) -> Option<(u32, u32, u32, u32)> {
        let x0 = rect.0.max(clip.0).max(0);
        let y0 = rect.1.max(clip.1).max(0);
        let x1 = rect.2.min(clip.2).min(self.width() as i64);
        let y1 = rect.3.min(clip.3).min(self.height() as i64);
        (x1 > x0 && y1 > y0).then_some((x0 as u32, y0 as u32, x1 as u32, y1 as u32))
    }

    /// Mixes `colour` into `rect` with `opacity` (0..1), inside `clip`.
    pub fn blend_rect(&mut self, rect: Rect, colour: Rgb<u8>, opacity: f64, clip: Rect) {
        let Some((x0, y0, x1, y1)) = self.clipped(rect, clip) else { return };
        for y in y0..y1 {
            for x in x0..x1 {
                let p = self.image.get_pixel_mut(x, y);
                *p = Rgb(std::array::from_fn(|k| {
                    (colour[k] as f64 * opacity + p[k] as f64 * (1.0 - opacity)).round() as u8
                }));
            }
        }
    }

    /// Diagonal hatching over `rect`, inside `clip` (marks cells suppressed for having too few people).
    pub fn hatch_rect(&mut self, rect: Rect, colour: Rgb<u8>, clip: Rect) {
        let Some((x0, y0, x1, y1)) = self.clipped(rect, clip) else { return };
        for y in y0..y1 {
            for x in x0..x1 {
                if (x + y) % 6 < 2 {
                    self.image.put_pixel(x, y, colour);
                }
            }
        }
    }

    /// A line `thickness` pixels wide.
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), colour: Rgb<u8>, thickness: u32) {
        let t = thickness.max(1) as i32;
        // Clipped to the picture first: a point far off the canvas (an extreme calibration) is drawn in
        // time proportional to the canvas, not to the distance.
        let margin = t as f32 + 1.0;
        let bounds = (-margin, -margin, self.width() as f32 + margin, self.height() as f32 + margin);
        let Some((a, b)) = clip_segment(a, b, bounds) else { return };
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-6);
        let (nx, ny) = (-dy / len, dx / len);
        for k in 0..t {
            let off = k as f32 - (t - 1) as f32 / 2.0;
            draw_line_segment_mut(
                &mut self.image,
                (a.0 + nx * off, a.1 + ny * off),
                (b.0 + nx * off, b.1 + ny * off),
                colour,
            );
        }
    }

    pub fn dot(&mut self, p: (f32, f32), radius: i32, colour: Rgb<u8>) {
        if !self.near(p, radius) {
            return;
        }
        draw_filled_circle_mut(&mut self.image, (p.0.round() as i32, p.1.round() as i32), radius, colour);
    }

    /// Whether a mark of `radius` around `p` can touch the picture.
    fn near(&self, p: (f32, f32), radius: i32) -> bool {
        let r = radius.max(0) as f32 + 1.0;
        p.0.is_finite()
            && p.1.is_finite()
            && p.0 > -r
            && p.1 > -r
            && p.0 < self.width() as f32 + r
            && p.1 < self.height() as f32 + r
    }

    pub fn ring(&mut self, p: (f32, f32), radius: i32, colour: Rgb<u8>) {
        if !self.near(p, radius) {
            return;
        }
        draw_hollow_circle_mut(&mut self.image, (p.0.round() as i32, p.1.round() as i32), radius, colour);
    }

    /// Text in an 8x8 bitmap font scaled by `scale`, on a dark box so it reads on any background.
    pub fn text(&mut self, x: i32, y: i32, text: &str, colour: Rgb<u8>, scale: u32) {
        use font8x8::UnicodeFonts;
        let s = scale.clamp(1, 64) as i32;
        // Far off the picture (an extreme calibration): nothing to draw, and no sums that overflow.
        let (pw, ph) = (self.image.width() as i32, self.image.height() as i32);
        if !(-100_000..=pw).contains(&x) || !(-1000..=ph).contains(&y) {
            return;
        }
        let w = (text.chars().count().min(10_000) as i32) * 8 * s;
        for yy in (y - 1).max(0)..(y + 8 * s + 1).min(self.image.height() as i32) {
            for xx in (x - 2).max(0)..(x + w + 2).min(self.image.width() as i32) {
                let p = self.image.get_pixel_mut(xx as u32, yy as u32);
                *p = Rgb([p[0] / 3, p[1] / 3, p[2] / 3]);
            }
        }
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) == 0 {
                        continue;
                    }
                    for dy in 0..s {
                        for dx in 0..s {
                            let px = x + (i as i32 * 8 + col) * s + dx;
                            let py = y + row as i32 * s + dy;
                            if px >= 0
                                && py >= 0
                                && (px as u32) < self.image.width()
                                && (py as u32) < self.image.height()
                            {
                                self.image.put_pixel(px as u32, py as u32, colour);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Draws the floor segment a-b through `to_px` (a point on the floor -> picture pixels), sampled every
    /// `step` metres so curves and the horizon are handled; samples that have no pixel are skipped.
    fn floor_segment(
        &mut self,
        a: PointOnFloor,
        b: PointOnFloor,
        to_px: &dyn Fn(PointOnFloor) -> Option<(f32, f32)>,
        colour: Rgb<u8>,
        thickness: u32,
    ) {
        let n = ((a.distance(&b) / 0.05).ceil() as usize).clamp(1, 2000);
        let (w, h) = (self.width() as f32, self.height() as f32);
        let inside = |p: (f32, f32)| p.0 > -w && p.0 < 2.0 * w && p.1 > -h && p.1 < 2.0 * h;
        let mut prev: Option<(f32, f32)> = None;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            let p = PointOnFloor::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
            let cur = to_px(p).filter(|&q| inside(q));
            if let (Some(p0), Some(p1)) = (prev, cur) {
                self.line(p0, p1, colour, thickness);
            }
            prev = cur;
        }
    }
}

/// The part of segment a-b inside `bounds` (x0, y0, x1, y1), by Liang-Barsky; `None` when none of it is
/// (or a coordinate is not finite).
fn clip_segment(a: (f32, f32), b: (f32, f32), bounds: (f32, f32, f32, f32)) -> Option<((f32, f32), (f32, f32))> {
    let (a0, a1, b0, b1) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
    if ![a0, a1, b0, b1].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (dx, dy) = (b0 - a0, b1 - a1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let (x0, y0, x1, y1) = (bounds.0 as f64, bounds.1 as f64, bounds.2 as f64, bounds.3 as f64);
    for (p, q) in [(-dx, a0 - x0), (dx, x1 - a0), (-dy, a1 - y0), (dy, y1 - a1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then(|| {
        let at = |t: f64| ((a0 + dx * t) as f32, (a1 + dy * t) as f32);
        (at(t0), at(t1))
    })
}

fn arrow_to_in_side(from: PointOnFloor, to: PointOnFloor, in_side: InSide) -> (PointOnFloor, PointOnFloor) {
    let mid = PointOnFloor::new((from.x + to.x) / 2.0, (from.y + to.y) / 2.0);
    let (dx, dy) = (to.x - from.x, to.y - from.y);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    // On the plan (y down), "left" of from->to seen from above is (dy, -dx).
    let (lx, ly) = (dy / len, -dx / len);
    let sign = if in_side == InSide::Left { 1.0 } else { -1.0 };
    (mid, PointOnFloor::new(mid.x + sign * lx * 0.4, mid.y + sign * ly * 0.4))
}

/// Draws zones, lines (with an arrow towards their "in" side) and labels through `to_px`.
fn draw_zones_and_lines(
    pic: &mut Picture,
    cal: &Calibration,
    to_px: &dyn Fn(PointOnFloor) -> Option<(f32, f32)>,
    scale: u32,
) {
    for zone in &cal.zones {
        let c = zone_colour(zone.kind);
        let pts = &zone.polygon.points;
        for i in 0..pts.len() {
            pic.floor_segment(pts[i], pts[(i + 1) % pts.len()], to_px, c, 2);
        }
        if let Some(p) = to_px(zone.polygon.centroid()) {
            pic.text(p.0 as i32 - 20, p.1 as i32 - 4, &zone.name, c, scale);
        }
    }
    for line in &cal.lines {
        pic.floor_segment(line.from, line.to, to_px, LINE, 3);
        let (mid, tip) = arrow_to_in_side(line.from, line.to, line.in_side);
        pic.floor_segment(mid, tip, to_px, LINE, 2);
        if let Some(p) = to_px(tip) {
            pic.dot(p, 4, LINE);
            pic.text(p.0 as i32 + 6, p.1 as i32 - 4, &format!("{} in", line.name), LINE, scale);
        }
    }
}

/// The floor area the camera sees, as points on the floor along the image border (pixels above the horizon
/// are left out).
fn field_of_view(cal: &Calibration) -> Vec<PointOnFloor> {
    let (w, h) = (cal.image_width as f32, cal.image_height as f32);
    let mut border = Vec::new();
    let n = 40;
    for k in 0..n {
        border.push((w * k as f32 / n as f32, h));
    }
    for k in 0..n {
        border.push((w, h - h * k as f32 / n as f32));
    }
    for k in 0..n {
        border.push((w - w * k as f32 / n as f32, 0.0));
    }
    for k in 0..n {
        border.push((0.0, h * k as f32 / n as f32));
    }
    border.into_iter().filter_map(|(x, y)| cal.floor_from_image(PointInImage { x, y })).collect()
}

/// The camera overlay: on the anonymized frame, the projected 1 m floor grid, zones, lines, and each point
/// pair (ring: where it was picked, dot: where its floor point lands) with its residual.
pub fn camera_overlay(frame: &AnonymizedFrame, cal: &Calibration) -> Picture {
    draw_camera_overlay(Picture::from_anonymized(frame), cal)
}

/// [`camera_overlay`] on a dashboard still (see [`crate::live::Still`]).
pub fn camera_overlay_on_still(still: &crate::live::Still, cal: &Calibration) -> Result<Picture, Error> {
    Ok(draw_camera_overlay(Picture::from_still(still)?, cal))
}

fn draw_camera_overlay(mut pic: Picture, cal: &Calibration) -> Picture {
    // Frames at another resolution than the calibration's are scaled onto it.
    let sx = pic.width() as f32 / cal.image_width as f32;
    let sy = pic.height() as f32 / cal.image_height as f32;
    let to_px = |p: PointOnFloor| cal.image_from_floor(p).map(|q| (q.x * sx, q.y * sy));
    let fov = field_of_view(cal);
    if !fov.is_empty() {
        let clamp = |v: f64| v.clamp(-100.0, 100.0);
        let (x0, x1) = fov.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.x), b.max(p.x)));
        let (y0, y1) = fov.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.y), b.max(p.y)));
        let (mut x0, mut x1, mut y0, mut y1) =
            (clamp(x0).floor(), clamp(x1).ceil(), clamp(y0).floor(), clamp(y1).ceil());
        // Keep the grid on the site: the floor plane goes on behind walls, the plan does not.
        if let Ok((w, h)) = image::image_dimensions(&cal.floor_plan.image) {
            let a = cal.floor_plan.floor_from_plan(crate::calibration::PointOnPlan { x: 0.0, y: 0.0 });
            let b = cal.floor_plan.floor_from_plan(crate::calibration::PointOnPlan { x: w as f64, y: h as f64 });
            (x0, x1, y0, y1) = (x0.max(a.x.floor()), x1.min(b.x.ceil()), y0.max(a.y.floor()), y1.min(b.y.ceil()));
        }
        let mut x = x0;
        while x <= x1 {
            pic.floor_segment(PointOnFloor::new(x, y0), PointOnFloor::new(x, y1), &to_px, GRID, 1);
            x += 1.0;
        }
        let mut y = y0;
        while y <= y1 {
            pic.floor_segment(PointOnFloor::new(x0, y), PointOnFloor::new(x1, y), &to_px, GRID, 1);
            y += 1.0;
        }
    }
    draw_zones_and_lines(&mut pic, cal, &to_px, 1);
    for (i, (pair, res)) in cal.points.iter().zip(&cal.fit.residuals).enumerate() {
        let picked = (pair.image.0 as f32 * sx, pair.image.1 as f32 * sy);
        let colour = if res.inlier { POINT } else { OUTLIER };
        pic.ring(picked, 6, colour);
        if let Some(q) = to_px(pair.floor) {
            pic.dot(q, 2, REPROJECTED);
            pic.line(picked, q, REPROJECTED, 1);
        }
        let label = format!("{i}: {:.1}px {:.0}cm{}", res.px, res.m * 100.0, if res.inlier { "" } else { " OUT" });
        pic.text(picked.0 as i32 + 8, picked.1 as i32 - 12, &label, colour, 1);
    }
    pic.text(
        4,
        4,
        &format!("{}: RMS {:.2}px {:.1}cm, 1 m grid", cal.camera, cal.fit.rms_px, cal.fit.rms_m * 100.0),
        WHITE,
        1,
    );
    pic
}

/// The floor-plan picture: the plan with the camera's field of view, zones, lines and floor points.
/// Several calibrations (cameras) can be drawn onto one plan.
pub fn plan_overlay(cals: &[&Calibration]) -> Result<Picture, Error> {
    let Some(first) = cals.first() else { return Ok(Picture::blank(400, 300, WHITE)) };
    let plan = &first.floor_plan;
    let mut pic = match Picture::open_plan(&plan.image) {
        Ok(p) => p,
        Err(_) => {
            // No plan image: a white canvas covering everything drawn.
            let mut max = (0f64, 0f64);
            for cal in cals {
                for p in field_of_view(cal).iter().chain(cal.zones.iter().flat_map(|z| z.polygon.points.iter())) {
                    max = (max.0.max(p.x), max.1.max(p.y));
                }
            }
            let w = ((max.0 + 1.0) * plan.pixels_per_metre + plan.origin_px.0).clamp(100.0, 4000.0);
            let h = ((max.1 + 1.0) * plan.pixels_per_metre + plan.origin_px.1).clamp(100.0, 4000.0);
            Picture::blank(w as u32, h as u32, WHITE)
        }
    };
    let to_px = |p: PointOnFloor| {
        let q = plan.plan_from_floor(p);
        Some((q.x as f32, q.y as f32))
    };
    let scale = if pic.width() >= 1000 { 2 } else { 1 };
    for cal in cals {
        let fov = field_of_view(cal);
        for i in 0..fov.len() {
            let (a, b) = (fov[i], fov[(i + 1) % fov.len()]);
            if a.distance(&b) < 5.0 {
                pic.floor_segment(a, b, &to_px, FOV, 2);
            }
        }
        draw_zones_and_lines(&mut pic, cal, &to_px, scale);
        for (i, pair) in cal.points.iter().enumerate() {
            if let Some(p) = to_px(pair.floor) {
                pic.dot(p, 3, REPROJECTED);
                pic.text(p.0 as i32 + 5, p.1 as i32 + 3, &i.to_string(), REPROJECTED, 1);
            }
        }
        if let Some(c) = fov.iter().copied().reduce(|a, b| PointOnFloor::new(a.x + b.x, a.y + b.y)) {
            let n = fov.len() as f64;
            if let Some(p) = to_px(PointOnFloor::new(c.x / n, c.y / n)) {
                pic.text(p.0 as i32 - 20, p.1 as i32 + 12, &format!("cam {}", cal.camera), FOV, scale);
            }
        }
    }
    Ok(pic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coord() -> impl Strategy<Value = f32> {
        prop_oneof![-2000.0f32..2000.0, -1e30f32..1e30, Just(f32::MAX), Just(-f32::MAX)]
    }

    proptest! {
        #[test]
        fn a_clipped_segment_stays_in_bounds_and_keeps_what_was_inside(
            ax in coord(), ay in coord(), bx in coord(), by in coord(),
        ) {
            let bounds = (0.0, 0.0, 640.0, 480.0);
            let inside = |p: (f32, f32)| p.0 >= -0.01 && p.1 >= -0.01 && p.0 <= 640.01 && p.1 <= 480.01;
            match clip_segment((ax, ay), (bx, by), bounds) {
                Some((p, q)) => {
                    // Within the bounds, up to f32 rounding of the far endpoints.
                    let tol = |p: (f32, f32)| p.0 >= -1.0 && p.1 >= -1.0 && p.0 <= 641.0 && p.1 <= 481.0;
                    prop_assert!(tol(p) && tol(q), "{p:?} {q:?}");
                    if inside((ax, ay)) && inside((bx, by)) {
                        prop_assert_eq!((p, q), ((ax, ay), (bx, by)));
                    }
                }
                // Nothing left: then no endpoint was inside.
                None => prop_assert!(!inside((ax, ay)) && !inside((bx, by))),
            }
        }
    }

    #[test]
    fn drawing_far_off_the_canvas_returns_at_once() {
        let mut pic = Picture { image: image::RgbImage::new(200, 100) };
        pic.line((-1e30, 5.0), (1e30, 50.0), Rgb([255, 0, 0]), 3);
        pic.line((f32::NAN, 0.0), (10.0, 10.0), Rgb([255, 0, 0]), 1);
        pic.dot((1e30, 1e30), 4, Rgb([255, 0, 0]));
        pic.text(i32::MAX - 5, 10, "far", Rgb([255, 255, 255]), 2);
        // The line across the whole canvas was drawn where it crosses it.
        assert!(pic.image.pixels().any(|p| p.0 == [255, 0, 0]));
    }
}
