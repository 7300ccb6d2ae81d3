// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Hook-dispatch experiment for kernel.md: empty programs on the generic
 * sys_exit hook, to measure what the kernel charges every syscall for the
 * hook itself. Build and attach one (root):
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h
 *   clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I. -I<libbpf include> \
 *         -c kernel-hooks.bpf.c -o hooks.o
 *   cargo run --release -p saker-probe --example attach_obj -- hooks.o btf_empty
 * (it stays attached until its stdin closes) and time a getpid storm. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 512); __type(key, u32); __type(value, u32); } progs SEC(".maps");

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_empty, struct pt_regs *regs, long ret) { return 0; }

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_reject, struct pt_regs *regs, long ret)
{
	u32 id = regs->orig_ax;
	if (id != 175 && id != 313 && id != 176) return 0;
	return 1;
}

SEC("raw_tp/sys_exit")
int raw_empty(struct bpf_raw_tracepoint_args *ctx) { return 0; }

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_tail, struct pt_regs *regs, long ret)
{
	u32 id = regs->orig_ax;
	bpf_tail_call(ctx, &progs, id & 511);
	return 0;
}
