/* SPDX-License-Identifier: MIT */
/*
 * crash_producer.c - producers stopped or killed with a claim open
 * (ring/ring_layout.h I2, I4, I6, I7). A victim child stops itself (SIGSTOP)
 * at an exact point of a send (the test seam ring_test_hook: right after
 * its tail CAS, after its padding, mid-payload, before its commit) or of a
 * zero-copy claim; other producer children keep sending until the ring is
 * full behind the stuck record. The parent plays the daemon and a consumer:
 * while the victim is stopped, spwd_resolve must answer LIVE and
 * change nothing (a live claim is never taken away, however long it
 * stalls); then the victim is either killed (resolve aborts exactly its
 * span at once, no timeout) or resumed (its record arrives intact). Either
 * way the blocked producers go on, every other record arrives once and in
 * order, and nothing of an aborted span is ever handed out as a record.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "ring_layout.h" /* enum ring_point, for test_stop_at */

#define RING (64u << 10)
#define MAXREC 4096u
#define W_ABORTED(span, pos) test_word(TEST_TYPE_ABORTED, (span), (pos), RING)

/* Where the victim stops: a seam point of spw_producer_send, or CLAIM_API:
 * spw_producer_claim, half the payload written through c.data. */
#define CLAIM_API 100
/* CLAIM_API_AT: spw_producer_claim, the whole payload written, then
 * spw_producer_commit_at stopped inside, after its timestamp store and
 * before the commit word (RING_AT_BEFORE_COMMIT). */
#define CLAIM_API_AT 101
/* The caller's timestamp of the victim's stalled record in the caller-time
 * cases (crash_case.caller_time): a value no clock gives now. */
#define VICTIM_TS 0x5eed0000c0ffeeull

struct crash_case {
	const char *name;
	int stop_at;     /* enum ring_point or CLAIM_API */
	uint32_t others; /* producer children sending meanwhile */
	int wrap;        /* the victim's claim covers a padding to the ring end */
	int resume;      /* SIGCONT the victim instead of killing it */
	int caller_time; /* the stalled record goes through the caller-time
			  * forms: spw_producer_send_wait_at (a seam point),
			  * spw_producer_commit_at (CLAIM_API_AT), VICTIM_TS */
};

/* Shared with the children (MAP_SHARED). */
struct crash_shared {
	char dir[512];
	uint64_t seed;
	int64_t deadline_ns;
	int stop_at;
	int caller_time;
	uint32_t victim_before;  /* records the victim sends before its stalled one */
	uint32_t victim_len;     /* the length of that one */
	uint64_t per_other;      /* records each other producer sends */
	_Atomic int64_t victim_pre_tail; /* end of the victim's last record */
	_Atomic int64_t victim_claim;    /* CLAIM_API: the claim's position */
	_Atomic int64_t victim_sent;     /* the stalled record's position once sent */
};

struct other_arg {
	struct crash_shared *x;
	uint32_t id;
};

static int victim_main(void *arg)
{
	struct crash_shared *x = arg;
	struct test_id_sender s;
	struct spw_claim c;
	int64_t pos = -1;
	uint32_t len;
	int r;

	TEST_CHECK(test_id_sender_open(&s, x->dir, "crash", x->seed, 0, MAXREC) == 0, "victim");
	for (uint32_t seq = 0; seq < x->victim_before; seq++) {
		len = test_id_sender_next(&s); /* record seq */
		pos = spw_producer_send(s.p, s.buf, len);
		TEST_CHECK(pos >= 0, "victim: send %u: %" PRId64, seq, pos);
		atomic_store(&x->victim_pre_tail, pos + (int64_t)test_span(len));
	}
	len = x->victim_len;
	test_id_make(s.buf, len, x->seed, 0, x->victim_before);
	if (x->stop_at == CLAIM_API) {
		r = spw_producer_claim(s.p, len, &c);
		TEST_CHECK(r == 0, "victim: claim: %d", r);
		atomic_store(&x->victim_claim, c.position);
		memcpy(c.data, s.buf, len / 2);
		raise(SIGSTOP);
		/* Resumed: finish the record; the claim is still ours. */
		memcpy((uint8_t *)c.data + len / 2, s.buf + len / 2, len - len / 2);
		r = spw_producer_commit(s.p, &c);
		TEST_CHECK(r == 0, "victim: commit after the stall: %d", r);
		pos = c.position;
	} else if (x->stop_at == CLAIM_API_AT) {
		r = spw_producer_claim(s.p, len, &c);
		TEST_CHECK(r == 0, "victim: claim: %d", r);
		atomic_store(&x->victim_claim, c.position);
		memcpy(c.data, s.buf, len);
		test_stop_at(RING_AT_BEFORE_COMMIT);
		r = spw_producer_commit_at(s.p, &c, VICTIM_TS);
		TEST_CHECK(r == 0, "victim: commit_at after the stall: %d", r);
		pos = c.position;
	} else {
		test_stop_at(x->stop_at);
		pos = x->caller_time ? spw_producer_send_wait_at(s.p, s.buf, len, 60 * TEST_SEC, VICTIM_TS)
				     : spw_producer_send(s.p, s.buf, len);
		TEST_CHECK(pos >= 0, "victim: send after the stall: %" PRId64, pos);
	}
	atomic_store(&x->victim_sent, pos);
	test_id_sender_close(&s);
	return 0;
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

	TEST_CHECK(test_open_producer(x->dir, "crash", &t, &p) == 0, "producer %u", a->id);
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
	int64_t fixed_pos;          /* the victim's stalled record (fixed length) */
	uint32_t fixed_len;
	bool fixed_ts;              /* ... stamped VICTIM_TS by the victim */
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
	if (r->position == x->fixed_pos)
		x->expect.next_len[0] = x->fixed_len; /* not from the length stream */
	if (r->position >= x->dead_from && r->position < x->dead_to) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 " inside the aborted span [%"
			 PRId64 ", %" PRId64 ")", r->position, x->dead_from, x->dead_to);
		x->failed = 1;
	} else if (r->position == x->fixed_pos && x->fixed_ts && r->timestamp_ns != VICTIM_TS) {
		snprintf(x->msg, sizeof(x->msg), "the victim's record at %" PRId64 " has timestamp %"
			 PRIu64 ", not the one it gave", r->position, r->timestamp_ns);
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
	assert_int_equal(spwd_reclaim(t, spw_consumer_position(c)), 0);
	return n;
}

static struct spw_topic_info info_of(struct spw_topic *t)
{
	struct spw_topic_info info;

	assert_int_equal(spw_topic_info(t, &info), 0);
	return info;
}

/* Parent-side setup before the victim: filler records (never seen by the
 * consumer, which starts after them) put the tail where the case wants it. */
static void prelude(struct spw_topic *t, struct spw_producer *pp, int wrap)
{
	uint8_t buf[1000] = { 0 };
	int n = wrap ? 64 : 3; /* 64 * 1016 = 65024: 512 bytes before the end */

	for (int i = 0; i < n; i++)
		assert_true(spw_producer_send(pp, buf, sizeof(buf)) >= 0);
	assert_int_equal(spwd_reclaim(t, (int64_t)info_of(t).tail), 0);
}

/* Wait until the consumer sits at `at` and the other producers have filled
 * the ring behind it: they wrote past the victim's span and the tail stopped
 * moving. */
static void wait_blocked(struct spw_topic *t, struct spw_consumer *c, struct crash_ctx *x,
			 const struct crash_shared *sh, int64_t at, uint32_t others, int64_t victim_to)
{
	uint64_t last_tail = 0;

	for (;;) {
		uint64_t tail;

		assert_true(test_now_ns() < sh->deadline_ns);
		consume_step(t, c, x, sh->seed);
		tail = info_of(t).tail;
		if (spw_consumer_position(c) == at &&
		    (others == 0 || (tail > (uint64_t)victim_to && tail == last_tail)))
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
	int others_left = (int)cc->others, resolves = 0;
	struct spw_topic *t = NULL;
	struct spw_producer *pp = NULL;
	struct spw_consumer *c = NULL;
	struct crash_ctx *x = calloc(1, sizeof(*x));
	int64_t victim_from, victim_to, stuck, aborted = 0;
	uint32_t parent_id = cc->others + 1;
	uint8_t *map;
	struct spwd_scan_result s;

	assert_non_null(x);
	assert_true(cc->others <= 2);
	/* Under the group's dir: removed by the group teardown even when a
	 * check fails half way. */
	snprintf(dir, sizeof(dir), "%s/%s", test_group_dir, cc->name);
	assert_int_equal(spw_topic_create(dir, "crash", &cfg), 0);
	assert_int_equal(spw_topic_open(dir, "crash", 0, &t), 0);
	map = test_map_ring(dir, "crash", RING, NULL);
	assert_non_null(map);
	assert_int_equal(spw_producer_open(t, &pp), 0);
	prelude(t, pp, cc->wrap);

	snprintf(sh->dir, sizeof(sh->dir), "%s", dir);
	sh->seed = seed;
	sh->deadline_ns = test_now_ns() + 120 * TEST_SEC;
	sh->stop_at = cc->stop_at;
	sh->caller_time = cc->caller_time;
	sh->victim_before = cc->wrap ? 0 : 5;
	sh->victim_len = 1000;
	sh->per_other = test_scaled(400, 200, 200);
	atomic_init(&sh->victim_pre_tail, (int64_t)info_of(t).tail);
	atomic_init(&sh->victim_claim, -1);
	atomic_init(&sh->victim_sent, -1);
	test_id_expect_init(&x->expect, seed, cc->others + 2, MAXREC);
	x->last = -1;
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);

	/* 1. The victim claims and stops: [victim_from, victim_to) is its. */
	victim = test_fork_tied(victim_main, sh);
	assert_int_equal(test_wait_stopped(victim, 30 * TEST_SEC), 0);
	victim_from = atomic_load(&sh->victim_pre_tail);
	victim_to = (int64_t)info_of(t).tail;
	assert_int_equal(victim_to - victim_from,
			 (cc->wrap ? 512 : 0) + (int64_t)test_span(sh->victim_len));
	/* The record the scan stops at: the padding's position while the
	 * padding is unwritten, else the record after it. */
	stuck = cc->wrap && cc->stop_at == RING_AT_CLAIMED ? victim_from
		: victim_from + (cc->wrap ? 512 : 0);
	if (cc->stop_at == CLAIM_API || cc->stop_at == CLAIM_API_AT)
		assert_int_equal(atomic_load(&sh->victim_claim), stuck);
	x->dead_from = cc->resume ? -1 : victim_from;
	x->dead_to = cc->resume ? -1 : victim_to;
	x->fixed_pos = victim_to - (int64_t)test_span(sh->victim_len);
	x->fixed_len = sh->victim_len;
	x->fixed_ts = cc->caller_time || cc->stop_at == CLAIM_API_AT;

	/* 2. Others fill the ring behind it; nobody gets past the stuck claim. */
	for (uint32_t i = 0; i < cc->others; i++) {
		oargs[i] = (struct other_arg){ sh, i + 1 };
		others[i] = test_fork_tied(other_main, &oargs[i]);
	}
	wait_blocked(t, c, x, sh, stuck, cc->others, victim_to);
	assert_int_equal(x->expect.next_seq[0], sh->victim_before);
	assert_int_equal(spwd_scan(t, stuck, RING, &s), 0);
	assert_int_equal(s.stuck, stuck);
	assert_int_equal(s.stuck_header, 0); /* I4: nothing before the commit */
	if (cc->others)
		assert_true(info_of(t).tail > (uint64_t)victim_to);
	/* The stalled producer is alive: resolve waits, however long it has
	 * been (the old protocol aborted it after 1 s and corrupted data). */
	for (int i = 0; i < 20; i++) {
		struct spwd_stall st;
		struct spw_producer_info pi[8];
		int np = spw_topic_producers(t, pi, 8), held = 0;

		assert_int_equal(spwd_resolve(t, stuck, &st), SPWD_RESOLVE_LIVE);
		assert_true(st.slot >= 0);
		assert_int_equal(st.pid, (uint32_t)victim);
		for (int k = 0; k < np; k++)
			held += pi[k].slot == (uint32_t)st.slot && pi[k].alive && pi[k].claiming;
		assert_int_equal(held, 1);
		assert_int_equal(test_commit_word(map, RING, (uint64_t)stuck), 0);
		test_sleep_ns(20 * TEST_MS);
	}

	/* 3. The victim dies (resolve aborts its span at once: the kernel
	 * released its lock, no timeout) or resumes (its record completes).
	 * Either way the blocked producers finish. */
	if (cc->resume) {
		assert_int_equal(kill(victim, SIGCONT), 0);
		assert_int_equal(test_wait(victim, 30 * TEST_SEC), 0);
		assert_int_equal(atomic_load(&sh->victim_sent), victim_to - (int64_t)test_span(sh->victim_len));
	} else {
		assert_int_equal(kill(victim, SIGKILL), 0);
		assert_int_equal(test_wait(victim, 30 * TEST_SEC), 128 + SIGKILL);
	}
	while (others_left > 0 || spw_consumer_position(c) < victim_to) {
		int64_t pos = spw_consumer_position(c);
		int n;

		assert_true(test_now_ns() < sh->deadline_ns);
		n = consume_step(t, c, x, seed);
		if (!cc->resume && spwd_scan(t, pos, RING, &s) >= 0 && s.stuck >= victim_from &&
		    s.stuck < victim_to) {
			struct spwd_stall st;

			assert_int_equal(spwd_resolve(t, s.stuck, &st), SPWD_RESOLVE_ABORTED);
			assert_true(st.span > 0);
			assert_int_equal(test_commit_word(map, RING, (uint64_t)s.stuck),
					 W_ABORTED(st.span, (uint64_t)s.stuck));
			aborted += (int64_t)st.span;
			resolves++;
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
	if (!cc->resume) {
		assert_int_equal(aborted, victim_to - stuck);
		assert_int_equal(resolves, cc->wrap && cc->stop_at == RING_AT_CLAIMED ? 2 : 1);
		assert_int_equal(info_of(t).aborted_claims, (uint64_t)resolves);
	}

	/* 4. Everything else arrived, once, in order; one more goes through. */
	{
		uint64_t len_rng = test_id_len_rng(seed, parent_id);
		uint32_t len = test_id_len(&len_rng, parent_id, MAXREC);
		uint8_t buf[MAXREC];

		test_id_make(buf, len, seed, parent_id, 0);
		/* Read and reclaim what the others left first: the ring may be
		 * full of it. */
		while (consume_step(t, c, x, seed) > 0)
			;
		assert_true(spw_producer_send(pp, buf, len) >= victim_to);
	}
	while (consume_step(t, c, x, seed) > 0)
		;
	for (uint32_t i = 1; i <= cc->others; i++)
		assert_int_equal(x->expect.next_seq[i], sh->per_other);
	assert_int_equal(x->expect.next_seq[0], sh->victim_before + (cc->resume ? 1 : 0));
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

#define CASE(fn, ...)                                                   \
	static void fn(void **state)                                    \
	{                                                               \
		static const struct crash_case cc = { #fn, __VA_ARGS__ }; \
		(void)state;                                            \
		run_crash(&cc);                                         \
	}

/* kill -9 at each point of a claim, with and without a wrap. */
CASE(killed_right_after_its_tail_claim, RING_AT_CLAIMED, 2, 0, 0, 0)
CASE(killed_right_after_its_tail_claim_alone_at_the_tail, RING_AT_CLAIMED, 0, 0, 0, 0)
CASE(killed_after_its_tail_claim_before_its_padding, RING_AT_CLAIMED, 2, 1, 0, 0)
CASE(killed_after_its_padding, RING_AT_PADDED, 2, 1, 0, 0)
CASE(killed_mid_payload, RING_AT_MID_PAYLOAD, 2, 0, 0, 0)
CASE(killed_mid_payload_after_its_padding, RING_AT_MID_PAYLOAD, 2, 1, 0, 0)
CASE(killed_before_its_commit, RING_AT_BEFORE_COMMIT, 2, 0, 0, 0)
CASE(killed_with_a_zero_copy_claim_half_written, CLAIM_API, 2, 0, 0, 0)
/* Stopped at each point, then resumed: nothing was taken away (B1-B3). */
CASE(stalled_after_its_tail_claim_then_resumed, RING_AT_CLAIMED, 2, 0, 1, 0)
CASE(stalled_before_its_padding_then_resumed, RING_AT_CLAIMED, 2, 1, 1, 0)
CASE(stalled_mid_payload_then_resumed, RING_AT_MID_PAYLOAD, 2, 0, 1, 0)
CASE(stalled_before_its_commit_then_resumed, RING_AT_BEFORE_COMMIT, 2, 1, 1, 0)
CASE(stalled_with_a_zero_copy_claim_then_resumed, CLAIM_API, 2, 0, 1, 0)
/* The caller-time forms (spw_producer_send_wait_at, spw_producer_commit_at)
 * at the same points: they share the claim and commit paths, and a
 * resumed one's record carries the timestamp it was given. */
CASE(killed_right_after_the_tail_claim_of_a_send_wait_at, RING_AT_CLAIMED, 2, 1, 0, 1)
CASE(killed_mid_payload_of_a_send_wait_at, RING_AT_MID_PAYLOAD, 2, 0, 0, 1)
CASE(killed_inside_commit_at_after_its_timestamp, CLAIM_API_AT, 2, 0, 0, 1)
CASE(stalled_before_the_commit_of_a_send_wait_at_then_resumed, RING_AT_BEFORE_COMMIT, 2, 1, 1, 1)
CASE(stalled_inside_commit_at_then_resumed, CLAIM_API_AT, 2, 0, 1, 1)

/* ------------------------------------------------------------------------- */

static struct spw_topic *topic_new(const char *name)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_topic *t = test_topic_new(name, &cfg);

	assert_non_null(t);
	return t;
}

/* Killed between publishing its span in its slot and its tail CAS: it owns
 * nothing, so nothing stalls; its slot is free for the next producer. */
static int claiming_victim(void *arg)
{
	struct crash_shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t buf[64] = { 7 };

	TEST_CHECK(test_open_producer(x->dir, "claiming", &t, &p) == 0, "claiming victim");
	test_stop_at(RING_AT_CLAIMING);
	spw_producer_send(p, buf, sizeof(buf));
	return -1; /* killed before this */
}

static void killed_between_its_slot_and_its_tail_claim(void **state)
{
	struct spw_topic *t = topic_new("claiming");
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct spw_producer *p = NULL, *ps[64];
	struct spw_producer_info pi[64];
	uint8_t buf[64] = { 1 };
	struct spwd_scan_result s;
	pid_t v;
	int n = 0, np;

	(void)state;
	snprintf(sh->dir, sizeof(sh->dir), "%s", test_group_dir);
	/* Ours first, so the victim is not the lone (solo) producer: it stops
	 * before a CAS (ring/ring_layout.h I9; tests/ring_solo.c stops a solo
	 * producer there). */
	assert_int_equal(spw_producer_open(t, &p), 0);
	v = test_fork_tied(claiming_victim, sh);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	assert_int_equal(info_of(t).tail, 0); /* its CAS never ran */
	np = spw_topic_producers(t, pi, 64);
	assert_int_equal(np, 2);
	assert_true(pi[0].alive && pi[1].alive);
	for (int i = 0; i < 10; i++)
		assert_int_equal(spw_producer_send(p, buf, sizeof(buf)), i * 80);
	assert_int_equal(spwd_scan(t, 0, RING, &s), 800);
	assert_int_equal(s.stuck, -1);
	assert_int_equal(kill(v, SIGKILL), 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
	/* All 64 slots can be taken again (the dead one's included). */
	for (n = 0; n < 63; n++)
		assert_int_equal(spw_producer_open(t, &ps[n]), 0);
	assert_int_equal(spw_producer_open(t, &ps[63]), -EUSERS);
	while (n--)
		spw_producer_close(ps[n]);
	spw_producer_close(p);
	spw_topic_close(t);
	test_shared_free(sh, sizeof(*sh));
}

/* A dead producer's slot is not handed to a new producer while its claim is
 * unsettled: the claim stays attributed to it (I7). */
static void a_dead_slot_with_an_open_claim_is_not_reused(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC, .max_producers = 1 };
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spwd_stall st;
	pid_t v;

	(void)state;
	assert_true((size_t)snprintf(sh->dir, sizeof(sh->dir), "%s/one_slot", test_group_dir) <
		    sizeof(sh->dir));
	assert_int_equal(spw_topic_create(sh->dir, "crash", &cfg), 0);
	assert_int_equal(spw_topic_open(sh->dir, "crash", 0, &t), 0);
	sh->stop_at = RING_AT_MID_PAYLOAD;
	sh->victim_len = 100;
	sh->seed = 1;
	v = test_fork_tied(victim_main, sh);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	assert_int_equal(spw_producer_open(t, &p), -EUSERS); /* alive, holds the only slot */
	assert_int_equal(kill(v, SIGKILL), 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(spw_producer_open(t, &p), -EUSERS); /* dead, claim unsettled */
	assert_int_equal(spwd_resolve(t, 0, &st), SPWD_RESOLVE_ABORTED);
	assert_int_equal(st.span, test_span(100));
	assert_int_equal(st.slot, 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, "x", 1), (int64_t)test_span(100));
	spw_producer_close(p);
	spw_topic_close(t);
	test_shared_free(sh, sizeof(*sh));
}

/* A producer handle used in a fork()ed child is refused, and the child's
 * copy of the parent's descriptors does not keep the parent "alive". */
static int forked_child_uses_parent_handle(void *arg)
{
	struct spw_producer *p = arg;
	struct spw_claim c;

	TEST_CHECK(spw_producer_send(p, "abc", 3) == -ECHILD, "send in a child must be refused");
	TEST_CHECK(spw_producer_claim(p, 3, &c) == -ECHILD, "claim in a child must be refused");
	spw_producer_close(p); /* frees the child's copy only */
	return 0;
}

static int parent_of_a_child(void *arg)
{
	struct crash_shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_claim c;
	pid_t child;

	TEST_CHECK(test_open_producer(x->dir, "forked", &t, &p) == 0, "parent");
	TEST_CHECK(spw_producer_send(p, "abc", 3) == 0, "send");
	child = test_fork_tied(forked_child_uses_parent_handle, p);
	TEST_CHECK(test_wait(child, 30 * TEST_SEC) == 0, "child");
	TEST_CHECK(spw_producer_claim(p, 100, &c) == 0, "claim");
	/* With that claim open: still -ECHILD in a child, not -EBUSY (the
	 * claim is the parent's; a review found -EBUSY). */
	child = test_fork_tied(forked_child_uses_parent_handle, p);
	TEST_CHECK(test_wait(child, 30 * TEST_SEC) == 0, "child, with a claim open");
	/* A grandchild that lives on after we die: */
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	x->victim_sent = child;
	raise(SIGSTOP);
	return -1;
}

static void a_handle_is_refused_in_a_forked_child(void **state)
{
	struct spw_topic *t = topic_new("forked");
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct spwd_stall st;
	pid_t v;

	(void)state;
	snprintf(sh->dir, sizeof(sh->dir), "%s", test_group_dir);
	v = test_fork_tied(parent_of_a_child, sh);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	assert_int_equal(spwd_resolve(t, 24, &st), SPWD_RESOLVE_LIVE);
	assert_int_equal(kill(v, SIGKILL), 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
	/* The grandchild still runs, but closed its copies at fork: the dead
	 * parent's claim is settled. */
	assert_int_equal(kill((pid_t)atomic_load(&sh->victim_sent), 0), 0);
	assert_int_equal(spwd_resolve(t, 24, &st), SPWD_RESOLVE_ABORTED);
	assert_int_equal(st.span, test_span(100));
	kill((pid_t)atomic_load(&sh->victim_sent), SIGKILL);
	spw_topic_close(t);
	test_shared_free(sh, sizeof(*sh));
}

/* A batch (spw_producer_send_batch) of BATCH_N records of 1000 bytes; the
 * victim stops at the batch_hits-th pass through batch_point: right after
 * its tail claim (nothing committed), or before its second commit (the
 * first record committed, the other three claimed), the whole batch's span
 * in its slot either way. */
#define BATCH_N 4
static int batch_point, batch_hits;

static void stop_in_the_batch(enum ring_point at)
{
	if ((int)at == batch_point && --batch_hits == 0) {
		ring_test_hook = NULL;
		raise(SIGSTOP);
	}
}

/* The hash of test_fill(tag) over len bytes, as test_collect records it. */
static uint64_t fill_hash(uint32_t len, uint64_t tag)
{
	uint8_t buf[1000];

	assert_true(len <= sizeof(buf));
	test_fill(buf, len, tag);
	return test_hash(buf, len);
}

static int batch_victim(void *arg)
{
	struct crash_shared *x = arg;
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	static uint8_t buf[BATCH_N][1000];
	struct spw_msg m[BATCH_N];
	int64_t pos[BATCH_N];
	int r;

	TEST_CHECK(test_open_producer(x->dir, "batch", &t, &p) == 0, "batch victim");
	for (int i = 0; i < BATCH_N; i++) {
		test_fill(buf[i], sizeof(buf[i]), (uint64_t)i);
		m[i] = (struct spw_msg){ buf[i], sizeof(buf[i]) };
	}
	ring_test_hook = stop_in_the_batch;
	if (x->caller_time) {
		uint64_t ts[BATCH_N];

		for (int i = 0; i < BATCH_N; i++)
			ts[i] = VICTIM_TS + (uint64_t)i;
		r = spw_producer_send_batch_wait_at(p, m, BATCH_N, 60 * TEST_SEC, ts, pos);
	} else {
		r = spw_producer_send_batch(p, m, BATCH_N, pos);
	}
	TEST_CHECK(r == BATCH_N, "batch victim: send_batch after the stall: %d", r);
	atomic_store(&x->victim_sent, pos[BATCH_N - 1]);
	return 0;
}

/* Stopped in a batch, before commit `done` (0: right after its tail claim;
 * 1: the first record committed): resolve says LIVE and changes nothing;
 * then killed (the uncommitted rest, exactly, becomes one ABORTED record at
 * once; committed records stay delivered) or resumed (the rest arrives). A
 * send after it goes through either way. caller_time: the batch goes through
 * spw_producer_send_batch_wait_at, record i stamped VICTIM_TS + i. */
static void run_batch_crash(int done, bool resume, bool caller_time)
{
	struct spw_topic *t = topic_new("batch");
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct test_got *g = test_got_new();
	struct spw_producer *pp = NULL;
	struct spw_consumer *c = NULL;
	const int64_t span = (int64_t)test_span(1000);
	struct spw_producer_info pi[8];
	int64_t first, stuck;
	int np, held = 0;
	uint8_t *map, buf[64] = { 0 };
	struct spwd_scan_result s;
	struct spwd_stall st;
	pid_t v;

	snprintf(sh->dir, sizeof(sh->dir), "%s", test_group_dir);
	atomic_init(&sh->victim_sent, -1);
	sh->caller_time = caller_time;
	map = test_map_ring(test_group_dir, "batch", RING, NULL);
	assert_non_null(map);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	first = (int64_t)info_of(t).tail;
	stuck = first + done * span;
	batch_point = done ? RING_AT_BEFORE_COMMIT : RING_AT_CLAIMED;
	batch_hits = done + 1;
	v = test_fork_tied(batch_victim, sh);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	assert_int_equal(info_of(t).tail, (uint64_t)(first + BATCH_N * span));
	/* Its slot names the batch's uncommitted rest (ring_layout.h I2). */
	np = spw_topic_producers(t, pi, 8);
	for (int k = 0; k < np; k++)
		if (pi[k].pid == (uint32_t)v) {
			assert_true(pi[k].alive && pi[k].claiming);
			assert_int_equal(pi[k].claim, stuck);
			assert_int_equal(pi[k].end, first + BATCH_N * span);
			held++;
		}
	assert_int_equal(held, 1);
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 100), done);
	if (done) {
		assert_int_equal(g->r[0].position, first);
		assert_int_equal(g->r[0].hash, fill_hash(1000, 0));
		if (caller_time)
			assert_int_equal(g->r[0].timestamp_ns, VICTIM_TS);
	}
	assert_int_equal(spwd_scan(t, first, RING, &s), done * span);
	assert_int_equal(s.stuck, stuck);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(spwd_resolve(t, stuck, &st), SPWD_RESOLVE_LIVE);
		assert_int_equal(st.pid, (uint32_t)v);
		assert_int_equal(test_commit_word(map, RING, (uint64_t)stuck), 0);
		test_sleep_ns(10 * TEST_MS);
	}
	if (resume) {
		assert_int_equal(kill(v, SIGCONT), 0);
		assert_int_equal(test_wait(v, 30 * TEST_SEC), 0);
		assert_int_equal(atomic_load(&sh->victim_sent), first + (BATCH_N - 1) * span);
		assert_int_equal(spw_consumer_poll(c, test_collect, g, 100), BATCH_N - done);
		for (int i = 0; i < BATCH_N; i++) {
			assert_int_equal(g->r[i].position, first + i * span);
			assert_int_equal(g->r[i].hash, fill_hash(1000, (uint64_t)i));
			if (caller_time)
				assert_int_equal(g->r[i].timestamp_ns, VICTIM_TS + (uint64_t)i);
		}
	} else {
		assert_int_equal(kill(v, SIGKILL), 0);
		assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
		assert_int_equal(spwd_resolve(t, stuck, &st), SPWD_RESOLVE_ABORTED);
		assert_int_equal(st.span, (BATCH_N - done) * span);
		assert_int_equal(test_commit_word(map, RING, (uint64_t)stuck),
				 W_ABORTED((uint64_t)(BATCH_N - done) * span, (uint64_t)stuck));
		assert_int_equal(spw_consumer_poll(c, test_collect, g, 100), 0);
		assert_int_equal(spw_consumer_position(c), first + BATCH_N * span);
	}
	assert_int_equal(spw_producer_open(t, &pp), 0);
	assert_int_equal(spw_producer_send(pp, buf, sizeof(buf)), first + BATCH_N * span);
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 100), 1);
	assert_int_equal(g->n, (resume ? BATCH_N : done) + 1);
	spw_producer_close(pp);
	spw_consumer_close(c);
	test_unmap_ring(map, RING);
	free(g);
	test_shared_free(sh, sizeof(*sh));
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "batch"), 0);
}

/* Garbage over the commit word of a batch's first record (a buggy program
 * with write access), the second committed, the rest not, and then the
 * producer dies: the daemon cuts out exactly the garbage record (CORRUPT)
 * and aborts exactly the uncommitted rest; the second record, committed,
 * is delivered. */
static void garbage_in_a_batch_whose_producer_dies(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct crash_shared *sh = test_shared_alloc(sizeof(*sh));
	struct spw_topic *t = NULL;
	struct test_got *g = test_got_new();
	struct spw_consumer *c = NULL;
	const int64_t span = (int64_t)test_span(1000);
	struct spwd_stall st;
	int64_t first;
	uint8_t *map;
	pid_t v;

	(void)state;
	/* Its own dir: the victim opens "batch" there. */
	snprintf(sh->dir, sizeof(sh->dir), "%s/garbage", test_group_dir);
	assert_int_equal(spw_topic_create(sh->dir, "batch", &cfg), 0);
	assert_int_equal(spw_topic_open(sh->dir, "batch", 0, &t), 0);
	map = test_map_ring(sh->dir, "batch", RING, NULL);
	assert_non_null(map);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	first = (int64_t)info_of(t).tail;
	batch_point = RING_AT_BEFORE_COMMIT;
	batch_hits = 3; /* before the third commit: two records committed */
	v = test_fork_tied(batch_victim, sh);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	/* A word that fails the validator (no such type, no such length). */
	*(volatile uint64_t *)(map + ((uint64_t)first & (RING - 1))) = ~0ull;
	assert_int_equal(kill(v, SIGKILL), 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 128 + SIGKILL);
	assert_int_equal(spwd_resolve(t, first, &st), SPWD_RESOLVE_CORRUPT);
	assert_int_equal(st.span, span);
	assert_int_equal(spwd_resolve(t, first + 2 * span, &st), SPWD_RESOLVE_ABORTED);
	assert_int_equal(st.span, (BATCH_N - 2) * span);
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 100), 1);
	assert_int_equal(g->r[0].position, first + span);
	assert_int_equal(g->r[0].hash, fill_hash(1000, 1));
	assert_int_equal(spw_consumer_skipped(c), (uint64_t)span);
	assert_int_equal(spw_consumer_position(c), first + BATCH_N * span);
	spw_consumer_close(c);
	test_unmap_ring(map, RING);
	free(g);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(sh->dir, "batch"), 0);
	test_shared_free(sh, sizeof(*sh));
}

static void killed_right_after_a_batch_claim(void **state)
{
	(void)state;
	run_batch_crash(0, false, false);
}

static void killed_half_way_through_a_batch(void **state)
{
	(void)state;
	run_batch_crash(1, false, false);
}

static void stalled_half_way_through_a_batch_then_resumed(void **state)
{
	(void)state;
	run_batch_crash(1, true, false);
}

/* The same through spw_producer_send_batch_wait_at (the caller's times). */
static void killed_half_way_through_a_batch_wait_at(void **state)
{
	(void)state;
	run_batch_crash(1, false, true);
}

static void stalled_half_way_through_a_batch_wait_at_then_resumed(void **state)
{
	(void)state;
	run_batch_crash(1, true, true);
}

/* A stall that ends in a commit: resolve said LIVE all along, the record
 * arrives intact, and a zero-copy claim cannot be opened twice. */
static void resolve_checks_its_position(void **state)
{
	struct spw_topic *t = topic_new("resolve_args");
	struct spw_producer *p = NULL;
	uint8_t buf[100] = { 3 };
	struct spw_claim c, c2;
	struct spwd_stall st;

	(void)state;
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 120);
	assert_int_equal(spwd_resolve(t, 0, &st), SPWD_RESOLVE_NONE); /* committed */
	assert_int_equal(spwd_resolve(t, 120, NULL), SPWD_RESOLVE_NONE);
	assert_int_equal(spwd_resolve(t, 4, &st), -EINVAL);
	assert_int_equal(spwd_resolve(t, 240, &st), -EINVAL); /* the tail: nothing claimed */
	assert_int_equal(spwd_resolve(t, 1 << 20, &st), -EINVAL);
	assert_int_equal(spwd_resolve(t, -8, &st), -EINVAL);
	assert_int_equal(spw_producer_claim(p, 100, &c), 0);
	assert_int_equal(spw_producer_claim(p, 100, &c2), -EBUSY);
	assert_int_equal(spw_producer_send(p, buf, 100), -EBUSY);
	assert_int_equal(spwd_resolve(t, 240, &st), SPWD_RESOLVE_LIVE); /* our own, open */
	assert_int_equal(spw_producer_wait_ack(p, 240, SPW_ACK_COMMITTED, 0), -ETIMEDOUT);
	assert_int_equal(spw_producer_wait_ack(p, 240, SPW_ACK_COMMITTED, 20 * TEST_MS), -ETIMEDOUT);
	memcpy(c.data, buf, 100);
	assert_int_equal(spw_producer_commit(p, &c), 0);
	assert_int_equal(spw_producer_commit(p, &c), -EINVAL); /* once */
	assert_int_equal(spw_producer_wait_ack(p, 240, SPW_ACK_COMMITTED, 0), 0);
	assert_int_equal(spwd_resolve(t, 240, &st), SPWD_RESOLVE_NONE);
	assert_int_equal(spwd_reclaim(t, 120), 0);
	assert_int_equal(spwd_resolve(t, 0, &st), -ESTALE);
	spw_producer_close(p);
	spw_topic_close(t);
}

/* Closing a handle with a claim open aborts the claim (readers skip it). */
static void close_with_an_open_claim_aborts_it(void **state)
{
	struct spw_topic *t = topic_new("close_open");
	struct spw_producer *p = NULL;
	struct spw_consumer *c = NULL;
	struct test_got *g = test_got_new();
	uint8_t *map = test_map_ring(test_group_dir, "close_open", RING, NULL);
	struct spw_claim cl;

	(void)state;
	assert_non_null(map);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	assert_int_equal(spw_producer_claim(p, 100, &cl), 0);
	spw_producer_close(p);
	assert_int_equal(test_commit_word(map, RING, 0), W_ABORTED(test_span(100), 0));
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, "hello", 5), (int64_t)test_span(100));
	assert_int_equal(spw_consumer_poll(c, test_collect, g, 10), 1);
	assert_int_equal(g->r[0].position, (int64_t)test_span(100));
	test_unmap_ring(map, RING);
	free(g);
	spw_consumer_close(c);
	spw_producer_close(p);
	spw_topic_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(killed_right_after_its_tail_claim),
		cmocka_unit_test(killed_right_after_its_tail_claim_alone_at_the_tail),
		cmocka_unit_test(killed_after_its_tail_claim_before_its_padding),
		cmocka_unit_test(killed_after_its_padding),
		cmocka_unit_test(killed_mid_payload),
		cmocka_unit_test(killed_mid_payload_after_its_padding),
		cmocka_unit_test(killed_before_its_commit),
		cmocka_unit_test(killed_with_a_zero_copy_claim_half_written),
		cmocka_unit_test(stalled_after_its_tail_claim_then_resumed),
		cmocka_unit_test(stalled_before_its_padding_then_resumed),
		cmocka_unit_test(stalled_mid_payload_then_resumed),
		cmocka_unit_test(stalled_before_its_commit_then_resumed),
		cmocka_unit_test(stalled_with_a_zero_copy_claim_then_resumed),
		cmocka_unit_test(killed_right_after_the_tail_claim_of_a_send_wait_at),
		cmocka_unit_test(killed_mid_payload_of_a_send_wait_at),
		cmocka_unit_test(killed_inside_commit_at_after_its_timestamp),
		cmocka_unit_test(stalled_before_the_commit_of_a_send_wait_at_then_resumed),
		cmocka_unit_test(stalled_inside_commit_at_then_resumed),
		cmocka_unit_test(killed_between_its_slot_and_its_tail_claim),
		cmocka_unit_test(a_dead_slot_with_an_open_claim_is_not_reused),
		cmocka_unit_test(a_handle_is_refused_in_a_forked_child),
		cmocka_unit_test(resolve_checks_its_position),
		cmocka_unit_test(close_with_an_open_claim_aborts_it),
		cmocka_unit_test(killed_right_after_a_batch_claim),
		cmocka_unit_test(garbage_in_a_batch_whose_producer_dies),
		cmocka_unit_test(killed_half_way_through_a_batch),
		cmocka_unit_test(stalled_half_way_through_a_batch_then_resumed),
		cmocka_unit_test(killed_half_way_through_a_batch_wait_at),
		cmocka_unit_test(stalled_half_way_through_a_batch_wait_at_then_resumed),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
