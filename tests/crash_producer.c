/* SPDX-License-Identifier: MIT */
/*
 * crash_producer.c - producers that die with a claim open (ring/ring_layout.h
 * I2, I4, I6, I7). A victim child claims and stops (SIGSTOP) either after
 * writing part of its payload or inside ring_test_hook_after_claim, before
 * any header byte; other producer children keep sending until the ring is
 * full behind the stuck record. The parent plays the daemon and a consumer:
 * it scans, finds the stuck record, SIGKILLs the victim, unblocks, reclaims,
 * and checks that the blocked producers go on, that every other record
 * arrives once and in order, and that nothing of the aborted span is ever
 * handed out as a record. In-process cases check -ECANCELED on a commit
 * after unblock, and unblock's arguments.
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* Defined in the library (ring/produce.c); NULL unless a test sets it. */
extern void (*ring_test_hook_after_claim)(void);

#define RING (64u << 10)
#define MAXREC 4096u
#define W_ABORTED(span) (TEST_BIT_COMMITTED | TEST_BIT_CLAIMED | ((uint64_t)TEST_TYPE_ABORTED << 32) | (span))

enum victim_mode { PARTIAL_PAYLOAD, BEFORE_HEADER };

struct crash_case {
	const char *name;
	enum victim_mode mode;
	uint32_t others; /* producer children sending meanwhile */
	int wrap;        /* the victim's claim covers a padding to the ring end */
};

/* Shared with the children (MAP_SHARED). */
struct crash_shared {
	char dir[512];
	uint64_t seed;
	int64_t deadline_ns;
	enum victim_mode mode;
	uint32_t victim_before;  /* records the victim sends before its fatal claim */
	uint32_t victim_len;     /* the length of that claim */
	uint64_t per_other;      /* records each other producer sends */
	_Atomic int64_t victim_pre_tail; /* end of the victim's last record */
	_Atomic int64_t victim_claim;    /* PARTIAL_PAYLOAD: the claim's position */
};

struct other_arg {
	struct crash_shared *x;
	uint32_t id;
};

static void stop_here(void)
{
	raise(SIGSTOP);
}

static int victim_main(void *arg)
{
	struct crash_shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint64_t len_rng = test_id_len_rng(x->seed, 0);
	static uint8_t buf[MAXREC];
	struct spw_claim c;
	int64_t pos = -1;
	uint32_t len;
	int r;

	r = spw_topic_open(x->dir, "crash", 0, &t);
	TEST_CHECK(r == 0, "victim: open: %d", r);
	r = spw_producer_open(t, &p);
	TEST_CHECK(r == 0, "victim: producer_open: %d", r);
	for (uint32_t seq = 0; seq < x->victim_before; seq++) {
		len = test_id_len(&len_rng, 0, MAXREC);
		test_id_make(buf, len, x->seed, 0, seq);
		pos = spw_producer_send(p, buf, len);
		TEST_CHECK(pos >= 0, "victim: send %u: %" PRId64, seq, pos);
		atomic_store(&x->victim_pre_tail, pos + (int64_t)test_span(len));
	}
	len = x->victim_len;
	test_id_make(buf, len, x->seed, 0, x->victim_before);
	if (x->mode == PARTIAL_PAYLOAD) {
		r = spw_producer_claim(p, len, &c);
		TEST_CHECK(r == 0, "victim: claim: %d", r);
		atomic_store(&x->victim_claim, c.position);
		memcpy(c.data, buf, len / 2);
		raise(SIGSTOP);
	} else {
		ring_test_hook_after_claim = stop_here;
		pos = spw_producer_send(p, buf, len);
	}
	test_report(__FILE__, __LINE__, "stopped", "victim resumed after its stop (send: %" PRId64 ")",
		    pos);
	return -1;
}

static int other_main(void *arg)
{
	struct other_arg *a = arg;
	struct crash_shared *x = a->x;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint64_t len_rng = test_id_len_rng(x->seed, a->id);
	static uint8_t buf[MAXREC];
	int r;

	r = spw_topic_open(x->dir, "crash", 0, &t);
	TEST_CHECK(r == 0, "producer %u: open: %d", a->id, r);
	r = spw_producer_open(t, &p);
	TEST_CHECK(r == 0, "producer %u: producer_open: %d", a->id, r);
	for (uint64_t seq = 0; seq < x->per_other; seq++) {
		uint32_t len = test_id_len(&len_rng, a->id, MAXREC);
		struct spw_claim c;
		int64_t pos;

		do {
			TEST_CHECK(test_now_ns() < x->deadline_ns,
				   "producer %u: still blocked at seq %" PRIu64 " at the deadline", a->id, seq);
			if (seq % 2) {
				r = spw_producer_claim_wait(p, len, 100 * TEST_MS, &c);
				if (r == 0) {
					test_id_make(c.data, len, x->seed, a->id, seq);
					r = spw_producer_commit(p, &c);
				}
				pos = r;
			} else {
				test_id_make(buf, len, x->seed, a->id, seq);
				pos = spw_producer_send_wait(p, buf, len, 100 * TEST_MS);
			}
		} while (pos == -ETIMEDOUT);
		TEST_CHECK(pos >= 0, "producer %u seq %" PRIu64 ": %" PRId64, a->id, seq, pos);
	}
	spw_producer_close(p);
	spw_topic_close(t);
	return 0;
}

/* The parent's consumer. */
struct crash_ctx {
	struct test_id_expect expect;
	int64_t dead_from, dead_to; /* the victim's claimed span */
	int64_t last;
	uint64_t records;
	int failed;
	char msg[400];
};

static int crash_cb(void *arg, const struct spw_record *r)
{
	struct crash_ctx *x = arg;
	char err[300];

	x->records++;
	if (r->position >= x->dead_from && r->position < x->dead_to) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 " inside the aborted span [%"
			 PRId64 ", %" PRId64 ")", r->position, x->dead_from, x->dead_to);
		x->failed = 1;
	} else if (r->position <= x->last) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 " after %" PRId64, r->position,
			 x->last);
		x->failed = 1;
	} else if (test_id_verify(&x->expect, r->data, r->len, NULL, err, sizeof(err))) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 ": %s", r->position, err);
		x->failed = 1;
	}
	x->last = r->position;
	return x->failed;
}

/* Poll once and reclaim what was read; returns the records delivered. */
static int consume_step(struct spw_topic *t, struct spw_consumer *c, struct crash_ctx *x,
			uint64_t seed)
{
	int n = spw_consumer_poll(c, crash_cb, x, 256);

	if (x->failed)
		fail_msg("%s (rerun with SPW_TEST_SEED=%#" PRIx64 ")", x->msg, seed);
	assert_true(n >= 0);
	assert_int_equal(spw_topic_reclaim(t, spw_consumer_position(c)), 0);
	return n;
}

static struct spw_topic_info info_of(struct spw_topic *t)
{
	struct spw_topic_info info;

	assert_int_equal(spw_topic_info(t, &info), 0);
	return info;
}

static char *g_dir;

static int group_setup(void **state)
{
	(void)state;
	g_dir = test_tmpdir_make();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_tmpdir_remove(g_dir);
	return 0;
}

/* Parent-side setup before the victim: filler records (never seen by the
 * consumer, which starts after them) put the tail where the case wants it. */
static void prelude(struct spw_topic *t, struct spw_producer *pp, int wrap)
{
	uint8_t buf[1000] = { 0 };
	int n = wrap ? 64 : 3; /* 64 * 1016 = 65024: 512 bytes before the end */

	for (int i = 0; i < n; i++)
		assert_true(spw_producer_send(pp, buf, sizeof(buf)) >= 0);
	assert_int_equal(spw_topic_reclaim(t, (int64_t)info_of(t).tail), 0);
}

/* Wait until the consumer sits at `at` and the other producers have filled
 * the ring behind it: they wrote past the victim's span and the tail stopped
 * moving. */
static void wait_blocked(struct spw_topic *t, struct spw_consumer *c, struct crash_ctx *x,
			 const struct crash_shared *sh, int64_t at, uint32_t others)
{
	uint64_t last_tail = 0;

	for (;;) {
		uint64_t tail;

		assert_true(test_now_ns() < sh->deadline_ns);
		consume_step(t, c, x, sh->seed);
		tail = info_of(t).tail;
		if (spw_consumer_position(c) == at &&
		    (others == 0 || (tail > (uint64_t)x->dead_to && tail == last_tail)))
			return;
		last_tail = tail;
		test_sleep_ns(100 * TEST_MS);
	}
}

static void run_crash(const struct crash_case *cc)
{
	uint64_t seed = test_seed(cc->name);
	char dir[512];
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct other_arg oargs[3];
	pid_t victim, others[3];
	int others_left = (int)cc->others, unblocks = 0;
	struct spw_topic *t = NULL;
	struct spw_producer *pp = NULL;
	struct spw_consumer *c = NULL;
	struct crash_ctx *x = calloc(1, sizeof(*x));
	int64_t victim_from, victim_to, stuck, aborted = 0;
	uint32_t parent_id = cc->others + 1;
	uint8_t *map;
	struct spw_scan s;

	assert_non_null(x);
	assert_true(cc->others <= 2);
	/* Under the group's dir: removed by the group teardown even when a
	 * check fails half way. */
	snprintf(dir, sizeof(dir), "%s/%s", g_dir, cc->name);
	assert_int_equal(spw_topic_create(dir, "crash", &cfg), 0);
	assert_int_equal(spw_topic_open(dir, "crash", 0, &t), 0);
	map = test_map_ring(dir, "crash", RING, NULL);
	assert_non_null(map);
	assert_int_equal(spw_producer_open(t, &pp), 0);
	prelude(t, pp, cc->wrap);

	snprintf(sh->dir, sizeof(sh->dir), "%s", dir);
	sh->seed = seed;
	sh->deadline_ns = test_now_ns() + 120 * TEST_SEC;
	sh->mode = cc->mode;
	sh->victim_before = cc->wrap ? 0 : 5;
	sh->victim_len = 1000;
	sh->per_other = test_scaled(400, 200, 200);
	atomic_init(&sh->victim_pre_tail, (int64_t)info_of(t).tail);
	atomic_init(&sh->victim_claim, -1);
	test_id_expect_init(&x->expect, seed, cc->others + 2, MAXREC);
	x->last = -1;
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);

	/* 1. The victim claims and stops: [victim_from, victim_to) is its. */
	victim = test_fork(victim_main, sh);
	assert_int_equal(test_wait_stopped(victim, 30 * TEST_SEC), 0);
	victim_from = atomic_load(&sh->victim_pre_tail);
	victim_to = (int64_t)info_of(t).tail;
	assert_int_equal(victim_to - victim_from,
			 (cc->wrap ? 512 : 0) + (int64_t)test_span(sh->victim_len));
	stuck = cc->mode == PARTIAL_PAYLOAD ? atomic_load(&sh->victim_claim) : victim_from;
	if (cc->mode == PARTIAL_PAYLOAD)
		assert_int_equal(stuck, cc->wrap ? victim_from + 512 : victim_from);
	x->dead_from = victim_from;
	x->dead_to = victim_to;

	/* 2. Others fill the ring behind it; nobody gets past the stuck claim. */
	for (uint32_t i = 0; i < cc->others; i++) {
		oargs[i] = (struct other_arg){ sh, i + 1 };
		others[i] = test_fork(other_main, &oargs[i]);
	}
	wait_blocked(t, c, x, sh, stuck, cc->others);
	assert_int_equal(x->expect.next_seq[0], sh->victim_before);
	assert_int_equal(spw_topic_scan(t, stuck, RING, &s), 0);
	assert_int_equal(s.stuck, stuck);
	if (cc->mode == PARTIAL_PAYLOAD)
		assert_int_equal(s.stuck_header,
				 TEST_BIT_CLAIMED | ((uint64_t)TEST_TYPE_DATA << 32) | sh->victim_len);
	else
		assert_int_equal(s.stuck_header, 0);
	if (cc->others)
		assert_true(info_of(t).tail > (uint64_t)victim_to);

	/* 3. The victim dies; the daemon unblocks what it left, and the topic
	 * moves on: the blocked producers finish. */
	assert_int_equal(kill(victim, SIGKILL), 0);
	assert_int_equal(test_wait(victim, 30 * TEST_SEC), 128 + SIGKILL);
	while (others_left > 0 || spw_consumer_position(c) < victim_to) {
		int64_t pos = spw_consumer_position(c), u;
		int n;

		assert_true(test_now_ns() < sh->deadline_ns);
		n = consume_step(t, c, x, seed);
		if (spw_topic_scan(t, pos, RING, &s) >= 0 && s.stuck >= victim_from &&
		    s.stuck < victim_to) {
			u = spw_topic_unblock(t, s.stuck);
			assert_true(u > 0);
			assert_int_equal(test_commit_word(map, RING, (uint64_t)s.stuck), W_ABORTED(u));
			aborted += u;
			unblocks++;
			continue;
		}
		for (uint32_t i = 0; i < cc->others; i++) {
			int st;

			if (others[i] > 0 && waitpid(others[i], &st, WNOHANG) == others[i]) {
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
					fail_msg("producer %u ended with status %#x (rerun with "
						 "SPW_TEST_SEED=%#" PRIx64 ")", i + 1, st, seed);
				others[i] = -1;
				others_left--;
			}
		}
		if (n == 0)
			test_sleep_ns(200000);
	}
	assert_int_equal(aborted, victim_to - stuck);
	assert_int_equal(unblocks, cc->mode == BEFORE_HEADER && cc->wrap ? 2 : 1);

	/* 4. Everything else arrived, once, in order; one more goes through. */
	{
		uint64_t len_rng = test_id_len_rng(seed, parent_id);
		uint32_t len = test_id_len(&len_rng, parent_id, MAXREC);
		uint8_t buf[MAXREC];

		test_id_make(buf, len, seed, parent_id, 0);
		assert_true(spw_producer_send(pp, buf, len) >= victim_to);
	}
	while (consume_step(t, c, x, seed) > 0)
		;
	for (uint32_t i = 1; i <= cc->others; i++)
		assert_int_equal(x->expect.next_seq[i], sh->per_other);
	assert_int_equal(x->expect.next_seq[0], sh->victim_before);
	assert_int_equal(x->expect.next_seq[parent_id], 1);
	assert_int_equal(spw_consumer_position(c), info_of(t).tail);

	test_unmap_ring(map, RING);
	spw_consumer_close(c);
	spw_producer_close(pp);
	spw_topic_close(t);
	free(x);
	test_shared_free(sh, sizeof(*sh));
	assert_int_equal(spw_topic_delete(dir, "crash"), 0);
}

static void victim_stopped_mid_payload_is_unblocked_while_others_send(void **state)
{
	static const struct crash_case cc = { "mid_payload", PARTIAL_PAYLOAD, 2, 0 };

	(void)state;
	run_crash(&cc);
}

static void victim_killed_before_any_header_byte_is_unblocked(void **state)
{
	static const struct crash_case cc = { "before_header", BEFORE_HEADER, 2, 0 };

	(void)state;
	run_crash(&cc);
}

static void victim_killed_before_any_header_byte_at_the_tail_is_unblocked(void **state)
{
	static const struct crash_case cc = { "before_header_alone", BEFORE_HEADER, 0, 0 };

	(void)state;
	run_crash(&cc);
}

static void victim_killed_before_writing_its_padding_is_unblocked(void **state)
{
	static const struct crash_case cc = { "before_padding", BEFORE_HEADER, 2, 1 };

	(void)state;
	run_crash(&cc);
}

static void victim_stopped_mid_payload_after_its_padding_is_unblocked(void **state)
{
	static const struct crash_case cc = { "mid_payload_wrapped", PARTIAL_PAYLOAD, 2, 1 };

	(void)state;
	run_crash(&cc);
}

/* ------------------------------------------------------------------------- */

static struct spw_topic *topic_new(const char *name)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_topic *t = NULL;

	assert_int_equal(spw_topic_create(g_dir, name, &cfg), 0);
	assert_int_equal(spw_topic_open(g_dir, name, 0, &t), 0);
	return t;
}

static void commit_after_unblock_returns_ecanceled(void **state)
{
	struct spw_topic *t = topic_new("cancel");
	struct spw_producer *p = NULL;
	struct spw_consumer *c = NULL;
	struct test_got *g = test_got_new();
	uint8_t *map = test_map_ring(g_dir, "cancel", RING, NULL);
	uint8_t buf[40] = { 1 };
	struct spw_claim cl;
	struct spw_scan s;

	(void)state;
	assert_non_null(map);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_producer_send(p, buf, 8), 0);
	assert_int_equal(spw_producer_claim(p, 100, &cl), 0);
	assert_int_equal(cl.position, 24);
	memset(cl.data, 0xee, 50);
	assert_int_equal(spw_topic_scan(t, 0, RING, &s), 24);
	assert_int_equal(s.stuck, 24);
	assert_int_equal(spw_topic_unblock(t, 24), (int64_t)test_span(100));
	assert_int_equal(test_commit_word(map, RING, 24), W_ABORTED(test_span(100)));
	assert_int_equal(spw_producer_commit(p, &cl), -ECANCELED);
	/* The abort stands: the record is lost, the producer goes on. */
	assert_int_equal(test_commit_word(map, RING, 24), W_ABORTED(test_span(100)));
	assert_int_equal(spw_producer_send(p, buf, 40), 24 + (int64_t)test_span(100));
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 10), 2);
	assert_int_equal(g->r[0].position, 0);
	assert_int_equal(g->r[1].position, 24 + (int64_t)test_span(100));
	assert_int_equal(g->r[1].len, 40);
	assert_int_equal(spw_topic_scan(t, 0, RING, &s), 24 + (int64_t)test_span(100) + 56);
	assert_int_equal(s.records, 2);
	assert_int_equal(s.stuck, -1);
	test_unmap_ring(map, RING);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(p);
	spw_topic_close(t);
}

/* A producer stalled (not dead) between its tail CAS and its header store
 * past the unblock timeout: the daemon aborts the never-written span; when
 * the producer wakes, its claim must be cancelled too (I7 with I4), never
 * written over the ABORTED record that consumers and reclaim have passed. */
static struct spw_topic *g_hook_topic;
static int64_t g_hook_pos, g_hook_unblocked;

static void unblock_from_hook(void)
{
	ring_test_hook_after_claim = NULL;
	g_hook_unblocked = spw_topic_unblock(g_hook_topic, g_hook_pos);
}

static void claim_aborted_before_its_header_is_written_is_cancelled(void **state)
{
	struct spw_topic *t = topic_new("stall");
	struct spw_producer *p = NULL;
	struct spw_consumer *c = NULL;
	struct test_got *g = test_got_new();
	uint8_t *map = test_map_ring(g_dir, "stall", RING, NULL);
	uint8_t buf[100] = { 2 };
	struct spw_claim cl;
	int r;

	(void)state;
	assert_non_null(map);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_producer_send(p, buf, 8), 0);
	g_hook_topic = t;
	g_hook_pos = 24;
	g_hook_unblocked = -1;
	ring_test_hook_after_claim = unblock_from_hook;
	r = spw_producer_claim(p, 100, &cl);
	ring_test_hook_after_claim = NULL;
	assert_int_equal(g_hook_unblocked, (int64_t)test_span(100));
	/* Cancelled at claim or at commit: either way the abort stands. */
	if (r == 0) {
		memset(cl.data, 0x5a, 100);
		r = spw_producer_commit(p, &cl);
	}
	assert_int_equal(r, -ECANCELED);
	assert_int_equal(test_commit_word(map, RING, 24), W_ABORTED(test_span(100)));
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 10), 1);
	assert_int_equal(spw_consumer_position(c), 24 + (int64_t)test_span(100));
	test_unmap_ring(map, RING);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(p);
	spw_topic_close(t);
}

static void unblock_checks_its_position(void **state)
{
	struct spw_topic *t = topic_new("unblock_args");
	struct spw_producer *p = NULL;
	uint8_t buf[100] = { 3 };

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 120);
	assert_int_equal(spw_topic_unblock(t, 0), 0);     /* committed: nothing to do */
	assert_int_equal(spw_topic_unblock(t, 120), 0);
	assert_int_equal(spw_topic_unblock(t, 4), -EINVAL);
	assert_int_equal(spw_topic_unblock(t, 240), -EINVAL); /* the tail: nothing claimed */
	assert_int_equal(spw_topic_unblock(t, 1 << 20), -EINVAL);
	assert_int_equal(spw_topic_unblock(t, -8), -EINVAL);
	assert_int_equal(spw_topic_reclaim(t, 120), 0);
	assert_int_equal(spw_topic_unblock(t, 0), -ESTALE);
	spw_producer_close(p);
	spw_topic_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(victim_stopped_mid_payload_is_unblocked_while_others_send),
		cmocka_unit_test(victim_killed_before_any_header_byte_is_unblocked),
		cmocka_unit_test(victim_killed_before_any_header_byte_at_the_tail_is_unblocked),
		cmocka_unit_test(victim_killed_before_writing_its_padding_is_unblocked),
		cmocka_unit_test(victim_stopped_mid_payload_after_its_padding_is_unblocked),
		cmocka_unit_test(commit_after_unblock_returns_ecanceled),
		cmocka_unit_test(claim_aborted_before_its_header_is_written_is_cancelled),
		cmocka_unit_test(unblock_checks_its_position),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
