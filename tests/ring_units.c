/* SPDX-License-Identifier: MIT */
/*
 * ring_units.c - the ring's contract for records, one behaviour per case:
 * the record layout in the file, padding at the ring's end, sizes, invalid
 * arguments of the record calls, a full ring, claim / commit / abort (one
 * claim per handle, close aborts an open one), where consumers start and
 * seek (record boundaries only), lapped consumers, counters, scan.
 * Invariant numbers (I1..I8) are those of ring/ring_layout.h. Topic files
 * (create, names, sizes, delete, the shm dir) are in ring_topic.c, the
 * blocking calls in ring_wait.c.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_fixture.h"
#include "support.h"

/* ------------------------------------------------------------------------- */

/* Positions are 8-aligned, each record starts where the previous one's span
 * ends, and the file holds header, timestamp and payload where the format
 * says (a committed word carries both DONE bits, its type, its length and
 * the lap tag of its position). */
static void records_are_aligned_and_laid_out_back_to_back(void **state)
{
	static const uint32_t lens[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 23, 24, 25,
					 31, 32, 33, 100, 255, 1000, 4095, 16384 };
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	struct ring_case h = case_open("layout");
	int64_t expect = 0, before = test_realtime_ns();
	uint8_t *data;

	(void)state;
	for (int i = 0; i < N; i++) {
		int64_t pos = send_tag(h.p, lens[i], 100 + (uint64_t)i);

		assert_int_equal(pos, expect);
		assert_int_equal(pos % SPW_RECORD_ALIGN, 0);
		expect += (int64_t)test_span(lens[i]);
	}
	assert_int_equal(info_of(h.t).tail, expect);
	assert_int_equal(drain(h.c, h.g), N);
	assert_int_equal(spw_consumer_position(h.c), expect);

	data = map_64k("layout", NULL);
	for (int i = 0; i < N; i++) {
		const struct test_rec *r = &h.g->r[i];
		uint8_t want[16384];

		assert_int_equal(r->len, lens[i]);
		assert_int_equal(r->hash, tag_hash(lens[i], 100 + (uint64_t)i));
		assert_in_range(r->timestamp_ns, (uint64_t)before - TEST_SEC,
				(uint64_t)test_realtime_ns() + TEST_SEC);
		assert_int_equal(test_commit_word(data, 64 * KiB, (uint64_t)r->position),
				 W_DATA(lens[i], (uint64_t)r->position, 64 * KiB));
		assert_int_equal(test_timestamp(data, 64 * KiB, (uint64_t)r->position), r->timestamp_ns);
		test_fill(want, lens[i], 100 + (uint64_t)i);
		assert_memory_equal(data + r->position + 16, want, lens[i]);
	}
	/* Past the tail nothing was written. */
	assert_int_equal(test_commit_word(data, 64 * KiB, (uint64_t)expect), 0);
	test_unmap_ring(data, 64 * KiB);
	case_close(&h);
}

/* I6: a record that does not fit before the end of the ring is placed at
 * offset 0 of the next lap, behind a PADDING record that consumers skip and
 * at which a scan run ends. */
static void record_that_does_not_fit_wraps_after_padding(void **state)
{
	struct ring_case h = case_open("wrap");
	struct spwd_scan_result s;

	(void)state;
	for (int i = 0; i < 64; i++) /* 64 * 1016 = 65024: 512 bytes left */
		assert_int_equal(send_tag(h.p, 1000, (uint64_t)i), i * 1016);
	assert_int_equal(drain(h.c, h.g), 64);
	assert_int_equal(spwd_reclaim(h.t, 65024), 0);
	assert_int_equal(send_tag(h.p, 1000, 77), 65536);
	assert_int_equal(info_of(h.t).tail, 65536 + 1016);

	assert_int_equal(word_64k("wrap", 65024), W_PAD(512, 65024, 64 * KiB));
	assert_int_equal(word_64k("wrap", 65536), W_DATA(1000, 65536, 64 * KiB));
	/* The padding ends lap 0; the record at offset 0 is tagged lap 1. */
	assert_int_equal(test_word_lap(word_64k("wrap", 65024)), 0);
	assert_int_equal(test_word_lap(word_64k("wrap", 65536)), 1);

	drain_first_is(h.c, h.g, 1, 1000, 77);
	assert_int_equal(h.g->r[0].position, 65536);
	assert_int_equal(h.g->r[0].len, 1000);
	assert_int_equal(spw_consumer_position(h.c), 65536 + 1016);

	/* A scan run never wraps: the padding ends one. */
	assert_int_equal(spwd_scan(h.t, 65024, 1 << 20, &s), 512);
	assert_int_equal(s.end, 65536);
	assert_int_equal(s.records, 0);
	assert_int_equal(s.stuck, -1);
	assert_int_equal(spwd_scan(h.t, 65536, 1 << 20, &s), 1016);
	assert_int_equal(s.end, 65536 + 1016);
	assert_int_equal(s.records, 1);
	assert_int_equal(s.stuck, -1);
	assert_int_equal(s.max_timestamp_ns, h.g->r[0].timestamp_ns);
	case_close(&h);
}

/* I6 at its edge: 8 bytes left can hold only a commit word. */
static void eight_byte_gap_at_ring_end_becomes_padding(void **state)
{
	struct ring_case h = case_open("gap8");
	struct spwd_scan_result s;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_tag(h.p, 16368, (uint64_t)i), i * 16384);
	assert_int_equal(send_tag(h.p, 16360, 3), 3 * 16384);
	assert_int_equal(info_of(h.t).tail, 65528);
	assert_int_equal(drain(h.c, h.g), 4);
	assert_int_equal(spwd_reclaim(h.t, 65528), 0);
	assert_int_equal(send_tag(h.p, 0, 4), 65536);

	assert_int_equal(word_64k("gap8", 65528), W_PAD(8, 65528, 64 * KiB));
	h.g->n = 0;
	assert_int_equal(drain(h.c, h.g), 1);
	assert_int_equal(h.g->r[0].position, 65536);
	assert_int_equal(h.g->r[0].len, 0);
	assert_int_equal(spwd_scan(h.t, 65528, 1 << 20, &s), 8);
	assert_int_equal(s.records, 0);
	case_close(&h);
}

static void max_record_fits_and_one_more_is_emsgsize(void **state)
{
	struct ring_case h = case_open("maxrec");
	uint8_t *buf = calloc(1, 16 * KiB + 1);
	struct spw_claim cl;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(send_tag(h.p, 16 * KiB, 5), 0);
	assert_int_equal(spw_producer_send(h.p, buf, 16 * KiB + 1), -EMSGSIZE);
	assert_int_equal(spw_producer_send(h.p, buf, UINT32_MAX), -EMSGSIZE);
	assert_int_equal(spw_producer_send_wait(h.p, buf, 16 * KiB + 1, 0), -EMSGSIZE);
	assert_int_equal(spw_producer_claim(h.p, 16 * KiB + 1, &cl), -EMSGSIZE);
	assert_int_equal(spw_producer_claim_wait(h.p, 16 * KiB + 1, 0, &cl), -EMSGSIZE);
	/* Refused calls claim nothing. */
	assert_int_equal(info_of(h.t).tail, test_span(16 * KiB));
	assert_int_equal(spw_producer_claim(h.p, 16 * KiB, &cl), 0);
	assert_int_equal(cl.len, 16 * KiB);
	assert_int_equal(cl.position, test_span(16 * KiB));
	test_fill(cl.data, cl.len, 6);
	assert_int_equal(spw_producer_commit(h.p, &cl), 0);

	assert_int_equal(drain(h.c, h.g), 2);
	assert_int_equal(h.g->r[0].len, 16 * KiB);
	assert_int_equal(h.g->r[0].hash, tag_hash(16 * KiB, 5));
	assert_int_equal(h.g->r[1].len, 16 * KiB);
	assert_int_equal(h.g->r[1].hash, tag_hash(16 * KiB, 6));
	free(buf);
	case_close(&h);
}

/* spw_producer_send_at (and _send_wait_at): the record carries the
 * caller's timestamp as given (0, out of order, the largest value), on the
 * lean path of the only producer and on the shared one; refused calls
 * claim nothing. */
static void send_at_stores_the_callers_timestamp(void **state)
{
	static const uint64_t ts[] = { 12345, 0, 7, UINT64_MAX, 1700000000000000000ull };
	enum { N = sizeof(ts) / sizeof(ts[0]) };
	struct ring_case h = case_open("sendat");
	struct spw_producer *p2;
	struct spw_claim cl;
	uint8_t buf[200];
	int64_t expect = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		test_fill(buf, 10u + (uint32_t)i, 40 + (uint64_t)i);
		assert_int_equal(spw_producer_send_at(h.p, buf, 10u + (uint32_t)i, ts[i]), expect);
		expect += (int64_t)test_span(10u + (uint32_t)i);
	}
	/* A second producer: both claim the shared way (CAS) from now on. */
	p2 = producer_new(h.t);
	test_fill(buf, 100, 60);
	assert_int_equal(spw_producer_send_at(p2, buf, 100, 98), expect);
	expect += (int64_t)test_span(100);
	test_fill(buf, 200, 61);
	assert_int_equal(spw_producer_send_at(h.p, buf, 200, 0), expect);
	expect += (int64_t)test_span(200);

	/* The waiting form: the same timestamp as given. */
	test_fill(buf, 30, 63);
	assert_int_equal(spw_producer_send_wait_at(h.p, buf, 30, 0, 4242), expect);
	expect += (int64_t)test_span(30);

	/* Refused: nothing claimed. */
	assert_int_equal(spw_producer_send_wait_at(NULL, buf, 1, 0, 5), -EINVAL);
	assert_int_equal(spw_producer_send_wait_at(h.p, NULL, 1, 0, 5), -EINVAL);
	assert_int_equal(spw_producer_send_wait_at(h.p, buf, 16 * KiB + 1, 0, 5), -EMSGSIZE);
	assert_int_equal(spw_producer_send_at(NULL, buf, 1, 5), -EINVAL);
	assert_int_equal(spw_producer_send_at(h.p, NULL, 1, 5), -EINVAL);
	assert_int_equal(spw_producer_send_at(h.p, buf, 16 * KiB + 1, 5), -EMSGSIZE);
	assert_int_equal(spw_producer_claim(h.p, 8, &cl), 0);
	assert_int_equal(spw_producer_send_at(h.p, buf, 1, 5), -EBUSY);
	assert_int_equal(spw_producer_abort(h.p, &cl), 0);
	expect += (int64_t)test_span(8); /* the aborted claim's span */
	assert_int_equal(info_of(h.t).tail, expect);

	assert_int_equal(drain(h.c, h.g), N + 3);
	for (int i = 0; i < N; i++) {
		assert_int_equal(h.g->r[i].len, 10u + (uint32_t)i);
		assert_int_equal(h.g->r[i].hash, tag_hash(10u + (uint32_t)i, 40 + (uint64_t)i));
		assert_int_equal(h.g->r[i].timestamp_ns, ts[i]);
	}
	assert_int_equal(h.g->r[N].hash, tag_hash(100, 60));
	assert_int_equal(h.g->r[N].timestamp_ns, 98);
	assert_int_equal(h.g->r[N + 1].hash, tag_hash(200, 61));
	assert_int_equal(h.g->r[N + 1].timestamp_ns, 0);
	assert_int_equal(h.g->r[N + 2].hash, tag_hash(30, 63));
	assert_int_equal(h.g->r[N + 2].timestamp_ns, 4242);
	/* The clock is still the library's for plain sends after those. */
	assert_true(send_tag(h.p, 8, 62) >= 0);
	assert_int_equal(drain(h.c, h.g), N + 4); /* drain counts all it collected */
	assert_in_range(h.g->r[N + 3].timestamp_ns, (uint64_t)test_realtime_ns() - TEST_SEC,
			(uint64_t)test_realtime_ns() + TEST_SEC);
	spw_producer_close(p2);
	case_close(&h);
}

/* spw_producer_commit_at: the zero-copy record carries the caller's
 * timestamp, written where the handle's own claim is (never through the
 * caller's struct); a claim not ours (or none) is refused and stays open. */
static void commit_at_stores_the_callers_timestamp(void **state)
{
	struct ring_case h = case_open("commitat");
	struct spw_claim cl, forged;

	(void)state;
	assert_int_equal(spw_producer_claim(h.p, 40, &cl), 0);
	test_fill(cl.data, 40, 71);
	forged = cl;
	forged.position += 16;
	assert_int_equal(spw_producer_commit_at(h.p, &forged, 1), -EINVAL);
	assert_int_equal(spw_producer_commit_at(NULL, &cl, 1), -EINVAL);
	assert_int_equal(spw_producer_commit_at(h.p, NULL, 1), -EINVAL);
	/* The header is found from the handle's own claim: a hdr_ pointing
	 * elsewhere (checked only for NULL) is never written through. */
	{
		uint64_t decoy[4] = { 0 };
		struct spw_claim other = cl;

		other.hdr_ = decoy;
		assert_int_equal(spw_producer_commit_at(h.p, &other, 987654321), 0);
		for (int i = 0; i < 4; i++)
			assert_int_equal(decoy[i], 0);
	}
	assert_int_equal(spw_producer_commit_at(h.p, &cl, 5), -EINVAL); /* committed */
	assert_int_equal(spw_producer_claim(h.p, 8, &cl), 0);
	test_fill(cl.data, 8, 72);
	assert_int_equal(spw_producer_commit_at(h.p, &cl, 0), 0);
	assert_int_equal(drain(h.c, h.g), 2);
	assert_int_equal(h.g->r[0].hash, tag_hash(40, 71));
	assert_int_equal(h.g->r[0].timestamp_ns, 987654321);
	assert_int_equal(h.g->r[1].hash, tag_hash(8, 72));
	assert_int_equal(h.g->r[1].timestamp_ns, 0);
	case_close(&h);
}

static void zero_length_records_are_delivered(void **state)
{
	struct ring_case h = case_open("zero");
	struct spw_claim cl;
	char byte = 'x';

	(void)state;
	assert_int_equal(spw_producer_send(h.p, &byte, 0), 0);
	assert_int_equal(spw_producer_send(h.p, &byte, 0), 16);
	assert_int_equal(spw_producer_claim(h.p, 0, &cl), 0);
	assert_int_equal(cl.position, 32);
	assert_int_equal(cl.len, 0);
	assert_int_equal(spw_producer_commit(h.p, &cl), 0);
	assert_int_equal(send_tag(h.p, 1, 9), 48);
	assert_int_equal(drain(h.c, h.g), 4);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(h.g->r[i].position, 16 * i);
		assert_int_equal(h.g->r[i].len, 0);
	}
	assert_int_equal(h.g->r[3].len, 1);
	assert_int_equal(h.g->r[3].hash, tag_hash(1, 9));
	case_close(&h);
}

/* spw_producer_send copies payloads of up to 64 bytes inline (overlapping
 * fixed-size copies, ring/produce.c copy_payload): every length from 0 to
 * past that arrives byte for byte, at the position send returned. */
static void every_small_length_arrives_byte_for_byte(void **state)
{
	struct ring_case h = case_open("small_lengths");
	uint8_t src[140];
	int64_t pos[131];
	struct spw_record r[1];

	(void)state;
	for (uint32_t len = 0; len <= 130; len++) {
		for (uint32_t i = 0; i < sizeof(src); i++)
			src[i] = (uint8_t)(len * 31u + i * 7u + 1u);
		pos[len] = spw_producer_send(h.p, src, len);
		assert_true(pos[len] >= 0);
	}
	for (uint32_t len = 0; len <= 130; len++) {
		for (uint32_t i = 0; i < sizeof(src); i++)
			src[i] = (uint8_t)(len * 31u + i * 7u + 1u);
		assert_int_equal(spw_consumer_peek(h.c, r, 1), 1);
		assert_int_equal(r[0].position, pos[len]);
		assert_int_equal(r[0].len, len);
		if (len)
			assert_memory_equal(r[0].data, src, len);
		assert_int_equal(spw_consumer_release(h.c, r, 1), 1);
	}
	assert_int_equal(spw_consumer_peek(h.c, r, 1), 0);
	case_close(&h);
}

static void null_pointers_are_einval(void **state)
{
	struct spw_topic *t = topic_new("nulls", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct spw_topic *t2 = NULL;
	struct spw_producer *p2 = NULL;
	struct spw_consumer *c2 = NULL;
	struct spw_topic_info info;
	struct spw_claim cl;
	struct spwd_scan_result s;
	char buf[8] = { 0 };

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, NULL, NULL), -EINVAL);
	assert_int_equal(spw_topic_open(test_group_dir, NULL, 0, &t2), -EINVAL);
	assert_int_equal(spw_topic_open(test_group_dir, "nulls", 0, NULL), -EINVAL);
	assert_int_equal(spw_topic_delete(test_group_dir, NULL), -EINVAL);
	assert_int_equal(spw_topic_info(NULL, &info), -EINVAL);
	assert_int_equal(spw_topic_info(t, NULL), -EINVAL);
	assert_int_equal(spw_producer_open(NULL, &p2), -EINVAL);
	assert_int_equal(spw_producer_open(t, NULL), -EINVAL);
	assert_int_equal(spw_producer_send(NULL, buf, 1), -EINVAL);
	assert_int_equal(spw_producer_send(p, NULL, 1), -EINVAL);
	assert_int_equal(spw_producer_send_wait(NULL, buf, 1, 0), -EINVAL);
	assert_int_equal(spw_producer_send_wait(p, NULL, 1, 0), -EINVAL);
	assert_int_equal(spw_producer_claim(NULL, 1, &cl), -EINVAL);
	assert_int_equal(spw_producer_claim(p, 1, NULL), -EINVAL);
	assert_int_equal(spw_producer_claim_wait(NULL, 1, 0, &cl), -EINVAL);
	assert_int_equal(spw_producer_claim_wait(p, 1, 0, NULL), -EINVAL);
	assert_int_equal(spw_producer_commit(p, NULL), -EINVAL);
	assert_int_equal(spw_producer_abort(p, NULL), -EINVAL);
	/* Nothing above claimed anything. */
	assert_int_equal(info_of(t).tail, 0);
	assert_int_equal(spw_producer_claim(p, 8, &cl), 0);
	assert_int_equal(spw_producer_commit(NULL, &cl), -EINVAL);
	assert_int_equal(spw_producer_commit(p, &cl), 0);
	/* A claim is committed once. */
	assert_int_equal(spw_producer_commit(p, &cl), -EINVAL);
	assert_int_equal(spw_producer_abort(p, &cl), -EINVAL);

	assert_int_equal(spw_consumer_open(NULL, SPW_FROM_OLDEST, 0, &c2), -EINVAL);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, NULL), -EINVAL);
	assert_int_equal(spw_consumer_open(t, (enum spw_from)7, 0, &c2), -EINVAL);
	assert_null(c2);
	assert_int_equal(spw_consumer_poll(NULL, test_collect, buf, 1), -EINVAL);
	assert_int_equal(spw_consumer_poll(c, NULL, buf, 1), -EINVAL);
	assert_int_equal(spw_consumer_poll_wait(NULL, test_collect, buf, 1, 0), -EINVAL);
	assert_int_equal(spw_consumer_poll_wait(c, NULL, buf, 1, 0), -EINVAL);
	assert_int_equal(spw_consumer_seek(NULL, 0), -EINVAL);
	assert_int_equal(spw_consumer_position(NULL), -EINVAL);
	assert_int_equal(spw_consumer_oldest(NULL), -EINVAL);
	assert_int_equal(spwd_scan(NULL, 0, 100, &s), -EINVAL);
	assert_int_equal(spwd_scan(t, 0, 100, NULL), -EINVAL);
	assert_int_equal(spwd_reclaim(NULL, 0), -EINVAL);
	assert_int_equal(spwd_resolve(NULL, 0, NULL), -EINVAL);
	assert_int_equal(spwd_set_stall(NULL, -1, 0, 0, 0), -EINVAL);
	assert_int_equal(spw_topic_producers(NULL, NULL, 0), -EINVAL);
	assert_int_equal(spw_topic_producers(t, NULL, 1), -EINVAL);
	assert_int_equal(spw_consumer_skipped(NULL), 0);
	assert_int_equal(spwd_set_counter(NULL, SPWD_SPILLED, 0), -EINVAL);
	assert_int_equal(spwd_heartbeat(NULL, 1), -EINVAL);
	/* Closing nothing is a no-op. */
	spw_topic_close(NULL);
	spw_producer_close(NULL);
	spw_consumer_close(NULL);
	spw_consumer_close(c);
	spw_producer_close(p);
	topic_end(t, "nulls");
}

static void consumer_seek_checks_alignment_and_bounds(void **state)
{
	struct ring_case h = case_open("seek");
	struct spw_consumer *c2 = NULL;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(send_tag(h.p, 100, (uint64_t)i), i * 120);
	assert_int_equal(spw_consumer_seek(h.c, 124), -EINVAL);   /* unaligned */
	assert_int_equal(spw_consumer_seek(h.c, 488), -EINVAL);   /* beyond the tail */
	assert_int_equal(spw_consumer_seek(h.c, -8), -EINVAL);
	/* Aligned but inside a record: its timestamp, its payload. */
	assert_int_equal(spw_consumer_seek(h.c, 128), -EINVAL);
	assert_int_equal(spw_consumer_seek(h.c, 120 + 16 + 40), -EINVAL);
	assert_int_equal(spw_consumer_seek(h.c, 360 + 112), -EINVAL);
	assert_int_equal(spw_consumer_position(h.c), 0);          /* refused: unchanged */
	assert_int_equal(spw_consumer_open(h.t, SPW_FROM_POSITION, 4, &c2), -EINVAL);
	assert_int_equal(spw_consumer_open(h.t, SPW_FROM_POSITION, 1 << 20, &c2), -EINVAL);
	assert_null(c2);

	assert_int_equal(spw_consumer_seek(h.c, 480), 0);         /* the tail itself */
	assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 10), 0);
	assert_int_equal(spw_consumer_seek(h.c, 240), 0);         /* back to a record */
	assert_int_equal(drain(h.c, h.g), 2);
	assert_int_equal(h.g->r[0].position, 240);
	assert_int_equal(h.g->r[0].hash, tag_hash(100, 2));
	assert_int_equal(h.g->r[1].position, 360);

	/* An open claim: its start is a boundary (a slot publishes it, I2),
	 * a position inside its still zero span is not. */
	{
		struct spw_claim cl;

		assert_int_equal(spw_producer_claim(h.p, 200, &cl), 0);
		assert_int_equal(cl.position, 480);
		assert_int_equal(spw_consumer_seek(h.c, 480 + 64), -EINVAL);
		assert_int_equal(spw_consumer_seek(h.c, 480), 0);
		assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 10), 0);
		test_fill(cl.data, 200, 4);
		assert_int_equal(spw_producer_commit(h.p, &cl), 0);
		assert_int_equal(spw_consumer_seek(h.c, 480 + 216), 0); /* the tail again */
		assert_int_equal(spw_consumer_seek(h.c, 480 + 64), -EINVAL);
		assert_int_equal(spw_consumer_seek(h.c, 480), 0);
		assert_int_equal(drain(h.c, h.g), 3);
		assert_int_equal(h.g->r[2].position, 480);
		assert_int_equal(h.g->r[2].hash, tag_hash(200, 4));
	}
	/* A payload holding 8 bytes that read as a record header for their own
	 * position (any producer can send them): the chain of records from the
	 * oldest steps over that position, so it is refused. It was accepted,
	 * and the consumer then delivered a record never sent and waited for
	 * ever on the zero bytes after it (a review, 2026-12-05). */
	{
		uint8_t pl[64] = { 0 };
		uint64_t fake = test_word(TEST_TYPE_DATA, 16, 696 + 16 + 16, info_of(h.t).ring_bytes);

		memcpy(pl + 16, &fake, sizeof(fake));
		assert_int_equal(spw_producer_send(h.p, pl, sizeof(pl)), 696);
		assert_int_equal(send_tag(h.p, 100, 5), 696 + 80);
		assert_int_equal(spw_consumer_seek(h.c, 696 + 32), -EINVAL);
		assert_int_equal(spw_consumer_open(h.t, SPW_FROM_POSITION, 696 + 32, &c2), -EINVAL);
		assert_null(c2);
		assert_int_equal(spw_consumer_seek(h.c, 696), 0);
		assert_int_equal(spw_consumer_seek(h.c, 696 + 80), 0);
		assert_int_equal(drain(h.c, h.g), 4);
		assert_int_equal(h.g->r[3].position, 696 + 80);
		assert_int_equal(h.g->r[3].hash, tag_hash(100, 5));
	}
	case_close(&h);
}

/* I1: producers never claim past limit = reclaimed + ring_bytes. */
static void send_and_claim_when_full_return_eagain(void **state)
{
	struct ring_case h = case_open("full");
	struct spw_topic_info info;
	struct spw_claim cl;

	(void)state;
	fill_64k(h.p, 0);
	info = info_of(h.t);
	assert_int_equal(info.tail, 65536);
	assert_int_equal(info.limit, 65536);
	assert_int_equal(send_tag(h.p, 1008, 99), -EAGAIN);
	assert_int_equal(send_tag(h.p, 0, 99), -EAGAIN);
	assert_int_equal(spw_producer_claim(h.p, 0, &cl), -EAGAIN);
	assert_int_equal(spw_producer_claim(h.p, 100, &cl), -EAGAIN);
	assert_int_equal(info_of(h.t).tail, 65536);

	/* Free one record: exactly one record of that span fits again. */
	h.g->stop_after = 1;
	assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 10), 1);
	assert_int_equal(spwd_reclaim(h.t, spw_consumer_position(h.c)), 0);
	assert_int_equal(info_of(h.t).limit, 65536 + 1024);
	assert_int_equal(send_tag(h.p, 1009, 99), -EAGAIN); /* span 1032 > 1024 */
	assert_int_equal(spw_producer_claim(h.p, 1008, &cl), 0);
	assert_int_equal(cl.position, 65536);
	test_fill(cl.data, cl.len, 100);
	assert_int_equal(spw_producer_commit(h.p, &cl), 0);
	assert_int_equal(send_tag(h.p, 0, 99), -EAGAIN);
	h.g->stop_after = 0;
	assert_int_equal(drain(h.c, h.g), 65);
	assert_int_equal(h.g->r[64].position, 65536);
	assert_int_equal(h.g->r[64].hash, tag_hash(1008, 100));
	case_close(&h);
}

static void claim_commit_and_abort(void **state)
{
	struct ring_case h = case_open("claims");
	struct spw_claim cl;
	uint8_t *data = map_64k("claims", NULL);
	int64_t aborted_at;

	(void)state;
	assert_int_equal(send_tag(h.p, 10, 1), 0);
	assert_int_equal(spw_producer_claim(h.p, 100, &cl), 0);
	assert_int_equal(cl.position, 32);
	assert_int_equal(cl.len, 100);
	assert_non_null(cl.data);
	test_fill(cl.data, 100, 2);
	/* cl.data is the record's payload in the ring (zero copy). */
	assert_int_equal(test_hash(data + 32 + 16, 100), tag_hash(100, 2));
	/* Open claim: the commit word is written once, at commit; until then
	 * it is 0 (I4). */
	assert_int_equal(test_commit_word(data, 64 * KiB, 32), 0);
	assert_int_equal(drain(h.c, h.g), 1);
	assert_int_equal(spw_consumer_position(h.c), 32); /* waits at the open claim */
	/* One claim at a time per handle; the refused calls claim nothing. */
	{
		struct spw_claim cl2;

		assert_int_equal(spw_producer_claim(h.p, 8, &cl2), -EBUSY);
		assert_int_equal(spw_producer_claim_wait(h.p, 8, 0, &cl2), -EBUSY);
		assert_int_equal(send_tag(h.p, 8, 9), -EBUSY);
		assert_int_equal(info_of(h.t).tail, 32 + 120);
	}
	assert_int_equal(spw_producer_commit(h.p, &cl), 0);
	assert_int_equal(test_commit_word(data, 64 * KiB, 32), W_DATA(100, 32, 64 * KiB));

	assert_int_equal(spw_producer_claim(h.p, 200, &cl), 0);
	aborted_at = cl.position;
	assert_int_equal(aborted_at, 32 + 120);
	memset(cl.data, 0xab, 200);
	assert_int_equal(spw_producer_abort(h.p, &cl), 0);
	assert_int_equal(test_commit_word(data, 64 * KiB, (uint64_t)aborted_at),
			 W_ABORTED(216, (uint64_t)aborted_at, 64 * KiB));
	assert_int_equal(send_tag(h.p, 20, 3), aborted_at + 216);

	assert_int_equal(drain(h.c, h.g), 3);
	assert_int_equal(h.g->r[1].position, 32);
	assert_int_equal(h.g->r[1].hash, tag_hash(100, 2));
	assert_int_equal(h.g->r[2].position, aborted_at + 216); /* the aborted one is skipped */
	assert_int_equal(h.g->r[2].hash, tag_hash(20, 3));
	test_unmap_ring(data, 64 * KiB);
	case_close(&h);
}

/* A handle closed with its claim open aborts the claim itself: consumers
 * skip the span instead of waiting at it forever, and the slot is free. */
static void close_with_an_open_claim_aborts_it(void **state)
{
	struct spw_topic *t = topic_new("close_open", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t), *p2;
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct test_got *g = test_got_new();
	struct spw_claim cl;
	struct spwd_scan_result s;
	uint8_t *data = map_64k("close_open", NULL);

	(void)state;
	assert_int_equal(send_tag(p, 10, 1), 0);
	assert_int_equal(spw_producer_claim(p, 300, &cl), 0);
	assert_int_equal(cl.position, 32);
	memset(cl.data, 0x5a, 300);
	spw_producer_close(p);
	assert_int_equal(test_commit_word(data, 64 * KiB, 32), W_ABORTED(test_span(300), 32, 64 * KiB));
	assert_int_equal(spwd_scan(t, 0, 1 << 20, &s), 32 + (int64_t)test_span(300));
	assert_int_equal(s.records, 1);
	assert_int_equal(s.stuck, -1);
	p2 = producer_new(t);
	assert_int_equal(send_tag(p2, 20, 2), 32 + (int64_t)test_span(300));
	assert_int_equal(drain(c, g), 2);
	assert_int_equal(g->r[0].position, 0);
	assert_int_equal(g->r[1].position, 32 + (int64_t)test_span(300));
	assert_int_equal(g->r[1].hash, tag_hash(20, 2));
	assert_int_equal(spw_consumer_skipped(c), 0); /* ABORTED is not garbage */
	test_unmap_ring(data, 64 * KiB);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(p2);
	topic_end(t, "close_open");
}

static void consumer_starts_from_oldest_latest_or_position(void **state)
{
	struct spw_topic *t = topic_new("from", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_consumer *oldest, *latest, *at, *after;
	struct test_got *g = test_got_new();

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_tag(p, 50, (uint64_t)i), i * 72);
	oldest = consumer_new(t, SPW_FROM_OLDEST, 12345 /* ignored */);
	latest = consumer_new(t, SPW_FROM_LATEST, 12345);
	at = consumer_new(t, SPW_FROM_POSITION, 72);
	assert_int_equal(spw_consumer_position(oldest), 0);
	assert_int_equal(spw_consumer_position(latest), 216);
	assert_int_equal(spw_consumer_position(at), 72);
	assert_int_equal(send_tag(p, 50, 3), 216);

	drain_first_is(oldest, g, 4, 50, 0);
	drain_first_is(latest, g, 1, 50, 3);
	assert_int_equal(g->r[0].position, 216);
	drain_first_is(at, g, 3, 50, 1);
	assert_int_equal(g->r[0].position, 72);

	/* After a reclaim, "oldest" is the reclaim bound. */
	assert_int_equal(spwd_reclaim(t, 144), 0);
	after = consumer_new(t, SPW_FROM_OLDEST, 0);
	assert_int_equal(spw_consumer_position(after), 144);
	assert_int_equal(spw_consumer_oldest(after), 144);
	drain_first_is(after, g, 2, 50, 2);
	free(g);
	spw_consumer_close(after);
	spw_consumer_close(at);
	spw_consumer_close(latest);
	spw_consumer_close(oldest);
	spw_producer_close(p);
	topic_end(t, "from");
}

/* I5: a consumer whose position was reclaimed gets -ESTALE, never bytes of
 * a newer lap, also when a valid newer record sits at its offset. */
static void lapped_consumer_gets_estale_and_seeks_to_oldest(void **state)
{
	struct spw_topic *t = topic_new("lapped", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_consumer *slow = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct spw_consumer *mid = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct test_got *g = test_got_new();
	struct spwd_scan_result s;
	int64_t upto;

	(void)state;
	for (int i = 0; i < 40; i++)
		assert_int_equal(send_tag(p, 1008, (uint64_t)i), i * 1024);
	/* mid reads 5 records and stops at 5120. */
	g->stop_after = 5;
	assert_int_equal(spw_consumer_poll(mid, test_collect, g, 100), 5);
	assert_int_equal(spw_consumer_position(mid), 5 * 1024);
	g->stop_after = 0;

	/* The daemon reclaims up to a committed boundary found by scan. */
	assert_int_equal(spwd_scan(t, 0, 20000, &s), 19 * 1024);
	upto = s.end;
	assert_int_equal(spwd_reclaim(t, upto), 0);
	g->n = 0;
	assert_int_equal(spw_consumer_poll(slow, test_collect, g, 100), -ESTALE);
	assert_int_equal(g->n, 0);
	assert_int_equal(spw_consumer_position(slow), 0); /* left where it was */
	assert_int_equal(spw_consumer_oldest(slow), upto);
	assert_int_equal(spw_consumer_poll_wait(slow, test_collect, g, 100, TEST_SEC), -ESTALE);
	assert_int_equal(spw_consumer_seek(slow, 0), -ESTALE);
	assert_int_equal(spw_consumer_seek(slow, spw_consumer_oldest(slow)), 0);
	assert_int_equal(drain(slow, g), 40 - 19);
	assert_int_equal(g->r[0].position, upto);
	assert_int_equal(g->r[0].hash, tag_hash(1008, 19));

	/* Lap the ring: records of span 1024 put record 69 at mid's offset. */
	for (int i = 40; i < 70; i++)
		assert_int_equal(send_tag(p, 1008, (uint64_t)i), i * 1024);
	g->n = 0;
	assert_int_equal(spw_consumer_poll(mid, test_collect, g, 100), -ESTALE);
	assert_int_equal(g->n, 0);
	assert_int_equal(spw_consumer_position(mid), 5 * 1024);
	free(g);
	spw_consumer_close(mid);
	spw_consumer_close(slow);
	spw_producer_close(p);
	topic_end(t, "lapped");
}

static void topic_info_tracks_tail_reclaim_and_counters(void **state)
{
	struct spw_topic *t = topic_new("info", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_topic_info info;
	int64_t before;

	(void)state;
	assert_int_equal(send_tag(p, 100, 1), 0);
	assert_int_equal(send_tag(p, 200, 2), 120);
	info = info_of(t);
	assert_int_equal(info.tail, 120 + 216);
	assert_int_equal(info.reclaimed, 0);
	assert_int_equal(info.limit, 64 * KiB);

	assert_int_equal(spwd_reclaim(t, 120), 0);
	assert_int_equal(spwd_reclaim(t, 120), 0); /* no-op */
	info = info_of(t);
	assert_int_equal(info.reclaimed, 120);
	assert_int_equal(info.limit, 120 + 64 * KiB);
	assert_int_equal(info.tail, 336);
	/* Reclaim bounds: aligned, not backwards, not past the tail. */
	assert_int_equal(spwd_reclaim(t, 124), -EINVAL);
	assert_int_equal(spwd_reclaim(t, 344), -EINVAL);
	assert_true(spwd_reclaim(t, 0) < 0);
	assert_int_equal(info_of(t).reclaimed, 120);

	assert_int_equal(spwd_set_counter(t, SPWD_SPILLED, 336), 0);
	assert_int_equal(spwd_set_counter(t, SPWD_DURABLE, 120), 0);
	assert_int_equal(spwd_set_counter(t, (enum spwd_counter)9, 1), -EINVAL);
	before = test_realtime_ns();
	assert_int_equal(spwd_heartbeat(t, 4242), 0);
	info = info_of(t);
	assert_int_equal(info.spilled, 336);
	assert_int_equal(info.durable, 120);
	assert_int_equal(info.daemon_pid, 4242);
	assert_in_range(info.daemon_heartbeat_ns, (uint64_t)before, (uint64_t)test_realtime_ns());
	spw_producer_close(p);
	topic_end(t, "info");
}

static void scan_reports_committed_run_records_and_stuck(void **state)
{
	struct spw_topic *t = topic_new("scan", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_producer *p2 = producer_new(t);
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct test_got *g = test_got_new();
	uint64_t max_ts = 0;
	struct spw_claim cl;
	struct spwd_scan_result s;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_tag(p, 100, (uint64_t)i), i * 120);
	assert_int_equal(spw_producer_claim(p2, 50, &cl), 0);
	assert_int_equal(cl.position, 600);
	assert_int_equal(send_tag(p, 100, 5), 672);
	assert_int_equal(send_tag(p, 100, 6), 792);

	/* The consumer stops at the open claim, later commits notwithstanding. */
	assert_int_equal(drain(c, g), 5);
	assert_int_equal(spw_consumer_position(c), 600);
	for (int i = 0; i < 5; i++)
		max_ts = g->r[i].timestamp_ns > max_ts ? g->r[i].timestamp_ns : max_ts;

	assert_int_equal(spwd_scan(t, 0, 1 << 20, &s), 600);
	assert_int_equal(s.end, 600);
	assert_int_equal(s.records, 5);
	assert_int_equal(s.stuck, 600);
	assert_int_equal(s.stuck_header, 0); /* not committed: nothing written yet (I4) */
	assert_int_equal(s.max_timestamp_ns, max_ts);
	/* max_bytes bounds the run at a record boundary. */
	assert_int_equal(spwd_scan(t, 0, 250, &s), 240);
	assert_int_equal(s.end, 240);
	assert_int_equal(s.records, 2);
	assert_int_equal(spwd_scan(t, 240, 240, &s), 240);
	assert_int_equal(s.records, 2);
	assert_int_equal(spwd_scan(t, 4, 100, &s), -EINVAL);
	assert_int_equal(spwd_scan(t, 1 << 20, 100, &s), -EINVAL);

	test_fill(cl.data, 50, 50);
	assert_int_equal(spw_producer_commit(p2, &cl), 0);
	assert_int_equal(spwd_scan(t, 0, 1 << 20, &s), 912);
	assert_int_equal(s.end, 912);
	assert_int_equal(s.records, 8);
	assert_int_equal(s.stuck, -1);
	assert_int_equal(drain(c, g), 8);
	assert_int_equal(g->r[5].position, 600);
	assert_int_equal(g->r[5].hash, tag_hash(50, 50));
	assert_int_equal(g->r[6].position, 672);
	assert_int_equal(g->r[7].position, 792);

	assert_int_equal(spwd_reclaim(t, 240), 0);
	assert_int_equal(spwd_scan(t, 0, 1 << 20, &s), -ESTALE);
	assert_int_equal(spwd_scan(t, 240, 1 << 20, &s), 912 - 240);
	assert_int_equal(s.records, 6);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(p2);
	spw_producer_close(p);
	topic_end(t, "scan");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_are_aligned_and_laid_out_back_to_back),
		cmocka_unit_test(record_that_does_not_fit_wraps_after_padding),
		cmocka_unit_test(eight_byte_gap_at_ring_end_becomes_padding),
		cmocka_unit_test(max_record_fits_and_one_more_is_emsgsize),
		cmocka_unit_test(send_at_stores_the_callers_timestamp),
		cmocka_unit_test(commit_at_stores_the_callers_timestamp),
		cmocka_unit_test(zero_length_records_are_delivered),
		cmocka_unit_test(every_small_length_arrives_byte_for_byte),
		cmocka_unit_test(null_pointers_are_einval),
		cmocka_unit_test(consumer_seek_checks_alignment_and_bounds),
		cmocka_unit_test(send_and_claim_when_full_return_eagain),
		cmocka_unit_test(claim_commit_and_abort),
		cmocka_unit_test(close_with_an_open_claim_aborts_it),
		cmocka_unit_test(consumer_starts_from_oldest_latest_or_position),
		cmocka_unit_test(lapped_consumer_gets_estale_and_seeks_to_oldest),
		cmocka_unit_test(topic_info_tracks_tail_reclaim_and_counters),
		cmocka_unit_test(scan_reports_committed_run_records_and_stuck),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
