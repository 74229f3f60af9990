//! SPEC §7's symmetry measures of a trained network, from forward passes on the GPU over a fixed
//! set of test digits (the first ones of the test split):
//!
//! - the **orbit** of a digit: its transforms. On the C4 rotation tasks the rotations by 0°,
//!   90°, 180° and 270°; on the D4 tasks (`symmetric-d4`, `mirror-sb`) the eight elements of D4
//!   (each rotation, then each rotation with the rows flipped); on `trans-sb`, whose symmetry is the translations that keep the label,
//!   four placements on the canvas: shifted left by s, left by s and down by s, right by s, right
//!   by s and down by s, where s is the canvas's padding, at most 10 px (10 px on SPEC's canvas;
//!   a shift within the padding keeps the digit whole). Each transform is labelled by the task's rule
//!   (SPEC §6, §9), so rot-sb's 180° and 270°, mirror-sb's flipped elements and trans-sb's right
//!   placements carry digit + 10;
//! - the accuracy on each element of the orbit, and the **orbit consistency**: the share of digits
//!   whose predictions over the orbit agree up to the label shift the task asks for (prediction
//!   minus the element's label offset from the first element, the same for all);
//! - the **invariance error** `‖f(g·x) − f(x)‖ / ‖f(x)‖` of the logits, per digit, averaged over
//!   the digits and the pairs (g·x, x) the task labels alike: (r·90°, 0°) for r = 1, 2, 3 on the
//!   C4 rotation tasks, (g_k·x, x) for k = 1..7 on the D4 tasks (on rot-sb and mirror-sb this
//!   measures how much the network broke the group, which the task asks for), and (shifted down,
//!   unshifted) on either side for `trans-sb`;
//! - the **equivariance error of each feature layer** alone on the inputs the network feeds it
//!   ([`crate::equivariance`]; C4 on the C4 rotation tasks, D4 on the D4 tasks — C4 for a network
//!   whose maps carry 4 orientations —, translations with margin 0 on `trans-sb`);
//! - for KL models, each cloned tensor's `KL_t` against its initial value (SPEC §5, no β).

use crate::autograd::Tape;
use crate::data::{Canvas, GpuSplit, Sample, Task};
use crate::equivariance::{equivariance_error, Group};
use crate::models::Model;
use crate::results::{KlTerm, LayerEquivariance};
use crate::{Error, Result};

/// Test digits whose orbits are measured (fewer when the test split is smaller).
pub const ORBIT_DIGITS: usize = 500;
/// Test digits whose feature maps the per-layer equivariance errors use.
pub const LAYER_DIGITS: usize = 8;
/// Images per forward pass.
const CHUNK: usize = 256;
/// The largest horizontal and vertical offset of `trans-sb`'s orbit placements, in pixels (the
/// canvas's padding when smaller).
const TRANS_SHIFT: i32 = 10;

/// The orbit measures of one network (see the module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Orbit {
    /// The group, in words.
    pub group: String,
    /// Accuracy on each orbit element (4, or 8 on the D4 tasks).
    pub accuracy: Vec<f32>,
    /// Share of digits whose predictions over the orbit agree up to the task's label shift.
    pub consistency: f32,
    /// Mean relative change of the logits over the label-preserving pairs.
    pub invariance_error: f64,
    /// Digits measured.
    pub digits: usize,
}

/// Everything [`measure`] finds for one trained network (one seed).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Symmetry {
    pub orbit: Orbit,
    pub layers: Vec<LayerEquivariance>,
    pub kl: Vec<KlTerm>,
}

/// Whether a task's orbit is the rotations (else the placements of `trans-sb`).
pub fn rotational(task: Task) -> bool {
    task != Task::TransSb
}

/// The orbit elements of a task as (group element, dx, dy): the 4 rotations, the 8 elements of
/// D4 on its tasks, or 4 placements on `trans-sb`'s `canvas`.
pub fn orbit_elements(task: Task, canvas: Canvas) -> Vec<(u32, i32, i32)> {
    if rotational(task) {
        (0..task.group().order() as u32)
            .map(|k| (k, 0, 0))
            .collect()
    } else {
        let s = TRANS_SHIFT.min(canvas.pad as i32);
        vec![(0, -s, 0), (0, -s, s), (0, s, 0), (0, s, s)]
    }
}

/// The pairs (g·x, x) of orbit elements whose logits the invariance error compares.
pub fn invariance_pairs(task: Task) -> Vec<(usize, usize)> {
    if rotational(task) {
        (1..task.group().order()).map(|k| (k, 0)).collect()
    } else {
        vec![(1, 0), (3, 2)]
    }
}

/// The group the measures use on `canvas`, in words.
pub fn group_name(task: Task, canvas: Canvas) -> String {
    match (rotational(task), task.group()) {
        (false, _) => format!(
            "T(2) within a side (shift down by {} px)",
            TRANS_SHIFT.min(canvas.pad as i32)
        ),
        (true, crate::group::Group::D4) => "D4 (rotations by 90° and reflections)".into(),
        (true, _) => "C4 (rotations by 90°)".into(),
    }
}

/// The group the per-layer equivariance errors of a network use: the task's, except C4 for a
/// network whose maps carry 4 orientations on a D4 task (its layers have no reflection to obey).
pub fn layer_group(task: Task, model: &Model) -> Group {
    if !rotational(task) {
        Group::Translations {
            shifts: vec![(1, 2), (-2, 1), (3, -1)],
            margin: 0,
        }
    } else if task.group() == crate::group::Group::D4 && model.kind.orientations() != 4 {
        Group::D4
    } else {
        Group::C4
    }
}

/// Whether the predictions of one digit's orbit agree up to the label shift: each prediction
/// minus its element's label offset from element 0 is the same.
pub fn consistent(preds: &[u32], labels: &[u32]) -> bool {
    let base = preds[0] as i64;
    (1..preds.len()).all(|e| preds[e] as i64 - (labels[e] as i64 - labels[0] as i64) == base)
}

/// The first `n` test digits (at most the split) under orbit element `e`.
fn samples(
    split: &GpuSplit,
    task: Task,
    canvas: Canvas,
    e: usize,
    range: std::ops::Range<usize>,
) -> Vec<Sample> {
    let (rot, dx, dy) = orbit_elements(task, canvas)[e];
    range
        .map(|i| Sample {
            index: i as u32,
            rot,
            dx,
            dy,
            label: task.label(split.labels()[i], rot, dx),
        })
        .collect()
}

/// The orbit measures of a network on the first `n` digits of a test split.
pub fn orbit(
    model: &Model,
    split: &GpuSplit,
    task: Task,
    canvas: Canvas,
    n: usize,
) -> Result<Orbit> {
    let n = n.min(split.n);
    if n == 0 {
        return Err(Error::invalid("orbit measures of no test digits"));
    }
    let classes = model.arch.classes;
    let order = orbit_elements(task, canvas).len();
    let mut logits: Vec<Vec<f32>> = (0..order)
        .map(|_| Vec::with_capacity(n * classes))
        .collect();
    let mut labels: Vec<Vec<u32>> = (0..order).map(|_| Vec::with_capacity(n)).collect();
    for (e, (lg, lb)) in logits.iter_mut().zip(&mut labels).enumerate() {
        for start in (0..n).step_by(CHUNK) {
            let s = samples(split, task, canvas, e, start..(start + CHUNK).min(n));
            let b = split.gather_samples(canvas, &s)?;
            let mut tape = Tape::no_grad();
            let x = tape.input(b.images.clone());
            let y = model.forward(&mut tape, x, false, 0)?;
            lg.extend(tape.value(y).to_vec()?);
            lb.extend(s.iter().map(|s| s.label));
        }
    }
    let argmax = |v: &[f32]| -> u32 {
        let mut best = 0;
        for (j, &x) in v.iter().enumerate() {
            if x > v[best] {
                best = j;
            }
        }
        best as u32
    };
    let preds: Vec<Vec<u32>> = logits
        .iter()
        .map(|l| l.chunks(classes).map(argmax).collect())
        .collect();
    let accuracy = (0..order)
        .map(|e| (0..n).filter(|&i| preds[e][i] == labels[e][i]).count() as f32 / n as f32)
        .collect();
    let agree = (0..n)
        .filter(|&i| {
            let column = |v: &[Vec<u32>]| v.iter().map(|e| e[i]).collect::<Vec<u32>>();
            consistent(&column(&preds), &column(&labels))
        })
        .count();
    let pairs = invariance_pairs(task);
    let mut err = 0.0;
    for &(a, b) in &pairs {
        for i in 0..n {
            let (la, lb) = (
                &logits[a][i * classes..(i + 1) * classes],
                &logits[b][i * classes..(i + 1) * classes],
            );
            err += crate::equivariance::rel(la, lb, None);
        }
    }
    Ok(Orbit {
        group: group_name(task, canvas),
        accuracy,
        consistency: agree as f32 / n as f32,
        invariance_error: err / (n * pairs.len()) as f64,
        digits: n,
    })
}

/// The equivariance error of each feature layer of a network, alone, on the inputs the network
/// feeds it for the first `n` test digits (orbit element 0); empty for the MLP.
pub fn layer_errors(
    model: &Model,
    split: &GpuSplit,
    task: Task,
    canvas: Canvas,
    n: usize,
) -> Result<Vec<f64>> {
    if model.feature_count() == 0 {
        return Ok(Vec::new());
    }
    let n = n.min(split.n);
    let b = split.gather_samples(canvas, &samples(split, task, canvas, 0, 0..n))?;
    let inputs = model.layer_inputs(&b.images)?;
    let group = layer_group(task, model);
    inputs
        .iter()
        .enumerate()
        .map(|(l, x)| equivariance_error(&|t| model.feature_map(l, t), x, &group))
        .collect()
}

/// Every measure of a trained network, with its per-layer errors before training (`before`, from
/// [`layer_errors`] on the freshly built network).
pub fn measure(
    model: &Model,
    split: &GpuSplit,
    task: Task,
    canvas: Canvas,
    before: &[f64],
) -> Result<Symmetry> {
    let after = layer_errors(model, split, task, canvas, LAYER_DIGITS)?;
    Ok(Symmetry {
        orbit: orbit(model, split, task, canvas, ORBIT_DIGITS)?,
        layers: after
            .iter()
            .enumerate()
            .map(|(l, &a)| LayerEquivariance {
                layer: format!("layer{l}"),
                before: before.get(l).copied(),
                after: a,
            })
            .collect(),
        kl: model.kl_terms()?,
    })
}
