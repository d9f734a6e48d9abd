/* SPDX-License-Identifier: MIT */
/*
 * ring_batch.c - batch reading, zero copy (ring/consume.c spw_consumer_peek
 * and spw_consumer_release): peek describes committed records in place
 * without moving the position; release moves past what the caller is done
 * with, after one lap check for the batch (ring_layout.h I5). Checked here:
 * every record comes once and in order with its bytes, padding and aborted
 * records are passed over, an uncommitted claim ends a batch, a partial
 * release leaves the rest for the next peek, a lap while the batch is held
 * gives -ESTALE and no move, garbage gives -EBADMSG, bad arguments -EINVAL,
 * and peek agrees with poll record for record. And the back-off of a
 * spinning consumer (spw_consumer_set_backoff): after a peek or poll that
 * found nothing, peek and poll return 0 without looking until it ends;
 * poll_wait ignores it; a peek that found records starts none; it halves
 * while more than a quarter ring comes in during one and grows back.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ring_fixture.h"
#include "ring_internal.h"
#include "spillway_daemon.h"
#include "support.h"

/* Peek everything there is, in batches of at most `batch`, releasing each
 * batch whole; every record must carry tag base + its index. */
static int peek_all(struct spw_consumer *c, int batch, uint32_t len, uint64_t base)
{
	struct spw_record recs[64];
	int total = 0, n;

	assert_true(batch <= 64);
	while ((n = spw_consumer_peek(c, recs, batch)) > 0) {
		for (int i = 0; i < n; i++) {
			assert_int_equal(recs[i].len, len);
			assert_int_equal(test_hash(recs[i].data, len), tag_hash(len, base + (uint64_t)total + (uint64_t)i));
			assert_true(recs[i].timestamp_ns > 0);
			if (i)
				assert_true(recs[i].position > recs[i - 1].position);
		}
		assert_int_equal(spw_consumer_release(c, recs, n), n);
		total += n;
	}
	assert_int_equal(n, 0);
	return total;
}

static void peek_release_delivers_every_record_once_in_order(void **state)
{
	struct ring_case h = case_open("batch_order");

	(void)state;
	for (uint64_t i = 0; i < 300; i++) {
		assert_true(send_tag(h.p, 40, i) >= 0);
		if (i % 100 == 99) /* keep the 64 KiB ring from filling */
			assert_int_equal(peek_all(h.c, 7, 40, i - 99), 100);
	}
	/* Nothing more: 0, the position stays at the tail. */
	{
		struct spw_record r;

		assert_int_equal(spw_consumer_peek(h.c, &r, 1), 0);
		assert_int_equal(spw_consumer_position(h.c), info_of(h.t).tail);
	}
	case_close(&h);
}

/* Send n records of len bytes (tags 0 .. n-1), then peek them, all n in one
 * batch, into r (room for 8): the consumer's position before the peek. */
static int64_t send_then_peek(struct ring_case *h, uint64_t n, uint32_t len, struct spw_record *r)
{
	int64_t p0;

	for (uint64_t i = 0; i < n; i++)
		assert_true(send_tag(h->p, len, i) >= 0);
	p0 = spw_consumer_position(h->c);
	assert_int_equal(spw_consumer_peek(h->c, r, 8), (int)n);
	return p0;
}

static void peek_does_not_move_and_a_partial_release_leaves_the_rest(void **state)
{
	struct ring_case h = case_open("batch_partial");
	struct spw_record a[8], b[8];
	int64_t p0;

	(void)state;
	p0 = send_then_peek(&h, 5, 100, a);
	assert_int_equal(spw_consumer_position(h.c), p0);
	assert_int_equal(spw_consumer_peek(h.c, b, 8), 5); /* the same five again */
	assert_memory_equal(a, b, 5 * sizeof(a[0]));
	assert_int_equal(spw_consumer_release(h.c, a, 2), 2);
	assert_int_equal(spw_consumer_position(h.c), a[2].position);
	assert_int_equal(spw_consumer_peek(h.c, b, 8), 3);
	assert_int_equal(b[0].position, a[2].position);
	assert_int_equal(test_hash(b[0].data, 100), tag_hash(100, 2));
	assert_int_equal(spw_consumer_release(h.c, b, 3), 3);
	assert_int_equal(spw_consumer_peek(h.c, b, 8), 0);
	case_close(&h);
}

static void an_open_claim_ends_the_batch_and_aborted_records_are_passed(void **state)
{
	struct ring_case h = case_open("batch_claim");
	struct spw_producer *q = producer_new(h.t);
	struct spw_claim cl, ab;
	struct spw_record r[8];

	(void)state;
	assert_true(send_tag(h.p, 16, 0) >= 0);
	assert_int_equal(spw_producer_claim(q, 16, &ab), 0);
	assert_int_equal(spw_producer_abort(q, &ab), 0); /* ABORTED: passed over */
	assert_true(send_tag(h.p, 16, 1) >= 0);
	assert_int_equal(spw_producer_claim(q, 16, &cl), 0); /* open: ends the batch */
	assert_true(send_tag(h.p, 16, 2) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 2);
	assert_int_equal(test_hash(r[0].data, 16), tag_hash(16, 0));
	assert_int_equal(test_hash(r[1].data, 16), tag_hash(16, 1));
	assert_int_equal(spw_consumer_release(h.c, r, 2), 2);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0); /* the open claim */
	test_fill(cl.data, 16, 9);
	assert_int_equal(spw_producer_commit(q, &cl), 0);
	/* Right after a look that found nothing: the first record alone
	 * (ring/consume.c, spw_consumer_peek), then the rest. */
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 16), tag_hash(16, 9));
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 16), tag_hash(16, 2));
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	spw_producer_close(q);
	case_close(&h);
}

static int count_into(void *arg, const struct spw_record *rec)
{
	int64_t *got = arg;

	(void)rec;
	got[0]++;
	return 0;
}

/* A consumer that has caught up (its last peek found nothing) is handed the
 * next record alone, without a look at the one after (whose line the
 * producer is likely still writing); streaming, it gets whole batches. */
static void a_peek_after_finding_nothing_hands_out_one_record(void **state)
{
	struct ring_case h = case_open("batch_one");
	struct spw_record r[8];

	(void)state;
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	for (uint64_t i = 0; i < 5; i++)
		assert_true(send_tag(h.p, 24, i) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 24), tag_hash(24, 0));
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(test_hash(r[i].data, 24), tag_hash(24, (uint64_t)i + 1));
	assert_int_equal(spw_consumer_release(h.c, r, 4), 4);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	/* Records handed out another way, a seek, or a back-off end the
	 * caught-up state: the batch after them is whole. */
	for (uint64_t i = 5; i < 8; i++)
		assert_true(send_tag(h.p, 24, i) >= 0);
	{
		int64_t got[8] = { 0 };

		assert_int_equal(spw_consumer_poll_wait(h.c, count_into, got, 1, 0), 1);
	}
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 2);
	assert_int_equal(spw_consumer_release(h.c, r, 2), 2);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	{
		int64_t at = spw_consumer_position(h.c);

		for (uint64_t i = 8; i < 11; i++)
			assert_true(send_tag(h.p, 24, i) >= 0);
		assert_int_equal(spw_consumer_seek(h.c, at), 0);
		assert_int_equal(spw_consumer_peek(h.c, r, 8), 3);
		assert_int_equal(spw_consumer_release(h.c, r, 3), 3);
	}
	assert_int_equal(spw_consumer_set_backoff(h.c, 1), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	for (uint64_t i = 11; i < 14; i++)
		assert_true(send_tag(h.p, 24, i) >= 0);
	test_sleep_ns(1000000);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 3);
	assert_int_equal(test_hash(r[0].data, 24), tag_hash(24, 11));
	case_close(&h);
}

/* Padding at the ring's end: records of 4000 bytes wrap the 64 KiB ring. */
static void batches_cross_the_ring_end(void **state)
{
	struct ring_case h = case_open("batch_wrap");

	(void)state;
	for (uint64_t round = 0; round < 6; round++) {
		for (uint64_t i = 0; i < 10; i++)
			assert_true(send_tag(h.p, 4000, round * 10 + i) >= 0);
		assert_int_equal(peek_all(h.c, 3, 4000, round * 10), 10);
		assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	}
	case_close(&h);
}

/* The ring laps the consumer while it holds a batch: release says -ESTALE
 * and the position does not move; the consumer seeks to the oldest. */
static void a_lap_while_the_batch_is_held_is_estale(void **state)
{
	struct ring_case h = case_open("batch_lap");
	struct spw_record r[8];
	int64_t p0;

	(void)state;
	p0 = send_then_peek(&h, 4, 1000, r);
	/* The daemon's side: reclaim past them (the bytes are zeroed). */
	assert_int_equal(spwd_reclaim(h.t, r[2].position), 0);
	assert_int_equal(spw_consumer_release(h.c, r, 4), -ESTALE);
	assert_int_equal(spw_consumer_position(h.c), p0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), -ESTALE);
	assert_int_equal(spw_consumer_seek(h.c, spw_consumer_oldest(h.c)), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 2);
	assert_int_equal(test_hash(r[0].data, 1000), tag_hash(1000, 2));
	assert_int_equal(spw_consumer_release(h.c, r, 2), 2);
	case_close(&h);
}

static void garbage_is_ebadmsg_and_bad_arguments_einval(void **state)
{
	struct ring_case h = case_open("batch_bad");
	struct spw_record r[4], fake;
	uint8_t *data, *hdr;
	uint64_t w;

	(void)state;
	assert_int_equal(spw_consumer_peek(NULL, r, 4), -EINVAL);
	assert_int_equal(spw_consumer_peek(h.c, NULL, 4), -EINVAL);
	assert_int_equal(spw_consumer_peek(h.c, r, 0), -EINVAL);
	assert_int_equal(spw_consumer_release(h.c, NULL, 1), -EINVAL);
	assert_int_equal(spw_consumer_release(h.c, r, -1), -EINVAL);
	assert_int_equal(spw_consumer_release(h.c, r, 0), 0);
	assert_true(send_tag(h.p, 24, 0) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 4), 1);
	fake = r[0];
	fake.position += 4; /* unaligned: not what peek gave */
	assert_int_equal(spw_consumer_release(h.c, &fake, 1), -EINVAL);
	fake.position = r[0].position + 64 * KiB; /* beyond what peek saw */
	assert_int_equal(spw_consumer_release(h.c, &fake, 1), -EINVAL);
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	/* Garbage over the next record's commit word. */
	assert_true(send_tag(h.p, 24, 1) >= 0);
	data = map_64k("batch_bad", &hdr);
	w = 0x00000000deadbeefull;
	memcpy(data + (spw_consumer_position(h.c) & (64 * KiB - 1)), &w, 8);
	assert_int_equal(spw_consumer_peek(h.c, r, 4), -EBADMSG);
	test_unmap_ring(data, 64 * KiB);
	case_close(&h);
}

/* peek/release and poll see the same records, position for position. */
static int collect_pos(void *arg, const struct spw_record *r)
{
	int64_t *v = arg;

	v[++v[0]] = r->position;
	return 0;
}

static void peek_and_poll_agree(void **state)
{
	struct ring_case h = case_open("batch_agree");
	struct spw_consumer *c2 = consumer_new(h.t, SPW_FROM_OLDEST, 0);
	static int64_t polled[200], peeked[200];
	struct spw_record r[16];
	int n;

	(void)state;
	for (uint64_t i = 0; i < 150; i++)
		assert_true(send_tag(h.p, (uint32_t)(i * 7 % 300), i) >= 0);
	polled[0] = 0;
	while ((n = spw_consumer_poll(c2, collect_pos, polled, 64)) > 0)
		;
	assert_int_equal(n, 0);
	while ((n = spw_consumer_peek(h.c, r, 16)) > 0) {
		for (int i = 0; i < n; i++)
			peeked[++peeked[0]] = r[i].position;
		assert_int_equal(spw_consumer_release(h.c, r, n), n);
	}
	assert_int_equal(n, 0);
	assert_int_equal(polled[0], 150);
	assert_memory_equal(polled, peeked, 151 * sizeof(int64_t));
	assert_int_equal(spw_consumer_position(h.c), spw_consumer_position(c2));
	spw_consumer_close(c2);
	case_close(&h);
}

static int count_one(void *arg, const struct spw_record *r)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

static void a_backoff_hides_records_until_it_ends(void **state)
{
	struct ring_case h = case_open("batch_backoff");
	struct spw_record r[8];
	int got = 0;

	(void)state;
	assert_int_equal(spw_consumer_set_backoff(NULL, 0), -EINVAL);
	assert_int_equal(spw_consumer_set_backoff(h.c, -1), -EINVAL);
	assert_int_equal(spw_consumer_set_backoff(h.c, SPW_CONSUMER_BACKOFF_MAX_NS + 1), -EINVAL);
	/* The longest back-off: nothing below can outlast it. */
	assert_int_equal(spw_consumer_set_backoff(h.c, SPW_CONSUMER_BACKOFF_MAX_NS), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0); /* nothing: backing off now */
	assert_true(send_tag(h.p, 40, 0) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	assert_int_equal(spw_consumer_poll(h.c, count_one, &got, 8), 0);
	assert_int_equal(got, 0);
	/* poll_wait is a wait already: it looks, and what it delivered ends
	 * the back-off (the producer is writing). */
	assert_int_equal(spw_consumer_poll_wait(h.c, count_one, &got, 8, 1000000000), 1);
	assert_int_equal(got, 1);
	assert_true(send_tag(h.p, 40, 1) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 40), tag_hash(40, 1));
	/* (not released: the same record again below) */
	assert_int_equal(spw_consumer_peek(h.c, r + 1, 1), 1);
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0); /* backing off again */
	assert_true(send_tag(h.p, 40, 1) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	/* A seek ends it too: a new place to read. */
	assert_int_equal(spw_consumer_seek(h.c, spw_consumer_position(h.c)), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0); /* backing off again */
	assert_true(send_tag(h.p, 40, 1) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	/* Setting it again (here: off) ends the back-off in progress. */
	assert_int_equal(spw_consumer_set_backoff(h.c, 0), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 40), tag_hash(40, 1));
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0); /* off: no back-off */
	assert_true(send_tag(h.p, 40, 2) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);

	/* A short one ends by itself. */
	assert_int_equal(spw_consumer_set_backoff(h.c, 2000000), 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 0);
	assert_true(send_tag(h.p, 40, 3) >= 0);
	{
		struct timespec ts = { 0, 20000000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(spw_consumer_poll(h.c, count_one, &got, 8), 1);
	assert_int_equal(got, 2);
	/* A look that found records starts no back-off. */
	assert_true(send_tag(h.p, 40, 4) >= 0);
	assert_int_equal(spw_consumer_peek(h.c, r, 8), 1);
	assert_int_equal(test_hash(r[0].data, 40), tag_hash(40, 4));
	assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	case_close(&h);
}

/* Send n records of 48 B (64 B each in the ring), end the back-off in
 * progress as if its time had passed, read them all: the back-off the last
 * (empty) peek began. */
static int64_t backoff_after(struct ring_case *h, int n)
{
	for (int i = 0; i < n; i++)
		assert_true(send_tag(h->p, 48, (uint64_t)i) >= 0);
	h->c->idle_until = 0;
	assert_int_equal(peek_all(h->c, 8, 48, 0), n);
	assert_true(h->c->idle_until != 0);
	/* The daemon's part: room for the next round (64 KiB ring). */
	assert_int_equal(spwd_reclaim(h->t, spw_consumer_position(h->c)), 0);
	return h->c->backoff_cur;
}

static void a_backoff_shortens_while_the_ring_fills_and_grows_back(void **state)
{
	struct ring_case h = case_open("batch_backoff_adapt"); /* 64 KiB ring */

	(void)state;
	assert_int_equal(spw_consumer_set_backoff(h.c, 8000000), 0);
	assert_int_equal(backoff_after(&h, 0), 8000000);
	/* 512 x 64 B = 32 KiB, twice a quarter of 64 KiB: scaled to let in a
	 * quarter, i.e. halved; 320 x 64 B = 20480 B: times 16384 / 20480. */
	assert_int_equal(backoff_after(&h, 512), 4000000);
	assert_int_equal(backoff_after(&h, 320), 3200000);
	/* A sixteenth or less (4 KiB): doubled, never past the setting. */
	assert_int_equal(backoff_after(&h, 10), 6400000);
	assert_int_equal(backoff_after(&h, 10), 8000000);
	assert_int_equal(backoff_after(&h, 10), 8000000);
	/* Between the two: kept. 100 x 64 B = 6400 B. */
	assert_int_equal(spw_consumer_set_backoff(h.c, 1500), 0);
	assert_int_equal(backoff_after(&h, 100), 1500);
	/* Never below 1 us: 1500 / 2 would be. */
	assert_int_equal(backoff_after(&h, 512), 1000);
	case_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peek_release_delivers_every_record_once_in_order),
		cmocka_unit_test(peek_does_not_move_and_a_partial_release_leaves_the_rest),
		cmocka_unit_test(an_open_claim_ends_the_batch_and_aborted_records_are_passed),
		cmocka_unit_test(a_peek_after_finding_nothing_hands_out_one_record),
		cmocka_unit_test(batches_cross_the_ring_end),
		cmocka_unit_test(a_lap_while_the_batch_is_held_is_estale),
		cmocka_unit_test(garbage_is_ebadmsg_and_bad_arguments_einval),
		cmocka_unit_test(peek_and_poll_agree),
		cmocka_unit_test(a_backoff_hides_records_until_it_ends),
		cmocka_unit_test(a_backoff_shortens_while_the_ring_fills_and_grows_back),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
