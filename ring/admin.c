/* SPDX-License-Identifier: MIT */
/*
 * admin.c - the daemon's side of the ring: scan the committed run, reclaim
 * spilled bytes, settle claims of dead producers and garbage, publish counters
 * (ring_layout.h I1, I3, I5, I7, I8). One daemon per topic: reclaimed, limit,
 * spilled, durable and the heartbeat have this single writer.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool was_reclaimed(struct spw_topic *t, uint64_t pos)
{
	/* Acquire fence then relaxed load: I5, as in consume.c's lapped(). */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->hdr->reclaimed, memory_order_relaxed) > pos;
}

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
			if (was_reclaimed(t, p))
				return -ESTALE;
			out->end = (int64_t)p;
			return -EBADMSG;
		}
		span = (uint64_t)chk;
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
	if (lim > rec + t->ring_bytes)
		return -EBADMSG; /* limit ahead of the bound: garbage */
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

/* A slot's span [claim & ~7, end) as the owner published it (I2); false for
 * an idle slot or garbage. Acquire loads: pair with the tail CAS that
 * released them (the caller loaded tail before). *won: the CAS took it. */
static bool slot_span_won(const struct spw_topic *t, uint32_t i, uint64_t *from, uint64_t *to,
			  bool *won)
{
	/* end first: claim() stores claim then end (release), I2. */
	uint64_t e = atomic_load_explicit(&t->slots[i].end, memory_order_acquire);
	uint64_t c = atomic_load_explicit(&t->slots[i].claim, memory_order_acquire);

	if ((c & 7) != RING_SLOT_CLAIMING && (c & 7) != RING_SLOT_WON)
		return false;
	if (e <= (c & ~7ull) || e - (c & ~7ull) > t->ring_bytes || (e & 7))
		return false;
	*from = c & ~7ull;
	*to = e;
	*won = (c & 7) == RING_SLOT_WON;
	return true;
}

static bool slot_span(const struct spw_topic *t, uint32_t i, uint64_t *from, uint64_t *to)
{
	bool won;

	return slot_span_won(t, i, from, to, &won);
}

bool ring_span_settled(const struct spw_topic *t, uint64_t from, uint64_t to)
{
	/* Acquire: pairs with reclaim's store; below it all was committed. */
	uint64_t p = from, rec = atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire);

	if (p < rec)
		p = rec;
	while (p < to) {
		/* Acquire: pairs with the commit stores (I4). */
		int64_t span = ring_check(t, p, atomic_load_explicit(&ring_rec_at(t, p)->commit,
								     memory_order_acquire));

		if (span <= 0)
			return false;
		p += (uint64_t)span;
	}
	return true;
}

/* The first position after pos that some slot's claim starts at (every
 * claim starts at a value the tail once had: a record boundary, I1/I2),
 * else `bound`. */
static uint64_t next_claim_start(const struct spw_topic *t, uint64_t pos, uint64_t bound)
{
	for (uint32_t i = 0; i < t->max_producers; i++) {
		uint64_t a, b;

		if (slot_span(t, i, &a, &b) && a > pos && a < bound)
			bound = a;
	}
	return bound;
}

/* The end of the garbage that starts at pos: the smallest q in (pos, bound)
 * from which a chain of valid committed records lands exactly on bound, or
 * bound itself. bound is a proven boundary (a claim start, the tail or the
 * lap end), so such a chain is the records that follow the garbage. */
/* The longest ABORTED / CORRUPT span the daemon writes at once. */
#define RING_SKIP_MAX (1ull << 30)

static uint64_t garbage_end(const struct spw_topic *t, uint64_t pos, uint64_t bound)
{
	uint64_t words = (bound - pos) / 8, best = bound;
	uint8_t *good;

	if (words < 2)
		return bound;
	good = calloc((size_t)(words + 7) / 8, 1);
	if (!good)
		return bound;
	/* Right to left: q is good when its record is valid and ends at bound
	 * or at another good q. */
	for (uint64_t k = words - 1; k >= 1; k--) {
		uint64_t q = pos + k * 8;
		/* Acquire: pairs with commit stores (I4). */
		int64_t span = ring_check(t, q, atomic_load_explicit(&ring_rec_at(t, q)->commit,
								     memory_order_acquire));
		uint64_t e;

		if (span <= 0)
			continue;
		e = q + (uint64_t)span;
		if (e == bound || (e < bound && (good[(e - pos) / 8 / 8] >> ((e - pos) / 8 % 8) & 1))) {
			good[k / 8] |= (uint8_t)(1u << (k % 8));
			best = q;
		}
	}
	free(good);
	return best;
}

int spwd_resolve(struct spw_topic *t, int64_t position, struct spwd_stall *out)
{
	uint64_t pos = (uint64_t)position, tail, w, lap_end, end = 0, a, b;
	struct spwd_stall dummy;
	int64_t chk;
	bool dead_owner = false;

	if (!out)
		out = &dummy;
	if (!t || position < 0 || (pos & 7) || t->rdonly)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->position = position;
	out->slot = -1;
	/* Acquire: pairs with the producers' tail CAS, which released their
	 * slot stores (I2): every claim below this tail is visible in a slot. */
	tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	if (pos < atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire))
		return -ESTALE;
	if (pos >= tail)
		return -EINVAL; /* nothing is claimed there */
	lap_end = (pos & ~t->mask) + t->ring_bytes;
	/* Acquire: pairs with the commit store (I4). */
	w = atomic_load_explicit(&ring_rec_at(t, pos)->commit, memory_order_acquire);
	out->word = w;
	chk = ring_check(t, pos, w);
	if (chk > 0 && pos + (uint64_t)chk > tail)
		chk = RING_WORD_BAD; /* a record cannot run past the tail (as in scan) */
	if (chk > 0)
		return SPWD_RESOLVE_NONE;
	/* Who holds pos? The WON slot whose span covers it, if one says so:
	 * only one CAS took that span, so it alone decides. Else every
	 * CLAIMING slot covering it (its owner died or stalled between CAS and
	 * its WON store, or a stale guess that lost: only more careful). One
	 * live holder is enough to wait: never take a claim from the living. */
	int32_t won_slot = -1;

	for (uint32_t i = 0; i < t->max_producers; i++) {
		bool won;

		if (slot_span_won(t, i, &a, &b, &won) && won && pos >= a && pos < b) {
			won_slot = (int32_t)i;
			break;
		}
	}
	for (uint32_t i = 0; i < t->max_producers; i++) {
		int alive;
		bool won;

		if (won_slot >= 0 && i != (uint32_t)won_slot)
			continue;
		if (!slot_span_won(t, i, &a, &b, &won) || pos < a || pos >= b)
			continue;
		alive = ring_slot_alive(t, i);
		out->slot = (int32_t)i;
		/* Relaxed: advisory. */
		out->pid = atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed);
		if (alive != 0) /* alive, or we cannot tell: wait */
			return alive < 0 ? alive : SPWD_RESOLVE_LIVE;
		if (!dead_owner || b < end)
			end = b;
		dead_owner = true;
	}
	if (chk == 0) {
		/* Uncommitted, and no live slot holds it: its owner is dead. The
		 * span is the dead slot's; for a slot reused since (or garbage in
		 * it), up to the next proven boundary or the first written word. */
		if (!dead_owner) {
			end = next_claim_start(t, pos, tail);
			for (uint64_t q = pos + 8; q < end; q += 8)
				/* Relaxed: a dead span is written by nobody. */
				if (atomic_load_explicit(&ring_rec_at(t, q)->commit, memory_order_relaxed)) {
					end = q;
					break;
				}
		}
		if (end > lap_end)
			end = lap_end; /* the padding of a wrapping claim: to the end */
		if (end - pos > RING_SKIP_MAX)
			end = pos + RING_SKIP_MAX; /* the rest: the next round's */
		b = ring_word(RING_T_ABORTED, end - pos, pos, t->ring_bytes);
		/* seq_cst CAS from 0: a commit that came after all (we were
		 * wrong about nobody) wins; orders before the waiter load (I8). */
		if (!atomic_compare_exchange_strong_explicit(&ring_rec_at(t, pos)->commit, &w, b,
							     memory_order_seq_cst, memory_order_relaxed))
			return SPWD_RESOLVE_NONE;
		/* Relaxed: an advisory counter for stat. */
		atomic_fetch_add_explicit(&t->hdr->aborted_claims, 1, memory_order_relaxed);
		out->span = end - pos;
		ring_wake_consumers(t);
		return SPWD_RESOLVE_ABORTED;
	}
	/* Garbage: cut it out up to the first boundary we can prove. */
	/* At most RING_SKIP_MAX at a time (one spill write, one reader chunk);
	 * whatever lies past it is judged at the next round. */
	end = next_claim_start(t, pos, tail < lap_end ? tail : lap_end);
	if (end - pos > RING_SKIP_MAX)
		end = pos + RING_SKIP_MAX;
	end = garbage_end(t, pos, end);
	b = ring_word(RING_T_CORRUPT, end - pos, pos, t->ring_bytes);
	/* seq_cst CAS from the garbage we judged. */
	if (!atomic_compare_exchange_strong_explicit(&ring_rec_at(t, pos)->commit, &w, b,
						     memory_order_seq_cst, memory_order_relaxed))
		return SPWD_RESOLVE_NONE;
	atomic_fetch_add_explicit(&t->hdr->corrupt_bytes, end - pos, memory_order_relaxed);
	out->span = end - pos;
	ring_wake_consumers(t);
	return SPWD_RESOLVE_CORRUPT;
}

int spwd_own(struct spw_topic *t, uint32_t *owner_pid)
{
	int fd, r;

	if (owner_pid)
		*owner_pid = 0;
	if (!t || t->rdonly)
		return -EINVAL;
	if (t->own_fd >= 0)
		return 0;
	fd = ring_reopen(t);
	if (fd < 0)
		return fd;
	r = ring_lock(fd, RING_DAEMON_OFF, true);
	if (r) {
		close(fd);
		if (r == -EAGAIN) {
			if (owner_pid)
				*owner_pid = ring_lock_owner_pid(t, RING_DAEMON_OFF);
			return -EBUSY;
		}
		return r;
	}
	t->own_fd = fd;
	return 0;
}

int spwd_set_durable_error(struct spw_topic *t, int err)
{
	if (!t || t->rdonly || err > 0)
		return -EINVAL;
	/* seq_cst store, then the waiter load: the waker half of I8, as in
	 * spwd_set_counter; waiters re-check it after registering. */
	atomic_store_explicit(&t->hdr->durable_err, err, memory_order_seq_cst);
	if (atomic_load_explicit(&t->hdr->ack_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&t->hdr->ack_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&t->hdr->ack_wake);
	}
	return 0;
}

int spwd_set_disk_damage(struct spw_topic *t, uint64_t bad_ranges)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: an advisory report for stat. */
	atomic_store_explicit(&t->hdr->disk_bad_ranges, bad_ranges, memory_order_relaxed);
	return 0;
}

int spwd_set_stall(struct spw_topic *t, int32_t slot, int64_t position, uint32_t pid,
			uint64_t since_ns)
{
	struct ring_hdr *h;

	if (!t || t->rdonly)
		return -EINVAL;
	h = t->hdr;
	/* Relaxed: an advisory report for stat; torn combinations are
	 * harmless (stat shows what it reads). */
	atomic_store_explicit(&h->stall_pos, slot >= 0 ? (uint64_t)position : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_pid, slot >= 0 ? pid : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_since_ns, slot >= 0 ? since_ns : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_slot, slot >= 0 ? slot : -1, memory_order_relaxed);
	return 0;
}

int spw_topic_producers(const struct spw_topic *t, struct spw_producer_info *out, int max)
{
	int n = 0;

	if (!t || (!out && max) || max < 0)
		return -EINVAL;
	/* Acquire: as in resolve (I2). */
	(void)atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	for (uint32_t i = 0; i < t->max_producers && n < max; i++) {
		uint64_t a = 0, b = 0;
		bool won = false, span = slot_span_won(t, i, &a, &b, &won);
		int alive = ring_slot_alive(t, i);
		struct spw_producer_info *o = &out[n];

		if (alive <= 0 && !span)
			continue;
		if (alive <= 0 && ring_span_settled(t, a, b))
			continue; /* a dead slot matters only while its claim is unsettled */
		memset(o, 0, sizeof(*o));
		o->slot = i;
		/* Relaxed: advisory fields. */
		o->pid = atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed);
		o->since_ns = atomic_load_explicit(&t->slots[i].since_ns, memory_order_relaxed);
		o->alive = alive > 0;
		o->claim = span ? (int64_t)a : -1;
		o->end = span ? (int64_t)b : -1;
		/* Claiming: a span its CAS took (WON) that is not all committed
		 * yet. A CLAIMING guess owns nothing for sure: not reported. */
		o->claiming = span && won && !ring_span_settled(t, a, b);
		n++;
	}
	return n;
}

int spwd_set_counter(struct spw_topic *t, enum spwd_counter which, int64_t value)
{
	_Atomic uint64_t *c;

	if (!t || value < 0 || t->rdonly)
		return -EINVAL;
	switch (which) {
	case SPWD_SPILLED:
		c = &t->hdr->spilled;
		break;
	case SPWD_DURABLE:
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

int spwd_heartbeat(struct spw_topic *t, uint32_t pid)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: advisory values for tools, no data hangs on them. */
	atomic_store_explicit(&t->hdr->daemon_pid, pid, memory_order_relaxed);
	atomic_store_explicit(&t->hdr->daemon_heartbeat_ns, ring_realtime_ns(), memory_order_relaxed);
	ring_waiters_repair(t);
	return 0;
}
