//! Reverse-mode automatic differentiation: the [`Tape`] records each op's output and backward rule
//! for one step; a [`Param`] persists across steps and accumulates its gradient.

mod param;
mod tape;

pub use param::Param;
pub use tape::{BackwardFn, Tape, Var};
