/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps, counters and the scap v2 event builder shared by every program. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "wire.h"

/* Event area: every write index is masked with EV_MASK, so the area is twice
 * the maximum event size to give the verifier a provable bound. */
/* Hides a value's known range from clang so the mask that follows is kept
 * and the verifier sees the bound. */
#define barrier_var(v) asm volatile("" : "+r"(v))

#define MAX_EV 0x10000
#define EV_MASK 0xFFFF
#define MAX_STR 4096
#define MAX_ARGS 4096
/* Path assembly area (dentry names are written backwards from TMP_END). */
#define TMP_SIZE 4096
#define TMP_MASK (TMP_SIZE - 1)
#define TMP_END (TMP_SIZE - 1)

/* Walk state lives in the map value, not on the stack, so the verifier sees
 * unknown scalars each bpf_loop iteration and the callback converges. */
struct walk {
	u64 d;
	u64 vm;
	u64 mnt;
	u32 pos;
	u32 pad;
};

/* Prefilter path key (LPM trie): prefixlen in bits, then the path bytes. */
#define PF_KEY_MAX 128
struct pf_key {
	u32 prefixlen;
	u8 data[PF_KEY_MAX];
};

struct aux {
	struct walk w;
	struct pf_key pk;
	u8 ev[MAX_EV * 2];
	u8 tmp[TMP_SIZE + 512];
	u8 sa[256];
};

/* Prefilter switch, set in .rodata before load: when off the verifier
 * prunes every prefilter branch, so "off" runs the same code as before. */
const volatile u32 pf_on = 0;
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the number of possible CPUs */
	__type(key, u32);
	__type(value, struct aux);
} auxmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAM_MAX);
	__type(key, u32);
	__type(value, struct counter);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct settings);
} settings SEC(".maps");

/* Generic mode: syscall number -> g_<name> program (tail call). */
#define SC_SLOTS 512
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SC_SLOTS);
	__type(key, u32);
	__type(value, u32);
} sc_progs SEC(".maps");

/* Prefilter: path patterns of the loaded rules -> mask of open classes
 * (saker-rules prefilter.rs). An exact name is stored with its NUL. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__type(key, struct pf_key);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} pf_paths SEC(".maps");

/* Prefilter: per process, a byte per fd below PF_FDS, set while the fd's
 * open was dropped (so its close is dropped too, and a reader re-announces
 * it). Bytes, not bits: threads of one process update them without atomics
 * (5.10 has no fetch-or) and without clobbering each other's fds. LRU: an
 * evicted process only lets closes through. */
#define PF_FDS 512
struct pf_fdset {
	u8 dropped[PF_FDS];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct pf_fdset);
} pf_fds SEC(".maps");
const struct pf_fdset pf_zero = {};

/* Small ring for clone/exec/exit so a flood of file events cannot starve state. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} rb_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} rb_main SEC(".maps");

struct evb {
	struct aux *a;
	u64 pos;
	u32 idx;
	u32 nparams;
	u32 fam;
	u16 type;
	u16 flags; /* ORed into the cpu trailer: CPU_STATE_ONLY */
};

static __always_inline int ev_start(struct evb *b, u16 type, u32 nparams, u32 fam)
{
	u32 cpu = bpf_get_smp_processor_id();
	b->a = bpf_map_lookup_elem(&auxmap, &cpu);
	if (!b->a)
		return 0;
	b->type = type;
	b->nparams = nparams;
	b->idx = 0;
	b->flags = 0;
	b->fam = fam;
	b->pos = HDR_LEN + nparams * 2;
	return 1;
}

static __always_inline u8 *ev_cur(struct evb *b)
{
	return &b->a->ev[b->pos & EV_MASK];
}

/* Records the length of the parameter just written at the cursor. */
static __always_inline void ev_len(struct evb *b, u32 len)
{
	u32 off = HDR_LEN + (b->idx & 31) * 2;
	*(u16 *)&b->a->ev[off] = (u16)len;
	b->idx++;
	b->pos += len;
}

static __always_inline void push_u8(struct evb *b, u8 v)
{
	*(u8 *)ev_cur(b) = v;
	ev_len(b, 1);
}
static __always_inline void push_u16(struct evb *b, u16 v)
{
	*(u16 *)ev_cur(b) = v;
	ev_len(b, 2);
}
static __always_inline void push_u32(struct evb *b, u32 v)
{
	*(u32 *)ev_cur(b) = v;
	ev_len(b, 4);
}
static __always_inline void push_u64(struct evb *b, u64 v)
{
	*(u64 *)ev_cur(b) = v;
	ev_len(b, 8);
}
static __always_inline void push_empty(struct evb *b)
{
	ev_len(b, 0);
}

/* User string including its NUL; missing (len 0) when unreadable. */
static __always_inline void push_user_str(struct evb *b, const void *p)
{
	long n = -1;
	if (p)
		n = bpf_probe_read_user_str(ev_cur(b), MAX_STR, p);
	ev_len(b, n > 0 ? n : 0);
}

static __always_inline void push_kernel_str(struct evb *b, const void *p, u32 max)
{
	long n = -1;
	if (p)
		n = bpf_probe_read_kernel_str(ev_cur(b), max & (MAX_STR * 2 - 1), p);
	ev_len(b, n > 0 ? n : 0);
}

static __always_inline u64 boot_ts(void)
{
	u32 k = 0;
	struct settings *s = bpf_map_lookup_elem(&settings, &k);
	return s ? s->boot_ts : 0;
}

static __always_inline u32 clone_mask(void)
{
	u32 k = 0;
	struct settings *s = bpf_map_lookup_elem(&settings, &k);
	return s ? s->clone_mask : 0;
}

static __always_inline struct settings *get_settings(void)
{
	u32 k = 0;
	return bpf_map_lookup_elem(&settings, &k);
}

static __always_inline void count_filtered(u32 fam)
{
	struct counter *c = bpf_map_lookup_elem(&counters, &fam);
	if (c)
		c->filtered++;
}

/* The calling process's byte for `fd` (created with the set when `create`),
 * or NULL: fds at or above PF_FDS, or no room. */
static __always_inline u8 *pf_slot(long fd, int create)
{
	if (fd < 0 || fd >= PF_FDS)
		return NULL;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pf_fdset *s = bpf_map_lookup_elem(&pf_fds, &tgid);
	if (!s && create) {
		bpf_map_update_elem(&pf_fds, &tgid, &pf_zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&pf_fds, &tgid);
	}
	if (!s)
		return NULL;
	/* The helper calls above spill `fd`; 5.10/6.1 verifiers forget a spilled
	 * scalar's bounds, so mask it again after the reload, behind a barrier
	 * that stops clang from dropping the "redundant" mask. */
	u64 idx = fd;
	asm volatile("" : "+r"(idx));
	return &s->dropped[idx & (PF_FDS - 1)];
}

/* A reported event created `fd`: a later close of it must pass. */
static __always_inline void pf_reported_fd(long fd)
{
	if (!pf_on)
		return;
	u8 *p = pf_slot(fd, 0);
	if (p)
		*p = 0;
}

static __always_inline void count(u32 fam, int drop_buffer, int drop_size)
{
	struct counter *c = bpf_map_lookup_elem(&counters, &fam);
	if (!c)
		return;
	c->events++;
	if (drop_buffer)
		c->drops_buffer++;
	if (drop_size)
		c->drops_size++;
}

/* Completes the header, appends the 2-byte cpu trailer and outputs the
 * record without waking the consumer (it polls). */
static __always_inline int ev_submit(struct evb *b)
{
	u64 size = b->pos;
	u8 *ev = b->a->ev;
	if (size >= MAX_EV - 2) {
		count(b->fam, 0, 1);
		return 0;
	}
	/* Word stores at the struct's offsets: through a packed pointer clang
	 * would split every field into byte stores. */
	*(u64 *)&ev[HDR_OFF(ts)] = boot_ts() + bpf_ktime_get_boot_ns();
	*(u64 *)&ev[HDR_OFF(tid)] = (u32)bpf_get_current_pid_tgid();
	*(u32 *)&ev[HDR_OFF(len)] = (u32)size;
	*(u16 *)&ev[HDR_OFF(type)] = b->type;
	*(u32 *)&ev[HDR_OFF(nparams)] = b->nparams;
	/* Mask again after a compiler barrier: clang knows size < MAX_EV and would
	 * drop the mask, and verifiers before 6.x lose the bound of the copy it
	 * reloads from the stack. */
	u64 len = size;
	barrier_var(len);
	len &= EV_MASK;
	*(u16 *)&ev[len] = (u16)bpf_get_smp_processor_id() | b->flags;
	void *rb = b->fam <= FAM_EXIT ? (void *)&rb_state : (void *)&rb_main;
	long err = bpf_ringbuf_output(rb, ev, len + 2, BPF_RB_NO_WAKEUP);
	count(b->fam, err != 0, 0);
	return 0;
}
