//! The rotation groups of the group-equivariant models: C4 (90° rotations, SPEC §1) and D4 (90°
//! rotations and reflections, SPEC §9), with GrouPy's conventions.
//!
//! An element is an index `k = 4m + r` (m ∈ {0, 1} the reflection, r ∈ 0..4 the quarter turns):
//! `g_k·A = flip_rows^m(rot90^r(A))` on an n×n image A, with numpy's counter-clockwise `rot90`
//! (`rot90(A)[a, b] = A[b, n − 1 − a]`) and `flip_rows(A)[a, b] = A[n − 1 − a, b]` (numpy `flipud`).
//! C4 is the subgroup m = 0, with the same indices, so every function here serves both groups.
//! `shaders/common.wgsl` has the same functions for the kernels.

use crate::{Error, Result};

/// Which rotation group a model is equivariant to.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// The four rotations by multiples of 90° (SPEC §1).
    #[default]
    C4,
    /// The rotations and their reflections (SPEC §9, GrouPy's p4m).
    D4,
}

impl Group {
    /// Every group, in the order the CLI shows them.
    pub const ALL: [Group; 2] = [Group::C4, Group::D4];

    /// The number of elements (the size of a group map's orientation axis): 4 or 8.
    pub fn order(self) -> usize {
        match self {
            Group::C4 => 4,
            Group::D4 => 8,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Group::C4 => "c4",
            Group::D4 => "d4",
        }
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Group {
    type Err = Error;
    fn from_str(s: &str) -> Result<Group> {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown group '{}': use c4 or d4",
                    s.escape_debug()
                ))
            })
    }
}

/// The product `g_k1 g_k2`: `(m1, r1)(m2, r2) = (m1 ⊕ m2, ((−1)^m2 · r1 + r2) mod 4)` (SPEC §9).
pub fn mul(k1: usize, k2: usize) -> usize {
    let (m1, r1) = (k1 / 4, k1 % 4);
    let (m2, r2) = (k2 / 4, k2 % 4);
    let r1 = if m2 == 1 { (4 - r1) % 4 } else { r1 };
    4 * (m1 ^ m2) + (r1 + r2) % 4
}

/// The inverse of `g_k`: a rotation's is the opposite turn, a reflection is its own.
pub fn inv(k: usize) -> usize {
    if k >= 4 {
        k
    } else {
        (4 - k) % 4
    }
}

/// `src(k, s)`, the index of `g_k⁻¹ g_s`: which input orientation of a group convolution's filter
/// output orientation k reads at input orientation s (SPEC §9's table; `(s − k) mod 4` for C4).
pub fn src(k: usize, s: usize) -> usize {
    mul(inv(k), s)
}

/// The element k in words: its turn, and "flipped" for the reflections (the rows reversed after
/// the turn).
pub fn element_name(k: usize) -> &'static str {
    [
        "0°",
        "90°",
        "180°",
        "270°",
        "0° flipped",
        "90° flipped",
        "180° flipped",
        "270° flipped",
    ][k % 8]
}

/// (a', b') with `(g_k·A)[a, b] = A[a', b']` on an n×n image.
pub fn pix_src(k: usize, a: usize, b: usize, n: usize) -> (usize, usize) {
    let a = if k >= 4 { n - 1 - a } else { a };
    let (mut a, mut b) = (a, b);
    for _ in 0..k % 4 {
        // rot90(B)[a, b] = B[b, n − 1 − a]: one more rotation composes on the inside.
        (a, b) = (b, n - 1 - a);
    }
    (a, b)
}

/// `g_k·A` of every square n×n plane of x.
pub fn act_planes<T: Copy + Default>(x: &[T], n: usize, k: usize) -> Vec<T> {
    let nn = n * n;
    let mut out = vec![T::default(); x.len()];
    for pl in 0..x.len() / nn.max(1) {
        for a in 0..n {
            for b in 0..n {
                let (sa, sb) = pix_src(k, a, b, n);
                out[pl * nn + a * n + b] = x[pl * nn + sa * n + sb];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §9's table of src(k, s).
    const TABLE: [[usize; 8]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7],
        [3, 0, 1, 2, 5, 6, 7, 4],
        [2, 3, 0, 1, 6, 7, 4, 5],
        [1, 2, 3, 0, 7, 4, 5, 6],
        [4, 5, 6, 7, 0, 1, 2, 3],
        [5, 6, 7, 4, 3, 0, 1, 2],
        [6, 7, 4, 5, 2, 3, 0, 1],
        [7, 4, 5, 6, 1, 2, 3, 0],
    ];

    #[test]
    fn src_is_the_spec_table_and_the_product_is_the_action_on_images() {
        for (k, row) in TABLE.iter().enumerate() {
            for (s, &want) in row.iter().enumerate() {
                assert_eq!(src(k, s), want, "src({k}, {s})");
            }
        }
        // mul composes the actions: (g_k1 g_k2)·A = g_k1·(g_k2·A), on an image with no symmetry.
        let n = 5;
        let a: Vec<u32> = (0..(n * n) as u32).collect();
        for k1 in 0..8 {
            for k2 in 0..8 {
                let both = act_planes(&act_planes(&a, n, k2), n, k1);
                assert_eq!(act_planes(&a, n, mul(k1, k2)), both, "{k1}·{k2}");
            }
            assert_eq!(mul(k1, inv(k1)), 0);
            assert_eq!(mul(inv(k1), k1), 0);
        }
        // The eight elements act differently, and C4 is closed under the product.
        let images: std::collections::HashSet<Vec<u32>> =
            (0..8).map(|k| act_planes(&a, n, k)).collect();
        assert_eq!(images.len(), 8);
        for k1 in 0..4 {
            for k2 in 0..4 {
                assert_eq!(mul(k1, k2), (k1 + k2) % 4);
            }
        }
        // g_4 is numpy's flipud and g_1 its rot90.
        assert_eq!(pix_src(4, 0, 2, n), (4, 2));
        assert_eq!(pix_src(1, 0, 2, n), (2, 4));
    }
}
