//! The benchmark: each case times a GPU kernel (timestamp queries where the adapter has them, wall
//! clock after a full sync otherwise) against an honest CPU baseline on the same inputs, and checks
//! that the two agree. `symclone-gpu bench` and `cargo bench` are front-ends over `run`.

pub mod cpu;

use crate::ops::matmul;
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
}

impl Row {
    /// Rate on the GPU (kernel time) in `unit`.
    pub fn gpu_rate(&self) -> f64 {
        self.work / self.gpu_s / 1e9
    }
    /// Rate on the CPU baseline.
    pub fn cpu_rate(&self) -> f64 {
        self.work / self.cpu_s / 1e9
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
        let got = out.to_vec()?;
        let row = Row {
            case: name,
            gpu_s,
            gpu_timing: how,
            wall_s,
            cpu_s,
            cpu_baseline: "matrixmultiply sgemm, threaded",
            work: 2.0 * (s * s * s) as f64,
            unit: "GFLOP/s",
            rel_err: rel_err(&got, &crate::reference::to64(&c)),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(())
}

/// Run every case that matches the options; `progress` sees each row as it finishes.
pub fn run(gpu: &Arc<Gpu>, opts: &Options, progress: &mut dyn FnMut(&Row)) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    matmul_cases(gpu, opts, &mut rows, progress)?;
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
        s.push_str(&format!(
            "| {} | {:.3} | {:.1} {} | {:.3} | {:.3} | {:.1} {} | {:.2}× | {:.1e} | {} |\n",
            r.case,
            r.gpu_s * 1e3,
            r.gpu_rate(),
            r.unit,
            r.wall_s * 1e3,
            r.cpu_s * 1e3,
            r.cpu_rate(),
            r.unit,
            r.cpu_s / r.gpu_s,
            r.rel_err,
            r.cpu_baseline
        ));
    }
    s
}
