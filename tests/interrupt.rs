//! Ctrl-C: a requested interrupt stops a run at its next step with `Error::Interrupted`, and what
//! was written before is complete (its own test binary: the interrupt flag is process-wide).

mod common;
use common::*;
use symclone::pipeline::{self, RunConfig, Silent};

#[test]
fn an_interrupt_stops_the_run_cleanly() {
    let g = gpu();
    let out = std::env::temp_dir().join(format!("symclone-test-{}-interrupt", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut cfg = RunConfig::preset("quick").unwrap();
    cfg.train_n = Some(64);
    cfg.test_n = Some(32);
    cfg.side = 16;
    cfg.tasks.retain(|t| t.task == "symmetric");
    symclone::error::request_interrupt();
    let e = pipeline::run(&g, &cfg, &out, false, None, &mut Silent).unwrap_err();
    assert!(matches!(e, symclone::Error::Interrupted(_)), "{e}");
    // config.json was written before the stop, whole; no temporary file is left.
    let cfg_back: RunConfig =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_back, cfg);
    assert!(!out.join("report.json").exists());
    for e in std::fs::read_dir(out.join("clones")).unwrap() {
        assert!(!e.unwrap().path().to_string_lossy().ends_with(".tmp"));
    }
    let _ = std::fs::remove_dir_all(&out);
}
