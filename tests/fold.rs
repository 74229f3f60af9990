//! Over 600 lines: one test runs every idx() kernel on one folding device, family by family.
//! Dispatches past the per-dimension workgroup limit: a device whose
//! `max_compute_workgroups_per_dimension` is 16, so every 1-D grid of more than 16 workgroups folds
//! into 2-D (`grid_1d`, and `idx()` in `shaders/common.wgsl`), runs every kernel that indexes with
//! `idx()` folded against its CPU reference, family by family.

mod common;
use common::*;
use std::sync::Arc;
use symclone::data::{Batcher, Dataset, GpuSplit, Part, Task, SIDE};
use symclone::gpu::{grid_1d, KernelFamily};
use symclone::group::Group;
use symclone::ops::conv::{self, ConvDims};
use symclone::ops::pool::RotPool;
use symclone::ops::{
    cloned, elementwise, gconv, kl, layout, matmul, norm, optim, pool, random, reduce, transform,
};
use symclone::reference::{self as r, data as rd, matmul::Dims, to64};
use symclone::rng::Rng;
use symclone::tensor::Tensor;
use symclone::Gpu;

/// Workgroups per dimension on the folding device: a grid of more than 16 workgroups folds, one of
/// more than 16 × 16 is refused, so each size below lies between (and says so in `folds`).
const FOLD_MAX: u32 = 16;

fn folding_gpu(family: KernelFamily) -> Arc<Gpu> {
    let mut l = adapter_limits();
    l.max_compute_workgroups_per_dimension = FOLD_MAX;
    let g = gpu_with_limits(l);
    assert_eq!(g.limits.max_compute_workgroups_per_dimension, FOLD_MAX);
    g.set_family(family);
    g
}

fn up(g: &Arc<Gpu>, shape: &[usize], rg: &mut Rng) -> (Tensor, Vec<f64>) {
    let v = rg.normal_vec(shape.iter().product());
    (Tensor::from_slice(g, shape, &v).unwrap(), to64(&v))
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

/// `n` items at `wg` per workgroup fold on the folding device, with more invocations than items
/// (so the edge check past the last item runs too).
fn folds(n: usize, wg: u32) {
    let [x, y, _] = grid_1d(n, wg, FOLD_MAX).unwrap();
    assert!(
        y > 1 && (x * y) as usize * wg as usize > n,
        "{n} items at {wg} per workgroup: grid {x}×{y} does not fold with spare invocations"
    );
}

/// The entry points of the shader families that index with `idx()`, as `family::entry`.
fn idx_kernels() -> Vec<String> {
    let mut out = Vec::new();
    for s in symclone::gpu::shader::FAMILIES {
        // Everything after the shared prelude: one piece per `@compute` entry point.
        let own = &s.src[s.src.find("fn rot_src").unwrap()..];
        for piece in own.split("@compute").skip(1) {
            let name = piece
                .split("fn ")
                .nth(1)
                .unwrap()
                .split('(')
                .next()
                .unwrap();
            let body_end = piece.find("\n}").unwrap_or(piece.len());
            if piece[..body_end].contains("idx(gid") {
                out.push(format!("{}::{}", s.name, name.trim()));
            }
        }
    }
    out.sort_unstable();
    out
}

fn close(what: &str, got: &Tensor, want: &[f64], tol: f64) {
    assert_close(&format!("{what} (folded grid)"), &vec(got), want, tol);
}

/// [`assert_sum_close`] on a tensor: `want`'s entries are k-term sums, `want_abs` the same sums
/// over the terms' absolute values.
fn sum_close(what: &str, got: &Tensor, want: &[f64], want_abs: &[f64], k: usize) {
    assert_sum_close(
        &format!("{what} (folded grid)"),
        &vec(got),
        want,
        want_abs,
        k,
    );
}

/// Every idx() kernel of every family (elementwise, reduce, layout, conv, gconv, pool, transform,
/// data gather, cloned, random, optim, kl) on sizes whose 1-D grid folds into 2-D, against
/// the CPU references; the device records which kernels ran folded, and every idx() kernel must
/// be among them.
#[test]
fn folded_grids_run_every_idx_kernel_right() {
    let g = folding_gpu(KernelFamily::Workgroup);
    let mut rg = rng(500);
    fold_elementwise(&g, &mut rg);
    fold_reductions(&g, &mut rg);
    fold_layout(&g, &mut rg);
    fold_kl_penalty(&g, &mut rg);
    fold_optimisers(&g, &mut rg);
    fold_random_normals(&g);
    fold_cloned_operators(&g, &mut rg);
    fold_image_transforms(&g, &mut rg);
    fold_filter_transforms(&g, &mut rg);
    fold_pooling(&g, &mut rg);
    fold_direct_convolution(&g, &mut rg);
    fold_data_gather(&g);
    fold_mixer_ops(&g, &mut rg);

    // Every kernel that indexes with idx() ran folded here, and the chunked sum too.
    let folded = g.folded_kernels();
    let all = idx_kernels();
    for k in [
        "elementwise::axpby",
        "kl::kl_rows",
        "kl::l2_rows",
        "data::gather",
        "pool::spread",
    ] {
        assert!(
            all.iter().any(|a| a == k),
            "{k} not found among the idx() kernels {all:?}"
        );
    }
    eprintln!("{} idx() kernels; folded: {folded:?}", all.len());
    let mut missing: Vec<String> = all.into_iter().filter(|k| !folded.contains(k)).collect();
    if !folded.iter().any(|k| k == "reduce::chunk_sum") {
        missing.push("reduce::chunk_sum".into());
    }
    // `conv::wpack` is the register family's; the next test folds it.
    missing.retain(|k| k != "conv::wpack");
    assert!(
        missing.is_empty(),
        "never ran folded: {missing:?} (folded: {folded:?})"
    );
}

/// The mixer's ops: GELU and its backward, concat, slice and unslice (256 per workgroup) on 5000
/// values, LayerNorm forward and backward (64 rows per workgroup) on 1500 rows.
fn fold_mixer_ops(g: &Arc<Gpu>, rg: &mut Rng) {
    folds(5000, 256);
    folds(1500, 64);
    let (x, x6) = up(g, &[5000], rg);
    let (y, y6) = up(g, &[5000], rg);
    close(
        "gelu",
        &elementwise::gelu(&x).unwrap(),
        &r::elementwise::gelu(&x6),
        1e-5,
    );
    close(
        "gelu_bwd",
        &elementwise::gelu_bwd(&y, &x).unwrap(),
        &r::elementwise::gelu_bwd(&y6, &x6),
        1e-5,
    );
    let (a, b) = (
        x.reshape(&[50, 100]).unwrap(),
        y.reshape(&[50, 100]).unwrap(),
    );
    let c = layout::concat(&a, &b, 0).unwrap();
    close(
        "concat",
        &c,
        &r::layout::concat(&x6, &y6, 1, 50, 50, 100),
        0.0,
    );
    let s = layout::slice(&c, 0, 30, 50).unwrap();
    let s6 = r::layout::slice(
        &r::layout::concat(&x6, &y6, 1, 50, 50, 100),
        1,
        100,
        100,
        30,
        50,
    );
    close("slice", &s, &s6, 0.0);
    close(
        "unslice",
        &layout::unslice(&s, 0, 30, 100).unwrap(),
        &r::layout::unslice(&s6, 1, 100, 100, 30, 50),
        0.0,
    );
    let (rows, cols) = (1500, 3);
    let (xn, xn6) = up(g, &[rows, cols], rg);
    let (gn, gn6) = up(g, &[rows, cols], rg);
    let (ga, ga6) = up(g, &[cols], rg);
    let (be, be6) = up(g, &[cols], rg);
    let eps = norm::EPS as f64;
    // Each output within the bound of its sums (terms and counts derived at `layer_norm_abs`).
    let abs = layer_norm_abs(&xn6, &ga6, &be6, &gn6, eps);
    let (yn, stats) = norm::layer_norm(&xn, &ga, &be).unwrap();
    let want = r::norm::layer_norm(&xn6, &ga6, &be6, eps);
    sum_close("ln_fwd", &yn, &want, &abs.y, cols);
    let (dx, dgamma, dbeta) = norm::layer_norm_bwd(&gn, &xn, &ga, &stats).unwrap();
    let (dx6, dg6, db6) = r::norm::layer_norm_bwd(&gn6, &xn6, &ga6, eps);
    sum_close("ln_bwd dx", &dx, &dx6, &abs.dx, cols);
    sum_close("ln_bwd dgamma", &dgamma, &dg6, &abs.dgamma, rows + cols);
    sum_close("ln_bwd dbeta", &dbeta, &db6, &abs.dbeta, rows);
}

/// Elementwise (256 per workgroup): 5000 items are 20 workgroups, 16 × 2 folded.
fn fold_elementwise(g: &Arc<Gpu>, rg: &mut Rng) {
    let n = 5000;
    folds(n, 256);
    let (x, x6) = up(g, &[n], rg);
    let (y, y6) = up(g, &[n], rg);
    close(
        "axpby",
        &x.axpby(&y, 0.5, -2.0).unwrap(),
        &r::elementwise::axpby(&x6, &y6, 0.5, -2.0),
        1e-6,
    );
    close(
        "mul",
        &elementwise::mul(&x, &y, 3.0).unwrap(),
        &r::elementwise::mul(&x6, &y6, 3.0),
        1e-6,
    );
    close(
        "affine",
        &elementwise::affine(&x, -1.5, 0.25).unwrap(),
        &r::elementwise::affine(&x6, -1.5, 0.25),
        1e-6,
    );
    let relu = elementwise::relu(&x).unwrap();
    close("relu", &relu, &r::elementwise::relu(&x6), 0.0);
    close(
        "relu_bwd",
        &elementwise::relu_bwd(&y, &relu).unwrap(),
        &r::elementwise::relu_bwd(&y6, &r::elementwise::relu(&x6)),
        0.0,
    );
    let s = Tensor::from_slice(g, &[1], &[2.5]).unwrap();
    close(
        "scale_by",
        &elementwise::scale_by(&x, &s, 2.0).unwrap(),
        &r::elementwise::affine(&x6, 5.0, 0.0),
        1e-6,
    );
    let acc = x.deep_clone().unwrap();
    acc.acc_(&y, 0.5).unwrap();
    close(
        "acc",
        &acc,
        &r::elementwise::axpby(&x6, &y6, 1.0, 0.5),
        1e-6,
    );
    close(
        "fill",
        &Tensor::full(g, &[n], 1.5).unwrap(),
        &vec![1.5; n],
        0.0,
    );
    close(
        "dropout",
        &elementwise::dropout(&x, 0.5, 77).unwrap(),
        &r::elementwise::dropout(&x6, 0.5, 77),
        1e-7,
    );
}

/// Reductions: sum over the middle axis of (5, 3, 1000) (5000 outputs), alone and over 6 splits,
/// its broadcast back (15000), and the chunked total of 100,000 values (25 chunks of 4096, one
/// workgroup each).
fn fold_reductions(g: &Arc<Gpu>, rg: &mut Rng) {
    let shape = [5usize, 3, 1000];
    let (t, t6) = up(g, &shape, rg);
    folds(5000, 256);
    let sum = reduce::sum_axis(&t, 1).unwrap();
    close(
        "sum_axis",
        &sum,
        &r::reduce::sum_axis(&t6, &shape, 1),
        sum_tol(3),
    );
    // The bias gradient's sum over the first and last axes of (4, 5000, 3), one invocation per
    // channel (drawn from a generator of its own: the families after this one keep their inputs).
    folds(5000, 64);
    let bshape = [4usize, 5000, 3];
    let (bg, bg6) = up(g, &bshape, &mut rng(501));
    let inner = r::reduce::sum_axis(&bg6, &bshape, 2);
    close(
        "sum_batch_plane",
        &reduce::sum_batch_plane(&bg).unwrap(),
        &r::reduce::sum_axis(&inner, &[4, 5000], 0),
        sum_tol(12),
    );
    // A weight and a bias gradient's partial sums over 5 splits, summed in one launch: 4000 + 1000
    // sums.
    folds(5000, 256);
    let mut own = rng(502);
    let ((pa, pa6), (pb, pb6)) = (up(g, &[5, 4000], &mut own), up(g, &[5, 1000], &mut own));
    let (sa, sb) = reduce::sum_splits_pair(&pa, &pb).unwrap();
    close(
        "sum_splits_pair (first)",
        &sa,
        &r::reduce::sum_splits(&pa6, 5),
        sum_tol(5),
    );
    close(
        "sum_splits_pair (second)",
        &sb,
        &r::reduce::sum_splits(&pb6, 5),
        sum_tol(5),
    );
    // The same sum over 6 splits of its input, summed first as sum_axis over them would.
    let (parts, parts6) = up(g, &[6, 5, 3, 1000], rg);
    close(
        "sum_axis over splits",
        &reduce::sum_splits_axis(&parts, 1).unwrap(),
        &r::reduce::sum_axis(&r::reduce::sum_splits(&parts6, 6), &shape, 1),
        sum_tol(18),
    );
    // A ReLU backward with its sums over the rows: 5000 columns, one invocation each.
    let (gy, gy6) = up(g, &[3, 5000], rg);
    let (y, y6) = up(g, &[3, 5000], rg);
    let (gm, db) = reduce::relu_bwd_sum_rows(&gy, &y).unwrap();
    let masked = r::elementwise::relu_bwd(&gy6, &y6);
    close("relu_bwd_sum_rows (masked)", &gm, &masked, 0.0);
    close(
        "relu_bwd_sum_rows (sums)",
        &db,
        &r::reduce::sum_axis(&masked, &[3, 5000], 0),
        sum_tol(3),
    );
    folds(15000, 256);
    let (gs, gs6) = up(g, &[5, 1000], rg);
    close(
        "broadcast_axis",
        &reduce::broadcast_axis(&gs, 1, 3, 1.0).unwrap(),
        &r::reduce::broadcast_axis(&gs6, &shape, 1),
        0.0,
    );
    let n: usize = 100_000;
    folds(n.div_ceil(4096), 1);
    let (big, big6) = up(g, &[n], rg);
    let total = reduce::sum_all(&big).unwrap().item().unwrap() as f64;
    let scale: f64 = big6.iter().map(|v| v.abs()).sum();
    assert!(
        (total - r::reduce::sum(&big6)).abs() <= sum_tol(n) * scale,
        "sum_all"
    );
}

/// Layout: swap12 of 6000 values; pack (300 × 16 vec4) and unpack (70 × 61) around a product
/// with a transposed B whose width is not a multiple of 4.
fn fold_layout(g: &Arc<Gpu>, rg: &mut Rng) {
    let dims4 = [2usize, 3, 40, 25];
    folds(6000, 256);
    let v = rg.normal_vec(6000);
    let sw = layout::swap12(&Tensor::from_slice(g, &[6000], &v).unwrap(), dims4).unwrap();
    close("swap12", &sw, &r::layout::swap12(&to64(&v), dims4), 0.0);
    folds(300 * 16, 256);
    folds(70 * 61, 256);
    let d = Dims {
        za: 0,
        zb: 0,
        m: 70,
        k: 300,
        n: 61,
        ta: false,
        tb: true,
    };
    let (a, a6) = up(g, &d.a_shape(), rg);
    let (b, b6) = up(g, &d.b_shape(), rg);
    close(
        "matmul (pack, unpack)",
        &matmul::matmul(&a, &b, false, true).unwrap(),
        &r::matmul::forward(&a6, &b6, d, None, false),
        sum_tol(300),
    );
    // A product small enough for `mm_strided`, B transposed, N = 61: its grid (4 × 18 × 1) passes
    // this device's 16 workgroups per dimension, so it runs packed (pack, product, unpack).
    let d = Dims { k: 30, ..d };
    let (a, a6) = up(g, &d.a_shape(), rg);
    let (b, b6) = up(g, &d.b_shape(), rg);
    close(
        "matmul (small, packed)",
        &matmul::matmul(&a, &b, false, true).unwrap(),
        &r::matmul::forward(&a6, &b6, d, None, false),
        sum_tol(30),
    );
}

/// The drift penalties (64 per workgroup): (40, 5, 30) along the middle axis, 1200 rows.
fn fold_kl_penalty(g: &Arc<Gpu>, rg: &mut Rng) {
    let kshape = [40usize, 5, 30];
    folds(1200, 64);
    let w0 = rg.normal_vec(6000);
    let w: Vec<f32> = w0.iter().map(|&a| a + 1e-2 * rg.normal()).collect();
    let (kv, kg) = kl::kl(
        &Tensor::from_slice(g, &kshape, &w).unwrap(),
        &Tensor::from_slice(g, &kshape, &w0).unwrap(),
        1,
    )
    .unwrap();
    let (w6, w06) = (to64(&w), to64(&w0));
    let (want_v, want_g) = r::kl::kl_delta(&w6, &w06, &kshape, 1);
    // The δ form's error bound (derived at `kl_tol`, tests/common): absolute on the value,
    // relative norm-wise on the gradient.
    let (tv, tg) = kl_tol(&w6, &w06, &kshape, 1, want_v);
    let err = (kv.item().unwrap() as f64 - want_v).abs();
    assert!(
        err <= tv,
        "KL {} vs {want_v}: error {err:.2e} > {tv:.2e}",
        kv.item().unwrap()
    );
    close("KL grad", &kg, &want_g, tg);
    // The squared distance over the same rows.
    let (lv, lg) = kl::penalty(
        kl::Penalty::L2,
        &Tensor::from_slice(g, &kshape, &w).unwrap(),
        &Tensor::from_slice(g, &kshape, &w0).unwrap(),
        1,
        1.0,
    )
    .unwrap();
    let (want_v, want_g) = r::kl::l2(&w6, &w06);
    let err = (lv.item().unwrap() as f64 - want_v).abs() / want_v;
    assert!(err <= 1e-5, "l2 {} vs {want_v}", lv.item().unwrap());
    close("l2 grad", &lg, &want_g, 4.0 * f32::EPSILON as f64);
}

/// Optimisers (256 per workgroup): 5000 parameters, three steps each.
fn fold_optimisers(g: &Arc<Gpu>, rg: &mut Rng) {
    let n = 5000;
    folds(n, 256);
    for kind in ["adamw", "sgd"] {
        let p0 = rg.normal_vec(n);
        let p = Tensor::from_slice(g, &[n], &p0).unwrap();
        let state = Tensor::zeros(g, &[2 * n]).unwrap();
        let (mut rp, mut rm, mut rv) = (to64(&p0), vec![0.0; n], vec![0.0; n]);
        let one = Tensor::full(g, &[2], 1.0).unwrap();
        for t in 1..=3u32 {
            let (gt, g64) = up(g, &[n], rg);
            let slot = optim::Slot {
                param: &p,
                grad: &gt,
                scale: 1.0,
                offset: 0,
            };
            if kind == "sgd" {
                let rule = optim::Rule::Sgd {
                    lr: 0.05,
                    momentum: 0.9,
                    weight_decay: 1e-3,
                };
                optim::step_(&[slot], &state, &one, rule).unwrap();
                r::optim::sgd(&mut rp, &g64, &mut rm, 0.05, 0.9, 1e-3, t == 1, 1.0);
            } else {
                let h = optim::AdamStep {
                    lr: 1e-2,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.01,
                    decoupled: true,
                    t,
                };
                optim::step_(&[slot], &state, &one, optim::Rule::Adam(h)).unwrap();
                r::optim::adam(
                    &mut rp, &g64, &mut rm, &mut rv, 1e-2, 0.9, 0.999, 1e-8, 0.01, true, t, 1.0,
                );
            }
        }
        close(kind, &p, &rp, 1e-5);
    }
}

/// Random normals (256 per workgroup): 5000 draws, draw by draw against the reference
/// generator (sin and cos may err by 2^-11 on Vulkan; see tests/clone.rs).
fn fold_random_normals(g: &Arc<Gpu>) {
    let n = 5000;
    folds(n, 256);
    let z = vec(&random::randn(g, &[n], 4242).unwrap());
    let err = r::rel_err(&z, &r::random::randn(n, 4242));
    assert!(err <= r::tol::randn_tol(), "randn {err:.2e}");
}

/// Cloned operators (256 per workgroup): the mix and its code gradient on (500, 9) × (9, 10),
/// the M1 gradient on (10, 9) × (9, 500).
fn fold_cloned_operators(g: &Arc<Gpu>, rg: &mut Rng) {
    for (rows, k2, m) in [(500usize, 9usize, 10usize), (10, 9, 500)] {
        folds(rows * k2 * m, 256);
        let (c, c6) = up(g, &[rows, k2], rg);
        let (m1, m6) = up(g, &[k2, m], rg);
        // One product per entry: a 1-term sum.
        let want = r::cloned::mix(&c6, &m6, k2, m);
        close("mix", &cloned::mix(&c, &m1).unwrap(), &want, sum_tol(1));
        let (gw, gw6) = up(g, &[rows, k2 * m], rg);
        let (dc, dm) = cloned::mix_backward(&gw, &c, &m1, true, true).unwrap();
        let (want_dc, want_dm) = r::cloned::mix_backward(&gw6, &c6, &m6, k2, m);
        let (abs_dc, abs_dm) =
            r::cloned::mix_backward(&abs64(&gw6), &abs64(&c6), &abs64(&m6), k2, m);
        if rows * k2 > 4096 {
            folds(rows * k2, 256);
        }
        if k2 * m > 4096 {
            folds(k2 * m, 256);
        }
        sum_close("mix dc", &dc.unwrap(), &want_dc, &abs_dc, m);
        sum_close("mix dm1", &dm.unwrap(), &want_dm, &abs_dm, rows);
    }
    // The exact loss's tap sums (64 per workgroup), 120 blocks at d = 5; their adjoint, alone and
    // subtracted from the blocks, runs on a 3-D grid (1 × 9 outputs × 4 blocks here) that fits
    // the small limit without folding.
    let (nb, k, d) = (120usize, 3usize, 5usize);
    folds(nb * k * k, 64);
    let (b, b6) = up(g, &[nb, 9, d * d], rg);
    close(
        "taps",
        &cloned::taps(&b, k, d).unwrap(),
        &r::cloned::taps(&b6, nb, k, d),
        sum_tol(9),
    );
    let nb = 4;
    let (b, b6) = up(g, &[nb, 9, d * d], rg);
    let (x, x6) = up(g, &[nb, k * k], rg);
    let want = r::cloned::taps_adj(&x6, nb, k, d);
    close("taps_adj", &cloned::taps_adj(&x, k, d).unwrap(), &want, 0.0);
    let want: Vec<f64> = b6.iter().zip(&want).map(|(p, q)| p - q).collect();
    close(
        "taps_outside",
        &cloned::taps_outside(&b, &x, k, d).unwrap(),
        &want,
        sum_tol(2),
    );
}

/// Image transforms (64 per workgroup): 4704 values each.
fn fold_image_transforms(g: &Arc<Gpu>, rg: &mut Rng) {
    let nn = 28;
    folds(2 * 3 * nn * nn, 64);
    let (im, im6) = up(g, &[2, 3, nn, nn], rg);
    close(
        "rot90",
        &transform::rot90(&im, 1).unwrap(),
        &r::transform::rot90(&im6, nn, 1),
        0.0,
    );
    close(
        "shift",
        &transform::shift_crop(&im, nn, nn, 3, -5).unwrap(),
        &r::transform::shift_crop(&im6, nn, nn, nn, nn, 3, -5),
        0.0,
    );
    let (p4, p46) = up(g, &[2, 3, 4, 14, 14], rg);
    close(
        "c4_act",
        &transform::c4_act(&p4, 3).unwrap(),
        &r::transform::c4_act(&p46, 14, 3),
        0.0,
    );
    let (p4m, p4m6) = up(g, &[2, 3, 8, 10, 10], rg);
    close(
        "group_act d4",
        &transform::group_act(&p4m, 5, Group::D4).unwrap(),
        &r::transform::group_act(&p4m6, 10, 8, 5),
        0.0,
    );
}

/// Group-convolution filter transforms (64 per workgroup), with the bias repeated beside them,
/// and their adjoints over three splits of the gradient, C4 and D4.
fn fold_filter_transforms(g: &Arc<Gpu>, rg: &mut Rng) {
    for group in Group::ALL {
        let n = group.order();
        let (cout, cin, k) = (16usize, 8usize, 3usize);
        folds(cout * cin * k * k, 64);
        let (wl, wl6) = up(g, &[cout, cin, k, k], rg);
        close(
            "lift_filter",
            &gconv::lift_filter(&wl, group).unwrap(),
            &r::gconv::lift_filter(&wl6, cout, cin, k, group.order()),
            0.0,
        );
        let (b, b6) = up(g, &[cout], rg);
        let (tw, tb) = gconv::lift_filter_bias(&wl, Some(&b), group).unwrap();
        close(
            "lift_filter_bias",
            &tw,
            &r::gconv::lift_filter(&wl6, cout, cin, k, group.order()),
            0.0,
        );
        close(
            "lift_filter_bias (bias)",
            &tb.unwrap(),
            &r::gconv::expand_bias(&b6, n),
            0.0,
        );
        // Three splits of the gradient, summed as the adjoint reads them.
        let (gt, gt6) = up(g, &[3, cout * n, cin, k, k], rg);
        close(
            "lift_filter_adjoint",
            &gconv::lift_filter_adjoint(&gt, group).unwrap(),
            &r::gconv::lift_filter_adjoint(
                &r::reduce::sum_splits(&gt6, 3),
                cout,
                cin,
                k,
                group.order(),
            ),
            1e-6,
        );
        // Every (o, k, i, s, tap) of the output is a work item: 4,608 of them for either group.
        let (cout, cin) = if n == 4 { (8usize, 4usize) } else { (4, 2) };
        folds(cout * n * cin * n * k * k, 64);
        let (wp, wp6) = up(g, &[cout, cin, n, k, k], rg);
        close(
            "p4_filter",
            &gconv::group_filter(&wp, group).unwrap(),
            &r::gconv::group_filter(&wp6, cout, cin, k, group.order()),
            0.0,
        );
        let (b, b6) = up(g, &[cout], rg);
        let (tw, tb) = gconv::group_filter_bias(&wp, Some(&b), group).unwrap();
        close(
            "p4_filter_bias",
            &tw,
            &r::gconv::group_filter(&wp6, cout, cin, k, group.order()),
            0.0,
        );
        close(
            "p4_filter_bias (bias)",
            &tb.unwrap(),
            &r::gconv::expand_bias(&b6, n),
            0.0,
        );
        let (gt, gt6) = up(g, &[3, cout * n, cin * n, k, k], rg);
        close(
            "p4_filter_adjoint",
            &gconv::group_filter_adjoint(&gt, group).unwrap(),
            &r::gconv::group_filter_adjoint(
                &r::reduce::sum_splits(&gt6, 3),
                cout,
                cin,
                k,
                group.order(),
            ),
            1e-6,
        );
    }
}

/// Pooling (64 per workgroup): 2×2 windows over (3, 7, 16, 18) (1512 outputs, 6048 inputs);
/// rotation pooling over (3, 7, 4, 8, 9); the global mean of (40, 32, 4, 1, 1) (1280 outputs).
fn fold_pooling(g: &Arc<Gpu>, rg: &mut Rng) {
    let (h, w) = (16usize, 18usize);
    folds(3 * 7 * 8 * 9, 64);
    folds(3 * 7 * h * w, 64);
    let (px, px6) = up(g, &[3, 7, h, w], rg);
    let (pg, pg6) = up(g, &[3, 7, 8, 9], rg);
    let (mx, arg) = pool::max_pool2d(&px, 2, 2).unwrap();
    close("maxpool", &mx, &r::pool::max_pool(&px6, h, w, 2, 2).0, 0.0);
    close(
        "maxpool_bwd",
        &pool::max_pool2d_bwd(&pg, &arg, &[3, 7, h, w], 2, 2).unwrap(),
        &r::pool::max_pool_bwd(&px6, &pg6, h, w, 2, 2),
        1e-6,
    );
    // Planes the windows do not tile (17 × 19): the gather form of the backward.
    let (ph, pw) = (17usize, 19usize);
    folds(3 * 7 * ph * pw, 64);
    let (qx, qx6) = up(g, &[3, 7, ph, pw], rg);
    let (_, qarg) = pool::max_pool2d(&qx, 2, 2).unwrap();
    close(
        "maxpool_bwd (gather)",
        &pool::max_pool2d_bwd(&pg, &qarg, &[3, 7, ph, pw], 2, 2).unwrap(),
        &r::pool::max_pool_bwd(&qx6, &pg6, ph, pw, 2, 2),
        1e-6,
    );
    close(
        "avgpool",
        &pool::avg_pool2d(&px, 2, 2).unwrap(),
        &r::pool::avg_pool(&px6, h, w, 2, 2),
        1e-6,
    );
    close(
        "avgpool_bwd",
        &pool::avg_pool2d_bwd(&pg, &[3, 7, h, w], 2, 2).unwrap(),
        &r::pool::avg_pool_bwd(&pg6, h, w, 2, 2),
        1e-6,
    );
    let (rx, rx6) = up(g, &[3, 7, 4, 8, 9], rg);
    let (rgd, rg6) = up(g, &[3, 7, 8, 9], rg);
    for (how, max) in [(RotPool::Max, true), (RotPool::Mean, false)] {
        close(
            "rot_pool",
            &pool::rot_pool(&rx, how).unwrap(),
            &r::pool::rot_pool(&rx6, 72, 4, max),
            1e-7,
        );
        close(
            "rot_pool bwd",
            &pool::rot_pool_bwd(&rgd, &rx, how).unwrap(),
            &r::pool::rot_pool_bwd(&rx6, &rg6, 72, 4, max),
            1e-7,
        );
    }
    folds(40 * 32, 64);
    let (gx, gx6) = up(g, &[40, 32, 4, 1, 1], rg);
    close(
        "global_mean",
        &pool::global_mean(&gx).unwrap(),
        &r::pool::global_mean(&gx6, 4),
        1e-6,
    );
    let (gm, gm6) = up(g, &[40, 32], rg);
    close(
        "global_mean bwd",
        &pool::global_mean_bwd(&gm, &[40, 32, 4, 1, 1]).unwrap(),
        &r::pool::global_mean_bwd(&gm6, 4),
        1e-6,
    );
}

/// Convolution by the direct kernels (64 per workgroup): forward (6400 invocations), input
/// gradient (flip_transpose of 12,600 taps, then 5760), weight gradient by `conv_dw` (1050);
/// im2col and the channel bias on a smaller case.
fn fold_direct_convolution(g: &Arc<Gpu>, rg: &mut Rng) {
    let d = ConvDims {
        batch: 10,
        cin: 35,
        h: 16,
        w: 16,
        cout: 40,
        k: 3,
        pad: 1,
    };
    conv_case(g, d, rg);
    // `conv_dw` by name too (whatever the family's default weight gradient).
    let (x, x6) = up(g, &[d.batch, d.cin, d.h, d.w], rg);
    let (gy, g6) = up(g, &d.out_shape(), rg);
    let w6 = vec![0.0; d.cout * d.cin * d.k * d.k];
    sum_close(
        "conv_dw weight grad",
        &conv::conv2d_weight_grad_with(conv::WeightGradAlgo::Direct, &x, &gy, d).unwrap(),
        &r::conv::backward(&x6, &w6, &g6, d).1,
        &r::conv::backward(&abs64(&x6), &w6, &abs64(&g6), d).1,
        d.batch * d.ho() * d.wo(),
    );
    folds(40usize.div_ceil(4) * 35 * 3, 64);
    folds(40 * 35 * 9, 64);
    let d = ConvDims {
        batch: 1,
        cin: 2,
        h: 10,
        w: 10,
        cout: 12,
        k: 3,
        pad: 1,
    };
    folds(2 * 9 * 100, 64);
    let (x, x6) = up(g, &[1, 2, 10, 10], rg);
    let (wc, w6) = up(g, &[12, 2, 3, 3], rg);
    let (bc, b6) = up(g, &[12], rg);
    sum_close(
        "im2col + bias",
        &conv::conv2d_im2col(&x, &wc, Some(&bc), 1).unwrap(),
        &r::conv::forward(&x6, &w6, Some(&b6), d),
        &r::conv::forward(&abs64(&x6), &abs64(&w6), Some(&abs64(&b6)), d),
        d.cin * d.k * d.k + 1,
    );
}

/// The data gather (256 per workgroup): 10 images on the 48-pixel canvas (23,040 values).
fn fold_data_gather(g: &Arc<Gpu>) {
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(50), Some(10))
        .unwrap();
    let split = ds.part(Part::Train);
    let task = Task::TransSb;
    let mut b = Batcher::on(
        GpuSplit::upload(g, split).unwrap(),
        task,
        Part::Train,
        10,
        3,
    )
    .unwrap();
    b.set_epoch(0).unwrap();
    let s = b.canvas().size;
    folds(10 * s * s, 256);
    let batch = b.batch(0).unwrap();
    let samples: Vec<rd::Sample> = b
        .batch_samples(0)
        .unwrap()
        .iter()
        .map(|s| (s.index, s.rot, s.dx, s.dy, s.label))
        .collect();
    let (want_i, want_l) = rd::gather(&split.images, SIDE, SIDE, &samples, (s, b.canvas().pad));
    assert_eq!(batch.images.to_vec().unwrap(), want_i, "gather");
    assert_eq!(batch.labels.to_vec_u32().unwrap(), want_l);
}

/// conv2d forward, input gradient and weight gradient of one case against the reference.
fn conv_case(g: &Arc<Gpu>, d: ConvDims, rg: &mut Rng) {
    let (x, x6) = up(g, &[d.batch, d.cin, d.h, d.w], rg);
    let (w, w6) = up(g, &[d.cout, d.cin, d.k, d.k], rg);
    let (b, b6) = up(g, &[d.cout], rg);
    let y = conv::conv2d(&x, &w, Some(&b), d.pad).unwrap();
    let (xa, wa) = (abs64(&x6), abs64(&w6));
    // Each output within the bound of its sums: cin·k² products and the bias forward, cout·k² for
    // the input gradient, batch·ho·wo for the weight gradient.
    sum_close(
        "conv2d",
        &y,
        &r::conv::forward(&x6, &w6, Some(&b6), d),
        &r::conv::forward(&xa, &wa, Some(&abs64(&b6)), d),
        d.cin * d.k * d.k + 1,
    );
    let (gy, g6) = up(g, &d.out_shape(), rg);
    let (dx, dw, _) = r::conv::backward(&x6, &w6, &g6, d);
    let (ax, aw, _) = r::conv::backward(&xa, &wa, &abs64(&g6), d);
    sum_close(
        "conv2d input grad",
        &conv::conv2d_input_grad(&gy, &w, d).unwrap(),
        &dx,
        &ax,
        d.cout * d.k * d.k,
    );
    sum_close(
        "conv2d weight grad",
        &conv::conv2d_weight_grad(&x, &gy, d).unwrap(),
        &dw,
        &aw,
        d.batch * d.ho() * d.wo(),
    );
}

/// The register family's convolution on the folding device: `wpack` (an idx() kernel: 15,120 and
/// 12,960 packed taps) and the generated kernels, whose own grid folds into (x, channel blocks, z).
#[test]
fn folded_grids_run_the_register_convolution_right() {
    let g = folding_gpu(KernelFamily::Register);
    let mut rg = rng(501);
    folds(35 * 9 * 48, 64);
    folds(40 * 9 * 36, 64);
    let d = ConvDims {
        batch: 10,
        cin: 35,
        h: 16,
        w: 16,
        cout: 40,
        k: 3,
        pad: 1,
    };
    conv_case(&g, d, &mut rg);
    assert!(
        g.folded_kernels().contains(&"conv::wpack".to_string()),
        "{:?}",
        g.folded_kernels()
    );
}

/// The implicit-GEMM convolution on the folding device: its 64-column tiles fold into (x, z) past
/// 16 workgroups (2 · 28 · 28 = 1568 columns: 25 tiles), forward, input gradient and the chunked
/// weight gradient against the reference; a grid past 16 × 16 tiles is refused with the limit named.
#[test]
fn folded_grids_run_the_implicit_gemm_convolution_right() {
    use conv::{ConvAlgo, WeightGradAlgo};
    let g = folding_gpu(KernelFamily::Workgroup);
    let mut rg = rng(502);
    let d = ConvDims {
        batch: 2,
        cin: 3,
        h: 28,
        w: 28,
        cout: 5,
        k: 3,
        pad: 1,
    };
    assert!((d.batch * d.ho() * d.wo()).div_ceil(64) > FOLD_MAX as usize);
    let (x, x6) = up(&g, &[d.batch, d.cin, d.h, d.w], &mut rg);
    let (w, w6) = up(&g, &[d.cout, d.cin, d.k, d.k], &mut rg);
    let (b, b6) = up(&g, &[d.cout], &mut rg);
    let (gy, g6) = up(&g, &d.out_shape(), &mut rg);
    let (dx, dw, _) = r::conv::backward(&x6, &w6, &g6, d);
    let (xa, wa) = (abs64(&x6), abs64(&w6));
    let (ax, aw, _) = r::conv::backward(&xa, &wa, &abs64(&g6), d);
    sum_close(
        "igemm forward",
        &conv::conv2d_with(ConvAlgo::Igemm, &x, &w, Some(&b), d.pad).unwrap(),
        &r::conv::forward(&x6, &w6, Some(&b6), d),
        &r::conv::forward(&xa, &wa, Some(&abs64(&b6)), d),
        d.cin * d.k * d.k + 1,
    );
    sum_close(
        "igemm input grad",
        &conv::conv2d_input_grad_with(ConvAlgo::Igemm, &gy, &w, d).unwrap(),
        &dx,
        &ax,
        d.cout * d.k * d.k,
    );
    sum_close(
        "gemm weight grad",
        &conv::conv2d_weight_grad_with(WeightGradAlgo::Gemm, &x, &gy, d).unwrap(),
        &dw,
        &aw,
        d.batch * d.ho() * d.wo(),
    );
    // 21 · 28 · 28 columns: 258 tiles, over 16 × 16.
    let big = Tensor::zeros(&g, &[21, 1, 28, 28]).unwrap();
    let wb = Tensor::zeros(&g, &[1, 1, 3, 3]).unwrap();
    let e = conv::conv2d_with(ConvAlgo::Igemm, &big, &wb, None, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("258") && e.contains("16 workgroups"), "{e}");
}

#[test]
fn a_grid_past_the_folded_limit_is_an_error_naming_it() {
    let g = folding_gpu(KernelFamily::Workgroup);
    // 16 × 16 workgroups of 256 hold 65,536 items; one more is refused, not wrapped.
    let x = Tensor::zeros(&g, &[65_536]).unwrap();
    assert!(elementwise::affine(&x, 1.0, 0.0).is_ok());
    let e = Tensor::zeros(&g, &[65_537]).unwrap_err().to_string();
    assert!(e.contains("65537") && e.contains("16 × 16"), "{e}");
}
