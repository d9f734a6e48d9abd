/* SPDX-License-Identifier: MIT */
/*
 * ring_send_batch.c - sending a batch of records with one claim
 * (ring/produce.c spw_producer_send_batch): every record of the batch
 * arrives once, in order, byte for byte, at the position the call reported,
 * all with the batch's one timestamp; alone (solo, I9), beside another
 * producer (the tail CAS) and exclusive. What does not fit is left for the
 * next call: at the ring's end (which the next call pads, I6) and at the
 * limit of a full ring (-EAGAIN when not even the first fits; the wait
 * variant times out, then goes on once room is reclaimed). A bad batch
 * sends nothing. Killing or stopping a producer half way through a batch
 * is tests/crash_producer.c's.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ring_fixture.h"
#include "spillway_daemon.h"
#include "support.h"

#define NMSG 24

/* A batch of n records, record i of lens[i] bytes of the pattern base + i. */
struct batch {
	struct spw_msg m[NMSG];
	uint8_t buf[NMSG][400];
};

static void batch_make(struct batch *b, const uint32_t *lens, uint32_t n, uint64_t base)
{
	assert_true(n <= NMSG);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(lens[i] <= sizeof(b->buf[i]));
		test_fill(b->buf[i], lens[i], base + i);
		b->m[i] = (struct spw_msg){ b->buf[i], lens[i] };
	}
}

/* Poll everything there is into g (emptied first). */
static int drain_all(struct spw_consumer *c, struct test_got *g)
{
	g->n = 0;
	return drain(c, g);
}

/* Records g->r[from ..] are the batch's: lengths, bytes, positions. */
static void got_is(const struct test_got *g, int from, const uint32_t *lens, uint32_t n,
		   uint64_t base, const int64_t *pos)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct test_rec *r = &g->r[from + (int)i];

		assert_int_equal(r->len, lens[i]);
		assert_int_equal(r->hash, tag_hash(lens[i], base + i));
		assert_int_equal(r->position, pos[i]);
	}
}

/* 0: alone (solo), 1: beside a second open producer (the CAS), 2: exclusive. */
static void one_batch(int mode)
{
	static const uint32_t lens[NMSG] = { 0,  1,  7,   8,   9,   15,  16,  31,  32,  33,  63,  64,
					     65, 80, 100, 127, 128, 129, 200, 255, 256, 300, 399, 64 };
	const char *name = mode == 0 ? "sb_solo" : mode == 1 ? "sb_shared" : "sb_excl";
	struct spw_topic *t = topic_new(name, 64 * KiB, 16 * KiB);
	struct spw_producer *p = NULL, *other = NULL;
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct test_got *g = test_got_new();
	struct batch *b = malloc(sizeof(*b));
	int64_t pos[NMSG], expect;

	assert_non_null(b);
	assert_int_equal(spw_producer_open_flags(t, mode == 2 ? SPW_PRODUCER_EXCLUSIVE : 0, &p), 0);
	if (mode == 1)
		other = producer_new(t);
	assert_true(send_tag(p, 10, 999) >= 0);
	if (other)
		assert_true(send_tag(other, 10, 998) >= 0);
	expect = (int64_t)info_of(t).tail;
	batch_make(b, lens, NMSG, 100);
	assert_int_equal(spw_producer_send_batch(p, b->m, NMSG, pos), NMSG);
	for (uint32_t i = 0; i < NMSG; i++) {
		assert_int_equal(pos[i], expect);
		expect += (int64_t)test_span(lens[i]);
	}
	assert_int_equal(info_of(t).tail, (uint64_t)expect);
	/* Without positions, and after it a single send: it goes on. */
	assert_int_equal(spw_producer_send_batch(p, b->m, 3, NULL), 3);
	assert_int_equal(send_tag(p, 5, 7), expect + (int64_t)(test_span(0) + test_span(1) + test_span(7)));
	assert_int_equal(drain_all(c, g), (other ? 2 : 1) + NMSG + 3 + 1);
	got_is(g, other ? 2 : 1, lens, NMSG, 100, pos);
	for (int i = (other ? 2 : 1) + 1; i < (other ? 2 : 1) + NMSG; i++) /* one clock read */
		assert_true(g->r[i].timestamp_ns == g->r[i - 1].timestamp_ns);
	assert_true(g->r[0].timestamp_ns > 0);
	assert_int_equal(g->r[(other ? 2 : 1) + NMSG].position, expect);
	assert_int_equal(g->r[(other ? 2 : 1) + NMSG].hash, tag_hash(0, 100));
	free(b);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(other);
	spw_producer_close(p);
	topic_end(t, name);
}

static void a_batch_arrives_in_order_alone(void **state)
{
	(void)state;
	one_batch(0);
}

static void a_batch_arrives_in_order_beside_another_producer(void **state)
{
	(void)state;
	one_batch(1);
}

static void a_batch_arrives_in_order_from_an_exclusive_producer(void **state)
{
	(void)state;
	one_batch(2);
}

/* The tail 304 bytes before the ring's end: 5 records of span 120 - two
 * fit; the next call pads the 64 left and puts the other three at 0. */
static void stops_at_the_ring_end(bool shared)
{
	static const uint32_t lens[5] = { 104, 104, 104, 104, 104 };
	struct ring_case h = case_open("sb_wrap");
	struct spw_producer *other = shared ? producer_new(h.t) : NULL; /* no solo: the CAS */
	struct batch *b = malloc(sizeof(*b));
	int64_t pos[5];
	const int64_t end = 64 * KiB;

	assert_non_null(b);
	/* 63 records of span 1024, then one of span 720: 304 bytes left. */
	for (int i = 0; i < 63; i++)
		assert_true(send_tag(h.p, 1008, (uint64_t)i) >= 0);
	assert_int_equal(send_tag(h.p, 704, 63), 63 * 1024);
	assert_int_equal(info_of(h.t).tail, (uint64_t)(end - 304));
	assert_int_equal(drain_all(h.c, h.g), 64);
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);

	batch_make(b, lens, 5, 50);
	assert_int_equal(spw_producer_send_batch(h.p, b->m, 5, pos), 2);
	assert_int_equal(pos[0], end - 304);
	assert_int_equal(pos[1], end - 184);
	assert_int_equal(info_of(h.t).tail, (uint64_t)(end - 64));
	assert_int_equal(spw_producer_send_batch(h.p, b->m + 2, 3, pos + 2), 3);
	assert_int_equal(pos[2], end);
	assert_int_equal(word_64k("sb_wrap", (uint64_t)(end - 64)), W_PAD(64, end - 64, 64 * KiB));
	assert_int_equal(pos[4], end + 240);
	assert_int_equal(drain_all(h.c, h.g), 5);
	got_is(h.g, 0, lens, 5, 50, pos);
	free(b);
	spw_producer_close(other);
	case_close(&h);
}

static void a_batch_stops_at_the_ring_end_and_the_next_pads(void **state)
{
	(void)state;
	stops_at_the_ring_end(false);
	stops_at_the_ring_end(true);
}

/* 496 bytes free below limit: 4 of 10 records of span 120 go, then
 * nothing (-EAGAIN; the wait variant times out); after a reclaim the rest. */
static void takes_what_fits(bool shared)
{
	static const uint32_t lens[10] = { 104, 104, 104, 104, 104, 104, 104, 104, 104, 104 };
	struct ring_case h = case_open("sb_full");
	struct spw_producer *other = shared ? producer_new(h.t) : NULL; /* no solo: the CAS */
	struct batch *b = malloc(sizeof(*b));
	int64_t pos[10];

	assert_non_null(b);
	for (int i = 0; i < 63; i++)
		assert_true(send_tag(h.p, 1008, (uint64_t)i) >= 0);
	assert_int_equal(send_tag(h.p, 512, 63), 63 * 1024); /* span 528: 496 left */
	batch_make(b, lens, 10, 70);
	assert_int_equal(spw_producer_send_batch(h.p, b->m, 10, pos), 4);
	assert_int_equal(pos[3], 64 * KiB - 496 + 3 * 120);
	assert_int_equal(spw_producer_send_batch(h.p, b->m + 4, 6, pos + 4), -EAGAIN);
	assert_int_equal(spw_producer_send_batch_wait(h.p, b->m + 4, 6, 20 * TEST_MS, pos + 4),
			 -ETIMEDOUT);
	assert_int_equal(drain_all(h.c, h.g), 64 + 4);
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	/* 16 bytes before the end: a padding, then the six at 0. */
	assert_int_equal(spw_producer_send_batch_wait(h.p, b->m + 4, 6, 20 * TEST_MS, pos + 4), 6);
	assert_int_equal(pos[4], 64 * KiB);
	assert_int_equal(drain_all(h.c, h.g), 6);
	got_is(h.g, 0, lens + 4, 6, 74, pos + 4);
	free(b);
	spw_producer_close(other);
	case_close(&h);
}

static void a_batch_takes_what_fits_in_a_full_ring(void **state)
{
	(void)state;
	takes_what_fits(false);
	takes_what_fits(true);
}

static void bad_batches_send_nothing(void **state)
{
	struct ring_case h = case_open("sb_bad");
	uint8_t big[16 * KiB + 1] = { 0 }, small[8] = { 1 };
	struct spw_msg ok[2] = { { small, 8 }, { small, 8 } };
	struct spw_msg nodata[2] = { { small, 8 }, { NULL, 5 } };
	struct spw_msg toolong[2] = { { small, 8 }, { big, sizeof(big) } };
	struct spw_msg empty[1] = { { NULL, 0 } };
	struct spw_claim cl;
	uint64_t tail = info_of(h.t).tail;

	(void)state;
	assert_int_equal(spw_producer_send_batch(h.p, ok, 0, NULL), 0);
	assert_int_equal(spw_producer_send_batch(h.p, NULL, 2, NULL), -EINVAL);
	assert_int_equal(spw_producer_send_batch(NULL, ok, 2, NULL), -EINVAL);
	assert_int_equal(spw_producer_send_batch(h.p, nodata, 2, NULL), -EINVAL);
	assert_int_equal(spw_producer_send_batch(h.p, toolong, 2, NULL), -EMSGSIZE);
	assert_int_equal(spw_producer_send_batch_wait(h.p, toolong, 2, 0, NULL), -EMSGSIZE);
	assert_int_equal(info_of(h.t).tail, tail);
	assert_int_equal(spw_producer_claim(h.p, 8, &cl), 0);
	assert_int_equal(spw_producer_send_batch(h.p, ok, 2, NULL), -EBUSY);
	assert_int_equal(spw_producer_send_batch_wait(h.p, ok, 2, 0, NULL), -EBUSY);
	assert_int_equal(spw_producer_abort(h.p, &cl), 0);
	/* An empty record (no data, length 0) is a record. */
	assert_int_equal(spw_producer_send_batch(h.p, empty, 1, NULL), 1);
	assert_int_equal(drain_all(h.c, h.g), 1);
	assert_int_equal(h.g->r[0].len, 0);
	case_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_batch_arrives_in_order_alone),
		cmocka_unit_test(a_batch_arrives_in_order_beside_another_producer),
		cmocka_unit_test(a_batch_arrives_in_order_from_an_exclusive_producer),
		cmocka_unit_test(a_batch_stops_at_the_ring_end_and_the_next_pads),
		cmocka_unit_test(a_batch_takes_what_fits_in_a_full_ring),
		cmocka_unit_test(bad_batches_send_nothing),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
