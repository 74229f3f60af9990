//! symclone: symmetry cloning on any GPU.
//!
//! Data flows one way: data → tasks → batches on the GPU → models → ops (WGSL kernels with backward
//! rules on a [`tape::Tape`]) → the GPU runtime ([`gpu::Gpu`]). Every op has a CPU reference in
//! [`reference`], used by the tests and the benchmark.

pub mod bench;
pub mod clone;
pub mod data;
pub mod equivariance;
pub mod error;
pub mod gpu;
pub mod models;
pub mod nn;
pub mod ops;
pub mod pipeline;
pub mod reference;
pub mod report;
pub mod rng;
pub mod tape;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tape::{Tape, Var};
pub use tensor::Tensor;
