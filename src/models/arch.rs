//! A network's sizes: SPEC §4's, the checks a configuration's sizes pass before anything is
//! allocated, and the side of each feature layer's input.

use super::ModelKind;
use crate::{Error, Result};

/// Sizes of a network.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Arch {
    /// Input side (28, or 48 for the T(2) task).
    pub side: usize,
    pub classes: usize,
    /// Channels of the four feature layers.
    pub channels: [usize; 4],
    /// Width of the hidden FC layer of the convolutional heads (SPEC: 50).
    pub hidden: usize,
    /// Hidden widths of the MLP.
    pub mlp: Vec<usize>,
    /// Dropout probability in the heads (SPEC: 0.5).
    pub dropout: f32,
    /// Frozen clone blocks read in half precision ([`crate::clone::ClonedConv::with_half_blocks`]);
    /// left out of the serialised sizes when false, so what hashed before still hashes the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub half_blocks: bool,
}

/// The most channels a feature layer may have (SPEC: 20).
pub const MAX_CHANNELS: usize = 4096;
/// The widest hidden layer an MLP or a head may have (SPEC: 1,024).
pub const MAX_WIDTH: usize = 65_536;
/// The most hidden layers an MLP may have (SPEC: 6).
pub const MAX_DEPTH: usize = 64;

impl Arch {
    /// Check the sizes before anything is allocated: channels between 1 and [`MAX_CHANNELS`],
    /// hidden widths between 1 and [`MAX_WIDTH`], 1 to [`MAX_DEPTH`] MLP layers, a side the feature
    /// stack can take. (Each tensor is then checked against the adapter's limits when it is made.)
    pub fn check(&self) -> Result<()> {
        if let Some(c) = self
            .channels
            .iter()
            .find(|&&c| !(1..=MAX_CHANNELS).contains(&c))
        {
            return Err(Error::invalid(format!(
                "channels {:?}: each layer takes 1 to {MAX_CHANNELS} channels, not {c}",
                self.channels
            )));
        }
        if self.mlp.is_empty() || self.mlp.len() > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "mlp {:?}: an MLP takes 1 to {MAX_DEPTH} hidden widths",
                self.mlp
            )));
        }
        for (what, w) in self
            .mlp
            .iter()
            .map(|&w| ("mlp", w))
            .chain([("hidden", self.hidden), ("classes", self.classes)])
        {
            if !(1..=MAX_WIDTH).contains(&w) {
                return Err(Error::invalid(format!(
                    "{what} width {w}: use 1 to {MAX_WIDTH}"
                )));
            }
        }
        if !(1..=1024).contains(&self.side) {
            return Err(Error::invalid(format!(
                "input side {}: use 1 to 1024 pixels",
                self.side
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid(format!(
                "dropout {}: use a probability in [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }

    /// SPEC §4's sizes for a model, input side and class count.
    pub fn paper(kind: ModelKind, side: usize, classes: usize) -> Arch {
        let channels = match kind {
            ModelKind::Gcnn => [10, 20, 20, 20],
            ModelKind::FauxGcnn | ModelKind::FauxGcnnKl => [10, 10, 20, 20],
            ModelKind::D4Gcnn => d4_channels([10, 20, 20, 20]),
            ModelKind::FauxD4Gcnn | ModelKind::FauxD4GcnnKl => d4_channels([10, 10, 20, 20]),
            _ => [20, 10, 20, 20],
        };
        let mlp = if classes > 10 {
            vec![256, 512, 1024, 1024, 512, 256]
        } else {
            vec![256, 256, 512, 512, 256, 128]
        };
        Arch {
            side,
            classes,
            channels,
            hidden: 50,
            mlp,
            dropout: 0.5,
            half_blocks: false,
        }
    }
    /// Side lengths at the input of each of the four feature layers.
    pub fn feature_sides(&self) -> Result<[usize; 4]> {
        let s0 = self.side;
        let ok = s0 >= 2 * (2 * ((s0 - 4) / 2 - 4) / 2) && s0 >= 14;
        if !ok {
            return Err(Error::invalid(format!(
                "input side {s0} is too small for the convolutional networks (need ≥ 14)"
            )));
        }
        let s2 = (s0 - 4) / 2;
        Ok([s0, s0 - 2, s2, s2 - 2])
    }
    /// Side of the maps after the second pool.
    pub fn final_side(&self) -> Result<usize> {
        let [_, _, _, s3] = self.feature_sides()?;
        Ok((s3 - 2) / 2)
    }
}

/// The channels of a D4 network standing for a C4 one's: divided by √2 and rounded (SPEC §9,
/// GrouPy's convention: about the parameter count of the C4 network), at least 1.
pub fn d4_channels(c: [usize; 4]) -> [usize; 4] {
    c.map(|v| ((v as f64 / std::f64::consts::SQRT_2).round() as usize).max(1))
}
