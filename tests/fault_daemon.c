/* SPDX-License-Identifier: MIT */
/*
 * fault_daemon.c - spillwayd under faults: write errors through the
 * SPILLWAY_FAULT_FILE seam (ENOSPC, EIO) and on a real full filesystem
 * (spill/writer.c W5: stop, keep the data in the ring, retry with backoff;
 * producers feel back-pressure, nothing is dropped), garbage record headers
 * in shared memory (ring/ring_layout.h: the ring is never trusted; I7: the
 * daemon cuts garbage out as a CORRUPT span and spills on), and SIGHUP.
 * The segment files are walked back at the end (support_daemon.h).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
	struct test_feed_check c;

	test_feed_check_init(&c, f->seed, nproducers, f->max_record);
	walk_check(d, topic, w, &c, NULL, NULL, f->seed);
	check_counts(&c, f, f->seed);
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

/* The end of a full-disk case, once the fault is gone: the daemon resumes
 * by itself, spills up to the tail and stops with exit status 0; all of it
 * is durable; the log holds the feed's two producers' records once each, in
 * order, up to the tail. */
static void resumed_then_walk(struct dcase *c)
{
	assert_int_equal(test_daemon_wait_log(c->d, "resumed", 1, scaled_s(10, 30)), 0);
	spilled_then_stop(c->d, c->t, scaled_s(10, 30), &c->in);
	info_of(c->t, &c->in);
	assert_int_equal(c->in.durable, c->in.tail);
	walk_feed(c->d, c->spec.name, c->f, 2, &c->w);
	assert_int_equal(c->w.end, c->in.tail);
}

/* ---------------------------------------------------------------------------
 * (a), (b) write errors through the fault seam.
 */
static void fault_seam(void **state, const char *err_name, const char *strerr)
{
	const struct test_topic_spec spec = { "fault", RING, 4 * RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);
	struct spw_topic_info in2;
	uint64_t sent_blocked;
	int errors;
	char content[32];

	c.seed = test_seed(err_name);
	d->fault_env = true;
	dcase_make(&c);
	start_attached(d, "fault");
	dcase_open_ro(&c);
	c.f = feed_timed(d, "fault", c.seed, 0, 2, MAXREC);
	c.f->per_producer = test_scaled(1500, 600, 600);
	c.f->pace_ns = 100 * 1000;
	test_feed_start(c.f, d);
	/* Some records spilled first: the fault hits a segment in use. */
	assert_int_equal(test_wait_counter(c.t, false, 128u << 10, scaled_s(10, 30)), 0);
	snprintf(content, sizeof(content), "%s\n", err_name);
	write_text(d->fault, content);

	/* The ring fills and stays full: producers block, no record is
	 * dropped, spilled does not move. */
	wait_blocked(c.f, scaled_s(10, 30));
	test_sleep_ns(100 * TEST_MS); /* in-flight writes land */
	info_of(c.t, &c.in);
	sent_blocked = test_feed_total(c.f, c.f->sent);
	test_sleep_ns(1500 * TEST_MS); /* several retries with backoff */
	info_of(c.t, &in2);
	assert_int_equal(in2.spilled, c.in.spilled);
	assert_true(in2.tail - in2.reclaimed > RING - 2 * MAXREC - 64);
	assert_true(test_feed_total(c.f, c.f->sent) - sent_blocked <= 2 * c.f->producers);
	assert_true(test_daemon_alive(d));
	/* Checked at the end, so that a noisy log does not hide whether the
	 * data came through. */
	errors = test_daemon_log_count(d, strerr, false);
	if (errors != 1)
		test_daemon_dump_log(d, 4096);

	/* Fault gone: it resumes by itself and spills everything. */
	assert_int_equal(unlink(d->fault), 0);
	resumed_then_walk(&c);
	assert_int_equal(c.w.file_end, c.in.tail);
	assert_int_equal(c.w.data_records, c.f->per_producer * c.f->producers);
	print_message("[ info     ] blocked at spilled %llu; %llu send timeouts; %d error lines\n",
		      (unsigned long long)in2.spilled,
		      (unsigned long long)test_feed_total(c.f, c.f->timeouts), errors);
	assert_int_equal(test_daemon_log_count(d, strerr, false), errors); /* none after */
	dcase_close(&c);
	if (errors != 1)
		fail_msg("the daemon logged \"%s\" %d times while the fault lasted (want once: "
			 "one line per incident, not one per retry)", strerr, errors);
}

static void enospc_blocks_producers_logs_once_and_resumes_losing_nothing(void **state)
{
	fault_seam(state, "ENOSPC", "No space left on device");
}

static void eio_blocks_producers_logs_once_and_resumes_losing_nothing(void **state)
{
	fault_seam(state, "EIO", "Input/output error");
}

/* ---------------------------------------------------------------------------
 * (c) a real full filesystem: a 2 MiB tmpfs as the data dir.
 */
static void full_tmpfs_data_dir_blocks_then_resumes_when_space_returns(void **state)
{
	const struct test_topic_spec spec = { "small", RING, RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);
	struct statvfs vfs;
	char filler[600];
	uint64_t free_bytes, fill;
	static uint8_t chunk[64 << 10];
	int fd;

	if (mount("tmpfs", d->data, "tmpfs", 0, "size=2m,mode=0700")) {
		print_message("mount -t tmpfs -o size=2m tmpfs %s: %s: skipped\n", d->data,
			      strerror(errno));
		skip();
	}
	snprintf(d->mounted, sizeof(d->mounted), "%s", d->data);
	c.seed = test_seed("tmpfs");
	dcase_make(&c);
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
	dcase_open_ro(&c);
	/* ~1 MB: more than the room left, less than the whole filesystem. */
	c.f = feed_timed(d, "small", c.seed, 0, 2, MAXREC);
	c.f->per_producer = 250;
	test_feed_start(c.f, d);
	assert_int_equal(test_daemon_wait_log(d, "No space left on device", 1, scaled_s(20, 60)), 0);
	wait_blocked(c.f, scaled_s(10, 30));
	test_sleep_ns(500 * TEST_MS);
	assert_true(test_daemon_alive(d));
	info_of(c.t, &c.in);
	print_message("[ info     ] full at spilled %llu (tail %llu); \"No space\" logged %d times\n",
		      (unsigned long long)c.in.spilled, (unsigned long long)c.in.tail,
		      test_daemon_log_count(d, "No space left on device", false));

	assert_int_equal(unlink(filler), 0);
	resumed_then_walk(&c);
	assert_int_equal(c.w.data_records, 500);
	dcase_close(&c);
	if (umount2(d->mounted, 0) == 0)
		d->mounted[0] = '\0';
}

/* ---------------------------------------------------------------------------
 * (d) a garbage header in the ring: the daemon cuts it out as a CORRUPT span
 * (ring_layout.h I7) that ends exactly where the next record starts, spills
 * on past it, and readers skip it and count it; no other record is lost.
 */
enum garbage { BAD_TYPE, LEN_OVER_MAX, PADDING_SHORT, RESERVED_SET, OTHER_LAP, ONE_DONE_BIT,
	       RANDOM_WORD };

/* A word that fails ring_word_check() at pos for one reason only: every
 * other field is as a real record's there (len: the record's length). */
static uint64_t garbage_word(enum garbage g, uint64_t rng, uint64_t pos, uint32_t len)
{
	const uint64_t room = RING - pos % RING, tag_mask = 0x3fffffull << 40;
	const uint64_t real = test_word(TEST_TYPE_DATA, len, pos, RING);

	switch (g) {
	case BAD_TYPE:
		return (real & ~(0xfull << 32)) | (7ull << 32);
	case LEN_OVER_MAX:
		return test_word(TEST_TYPE_DATA, MAXREC + 8, pos, RING);
	case PADDING_SHORT: /* a padding must run to the end of the lap */
		return test_word(TEST_TYPE_PADDING, room == 64 ? 72 : 64, pos, RING);
	case RESERVED_SET:
		return real | (1ull << 37);
	case OTHER_LAP: /* the record's own word, but of the lap before (stale) */
		return (real & ~tag_mask) | ((((pos / RING) - 1) << 40) & tag_mask);
	case ONE_DONE_BIT:
		return real & ~TEST_BIT_CLAIMED;
	default:
		return (rng | TEST_BIT_COMMITTED) & ~TEST_BIT_CLAIMED;
	}
}

/* What the readers of the log must see: the feed's records in order, the one
 * the garbage replaced missing, and the garbage as one CORRUPT span. The
 * check is the first member: test_feed_on_data takes this as its arg. */
struct garbage_expect {
	struct test_feed_check check;
	uint64_t seed, bad, span; /* the garbage: position, the span it must get */
	uint32_t lost_len;        /* the record it replaced: length, seq */
	uint64_t lost_seq;
	bool passed;              /* the lost record was fed to the expectation */
	uint64_t corrupt_seen;
};

/* Count the lost record as seen (its bytes as the producer made them), so
 * the expectation goes on with the next one. */
static int pass_lost(struct garbage_expect *x)
{
	static uint8_t buf[4096];
	char why[160];

	if (x->passed)
		return 0;
	x->passed = true;
	test_id_make(buf, x->lost_len, x->seed, 0, x->lost_seq);
	if (test_id_verify(&x->check.e, buf, x->lost_len, NULL, why, sizeof(why))) {
		snprintf(x->check.err, sizeof(x->check.err),
			 "the record before the garbage at %llu: %s",
			 (unsigned long long)x->bad, why);
		return -EILSEQ;
	}
	return 0;
}

static int garbage_on_skip(void *arg, const struct test_seg_rec *r)
{
	struct garbage_expect *x = arg;

	if (r->type == TEST_TYPE_PADDING)
		return 0;
	if (r->type != TEST_TYPE_CORRUPT || r->position != x->bad || r->span != x->span) {
		snprintf(x->check.err, sizeof(x->check.err),
			 "type %u record at %llu spanning %llu: only a CORRUPT span at %llu of %llu "
			 "bytes may be skipped", r->type, (unsigned long long)r->position,
			 (unsigned long long)r->span, (unsigned long long)x->bad,
			 (unsigned long long)x->span);
		return -EILSEQ;
	}
	x->corrupt_seen++;
	return pass_lost(x);
}

static int garbage_on_data(void *arg, const struct test_seg_rec *r)
{
	struct garbage_expect *x = arg;

	if (r->position >= x->bad && r->position < x->bad + x->span) {
		snprintf(x->check.err, sizeof(x->check.err),
			 "a DATA record at %llu, inside the garbage's span", (unsigned long long)r->position);
		return -EILSEQ;
	}
	if (r->position > x->bad && pass_lost(x))
		return -EILSEQ;
	return test_feed_on_data(&x->check, r);
}

/* The same through spw_reader (disk, then the ring). */
static int garbage_on_record(void *arg, const struct spw_record *r)
{
	struct test_seg_rec sr = { .position = (uint64_t)r->position, .timestamp_ns = r->timestamp_ns,
				   .data = r->data, .len = r->len, .type = TEST_TYPE_DATA };

	return garbage_on_data(arg, &sr);
}

static void garbage_expect_init(struct garbage_expect *x, uint64_t seed, uint64_t bad,
				uint64_t span, uint32_t lost_len, uint64_t lost_seq)
{
	memset(x, 0, sizeof(*x));
	test_feed_check_init(&x->check, seed, 1, 4096);
	x->seed = seed;
	x->bad = bad;
	x->span = span;
	x->lost_len = lost_len;
	x->lost_seq = lost_seq;
}

static void corrupt_header_in_the_ring_is_cut_out_and_spilling_goes_on(void **state)
{
	static const char *const names[] = { "bad type", "len over max_record", "short padding",
					     "reserved bit set", "word of another lap",
					     "one done bit", "random word" };
	const struct test_topic_spec spec = { "garbage", RING, 4 * RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);
	struct spw_reader_opts ro = { 0 };
	struct garbage_expect x;
	static uint8_t buf[4096];
	uint8_t *data;
	uint64_t rng, len_rng, pos[64], bad, span, word, lw, lpos, lspan, lend;
	uint32_t first_batch = 50, second = 40, k, len, lens[64];
	enum garbage g;
	char line[512];
	int64_t end;

	c.seed = test_seed("garbage");
	rng = c.seed;
	g = (enum garbage)test_rand_below(&rng, 7);
	dcase_make(&c);
	start_attached(d, "garbage");
	open_producer(d, "garbage", &c.t, &c.p);
	len_rng = test_id_len_rng(c.seed, 0);
	for (uint32_t i = 0; i < first_batch; i++) {
		len = test_id_len(&len_rng, 0, 4096); /* small: the second batch must fit */
		test_id_make(buf, len, c.seed, 0, i);
		assert_true(spw_producer_send_wait(c.p, buf, len, 10 * TEST_SEC) >= 0);
	}
	info_of(c.t, &c.in);
	assert_int_equal(test_wait_counter(c.t, false, c.in.tail, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);

	/* The daemon is down: committed records it has not seen. */
	for (uint32_t i = 0; i < second; i++) {
		int64_t at;

		len = test_id_len(&len_rng, 0, 4096);
		test_id_make(buf, len, c.seed, 0, first_batch + i);
		at = spw_producer_send(c.p, buf, len);
		assert_true(at >= 0);
		pos[i] = (uint64_t)at;
		lens[i] = len;
	}
	k = 1 + (uint32_t)test_rand_below(&rng, second - 2);
	bad = pos[k];
	/* The garbage is cut out up to the next boundary the daemon can
	 * prove: the start of the valid records after it, i.e. exactly the
	 * span of the record it replaced (a padding or the next record
	 * follows it). */
	span = test_span(lens[k]);
	word = garbage_word(g, test_splitmix64(&rng), bad, lens[k]);
	data = test_map_ring(d->shm, "garbage", RING, NULL);
	assert_non_null(data);
	test_set_commit_word(data, RING, bad, word);
	test_unmap_ring(data, RING);
	print_message("[ info     ] %s header %#llx at %llu (record %u of the batch)\n", names[g],
		      (unsigned long long)word, (unsigned long long)bad, k);

	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_log(d, "corrupt record header", 1, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_log_line(d, "corrupt record header", line, sizeof(line)), 0);
	if (sscanf(line, "corrupt record header 0x%" SCNx64 " at position %" SCNu64
			 " in the ring: %" SCNu64 " bytes up to %" SCNu64,
		   &lw, &lpos, &lspan, &lend) != 4)
		fail_msg("unexpected log line: %s", line);
	assert_int_equal(lw, word);
	assert_int_equal(lpos, bad);
	assert_int_equal(lspan, span);
	assert_int_equal(lend, bad + span);
	/* Spilling goes on past the garbage, up to the tail. */
	info_of(c.t, &c.in);
	end = (int64_t)c.in.tail;
	assert_int_equal(end, (int64_t)(pos[second - 1] + test_span(lens[second - 1])));
	assert_int_equal(test_wait_counter(c.t, false, (uint64_t)end, scaled_s(10, 30)), 0);
	assert_int_equal(test_wait_counter(c.t, true, (uint64_t)end, scaled_s(10, 30)), 0);
	assert_true(test_daemon_alive(d));
	info_of(c.t, &c.in);
	assert_int_equal(c.in.corrupt_bytes, span);
	assert_int_equal(c.in.aborted_claims, 0);
	assert_int_equal(test_daemon_log_count(d, "corrupt record header", false), 1);
	/* SIGTERM still ends it cleanly. */
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);

	/* On disk: every record but the replaced one, in order, the garbage as
	 * one CORRUPT span of exactly that record's bytes, nothing else skipped. */
	garbage_expect_init(&x, c.seed, bad, span, lens[k], first_batch + k);
	memset(&c.w, 0, sizeof(c.w));
	c.w.on_data = garbage_on_data;
	c.w.on_skip = garbage_on_skip;
	c.w.arg = &x;
	if (test_seg_walk(c.dir, &c.w))
		fail_msg("segment walk: %s%s%s (SPW_TEST_SEED=%#llx)", c.w.err,
			 x.check.err[0] ? ": " : "", x.check.err, (unsigned long long)c.seed);
	assert_true(x.passed);
	assert_int_equal(x.corrupt_seen, 1);
	assert_int_equal(c.w.corrupt_records, 1);
	assert_int_equal(c.w.corrupt_bytes, span);
	assert_int_equal(c.w.aborted_records, 0);
	assert_int_equal(c.w.data_records, first_batch + second - 1);
	assert_int_equal(c.w.end, (uint64_t)end);
	if (test_feed_check_count(&x.check, 0, first_batch + second))
		fail_msg("%s (SPW_TEST_SEED=%#llx)", x.check.err, (unsigned long long)c.seed);

	/* A reader from the earliest record: the same records, and the garbage
	 * counted as skipped, byte for byte. */
	garbage_expect_init(&x, c.seed, bad, span, lens[k], first_batch + k);
	ro.shm_dir = d->shm;
	ro.data_dir = d->data;
	ro.start = SPW_START_EARLIEST;
	assert_int_equal(spw_reader_open("garbage", &ro, &c.r), 0);
	while (spw_reader_position(c.r) < end) {
		int n = spw_reader_poll_wait(c.r, garbage_on_record, &x, 64, scaled_s(5, 15));

		if (n <= 0)
			fail_msg("reader at %lld: poll returned %d%s%s (SPW_TEST_SEED=%#llx)",
				 (long long)spw_reader_position(c.r), n, x.check.err[0] ? ": " : "",
				 x.check.err, (unsigned long long)c.seed);
	}
	assert_int_equal(spw_reader_position(c.r), end);
	assert_true(x.passed);
	assert_int_equal(x.check.records, first_batch + second - 1);
	assert_int_equal(spw_reader_skipped(c.r), span);
	if (test_feed_check_count(&x.check, 0, first_batch + second))
		fail_msg("reader: %s (SPW_TEST_SEED=%#llx)", x.check.err, (unsigned long long)c.seed);
	dcase_close(&c);
}

/* ---------------------------------------------------------------------------
 * (e) SIGHUP rereads the settings and the daemon goes on.
 */
static void sighup_rereads_and_keeps_spilling(void **state)
{
	const struct test_topic_spec spec = { "hup", RING, 4 * RING, MAXREC, 1000, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_begin(&c, state, &spec, "sighup");

	dcase_open_ro(&c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kill(d->pid, SIGHUP), 0);
		assert_int_equal(test_daemon_wait_log(d, "rereading", i + 1, scaled_s(5, 15)), 0);
	}
	test_sleep_ns(200 * TEST_MS);
	assert_true(test_daemon_alive(d));
	c.f = test_feed_new(d->shm, "hup", c.seed, 0, 2, MAXREC);
	c.f->per_producer = 200;
	test_feed_start(c.f, d);
	spilled_then_stop(d, c.t, scaled_s(10, 30), &c.in);
	walk_feed(d, "hup", c.f, 2, &c.w);
	assert_int_equal(c.w.end, c.in.tail);
	dcase_close(&c);
}

/* ---------------------------------------------------------------------------
 * A failed fdatasync (the fault seam's "FSYNC": EIO from fdatasync, then
 * success once the fault is gone) is never forgotten: durable freezes where
 * it was, SPW_ACK_DURABLE waiters get -EIO at once (not a timeout, not a
 * later success), spilling goes on, stat says so; a restarted daemon
 * starts clean.
 */
static void failed_fdatasync_freezes_durable_and_fails_durable_acks(void **state)
{
	const struct test_topic_spec spec = { "fsync", RING, 4 * RING, MAXREC, 50, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);
	struct spw_topic_info in2;
	char buf[200] = { 0 };
	int64_t pos = -1;

	d->fault_env = true;
	case_producer(d, &spec, &c.t, &c.p);
	for (int i = 0; i < 100; i++)
		pos = spw_producer_send_wait(c.p, buf, sizeof(buf), 10 * TEST_SEC);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), 0);

	write_text(d->fault, "FSYNC\n");
	for (int i = 0; i < 100; i++)
		pos = spw_producer_send_wait(c.p, buf, sizeof(buf), 10 * TEST_SEC);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), -EIO);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_SPILLED, scaled_s(10, 30)), 0);
	info_of(c.t, &c.in);
	assert_int_equal(c.in.durable_error, -EIO);
	assert_true(c.in.durable <= (uint64_t)pos);

	/* The disk "recovers": a later fdatasync would succeed, but durable
	 * must not move over the range whose sync failed. */
	assert_int_equal(unlink(d->fault), 0);
	for (int i = 0; i < 100; i++)
		pos = spw_producer_send_wait(c.p, buf, sizeof(buf), 10 * TEST_SEC);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_SPILLED, scaled_s(10, 30)), 0);
	test_sleep_ns(500 * TEST_MS); /* ten flush intervals */
	info_of(c.t, &in2);
	assert_int_equal(in2.durable, c.in.durable);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, 0), -EIO);
	assert_int_equal(test_daemon_log_count(d, "fdatasync failed", false), 1);
	if (getenv("SPW_CLI"))
		assert_int_equal(test_daemon_cli(d, "stat fsync | grep -q 'DURABILITY FAILED: an "
						    "fdatasync returned Input/output error'"),
				 0);

	/* SIGTERM: exit status 1 (durability failed); a new daemon
	 * re-verifies the log at attach and starts clean. */
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 1);
	assert_int_equal(test_daemon_log_count(d, "stopping with durability failed", false), 1);
	start_attached(d, "fsync");
	pos = spw_producer_send_wait(c.p, buf, sizeof(buf), 10 * TEST_SEC);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), 0);
	info_of(c.t, &c.in);
	assert_int_equal(c.in.durable_error, 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	dcase_close(&c);
}

/* The checkpoint <topic>/durable (spill/writer.c W6) is written and synced
 * in the same linked round as the data, before durable moves: so at every
 * instant the value on disk covers everything ever acknowledged durable,
 * and recovery (which never cuts below it) cannot drop an acked record. */
static uint64_t ckpt_on_disk(const struct test_daemon *d, const char *topic)
{
	char dir[1024], path[1200];
	uint64_t v[3] = { 0 };
	int fd;

	test_daemon_topic_dir(d, topic, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/durable", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, v, 24, 0), 24);
	close(fd);
	assert_int_equal(v[0], 0x5450434b44575053ull); /* "SPWDKCPT" */
	return v[1];
}

static void every_durable_ack_is_covered_by_the_checkpoint(void **state)
{
	const struct test_topic_spec spec = { "ckpt", RING, 4 * RING, MAXREC, 2, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_producer(&c, state, &spec);
	char buf[300] = { 0 };

	for (int i = 0; i < 300; i++) {
		int64_t pos = spw_producer_send_wait(c.p, buf, sizeof(buf), 10 * TEST_SEC);

		assert_true(pos >= 0);
		assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)),
				 0);
		info_of(c.t, &c.in);
		assert_true(c.in.durable > (uint64_t)pos);
		assert_true(ckpt_on_disk(d, "ckpt") >= c.in.durable);
	}
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	info_of(c.t, &c.in);
	assert_int_equal(ckpt_on_disk(d, "ckpt"), c.in.durable);
	dcase_close(&c);
}

/* A checkpoint that cannot be opened (here a symlink planted in its place):
 * recovery could not tell durable bytes from a torn tail, so nothing is
 * acknowledged durable; the log names the file; the link's target is
 * untouched; spilling goes on. */
static void no_checkpoint_no_durable_acks(void **state)
{
	const struct test_topic_spec spec = { "nockpt", RING, 4 * RING, MAXREC, 20, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);
	char link[1200], target[1200], got[16] = { 0 };
	int64_t pos;
	int fd;

	dcase_make(&c);
	snprintf(target, sizeof(target), "%s/outside", d->root);
	write_text(target, "precious\n");
	snprintf(link, sizeof(link), "%s/durable", c.dir);
	assert_int_equal(symlink(target, link), 0);
	start_attached(d, "nockpt");
	open_producer(d, "nockpt", &c.t, &c.p);
	pos = spw_producer_send_wait(c.p, "x", 1, 10 * TEST_SEC);
	assert_true(pos >= 0);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_SPILLED, scaled_s(10, 30)), 0);
	assert_int_equal(spw_producer_wait_ack(c.p, pos, SPW_ACK_DURABLE, scaled_s(10, 30)), -ELOOP);
	assert_true(test_daemon_log_count(d, "opening the checkpoint", false) >= 1);
	assert_true(test_daemon_log_count(d, "nockpt/durable failed: Too many levels of symbolic "
					  "links", false) >= 1);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 1);
	fd = open(target, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), 9);
	close(fd);
	assert_string_equal(got, "precious\n");
	dcase_close(&c);
}

/* ---------------------------------------------------------------------------
 * io_uring_submit saying -EBUSY (the fault seam's "SUBMIT": every other
 * submit): the entries stay queued and go out at the next loop; nothing is
 * lost, nothing is duplicated, everything becomes durable.
 */
static void busy_submits_are_retried_losing_nothing(void **state)
{
	const struct test_topic_spec spec = { "busy", RING, 4 * RING, MAXREC, 20, 0 };
	struct dcase c;
	struct test_daemon *d = dcase_init(&c, state, &spec);

	c.seed = test_seed("submit_busy");
	d->fault_env = true;
	write_text(d->fault, "SUBMIT\n");
	dcase_make(&c);
	start_attached(d, "busy");
	dcase_open_ro(&c);
	c.f = feed_timed(d, "busy", c.seed, 0, 2, MAXREC);
	c.f->per_producer = test_scaled(1500, 600, 600);
	test_feed_start(c.f, d);
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(c.t, &c.in);
	assert_int_equal(test_wait_counter(c.t, true, c.in.tail, scaled_s(20, 60)), 0);
	assert_int_equal(test_daemon_log_count(d, "io_uring_submit: Device or resource busy", false), 1);
	assert_int_equal(unlink(d->fault), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	walk_feed(d, "busy", c.f, 2, &c.w);
	assert_int_equal(c.w.end, c.in.tail);
	assert_int_equal(c.w.data_records, c.f->per_producer * c.f->producers);
	dcase_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(busy_submits_are_retried_losing_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_fdatasync_freezes_durable_and_fails_durable_acks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(every_durable_ack_is_covered_by_the_checkpoint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(no_checkpoint_no_durable_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(
			enospc_blocks_producers_logs_once_and_resumes_losing_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
			eio_blocks_producers_logs_once_and_resumes_losing_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
			full_tmpfs_data_dir_blocks_then_resumes_when_space_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(
			corrupt_header_in_the_ring_is_cut_out_and_spilling_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(sighup_rereads_and_keeps_spilling, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
