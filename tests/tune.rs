//! Variant choice by measurement (`gpu::tune`): each device here keeps its cache in a temporary
//! folder; choices are timed, checked against the reference, written and read back; a corrupt cache
//! is ignored with one warning and rewritten; a forced family or variant is respected.

mod common;
use common::*;
use std::process::Command;
use std::sync::Arc;
use symclone::gpu::KernelFamily;
use symclone::ops::{conv, matmul};
use symclone::reference::{self as r, matmul::Dims, to64};
use symclone::tensor::Tensor;
use symclone::Gpu;

/// A fresh device on the test adapter choosing by measurement, its cache in `dir`.
fn auto_gpu(dir: &std::path::Path) -> Arc<Gpu> {
    let g = Gpu::from_env().expect("adapter");
    g.set_family_auto();
    g.set_cache_dir(dir.to_path_buf());
    g
}

/// A product of `s`³ on `g`, checked against the reference.
fn product(g: &Arc<Gpu>, s: usize) {
    let mut rg = rng(s as u64);
    let a = rg.normal_vec(s * s);
    let b = rg.normal_vec(s * s);
    let ga = Tensor::from_slice(g, &[s, s], &a).unwrap();
    let gb = Tensor::from_slice(g, &[s, s], &b).unwrap();
    let got = matmul::matmul(&ga, &gb, false, false)
        .unwrap()
        .to_vec()
        .unwrap();
    let d = Dims {
        za: 0,
        zb: 0,
        m: s,
        k: s,
        n: s,
        ta: false,
        tb: false,
    };
    let want = r::matmul::forward(&to64(&a), &to64(&b), d, None, false);
    assert_close("auto matmul", &got, &want, sum_tol(s) * 8.0);
}

#[test]
fn a_timed_choice_is_the_fastest_that_agrees_is_cached_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let g = auto_gpu(dir.path());
    product(&g, 256);
    let c = g.choices();
    assert_eq!(c.len(), 1, "{c:?}");
    let c = &c[0];
    assert_eq!(
        (c.op.as_str(), c.bucket.as_str()),
        ("matmul", "m256n256k256")
    );
    assert_eq!(c.how, "timed", "{c:?}");
    // Every variant agrees with the reference here; the chosen one is the fastest.
    assert!(c.rejected.is_empty(), "{c:?}");
    let runnable = matmul::variants::VARIANTS.iter().filter(|v| v.runs_on(&g));
    assert_eq!(c.times.len(), runnable.count(), "{c:?}");
    let best = c.times.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(best.0, c.variant);
    eprintln!("{} on {}: {:?}", c.variant, g.info.name, c.times);
    // Written, then read back by another device instead of timing again.
    let path = g.cache_path().unwrap();
    assert!(path.starts_with(dir.path()) && path.exists(), "{path:?}");
    let h = auto_gpu(dir.path());
    product(&h, 256);
    let again = &h.choices()[0];
    assert_eq!(again.how, "cache");
    assert_eq!(again.variant, c.variant);
    assert_eq!(again.times, c.times);
}

#[test]
fn a_budget_spent_within_a_bucket_stops_its_timing_after_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let g = auto_gpu(dir.path());
    g.set_tune_budget(1e-3);
    product(&g, 256);
    let c = &g.choices()[0];
    assert_eq!(c.how, "timed", "{c:?}");
    // The adapter type's default family is timed first; the budget then ends the bucket.
    let default = matmul::variants::VARIANTS
        .iter()
        .find(|v| v.family == g.default_family())
        .unwrap();
    assert_eq!(c.times.len(), 1, "{c:?}");
    assert_eq!(
        (c.times[0].0.as_str(), c.variant.as_str()),
        (default.name, default.name)
    );
}

#[test]
fn small_products_take_the_adapter_default_untimed() {
    let dir = tempfile::tempdir().unwrap();
    let g = auto_gpu(dir.path());
    // 60³ multiply-adds: under the timing threshold, over `mm_strided`'s (and N is aligned).
    product(&g, 60);
    let c = &g.choices()[0];
    assert_eq!(c.how, "small");
    let v = matmul::variants::variant(&c.variant).unwrap();
    assert_eq!(v.family, g.default_family());
    assert!(
        !g.cache_path().unwrap().exists(),
        "small choices are not cached"
    );
}

#[test]
fn a_forced_family_or_variant_is_respected_without_timing() {
    let dir = tempfile::tempdir().unwrap();
    let g = auto_gpu(dir.path());
    g.set_family(KernelFamily::Workgroup);
    product(&g, 256);
    let c = &g.choices()[0];
    assert_eq!(
        (c.variant.as_str(), c.how.as_str()),
        ("mm_block64x64", "family")
    );
    g.force(matmul::OP, Some("mm_tiled"));
    product(&g, 256);
    let c = &g.choices()[0];
    assert_eq!((c.variant.as_str(), c.how.as_str()), ("mm_tiled", "forced"));
    assert!(
        !g.cache_path().unwrap().exists(),
        "nothing timed, nothing cached"
    );
    // An unknown variant is a one-line error naming the candidates.
    g.force(matmul::OP, Some("mm_nope"));
    let a = Tensor::zeros(&g, &[300, 300]).unwrap();
    let e = matmul::matmul(&a, &a, false, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mm_nope") && e.contains("mm_reg") && !e.contains('\n'),
        "{e}"
    );
}

#[test]
fn convolution_passes_are_chosen_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let g = auto_gpu(dir.path());
    // Three passes and im2col's product timed on a loaded machine: more than the default budget.
    g.set_tune_budget(120.0);
    let mut rg = rng(5);
    let d = conv::ConvDims {
        batch: 8,
        cin: 16,
        h: 20,
        w: 20,
        cout: 16,
        k: 3,
        pad: 1,
    };
    let x = rg.normal_vec(8 * 16 * 20 * 20);
    let w = rg.normal_vec(16 * 16 * 9);
    let gx = Tensor::from_slice(&g, &[8, 16, 20, 20], &x).unwrap();
    let gw = Tensor::from_slice(&g, &[16, 16, 3, 3], &w).unwrap();
    let y = conv::conv2d(&gx, &gw, None, 1).unwrap();
    conv::conv2d_input_grad(&y, &gw, d).unwrap();
    conv::conv2d_weight_grad(&gx, &y, d).unwrap();
    let want = r::conv::forward(&to64(&x), &to64(&w), None, d);
    assert_close("auto conv", &y.to_vec().unwrap(), &want, sum_tol(144) * 8.0);
    // (im2col's matrix product makes a matmul choice of its own while it is timed.)
    let convs: Vec<_> = g
        .choices()
        .into_iter()
        .filter(|c| c.op != "matmul")
        .collect();
    let ops: Vec<&str> = convs.iter().map(|c| c.op.as_str()).collect();
    assert_eq!(ops, ["conv_fwd", "conv_input_grad", "conv_weight_grad"]);
    for c in convs {
        assert_eq!(c.how, "timed", "{c:?}");
        eprintln!("{} {} → {} {:?}", c.op, c.bucket, c.variant, c.times);
    }
}

fn tune_cli(cache: &std::path::Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .args(["tune", "--presets", "none", "--budget", "30"])
        .env("SYMCLONE_CACHE", cache)
        .env_remove("SYMCLONE_FAMILY")
        .output()
        .unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{e}");
    (o, e)
}

#[test]
fn tune_fills_the_cache_and_a_corrupt_cache_is_ignored_with_one_warning_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (table, _) = tune_cli(dir.path());
    assert!(table.contains("| matmul | m1024n1024k1024 |"), "{table}");
    assert!(table.contains("| timed |"), "{table}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one cache file, no temporary left: {files:?}"
    );
    std::fs::write(&files[0], b"{ not json").unwrap();
    let (table2, err) = tune_cli(dir.path());
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("cannot be read"), "{err}");
    assert!(table2.contains("| timed |"), "timed again: {table2}");
    let (table3, err3) = tune_cli(dir.path());
    assert!(!err3.contains("warning"), "{err3}");
    assert!(
        table3.contains("| cache |") && !table3.contains("| timed |"),
        "{table3}"
    );
}

#[test]
fn a_candidate_far_slower_than_the_best_so_far_is_not_timed_again() {
    use symclone::gpu::tune::timed_runs;
    // Nothing measured yet: a slow first run is timed once more, a fast one three times.
    assert_eq!(timed_runs(2.5, f64::INFINITY), 1);
    assert_eq!(timed_runs(0.01, f64::INFINITY), 3);
    // 2.5 s against a best of 0.3 s: its first run's time stands.
    assert_eq!(timed_runs(2.5, 0.3), 0);
    // Close to the best, or short: timed as before.
    assert_eq!(timed_runs(0.9, 0.3), 1);
    assert_eq!(timed_runs(0.4, 0.01), 1);
    assert_eq!(timed_runs(0.02, 0.001), 3);
}
