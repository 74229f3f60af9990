//! The taped convolution: the forward by a chosen algorithm, and a backward rule that computes
//! the input, weight and bias gradients the tape asks for ([`conv2d_grads_with`]: all three from
//! one kernel for a layer with one input channel, the weight and bias gradients together where
//! both are needed); the taped channel bias of the cloned layers.

use super::{
    add_channel_bias_ex_, check_filter, check_weight_grad, choose_algo, conv2d_bias_grad,
    conv2d_input_grad_with, conv2d_weight_bias_grad_with, conv2d_weight_grad_with, conv2d_with,
    conv_dims, reg, sum_splits, tune, ConvAlgo, ConvDims, WeightGradAlgo,
};
use crate::autograd::{Tape, Var};
use crate::ops::elementwise;
use crate::tensor::Tensor;
use crate::Result;

/// Taped `conv2d(x, w) + b`, each pass by the algorithm the tuner picks for its shape.
pub fn conv2d_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    let (xv, wv) = (tape.value(x), tape.value(w));
    let d = conv_dims(xv, wv, b.map(|v| tape.value(v)), pad)?;
    let algos = (
        choose_algo(xv, d, tune::FWD)?,
        choose_algo(xv, d, tune::INPUT_GRAD)?,
        tune::choose_dw(xv.gpu(), d)?.algo,
    );
    conv_taped(tape, x, w, b, pad, algos)
}

/// [`conv2d_t`] by given algorithms: (forward and input gradient, weight gradient).
pub fn conv2d_t_with(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    pad: usize,
    (algo, wgrad): (ConvAlgo, WeightGradAlgo),
) -> Result<Var> {
    conv_taped(tape, x, w, b, pad, (algo, algo, wgrad))
}

/// The taped convolution with (forward, input-gradient, weight-gradient) algorithms.
fn conv_taped(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    pad: usize,
    (algo, dx_algo, wgrad): (ConvAlgo, ConvAlgo, WeightGradAlgo),
) -> Result<Var> {
    let xv = tape.value(x).clone();
    let wv = tape.value(w).clone();
    let bv = b.map(|v| tape.value(v).clone());
    let d = conv_dims(&xv, &wv, bv.as_ref(), pad)?;
    let out = conv2d_with(algo, &xv, &wv, bv.as_ref(), pad)?;
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Ok(tape.push(
        out,
        &inputs,
        Box::new(move |g, need| {
            let with_bias = need.len() > 2;
            let need = [need[0], need[1], with_bias && need[2]];
            let [dx, dw, db] = conv2d_grads_with((dx_algo, wgrad), &xv, &wv, g, d, need)?;
            let mut v = vec![dx, dw];
            if with_bias {
                v.push(db);
            }
            Ok(v)
        }),
    ))
}

/// The gradients of `conv2d(x, w) + b` for the output gradient `g` that `need` asks for (input,
/// weight, bias), each by the algorithm the tuner picks for its shape: what the tape runs.
pub fn conv2d_grads(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    d: ConvDims,
    need: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let algos = (
        choose_algo(g, d, tune::INPUT_GRAD)?,
        tune::choose_dw(x.gpu(), d)?.algo,
    );
    conv2d_grads_with(algos, x, w, g, d, need)
}

/// [`conv2d_grads`] by given algorithms (input gradient, weight gradient). With the register
/// kernels for both, a layer that [`reg::fused_backward_fits`] (one input channel) and whose input
/// and weight gradients are both needed gets all three from one kernel (`conv_bwd_reg`, one read
/// of `g`); otherwise the weight and bias gradients come together where both are needed.
pub fn conv2d_grads_with(
    (dx_algo, wgrad): (ConvAlgo, WeightGradAlgo),
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    d: ConvDims,
    need: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let [need_dx, need_dw, need_db] = need;
    if need_dx
        && need_dw
        && (dx_algo, wgrad) == (ConvAlgo::Reg, WeightGradAlgo::Reg)
        && reg::fused_backward_fits(d)
    {
        check_weight_grad(x, g, d)?;
        check_filter("conv2d_input_grad", w, d)?;
        let (dx, part, bpart) = reg::backward_reg(x, w, g, d)?;
        let db = if need_db {
            Some(sum_splits(bpart)?)
        } else {
            None
        };
        return Ok([Some(dx), Some(sum_splits(part)?), db]);
    }
    let dx = if need_dx {
        Some(conv2d_input_grad_with(dx_algo, g, w, d)?)
    } else {
        None
    };
    let (dw, db) = match (need_dw, need_db) {
        (true, true) => {
            let (dw, db) = conv2d_weight_bias_grad_with(wgrad, x, g, d)?;
            (Some(dw), Some(db))
        }
        (true, false) => (Some(conv2d_weight_grad_with(wgrad, x, g, d)?), None),
        (false, true) => (None, Some(conv2d_bias_grad(g)?)),
        (false, false) => (None, None),
    };
    Ok([dx, dw, db])
}

/// `y[b, c, …] = x[b, c, …] + bias[c]` for x of shape (B, C, …), taped; the bias gradient sums
/// over the batch and the trailing axes.
pub fn channel_bias_t(tape: &mut Tape, x: Var, bias: Var) -> Result<Var> {
    channel_bias_relu_t(tape, x, bias, false)
}

/// [`channel_bias_t`] followed by ReLU when `relu`, in one pass forward; the backward masks the
/// gradient with the output, then sums it for the bias.
pub fn channel_bias_relu_t(tape: &mut Tape, x: Var, bias: Var, relu: bool) -> Result<Var> {
    let out = tape.value(x).deep_clone()?;
    add_channel_bias_ex_(&out, tape.value(bias), relu)?;
    let y = out.clone();
    Ok(tape.push(
        out,
        &[x, bias],
        Box::new(move |g, need| {
            let g = if relu {
                elementwise::relu_bwd(g, &y)?
            } else {
                g.clone()
            };
            let db = if need[1] {
                Some(conv2d_bias_grad(&g)?)
            } else {
                None
            };
            Ok(vec![Some(g), db])
        }),
    ))
}
