//! The mixer's ops (SPEC §8) in their four places: GELU (tanh form), LayerNorm over the last axis
//! with its scale and shift, concatenation and windows along an axis — each kernel against its
//! CPU reference on ragged shapes, through the tape, and each reference backward against central
//! finite differences in f64.

mod common;
use common::*;
use symclone::ops::{elementwise, layout, norm};
use symclone::reference::{self as r, finite_diff, rel_err64, to64};
use symclone::tensor::Tensor;
use symclone::Tape;

/// f32 rounding unit.
const U: f64 = 1.0 / 16_777_216.0;
/// Accuracy of `tanh` in the shader, in units of U: no back end rounds it correctly; Vulkan allows
/// `exp(x)` 3 + 2·|x| ulps, and |u| = √(2/π)·|x + 0.044715x³| stays below 6.5 for |x| < 4.5
/// (every N(0, 4) sample here), so 16 ulps bounds tanh's error relative to 1 (|tanh| ≤ 1).
const TANH_ULPS: f64 = 16.0;

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn probe(f: &[f64], w: &[f64]) -> f64 {
    f.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// [`assert_sum_close`], or exact zeros where the reference is all zero (a row of one column
/// normalises to x̂ = 0: dx and dgamma vanish exactly).
fn sum_close(what: &str, got: &[f32], want: &[f64], want_abs: &[f64], k: usize) {
    if want.iter().all(|v| *v == 0.0) {
        assert!(
            got.iter().all(|v| *v == 0.0),
            "{what}: not all zero: {got:?}"
        );
    } else {
        assert_sum_close(what, got, want, want_abs, k);
    }
}

fn up(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_slice(&gpu(), shape, v).unwrap()
}

#[test]
fn gelu_forward_and_backward_match_reference_on_ragged_sizes() {
    let mut rg = rng(801);
    for n in [1usize, 7, 33, 257, 5000] {
        let x: Vec<f32> = rg.normal_vec(n).iter().map(|v| 2.0 * v).collect();
        let gu: Vec<f32> = rg.normal_vec(n);
        let (x6, g6) = (to64(&x), to64(&gu));
        let want = r::elementwise::gelu(&x6);
        // y = 0.5·x·(1 + t): an error δ in t moves y by 0.5·|x|·δ; the products and the sum round
        // a few times more (4 U relative to y).
        let tol = 0.5 * norm2(&x6) / norm2(&want) * TANH_ULPS * U + 4.0 * U;
        let got = elementwise::gelu(&up(&[n], &x)).unwrap().to_vec().unwrap();
        assert_close(&format!("gelu n={n}"), &got, &want, tol);
        // gelu' = 0.5(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3a·x²): δ in t moves it by at most
        // (0.5 + |x|·c·(1 + 3a·x²))·δ (|t| ≤ 1); then g multiplies, and the terms round (8 U).
        let want_d = r::elementwise::gelu_bwd(&g6, &x6);
        let w: Vec<f64> = x6
            .iter()
            .zip(&g6)
            .map(|(v, g)| g.abs() * (0.5 + v.abs() * 0.8 * (1.0 + 0.134_145 * v * v)))
            .collect();
        let tol_d = norm2(&w) / norm2(&want_d) * TANH_ULPS * U + 8.0 * U;
        let got_d = elementwise::gelu_bwd(&up(&[n], &gu), &up(&[n], &x))
            .unwrap()
            .to_vec()
            .unwrap();
        assert_close(&format!("gelu_bwd n={n}"), &got_d, &want_d, tol_d);
        // Through the tape: the same kernel, so bit for bit.
        let mut tape = Tape::new();
        let vx = tape.leaf(up(&[n], &x));
        let y = elementwise::gelu_t(&mut tape, vx).unwrap();
        tape.backward_with(y, up(&[n], &gu)).unwrap();
        assert_eq!(tape.grad(vx).unwrap().to_vec().unwrap(), got_d);
    }
}

#[test]
fn gelu_reference_backward_matches_finite_differences() {
    let mut rg = rng(802);
    let x = to64(&rg.normal_vec(40));
    let w = to64(&rg.normal_vec(40));
    let fd = finite_diff(&x, 1e-6, |xx| probe(&r::elementwise::gelu(xx), &w));
    let e = rel_err64(&r::elementwise::gelu_bwd(&w, &x), &fd);
    assert!(e <= 1e-8, "gelu reference backward vs FD: {e:.2e}");
}

/// One LayerNorm case: forward, backward (x, gamma, beta) and the taped op against the reference.
fn layer_norm_case(rows: usize, cols: usize, seed: u64) {
    let mut rg = rng(seed);
    let x: Vec<f32> = rg
        .normal_vec(rows * cols)
        .iter()
        .map(|v| 3.0 * v + 1.0)
        .collect();
    let ga = rg.normal_vec(cols);
    let be = rg.normal_vec(cols);
    let gu = rg.normal_vec(rows * cols);
    let (x6, ga6, be6, g6) = (to64(&x), to64(&ga), to64(&be), to64(&gu));
    let eps = norm::EPS as f64;
    let what = format!("layer_norm {rows}×{cols}");
    // Each output within the bound of its sums: the terms and their counts are derived at
    // `layer_norm_abs` (tests/common): forward and dx cols terms, dgamma rows + cols, dbeta rows.
    let want = r::norm::layer_norm(&x6, &ga6, &be6, eps);
    let abs = layer_norm_abs(&x6, &ga6, &be6, &g6, eps);
    let (y, stats) =
        norm::layer_norm(&up(&[rows, cols], &x), &up(&[cols], &ga), &up(&[cols], &be)).unwrap();
    sum_close(&what, &y.to_vec().unwrap(), &want, &abs.y, cols);
    let (dx_w, dg_w, db_w) = r::norm::layer_norm_bwd(&g6, &x6, &ga6, eps);
    let (dx, dg, db) = norm::layer_norm_bwd(
        &up(&[rows, cols], &gu),
        &up(&[rows, cols], &x),
        &up(&[cols], &ga),
        &stats,
    )
    .unwrap();
    sum_close(
        &format!("{what} dx"),
        &dx.to_vec().unwrap(),
        &dx_w,
        &abs.dx,
        cols,
    );
    sum_close(
        &format!("{what} dgamma"),
        &dg.to_vec().unwrap(),
        &dg_w,
        &abs.dgamma,
        rows + cols,
    );
    sum_close(
        &format!("{what} dbeta"),
        &db.to_vec().unwrap(),
        &db_w,
        &abs.dbeta,
        rows,
    );
    // The taped op runs the same kernels: bit for bit.
    let mut tape = Tape::new();
    let vx = tape.leaf(up(&[rows, cols], &x));
    let vg = tape.leaf(up(&[cols], &ga));
    let vb = tape.leaf(up(&[cols], &be));
    let yv = norm::layer_norm_t(&mut tape, vx, vg, vb).unwrap();
    assert_eq!(tape.value(yv).to_vec().unwrap(), y.to_vec().unwrap());
    tape.backward_with(yv, up(&[rows, cols], &gu)).unwrap();
    for (v, t) in [(vx, &dx), (vg, &dg), (vb, &db)] {
        assert_eq!(tape.grad(v).unwrap().to_vec().unwrap(), t.to_vec().unwrap());
    }
}

#[test]
fn layer_norm_matches_reference_on_ragged_shapes() {
    for (i, (rows, cols)) in [
        (1usize, 7usize),
        (7, 33),
        (33, 24),
        (257, 5),
        (1000, 26),
        (3, 1),
    ]
    .into_iter()
    .enumerate()
    {
        layer_norm_case(rows, cols, 810 + i as u64);
    }
}

#[test]
fn layer_norm_reference_backward_matches_finite_differences() {
    let mut rg = rng(803);
    let (rows, cols) = (3, 5);
    let x = to64(&rg.normal_vec(rows * cols));
    let ga = to64(&rg.normal_vec(cols));
    let be = to64(&rg.normal_vec(cols));
    let w = to64(&rg.normal_vec(rows * cols));
    let eps = 1e-5;
    let (dx, dg, db) = r::norm::layer_norm_bwd(&w, &x, &ga, eps);
    let fx = finite_diff(&x, 1e-6, |v| {
        probe(&r::norm::layer_norm(v, &ga, &be, eps), &w)
    });
    let fg = finite_diff(&ga, 1e-6, |v| {
        probe(&r::norm::layer_norm(&x, v, &be, eps), &w)
    });
    let fb = finite_diff(&be, 1e-6, |v| {
        probe(&r::norm::layer_norm(&x, &ga, v, eps), &w)
    });
    for (name, a, b) in [("dx", &dx, &fx), ("dgamma", &dg, &fg), ("dbeta", &db, &fb)] {
        let e = rel_err64(a, b);
        assert!(e <= 1e-7, "layer_norm reference {name} vs FD: {e:.2e}");
    }
}

#[test]
fn concat_and_slice_are_exact_on_every_axis() {
    let mut rg = rng(804);
    for (sa, sb, axis) in [
        (vec![3usize, 5, 7], vec![3usize, 2, 7], 1usize),
        (vec![4, 22], vec![4, 1], 1),
        (vec![1, 9], vec![33, 9], 0),
        (vec![2, 3, 4], vec![2, 3, 5], 2),
    ] {
        let a = rg.normal_vec(sa.iter().product());
        let b = rg.normal_vec(sb.iter().product());
        let outer: usize = sa[..axis].iter().product();
        let inner: usize = sa[axis + 1..].iter().product();
        let (la, lb) = (sa[axis], sb[axis]);
        let want = r::layout::concat(&to64(&a), &to64(&b), outer, la, lb, inner);
        let mut tape = Tape::new();
        let va = tape.leaf(up(&sa, &a));
        let vb = tape.leaf(up(&sb, &b));
        let c = layout::concat_t(&mut tape, va, vb, axis).unwrap();
        assert_eq!(
            to64(&tape.value(c).to_vec().unwrap()),
            want,
            "concat {sa:?} {sb:?}"
        );
        // The backward slices the gradient apart, exactly.
        let g = rg.normal_vec(want.len());
        let cs = tape.value(c).shape().to_vec();
        tape.backward_with(c, up(&cs, &g)).unwrap();
        let g6 = to64(&g);
        let n = la + lb;
        assert_eq!(
            to64(&tape.grad(va).unwrap().to_vec().unwrap()),
            r::layout::slice(&g6, outer, n, inner, 0, la)
        );
        assert_eq!(
            to64(&tape.grad(vb).unwrap().to_vec().unwrap()),
            r::layout::slice(&g6, outer, n, inner, la, lb)
        );
        // A window and its adjoint.
        let (start, len) = (n / 3, n - n / 3 - n / 4);
        let mut tape = Tape::new();
        let vc = tape.leaf(up(&cs, &g));
        let s = layout::slice_t(&mut tape, vc, axis, start, len).unwrap();
        assert_eq!(
            to64(&tape.value(s).to_vec().unwrap()),
            r::layout::slice(&g6, outer, n, inner, start, len)
        );
        let gs = rg.normal_vec(outer * len * inner);
        let ss = tape.value(s).shape().to_vec();
        tape.backward_with(s, up(&ss, &gs)).unwrap();
        assert_eq!(
            to64(&tape.grad(vc).unwrap().to_vec().unwrap()),
            r::layout::unslice(&to64(&gs), outer, n, inner, start, len)
        );
    }
    // Shapes that do not fit are errors, not panics.
    let a = up(&[2, 3], &[0.0; 6]);
    assert!(layout::concat(&a, &up(&[3, 3], &[0.0; 9]), 1).is_err());
    assert!(layout::concat(&a, &a, 2).is_err());
    assert!(layout::slice(&a, 1, 2, 2).is_err());
}

#[test]
fn slice_reference_is_the_adjoint_of_unslice() {
    let mut rg = rng(805);
    let (outer, n, inner, start, len) = (3, 7, 2, 2, 4);
    let x = to64(&rg.normal_vec(outer * n * inner));
    let g = to64(&rg.normal_vec(outer * len * inner));
    let fd = finite_diff(&x, 1e-6, |v| {
        probe(&r::layout::slice(v, outer, n, inner, start, len), &g)
    });
    let e = rel_err64(&r::layout::unslice(&g, outer, n, inner, start, len), &fd);
    assert!(e <= 1e-9, "unslice vs FD of slice: {e:.2e}");
}
