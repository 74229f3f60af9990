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
