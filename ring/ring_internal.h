/* SPDX-License-Identifier: MIT */
/* ring_internal.h - handles and helpers shared by the ring/ source files. */
#ifndef SPILLWAY_RING_INTERNAL_H
#define SPILLWAY_RING_INTERNAL_H

#include "spillway.h"
#include "ring_layout.h"

#include <stdbool.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* A mapped topic. The settings are copied out of shared memory at open and
 * validated once; nothing here trusts the header page after that. */
struct spw_topic {
	struct ring_hdr *hdr;   /* shared header page */
	uint8_t *data;          /* ring_bytes of records */
	size_t map_bytes;
	uint64_t ring_bytes, mask, segment_bytes;
	uint32_t max_record, flags;
	bool rdonly;
	char name[SPW_NAME_MAX + 1];
};

/* Per-handle clock: TSC ticks turned into CLOCK_REALTIME ns, re-synced to
 * clock_gettime every ~1 ms so the error stays tiny (rdtsc ~12 ns here,
 * clock_gettime ~30 ns: the difference is the 64 B hot path's budget). */
struct ring_clock {
	uint64_t base_tsc, base_ns, last_ns;
	uint64_t mult;        /* ns per tick, 32.32 fixed point; 0: no usable TSC */
	uint64_t resync_ticks;
};

struct spw_producer {
	struct spw_topic *t;
	struct ring_clock clk;
	bool warned_full;
};

struct spw_consumer {
	struct spw_topic *t;
	uint64_t pos;
	uint64_t limit_cache; /* last limit seen: positions below it are safe to read (I3) */
};

/* For the daemon at attach: finish a reclaim a killed daemon left half
 * done (reclaimed moved, limit not): zero the rest, move limit (I3).
 * 0 nothing to do, 1 repaired, -EBADMSG. */
int ring_reclaim_repair(struct spw_topic *t);

/* mkdir -p: 0 or -errno (used by ring/, daemon/ and tools/). */
int ring_mkdir_p(const char *dir, unsigned mode);

void ring_clock_init(struct ring_clock *c);
uint64_t ring_clock_now_slow(struct ring_clock *c);

/* CLOCK_REALTIME ns from the TSC, never backwards for one handle; inline,
 * since every claim takes one. */
static inline uint64_t ring_clock_now(struct ring_clock *c)
{
#if defined(__x86_64__)
	if (__builtin_expect(c->mult != 0, 1)) {
		uint64_t d = __rdtsc() - c->base_tsc;

		if (__builtin_expect(d < c->resync_ticks, 1)) {
			uint64_t ns = c->base_ns + (uint64_t)(((__uint128_t)d * c->mult) >> 32);

			if (ns < c->last_ns)
				ns = c->last_ns;
			c->last_ns = ns;
			return ns;
		}
	}
#endif
	return ring_clock_now_slow(c);
}
uint64_t ring_realtime_ns(void);
uint64_t ring_monotonic_ns(void);

int ring_futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t timeout_ns);
void ring_futex_wake_all(_Atomic uint32_t *word);
/* Wake the consumers sleeping on t (I8 waker side): inline, one load and a
 * branch when none sleeps (every commit pays it). */
void ring_wake_consumers_slow(struct spw_topic *t);
static inline void ring_wake_consumers(struct spw_topic *t)
{
	/* seq_cst load: the waker half of I8; the caller's CAS (a full barrier)
	 * comes first. Pairs with the fetch_add in consumer_sleep(). */
	if (__builtin_expect(atomic_load_explicit(&t->hdr->cons_waiters, memory_order_seq_cst) != 0,
			     0))
		ring_wake_consumers_slow(t);
}

/* For the disk-to-live reader (spill/reader.c): the next DATA record at the
 * consumer's position, copied into *stage (grown to max_record) and
 * validated after the copy (I5), so it is never torn; advances the
 * position. 1, 0 (nothing yet), -ESTALE (position left on the record),
 * -EBADMSG, -ENOMEM. */
int ring_consumer_next_copy(struct spw_consumer *c, uint8_t **stage, size_t *cap,
			    struct spw_record *rec);
/* Spin, then sleep until something is at the consumer's position (or it was
 * lapped): 1, or 0 after timeout_ns (< 0: forever). */
int ring_consumer_wait(struct spw_consumer *c, int64_t timeout_ns);

/* The record at ring offset off, and the checks every reader makes on a
 * committed word: returns the span, or 0 when the word is garbage. */
static inline struct ring_rec *ring_rec_at(const struct spw_topic *t, uint64_t pos)
{
	return (struct ring_rec *)(void *)(t->data + (pos & t->mask));
}

static inline uint64_t ring_committed_span(const struct spw_topic *t, uint64_t pos, uint64_t w)
{
	uint64_t off = pos & t->mask, room = t->ring_bytes - off, span;
	uint32_t len = RING_W_LEN(w);

	if (RING_W_FLAGS(w) != 0 || !(w & RING_W_CLAIMED))
		return 0;
	switch (RING_W_TYPE(w)) {
	case RING_T_DATA:
		if (len > t->max_record)
			return 0;
		span = ring_span(len);
		return span <= room ? span : 0;
	case RING_T_PADDING: /* always runs exactly to the end of the ring (I6) */
		return (len == room && len >= 8 && (len & 7) == 0) ? len : 0;
	case RING_T_ABORTED:
		return (len <= room && len >= 8 && (len & 7) == 0) ? len : 0;
	default:
		return 0;
	}
}

static inline void ring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
