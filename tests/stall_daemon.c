/* SPDX-License-Identifier: MIT */
/*
 * stall_daemon.c - the stalled producer, end to end (ring/ring_layout.h I2,
 * I7; spill/writer.c stalled()). With spillwayd spilling, two producers
 * write self-checking records while a third stops itself (SIGSTOP, what a
 * debugger, a swap storm or a frozen cgroup do) for 3 s at a different
 * point of a send each time: after its tail claim, mid-payload, before its
 * commit, and before its tail claim. The parent reads live all along.
 *   - While it is stopped the daemon never aborts it: spilling waits at its
 *     record (the others block: back-pressure), `stat` names its slot, pid
 *     and position, the log says so; stopped before its claim it holds
 *     nothing and nothing waits.
 *   - Resumed, its send completes and spilling passes it at once.
 *   - Every record arrives exactly once, intact, in order: live, in a
 *     replay from disk, and in the segment walk; `spillway verify` is clean.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support_daemon.h"
#include "daemon_case.h"
#include "ring_layout.h" /* enum ring_point, for test_stop_at */

#define RING (256u << 10)
#define MAXREC 4096u
#define STALLS 4

static const enum ring_point points[STALLS] = { RING_AT_CLAIMED, RING_AT_MID_PAYLOAD,
						RING_AT_BEFORE_COMMIT, RING_AT_CLAIMING };

struct victim {
	char shm[512];
	uint64_t seed;
	uint32_t between;         /* records sent before each stall */
	_Atomic uint64_t sent;    /* records committed */
	_Atomic int stalls;       /* stalls entered */
};

static int victim_main(void *arg)
{
	struct victim *v = arg;
	struct test_id_sender s;
	uint64_t seq = 0;

	TEST_CHECK(test_id_sender_open(&s, v->shm, "stall", v->seed, 0, MAXREC) == 0, "victim");
	for (int k = 0; k <= STALLS; k++) {
		for (uint32_t i = 0; i < v->between || k == STALLS; i++, seq++) {
			uint32_t len = test_id_sender_next(&s); /* record seq */
			int64_t pos;

			if (k < STALLS && i == v->between - 1) { /* this one stalls */
				test_stop_at((int)points[k]);
				atomic_fetch_add(&v->stalls, 1);
			}
			do
				pos = spw_producer_send_wait(s.p, s.buf, len, 100 * TEST_MS);
			while (pos == -ETIMEDOUT);
			TEST_CHECK(pos >= 0, "victim: send %" PRIu64 ": %" PRId64, seq, pos);
			atomic_store(&v->sent, seq + 1);
			if (k == STALLS)
				break;
		}
	}
	test_id_sender_close(&s);
	return 0;
}

/* The parent's live reader: every record checked as it arrives. */
struct live {
	struct spw_reader *r;
	struct test_id_expect e;
	uint64_t records;
	char err[300];
	int failed;
};

static int live_cb(void *arg, const struct spw_record *rec)
{
	struct live *l = arg;

	if (test_id_verify(&l->e, rec->data, rec->len, NULL, l->err, sizeof(l->err))) {
		l->failed = 1;
		return 1;
	}
	l->records++;
	return 0;
}

static void live_pump(struct live *l, uint64_t seed)
{
	int n;

	do {
		n = spw_reader_poll(l->r, live_cb, l, 1024);
		if (l->failed)
			fail_msg("live reader: %s (rerun with SPW_TEST_SEED=%#" PRIx64 ")", l->err, seed);
		assert_true(n >= 0);
	} while (n > 0);
}

/* A slot of the victim's with a claim in flight, or -1; *claim: where
 * spilling waits for it, the victim stopped at point `at`. */
static int victim_slot(struct spw_topic *t, pid_t vp, enum ring_point at, int64_t *claim)
{
	struct spw_producer_info pi[16];
	int n = spw_topic_producers(t, pi, 16);

	for (int i = 0; i < n; i++)
		if (pi[i].pid == (uint32_t)vp && pi[i].alive) {
			*claim = pi[i].claiming ? pi[i].claim : -1;
			/* A claim that wraps covers a PADDING record to the
			 * ring's end and the record at the next lap's start.
			 * The PADDING is committed right after the claim
			 * (ring_layout.h I4, I6; ring/produce.c take_span):
			 * stopped past that, spilling waits at the record at
			 * the lap's start; stopped at RING_AT_CLAIMED, before
			 * it, at the claim's start. */
			if (*claim >= 0 && at != RING_AT_CLAIMED &&
			    (uint64_t)*claim / RING != (uint64_t)(pi[i].end - 1) / RING)
				*claim = (int64_t)((uint64_t)(pi[i].end - 1) / RING * RING);
			return (int)pi[i].slot;
		}
	return -1;
}

static void three_second_stalls_at_each_point_lose_nothing_and_wedge_nothing(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "stall", RING, 4 * RING, MAXREC, 50, 200 };
	uint64_t seed = test_seed("stall_daemon");
	struct victim *v = test_shared_alloc(sizeof(*v));
	struct spw_reader_opts ro = { 0 };
	struct live *l = calloc(1, sizeof(*l)), *replay = calloc(1, sizeof(*replay));
	struct test_feed_check *chk = calloc(1, sizeof(*chk));
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	struct test_seg_walk w;
	struct test_feed *f;
	int64_t stall_ns = 3 * TEST_SEC;
	pid_t vp;
	int n;

	need_daemon();
	assert_non_null(l);
	assert_non_null(replay);
	assert_non_null(chk);
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	start_attached(d, "stall");
	assert_int_equal(spw_topic_open(d->shm, "stall", 0, &t), 0);
	ro.shm_dir = d->shm;
	ro.data_dir = d->data;
	ro.start = SPW_START_EARLIEST;
	assert_int_equal(spw_reader_open("stall", &ro, &l->r), 0);
	test_id_expect_init(&l->e, seed, 3, MAXREC);

	f = test_feed_new(d->shm, "stall", seed, 1, 2, MAXREC);
	f->per_producer = 1u << 30; /* until told to stop */
	f->pace_ns = 50 * 1000;
	f->timeout_ns = 50 * TEST_MS;
	f->deadline_ns = test_now_ns() + scaled_s(120, 300);
	test_feed_start(f, d);

	snprintf(v->shm, sizeof(v->shm), "%s", d->shm);
	v->seed = seed;
	v->between = 200;
	vp = test_fork(victim_main, v);
	test_daemon_add_kid(d, vp);

	for (int k = 0; k < STALLS; k++) {
		int64_t claim = -1, t0, waited;
		uint64_t tail0;
		int slot;

		assert_int_equal(test_wait_stopped(vp, scaled_s(30, 60)), 0);
		assert_int_equal(atomic_load(&v->stalls), k + 1);
		slot = victim_slot(t, vp, points[k], &claim);
		assert_true(slot >= 0);
		info_of(t, &in);
		tail0 = in.tail;
		/* 3 s stopped, the live reader reading all along. */
		t0 = test_now_ns();
		while (test_now_ns() - t0 < stall_ns) {
			live_pump(l, seed);
			test_sleep_ns(50 * TEST_MS);
		}
		info_of(t, &in);
		assert_int_equal(in.aborted_claims, 0);
		if (points[k] == RING_AT_CLAIMING) {
			/* Before its tail claim it owns nothing: the others flowed. */
			assert_int_equal(claim, -1);
			assert_true(in.spilled > tail0);
			assert_int_equal(in.stall_slot, -1);
		} else {
			assert_true(claim >= 0);
			assert_true(in.spilled <= (uint64_t)claim); /* waits at it */
			assert_int_equal(in.stall_slot, slot);
			assert_int_equal(in.stall_position, (uint64_t)claim);
			assert_int_equal(in.stall_pid, (uint32_t)vp);
			assert_true(in.stall_since_ns > 0);
		}
		assert_int_equal(kill(vp, SIGCONT), 0);
		t0 = test_now_ns();
		if (claim >= 0) {
			assert_int_equal(test_wait_counter(t, false, (uint64_t)claim + 8, scaled_s(10, 30)), 0);
			waited = test_now_ns() - t0;
			print_message("[ info     ] stall %d (point %d) at %lld: spilled past it %.1f ms "
				      "after SIGCONT\n", k, (int)points[k], (long long)claim,
				      (double)waited / TEST_MS);
		}
	}
	atomic_store(&f->stop, 1);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(t, &in);
	assert_int_equal(test_wait_counter(t, true, in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(in.aborted_claims, 0);

	/* Live: everything, once, in order, intact. */
	live_pump(l, seed);
	assert_int_equal(spw_reader_position(l->r), (int64_t)in.tail);
	assert_int_equal(l->e.next_seq[0], atomic_load(&v->sent));
	for (uint32_t i = 1; i <= 2; i++)
		assert_int_equal(l->e.next_seq[i], atomic_load(&f->sent[i]));
	assert_int_equal(spw_reader_skipped(l->r), 0);

	/* Replay from disk: the same. */
	ro.flags = SPW_READER_NO_LIVE;
	assert_int_equal(spw_reader_open("stall", &ro, &replay->r), 0);
	test_id_expect_init(&replay->e, seed, 3, MAXREC);
	live_pump(replay, seed);
	assert_int_equal(replay->records, l->records);
	assert_int_equal(spw_reader_position(replay->r), (int64_t)in.tail);

	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	assert_int_equal(test_daemon_log_count(d, " aborted: ", true), 0);
	assert_int_equal(test_daemon_log_count(d, "spilling waits at position", true), STALLS - 1);
	assert_int_equal(test_daemon_log_count(d, "spilling resumed", true), STALLS - 1);

	/* The segment walk and the CLI's verify agree. */
	memset(&w, 0, sizeof(w));
	test_feed_check_init(chk, seed, 3, MAXREC);
	w.on_data = test_feed_on_data;
	w.arg = chk;
	{
		char dir[1024];

		test_daemon_topic_dir(d, "stall", dir, sizeof(dir));
		n = test_seg_walk(dir, &w);
	}
	if (n)
		fail_msg("segment walk: %s", w.err);
	assert_int_equal(w.end, in.tail);
	assert_int_equal(chk->records, l->records);
	assert_int_equal(w.aborted_records, 0);
	assert_int_equal(w.corrupt_records, 0);
	if (getenv("SPW_CLI"))
		assert_int_equal(test_daemon_cli(d, "verify stall >/dev/null"), 0);
	print_message("[ info     ] %llu records (%llu from the stalled producer), %llu send "
		      "timeouts meanwhile, 0 aborted, verify clean\n",
		      (unsigned long long)l->records, (unsigned long long)atomic_load(&v->sent),
		      (unsigned long long)test_feed_total(f, f->timeouts));

	spw_reader_close(l->r);
	spw_reader_close(replay->r);
	spw_topic_close(t);
	test_feed_free(f);
	test_shared_free(v, sizeof(*v));
	free(l);
	free(replay);
	free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			three_second_stalls_at_each_point_lose_nothing_and_wedge_nothing, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
