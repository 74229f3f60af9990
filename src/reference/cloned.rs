//! Reference cloned.
