//! What the numbers say: the differences the paper's claims rest on (SPEC §6), each with a 95 %
//! interval, and which way each goes.
//!
//! For a model with mean accuracy p over s seeds of n test digits each, the variance of p is taken
//! as the larger of the binomial one, p(1 − p)/(n·s) (the test digits are a sample), and the seeds'
//! own, std²/s (a seed can stall): the second dominates when seeds disagree, the first when there is
//! one seed. Two models' accuracies on the same task are treated as independent, which overstates
//! the variance of their difference when they err on the same digits: the intervals are
//! conservative. A claim is **supported** when its interval lies wholly on the claimed side of 0,
//! **contradicted** when wholly on the other, and **undecided** otherwise.

use super::types::ModelReport;
use crate::models::ModelKind;
use crate::report::doc::{Block, Table};

/// The normal quantile of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_985;

/// A claim: on `task`, model `a` is more accurate than model `b` (`what` says why it matters).
struct Claim {
    task: &'static str,
    a: ModelKind,
    b: ModelKind,
    what: &'static str,
}

/// The claims in the order the report lists them.
fn claims() -> Vec<Claim> {
    use ModelKind::*;
    let c = |task, a, b, what| Claim { task, a, b, what };
    vec![
        c("symmetric", Gcnn, Cnn, "the invariant network generalises to rotated digits; the plain one cannot"),
        c("symmetric", FauxGcnn, Cnn, "the frozen clones carry the symmetry into a network that has none built in"),
        c("symmetric", FauxGcnn, Mlp, "the frozen clones carry the symmetry (against the MLP)"),
        c("symmetric", FauxGcnnKl, FauxGcnn, "fine-tuning the clones under the KL penalty keeps what the frozen clones give"),
        c("rot-sb", FauxGcnnKl, FauxGcnn, "the KL model adapts where the frozen, invariant clones cannot (the paper's claim)"),
        c("rot-sb", FauxGcnnKl, Gcnn, "the KL model adapts where the exactly invariant network cannot (the paper's claim)"),
        c("rot-sb", Mlp, Gcnn, "a network without the symmetry can tell 0°/90° from 180°/270°; an invariant one cannot"),
        c("trans-sb", FauxCnnKl, FauxCnn, "the KL model adapts where the frozen translation clones cannot"),
        c("trans-sb", Mlp, FauxCnn, "a plain MLP beats the T(2)-cloned model on a translation-breaking task (the paper: 97.53 % against 77.83 %)"),
        c("symmetric-d4", D4Gcnn, Gcnn, "the D4-invariant network generalises to mirrored digits; the C4 one sees a mirrored digit as another shape"),
        c("symmetric-d4", D4Gcnn, Cnn, "the D4-invariant network generalises to turned and mirrored digits; the plain one cannot"),
        c("symmetric-d4", FauxD4Gcnn, Cnn, "the frozen D4 clones carry the reflections and turns into a network that has none built in"),
        c("mirror-sb", Gcnn, D4Gcnn, "a C4 network can tell a digit from its mirror image; a D4-invariant one cannot (SPEC §9)"),
        c("mirror-sb", FauxD4GcnnKl, FauxD4Gcnn, "the KL model breaks the reflection the task asks it to, where the frozen D4 clones cannot"),
    ]
}

/// One claim's difference, interval and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub task: String,
    pub a: ModelKind,
    pub b: ModelKind,
    pub what: String,
    /// Accuracy of a minus accuracy of b (fractions).
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Comparison {
    /// "supported", "contradicted" or "undecided".
    pub fn verdict(&self) -> &'static str {
        if self.lo > 0.0 {
            "supported"
        } else if self.hi < 0.0 {
            "contradicted"
        } else {
            "undecided"
        }
    }
}

/// The variance of a model's mean accuracy (see the module's note).
fn variance(m: &ModelReport) -> Option<f64> {
    let s = m.test_acc.len();
    if s == 0 || m.test_samples == 0 {
        return None;
    }
    let p = f64::from(m.mean);
    let binomial = p * (1.0 - p) / (m.test_samples * s) as f64;
    let seeds = f64::from(m.std).powi(2) / s as f64;
    Some(binomial.max(seeds))
}

/// Every claim whose two models the run trained, with its 95 % interval.
pub fn comparisons(results: &[ModelReport]) -> Vec<Comparison> {
    let find =
        |task: &str, model: ModelKind| results.iter().find(|m| m.task == task && m.model == model);
    claims()
        .into_iter()
        .filter_map(|c| {
            let (a, b) = (find(c.task, c.a)?, find(c.task, c.b)?);
            let se = (variance(a)? + variance(b)?).sqrt();
            let diff = f64::from(a.mean) - f64::from(b.mean);
            Some(Comparison {
                task: c.task.into(),
                a: c.a,
                b: c.b,
                what: c.what.into(),
                diff,
                lo: diff - Z95 * se,
                hi: diff + Z95 * se,
            })
        })
        .collect()
}

/// The report's section: a paragraph on the method and a table of the claims.
pub fn section(results: &[ModelReport]) -> Vec<Block> {
    let cs = comparisons(results);
    if cs.is_empty() {
        return Vec::new();
    }
    let pts = |x: f64| format!("{:+.1}", 100.0 * x);
    vec![
        Block::Heading(2, "What the numbers say".into()),
        Block::Para(
            "Each row is a difference of test accuracies on one task with its 95 % interval (the variance of each mean is the larger of the binomial one over the test digits and the seeds' own; the two models are treated as independent, so the intervals are conservative). A claim is supported when its interval lies wholly above 0, contradicted when wholly below, undecided otherwise."
                .into(),
        ),
        Block::Table(Table {
            header: [
                "task",
                "claim: A beats B",
                "A − B (points)",
                "95 % interval",
                "verdict",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            right: vec![false, false, true, true, false],
            rows: cs
                .iter()
                .map(|c| {
                    vec![
                        c.task.clone(),
                        format!("{} beats {}: {}", c.a, c.b, c.what),
                        pts(c.diff),
                        format!("[{}, {}]", pts(c.lo), pts(c.hi)),
                        c.verdict().into(),
                    ]
                })
                .collect(),
        }),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A model's report with only its task, accuracies and test size set (for the tests).
    pub(crate) fn model(task: &str, model: ModelKind, accs: &[f32], n: usize) -> ModelReport {
        let m = accs.iter().sum::<f32>() / accs.len() as f32;
        let std = if accs.len() > 1 {
            (accs.iter().map(|a| (a - m).powi(2)).sum::<f32>() / (accs.len() - 1) as f32).sqrt()
        } else {
            0.0
        };
        ModelReport {
            task: task.into(),
            model,
            test_acc: accs.to_vec(),
            mean: m,
            std,
            test_samples: n,
            train_seconds: 0.0,
            trainable_params: 0,
            clones_unchanged: None,
            history: Vec::new(),
            peak_bytes: 0,
            step_flops: 0,
            step_counts: None,
            eval_counts: None,
            accuracy_by_rotation: None,
            layer_equivariance: None,
            orbit_group: None,
            orbit_consistency: None,
            invariance_error: None,
            kl_terms: None,
        }
    }

    #[test]
    fn a_difference_its_interval_and_verdict_follow_the_binomial_variance_with_one_seed() {
        use ModelKind::*;
        let r = [
            model("rot-sb", FauxGcnnKl, &[0.80], 1000),
            model("rot-sb", FauxGcnn, &[0.50], 1000),
            model("rot-sb", Gcnn, &[0.79], 1000),
        ];
        let c = comparisons(&r);
        assert_eq!(c.len(), 2, "{c:?}");
        // 0.3 ± 1.96·√((0.8·0.2 + 0.5·0.5)/1000) = 0.3 ± 0.03969.
        assert!((c[0].diff - 0.3).abs() < 1e-6);
        assert!((c[0].lo - 0.26031).abs() < 1e-4, "{:?}", c[0]);
        assert!((c[0].hi - 0.33969).abs() < 1e-4, "{:?}", c[0]);
        assert_eq!(c[0].verdict(), "supported");
        assert_eq!(c[1].verdict(), "undecided", "{:?}", c[1]);
        let r = [
            model("trans-sb", Mlp, &[0.6], 1000),
            model("trans-sb", FauxCnn, &[0.9], 1000),
        ];
        assert_eq!(comparisons(&r)[0].verdict(), "contradicted");
    }

    #[test]
    fn seeds_that_disagree_widen_the_interval_beyond_the_binomial_one() {
        use ModelKind::*;
        let one = [
            model("symmetric", Gcnn, &[0.9], 1000),
            model("symmetric", Cnn, &[0.4], 1000),
        ];
        let spread = [
            model("symmetric", Gcnn, &[0.9, 0.9, 0.9], 1000),
            model("symmetric", Cnn, &[0.1, 0.4, 0.7], 1000),
        ];
        let w1 = comparisons(&one)[0].hi - comparisons(&one)[0].lo;
        let c = &comparisons(&spread)[0];
        // The seeds' variance of cnn (0.09/3) beats its binomial one; gcnn's seeds agree, so
        // its binomial one (0.9·0.1/3000) counts: 2·1.96·√(0.03 + 0.00003) = 0.67929.
        let want = 0.67929;
        assert!((c.hi - c.lo - want).abs() < 1e-5, "{c:?} vs width {want}");
        assert!(c.hi - c.lo > 3.0 * w1);
        assert_eq!(c.verdict(), "supported");
    }

    #[test]
    fn no_section_without_both_models_of_a_claim_or_without_the_test_size() {
        use ModelKind::*;
        assert!(section(&[model("rot-sb", FauxGcnnKl, &[0.8], 1000)]).is_empty());
        let old = [
            model("rot-sb", FauxGcnnKl, &[0.8], 0),
            model("rot-sb", FauxGcnn, &[0.5], 0),
        ];
        assert!(comparisons(&old).is_empty(), "a report without test sizes");
    }
}
