//! Shared test helpers: one device per test binary, random data, error norms.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use symclone::gpu::KernelFamily;
use symclone::rng::Rng;
use symclone::Gpu;

/// The adapter the tests run on (lavapipe in CI), opened once per test binary, with the kernel
/// family fixed (the one `SYMCLONE_FAMILY` names, else the adapter type's default) so that no
/// test's result depends on a timing: tests/tune.rs tests the choice by measurement.
pub fn gpu() -> Arc<Gpu> {
    static G: OnceLock<Arc<Gpu>> = OnceLock::new();
    G.get_or_init(|| {
        let g = Gpu::from_env().expect(
            "the tests need a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)",
        );
        g.set_family(g.family());
        g
    })
    .clone()
}

/// A separate device whose matrix-product family is forced (the family is per device).
pub fn gpu_with(family: KernelFamily) -> Arc<Gpu> {
    static R: OnceLock<Arc<Gpu>> = OnceLock::new();
    static W: OnceLock<Arc<Gpu>> = OnceLock::new();
    let cell = match family {
        KernelFamily::Register => &R,
        KernelFamily::Workgroup => &W,
    };
    cell.get_or_init(|| {
        let g = Gpu::from_env().expect("adapter");
        g.set_family(family);
        g
    })
    .clone()
}

/// The test adapter's own limits (to open a device with some of them lowered).
pub fn adapter_limits() -> wgpu::Limits {
    symclone::gpu::adapter::choose(&symclone::gpu::AdapterChoice::from_env())
        .expect("adapter")
        .limits()
}

/// A fresh device on the test adapter with the given limits.
/// Its kernel family is fixed as [`gpu`]'s is.
pub fn gpu_with_limits(limits: wgpu::Limits) -> Arc<Gpu> {
    let g = Gpu::with_limits(&symclone::gpu::AdapterChoice::from_env(), limits)
        .expect("the test adapter opened with lowered limits");
    g.set_family(g.family());
    g
}

/// A device opened with WebGPU's default limits (`wgpu::Limits::default()`: 128 MiB per storage
/// binding, 256 MiB per buffer, 256 invocations and 16 KiB of workgroup memory per workgroup, 8
/// storage buffers per stage, 65,535 workgroups per dimension), the least any conforming GPU
/// offers, with the given matrix-product family; one per family per test binary.
pub fn gpu_webgpu(family: KernelFamily) -> Arc<Gpu> {
    static R: OnceLock<Arc<Gpu>> = OnceLock::new();
    static W: OnceLock<Arc<Gpu>> = OnceLock::new();
    let cell = match family {
        KernelFamily::Register => &R,
        KernelFamily::Workgroup => &W,
    };
    cell.get_or_init(|| {
        let g = gpu_with_limits(wgpu::Limits::default());
        assert_eq!(
            g.limits,
            wgpu::Limits::default(),
            "the device keeps to the defaults"
        );
        g.set_family(family);
        g
    })
    .clone()
}

pub fn rng(seed: u64) -> Rng {
    Rng::new(seed)
}

/// Relative f32 error bound, norm-wise, for outputs that are K-term sums (DESIGN.md, "Numbers"):
/// rounding errors of a K-term sum grow like √K·2⁻²⁴ relative; ×4 for the spread over many
/// outputs, plus 2·2⁻²⁴ for rounding the products and the result. No floor: a K of 1 gets 6 ulps.
pub fn sum_tol(k: usize) -> f64 {
    (4.0 * (k.max(1) as f64).sqrt() + 2.0) * 2f64.powi(-24)
}

/// `got` against the f64 `want` whose entries are K-term sums; `want_abs` is the same sums over
/// the terms' absolute values. A sum's rounding error scales with Σ|terms|, not with |Σ terms|:
/// where terms cancel, the error relative to the result grows by ‖want_abs‖ / ‖want‖, so the
/// tolerance is [`sum_tol`]`(k)` times that condition number (DESIGN.md, "Numbers").
pub fn assert_sum_close(what: &str, got: &[f32], want: &[f64], want_abs: &[f64], k: usize) {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cond = norm(want_abs) / norm(want);
    assert_close(what, got, want, sum_tol(k) * cond);
}

/// Absolute values, for the `want_abs` of [`assert_sum_close`].
pub fn abs64(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// The error bound of the GPU's δ-form KL (shaders/kl.wgsl) against the f64 reference on the same
/// f32 values: (absolute bound on the value, relative norm-wise bound on the gradient).
/// - Each row's softmax p takes exps of w0 − max: Vulkan allows 3 + 2|x| ulps for exp, with |x| up
///   to the row's range; then an n-term sum and a division. Every later quantity (μ, e, y, L, the
///   row's KL, p_new) adds a product and an n-term sum: with 4 such steps, a relative error of
///   (4 + 2·range + 4n)·2⁻²⁴ per row, and sum_tol(rows) for the mean over rows.
/// - Where |e| ≥ 10⁻², expm1(e) − e is computed as exp(e) − 1 − e: exp's error near 1,
///   (3 + 2|e|) ulps, plus two subtractions, is absolute, not relative to e²/2; it enters the row's
///   KL three times (in y, in Σ p q and in expm1(e − L)).
pub fn kl_tol(w: &[f64], w0: &[f64], shape: &[usize], axis: usize, want: f64) -> (f64, f64) {
    let ulp = 2f64.powi(-24);
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let (mut rel, mut cancel, mut e2) = (0.0f64, 0.0f64, 0.0f64);
    let mut cancel_rows = 0.0f64;
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            let row0: Vec<f64> = (0..n).map(|i| w0[at(i)]).collect();
            let mx = row0.iter().cloned().fold(f64::MIN, f64::max);
            let mn = row0.iter().cloned().fold(f64::MAX, f64::min);
            let z: f64 = row0.iter().map(|v| (v - mx).exp()).sum();
            let p: Vec<f64> = row0.iter().map(|v| (v - mx).exp() / z).collect();
            let d: Vec<f64> = (0..n).map(|i| w[at(i)] - w0[at(i)]).collect();
            let mu: f64 = p.iter().zip(&d).map(|(a, b)| a * b).sum();
            rel = rel.max((4.0 + 2.0 * (mx - mn) + 4.0 * n as f64) * ulp);
            let mut c = 0.0;
            for i in 0..n {
                let e = d[i] - mu;
                e2 += p[i] * e * e;
                if e.abs() >= 1e-2 {
                    c += p[i] * 3.0 * (5.0 + 2.0 * e.abs()) * ulp;
                }
            }
            cancel += c;
            cancel_rows = cancel_rows.max(c);
        }
    }
    let rows = outer * inner;
    let value = (rel + sum_tol(rows)) * want + cancel / w.len() as f64;
    // The gradient p_new (e − L − KL_row): the absolute errors of L and KL_row against e's size.
    let e_rms = (e2 / rows as f64).sqrt();
    (value, rel + cancel_rows / e_rms)
}

/// The sums of absolute values behind LayerNorm's outputs over rows of `cols` (the `want_abs` of
/// [`assert_sum_close`]), for input x, scale gamma, shift beta and upstream gradient g:
/// - forward: mean and variance are cols-term sums (error √cols·U relative to the row's scale);
///   x̂ inherits it, then the scale and shift add two roundings: |x̂·gamma| + |beta|, cols terms;
/// - dx = rstd·(ĝ − mean ĝ − x̂·mean(ĝx̂)), ĝ = g·gamma: cols-term sums of absolute size
///   rstd·(|ĝ| + mean|ĝ| + |x̂|·mean|ĝx̂|);
/// - dgamma and dbeta: rows-term sums of |g·x̂| and |g| (x̂ itself carries the forward's cols-term
///   error, so dgamma's bound is for rows + cols terms).
pub struct LayerNormAbs {
    pub y: Vec<f64>,
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

/// [`LayerNormAbs`] of x (rows × cols, cols = gamma's length) with `eps` inside the square root.
pub fn layer_norm_abs(x: &[f64], gamma: &[f64], beta: &[f64], g: &[f64], eps: f64) -> LayerNormAbs {
    let cols = gamma.len();
    let n = cols as f64;
    let xh = symclone::reference::norm::layer_norm(x, &vec![1.0; cols], &vec![0.0; cols], eps);
    let y = xh
        .iter()
        .enumerate()
        .map(|(i, v)| (v * gamma[i % cols]).abs() + beta[i % cols].abs())
        .collect();
    let mut dx = Vec::with_capacity(x.len());
    for (ri, row) in x.chunks(cols).enumerate() {
        let mean = row.iter().sum::<f64>() / n;
        let rstd = 1.0 / (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n + eps).sqrt();
        let gh: Vec<f64> = (0..cols)
            .map(|j| (g[ri * cols + j] * gamma[j]).abs())
            .collect();
        let xr: Vec<f64> = (0..cols).map(|j| xh[ri * cols + j].abs()).collect();
        let mg = gh.iter().sum::<f64>() / n;
        let mgx = gh.iter().zip(&xr).map(|(a, b)| a * b).sum::<f64>() / n;
        for j in 0..cols {
            dx.push(rstd * (gh[j] + mg + xr[j] * mgx));
        }
    }
    let mut dgamma = vec![0.0; cols];
    let mut dbeta = vec![0.0; cols];
    for i in 0..x.len() {
        dgamma[i % cols] += (g[i] * xh[i]).abs();
        dbeta[i % cols] += g[i].abs();
    }
    LayerNormAbs {
        y,
        dx,
        dgamma,
        dbeta,
    }
}

pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = symclone::reference::rel_err(got, want);
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.1e}");
}

/// The quick preset cut to seconds on lavapipe: every model on every task, 16×16 digits, tiny
/// channels, 192 training and 64 test digits, one epoch, clones of 6 iterations.
pub fn tiny() -> symclone::config::RunConfig {
    use symclone::config::RunConfig;

    let mut c = RunConfig::preset("quick").unwrap();
    // Every model on every task (the quick preset leaves a few out for time).
    c.tasks = RunConfig::preset("paper").unwrap().tasks;
    c.train_n = Some(192);
    c.test_n = Some(64);
    c.side = 16;
    c.channels = Some([2, 2, 3, 3]);
    c.mlp = Some(vec![16]);
    c.clone.iters = 6;
    c.clone.retries = 0;
    c.clone.filters = 2;
    c.clone.batch = 4;
    c.clone.batch_p4 = 2;
    for t in &mut c.tasks {
        t.train.epochs = 1;
        t.train.batch = 64;
    }
    c
}
