//! A fully connected layer `y = x Wᵀ + b` (PyTorch layout and default initialisation).

use crate::autograd::Param;
use crate::autograd::{Tape, Var};
use crate::ops::matmul::{self, Epilogue};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// `y = x Wᵀ + b`, W of shape (out, in).
pub struct Linear {
    pub weight: Param,
    pub bias: Param,
}

impl Linear {
    /// PyTorch's default initialisation: W and b uniform on ±1/√in.
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        if fan_in == 0 || fan_out == 0 {
            return Err(Error::invalid(format!(
                "{name}: a linear layer needs at least one input and one output (got {fan_in} → {fan_out})"
            )));
        }
        let n = gpu.check_shape(&format!("{name}.weight"), &[fan_out, fan_in])?;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w = rng.uniform_vec(n, -bound, bound);
        let b = rng.uniform_vec(fan_out, -bound, bound);
        Ok(Linear {
            weight: Param::new(
                format!("{name}.weight"),
                Tensor::from_slice(gpu, &[fan_out, fan_in], &w)?,
            ),
            bias: Param::new(
                format!("{name}.bias"),
                Tensor::from_slice(gpu, &[fan_out], &b)?,
            ),
        })
    }

    /// Apply to x of shape (batch, in), optionally with a fused ReLU.
    pub fn forward(&self, tape: &mut Tape, x: Var, relu: bool) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        let ep = if relu {
            Epilogue::BiasRelu
        } else {
            Epilogue::Bias
        };
        matmul::linear(tape, x, w, Some(b), ep)
    }

    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
