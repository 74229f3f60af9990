//! Reference kl.
