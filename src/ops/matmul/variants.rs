//! The matrix-product variants, numbered like llm.c's kernels but named by what they do, and the
//! choice among them by measurement (`gpu::tune`): each runs the same `MatmulP` parameters and the
//! same packed B and C, so a variant is one dispatch.
//!
//! | variant          | family    | workgroup | outputs per invocation | workgroup memory |
//! |------------------|-----------|-----------|------------------------|------------------|
//! | `mm_reg`         | register  | 8         | the register tile (32×8 vec4 by default) | none |
//! | `mm_block64x64`  | workgroup | 256       | 4×4                    | 8.5 KiB (2 buffers) |
//! | `mm_block128x64` | workgroup | 256       | 8×4                    | 12.3 KiB         |
//! | `mm_block64x128` | workgroup | 256       | 4×8                    | 12.3 KiB         |
//! | `mm_tiled`       | workgroup | 256       | 4×1 vec4 (the first version, one buffer, A stride 64) | 8 KiB |
//! | `mm_subgroup`    | workgroup | 64        | 8×2 vec4, A shared across the subgroup by shuffles | none |
//!
//! `mm_subgroup` runs only where the adapter has subgroup operations; elsewhere it is no candidate.

use super::codegen::{effective_reg_tile, MatmulGen, DEFAULT_REG_TILE, REG_TILES, REG_WORKGROUP};
use super::MatmulP;
use crate::gpu::tune::{log2_bucket, Candidate, Op};
use crate::gpu::{Gpu, KernelFamily};
use crate::ops::MATMUL;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Instant;

/// How a variant computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `mm_reg`, generated for the device's register tile.
    Reg,
    /// `mm_block` with `bm` rows × `bn4` vec4 columns per workgroup, `tm` rows × `tn` vec4 columns
    /// per invocation.
    Block { bm: u32, bn4: u32, tm: u32, tn: u32 },
    /// `mm_tiled`: 64×64 tiles, 4 rows × 1 vec4 per invocation.
    Tiled,
    /// `mm_subgroup`: 8 rows × 2 vec4 columns per invocation, 64 invocations along the columns.
    Subgroup,
}

/// Rows, vec4 columns and invocations (along the columns) of one `mm_subgroup` workgroup
/// (`SG_TM`, `SG_TN`, `SG_WX` in `shaders/matmul_subgroup.wgsl`).
const SUBGROUP_BLOCK: (u32, u32, u32) = (8, 2, 64);

/// One matrix-product variant.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub name: &'static str,
    pub family: KernelFamily,
    pub kernel: Kernel,
}

const fn block(name: &'static str, bm: u32, bn4: u32, tm: u32, tn: u32) -> Variant {
    Variant {
        name,
        family: KernelFamily::Workgroup,
        kernel: Kernel::Block { bm, bn4, tm, tn },
    }
}

/// Every variant, each family's default first (what a forced family runs without timing).
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "mm_reg",
        family: KernelFamily::Register,
        kernel: Kernel::Reg,
    },
    block("mm_block64x64", 64, 16, 4, 1),
    block("mm_block128x64", 128, 16, 8, 1),
    block("mm_block64x128", 64, 32, 4, 2),
    Variant {
        name: "mm_tiled",
        family: KernelFamily::Workgroup,
        kernel: Kernel::Tiled,
    },
    Variant {
        name: "mm_subgroup",
        family: KernelFamily::Workgroup,
        kernel: Kernel::Subgroup,
    },
];

impl Variant {
    /// Whether `gpu` can run this variant (`mm_subgroup` needs subgroup operations).
    pub fn runs_on(&self, gpu: &Gpu) -> bool {
        self.kernel != Kernel::Subgroup || gpu.has_subgroups()
    }
}

/// The block shapes `mm_block` is specialised to, as shader constants (for the shader tests).
pub fn block_constants() -> Vec<Vec<(&'static str, u32)>> {
    VARIANTS
        .iter()
        .filter_map(|v| match v.kernel {
            Kernel::Block { bm, bn4, tm, tn } => Some(vec![
                ("BLK_M", bm),
                ("BLK_N4", bn4),
                ("THR_M", tm),
                ("THR_N", tn),
            ]),
            _ => None,
        })
        .collect()
}

/// The variant called `name`.
pub fn variant(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// The op the tuner chooses a variant of (its choices list first: `tune`, the run report).
pub const OP: Op = Op::new(0, "matmul");

/// The register tile `mm_reg` runs on one device (rows, vec4 columns).
struct RegTile((u32, u32));

impl Default for RegTile {
    fn default() -> RegTile {
        RegTile(DEFAULT_REG_TILE)
    }
}

/// The register tile (rows, vec4 columns) of the register matrix-product kernel on `gpu`.
pub fn reg_tile(gpu: &Gpu) -> (u32, u32) {
    gpu.with_state(|t: &mut RegTile| t.0)
}

/// Choose the register tile on `gpu` (one of [`REG_TILES`]).
pub fn set_reg_tile(gpu: &Gpu, t: (u32, u32)) -> Result<()> {
    if !REG_TILES.contains(&t) {
        return Err(Error::invalid(format!(
            "register tile {t:?} is not one of {:?}",
            REG_TILES
        )));
    }
    gpu.with_state(|r: &mut RegTile| r.0 = t);
    Ok(())
}

/// Apply a register tile given as `ROWSxCOLS` (e.g. `8x2`), as the benchmark's `--reg-tile`
/// names it.
pub fn set_reg_tile_str(gpu: &Gpu, t: &str) -> Result<()> {
    let (r, c) = t
        .split_once('x')
        .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
        .ok_or_else(|| Error::invalid(format!("--reg-tile '{t}': expected ROWSxCOLS, e.g. 8x2")))?;
    set_reg_tile(gpu, (r, c))
}

fn candidates(gpu: &Gpu) -> Vec<Candidate> {
    VARIANTS
        .iter()
        .filter(|v| v.runs_on(gpu))
        .map(|v| Candidate {
            name: v.name,
            family: v.family,
        })
        .collect()
}

/// The buffers of one launch: A (scalars through strides), packed B, bias (or any buffer), packed C.
pub(super) struct Operands<'a> {
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub bias: &'a Tensor,
    pub c: &'a Tensor,
}

/// Dispatch `v` for (m rows, n4 vec4 columns, z batches).
pub(super) fn launch(
    gpu: &Arc<Gpu>,
    v: &Variant,
    p: &MatmulP,
    o: Operands,
    (m, n4, z): (u32, u32, u32),
) -> Result<()> {
    let (l, groups) = match v.kernel {
        Kernel::Reg => {
            let (tm, tn) = effective_reg_tile(reg_tile(gpu), m, n4);
            let sh = MatmulGen::Reg { tm, tn }.shader()?;
            let g = [n4.div_ceil(tn * REG_WORKGROUP), m.div_ceil(tm), z];
            (gpu.launch(sh, "mm_reg"), g)
        }
        Kernel::Tiled => (
            gpu.launch(&MATMUL, "mm_tiled"),
            [n4.div_ceil(16), m.div_ceil(64), z],
        ),
        Kernel::Block { bm, bn4, tm, tn } => (
            gpu.launch(&MATMUL, "mm_block")
                .constant("BLK_M", bm)
                .constant("BLK_N4", bn4)
                .constant("THR_M", tm)
                .constant("THR_N", tn),
            [n4.div_ceil(bn4), m.div_ceil(bm), z],
        ),
        Kernel::Subgroup => {
            if !gpu.has_subgroups() {
                return Err(Error::invalid(format!(
                    "mm_subgroup needs subgroup operations, which {} does not offer",
                    gpu.info.name
                )));
            }
            let (tm, tn, wx) = SUBGROUP_BLOCK;
            let sh = MatmulGen::Subgroup.shader()?;
            let g = [n4.div_ceil(tn * wx), m.div_ceil(tm), z];
            (gpu.launch(sh, "mm_subgroup"), g)
        }
    };
    l.params(p)
        .read(o.a)
        .read(o.b)
        .read(o.bias)
        .write(o.c)
        .dispatch(groups)
}

/// Dispatch `mm_reg_s` (B through its strides, C unpadded; `p.n4` holds N) for (m rows, n4
/// groups of four columns, z batches), on the device's register tile shrunk as `mm_reg`'s is.
pub(super) fn launch_reg_strided(
    gpu: &Arc<Gpu>,
    p: &MatmulP,
    o: Operands,
    (m, n4, z): (u32, u32, u32),
) -> Result<()> {
    let (tm, tn) = effective_reg_tile(reg_tile(gpu), m, n4);
    let sh = MatmulGen::RegStrided { tm, tn }.shader()?;
    gpu.launch(sh, "mm_reg_s")
        .params(p)
        .read(o.a)
        .read(o.b)
        .read(o.bias)
        .write(o.c)
        .dispatch([n4.div_ceil(tn * REG_WORKGROUP), m.div_ceil(tm), z])
}

/// Largest product timed while choosing (multiply-adds): a bucket above it is timed at a smaller
/// size of the same aspect, so one choice costs well under a second even on a CPU adapter.
const TIMED_MACS: u64 = 1 << 25;

/// The variant for an M × K · K × N product: forced, cached, or timed now on this adapter.
pub(super) fn choose(gpu: &Arc<Gpu>, m: usize, n: usize, k: usize) -> Result<&'static Variant> {
    let (bm, bn, bk) = (log2_bucket(m), log2_bucket(n), log2_bucket(k));
    let bucket = format!("m{}n{}k{}", 1u64 << bm, 1u64 << bn, 1u64 << bk);
    let mut dims = [1usize << bm, 1usize << bn, 1usize << bk];
    let macs = dims.iter().map(|&d| d as u64).product::<u64>();
    while dims.iter().map(|&d| d as u64).product::<u64>() > TIMED_MACS {
        let i = (0..3).max_by_key(|&i| dims[i]).unwrap_or(0);
        dims[i] /= 2;
    }
    let [tm, tn, tk] = dims;
    let at = format!("{tm}x{tk}x{tn}");
    let name = gpu.choose(
        OP,
        &bucket,
        &candidates(gpu),
        &at,
        macs,
        &mut |name, bound| measure(gpu, name, (tm, tn, tk), bound),
    )?;
    Ok(variant(name).unwrap_or(&VARIANTS[0]))
}

/// Run variant `name` on random M × K · K × N operands: why, when it disagrees with the CPU
/// reference, else the best of a few timed runs (wall clock after a full sync).
fn measure(
    gpu: &Arc<Gpu>,
    name: &str,
    (m, n, k): (usize, usize, usize),
    bound: f64,
) -> Result<crate::gpu::tune::Measured> {
    let mut rng = Rng::new(0x7e57);
    let a = rng.normal_vec(m * k);
    let b = rng.normal_vec(k * n);
    let ga = Tensor::from_slice(gpu, &[m, k], &a)?;
    let gb = Tensor::from_slice(gpu, &[k, n], &b)?;
    let run = || super::matmul_variant(name, &ga, &gb, false, false, None, false);
    let t0 = Instant::now();
    let got = run()?.to_vec()?;
    let first = t0.elapsed().as_secs_f64();
    let d = crate::reference::matmul::Dims {
        za: 0,
        zb: 0,
        m,
        k,
        n,
        ta: false,
        tb: false,
    };
    let a64 = crate::reference::to64(&a);
    let b64 = crate::reference::to64(&b);
    let want = crate::reference::matmul::forward(&a64, &b64, d, None, false);
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let want_abs = crate::reference::matmul::forward(&abs(&a64), &abs(&b64), d, None, false);
    let (err, tol) = crate::reference::tol::sum_error(&got, &want, &want_abs, k);
    if err.is_nan() || err > tol {
        return Ok(Err(format!(
            "relative error {err:.2e} over the bound {tol:.2e}"
        )));
    }
    let best = crate::gpu::tune::best_time(gpu, first, bound, &mut || run().map(drop))?;
    Ok(Ok(best))
}
