//! 2-D convolution (cross-correlation as in PyTorch `conv2d`), stride 1, zero padding, bias:
//! forward, input gradient, weight gradient, bias gradient; one file per algorithm.
//!
//! Shapes: x (B, Cin, H, W), w (Cout, Cin, k, k), bias (Cout) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
//!
//! - [`reg`]: on CPU adapters (lavapipe, the `Register` kernel family) all three passes run kernels
//!   generated in Rust (`codegen.rs`): `conv_reg` (forward, and the input gradient, which is the
//!   same convolution of the output gradient with the flipped, transposed filter and padding
//!   k − 1 − p, negative padding cropping) and `conv_dw_reg` (weight gradient as partial sums over
//!   splits of the batch, then one fixed-order sum). At batch 64, 32→32, 28×28 on lavapipe they run
//!   at about 15 GFLOP/s against 1.1–1.6 for the kernels below (BENCHMARKS.md). A layer with one
//!   input channel gets its input, weight and bias gradients from `conv_bwd_reg`, which reads the
//!   output gradient once for all three ([`conv2d_grads_with`], [`fused_backward_fits`]).
//! - [`direct`]: elsewhere, the kernels of `shaders/conv.wgsl`: `conv_fwd` and `conv_dw`.
//! - [`im2col`]: im2col + the matrix-product kernel ([`conv2d_im2col`], kept as a checked variant).
//! - [`igemm`]: implicit matrix products with tiles in workgroup memory (`shaders/conv_gemm.wgsl`):
//!   `igemm_fwd` (forward and input gradient) and `igemm_dw` (the weight gradient as a product over
//!   B·Ho·Wo in a fixed number of chunks, summed in a fixed order).
//!
//! [`conv2d_with`], [`conv2d_input_grad_with`] and [`conv2d_weight_grad_with`] run a given
//! algorithm ([`ConvAlgo::ALL`], [`WeightGradAlgo::ALL`]); the plain entry points pick one per
//! adapter ([`choose_algo`], [`choose_weight_grad_algo`]).
//!
//! The bias gradient is two fixed-order sums, or, beside the register weight gradient, partial sums
//! that kernel takes from the gradient values it loads ([`conv2d_weight_bias_grad`]). The taped
//! forms ([`conv2d_t`], [`channel_bias_t`]) are in `taped.rs`, the WGSL generators of the register
//! kernels in `codegen.rs`, and the tuned ops ([`FWD`], [`INPUT_GRAD`], [`WEIGHT_GRAD`]) with their
//! candidates in [`tune`].

mod codegen;
mod direct;
mod igemm;
mod im2col;
mod reg;
mod taped;
pub mod tune;

pub use crate::reference::conv::ConvDims;
pub use igemm::{dw_chunks, IgemmP, DW_MAX_CHUNKS, IGEMM_ROWS};
pub use im2col::im2col;
pub use reg::{fused_backward_fits, ConvGen, GenConvP, FUSED_MAX_K};
pub use taped::{
    channel_bias_relu_t, channel_bias_t, conv2d_grad_parts_with, conv2d_grads, conv2d_grads_with,
    conv2d_relu_t, conv2d_t, conv2d_t_with, conv2d_transformed_t, TransformAdjoint,
};
pub use tune::{FWD, INPUT_GRAD, WEIGHT_GRAD};

use super::{expect_f32, i32_of, reduce, shader_params, u32_of, CONV};
use crate::gpu::tune::Op;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Output channels one invocation of `conv_fwd` computes (a specialised shader constant).
pub const TILE_OUT: u32 = 4;
/// Filter sizes the shader test validates (any k ≥ 1 works: the pipeline is specialised on demand).
pub const KERNEL_SIZES: &[u32] = &[1, 3, 5, 7];
/// Filter sizes whose generated kernels (`conv_reg`, `conv_dw_reg`) the shader tests build for every
/// tile (the models use 3; any k works, generated and validated when first launched).
pub const REG_KERNEL_SIZES: &[u32] = &[1, 3, 5];

/// Every generated convolution kernel the launchers can produce for [`REG_KERNEL_SIZES`].
pub fn generated_variants() -> Vec<ConvGen> {
    REG_KERNEL_SIZES
        .iter()
        .flat_map(|&k| reg::variants(k))
        .collect()
}

/// Invocations per workgroup of the kernels of `conv.wgsl`.
const WG: u32 = 64;

/// Floating-point operations of a convolution with `products` (batch · out channels · in
/// channels · output positions) filter applications of a k×k filter: 2 per multiply-add. The
/// weight gradient has the same count.
pub(super) fn conv_flops(products: usize, k: usize) -> u64 {
    2 * (products as u64) * (k * k) as u64
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

/// The uniform block of `conv.wgsl`'s kernels, checked against u32 overflow.
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
) -> Result<ConvP> {
    if total > u32::MAX as usize / 2 {
        return Err(Error::invalid(format!(
            "convolution too large: {total} work items"
        )));
    }
    Ok(ConvP {
        batch: u32_of("batch", batch)?,
        cin: u32_of("input channels", cin)?,
        h: u32_of("input height", h)?,
        w: u32_of("input width", w)?,
        cout: u32_of("output channels", cout)?,
        ho: u32_of("output height", ho)?,
        wo: u32_of("output width", wo)?,
        pad: i32_of("padding", pad)?,
        flags,
        nxb: u32_of("column blocks", nxb)?,
        nob: u32_of("channel blocks", nob)?,
        total: u32_of("work items", total)?,
    })
}

shader_params!(
    /// The uniform block of `conv.wgsl`.
    ConvP = "P" in Ok(CONV.src.to_string()), {
        batch: u32,
        cin: u32,
        h: u32,
        w: u32,
        cout: u32,
        ho: u32,
        wo: u32,
        pad: i32,
        flags: u32,
        nxb: u32,
        nob: u32,
        total: u32,
    }
);

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// The register-tiled direct kernel `conv_fwd`.
    Direct,
    /// im2col, then the matrix-product kernel.
    Im2col,
    /// The generated register-tiled direct kernel `conv_reg` (vec4 accumulators over output
    /// channels, a row segment of columns per invocation).
    Reg,
    /// The implicit matrix product `igemm_fwd` (workgroup-memory tiles, no im2col buffer).
    Igemm,
}

impl ConvAlgo {
    /// Every algorithm, for tuners and tests.
    pub const ALL: [ConvAlgo; 4] = [
        ConvAlgo::Direct,
        ConvAlgo::Im2col,
        ConvAlgo::Reg,
        ConvAlgo::Igemm,
    ];

    /// A short lower-case name (`direct`, `im2col`, `reg`, `igemm`).
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Direct => "direct",
            ConvAlgo::Im2col => "im2col",
            ConvAlgo::Reg => "reg",
            ConvAlgo::Igemm => "igemm",
        }
    }
}

/// How a weight gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightGradAlgo {
    /// `conv_dw`: k columns × 4 output channels per invocation, each summing the whole batch.
    Direct,
    /// The generated `conv_dw_reg`: partial sums over splits of the batch, then a fixed-order sum.
    Reg,
    /// `igemm_dw`: a matrix product over B·Ho·Wo in a fixed number of chunks, then a fixed-order sum.
    Gemm,
}

impl WeightGradAlgo {
    /// Every algorithm, for tuners and tests.
    pub const ALL: [WeightGradAlgo; 3] = [
        WeightGradAlgo::Direct,
        WeightGradAlgo::Reg,
        WeightGradAlgo::Gemm,
    ];

    /// A short lower-case name (`direct`, `reg`, `gemm`).
    pub fn name(self) -> &'static str {
        match self {
            WeightGradAlgo::Direct => "direct",
            WeightGradAlgo::Reg => "reg",
            WeightGradAlgo::Gemm => "gemm",
        }
    }
}

/// The algorithm `conv2d` (`op` = [`FWD`]) or the input gradient ([`INPUT_GRAD`])
/// uses for a convolution of dims `d` on this device: forced, cached or measured among
/// [`tune::ALGOS`] (on lavapipe the generated register kernel wins: 15 GFLOP/s at 32→32, 28×28
/// against 1.6 for im2col + matmul and 1.7 for `conv_fwd`, see BENCHMARKS.md; under the workgroup
/// family `igemm_fwd` took 12.3 s against 7.6 s for `conv_fwd` in one loaded run at b64, 32→32,
/// 28×28: the implicit GEMM is for GPUs, where the tuner measures it).
pub fn choose_algo(x: &Tensor, d: ConvDims, op: Op) -> Result<ConvAlgo> {
    tune::choose(x.gpu(), op, d)
}

/// ((batch, cin, h, w), (cout, k), signed padding, (ho, wo)).
type Geometry = (
    (usize, usize, usize, usize),
    (usize, usize),
    i64,
    (usize, usize),
);

/// A convolution with a signed padding and a given output size (forward and input gradient),
/// by the algorithm given.
fn conv_any(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geo: Geometry,
    algo: ConvAlgo,
) -> Result<Tensor> {
    conv_any_ex(x, w, (bias, false), geo, algo)
}

/// [`conv_any`] with ReLU applied to the output by the same launch when `relu` (each algorithm's
/// epilogue; im2col's bias pass).
fn conv_any_ex(
    x: &Tensor,
    w: &Tensor,
    epilogue: (Option<&Tensor>, bool),
    geo: Geometry,
    algo: ConvAlgo,
) -> Result<Tensor> {
    let ((batch, cin, h, wd), (cout, k), pad, (ho, wo)) = geo;
    let col_elems = batch * cin * k * k * ho * wo;
    if algo == ConvAlgo::Direct || cin == 0 || col_elems == 0 {
        return direct::conv_direct(
            x,
            w,
            epilogue,
            (batch, cin, h, wd),
            (cout, k),
            pad,
            (ho, wo),
        );
    }
    if algo == ConvAlgo::Igemm {
        return igemm::conv_igemm(x, w, epilogue, geo);
    }
    if algo == ConvAlgo::Reg {
        return reg::conv_reg(
            x,
            w,
            false,
            epilogue,
            (batch, cin, h, wd),
            (cout, k),
            pad,
            (ho, wo),
        );
    }
    im2col::conv_im2col(x, w, epilogue, geo)
}

/// The bias and ReLU of an output made without them: one bias pass (with the ReLU), or a ReLU
/// pass alone.
fn finish(y: Tensor, bias: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    match bias {
        Some(b) => {
            add_channel_bias_ex_(&y, b, relu)?;
            Ok(y)
        }
        None if relu => crate::ops::elementwise::relu(&y),
        None => Ok(y),
    }
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
    conv_any(x, w, bias, fwd_geo(&d), choose_algo(x, d, FWD)?)
}

/// [`conv2d`] by the given algorithm.
pub fn conv2d_with(
    algo: ConvAlgo,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    conv2d_relu_with(algo, x, w, bias, pad, false)
}

/// [`conv2d_with`], then ReLU when `relu`, in the same launch.
pub fn conv2d_relu_with(
    algo: ConvAlgo,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
    relu: bool,
) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any_ex(x, w, (bias, relu), fwd_geo(&d), algo)
}

/// [`conv2d`] by the direct kernel.
pub fn conv2d_direct(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any(x, w, bias, fwd_geo(&d), ConvAlgo::Direct)
}

/// `y[b, o, :] += bias[o]` in place, for y (B, C, ...) and bias (C).
pub fn add_channel_bias_(y: &Tensor, bias: &Tensor) -> Result<()> {
    add_channel_bias_ex_(y, bias, false)
}

/// `y[b, o, :] = y[b, o, :] + bias[o]`, then ReLU when `relu`, in place (one pass).
pub fn add_channel_bias_ex_(y: &Tensor, bias: &Tensor, relu: bool) -> Result<()> {
    expect_f32("add_channel_bias", y)?;
    expect_f32("add_channel_bias", bias)?;
    if y.rank() < 2 || bias.shape() != [y.shape()[1]] {
        return Err(Error::shape(
            "add_channel_bias",
            format!("bias {:?} for {:?}", bias.shape(), y.shape()),
        ));
    }
    let plane: usize = y.shape()[2..].iter().product();
    let p = params(
        0,
        0,
        0,
        0,
        y.shape()[1],
        plane,
        1,
        0,
        u32::from(relu),
        0,
        0,
        y.numel(),
    )?;
    y.gpu()
        .launch(&CONV, "add_channel_bias")
        .params(&p)
        .write(&y)
        .read(&bias)
        .dispatch_1d(y.numel(), WG)
}

/// [`conv2d`] by im2col + the matrix-product kernel.
pub fn conv2d_im2col(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    let d = conv_dims(x, w, bias, pad)?;
    conv_any(x, w, bias, fwd_geo(&d), ConvAlgo::Im2col)
}

/// The input gradient: `dx = Σ_o corr_full(g[o], flip(w[o, i]))`, shape (B, Cin, H, W).
pub fn conv2d_input_grad(g: &Tensor, w: &Tensor, d: ConvDims) -> Result<Tensor> {
    check_grad("conv2d_input_grad", g, d)?;
    conv2d_input_grad_with(choose_algo(g, d, INPUT_GRAD)?, g, w, d)
}

/// [`conv2d_input_grad`] by the given algorithm.
pub fn conv2d_input_grad_with(
    algo: ConvAlgo,
    g: &Tensor,
    w: &Tensor,
    d: ConvDims,
) -> Result<Tensor> {
    check_grad("conv2d_input_grad", g, d)?;
    check_filter("conv2d_input_grad", w, d)?;
    let geo = (
        (d.batch, d.cout, d.ho(), d.wo()),
        (d.cin, d.k),
        d.k as i64 - 1 - d.pad as i64,
        (d.h, d.w),
    );
    if algo == ConvAlgo::Reg && d.cout > 0 && d.cin > 0 {
        // The generated kernel reads w flipped and transposed as it packs it.
        return reg::conv_reg(g, w, true, (None, false), geo.0, geo.1, geo.2, geo.3);
    }
    let wt = direct::flip_transpose(w, d)?;
    conv_any(g, &wt, None, geo, algo)
}

/// The weight gradient `dw[o, i, ky, kx] = Σ_{b,y,x} g[b, o, y, x] · x_pad[b, i, y + ky, x + kx]`.
pub fn conv2d_weight_grad(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<Tensor> {
    check_grad("conv2d_weight_grad", g, d)?;
    conv2d_weight_grad_with(tune::choose_dw(x.gpu(), d)?.algo, x, g, d)
}

/// [`conv2d_weight_grad`] by the given algorithm.
pub fn conv2d_weight_grad_with(
    algo: WeightGradAlgo,
    x: &Tensor,
    g: &Tensor,
    d: ConvDims,
) -> Result<Tensor> {
    check_weight_grad(x, g, d)?;
    let gpu = x.gpu();
    let dw = Tensor::empty(gpu, &[d.cout, d.cin, d.k, d.k])?;
    if dw.numel() == 0 {
        return Ok(dw);
    }
    if d.batch * d.ho() * d.wo() == 0 {
        dw.fill_(0.0)?;
        return Ok(dw);
    }
    weight_grad_by(algo, x, g, d, dw)
}

/// The weight gradient into a fresh (Cout, Cin, k, k) tensor `dw` by `algo` (shapes checked).
fn weight_grad_by(
    algo: WeightGradAlgo,
    x: &Tensor,
    g: &Tensor,
    d: ConvDims,
    dw: Tensor,
) -> Result<Tensor> {
    match algo {
        WeightGradAlgo::Reg => sum_splits(reg::weight_bias_partials_reg(x, g, d)?.0),
        WeightGradAlgo::Direct => direct::weight_grad(x, g, d, &dw).map(|()| dw),
        WeightGradAlgo::Gemm => igemm::weight_grad_igemm(x, g, d),
    }
}

/// The weight and bias gradients together, the weight gradient by the algorithm the tuner picks.
pub fn conv2d_weight_bias_grad(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<(Tensor, Tensor)> {
    check_grad("conv2d_weight_grad", g, d)?;
    conv2d_weight_bias_grad_with(tune::choose_dw(x.gpu(), d)?.algo, x, g, d)
}

/// [`conv2d_weight_grad_with`] and [`conv2d_bias_grad`] together: the register kernel sums the
/// bias gradient from the gradient values it loads anyway (no pass of its own over `g`); the
/// other algorithms run the bias gradient's reduction after the weight gradient.
pub fn conv2d_weight_bias_grad_with(
    algo: WeightGradAlgo,
    x: &Tensor,
    g: &Tensor,
    d: ConvDims,
) -> Result<(Tensor, Tensor)> {
    check_weight_grad(x, g, d)?;
    if algo == WeightGradAlgo::Reg && d.cout * d.cin > 0 && d.batch * d.ho() * d.wo() > 0 {
        let (part, bpart) = reg::weight_bias_partials_reg(x, g, d)?;
        return Ok((sum_splits(part)?, sum_splits(bpart)?));
    }
    Ok((
        conv2d_weight_grad_with(algo, x, g, d)?,
        conv2d_bias_grad(g)?,
    ))
}

/// Partial sums over a leading axis of batch splits or chunks, summed in a fixed order (one split
/// is a reshape): the last step of the weight-gradient kernels that split their long sum.
fn sum_splits(t: Tensor) -> Result<Tensor> {
    if t.shape().first() == Some(&1) {
        let shape = t.shape()[1..].to_vec();
        t.reshape(&shape)
    } else {
        reduce::sum_axis(&t, 0)
    }
}

/// The bias gradient: `Σ_{b,y,x} g[b, o, y, x]`, shape (Cout): one launch where it fits
/// ([`reduce::batch_plane_fits`]: its loops within a loop limiter's budget), a sum over the planes
/// and one over the batch otherwise (the same float32 sums either way).
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
    let g = g.reshape(&[b, c, plane])?;
    if reduce::batch_plane_fits(b, plane) {
        return reduce::sum_batch_plane(&g);
    }
    let s = reduce::sum_axis(&g, 2)?;
    reduce::sum_axis(&s, 0)
}

fn check_filter(op: &'static str, w: &Tensor, d: ConvDims) -> Result<()> {
    expect_f32(op, w)?;
    if w.shape() != [d.cout, d.cin, d.k, d.k] {
        return Err(Error::shape(
            op,
            format!(
                "filter {:?}, expected {:?}",
                w.shape(),
                [d.cout, d.cin, d.k, d.k]
            ),
        ));
    }
    Ok(())
}

/// The weight gradient's operands: the output gradient and the input, each of its shape.
fn check_weight_grad(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<()> {
    check_grad("conv2d_weight_grad", g, d)?;
    expect_f32("conv2d_weight_grad", x)?;
    if x.shape() != [d.batch, d.cin, d.h, d.w] {
        return Err(Error::shape(
            "conv2d_weight_grad",
            format!(
                "input {:?}, expected {:?}",
                x.shape(),
                [d.batch, d.cin, d.h, d.w]
            ),
        ));
    }
    Ok(())
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
