/* SPDX-License-Identifier: MIT */
/*
 * mt_batch.c - batch reading under TSan (`make tsan` runs tests/mt_*.c): two
 * producer threads send numbered records of varying length into a small
 * ring while a consumer thread reads them with spw_consumer_peek/release
 * and makes room as the daemon would (spwd_reclaim up to what it released).
 * Every record must come exactly once, in each producer's order, with its
 * bytes; TSan checks that peek's loads pair with the producers' commits
 * (ring/consume.c, ring_layout.h I4, I5).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "ring_fixture.h"
#include "support.h"

#define PRODUCERS 2
#define PER_PRODUCER 100000u

struct run {
	struct spw_topic *t;
	int who;
	int64_t rc;
};

/* Record seq of producer who: u32 who, u32 seq, then test_fill(key). */
static uint32_t rec_len(uint32_t seq)
{
	return 8 + seq % 233;
}

static uint64_t rec_key(int who, uint32_t seq)
{
	return ((uint64_t)who << 32) | seq;
}

static void *produce(void *arg)
{
	struct run *r = arg;
	struct spw_producer *p = NULL;
	uint8_t buf[256];

	r->rc = spw_producer_open(r->t, &p);
	for (uint32_t seq = 0; !r->rc && seq < PER_PRODUCER; seq++) {
		uint32_t len = rec_len(seq), who = (uint32_t)r->who;
		int64_t pos;

		memcpy(buf, &who, 4);
		memcpy(buf + 4, &seq, 4);
		test_fill(buf + 8, len - 8, rec_key(r->who, seq));
		pos = spw_producer_send_wait(p, buf, len, 30 * TEST_SEC);
		if (pos < 0)
			r->rc = pos;
	}
	spw_producer_close(p);
	return NULL;
}

static void *consume(void *arg)
{
	struct run *r = arg;
	struct spw_consumer *c = NULL;
	struct spw_record recs[32];
	uint32_t next[PRODUCERS] = { 0 };
	uint64_t total = 0, idle = 0;
	uint8_t want[256];

	r->rc = spw_consumer_open(r->t, SPW_FROM_OLDEST, 0, &c);
	while (!r->rc && total < (uint64_t)PRODUCERS * PER_PRODUCER) {
		int n = spw_consumer_peek(c, recs, 32);

		if (n < 0) {
			r->rc = n;
			break;
		}
		if (n == 0 && ++idle > 200000000u) {
			r->rc = -ETIMEDOUT;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t who, seq;

			memcpy(&who, recs[i].data, 4);
			memcpy(&seq, (const uint8_t *)recs[i].data + 4, 4);
			if (who >= PRODUCERS || seq != next[who] || recs[i].len != rec_len(seq)) {
				r->rc = -EBADMSG;
				break;
			}
			test_fill(want, recs[i].len - 8, rec_key((int)who, seq));
			if (memcmp(want, (const uint8_t *)recs[i].data + 8, recs[i].len - 8)) {
				r->rc = -EBADMSG;
				break;
			}
			next[who]++;
		}
		if (r->rc || n == 0)
			continue;
		{
			int k = spw_consumer_release(c, recs, n);

			if (k != n) {
				r->rc = k < 0 ? k : -EPROTO;
				break;
			}
		}
		total += (uint64_t)n;
		idle = 0;
		/* The daemon's part: everything released may be reused. */
		r->rc = spwd_reclaim(r->t, spw_consumer_position(c));
	}
	spw_consumer_close(c);
	return NULL;
}

static void two_producers_and_a_batch_consumer_lose_and_repeat_nothing(void **state)
{
	struct spw_topic *t = topic_new("mt_batch", 64 * KiB, 1024);
	struct run runs[PRODUCERS + 1];
	pthread_t th[PRODUCERS + 1];

	(void)state;
	for (int i = 0; i <= PRODUCERS; i++) {
		runs[i] = (struct run){ .t = t, .who = i };
		assert_int_equal(pthread_create(&th[i], NULL, i < PRODUCERS ? produce : consume,
						&runs[i]),
				 0);
	}
	for (int i = 0; i <= PRODUCERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i <= PRODUCERS; i++)
		if (runs[i].rc)
			print_message("%s %d: %s\n", i < PRODUCERS ? "producer" : "consumer", i,
				      strerror((int)-runs[i].rc));
	for (int i = 0; i <= PRODUCERS; i++)
		assert_int_equal(runs[i].rc, 0);
	topic_end(t, "mt_batch");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_producers_and_a_batch_consumer_lose_and_repeat_nothing),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
