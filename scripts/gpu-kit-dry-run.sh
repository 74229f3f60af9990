#!/usr/bin/env bash
# Try the GPU kit where a GPU server's conditions are: a bare Debian root file system (debootstrap,
# with python3 as GPU servers have it) with no Rust, no cargo and no Vulkan loader. No GPU either,
# so Mesa's lavapipe and the libraries it needs are unpacked into it for the dry run only (not the
# loader: the kit must bring that). Then KIT/run.sh --small, and --medium with a short limit, run
# inside it with chroot. Needs root, debootstrap and Debian's package mirror.
#
# usage: scripts/gpu-kit-dry-run.sh KIT ROOTFS OUT
#   KIT     a kit from `scripts/gpu-check.sh --prepare KIT`
#   ROOTFS  where the root file system goes (made with debootstrap when missing)
#   OUT     where the kit's results are copied back to
set -euo pipefail
[ $# = 3 ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2; }
kit="$(cd "$1" && pwd)"; rootfs="$2"; out="$3"
if [ ! -x "$rootfs/bin/sh" ]; then
  debootstrap --variant=minbase --include=python3 bookworm "$rootfs" http://deb.debian.org/debian
fi
for tool in cargo rustc; do
  if chroot "$rootfs" sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "dry run: $rootfs has $tool: not a bare server" >&2; exit 1
  fi
done
if chroot "$rootfs" sh -c 'ldconfig -p | grep -q libvulkan.so.1'; then
  echo "dry run: $rootfs already has a Vulkan loader: the kit's would not be tried" >&2; exit 1
fi
# lavapipe and what it links, without the loader (libvulkan1): unpacked, not installed.
debs="$(mktemp -d)"
(cd "$debs" && apt-get download mesa-vulkan-drivers libllvm15 libdrm-amdgpu1 libdrm2 libelf1 \
  libwayland-client0 libx11-xcb1 libx11-6 libx11-data libxau6 libxdmcp6 libbsd0 libmd0 libxcb1 \
  libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 \
  libxshmfence1 libedit2 libxml2 libicu72 libz3-4 libsensors5 libffi8 libexpat1 libtinfo6 \
  libdrm-common >/dev/null)
# Unpacked beside the root first: a package's ./lib would replace the merged /lib -> usr/lib link.
stage="$(mktemp -d)"
for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$stage"; done
for d in lib lib64 bin sbin; do
  if [ -d "$stage/$d" ]; then
    mkdir -p "$stage/usr/$d" && cp -a "$stage/$d/." "$stage/usr/$d/" && rm -rf "${stage:?}/$d"
  fi
done
cp -a "$stage/." "$rootfs/"
rm -rf "$debs" "$stage" "$rootfs/kit" "$rootfs/out"
cp -a "$kit" "$rootfs/kit"
mkdir -p "$rootfs/proc" && mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
status=0
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  /kit/run.sh --small /out || status=$?
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root MEDIUM_LIMIT=60s \
  /kit/run.sh --medium /out || status=$?
mkdir -p "$out"
cp -a "$rootfs/out/." "$out/"
echo "dry run: kit results in $out (exit $status)"
exit "$status"
