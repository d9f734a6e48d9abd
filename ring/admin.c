/* SPDX-License-Identifier: MIT */
/*
 * admin.c - the daemon's side of the ring: scan the committed run, reclaim
 * spilled bytes, unblock claims of dead producers, publish counters
 * (ring_layout.h I1, I3, I5, I7, I8). One daemon per topic: reclaimed, limit,
 * spilled, durable and the heartbeat have this single writer.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static bool was_reclaimed(struct spw_topic *t, uint64_t pos)
{
	/* Acquire fence then relaxed load: I5, as in consume.c's lapped(). */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->hdr->reclaimed, memory_order_relaxed) > pos;
}

int64_t spw_topic_scan(struct spw_topic *t, int64_t from, uint64_t max_bytes, struct spw_scan *out)
{
	uint64_t p, start = (uint64_t)from, tail, lap_end;

	if (!t || !out || from < 0 || (start & 7))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->end = from;
	out->stuck = -1;
	/* Acquire: pairs with reclaim's seq_cst store (bound check, I5). */
	if (start < atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire))
		return -ESTALE;
	/* Acquire: pairs with the producers' tail CAS; each of them loaded limit
	 * after the zeroing, so below tail no previous lap is visible (I3). */
	tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	if (start > tail)
		return -EINVAL;
	lap_end = (start & ~t->mask) + t->ring_bytes; /* a run never wraps (I6) */
	for (p = start; p < tail && p < lap_end; ) {
		struct ring_rec *r = ring_rec_at(t, p);
		/* Acquire: pairs with the commit CAS / padding store (I4). */
		uint64_t w = atomic_load_explicit(&r->commit, memory_order_acquire), span;

		if (!(w & RING_W_COMMITTED)) {
			out->stuck = (int64_t)p;
			out->stuck_header = w;
			break;
		}
		span = ring_committed_span(t, p, w);
		if (!span) {
			if (was_reclaimed(t, p))
				return -ESTALE;
			out->end = (int64_t)p;
			return -EBADMSG;
		}
		if (p + span > tail) { /* a committed record cannot pass the tail */
			if (was_reclaimed(t, p))
				return -ESTALE;
			out->end = (int64_t)p;
			return -EBADMSG;
		}
		if (p > start && p + span - start > max_bytes)
			break;
		if (RING_W_TYPE(w) == RING_T_DATA) {
			out->records++;
			if (r->timestamp_ns > out->max_timestamp_ns)
				out->max_timestamp_ns = r->timestamp_ns;
		}
		p += span;
	}
	if (was_reclaimed(t, start))
		return -ESTALE;
	out->end = (int64_t)p;
	return (int64_t)(p - start);
}

static void zero_ring(struct spw_topic *t, uint64_t from, uint64_t to)
{
	uint64_t n = to - from, off = from & t->mask, first;

	if (n >= t->ring_bytes) {
		memset(t->data, 0, t->ring_bytes);
		return;
	}
	first = t->ring_bytes - off < n ? t->ring_bytes - off : n;
	memset(t->data + off, 0, first);
	if (n > first)
		memset(t->data, 0, n - first);
}

int spw_topic_reclaim(struct spw_topic *t, int64_t upto)
{
	struct ring_hdr *h;
	uint64_t old, to = (uint64_t)upto, tail;

	if (!t || upto < 0 || (to & 7) || t->rdonly)
		return -EINVAL;
	h = t->hdr;
	/* Relaxed: the daemon is the only writer of reclaimed (I1). */
	old = atomic_load_explicit(&h->reclaimed, memory_order_relaxed);
	/* Acquire: pairs with the producers' tail CAS. */
	tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (to < old || to > tail)
		return -EINVAL;
	if (to == old)
		return 0;
	/* seq_cst store before zeroing (I3a, I5): a reader that sees any
	 * zeroed or reused byte then sees this bound after its acquire fence.
	 * On x86 it is an xchg, which also keeps the zeroing from moving up. */
	atomic_store_explicit(&h->reclaimed, to, memory_order_seq_cst);
	/* The writer half of the I5 seqlock: the bound above before any zero
	 * below, also where a seq_cst store does not order later plain stores
	 * (AArch64's STLR). A compiler barrier on x86. */
	atomic_thread_fence(memory_order_release);
	zero_ring(t, old, to); /* I3b: unwritten claims read as zero */
	/* seq_cst: release publishes the zeroing to producers, who acquire limit
	 * before writing (I3); seq_cst for the I8 pair with prod_waiters. */
	atomic_store_explicit(&h->limit, to + t->ring_bytes, memory_order_seq_cst);
	if (atomic_load_explicit(&h->prod_waiters, memory_order_seq_cst)) {
		/* seq_cst: the futex word sleepers compare (I8). */
		atomic_fetch_add_explicit(&h->prod_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&h->prod_wake);
	}
	/* Lapped consumers sleeping at a reclaimed position must learn it. */
	ring_wake_consumers(t);
	return 0;
}

int ring_reclaim_repair(struct spw_topic *t)
{
	struct ring_hdr *h = t->hdr;
	/* Relaxed: the caller is the (new) single daemon (I1); no producer
	 * claims past the old limit, so nobody writes the range zeroed here. */
	uint64_t rec = atomic_load_explicit(&h->reclaimed, memory_order_relaxed);
	uint64_t lim = atomic_load_explicit(&h->limit, memory_order_relaxed);
	uint64_t from = lim >= t->ring_bytes ? lim - t->ring_bytes : 0;

	if (lim == rec + t->ring_bytes)
		return 0;
	if (lim > rec + t->ring_bytes)
		return -EBADMSG; /* limit ahead of the bound: garbage */
	/* A daemon died between publishing `reclaimed` and moving `limit`
	 * (I3): finish its zeroing, then let producers in. */
	zero_ring(t, from, rec);
	/* seq_cst: as in spw_topic_reclaim (I3, I8). */
	atomic_store_explicit(&h->limit, rec + t->ring_bytes, memory_order_seq_cst);
	if (atomic_load_explicit(&h->prod_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&h->prod_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&h->prod_wake);
	}
	return 1;
}

int64_t spw_topic_unblock(struct spw_topic *t, int64_t position)
{
	uint64_t pos = (uint64_t)position, tail, off, end, q, w, span;
	struct ring_rec *r;
	struct timespec settle = { 0, 1000000 };

	if (!t || position < 0 || (pos & 7) || t->rdonly)
		return -EINVAL;
	/* Acquire: pairs with the producers' tail CAS (I3 below the tail). */
	tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	if (pos < atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire))
		return -ESTALE;
	if (pos >= tail)
		return -EINVAL; /* nothing is claimed there */
	/* Let producers that claimed before our tail snapshot write their
	 * headers (a few instructions after their CAS): only one stalled for
	 * longer than this, between its CAS and its header store, could be
	 * taken for part of the dead span (I7). */
	nanosleep(&settle, NULL);
	off = pos & t->mask;
	r = ring_rec_at(t, pos);
	for (;;) {
		/* Acquire: pairs with the producer's header store and commit CAS. */
		w = atomic_load_explicit(&r->commit, memory_order_acquire);
		if (w & RING_W_COMMITTED)
			return 0;
		if (w & RING_W_CLAIMED) {
			if (RING_W_TYPE(w) != RING_T_DATA || RING_W_FLAGS(w) ||
			    RING_W_LEN(w) > t->max_record ||
			    off + ring_span(RING_W_LEN(w)) > t->ring_bytes)
				return -EBADMSG;
			span = ring_span(RING_W_LEN(w));
		} else if (w != 0 && w != RING_W_POISON) {
			return -EBADMSG;
		} else {
			/* Never written (or poisoned by an earlier pass): the dead
			 * span ends at the first real header (I3 + I7), the tail, or
			 * the end of the ring. Each zero word is CAS'd to POISON, so a
			 * live producer whose header slot is taken gets -ECANCELED
			 * from its header CAS (I4) instead of writing into the span;
			 * one whose header CAS won stops the walk right there. */
			end = (pos & ~t->mask) + t->ring_bytes;
			if (tail < end)
				end = tail;
			if (end - pos > (1ull << 30))
				end = pos + (1ull << 30); /* fits the 32-bit span field */
			for (q = pos + 8; q < end; q += 8) {
				_Atomic uint64_t *word = (_Atomic uint64_t *)(void *)(t->data + (q & t->mask));
				uint64_t z = 0;

				/* seq_cst CAS: pairs with the producer's header CAS. */
				if (!atomic_compare_exchange_strong_explicit(word, &z, RING_W_POISON,
									     memory_order_seq_cst,
									     memory_order_relaxed) &&
				    z != RING_W_POISON)
					break;
			}
			span = q - pos;
		}
		/* seq_cst CAS: the producer's commit CAS fails after this (I4),
		 * and it orders the abort before the consumers' waiter load (I8). */
		if (atomic_compare_exchange_strong_explicit(
			    &r->commit, &w,
			    RING_W_COMMITTED | RING_W_CLAIMED | RING_W_MAKE(RING_T_ABORTED, span),
			    memory_order_seq_cst, memory_order_relaxed)) {
			ring_wake_consumers(t);
			return (int64_t)span;
		}
	}
}

int spw_topic_set_counter(struct spw_topic *t, enum spw_counter which, int64_t value)
{
	_Atomic uint64_t *c;

	if (!t || value < 0 || t->rdonly)
		return -EINVAL;
	switch (which) {
	case SPW_SPILLED:
		c = &t->hdr->spilled;
		break;
	case SPW_DURABLE:
		c = &t->hdr->durable;
		break;
	default:
		return -EINVAL;
	}
	/* Relaxed load: the daemon is the single writer (I1). */
	if ((uint64_t)value < atomic_load_explicit(c, memory_order_relaxed))
		return -EINVAL;
	/* seq_cst (release would do for the data): pairs with the acquire
	 * loads of acknowledgement waiters and tools; the bytes below value are
	 * on disk before it is published. */
	atomic_store_explicit(c, (uint64_t)value, memory_order_seq_cst);
	/* seq_cst store above and load here: the waker half of I8 for
	 * spw_producer_wait_ack(). */
	if (atomic_load_explicit(&t->hdr->ack_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&t->hdr->ack_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&t->hdr->ack_wake);
	}
	return 0;
}

int spw_topic_heartbeat(struct spw_topic *t, uint32_t pid)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: advisory values for tools, no data hangs on them. */
	atomic_store_explicit(&t->hdr->daemon_pid, pid, memory_order_relaxed);
	atomic_store_explicit(&t->hdr->daemon_heartbeat_ns, ring_realtime_ns(), memory_order_relaxed);
	return 0;
}
