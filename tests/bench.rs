//! The benchmark checks every kernel row against its CPU baseline before timing it: a fast wrong
//! kernel is an error (and a non-zero exit of `symclone-gpu bench`), not a row.

mod common;

use common::gpu;
use std::cell::Cell;
use symclone::bench::{time_gpu, Check};
use symclone::tensor::Tensor;

#[test]
fn a_row_that_disagrees_with_its_baseline_is_refused_before_it_is_timed() {
    let g = gpu();
    let want: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
    let right: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let mut wrong = right.clone();
    wrong[500] += 0.5;
    let check = |case| Check {
        case,
        want: &want,
        terms: 64,
    };
    // A correct result is timed: one checked run, then the timed ones.
    let runs = Cell::new(0);
    let ok = time_gpu(&g, 3, check("right"), || {
        runs.set(runs.get() + 1);
        Tensor::from_slice(&g, &[1000], &right)
    });
    assert!(ok.is_ok(), "{:?}", ok.err());
    assert!(runs.get() > 1);
    // A wrong one (one element off by 0.5: 2e-2 relative) is refused after its one checked run.
    let runs = Cell::new(0);
    let e = time_gpu(&g, 3, check("wrong"), || {
        runs.set(runs.get() + 1);
        Tensor::from_slice(&g, &[1000], &wrong)
    })
    .unwrap_err()
    .to_string();
    assert_eq!(runs.get(), 1, "timed after a mismatch");
    assert!(
        e.contains("bench case 'wrong'") && e.contains("differs from the CPU baseline"),
        "{e}"
    );
    // The tolerance grows with the terms each output sums: 64 · 2⁻²³.
    assert!((check("t").tolerance() - 64.0 * f64::from(f32::EPSILON)).abs() < 1e-18);
}

/// The training-step rows of the networks train the quick preset's rot-sb networks with its
/// settings, so their counts are the ones a quick run's steps make.
#[test]
fn the_model_rows_have_the_quick_presets_shapes() {
    use symclone::bench::models::{quick_arch, MODELS, QUICK_CLONE, QUICK_TRAIN};
    use symclone::config::RunConfig;
    use symclone::data::Task;
    let quick = RunConfig::preset("quick").unwrap();
    let rot = quick.tasks.iter().find(|t| t.task == "rot-sb").unwrap();
    for kind in MODELS {
        assert!(rot.models.contains(&kind), "{kind}");
        assert_eq!(quick_arch(kind), quick.arch(kind, Task::RotSb), "{kind}");
    }
    let t = &rot.train;
    assert_eq!(QUICK_TRAIN, (t.batch, t.lr, t.weight_decay, t.beta));
    assert_eq!(t.optimizer, "adam");
    assert_eq!(QUICK_CLONE, (quick.clone.nb, quick.clone.m));
}

/// A training-step row carries its counts, and `bench`'s Markdown and JSON show them.
#[test]
fn a_training_step_row_reports_its_counts() {
    // A device of its own: the counts are per device, and the other tests here launch too.
    let g = common::gpu_with_limits(common::adapter_limits());
    let opts = symclone::bench::Options {
        filter: Some("train step mlp quick".into()),
        reps: 3,
        max_square: 64,
    };
    let rows = symclone::bench::run(&g, &opts, &mut |_| {}).unwrap();
    assert_eq!(rows.len(), 1);
    let c = rows[0].counts.as_ref().expect("counts");
    // The MLP 256-256-128-20 with dropout: a handful of products, element-wise passes and one
    // Adam dispatch per as many of its six parameter tensors as the device binds at once, every
    // step alike.
    assert!(c.dispatches >= 10.0 && c.dispatches.fract() == 0.0, "{c:?}");
    assert!(c.bytes_read > 4.0 * (256 * 256) as f64, "{c:?}");
    assert!(c.bytes_written > 0.0 && c.record_us > 0.0, "{c:?}");
    let per_launch = symclone::ops::optim::slots_per_launch(&g);
    assert_eq!(
        c.families["optim"].dispatches,
        6usize.div_ceil(per_launch) as f64,
        "{c:?}"
    );
    let md = symclone::bench::markdown(&g, &rows);
    assert!(
        md.contains("| dispatches | MB read | MB written | CPU µs recording |"),
        "{md}"
    );
    let json = serde_json::to_value(&rows).unwrap();
    assert!(json[0]["counts"]["families"]["matmul"]["bytes_read"].as_f64() > Some(0.0));
}
