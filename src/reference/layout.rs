//! Reference layout ops, which move values without arithmetic: the swap of the two middle axes of
//! (a, b, c, d), and concatenation and windows along an axis on tensors viewed as (outer, len, inner).

/// `swap12`: x viewed as (a, b, c, d) with its two middle axes swapped, (a, c, b, d):
/// `out[ia, ic, ib, id] = x[ia, ib, ic, id]`. Its backward is itself on dims (a, c, b, d).
pub fn swap12(x: &[f64], dims: [usize; 4]) -> Vec<f64> {
    let [a, b, c, d] = dims;
    assert_eq!(
        x.len(),
        a * b * c * d,
        "swap12: {} values are not {dims:?}",
        x.len()
    );
    let mut out = Vec::with_capacity(x.len());
    for ia in 0..a {
        for ic in 0..c {
            for ib in 0..b {
                let base = ((ia * b + ib) * c + ic) * d;
                out.extend_from_slice(&x[base..base + d]);
            }
        }
    }
    out
}

/// `[a, b]` along the middle axis of a (outer, la, inner) and b (outer, lb, inner).
pub fn concat(a: &[f64], b: &[f64], outer: usize, la: usize, lb: usize, inner: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(outer * (la + lb) * inner);
    for o in 0..outer {
        out.extend_from_slice(&a[o * la * inner..(o + 1) * la * inner]);
        out.extend_from_slice(&b[o * lb * inner..(o + 1) * lb * inner]);
    }
    out
}

/// Entries `start .. start + len` of the middle axis of x (outer, n, inner).
pub fn slice(
    x: &[f64],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = (o * n + start) * inner;
        out.extend_from_slice(&x[base..base + len * inner]);
    }
    out
}

/// The adjoint of [`slice`]: g (outer, len, inner) at `start` in zeros of (outer, n, inner).
pub fn unslice(
    g: &[f64],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; outer * n * inner];
    for o in 0..outer {
        let base = (o * n + start) * inner;
        out[base..base + len * inner].copy_from_slice(&g[o * len * inner..(o + 1) * len * inner]);
    }
    out
}
