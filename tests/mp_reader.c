/* SPDX-License-Identifier: MIT */
/*
 * mp_reader.c - readers (spill/reader.c) in their own processes against
 * producer processes and a running spillwayd: 256 KiB ring, 1 MiB segments,
 * 3 producers sending records of random sizes 0..2048 that carry their
 * producer id and sequence number (support_reader.h, "Record identity").
 *
 *  - A consumer that stops itself (SIGSTOP, between polls) while the
 *    producers write 50 times the ring: once continued it reads the gap from
 *    the segment files, catches up, goes live, and ends live (R2).
 *  - A slow live consumer, sleeping in its callback every 64 records, that
 *    the producers lap again and again: the reader falls back to the
 *    segments at the first record not delivered and returns to the ring
 *    (R1, R2).
 * Both check every record exactly once, in each producer's order, with
 * every payload byte. Seeded: the seed is printed; SPW_TEST_SEED reruns it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "support_reader.h"

#define RING_BYTES (256ull << 10)
#define SEG_BYTES (1ull << 20)
#define MAX_LEN 2048u
#define NPROD 3u
#define PAUSE_AFTER 64u      /* records the first consumer reads before it stops */
#define SLOW_EVERY 64u       /* the slow consumer sleeps every SLOW_EVERY records */
#define SLOW_SLEEP_NS (3 * TEST_MS)
#define SLOW_BURST 128u      /* records per producer burst */
#define SLOW_QUIET_NS (30 * TEST_MS)

enum mode { PAUSED, SLOW };

struct shared {
	/* set before the children start */
	enum mode mode;
	uint64_t seed;
	uint64_t phase1_bytes, phase2_bytes; /* per producer */
	int64_t deadline_ns;                 /* CLOCK_MONOTONIC */
	char shm[512], data[512], topic[64];

	/* published while running */
	_Atomic uint32_t consumer_ready, gate1, gate2;
	_Atomic uint32_t phase1_done, producers_done;
	_Atomic int failed;
	_Atomic int64_t paused_at; /* reader position when it stopped itself */

	/* each written by its own process only */
	uint64_t sent[NPROD];
	uint64_t got[NPROD];
	uint64_t from_disk, from_ring, disk_after_resume, live_after_resume, laps, sleeps;
	int live_at_end;
	char err[512];
};

static struct rdt_env env;
static struct shared *sh;

/* ---------------------------------------------------------------------------
 * Children
 */
#define child_fail(...) rdt_fail_once(&sh->failed, sh->err, sizeof(sh->err), "mp_reader", __VA_ARGS__)

static bool expired(void)
{
	return test_now_ns() > sh->deadline_ns || atomic_load(&sh->failed);
}

static int wait_flag(_Atomic uint32_t *flag, uint32_t value, const char *what)
{
	while (atomic_load(flag) < value) {
		if (expired()) {
			if (!atomic_load(&sh->failed))
				child_fail("timed out waiting for %s", what);
			return -1;
		}
		test_sleep_ns(TEST_MS);
	}
	return 0;
}

struct producer {
	struct spw_producer *p;
	uint32_t id;
	uint64_t rng, seq;
	uint8_t buf[MAX_LEN];
};

/* Send records until `bytes` more are in the log; pace_every > 0 naps
 * pace_ns every pace_every records. */
static int produce(struct producer *pr, uint64_t bytes, uint32_t pace_every, int64_t pace_ns)
{
	uint64_t done = 0;

	while (done < bytes) {
		uint32_t len = rdt_id_len(&pr->rng, pr->id, NPROD, MAX_LEN);
		int64_t pos;

		test_id_make(pr->buf, len, sh->seed, pr->id, pr->seq);
		pos = spw_producer_send_wait(pr->p, pr->buf, len, 10 * TEST_SEC);
		if (pos < 0) {
			child_fail("producer %u: send_wait of seq %" PRIu64 ": %s", pr->id, pr->seq,
				   strerror((int)-pos));
			return -1;
		}
		pr->seq++;
		done += rdt_span(len);
		if (pace_every && pr->seq % pace_every == 0)
			test_sleep_ns(pace_ns);
		if ((pr->seq & 255) == 0 && expired())
			return -1;
	}
	return 0;
}

static int producer_main(void *arg)
{
	struct producer *pr = calloc(1, sizeof(*pr));
	struct spw_topic *t = NULL;
	int rc = -1;

	if (!pr)
		return -1;
	pr->id = (uint32_t)(uintptr_t)arg;
	pr->rng = rdt_len_rng(sh->seed, pr->id);
	if (spw_topic_open(sh->shm, sh->topic, 0, &t) || spw_producer_open(t, &pr->p)) {
		child_fail("producer %u: cannot open the topic", pr->id);
		goto out;
	}
	if (wait_flag(&sh->consumer_ready, 1, "the consumer"))
		goto out;
	if (sh->mode == PAUSED) {
		if (produce(pr, 64u << 10, 0, 0) || wait_flag(&sh->gate1, 1, "gate 1") ||
		    produce(pr, sh->phase1_bytes, 0, 0))
			goto out;
		atomic_fetch_add(&sh->phase1_done, 1);
		/* Slow enough that the consumer catches up meanwhile and gets
		 * the rest live. */
		if (wait_flag(&sh->gate2, 1, "gate 2") ||
		    produce(pr, sh->phase2_bytes, 8, 5 * TEST_MS))
			goto out;
	} else if (produce(pr, sh->phase1_bytes, SLOW_BURST, SLOW_QUIET_NS)) {
		/* Bursts of 3 x SLOW_BURST records (~1.5 rings) lap the sleeping
		 * consumer; in the quiet time between it catches up and goes
		 * live again. */
		goto out;
	}
	rc = 0;
out:
	sh->sent[pr->id] = pr->seq;
	atomic_fetch_add(&sh->producers_done, 1);
	spw_producer_close(pr->p);
	spw_topic_close(t);
	free(pr);
	return rc;
}

struct consumer {
	struct spw_reader *r;
	struct rdt_expect x;
	uint64_t n;
	bool was_live, resumed, bad;
	char err[400];
};

static int consume_cb(void *arg, const struct spw_record *rec)
{
	struct consumer *c = arg;
	bool live = spw_reader_is_live(c->r);
	uint32_t p;
	uint64_t seq;

	if (rdt_expect_check(&c->x, rec->data, rec->len, &p, &seq, c->err, sizeof(c->err))) {
		c->bad = true;
		snprintf(c->err + strlen(c->err), sizeof(c->err) - strlen(c->err),
			 "; at position %" PRId64 ", record %" PRIu64 " of this reader, %s",
			 rec->position, c->n, live ? "live" : "from disk");
		return 1;
	}
	sh->got[p]++;
	c->n++;
	if (live) {
		sh->from_ring++;
		if (c->resumed)
			sh->live_after_resume++;
	} else {
		sh->from_disk++;
		if (c->resumed)
			sh->disk_after_resume++;
		if (c->was_live)
			sh->laps++; /* live -> disk: lapped (R2) */
	}
	c->was_live = live;
	/* The slow consumer holds the record while it sleeps: the producers
	 * lap it meanwhile. */
	if (sh->mode == SLOW && c->n % SLOW_EVERY == 0) {
		sh->sleeps++;
		test_sleep_ns(SLOW_SLEEP_NS);
	}
	return 0;
}

static bool all_got(void)
{
	if (atomic_load(&sh->producers_done) < NPROD)
		return false;
	for (uint32_t p = 0; p < NPROD; p++)
		if (sh->got[p] < sh->sent[p])
			return false;
	return true;
}

static int consumer_main(void *arg)
{
	struct spw_reader_opts o = { 0 };
	struct consumer *c = calloc(1, sizeof(*c));
	int rc = -1, n;

	(void)arg;
	if (!c)
		return -1;
	o.shm_dir = sh->shm;
	o.data_dir = sh->data;
	o.start = SPW_START_EARLIEST;
	n = spw_reader_open(sh->topic, &o, &c->r);
	if (n) {
		child_fail("consumer: spw_reader_open: %s", strerror(-n));
		goto out;
	}
	rdt_expect_init(&c->x, sh->seed, NPROD, MAX_LEN);
	atomic_store(&sh->consumer_ready, 1);
	while (!all_got()) {
		if (expired()) {
			if (!atomic_load(&sh->failed))
				child_fail("consumer: stuck after %" PRIu64 " records at position %" PRId64
					   " (%s)",
					   c->n, spw_reader_position(c->r),
					   spw_reader_is_live(c->r) ? "live" : "on disk");
			goto out;
		}
		n = spw_reader_poll_wait(c->r, consume_cb, c, 64, 100 * TEST_MS);
		if (c->bad) {
			child_fail("consumer: %s", c->err);
			goto out;
		}
		if (n < 0) {
			char ef[1024] = "";
			int64_t ep = -1;

			spw_reader_error(c->r, ef, sizeof(ef), &ep);
			child_fail("consumer: poll at %" PRId64 ": %s (file \"%s\", position %" PRId64
				   ")",
				   spw_reader_position(c->r), strerror(-n), ef, ep);
			goto out;
		}
		if (sh->mode == PAUSED && !c->resumed && c->n >= PAUSE_AFTER) {
			/* Between polls, never inside a callback. */
			atomic_store(&sh->paused_at, spw_reader_position(c->r));
			raise(SIGSTOP);
			c->resumed = true;
		}
	}
	/* Nothing more: it must be live now (R2) and stay quiet. */
	n = spw_reader_poll_wait(c->r, consume_cb, c, 64, 50 * TEST_MS);
	if (n != 0 || c->bad) {
		child_fail("consumer: a record after the last one sent (poll %d): %s", n, c->err);
		goto out;
	}
	sh->live_at_end = spw_reader_is_live(c->r);
	rc = 0;
out:
	spw_reader_close(c->r);
	free(c);
	return rc;
}

/* ---------------------------------------------------------------------------
 * The runner
 */
static int setup(void **state)
{
	*state = &env; /* for rdt_group_teardown */
	if (!test_daemon_path()) {
		fprintf(stderr, "mp_reader: no daemon (SPW_DAEMON unset, no build/spillwayd)\n");
		return 0;
	}
	if (rdt_env_setup(&env) || rdt_daemon_start(&env))
		return -1;
	sh = rdt_env_shared(&env, sizeof(*sh));
	return 0;
}

/* A fresh topic per case (each consumer starts at the earliest record). */
static void init_shared(enum mode mode, const char *topic, const char *what)
{
	assert_int_equal(rdt_topic_make(&env, topic, RING_BYTES, SEG_BYTES, 20), 0);
	assert_int_equal(rdt_daemon_wait_attached(&env, topic, 10 * TEST_SEC), 0);
	memset(sh, 0, sizeof(*sh));
	snprintf(sh->topic, sizeof(sh->topic), "%s", topic);
	sh->mode = mode;
	sh->seed = test_seed(what);
	sh->phase1_bytes = test_scaled(50, 20, 20) * RING_BYTES / NPROD;
	sh->phase2_bytes = 4 * RING_BYTES / NPROD;
	sh->deadline_ns = test_now_ns() + 50 * TEST_SEC;
	snprintf(sh->shm, sizeof(sh->shm), "%s", env.shm);
	snprintf(sh->data, sizeof(sh->data), "%s", env.data);
}

static void child_died(int index, int status)
{
	if (!atomic_load(&sh->failed))
		child_fail("%s %d died with status %d", index == NPROD ? "the consumer" : "producer",
			   index, status);
}

/* Reap every child (one dying stops the others), then report the first
 * failure: a child's own message names what went wrong. */
static void wait_children(pid_t consumer, pid_t *producers)
{
	pid_t pids[NPROD + 1];
	int st[NPROD + 1];

	for (uint32_t p = 0; p < NPROD; p++)
		pids[p] = producers[p];
	pids[NPROD] = consumer;
	rdt_wait_all(pids, NPROD + 1, st, 58 * TEST_SEC, child_died);
	if (atomic_load(&sh->failed))
		fail_msg("%s (seed %#" PRIx64 ")", sh->err, sh->seed);
	for (uint32_t k = 0; k <= NPROD; k++)
		assert_int_equal(st[k], 0);
}

static void check_counts(void)
{
	uint64_t total = 0;

	assert_int_equal(atomic_load(&sh->failed), 0);
	for (uint32_t p = 0; p < NPROD; p++) {
		if (sh->got[p] != sh->sent[p])
			fail_msg("producer %u sent %" PRIu64 " records, the consumer got %" PRIu64
				 " (seed %#" PRIx64 ")",
				 p, sh->sent[p], sh->got[p], sh->seed);
		total += sh->sent[p];
	}
	printf("[ info     ] %" PRIu64 " records: %" PRIu64 " from disk (%" PRIu64
	       " after the pause), %" PRIu64 " live, %" PRIu64 " laps, %" PRIu64 " sleeps\n",
	       total, sh->from_disk, sh->disk_after_resume, sh->from_ring, sh->laps, sh->sleeps);
	if (!sh->live_at_end)
		fail_msg("the consumer got every record but is not live at the end (R2)");
}

/* The start of a case: skipped without a daemon, the shared state set up
 * (init_shared), the consumer and the NPROD producers forked. Returns the
 * consumer's pid. */
static pid_t case_start(enum mode mode, const char *topic, const char *what,
			pid_t producers[NPROD])
{
	pid_t consumer;

	if (!sh)
		skip();
	init_shared(mode, topic, what);
	consumer = rdt_fork(consumer_main, NULL);
	for (uint32_t p = 0; p < NPROD; p++)
		producers[p] = rdt_fork(producer_main, (void *)(uintptr_t)p);
	return consumer;
}

static void paused_consumer_resumes_from_disk_then_live(void **state)
{
	pid_t consumer, producers[NPROD];
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	int64_t start = test_now_ns();

	(void)state;
	consumer = case_start(PAUSED, "paused", "mp_reader paused", producers);
	if (test_wait_stopped(consumer, 20 * TEST_SEC))
		fail_msg("the consumer did not stop itself: %s", sh->err);
	atomic_store(&sh->gate1, 1);
	while (atomic_load(&sh->phase1_done) < NPROD) {
		if (atomic_load(&sh->failed) || test_now_ns() > sh->deadline_ns)
			fail_msg("phase 1 did not end: %s", sh->err);
		test_sleep_ns(2 * TEST_MS);
	}
	/* The gap is far behind the ring: the reader must take it from disk. */
	assert_int_equal(spw_topic_open(env.shm, sh->topic, SPW_OPEN_RDONLY, &t), 0);
	rdt_keep_topic(t);
	assert_int_equal(spw_topic_info(t, &in), 0);
	rdt_drop(t);
	assert_true(in.reclaimed > (uint64_t)atomic_load(&sh->paused_at) + 4 * RING_BYTES);
	kill(consumer, SIGCONT);
	atomic_store(&sh->gate2, 1);
	wait_children(consumer, producers);
	check_counts();
	/* R2: from the segments, then live (the producers still writing). */
	assert_true(sh->disk_after_resume > 1000);
	assert_true(sh->live_after_resume > 0);
	printf("[ info     ] %.2f s\n", (double)(test_now_ns() - start) / TEST_SEC);
}

static void slow_consumer_lapped_while_live_gets_every_record_once(void **state)
{
	pid_t consumer, producers[NPROD];
	int64_t start = test_now_ns();

	(void)state;
	consumer = case_start(SLOW, "slow", "mp_reader slow", producers);
	wait_children(consumer, producers);
	check_counts();
	/* The case is only worth something when the reader was lapped. */
	assert_true(sh->laps >= 3);
	printf("[ info     ] %.2f s\n", (double)(test_now_ns() - start) / TEST_SEC);
}

RDT_MAIN(setup, rdt_group_teardown,
	 RDT_TEST(paused_consumer_resumes_from_disk_then_live),
	 RDT_TEST(slow_consumer_lapped_while_live_gets_every_record_once))
