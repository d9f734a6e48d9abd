/* SPDX-License-Identifier: MIT */
/*
 * reader_batch.c - spw_reader_read, the reader's batch call (spill/reader.c):
 * with a real spillwayd, a log four rings long read from the earliest record
 * in batches (the disk first, then live) delivers every record once, in
 * order, with its bytes, exactly as spw_reader_poll does; data pointers hold
 * until the next call; a batch never mixes disk and live records; the
 * timeout rules (0: at once, > 0: that long, < 0: until a record) hold; and
 * bad arguments are -EINVAL.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"
#include "daemon_case.h"

#define RING (64u << 10)
#define MAXREC 4096u
#define N 1200u

/* Record seq: its length, then u64 seq and test_fill(seq) bytes. */
static uint32_t rec_len(uint64_t seq)
{
	return 8 + (uint32_t)(seq * 37 % 400);
}

static int64_t send_rec(struct spw_producer *p, uint64_t seq)
{
	uint8_t buf[512];
	uint32_t len = rec_len(seq);

	memcpy(buf, &seq, 8);
	test_fill(buf + 8, len - 8, seq + 1);
	return spw_producer_send_wait(p, buf, len, 10 * TEST_SEC);
}

static void check_rec(const struct spw_record *r, uint64_t seq)
{
	uint8_t want[512];
	uint64_t got;

	assert_int_equal(r->len, rec_len(seq));
	memcpy(&got, r->data, 8);
	assert_int_equal(got, seq);
	test_fill(want, r->len - 8, seq + 1);
	assert_memory_equal((const uint8_t *)r->data + 8, want, r->len - 8);
}

static struct spw_reader *reader_at_earliest(struct test_daemon *d, const char *topic)
{
	struct spw_reader_opts o = { 0 };
	struct spw_reader *r = NULL;

	o.shm_dir = d->shm;
	o.data_dir = d->data;
	o.start = SPW_START_EARLIEST;
	assert_int_equal(spw_reader_open(topic, &o, &r), 0);
	return r;
}

static int collect(void *arg, const struct spw_record *r)
{
	int64_t *v = arg;

	v[++v[0]] = r->position;
	return 0;
}

static void batches_deliver_everything_once_in_order_disk_then_live(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "rbatch", RING, 4 * RING, MAXREC, 20, 0 };
	static int64_t by_read[3 * N], by_poll[3 * N];
	struct spw_record recs[100];
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_reader *r, *r2;
	uint64_t seq = 0;
	int n, disk_batches = 0, live_batches = 0;

	case_producer(d, &spec, &t, &p);
	/* About four rings: most of it is only on disk by now. */
	for (; seq < N; seq++)
		assert_true(send_rec(p, seq) >= 0);
	assert_int_equal(test_wait_counter(t, false, (uint64_t)send_rec(p, seq++), scaled_s(10, 30)),
			 0);
	r = reader_at_earliest(d, "rbatch");
	by_read[0] = 0;
	while ((n = spw_reader_read(r, recs, 100, 0)) > 0) {
		bool live = spw_reader_is_live(r);

		for (int i = 0; i < n; i++) {
			check_rec(&recs[i], (uint64_t)by_read[0]);
			by_read[++by_read[0]] = recs[i].position;
		}
		/* Pointers hold until the next call: check the first again. */
		check_rec(&recs[0], (uint64_t)(by_read[0] - n));
		disk_batches += !live;
		live_batches += live;
		if (by_read[0] == (int64_t)seq && seq < 2 * N) {
			/* Caught up: more records, read live. */
			for (uint64_t k = 0; k < 50; k++, seq++)
				assert_true(send_rec(p, seq) >= 0);
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(by_read[0], (int64_t)seq);
	assert_true(disk_batches > 0);
	assert_true(live_batches > 0);
	/* The same records as poll, position for position. */
	r2 = reader_at_earliest(d, "rbatch");
	by_poll[0] = 0;
	while ((n = spw_reader_poll(r2, collect, by_poll, 64)) > 0)
		;
	assert_int_equal(n, 0);
	assert_int_equal(by_poll[0], by_read[0]);
	assert_memory_equal(by_poll, by_read, (size_t)(by_read[0] + 1) * sizeof(int64_t));
	spw_reader_close(r2);
	spw_reader_close(r);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

struct later {
	struct spw_producer *p;
	uint64_t seq;
};

static void *send_later(void *arg)
{
	struct later *l = arg;

	test_sleep_ns(200 * TEST_MS);
	send_rec(l->p, l->seq);
	return NULL;
}

/* spw_reader_read and spw_reader_poll_wait: 0 at once with no timeout, 0
 * after a timeout (not before), a record once it comes with -1. */
static void timeouts_and_bad_arguments(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "rbwait", RING, 4 * RING, MAXREC, 20, 0 };
	struct spw_record recs[4];
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_reader *r;
	struct later l;
	pthread_t th;
	int64_t t0;

	case_producer(d, &spec, &t, &p);
	assert_true(send_rec(p, 0) >= 0);
	r = reader_at_earliest(d, "rbwait");
	assert_int_equal(spw_reader_read(NULL, recs, 4, 0), -EINVAL);
	assert_int_equal(spw_reader_read(r, NULL, 4, 0), -EINVAL);
	assert_int_equal(spw_reader_read(r, recs, 0, 0), -EINVAL);
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 1);
	check_rec(&recs[0], 0);
	/* Caught up: 0 at once, 0 after a timeout. */
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 0);
	t0 = test_now_ns();
	assert_int_equal(spw_reader_read(r, recs, 4, 100 * TEST_MS), 0);
	assert_true(test_now_ns() - t0 >= 90 * TEST_MS);
	/* The same for the callback form. */
	{
		int64_t got[8] = { 0 };

		assert_int_equal(spw_reader_poll_wait(r, collect, got, 4, 0), 0);
		t0 = test_now_ns();
		assert_int_equal(spw_reader_poll_wait(r, collect, got, 4, 100 * TEST_MS), 0);
		assert_true(test_now_ns() - t0 >= 90 * TEST_MS);
		assert_int_equal(got[0], 0);
	}
	/* < 0: until a record comes. */
	l.p = p;
	l.seq = 1;
	assert_int_equal(pthread_create(&th, NULL, send_later, &l), 0);
	assert_int_equal(spw_reader_read(r, recs, 4, -1), 1);
	check_rec(&recs[0], 1);
	pthread_join(th, NULL);
	/* Live, right after a look that found nothing: the first record
	 * alone (spill/reader.c live_poll), then the rest as a batch. */
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 0);
	for (uint64_t i = 2; i < 5; i++)
		assert_true(send_rec(p, i) >= 0);
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 1);
	check_rec(&recs[0], 2);
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 2);
	check_rec(&recs[0], 3);
	check_rec(&recs[1], 4);
	/* ... and when that first record is one a start time passes over, the
	 * next goes out with it: a read never says 0 with records there. */
	{
		struct spw_reader_opts o = { 0 };
		struct spw_reader *r2 = NULL;
		uint64_t at = (uint64_t)time(NULL) * 1000000000ull + 3600ull * 1000000000ull;
		uint8_t buf[512];

		o.shm_dir = d->shm;
		o.data_dir = d->data;
		o.start = SPW_START_TIME;
		o.time_ns = at;
		assert_int_equal(spw_reader_open("rbwait", &o, &r2), 0);
		assert_int_equal(spw_reader_read(r2, recs, 4, 0), 0);
		for (uint64_t seq = 5; seq < 7; seq++) {
			memcpy(buf, &seq, 8);
			test_fill(buf + 8, rec_len(seq) - 8, seq + 1);
			assert_true(spw_producer_send_at(p, buf, rec_len(seq), seq == 5 ? at - 1 : at) >=
				    0);
		}
		assert_int_equal(spw_reader_read(r2, recs, 4, 0), 1);
		check_rec(&recs[0], 6);
		spw_reader_close(r2);
	}
	/* Streaming (the last read ended on an empty look after records, not
	 * caught up before them): whole batches. */
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 2);
	check_rec(&recs[0], 5);
	for (uint64_t seq = 7; seq < 10; seq++)
		assert_true(send_rec(p, seq) >= 0);
	assert_int_equal(spw_reader_read(r, recs, 4, 0), 3);
	check_rec(&recs[0], 7);
	spw_reader_close(r);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			batches_deliver_everything_once_in_order_disk_then_live, setup, teardown),
		cmocka_unit_test_setup_teardown(timeouts_and_bad_arguments, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
