#!/usr/bin/env bash
# The GPU kit's one command, on a GPU server with no Rust and no network (`scripts/gpu-check.sh
# --prepare KIT` builds the kit; this file is KIT/run.sh there):
#   1. finds a Vulkan loader (the system's, else the kit's own packages, unpacked beside this file)
#      and the vendor's driver (VK_DRIVER_FILES when set, else every ICD file in the usual places);
#   2. runs gpu-check.sh on the kit's binary: `check` (every kernel variant against its CPU
#      reference), `bench`, and the paper-size slice (a lift clone at d = 28, one epoch each of
#      gcnn and faux-gcnn at 28×28);
#   3. runs torch-check.py (the same cases in PyTorch) where python3 has PyTorch;
#   4. writes one Markdown table, OUT/gpu-check.md, headed with the card's name.
# Everything together stays within 8 minutes (each step has its own time limit).
#
# usage: run.sh [--small] OUT      the check (--small: sizes for a CPU driver, to try the kit)
#        run.sh --medium OUT       `run --preset medium` under a wall-clock limit (MEDIUM_LIMIT,
#                                  default 9m): the method at SPEC size, OUT/medium/report.html;
#                                  calling it again with the same OUT goes on where it stopped
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mode=check
small=()
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --small) small=(--small) ;;
    --medium) mode=medium ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "run.sh: one OUT folder only" >&2; exit 2; }; out="$1" ;;
  esac
  shift
done
[ -n "$out" ] || { echo "run.sh: give the output folder (see --help)" >&2; exit 2; }
mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
bin="$here/bin/symclone-gpu"

# Unpack a .deb into a folder: dpkg-deb where the system has it, else Python's ar and tar.
unpack() {
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else
    python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8  # "!<arch>\n", then 60-byte member headers
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip(), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
EOF
  fi
}

# 1. The Vulkan loader and the vendor's driver.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  mkdir -p "$here/root"
  for f in "$here"/debs/*.deb; do
    unpack "$f" "$here/root" || { echo "run.sh: could not unpack $f" >&2; exit 1; }
  done
  export LD_LIBRARY_PATH="$here/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "run.sh: no Vulkan loader on this system: using the kit's" >&2
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icds="$(ls /usr/local/nvidia/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
    /usr/share/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null | paste -sd:)"
  if [ -n "$icds" ]; then
    export VK_DRIVER_FILES="$icds"
  else
    echo "run.sh: no Vulkan driver (ICD file) found; set VK_DRIVER_FILES to the vendor's" >&2
  fi
fi
for egl in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$egl" ] && [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
done
"$bin" devices >"$out/devices.txt" 2>&1 || {
  echo "run.sh: the binary found no adapter:" >&2; cat "$out/devices.txt" >&2; exit 1; }

if [ "$mode" = medium ]; then
  resume=()
  [ -f "$out/medium/config.json" ] && resume=(--resume)
  "$bin" run --preset medium --time-limit "${MEDIUM_LIMIT:-9m}" --out "$out/medium" "${resume[@]}" \
    > "$out/medium.md" 2> "$out/medium.log"
  code=$?
  tail -n 3 "$out/medium.log" >&2
  exit "$code"
fi

# 2. The engine's check, bench and paper-size slice.
timeout "${CHECK_LIMIT:-390}" "$here/gpu-check.sh" --bin "$bin" --out "$out" "${small[@]}"
status=$?
[ "$status" = 124 ] && echo "| gpu-check | stopped at its time limit (${CHECK_LIMIT:-390} s) | |" >> "$out/gpu-check.md"

# 3. The same cases in PyTorch.
if python3 -c 'import torch' 2>/dev/null; then
  if timeout "${TORCH_LIMIT:-60}" python3 "$here/torch-check.py" "${small[@]}" \
    --json "$out/torch-check.json" > "$out/torch-check.md" 2> "$out/torch-check.log"; then
    { echo; cat "$out/torch-check.md"; } >> "$out/gpu-check.md"
  else
    echo "| torch-check | FAILED (see torch-check.log) | |" >> "$out/gpu-check.md"
    status=1
  fi
else
  echo "| torch-check | no PyTorch here: left out | |" >> "$out/gpu-check.md"
fi
[ -f "$out/torch-check.md" ] && cat "$out/torch-check.md"
exit "$status"
