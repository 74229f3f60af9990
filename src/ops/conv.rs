//! 2-D convolution (cross-correlation as in PyTorch `conv2d`), stride 1, zero padding, bias:
//! forward, input gradient, weight gradient, bias gradient.
//!
//! Shapes: x (B, Cin, H, W), w (Cout, Cin, k, k), bias (Cout) → (B, Cout, H + 2p − k + 1, W + 2p − k + 1).
//!
//! Kernels. On CPU adapters (lavapipe, the `Register` kernel family) all three passes run
//! kernels generated in Rust with every accumulator a named `vec4` ([`reg_fwd_source`],
//! [`reg_dw_source`]): `conv_reg` (forward, and the input gradient, which is the same convolution
//! of the output gradient with the flipped, transposed filter and padding k − 1 − p, negative
//! padding cropping; `wpack` flips and packs the filter) and `conv_dw_reg` (weight gradient as
//! partial sums over splits of the batch, then one fixed-order sum). At batch 64, 32→32, 28×28 on
//! lavapipe they run at about 15 GFLOP/s against 1.1–1.6 for the kernels below (BENCHMARKS.md).
//! Elsewhere (`shaders/conv.wgsl`): `conv_fwd`, a direct convolution with a register tile of
//! [`TILE_OUT`] output channels × 4 columns per invocation, the filter size specialised so its
//! loops unroll, for the forward and input gradient (after `flip_transpose`); `conv_dw`, which
//! keeps k columns × 4 output channels of the weight gradient in registers and slides along the
//! rows; and `im2col` + the matrix-product kernel ([`conv2d_im2col`], kept as a checked variant).
//! The bias gradient is two fixed-order sums.

use super::{expect_f32, matmul, reduce, CONV};
use crate::gpu::{KernelFamily, Shader};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

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
    /// The generated register-tiled direct kernel `conv_reg` (vec4 accumulators over output
    /// channels, a row segment of columns per invocation).
    Reg,
}

/// The algorithm `conv2d` and the input gradient use on this adapter: the generated register
/// kernel on CPU adapters (measured fastest on lavapipe: 15 GFLOP/s at 32→32, 28×28 against 1.6
/// for im2col + matmul and 1.7 for `conv_fwd`, see BENCHMARKS.md), the direct kernel otherwise.
pub fn choose_algo(x: &Tensor) -> ConvAlgo {
    match x.gpu().family() {
        KernelFamily::Register => ConvAlgo::Reg,
        KernelFamily::Workgroup => ConvAlgo::Direct,
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
    let algo = algo.unwrap_or_else(|| choose_algo(x));
    if algo == ConvAlgo::Direct || cin == 0 || col_elems == 0 {
        return conv_direct(x, w, bias, (batch, cin, h, wd), (cout, k), pad, (ho, wo));
    }
    if algo == ConvAlgo::Reg {
        return conv_reg(
            x,
            w,
            false,
            bias,
            (batch, cin, h, wd),
            (cout, k),
            pad,
            (ho, wo),
        );
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
    let geo = (
        (d.batch, d.cout, d.ho(), d.wo()),
        (d.cin, d.k),
        d.k as i64 - 1 - d.pad as i64,
        (d.h, d.w),
    );
    if choose_algo(g) == ConvAlgo::Reg && d.cout > 0 && d.cin > 0 {
        // The generated kernel reads w flipped and transposed as it packs it.
        return conv_reg(g, w, true, None, geo.0, geo.1, geo.2, geo.3);
    }
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
    if gpu.family() == KernelFamily::Register {
        return weight_grad_reg(x, g, d);
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

// ---- Generated register-tiled kernels (CPU adapters) ----------------------------------------

/// Invocations per workgroup of the generated kernels (one 8-wide SIMD row on lavapipe).
const REG_WG: u32 = 8;
/// Most output channels one invocation of `conv_reg` / `conv_dw_reg` computes.
pub const REG_MAX_TO: usize = 16;
/// Most output columns one invocation of `conv_reg` computes.
pub const REG_MAX_TX: usize = 28;
/// Most vec4 accumulators of one `conv_dw_reg` invocation (input channels × k² × channels / 4).
const REG_DW_ACC: usize = 288;
/// Most partial weight gradients (batch splits) `conv_dw_reg` sums.
const REG_DW_SPLITS: usize = 64;

const REG_PRELUDE: &str = "struct G {
    batch: u32, cin: u32, h: u32, w: u32, cout: u32, ho: u32, wo: u32, pad: i32,
    nxb: u32, co4: u32, total: u32, aux: u32,
}
@group(0) @binding(0) var<uniform> p: G;
@group(0) @binding(1) var<storage, read> x: array<f32>;

// x[row + ix] where the row is inside the image (ok) and ix in [0, w), else 0.
fn ld(row: u32, ok: bool, ix: i32) -> f32 {
    let v = x[row + u32(clamp(ix, 0, i32(p.w) - 1))];
    return select(0.0, v, ok && ix >= 0 && ix < i32(p.w));
}
";

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// The channel tile (a multiple of 4, at most [`REG_MAX_TO`]) and the number of tiles for `c`
/// channels, balanced so the last tile is not mostly padding.
fn channel_tile(c: usize) -> (usize, usize) {
    let c4 = c.max(1).div_ceil(4);
    let n = c4.div_ceil(REG_MAX_TO / 4);
    (4 * c4.div_ceil(n), n)
}

/// The column tile (at most [`REG_MAX_TX`]) and the number of tiles for `wo` columns.
fn column_tile(wo: usize) -> (usize, usize) {
    let n = wo.max(1).div_ceil(REG_MAX_TX);
    (wo.max(1).div_ceil(n), n)
}

/// WGSL of `conv_reg`: a direct convolution, one invocation per (image, output row, block of
/// `tx` columns) × a block of `to` output channels (the workgroup's y). Accumulators are named
/// `vec4`s over 4 output channels (`c{x}_{j}`), filter taps are read as vec4s from the packed
/// filter (`wpack`), and each input row segment (`tx + k − 1` values) is loaded once per (input
/// channel, filter row) and reused for all `k` filter columns: (tx + k − 1) + k·to/4 loads per
/// k·tx·to/4 vec4 multiply-adds, the ratio lavapipe's per-lane loads reward.
pub fn reg_fwd_source(k: u32, to: u32, tx: u32) -> String {
    use std::fmt::Write;
    assert!(to.is_multiple_of(4) && to > 0 && tx > 0 && k > 0);
    let tv = to / 4;
    let seg = tx + k - 1;
    let mut s = String::from(REG_PRELUDE);
    s += "@group(0) @binding(2) var<storage, read> wv: array<vec4<f32>>;\n";
    s += "@group(0) @binding(3) var<storage, read> bias: array<f32>;\n";
    s += "@group(0) @binding(4) var<storage, read_write> y: array<f32>;\n";
    let _ = writeln!(
        s,
        "// generated: k = {k}, {to} output channels x {tx} columns per invocation"
    );
    let _ = writeln!(s, "@compute @workgroup_size({REG_WG}, 1, 1)");
    s += "fn conv_reg(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
    let _ = writeln!(
        s,
        "    let t = (wid.z * nwg.x + wid.x) * {REG_WG}u + lid.x;"
    );
    s += "    let live = t < p.total;\n    let tt = min(t, p.total - 1u);\n";
    s += "    let xb = tt % p.nxb;\n    let r = tt / p.nxb;\n    let yy = r % p.ho;\n    let b = r / p.ho;\n";
    let _ = writeln!(s, "    let xs = xb * {tx}u;");
    s += "    let x0 = i32(xs) - p.pad;\n";
    for xi in 0..tx {
        for j in 0..tv {
            let _ = writeln!(s, "    var c{xi}_{j} = vec4<f32>(0.0);");
        }
    }
    s += "    let hw = p.h * p.w;\n";
    let _ = writeln!(s, "    var wq = wid.y * {tv}u;");
    let _ = writeln!(s, "    let wstep = {k}u * p.co4;");
    s += "    for (var i = 0u; i < p.cin; i += 1u) {\n";
    s += "        let plane = (b * p.cin + i) * hw;\n";
    let _ = writeln!(s, "        for (var ky = 0u; ky < {k}u; ky += 1u) {{");
    s += "            let iy = i32(yy + ky) - p.pad;\n";
    s += "            let ok = iy >= 0 && iy < i32(p.h);\n";
    s += "            let row = plane + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w;\n";
    for q in 0..seg {
        let _ = writeln!(s, "            let v{q} = ld(row, ok, x0 + {q});");
    }
    for kx in 0..k {
        for j in 0..tv {
            let _ = writeln!(
                s,
                "            let w{kx}_{j} = wv[wq + {kx}u * p.co4 + {j}u];"
            );
        }
        for xi in 0..tx {
            for j in 0..tv {
                let _ = writeln!(
                    s,
                    "            c{xi}_{j} = fma(w{kx}_{j}, vec4<f32>(v{}), c{xi}_{j});",
                    xi + kx
                );
            }
        }
    }
    s += "            wq += wstep;\n        }\n    }\n";
    s += "    if live {\n";
    let _ = writeln!(s, "        let o0 = wid.y * {to}u;");
    for j in 0..tv {
        for (c, lane) in LANES.iter().enumerate() {
            let _ = writeln!(s, "        if o0 + {}u < p.cout {{", 4 * j + c as u32);
            let _ = writeln!(s, "            let o = o0 + {}u;", 4 * j + c as u32);
            s += "            var bv = 0.0;\n            if (p.aux & 1u) != 0u { bv = bias[o]; }\n";
            s += "            let base = ((b * p.cout + o) * p.ho + yy) * p.wo + xs;\n";
            for xi in 0..tx {
                let _ = writeln!(
                    s,
                    "            if xs + {xi}u < p.wo {{ y[base + {xi}u] = c{xi}_{j}.{lane} + bv; }}"
                );
            }
            s += "        }\n";
        }
    }
    s += "    }\n}\n";
    s
}

/// WGSL of `conv_dw_reg`: the weight gradient, one invocation per (batch split, block of `ti`
/// input channels) × a block of `to` output channels (the workgroup's y), writing a partial sum
/// over its images: `part[s, o, i, ky, kx]`. Accumulators are named vec4s over 4 output channels
/// (`a{ti}_{ky}_{kx}_{j}`); per output pixel it loads `to` gradient values and, sliding a k-wide
/// window along each input row, `ti·k` new input values.
pub fn reg_dw_source(k: u32, to: u32, ti: u32) -> String {
    use std::fmt::Write;
    assert!(to.is_multiple_of(4) && to > 0 && ti > 0 && k > 0);
    let tv = to / 4;
    let mut s = String::from(REG_PRELUDE);
    s += "@group(0) @binding(2) var<storage, read> g: array<f32>;\n";
    s += "@group(0) @binding(3) var<storage, read_write> part: array<f32>;\n";
    let _ = writeln!(
        s,
        "// generated: k = {k}, {to} output channels x {ti} input channels per invocation"
    );
    let _ = writeln!(s, "@compute @workgroup_size({REG_WG}, 1, 1)");
    s += "fn conv_dw_reg(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
    let _ = writeln!(
        s,
        "    let t = (wid.z * nwg.x + wid.x) * {REG_WG}u + lid.x;"
    );
    s += "    let live = t < p.total;\n    let tt = min(t, p.total - 1u);\n";
    // p.nxb = input-channel blocks, p.aux = images per split.
    s += "    let ib = tt % p.nxb;\n    let sp = tt / p.nxb;\n";
    let _ = writeln!(s, "    let i0 = ib * {ti}u;");
    let _ = writeln!(s, "    let o0 = wid.y * {to}u;");
    s += "    let b0 = sp * p.aux;\n    let b1 = min(b0 + p.aux, p.batch);\n";
    s += "    let hw = p.h * p.w;\n    let ohw = p.ho * p.wo;\n";
    for m in 0..to {
        let _ = writeln!(s, "    let go{m} = min(o0 + {m}u, p.cout - 1u) * ohw;");
    }
    for c in 0..ti {
        let _ = writeln!(s, "    let ic{c} = min(i0 + {c}u, p.cin - 1u);");
    }
    for c in 0..ti {
        for ky in 0..k {
            for kx in 0..k {
                for j in 0..tv {
                    let _ = writeln!(s, "    var a{c}_{ky}_{kx}_{j} = vec4<f32>(0.0);");
                }
            }
        }
    }
    s += "    for (var b = b0; b < b1; b += 1u) {\n";
    s += "        let gb = b * p.cout * ohw;\n";
    s += "        for (var yy = 0u; yy < p.ho; yy += 1u) {\n";
    for ky in 0..k {
        let _ = writeln!(s, "            let iy{ky} = i32(yy + {ky}u) - p.pad;");
        let _ = writeln!(
            s,
            "            let ok{ky} = iy{ky} >= 0 && iy{ky} < i32(p.h);"
        );
        let _ = writeln!(
            s,
            "            let ry{ky} = u32(clamp(iy{ky}, 0, i32(p.h) - 1)) * p.w;"
        );
    }
    for c in 0..ti {
        let _ = writeln!(s, "            let pl{c} = (b * p.cin + ic{c}) * hw;");
        for ky in 0..k {
            let _ = writeln!(s, "            let row{c}_{ky} = pl{c} + ry{ky};");
            for kx in 0..k.saturating_sub(1) {
                let _ = writeln!(
                    s,
                    "            var v{c}_{ky}_{kx} = ld(row{c}_{ky}, ok{ky}, {kx} - p.pad);"
                );
            }
        }
    }
    s += "            let gy = gb + yy * p.wo;\n";
    s += "            for (var xx = 0u; xx < p.wo; xx += 1u) {\n";
    let _ = writeln!(s, "                let nx = i32(xx + {}u) - p.pad;", k - 1);
    for c in 0..ti {
        for ky in 0..k {
            let _ = writeln!(
                s,
                "                let n{c}_{ky} = ld(row{c}_{ky}, ok{ky}, nx);"
            );
        }
    }
    s += "                let gx = gy + xx;\n";
    for j in 0..tv {
        let _ = writeln!(
            s,
            "                let g{j} = vec4<f32>(g[gx + go{}], g[gx + go{}], g[gx + go{}], g[gx + go{}]);",
            4 * j,
            4 * j + 1,
            4 * j + 2,
            4 * j + 3
        );
    }
    for c in 0..ti {
        for ky in 0..k {
            for kx in 0..k {
                let v = if kx + 1 == k {
                    format!("n{c}_{ky}")
                } else {
                    format!("v{c}_{ky}_{kx}")
                };
                for j in 0..tv {
                    let _ = writeln!(
                        s,
                        "                a{c}_{ky}_{kx}_{j} = fma(g{j}, vec4<f32>({v}), a{c}_{ky}_{kx}_{j});"
                    );
                }
            }
            // Slide the window.
            for kx in 0..k.saturating_sub(1) {
                let nv = if kx + 2 == k {
                    format!("n{c}_{ky}")
                } else {
                    format!("v{c}_{ky}_{}", kx + 1)
                };
                let _ = writeln!(s, "                v{c}_{ky}_{kx} = {nv};");
            }
        }
    }
    s += "            }\n        }\n    }\n";
    s += "    if live {\n";
    let kk = k * k;
    for c in 0..ti {
        let _ = writeln!(s, "        if i0 + {c}u < p.cin {{");
        for j in 0..tv {
            for (l, lane) in LANES.iter().enumerate() {
                let m = 4 * j + l as u32;
                let _ = writeln!(s, "            if o0 + {m}u < p.cout {{");
                let _ = writeln!(
                    s,
                    "                let pb = ((sp * p.cout + o0 + {m}u) * p.cin + i0 + {c}u) * {kk}u;"
                );
                for ky in 0..k {
                    for kx in 0..k {
                        let _ = writeln!(
                            s,
                            "                part[pb + {}u] = a{c}_{ky}_{kx}_{j}.{lane};",
                            ky * k + kx
                        );
                    }
                }
                s += "            }\n";
            }
        }
        s += "        }\n";
    }
    s += "    }\n}\n";
    s
}

/// The generated shader for (kind, k, a, b), built once and kept for the process.
fn reg_conv_shader(kind: &'static str, k: u32, a: u32, b: u32) -> &'static Shader {
    type Key = (&'static str, u32, u32, u32);
    static CACHE: OnceLock<Mutex<HashMap<Key, &'static Shader>>> = OnceLock::new();
    let mut c = CACHE.get_or_init(Default::default).lock().unwrap();
    c.entry((kind, k, a, b)).or_insert_with(|| {
        let src = match kind {
            "conv_reg" => reg_fwd_source(k, a, b),
            _ => reg_dw_source(k, a, b),
        };
        let src: &'static str = Box::leak(src.into_boxed_str());
        let name: &'static str = Box::leak(format!("{kind}_{k}_{a}x{b}").into_boxed_str());
        Box::leak(Box::new(Shader { name, src }))
    })
}

/// Workgroups for `n` invocations of a generated kernel over `ny` channel blocks: (x, ny, z) with
/// x·z ≥ n / 8 and x within the per-dimension limit.
fn reg_grid(gpu: &crate::Gpu, n: usize, ny: usize) -> Result<[u32; 3]> {
    let groups = n.div_ceil(REG_WG as usize) as u64;
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
/// input-channel blocks for the weight gradient), co4 (packed filter row, vec4s), the invocation
/// count and aux (bias flag, or images per split).
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
) -> Result<[u32; 12]> {
    let mut p = params(batch, cin, h, w, cout, ho, wo, pad, 0, 0, 0, total)?;
    p[8] = nxb as u32;
    p[9] = co4 as u32;
    p[10] = total as u32;
    p[11] = aux as u32;
    Ok(p)
}

/// The forward-form convolution by the generated kernel: `x` (B, cin, h, w) with the filter `w`
/// (cout, cin, k, k), or, when `flip`, the flipped transpose of `w` (cin, cout, k, k) (the input
/// gradient), signed padding, given output size.
#[allow(clippy::too_many_arguments)]
fn conv_reg(
    x: &Tensor,
    w: &Tensor,
    flip: bool,
    bias: Option<&Tensor>,
    (batch, cin, h, wd): (usize, usize, usize, usize),
    (cout, k): (usize, usize),
    pad: i64,
    (ho, wo): (usize, usize),
) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, &[batch, cout, ho, wo])?;
    let (to, nob) = channel_tile(cout);
    let (tx, nxb) = column_tile(wo);
    let total = batch * ho * nxb;
    if total == 0 || cout == 0 {
        return Ok(out);
    }
    let wide = to * nob;
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
            .read(w.raw())
            .write(wv.raw())
            .dispatch_1d(n, WG)?;
    }
    let p = gparams(
        (batch, cin, h, wd),
        cout,
        (ho, wo),
        pad,
        nxb,
        wide / 4,
        total,
        usize::from(bias.is_some()),
    )?;
    let sh = reg_conv_shader("conv_reg", k as u32, to as u32, tx as u32);
    gpu.launch(sh, "conv_reg")
        .params(&p)
        .read(x.raw())
        .read(wv.raw())
        .read(bias.map(|b| b.raw()).unwrap_or(wv.raw()))
        .write(out.raw())
        .dispatch(reg_grid(gpu, total, nob)?)?;
    Ok(out)
}

/// The weight gradient by the generated kernel `conv_dw_reg`: partial sums over splits of the
/// batch, then one fixed-order sum over the splits.
fn weight_grad_reg(x: &Tensor, g: &Tensor, d: ConvDims) -> Result<Tensor> {
    let gpu = x.gpu();
    let kk = d.k * d.k;
    let (to, nob) = channel_tile(d.cout);
    let ti = (REG_DW_ACC / (kk * to / 4)).clamp(1, 8).min(d.cin.max(1));
    let nib = d.cin.div_ceil(ti);
    let per = d.batch.div_ceil(d.batch.min(REG_DW_SPLITS));
    let splits = d.batch.div_ceil(per);
    let part = Tensor::empty(gpu, &[splits, d.cout, d.cin, d.k, d.k])?;
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
    let sh = reg_conv_shader("conv_dw_reg", d.k as u32, to as u32, ti as u32);
    gpu.launch(sh, "conv_dw_reg")
        .params(&p)
        .read(x.raw())
        .read(g.raw())
        .write(part.raw())
        .dispatch(reg_grid(gpu, total, nob)?)?;
    if splits == 1 {
        part.reshape(&[d.cout, d.cin, d.k, d.k])
    } else {
        reduce::sum_axis(&part, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_kernels_validate() {
        for k in [1u32, 3, 5] {
            for c in [1usize, 4, 17, 32, 37, 80] {
                let (to, _) = channel_tile(c);
                for wo in [1usize, 7, 16, 28, 33] {
                    let (tx, _) = column_tile(wo);
                    let src = reg_fwd_source(k, to as u32, tx as u32);
                    crate::gpu::shader::validate("conv_reg", &src)
                        .unwrap_or_else(|e| panic!("k {k}, {to}x{tx}: {e}"));
                }
                let kk = (k * k) as usize;
                let ti = (REG_DW_ACC / (kk * to / 4)).clamp(1, 8);
                let src = reg_dw_source(k, to as u32, ti as u32);
                crate::gpu::shader::validate("conv_dw_reg", &src)
                    .unwrap_or_else(|e| panic!("dw k {k}, {to}x{ti}: {e}"));
            }
        }
    }

    #[test]
    fn tiles_cover_and_balance() {
        assert_eq!(channel_tile(32), (16, 2));
        assert_eq!(channel_tile(80), (16, 5));
        assert_eq!(channel_tile(1), (4, 1));
        assert_eq!(column_tile(28), (28, 1));
        assert_eq!(column_tile(33), (17, 2));
        for c in 1..100 {
            let (t, n) = channel_tile(c);
            assert!(t * n >= c && t * (n - 1) < c && t % 4 == 0 && t <= REG_MAX_TO);
        }
    }
}
