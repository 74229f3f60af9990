//! The pipeline end to end on a few hundred images, checkpoints, frozen clones, and every bad
//! input the run can meet.
//!
//! Over 600 lines: every check of a whole run lives here, beside the one smoke run it reads
//! (a second run would cost the suite as much again).

mod common;
use common::*;
use std::collections::HashMap;
use std::path::PathBuf;
use symclone::checkpoint;
use symclone::clone::{clone_key, CloneSet};
use symclone::clone::{ClonedOperator, OperatorKind};
use symclone::config::RunConfig;
use symclone::data::{Batcher, Dataset, GpuSplit, Part, Task};
use symclone::models::{Arch, Model, ModelKind};
use symclone::pipeline;
use symclone::progress::Silent;
use symclone::train::{self, TrainConfig};
use symclone::Error;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("symclone-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn a_smoke_run_writes_a_complete_report_and_resume_reuses_it() {
    // A device of its own: the step and evaluation counts it checks are per device, and the
    // other tests here launch kernels at the same time.
    let g = gpu_with_limits(adapter_limits());
    let out = tmp("smoke");
    let cfg = tiny();
    let r = pipeline::run(&g, &cfg, &out, false, None, &mut Silent).unwrap();
    // Every task × model has a result, every clone a row, and the files are there.
    let expected: usize = cfg.tasks.iter().map(|t| t.models.len()).sum();
    assert_eq!(r.results.len(), expected);
    assert!(r
        .results
        .iter()
        .all(|m| m.test_acc.len() == 1 && m.mean == m.test_acc[0]));
    // A reported accuracy is the saved model's: each checkpoint, loaded into a fresh network and
    // evaluated on the run's test part, scores exactly what the report says.
    let ds = cfg.load_data().unwrap();
    let set = symclone::clone::io::load_clones(&g, &out).unwrap();
    for (task, kind) in [
        ("symmetric", ModelKind::Gcnn),
        ("rot-sb", ModelKind::Mlp),
        ("symmetric", ModelKind::FauxGcnn),
    ] {
        let t: Task = task.parse().unwrap();
        let arch = cfg.arch(kind, t);
        let m = Model::new(&g, kind, &arch, &set, &mut rng(9)).unwrap();
        let ckpt = out.join(format!("models/{task}-{}-s0.safetensors", kind.name()));
        checkpoint::load(&ckpt, &m.params(), &HashMap::new()).unwrap();
        let eb = Batcher::new(&g, &ds.test, t, Part::Test, 256, cfg.seed).unwrap();
        let acc = train::evaluate(&m, &eb).unwrap();
        let reported = r
            .results
            .iter()
            .find(|x| x.task == task && x.model == kind)
            .unwrap();
        assert_eq!(acc, reported.test_acc[0], "{task} {kind}");
        let n_test = ds.test.n as f32;
        assert_eq!((acc * n_test).round() / n_test, acc, "{task} {kind}: {acc}");
    }
    // faux-gcnn: lift 16, p4 14, 6, 4; faux-cnn on the 28-pixel canvas (the T(2) geometry scaled to 16-pixel inputs): z2 28, 26, 12, 10.
    assert_eq!(
        r.clones.len(),
        8,
        "{:?}",
        r.clones.iter().map(|c| (c.kind, c.d)).collect::<Vec<_>>()
    );
    assert!(r.fidelity.is_some());
    for m in &r.results {
        if m.model == ModelKind::FauxGcnn || m.model == ModelKind::FauxCnn {
            assert_eq!(
                m.clones_unchanged,
                Some(true),
                "{} changed its frozen clones",
                m.model
            );
        }
    }
    // SPEC §7's symmetry measures for every network: per-rotation accuracy on the rotation
    // tasks, orbit consistency and invariance error everywhere, per-layer errors for the
    // convolutional ones, KL terms for the KL ones.
    for m in &r.results {
        let what = format!("{} on {}", m.model, m.task);
        assert_eq!(
            m.accuracy_by_rotation.is_some(),
            m.task != "trans-sb",
            "{what}"
        );
        assert!(
            m.orbit_consistency
                .is_some_and(|c| (0.0..=1.0).contains(&c)),
            "{what}"
        );
        assert!(m.invariance_error.is_some_and(f64::is_finite), "{what}");
        assert_eq!(
            m.layer_equivariance.is_some(),
            m.model != ModelKind::Mlp,
            "{what}"
        );
        assert_eq!(m.kl_terms.is_some(), m.model.kl(), "{what}");
        // An invariant network predicts the same for a digit's four rotations: on the symmetric
        // task that is orbit-consistent and scores alike at every rotation; on rot-sb, whose
        // labels shift by 10 at 180° and 270°, it is never consistent.
        if m.model == ModelKind::Gcnn {
            let a = m.accuracy_by_rotation.clone().unwrap();
            if m.task == "symmetric" {
                assert!(a.iter().all(|&x| x == a[0]), "{what}: {a:?}");
                assert_eq!(m.orbit_consistency, Some(1.0), "{what}");
            } else {
                assert_eq!(m.orbit_consistency, Some(0.0), "{what}");
            }
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    for key in [
        "version", "adapter", "data", "config", "clones", "fidelity", "results", "seconds",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    // Every model's training step is counted: dispatches, bytes read and written, CPU time
    // recording, per kernel family; report.json keeps them, and a report written before they
    // were counted still reads.
    for (m, j) in r.results.iter().zip(json["results"].as_array().unwrap()) {
        let what = format!("{} on {}", m.model, m.task);
        let c = m
            .step_counts
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no counts"));
        assert!(
            c.dispatches >= 10.0 && c.bytes_read > 0.0 && c.bytes_written > 0.0,
            "{what}: {c:?}"
        );
        assert!(c.record_us > 0.0 && c.submissions > 0.0, "{what}: {c:?}");
        assert_eq!(c.steps, 2, "{what}: the steps after the first of 3");
        for f in ["loss", "matmul", "optim"] {
            assert!(
                c.families.get(f).is_some_and(|f| f.dispatches > 0.0),
                "{what}: {f}"
            );
        }
        let sum: f64 = c.families.values().map(|f| f.dispatches).sum();
        assert!((sum - c.dispatches).abs() < 1e-9, "{what}: {c:?}");
        assert_eq!(j["step_counts"]["dispatches"].as_f64(), Some(c.dispatches));
        // The evaluation's batches, forward only: no optimiser, fewer dispatches than a step.
        let e = m
            .eval_counts
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no evaluation counts"));
        assert!(e.steps >= 1 && e.dispatches >= 3.0, "{what}: {e:?}");
        assert!(e.dispatches < c.dispatches, "{what}: {e:?} against {c:?}");
        assert!(!e.families.contains_key("optim"), "{what}: {e:?}");
    }
    let mut old = json.clone();
    for m in old["results"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("step_counts");
        m.as_object_mut().unwrap().remove("eval_counts");
    }
    let old: symclone::results::Report = serde_json::from_value(old).unwrap();
    assert!(old
        .results
        .iter()
        .all(|m| m.step_counts.is_none() && m.eval_counts.is_none()));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for t in [
        "symmetric",
        "rot-sb",
        "trans-sb",
        "faux-gcnn-kl",
        "faux-cnn-kl",
        "Fidelity",
        "Clones",
        "Symmetry of the trained networks",
        "Per-layer equivariance error",
        "Drift of each cloned tensor",
        "Accuracy per test rotation",
    ] {
        assert!(md.contains(t), "report.md lacks {t}");
    }
    for f in [
        "feature-maps.svg",
        "clone-loss.svg",
        "training.svg",
        "accuracy.svg",
        "rotation-accuracy.svg",
        "equivariance.svg",
        "report.html",
        "config.json",
        "clones/lift16.safetensors",
        "models/symmetric-gcnn-s0.safetensors",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Resuming reuses every phase (each clone and each model says so; nothing is recomputed)
    // and gives the same numbers.
    let mut said = Said::default();
    let r2 = pipeline::run(&g, &cfg, &out, true, None, &mut said).unwrap();
    assert_eq!(
        said.0.len(),
        r.clones.len() + r.results.len(),
        "{:?}",
        said.0
    );
    assert!(
        said.0.iter().all(|l| l.contains(": reused")),
        "resume recomputed: {:?}",
        said.0
    );
    for (a, b) in r.results.iter().zip(&r2.results) {
        assert_eq!(a.test_acc, b.test_acc);
        assert_eq!(a.step_counts, b.step_counts);
    }
    for (a, b) in r.clones.iter().zip(&r2.clones) {
        assert_eq!(a.stats.best_loss, b.stats.best_loss);
    }
    // Clones load back for fine-tuning, and a model missing one is refused with its size named.
    let set = symclone::clone::io::load_clones(&g, &out).unwrap();
    assert!(set.contains_key(&clone_key(OperatorKind::P4, 14)));
    let mut c2 = cfg.clone();
    c2.side = 18;
    c2.tasks.retain(|t| t.task == "symmetric");
    c2.tasks[0].models = vec![ModelKind::FauxGcnn];
    let e = pipeline::run(&g, &c2, &tmp("wrong-size"), false, Some(set), &mut Silent).unwrap_err();
    assert!(e.to_string().contains("no lift clone for 18×18"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}

/// A reporter that keeps every phase's closing line.
#[derive(Default)]
struct Said(Vec<String>);

impl symclone::progress::Reporter for Said {
    fn phase(&mut self, _: &str, _: u64) {}
    fn progress(&mut self, _: u64, _: &str) {}
    fn finish(&mut self, summary: &str) {
        self.0.push(summary.to_string());
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
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
fn checkpoints_round_trip_and_refuse_other_configurations() {
    let g = gpu();
    let mut rng = rng(50);
    let op = ClonedOperator::new(&g, OperatorKind::P4, 6, 9, 4, &mut rng).unwrap();
    op.blocks
        .value()
        .write_slice(&rng.normal_vec(op.blocks.numel()))
        .unwrap();
    let path = tmp("ckpt").join("p4.safetensors");
    let meta = symclone::clone::io::clone_metadata(&op, "abc");
    checkpoint::save(&path, &op.params(), &meta).unwrap();
    let back = symclone::clone::io::load_clone(&g, &path).unwrap();
    for (a, b) in op.params().iter().zip(back.params()) {
        assert_eq!(
            a.value().to_vec().unwrap(),
            b.value().to_vec().unwrap(),
            "{}",
            a.name()
        );
    }
    // The safetensors header names every tensor with its shape (what PyTorch's loader reads).
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["p46.blocks"]["dtype"], "F32");
    assert_eq!(
        header["p46.blocks"]["shape"],
        serde_json::json!([9, 16, 36])
    );
    // Another configuration's checkpoint is refused, naming the differing entry.
    let other: HashMap<String, String> = [("config_hash".to_string(), "xyz".to_string())].into();
    let e = checkpoint::load(&path, &op.params(), &other)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("another configuration") && e.contains("config_hash"),
        "{e}"
    );
    // A tensor of the wrong shape is refused.
    let wrong = symclone::autograd::Param::new(
        "p46.blocks",
        symclone::tensor::Tensor::zeros(&g, &[9, 16, 35]).unwrap(),
    );
    let e = checkpoint::load(&path, &[wrong], &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("the model needs"), "{e}");
    // A tensor holding NaN is never written (and the old file is kept).
    let before = std::fs::read(&path).unwrap();
    let mut bad = rng.normal_vec(op.m1.numel());
    bad[3] = f32::NAN;
    op.m1.value().write_slice(&bad).unwrap();
    let e = checkpoint::save(&path, &op.params(), &meta)
        .unwrap_err()
        .to_string();
    assert!(e.contains("p46.m1") && e.contains("NaN at index 3"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A file one byte short or long is refused before it is read.
    for cut in [before.len() - 1, before.len() + 1] {
        let mut b = before.clone();
        b.resize(cut, 0);
        std::fs::write(path.with_extension("cut"), &b).unwrap();
        let e = symclone::clone::io::load_clone(&g, &path.with_extension("cut"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated, padded"), "{e}");
    }
    // Not a safetensors file.
    let junk = path.with_extension("junk");
    std::fs::write(&junk, b"hello").unwrap();
    assert!(symclone::clone::io::load_clone(&g, &junk)
        .unwrap_err()
        .to_string()
        .contains("not a safetensors file"));
}

fn small_data() -> Dataset {
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(128), Some(64))
        .unwrap();
    Dataset {
        train: symclone::data::resize::center_crop(&ds.train, 16).unwrap(),
        test: symclone::data::resize::center_crop(&ds.test, 16).unwrap(),
        source: ds.source,
    }
}

#[test]
fn frozen_clones_stay_bit_identical_and_kl_clones_move() {
    let g = gpu();
    let ds = small_data();
    let mut rng = rng(51);
    let mut set = CloneSet::new();
    for (k, d) in [
        (OperatorKind::Lift, 16),
        (OperatorKind::P4, 14),
        (OperatorKind::P4, 6),
        (OperatorKind::P4, 4),
    ] {
        let op = ClonedOperator::new(&g, k, d, 9, 4, &mut rng).unwrap();
        op.blocks
            .value()
            .write_slice(
                &rng.normal_vec(op.blocks.numel())
                    .iter()
                    .map(|v| v * 0.1)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        set.insert(clone_key(k, d), op);
    }
    let split = GpuSplit::upload(&g, &ds.train).unwrap();
    let test = GpuSplit::upload(&g, &ds.test).unwrap();
    for kind in [ModelKind::FauxGcnn, ModelKind::FauxGcnnKl] {
        let mut arch = Arch::paper(kind, 16, 10);
        arch.channels = [2, 2, 3, 3];
        let m = Model::new(&g, kind, &arch, &set, &mut rng).unwrap();
        let before: Vec<Vec<f32>> = m
            .cloned_params()
            .iter()
            .map(|p| p.value().to_vec().unwrap())
            .collect();
        let cfg = TrainConfig {
            epochs: 1,
            batch: 32,
            lr: 1e-2,
            lr_decay: 0.95,
            optimizer: "adam".into(),
            weight_decay: 1e-3,
            beta: 1.0,
            penalty: Default::default(),
            seed: 0,
        };
        let mut tb = Batcher::on(split.clone(), Task::Symmetric, Part::Train, 32, 0).unwrap();
        let eb = Batcher::on(test.clone(), Task::Symmetric, Part::Test, 64, 0).unwrap();
        let r = train::train(&m, &mut tb, &eb, &cfg, &mut |_, _, _| {}).unwrap();
        assert!(r.history[0].loss.is_finite());
        let after: Vec<Vec<f32>> = m
            .cloned_params()
            .iter()
            .map(|p| p.value().to_vec().unwrap())
            .collect();
        let identical = before
            .iter()
            .zip(&after)
            .all(|(a, b)| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        // The pipeline's own check agrees, and it never vouches for tensors it did not compare.
        let check = pipeline::evaluation::clones_unchanged(kind, &m, &set).unwrap();
        assert_eq!(check, (!kind.kl()).then_some(identical));
        if !kind.kl() {
            let e = pipeline::evaluation::clones_unchanged(kind, &m, &CloneSet::new())
                .unwrap_err()
                .to_string();
            assert!(e.contains("matches no clone"), "{e}");
        }
        if kind.kl() {
            assert!(!identical, "KL clones did not train");
            assert!(r.history[0].penalty.unwrap() > 0.0);
        } else {
            assert!(identical, "frozen clones changed");
            assert!(r.history[0].penalty.is_none());
        }
    }
}

#[test]
fn the_medium_preset_is_spec_sized_on_the_exact_loss() {
    let m = RunConfig::preset("medium").unwrap();
    m.validate().unwrap();
    let p = RunConfig::preset("paper").unwrap();
    assert_eq!(
        (m.side, m.downsample, m.channels, m.mlp.clone()),
        (28, false, None, None)
    );
    assert_eq!((m.train_n, m.test_n), (None, None));
    assert_eq!(m.clone.loss, symclone::clone::CloneLoss::Exact);
    assert_eq!(m.clone.nb, 9);
    assert!(m.clone.warmup > 0);
    // Between quick and paper: the paper's tasks, shorter, without the clones over 128 MiB.
    for (a, b) in m.tasks.iter().zip(&p.tasks) {
        assert_eq!(a.task, b.task);
        assert!(a.train.epochs < b.train.epochs, "{}", a.task);
        let cnn_clones = a.models.contains(&ModelKind::FauxCnn);
        assert!(!cnn_clones, "{}", a.task);
    }
    let e = RunConfig::preset("huge").unwrap_err().to_string();
    assert!(e.contains("quick, medium or paper"), "{e}");
}

#[test]
fn models_a_preset_leaves_out_can_be_asked_for_by_name() {
    let mut m = RunConfig::preset("medium").unwrap();
    let o = symclone::config::Overrides {
        models: Some(vec!["faux-cnn".into(), "mlp".into()]),
        ..Default::default()
    };
    m.apply(&o).unwrap();
    let got: Vec<(String, Vec<ModelKind>)> = m
        .tasks
        .iter()
        .map(|t| (t.task.clone(), t.models.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("symmetric".to_string(), vec![ModelKind::Mlp]),
            ("rot-sb".to_string(), vec![ModelKind::Mlp]),
            (
                "trans-sb".to_string(),
                vec![ModelKind::Mlp, ModelKind::FauxCnn]
            ),
        ]
    );
}

#[test]
fn the_groups_knob_adds_the_d4_tasks_trained_as_their_c4_counterparts() {
    let quick = RunConfig::preset("quick").unwrap();
    let names = |c: &RunConfig| c.tasks.iter().map(|t| t.task.clone()).collect::<Vec<_>>();
    let with = |o: symclone::config::Overrides| {
        let mut c = quick.clone();
        c.apply(&o).map(|_| c)
    };
    let groups = |g: &[&str]| symclone::config::Overrides {
        groups: Some(g.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    // The default is the paper's tasks alone.
    assert_eq!(names(&with(Default::default()).unwrap()), names(&quick));
    assert!(!names(&quick)
        .iter()
        .any(|t| t.contains("d4") || t == "mirror-sb"));
    let both = with(groups(&["c4", "d4"])).unwrap();
    let mut want = names(&quick);
    want.extend(["symmetric-d4".to_string(), "mirror-sb".to_string()]);
    assert_eq!(names(&both), want);
    let d4 = with(groups(&["d4"])).unwrap();
    assert_eq!(names(&d4), ["symmetric-d4", "mirror-sb"]);
    let plan = |c: &RunConfig, t: &str| c.tasks.iter().find(|p| p.task == t).unwrap().clone();
    assert_eq!(
        plan(&d4, "symmetric-d4").train,
        plan(&quick, "symmetric").train
    );
    assert_eq!(plan(&d4, "mirror-sb").train, plan(&quick, "rot-sb").train);
    use ModelKind::*;
    assert_eq!(
        plan(&d4, "symmetric-d4").models,
        [Gcnn, D4Gcnn, FauxD4Gcnn, Cnn, Mlp]
    );
    assert_eq!(
        plan(&d4, "mirror-sb").models,
        [Gcnn, D4Gcnn, FauxD4Gcnn, FauxD4GcnnKl, Cnn, Mlp]
    );
    // d4-gcnn's channels are the configuration's divided by √2: 4-8-8-8 → 3-6-6-6.
    let task: symclone::data::Task = "mirror-sb".parse().unwrap();
    assert_eq!(d4.arch(ModelKind::D4Gcnn, task).channels, [3, 6, 6, 6]);
    assert_eq!(d4.arch(ModelKind::Gcnn, task).channels, [4, 8, 8, 8]);
    // Naming a D4 task is enough; --models picks among the D4 tasks' models too.
    let named = with(symclone::config::Overrides {
        tasks: Some(vec!["mirror-sb".into()]),
        models: Some(vec!["d4-gcnn".into()]),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(names(&named), ["mirror-sb"]);
    assert_eq!(named.tasks[0].models, [ModelKind::D4Gcnn]);
    let e = with(groups(&["o3"])).unwrap_err().to_string();
    assert!(
        e.contains("unknown group 'o3'") && e.contains("c4 or d4"),
        "{e}"
    );
    let e = with(symclone::config::Overrides {
        groups: Some(vec!["c4".into()]),
        tasks: Some(vec!["mirror-sb".into()]),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("runs none of these"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let g = gpu();
    // Unknown model/task pairings and names.
    let mut c = tiny();
    c.tasks[0].models = vec![ModelKind::FauxCnn];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("does not go with task symmetric"), "{e}");
    assert!("resnet"
        .parse::<ModelKind>()
        .unwrap_err()
        .to_string()
        .contains("unknown model"));
    assert!(RunConfig::preset("huge")
        .unwrap_err()
        .to_string()
        .contains("unknown preset"));
    let mut c = tiny();
    c.seeds = 0;
    assert!(c.validate().is_err());
    let mut c = tiny();
    c.tasks[0].train.batch = 0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("batch size of 0"));
    // A model missing its clone names what it needs.
    let mut rng = rng(52);
    let e = Model::new(
        &g,
        ModelKind::FauxGcnn,
        &Arch::paper(ModelKind::FauxGcnn, 16, 10),
        &CloneSet::new(),
        &mut rng,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("lift clone for 16×16"), "{e}");
    // An untrained clone (zero blocks) has no equivariance error to report, not a perfect 0.
    let fresh = ClonedOperator::new(&g, OperatorKind::Lift, 8, 9, 4, &mut rng).unwrap();
    let e = pipeline::evaluation::operator_equivariance(&g, &fresh, 7)
        .unwrap_err()
        .to_string();
    assert!(e.contains("maps every input to zero"), "{e}");
    // Nonsense numbers are refused by the configuration check.
    for (edit, needle) in [
        (
            Box::new(|c: &mut RunConfig| c.clone.lr_decay = f32::NAN)
                as Box<dyn Fn(&mut RunConfig)>,
            "--clone-lr-decay NaN",
        ),
        (
            Box::new(|c: &mut RunConfig| c.clone.iters = 0),
            "--clone-iters 0",
        ),
        (Box::new(|c: &mut RunConfig| c.clone.clip = -1.0), "clip -1"),
        (
            Box::new(|c: &mut RunConfig| c.clone.weight_decay = f32::INFINITY),
            "weight decay inf",
        ),
        (
            Box::new(|c: &mut RunConfig| c.tasks[0].train.beta = -1.0),
            "β (--beta) -1",
        ),
        (
            Box::new(|c: &mut RunConfig| c.tasks[0].train.lr = 0.0),
            "(--lr) 0",
        ),
        (
            Box::new(|c: &mut RunConfig| c.tasks[0].models.clear()),
            "trains no model",
        ),
        (
            Box::new(|c: &mut RunConfig| c.tasks.clear()),
            "runs no task",
        ),
        (
            Box::new(|c: &mut RunConfig| c.mlp = Some(vec![])),
            "an MLP takes 1 to",
        ),
        (
            Box::new(|c: &mut RunConfig| c.channels = Some([4, 0, 8, 8])),
            "not 0",
        ),
    ] {
        let mut c = tiny();
        edit(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{e} lacks {needle}");
    }
    // A NaN loss stops training with the step number.
    let ds = small_data();
    let m = Model::new(
        &g,
        ModelKind::Mlp,
        &Arch {
            mlp: vec![8],
            ..Arch::paper(ModelKind::Mlp, 16, 10)
        },
        &CloneSet::new(),
        &mut rng,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch: 32,
        lr: 1e30,
        lr_decay: 1.0,
        optimizer: "adam".into(),
        weight_decay: 0.0,
        beta: 0.0,
        penalty: Default::default(),
        seed: 0,
    };
    let mut tb = Batcher::new(&g, &ds.train, Task::Plain, Part::Train, 32, 0).unwrap();
    let eb = Batcher::new(&g, &ds.test, Task::Plain, Part::Test, 64, 0).unwrap();
    // The epoch hook (where the pipeline checkpoints) never sees the NaN epoch.
    let mut good_epochs = 0;
    let e = train::train_with(&m, &mut tb, &eb, &cfg, &mut |_, _, _| {}, &mut |_| {
        good_epochs += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!(good_epochs, 0);
    assert!(
        matches!(e, Error::Invalid(_)) && e.to_string().contains("by step"),
        "{e}"
    );
    // A batch of the wrong image size for the model.
    let mut tape = symclone::autograd::Tape::no_grad();
    let x = tape.input(symclone::tensor::Tensor::zeros(&g, &[2, 1, 28, 28]).unwrap());
    assert!(m
        .forward(&mut tape, x, false, 0)
        .unwrap_err()
        .to_string()
        .contains("takes (B, 1, 16, 16)"));
}

/// The pipeline end to end on a device opened with WebGPU's default limits: one task, the faux
/// G-CNN (so cloning the lift and P4 layers, training, evaluation and the report all run), and the
/// MLP; everything it reports is there and finite.
#[test]
fn a_smoke_run_under_webgpu_default_limits() {
    let g = gpu_webgpu(gpu().family());
    let out = tmp("smoke-webgpu");
    let mut cfg = tiny();
    cfg.tasks.retain(|t| t.task == "symmetric");
    cfg.tasks[0].models = vec![ModelKind::FauxGcnn, ModelKind::Mlp];
    let r = pipeline::run(&g, &cfg, &out, false, None, &mut Silent).unwrap();
    assert_eq!(r.results.len(), 2);
    assert!(r
        .results
        .iter()
        .all(|m| m.test_acc.len() == 1 && (0.0..=1.0).contains(&m.mean)));
    assert!(!r.clones.is_empty());
    assert!(r.clones.iter().all(|c| c.stats.best_loss.is_finite()));
    for f in ["report.json", "report.md", "clones/lift16.safetensors"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// `--trans-pad`: the trans-sb canvas (and so the T(2) models' input) follows the padding,
/// other tasks keep theirs, 0 returns to SPEC's scaled canvas, a configuration without the key
/// serialises as before (so earlier runs' hashes hold), and one outside 1..=10 is refused.
#[test]
fn the_trans_pad_knob_sets_the_t2_canvas_alone() {
    use symclone::data::Task;
    let mut c = RunConfig::preset("medium").unwrap();
    assert_eq!(c.trans_pad, None);
    let spec = c.arch(ModelKind::Cnn, Task::TransSb).side;
    assert_eq!(spec, 48);
    assert!(!serde_json::to_string(&c).unwrap().contains("trans_pad"));
    let pad = |p| symclone::config::Overrides {
        trans_pad: Some(p),
        ..Default::default()
    };
    c.apply(&pad(2)).unwrap();
    assert_eq!(c.trans_pad, Some(2));
    assert_eq!(c.arch(ModelKind::Cnn, Task::TransSb).side, c.side + 4);
    assert_eq!(c.canvas(Task::TransSb).dx, (1, 2));
    assert_eq!(c.arch(ModelKind::Cnn, Task::Symmetric).side, c.side);
    assert!(serde_json::to_string(&c)
        .unwrap()
        .contains("\"trans_pad\":2"));
    c.validate().unwrap();
    c.apply(&pad(0)).unwrap();
    assert_eq!(c.trans_pad, None);
    assert_eq!(c.arch(ModelKind::Cnn, Task::TransSb).side, spec);
    // The quick preset puts trans-sb on the 18×18 compact canvas, with both T(2)-cloned models.
    let q = RunConfig::preset("quick").unwrap();
    assert_eq!(q.trans_pad, Some(1));
    assert_eq!(q.arch(ModelKind::FauxCnnKl, Task::TransSb).side, 18);
    let t = q.tasks.iter().find(|t| t.task == "trans-sb").unwrap();
    assert_eq!(
        t.models,
        [
            ModelKind::Cnn,
            ModelKind::Mlp,
            ModelKind::FauxCnn,
            ModelKind::FauxCnnKl
        ]
    );
    for bad in [11, 40] {
        c.trans_pad = Some(bad);
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains(&format!("--trans-pad {bad}: use 1 to 10")),
            "{e}"
        );
    }
}
