//! Products with a constant B stored in half precision: `C = A · B` where B (K × N) is held as
//! IEEE binary16 pairs in `u32` words, half the bytes of f32, and read by `mm_reg_h` (the register
//! kernel decoding each loaded word with integer operations, so every adapter runs it,
//! `SHADER_F16` or not). The products and sums stay f32: the result is `mm_reg`'s on B rounded to
//! half precision.
//!
//! For frozen operands read in full by every step (a faux model's clone blocks): B is converted
//! once on the host (the `half` crate, round to nearest even) and never changes.

use super::codegen::{effective_reg_tile, MatmulGen, REG_WORKGROUP};
use super::{dims, padded_c, reg_tile, unpack_c, MatmulP};
use crate::autograd::{Tape, Var};
use crate::ops::u32_of;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// A K × N matrix in half precision, rows padded to whole vec4 (zeros past N): `data` holds
/// K · ⌈N/4⌉ · 2 words, each word two halves (the lower-addressed element in the low 16 bits).
#[derive(Clone, Debug)]
pub struct HalfMatrix {
    pub data: Tensor,
    pub k: usize,
    pub n: usize,
}

/// The largest finite binary16 value: [`half_words`] refuses a value above it (near 65520 and up
/// it would round to infinity) and NaN, which `mm_reg_h` does not decode.
pub const HALF_MAX: f32 = 65504.0;

/// `values` (K × N, row-major) as the words of a [`HalfMatrix`]: each row padded with zeros to a
/// multiple of 4, each pair of halves one word, low half first.
pub fn half_words(values: &[f32], k: usize, n: usize) -> Result<Vec<u32>> {
    if values.len() != k * n {
        return Err(Error::shape(
            "half matrix",
            format!("{} values for {k} × {n}", values.len()),
        ));
    }
    if let Some(v) = values.iter().find(|v| v.is_nan() || v.abs() > HALF_MAX) {
        return Err(Error::invalid(format!(
            "{v} does not fit half precision (finite values up to {HALF_MAX}): keep these blocks in f32 (--half-blocks false)"
        )));
    }
    let n4 = n.div_ceil(4);
    let mut out = Vec::with_capacity(k * n4 * 2);
    for row in values.chunks(n.max(1)).take(k) {
        for pair in 0..n4 * 2 {
            let h = |j: usize| {
                row.get(j)
                    .map_or(0, |&v| u32::from(half::f16::from_f32(v).to_bits()))
            };
            out.push(h(2 * pair) | (h(2 * pair + 1) << 16));
        }
    }
    Ok(out)
}

impl HalfMatrix {
    /// The K × N f32 matrix `m` rounded to half precision (read back and converted on the host:
    /// made once, for a constant operand).
    pub fn from_f32(m: &Tensor) -> Result<HalfMatrix> {
        let (z, k, n) = dims("half matrix", m, false)?;
        if z != 0 {
            return Err(Error::shape(
                "half matrix",
                format!("a K × N matrix, got {:?}", m.shape()),
            ));
        }
        let words = half_words(&m.to_vec()?, k, n)?;
        let data = Tensor::from_u32(m.gpu(), &[k, n.div_ceil(4) * 2], &words)?;
        Ok(HalfMatrix { data, k, n })
    }

    /// The matrix as f32 (each element the half it is stored as), K × N.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let words = self.data.to_vec_u32()?;
        let n4 = self.n.div_ceil(4);
        let mut out = Vec::with_capacity(self.k * self.n);
        for row in words.chunks(n4 * 2) {
            for j in 0..self.n {
                let w = row[j / 2];
                let bits = if j % 2 == 0 { w & 0xffff } else { w >> 16 };
                out.push(half::f16::from_bits(bits as u16).to_f32());
            }
        }
        Ok(out)
    }

    /// Bytes the matrix occupies on the device.
    pub fn bytes(&self) -> usize {
        self.data.numel() * 4
    }
}

/// `a · b` for an (M, K) or (Z, M, K) f32 `a` and a half-precision `b` (K × N): one `mm_reg_h`
/// dispatch with the device's register tile, and an unpacking pass when N is not a multiple of 4.
pub fn matmul_half(a: &Tensor, b: &HalfMatrix) -> Result<Tensor> {
    if b.data.dtype() != DType::U32 || b.data.numel() != b.k * b.n.div_ceil(4) * 2 {
        return Err(Error::shape(
            "matmul_half",
            format!(
                "a half matrix of {} × {} holds {} words, got {}",
                b.k,
                b.n,
                b.k * b.n.div_ceil(4) * 2,
                b.data.numel()
            ),
        ));
    }
    let (za, m, k) = dims("matmul_half", a, false)?;
    if k != b.k {
        return Err(Error::shape(
            "matmul_half",
            format!("{:?} · a half matrix of {} × {}", a.shape(), b.k, b.n),
        ));
    }
    let gpu = a.gpu().clone();
    gpu.check_loops(
        "matmul_half",
        k,
        || format!("a product summing {k} terms per output"),
        "use smaller sizes or another adapter",
    )?;
    let (n, z) = (b.n, za.max(1));
    let n4 = n.div_ceil(4);
    let mut shape = a.shape().to_vec();
    *shape.last_mut().unwrap() = n;
    let out = Tensor::empty(&gpu, &shape)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    let padded = padded_c(&out, z, m, n)?;
    let cbuf = padded.as_ref().unwrap_or(&out);
    let (m32, n432) = (u32_of("rows", m)?, u32_of("vec4 columns", n4)?);
    let params = MatmulP {
        m: m32,
        n4: n432,
        k: u32_of("inner extent", k)?,
        sam: u32_of("row stride of A", k)?,
        sak: 1,
        sab: u32_of("batch stride of A", if za == 0 { 0 } else { m * k })?,
        sbb: 0,
        scb: u32_of("batch stride of C", m * n4)?,
        ..Default::default()
    };
    gpu.count_flops(2 * (z * m * n * k) as u64);
    let (tm, tn) = effective_reg_tile(reg_tile(&gpu), m32, n432);
    let sh = MatmulGen::RegHalf { tm, tn }.shader()?;
    gpu.launch(sh, "mm_reg_h")
        .params(&params)
        .read(&a)
        .read(&b.data)
        // The bias binding, unread (no bias flag): B again, as the f32 launcher binds it.
        .read(&b.data)
        .write(cbuf)
        .dispatch([
            n432.div_ceil(tn * REG_WORKGROUP),
            m32.div_ceil(tm),
            u32_of("batch", z)?,
        ])?;
    if let Some(padded) = &padded {
        unpack_c(padded, &out, m, n, z)?;
    }
    Ok(out)
}

/// Taped `A · Bᵀ` for a constant `B` (n, k) held in half precision as `b` (n × k) and its
/// transpose `bt` (k × n): the forward product is `A · bt`, the backward `dA = G · b`
/// ([`super::matmul_const_t`] with B rounded to half precision). No gradient reaches `B`.
pub fn matmul_half_const_t(
    tape: &mut Tape,
    a: Var,
    b: &HalfMatrix,
    bt: &HalfMatrix,
) -> Result<Var> {
    if b.k != bt.n || b.n != bt.k {
        return Err(Error::shape(
            "matmul_half",
            format!(
                "a {} × {} half matrix is not the transpose of a {} × {} one",
                bt.k, bt.n, b.k, b.n
            ),
        ));
    }
    let out = matmul_half(tape.value(a), bt)?;
    let b = b.clone();
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(matmul_half(g, &b)?)])),
    ))
}
