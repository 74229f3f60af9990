//! The taped convolution: the forward by a chosen algorithm, and a backward rule that computes
//! the input, weight and bias gradients the tape asks for (the weight and bias gradients together
//! where both are needed); the taped channel bias of the cloned layers.

use super::{
    add_channel_bias_, choose_algo, conv2d_bias_grad, conv2d_input_grad_with,
    conv2d_weight_bias_grad_with, conv2d_weight_grad_with, conv2d_with, conv_dims, tune, ConvAlgo,
    WeightGradAlgo,
};
use crate::autograd::{Tape, Var};
use crate::gpu::Op;
use crate::Result;

/// Taped `conv2d(x, w) + b`, each pass by the algorithm the tuner picks for its shape.
pub fn conv2d_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    let (xv, wv) = (tape.value(x), tape.value(w));
    let d = conv_dims(xv, wv, b.map(|v| tape.value(v)), pad)?;
    let algos = (
        choose_algo(xv, d, Op::ConvFwd)?,
        choose_algo(xv, d, Op::ConvInputGrad)?,
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
            let dx = if need[0] {
                Some(conv2d_input_grad_with(dx_algo, g, &wv, d)?)
            } else {
                None
            };
            let need_db = need.get(2).copied().unwrap_or(false);
            let (dw, db) = match (need[1], need_db) {
                (true, true) => {
                    let (dw, db) = conv2d_weight_bias_grad_with(wgrad, &xv, g, d)?;
                    (Some(dw), Some(db))
                }
                (true, false) => (Some(conv2d_weight_grad_with(wgrad, &xv, g, d)?), None),
                (false, true) => (None, Some(conv2d_bias_grad(g)?)),
                (false, false) => (None, None),
            };
            let mut v = vec![dx, dw];
            if need.len() > 2 {
                v.push(db);
            }
            Ok(v)
        }),
    ))
}

/// `y[b, c, …] = x[b, c, …] + bias[c]` for x of shape (B, C, …), taped; the bias gradient sums
/// over the batch and the trailing axes.
pub fn channel_bias_t(tape: &mut Tape, x: Var, bias: Var) -> Result<Var> {
    let out = tape.value(x).deep_clone()?;
    add_channel_bias_(&out, tape.value(bias))?;
    Ok(tape.push(
        out,
        &[x, bias],
        Box::new(move |g, need| {
            let db = if need[1] {
                Some(conv2d_bias_grad(g)?)
            } else {
                None
            };
            Ok(vec![Some(g.clone()), db])
        }),
    ))
}
