//! Reference conv.
