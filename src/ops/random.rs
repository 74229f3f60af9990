//! Random numbers generated on the GPU from counter-based hashes (`random.wgsl`).

use super::{shader_params, u32_of, RANDOM};
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;

shader_params!(
    /// The uniform block of `random.wgsl`.
    RandomP = "P" in Ok(RANDOM.src.to_string()), {
        n: u32,
        seed_lo: u32,
        seed_hi: u32,
        _p0: u32,
    }
);

/// A tensor of independent standard normal draws from a counter-based generator: the same
/// (seed, shape) gives the same values on any adapter with IEEE-conforming `log`, `sin`, `cos`.
pub fn randn(gpu: &Arc<Gpu>, shape: &[usize], seed: u64) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape)?;
    let n = out.numel();
    gpu.launch(&RANDOM, "randn")
        .params(&RandomP {
            n: u32_of("elements", n)?,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            _p0: 0,
        })
        .write(&out)
        .dispatch_1d(n, 256)?;
    Ok(out)
}
