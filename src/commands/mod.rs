//! The commands beside `run`, each over the same phases and configuration: one clone or the
//! end-to-end lift+P4 clone ([`clone`]), a clone per number of blocks ([`capacity`]), the MLP-Mixer
//! student of SPEC §8 ([`mixer`]), what a configuration needs on an adapter ([`plan`]) and the
//! choice of kernel variants ahead of time ([`tune`]).

pub mod capacity;
pub mod clone;
pub mod mixer;
pub mod plan;
pub mod tune;
