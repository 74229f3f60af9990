//! Outputs: checkpoints, the JSON and Markdown reports, pictures.

pub mod checkpoint;
pub mod plot;
