//! Convolution as im2col + the matrix-product kernel (a checked variant of the forward pass).

use super::{finish, fwd_geo, params, ConvDims, Geometry, WG};
use crate::ops::{matmul, CONV};
use crate::tensor::Tensor;
use crate::Result;

/// The im2col matrix (B, Cin·k², Ho·Wo) of x.
pub fn im2col(x: &Tensor, d: ConvDims) -> Result<Tensor> {
    let geo = fwd_geo(&d);
    im2col_geo(x, geo.0, d.k, d.pad as i64, geo.3)
}

fn im2col_geo(
    x: &Tensor,
    (batch, cin, h, w): (usize, usize, usize, usize),
    k: usize,
    pad: i64,
    (ho, wo): (usize, usize),
) -> Result<Tensor> {
    let col = Tensor::empty(x.gpu(), &[batch, cin * k * k, ho * wo])?;
    let total = col.numel();
    if total > 0 {
        let p = params(batch, cin, h, w, 0, ho, wo, pad, 0, 0, 0, total)?;
        x.gpu()
            .launch(&CONV, "im2col")
            .constant("K", k as u32)
            .params(&p)
            .read(&x)
            .write(&col)
            .dispatch_1d(total, WG)?;
    }
    Ok(col)
}

/// The convolution as `W (Cout, Cin·k²) · im2col(x)`, plus the bias, then ReLU when `relu`.
pub(super) fn conv_im2col(
    x: &Tensor,
    w: &Tensor,
    (bias, relu): (Option<&Tensor>, bool),
    geo: Geometry,
) -> Result<Tensor> {
    let ((batch, cin, h, wd), (cout, k), pad, (ho, wo)) = geo;
    let col = im2col_geo(x, (batch, cin, h, wd), k, pad, (ho, wo))?;
    let wm = w.reshape(&[cout, cin * k * k])?;
    let y = matmul::matmul(&wm, &col, false, false)?.reshape(&[batch, cout, ho, wo])?;
    finish(y, bias, relu)
}
