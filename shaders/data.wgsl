// Batch gathering with the task transform applied per sample.
//
// The split's u8 images live on the GPU packed four per u32 (little-endian: pixel i is byte i % 4 of
// word i / 4), uploaded once. Each epoch uploads one record per sample (image index, quarter turns,
// dx, dy as i32 bits) and its label. Per step, `gather` writes the f32 (B, 1, S, S) batch and the u32
// (B) labels of records [start, start + B): one invocation per output pixel, which reads the source
// pixel by the inverse transform
//   canvas (y, x)  <-  shifted by (dx, dy):  (y - dy, x - dx)
//   digit  (a, b)  <-  placed at (pad, pad): (y - dy - pad, x - dx - pad)
//   source         <-  rot90^r (numpy, counter-clockwise): r=1: A[b, n-1-a]; r=2: A[n-1-a, n-1-b];
//                      r=3: A[n-1-b, a]
// with zero outside, and maps the grey level through a 256-entry table (v / 255).

struct P {
    n: u32,      // B * S * S
    s: u32,      // canvas side
    h: u32,      // digit side (rows)
    w: u32,      // digit side (columns)
    pad: u32,    // digit offset on the canvas
    start: u32,  // first record of the batch
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> lut: array<f32>;
@group(0) @binding(3) var<storage, read> records: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> rec_labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_labels: array<u32>;

const WG: u32 = 256u;

// Pixel `q` (flat, row-major) of image `img`, unpacked from four u8 per u32.
fn pixel(img: u32, q: u32) -> u32 {
    let i = img * p.h * p.w + q;
    return (images[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    let ss = p.s * p.s;
    let b = i / ss;
    let rem = i - b * ss;
    let y = i32(rem / p.s);
    let x = i32(rem % p.s);
    let rec = records[p.start + b];
    if rem == 0u {
        out_labels[b] = rec_labels[p.start + b];
    }
    let s = i32(p.s);
    let cy = y - bitcast<i32>(rec.w);
    let cx = x - bitcast<i32>(rec.z);
    var v = 0u;
    if cy >= 0 && cy < s && cx >= 0 && cx < s {
        let a = cy - i32(p.pad);
        let c = cx - i32(p.pad);
        if a >= 0 && a < i32(p.h) && c >= 0 && c < i32(p.w) {
            let ua = u32(a);
            let uc = u32(c);
            var q = ua * p.w + uc;
            if rec.y > 0u && rec.y < 8u {
                q = d4_src(rec.y, ua, uc, p.h); // transformed digits are square
            }
            v = pixel(rec.x, q);
        }
    }
    out[i] = lut[v];
}
