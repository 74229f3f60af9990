//! SPEC §7's symmetry measures of trained networks (`pipeline::symmetry`): a gcnn is exactly C4
//! invariant (equal rotation accuracies, orbit consistency 1, invariance error at rounding level,
//! every layer equivariant), a cnn trained on upright digits is not; a conv layer is translation
//! equivariant but not rotation equivariant; the orbit consistency honours rot-sb's +10 label shift;
//! a KL model's KL terms start at 0 and grow in training; a d4-gcnn is invariant over all eight
//! elements of D4, a gcnn over the four turns only; a faux-d4-gcnn on exact D4 clones is D4
//! invariant, and refuses C4 clones; a faux-gcnn reading its frozen blocks in half precision
//! computes the f32 network's logits where the blocks are exact in half precision and differs by
//! half precision's rounding where they are not.

mod common;
use common::*;
use std::sync::Arc;
use symclone::clone::{clone_key, CloneSet, ClonedOperator, OperatorKind};
use symclone::data::{Batcher, Dataset, GpuSplit, Part, Task};
use symclone::models::{Arch, Model, ModelKind};
use symclone::pipeline::symmetry::{self, consistent};
use symclone::tensor::Tensor;
use symclone::train::{self, TrainConfig};
use symclone::Gpu;

fn data(g: &Arc<Gpu>) -> (Arc<GpuSplit>, Arc<GpuSplit>) {
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(1024), Some(64))
        .unwrap();
    let crop = |s| symclone::data::resize::center_crop(s, 16).unwrap();
    (
        GpuSplit::upload(g, &crop(&ds.train)).unwrap(),
        GpuSplit::upload(g, &crop(&ds.test)).unwrap(),
    )
}

fn arch(kind: ModelKind, side: usize, classes: usize) -> Arch {
    let mut a = Arch::paper(kind, side, classes);
    a.channels = [4, 6, 6, 6];
    a
}

fn fit(m: &Model, train_split: &Arc<GpuSplit>, test: &Arc<GpuSplit>, task: Task, beta: f32) {
    let cfg = TrainConfig {
        epochs: 3,
        batch: 32,
        lr: 3e-3,
        lr_decay: 1.0,
        optimizer: "adam".into(),
        weight_decay: 0.0,
        beta,
        penalty: Default::default(),
        seed: 0,
    };
    let mut tb = Batcher::on(train_split.clone(), task, Part::Train, 32, 0).unwrap();
    let eb = Batcher::on(test.clone(), task, Part::Test, 64, 0).unwrap();
    train::train(m, &mut tb, &eb, &cfg, &mut |_, _, _| {}).unwrap();
}

/// The rounding bound of a group network's logits: each of its six linear stages (lift, three
/// group layers over n orientations, two FC) is a K-term sum, so the relative error adds up over
/// them.
fn gcnn_tol(a: &Arch) -> f64 {
    group_tol(a, 4)
}

fn group_tol(a: &Arch, n: usize) -> f64 {
    let c = a.channels;
    [9, n * 9 * c[0], n * 9 * c[1], n * 9 * c[2], c[3], a.hidden]
        .iter()
        .map(|&k| sum_tol(k))
        .sum()
}

#[test]
fn a_gcnn_is_invariant_and_a_cnn_trained_upright_is_not() {
    let g = gpu();
    let (tr, te) = data(&g);
    let task = Task::Symmetric;
    let mut rg = rng(3);
    let ga = arch(ModelKind::Gcnn, 16, 10);
    let gcnn = Model::new(&g, ModelKind::Gcnn, &ga, &CloneSet::new(), &mut rg).unwrap();
    let cnn = Model::new(
        &g,
        ModelKind::Cnn,
        &arch(ModelKind::Cnn, 16, 10),
        &CloneSet::new(),
        &mut rg,
    )
    .unwrap();
    let gb = symmetry::layer_errors(&gcnn, &te, task, task.canvas(16), 4).unwrap();
    fit(&gcnn, &tr, &te, task, 0.0);
    fit(&cnn, &tr, &te, task, 0.0);
    let og = symmetry::orbit(&gcnn, &te, task, task.canvas(16), 64).unwrap();
    let oc = symmetry::orbit(&cnn, &te, task, task.canvas(16), 64).unwrap();
    assert_eq!(og.digits, 64);
    let tol = gcnn_tol(&ga);
    assert!(og.invariance_error <= tol, "gcnn {og:?} (bound {tol:.1e})");
    assert!(og.accuracy.iter().all(|&a| a == og.accuracy[0]), "{og:?}");
    assert!(og.accuracy[0] > 0.1, "the gcnn did not learn: {og:?}");
    assert_eq!(og.consistency, 1.0, "{og:?}");
    // The cnn saw upright digits only: rotations change its logits and its predictions.
    assert!(oc.invariance_error > 0.05, "cnn {oc:?}");
    assert!(oc.consistency < 0.9, "cnn {oc:?}");
    assert!(oc.accuracy[0] > oc.accuracy[2], "cnn {oc:?}");
    // Layer by layer: every gcnn layer is C4 equivariant before and after training; the cnn's
    // convolutions are not.
    let ga_after = symmetry::layer_errors(&gcnn, &te, task, task.canvas(16), 4).unwrap();
    for (l, e) in gb.iter().chain(&ga_after).enumerate() {
        assert!(*e <= sum_tol(4 * 9 * 3), "gcnn layer {}: {e:.2e}", l % 4);
    }
    let ce = symmetry::layer_errors(&cnn, &te, task, task.canvas(16), 4).unwrap();
    assert_eq!(ce.len(), 4);
    assert!(ce.iter().all(|&e| e > 0.05), "cnn layers {ce:?}");
    // Under trans-sb's group (translations) the same convolutions are equivariant.
    let mut rg = rng(4);
    let side = Task::TransSb.canvas(16).size;
    let cnn_t = Model::new(
        &g,
        ModelKind::Cnn,
        &arch(ModelKind::Cnn, side, 20),
        &CloneSet::new(),
        &mut rg,
    )
    .unwrap();
    let te_t =
        symmetry::layer_errors(&cnn_t, &te, Task::TransSb, Task::TransSb.canvas(16), 4).unwrap();
    assert!(
        te_t.iter().all(|&e| e <= sum_tol(9 * 3)),
        "cnn layers under translations {te_t:?}"
    );
    let ot = symmetry::orbit(&cnn_t, &te, Task::TransSb, Task::TransSb.canvas(16), 64).unwrap();
    assert!(ot.group.starts_with("T(2)"), "{ot:?}");
    assert!(ot.invariance_error > 0.0 && ot.invariance_error.is_finite());
}

#[test]
fn a_d4_gcnn_is_invariant_over_all_eight_elements_and_a_gcnn_only_over_the_turns() {
    let g = gpu();
    let (tr, te) = data(&g);
    let task = Task::SymmetricD4;
    let mut rg = rng(5);
    let da = arch(ModelKind::D4Gcnn, 16, 10);
    let d4 = Model::new(&g, ModelKind::D4Gcnn, &da, &CloneSet::new(), &mut rg).unwrap();
    let gcnn = Model::new(
        &g,
        ModelKind::Gcnn,
        &arch(ModelKind::Gcnn, 16, 10),
        &CloneSet::new(),
        &mut rg,
    )
    .unwrap();
    fit(&d4, &tr, &te, task, 0.0);
    let od = symmetry::orbit(&d4, &te, task, task.canvas(16), 64).unwrap();
    let og = symmetry::orbit(&gcnn, &te, task, task.canvas(16), 64).unwrap();
    assert!(od.group.starts_with("D4"), "{od:?}");
    assert_eq!(od.accuracy.len(), 8);
    let tol = group_tol(&da, 8);
    assert!(
        od.invariance_error <= tol,
        "d4-gcnn {od:?} (bound {tol:.1e})"
    );
    assert!(od.accuracy.iter().all(|&a| a == od.accuracy[0]), "{od:?}");
    assert!(od.accuracy[0] > 0.1, "the d4-gcnn did not learn: {od:?}");
    assert_eq!(od.consistency, 1.0, "{od:?}");
    // The C4 network keeps the turns and not the flips: equal accuracy on the four turns, and
    // logits that change under the reflections.
    assert!(
        og.accuracy[..4].iter().all(|&a| a == og.accuracy[0]),
        "{og:?}"
    );
    assert!(og.invariance_error > 0.01, "gcnn {og:?}");
    // Per layer: the d4-gcnn's under D4, the gcnn's under C4 (its maps have 4 orientations).
    let ld = symmetry::layer_errors(&d4, &te, task, task.canvas(16), 4).unwrap();
    assert!(ld.iter().all(|&e| e <= 1e-5), "d4-gcnn layers {ld:?}");
    let lg = symmetry::layer_errors(&gcnn, &te, task, task.canvas(16), 4).unwrap();
    assert!(lg.iter().all(|&e| e <= 1e-5), "gcnn layers under C4 {lg:?}");
    // A plain cnn's layers measured under D4 are far from equivariant.
    let cnn = Model::new(
        &g,
        ModelKind::Cnn,
        &arch(ModelKind::Cnn, 16, 10),
        &CloneSet::new(),
        &mut rg,
    )
    .unwrap();
    let lc = symmetry::layer_errors(&cnn, &te, task, task.canvas(16), 4).unwrap();
    assert!(lc.iter().all(|&e| e > 0.05), "cnn layers under D4 {lc:?}");
}

/// A clone that is its true layer exactly: the tap shift matrices as blocks, h(c) = c (M1 ones,
/// M2 the identity, m = 1) and T the true code transform (column j: the true codes of the unit
/// code e_j).
fn exact_clone(g: &Arc<Gpu>, kind: OperatorKind, d: usize) -> ClonedOperator {
    use symclone::clone::operator::{shift_blocks, true_codes};
    let op = ClonedOperator::new(g, kind, d, 9, 1, &mut rng(0)).unwrap();
    op.blocks.value().write_slice(&shift_blocks(d)).unwrap();
    op.m1.value().write_slice(&[1.0; 9]).unwrap();
    let eye: Vec<f32> = (0..81)
        .map(|i| if i % 10 == 0 { 1.0 } else { 0.0 })
        .collect();
    op.m2.value().write_slice(&eye).unwrap();
    if let Some(t) = &op.t {
        let n = kind.code_len();
        let rows = kind.codes_per_filter() * 9;
        let mut tm = vec![0.0f32; rows * n];
        for j in 0..n {
            let mut unit = vec![0.0f32; n];
            unit[j] = 1.0;
            for (ra, v) in true_codes(kind, &unit).into_iter().enumerate() {
                tm[ra * n + j] = v;
            }
        }
        t.value().write_slice(&tm).unwrap();
    }
    op
}

#[test]
fn a_network_on_exact_d4_clones_is_d4_invariant_and_c4_clones_do_not_fit_it() {
    let g = gpu();
    let (_, te) = data(&g);
    let kind = ModelKind::FauxD4Gcnn;
    let a = arch(kind, 16, 20);
    let sides = a.feature_sides().unwrap();
    // Exact clones for every layer: the lift at the input side, group → group after it.
    let exact_set = |lift: OperatorKind, rest: OperatorKind| {
        let mut set = CloneSet::new();
        for (l, &d) in sides.iter().enumerate() {
            let k = if l == 0 { lift } else { rest };
            set.insert(clone_key(k, d), exact_clone(&g, k, d));
        }
        set
    };
    let set = exact_set(OperatorKind::LiftD4, OperatorKind::P4m);
    let mut rg = rng(52);
    let m = Model::new(&g, kind, &a, &set, &mut rg).unwrap();
    let task = Task::MirrorSb;
    let o = symmetry::orbit(&m, &te, task, task.canvas(16), 64).unwrap();
    assert_eq!(o.accuracy.len(), 8);
    let tol = group_tol(&a, 8);
    assert!(o.invariance_error <= tol, "{o:?} (bound {tol:.1e})");
    let layers = symmetry::layer_errors(&m, &te, task, task.canvas(16), 4).unwrap();
    assert!(layers.iter().all(|&e| e <= 1e-5), "{layers:?}");
    // The same network on C4 clones of the same sides: an error that names what was given.
    let c4 = exact_set(OperatorKind::Lift, OperatorKind::P4);
    let e = Model::new(&g, kind, &a, &c4, &mut rg)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs a lift-d4 clone for 16×16") && e.contains("lift for d = 16"),
        "{e}"
    );
    // And the reverse: a C4 network on D4 clones.
    let e = Model::new(
        &g,
        ModelKind::FauxGcnn,
        &arch(ModelKind::FauxGcnn, 16, 20),
        &set,
        &mut rg,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("needs a lift clone") && e.contains("lift-d4 for d = 16"),
        "{e}"
    );
}

#[test]
fn orbit_consistency_allows_the_label_shift_the_task_asks_for() {
    // A perfect rot-sb classifier: digit 3 at 0°, 90°; 13 at 180°, 270°.
    let labels = |t: Task| [0, 1, 2, 3].map(|r| t.label(3, r, 0));
    assert!(consistent(&[3, 3, 13, 13], &labels(Task::RotSb)));
    assert!(!consistent(&[3, 3, 3, 3], &labels(Task::RotSb)));
    assert!(consistent(&[3, 3, 3, 3], &labels(Task::Symmetric)));
    assert!(!consistent(&[3, 3, 13, 13], &labels(Task::Symmetric)));
    // A wrong but consistent classifier is consistent.
    assert!(consistent(&[5, 5, 15, 15], &labels(Task::RotSb)));
    let orbit_labels = |t: Task| -> Vec<u32> {
        symmetry::orbit_elements(t, t.canvas(16))
            .into_iter()
            .map(|(k, dx, _)| t.label(7, k, dx))
            .collect()
    };
    let tl = orbit_labels(Task::TransSb);
    assert_eq!(tl, [7, 7, 17, 17]);
    assert!(consistent(&[7, 7, 17, 17], &tl));
    // The D4 tasks' orbits have eight elements: mirror-sb shifts the flipped four by 10.
    let ml = orbit_labels(Task::MirrorSb);
    assert_eq!(ml, [7, 7, 7, 7, 17, 17, 17, 17]);
    assert!(consistent(&[7, 7, 7, 7, 17, 17, 17, 17], &ml));
    assert!(!consistent(&[7; 8], &ml));
    assert_eq!(orbit_labels(Task::SymmetricD4), [7; 8]);
    assert!(consistent(&[7; 8], &orbit_labels(Task::SymmetricD4)));
    // trans-sb's placements shift by the canvas's padding, at most 10 px: SPEC's canvas (10 px
    // of padding at 28 px) keeps 10, a compact one its own, so no placement cuts the digit.
    let t = Task::TransSb;
    let spec = symmetry::orbit_elements(t, t.canvas(28));
    assert_eq!(spec, [(0, -10, 0), (0, -10, 10), (0, 10, 0), (0, 10, 10)]);
    let compact = symmetry::orbit_elements(t, symclone::data::Canvas::compact(16, 1));
    assert_eq!(compact, [(0, -1, 0), (0, -1, 1), (0, 1, 0), (0, 1, 1)]);
    assert_eq!(
        symmetry::group_name(t, symclone::data::Canvas::compact(16, 1)),
        "T(2) within a side (shift down by 1 px)"
    );
    assert_eq!(symmetry::invariance_pairs(Task::MirrorSb).len(), 7);
    assert_eq!(
        symmetry::orbit_elements(Task::Symmetric, Task::Symmetric.canvas(16)).len(),
        4
    );
}

#[test]
fn kl_terms_start_at_zero_and_grow_in_training() {
    let g = gpu();
    let (tr, te) = data(&g);
    let mut rg = rng(51);
    let mut set = CloneSet::new();
    for (k, d) in [
        (OperatorKind::Lift, 16),
        (OperatorKind::P4, 14),
        (OperatorKind::P4, 6),
        (OperatorKind::P4, 4),
    ] {
        let op = ClonedOperator::new(&g, k, d, 9, 4, &mut rg).unwrap();
        let b: Vec<f32> = rg
            .normal_vec(op.blocks.numel())
            .iter()
            .map(|v| v * 0.1)
            .collect();
        op.blocks.value().write_slice(&b).unwrap();
        set.insert(clone_key(k, d), op);
    }
    let kind = ModelKind::FauxGcnnKl;
    let m = Model::new(&g, kind, &arch(kind, 16, 20), &set, &mut rg).unwrap();
    let k0 = m.kl_terms().unwrap();
    // Four cloned layers, each with blocks, M1, M2 and T.
    assert_eq!(k0.len(), 16, "{k0:?}");
    assert!(
        k0.iter()
            .all(|t| t.kl == 0.0 && t.l2 == Some(0.0) && t.common_share == Some(0.0)),
        "{k0:?}"
    );
    let before = symmetry::layer_errors(&m, &te, Task::RotSb, Task::RotSb.canvas(16), 4).unwrap();
    fit(&m, &tr, &te, Task::RotSb, 1.0);
    let s = symmetry::measure(&m, &te, Task::RotSb, Task::RotSb.canvas(16), &before).unwrap();
    assert_eq!(s.kl.len(), 16);
    assert!(s.kl.iter().all(|t| t.kl >= 0.0), "{:?}", s.kl);
    // The drift measured whole: some tensor moved, and each common share is a share.
    assert!(s.kl.iter().any(|t| t.l2.unwrap() > 0.0), "{:?}", s.kl);
    assert!(
        s.kl.iter()
            .all(|t| (0.0..=1.0).contains(&t.common_share.unwrap())),
        "{:?}",
        s.kl
    );
    assert!(
        s.kl.iter()
            .any(|t| t.tensor.contains("blocks") && t.kl > 0.0),
        "{:?}",
        s.kl
    );
    assert_eq!(s.layers.len(), 4);
    assert!(s.layers.iter().all(|l| l.before.is_some()));
    // Frozen and KL models alike report no KL terms when they have no KL penalty.
    let frozen = Model::new(
        &g,
        ModelKind::FauxGcnn,
        &arch(ModelKind::FauxGcnn, 16, 10),
        &set,
        &mut rg,
    )
    .unwrap();
    assert!(frozen.kl_terms().unwrap().is_empty());
}

/// `--half-blocks`: on exact clones (blocks of 0 and 1, exact in binary16) a faux-gcnn reading its
/// frozen blocks in half precision gives the f32 network's logits bit for bit (the same sums in
/// the same order); on clones with random blocks it differs from it by about binary16's relative
/// rounding (2⁻¹¹), no more, and its frozen blocks themselves stay f32.
#[test]
fn half_precision_blocks_change_only_what_binary16_rounds() {
    use symclone::autograd::Tape;
    let g = gpu();
    let kind = ModelKind::FauxGcnn;
    let a = arch(kind, 16, 20);
    let sides = a.feature_sides().unwrap();
    let x =
        Tensor::from_slice(&g, &[8, 1, 16, 16], &rng(3).uniform_vec(8 * 256, 0.0, 1.0)).unwrap();
    let logits = |set: &CloneSet, half: bool| {
        let arch = Arch {
            half_blocks: half,
            ..a.clone()
        };
        let m = Model::new(&g, kind, &arch, set, &mut rng(52)).unwrap();
        let mut tape = Tape::no_grad();
        let xv = tape.input(x.clone());
        let y = m.forward(&mut tape, xv, false, 0).unwrap();
        (tape.value(y).to_vec().unwrap(), m)
    };
    let set = |random: bool| {
        let mut set = CloneSet::new();
        let mut rg = rng(9);
        for (l, &d) in sides.iter().enumerate() {
            let k = if l == 0 {
                OperatorKind::Lift
            } else {
                OperatorKind::P4
            };
            let op = exact_clone(&g, k, d);
            if random {
                let n = op.blocks.numel();
                let b: Vec<f32> = rg.normal_vec(n).iter().map(|v| 0.05 * v).collect();
                op.blocks.value().write_slice(&b).unwrap();
            }
            set.insert(clone_key(k, d), op);
        }
        set
    };
    let exact = set(false);
    assert_eq!(
        logits(&exact, true).0,
        logits(&exact, false).0,
        "exact blocks"
    );
    let random = set(true);
    let (h, mh) = logits(&random, true);
    let (f, _) = logits(&random, false);
    let scale = f.iter().map(|v| v.abs()).fold(0f32, f32::max);
    let worst = h
        .iter()
        .zip(&f)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
        / scale;
    assert!(worst > 0.0 && worst < 1e-2, "relative difference {worst:e}");
    let before = random[&clone_key(OperatorKind::Lift, 16)]
        .blocks
        .value()
        .to_vec()
        .unwrap();
    let blocks: Vec<_> = mh
        .params()
        .into_iter()
        .filter(|p| p.name().contains("blocks"))
        .collect();
    assert!(!blocks.is_empty());
    assert_eq!(
        blocks[0].value().to_vec().unwrap(),
        before,
        "the f32 blocks stay as they were"
    );
}
