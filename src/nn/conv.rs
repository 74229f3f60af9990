//! Convolution layers: `Conv2d` (T(2)), `LiftC4` (Z2 → P4) and `GroupConvC4` (P4 → P4), SPEC §1.
//! Initialisation (SPEC §4): filters and biases uniform on ±1/√(Cin·k²) (the 4 rotation planes of a
//! P4 input are not counted in the fan-in).

use crate::autograd::Param;
use crate::autograd::{Tape, Var};
use crate::ops::{conv, gconv};
use crate::rng::Rng;
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
    let n = gpu.check_shape(&format!("{name}.weight"), wshape)?;
    let bound = 1.0 / ((cin * k * k) as f32).sqrt();
    let w = rng.uniform_vec(n, -bound, bound);
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

/// Which convolution a [`ConvLayer`] computes: its weight shape and its ops.
pub trait ConvKind {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize>;
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize) -> Result<Var>;
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor>;
}

/// `y[o] = Σ_i corr(x[i], W[o, i]) + bias[o]`: (B, Cin, H, W) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
pub struct Plain;
/// Lifting C4 convolution: W (Cout, Cin, k, k); (B, Cin, H, W) → (B, Cout, 4, H', W').
pub struct Lift;
/// Group C4 convolution P4 → P4: W (Cout, Cin, 4, k, k); (B, Cin, 4, H, W) → (B, Cout, 4, H', W').
pub struct P4;

impl ConvKind for Plain {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize) -> Result<Var> {
        conv::conv2d_t(tape, x, w, Some(b), pad)
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        conv::conv2d(x, w, Some(b), pad)
    }
}

impl ConvKind for Lift {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize) -> Result<Var> {
        gconv::lift_c4_t(tape, x, w, Some(b), pad)
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        gconv::lift_c4(x, w, Some(b), pad)
    }
}

impl ConvKind for P4 {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, 4, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize) -> Result<Var> {
        gconv::p4_conv_t(tape, x, w, Some(b), pad)
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        gconv::p4_conv(x, w, Some(b), pad)
    }
}

/// A convolution layer of kind `K` with its filters and bias.
pub struct ConvLayer<K> {
    pub weight: Param,
    pub bias: Param,
    pub pad: usize,
    kind: std::marker::PhantomData<K>,
}

/// A plain convolution (T(2)).
pub type Conv2d = ConvLayer<Plain>;
/// The lifting C4 convolution Z2 → P4.
pub type LiftC4 = ConvLayer<Lift>;
/// The P4 → P4 group convolution.
pub type GroupConvC4 = ConvLayer<P4>;

impl<K: ConvKind> ConvLayer<K> {
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        pad: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (weight, bias) = init(gpu, name, &K::weight_shape(cout, cin, k), cin, k, cout, rng)?;
        Ok(ConvLayer {
            weight,
            bias,
            pad,
            kind: std::marker::PhantomData,
        })
    }
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        K::taped(tape, x, w, b, self.pad)
    }
    /// The forward pass without a tape.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        K::apply(x, &self.weight.value(), &self.bias.value(), self.pad)
    }
    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
