//! Reference image and feature-map transforms (plain loops; see `ops::transform`).

/// (a', b') with `rot90^r(A)[a, b] = A[a', b']` for an n×n plane; `rot90(A)[a, b] = A[b, n-1-a]`.
pub fn rot_src(r: usize, a: usize, b: usize, n: usize) -> (usize, usize) {
    let (mut a, mut b) = (a, b);
    for _ in 0..r % 4 {
        // rot90(B)[a, b] = B[b, n-1-a]: one more rotation composes on the inside.
        (a, b) = (b, n - 1 - a);
    }
    (a, b)
}

/// `rot90^r` of every square n×n plane of x.
pub fn rot90(x: &[f64], n: usize, r: usize) -> Vec<f64> {
    let nn = n * n;
    let mut out = vec![0.0; x.len()];
    for pl in 0..x.len() / nn.max(1) {
        for a in 0..n {
            for b in 0..n {
                let (sa, sb) = rot_src(r, a, b, n);
                out[pl * nn + a * n + b] = x[pl * nn + sa * n + sb];
            }
        }
    }
    out
}

/// The C4 action `g^r` on P4 maps (…, 4, n, n): applied r times, `(g·y)[s] = rot90(y[(s-1) mod 4])`.
pub fn c4_act(y: &[f64], n: usize, r: usize) -> Vec<f64> {
    let mut cur = y.to_vec();
    let nn = n * n;
    for _ in 0..r % 4 {
        let mut next = vec![0.0; cur.len()];
        for o in 0..cur.len() / (4 * nn).max(1) {
            for s in 0..4 {
                let src = &cur[(o * 4 + (s + 3) % 4) * nn..][..nn];
                let rot = rot90(src, n, 1);
                next[(o * 4 + s) * nn..][..nn].copy_from_slice(&rot);
            }
        }
        cur = next;
    }
    cur
}

/// The action of the D4 element k on group maps (…, order, n, n), order 4 (C4, k < 4) or 8 (D4):
/// `(g_k·y)[s] = g_k·(y[src(k, s)])` (SPEC §9), by a scatter: the plane s' of y goes to the
/// orientation `k·s'`.
pub fn group_act(y: &[f64], n: usize, order: usize, k: usize) -> Vec<f64> {
    let nn = n * n;
    let mut out = vec![0.0; y.len()];
    for o in 0..y.len() / (order * nn).max(1) {
        for s in 0..order {
            let t = super::d4::mul(k, s);
            let plane = super::d4::act(&y[(o * order + s) * nn..][..nn], n, k);
            out[(o * order + t) * nn..][..nn].copy_from_slice(&plane);
        }
    }
    out
}

/// `out[pl, y, x] = x[pl, y − oy, x − ox]` (zero outside), planes h×w → ho×wo.
pub fn shift_crop(
    x: &[f64],
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    oy: i64,
    ox: i64,
) -> Vec<f64> {
    let planes = x.len() / (h * w).max(1);
    let mut out = vec![0.0; planes * ho * wo];
    for pl in 0..planes {
        for y in 0..ho {
            for xx in 0..wo {
                let (sy, sx) = (y as i64 - oy, xx as i64 - ox);
                if sy >= 0 && sx >= 0 && sy < h as i64 && sx < w as i64 {
                    out[(pl * ho + y) * wo + xx] = x[(pl * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
    out
}

/// The adjoint of [`shift_crop`] (what its backward rule computes), written as a scatter.
pub fn shift_crop_adjoint(
    g: &[f64],
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    oy: i64,
    ox: i64,
) -> Vec<f64> {
    let planes = g.len() / (ho * wo).max(1);
    let mut dx = vec![0.0; planes * h * w];
    for pl in 0..planes {
        for y in 0..ho {
            for xx in 0..wo {
                let (sy, sx) = (y as i64 - oy, xx as i64 - ox);
                if sy >= 0 && sx >= 0 && sy < h as i64 && sx < w as i64 {
                    dx[(pl * h + sy as usize) * w + sx as usize] += g[(pl * ho + y) * wo + xx];
                }
            }
        }
    }
    dx
}
