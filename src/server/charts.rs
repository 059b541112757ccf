//! Charts as inline SVG, written as text: horizontal bars, hourly columns, stacked shares, and the heatmap
//! on the floor plan with its colour bar. The box is offline, so nothing comes from a CDN; every text that
//! came from a file or a request is escaped.

use std::fmt::Write as _;

use super::api::Heatmap;
use crate::heatmap::OPACITY as CELL_OPACITY; // a cell over the plan, as in the PNG

/// HTML/XML text escaping (also for attribute values).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The heatmap's colour for `t` in 0..=1: the same map as the PNG ([`crate::heatmap::colour`]).
pub(crate) fn ramp(t: f64) -> [u8; 3] {
    crate::heatmap::colour(if t.is_finite() { t } else { 0.0 }).0
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A hatch pattern for suppressed rows and cells.
fn hatch(id: &str) -> String {
    format!(
        "<pattern id=\"{id}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" fill=\"#e4e4e4\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#9a9a9a\" \
         stroke-width=\"2\"/></pattern>"
    )
}

/// The opening of a chart: its size, accessible title and the hatch pattern for suppressed rows.
fn svg_open(class: &str, id: &str, w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg class=\"chart {class}\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{t}\"><title>{t}</title><defs>{}</defs>",
        hatch(&format!("{}-hatch", esc(id))),
        id = esc(id),
        t = esc(title),
    )
}

/// One bar of a horizontal bar chart; `value: None` is a suppressed row.
pub(crate) struct Bar {
    pub label: String,
    pub value: Option<f64>,
    /// Shown at the end of the bar.
    pub text: String,
    /// A tick on the bar (e.g. the 90th percentile), in the same unit as `value`.
    pub marker: Option<f64>,
}

const LABEL_W: f64 = 190.0;
const BAR_W: f64 = 380.0;
const TEXT_W: f64 = 170.0;
const ROW_H: f64 = 26.0;

/// Horizontal bars scaled to the largest value (or marker); suppressed rows hatched, saying so.
pub(crate) fn bars(id: &str, title: &str, rows: &[Bar], k: u32) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{}\">No data in this period.</p>", esc(id));
    }
    let max = rows.iter().flat_map(|b| [b.value, b.marker]).flatten().fold(0.0f64, f64::max).max(1e-9);
    let h = ROW_H * rows.len() as f64 + 8.0;
    let w = LABEL_W + BAR_W + TEXT_W;
    let mut s = svg_open("bars", id, w, h, title);
    for (i, b) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW_H;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            LABEL_W - 8.0,
            y + 17.0,
            esc(&b.label)
        );
        match b.value {
            Some(v) => {
                let bw = (v / max * BAR_W).max(if v > 0.0 { 1.0 } else { 0.0 });
                let _ = write!(
                    s,
                    "<rect class=\"bar\" x=\"{LABEL_W}\" y=\"{}\" width=\"{bw:.1}\" height=\"{}\"><title>{}</title></rect>",
                    y + 3.0,
                    ROW_H - 8.0,
                    esc(&format!("{}: {}", b.label, b.text))
                );
                if let Some(m) = b.marker {
                    let x = LABEL_W + m / max * BAR_W;
                    let _ = write!(
                        s,
                        "<line class=\"marker\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\"/>",
                        y + 1.0,
                        y + ROW_H - 3.0
                    );
                }
                let _ = write!(
                    s,
                    "<text x=\"{}\" y=\"{}\" class=\"value\">{}</text>",
                    LABEL_W + bw + 6.0,
                    y + 17.0,
                    esc(&b.text)
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<rect class=\"suppressed\" x=\"{LABEL_W}\" y=\"{}\" width=\"{BAR_W}\" height=\"{}\" \
                     fill=\"url(#{id}-hatch)\"/><text x=\"{}\" y=\"{}\" class=\"value muted\">suppressed: fewer \
                     than {k} people</text>",
                    y + 3.0,
                    ROW_H - 8.0,
                    LABEL_W + 8.0,
                    y + 17.0,
                    id = esc(id)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// Vertical columns (one per hour); `None` is a suppressed column.
pub(crate) fn columns(id: &str, title: &str, cols: &[(String, Option<f64>)], k: u32) -> String {
    if cols.is_empty() {
        return format!("<p class=\"empty\" id=\"{}\">No entries in this period.</p>", esc(id));
    }
    let max = cols.iter().filter_map(|c| c.1).fold(0.0f64, f64::max).max(1.0);
    let col_w = (720.0 / cols.len() as f64).clamp(4.0, 40.0);
    let (w, h, base) = (col_w * cols.len() as f64 + 60.0, 200.0, 170.0);
    let mut s = svg_open("columns", id, w, h, title);
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"40\" x2=\"{w}\" y1=\"{base}\" y2=\"{base}\"/>\
         <text x=\"36\" y=\"24\" text-anchor=\"end\" class=\"tick\">{max}</text>\
         <text x=\"36\" y=\"{base}\" text-anchor=\"end\" class=\"tick\">0</text>"
    );
    let label_every = (cols.len() / 12).max(1);
    for (i, (label, v)) in cols.iter().enumerate() {
        let x = 44.0 + i as f64 * col_w;
        match v {
            Some(v) => {
                let ch = v / max * (base - 20.0);
                let _ = write!(
                    s,
                    "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ch:.1}\"><title>{}</title></rect>",
                    base - ch,
                    col_w - 2.0,
                    esc(&format!("{label}: {v}"))
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<rect class=\"suppressed\" x=\"{x:.1}\" y=\"20\" width=\"{:.1}\" height=\"{}\" \
                     fill=\"url(#{}-hatch)\"><title>{}: suppressed (fewer than {k} people)</title></rect>",
                    col_w - 2.0,
                    base - 20.0,
                    esc(id),
                    esc(label)
                );
            }
        }
        if i % label_every == 0 {
            let short = label.get(11..16).unwrap_or(label);
            let _ = write!(s, "<text x=\"{x:.1}\" y=\"{}\" class=\"tick\">{}</text>", base + 16.0, esc(short));
        }
    }
    s.push_str("</svg>");
    s
}

/// The expression classes' colours, in [`crate::behaviour::EMOTIONS`] order.
pub(crate) const MOOD_COLOURS: [&str; 7] =
    ["#d7301f", "#7a5195", "#955196", "#f6c000", "#3b75af", "#2ca02c", "#b5b5b5"];

/// One 100% bar per row, split by the shares of each class; `None` is a suppressed row.
/// One zone's bar in the mood chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MoodBar {
    /// The shares of each expression among the faces read.
    Shares([f64; 7]),
    /// Fewer than k people.
    Suppressed,
    /// Too few faces read to say anything: the share that was.
    NotReadable(f64),
}

pub(crate) fn stacked(id: &str, title: &str, rows: &[(String, MoodBar)], k: u32) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{}\">No expressions read in this period.</p>", esc(id));
    }
    let classes = crate::behaviour::EMOTIONS;
    let h = ROW_H * rows.len() as f64 + 40.0;
    let w = LABEL_W + BAR_W + TEXT_W;
    let mut s = svg_open("stacked", id, w, h, title);
    for (i, (label, shares)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW_H;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            LABEL_W - 8.0,
            y + 17.0,
            esc(label)
        );
        match shares {
            MoodBar::Shares(sh) => {
                let mut x = LABEL_W;
                for (c, share) in sh.iter().enumerate() {
                    let sw = share * BAR_W;
                    if sw > 0.0 {
                        let _ = write!(
                            s,
                            "<rect x=\"{x:.1}\" y=\"{}\" width=\"{sw:.1}\" height=\"{}\" fill=\"{}\"><title>{}: {} {:.0}%</title></rect>",
                            y + 3.0,
                            ROW_H - 8.0,
                            MOOD_COLOURS[c],
                            esc(label),
                            classes[c],
                            share * 100.0
                        );
                    }
                    x += sw;
                }
            }
            MoodBar::Suppressed | MoodBar::NotReadable(_) => {
                let why = match shares {
                    MoodBar::NotReadable(read) => {
                        format!("not readable: {:.0}% of the faces seen could be read", read * 100.0)
                    }
                    _ => format!("suppressed: fewer than {k} people"),
                };
                let _ = write!(
                    s,
                    "<rect class=\"suppressed\" x=\"{LABEL_W}\" y=\"{}\" width=\"{BAR_W}\" height=\"{}\" \
                     fill=\"url(#{}-hatch)\"/><text x=\"{}\" y=\"{}\" class=\"value muted\">{}</text>",
                    y + 3.0,
                    ROW_H - 8.0,
                    esc(id),
                    LABEL_W + 8.0,
                    y + 17.0,
                    esc(&why)
                );
            }
        }
    }
    let ly = 4.0 + rows.len() as f64 * ROW_H + 12.0;
    for (c, name) in classes.iter().enumerate() {
        let x = LABEL_W + c as f64 * 78.0;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" class=\"tick\">{name}</text>",
            MOOD_COLOURS[c],
            x + 16.0,
            ly + 10.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Where the heatmap is drawn: floor metres -> SVG pixels.
struct Frame {
    width: f64,
    height: f64,
    ppm: f64,
    origin: (f64, f64),
}

impl Frame {
    fn px(&self, x_m: f64, y_m: f64) -> (f64, f64) {
        (self.origin.0 + x_m * self.ppm, self.origin.1 + y_m * self.ppm)
    }
}

/// The heatmap: cells coloured on the floor plan (or on a 1 m grid when there is no plan), suppressed cells
/// hatched, zones outlined and named.
pub(crate) fn heatmap(map: &Heatmap) -> String {
    let frame = match &map.plan {
        Some(p) => Frame {
            width: p.width as f64,
            height: p.height as f64,
            ppm: p.pixels_per_metre,
            origin: (p.origin_px[0], p.origin_px[1]),
        },
        None => {
            // No plan: a canvas around the cells and zones at 100 px per metre.
            let mut max = (1.0f64, 1.0f64);
            for c in &map.cells {
                max = (max.0.max((c.cx + 1) as f64 * c.cell_m), max.1.max((c.cy + 1) as f64 * c.cell_m));
            }
            for z in &map.zones {
                for p in &z.polygon {
                    max = (max.0.max(p[0]), max.1.max(p[1]));
                }
            }
            let ppm = (800.0 / max.0.max(max.1)).clamp(10.0, 100.0);
            Frame { width: (max.0 + 0.5) * ppm + 20.0, height: (max.1 + 0.5) * ppm + 20.0, ppm, origin: (10.0, 10.0) }
        }
    };
    let (w, h) = (frame.width, frame.height);
    let mut s = format!(
        "<svg class=\"heatmap\" id=\"heatmap\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{kind} heatmap\" data-cells=\"{n}\" data-suppressed=\"{sup}\"><title>{kind} heatmap</title><defs>{}</defs>",
        hatch("cell-hatch"),
        kind = map.kind.as_str(),
        n = map.shown,
        sup = map.suppressed
    );
    match &map.plan {
        Some(p) => {
            let _ = write!(s, "<image href=\"{}\" x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\"/>", p.url);
        }
        None => {
            let _ = write!(s, "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fafafa\"/>");
            let mut m = 0.0;
            while frame.px(m, 0.0).0 <= w {
                let (x, _) = frame.px(m, 0.0);
                let _ = write!(s, "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{h}\"/>");
                m += 1.0;
            }
            let mut m = 0.0;
            while frame.px(0.0, m).1 <= h {
                let (_, y) = frame.px(0.0, m);
                let _ = write!(s, "<line class=\"grid\" x1=\"0\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>");
                m += 1.0;
            }
        }
    }
    let max = map.max.unwrap_or(0.0).max(1e-9);
    for c in &map.cells {
        let (x, y) = frame.px(c.cx as f64 * c.cell_m, c.cy as f64 * c.cell_m);
        let side = c.cell_m * frame.ppm;
        match map.value(c) {
            Some(v) => {
                let _ = write!(
                    s,
                    "<rect class=\"cell\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{side:.1}\" height=\"{side:.1}\" fill=\"{}\" \
                     fill-opacity=\"{CELL_OPACITY}\"><title>{} {}</title></rect>",
                    hex(ramp(v / max)),
                    fmt_num(v),
                    map.unit
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<rect class=\"cell suppressed\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{side:.1}\" height=\"{side:.1}\" \
                     fill=\"url(#cell-hatch)\" fill-opacity=\"0.6\"><title>suppressed: fewer than {} people</title></rect>",
                    map.k
                );
            }
        }
    }
    for z in &map.zones {
        let pts: Vec<String> =
            z.polygon.iter().map(|p| frame.px(p[0], p[1])).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        // The name inside the top-left corner: centroids of nested zones (a table on the floor) collide.
        let corner = z.polygon.iter().copied().min_by(|a, b| (a[1] + a[0] * 0.01).total_cmp(&(b[1] + b[0] * 0.01)));
        let (lx, ly) = corner.map(|p| frame.px(p[0], p[1])).unwrap_or_default();
        let _ = write!(
            s,
            "<polygon class=\"zone {}\" points=\"{}\"/><text class=\"zone-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            z.kind,
            pts.join(" "),
            lx + 4.0,
            ly + 15.0,
            esc(&z.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// The heatmap's legend: the colour bar from 0 to the largest value with its unit, and the suppressed swatch.
pub(crate) fn legend(map: &Heatmap) -> String {
    let (w, h) = (420.0, 74.0);
    let mut s = format!(
        "<svg class=\"legend\" id=\"legend\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"colour bar\"><title>colour bar: {} {}</title><defs><linearGradient id=\"ramp\" x1=\"0\" x2=\"1\" \
         y1=\"0\" y2=\"0\">",
        map.kind.as_str(),
        map.unit
    );
    for i in 0..=8 {
        let t = i as f64 / 8.0;
        let _ = write!(s, "<stop offset=\"{t}\" stop-color=\"{}\"/>", hex(ramp(t)));
    }
    s.push_str("</linearGradient>");
    s.push_str(&hatch("legend-hatch"));
    let max = map.max.unwrap_or(0.0);
    let _ = write!(
        s,
        "</defs><rect class=\"colour-bar\" x=\"10\" y=\"8\" width=\"300\" height=\"16\" fill=\"url(#ramp)\" \
         stroke=\"#555\"/>"
    );
    for (i, f) in [0.0, 0.5, 1.0].into_iter().enumerate() {
        let x = 10.0 + 300.0 * f;
        let anchor = ["start", "middle", "end"][i];
        let _ = write!(
            s,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"24\" y2=\"29\" stroke=\"#555\"/><text class=\"tick\" x=\"{x}\" y=\"41\" \
             text-anchor=\"{anchor}\">{}</text>",
            fmt_num(max * f)
        );
    }
    let _ = write!(
        s,
        "<text class=\"tick\" x=\"318\" y=\"21\">{}</text><rect x=\"10\" y=\"52\" width=\"16\" height=\"16\" \
         fill=\"url(#legend-hatch)\" stroke=\"#999\"/><text class=\"tick\" x=\"32\" y=\"64\">suppressed: fewer than {} \
         people</text></svg>",
        map.unit, map.k
    );
    s
}

/// A number for a label: whole numbers without decimals, others with up to one.
pub(crate) fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e15 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_clamps() {
        assert_eq!(ramp(7.0), ramp(1.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
    }

    #[test]
    fn text_is_escaped_in_charts() {
        let rows = [Bar { label: "<script>x</script>".into(), value: Some(1.0), text: "1".into(), marker: None }];
        let svg = bars("b", "t", &rows, 5);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        let svg = bars("b", "t", &[Bar { label: "z".into(), value: None, text: String::new(), marker: None }], 5);
        assert!(svg.contains("suppressed: fewer than 5 people"));
        assert_eq!(esc("a\"b'c&"), "a&quot;b&#39;c&amp;");
    }
}
