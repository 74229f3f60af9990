//! gconv ops.
