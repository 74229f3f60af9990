//! Small raster pictures for reports: line plots of loss curves (optionally on a log scale) and
//! side-by-side panels of feature maps, as grey PNGs.

use crate::files::{write_png, Gray};
use crate::Result;
use std::path::Path;

/// A line plot of one or more series (x, y) on a `w × h` canvas, y on a log10 scale when `log`.
/// Series are drawn in distinct grey levels; axes at the left and bottom.
pub fn line_plot(series: &[Vec<(f64, f64)>], w: usize, h: usize, log: bool) -> Gray {
    let mut px = vec![255u8; w * h];
    let tf = |y: f64| if log { y.max(1e-30).log10() } else { y };
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flatten()
        .map(|&(x, y)| (x, tf(y)))
        .filter(|p| p.1.is_finite())
        .collect();
    let (m, pad) = (8usize, 8usize);
    let set = |px: &mut Vec<u8>, x: usize, y: usize, v: u8| {
        if x < w && y < h {
            px[y * w + x] = v;
        }
    };
    for x in m..w - pad {
        set(&mut px, x, h - m, 0);
    }
    for y in pad..=h - m {
        set(&mut px, m, y, 0);
    }
    if pts.is_empty() {
        return Gray {
            width: w,
            height: h,
            pixels: px,
        };
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let sx = (w - m - pad) as f64 / (x1 - x0).max(1e-12);
    let sy = (h - m - pad) as f64 / (y1 - y0).max(1e-12);
    let to_px = |x: f64, y: f64| {
        (
            (m as f64 + (x - x0) * sx),
            (h - m) as f64 - (tf(y) - y0) * sy,
        )
    };
    for (k, s) in series.iter().enumerate() {
        let shade = (k * 90 % 180) as u8;
        for pair in s.windows(2) {
            let (a, b) = (to_px(pair[0].0, pair[0].1), to_px(pair[1].0, pair[1].1));
            if !(a.1.is_finite() && b.1.is_finite()) {
                continue;
            }
            let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) as usize).max(1);
            for i in 0..=steps {
                let t = i as f64 / steps as f64;
                let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
                set(&mut px, x.round() as usize, y.round() as usize, shade);
                set(&mut px, x.round() as usize, y.round() as usize + 1, shade);
            }
        }
    }
    Gray {
        width: w,
        height: h,
        pixels: px,
    }
}

/// Panels of square maps (each `side × side`, values scaled jointly to 0..255), laid out in rows
/// of `cols`, each upscaled `zoom` times with a gap between panels.
pub fn panels(maps: &[Vec<f32>], side: usize, cols: usize, zoom: usize) -> Gray {
    let n = maps.len().max(1);
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let gap = 4;
    let t = side * zoom;
    let (w, h) = (gap + cols * (t + gap), gap + rows * (t + gap));
    let mut px = vec![128u8; w * h];
    let (lo, hi) = maps
        .iter()
        .flatten()
        .fold((f32::MAX, f32::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    for (k, m) in maps.iter().enumerate() {
        let (ox, oy) = (gap + (k % cols) * (t + gap), gap + (k / cols) * (t + gap));
        for y in 0..t {
            for x in 0..t {
                let v = m[(y / zoom) * side + x / zoom];
                px[(oy + y) * w + ox + x] = ((v - lo) * scale).clamp(0.0, 255.0) as u8;
            }
        }
    }
    Gray {
        width: w,
        height: h,
        pixels: px,
    }
}

/// Write a line plot as PNG.
pub fn write_line_plot(path: &Path, series: &[Vec<(f64, f64)>], log: bool) -> Result<()> {
    write_png(path, &line_plot(series, 480, 300, log))
}
