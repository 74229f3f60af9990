//! The pipeline cache: one compute pipeline and bind-group layout per (shader, entry point,
//! constants, binding layout), built once and shared.

use super::recorder::Access;
use super::{shader, specialize, Gpu, Shader};
use crate::{Error, Result};
use std::sync::Arc;

pub(super) struct Cached {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
}

impl Gpu {
    /// The cached pipeline for (shader, entry, constants, binding layout).
    pub(super) fn pipeline(
        &self,
        shader: &Shader,
        entry: &str,
        consts: &[(&str, u32)],
        access: &[Access],
    ) -> Result<Arc<Cached>> {
        let key = format!("{}|{entry}|{consts:?}|{access:?}", shader.name);
        if let Some(c) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let src = specialize(shader.src, consts)?;
        shader::validate(shader.name, &src)?;
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
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
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.take_errors()
            .map_err(|e| Error::Gpu(format!("building {}::{entry}: {e}", shader.name)))?;
        let c = Arc::new(Cached { pipeline, layout });
        self.pipelines.lock().unwrap().insert(key, c.clone());
        Ok(c)
    }
}
