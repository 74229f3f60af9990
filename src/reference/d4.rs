//! The reference's own D4 (SPEC §9), independent of the engine's `group` module: the `src` table
//! typed in from SPEC, the product and inverse read off it, and the action on a plane written
//! forwards (turn the plane r times, then reverse its rows when m = 1). C4 is the elements 0..4;
//! its corner of the table is `(s − k) mod 4`.

/// `SRC[k][s]` = the index of `g_k⁻¹ g_s` (SPEC §9's table).
pub const SRC: [[usize; 8]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7],
    [3, 0, 1, 2, 5, 6, 7, 4],
    [2, 3, 0, 1, 6, 7, 4, 5],
    [1, 2, 3, 0, 7, 4, 5, 6],
    [4, 5, 6, 7, 0, 1, 2, 3],
    [5, 6, 7, 4, 3, 0, 1, 2],
    [6, 7, 4, 5, 2, 3, 0, 1],
    [7, 4, 5, 6, 1, 2, 3, 0],
];

/// The orientation `g_k⁻¹ g_s` that output orientation k reads at input orientation s.
pub fn src(k: usize, s: usize) -> usize {
    SRC[k][s]
}

/// `g_k g_s`: the t with `g_k⁻¹ g_t = g_s`.
pub fn mul(k: usize, s: usize) -> usize {
    (0..8)
        .find(|&t| SRC[k][t] == s)
        .expect("a row of SRC is a permutation")
}

/// `g_k⁻¹ = g_k⁻¹ g_0`.
pub fn inv(k: usize) -> usize {
    SRC[k][0]
}

/// `g_k·A` for every n×n plane of x: numpy's `rot90` r times (`rot90(A)[a, b] = A[b, n − 1 − a]`),
/// then the rows reversed when m = 1.
pub fn act(x: &[f64], n: usize, k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for plane in x.chunks(n * n) {
        let mut p = plane.to_vec();
        for _ in 0..k % 4 {
            p = (0..n * n).map(|i| p[(i % n) * n + n - 1 - i / n]).collect();
        }
        if k >= 4 {
            p = p.chunks(n).rev().flatten().copied().collect();
        }
        out.extend(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_group_and_its_mirrors_reverse_the_turns() {
        for k in 0..8 {
            assert_eq!(mul(k, inv(k)), 0);
            for s in 0..8 {
                assert_eq!(mul(k, src(k, s)), s);
                for t in 0..8 {
                    assert_eq!(mul(mul(k, s), t), mul(k, mul(s, t)));
                }
            }
        }
        // M R M = R⁻¹: a reflection reverses the sense of a turn.
        assert_eq!(mul(4, mul(1, 4)), 3);
        // The action is a homomorphism on an image with no symmetry.
        let n = 4;
        let a: Vec<f64> = (0..n * n)
            .map(|v| (v * v % 7) as f64 + v as f64 / 16.0)
            .collect();
        for k in 0..8 {
            for s in 0..8 {
                assert_eq!(act(&act(&a, n, s), n, k), act(&a, n, mul(k, s)), "{k}·{s}");
            }
        }
    }
}
