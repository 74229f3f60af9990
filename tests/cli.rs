//! The binary: every bad input is one line on stderr and a non-zero exit, never a panic trace.

use std::process::Command;

mod common;
use common::run_binary as run;

/// The lines the program itself printed (drivers may print their own noise).
fn ours(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("symclone-gpu:"))
        .collect()
}

/// A backend this platform never has (Metal exists only on Apple systems, DX12 only on Windows),
/// with the message its absence gives.
fn absent_backend() -> (&'static str, &'static str) {
    if cfg!(target_vendor = "apple") {
        ("dx12", "no GPU adapter found for backend 'dx12'")
    } else {
        ("metal", "no GPU adapter found for backend 'metal'")
    }
}

#[test]
fn bad_inputs_give_one_line_and_a_nonzero_exit() {
    let (absent, absent_msg) = absent_backend();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--backend", absent, "devices"], 2, absent_msg),
        (
            &[
                "--backend",
                "vulkan",
                "--adapter",
                "no-such-card",
                "devices",
            ],
            2,
            "with a name containing 'no-such-card'",
        ),
        (
            &["--backend", "quantum", "devices"],
            1,
            "unknown backend 'quantum'",
        ),
        (
            &["run", "--preset", "huge"],
            1,
            "unknown preset 'huge': use quick, medium or paper",
        ),
        (
            &["--family", "tensor-cores", "bench", "--filter", "dispatch"],
            1,
            "unknown kernel family 'tensor-cores'",
        ),
        (&["run", "--tasks", "upside-down"], 1, "upside-down"),
        (&["run", "--groups", "o3"], 1, "unknown group 'o3'"),
        (
            &["run", "--trans-pad", "11"],
            1,
            "--trans-pad 11: use 1 to 10 pixels",
        ),
        (
            &["teacher", "--model", "d4-gcnn", "--task", "trans-sb"],
            1,
            "does not go with task trans-sb",
        ),
        (&["run", "--models", "resnet"], 1, "unknown model 'resnet'"),
        (&["run", "--seeds", "0"], 1, "--seeds 0"),
        (
            &["report", "/nonexistent-symclone-run"],
            1,
            "/nonexistent-symclone-run/report.json",
        ),
        (&["run", "--batch", "0"], 1, "batch size of 0"),
        (
            &["run", "--channels", "1,2,3"],
            1,
            "--channels takes four numbers",
        ),
        (
            &["teacher", "--model", "faux-gcnn", "--task", "symmetric"],
            1,
            "built on clones",
        ),
        (
            &["teacher", "--model", "gcnn", "--task", "trans-sb"],
            1,
            "does not go with task trans-sb",
        ),
        (
            &[
                "finetune",
                "--model",
                "gcnn",
                "--task",
                "symmetric",
                "--clones",
                "/nonexistent",
            ],
            1,
            "no cloned layers",
        ),
        (
            &[
                "finetune",
                "--model",
                "faux-gcnn",
                "--task",
                "symmetric",
                "--clones",
                "/nonexistent-clones",
            ],
            1,
            "/nonexistent-clones",
        ),
        (&["clone", "--kind", "hexagonal"], 1, "--kind hexagonal"),
        (&["clone", "--kind", "p8"], 1, "lift-d4, p4m"),
        (
            &["clone", "--kind", "p4", "--source", "oracle"],
            1,
            "clone source 'oracle'",
        ),
        (
            &["run", "--clone-loss", "analytic"],
            1,
            "clone loss 'analytic': use sampled, inputs or exact",
        ),
        (
            &["run", "--penalty", "kl2"],
            1,
            "penalty 'kl2': use kl (SPEC §5) or l2",
        ),
        (
            &[
                "finetune",
                "--model",
                "faux-gcnn-kl",
                "--task",
                "rot-sb",
                "--clones",
                "/nonexistent-clones",
                "--penalty",
                "L2",
            ],
            1,
            "penalty 'L2'",
        ),
        (
            &["clone", "--kind", "p4", "--clone-loss", "Exact"],
            1,
            "clone loss 'Exact'",
        ),
        (
            &["clone", "--kind", "lift", "--capacity", "0..9"],
            1,
            "--capacity '0..9': out of range",
        ),
        (
            &["clone", "--kind", "lift", "--capacity", "6..37"],
            1,
            "--capacity '6..37': out of range",
        ),
        (
            &["clone", "--kind", "lift", "--capacity", "10..6"],
            1,
            "--capacity '10..6': the range is reversed",
        ),
        (
            &["clone", "--kind", "lift", "--capacity", "six"],
            1,
            "--capacity 'six': not a number",
        ),
        (
            &["data", "--data", "/nonexistent-data"],
            1,
            "/nonexistent-data",
        ),
    ];
    for (args, code, needle) in cases {
        refused_in_one_line(args, *code, needle);
    }
}

/// The binary run with `args` exits with `code` and prints one line of its own, containing
/// `needle`, and no panic.
fn refused_in_one_line(args: &[&str], code: i32, needle: &str) {
    let (c, err) = run(args);
    let lines = ours(&err);
    assert_eq!(c, code, "{args:?}: exit {c}, stderr:\n{err}");
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{err}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: {:?} lacks {needle:?}",
        lines[0]
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
}

/// `clone --kind mixer-*`: sizes the mixer cannot take, zero iterations and an unknown kind are
/// one line each, refused before a device is opened.
#[test]
fn mixer_bad_inputs_give_one_line_and_a_nonzero_exit() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["clone", "--kind", "mixer-hex"],
            "mixer-conv or mixer-radial",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--dim", "2"],
            "larger than the 2×2 image",
        ),
        (
            &[
                "clone",
                "--kind",
                "mixer-conv",
                "--dim",
                "5",
                "--kernel",
                "6",
            ],
            "output side 0 < 1",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--kernel", "0"],
            "at least 1",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--iters", "0"],
            "0 iterations",
        ),
        (
            &["clone", "--kind", "mixer-radial", "--kernel", "3"],
            "needs a kernel of at least 5",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--mixer-batch", "0"],
            "--mixer-batch 0",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--mixer-lr=-1"],
            "mixer learning rate",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--mixer-lr-decay", "1.5"],
            "mixer learning-rate decay 1.5",
        ),
        (
            &["clone", "--kind", "mixer-conv", "--preset", "huge"],
            "unknown preset 'huge'",
        ),
    ];
    for (args, needle) in cases {
        refused_in_one_line(args, 1, needle);
    }
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for c in [
        "run", "clone", "teacher", "finetune", "data", "bench", "devices", "report",
    ] {
        assert!(text.contains(c), "--help lacks {c}");
    }
}

#[test]
fn symclone_profile_writes_each_kernels_time_beside_the_report() {
    let dir = std::env::temp_dir().join(format!("symclone-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .args(["teacher", "--model", "mlp", "--task", "symmetric"])
        .args([
            "--train-n",
            "64",
            "--test-n",
            "32",
            "--epochs",
            "1",
            "--out",
        ])
        .arg(&dir)
        .env("SYMCLONE_PROFILE", "1")
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let md = std::fs::read_to_string(dir.join("profile.md")).expect("profile.md");
    assert!(err.contains("## Kernel profile"), "{err}");
    // The MLP's products and the optimiser ran; each row has a time and a dispatch count.
    let row = |k: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {k}")))
            .unwrap_or_else(|| panic!("no {k} row in\n{md}"))
            .split('|')
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    for k in ["matmul", "optim_k"] {
        let r = row(k);
        let (secs, n): (f64, u64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        assert!(secs > 0.0 && n > 0, "{r:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `clone --kind lift-d4` and `--kind p4m` write their checkpoints under the D4 names, which load
/// back as the kinds they are, learned to the quick preset's accuracy.
#[test]
fn d4_clones_are_written_and_load_back_as_d4_kinds() {
    use symclone::clone::{io::load_clone, OperatorKind};
    let dir = std::env::temp_dir().join(format!("symclone-d4-clone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let g = common::gpu();
    for (kind, d, file) in [("lift-d4", 6, "lift-d4-6"), ("p4m", 4, "p4m4")] {
        let out = dir.join(kind);
        let o = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
            .args(["clone", "--kind", kind, "--dim", &d.to_string(), "--out"])
            .arg(&out)
            .output()
            .expect("the binary runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let op = load_clone(&g, &out.join("clones").join(format!("{file}.safetensors"))).unwrap();
        assert_eq!((op.kind.name(), op.d), (kind, d));
        assert_eq!(op.kind.out_planes(), 8);
        let report = std::fs::read_to_string(out.join("clones").join(format!("{file}.json")))
            .expect("the clone's report");
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        let rel = v["best_relative_mse"].as_f64().unwrap();
        assert!(rel <= 1e-6, "{kind} d = {d}: relative {rel}");
        // The clone keeps D4's law about as well as its error allows; the true layer to rounding.
        let (ec, et) = (
            v["equivariance_clone"].as_f64().unwrap(),
            v["equivariance_true"].as_f64().unwrap(),
        );
        assert!(ec <= 1e-3 && et <= 1e-5, "{kind}: {ec} {et}");
    }
    assert_eq!(OperatorKind::from_name("p4m"), Some(OperatorKind::P4m));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scripts/gpu-check.sh --help` prints the usage block at the top of the script and nothing of
/// its code; an unknown argument is one line and exit 2.
#[test]
fn the_gpu_check_script_explains_itself_and_refuses_unknown_arguments() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-check.sh");
    let out = Command::new("bash")
        .args([script, "--help"])
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for part in [
        "usage: scripts/gpu-check.sh",
        "--small",
        "--skip-tests",
        "CARGO_FLAGS",
    ] {
        assert!(help.contains(part), "help lacks {part}:\n{help}");
    }
    assert!(
        !help.contains("set -euo") && !help.lines().any(|l| l.starts_with('#')),
        "help shows code or comment marks:\n{help}"
    );
    let out = Command::new("bash")
        .args([script, "--bogus"])
        .output()
        .expect("bash runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "gpu-check: unknown argument '--bogus' (see --help)"
    );
}
