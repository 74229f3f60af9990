//! Backward rules: tape gradients against reference gradients, and each reference gradient against
//! central finite differences in f64.
//! Over 600 lines: one backward rule a test, every op's rule in this one file, so a new op's
//! gradient check goes beside its siblings'.

mod common;
use common::*;
use symclone::autograd::Param;
use symclone::autograd::Tape;
use symclone::clone::{ClonedConv, ClonedOperator, OperatorKind};
use symclone::ops::{elementwise, layout, loss, matmul, reduce};
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
    let tol = sum_tol(d.m.max(d.n).max(d.k) * d.batch());
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

/// The cloned operator in f64 (SPEC §2), for finite differences: tensors in `params` order.
struct OpRef {
    kind: OperatorKind,
    d: usize,
    nb: usize,
    m: usize,
}

impl OpRef {
    fn r(&self) -> usize {
        self.kind.codes_per_filter()
    }
    /// Transformed codes (rows·R, 9) of codes (rows, code_len): `c Tᵀ`, or c itself for Z2.
    fn tcodes(&self, t: Option<&[f64]>, c: &[f64]) -> Vec<f64> {
        let cl = self.kind.code_len();
        let rows = c.len() / cl;
        let Some(t) = t else { return c.to_vec() };
        let mut out = vec![0.0; rows * self.r() * 9];
        for row in 0..rows {
            for qa in 0..self.r() * 9 {
                out[row * self.r() * 9 + qa] =
                    (0..cl).map(|b| t[qa * cl + b] * c[row * cl + b]).sum();
            }
        }
        out
    }
    /// Coefficients h (rows, nb) of transformed codes (rows, 9): mix with M1, then M2.
    fn coefficients(&self, tc: &[f64], m1: &[f64], m2: &[f64]) -> Vec<f64> {
        let (m, nb) = (self.m, self.nb);
        let rows = tc.len() / 9;
        let mut h = vec![0.0; rows * nb];
        for row in 0..rows {
            for j in 0..9 {
                for q in 0..m {
                    let hq = tc[row * 9 + j] * m1[j * m + q];
                    for b in 0..nb {
                        h[row * nb + b] += hq * m2[(j * m + q) * nb + b];
                    }
                }
            }
        }
        h
    }
    /// Dense operators (rows, n_out·n_in) = h · blocks.
    fn dense(&self, p: &[Vec<f64>], codes: &[f64]) -> Vec<f64> {
        let h = self.coefficients(&self.tcodes(p.get(3).map(|t| &t[..]), codes), &p[1], &p[2]);
        let size = p[0].len() / self.nb;
        let rows = h.len() / self.nb;
        let mut w = vec![0.0; rows * size];
        for row in 0..rows {
            for b in 0..self.nb {
                for i in 0..size {
                    w[row * size + i] += h[row * self.nb + b] * p[0][b * size + i];
                }
            }
        }
        w
    }
    /// Cloning form: codes (F, code_len), x (F, planes·n_in, bs) → (F, out_planes, n_out, bs).
    fn per_filter(&self, p: &[Vec<f64>], codes: &[f64], x: &[f64], bs: usize) -> Vec<f64> {
        let (n_out, n_in) = ClonedOperator::io(self.d);
        let f = codes.len() / self.kind.code_len();
        let w = self.dense(p, codes);
        let (rp, sp) = (self.kind.out_planes(), self.kind.in_planes());
        let mut y = vec![0.0; f * rp * n_out * bs];
        for fi in 0..f {
            for r in 0..rp {
                for s in 0..sp {
                    let row = (fi * rp + r) * sp + s;
                    for o in 0..n_out {
                        for j in 0..bs {
                            y[((fi * rp + r) * n_out + o) * bs + j] += (0..n_in)
                                .map(|i| {
                                    w[(row * n_out + o) * n_in + i]
                                        * x[(fi * sp * n_in + s * n_in + i) * bs + j]
                                })
                                .sum::<f64>();
                        }
                    }
                }
            }
        }
        y
    }
    /// ClonedConv: x (B, Cin, planes, d, d), filters w (Cout, Cin, code_len), bias (Cout) →
    /// (B, Cout, out_planes, o, o).
    fn conv(&self, p: &[Vec<f64>], w: &[f64], bias: &[f64], x: &[f64], cin: usize) -> Vec<f64> {
        let (n_out, n_in) = ClonedOperator::io(self.d);
        let cout = bias.len();
        let (rp, sp) = (self.kind.out_planes(), self.kind.in_planes());
        let b = x.len() / (cin * sp * n_in);
        // The transformed code of (o, i) for (r, s) is row ((o·Cin + i)·R + r·S + s).
        let dense = self.dense(p, w);
        let mut y = vec![0.0; b * cout * rp * n_out];
        for bi in 0..b {
            for o in 0..cout {
                for r in 0..rp {
                    for q in 0..n_out {
                        let mut acc = bias[o];
                        for i in 0..cin {
                            for s in 0..sp {
                                let row = (o * cin + i) * self.r() + r * sp + s;
                                let xs = &x[((bi * cin + i) * sp + s) * n_in..][..n_in];
                                let wr = &dense[(row * n_out + q) * n_in..][..n_in];
                                acc += wr.iter().zip(xs).map(|(u, v)| u * v).sum::<f64>();
                            }
                        }
                        y[((bi * cout + o) * rp + r) * n_out + q] = acc;
                    }
                }
            }
        }
        y
    }
}

/// Each tape gradient against central finite differences of the f64 function `f` of `inputs`
/// probed with `w`; `got[k]` is the GPU gradient of `inputs[k]`.
fn against_fd(
    what: &str,
    inputs: &[Vec<f64>],
    got: &[Vec<f32>],
    w: &[f64],
    tol: f64,
    f: impl Fn(&[Vec<f64>]) -> Vec<f64>,
) {
    for (k, g) in got.iter().enumerate() {
        let fd = finite_diff(&inputs[k], 1e-6, |x| {
            let mut all = inputs.to_vec();
            all[k] = x.to_vec();
            probe(&f(&all), w)
        });
        let e = symclone::reference::rel_err(g, &fd);
        eprintln!("{what} input {k}: {e:.2e} (tolerance {tol:.2e})");
        assert!(
            e <= tol,
            "{what}: gradient of input {k} off by {e:.2e} > {tol:.2e}"
        );
    }
}

/// The operator's tensors, random (blocks Gaussian: a fresh clone's are zero).
fn random_op(
    g: &std::sync::Arc<symclone::Gpu>,
    kind: OperatorKind,
    rg: &mut symclone::rng::Rng,
) -> (ClonedOperator, OpRef) {
    let (d, nb, m) = (4, 3, 2);
    let op = ClonedOperator::new(g, kind, d, nb, m, rg).unwrap();
    op.blocks
        .value()
        .write_slice(&rg.normal_vec(op.blocks.numel()))
        .unwrap();
    (op, OpRef { kind, d, nb, m })
}

fn values(op: &ClonedOperator) -> Vec<Vec<f64>> {
    op.params()
        .iter()
        .map(|p| to64(&p.value().to_vec().unwrap()))
        .collect()
}

fn grads(op: &ClonedOperator) -> Vec<Vec<f32>> {
    op.params()
        .iter()
        .map(|p| p.grad().unwrap().to_vec().unwrap())
        .collect()
}

/// The tolerance of a gradient computed through `stages` products of at most `k` terms each in
/// f32: each stage adds about √k·2⁻²⁴ relative error (DESIGN.md, "Numbers").
fn chain_tol(stages: usize, k: usize) -> f64 {
    stages as f64 * sum_tol(k)
}

#[test]
fn cloned_ops_backward_against_finite_differences() {
    let g = gpu();
    let mut rg = rng(61);
    for kind in [OperatorKind::Z2, OperatorKind::Lift, OperatorKind::P4] {
        let cl = kind.code_len();
        // codes_t and dense_t: (F, code_len) → (F·R, n_out·n_in).
        let (op, oref) = random_op(&g, kind, &mut rg);
        let f = 2;
        let codes = rg.normal_vec(f * cl);
        let mut tape = Tape::new();
        let vc = tape.leaf(Tensor::from_slice(&g, &[f, cl], &codes).unwrap());
        let y = op.dense_t(&mut tape, vc).unwrap();
        let w = rg.normal_vec(tape.value(y).numel());
        tape.backward_with(
            y,
            Tensor::from_slice(&g, tape.value(y).shape(), &w).unwrap(),
        )
        .unwrap();
        let mut inputs = values(&op);
        let mut got = grads(&op);
        inputs.push(to64(&codes));
        got.push(tape.grad(vc).unwrap().to_vec().unwrap());
        let n = inputs.len();
        // Stages: c Tᵀ (code_len terms), the mix and M2 (9m), h·blocks (nb), and for the blocks'
        // gradient hᵀ·G (F·R rows); the backward of each contracts over the other sizes, the
        // largest being the n_out·n_in columns of G for ∂h.
        let (n_out, n_in) = ClonedOperator::io(oref.d);
        let tol = chain_tol(
            4,
            (f * oref.r())
                .max(cl)
                .max(9 * oref.m)
                .max(oref.nb)
                .max(n_out * n_in),
        );
        against_fd(
            &format!("{kind:?} dense_t"),
            &inputs,
            &got,
            &to64(&w),
            tol,
            |p| oref.dense(&p[..n - 1], &p[n - 1]),
        );

        // forward_per_filter: codes (F, code_len), x (F, planes·n_in, bs).
        let (op, oref) = random_op(&g, kind, &mut rg);
        let bs = 3;
        let xs = [f, kind.in_planes() * n_in, bs];
        let x = rg.normal_vec(xs.iter().product());
        let mut tape = Tape::new();
        let vc = tape.leaf(Tensor::from_slice(&g, &[f, cl], &codes).unwrap());
        let vx = tape.leaf(Tensor::from_slice(&g, &xs, &x).unwrap());
        let y = op.forward_per_filter(&mut tape, vc, vx).unwrap();
        let w = rg.normal_vec(tape.value(y).numel());
        tape.backward_with(
            y,
            Tensor::from_slice(&g, tape.value(y).shape(), &w).unwrap(),
        )
        .unwrap();
        let mut inputs = values(&op);
        let mut got = grads(&op);
        inputs.push(to64(&codes));
        inputs.push(to64(&x));
        got.push(tape.grad(vc).unwrap().to_vec().unwrap());
        got.push(tape.grad(vx).unwrap().to_vec().unwrap());
        let n = inputs.len();
        let tol = chain_tol(
            5,
            (f * oref.r() * bs)
                .max(9 * oref.m)
                .max(4 * n_in)
                .max(n_out * n_in),
        );
        against_fd(
            &format!("{kind:?} forward_per_filter"),
            &inputs,
            &got,
            &to64(&w),
            tol,
            |p| oref.per_filter(&p[..n - 2], &p[n - 2], &p[n - 1], bs),
        );

        // ClonedConv (trainable operator, as under KL): x (B, Cin, [4,] d, d).
        let (op, oref) = random_op(&g, kind, &mut rg);
        let (cin, cout, b) = (2, 2, 2);
        let layer = ClonedConv::new(&g, "l", op.clone(), cin, cout, &mut rg).unwrap();
        let mut shape = vec![b, cin];
        if kind.in_planes() == 4 {
            shape.push(4);
        }
        shape.extend([oref.d, oref.d]);
        let x = rg.normal_vec(shape.iter().product());
        let mut tape = Tape::new();
        let vx = tape.leaf(Tensor::from_slice(&g, &shape, &x).unwrap());
        let y = layer.forward(&mut tape, vx).unwrap();
        let w = rg.normal_vec(tape.value(y).numel());
        tape.backward_with(
            y,
            Tensor::from_slice(&g, tape.value(y).shape(), &w).unwrap(),
        )
        .unwrap();
        let mut inputs = values(&op);
        let mut got = grads(&op);
        for p in layer.own_params() {
            inputs.push(to64(&p.value().to_vec().unwrap()));
            got.push(p.grad().unwrap().to_vec().unwrap());
        }
        inputs.push(to64(&x));
        got.push(tape.grad(vx).unwrap().to_vec().unwrap());
        let n = inputs.len();
        let tol = chain_tol(
            5,
            (b * n_out * cout * 4)
                .max(cin * 4 * oref.nb)
                .max(9 * oref.m)
                .max(n_in),
        );
        against_fd(
            &format!("{kind:?} ClonedConv"),
            &inputs,
            &got,
            &to64(&w),
            tol,
            |p| oref.conv(&p[..n - 3], &p[n - 3], &p[n - 2], &p[n - 1], cin),
        );
    }
}

#[test]
fn swap12_and_repeat_backward_exactly() {
    let g = gpu();
    let mut rg = rng(62);
    // swap12 moves values: its gradient is the upstream gradient swapped back, bit for bit.
    let dims = [2usize, 3, 5, 7];
    let [a, b, c, d] = dims;
    let x = rg.normal_vec(a * b * c * d);
    let mut tape = Tape::new();
    let vx = tape.leaf(Tensor::from_slice(&g, &[a * b, c * d], &x).unwrap());
    let y = layout::swap12_t(&mut tape, vx, dims).unwrap();
    let w = rg.normal_vec(x.len());
    tape.backward_with(y, Tensor::from_slice(&g, &[a, c, b, d], &w).unwrap())
        .unwrap();
    let got = tape.grad(vx).unwrap().to_vec().unwrap();
    assert_eq!(tape.grad(vx).unwrap().shape(), &[a * b, c * d]);
    // f32 → f64 is exact, so equal f64 values are equal f32 bits.
    assert_eq!(to64(&got), r::layout::swap12(&to64(&w), [a, c, b, d]));
    // repeat along a new axis: the gradient sums the n copies (n-term sums: sum_tol(n)), and
    // the reference agrees with finite differences.
    for (shape, axis, n) in [
        (vec![3usize, 5], 1usize, 4usize),
        (vec![2, 7], 0, 3),
        (vec![4, 1], 2, 16),
    ] {
        let x = rg.normal_vec(shape.iter().product());
        let mut tape = Tape::new();
        let vx = tape.leaf(Tensor::from_slice(&g, &shape, &x).unwrap());
        let y = reduce::repeat_t(&mut tape, vx, axis, n).unwrap();
        let ys = tape.value(y).shape().to_vec();
        let w = rg.normal_vec(ys.iter().product());
        tape.backward_with(y, Tensor::from_slice(&g, &ys, &w).unwrap())
            .unwrap();
        let rshape: Vec<usize> = shape[..axis]
            .iter()
            .copied()
            .chain([n])
            .chain(shape[axis..].iter().copied())
            .collect();
        let want = r::reduce::sum_axis(&to64(&w), &rshape, axis);
        let fd = finite_diff(&to64(&x), 1e-6, |xx| {
            probe(&r::reduce::broadcast_axis(xx, &rshape, axis), &to64(&w))
        });
        assert!(rel_err64(&want, &fd) <= 1e-9, "repeat reference vs FD");
        assert_close(
            &format!("repeat {shape:?} axis {axis}"),
            &tape.grad(vx).unwrap().to_vec().unwrap(),
            &want,
            sum_tol(n),
        );
    }
}
