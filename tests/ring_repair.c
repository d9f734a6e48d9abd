/* SPDX-License-Identifier: MIT */
/*
 * ring_repair.c - the two daemon-side repairs of the ring protocol:
 *  - a reclaim a killed daemon left half done (reclaimed moved, limit not,
 *    the bytes not all zeroed) is finished at attach (I3), so producers'
 *    header CAS from 0 works again and no old-lap record reappears;
 *  - unblock poisons the never-written words it takes into a dead span (I7),
 *    so a live producer whose claim fell inside gets -ECANCELED instead of a
 *    silent success whose record nobody ever reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	/* A daemon killed inside spw_topic_reclaim after publishing the bound
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
}

static struct fx *hook_fx;
static int64_t hook_dead_at;
static int64_t hook_span;

static void unblock_from_inside_the_claim(void)
{
	ring_test_hook_after_claim = NULL;
	hook_span = spw_topic_unblock(hook_fx->t, hook_dead_at);
}

static void unblock_poisons_a_live_claim_inside_the_dead_span(void **state)
{
	struct fx *f = *state;
	struct spw_consumer *c;
	char buf[100];
	int n = 0;

	memset(buf, 'x', sizeof(buf));
	assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	/* A producer that took [P, P+200) and died before its header. */
	hook_dead_at = (int64_t)atomic_load(&f->t->hdr->tail);
	atomic_fetch_add(&f->t->hdr->tail, 200);
	/* A live producer claims right after it; the daemon unblocks the dead
	 * claim while this one sits between its tail CAS and its header CAS. */
	hook_fx = f;
	ring_test_hook_after_claim = unblock_from_inside_the_claim;
	assert_int_equal(spw_producer_send(f->p, buf, sizeof(buf)), -ECANCELED);
	assert_true(hook_span >= 200 + 16 + 100); /* took the live span too */
	/* The topic moves on: the next record is delivered, nothing else. */
	assert_true(spw_producer_send(f->p, buf, sizeof(buf)) >= 0);
	assert_int_equal(spw_consumer_open(f->t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_consumer_poll(c, count, &n, 100), 2);
	assert_int_equal(spw_consumer_position(c), (int64_t)atomic_load(&f->t->hdr->tail));
	spw_consumer_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(half_done_reclaim_is_finished_at_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(unblock_poisons_a_live_claim_inside_the_dead_span, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
