//! Parameters, layers and optimisers.

pub mod conv;
pub mod linear;
pub mod optim;

pub use conv::{Conv2d, GroupConvC4, GroupConvD4, LiftC4, LiftD4};
pub use linear::Linear;
pub use optim::{Optimizer, OptimizerKind};
