//! Hand-written SVG line charts for the HTML report: linear or log axes, one polyline per
//! series with point markers (each with a native `<title>` tooltip), optional vertical marks
//! (the crossover) and an optional `y = x` reference line. A few hundred lines cost less to
//! compile than a plotting crate and keep every pixel of the output under our control.

use std::fmt::Write as _;

/// Chart size in SVG user units; the page scales it to its column.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 80.0;
/// Series with more points than this are drawn as a bare line.
const MAX_MARKERS: usize = 40;

/// An axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Linear from zero.
    Linear,
    /// Base-10 logarithmic; values ≤ 0 are not drawn.
    Log,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub label: String,
    /// Stroke colour (CSS).
    pub color: &'static str,
    /// `stroke-dasharray`, `None` for a solid line.
    pub dash: Option<&'static str>,
    /// Stroke width; `None` for the stylesheet's.
    pub width: Option<f64>,
    /// `(x, y)` points, drawn in x order.
    pub points: Vec<(f64, f64)>,
}

/// A vertical mark, such as the crossover rate and the bracket it lies in.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// Start of the shaded range, if any.
    pub from: Option<f64>,
    /// Where the dashed line goes.
    pub at: f64,
    /// Caption next to the line.
    pub caption: String,
}

/// A line chart.
pub(crate) struct Chart {
    /// Heading drawn above the plot.
    pub title: String,
    /// X axis caption.
    pub x_label: String,
    /// Y axis caption.
    pub y_label: String,
    /// X scale.
    pub x_scale: Scale,
    /// Y scale.
    pub y_scale: Scale,
    /// The lines.
    pub series: Vec<Series>,
    /// Lines drawn under `series` (a baseline run), listed after them in the legend.
    pub underlay: Vec<Series>,
    /// Vertical marks: a dashed line at `at`, the range from `from` shaded, and a caption.
    pub marks: Vec<Mark>,
    /// Draw the `y = x` reference line (achieved vs offered).
    pub diagonal: bool,
    /// Tick and tooltip formatting of x values.
    pub x_fmt: fn(f64) -> String,
    /// Tick and tooltip formatting of y values.
    pub y_fmt: fn(f64) -> String,
}

/// Maps data values to pixels along one axis.
struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Axis {
    fn new(scale: Scale, values: &[f64], from: f64, to: f64) -> Axis {
        let (lo, hi) = domain(scale, values);
        Axis {
            scale,
            lo,
            hi,
            from,
            to,
        }
    }

    fn pos(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        };
        self.from + t.clamp(-0.02, 1.02) * (self.to - self.from)
    }

    fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step(self.hi / 5.0);
                let mut v = (self.lo.max(0.0) / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + step * 1e-9 {
                    out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
                    v += step;
                }
                out
            }
            Scale::Log => {
                let (a, b) = (
                    self.lo.log10().floor() as i32,
                    self.hi.log10().ceil() as i32,
                );
                // 1-2-5 ticks up to three decades, then powers of ten only.
                let mults: &[f64] = if self.hi / self.lo <= 1000.0 * (1.0 + 1e-9) {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut out = Vec::new();
                for e in a..=b {
                    for m in mults {
                        let v = m * 10f64.powi(e);
                        if v >= self.lo * 0.999 && v <= self.hi * 1.001 {
                            out.push(v);
                        }
                    }
                }
                out
            }
        }
    }
}

/// The drawn range: whole decades for log axes, zero to a nice maximum for linear ones.
fn domain(scale: Scale, values: &[f64]) -> (f64, f64) {
    match scale {
        Scale::Linear => {
            let max = values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            // A little room below zero keeps lines at zero off the frame.
            let hi = if max <= 0.0 {
                1.0
            } else {
                let step = nice_step(max / 5.0);
                (max / step).ceil() * step
            };
            (-hi * 0.03, hi)
        }
        Scale::Log => {
            let pos: Vec<f64> = values
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            if pos.is_empty() {
                return (1.0, 10.0);
            }
            let min = pos.iter().copied().fold(f64::INFINITY, f64::min);
            let max = pos.iter().copied().fold(0.0, f64::max);
            // A margin on both sides keeps end points off the frame; the edges are 1, 2 or 5
            // times a power of ten so the first and last ticks sit on them.
            let lo = nice_floor(min / 1.3);
            let mut hi = nice_ceil(max * 1.3);
            if hi <= lo {
                hi = lo * 10.0;
            }
            (lo, hi)
        }
    }
}

/// The largest 1, 2 or 5 times a power of ten that is at most `v` (`v` > 0).
fn nice_floor(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c <= v * (1.0 + 1e-9))
        .unwrap_or(p)
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `v` (`v` > 0).
fn nice_ceil(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw {
            return m * p;
        }
    }
    10.0 * p
}

/// Escapes text for SVG and HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn drawable(scale: Scale, v: f64) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
}

/// Renders `chart` as an inline `<svg>` element.
pub(crate) fn render(chart: &Chart) -> String {
    let drawn: Vec<&Series> = chart.underlay.iter().chain(&chart.series).collect();
    let legend: Vec<&Series> = chart.series.iter().chain(&chart.underlay).collect();
    let legend_rows = legend.len().div_ceil(3).max(1) as f64;
    let height = HEIGHT + (legend_rows - 1.0) * 18.0;
    let plot_bottom = height - BOTTOM - (legend_rows - 1.0) * 18.0;
    let mut xs: Vec<f64> = drawn
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let mut ys: Vec<f64> = drawn
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    if chart.diagonal {
        ys.extend(xs.iter().copied());
        xs.extend(ys.clone());
    }
    let x = Axis::new(chart.x_scale, &xs, LEFT, WIDTH - RIGHT);
    let y = Axis::new(chart.y_scale, &ys, plot_bottom, TOP);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}">"#,
        esc(&chart.title)
    );
    let _ = write!(
        s,
        r#"<text class="ct" x="{LEFT}" y="22">{}</text>"#,
        esc(&chart.title)
    );
    // Plot frame and grid.
    let _ = write!(
        s,
        r#"<rect class="plot" x="{LEFT}" y="{TOP}" width="{}" height="{}"/>"#,
        WIDTH - RIGHT - LEFT,
        plot_bottom - TOP
    );
    for t in x.ticks() {
        let px = x.pos(t);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{plot_bottom}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 16.0,
            esc(&(chart.x_fmt)(t))
        );
    }
    for t in y.ticks() {
        let py = y.pos(t);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            esc(&(chart.y_fmt)(t))
        );
    }
    let _ = write!(
        s,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        plot_bottom + 36.0,
        esc(&chart.x_label)
    );
    let _ = write!(
        s,
        r#"<text class="axis" transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (TOP + plot_bottom) / 2.0,
        esc(&chart.y_label)
    );
    if chart.diagonal && !xs.is_empty() {
        let (a, b) = (x.lo.max(y.lo), x.hi.min(y.hi));
        if b > a {
            let _ = write!(
                s,
                r#"<line class="ref" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"><title>achieved = offered</title></line>"#,
                x.pos(a),
                y.pos(a),
                x.pos(b),
                y.pos(b)
            );
        }
    }
    // Marks outside the data's range are left to the text; they would squeeze the data.
    let (xmin, xmax) = drawn
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    for mark in &chart.marks {
        if !drawable(chart.x_scale, mark.at) || mark.at < xmin || mark.at > xmax {
            continue;
        }
        let px = x.pos(mark.at);
        if let Some(from) = mark.from.filter(|f| drawable(chart.x_scale, *f)) {
            let fx = x.pos(from);
            let _ = write!(
                s,
                r#"<rect class="band" x="{fx:.1}" y="{TOP}" width="{:.1}" height="{:.1}"/>"#,
                (px - fx).max(0.0),
                plot_bottom - TOP
            );
        }
        let caption = &mark.caption;
        // Captions near the right edge go to the left of their line.
        let (tx, anchor) = if px > WIDTH - RIGHT - 120.0 {
            (px - 4.0, "end")
        } else {
            (px + 4.0, "start")
        };
        let _ = write!(
            s,
            r#"<line class="mark" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{plot_bottom}"/><text class="markt" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            TOP + 12.0,
            esc(caption)
        );
    }
    let mut any = false;
    for series in &drawn {
        let mut pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(a, b)| drawable(chart.x_scale, *a) && drawable(chart.y_scale, *b))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.is_empty() {
            continue;
        }
        any = true;
        let path: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x.pos(*a), y.pos(*b)))
            .collect();
        let dash = series
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let width = series
            .width
            .map(|w| format!(r#" style="stroke-width:{w}""#))
            .unwrap_or_default();
        let _ = write!(
            s,
            r#"<polyline class="series" points="{}" stroke="{}"{dash}{width}/>"#,
            path.join(" "),
            series.color
        );
        // Markers (and their tooltips) only where they do not crowd into a band.
        let markers = if pts.len() <= MAX_MARKERS {
            &pts[..]
        } else {
            &[]
        };
        for (a, b) in markers {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.2" fill="{}"><title>{}: {} → {}</title></circle>"#,
                x.pos(*a),
                y.pos(*b),
                series.color,
                esc(&series.label),
                esc(&(chart.x_fmt)(*a)),
                esc(&(chart.y_fmt)(*b))
            );
        }
    }
    if !any {
        let _ = write!(
            s,
            r#"<text class="nodata" x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            (TOP + plot_bottom) / 2.0
        );
    }
    // Legend: three entries per row under the axis caption.
    for (i, series) in legend.iter().enumerate() {
        let col = (i % 3) as f64;
        let row = (i / 3) as f64;
        let lx = LEFT + col * 175.0;
        let ly = plot_bottom + 58.0 + row * 18.0;
        let dash = series
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = write!(
            s,
            r#"<line class="series" x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}"{dash}/><text class="legend" x="{}" y="{}">{}</text>"#,
            lx + 26.0,
            series.color,
            lx + 32.0,
            ly + 4.0,
            esc(&series.label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(scale: Scale, points: Vec<(f64, f64)>) -> Chart {
        Chart {
            title: "t <1>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_scale: Scale::Log,
            y_scale: scale,
            series: vec![Series {
                label: "push".into(),
                color: "#000",
                dash: None,
                width: None,
                points,
            }],
            underlay: Vec::new(),
            marks: vec![Mark {
                from: Some(1000.0),
                at: 1500.0,
                caption: "crossover".into(),
            }],
            diagonal: false,
            x_fmt: |v| format!("{v}"),
            y_fmt: |v| format!("{v}"),
        }
    }

    #[test]
    fn log_axes_span_whole_decades_and_skip_non_positive_values() {
        let svg = render(&chart(
            Scale::Log,
            vec![(100.0, 0.0), (1000.0, 1.2), (10_000.0, 4800.0)],
        ));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Two points drawn (the zero is not), plus their tooltips.
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">10<") && svg.contains(">1000<"), "{svg}");
        // y spans 0.5 to 10,000: powers of ten only; x spans 50 to 20,000: 1-2-5 steps.
        assert!(!svg.contains(">5<") && !svg.contains(">20<"), "{svg}");
        assert!(svg.contains(">200<"));
        assert!(svg.contains("t &lt;1&gt;"), "titles are escaped");
        assert!(svg.contains("crossover"));
    }

    #[test]
    fn an_empty_chart_says_no_data() {
        let svg = render(&chart(Scale::Linear, vec![]));
        assert!(svg.contains("no data"));
        assert!(!svg.contains("<polyline class=\"series\" points"));
    }

    #[test]
    fn nice_steps_are_one_two_or_five() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(33.0), 50.0);
        assert_eq!(domain(Scale::Linear, &[0.0, 7.3]), (-0.24, 8.0));
        assert_eq!(domain(Scale::Log, &[55.0, 2100.0]), (20.0, 5_000.0));
        assert_eq!(domain(Scale::Log, &[100.0, 10_000.0]), (50.0, 20_000.0));
        assert_eq!(domain(Scale::Log, &[1000.0]), (500.0, 2_000.0));
    }
}
