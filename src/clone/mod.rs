//! Symmetry cloning (SPEC §2–§3): dense "operator" layers trained, as plain supervised regression,
//! to reproduce a convolution (Z2), a lifting C4 convolution (Lift) or a P4 group convolution (P4).

pub mod bound;
pub mod exact;
pub mod io;
pub mod mixer;
pub mod mixer_train;
pub mod operator;
pub mod teacher;
pub mod train;

pub use exact::CloneLoss;
pub use operator::{ClonedConv, ClonedOperator, OperatorKind};
use std::collections::BTreeMap;

pub use teacher::clone_from_teacher;
pub use train::{
    clone_lift_p4, clone_random, clone_random_with, CloneConfig, CloneStats, ExactForm,
};

/// The cloned operators a network needs, keyed by (kind, input side).
pub type CloneSet = BTreeMap<(OperatorKindKey, usize), ClonedOperator>;

/// A sortable key for [`OperatorKind`].
pub type OperatorKindKey = u8;

/// The key of an operator in a [`CloneSet`].
pub fn clone_key(kind: OperatorKind, d: usize) -> (OperatorKindKey, usize) {
    let k = OperatorKind::ALL
        .iter()
        .position(|&o| o == kind)
        .expect("every kind is in ALL");
    (k as OperatorKindKey, d)
}
