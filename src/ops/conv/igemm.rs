//! Convolution as implicit matrix products (`shaders/conv_gemm.wgsl`), the shared-memory kernels
//! for GPUs: `igemm_fwd` (forward, and the input gradient over the flipped, transposed filter) and
//! `igemm_dw` (the weight gradient as a product over B·Ho·Wo, split into a fixed number of chunks
//! whose partial sums are added in a fixed order). No im2col buffer: each workgroup gathers its
//! tile of the im2col matrix from the input, zero padding computed on the fly.

use super::{conv_flops, params, shader_params, u32_of, ConvDims, Geometry};
use crate::ops::CONV_GEMM;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Invocation rows (along the output channels) of the workgroups the launchers use: 8 (a 32 × 64
/// tile of 128 invocations) for at most 32 output channels, 16 (64 × 64, 256) above.
pub const IGEMM_ROWS: &[u32] = &[8, 16];
/// Output columns of one workgroup tile (B·Ho·Wo for the forward, cin·k² for the weight gradient).
const TILE_N: usize = 64;
/// The reduction step (`BK` in the shader): chunks of the weight gradient are multiples of it.
const STEP: usize = 16;
/// Most chunks the weight gradient's reduction over B·Ho·Wo is split into.
pub const DW_MAX_CHUNKS: usize = 64;
/// Fewest reduction terms per chunk (so a chunk amortises its tile loads).
const DW_MIN_CHUNK: usize = 512;

shader_params!(
    /// The uniform block `IG` of `conv_gemm.wgsl`.
    IgemmP = "IG" in Ok(CONV_GEMM.src.to_string()), {
        batch: u32,
        cin: u32,
        h: u32,
        w: u32,
        cout: u32,
        ho: u32,
        wo: u32,
        pad: i32,
        flags: u32,
        ntiles: u32,
        chunk: u32,
        nred: u32,
    }
);

/// Invocation rows for `m` output rows: the smaller tile while it covers them.
fn rows_for(m: usize) -> u32 {
    if m <= 32 {
        8
    } else {
        16
    }
}

/// The chunking of a weight gradient's reduction over `n` terms: (chunk length, a multiple of the
/// reduction step, and the number of chunks, at most [`DW_MAX_CHUNKS`]). A function of `n` only,
/// so the same shapes always sum in the same order.
pub fn dw_chunks(n: usize) -> (usize, usize) {
    let want = n.div_ceil(DW_MIN_CHUNK).clamp(1, DW_MAX_CHUNKS);
    let len = n.div_ceil(want).div_ceil(STEP) * STEP;
    (len, n.div_ceil(len))
}

#[allow(clippy::too_many_arguments)]
fn igemm_params(
    (batch, cin, h, w): (usize, usize, usize, usize),
    cout: usize,
    (ho, wo): (usize, usize),
    pad: i64,
    flags: u32,
    ntiles: usize,
    chunk: usize,
    nred: usize,
) -> Result<IgemmP> {
    let total = batch * ho * wo;
    let p = params(batch, cin, h, w, cout, ho, wo, pad, flags, 0, 0, total)?;
    Ok(IgemmP {
        batch: p.batch,
        cin: p.cin,
        h: p.h,
        w: p.w,
        cout: p.cout,
        ho: p.ho,
        wo: p.wo,
        pad: p.pad,
        flags,
        ntiles: u32_of("column tiles", ntiles)?,
        chunk: u32_of("reduction chunk", chunk)?,
        nred: u32_of("reduction length", nred)?,
    })
}

/// Workgroups (x, y, z) for `tiles` column tiles (folded into x · z past the per-dimension limit)
/// and `rows` row tiles.
fn grid(gpu: &crate::Gpu, tiles: usize, rows: usize) -> Result<[u32; 3]> {
    let max = gpu.limits.max_compute_workgroups_per_dimension as usize;
    let x = tiles.min(max.min(32768)).max(1);
    let z = tiles.div_ceil(x);
    if z > max || rows > max {
        return Err(Error::invalid(format!(
            "convolution too large: {tiles} × {rows} tiles of the implicit matrix product, over \
             the device's {max} workgroups per dimension"
        )));
    }
    Ok([x as u32, rows as u32, z as u32])
}

/// The forward-form convolution by `igemm_fwd`: `x` (B, cin, h, w) with the filter `w`
/// (cout, cin, k, k), signed padding, given output size, plus the bias, then ReLU when `relu`.
pub(super) fn conv_igemm(
    x: &Tensor,
    w: &Tensor,
    (bias, relu): (Option<&Tensor>, bool),
    geo: Geometry,
) -> Result<Tensor> {
    let ((batch, cin, h, wd), (cout, k), pad, (ho, wo)) = geo;
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, &[batch, cout, ho, wo])?;
    let n = batch * ho * wo;
    if n == 0 || cout == 0 {
        return Ok(out);
    }
    let wgy = rows_for(cout);
    let tiles = n.div_ceil(TILE_N);
    let rows = cout.div_ceil(4 * wgy as usize);
    let p = igemm_params(
        (batch, cin, h, wd),
        cout,
        (ho, wo),
        pad,
        u32::from(bias.is_some()) | u32::from(relu) << 2,
        tiles,
        0,
        cin * k * k,
    )?;
    gpu.count_flops(conv_flops(batch * cout * cin * ho * wo, k));
    gpu.launch(&CONV_GEMM, "igemm_fwd")
        .constant("K", k as u32)
        .constant("WGY", wgy)
        .params(&p)
        .read(&x)
        .read(&w)
        .read(bias.unwrap_or(w))
        .write(&out)
        .dispatch(grid(gpu, tiles, rows)?)?;
    Ok(out)
}

/// The weight gradient by `igemm_dw`: one partial product per chunk of B·Ho·Wo ([`dw_chunks`]),
/// then one fixed-order sum over the chunks. `d` has B·Ho·Wo > 0 and a non-empty filter.
pub(super) fn weight_grad_igemm(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<Tensor> {
    let gpu = x.gpu();
    let kr = d.cin * d.k * d.k;
    let nred = d.batch * d.ho() * d.wo();
    let (len, chunks) = dw_chunks(nred);
    let wgy = rows_for(d.cout);
    let (tiles, rows) = (kr.div_ceil(TILE_N), d.cout.div_ceil(4 * wgy as usize));
    let max = gpu.limits.max_compute_workgroups_per_dimension as usize;
    if tiles > max || rows > max {
        return Err(Error::invalid(format!(
            "weight gradient too large: {tiles} × {rows} tiles, over the device's {max} \
             workgroups per dimension"
        )));
    }
    let part = Tensor::empty(gpu, &[chunks, d.cout, d.cin, d.k, d.k])?;
    let p = igemm_params(
        (d.batch, d.cin, d.h, d.w),
        d.cout,
        (d.ho(), d.wo()),
        d.pad as i64,
        0,
        tiles,
        len,
        nred,
    )?;
    gpu.count_flops(conv_flops(d.batch * d.cout * d.cin * d.ho() * d.wo(), d.k));
    gpu.launch(&CONV_GEMM, "igemm_dw")
        .constant("K", d.k as u32)
        .constant("WGY", wgy)
        .params(&p)
        .read(&x)
        .read(&g)
        .write(&part)
        .dispatch([tiles as u32, rows as u32, chunks as u32])?;
    super::sum_splits(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_reduction_in_steps() {
        assert_eq!(dw_chunks(1), (16, 1));
        assert_eq!(dw_chunks(64 * 28 * 28), (784, 64));
        for n in (1..5000).step_by(37).chain([50_176, 1 << 20]) {
            let (len, c) = dw_chunks(n);
            assert!(len % STEP == 0 && c <= DW_MAX_CHUNKS, "{n}: {len} × {c}");
            assert!(len * c >= n && len * (c - 1) < n, "{n}: {len} × {c}");
        }
    }
}
