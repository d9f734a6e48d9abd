/* SPDX-License-Identifier: MIT */
/*
 * ring_repair.c - the two daemon-side repairs of the ring protocol:
 *  - a reclaim a killed daemon left half done (reclaimed moved, limit not,
 *    the bytes not all zeroed) is finished at attach (I3), so producers'
 *    header CAS from 0 works again and no old-lap record reappears;
 *  - a dead claim that no slot describes (its slot was reused, or the
 *    tail was bumped by hand) is aborted only up to the next claim a slot
 *    proves: a live producer between its tail CAS and its commit right
 *    after it keeps its record (B1: the old unblock poisoned its span);
 *  - a commit word of another lap is never taken for this lap's record, by
 *    the consumer, the scan or resolve (B2, B3: lap tags, I4/I7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ring/ring_internal.h"
#include "support.h"

struct fx {
	char *dir;
	struct spw_topic *t;
	struct spw_producer *p;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct spw_topic_config cfg = { .ring_bytes = 64 << 10 };

	if (!f)
		return -1;
	f->dir = test_tmpdir_make();
	if (spw_topic_create(f->dir, "r", &cfg) || spw_topic_open(f->dir, "r", 0, &f->t) ||
	    spw_producer_open(f->t, &f->p))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	spw_producer_close(f->p);
	spw_topic_close(f->t);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static int count(void *arg, const struct spw_record *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void half_done_reclaim_is_finished_at_attach(void **state)
{
	struct fx *f = *state;
	struct spw_consumer *c;
	char buf[1000];
	int64_t pos = 0, mid = -1;
	int n = 0;

	memset(buf, 'A', sizeof(buf));
	/* Fill the ring (one lap of 'A' records). */
	while ((pos = spw_producer_send(f->p, buf, sizeof(buf))) >= 0)
		if (mid < 0 && pos >= (32 << 10))
			mid = pos;
	assert_int_equal(pos, -EAGAIN);
	/* A daemon killed inside spwd_reclaim after publishing the bound
	 * (I3a) but before zeroing and moving limit. */
	atomic_store(&f->t->hdr->reclaimed, (uint64_t)mid);
	assert_int_equal(spw_producer_send(f->p, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ring_reclaim_repair(f->t), 1);
	assert_int_equal(atomic_load(&f->t->hdr->limit), (uint64_t)mid + (64 << 10));
	assert_int_equal(ring_reclaim_repair(f->t), 0); /* idempotent */
	/* Producers get the room, and it reads as new records only. */
	memset(buf, 'B', sizeof(buf));
	for (int i = 0; i < 20; i++)
		assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	assert_int_equal(spw_consumer_open(f->t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_true(spw_consumer_poll(c, count, &n, 1000) > 0);
	assert_true(n >= 20);
	spw_consumer_close(c);
	/* A limit past the bound is garbage, not something to "repair". */
	atomic_store(&f->t->hdr->limit, atomic_load(&f->t->hdr->limit) + 8);
	assert_int_equal(ring_reclaim_repair(f->t), -EBADMSG);
	/* So is one below reclaimed (a review, 2026-12-05): the repair zeroed
	 * from limit - ring to reclaimed, the whole ring with its committed
	 * records not yet spilled, which the daemon then aborted as a dead
	 * producer's claim. Nothing is zeroed. */
	{
		uint64_t rec = atomic_load(&f->t->hdr->reclaimed);
		const uint8_t *ring = (const uint8_t *)ring_rec_at(f->t, rec);
		uint64_t w = *(const uint64_t *)(const void *)ring;

		assert_true(w != 0);
		atomic_store(&f->t->hdr->limit, rec - 8);
		assert_int_equal(ring_reclaim_repair(f->t), -EBADMSG);
		atomic_store(&f->t->hdr->limit, 0);
		assert_int_equal(ring_reclaim_repair(f->t), -EBADMSG);
		assert_int_equal(*(const uint64_t *)(const void *)ring, w);
	}
}

static struct fx *hook_fx;
static int64_t hook_dead_at;
static int hook_action;
static struct spwd_stall hook_stall;

static void resolve_from_inside_the_claim(enum ring_point at)
{
	if (at != RING_AT_CLAIMED)
		return;
	ring_test_hook = NULL;
	hook_action = spwd_resolve(hook_fx->t, hook_dead_at, &hook_stall);
}

static int check_rec(void *arg, const struct spw_record *r)
{
	int *n = arg;

	for (uint32_t i = 0; i < r->len; i++)
		if (((const char *)r->data)[i] != 'x')
			fail_msg("record at %lld: byte %u is %#x", (long long)r->position, i,
				 ((const uint8_t *)r->data)[i]);
	(*n)++;
	return 0;
}

static void a_dead_span_ends_where_a_live_claim_starts(void **state)
{
	struct fx *f = *state;
	struct spw_consumer *c;
	struct spw_producer *other = NULL;
	char buf[100];
	int n = 0;
	int64_t live;

	memset(buf, 'x', sizeof(buf));
	/* A second producer, so f->p claims with the CAS and sees the tail
	 * moved behind its back (a lone producer is solo and trusts its own
	 * tail: ring/ring_layout.h I9). */
	assert_int_equal(spw_producer_open(f->t, &other), 0);
	assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	/* A producer that took [P, P+200) and died, with no slot saying so. */
	hook_dead_at = (int64_t)atomic_load(&f->t->hdr->tail);
	atomic_fetch_add(&f->t->hdr->tail, 200);
	/* A live producer claims right after it; the daemon settles the dead
	 * claim while this one sits between its tail CAS and its commit. */
	hook_fx = f;
	hook_action = -1;
	ring_test_hook = resolve_from_inside_the_claim;
	live = spw_producer_send(f->p, buf, sizeof(buf));
	ring_test_hook = NULL;
	assert_int_equal(live, hook_dead_at + 200);
	assert_int_equal(hook_action, SPWD_RESOLVE_ABORTED);
	assert_int_equal(hook_stall.span, 200); /* not one byte of the live span */
	assert_int_equal(hook_stall.slot, -1);
	/* The topic moves on: both live records arrive intact. */
	assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	assert_int_equal(spw_consumer_open(f->t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_consumer_poll(c, check_rec, &n, 100), 3);
	assert_int_equal(spw_consumer_position(c), (int64_t)atomic_load(&f->t->hdr->tail));
	spw_consumer_close(c);
	spw_producer_close(other);
}

static void a_word_of_another_lap_is_never_taken_for_this_one(void **state)
{
	struct fx *f = *state;
	struct spw_topic *t = f->t;
	struct spw_consumer *c;
	struct spwd_scan_result sc;
	struct spwd_stall st;
	char buf[100];
	uint64_t ring = t->ring_bytes, lap1, w_old;
	int n = 0;

	memset(buf, 'x', sizeof(buf));
	/* Go one lap on: the next record lands at offset 0 of lap 1. */
	while (atomic_load(&t->hdr->tail) < ring) {
		assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
		assert_int_equal(spwd_reclaim(t, (int64_t)atomic_load(&t->hdr->tail)), 0);
	}
	lap1 = atomic_load(&t->hdr->tail);
	assert_true(lap1 >= ring && lap1 < 2 * ring);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_LATEST, 0, &c), 0);
	/* A claim in flight at lap1, and a stale producer of lap 0 (or a bug)
	 * writing the word it would have written there a lap ago. */
	atomic_fetch_add(&t->hdr->tail, 120);
	w_old = test_word(TEST_TYPE_DATA, 100, lap1 - ring, ring);
	atomic_store(&ring_rec_at(t, lap1)->commit, w_old);
	assert_int_equal(ring_word_check(w_old, lap1, ring, t->max_record), RING_WORD_BAD);
	assert_int_equal(ring_word_check(w_old, lap1 - ring, ring, t->max_record), 120);
	assert_int_equal(spw_consumer_poll(c, count, &n, 10), -EBADMSG);
	assert_int_equal(n, 0);
	assert_int_equal(spwd_scan(t, (int64_t)lap1, ring, &sc), -EBADMSG);
	assert_int_equal(sc.end, (int64_t)lap1);
	/* The daemon cuts it out (nobody alive holds it) up to the tail. */
	assert_int_equal(spwd_resolve(t, (int64_t)lap1, &st), SPWD_RESOLVE_CORRUPT);
	assert_int_equal(st.word, w_old);
	assert_int_equal(st.span, 120);
	assert_int_equal(spw_consumer_poll(c, count, &n, 10), 0);
	assert_int_equal(spw_consumer_skipped(c), 120);
	assert_int_equal(spw_consumer_position(c), (int64_t)lap1 + 120);
	spw_consumer_close(c);
}

/* A hostile tail far ahead of every claim (a process with write access to
 * the ring file; I7's garbage), over zeroed bytes: resolve aborts up to the
 * end of the lap and returns at once. It used to look for the first written
 * word all the way to that tail, 8 bytes a step, before it capped the span:
 * ~11 minutes at 2^44 ahead, with every topic of the daemon stopped. */
static void a_hostile_tail_far_ahead_is_settled_a_lap_at_a_time(void **state)
{
	struct fx *f = *state;
	struct spw_topic *t = f->t;
	struct spwd_stall st;
	char buf[100] = { 0 };
	uint64_t pos, lap_end;

	assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	pos = atomic_load(&t->hdr->tail);
	/* Reclaimed: the whole ring is zero, no word ends the search early. */
	assert_int_equal(spwd_reclaim(t, (int64_t)pos), 0);
	lap_end = (pos & ~t->mask) + t->ring_bytes;
	atomic_store(&t->hdr->tail, pos + (1ull << 44));
	alarm(60); /* the old code: minutes; a failure, not a hung run */
	assert_int_equal(spwd_resolve(t, (int64_t)pos, &st), SPWD_RESOLVE_ABORTED);
	alarm(0);
	assert_int_equal(st.span, lap_end - pos);
	assert_int_equal(st.slot, -1);
}

/* Trust no byte (P3): a tail that is no record boundary (claims move it by
 * whole 8-byte spans) is garbage in the header. A claim there that wrapped
 * wrote its padding word across the ring's end, 4 bytes past the mapping
 * (a review, 2026-12-04); a consumer from the latest position read there.
 * Now producer open, claims and consumer opens say -EBADMSG. */
static void an_unaligned_tail_is_refused_not_written_past_the_ring(void **state)
{
	struct fx *f = *state;
	struct spw_producer *other = NULL, *late = NULL;
	struct spw_consumer *c = NULL;
	struct spw_claim cl;
	struct spw_msg m = { "x", 1 };
	int64_t pos;
	uint64_t ring = f->t->ring_bytes;

	/* Two producers: neither is solo, both load the header's tail. */
	assert_int_equal(spw_producer_open(f->t, &other), 0);
	assert_true(spw_producer_send(f->p, "ab", 2) >= 0);
	atomic_store(&f->t->hdr->tail, ring - 4);
	atomic_store(&f->t->hdr->limit, 2 * ring);
	assert_int_equal(spw_producer_send(f->p, "abcdefgh", 8), -EBADMSG);
	assert_int_equal(spw_producer_send_wait(other, "abcdefgh", 8, 1000000), -EBADMSG);
	assert_int_equal(spw_producer_claim(other, 8, &cl), -EBADMSG);
	assert_int_equal(spw_producer_send_batch(other, &m, 1, &pos), -EBADMSG);
	assert_int_equal(spw_producer_open(f->t, &late), -EBADMSG);
	assert_null(late);
	assert_int_equal(spw_consumer_open(f->t, SPW_FROM_LATEST, 0, &c), -EBADMSG);
	assert_null(c);
	atomic_store(&f->t->hdr->reclaimed, 4);
	assert_int_equal(spw_consumer_open(f->t, SPW_FROM_OLDEST, 0, &c), -EBADMSG);
	/* The slots name no span left behind. */
	assert_int_equal(atomic_load(&f->p->slot->claim), RING_SLOT_IDLE);
	assert_int_equal(atomic_load(&other->slot->claim), RING_SLOT_IDLE);
	spw_producer_close(other);
}

/* Never take a claim from the living (P1), whatever shared memory says: a
 * WON span forged into a free slot over a live producer's open claim made
 * the daemon abort that claim, the dead-looking forgery "alone deciding"
 * (a review, 2026-12-04). Two WON slots cannot cover one position honestly:
 * when any covering WON slot is alive, the daemon waits; so it does for a
 * live CLAIMING one beside a dead WON one. */
static void a_forged_won_span_never_aborts_a_live_claim(void **state)
{
	struct fx *f = *state;
	struct spw_producer *live = NULL, *gone = NULL;
	struct spw_claim c;
	struct spwd_stall st;
	uint32_t forged;

	/* A free slot below the live one's (looked at first), its lock free:
	 * it reads as a dead owner's. */
	assert_int_equal(spw_producer_open(f->t, &gone), 0);
	assert_int_equal(spw_producer_open(f->t, &live), 0);
	forged = (uint32_t)(gone->slot - f->t->slots);
	assert_true(forged < (uint32_t)(live->slot - f->t->slots));
	spw_producer_close(gone);
	assert_int_equal(spw_producer_claim(live, 32, &c), 0);
	assert_int_equal(ring_slot_alive(f->t, forged), 0);
	atomic_store(&f->t->slots[forged].end, (uint64_t)c.position + 8);
	atomic_store(&f->t->slots[forged].claim, (uint64_t)c.position | RING_SLOT_WON);
	assert_int_equal(spwd_resolve(f->t, c.position, &st), SPWD_RESOLVE_LIVE);
	assert_int_equal(st.slot, (int32_t)(live->slot - f->t->slots));
	/* The live producer an instant earlier: its tail CAS done, its slot
	 * still CLAIMING (stopped before its WON store). The forged WON slot
	 * used to decide alone, and the claim was aborted under the living
	 * producer (a review, 2026-12-05). */
	atomic_store(&live->slot->claim, (uint64_t)c.position | RING_SLOT_CLAIMING);
	assert_int_equal(spwd_resolve(f->t, c.position, &st), SPWD_RESOLVE_LIVE);
	assert_int_equal(st.slot, (int32_t)(live->slot - f->t->slots));
	assert_int_equal(atomic_load(&ring_rec_at(f->t, (uint64_t)c.position)->commit), 0);
	atomic_store(&live->slot->claim, (uint64_t)c.position | RING_SLOT_WON);
	memcpy(c.data, "the live claim's bytes, intact..", 32);
	assert_int_equal(spw_producer_commit(live, &c), 0);
	atomic_store(&f->t->slots[forged].claim, RING_SLOT_IDLE);
	spw_producer_close(live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(half_done_reclaim_is_finished_at_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(an_unaligned_tail_is_refused_not_written_past_the_ring,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_forged_won_span_never_aborts_a_live_claim, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_dead_span_ends_where_a_live_claim_starts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_word_of_another_lap_is_never_taken_for_this_one, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_hostile_tail_far_ahead_is_settled_a_lap_at_a_time,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
