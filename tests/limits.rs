//! The engine under limits lower than the adapter's: a buffer limit that is not a size class of the
//! pool, fewer storage bindings than a kernel takes, and limits the adapter lacks. (Lowered
//! workgroups per dimension: tests/fold.rs; WebGPU's default limits: the `*_under_webgpu_default_limits`
//! tests of each area.)

mod common;
use common::*;
use symclone::gpu::grid_1d;
use symclone::ops::{elementwise, optim};
use symclone::tensor::Tensor;
use symclone::Gpu;

#[test]
fn a_buffer_limit_that_is_no_size_class_still_fits_what_it_allows() {
    // 100 MB is no size class of the pool (90 MB rounds up to 96 MiB); a tensor within the limit
    // must still be created and used. Its 22.5 M elements at 256 per workgroup are 87,891
    // workgroups: past the adapter's own per-dimension limit (65,535 on lavapipe, as on most GPUs),
    // so this grid folds at the real limit, not a lowered one.
    let mut l = adapter_limits();
    l.max_buffer_size = 100_000_000;
    l.max_storage_buffer_binding_size = 100_000_000;
    let g = gpu_with_limits(l);
    let n: usize = 90_000_000 / 4;
    let max = g.limits.max_compute_workgroups_per_dimension;
    if n.div_ceil(256) > max as usize {
        assert!(grid_1d(n, 256, max).unwrap()[1] > 1);
    }
    let x = Tensor::full(&g, &[n], 2.0).unwrap();
    let y = elementwise::affine(&x, 0.5, 1.0).unwrap();
    drop(x);
    let v = y.to_vec().unwrap();
    assert_eq!(v.len(), n);
    if let Some(i) = v.iter().position(|&a| a != 2.0) {
        panic!(
            "element {i} of {n} is {} (folded grid of {max} per row)",
            v[i]
        );
    }
    drop(y);
    let e = Tensor::empty(&g, &[25_000_001]).unwrap_err().to_string();
    assert!(e.contains("100000000"), "{e}");
}

#[test]
fn limits_beyond_the_adapter_are_refused_by_name() {
    let mut l = adapter_limits();
    l.max_compute_workgroup_storage_size += 1;
    let e = Gpu::with_limits(&symclone::gpu::AdapterChoice::from_env(), l)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_compute_workgroup_storage_size"), "{e}");
}

#[test]
fn a_kernel_binding_more_storage_buffers_than_allowed_is_an_error_naming_the_limit() {
    let mut l = adapter_limits();
    l.max_storage_buffers_per_shader_stage = 4;
    let g = gpu_with_limits(l);
    let t = || Tensor::zeros(&g, &[8]).unwrap();
    let (p, gr, m, v, clip) = (t(), t(), t(), t(), t());
    let h = optim::AdamStep {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: true,
        t: 1,
    };
    // Adam binds five: parameters, gradient, clip coefficient, two moments.
    let e = optim::adam_(&p, &gr, &m, &v, &clip, h)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("optim::adam") && e.contains("max_storage_buffers_per_shader_stage"),
        "{e}"
    );
    // Four are fine.
    assert!(p.axpby(&gr, 1.0, 1.0).is_ok());
}
