// Random numbers from counter-based hashes: the same (seed, index) gives the same value on any
// adapter, with no state to carry between dispatches.

struct P {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> noise: array<f32>;

// The PCG output permutation of one 32-bit state step (O'Neill's pcg32 "RXS M XS").
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Standard normal noise: noise[i] = N(0, 1) by Box–Muller on a pair of hashes of (seed, i / 2);
// even i take the cosine, odd i the sine.
@compute @workgroup_size(256)
fn randn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.n { return; }
    let pair = t / 2u;
    let h1 = pcg(pcg(pair ^ pcg(p.seed_lo)) + p.seed_hi);
    let h2 = pcg(h1 ^ 0x9e3779b9u);
    // Uniforms in (0, 1]: 24 random bits.
    let u1 = (f32(h1 >> 8u) + 1.0) / 16777216.0;
    let u2 = f32(h2 >> 8u) / 16777216.0;
    let rad = sqrt(-2.0 * log(u1));
    let ang = 6.283185307179586 * u2;
    noise[t] = select(rad * sin(ang), rad * cos(ang), (t & 1u) == 0u);
}
