//! Random numbers generated on the GPU from counter-based hashes (`random.wgsl`).

use super::RANDOM;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;

/// A tensor of independent standard normal draws from a counter-based generator: the same
/// (seed, shape) gives the same values on any adapter with IEEE-conforming `log`, `sin`, `cos`.
pub fn randn(gpu: &Arc<Gpu>, shape: &[usize], seed: u64) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape)?;
    let n = out.numel();
    gpu.launch(&RANDOM, "randn")
        .params(&[n as u32, seed as u32, (seed >> 32) as u32, 0])
        .write(&out)
        .dispatch_1d(n, 256)?;
    Ok(out)
}
