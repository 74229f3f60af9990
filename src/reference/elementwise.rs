//! Reference element-wise ops.

pub fn axpby(x: &[f64], y: &[f64], alpha: f64, beta: f64) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| alpha * a + beta * b).collect()
}
pub fn mul(x: &[f64], y: &[f64], alpha: f64) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| alpha * a * b).collect()
}
pub fn affine(x: &[f64], alpha: f64, beta: f64) -> Vec<f64> {
    x.iter().map(|a| alpha * a + beta).collect()
}
pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|a| a.max(0.0)).collect()
}
/// The ReLU backward given the forward output `y`.
pub fn relu_bwd(g: &[f64], y: &[f64]) -> Vec<f64> {
    g.iter()
        .zip(y)
        .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
        .collect()
}

/// The dropout mask of the GPU kernel: keep element i when hash(seed, i) ≥ p·2^24 (24-bit uniform).
pub fn dropout(x: &[f64], p: f64, seed: u32) -> Vec<f64> {
    fn hash32(v: u32) -> u32 {
        let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
        let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
        (word >> 22) ^ word
    }
    let hs = hash32(seed);
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let u = (hash32(i as u32 ^ hs) >> 8) as f64 / 16777216.0;
            if u >= p {
                v / (1.0 - p)
            } else {
                0.0
            }
        })
        .collect()
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_A: f64 = 0.044715;

/// GELU, tanh form: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu(x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|v| 0.5 * v * (1.0 + (GELU_C * (v + GELU_A * v * v * v)).tanh()))
        .collect()
}

/// The GELU backward `g · gelu'(x)` for the forward input `x`.
pub fn gelu_bwd(g: &[f64], x: &[f64]) -> Vec<f64> {
    g.iter()
        .zip(x)
        .map(|(g, v)| {
            let t = (GELU_C * (v + GELU_A * v * v * v)).tanh();
            g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * v * v))
        })
        .collect()
}
