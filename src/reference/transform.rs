//! Reference transform.
