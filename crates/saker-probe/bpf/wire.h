/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The records the probe shares with user space, defined once. The Rust
 * types come from this header through the skeleton libbpf-cargo generates
 * in build.rs (saker-probe src/wire.rs asserts their sizes), and
 * saker_event::wire parses the event header for the probe and capture
 * files alike. Change a layout here, and the asserts on both sides say
 * what else must follow. */
#pragma once

/* scap v2 event header: every ring record starts with one, followed by
 * nparams u16 lengths, the parameters, then a u16 cpu trailer. */
struct evt_hdr {
	__u64 ts;      /* epoch ns */
	__u64 tid;
	__u32 len;     /* header + lengths + parameters (not the trailer) */
	__u16 type;    /* scap event id */
	__u32 nparams;
} __attribute__((packed));
_Static_assert(sizeof(struct evt_hdr) == 26, "evt_hdr layout");
_Static_assert(__builtin_offsetof(struct evt_hdr, type) == 20, "evt_hdr layout");
_Static_assert(__builtin_offsetof(struct evt_hdr, nparams) == 22, "evt_hdr layout");
#define HDR_LEN 26
#define HDR_OFF(field) __builtin_offsetof(struct evt_hdr, field)

/* Cpu trailer bit: the event is for the state engine only, not for rules
 * (a prefilter re-announcement; saker_event::CPU_STATE_ONLY). */
#define CPU_STATE_ONLY 0x8000

/* Counter families (index into `counters`); the first three go to the
 * state ring. */
enum fam {
	FAM_CLONE = 0,
	FAM_EXEC = 1,
	FAM_EXIT = 2,
	FAM_OPEN = 3,
	FAM_CLOSE = 4,
	FAM_NET = 5,
	FAM_FILEOP = 6,
	FAM_OTHER = 7,
	FAM_MAX = 8,
};

/* One per family and CPU (`counters`, a per-CPU array). */
struct counter {
	__u64 events;       /* events built (delivered or dropped) */
	__u64 drops_buffer; /* ring buffer full */
	__u64 drops_size;   /* over MAX_EV */
	__u64 filtered;     /* dropped by the prefilter: not needed by any rule or state */
};
_Static_assert(sizeof(struct counter) == 32, "counter layout");

/* Written by user space after load (`settings`, one entry). */
struct settings {
	__u64 boot_ts;    /* epoch ns at boot */
	__u32 clone_mask; /* fexit mode: child-side events wanted for clone(1) fork(2) vfork(4) clone3(8) */
	__u8 pf_any;      /* prefilter: open classes that pass whatever the path */
	__u8 pf_close;    /* prefilter: drop closes of fds whose open was dropped */
	__u16 pad;
};
_Static_assert(sizeof(struct settings) == 16, "settings layout");
_Static_assert(__builtin_offsetof(struct settings, pf_any) == 12, "settings layout");

/* Puts the records' types in the object's BTF (.rodata), so the skeleton
 * generator emits them as Rust types. Never read. */
const volatile struct wire_records {
	struct evt_hdr hdr;
	struct counter counter;
	struct settings settings;
} wire_records = {};
