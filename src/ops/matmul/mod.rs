//! Matrix products `C = op(A)·op(B) (+ bias) (ReLU)` with all four transpose combinations and an
//! optional leading batch dimension on either operand (a rank-2 operand is shared by every batch).
//!
//! Several kernels ([`variants`]): `mm_reg` (register tiles, vec4 loads, no workgroup memory; what
//! CPU adapters such as lavapipe run well) and the workgroup-tiled `mm_block…` and `mm_tiled`; the
//! one run is chosen by measurement per shape bucket (`gpu::tune`, as the tuned op [`OP`] with the
//! candidates of [`variants`]). The WGSL of `mm_reg` and `mm_subgroup` is generated in [`codegen`].
//! A B that is transposed or whose N is not a multiple of 4 is read through its strides, with C
//! written unpadded, by `mm_strided` for small products and by `mm_reg_s` (the register kernel's
//! strided form) where `mm_reg` is the variant; the workgroup variants get B packed to zero-padded
//! vec4 rows and C unpacked after them.

pub mod codegen;
pub mod half;
pub mod variants;

pub use variants::{reg_tile, set_reg_tile, set_reg_tile_str, OP};

use super::layout::LayoutP;
use super::{elementwise, expect_f32, reduce, shader_params, u32_of, LAYOUT, MATMUL};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// What to apply after the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    None,
    Bias,
    Relu,
    BiasRelu,
}

impl Epilogue {
    fn relu(self) -> bool {
        matches!(self, Epilogue::Relu | Epilogue::BiasRelu)
    }
}

/// (batch, rows, cols) of op(X) for a rank-2 or rank-3 tensor; batch 0 marks a shared operand.
fn dims(op: &'static str, x: &Tensor, trans: bool) -> Result<(usize, usize, usize)> {
    expect_f32(op, x)?;
    let s = x.shape();
    let (z, r, c) = match s.len() {
        2 => (0, s[0], s[1]),
        3 => (s[0], s[1], s[2]),
        _ => {
            return Err(Error::shape(
                op,
                format!("operands must be rank 2 or 3, got {s:?}"),
            ))
        }
    };
    Ok(if trans { (z, c, r) } else { (z, r, c) })
}

/// The output shape of `op(a)·op(b)`.
pub fn out_shape(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Vec<usize>> {
    let (za, m, k) = dims("matmul", a, ta)?;
    let (zb, kb, n) = dims("matmul", b, tb)?;
    if k != kb {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner dimensions differ: op(A) of {:?} (transposed: {ta}) has {k} columns, op(B) of {:?} (transposed: {tb}) has {kb} rows",
                a.shape(),
                b.shape()
            ),
        ));
    }
    if za != 0 && zb != 0 && za != zb {
        return Err(Error::shape(
            "matmul",
            format!("batch sizes differ: {za} vs {zb}"),
        ));
    }
    let z = za.max(zb);
    Ok(if z == 0 { vec![m, n] } else { vec![z, m, n] })
}

fn layout_params(
    rows: usize,
    cols: usize,
    n4: usize,
    trans: bool,
    batch: usize,
) -> Result<LayoutP> {
    Ok(LayoutP {
        rows: u32_of("rows", rows)?,
        cols: u32_of("columns", cols)?,
        n4: u32_of("vec4 columns", n4)?,
        trans: u32::from(trans),
        batch: u32_of("batch", batch)?,
        ..Default::default()
    })
}

shader_params!(
    /// The uniform block of `matmul.wgsl` (and of the generated `mm_reg` kernels built from it).
    MatmulP = "P" in Ok(MATMUL.src.to_string()), {
        m: u32,
        n4: u32,
        k: u32,
        sam: u32,
        sak: u32,
        sab: u32,
        sbb: u32,
        scb: u32,
        flags: u32,
        sbk: u32,
        sbn: u32,
        nz: u32,
    }
);

/// The most multiply-adds a product whose B is transposed or whose N is not a multiple of 4 may
/// have to run as `mm_strided` (one dispatch, B read through strides, C written unpadded)
/// instead of the chosen variant: `mm_reg_s` (also one dispatch) where that is `mm_reg`, else B
/// packed and C unpacked around a workgroup kernel (three dispatches). These are the heads'
/// small products and the smallest of the cloned layers' coefficient products. Through lavapipe
/// `mm_strided` runs at about 0.4 GFMA/s against the tiled kernels' 10 or more (its B loads are
/// gathers there), so past this size the two passes it saves cost less than it does (measured on
/// the quick preset's step, BENCHMARKS.md, before `mm_reg_s`; against `mm_reg_s` the limit is not
/// measured). A device with a matrix-product variant forced on it ([`crate::Gpu::force`]: tests
/// of that variant) never runs it.
pub const STRIDED_MAX_FMAS: usize = 1 << 16;

/// Pack x (batch of rows × cols, or its transpose) into zero-padded vec4 rows.
fn pack(x: &Tensor, batch: usize, rows: usize, cols: usize, trans: bool) -> Result<Tensor> {
    let n4 = cols.div_ceil(4);
    let out = Tensor::empty(x.gpu(), &[batch * rows * n4 * 4])?;
    x.gpu()
        .launch(&LAYOUT, "pack")
        .params(&layout_params(rows, cols, n4, trans, batch)?)
        .read(&x)
        .write(&out)
        .dispatch_1d(batch * rows * n4, 256)?;
    Ok(out)
}

/// `op(a)·op(b) + bias`, then ReLU when `relu`. `bias` has shape [N]. The variant is the one
/// chosen for this shape on this device (forced, cached or measured: `gpu::tune`).
pub fn matmul_ex(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    matmul_by(None, a, b, ta, tb, bias, relu)
}

/// [`matmul_ex`] by the variant called `name` (one of [`variants::VARIANTS`]).
pub fn matmul_variant(
    name: &str,
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let v = variants::variant(name).ok_or_else(|| {
        let names: Vec<&str> = variants::VARIANTS.iter().map(|v| v.name).collect();
        Error::invalid(format!(
            "unknown matmul variant '{name}': one of {}",
            names.join(", ")
        ))
    })?;
    matmul_by(Some(v), a, b, ta, tb, bias, relu)
}

/// The sizes of `op(A) · op(B)` (+ bias), checked: the output's shape, A's and B's batch counts
/// (0: not batched), M, K, N and the batch count of the product (at least 1).
struct Product {
    shape: Vec<usize>,
    za: usize,
    zb: usize,
    m: usize,
    k: usize,
    n: usize,
    z: usize,
}

fn product(a: &Tensor, b: &Tensor, ta: bool, tb: bool, bias: Option<&Tensor>) -> Result<Product> {
    let shape = out_shape(a, b, ta, tb)?;
    let (za, m, k) = dims("matmul", a, ta)?;
    let (zb, _, n) = dims("matmul", b, tb)?;
    // Every variant's loop over the summed size grows with k (mm_reg's by one iteration each).
    a.gpu().check_loops(
        "matmul",
        k,
        || format!("a product summing {k} terms per output"),
        "use the exact cloning loss (--clone-loss exact, whose span form never forms such a product), smaller sizes, or another adapter",
    )?;
    if let Some(bias) = bias {
        expect_f32("matmul", bias)?;
        if bias.shape() != [n] {
            return Err(Error::shape(
                "matmul",
                format!("bias {:?} for {n} columns", bias.shape()),
            ));
        }
    }
    Ok(Product {
        shape,
        za,
        zb,
        m,
        k,
        n,
        z: za.max(zb).max(1),
    })
}

fn matmul_by(
    v: Option<&'static variants::Variant>,
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let p = product(a, b, ta, tb, bias)?;
    let Product {
        za, zb, m, k, n, z, ..
    } = p;
    let gpu = a.gpu().clone();
    let n4 = n.div_ceil(4);
    let aligned = n % 4 == 0;
    // Not when a variant is asked for, by name or forced on the device (that variant runs), nor
    // when its grid would pass the device's limit on workgroups per dimension.
    let fits = |g: [u32; 3]| {
        g.iter()
            .all(|&d| d <= gpu.limits.max_compute_workgroups_per_dimension)
    };
    if v.is_none()
        && (tb || !aligned)
        && z * m * n * k <= STRIDED_MAX_FMAS
        && gpu.forced(OP).is_none()
        && strided_grid(m, n, z).is_ok_and(fits)
    {
        return strided(a, b, ta, tb, bias, relu, p, Strided::Column);
    }
    if m == 0 || n == 0 {
        return Tensor::empty(&gpu, &p.shape);
    }
    let v = match v {
        Some(v) => v,
        None => variants::choose(&gpu, m, n, k)?,
    };
    // The register kernel reads a transposed or ragged B through its strides and writes C
    // unpadded: no packing pass before it, no unpacking after.
    if v.kernel == variants::Kernel::Reg && (tb || !aligned) {
        return strided(a, b, ta, tb, bias, relu, p, Strided::Register);
    }
    // B as K × n4 vec4 rows.
    let bpacked;
    let bbuf = if !tb && aligned {
        b
    } else {
        let (rows, cols) = (k, n);
        bpacked = pack(b, zb.max(1), rows, cols, tb)?;
        &bpacked
    };
    let sbb = if zb == 0 { 0 } else { k * n4 };
    let biaspacked;
    let biasbuf = match bias {
        Some(bv) if !aligned => {
            biaspacked = pack(bv, 1, 1, n, false)?;
            Some(&biaspacked)
        }
        other => other,
    };
    let out = Tensor::empty(&gpu, &p.shape)?;
    let padded = padded_c(&out, z, m, n)?;
    let cbuf = padded.as_ref().unwrap_or(&out);
    // A strides.
    let (sam, sak) = if ta { (1, m) } else { (k, 1) };
    let sab = if za == 0 { 0 } else { m * k };
    let flags = u32::from(bias.is_some()) | (u32::from(relu) << 1);
    let params = MatmulP {
        m: u32_of("rows", m)?,
        n4: u32_of("vec4 columns", n4)?,
        k: u32_of("inner extent", k)?,
        sam: u32_of("row stride of A", sam)?,
        sak: u32_of("column stride of A", sak)?,
        sab: u32_of("batch stride of A", sab)?,
        sbb: u32_of("batch stride of B", sbb)?,
        scb: u32_of("batch stride of C", m * n4)?,
        flags,
        ..Default::default()
    };
    gpu.count_flops(2 * (z * m * n * k) as u64);
    let biasraw = biasbuf.unwrap_or(bbuf);
    let ops = variants::Operands {
        a,
        b: bbuf,
        bias: biasraw,
        c: cbuf,
    };
    let (m32, n432) = (u32_of("rows", m)?, u32_of("vec4 columns", n4)?);
    variants::launch(&gpu, v, &params, ops, (m32, n432, u32_of("batch", z)?))?;
    if let Some(padded) = &padded {
        unpack_c(padded, &out, m, n, z)?;
    }
    Ok(out)
}

/// Where a product writes C: `out` itself (None) when N is a multiple of 4, else a buffer of
/// zero-padded vec4 rows, which [`unpack_c`] copies into `out` after the product.
fn padded_c(out: &Tensor, z: usize, m: usize, n: usize) -> Result<Option<Tensor>> {
    if n.is_multiple_of(4) {
        return Ok(None);
    }
    Tensor::empty(out.gpu(), &[z * m * n.div_ceil(4) * 4]).map(Some)
}

/// Copy a product's C from padded vec4 rows into `out` (z × m × n, unpadded).
fn unpack_c(padded: &Tensor, out: &Tensor, m: usize, n: usize, z: usize) -> Result<()> {
    out.gpu()
        .launch(&LAYOUT, "unpack")
        .params(&layout_params(m, n, n.div_ceil(4), false, z)?)
        .read(padded)
        .write(out)
        .dispatch_1d(z * m * n, 256)
}

/// `mm_strided`'s invocations per workgroup (along the columns) and rows per invocation (`SWX`
/// and `SR` in `shaders/matmul.wgsl`).
const STRIDED_BLOCK: (usize, usize) = (16, 4);

/// `mm_strided`'s grid for an m × n product over z batches.
fn strided_grid(m: usize, n: usize, z: usize) -> Result<[u32; 3]> {
    Ok([
        u32_of("column blocks", n.div_ceil(STRIDED_BLOCK.0))?,
        u32_of("row blocks", m.div_ceil(STRIDED_BLOCK.1))?,
        u32_of("batch", z)?,
    ])
}

/// `op(A) · op(B)` (+ bias) (ReLU) by `mm_strided`, whatever its size: each invocation computes
/// one column of four rows, B read through strides (transposed or not), C written unpadded. The
/// launcher runs it for small products that would need packing ([`STRIDED_MAX_FMAS`]); tests
/// call it directly.
pub fn matmul_strided(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    strided(
        a,
        b,
        ta,
        tb,
        bias,
        relu,
        product(a, b, ta, tb, bias)?,
        Strided::Column,
    )
}

/// The kernels that read B through its strides and write C unpadded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strided {
    /// `mm_strided`: one column of four rows per invocation.
    Column,
    /// `mm_reg_s`: the register tile of `mm_reg`.
    Register,
}

#[allow(clippy::too_many_arguments)]
fn strided(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
    p: Product,
    kernel: Strided,
) -> Result<Tensor> {
    let Product {
        shape,
        za,
        zb,
        m,
        k,
        n,
        z,
    } = p;
    let gpu = a.gpu();
    let out = Tensor::empty(gpu, &shape)?;
    if z * m * n == 0 {
        return Ok(out);
    }
    let (sam, sak) = if ta { (1, m) } else { (k, 1) };
    let (sbk, sbn) = if tb { (1, k) } else { (n, 1) };
    gpu.count_flops(2 * (z * m * n * k) as u64);
    let params = MatmulP {
        m: u32_of("rows", m)?,
        n4: u32_of("columns", n)?,
        k: u32_of("inner extent", k)?,
        sam: u32_of("row stride of A", sam)?,
        sak: u32_of("column stride of A", sak)?,
        sab: u32_of("batch stride of A", if za == 0 { 0 } else { m * k })?,
        sbb: u32_of("batch stride of B", if zb == 0 { 0 } else { k * n })?,
        scb: u32_of("batch stride of C", m * n)?,
        flags: u32::from(bias.is_some()) | (u32::from(relu) << 1),
        sbk: u32_of("row stride of B", sbk)?,
        sbn: u32_of("column stride of B", sbn)?,
        nz: u32_of("batch", z)?,
    };
    let ops = variants::Operands {
        a,
        b,
        bias: bias.unwrap_or(b),
        c: &out,
    };
    match kernel {
        Strided::Column => gpu
            .launch(&MATMUL, "mm_strided")
            .params(&params)
            .read(ops.a)
            .read(ops.b)
            .read(ops.bias)
            .write(ops.c)
            .dispatch(strided_grid(m, n, z)?)?,
        Strided::Register => variants::launch_reg_strided(
            gpu,
            &params,
            ops,
            (params.m, u32_of("vec4 columns", n.div_ceil(4))?, params.nz),
        )?,
    }
    Ok(out)
}

/// `op(a)·op(b)`.
pub fn matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    matmul_ex(a, b, ta, tb, None, false)
}

/// A gradient product; sums over the batch when the operand it is for was shared (rank 2).
fn grad_product(x: &Tensor, y: &Tensor, tx: bool, ty: bool, target_rank: usize) -> Result<Tensor> {
    let r = matmul(x, y, tx, ty)?;
    if r.rank() == 3 && target_rank == 2 {
        reduce::sum_axis(&r, 0)
    } else {
        Ok(r)
    }
}

/// Taped `A · Bᵀ` for a constant `B` (n, k) given with its transpose `bt` (k, n), made once: the
/// forward product is `A · bt` and the backward `dA = G · B`, so neither transposes `B` (a
/// transposed operand is repacked on every product). No gradient reaches `B`.
pub fn matmul_const_t(tape: &mut Tape, a: Var, b: &Tensor, bt: &Tensor) -> Result<Var> {
    let (bs, ts) = (b.shape(), bt.shape());
    if bs.len() != 2 || ts.len() != 2 || bs[0] != ts[1] || bs[1] != ts[0] {
        return Err(Error::shape(
            "matmul",
            format!("{ts:?} is not the transpose of {bs:?}"),
        ));
    }
    let out = matmul(tape.value(a), bt, false, false)?;
    let b = b.clone();
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(matmul(g, &b, false, false)?)])),
    ))
}

/// Taped `op(a)·op(b) (+ bias) (ReLU)`.
pub fn matmul_t(
    tape: &mut Tape,
    a: Var,
    b: Var,
    ta: bool,
    tb: bool,
    bias: Option<Var>,
    relu: bool,
) -> Result<Var> {
    let av = tape.value(a).clone();
    let bv = tape.value(b).clone();
    let biasv = bias.map(|v| tape.value(v).clone());
    let out = matmul_ex(&av, &bv, ta, tb, biasv.as_ref(), relu)?;
    let y = out.clone();
    let mut inputs = vec![a, b];
    inputs.extend(bias);
    Ok(tape.push(
        out,
        &inputs,
        Box::new(move |g, need| {
            let n = g.shape()[g.rank() - 1];
            let rows = g.numel() / n.max(1);
            // With ReLU and a bias gradient to take, both in one launch.
            let mut dbias = None;
            let g = match (relu, need.get(2) == Some(&true)) {
                (true, true) => {
                    let flat = |t: &Tensor| t.reshape(&[rows, n]);
                    let (gm, sum) = reduce::relu_bwd_sum_rows(&flat(g)?, &flat(&y)?)?;
                    dbias = Some(sum);
                    gm.reshape(g.shape())?
                }
                (true, false) => elementwise::relu_bwd(g, &y)?,
                (false, _) => g.clone(),
            };
            let da = if need[0] {
                Some(if ta {
                    grad_product(&bv, &g, tb, true, av.rank())?
                } else {
                    grad_product(&g, &bv, false, !tb, av.rank())?
                })
            } else {
                None
            };
            let db = if need[1] {
                Some(if tb {
                    grad_product(&g, &av, true, ta, bv.rank())?
                } else {
                    grad_product(&av, &g, !ta, false, bv.rank())?
                })
            } else {
                None
            };
            let mut out = vec![da, db];
            if need.len() > 2 {
                out.push(match dbias {
                    Some(db) => Some(db),
                    None if need[2] => Some(reduce::sum_axis(&g.reshape(&[rows, n])?, 0)?),
                    None => None,
                });
            }
            Ok(out)
        }),
    ))
}

/// A linear layer's product: `x Wᵀ (+ b)` with x (batch, in), W (out, in), b (out).
pub fn linear(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, ep: Epilogue) -> Result<Var> {
    let b = match ep {
        Epilogue::Bias | Epilogue::BiasRelu => b,
        _ => None,
    };
    matmul_t(tape, x, w, false, true, b, ep.relu())
}
