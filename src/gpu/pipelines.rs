//! The pipeline cache: one compute pipeline and bind-group layout per (shader, entry point,
//! constants, binding layout), built once and handed out as a handle. The key is a small fixed-size
//! value (the shader's address, the entry's name, up to [`MAX_CONSTS`] constants and a bit per
//! binding), so looking a pipeline up on the hot path allocates nothing.

use super::{shader, specialize, Gpu, Shader};
use crate::{Error, Result};
use std::sync::Arc;

/// Most specialised constants one launch sets.
pub const MAX_CONSTS: usize = 4;
/// Most storage bindings one kernel takes (bindings 1..=MAX_BINDINGS; 0 is the uniform block):
/// the optimiser's update over its most tensors per launch (`ops::optim::CAP`), where the device
/// allows as many; every other kernel takes at most 8, WebGPU's default.
pub const MAX_BINDINGS: usize = 34;

/// How a storage buffer is bound: part of a pipeline's binding layout (and so of its key), which
/// the recorder fills from each launch's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// What identifies a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PipelineKey {
    /// The address of the `'static` shader (its name is not unique enough for generated ones).
    shader: usize,
    entry: &'static str,
    consts: [(&'static str, u32); MAX_CONSTS],
    /// Storage bindings, and which of them are read-write (bit i: binding i + 1).
    bindings: u8,
    read_write: u64,
}

impl PipelineKey {
    pub(super) fn new(
        shader: &'static Shader,
        entry: &'static str,
        consts: &[(&'static str, u32)],
        access: &[Access],
    ) -> PipelineKey {
        let mut c = [("", 0); MAX_CONSTS];
        c[..consts.len()].copy_from_slice(consts);
        let read_write = access
            .iter()
            .enumerate()
            .filter(|(_, a)| **a == Access::ReadWrite)
            .fold(0u64, |m, (i, _)| m | (1 << i));
        PipelineKey {
            shader: shader as *const Shader as usize,
            entry,
            consts: c,
            bindings: access.len() as u8,
            read_write,
        }
    }
}

/// A built pipeline: the handle the recorder binds, and a number that names it in bind-group keys.
pub(super) struct Cached {
    pub(super) id: u64,
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    /// The kernel, as it labels the pipeline, its bind groups and (under `--validate`) its passes.
    pub(super) shader: &'static str,
    pub(super) entry: &'static str,
}

impl Gpu {
    /// The cached pipeline for (shader, entry, constants, binding layout), built on first use.
    pub(super) fn pipeline(
        &self,
        shader: &'static Shader,
        entry: &'static str,
        consts: &[(&'static str, u32)],
        access: &[Access],
    ) -> Result<Arc<Cached>> {
        let key = PipelineKey::new(shader, entry, consts, access);
        if let Some(c) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let src = specialize(shader.src, consts)?;
        let parsed = shader::parse(shader.name, &src)?;
        // Under --validate the module goes to wgpu as naga's IR, not as WGSL text: from text,
        // wgpu's debug mode (which --validate needs, for the layer's messages) writes the WGSL
        // into the SPIR-V with `OpSource WGSL`, a source language Khronos validation layers
        // before 1.3.250 or so do not know ("Invalid source language operand: 10"), and they then
        // check nothing else of the module.
        let source = if self.validation.is_some() {
            wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(parsed))
        } else {
            wgpu::ShaderSource::Wgsl(src.into())
        };
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source,
            });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in access.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(shader.name),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(shader.name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let label = format!("{}::{entry}", shader.name);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.take_errors_for(&[(shader.name, entry)])
            .map_err(|e| match e {
                Error::Gpu(m) => Error::Gpu(format!("building {}::{entry}: {m}", shader.name)),
                other => other,
            })?;
        let mut cache = self.pipelines.lock().unwrap();
        let id = cache.len() as u64;
        let c = Arc::new(Cached {
            id,
            pipeline,
            layout,
            shader: shader.name,
            entry,
        });
        cache.insert(key, c.clone());
        Ok(c)
    }
}
