//! Backward rules: tape gradients against reference gradients, and each reference gradient against
//! central finite differences in f64.

mod common;
use common::*;
use symclone::autograd::Param;
use symclone::autograd::Tape;
use symclone::ops::{elementwise, loss, matmul, reduce};
use symclone::reference::{self as r, finite_diff, matmul::Dims, rel_err64, to64};
use symclone::tensor::Tensor;

/// Σ w ⊙ f(x): a scalar whose gradient w.r.t. f(x) is w, used to probe backward rules.
fn probe(f: &[f64], w: &[f64]) -> f64 {
    f.iter().zip(w).map(|(a, b)| a * b).sum()
}

fn matmul_case(d: Dims, bias: bool, relu: bool, seed: u64) {
    let g = gpu();
    let mut rg = rng(seed);
    let (a_shape, b_shape) = (d.a_shape(), d.b_shape());
    let a = rg.normal_vec(a_shape.iter().product());
    let b = rg.normal_vec(b_shape.iter().product());
    let bi = rg.normal_vec(d.n);
    let w = rg.normal_vec(d.batch() * d.m * d.n);
    let (a6, b6, bi6, w6) = (to64(&a), to64(&b), to64(&bi), to64(&w));

    // Tape gradients of Σ w ⊙ C.
    let mut tape = Tape::new();
    let va = tape.leaf(Tensor::from_slice(&g, &a_shape, &a).unwrap());
    let vb = tape.leaf(Tensor::from_slice(&g, &b_shape, &b).unwrap());
    let vbias = bias.then(|| tape.leaf(Tensor::from_slice(&g, &[d.n], &bi).unwrap()));
    let c = matmul::matmul_t(&mut tape, va, vb, d.ta, d.tb, vbias, relu).unwrap();
    let wt = Tensor::from_slice(&g, tape.value(c).shape(), &w).unwrap();
    tape.backward_with(c, wt).unwrap();

    // Reference gradients.
    let out = r::matmul::forward(&a6, &b6, d, bias.then_some(&bi6[..]), relu);
    let gmask = if relu {
        r::elementwise::relu_bwd(&w6, &out)
    } else {
        w6.clone()
    };
    let (da, db, dbias) = r::matmul::backward(&a6, &b6, d, &gmask);
    let tol = sum_tol(d.m.max(d.n).max(d.k) * d.batch()).max(1e-5);
    assert_close(
        &format!("dA {d:?}"),
        &tape.grad(va).unwrap().to_vec().unwrap(),
        &da,
        tol,
    );
    assert_close(
        &format!("dB {d:?}"),
        &tape.grad(vb).unwrap().to_vec().unwrap(),
        &db,
        tol,
    );
    if let Some(vbias) = vbias {
        assert_close(
            "dbias",
            &tape.grad(vbias).unwrap().to_vec().unwrap(),
            &dbias,
            tol,
        );
    }

    // Reference gradients against finite differences (small sizes only: the FD loop is O(n²)).
    if a.len() + b.len() <= 600 {
        let bias_ref = bias.then_some(&bi6[..]);
        let fa = finite_diff(&a6, 1e-6, |x| {
            probe(&r::matmul::forward(x, &b6, d, bias_ref, relu), &w6)
        });
        let fb = finite_diff(&b6, 1e-6, |x| {
            probe(&r::matmul::forward(&a6, x, d, bias_ref, relu), &w6)
        });
        assert!(
            rel_err64(&da, &fa) <= 1e-6,
            "dA vs FD: {:.2e}",
            rel_err64(&da, &fa)
        );
        assert!(
            rel_err64(&db, &fb) <= 1e-6,
            "dB vs FD: {:.2e}",
            rel_err64(&db, &fb)
        );
        if bias {
            let fbias = finite_diff(&bi6, 1e-6, |x| {
                probe(&r::matmul::forward(&a6, &b6, d, Some(x), relu), &w6)
            });
            assert!(rel_err64(&dbias, &fbias) <= 1e-6);
        }
    }
}

#[test]
fn matmul_backward_all_transposes() {
    let mut seed = 0;
    for ta in [false, true] {
        for tb in [false, true] {
            seed += 1;
            matmul_case(
                Dims {
                    za: 0,
                    zb: 0,
                    m: 7,
                    k: 5,
                    n: 9,
                    ta,
                    tb,
                },
                false,
                false,
                seed,
            );
            matmul_case(
                Dims {
                    za: 0,
                    zb: 0,
                    m: 33,
                    k: 129,
                    n: 7,
                    ta,
                    tb,
                },
                true,
                false,
                seed + 10,
            );
        }
    }
}

#[test]
fn matmul_backward_bias_relu_and_batches() {
    matmul_case(
        Dims {
            za: 0,
            zb: 0,
            m: 6,
            k: 4,
            n: 5,
            ta: false,
            tb: true,
        },
        true,
        true,
        21,
    );
    matmul_case(
        Dims {
            za: 3,
            zb: 3,
            m: 5,
            k: 4,
            n: 6,
            ta: false,
            tb: false,
        },
        false,
        false,
        22,
    );
    matmul_case(
        Dims {
            za: 0,
            zb: 3,
            m: 5,
            k: 4,
            n: 6,
            ta: true,
            tb: false,
        },
        false,
        false,
        23,
    );
    matmul_case(
        Dims {
            za: 4,
            zb: 0,
            m: 5,
            k: 3,
            n: 7,
            ta: false,
            tb: true,
        },
        false,
        true,
        24,
    );
}

#[test]
fn reduce_elementwise_and_loss_backward() {
    let g = gpu();
    let mut rg = rng(31);
    let shape = [3usize, 5, 4];
    let n: usize = shape.iter().product();
    let x = rg.normal_vec(n);
    let y = rg.normal_vec(n);
    let (x6, y6) = (to64(&x), to64(&y));
    for axis in 0..3 {
        for mean in [false, true] {
            let mut tape = Tape::new();
            let vx = tape.leaf(Tensor::from_slice(&g, &shape, &x).unwrap());
            let s = reduce::sum_axis_t(&mut tape, vx, axis, mean).unwrap();
            let w = rg.normal_vec(tape.value(s).numel());
            tape.backward_with(
                s,
                Tensor::from_slice(&g, tape.value(s).shape(), &w).unwrap(),
            )
            .unwrap();
            let scale = if mean { 1.0 / shape[axis] as f64 } else { 1.0 };
            let want: Vec<f64> = r::reduce::broadcast_axis(&to64(&w), &shape, axis)
                .iter()
                .map(|v| v * scale)
                .collect();
            let fd = finite_diff(&x6, 1e-6, |xx| {
                probe(&r::reduce::sum_axis(xx, &shape, axis), &to64(&w)) * scale
            });
            assert!(rel_err64(&want, &fd) <= 1e-6);
            assert_close(
                "sum_axis grad",
                &tape.grad(vx).unwrap().to_vec().unwrap(),
                &want,
                1e-6,
            );
        }
    }
    // relu ∘ (x ⊙ y - 0.5 x) summed, mean of all: exercises mul, lin_comb, relu, sum_all.
    let mut tape = Tape::new();
    let vx = tape.leaf(Tensor::from_slice(&g, &shape, &x).unwrap());
    let vy = tape.leaf(Tensor::from_slice(&g, &shape, &y).unwrap());
    let p = elementwise::mul_t(&mut tape, vx, vy).unwrap();
    let q = elementwise::lin_comb_t(&mut tape, p, vx, 1.0, -0.5).unwrap();
    let rr = elementwise::relu_t(&mut tape, q).unwrap();
    let s = reduce::sum_all_t(&mut tape, rr, true).unwrap();
    tape.backward(s).unwrap();
    let f = |xx: &[f64], yy: &[f64]| -> f64 {
        xx.iter()
            .zip(yy)
            .map(|(a, b)| (a * b - 0.5 * a).max(0.0))
            .sum::<f64>()
            / n as f64
    };
    let fx = finite_diff(&x6, 1e-6, |xx| f(xx, &y6));
    let fy = finite_diff(&y6, 1e-6, |yy| f(&x6, yy));
    assert_close(
        "composite dx",
        &tape.grad(vx).unwrap().to_vec().unwrap(),
        &fx,
        1e-5,
    );
    assert_close(
        "composite dy",
        &tape.grad(vy).unwrap().to_vec().unwrap(),
        &fy,
        1e-5,
    );

    // Cross-entropy and MSE: tape vs reference, reference vs FD.
    for (rows, classes) in [(5usize, 4usize), (9, 20)] {
        let logits = rg.normal_vec(rows * classes);
        let labels: Vec<u32> = (0..rows).map(|_| rg.below(classes) as u32).collect();
        let l6 = to64(&logits);
        let mut tape = Tape::new();
        let vl = tape.leaf(Tensor::from_slice(&g, &[rows, classes], &logits).unwrap());
        let yt = Tensor::from_u32(&g, &[rows], &labels).unwrap();
        let ce = loss::cross_entropy_t(&mut tape, vl, &yt).unwrap();
        let s = elementwise::scale_t(&mut tape, ce, 3.0).unwrap();
        tape.backward(s).unwrap();
        let (_, want) = r::loss::cross_entropy(&l6, &labels, classes);
        let want: Vec<f64> = want.iter().map(|v| v * 3.0).collect();
        let fd = finite_diff(&l6, 1e-6, |xx| {
            3.0 * r::loss::cross_entropy(xx, &labels, classes).0
        });
        assert!(
            rel_err64(&want, &fd) <= 1e-6,
            "ce ref vs FD {:.2e}",
            rel_err64(&want, &fd)
        );
        assert_close(
            "ce grad",
            &tape.grad(vl).unwrap().to_vec().unwrap(),
            &want,
            1e-5,
        );

        let other = rg.normal_vec(rows * classes);
        let o6 = to64(&other);
        let mut tape = Tape::new();
        let va = tape.leaf(Tensor::from_slice(&g, &[rows, classes], &logits).unwrap());
        let vb = tape.leaf(Tensor::from_slice(&g, &[rows, classes], &other).unwrap());
        let m = loss::mse_t(&mut tape, va, vb).unwrap();
        tape.backward(m).unwrap();
        let (_, want) = r::loss::mse(&l6, &o6);
        let fd = finite_diff(&l6, 1e-6, |xx| r::loss::mse(xx, &o6).0);
        assert!(rel_err64(&want, &fd) <= 1e-6);
        assert_close(
            "mse da",
            &tape.grad(va).unwrap().to_vec().unwrap(),
            &want,
            1e-5,
        );
        let neg: Vec<f64> = want.iter().map(|v| -v).collect();
        assert_close(
            "mse db",
            &tape.grad(vb).unwrap().to_vec().unwrap(),
            &neg,
            1e-5,
        );
    }
}

#[test]
fn params_accumulate_and_frozen_params_get_no_gradient() {
    let g = gpu();
    let w = Param::new(
        "w",
        Tensor::from_slice(&g, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap(),
    );
    let f = Param::frozen(
        "f",
        Tensor::from_slice(&g, &[2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap(),
    );
    for _ in 0..2 {
        let mut tape = Tape::new();
        let vw = tape.param(&w);
        let vf = tape.param(&f);
        let p = matmul::matmul_t(&mut tape, vw, vf, false, false, None, false).unwrap();
        let s = reduce::sum_all_t(&mut tape, p, false).unwrap();
        tape.backward(s).unwrap();
    }
    // d/dW Σ (W F) = 1·Fᵀ summed per row = [1,1;1,1] each pass, accumulated twice.
    assert_eq!(w.grad().unwrap().to_vec().unwrap(), vec![2.0; 4]);
    assert!(f.grad().is_none());
    // No-grad tapes record no backward.
    let mut tape = Tape::no_grad();
    let vw = tape.param(&w);
    assert!(!tape.requires_grad(vw));
    let s = reduce::sum_all_t(&mut tape, vw, false).unwrap();
    assert!(tape.backward(s).is_err());
}

#[test]
fn backward_frees_the_gradients_it_consumes() {
    let g = gpu();
    let w = Param::new(
        "w",
        Tensor::from_slice(&g, &[3], &[1.0, -2.0, 3.0]).unwrap(),
    );
    let mut tape = Tape::new();
    let x = tape.leaf(Tensor::from_slice(&g, &[3], &[0.5, 0.5, -0.5]).unwrap());
    let vw = tape.param(&w);
    let prod = elementwise::mul_t(&mut tape, x, vw).unwrap();
    let y = elementwise::relu_t(&mut tape, prod).unwrap();
    let s = reduce::sum_all_t(&mut tape, y, false).unwrap();
    tape.backward(s).unwrap();
    // Intermediate gradients are freed once their rules ran; a leaf's is kept for `grad`.
    assert!(tape.grad(prod).is_none() && tape.grad(y).is_none() && tape.grad(s).is_none());
    assert_eq!(tape.grad(x).unwrap().to_vec().unwrap(), vec![1.0, 0.0, 0.0]);
    // The parameter's gradient is not kept on the tape.
    assert!(tape.grad(vw).is_none());
    assert_eq!(w.grad().unwrap().to_vec().unwrap(), vec![0.5, 0.0, 0.0]);

    // A first gradient that nothing else holds is taken as it is; one still held elsewhere is
    // copied, since later gradients are added to it in place.
    let p = Param::new("p", Tensor::zeros(&g, &[3]).unwrap());
    let t = Tensor::from_slice(&g, &[3], &[1.0, 2.0, 3.0]).unwrap();
    let buf = t.raw().clone();
    p.accumulate_grad(t).unwrap();
    assert!(
        p.grad().unwrap().raw() == &buf,
        "a unique gradient was copied"
    );
    p.zero_grad();
    let t = Tensor::from_slice(&g, &[3], &[1.0, 2.0, 3.0]).unwrap();
    let held = t.clone();
    p.accumulate_grad(t).unwrap();
    assert!(
        p.grad().unwrap().raw() != held.raw(),
        "a shared gradient was not copied"
    );
    p.accumulate_grad(held.clone()).unwrap();
    assert_eq!(p.grad().unwrap().to_vec().unwrap(), vec![2.0, 4.0, 6.0]);
    assert_eq!(held.to_vec().unwrap(), vec![1.0, 2.0, 3.0]);
}
