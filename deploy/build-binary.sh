#!/usr/bin/env bash
# Builds the release `saker` binary: the one command both deploy/Dockerfile and
# tests/deploy/test_dockerfile.py run, so the image's binary is the binary the tests build.
#
#   deploy/build-binary.sh            build only (target/release/saker, or $CARGO_TARGET_DIR)
#   deploy/build-binary.sh DESTDIR    build, then install the image layout under DESTDIR:
#       DESTDIR/usr/bin/saker
#       DESTDIR/etc/saker/saker.yaml          example config (deploy/saker.yaml)
#       DESTDIR/etc/saker/saker_rules.yaml    the default rules (also compiled into the binary)
#       DESTDIR/etc/saker/rules.d/            empty; the Helm chart mounts customRules here
#
# Needs: cargo, clang, llvm, libelf-dev, zlib1g-dev, pkg-config, make, gcc, bpftool
# (the eBPF probe is compiled by clang from build.rs and libbpf is linked statically).
set -euo pipefail

cd "$(dirname "$0")/.."
DESTDIR="${1:-}"

target_dir="${CARGO_TARGET_DIR:-target}"
rules=rules/saker_rules.yaml
# Checked before the long build: an image without its default rules file would not start.
if [ -n "$DESTDIR" ] && [ ! -s "$rules" ]; then
  echo "build-binary.sh: no $rules in the source tree; the image needs the default rules file" >&2
  exit 1
fi

# --locked: the image must build the dependency versions Cargo.lock pins.
cargo build --release --locked -p saker

[ -z "$DESTDIR" ] && exit 0

install -D -m 0755 "$target_dir/release/saker" "$DESTDIR/usr/bin/saker"
install -D -m 0644 deploy/saker.yaml "$DESTDIR/etc/saker/saker.yaml"
install -D -m 0644 "$rules" "$DESTDIR/etc/saker/saker_rules.yaml"
install -d -m 0755 "$DESTDIR/etc/saker/rules.d"
echo "build-binary.sh: installed saker and $rules under $DESTDIR"
