/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - the daemon settles the record it cannot pass (ring_layout.h I7): a
 * live producer's claim waits; a dead one's becomes ABORTED at once; garbage
 * becomes a CORRUPT span up to the first boundary that can be proven.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A slot's span [claim & ~7, end) as the owner published it (I2); false for
 * an idle slot or garbage. Acquire loads: pair with the tail CAS that
 * released them (the caller loaded tail before). *won: the CAS took it. */
bool ring_slot_span(const struct spw_topic *t, uint32_t i, uint64_t *from, uint64_t *to,
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

	return ring_slot_span(t, i, from, to, &won);
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

/* Who holds pos? Every slot whose span covers it and whose owner lives
 * holds it: one is enough to wait (never take a claim from the living,
 * P1). That counts CLAIMING slots beside a WON one: the WON slot may be a
 * forgery in a free slot (P3) over a live producer stopped between its
 * tail CAS and its WON store, whose claim must not be aborted (a review,
 * 2026-12-05; tests/ring_repair.c). The price: a live producer whose guess
 * lost the CAS and that stops before clearing it holds up settling the
 * dead winner's claim until it runs again, a wait stat names like any
 * stalled producer's. With none alive, the dead span's end comes from the
 * WON slots if any (only one CAS took that span; CLAIMING guesses may be
 * stale), else from the CLAIMING ones. Returns SPWD_RESOLVE_LIVE (or
 * -errno when liveness cannot be told: wait too), else 0 with *end the
 * dead holders' nearest span end (*dead) or nothing known (!*dead). */
static int holder(struct spw_topic *t, uint64_t pos, struct spwd_stall *out, uint64_t *end,
		  bool *dead)
{
	bool any_won = false, won;
	uint64_t a, b;

	*dead = false;
	for (uint32_t i = 0; i < t->max_producers && !any_won; i++)
		any_won = ring_slot_span(t, i, &a, &b, &won) && won && pos >= a && pos < b;
	for (uint32_t i = 0; i < t->max_producers; i++) {
		int alive;

		if (!ring_slot_span(t, i, &a, &b, &won) || pos < a || pos >= b)
			continue;
		alive = ring_slot_alive(t, i);
		if (alive != 0) { /* alive, or we cannot tell: wait */
			out->slot = (int32_t)i;
			/* Relaxed: advisory. */
			out->pid = atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed);
			return alive < 0 ? alive : SPWD_RESOLVE_LIVE;
		}
		if (any_won && !won)
			continue; /* a dead guess: the WON span says where it ends */
		out->slot = (int32_t)i;
		/* Relaxed: advisory. */
		out->pid = atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed);
		if (!*dead || b < *end)
			*end = b;
		*dead = true;
	}
	return 0;
}

/* Replace the word w we judged at pos with a `type` record of end - pos
 * bytes. seq_cst CAS: a commit that came after all (we were wrong about
 * nobody) wins; it orders before the waiter load (I8). false: it lost. */
static bool settle(struct spw_topic *t, uint64_t pos, uint64_t w, uint32_t type, uint64_t end)
{
	uint64_t nw = ring_word(type, end - pos, pos, t->ring_bytes);

	if (!atomic_compare_exchange_strong_explicit(&ring_rec_at(t, pos)->commit, &w, nw,
						     memory_order_seq_cst, memory_order_relaxed))
		return false;
	ring_wake_consumers(t);
	return true;
}

int spwd_resolve(struct spw_topic *t, int64_t position, struct spwd_stall *out)
{
	uint64_t pos = (uint64_t)position, tail, w, lap_end, end = 0;
	struct spwd_stall dummy;
	int64_t chk;
	bool dead_owner;
	int r;

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
	if ((r = holder(t, pos, out, &end, &dead_owner)))
		return r;
	if (chk == 0) {
		/* Uncommitted, and no live slot holds it: its owner is dead. The
		 * span is the dead slot's; for a slot reused since (or garbage in
		 * it), up to the next proven boundary or the first written word. */
		if (!dead_owner)
			end = next_claim_start(t, pos, tail);
		if (end > lap_end)
			end = lap_end; /* the padding of a wrapping claim: to the end */
		if (end - pos > RING_SKIP_MAX)
			end = pos + RING_SKIP_MAX; /* the rest: the next round's */
		/* Capped first: a hostile tail far ahead must not make this a
		 * search of 2^60 words (tests/ring_repair.c). */
		if (!dead_owner)
			for (uint64_t q = pos + 8; q < end; q += 8)
				/* Relaxed: a dead span is written by nobody. */
				if (atomic_load_explicit(&ring_rec_at(t, q)->commit, memory_order_relaxed)) {
					end = q;
					break;
				}
		if (!settle(t, pos, w, RING_T_ABORTED, end))
			return SPWD_RESOLVE_NONE;
		/* Relaxed: an advisory counter for stat. */
		atomic_fetch_add_explicit(&t->hdr->aborted_claims, 1, memory_order_relaxed);
		out->span = end - pos;
		return SPWD_RESOLVE_ABORTED;
	}
	/* Garbage: cut it out up to the first boundary we can prove, at most
	 * RING_SKIP_MAX at a time (one spill write, one reader chunk); whatever
	 * lies past it is judged at the next round. */
	end = next_claim_start(t, pos, tail < lap_end ? tail : lap_end);
	if (end - pos > RING_SKIP_MAX)
		end = pos + RING_SKIP_MAX;
	end = garbage_end(t, pos, end);
	if (!settle(t, pos, w, RING_T_CORRUPT, end))
		return SPWD_RESOLVE_NONE;
	/* Relaxed: an advisory counter for stat. */
	atomic_fetch_add_explicit(&t->hdr->corrupt_bytes, end - pos, memory_order_relaxed);
	out->span = end - pos;
	return SPWD_RESOLVE_CORRUPT;
}
