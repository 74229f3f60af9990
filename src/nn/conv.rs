//! Convolution layers: `Conv2d` (T(2)), `LiftC4` (Z2 → P4) and `GroupConvC4` (P4 → P4), SPEC §1.
//! Initialisation (SPEC §4): filters and biases uniform on ±1/√(Cin·k²) (the 4 rotation planes of a
//! P4 input are not counted in the fan-in).

use super::Param;
use crate::ops::{conv, gconv};
use crate::rng::Rng;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

fn init(
    gpu: &Arc<Gpu>,
    name: &str,
    wshape: &[usize],
    cin: usize,
    k: usize,
    cout: usize,
    rng: &mut Rng,
) -> Result<(Param, Param)> {
    if k == 0 || cin == 0 || cout == 0 {
        return Err(Error::invalid(format!(
            "{name}: a convolution needs k, Cin and Cout ≥ 1 (got k = {k}, Cin = {cin}, Cout = {cout})"
        )));
    }
    let bound = 1.0 / ((cin * k * k) as f32).sqrt();
    let w = rng.uniform_vec(wshape.iter().product(), -bound, bound);
    let b = rng.uniform_vec(cout, -bound, bound);
    Ok((
        Param::new(
            format!("{name}.weight"),
            Tensor::from_slice(gpu, wshape, &w)?,
        ),
        Param::new(
            format!("{name}.bias"),
            Tensor::from_slice(gpu, &[cout], &b)?,
        ),
    ))
}

/// `y[o] = Σ_i corr(x[i], W[o, i]) + bias[o]`: (B, Cin, H, W) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
pub struct Conv2d {
    pub weight: Param,
    pub bias: Param,
    pub pad: usize,
}

impl Conv2d {
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        pad: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (weight, bias) = init(gpu, name, &[cout, cin, k, k], cin, k, cout, rng)?;
        Ok(Conv2d { weight, bias, pad })
    }
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        conv::conv2d_t(tape, x, w, Some(b), self.pad)
    }
    /// The forward pass without a tape.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        conv::conv2d(x, &self.weight.value(), Some(&self.bias.value()), self.pad)
    }
    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}

/// Lifting C4 convolution: W (Cout, Cin, k, k); (B, Cin, H, W) → (B, Cout, 4, H', W').
pub struct LiftC4 {
    pub weight: Param,
    pub bias: Param,
    pub pad: usize,
}

impl LiftC4 {
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        pad: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (weight, bias) = init(gpu, name, &[cout, cin, k, k], cin, k, cout, rng)?;
        Ok(LiftC4 { weight, bias, pad })
    }
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        gconv::lift_c4_t(tape, x, w, Some(b), self.pad)
    }
    /// The forward pass without a tape.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        gconv::lift_c4(x, &self.weight.value(), Some(&self.bias.value()), self.pad)
    }
    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}

/// Group C4 convolution P4 → P4: W (Cout, Cin, 4, k, k); (B, Cin, 4, H, W) → (B, Cout, 4, H', W').
pub struct GroupConvC4 {
    pub weight: Param,
    pub bias: Param,
    pub pad: usize,
}

impl GroupConvC4 {
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        pad: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (weight, bias) = init(gpu, name, &[cout, cin, 4, k, k], cin, k, cout, rng)?;
        Ok(GroupConvC4 { weight, bias, pad })
    }
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        gconv::p4_conv_t(tape, x, w, Some(b), self.pad)
    }
    /// The forward pass without a tape.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        gconv::p4_conv(x, &self.weight.value(), Some(&self.bias.value()), self.pad)
    }
    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
