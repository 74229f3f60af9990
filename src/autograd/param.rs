//! Parameters: persistent tensors with a gradient buffer that backward passes accumulate into.

use crate::tensor::Tensor;
use crate::Result;
use std::sync::{Arc, Mutex};

struct ParamInner {
    name: String,
    value: Tensor,
    grad: Mutex<Option<Tensor>>,
    trainable: bool,
    /// Tensors computed from a frozen value ([`Param::derived`]), until the value is written.
    derived: Mutex<Option<Vec<Tensor>>>,
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
            derived: Mutex::new(None),
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
    /// Overwrite the value (a checkpoint's, say), forgetting what was derived from the old one.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        *self.0.derived.lock().unwrap() = None;
        self.0.value.write_slice(data)
    }
    /// `f` of the value, computed once for a frozen parameter and kept until [`Param::write`]
    /// (a layout its consumer wants, made once instead of every step); computed afresh on each
    /// call for a trainable one, whose value the optimiser changes. One derived tensor per
    /// parameter: every caller must pass the same `f`.
    pub fn derived(&self, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let mut v = self.derived_all(|x| Ok(vec![f(x)?]))?;
        Ok(v.swap_remove(0))
    }
    /// [`Param::derived`] for several tensors made together (a matrix and its transpose, say).
    pub fn derived_all(
        &self,
        f: impl FnOnce(&Tensor) -> Result<Vec<Tensor>>,
    ) -> Result<Vec<Tensor>> {
        if self.0.trainable {
            return f(&self.0.value);
        }
        let mut slot = self.0.derived.lock().unwrap();
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let t = f(&self.0.value)?;
        if t.is_empty() {
            return Err(crate::Error::invalid(format!(
                "{}: a derived value must hold at least one tensor",
                self.0.name
            )));
        }
        *slot = Some(t.clone());
        Ok(t)
    }
    /// Forget the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.0.grad.lock().unwrap() = None;
    }
}
