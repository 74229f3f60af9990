//! Symmetry cloning (SPEC §2–§3): dense "operator" layers trained, as plain supervised regression,
//! to reproduce a convolution (Z2), a lifting C4 convolution (Lift) or a P4 group convolution (P4).

pub mod io;
pub mod operator;
pub mod train;

pub use operator::{ClonedConv, ClonedOperator, OperatorKind};
pub use train::{clone_from_teacher, clone_lift_p4, clone_random, CloneConfig, CloneStats};
