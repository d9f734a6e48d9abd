/* SPDX-License-Identifier: MIT */
/*
 * solo.c - the lone shared producer claims without a locked instruction
 * (ring/ring_layout.h I9).
 *
 * A shared producer pays a CAS on tail per record (I2) because another
 * producer may race it. When it is the only live producer, that CAS costs
 * ~3-8 ns of a ~15 ns send for nothing. So at open a producer that finds no
 * other live slot becomes "solo": it claims like an exclusive producer,
 * with a release store of tail, as long as the solo word names it. It checks
 * the word (a relaxed load of a line nobody writes) after publishing its
 * span in its slot and before storing tail.
 *
 * Whoever opens next ends the solo: CAS the word to ENDING, membarrier,
 * take no span before the solo producer's possible in-flight claim is
 * settled, then turn the word off (off: no plain store of tail can come).
 * The membarrier is what makes the solo side's check a valid Dekker half
 * without a fence per record (ring/ring_layout.h I9 says why); it is the
 * same trick the consumers' sleep uses for commits (I8). No timeout and no
 * PID: the in-flight claim is settled when the slot's claim word changes,
 * the tail moves past it, or the kernel dropped the slot's lock (its owner
 * died).
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <sched.h>

/* How long open() spins for a solo claim in flight before leaving the wait
 * to the claims (ring_solo_join_settled); it is a few instructions long
 * unless its owner was stopped right there. */
#define JOIN_SPINS 4096u

/* Is any slot but ours locked? A failed query counts as live: we then stay
 * shared, which is always safe. */
static bool others_live(const struct spw_topic *t, uint32_t me)
{
	for (uint32_t i = 0; i < t->max_producers; i++)
		if (i != me && ring_slot_alive(t, i) != 0)
			return true;
	return false;
}

/* The solo word goes from w to off, unless it changed since: seq_cst, as
 * every change of the word. (From ENDING: whoever else turned it off first
 * did the same wait.) */
static void solo_off(struct spw_topic *t, uint64_t w)
{
	atomic_compare_exchange_strong_explicit(&t->hdr->solo, &w, RING_SOLO_GEN(w) + RING_SOLO_GEN_ONE,
						memory_order_seq_cst, memory_order_relaxed);
}

bool ring_solo_join_settled(struct spw_producer *p)
{
	struct spw_topic *t = p->t;
	/* Acquire: pairs with the solo producer's release stores of its claim
	 * word and of tail, so once either moved we see the tail it stored. */
	uint64_t c = atomic_load_explicit(&t->slots[p->join_slot].claim, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);

	/* Unsettled while the claim is the one we saw, the tail has not moved
	 * past its start (only its owner can move it now: everyone else who
	 * opened since waits too) and its owner lives. */
	if (c == p->join_claim && tail == (c & ~7ull) && ring_slot_alive(t, p->join_slot) != 0)
		return false;
	p->join_pending = false;
	solo_off(t, p->join_word);
	return true;
}

/* The solo word is w, ENDING (we or someone set it): the barrier into its
 * solo producer, then wait for a claim it may have begun while it still
 * read ON. 0 (settled, or *pending), or -errno from membarrier: the word
 * then stays ENDING and the next to open does the barrier and the wait. */
static int end_solo(struct spw_producer *p, uint64_t w)
{
	struct spw_topic *t = p->t;
	uint32_t who = RING_SOLO_SLOT(w);
	uint64_t c;
	int r;

	/* After it, either the solo producer's next load of the word sees the
	 * change, or the CLAIMING store it made before its load is visible. */
	r = ring_membarrier();
	if (r)
		return r;
	c = 0;
	if (who < t->max_producers)
		/* Acquire: pairs with the release stores of that slot's claim. */
		c = atomic_load_explicit(&t->slots[who].claim, memory_order_acquire);
	p->join_word = w;
	if ((c & 7) != RING_SLOT_CLAIMING) {
		solo_off(t, w); /* between claims, past its tail store, or garbage */
		return 0;
	}
	p->join_slot = who;
	p->join_claim = c;
	p->join_pending = true;
	for (unsigned i = 0; i < JOIN_SPINS && !ring_solo_join_settled(p); i++)
		if ((i & 63) == 63)
			sched_yield();
		else
			ring_cpu_relax();
	return 0;
}

int ring_solo_open(struct spw_producer *p)
{
	struct spw_topic *t = p->t;
	_Atomic uint64_t *word = &t->hdr->solo;
	/* seq_cst everywhere on the word: its changes are rare and each pairs
	 * with the others' loads and with the slot-lock queries around them. */
	uint64_t w = atomic_load_explicit(word, memory_order_seq_cst), next;
	int r;

	for (;;) {
		next = RING_SOLO_GEN(w) + RING_SOLO_GEN_ONE;
		if (w & RING_SOLO_ON) {
			/* Someone is solo: ENDING, naming the same slot. */
			next |= RING_SOLO_ENDING | (w & (RING_SOLO_GEN_ONE - 1) & ~RING_SOLO_ON);
			if (!atomic_compare_exchange_strong_explicit(word, &w, next,
								     memory_order_seq_cst,
								     memory_order_seq_cst))
				continue;
			w = next;
			/* Relaxed: set by tests before any producer runs. */
			if (ring_test_hook)
				ring_test_hook(RING_AT_SOLO_ENDING);
		}
		if (w & RING_SOLO_ENDING) {
			r = end_solo(p, w);
			if (r || p->join_pending)
				return r;
			w = atomic_load_explicit(word, memory_order_seq_cst);
			continue; /* its owner may have been dead or gone: again */
		}
		/* Solo needs the barrier from whoever opens next (I9); without
		 * membarrier we stay shared. */
		if (p->fence_commit || others_live(t, p->slot_index))
			return 0;
		next |= RING_SOLO_ON | ((uint64_t)p->slot_index << RING_SOLO_SLOT_SHIFT);
		if (!atomic_compare_exchange_strong_explicit(word, &w, next, memory_order_seq_cst,
							     memory_order_seq_cst))
			continue;
		/* The word says ON before we look again: a producer that locked
		 * its slot after our look below sees ON and ends our solo. */
		if (others_live(t, p->slot_index)) {
			solo_off(t, next); /* we claimed nothing: nobody must wait for us */
			return 0;
		}
		p->solo_w = next;
		p->exclusive = true;
		/* Acquire: nobody else moves tail now; its last value, from the
		 * CAS or store that made it. */
		p->tail_own = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
		p->limit_seen = 0;
		return 0;
	}
}

void ring_solo_close(struct spw_producer *p)
{
	/* seq_cst: as every change of the word. */
	uint64_t w = atomic_load_explicit(&p->t->hdr->solo, memory_order_seq_cst);

	/* Give the word up if it names our slot, ON (still our solo) or
	 * ENDING (a newcomer ended it; we are between claims, so none of ours
	 * is in flight and nobody need wait any more). */
	if ((w & (RING_SOLO_ON | RING_SOLO_ENDING)) && RING_SOLO_SLOT(w) == p->slot_index)
		solo_off(p->t, w);
	p->solo_w = 0;
}
