//! The data a configuration trains on.

use super::types::RunConfig;
use crate::data::resize::prepare_digits;
use crate::data::Dataset;
use crate::Result;

impl RunConfig {
    /// The configuration's data: the embedded default or `data`, subset to `train_n` and
    /// `test_n`, brought to `side` (halved first when `downsample`).
    pub fn load_data(&self) -> Result<Dataset> {
        let ds = match &self.data {
            None => Dataset::embedded()?,
            Some(dir) => Dataset::load_first(dir, self.train_n, self.test_n)?,
        }
        .subset(self.train_n, self.test_n)?;
        Ok(Dataset {
            train: prepare_digits(&ds.train, self.side, self.downsample)?,
            test: prepare_digits(&ds.test, self.side, self.downsample)?,
            source: ds.source,
        })
    }

    /// The data line of the report: source, counts and how the digits were brought to the side.
    pub fn describe_data(&self, ds: &Dataset) -> String {
        format!(
            "{} ({} train, {} test, {})",
            ds.source,
            ds.train.n,
            ds.test.n,
            if self.downsample {
                format!("halved to 14×14 and padded to {0}×{0}", self.side)
            } else {
                format!("{0}×{0} centre crop", self.side)
            }
        )
    }
}
