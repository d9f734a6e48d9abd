/* SPDX-License-Identifier: MIT */
/*
 * spill_daemon.c - what spillwayd promises beyond crashes and faults:
 * acknowledgements (committed / spilled / durable; an open claim is waited
 * for, never aborted), the flush policy, segment roll by size, retention by
 * bytes and by age (never the active segment), no-spill topics, and a
 * deleted topic stopping cleanly (writer.c W3, W6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../spill/spill.h"
#include "support.h"
#include "support_daemon.h"

#define SEC 1000000000ll

static int test_collect_nothing(void *arg, const struct spw_record *r)
{
	(void)arg;
	(void)r;
	return 0;
}

static int setup(void **state)
{
	struct test_daemon *d = calloc(1, sizeof(*d));

	if (!d || !test_daemon_path())
		return -1;
	test_daemon_setup(d);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct test_daemon *d = *state;

	test_daemon_teardown(d);
	free(d);
	return 0;
}

/* A case on one topic: the sandbox, the topic's data dir, the topic and
 * its producer, the position of the last record sent, and the segment list
 * last read (bases[0 .. n - 1], freed by the next read and by scase_end). */
struct scase {
	struct test_daemon *d;
	char dir[1024];
	struct spw_topic *t;
	struct spw_producer *p;
	int64_t last;
	uint64_t *bases;
	size_t n;
};

/* The start of a case: topic `name` made (ring 256 KiB, segments 1 MiB,
 * flush 50 ms, unblock 200 ms) with topic.conf edits applied through
 * `edit`, then the daemon started and attached; the topic opened, with a
 * producer. Returns the sandbox. */
static struct test_daemon *scase_begin(struct scase *s, void **state, const char *name,
				       void (*edit)(struct topic_conf *))
{
	struct test_topic_spec spec = { name, 256 << 10, 1 << 20, 0, 50, 200 };
	struct test_daemon *d = *state;

	*s = (struct scase){ .d = d };
	test_daemon_topic_dir(d, name, s->dir, sizeof(s->dir));
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	if (edit) {
		struct topic_conf c;

		assert_int_equal(seg_conf_load(s->dir, &c), 0);
		edit(&c);
		assert_int_equal(seg_conf_save(s->dir, &c), 0);
	}
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_attached(d, name, 10 * SEC), 0);
	assert_int_equal(spw_topic_open(d->shm, name, 0, &s->t), 0);
	assert_int_equal(spw_producer_open(s->t, &s->p), 0);
	return d;
}

/* The end: the segment list freed, the producer and the topic closed. */
static void scase_end(struct scase *s)
{
	free(s->bases);
	s->bases = NULL;
	spw_producer_close(s->p);
	spw_topic_close(s->t);
}

/* The topic's segments now, into s->bases (the list before freed); their
 * number, also in s->n. */
static size_t segments(struct scase *s)
{
	free(s->bases);
	assert_int_equal(seg_list(s->dir, &s->bases, &s->n), 0);
	return s->n;
}

static void produce(struct spw_producer *p, uint64_t bytes, uint32_t len, int64_t *last)
{
	char buf[4096];

	memset(buf, 'r', sizeof(buf));
	for (uint64_t done = 0; done < bytes; done += len) {
		int64_t pos = spw_producer_send_wait(p, buf, len, 10 * SEC);

		assert_true(pos >= 0);
		*last = pos;
	}
}

/* produce, then wait until all of it is spilled. */
static void produce_spilled(struct spw_producer *p, uint64_t bytes, uint32_t len, int64_t *last)
{
	produce(p, bytes, len, last);
	assert_int_equal(spw_producer_wait_ack(p, *last, SPW_ACK_SPILLED, 10 * SEC), 0);
}

/* Retention runs after each roll: give the last one a moment (the list
 * polled up to 100 times, 50 ms apart, until at most `most` segments are
 * left). The list then (s->bases) and its length. */
static size_t segments_after_retention(struct scase *s, size_t most)
{
	for (int i = 0; i < 100; i++) {
		if (segments(s) <= most)
			break;
		test_sleep_ns(SEC / 20);
	}
	return segments(s);
}

static void acks_follow_spilled_and_durable(void **state)
{
	struct scase s;
	struct test_daemon *d = scase_begin(&s, state, "ack", NULL);
	struct spw_topic_info in;

	produce(s.p, 3 << 20, 1000, &s.last);
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_COMMITTED, 0), 0);
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_SPILLED, 10 * SEC), 0);
	assert_int_equal(spw_topic_info(s.t, &in), 0);
	assert_true(in.spilled > (uint64_t)s.last);
	/* flush_ms = 50: durable follows without more writes (W6) */
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_DURABLE, 10 * SEC), 0);
	assert_int_equal(spw_topic_info(s.t, &in), 0);
	assert_true(in.durable > (uint64_t)s.last);
	assert_true(in.durable <= in.spilled);
	/* With the daemon gone, a new record is never acknowledged as spilled. */
	assert_int_equal(test_daemon_stop(d, 10 * SEC), 0);
	produce(s.p, 1000, 1000, &s.last);
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_SPILLED, SEC / 5), -ETIMEDOUT);
	/* ... until it comes back. */
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_SPILLED, 10 * SEC), 0);
	assert_int_equal(spw_producer_wait_ack(s.p, -1, SPW_ACK_SPILLED, 0), -EINVAL);

	/* An open claim: "committed" waits up to its timeout and times out;
	 * the daemon, past unblock_ms (200 here), still never aborts a live
	 * producer's claim, so nothing past it is spilled until the commit. */
	{
		struct spw_claim cl;
		int64_t t0;

		assert_int_equal(spw_producer_claim(s.p, 100, &cl), 0);
		assert_int_equal(spw_producer_wait_ack(s.p, cl.position, SPW_ACK_COMMITTED, 0),
				 -ETIMEDOUT);
		t0 = test_now_ns();
		assert_int_equal(spw_producer_wait_ack(s.p, cl.position, SPW_ACK_COMMITTED, SEC / 2),
				 -ETIMEDOUT);
		assert_true(test_now_ns() - t0 >= SEC / 2);
		assert_int_equal(spw_producer_wait_ack(s.p, cl.position, SPW_ACK_SPILLED, SEC / 5),
				 -ETIMEDOUT);
		assert_int_equal(spw_topic_info(s.t, &in), 0);
		assert_int_equal(in.spilled, (uint64_t)cl.position);
		assert_int_equal(in.aborted_claims, 0);
		memset(cl.data, 'c', 100);
		assert_int_equal(spw_producer_commit(s.p, &cl), 0);
		assert_int_equal(spw_producer_wait_ack(s.p, cl.position, SPW_ACK_COMMITTED, 0), 0);
		assert_int_equal(spw_producer_wait_ack(s.p, cl.position, SPW_ACK_DURABLE, 10 * SEC), 0);
		assert_int_equal(spw_topic_info(s.t, &in), 0);
		assert_int_equal(in.aborted_claims, 0);
		/* Beyond the tail nothing can be committed. */
		assert_int_equal(spw_producer_wait_ack(s.p, (int64_t)in.tail, SPW_ACK_COMMITTED, 0),
				 -EINVAL);
	}
	scase_end(&s);
}

static void segments_roll_by_size_and_hold_the_log(void **state)
{
	struct scase s;
	struct test_seg_walk w = { 0 };

	scase_begin(&s, state, "roll", NULL);
	produce_spilled(s.p, (5 << 20) + 12345, 2000, &s.last);
	assert_true(segments(&s) >= 5);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.bases[i], (uint64_t)i << 20); /* one per MiB, no hole */
	assert_int_equal(test_seg_walk(s.dir, &w), 0);
	assert_true(w.data_records >= ((5u << 20) + 12345) / 2000);
	scase_end(&s);
}

static void keep_two_mib(struct topic_conf *c)
{
	c->retention_bytes = 2 << 20;
	c->retention_ms = 0;
}

static void retention_by_bytes_deletes_oldest_segments_only(void **state)
{
	struct scase s;
	struct test_daemon *d = scase_begin(&s, state, "rb", keep_two_mib);
	size_t n;

	produce_spilled(s.p, 8 << 20, 2000, &s.last);
	n = segments_after_retention(&s, 3);
	/* at most 2 MiB of full segments plus the active one, and the newest
	 * (active) segment is still there */
	assert_true(n >= 1 && n <= 3);
	assert_int_equal(s.bases[n - 1], ((uint64_t)s.last >> 20) << 20);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(s.bases[i], s.bases[i - 1] + (1 << 20));
	assert_true(test_daemon_log_count(d, "retention: deleted segment", true) >= 5);
	/* The reader agrees: the earliest kept position moved forward. */
	assert_int_equal(spw_topic_earliest(d->shm, d->data, "rb"), (int64_t)s.bases[0]);
	scase_end(&s);
}

static void keep_one_second(struct topic_conf *c)
{
	c->retention_ms = 1000;
}

static void retention_by_age_spares_the_active_segment(void **state)
{
	struct scase s;
	size_t n;

	scase_begin(&s, state, "ra", keep_one_second);
	produce_spilled(s.p, 3 << 20, 2000, &s.last);
	assert_true(segments(&s) >= 3); /* young: nothing deleted yet */
	test_sleep_ns(3 * SEC / 2);
	/* One more roll triggers a retention pass (and so would the 5 s timer). */
	produce_spilled(s.p, 1 << 20, 2000, &s.last);
	n = segments_after_retention(&s, 2);
	assert_true(n >= 1 && n <= 2);
	assert_int_equal(s.bases[n - 1], ((uint64_t)s.last >> 20) << 20);
	scase_end(&s);
}

static void no_spill_topic_reclaims_without_writing(void **state)
{
	struct test_daemon *d = *state;
	struct spw_topic_config cfg = { .ring_bytes = 64 << 10, .flags = SPW_TOPIC_NO_SPILL };
	struct scase s = { .d = d };
	struct spw_consumer *c;
	int64_t oldest;

	test_daemon_topic_dir(d, "ipc", s.dir, sizeof(s.dir));
	assert_int_equal(spw_topic_create(d->shm, "ipc", &cfg), 0);
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_attached(d, "ipc", 10 * SEC), 0);
	assert_int_equal(spw_topic_open(d->shm, "ipc", 0, &s.t), 0);
	assert_int_equal(spw_producer_open(s.t, &s.p), 0);
	assert_int_equal(spw_consumer_open(s.t, SPW_FROM_OLDEST, 0, &c), 0);
	/* 16x the ring: only possible if the daemon reclaims. */
	produce(s.p, 1 << 20, 1000, &s.last);
	assert_int_equal(spw_producer_wait_ack(s.p, s.last, SPW_ACK_SPILLED, 0), -EOPNOTSUPP);
	assert_int_equal(segments(&s), 0); /* nothing written */
	/* The consumer that never read was lapped and learns how much it lost. */
	assert_int_equal(spw_consumer_poll(c, test_collect_nothing, NULL, 10), -ESTALE);
	oldest = spw_consumer_oldest(c);
	assert_true(oldest > 0 && oldest <= s.last);
	spw_consumer_close(c);
	scase_end(&s);
}

static void deleted_topic_is_detached_cleanly(void **state)
{
	struct scase s;
	struct test_daemon *d = scase_begin(&s, state, "gone", NULL);

	produce_spilled(s.p, 1 << 20, 1000, &s.last);
	assert_int_equal(spw_topic_delete(d->shm, "gone"), 0);
	assert_int_equal(test_daemon_wait_log(d, "topic gone: detaching", 1, 10 * SEC), 0);
	assert_true(test_daemon_alive(d));
	assert_int_equal(test_daemon_stop(d, 10 * SEC), 0);
	scase_end(&s);
}

/* A ring made again at 0 over a kept disk log (what a C program's
 * spw_topic_create does after a reboot, spillwayd not running yet): the
 * daemon attached it once its tail passed the log's end, spilling from
 * there, so its first records never reached disk while their spilled
 * acknowledgements succeeded. Now refused, with the way out; the daemon's
 * own recreation (at the log's end) attaches. */
static void a_new_ring_at_0_over_a_kept_log_is_refused(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 256 << 10, .segment_bytes = 1 << 20 };
	struct spw_producer *p;
	struct spw_topic *t;
	struct scase s;
	struct test_daemon *d = scase_begin(&s, state, "again", NULL);
	char buf[1000];
	int64_t first = -1, last = 0;

	produce_spilled(s.p, 64 << 10, 1000, &s.last);
	scase_end(&s);
	assert_int_equal(test_daemon_stop(d, 10 * SEC), 0);
	assert_int_equal(spw_topic_delete(d->shm, "again"), 0);
	assert_int_equal(spw_topic_create(d->shm, "again", &cfg), 0);
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(spw_topic_open(d->shm, "again", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	memset(buf, 'n', sizeof(buf));
	/* Past the log's end (~64 KiB), within the ring (no reclaim needed). */
	for (int i = 0; i < 128; i++) {
		last = spw_producer_send(p, buf, sizeof(buf));
		assert_true(last >= 0);
		if (first < 0)
			first = last;
	}
	assert_int_equal(first, 0);
	assert_int_equal(test_daemon_wait_log(d, "another ring wrote the disk log", 1, 10 * SEC), 0);
	assert_int_equal(spw_producer_wait_ack(p, first, SPW_ACK_SPILLED, SEC), -ETIMEDOUT);
	assert_int_equal(test_daemon_log_count(d, "topic again: attached", false), 0);
	spw_producer_close(p);
	spw_topic_close(t);
	/* The way out: the ring removed, spillwayd makes it at the log's end. */
	assert_int_equal(test_daemon_stop(d, 10 * SEC), 0);
	assert_int_equal(spw_topic_delete(d->shm, "again"), 0);
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_attached(d, "again", 10 * SEC), 0);
	assert_int_equal(spw_topic_open(d->shm, "again", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	last = spw_producer_send(p, buf, sizeof(buf));
	assert_true(last >= 64000);
	assert_int_equal(spw_producer_wait_ack(p, last, SPW_ACK_SPILLED, 10 * SEC), 0);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(test_daemon_stop(d, 10 * SEC), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(acks_follow_spilled_and_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(segments_roll_by_size_and_hold_the_log, setup, teardown),
		cmocka_unit_test_setup_teardown(retention_by_bytes_deletes_oldest_segments_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(retention_by_age_spares_the_active_segment, setup,
						teardown),
		cmocka_unit_test_setup_teardown(no_spill_topic_reclaims_without_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(deleted_topic_is_detached_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(a_new_ring_at_0_over_a_kept_log_is_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
