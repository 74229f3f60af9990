//! The report of `clone --kind mixer-*` (SPEC §8): what it measured ([`MixerReport`]), and one document written as `report.md` and as a
//! self-contained `report.html` (the run report's [`Doc`]), `report.json`, and the figure
//! `fidelity-vs-compute.svg` (both students' training relative MSE against cumulative FLOPs).

use crate::clone::mixer::{MixerConfig, MixerTeacher};
use crate::clone::mixer_train::Fidelity;
use crate::clone::train::{CloneConfig, CloneStats};
use crate::files::write_atomic;
use crate::report::doc::{Block, Doc, FigureBlock, Table};
use crate::report::plot::{Figure, Lines, Panel, Series};
use crate::Result;
use std::path::Path;

/// Below this held-out relative MSE the mixer counts as having learned something (an all-zero
/// prediction scores 1): above it a compute ratio would compare the cost of "predict zero".
pub const LEARNED: f64 = 0.9;

/// One student's line in the side-by-side table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StudentReport {
    pub name: String,
    pub parameters: usize,
    pub iterations: usize,
    pub seconds: f64,
    pub flops_per_iteration: f64,
    /// Held-out fidelity on the multi-channel teacher.
    pub fidelity: Fidelity,
    pub equivariance_error: f64,
    /// (cumulative FLOPs, training MSE relative to the targets' mean square) at each log point.
    pub curve: Vec<(f64, f64)>,
    /// The mixer: its whole training. The operator: FLOPs until its training relative MSE first
    /// reached the mixer's held-out relative MSE (None: not within its iterations).
    pub flops_to_mixer_fidelity: Option<f64>,
    pub stats: CloneStats,
}

impl StudentReport {
    /// FLOPs of the whole training run.
    pub fn total_flops(&self) -> f64 {
        self.iterations as f64 * self.flops_per_iteration
    }
}

/// What `clone --kind mixer-*` measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MixerReport {
    pub kind: String,
    pub adapter: String,
    pub config: MixerConfig,
    pub operator_config: Option<CloneConfig>,
    pub teacher_equivariance_error: f64,
    pub mixer: StudentReport,
    /// The 9-block operator (v5, k = 3 only: the operator clones 3×3 taps).
    pub operator: Option<StudentReport>,
    /// The mixer's training FLOPs / the operator's FLOPs to reach the mixer's held-out fidelity
    /// (None: no operator, the mixer did not learn, or the operator did not get there).
    pub compute_ratio: Option<f64>,
    pub seconds: f64,
}

fn sci(v: f64) -> String {
    format!("{v:.3e}")
}

/// A relative MSE: three decimals, or three significant digits below 0.01.
fn rel(v: f64) -> String {
    if v >= 0.01 {
        format!("{v:.3}")
    } else {
        sci(v)
    }
}

fn row(st: &StudentReport) -> Vec<String> {
    vec![
        st.name.clone(),
        st.parameters.to_string(),
        st.iterations.to_string(),
        format!("{:.1} s", st.seconds),
        sci(st.flops_per_iteration),
        sci(st.total_flops()),
        sci(st.fidelity.mse),
        rel(st.fidelity.relative()),
        sci(st.equivariance_error),
    ]
}

/// The figure: both students' training relative MSE against cumulative FLOPs (log-log).
pub fn figure(r: &MixerReport) -> Figure {
    let series = std::iter::once(&r.mixer)
        .chain(r.operator.as_ref())
        .enumerate()
        .map(|(i, st)| Series {
            label: st.name.clone(),
            colour: i,
            points: st
                .curve
                .iter()
                .filter(|(f, rel)| *f > 0.0 && *rel > 0.0)
                .map(|(f, rel)| (f.log10(), *rel))
                .collect(),
            dashed: false,
        })
        .collect();
    Figure::new(
        "fidelity-vs-compute",
        &format!("{}: fidelity against compute", r.kind),
        "Training MSE relative to the teacher outputs' mean square (fresh filters and inputs every \
         iteration; 1 = predicting zero) against the cumulative matrix-product FLOPs of training, \
         for the mixer and the 9-block operator (which stops once it reaches the mixer's held-out \
         fidelity).",
        vec![Panel::Lines(Lines {
            title: "relative MSE vs compute".into(),
            x_label: "log10 cumulative training FLOPs".into(),
            y_label: "relative MSE (log)".into(),
            log_y: true,
            series,
            ..Default::default()
        })],
    )
}

/// The report as a document (Markdown and HTML come from the same blocks).
pub fn document(r: &MixerReport, fig: Option<FigureBlock>) -> Doc {
    let c = &r.config;
    let mut blocks = vec![Block::Para(format!(
        "Adapter: {}. Teacher: {}→{} channel {}×{} convolution{} on {}×{} Gaussian inputs (output \
         {}×{}), {} N(0, 1); its own equivariance error {:.2e}. Whole run {:.0} s.",
        r.adapter,
        c.channels,
        c.channels,
        c.k,
        c.k,
        if c.teacher == MixerTeacher::Radial {
            " (isotropic, 3 radial rings)"
        } else {
            ""
        },
        c.d,
        c.d,
        c.out_side(),
        c.out_side(),
        if c.teacher == MixerTeacher::Radial {
            "ring coefficients"
        } else {
            "filter entries"
        },
        r.teacher_equivariance_error,
        r.seconds
    ))];
    let header = [
        "student",
        "parameters",
        "iterations",
        "time",
        "FLOPs / iteration",
        "total FLOPs",
        "held-out MSE",
        "relative MSE",
        "equivariance error",
    ];
    blocks.push(Block::Table(Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        right: (0..header.len()).map(|i| i > 0).collect(),
        rows: std::iter::once(&r.mixer)
            .chain(r.operator.as_ref())
            .map(row)
            .collect(),
    }));
    blocks.push(Block::Para(format!(
        "Held out: {} fresh filters × {} fresh inputs; relative MSE = MSE / the teacher outputs' \
         mean square (their variance: they have mean 0), so predicting zero scores 1. The \
         equivariance error is ‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖ averaged over {}. FLOPs count the \
         matrix products, forward and backward (3 × forward). The mixer trains {} filters × {} \
         inputs per iteration, an optimiser step every {} (lr {:e}, {} warm-up steps, × {} per \
         step); the operator stops at the first log point whose training relative MSE reaches the \
         mixer's held-out one.",
        r.mixer.fidelity.filters,
        r.mixer.fidelity.inputs_per_filter,
        if c.teacher == MixerTeacher::Conv {
            "shifts by one pixel in four directions (interior compared)"
        } else {
            "rotations by 90°, 180°, 270°"
        },
        c.filters,
        c.batch,
        c.accum,
        c.lr,
        c.warmup,
        c.lr_decay
    )));
    blocks.push(Block::Para(verdict(r)));
    if let Some(f) = fig {
        blocks.push(Block::Figure(f));
    }
    Doc {
        title: format!("{} cloning (SPEC §8)", r.kind),
        blocks,
    }
}

/// The compute-ratio sentence.
fn verdict(r: &MixerReport) -> String {
    let held_out = r.mixer.fidelity.relative();
    match (&r.operator, r.compute_ratio) {
        (None, _) => "No 9-block operator beside it: the operator clones 3×3 taps only (SPEC §2), \
                      so a 5×5 radial teacher has none."
            .into(),
        (Some(_), _) if held_out >= LEARNED => format!(
            "The mixer did not learn the layer (held-out relative MSE {held_out:.3} ≥ {LEARNED}: about \
             what predicting zero scores), so no compute ratio is given."
        ),
        (Some(o), Some(x)) => format!(
            "**Compute ratio** (the mixer's training FLOPs / the operator's FLOPs to reach the \
             mixer's held-out relative MSE {}): **{x:.0}×** ({} / {}).",
            rel(r.mixer.fidelity.relative()),
            sci(r.mixer.total_flops()),
            sci(o.flops_to_mixer_fidelity.unwrap_or(f64::NAN))
        ),
        (Some(_), None) => format!(
            "The operator did not reach the mixer's relative MSE {} within its iterations: no ratio.",
            rel(r.mixer.fidelity.relative())
        ),
    }
}

/// The report as Markdown (what the command prints).
pub fn markdown(r: &MixerReport) -> String {
    document(r, None).markdown()
}

/// `report.json`, `fidelity-vs-compute.svg`, `report.md` and `report.html` in `out`.
pub fn write_report(r: &MixerReport, out: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(r).expect("serialisable");
    write_atomic(&out.join("report.json"), json.as_bytes())?;
    let fig = figure(r);
    let svg = crate::report::render::svg(&fig)?;
    write_atomic(&out.join("fidelity-vs-compute.svg"), svg.as_bytes())?;
    let doc = document(
        r,
        Some(FigureBlock {
            file: format!("{}.svg", fig.name),
            title: fig.title.clone(),
            caption: fig.caption.clone(),
            svg,
        }),
    );
    write_atomic(&out.join("report.md"), doc.markdown().as_bytes())?;
    write_atomic(&out.join("report.html"), doc.html().as_bytes())
}
