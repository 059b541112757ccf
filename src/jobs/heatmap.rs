//! `iobox heatmap`: the floor-plan heatmap over a period, as a picture with a colour bar (also what the
//! dashboard serves).

use std::path::Path;

use crate::calibration::{Calibration, FloorPlan};
use crate::config::Config;
use crate::heatmap::{HeatKind, Legend, render};
use crate::overlay::{Picture, WHITE};
use crate::store::query::{HeatCell, Period, heat_cells};

use super::JobError;

/// The floor plan the site's cameras share: the first calibrated camera's.
pub fn site_floor_plan(config: &Config) -> Result<FloorPlan, JobError> {
    let path = config.cameras.iter().find_map(|c| c.calibration.as_deref()).ok_or_else(|| {
        JobError::Usage(format!(
            "{}: no camera has a calibration, and the heatmap is drawn on the floor plan a calibration names",
            config.origin
        ))
    })?;
    Ok(Calibration::load(path)?.floor_plan)
}

/// The picture's title: what it shows, the period (open ends as "start" and "now") and the camera.
pub fn title(kind: HeatKind, from_ms: Option<i64>, to_ms: Option<i64>, camera: Option<&str>) -> String {
    let day = super::report::format_day;
    format!(
        "{} {} .. {}{}",
        kind.title(),
        from_ms.map(day).unwrap_or_else(|| "start".into()),
        to_ms.map(day).unwrap_or_else(|| "now".into()),
        camera.map(|c| format!(", camera {c}")).unwrap_or_default()
    )
}

/// Renders the k-suppressed heat cells of `period` (of one camera, or all) on `plan`.
pub fn heatmap(
    db: &Path,
    plan: &FloorPlan,
    period: Period,
    k: u32,
    kind: HeatKind,
    camera: Option<&str>,
    title: &str,
) -> Result<(Picture, Legend), JobError> {
    let conn = crate::store::open_ro(db)?;
    let cells = heat_cells(&conn, period, k, camera)?;
    Ok(draw(plan, &cells, kind, title))
}

/// Draws cells (from `heat_cells`) on the plan image, or on a blank canvas when it cannot be read.
pub fn draw(plan: &FloorPlan, cells: &[HeatCell], kind: HeatKind, title: &str) -> (Picture, Legend) {
    let base = match Picture::open_plan(&plan.image) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("{e}; drawing on a blank canvas");
            let (mut w, mut h) = (400.0f64, 300.0f64);
            for c in cells {
                let far = plan.plan_from_floor(crate::geometry::PointOnFloor::new(
                    (c.cx + 1) as f64 * c.cell_m,
                    (c.cy + 1) as f64 * c.cell_m,
                ));
                w = w.max(far.x + 20.0);
                h = h.max(far.y + 20.0);
            }
            Picture::blank(w.min(4000.0) as u32, h.min(4000.0) as u32, WHITE)
        }
    };
    render(base, plan, cells, kind, title)
}
