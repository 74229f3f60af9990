//! The cases of the products: matrix products, convolutions, group convolutions, the cloned
//! layer's kernels.

use super::cases::{Case, Kernel};
use super::exec::{abs, up, Out};
use crate::autograd::Tape;
use crate::gpu::Gpu;
use crate::ops::{cloned, conv, gconv, matmul, reduce};
use crate::reference as r;
use crate::rng::Rng;
use crate::{Error, Result};
use std::sync::Arc;

/// Run `case` if it is one of this file's kernels (false: it is not).
pub(super) fn run(g: &Arc<Gpu>, o: &mut Out, rg: &mut Rng, case: &Case) -> Result<bool> {
    match &case.kernel {
        Kernel::Matmul {
            variant,
            tile,
            d,
            bias,
            relu,
        } => {
            g.force(matmul::OP, Some(variant));
            let old = matmul::reg_tile(g);
            if let Some(t) = tile {
                matmul::set_reg_tile(g, *t)?;
            }
            let res = run_matmul(g, o, rg, *d, *bias, *relu);
            g.force(matmul::OP, None);
            matmul::set_reg_tile(g, old)?;
            res?;
        }
        Kernel::MatmulHalf { tile, d } => {
            let old = matmul::reg_tile(g);
            matmul::set_reg_tile(g, *tile)?;
            let res = run_matmul_half(g, o, rg, *d);
            matmul::set_reg_tile(g, old)?;
            res?;
        }
        Kernel::Conv { algo, d } => {
            let d = *d;
            let (x, x6) = up(g, &[d.batch, d.cin, d.h, d.w], rg)?;
            let (w, w6) = up(g, &[d.cout, d.cin, d.k, d.k], rg)?;
            let (b, b6) = up(g, &[d.cout], rg)?;
            let (gy, g6) = up(g, &d.out_shape(), rg)?;
            let y = conv::conv2d_with(*algo, &x, &w, Some(&b), d.pad)?;
            let want = r::conv::forward(&x6, &w6, Some(&b6), d);
            let want_abs = r::conv::forward(&abs(&x6), &abs(&w6), Some(&abs(&b6)), d);
            o.sums("forward", &y, &want, &want_abs, d.cin * d.k * d.k + 1)?;
            // With ReLU in the same launch: the ReLU of the reference, within the same bound.
            let yr = conv::conv2d_relu_with(*algo, &x, &w, Some(&b), d.pad, true)?;
            let relu: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
            o.sums(
                "forward with ReLU",
                &yr,
                &relu,
                &want_abs,
                d.cin * d.k * d.k + 1,
            )?;
            let dx = conv::conv2d_input_grad_with(*algo, &gy, &w, d)?;
            let (rx, _, _) = r::conv::backward(&x6, &w6, &g6, d);
            let (ax, _, _) = r::conv::backward(&abs(&x6), &abs(&w6), &abs(&g6), d);
            o.sums("input grad", &dx, &rx, &ax, d.cout * d.k * d.k)?;
        }
        Kernel::ConvWeightGrad { algo, d } => {
            let d = *d;
            let (x, x6) = up(g, &[d.batch, d.cin, d.h, d.w], rg)?;
            let w6 = vec![0.0; d.cout * d.cin * d.k * d.k];
            let (gy, g6) = up(g, &d.out_shape(), rg)?;
            let (dw, db) = conv::conv2d_weight_bias_grad_with(*algo, &x, &gy, d)?;
            let (_, rw, rb) = r::conv::backward(&x6, &w6, &g6, d);
            let (_, aw, ab) = r::conv::backward(&abs(&x6), &w6, &abs(&g6), d);
            let k = d.batch * d.ho() * d.wo();
            o.sums("weight grad", &dw, &rw, &aw, k)?;
            o.sums("bias grad", &db, &rb, &ab, k)?;
        }
        Kernel::ConvFused { d } => {
            let d = *d;
            if !conv::fused_backward_fits(d) {
                return Err(Error::invalid(format!("{d:?} is no fused-backward layer")));
            }
            let (x, x6) = up(g, &[d.batch, 1, d.h, d.w], rg)?;
            let (w, w6) = up(g, &[d.cout, 1, d.k, d.k], rg)?;
            let (gy, g6) = up(g, &d.out_shape(), rg)?;
            let reg = (conv::ConvAlgo::Reg, conv::WeightGradAlgo::Reg);
            let [dx, dw, db] = conv::conv2d_grads_with(reg, &x, &w, &gy, d, [true; 3])?;
            let missing = || Error::Gpu("the fused backward left a gradient out".into());
            let (rx, rw, rb) = r::conv::backward(&x6, &w6, &g6, d);
            let (ax, aw, ab) = r::conv::backward(&abs(&x6), &abs(&w6), &abs(&g6), d);
            let k = d.batch * d.ho() * d.wo();
            o.sums("dx", &dx.ok_or_else(missing)?, &rx, &ax, d.cout * d.k * d.k)?;
            o.sums("dw", &dw.ok_or_else(missing)?, &rw, &aw, k)?;
            o.sums("db", &db.ok_or_else(missing)?, &rb, &ab, k)?;
        }
        Kernel::Mix { rows, k2, m } => {
            let (c, c6) = up(g, &[*rows, *k2], rg)?;
            let (m1, m16) = up(g, &[*k2, *m], rg)?;
            let y = cloned::mix(&c, &m1)?;
            let want = r::cloned::mix(&c6, &m16, *k2, *m);
            o.sums("mix", &y, &want, &abs(&want), 1)?;
            let (gy, g6) = up(g, &[*rows, k2 * m], rg)?;
            let (dc, dm) = cloned::mix_backward(&gy, &c, &m1, true, true)?;
            let (rc, rm) = r::cloned::mix_backward(&g6, &c6, &m16, *k2, *m);
            let (ac, am) = r::cloned::mix_backward(&abs(&g6), &abs(&c6), &abs(&m16), *k2, *m);
            let missing = || Error::Gpu("mix_backward left a gradient out".into());
            o.sums("d codes", &dc.ok_or_else(missing)?, &rc, &ac, *m)?;
            o.sums("d M1", &dm.ok_or_else(missing)?, &rm, &am, *rows)?;
        }
        Kernel::Taps { nb, k, d } => {
            let n_out = (d - k + 1) * (d - k + 1);
            let (b, b6) = up(g, &[*nb, n_out, d * d], rg)?;
            let t = cloned::taps(&b, *k, *d)?;
            let want = r::cloned::taps(&b6, *nb, *k, *d);
            let want_abs = r::cloned::taps(&abs(&b6), *nb, *k, *d);
            o.sums("taps", &t, &want, &want_abs, n_out)?;
            let (x, x6) = up(g, &[*nb, k * k], rg)?;
            o.exact(
                "taps_adj",
                &cloned::taps_adj(&x, *k, *d)?,
                &r::cloned::taps_adj(&x6, *nb, *k, *d),
            )?;
        }
        Kernel::Gram { nb, cols } => {
            let (b, b6) = up(g, &[*nb, *cols], rg)?;
            let want = r::cloned::gram(&b6, *nb);
            let want_abs = r::cloned::gram(&abs(&b6), *nb);
            o.sums("gram", &cloned::gram(&b)?, &want, &want_abs, *cols)?;
            let (h, h6) = up(g, &[*nb, *nb], rg)?;
            let want = r::cloned::gram_backward(&h6, &b6, *nb);
            let want_abs = r::cloned::gram_backward(&abs(&h6), &abs(&b6), *nb);
            let gb = cloned::gram_backward(&h, &b)?;
            o.sums("gram_backward", &gb, &want, &want_abs, 2 * nb)?;
        }
        Kernel::GconvFilters {
            cout,
            cin,
            k,
            group,
        } => {
            let (cout, cin, k, group) = (*cout, *cin, *k, *group);
            let n = group.order();
            // Each transform with the bias repeated beside it, each adjoint over three splits of
            // its gradient (as the weight-gradient kernels leave them), and the bias gradient's
            // sum over the splits and the orientations.
            const SPLITS: usize = 3;
            let (b, b6) = up(g, &[cout], rg)?;
            let bias_want = r::gconv::expand_bias(&b6, n);
            let (w, w6) = up(g, &[cout, cin, k, k], rg)?;
            let (lf, lb) = gconv::lift_filter_bias(&w, Some(&b), group)?;
            o.exact(
                "lift_filter",
                &lf,
                &r::gconv::lift_filter(&w6, cout, cin, k, group.order()),
            )?;
            o.exact("lift_filter (bias)", &expect_some(lb)?, &bias_want)?;
            let (d, d6) = up(g, &splits_shape(SPLITS, lf.shape()), rg)?;
            let (d6, d6_abs) = (
                r::reduce::sum_splits(&d6, SPLITS),
                r::reduce::sum_splits(&abs(&d6), SPLITS),
            );
            let want = r::gconv::lift_filter_adjoint(&d6, cout, cin, k, group.order());
            let want_abs = r::gconv::lift_filter_adjoint(&d6_abs, cout, cin, k, group.order());
            o.sums(
                "lift_filter_adjoint",
                &gconv::lift_filter_adjoint(&d, group)?,
                &want,
                &want_abs,
                n * SPLITS,
            )?;
            let (w, w6) = up(g, &[cout, cin, n, k, k], rg)?;
            let (pf, pb) = gconv::group_filter_bias(&w, Some(&b), group)?;
            o.exact(
                "group_filter",
                &pf,
                &r::gconv::group_filter(&w6, cout, cin, k, group.order()),
            )?;
            o.exact("group_filter (bias)", &expect_some(pb)?, &bias_want)?;
            let (d, d6) = up(g, &splits_shape(SPLITS, pf.shape()), rg)?;
            let (d6, d6_abs) = (
                r::reduce::sum_splits(&d6, SPLITS),
                r::reduce::sum_splits(&abs(&d6), SPLITS),
            );
            let want = r::gconv::group_filter_adjoint(&d6, cout, cin, k, group.order());
            let want_abs = r::gconv::group_filter_adjoint(&d6_abs, cout, cin, k, group.order());
            o.sums(
                "group_filter_adjoint",
                &gconv::group_filter_adjoint(&d, group)?,
                &want,
                &want_abs,
                n * SPLITS,
            )?;
            let (d, d6) = up(g, &[SPLITS, cout, n], rg)?;
            let shape = [cout, n];
            let want = r::reduce::sum_axis(&r::reduce::sum_splits(&d6, SPLITS), &shape, 1);
            let want_abs =
                r::reduce::sum_axis(&r::reduce::sum_splits(&abs(&d6), SPLITS), &shape, 1);
            o.sums(
                "bias gradient (sum over splits and orientations)",
                &reduce::sum_splits_axis(&d, 1)?,
                &want,
                &want_abs,
                n * SPLITS,
            )?;
        }
        Kernel::Gconv { p4, d, group } => {
            let (d, group) = (*d, *group);
            let n = group.order();
            let planes = if *p4 { n } else { 1 };
            let xs: Vec<usize> = if *p4 {
                vec![d.batch, d.cin, n, d.h, d.w]
            } else {
                vec![d.batch, d.cin, d.h, d.w]
            };
            let ws: Vec<usize> = if *p4 {
                vec![d.cout, d.cin, n, d.k, d.k]
            } else {
                vec![d.cout, d.cin, d.k, d.k]
            };
            let (x, x6) = up(g, &xs, rg)?;
            let (w, w6) = up(g, &ws, rg)?;
            let (b, b6) = up(g, &[d.cout], rg)?;
            let f = if *p4 {
                r::gconv::group_conv
            } else {
                r::gconv::lift_conv
            };
            let reference = |x: &[f64], w: &[f64], b: &[f64]| {
                f(
                    x,
                    w,
                    Some(b),
                    d.batch,
                    d.cin,
                    d.h,
                    d.w,
                    d.cout,
                    d.k,
                    d.pad,
                    group.order(),
                )
            };
            let want = reference(&x6, &w6, &b6);
            let want_abs = reference(&abs(&x6), &abs(&w6), &abs(&b6));
            let y = if *p4 {
                gconv::group_conv(&x, &w, Some(&b), d.pad, group)?
            } else {
                gconv::lift_conv(&x, &w, Some(&b), d.pad, group)?
            };
            o.sums(
                "forward",
                &y,
                &want,
                &want_abs,
                d.cin * planes * d.k * d.k + 1,
            )?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn run_matmul(
    g: &Arc<Gpu>,
    o: &mut Out,
    rg: &mut Rng,
    d: r::matmul::Dims,
    bias: bool,
    relu: bool,
) -> Result<()> {
    let (a_shape, b_shape) = (d.a_shape(), d.b_shape());
    let (a, a6) = up(g, &a_shape, rg)?;
    let (b, b6) = up(g, &b_shape, rg)?;
    let (bi, bi6) = up(g, &[d.n], rg)?;
    let mut tape = Tape::new();
    let va = tape.leaf(a);
    let vb = tape.leaf(b);
    let vbias = bias.then(|| tape.leaf(bi));
    let c = matmul::matmul_t(&mut tape, va, vb, d.ta, d.tb, vbias, relu)?;
    let bref = bias.then_some(&bi6[..]);
    let want = r::matmul::forward(&a6, &b6, d, bref, relu);
    let babs = abs(&bi6);
    let want_abs = r::matmul::forward(&abs(&a6), &abs(&b6), d, bias.then_some(&babs[..]), relu);
    o.sums("C", tape.value(c), &want, &want_abs, d.k)?;
    let (wt, w6) = up(g, tape.value(c).shape(), rg)?;
    tape.backward_with(c, wt)?;
    let gmask = if relu {
        r::elementwise::relu_bwd(&w6, &want)
    } else {
        w6
    };
    let (da, db, dbias) = r::matmul::backward(&a6, &b6, d, &gmask);
    let (da_abs, db_abs, _) = r::matmul::backward(&abs(&a6), &abs(&b6), d, &abs(&gmask));
    // dA sums over N (and the batch when A is shared), dB over M (likewise).
    let ka = d.n * if d.za == 0 { d.batch() } else { 1 };
    let kb = d.m * if d.zb == 0 { d.batch() } else { 1 };
    let grad = |v| {
        tape.grad(v)
            .ok_or_else(|| Error::Gpu("a gradient is missing".into()))
    };
    o.sums("dA", grad(va)?, &da, &da_abs, ka)?;
    o.sums("dB", grad(vb)?, &db, &db_abs, kb)?;
    if let Some(vbias) = vbias {
        let dbias_abs = r::matmul::backward(&a6, &b6, d, &abs(&gmask)).2;
        o.sums("dbias", grad(vbias)?, &dbias, &dbias_abs, d.batch() * d.m)?;
    }
    Ok(())
}

/// `A · B` and the taped `A · Bᵀ`'s `dA` for a constant B in half precision, against the reference
/// on B rounded to half precision.
fn run_matmul_half(g: &Arc<Gpu>, o: &mut Out, rg: &mut Rng, d: r::matmul::Dims) -> Result<()> {
    use matmul::half::{matmul_half, matmul_half_const_t, HalfMatrix};
    let (a, a6) = up(g, &d.a_shape(), rg)?;
    let (b, b6) = up(g, &[d.k, d.n], rg)?;
    let b6: Vec<f64> = b6.into_iter().map(r::matmul::round_half).collect();
    let bh = HalfMatrix::from_f32(&b)?;
    // B's transpose, for dA = G · B of the taped A · Bᵀ whose Bᵀ is `b`.
    let mut t = vec![0f32; d.k * d.n];
    for (i, v) in b.to_vec()?.into_iter().enumerate() {
        t[(i % d.n) * d.k + i / d.n] = v;
    }
    let bth = HalfMatrix::from_f32(&crate::tensor::Tensor::from_slice(g, &[d.n, d.k], &t)?)?;
    let want = r::matmul::forward(&a6, &b6, d, None, false);
    let want_abs = r::matmul::forward(&abs(&a6), &abs(&b6), d, None, false);
    o.sums("C", &matmul_half(&a, &bh)?, &want, &want_abs, d.k)?;
    let mut tape = Tape::new();
    let va = tape.leaf(a);
    let c = matmul_half_const_t(&mut tape, va, &bth, &bh)?;
    let (wt, w6) = up(g, tape.value(c).shape(), rg)?;
    tape.backward_with(c, wt)?;
    let (da, _, _) = r::matmul::backward(&a6, &b6, d, &w6);
    let (da_abs, _, _) = r::matmul::backward(&abs(&a6), &abs(&b6), d, &abs(&w6));
    let grad = tape
        .grad(va)
        .ok_or_else(|| Error::Gpu("a gradient is missing".into()))?;
    o.sums("dA", grad, &da, &da_abs, d.n)
}

/// `shape` behind a leading axis of `splits`.
fn splits_shape(splits: usize, shape: &[usize]) -> Vec<usize> {
    std::iter::once(splits)
        .chain(shape.iter().copied())
        .collect()
}

/// The bias a `*_filter_bias` launch was given back.
fn expect_some(t: Option<crate::tensor::Tensor>) -> Result<crate::tensor::Tensor> {
    t.ok_or_else(|| Error::invalid("a transform given a bias returned none"))
}
