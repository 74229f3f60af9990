//! Over 600 lines: the cloning area's one test file, whose WebGPU-limits test reuses its cases.
//! Cloned operators (SPEC §2–§5): the new kernels against references, the true operator against
//! direct correlation, cloning itself, the multi-channel layer, and the KL penalty.

mod common;
use common::*;
use std::sync::Arc;
use symclone::autograd::Tape;
use symclone::clone::operator::{per_filter_apply, shift_blocks, true_codes, K};
use symclone::clone::{clone_random, CloneConfig, ClonedConv, ClonedOperator, OperatorKind};
use symclone::ops::kl::Penalty::{self, Kl, L2};
use symclone::ops::{cloned as cl, conv, kl, layout, random};
use symclone::reference::{
    self as r,
    cloned::{coefficients, corr_valid},
    finite_diff, rel_err64, to64,
};
use symclone::tensor::Tensor;
use symclone::Gpu;

#[test]
fn mix_channel_bias_swap12_and_randn_match_references() {
    mix_cases(&gpu());
}

/// The cloned-operator kernels, the channel bias, swap12 and randn against their references.
fn mix_cases(g: &Arc<Gpu>) {
    let g = g.clone();
    let mut rg = rng(40);
    for (rows, k2, m) in [
        (1usize, 1usize, 1usize),
        (37, 9, 10),
        (7, 9, 33),
        (257, 4, 7),
    ] {
        let what = format!("mix ({rows}, {k2}) × ({k2}, {m})");
        let (c, m1) = (rg.normal_vec(rows * k2), rg.normal_vec(k2 * m));
        let (c6, m6) = (to64(&c), to64(&m1));
        let gc = Tensor::from_slice(&g, &[rows, k2], &c).unwrap();
        let gm = Tensor::from_slice(&g, &[k2, m], &m1).unwrap();
        // One product per entry: a 1-term sum.
        let out = cl::mix(&gc, &gm).unwrap().to_vec().unwrap();
        assert_close(&what, &out, &r::cloned::mix(&c6, &m6, k2, m), sum_tol(1));
        // Backward for an upstream gradient w: dc sums m products, dM1 rows products, each within
        // the bound of its sums (the same sums over absolute values give the condition number).
        let w = rg.normal_vec(rows * k2 * m);
        let w6 = to64(&w);
        let gw = Tensor::from_slice(&g, &[rows, k2 * m], &w).unwrap();
        let (dc, dm) = cl::mix_backward(&gw, &gc, &gm, true, true).unwrap();
        let (want_dc, want_dm) = r::cloned::mix_backward(&w6, &c6, &m6, k2, m);
        let (abs_dc, abs_dm) =
            r::cloned::mix_backward(&abs64(&w6), &abs64(&c6), &abs64(&m6), k2, m);
        let (dc, dm) = (dc.unwrap().to_vec().unwrap(), dm.unwrap().to_vec().unwrap());
        assert_sum_close(&format!("{what} dc"), &dc, &want_dc, &abs_dc, m);
        assert_sum_close(&format!("{what} dM1"), &dm, &want_dm, &abs_dm, rows);
    }

    let x = rg.normal_vec(3 * 5 * 7);
    let b = rg.normal_vec(5);
    let gx = Tensor::from_slice(&g, &[3, 5, 7], &x).unwrap();
    let mut tape = Tape::new();
    let vx = tape.leaf(gx.clone());
    let vb = tape.leaf(Tensor::from_slice(&g, &[5], &b).unwrap());
    let y = conv::channel_bias_t(&mut tape, vx, vb).unwrap();
    let want: Vec<f64> = (0..105)
        .map(|t| x[t] as f64 + b[(t / 7) % 5] as f64)
        .collect();
    assert_close(
        "channel_bias",
        &tape.value(y).to_vec().unwrap(),
        &want,
        1e-7,
    );
    tape.backward_with(y, gx.clone()).unwrap();
    let want: Vec<f64> = (0..5)
        .map(|c| {
            (0..3)
                .flat_map(|bb| (0..7).map(move |i| (bb, i)))
                .map(|(bb, i)| x[(bb * 5 + c) * 7 + i] as f64)
                .sum()
        })
        .collect();
    assert_close(
        "channel_bias grad",
        &tape.grad(vb).unwrap().to_vec().unwrap(),
        &want,
        1e-6,
    );
    assert_close(
        "channel_bias grad x",
        &tape.grad(vx).unwrap().to_vec().unwrap(),
        &to64(&x),
        0.0,
    );

    // swap12 moves values: exact, on ragged (a, b, c, d).
    for dims in [
        [1usize, 1, 1, 1],
        [2, 3, 4, 5],
        [3, 7, 33, 1],
        [1, 257, 2, 3],
    ] {
        let [a, bb, cc, d] = dims;
        let v = rg.normal_vec(a * bb * cc * d);
        let s = layout::swap12(&Tensor::from_slice(&g, &[v.len()], &v).unwrap(), dims).unwrap();
        assert_eq!(s.shape(), &[a, cc, bb, d]);
        assert_close(
            &format!("swap12 {dims:?}"),
            &s.to_vec().unwrap(),
            &r::layout::swap12(&to64(&v), dims),
            0.0,
        );
    }

    let n = 200_000;
    let z = random::randn(&g, &[n], 12345).unwrap().to_vec().unwrap();
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
        "randn mean {mean} var {var}"
    );
    // Draw by draw against the reference generator, within the bound of Box–Muller on the GPU
    // (derived at `reference::tol::randn_tol`).
    let want = r::random::randn(n, 12345);
    let err = r::rel_err(&z, &want);
    assert!(err <= r::tol::randn_tol(), "randn vs reference: {err:.2e}");
    assert_eq!(z, random::randn(&g, &[n], 12345).unwrap().to_vec().unwrap());
    assert_ne!(
        z[..100],
        random::randn(&g, &[n], 12346).unwrap().to_vec().unwrap()[..100]
    );
}

/// f64's rounding unit, 2⁻⁵³.
const U64: f64 = 1.0 / 9_007_199_254_740_992.0;

/// Norm-wise relative error bound of central differences with step h, against the exact gradient
/// `grad` at x, of a function f that is linear in each coordinate (so no truncation error at any
/// step) and evaluated as an n-term f64 sum whose terms' absolute values sum to `f_abs`: each
/// evaluation rounds by about (4√n + 2)·U64·f_abs (as `sum_tol`), so each difference over 2h errs by
/// at most that over h; and x ± h rounds, a relative U64·(|x| + h)/h on each entry.
fn fd_tol_linear(n: usize, f_abs: f64, h: f64, x: &[f64], grad: &[f64]) -> f64 {
    let norm = grad.iter().map(|v| v * v).sum::<f64>().sqrt();
    let xmax = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let eval = (4.0 * (n as f64).sqrt() + 2.0) * U64 * f_abs / h;
    (grad.len() as f64).sqrt() * eval / norm + U64 * (xmax + h) / h
}

fn probe(f: &[f64], w: &[f64]) -> f64 {
    f.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// The references' backward rules against central finite differences in f64 of Σ w ⊙ op(x): mix
/// w.r.t. the codes and M1, and swap12 (whose backward is swap12 on the swapped dims).
#[test]
fn mix_and_swap12_reference_backwards_match_finite_differences() {
    let mut rg = rng(41);
    let h = 1e-3;
    let (rows, k2, m) = (7usize, 9usize, 5usize);
    let c = to64(&rg.normal_vec(rows * k2));
    let m1 = to64(&rg.normal_vec(k2 * m));
    let w = to64(&rg.normal_vec(rows * k2 * m));
    let (dc, dm) = r::cloned::mix_backward(&w, &c, &m1, k2, m);
    let n = w.len();
    let f_abs = probe(&r::cloned::mix(&abs64(&c), &abs64(&m1), k2, m), &abs64(&w));
    let fc = finite_diff(&c, h, |v| probe(&r::cloned::mix(v, &m1, k2, m), &w));
    let fm = finite_diff(&m1, h, |v| probe(&r::cloned::mix(&c, v, k2, m), &w));
    for (name, x, got, fd) in [("dc", &c, &dc, &fc), ("dM1", &m1, &dm, &fm)] {
        let (e, tol) = (rel_err64(got, fd), fd_tol_linear(n, f_abs, h, x, got));
        assert!(e <= tol, "mix reference {name} vs FD: {e:.2e} > {tol:.2e}");
    }
    let dims = [2usize, 3, 5, 7];
    let [a, b, cc, d] = dims;
    let x = to64(&rg.normal_vec(a * b * cc * d));
    let w = to64(&rg.normal_vec(x.len()));
    let dx = r::layout::swap12(&w, [a, cc, b, d]);
    let f_abs = probe(&r::layout::swap12(&abs64(&x), dims), &abs64(&w));
    let fd = finite_diff(&x, h, |v| probe(&r::layout::swap12(v, dims), &w));
    let (e, tol) = (
        rel_err64(&dx, &fd),
        fd_tol_linear(x.len(), f_abs, h, &x, &dx),
    );
    assert!(
        e <= tol,
        "swap12 reference backward vs FD: {e:.2e} > {tol:.2e}"
    );
}

/// Direct correlation form of the true layers for one filter: x (planes, d, d) → (out_planes, o, o).
fn true_layer_direct(kind: OperatorKind, x: &[f64], d: usize, c: &[f64]) -> Vec<f64> {
    let o = d + 1 - K;
    let n_in = d * d;
    let mut y = Vec::new();
    // Output orientation k sums, over the input planes s, the correlation with g_k·c_{src(k, s)}
    // (the reference's own D4 table; C4 is its first four elements).
    let (pin, pout) = (kind.in_planes(), kind.out_planes());
    for k in 0..pout {
        let mut acc = vec![0.0; o * o];
        for s in 0..pin {
            let t = if pin > 1 { r::d4::src(k, s) } else { 0 };
            let filter = r::d4::act(&c[t * 9..(t + 1) * 9], K, k);
            let part = corr_valid(&x[s * n_in..(s + 1) * n_in], d, &filter, K);
            for (a, b) in acc.iter_mut().zip(part) {
                *a += b;
            }
        }
        y.extend(acc);
    }
    y
}

fn run_per_filter(
    kind: OperatorKind,
    d: usize,
    codes: &[f32],
    x: &[f32],
    f: usize,
    bs: usize,
    op: Option<&ClonedOperator>,
) -> Vec<f32> {
    let g = gpu();
    let (_, n_in) = ClonedOperator::io(d);
    let mut tape = Tape::no_grad();
    let xv = tape.input(Tensor::from_slice(&g, &[f, kind.in_planes() * n_in, bs], x).unwrap());
    let y = match op {
        Some(op) => {
            let c = tape.input(Tensor::from_slice(&g, &[f, kind.code_len()], codes).unwrap());
            op.forward_per_filter(&mut tape, c, xv).unwrap()
        }
        None => {
            let mut tc = Vec::new();
            for c in codes.chunks(kind.code_len()) {
                tc.extend(true_codes(kind, c));
            }
            let h = tape.input(Tensor::from_slice(&g, &[tc.len() / 9, 9], &tc).unwrap());
            let o = d + 1 - K;
            let b =
                tape.input(Tensor::from_slice(&g, &[9, o * o, n_in], &shift_blocks(d)).unwrap());
            per_filter_apply(&mut tape, kind, d, h, b, xv).unwrap()
        }
    };
    tape.value(y).to_vec().unwrap()
}

/// Column `j` of a (rows, bs) block as a vector.
fn column(v: &[f32], rows: usize, bs: usize, j: usize) -> Vec<f64> {
    (0..rows).map(|i| v[i * bs + j] as f64).collect()
}

#[test]
fn true_operator_equals_direct_correlation() {
    let mut rg = rng(41);
    for kind in OperatorKind::ALL {
        let (d, f, bs) = (7usize, 3usize, 4usize);
        let (n_out, n_in) = ClonedOperator::io(d);
        let codes = rg.normal_vec(f * kind.code_len());
        let x = rg.normal_vec(f * kind.in_planes() * n_in * bs);
        let y = run_per_filter(kind, d, &codes, &x, f, bs, None);
        let (pin, pout) = (kind.in_planes(), kind.out_planes());
        for fi in 0..f {
            for j in 0..bs {
                let xin: Vec<f64> = (0..pin)
                    .flat_map(|s| {
                        column(
                            &x[(fi * pin + s) * n_in * bs..(fi * pin + s + 1) * n_in * bs],
                            n_in,
                            bs,
                            j,
                        )
                    })
                    .collect();
                let want = true_layer_direct(
                    kind,
                    &xin,
                    d,
                    &to64(&codes[fi * kind.code_len()..(fi + 1) * kind.code_len()]),
                );
                let got: Vec<f32> = (0..pout)
                    .flat_map(|rr| {
                        column(
                            &y[(fi * pout + rr) * n_out * bs..(fi * pout + rr + 1) * n_out * bs],
                            n_out,
                            bs,
                            j,
                        )
                    })
                    .map(|v| v as f32)
                    .collect();
                assert_close(&format!("{kind:?} true operator"), &got, &want, 1e-5);
            }
        }
    }
}

/// Run a stochastic check on up to three seeds and require a majority to pass: one lucky (or
/// unlucky) seed decides nothing. Stops once two have passed or two have failed (so a healthy
/// run costs two seeds). `trial(seed)` returns whether it passed and what it measured.
fn majority<T: std::fmt::Debug>(what: &str, mut trial: impl FnMut(u64) -> (bool, T)) {
    let mut runs: Vec<(u64, bool, T)> = Vec::new();
    for seed in 0..3 {
        let (ok, got) = trial(seed);
        eprintln!(
            "{what}, seed {seed}: {} {got:?}",
            if ok { "pass" } else { "FAIL" }
        );
        runs.push((seed, ok, got));
        let passed = runs.iter().filter(|r| r.1).count();
        if passed == 2 || runs.len() - passed == 2 {
            break;
        }
    }
    let passed = runs.iter().filter(|r| r.1).count();
    assert!(
        passed >= 2,
        "{what}: {passed} of {} seeds passed: {runs:?}",
        runs.len()
    );
}

fn small_cfg(kind: OperatorKind, nb: usize, iters: usize) -> CloneConfig {
    CloneConfig {
        filters: 16,
        batch: 48,
        iters,
        accum: 1,
        nb,
        lr: 1e-2,
        lr_decay: 0.997,
        ..CloneConfig::paper(kind, 6)
    }
}

#[test]
fn z2_clone_with_9_blocks_learns_the_correlation_and_7_blocks_cannot() {
    let g = gpu();
    // The target's mean square is E[(Σ_j c_j x_j)²] = 9 for unit Gaussian codes and inputs.
    majority("nb = 9 relative MSE ≤ 1e-4", |seed| {
        let cfg = CloneConfig {
            seed,
            ..small_cfg(OperatorKind::Z2, 9, 1500)
        };
        let (_, stats) = clone_random(&g, &cfg, 100, &mut |_, _| {}).unwrap();
        let rel = stats.best_loss / 9.0;
        (rel <= 1e-4, rel)
    });
    // With 7 blocks the clone is a linear map of the 9-dim code into a 7-dim span of blocks; the
    // 9 shift matrices are orthogonal and the codes isotropic, so at least 2/9 of the target's
    // energy is lost: relative MSE ≥ 2/9 ≈ 0.22 in expectation.
    let (_, stats7) = clone_random(
        &g,
        &small_cfg(OperatorKind::Z2, 7, 600),
        100,
        &mut |_, _| {},
    )
    .unwrap();
    let tail: Vec<f32> = stats7
        .history
        .iter()
        .rev()
        .take(3)
        .map(|h| h.1 / 9.0)
        .collect();
    let rel7 = tail.iter().sum::<f32>() / tail.len() as f32;
    eprintln!("nb = 7 relative MSE {rel7:.3}");
    assert!(
        rel7 >= 0.18,
        "nb = 7 got below the 2/9 floor: {rel7} ({:?})",
        stats7.history
    );
}

/// The group law in cloning form for the element h: `y(h·x)[k] = h·(y(x)[src(h, k)])`, with
/// `(h·x)[s] = h·(x[src(h, s)])` on group inputs (the P4 and p4m kinds) and `h·x` on an image (the
/// lifts). h = 1 is the C4 law `y(rot90(x))[r] = rot90(y(x)[r−1])`.
fn group_law_error(kind: OperatorKind, op: Option<&ClonedOperator>, h: usize) -> f64 {
    let mut rg = rng(43);
    let (d, f, bs) = (6usize, 2usize, 3usize);
    let (n_out, n_in) = ClonedOperator::io(d);
    let o = d + 1 - K;
    let pin = kind.in_planes();
    let codes = rg.normal_vec(f * kind.code_len());
    let x = rg.normal_vec(f * pin * n_in * bs);
    let pout = kind.out_planes();
    let src = |k: usize, n: usize| if n > 1 { r::d4::src(h, k) } else { 0 };
    let mut xr = vec![0.0f32; x.len()];
    for fi in 0..f {
        for s in 0..pin {
            let src_s = src(s, pin);
            for j in 0..bs {
                let plane = column(
                    &x[(fi * pin + src_s) * n_in * bs..(fi * pin + src_s + 1) * n_in * bs],
                    n_in,
                    bs,
                    j,
                );
                let rot = r::d4::act(&plane, d, h);
                for i in 0..n_in {
                    xr[((fi * pin + s) * n_in + i) * bs + j] = rot[i] as f32;
                }
            }
        }
    }
    let y = run_per_filter(kind, d, &codes, &x, f, bs, op);
    let yr = run_per_filter(kind, d, &codes, &xr, f, bs, op);
    let mut want = Vec::new();
    let mut got = Vec::new();
    for fi in 0..f {
        for rr in 0..pout {
            let prev = src(rr, pout);
            for j in 0..bs {
                let plane = column(
                    &y[(fi * pout + prev) * n_out * bs..(fi * pout + prev + 1) * n_out * bs],
                    n_out,
                    bs,
                    j,
                );
                want.extend(r::d4::act(&plane, o, h));
                got.extend(
                    column(
                        &yr[(fi * pout + rr) * n_out * bs..(fi * pout + rr + 1) * n_out * bs],
                        n_out,
                        bs,
                        j,
                    )
                    .iter()
                    .map(|&v| v as f32),
                );
            }
        }
    }
    r::rel_err(&got, &want)
}

#[test]
fn true_layers_and_trained_clones_obey_the_group_law_and_untrained_clones_do_not() {
    let g = gpu();
    for kind in [
        OperatorKind::Lift,
        OperatorKind::P4,
        OperatorKind::LiftD4,
        OperatorKind::P4m,
    ] {
        let mut rg = rng(44);
        let fresh = ClonedOperator::new(&g, kind, 6, 9, 10, &mut rg).unwrap();
        fresh
            .blocks
            .value()
            .write_slice(&rg.normal_vec(fresh.blocks.numel()))
            .unwrap();
        // Every element of the kind's group: the turns, and for D4 the reflections too.
        for h in 1..kind.out_planes() {
            assert!(
                group_law_error(kind, None, h) <= 1e-5,
                "true {kind:?}, g_{h}"
            );
            // An untrained clone with random blocks breaks the law.
            let e = group_law_error(kind, Some(&fresh), h);
            assert!(
                e > 0.1,
                "untrained {kind:?} clone, g_{h}: law error only {e}"
            );
        }
    }
    majority("trained lift clone obeys the C4 law to 1e-3", |seed| {
        let cfg = CloneConfig {
            filters: 8,
            batch: 24,
            seed,
            ..small_cfg(OperatorKind::Lift, 9, 800)
        };
        let (op, stats) = clone_random(&g, &cfg, 100, &mut |_, _| {}).unwrap();
        let e = group_law_error(OperatorKind::Lift, Some(&op), 1);
        (e <= 1e-3, (e, stats.best_loss))
    });
}

#[test]
fn cloned_conv_matches_the_per_pair_formula() {
    cloned_conv_cases(&gpu());
}

/// ClonedConv of each kind against the per-pair formula.
fn cloned_conv_cases(g: &Arc<Gpu>) {
    let g = g.clone();
    let mut rg = rng(45);
    for kind in OperatorKind::ALL {
        let (d, cin, cout, b, nb, m) = (5usize, 3usize, 2usize, 2usize, 4usize, 3usize);
        let op = ClonedOperator::new(&g, kind, d, nb, m, &mut rg).unwrap();
        op.blocks
            .value()
            .write_slice(&rg.normal_vec(op.blocks.numel()))
            .unwrap();
        let layer = ClonedConv::new(&g, "l", op.clone(), cin, cout, &mut rg).unwrap();
        let (n_out, n_in) = ClonedOperator::io(d);
        let pin = kind.in_planes();
        let x = rg.normal_vec(b * cin * pin * n_in);
        let mut shape = vec![b, cin];
        if pin > 1 {
            shape.push(pin);
        }
        shape.extend([d, d]);
        let mut tape = Tape::no_grad();
        let xv = tape.input(Tensor::from_slice(&g, &shape, &x).unwrap());
        let y = layer.forward(&mut tape, xv).unwrap();
        let got = tape.value(y).to_vec().unwrap();
        // Reference: y[b, o, r] = Σ_i Σ_s Σ_bb h(code(o, i, r, s))_bb B_bb x[b, i, s] + bias[o].
        let blocks = to64(&op.blocks.value().to_vec().unwrap());
        let m1 = to64(&op.m1.value().to_vec().unwrap());
        let m2 = to64(&op.m2.value().to_vec().unwrap());
        let t = op.t.as_ref().map(|t| to64(&t.value().to_vec().unwrap()));
        let w = to64(&layer.weight.value().to_vec().unwrap());
        let bias = to64(&layer.bias.value().to_vec().unwrap());
        let cl_len = kind.code_len();
        let pout = kind.out_planes();
        let mut want = vec![0.0; b * cout * pout * n_out];
        for bi in 0..b {
            for o in 0..cout {
                for rr in 0..pout {
                    let yo = &mut want[((bi * cout + o) * pout + rr) * n_out
                        ..((bi * cout + o) * pout + rr + 1) * n_out];
                    yo.iter_mut().for_each(|v| *v = bias[o]);
                    for i in 0..cin {
                        let wc = &w[(o * cin + i) * cl_len..(o * cin + i + 1) * cl_len];
                        for s in 0..pin {
                            // T's row for (r, s, a) (s = 0 for the lifts) against the code.
                            let code: Vec<f64> = match &t {
                                None => wc.to_vec(),
                                Some(t) => (0..9)
                                    .map(|a| {
                                        let row = ((rr * pin + s) * 9 + a) * cl_len;
                                        (0..cl_len).map(|tb| t[row + tb] * wc[tb]).sum()
                                    })
                                    .collect(),
                            };
                            let h = coefficients(&code, &m1, &m2, m, nb);
                            let xs = &x[((bi * cin + i) * pin + s) * n_in
                                ..((bi * cin + i) * pin + s + 1) * n_in];
                            for (bb, hb) in h.iter().enumerate() {
                                for p in 0..n_out {
                                    let row = &blocks
                                        [(bb * n_out + p) * n_in..(bb * n_out + p + 1) * n_in];
                                    yo[p] += hb
                                        * row
                                            .iter()
                                            .zip(xs)
                                            .map(|(u, v)| u * *v as f64)
                                            .sum::<f64>();
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_close(&format!("{kind:?} ClonedConv"), &got, &want, 1e-5);
        // A wrong input shape is an error, not a panic.
        let mut tape = Tape::no_grad();
        let bad = tape.input(Tensor::zeros(&g, &[1, cin + 1, d, d]).unwrap());
        assert!(layer.forward(&mut tape, bad).is_err());
    }
}

#[test]
fn kl_penalty_delta_form_value_and_gradient() {
    kl_cases(&gpu());
}

/// The KL penalty in δ form, value and gradient, against the f64 reference.
fn kl_cases(g: &Arc<Gpu>) {
    let g = g.clone();
    let mut rg = rng(46);
    let shape = [9usize, 5, 7];
    for axis in 0..3 {
        let w0 = rg.normal_vec(shape.iter().product());
        let w06 = to64(&w0);
        // Zero at init, with zero gradient.
        let t0 = Tensor::from_slice(&g, &shape, &w0).unwrap();
        let (v, gr) = kl::kl(&t0, &t0, axis).unwrap();
        assert_eq!(v.item().unwrap(), 0.0);
        assert!(gr.to_vec().unwrap().iter().all(|&x| x == 0.0));
        // Where the naive form is still accurate (δ ~ 1e-2), the δ form agrees with it, and the
        // reference gradient agrees with finite differences.
        let d2: Vec<f64> = rg
            .normal_vec(w0.len())
            .iter()
            .map(|&v| 1e-2 * v as f64)
            .collect();
        let w2: Vec<f64> = w06.iter().zip(&d2).map(|(a, b)| a + b).collect();
        let (kd, gd) = r::kl::kl_delta(&w2, &w06, &shape, axis);
        let kn = r::kl::kl_naive(&w2, &w06, &shape, axis);
        assert!(
            (kd - kn).abs() <= 1e-9 * kn.abs(),
            "delta {kd} vs naive {kn}"
        );
        let fd = finite_diff(&w2, 1e-5, |x| r::kl::kl_delta(x, &w06, &shape, axis).0);
        assert!(
            rel_err64(&gd, &fd) <= 1e-6,
            "KL grad vs FD: {:.2e}",
            rel_err64(&gd, &fd)
        );
        // At β-relevant scales (δ ~ 1e-6) the GPU's δ form matches the f64 reference on the same
        // f32 values; the naive f32 form would lose every digit here.
        for scale in [1e-2f32, 1e-6] {
            let w: Vec<f32> = w0.iter().map(|&a| a + scale * rg.normal()).collect();
            let (kv, kg) = kl::kl(&Tensor::from_slice(&g, &shape, &w).unwrap(), &t0, axis).unwrap();
            let (want_v, want_g) = r::kl::kl_delta(&to64(&w), &w06, &shape, axis);
            let (tv, tg) = kl_tol(&to64(&w), &w06, &shape, axis, want_v);
            let err = (kv.item().unwrap() as f64 - want_v).abs();
            assert!(
                err <= tv,
                "scale {scale}: KL {} vs {want_v} (error {err:.2e} > {tv:.2e})",
                kv.item().unwrap()
            );
            assert_close(
                &format!("KL grad at scale {scale}"),
                &kg.to_vec().unwrap(),
                &want_g,
                tg,
            );
        }
    }
    // The taped form scales by β.
    let w0 = rg.normal_vec(20);
    let t0 = Tensor::from_slice(&g, &[4, 5], &w0).unwrap();
    let w: Vec<f32> = w0.iter().map(|&a| a + 1e-3 * rg.normal()).collect();
    let mut tape = Tape::new();
    let vw = tape.leaf(Tensor::from_slice(&g, &[4, 5], &w).unwrap());
    let k = kl::kl_t(&mut tape, vw, &t0, 1, 1e6).unwrap();
    tape.backward(k).unwrap();
    let (want_v, want_g) = r::kl::kl_delta(&to64(&w), &to64(&w0), &[4, 5], 1);
    let kv = tape.value(k).item().unwrap() as f64;
    // β scales by one more rounding.
    let (tv, tg) = kl_tol(&to64(&w), &to64(&w0), &[4, 5], 1, want_v);
    let ulp = 2f64.powi(-24);
    assert!((kv - 1e6 * want_v).abs() <= 1e6 * tv + ulp * kv.abs());
    let wg: Vec<f64> = want_g.iter().map(|v| v * 1e6).collect();
    assert_close(
        "β KL grad",
        &tape.grad(vw).unwrap().to_vec().unwrap(),
        &wg,
        tg + ulp,
    );
    // β is applied inside the kernel (no pass of its own): the same as scaling `kl`'s outputs
    // afterwards, the unfused composition, but for a rounding or two.
    let (v1, g1) = kl::kl(tape.value(vw), &t0, 1).unwrap();
    let v1 = 1e6 * v1.item().unwrap() as f64;
    assert!((kv - v1).abs() <= 4.0 * ulp * v1.abs(), "{kv} vs {v1}");
    let g1: Vec<f64> = g1
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| 1e6 * v as f64)
        .collect();
    assert_close(
        "β KL grad against the unfused composition",
        &tape.grad(vw).unwrap().to_vec().unwrap(),
        &g1,
        4.0 * ulp,
    );
}

#[test]
fn end_to_end_lift_p4_clone_and_teacher_sourced_clone_learn() {
    let g = gpu();
    // Lift(6) → P4(4), 45-vector codes: the composition's mean square is 9 · 36 = 324 (what an
    // all-zero output scores). From scratch the composed loss falls slowly; within this budget it
    // must fall well below that baseline.
    let cfg = CloneConfig {
        filters: 8,
        batch: 16,
        lr: 3e-3,
        lr_decay: 1.0,
        ..small_cfg(OperatorKind::Lift, 9, 300)
    };
    let (lift, p4, stats) =
        symclone::clone::clone_lift_p4(&g, &cfg, None, 50, &mut |_, _| {}).unwrap();
    assert_eq!((lift.d, p4.d), (6, 4));
    eprintln!("lift+p4 from scratch: best {:.3e}", stats.best_loss);
    assert!(stats.best_loss / 324.0 <= 0.9, "{:?}", stats.history);
    // Warm-started from separately cloned layers it starts as exact as their composition and the
    // joint training improves on it.
    let (l1, _) = clone_random(
        &g,
        &small_cfg(OperatorKind::Lift, 9, 500),
        100,
        &mut |_, _| {},
    )
    .unwrap();
    let (p1, _) = clone_random(
        &g,
        &CloneConfig {
            d: 4,
            ..small_cfg(OperatorKind::P4, 9, 500)
        },
        100,
        &mut |_, _| {},
    )
    .unwrap();
    let cfg = CloneConfig {
        filters: 8,
        batch: 16,
        lr: 1e-4,
        ..small_cfg(OperatorKind::Lift, 9, 100)
    };
    // (the from-scratch assertion above is loose on purpose: 300 iterations is far from convergence)
    let (_, _, warm) =
        symclone::clone::clone_lift_p4(&g, &cfg, Some((&l1, &p1)), 50, &mut |_, _| {}).unwrap();
    eprintln!("lift+p4 warm: {:?}", warm.history);
    assert!(
        warm.history[0].1 / 324.0 <= 2e-2 && warm.final_loss < warm.history[0].1,
        "{:?}",
        warm.history
    );
    // Teacher-sourced: codes from a "teacher" layer and its feature maps as inputs (here random
    // codes over 3 input channels and positive maps, as ReLU features are).
    let mut rg = rng(47);
    let (cin, n_maps, d) = (3usize, 20usize, 6usize);
    let channels: Vec<usize> = (0..6).map(|i| i % cin).collect();
    let codes = rg.normal_vec(channels.len() * 36);
    let feats: Vec<f32> = rg
        .normal_vec(n_maps * cin * 4 * d * d)
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    let cfg = CloneConfig {
        filters: 8,
        batch: 16,
        ..small_cfg(OperatorKind::P4, 9, 200)
    };
    let (op, st) = symclone::clone::clone_from_teacher(
        &g,
        &cfg,
        &codes,
        &channels,
        &feats,
        cin,
        50,
        &mut |_, _| {},
    )
    .unwrap();
    eprintln!(
        "teacher-sourced p4: first {:.3e}, best {:.3e}",
        st.history[0].1, st.best_loss
    );
    assert_eq!(op.d, d);
    assert!(st.best_loss < st.history[0].1 / 100.0, "{:?}", st.history);
    // Codes or maps that do not fit are an error.
    assert!(symclone::clone::clone_from_teacher(
        &g,
        &cfg,
        &codes[1..],
        &channels,
        &feats,
        cin,
        50,
        &mut |_, _| {}
    )
    .is_err());
}

#[test]
fn the_inputs_loss_is_the_sampled_loss_without_input_noise() {
    let g = gpu();
    let mut rg = rng(48);
    for kind in [OperatorKind::Z2, OperatorKind::Lift, OperatorKind::P4] {
        // A half-trained operator: random blocks, so the loss is far from zero.
        let op = ClonedOperator::new(&g, kind, 6, 9, 4, &mut rg).unwrap();
        op.blocks
            .value()
            .write_slice(
                &rg.normal_vec(op.blocks.numel())
                    .iter()
                    .map(|v| 0.05 * v)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let codes = rg.normal_vec(4 * kind.code_len());
        let (_, n_in) = ClonedOperator::io(6);
        let o = 4usize;
        let shifts = Tensor::from_slice(&g, &[9, o * o, n_in], &shift_blocks(6)).unwrap();
        // Expected form: mse(W_s, W_t) · in_planes · n_in.
        let mut tape = Tape::no_grad();
        let c = tape.input(Tensor::from_slice(&g, &[4, kind.code_len()], &codes).unwrap());
        let ws = op.dense_t(&mut tape, c).unwrap();
        let wt = symclone::clone::operator::true_dense(&g, kind, 6, &codes, &shifts).unwrap();
        let expected = symclone::ops::loss::mse(tape.value(ws), &wt)
            .unwrap()
            .item()
            .unwrap() as f64
            * (kind.in_planes() * n_in) as f64;
        // Sampled form with many noise images.
        let bs = 4000;
        let x = tape.input(random::randn(&g, &[4, kind.in_planes() * n_in, bs], 99).unwrap());
        let ys = op.forward_per_filter(&mut tape, c, x).unwrap();
        let yt =
            symclone::clone::operator::true_per_filter(&g, &mut tape, kind, 6, &codes, &shifts, x)
                .unwrap();
        let sampled = symclone::ops::loss::mse(tape.value(ys), tape.value(yt))
            .unwrap()
            .item()
            .unwrap() as f64;
        let rel = (sampled - expected).abs() / expected;
        assert!(
            rel < 0.05,
            "{kind:?}: expected {expected:.4e} vs sampled {sampled:.4e}"
        );
    }
    // And cloning on it converges like the sampled loss, also when an iteration's filters are
    // processed in chunks (as the paper's sizes need on most adapters).
    for chunk in [None, Some(5)] {
        let cfg = CloneConfig {
            loss: symclone::clone::CloneLoss::Inputs,
            chunk,
            ..small_cfg(OperatorKind::Z2, 9, 800)
        };
        assert_eq!(
            symclone::clone::train::filters_per_chunk(&g, &cfg),
            chunk.unwrap_or(16)
        );
        let (_, stats) = clone_random(&g, &cfg, 100, &mut |_, _| {}).unwrap();
        assert!(
            stats.best_relative() <= 1e-4,
            "chunk {chunk:?}: {:?}",
            stats.history
        );
        assert!(
            (stats.target_mean_square - 9.0).abs() < 0.5,
            "{}",
            stats.target_mean_square
        );
    }
}

/// The cloned-operator kernels, ClonedConv and the KL penalty on a device opened with WebGPU's
/// default limits, and a short clone of each kind (12 iterations) that must equal, log point for
/// log point, the same clone on the adapter's own limits (the chunking follows the limits; the
/// numbers must not). Learning itself is tested above.
#[test]
fn cloning_under_webgpu_default_limits() {
    let own = gpu();
    let g = gpu_webgpu(own.family());
    mix_cases(&g);
    cloned_conv_cases(&g);
    kl_cases(&g);
    for kind in [OperatorKind::Z2, OperatorKind::Lift, OperatorKind::P4] {
        let cfg = CloneConfig {
            filters: 4,
            batch: 8,
            ..small_cfg(kind, 9, 12)
        };
        let (_, a) = clone_random(&own, &cfg, 4, &mut |_, _| {}).unwrap();
        let (_, b) = clone_random(&g, &cfg, 4, &mut |_, _| {}).unwrap();
        assert_eq!(a.history, b.history, "{kind:?}");
        assert!(
            b.history.len() == 3 && b.history.iter().all(|h| h.1.is_finite()),
            "{kind:?}: {:?}",
            b.history
        );
    }
}

/// `penalty_into`, the kernel a KL model's step uses, for either penalty: two tensors' rows side
/// by side in one buffer (summing to their β·penalty values), one gradient written and one added
/// to a gradient already there, each β times the plain kernel's within a few roundings; rows past
/// the buffer are refused.
#[test]
fn penalty_into_writes_rows_side_by_side_and_adds_to_a_gradient() {
    let g = gpu();
    let mut rg = rng(47);
    let beta = 5e10f32;
    let shapes = [[6usize, 9, 4], [3, 9, 2]];
    for kind in Penalty::ALL {
        let mut tensors = Vec::new();
        for s in shapes {
            let n = s.iter().product();
            let w0 = rg.normal_vec(n);
            let w: Vec<f32> = w0.iter().map(|&a| a + 1e-4 * rg.normal()).collect();
            tensors.push((
                Tensor::from_slice(&g, &s, &w).unwrap(),
                Tensor::from_slice(&g, &s, &w0).unwrap(),
            ));
        }
        let count: usize = tensors
            .iter()
            .map(|(w, _)| kl::kl_row_count(w, 1).unwrap())
            .sum();
        assert_eq!(count, 6 * 4 + 3 * 2);
        let rows = Tensor::zeros(&g, &[count]).unwrap();
        let prior = rg.normal_vec(3 * 9 * 2);
        let added = Tensor::from_slice(&g, &shapes[1], &prior).unwrap();
        let written = Tensor::zeros(&g, &shapes[0]).unwrap();
        let (w, w0) = &tensors[0];
        kl::penalty_into(kind, w, w0, 1, beta, &rows, 0, &written, false).unwrap();
        let (w, w0) = &tensors[1];
        kl::penalty_into(kind, w, w0, 1, beta, &rows, 24, &added, true).unwrap();
        let got_rows = rows.to_vec().unwrap();
        let mut want_sum = 0.0f64;
        for (i, ((w, w0), grad)) in tensors.iter().zip([&written, &added]).enumerate() {
            let (v, kg) = kl::penalty(kind, w, w0, 1, 1.0).unwrap();
            want_sum += beta as f64 * v.item().unwrap() as f64;
            let kg = kg.to_vec().unwrap();
            let got = grad.to_vec().unwrap();
            for (j, (&a, &b)) in got.iter().zip(&kg).enumerate() {
                let want = if i == 0 {
                    b * beta
                } else {
                    prior[j] + b * beta
                };
                let tol =
                    4.0 * f32::EPSILON * want.abs().max(prior.get(j).copied().unwrap_or(0.0).abs());
                assert!(
                    (a - want).abs() <= tol,
                    "{kind:?} tensor {i} element {j}: {a} vs {want}"
                );
            }
        }
        let sum: f64 = got_rows.iter().map(|&v| v as f64).sum();
        assert!(
            (sum - want_sum).abs() <= 1e-5 * want_sum.abs(),
            "{kind:?} rows sum {sum} vs {want_sum}"
        );
        let (w, w0) = &tensors[1];
        assert!(kl::penalty_into(kind, w, w0, 1, beta, &rows, 25, &added, true).is_err());
    }
}

/// The squared-distance penalty against the f64 reference (value and gradient, the reference's
/// gradient against finite differences); unlike the KL, it sees a shift added along the axis,
/// and `drift_split` puts such a shift wholly in the common share and a zero-mean drift wholly
/// outside it.
#[test]
fn l2_penalty_sees_the_shift_the_kl_cannot() {
    let g = gpu();
    let mut rg = rng(48);
    let shape = [9usize, 5, 7];
    let n: usize = shape.iter().product();
    let w0 = rg.normal_vec(n);
    let w06 = to64(&w0);
    let t0 = Tensor::from_slice(&g, &shape, &w0).unwrap();
    for scale in [1e-2f32, 1e-6] {
        let w: Vec<f32> = w0.iter().map(|&a| a + scale * rg.normal()).collect();
        let (v, gr) = kl::penalty(
            L2,
            &Tensor::from_slice(&g, &shape, &w).unwrap(),
            &t0,
            1,
            1.0,
        )
        .unwrap();
        let (want_v, want_g) = r::kl::l2(&to64(&w), &w06);
        let err = (v.item().unwrap() as f64 - want_v).abs() / want_v;
        assert!(
            err <= 1e-5,
            "scale {scale}: l2 {} vs {want_v}",
            v.item().unwrap()
        );
        assert_close(
            "l2 gradient",
            &gr.to_vec().unwrap(),
            &want_g,
            4.0 * f32::EPSILON as f64,
        );
        let fd = finite_diff(&to64(&w), 1e-7, |x| r::kl::l2(x, &w06).0);
        assert!(rel_err64(&want_g, &fd) <= 1e-5, "l2 grad vs FD");
    }
    // A shift of 0.1 along axis 1 (the same value for all 5 entries of each row).
    let shifted: Vec<f32> = w0.iter().map(|&a| a + 0.1).collect();
    let ts = Tensor::from_slice(&g, &shape, &shifted).unwrap();
    let (kv, _) = kl::penalty(Kl, &ts, &t0, 1, 1.0).unwrap();
    let (lv, _) = kl::penalty(L2, &ts, &t0, 1, 1.0).unwrap();
    assert!(
        kv.item().unwrap().abs() <= 1e-9,
        "KL saw the shift: {}",
        kv.item().unwrap()
    );
    assert!(
        lv.item().unwrap() >= 0.009,
        "l2 missed the shift: {}",
        lv.item().unwrap()
    );
    let (l2, share) = symclone::models::drift_split(&shifted, &w0, &shape, 1);
    assert!(
        (l2 - 0.01).abs() <= 1e-6 && (share - 1.0).abs() <= 1e-6,
        "{l2} {share}"
    );
    // A drift with zero mean along axis 1: no common share.
    let mut zero_mean = w0.clone();
    for o in 0..9 {
        for j in 0..7 {
            for (i, d) in [0.2f32, -0.1, -0.1, 0.05, -0.05].iter().enumerate() {
                zero_mean[(o * 5 + i) * 7 + j] += d;
            }
        }
    }
    let (_, share) = symclone::models::drift_split(&zero_mean, &w0, &shape, 1);
    assert!(share <= 1e-6, "common share {share} of a zero-mean drift");
    assert_eq!(
        symclone::models::drift_split(&w0, &w0, &shape, 1),
        (0.0, 0.0)
    );
}
