//! The generated register-tiled kernels (their WGSL written by `codegen.rs`, their shaders keyed
//! by [`ConvGen`]): what CPU adapters such as lavapipe run.

use super::codegen::{
    conv_bwd_rows_source, conv_dw_reg_source, conv_reg_source, scalar_tile, CONV_BWD_ROWS,
    CONV_REG_ROWS, CONV_REG_WG,
};
use super::{conv_flops, params, shader_params, u32_of, ConvDims, CONV, WG};
use crate::gpu::shader::{Generate, Generated, Shader};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// A generated convolution kernel and its tile: the key of its shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvGen {
    /// `conv_reg`: a k×k convolution, `to` output channels × `tx` columns per invocation.
    Reg { k: u32, to: u32, tx: u32 },
    /// `conv_dw_reg`: the weight gradient, `to` output × `ti` input channels per invocation.
    DwReg { k: u32, to: u32, ti: u32 },
    /// `conv_bwd_reg`: the input, weight and bias gradients of a layer with one input channel
    /// and forward padding `pad`, `tx` columns per invocation.
    BwdReg { k: u32, tx: u32, pad: u32 },
}

impl Generate for ConvGen {
    /// `conv_reg_3_16x28`, `conv_dw_reg_3_16x2`, `conv_bwd_reg_3_1x28_p1`.
    fn name(self) -> String {
        match self {
            ConvGen::Reg { k, to, tx } => format!("conv_reg_{k}_{to}x{tx}"),
            ConvGen::DwReg { k, to, ti } => format!("conv_dw_reg_{k}_{to}x{ti}"),
            ConvGen::BwdReg { k, tx, pad } => format!("conv_bwd_reg_{k}_1x{tx}_p{pad}"),
        }
    }

    fn source(self) -> Result<String> {
        Ok(match self {
            ConvGen::Reg { k, to, tx } => conv_reg_source(k, to, tx),
            ConvGen::DwReg { k, to, ti } => conv_dw_reg_source(k, to, ti),
            ConvGen::BwdReg { k, tx, pad } => conv_bwd_rows_source(k, tx, pad),
        })
    }
}

static SHADERS: Generated<ConvGen> = Generated::new();

impl ConvGen {
    /// The shader of this kernel, built on first use.
    pub fn shader(self) -> Result<&'static Shader> {
        SHADERS.shader(self)
    }
}

/// Most output channels one invocation of `conv_reg` / `conv_dw_reg` computes.
pub const REG_MAX_TO: usize = 16;
/// Most output columns one invocation of `conv_reg` computes.
pub const REG_MAX_TX: usize = 28;
/// Most vec4 accumulators of one `conv_dw_reg` invocation (input channels × k² × channels / 4).
const REG_DW_ACC: usize = 288;
/// Most partial weight gradients (batch splits) `conv_dw_reg` sums.
const REG_DW_SPLITS: usize = 64;

/// The channel tile (a multiple of 4, at most [`REG_MAX_TO`]) and the number of tiles for `c`
/// channels, balanced so the last tile is not mostly padding.
fn channel_tile(c: usize) -> (usize, usize) {
    let c4 = c.max(1).div_ceil(4);
    let n = c4.div_ceil(REG_MAX_TO / 4);
    (4 * c4.div_ceil(n), n)
}

/// The channel tile of `conv_reg` for `c` output channels: one tile of `c` scalar channels when
/// c < 4 (`codegen::conv_reg_rows_source`: a vec4 tile would compute 4 − c padding channels in
/// every lane), else [`channel_tile`].
fn out_channel_tile(c: usize) -> (usize, usize) {
    if scalar_tile(u32::try_from(c).unwrap_or(u32::MAX)) {
        (c.max(1), 1)
    } else {
        channel_tile(c)
    }
}

/// The column tile (at most [`REG_MAX_TX`]) and the number of tiles for `wo` columns.
fn column_tile(wo: usize) -> (usize, usize) {
    let n = wo.max(1).div_ceil(REG_MAX_TX);
    (wo.max(1).div_ceil(n), n)
}

/// Every generated kernel the launchers here can produce for a k×k filter: `conv_reg` for each
/// channel tile × column tile, `conv_dw_reg` for each channel tile × input-channel tile (the tile
/// functions below, over enough channel counts and widths to reach each value they return), and,
/// for k ≤ [`FUSED_MAX_K`], `conv_bwd_reg` for each padding with 2·pad < k × column tile.
pub fn variants(k: u32) -> Vec<ConvGen> {
    let mut v = Vec::new();
    let kk = (k * k) as usize;
    for c in 1..=4 * REG_MAX_TO {
        let (to, _) = out_channel_tile(c);
        for wo in 1..=2 * REG_MAX_TX {
            let (tx, _) = column_tile(wo);
            v.push(ConvGen::Reg {
                k,
                to: to as u32,
                tx: tx as u32,
            });
        }
        let (to, _) = channel_tile(c);
        for cin in 1..=8 {
            let ti = dw_input_tile(kk, to, cin);
            v.push(ConvGen::DwReg {
                k,
                to: to as u32,
                ti: ti as u32,
            });
        }
    }
    // The fused backward of layers with one input channel, for every padding it takes.
    if k <= FUSED_MAX_K {
        for pad in 0..k.div_ceil(2) {
            for tx in FUSED_TX {
                v.push(ConvGen::BwdReg { k, tx, pad });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|g| seen.insert(*g));
    v
}

/// Input channels per `conv_dw_reg` invocation: as many as keep its accumulators within
/// [`REG_DW_ACC`] vec4s, at most 8 and at most `cin`.
fn dw_input_tile(kk: usize, to: usize, cin: usize) -> usize {
    (REG_DW_ACC / (kk * to / 4)).clamp(1, 8).min(cin.max(1))
}

/// Workgroups for `n` invocations of a generated kernel over `ny` channel blocks: (x, ny, z) with
/// x·z ≥ n / 8 and x within the per-dimension limit.
fn reg_grid(gpu: &crate::Gpu, n: usize, ny: usize) -> Result<[u32; 3]> {
    let groups = n.div_ceil(CONV_REG_WG as usize) as u64;
    let max = gpu.limits.max_compute_workgroups_per_dimension as u64;
    let x = groups.min(max.min(32768));
    let z = groups.div_ceil(x.max(1));
    if z > max || ny as u64 > max {
        return Err(Error::invalid(format!(
            "convolution too large: {groups} × {ny} workgroups"
        )));
    }
    Ok([x as u32, ny as u32, z as u32])
}

/// The uniform block of the generated kernels (`struct G`): sizes, then nxb (column blocks, or
/// input-channel blocks for the weight gradient), co4 (packed filter row: vec4s, floats for a
/// scalar tile), the invocation count and aux (bias flag, or images per split).
#[allow(clippy::too_many_arguments)]
fn gparams(
    (batch, cin, h, w): (usize, usize, usize, usize),
    cout: usize,
    (ho, wo): (usize, usize),
    pad: i64,
    nxb: usize,
    co4: usize,
    total: usize,
    aux: usize,
) -> Result<GenConvP> {
    let p = params(batch, cin, h, w, cout, ho, wo, pad, 0, 0, 0, total)?;
    Ok(GenConvP {
        batch: p.batch,
        cin: p.cin,
        h: p.h,
        w: p.w,
        cout: p.cout,
        ho: p.ho,
        wo: p.wo,
        pad: p.pad,
        nxb: u32_of("column blocks", nxb)?,
        co4: u32_of("channel vec4s", co4)?,
        total: p.total,
        aux: u32_of("aux", aux)?,
    })
}

shader_params!(
    /// The uniform block `G` of the generated `conv_reg` and `conv_dw_reg` kernels.
    GenConvP = "G" in ConvGen::Reg { k: 3, to: 4, tx: 1 }.source(), {
        batch: u32,
        cin: u32,
        h: u32,
        w: u32,
        cout: u32,
        ho: u32,
        wo: u32,
        pad: i32,
        nxb: u32,
        co4: u32,
        total: u32,
        aux: u32,
    }
);

/// The forward-form convolution by the generated kernel: `x` (B, cin, h, w) with the filter `w`
/// (cout, cin, k, k), or, when `flip`, the flipped transpose of `w` (cin, cout, k, k) (the input
/// gradient), signed padding, given output size.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_reg(
    x: &Tensor,
    w: &Tensor,
    flip: bool,
    (bias, relu): (Option<&Tensor>, bool),
    (batch, cin, h, wd): (usize, usize, usize, usize),
    (cout, k): (usize, usize),
    pad: i64,
    (ho, wo): (usize, usize),
) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, &[batch, cout, ho, wo])?;
    let (to, nob) = out_channel_tile(cout);
    let (tx, nxb) = column_tile(wo);
    // A scalar tile's invocation covers CONV_REG_ROWS output rows, a vec4 tile's one.
    let scalar = scalar_tile(to as u32);
    let row_blocks = if scalar {
        ho.div_ceil(CONV_REG_ROWS as usize)
    } else {
        ho
    };
    let total = batch * row_blocks * nxb;
    if total == 0 || cout == 0 {
        return Ok(out);
    }
    let wide = to * nob;
    let wv = pack_filter(w, flip, (cin, cout, k), wide)?;
    let p = gparams(
        (batch, cin, h, wd),
        cout,
        (ho, wo),
        pad,
        nxb,
        // The packed filter row: vec4s, or floats for a scalar tile.
        if scalar { wide } else { wide / 4 },
        total,
        // Bit 0: the bias; bit 1: ReLU.
        usize::from(bias.is_some()) | usize::from(relu) << 1,
    )?;
    gpu.count_flops(conv_flops(batch * cout * cin * ho * wo, k));
    let sh = ConvGen::Reg {
        k: k as u32,
        to: to as u32,
        tx: tx as u32,
    }
    .shader()?;
    gpu.launch(sh, "conv_reg")
        .params(&p)
        .read(&x)
        .read(&wv)
        .read(bias.unwrap_or(&wv))
        .write(&out)
        .dispatch(reg_grid(gpu, total, nob)?)?;
    Ok(out)
}

/// The filter packed for the generated kernels (`wpack`): for each (input channel, tap) a row of
/// `wide` output channels (zero past `cout`); with `flip`, `w` is read as its flipped transpose
/// (the input gradient's filter).
fn pack_filter(
    w: &Tensor,
    flip: bool,
    (cin, cout, k): (usize, usize, usize),
    wide: usize,
) -> Result<Tensor> {
    let gpu = w.gpu();
    let wv = Tensor::empty(gpu, &[cin * k * k * wide])?;
    let n = wv.numel();
    if n > 0 {
        let p = params(
            0,
            cin,
            0,
            0,
            cout,
            0,
            0,
            0,
            u32::from(flip) << 1,
            0,
            wide,
            n,
        )?;
        gpu.launch(&CONV, "wpack")
            .constant("K", k as u32)
            .params(&p)
            .read(w)
            .write(&wv)
            .dispatch_1d(n, WG)?;
    }
    Ok(wv)
}

/// Largest filter [`backward_reg`] takes: its kernel holds k² gradient and input values per
/// output, so a 5×5 one would pass 10,000 lines (the models' filters are 3×3).
pub const FUSED_MAX_K: u32 = 3;

/// Column tiles of `conv_bwd_reg`: wider tiles write fewer partial sums and load less of the
/// gradient twice (at 28 columns the `conv2d 1→32` backward took 16 ms, at 14 18 ms, at 7 23 ms).
const FUSED_TX: [u32; 3] = [7, 14, 28];

/// The `conv_bwd_reg` column tile (the smallest of [`FUSED_TX`] that covers an equal share of the
/// columns, as few shares as the widest tile allows) and the number of tiles for `w` columns.
fn fused_column_tile(w: usize) -> (usize, usize) {
    let widest = FUSED_TX[FUSED_TX.len() - 1] as usize;
    let n = w.max(1).div_ceil(widest);
    let share = w.max(1).div_ceil(n);
    let tx = FUSED_TX
        .iter()
        .map(|&t| t as usize)
        .find(|&t| t >= share)
        .unwrap_or(widest);
    (tx, n)
}

/// Whether [`backward_reg`] computes the backward of a layer of dims `d`: one input channel (a
/// first layer on images: the input gradient has one channel, and the forward is so cheap that a
/// second read of the output gradient for the weight gradient would cost as much), k ≤
/// [`FUSED_MAX_K`], and 2·pad ≤ k − 1 (the gradient's positions fall into the input gradient's
/// tiles once each).
pub fn fused_backward_fits(d: ConvDims) -> bool {
    d.cin == 1
        && d.k as u32 <= FUSED_MAX_K
        && 2 * d.pad < d.k
        && d.cout > 0
        && d.batch * d.ho() * d.wo() > 0
}

/// The generated kernel `conv_bwd_reg`: the input gradient (B, Cin, H, W) of the layer `d` with
/// filter `w` and the partial sums of its weight gradient (tiles, Cout, Cin, k, k) and bias
/// gradient (tiles, Cout), from one read of the output gradient `g` (for [`fused_backward_fits`]
/// layers; the partials are summed by [`super::sum_splits`]).
pub(super) fn backward_reg(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    d: ConvDims,
) -> Result<(Tensor, Tensor, Tensor)> {
    if !fused_backward_fits(d) {
        return Err(Error::invalid(format!(
            "conv_bwd_reg takes one input channel, k ≤ {FUSED_MAX_K} and 2·pad < k, not {d:?}"
        )));
    }
    let gpu = x.gpu();
    let (tx, nxb) = fused_column_tile(d.w);
    let total = d.batch * d.h.div_ceil(CONV_BWD_ROWS as usize) * nxb;
    let dx = Tensor::empty(gpu, &[d.batch, d.cin, d.h, d.w])?;
    let part = Tensor::empty(gpu, &[total, d.cout, d.cin, d.k, d.k])?;
    let bpart = Tensor::empty(gpu, &[total, d.cout])?;
    let wv = pack_filter(w, true, (d.cout, d.cin, d.k), d.cin)?;
    // In the input gradient's terms: the gradient (B, Cout, Ho, Wo) in, (B, Cin, H, W) out.
    let p = gparams(
        (d.batch, d.cout, d.ho(), d.wo()),
        d.cin,
        (d.h, d.w),
        d.k as i64 - 1 - d.pad as i64,
        nxb,
        d.cin,
        total,
        0,
    )?;
    // Input and weight gradients: each the forward's multiply-adds.
    gpu.count_flops(2 * conv_flops(d.batch * d.cout * d.cin * d.ho() * d.wo(), d.k));
    let sh = ConvGen::BwdReg {
        k: d.k as u32,
        tx: tx as u32,
        pad: d.pad as u32,
    }
    .shader()?;
    gpu.launch(sh, "conv_bwd_reg")
        .params(&p)
        .read(g)
        .read(&wv)
        .read(x)
        .write(&dx)
        .write(&part)
        .write(&bpart)
        .dispatch(reg_grid(gpu, total, 1)?)?;
    Ok((dx, part, bpart))
}

/// The generated kernel `conv_dw_reg`'s partial sums over splits of the batch: the weight
/// gradient's (splits, Cout, Cin, k, k) and the bias gradient's (splits, Cout), each to be summed
/// over the splits by [`super::sum_splits`].
pub(super) fn weight_bias_partials_reg(
    x: &Tensor,
    g: &Tensor,
    d: ConvDims,
) -> Result<(Tensor, Tensor)> {
    let gpu = x.gpu();
    let kk = d.k * d.k;
    let (to, nob) = channel_tile(d.cout);
    let ti = dw_input_tile(kk, to, d.cin);
    let nib = d.cin.div_ceil(ti);
    let per = d.batch.div_ceil(d.batch.min(REG_DW_SPLITS));
    let splits = d.batch.div_ceil(per);
    let part = Tensor::empty(gpu, &[splits, d.cout, d.cin, d.k, d.k])?;
    let bpart = Tensor::empty(gpu, &[splits, d.cout])?;
    let total = splits * nib;
    let p = gparams(
        (d.batch, d.cin, d.h, d.w),
        d.cout,
        (d.ho(), d.wo()),
        d.pad as i64,
        nib,
        0,
        total,
        per,
    )?;
    let sh = ConvGen::DwReg {
        k: d.k as u32,
        to: to as u32,
        ti: ti as u32,
    }
    .shader()?;
    gpu.count_flops(conv_flops(d.batch * d.cout * d.cin * d.ho() * d.wo(), d.k));
    gpu.launch(sh, "conv_dw_reg")
        .params(&p)
        .read(&x)
        .read(&g)
        .write(&part)
        .write(&bpart)
        .dispatch(reg_grid(gpu, total, nob)?)?;
    Ok((part, bpart))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_cover_every_tile() {
        // (tests/shaders.rs validates and translates each.)
        for k in [1u32, 3, 5] {
            let v = variants(k);
            for to in [1u32, 2, 3, 4, 8, 12, 16] {
                for tx in 1..=REG_MAX_TX as u32 {
                    assert!(v.contains(&ConvGen::Reg { k, to, tx }), "{k} {to}x{tx}");
                }
                if scalar_tile(to) {
                    continue;
                }
                let most = dw_input_tile((k * k) as usize, to as usize, 8) as u32;
                for ti in 1..=most {
                    assert!(v.contains(&ConvGen::DwReg { k, to, ti }), "{k} {to}x{ti}");
                }
            }
        }
    }

    #[test]
    fn variants_cover_the_fused_backward() {
        for k in [1u32, 3] {
            let v = variants(k);
            for pad in 0..k.div_ceil(2) {
                for tx in FUSED_TX {
                    assert!(
                        v.contains(&ConvGen::BwdReg { k, tx, pad }),
                        "{k} {tx} {pad}"
                    );
                }
            }
        }
        assert!(!variants(5)
            .iter()
            .any(|g| matches!(g, ConvGen::BwdReg { .. })));
        for w in 1..200 {
            let (tx, n) = fused_column_tile(w);
            assert!(
                FUSED_TX.contains(&(tx as u32)) && tx * n >= w && tx * (n - 1) < w,
                "{w}"
            );
        }
        assert_eq!(fused_column_tile(28), (28, 1));
        assert_eq!(fused_column_tile(13), (14, 1));
        assert_eq!(fused_column_tile(2), (7, 1));
        assert_eq!(fused_column_tile(60), (28, 3));
    }

    #[test]
    fn tiles_cover_and_balance() {
        assert_eq!(channel_tile(32), (16, 2));
        assert_eq!(channel_tile(80), (16, 5));
        assert_eq!(channel_tile(1), (4, 1));
        assert_eq!(out_channel_tile(1), (1, 1));
        assert_eq!(out_channel_tile(3), (3, 1));
        assert_eq!(out_channel_tile(5), (8, 1));
        assert_eq!(column_tile(28), (28, 1));
        assert_eq!(column_tile(33), (17, 2));
        for c in 1..100 {
            let (t, n) = channel_tile(c);
            assert!(t * n >= c && t * (n - 1) < c && t % 4 == 0 && t <= REG_MAX_TO);
        }
    }
}
