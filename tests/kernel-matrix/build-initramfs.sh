#!/usr/bin/env bash
# Builds the kernel-matrix initramfs: busybox, the release saker binary (debug
# info stripped) with the libraries ldd lists, the static `behave` helper, the
# guest scripts and the upstream rules.
# Usage: build-initramfs.sh OUT.cpio.gz SAKER-BINARY [EXTRA-BINARY...]
# Extra binaries (the probe's live test executable) go to /bin/ with their libraries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${SAKER_SHARED:-$repo/../shared}
out=$1 saker=$2
shift 2
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
r=$w/root
mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,root,run,var/log,usr/bin,matrix,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do
  [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
done
objcopy --strip-debug "$saker" "$r/bin/saker"
# Shared libraries of the saker binary (same paths as on the build machine).
ldd "$saker" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
done
for x in "$@"; do
  objcopy --strip-debug "$x" "$r/bin/$(basename "$x" | sed 's/-[0-9a-f]\{16\}$//')"
done
gcc -O2 -static -o "$r/bin/behave" "$here/behave.c"
gcc -O2 -static -o "$r/bin/storm" "$repo/bench/storm.c"
cp "$here"/init "$r/init"
cp "$here"/*.sh "$r/matrix/" 2>/dev/null || true
rm -f "$r/matrix/build-initramfs.sh" "$r/matrix/run-vm.sh"
# Modules the tests need (overlayfs), per kernel release, from the kernel cache.
cache=${SAKER_CACHE:-$HOME/.cache/saker}/kernels
for k in "$cache"/*/; do
  if [ -f "$k/overlay.ko" ]; then
    rel=$(cat "$k/release"); mkdir -p "$r/lib/modules/$rel"; cp "$k/overlay.ko" "$r/lib/modules/$rel/"
  fi
done
mkdir -p "$r/rules"
cp "$shared"/falco-rules/falco_rules.yaml "$r/rules/"
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$r/etc/shadow"; chmod 600 "$r/etc/shadow"
echo matrix > "$r/etc/hostname"
(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$out"
