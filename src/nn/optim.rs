//! Optimisers over a list of parameters: SGD with momentum, Adam, AdamW, with optional global
//! gradient-norm clipping computed on the GPU. `step` does not clear gradients, so gradients can be
//! accumulated over several backward passes; call `zero_grad` after stepping.

use crate::autograd::Param;
use crate::ops::elementwise;
use crate::ops::optim::{self as kernels, AdamStep, Rule, Slot};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum OptimizerKind {
    Sgd {
        momentum: f32,
        weight_decay: f32,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    AdamW {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl OptimizerKind {
    /// PyTorch's Adam defaults with the given L2 weight decay.
    pub fn adam(weight_decay: f32) -> Self {
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
    /// PyTorch's AdamW defaults with the given decoupled weight decay.
    pub fn adamw(weight_decay: f32) -> Self {
        OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
}

struct State {
    param: Param,
    /// How many tied entries each element of the parameter stands for (1: an ordinary parameter;
    /// see [`Optimizer::with_tied`]).
    tied: usize,
}

/// An optimiser over trainable parameters (frozen ones are skipped).
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f32,
    /// Clip the global gradient norm to this value before each step.
    pub clip: Option<f32>,
    states: Vec<State>,
    /// Trainable parameters per launch group: the device's [`kernels::slots_per_launch`], learned
    /// at the first step (0 before it).
    per_launch: usize,
    /// The moments of each launch group (the trainable parameters taken `per_launch` at a time,
    /// in order), packed ([`kernels::step_`]); made at the first step. One buffer per launch, so
    /// that each launch binds only the state it updates.
    moments: Vec<Option<Tensor>>,
    /// The clip coefficient when clipping is off: `[1, 0]`, made once.
    unclipped: Option<Tensor>,
    t: u32,
    last_clip: Option<Tensor>,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f32, params: &[Param]) -> Self {
        let states: Vec<State> = params
            .iter()
            .filter(|p| p.trainable())
            .map(|p| State {
                param: p.clone(),
                tied: 1,
            })
            .collect();
        Optimizer {
            kind,
            lr,
            clip: None,
            states,
            per_launch: 0,
            moments: Vec::new(),
            unclipped: None,
            t: 0,
            last_clip: None,
        }
    }

    /// With global gradient-norm clipping.
    pub fn with_clip(mut self, max_norm: f32) -> Self {
        self.clip = Some(max_norm);
        self
    }

    /// Treat each element of `param` as `entries` tied entries of a larger parameter that always
    /// hold the same value and receive equal shares of the element's gradient: each entry's
    /// gradient is `g / entries`, which is what the update rule sees, and the entries count
    /// `entries · (g / entries)²` towards the clipped global norm. The steps are then those the
    /// larger parameter would take (every entry moves alike), without storing it. A parameter
    /// the optimiser does not hold is an error.
    pub fn with_tied(mut self, param: &Param, entries: usize) -> Result<Self> {
        let s = self
            .states
            .iter_mut()
            .find(|s| s.param.is(param))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{} is not a trainable parameter of this optimiser",
                    param.name()
                ))
            })?;
        if entries == 0 {
            return Err(Error::invalid(format!(
                "{}: a tied parameter stands for at least one entry",
                param.name()
            )));
        }
        s.tied = entries;
        Ok(self)
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// The `[coefficient, norm]` tensor of the last clipped step (read it only when logging).
    pub fn last_clip(&self) -> Option<&Tensor> {
        self.last_clip.as_ref()
    }

    /// Apply one update to every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        let with_grad: Vec<usize> = (0..self.states.len())
            .filter(|&i| self.states[i].param.grad().is_some())
            .collect();
        if with_grad.is_empty() {
            return Ok(());
        }
        self.t += 1;
        let gpu = self.states[with_grad[0]].param.value().gpu().clone();
        // A tied parameter's entries each see g / tied (the slot's scale below) and count
        // tied · (g / tied)² = (g / √tied)² towards the norm.
        let clip = match self.clip {
            Some(max_norm) => {
                let grads = with_grad
                    .iter()
                    .map(|&i| {
                        let s = &self.states[i];
                        let g = s.param.grad().unwrap();
                        if s.tied == 1 {
                            Ok(g)
                        } else {
                            elementwise::affine(&g, (s.tied as f32).powf(-0.5), 0.0)
                        }
                    })
                    .collect::<Result<Vec<Tensor>>>()?;
                kernels::clip_coefficient(&grads, max_norm)?
            }
            None => {
                if self.unclipped.is_none() {
                    self.unclipped = Some(Tensor::from_slice(&gpu, &[2], &[1.0, 0.0])?);
                }
                self.unclipped.clone().unwrap()
            }
        };
        let rule = match self.kind {
            OptimizerKind::Sgd {
                momentum,
                weight_decay,
            } => Rule::Sgd {
                lr: self.lr,
                momentum,
                weight_decay,
            },
            OptimizerKind::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | OptimizerKind::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Rule::Adam(AdamStep {
                lr: self.lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled: matches!(self.kind, OptimizerKind::AdamW { .. }),
                t: self.t,
            }),
        };
        if self.per_launch == 0 {
            self.per_launch = kernels::slots_per_launch(&gpu);
            self.moments = vec![None; self.states.len().div_ceil(self.per_launch)];
        }
        for (k, group) in self.states.chunks(self.per_launch).enumerate() {
            // Each tensor's moments follow those of the group's tensors before it, whether or
            // not they have a gradient this step.
            let mut at = 0;
            let held: Vec<(f32, usize, Tensor, Tensor)> = group
                .iter()
                .filter_map(|s| {
                    let offset = at;
                    at += s.param.numel();
                    let scale = (s.tied as f32).powf(-1.0);
                    Some((scale, offset, s.param.value(), s.param.grad()?))
                })
                .collect();
            if held.is_empty() {
                continue;
            }
            if self.moments[k].is_none() {
                self.moments[k] = Some(Tensor::zeros(&gpu, &[at * rule.moments()])?);
            }
            let slots: Vec<Slot> = held
                .iter()
                .map(|(scale, offset, p, g)| Slot {
                    param: p,
                    grad: g,
                    scale: *scale,
                    offset: *offset,
                })
                .collect();
            let state = self.moments[k].as_ref().unwrap();
            kernels::step_in_launches_of(&slots, state, &clip, rule, self.per_launch)?;
        }
        self.last_clip = Some(clip);
        Ok(())
    }

    /// Clear every parameter's gradient.
    pub fn zero_grad(&self) {
        for s in &self.states {
            s.param.zero_grad();
        }
    }
}
