//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic, counts, sizes) and then u8
//! data. Images have magic 2051 (`0x00000803`: u8 data, 3 dimensions: count, rows, columns), labels
//! 2049 (`0x00000801`: u8 data, 1 dimension: count). A file may be gzip-compressed; that is detected
//! from its first two bytes (`1f 8b`), not from its name.
//!
//! Every malformed input is an [`Error::Data`] naming the file and what is wrong: wrong magic, a
//! truncated header or body, trailing bytes, zero items, a broken gzip stream. Nothing panics and
//! nothing is silently truncated.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Magic number of an IDX image file (u8, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX label file (u8, 1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// Decoded IDX images: `n` images of `h × w` u8 grey levels, row-major, image after image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<u8>,
}

fn data_err(path: &str, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// Whether bytes start with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Inflate `bytes` if they are gzip (by content), else return them as they are. `name` is used in
/// error messages.
pub fn maybe_gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    if !is_gzip(bytes) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            data_err(
                name,
                format!("not a valid gzip stream ({e}); the file may be truncated or corrupt"),
            )
        })?;
    Ok(out)
}

/// Read a file whole (inflating gzip). A missing file is an error that says so.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            data_err(&name, "missing file (no such file)")
        } else {
            Error::Io {
                path: name.clone(),
                source: e,
            }
        }
    })?;
    maybe_gunzip(&bytes, &name)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn check_magic(bytes: &[u8], want: u32, header_len: usize, name: &str) -> Result<()> {
    if bytes.len() < 4 {
        return Err(data_err(
            name,
            format!(
                "truncated header: {} bytes, an IDX file starts with a 4-byte magic number",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != want {
        let what = match magic {
            IMAGES_MAGIC => " (that is an image file)",
            LABELS_MAGIC => " (that is a label file)",
            _ => "",
        };
        let kind = if want == IMAGES_MAGIC {
            "IDX images"
        } else {
            "IDX labels"
        };
        return Err(data_err(
            name,
            format!("wrong magic number {magic}{what}: expected {want} for {kind}"),
        ));
    }
    if bytes.len() < header_len {
        return Err(data_err(
            name,
            format!(
                "truncated header: {} bytes, expected {header_len}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

fn check_body(bytes: &[u8], header: usize, want: u64, what: &str, name: &str) -> Result<()> {
    let have = (bytes.len() - header) as u64;
    if have < want {
        return Err(data_err(
            name,
            format!("truncated data: the header promises {what} ({want} bytes) but only {have} bytes follow"),
        ));
    }
    if have > want {
        return Err(data_err(
            name,
            format!(
                "{} unexpected bytes after the {what} the header promises ({want} bytes)",
                have - want
            ),
        ));
    }
    Ok(())
}

/// Decode an IDX image file's (already inflated) bytes.
pub fn decode_images(bytes: &[u8], name: &str) -> Result<Images> {
    check_magic(bytes, IMAGES_MAGIC, 16, name)?;
    let (n, h, w) = (be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12));
    if n == 0 {
        return Err(data_err(name, "zero images"));
    }
    if h == 0 || w == 0 {
        return Err(data_err(name, format!("images of size {h}×{w}")));
    }
    let want = n as u64 * h as u64 * w as u64;
    check_body(bytes, 16, want, &format!("{n} images of {h}×{w}"), name)?;
    Ok(Images {
        n: n as usize,
        h: h as usize,
        w: w as usize,
        pixels: bytes[16..].to_vec(),
    })
}

/// Decode an IDX label file's (already inflated) bytes.
pub fn decode_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    check_magic(bytes, LABELS_MAGIC, 8, name)?;
    let n = be_u32(bytes, 4);
    if n == 0 {
        return Err(data_err(name, "zero labels"));
    }
    check_body(bytes, 8, n as u64, &format!("{n} labels"), name)?;
    Ok(bytes[8..].to_vec())
}

/// Read an IDX image file (gzip or raw).
pub fn read_images(path: &Path) -> Result<Images> {
    decode_images(&read_file(path)?, &path.display().to_string())
}

/// Read an IDX label file (gzip or raw).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    decode_labels(&read_file(path)?, &path.display().to_string())
}

/// Encode images as IDX bytes (raw, not compressed).
pub fn encode_images(img: &Images) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + img.pixels.len());
    for v in [IMAGES_MAGIC, img.n as u32, img.h as u32, img.w as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&img.pixels);
    out
}

/// Encode labels as IDX bytes (raw, not compressed).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Gzip-compress bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
