//! The convolution family against its CPU references: conv2d (direct and im2col), the C4 filter
//! transforms and their adjoints, lifting and P4 convolutions, pooling, image transforms. Forward
//! and backward each, on fresh random inputs with ragged shapes; each reference backward is checked
//! once against f64 central finite differences.
//! Over 600 lines: the whole convolution family (plain, group, pooling, transforms) shares its
//! shapes and tolerances here; split, each part would repeat them.

mod common;
use common::*;
use std::sync::Arc;
use symclone::autograd::Tape;
use symclone::gpu::KernelFamily;
use symclone::group::Group;
use symclone::ops::conv::{self, ConvDims};
use symclone::ops::pool::RotPool;
use symclone::ops::{elementwise, gconv, pool, reduce, transform};
use symclone::reference::{self as r, finite_diff, rel_err64, to64};
use symclone::tensor::Tensor;
use symclone::{Error, Gpu};

/// Σ w ⊙ f: a scalar whose gradient w.r.t. f is w.
fn probe(f: &[f64], w: &[f64]) -> f64 {
    f.iter().zip(w).map(|(a, b)| a * b).sum()
}

fn upload(g: &Arc<Gpu>, shape: &[usize], rg: &mut symclone::rng::Rng) -> (Tensor, Vec<f64>) {
    let v = rg.normal_vec(shape.iter().product());
    (Tensor::from_slice(g, shape, &v).unwrap(), to64(&v))
}

fn is_shape_err<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::Shape { .. }))
}

/// (batch, cin, h, w, cout, k, pad): H, W in 1…33 (odd and even), C in 1…20, k ∈ {1, 3, 5}, p ∈ {0, 1, 2}.
const CONV_CASES: &[(usize, usize, usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1, 1, 0),
    (2, 1, 1, 1, 3, 3, 1),
    (1, 2, 3, 3, 1, 3, 0),
    (3, 3, 7, 5, 4, 3, 1),
    (2, 5, 33, 17, 6, 3, 0),
    (1, 20, 9, 11, 20, 5, 2),
    (2, 7, 13, 2, 9, 1, 2),
    (1, 4, 28, 28, 10, 3, 1),
    (2, 3, 8, 31, 5, 5, 0),
    (1, 1, 2, 3, 2, 5, 2),
    (2, 16, 6, 6, 17, 3, 2),
    (1, 9, 33, 33, 3, 5, 1),
    // Past one channel tile of the generated kernels (32), a ragged last column tile, and more
    // images than weight-gradient splits (64: two images per split, a ragged last split).
    (67, 3, 6, 19, 37, 3, 1),
    (2, 41, 5, 7, 70, 3, 0),
];

#[test]
fn conv2d_forward_backward_match_reference() {
    // On lavapipe the default device uses im2col + matmul and the Workgroup-family device the
    // direct kernels (forward and input gradient), so both algorithms are checked end to end.
    for g in [gpu(), gpu_with(KernelFamily::Workgroup)] {
        conv2d_cases(&g, CONV_CASES);
    }
}

/// conv2d forward (by the adapter's algorithm and by im2col, with and without bias) and its taped
/// backward against the reference for each case.
fn conv2d_cases(g: &Arc<Gpu>, cases: &[(usize, usize, usize, usize, usize, usize, usize)]) {
    let g = g.clone();
    for (n, &c) in cases.iter().enumerate() {
        let d = ConvDims::from(c);
        let mut rg = rng(100 + n as u64);
        let (x, x6) = upload(&g, &[d.batch, d.cin, d.h, d.w], &mut rg);
        let (w, w6) = upload(&g, &[d.cout, d.cin, d.k, d.k], &mut rg);
        let (b, b6) = upload(&g, &[d.cout], &mut rg);
        let want = r::conv::forward(&x6, &w6, Some(&b6), d);
        let tol = sum_tol(d.cin * d.k * d.k);
        let got = conv::conv2d(&x, &w, Some(&b), d.pad).unwrap();
        assert_eq!(got.shape(), d.out_shape());
        assert_close(&format!("conv2d {d:?}"), &got.to_vec().unwrap(), &want, tol);
        let im = conv::conv2d_im2col(&x, &w, Some(&b), d.pad).unwrap();
        assert_close(
            &format!("conv2d im2col {d:?}"),
            &im.to_vec().unwrap(),
            &want,
            tol,
        );
        let nob = conv::conv2d(&x, &w, None, d.pad).unwrap();
        assert_close(
            "conv2d without bias",
            &nob.to_vec().unwrap(),
            &r::conv::forward(&x6, &w6, None, d),
            tol,
        );

        // Tape gradients of Σ gw ⊙ y.
        let (gw, gw6) = upload(&g, &d.out_shape(), &mut rg);
        let mut tape = Tape::new();
        let (vx, vw, vb) = (
            tape.leaf(x.clone()),
            tape.leaf(w.clone()),
            tape.leaf(b.clone()),
        );
        let y = conv::conv2d_t(&mut tape, vx, vw, Some(vb), d.pad).unwrap();
        tape.backward_with(y, gw).unwrap();
        let (dx, dw, db) = r::conv::backward(&x6, &w6, &gw6, d);
        let (ax, aw, ab) = r::conv::backward(&abs64(&x6), &abs64(&w6), &abs64(&gw6), d);
        let (kx, kw) = (d.cout * d.k * d.k, d.batch * d.ho() * d.wo());
        assert_sum_close(
            &format!("dx {d:?}"),
            &tape.grad(vx).unwrap().to_vec().unwrap(),
            &dx,
            &ax,
            kx,
        );
        assert_sum_close(
            &format!("dw {d:?}"),
            &tape.grad(vw).unwrap().to_vec().unwrap(),
            &dw,
            &aw,
            kw,
        );
        assert_sum_close(
            &format!("db {d:?}"),
            &tape.grad(vb).unwrap().to_vec().unwrap(),
            &db,
            &ab,
            kw,
        );
    }
}

#[test]
fn conv2d_long_weight_gradient_sum() {
    // The weight gradient sums batch · Ho · Wo = 8 · 28 · 28 terms.
    let g = gpu();
    let d = ConvDims {
        batch: 8,
        cin: 3,
        h: 28,
        w: 28,
        cout: 5,
        k: 3,
        pad: 1,
    };
    let mut rg = rng(7);
    let (x, x6) = upload(&g, &[d.batch, d.cin, d.h, d.w], &mut rg);
    let (_, w6) = upload(&g, &[d.cout, d.cin, d.k, d.k], &mut rg);
    let (gy, g6) = upload(&g, &d.out_shape(), &mut rg);
    let (_, dw, db) = r::conv::backward(&x6, &w6, &g6, d);
    let tol = sum_tol(d.batch * d.ho() * d.wo());
    assert_close(
        "dw",
        &conv::conv2d_weight_grad(&x, &gy, d)
            .unwrap()
            .to_vec()
            .unwrap(),
        &dw,
        tol,
    );
    assert_close(
        "db",
        &conv::conv2d_bias_grad(&gy).unwrap().to_vec().unwrap(),
        &db,
        tol,
    );
}

#[test]
fn conv_reference_backward_matches_finite_differences() {
    for c in [
        (2, 2, 4, 5, 3, 3, 1),
        (1, 3, 3, 3, 2, 1, 2),
        (1, 1, 5, 4, 2, 3, 0),
    ] {
        let d = ConvDims::from(c);
        let mut rg = rng(3);
        let x = to64(&rg.normal_vec(d.batch * d.cin * d.h * d.w));
        let w = to64(&rg.normal_vec(d.cout * d.cin * d.k * d.k));
        let b = to64(&rg.normal_vec(d.cout));
        let gw = to64(&rg.normal_vec(d.out_shape().iter().product()));
        let (dx, dw, db) = r::conv::backward(&x, &w, &gw, d);
        let fx = finite_diff(&x, 1e-6, |v| {
            probe(&r::conv::forward(v, &w, Some(&b), d), &gw)
        });
        let fw = finite_diff(&w, 1e-6, |v| {
            probe(&r::conv::forward(&x, v, Some(&b), d), &gw)
        });
        let fb = finite_diff(&b, 1e-6, |v| {
            probe(&r::conv::forward(&x, &w, Some(v), d), &gw)
        });
        assert!(
            rel_err64(&dx, &fx) <= 1e-6,
            "dx vs FD {:.2e}",
            rel_err64(&dx, &fx)
        );
        assert!(
            rel_err64(&dw, &fw) <= 1e-6,
            "dw vs FD {:.2e}",
            rel_err64(&dw, &fw)
        );
        assert!(
            rel_err64(&db, &fb) <= 1e-6,
            "db vs FD {:.2e}",
            rel_err64(&db, &fb)
        );
    }
}

/// A filter transform (or its adjoint) on the GPU, and its CPU reference.
type FilterT = fn(&Tensor, Group) -> symclone::Result<Tensor>;
type FilterRef = fn(&[f64], usize, usize, usize, usize) -> Vec<f64>;
/// A transform's name, its input and output shapes, the GPU transform and adjoint, and their
/// references.
type FilterCase = (
    &'static str,
    Vec<usize>,
    Vec<usize>,
    FilterT,
    FilterT,
    FilterRef,
    FilterRef,
);

#[test]
fn filter_transforms_and_adjoints_match_reference() {
    let g = gpu();
    let mut rg = rng(21);
    for group in Group::ALL {
        let n = group.order();
        for (cout, cin, k) in [(1, 1, 1), (3, 2, 3), (2, 5, 5), (7, 1, 3), (1, 3, 7)] {
            // Lift: (cout, cin, k, k) → (cout·n, cin, k, k); group: (cout, cin, n, k, k) →
            // (cout·n, cin·n, k, k). Each: the GPU transform and adjoint, their references.
            let cases: [FilterCase; 2] = [
                (
                    "lift_filter",
                    vec![cout, cin, k, k],
                    vec![cout * n, cin, k, k],
                    gconv::lift_filter,
                    gconv::lift_filter_adjoint,
                    r::gconv::lift_filter,
                    r::gconv::lift_filter_adjoint,
                ),
                (
                    "group_filter",
                    vec![cout, cin, n, k, k],
                    vec![cout * n, cin * n, k, k],
                    gconv::group_filter,
                    gconv::group_filter_adjoint,
                    r::gconv::group_filter,
                    r::gconv::group_filter_adjoint,
                ),
            ];
            for (what, w_shape, t_shape, fwd, adj_gpu, fwd_ref, adj_ref) in cases {
                let (w, w6) = upload(&g, &w_shape, &mut rg);
                let tw = fwd(&w, group).unwrap();
                assert_eq!(tw.shape(), t_shape.as_slice());
                let want = fwd_ref(&w6, cout, cin, k, n);
                assert_close(what, &tw.to_vec().unwrap(), &want, 0.0);
                let (gt, g6) = upload(&g, &t_shape, &mut rg);
                let adj = adj_ref(&g6, cout, cin, k, n);
                let got = adj_gpu(&gt, group).unwrap().to_vec().unwrap();
                assert_close(&format!("{what}_adjoint"), &got, &adj, 1e-6);
                // <T w, g> = <w, T* g>
                let lhs = probe(&want, &g6);
                assert!((lhs - probe(&w6, &adj)).abs() <= 1e-9 * lhs.abs().max(1.0));
            }
        }
    }
    // The transform is exactly SPEC §1 on a hand-checked 2×2 case: rot90([[1, 2], [3, 4]]) = [[2, 4], [1, 3]].
    let w = Tensor::from_slice(&g, &[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let tw = gconv::lift_filter(&w, Group::C4).unwrap().to_vec().unwrap();
    assert_eq!(&tw[4..8], &[2.0, 4.0, 1.0, 3.0]);
    assert_eq!(&tw[8..12], &[4.0, 3.0, 2.0, 1.0]);
    // SPEC §9: g_4 = flipud, [[3, 4], [1, 2]]; g_5 = flipud(rot90) = [[1, 3], [2, 4]].
    let tw = gconv::lift_filter(&w, Group::D4).unwrap().to_vec().unwrap();
    assert_eq!(&tw[16..20], &[3.0, 4.0, 1.0, 2.0]);
    assert_eq!(&tw[20..24], &[1.0, 3.0, 2.0, 4.0]);
}

/// The fused transforms equal their unfused compositions bit for bit: the filter transform with
/// the bias repeated beside it (`*_filter_bias`) against the transform and `expand_bias`; the
/// adjoint over partial sums (splits) against `sum_axis` over the splits and then the adjoint; the
/// bias gradient's sum over splits and orientations (`sum_splits_axis`) against two `sum_axis`, and
/// a plain convolution's bias gradient in one launch (`sum_batch_plane`) against two.
#[test]
fn fused_transforms_equal_their_compositions() {
    let g = gpu();
    let mut rg = rng(23);
    for group in Group::ALL {
        let n = group.order();
        for (cout, cin, k, splits) in [(3, 2, 3, 6), (2, 5, 1, 4), (7, 1, 3, 1), (1, 3, 5, 9)] {
            let (b, _) = upload(&g, &[cout], &mut rg);
            let expanded = gconv::expand_bias(&b, n).unwrap();
            // Lift.
            let (w, _) = upload(&g, &[cout, cin, k, k], &mut rg);
            let (tw, tb) = gconv::lift_filter_bias(&w, Some(&b), group).unwrap();
            assert_eq!(bits(&tw), bits(&gconv::lift_filter(&w, group).unwrap()));
            assert_eq!(bits(&tb.unwrap()), bits(&expanded));
            let (parts, _) = upload(&g, &[splits, cout * n, cin, k, k], &mut rg);
            let summed = reduce::sum_axis(&parts, 0).unwrap();
            assert_eq!(
                bits(&gconv::lift_filter_adjoint(&parts, group).unwrap()),
                bits(&gconv::lift_filter_adjoint(&summed, group).unwrap()),
                "lift_filter_adjoint over {splits} splits, {group}"
            );
            // Group.
            let (w, _) = upload(&g, &[cout, cin, n, k, k], &mut rg);
            let (tw, tb) = gconv::group_filter_bias(&w, Some(&b), group).unwrap();
            assert_eq!(bits(&tw), bits(&gconv::group_filter(&w, group).unwrap()));
            assert_eq!(bits(&tb.unwrap()), bits(&expanded));
            let (parts, _) = upload(&g, &[splits, cout * n, cin * n, k, k], &mut rg);
            let summed = reduce::sum_axis(&parts, 0).unwrap();
            assert_eq!(
                bits(&gconv::group_filter_adjoint(&parts, group).unwrap()),
                bits(&gconv::group_filter_adjoint(&summed, group).unwrap()),
                "group_filter_adjoint over {splits} splits, {group}"
            );
            // The bias gradient: (splits, Cout, n) → (Cout).
            let (bp, _) = upload(&g, &[splits, cout, n], &mut rg);
            let two = reduce::sum_axis(&reduce::sum_axis(&bp, 0).unwrap(), 1).unwrap();
            assert_eq!(
                bits(&reduce::sum_splits_axis(&bp, 1).unwrap()),
                bits(&two),
                "sum_splits_axis over {splits} splits, {group}"
            );
        }
    }
    // The bias gradient of a (B, C, H, W) gradient in one launch against a sum over the planes
    // and one over the batch (1 to 300 images, planes of 1 to 196 values); against the reference.
    for &(b, c, h, w) in &[
        (1, 3, 1, 1),
        (5, 2, 7, 3),
        (64, 9, 14, 14),
        (256, 2, 5, 5),
        (300, 3, 2, 3),
    ] {
        let (gy, gy6) = upload(&g, &[b, c, h, w], &mut rg);
        let two = reduce::sum_axis(
            &reduce::sum_axis(&gy.reshape(&[b, c, h * w]).unwrap(), 2).unwrap(),
            0,
        )
        .unwrap();
        let got = conv::conv2d_bias_grad(&gy).unwrap();
        assert_eq!(bits(&got), bits(&two), "bias gradient of {b}×{c}×{h}×{w}");
        let want: Vec<f64> = (0..c)
            .map(|o| {
                (0..b)
                    .flat_map(|i| &gy6[(i * c + o) * h * w..][..h * w])
                    .sum()
            })
            .collect();
        assert_close("bias gradient", &got.to_vec().unwrap(), &want, 1e-5);
    }
    assert!(is_shape_err(reduce::sum_batch_plane(
        &Tensor::zeros(&g, &[2, 3]).unwrap()
    )));
    // A plain convolution's weight and bias partials over the same splits, summed in one launch,
    // against a sum over each one's splits.
    for splits in [2, 5, 9] {
        let (pw, _) = upload(&g, &[splits, 4, 3, 3, 3], &mut rg);
        let (pb, _) = upload(&g, &[splits, 4], &mut rg);
        let (dw, db) = reduce::sum_splits_pair(&pw, &pb).unwrap();
        assert_eq!(dw.shape(), [4, 3, 3, 3]);
        assert_eq!(
            bits(&dw),
            bits(&reduce::sum_axis(&pw, 0).unwrap()),
            "{splits} splits"
        );
        assert_eq!(
            bits(&db),
            bits(&reduce::sum_axis(&pb, 0).unwrap()),
            "{splits} splits"
        );
    }
    let (p2, p3) = (
        Tensor::zeros(&g, &[2, 4]).unwrap(),
        Tensor::zeros(&g, &[3, 4]).unwrap(),
    );
    assert!(is_shape_err(reduce::sum_splits_pair(&p2, &p3)));
    // Ill-fitting biases and splits are refused.
    let w = Tensor::zeros(&g, &[2, 1, 3, 3]).unwrap();
    let b3 = Tensor::zeros(&g, &[3]).unwrap();
    assert!(is_shape_err(gconv::lift_filter_bias(
        &w,
        Some(&b3),
        Group::C4
    )));
    let empty = Tensor::zeros(&g, &[0, 4, 3]).unwrap();
    assert!(is_shape_err(reduce::sum_splits_axis(&empty, 1)));
    let ragged = Tensor::zeros(&g, &[2, 6, 1, 3, 3]).unwrap();
    assert!(is_shape_err(gconv::lift_filter_adjoint(&ragged, Group::C4)));
}

/// A taped convolution with ReLU in its own launch (plain, lifting and group, C4 and D4) gives the
/// same output and the same input, filter and bias gradients, bit for bit, as the convolution
/// followed by a taped ReLU.
#[test]
fn relu_in_the_convolution_equals_relu_after_it() {
    let g = gpu();
    let mut rg = rng(29);
    type Layer = dyn Fn(&mut Tape, [symclone::autograd::Var; 3], bool) -> symclone::autograd::Var;
    type Case = (&'static str, Vec<usize>, Vec<usize>, Box<Layer>);
    let (batch, cin, side, cout, k, pad) = (5, 2, 6, 3, 3, 1);
    for group in Group::ALL {
        let n = group.order();
        let plain: Box<Layer> = Box::new(move |t, [x, w, b], relu| {
            conv::conv2d_relu_t(t, x, w, Some(b), pad, relu).unwrap()
        });
        let lift: Box<Layer> = Box::new(move |t, [x, w, b], relu| {
            gconv::lift_conv_relu_t(t, x, (w, Some(b)), (pad, relu), group).unwrap()
        });
        let p4: Box<Layer> = Box::new(move |t, [x, w, b], relu| {
            gconv::group_conv_relu_t(t, x, (w, Some(b)), (pad, relu), group).unwrap()
        });
        let cases: [Case; 3] = [
            (
                "conv2d",
                vec![batch, cin, side, side],
                vec![cout, cin, k, k],
                plain,
            ),
            (
                "lift",
                vec![batch, cin, side, side],
                vec![cout, cin, k, k],
                lift,
            ),
            (
                "group",
                vec![batch, cin, n, side, side],
                vec![cout, cin, n, k, k],
                p4,
            ),
        ];
        for (what, xs, ws, layer) in cases {
            let (x, _) = upload(&g, &xs, &mut rg);
            let (w, _) = upload(&g, &ws, &mut rg);
            let (b, _) = upload(&g, &[cout], &mut rg);
            let run = |fused: bool, gy: Option<Tensor>| {
                let mut tape = Tape::new();
                let v = [
                    tape.leaf(x.clone()),
                    tape.leaf(w.clone()),
                    tape.leaf(b.clone()),
                ];
                let y = if fused {
                    layer(&mut tape, v, true)
                } else {
                    let y = layer(&mut tape, v, false);
                    elementwise::relu_t(&mut tape, y).unwrap()
                };
                let out = tape.value(y).clone();
                let gy = gy.unwrap_or_else(|| Tensor::zeros(&g, out.shape()).unwrap());
                tape.backward_with(y, gy).unwrap();
                let grads: Vec<Vec<u32>> = v.iter().map(|&v| bits(tape.grad(v).unwrap())).collect();
                (out, grads)
            };
            let (out, _) = run(false, None);
            let (gy, _) = upload(&g, out.shape(), &mut rg);
            let (after, after_grads) = run(false, Some(gy.clone()));
            let (fused, fused_grads) = run(true, Some(gy));
            assert_eq!(bits(&fused), bits(&after), "{what} with ReLU, {group}");
            assert!(
                bits(&after).contains(&0),
                "{what}: the ReLU clamps some outputs"
            );
            for (name, (a, f)) in ["dx", "dw", "db"]
                .iter()
                .zip(after_grads.iter().zip(&fused_grads))
            {
                assert_eq!(f, a, "{what} with ReLU, {group}: {name}");
            }
        }
    }
}

#[test]
fn lift_and_p4_layers_forward_backward_match_reference() {
    gconv_cases(
        &gpu(),
        &[
            (2, 1, 11, 9, 3, 3, 0),
            (1, 3, 7, 7, 2, 5, 2),
            (2, 2, 6, 5, 4, 1, 1),
            // Nine splits of the batch for the weight and bias gradients' partial sums.
            (9, 2, 5, 6, 3, 3, 1),
        ],
    );
}

/// Lifting and P4 convolutions, forward and taped backward, against the reference for each case
/// (batch, cin, h, w, cout, k, pad).
fn gconv_cases(g: &Arc<Gpu>, cases: &[(usize, usize, usize, usize, usize, usize, usize)]) {
    let g = g.clone();
    for (case, &(batch, cin, h, w, cout, k, pad)) in cases.iter().enumerate() {
        for group in Group::ALL {
            let n = group.order();
            let mut rg = rng(40 + case as u64 + n as u64);
            // Lifting.
            let (x, x6) = upload(&g, &[batch, cin, h, w], &mut rg);
            let (wt, w6) = upload(&g, &[cout, cin, k, k], &mut rg);
            let (b, b6) = upload(&g, &[cout], &mut rg);
            let want = r::gconv::lift_conv(
                &x6,
                &w6,
                Some(&b6),
                batch,
                cin,
                h,
                w,
                cout,
                k,
                pad,
                group.order(),
            );
            let tol = sum_tol(cin * k * k);
            let d = ConvDims {
                batch,
                cin,
                h,
                w,
                cout: cout * n,
                k,
                pad,
            };
            let out_shape = [batch, cout, n, d.ho(), d.wo()];
            let got = gconv::lift_conv(&x, &wt, Some(&b), pad, group).unwrap();
            assert_eq!(got.shape(), out_shape);
            assert_close("lift_c4", &got.to_vec().unwrap(), &want, tol);
            let (gy, gy6) = upload(&g, &out_shape, &mut rg);
            let mut tape = Tape::new();
            let (vx, vw, vb) = (tape.leaf(x), tape.leaf(wt), tape.leaf(b));
            let y = gconv::lift_conv_t(&mut tape, vx, vw, Some(vb), pad, group).unwrap();
            tape.backward_with(y, gy).unwrap();
            let tw6 = r::gconv::lift_filter(&w6, cout, cin, k, group.order());
            let (dx, dtw, dtb) = r::conv::backward(&x6, &tw6, &gy6, d);
            let dw = r::gconv::lift_filter_adjoint(&dtw, cout, cin, k, group.order());
            let db: Vec<f64> = dtb.chunks(n).map(|c| c.iter().sum()).collect();
            let tg = sum_tol(batch * d.ho() * d.wo() * n);
            assert_close(
                "lift dx",
                &tape.grad(vx).unwrap().to_vec().unwrap(),
                &dx,
                tg,
            );
            assert_close(
                "lift dw",
                &tape.grad(vw).unwrap().to_vec().unwrap(),
                &dw,
                tg,
            );
            assert_close(
                "lift db",
                &tape.grad(vb).unwrap().to_vec().unwrap(),
                &db,
                tg,
            );

            // P4.
            let (x, x6) = upload(&g, &[batch, cin, n, h, w], &mut rg);
            let (wt, w6) = upload(&g, &[cout, cin, n, k, k], &mut rg);
            let (b, b6) = upload(&g, &[cout], &mut rg);
            let want = r::gconv::group_conv(
                &x6,
                &w6,
                Some(&b6),
                batch,
                cin,
                h,
                w,
                cout,
                k,
                pad,
                group.order(),
            );
            let got = gconv::group_conv(&x, &wt, Some(&b), pad, group).unwrap();
            assert_eq!(got.shape(), out_shape);
            assert_close(
                "p4_conv",
                &got.to_vec().unwrap(),
                &want,
                sum_tol(cin * n * k * k),
            );
            let (gy, gy6) = upload(&g, &out_shape, &mut rg);
            let mut tape = Tape::new();
            let (vx, vw, vb) = (tape.leaf(x), tape.leaf(wt), tape.leaf(b));
            let y = gconv::group_conv_t(&mut tape, vx, vw, Some(vb), pad, group).unwrap();
            tape.backward_with(y, gy).unwrap();
            let dg = ConvDims { cin: cin * n, ..d };
            let tw6 = r::gconv::group_filter(&w6, cout, cin, k, group.order());
            let (dx, dtw, dtb) = r::conv::backward(&x6, &tw6, &gy6, dg);
            let dw = r::gconv::group_filter_adjoint(&dtw, cout, cin, k, group.order());
            let db: Vec<f64> = dtb.chunks(n).map(|c| c.iter().sum()).collect();
            assert_close("p4 dx", &tape.grad(vx).unwrap().to_vec().unwrap(), &dx, tg);
            assert_close("p4 dw", &tape.grad(vw).unwrap().to_vec().unwrap(), &dw, tg);
            assert_close("p4 db", &tape.grad(vb).unwrap().to_vec().unwrap(), &db, tg);
        }
    }
}

#[test]
fn p4_reference_gradient_matches_finite_differences() {
    // The filter gradient through the transform (adjoint ∘ conv backward) against FD of the P4 conv.
    let (batch, cin, h, w, cout, k, pad) = (1, 2, 5, 4, 2, 3, 1);
    for group in Group::ALL {
        let n = group.order();
        let mut rg = rng(5);
        let x = to64(&rg.normal_vec(batch * cin * n * h * w));
        let wt = to64(&rg.normal_vec(cout * cin * n * k * k));
        let b = to64(&rg.normal_vec(cout));
        let d = ConvDims {
            batch,
            cin: cin * n,
            h,
            w,
            cout: cout * n,
            k,
            pad,
        };
        let gy = to64(&rg.normal_vec(batch * cout * n * d.ho() * d.wo()));
        let (_, dtw, dtb) = r::conv::backward(
            &x,
            &r::gconv::group_filter(&wt, cout, cin, k, group.order()),
            &gy,
            d,
        );
        let dw = r::gconv::group_filter_adjoint(&dtw, cout, cin, k, group.order());
        let db: Vec<f64> = dtb.chunks(n).map(|c| c.iter().sum()).collect();
        let fw = finite_diff(&wt, 1e-6, |v| {
            probe(
                &r::gconv::group_conv(
                    &x,
                    v,
                    Some(&b),
                    batch,
                    cin,
                    h,
                    w,
                    cout,
                    k,
                    pad,
                    group.order(),
                ),
                &gy,
            )
        });
        let fb = finite_diff(&b, 1e-6, |v| {
            probe(
                &r::gconv::group_conv(
                    &x,
                    &wt,
                    Some(v),
                    batch,
                    cin,
                    h,
                    w,
                    cout,
                    k,
                    pad,
                    group.order(),
                ),
                &gy,
            )
        });
        assert!(rel_err64(&dw, &fw) <= 1e-6, "{:.2e}", rel_err64(&dw, &fw));
        assert!(rel_err64(&db, &fb) <= 1e-6, "{:.2e}", rel_err64(&db, &fb));
        let wl = to64(&rg.normal_vec(cout * cin * k * k));
        let dl = ConvDims { cin, ..d };
        let xl = to64(&rg.normal_vec(batch * cin * h * w));
        let (_, dtw, _) = r::conv::backward(
            &xl,
            &r::gconv::lift_filter(&wl, cout, cin, k, group.order()),
            &gy,
            dl,
        );
        let dw = r::gconv::lift_filter_adjoint(&dtw, cout, cin, k, group.order());
        let fw = finite_diff(&wl, 1e-6, |v| {
            probe(
                &r::gconv::lift_conv(&xl, v, None, batch, cin, h, w, cout, k, pad, group.order()),
                &gy,
            )
        });
        assert!(rel_err64(&dw, &fw) <= 1e-6, "{:.2e}", rel_err64(&dw, &fw));
    }
}

#[test]
fn spatial_pooling_matches_reference() {
    let g = gpu();
    let mut rg = rng(60);
    for &(planes, h, w, k, s) in &[
        (1, 1, 1, 1, 1),
        (3, 7, 5, 2, 2),
        (2, 33, 17, 3, 2),
        (4, 24, 24, 2, 2),
        (2, 9, 12, 3, 1),
        (1, 5, 8, 2, 3),
        (6, 12, 12, 4, 4),
    ] {
        let shape = [planes, 2, h, w];
        let (x, x6) = upload(&g, &shape, &mut rg);
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
        let oshape = [planes, 2, ho, wo];
        let (gy, g6) = upload(&g, &oshape, &mut rg);
        let (want, _) = r::pool::max_pool(&x6, h, w, k, s);
        let mut tape = Tape::new();
        let vx = tape.leaf(x.clone());
        let y = pool::max_pool2d_t(&mut tape, vx, k, s).unwrap();
        assert_eq!(tape.value(y).shape(), oshape);
        assert_close("max_pool2d", &tape.value(y).to_vec().unwrap(), &want, 0.0);
        tape.backward_with(y, gy.clone()).unwrap();
        let dx = r::pool::max_pool_bwd(&x6, &g6, h, w, k, s);
        assert_close(
            "max_pool2d bwd",
            &tape.grad(vx).unwrap().to_vec().unwrap(),
            &dx,
            1e-6,
        );

        // ReLU taken into the pool: the same maps and input gradient as ReLU then the pool, on
        // the GPU bit for bit, and as the references' composition.
        let mut tape = Tape::new();
        let vx = tape.leaf(x.clone());
        let y = pool::max_pool2d_ex_t(&mut tape, vx, k, s, true).unwrap();
        tape.backward_with(y, gy.clone()).unwrap();
        let mut apart = Tape::new();
        let vx2 = apart.leaf(x.clone());
        let r2 = elementwise::relu_t(&mut apart, vx2).unwrap();
        let y2 = pool::max_pool2d_t(&mut apart, r2, k, s).unwrap();
        apart.backward_with(y2, gy.clone()).unwrap();
        let fused = tape.value(y).to_vec().unwrap();
        assert_eq!(fused, apart.value(y2).to_vec().unwrap(), "pool with ReLU");
        let dfused = tape.grad(vx).unwrap().to_vec().unwrap();
        assert_eq!(
            dfused,
            apart.grad(vx2).unwrap().to_vec().unwrap(),
            "its backward"
        );
        let xr = r::elementwise::relu(&x6);
        assert_close(
            "pool with ReLU",
            &fused,
            &r::pool::max_pool(&xr, h, w, k, s).0,
            0.0,
        );
        let want = r::elementwise::relu_bwd(&r::pool::max_pool_bwd(&xr, &g6, h, w, k, s), &xr);
        assert_close("its backward", &dfused, &want, 1e-6);

        let mut tape = Tape::new();
        let vx = tape.leaf(x);
        let y = pool::avg_pool2d_t(&mut tape, vx, k, s).unwrap();
        assert_close(
            "avg_pool2d",
            &tape.value(y).to_vec().unwrap(),
            &r::pool::avg_pool(&x6, h, w, k, s),
            1e-6,
        );
        tape.backward_with(y, gy).unwrap();
        assert_close(
            "avg_pool2d bwd",
            &tape.grad(vx).unwrap().to_vec().unwrap(),
            &r::pool::avg_pool_bwd(&g6, h, w, k, s),
            1e-6,
        );
    }
    // Ties go to the first index in row-major window order.
    let x =
        Tensor::from_slice(&g, &[1, 1, 2, 4], &[1.0, 3.0, 3.0, 0.0, 3.0, 3.0, 5.0, 5.0]).unwrap();
    let (y, arg) = pool::max_pool2d(&x, 2, 2).unwrap();
    assert_eq!(y.to_vec().unwrap(), [3.0, 5.0]);
    assert_eq!(arg.to_vec_u32().unwrap(), [1, 6]);
    let gy = Tensor::from_slice(&g, &[1, 1, 1, 2], &[1.0, 2.0]).unwrap();
    let dx = pool::max_pool2d_bwd(&gy, &arg, &[1, 1, 2, 4], 2, 2).unwrap();
    assert_eq!(
        dx.to_vec().unwrap(),
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]
    );
    // Overlapping windows (stride 1) add up the gradient at a shared arg-max.
    let gy = Tensor::from_slice(&g, &[1, 1, 2], &[1.0, 2.0]).unwrap();
    let x = Tensor::from_slice(&g, &[1, 2, 3], &[0.0, 9.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
    let (_, arg) = pool::max_pool2d(&x, 2, 1).unwrap();
    let dx = pool::max_pool2d_bwd(&gy, &arg, &[1, 2, 3], 2, 1).unwrap();
    assert_eq!(dx.to_vec().unwrap(), [0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn rotation_pooling_and_global_mean_match_reference() {
    let g = gpu();
    let mut rg = rng(61);
    for &(b, c, h, w) in &[(1, 1, 1, 1), (2, 3, 7, 5), (3, 20, 4, 4), (1, 2, 33, 9)] {
        let shape = [b, c, 4, h, w];
        let (x, x6) = upload(&g, &shape, &mut rg);
        let (gy, g6) = upload(&g, &[b, c, h, w], &mut rg);
        for (how, max) in [(RotPool::Max, true), (RotPool::Mean, false)] {
            let mut tape = Tape::new();
            let vx = tape.leaf(x.clone());
            let y = pool::rot_pool_t(&mut tape, vx, how).unwrap();
            assert_eq!(tape.value(y).shape(), [b, c, h, w]);
            assert_close(
                &format!("rot_pool {how:?}"),
                &tape.value(y).to_vec().unwrap(),
                &r::pool::rot_pool(&x6, h * w, 4, max),
                1e-7,
            );
            tape.backward_with(y, gy.clone()).unwrap();
            assert_close(
                &format!("rot_pool {how:?} bwd"),
                &tape.grad(vx).unwrap().to_vec().unwrap(),
                &r::pool::rot_pool_bwd(&x6, &g6, h * w, 4, max),
                1e-7,
            );
        }
        let (gm, gm6) = upload(&g, &[b, c], &mut rg);
        let n = 4 * h * w;
        let mut tape = Tape::new();
        let vx = tape.leaf(x);
        let y = pool::global_mean_t(&mut tape, vx).unwrap();
        assert_eq!(tape.value(y).shape(), [b, c]);
        assert_close(
            "global_mean",
            &tape.value(y).to_vec().unwrap(),
            &r::pool::global_mean(&x6, n),
            sum_tol(n) * 10.0,
        );
        tape.backward_with(y, gm).unwrap();
        assert_close(
            "global_mean bwd",
            &tape.grad(vx).unwrap().to_vec().unwrap(),
            &r::pool::global_mean_bwd(&gm6, n),
            1e-6,
        );
    }
    // Rotation max pooling ties go to the lowest r.
    let x = Tensor::from_slice(&g, &[1, 1, 4, 1, 1], &[1.0, 2.0, 2.0, 0.0]).unwrap();
    let gy = Tensor::from_slice(&g, &[1, 1, 1, 1], &[5.0]).unwrap();
    let dx = pool::rot_pool_bwd(&gy, &x, RotPool::Max).unwrap();
    assert_eq!(dx.to_vec().unwrap(), [0.0, 5.0, 0.0, 0.0]);
}

#[test]
fn pool_reference_backward_matches_finite_differences() {
    let mut rg = rng(62);
    let (h, w, k, s) = (5, 6, 2, 2);
    let x = to64(&rg.normal_vec(2 * h * w));
    let gy = to64(&rg.normal_vec(2 * 2 * 3));
    let check = |name: &str, a: &[f64], b: &[f64]| {
        assert!(rel_err64(a, b) <= 1e-6, "{name}: {:.2e}", rel_err64(a, b))
    };
    check(
        "max",
        &r::pool::max_pool_bwd(&x, &gy, h, w, k, s),
        &finite_diff(&x, 1e-6, |v| {
            probe(&r::pool::max_pool(v, h, w, k, s).0, &gy)
        }),
    );
    check(
        "avg",
        &r::pool::avg_pool_bwd(&gy, h, w, k, s),
        &finite_diff(&x, 1e-6, |v| probe(&r::pool::avg_pool(v, h, w, k, s), &gy)),
    );
    let x = to64(&rg.normal_vec(2 * 4 * 3));
    let gy = to64(&rg.normal_vec(2 * 3));
    for max in [true, false] {
        check(
            "rot",
            &r::pool::rot_pool_bwd(&x, &gy, 3, 4, max),
            &finite_diff(&x, 1e-6, |v| probe(&r::pool::rot_pool(v, 3, 4, max), &gy)),
        );
    }
    let gm = to64(&rg.normal_vec(2));
    check(
        "global mean",
        &r::pool::global_mean_bwd(&gm, 12),
        &finite_diff(&x, 1e-6, |v| probe(&r::pool::global_mean(v, 12), &gm)),
    );
}

#[test]
fn image_transforms_match_reference() {
    let g = gpu();
    let mut rg = rng(70);
    for n in [1usize, 2, 5, 28] {
        let (x, x6) = upload(&g, &[2, 3, n, n], &mut rg);
        let (p4, p6) = upload(&g, &[2, 3, 4, n, n], &mut rg);
        for r_ in 0..5 {
            assert_close(
                "rot90",
                &transform::rot90(&x, r_).unwrap().to_vec().unwrap(),
                &r::transform::rot90(&x6, n, r_),
                0.0,
            );
            assert_close(
                "c4_act",
                &transform::c4_act(&p4, r_).unwrap().to_vec().unwrap(),
                &r::transform::c4_act(&p6, n, r_),
                0.0,
            );
        }
        // The group law: g^4 = id, and the taped backward is the inverse action.
        let a4 = transform::c4_act(&transform::c4_act(&p4, 3).unwrap(), 1).unwrap();
        assert_close("c4 g^4", &a4.to_vec().unwrap(), &p6, 0.0);
        let (gy, g6) = upload(&g, &[2, 3, 4, n, n], &mut rg);
        let mut tape = Tape::new();
        let v = tape.leaf(p4.clone());
        let y = transform::c4_act_t(&mut tape, v, 1).unwrap();
        tape.backward_with(y, gy).unwrap();
        // The adjoint of a permutation is its inverse, exactly: dx = g⁻¹·gy bit for bit (so
        // <g·y, gy> = <y, dx> holds exactly too).
        let dx = tape.grad(v).unwrap().to_vec().unwrap();
        assert_close("c4_act bwd", &dx, &r::transform::c4_act(&g6, n, 3), 0.0);

        let (gy, g6) = upload(&g, &[2, 3, n, n], &mut rg);
        let mut tape = Tape::new();
        let v = tape.leaf(x.clone());
        let y = transform::rot90_t(&mut tape, v, 3).unwrap();
        tape.backward_with(y, gy).unwrap();
        assert_close(
            "rot90 bwd",
            &tape.grad(v).unwrap().to_vec().unwrap(),
            &r::transform::rot90(&g6, n, 1),
            0.0,
        );
    }
    // A hand-checked rotation: rot90([[1, 2], [3, 4]]) = [[2, 4], [1, 3]] (counter-clockwise).
    let x = Tensor::from_slice(&g, &[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(
        transform::rot90(&x, 1).unwrap().to_vec().unwrap(),
        [2.0, 4.0, 1.0, 3.0]
    );
    // Translation, padding, cropping, and their backward rules.
    for &(h, w, ho, wo, oy, ox) in &[
        (7, 5, 7, 5, 2, -3),
        (28, 28, 48, 48, 10, 10),
        (5, 9, 3, 4, -1, -2),
        (3, 3, 3, 3, 5, 0),
        (1, 1, 2, 2, 1, 1),
    ] {
        let (x, x6) = upload(&g, &[2, 3, h, w], &mut rg);
        let want = r::transform::shift_crop(&x6, h, w, ho, wo, oy, ox);
        assert_close(
            "shift_crop",
            &transform::shift_crop(&x, ho, wo, oy, ox)
                .unwrap()
                .to_vec()
                .unwrap(),
            &want,
            0.0,
        );
        let (gy, g6) = upload(&g, &[2, 3, ho, wo], &mut rg);
        let mut tape = Tape::new();
        let v = tape.leaf(x);
        let y = transform::shift_crop_t(&mut tape, v, ho, wo, oy, ox).unwrap();
        tape.backward_with(y, gy).unwrap();
        assert_close(
            "shift_crop bwd",
            &tape.grad(v).unwrap().to_vec().unwrap(),
            &r::transform::shift_crop_adjoint(&g6, h, w, ho, wo, oy, ox),
            0.0,
        );
    }
    let (x, x6) = upload(&g, &[1, 1, 28, 28], &mut rg);
    assert_close(
        "translate",
        &transform::translate(&x, -4, 7).unwrap().to_vec().unwrap(),
        &r::transform::shift_crop(&x6, 28, 28, 28, 28, -4, 7),
        0.0,
    );
    assert_close(
        "pad_center",
        &transform::pad_center(&x, 48, 47).unwrap().to_vec().unwrap(),
        &r::transform::shift_crop(&x6, 28, 28, 48, 47, 10, 9),
        0.0,
    );
    assert_close(
        "pad_to",
        &transform::pad_to(&x, 30, 40, 2, 12)
            .unwrap()
            .to_vec()
            .unwrap(),
        &r::transform::shift_crop(&x6, 28, 28, 30, 40, 2, 12),
        0.0,
    );
}

#[test]
fn layers_initialise_within_the_spec_bound() {
    let g = gpu();
    let mut rg = rng(80);
    let lift = symclone::nn::LiftC4::new(&g, "lift", 1, 10, 3, 0, &mut rg).unwrap();
    let p4 = symclone::nn::GroupConvC4::new(&g, "p4", 10, 20, 3, 0, &mut rg).unwrap();
    let conv = symclone::nn::Conv2d::new(&g, "conv", 20, 10, 5, 2, &mut rg).unwrap();
    for (p, fan) in [
        (&lift.weight, 9.0f32),
        (&lift.bias, 9.0),
        (&p4.weight, 90.0),
        (&p4.bias, 90.0),
        (&conv.weight, 500.0),
    ] {
        let v = p.value().to_vec().unwrap();
        let bound = 1.0 / fan.sqrt();
        assert!(v.iter().all(|x| x.abs() <= bound), "{}", p.name());
        assert!(v.iter().any(|x| x.abs() > 0.5 * bound), "{}", p.name());
    }
    assert_eq!(p4.weight.value().shape(), [20, 10, 4, 3, 3]);
    let x = Tensor::zeros(&g, &[2, 1, 28, 28]).unwrap();
    let mut tape = Tape::new();
    let vx = tape.input(x);
    let y = lift.forward(&mut tape, vx).unwrap();
    let y = p4.forward(&mut tape, y).unwrap();
    assert_eq!(tape.value(y).shape(), [2, 20, 4, 24, 24]);
    assert!(symclone::nn::Conv2d::new(&g, "bad", 0, 1, 3, 0, &mut rg).is_err());
}

#[test]
fn bad_shapes_are_shape_errors() {
    let g = gpu();
    let z = |s: &[usize]| Tensor::zeros(&g, s).unwrap();
    let x = z(&[2, 3, 8, 8]);
    assert!(
        is_shape_err(conv::conv2d(&x, &z(&[4, 2, 3, 3]), None, 0)),
        "channel mismatch"
    );
    assert!(
        is_shape_err(conv::conv2d(&x, &z(&[4, 3, 3, 2]), None, 0)),
        "non-square filter"
    );
    assert!(
        is_shape_err(conv::conv2d(&z(&[3, 8, 8]), &z(&[4, 3, 3, 3]), None, 0)),
        "rank 3 input"
    );
    assert!(
        is_shape_err(conv::conv2d(&x, &z(&[4, 3, 9, 9]), None, 0)),
        "filter larger than input"
    );
    assert!(
        is_shape_err(conv::conv2d(&x, &z(&[4, 3, 3, 3]), Some(&z(&[3])), 0)),
        "bias size"
    );
    let d = conv::conv_dims(&x, &z(&[4, 3, 3, 3]), None, 0).unwrap();
    assert!(is_shape_err(conv::conv2d_input_grad(
        &z(&[2, 4, 5, 6]),
        &z(&[4, 3, 3, 3]),
        d
    )));
    let mut tape = Tape::new();
    let (vx, vw) = (tape.leaf(x.clone()), tape.leaf(z(&[4, 2, 3, 3])));
    assert!(is_shape_err(conv::conv2d_t(&mut tape, vx, vw, None, 1)));
    let (c4, d4) = (Group::C4, Group::D4);
    assert!(is_shape_err(gconv::lift_filter(&z(&[2, 3, 3]), c4)));
    assert!(
        is_shape_err(gconv::group_filter(&z(&[2, 3, 3, 3, 3]), c4)),
        "axis 2 must be 4"
    );
    assert!(
        is_shape_err(gconv::group_filter(&z(&[2, 3, 4, 3, 3]), d4)),
        "axis 2 must be 8 for D4"
    );
    assert!(is_shape_err(gconv::lift_filter_adjoint(
        &z(&[6, 3, 3, 3]),
        c4
    )));
    assert!(is_shape_err(gconv::lift_filter_adjoint(
        &z(&[12, 3, 3, 3]),
        d4
    )));
    assert!(is_shape_err(gconv::group_filter_adjoint(
        &z(&[8, 6, 3, 3]),
        c4
    )));
    assert!(
        is_shape_err(gconv::group_conv(&x, &z(&[2, 3, 4, 3, 3]), None, 0, c4)),
        "Z2 input to P4"
    );
    assert!(is_shape_err(gconv::group_conv(
        &z(&[2, 3, 4, 8, 8]),
        &z(&[2, 2, 4, 3, 3]),
        None,
        0,
        c4
    )));
    assert!(
        is_shape_err(gconv::group_conv(
            &z(&[2, 3, 4, 8, 8]),
            &z(&[2, 3, 8, 3, 3]),
            None,
            0,
            d4
        )),
        "P4 maps into a p4m layer"
    );
    assert!(is_shape_err(gconv::lift_conv(
        &z(&[2, 3, 4, 8, 8]),
        &z(&[2, 3, 3, 3]),
        None,
        0,
        c4
    )));
    assert!(is_shape_err(pool::max_pool2d(&z(&[1, 1, 3, 3]), 4, 1)));
    assert!(is_shape_err(pool::max_pool2d(&z(&[1, 1, 3, 3]), 2, 0)));
    assert!(is_shape_err(pool::avg_pool2d(&z(&[3]), 1, 1)));
    assert!(is_shape_err(pool::rot_pool(
        &z(&[2, 3, 3, 4, 4]),
        RotPool::Max
    )));
    assert!(is_shape_err(pool::global_mean(&z(&[5]))));
    assert!(is_shape_err(transform::rot90(&z(&[1, 3, 4]), 1)));
    assert!(is_shape_err(transform::c4_act(&z(&[1, 3, 4, 4]), 1)));
    assert!(is_shape_err(transform::group_act(
        &z(&[1, 4, 4, 4]),
        1,
        Group::D4
    )));
    assert!(is_shape_err(transform::group_act(
        &z(&[1, 8, 4, 4]),
        8,
        Group::D4
    )));
    assert!(is_shape_err(transform::pad_to(&z(&[1, 5, 5]), 6, 6, 2, 0)));
    assert!(is_shape_err(transform::pad_center(&z(&[1, 5, 5]), 4, 6)));
}

/// A subset of the cases above on devices opened with WebGPU's default limits, both kernel
/// families (generated register kernels; direct kernels), ragged shapes and both weight-gradient
/// paths included.
#[test]
fn convolutions_under_webgpu_default_limits() {
    for family in [KernelFamily::Register, KernelFamily::Workgroup] {
        let g = gpu_webgpu(family);
        conv2d_cases(
            &g,
            &[CONV_CASES[3], CONV_CASES[5], CONV_CASES[9], CONV_CASES[12]],
        );
        gconv_cases(&g, &[(2, 1, 11, 9, 3, 3, 0), (1, 3, 7, 7, 2, 5, 2)]);
    }
}

/// The per-channel bias with ReLU taken into its pass: the same output, input gradient and bias
/// gradient as the bias then ReLU apart, bit for bit, on rank-4 and rank-5 maps.
#[test]
fn channel_bias_with_relu_is_the_bias_then_relu() {
    let g = gpu();
    let mut rg = rng(61);
    for shape in [vec![3usize, 5, 7, 6], vec![2, 4, 4, 3, 3]] {
        let (x, _) = upload(&g, &shape, &mut rg);
        let (b, _) = upload(&g, &[shape[1]], &mut rg);
        let (gy, _) = upload(&g, &shape, &mut rg);
        let run = |fused: bool| {
            let mut tape = Tape::new();
            let (vx, vb) = (tape.leaf(x.clone()), tape.leaf(b.clone()));
            let y = if fused {
                conv::channel_bias_relu_t(&mut tape, vx, vb, true).unwrap()
            } else {
                let y = conv::channel_bias_t(&mut tape, vx, vb).unwrap();
                elementwise::relu_t(&mut tape, y).unwrap()
            };
            tape.backward_with(y, gy.clone()).unwrap();
            let v = |t: &Tensor| t.to_vec().unwrap();
            (
                v(tape.value(y)),
                v(tape.grad(vx).unwrap()),
                v(tape.grad(vb).unwrap()),
            )
        };
        let (fused, apart) = (run(true), run(false));
        assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
        assert_eq!(fused, apart, "{shape:?}");
    }
}
