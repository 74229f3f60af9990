//! Equivariance errors of layer stacks.
