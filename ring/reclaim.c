/* SPDX-License-Identifier: MIT */
/*
 * reclaim.c - the daemon makes spilled ring bytes reusable (ring_layout.h I1, I3):
 * publish the new bound, zero the bytes, move limit, wake blocked producers.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


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

int spwd_reclaim(struct spw_topic *t, int64_t upto)
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
	/* An honest limit is the reclaimed before the last one plus the ring
	 * (I3), and reclaim never passes the tail, which never passes limit:
	 * rec <= lim <= rec + ring. Anything else is garbage, not a half-done
	 * reclaim: zeroing from lim - ring would wipe records not yet spilled. */
	if (lim > rec + t->ring_bytes || lim < rec)
		return -EBADMSG;
	/* A daemon died between publishing `reclaimed` and moving `limit`
	 * (I3): finish its zeroing, then let producers in. */
	zero_ring(t, from, rec);
	/* seq_cst: as in spwd_reclaim (I3, I8). */
	atomic_store_explicit(&h->limit, rec + t->ring_bytes, memory_order_seq_cst);
	if (atomic_load_explicit(&h->prod_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&h->prod_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&h->prod_wake);
	}
	return 1;
}
