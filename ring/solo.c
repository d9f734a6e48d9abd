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
 * Whoever opens next ends the solo: CAS the word off, membarrier, and take
 * no span before the solo producer's possible in-flight claim is settled.
 * The membarrier is what makes the solo side's check a valid Dekker half
 * without a fence per record (ring/ring_layout.h I9 says why); it is the
 * same trick the consumers' sleep uses for commits (I8). No timeout and no
 * PID: the in-flight claim is settled when the slot's claim word changes or
 * the kernel dropped the slot's lock (its owner died).
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

bool ring_solo_join_settled(struct spw_producer *p)
{
	const struct spw_topic *t = p->t;
	/* Acquire: pairs with the solo producer's release stores of its claim
	 * word (WON after its tail store, IDLE after its commit), so once it
	 * changed we see the tail it stored. */
	uint64_t c = atomic_load_explicit(&t->slots[p->join_slot].claim, memory_order_acquire);

	if (c == p->join_claim && ring_slot_alive(t, p->join_slot) != 0)
		return false;
	p->join_pending = false;
	return true;
}

/* The solo word was w (ON, naming another slot) and we CASed it off: wait
 * for a claim its owner may have begun while it still read ON. */
static int end_solo(struct spw_producer *p, uint64_t w, uint64_t off)
{
	const struct spw_topic *t = p->t;
	uint32_t who = RING_SOLO_SLOT(w);
	uint64_t c;
	int r;

	/* The barrier into the solo producer (I9): after it, either its next
	 * load of the word sees off, or the CLAIMING store it made before its
	 * load is visible here. */
	r = ring_membarrier();
	if (r) {
		/* We cannot tell: put the word back (if nobody moved it since) and
		 * refuse to produce rather than race its plain store of tail.
		 * seq_cst, as every change of the word. */
		atomic_compare_exchange_strong_explicit(&t->hdr->solo, &off, w, memory_order_seq_cst,
							memory_order_relaxed);
		return r;
	}
	if (who >= t->max_producers)
		return 0; /* garbage in the word: nobody is solo under it */
	/* Acquire: pairs with the release stores of that slot's claim word. */
	c = atomic_load_explicit(&t->slots[who].claim, memory_order_acquire);
	if ((c & 7) != RING_SLOT_CLAIMING)
		return 0; /* between claims, or past its tail store */
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

	for (;;) {
		next = RING_SOLO_GEN(w) + RING_SOLO_GEN_ONE;
		if (w & RING_SOLO_ON) {
			if (!atomic_compare_exchange_strong_explicit(word, &w, next,
								     memory_order_seq_cst,
								     memory_order_seq_cst))
				continue;
			int r = end_solo(p, w, next);

			if (r || p->join_pending)
				return r;
			w = atomic_load_explicit(word, memory_order_seq_cst);
			continue; /* its owner may have been dead: try again */
		}
		/* Solo needs the barrier from whoever opens next (I9); without
		 * membarrier we stay shared. */
		if (p->fence_commit || others_live(t, p->slot_index))
			return 0;
		next |= RING_SOLO_ON | ((uint64_t)p->slot_index << 1);
		if (!atomic_compare_exchange_strong_explicit(word, &w, next, memory_order_seq_cst,
							     memory_order_seq_cst))
			continue;
		/* The word says ON before we look again: a producer that locked
		 * its slot after our look below sees ON and ends our solo. */
		if (others_live(t, p->slot_index)) {
			w = next;
			atomic_compare_exchange_strong_explicit(word, &w,
								RING_SOLO_GEN(next) + RING_SOLO_GEN_ONE,
								memory_order_seq_cst,
								memory_order_relaxed);
			return 0; /* we claimed nothing yet: nobody must wait for us */
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
	uint64_t w = p->solo_w;

	if (!w)
		return;
	/* Give the word up if it still names us (a newcomer may have ended our
	 * solo already). seq_cst: as every change of the word. */
	atomic_compare_exchange_strong_explicit(&p->t->hdr->solo, &w,
						RING_SOLO_GEN(w) + RING_SOLO_GEN_ONE,
						memory_order_seq_cst, memory_order_relaxed);
	p->solo_w = 0;
}
