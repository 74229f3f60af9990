//! The benchmark: each case times a GPU kernel (timestamp queries where the adapter has them, wall
//! clock after a full sync otherwise) against an honest CPU baseline on the same inputs, and checks
//! that the two agree. `symclone-gpu bench` and `cargo bench` are front-ends over `run`.
//!
//! The shared pieces (rows, timing, the filter, the table) live here; each suite has its own file:
//! `runtime` (the CPU cost of a dispatch), `matmul`, `conv`, `conv_algos` (every convolution
//! algorithm's passes side by side), `e2e` (training steps and cloning iterations), `models` (the
//! networks' training steps at the quick preset's sizes), `clone` (the three cloning losses to a
//! relative MSE of 1e-6), and `cpu` holds the baselines. Training-step rows carry their per-step
//! counts (dispatches, bytes bound per kernel family, CPU time recording).

pub mod clone;
mod conv;
mod conv_algos;
pub mod cpu;
mod e2e;
mod matmul;
pub mod models;
mod runtime;

use crate::gpu::StepCounts;
use crate::reference::rel_err;
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
    /// For training steps: dispatches, bytes read and written (in all and per kernel family) and
    /// CPU time spent recording, per step over the timed steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<StepCounts>,
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
            counts: None,
        }
    }

    /// `work` per second in `unit` (GFLOP/s and GB/s count in 10⁹; steps/s and iters/s in ones).
    fn rate(&self, s: f64) -> f64 {
        let scale = if self.unit.starts_with('G') { 1e9 } else { 1.0 };
        self.work / s / scale
    }
    /// The progress line `symclone-gpu bench` prints for the row.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{:<40} gpu {:>9.3} ms ({:>7.1} {})  cpu {:>9.3} ms ({:>7.1} {})  err {:.1e}",
            self.case,
            self.gpu_s * 1e3,
            self.gpu_rate(),
            self.unit,
            self.cpu_s * 1e3,
            self.cpu_rate(),
            self.unit,
            self.rel_err
        );
        if let Some(c) = &self.counts {
            line += &format!("\n{:<40} {}", "", c.line());
        }
        line
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

/// What a GPU result must agree with before it is timed: the CPU baseline's result, and the most
/// terms any output element sums (the tolerance grows with it).
pub struct Check<'a> {
    pub case: &'a str,
    pub want: &'a [f64],
    pub terms: usize,
}

impl Check<'_> {
    /// The relative error a correct f32 kernel stays under: `terms · ε` with ε = 2⁻²³ (twice the
    /// unit roundoff per term), the worst-case growth of a sum of `terms` rounded products; a
    /// wrong kernel lands near 1.
    pub fn tolerance(&self) -> f64 {
        self.terms.max(1) as f64 * f64::from(f32::EPSILON)
    }

    /// Ok when `got` agrees with the baseline; otherwise an error naming the case.
    pub fn verify(&self, got: &[f32]) -> Result<()> {
        let err = rel_err(got, self.want);
        if got.len() == self.want.len() && err <= self.tolerance() {
            return Ok(());
        }
        Err(crate::Error::invalid(format!(
            "bench case '{}': the GPU result differs from the CPU baseline by {err:.2e} (relative), more than the {:.2e} a sum of {} f32 terms allows; a wrong kernel is not timed",
            self.case,
            self.tolerance(),
            self.terms
        )))
    }
}

/// Time a GPU computation: one run checked against the CPU baseline (an error when they disagree,
/// before any timing), then `reps` kernel timings (timestamps or wall after sync).
pub fn time_gpu(
    gpu: &Gpu,
    reps: usize,
    check: Check,
    mut f: impl FnMut() -> Result<Tensor>,
) -> Result<(f64, &'static str, f64, Tensor)> {
    let out = f()?;
    check.verify(&out.to_vec()?)?; // also the warm-up: pipelines built
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

/// Run every case that matches the options; `progress` sees each row as it finishes.
pub fn run(gpu: &Arc<Gpu>, opts: &Options, progress: &mut dyn FnMut(&Row)) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    runtime::runtime_cases(gpu, opts, &mut rows, progress)?;
    matmul::matmul_cases(gpu, opts, &mut rows, progress)?;
    conv::conv_cases(gpu, opts, &mut rows, progress)?;
    conv_algos::algo_cases(gpu, opts, &mut rows, progress)?;
    e2e::e2e_cases(gpu, opts, &mut rows, progress)?;
    models::model_cases(gpu, opts, &mut rows, progress)?;
    clone::clone_cases(gpu, opts, &mut rows, progress)?;
    Ok(rows)
}

/// `symclone-gpu bench`'s output: the table and the buffer pool's hit rate on standard output, and
/// the rows as JSON and the table as Markdown where asked.
pub fn write_results(
    gpu: &Gpu,
    rows: &[Row],
    json: Option<&std::path::Path>,
    md_path: Option<&std::path::Path>,
) -> Result<()> {
    let md = markdown(gpu, rows);
    println!("{md}");
    let stats = gpu.pool_stats();
    println!(
        "buffer pool: {} hits, {} misses ({:.1}% hits)",
        stats.hits,
        stats.misses,
        100.0 * stats.hit_rate()
    );
    if let Some(p) = json {
        let json = serde_json::to_string_pretty(rows).expect("serialisable");
        crate::files::write_atomic(p, json.as_bytes())?;
    }
    if let Some(p) = md_path {
        crate::files::write_atomic(p, md.as_bytes())?;
    }
    Ok(())
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
    s.push_str(&counts_table(rows));
    s
}

/// The training-step rows' counts as a Markdown table (empty where no row has them): per step,
/// dispatches, MB (10⁶ bytes) of read-only and of read-write bindings, CPU µs spent recording,
/// submissions and the µs spent in them, and the families that bound the most bytes.
fn counts_table(rows: &[Row]) -> String {
    let counted: Vec<(&Row, &StepCounts)> = rows
        .iter()
        .filter_map(|r| r.counts.as_ref().map(|c| (r, c)))
        .collect();
    if counted.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nPer step (bytes of each launch's bindings: read-only ones read, read-write ones written):\n\n\
         | case | dispatches | MB read | MB written | CPU µs recording | submissions (µs in them) | most bytes (MB read + written) |\n\
         |---|--:|--:|--:|--:|--:|---|\n",
    );
    for (r, c) in counted {
        let mut fam: Vec<(&String, f64, f64)> = c
            .families
            .iter()
            .map(|(n, f)| (n, f.bytes_read + f.bytes_written, f.dispatches))
            .collect();
        fam.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let top: Vec<String> = fam
            .iter()
            .take(4)
            .map(|(n, b, d)| format!("{n} {:.2} ({d:.0} disp.)", b / 1e6))
            .collect();
        s.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.2} ({:.0}) | {} |\n",
            r.case,
            c.dispatches,
            c.bytes_read / 1e6,
            c.bytes_written / 1e6,
            c.record_us,
            c.submissions,
            c.submit_us,
            top.join(", ")
        ));
    }
    s
}
