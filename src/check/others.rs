//! The cases of the other families: elementwise, reduce, layout, loss, optim, pool, transform,
//! random, kl, norm, data.

use super::cases::Ew;
use super::cases::{Case, Kernel};
use super::exec::{abs, up, Out};
use super::exec::{STATED, STATED_WHY};
use crate::autograd::Tape;
use crate::gpu::Gpu;
use crate::ops::{elementwise, kl, layout, loss, norm, optim, pool, random, reduce, transform};
use crate::reference::{self as r, to64, tol};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// Run `case` if it is one of this file's kernels (false: it is not).
pub(super) fn run(g: &Arc<Gpu>, o: &mut Out, rg: &mut Rng, case: &Case) -> Result<bool> {
    match &case.kernel {
        Kernel::Elementwise { op, n } => run_elementwise(g, o, rg, *op, *n)?,
        Kernel::SumAxis { shape, axis } => {
            let (x, x6) = up(g, shape, rg)?;
            let want = r::reduce::sum_axis(&x6, shape, *axis);
            let want_abs = r::reduce::sum_axis(&abs(&x6), shape, *axis);
            let n = shape[*axis];
            let sum = reduce::sum_axis(&x, *axis)?;
            o.sums("sum_axis", &sum, &want, &want_abs, n)?;
            let wm: Vec<f64> = want.iter().map(|v| v / n as f64).collect();
            let am: Vec<f64> = want_abs.iter().map(|v| v / n as f64).collect();
            o.sums("mean_axis", &reduce::mean_axis(&x, *axis)?, &wm, &am, n + 1)?;
            // The backward: an upstream gradient of the sum's shape, broadcast along the axis.
            let (gt, g6) = up(g, sum.shape(), rg)?;
            let b = reduce::broadcast_axis(&gt, *axis, n, 1.0)?;
            o.exact(
                "broadcast_axis",
                &b,
                &r::reduce::broadcast_axis(&g6, shape, *axis),
            )?;
            // A rank-2 sum over the rows: with a ReLU's backward before it, in one launch.
            if let (&[rows, _], 0) = (shape.as_slice(), *axis) {
                let (y, y6) = up(g, shape, rg)?;
                let (gm, db) = reduce::relu_bwd_sum_rows(&x, &y)?;
                let masked = r::elementwise::relu_bwd(&x6, &y6);
                o.exact("relu_bwd_sum_rows (masked)", &gm, &masked)?;
                let msum = r::reduce::sum_axis(&masked, shape, 0);
                let msum_abs = r::reduce::sum_axis(&abs(&masked), shape, 0);
                o.sums("relu_bwd_sum_rows", &db, &msum, &msum_abs, rows)?;
                // The rows as splits of partial sums: two tensors of them summed in one launch.
                let (sx, sm) = reduce::sum_splits_pair(&x, &gm)?;
                o.sums("sum_splits_pair", &sx, &want, &want_abs, rows)?;
                o.sums("sum_splits_pair (second)", &sm, &msum, &msum_abs, rows)?;
            }
            // A rank-3 shape read as (B, C, plane): the sum over its first and last axes (a bias
            // gradient) in one launch.
            if let &[b, c, plane] = shape.as_slice() {
                let inner = r::reduce::sum_axis(&x6, shape, 2);
                let inner_abs = r::reduce::sum_axis(&abs(&x6), shape, 2);
                o.sums(
                    "sum_batch_plane",
                    &reduce::sum_batch_plane(&x)?,
                    &r::reduce::sum_axis(&inner, &[b, c], 0),
                    &r::reduce::sum_axis(&inner_abs, &[b, c], 0),
                    b * plane,
                )?;
            }
        }
        Kernel::SumAll { n } => {
            let (x, x6) = up(g, &[*n], rg)?;
            let s = reduce::sum_all(&x)?;
            o.sums(
                "sum_all",
                &s,
                &[r::reduce::sum(&x6)],
                &[r::reduce::sum(&abs(&x6))],
                *n,
            )?;
            let q = reduce::sumsq_all(&x)?;
            let wq = r::reduce::sumsq(&x6);
            o.sums("sumsq_all", &q, &[wq], &[wq], *n)?;
        }
        Kernel::Swap12 { dims } => {
            let [a, b, c, d] = *dims;
            let (x, x6) = up(g, &[a * b * c * d], rg)?;
            let y = layout::swap12(&x, *dims)?;
            o.exact("swap12", &y, &r::layout::swap12(&x6, *dims))?;
            let (gy, g6) = up(g, &[a * b * c * d], rg)?;
            let back = layout::swap12(&gy, [a, c, b, d])?;
            o.exact(
                "swap12 backward",
                &back,
                &r::layout::swap12(&g6, [a, c, b, d]),
            )?;
        }
        Kernel::Concat {
            outer,
            la,
            lb,
            inner,
        } => {
            let (a, a6) = up(g, &[*outer, *la, *inner], rg)?;
            let (b, b6) = up(g, &[*outer, *lb, *inner], rg)?;
            let c = layout::concat(&a, &b, 1)?;
            let c6 = r::layout::concat(&a6, &b6, *outer, *la, *lb, *inner);
            o.exact("concat", &c, &c6)?;
            let n = la + lb;
            let s = layout::slice(&c, 1, 1, *la)?;
            o.exact(
                "slice",
                &s,
                &r::layout::slice(&c6, *outer, n, *inner, 1, *la),
            )?;
            let (gs, gs6) = up(g, &[*outer, *la, *inner], rg)?;
            let u = layout::unslice(&gs, 1, 1, n)?;
            o.exact(
                "unslice",
                &u,
                &r::layout::unslice(&gs6, *outer, n, *inner, 1, *la),
            )?;
        }
        Kernel::CrossEntropy { rows, classes } => {
            let logits: Vec<f32> = rg
                .normal_vec(rows * classes)
                .iter()
                .map(|v| v * 3.0)
                .collect();
            let labels: Vec<u32> = (0..*rows).map(|_| rg.below(*classes) as u32).collect();
            let gl = Tensor::from_slice(g, &[*rows, *classes], &logits)?;
            let gy = Tensor::from_u32(g, &[*rows], &labels)?;
            let (l, gr) = loss::cross_entropy(&gl, &gy)?;
            let (wl, wg) = r::loss::cross_entropy(&to64(&logits), &labels, *classes);
            o.within("loss", &l.to_vec()?, &[wl], STATED, STATED_WHY);
            o.within("gradient", &gr.to_vec()?, &wg, STATED, STATED_WHY);
            let c = loss::correct_count(&gl, &gy)?;
            let want = r::loss::correct_count(&to64(&logits), &labels, *classes) as f64;
            o.exact("correct_count", &c, &[want])?;
        }
        Kernel::Mse { n } => {
            let (a, a6) = up(g, &[*n], rg)?;
            let (b, b6) = up(g, &[*n], rg)?;
            let (wm, _) = r::loss::mse(&a6, &b6);
            o.within(
                "mse",
                &loss::mse(&a, &b)?.to_vec()?,
                &[wm],
                STATED,
                STATED_WHY,
            );
        }
        Kernel::Optim {
            adam,
            decoupled,
            clip,
            n,
            steps,
        } => run_optim(g, o, rg, (*adam, *decoupled, *clip), *n, *steps)?,
        Kernel::Pool {
            max,
            planes,
            h,
            w,
            k,
            s,
        } => {
            let (h, w, k, s) = (*h, *w, *k, *s);
            let shape = [1, *planes, h, w];
            let (x, x6) = up(g, &shape, rg)?;
            // Overlapping windows (k > s) sum up to ⌈k/s⌉² gradients into one input.
            let overlap = k.div_ceil(s).pow(2);
            if *max {
                let (y, arg) = pool::max_pool2d(&x, k, s)?;
                let (wy, _) = r::pool::max_pool(&x6, h, w, k, s);
                o.exact("max_pool2d", &y, &wy)?;
                let (gy, g6) = up(g, y.shape(), rg)?;
                let dx = pool::max_pool2d_bwd(&gy, &arg, &shape, k, s)?;
                let want = r::pool::max_pool_bwd(&x6, &g6, h, w, k, s);
                let want_abs = r::pool::max_pool_bwd(&x6, &abs(&g6), h, w, k, s);
                o.sums("max_pool2d backward", &dx, &want, &want_abs, overlap)?;
            } else {
                let y = pool::avg_pool2d(&x, k, s)?;
                let wy = r::pool::avg_pool(&x6, h, w, k, s);
                let ay = r::pool::avg_pool(&abs(&x6), h, w, k, s);
                o.sums("avg_pool2d", &y, &wy, &ay, k * k + 1)?;
                let (gy, g6) = up(g, y.shape(), rg)?;
                let dx = pool::avg_pool2d_bwd(&gy, &shape, k, s)?;
                let want = r::pool::avg_pool_bwd(&g6, h, w, k, s);
                let want_abs = r::pool::avg_pool_bwd(&abs(&g6), h, w, k, s);
                o.sums("avg_pool2d backward", &dx, &want, &want_abs, overlap + 1)?;
            }
        }
        Kernel::RotPool { how, shape } => {
            let max = *how == pool::RotPool::Max;
            let plane = shape[3] * shape[4];
            let (x, x6) = up(g, shape, rg)?;
            let y = pool::rot_pool(&x, *how)?;
            let want = r::pool::rot_pool(&x6, plane, shape[2], max);
            let (gy, g6) = up(g, y.shape(), rg)?;
            let dx = pool::rot_pool_bwd(&gy, &x, *how)?;
            let wdx = r::pool::rot_pool_bwd(&x6, &g6, plane, shape[2], max);
            if max {
                o.exact("rot_pool", &y, &want)?;
            } else {
                let want_abs = r::pool::rot_pool(&abs(&x6), plane, shape[2], false);
                o.sums("rot_pool", &y, &want, &want_abs, shape[2] + 1)?;
            }
            // The backward copies the gradient (max) or scales it by 1/n, a power of 2 (mean): exact.
            o.exact("rot_pool backward", &dx, &wdx)?;
        }
        Kernel::GlobalMean { shape } => {
            let plane = shape[2] * shape[3];
            let (x, x6) = up(g, shape, rg)?;
            let want = r::pool::global_mean(&x6, plane);
            let want_abs = r::pool::global_mean(&abs(&x6), plane);
            o.sums(
                "global_mean",
                &pool::global_mean(&x)?,
                &want,
                &want_abs,
                plane + 1,
            )?;
            let (gy, g6) = up(g, &[shape[0], shape[1]], rg)?;
            let dx = pool::global_mean_bwd(&gy, shape)?;
            let want = r::pool::global_mean_bwd(&g6, plane);
            o.sums("global_mean backward", &dx, &want, &abs(&want), 1)?;
        }
        Kernel::Rot90 {
            planes,
            n,
            r: turns,
        } => {
            let (n, turns) = (*n, *turns);
            let (x, x6) = up(g, &[*planes, n, n], rg)?;
            let mut tape = Tape::new();
            let vx = tape.leaf(x.clone());
            let vy = transform::rot90_t(&mut tape, vx, turns)?;
            o.exact("rot90", tape.value(vy), &r::transform::rot90(&x6, n, turns))?;
            let (gy, g6) = up(g, &[*planes, n, n], rg)?;
            tape.backward_with(vy, gy)?;
            let back = r::transform::rot90(&g6, n, (4 - turns % 4) % 4);
            let dx = tape
                .grad(vx)
                .ok_or_else(|| Error::Gpu("no rot90 gradient".into()))?;
            o.exact("rot90 backward", dx, &back)?;
            let (y, y6) = up(g, &[planes.div_ceil(4), 4, n, n], rg)?;
            o.exact(
                "c4_act",
                &transform::c4_act(&y, turns)?,
                &r::transform::c4_act(&y6, n, turns),
            )?;
            // The reflection after the same turns (the D4 element 4 + r), on planes and p4m maps.
            let k = 4 + turns % 4;
            o.exact(
                "d4 act",
                &transform::act(&x, k)?,
                &crate::group::act_planes(&x6, n, k),
            )?;
            let (y, y6) = up(g, &[planes.div_ceil(8), 8, n, n], rg)?;
            o.exact(
                "d4 group_act",
                &transform::group_act(&y, k, crate::group::Group::D4)?,
                &r::transform::group_act(&y6, n, 8, k),
            )?;
        }
        Kernel::ShiftCrop {
            planes,
            h,
            w,
            ho,
            wo,
            oy,
            ox,
        } => {
            let (h, w, ho, wo, oy, ox) = (*h, *w, *ho, *wo, *oy, *ox);
            let (x, x6) = up(g, &[*planes, h, w], rg)?;
            let mut tape = Tape::new();
            let vx = tape.leaf(x);
            let vy = transform::shift_crop_t(&mut tape, vx, ho, wo, oy, ox)?;
            let want = r::transform::shift_crop(&x6, h, w, ho, wo, oy, ox);
            o.exact("shift_crop", tape.value(vy), &want)?;
            let (gy, g6) = up(g, &[*planes, ho, wo], rg)?;
            tape.backward_with(vy, gy)?;
            let back = r::transform::shift_crop_adjoint(&g6, h, w, ho, wo, oy, ox);
            let dx = tape
                .grad(vx)
                .ok_or_else(|| Error::Gpu("no shift_crop gradient".into()))?;
            o.exact("shift_crop backward", dx, &back)?;
        }
        Kernel::Randn { n } => {
            let z = random::randn(g, &[*n], case.seed)?;
            let want = r::random::randn(*n, case.seed);
            let why = "sin and cos within 2^-11 (Vulkan): reference::tol::randn_tol";
            o.within("randn", &z.to_vec()?, &want, tol::randn_tol(), why);
        }
        Kernel::Kl {
            shape,
            axis,
            penalty,
        } => {
            let n: usize = shape.iter().product();
            let w0 = rg.normal_vec(n);
            let w: Vec<f32> = w0.iter().map(|&a| a + 1e-2 * rg.normal()).collect();
            let (kv, kg) = kl::penalty(
                *penalty,
                &Tensor::from_slice(g, shape, &w)?,
                &Tensor::from_slice(g, shape, &w0)?,
                *axis,
                1.0,
            )?;
            let (w6, w06) = (to64(&w), to64(&w0));
            let name = penalty.name();
            let (want_v, want_g, tv, tg, why) = match penalty {
                kl::Penalty::Kl => {
                    let (v, gr) = r::kl::kl_delta(&w6, &w06, shape, *axis);
                    let (tv, tg) = tol::kl_tol(&w6, &w06, shape, *axis, v);
                    // The value's bound is absolute: held relative to the value here.
                    let why = "the δ form's bound: reference::tol::kl_tol";
                    (v, gr, tv / v.abs(), tg, why)
                }
                kl::Penalty::L2 => {
                    let (v, gr) = r::kl::l2(&w6, &w06);
                    let rows = kl::kl_row_count(&kg, *axis)?;
                    // δ is exact; each row sums shape[axis] squares, the rows are summed, and
                    // the scale 1/n (rounded) multiplies both outputs.
                    let tv = tol::sum_tol(shape[*axis]) + tol::sum_tol(rows) + 2.0 * tol::ULP;
                    let why = "sums of squares: reference::tol::sum_tol";
                    (v, gr, tv, 3.0 * tol::ULP, why)
                }
            };
            o.within(name, &kv.to_vec()?, &[want_v], tv, why);
            o.within(&format!("{name} gradient"), &kg.to_vec()?, &want_g, tg, why);
        }
        Kernel::LayerNorm { rows, cols } => {
            let (rows, cols) = (*rows, *cols);
            let (x, x6) = up(g, &[rows, cols], rg)?;
            let (ga, ga6) = up(g, &[cols], rg)?;
            let (be, be6) = up(g, &[cols], rg)?;
            let (gy, g6) = up(g, &[rows, cols], rg)?;
            let eps = norm::EPS as f64;
            let a = tol::layer_norm_abs(&x6, &ga6, &be6, &g6, eps);
            let (y, stats) = norm::layer_norm(&x, &ga, &be)?;
            let want = r::norm::layer_norm(&x6, &ga6, &be6, eps);
            o.sums("forward", &y, &want, &a.y, cols)?;
            let (dx, dgamma, dbeta) = norm::layer_norm_bwd(&gy, &x, &ga, &stats)?;
            let (rx, rgm, rb) = r::norm::layer_norm_bwd(&g6, &x6, &ga6, eps);
            o.sums("dx", &dx, &rx, &a.dx, cols)?;
            o.sums("dgamma", &dgamma, &rgm, &a.dgamma, rows + cols)?;
            o.sums("dbeta", &dbeta, &rb, &a.dbeta, rows)?;
        }
        Kernel::Gather {
            images,
            side,
            samples,
            canvas,
        } => run_gather(g, o, rg, (*images, *side, *samples, *canvas))?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn run_elementwise(g: &Arc<Gpu>, o: &mut Out, rg: &mut Rng, op: Ew, n: usize) -> Result<()> {
    use crate::reference::elementwise as re;
    let (x, x6) = up(g, &[n], rg)?;
    let (y, y6) = up(g, &[n], rg)?;
    match op {
        // α·x + β·y: two products and a sum (cancellation measured by |α·x| + |β·y|).
        Ew::Axpby => {
            let want = re::axpby(&x6, &y6, 0.5, -2.0);
            let want_abs = re::axpby(&abs(&x6), &abs(&y6), 0.5, 2.0);
            o.sums("axpby", &x.axpby(&y, 0.5, -2.0)?, &want, &want_abs, 2)?;
        }
        Ew::Mul => {
            let want = re::mul(&x6, &y6, 3.0);
            o.sums(
                "mul",
                &elementwise::mul(&x, &y, 3.0)?,
                &want,
                &abs(&want),
                2,
            )?;
        }
        Ew::Affine => {
            let want = re::affine(&x6, -1.5, 0.25);
            let want_abs = re::affine(&abs(&x6), 1.5, 0.25);
            o.sums(
                "affine",
                &elementwise::affine(&x, -1.5, 0.25)?,
                &want,
                &want_abs,
                2,
            )?;
        }
        Ew::Relu => {
            let yr = elementwise::relu(&x)?;
            o.exact("relu", &yr, &re::relu(&x6))?;
            let back = elementwise::relu_bwd(&y, &yr)?;
            o.exact("relu_bwd", &back, &re::relu_bwd(&y6, &re::relu(&x6)))?;
        }
        Ew::ScaleBy => {
            let s = Tensor::from_slice(g, &[1], &[2.5])?;
            let want = re::affine(&x6, 5.0, 0.0);
            o.sums(
                "scale_by",
                &elementwise::scale_by(&x, &s, 2.0)?,
                &want,
                &abs(&want),
                2,
            )?;
        }
        Ew::Acc => {
            let acc = x.deep_clone()?;
            acc.acc_(&y, 0.5)?;
            let want = re::axpby(&x6, &y6, 1.0, 0.5);
            let want_abs = re::axpby(&abs(&x6), &abs(&y6), 1.0, 0.5);
            o.sums("acc", &acc, &want, &want_abs, 2)?;
        }
        Ew::Dropout => {
            let want = re::dropout(&x6, 0.5f32 as f64, 77);
            o.sums(
                "dropout",
                &elementwise::dropout(&x, 0.5, 77)?,
                &want,
                &abs(&want),
                1,
            )?;
        }
        Ew::Gelu => {
            let gy = elementwise::gelu(&x)?.to_vec()?;
            o.within("gelu", &gy, &re::gelu(&x6), STATED, STATED_WHY);
            let gb = elementwise::gelu_bwd(&y, &x)?.to_vec()?;
            o.within("gelu_bwd", &gb, &re::gelu_bwd(&y6, &x6), STATED, STATED_WHY);
        }
    }
    Ok(())
}

/// Four parameter tensors of ragged sizes, with gradient scales and a gap in the packed state,
/// against the reference tensor by tensor: odd steps in two launches of three tensors (the form
/// under WebGPU's default limits), even steps in the device's own (one launch where it binds
/// four pairs).
fn run_optim(
    g: &Arc<Gpu>,
    o: &mut Out,
    rg: &mut Rng,
    (adam, decoupled, clip): (bool, bool, bool),
    n: usize,
    steps: u32,
) -> Result<()> {
    let sizes = [n, n / 3 + 1, 7, n / 2];
    let scales = [1.0f32, 0.25, 1.0, 0.5];
    let moments = if adam { 2 } else { 1 };
    let offsets: Vec<usize> = sizes
        .iter()
        .scan(5, |at, &k| {
            *at += k;
            Some(*at - k)
        })
        .collect();
    let total = offsets[3] + sizes[3];
    let state = Tensor::zeros(g, &[moments * total])?;
    let mut ps = Vec::new();
    let mut refs = Vec::new();
    for &k in &sizes {
        let (p, p6) = up(g, &[k], rg)?;
        ps.push(p);
        refs.push((p6, vec![0.0; k], vec![0.0; k]));
    }
    for t in 1..=steps {
        let mut gs = Vec::new();
        let mut g64s = Vec::new();
        for &k in &sizes {
            let (gt, g64) = up(g, &[k], rg)?;
            gs.push(gt);
            g64s.push(g64);
        }
        let (clip_t, coef) = if clip {
            let views: Vec<&[f64]> = g64s.iter().map(|v| v.as_slice()).collect();
            (
                optim::clip_coefficient(&gs, 0.5)?,
                r::optim::clip_coef(&views, 0.5),
            )
        } else {
            (Tensor::full(g, &[2], 1.0)?, 1.0)
        };
        let slots = optim::Slot::each(&ps, &gs, &scales, &offsets);
        let rule = if adam {
            optim::Rule::Adam(optim::AdamStep {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                decoupled,
                t,
            })
        } else {
            optim::Rule::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 1e-3,
            }
        };
        let per_launch = if t % 2 == 1 {
            3
        } else {
            optim::slots_per_launch(g)
        };
        optim::step_in_launches_of(&slots, &state, &clip_t, rule, per_launch)?;
        for (i, (rp, rm, rv)) in refs.iter_mut().enumerate() {
            let scale = coef * scales[i] as f64;
            if adam {
                r::optim::adam(
                    rp, &g64s[i], rm, rv, 1e-2, 0.9, 0.999, 1e-8, 0.01, decoupled, t, scale,
                );
            } else {
                r::optim::sgd(rp, &g64s[i], rm, 0.05, 0.9, 1e-3, t == 1, scale);
            }
        }
    }
    for (i, (p, (rp, _, _))) in ps.iter().zip(&refs).enumerate() {
        o.within(
            &format!("parameters {i}"),
            &p.to_vec()?,
            rp,
            STATED,
            STATED_WHY,
        );
    }
    Ok(())
}

fn run_gather(
    g: &Arc<Gpu>,
    o: &mut Out,
    rg: &mut Rng,
    (images, side, samples, canvas): (usize, usize, usize, usize),
) -> Result<()> {
    use crate::data::{Canvas, GpuSplit, Sample, Split};
    let pixels: Vec<u8> = (0..images * side * side)
        .map(|_| rg.below(256) as u8)
        .collect();
    let split = Split {
        images: pixels.clone(),
        labels: (0..images).map(|i| (i % 10) as u8).collect(),
        n: images,
        h: side,
        w: side,
    };
    let up = GpuSplit::upload(g, &split)?;
    let pad = (canvas - side) / 2;
    let c = Canvas {
        size: canvas,
        pad,
        dx: (-(pad as i32), pad as i32),
        dy_max: pad as i32,
    };
    let list: Vec<Sample> = (0..samples)
        .map(|i| Sample {
            index: rg.below(images) as u32,
            rot: (i % 4) as u32,
            dx: rg.below(2 * pad + 1) as i32 - pad as i32,
            dy: rg.below(pad + 1) as i32,
            label: rg.below(10) as u32,
        })
        .collect();
    let b = up.gather_samples(c, &list)?;
    let rs: Vec<r::data::Sample> = list
        .iter()
        .map(|s| (s.index, s.rot, s.dx, s.dy, s.label))
        .collect();
    let (want_i, want_l) = r::data::gather(&pixels, side, side, &rs, (canvas, pad));
    o.exact("images", &b.images, &to64(&want_i))?;
    let got_l: Vec<f32> = b.labels.to_vec_u32()?.iter().map(|&v| v as f32).collect();
    let want_l: Vec<f64> = want_l.iter().map(|&v| v as f64).collect();
    o.within("labels", &got_l, &want_l, 0.0, "exact");
    Ok(())
}
