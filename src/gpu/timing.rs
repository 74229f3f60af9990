//! Kernel timing with timestamp queries: two per dispatch (the start and end of its compute pass),
//! resolved with each submission and summed. The recorder drives it ([`Gpu::timed`]).
//!
//! [`Gpu::timed`]: super::Gpu::timed

use super::MAX_PENDING_DISPATCHES;
use crate::Result;

/// Timestamp queries per submission (two per dispatch).
const MAX_QUERIES: u32 = 2 * MAX_PENDING_DISPATCHES;

/// The query set of one timed region, and the kernel time summed so far.
pub(super) struct Timing {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    next: u32,
    pub(super) total_ns: f64,
    pub(super) kernels: u64,
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
            next: 0,
            total_ns: 0.0,
            kernels: 0,
        }
    }

    /// The timestamp writes of the next dispatch's compute pass.
    pub(super) fn pass_writes(&mut self) -> wgpu::ComputePassTimestampWrites<'_> {
        let i = self.next;
        self.next += 2;
        wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        }
    }

    /// Record the resolve of this submission's queries; true when there is something to read.
    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) -> bool {
        if self.next == 0 {
            return false;
        }
        encoder.resolve_query_set(&self.query_set, 0..self.next, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, self.next as u64 * 8);
        true
    }

    /// After the submit: read the resolved ticks back and add them up.
    pub(super) fn collect(
        &mut self,
        device: &wgpu::Device,
        period_ns: f64,
        read_mapped: impl FnOnce(&wgpu::Device, &wgpu::Buffer, u64) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let bytes = read_mapped(device, &self.read, self.next as u64 * 8)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        for pair in ticks.chunks_exact(2) {
            self.total_ns += pair[1].saturating_sub(pair[0]) as f64 * period_ns;
            self.kernels += 1;
        }
        self.next = 0;
        Ok(())
    }
}
