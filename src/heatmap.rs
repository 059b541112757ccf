//! Floor-plan heatmaps: floor cells (already aggregated and k-suppressed by `store::query::heat_cells`)
//! drawn over the store's floor plan with a colour bar. Pure drawing: no database, no camera pixels.

use image::Rgb;
use serde::{Deserialize, Serialize};

use crate::calibration::{FloorPlan, PointOnPlan};
use crate::geometry::PointOnFloor;
use crate::overlay::{BLACK, Picture, WHITE};
use crate::store::query::HeatCell;

/// What the colour shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeatKind {
    /// Track-frames seen in the cell: where people are.
    Presence,
    /// Time spent in the cell: where people linger.
    Dwell,
}

impl HeatKind {
    /// A shown cell's value in [`HeatKind::unit`]s.
    pub fn value(self, c: &HeatCell) -> Option<f64> {
        match self {
            HeatKind::Presence => c.presence.map(|v| v as f64),
            HeatKind::Dwell => c.dwell_ms.map(|v| v as f64 / 1000.0),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            HeatKind::Presence => "track-frames",
            HeatKind::Dwell => "seconds",
        }
    }

    /// The name in configs, URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HeatKind::Presence => "presence",
            HeatKind::Dwell => "dwell",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            HeatKind::Presence => "Presence",
            HeatKind::Dwell => "Dwell",
        }
    }
}

/// The "inferno" colour map (perceptually uniform, readable in grey), sampled at 9 stops.
const INFERNO: [[u8; 3]; 9] = [
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
];

/// Colour of `t` in 0..1.
pub fn colour(t: f64) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0) * (INFERNO.len() - 1) as f64;
    let i = (t.floor() as usize).min(INFERNO.len() - 2);
    let f = t - i as f64;
    let (a, b) = (INFERNO[i], INFERNO[i + 1]);
    Rgb(std::array::from_fn(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8))
}

const BAR_WIDTH: u32 = 110;
/// Opacity of a cell over the floor plan (the PNG here and the dashboard's SVG).
pub(crate) const OPACITY: f64 = 0.7;

/// What a rendered heatmap shows, for captions and tests.
#[derive(Debug, Clone, Serialize)]
pub struct Legend {
    pub kind: HeatKind,
    pub unit: &'static str,
    pub max: f64,
    pub cells_drawn: usize,
    pub cells_suppressed: usize,
}

/// Draws `cells` on `plan_picture` (the floor plan image, or a blank canvas of its size), adds a colour bar
/// on the right and a title on top. The colour scale runs from 0 to the largest shown value; suppressed
/// cells are hatched grey.
pub fn render(
    plan_picture: Picture,
    plan: &FloorPlan,
    cells: &[HeatCell],
    kind: HeatKind,
    title: &str,
) -> (Picture, Legend) {
    let (pw, ph) = (plan_picture.width(), plan_picture.height());
    let top = 24u32;
    let mut pic = Picture::blank(pw + BAR_WIDTH, ph + top, WHITE);
    pic.paste(&plan_picture, 0, top);
    let plan_area = (0, top as i64, pw as i64, (ph + top) as i64);
    let max = cells.iter().filter(|c| !c.suppressed).filter_map(|c| kind.value(c)).fold(0.0, f64::max);
    let (mut drawn, mut suppressed) = (0, 0);
    for c in cells {
        let corner = |x: i64, y: i64| plan.plan_from_floor(PointOnFloor::new(x as f64 * c.cell_m, y as f64 * c.cell_m));
        let (a, b): (PointOnPlan, PointOnPlan) = (corner(c.cx, c.cy), corner(c.cx + 1, c.cy + 1));
        let (x0, x1) = (a.x.min(b.x).round() as i64, a.x.max(b.x).round() as i64);
        let (y0, y1) = (a.y.min(b.y).round() as i64 + top as i64, a.y.max(b.y).round() as i64 + top as i64);
        match kind.value(c) {
            Some(v) if !c.suppressed => {
                let t = if max > 0.0 { v / max } else { 0.0 };
                pic.blend_rect((x0, y0, x1, y1), colour(t), OPACITY, plan_area);
                drawn += 1;
            }
            _ => {
                pic.hatch_rect((x0, y0, x1, y1), Rgb([150, 150, 150]), plan_area);
                suppressed += 1;
            }
        }
    }
    // The colour bar: a vertical gradient from 0 (bottom) to max (top), with three labels.
    let (bx, by, bh) = (pw + 16, top + 20, ph.saturating_sub(60).max(60));
    for y in 0..bh {
        let c = colour(1.0 - y as f64 / (bh - 1).max(1) as f64);
        pic.line((bx as f32, (by + y) as f32), ((bx + 22) as f32, (by + y) as f32), c, 1);
    }
    pic.line((bx as f32, by as f32), ((bx + 22) as f32, by as f32), BLACK, 1);
    pic.line((bx as f32, (by + bh) as f32), ((bx + 22) as f32, (by + bh) as f32), BLACK, 1);
    let label = |v: f64| if v >= 100.0 || v == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") };
    pic.text((bx + 28) as i32, by as i32 - 4, &label(max), WHITE, 1);
    pic.text((bx + 28) as i32, (by + bh / 2) as i32 - 4, &label(max / 2.0), WHITE, 1);
    pic.text((bx + 28) as i32, (by + bh) as i32 - 4, "0", WHITE, 1);
    pic.text(bx as i32, (by + bh + 12) as i32, kind.unit(), WHITE, 1);
    if suppressed > 0 {
        let key = (bx as i64, (by + bh + 28) as i64, bx as i64 + 14, (by + bh + 42) as i64);
        pic.hatch_rect(key, Rgb([150, 150, 150]), key);
        pic.text(bx as i32 + 18, (by + bh + 31) as i32, "< k", WHITE, 1);
    }
    pic.text(4, 6, title, WHITE, 1);
    (pic, Legend { kind, unit: kind.unit(), max, cells_drawn: drawn, cells_suppressed: suppressed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_map_runs_dark_to_light() {
        let lum = |c: Rgb<u8>| 0.299 * c[0] as f64 + 0.587 * c[1] as f64 + 0.114 * c[2] as f64;
        let mut last = -1.0;
        for k in 0..=20 {
            let l = lum(colour(k as f64 / 20.0));
            assert!(l > last, "luminance rises monotonically");
            last = l;
        }
        assert_eq!(colour(-1.0), colour(0.0));
        assert_eq!(colour(2.0), colour(1.0));
    }

    #[test]
    fn cells_land_where_the_plan_scale_puts_them() {
        let plan = FloorPlan { image: "none.png".into(), pixels_per_metre: 100.0, origin_px: (0.0, 0.0) };
        let cells = [
            HeatCell {
                cell_m: 0.5,
                cx: 2,
                cy: 1,
                presence: Some(10),
                dwell_ms: Some(1000),
                tracks: Some(6),
                suppressed: false,
                buckets_suppressed: 0,
            },
            HeatCell {
                cell_m: 0.5,
                cx: 0,
                cy: 0,
                presence: None,
                dwell_ms: None,
                tracks: None,
                suppressed: true,
                buckets_suppressed: 1,
            },
        ];
        let (pic, legend) = render(Picture::blank(300, 200, WHITE), &plan, &cells, HeatKind::Presence, "t");
        assert_eq!((legend.cells_drawn, legend.cells_suppressed), (1, 1));
        assert_eq!(legend.max, 10.0);
        // Cell (2, 1) covers plan pixels x 100..150, y 50..100 (+24 for the title band): the top colour.
        let p = pic.image().get_pixel(125, 75 + 24);
        let expected = colour(1.0);
        for k in 0..3 {
            let blended = (expected[k] as f64 * OPACITY + 255.0 * (1.0 - OPACITY)).round();
            assert!((p[k] as f64 - blended).abs() <= 1.0, "{p:?}");
        }
        // Outside any cell the plan is untouched.
        assert_eq!(*pic.image().get_pixel(250, 180), WHITE);
    }
}
