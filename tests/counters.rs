//! The runtime's counts: a known sequence of launches gives exact dispatch and byte counts per
//! kernel family, and generated kernels are counted under their family's name.

mod common;

use common::{bits, gpu};
use symclone::gpu::counters::{family_name, family_of, FAMILY_SLOTS};
use symclone::gpu::Counters;
use symclone::ops::matmul::matmul;
use symclone::tensor::Tensor;

/// The counts of `name`'s family and of every other family (which must be zero).
fn only(c: &Counters, names: &[&str]) {
    for i in 0..FAMILY_SLOTS {
        if !names.contains(&family_name(i)) {
            assert_eq!(c.families[i].dispatches, 0, "{}: {c:?}", family_name(i));
        }
    }
}

#[test]
fn an_elementwise_op_and_a_matrix_product_are_counted_exactly() {
    let g = gpu();
    // Inputs uploaded before the snapshot (uploads are copies, not dispatches).
    let n = 1000;
    let y = Tensor::from_slice(&g, &[n], &vec![1.0; n]).unwrap();
    let x = Tensor::from_slice(&g, &[n], &vec![2.0; n]).unwrap();
    let (m, k, cols) = (8, 12, 16);
    let a = Tensor::from_slice(&g, &[m, k], &vec![0.5; m * k]).unwrap();
    let b = Tensor::from_slice(&g, &[k, cols], &vec![0.25; k * cols]).unwrap();
    g.sync().unwrap();
    let before = g.counters();
    // `acc`: y (read-write) += x (read-only).
    y.acc_(&x, 1.0).unwrap();
    // A (8×12)·B (12×16), 16 columns a multiple of 4, no bias: one dispatch binding A, B, B again
    // in the unused bias slot (all read-only) and C (read-write).
    let c = matmul(&a, &b, false, false).unwrap();
    let d = g.counters().since(&before);
    assert_eq!(d.dispatches, 2, "{d:?}");
    let e = d.family("elementwise");
    assert_eq!(
        (e.dispatches, e.bytes_read, e.bytes_written),
        (1, 4 * n as u64, 4 * n as u64)
    );
    let mm = d.family("matmul");
    let (a_bytes, b_bytes, c_bytes) = (4 * m * k, 4 * k * cols, 4 * m * cols);
    assert_eq!(
        (mm.dispatches, mm.bytes_read, mm.bytes_written),
        (1, (a_bytes + 2 * b_bytes) as u64, c_bytes as u64)
    );
    only(&d, &["elementwise", "matmul"]);
    assert_eq!(d.bytes_read(), (4 * n + a_bytes + 2 * b_bytes) as u64);
    assert_eq!(d.bytes_written(), (4 * n + c_bytes) as u64);
    assert!(d.record_ns > 0);
    // Nothing was submitted while recording; a flush submits both dispatches at once.
    assert_eq!((d.submissions, d.submit_ns), (0, 0));
    g.flush().unwrap();
    let f = g.counters().since(&before);
    assert_eq!((f.dispatches, f.submissions), (2, 1));
    assert!(f.submit_ns > 0);
    // Per step over two steps: halves, and only the families that ran.
    let s = d.per_step(2);
    assert_eq!((s.steps, s.dispatches), (2, 1.0));
    assert_eq!(s.families.len(), 2, "{s:?}");
    assert_eq!(s.families["elementwise"].bytes_written, 2.0 * n as f64);
    // The results are right (the counting changed nothing).
    assert_eq!(y.to_vec().unwrap(), vec![3.0; n]);
    assert_eq!(c.to_vec().unwrap(), vec![0.5 * 0.25 * k as f32; m * cols]);
    // A snapshot taken now, with nothing launched since, differs by nothing.
    let now = g.counters();
    assert_eq!(now.since(&now), Counters::default());
}

#[test]
fn generated_kernels_count_under_their_family() {
    let name = |s: &str| family_name(family_of(s));
    assert_eq!(name("matmul"), "matmul");
    assert_eq!(name("matmul_reg_4x8"), "matmul");
    assert_eq!(name("matmul_subgroup"), "matmul");
    assert_eq!(name("conv_reg_3_4x4"), "conv");
    assert_eq!(name("conv_dw_reg_3_4x4"), "conv");
    assert_eq!(name("conv_gemm"), "conv_gemm");
    assert_eq!(name("optim_k12"), "optim");
    assert_eq!(name("elementwise"), "elementwise");
    assert_eq!(name("matmulx"), "other");
    assert_eq!(name("probe"), "other");
    assert_eq!(family_name(FAMILY_SLOTS - 1), "other");
}

/// An optimiser over fourteen trainable tensors takes one update launch per step where the device
/// allows 2 + 2 · 14 storage bindings (lavapipe), and five, three tensors each, under WebGPU's
/// default limits; the parameters come out the same bit for bit.
#[test]
fn an_optimiser_groups_its_tensors_by_what_the_device_binds() {
    use symclone::autograd::Param;
    use symclone::gpu::KernelFamily;
    use symclone::nn::{Optimizer, OptimizerKind};
    use symclone::ops::optim;
    let tensors = 14;
    let sizes: Vec<usize> = (0..tensors).map(|i| 1 + (i * 37) % 300).collect();
    let mut launches = Vec::new();
    let mut values = Vec::new();
    // A device of its own: the shared one's counters are read by the tests beside this one.
    let own = symclone::Gpu::from_env().expect("adapter");
    for g in [own.clone(), common::gpu_webgpu(KernelFamily::Register)] {
        let params: Vec<Param> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let v: Vec<f32> = (0..n).map(|j| ((i + j) % 7) as f32 * 0.125).collect();
                Param::new(format!("p{i}"), Tensor::from_slice(&g, &[n], &v).unwrap())
            })
            .collect();
        let mut opt = Optimizer::new(OptimizerKind::adamw(0.01), 1e-2, &params);
        let mut per_step = Vec::new();
        for t in 0..2 {
            for (i, p) in params.iter().enumerate() {
                let v: Vec<f32> = (0..sizes[i])
                    .map(|j| ((i * 3 + j + t) % 5) as f32 - 2.0)
                    .collect();
                p.accumulate_grad(Tensor::from_slice(&g, &[sizes[i]], &v).unwrap())
                    .unwrap();
            }
            g.sync().unwrap();
            let before = g.counters();
            opt.step().unwrap();
            per_step.push(g.counters().since(&before).family("optim").dispatches);
            opt.zero_grad();
        }
        let k = optim::slots_per_launch(&g);
        assert_eq!(
            per_step,
            vec![tensors.div_ceil(k) as u64; 2],
            "{k} per launch"
        );
        launches.push(per_step[0]);
        values.push(params.iter().map(|p| bits(&p.value())).collect::<Vec<_>>());
    }
    if own.limits.max_storage_buffers_per_shader_stage >= 2 + 2 * tensors as u32 {
        assert_eq!(launches, [1, 5]);
    }
    for (i, (a, w)) in values[0].iter().zip(&values[1]).enumerate() {
        assert!(a == w, "tensor {i} differs between the two devices");
    }
}
