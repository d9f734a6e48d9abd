/* SPDX-License-Identifier: MIT */
/*
 * scan.c - the daemon walks the committed run of the ring from its spill
 * position (ring_layout.h I4, I5): records, bytes, the first record it
 * cannot pass. One daemon per topic (spwd_own).
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t spwd_scan(struct spw_topic *t, int64_t from, uint64_t max_bytes, struct spwd_scan_result *out)
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
	/* Acquire: limit only grows, and every claim stays below the limit its
	 * producer loaded before it (I3): loaded after tail, an honest limit is
	 * never below it. Past limit lie the unreclaimed lap's records, which
	 * a walk would take for garbage and cut (overwriting them): a tail
	 * there is garbage in the header, not records. */
	if (tail > atomic_load_explicit(&t->hdr->limit, memory_order_acquire))
		return -EUCLEAN;
	if (start > tail)
		return -EINVAL;
	lap_end = (start & ~t->mask) + t->ring_bytes; /* a run never wraps (I6) */
	for (p = start; p < tail && p < lap_end; ) {
		struct ring_rec *r = ring_rec_at(t, p);
		/* Acquire: pairs with the commit / padding store (I4). */
		uint64_t w = atomic_load_explicit(&r->commit, memory_order_acquire), span;
		int64_t chk = ring_check(t, p, w);

		if (chk == 0) {
			out->stuck = (int64_t)p;
			out->stuck_header = w;
			break;
		}
		if (chk < 0) {
			if (ring_lapped(t, p))
				return -ESTALE;
			out->end = (int64_t)p;
			return -EBADMSG;
		}
		span = (uint64_t)chk;
		if (p + span > tail) { /* a committed record cannot pass the tail */
			if (ring_lapped(t, p))
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
	if (ring_lapped(t, start))
		return -ESTALE;
	out->end = (int64_t)p;
	return (int64_t)(p - start);
}
