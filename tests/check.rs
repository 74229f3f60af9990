//! `symclone-gpu check`: every kernel variant against its CPU reference on the test adapter
//! (lavapipe in CI), here on a subset chosen by `--filter` to keep the test short; the case list
//! covers every variant and every shader family; bad input is one line and a non-zero exit; a
//! case whose output disagrees is a FAIL and a non-zero exit; and the tuner never chooses a
//! candidate that disagrees with the reference, saying why it was left out.

use std::process::Command;
use symclone::check::{self, Limits, Options, Status};
use symclone::gpu::tune::{Candidate, Op};
use symclone::gpu::{AdapterChoice, KernelFamily};
use symclone::Gpu;

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn both(filter: &str) -> Options {
    Options {
        limits: vec![Limits::Adapter, Limits::Webgpu],
        filter: Some(filter.into()),
    }
}

#[test]
fn the_case_list_covers_every_variant_and_every_shader_family() {
    let cases = check::cases();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let has = |what: &str| names.iter().any(|n| n.contains(what));
    for v in symclone::ops::matmul::variants::VARIANTS {
        assert!(has(&format!("matmul/{}", v.name)), "{}", v.name);
    }
    for (tm, tn) in symclone::ops::matmul::codegen::REG_TILES {
        assert!(has(&format!("matmul/mm_reg[{tm}x{tn}]")), "{tm}x{tn}");
    }
    for (name, _, _) in symclone::ops::conv::tune::ALGOS {
        assert!(has(&format!("conv/{name} ")), "{name}");
    }
    for a in symclone::ops::conv::tune::DW_ALGOS {
        assert!(has(&format!("conv/{} ", a.name)), "{}", a.name);
    }
    assert!(has("conv/conv_bwd_reg "));
    for s in symclone::gpu::shader::FAMILIES {
        let family = if s.name == "conv_gemm" {
            "conv"
        } else {
            s.name
        };
        assert!(
            cases.iter().any(|c| c.family == family),
            "no case runs the {} shaders",
            s.name
        );
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "case names are unique");
}

#[test]
fn a_filtered_check_passes_on_the_test_adapter_under_both_limits() {
    let choice = AdapterChoice::from_env();
    // The subgroup kernel (lavapipe has subgroups), a generated register tile, the implicit-GEMM
    // convolution (a GPU's choice), the fused backward, and ops of other families.
    for filter in [
        "mm_subgroup",
        "mm_reg[4x2]",
        "conv_igemm",
        "conv_bwd_reg 1x1",
        "layer_norm",
        "gather",
        "kl ",
        "swap12",
    ] {
        let mut lines = 0;
        let report = check::run(&choice, &both(filter), &mut |_| lines += 1).unwrap();
        assert!(!report.rows.is_empty(), "{filter}");
        assert!(lines > report.rows.len(), "a progress line per case");
        for row in &report.rows {
            assert_eq!(row.cells.len(), 2, "{}", row.case);
            for c in &row.cells {
                assert!(
                    c.status == Status::Pass
                        || (c.status == Status::Skipped && row.case.contains("mm_subgroup")),
                    "{}: {}",
                    row.case,
                    c.show()
                );
            }
        }
        report.verdict().unwrap();
    }
}

#[test]
fn the_command_prints_the_table_writes_json_and_markdown_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (json, md) = (dir.path().join("c.json"), dir.path().join("c.md"));
    let (code, out, err) = bin(&[
        "check",
        "--filter",
        "matmul/mm_block64x64",
        "--json",
        json.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| family | case | adapter limits"), "{out}");
    assert!(out.contains("webgpu limits"), "{out}");
    assert!(out.contains("| matmul | matmul/mm_block64x64 "), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    let n = check::select(Some("matmul/mm_block64x64")).unwrap().len();
    assert!(n >= 2, "{n}");
    assert!(
        err.contains(&format!("[1/{n}] adapter matmul/mm_block64x64")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{n} cases × 2 limits: {} passed", 2 * n)),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&md).unwrap(), out);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), n);
    assert_eq!(v["rows"][0]["cells"][1]["limits"], "webgpu");
    assert_eq!(v["rows"][0]["cells"][0]["status"], "pass");
    // --limits narrows it to one device.
    let (code, out, err) = bin(&["--limits", "webgpu", "check", "--filter", "layout/concat"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("webgpu limits") && !out.contains("adapter limits"),
        "{out}"
    );
}

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit() {
    for (args, says) in [
        (&["--adapter", "nomatch", "check"][..], "nomatch"),
        (
            &["check", "--filter", "no-such-kernel"][..],
            "no-such-kernel",
        ),
        (&["--limits", "huge", "check"][..], "unknown limits 'huge'"),
    ] {
        let (code, out, err) = bin(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("symclone-gpu:"))
            .collect();
        assert_eq!(ours.len(), 1, "{args:?}: {err}");
        assert!(ours[0].contains(says), "{args:?}: {err}");
    }
}

#[test]
fn a_case_that_disagrees_is_a_fail_and_a_nonzero_verdict() {
    let choice = AdapterChoice::from_env();
    // The reference of swap12's backward moved off its value, on both devices.
    let report = check::run_perturbed(
        &choice,
        &both("layout/swap12"),
        "swap12::backward",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.rows.len(), 1);
    for c in &report.rows[0].cells {
        assert_eq!(c.status, Status::Fail, "{}", c.show());
        let worst = c.worst.as_ref().unwrap();
        assert_eq!(worst.output, "swap12 backward");
        assert!(worst.err > worst.tol);
        // The forward output still passes: only the perturbed one fails.
        assert!(c.outputs.iter().any(|o| o.output == "swap12" && o.passed()));
    }
    assert_eq!(report.failures(), 2);
    assert!(report.markdown().contains("**FAIL** (swap12 backward"));
    let e = report.verdict().unwrap_err().to_string();
    assert!(e.contains("2 of 2 case runs failed"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn the_tuner_never_chooses_a_candidate_that_disagrees_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gpu::from_env().expect("adapter");
    g.set_family_auto();
    g.set_cache_dir(dir.path().to_path_buf());
    g.set_tune_budget(60.0);
    let op = Op::new(90, "check_test_op");
    let cands = [
        Candidate {
            name: "fast_but_wrong",
            family: KernelFamily::Register,
        },
        Candidate {
            name: "slow_and_right",
            family: KernelFamily::Workgroup,
        },
        Candidate {
            name: "broken",
            family: KernelFamily::Workgroup,
        },
    ];
    let chosen = g
        .choose(
            op,
            "b1",
            &cands,
            "1x1",
            u64::MAX,
            &mut |name, _| match name {
                "fast_but_wrong" => Ok(Err("relative error 3.0e-2 over the bound 2.0e-6".into())),
                "slow_and_right" => Ok(Ok(1.0)),
                _ => Err(symclone::Error::Gpu("the kernel failed".into())),
            },
        )
        .unwrap();
    assert_eq!(chosen, "slow_and_right");
    let c = g
        .choices()
        .into_iter()
        .find(|c| c.op == "check_test_op")
        .unwrap();
    assert_eq!(c.how, "timed");
    assert_eq!(c.times, vec![("slow_and_right".to_string(), 1.0)]);
    let mut rejected = c.rejected.clone();
    rejected.sort();
    assert_eq!(
        rejected,
        [
            "broken: failed: GPU error: the kernel failed",
            "fast_but_wrong: relative error 3.0e-2 over the bound 2.0e-6",
        ]
    );
    // None agrees: an error naming the rejected candidates, never a wrong kernel.
    let op2 = Op::new(91, "check_test_op2");
    let e = g
        .choose(op2, "b1", &cands[..1], "1x1", u64::MAX, &mut |_, _| {
            Ok(Err("relative error 1e0 over the bound 1e-6".into()))
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no check_test_op2 variant agreed") && e.contains("fast_but_wrong"),
        "{e}"
    );
}

#[test]
fn a_case_over_the_devices_limits_is_skipped_with_why_not_failed() {
    // A device whose storage bindings hold 64 KiB: the elementwise cases' 70,001 values do not fit.
    let mut limits = symclone::gpu::adapter::choose(&AdapterChoice::from_env())
        .expect("adapter")
        .limits();
    limits.max_storage_buffer_binding_size = 1 << 16;
    let g = Gpu::with_limits(&AdapterChoice::from_env(), limits).unwrap();
    let case = check::select(Some("elementwise/axpby")).unwrap().remove(0);
    let c = check::run_one(&g, Limits::Adapter, &case);
    assert_eq!(c.status, Status::Skipped, "{}", c.show());
    assert!(
        c.show().starts_with("skipped: over the device's limits")
            && c.detail.contains("max_storage_buffer_binding_size"),
        "{}",
        c.show()
    );
    // A case that fits runs as before on the same device.
    let small = check::select(Some("layout/swap12")).unwrap().remove(0);
    assert_eq!(
        check::run_one(&g, Limits::Adapter, &small).status,
        Status::Pass
    );
}
