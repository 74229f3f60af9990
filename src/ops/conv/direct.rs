//! The direct kernels of `conv.wgsl` (the workgroup family): `conv_fwd`, a register tile of
//! [`TILE_OUT`] output channels × 4 columns per invocation with the filter size specialised so its
//! loops unroll (forward, and the input gradient after `flip_transpose`); `conv_dw`, which keeps
//! k columns × 4 output channels of the weight gradient in registers and slides along the rows.

use super::{conv_flops, finish, params, ConvDims, TILE_OUT, WG};
use crate::gpu::LOOP_BUDGET;
use crate::ops::CONV;
use crate::tensor::Tensor;
use crate::Result;

/// The direct kernel with a signed padding and a given output size.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_direct(
    x: &Tensor,
    w: &Tensor,
    (bias, relu): (Option<&Tensor>, bool),
    (batch, cin, h, wd): (usize, usize, usize, usize),
    (cout, k): (usize, usize),
    pad: i64,
    (ho, wo): (usize, usize),
) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, &[batch, cout, ho, wo])?;
    let nxb = wo.div_ceil(4);
    let nob = cout.div_ceil(TILE_OUT as usize);
    let total = batch * nob * ho * nxb;
    if total == 0 {
        return Ok(out);
    }
    if cin == 0 {
        // An empty sum: the bias alone (or zeros).
        out.fill_(0.0)?;
        return finish(out, bias, relu);
    }
    gpu.count_flops(conv_flops(batch * cout * cin * ho * wo, k));
    let p = params(
        batch,
        cin,
        h,
        wd,
        cout,
        ho,
        wo,
        pad,
        u32::from(bias.is_some()) | u32::from(relu) << 2,
        nxb,
        nob,
        total,
    )?;
    gpu.launch(&CONV, "conv_fwd")
        .constant("K", k as u32)
        .constant("TO", TILE_OUT)
        .params(&p)
        .read(&x)
        .read(&w)
        .read(bias.unwrap_or(w))
        .write(&out)
        .dispatch_1d(total, WG)?;
    Ok(out)
}

/// The filter flipped in both spatial axes with its channel axes swapped: (Cin, Cout, k, k), the
/// filter of the input gradient as a forward convolution.
pub(super) fn flip_transpose(w: &Tensor, d: ConvDims) -> Result<Tensor> {
    let gpu = w.gpu();
    let kk = d.k * d.k;
    let wt = Tensor::empty(gpu, &[d.cin, d.cout, d.k, d.k])?;
    let n = d.cout * d.cin * kk;
    if n > 0 {
        let p = params(0, d.cin, 0, 0, d.cout, 0, 0, 0, 0, 0, 0, n)?;
        gpu.launch(&CONV, "flip_transpose")
            .constant("K", d.k as u32)
            .params(&p)
            .read(&w)
            .write(&wt)
            .dispatch_1d(n, WG)?;
    }
    Ok(wt)
}

/// The output rows (b·ho + y) each `conv_dw` dispatch covers: its invocations run about
/// `rows · (wo + 1)` loop iterations (the filter's loops unroll), held to [`LOOP_BUDGET`]
/// (lavapipe's loop limiter).
fn dw_rows_per_dispatch(d: ConvDims) -> usize {
    (LOOP_BUDGET / (d.wo() + 1)).max(1)
}

/// The weight gradient by `conv_dw` into `dw` (Cout, Cin, k, k): one dispatch per
/// [`dw_rows_per_dispatch`] output rows, the first writing dw and the others adding to it.
pub(super) fn weight_grad(x: &Tensor, g: &Tensor, d: ConvDims, dw: &Tensor) -> Result<()> {
    let gpu = x.gpu();
    let total = d.cout.div_ceil(4) * d.cin * d.k;
    let rows = d.batch * d.ho();
    gpu.count_flops(conv_flops(d.batch * d.cout * d.cin * d.ho() * d.wo(), d.k));
    let step = dw_rows_per_dispatch(d);
    let mut r0 = 0;
    loop {
        let r1 = (r0 + step).min(rows);
        let p = params(
            d.batch,
            d.cin,
            d.h,
            d.w,
            d.cout,
            d.ho(),
            d.wo(),
            d.pad as i64,
            u32::from(r0 > 0),
            r0,
            r1,
            total,
        )?;
        gpu.launch(&CONV, "conv_dw")
            .constant("K", d.k as u32)
            .params(&p)
            .read(&x)
            .read(&g)
            .write(dw)
            .dispatch_1d(total, WG)?;
        r0 = r1;
        if r0 >= rows {
            return Ok(());
        }
    }
}
