/* SPDX-License-Identifier: MIT */
/*
 * ring_send_batch.c - sending a batch of records with one claim
 * (ring/produce.c spw_producer_send_batch): every record of the batch
 * arrives once, in order, byte for byte, at the position the call reported,
 * all with the batch's one timestamp; alone (solo, I9), beside another
 * producer (the tail CAS) and exclusive. What does not fit is left for the
 * next call: at the ring's end (which the next call pads, I6) and at the
 * limit of a full ring (-EAGAIN when not even the first fits; the wait
 * variant times out, then goes on once room is reclaimed). With the
 * caller's timestamps (_at), each record carries its own. A bad batch
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ring_fixture.h"
#include "ring_internal.h" /* ring_test_hook, enum ring_point */
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

/* A topic of 64 KiB for a batch test in one mode. 0: alone (solo), 1:
 * beside a second open producer (the CAS), 2: exclusive. */
struct mode_case {
	char name[32];
	struct spw_topic *t;
	struct spw_producer *p, *other;
	struct spw_consumer *c;
	struct test_got *g;
	struct batch *b;
};

static void mode_open(struct mode_case *k, const char *prefix, int mode)
{
	snprintf(k->name, sizeof(k->name), "%s_%s", prefix,
		 mode == 0 ? "solo" : mode == 1 ? "shared" : "excl");
	k->t = topic_new(k->name, 64 * KiB, 16 * KiB);
	k->c = consumer_new(k->t, SPW_FROM_OLDEST, 0);
	k->g = test_got_new();
	k->b = malloc(sizeof(*k->b));
	assert_non_null(k->b);
	k->p = k->other = NULL;
	assert_int_equal(spw_producer_open_flags(k->t, mode == 2 ? SPW_PRODUCER_EXCLUSIVE : 0, &k->p),
			 0);
	if (mode == 1)
		k->other = producer_new(k->t);
}

static void mode_close(struct mode_case *k)
{
	free(k->b);
	free(k->g);
	spw_consumer_close(k->c);
	spw_producer_close(k->other);
	spw_producer_close(k->p);
	topic_end(k->t, k->name);
}

static void one_batch(int mode)
{
	static const uint32_t lens[NMSG] = { 0,  1,  7,   8,   9,   15,  16,  31,  32,  33,  63,  64,
					     65, 80, 100, 127, 128, 129, 200, 255, 256, 300, 399, 64 };
	struct mode_case k;
	int64_t pos[NMSG], expect;

	mode_open(&k, "sb", mode);
	struct spw_topic *t = k.t;
	struct spw_producer *p = k.p, *other = k.other;
	struct spw_consumer *c = k.c;
	struct test_got *g = k.g;
	struct batch *b = k.b;

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
	{
		const int off = other ? 2 : 1; /* the single sends before the batch */
		int64_t pos2[3] = { expect, expect + (int64_t)test_span(0),
				    expect + (int64_t)(test_span(0) + test_span(1)) };

		assert_int_equal(drain_all(c, g), off + NMSG + 3 + 1);
		got_is(g, off, lens, NMSG, 100, pos);
		assert_true(g->r[off].timestamp_ns > 0);
		for (int i = off + 1; i < off + NMSG; i++) /* one clock read */
			assert_true(g->r[i].timestamp_ns == g->r[i - 1].timestamp_ns);
		got_is(g, off + NMSG, lens, 3, 100, pos2); /* the second batch */
		assert_true(g->r[off + NMSG].timestamp_ns >= g->r[off].timestamp_ns);
		assert_int_equal(g->r[off + NMSG + 3].len, 5); /* the single send after it */
		assert_int_equal(g->r[off + NMSG + 3].hash, tag_hash(5, 7));
	}
	mode_close(&k);
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

/* The tail 24 bytes before the ring's end and 40 bytes free below limit:
 * m[0] (span 120) needs a padding of 24 and 120 bytes at 0: nothing is
 * taken, no padding is written. A batch that fills to the end exactly
 * needs none, and the next starts at 0 of the next lap without one. */
static void nothing_is_taken_when_the_first_does_not_fit_and_an_exact_fill_pads_nothing(void **state)
{
	static const uint32_t lens[3] = { 104, 104, 88 }; /* spans 120, 120, 104 */
	struct ring_case h = case_open("sb_edge");
	struct batch *b = malloc(sizeof(*b));
	const int64_t end = 64 * KiB;
	int64_t pos[3];

	(void)state;
	assert_non_null(b);
	for (int i = 0; i < 63; i++)
		assert_true(send_tag(h.p, 1008, (uint64_t)i) >= 0);
	assert_int_equal(send_tag(h.p, 984, 63), 63 * 1024); /* span 1000: 24 left */
	assert_int_equal(drain_all(h.c, h.g), 64);
	assert_int_equal(spwd_reclaim(h.t, 40), 0); /* limit: 64 KiB + 40 */
	batch_make(b, lens, 3, 10);
	assert_int_equal(spw_producer_send_batch(h.p, b->m, 3, pos), -EAGAIN);
	assert_int_equal(info_of(h.t).tail, (uint64_t)(end - 24));
	assert_int_equal(word_64k("sb_edge", (uint64_t)(end - 24)), 0);
	/* Room again: the padding, then the three at 0 (344 bytes). */
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	assert_int_equal(spw_producer_send_batch(h.p, b->m, 3, pos), 3);
	assert_int_equal(pos[0], end);
	assert_int_equal(drain_all(h.c, h.g), 3);
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	/* Fill the lap to its end exactly: 63 of span 1024, then 1024 - 344 -
	 * ... : records of span 1024 from 344 leave 680 = 5 * 120 + 80. */
	for (int i = 0; i < 63; i++)
		assert_true(send_tag(h.p, 1008, (uint64_t)i) >= 0);
	assert_int_equal(info_of(h.t).tail, (uint64_t)(2 * end - 680));
	assert_int_equal(drain_all(h.c, h.g), 63);
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	{
		static const uint32_t six[6] = { 104, 104, 104, 104, 104, 64 }; /* 5 * 120 + 80 */
		int64_t p6[6];

		batch_make(b, six, 6, 20);
		assert_int_equal(spw_producer_send_batch(h.p, b->m, 6, p6), 6);
		assert_int_equal(info_of(h.t).tail, (uint64_t)(2 * end));
		assert_int_equal(spw_producer_send_batch(h.p, b->m, 2, pos), 2);
		assert_int_equal(pos[0], 2 * end); /* no padding before it */
		assert_int_equal(drain_all(h.c, h.g), 8);
		got_is(h.g, 0, six, 6, 20, p6);
	}
	free(b);
	case_close(&h);
}

/* A consumer opened (or seeking) at a record inside a batch whose first
 * records are committed and the rest not yet: a real boundary, accepted;
 * it then reads the rest once they come. Checked from inside the batch,
 * through the test seam, before its second commit. */
static struct spw_topic *mid_t;
static int64_t mid_pos;
static int mid_hits, mid_open_rc = 1, mid_poll_rc = -1, mid_inside_rc;
static struct spw_consumer *mid_c;

static void open_mid_batch(enum ring_point at)
{
	if (at != RING_AT_BEFORE_COMMIT || ++mid_hits != 2)
		return;
	mid_open_rc = spw_consumer_open(mid_t, SPW_FROM_POSITION, mid_pos, &mid_c);
	if (!mid_open_rc) {
		struct test_got *g = test_got_new();

		mid_poll_rc = spw_consumer_poll(mid_c, test_collect, g, 10);
		free(g);
	}
	/* Inside the uncommitted record: not a boundary. */
	mid_inside_rc = spw_consumer_open(mid_t, SPW_FROM_POSITION, mid_pos + 8,
					  &(struct spw_consumer *){ NULL });
}

static void a_consumer_can_start_at_a_record_inside_an_unfinished_batch(void **state)
{
	static const uint32_t lens[4] = { 100, 100, 100, 100 };
	struct ring_case h = case_open("sb_mid");
	struct batch *b = malloc(sizeof(*b));
	int64_t pos[4];

	(void)state;
	assert_non_null(b);
	assert_true(send_tag(h.p, 10, 1) >= 0);
	batch_make(b, lens, 4, 30);
	mid_t = h.t;
	mid_pos = (int64_t)info_of(h.t).tail + (int64_t)test_span(100);
	ring_test_hook = open_mid_batch;
	assert_int_equal(spw_producer_send_batch(h.p, b->m, 4, pos), 4);
	ring_test_hook = NULL;
	assert_int_equal(mid_open_rc, 0);
	assert_int_equal(mid_poll_rc, 0); /* nothing committed there yet */
	assert_int_equal(mid_inside_rc, -EINVAL);
	assert_int_equal(pos[1], mid_pos);
	assert_int_equal(drain_all(mid_c, h.g), 3);
	got_is(h.g, 0, lens + 1, 3, 31, pos + 1);
	spw_consumer_close(mid_c);
	free(b);
	case_close(&h);
}

/* A consumer asleep in poll_wait on a batch's first record is woken by its
 * commit, not after the rest of the batch: the producer (a child) stops
 * 330 ms before its second commit, longer than a sleep's safety slice, so a
 * missing wake shows as a missed wake-up (the library counts them). */
extern _Atomic uint64_t ring_missed_wakes;

static void nap_before_second_commit(enum ring_point at)
{
	static int hits;

	if (at == RING_AT_BEFORE_COMMIT && ++hits == 2)
		test_sleep_ns(330 * TEST_MS);
}

static int slow_batch_sender(void *arg)
{
	static const uint32_t lens[2] = { 40, 40 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct batch *b = malloc(sizeof(*b));

	(void)arg;
	TEST_CHECK(b && test_open_producer(test_group_dir, "sb_wake", &t, &p) == 0, "open");
	batch_make(b, lens, 2, 40);
	/* The parent is asleep by then, half way through one of its 100 ms
	 * safety slices (a commit just as a slice ends would count as missed). */
	test_sleep_ns(150 * TEST_MS);
	ring_test_hook = nap_before_second_commit;
	TEST_CHECK(spw_producer_send_batch(p, b->m, 2, NULL) == 2, "send_batch");
	spw_producer_close(p);
	spw_topic_close(t);
	return 0;
}

static void a_consumer_asleep_on_a_batch_is_woken_by_each_commit(void **state)
{
	struct spw_topic *t = topic_new("sb_wake", 64 * KiB, 16 * KiB);
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct test_got *g = test_got_new();
	uint64_t missed0 = atomic_load(&ring_missed_wakes);
	pid_t pid;

	(void)state;
	pid = test_fork(slow_batch_sender, NULL);
	assert_int_equal(spw_consumer_poll_wait(c, test_collect, g, 1, 30 * TEST_SEC), 1);
	assert_int_equal(atomic_load(&ring_missed_wakes) - missed0, 0);
	assert_int_equal(spw_consumer_poll_wait(c, test_collect, g, 1, 30 * TEST_SEC), 1);
	assert_int_equal(test_wait(pid, 30 * TEST_SEC), 0);
	assert_int_equal(g->r[1].hash, tag_hash(40, 41));
	free(g);
	spw_consumer_close(c);
	topic_end(t, "sb_wake");
}

/* send_batch_wait on a full ring sleeps until a reclaim (another thread
 * here) makes room, then sends. */
struct reclaimer {
	struct ring_case *h;
};

static void *reclaim_later(void *arg)
{
	struct reclaimer *r = arg;

	test_sleep_ns(50 * TEST_MS);
	drain_all(r->h->c, r->h->g);
	if (spwd_reclaim(r->h->t, spw_consumer_position(r->h->c)))
		abort();
	return NULL;
}

static void a_waiting_batch_goes_once_room_is_reclaimed(void **state)
{
	static const uint32_t lens[3] = { 300, 300, 300 };
	struct ring_case h = case_open("sb_waitroom");
	struct reclaimer r = { &h };
	struct batch *b = malloc(sizeof(*b));
	pthread_t th;
	int64_t pos[3];

	(void)state;
	assert_non_null(b);
	fill_64k(h.p, 0);
	batch_make(b, lens, 3, 60);
	assert_int_equal(pthread_create(&th, NULL, reclaim_later, &r), 0);
	assert_int_equal(spw_producer_send_batch_wait(h.p, b->m, 3, 30 * TEST_SEC, pos), 3);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pos[0], 64 * KiB);
	assert_int_equal(drain_all(h.c, h.g), 3);
	got_is(h.g, 0, lens, 3, 60, pos);
	free(b);
	case_close(&h);
}

/* A producer handle used in a fork()ed child: -ECHILD, nothing sent. */
struct forked {
	struct spw_producer *p;
	struct spw_msg m[2];
};

static int batch_in_child(void *arg)
{
	struct forked *f = arg;

	TEST_CHECK(spw_producer_send_batch(f->p, f->m, 2, NULL) == -ECHILD, "send_batch in a child");
	TEST_CHECK(spw_producer_send_batch(f->p, f->m, 0, NULL) == -ECHILD, "an empty one too");
	TEST_CHECK(spw_producer_send_batch_wait(f->p, f->m, 2, 0, NULL) == -ECHILD, "send_batch_wait");
	return 0;
}

static void a_batch_from_a_forked_child_is_refused(void **state)
{
	struct ring_case h = case_open("sb_fork");
	static uint8_t d[8];
	struct forked f = { h.p, { { d, 8 }, { d, 8 } } };
	uint64_t tail = info_of(h.t).tail;

	(void)state;
	assert_int_equal(test_wait(test_fork(batch_in_child, &f), 30 * TEST_SEC), 0);
	assert_int_equal(info_of(h.t).tail, tail);
	assert_int_equal(spw_producer_send_batch(h.p, f.m, 2, NULL), 2); /* the parent's is fine */
	case_close(&h);
}

/* spw_producer_send_batch_at / _wait_at: record i carries timestamps[i]
 * as given (0, out of order, the largest value), alone, beside another
 * producer and exclusive; a prefix cut at the ring's end used only its
 * part of the array, the next call (m + k, timestamps + k) the rest after
 * the padding; NULL timestamps: the clock's, one for the batch. */
static void caller_timestamps(int mode)
{
	static const uint32_t lens[6] = { 104, 0, 104, 33, 104, 104 };
	static const uint64_t ts[6] = { 1700000000000000000ull, 0, 7, UINT64_MAX, 5, 6 };
	struct mode_case k;
	int64_t pos[6];
	uint64_t before;

	mode_open(&k, "sb_at", mode);
	struct spw_topic *t = k.t;
	struct spw_producer *p = k.p;
	struct spw_consumer *c = k.c;
	struct test_got *g = k.g;
	struct batch *b = k.b;

	batch_make(b, lens, 6, 300);
	assert_int_equal(spw_producer_send_batch_at(p, b->m, 6, ts, pos), 6);
	assert_int_equal(spw_producer_send_batch_wait_at(p, b->m, 2, 0, ts + 2, NULL), 2);
	before = (uint64_t)test_realtime_ns();
	assert_int_equal(spw_producer_send_batch_at(p, b->m, 2, NULL, NULL), 2);
	assert_int_equal(drain_all(c, g), 6 + 2 + 2);
	got_is(g, 0, lens, 6, 300, pos);
	for (int i = 0; i < 6; i++)
		assert_int_equal(g->r[i].timestamp_ns, ts[i]);
	assert_int_equal(g->r[6].timestamp_ns, ts[2]);
	assert_int_equal(g->r[7].timestamp_ns, ts[3]);
	assert_in_range(g->r[8].timestamp_ns, before - TEST_SEC, before + TEST_SEC);
	assert_int_equal(g->r[9].timestamp_ns, g->r[8].timestamp_ns);

	/* 304 bytes before the ring's end (spans 120): two go, then the rest
	 * after the padding, each with its own time. */
	while (info_of(t).tail + 1024 + 16 <= 64 * KiB - 304)
		assert_true(send_tag(p, 1008, 1) >= 0);
	assert_true(send_tag(p, (uint32_t)(64 * KiB - 304 - info_of(t).tail - 16), 2) >= 0);
	assert_int_equal(info_of(t).tail, (uint64_t)(64 * KiB - 304));
	drain_all(c, g);
	assert_int_equal(spwd_reclaim(t, spw_consumer_position(c)), 0);
	{
		static const uint32_t five[5] = { 104, 104, 104, 104, 104 };

		batch_make(b, five, 5, 400);
		assert_int_equal(spw_producer_send_batch_at(p, b->m, 5, ts, pos), 2);
		assert_int_equal(spw_producer_send_batch_wait_at(p, b->m + 2, 3, 0, ts + 2, pos + 2), 3);
		assert_int_equal(pos[2], 64 * KiB);
		assert_int_equal(drain_all(c, g), 5);
		got_is(g, 0, five, 5, 400, pos);
		for (int i = 0; i < 5; i++)
			assert_int_equal(g->r[i].timestamp_ns, ts[i]);
	}
	mode_close(&k);
}

static void a_batch_with_the_callers_timestamps_carries_each(void **state)
{
	(void)state;
	for (int mode = 0; mode < 3; mode++)
		caller_timestamps(mode);
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
	assert_int_equal(spw_producer_send_batch_at(h.p, toolong, 2, (uint64_t[2]){ 1, 2 }, NULL),
			 -EMSGSIZE);
	assert_int_equal(spw_producer_send_batch_wait_at(h.p, nodata, 2, 0, (uint64_t[2]){ 1, 2 }, NULL),
			 -EINVAL);
	assert_int_equal(spw_producer_send_batch_at(NULL, ok, 2, (uint64_t[2]){ 1, 2 }, NULL), -EINVAL);
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
		cmocka_unit_test(nothing_is_taken_when_the_first_does_not_fit_and_an_exact_fill_pads_nothing),
		cmocka_unit_test(a_consumer_can_start_at_a_record_inside_an_unfinished_batch),
		cmocka_unit_test(a_consumer_asleep_on_a_batch_is_woken_by_each_commit),
		cmocka_unit_test(a_waiting_batch_goes_once_room_is_reclaimed),
		cmocka_unit_test(a_batch_from_a_forked_child_is_refused),
		cmocka_unit_test(a_batch_with_the_callers_timestamps_carries_each),
		cmocka_unit_test(bad_batches_send_nothing),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
