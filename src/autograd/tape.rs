//! The autograd tape. Each differentiable op pushes a node holding its output and a backward rule;
//! `backward(loss)` walks the nodes in reverse and hands each rule the gradient of its output.
//! Parameters ([`Param`]) persist across steps; a tape lives for one step.

use super::Param;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// A value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(pub(crate) usize);

/// A backward rule: given the output's gradient and which inputs need one, return the inputs'
/// gradients (None where not needed).
pub type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>>;

struct Node {
    value: Tensor,
    inputs: Vec<usize>,
    backward: Option<BackwardFn>,
    requires_grad: bool,
    param: Option<Param>,
}

/// One step's record of operations.
pub struct Tape {
    nodes: Vec<Node>,
    no_grad: bool,
    grads: Vec<Option<Tensor>>,
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

impl Tape {
    /// A tape that records backward rules.
    pub fn new() -> Self {
        Tape {
            nodes: Vec::new(),
            no_grad: false,
            grads: Vec::new(),
        }
    }

    /// A tape that records nothing to differentiate (evaluation).
    pub fn no_grad() -> Self {
        Tape {
            no_grad: true,
            ..Self::new()
        }
    }

    /// Whether this tape records backward rules.
    pub fn grad_enabled(&self) -> bool {
        !self.no_grad
    }

    /// A constant input.
    pub fn input(&mut self, t: Tensor) -> Var {
        self.nodes.push(Node {
            value: t,
            inputs: Vec::new(),
            backward: None,
            requires_grad: false,
            param: None,
        });
        Var(self.nodes.len() - 1)
    }

    /// A leaf that needs a gradient without being a parameter (tests use this).
    pub fn leaf(&mut self, t: Tensor) -> Var {
        let v = self.input(t);
        self.nodes[v.0].requires_grad = !self.no_grad;
        v
    }

    /// A parameter: its gradient is accumulated into the parameter by `backward`.
    pub fn param(&mut self, p: &Param) -> Var {
        let v = self.input(p.value());
        self.nodes[v.0].requires_grad = !self.no_grad && p.trainable();
        self.nodes[v.0].param = Some(p.clone());
        v
    }

    /// The value of a variable.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    /// Whether a variable needs a gradient.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Record an op's output and backward rule. The rule is dropped when no input needs a gradient
    /// or the tape is in no-grad mode.
    pub fn push(&mut self, value: Tensor, inputs: &[Var], backward: BackwardFn) -> Var {
        let requires_grad = !self.no_grad && inputs.iter().any(|v| self.nodes[v.0].requires_grad);
        self.nodes.push(Node {
            value,
            inputs: inputs.iter().map(|v| v.0).collect(),
            backward: if requires_grad { Some(backward) } else { None },
            requires_grad,
            param: None,
        });
        Var(self.nodes.len() - 1)
    }

    /// The same values under another shape (a view; the gradient is reshaped back).
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let orig = self.value(x).shape().to_vec();
        let out = self.value(x).reshape(shape)?;
        Ok(self.push(
            out,
            &[x],
            Box::new(move |g, _| Ok(vec![Some(g.reshape(&orig)?)])),
        ))
    }

    /// Back-propagate from a scalar `loss` (its gradient seeded with 1). Parameter gradients are
    /// added to the parameters' gradient buffers (so several backward passes accumulate).
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        let lv = &self.nodes[loss.0].value;
        if lv.numel() != 1 {
            return Err(Error::shape(
                "backward",
                format!("loss must be a scalar, got {:?}", lv.shape()),
            ));
        }
        let seed = Tensor::full(lv.gpu(), lv.shape(), 1.0)?;
        self.backward_with(loss, seed)
    }

    /// Back-propagate from `out` with a given output gradient. Gradients are freed as they are
    /// consumed: afterwards [`Tape::grad`] answers for leaves only (inputs made with [`Tape::leaf`]).
    pub fn backward_with(&mut self, out: Var, grad: Tensor) -> Result<()> {
        if self.no_grad {
            return Err(Error::invalid("backward on a no-grad tape"));
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        grads[out.0] = Some(grad);
        for i in (0..=out.0).rev() {
            // Each gradient is consumed here: handed to its parameter, to its op's backward rule,
            // or kept (a leaf's, for `grad`); an intermediate one is freed once its rule has run.
            let Some(g) = grads[i].take() else { continue };
            let node = &mut self.nodes[i];
            if let Some(p) = &node.param {
                p.accumulate_grad(g)?;
                continue;
            }
            let Some(rule) = node.backward.take() else {
                grads[i] = Some(g);
                continue;
            };
            let inputs = node.inputs.clone();
            let needs: Vec<bool> = inputs
                .iter()
                .map(|&j| self.nodes[j].requires_grad)
                .collect();
            let gin = rule(&g, &needs)?;
            for ((j, gi), need) in inputs.into_iter().zip(gin).zip(needs) {
                let Some(gi) = gi else { continue };
                if !need {
                    continue;
                }
                if gi.shape() != self.nodes[j].value.shape() {
                    return Err(Error::shape(
                        "backward",
                        format!(
                            "gradient {:?} for a value of shape {:?}",
                            gi.shape(),
                            self.nodes[j].value.shape()
                        ),
                    ));
                }
                grads[j] = Some(match grads[j].take() {
                    None => gi,
                    Some(prev) => prev.axpby(&gi, 1.0, 1.0)?,
                });
            }
        }
        self.grads = grads;
        Ok(())
    }

    /// The gradient of a leaf after `backward` (None if it got none, and for values computed by an
    /// op or taken from a parameter: theirs are consumed by the backward pass).
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        self.grads.get(v.0).and_then(|g| g.as_ref())
    }
}
