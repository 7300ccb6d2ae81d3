/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* In-kernel prefilter for the open family and close, derived from the loaded
 * rules by saker-rules (src/prefilter.rs, whose `OpenPlan::admits` is this
 * decision in Rust: keep the two in step). An open passes when a class it
 * satisfies admits any path, or its path is not comparable (relative, with
 * `/.` or `//`, a trailing `/`, or longer than the key: user space would
 * normalise it to another name), or the LPM trie maps it to a satisfied
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
		if (k->data[i] == '/' && (k->data[i + 1] == '/' || k->data[i + 1] == '.'))
			return 1;
	}
	k->prefixlen = n * 8;
	u8 *m = bpf_map_lookup_elem(&pf_paths, k);
	return m && (*m & sat);
}

/* Records a dropped open's fd so that its close is dropped too. */
static __always_inline void pf_dropped_fd(long fd)
{
	struct settings *s = get_settings();
	if (fd >= 0 && s && s->pf_close) {
		u64 k = pf_fd_key(fd);
		u8 one = 1;
		bpf_map_update_elem(&pf_fds, &k, &one, BPF_ANY);
	}
}

/* A close: 1 to drop it (its fd's open was dropped). */
static __always_inline int pf_drop_close(long fd)
{
	if (!pf_on || fd < 0)
		return 0;
	struct settings *s = get_settings();
	if (!s || !s->pf_close)
		return 0;
	u64 k = pf_fd_key(fd);
	return bpf_map_delete_elem(&pf_fds, &k) == 0;
}
