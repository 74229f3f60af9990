//! A picture of what the model sees: a grid of batch inputs, each upscaled with its label drawn
//! underneath in a small bitmap font, as an 8-bit grey image ([`crate::files::write_png`] writes it).

use crate::files::Gray;

/// 3×5 bitmaps of the digits 0–9, one row per 3 bits (MSB left).
const FONT: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b001, 0b001],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];
const GAP: usize = 2;
const TEXT: usize = 2; // font scale
const STRIP: usize = 5 * TEXT + 4;
const BORDER: u8 = 90;
const STRIP_BG: u8 = 40;

/// Lay out `labels.len()` images of `side × side` (f32 in [0, 1], image after image) in rows of
/// `cols`, each upscaled `zoom` times with its label under it.
pub fn render(images: &[f32], labels: &[u32], side: usize, cols: usize, zoom: usize) -> Gray {
    let n = labels.len();
    let cols = cols.max(1).min(n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let tw = side * zoom;
    let th = tw + STRIP;
    let width = GAP + cols * (tw + GAP);
    let height = GAP + rows * (th + GAP);
    let mut px = vec![BORDER; width * height];
    for (k, &label) in labels.iter().enumerate() {
        let (ox, oy) = (GAP + (k % cols) * (tw + GAP), GAP + (k / cols) * (th + GAP));
        let img = &images[k * side * side..(k + 1) * side * side];
        for y in 0..tw {
            for x in 0..tw {
                let v = img[(y / zoom) * side + x / zoom];
                px[(oy + y) * width + ox + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        for y in tw..th {
            px[(oy + y) * width + ox..(oy + y) * width + ox + tw].fill(STRIP_BG);
        }
        let text = label.to_string();
        let mut cx = ox + 2;
        for ch in text.bytes() {
            let glyph = FONT[(ch - b'0') as usize];
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..3 {
                    if bits >> (2 - gx) & 1 == 1 {
                        for sy in 0..TEXT {
                            for sx in 0..TEXT {
                                let (x, y) = (cx + gx * TEXT + sx, oy + tw + 2 + gy * TEXT + sy);
                                if x < ox + tw {
                                    px[y * width + x] = 255;
                                }
                            }
                        }
                    }
                }
            }
            cx += 4 * TEXT;
        }
    }
    Gray {
        width,
        height,
        pixels: px,
    }
}
