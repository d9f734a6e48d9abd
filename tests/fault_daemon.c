/* SPDX-License-Identifier: MIT */
/*
 * fault_daemon.c - spillwayd under faults: write errors through the
 * SPILLWAY_FAULT_FILE seam (ENOSPC, EIO) and on a real full filesystem
 * (spill/writer.c W5: stop, keep the data in the ring, retry with backoff;
 * producers feel back-pressure, nothing is dropped), garbage record headers
 * in shared memory (ring/ring_layout.h: the ring is never trusted), and
 * SIGHUP. The segment files are walked back at the end (support_daemon.h).
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"

#define RING (256u << 10)
#define MAXREC (16u << 10)

#include "daemon_case.h"

/* Atomically (temp + rename): the daemon reads the fault file on every
 * write, and an empty file, seen between create and write, means ENOSPC. */
static void write_text(const char *path, const char *text)
{
	char tmp[1100];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(rename(tmp, path), 0);
}

/* Walk the topic's log against the feed: every record once, in order. */
static void walk_feed(struct test_daemon *d, const char *topic, const struct test_feed *f,
		      uint32_t nproducers, struct test_seg_walk *w)
{
	struct test_feed_check check, *c = &check;
	char dir[1024];
	int r;

	test_daemon_topic_dir(d, topic, dir, sizeof(dir));
	test_feed_check_init(c, f->seed, nproducers, f->max_record);
	memset(w, 0, sizeof(*w));
	w->on_data = test_feed_on_data;
	w->arg = c;
	r = test_seg_walk(dir, w);
	if (r)
		fail_msg("segment walk: %d: %s%s%s (SPW_TEST_SEED=%#llx)", r, w->err,
			 c->err[0] ? ": " : "", c->err, (unsigned long long)f->seed);
	for (uint32_t p = f->first_id; p < f->first_id + f->producers; p++)
		if (test_feed_check_count(c, p, atomic_load(&f->sent[p])))
			fail_msg("%s (SPW_TEST_SEED=%#llx)", c->err, (unsigned long long)f->seed);
}

/* Wait until a producer's send timed out: the ring is full and stays so. */
static void wait_blocked(struct test_feed *f, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;

	while (test_feed_total(f, f->timeouts) == 0) {
		if (test_now_ns() > end)
			fail_msg("producers never blocked (sent %llu)",
				 (unsigned long long)test_feed_total(f, f->sent));
		test_sleep_ns(2 * TEST_MS);
	}
}

/* ---------------------------------------------------------------------------
 * (a), (b) write errors through the fault seam.
 */
static void fault_seam(struct test_daemon *d, const char *err_name, const char *strerr)
{
	const struct test_topic_spec spec = { "fault", RING, 4 * RING, MAXREC, 50, 0 };
	struct spw_topic *t = NULL;
	struct spw_topic_info in, in2;
	struct test_seg_walk w;
	struct test_feed *f;
	uint64_t seed, sent_blocked;
	int errors;
	char content[32];

	need_daemon();
	seed = test_seed(err_name);
	d->fault_env = true;
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	start_attached(d, "fault");
	assert_int_equal(spw_topic_open(d->shm, "fault", SPW_OPEN_RDONLY, &t), 0);
	f = test_feed_new(d->shm, "fault", seed, 0, 2, MAXREC);
	f->per_producer = test_scaled(1500, 600, 600);
	f->pace_ns = 100 * 1000;
	f->timeout_ns = 50 * TEST_MS;
	f->deadline_ns = test_now_ns() + scaled_s(60, 120);
	test_feed_start(f, d);
	/* Some records spilled first: the fault hits a segment in use. */
	assert_int_equal(test_wait_counter(t, false, 128u << 10, scaled_s(10, 30)), 0);
	snprintf(content, sizeof(content), "%s\n", err_name);
	write_text(d->fault, content);

	/* The ring fills and stays full: producers block, no record is
	 * dropped, spilled does not move. */
	wait_blocked(f, scaled_s(10, 30));
	test_sleep_ns(100 * TEST_MS); /* in-flight writes land */
	info_of(t, &in);
	sent_blocked = test_feed_total(f, f->sent);
	test_sleep_ns(1500 * TEST_MS); /* several retries with backoff */
	info_of(t, &in2);
	assert_int_equal(in2.spilled, in.spilled);
	assert_true(in2.tail - in2.reclaimed > RING - 2 * MAXREC - 64);
	assert_true(test_feed_total(f, f->sent) - sent_blocked <= 2 * f->producers);
	assert_true(test_daemon_alive(d));
	/* Checked at the end, so that a noisy log does not hide whether the
	 * data came through. */
	errors = test_daemon_log_count(d, strerr, false);
	if (errors != 1)
		test_daemon_dump_log(d, 4096);

	/* Fault gone: it resumes by itself and spills everything. */
	assert_int_equal(unlink(d->fault), 0);
	assert_int_equal(test_daemon_wait_log(d, "resumed", 1, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(t, &in);
	assert_int_equal(test_wait_counter(t, false, in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(t, &in);
	assert_int_equal(in.durable, in.tail);
	walk_feed(d, "fault", f, 2, &w);
	assert_int_equal(w.end, in.tail);
	assert_int_equal(w.file_end, in.tail);
	assert_int_equal(w.data_records, f->per_producer * f->producers);
	print_message("[ info     ] blocked at spilled %llu; %llu send timeouts; %d error lines\n",
		      (unsigned long long)in2.spilled,
		      (unsigned long long)test_feed_total(f, f->timeouts), errors);
	assert_int_equal(test_daemon_log_count(d, strerr, false), errors); /* none after */
	spw_topic_close(t);
	test_feed_free(f);
	if (errors != 1)
		fail_msg("the daemon logged \"%s\" %d times while the fault lasted (want once: "
			 "one line per incident, not one per retry)", strerr, errors);
}

static void enospc_blocks_producers_logs_once_and_resumes_losing_nothing(void **state)
{
	fault_seam(*state, "ENOSPC", "No space left on device");
}

static void eio_blocks_producers_logs_once_and_resumes_losing_nothing(void **state)
{
	fault_seam(*state, "EIO", "Input/output error");
}

/* ---------------------------------------------------------------------------
 * (c) a real full filesystem: a 2 MiB tmpfs as the data dir.
 */
static void full_tmpfs_data_dir_blocks_then_resumes_when_space_returns(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "small", RING, RING, MAXREC, 50, 0 };
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	struct test_seg_walk w;
	struct statvfs vfs;
	struct test_feed *f;
	char filler[600];
	uint64_t seed, free_bytes, fill;
	static uint8_t chunk[64 << 10];
	int fd;

	need_daemon();
	if (mount("tmpfs", d->data, "tmpfs", 0, "size=2m")) {
		print_message("mount -t tmpfs -o size=2m tmpfs %s: %s: skipped\n", d->data,
			      strerror(errno));
		skip();
	}
	snprintf(d->mounted, sizeof(d->mounted), "%s", d->data);
	seed = test_seed("tmpfs");
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	/* Leave room for about one preallocated segment and its index. */
	assert_int_equal(statvfs(d->data, &vfs), 0);
	free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	assert_true(free_bytes > RING + (256u << 10));
	fill = free_bytes - RING - (64u << 10);
	snprintf(filler, sizeof(filler), "%s/filler", d->data);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	memset(chunk, 0x5a, sizeof(chunk));
	for (uint64_t done = 0; done < fill;) {
		size_t n = fill - done < sizeof(chunk) ? (size_t)(fill - done) : sizeof(chunk);
		ssize_t wr = write(fd, chunk, n);

		assert_true(wr > 0);
		done += (uint64_t)wr;
	}
	close(fd);

	start_attached(d, "small");
	assert_int_equal(spw_topic_open(d->shm, "small", SPW_OPEN_RDONLY, &t), 0);
	/* ~1 MB: more than the room left, less than the whole filesystem. */
	f = test_feed_new(d->shm, "small", seed, 0, 2, MAXREC);
	f->per_producer = 250;
	f->timeout_ns = 50 * TEST_MS;
	f->deadline_ns = test_now_ns() + scaled_s(60, 120);
	test_feed_start(f, d);
	assert_int_equal(test_daemon_wait_log(d, "No space left on device", 1, scaled_s(20, 60)), 0);
	wait_blocked(f, scaled_s(10, 30));
	test_sleep_ns(500 * TEST_MS);
	assert_true(test_daemon_alive(d));
	info_of(t, &in);
	print_message("[ info     ] full at spilled %llu (tail %llu); \"No space\" logged %d times\n",
		      (unsigned long long)in.spilled, (unsigned long long)in.tail,
		      test_daemon_log_count(d, "No space left on device", false));

	assert_int_equal(unlink(filler), 0);
	assert_int_equal(test_daemon_wait_log(d, "resumed", 1, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(t, &in);
	assert_int_equal(test_wait_counter(t, false, in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(t, &in);
	assert_int_equal(in.durable, in.tail);
	walk_feed(d, "small", f, 2, &w);
	assert_int_equal(w.end, in.tail);
	assert_int_equal(w.data_records, 500);
	spw_topic_close(t);
	test_feed_free(f);
	if (umount2(d->mounted, 0) == 0)
		d->mounted[0] = '\0';
}

/* ---------------------------------------------------------------------------
 * (d) a garbage header in the ring: spill up to it, never past, stay up.
 */
enum garbage { BAD_TYPE, LEN_OVER_MAX, PADDING_SHORT, FLAGS_SET, NOT_CLAIMED, RANDOM_WORD };

static uint64_t garbage_word(enum garbage g, uint64_t rng)
{
	const uint64_t cc = TEST_BIT_COMMITTED | TEST_BIT_CLAIMED;

	switch (g) {
	case BAD_TYPE:
		return cc | (7ull << 32) | 64;
	case LEN_OVER_MAX:
		return cc | ((uint64_t)TEST_TYPE_DATA << 32) | (MAXREC + 8);
	case PADDING_SHORT:
		return cc | ((uint64_t)TEST_TYPE_PADDING << 32) | 64;
	case FLAGS_SET:
		return cc | (1ull << 41) | ((uint64_t)TEST_TYPE_DATA << 32) | 100;
	case NOT_CLAIMED:
		return TEST_BIT_COMMITTED | ((uint64_t)TEST_TYPE_DATA << 32) | 100;
	default:
		return (rng | TEST_BIT_COMMITTED) & ~TEST_BIT_CLAIMED;
	}
}

static void corrupt_header_in_the_ring_stops_the_spill_exactly_there(void **state)
{
	static const char *const names[] = { "bad type", "len over max_record", "short padding",
					     "flags set", "not claimed", "random word" };
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "garbage", RING, 4 * RING, MAXREC, 50, 0 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_topic_info in;
	struct test_seg_walk w;
	struct test_feed *f;
	static uint8_t buf[4096];
	uint8_t *data;
	uint64_t seed, rng, len_rng, pos[64], bad, spilled_before, reached;
	bool short_of;
	uint32_t first_batch = 50, second = 40, k, len;
	enum garbage g;
	int64_t logged;
	char dir[1024];

	need_daemon();
	seed = test_seed("garbage");
	rng = seed;
	g = (enum garbage)test_rand_below(&rng, 6);
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	test_daemon_topic_dir(d, "garbage", dir, sizeof(dir));
	start_attached(d, "garbage");
	assert_int_equal(spw_topic_open(d->shm, "garbage", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	/* The feed struct only carries the identity settings for the walk. */
	f = test_feed_new(d->shm, "garbage", seed, 0, 1, 4096);
	len_rng = test_id_len_rng(seed, 0);
	for (uint32_t i = 0; i < first_batch; i++) {
		len = test_id_len(&len_rng, 0, 4096); /* small: the second batch must fit */
		test_id_make(buf, len, seed, 0, i);
		assert_true(spw_producer_send_wait(p, buf, len, 10 * TEST_SEC) >= 0);
	}
	info_of(t, &in);
	assert_int_equal(test_wait_counter(t, false, in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(t, &in);
	spilled_before = in.spilled;

	/* The daemon is down: committed records it has not seen. */
	for (uint32_t i = 0; i < second; i++) {
		int64_t at;

		len = test_id_len(&len_rng, 0, 4096);
		test_id_make(buf, len, seed, 0, first_batch + i);
		at = spw_producer_send(p, buf, len);
		assert_true(at >= 0);
		pos[i] = (uint64_t)at;
	}
	k = 1 + (uint32_t)test_rand_below(&rng, second - 2);
	bad = pos[k];
	data = test_map_ring(d->shm, "garbage", RING, NULL);
	assert_non_null(data);
	test_set_commit_word(data, RING, bad, garbage_word(g, test_splitmix64(&rng)));
	test_unmap_ring(data, RING);
	print_message("[ info     ] %s header at %llu (record %u of the batch from %llu)\n",
		      names[g], (unsigned long long)bad, k, (unsigned long long)spilled_before);

	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_log(d, "corrupt record header at position ", 1,
					      scaled_s(10, 30)), 0);
	logged = test_daemon_log_number(d, "corrupt record header at position ");
	assert_int_equal(logged, (int64_t)bad);
	/* Everything before the bad header is spilled: exactly up to it.
	 * (Checked last, so that the other checks run when it fails.) */
	short_of = test_wait_counter(t, false, bad, scaled_s(3, 10)) != 0;
	test_sleep_ns(1000 * TEST_MS);
	assert_true(test_daemon_alive(d));
	info_of(t, &in);
	assert_true(in.spilled <= bad);
	assert_true(in.reclaimed <= bad);
	reached = in.spilled;
	assert_int_equal(test_daemon_log_count(d, "corrupt record header", false), 1);
	memset(&w, 0, sizeof(w));
	assert_int_equal(test_seg_walk(dir, &w), 0);
	assert_int_equal(w.end, in.spilled);
	assert_true(w.file_end <= bad); /* no byte past it on disk */

	/* SIGTERM still ends it cleanly, and nothing past N appears. */
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(t, &in);
	assert_true(in.spilled <= bad);
	memset(&w, 0, sizeof(w));
	assert_int_equal(test_seg_walk(dir, &w), 0);
	assert_true(w.end <= bad);
	assert_true(w.file_end <= bad);
	if (!short_of) {
		atomic_store(&f->sent[0], first_batch + k);
		walk_feed(d, "garbage", f, 1, &w);
		assert_int_equal(w.end, bad);
		assert_int_equal(w.file_end, bad);
	}
	spw_producer_close(p);
	spw_topic_close(t);
	test_feed_free(f);
	if (short_of)
		fail_msg("spilled stopped at %llu, not at the bad header %llu: the good records "
			 "%llu..%llu before it stay unspilled (%s header; SPW_TEST_SEED=%#llx)",
			 (unsigned long long)reached, (unsigned long long)bad,
			 (unsigned long long)reached, (unsigned long long)bad, names[g],
			 (unsigned long long)seed);
}

/* ---------------------------------------------------------------------------
 * (e) SIGHUP rereads the settings and the daemon goes on.
 */
static void sighup_rereads_and_keeps_spilling(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec spec = { "hup", RING, 4 * RING, MAXREC, 1000, 0 };
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	struct test_seg_walk w;
	struct test_feed *f;
	uint64_t seed;

	need_daemon();
	seed = test_seed("sighup");
	assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	start_attached(d, "hup");
	assert_int_equal(spw_topic_open(d->shm, "hup", SPW_OPEN_RDONLY, &t), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kill(d->pid, SIGHUP), 0);
		assert_int_equal(test_daemon_wait_log(d, "rereading", i + 1, scaled_s(5, 15)), 0);
	}
	test_sleep_ns(200 * TEST_MS);
	assert_true(test_daemon_alive(d));
	f = test_feed_new(d->shm, "hup", seed, 0, 2, MAXREC);
	f->per_producer = 200;
	test_feed_start(f, d);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(t, &in);
	assert_int_equal(test_wait_counter(t, false, in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	walk_feed(d, "hup", f, 2, &w);
	assert_int_equal(w.end, in.tail);
	spw_topic_close(t);
	test_feed_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			enospc_blocks_producers_logs_once_and_resumes_losing_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
			eio_blocks_producers_logs_once_and_resumes_losing_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
			full_tmpfs_data_dir_blocks_then_resumes_when_space_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(
			corrupt_header_in_the_ring_stops_the_spill_exactly_there, setup, teardown),
		cmocka_unit_test_setup_teardown(sighup_rereads_and_keeps_spilling, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
