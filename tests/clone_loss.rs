//! The exact expected cloning loss (SPEC §3, Gram form) against the sampled loss and against its
//! f64 reference (value, finite differences, the closed-form block gradient), cloning on it, and
//! the clonability bound.

mod common;
use common::*;
use symclone::autograd::Tape;
use symclone::clone::bound::{clonability_bound, discarded_share, operator_spectrum, tap_gram};
use symclone::clone::exact::ExactLoss;
use symclone::clone::operator::{shift_blocks, true_per_filter};
use symclone::clone::{clone_random, CloneConfig, CloneLoss, ClonedOperator, OperatorKind};
use symclone::ops::random;
use symclone::reference::cloned::{coefficients, exact_clone_loss, true_tap_codes};
use symclone::reference::linalg::sym_eigenvalues;
use symclone::reference::{finite_diff, rel_err, rel_err64, to64};
use symclone::tensor::Tensor;

/// Every kind: T(2), C4 (lift, P4) and D4 (lift-d4, p4m).
const KINDS: [OperatorKind; 5] = OperatorKind::ALL;

/// An operator away from both zero and the truth: blocks Gaussian with standard deviation `sd`.
fn scrambled(
    kind: OperatorKind,
    d: usize,
    nb: usize,
    m: usize,
    sd: f32,
    seed: u64,
) -> ClonedOperator {
    let g = gpu();
    let mut rg = rng(seed);
    let op = ClonedOperator::new(&g, kind, d, nb, m, &mut rg).unwrap();
    let b: Vec<f32> = rg
        .normal_vec(op.blocks.numel())
        .iter()
        .map(|v| sd * v)
        .collect();
    op.blocks.value().write_slice(&b).unwrap();
    op
}

fn exact_value(op: &ClonedOperator) -> f64 {
    let g = gpu();
    let e = ExactLoss::new(&g, op.kind, op.d).unwrap();
    let mut tape = Tape::no_grad();
    let l = e.loss_t(&mut tape, op).unwrap();
    tape.value(l).item().unwrap() as f64
}

/// The sampled loss (SPEC §3) of `f` filters with `bs` images each: its mean over the filters and
/// the standard error of that mean (each filter's code and images are independent draws).
fn sampled_mean_and_se(op: &ClonedOperator, f: usize, bs: usize, seed: u64) -> (f64, f64) {
    let g = gpu();
    let (kind, d) = (op.kind, op.d);
    let (n_out, n_in) = ClonedOperator::io(d);
    let shifts = Tensor::from_slice(&g, &[9, n_out, n_in], &shift_blocks(d)).unwrap();
    let mut rg = rng(seed);
    let mut per_filter = Vec::with_capacity(f);
    let chunk = 128;
    for start in (0..f).step_by(chunk) {
        let fc = chunk.min(f - start);
        let codes = rg.normal_vec(fc * kind.code_len());
        let mut tape = Tape::no_grad();
        let c = tape.input(Tensor::from_slice(&g, &[fc, kind.code_len()], &codes).unwrap());
        let xt = random::randn(&g, &[fc, kind.in_planes() * n_in, bs], rg.next_u64()).unwrap();
        let x = tape.input(xt);
        let ys = op.forward_per_filter(&mut tape, c, x).unwrap();
        let yt = true_per_filter(&g, &mut tape, kind, d, &codes, &shifts, x).unwrap();
        let (a, b) = (
            tape.value(ys).to_vec().unwrap(),
            tape.value(yt).to_vec().unwrap(),
        );
        let per = a.len() / fc;
        for i in 0..fc {
            let s: f64 = (i * per..(i + 1) * per)
                .map(|k| (a[k] as f64 - b[k] as f64).powi(2))
                .sum();
            per_filter.push(s / per as f64);
        }
    }
    let n = per_filter.len() as f64;
    let mean = per_filter.iter().sum::<f64>() / n;
    let var = per_filter.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn the_exact_loss_is_the_mean_of_the_sampled_loss() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let op = scrambled(kind, 6, 9, 4, 0.3, 60 + i as u64);
        let exact = exact_value(&op);
        let (mean, se) = sampled_mean_and_se(&op, 1024, 16, 70 + i as u64);
        // The sample mean is within 4 standard errors of its expectation but for a 6e-5 chance;
        // the f32 rounding of either side (1e-6 relative) is far below one standard error.
        let z = (mean - exact) / se;
        eprintln!("{kind:?}: exact {exact:.5e}, sampled {mean:.5e} ± {se:.1e} (z = {z:.2})");
        assert!(
            z.abs() < 4.0,
            "{kind:?}: exact {exact:.5e} vs sampled {mean:.5e} ± {se:.2e} (z = {z:.2})"
        );
    }
}

/// The f64 reference's arguments for an operator.
struct Host {
    blocks: Vec<f64>,
    m1: Vec<f64>,
    m2: Vec<f64>,
    t: Option<Vec<f64>>,
}

fn host(op: &ClonedOperator) -> Host {
    let v = |p: &symclone::Param| to64(&p.value().to_vec().unwrap());
    Host {
        blocks: v(&op.blocks),
        m1: v(&op.m1),
        m2: v(&op.m2),
        t: op.t.as_ref().map(v),
    }
}

fn reference(op: &ClonedOperator, h: &Host) -> f64 {
    exact_clone_loss(
        op.kind.in_planes(),
        op.kind.out_planes(),
        op.d,
        &h.blocks,
        op.nb,
        &h.m1,
        &h.m2,
        op.m,
        h.t.as_deref(),
    )
}

/// SPEC §3's closed-form block gradient `dL/dB = (2 H B − 2 Q S) / (out_planes·n_out)` with
/// `H = Σ aᵀa`, `Q = Σ aᵀe` over the rows (unit code, r[, s]), in f64.
fn closed_form_block_grad(op: &ClonedOperator, h: &Host) -> Vec<f64> {
    let (n_out, n_in) = ClonedOperator::io(op.d);
    let (nb, n) = (op.nb, n_out * n_in);
    let code_len = op.kind.code_len();
    let mut hh = vec![0.0; nb * nb];
    let mut q = vec![0.0; nb * 9];
    for i in 0..code_len {
        let mut unit = vec![0.0; code_len];
        unit[i] = 1.0;
        let truth = true_tap_codes(&unit, op.kind.in_planes(), op.kind.out_planes());
        for (p, e) in truth.iter().enumerate() {
            let tc: Vec<f64> = match &h.t {
                None => unit.clone(),
                Some(t) => (0..9)
                    .map(|j| {
                        (0..code_len)
                            .map(|k| t[(p * 9 + j) * code_len + k] * unit[k])
                            .sum()
                    })
                    .collect(),
            };
            let a = coefficients(&tc, &h.m1, &h.m2, op.m, nb);
            for b in 0..nb {
                for c in 0..nb {
                    hh[b * nb + c] += a[b] * a[c];
                }
                for j in 0..9 {
                    q[b * 9 + j] += a[b] * e[j];
                }
            }
        }
    }
    let s = to64(&shift_blocks(op.d));
    let norm = (op.kind.out_planes() * n_out) as f64;
    (0..nb * n)
        .map(|t| {
            let (b, e) = (t / n, t % n);
            let hb: f64 = (0..nb).map(|c| hh[b * nb + c] * h.blocks[c * n + e]).sum();
            let qs: f64 = (0..9).map(|j| q[b * 9 + j] * s[j * n + e]).sum();
            2.0 * (hb - qs) / norm
        })
        .collect()
}

#[test]
fn the_exact_loss_and_its_gradient_match_the_f64_reference() {
    let g = gpu();
    for (i, kind) in KINDS.into_iter().enumerate() {
        // Ragged sizes: d = 5 (9 × 25 blocks), 4 blocks, m = 3.
        let op = scrambled(kind, 5, 4, 3, 0.5, 80 + i as u64);
        let h = host(&op);
        let want = reference(&op, &h);
        let e = ExactLoss::new(&g, kind, 5).unwrap();
        let mut tape = Tape::new();
        let l = e.loss_t(&mut tape, &op).unwrap();
        let got = tape.value(l).item().unwrap() as f64;
        tape.backward(l).unwrap();
        // The loss is a chain of sums of at most n_out·n_in = 225 terms (B Sᵀ, B⊥ B⊥ᵀ), then
        // ≤ 16·36 rows; each f32 sum adds about sum_tol(K) relative, and the terms are positive
        // (no cancellation in this form), so their sum bounds the error.
        let rows = kind.codes_per_filter() * kind.code_len();
        let tol_value = sum_tol(225) + sum_tol(225) + sum_tol(rows);
        let rel = (got - want).abs() / want;
        assert!(
            rel <= tol_value,
            "{kind:?}: loss {got:.6e} vs reference {want:.6e} ({rel:.1e})"
        );

        // Gradients: the tape's against central differences of the reference, at 24 random
        // coordinates of each tensor; the blocks' also against the closed form.
        let mut rg = rng(90 + i as u64);
        let params: Vec<(&str, &symclone::Param)> = {
            let mut v = vec![("blocks", &op.blocks), ("m1", &op.m1), ("m2", &op.m2)];
            if let Some(t) = &op.t {
                v.push(("t", t));
            }
            v
        };
        let closed = closed_form_block_grad(&op, &h);
        for (pi, (name, p)) in params.iter().enumerate() {
            let tape_grad = p.grad().unwrap().to_vec().unwrap();
            let mut coords: Vec<usize> = Vec::new();
            while coords.len() < 24.min(p.numel()) {
                let c = rg.below(p.numel());
                if !coords.contains(&c) {
                    coords.push(c); // distinct: a repeated coordinate would be set twice
                }
            }
            let mut values = match pi {
                0 => h.blocks.clone(),
                1 => h.m1.clone(),
                2 => h.m2.clone(),
                _ => h.t.clone().unwrap(),
            };
            let picked: Vec<f64> = coords.iter().map(|&c| values[c]).collect();
            let fd = finite_diff(&picked, 1e-5, |x| {
                for (k, &c) in coords.iter().enumerate() {
                    values[c] = x[k];
                }
                let mut hh = Host {
                    blocks: h.blocks.clone(),
                    m1: h.m1.clone(),
                    m2: h.m2.clone(),
                    t: h.t.clone(),
                };
                match pi {
                    0 => hh.blocks = values.clone(),
                    1 => hh.m1 = values.clone(),
                    2 => hh.m2 = values.clone(),
                    _ => hh.t = Some(values.clone()),
                }
                reference(&op, &hh)
            });
            let tg: Vec<f32> = coords.iter().map(|&c| tape_grad[c]).collect();
            // The gradient is the same chain run backwards: twice the value's sums.
            let tol = 2.0 * tol_value;
            assert_close(
                &format!("{kind:?} d{name}: tape vs finite differences"),
                &tg,
                &fd,
                tol,
            );
            if pi == 0 {
                let cf: Vec<f64> = coords.iter().map(|&c| closed[c]).collect();
                let e = rel_err64(&cf, &fd);
                assert!(
                    e <= 1e-7,
                    "{kind:?}: closed-form dB vs finite differences {e:.1e}"
                );
                assert_close(
                    &format!("{kind:?} dblocks: tape vs closed form"),
                    &tape_grad,
                    &closed,
                    tol,
                );
            }
        }
    }
}

#[test]
fn cloning_on_the_exact_loss_reaches_1e_6_with_9_blocks_and_stops_at_the_bound_with_7() {
    let g = gpu();
    for kind in KINDS {
        for (nb, iters) in [(9usize, 600usize), (7, 300)] {
            let cfg = CloneConfig {
                loss: CloneLoss::Exact,
                nb,
                iters,
                accum: 1,
                lr: 0.05,
                lr_decay: 0.995,
                warmup: 10,
                ..CloneConfig::paper(kind, 6)
            };
            let (_, stats) = clone_random(&g, &cfg, 50, &mut |_, _| {}).unwrap();
            let rel = stats.best_relative() as f64;
            let bound = clonability_bound(kind, 6, nb).unwrap();
            eprintln!(
                "{kind:?} nb {nb}: relative {rel:.2e} (bound {bound:.4}) in {:.1} s",
                stats.seconds
            );
            // The exact loss is the expectation of the sampled one: its all-zero value is the
            // targets' mean square: the code length (9 for Z2 and the lifts, 36 for P4, 72 for
            // p4m).
            let ms = kind.code_len() as f32;
            assert_eq!(stats.target_mean_square, ms);
            if nb == 9 {
                assert!(rel <= 1e-6, "{kind:?} nb 9: {:?}", stats.history);
            } else {
                // No clone gets below the bound (f32 rounding of the loss: 1e-6 relative).
                assert!(
                    rel >= bound - 1e-6,
                    "{kind:?} nb {nb}: {rel} below the bound {bound}"
                );
            }
        }
    }
}

#[test]
fn the_clonability_bound_of_3x3_taps_is_9_minus_nb_over_9() {
    for kind in KINDS {
        for d in [3usize, 6, 28] {
            for nb in 1..=12 {
                let want = (9.0 - nb as f64).max(0.0) / 9.0;
                let got = clonability_bound(kind, d, nb).unwrap();
                assert!(
                    (got - want).abs() <= 1e-12,
                    "{kind:?} d {d} nb {nb}: {got} vs {want}"
                );
            }
        }
    }
    // The tap matrices are orthogonal with n_out ones each.
    let ks = tap_gram(7);
    for j in 0..9 {
        for k in 0..9 {
            assert_eq!(ks[j * 9 + k], if j == k { 25.0 } else { 0.0 });
        }
    }
    // A teacher with a non-flat spectrum (three operators of norms² 9n, 4n, n): what is left
    // outside the best span.
    let mut e = vec![0.0; 3 * 9];
    for (r, w) in [3.0, 2.0, 1.0].iter().enumerate() {
        e[r * 9 + r] = *w;
    }
    let spec = operator_spectrum(&e, &tap_gram(7)).unwrap();
    assert!(
        (spec[0] - 225.0).abs() < 1e-9 && (spec[1] - 100.0).abs() < 1e-9,
        "{spec:?}"
    );
    assert!((discarded_share(&spec, 1) - 5.0 / 14.0).abs() < 1e-12);
    assert!((discarded_share(&spec, 2) - 1.0 / 14.0).abs() < 1e-12);
    assert_eq!(discarded_share(&spec, 3), 0.0);
    assert!(clonability_bound(OperatorKind::P4, 2, 9).is_err());
}

#[test]
fn jacobi_eigenvalues_of_a_known_matrix() {
    // The second-difference matrix tridiag(−1, 2, −1) of size n: 2 − 2 cos(kπ/(n+1)).
    let n = 9;
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = 2.0;
        if i + 1 < n {
            a[i * n + i + 1] = -1.0;
            a[(i + 1) * n + i] = -1.0;
        }
    }
    let got = sym_eigenvalues(&a, n);
    let mut want: Vec<f64> = (1..=n)
        .map(|k| 2.0 - 2.0 * (k as f64 * std::f64::consts::PI / (n + 1) as f64).cos())
        .collect();
    want.sort_by(|x, y| y.total_cmp(x));
    assert!(rel_err64(&got, &want) < 1e-13, "{got:?} vs {want:?}");
}

#[test]
fn the_tap_kernels_match_the_dense_tap_matrices_and_are_adjoint() {
    use symclone::ops::cloned::{taps, taps_adj, taps_adj_to, taps_outside};
    use symclone::reference::cloned as rc;
    let g = gpu();
    let mut rg = rng(77);
    for (nb, k, d) in [
        (1usize, 3usize, 3usize),
        (9, 3, 7),
        (10, 3, 12),
        (3, 1, 5),
        (2, 5, 9),
    ] {
        let w = d + 1 - k;
        let n = nb * w * w * d * d;
        let b = rg.normal_vec(n);
        let x = rg.normal_vec(nb * k * k);
        let gb = Tensor::from_slice(&g, &[nb, w * w, d * d], &b).unwrap();
        let gx = Tensor::from_slice(&g, &[nb, k * k], &x).unwrap();
        let c = taps(&gb, k, d).unwrap().to_vec().unwrap();
        let want = rc::taps(&to64(&b), nb, k, d);
        let err = rel_err64(&to64(&c), &want);
        assert!(err < 1e-6, "taps nb {nb} k {k} d {d}: {err:.2e}");
        let xs = taps_adj(&gx, k, d).unwrap();
        assert_eq!(xs.shape(), [nb, w * w, d * d]);
        let xs = xs.to_vec().unwrap();
        // Exact: each position holds one tap's value or zero.
        assert_eq!(
            to64(&xs),
            rc::taps_adj(&to64(&x), nb, k, d),
            "nb {nb} k {k} d {d}"
        );
        // Over an existing tensor (here the random blocks): every element written.
        let over = gb.deep_clone().unwrap();
        taps_adj_to(&gx, &over, k, d).unwrap();
        assert_eq!(over.to_vec().unwrap(), xs, "in place: nb {nb} k {k} d {d}");
        // B − X S in one pass: each entry one f32 subtraction.
        let outside = taps_outside(&gb, &gx, k, d).unwrap();
        assert_eq!(outside.shape(), [nb, w * w, d * d]);
        let want_out: Vec<f32> = b.iter().zip(&xs).map(|(p, q)| p - q).collect();
        assert_eq!(outside.to_vec().unwrap(), want_out, "nb {nb} k {k} d {d}");
        // <taps(B), X> = <B, taps_adj(X)>.
        let lhs: f64 = want.iter().zip(&x).map(|(a, b)| a * *b as f64).sum();
        let rhs: f64 = b.iter().zip(&xs).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-9 * lhs.abs().max(1.0),
            "{lhs} {rhs}"
        );
    }
    let bad = Tensor::from_slice(&g, &[2, 10], &[0.0; 20]).unwrap();
    assert!(taps(&bad, 3, 4).is_err() && taps_adj(&bad, 3, 4).is_err());
    let (b1, x1) = (
        Tensor::from_slice(&g, &[1, 4, 9], &[0.0; 36]).unwrap(),
        Tensor::from_slice(&g, &[2, 9], &[0.0; 18]).unwrap(),
    );
    assert!(taps_outside(&b1, &x1, 3, 3).is_err());
    assert!(taps_adj_to(&x1, &b1, 3, 3).is_err());
}

#[test]
fn the_gram_kernels_match_the_reference() {
    use symclone::ops::cloned::{gram, gram_backward, gram_lanes};
    use symclone::reference::cloned as rc;
    let g = gpu();
    let mut rg = rng(78);
    // Ragged row blocks (1, 5, 9, 10 rows), fewer columns than lanes, and columns over many lanes
    // with a ragged last stride.
    for (nb, cols) in [
        (1usize, 1usize),
        (5, 7),
        (9, 1000),
        (10, 70_001),
        (4, 8192 * 64 + 3),
    ] {
        let b = rg.normal_vec(nb * cols);
        let h = rg.normal_vec(nb * nb);
        let gb = Tensor::from_slice(&g, &[nb, cols], &b).unwrap();
        let gh = Tensor::from_slice(&g, &[nb, nb], &h).unwrap();
        let (b6, h6) = (to64(&b), to64(&h));
        let k = gram(&gb).unwrap();
        assert_eq!(k.shape(), [nb, nb]);
        let k = k.to_vec().unwrap();
        let what = format!("gram {nb}×{cols} ({} lanes)", gram_lanes(cols));
        assert_sum_close(
            &what,
            &k,
            &rc::gram(&b6, nb),
            &rc::gram(&abs64(&b6), nb),
            cols,
        );
        // Exactly symmetric.
        for r in 0..nb {
            for c in 0..nb {
                assert_eq!(k[r * nb + c].to_bits(), k[c * nb + r].to_bits(), "{what}");
            }
        }
        let db = gram_backward(&gh, &gb).unwrap();
        assert_eq!(db.shape(), [nb, cols]);
        assert_sum_close(
            &format!("gram backward {nb}×{cols}"),
            &db.to_vec().unwrap(),
            &rc::gram_backward(&h6, &b6, nb),
            &rc::gram_backward(&abs64(&h6), &abs64(&b6), nb),
            2 * nb,
        );
    }
    let v = Tensor::from_slice(&g, &[6], &[0.0; 6]).unwrap();
    let m = Tensor::from_slice(&g, &[2, 3], &[0.0; 6]).unwrap();
    assert!(gram(&v).is_err() && gram_backward(&m, &m).is_err());
}

/// The exact loss trained in the span of the taps (`ExactForm::Span`, what `clone_random` does)
/// takes the steps of the dense blocks (`ExactForm::Dense`) up to f32 rounding: the same loss at
/// every iteration and the same blocks at the end, those of the span form lying exactly in the
/// span of the taps (nothing outside it).
#[test]
fn the_span_form_of_the_exact_loss_takes_the_dense_forms_steps() {
    use symclone::clone::{clone_random_with, ExactForm};
    let g = gpu();
    for (kind, d) in [
        (OperatorKind::Z2, 5usize),
        (OperatorKind::Lift, 6),
        (OperatorKind::P4, 6),
        (OperatorKind::LiftD4, 6),
        (OperatorKind::P4m, 6),
    ] {
        let iters = 40;
        // p4m's first steps overshoot further (its codes are twice P4's length): in 40 steps its
        // loss falls by about 40 % (72 → 41) where the others' halve. Past 40 steps the two
        // forms' rounding drifts apart by more than 1e-3 in the blocks.
        let moved = if kind == OperatorKind::P4m { 0.7 } else { 0.5 };
        let cfg = CloneConfig {
            loss: CloneLoss::Exact,
            nb: 9,
            iters,
            accum: 1,
            lr: 0.05,
            lr_decay: 0.99,
            warmup: 10,
            ..CloneConfig::paper(kind, d)
        };
        let (span, s) = clone_random_with(&g, &cfg, ExactForm::Span, 1, &mut |_, _| {}).unwrap();
        let (dense, e) = clone_random_with(&g, &cfg, ExactForm::Dense, 1, &mut |_, _| {}).unwrap();
        assert_eq!(s.history.len(), iters);
        assert_eq!(e.history.len(), iters);
        // The loss must have moved for the comparison to mean anything.
        assert!(
            s.history[iters - 1].1 < moved * s.history[0].1,
            "{kind:?}: {:?}",
            s.history
        );
        for ((i, a), (_, b)) in s.history.iter().zip(&e.history) {
            assert!(
                ((a - b) / b).abs() <= 1e-3,
                "{kind:?} iteration {i}: span {a}, dense {b}"
            );
        }
        let sb = span.blocks.value().to_vec().unwrap();
        let db = dense.blocks.value().to_vec().unwrap();
        assert!(
            rel_err(&sb, &to64(&db)) <= 1e-3,
            "{kind:?}: {}",
            rel_err(&sb, &to64(&db))
        );
        let x = symclone::ops::cloned::taps(&span.blocks.value(), 3, d).unwrap();
        let x =
            symclone::ops::elementwise::affine(&x, 1.0 / ((d - 2) * (d - 2)) as f32, 0.0).unwrap();
        let outside = symclone::ops::cloned::taps_outside(&span.blocks.value(), &x, 3, d)
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(outside
            .iter()
            .all(|&v| v.abs() <= 1e-6 * sb.iter().fold(0f32, |m, v| m.max(v.abs()))));
        // The other parameters are the same tensors' values too.
        for (p, q) in span.params().iter().zip(dense.params()).skip(1) {
            let (a, b) = (p.value().to_vec().unwrap(), q.value().to_vec().unwrap());
            assert!(
                rel_err(&a, &to64(&b)) <= 1e-3,
                "{kind:?} {}: {}",
                p.name(),
                rel_err(&a, &to64(&b))
            );
        }
    }
}
