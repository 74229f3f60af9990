//! Reference data: the task transforms and batch gathering on the CPU, written forwards (rotate, then
//! place on the canvas, then move every pixel by the shift) rather than by the inverse mapping the
//! GPU kernel uses, so the two are independent.
//!
//! Plain values stand in for the data module's types, so the reference shares no code with what
//! it checks: a sample is (image index, group element, dx, dy, label), a canvas (size, pad).

/// (image index, group element k = 4m + r: r counter-clockwise quarter turns, then the rows
/// flipped when m = 1, dx, dy, label).
pub type Sample = (u32, u32, i32, i32, u32);
/// (canvas size, offset of the digit's top-left corner).
pub type Canvas = (usize, usize);

/// numpy's `rot90` (counter-clockwise) of an `n × n` image: `out[a, b] = img[b, n − 1 − a]`.
pub fn rot90(img: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * n];
    for a in 0..n {
        for b in 0..n {
            out[a * n + b] = img[b * n + (n - 1 - a)];
        }
    }
    out
}

/// `rot90` applied `r` times.
pub fn rot90_k(img: &[u8], n: usize, r: u32) -> Vec<u8> {
    let mut out = img.to_vec();
    for _ in 0..r % 4 {
        out = rot90(&out, n);
    }
    out
}

/// numpy's `flipud` of an `n × n` image: `out[a, b] = img[n − 1 − a, b]`.
pub fn flip_rows(img: &[u8], n: usize) -> Vec<u8> {
    img.chunks(n).rev().flatten().copied().collect()
}

/// An `h × w` image placed at (`pad`, `pad`) on a zero `size × size` canvas.
pub fn place(img: &[u8], h: usize, w: usize, (s, pad): Canvas) -> Vec<u8> {
    let mut out = vec![0u8; s * s];
    for y in 0..h {
        for x in 0..w {
            out[(y + pad) * s + x + pad] = img[y * w + x];
        }
    }
    out
}

/// Every pixel of a `size × size` image moved by (`dx`, `dy`) (right, down); zero fill, pixels moved
/// off the canvas are lost.
pub fn shift(img: &[u8], size: usize, dx: i32, dy: i32) -> Vec<u8> {
    let mut out = vec![0u8; size * size];
    let s = size as i64;
    for y in 0..s {
        for x in 0..s {
            let (ty, tx) = (y + dy as i64, x + dx as i64);
            if (0..s).contains(&ty) && (0..s).contains(&tx) {
                out[(ty * s + tx) as usize] = img[(y * s + x) as usize];
            }
        }
    }
    out
}

/// One sample's input as u8: rotate (and flip) the digit, place it, shift the canvas.
pub fn transform(img: &[u8], h: usize, w: usize, s: &Sample, canvas: Canvas) -> Vec<u8> {
    let &(_, rot, dx, dy, _) = s;
    let rotated = if rot == 0 {
        img.to_vec()
    } else {
        assert_eq!(h, w, "rotation needs a square image");
        let turned = rot90_k(img, h, rot % 4);
        if rot >= 4 {
            flip_rows(&turned, h)
        } else {
            turned
        }
    };
    shift(&place(&rotated, h, w, canvas), canvas.0, dx, dy)
}

/// The batch of `samples` from `images` (n × h × w u8): f32 (len, 1, S, S) as `v / 255`, and labels.
pub fn gather(
    images: &[u8],
    h: usize,
    w: usize,
    samples: &[Sample],
    canvas: Canvas,
) -> (Vec<f32>, Vec<u32>) {
    let mut out = Vec::with_capacity(samples.len() * canvas.0 * canvas.0);
    for s in samples {
        let i = s.0 as usize;
        let img = &images[i * h * w..(i + 1) * h * w];
        out.extend(
            transform(img, h, w, s, canvas)
                .into_iter()
                .map(|v| v as f32 / 255.0),
        );
    }
    (out, samples.iter().map(|s| s.4).collect())
}
