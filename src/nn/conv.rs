//! Convolution layers: `Conv2d` (T(2)), `LiftC4` (Z2 → P4) and `GroupConvC4` (P4 → P4), SPEC §1,
//! and their D4 counterparts `LiftD4` (Z2 → p4m) and `GroupConvD4` (p4m → p4m), SPEC §9.
//! Initialisation (SPEC §4): filters and biases uniform on ±1/√(Cin·k²) (the 4 or 8 orientation
//! planes of a group input are not counted in the fan-in).

use crate::autograd::Param;
use crate::autograd::{Tape, Var};
use crate::group::Group;
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
    /// The taped convolution, then ReLU when `relu` (by the convolution's own launch).
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize, relu: bool) -> Result<Var>;
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor>;
}

/// `y[o] = Σ_i corr(x[i], W[o, i]) + bias[o]`: (B, Cin, H, W) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
pub struct Plain;
/// Lifting convolution into the group of order `N` (4: C4, 8: D4): W (Cout, Cin, k, k);
/// (B, Cin, H, W) → (B, Cout, N, H', W').
pub struct Lift<const N: usize>;
/// Group convolution of the group of order `N`: W (Cout, Cin, N, k, k); (B, Cin, N, H, W) →
/// (B, Cout, N, H', W').
pub struct GroupConv<const N: usize>;

impl ConvKind for Plain {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize, relu: bool) -> Result<Var> {
        conv::conv2d_relu_t(tape, x, w, Some(b), pad, relu)
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        conv::conv2d(x, w, Some(b), pad)
    }
}

/// The group of order `n` (4: C4, 8: D4).
const fn group_of(n: usize) -> Group {
    if n == 8 {
        Group::D4
    } else {
        Group::C4
    }
}

impl<const N: usize> ConvKind for Lift<N> {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize, relu: bool) -> Result<Var> {
        gconv::lift_conv_relu_t(tape, x, (w, Some(b)), (pad, relu), group_of(N))
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        gconv::lift_conv(x, w, Some(b), pad, group_of(N))
    }
}

impl<const N: usize> ConvKind for GroupConv<N> {
    fn weight_shape(cout: usize, cin: usize, k: usize) -> Vec<usize> {
        vec![cout, cin, N, k, k]
    }
    fn taped(tape: &mut Tape, x: Var, w: Var, b: Var, pad: usize, relu: bool) -> Result<Var> {
        gconv::group_conv_relu_t(tape, x, (w, Some(b)), (pad, relu), group_of(N))
    }
    fn apply(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
        gconv::group_conv(x, w, Some(b), pad, group_of(N))
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
pub type LiftC4 = ConvLayer<Lift<4>>;
/// The P4 → P4 group convolution.
pub type GroupConvC4 = ConvLayer<GroupConv<4>>;
/// The lifting D4 convolution Z2 → p4m.
pub type LiftD4 = ConvLayer<Lift<8>>;
/// The p4m → p4m group convolution.
pub type GroupConvD4 = ConvLayer<GroupConv<8>>;

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
        self.forward_ex(tape, x, false)
    }
    /// [`forward`](Self::forward), then ReLU when `relu` (by the convolution's own launch).
    pub fn forward_ex(&self, tape: &mut Tape, x: Var, relu: bool) -> Result<Var> {
        let w = tape.param(&self.weight);
        let b = tape.param(&self.bias);
        K::taped(tape, x, w, b, self.pad, relu)
    }
    /// The forward pass without a tape.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        K::apply(x, &self.weight.value(), &self.bias.value(), self.pad)
    }
    pub fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
