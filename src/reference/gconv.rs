//! Reference gconv.
