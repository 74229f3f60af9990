//! The networks of SPEC §4: `gcnn`, `faux-gcnn`, `faux-gcnn-kl`, `cnn`, `mlp`, and for the T(2) task
//! `faux-cnn`, `faux-cnn-kl`; and SPEC §9's `d4-gcnn` (p4m layers, channels ÷ √2), `faux-d4-gcnn`
//! and `faux-d4-gcnn-kl` (on D4 clones). A network is a
//! feature stack (convolutions, group convolutions or cloned layers, each followed by ReLU, with 2×2
//! max pools) and a head.

mod arch;
mod drift;

pub use arch::{d4_channels, Arch, MAX_CHANNELS, MAX_DEPTH, MAX_WIDTH};
pub use drift::{drift_split, KlTerm};

use crate::autograd::Param;
use crate::autograd::{Tape, Var};
use crate::clone::{clone_key, CloneSet, ClonedConv, OperatorKind};
use crate::nn::conv::{Conv2d, GroupConvC4, GroupConvD4, LiftC4, LiftD4};
use crate::nn::Linear;
use crate::ops::kl::{self, Penalty};
use crate::ops::{elementwise, pool, reduce};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Which network.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ModelKind {
    Gcnn,
    FauxGcnn,
    FauxGcnnKl,
    Cnn,
    Mlp,
    FauxCnn,
    FauxCnnKl,
    /// SPEC §9: `gcnn` with p4m (D4) layers.
    D4Gcnn,
    /// SPEC §9: `faux-gcnn` on D4 clones (lift-d4, p4m), frozen.
    FauxD4Gcnn,
    /// SPEC §9: `faux-gcnn-kl` on D4 clones, trainable under the KL penalty.
    FauxD4GcnnKl,
}

impl ModelKind {
    pub const ALL: [ModelKind; 10] = [
        ModelKind::Gcnn,
        ModelKind::FauxGcnn,
        ModelKind::FauxGcnnKl,
        ModelKind::Cnn,
        ModelKind::Mlp,
        ModelKind::FauxCnn,
        ModelKind::FauxCnnKl,
        ModelKind::D4Gcnn,
        ModelKind::FauxD4Gcnn,
        ModelKind::FauxD4GcnnKl,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Gcnn => "gcnn",
            ModelKind::FauxGcnn => "faux-gcnn",
            ModelKind::FauxGcnnKl => "faux-gcnn-kl",
            ModelKind::Cnn => "cnn",
            ModelKind::Mlp => "mlp",
            ModelKind::FauxCnn => "faux-cnn",
            ModelKind::FauxCnnKl => "faux-cnn-kl",
            ModelKind::D4Gcnn => "d4-gcnn",
            ModelKind::FauxD4Gcnn => "faux-d4-gcnn",
            ModelKind::FauxD4GcnnKl => "faux-d4-gcnn-kl",
        }
    }
    /// The order of the rotation group the feature maps carry an axis for: 4 (C4), 8 (D4), or 1
    /// for the networks without one.
    pub fn orientations(self) -> usize {
        match self {
            ModelKind::Gcnn | ModelKind::FauxGcnn | ModelKind::FauxGcnnKl => 4,
            ModelKind::D4Gcnn | ModelKind::FauxD4Gcnn | ModelKind::FauxD4GcnnKl => 8,
            _ => 1,
        }
    }
    /// Whether the network uses cloned layers, and of which operator kind for its first layer.
    pub fn cloned(self) -> Option<(OperatorKind, OperatorKind)> {
        match self {
            ModelKind::FauxGcnn | ModelKind::FauxGcnnKl => {
                Some((OperatorKind::Lift, OperatorKind::P4))
            }
            ModelKind::FauxCnn | ModelKind::FauxCnnKl => Some((OperatorKind::Z2, OperatorKind::Z2)),
            ModelKind::FauxD4Gcnn | ModelKind::FauxD4GcnnKl => {
                Some((OperatorKind::LiftD4, OperatorKind::P4m))
            }
            _ => None,
        }
    }
    /// Whether the cloned tensors train under the KL penalty.
    pub fn kl(self) -> bool {
        matches!(
            self,
            ModelKind::FauxGcnnKl | ModelKind::FauxCnnKl | ModelKind::FauxD4GcnnKl
        )
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown model '{}': use one of {}",
                    s.escape_debug(),
                    ModelKind::ALL.map(ModelKind::name).join(", ")
                ))
            })
    }
}

/// The (kind, side) of every cloned operator a network of this kind needs.
pub fn clones_needed(kind: ModelKind, arch: &Arch) -> Result<Vec<(OperatorKind, usize)>> {
    let Some((first, rest)) = kind.cloned() else {
        return Ok(Vec::new());
    };
    let s = arch.feature_sides()?;
    Ok(vec![
        (first, s[0]),
        (rest, s[1]),
        (rest, s[2]),
        (rest, s[3]),
    ])
}

enum Feature {
    Conv(Conv2d),
    Lift(LiftC4),
    P4(GroupConvC4),
    LiftD4(LiftD4),
    P4m(GroupConvD4),
    Cloned(ClonedConv),
}

/// A network of SPEC §4.
pub struct Model {
    pub kind: ModelKind,
    pub arch: Arch,
    features: Vec<Feature>,
    head: Vec<Linear>,
    /// For KL models: each cloned tensor's initial value and softmax axis.
    kl_refs: Vec<(Param, Tensor, Vec<usize>, usize)>,
    /// The size of the feature maps' orientation axis (4 or 8), or 1 without one.
    orient: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({}, {:?})", self.kind, self.arch)
    }
}

impl Model {
    /// Build a network. Cloned networks take their operators from `clones` (copied: frozen for
    /// `faux-*`, trainable under KL for `faux-*-kl`).
    pub fn new(
        gpu: &Arc<Gpu>,
        kind: ModelKind,
        arch: &Arch,
        clones: &CloneSet,
        rng: &mut Rng,
    ) -> Result<Model> {
        arch.check()?;
        let mut features = Vec::new();
        let mut kl_refs = Vec::new();
        let mut head = Vec::new();
        let orient = kind.orientations();
        match kind {
            ModelKind::Mlp => {
                let mut fan_in = arch.side * arch.side;
                for (i, &w) in arch.mlp.iter().enumerate() {
                    head.push(Linear::new(gpu, &format!("fc{i}"), fan_in, w, rng)?);
                    fan_in = w;
                }
                head.push(Linear::new(
                    gpu,
                    &format!("fc{}", arch.mlp.len()),
                    fan_in,
                    arch.classes,
                    rng,
                )?);
            }
            _ => {
                let sides = arch.feature_sides()?;
                let c = arch.channels;
                let cins = [1, c[0], c[1], c[2]];
                for l in 0..4 {
                    let name = format!("layer{l}");
                    match kind.cloned() {
                        None => features.push(match (kind, l) {
                            (ModelKind::Gcnn, 0) => {
                                Feature::Lift(LiftC4::new(gpu, &name, cins[l], c[l], 3, 0, rng)?)
                            }
                            (ModelKind::Gcnn, _) => {
                                Feature::P4(GroupConvC4::new(gpu, &name, cins[l], c[l], 3, 0, rng)?)
                            }
                            (ModelKind::D4Gcnn, 0) => {
                                Feature::LiftD4(LiftD4::new(gpu, &name, cins[l], c[l], 3, 0, rng)?)
                            }
                            (ModelKind::D4Gcnn, _) => Feature::P4m(GroupConvD4::new(
                                gpu, &name, cins[l], c[l], 3, 0, rng,
                            )?),
                            _ => Feature::Conv(Conv2d::new(gpu, &name, cins[l], c[l], 3, 0, rng)?),
                        }),
                        Some((first, rest)) => {
                            let ok = if l == 0 { first } else { rest };
                            let op = clones.get(&clone_key(ok, sides[l])).ok_or_else(|| {
                                let given: Vec<String> = clones
                                    .values()
                                    .map(|c| format!("{} for d = {}", c.kind.name(), c.d))
                                    .collect();
                                Error::invalid(format!(
                                    "{kind} needs a {} clone for {}×{} inputs, and none was given (the clones given: {}; clone it first: `symclone-gpu clone --kind {} --dim {}`)",
                                    ok.name(),
                                    sides[l],
                                    sides[l],
                                    if given.is_empty() { "none".to_string() } else { given.join(", ") },
                                    ok.name(),
                                    sides[l]
                                ))
                            })?;
                            if op.d != sides[l] || op.kind != ok {
                                return Err(Error::invalid(format!("clone of kind {:?} for d = {} does not fit layer {l} of {kind} (needs {:?}, d = {})", op.kind, op.d, ok, sides[l])));
                            }
                            let own = op.with_trainable(kind.kl())?;
                            if kind.kl() {
                                for (p, shape, axis) in own.params_with_axes() {
                                    kl_refs.push((p.clone(), p.value().deep_clone()?, shape, axis));
                                }
                            }
                            features.push(Feature::Cloned(
                                ClonedConv::new(gpu, &name, own, cins[l], c[l], rng)?
                                    .with_half_blocks(arch.half_blocks),
                            ));
                        }
                    }
                }
                let s = arch.final_side()?;
                let flat = if orient > 1 { c[3] } else { c[3] * s * s };
                head.push(Linear::new(gpu, "fc0", flat, arch.hidden, rng)?);
                head.push(Linear::new(gpu, "fc1", arch.hidden, arch.classes, rng)?);
            }
        }
        Ok(Model {
            kind,
            arch: arch.clone(),
            features,
            head,
            kl_refs,
            orient,
        })
    }

    /// Logits for a batch x (B, 1, side, side). `train` enables dropout with masks from `seed`.
    pub fn forward(&self, tape: &mut Tape, x: Var, train: bool, seed: u32) -> Result<Var> {
        self.forward_probed(tape, x, train, seed, &mut |_, _| {})
    }

    /// The input of each of the four feature layers for a batch (no tape kept): what a teacher's
    /// layers see, for teacher-sourced cloning. Empty for the MLP.
    pub fn layer_inputs(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut tape = Tape::no_grad();
        let xv = tape.input(x.clone());
        let mut seen = Vec::new();
        self.forward_probed(&mut tape, xv, false, 0, &mut |_, t| seen.push(t.clone()))?;
        Ok(seen)
    }

    /// The filters of feature layer `l` of a convolutional teacher as cloning codes, one per
    /// (output, input) channel pair, with the input channel each reads: (codes, channels, Cin).
    pub fn layer_codes(&self, l: usize) -> Result<(Vec<f32>, Vec<usize>, usize)> {
        let w = match self.features.get(l) {
            Some(Feature::Conv(c)) => c.weight.value(),
            Some(Feature::Lift(c)) => c.weight.value(),
            Some(Feature::P4(c)) => c.weight.value(),
            Some(Feature::LiftD4(c)) => c.weight.value(),
            Some(Feature::P4m(c)) => c.weight.value(),
            _ => {
                return Err(Error::invalid(format!(
                    "{} has no convolution filters at layer {l}",
                    self.kind
                )))
            }
        };
        let s = w.shape().to_vec();
        let (cout, cin) = (s[0], s[1]);
        let channels = (0..cout * cin).map(|k| k % cin).collect();
        Ok((w.to_vec()?, channels, cin))
    }

    fn forward_probed(
        &self,
        tape: &mut Tape,
        x: Var,
        train: bool,
        seed: u32,
        probe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Var> {
        let xs = tape.value(x).shape().to_vec();
        if xs.len() != 4 || xs[1] != 1 || xs[2] != self.arch.side || xs[3] != self.arch.side {
            return Err(Error::shape(
                "model input",
                format!(
                    "{} takes (B, 1, {s}, {s}) images, got {xs:?}",
                    self.kind,
                    s = self.arch.side
                ),
            ));
        }
        let b = xs[0];
        let mut h = x;
        if self.kind == ModelKind::Mlp {
            h = tape.reshape(h, &[b, self.arch.side * self.arch.side])?;
            let last = self.head.len() - 1;
            for (i, l) in self.head.iter().enumerate() {
                h = l.forward(tape, h, i < last)?;
            }
            return Ok(h);
        }
        for (l, f) in self.features.iter().enumerate() {
            probe(l, tape.value(h));
            // Each layer's ReLU is taken into a pass that runs anyway: after layers 1 and 3 into
            // the pool (pooling the ReLU is the ReLU of the pool), after layers 0 and 2 into the
            // convolution's own launch or a cloned layer's bias pass.
            let pooled = l == 1 || l == 3;
            h = Self::feature_ex(f, tape, h, !pooled)?;
            if pooled {
                h = self.pool_relu(tape, h)?;
            }
        }
        h = if self.orient > 1 {
            pool::global_mean_t(tape, h)? // (B, C): over the orientations and space
        } else {
            let n = tape.value(h).numel() / b;
            tape.reshape(h, &[b, n])?
        };
        h = self.head[0].forward(tape, h, true)?;
        if train && self.arch.dropout > 0.0 {
            h = elementwise::dropout_t(tape, h, self.arch.dropout, seed)?;
        }
        self.head[1].forward(tape, h, false)
    }

    /// ReLU and the 2×2 max pool, in one op.
    fn pool_relu(&self, tape: &mut Tape, h: Var) -> Result<Var> {
        let s = tape.value(h).shape().to_vec();
        if self.orient > 1 {
            let (b, c, n, hh, ww) = (s[0], s[1], s[2], s[3], s[4]);
            let flat = tape.reshape(h, &[b, c * n, hh, ww])?;
            let p = pool::max_pool2d_ex_t(tape, flat, 2, 2, true)?;
            let ps = tape.value(p).shape().to_vec();
            tape.reshape(p, &[b, c, n, ps[2], ps[3]])
        } else {
            pool::max_pool2d_ex_t(tape, h, 2, 2, true)
        }
    }

    /// Add `β · Σ_t P_t` over the cloned tensors to `sum`, `P` the KL of SPEC §5 or the squared
    /// distance (`kind`), and its gradient to each tensor's accumulated gradient (KL models;
    /// nothing otherwise). Outside the tape: each tensor's kernel adds its gradient to the
    /// parameter's in place and writes its rows beside the others', and one sum of all the rows
    /// is added to `sum`, where a taped penalty took a sum, an addition and a scaled backward per
    /// tensor.
    pub fn add_kl_penalty(&self, beta: f32, kind: Penalty, sum: &Tensor) -> Result<()> {
        let Some((first, ..)) = self.kl_refs.first() else {
            return Ok(());
        };
        // Each tensor's rows start where the previous tensor's end.
        let mut count = 0;
        let views = self
            .kl_refs
            .iter()
            .map(|(p, init, shape, axis)| {
                let w = p.value().reshape(shape)?;
                let offset = count;
                count += kl::kl_row_count(&w, *axis)?;
                Ok((p, w, init.reshape(shape)?, *axis, offset))
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = Tensor::empty(first.value().gpu(), &[count])?;
        for (p, w, w0, axis, offset) in &views {
            match p.grad() {
                Some(g) => kl::penalty_into(kind, w, w0, *axis, beta, &rows, *offset, &g, true)?,
                None => {
                    let g = Tensor::empty(w.gpu(), p.value().shape())?;
                    kl::penalty_into(kind, w, w0, *axis, beta, &rows, *offset, &g, false)?;
                    p.accumulate_grad(g)?;
                }
            }
        }
        sum.acc_(&reduce::sum_all(&rows)?, 1.0)
    }

    /// The number of feature layers (4 for the convolutional networks, 0 for the MLP).
    pub fn feature_count(&self) -> usize {
        self.features.len()
    }

    /// Feature layer `l` alone (its convolution, no ReLU or pool) on its input `x`, with no
    /// tape kept: the map whose equivariance SPEC §7 measures layer by layer.
    pub fn feature_map(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        let f = self.features.get(l).ok_or_else(|| {
            Error::invalid(format!(
                "{} has {} feature layers, not a layer {l}",
                self.kind,
                self.features.len()
            ))
        })?;
        let mut tape = Tape::no_grad();
        let v = tape.input(x.clone());
        let y = Self::feature(f, &mut tape, v)?;
        Ok(tape.value(y).clone())
    }

    /// A feature layer's map (its convolution and bias, no ReLU).
    fn feature(f: &Feature, tape: &mut Tape, x: Var) -> Result<Var> {
        Self::feature_ex(f, tape, x, false)
    }

    /// A feature layer's map, then ReLU when `relu` (in the layer's own last pass).
    fn feature_ex(f: &Feature, tape: &mut Tape, x: Var, relu: bool) -> Result<Var> {
        match f {
            Feature::Conv(c) => c.forward_ex(tape, x, relu),
            Feature::Lift(c) => c.forward_ex(tape, x, relu),
            Feature::P4(c) => c.forward_ex(tape, x, relu),
            Feature::LiftD4(c) => c.forward_ex(tape, x, relu),
            Feature::P4m(c) => c.forward_ex(tape, x, relu),
            Feature::Cloned(c) => c.forward_ex(tape, x, relu),
        }
    }

    /// How far every cloned tensor drifted from its clone (KL models only; empty otherwise):
    /// `KL_t` (no β, on the GPU), and on the CPU `mean(δ²)` and the share of `Σ δ²` that is a
    /// common shift along the softmax axis (SPEC §5, §7).
    pub fn kl_terms(&self) -> Result<Vec<KlTerm>> {
        self.kl_refs
            .iter()
            .map(|(p, init, shape, axis)| {
                let (value, _) = kl::kl(&p.value().reshape(shape)?, &init.reshape(shape)?, *axis)?;
                let (l2, common_share) =
                    drift_split(&p.value().to_vec()?, &init.to_vec()?, shape, *axis);
                Ok(KlTerm {
                    tensor: p.name().to_string(),
                    kl: value.item()? as f64,
                    l2: Some(l2),
                    common_share: Some(common_share),
                })
            })
            .collect()
    }

    /// Every parameter (frozen cloned tensors included; the optimiser skips those).
    pub fn params(&self) -> Vec<Param> {
        let mut v = Vec::new();
        for f in &self.features {
            match f {
                Feature::Conv(c) => v.extend(c.params()),
                Feature::Lift(c) => v.extend(c.params()),
                Feature::P4(c) => v.extend(c.params()),
                Feature::LiftD4(c) => v.extend(c.params()),
                Feature::P4m(c) => v.extend(c.params()),
                Feature::Cloned(c) => {
                    v.extend(c.own_params());
                    for p in c.op.params() {
                        v.push(p);
                    }
                }
            }
        }
        for l in &self.head {
            v.extend(l.params());
        }
        v
    }

    /// Trainable parameter count.
    pub fn trainable_count(&self) -> usize {
        self.params()
            .iter()
            .filter(|p| p.trainable())
            .map(|p| p.numel())
            .sum()
    }

    /// Parameters of the cloned operators (for the frozen check).
    pub fn cloned_params(&self) -> Vec<Param> {
        self.features
            .iter()
            .filter_map(|f| match f {
                Feature::Cloned(c) => Some(c.op.params()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}
