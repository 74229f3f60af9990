//! transform ops.
