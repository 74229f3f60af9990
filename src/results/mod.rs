//! What a run measured and how it is shown: the report's types ([`types`], as `report.json`
//! holds them), the comparisons with their intervals and verdicts ([`compare`]), the figures
//! ([`figures`]), the documents made from a report ([`document`]: `report.md`, `report.html`),
//! and the mixer command's report ([`mixer`]).

pub mod compare;
pub mod document;
pub mod figures;
pub mod mixer;
pub mod readme;
pub mod types;

pub use document::{doc, html, markdown, rebuild, write};
pub use types::{
    CloneReport, FeatureMaps, Fidelity, KlTerm, LayerEquivariance, ModelReport, PhaseMemory, Report,
};
