//! Plain geometry in named coordinate spaces.
//!
//! Names carry their space: `BoxInImage` and `PointInImage` are in pixels of the frame as captured
//! (x to the right, y down, origin at the top-left corner of the top-left pixel); `PointOnFloor` is in
//! metres on the store's floor plan (x to the right, y down the plan image, origin at the plan's top-left).

use serde::Serialize;

/// A point in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PointInImage {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in frame pixels, `x1 <= x2`, `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxInImage {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BoxInImage {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1: x1.min(x2), y1: y1.min(y2), x2: x1.max(x2), y2: y1.max(y2) }
    }

    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn centre(&self) -> PointInImage {
        PointInImage { x: (self.x1 + self.x2) * 0.5, y: (self.y1 + self.y2) * 0.5 }
    }

    pub fn contains(&self, p: PointInImage) -> bool {
        p.x >= self.x1 && p.x <= self.x2 && p.y >= self.y1 && p.y <= self.y2
    }

    pub fn intersection(&self, other: &BoxInImage) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    /// Intersection over union; 0 for two empty boxes.
    pub fn iou(&self, other: &BoxInImage) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box grown by `fraction` of its width and height on every side.
    pub fn expanded(&self, fraction: f32) -> BoxInImage {
        let dx = self.width() * fraction;
        let dy = self.height() * fraction;
        BoxInImage::new(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)
    }

    /// Integer pixel rectangle `[x0, x1) x [y0, y1)` covering the box, clipped to a `width` x `height` image.
    /// `None` when nothing of the box lies inside the image.
    pub fn to_pixel_rect(&self, width: u32, height: u32) -> Option<PixelRect> {
        let x0 = self.x1.floor().max(0.0) as i64;
        let y0 = self.y1.floor().max(0.0) as i64;
        let x1 = (self.x2.ceil() as i64).min(width as i64);
        let y1 = (self.y2.ceil() as i64).min(height as i64);
        (x1 > x0 && y1 > y0).then(|| PixelRect {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
        })
    }
}

/// A rectangle of whole pixels inside an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelRect {
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && x < self.x + self.width && y >= self.y && y < self.y + self.height
    }
}

/// A point on the floor plan, in metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct PointOnFloor {
    pub x: f64,
    pub y: f64,
}

impl PointOnFloor {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    pub fn distance(&self, other: &PointOnFloor) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// Twice the signed area of triangle (a, b, c): > 0 when c is to the left of a->b in a y-up frame
/// (to the right on a y-down plan).
pub fn cross(a: PointOnFloor, b: PointOnFloor, c: PointOnFloor) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

/// Do the closed segments p1-p2 and q1-q2 touch or cross?
pub fn segments_intersect(p1: PointOnFloor, p2: PointOnFloor, q1: PointOnFloor, q2: PointOnFloor) -> bool {
    let d1 = cross(q1, q2, p1);
    let d2 = cross(q1, q2, p2);
    let d3 = cross(p1, p2, q1);
    let d4 = cross(p1, p2, q2);
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    let on = |a: PointOnFloor, b: PointOnFloor, c: PointOnFloor, d: f64| {
        d == 0.0 && c.x >= a.x.min(b.x) && c.x <= a.x.max(b.x) && c.y >= a.y.min(b.y) && c.y <= a.y.max(b.y)
    };
    on(q1, q2, p1, d1) || on(q1, q2, p2, d2) || on(p1, p2, q1, d3) || on(p1, p2, q2, d4)
}

/// A closed polygon on the floor (vertices in order, not repeated at the end).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PolygonOnFloor {
    pub points: Vec<PointOnFloor>,
}

impl PolygonOnFloor {
    pub fn new(points: Vec<PointOnFloor>) -> Self {
        Self { points }
    }

    /// Even-odd rule; points exactly on an edge may fall either way.
    pub fn contains(&self, p: PointOnFloor) -> bool {
        let pts = &self.points;
        let mut inside = false;
        let mut j = pts.len().wrapping_sub(1);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Area in square metres (shoelace).
    pub fn area(&self) -> f64 {
        let pts = &self.points;
        let n = pts.len();
        (0..n).map(|i| pts[i].x * pts[(i + 1) % n].y - pts[(i + 1) % n].x * pts[i].y).sum::<f64>().abs() / 2.0
    }

    /// At least 3 vertices, non-zero area, and no two non-adjacent edges touching.
    /// Whether the polygon is simple: 3+ points, no edge of zero length, no two edges crossing, some area.
    pub fn is_simple(&self) -> bool {
        self.not_simple().is_none()
    }

    /// Why the polygon is not simple (the first reason found), or `None` when it is.
    pub fn not_simple(&self) -> Option<NotSimple> {
        let pts = &self.points;
        let n = pts.len();
        if n < 3 {
            return Some(NotSimple::TooFewPoints(n));
        }
        // Adjacent edges folding back onto each other (a repeated point) also make a polygon non-simple.
        let too_short = |d: f64| d.is_nan() || d <= 1e-9;
        if let Some(i) = (0..n).find(|&i| too_short(pts[i].distance(&pts[(i + 1) % n]))) {
            return Some(NotSimple::ZeroLengthEdge(i));
        }
        for i in 0..n {
            for j in i + 1..n {
                let adjacent = j == i + 1 || (i == 0 && j == n - 1);
                if !adjacent && segments_intersect(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]) {
                    return Some(NotSimple::EdgesCross(i, j));
                }
            }
        }
        let area = self.area();
        if area.is_nan() || area <= 1e-12 {
            return Some(NotSimple::NoArea);
        }
        None
    }

    pub fn centroid(&self) -> PointOnFloor {
        let n = self.points.len().max(1) as f64;
        let (sx, sy) = self.points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
        PointOnFloor::new(sx / n, sy / n)
    }
}

/// Why a polygon is not simple; edge `i` runs from point `i` to point `i + 1` (the last back to the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSimple {
    TooFewPoints(usize),
    ZeroLengthEdge(usize),
    EdgesCross(usize, usize),
    NoArea,
}

/// Greedy non-maximum suppression: sorts `candidates` by score, highest first, and puts the indices of the
/// survivors in `keep` (cleared first, so the caller can reuse the buffer). `key` gives each candidate's
/// box and score.
pub fn nms<T>(candidates: &mut [T], key: impl Fn(&T) -> (BoxInImage, f32), iou_threshold: f32, keep: &mut Vec<usize>) {
    candidates.sort_by(|a, b| key(b).1.total_cmp(&key(a).1));
    keep.clear();
    'outer: for i in 0..candidates.len() {
        let (bi, _) = key(&candidates[i]);
        for &k in keep.iter() {
            if bi.iou(&key(&candidates[k]).0) > iou_threshold {
                continue 'outer;
            }
        }
        keep.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_box() -> impl Strategy<Value = BoxInImage> {
        (-50f32..500.0, -50f32..500.0, 0f32..200.0, 0f32..200.0)
            .prop_map(|(x, y, w, h)| BoxInImage::from_xywh(x, y, w, h))
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(a in arb_box(), b in arb_box()) {
            let ab = a.iou(&b);
            prop_assert!((ab - b.iou(&a)).abs() < 1e-5);
            prop_assert!((0.0..=1.0 + 1e-5).contains(&ab));
        }

        #[test]
        fn a_box_overlaps_itself_fully(a in arb_box()) {
            prop_assume!(a.area() > 1e-3);
            prop_assert!((a.iou(&a) - 1.0).abs() < 1e-4);
        }

        #[test]
        fn pixel_rect_stays_inside_the_image(a in arb_box(), w in 1u32..400, h in 1u32..400) {
            if let Some(r) = a.to_pixel_rect(w, h) {
                prop_assert!(r.x + r.width <= w && r.y + r.height <= h && r.width > 0 && r.height > 0);
            }
        }

        #[test]
        fn nms_survivors_do_not_overlap(boxes in proptest::collection::vec((arb_box(), 0f32..1.0), 0..30)) {
            let mut c = boxes;
            let mut keep = Vec::new();
            nms(&mut c, |c| *c, 0.4, &mut keep);
            for (i, &a) in keep.iter().enumerate() {
                for &b in &keep[i + 1..] {
                    prop_assert!(c[a].0.iou(&c[b].0) <= 0.4);
                }
            }
        }
    }

    fn square() -> PolygonOnFloor {
        PolygonOnFloor::new(vec![
            PointOnFloor::new(0.0, 0.0),
            PointOnFloor::new(2.0, 0.0),
            PointOnFloor::new(2.0, 2.0),
            PointOnFloor::new(0.0, 2.0),
        ])
    }

    #[test]
    fn polygons_contain_their_inside_and_report_simplicity() {
        let sq = square();
        assert!(sq.contains(PointOnFloor::new(1.0, 1.0)));
        assert!(!sq.contains(PointOnFloor::new(3.0, 1.0)));
        assert!(sq.is_simple());
        assert!((sq.area() - 4.0).abs() < 1e-12);
        let bowtie = PolygonOnFloor::new(vec![
            PointOnFloor::new(0.0, 0.0),
            PointOnFloor::new(2.0, 2.0),
            PointOnFloor::new(2.0, 0.0),
            PointOnFloor::new(0.0, 2.0),
        ]);
        assert!(!bowtie.is_simple());
    }

    proptest! {
        #[test]
        fn convex_polygons_contain_their_centroid(cx in -50f64..50.0, cy in -50f64..50.0, r in 0.1f64..20.0, n in 3usize..12) {
            let pts = (0..n).map(|k| {
                let a = k as f64 / n as f64 * std::f64::consts::TAU;
                PointOnFloor::new(cx + r * a.cos(), cy + r * a.sin())
            }).collect();
            let poly = PolygonOnFloor::new(pts);
            prop_assert!(poly.is_simple());
            prop_assert!(poly.contains(PointOnFloor::new(cx, cy)));
            prop_assert!(!poly.contains(PointOnFloor::new(cx + 2.0 * r, cy)));
        }
    }

    #[test]
    fn expanded_grows_on_every_side() {
        let b = BoxInImage::from_xywh(10.0, 10.0, 10.0, 20.0).expanded(0.5);
        assert_eq!(b, BoxInImage::new(5.0, 0.0, 25.0, 40.0));
    }
}
