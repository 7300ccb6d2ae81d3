/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* In-kernel prefilter for the open family and close, derived from the loaded
 * rules by saker-rules (src/prefilter.rs, whose `OpenPlan::admits` is this
 * decision in Rust: keep the two in step). An open passes when a class it
 * satisfies admits any path, or its path is not comparable (relative, with
 * `/.`, `..`, `./` or `//`, a trailing `/`, or longer than the key: user
 * space would normalise it to another name), or the LPM trie maps it to a satisfied
 * class. Directories always pass: later `*at` calls and fchdir resolve
 * through them. */
#pragma once
#include "common.h"
#include "task.h"

#define PF_C_ANY 1
#define PF_C_WRITE 2
#define PF_C_SUCCESS 4
#define PF_C_WRITE_SUCCESS 8
#define S_IFMT_ 0170000
#define S_IFDIR_ 0040000

/* Returns 1 to keep the open. `flags` are the caller's O_* flags. */
static __always_inline int pf_keep_open(struct aux *a, long ret, u32 flags, const char *path,
					struct file *f)
{
	struct settings *s = get_settings();
	if (!s)
		return 1;
	u32 acc = flags & 3;
	int w = acc == 1 || acc == 2;
	int ok = ret >= 0;
	u8 sat = PF_C_ANY | (w ? PF_C_WRITE : 0) | (ok ? PF_C_SUCCESS : 0) |
		 (w && ok ? PF_C_WRITE_SUCCESS : 0);
	if (sat & s->pf_any)
		return 1;
	if (f) {
		u16 mode = KR(f, f_inode, i_mode);
		if ((mode & S_IFMT_) == S_IFDIR_)
			return 1;
	}
	struct pf_key *k = &a->pk;
	long n = bpf_probe_read_user_str(k->data, PF_KEY_MAX, path);
	/* Unreadable, empty, or possibly cut at the key's end. */
	if (n <= 1 || n >= PF_KEY_MAX)
		return 1;
	if (k->data[0] != '/')
		return 1;
	u32 len = n - 1;
	if (len > 1 && k->data[(len - 1) & (PF_KEY_MAX - 1)] == '/')
		return 1;
	for (u32 i = 0; i < PF_KEY_MAX - 1; i++) {
		if (i + 1 >= len)
			break;
		u8 c0 = k->data[i], c1 = k->data[i + 1];
		if ((c0 == '/' || c0 == '.') && (c1 == '/' || c1 == '.'))
			return 1;
		/* Namespace files (/proc/PID/ns/X): setns names its fd by the path
		 * opened, which a late re-announcement cannot give back (nsfs). */
		if (c0 == '/' && c1 == 'n' && i + 3 < len && k->data[(i + 2) & (PF_KEY_MAX - 1)] == 's' &&
		    k->data[(i + 3) & (PF_KEY_MAX - 1)] == '/')
			return 1;
	}
	k->prefixlen = n * 8;
	u8 *m = bpf_map_lookup_elem(&pf_paths, k);
	return m && (*m & sat);
}

/* Records a dropped open's fd: its close is dropped too, and a later
 * reader of the fd re-announces it. Returns 0 when it cannot be recorded
 * (the open must then be kept). */
static __always_inline int pf_dropped_fd(long fd)
{
	if (fd < 0)
		return 1;
	u8 *p = pf_slot(fd, 1);
	if (!p)
		return 0;
	*p = 1;
	return 1;
}

/* A close: 1 to drop it (its fd's open was dropped and closes are not read
 * by any rule). */
static __always_inline int pf_drop_close(long fd)
{
	if (!pf_on)
		return 0;
	u8 *p = pf_slot(fd, 0);
	if (!p || !*p)
		return 0;
	*p = 0;
	struct settings *s = get_settings();
	return s && s->pf_close;
}

/* A hooked syscall reads `fd` (dup*, fchmod, fchown, fchdir): if its open was
 * dropped, report that open now, as an openat exit with the file's path,
 * flags, device and inode, marked for the state engine only, so the reader's
 * event finds the fd in user space's table. */
static __always_inline void pf_reannounce(long fd)
{
	if (!pf_on)
		return;
	u8 *p = pf_slot(fd, 0);
	if (!p || !*p)
		return;
	*p = 0;
	struct file *f = fd_file(cur_task(), fd);
	if (!f)
		return;
	struct evb b;
	if (!ev_start(&b, 307, 7, FAM_OPEN))
		return;
	b.flags = CPU_STATE_ONLY;
	push_u64(&b, fd);
	push_u64(&b, (u64)-100); /* AT_FDCWD: the path is absolute */
	push_file_path(&b, f);
	push_u32(&b, open_flags_to_ppm(KR(f, f_flags)));
	push_u32(&b, 0);
	struct inode *ino = KR(f, f_inode);
	push_u32(&b, ino ? encode_dev(KR(ino, i_sb, s_dev)) : 0);
	push_u64(&b, ino ? KR(ino, i_ino) : 0);
	ev_submit(&b);
}
