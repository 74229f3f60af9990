//! The end-to-end suite: whole training steps (one tape per step, Adam) against the same steps on
//! the CPU, and cloning iterations.

use super::{cpu, wanted, Options, Row};
use crate::gpu::StepCounts;
use crate::ops::conv::ConvDims;
use crate::reference::rel_err;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;
use std::time::Instant;

/// Time `steps` calls of a training step after `warm` untimed ones, with one sync at the end (no
/// read-back inside the timed steps); returns seconds per step, the last step's loss tensor, and
/// the timed steps' counts per step (dispatches, bytes bound, CPU time recording).
pub(super) fn time_steps(
    gpu: &Gpu,
    warm: usize,
    steps: usize,
    mut step: impl FnMut() -> Result<Tensor>,
) -> Result<(f64, Tensor, StepCounts)> {
    let mut last = step()?;
    for _ in 1..warm {
        last = step()?;
    }
    last.to_vec()?;
    let before = gpu.counters();
    let t0 = Instant::now();
    for _ in 0..steps {
        last = step()?;
    }
    let counts = gpu.counters().since(&before).per_step(steps as u64);
    gpu.sync()?;
    Ok((
        t0.elapsed().as_secs_f64() / steps.max(1) as f64,
        last,
        counts,
    ))
}

/// End to end: training steps of the `mlp` and of a small CNN (the library's layers, one tape per
/// step, Adam), against the same steps on the CPU from the same initial parameters (the last
/// step's loss is compared), and cloning iterations (no CPU baseline). Ends with the buffer
/// pool's hit rate over these cases.
pub(super) fn e2e_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    use crate::autograd::{Param, Tape};
    use crate::clone::{clone_random, CloneConfig, OperatorKind};
    use crate::nn::{conv::Conv2d, Linear, Optimizer, OptimizerKind};
    use crate::ops::{elementwise::relu_t, loss::cross_entropy_t, pool::global_mean_t};
    let names = [
        "train step mlp 784-256-256-10 B128 Adam",
        "train step cnn conv 1→32→32 k3 p1, GAP, linear 32→10 B64 Adam",
        "clone iteration lift d28 filters 16 batch 32",
        "clone iteration P4 d26 filters 8 batch 16",
    ];
    if !names.iter().any(|n| wanted(opts, n)) {
        return Ok(());
    }
    let pool0 = gpu.pool_stats();
    let mut rng = Rng::new(23);
    let lr = 1e-3;
    let values =
        |ps: &[Param]| -> Result<Vec<Vec<f32>>> { ps.iter().map(|p| p.value().to_vec()).collect() };
    let mut push = |rows: &mut Vec<Row>, row: Row| {
        progress(&row);
        rows.push(row);
    };

    if wanted(opts, names[0]) {
        let (batch, sizes) = (128usize, [784usize, 256, 256, 10]);
        let layers: Vec<Linear> = (0..3)
            .map(|l| Linear::new(gpu, &format!("l{l}"), sizes[l], sizes[l + 1], &mut rng))
            .collect::<Result<_>>()?;
        let params: Vec<Param> = layers.iter().flat_map(|l| l.params()).collect();
        let mut cpu_p = values(&params)?;
        let xv = rng.normal_vec(batch * sizes[0]);
        let labels: Vec<u32> = (0..batch).map(|i| (i * 7 % 10) as u32).collect();
        let x = Tensor::from_slice(gpu, &[batch, sizes[0]], &xv)?;
        let lab = Tensor::from_u32(gpu, &[batch], &labels)?;
        let mut opt = Optimizer::new(OptimizerKind::adam(0.0), lr, &params);
        let step = || -> Result<Tensor> {
            let mut tape = Tape::new();
            let mut h = tape.input(x.clone());
            for (l, layer) in layers.iter().enumerate() {
                h = layer.forward(&mut tape, h, l + 1 < layers.len())?;
            }
            let loss = cross_entropy_t(&mut tape, h, &lab)?;
            tape.backward(loss)?;
            opt.step()?;
            opt.zero_grad();
            Ok(tape.value(loss).clone())
        };
        let (warm, steps) = (3, opts.reps.max(10));
        let (gpu_s, loss, counts) = time_steps(gpu, warm, steps, step)?;
        let mut adam = cpu::Adam::new(lr, &cpu_p);
        let mut cpu_loss = 0.0;
        for _ in 0..warm {
            cpu_loss = cpu::mlp_step(&mut cpu_p, &mut adam, &sizes, &xv, &labels);
        }
        let t0 = Instant::now();
        for _ in 0..steps {
            cpu_loss = cpu::mlp_step(&mut cpu_p, &mut adam, &sizes, &xv, &labels);
        }
        let cpu_s = t0.elapsed().as_secs_f64() / steps as f64;
        let row = Row {
            case: names[0].into(),
            gpu_s,
            gpu_timing: "wall",
            wall_s: gpu_s,
            cpu_s,
            cpu_baseline: "same step: matrixmultiply sgemm (threaded) + loops",
            work: 1.0,
            unit: "steps/s",
            rel_err: rel_err(&loss.to_vec()?, &[cpu_loss as f64]),
            note: String::new(),
            counts: Some(counts),
        };
        push(rows, row);
    }

    if wanted(opts, names[1]) {
        let (batch, c, hw, classes) = (64usize, 32usize, 28usize, 10usize);
        let conv1 = Conv2d::new(gpu, "c1", 1, c, 3, 1, &mut rng)?;
        let conv2 = Conv2d::new(gpu, "c2", c, c, 3, 1, &mut rng)?;
        let fc = Linear::new(gpu, "fc", c, classes, &mut rng)?;
        let params: Vec<Param> = [conv1.params(), conv2.params(), fc.params()].concat();
        let mut cpu_p = values(&params)?;
        let xv = rng.normal_vec(batch * hw * hw);
        let labels: Vec<u32> = (0..batch).map(|i| (i * 3 % classes) as u32).collect();
        let x = Tensor::from_slice(gpu, &[batch, 1, hw, hw], &xv)?;
        let lab = Tensor::from_u32(gpu, &[batch], &labels)?;
        let mut opt = Optimizer::new(OptimizerKind::adam(0.0), lr, &params);
        let step = || -> Result<Tensor> {
            let mut tape = Tape::new();
            let xi = tape.input(x.clone());
            let h = conv1.forward(&mut tape, xi)?;
            let h = relu_t(&mut tape, h)?;
            let h = conv2.forward(&mut tape, h)?;
            let h = relu_t(&mut tape, h)?;
            let h = global_mean_t(&mut tape, h)?;
            let logits = fc.forward(&mut tape, h, false)?;
            let loss = cross_entropy_t(&mut tape, logits, &lab)?;
            tape.backward(loss)?;
            opt.step()?;
            opt.zero_grad();
            Ok(tape.value(loss).clone())
        };
        let (warm, steps) = (2, opts.reps.clamp(3, 10));
        let (gpu_s, loss, counts) = time_steps(gpu, warm, steps, step)?;
        let dims = |cin| ConvDims {
            batch,
            cin,
            h: hw,
            w: hw,
            cout: c,
            k: 3,
            pad: 1,
        };
        let mut adam = cpu::Adam::new(lr, &cpu_p);
        let mut cpu_loss = 0.0;
        let mut cstep = |p: &mut Vec<Vec<f32>>| {
            cpu::cnn_step(p, &mut adam, (dims(1), dims(c)), classes, &xv, &labels)
        };
        for _ in 0..warm {
            cpu_loss = cstep(&mut cpu_p);
        }
        let t0 = Instant::now();
        for _ in 0..steps {
            cpu_loss = cstep(&mut cpu_p);
        }
        let cpu_s = t0.elapsed().as_secs_f64() / steps as f64;
        let row = Row {
            case: names[1].into(),
            gpu_s,
            gpu_timing: "wall",
            wall_s: gpu_s,
            cpu_s,
            cpu_baseline: "same step: threaded im2col + sgemm convs, sgemm linear, loops",
            work: 1.0,
            unit: "steps/s",
            rel_err: rel_err(&loss.to_vec()?, &[cpu_loss as f64]),
            note: String::new(),
            counts: Some(counts),
        };
        push(rows, row);
    }

    for (name, kind, d, filters, batch) in [
        (names[2], OperatorKind::Lift, 28usize, 16usize, 32usize),
        (names[3], OperatorKind::P4, 26, 8, 16),
    ] {
        if !wanted(opts, name) {
            continue;
        }
        let paper = CloneConfig::paper(kind, d);
        let cfg = |iters| CloneConfig {
            filters,
            batch,
            iters,
            ..paper.clone()
        };
        // Warm-up: one optimiser step (pipelines built), then a timed run of a few steps.
        clone_random(gpu, &cfg(paper.accum), paper.accum, &mut |_, _| {})?;
        let iters = paper.accum * opts.reps.clamp(1, 4);
        let before = gpu.counters();
        let t0 = Instant::now();
        clone_random(gpu, &cfg(iters), iters, &mut |_, _| {})?;
        gpu.sync()?;
        let s = t0.elapsed().as_secs_f64() / iters as f64;
        // Per iteration, the run's setup included.
        let counts = gpu.counters().since(&before).per_step(iters as u64);
        let row = Row {
            case: name.into(),
            gpu_s: s,
            gpu_timing: "wall",
            wall_s: s,
            cpu_s: f64::NAN,
            cpu_baseline: "none",
            work: 1.0,
            unit: "iters/s",
            rel_err: f64::NAN,
            note: String::new(),
            counts: Some(counts),
        };
        push(rows, row);
    }

    let p1 = gpu.pool_stats();
    let (hits, misses) = (p1.hits - pool0.hits, p1.misses - pool0.misses);
    if let Some(last) = rows.last_mut() {
        last.note = format!(
            "Buffer pool over the end-to-end cases: {hits} hits, {misses} misses ({:.1}% hits).",
            100.0 * hits as f64 / (hits + misses).max(1) as f64
        );
        eprintln!("{}", last.note);
    }
    Ok(())
}
