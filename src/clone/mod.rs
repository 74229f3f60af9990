//! Symmetry cloning: training dense operator layers to reproduce equivariant layers.
