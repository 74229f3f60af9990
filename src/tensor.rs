//! A tensor is a shape plus a pooled GPU buffer. Element type f32 by default; u32 for labels and
//! indices. Cloning a tensor clones a handle, not the data.
//!
//! The few kernels the autograd layer itself needs (fill, `t += α·x`, `α·x + β·y`: a gradient seed
//! and gradient sums) are launched here, below the tape; every other op is in `ops`.

use crate::gpu::shader::ELEMENTWISE;
use crate::gpu::{Bindable, Gpu, PooledBuffer};
use crate::{Error, Result};
use std::sync::Arc;

/// Element type of a tensor's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

/// A tensor on the GPU.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    dtype: DType,
    buf: Arc<PooledBuffer>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.shape, self.dtype)
    }
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// An uninitialised f32 tensor.
    pub fn empty(gpu: &Arc<Gpu>, shape: &[usize]) -> Result<Tensor> {
        Self::empty_typed(gpu, shape, DType::F32)
    }

    /// An uninitialised tensor of the given element type.
    pub fn empty_typed(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = shape
            .iter()
            .try_fold(4u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a tensor of shape {shape:?} overflows its byte count"
                ))
            })?;
        let buf = gpu.alloc(bytes.max(4))?;
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            buf: Arc::new(buf),
        })
    }

    /// Upload f32 data.
    pub fn from_slice(gpu: &Arc<Gpu>, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Self::upload(
            gpu,
            shape,
            DType::F32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Upload u32 data (labels, indices).
    pub fn from_u32(gpu: &Arc<Gpu>, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        Self::upload(
            gpu,
            shape,
            DType::U32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    fn upload(
        gpu: &Arc<Gpu>,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
        len: usize,
    ) -> Result<Tensor> {
        if numel(shape) != len {
            return Err(Error::shape(
                "upload",
                format!("shape {shape:?} holds {} values, got {len}", numel(shape)),
            ));
        }
        let t = Self::empty_typed(gpu, shape, dtype)?;
        gpu.write(t.raw(), 0, bytes)?;
        Ok(t)
    }

    /// A tensor filled with zeros.
    pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize]) -> Result<Tensor> {
        let t = Self::empty(gpu, shape)?;
        t.fill_(0.0)?;
        Ok(t)
    }

    /// A tensor filled with `v`.
    pub fn full(gpu: &Arc<Gpu>, shape: &[usize], v: f32) -> Result<Tensor> {
        let t = Self::empty(gpu, shape)?;
        t.fill_(v)?;
        Ok(t)
    }

    /// Download f32 data.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let bytes = self
            .gpu()
            .read_bytes(self.raw(), 0, self.numel() as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Download u32 data.
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        let bytes = self
            .gpu()
            .read_bytes(self.raw(), 0, self.numel() as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Download a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "item",
                format!("{:?} is not a scalar", self.shape),
            ));
        }
        Ok(self.to_vec()?[0])
    }

    /// Overwrite the contents with host data of the same length.
    pub fn write_slice(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::shape(
                "write",
                format!(
                    "tensor {:?} holds {} values, got {}",
                    self.shape,
                    self.numel(),
                    data.len()
                ),
            ));
        }
        self.gpu().write(self.raw(), 0, bytemuck::cast_slice(data))
    }

    /// The same buffer under another shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} as {shape:?}", self.shape),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype: self.dtype,
            buf: self.buf.clone(),
        })
    }

    /// A copy in a new buffer.
    pub fn deep_clone(&self) -> Result<Tensor> {
        let t = Self::empty_typed(self.gpu(), &self.shape, self.dtype)?;
        self.copy_into(&t)?;
        Ok(t)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        self.buf.gpu()
    }
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buf.raw()
    }
    /// Whether no other tensor (no clone, no reshaped view) holds this one's buffer.
    pub fn is_unique(&self) -> bool {
        Arc::strong_count(&self.buf) == 1
    }
    /// Whether two tensors share one buffer.
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    // ---- The arithmetic the tape needs (kernels of `shaders/elementwise.wgsl`) ----

    /// Fill in place with `v`.
    pub fn fill_(&self, v: f32) -> Result<()> {
        self.gpu()
            .launch(&ELEMENTWISE, "fill")
            .params(&elementwise_params(self.numel(), v, 0.0)?)
            .write(&self)
            .dispatch_1d(self.numel(), ELEMENTWISE_WG)
    }

    /// `self += alpha·x` in place.
    pub fn acc_(&self, x: &Tensor, alpha: f32) -> Result<()> {
        same_shape("acc", self, x)?;
        self.gpu()
            .launch(&ELEMENTWISE, "acc")
            .params(&elementwise_params(self.numel(), alpha, 0.0)?)
            .write(&self)
            .read(&x)
            .dispatch_1d(self.numel(), ELEMENTWISE_WG)
    }

    /// `alpha·self + beta·y` in a new tensor.
    pub fn axpby(&self, y: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
        same_shape("axpby", self, y)?;
        let out = Tensor::empty(self.gpu(), self.shape())?;
        self.gpu()
            .launch(&ELEMENTWISE, "axpby")
            .params(&elementwise_params(self.numel(), alpha, beta)?)
            .read(&self)
            .read(&y)
            .write(&out)
            .dispatch_1d(self.numel(), ELEMENTWISE_WG)?;
        Ok(out)
    }

    /// Copy into `dst` (same element count): a buffer copy, no kernel.
    pub fn copy_into(&self, dst: &Tensor) -> Result<()> {
        if self.numel() != dst.numel() {
            return Err(Error::shape(
                "copy",
                format!("{:?} into {:?}", self.shape(), dst.shape()),
            ));
        }
        self.gpu()
            .copy_buffer(self.raw(), dst.raw(), self.numel() as u64 * 4)
    }
}

/// Invocations per workgroup of the element-wise kernels (`WG` in `elementwise.wgsl`).
pub(crate) const ELEMENTWISE_WG: u32 = 256;

crate::gpu::params::shader_params!(
    /// The uniform block of `elementwise.wgsl`: count, alpha, beta (and dropout's seed).
    ElementwiseP = "P" in Ok(crate::gpu::shader::ELEMENTWISE.src.to_string()), {
        n: u32,
        alpha: f32,
        beta: f32,
        seed: u32,
    }
);

/// The uniform block of the element-wise kernels: count, alpha, beta.
pub(crate) fn elementwise_params(n: usize, alpha: f32, beta: f32) -> Result<ElementwiseP> {
    Ok(ElementwiseP {
        n: crate::gpu::params::u32_of("elements", n)?,
        alpha,
        beta,
        seed: 0,
    })
}

/// Fail unless `t` is f32.
pub(crate) fn expect_f32(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::shape(
            op,
            format!("expected an f32 tensor, got {:?}", t.dtype()),
        ));
    }
    Ok(())
}

/// Fail unless both shapes are equal and both tensors are f32.
pub(crate) fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!("{:?} vs {:?}", a.shape(), b.shape()),
        ));
    }
    expect_f32(op, a)?;
    expect_f32(op, b)
}

impl Bindable for Tensor {
    fn buffer(&self) -> &wgpu::Buffer {
        self.raw()
    }
    fn bytes(&self) -> u64 {
        (self.numel() as u64 * 4).max(4)
    }
    fn describe(&self) -> String {
        format!("a {:?} tensor of shape {:?}", self.dtype, self.shape)
    }
}
