#!/usr/bin/env bash
# The one thing to run when a real GPU is at hand (under 8 minutes on a current card):
#   1. builds the binary and the GPU test binaries (release),
#   2. runs the kernel, convolution, gradient, layer and cloning tests on the GPU adapter,
#   3. runs `symclone-gpu bench` (every row is checked against the CPU reference before it is timed),
#   4. runs a paper-size slice: a lift clone at d = 28 for 200 iterations of the sampled loss (SPEC §3's
#      per-iteration size: 128 filters × 1,000 noise images), and one epoch each of gcnn and faux-gcnn
#      at 28×28, SPEC channels, on the 9,000 embedded training digits,
#   5. prints one Markdown table (and writes it to OUT/gpu-check.md) with the adapter's name.
#
# usage: scripts/gpu-check.sh [--small] [--out DIR] [--adapter TEXT] [--skip-tests] [--bin PATH]
#        scripts/gpu-check.sh --prepare KIT
#   --small       sizes for a CPU driver such as lavapipe (d = 16, 20 iterations, 16×16 inputs, 600
#                 digits, only the matmul rows of the bench: squares up to 512³ and the 1024³
#                 transposed forms): checks the script itself
#   --out DIR     where the logs, reports and the table go (default: gpu-check-out)
#   --adapter T   the adapter whose name contains T (default: the first `devices` lists)
#   --skip-tests  leave out step 2
#   --bin PATH    use this binary: no cargo, no build, no test binaries (step 2 becomes
#                 `symclone-gpu check`, every kernel variant against its CPU reference)
#   --prepare KIT build, here, the folder KIT (at most 64 MiB) to carry to a GPU server that has no
#                 Rust and no network: the release binary, the Vulkan and EGL loader packages
#                 (apt-get download), this script, scripts/torch-check.py (the same cases in
#                 PyTorch) and KIT/run.sh, which runs it all there (`KIT/run.sh --help`)
# Environment: SYMCLONE_BACKEND, SYMCLONE_FAMILY and SYMCLONE_LIMITS are passed through; CARGO_FLAGS
# is added to every cargo command (e.g. --offline on a machine without network).
set -euo pipefail

small=0
out=gpu-check-out
skip_tests=0
given_bin=
prepare=
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) given_bin="${2:?--bin needs a path}"; shift ;;
    --prepare) prepare="${2:?--prepare needs a folder}"; shift ;;
    --small) small=1 ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --adapter) export SYMCLONE_ADAPTER="${2:?--adapter needs a name}"; shift ;;
    --skip-tests) skip_tests=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$prepare" ]; then
  # The kit: everything a bare GPU server needs, built and downloaded here.
  root="$(cd "$(dirname "$0")/.." && pwd)"
  [ -e "$prepare" ] && [ -n "$(ls -A "$prepare" 2>/dev/null)" ] && {
    echo "gpu-check: $prepare exists and is not empty; give a new folder" >&2; exit 2; }
  mkdir -p "$prepare/bin" "$prepare/debs" || exit 2
  kit="$(cd "$prepare" && pwd)"
  (cd "$root" && cargo build --release ${CARGO_FLAGS:-} --bin symclone-gpu) || exit 1
  cp "$root/target/release/symclone-gpu" "$kit/bin/"
  strip "$kit/bin/symclone-gpu" 2>/dev/null || true
  cp "$root/scripts/gpu-check.sh" "$root/scripts/torch-check.py" "$kit/"
  cp "$root/scripts/gpu-kit-run.sh" "$kit/run.sh"
  chmod +x "$kit/run.sh" "$kit/gpu-check.sh"
  # The loaders (the vendor's driver is on the server; its loader may not be).
  (cd "$kit/debs" && apt-get download ${KIT_DEBS:-libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2}) \
    || { echo "gpu-check: apt-get download of the loader packages failed (run 'apt-get update' first?)" >&2; exit 1; }
  size=$(du -sm "$kit" | cut -f1)
  if [ "$size" -gt 64 ]; then
    echo "gpu-check: the kit is $size MiB, over the 64 MiB a GPU server takes" >&2; exit 1
  fi
  echo "kit ready in $kit ($size MiB): carry it and run '$prepare/run.sh OUT' (or --small, --medium) there"
  exit 0
fi

cd "$(dirname "$0")/.."
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bin=target/release/symclone-gpu
table="$out/gpu-check.md"
rows=()
status=0

# Seconds since the epoch, with fractions.
now() { date +%s.%N; }
# Elapsed seconds since $1, one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# A field of a JSON file by a Python expression on `j` (the parsed file); "—" where it fails.
field() {
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null || echo "—"
}
# Run one step: name, log file, command...; records the time and whether it passed.
step() {
  local name="$1" log="$2"
  shift 2
  echo "== $name" >&2
  local t0
  t0="$(now)"
  if "$@" >"$log" 2>&1; then
    echo "ok ($(since "$t0") s)"
  else
    status=1
    echo "FAILED after $(since "$t0") s: see $log"
    tail -n 5 "$log" >&2
  fi
}

if [ "$small" = 1 ]; then
  d=16; iters=20; filters=8; cbatch=64
  side=16; down=true; channels=4,8,8,8; train_n=600; max_square=512; reps=3
  bench_filter=(--filter matmul)
else
  bench_filter=()
  d=28; iters=200; filters=128; cbatch=1000
  side=28; down=false; channels=10,20,20,20; train_n=9000; max_square=4096; reps=10
fi

if [ -n "$given_bin" ]; then
  bin="$given_bin"
  skip_tests=1
  [ -x "$bin" ] || { echo "gpu-check: --bin $bin is not an executable" >&2; exit 2; }
else
  r="$(step build "$out/build.log" cargo build --release ${CARGO_FLAGS:-} --bins --tests)"
  rows+=("| build (release) | $r | |")
  [ -x "$bin" ] || { echo "gpu-check: no $bin after the build (see $out/build.log)" >&2; exit 1; }
fi

"$bin" devices >"$out/devices.txt" 2>&1 || true
adapter="$(SYMCLONE_ADAPTER="${SYMCLONE_ADAPTER:-}" "$bin" devices --json 2>/dev/null \
  | python3 -c "import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print('%s (%s, %s)' % (d.get('name', '?'), d.get('backend', '?'), d.get('device_type', '?')))" 2>/dev/null \
  || head -n 1 "$out/devices.txt")"

if [ "$skip_tests" = 0 ]; then
  r="$(step tests "$out/tests.log" cargo test --release ${CARGO_FLAGS:-} \
    --test kernels --test conv --test grad --test layers --test fold --test shaders --test mixer_ops --test clone)"
  passed="$(grep -Eo '[0-9]+ passed' "$out/tests.log" | awk '{ s += $1 } END { print s + 0 }')"
  rows+=("| tests on the adapter (kernels, conv, grad, layers, fold, shaders, mixer_ops, clone) | $r | $passed passed |")
fi

if [ -n "$given_bin" ] && "$bin" check --help >/dev/null 2>&1; then
  r="$(step check "$out/check.log" "$bin" check --markdown "$out/check.md" --json "$out/check.json")"
  summary="$(tail -n 1 "$out/check.log")"
  rows+=("| check: every kernel variant against its CPU reference | $r | ${summary:-—} |")
fi

r="$(step bench "$out/bench.log" "$bin" bench --reps "$reps" --max-square "$max_square" \
  "${bench_filter[@]}" --markdown "$out/bench.md" --json "$out/bench.json")"
best="$(field "$out/bench.json" "'%.1f GFLOP/s (%s)' % max((x['work']/x['gpu_s']/1e9, x['case']) for x in j if x['unit']=='GFLOP/s' and x['case'].startswith('matmul'))")"
rows+=("| bench (every row checked against the CPU reference) | $r | fastest matmul row: $best |")

r="$(step "lift clone d=$d, $iters sampled iterations" "$out/clone.log" "$bin" clone --preset paper --kind lift \
  --dim "$d" --clone-loss sampled --clone-iters "$iters" --clone-filters "$filters" \
  --clone-batch "$cbatch" --out "$out/clone")"
mse="$(grep -Eo 'relative [0-9.e+-]+'  "$out/clone.log" | tail -n 1 || true)"
rows+=("| lift clone, d = $d, $iters iterations of the sampled loss ($filters filters × $cbatch images) | $r | ${mse:-—} |")

r="$(step "one epoch of gcnn and faux-gcnn" "$out/train.log" "$bin" run --tasks symmetric \
  --models gcnn,faux-gcnn --side "$side" --downsample "$down" --channels "$channels" --epochs 1 \
  --train-n "$train_n" --clone-loss exact --clone-iters 50 --out "$out/train")"
for m in gcnn faux-gcnn; do
  t="$(field "$out/train/report.json" "'%.1f s, %.1f %% on rotated test digits' % next((x['train_seconds'], 100*x['mean']) for x in j['results'] if x['model'].lower().replace('-', '')=='${m//-/}')")"
  rows+=("| one epoch of $m, ${side}×${side}, channels $channels, $train_n digits | $r | $t |")
done
t="$(field "$out/train/report.json" "'%.1f s' % sum(c['stats']['seconds'] for c in j['clones'])")"
rows+=("| its clones (exact loss, 50 iterations) | | $t |")

{
  echo "Adapter: $adapter$([ "$small" = 1 ] && echo ' (--small sizes)')"
  echo
  echo "| step | result | measured |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$table"
exit "$status"
