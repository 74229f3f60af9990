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

// Not every test binary uses every bound.
#[allow(unused_imports)]
pub use symclone::reference::tol::{kl_tol, layer_norm_abs, sum_tol};

/// `got` against the f64 `want` whose entries are K-term sums; `want_abs` is the same sums over
/// the terms' absolute values: within the library's bound ([`symclone::reference::tol::sum_bound`]:
/// [`sum_tol`]`(k)` times the sums' condition number ‖want_abs‖ / ‖want‖).
pub fn assert_sum_close(what: &str, got: &[f32], want: &[f64], want_abs: &[f64], k: usize) {
    assert_close(
        what,
        got,
        want,
        symclone::reference::tol::sum_bound(want, want_abs, k),
    );
}

/// Absolute values, for the `want_abs` of [`assert_sum_close`].
pub fn abs64(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// A tensor's values as their bit patterns, for comparisons that must hold bit for bit.
pub fn bits(t: &symclone::tensor::Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
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

/// Run the binary with `args`: its exit status (-1 when killed by a signal) and its stderr.
pub fn run_binary(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .args(args)
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), err)
}
