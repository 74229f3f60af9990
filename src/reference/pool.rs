//! Reference pooling: spatial max / average (k×k, stride s, planes h×w), rotation pooling over the
//! axis of size 4 of (outer, 4, plane), and the global mean of (rows, n).

/// Max pooling; returns the pooled values and the arg-max (flat index in the plane, first in
/// row-major window order on ties).
pub fn max_pool(x: &[f64], h: usize, w: usize, k: usize, s: usize) -> (Vec<f64>, Vec<usize>) {
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let planes = x.len() / (h * w);
    let mut out = vec![0.0; planes * ho * wo];
    let mut arg = vec![0; planes * ho * wo];
    for pl in 0..planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut best = f64::NEG_INFINITY;
                let mut bi = 0;
                for dy in 0..k {
                    for dx in 0..k {
                        let q = (oy * s + dy) * w + ox * s + dx;
                        if x[pl * h * w + q] > best {
                            best = x[pl * h * w + q];
                            bi = q;
                        }
                    }
                }
                out[(pl * ho + oy) * wo + ox] = best;
                arg[(pl * ho + oy) * wo + ox] = bi;
            }
        }
    }
    (out, arg)
}

/// The max-pooling backward (scatter to the arg-max).
pub fn max_pool_bwd(x: &[f64], g: &[f64], h: usize, w: usize, k: usize, s: usize) -> Vec<f64> {
    let (_, arg) = max_pool(x, h, w, k, s);
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let mut dx = vec![0.0; x.len()];
    for (o, (&a, &gv)) in arg.iter().zip(g).enumerate() {
        let pl = o / (ho * wo);
        dx[pl * h * w + a] += gv;
    }
    dx
}

/// Average pooling.
pub fn avg_pool(x: &[f64], h: usize, w: usize, k: usize, s: usize) -> Vec<f64> {
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let planes = x.len() / (h * w);
    let mut out = vec![0.0; planes * ho * wo];
    for pl in 0..planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = 0.0;
                for dy in 0..k {
                    for dx in 0..k {
                        acc += x[pl * h * w + (oy * s + dy) * w + ox * s + dx];
                    }
                }
                out[(pl * ho + oy) * wo + ox] = acc / (k * k) as f64;
            }
        }
    }
    out
}

/// The average-pooling backward.
pub fn avg_pool_bwd(g: &[f64], h: usize, w: usize, k: usize, s: usize) -> Vec<f64> {
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let planes = g.len() / (ho * wo);
    let mut dx = vec![0.0; planes * h * w];
    for pl in 0..planes {
        for oy in 0..ho {
            for ox in 0..wo {
                for dy in 0..k {
                    for dx_ in 0..k {
                        dx[pl * h * w + (oy * s + dy) * w + ox * s + dx_] +=
                            g[(pl * ho + oy) * wo + ox] / (k * k) as f64;
                    }
                }
            }
        }
    }
    dx
}

/// Rotation pooling of (outer, n, plane): max (`max = true`) or mean over the orientation axis
/// of size n (4 for P4 maps, 8 for p4m).
pub fn rot_pool(x: &[f64], plane: usize, n: usize, max: bool) -> Vec<f64> {
    let outer = x.len() / (n * plane);
    let mut out = vec![0.0; outer * plane];
    for o in 0..outer {
        for q in 0..plane {
            let v: Vec<f64> = (0..n).map(|r| x[(o * n + r) * plane + q]).collect();
            out[o * plane + q] = if max {
                v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            } else {
                v.iter().sum::<f64>() / n as f64
            };
        }
    }
    out
}

/// The rotation-pooling backward (max: to the first arg-max over r).
pub fn rot_pool_bwd(x: &[f64], g: &[f64], plane: usize, n: usize, max: bool) -> Vec<f64> {
    let outer = x.len() / (n * plane);
    let mut dx = vec![0.0; x.len()];
    for o in 0..outer {
        for q in 0..plane {
            let gv = g[o * plane + q];
            if max {
                let mut br = 0;
                for r in 1..n {
                    if x[(o * n + r) * plane + q] > x[(o * n + br) * plane + q] {
                        br = r;
                    }
                }
                dx[(o * n + br) * plane + q] = gv;
            } else {
                for r in 0..n {
                    dx[(o * n + r) * plane + q] = gv / n as f64;
                }
            }
        }
    }
    dx
}

/// The mean of each row of (rows, n).
pub fn global_mean(x: &[f64], n: usize) -> Vec<f64> {
    x.chunks(n)
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect()
}

/// The global-mean backward.
pub fn global_mean_bwd(g: &[f64], n: usize) -> Vec<f64> {
    g.iter()
        .flat_map(|&v| std::iter::repeat_n(v / n as f64, n))
        .collect()
}
