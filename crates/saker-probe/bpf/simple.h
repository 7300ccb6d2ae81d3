/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Table-driven exit events: each parameter is (kind, syscall argument index),
 * packed one byte each in a constant descriptor, so the unrolled loop folds
 * into straight-line code per program. */
#pragma once
#include "task.h"
#include "prefilter.h"

enum kind {
	K_RES = 1,   /* return value, i64 */
	K_INT = 2,   /* int argument (fd, pid, dirfd) sign-extended to i64 */
	K_STR = 3,   /* user string */
	K_U32 = 4,
	K_U64 = 5,
	K_MODE = 6,  /* mode bits, u32 */
	K_U8 = 7,
	K_CLFL = 8,  /* CLONE_* → PPM_CL_*, u32 */
	K_OFL = 9,   /* O_NONBLOCK/O_CLOEXEC-style flags → PPM_O_*, u32 */
	K_EMPTY = 10,
	K_MNTFL = 11, /* mount flags without the magic, u32 */
	K_I32 = 12,
};

#define P(k, a) ((u64)((k) | ((a) << 4)))
#define D1(a) (a)
#define D2(a, b) ((a) | (b) << 8)
#define D3(a, b, c) (D2(a, b) | (c) << 16)
#define D4(a, b, c, d) (D3(a, b, c) | (d) << 24)
#define D5(a, b, c, d, e) (D4(a, b, c, d) | (e) << 32)
#define D6(a, b, c, d, e, f) (D5(a, b, c, d, e) | (f) << 40)

/* What a syscall does with fds, for the prefilter (bpf/syscalls.def). */
#define FD_NEW 1   /* returns a new fd (dup*, socket, memfd_create...) */
#define FD_READ 2  /* its first argument is an fd user space names (or a dirfd AT_EMPTY_PATH may use) */
#define FD_CLOSE 4 /* close */

static __always_inline int h_simple(long ret, struct pt_regs *regs, u16 type, u32 roles, u32 fam,
				    u32 n, u64 desc)
{
	struct evb b;
	/* `roles` is constant per program: these fold away. */
	if (roles & FD_NEW)
		pf_reported_fd(ret);
	if ((roles & FD_CLOSE) && pf_drop_close((long)(int)sc_arg(regs, 0))) {
		count_filtered(FAM_CLOSE);
		return 0;
	}
	if (roles & FD_READ)
		pf_reannounce((long)(int)sc_arg(regs, 0));
	if (!ev_start(&b, type, n, fam))
		return 0;
#pragma unroll
	for (int i = 0; i < 6; i++) {
		if (i >= n)
			break;
		u32 d = (desc >> (i * 8)) & 0xff;
		u32 k = d & 0xf;
		int a = d >> 4;
		switch (k) {
		case K_RES: push_u64(&b, ret); break;
		case K_INT: push_u64(&b, (s64)(int)sc_arg(regs, a)); break;
		case K_STR: push_user_str(&b, (void *)sc_arg(regs, a)); break;
		case K_U32: push_u32(&b, (u32)sc_arg(regs, a)); break;
		case K_U64: push_u64(&b, sc_arg(regs, a)); break;
		case K_MODE: push_u32(&b, sc_arg(regs, a) & 07777); break;
		case K_U8: push_u8(&b, (u8)sc_arg(regs, a)); break;
		case K_CLFL: push_u32(&b, clone_flags_to_ppm(sc_arg(regs, a))); break;
		case K_OFL: push_u32(&b, open_flags_to_ppm(sc_arg(regs, a)) & ~3u); break;
		case K_MNTFL: {
			u64 f = sc_arg(regs, a);
			if ((f & 0xffff0000) == 0xc0ed0000)
				f &= 0xffff;
			push_u32(&b, (u32)f);
			break;
		}
		case K_I32: push_u32(&b, (u32)sc_arg(regs, a)); break;
		default: push_empty(&b); break;
		}
	}
	return ev_submit(&b);
}

/* kind: 0 open, 1 openat, 2 openat2, 3 creat */
static __always_inline int h_open(long ret, struct pt_regs *regs, u16 type, int kind)
{
	static const u8 np[] = {6, 7, 8, 6};
	struct evb b;
	if (!ev_start(&b, type, np[kind], FAM_OPEN))
		return 0;
	struct file *f = ret >= 0 ? fd_file(cur_task(), ret) : NULL;
	u32 flags = 0, mode = 0, resolve = 0;
	const char *path;
	if (kind == 0) {
		path = (void *)sc_arg(regs, 0);
		flags = sc_arg(regs, 1);
		mode = sc_arg(regs, 2);
	} else if (kind == 1) {
		path = (void *)sc_arg(regs, 1);
		flags = sc_arg(regs, 2);
		mode = sc_arg(regs, 3);
	} else if (kind == 2) {
		path = (void *)sc_arg(regs, 1);
		u64 how[3] = {};
		bpf_probe_read_user(how, sizeof(how), (void *)sc_arg(regs, 2));
		flags = how[0];
		mode = how[1];
		resolve = how[2];
	} else {
		path = (void *)sc_arg(regs, 0);
		flags = 0100 | 01 | 01000; /* O_CREAT|O_WRONLY|O_TRUNC */
		mode = sc_arg(regs, 1);
	}
	if (pf_on) {
		if (!pf_keep_open(b.a, ret, flags, path, f) && pf_dropped_fd(ret)) {
			count_filtered(FAM_OPEN);
			return 0;
		}
		pf_reported_fd(ret);
	}
	u32 pflags = open_flags_to_ppm(flags);
	if (f && (KR(f, f_mode) & FMODE_CREATED_BIT))
		pflags |= 1 << 14; /* PPM_O_F_CREATED */
	push_u64(&b, ret);
	if (kind == 1 || kind == 2)
		push_u64(&b, (s64)(int)sc_arg(regs, 0));
	/* The path as the caller passed it (as Falco's probes send it): user space
	 * makes it absolute from the cwd or dirfd, which keeps fd.nameraw (and so
	 * "../" traversal checks) and the name of a symlink that was opened. */
	push_user_str(&b, path);
	if (kind != 3)
		push_u32(&b, pflags);
	push_u32(&b, kind == 3 ? mode & 07777 : open_mode(flags, mode));
	if (kind == 2) {
		u32 r = 0;
		if (resolve & 0x01) r |= 1 << 4; /* NO_XDEV */
		if (resolve & 0x02) r |= 1 << 2; /* NO_MAGICLINKS */
		if (resolve & 0x04) r |= 1 << 3; /* NO_SYMLINKS */
		if (resolve & 0x08) r |= 1 << 0; /* BENEATH */
		if (resolve & 0x10) r |= 1 << 1; /* IN_ROOT */
		if (resolve & 0x20) r |= 1 << 5; /* CACHED */
		push_u32(&b, r);
	}
	struct inode *ino = f ? KR(f, f_inode) : NULL;
	push_u32(&b, ino ? encode_dev(KR(ino, i_sb, s_dev)) : 0);
	push_u64(&b, ino ? KR(ino, i_ino) : 0);
	if (kind == 3)
		push_u16(&b, 0);
	return ev_submit(&b);
}

/* pipe (61) / pipe2 (393): res, fd1, fd2, ino[, flags] */
static __always_inline int h_pipe(long ret, struct pt_regs *regs, u16 type, int two)
{
	struct evb b;
	if (!ev_start(&b, type, two ? 5 : 4, FAM_OTHER))
		return 0;
	int fds[2] = {-1, -1};
	if (ret == 0)
		bpf_probe_read_user(fds, sizeof(fds), (void *)sc_arg(regs, 0));
	if (ret == 0) {
		pf_reported_fd(fds[0]);
		pf_reported_fd(fds[1]);
	}
	push_u64(&b, ret);
	push_u64(&b, (s64)fds[0]);
	push_u64(&b, (s64)fds[1]);
	struct file *f = ret == 0 ? fd_file(cur_task(), fds[0]) : NULL;
	push_u64(&b, f ? BPF_CORE_READ(f, f_inode, i_ino) : 0);
	if (two)
		push_u32(&b, open_flags_to_ppm(sc_arg(regs, 1)) & ~3u);
	return ev_submit(&b);
}

/* capset (353): res and the caller's capabilities after the call. */
static __always_inline int h_capset(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 4, FAM_OTHER))
		return 0;
	const struct cred *c = BPF_CORE_READ(cur_task(), cred);
	push_u64(&b, ret);
	push_u64(&b, cred_caps(c, 0));
	push_u64(&b, cred_caps(c, 1));
	push_u64(&b, cred_caps(c, 2));
	return ev_submit(&b);
}

/* prctl (401): res, option, arg2_str (PR_SET_NAME/PR_GET_NAME), arg2_int. */
static __always_inline int h_prctl(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 4, FAM_OTHER))
		return 0;
	u32 opt = sc_arg(regs, 0);
	u64 arg2 = sc_arg(regs, 1);
	push_u64(&b, ret);
	push_u32(&b, opt);
	if (opt == 15 || opt == 16) {
		push_user_str(&b, (void *)arg2);
		push_u64(&b, 0);
	} else {
		push_empty(&b);
		push_u64(&b, arg2);
	}
	return ev_submit(&b);
}

static __always_inline u16 ptrace_req_to_ppm(u64 r)
{
	switch (r) {
	case 0: return 1;   case 1: return 2;   case 2: return 3;   case 3: return 4;
	case 4: return 5;   case 5: return 6;   case 6: return 7;   case 7: return 8;
	case 8: return 9;   case 9: return 10;  case 12: return 26; case 13: return 27;
	case 14: return 28; case 15: return 29; case 16: return 11; case 17: return 12;
	case 18: return 30; case 19: return 31; case 21: return 32; case 24: return 13;
	case 25: return 33; case 26: return 34; case 30: return 35; case 31: return 36;
	case 32: return 37; case 33: return 38;
	case 0x4200: return 14; case 0x4201: return 15; case 0x4202: return 16;
	case 0x4203: return 17; case 0x4204: return 18; case 0x4205: return 19;
	case 0x4206: return 20; case 0x4207: return 21; case 0x4208: return 22;
	case 0x4209: return 23; case 0x420a: return 24; case 0x420b: return 25;
	}
	return 0;
}

/* ptrace (169): res, addr:dyn, data:dyn, request, pid. dyn = u8 index 0 + u64. */
static __always_inline int h_ptrace(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 5, FAM_OTHER))
		return 0;
	push_u64(&b, ret);
	u8 *d = ev_cur(&b);
	d[0] = 0;
	*(u64 *)(d + 1) = sc_arg(regs, 2);
	ev_len(&b, 9);
	d = ev_cur(&b);
	d[0] = 0;
	*(u64 *)(d + 1) = sc_arg(regs, 3);
	ev_len(&b, 9);
	push_u16(&b, ptrace_req_to_ppm(sc_arg(regs, 0)));
	push_u64(&b, (s64)(int)sc_arg(regs, 1));
	return ev_submit(&b);
}
