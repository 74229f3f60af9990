//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic, counts, sizes) and then u8
//! data. Images have magic 2051 (`0x00000803`: u8 data, 3 dimensions: count, rows, columns), labels
//! 2049 (`0x00000801`: u8 data, 1 dimension: count). A file may be gzip-compressed; that is detected
//! from its first two bytes (`1f 8b`), not from its name.
//!
//! Every malformed input is an [`Error::Data`] naming the file and what is wrong: wrong magic, a
//! truncated header or body, trailing bytes, zero items, a broken gzip stream, a size past
//! [`MAX_BODY_BYTES`]. Nothing panics and nothing is silently truncated. Reading is bounded: the
//! header is read first, then at most the bytes it declares for the items asked for (plus a
//! little, to notice trailing bytes), so a gzip bomb is never inflated past what the header
//! promises, and `--train-n 200` reads 200 images of a file however large it is.

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

/// The most bytes of images or labels one read may hold (1 GiB: 1.3 million 28×28 digits). A
/// header that declares more, for what is to be read, is refused before anything is read; ask for
/// fewer images (`--train-n`, `--test-n`) to read the start of a larger file.
pub const MAX_BODY_BYTES: u64 = 1 << 30;

/// At most this many trailing bytes are counted for the message about them.
const TRAILING_COUNTED: u64 = 1 << 20;

/// Whether bytes start with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// An IDX stream after its header: what the header declares, and the reader positioned at the
/// first data byte. Nothing past the header has been read (or, for gzip, inflated) yet.
pub struct IdxStream<'a> {
    name: String,
    reader: Box<dyn Read + 'a>,
    gz: bool,
    /// Bytes of data after the header, for an uncompressed file whose length is known.
    raw_body: Option<u64>,
    /// The dimensions the header declares: (count) for labels, (count, rows, columns) for images.
    pub dims: Vec<usize>,
}

fn read_err(name: &str, gz: bool, e: std::io::Error) -> Error {
    if gz {
        data_err(
            name,
            format!("not a valid gzip stream ({e}); the file may be truncated or corrupt"),
        )
    } else {
        Error::Io {
            path: name.to_string(),
            source: e,
        }
    }
}

/// Read into `out` until it holds `want` bytes or the stream ends; returns the bytes read. The
/// buffer grows with the data that actually arrives (never past `want`), so a header that
/// promises more than the stream holds costs no memory.
fn read_at_most(r: &mut dyn Read, want: u64, out: &mut Vec<u8>) -> std::io::Result<u64> {
    let start = out.len() as u64;
    let mut chunk = [0u8; 64 * 1024];
    while (out.len() as u64) - start < want {
        let left = want - (out.len() as u64 - start);
        let n = (chunk.len() as u64).min(left) as usize;
        let got = match r.read(&mut chunk[..n]) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.capacity() - out.len() < got {
            let grow = out.capacity().max(1 << 20);
            let room = (want - (out.len() as u64 - start)) as usize;
            out.reserve_exact(grow.min(room).max(got));
        }
        out.extend_from_slice(&chunk[..got]);
    }
    Ok(out.len() as u64 - start)
}

impl<'a> IdxStream<'a> {
    /// Open an IDX file (gzip or raw, told by content) and read its header. `magic` is
    /// [`IMAGES_MAGIC`] or [`LABELS_MAGIC`].
    pub fn open(path: &Path, magic: u32) -> Result<IdxStream<'static>> {
        let name = path.display().to_string();
        let file = crate::files::open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut br = std::io::BufReader::new(file);
        let gz = is_gzip(std::io::BufRead::fill_buf(&mut br).map_err(|e| Error::io(path, e))?);
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(br))
        } else {
            Box::new(br)
        };
        IdxStream::start(name, reader, gz, (!gz).then_some(len), magic)
    }

    /// The same over bytes in memory (the embedded data set, tests).
    pub fn from_bytes(bytes: &'a [u8], name: &str, magic: u32) -> Result<IdxStream<'a>> {
        let gz = is_gzip(bytes);
        let reader: Box<dyn Read + 'a> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        IdxStream::start(
            name.to_string(),
            reader,
            gz,
            (!gz).then_some(bytes.len() as u64),
            magic,
        )
    }

    fn start(
        name: String,
        mut reader: Box<dyn Read + 'a>,
        gz: bool,
        raw_len: Option<u64>,
        want: u32,
    ) -> Result<IdxStream<'a>> {
        let ndim = if want == IMAGES_MAGIC { 3 } else { 1 };
        let header_len = 4 + 4 * ndim as u64;
        let mut head = Vec::new();
        read_at_most(&mut reader, header_len, &mut head).map_err(|e| read_err(&name, gz, e))?;
        check_magic(&head, want, header_len as usize, &name)?;
        let dims: Vec<usize> = (0..ndim)
            .map(|i| be_u32(&head, 4 + 4 * i) as usize)
            .collect();
        Ok(IdxStream {
            name,
            reader,
            gz,
            raw_body: raw_len.map(|l| l.saturating_sub(header_len)),
            dims,
        })
    }

    /// Read `take` items of `item` bytes each (the first `take` of the `count` the header
    /// declares), and check that nothing follows the `count` items (a compressed stream is read
    /// to its end for that, and for its checksum, even when fewer are taken). `what` describes the
    /// whole body for the messages ("5 images of 28×28").
    fn body(mut self, count: usize, take: usize, item: u64, what: &str) -> Result<Vec<u8>> {
        let name = self.name.clone();
        let total = (count as u64).checked_mul(item);
        // An uncompressed file's length is checked against the header before anything is read.
        if let (Some(have), Some(want)) = (self.raw_body, total) {
            check_len(have, want, what, &name)?;
        }
        let want = (take as u64)
            .checked_mul(item)
            .filter(|&b| b <= MAX_BODY_BYTES)
            .ok_or_else(|| {
                data_err(
                    &name,
                    format!(
                        "{take} items of {item} bytes (of {what}) are more than the {MAX_BODY_BYTES} bytes one read may hold: read fewer (--train-n, --test-n)"
                    ),
                )
            })?;
        let mut out = Vec::new();
        let got = read_at_most(&mut self.reader, want, &mut out)
            .map_err(|e| read_err(&name, self.gz, e))?;
        if got < want {
            let promised = total.map_or(what.to_string(), |t| format!("{what} ({t} bytes)"));
            return Err(data_err(
                &name,
                format!(
                    "truncated data: the header promises {promised} but only {got} bytes follow"
                ),
            ));
        }
        // A compressed stream is read to its end even when fewer items are used: only there are
        // its checksum and length verified, so a corrupt stream is never trained on.
        if let (None, Some(total)) = (self.raw_body, total) {
            let rest = total - want;
            let skipped = std::io::copy(&mut (&mut self.reader).take(rest), &mut std::io::sink())
                .map_err(|e| read_err(&name, self.gz, e))?;
            if skipped < rest {
                return Err(data_err(
                    &name,
                    format!(
                        "truncated data: the header promises {what} ({total} bytes) but only {} bytes follow",
                        want + skipped
                    ),
                ));
            }
            let mut extra = Vec::new();
            let n = read_at_most(&mut self.reader, TRAILING_COUNTED, &mut extra)
                .map_err(|e| read_err(&name, self.gz, e))?;
            if n > 0 {
                let count = if n == TRAILING_COUNTED {
                    format!("{n} or more")
                } else {
                    n.to_string()
                };
                return Err(data_err(
                    &name,
                    format!(
                        "{count} unexpected bytes after the {what} the header promises ({total} bytes)"
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// The images of an image stream: the first `limit` (None: all), checked against the header.
    pub fn images(self, limit: Option<usize>) -> Result<Images> {
        let (n, h, w) = (self.dims[0], self.dims[1], self.dims[2]);
        if n == 0 {
            return Err(data_err(&self.name, "zero images"));
        }
        if h == 0 || w == 0 {
            return Err(data_err(&self.name, format!("images of size {h}×{w}")));
        }
        let take = limit.map_or(n, |l| l.min(n));
        let what = format!("{n} images of {h}×{w}");
        let pixels = self.body(n, take, h as u64 * w as u64, &what)?;
        Ok(Images {
            n: take,
            h,
            w,
            pixels,
        })
    }

    /// The labels of a label stream: the first `limit` (None: all), checked against the header.
    pub fn labels(self, limit: Option<usize>) -> Result<Vec<u8>> {
        let n = self.dims[0];
        if n == 0 {
            return Err(data_err(&self.name, "zero labels"));
        }
        let take = limit.map_or(n, |l| l.min(n));
        self.body(n, take, 1, &format!("{n} labels"))
    }

    /// The file's name as used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check_len(have: u64, want: u64, what: &str, name: &str) -> Result<()> {
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

/// Decode an IDX image file's bytes (gzip or raw).
pub fn decode_images(bytes: &[u8], name: &str) -> Result<Images> {
    IdxStream::from_bytes(bytes, name, IMAGES_MAGIC)?.images(None)
}

/// Decode an IDX label file's bytes (gzip or raw).
pub fn decode_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    IdxStream::from_bytes(bytes, name, LABELS_MAGIC)?.labels(None)
}

/// Read an IDX image file (gzip or raw) whole.
pub fn read_images(path: &Path) -> Result<Images> {
    IdxStream::open(path, IMAGES_MAGIC)?.images(None)
}

/// Read an IDX label file (gzip or raw) whole.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    IdxStream::open(path, LABELS_MAGIC)?.labels(None)
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
