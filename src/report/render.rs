//! A [`Figure`] drawn: its title, then each panel in its cell of the grid — lines
//! ([`super::plot`]) or grouped bars ([`super::bars`]) — as one standalone SVG document.

use super::bars::draw_bars;
use super::plot::{draw_lines, plot_err, Figure, Panel, FONT};
use crate::Result;
use plotters::prelude::*;

/// The figure as a standalone SVG document.
pub fn svg(fig: &Figure) -> Result<String> {
    let cols = fig.cols.max(1);
    let rows = fig.panels.len().div_ceil(cols).max(1);
    let title_h = 40;
    let (w, h) = (
        fig.panel_w * cols as u32,
        fig.panel_h * rows as u32 + title_h,
    );
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, body) = root.split_vertically(title_h);
        top.draw(&Text::new(
            fig.title.clone(),
            (12, 10),
            (FONT, 24).into_font().style(FontStyle::Bold),
        ))
        .map_err(plot_err)?;
        let areas = body.split_evenly((rows, cols));
        for (area, panel) in areas.iter().zip(&fig.panels) {
            match panel {
                Panel::Lines(l) => draw_lines(area, l)?,
                Panel::Bars(b) => draw_bars(area, b)?,
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(out)
}
