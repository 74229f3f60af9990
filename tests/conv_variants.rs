//! Every convolution algorithm (`ConvAlgo::ALL` for the forward pass and the input gradient,
//! `WeightGradAlgo::ALL` for the weight gradient) against the CPU reference on ragged shapes, on
//! the test adapter and on a device held to WebGPU's default limits; the fused backward of a
//! layer with one input channel; each forward with ReLU in its launch against the ReLU of its
//! output; the taped convolution's gradients through forced algorithms; and the new kernels'
//! results bit-identical run to run.

mod common;
use common::*;
use std::sync::Arc;
use symclone::autograd::Tape;
use symclone::gpu::KernelFamily;
use symclone::ops::conv::{self, ConvAlgo, ConvDims, WeightGradAlgo};
use symclone::reference::{self as r, to64};
use symclone::rng::Rng;
use symclone::tensor::Tensor;
use symclone::{Error, Gpu};

/// (batch, cin, h, w, cout, k, pad): batch 1 and 3; channels 1, 3, 5, 17 (and 70: more than one
/// 64-row tile); k ∈ {1, 3, 5}; sides 1…9, 28 and 30; padding 0, 1, 2 (k = 1 with padding 2: the
/// input gradient crops by 2); outputs of 1×1; a layer the fused backward takes; and a batch whose
/// weight gradient sums 72 × 30 × 30 terms per filter tap, past the 65,535 loop iterations that
/// lavapipe lets one invocation run (`gpu::LOOP_BUDGET`: `conv_dw` splits it).
const CASES: &[(usize, usize, usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1, 1, 0),
    (3, 3, 5, 7, 5, 3, 1),
    (1, 17, 9, 8, 3, 5, 2),
    (3, 5, 3, 3, 17, 3, 0),
    (1, 3, 28, 28, 17, 3, 1),
    (3, 1, 9, 2, 1, 1, 2),
    (1, 5, 5, 6, 1, 5, 0),
    (3, 17, 6, 9, 5, 1, 0),
    (1, 3, 1, 8, 3, 3, 1),
    (3, 5, 28, 28, 3, 5, 2),
    (1, 3, 7, 5, 70, 3, 1),
    (3, 70, 4, 4, 5, 3, 1),
    (3, 1, 9, 30, 6, 3, 1),
    (72, 1, 32, 32, 4, 3, 0),
];

fn upload(g: &Arc<Gpu>, shape: &[usize], rg: &mut Rng) -> (Tensor, Vec<f64>) {
    let v = rg.normal_vec(shape.iter().product());
    (Tensor::from_slice(g, shape, &v).unwrap(), to64(&v))
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

/// One case's inputs on `g` and their f64 copies: x, w, bias, output gradient.
struct Case {
    d: ConvDims,
    x: (Tensor, Vec<f64>),
    w: (Tensor, Vec<f64>),
    b: (Tensor, Vec<f64>),
    g: (Tensor, Vec<f64>),
}

fn case(g: &Arc<Gpu>, n: usize) -> Case {
    let d = ConvDims::from(CASES[n]);
    let mut rg = rng(700 + n as u64);
    Case {
        d,
        x: upload(g, &[d.batch, d.cin, d.h, d.w], &mut rg),
        w: upload(g, &[d.cout, d.cin, d.k, d.k], &mut rg),
        b: upload(g, &[d.cout], &mut rg),
        g: upload(g, &d.out_shape(), &mut rg),
    }
}

/// Every algorithm's forward pass (with and without bias), input gradient and weight gradient
/// on every case, each against the reference within the error bound of its sums.
fn every_algorithm(g: &Arc<Gpu>, device: &str) {
    for n in 0..CASES.len() {
        let c = case(g, n);
        let d = c.d;
        let (x6, w6, b6, g6) = (&c.x.1, &c.w.1, &c.b.1, &c.g.1);
        let want = r::conv::forward(x6, w6, Some(b6), d);
        let want_abs = r::conv::forward(&abs64(x6), &abs64(w6), Some(&abs64(b6)), d);
        let want_nob = r::conv::forward(x6, w6, None, d);
        let nob_abs = r::conv::forward(&abs64(x6), &abs64(w6), None, d);
        let (dx, dw, db) = r::conv::backward(x6, w6, g6, d);
        let (ax, aw, ab) = r::conv::backward(&abs64(x6), &abs64(w6), &abs64(g6), d);
        let kf = d.cin * d.k * d.k + 1;
        for algo in ConvAlgo::ALL {
            let what = |pass: &str| format!("{device}: {} {pass} {d:?}", algo.name());
            let y = conv::conv2d_with(algo, &c.x.0, &c.w.0, Some(&c.b.0), d.pad).unwrap();
            assert_eq!(y.shape(), d.out_shape());
            assert_sum_close(&what("forward"), &vec(&y), &want, &want_abs, kf);
            // With ReLU in the same launch: exactly the ReLU of the output above.
            let relu = |y: &Tensor| -> Vec<f32> { vec(y).iter().map(|v| v.max(0.0)).collect() };
            let yr = conv::conv2d_relu_with(algo, &c.x.0, &c.w.0, Some(&c.b.0), d.pad, true);
            assert_eq!(vec(&yr.unwrap()), relu(&y), "{}", what("forward with ReLU"));
            let y = conv::conv2d_with(algo, &c.x.0, &c.w.0, None, d.pad).unwrap();
            assert_sum_close(&what("forward, no bias"), &vec(&y), &want_nob, &nob_abs, kf);
            let yr = conv::conv2d_relu_with(algo, &c.x.0, &c.w.0, None, d.pad, true);
            assert_eq!(
                vec(&yr.unwrap()),
                relu(&y),
                "{}",
                what("forward, ReLU, no bias")
            );
            let gx = conv::conv2d_input_grad_with(algo, &c.g.0, &c.w.0, d).unwrap();
            assert_eq!(gx.shape(), [d.batch, d.cin, d.h, d.w]);
            let kx = d.cout * d.k * d.k;
            assert_sum_close(&what("input grad"), &vec(&gx), &dx, &ax, kx);
        }
        for algo in WeightGradAlgo::ALL {
            let what = format!("{device}: {} weight grad {d:?}", algo.name());
            let gw = conv::conv2d_weight_grad_with(algo, &c.x.0, &c.g.0, d).unwrap();
            assert_eq!(gw.shape(), [d.cout, d.cin, d.k, d.k]);
            let kw = d.batch * d.ho() * d.wo();
            assert_sum_close(&what, &vec(&gw), &dw, &aw, kw);
            // With the bias gradient (the register kernel sums it as it goes): the same weight
            // gradient, and the bias gradient within the bound of its sums.
            let (gw2, gb) = conv::conv2d_weight_bias_grad_with(algo, &c.x.0, &c.g.0, d).unwrap();
            assert_eq!(vec(&gw2), vec(&gw), "{what}, with the bias gradient");
            assert_eq!(gb.shape(), [d.cout]);
            assert_sum_close(&format!("{what}: bias"), &vec(&gb), &db, &ab, kw);
        }
    }
}

#[test]
fn every_algorithm_matches_the_reference() {
    every_algorithm(&gpu(), "default device");
}

#[test]
fn every_algorithm_matches_the_reference_under_webgpu_default_limits() {
    every_algorithm(
        &gpu_webgpu(KernelFamily::Workgroup),
        "WebGPU default limits",
    );
}

/// The taped convolution through forced algorithms: forward, then dx, dw and db from the tape.
#[test]
fn taped_conv_gradients_through_forced_algorithms() {
    let g = gpu();
    for algos in [
        (ConvAlgo::Igemm, WeightGradAlgo::Gemm),
        (ConvAlgo::Reg, WeightGradAlgo::Direct),
        (ConvAlgo::Reg, WeightGradAlgo::Reg),
    ] {
        for n in [1, 3, 5, 10, 12] {
            let c = case(&g, n);
            let d = c.d;
            let mut tape = Tape::new();
            let (vx, vw, vb) = (
                tape.leaf(c.x.0.clone()),
                tape.leaf(c.w.0.clone()),
                tape.leaf(c.b.0.clone()),
            );
            let y = conv::conv2d_t_with(&mut tape, vx, vw, Some(vb), d.pad, algos).unwrap();
            tape.backward_with(y, c.g.0.clone()).unwrap();
            let (x6, w6, g6) = (&c.x.1, &c.w.1, &c.g.1);
            let (dx, dw, db) = r::conv::backward(x6, w6, g6, d);
            let (ax, aw, ab) = r::conv::backward(&abs64(x6), &abs64(w6), &abs64(g6), d);
            let what = |v: &str| format!("taped {} / {} {v} {d:?}", algos.0.name(), algos.1.name());
            let (kx, kw) = (d.cout * d.k * d.k, d.batch * d.ho() * d.wo());
            let grad = |v| vec(tape.grad(v).unwrap());
            assert_sum_close(&what("dx"), &grad(vx), &dx, &ax, kx);
            assert_sum_close(&what("dw"), &grad(vw), &dw, &aw, kw);
            assert_sum_close(&what("db"), &grad(vb), &db, &ab, kw);
        }
    }
}

/// The fused backward of a layer with one input channel (`conv_bwd_reg`: input, weight and bias
/// gradients from one read of the output gradient) against the reference, on both devices: sides
/// 1…60 (tiles of 7 rows and of 7, 14 or 28 columns, one to three across, ragged at both ends),
/// both paddings a 3×3 filter takes and a 1×1 filter, 1 to 70 output channels, batch 1 and 3. Run
/// twice, bit for bit the same; without the bias gradient, the same input and weight gradients.
#[test]
fn the_fused_backward_of_a_one_channel_layer_matches_the_reference() {
    let shapes = [
        (1, 1, 1, 1, 1, 0),
        (3, 9, 33, 5, 3, 1),
        (1, 28, 28, 32, 3, 1),
        (3, 15, 13, 17, 3, 0),
        (1, 8, 60, 3, 1, 0),
        (3, 3, 2, 70, 3, 1),
    ];
    let reg = (ConvAlgo::Reg, WeightGradAlgo::Reg);
    // Devices of this test's own, so that the kernels profiled below are its own.
    for (device, g) in [
        ("default device", gpu_with_limits(adapter_limits())),
        (
            "WebGPU default limits",
            gpu_with_limits(wgpu::Limits::default()),
        ),
    ] {
        for (n, &(batch, h, w, cout, k, pad)) in shapes.iter().enumerate() {
            let d = ConvDims {
                batch,
                cin: 1,
                h,
                w,
                cout,
                k,
                pad,
            };
            assert!(conv::fused_backward_fits(d), "{d:?}");
            let mut rg = rng(900 + n as u64);
            let (x, x6) = upload(&g, &[batch, 1, h, w], &mut rg);
            let (wt, w6) = upload(&g, &[cout, 1, k, k], &mut rg);
            let (gt, g6) = upload(&g, &d.out_shape(), &mut rg);
            let run = |need| {
                conv::conv2d_grads_with(reg, &x, &wt, &gt, d, need)
                    .unwrap()
                    .map(|t| t.map(|t| vec(&t)))
            };
            // One kernel computes them (where the adapter can say which kernels ran).
            let ([dx, dw, db], kernels) = g.profile(|| Ok(run([true; 3]))).unwrap();
            if let Some(kernels) = kernels {
                let ran = |k: &str| kernels.iter().any(|r| r.0.contains(k));
                assert!(
                    ran("conv_bwd_reg") && !ran("conv_dw_reg") && !ran("conv_reg"),
                    "{device}: {d:?} ran {kernels:?}"
                );
            }
            let (dx, dw, db) = (dx.unwrap(), dw.unwrap(), db.unwrap());
            let (rx, rw, rb) = r::conv::backward(&x6, &w6, &g6, d);
            let (ax, aw, ab) = r::conv::backward(&abs64(&x6), &abs64(&w6), &abs64(&g6), d);
            let what = |v: &str| format!("{device}: fused {v} {d:?}");
            let (kx, kw) = (cout * k * k, batch * d.ho() * d.wo());
            assert_sum_close(&what("dx"), &dx, &rx, &ax, kx);
            assert_sum_close(&what("dw"), &dw, &rw, &aw, kw);
            assert_sum_close(&what("db"), &db, &rb, &ab, kw);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
            let again = run([true; 3]).map(|t| bits(&t.unwrap()));
            assert_eq!(
                again,
                [bits(&dx), bits(&dw), bits(&db)],
                "{}",
                what("run to run")
            );
            let [dx2, dw2, db2] = run([true, true, false]);
            assert!(db2.is_none(), "{}", what("bias gradient not asked for"));
            assert_eq!(bits(&dx2.unwrap()), bits(&dx), "{}", what("dx without db"));
            assert_eq!(bits(&dw2.unwrap()), bits(&dw), "{}", what("dw without db"));
        }
    }
    // What it leaves to the separate kernels: more input channels, padding past (k − 1) / 2, a
    // filter over FUSED_MAX_K.
    let base = ConvDims {
        batch: 2,
        cin: 1,
        h: 9,
        w: 9,
        cout: 4,
        k: 3,
        pad: 1,
    };
    assert!(conv::fused_backward_fits(base));
    for d in [
        ConvDims { cin: 2, ..base },
        ConvDims { pad: 2, ..base },
        ConvDims {
            k: conv::FUSED_MAX_K as usize + 2,
            ..base
        },
    ] {
        assert!(!conv::fused_backward_fits(d), "{d:?}");
    }
}

/// The implicit-GEMM forward, input gradient and chunked weight gradient give bit-identical
/// results run to run (the weight gradient's chunks are a fixed split, summed in a fixed order).
#[test]
fn implicit_gemm_results_are_bit_identical_run_to_run() {
    let g = gpu();
    for n in [4, 9] {
        let c = case(&g, n);
        let d = c.d;
        assert!(
            conv::dw_chunks(d.batch * d.ho() * d.wo()).1 > 1,
            "{d:?} sums more than one chunk"
        );
        let run = || {
            let y = conv::conv2d_with(ConvAlgo::Igemm, &c.x.0, &c.w.0, Some(&c.b.0), d.pad);
            let gx = conv::conv2d_input_grad_with(ConvAlgo::Igemm, &c.g.0, &c.w.0, d);
            let gw = conv::conv2d_weight_grad_with(WeightGradAlgo::Gemm, &c.x.0, &c.g.0, d);
            [y, gx, gw].map(|t| {
                vec(&t.unwrap())
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<u32>>()
            })
        };
        assert_eq!(run(), run(), "{d:?}");
    }
}

#[test]
fn a_mismatched_filter_or_input_is_a_shape_error() {
    let g = gpu();
    let c = case(&g, 1);
    let d = c.d;
    let wrong = Tensor::zeros(&g, &[d.cout + 1, d.cin, d.k, d.k]).unwrap();
    for algo in ConvAlgo::ALL {
        let e = conv::conv2d_input_grad_with(algo, &c.g.0, &wrong, d);
        assert!(matches!(e, Err(Error::Shape { .. })), "{algo:?}: {e:?}");
    }
    let x = Tensor::zeros(&g, &[d.batch, d.cin, d.h + 1, d.w]).unwrap();
    for algo in WeightGradAlgo::ALL {
        let e = conv::conv2d_weight_grad_with(algo, &x, &c.g.0, d);
        assert!(matches!(e, Err(Error::Shape { .. })), "{algo:?}: {e:?}");
        let e = conv::conv2d_weight_bias_grad_with(algo, &x, &c.g.0, d);
        assert!(matches!(e, Err(Error::Shape { .. })), "{algo:?}: {e:?}");
    }
}
