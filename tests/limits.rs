//! The engine under limits lower than the adapter's: a buffer limit that is not a size class of the
//! pool, fewer storage bindings than a kernel takes, and limits the adapter lacks. (Lowered
//! workgroups per dimension: tests/fold.rs; WebGPU's default limits: the `*_under_webgpu_default_limits`
//! tests of each area; the optimiser's tensors per launch, which follow the storage bindings.) And
//! the limit no adapter states: lavapipe's loop limiter, which stops every
//! loop of an invocation after 65,535 iterations in all.

mod common;
use common::*;
use symclone::gpu::grid_1d;
use symclone::ops::{elementwise, matmul, optim, reduce};
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
    l.max_storage_buffers_per_shader_stage = 3;
    let g = gpu_with_limits(l);
    let t = || Tensor::zeros(&g, &[8]).unwrap();
    let (p, gr, state, clip) = (t(), t(), Tensor::zeros(&g, &[16]).unwrap(), t());
    // An optimiser step binds at least four: the clip coefficient, the moments, one (parameters,
    // gradient) pair.
    let slot = optim::Slot {
        param: &p,
        grad: &gr,
        scale: 1.0,
        offset: 0,
    };
    assert_eq!(optim::slots_per_launch(&g), 1);
    let e = optim::step_(
        &[slot],
        &state,
        &clip,
        optim::Rule::Adam(adam_step(true, 1)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("optim_k1::adam") && e.contains("max_storage_buffers_per_shader_stage"),
        "{e}"
    );
    // Three are fine.
    assert!(p.axpby(&gr, 1.0, 1.0).is_ok());
}

/// Sums whose kernels loop longer than lavapipe lets an invocation run: a matrix product over
/// 70,000 terms and a sum over 300,000 rows. On a driver with the loop limiter they are refused
/// with an error that names it (there they would be silently wrong); elsewhere they are right.
/// Sizes within the budget run everywhere.
#[test]
fn sums_past_the_loop_limiter_are_refused_where_it_would_cut_them() {
    let g = gpu();
    let mut rg = rng(61);
    for (k, runs) in [(60_000usize, true), (70_000, !g.loop_limited())] {
        let a = rg.normal_vec(k);
        let b = rg.normal_vec(k);
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let abs: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        let ta = Tensor::from_slice(&g, &[1, k], &a).unwrap();
        let tb = Tensor::from_slice(&g, &[k, 1], &b).unwrap();
        match matmul::matmul(&ta, &tb, false, false) {
            Ok(c) => {
                assert!(runs, "k = {k} ran on {}", g.info.name);
                let got = c.to_vec().unwrap()[0] as f64;
                let tol = symclone::reference::tol::sum_tol(k) * abs;
                assert!((got - want).abs() <= tol, "k = {k}: {got} vs {want}");
            }
            Err(e) => {
                assert!(!runs, "k = {k}: {e}");
                let e = e.to_string();
                assert!(
                    e.contains("70000 loop iterations") && e.contains("65,535"),
                    "{e}"
                );
            }
        }
    }
    // A bias gradient whose one-launch form would pass the loop budget (256 images of 60,000
    // values per invocation) takes the sum over the planes and the sum over the batch instead,
    // and stays exact; the one-launch form itself is refused on a limited driver.
    let (b, plane) = (256usize, 60_000usize);
    assert!(!reduce::batch_plane_fits(b, plane));
    let gy = Tensor::full(&g, &[b, 1, plane], 1.0).unwrap();
    let db = symclone::ops::conv::conv2d_bias_grad(&gy).unwrap();
    assert_eq!(db.to_vec().unwrap(), vec![(b * plane) as f32]);
    assert_eq!(reduce::sum_batch_plane(&gy).is_ok(), !g.loop_limited());
    for (n, runs) in [(200_000usize, true), (300_000, !g.loop_limited())] {
        let x = Tensor::full(&g, &[n, 2], 1.0).unwrap();
        match reduce::sum_axis(&x, 0) {
            Ok(s) => {
                assert!(runs, "n = {n} ran on {}", g.info.name);
                assert_eq!(s.to_vec().unwrap(), vec![n as f32; 2]);
            }
            Err(e) => {
                assert!(!runs, "n = {n}: {e}");
                assert!(e.to_string().contains("a sum over 300000 rows"), "{e}");
            }
        }
    }
}

/// An optimiser step over fourteen parameter tensors of ragged sizes (1 to 300 elements, gaps in
/// the packed state, a scale per tensor and a clip coefficient) on the adapter's own limits, in as
/// few launches as its storage bindings allow (one on lavapipe), gives bit for bit the parameters
/// and state of the same steps under WebGPU's default limits, three tensors per launch: Adam,
/// AdamW and SGD, three steps each.
#[test]
fn an_optimiser_step_is_the_same_bit_for_bit_whatever_the_tensors_per_launch() {
    use symclone::gpu::KernelFamily;
    let (ga, gw) = (gpu(), gpu_webgpu(KernelFamily::Register));
    let (ka, kw) = (optim::slots_per_launch(&ga), optim::slots_per_launch(&gw));
    assert_eq!(kw, 3);
    let tensors = 14;
    if ga.limits.max_storage_buffers_per_shader_stage >= 2 + 2 * tensors as u32 {
        assert!(ka >= tensors, "{ka} tensors per launch");
    }
    let mut rg = rng(71);
    let sizes: Vec<usize> = (0..tensors).map(|_| 1 + rg.below(300)).collect();
    let scales: Vec<f32> = (0..tensors)
        .map(|i| [1.0, 0.5, 0.25, 1.0 / 3.0][i % 4])
        .collect();
    // Each tensor's state after a gap of i entries.
    let mut offsets = Vec::new();
    let mut total = 0;
    for (i, &n) in sizes.iter().enumerate() {
        offsets.push(total + i);
        total += i + n;
    }
    let rules = [
        ("adam", optim::Rule::Adam(adam_step(false, 1))),
        ("adamw", optim::Rule::Adam(adam_step(true, 1))),
        (
            "sgd",
            optim::Rule::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 1e-3,
            },
        ),
    ];
    for (what, rule) in rules {
        let values: Vec<Vec<f32>> = sizes.iter().map(|&n| rg.normal_vec(n)).collect();
        let on = |g: &std::sync::Arc<Gpu>| {
            let params: Vec<Tensor> = values
                .iter()
                .map(|v| Tensor::from_slice(g, &[v.len()], v).unwrap())
                .collect();
            let state = Tensor::zeros(g, &[rule.moments() * total]).unwrap();
            (params, state)
        };
        let (pa, sa) = on(&ga);
        let (pw, sw) = on(&gw);
        for t in 1..=3u32 {
            let rule = match rule {
                optim::Rule::Adam(h) => optim::Rule::Adam(optim::AdamStep { t, ..h }),
                sgd => sgd,
            };
            let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| rg.normal_vec(n)).collect();
            let coef = [0.8125 - 0.125 * t as f32, 3.0];
            let mut launches = Vec::new();
            for (g, params, state) in [(&ga, &pa, &sa), (&gw, &pw, &sw)] {
                let gs: Vec<Tensor> = grads
                    .iter()
                    .map(|v| Tensor::from_slice(g, &[v.len()], v).unwrap())
                    .collect();
                let clip = Tensor::from_slice(g, &[2], &coef).unwrap();
                let slots = optim::Slot::each(params, &gs, &scales, &offsets);
                g.sync().unwrap();
                let before = g.counters();
                optim::step_(&slots, state, &clip, rule).unwrap();
                launches.push(g.counters().since(&before).family("optim").dispatches);
            }
            assert_eq!(
                launches,
                [tensors.div_ceil(ka) as u64, tensors.div_ceil(3) as u64],
                "{what}, step {t}: launches on the adapter's limits and WebGPU's"
            );
            for i in 0..tensors {
                assert!(
                    bits(&pa[i]) == bits(&pw[i]),
                    "{what}, step {t}: tensor {i} of {} elements differs",
                    sizes[i]
                );
            }
            assert!(
                bits(&sa) == bits(&sw),
                "{what}, step {t}: the state differs"
            );
            if t == 1 {
                for (p, v) in pa.iter().zip(&values) {
                    assert_ne!(&p.to_vec().unwrap(), v, "{what}: a tensor kept its values");
                }
            }
        }
    }
}

fn adam_step(decoupled: bool, t: u32) -> optim::AdamStep {
    optim::AdamStep {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        decoupled,
        t,
    }
}
