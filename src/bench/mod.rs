//! The benchmark: each case times a GPU kernel (timestamp queries where the adapter has them, wall
//! clock after a full sync otherwise) against an honest CPU baseline on the same inputs, and checks
//! that the two agree. `symclone-gpu bench` and `cargo bench` are front-ends over `run`.

pub mod cpu;

use crate::ops::conv::{self, ConvDims};
use crate::ops::{gconv, matmul};
use crate::reference::rel_err;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;
use std::time::Instant;

/// One benchmark result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub case: String,
    /// Median GPU kernel time (s), from timestamps, or wall clock after a sync where there are none.
    pub gpu_s: f64,
    /// "timestamp" or "wall".
    pub gpu_timing: &'static str,
    /// Median wall time of one launch plus a sync and a read-back of the result (s).
    pub wall_s: f64,
    /// Median CPU baseline time (s).
    pub cpu_s: f64,
    /// The CPU baseline used.
    pub cpu_baseline: &'static str,
    /// Work per run: FLOPs or bytes.
    pub work: f64,
    /// "GFLOP/s" or "GB/s".
    pub unit: &'static str,
    /// ‖gpu − cpu‖ / ‖cpu‖.
    pub rel_err: f64,
    /// A remark printed under the table (e.g. the buffer pool's hit rate); empty for none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Row {
    /// A kernel case counted in FLOPs: the GPU timing from [`time_gpu`], the CPU baseline's time,
    /// and the two results, compared by relative error.
    #[allow(clippy::too_many_arguments)]
    fn kernel(
        case: String,
        gpu_s: f64,
        gpu_timing: &'static str,
        wall_s: f64,
        cpu_s: f64,
        cpu_baseline: &'static str,
        flops: f64,
        got: &[f32],
        want: &[f64],
    ) -> Row {
        Row {
            case,
            gpu_s,
            gpu_timing,
            wall_s,
            cpu_s,
            cpu_baseline,
            work: flops,
            unit: "GFLOP/s",
            rel_err: rel_err(got, want),
            note: String::new(),
        }
    }

    /// `work` per second in `unit` (GFLOP/s and GB/s count in 10⁹; steps/s and iters/s in ones).
    fn rate(&self, s: f64) -> f64 {
        let scale = if self.unit.starts_with('G') { 1e9 } else { 1.0 };
        self.work / s / scale
    }
    /// Rate on the GPU (kernel time) in `unit`.
    pub fn gpu_rate(&self) -> f64 {
        self.rate(self.gpu_s)
    }
    /// Rate on the CPU baseline (NaN where the case has none).
    pub fn cpu_rate(&self) -> f64 {
        self.rate(self.cpu_s)
    }
}

/// Options for a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only cases whose name contains this.
    pub filter: Option<String>,
    /// Timed repetitions per case (median reported).
    pub reps: usize,
    /// Largest square matmul size.
    pub max_square: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            filter: None,
            reps: 20,
            max_square: 2048,
        }
    }
}

/// Median of samples.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Time a GPU computation: `reps` kernel timings (timestamps or wall after sync), after one warm-up.
pub fn time_gpu(
    gpu: &Gpu,
    reps: usize,
    mut f: impl FnMut() -> Result<Tensor>,
) -> Result<(f64, &'static str, f64, Tensor)> {
    let out = f()?;
    out.to_vec()?; // warm-up, pipelines built
    let mut kernel = Vec::new();
    let mut wall = Vec::new();
    let mut last = out;
    for _ in 0..reps {
        let t0 = Instant::now();
        let (o, ts, _) = gpu.timed(&mut f)?;
        gpu.sync()?;
        let w = t0.elapsed().as_secs_f64();
        kernel.push(ts.unwrap_or(w));
        last = o;
    }
    for _ in 0..reps.clamp(1, 5) {
        let t0 = Instant::now();
        let o = f()?;
        o.to_vec()?;
        wall.push(t0.elapsed().as_secs_f64());
    }
    let how = if gpu.has_timestamps() {
        "timestamp"
    } else {
        "wall"
    };
    Ok((median(kernel), how, median(wall), last))
}

/// Time a CPU computation: median of `reps` runs after one warm-up.
pub fn time_cpu<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f();
    let mut t = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        out = f();
        t.push(t0.elapsed().as_secs_f64());
    }
    (median(t), out)
}

fn wanted(opts: &Options, name: &str) -> bool {
    opts.filter.as_deref().is_none_or(|f| name.contains(f))
}

/// Square and transposed matrix-product cases.
fn matmul_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let mut rng = Rng::new(7);
    let mut sizes = vec![256, 1024, 2048, 4096];
    sizes.retain(|&s| s <= opts.max_square);
    let mut cases: Vec<(usize, bool, bool)> = sizes.iter().map(|&s| (s, false, false)).collect();
    cases.extend([(1024, true, false), (1024, false, true), (1024, true, true)]);
    for (s, ta, tb) in cases {
        let name = format!(
            "matmul {s}x{s}x{s}{}{}",
            if ta { " Aᵀ" } else { "" },
            if tb { " Bᵀ" } else { "" }
        );
        if !wanted(opts, &name) {
            continue;
        }
        let a = rng.normal_vec(s * s);
        let b = rng.normal_vec(s * s);
        let ga = Tensor::from_slice(gpu, &[s, s], &a)?;
        let gb = Tensor::from_slice(gpu, &[s, s], &b)?;
        let reps = if s >= 2048 {
            opts.reps.min(5)
        } else {
            opts.reps
        };
        let (gpu_s, how, wall_s, out) = time_gpu(gpu, reps, || matmul::matmul(&ga, &gb, ta, tb))?;
        let (cpu_s, c) = time_cpu(reps.min(5), || cpu::sgemm(&a, &b, s, s, s, ta, tb));
        let row = Row::kernel(
            name,
            gpu_s,
            how,
            wall_s,
            cpu_s,
            "matrixmultiply sgemm, threaded",
            2.0 * (s * s * s) as f64,
            &out.to_vec()?,
            &crate::reference::to64(&c),
        );
        progress(&row);
        rows.push(row);
    }
    Ok(())
}

/// Which layer a convolution case times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConvKind {
    Plain,
    Lift,
    P4,
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn concat(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().chain(b).copied().collect()
}

/// conv2d forward (direct and im2col) and backward, and the lifting and P4 layers at the MNIST
/// shapes of SPEC §4 (batch 64), against im2col + threaded sgemm on the CPU.
fn conv_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    use crate::reference::gconv as rg;
    let mut rng = Rng::new(11);
    let cases = [
        (ConvKind::Plain, 1usize, 32usize, 28usize, 1usize),
        (ConvKind::Plain, 32, 32, 28, 1),
        (ConvKind::Lift, 1, 10, 28, 0),
        (ConvKind::P4, 10, 20, 26, 0),
        (ConvKind::P4, 20, 20, 12, 0),
    ];
    let (batch, k) = (64usize, 3usize);
    for (kind, cin, cout, hw, pad) in cases {
        let label = match kind {
            ConvKind::Plain => format!("conv2d {cin}→{cout} {hw}×{hw} k3 p{pad} B{batch}"),
            ConvKind::Lift => format!("lift C4 conv {cin}→{cout} {hw}×{hw} B{batch}"),
            ConvKind::P4 => format!("P4 conv {cin}→{cout} {hw}×{hw} B{batch}"),
        };
        let names = [
            format!("{label} fwd"),
            format!("{label} fwd direct"),
            format!("{label} bwd"),
        ];
        if !names.iter().any(|n| wanted(opts, n)) {
            continue;
        }
        // The flat convolution every kind reduces to.
        let (cin_f, cout_f) = match kind {
            ConvKind::Plain => (cin, cout),
            ConvKind::Lift => (cin, cout * 4),
            ConvKind::P4 => (cin * 4, cout * 4),
        };
        let d = ConvDims {
            batch,
            cin: cin_f,
            h: hw,
            w: hw,
            cout: cout_f,
            k,
            pad,
        };
        let xv = rng.normal_vec(batch * cin_f * hw * hw);
        let wshape: Vec<usize> = match kind {
            ConvKind::P4 => vec![cout, cin, 4, k, k],
            _ => vec![cout, cin, k, k],
        };
        let wv = rng.uniform_vec(wshape.iter().product(), -0.3, 0.3);
        let bv = rng.uniform_vec(cout, -0.3, 0.3);
        let gv = rng.normal_vec(d.out_shape().iter().product());
        let x = Tensor::from_slice(gpu, &[batch, cin_f, hw, hw], &xv)?;
        let x5 = match kind {
            ConvKind::P4 => x.reshape(&[batch, cin, 4, hw, hw])?,
            _ => x.clone(),
        };
        let w = Tensor::from_slice(gpu, &wshape, &wv)?;
        let b = Tensor::from_slice(gpu, &[cout], &bv)?;
        let g = Tensor::from_slice(gpu, &d.out_shape(), &gv)?;
        let w64 = crate::reference::to64(&wv);
        // CPU: the transformed filters (timed with the layer), flat bias.
        let cpu_tw = || -> Vec<f32> {
            match kind {
                ConvKind::Plain => wv.clone(),
                ConvKind::Lift => f32s(&rg::lift_filter(&w64, cout, cin, k)),
                ConvKind::P4 => f32s(&rg::p4_filter(&w64, cout, cin, k)),
            }
        };
        let bflat: Vec<f32> = match kind {
            ConvKind::Plain => bv.clone(),
            _ => bv.iter().flat_map(|&v| [v; 4]).collect(),
        };
        let gpu_tw = match kind {
            ConvKind::Plain => w.clone(),
            ConvKind::Lift => gconv::lift_filter(&w)?,
            ConvKind::P4 => gconv::p4_filter(&w)?,
        };
        let reps = if d.flops() > 2e8 {
            opts.reps.min(5)
        } else {
            opts.reps.min(10)
        };
        let baseline = "im2col + matrixmultiply sgemm, threads over the batch";

        // Forward (direct kernel; the layers include their filter transform).
        let fwd = || -> Result<Tensor> {
            match kind {
                ConvKind::Plain => conv::conv2d(&x, &w, Some(&b), pad),
                ConvKind::Lift => gconv::lift_c4(&x, &w, Some(&b), pad),
                ConvKind::P4 => gconv::p4_conv(&x5, &w, Some(&b), pad),
            }
        };
        let (cpu_s, cpu_y) = time_cpu(reps, || cpu::conv2d_fwd(&xv, &cpu_tw(), Some(&bflat), d));
        let cpu_y64 = crate::reference::to64(&cpu_y);
        if wanted(opts, &names[0]) {
            let (gpu_s, how, wall_s, out) = time_gpu(gpu, reps, fwd)?;
            let row = Row::kernel(
                names[0].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                d.flops(),
                &out.to_vec()?,
                &cpu_y64,
            );
            progress(&row);
            rows.push(row);
        }
        if kind == ConvKind::Plain && wanted(opts, &names[1]) {
            let (gpu_s, how, wall_s, out) =
                time_gpu(gpu, reps, || conv::conv2d_direct(&x, &w, Some(&b), pad))?;
            let row = Row::kernel(
                names[1].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                d.flops(),
                &out.to_vec()?,
                &cpu_y64,
            );
            progress(&row);
            rows.push(row);
        }
        if wanted(opts, &names[2]) {
            // Backward as the tape runs it: weight gradient (+ adjoint transform), bias gradient,
            // and the input gradient except for a first layer on images (lift).
            let need_dx = kind != ConvKind::Lift;
            let bwd = || -> Result<(Tensor, Option<Tensor>, Tensor)> {
                let dtw = conv::conv2d_weight_grad(&x, &g, d)?;
                let dtb = conv::conv2d_bias_grad(&g)?;
                let (dw, db) = match kind {
                    ConvKind::Plain => (dtw, dtb),
                    ConvKind::Lift => (
                        gconv::lift_filter_adjoint(&dtw)?,
                        crate::ops::reduce::sum_axis(&dtb.reshape(&[cout, 4])?, 1)?,
                    ),
                    ConvKind::P4 => (
                        gconv::p4_filter_adjoint(&dtw)?,
                        crate::ops::reduce::sum_axis(&dtb.reshape(&[cout, 4])?, 1)?,
                    ),
                };
                let dx = if need_dx {
                    Some(conv::conv2d_input_grad(&g, &gpu_tw, d)?)
                } else {
                    None
                };
                Ok((dw, dx, db))
            };
            let (gpu_s, how, wall_s, dw) = time_gpu(gpu, reps, || bwd().map(|r| r.0))?;
            let (_, dx, _) = bwd()?;
            let (cpu_s, (cdx, cdw)) = time_cpu(reps, || {
                let (dx, dtw, _db) = cpu::conv2d_bwd(&xv, &cpu_tw(), &gv, d, need_dx);
                let dtw64 = crate::reference::to64(&dtw);
                let dw = match kind {
                    ConvKind::Plain => dtw,
                    ConvKind::Lift => f32s(&rg::lift_filter_adjoint(&dtw64, cout, cin, k)),
                    ConvKind::P4 => f32s(&rg::p4_filter_adjoint(&dtw64, cout, cin, k)),
                };
                (dx, dw)
            });
            let (got, want) = match dx {
                Some(dx) => (concat(&dw.to_vec()?, &dx.to_vec()?), concat(&cdw, &cdx)),
                None => (dw.to_vec()?, cdw),
            };
            let flops = d.flops() * if need_dx { 2.0 } else { 1.0 };
            let row = Row::kernel(
                names[2].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                flops,
                &got,
                &crate::reference::to64(&want),
            );
            progress(&row);
            rows.push(row);
        }
    }
    Ok(())
}

/// Run every case that matches the options; `progress` sees each row as it finishes.
pub fn run(gpu: &Arc<Gpu>, opts: &Options, progress: &mut dyn FnMut(&Row)) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    matmul_cases(gpu, opts, &mut rows, progress)?;
    conv_cases(gpu, opts, &mut rows, progress)?;
    e2e_cases(gpu, opts, &mut rows, progress)?;
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(gpu: &Gpu, rows: &[Row]) -> String {
    let mut s = format!(
        "Adapter: {}. GPU time is the median kernel time ({}); wall is one launch + sync + read-back.\n\n",
        gpu.describe(),
        if gpu.has_timestamps() { "timestamp queries" } else { "wall clock after a full sync" }
    );
    s.push_str("| case | GPU ms | GPU rate | wall ms | CPU ms | CPU rate | speedup | rel. err | CPU baseline |\n");
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for r in rows {
        let (cpu_ms, cpu_rate, speedup, err) = if r.cpu_s.is_finite() {
            (
                format!("{:.3}", r.cpu_s * 1e3),
                format!("{:.1} {}", r.cpu_rate(), r.unit),
                format!("{:.2}×", r.cpu_s / r.gpu_s),
                format!("{:.1e}", r.rel_err),
            )
        } else {
            ("—".into(), "—".into(), "—".into(), "—".into())
        };
        s.push_str(&format!(
            "| {} | {:.3} | {:.1} {} | {:.3} | {cpu_ms} | {cpu_rate} | {speedup} | {err} | {} |\n",
            r.case,
            r.gpu_s * 1e3,
            r.gpu_rate(),
            r.unit,
            r.wall_s * 1e3,
            r.cpu_baseline
        ));
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        s.push_str(&format!("\n{}\n", r.note));
    }
    s
}

/// Time `steps` calls of a training step after `warm` untimed ones, with one sync at the end (no
/// read-back inside the timed steps); returns seconds per step and the last step's loss tensor.
fn time_steps(
    gpu: &Gpu,
    warm: usize,
    steps: usize,
    mut step: impl FnMut() -> Result<Tensor>,
) -> Result<(f64, Tensor)> {
    let mut last = step()?;
    for _ in 1..warm {
        last = step()?;
    }
    last.to_vec()?;
    let t0 = Instant::now();
    for _ in 0..steps {
        last = step()?;
    }
    gpu.sync()?;
    Ok((t0.elapsed().as_secs_f64() / steps.max(1) as f64, last))
}

/// End to end: training steps of the `mlp` and of a small CNN (the library's layers, one tape per
/// step, Adam), against the same steps on the CPU from the same initial parameters (the last
/// step's loss is compared), and cloning iterations (no CPU baseline). Ends with the buffer
/// pool's hit rate over these cases.
fn e2e_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    use crate::autograd::Param;
    use crate::autograd::Tape;
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
        let (gpu_s, loss) = time_steps(gpu, warm, steps, step)?;
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
        let (gpu_s, loss) = time_steps(gpu, warm, steps, step)?;
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
        let t0 = Instant::now();
        clone_random(gpu, &cfg(iters), iters, &mut |_, _| {})?;
        gpu.sync()?;
        let s = t0.elapsed().as_secs_f64() / iters as f64;
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
