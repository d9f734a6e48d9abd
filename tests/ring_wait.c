/* SPDX-License-Identifier: MIT */
/*
 * ring_wait.c - the blocking calls: send_wait / claim_wait released by a
 * reclaim from another process or thread, their timeouts, poll_wait's
 * timeout and its wake-up by a send from another thread or process (I8 in
 * ring/ring_layout.h). Times are asserted as lower bounds and generous upper
 * bounds only: this is about behaviour, not speed.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring_fixture.h"
#include "ring_internal.h"
#include "support.h"

#define SLACK_NS (5 * TEST_SEC) /* upper bounds: a loaded 2-core machine */

static int wait_group_setup(void **state)
{
	alarm(300); /* a lost wake-up must fail the run, not hang it */
	return test_group_setup(state);
}

static int wait_group_teardown(void **state)
{
	alarm(0);
	return test_group_teardown(state);
}

static struct spw_topic *topic_64k(const char *name)
{
	return topic_new(name, 64 * KiB, 16 * KiB);
}

static uint64_t tail_of(struct spw_topic *t)
{
	return info_of(t).tail;
}

/* Read one record and reclaim it: exactly one span of 1024 frees up. */
static void free_one_record(struct spw_topic *t, struct spw_consumer *c, struct test_got *g)
{
	g->stop_after = g->n + 1;
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 10), 1);
	g->stop_after = 0;
	assert_int_equal(spwd_reclaim(t, spw_consumer_position(c)), 0);
}

static int still_running(pid_t pid)
{
	int st;

	return waitpid(pid, &st, WNOHANG) == 0;
}

/* ------------------------------------------------------------------------- */

struct child_send {
	const char *name;
	uint32_t len;
	uint64_t tag;
	int64_t delay_ns;       /* before sending */
	int blocking;           /* send_wait(-1) instead of send */
	_Atomic int started;
	_Atomic int64_t result; /* the send's return */
};

static int child_send(void *arg)
{
	struct child_send *cs = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t buf[1024];
	int r;

	r = spw_topic_open(test_group_dir, cs->name, 0, &t);
	TEST_CHECK(r == 0, "child: open %s: %d", cs->name, r);
	r = spw_producer_open(t, &p);
	TEST_CHECK(r == 0, "child: producer_open: %d", r);
	test_fill(buf, cs->len, cs->tag);
	atomic_store(&cs->started, 1);
	if (cs->delay_ns)
		test_sleep_ns(cs->delay_ns);
	atomic_store(&cs->result, cs->blocking ? spw_producer_send_wait(p, buf, cs->len, -1)
					       : spw_producer_send(p, buf, cs->len));
	spw_producer_close(p);
	spw_topic_close(t);
	return atomic_load(&cs->result) >= 0 ? 0 : 1;
}

static void wait_started(_Atomic int *flag)
{
	int64_t end = test_now_ns() + 30 * TEST_SEC;

	while (!atomic_load(flag)) {
		assert_true(test_now_ns() < end);
		test_sleep_ns(TEST_MS);
	}
}

static void send_wait_blocks_until_a_reclaim_by_another_process(void **state)
{
	struct ring_case h = case_open("bw_proc");
	struct child_send *cs = test_shared_alloc(sizeof(*cs));
	pid_t pid;

	(void)state;
	fill_64k(h.p, 0);
	cs->name = "bw_proc";
	cs->len = 1008;
	cs->tag = 500;
	cs->blocking = 1;
	atomic_init(&cs->result, -1);
	pid = test_fork(child_send, cs);
	wait_started(&cs->started);
	test_sleep_ns(100 * TEST_MS);
	/* No room: the child cannot have claimed anything. */
	assert_true(still_running(pid));
	assert_int_equal(tail_of(h.t), 65536);

	free_one_record(h.t, h.c, h.g);
	assert_int_equal(test_wait(pid, 30 * TEST_SEC), 0);
	assert_int_equal(atomic_load(&cs->result), 65536);
	assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 100), 64);
	assert_int_equal(h.g->r[64].position, 65536);
	assert_int_equal(h.g->r[64].hash, tag_hash(1008, 500));
	test_shared_free(cs, sizeof(*cs));
	case_close(&h);
}

struct thread_claim {
	struct spw_topic *t;
	_Atomic int started, done;
	int rc;
	int64_t position;
};

static void *thread_claim_wait(void *arg)
{
	struct thread_claim *tc = arg;
	struct spw_producer *p = NULL;
	struct spw_claim cl;

	tc->rc = spw_producer_open(tc->t, &p);
	if (tc->rc == 0) {
		atomic_store(&tc->started, 1);
		tc->rc = spw_producer_claim_wait(p, 1008, -1, &cl);
		if (tc->rc == 0) {
			test_fill(cl.data, cl.len, 501);
			tc->position = cl.position;
			tc->rc = spw_producer_commit(p, &cl);
		}
		spw_producer_close(p);
	}
	atomic_store(&tc->started, 1);
	atomic_store(&tc->done, 1);
	return NULL;
}

static void claim_wait_blocks_until_a_reclaim_by_another_thread(void **state)
{
	struct ring_case h = case_open("bw_thread");
	struct thread_claim tc = { .t = h.t };
	int64_t end;
	pthread_t th;

	(void)state;
	fill_64k(h.p, 0);
	assert_int_equal(pthread_create(&th, NULL, thread_claim_wait, &tc), 0);
	wait_started(&tc.started);
	test_sleep_ns(100 * TEST_MS);
	assert_false(atomic_load(&tc.done));
	assert_int_equal(tail_of(h.t), 65536);

	free_one_record(h.t, h.c, h.g);
	end = test_now_ns() + 30 * TEST_SEC;
	while (!atomic_load(&tc.done)) {
		if (test_now_ns() > end)
			fail_msg("claim_wait(-1) still blocked 30 s after the reclaim");
		test_sleep_ns(TEST_MS);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(tc.rc, 0);
	assert_int_equal(tc.position, 65536);
	assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 100), 64);
	assert_int_equal(h.g->r[64].position, 65536);
	assert_int_equal(h.g->r[64].hash, tag_hash(1008, 501));
	case_close(&h);
}

static void send_wait_and_claim_wait_time_out_on_a_full_ring(void **state)
{
	static const int64_t timeouts[] = { 0, 1 * TEST_MS, 50 * TEST_MS, 200 * TEST_MS };
	struct spw_topic *t = topic_64k("timeouts");
	struct spw_producer *p = NULL;
	uint8_t buf[64] = { 0 };
	struct spw_claim cl;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	fill_64k(p, 0);
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		int64_t t0 = test_now_ns(), el;

		assert_int_equal(spw_producer_send_wait(p, buf, sizeof(buf), timeouts[i]), -ETIMEDOUT);
		el = test_now_ns() - t0;
		assert_in_range(el, timeouts[i], timeouts[i] + SLACK_NS);
		t0 = test_now_ns();
		assert_int_equal(spw_producer_send_wait_at(p, buf, sizeof(buf), timeouts[i], 7), -ETIMEDOUT);
		el = test_now_ns() - t0;
		assert_in_range(el, timeouts[i], timeouts[i] + SLACK_NS);
		t0 = test_now_ns();
		assert_int_equal(spw_producer_claim_wait(p, 0, timeouts[i], &cl), -ETIMEDOUT);
		el = test_now_ns() - t0;
		assert_in_range(el, timeouts[i], timeouts[i] + SLACK_NS);
	}
	assert_int_equal(tail_of(t), 65536); /* nothing was claimed */
	spw_producer_close(p);
	topic_end(t, "timeouts");
}

/* spw_producer_wait_ack's timeouts (ring_wait_left, as the other waits):
 * with no daemon nothing is ever spilled or durable, so each level times
 * out after its timeout (0: at once); a committed record is committed at
 * once. */
static void wait_ack_times_out_without_a_daemon(void **state)
{
	static const int64_t timeouts[] = { 0, 1 * TEST_MS, 50 * TEST_MS };
	static const enum spw_ack levels[] = { SPW_ACK_SPILLED, SPW_ACK_DURABLE };
	struct spw_topic *t = topic_64k("ack_timeouts");
	struct spw_producer *p = NULL;
	uint8_t buf[64] = { 0 };
	int64_t pos;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	pos = spw_producer_send(p, buf, sizeof(buf));
	assert_true(pos >= 0);
	assert_int_equal(spw_producer_wait_ack(p, pos, SPW_ACK_COMMITTED, 0), 0);
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++)
		for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
			int64_t t0 = test_now_ns(), el;

			assert_int_equal(spw_producer_wait_ack(p, pos, levels[l], timeouts[i]), -ETIMEDOUT);
			el = test_now_ns() - t0;
			assert_in_range(el, timeouts[i], timeouts[i] + SLACK_NS);
		}
	/* A position never claimed (at or past the tail) or inside a record is
	 * never acknowledged: -EINVAL at once at every level, as committed
	 * always said (spilled and durable waited their whole timeout, for
	 * ever with -1). */
	for (size_t l = 0; l < 3; l++) {
		static const enum spw_ack all[] = { SPW_ACK_COMMITTED, SPW_ACK_SPILLED,
						    SPW_ACK_DURABLE };

		assert_int_equal(spw_producer_wait_ack(p, pos + 80, all[l], -1), -EINVAL);
		assert_int_equal(spw_producer_wait_ack(p, pos + 4, all[l], -1), -EINVAL);
	}
	/* A durable error word that is no -errno (garbage in shared memory):
	 * -EIO, never the word itself (7 was returned as a count, and 1 would
	 * have read as "not yet": a review, 2026-12-05). */
	{
		static const int32_t bad[] = { 7, 1, -5000, INT32_MIN };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			atomic_store(&t->hdr->durable_err, bad[i]);
			assert_int_equal(spw_producer_wait_ack(p, pos, SPW_ACK_DURABLE, -1), -EIO);
		}
		atomic_store(&t->hdr->durable_err, -ENOSPC);
		assert_int_equal(spw_producer_wait_ack(p, pos, SPW_ACK_DURABLE, -1), -ENOSPC);
		atomic_store(&t->hdr->durable_err, 0);
	}
	spw_producer_close(p);
	topic_end(t, "ack_timeouts");
}

/* A producer whose topic is deleted under it (and maybe recreated) sends
 * into a ring nobody will ever spill or reclaim: its waits end with
 * -EIDRM within about a second instead of waiting for ever, and
 * spw_topic_deleted() says so (a review, 2026-12-04). */
static void waits_on_a_deleted_topic_end_with_eidrm(void **state)
{
	struct spw_topic *t = topic_64k("gone_under");
	struct spw_producer *p = NULL;
	uint8_t buf[1024] = { 0 };
	int64_t pos = -1, r, t0;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_topic_deleted(t), 0);
	for (r = 0; r >= 0; r = spw_producer_send(p, buf, sizeof(buf)))
		pos = r;
	assert_int_equal(r, -EAGAIN); /* full: no daemon */
	/* Removed another way than spw_topic_delete (rm, a script): the ring
	 * is not marked, so what does not wait cannot tell, and waits find
	 * the unlink within about a second. */
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/gone_under.ring", test_group_dir);
		assert_int_equal(unlink(path), 0);
	}
	spw_topic_close(topic_64k("gone_under")); /* recreated: another file */
	assert_int_equal(spw_topic_deleted(t), 1);
	t0 = test_now_ns();
	assert_int_equal(spw_producer_send_wait(p, buf, sizeof(buf), 10 * TEST_SEC), -EIDRM);
	assert_in_range(test_now_ns() - t0, 0, 3 * TEST_SEC);
	t0 = test_now_ns();
	assert_int_equal(spw_producer_wait_ack(p, pos, SPW_ACK_SPILLED, -1), -EIDRM);
	assert_in_range(test_now_ns() - t0, 0, 3 * TEST_SEC);
	/* Short waits keep their -ETIMEDOUT; what does not wait is unchanged. */
	assert_int_equal(spw_producer_send_wait(p, buf, sizeof(buf), 0), -ETIMEDOUT);
	assert_int_equal(spw_producer_send(p, buf, sizeof(buf)), -EAGAIN);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "gone_under"), 0);
}

/* spw_topic_delete marks the ring after its unlink: its producers' calls
 * return -EIDRM at once, waiting or not, with room or without, and the
 * delete of a recreated topic does not touch the new ring. */
static void producers_of_a_topic_deleted_get_eidrm_at_once(void **state)
{
	struct spw_topic *t = topic_64k("del_now"), *t2;
	struct spw_producer *p = NULL, *q = NULL, *p2 = NULL;
	uint8_t buf[1024] = { 0 };
	int64_t pos, t0;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_open_flags(t, 0, &q), 0); /* a shared one too */
	pos = spw_producer_send(p, buf, sizeof(buf));
	assert_true(pos >= 0);
	assert_int_equal(spw_topic_delete(test_group_dir, "del_now"), 0);
	assert_int_equal(spw_topic_deleted(t), 1);
	t0 = test_now_ns();
	assert_int_equal(spw_producer_send(p, buf, sizeof(buf)), -EIDRM); /* room: still refused */
	assert_int_equal(spw_producer_send(q, buf, sizeof(buf)), -EIDRM);
	assert_int_equal(spw_producer_send_at(p, buf, 8, 1), -EIDRM);
	assert_int_equal(spw_producer_send_wait(q, buf, sizeof(buf), -1), -EIDRM);
	assert_int_equal(spw_producer_wait_ack(p, pos, SPW_ACK_SPILLED, -1), -EIDRM);
	assert_in_range(test_now_ns() - t0, 0, TEST_SEC / 2);
	/* Recreated and deleted again while the new one has a producer: only
	 * the new ring is marked by that delete, and the new producer, open
	 * on it, sends until then. */
	t2 = topic_64k("del_now");
	assert_int_equal(spw_producer_open(t2, &p2), 0);
	assert_true(spw_producer_send(p2, buf, 8) >= 0);
	assert_int_equal(spw_topic_deleted(t2), 0);
	assert_int_equal(spw_topic_delete(test_group_dir, "del_now"), 0);
	assert_int_equal(spw_producer_send(p2, buf, 8), -EIDRM);
	spw_producer_close(p2);
	spw_producer_close(q);
	spw_producer_close(p);
	spw_topic_close(t2);
	spw_topic_close(t);
}

static void poll_wait_times_out_returning_zero(void **state)
{
	static const int64_t timeouts[] = { 0, 1 * TEST_MS, 50 * TEST_MS, 200 * TEST_MS };
	struct ring_case h = case_open("poll_timeout");

	(void)state;
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		int64_t t0 = test_now_ns(), el;

		assert_int_equal(spw_consumer_poll_wait(h.c, test_collect, h.g, 10, timeouts[i]),
				 0);
		el = test_now_ns() - t0;
		assert_in_range(el, timeouts[i], timeouts[i] + SLACK_NS);
	}
	assert_int_equal(h.g->n, 0);
	/* Something there: returned without waiting out the (long) timeout. */
	assert_int_equal(send_tag(h.p, 10, 1), 0);
	assert_int_equal(spw_consumer_poll_wait(h.c, test_collect, h.g, 10, 3600 * TEST_SEC), 1);
	assert_int_equal(h.g->r[0].hash, tag_hash(10, 1));
	case_close(&h);
}

struct thread_send {
	struct spw_topic *t;
	int64_t delay_ns;
	int64_t result;
};

static void *thread_send(void *arg)
{
	struct thread_send *ts = arg;
	struct spw_producer *p = NULL;

	ts->result = spw_producer_open(ts->t, &p);
	if (ts->result == 0) {
		test_sleep_ns(ts->delay_ns);
		ts->result = send_tag(p, 77, 700);
		spw_producer_close(p);
	}
	return NULL;
}

/* timeout_ns: the poll_wait timeout; long, so a return of 0 is a failure. */
static void poll_wait_woken_by_thread(struct spw_topic *t, struct spw_consumer *c,
				      int64_t timeout_ns)
{
	struct thread_send ts = { .t = t, .delay_ns = 100 * TEST_MS, .result = -1 };
	struct test_got *g = test_got_new();
	pthread_t th;
	int r;

	assert_int_equal(pthread_create(&th, NULL, thread_send, &ts), 0);
	r = spw_consumer_poll_wait(c, test_collect, g, 10, timeout_ns);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(ts.result, 0);
	assert_int_equal(r, 1);
	assert_int_equal(g->r[0].position, 0);
	assert_int_equal(g->r[0].len, 77);
	assert_int_equal(g->r[0].hash, tag_hash(77, 700));
	free(g);
}

static void poll_wait_is_woken_by_a_send_from_another_thread(void **state)
{
	struct spw_topic *t = topic_64k("wake_thread");
	struct spw_consumer *c = NULL;

	(void)state;
	assert_int_equal(spw_consumer_open(t, SPW_FROM_LATEST, 0, &c), 0);
	poll_wait_woken_by_thread(t, c, 3600 * TEST_SEC);
	spw_consumer_close(c);
	topic_end(t, "wake_thread");
}

static void poll_wait_forever_returns_when_a_record_comes(void **state)
{
	struct spw_topic *t = topic_64k("wake_forever");
	struct spw_consumer *c = NULL;

	(void)state;
	assert_int_equal(spw_consumer_open(t, SPW_FROM_LATEST, 0, &c), 0);
	poll_wait_woken_by_thread(t, c, -1);
	spw_consumer_close(c);
	topic_end(t, "wake_forever");
}

static void poll_wait_on_a_readonly_topic_sees_a_send(void **state)
{
	struct spw_topic *t = topic_64k("wake_ro");
	struct spw_topic *ro = NULL;
	struct spw_consumer *c = NULL;

	(void)state;
	assert_int_equal(spw_topic_open(test_group_dir, "wake_ro", SPW_OPEN_RDONLY, &ro), 0);
	assert_int_equal(spw_consumer_open(ro, SPW_FROM_LATEST, 0, &c), 0);
	poll_wait_woken_by_thread(t, c, 3600 * TEST_SEC);
	spw_consumer_close(c);
	spw_topic_close(ro);
	topic_end(t, "wake_ro");
}

static void poll_wait_is_woken_by_a_send_from_another_process(void **state)
{
	struct spw_topic *t = topic_64k("wake_proc");
	struct spw_consumer *c = NULL;
	struct test_got *g = test_got_new();
	struct child_send *cs = test_shared_alloc(sizeof(*cs));
	pid_t pid;
	int r;

	(void)state;
	assert_int_equal(spw_consumer_open(t, SPW_FROM_LATEST, 0, &c), 0);
	cs->name = "wake_proc";
	cs->len = 500;
	cs->tag = 800;
	cs->delay_ns = 100 * TEST_MS;
	atomic_init(&cs->result, -1);
	pid = test_fork(child_send, cs);
	r = spw_consumer_poll_wait(c, test_collect, g, 10, 3600 * TEST_SEC);
	assert_int_equal(test_wait(pid, 30 * TEST_SEC), 0);
	assert_int_equal(r, 1);
	assert_int_equal(atomic_load(&cs->result), 0);
	assert_int_equal(g->r[0].len, 500);
	assert_int_equal(g->r[0].hash, tag_hash(500, 800));
	test_shared_free(cs, sizeof(*cs));
	free(g);
	spw_consumer_close(c);
	topic_end(t, "wake_proc");
}

/* S5 / I8: producers commit with a plain store and no fence; a sleeping
 * consumer's membarrier must make every commit either seen by its re-check
 * or answered by a wake. Thousands of sleep / commit races across
 * processes: no sleep may run out its 100 ms safety slice with a record
 * waiting (the library counts those as missed wake-ups). */
extern _Atomic uint64_t ring_missed_wakes;

struct racer {
	const char *name;
	uint32_t n;
	uint64_t seed;
};

static int race_sender(void *arg)
{
	struct racer *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint64_t rng = x->seed;

	TEST_CHECK(spw_topic_open(test_group_dir, x->name, 0, &t) == 0, "open");
	TEST_CHECK(spw_producer_open(t, &p) == 0, "producer");
	for (uint32_t i = 0; i < x->n; i++) {
		/* Gaps of 0-200 us: the consumer spins 50 us, then sleeps. */
		int64_t until = test_now_ns() + (int64_t)(test_splitmix64(&rng) % 200000);

		while (test_now_ns() < until)
			;
		TEST_CHECK(spw_producer_send_wait(p, &i, sizeof(i), 10 * TEST_SEC) >= 0, "send %u", i);
	}
	spw_producer_close(p);
	spw_topic_close(t);
	return 0;
}

static int count_in_order(void *arg, const struct spw_record *r)
{
	uint32_t *next = arg, v;

	memcpy(&v, r->data, sizeof(v));
	if (v != *next)
		fail_msg("record %u where %u was expected", v, *next);
	(*next)++;
	return 0;
}

static void no_wake_up_is_lost_between_a_commit_and_a_sleeper(void **state)
{
	struct spw_topic *t = topic_64k("race");
	struct spw_consumer *c = NULL;
	struct racer *x = test_shared_alloc(sizeof(*x));
	uint64_t missed0 = atomic_load(&ring_missed_wakes);
	uint32_t next = 0;
	pid_t pid;

	(void)state;
	x->name = "race";
	x->n = (uint32_t)test_scaled(4000, 1500, 1500);
	x->seed = test_seed("wake_race");
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	pid = test_fork(race_sender, x);
	while (next < x->n) {
		int r = spw_consumer_poll_wait(c, count_in_order, &next, 64, 30 * TEST_SEC);

		assert_true(r > 0);
		assert_int_equal(spwd_reclaim(t, spw_consumer_position(c)), 0);
	}
	assert_int_equal(test_wait(pid, 30 * TEST_SEC), 0);
	assert_int_equal(atomic_load(&ring_missed_wakes) - missed0, 0);
	spw_consumer_close(c);
	test_shared_free(x, sizeof(*x));
	topic_end(t, "race");
}

/* Several producer processes blocked at once on a full ring all get their
 * turn as the daemon frees room one record at a time. */
static void every_blocked_producer_process_gets_room(void **state)
{
	enum { KIDS = 3 };
	struct ring_case h = case_open("bw_many");
	struct child_send *cs = test_shared_alloc(KIDS * sizeof(*cs));
	uint64_t seen = 0;
	pid_t pid[KIDS];

	(void)state;
	fill_64k(h.p, 0);
	for (int k = 0; k < KIDS; k++) {
		cs[k].name = "bw_many";
		cs[k].len = 1008;
		cs[k].tag = 900 + (uint64_t)k;
		cs[k].blocking = 1;
		atomic_init(&cs[k].result, -1);
		pid[k] = test_fork(child_send, &cs[k]);
	}
	for (int k = 0; k < KIDS; k++)
		wait_started(&cs[k].started);
	test_sleep_ns(50 * TEST_MS);
	assert_int_equal(tail_of(h.t), 65536);
	for (int k = 0; k < KIDS; k++)
		free_one_record(h.t, h.c, h.g);
	for (int k = 0; k < KIDS; k++)
		assert_int_equal(test_wait(pid[k], 30 * TEST_SEC), 0);
	assert_int_equal(spw_consumer_poll(h.c, test_collect, h.g, 100), 64);
	for (int i = 64; i < 64 + KIDS; i++) {
		int k;

		assert_int_equal(h.g->r[i].position, 65536 + (i - 64) * 1024);
		for (k = 0; k < KIDS; k++)
			if (h.g->r[i].hash == tag_hash(1008, 900 + (uint64_t)k))
				break;
		assert_true(k < KIDS);
		assert_int_equal(atomic_load(&cs[k].result), h.g->r[i].position);
		seen |= 1u << k;
	}
	assert_int_equal(seen, (1u << KIDS) - 1);
	test_shared_free(cs, KIDS * sizeof(*cs));
	case_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(send_wait_blocks_until_a_reclaim_by_another_process),
		cmocka_unit_test(claim_wait_blocks_until_a_reclaim_by_another_thread),
		cmocka_unit_test(send_wait_and_claim_wait_time_out_on_a_full_ring),
		cmocka_unit_test(poll_wait_times_out_returning_zero),
		cmocka_unit_test(wait_ack_times_out_without_a_daemon),
		cmocka_unit_test(poll_wait_is_woken_by_a_send_from_another_thread),
		cmocka_unit_test(poll_wait_forever_returns_when_a_record_comes),
		cmocka_unit_test(poll_wait_on_a_readonly_topic_sees_a_send),
		cmocka_unit_test(waits_on_a_deleted_topic_end_with_eidrm),
		cmocka_unit_test(producers_of_a_topic_deleted_get_eidrm_at_once),
		cmocka_unit_test(poll_wait_is_woken_by_a_send_from_another_process),
		cmocka_unit_test(every_blocked_producer_process_gets_room),
		cmocka_unit_test(no_wake_up_is_lost_between_a_commit_and_a_sleeper),
	};

	return cmocka_run_group_tests(tests, wait_group_setup, wait_group_teardown);
}
