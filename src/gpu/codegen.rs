//! Kernels generated in Rust: register-tiled matrix-product and convolution kernels with every
//! accumulator a named `vec4` and every index a literal (what CPU drivers such as lavapipe compile
//! well), and the one cache that builds each variant's source once per process.

use super::shader::{Shader, MATMUL};
use crate::{Error, Result};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

mod conv;
pub use conv::{
    conv_bwd_rows_source, conv_dw_reg_source, conv_reg_rows_source, conv_reg_source, scalar_tile,
    CONV_BWD_ROWS, CONV_REG_ROWS, CONV_REG_WG,
};

/// A generated kernel and its tile: the cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generated {
    /// `mm_reg` with a `tm` × `tn` (rows × vec4 columns) register tile.
    MatmulReg { tm: u32, tn: u32 },
    /// `conv_reg`: a k×k convolution, `to` output channels × `tx` columns per invocation.
    ConvReg { k: u32, to: u32, tx: u32 },
    /// `conv_dw_reg`: the weight gradient, `to` output × `ti` input channels per invocation.
    ConvDwReg { k: u32, to: u32, ti: u32 },
    /// `conv_bwd_reg`: the input, weight and bias gradients of a layer with one input channel
    /// and forward padding `pad`, `tx` columns per invocation.
    ConvBwdReg { k: u32, tx: u32, pad: u32 },
    /// `mm_subgroup` (`shaders/matmul_subgroup.wgsl` behind the matmul prelude): needs an adapter
    /// with subgroup operations, so it is not among the portable sources.
    MatmulSubgroup,
}

impl Generated {
    /// The variant's name: `matmul_reg_32x8`, `conv_reg_3_16x28`, `conv_dw_reg_3_16x2`,
    /// `conv_bwd_reg_3_1x28_p1`.
    pub fn name(self) -> String {
        match self {
            Generated::MatmulReg { tm, tn } => format!("matmul_reg_{tm}x{tn}"),
            Generated::ConvReg { k, to, tx } => format!("conv_reg_{k}_{to}x{tx}"),
            Generated::ConvDwReg { k, to, ti } => format!("conv_dw_reg_{k}_{to}x{ti}"),
            Generated::ConvBwdReg { k, tx, pad } => format!("conv_bwd_reg_{k}_1x{tx}_p{pad}"),
            Generated::MatmulSubgroup => "matmul_subgroup".into(),
        }
    }

    /// The WGSL source of this variant.
    pub fn source(self) -> Result<String> {
        Ok(match self {
            Generated::MatmulReg { tm, tn } => matmul_reg_source(tm, tn)?,
            Generated::ConvReg { k, to, tx } => conv_reg_source(k, to, tx),
            Generated::ConvDwReg { k, to, ti } => conv_dw_reg_source(k, to, ti),
            Generated::ConvBwdReg { k, tx, pad } => conv_bwd_rows_source(k, tx, pad),
            Generated::MatmulSubgroup => {
                matmul_prelude()? + include_str!("../../shaders/matmul_subgroup.wgsl")
            }
        })
    }
}

/// The shader of a generated variant, built once and kept for the process (a handful of small
/// strings: the pipeline cache keys on the shader's name).
pub fn shader(g: Generated) -> Result<&'static Shader> {
    static CACHE: OnceLock<Mutex<HashMap<Generated, &'static Shader>>> = OnceLock::new();
    let mut c = CACHE.get_or_init(Default::default).lock().unwrap();
    if let Some(s) = c.get(&g) {
        return Ok(s);
    }
    let src: &'static str = Box::leak(g.source()?.into_boxed_str());
    let name: &'static str = Box::leak(g.name().into_boxed_str());
    let sh: &'static Shader = Box::leak(Box::new(Shader { name, src }));
    c.insert(g, sh);
    Ok(sh)
}

// ---- Matrix product ----------------------------------------------------------------------------

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
pub fn effective_reg_tile((tm, tn): (u32, u32), m: u32, n4: u32) -> (u32, u32) {
    let tm = tm.min(m.max(1).next_power_of_two());
    let tn = tn.min(n4.div_ceil(REG_WORKGROUP).max(1).next_power_of_two());
    (tm, tn)
}

/// Every tile `mm_reg` can run: each of [`REG_TILES`] and every tile [`effective_reg_tile`] shrinks
/// it to, sorted.
pub fn reg_tiles_in_use() -> Vec<(u32, u32)> {
    let mut tiles = Vec::new();
    for &(tm, tn) in REG_TILES {
        for m in 1..=tm {
            for n4 in 1..=tn * REG_WORKGROUP {
                tiles.push(effective_reg_tile((tm, tn), m, n4));
            }
        }
    }
    tiles.sort_unstable();
    tiles.dedup();
    tiles
}

/// `shaders/matmul.wgsl` up to [`REG_MARKER`]: parameters, bindings and the epilogue.
fn matmul_prelude() -> Result<String> {
    let cut = MATMUL
        .src
        .find(REG_MARKER)
        .ok_or_else(|| Error::Gpu(format!("matmul.wgsl lost its `{REG_MARKER}` marker")))?;
    Ok(MATMUL.src[..cut].to_string())
}

/// The WGSL of `mm_reg` fully unrolled for a `tm` × `tn` register tile.
///
/// The loop form in `shaders/matmul.wgsl` keeps its accumulators in a dynamically indexed
/// function-scope array; lavapipe leaves such arrays in memory (every update a load, a blend and a
/// store through an address computed per iteration). Here every accumulator is its own `vec4`
/// variable and every index a literal, so LLVM sees plain SSA values. Rows come from the
/// workgroup id, so the A row offsets are the same across an invocation's SIMD lanes, and nothing
/// returns early: rows and columns past the edge are clamped for loads and skipped at the store.
pub fn matmul_reg_source(tm: u32, tn: u32) -> Result<String> {
    let mut s = matmul_prelude()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_register_kernel_validates() {
        let tiles = reg_tiles_in_use();
        for t in REG_TILES {
            assert!(tiles.contains(t));
        }
        // Larger products shrink to nothing new.
        for &t in REG_TILES {
            for (m, n4) in [(1, 1), (7, 2), (33, 9), (129, 17), (1000, 250)] {
                assert!(tiles.contains(&effective_reg_tile(t, m, n4)));
            }
        }
        for (tm, tn) in tiles {
            let src = matmul_reg_source(tm, tn).unwrap();
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
