#!/usr/bin/env bash
# Boots VMLINUZ with INITRD under QEMU's TCG emulation (no KVM here) and prints
# the serial console. Usage: run-vm.sh VMLINUZ INITRD [EXTRA-KERNEL-ARGS] [TIMEOUT-S]
set -euo pipefail
k=$1 ir=$2 extra=${3:-} t=${4:-600}
exec timeout --foreground -k 5 "$t" qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp "${VM_SMP:-2}" \
  -kernel "$k" -initrd "$ir" -append "console=ttyS0 panic=-1 quiet loglevel=3 $extra" \
  -nographic -no-reboot </dev/null 2>&1
