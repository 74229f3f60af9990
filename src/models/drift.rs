//! How far a KL model's cloned tensors drifted from their clones (SPEC §5, §7): the KL term, the
//! squared distance and the share of the drift that is a common shift along the softmax axis.

/// `(mean(δ²), share of Σ δ² in the common shift)` for δ = w − w0 of a tensor of `shape`, the
/// common shift being each row's mean of δ along `axis`, repeated along it: the direction a
/// softmax along `axis` (the KL of SPEC §5) does not see. The share is 0 when δ is 0.
pub fn drift_split(w: &[f32], w0: &[f32], shape: &[usize], axis: usize) -> (f64, f64) {
    let n = shape[axis].max(1);
    let inner: usize = shape[axis + 1..].iter().product();
    let outer = w.len() / (n * inner).max(1);
    let (mut total, mut common) = (0.0f64, 0.0f64);
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            let d: Vec<f64> = (0..n).map(|i| w[at(i)] as f64 - w0[at(i)] as f64).collect();
            let mean = d.iter().sum::<f64>() / n as f64;
            total += d.iter().map(|v| v * v).sum::<f64>();
            common += n as f64 * mean * mean;
        }
    }
    let share = if total > 0.0 { common / total } else { 0.0 };
    (total / w.len().max(1) as f64, share)
}

/// How far one cloned tensor drifted from its clone by the end of training: its KL term `KL_t`
/// (SPEC §5, without β), and the drift δ = w − w0 measured whole.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KlTerm {
    pub tensor: String,
    pub kl: f64,
    /// `mean(δ²)` over the tensor's elements (the `l2` penalty without β). None in results
    /// written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    /// The share of `Σ δ²` that is a common shift along the KL's softmax axis (each row's mean
    /// of δ along it, repeated): the part of the drift the KL cannot see (0 when δ = 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_share: Option<f64>,
}
