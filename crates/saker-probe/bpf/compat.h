/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel-version differences, in one place.
 *
 * The probe is compiled twice from the same source (build.rs):
 *  - "modern" (-DSAKER_MODERN): kernels with bpf_rdonly_cast (6.2+). Kernel
 *    structs are read with direct BTF loads (no helper call per field: helper
 *    calls are expensive with retpolines and return thunks) and walks use
 *    bpf_loop.
 *  - "core": every kernel from 5.8 on. Fields are read with BPF_CORE_READ
 *    (bpf_probe_read_kernel), walks are bounded loops, and the syscall
 *    registers come from bpf_task_pt_regs where the kernel has it (5.15+) or
 *    from the top of the task's kernel stack.
 * Layout differences between versions are CO-RE relocations resolved by
 * libbpf at load time (bpf_core_field_exists / bpf_core_type_exists), in both
 * objects. The loader picks the object (loader.rs, `Variant`). */
#pragma once

#ifdef SAKER_MODERN
/* KR(p, a, b) reads p->a->b. */
#define KR(src, a, ...) (___arrow(src, a, ##__VA_ARGS__))
/* A pointer read from memory becomes a typed pointer for direct loads. */
#define KCAST(p, type) bpf_core_cast((p), type)
#else
#define KR(src, a, ...) BPF_CORE_READ(src, a, ##__VA_ARGS__)
#define KCAST(p, type) ((type *)(p))
#endif

static __always_inline struct task_struct *cur_task(void)
{
#ifdef SAKER_MODERN
	return (struct task_struct *)bpf_get_current_task_btf();
#else
	return (struct task_struct *)bpf_get_current_task();
#endif
}

/* x86-64: the user registers sit at the top of the task's kernel stack
 * (THREAD_SIZE 16 KiB, no top padding), which is what task_pt_regs() computes. */
#define X86_THREAD_SIZE (4096 << 2)

static __always_inline struct pt_regs *cur_regs(void)
{
#ifdef SAKER_MODERN
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
#else
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	void *stack = BPF_CORE_READ(cur_task(), stack);
	return (struct pt_regs *)(stack + X86_THREAD_SIZE) - 1;
#endif
}

/* ---- mm_struct.rss_stat: an mm_rss_stat of atomic_long_t counters up to
 * 6.1, an array of percpu_counter (whose .count is the folded total) since 6.2. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/* Counter I (0 file, 1 anon, 2 swap entries, 3 shmem) in pages, >= 0. The
 * index is a constant so that each read is its own CO-RE relocation. */
#define MM_COUNTER(mm, I)                                                              \
	({                                                                             \
		s64 __v = 0;                                                           \
		if (bpf_core_type_exists(struct mm_rss_stat___old))                    \
			bpf_core_read(&__v, sizeof(__v),                               \
				      &((struct mm_struct___old *)(mm))->rss_stat.count[I].counter); \
		else                                                                   \
			bpf_core_read(&__v, sizeof(__v), &(mm)->rss_stat[I].count);    \
		(u64)(__v > 0 ? __v : 0);                                              \
	})

/* ---- kernel_cap_t: two u32 words up to 6.2, one u64 since 6.3. */
struct kernel_cap_struct___old {
	u32 cap[2];
} __attribute__((preserve_access_index));
struct cred___old {
	struct kernel_cap_struct___old cap_inheritable;
	struct kernel_cap_struct___old cap_permitted;
	struct kernel_cap_struct___old cap_effective;
} __attribute__((preserve_access_index));

/* which: 0 inheritable, 1 permitted, 2 effective. */
static __always_inline u64 cred_caps(const struct cred *c, int which)
{
	if (bpf_core_type_exists(struct kernel_cap_struct___old)) {
		struct cred___old *o = (void *)c;
		u32 w[2] = {};
		if (which == 0)
			bpf_core_read(w, sizeof(w), &o->cap_inheritable.cap);
		else if (which == 1)
			bpf_core_read(w, sizeof(w), &o->cap_permitted.cap);
		else
			bpf_core_read(w, sizeof(w), &o->cap_effective.cap);
		return (u64)w[0] | (u64)w[1] << 32;
	}
	if (which == 0)
		return BPF_CORE_READ(c, cap_inheritable.val);
	if (which == 1)
		return BPF_CORE_READ(c, cap_permitted.val);
	return BPF_CORE_READ(c, cap_effective.val);
}

/* ---- inode ctime/mtime: timespec64 i_ctime/i_mtime up to 6.5, __i_ctime
 * (6.6) and __i_mtime (6.7), split seconds/nanoseconds fields since 6.11. */
struct inode___v511 {
	struct timespec64 i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));
struct inode___v66 {
	struct timespec64 __i_ctime;
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

static __always_inline u64 ts_ns(struct timespec64 *ts)
{
	struct timespec64 v = {};
	bpf_core_read(&v, sizeof(v), ts);
	return v.tv_sec * 1000000000ull + v.tv_nsec;
}

static __always_inline u64 inode_time_ns(struct inode *ino, int mtime)
{
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		if (mtime)
			return BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ull +
			       BPF_CORE_READ(ino, i_mtime_nsec);
		/* Since multigrain timestamps (6.13) the top bit of i_ctime_nsec flags a
		 * queried ctime; it is not part of the time. */
		return BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ull +
		       (BPF_CORE_READ(ino, i_ctime_nsec) & 0x7fffffffu);
	}
	struct inode___v66 *n = (void *)ino;
	struct inode___v511 *o = (void *)ino;
	if (mtime) {
		if (bpf_core_field_exists(n->__i_mtime))
			return ts_ns(&n->__i_mtime);
		if (bpf_core_field_exists(o->i_mtime))
			return ts_ns(&o->i_mtime);
		return 0;
	}
	if (bpf_core_field_exists(n->__i_ctime))
		return ts_ns(&n->__i_ctime);
	if (bpf_core_field_exists(o->i_ctime))
		return ts_ns(&o->i_ctime);
	return 0;
}
