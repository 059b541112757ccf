//! Bilinear resampling of an RGB frame (any stride) into a model's input, one output pixel at a time, with
//! the lookup tables kept between frames. Resizing straight into the input tensor avoids an intermediate
//! image per frame.

use crate::capture::RgbView;

/// Tables for one (source size, destination size) pair, rebuilt only when either changes.
#[derive(Default)]
pub struct Bilinear {
    key: (u32, u32, u32, u32),
    /// Per destination column: byte offsets of the left and right source pixels, and the right weight.
    xs: Vec<(usize, usize, f32)>,
    /// Per destination row: the upper and lower source rows, and the lower weight.
    ys: Vec<(u32, u32, f32)>,
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

    /// Calls `f(dst_x, dst_y, [r, g, b])` for every destination pixel in row-major order.
    #[inline]
    pub fn for_each(&self, src: &RgbView<'_>, mut f: impl FnMut(usize, usize, [f32; 3])) {
        for (dy, &(y0, y1, wy)) in self.ys.iter().enumerate() {
            let r0 = &src.data[y0 as usize * src.stride..];
            let r1 = &src.data[y1 as usize * src.stride..];
            for (dx, &(x0, x1, wx)) in self.xs.iter().enumerate() {
                let mut px = [0f32; 3];
                for (c, out) in px.iter_mut().enumerate() {
                    let top = r0[x0 + c] as f32 + (r0[x1 + c] as f32 - r0[x0 + c] as f32) * wx;
                    let bottom = r1[x0 + c] as f32 + (r1[x1 + c] as f32 - r1[x0 + c] as f32) * wx;
                    *out = top + (bottom - top) * wy;
                }
                f(dx, dy, px);
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
