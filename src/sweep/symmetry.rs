//! SPEC §7's symmetry measures of a merged sweep row: each cell's model report reduced to what
//! a setting's networks kept of the symmetry, and the mean over the cells' seeds.

/// SPEC §7's symmetry measures of one row, mean over its seeds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RowSymmetry {
    /// Each feature layer's equivariance error after training.
    pub layer_equivariance: Vec<f64>,
    /// The logits' invariance error.
    pub invariance_error: f64,
    /// For KL models: the share of the cloned blocks' drift that is a common shift across the
    /// blocks (the direction SPEC §5's KL cannot see), mean over the layers' blocks tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_common_share: Option<f64>,
}

impl RowSymmetry {
    /// One model report's measures; None where it has none (a run without them).
    pub(super) fn of(m: &crate::results::ModelReport) -> Option<RowSymmetry> {
        let layers = m.layer_equivariance.as_ref()?;
        let blocks: Vec<f64> = m
            .kl_terms
            .iter()
            .flatten()
            .filter(|t| t.tensor.ends_with("blocks"))
            .filter_map(|t| t.common_share)
            .collect();
        Some(RowSymmetry {
            layer_equivariance: layers.iter().map(|l| l.after).collect(),
            invariance_error: m.invariance_error?,
            blocks_common_share: (!blocks.is_empty())
                .then(|| blocks.iter().sum::<f64>() / blocks.len() as f64),
        })
    }

    /// The mean of several, each weighted by its seed count; None unless all are there and
    /// agree in their layers.
    pub(super) fn mean(v: &[(usize, Option<RowSymmetry>)]) -> Option<RowSymmetry> {
        let all: Vec<(f64, &RowSymmetry)> = v
            .iter()
            .map(|(n, s)| s.as_ref().map(|s| (*n as f64, s)))
            .collect::<Option<_>>()?;
        let layers = all.first()?.1.layer_equivariance.len();
        if all
            .iter()
            .any(|(_, s)| s.layer_equivariance.len() != layers)
        {
            return None;
        }
        let total: f64 = all.iter().map(|(n, _)| n).sum();
        let avg = |f: &dyn Fn(&RowSymmetry) -> f64| {
            all.iter().map(|(n, s)| n * f(s)).sum::<f64>() / total
        };
        Some(RowSymmetry {
            layer_equivariance: (0..layers)
                .map(|l| avg(&|s| s.layer_equivariance[l]))
                .collect(),
            invariance_error: avg(&|s| s.invariance_error),
            blocks_common_share: all
                .iter()
                .all(|(_, s)| s.blocks_common_share.is_some())
                .then(|| avg(&|s| s.blocks_common_share.unwrap_or(0.0))),
        })
    }
}
