// Losses and metrics over logits (rows, classes) with integer labels, in one workgroup: the whole
// batch's mean cross-entropy, its correct count and (optionally) the gradient in one dispatch.

struct P {
    rows: u32,
    classes: u32,
    inv_rows: f32,
    mode: u32,      // bit 0: write dlogits; bit 1: add to loss_out and correct_out instead of setting them
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> correct_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

var<workgroup> part_loss: array<f32, 256>;
var<workgroup> part_correct: array<f32, 256>;

// Fused log-softmax cross-entropy and accuracy. Row r's loss is logsumexp(x_r) - x_r[label], its
// gradient row (softmax(x_r) - onehot(label)) / rows (the gradient of the batch mean), and it is
// correct when its first arg-max is its label. Thread t takes rows t, t + 256, …; the 256 partial
// sums are then added in a fixed tree, so the result does not depend on scheduling.
// loss_out[0] = the mean loss, correct_out[0] = the correct count (both added to, with mode bit 1).
@compute @workgroup_size(256)
fn ce_batch(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    var c = 0.0;
    for (var r = lid; r < p.rows; r += 256u) {
        let base = r * p.classes;
        var mx = logits[base];
        var best = 0u;
        for (var j = 1u; j < p.classes; j += 1u) {
            let v = logits[base + j];
            if v > mx {
                mx = v;
                best = j;
            }
        }
        var s = 0.0;
        for (var j = 0u; j < p.classes; j += 1u) {
            s += exp(logits[base + j] - mx);
        }
        let lse = mx + log(s);
        let y = labels[r];
        l += lse - logits[base + y];
        c += select(0.0, 1.0, best == y);
        if (p.mode & 1u) != 0u {
            for (var j = 0u; j < p.classes; j += 1u) {
                let sm = exp(logits[base + j] - lse);
                dlogits[base + j] = (sm - select(0.0, 1.0, j == y)) * p.inv_rows;
            }
        }
    }
    part_loss[lid] = l;
    part_correct[lid] = c;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if lid < w {
            part_loss[lid] += part_loss[lid + w];
            part_correct[lid] += part_correct[lid + w];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let mean = part_loss[0] * p.inv_rows;
        if (p.mode & 2u) != 0u {
            loss_out[0] += mean;
            correct_out[0] += part_correct[0];
        } else {
            loss_out[0] = mean;
            correct_out[0] = part_correct[0];
        }
    }
}
