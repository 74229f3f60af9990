//! Batches built on the GPU. A split's u8 images are uploaded once ([`GpuSplit`], packed four per
//! u32); each epoch uploads one small record per sample (image index, quarter turns, shifts, label;
//! 20 bytes); each step one `gather` kernel (shaders/data.wgsl) writes the f32 (B, 1, S, S) images and
//! the u32 (B) labels of the next B records. No image crosses the bus during training.
//!
//! Pixels are scaled to [0, 1] as `v / 255` (no mean/std normalisation), through a 256-entry table
//! computed on the CPU, so the GPU batch equals the CPU reference ([`crate::reference::data`]) bit
//! for bit.

use super::tasks::{stream, Canvas, Part, Sample, Task};
use super::Split;
use crate::gpu::params::{shader_params, u32_of};
use crate::ops::DATA;
use crate::tensor::{DType, Tensor};
use crate::{Error, Gpu, Result};
use std::sync::Arc;

shader_params!(
    /// The uniform block of `data.wgsl`.
    GatherP = "P" in Ok(DATA.src.to_string()), {
        n: u32,
        s: u32,
        h: u32,
        w: u32,
        pad: u32,
        start: u32,
        _p0: u32,
        _p1: u32,
    }
);

const WG: u32 = 256;

/// The grey-level table: `v / 255` in f32 for v = 0..=255.
pub fn unit_table() -> Vec<f32> {
    (0..256).map(|v| v as f32 / 255.0).collect()
}

/// A split's images resident on the GPU (u8 packed four per u32), with the digit labels kept on the
/// CPU for drawing the task's per-sample plan.
pub struct GpuSplit {
    gpu: Arc<Gpu>,
    images: Tensor,
    lut: Tensor,
    labels: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

impl GpuSplit {
    /// Upload a split's images once.
    pub fn upload(gpu: &Arc<Gpu>, split: &Split) -> Result<Arc<GpuSplit>> {
        if split.n == 0 {
            return Err(Error::invalid("cannot upload a split of zero images"));
        }
        let bytes = split.n * split.h * split.w;
        if split.images.len() != bytes || split.labels.len() != split.n {
            return Err(Error::invalid(format!(
                "split of {} images of {}×{} holds {} pixels and {} labels",
                split.n,
                split.h,
                split.w,
                split.images.len(),
                split.labels.len()
            )));
        }
        if bytes as u64 >= u32::MAX as u64 {
            return Err(Error::invalid(format!(
                "{bytes} pixels: the batch kernel indexes pixels with u32, split the data set"
            )));
        }
        let mut packed = vec![0u32; bytes.div_ceil(4)];
        for (i, &v) in split.images.iter().enumerate() {
            packed[i / 4] |= (v as u32) << (8 * (i % 4));
        }
        let images = Tensor::from_u32(gpu, &[packed.len()], &packed)?;
        let lut = Tensor::from_slice(gpu, &[256], &unit_table())?;
        Ok(Arc::new(GpuSplit {
            gpu: gpu.clone(),
            images,
            lut,
            labels: split.labels.clone(),
            n: split.n,
            h: split.h,
            w: split.w,
        }))
    }

    /// The digit labels (0–9) of the split.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// A batch of the given samples on a canvas (their records uploaded here, one kernel): for
    /// measurements that choose each sample's transform themselves (SPEC §7's orbits).
    pub fn gather_samples(&self, canvas: Canvas, samples: &[Sample]) -> Result<Batch> {
        if samples.is_empty() {
            return Err(Error::invalid("a batch of no samples"));
        }
        if let Some(s) = samples.iter().find(|s| s.index as usize >= self.n) {
            return Err(Error::invalid(format!(
                "sample of image {} from a split of {} images",
                s.index, self.n
            )));
        }
        let mut rec = Vec::with_capacity(samples.len() * 4);
        for s in samples {
            rec.extend_from_slice(&[s.index, s.rot, s.dx as u32, s.dy as u32]);
        }
        let labels: Vec<u32> = samples.iter().map(|s| s.label).collect();
        let records = Tensor::from_u32(&self.gpu, &[samples.len(), 4], &rec)?;
        let labels = Tensor::from_u32(&self.gpu, &[samples.len()], &labels)?;
        self.gather(canvas, &records, &labels, 0, samples.len())
    }

    /// Gather the samples `records[start..start + len]` (uploaded by the caller) into a batch.
    fn gather(
        &self,
        canvas: Canvas,
        records: &Tensor,
        labels: &Tensor,
        start: usize,
        len: usize,
    ) -> Result<Batch> {
        let s = canvas.size;
        let images = Tensor::empty(&self.gpu, &[len, 1, s, s])?;
        let out_labels = Tensor::empty_typed(&self.gpu, &[len], DType::U32)?;
        let n = len * s * s;
        let params = GatherP {
            n: u32_of("batch pixels", n)?,
            s: u32_of("canvas side", s)?,
            h: u32_of("digit rows", self.h)?,
            w: u32_of("digit columns", self.w)?,
            pad: u32_of("canvas offset", canvas.pad)?,
            start: u32_of("first record", start)?,
            ..Default::default()
        };
        self.gpu
            .launch(&DATA, "gather")
            .params(&params)
            .read(&self.images)
            .read(&self.lut)
            .read(&records)
            .read(&labels)
            .write(&images)
            .write(&out_labels)
            .dispatch_1d(n, WG)?;
        Ok(Batch {
            images,
            labels: out_labels,
            len,
        })
    }
}

/// One batch on the GPU: images f32 (len, 1, S, S) in [0, 1], labels u32 (len).
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    pub len: usize,
}

/// Serves the batches of one split under one task, epoch after epoch.
///
/// The per-sample transforms are drawn once from the seed (the task's fixed data set: the same
/// rotation and shift for a given image every epoch) unless [`Batcher::resample`] is set, in which
/// case every epoch draws fresh ones. The order is shuffled every epoch from the seed for the train
/// part and kept for the test part (see [`Batcher::shuffle`]). The last batch of an epoch may be
/// short.
pub struct Batcher {
    split: Arc<GpuSplit>,
    task: Task,
    part: Part,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    resample: bool,
    canvas: Canvas,
    epoch: usize,
    samples: Vec<Sample>,
    records: Tensor,
    labels: Tensor,
}

impl Batcher {
    /// Upload `split` and prepare epoch 0.
    pub fn new(
        gpu: &Arc<Gpu>,
        split: &Split,
        task: Task,
        part: Part,
        batch_size: usize,
        seed: u64,
    ) -> Result<Batcher> {
        Self::on(GpuSplit::upload(gpu, split)?, task, part, batch_size, seed)
    }

    /// Serve batches of an already uploaded split (several tasks can share one upload).
    pub fn on(
        split: Arc<GpuSplit>,
        task: Task,
        part: Part,
        batch_size: usize,
        seed: u64,
    ) -> Result<Batcher> {
        if batch_size == 0 {
            return Err(Error::invalid("a batch size of 0: use at least 1"));
        }
        if task.rotates(part) && split.h != split.w {
            return Err(Error::invalid(format!(
                "task {task} rotates images, which needs square ones, not {}×{}",
                split.h, split.w
            )));
        }
        let canvas = task.canvas(split.h);
        let gpu = split.gpu.clone();
        let mut b = Batcher {
            canvas,
            task,
            part,
            batch_size,
            seed,
            shuffle: part == Part::Train,
            resample: false,
            epoch: 0,
            samples: Vec::new(),
            records: Tensor::empty_typed(&gpu, &[1], DType::U32)?,
            labels: Tensor::empty_typed(&gpu, &[1], DType::U32)?,
            split,
        };
        b.set_epoch(0)?;
        Ok(b)
    }

    /// Shuffle the order every epoch (default: for the train part only). Re-plans the current epoch.
    pub fn shuffle(mut self, on: bool) -> Result<Batcher> {
        self.shuffle = on;
        self.set_epoch(self.epoch)?;
        Ok(self)
    }

    /// Place the digits on `canvas` instead of the task's default for the split's side (a run's
    /// own `trans-sb` canvas, [`crate::config::RunConfig::canvas`]). Re-plans the current epoch.
    pub fn with_canvas(mut self, canvas: Canvas) -> Result<Batcher> {
        if canvas.size < self.split.h.max(self.split.w) + 2 * canvas.pad {
            return Err(Error::invalid(format!(
                "a {}-pixel canvas cannot hold {}×{} digits with {} px of padding",
                canvas.size, self.split.h, self.split.w, canvas.pad
            )));
        }
        self.canvas = canvas;
        self.set_epoch(self.epoch)?;
        Ok(self)
    }

    /// Draw fresh per-sample transforms every epoch (default: off, a fixed transformed data set).
    /// Re-plans the current epoch.
    pub fn resample(mut self, on: bool) -> Result<Batcher> {
        self.resample = on;
        self.set_epoch(self.epoch)?;
        Ok(self)
    }

    /// The samples of `epoch` in batch order, as drawn from the seed (no GPU work).
    pub fn plan(&self, epoch: usize) -> Vec<Sample> {
        let round = if self.resample { epoch as u64 } else { 0 };
        let fixed = self
            .task
            .plan(self.part, &self.split.labels, self.canvas, self.seed, round);
        if !self.shuffle {
            return fixed;
        }
        let tag = 100
            + match self.part {
                Part::Train => 1,
                Part::Test => 2,
            };
        stream(self.seed, tag, epoch as u64)
            .permutation(fixed.len())
            .into_iter()
            .map(|i| fixed[i])
            .collect()
    }

    /// Start epoch `epoch`: draw its order (and transforms, when resampling) and upload the records.
    pub fn set_epoch(&mut self, epoch: usize) -> Result<()> {
        let samples = self.plan(epoch);
        let mut rec = Vec::with_capacity(samples.len() * 4);
        for s in &samples {
            rec.extend_from_slice(&[s.index, s.rot, s.dx as u32, s.dy as u32]);
        }
        let labels: Vec<u32> = samples.iter().map(|s| s.label).collect();
        let gpu = self.split.gpu.clone();
        self.records = Tensor::from_u32(&gpu, &[samples.len(), 4], &rec)?;
        self.labels = Tensor::from_u32(&gpu, &[samples.len()], &labels)?;
        self.samples = samples;
        self.epoch = epoch;
        Ok(())
    }

    /// The current epoch.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Samples per epoch.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Batches per epoch (the last may be short).
    pub fn steps(&self) -> usize {
        self.samples.len().div_ceil(self.batch_size)
    }

    /// The device the batches are on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        self.split.gpu()
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn task(&self) -> Task {
        self.task
    }

    pub fn part(&self) -> Part {
        self.part
    }

    /// The canvas the batches are drawn on (S = `canvas().size`).
    pub fn canvas(&self) -> Canvas {
        self.canvas
    }

    /// This epoch's samples in batch order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples of batch `step` of this epoch.
    pub fn batch_samples(&self, step: usize) -> Result<&[Sample]> {
        let (start, len) = self.range(step)?;
        Ok(&self.samples[start..start + len])
    }

    fn range(&self, step: usize) -> Result<(usize, usize)> {
        if step >= self.steps() {
            return Err(Error::invalid(format!(
                "batch {step} of an epoch of {} batches",
                self.steps()
            )));
        }
        let start = step * self.batch_size;
        Ok((start, self.batch_size.min(self.samples.len() - start)))
    }

    /// Gather batch `step` of this epoch on the GPU (one kernel; nothing is read back).
    pub fn batch(&self, step: usize) -> Result<Batch> {
        let (start, len) = self.range(step)?;
        self.split
            .gather(self.canvas, &self.records, &self.labels, start, len)
    }
}
