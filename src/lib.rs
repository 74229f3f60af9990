//! symclone: symmetry cloning on any GPU.
//!
//! Data flows one way: data → tasks → batches on the GPU → models → ops (WGSL kernels with backward
//! rules on an [`autograd::Tape`]) → the GPU runtime ([`gpu::Gpu`]). Every op has a CPU reference in
//! [`reference`], used by the tests and the benchmark.

pub mod autograd;
pub mod bench;
pub mod check;
pub mod checkpoint;
pub mod clone;
pub mod commands;
pub mod config;
pub mod data;
pub mod equivariance;
pub mod error;
pub mod files;
pub mod gpu;
pub mod group;
pub mod models;
pub mod nn;
pub mod ops;
pub mod pipeline;
pub mod progress;
pub mod reference;
pub mod report;
pub mod results;
pub mod rng;
pub mod sweep;
pub mod tensor;
pub mod train;

pub use autograd::{Param, Tape, Var};
pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::Tensor;
