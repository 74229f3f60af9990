//! End to end: an MLP trained on the GPU (tape + kernels + AdamW) learns a synthetic classification
//! problem to ≥ 95 % held-out accuracy, and the same seed gives bit-identical results.

mod common;
use common::*;
use symclone::autograd::Param;
use symclone::autograd::Tape;
use symclone::nn::{Linear, Optimizer, OptimizerKind};
use symclone::ops::loss;
use symclone::tensor::Tensor;

/// Four classes in 8-D: the class is the quadrant of (x0 + x1·x2, x3 − x4·x5), a problem no
/// linear model solves.
fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rg = rng(seed);
    let mut xs = Vec::with_capacity(n * 8);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let x = rg.normal_vec(8);
        let a = x[0] + x[1] * x[2];
        let b = x[3] - x[4] * x[5];
        ys.push(u32::from(a > 0.0) + 2 * u32::from(b > 0.0));
        xs.extend(x);
    }
    (xs, ys)
}

fn train(seed: u64) -> (f32, Vec<f32>) {
    let g = gpu();
    let mut rg = rng(seed);
    let l1 = Linear::new(&g, "l1", 8, 64, &mut rg).unwrap();
    let l2 = Linear::new(&g, "l2", 64, 64, &mut rg).unwrap();
    let l3 = Linear::new(&g, "l3", 64, 4, &mut rg).unwrap();
    let params: Vec<Param> = [l1.params(), l2.params(), l3.params()].concat();
    let mut opt = Optimizer::new(OptimizerKind::adamw(1e-4), 3e-3, &params).with_clip(5.0);
    let (xs, ys) = data(4000, 1);
    let batch = 100;
    for _epoch in 0..30 {
        for bi in 0..4000 / batch {
            let xb = Tensor::from_slice(&g, &[batch, 8], &xs[bi * batch * 8..(bi + 1) * batch * 8])
                .unwrap();
            let yb = Tensor::from_u32(&g, &[batch], &ys[bi * batch..(bi + 1) * batch]).unwrap();
            let mut tape = Tape::new();
            let x = tape.input(xb);
            let h = l1.forward(&mut tape, x, true).unwrap();
            let h = l2.forward(&mut tape, h, true).unwrap();
            let o = l3.forward(&mut tape, h, false).unwrap();
            let l = loss::cross_entropy_t(&mut tape, o, &yb).unwrap();
            tape.backward(l).unwrap();
            opt.step().unwrap();
            opt.zero_grad();
        }
    }
    let (tx, ty) = data(1000, 2);
    let mut tape = Tape::no_grad();
    let x = tape.input(Tensor::from_slice(&g, &[1000, 8], &tx).unwrap());
    let h = l1.forward(&mut tape, x, true).unwrap();
    let h = l2.forward(&mut tape, h, true).unwrap();
    let o = l3.forward(&mut tape, h, false).unwrap();
    let correct =
        loss::correct_count(tape.value(o), &Tensor::from_u32(&g, &[1000], &ty).unwrap()).unwrap();
    (
        correct.item().unwrap() / 1000.0,
        l3.weight.value().to_vec().unwrap(),
    )
}

#[test]
fn mlp_learns_and_is_deterministic() {
    let (acc, w1) = train(3);
    assert!(acc >= 0.95, "held-out accuracy {acc}");
    let (acc2, w2) = train(3);
    assert_eq!(acc, acc2);
    assert!(
        w1.iter().zip(&w2).all(|(a, b)| a.to_bits() == b.to_bits()),
        "same seed, different weights"
    );
}

/// `Optimizer::with_tied`: a parameter tied over m entries takes the steps that m explicit copies
/// of it would, when each copy gets an equal share of its gradient (here a (4, 3) parameter used
/// only through the mean of its rows, its rows starting equal), with clipping and weight decay
/// in force and an ordinary parameter beside it in the clipped norm.
#[test]
fn a_tied_parameter_steps_as_its_entries_would() {
    let g = gpu();
    let start = [0.5f32, -1.0, 2.0];
    let target = Tensor::from_slice(&g, &[1, 3], &[1.0, 2.0, -3.0]).unwrap();
    let other_target = Tensor::from_slice(&g, &[2], &[0.3, -0.7]).unwrap();
    let quarter = Tensor::full(&g, &[1, 4], 0.25).unwrap();
    let sq = |tape: &mut Tape, a, b| {
        let d = symclone::ops::elementwise::sub_t(tape, a, b).unwrap();
        let d2 = symclone::ops::elementwise::mul_t(tape, d, d).unwrap();
        symclone::ops::reduce::sum_all_t(tape, d2, false).unwrap()
    };
    let run = |tied: bool| -> (Vec<f32>, Vec<f32>) {
        let rows = if tied { 1 } else { 4 };
        let p = Param::new(
            "p",
            Tensor::from_slice(&g, &[rows, 3], &start.repeat(rows)).unwrap(),
        );
        let o = Param::new("o", Tensor::from_slice(&g, &[2], &[1.0, 1.0]).unwrap());
        let mut opt =
            Optimizer::new(OptimizerKind::adamw(0.1), 0.1, &[p.clone(), o.clone()]).with_clip(0.5);
        if tied {
            opt = opt.with_tied(&p, 4).unwrap();
        }
        for _ in 0..15 {
            let mut tape = Tape::new();
            let pv = tape.param(&p);
            let mean = if tied {
                pv
            } else {
                let qv = tape.input(quarter.clone());
                symclone::ops::matmul::matmul_t(&mut tape, qv, pv, false, false, None, false)
                    .unwrap()
            };
            let tv = tape.input(target.clone());
            let ov = tape.param(&o);
            let otv = tape.input(other_target.clone());
            let a = sq(&mut tape, mean, tv);
            let b = sq(&mut tape, ov, otv);
            let l = symclone::ops::elementwise::lin_comb_t(&mut tape, a, b, 1.0, 1.0).unwrap();
            tape.backward(l).unwrap();
            opt.step().unwrap();
            opt.zero_grad();
        }
        (p.value().to_vec().unwrap(), o.value().to_vec().unwrap())
    };
    let (tied, tied_other) = run(true);
    let (copies, copies_other) = run(false);
    assert!(tied.iter().zip(&start).all(|(a, b)| (a - b).abs() > 0.1));
    for row in copies.chunks(3) {
        for (a, b) in row.iter().zip(&tied) {
            assert!((a - b).abs() <= 1e-5, "copies {copies:?}, tied {tied:?}");
        }
    }
    for (a, b) in copies_other.iter().zip(&tied_other) {
        assert!((a - b).abs() <= 1e-5, "{copies_other:?} vs {tied_other:?}");
    }
    // A parameter the optimiser does not hold, or no entries, is an error.
    let stray = Param::new("stray", Tensor::zeros(&g, &[1]).unwrap());
    let opt = Optimizer::new(OptimizerKind::adamw(0.0), 0.1, std::slice::from_ref(&stray));
    assert!(opt.with_tied(&stray, 0).is_err());
    let opt = Optimizer::new(OptimizerKind::adamw(0.0), 0.1, &[]);
    assert!(opt.with_tied(&stray, 2).is_err());
}

/// The optimiser steps many parameters a few launches at a time over one packed state: with six
/// trainable tensors of ragged sizes (two launches), a frozen one among them, and one tensor
/// left without a gradient on one step (skipped, its moments kept), every tensor ends where the
/// reference's per-tensor Adam (L2 decay) and SGD with momentum put it.
#[test]
fn an_optimiser_steps_each_of_many_parameters_as_the_reference_would() {
    use symclone::reference as r;
    let g = gpu();
    let sizes = [300usize, 7, 1, 129, 40, 2];
    for adam in [true, false] {
        let mut rg = rng(7);
        let values: Vec<Vec<f32>> = sizes.iter().map(|&n| rg.normal_vec(n)).collect();
        let params: Vec<Param> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Param::new(
                    format!("p{i}"),
                    Tensor::from_slice(&g, &[v.len()], v).unwrap(),
                )
            })
            .collect();
        let frozen = Param::frozen("f", Tensor::zeros(&g, &[5]).unwrap());
        let mut all = params.clone();
        all.insert(2, frozen.clone());
        let kind = if adam {
            OptimizerKind::adam(0.01)
        } else {
            OptimizerKind::Sgd {
                momentum: 0.9,
                weight_decay: 1e-3,
            }
        };
        let mut opt = Optimizer::new(kind, 0.05, &all);
        let mut want: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = values
            .iter()
            .map(|v| {
                let n = v.len();
                (
                    v.iter().map(|&x| x as f64).collect(),
                    vec![0.0; n],
                    vec![0.0; n],
                )
            })
            .collect();
        let mut stepped = vec![false; sizes.len()];
        for t in 1..=3u32 {
            for (i, p) in params.iter().enumerate() {
                if t == 2 && i == 1 {
                    continue;
                }
                let gv = rg.normal_vec(sizes[i]);
                p.accumulate_grad(Tensor::from_slice(&g, &[sizes[i]], &gv).unwrap())
                    .unwrap();
                let g64: Vec<f64> = gv.iter().map(|&x| x as f64).collect();
                let (wp, wm, wv) = &mut want[i];
                if adam {
                    r::optim::adam(
                        wp, &g64, wm, wv, 0.05, 0.9, 0.999, 1e-8, 0.01, false, t, 1.0,
                    );
                } else {
                    r::optim::sgd(wp, &g64, wm, 0.05, 0.9, 1e-3, !stepped[i], 1.0);
                }
                stepped[i] = true;
            }
            opt.step().unwrap();
            opt.zero_grad();
        }
        for (i, p) in params.iter().enumerate() {
            let got = p.value().to_vec().unwrap();
            for (a, b) in got.iter().zip(&want[i].0) {
                assert!(
                    (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "adam {adam}, p{i}: {got:?} vs {:?}",
                    want[i].0
                );
            }
        }
        assert_eq!(frozen.value().to_vec().unwrap(), vec![0.0; 5]);
    }
}

/// An optimiser step whose tensors' moments overlap, or whose state is too short, is refused.
#[test]
fn an_optimiser_step_refuses_overlapping_or_missing_state() {
    use symclone::ops::optim;
    let g = gpu();
    let p = Tensor::zeros(&g, &[4]).unwrap();
    let gr = Tensor::zeros(&g, &[4]).unwrap();
    let q = Tensor::zeros(&g, &[4]).unwrap();
    let one = Tensor::full(&g, &[2], 1.0).unwrap();
    let sgd = optim::Rule::Sgd {
        lr: 0.1,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    let slot = |param, offset| optim::Slot {
        param,
        grad: &gr,
        scale: 1.0,
        offset,
    };
    let state = Tensor::zeros(&g, &[8]).unwrap();
    let e = optim::step_(&[slot(&p, 0), slot(&q, 2)], &state, &one, sgd).unwrap_err();
    assert!(e.to_string().contains("share state entries"), "{e}");
    let e = optim::step_(&[slot(&p, 5)], &state, &one, sgd).unwrap_err();
    assert!(e.to_string().contains("no room"), "{e}");
    assert!(optim::step_(&[slot(&p, 0), slot(&q, 4)], &state, &one, sgd).is_ok());
}
