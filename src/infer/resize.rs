//! Bilinear resampling of an RGB frame (any stride) into a model's input, one output pixel at a time, with
//! the lookup tables kept between frames. Resizing straight into the input tensor avoids an intermediate
//! image per frame.

use crate::capture::RgbView;

/// Tables for one (source size, destination size) pair, rebuilt only when either changes, and two
/// horizontally resampled source rows, so each source row is resampled once however many destination
/// rows use it (separable bilinear).
#[derive(Default)]
pub struct Bilinear {
    key: (u32, u32, u32, u32),
    /// Per destination column: byte offsets of the left and right source pixels, and the right weight.
    xs: Vec<(usize, usize, f32)>,
    /// Per destination row: the upper and lower source rows, and the lower weight.
    ys: Vec<(u32, u32, f32)>,
    /// Horizontally resampled rows (RGB as f32, `xs.len() * 3` each) and the source rows they hold.
    rows: [Vec<f32>; 2],
    rows_hold: [Option<u32>; 2],
}

fn axis(src: u32, dst: u32, region_start: f32, region_len: f32) -> impl Iterator<Item = (u32, u32, f32)> {
    let scale = region_len / dst as f32;
    (0..dst).map(move |d| {
        let s = (region_start + (d as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
        let s0 = s.floor() as u32;
        let s1 = (s0 + 1).min(src - 1);
        (s0, s1, s - s0 as f32)
    })
}

impl Bilinear {
    /// Prepares for sampling the whole `src_w` x `src_h` image onto `dst_w` x `dst_h`.
    pub fn prepare(&mut self, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) {
        if self.key == (src_w, src_h, dst_w, dst_h) && !self.xs.is_empty() {
            return;
        }
        self.key = (src_w, src_h, dst_w, dst_h);
        self.xs.clear();
        self.xs.extend(axis(src_w, dst_w, 0.0, src_w as f32).map(|(a, b, w)| (a as usize * 3, b as usize * 3, w)));
        self.ys.clear();
        self.ys.extend(axis(src_h, dst_h, 0.0, src_h as f32));
    }

    /// Prepares for sampling the sub-rectangle `(x, y, w, h)` (source pixels, may be fractional) onto
    /// `dst_w` x `dst_h`. Always rebuilds (crops change every frame; the tables are small).
    pub fn prepare_region(&mut self, src_w: u32, src_h: u32, region: (f32, f32, f32, f32), dst_w: u32, dst_h: u32) {
        let (x, y, w, h) = region;
        self.key = (0, 0, 0, 0);
        self.xs.clear();
        self.xs.extend(axis(src_w, dst_w, x, w).map(|(a, b, w)| (a as usize * 3, b as usize * 3, w)));
        self.ys.clear();
        self.ys.extend(axis(src_h, dst_h, y, h));
    }

    /// Resamples source row `y` horizontally into one of the two row buffers (unless it is already
    /// there) and returns which one.
    fn row(&mut self, src: &RgbView<'_>, y: u32, keep: Option<usize>) -> usize {
        if let Some(i) = (0..2).find(|&i| self.rows_hold[i] == Some(y)) {
            return i;
        }
        let slot = if keep == Some(0) { 1 } else { 0 };
        let r = &src.data[y as usize * src.stride..];
        let out = &mut self.rows[slot];
        out.clear();
        for &(x0, x1, wx) in &self.xs {
            for c in 0..3 {
                let a = r[x0 + c] as f32;
                out.push(a + (r[x1 + c] as f32 - a) * wx);
            }
        }
        self.rows_hold[slot] = Some(y);
        slot
    }

    /// Calls `f(dst_x, dst_y, [r, g, b])` for every destination pixel in row-major order.
    #[inline]
    pub fn for_each(&mut self, src: &RgbView<'_>, mut f: impl FnMut(usize, usize, [f32; 3])) {
        self.rows_hold = [None, None];
        for dy in 0..self.ys.len() {
            let (y0, y1, wy) = self.ys[dy];
            let top = self.row(src, y0, None);
            let bottom = self.row(src, y1, Some(top));
            let (t, b) = (&self.rows[top], &self.rows[bottom]);
            for dx in 0..self.xs.len() {
                let i = dx * 3;
                f(
                    dx,
                    dy,
                    [
                        t[i] + (b[i] - t[i]) * wy,
                        t[i + 1] + (b[i + 1] - t[i + 1]) * wy,
                        t[i + 2] + (b[i + 2] - t[i + 2]) * wy,
                    ],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_resize_returns_the_pixels() {
        let (w, h, stride) = (3u32, 2u32, 12usize);
        let mut data = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            for x in 0..w as usize * 3 {
                data[y * stride + x] = (y * 10 + x) as u8;
            }
        }
        let view = RgbView { data: &data, width: w, height: h, stride };
        let mut b = Bilinear::default();
        b.prepare(w, h, w, h);
        let mut seen = Vec::new();
        b.for_each(&view, |x, y, px| seen.push((x, y, px)));
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[4], (1, 1, [13.0, 14.0, 15.0]));
    }

    #[test]
    fn downscaling_a_flat_image_keeps_its_colour() {
        let data = vec![200u8; 12 * 8];
        let view = RgbView { data: &data, width: 4, height: 8, stride: 12 };
        let mut b = Bilinear::default();
        b.prepare(4, 8, 2, 3);
        b.for_each(&view, |_, _, px| assert_eq!(px, [200.0; 3]));
    }
}
