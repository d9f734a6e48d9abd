/* SPDX-License-Identifier: MIT */
/*
 * ring_liveness.c - what the kernel says about who is alive
 * (ring/ring_layout.h I2, I7, I8; ring/locks.c):
 *  - a producer in another PID namespace is seen alive while it lives (its
 *    own pid there is 1: no PID is trusted, the OFD lock decides), and its
 *    claim is aborted once it dies; the kernel names its real pid;
 *  - waiter counts left by a consumer or producer killed with -9 while
 *    sleeping are reset by the daemon's repair (spwd_heartbeat), after
 *    which commits stop waking anyone (B4); a live sleeper's count is kept;
 *  - the slot limit is per topic and reported as -EUSERS;
 *  - a consumer's seek inside a record is refused (-EINVAL), never accepted
 *    to poll 0 forever.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../ring/ring_internal.h"
#include "support.h"

#define RING (64u << 10)

static struct spw_topic *topic_new(const char *name, uint32_t max_producers)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_producers = max_producers };
	struct spw_topic *t = test_topic_new(name, &cfg);

	assert_non_null(t);
	return t;
}

struct shared {
	char name[64];
	_Atomic int ready;
	_Atomic int inner_pid;   /* getpid() inside the new namespace */
	_Atomic int outer_pid;   /* the same process seen from ours */
	_Atomic int64_t claim;
};

/* --- PID namespace --------------------------------------------------------- */

static int ns_producer(struct shared *x)
{
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_claim c;

	TEST_CHECK(test_open_producer(test_group_dir, x->name, &t, &p) == 0, "ns producer");
	TEST_CHECK(spw_producer_send(p, "before", 6) == 0, "send");
	TEST_CHECK(spw_producer_claim(p, 100, &c) == 0, "claim");
	atomic_store(&x->inner_pid, getpid());
	atomic_store(&x->claim, c.position);
	atomic_store(&x->ready, 1);
	for (;;)
		pause();
}

static int ns_parent(void *arg)
{
	struct shared *x = arg;
	pid_t kid;
	int st;

	TEST_CHECK(unshare(CLONE_NEWPID) == 0, "unshare(CLONE_NEWPID): %s", strerror(errno));
	kid = fork(); /* pid 1 of the new namespace */
	TEST_CHECK(kid >= 0, "fork");
	if (kid == 0)
		_exit(ns_producer(x) ? 1 : 0);
	atomic_store(&x->outer_pid, kid);
	while (waitpid(kid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static void a_producer_in_another_pid_namespace_is_alive_until_it_dies(void **state)
{
	struct spw_topic *t = topic_new("pidns", 0);
	struct shared *x = test_shared_alloc(sizeof(*x));
	struct spwd_stall st;
	struct spw_producer_info pi[4];
	pid_t outer;
	int64_t deadline = test_now_ns() + 30 * TEST_SEC;

	(void)state;
	snprintf(x->name, sizeof(x->name), "pidns");
	outer = test_fork(ns_parent, x);
	while (!atomic_load(&x->ready)) {
		assert_true(test_now_ns() < deadline);
		test_sleep_ns(TEST_MS);
	}
	assert_int_equal(atomic_load(&x->inner_pid), 1); /* its pid means nothing here */
	assert_int_equal(atomic_load(&x->claim), 24);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(spwd_resolve(t, 24, &st), SPWD_RESOLVE_LIVE);
		assert_int_equal(st.pid, 1);
		test_sleep_ns(10 * TEST_MS);
	}
	assert_int_equal(spw_topic_producers(t, pi, 4), 1);
	assert_true(pi[0].alive && pi[0].claiming);
	/* The kernel names the holder with its pid in our namespace. */
	assert_int_equal(ring_lock_owner_pid(t, ring_slot_off(pi[0].slot)),
			 (uint32_t)atomic_load(&x->outer_pid));
	/* Its death (the namespace's init: the whole namespace goes). */
	assert_int_equal(kill(atomic_load(&x->outer_pid), SIGKILL), 0);
	assert_int_equal(test_wait(outer, 30 * TEST_SEC), 0);
	assert_int_equal(spwd_resolve(t, 24, &st), SPWD_RESOLVE_ABORTED);
	assert_int_equal(st.span, test_span(100));
	assert_int_equal(spw_topic_producers(t, pi, 4), 0);
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
}

/* --- waiter counts (B4) ------------------------------------------------------ */

static int nothing(void *arg, const struct spw_record *r)
{
	(void)arg;
	(void)r;
	return 0;
}

static int sleeping_consumer(void *arg)
{
	struct shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_consumer *c = NULL;

	TEST_CHECK(spw_topic_open(test_group_dir, x->name, 0, &t) == 0, "open");
	TEST_CHECK(spw_consumer_open(t, SPW_FROM_LATEST, 0, &c) == 0, "consumer");
	atomic_store(&x->ready, 1);
	spw_consumer_poll_wait(c, nothing, NULL, 1, 60 * TEST_SEC);
	return 1;
}

static int sleeping_producer(void *arg)
{
	struct shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	static uint8_t buf[4000];

	TEST_CHECK(test_open_producer(test_group_dir, x->name, &t, &p) == 0, "sleeping producer");
	while (spw_producer_send(p, buf, sizeof(buf)) >= 0)
		; /* fill the ring: no daemon reclaims */
	atomic_store(&x->ready, 1);
	spw_producer_send_wait(p, buf, sizeof(buf), 60 * TEST_SEC);
	return 1;
}

static void wait_count(_Atomic uint32_t *count, uint32_t n)
{
	int64_t deadline = test_now_ns() + 30 * TEST_SEC;

	while (atomic_load(count) != n) {
		assert_true(test_now_ns() < deadline);
		test_sleep_ns(TEST_MS);
	}
}

/* A commit went down the wake path iff it bumped cons_wake (I8). */
static uint32_t wakes_for_sends(struct spw_topic *t, struct spw_producer *p, int n)
{
	uint32_t before = atomic_load(&t->hdr->cons_wake);

	for (int i = 0; i < n; i++) {
		assert_true(spw_producer_send(p, "abcd", 4) >= 0);
		assert_int_equal(spwd_reclaim(t, (int64_t)atomic_load(&t->hdr->tail)), 0);
	}
	return atomic_load(&t->hdr->cons_wake) - before;
}

static void a_consumer_killed_asleep_leaves_no_waiter_behind(void **state)
{
	struct spw_topic *t = topic_new("waiters", 0);
	struct shared *x = test_shared_alloc(sizeof(*x));
	struct spw_producer *p = NULL;
	pid_t a, b;

	(void)state;
	snprintf(x->name, sizeof(x->name), "waiters");
	assert_int_equal(spw_producer_open(t, &p), 0);
	a = test_fork(sleeping_consumer, x);
	b = test_fork(sleeping_consumer, x);
	wait_count(&t->hdr->cons_waiters, 2);
	/* A live sleeper's count survives the repair; a dead one's does not. */
	assert_int_equal(kill(a, SIGKILL), 0);
	assert_int_equal(test_wait(a, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(spwd_heartbeat(t, 1), 0);
	assert_int_equal(atomic_load(&t->hdr->cons_waiters), 2); /* b holds the lock */
	assert_int_equal(kill(b, SIGKILL), 0);
	assert_int_equal(test_wait(b, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(atomic_load(&t->hdr->cons_waiters), 2); /* both leaked */
	assert_true(wakes_for_sends(t, p, 10) >= 10);            /* every commit wakes */
	assert_int_equal(spwd_heartbeat(t, 1), 0);           /* the daemon's repair */
	assert_int_equal(atomic_load(&t->hdr->cons_waiters), 0);
	assert_int_equal(wakes_for_sends(t, p, 1000), 0);         /* nobody waits: no wake */
	spw_producer_close(p);
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
}

static void a_producer_killed_asleep_on_a_full_ring_leaves_no_waiter_behind(void **state)
{
	struct spw_topic *t = topic_new("pwaiters", 0);
	struct shared *x = test_shared_alloc(sizeof(*x));
	struct spwd_scan_result sc;
	pid_t a;

	(void)state;
	snprintf(x->name, sizeof(x->name), "pwaiters");
	a = test_fork(sleeping_producer, x);
	wait_count(&t->hdr->prod_waiters, 1);
	assert_int_equal(spwd_heartbeat(t, 1), 0);
	assert_int_equal(atomic_load(&t->hdr->prod_waiters), 1); /* alive: kept */
	assert_int_equal(kill(a, SIGKILL), 0);
	assert_int_equal(test_wait(a, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(atomic_load(&t->hdr->prod_waiters), 1);
	assert_int_equal(spwd_heartbeat(t, 1), 0);
	assert_int_equal(atomic_load(&t->hdr->prod_waiters), 0);
	/* It held no claim while asleep: everything up to the tail is
	 * committed, nothing is stuck. */
	assert_int_equal(spwd_scan(t, 0, RING, &sc), (int64_t)atomic_load(&t->hdr->tail));
	assert_int_equal(sc.stuck, -1);
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
}

/* --- slots and seek ---------------------------------------------------------- */

static void the_producer_limit_is_per_topic(void **state)
{
	struct spw_topic *t = topic_new("limit3", 3);
	struct spw_producer *p[4];
	struct spw_topic_info in;
	struct spw_topic_config bad = { .ring_bytes = RING, .max_producers = 4097 };

	(void)state;
	assert_int_equal(spw_topic_info(t, &in), 0);
	assert_int_equal(in.max_producers, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spw_producer_open(t, &p[i]), 0);
	assert_int_equal(spw_producer_open(t, &p[3]), -EUSERS);
	spw_producer_close(p[1]);
	assert_int_equal(spw_producer_open(t, &p[1]), 0);
	for (int i = 0; i < 3; i++)
		spw_producer_close(p[i]);
	assert_int_equal(spw_topic_create(test_group_dir, "limit_bad", &bad), -EINVAL);
	spw_topic_close(t);
}

static void seek_inside_a_record_is_refused(void **state)
{
	struct spw_topic *t = topic_new("seek", 0);
	struct spw_producer *p = NULL;
	struct spw_consumer *c = NULL, *c2 = NULL;
	uint8_t zeros[200] = { 0 };
	struct spw_claim cl;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, zeros, sizeof(zeros)), 0);
	assert_int_equal(spw_producer_send(p, zeros, sizeof(zeros)), 216);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_consumer_seek(c, 216), 0);
	for (int64_t pos = 8; pos < 216; pos += 8)
		assert_int_equal(spw_consumer_seek(c, pos), -EINVAL); /* all-zero payload */
	assert_int_equal(spw_consumer_seek(c, 432), 0);          /* the tail */
	assert_int_equal(spw_consumer_seek(c, 440), -EINVAL);    /* past it */
	/* An open claim's position is a boundary; inside it is not. */
	assert_int_equal(spw_producer_claim(p, 100, &cl), 0);
	assert_int_equal(spw_consumer_seek(c, 432), 0);
	assert_int_equal(spw_consumer_seek(c, 440), -EINVAL);
	/* Past that open claim, a payload holding bytes that read as a header
	 * for their own position: refused by seek and by a reader's start,
	 * which walk over the claim (its slot says where it ends). The reader
	 * took it on trust past an uncommitted record, delivered a record never
	 * sent and then read nothing for ever (a review, 2026-12-05). */
	{
		struct spw_producer *p2 = NULL;
		struct spw_reader *r = NULL;
		struct spw_reader_opts o = { 0 };
		char data[1200];
		uint8_t pl[64] = { 0 };
		uint64_t at = 432 + 120 + 16 + 16; /* in the payload of the record after the claim */
		uint64_t fake = ring_word(RING_T_DATA, 8, at, t->ring_bytes);

		memcpy(pl + 16, &fake, sizeof(fake));
		assert_int_equal(spw_producer_open(t, &p2), 0);
		assert_int_equal(spw_producer_send(p2, pl, sizeof(pl)), 432 + 120);
		assert_int_equal(spw_producer_send(p2, "real", 4), 432 + 120 + 80);
		assert_int_equal(spw_consumer_seek(c, (int64_t)at), -EINVAL);
		assert_int_equal(spw_consumer_seek(c, 432 + 120), 0);
		snprintf(data, sizeof(data), "%s/no-log", test_group_dir);
		o.shm_dir = test_group_dir;
		o.data_dir = data;
		o.start = SPW_START_POSITION;
		o.position = (int64_t)at;
		assert_int_equal(spw_reader_open("seek", &o, &r), -EINVAL);
		assert_null(r);
		o.position = 432 + 120;
		assert_int_equal(spw_reader_open("seek", &o, &r), 0);
		spw_reader_close(r);
		spw_producer_close(p2);
	}
	assert_int_equal(spw_producer_abort(p, &cl), 0);
	/* A guess that lost its CAS, still in its CLAIMING slot, at the start
	 * of the winner's open claim: the walk stood on the guess's span and
	 * stepped over the honest record after the claim, refusing it (a
	 * review, 2026-12-05). Only a WON slot's span is ground to step on. */
	{
		struct spw_producer *gone = NULL, *p2 = NULL, *p3 = NULL;
		struct spw_claim won;
		uint32_t g;
		int64_t x;

		assert_int_equal(spw_producer_open(t, &gone), 0); /* a free slot, below p2's */
		assert_int_equal(spw_producer_open(t, &p2), 0);
		assert_int_equal(spw_producer_open(t, &p3), 0);
		g = (uint32_t)(gone->slot - t->slots);
		assert_true(g < (uint32_t)(p2->slot - t->slots));
		spw_producer_close(gone);
		assert_int_equal(spw_producer_claim(p2, 40, &won), 0);
		x = spw_producer_send(p3, "after the claim", 15);
		assert_int_equal(x, won.position + 56);
		atomic_store(&t->slots[g].end, (uint64_t)x + 64);
		atomic_store(&t->slots[g].claim, (uint64_t)won.position | RING_SLOT_CLAIMING);
		assert_int_equal(spw_consumer_seek(c, x), 0);
		assert_int_equal(ring_chain_lands(t, 0, (uint64_t)x), 1);
		atomic_store(&t->slots[g].claim, RING_SLOT_IDLE);
		assert_int_equal(spw_producer_abort(p2, &won), 0);
		spw_producer_close(p3);
		spw_producer_close(p2);
	}
	assert_int_equal(spw_consumer_open(t, SPW_FROM_POSITION, 16, &c2), -EINVAL);
	assert_null(c2);
	spw_consumer_close(c);
	spw_producer_close(p);
	spw_topic_close(t);
}

/* An exclusive producer is the only one while it lives (the kernel's lock
 * decides), writes the same records, and is settled like any other when it
 * dies with a claim open. */
static int exclusive_victim(void *arg)
{
	struct shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_claim c;

	TEST_CHECK(spw_topic_open(test_group_dir, x->name, 0, &t) == 0, "open");
	TEST_CHECK(spw_producer_open_flags(t, SPW_PRODUCER_EXCLUSIVE, &p) == 0, "exclusive open");
	TEST_CHECK(spw_producer_send(p, "first", 5) >= 0, "send");
	TEST_CHECK(spw_producer_claim(p, 100, &c) == 0, "claim");
	atomic_store(&x->claim, c.position);
	atomic_store(&x->ready, 1);
	for (;;)
		pause();
}

static void an_exclusive_producer_is_the_only_one(void **state)
{
	struct spw_topic *t = topic_new("exclusive", 0);
	struct spw_producer *a = NULL, *b = NULL, *e = NULL;
	struct spw_consumer *c = NULL;
	struct shared *x = test_shared_alloc(sizeof(*x));
	struct test_got *g = test_got_new();
	struct spwd_stall st;
	uint8_t buf[1000];
	int64_t deadline = test_now_ns() + 30 * TEST_SEC, pos = 0;
	pid_t v;
	int n = 0;

	(void)state;
	assert_int_equal(spw_producer_open_flags(t, 2, &e), -EINVAL);
	assert_int_equal(spw_producer_open(t, &a), 0);
	assert_int_equal(spw_producer_open_flags(t, SPW_PRODUCER_EXCLUSIVE, &e), -EBUSY);
	assert_int_equal(spw_producer_send(a, "shared", 6), 0);
	spw_producer_close(a);
	assert_int_equal(spw_producer_open_flags(t, SPW_PRODUCER_EXCLUSIVE, &e), 0);
	assert_int_equal(spw_producer_open(t, &b), -EBUSY);
	assert_int_equal(spw_producer_open_flags(t, SPW_PRODUCER_EXCLUSIVE, &b), -EBUSY);
	/* Records across several laps, with the padding at each end: all
	 * arrive, in order, intact. */
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	for (int i = 0; i <= 600; i++) {
		uint32_t len = 100 + (uint32_t)i % 500;

		memset(buf, i, sizeof(buf));
		do {
			pos = i < 600 ? spw_producer_send(e, buf, len) : -EAGAIN;
			if (pos == -EAGAIN) {
				g->n = 0;
				spw_consumer_poll(c, test_collect, g, 1000);
				for (int k = 0; k < g->n; k++, n++) {
					uint8_t want[1000];
					uint32_t wl = n == 0 ? 6 : 100 + (uint32_t)(n - 1) % 500;

					if (n == 0)
						memcpy(want, "shared", 6);
					else
						memset(want, n - 1, wl);
					assert_int_equal(g->r[k].len, wl);
					assert_int_equal(g->r[k].hash, test_hash(want, wl));
				}
				assert_int_equal(spwd_reclaim(t, spw_consumer_position(c)), 0);
			}
		} while (pos == -EAGAIN && i < 600);
		assert_true(i == 600 || pos > 0);
	}
	assert_int_equal(n, 601);
	assert_true(atomic_load(&t->hdr->tail) > 2 * RING);
	spw_producer_close(e);
	assert_int_equal(spw_producer_open(t, &a), 0); /* free again */
	spw_producer_close(a);
	spw_consumer_close(c);
	/* Killed with a claim open: the same settlement as any producer. */
	snprintf(x->name, sizeof(x->name), "exclusive");
	v = test_fork(exclusive_victim, x);
	while (!atomic_load(&x->ready)) {
		assert_true(test_now_ns() < deadline);
		test_sleep_ns(TEST_MS);
	}
	assert_int_equal(spwd_resolve(t, atomic_load(&x->claim), &st), SPWD_RESOLVE_LIVE);
	assert_int_equal(kill(v, SIGKILL), 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(spwd_resolve(t, atomic_load(&x->claim), &st), SPWD_RESOLVE_ABORTED);
	assert_int_equal(st.span, test_span(100));
	assert_int_equal(spw_producer_open(t, &a), 0); /* its lock died with it */
	spw_producer_close(a);
	free(g);
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
}

/* A ring of format version 1 gets a clear -EPROTO, not a misread. */
static void a_ring_of_another_format_version_is_refused(void **state)
{
	struct spw_topic *t = topic_new("v1", 0);
	struct spw_topic *t2 = NULL;

	(void)state;
	t->hdr->version = 1;
	assert_int_equal(spw_topic_open(test_group_dir, "v1", 0, &t2), -EPROTO);
	t->hdr->version = RING_VERSION;
	assert_int_equal(spw_topic_open(test_group_dir, "v1", 0, &t2), 0);
	spw_topic_close(t2);
	spw_topic_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_producer_in_another_pid_namespace_is_alive_until_it_dies),
		cmocka_unit_test(a_consumer_killed_asleep_leaves_no_waiter_behind),
		cmocka_unit_test(a_producer_killed_asleep_on_a_full_ring_leaves_no_waiter_behind),
		cmocka_unit_test(the_producer_limit_is_per_topic),
		cmocka_unit_test(seek_inside_a_record_is_refused),
		cmocka_unit_test(a_ring_of_another_format_version_is_refused),
		cmocka_unit_test(an_exclusive_producer_is_the_only_one),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
