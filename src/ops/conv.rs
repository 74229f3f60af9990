//! 2-D convolution (cross-correlation as in PyTorch `conv2d`), stride 1, zero padding, bias:
//! forward, input gradient, weight gradient, bias gradient.
//!
//! Shapes: x (B, Cin, H, W), w (Cout, Cin, k, k), bias (Cout) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
//!
//! Kernels (`shaders/conv.wgsl`): `conv_fwd` is a direct convolution with a register tile of
//! [`TILE_OUT`] output channels × 4 columns per invocation, the filter size specialised so its loops
//! unroll; `im2col` + the matrix-product kernel is the other algorithm. [`choose_algo`] picks
//! im2col on CPU adapters (lavapipe: 1.8 vs 1.1 GFLOP/s at 32→32, 28×28, see BENCHMARKS.md) and the
//! direct kernel elsewhere (no im2col buffer). The input gradient is the same convolution of the
//! output gradient with the flipped, transposed filter (`flip_transpose`) and padding k − 1 − p
//! (negative padding crops). `conv_dw` keeps k columns × 4 output channels of the weight gradient
//! in registers and slides along the rows. The bias gradient is two fixed-order sums.

use super::{expect_f32, matmul, reduce, CONV};
use crate::gpu::KernelFamily;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Output channels one invocation of `conv_fwd` computes (a specialised shader constant).
pub const TILE_OUT: u32 = 4;
/// Filter sizes the shader test validates (any k ≥ 1 works: the pipeline is specialised on demand).
pub const KERNEL_SIZES: &[u32] = &[1, 3, 5, 7];
const WG: u32 = 64;

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub pad: usize,
}

impl ConvDims {
    /// Output height.
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    /// Output width.
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// Output shape (B, Cout, Ho, Wo).
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cout, self.ho(), self.wo()]
    }
    /// Multiply-adds of the forward pass, times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.cout * self.ho() * self.wo() * self.cin * self.k * self.k) as f64
    }
}

/// Check the shapes of x, w (and bias) and return the sizes.
pub fn conv_dims(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<ConvDims> {
    expect_f32("conv2d", x)?;
    expect_f32("conv2d", w)?;
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 4 {
        return Err(Error::shape(
            "conv2d",
            format!("input must be (B, Cin, H, W), got {xs:?}"),
        ));
    }
    if ws.len() != 4 || ws[2] != ws[3] || ws[2] == 0 {
        return Err(Error::shape(
            "conv2d",
            format!("filters must be (Cout, Cin, k, k) with k ≥ 1, got {ws:?}"),
        ));
    }
    if ws[1] != xs[1] {
        return Err(Error::shape(
            "conv2d",
            format!(
                "filters {ws:?} take {} input channels, the input {xs:?} has {}",
                ws[1], xs[1]
            ),
        ));
    }
    let d = ConvDims {
        batch: xs[0],
        cin: xs[1],
        h: xs[2],
        w: xs[3],
        cout: ws[0],
        k: ws[2],
        pad,
    };
    if d.h + 2 * pad < d.k || d.w + 2 * pad < d.k {
        return Err(Error::shape(
            "conv2d",
            format!(
                "a {}×{} filter does not fit a {}×{} input padded by {pad}",
                d.k, d.k, d.h, d.w
            ),
        ));
    }
    if let Some(b) = bias {
        expect_f32("conv2d", b)?;
        if b.shape() != [d.cout] {
            return Err(Error::shape(
                "conv2d",
                format!("bias {:?} for {} output channels", b.shape(), d.cout),
            ));
        }
    }
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
fn params(
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    ho: usize,
    wo: usize,
    pad: i64,
    flags: u32,
    nxb: usize,
    nob: usize,
    total: usize,
) -> Result<[u32; 12]> {
    if total > u32::MAX as usize / 2 {
        return Err(Error::invalid(format!(
            "convolution too large: {total} work items"
        )));
    }
    Ok([
        batch as u32,
        cin as u32,
        h as u32,
        w as u32,
        cout as u32,
        ho as u32,
        wo as u32,
        (pad as i32) as u32,
        flags,
        nxb as u32,
        nob as u32,
        total as u32,
    ])
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// The register-tiled direct kernel `conv_fwd`.
    Direct,
    /// im2col, then the matrix-product kernel.
    Im2col,
}

/// The algorithm `conv2d` and the input gradient use on this adapter: im2col + matmul on CPU
/// adapters (measured faster on lavapipe, see BENCHMARKS.md) while the im2col matrix stays under
/// a quarter of the adapter's storage-binding limit; the direct kernel otherwise.
pub fn choose_algo(x: &Tensor, col_elems: usize) -> ConvAlgo {
    let gpu = x.gpu();
    let limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size);
    match gpu.family() {
        KernelFamily::Register if (col_elems as u64) * 4 <= limit / 4 => ConvAlgo::Im2col,
        _ => ConvAlgo::Direct,
    }
}

type Geometry = (
    (usize, usize, usize, usize),
    (usize, usize),
    i64,
    (usize, usize),
);

/// A convolution with a signed padding and a given output size (forward and input gradient),
/// by the algorithm [`choose_algo`] picks or the one given.
fn conv_any(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geo: Geometry,
    algo: Option<ConvAlgo>,
) -> Result<Tensor> {
    let ((batch, cin, h, wd), (cout, k), pad, (ho, wo)) = geo;
    let col_elems = batch * cin * k * k * ho * wo;
    let algo = algo.unwrap_or_else(|| choose_algo(x, col_elems));
    if algo == ConvAlgo::Direct || cin == 0 || col_elems == 0 {
        return conv_direct(x, w, bias, (batch, cin, h, wd), (cout, k), pad, (ho, wo));
    }
    let col = im2col_geo(x, (batch, cin, h, wd), k, pad, (ho, wo))?;
    let wm = w.reshape(&[cout, cin * k * k])?;
    let y = matmul::matmul(&wm, &col, false, false)?.reshape(&[batch, cout, ho, wo])?;
    if let Some(b) = bias {
        add_channel_bias_(&y, b)?;
    }
    Ok(y)
}

/// The direct kernel with a signed padding and a given output size.
#[allow(clippy::too_many_arguments)]
fn conv_direct(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
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
        super::elementwise::fill_(&out, 0.0)?;
        if let Some(b) = bias {
            add_channel_bias_(&out, b)?;
        }
        return Ok(out);
    }
    let p = params(
        batch,
        cin,
        h,
        wd,
        cout,
        ho,
        wo,
        pad,
        u32::from(bias.is_some()),
        nxb,
        nob,
        total,
    )?;
    gpu.launch(&CONV, "conv_fwd")
        .constant("K", k as u32)
        .constant("TO", TILE_OUT)
        .params(&p)
        .read(x.raw())
        .read(w.raw())
        .read(bias.map(|b| b.raw()).unwrap_or(w.raw()))
        .write(out.raw())
        .dispatch_1d(total, WG)?;
    Ok(out)
}

fn fwd_geo(d: &ConvDims) -> Geometry {
    (
        (d.batch, d.cin, d.h, d.w),
        (d.cout, d.k),
        d.pad as i64,
        (d.ho(), d.wo()),
    )
}

/// `y = conv2d(x, w) + bias` with zero padding `pad`, by the adapter's algorithm ([`choose_algo`]).
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any(x, w, bias, fwd_geo(&d), None)
}

/// [`conv2d`] by the direct kernel.
pub fn conv2d_direct(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any(x, w, bias, fwd_geo(&d), Some(ConvAlgo::Direct))
}

/// `y[b, o, :] += bias[o]` in place, for y (B, C, ...) and bias (C).
pub fn add_channel_bias_(y: &Tensor, bias: &Tensor) -> Result<()> {
    expect_f32("add_channel_bias", y)?;
    expect_f32("add_channel_bias", bias)?;
    if y.rank() < 2 || bias.shape() != [y.shape()[1]] {
        return Err(Error::shape(
            "add_channel_bias",
            format!("bias {:?} for {:?}", bias.shape(), y.shape()),
        ));
    }
    let plane: usize = y.shape()[2..].iter().product();
    let p = params(0, 0, 0, 0, y.shape()[1], plane, 1, 0, 0, 0, 0, y.numel())?;
    y.gpu()
        .launch(&CONV, "add_channel_bias")
        .params(&p)
        .write(y.raw())
        .read(bias.raw())
        .dispatch_1d(y.numel(), WG)
}

/// [`conv2d`] by im2col + the matrix-product kernel.
pub fn conv2d_im2col(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any(x, w, bias, fwd_geo(&d), Some(ConvAlgo::Im2col))
}

/// The im2col matrix (B, Cin·k², Ho·Wo) of x.
pub fn im2col(x: &Tensor, d: ConvDims) -> Result<Tensor> {
    let geo = fwd_geo(&d);
    im2col_geo(x, geo.0, d.k, d.pad as i64, geo.3)
}

fn im2col_geo(
    x: &Tensor,
    (batch, cin, h, w): (usize, usize, usize, usize),
    k: usize,
    pad: i64,
    (ho, wo): (usize, usize),
) -> Result<Tensor> {
    let col = Tensor::empty(x.gpu(), &[batch, cin * k * k, ho * wo])?;
    let total = col.numel();
    if total > 0 {
        let p = params(batch, cin, h, w, 0, ho, wo, pad, 0, 0, 0, total)?;
        x.gpu()
            .launch(&CONV, "im2col")
            .constant("K", k as u32)
            .params(&p)
            .read(x.raw())
            .write(col.raw())
            .dispatch_1d(total, WG)?;
    }
    Ok(col)
}

/// The input gradient: `dx = Σ_o corr_full(g[o], flip(w[o, i]))`, shape (B, Cin, H, W).
pub fn conv2d_input_grad(g: &Tensor, w: &Tensor, d: ConvDims) -> Result<Tensor> {
    check_grad("conv2d_input_grad", g, d)?;
    let gpu = g.gpu();
    let kk = d.k * d.k;
    let wt = Tensor::empty(gpu, &[d.cin, d.cout, d.k, d.k])?;
    let n = d.cout * d.cin * kk;
    if n > 0 {
        let p = params(0, d.cin, 0, 0, d.cout, 0, 0, 0, 0, 0, 0, n)?;
        gpu.launch(&CONV, "flip_transpose")
            .constant("K", d.k as u32)
            .params(&p)
            .read(w.raw())
            .write(wt.raw())
            .dispatch_1d(n, WG)?;
    }
    let geo = (
        (d.batch, d.cout, d.ho(), d.wo()),
        (d.cin, d.k),
        d.k as i64 - 1 - d.pad as i64,
        (d.h, d.w),
    );
    conv_any(g, &wt, None, geo, None)
}

/// The weight gradient `dw[o, i, ky, kx] = Σ_{b,y,x} g[b, o, y, x] · x_pad[b, i, y + ky, x + kx]`.
pub fn conv2d_weight_grad(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<Tensor> {
    check_grad("conv2d_weight_grad", g, d)?;
    let gpu = x.gpu();
    let dw = Tensor::empty(gpu, &[d.cout, d.cin, d.k, d.k])?;
    let total = d.cout.div_ceil(4) * d.cin * d.k;
    if dw.numel() == 0 {
        return Ok(dw);
    }
    if d.batch * d.ho() * d.wo() == 0 {
        super::elementwise::fill_(&dw, 0.0)?;
        return Ok(dw);
    }
    let p = params(
        d.batch,
        d.cin,
        d.h,
        d.w,
        d.cout,
        d.ho(),
        d.wo(),
        d.pad as i64,
        0,
        0,
        0,
        total,
    )?;
    gpu.launch(&CONV, "conv_dw")
        .constant("K", d.k as u32)
        .params(&p)
        .read(x.raw())
        .read(g.raw())
        .write(dw.raw())
        .dispatch_1d(total, WG)?;
    Ok(dw)
}

/// The bias gradient: `Σ_{b,y,x} g[b, o, y, x]`, shape (Cout).
pub fn conv2d_bias_grad(g: &Tensor) -> Result<Tensor> {
    expect_f32("conv2d_bias_grad", g)?;
    if g.rank() < 2 {
        return Err(Error::shape(
            "conv2d_bias_grad",
            format!("gradient {:?} has no channel axis", g.shape()),
        ));
    }
    let (b, c) = (g.shape()[0], g.shape()[1]);
    let plane: usize = g.shape()[2..].iter().product();
    let s = reduce::sum_axis(&g.reshape(&[b, c, plane])?, 2)?;
    reduce::sum_axis(&s, 0)
}

fn check_grad(op: &'static str, g: &Tensor, d: ConvDims) -> Result<()> {
    expect_f32(op, g)?;
    if g.shape() != d.out_shape() {
        return Err(Error::shape(
            op,
            format!(
                "output gradient {:?}, expected {:?}",
                g.shape(),
                d.out_shape()
            ),
        ));
    }
    Ok(())
}

/// Taped `conv2d(x, w) + b`.
pub fn conv2d_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    let xv = tape.value(x).clone();
    let wv = tape.value(w).clone();
    let bv = b.map(|v| tape.value(v).clone());
    let d = conv_dims(&xv, &wv, bv.as_ref(), pad)?;
    let out = conv2d(&xv, &wv, bv.as_ref(), pad)?;
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Ok(tape.push(
        out,
        &inputs,
        Box::new(move |g, need| {
            let dx = if need[0] {
                Some(conv2d_input_grad(g, &wv, d)?)
            } else {
                None
            };
            let dw = if need[1] {
                Some(conv2d_weight_grad(&xv, g, d)?)
            } else {
                None
            };
            let mut v = vec![dx, dw];
            if need.len() > 2 {
                v.push(if need[2] {
                    Some(conv2d_bias_grad(g)?)
                } else {
                    None
                });
            }
            Ok(v)
        }),
    ))
}
