//! Reference pool.
