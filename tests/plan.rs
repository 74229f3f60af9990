//! `plan`: per-phase peak memory and work without training, the FLOP counter it rests on, and the
//! one-line errors that say what to change when a size is over an adapter limit.

mod common;
use common::*;
use symclone::commands::plan::{markdown, one_step, plan};
use symclone::config::RunConfig;
use symclone::ops::conv::conv2d;
use symclone::ops::matmul::matmul;
use symclone::tensor::Tensor;

/// The pipeline tests' tiny configuration with three epochs.
fn tiny() -> RunConfig {
    let mut c = common::tiny();
    for t in &mut c.tasks {
        t.train.epochs = 3;
    }
    c
}

#[test]
fn matrix_products_and_convolutions_count_two_flops_per_multiply_add() {
    // A device of its own: the counter is per device, and other tests share `gpu()`.
    let g = gpu_with_limits(adapter_limits());
    let mut r = rng(3);
    // Ragged sizes: the count is of the product, not of the padded kernel's work.
    let (m, k, n) = (13, 7, 10);
    let a = Tensor::from_slice(&g, &[m, k], &r.normal_vec(m * k)).unwrap();
    let b = Tensor::from_slice(&g, &[k, n], &r.normal_vec(k * n)).unwrap();
    let f0 = g.flops();
    matmul(&a, &b, false, false).unwrap();
    assert_eq!(g.flops() - f0, 2 * (m * k * n) as u64);
    // A convolution: batch 2, 3 → 5 channels, 9×8 input, 3×3 filter, padding 1 (9×8 output).
    let x = Tensor::from_slice(&g, &[2, 3, 9, 8], &r.normal_vec(2 * 3 * 9 * 8)).unwrap();
    let w = Tensor::from_slice(&g, &[5, 3, 3, 3], &r.normal_vec(5 * 3 * 9)).unwrap();
    let f0 = g.flops();
    conv2d(&x, &w, None, 1).unwrap();
    assert_eq!(g.flops() - f0, 2 * (2 * 5 * 3 * 9 * 8 * 9) as u64);
}

#[test]
fn one_step_keeps_the_sizes_and_cuts_the_steps() {
    let c = tiny();
    let one = one_step(&c);
    assert_eq!((one.clone.iters, one.seeds), (1, 1));
    assert!(one.tasks.iter().all(|t| t.train.epochs == 1));
    assert_eq!(one.train_n, Some(64));
    // What sets the memory is unchanged.
    assert_eq!(
        (one.side, one.channels, one.clone.filters),
        (16, c.channels, 2)
    );
    assert_eq!(one.clone.batch, c.clone.batch);
    assert!(one
        .tasks
        .iter()
        .zip(&c.tasks)
        .all(|(a, b)| a.train.batch == b.train.batch));
}

#[test]
fn a_plan_measures_every_phase_and_model_and_holds_them_against_the_budget() {
    let g = gpu();
    let c = tiny();
    let p = plan(&g, &c, 16 << 30).unwrap();
    assert!(p.failure.is_none(), "{:?}", p.failure);
    let models: usize = c.tasks.iter().map(|t| t.models.len()).sum();
    let training: Vec<_> = p
        .rows
        .iter()
        .filter(|r| r.what.starts_with("training"))
        .collect();
    assert_eq!(training.len(), models);
    for r in &training {
        // 3 epochs of ⌈192 / 64⌉ steps, 1 seed.
        assert_eq!(r.steps, 9, "{}", r.what);
        assert!(r.step_flops > 0 && r.peak_bytes.unwrap() > 0, "{r:?}");
    }
    let cloning = p
        .rows
        .iter()
        .find(|r| r.what.starts_with("cloning"))
        .unwrap();
    assert_eq!(cloning.steps, 6);
    let clones: u64 = p
        .rows
        .iter()
        .filter(|r| r.what.trim_start().starts_with("clone "))
        .map(|r| r.step_flops)
        .sum();
    assert!(clones > 0 && clones == cloning.step_flops, "{p:?}");
    let md = markdown(&p);
    assert!(md.contains("every phase fits the budget"), "{md}");
    // The same measurements against a 1 MiB card: cloning is over it, and the fix is named.
    let small = symclone::commands::plan::Plan {
        budget_bytes: 1 << 20,
        ..p
    };
    let md = markdown(&small);
    assert!(
        md.contains("over the budget: cloning") && md.contains("--clone-batch"),
        "{md}"
    );
}

#[test]
fn a_clone_over_the_binding_limit_is_refused_before_any_work_naming_what_to_leave_out() {
    // The lift clone at d = 16 holds 9 blocks of 196 × 256 floats (1.8 MB): over a 256 KiB
    // storage-binding limit. The check comes before any phase, for `plan` and `run` alike.
    let mut l = adapter_limits();
    l.max_storage_buffer_binding_size = 256 << 10;
    let g = gpu_with_limits(l);
    let t = std::time::Instant::now();
    let p = plan(&g, &tiny(), 16 << 30).unwrap();
    let f = p.failure.expect("a failure");
    assert!(
        f.contains("lift16 clone's blocks")
            && f.contains("max_storage_buffer_binding_size limit of 262144")
            && f.contains("leave out faux-gcnn on symmetric"),
        "{f}"
    );
    assert!(p.rows.is_empty());
    assert!(
        t.elapsed().as_secs() < 30,
        "refused only after {:?}",
        t.elapsed()
    );
}
