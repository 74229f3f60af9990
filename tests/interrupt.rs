//! Ctrl-C: a requested interrupt stops a run at its next step with `Error::Interrupted`, and what
//! was written before is complete (its own test binary: the interrupt flag is process-wide).

mod common;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use symclone::checkpoint;
use symclone::config::RunConfig;
use symclone::pipeline;
use symclone::progress::Reporter;

/// Interrupts the run at the first progress step of its second model, when the clones, the first
/// model's checkpoint and result are on disk.
struct InterruptLater {
    phases: usize,
}

impl Reporter for InterruptLater {
    fn phase(&mut self, name: &str, _: u64) {
        if name.contains(" on ") {
            self.phases += 1;
        }
    }
    fn progress(&mut self, _: u64, _: &str) {
        if self.phases == 2 {
            symclone::error::request_interrupt();
        }
    }
    fn finish(&mut self, _: &str) {}
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn an_interrupt_stops_the_run_cleanly() {
    let g = gpu();
    let out = std::env::temp_dir().join(format!("symclone-test-{}-interrupt", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut cfg = RunConfig::preset("quick").unwrap();
    cfg.train_n = Some(64);
    cfg.test_n = Some(32);
    cfg.side = 16;
    cfg.channels = Some([2, 2, 2, 2]);
    cfg.clone.iters = 3;
    cfg.clone.retries = 0;
    cfg.tasks.retain(|t| t.task == "symmetric");
    cfg.tasks[0].models = vec![
        symclone::models::ModelKind::Mlp,
        symclone::models::ModelKind::Cnn,
    ];
    cfg.tasks[0].train.epochs = 1;
    let e = pipeline::run(
        &g,
        &cfg,
        &out,
        false,
        None,
        &mut InterruptLater { phases: 0 },
    )
    .unwrap_err();
    assert!(matches!(e, symclone::Error::Interrupted(_)), "{e}");
    // config.json and the first model were written before the stop, whole; no temporary file
    // and no lock is left; the report was not written.
    let cfg_back: RunConfig =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_back, cfg);
    assert!(!out.join("report.json").exists());
    let files = walk(&out);
    let ckpt = out.join("models/symmetric-mlp-s0.safetensors");
    assert!(files.contains(&ckpt), "{files:?}");
    assert!(files.contains(&out.join("models/symmetric-mlp-s0.json")));
    assert!(!files.contains(&out.join("models/symmetric-cnn-s0.json")));
    let arch = cfg.arch(
        symclone::models::ModelKind::Mlp,
        symclone::data::Task::Symmetric,
    );
    let m = symclone::models::Model::new(
        &g,
        symclone::models::ModelKind::Mlp,
        &arch,
        &Default::default(),
        &mut rng(0),
    )
    .unwrap();
    checkpoint::load(&ckpt, &m.params(), &HashMap::new()).unwrap();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".tmp") && name != symclone::files::LOCK_NAME,
            "{f:?} left behind"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
