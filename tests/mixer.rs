//! The mixer student of SPEC §8: its full gradient against finite differences, and that it learns
//! a convolution on a tiny configuration.

mod common;
use common::*;
use symclone::clone::mixer::{MixerConfig, MixerModel, MixerTeacher};
use symclone::clone::mixer_train::{mixer_fidelity, sample, train_mixer};
use symclone::ops::loss;
use symclone::rng::Rng;
use symclone::Tape;

fn tiny(teacher: MixerTeacher) -> MixerConfig {
    MixerConfig {
        d: 4,
        k: if teacher == MixerTeacher::Radial {
            5
        } else {
            2
        },
        channels: 2,
        width: 6,
        depth: 1,
        token_mult: 2,
        channel_hidden: 3,
        filters: 2,
        batch: 3,
        ..MixerConfig::paper(teacher)
    }
}

/// The loss on fixed data.
fn loss_of(
    model: &MixerModel,
    x: &symclone::Tensor,
    t: &symclone::Tensor,
    y: &symclone::Tensor,
) -> f64 {
    let mut tape = Tape::no_grad();
    let (xv, tv, yv) = (
        tape.input(x.clone()),
        tape.input(t.clone()),
        tape.input(y.clone()),
    );
    let p = model.forward(&mut tape, xv, tv).unwrap();
    let l = loss::mse_t(&mut tape, p, yv).unwrap();
    tape.value(l).item().unwrap() as f64
}

/// Every parameter tensor's gradient along unit directions v against central differences
/// of the f32 loss at steps h and h/2. The tolerance comes from the two errors of a central
/// difference: truncation, O(h²), estimated by the gap between the two steps (Richardson), and
/// rounding, ≈ 2·δL/(2h) at step h/2 with δL the f32 error of the loss, bounded as a sum over the
/// longest chain of products (token mixing, 2T terms here): sum_tol(2T)·L.
#[test]
fn mixer_full_gradient_matches_finite_differences() {
    let g = gpu();
    let mut cfg = tiny(MixerTeacher::Conv);
    cfg.d = 5;
    cfg.k = 3;
    let mut rng = Rng::new(901);
    let model = MixerModel::new(&g, &cfg, &mut rng).unwrap();
    let (x, tokens, target) = sample(&g, &cfg, cfg.filters, &mut rng).unwrap();
    let mut tape = Tape::new();
    let (xv, tv, yv) = (
        tape.input(x.clone()),
        tape.input(tokens.clone()),
        tape.input(target.clone()),
    );
    let p = model.forward(&mut tape, xv, tv).unwrap();
    let l = loss::mse_t(&mut tape, p, yv).unwrap();
    let l0 = tape.value(l).item().unwrap() as f64;
    tape.backward(l).unwrap();
    let params = model.params();
    assert!(
        params.len() > 20,
        "every tensor of the model: {}",
        params.len()
    );
    let delta_l = sum_tol(2 * cfg.tokens()) * l0;
    let h = 1e-2f64;
    let mut worst = 0.0f64;
    for (i, prm) in params.iter().enumerate() {
        let v0 = prm.value().to_vec().unwrap();
        let grad = prm.grad().unwrap().to_vec().unwrap();
        // Two unit directions: the gradient's own (the steepest: the slope along it is ‖g‖, the
        // largest signal above the rounding noise, so a mis-scaled gradient shows) and a random one
        // (errors orthogonal to the gradient).
        for (which, mut dir) in [
            ("gradient", grad.clone()),
            ("random", rng.normal_vec(v0.len())),
        ] {
            let nrm = dir.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            if nrm == 0.0 {
                continue;
            }
            dir.iter_mut().for_each(|a| *a /= nrm as f32);
            let analytic: f64 = grad
                .iter()
                .zip(&dir)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let at = |s: f64| {
                let w: Vec<f32> = v0
                    .iter()
                    .zip(&dir)
                    .map(|(a, b)| a + (s * *b as f64) as f32)
                    .collect();
                prm.value().write_slice(&w).unwrap();
                let out = loss_of(&model, &x, &tokens, &target);
                prm.value().write_slice(&v0).unwrap();
                out
            };
            let fd1 = (at(h) - at(-h)) / (2.0 * h);
            let fd2 = (at(h / 2.0) - at(-h / 2.0)) / h;
            let tol = (fd1 - fd2).abs() + 2.0 * delta_l / h;
            let err = (analytic - fd2).abs();
            worst = worst.max(err / tol);
            assert!(
                err <= tol,
                "{} (#{i}, {which} direction): gradient·v {analytic:.6e}, central difference {fd2:.6e} (step h {fd1:.6e}); |diff| {err:.2e} > tol {tol:.2e}",
                prm.name()
            );
        }
    }
    eprintln!(
        "{} parameter tensors; worst |diff|/tol {worst:.3}",
        params.len()
    );
}

/// The mixer learns: on a tiny configuration its fidelity MSE on fresh filters and inputs falls
/// below a tenth of the teacher outputs' mean square (their variance: the outputs have mean 0).
#[test]
fn mixer_learns_a_tiny_convolution() {
    let g = gpu();
    let cfg = MixerConfig {
        d: 2,
        k: 1,
        channels: 1,
        width: 16,
        depth: 1,
        channel_hidden: 12,
        filters: 16,
        batch: 8,
        iters: 200,
        accum: 1,
        lr: 3e-3,
        ..MixerConfig::paper(MixerTeacher::Conv)
    };
    let t = std::time::Instant::now();
    let (model, stats) = train_mixer(&g, &cfg, 25, &mut |_, _| {}).unwrap();
    let fid = mixer_fidelity(&g, &model, 16, 16, 12345).unwrap();
    eprintln!(
        "tiny mixer: {:.1} s, training history {:?}, fidelity {:.3e} of {:.3e} ({:.3})",
        t.elapsed().as_secs_f64(),
        stats.history,
        fid.mse,
        fid.target_mean_square,
        fid.relative()
    );
    assert!(
        fid.relative() < 0.1,
        "fidelity MSE {:.3e} is not below a tenth of the teacher's output variance {:.3e}",
        fid.mse,
        fid.target_mean_square
    );
}

/// The model can fit what it sees: on one fixed set of filters and inputs (the SPEC teacher's
/// 3×3 taps, two channels, 5×5 images), full-batch AdamW drives the MSE to under a thousandth of
/// its starting value. A mixer that cannot memorise eight samples has a wrong forward or gradient.
#[test]
fn mixer_overfits_one_fixed_batch() {
    use symclone::nn::{Optimizer, OptimizerKind};
    let g = gpu();
    let mut cfg = tiny(MixerTeacher::Conv);
    cfg.d = 5;
    cfg.k = 3;
    cfg.width = 16;
    cfg.batch = 4;
    let mut rng = Rng::new(907);
    let model = MixerModel::new(&g, &cfg, &mut rng).unwrap();
    let (x, tokens, target) = sample(&g, &cfg, cfg.filters, &mut rng).unwrap();
    let params = model.params();
    let mut opt = Optimizer::new(OptimizerKind::adamw(0.0), 1e-2, &params);
    let l0 = loss_of(&model, &x, &tokens, &target);
    for _ in 0..150 {
        let mut tape = Tape::new();
        let (xv, tv, yv) = (
            tape.input(x.clone()),
            tape.input(tokens.clone()),
            tape.input(target.clone()),
        );
        let p = model.forward(&mut tape, xv, tv).unwrap();
        let l = loss::mse_t(&mut tape, p, yv).unwrap();
        tape.backward(l).unwrap();
        opt.step().unwrap();
        opt.zero_grad();
    }
    let l1 = loss_of(&model, &x, &tokens, &target);
    eprintln!(
        "one fixed batch: loss {l0:.3e} -> {l1:.3e} ({:.2e})",
        l1 / l0
    );
    assert!(
        l1 < 1e-3 * l0,
        "the mixer did not overfit one fixed batch: loss {l0:.3e} -> {l1:.3e}"
    );
}
