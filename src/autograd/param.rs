//! Parameters: persistent tensors with a gradient buffer that backward passes accumulate into.

use crate::tensor::Tensor;
use crate::Result;
use std::sync::{Arc, Mutex};

struct ParamInner {
    name: String,
    value: Tensor,
    grad: Mutex<Option<Tensor>>,
    trainable: bool,
}

/// A persistent tensor with a gradient buffer. Cloning shares the parameter.
#[derive(Clone)]
pub struct Param(Arc<ParamInner>);

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({}, {:?})", self.0.name, self.0.value.shape())
    }
}

impl Param {
    /// A trainable parameter.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Self::with_trainable(name, value, true)
    }
    /// A parameter that is held constant (its tensors never change).
    pub fn frozen(name: impl Into<String>, value: Tensor) -> Self {
        Self::with_trainable(name, value, false)
    }
    fn with_trainable(name: impl Into<String>, value: Tensor, trainable: bool) -> Self {
        Param(Arc::new(ParamInner {
            name: name.into(),
            value,
            grad: Mutex::new(None),
            trainable,
        }))
    }
    /// Whether `other` is this parameter (a clone of the same handle), not merely an equal one.
    pub fn is(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// The current value (the optimiser updates this buffer in place).
    pub fn value(&self) -> Tensor {
        self.0.value.clone()
    }
    pub fn trainable(&self) -> bool {
        self.0.trainable
    }
    pub fn numel(&self) -> usize {
        self.0.value.numel()
    }
    /// The accumulated gradient, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().unwrap().clone()
    }
    /// Add `g` to the accumulated gradient. The first gradient is kept as it is when nothing else
    /// holds its buffer (no copy), and copied otherwise, since later ones are added in place.
    pub fn accumulate_grad(&self, g: Tensor) -> Result<()> {
        let mut slot = self.0.grad.lock().unwrap();
        match slot.as_ref() {
            None if g.is_unique() => *slot = Some(g),
            None => *slot = Some(g.deep_clone()?),
            Some(acc) => acc.acc_(&g, 1.0)?,
        }
        Ok(())
    }
    /// Forget the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.0.grad.lock().unwrap() = None;
    }
}
