//! `iobox heatmap` on the database of a real run: the picture, its colour bar, and k-suppression.

use crate::common;

fn heatmap(dir: &std::path::Path, k: u32, kind: &str) -> (image::RgbImage, String) {
    let out = dir.join(format!("heat-{kind}-k{k}.png"));
    let config = common::config_with_k(dir, k);
    let o = common::iobox(
        &[
            "heatmap",
            "--config",
            config.to_str().unwrap(),
            "--db",
            common::sample_db().to_str().unwrap(),
            "--from",
            "2000-01-01",
            "--kind",
            kind,
            "--out",
            out.to_str().unwrap(),
        ],
        dir,
    );
    let t = common::text(&o);
    assert!(o.status.success(), "{t}");
    (image::open(&out).unwrap().to_rgb8(), t)
}

/// Plan pixel of a floor point on calibration/sample.toml's plan (100 px/m, origin 0,0), below the 24 px
/// title band.
fn plan_px(x_m: f64, y_m: f64) -> (u32, u32) {
    ((x_m * 100.0) as u32, (y_m * 100.0) as u32 + 24)
}

fn luminance(p: &image::Rgb<u8>) -> f64 {
    0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
}

#[test]
fn the_heatmap_is_brightest_where_people_stood_and_has_a_colour_bar() {
    let dir = tempfile::tempdir().unwrap();
    let plan = image::image_dimensions(common::root().join("calibration/site-plan.png")).unwrap();
    for kind in ["presence", "dwell"] {
        let (img, log) = heatmap(dir.path(), 1, kind);
        println!("{kind}: {log}");
        assert_eq!(img.dimensions(), (plan.0 + 110, plan.1 + 24), "plan plus colour bar and title");
        // Everyone stood at the table (feet about 0.6 m in front of its centre at 3.3, 0.89 m): the cells
        // there are lit; the far corner of the room, where nobody went, is not.
        let (tx, ty) = plan_px(3.3, 1.45);
        let table = img.get_pixel(tx, ty);
        let (cx, cy) = plan_px(0.5, 3.5);
        let corner = img.get_pixel(cx, cy);
        let plan_img = image::open(common::root().join("calibration/site-plan.png")).unwrap().to_rgb8();
        assert_ne!(table, plan_img.get_pixel(tx, ty - 24), "{kind}: the table area is coloured");
        assert_eq!(corner, plan_img.get_pixel(cx, cy - 24), "{kind}: the empty corner is untouched");
        // The colour bar runs from bright (top, the maximum) to dark (bottom, 0).
        let bar_x = plan.0 + 16 + 10;
        let top = img.get_pixel(bar_x, 24 + 22);
        let bottom = img.get_pixel(bar_x, 24 + 20 + (plan.1 - 60) - 2);
        assert!(luminance(top) > 200.0 && luminance(bottom) < 40.0, "{kind}: bar {top:?} .. {bottom:?}");
    }
}

#[test]
fn cells_with_fewer_than_k_people_are_hatched_not_coloured() {
    let dir = tempfile::tempdir().unwrap();
    let (_, k1) = heatmap(dir.path(), 1, "presence");
    let (_, k7) = heatmap(dir.path(), 7, "presence");
    let count = |log: &str, what: &str| -> usize {
        let i = log.find(what).unwrap_or_else(|| panic!("{what} in {log}"));
        log[..i].trim_end().rsplit([' ', ',', ':']).next().unwrap().parse().unwrap()
    };
    // Six people in the clip: with k = 7 nothing may be shown, with k = 1 nothing is hidden.
    assert_eq!(count(&k1, "suppressed"), 0, "{k1}");
    assert!(count(&k1, "cells,") > 0, "{k1}");
    assert_eq!(count(&k7, "cells,"), 0, "{k7}");
    assert!(count(&k7, "suppressed") > 0, "{k7}");
}
