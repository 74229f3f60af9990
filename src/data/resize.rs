//! Resizing digits to a run's input side: centre crops, 2×2 halving and centred padding.

use super::Split;
use crate::{Error, Result};

/// Centre-crop every digit of a split to `side × side`.
pub fn center_crop(s: &Split, side: usize) -> Result<Split> {
    if side > s.h || side > s.w {
        return Err(Error::invalid(format!(
            "cannot crop {}×{} digits to {side}",
            s.h, s.w
        )));
    }
    if side == s.h && side == s.w {
        return Ok(s.clone());
    }
    let (oy, ox) = ((s.h - side) / 2, (s.w - side) / 2);
    let mut images = Vec::with_capacity(s.n * side * side);
    for i in 0..s.n {
        let img = &s.images[i * s.h * s.w..(i + 1) * s.h * s.w];
        for y in 0..side {
            images.extend_from_slice(&img[(oy + y) * s.w + ox..(oy + y) * s.w + ox + side]);
        }
    }
    Ok(Split {
        images,
        labels: s.labels.clone(),
        n: s.n,
        h: side,
        w: side,
    })
}

/// Halve every digit's resolution by averaging 2×2 blocks (rounded), e.g. 28×28 → 14×14.
pub fn downsample2(s: &Split) -> Split {
    let (h, w) = (s.h / 2, s.w / 2);
    let mut images = Vec::with_capacity(s.n * h * w);
    for i in 0..s.n {
        let img = &s.images[i * s.h * s.w..(i + 1) * s.h * s.w];
        for y in 0..h {
            for x in 0..w {
                let sum: u32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(dy, dx)| img[(2 * y + dy) * s.w + 2 * x + dx] as u32)
                    .sum();
                images.push(((sum + 2) / 4) as u8);
            }
        }
    }
    Split {
        images,
        labels: s.labels.clone(),
        n: s.n,
        h,
        w,
    }
}

/// Centre every digit on a `side × side` canvas of zeros (side ≥ the digit's).
pub fn center_pad(s: &Split, side: usize) -> Result<Split> {
    if side < s.h || side < s.w {
        return Err(Error::invalid(format!(
            "cannot pad {}×{} digits to {side}",
            s.h, s.w
        )));
    }
    let (oy, ox) = ((side - s.h) / 2, (side - s.w) / 2);
    let mut images = vec![0u8; s.n * side * side];
    for i in 0..s.n {
        for y in 0..s.h {
            let src = &s.images[(i * s.h + y) * s.w..(i * s.h + y + 1) * s.w];
            let dst = (i * side + oy + y) * side + ox;
            images[dst..dst + s.w].copy_from_slice(src);
        }
    }
    Ok(Split {
        images,
        labels: s.labels.clone(),
        n: s.n,
        h: side,
        w: side,
    })
}

/// Bring a split to the configuration's input side: with `downsample`, halve the resolution and
/// pad to `side`; otherwise centre-crop to `side`.
pub fn prepare_digits(s: &Split, side: usize, downsample: bool) -> Result<Split> {
    if downsample {
        center_pad(&downsample2(s), side)
    } else {
        center_crop(s, side)
    }
}
