//! kl ops.
