/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Socket events: sockaddr and socktuple encodings, bind/connect/accept/send. */
#pragma once
#include "task.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115

static __always_inline u16 ntoh16(u16 v)
{
	return (v >> 8) | (v << 8);
}

static __always_inline struct sock *fd_sock(struct task_struct *t, long fd)
{
	struct file *f = fd_file(t, fd);
	if (!f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *s = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(s, sk);
}

/* Reads a user sockaddr into a->sa; returns its family or 0. */
static __always_inline u16 read_sockaddr(struct aux *a, const void *uaddr, u32 ulen)
{
	if (!uaddr || ulen < 2)
		return 0;
	if (ulen > 128)
		ulen = 128;
	barrier_var(ulen);
	if (bpf_probe_read_user(a->sa, ulen & 0xff, uaddr))
		return 0;
	return *(u16 *)a->sa;
}

/* sockaddr param: family byte, then ip+port (port in host order) or a unix path. */
static __always_inline void push_sockaddr(struct evb *b, const void *uaddr, u32 ulen)
{
	struct aux *a = b->a;
	u16 fam = read_sockaddr(a, uaddr, ulen);
	u8 *d = ev_cur(b);
	if (fam == AF_INET) {
		d[0] = AF_INET;
		*(u32 *)(d + 1) = *(u32 *)&a->sa[4];
		*(u16 *)(d + 5) = ntoh16(*(u16 *)&a->sa[2]);
		ev_len(b, 7);
	} else if (fam == AF_INET6) {
		d[0] = AF_INET6;
		bpf_probe_read_kernel(d + 1, 16, &a->sa[8]);
		*(u16 *)(d + 17) = ntoh16(*(u16 *)&a->sa[2]);
		ev_len(b, 19);
	} else if (fam == AF_UNIX) {
		d[0] = AF_UNIX;
		int off = a->sa[2] == 0 ? 3 : 2; /* abstract names lose the leading NUL */
		a->sa[127] = 0;
		long n = bpf_probe_read_kernel_str(d + 1, 109, &a->sa[off & 3]);
		if (n <= 0) {
			d[1] = 0;
			n = 1;
		}
		ev_len(b, 1 + (n & 0x7f));
	} else if (fam) {
		d[0] = fam;
		ev_len(b, 1);
	} else {
		push_empty(b);
	}
}

/* socktuple param. outbound: local→remote (connect/send), else remote→local.
 * For unconnected datagram sends the remote end comes from the user sockaddr. */
static __always_inline void push_tuple(struct evb *b, struct sock *sk, int outbound,
				       const void *uaddr, u32 ulen)
{
	if (!sk) {
		push_empty(b);
		return;
	}
	u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	u8 *d = ev_cur(b);
	if (fam == AF_INET) {
		u32 lip = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		u32 rip = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		u16 rport = ntoh16(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (rport == 0 && read_sockaddr(b->a, uaddr, ulen) == AF_INET) {
			rip = *(u32 *)&b->a->sa[4];
			rport = ntoh16(*(u16 *)&b->a->sa[2]);
		}
		d[0] = AF_INET;
		*(u32 *)(d + 1) = outbound ? lip : rip;
		*(u16 *)(d + 5) = outbound ? lport : rport;
		*(u32 *)(d + 7) = outbound ? rip : lip;
		*(u16 *)(d + 11) = outbound ? rport : lport;
		ev_len(b, 13);
	} else if (fam == AF_INET6) {
		u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		u16 rport = ntoh16(BPF_CORE_READ(sk, __sk_common.skc_dport));
		d[0] = AF_INET6;
		bpf_core_read(d + (outbound ? 1 : 19), 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(d + (outbound ? 19 : 1), 16, &sk->__sk_common.skc_v6_daddr);
		if (rport == 0 && read_sockaddr(b->a, uaddr, ulen) == AF_INET6) {
			bpf_probe_read_kernel(d + (outbound ? 19 : 1), 16, &b->a->sa[8]);
			rport = ntoh16(*(u16 *)&b->a->sa[2]);
		}
		*(u16 *)(d + 17) = outbound ? lport : rport;
		*(u16 *)(d + 35) = outbound ? rport : lport;
		ev_len(b, 37);
	} else if (fam == AF_UNIX) {
		struct unix_sock *us = (void *)sk;
		struct sock *peer = BPF_CORE_READ(us, peer);
		d[0] = AF_UNIX;
		*(u64 *)(d + 1) = (u64)sk;
		*(u64 *)(d + 9) = (u64)peer;
		struct unix_sock *named = outbound && peer ? (void *)peer : us;
		struct unix_address *ua = BPF_CORE_READ(named, addr);
		long n = -1;
		if (ua) {
			char *p = (char *)&ua->name[0].sun_path[0];
			char c = 0;
			bpf_probe_read_kernel(&c, 1, p);
			n = bpf_probe_read_kernel_str(d + 17, 109, c ? p : p + 1);
		}
		if (n <= 0) {
			d[17] = 0;
			n = 1;
		}
		ev_len(b, 17 + (n & 0x7f));
	} else {
		push_empty(b);
	}
}

/* bind (21): res, addr, fd */
static __always_inline int h_bind(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 3, FAM_NET))
		return 0;
	push_u64(&b, ret);
	push_sockaddr(&b, (void *)sc_arg(regs, 1), sc_arg(regs, 2));
	push_u64(&b, (s64)(int)sc_arg(regs, 0));
	return ev_submit(&b);
}

/* connect (23): res, tuple, fd, addr */
static __always_inline int h_connect(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 4, FAM_NET))
		return 0;
	long fd = (int)sc_arg(regs, 0);
	push_u64(&b, ret);
	if (ret == 0 || ret == -EINPROGRESS)
		push_tuple(&b, fd_sock(cur_task(), fd), 1, NULL, 0);
	else
		push_empty(&b);
	push_u64(&b, fd);
	push_sockaddr(&b, (void *)sc_arg(regs, 1), sc_arg(regs, 2));
	return ev_submit(&b);
}

/* accept (247) / accept4 (389): fd, tuple, queuepct, queuelen, queuemax[, flags] */
static __always_inline int h_accept(long ret, struct pt_regs *regs, u16 type, int four)
{
	struct evb b;
	if (!ev_start(&b, type, four ? 6 : 5, FAM_NET))
		return 0;
	struct task_struct *t = cur_task();
	pf_reported_fd(ret);
	push_u64(&b, ret);
	push_tuple(&b, ret >= 0 ? fd_sock(t, ret) : NULL, 0, NULL, 0);
	struct sock *ls = fd_sock(t, (int)sc_arg(regs, 0));
	u32 qlen = ls ? BPF_CORE_READ(ls, sk_ack_backlog) : 0;
	u32 qmax = ls ? BPF_CORE_READ(ls, sk_max_ack_backlog) : 0;
	push_u8(&b, qmax ? (qlen * 100) / qmax : 0);
	push_u32(&b, qlen);
	push_u32(&b, qmax);
	if (four)
		push_u32(&b, (u32)sc_arg(regs, 3));
	return ev_submit(&b);
}

/* sendto (31): res, data, fd, size, tuple — data is not captured. */
static __always_inline int h_sendto(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 5, FAM_NET))
		return 0;
	long fd = (int)sc_arg(regs, 0);
	push_u64(&b, ret);
	push_empty(&b);
	push_u64(&b, fd);
	push_u32(&b, sc_arg(regs, 2));
	push_tuple(&b, fd_sock(cur_task(), fd), 1, (void *)sc_arg(regs, 4), sc_arg(regs, 5));
	return ev_submit(&b);
}

/* sendmsg (49): res, data, fd, size, tuple */
static __always_inline int h_sendmsg(long ret, struct pt_regs *regs, u16 type)
{
	struct evb b;
	if (!ev_start(&b, type, 5, FAM_NET))
		return 0;
	long fd = (int)sc_arg(regs, 0);
	struct user_msghdr mh = {};
	bpf_probe_read_user(&mh, sizeof(mh), (void *)sc_arg(regs, 1));
	u64 size = 0;
	/* Unrolled: 5.x verifiers reject some loop shapes clang emits (a call's
	 * fall-through closing the loop: "back-edge from insn"). */
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= mh.msg_iovlen)
			break;
		struct iovec iov = {};
		bpf_probe_read_user(&iov, sizeof(iov), &mh.msg_iov[i]);
		size += iov.iov_len;
	}
	push_u64(&b, ret);
	push_empty(&b);
	push_u64(&b, fd);
	push_u32(&b, size);
	push_tuple(&b, fd_sock(cur_task(), fd), 1, mh.msg_name, mh.msg_namelen);
	return ev_submit(&b);
}
