//! Matrix products `C = op(A)·op(B) (+ bias) (ReLU)` with all four transpose combinations and an
//! optional leading batch dimension on either operand (a rank-2 operand is shared by every batch).
//!
//! Two kernels: `mm_reg` (register tiles, vec4 loads, no workgroup memory; chosen on CPU adapters
//! such as lavapipe) and `mm_tiled` (workgroup-shared 64×64 tiles; chosen on GPUs). B is packed to
//! zero-padded vec4 rows only when it is transposed or N is not a multiple of 4; C likewise.

use super::{elementwise, expect_f32, reduce, LAYOUT, MATMUL};
use crate::gpu::{KernelFamily, Shader};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Register-tile shapes (rows, vec4 columns) the launcher may use (`--reg-tile`); the shader test
/// validates the loop form of each, the unit test below the generated form.
pub const REG_TILES: &[(u32, u32)] = &[
    (4, 2),
    (8, 2),
    (8, 4),
    (16, 4),
    (16, 8),
    (16, 12),
    (24, 8),
    (32, 4),
    (32, 8),
];

/// The default register tile (rows, vec4 columns), chosen by `symclone-gpu bench` on lavapipe
/// (1024³: 4×2 8.8 GFLOP/s, 16×8 ≈ 25–27, 32×8 ≈ 28–30; see BENCHMARKS.md).
pub const DEFAULT_REG_TILE: (u32, u32) = (32, 8);

/// Invocations per workgroup of `mm_reg` (along the columns; a workgroup owns one row block).
pub const REG_WORKGROUP: u32 = 8;

/// The marker in `shaders/matmul.wgsl` where the shared prelude (parameters, bindings, epilogue)
/// ends; the generated register kernel is appended to the prelude.
const REG_MARKER: &str = "// ---- Register-tiled";

/// The register tile actually run for an M × n4 product: the configured tile, shrunk (to a power
/// of two) where the matrix is smaller than one workgroup's block, so small or thin products do not
/// compute dozens of clamped duplicate columns. Returns (rows, vec4 columns).
fn effective_reg_tile((tm, tn): (u32, u32), m: u32, n4: u32) -> (u32, u32) {
    let tm = tm.min(m.max(1).next_power_of_two());
    let tn = tn.min(n4.div_ceil(REG_WORKGROUP).max(1).next_power_of_two());
    (tm, tn)
}

/// The WGSL of `mm_reg` fully unrolled for a `tm` × `tn` register tile.
///
/// The loop form in `shaders/matmul.wgsl` keeps its accumulators in a dynamically indexed
/// function-scope array; lavapipe leaves such arrays in memory (every update a load, a blend and a
/// store through an address computed per iteration). Here every accumulator is its own `vec4`
/// variable and every index a literal, so LLVM sees plain SSA values. Rows come from the
/// workgroup id, so the A row offsets are the same across an invocation's SIMD lanes, and nothing
/// returns early: rows and columns past the edge are clamped for loads and skipped at the store.
pub fn reg_source(tm: u32, tn: u32) -> Result<String> {
    use std::fmt::Write;
    let cut = MATMUL
        .src
        .find(REG_MARKER)
        .ok_or_else(|| Error::Gpu(format!("matmul.wgsl lost its `{REG_MARKER}` marker")))?;
    let mut s = MATMUL.src[..cut].to_string();
    let wx = REG_WORKGROUP;
    let _ = writeln!(
        s,
        "// ---- Register-tiled, generated: {tm} rows x {tn} vec4 columns per invocation. ----"
    );
    let _ = writeln!(s, "@compute @workgroup_size({wx}, 1, 1)");
    s += "fn mm_reg(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {\n";
    let _ = writeln!(s, "    let c0 = (wid.x * {wx}u + lid.x) * {tn}u;");
    let _ = writeln!(s, "    let r0 = wid.y * {tm}u;");
    s += "    let z = wid.z;\n";
    for i in 0..tm {
        let _ = writeln!(
            s,
            "    let ar{i} = z * p.sab + min(r0 + {i}u, p.m - 1u) * p.sam;"
        );
    }
    for j in 0..tn {
        let _ = writeln!(s, "    let bc{j} = z * p.sbb + min(c0 + {j}u, p.n4 - 1u);");
    }
    for i in 0..tm {
        for j in 0..tn {
            let _ = writeln!(s, "    var c{i}_{j} = vec4<f32>(0.0);");
        }
    }
    s += "    var ak = 0u;\n    var bk = 0u;\n    for (var k = 0u; k < p.k; k += 1u) {\n";
    for j in 0..tn {
        let _ = writeln!(s, "        let b{j} = b[bk + bc{j}];");
    }
    for i in 0..tm {
        let _ = writeln!(s, "        let a{i} = vec4<f32>(a[ar{i} + ak]);");
        for j in 0..tn {
            let _ = writeln!(s, "        c{i}_{j} = fma(a{i}, b{j}, c{i}_{j});");
        }
    }
    s += "        ak += p.sak;\n        bk += p.n4;\n    }\n";
    for i in 0..tm {
        let _ = writeln!(s, "    if r0 + {i}u < p.m {{");
        let _ = writeln!(s, "        let o{i} = z * p.scb + (r0 + {i}u) * p.n4;");
        for j in 0..tn {
            let _ = writeln!(s, "        if c0 + {j}u < p.n4 {{");
            let _ = writeln!(
                s,
                "            c[o{i} + c0 + {j}u] = epilogue(c{i}_{j}, c0 + {j}u);"
            );
            s += "        }\n";
        }
        s += "    }\n";
    }
    s += "}\n";
    Ok(s)
}

/// The generated `mm_reg` shader for a tile, built once per tile and kept for the process (a
/// handful of small strings: the pipeline cache keys on the shader's name).
fn reg_shader(tm: u32, tn: u32) -> Result<&'static Shader> {
    static CACHE: OnceLock<Mutex<HashMap<(u32, u32), &'static Shader>>> = OnceLock::new();
    let mut c = CACHE.get_or_init(Default::default).lock().unwrap();
    if let Some(s) = c.get(&(tm, tn)) {
        return Ok(s);
    }
    let src: &'static str = Box::leak(reg_source(tm, tn)?.into_boxed_str());
    let name: &'static str = Box::leak(format!("matmul_reg_{tm}x{tn}").into_boxed_str());
    let sh: &'static Shader = Box::leak(Box::new(Shader { name, src }));
    c.insert((tm, tn), sh);
    Ok(sh)
}

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

fn layout_params(rows: usize, cols: usize, n4: usize, trans: bool, batch: usize) -> [u32; 8] {
    [
        rows as u32,
        cols as u32,
        n4 as u32,
        trans as u32,
        batch as u32,
        0,
        0,
        0,
    ]
}

/// Pack x (batch of rows × cols, or its transpose) into zero-padded vec4 rows.
fn pack(x: &Tensor, batch: usize, rows: usize, cols: usize, trans: bool) -> Result<Tensor> {
    let n4 = cols.div_ceil(4);
    let out = Tensor::empty(x.gpu(), &[batch * rows * n4 * 4])?;
    x.gpu()
        .launch(&LAYOUT, "pack")
        .params(&layout_params(rows, cols, n4, trans, batch))
        .read(x.raw())
        .write(out.raw())
        .dispatch_1d(batch * rows * n4, 256)?;
    Ok(out)
}

/// `op(a)·op(b) + bias`, then ReLU when `relu`. `bias` has shape [N].
pub fn matmul_ex(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    bias: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let shape = out_shape(a, b, ta, tb)?;
    let (za, m, k) = dims("matmul", a, ta)?;
    let (zb, _, n) = dims("matmul", b, tb)?;
    let z = za.max(zb).max(1);
    if let Some(bias) = bias {
        expect_f32("matmul", bias)?;
        if bias.shape() != [n] {
            return Err(Error::shape(
                "matmul",
                format!("bias {:?} for {n} columns", bias.shape()),
            ));
        }
    }
    let gpu = a.gpu().clone();
    let n4 = n.div_ceil(4);
    let aligned = n % 4 == 0;
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
    let out = Tensor::empty(&gpu, &shape)?;
    let padded;
    let cbuf = if aligned {
        &out
    } else {
        padded = Tensor::empty(&gpu, &[z * m * n4 * 4])?;
        &padded
    };
    // A strides.
    let (sam, sak) = if ta { (1, m) } else { (k, 1) };
    let sab = if za == 0 { 0 } else { m * k };
    let flags = u32::from(bias.is_some()) | (u32::from(relu) << 1);
    let params: [u32; 12] = [
        m as u32,
        n4 as u32,
        k as u32,
        sam as u32,
        sak as u32,
        sab as u32,
        sbb as u32,
        (m * n4) as u32,
        flags,
        0,
        0,
        0,
    ];
    if m > 0 && n > 0 {
        let biasraw = biasbuf.map(|t| t.raw()).unwrap_or(bbuf.raw());
        match gpu.family() {
            KernelFamily::Register => {
                let (tm, tn) = effective_reg_tile(gpu.reg_tile(), m as u32, n4 as u32);
                let gx = (n4 as u32).div_ceil(tn * REG_WORKGROUP);
                let gy = (m as u32).div_ceil(tm);
                gpu.launch(reg_shader(tm, tn)?, "mm_reg")
                    .params(&params)
                    .read(a.raw())
                    .read(bbuf.raw())
                    .read(biasraw)
                    .write(cbuf.raw())
                    .dispatch([gx, gy, z as u32])?;
            }
            KernelFamily::Workgroup => {
                let gx = (n4 as u32).div_ceil(16);
                let gy = (m as u32).div_ceil(64);
                gpu.launch(&MATMUL, "mm_tiled")
                    .params(&params)
                    .read(a.raw())
                    .read(bbuf.raw())
                    .read(biasraw)
                    .write(cbuf.raw())
                    .dispatch([gx, gy, z as u32])?;
            }
        }
        if !aligned {
            gpu.launch(&LAYOUT, "unpack")
                .params(&layout_params(m, n, n4, false, z))
                .read(cbuf.raw())
                .write(out.raw())
                .dispatch_1d(z * m * n, 256)?;
        }
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
            let g = if relu {
                elementwise::relu_bwd(g, &y)?
            } else {
                g.clone()
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
                out.push(if need[2] {
                    let n = g.shape()[g.rank() - 1];
                    Some(reduce::sum_axis(
                        &g.reshape(&[g.numel() / n.max(1), n])?,
                        0,
                    )?)
                } else {
                    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_register_kernel_validates() {
        let mut tiles: Vec<(u32, u32)> = REG_TILES.to_vec();
        // The shrunken tiles small or thin products run.
        for &t in REG_TILES {
            for (m, n4) in [(1, 1), (7, 2), (33, 9), (129, 17), (1000, 250)] {
                tiles.push(effective_reg_tile(t, m, n4));
            }
        }
        tiles.sort_unstable();
        tiles.dedup();
        for (tm, tn) in tiles {
            let src = reg_source(tm, tn).unwrap();
            crate::gpu::shader::validate("matmul_reg", &src)
                .unwrap_or_else(|e| panic!("{tm}x{tn}: {e}"));
        }
    }

    #[test]
    fn effective_tiles_shrink_only_past_the_edge() {
        assert_eq!(effective_reg_tile((32, 8), 1024, 256), (32, 8));
        assert_eq!(effective_reg_tile((32, 8), 7, 2), (8, 1));
        assert_eq!(effective_reg_tile((32, 8), 1, 1), (1, 1));
        assert_eq!(effective_reg_tile((16, 4), 33, 9), (16, 2));
    }
}
