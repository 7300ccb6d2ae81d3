// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Saker's live probe. One program per selected syscall exit (fexit where the
 * kernel allows trampolines, else the classic per-syscall tracepoint), the
 * sched_process_exec/exit tracepoints, and a generic tp_btf/sys_exit hook for
 * selected syscalls that have neither. Every record is a
 * complete scap v2 exit event (exit-only model) plus a 2-byte cpu trailer. */
#include "common.h"
#include "task.h"
#include "proc.h"
#include "simple.h"
#include "net.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Each handler gets three entry points with the same body, so events are
 * byte-identical whichever the loader attaches:
 *  - `f_<name>`: fexit on the syscall's x86-64 entry function. No syscall
 *    tracepoint is enabled, so unselected syscalls stay on the kernel's fast
 *    path (any enabled syscall tracepoint slows every syscall of the node);
 *  - `x_<name>`: the classic per-syscall exit tracepoint;
 *  - `g_<name>` (tp_btf/sys_exit): reached by a tail call from
 *    `sys_exit_dispatch` in generic mode (see the end of this file). */
/* fexit: arg 0 of __x64_sys_* is the user pt_regs, slot 1 the return value.
 * 5.x kernels whose BTF declares pt_regs only forward in some syscall's unit
 * refuse to read arg 0 ("arg0 type FWD is not a struct"), so the core object
 * takes the same registers from the task instead. */
#ifdef SAKER_MODERN
#define FEXIT_REGS(ctx) ((struct pt_regs *)(ctx)[0])
#else
#define FEXIT_REGS(ctx) cur_regs()
#endif
#define TP(tp, name)                                                                   \
	static __always_inline int body_##name(long ret, struct pt_regs *regs);           \
	SEC("fexit/__x64_sys_" #tp)                                                     \
	int f_##name(u64 *ctx)                                                          \
	{                                                                               \
		return body_##name((long)ctx[1], FEXIT_REGS(ctx));                         \
	}                                                                               \
	SEC("tracepoint/syscalls/sys_exit_" #tp)                                        \
	int x_##name(struct trace_event_raw_sys_exit *ctx)                              \
	{                                                                               \
		return body_##name(ctx->ret, cur_regs());                                  \
	}                                                                               \
	SEC("tp_btf/sys_exit")                                                          \
	int BPF_PROG(g_##name, struct pt_regs *regs, long ret)                          \
	{                                                                               \
		if (is_compat_task())                                                   \
			return 0;                                                       \
		return body_##name(ret, regs);                                             \
	}                                                                               \
	static __always_inline int body_##name(long ret, struct pt_regs *regs)
#define RET ret
#define REGS regs
/* Entries of syscalls.def: SIMPLE bodies go through h_simple (bpf/simple.h);
 * EV is the entry's event id, constant in each program. */
#define SIMPLE(fam, roles, n, desc) h_simple(RET, REGS, EV, roles, fam, n, desc)
#define SC(name, tp, nr, ev, state, body)                                              \
	TP(tp, name)                                                                    \
	{                                                                               \
		const u16 EV = ev;                                                          \
		return body;                                                                \
	}

#define R P(K_RES, 0)

#include "syscalls.def"

/* fexit never sees the child side of clone/fork (the child returns to user
 * space through ret_from_fork, not through the syscall function). The child
 * runs schedule_tail() first, with a copy of the parent's registers, so its
 * event is built there: the same bytes the sys_exit tracepoints give. */
#define PF_IO_WORKER 0x00000010
SEC("fexit/schedule_tail")
int BPF_PROG(f_clone_child, struct task_struct *prev)
{
	struct task_struct *t = cur_task();
	if (KR(t, flags) & (PF_KTHREAD | PF_IO_WORKER))
		return 0;
	struct pt_regs *regs = cur_regs();
	long nr = KR(regs, orig_ax);
	u32 mask = clone_mask();
	u16 type;
	int kind;
	if (nr == 56 && (mask & 1)) {
		type = 223, kind = 0;
	} else if (nr == 57 && (mask & 2)) {
		type = 225, kind = 1;
	} else if (nr == 58 && (mask & 4)) {
		type = 227, kind = 2;
	} else if (nr == 435 && (mask & 8)) {
		type = 335, kind = 3;
	} else {
		return 0;
	}
	return h_clone(0, regs, type, kind);
}

/* Generic mode: one tp_btf/sys_exit program for every syscall, tail-calling
 * the selected syscalls' g_<name> programs (slot = syscall number). Used
 * when a selected syscall has no per-syscall tracepoint on this kernel
 * (e.g. the module syscalls on a kernel built without modules): a generic
 * hook then runs on every syscall anyway, and serving the other selected
 * syscalls from it too avoids paying the perf-based per-syscall tracepoint
 * dispatch on top. Unselected syscalls cost one bounds check and an array
 * load here. */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_dispatch, struct pt_regs *regs, long ret)
{
	u32 id = regs->orig_ax;
	if (id < SC_SLOTS)
		bpf_tail_call(ctx, &sc_progs, id);
	return 0;
}

/* Feature probe: the loader loads and attaches only this program to learn
 * whether the kernel allows fexit trampolines (some kernels refuse them). */
SEC("fexit/__x64_sys_close")
int BPF_PROG(fexit_probe, struct pt_regs *regs, long ret)
{
	return 0;
}
