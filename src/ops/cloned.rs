//! cloned ops.
