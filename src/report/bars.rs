//! The grouped bar charts of [`super::plot`]: bars with error intervals and the individual
//! measurements drawn as dots over them, on a linear or log axis.

use super::plot::*;
use crate::Result;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(super) fn draw_bars(area: &Area, b: &Bars) -> Result<()> {
    let vals = b.series.iter().flat_map(|s| {
        s.bars.iter().flatten().flat_map(|bar| {
            let mut v = vec![bar.value];
            if let Some((lo, hi)) = bar.err {
                v.extend([lo, hi]);
            }
            v.extend(&bar.points);
            v
        })
    });
    let (y0, y1) = y_span(vals, b.log_y, b.y_range);
    let x = -0.5..(b.groups.len().max(1) as f64 - 0.5);
    if b.log_y {
        bars_on(area, b, x, (y0..y1).log_scale(), y0)
    } else {
        bars_on(area, b, x, y0..y1, y0)
    }
}

fn bars_on<Y>(area: &Area, b: &Bars, x: std::ops::Range<f64>, y: Y, base: f64) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let groups = b.groups.clone();
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (FONT, 19))
        .margin(12)
        .margin_right(legend_width(b.series.iter().map(|s| &s.label)))
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    let log = b.log_y;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|v| tick(*v, log))
        .x_desc(&b.x_label)
        .y_desc(&b.y_label)
        .axis_desc_style((FONT, 17))
        .label_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;
    // The group names under the axis, centred on their groups.
    let style = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, name) in groups.iter().enumerate() {
        chart
            .plotting_area()
            .draw(&(EmptyElement::at((g as f64, base)) + Text::new(name.clone(), (0, 8), &style)))
            .map_err(plot_err)?;
    }
    let k = b.series.len().max(1) as f64;
    let width = 0.8 / k;
    let mut entries = Vec::new();
    for (j, s) in b.series.iter().enumerate() {
        let c = colour(s.colour);
        let left = |g: usize| g as f64 - 0.4 + j as f64 * width;
        let rects: Vec<Rectangle<(f64, f64)>> = s
            .bars
            .iter()
            .enumerate()
            .filter_map(|(g, bar)| bar.as_ref().map(|bar| (g, bar)))
            .filter(|(_, bar)| bar.value.is_finite() && (!log || bar.value > 0.0))
            .map(|(g, bar)| {
                Rectangle::new(
                    [
                        (left(g) + 0.1 * width, base),
                        (left(g) + 0.9 * width, bar.value),
                    ],
                    c.filled(),
                )
            })
            .collect();
        chart.draw_series(rects).map_err(plot_err)?;
        entries.push((s.label.clone(), s.colour, Sample::Box));
        for (g, bar) in s.bars.iter().enumerate() {
            let Some(bar) = bar else { continue };
            let mid = left(g) + 0.5 * width;
            if let Some((lo, hi)) = bar.err {
                if lo.is_finite() && hi.is_finite() && (!log || lo > 0.0) {
                    chart
                        .draw_series(std::iter::once(ErrorBar::new_vertical(
                            mid,
                            lo,
                            bar.value,
                            hi,
                            BLACK.stroke_width(1),
                            8,
                        )))
                        .map_err(plot_err)?;
                }
            }
            if bar.points.len() > 1 {
                chart
                    .draw_series(
                        bar.points
                            .iter()
                            .filter(|v| v.is_finite() && (!log || **v > 0.0))
                            .map(|&v| Circle::new((mid, v), 2, BLACK.filled())),
                    )
                    .map_err(plot_err)?;
            }
        }
    }
    legend(area, &entries)
}
