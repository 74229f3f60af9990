//! Optimisers over a list of parameters: SGD with momentum, Adam, AdamW, with optional global
//! gradient-norm clipping computed on the GPU. `step` does not clear gradients, so gradients can be
//! accumulated over several backward passes; call `zero_grad` after stepping.

use crate::autograd::Param;
use crate::ops::elementwise;
use crate::ops::optim::{self as kernels, AdamStep};
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
    m: Option<Tensor>,
    v: Option<Tensor>,
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
    t: u32,
    last_clip: Option<Tensor>,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f32, params: &[Param]) -> Self {
        Optimizer {
            kind,
            lr,
            clip: None,
            states: params
                .iter()
                .filter(|p| p.trainable())
                .map(|p| State {
                    param: p.clone(),
                    m: None,
                    v: None,
                    tied: 1,
                })
                .collect(),
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
        // A tied parameter's entries each see g / tied and count tied · (g / tied)² = (g / √tied)²
        // towards the norm.
        let scaled = |s: &State, power: f32| -> Result<Tensor> {
            let g = s.param.grad().unwrap();
            if s.tied == 1 {
                Ok(g)
            } else {
                elementwise::affine(&g, (s.tied as f32).powf(-power), 0.0)
            }
        };
        let clip = match self.clip {
            Some(max_norm) => {
                let grads = with_grad
                    .iter()
                    .map(|&i| scaled(&self.states[i], 0.5))
                    .collect::<Result<Vec<Tensor>>>()?;
                kernels::clip_coefficient(&grads, max_norm)?
            }
            None => Tensor::full(&gpu, &[2], 1.0)?,
        };
        for &i in &with_grad {
            let g = scaled(&self.states[i], 1.0)?;
            let s = &mut self.states[i];
            let p = s.param.value();
            let first = s.m.is_none();
            if first {
                s.m = Some(Tensor::zeros(&gpu, p.shape())?);
                if !matches!(self.kind, OptimizerKind::Sgd { .. }) {
                    s.v = Some(Tensor::zeros(&gpu, p.shape())?);
                }
            }
            let m = s.m.as_ref().unwrap();
            match self.kind {
                OptimizerKind::Sgd {
                    momentum,
                    weight_decay,
                } => kernels::sgd_(&p, &g, m, &clip, self.lr, momentum, weight_decay, first)?,
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
                } => {
                    let h = AdamStep {
                        lr: self.lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        decoupled: matches!(self.kind, OptimizerKind::AdamW { .. }),
                        t: self.t,
                    };
                    kernels::adam_(&p, &g, m, s.v.as_ref().unwrap(), &clip, h)?
                }
            }
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
