//! Cloned-operator ops (SPEC §2): the coefficient map's outer product with M1, per-channel bias,
//! axis swaps and repeats on the tape, and Gaussian noise generated on the GPU.

use super::{conv, expect_f32, reduce, CLONED, LAYOUT};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

fn p4(a: usize, b: usize, c: usize) -> [u32; 4] {
    [a as u32, b as u32, c as u32, 0]
}

/// `Hq[r, j·m + q] = c[r, j] · M1[j, q]` for codes c (rows, k²) and M1 (k², m).
pub fn mix(c: &Tensor, m1: &Tensor) -> Result<Tensor> {
    expect_f32("mix", c)?;
    expect_f32("mix", m1)?;
    if c.rank() != 2 || m1.rank() != 2 || c.shape()[1] != m1.shape()[0] {
        return Err(Error::shape(
            "mix",
            format!("codes {:?} with M1 {:?}", c.shape(), m1.shape()),
        ));
    }
    let (rows, k2, m) = (c.shape()[0], c.shape()[1], m1.shape()[1]);
    let out = Tensor::empty(c.gpu(), &[rows, k2 * m])?;
    c.gpu()
        .launch(&CLONED, "mix")
        .params(&p4(rows, k2, m))
        .read(c.raw())
        .read(m1.raw())
        .write(out.raw())
        .dispatch_1d(rows * k2 * m, 256)?;
    Ok(out)
}

/// The gradients of `mix` w.r.t. the codes and M1.
pub fn mix_backward(
    g: &Tensor,
    c: &Tensor,
    m1: &Tensor,
    need_c: bool,
    need_m1: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (rows, k2, m) = (c.shape()[0], c.shape()[1], m1.shape()[1]);
    let gpu = c.gpu();
    let dc = if need_c {
        let out = Tensor::empty(gpu, &[rows, k2])?;
        gpu.launch(&CLONED, "mix_bwd_c")
            .params(&p4(rows, k2, m))
            .read(g.raw())
            .read(m1.raw())
            .write(out.raw())
            .dispatch_1d(rows * k2, 256)?;
        Some(out)
    } else {
        None
    };
    let dm1 = if need_m1 {
        let out = Tensor::empty(gpu, &[k2, m])?;
        gpu.launch(&CLONED, "mix_bwd_m1")
            .params(&p4(rows, k2, m))
            .read(g.raw())
            .read(c.raw())
            .write(out.raw())
            .dispatch_1d(k2 * m, 256)?;
        Some(out)
    } else {
        None
    };
    Ok((dc, dm1))
}

/// Taped `mix`.
pub fn mix_t(tape: &mut Tape, c: Var, m1: Var) -> Result<Var> {
    let (cv, mv) = (tape.value(c).clone(), tape.value(m1).clone());
    let out = mix(&cv, &mv)?;
    Ok(tape.push(
        out,
        &[c, m1],
        Box::new(move |g, need| {
            let (dc, dm) = mix_backward(g, &cv, &mv, need[0], need[1])?;
            Ok(vec![dc, dm])
        }),
    ))
}

/// `y[b, c, …] = x[b, c, …] + bias[c]` for x of shape (B, C, …), taped; the bias gradient sums
/// over the batch and the trailing axes.
pub fn channel_bias_t(tape: &mut Tape, x: Var, bias: Var) -> Result<Var> {
    let out = tape.value(x).deep_clone()?;
    conv::add_channel_bias_(&out, tape.value(bias))?;
    Ok(tape.push(
        out,
        &[x, bias],
        Box::new(move |g, need| {
            let db = if need[1] {
                Some(conv::conv2d_bias_grad(g)?)
            } else {
                None
            };
            Ok(vec![Some(g.clone()), db])
        }),
    ))
}

/// Swap the two middle axes of a tensor viewed as (a, b, c, d): result (a, c, b, d).
pub fn swap12(x: &Tensor, dims: [usize; 4]) -> Result<Tensor> {
    expect_f32("swap12", x)?;
    let [a, b, c, d] = dims;
    if a * b * c * d != x.numel() {
        return Err(Error::shape(
            "swap12",
            format!("{:?} is not {dims:?}", x.shape()),
        ));
    }
    let out = Tensor::empty(x.gpu(), &[a, c, b, d])?;
    x.gpu()
        .launch(&LAYOUT, "swap12")
        .params(&[b as u32, c as u32, d as u32, 0, a as u32, 0, 0, 0])
        .read(x.raw())
        .write(out.raw())
        .dispatch_1d(x.numel(), 256)?;
    Ok(out)
}

/// Taped `swap12`.
pub fn swap12_t(tape: &mut Tape, x: Var, dims: [usize; 4]) -> Result<Var> {
    let xs = tape.value(x).shape().to_vec();
    let out = swap12(tape.value(x), dims)?;
    let [a, b, c, d] = dims;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(swap12(g, [a, c, b, d])?.reshape(&xs)?)])),
    ))
}

/// Taped repetition along a new axis: `broadcast_axis` forward, `sum_axis` backward.
pub fn repeat_t(tape: &mut Tape, x: Var, axis: usize, n: usize) -> Result<Var> {
    let out = reduce::broadcast_axis(tape.value(x), axis, n, 1.0)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(reduce::sum_axis(g, axis)?)])),
    ))
}

/// A tensor of independent standard normal draws from a counter-based generator: the same
/// (seed, shape) gives the same values on any adapter with IEEE-conforming `log`, `sin`, `cos`.
pub fn randn(gpu: &std::sync::Arc<crate::Gpu>, shape: &[usize], seed: u64) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape)?;
    let n = out.numel();
    gpu.launch(&CLONED, "randn")
        .params(&[n as u32, seed as u32, (seed >> 32) as u32, 0])
        .write(out.raw())
        .dispatch_1d(n, 256)?;
    Ok(out)
}
