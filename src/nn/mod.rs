//! Parameters, layers and optimisers.

pub mod conv;
pub mod linear;
pub mod optim;

pub use conv::{Conv2d, GroupConvC4, LiftC4};
pub use linear::Linear;
pub use optim::{Optimizer, OptimizerKind};
