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

