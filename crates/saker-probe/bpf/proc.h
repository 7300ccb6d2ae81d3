/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Process events: clone family (caller and child side), execve/execveat, procexit. */
#pragma once
#include "task.h"

#define PF_KTHREAD 0x00200000
#define PIDTYPE_PGID 2
#define RLIMIT_NOFILE 7

static __always_inline void push_task_head(struct evb *b, struct task_struct *t)
{
	struct mm_struct *mm = KR(t, mm);
	push_mm_area(b, mm ? KR(mm, arg_start) : 0, mm ? KR(mm, arg_end) : 0, 1);
	push_u64(b, KR(t, pid));
	push_u64(b, KR(t, tgid));
	push_u64(b, KR(t, real_parent, pid));
	push_empty(b); /* cwd: kept by userspace (snapshot, chdir, fork) */
	push_u64(b, KR(t, signal, rlim[RLIMIT_NOFILE].rlim_cur));
	push_u64(b, KR(t, maj_flt));
	push_u64(b, KR(t, min_flt));
	u64 rss = 0, swap = 0, total = 0;
	if (mm) {
		total = BPF_CORE_READ(mm, total_vm);
		/* file + anon + shmem; swap entries apart */
		rss = MM_COUNTER(mm, 0) + MM_COUNTER(mm, 1) + MM_COUNTER(mm, 3);
		swap = MM_COUNTER(mm, 2);
	}
	push_u32(b, total << 2); /* pages → KiB (4 KiB pages) */
	push_u32(b, rss << 2);
	push_u32(b, swap << 2);
	push_kernel_str(b, &t->comm, 16);
	push_cgroups(b, t);
}

static __always_inline struct pid_namespace *task_pidns(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	u32 level = BPF_CORE_READ(p, level);
	struct pid_namespace *ns = NULL;
	bpf_probe_read_kernel(&ns, sizeof(ns), &p->numbers[level & 31].ns);
	return ns;
}

/* kind: 0 clone, 1 fork, 2 vfork, 3 clone3 */
static __always_inline int h_clone(long ret, struct pt_regs *regs, u16 type, int kind)
{
	struct evb b;
	if (!ev_start(&b, type, 21, FAM_CLONE))
		return 0;
	struct task_struct *t = cur_task();
	u64 raw = 0;
	if (kind == 0)
		raw = sc_arg(regs, 0);
	else if (kind == 2)
		raw = 0x00004000 | 0x00000100; /* CLONE_VFORK | CLONE_VM */
	else if (kind == 3)
		bpf_probe_read_user(&raw, sizeof(raw), (void *)sc_arg(regs, 0));
	u32 flags = clone_flags_to_ppm(raw);
	if (ret == 0) {
		if (pidns_level(t) > 0)
			flags |= 1 << 29; /* CHILD_IN_PIDNS */
	} else if (BPF_CORE_READ(t, nsproxy, pid_ns_for_children, level) > 0) {
		flags |= 1 << 29;
	}
	push_u64(&b, ret);
	push_task_head(&b, t);
	push_u32(&b, flags);
	push_u32(&b, KR(t, cred, euid.val));
	push_u32(&b, KR(t, cred, egid.val));
	push_u64(&b, pid_nr_level(BPF_CORE_READ(t, thread_pid), 1));
	push_u64(&b, pid_nr_level(BPF_CORE_READ(t, group_leader, thread_pid), 1));
	struct task_struct *reaper = BPF_CORE_READ(task_pidns(t), child_reaper);
	u64 start = reaper ? BPF_CORE_READ(reaper, start_boottime) : 0;
	push_u64(&b, start ? boot_ts() + start : 0);
	return ev_submit(&b);
}

static __always_inline u32 tty_dev(struct task_struct *t)
{
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	if (!tty)
		return 0;
	u32 major = BPF_CORE_READ(tty, driver, major);
	u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	return encode_dev((major << 20) | (minor & 0xfffff));
}

/* Params 16..30 of execve/execveat (env … gid). */
static __always_inline void push_exec_tail(struct evb *b, struct task_struct *t, int success)
{
	struct mm_struct *mm = KR(t, mm);
	if (success)
		push_mm_area(b, mm ? KR(mm, env_start) : 0, mm ? KR(mm, env_end) : 0, 0);
	else
		push_empty(b);
	push_u32(b, tty_dev(t));
	struct pid *pg = KR(t, signal, pids[PIDTYPE_PGID]);
	push_u64(b, pid_nr_level(pg, 1));
	u32 loginuid = 0xffffffff;
	if (bpf_core_field_exists(t->loginuid))
		loginuid = BPF_CORE_READ(t, loginuid.val);
	push_u32(b, loginuid);

	struct file *exe = BPF_CORE_READ(mm, exe_file);
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	const struct cred *cred = KR(t, cred);
	u32 fsuid = BPF_CORE_READ(cred, fsuid.val), fsgid = BPF_CORE_READ(cred, fsgid.val);
	u32 flags = 0;
	if (ino) {
		u16 mode = BPF_CORE_READ(ino, i_mode);
		u32 iuid = BPF_CORE_READ(ino, i_uid.val), igid = BPF_CORE_READ(ino, i_gid.val);
		if (fsuid == 0 || (mode & 02) || (iuid == fsuid && (mode & 0200)) ||
		    (igid == fsgid && (mode & 020)))
			flags |= 1 << 0; /* PPM_EXE_WRITABLE */
		/* overlayfs (container images): upper layer if the overlay inode
		 * has an upper dentry with an inode, else lower. */
		if (BPF_CORE_READ(ino, i_sb, s_magic) == 0x794c7630) {
			struct dentry *upper = NULL;
			if (bpf_core_type_exists(struct ovl_inode)) {
				struct ovl_inode *oi =
					(void *)ino - bpf_core_field_offset(struct ovl_inode, vfs_inode);
				upper = BPF_CORE_READ(oi, __upperdentry);
			} else {
				/* No module BTF (before 5.11): overlayfs's inode keeps
				 * __upperdentry right after the embedded VFS inode. */
				bpf_probe_read_kernel(&upper, sizeof(upper),
						      (void *)ino + bpf_core_type_size(struct inode));
			}
			if (upper && BPF_CORE_READ(upper, d_inode))
				flags |= 1 << 1; /* PPM_EXE_UPPER_LAYER */
			else
				flags |= 1 << 3; /* PPM_EXE_LOWER_LAYER */
		}
		char pfx[6] = {};
		bpf_probe_read_kernel(pfx, sizeof(pfx), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
		if (pfx[0] == 'm' && pfx[1] == 'e' && pfx[2] == 'm' && pfx[3] == 'f' && pfx[4] == 'd' &&
		    pfx[5] == ':')
			flags |= 1 << 2; /* PPM_EXE_FROM_MEMFD */
	}
	push_u32(b, flags);
	push_u64(b, cred_caps(cred, 0));
	push_u64(b, cred_caps(cred, 1));
	push_u64(b, cred_caps(cred, 2));
	push_u64(b, ino ? BPF_CORE_READ(ino, i_ino) : 0);
	push_u64(b, ino ? inode_time_ns(ino, 0) : 0);
	push_u64(b, ino ? inode_time_ns(ino, 1) : 0);
	push_u32(b, BPF_CORE_READ(cred, euid.val));
	if (success)
		push_file_path(b, exe);
	else
		push_empty(b);
	push_u64(b, pid_nr_level(pg, 0));
	push_u32(b, BPF_CORE_READ(cred, egid.val));
}

#define EXECVE_X 293
#define EXECVEAT_X 331

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = cur_task();
	if (KR(t, flags) & PF_KTHREAD)
		return 0;
	long nr = BPF_CORE_READ(cur_regs(), orig_ax);
	int at = nr == 322;
	struct evb b;
	if (!ev_start(&b, at ? EXECVEAT_X : EXECVE_X, at ? 30 : 31, FAM_EXEC))
		return 0;
	push_u64(&b, 0);
	push_task_head(&b, t);
	push_exec_tail(&b, t, 1);
	if (!at)
		push_kernel_str(&b, BPF_CORE_READ(bprm, filename), MAX_STR);
	return ev_submit(&b);
}

/* Failed execve/execveat: the old image is still in place, so argv comes from
 * the user pointers (at most 16). */
static __always_inline int h_exec_fail(long ret, struct pt_regs *regs, int at)
{
	if (ret >= 0)
		return 0; /* success is reported by sched_process_exec */
	struct evb b;
	if (!ev_start(&b, at ? EXECVEAT_X : EXECVE_X, at ? 30 : 31, FAM_EXEC))
		return 0;
	struct task_struct *t = cur_task();
	const char *const *argv = (void *)sc_arg(regs, at ? 2 : 1);
	const char *arg = NULL;
	push_u64(&b, ret);
	if (argv)
		bpf_probe_read_user(&arg, sizeof(arg), &argv[0]);
	push_user_str(&b, arg);
	u32 total = 0;
#pragma unroll /* see net.h */
	for (int i = 1; i < 16 && argv; i++) {
		arg = NULL;
		bpf_probe_read_user(&arg, sizeof(arg), &argv[i]);
		if (!arg)
			break;
		long n = bpf_probe_read_user_str(&b.a->ev[(b.pos + total) & EV_MASK], 1024, arg);
		if (n <= 0)
			break;
		total += n;
		if (total > MAX_ARGS)
			break;
	}
	ev_len(&b, total & (MAX_ARGS * 4 - 1));
	/* Skip the head's exe/args: rebuild the remaining head fields by hand. */
	push_u64(&b, KR(t, pid));
	push_u64(&b, KR(t, tgid));
	push_u64(&b, KR(t, real_parent, pid));
	push_empty(&b);
	push_u64(&b, KR(t, signal, rlim[RLIMIT_NOFILE].rlim_cur));
	push_u64(&b, KR(t, maj_flt));
	push_u64(&b, KR(t, min_flt));
	push_u32(&b, 0);
	push_u32(&b, 0);
	push_u32(&b, 0);
	push_kernel_str(&b, &t->comm, 16);
	push_cgroups(&b, t);
	push_exec_tail(&b, t, 0);
	if (!at)
		push_user_str(&b, (void *)sc_arg(regs, 0));
	return ev_submit(&b);
}

/* New parent of the exiting task's children: another live thread of the
 * group, else the nearest child-subreaper ancestor, else the namespace init. */
static __always_inline s64 reaper_of(struct task_struct *t)
{
	struct list_head *head = &t->children;
	struct list_head *first = BPF_CORE_READ(t, children.next);
	if (first == head)
		return 0;
	if (BPF_CORE_READ(t, signal, live.counter) > 0) {
		s32 leader = BPF_CORE_READ(t, group_leader, pid);
		if (leader != KR(t, pid))
			return leader;
		return -1;
	}
	struct pid_namespace *ns = task_pidns(t);
	struct task_struct *init = BPF_CORE_READ(ns, child_reaper);
	struct task_struct *p = BPF_CORE_READ(t, real_parent);
#pragma unroll /* see net.h */
	for (int i = 0; i < 16 && p && p != init; i++) {
		struct signal_struct *sig = BPF_CORE_READ(p, signal);
		if (BPF_CORE_READ_BITFIELD_PROBED(sig, is_child_subreaper))
			return BPF_CORE_READ(p, tgid);
		p = BPF_CORE_READ(p, real_parent);
	}
	return init ? BPF_CORE_READ(init, pid) : -1;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_exit, struct task_struct *p)
{
	struct task_struct *t = cur_task();
	if (KR(t, flags) & PF_KTHREAD)
		return 0;
	struct evb b;
	if (!ev_start(&b, 186, 5, FAM_EXIT))
		return 0;
	s64 code = KR(t, exit_code);
	push_u64(&b, code);
	push_u64(&b, (code >> 8) & 0xff);
	push_u8(&b, code & 0x7f);
	push_u8(&b, (code & 0x80) ? 1 : 0);
	push_u64(&b, reaper_of(t));
	return ev_submit(&b);
}
