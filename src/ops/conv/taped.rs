//! The taped convolution: the forward by a chosen algorithm, and a backward rule that computes
//! the input, weight and bias gradients the tape asks for ([`conv2d_grads_with`]: all three from
//! one kernel for a layer with one input channel, the weight and bias gradients together where
//! both are needed); the taped channel bias of the cloned layers.

use super::{
    add_channel_bias_ex_, check_filter, check_weight_grad, choose_algo, conv2d_bias_grad,
    conv2d_input_grad_with, conv2d_relu_with, conv2d_weight_bias_grad_with,
    conv2d_weight_grad_with, conv_dims, reg, sum_splits, tune, ConvAlgo, ConvDims, WeightGradAlgo,
};
use crate::autograd::{Tape, Var};
use crate::ops::{elementwise, reduce};
use crate::tensor::Tensor;
use crate::Result;

/// Taped `conv2d(x, w) + b`, each pass by the algorithm the tuner picks for its shape.
pub fn conv2d_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    conv2d_relu_t(tape, x, w, b, pad, false)
}

/// [`conv2d_t`], then ReLU when `relu`, applied by the convolution's own launch; the backward
/// masks the gradient with the output first.
pub fn conv2d_relu_t(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    pad: usize,
    relu: bool,
) -> Result<Var> {
    let (xv, wv) = (tape.value(x), tape.value(w));
    let d = conv_dims(xv, wv, b.map(|v| tape.value(v)), pad)?;
    let algos = tuned_algos(xv, d)?;
    conv_taped(tape, x, w, b, (pad, relu), algos)
}

/// The algorithms the tuner picks for a taped convolution of `x` with dims `d`: (forward, input
/// gradient, weight gradient).
fn tuned_algos(x: &Tensor, d: ConvDims) -> Result<(ConvAlgo, ConvAlgo, WeightGradAlgo)> {
    Ok((
        choose_algo(x, d, tune::FWD)?,
        choose_algo(x, d, tune::INPUT_GRAD)?,
        tune::choose_dw(x.gpu(), d)?.algo,
    ))
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
    conv_taped(tape, x, w, b, (pad, false), (algo, algo, wgrad))
}

/// The taped convolution with (forward, input-gradient, weight-gradient) algorithms.
fn conv_taped(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    (pad, relu): (usize, bool),
    (algo, dx_algo, wgrad): (ConvAlgo, ConvAlgo, WeightGradAlgo),
) -> Result<Var> {
    let xv = tape.value(x).clone();
    let wv = tape.value(w).clone();
    let bv = b.map(|v| tape.value(v).clone());
    let d = conv_dims(&xv, &wv, bv.as_ref(), pad)?;
    let out = conv2d_relu_with(algo, &xv, &wv, bv.as_ref(), pad, relu)?;
    let y = out.clone();
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Ok(tape.push(
        out,
        &inputs,
        Box::new(move |g, need| {
            let with_bias = need.len() > 2;
            let need = [need[0], need[1], with_bias && need[2]];
            let g = &relu_mask(g, &y, relu)?;
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

/// [`conv2d_grads`] by given algorithms (input gradient, weight gradient): the partial sums of
/// [`conv2d_grad_parts_with`], summed.
pub fn conv2d_grads_with(
    algos: (ConvAlgo, WeightGradAlgo),
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    d: ConvDims,
    need: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let (dx, dw, db) = conv2d_grad_parts_with(algos, x, w, g, d, need)?;
    if let (Some(pw), Some(pb)) = (&dw, &db) {
        if pw.shape()[0] > 1 && pw.shape()[0] == pb.shape()[0] {
            // Both over the same splits: one launch.
            let (dw, db) = reduce::sum_splits_pair(pw, pb)?;
            return Ok([dx, Some(dw), Some(db)]);
        }
    }
    Ok([
        dx,
        dw.map(sum_splits).transpose()?,
        db.map(sum_splits).transpose()?,
    ])
}

/// The gradients of `conv2d(x, w) + b` that `need` asks for (input, weight, bias), the weight's and
/// the bias's as partial sums over a leading axis of splits of the batch, (splits, Cout, Cin, k, k)
/// and (splits, Cout), to be summed ([`sum_splits`], or a transform's adjoint that sums them as it
/// reads them); one split where the algorithm sums them itself. With the register kernels for both,
/// a layer that [`reg::fused_backward_fits`] (one input channel) and whose input and weight
/// gradients are both needed gets all three from one kernel (`conv_bwd_reg`, one read of `g`);
/// otherwise the weight and bias gradients come together where both are needed.
pub fn conv2d_grad_parts_with(
    (dx_algo, wgrad): (ConvAlgo, WeightGradAlgo),
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    d: ConvDims,
    need: [bool; 3],
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let [need_dx, need_dw, need_db] = need;
    let reg = (dx_algo, wgrad) == (ConvAlgo::Reg, WeightGradAlgo::Reg);
    if need_dx && need_dw && reg && reg::fused_backward_fits(d) {
        check_weight_grad(x, g, d)?;
        check_filter("conv2d_input_grad", w, d)?;
        let (dx, part, bpart) = reg::backward_reg(x, w, g, d)?;
        return Ok((Some(dx), Some(part), need_db.then_some(bpart)));
    }
    let dx = if need_dx {
        Some(conv2d_input_grad_with(dx_algo, g, w, d)?)
    } else {
        None
    };
    // One split: the gradient with a leading axis of 1.
    let one = |t: Tensor| {
        let shape: Vec<usize> = std::iter::once(1)
            .chain(t.shape().iter().copied())
            .collect();
        t.reshape(&shape)
    };
    let partials_fit =
        wgrad == WeightGradAlgo::Reg && d.cout * d.cin > 0 && d.batch * d.ho() * d.wo() > 0;
    let (dw, db) = match (need_dw, need_db) {
        (true, _) if partials_fit => {
            check_weight_grad(x, g, d)?;
            let (part, bpart) = reg::weight_bias_partials_reg(x, g, d)?;
            (Some(part), need_db.then_some(bpart))
        }
        (true, true) => {
            let (dw, db) = conv2d_weight_bias_grad_with(wgrad, x, g, d)?;
            (Some(one(dw)?), Some(one(db)?))
        }
        (true, false) => (Some(one(conv2d_weight_grad_with(wgrad, x, g, d)?)?), None),
        (false, true) => (None, Some(one(conv2d_bias_grad(g)?)?)),
        (false, false) => (None, None),
    };
    Ok((dx, dw, db))
}

/// The backward of a filter and bias transform: from the partial sums (splits, …) of the made
/// filters' and bias's gradients, as [`conv2d_grad_parts_with`] gives them, to the gradients of the
/// parameters they were made from (each where given).
pub type TransformAdjoint =
    Box<dyn Fn(Option<&Tensor>, Option<&Tensor>) -> Result<(Option<Tensor>, Option<Tensor>)>>;

/// Taped `conv2d(x, tw) + tb` where the filters `tw` and bias `tb` were made from the tape's `w`
/// and `b` by a transform (the group convolutions): one tape node over x, w and b, whose backward
/// hands the weight and bias gradients' partial sums to `adjoint` unsummed, so the transform's
/// adjoint sums them as it reads them. Each pass by the algorithm the tuner picks for its shape, as
/// [`conv2d_t`].
pub fn conv2d_transformed_t(
    tape: &mut Tape,
    x: Var,
    (w, b): (Var, Option<Var>),
    (tw, tb): (Tensor, Option<Tensor>),
    (pad, relu): (usize, bool),
    adjoint: TransformAdjoint,
) -> Result<Var> {
    let xv = tape.value(x).clone();
    let d = conv_dims(&xv, &tw, tb.as_ref(), pad)?;
    let (algo, dx_algo, wgrad) = tuned_algos(&xv, d)?;
    let algos = (dx_algo, wgrad);
    let out = conv2d_relu_with(algo, &xv, &tw, tb.as_ref(), pad, relu)?;
    let y = out.clone();
    let mut inputs = vec![x, w];
    inputs.extend(b);
    let with_bias = tb.is_some() && b.is_some();
    Ok(tape.push(
        out,
        &inputs,
        Box::new(move |g, need| {
            let need_db = with_bias && need.get(2) == Some(&true);
            let g = &relu_mask(g, &y, relu)?;
            let (dx, pw, pb) =
                conv2d_grad_parts_with(algos, &xv, &tw, g, d, [need[0], need[1], need_db])?;
            let (dw, db) = adjoint(pw.as_ref(), pb.as_ref())?;
            let mut v = vec![dx, dw];
            if need.len() > 2 {
                v.push(db);
            }
            Ok(v)
        }),
    ))
}

/// The gradient through a ReLU whose output is `y` (when `relu`; `g` itself otherwise).
fn relu_mask(g: &Tensor, y: &Tensor, relu: bool) -> Result<Tensor> {
    if relu {
        elementwise::relu_bwd(g, y)
    } else {
        Ok(g.clone())
    }
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
            let g = relu_mask(g, &y, relu)?;
            let db = if need[1] {
                Some(conv2d_bias_grad(&g)?)
            } else {
                None
            };
            Ok(vec![Some(g), db])
        }),
    ))
}
