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
