//! The tasks of SPEC §6: what each sample looks like (a rotation, a placement on a canvas, a shift)
//! and what its label is. Every random choice comes from a seeded [`Rng`]; the per-sample parameters
//! are drawn on the CPU and the GPU (or the CPU reference) applies them.
//!
//! | task | canvas | train | test | classes |
//! |---|---|---|---|---|
//! | `plain` | 28×28 | upright | upright | 10 |
//! | `symmetric` | 28×28 | upright | rotated by r·90°, r ~ U{0..3} | 10 (label unchanged) |
//! | `rot-sb` | 28×28 | rotated | rotated | 20: digit for r ∈ {0, 1}, digit + 10 for r ∈ {2, 3} |
//! | `trans-sb` | 48×48 | shifted | shifted | 20: digit when shifted left, digit + 10 when right |
//! | `symmetric-d4` | 28×28 | upright | g_k, k ~ U{0..7} (SPEC §9) | 10 (label unchanged) |
//! | `mirror-sb` | 28×28 | g_k, k ~ U{0..7} | g_k, k ~ U{0..7} | 20: digit for m = 0, digit + 10 for m = 1 |
//!
//! Rotations are numpy's `rot90` (counter-clockwise): `rot90(A)[a, b] = A[b, n − 1 − a]`; the D4
//! element k = 4m + r is `flip_rows^m(rot90^r(A))` ([`crate::group`]). For
//! `trans-sb` the 28×28 digit is placed at (10, 10) on a zero 48×48 canvas (10 px of padding each
//! side), then the canvas is shifted left by U{5..15} px or right by U{5..15} px (each with
//! probability ½) and down by U{0..15} px with zero fill; pixels shifted off the canvas are lost.
//! A run may ask for a compact `trans-sb` canvas instead ([`Canvas::compact`], `--trans-pad`):
//! p px of padding and shifts within it, so no pixel is lost.

use crate::rng::Rng;
use crate::{Error, Result};

/// One of the tasks of SPEC §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// Upright digits, 10 classes.
    Plain,
    /// Train upright; test rotated by a random multiple of 90°, label unchanged.
    Symmetric,
    /// Train and test rotated; label = digit for 0°/90°, digit + 10 for 180°/270°.
    RotSb,
    /// 48×48 canvas shifted left or right by 5–15 px and down by 0–15 px; label = digit (left) or
    /// digit + 10 (right).
    TransSb,
    /// Train upright; test transformed by a random element of D4, label unchanged (SPEC §9).
    SymmetricD4,
    /// Train and test transformed by a random element of D4; label = digit without the reflection,
    /// digit + 10 with it (SPEC §9).
    MirrorSb,
}

/// Which part of a data set a sample comes from (the tasks treat them differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    Train,
    Test,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "test",
        }
    }
}

/// Padding of the digit on the `trans-sb` canvas, each side, for 28-pixel digits (SPEC §6).
pub const TRANS_PAD: usize = 10;
/// The smallest and largest horizontal shift of `trans-sb` (inclusive), for 28-pixel digits.
pub const TRANS_DX: (i32, i32) = (5, 15);
/// The largest downward shift of `trans-sb` (inclusive; the smallest is 0), for 28-pixel digits.
pub const TRANS_DY_MAX: i32 = 15;

/// A `trans-sb` length for 28-pixel digits scaled to digits of side `side` (rounded; at least
/// 1): the task keeps its geometry relative to the digit when a preset shrinks the input.
fn trans_scaled(len: i32, side: usize) -> i32 {
    ((len as f64 * side as f64 / super::SIDE as f64).round() as i32).max(1)
}

/// One sample as the batch kernel sees it: which image, how to transform it, its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sample {
    /// Index of the image in its split.
    pub index: u32,
    /// The group element applied to the digit before placing it: k = 4m + r (SPEC §9), r
    /// counter-clockwise quarter turns, then a flip of the rows when m = 1; 0..4 are the rotations.
    pub rot: u32,
    /// Horizontal shift of the canvas in pixels (negative: left).
    pub dx: i32,
    /// Vertical shift of the canvas in pixels (positive: down).
    pub dy: i32,
    /// The task's label.
    pub label: u32,
}

/// Where the transformed digit lives: a `size × size` canvas with the digit at (`pad`, `pad`),
/// and the shifts drawn on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Canvas {
    pub size: usize,
    pub pad: usize,
    /// The smallest and largest horizontal shift (inclusive; 0 for tasks that do not shift).
    pub dx: (i32, i32),
    /// The largest downward shift (inclusive).
    pub dy_max: i32,
}

impl Canvas {
    /// A `trans-sb` canvas that cuts no content: `pad` pixels of zeros on each side of the
    /// digit, shifts of ⌈pad/3⌉ to `pad` pixels left or right and 0 to `pad` down, so the digit
    /// always stays whole on the canvas and a left shift never equals a right one (`pad` at
    /// least 1). A smaller canvas than SPEC's (whose shifts reach past its padding), for presets sized for a CPU
    /// driver: the cloned layers' blocks grow with the fourth power of the canvas side.
    pub fn compact(side: usize, pad: usize) -> Canvas {
        let pad = pad.max(1);
        Canvas {
            size: side + 2 * pad,
            pad,
            dx: (pad.div_ceil(3) as i32, pad as i32),
            dy_max: pad as i32,
        }
    }
}

impl Task {
    /// Every task, in the order the CLI shows them.
    pub const ALL: [Task; 6] = [
        Task::Plain,
        Task::Symmetric,
        Task::RotSb,
        Task::TransSb,
        Task::SymmetricD4,
        Task::MirrorSb,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Plain => "plain",
            Task::Symmetric => "symmetric",
            Task::RotSb => "rot-sb",
            Task::TransSb => "trans-sb",
            Task::SymmetricD4 => "symmetric-d4",
            Task::MirrorSb => "mirror-sb",
        }
    }

    /// Number of classes of the task's labels.
    pub fn num_classes(self) -> usize {
        match self {
            Task::Plain | Task::Symmetric | Task::SymmetricD4 => 10,
            Task::RotSb | Task::TransSb | Task::MirrorSb => 20,
        }
    }

    /// Side of the (square) model input for 28×28 digits.
    pub fn image_size(self) -> usize {
        self.canvas(super::SIDE).size
    }

    /// The canvas for digits of side `side`. For `trans-sb`, SPEC §6's padding and shifts (10 px;
    /// 5–15 px left or right, 0–15 px down) belong to 28-pixel digits and scale with the side:
    /// 16-pixel inputs get 6 px of padding (a 28-pixel canvas) and shifts of 3–9 px and 0–9 px.
    pub fn canvas(self, side: usize) -> Canvas {
        match self {
            Task::TransSb => {
                let pad = trans_scaled(TRANS_PAD as i32, side) as usize;
                Canvas {
                    size: side + 2 * pad,
                    pad,
                    dx: (
                        trans_scaled(TRANS_DX.0, side),
                        trans_scaled(TRANS_DX.1, side),
                    ),
                    dy_max: trans_scaled(TRANS_DY_MAX, side),
                }
            }
            _ => Canvas {
                size: side,
                pad: 0,
                dx: (0, 0),
                dy_max: 0,
            },
        }
    }

    /// The canvas of a run whose `trans-sb` padding is `trans_pad` pixels (None: SPEC's, scaled
    /// to the side, [`Task::canvas`]): see [`Canvas::compact`]. Other tasks ignore it.
    pub fn canvas_for(self, side: usize, trans_pad: Option<usize>) -> Canvas {
        match (self, trans_pad) {
            (Task::TransSb, Some(pad)) => Canvas::compact(side, pad),
            _ => self.canvas(side),
        }
    }

    /// How many group elements the task draws from for samples of `part`: 1 (none), 4 (the
    /// rotations of C4) or 8 (D4).
    pub fn elements(self, part: Part) -> usize {
        match (self, part) {
            (Task::Symmetric, Part::Test) | (Task::RotSb, _) => 4,
            (Task::SymmetricD4, Part::Test) | (Task::MirrorSb, _) => 8,
            _ => 1,
        }
    }

    /// Whether the task transforms samples of `part` by a group element.
    pub fn rotates(self, part: Part) -> bool {
        self.elements(part) > 1
    }

    /// The symmetry group the task's transforms come from (C4 for the tasks that only rotate).
    pub fn group(self) -> crate::group::Group {
        match self {
            Task::SymmetricD4 | Task::MirrorSb => crate::group::Group::D4,
            _ => crate::group::Group::C4,
        }
    }

    /// The label of a digit under a sample's transform (the rule of SPEC §6).
    pub fn label(self, digit: u8, rot: u32, dx: i32) -> u32 {
        let d = digit as u32;
        match self {
            Task::Plain | Task::Symmetric | Task::SymmetricD4 => d,
            Task::RotSb => d + if rot >= 2 { 10 } else { 0 },
            Task::MirrorSb => d + if rot >= 4 { 10 } else { 0 },
            Task::TransSb => d + if dx > 0 { 10 } else { 0 },
        }
    }

    /// Draw one sample's transform for image `index` with digit `digit` on `canvas`.
    pub fn draw(self, part: Part, index: u32, digit: u8, canvas: Canvas, rng: &mut Rng) -> Sample {
        let (mut rot, mut dx, mut dy) = (0u32, 0i32, 0i32);
        if self.rotates(part) {
            rot = rng.below(self.elements(part)) as u32;
        }
        if self == Task::TransSb {
            let right = rng.below(2) == 1;
            let (lo, hi) = canvas.dx;
            let mag = lo + rng.below((hi - lo + 1) as usize) as i32;
            dx = if right { mag } else { -mag };
            dy = rng.below(canvas.dy_max as usize + 1) as i32;
        }
        Sample {
            index,
            rot,
            dx,
            dy,
            label: self.label(digit, rot, dx),
        }
    }

    /// The transform and label of every image of a split, in index order, drawn from `seed`
    /// (a different stream for each part, task and `round`; round 0 is the fixed data set, later
    /// rounds are fresh draws for training that resamples every epoch).
    pub fn plan(
        self,
        part: Part,
        labels: &[u8],
        canvas: Canvas,
        seed: u64,
        round: u64,
    ) -> Vec<Sample> {
        let tag = match part {
            Part::Train => 1,
            Part::Test => 2,
        } * 16
            + self as u64;
        let mut rng = stream(seed, tag, round);
        labels
            .iter()
            .enumerate()
            .map(|(i, &d)| self.draw(part, i as u32, d, canvas, &mut rng))
            .collect()
    }
}

/// A generator for (seed, purpose, round), so that independent uses of one seed draw independent
/// streams.
pub fn stream(seed: u64, tag: u64, round: u64) -> Rng {
    let mut z =
        seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng::new(z ^ (z >> 31))
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Task> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown task '{}': use {}",
                    s.escape_debug(),
                    Task::ALL.map(Task::name).join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_translation_task_keeps_the_spec_geometry_at_28_pixels_and_scales_it_with_the_side() {
        let c = Task::TransSb.canvas(28);
        assert_eq!((c.size, c.pad, c.dx, c.dy_max), (48, 10, (5, 15), 15));
        let c = Task::TransSb.canvas(16);
        assert_eq!((c.size, c.pad, c.dx, c.dy_max), (28, 6, (3, 9), 9));
        assert_eq!(Task::Symmetric.canvas(16).size, 16);
        // The drawn shifts cover the scaled range and no more; the label follows the side.
        let labels = vec![3u8; 4000];
        let s = Task::TransSb.plan(Part::Train, &labels, c, 7, 0);
        let dx: Vec<i32> = s.iter().map(|x| x.dx).collect();
        for (lo, hi) in [(-9, -3), (3, 9)] {
            for v in lo..=hi {
                assert!(dx.contains(&v), "shift {v} never drawn");
            }
        }
        assert!(dx.iter().all(|&v| (3..=9).contains(&v.abs())), "{dx:?}");
        assert_eq!(s.iter().map(|x| x.dy).max(), Some(9));
        assert!(s
            .iter()
            .all(|x| x.label == 3 + if x.dx > 0 { 10 } else { 0 }));
    }
}
