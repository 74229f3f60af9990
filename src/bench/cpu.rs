//! Honest CPU baselines for the benchmark: a well-kept threaded GEMM (matrixmultiply, as ndarray
//! uses) for products.

/// `op(A)·op(B)` for square-or-not row-major f32 matrices, (m × k)·(k × n), via matrixmultiply.
pub fn sgemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the strides describe matrices inside the slices' bounds (checked by the asserts).
    assert!(a.len() >= m * k && b.len() >= k * n);
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
}
