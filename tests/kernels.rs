//! Every kernel against its CPU reference on fresh random inputs with ragged shapes.

mod common;
use common::*;
use std::sync::Arc;
use symclone::gpu::KernelFamily;
use symclone::ops::{elementwise, loss, matmul, optim, reduce};
use symclone::reference::{self as r, matmul::Dims, to64};
use symclone::rng::Rng;
use symclone::tensor::Tensor;
use symclone::{Error, Gpu};

fn check_matmul(g: &std::sync::Arc<symclone::Gpu>, d: Dims, bias: bool, relu: bool, seed: u64) {
    let mut rg = rng(seed);
    let (a_shape, b_shape) = (d.a_shape(), d.b_shape());
    let a = rg.normal_vec(a_shape.iter().product());
    let b = rg.normal_vec(b_shape.iter().product());
    let bi = rg.normal_vec(d.n);
    let ga = Tensor::from_slice(g, &a_shape, &a).unwrap();
    let gb = Tensor::from_slice(g, &b_shape, &b).unwrap();
    let gbi = Tensor::from_slice(g, &[d.n], &bi).unwrap();
    let out = matmul::matmul_ex(&ga, &gb, d.ta, d.tb, bias.then_some(&gbi), relu).unwrap();
    let bi64 = to64(&bi);
    let want = r::matmul::forward(&to64(&a), &to64(&b), d, bias.then_some(&bi64[..]), relu);
    assert_close(
        &format!("{d:?} bias={bias} relu={relu}"),
        &out.to_vec().unwrap(),
        &want,
        sum_tol(d.k),
    );
}

fn dims(m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Dims {
    Dims {
        za: 0,
        zb: 0,
        m,
        k,
        n,
        ta,
        tb,
    }
}

#[test]
fn matmul_ragged_shapes_all_transposes_both_kernels() {
    for family in [KernelFamily::Register, KernelFamily::Workgroup] {
        matmul_cases(&gpu_with(family), &[1, 7, 33, 129, 257]);
    }
}

/// Every transpose combination for each size as M, with K and N taken further along the list.
fn matmul_cases(g: &Arc<Gpu>, sizes: &[usize]) {
    let mut seed = 0;
    for (i, &m) in sizes.iter().enumerate() {
        let k = sizes[(i + 2) % sizes.len()];
        let n = sizes[(i + 4) % sizes.len()];
        for ta in [false, true] {
            for tb in [false, true] {
                seed += 1;
                check_matmul(g, dims(m, k, n, ta, tb), false, false, seed);
            }
        }
    }
}

#[test]
fn matmul_long_sums_and_1000_rows() {
    let g = gpu();
    check_matmul(&g, dims(33, 4096, 7, false, false), false, false, 101);
    check_matmul(&g, dims(1000, 257, 33, true, false), false, false, 102);
    check_matmul(&g, dims(7, 1000, 1000, false, true), false, false, 103);
    let w = gpu_with(KernelFamily::Workgroup);
    check_matmul(&w, dims(129, 4096, 33, false, true), false, false, 104);
}

#[test]
fn matmul_bias_relu_epilogue_and_batches() {
    let g = gpu();
    for (i, (m, k, n)) in [(7, 33, 1), (33, 7, 129), (64, 64, 64)]
        .into_iter()
        .enumerate()
    {
        for (bias, relu) in [(true, false), (false, true), (true, true)] {
            check_matmul(&g, dims(m, k, n, false, true), bias, relu, 200 + i as u64);
        }
    }
    // Batched both sides, and each side shared.
    for (za, zb) in [(3, 3), (0, 4), (5, 0)] {
        for (ta, tb) in [(false, false), (true, true)] {
            let d = Dims {
                za,
                zb,
                m: 17,
                k: 9,
                n: 6,
                ta,
                tb,
            };
            check_matmul(&g, d, false, false, 300);
            check_matmul(&gpu_with(KernelFamily::Workgroup), d, true, true, 301);
        }
    }
}

#[test]
fn matmul_shape_errors_are_errors() {
    let g = gpu();
    let a = Tensor::zeros(&g, &[3, 4]).unwrap();
    let b = Tensor::zeros(&g, &[5, 6]).unwrap();
    assert!(matches!(
        matmul::matmul(&a, &b, false, false),
        Err(Error::Shape { .. })
    ));
    let b3 = Tensor::zeros(&g, &[2, 4, 6]).unwrap();
    let a3 = Tensor::zeros(&g, &[3, 3, 4]).unwrap();
    assert!(matches!(
        matmul::matmul(&a3, &b3, false, false),
        Err(Error::Shape { .. })
    ));
    let bad_bias = Tensor::zeros(&g, &[5]).unwrap();
    let b2 = Tensor::zeros(&g, &[4, 6]).unwrap();
    assert!(matches!(
        matmul::matmul_ex(&a, &b2, false, false, Some(&bad_bias), false),
        Err(Error::Shape { .. })
    ));
    let x = Tensor::zeros(&g, &[3]).unwrap();
    let y = Tensor::zeros(&g, &[4]).unwrap();
    assert!(matches!(x.axpby(&y, 1.0, 1.0), Err(Error::Shape { .. })));
    assert!(matches!(
        Tensor::from_slice(&g, &[2, 2], &[1.0; 3]),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn oversized_buffer_is_an_error_naming_the_limit() {
    let g = gpu();
    let limit = g
        .limits
        .max_buffer_size
        .min(g.limits.max_storage_buffer_binding_size);
    let n = (limit / 4 + 1024) as usize;
    let e = Tensor::empty(&g, &[n]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::BufferTooLarge { .. }), "{msg}");
    assert!(
        msg.contains("limit") && msg.contains(&limit.to_string()),
        "{msg}"
    );
}

#[test]
fn elementwise_ops_match_reference() {
    elementwise_cases(&gpu(), &[1, 7, 33, 257, 1000, 70_000]);
}

fn elementwise_cases(g: &Arc<Gpu>, sizes: &[usize]) {
    let g = g.clone();
    let mut rg = rng(5);
    for &n in sizes {
        let x = rg.normal_vec(n);
        let y = rg.normal_vec(n);
        let (gx, gy) = (
            Tensor::from_slice(&g, &[n], &x).unwrap(),
            Tensor::from_slice(&g, &[n], &y).unwrap(),
        );
        let (x6, y6) = (to64(&x), to64(&y));
        assert_close(
            "axpby",
            &gx.axpby(&gy, 0.5, -2.0).unwrap().to_vec().unwrap(),
            &r::elementwise::axpby(&x6, &y6, 0.5, -2.0),
            1e-6,
        );
        assert_close(
            "mul",
            &elementwise::mul(&gx, &gy, 3.0).unwrap().to_vec().unwrap(),
            &r::elementwise::mul(&x6, &y6, 3.0),
            1e-6,
        );
        assert_close(
            "affine",
            &elementwise::affine(&gx, -1.5, 0.25)
                .unwrap()
                .to_vec()
                .unwrap(),
            &r::elementwise::affine(&x6, -1.5, 0.25),
            1e-6,
        );
        let relu = elementwise::relu(&gx).unwrap();
        assert_close(
            "relu",
            &relu.to_vec().unwrap(),
            &r::elementwise::relu(&x6),
            0.0,
        );
        let rb = elementwise::relu_bwd(&gy, &relu).unwrap();
        assert_close(
            "relu_bwd",
            &rb.to_vec().unwrap(),
            &r::elementwise::relu_bwd(&y6, &r::elementwise::relu(&x6)),
            0.0,
        );
        let s = Tensor::from_slice(&g, &[1], &[2.5]).unwrap();
        assert_close(
            "scale_by",
            &elementwise::scale_by(&gx, &s, 2.0)
                .unwrap()
                .to_vec()
                .unwrap(),
            &r::elementwise::affine(&x6, 5.0, 0.0),
            1e-6,
        );
        let acc = gx.deep_clone().unwrap();
        acc.acc_(&gy, 0.5).unwrap();
        assert_close(
            "acc",
            &acc.to_vec().unwrap(),
            &r::elementwise::axpby(&x6, &y6, 1.0, 0.5),
            1e-6,
        );
    }
}

#[test]
fn dropout_matches_reference_and_keeps_the_right_fraction() {
    let g = gpu();
    let x = rng(13).normal_vec(100_000);
    let gx = Tensor::from_slice(&g, &[100_000], &x).unwrap();
    let y = elementwise::dropout(&gx, 0.5, 77)
        .unwrap()
        .to_vec()
        .unwrap();
    let want = r::elementwise::dropout(&to64(&x), 0.5f32 as f64, 77);
    assert_close("dropout", &y, &want, 1e-7);
    let kept = y.iter().filter(|v| **v != 0.0).count() as f64 / 1e5;
    assert!((kept - 0.5).abs() < 0.01, "kept {kept}");
    assert_ne!(
        y,
        elementwise::dropout(&gx, 0.5, 78)
            .unwrap()
            .to_vec()
            .unwrap()
    );
    assert!(elementwise::dropout(&gx, 1.0, 1).is_err());
}

#[test]
fn reductions_match_reference() {
    let shapes = [
        vec![7usize, 33, 5],
        vec![1, 257, 1],
        vec![129, 3],
        vec![4, 1000, 2],
    ];
    reduction_cases(&gpu(), &shapes, &[1, 7, 4096, 4097, 1_000_000]);
}

fn reduction_cases(g: &Arc<Gpu>, shapes: &[Vec<usize>], totals: &[usize]) {
    let g = g.clone();
    let mut rg = rng(6);
    for shape in shapes {
        let x = rg.normal_vec(shape.iter().product());
        let gx = Tensor::from_slice(&g, shape, &x).unwrap();
        for axis in 0..shape.len() {
            let got = reduce::sum_axis(&gx, axis).unwrap();
            let want = r::reduce::sum_axis(&to64(&x), shape, axis);
            // Sums of random signs cancel: bound the error by the sum of magnitudes, not the sum.
            let abs: Vec<f64> = to64(&x).iter().map(|v| v.abs()).collect();
            let mag = r::reduce::sum_axis(&abs, shape, axis);
            let cond = (mag.iter().map(|v| v * v).sum::<f64>()
                / want.iter().map(|v| v * v).sum::<f64>())
            .sqrt();
            let tol = sum_tol(shape[axis]) * cond.max(1.0);
            assert_close("sum_axis", &got.to_vec().unwrap(), &want, tol);
            let mean = reduce::mean_axis(&gx, axis).unwrap();
            let wm: Vec<f64> = want.iter().map(|v| v / shape[axis] as f64).collect();
            assert_close("mean_axis", &mean.to_vec().unwrap(), &wm, tol);
            let gg: Vec<f32> = rg.normal_vec(want.len());
            let gt = Tensor::from_slice(&g, got.shape(), &gg).unwrap();
            let b = reduce::broadcast_axis(&gt, axis, shape[axis], 1.0).unwrap();
            assert_close(
                "broadcast_axis",
                &b.to_vec().unwrap(),
                &r::reduce::broadcast_axis(&to64(&gg), shape, axis),
                0.0,
            );
        }
    }
    for &n in totals {
        let x = rg.normal_vec(n);
        let gx = Tensor::from_slice(&g, &[n], &x).unwrap();
        let s = reduce::sum_all(&gx).unwrap().item().unwrap();
        let want = r::reduce::sum(&to64(&x));
        let scale: f64 = to64(&x).iter().map(|v| v.abs()).sum();
        assert!(
            ((s as f64) - want).abs() <= sum_tol(n) * scale,
            "sum_all n={n}: {s} vs {want}"
        );
        let q = reduce::sumsq_all(&gx).unwrap().item().unwrap();
        let wq = r::reduce::sumsq(&to64(&x));
        assert!(
            ((q as f64) - wq).abs() / wq <= sum_tol(n),
            "sumsq n={n}: {q} vs {wq}"
        );
    }
}

#[test]
fn reductions_are_deterministic() {
    let g = gpu();
    let x = rng(9).normal_vec(300_001);
    let gx = Tensor::from_slice(&g, &[300_001], &x).unwrap();
    let a = reduce::sum_all(&gx).unwrap().item().unwrap();
    for _ in 0..3 {
        assert_eq!(
            a.to_bits(),
            reduce::sum_all(&gx).unwrap().item().unwrap().to_bits()
        );
    }
}

#[test]
fn losses_and_metrics_match_reference() {
    loss_cases(&gpu(), &[(1, 1), (7, 10), (64, 20), (257, 3), (1500, 10)]);
}

/// Normal logits times `scale` (rows × classes) and labels below `classes`, and both uploaded.
fn random_logits(
    g: &Arc<Gpu>,
    rg: &mut Rng,
    rows: usize,
    classes: usize,
    scale: f32,
) -> (Vec<f32>, Vec<u32>, Tensor, Tensor) {
    let logits: Vec<f32> = rg
        .normal_vec(rows * classes)
        .iter()
        .map(|v| v * scale)
        .collect();
    let labels: Vec<u32> = (0..rows).map(|_| rg.below(classes) as u32).collect();
    let gl = Tensor::from_slice(g, &[rows, classes], &logits).unwrap();
    let gy = Tensor::from_u32(g, &[rows], &labels).unwrap();
    (logits, labels, gl, gy)
}

fn loss_cases(g: &Arc<Gpu>, cases: &[(usize, usize)]) {
    let g = g.clone();
    let mut rg = rng(11);
    for &(rows, classes) in cases {
        let (logits, labels, gl, gy) = random_logits(&g, &mut rg, rows, classes, 3.0);
        let (loss, grad) = loss::cross_entropy(&gl, &gy).unwrap();
        let (wl, wg) = r::loss::cross_entropy(&to64(&logits), &labels, classes);
        assert_close("ce loss", &loss.to_vec().unwrap(), &[wl], 1e-5);
        assert_close("ce grad", &grad.to_vec().unwrap(), &wg, 1e-5);
        let c = loss::correct_count(&gl, &gy).unwrap().item().unwrap();
        assert_eq!(
            c as usize,
            r::loss::correct_count(&to64(&logits), &labels, classes)
        );
        let other: Vec<f32> = rg.normal_vec(rows * classes);
        let go = Tensor::from_slice(&g, &[rows, classes], &other).unwrap();
        let (wm, _) = r::loss::mse(&to64(&logits), &to64(&other));
        assert_close(
            "mse",
            &loss::mse(&gl, &go).unwrap().to_vec().unwrap(),
            &[wm],
            1e-5,
        );
    }
    // Wrong label dtype or shape.
    let gl = Tensor::zeros(&g, &[4, 3]).unwrap();
    let bad = Tensor::zeros(&g, &[4]).unwrap();
    assert!(matches!(
        loss::cross_entropy(&gl, &bad),
        Err(Error::Shape { .. })
    ));
}

/// The training loop's loss kernel: each batch's mean loss and correct count are added to the
/// running sums (one dispatch per batch), its gradient is the reference's, and with no gradient
/// asked for the sums still add up.
#[test]
fn batch_sums_add_each_batch_with_its_gradient() {
    let g = gpu();
    let mut rg = rng(12);
    let sums = loss::BatchSums::zeros(&g).unwrap();
    let (mut want_loss, mut want_correct) = (0.0, 0usize);
    for (i, &(rows, classes)) in [(32usize, 20usize), (300, 7), (5, 3)].iter().enumerate() {
        let (logits, labels, gl, gy) = random_logits(&g, &mut rg, rows, classes, 2.0);
        let with_grad = i != 1;
        let grad = loss::add_batch(&gl, &gy, &sums, with_grad).unwrap();
        let (wl, wg) = r::loss::cross_entropy(&to64(&logits), &labels, classes);
        want_loss += wl;
        want_correct += r::loss::correct_count(&to64(&logits), &labels, classes);
        assert_eq!(grad.is_some(), with_grad);
        if let Some(grad) = grad {
            assert_close("batch grad", &grad.to_vec().unwrap(), &wg, 1e-5);
        }
        assert_close("loss sum", &sums.loss.to_vec().unwrap(), &[want_loss], 1e-5);
        assert_eq!(
            sums.correct.item().unwrap() as usize,
            want_correct,
            "batch {i}"
        );
    }
}

#[test]
fn optimisers_match_reference_over_10_steps() {
    optimiser_cases(&gpu());
}

/// Two tensors in one launch (1,000 and 37 elements, the second's gradient scaled by ½, its
/// moments after a gap in the state), ten steps of each rule with and without clipping.
fn optimiser_cases(g: &Arc<Gpu>) {
    let g = g.clone();
    let mut rg = rng(12);
    let (sizes, scales, offsets) = ([1000usize, 37], [1.0f32, 0.5], [0usize, 1003]);
    for (kind, decoupled) in [("adam", false), ("adamw", true), ("sgd", false)] {
        for clip in [None, Some(0.5f32)] {
            let moments = if kind == "sgd" { 1 } else { 2 };
            let state = Tensor::zeros(&g, &[moments * 1040]).unwrap();
            let mut ps = Vec::new();
            let mut refs = Vec::new();
            for &n in &sizes {
                let p0 = rg.normal_vec(n);
                ps.push(Tensor::from_slice(&g, &[n], &p0).unwrap());
                refs.push((to64(&p0), vec![0.0; n], vec![0.0; n]));
            }
            for t in 1..=10u32 {
                let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| rg.normal_vec(n)).collect();
                let gts: Vec<Tensor> = grads
                    .iter()
                    .map(|gr| Tensor::from_slice(&g, &[gr.len()], gr).unwrap())
                    .collect();
                let g64: Vec<Vec<f64>> = grads.iter().map(|gr| to64(gr)).collect();
                let (clip_t, coef) = match clip {
                    Some(c) => (
                        optim::clip_coefficient(&gts, c).unwrap(),
                        r::optim::clip_coef(&[&g64[0], &g64[1]], c as f64),
                    ),
                    None => (Tensor::full(&g, &[2], 1.0).unwrap(), 1.0),
                };
                let slots = optim::Slot::each(&ps, &gts, &scales, &offsets);
                let rule = match kind {
                    "sgd" => optim::Rule::Sgd {
                        lr: 0.05,
                        momentum: 0.9,
                        weight_decay: 1e-3,
                    },
                    _ => optim::Rule::Adam(optim::AdamStep {
                        lr: 1e-2,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay: 0.01,
                        decoupled,
                        t,
                    }),
                };
                optim::step_(&slots, &state, &clip_t, rule).unwrap();
                for (i, (rp, rm, rv)) in refs.iter_mut().enumerate() {
                    let scale = coef * scales[i] as f64;
                    if kind == "sgd" {
                        r::optim::sgd(rp, &g64[i], rm, 0.05, 0.9, 1e-3, t == 1, scale);
                    } else {
                        r::optim::adam(
                            rp, &g64[i], rm, rv, 1e-2, 0.9, 0.999, 1e-8, 0.01, decoupled, t, scale,
                        );
                    }
                }
            }
            for (i, (p, (rp, _, _))) in ps.iter().zip(&refs).enumerate() {
                assert_close(
                    &format!("{kind} clip={clip:?} tensor {i}"),
                    &p.to_vec().unwrap(),
                    rp,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn buffer_pool_reuses_buffers() {
    let g = symclone::Gpu::from_env().unwrap();
    for _ in 0..10 {
        let t = Tensor::zeros(&g, &[1000]).unwrap();
        drop(t);
    }
    let s = g.pool_stats();
    assert_eq!(s.misses, 1, "{s:?}");
    assert_eq!(s.hits, 9, "{s:?}");
}

/// A subset of the cases above on devices opened with WebGPU's default limits (both matrix-product
/// families): the engine keeps to the least any conforming GPU offers.
#[test]
fn kernels_under_webgpu_default_limits() {
    for family in [KernelFamily::Register, KernelFamily::Workgroup] {
        let g = gpu_webgpu(family);
        matmul_cases(&g, &[1, 33, 257]);
        check_matmul(&g, dims(129, 1000, 33, false, true), true, true, 400);
        elementwise_cases(&g, &[7, 257, 70_000]);
        reduction_cases(
            &g,
            &[vec![7, 33, 5], vec![4, 1000, 2]],
            &[7, 4097, 1_000_000],
        );
        loss_cases(&g, &[(7, 10), (257, 3)]);
        optimiser_cases(&g);
    }
}

/// `A · Bᵀ` with a constant `B` handed over with its transpose: the same product and the same
/// gradient for `A` as the taped product that transposes `B` itself, bit for bit (the same
/// kernel sums the same terms), at sizes whose columns are and are not multiples of 4; a
/// transpose that does not fit is refused. A frozen parameter's derived tensor is made once and
/// made again after the value is written.
#[test]
fn constant_operand_with_its_transpose_gives_the_transposed_product() {
    use symclone::autograd::{Param, Tape};
    use symclone::ops::layout;
    let g = gpu();
    let mut rg = rng(13);
    for &(m, k, n) in &[(33usize, 20usize, 12usize), (7, 9, 18), (64, 36, 1764)] {
        let a = Tensor::from_slice(&g, &[m, k], &rg.normal_vec(m * k)).unwrap();
        let b = Tensor::from_slice(&g, &[n, k], &rg.normal_vec(n * k)).unwrap();
        let gy = Tensor::from_slice(&g, &[m, n], &rg.normal_vec(m * n)).unwrap();
        let bt = layout::swap12(&b, [1, n, k, 1])
            .unwrap()
            .reshape(&[k, n])
            .unwrap();
        let mut t1 = Tape::new();
        let va = t1.leaf(a.clone());
        let y1 = matmul::matmul_const_t(&mut t1, va, &b, &bt).unwrap();
        t1.backward_with(y1, gy.clone()).unwrap();
        let mut t2 = Tape::new();
        let va2 = t2.leaf(a.clone());
        let vb = t2.input(b.clone());
        let y2 = matmul::matmul_t(&mut t2, va2, vb, false, true, None, false).unwrap();
        t2.backward_with(y2, gy).unwrap();
        let v = |t: &Tensor| t.to_vec().unwrap();
        assert_eq!(v(t1.value(y1)), v(t2.value(y2)), "A·Bᵀ at {m}×{k}×{n}");
        assert_eq!(v(t1.grad(va).unwrap()), v(t2.grad(va2).unwrap()), "dA");
    }
    let mut t = Tape::new();
    let a = Tensor::zeros(&g, &[2, 3]).unwrap();
    let va = t.input(a.clone());
    let b = Tensor::zeros(&g, &[4, 3]).unwrap();
    assert!(matches!(
        matmul::matmul_const_t(&mut t, va, &b, &b),
        Err(Error::Shape { .. })
    ));

    let p = Param::frozen("p", Tensor::from_slice(&g, &[2], &[1.0, 2.0]).unwrap());
    let made = std::cell::Cell::new(0);
    let double = |x: &Tensor| {
        made.set(made.get() + 1);
        elementwise::affine(x, 2.0, 0.0)
    };
    assert_eq!(v2(&p.derived(double).unwrap()), [2.0, 4.0]);
    assert_eq!(v2(&p.derived(double).unwrap()), [2.0, 4.0]);
    assert_eq!(made.get(), 1, "made once while the value stands");
    p.write(&[5.0, 6.0]).unwrap();
    assert_eq!(v2(&p.derived(double).unwrap()), [10.0, 12.0]);
    assert_eq!(made.get(), 2);
    let q = Param::new("q", Tensor::from_slice(&g, &[1], &[3.0]).unwrap());
    q.derived(double).unwrap();
    q.derived(double).unwrap();
    assert_eq!(made.get(), 4, "a trainable parameter's is made afresh");
}

fn v2(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}
