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
#define SIMPLE(tp, type, fam, n, desc) \
	TP(tp, tp) { return h_simple(RET, REGS, type, fam, n, desc); }

#define R P(K_RES, 0)

/* process */
TP(clone, clone) { return h_clone(RET, REGS, 223, 0); }
TP(fork, fork) { return h_clone(RET, REGS, 225, 1); }
TP(vfork, vfork) { return h_clone(RET, REGS, 227, 2); }
TP(clone3, clone3) { return h_clone(RET, REGS, 335, 3); }
TP(execve, execve) { return h_exec_fail(RET, REGS, 0); }
TP(execveat, execveat) { return h_exec_fail(RET, REGS, 1); }

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

/* files */
TP(open, open) { return h_open(RET, REGS, 0); }
TP(openat, openat) { return h_open(RET, REGS, 1); }
TP(openat2, openat2) { return h_open(RET, REGS, 2); }
TP(creat, creat) { return h_open(RET, REGS, 3); }
SIMPLE(close, 5, FAM_CLOSE, 2, D2(R, P(K_INT, 0)))
SIMPLE(dup, 367, FAM_OTHER, 2, D2(R, P(K_INT, 0)))
SIMPLE(dup2, 363, FAM_OTHER, 3, D3(R, P(K_INT, 0), P(K_INT, 1)))
SIMPLE(dup3, 365, FAM_OTHER, 4, D4(R, P(K_INT, 0), P(K_INT, 1), P(K_OFL, 2)))
TP(pipe, pipe) { return h_pipe(RET, REGS, 0); }
TP(pipe2, pipe2) { return h_pipe(RET, REGS, 1); }
SIMPLE(chdir, 95, FAM_OTHER, 2, D2(R, P(K_STR, 0)))
SIMPLE(fchdir, 97, FAM_OTHER, 2, D2(R, P(K_INT, 0)))
SIMPLE(memfd_create, 405, FAM_OTHER, 3, D3(R, P(K_STR, 0), P(K_U32, 1)))
SIMPLE(symlink, 179, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_STR, 1)))
SIMPLE(symlinkat, 181, FAM_FILEOP, 4, D4(R, P(K_STR, 0), P(K_INT, 1), P(K_STR, 2)))
SIMPLE(link, 309, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_STR, 1)))
SIMPLE(linkat, 311, FAM_FILEOP, 6,
       D6(R, P(K_INT, 0), P(K_STR, 1), P(K_INT, 2), P(K_STR, 3), P(K_U32, 4)))
SIMPLE(rename, 175, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_STR, 1)))
SIMPLE(renameat, 177, FAM_FILEOP, 5, D5(R, P(K_INT, 0), P(K_STR, 1), P(K_INT, 2), P(K_STR, 3)))
SIMPLE(renameat2, 319, FAM_FILEOP, 6,
       D6(R, P(K_INT, 0), P(K_STR, 1), P(K_INT, 2), P(K_STR, 3), P(K_U32, 4)))
SIMPLE(unlink, 301, FAM_FILEOP, 2, D2(R, P(K_STR, 0)))
SIMPLE(unlinkat, 303, FAM_FILEOP, 4, D4(R, P(K_INT, 0), P(K_STR, 1), P(K_U32, 2)))
SIMPLE(mkdir, 277, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_MODE, 1)))
SIMPLE(mkdirat, 305, FAM_FILEOP, 4, D4(R, P(K_INT, 0), P(K_STR, 1), P(K_MODE, 2)))
SIMPLE(rmdir, 279, FAM_FILEOP, 2, D2(R, P(K_STR, 0)))
SIMPLE(chmod, 315, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_MODE, 1)))
SIMPLE(fchmod, 317, FAM_FILEOP, 3, D3(R, P(K_INT, 0), P(K_MODE, 1)))
SIMPLE(fchmodat, 313, FAM_FILEOP, 4, D4(R, P(K_INT, 0), P(K_STR, 1), P(K_MODE, 2)))
SIMPLE(chown, 379, FAM_FILEOP, 4, D4(R, P(K_STR, 0), P(K_U32, 1), P(K_U32, 2)))
SIMPLE(lchown, 381, FAM_FILEOP, 4, D4(R, P(K_STR, 0), P(K_U32, 1), P(K_U32, 2)))
SIMPLE(fchown, 383, FAM_FILEOP, 4, D4(R, P(K_INT, 0), P(K_U32, 1), P(K_U32, 2)))
SIMPLE(fchownat, 385, FAM_FILEOP, 6,
       D6(R, P(K_INT, 0), P(K_STR, 1), P(K_U32, 2), P(K_U32, 3), P(K_U32, 4)))
SIMPLE(mount, 257, FAM_FILEOP, 5, D5(R, P(K_STR, 0), P(K_STR, 1), P(K_STR, 2), P(K_MNTFL, 3)))
/* x86-64 umount2 is SYSCALL_DEFINE2(umount, …): its tracepoint is sys_exit_umount. */
TP(umount, umount2) { return h_simple(RET, REGS, 391, FAM_FILEOP, 3, D3(R, P(K_STR, 0), P(K_U32, 1))); }

/* credentials, namespaces, sessions */
SIMPLE(setuid, 199, FAM_OTHER, 2, D2(R, P(K_U32, 0)))
SIMPLE(setgid, 201, FAM_OTHER, 2, D2(R, P(K_U32, 0)))
SIMPLE(setresuid, 193, FAM_OTHER, 4, D4(R, P(K_U32, 0), P(K_U32, 1), P(K_U32, 2)))
SIMPLE(setresgid, 195, FAM_OTHER, 4, D4(R, P(K_U32, 0), P(K_U32, 1), P(K_U32, 2)))
SIMPLE(setreuid, 427, FAM_OTHER, 3, D3(R, P(K_U32, 0), P(K_U32, 1)))
SIMPLE(setregid, 429, FAM_OTHER, 3, D3(R, P(K_U32, 0), P(K_U32, 1)))
SIMPLE(setsid, 275, FAM_OTHER, 1, D1(R))
SIMPLE(setpgid, 295, FAM_OTHER, 3, D3(R, P(K_INT, 0), P(K_INT, 1)))
TP(capset, capset) { return h_capset(RET, REGS); }
SIMPLE(unshare, 285, FAM_OTHER, 2, D2(R, P(K_CLFL, 0)))
SIMPLE(setns, 241, FAM_OTHER, 3, D3(R, P(K_INT, 0), P(K_CLFL, 1)))
TP(prctl, prctl) { return h_prctl(RET, REGS); }
TP(ptrace, ptrace) { return h_ptrace(RET, REGS); }
SIMPLE(kill, 129, FAM_OTHER, 3, D3(R, P(K_INT, 0), P(K_U8, 1)))
SIMPLE(tkill, 131, FAM_OTHER, 3, D3(R, P(K_INT, 0), P(K_U8, 1)))
SIMPLE(tgkill, 133, FAM_OTHER, 4, D4(R, P(K_INT, 0), P(K_INT, 1), P(K_U8, 2)))
SIMPLE(bpf, 369, FAM_OTHER, 2, D2(R, P(K_U32, 0)))
SIMPLE(userfaultfd, 321, FAM_OTHER, 2, D2(R, P(K_OFL, 0)))
SIMPLE(init_module, 411, FAM_OTHER, 4, D4(R, P(K_EMPTY, 0), P(K_U64, 1), P(K_STR, 2)))
SIMPLE(finit_module, 413, FAM_OTHER, 4, D4(R, P(K_INT, 0), P(K_STR, 1), P(K_U32, 2)))
SIMPLE(delete_module, 425, FAM_OTHER, 3, D3(R, P(K_STR, 0), P(K_U32, 1)))

/* network */
SIMPLE(socket, 19, FAM_NET, 5, D5(R, P(K_U32, 0), P(K_U32, 1), P(K_U32, 2), P(K_OFL, 1)))
SIMPLE(listen, 25, FAM_NET, 3, D3(R, P(K_INT, 0), P(K_I32, 1)))
TP(bind, bind) { return h_bind(RET, REGS); }
TP(connect, connect) { return h_connect(RET, REGS); }
TP(accept, accept) { return h_accept(RET, REGS, 0); }
TP(accept4, accept4) { return h_accept(RET, REGS, 1); }
TP(sendto, sendto) { return h_sendto(RET, REGS); }
TP(sendmsg, sendmsg) { return h_sendmsg(RET, REGS); }

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
