// Helpers shared by every shader family; prepended to each family's source (one copy here).

// The linear index of an invocation in a 1-D grid that the launcher may have folded into 2-D
// (`grid_1d`: x ≤ the per-dimension limit, y rows of x workgroups) of `wg` invocations each.
fn idx(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}

// Flat index (in an n×n plane) of the source of rot90^r(A)[a, b], numpy's counter-clockwise
// `rot90`: rot90(A)[a, b] = A[b, n − 1 − a].
fn rot_src(r: u32, a: u32, b: u32, n: u32) -> u32 {
    let n1 = n - 1u;
    switch r {
        case 0u: { return a * n + b; }
        case 1u: { return b * n + (n1 - a); }
        case 2u: { return (n1 - a) * n + (n1 - b); }
        default: { return (n1 - b) * n + a; }
    }
}


// D4 (SPEC §9, src/group.rs): element k = 4m + r acts on an n×n plane as
// g_k·A = flip_rows^m(rot90^r(A)), flip_rows(A)[a, b] = A[n − 1 − a, b]; C4 is the elements k < 4.
// d4_src(k, a, b, n) is the flat index of the source of (g_k·A)[a, b] in A.
fn d4_src(k: u32, a: u32, b: u32, n: u32) -> u32 {
    return rot_src(k % 4u, select(a, n - 1u - a, k >= 4u), b, n);
}

// The product g_k1 g_k2: (m1, r1)(m2, r2) = (m1 ⊕ m2, ((−1)^m2 · r1 + r2) mod 4).
fn d4_mul(k1: u32, k2: u32) -> u32 {
    let r1 = select(k1 % 4u, (4u - k1 % 4u) % 4u, k2 >= 4u);
    return 4u * ((k1 / 4u) ^ (k2 / 4u)) + (r1 + k2 % 4u) % 4u;
}

// The inverse of g_k: a rotation's is the opposite turn, a reflection is its own.
fn d4_inv(k: u32) -> u32 {
    return select((4u - k) % 4u, k, k >= 4u);
}
