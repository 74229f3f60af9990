//! The configuration of a run, from the presets and the command line to the resolved plan the
//! phases receive: [`types`] (what `config.json` holds), [`presets`] (quick, medium, paper),
//! [`overrides`] (a preset or file with the command line's settings applied), [`checks`] (what is
//! checked before any work, and the strict `--config` parser), [`data`] (the data it trains on)
//! and [`plan`] (the run resolved once: architectures, clones, content hashes).

pub mod checks;
pub mod data;
pub mod overrides;
pub mod plan;
pub mod presets;
pub mod types;

pub use checks::{parse_config, MAX_SEEDS};
pub use overrides::Overrides;
pub use plan::{ClonePlan, ModelPlan, RunPlan};
pub use presets::MEDIUM_EPOCHS;
pub use types::{CloneSettings, RunConfig, TaskPlan};
