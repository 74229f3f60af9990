//! Reference random numbers: the counter-based generator of `random.wgsl` in integer arithmetic and
//! f64, so the GPU's values can be checked draw by draw.

/// The PCG output permutation of one 32-bit state step, as the shader computes it.
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// `n` standard normal draws for `seed`: Box–Muller on the hashes of (seed, i / 2), the cosine for
/// even i and the sine for odd i.
pub fn randn(n: usize, seed: u64) -> Vec<f64> {
    let (lo, hi) = (seed as u32, (seed >> 32) as u32);
    (0..n)
        .map(|t| {
            let pair = (t / 2) as u32;
            let h1 = pcg(pcg(pair ^ pcg(lo)).wrapping_add(hi));
            let h2 = pcg(h1 ^ 0x9e3779b9);
            let u1 = ((h1 >> 8) as f64 + 1.0) / 16777216.0;
            let u2 = (h2 >> 8) as f64 / 16777216.0;
            let rad = (-2.0 * u1.ln()).sqrt();
            let ang = std::f64::consts::TAU * u2;
            if t % 2 == 0 {
                rad * ang.cos()
            } else {
                rad * ang.sin()
            }
        })
        .collect()
}
