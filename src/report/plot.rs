//! Figures for reports, as SVG (no font needed: text stays text): panels of line charts and of
//! grouped bar charts drawn with plotters, each with axes, ticks, axis titles, a caption and a
//! legend, in the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies;
//! lines also differ by marker shape). What the figures show is decided by the caller: this file
//! knows charts, not runs.

use crate::{Error, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The Okabe–Ito palette without its yellow (too pale on white) and with black last.
pub const PALETTE: [(u8, u8, u8); 7] = [
    (0, 114, 178),   // blue
    (230, 159, 0),   // orange
    (0, 158, 115),   // bluish green
    (213, 94, 0),    // vermillion
    (204, 121, 167), // reddish purple
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
];

/// Colour number `i` of [`PALETTE`] (wrapping).
pub fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `#rrggbb` of colour number `i`.
pub fn colour_hex(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One curve of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// Index into [`PALETTE`]: the same thing keeps its colour across figures.
    pub colour: usize,
    pub points: Vec<(f64, f64)>,
    /// Dashed instead of solid (a second quantity of the same thing).
    pub dashed: bool,
}

/// A horizontal reference line (a bound, a chance level) with its legend label.
#[derive(Clone, Debug)]
pub struct HLine {
    pub label: String,
    pub colour: usize,
    pub y: f64,
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    /// Fixed y range (else from the data).
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
}

/// One bar of a grouped bar chart: a value, an optional error interval, and the individual
/// measurements (seeds) drawn as dots over the bar.
#[derive(Clone, Debug, Default)]
pub struct Bar {
    pub value: f64,
    pub err: Option<(f64, f64)>,
    pub points: Vec<f64>,
}

/// One series of bars: one bar (or none) per group.
#[derive(Clone, Debug)]
pub struct BarSeries {
    pub label: String,
    pub colour: usize,
    pub bars: Vec<Option<Bar>>,
}

/// A grouped bar chart: groups along x, one bar per series in each group.
#[derive(Clone, Debug, Default)]
pub struct Bars {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub y_range: Option<(f64, f64)>,
    pub groups: Vec<String>,
    pub series: Vec<BarSeries>,
}

/// One panel of a figure.
#[derive(Clone, Debug)]
pub enum Panel {
    Lines(Lines),
    Bars(Bars),
}

/// A figure: panels on a grid of `cols` columns, each `panel_w × panel_h` pixels.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem (`clone-loss` → `clone-loss.svg`).
    pub name: String,
    pub title: String,
    /// A sentence under the figure saying what it shows.
    pub caption: String,
    pub panels: Vec<Panel>,
    pub cols: usize,
    pub panel_w: u32,
    pub panel_h: u32,
}

impl Figure {
    pub fn new(name: &str, title: &str, caption: &str, panels: Vec<Panel>) -> Self {
        Figure {
            name: name.into(),
            title: title.into(),
            caption: caption.into(),
            cols: panels.len().clamp(1, 2),
            panels,
            panel_w: 700,
            panel_h: 380,
        }
    }
}

pub(crate) const FONT: &str = "sans-serif";

pub(super) fn plot_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::invalid(format!("drawing a figure: {e}"))
}

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The range of the values (with a margin; on a log scale, whole decades around positive values).
pub(super) fn y_span(
    values: impl Iterator<Item = f64>,
    log: bool,
    fixed: Option<(f64, f64)>,
) -> (f64, f64) {
    if let Some(r) = fixed {
        return r;
    }
    let v: Vec<f64> = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    if v.is_empty() {
        return if log { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
    if log {
        (
            // A quarter decade below the smallest value, so that its bar is seen.
            10f64.powf((lo.log10() - 0.25).floor()),
            10f64.powf((hi.log10() + 1e-9).ceil()).max(lo * 10.0),
        )
    } else {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-9);
        (
            if lo >= 0.0 {
                0f64.max(lo - pad)
            } else {
                lo - pad
            },
            hi + pad,
        )
    }
}

/// `1e-3`-style tick labels for log axes (at 1, 2 and 5 times a power of ten; other ticks stay
/// unlabelled), plain numbers otherwise.
pub(crate) fn tick(v: f64, log: bool) -> String {
    if log {
        let e = v.log10().floor();
        let mantissa = v / 10f64.powf(e);
        return match [1.0, 2.0, 5.0, 10.0]
            .iter()
            .position(|m| (mantissa - m).abs() < 1e-6 * m)
        {
            Some(3) => format!("1e{}", e as i32 + 1),
            Some(i) => format!("{}e{}", [1, 2, 5][i], e as i32),
            None => String::new(),
        };
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

pub(super) fn draw_lines(area: &Area, l: &Lines) -> Result<()> {
    let xs = l.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |a, x| (a.0.min(x), a.1.max(x)));
    let (x0, x1) = if x0 > x1 {
        (0.0, 1.0)
    } else if x0 == x1 {
        (x0 - 1.0, x1 + 1.0)
    } else {
        (x0, x1)
    };
    let ys = l
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(l.hlines.iter().map(|h| h.y));
    let (y0, y1) = y_span(ys, l.log_y, l.y_range);
    if l.log_y {
        lines_on(area, l, x0..x1, (y0..y1).log_scale())
    } else {
        lines_on(area, l, x0..x1, y0..y1)
    }
}

fn lines_on<Y>(area: &Area, l: &Lines, x: std::ops::Range<f64>, y: Y) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let (x0, x1) = (x.start, x.end);
    let labels = l.series.iter().map(|s| &s.label);
    let mut chart = ChartBuilder::on(area)
        .caption(&l.title, (FONT, 19))
        .margin(12)
        .margin_right(legend_width(
            labels.chain(l.hlines.iter().map(|h| &h.label)),
        ))
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    let log = l.log_y;
    // Whole-numbered x (epochs, iterations): whole-numbered ticks only.
    let whole = l
        .series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| p.0 == p.0.round());
    let n_ticks = if whole {
        ((x1 - x0).round() as usize + 1).clamp(2, 11)
    } else {
        11
    };
    chart
        .configure_mesh()
        .x_labels(n_ticks)
        .x_desc(&l.x_label)
        .y_desc(&l.y_label)
        .x_label_formatter(&|v| {
            if whole && (v - v.round()).abs() > 1e-9 {
                String::new()
            } else {
                tick(*v, false)
            }
        })
        .y_label_formatter(&|v| tick(*v, log))
        .axis_desc_style((FONT, 17))
        .label_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;
    let keep = |p: &(f64, f64)| p.1.is_finite() && (!log || p.1 > 0.0);
    let mut entries = Vec::new();
    for (k, s) in l.series.iter().enumerate() {
        let c = colour(s.colour);
        let style = c.stroke_width(2);
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(keep).collect();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                .map_err(plot_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(plot_err)?;
        }
        entries.push((s.label.clone(), s.colour, Sample::Line(k, s.dashed)));
        // Markers (a shape per series) on at most ~12 points of each curve.
        let every = (pts.len() / 12).max(1);
        for (i, p) in pts.iter().enumerate() {
            if i % every == 0 || i + 1 == pts.len() {
                draw_marker(chart.plotting_area(), *p, k, c)?;
            }
        }
    }
    for h in &l.hlines {
        let c = colour(h.colour);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, h.y), (x1, h.y)],
                8,
                5,
                c.stroke_width(2),
            ))
            .map_err(plot_err)?;
        entries.push((h.label.clone(), h.colour, Sample::Dashes));
    }
    legend(area, &entries)
}

/// The outline of marker `k` around (cx, cy): circle (an octagon), triangle, square, diamond,
/// inverted triangle.
fn marker(k: usize, (cx, cy): (i32, i32)) -> Vec<(i32, i32)> {
    let s = 4;
    let pts: Vec<(i32, i32)> = match k % 5 {
        0 => vec![
            (-2, -4),
            (2, -4),
            (4, -2),
            (4, 2),
            (2, 4),
            (-2, 4),
            (-4, 2),
            (-4, -2),
        ],
        1 => vec![(0, -s - 1), (-s - 1, s), (s + 1, s)],
        2 => vec![(-s, -s), (s, -s), (s, s), (-s, s)],
        3 => vec![(0, -s - 1), (s + 1, 0), (0, s + 1), (-s - 1, 0)],
        _ => vec![(0, s + 1), (-s - 1, -s), (s + 1, -s)],
    };
    pts.into_iter().map(|(x, y)| (cx + x, cy + y)).collect()
}

/// Marker `k` at a data point.
fn draw_marker<DB, CT>(
    area: &DrawingArea<DB, CT>,
    p: (f64, f64),
    k: usize,
    c: RGBColor,
) -> Result<()>
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    area.draw(&(EmptyElement::at(p) + Polygon::new(marker(k, (0, 0)), c.filled())))
        .map_err(plot_err)
}

/// Room on the right of a panel for its legend: the longest label at about 8 px a character.
pub(super) fn legend_width<'a>(labels: impl Iterator<Item = &'a String>) -> u32 {
    let chars = labels.map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    if chars == 0 {
        12
    } else {
        chars * 8 + 60
    }
}

/// What a legend entry shows: a line with marker `k` (dashed or not), a dashed line, a box.
pub(super) enum Sample {
    Line(usize, bool),
    Dashes,
    Box,
}

/// The legend in the room [`legend_width`] left on the right of the panel, never over the data:
/// one row per entry, its sample drawn as the data is.
pub(super) fn legend(area: &Area, entries: &[(String, usize, Sample)]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, _) = area.dim_in_pixel();
    let labels = entries.iter().map(|e| &e.0);
    let x = w as i32 - legend_width(labels) as i32 + 14;
    let y0 = 52;
    let row = 22;
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, colour_no, sample)) in entries.iter().enumerate() {
        let y = y0 + i as i32 * row;
        let c = colour(*colour_no);
        let line =
            |a: i32, b: i32| PathElement::new(vec![(x + a, y), (x + b, y)], c.stroke_width(2));
        match sample {
            Sample::Line(k, dashed) => {
                if *dashed {
                    area.draw(&line(0, 7)).map_err(plot_err)?;
                    area.draw(&line(16, 24)).map_err(plot_err)?;
                } else {
                    area.draw(&line(0, 24)).map_err(plot_err)?;
                }
                area.draw(&Polygon::new(marker(*k, (x + 12, y)), c.filled()))
                    .map_err(plot_err)?;
            }
            Sample::Dashes => {
                for a in [0, 9, 18] {
                    area.draw(&line(a, a + 6)).map_err(plot_err)?;
                }
            }
            Sample::Box => area
                .draw(&Rectangle::new(
                    [(x + 4, y - 6), (x + 20, y + 6)],
                    c.filled(),
                ))
                .map_err(plot_err)?,
        }
        area.draw(&Text::new(label.clone(), (x + 32, y), &style))
            .map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_panels() -> Figure {
        let series = |label: &str, c: usize| Series {
            label: label.into(),
            colour: c,
            points: (1..=20).map(|i| (i as f64, 1.0 / i as f64)).collect(),
            dashed: c == 1,
        };
        Figure::new(
            "t",
            "A test figure",
            "caption",
            vec![
                Panel::Lines(Lines {
                    title: "loss".into(),
                    x_label: "iteration".into(),
                    y_label: "MSE".into(),
                    log_y: true,
                    series: vec![series("first", 0), series("second", 1)],
                    hlines: vec![HLine {
                        label: "bound".into(),
                        colour: 6,
                        y: 0.01,
                    }],
                    ..Default::default()
                }),
                Panel::Bars(Bars {
                    title: "accuracy".into(),
                    x_label: "task".into(),
                    y_label: "test accuracy (%)".into(),
                    groups: vec!["a".into(), "b".into()],
                    series: vec![BarSeries {
                        label: "model".into(),
                        colour: 2,
                        bars: vec![
                            Some(Bar {
                                value: 50.0,
                                err: Some((45.0, 55.0)),
                                points: vec![45.0, 55.0],
                            }),
                            None,
                        ],
                    }],
                    ..Default::default()
                }),
            ],
        )
    }

    #[test]
    fn a_figure_has_title_axis_titles_ticks_and_legend() {
        let s = super::super::render::svg(&two_panels()).unwrap();
        for text in [
            "A test figure",
            "iteration",
            "MSE",
            "first",
            "second",
            "bound",
            "test accuracy (%)",
            "\na\n",
            "\n1e0\n",
            &colour_hex(0).to_uppercase(), // plotters writes #RRGGBB
        ] {
            // plotters writes each text on a line of its own.
            assert!(s.contains(text), "the SVG lacks {text:?}");
        }
    }
}
