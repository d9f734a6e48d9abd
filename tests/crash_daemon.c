/* SPDX-License-Identifier: MIT */
/*
 * crash_daemon.c - spillwayd killed, restarted, stopped, duplicated
 * (spill/writer.c W3-W5, spill/FORMAT.md "Write order and what survives",
 * ring/ring_layout.h I1, I7). Producer processes send identified records
 * (support.h); at the end the segment files are walked back
 * (support_daemon.h) and every committed record must be there exactly once,
 * in producer order, with the positions contiguous up to the ring's tail.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"
#include "ring_layout.h" /* enum ring_point, for test_stop_at */

#define RING (256u << 10)
#define MAXREC (16u << 10)

#include "daemon_case.h"

/* ABORTED records seen by a walk (walk_check, daemon_case.h), with the
 * feed check in front so that test_feed_on_data can take the same arg. */
struct skips {
	struct test_feed_check c; /* must stay first */
	int n;
	uint64_t pos[256], span[256];
};

static int note_skip(void *arg, const struct test_seg_rec *r)
{
	struct skips *s = arg;

	if (r->type == TEST_TYPE_ABORTED && s->n < 256) {
		s->pos[s->n] = r->position;
		s->span[s->n++] = r->span;
	}
	return 0;
}

static void run_feed(struct test_daemon *d, struct test_feed *f)
{
	test_feed_start(f, d);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
}

/* The end of a case fed by four producers, the daemon stopped: all up to
 * the tail spilled and durable; the log holds every record of the feed
 * once, in producer order, and ends at the tail with no torn index bytes. */
static void all_spilled_and_walked(struct dcase *c)
{
	struct test_feed_check chk;

	info_of(c->t, &c->in);
	assert_int_equal(c->in.spilled, c->in.tail);
	assert_int_equal(c->in.durable, c->in.tail);
	test_feed_check_init(&chk, c->seed, 4, MAXREC);
	walk_check(c->d, c->spec.name, &c->w, &chk, NULL, NULL, c->seed);
	check_counts(&chk, c->f, c->seed);
	assert_int_equal(c->w.end, c->in.tail);
	assert_int_equal(c->w.file_end, c->in.tail);
	assert_int_equal(c->w.torn_index_bytes, 0);
}

/* ---------------------------------------------------------------------------
 * (a) kill -9 at random instants while four producers write.
 */
static void kill9_at_random_instants_loses_and_duplicates_nothing(void **state)
{
	const struct test_topic_spec spec = { "crash", RING, 4 * RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_begin(&c, state, &spec, "kill9");
	uint64_t rng = c.seed, last_spilled = 0;
	int cycles = (int)test_scaled(24, 20, 20), waited = 0, r;
	int64_t t0 = test_now_ns();

	c.f = test_feed_new(d->shm, "crash", c.seed, 0, 4, MAXREC);
	c.f->pace_ns = 300 * 1000; /* ~15 MB/s in all: the daemon keeps up, segments roll */
	c.f->timeout_ns = 200 * TEST_MS;
	c.f->deadline_ns = test_now_ns() + scaled_s(100, 200);
	test_feed_start(c.f, d);
	assert_int_equal(spw_topic_open(d->shm, "crash", SPW_OPEN_RDONLY, &c.t), 0);

	for (int i = 0; i < cycles; i++) {
		test_sleep_ns((int64_t)(10 + test_rand_below(&rng, 191)) * TEST_MS);
		test_daemon_kill(d);
		/* Dead now: what it published must be in the files (W3), and
		 * the counters only grow (I1). */
		info_of(c.t, &c.in);
		assert_seeded(c.in.spilled >= last_spilled, c.seed);
		last_spilled = c.in.spilled;
		memset(&c.w, 0, sizeof(c.w));
		r = test_seg_walk(c.dir, &c.w);
		if (r)
			fail_msg("walk after kill %d: %d: %s (SPW_TEST_SEED=%#llx)", i, r, c.w.err,
				 (unsigned long long)c.seed);
		if (c.w.end < c.in.spilled)
			fail_msg("kill %d: the ring says spilled %llu, the files end at %llu "
				 "(SPW_TEST_SEED=%#llx)", i, (unsigned long long)c.in.spilled,
				 (unsigned long long)c.w.end, (unsigned long long)c.seed);
		assert_true(test_daemon_start(d) > 0);
		/* Every other run gets to attach (so the log moves on); the rest
		 * may die anywhere, recovery included. */
		if (test_rand_below(&rng, 2) == 0) {
			assert_int_equal(test_daemon_wait_attached(d, "crash", scaled_s(10, 30)), 0);
			waited++;
		}
	}
	assert_int_equal(test_daemon_wait_attached(d, "crash", scaled_s(10, 30)), 0);
	atomic_store(&c.f->stop, 1);
	spilled_then_stop(d, c.t, scaled_s(20, 60), &c.in);

	all_spilled_and_walked(&c);
	assert_int_equal(c.w.first, 0);
	assert_int_equal(c.w.data_records, test_feed_total(c.f, c.f->sent));
	if (test_feed_total(c.f, c.f->canceled) == 0)
		assert_int_equal(c.w.aborted_records, 0);
	print_message("[ info     ] %d kills (%d after attach), %llu records, %llu segments, "
		      "%.1f MB, %llu send timeouts, %.1f s\n",
		      cycles, waited, (unsigned long long)c.w.data_records,
		      (unsigned long long)c.w.segments, (double)c.w.end / 1e6,
		      (unsigned long long)test_feed_total(c.f, c.f->timeouts),
		      (double)(test_now_ns() - t0) / TEST_SEC);
	dcase_close(&c);
}

/* A kill -9 inside segment creation: seg_open creates the .seg, then the
 * .idx, then writes the index header. Killed between those steps, the
 * daemon leaves an empty .seg with no index, or with an empty one. That is
 * as much a crash instant as any other: the next daemon must attach and
 * spill (here: the first segment of a fresh log; a roll has the same
 * window for every later segment). */
static void kill9_inside_segment_creation_leaves_a_topic_that_restarts(void **state)
{
	static const char *const topics[] = { "noidx", "emptyidx" };
	struct test_daemon *d = *state;
	struct test_feed *f[2];
	struct test_feed_check c;
	struct test_seg_walk w;
	char dir[1024], p[1200], failed[256] = "";
	uint64_t seed;
	int fd;

	need_daemon();
	seed = test_seed("kill9_seg_open");
	for (int i = 0; i < 2; i++) {
		const struct test_topic_spec spec = { topics[i], RING, 4 * RING, MAXREC, 50, 0 };

		assert_int_equal(test_daemon_make_topic(d, &spec), 0);
		test_daemon_topic_dir(d, topics[i], dir, sizeof(dir));
		snprintf(p, sizeof(p), "%s/%020d.seg", dir, 0);
		fd = open(p, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		if (i == 1) {
			snprintf(p, sizeof(p), "%s/%020d.idx", dir, 0);
			fd = open(p, O_WRONLY | O_CREAT, 0600);
			assert_true(fd >= 0);
			close(fd);
		}
	}
	assert_true(test_daemon_start(d) > 0);
	for (int i = 0; i < 2; i++) {
		if (test_daemon_wait_attached(d, topics[i], scaled_s(5, 15))) {
			snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), " %s",
				 topics[i]);
			continue;
		}
		f[i] = test_feed_new(d->shm, topics[i], seed, 0, 1, MAXREC);
		f[i]->per_producer = 300;
		run_feed(d, f[i]);
	}
	if (failed[0])
		fail_msg("the daemon did not attach the topics left by a kill inside segment "
			 "creation:%s (empty .seg, missing or empty .idx: \"unreadable index "
			 "header\")", failed);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	for (int i = 0; i < 2; i++) {
		test_feed_check_init(&c, seed, 1, MAXREC);
		walk_check(d, topics[i], &w, &c, NULL, NULL, seed);
		check_counts(&c, f[i], seed);
		assert_false(w.unborn_segment);
		assert_int_equal(w.first, 0);
		test_feed_free(f[i]);
	}
}

/* ---------------------------------------------------------------------------
 * (b) the ring is gone (a reboot) and the log's tail is damaged.
 */
enum damage { CUT_TAIL, CORRUPT_TAIL };

struct ending_by {
	uint64_t limit, n;
};

static int count_ending_by(void *arg, const struct test_seg_rec *r)
{
	struct ending_by *e = arg;

	e->n += r->position + r->span <= e->limit;
	return 0;
}

/* DATA records of the log that end at or before limit. */
static uint64_t records_ending_by(const char *dir, uint64_t limit)
{
	struct ending_by e = { limit, 0 };
	struct test_seg_walk w;

	memset(&w, 0, sizeof(w));
	w.on_data = count_ending_by;
	w.arg = &e;
	assert_int_equal(test_seg_walk(dir, &w), 0);
	return e.n;
}

/* The durable checkpoint (spill/FORMAT.md), written with the library's own
 * writer: "durable up to pos" as if the last sync round never completed. */
int seg_ckpt_open(const char *topic_dir);
int seg_ckpt_write(int fd, uint64_t durable);

static void checkpoint_at(const char *dir, uint64_t pos)
{
	int fd = seg_ckpt_open(dir);

	assert_true(fd >= 0);
	assert_int_equal(seg_ckpt_write(fd, pos), 0);
	close(fd);
}

static void restart_after_ring_loss(void **state, enum damage how)
{
	const struct test_topic_spec spec = { "lost", RING, 2 * RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d =
		dcase_begin(&c, state, &spec, how == CUT_TAIL ? "ring_loss_cut" : "ring_loss_corrupt");
	struct test_feed *f0, *f1;
	struct skips skips = { 0 }, *sk = &skips;
	char sp[1100];
	uint64_t rng = c.seed, old_tail, cut_end, kept = 0, k = 0, reused_at = 0, below_cut;
	int fd;

	f0 = test_feed_new(d->shm, "lost", c.seed, 0, 1, MAXREC);
	f0->per_producer = test_scaled(700, 400, 400); /* ~1.4 MB: three segments */
	run_feed(d, f0);
	assert_int_equal(spw_topic_open(d->shm, "lost", SPW_OPEN_RDONLY, &c.t), 0);
	info_of(c.t, &c.in);
	old_tail = c.in.tail;
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(c.t, &c.in);
	assert_int_equal(c.in.durable, old_tail);
	spw_topic_close(c.t);
	c.t = NULL;

	/* Where the last index entry's range begins: damage there cuts the
	 * log back to it. */
	memset(&c.w, 0, sizeof(c.w));
	assert_int_equal(test_seg_walk(c.dir, &c.w), 0);
	assert_int_equal(c.w.end, old_tail);
	cut_end = c.w.last_entry_start;
	assert_true(cut_end < old_tail);
	below_cut = records_ending_by(c.dir, cut_end);
	assert_int_equal(spw_topic_delete(d->shm, "lost"), 0);
	snprintf(sp, sizeof(sp), "%s/%020llu.seg", c.dir, (unsigned long long)c.w.last_base);
	if (how == CUT_TAIL) {
		/* A tail beyond the durable checkpoint (the crash came before
		 * the fdatasync that would have covered it): below a checkpoint
		 * recovery refuses to cut (damage_below_the_checkpoint_...). */
		checkpoint_at(c.dir, cut_end);
		/* >= 8 bytes: less is hidden by rounding positions up to 8. */
		k = 8 + test_rand_below(&rng, old_tail - cut_end - 7);
		assert_int_equal(truncate(sp, (off_t)(old_tail - k - c.w.last_base)), 0);
	} else {
		uint64_t junk = 0x0123456789abcdefull;
		/* A torn tail beyond the durable checkpoint may be cut; below
		 * one it is kept (a_flipped_byte_below_the_durable_checkpoint_). */
		checkpoint_at(c.dir, cut_end);
		fd = open(sp, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, &junk, 8, (off_t)(old_tail - 8 - c.w.last_base)), 8);
		close(fd);
	}

	/* The daemon recreates the ring after the verified log plus the cut
	 * range, which it records as ABORTED. */
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_log(d, "ring made again", 1, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_wait_attached(d, "lost", scaled_s(10, 30)), 0);
	assert_int_equal(spw_topic_open(d->shm, "lost", SPW_OPEN_RDONLY, &c.t), 0);
	info_of(c.t, &c.in);
	if (c.in.start_position < old_tail) {
		reused_at = c.in.start_position;
		print_error("BUG: the recreated ring starts at %llu, below the old tail %llu "
			    "(damage: %s, %llu bytes): positions %llu..%llu are reused\n",
			    (unsigned long long)c.in.start_position, (unsigned long long)old_tail,
			    how == CUT_TAIL ? "cut" : "corrupt", (unsigned long long)k,
			    (unsigned long long)c.in.start_position, (unsigned long long)old_tail);
	}
	assert_true(c.in.start_position >= cut_end);
	assert_int_equal(c.in.tail, c.in.start_position);

	/* New records continue after it. */
	f1 = test_feed_new(d->shm, "lost", c.seed, 1, 1, MAXREC);
	f1->per_producer = 100;
	run_feed(d, f1);
	info_of(c.t, &c.in);
	assert_int_equal(test_wait_counter(c.t, false, c.in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(c.t, &c.in);

	/* The walk: producer 0's records before the cut intact, the cut range
	 * ABORTED, producer 1's records after it. */
	test_feed_check_init(&sk->c, c.seed, 2, MAXREC);
	walk_check(d, "lost", &c.w, &sk->c, note_skip, sk, c.seed);
	kept = sk->c.e.next_seq[0];
	assert_int_equal(kept, below_cut);
	assert_true(kept < test_feed_total(f0, f0->sent));
	assert_int_equal(sk->c.e.next_seq[1], 100);
	assert_int_equal(c.w.end, c.in.tail);
	assert_true(sk->n >= 1);
	assert_int_equal(sk->pos[0], cut_end);
	assert_int_equal(c.w.aborted_bytes, c.in.start_position - cut_end);
	print_message("[ info     ] old tail %llu, log cut back to %llu, new ring at %llu, %llu "
		      "records kept of %llu\n",
		      (unsigned long long)old_tail, (unsigned long long)cut_end,
		      (unsigned long long)c.in.start_position, (unsigned long long)kept,
		      (unsigned long long)test_feed_total(f0, f0->sent));
	dcase_close(&c);
	test_feed_free(f0);
	test_feed_free(f1);
	if (reused_at)
		fail_msg("positions reused: the new ring starts at %llu < old tail %llu "
			 "(SPW_TEST_SEED=%#llx)", (unsigned long long)reused_at,
			 (unsigned long long)old_tail, (unsigned long long)c.seed);
}

static void ring_loss_with_a_cut_tail_restarts_after_the_old_tail(void **state)
{
	restart_after_ring_loss(state, CUT_TAIL);
}

static void ring_loss_with_a_corrupt_tail_restarts_after_the_old_tail(void **state)
{
	restart_after_ring_loss(state, CORRUPT_TAIL);
}

/* ---------------------------------------------------------------------------
 * (c) a producer stopped between claim and commit, then killed (I7): while
 * it is stopped (longer than unblock_ms) the daemon waits and reports the
 * stall (log, stat), never aborts; once it is dead the daemon aborts the
 * claim at its next look (no timeout) and the topic moves on.
 */
enum victim_mode { MID_PAYLOAD, BEFORE_HEADER };

struct victim {
	char shm[512];
	uint64_t seed;
	enum victim_mode mode;
	uint32_t before;          /* records sent before the fatal claim */
	_Atomic int64_t claim_pos; /* MID_PAYLOAD: the claim's position */
};

static int victim_main(void *arg)
{
	struct victim *v = arg;
	struct test_id_sender s;
	struct spw_claim c;
	uint32_t len;

	TEST_CHECK(test_id_sender_open(&s, v->shm, "victim", v->seed, 0, MAXREC) == 0, "victim");
	for (uint32_t i = 0; i < v->before; i++) {
		len = test_id_sender_next(&s); /* record i */
		TEST_CHECK(spw_producer_send_wait(s.p, s.buf, len, 10 * TEST_SEC) >= 0, "send %u", i);
	}
	len = test_id_len(&s.len_rng, 0, MAXREC);
	if (len < 64)
		len = 64 | (len & 3); /* keep the length class: payload to half-write */
	if (v->mode == BEFORE_HEADER)
		test_stop_at(RING_AT_CLAIMED); /* never resumed: killed while stopped */
	TEST_CHECK(spw_producer_claim_wait(s.p, len, 10 * TEST_SEC, &c) == 0, "claim");
	atomic_store(&v->claim_pos, c.position);
	memset(c.data, 0xab, len / 2);
	raise(SIGSTOP);
	/* Never resumed: killed while stopped. */
	return 1;
}

static void killed_claim(void **state, enum victim_mode mode)
{
	const struct test_topic_spec spec = { "victim", RING, 4 * RING, MAXREC, 50, 200 };
	struct dcase c;
	struct test_daemon *d = dcase_begin(
		&c, state, &spec, mode == BEFORE_HEADER ? "claim_before_header" : "claim_mid_payload");
	struct victim *v = test_shared_alloc(sizeof(*v));
	struct skips skips = { 0 }, *sk = &skips;
	uint64_t tail_at_stop;
	/* "within about a second": unblock_ms is 200 */
	int64_t t_kill, moved_ns, logged,
		limit_ns = (int64_t)test_scaled(1500, 5000, 5000) * TEST_MS;
	pid_t vp;
	bool found = false;

	dcase_open_ro(&c);
	c.f = feed_timed(d, "victim", c.seed, 1, 3, MAXREC);
	c.f->per_producer = test_scaled(600, 300, 300);
	c.f->pace_ns = 200 * 1000;
	test_feed_start(c.f, d);

	snprintf(v->shm, sizeof(v->shm), "%s", d->shm);
	v->seed = c.seed;
	v->mode = mode;
	v->before = 20;
	atomic_store(&v->claim_pos, -1);
	vp = test_fork(victim_main, v);
	test_daemon_add_kid(d, vp);
	assert_int_equal(test_wait_stopped(vp, scaled_s(10, 30)), 0);
	info_of(c.t, &c.in);
	tail_at_stop = c.in.tail; /* past the victim's claim */
	/* Alive but stopped for 3x unblock_ms: the daemon waits and says so
	 * (looked at until it does: a loaded machine, or a sanitizer build,
	 * may take longer than 600 ms to get there; nothing here is timed). */
	test_sleep_ns(600 * TEST_MS);
	info_of(c.t, &c.in);
	for (int64_t until = test_now_ns() + scaled_s(10, 30);
	     c.in.stall_slot < 0 && test_now_ns() < until;) {
		test_sleep_ns(10 * TEST_MS);
		info_of(c.t, &c.in);
	}
	assert_true(c.in.stall_slot >= 0);
	assert_true(c.in.stall_position < tail_at_stop);
	if (mode == MID_PAYLOAD)
		assert_int_equal(c.in.stall_position, (uint64_t)atomic_load(&v->claim_pos));
	assert_true(c.in.spilled <= c.in.stall_position);
	assert_int_equal(c.in.stall_pid, (uint32_t)vp); /* the kernel's answer */
	assert_int_equal(c.in.aborted_claims, 0);
	test_daemon_reap_kid(d, vp);
	t_kill = test_now_ns();
	/* The daemon aborts the dead claim after unblock_ms and spills on. */
	assert_int_equal(test_wait_counter(c.t, false, tail_at_stop, limit_ns), 0);
	moved_ns = test_now_ns() - t_kill;

	spilled_then_stop(d, c.t, scaled_s(10, 30), &c.in);
	assert_true(test_daemon_log_count(d, "aborted", true) >= 1);
	assert_true(test_daemon_log_count(d, "spilling waits at position", true) >= 1);
	assert_true(test_daemon_log_count(d, "spilling resumed", true) >= 1);
	logged = test_daemon_log_number(d, "claim at position ");
	assert_true(logged >= 0);
	if (mode == MID_PAYLOAD)
		assert_int_equal(logged, atomic_load(&v->claim_pos));
	assert_true((uint64_t)logged < tail_at_stop);

	info_of(c.t, &c.in);
	test_feed_check_init(&sk->c, c.seed, 4, MAXREC);
	walk_check(d, "victim", &c.w, &sk->c, note_skip, sk, c.seed);
	check_counts(&sk->c, c.f, c.seed);
	assert_int_equal(sk->c.e.next_seq[0], v->before);
	assert_int_equal(c.w.end, c.in.tail);
	for (int i = 0; i < sk->n; i++)
		found |= sk->pos[i] == (uint64_t)logged;
	if (!found)
		fail_msg("no ABORTED record at the dead claim's position %lld (%d aborted records)",
			 (long long)logged, sk->n);
	print_message("[ info     ] claim at %lld aborted; spilled past it %.0f ms after the kill; "
		      "%d aborted records, %llu send timeouts\n",
		      (long long)logged, (double)moved_ns / TEST_MS, sk->n,
		      (unsigned long long)test_feed_total(c.f, c.f->timeouts));
	dcase_close(&c);
	test_shared_free(v, sizeof(*v));
}

static void producer_stopped_after_its_tail_claim_waits_then_killed_is_aborted_at_once(void **state)
{
	killed_claim(state, BEFORE_HEADER);
}

static void producer_stopped_mid_payload_waits_then_killed_is_aborted_at_once(void **state)
{
	killed_claim(state, MID_PAYLOAD);
}

/* ---------------------------------------------------------------------------
 * (d) SIGTERM: everything spilled and fdatasync'd, exit 0.
 */
static void sigterm_spills_everything_durably_and_exits_0(void **state)
{
	const struct test_topic_spec spec = { "term", RING, 4 * RING, MAXREC, 1000, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_begin(&c, state, &spec, "sigterm");

	c.f = test_feed_new(d->shm, "term", c.seed, 0, 4, MAXREC);
	c.f->per_producer = test_scaled(1000, 300, 300);
	run_feed(d, c.f);
	dcase_open_ro(&c);
	assert_true(test_daemon_alive(d));
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	assert_true(test_daemon_log_count(d, "stopped", false) >= 1);
	all_spilled_and_walked(&c);
	dcase_close(&c);
}

/* ---------------------------------------------------------------------------
 * (e) one daemon per data dir.
 */
static void second_daemon_on_the_same_data_dir_exits_1(void **state)
{
	const struct test_topic_spec spec = { "solo", RING, 4 * RING, MAXREC, 0, 0 };
	struct dcase c;
	struct test_daemon *d;
	char log2[600], pidstr[32];
	static char text[65536];
	pid_t second;
	FILE *fl;
	long n;

	d = dcase_begin(&c, state, &spec, NULL);
	snprintf(log2, sizeof(log2), "%s/second.log", d->root);
	second = test_daemon_spawn(d, log2);
	assert_true(second > 0);
	assert_int_equal(test_wait(second, scaled_s(10, 30)), 1);
	fl = fopen(log2, "r");
	assert_non_null(fl);
	n = (long)fread(text, 1, sizeof(text) - 1, fl);
	text[n > 0 ? n : 0] = '\0';
	fclose(fl);
	assert_true(n > 0);
	if (!strstr(text, "already serves"))
		fail_msg("the second daemon said: %s", text);
	snprintf(pidstr, sizeof(pidstr), "pid %d", (int)d->pid);
	if (!strstr(text, pidstr))
		fail_msg("the message does not name the running daemon (%s): %s", pidstr, text);
	/* The first one is unharmed. */
	test_sleep_ns(100 * TEST_MS);
	assert_true(test_daemon_alive(d));
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

/* A second daemon with its own data dir but the same shm dir must not spill
 * the rings the first one owns (the records would be split between two disk
 * logs): it says so once, naming the owner, and leaves them alone. */
static void second_daemon_on_the_same_shm_dir_leaves_owned_rings_alone(void **state)
{
	const struct test_topic_spec spec = { "owned", RING, 4 * RING, MAXREC, 0, 0 };
	struct dcase c;
	struct test_daemon *d, d2;
	char log2[600], want[128], dir2[1200];
	static char text[65536];
	struct stat st;
	pid_t second;
	int64_t deadline;
	FILE *fl;
	long n = 0;

	d = dcase_begin(&c, state, &spec, NULL);
	d2 = *d;
	snprintf(d2.data, sizeof(d2.data), "%s/data2", d->root);
	snprintf(log2, sizeof(log2), "%s/second.log", d->root);
	second = test_daemon_spawn(&d2, log2);
	assert_true(second > 0);
	test_daemon_add_kid(d, second);
	snprintf(want, sizeof(want), "is spilled by another spillwayd (pid %d)", (int)d->pid);
	deadline = test_now_ns() + scaled_s(10, 30);
	for (;;) {
		assert_true(test_now_ns() < deadline);
		fl = fopen(log2, "r");
		if (fl) {
			n = (long)fread(text, 1, sizeof(text) - 1, fl);
			text[n > 0 ? n : 0] = '\0';
			fclose(fl);
			if (strstr(text, want))
				break;
		}
		test_sleep_ns(50 * TEST_MS);
	}
	/* Records go to the owner only, through several rescans of the second. */
	open_producer(d, "owned", &c.t, &c.p);
	for (int i = 0; i < 2000; i++)
		assert_true(spw_producer_send_wait(c.p, "record", 6, 10 * TEST_SEC) >= 0);
	info_of(c.t, &c.in);
	assert_int_equal(test_wait_counter(c.t, false, c.in.tail, scaled_s(10, 30)), 0);
	test_sleep_ns(2500 * TEST_MS);
	snprintf(dir2, sizeof(dir2), "%s/owned/00000000000000000000.seg", d2.data);
	assert_int_not_equal(stat(dir2, &st), 0);
	fl = fopen(log2, "r");
	assert_non_null(fl);
	n = (long)fread(text, 1, sizeof(text) - 1, fl);
	text[n > 0 ? n : 0] = '\0';
	fclose(fl);
	{
		int count = 0;

		for (char *q = text; (q = strstr(q, "is spilled by another spillwayd")); q++)
			count++;
		assert_int_equal(count, 1); /* said once, not at every rescan */
	}
	assert_true(test_daemon_alive(d));
	dcase_close(&c);
	kill(second, SIGTERM);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(20, 60)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

/* ---------------------------------------------------------------------------
 * (f) A flipped byte below the durable checkpoint is damage, not a torn
 * tail: recovery keeps every durable record after it (the old recovery cut
 * the log there and turned the rest into an aborted gap), the daemon says
 * where, readers get -EBADMSG naming the file and position, and
 * SPW_READER_SKIP_CORRUPT passes over just that range.
 */
struct seqs {
	uint64_t n, next, skipped_to;
	int bad;
};

/* Records seq from .. from + n - 1 (200 bytes: the seq, then its low byte
 * repeated), each waited for; the last one's position. */
static int64_t send_seqs(struct spw_producer *p, uint64_t from, uint64_t n)
{
	uint8_t buf[200];
	int64_t pos = -1;

	for (uint64_t i = from; i < from + n; i++) {
		memcpy(buf, &i, 8);
		memset(buf + 8, (int)(i & 0xff), sizeof(buf) - 8);
		pos = spw_producer_send_wait(p, buf, sizeof(buf), 10 * TEST_SEC);
		assert_true(pos >= 0);
	}
	return pos;
}

static int seq_cb(void *arg, const struct spw_record *r)
{
	struct seqs *q = arg;
	uint64_t v;

	memcpy(&v, r->data, 8);
	if (r->len != 200 || v < q->next)
		q->bad++;
	q->next = v + 1;
	q->n++;
	return 0;
}

/* Read a topic back from disk (SPW_READER_NO_LIVE | flags) into q: the last
 * poll's result (0 at the end, or the error that stopped it). *rp stays open
 * for the caller's checks. */
static int read_seqs(struct test_daemon *d, const char *topic, unsigned flags, struct seqs *q,
		     struct spw_reader **rp)
{
	struct spw_reader_opts ro = { 0 };
	int n;

	ro.shm_dir = d->shm;
	ro.data_dir = d->data;
	ro.flags = SPW_READER_NO_LIVE | flags;
	assert_int_equal(spw_reader_open(topic, &ro, rp), 0);
	do
		n = spw_reader_poll(*rp, seq_cb, q, 1000);
	while (n > 0);
	return n;
}

/* The start of the cases on a damaged log: topic made (flush 20 ms), the
 * daemon attached, records 0 .. total - 1 sent and acknowledged durable
 * (settle: then 100 ms more, for the checkpoint written after that sync),
 * the daemon killed (-9); c holds the topic and its producer. */
static struct test_daemon *durable_then_killed(struct dcase *c, void **state, const char *topic,
					       uint64_t total, bool settle)
{
	const struct test_topic_spec spec = { topic, RING, 4 * RING, MAXREC, 20, 0 };
	struct test_daemon *d = dcase_producer(c, state, &spec);
	int64_t pos;

	pos = send_seqs(c->p, 0, total);
	assert_int_equal(spw_producer_wait_ack(c->p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), 0);
	if (settle)
		test_sleep_ns(100 * TEST_MS);
	test_daemon_kill(d);
	return d;
}

/* The byte of the file at off xored with mask. */
static void xor_byte_at(const char *path, off_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t byte;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, off), 1);
	byte ^= mask;
	assert_int_equal(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

/* The topic read back from disk (read_seqs) to its end: want records, none
 * out of order. The reader stays open in *rp. */
static void read_all_seqs(struct test_daemon *d, const char *topic, uint64_t want, struct seqs *q,
			  struct spw_reader **rp)
{
	assert_int_equal(read_seqs(d, topic, SPW_READER_NO_LIVE, q, rp), 0);
	assert_int_equal(q->bad, 0);
	assert_int_equal(q->n, want);
}

static void a_flipped_byte_below_the_durable_checkpoint_loses_nothing_else(void **state)
{
	const uint64_t total = 700; /* 700 * 216 B = 151200 B: three index entries */
	struct dcase c;
	struct test_daemon *d = durable_then_killed(&c, state, "flip", total, true);
	struct seqs q = { 0 };
	char seg[1200], file[1200];
	int64_t pos = -1, at = -1;
	int n;

	/* A third of the way into the segment: inside the second index entry. */
	snprintf(seg, sizeof(seg), "%s/00000000000000000000.seg", c.dir);
	xor_byte_at(seg, 80000, 0x40);

	start_attached(d, "flip");
	assert_int_equal(test_daemon_log_count(d, "cut a torn tail", false), 0);
	assert_int_equal(test_daemon_log_count(d, "aborted gap", false), 0);
	assert_int_equal(test_daemon_log_count(d, "fail their CRC below the durable checkpoint", false), 1);
	info_of(c.t, &c.in);
	assert_int_equal(c.in.disk_bad_ranges, 1); /* stat shows it */
	if (getenv("SPW_CLI"))
		assert_int_equal(test_daemon_cli(d, "stat flip | grep -q 'DISK DAMAGE: 1 range(s) "
						    "of the log fail their CRC'"),
				 0);
	/* New records go on after the old ones. */
	pos = send_seqs(c.p, total, 1);
	assert_int_equal(pos, (int64_t)(total * 216));
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), 0);

	/* Without skipping: -EBADMSG, naming the segment file and where. */
	n = read_seqs(d, "flip", SPW_READER_NO_LIVE, &q, &c.r);
	assert_int_equal(n, -EBADMSG);
	assert_int_equal(spw_reader_error(c.r, file, sizeof(file), &at), 0);
	assert_string_equal(file, seg);
	assert_true(at <= 80000 && at > 0);
	spw_reader_close(c.r);
	/* Skipping: only the bad entry's records are missing, all after it
	 * (durable before the crash, and the new one) arrive. */
	memset(&q, 0, sizeof(q));
	n = read_seqs(d, "flip", SPW_READER_NO_LIVE | SPW_READER_SKIP_CORRUPT, &q, &c.r);
	assert_int_equal(n, 0);
	assert_int_equal(q.bad, 0);
	assert_int_equal(q.next, total + 1);
	assert_true(spw_reader_skipped(c.r) > 0 && spw_reader_skipped(c.r) <= 70000);
	assert_int_equal(q.n + spw_reader_skipped(c.r) / 216, total + 1);
	info_of(c.t, &c.in);
	assert_int_equal(spw_reader_position(c.r), (int64_t)c.in.tail);
	print_message("[ info     ] byte flipped at 80000: %llu bytes skipped (one index entry), "
		      "%llu of %llu records read back, error named %s at %lld\n",
		      (unsigned long long)spw_reader_skipped(c.r), (unsigned long long)q.n,
		      (unsigned long long)total + 1, seg, (long long)at);
	dcase_end(&c);
}

/* ---------------------------------------------------------------------------
 * (g) A crash right after a segment roll can leave the new segment's index
 * empty (or shorter than its header) while the segment holds records: the
 * index is rebuilt from them, not a reason to refuse the topic.
 */
static void an_empty_index_after_a_roll_is_rebuilt(void **state)
{
	const uint64_t total = 6000; /* 6000 * 216 B = 1.3 MB: into the second 1 MiB segment */
	struct dcase c;
	struct test_daemon *d = durable_then_killed(&c, state, "reidx", total, false);
	struct seqs q = { 0 };
	char ip[1200];
	int64_t pos = -1;

	snprintf(ip, sizeof(ip), "%s/%020llu.idx", c.dir, (unsigned long long)(4 * RING));
	if (truncate(ip, 0)) {
		char cmd[1200];

		snprintf(cmd, sizeof(cmd), "ls -la %s >&2", c.dir);
		if (system(cmd)) {}
		fail_msg("truncate %s: %s", ip, strerror(errno));
	}

	assert_true(test_daemon_start(d) > 0);
	if (test_daemon_wait_attached(d, "reidx", scaled_s(10, 30))) {
		test_daemon_dump_log(d, 4000);
		fail_msg("not attached");
	}
	assert_int_equal(test_daemon_log_count(d, "rebuilt it from the segment's records", false), 1);
	assert_int_equal(test_daemon_log_count(d, "cut a torn tail", false), 0);
	assert_int_equal(test_daemon_log_count(d, "unreadable index", false), 0);
	info_of(c.t, &c.in);
	pos = send_seqs(c.p, total, 1);
	assert_true(pos >= (int64_t)c.in.tail); /* after every old one (a padding may come first) */
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), 0);
	read_all_seqs(d, "reidx", total + 1, &q, &c.r);
	info_of(c.t, &c.in);
	assert_int_equal(spw_reader_position(c.r), (int64_t)c.in.tail);
	dcase_end(&c);
}

/* ---------------------------------------------------------------------------
 * (h) Below the durable checkpoint, a damaged index is rebuilt (the
 * segment's bytes are fine: nothing is lost), and a segment cut short is
 * refused rather than cut further: acknowledged data is never thrown away.
 */
static void damage_below_the_checkpoint_is_rebuilt_or_refused_never_cut(void **state)
{
	const uint64_t total = 700;
	struct dcase c;
	struct test_daemon *d = durable_then_killed(&c, state, "ckpt", total, true);
	struct seqs q = { 0 };
	char seg[1200], idx[1200];
	struct stat st;

	snprintf(seg, sizeof(seg), "%s/00000000000000000000.seg", c.dir);
	snprintf(idx, sizeof(idx), "%s/00000000000000000000.idx", c.dir);
	/* (a) A flipped byte in the index's first entry. */
	xor_byte_at(idx, 64 + 5, 0x10);
	start_attached(d, "ckpt");
	assert_int_equal(test_daemon_log_count(d, "rebuilt it from the segment's records", false), 1);
	assert_int_equal(test_daemon_log_count(d, "cut a torn tail", false), 0);
	read_all_seqs(d, "ckpt", total, &q, &c.r);
	spw_reader_close(c.r);
	c.r = NULL;
	test_sleep_ns(100 * TEST_MS);
	test_daemon_kill(d);
	/* (b) The segment cut below the checkpoint: refused, not cut more. */
	assert_int_equal(truncate(seg, 60000), 0);
	assert_true(test_daemon_start(d) > 0);
	if (test_daemon_wait_log(d, "refusing to cut acknowledged data", 1, scaled_s(10, 30))) {
		test_daemon_dump_log(d, 3000);
		fail_msg("no refusal");
	}
	assert_int_equal(test_daemon_log_count(d, "topic ckpt: attached", false), 0);
	assert_int_equal(stat(seg, &st), 0);
	assert_int_equal(st.st_size, 60000);
	dcase_close(&c);
	test_daemon_kill(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kill9_at_random_instants_loses_and_duplicates_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			kill9_inside_segment_creation_leaves_a_topic_that_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(ring_loss_with_a_cut_tail_restarts_after_the_old_tail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			ring_loss_with_a_corrupt_tail_restarts_after_the_old_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(
			producer_stopped_after_its_tail_claim_waits_then_killed_is_aborted_at_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			producer_stopped_mid_payload_waits_then_killed_is_aborted_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(sigterm_spills_everything_durably_and_exits_0, setup,
						teardown),
		cmocka_unit_test_setup_teardown(second_daemon_on_the_same_data_dir_exits_1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(second_daemon_on_the_same_shm_dir_leaves_owned_rings_alone,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_flipped_byte_below_the_durable_checkpoint_loses_nothing_else, setup, teardown),
		cmocka_unit_test_setup_teardown(an_empty_index_after_a_roll_is_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(
			damage_below_the_checkpoint_is_rebuilt_or_refused_never_cut, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
