//! Grids of square maps for reports — feature maps and the digits they come from — as SVG with
//! each map embedded as a PNG (a data URI, drawn without smoothing), row and column labels and a
//! colour scale (viridis: perceptually uniform, readable in grey and with colour-vision
//! deficiencies).

use super::doc::escape;
use super::plot::{tick, FONT};
use crate::{Error, Result};

/// A grid of square maps (feature maps, input digits) with row and column labels and a colour
/// scale, as SVG with the maps embedded as PNG images (data URIs, drawn without smoothing).
#[derive(Clone, Debug)]
pub struct MapGrid {
    pub name: String,
    pub title: String,
    pub caption: String,
    pub col_labels: Vec<String>,
    pub row_labels: Vec<String>,
    /// `cells[row][col]`: a `side × side` map, row-major, or None for an empty cell.
    pub cells: Vec<Vec<Option<Map>>>,
    /// Displayed size of one cell in pixels.
    pub cell_px: usize,
}

/// One map and the colour scale it is drawn in.
#[derive(Clone, Debug)]
pub struct Map {
    pub side: usize,
    pub values: Vec<f32>,
    /// The value range mapped onto the colour scale (shared by the maps that are compared).
    pub range: (f32, f32),
    /// Grey (inputs) instead of viridis (features).
    pub grey: bool,
}

/// Viridis at 9 anchors (a perceptually uniform map readable in grey and with colour-vision
/// deficiencies), linearly interpolated.
fn viridis(t: f32) -> [u8; 3] {
    const A: [[f32; 3]; 9] = [
        [68., 1., 84.],
        [71., 44., 122.],
        [59., 81., 139.],
        [44., 113., 142.],
        [33., 144., 141.],
        [39., 173., 129.],
        [92., 200., 99.],
        [170., 220., 50.],
        [253., 231., 37.],
    ];
    let x = t.clamp(0.0, 1.0) * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (A[i][c] + (A[i + 1][c] - A[i][c]) * f).round() as u8;
    }
    out
}

/// A map as an RGB PNG, base64-encoded.
fn map_png(m: &Map) -> Result<String> {
    let (lo, hi) = m.range;
    let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
    let mut px = Vec::with_capacity(m.side * m.side * 3);
    for &v in &m.values {
        let t = (v - lo) * scale;
        if m.grey {
            let g = (255.0 - 255.0 * t.clamp(0.0, 1.0)).round() as u8; // ink dark on white
            px.extend([g, g, g]);
        } else {
            px.extend(viridis(t));
        }
    }
    png_base64(m.side, m.side, &px)
}

fn png_base64(w: usize, h: usize, rgb: &[u8]) -> Result<String> {
    use base64::Engine;
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let err = |e: png::EncodingError| Error::invalid(format!("encoding a map as PNG: {e}"));
        let mut wr = enc.write_header().map_err(err)?;
        wr.write_image_data(rgb).map_err(err)?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The grid as a standalone SVG document.
pub fn map_grid_svg(g: &MapGrid) -> Result<String> {
    let cols = g
        .col_labels
        .len()
        .max(g.cells.iter().map(Vec::len).max().unwrap_or(0));
    let rows = g.cells.len();
    let (label_w, head_h, title_h, gap, bar_h) = (190usize, 26usize, 40usize, 8usize, 60usize);
    let cell = g.cell_px;
    let w = label_w + cols * (cell + gap) + 20;
    let h = title_h + head_h + rows * (cell + gap) + bar_h;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n<text x=\"12\" y=\"27\" font-family=\"{FONT}\" font-size=\"20\" font-weight=\"bold\">{}</text>\n",
        escape(&g.title)
    );
    for (c, label) in g.col_labels.iter().enumerate() {
        let x = label_w + c * (cell + gap) + cell / 2;
        s.push_str(&format!(
            "<text x=\"{x}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n",
            title_h + 16,
            escape(label)
        ));
    }
    let mut features: Option<(f32, f32)> = None;
    for (r, row) in g.cells.iter().enumerate() {
        let y = title_h + head_h + r * (cell + gap);
        if let Some(label) = g.row_labels.get(r) {
            for (i, line) in label.split('\n').enumerate() {
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"13\" text-anchor=\"end\">{}</text>\n",
                    label_w - 10,
                    y + cell / 2 + i * 16,
                    escape(line)
                ));
            }
        }
        for (c, m) in row.iter().enumerate() {
            let Some(m) = m else { continue };
            if !m.grey {
                features = Some(m.range);
            }
            let x = label_w + c * (cell + gap);
            s.push_str(&format!(
                "<image x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" style=\"image-rendering:pixelated\" preserveAspectRatio=\"none\" href=\"data:image/png;base64,{}\"/>\n<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"none\" stroke=\"#999999\"/>\n",
                map_png(m)?
            ));
        }
    }
    // The colour scale of the feature maps, with its end values.
    if let Some((lo, hi)) = features {
        let y = h - bar_h + 14;
        let x0 = label_w;
        let bw = (cols * (cell + gap)).min(420);
        let steps = 64;
        let ramp: Vec<u8> = (0..steps)
            .flat_map(|i| viridis(i as f32 / (steps - 1) as f32))
            .collect();
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"13\" text-anchor=\"end\">feature value</text>\n<image x=\"{x0}\" y=\"{y}\" width=\"{bw}\" height=\"14\" preserveAspectRatio=\"none\" href=\"data:image/png;base64,{}\"/>\n<text x=\"{x0}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"12\">{}</text>\n<text x=\"{}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n",
            label_w - 10,
            y + 12,
            png_base64(steps, 1, &ramp)?,
            y + 30,
            tick(lo as f64, false),
            x0 + bw,
            y + 30,
            tick(hi as f64, false)
        ));
    }
    s.push_str("</svg>\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_grid_embeds_one_png_per_cell() {
        let m = Map {
            side: 3,
            values: (0..9).map(|v| v as f32).collect(),
            range: (0.0, 8.0),
            grey: false,
        };
        let g = MapGrid {
            name: "m".into(),
            title: "maps".into(),
            caption: String::new(),
            col_labels: vec!["r = 0".into(), "r = 1".into()],
            row_labels: vec!["true".into()],
            cells: vec![vec![Some(m.clone()), Some(m)]],
            cell_px: 60,
        };
        let s = map_grid_svg(&g).unwrap();
        assert_eq!(s.matches("data:image/png;base64,").count(), 3); // two maps + the scale
        assert!(s.contains("r = 1") && s.contains("true") && s.contains("feature value"));
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
    }
}
