//! Kernel timing with timestamp queries: two per dispatch (the start and end of its compute pass),
//! resolved with each submission and summed. The recorder drives it ([`Gpu::timed`]).
//!
//! [`Gpu::timed`]: super::Gpu::timed

use super::MAX_PENDING_DISPATCHES;
use crate::Result;
use std::collections::HashMap;

/// Timestamp queries per submission (two per dispatch).
const MAX_QUERIES: u32 = 2 * MAX_PENDING_DISPATCHES;

/// The query set of one timed region, and the kernel time summed so far.
pub(super) struct Timing {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    /// The kernel (shader, entry) of each query pair of this submission (two queries each).
    labels: Vec<(&'static str, &'static str)>,
    pub(super) total_ns: f64,
    pub(super) kernels: u64,
    /// Time (ns) and dispatches per kernel.
    pub(super) by_kernel: HashMap<(&'static str, &'static str), (f64, u64)>,
}

impl Timing {
    pub(super) fn new(device: &wgpu::Device) -> Timing {
        let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: MAX_QUERIES,
        });
        let mk = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: MAX_QUERIES as u64 * 8,
                usage,
                mapped_at_creation: false,
            })
        };
        Timing {
            query_set,
            resolve: mk(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            read: mk(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            labels: Vec::new(),
            total_ns: 0.0,
            kernels: 0,
            by_kernel: HashMap::new(),
        }
    }

    /// The timestamp writes of the next dispatch's compute pass, which runs `kernel`.
    pub(super) fn pass_writes(
        &mut self,
        kernel: (&'static str, &'static str),
    ) -> wgpu::ComputePassTimestampWrites<'_> {
        let i = 2 * self.labels.len() as u32;
        self.labels.push(kernel);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        }
    }

    /// Record the resolve of this submission's queries; true when there is something to read.
    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) -> bool {
        let n = 2 * self.labels.len() as u32;
        if n == 0 {
            return false;
        }
        encoder.resolve_query_set(&self.query_set, 0..n, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, n as u64 * 8);
        true
    }

    /// After the submit: read the resolved ticks back and add them up.
    pub(super) fn collect(
        &mut self,
        device: &wgpu::Device,
        period_ns: f64,
        read_mapped: impl FnOnce(&wgpu::Device, &wgpu::Buffer, u64) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let bytes = read_mapped(device, &self.read, 16 * self.labels.len() as u64)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        for (pair, &kernel) in ticks.chunks_exact(2).zip(&self.labels) {
            let ns = pair[1].saturating_sub(pair[0]) as f64 * period_ns;
            self.total_ns += ns;
            self.kernels += 1;
            let e = self.by_kernel.entry(kernel).or_default();
            e.0 += ns;
            e.1 += 1;
        }
        self.labels.clear();
        Ok(())
    }
}

/// Each kernel's summed time: (shader::entry, seconds, dispatches), slowest first.
pub type KernelTimes = Vec<(String, f64, u64)>;
