/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Syscall arguments, task fields, dentry paths and cgroup paths. */
#pragma once
#include "common.h"
#include "compat.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MAX_COMP 40
#define MAX_CG_COMP 6
#define PPM_AT_FDCWD -100
#define FMODE_CREATED_BIT (1 << 20)

/* x86-64 syscall argument registers: di si dx r10 r8 r9. */
static __always_inline unsigned long sc_arg(struct pt_regs *regs, int i)
{
	/* Modern: regs is a trusted BTF pointer, so these are direct loads. */
	switch (i) {
	case 0: return KR(regs, di);
	case 1: return KR(regs, si);
	case 2: return KR(regs, dx);
	case 3: return KR(regs, r10);
	case 4: return KR(regs, r8);
	default: return KR(regs, r9);
	}
}

/* A 32-bit (ia32) syscall: its number means another syscall. The
 * per-syscall tracepoints ignore these; the generic hook must too. */
#define TS_COMPAT 0x0002
static __always_inline int is_compat_task(void)
{
	return KR(cur_task(), thread_info.status) & TS_COMPAT;
}

static __always_inline u32 encode_dev(u32 dev)
{
	u32 major = dev >> 20, minor = dev & 0xfffff;
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/* Number of a struct pid in its own (deepest) namespace, or in the root one. */
static __always_inline s64 pid_nr_level(struct pid *p, int own)
{
	if (!p)
		return 0;
	u32 level = own ? BPF_CORE_READ(p, level) : 0;
	int nr = 0;
	bpf_probe_read_kernel(&nr, sizeof(nr), &p->numbers[level & 31].nr);
	return nr;
}

static __always_inline u32 pidns_level(struct task_struct *t)
{
	return BPF_CORE_READ(t, thread_pid, level);
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = KR(t, files, fdt);
	if (!fdt)
		return NULL;
	if ((unsigned long)fd >= KR(fdt, max_fds))
		return NULL;
	struct file **fds = KR(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return NULL;
	/* Modern: a typed pointer, so later field reads are direct loads, not
	 * helper calls (expensive with return-thunk mitigations). */
	return KCAST(f, struct file);
}

struct walk_ctx {
	struct aux *a;
};

/* Walks: bpf_loop (5.17+) keeps the verifier's work linear in the modern
 * object; the core object runs the same step in a bounded loop (5.3+). */
#ifdef SAKER_MODERN
#define WALK_FN static long
#define WALK(n, fn, ctx) bpf_loop(n, fn, ctx, 0)
#else
#define WALK_FN static __always_inline long
/* Unrolled: 5.x verifiers reject the loop shape clang emits around helper
 * calls ("back-edge from insn N to N+1"). */
#define WALK(n, fn, ctx)                                                               \
	_Pragma("unroll") for (u32 __i = 0; __i < (n); __i++)                           \
		if (fn(__i, ctx))                                                       \
			break
#endif

/* One step of the dentry walk. */
WALK_FN path_step(u32 i, void *arg)
{
	struct aux *a = ((struct walk_ctx *)arg)->a;
	struct dentry *d = KCAST((void *)a->w.d, struct dentry);
	struct vfsmount *vm = KCAST((void *)a->w.vm, struct vfsmount);
	struct mount *mnt = KCAST((void *)a->w.mnt, struct mount);
	u64 mnt_root = (u64)KR(vm, mnt_root);
	u64 parent = (u64)KR(d, d_parent);
	if (a->w.d == mnt_root || a->w.d == parent) {
		if (a->w.d != mnt_root)
			return 1;
		u64 mp = (u64)KR(mnt, mnt_parent);
		if (mp == a->w.mnt)
			return 1;
		a->w.d = (u64)KR(mnt, mnt_mountpoint);
		a->w.mnt = mp;
		a->w.vm = mp + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	u32 len = KR(d, d_name.len) & 0xff;
	const u8 *name = KR(d, d_name.name);
	u32 pos = a->w.pos & TMP_MASK;
	if (len + 1 >= pos)
		return 1;
	pos -= len;
	/* Bound the length again right at the call: since 6.10 the verifier
	 * can lose the range of a register linked to the compare above. */
	barrier_var(len);
	bpf_probe_read_kernel(&a->tmp[pos & TMP_MASK], len & 0xff, name);
	pos -= 1;
	a->tmp[pos & TMP_MASK] = '/';
	a->w.pos = pos;
	a->w.d = parent;
	return 0;
}

/* Builds the absolute path of (dentry, vfsmount) backwards in a->tmp,
 * crossing mount points like d_path. Returns the start offset; the path
 * ends with the NUL at TMP_END. */
static __always_inline u32 build_path(struct aux *a, struct dentry *d, struct vfsmount *vm)
{
	struct walk_ctx c = {.a = a};
	a->w.d = (u64)d;
	a->w.vm = (u64)vm;
	a->w.mnt = (u64)vm - bpf_core_field_offset(struct mount, mnt);
	a->w.pos = TMP_END;
	a->tmp[TMP_END] = 0;
	WALK(MAX_COMP, path_step, &c);
	u32 pos = a->w.pos & TMP_MASK;
	if (pos == TMP_END) {
		pos--;
		a->tmp[pos & TMP_MASK] = '/';
	}
	return pos;
}

/* Copies the path assembled by build_path as a NUL-terminated parameter. */
static __always_inline void push_tmp_path(struct evb *b, u32 start)
{
	u32 len = TMP_SIZE - (start & TMP_MASK);
	bpf_probe_read_kernel(ev_cur(b), len & (TMP_SIZE * 2 - 1), &b->a->tmp[start & TMP_MASK]);
	ev_len(b, len & (TMP_SIZE * 2 - 1));
}

static __always_inline void push_file_path(struct evb *b, struct file *f)
{
	if (!f) {
		push_empty(b);
		return;
	}
	struct file *ff = KCAST(f, struct file);
	push_tmp_path(b, build_path(b->a, KR(ff, f_path.dentry), KR(ff, f_path.mnt)));
}

/* args/env areas of the current mm: [start, end) copied in one read. When
 * `split_exe` is set, argv[0] becomes one parameter and the rest another. */
static __always_inline void push_mm_area(struct evb *b, unsigned long start, unsigned long end,
					 int split_exe)
{
	unsigned long len = end - start;
	if (!start || end <= start) {
		if (split_exe)
			push_empty(b);
		push_empty(b);
		return;
	}
	if (len > MAX_ARGS)
		len = MAX_ARGS;
	barrier_var(len);
	u8 *dst = ev_cur(b);
	/* argv[0]'s length first: the string read may zero the rest of its last
	 * word, so the bulk copy below must come after it. */
	long exe = 0;
	if (split_exe)
		exe = bpf_probe_read_user_str(dst, MAX_STR, (void *)start);
	if (bpf_probe_read_user(dst, len & (MAX_ARGS * 2 - 1), (void *)start) != 0) {
		if (split_exe)
			push_empty(b);
		push_empty(b);
		return;
	}
	dst[(len - 1) & (MAX_ARGS * 2 - 1)] = 0;
	if (split_exe) {
		if (exe <= 0 || exe > len)
			exe = len;
		dst[(exe - 1) & (MAX_ARGS * 2 - 1)] = 0;
		ev_len(b, exe);
		len -= exe;
	}
	ev_len(b, len);
}

/* A kernfs node's path (cgroup), at most MAX_CG_COMP components. */
struct kernfs_node___old {
	struct kernfs_node *parent;
};
struct kernfs_node___new {
	struct kernfs_node *__parent;
};

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node___new, __parent))
		return BPF_CORE_READ((struct kernfs_node___new *)kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

WALK_FN cg_step(u32 i, void *arg)
{
	struct aux *a = ((struct walk_ctx *)arg)->a;
	if (!a->w.d)
		return 1;
	struct kernfs_node *kn = KCAST((void *)a->w.d, struct kernfs_node);
	struct kernfs_node *parent = kn_parent(kn);
	if (!parent)
		return 1; /* the hierarchy root has no name in the path */
	long n = bpf_probe_read_kernel_str(a->sa, sizeof(a->sa), KR(kn, name));
	if (n <= 1)
		return 1;
	u32 len = (n - 1) & 255;
	u32 pos = a->w.pos & TMP_MASK;
	if (len + 1 >= pos)
		return 1;
	pos -= len;
	barrier_var(len);
	bpf_probe_read_kernel(&a->tmp[pos & TMP_MASK], len & 255, a->sa);
	pos -= 1;
	a->tmp[pos & TMP_MASK] = '/';
	a->w.pos = pos;
	a->w.d = (u64)parent;
	return 0;
}

/* Writes "prefix=/a/b/c\0" at cursor+off and returns the bytes written. */
static __always_inline u32 write_cgroup(struct evb *b, u32 off, const char *prefix, u32 plen,
					struct kernfs_node *kn)
{
	struct aux *a = b->a;
	struct walk_ctx c = {.a = a};
	a->w.d = (u64)kn;
	a->w.pos = TMP_END;
	a->tmp[TMP_END] = 0;
	WALK(MAX_CG_COMP, cg_step, &c);
	u32 pos = a->w.pos & TMP_MASK;
	if (pos == TMP_END) {
		pos--;
		a->tmp[pos & TMP_MASK] = '/';
	}
	u64 at = b->pos + off;
	bpf_probe_read_kernel(&a->ev[at & EV_MASK], plen & 15, prefix);
	at += plen;
	u32 len = TMP_SIZE - (pos & TMP_MASK);
	bpf_probe_read_kernel(&a->ev[at & EV_MASK], len & (TMP_SIZE * 2 - 1), &a->tmp[pos & TMP_MASK]);
	return plen + len;
}

/* The subsystem's cgroup node, and in *keep whether /proc/PID/cgroup lists
 * it as its own line: mounted on a v1 hierarchy. Bound to the default (v2)
 * hierarchy it appears only under "0::", which the "unified=" entry carries. */
static __always_inline struct kernfs_node *subsys_kn(struct task_struct *t, int id, u32 *keep)
{
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	struct cgroup_subsys_state *css = NULL;
	bpf_probe_read_kernel(&css, sizeof(css), &cs->subsys[id & 15]);
	*keep = 0;
	if (!css)
		return NULL; /* never for a controller built in */
	struct cgroup *cg = BPF_CORE_READ(css, cgroup);
	/* keep = (root != dfl root), computed without a branch (see CG_ENTRY). */
	u64 x = (u64)BPF_CORE_READ(cg, root) ^ (u64)BPF_CORE_READ(cs, dfl_cgrp, root);
	u64 nx = 0 - x;
	barrier_var(nx);
	*keep = (x | nx) >> 63;
	return BPF_CORE_READ(cg, kn);
}

/* Every entry is written; one that is not kept is overwritten by the next.
 * Branch-free on purpose: a branch per entry multiplies the verifier's
 * states (E2BIG on 6.1 with the unrolled walks). */
#define CG_ENTRY(name, id, plen)                                                       \
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, id)) {                    \
		u32 keep;                                                               \
		struct kernfs_node *kn =                                                \
			subsys_kn(t, bpf_core_enum_value(enum cgroup_subsys_id, id), &keep); \
		u32 n = write_cgroup(b, off & 0x7fff, name, plen, kn);                  \
		barrier_var(keep);                                                      \
		off += n & -keep;                                                       \
	}

/* cgroups param: "subsys=path\0" for cpuset, cpu, cpuacct, io and memory
 * where mounted as v1 hierarchies, and the default (v2) hierarchy as
 * "unified=path", the same entries procfs::scan reads from /proc/PID/cgroup. */
static __always_inline void push_cgroups(struct evb *b, struct task_struct *t)
{
	u32 off = 0;
	CG_ENTRY("cpuset=", cpuset_cgrp_id, 7)
	CG_ENTRY("cpu=", cpu_cgrp_id, 4)
	CG_ENTRY("cpuacct=", cpuacct_cgrp_id, 8)
	CG_ENTRY("io=", io_cgrp_id, 3)
	CG_ENTRY("memory=", memory_cgrp_id, 7)
	struct kernfs_node *dfl = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	off += write_cgroup(b, off & 0x7fff, "unified=", 8, dfl);
	ev_len(b, off & 0x7fff);
}

static __always_inline u32 open_flags_to_ppm(u32 f)
{
	u32 r = 0;
	switch (f & 3) {
	case 0: r = 1; break;
	case 1: r = 2; break;
	case 2: r = 3; break;
	}
	if (f & 0100) r |= 1 << 2;        /* O_CREAT */
	if (f & 02000) r |= 1 << 3;       /* O_APPEND */
	if (f & 010000) r |= 1 << 4;      /* O_DSYNC */
	if (f & 0200) r |= 1 << 5;        /* O_EXCL */
	if (f & 04000) r |= 1 << 6;       /* O_NONBLOCK */
	if (f & 04000000) r |= 1 << 7;    /* __O_SYNC */
	if (f & 01000) r |= 1 << 8;       /* O_TRUNC */
	if (f & 040000) r |= 1 << 9;      /* O_DIRECT */
	if (f & 0200000) r |= 1 << 10;    /* O_DIRECTORY */
	if (f & 0100000) r |= 1 << 11;    /* O_LARGEFILE */
	if (f & 02000000) r |= 1 << 12;   /* O_CLOEXEC */
	if (f & 020000000) r |= 1 << 13;  /* __O_TMPFILE */
	return r;
}

static __always_inline u32 open_mode(u32 flags, u32 mode)
{
	if (flags & (0100 | 020000000))
		return mode & 07777;
	return 0;
}

/* Linux CLONE_* / namespace flags → PPM_CL_*. */
static __always_inline u32 clone_flags_to_ppm(u64 f)
{
	u32 r = 0;
	if (f & 0x00000400) r |= 1 << 0;  /* CLONE_FILES */
	if (f & 0x00000200) r |= 1 << 1;  /* CLONE_FS */
	if (f & 0x80000000) r |= 1 << 2;  /* CLONE_IO */
	if (f & 0x08000000) r |= 1 << 3;  /* CLONE_NEWIPC */
	if (f & 0x40000000) r |= 1 << 4;  /* CLONE_NEWNET */
	if (f & 0x00020000) r |= 1 << 5;  /* CLONE_NEWNS */
	if (f & 0x20000000) r |= 1 << 6;  /* CLONE_NEWPID */
	if (f & 0x04000000) r |= 1 << 7;  /* CLONE_NEWUTS */
	if (f & 0x00008000) r |= 1 << 8;  /* CLONE_PARENT */
	if (f & 0x00100000) r |= 1 << 9;  /* CLONE_PARENT_SETTID */
	if (f & 0x00002000) r |= 1 << 10; /* CLONE_PTRACE */
	if (f & 0x00000800) r |= 1 << 11; /* CLONE_SIGHAND */
	if (f & 0x00040000) r |= 1 << 12; /* CLONE_SYSVSEM */
	if (f & 0x00010000) r |= 1 << 13; /* CLONE_THREAD */
	if (f & 0x00800000) r |= 1 << 14; /* CLONE_UNTRACED */
	if (f & 0x00000100) r |= 1 << 15; /* CLONE_VM */
	if (f & 0x10000000) r |= 1 << 20; /* CLONE_NEWUSER */
	if (f & 0x00200000) r |= 1 << 23; /* CLONE_CHILD_CLEARTID */
	if (f & 0x01000000) r |= 1 << 24; /* CLONE_CHILD_SETTID */
	if (f & 0x00080000) r |= 1 << 25; /* CLONE_SETTLS */
	if (f & 0x00004000) r |= 1 << 27; /* CLONE_VFORK */
	if (f & 0x02000000) r |= 1 << 28; /* CLONE_NEWCGROUP */
	return r;
}
