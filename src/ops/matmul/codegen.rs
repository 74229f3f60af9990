//! The matrix product's kernels generated in Rust: `mm_reg` with every accumulator a named `vec4`
//! and every index a literal (what CPU drivers such as lavapipe compile well) for each register
//! tile, and `mm_subgroup` (`shaders/matmul_subgroup.wgsl` behind the matmul prelude). Each is
//! built once per process ([`MatmulGen::shader`]).

use crate::gpu::shader::{Generate, Generated, Shader};
use crate::ops::MATMUL;
use crate::{Error, Result};
use std::fmt::Write;

/// A generated matrix-product kernel and its tile: the key of its shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulGen {
    /// `mm_reg` with a `tm` × `tn` (rows × vec4 columns) register tile.
    Reg { tm: u32, tn: u32 },
    /// `mm_reg_h`: `mm_reg` whose B holds half-precision pairs (each vec4 of a row as two `u32`,
    /// decoded with integer operations: every adapter, `SHADER_F16` or not).
    RegHalf { tm: u32, tn: u32 },
    /// `mm_reg_s`: `mm_reg` whose B is read as scalars through its strides (transposed or not,
    /// any N) and whose C is written unpadded, so a product with a transposed B or an N that is
    /// not a multiple of 4 needs no packing or unpacking pass around it.
    RegStrided { tm: u32, tn: u32 },
    /// `mm_subgroup` (`shaders/matmul_subgroup.wgsl` behind the matmul prelude): needs an adapter
    /// with subgroup operations, so it is not among the portable sources.
    Subgroup,
}

impl Generate for MatmulGen {
    /// `matmul_reg_32x8`, `matmul_subgroup`.
    fn name(self) -> String {
        match self {
            MatmulGen::Reg { tm, tn } => format!("matmul_reg_{tm}x{tn}"),
            MatmulGen::RegHalf { tm, tn } => format!("matmul_regh_{tm}x{tn}"),
            MatmulGen::RegStrided { tm, tn } => format!("matmul_regs_{tm}x{tn}"),
            MatmulGen::Subgroup => "matmul_subgroup".into(),
        }
    }

    fn source(self) -> Result<String> {
        match self {
            MatmulGen::Reg { tm, tn } => matmul_reg_source(tm, tn),
            MatmulGen::RegHalf { tm, tn } => matmul_reg_half_source(tm, tn),
            MatmulGen::RegStrided { tm, tn } => matmul_reg_strided_source(tm, tn),
            MatmulGen::Subgroup => subgroup_source(),
        }
    }
}

static SHADERS: Generated<MatmulGen> = Generated::new();

impl MatmulGen {
    /// The shader of this variant, built on first use.
    pub fn shader(self) -> Result<&'static Shader> {
        SHADERS.shader(self)
    }
}

/// Every `mm_reg` kernel the launcher can run: every register tile and every tile it shrinks to
/// (`mm_subgroup` needs subgroups, so it is not among the portable sources).
pub fn generated_variants() -> Vec<MatmulGen> {
    reg_tiles_in_use()
        .into_iter()
        .flat_map(|(tm, tn)| {
            [
                MatmulGen::Reg { tm, tn },
                MatmulGen::RegHalf { tm, tn },
                MatmulGen::RegStrided { tm, tn },
            ]
        })
        .collect()
}

/// The WGSL of `mm_subgroup`: the matmul prelude and `shaders/matmul_subgroup.wgsl`.
pub fn subgroup_source() -> Result<String> {
    Ok(matmul_prelude()? + include_str!("../../../shaders/matmul_subgroup.wgsl"))
}

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
    reg_source(tm, tn, BForm::Packed)
}

/// Four binary16 values (two words, the low half first) as f32, decoded with integer operations:
/// exact for every finite half (normals by moving the exponent and the mantissa into place,
/// subnormals as `m · 2⁻²⁴`, a normal f32, so no device's flushing of f32 subnormals touches
/// them). `unpack2x16float` would do the same in one instruction, but naga and wgpu grant it only
/// with the `SHADER_F16_IN_F32` downlevel flag, which Mesa's Vulkan drivers lack without
/// `SHADER_F16`; this runs on every adapter. Infinities and NaNs are not decoded: a
/// [`super::half::HalfMatrix`] holds finite values only.
const HALF4: &str = "fn half4(w: vec2<u32>) -> vec4<f32> {
    let h = vec4<u32>(w.x & 0xffffu, w.x >> 16u, w.y & 0xffffu, w.y >> 16u);
    let e = (h >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
    let m = h & vec4<u32>(0x3ffu);
    let normal = bitcast<vec4<f32>>(((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u)));
    let v = select(normal, vec4<f32>(m) * 5.9604645e-8, e == vec4<u32>(0u));
    return select(v, -v, (h & vec4<u32>(0x8000u)) != vec4<u32>(0u));
}
";

/// [`matmul_reg_source`] with B in half precision: binding 2 read as `array<vec2<u32>>`, each
/// `vec2` the four halves of one vec4 of B, decoded by [`HALF4`]; the products and sums stay f32,
/// so the result is `mm_reg`'s on B rounded to half precision.
pub fn matmul_reg_half_source(tm: u32, tn: u32) -> Result<String> {
    reg_source(tm, tn, BForm::Half)
}

/// [`matmul_reg_source`] with B read as scalars through its strides (`p.sbk`, `p.sbn`, `p.sbb`)
/// and C written unpadded by `strided_store`, where `p.n4` holds N itself (as for `mm_strided`):
/// every invocation still owns `tm` rows × `tn` groups of four columns, its four B scalars of a
/// group loaded with their column clamped to N − 1 (columns past the edge are computed, never
/// stored). The sum over k runs in the same order with the same `fma`s, so C is `mm_reg`'s on the
/// packed operands bit for bit.
pub fn matmul_reg_strided_source(tm: u32, tn: u32) -> Result<String> {
    reg_source(tm, tn, BForm::Strided)
}

/// How the register kernel reads B.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BForm {
    /// Packed vec4 rows.
    Packed,
    /// Packed rows of half-precision pairs.
    Half,
    /// Scalars through strides, C unpadded.
    Strided,
}

fn reg_source(tm: u32, tn: u32, form: BForm) -> Result<String> {
    let mut s = matmul_prelude()?;
    let (entry, load) = match form {
        BForm::Half => {
            s += "@group(0) @binding(2) var<storage, read> bh: array<vec2<u32>>;\n";
            s += HALF4;
            ("mm_reg_h", "half4(bh[bk + bc{j}])")
        }
        BForm::Packed => ("mm_reg", "b[bk + bc{j}]"),
        BForm::Strided => (
            "mm_reg_s",
            "vec4<f32>(bs[bk + bc{j}_0], bs[bk + bc{j}_1], bs[bk + bc{j}_2], bs[bk + bc{j}_3])",
        ),
    };
    let strided = form == BForm::Strided;
    let wx = REG_WORKGROUP;
    let _ = writeln!(
        s,
        "// ---- Register-tiled, generated: {tm} rows x {tn} vec4 columns per invocation. ----"
    );
    let _ = writeln!(s, "@compute @workgroup_size({wx}, 1, 1)");
    let _ = writeln!(s, "fn {entry}(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {{");
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
        if strided {
            for t in 0..4 {
                let _ = writeln!(
                    s,
                    "    let bc{j}_{t} = z * p.sbb + min((c0 + {j}u) * 4u + {t}u, p.n4 - 1u) * p.sbn;"
                );
            }
        } else {
            let _ = writeln!(s, "    let bc{j} = z * p.sbb + min(c0 + {j}u, p.n4 - 1u);");
        }
    }
    for i in 0..tm {
        for j in 0..tn {
            let _ = writeln!(s, "    var c{i}_{j} = vec4<f32>(0.0);");
        }
    }
    s += "    var ak = 0u;\n    var bk = 0u;\n    for (var k = 0u; k < p.k; k += 1u) {\n";
    for j in 0..tn {
        let _ = writeln!(
            s,
            "        let b{j} = {};",
            load.replace("{j}", &j.to_string())
        );
    }
    for i in 0..tm {
        let _ = writeln!(s, "        let a{i} = vec4<f32>(a[ar{i} + ak]);");
        for j in 0..tn {
            let _ = writeln!(s, "        c{i}_{j} = fma(a{i}, b{j}, c{i}_{j});");
        }
    }
    s += "        ak += p.sak;\n";
    s += if strided {
        "        bk += p.sbk;\n    }\n"
    } else {
        "        bk += p.n4;\n    }\n"
    };
    if strided {
        // C unpadded: each group's epilogue once, its columns up to N stored as scalars.
        for j in 0..tn {
            let _ = writeln!(s, "    let q{j} = (c0 + {j}u) * 4u;");
        }
        for i in 0..tm {
            let _ = writeln!(s, "    if r0 + {i}u < p.m {{");
            let _ = writeln!(s, "        let o{i} = z * p.scb + (r0 + {i}u) * p.n4;");
            for j in 0..tn {
                let _ = writeln!(s, "        if q{j} < p.n4 {{");
                let _ = writeln!(s, "            let v = epilogue_s(c{i}_{j}, q{j});");
                let _ = writeln!(s, "            cs[o{i} + q{j}] = v.x;");
                for (t, lane) in ["y", "z", "w"].iter().enumerate() {
                    let t = t + 1;
                    let _ = writeln!(
                        s,
                        "            if q{j} + {t}u < p.n4 {{ cs[o{i} + q{j} + {t}u] = v.{lane}; }}"
                    );
                }
                s += "        }\n";
            }
            s += "    }\n";
        }
        s += "}\n";
        return Ok(s);
    }
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
            let src = matmul_reg_half_source(tm, tn).unwrap();
            crate::gpu::shader::validate("matmul_regh", &src)
                .unwrap_or_else(|e| panic!("half {tm}x{tn}: {e}"));
            let src = matmul_reg_strided_source(tm, tn).unwrap();
            crate::gpu::shader::validate("matmul_regs", &src)
                .unwrap_or_else(|e| panic!("strided {tm}x{tn}: {e}"));
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
