/* SPDX-License-Identifier: MIT */
/*
 * spill_reader.c - the reader from disk to live (spill/reader.c, R1-R5)
 * against a running spillwayd, in one process.
 *
 * The first case writes the log every other case reads: one producer sends
 * ~20 MiB of records (random sizes 0..2048, seeded) into a 256 KiB ring with
 * 1 MiB segments while a reader opened at the earliest position lags far
 * behind; the reader crosses many segment files, catches up and goes live.
 * With the segments it builds the catalog (position, length, timestamp of
 * every record) that the later cases check every delivery against: start
 * by time and position (segment boundaries, index entries, PADDING), the
 * bounds, and damaged segments (corrupt, bad header, truncated, torn index,
 * missing, retention-deleted), each on a copy of the topic's data dir so
 * they never disturb each other. Then a disk-only reader follows the daemon
 * on a second topic across many segment rolls; the last case stops the
 * daemon and reads the disk log alone, with and without the ring.
 *
 * Seeded: the seed is printed; SPW_TEST_SEED reruns with it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "support_reader.h"
#include "../spill/spill.h"
#include "../spill/reader.h" /* r->t->prefaulted */

#define TOPIC "rd"
#define RING_BYTES (256ull << 10)
#define SEG_BYTES (1ull << 20)
#define MAX_LEN 2048u

static struct {
	struct rdt_env env;
	bool have_daemon;
	uint64_t seed;
	/* The catalog: every record of the log, in position order (one
	 * producer, so position order is send order and seq == index). */
	size_t n, cap;
	int64_t *pos;
	uint32_t *len;
	uint64_t *ts;
	bool ready;    /* catalog complete and every byte spilled */
	int64_t tail;  /* end of the log */
	int scratch;   /* copies made so far */
} S;

/* ---------------------------------------------------------------------------
 * Catalog and collecting
 */
static void cat_add(int64_t pos, uint32_t len)
{
	if (S.n == S.cap) {
		S.cap = S.cap ? S.cap * 2 : 4096;
		S.pos = realloc(S.pos, S.cap * sizeof(*S.pos));
		S.len = realloc(S.len, S.cap * sizeof(*S.len));
		S.ts = realloc(S.ts, S.cap * sizeof(*S.ts));
		if (!S.pos || !S.len || !S.ts)
			abort();
	}
	S.pos[S.n] = pos;
	S.len[S.n] = len;
	S.ts[S.n] = 0;
	S.n++;
}

/* Index of the first record at or after pos (S.n when none). */
static size_t cat_at_or_after(int64_t pos)
{
	size_t lo = 0, hi = S.n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (S.pos[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the record at exactly pos, or -1. */
static ssize_t cat_find(int64_t pos)
{
	size_t i = cat_at_or_after(pos);

	return i < S.n && S.pos[i] == pos ? (ssize_t)i : -1;
}

/* Index of the first record with timestamp >= t, in position order. */
static size_t cat_first_ts(uint64_t t)
{
	size_t i = 0;

	while (i < S.n && S.ts[i] < t)
		i++;
	return i;
}

struct got {
	struct spw_reader *r;
	size_t n, cap;
	size_t live;     /* deliveries while the reader was live */
	int bad;
	char err[256];
	size_t idx[];    /* catalog index of each delivery */
};

static int collect(void *arg, const struct spw_record *rec)
{
	struct got *g = arg;
	ssize_t i = cat_find(rec->position);

	if (g->r && spw_reader_is_live(g->r))
		g->live++;
	if (i < 0 || rec->len != S.len[i] || rec->timestamp_ns != S.ts[i] ||
	    !rdt_id_is(rec->data, rec->len, S.seed, 0, (uint64_t)i)) {
		if (!g->bad++)
			snprintf(g->err, sizeof(g->err),
				 "delivery %zu at position %" PRId64 " (len %u, ts %" PRIu64
				 ") is not the catalog's record there (index %zd)",
				 g->n, rec->position, rec->len, rec->timestamp_ns, i);
		return 0;
	}
	if (g->n == g->cap) {
		if (!g->bad++)
			snprintf(g->err, sizeof(g->err), "more deliveries than records in the log");
		return 1;
	}
	g->idx[g->n++] = (size_t)i;
	return 0;
}

/* Room for every record of the log (kept: freed by the case's teardown). */
static struct got *got_new(void)
{
	size_t cap = S.n + 64;
	struct got *g = rdt_keep_mem(calloc(1, sizeof(*g) + cap * sizeof(g->idx[0])));

	g->cap = cap;
	return g;
}

static void got_reset(struct got *g)
{
	g->r = NULL;
	g->n = g->live = 0;
	g->bad = 0;
	g->err[0] = '\0';
}

/* Poll until an error, the bound, or nothing more comes (two empty polls
 * 20 ms apart: nothing is produced after the first case). Returns the last
 * poll's result (<= 0). */
static int drain(struct spw_reader *r, struct got *g, int max)
{
	int rc, empty = 0;

	g->r = r;
	for (;;) {
		rc = spw_reader_poll(r, collect, g, max);
		if (rc < 0 || spw_reader_done(r))
			return rc < 0 ? rc : 0;
		if (rc > 0) {
			empty = 0;
			continue;
		}
		if (++empty == 2)
			return 0;
		test_sleep_ns(20 * TEST_MS);
	}
}

/* The deliveries are exactly the catalog's records [from, to), in order. */
#define assert_range(g, from, to) assert_range_at(g, from, to, __LINE__)
static void assert_range_at(const struct got *g, size_t from, size_t to, int line)
{
	if (g->bad)
		fail_msg("line %d: %s (seed %#" PRIx64 ")", line, g->err, S.seed);
	if (g->n != to - from)
		fail_msg("line %d: delivered %zu records, expected %zu (catalog [%zu, %zu), first "
			 "got %zd, last got %zd; seed %#" PRIx64 ")",
			 line, g->n, to - from, from, to, g->n ? (ssize_t)g->idx[0] : -1,
			 g->n ? (ssize_t)g->idx[g->n - 1] : -1, S.seed);
	for (size_t k = 0; k < g->n; k++)
		if (g->idx[k] != from + k)
			fail_msg("line %d: delivery %zu is catalog record %zu, expected %zu (gap or "
				 "duplicate; seed %#" PRIx64 ")",
				 line, k, g->idx[k], from + k, S.seed);
}

static struct spw_reader_opts opts_base(enum spw_start start)
{
	struct spw_reader_opts o = { 0 };

	o.shm_dir = S.env.shm;
	o.data_dir = S.env.data;
	o.start = start;
	return o;
}

static struct spw_reader *open_ok(const struct spw_reader_opts *o)
{
	struct spw_reader *r = NULL;
	int rc = spw_reader_open(TOPIC, o, &r);

	if (rc)
		fail_msg("spw_reader_open: %s", strerror(-rc));
	return rdt_keep_reader(r);
}

static void need_log(void)
{
	if (!S.have_daemon)
		skip();
	if (!S.ready)
		fail_msg("the log of the first case is missing (it failed)");
}

/* A fresh copy of the topic's data dir: <root>/copyN (the data dir to pass)
 * holding <root>/copyN/<topic>/. */
static void scratch_copy(char *data_dir, size_t size)
{
	char from[1024], to[1200];

	snprintf(data_dir, size, "%s/copy%d", S.env.root, S.scratch++);
	assert_int_equal(mkdir(data_dir, 0755), 0);
	rdt_topic_dir(&S.env, TOPIC, from, sizeof(from));
	snprintf(to, sizeof(to), "%s/%s", data_dir, TOPIC);
	assert_int_equal(rdt_copy_dir(from, to), 0);
}

static void seg_path(const char *data_dir, uint64_t base, const char *ext, char *buf, size_t n)
{
	rdt_seg_path(&S.env, data_dir, TOPIC, base, ext, buf, n);
}

/* Load a segment's index from data_dir: the entry count (asserted > 2). */
static int load_idx(const char *data_dir, uint64_t base, struct seg_idx_hdr *h,
		    struct seg_idx_entry **e)
{
	char p[1200];
	int n;

	seg_path(data_dir, base, "idx", p, sizeof(p));
	n = seg_idx_load(p, h, e);
	if (n <= 2) {
		free(*e);
		fail_msg("%s: %d index entries", p, n);
	}
	rdt_keep_mem(*e);
	return n;
}

static void assert_error_at(struct spw_reader *r, const char *file, int64_t lo, int64_t hi)
{
	char ef[2048];
	int64_t ep = -1;

	assert_int_equal(spw_reader_error(r, ef, sizeof(ef), &ep), 0);
	if (strcmp(ef, file))
		fail_msg("spw_reader_error names \"%s\", expected \"%s\"", ef, file);
	if (ep < lo || ep >= hi)
		fail_msg("spw_reader_error position %" PRId64 " outside [%" PRId64 ", %" PRId64 ")", ep,
			 lo, hi);
}

/* The topic's counters now, from its ring. */
static void log_info(struct spw_topic_info *in)
{
	struct spw_topic *t = NULL;

	assert_int_equal(spw_topic_open(S.env.shm, TOPIC, SPW_OPEN_RDONLY, &t), 0);
	rdt_keep_topic(t);
	assert_int_equal(spw_topic_info(t, in), 0);
	rdt_drop(t);
}

/* The start of a damaged-segment case: a fresh copy of the log (its data
 * dir into data) that o reads, so the damage disturbs no other case. */
static void damage_begin(struct spw_reader_opts *o, char *data, size_t size)
{
	need_log();
	scratch_copy(data, size);
	o->data_dir = data;
}

/* An index entry [*a, *b) of the segment at base holding 4 records or more,
 * the first such from entry n / from_div on. */
static void pick_entry(const char *data, uint64_t base, int from_div, uint64_t *a, uint64_t *b)
{
	struct seg_idx_entry *e;
	struct seg_idx_hdr h;
	int n = load_idx(data, base, &h, &e), k;

	for (k = n / from_div; k < n; k++)
		if (cat_at_or_after((int64_t)e[k].end) - cat_at_or_after((int64_t)e[k - 1].end) >= 4)
			break;
	assert_true(k < n);
	*a = e[k - 1].end;
	*b = e[k].end;
	rdt_drop(e);
}

/* Every record but the catalog's [ia, ib) was delivered, each once, in
 * order (R1), and the reader counts skipped bytes skipped. */
static void assert_all_but(struct spw_reader *r, const struct got *g, size_t ia, size_t ib,
			   uint64_t skipped)
{
	assert_int_equal(g->n, S.n - (ib - ia));
	for (size_t j = 0; j < g->n; j++)
		assert_int_equal(g->idx[j], j < ia ? j : j + (ib - ia));
	assert_int_equal(spw_reader_skipped(r), skipped);
}

/* Close a case's reader and empty its deliveries for the next one. */
static void reader_done(struct spw_reader *r, struct got *g)
{
	rdt_drop(r);
	got_reset(g);
}

/* ---------------------------------------------------------------------------
 * Setup
 */
static int group_setup(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	if (!test_daemon_path()) {
		fprintf(stderr, "spill_reader: no daemon (SPW_DAEMON unset, no build/spillwayd): "
				"skipping\n");
		return 0;
	}
	if (rdt_env_setup(&S.env))
		return -1;
	if (rdt_topic_make(&S.env, TOPIC, RING_BYTES, SEG_BYTES, 20)) {
		fprintf(stderr, "spill_reader: cannot make the topic\n");
		return -1;
	}
	if (rdt_daemon_start(&S.env) || rdt_daemon_wait_attached(&S.env, TOPIC, 10 * TEST_SEC))
		return -1;
	S.have_daemon = true;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rdt_env_finish(&S.env);
	free(S.pos);
	free(S.len);
	free(S.ts);
	return 0;
}

/* ---------------------------------------------------------------------------
 * 1. Disk to live
 */
struct follow {
	struct spw_reader *r;
	size_t next;            /* catalog index expected next */
	size_t disk, live;      /* deliveries from the segments / the ring */
	uint8_t seg_seen[4096]; /* segments delivered from (disk) */
	size_t segs;
	bool failed;            /* stop following: err says why */
	char err[600];
};

static int follow_cb(void *arg, const struct spw_record *rec)
{
	struct follow *f = arg;
	size_t i = f->next;
	bool live = spw_reader_is_live(f->r);

	if (f->failed)
		return 1;
	if (i >= S.n || rec->position != S.pos[i] || rec->len != S.len[i] ||
	    !rdt_id_is(rec->data, rec->len, S.seed, 0, i)) {
		ssize_t j = cat_find(rec->position);

		f->failed = true;
		snprintf(f->err, sizeof(f->err),
			 "expected record %zu at %" PRId64 " (len %u), got position %" PRId64
			 " len %u%s%s, %s",
			 i, i < S.n ? S.pos[i] : -1, i < S.n ? S.len[i] : 0, rec->position, rec->len,
			 rec->position == (i < S.n ? S.pos[i] : -1) ? " with a wrong payload" : "",
			 j >= 0 && (size_t)j < i ? " (a duplicate: delivered before)" : "",
			 live ? "live" : "from disk");
		return 1;
	}
	if (live) {
		f->live++;
	} else {
		uint64_t s = (uint64_t)rec->position / SEG_BYTES;

		f->disk++;
		if (s < sizeof(f->seg_seen) && !f->seg_seen[s]) {
			f->seg_seen[s] = 1;
			f->segs++;
		}
	}
	f->next++;
	return 0;
}

/* One poll of the follower; false (and f->err) once it failed. */
static bool follow_poll(struct follow *f, int max, int64_t wait_ns)
{
	int rc;

	if (f->failed)
		return false;
	rc = wait_ns ? spw_reader_poll_wait(f->r, follow_cb, f, max, wait_ns)
		     : spw_reader_poll(f->r, follow_cb, f, max);
	if (rc < 0 && !f->failed) {
		char ef[1024] = "";
		int64_t ep = -1;

		spw_reader_error(f->r, ef, sizeof(ef), &ep);
		f->failed = true;
		snprintf(f->err, sizeof(f->err),
			 "spw_reader_poll at %" PRId64 ": %s (file \"%.400s\", position %" PRId64 ")",
			 spw_reader_position(f->r), strerror(-rc), ef, ep);
	}
	return !f->failed;
}

static int64_t send_one(struct spw_producer *p, uint64_t *rng, uint8_t *buf)
{
	uint32_t len = rdt_id_len(rng, 0, 1, MAX_LEN);
	int64_t pos;

	test_id_make(buf, len, S.seed, 0, S.n);
	pos = spw_producer_send_wait(p, buf, len, 10 * TEST_SEC);
	if (pos < 0)
		fail_msg("send_wait of record %zu: %s", S.n, strerror((int)-pos));
	cat_add(pos, len);
	return pos;
}

/* The catalog's timestamps, from the segments alone (after everything was
 * spilled), checking every record once more: the later cases compare every
 * delivery with it, so it must not depend on the follower above. */
static int catalog_cb(void *arg, const struct spw_record *rec)
{
	size_t *next = arg;

	if (*next >= S.n || rec->position != S.pos[*next] || rec->len != S.len[*next] ||
	    !rdt_id_is(rec->data, rec->len, S.seed, 0, *next))
		fail_msg("the segments hold position %" PRId64 " (len %u) where record %zu "
			 "(at %" PRId64 ") should be",
			 rec->position, rec->len, *next, *next < S.n ? S.pos[*next] : -1);
	S.ts[(*next)++] = rec->timestamp_ns;
	return 0;
}

static void catalog_from_disk(void)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	size_t next = 0;
	int rc;

	o.flags = SPW_READER_NO_LIVE;
	r = open_ok(&o);
	do {
		rc = spw_reader_poll(r, catalog_cb, &next, 1000);
		if (rc < 0)
			fail_msg("reading the whole log from the segments: %s at %" PRId64, strerror(-rc),
				 spw_reader_position(r));
	} while (rc > 0);
	assert_int_equal(next, S.n);
	rdt_drop(r);
}

static void reader_from_earliest_crosses_segments_then_goes_live(void **state)
{
	uint64_t target = test_scaled(20ull << 20, 8ull << 20, 8ull << 20), rng, produced = 0;
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_topic_info in;
	struct follow *f = rdt_keep_mem(calloc(1, sizeof(*f)));
	uint8_t buf[MAX_LEN];
	int64_t start = test_now_ns();
	size_t live_from, lagged = 0;

	(void)state;
	if (!S.have_daemon)
		skip();
	S.seed = test_seed("spill_reader");
	rng = rdt_len_rng(S.seed, 0);
	assert_int_equal(spw_topic_open(S.env.shm, TOPIC, 0, &t), 0);
	rdt_keep_topic(t);
	assert_int_equal(spw_producer_open(t, &p), 0);
	rdt_keep_producer(p);
	f->r = open_ok(&o);
	assert_int_equal(spw_reader_position(f->r), 0);

	/* The reader takes ~16 records per 64 KiB written (about a quarter of
	 * the rate): it is lapped early (live -> disk, R2) and stays far
	 * behind, in the segment files. A follower that fails stops; the
	 * log is written to the end anyway, for the other cases. */
	while (produced < target) {
		uint64_t batch = 0;

		while (batch < (64u << 10)) {
			send_one(p, &rng, buf);
			batch += rdt_span(S.len[S.n - 1]);
		}
		produced += batch;
		follow_poll(f, 16, 0);
	}
	lagged = S.n - f->next;

	/* Catch up from the segments: R1 and R3 on every record, then live. */
	while (!f->failed && f->next < S.n) {
		if (test_now_ns() - start > 40 * TEST_SEC) {
			f->failed = true;
			snprintf(f->err, sizeof(f->err), "reader stuck at record %zu of %zu (position %" PRId64 ")",
				 f->next, S.n, spw_reader_position(f->r));
		}
		follow_poll(f, 256, 0);
	}
	follow_poll(f, 256, 0); /* nothing left: it goes live (R2) */
	if (!f->failed && !spw_reader_is_live(f->r)) {
		f->failed = true;
		snprintf(f->err, sizeof(f->err), "caught up at %" PRId64 " but not live (R2)",
			 spw_reader_position(f->r));
	}

	/* Live: each new record is delivered from the ring, at once. */
	live_from = f->live;
	for (int k = 0; k < 200; k++) {
		size_t want = S.n;

		send_one(p, &rng, buf);
		if (follow_poll(f, 16, 2 * TEST_SEC) && f->next != want + 1) {
			f->failed = true;
			snprintf(f->err, sizeof(f->err), "live record %zu not delivered within 2 s", want);
		}
	}
	/* A last few records, sent at once: a live lap of the ring can no
	 * longer reach them (reclaim keeps at least a quarter ring), so the
	 * cases that start or stop in the ring have records there. */
	for (int k = 0; k < 30; k++)
		send_one(p, &rng, buf);
	for (int k = 0; k < 100 && f->next < S.n && follow_poll(f, 64, 20 * TEST_MS); k++)
		;
	S.tail = S.pos[S.n - 1] + (int64_t)rdt_span(S.len[S.n - 1]);
	assert_int_equal(rdt_wait_spilled(t, (uint64_t)S.tail, 20 * TEST_SEC), 0);
	assert_int_equal(spw_topic_info(t, &in), 0);
	assert_int_equal(in.tail, (uint64_t)S.tail);

	/* The log has no hole: each record follows the one before, or the
	 * next lap after a PADDING record. */
	for (size_t i = 0; i + 1 < S.n; i++) {
		int64_t end = S.pos[i] + (int64_t)rdt_span(S.len[i]);

		if (S.pos[i + 1] != end && (S.pos[i + 1] % (int64_t)RING_BYTES != 0 ||
					     S.pos[i + 1] - end >= (int64_t)RING_BYTES))
			fail_msg("record %zu ends at %" PRId64 ", the next starts at %" PRId64, i, end,
				 S.pos[i + 1]);
	}
	catalog_from_disk();
	S.ready = true;

	printf("[ info     ] %zu records, %.1f MiB; the follower lagged %zu records, got %zu from "
	       "%zu segment files, %zu live; the ring holds %zu records; %.2f s\n",
	       S.n, (double)S.tail / (1 << 20), lagged, f->disk, f->segs, f->live,
	       S.n - cat_at_or_after((int64_t)in.reclaimed), (double)(test_now_ns() - start) / TEST_SEC);
	if (f->failed)
		fail_msg("the follower: %s (seed %#" PRIx64 ")", f->err, S.seed);
	assert_true(lagged > S.n / 2);
	assert_true(spw_reader_is_live(f->r));
	assert_int_equal(spw_reader_position(f->r), S.tail);
	assert_int_equal(f->next, S.n);
	/* The 200 records sent one by one were read live; the burst of 30 may
	 * have been lapped (it can exceed the quarter ring that reclaim keeps)
	 * and read from disk instead: exactly once either way (f->next). */
	assert_true(f->live - live_from >= 200 && f->live - live_from <= 230);
	assert_true(f->segs >= target / SEG_BYTES / 2);
	assert_true(f->disk > S.n / 2);
	rdt_drop(f->r);
	rdt_drop(p);
	rdt_drop(t);
	rdt_drop(f);
}

/* ---------------------------------------------------------------------------
 * 2. Start positions
 */
static void expect_first(const struct spw_reader_opts *o, size_t first, size_t count)
{
	size_t want = first >= S.n ? 0 : (first + count > S.n ? S.n - first : count);
	struct spw_reader *r = open_ok(o);
	struct got *g = got_new();
	int rc, empty = 0;

	/* max 64: the first records are checked, more may come. */
	g->r = r;
	while (g->n < want || (!want && empty < 2)) {
		rc = spw_reader_poll(r, collect, g, 64);
		if (rc < 0)
			fail_msg("poll: %s", strerror(-rc));
		if (rc == 0 && ++empty == 3)
			break;
		if (rc == 0)
			test_sleep_ns(10 * TEST_MS);
	}
	if (g->n > want)
		g->n = want;
	assert_range(g, first, first + want);
	rdt_drop(g);
	rdt_drop(r);
}

static void start_time_lands_on_first_record_at_or_after_t(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_TIME);
	struct spw_topic_info in;
	size_t picks[6], np = 0;

	(void)state;
	need_log();
	log_info(&in);
	/* In the 3rd segment: its first record, one in the middle, its last;
	 * one further on, and one still in the ring. */
	picks[np++] = cat_at_or_after(2 * (int64_t)SEG_BYTES);
	picks[np++] = cat_at_or_after(2 * (int64_t)SEG_BYTES + (int64_t)SEG_BYTES / 2 + 4000);
	picks[np++] = cat_at_or_after(3 * (int64_t)SEG_BYTES) - 1;
	picks[np++] = cat_at_or_after(5 * (int64_t)SEG_BYTES + 77777);
	picks[np++] = cat_at_or_after((int64_t)in.reclaimed) + 3 < S.n
			      ? cat_at_or_after((int64_t)in.reclaimed) + 3
			      : S.n - 2;
	picks[np++] = S.n - 1;
	for (size_t k = 0; k < np; k++) {
		size_t i = picks[k];

		assert_true(i < S.n);
		for (int d = 0; d < 2; d++) {
			uint64_t t0 = S.ts[i] + (uint64_t)d;
			size_t e = cat_first_ts(t0);

			/* The definition, spelled out: no earlier record reaches t0. */
			for (size_t j = 0; j < e; j++)
				assert_true(S.ts[j] < t0);
			o.time_ns = t0;
			expect_first(&o, e, 5);
		}
	}
	/* Before everything: the earliest record; after everything: nothing. */
	o.time_ns = 1;
	expect_first(&o, 0, 3);
	o.time_ns = S.ts[S.n - 1] + 1000000000ull;
	expect_first(&o, S.n, 3);
}

struct small_log {
	int n;
	int64_t pos[64];
	uint64_t ts[64];
};

static int small_cb(void *arg, const struct spw_record *rec)
{
	struct small_log *l = arg;

	if (l->n < 64) {
		l->pos[l->n] = rec->position;
		l->ts[l->n] = rec->timestamp_ns;
	}
	l->n++;
	return 0;
}

/* In the ring, records before the start time are skipped by the reader's
 * filter: a poll must not report "nothing there" (0) because skipped
 * records used up its max while the record at the start time is there.
 * A ring with no segments and no daemon, so the start lands at the ring's
 * oldest record and every record before t is skipped live. */
static void start_time_in_ring_poll_delivers_not_zero(void **state)
{
	struct spw_reader_opts o = { 0 };
	struct spw_topic_config cfg = { .ring_bytes = 64u << 10 };
	struct small_log all = { 0 }, got = { 0 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_reader *r;
	char shm[1024], data[1024];
	uint8_t buf[100];
	int rc, zeros = 0, e = 0;

	(void)state;
	if (!S.env.root)
		skip();
	/* A subdirectory of the shm dir: the daemon watches only the top. */
	snprintf(shm, sizeof(shm), "%s/nodaemon", S.env.shm);
	snprintf(data, sizeof(data), "%s/data-nodaemon", S.env.root);
	assert_int_equal(mkdir(shm, 0700), 0);
	assert_int_equal(mkdir(data, 0755), 0);
	assert_int_equal(spw_topic_create(shm, "tm", &cfg), 0);
	assert_int_equal(spw_topic_open(shm, "tm", 0, &t), 0);
	rdt_keep_topic(t);
	assert_int_equal(spw_producer_open(t, &p), 0);
	rdt_keep_producer(p);
	for (int i = 0; i < 50; i++) {
		memset(buf, i, sizeof(buf));
		assert_true(spw_producer_send(p, buf, sizeof(buf)) >= 0);
	}
	/* The timestamps, from a reader at the earliest position. */
	o.shm_dir = shm;
	o.data_dir = data;
	o.start = SPW_START_EARLIEST;
	assert_int_equal(spw_reader_open("tm", &o, &r), 0);
	rdt_keep_reader(r);
	assert_int_equal(spw_reader_poll(r, small_cb, &all, 64), 50);
	rdt_drop(r);
	while (all.ts[e] < all.ts[30])
		e++;
	assert_true(e > 0);

	o.start = SPW_START_TIME;
	o.time_ns = all.ts[30];
	assert_int_equal(spw_reader_open("tm", &o, &r), 0);
	rdt_keep_reader(r);
	while (got.n == 0 && zeros < 100) {
		rc = spw_reader_poll(r, small_cb, &got, 1);
		assert_true(rc >= 0);
		zeros += rc == 0;
	}
	assert_int_equal(got.n, 1);
	assert_int_equal(got.pos[0], all.pos[e]);
	if (zeros)
		fail_msg("spw_reader_poll(max 1) returned 0 (\"nothing there\") %d times before "
			 "delivering the record at the start time (record %d of the ring); it "
			 "counts records skipped by the start-time filter against max",
			 zeros, e);
	rdt_drop(r);
	rdt_drop(p);
	rdt_drop(t);
}

static void start_position_at_segment_boundary_delivers_the_record_there(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_reader *r = NULL;
	struct seg_idx_entry *e;
	struct seg_idx_hdr h;
	int n;

	(void)state;
	need_log();
	/* Segment boundaries are lap boundaries, so record boundaries. */
	for (int64_t b = (int64_t)SEG_BYTES; b < S.tail; b += 2 * (int64_t)SEG_BYTES) {
		ssize_t i = cat_find(b);

		if (i < 0)
			fail_msg("no record starts at the segment boundary %" PRId64, b);
		o.position = b;
		expect_first(&o, (size_t)i, 4);
	}
	/* Index entry ends inside a segment are record boundaries too. */
	n = load_idx(S.env.data, 3 * SEG_BYTES, &h, &e);
	for (int k = 0; k < n - 1; k += 3) {
		size_t i = cat_at_or_after((int64_t)e[k].end);

		o.position = (int64_t)e[k].end;
		expect_first(&o, i, 3);
	}
	rdt_drop(e);
	/* The end of the log: nothing yet; past it or unaligned: -EINVAL. */
	o.position = S.tail;
	expect_first(&o, S.n, 1);
	o.position = S.tail + 8;
	assert_int_equal(spw_reader_open(TOPIC, &o, &r), -EINVAL);
	o.position = S.pos[10] + 4;
	assert_int_equal(spw_reader_open(TOPIC, &o, &r), -EINVAL);
	assert_null(r);
}

static void start_position_at_padding_delivers_the_next_lap_first(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_topic_info in;
	int disk = 0, ring = 0, seg_end = 0;

	(void)state;
	need_log();
	log_info(&in);
	for (size_t i = 0; i + 1 < S.n; i++) {
		int64_t pad = S.pos[i] + (int64_t)rdt_span(S.len[i]);

		if (pad == S.pos[i + 1])
			continue;
		/* A PADDING record runs from pad to the lap's end (I6). */
		assert_int_equal(S.pos[i + 1] % (int64_t)RING_BYTES, 0);
		if ((uint64_t)pad >= in.reclaimed) {
			if (ring++ >= 3)
				continue;
		} else if (S.pos[i + 1] % (int64_t)SEG_BYTES == 0) {
			if (seg_end++ >= 3)
				continue;
		} else if (disk++ >= 3) {
			continue;
		}
		o.position = pad;
		expect_first(&o, i + 1, 3);
	}
	printf("[ info     ] started at %d paddings on disk, %d at a segment's end, %d in the "
	       "ring\n",
	       disk < 3 ? disk : 3, seg_end < 3 ? seg_end : 3, ring < 3 ? ring : 3);
	assert_true(disk > 0);
	assert_true(seg_end > 0);
}

/* ---------------------------------------------------------------------------
 * 3. Bounds
 */
static void bounded(const struct spw_reader_opts *o, int max, size_t first, size_t end)
{
	struct spw_reader *r = open_ok(o);
	struct got *g = got_new();
	int rc = drain(r, g, max);

	assert_int_equal(rc, 0);
	assert_range(g, first, end);
	assert_true(spw_reader_done(r));
	/* R1: it stopped at a record boundary after the last record it
	 * delivered and not past the first it did not: that record's start,
	 * or the PADDING before it. */
	if (end < S.n) {
		int64_t at = spw_reader_position(r);
		int64_t lo = end > first ? S.pos[end - 1] + (int64_t)rdt_span(S.len[end - 1]) : S.pos[end];

		if (at != S.pos[end] && at != lo)
			fail_msg("done at %" PRId64 ", expected %" PRId64 " (the next record) or %" PRId64
				 " (after the last one delivered)",
				 at, S.pos[end], lo);
	}
	/* Done stays done. */
	assert_int_equal(spw_reader_poll(r, collect, g, 100), 0);
	assert_int_equal(g->n, end - first);
	rdt_drop(g);
	rdt_drop(r);
}

static void stop_position_delivers_exactly_the_records_before_it(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_topic_info in;
	size_t k;

	(void)state;
	need_log();
	k = cat_at_or_after(3 * (int64_t)SEG_BYTES + 12345);
	o.stop_position = S.pos[k];
	bounded(&o, 100, 0, k);
	o.stop_position = S.pos[k] + 8; /* inside record k: k is delivered */
	bounded(&o, 7, 0, k + 1);
	/* From a position, to a bound in the ring (the live path). */
	log_info(&in);
	k = cat_at_or_after((int64_t)in.reclaimed) + 5;
	if (k + 1 >= S.n)
		k = S.n - 2; /* the ring kept fewer records than usual */
	o.start = SPW_START_POSITION;
	o.position = S.pos[k - 50];
	o.stop_position = S.pos[k];
	bounded(&o, 10, k - 50, k);
}

static void stop_time_delivers_exactly_the_records_before_it(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	size_t k, e;

	(void)state;
	need_log();
	k = cat_at_or_after(4 * (int64_t)SEG_BYTES + 999);
	o.stop_time_ns = S.ts[k];
	e = cat_first_ts(S.ts[k]);
	bounded(&o, 64, 0, e);
	o.stop_time_ns = S.ts[k] + 1;
	e = cat_first_ts(S.ts[k] + 1);
	bounded(&o, 1000, 0, e);
	/* Both bounds: the nearer one wins. */
	o.stop_position = S.pos[k / 2];
	bounded(&o, 33, 0, k / 2);
}

static void max_records_delivers_exactly_that_many(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_topic_info in;
	size_t a = cat_at_or_after(SEG_BYTES - 5000);

	(void)state;
	need_log();
	o.position = S.pos[a];
	o.max_records = 1500; /* across a segment boundary, from disk */
	bounded(&o, 100, a, a + 1500);
	o.max_records = 1;
	bounded(&o, 100, a, a + 1);
	log_info(&in);
	a = cat_at_or_after((int64_t)in.reclaimed) + 1; /* live */
	if (a + 5 >= S.n)
		a = S.n - 6; /* the ring kept fewer records than usual */
	o.position = S.pos[a];
	o.max_records = 5;
	bounded(&o, 3, a, a + 5);
}

/* "or after max_records; then spw_reader_done() is true": also when the
 * last allowed record is the last one there is (a batch job looping until
 * done must not hang). */
static void max_records_reached_at_end_of_log_is_done(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_reader *r;
	struct got *g = got_new();
	size_t a = S.n - 7;

	(void)state;
	need_log();
	o.position = S.pos[a];
	o.max_records = 7;
	o.flags = SPW_READER_NO_LIVE;
	r = open_ok(&o);
	g->r = r;
	assert_int_equal(spw_reader_poll(r, collect, g, 100), 7);
	assert_range(g, a, S.n);
	assert_int_equal(spw_reader_poll(r, collect, g, 100), 0);
	if (!spw_reader_done(r))
		fail_msg("max_records = 7 delivered, the 7th the last record of the log, but "
			 "spw_reader_done() stays false");
	reader_done(r, g);
}

/* ... and right after the poll that delivered the last allowed record. */
static void max_records_reached_is_done_after_that_poll(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_reader *r;
	struct got *g = got_new();
	size_t a = cat_at_or_after(2 * (int64_t)SEG_BYTES);

	(void)state;
	need_log();
	o.position = S.pos[a];
	o.max_records = 10;
	r = open_ok(&o);
	g->r = r;
	assert_int_equal(spw_reader_poll(r, collect, g, 10), 10);
	assert_range(g, a, a + 10);
	if (!spw_reader_done(r))
		fail_msg("the poll delivered max_records = 10 (more records follow), but "
			 "spw_reader_done() is false until the next poll");
	reader_done(r, g);
}

/* ---------------------------------------------------------------------------
 * 4. Damaged segments (on copies)
 */
/* A reader of o opened at pos: its first poll fails with err, delivering
 * nothing. */
static struct spw_reader *open_at_fails(struct spw_reader_opts *o, int64_t pos, struct got *g,
					int err)
{
	struct spw_reader *r;

	o->start = SPW_START_POSITION;
	o->position = pos;
	r = open_ok(o);
	assert_int_equal(spw_reader_poll(r, collect, g, 10), err);
	assert_int_equal(g->n, 0);
	return r;
}

/* The reader stays at its error: each of polls more polls fails with err
 * and delivers nothing. */
static void stays_failed(struct spw_reader *r, struct got *g, int err, int polls)
{
	size_t n = g->n;

	while (polls-- > 0)
		assert_int_equal(spw_reader_poll(r, collect, g, 10), err);
	assert_int_equal(g->n, n);
}

static void corrupt_sealed_segment_is_ebadmsg_naming_file_and_range(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200];
	uint64_t a, b;
	int rc;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	/* A byte in the middle of entry k of segment 1 (sealed), one that
	 * holds a few records. */
	pick_entry(data, SEG_BYTES, 2, &a, &b);
	seg_path(data, SEG_BYTES, "seg", seg, sizeof(seg));
	assert_int_equal(rdt_xor_byte(seg, (a + b) / 2 - SEG_BYTES, 0x40), 0);

	/* R3: nothing from the bad range is delivered; everything before is. */
	r = open_ok(&o);
	rc = drain(r, g, 200);
	if (g->bad)
		fail_msg("bytes of an index entry that fails its CRC ([%" PRIu64 ", %" PRIu64
			 ")) were delivered: %s (poll then returned %d)",
			 a, b, g->err, rc);
	assert_int_equal(rc, -EBADMSG);
	assert_range(g, 0, cat_at_or_after((int64_t)a));
	assert_error_at(r, seg, (int64_t)a, (int64_t)b);
	assert_int_equal(spw_reader_position(r), (int64_t)a); /* R1 */
	/* It stays there: the same error, nothing delivered, no crash. */
	stays_failed(r, g, -EBADMSG, 2);
	reader_done(r, g);

	/* Started inside the bad range: the same. */
	r = open_at_fails(&o, S.pos[cat_at_or_after((int64_t)a) + 1], g, -EBADMSG);
	assert_error_at(r, seg, (int64_t)a, (int64_t)b);
	reader_done(r, g);
}

static void corrupt_range_is_skipped_with_skip_corrupt(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200];
	uint64_t a, b;
	size_t ia, ib;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	pick_entry(data, 2 * SEG_BYTES, 3, &a, &b);
	seg_path(data, 2 * SEG_BYTES, "seg", seg, sizeof(seg));
	assert_int_equal(rdt_xor_byte(seg, a + 20 - 2 * SEG_BYTES, 0x01), 0);
	ia = cat_at_or_after((int64_t)a);
	ib = cat_at_or_after((int64_t)b);
	assert_true(ib > ia);

	o.flags = SPW_READER_SKIP_CORRUPT;
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 300), 0);
	if (g->bad)
		fail_msg("%s", g->err);
	/* Every record but those of [a, b), each once, in order (R1). */
	assert_all_but(r, g, ia, ib, b - a);
	assert_error_at(r, seg, (int64_t)a, (int64_t)b);
	assert_int_equal(spw_reader_position(r), S.tail);
	reader_done(r, g);
}

static void bad_record_header_is_ebadmsg_without_crc_check(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200];
	uint64_t w, a, b;
	size_t k;
	int rc;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	/* Record k, inside an index entry of segment 1, gets a commit word
	 * of an unknown type (R3: every header is checked, CRC or not). */
	pick_entry(data, SEG_BYTES, 2, &a, &b);
	k = cat_at_or_after((int64_t)a) + 2;
	assert_true((uint64_t)S.pos[k] < b);
	seg_path(data, SEG_BYTES, "seg", seg, sizeof(seg));
	w = (1ull << 63) | (1ull << 62) | (7ull << 32) | S.len[k];
	assert_int_equal(rdt_write_u64(seg, (uint64_t)S.pos[k] - SEG_BYTES, w), 0);

	o.flags = SPW_READER_NO_VERIFY;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) { /* A DATA length past max_record: the same. */
			w = (1ull << 63) | (1ull << 62) | (1ull << 32) | (RING_BYTES / 4 + 8);
			assert_int_equal(rdt_write_u64(seg, (uint64_t)S.pos[k] - SEG_BYTES, w), 0);
		}
		print_message("commit word %#" PRIx64 " at record %zu\n", w, k);
		r = open_ok(&o);
		assert_int_equal(drain(r, g, 100), -EBADMSG);
		assert_range(g, 0, k);
		if (pass == 0)
			assert_error_at(r, seg, S.pos[k], S.pos[k] + 1);
		assert_int_equal(spw_reader_position(r), S.pos[k]);
		reader_done(r, g);
	}

	/* With SKIP_CORRUPT: on from the end of the bad header's entry. */
	o.flags = SPW_READER_NO_VERIFY | SPW_READER_SKIP_CORRUPT;
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 100), 0);
	assert_all_but(r, g, k, cat_at_or_after((int64_t)b), b - (uint64_t)S.pos[k]);
	reader_done(r, g);

	/* With the CRC check: the entry fails first, at its start (R3). */
	o.flags = 0;
	r = open_ok(&o);
	rc = drain(r, g, 100);
	if (g->n > cat_at_or_after((int64_t)a))
		fail_msg("%zu records of the index entry [%" PRIu64 ", %" PRIu64 ") that fails its "
			 "CRC were delivered (poll then returned %d)",
			 g->n - cat_at_or_after((int64_t)a), a, b, rc);
	assert_int_equal(rc, -EBADMSG);
	assert_range(g, 0, cat_at_or_after((int64_t)a));
	assert_error_at(r, seg, (int64_t)a, (int64_t)b);
	reader_done(r, g);
}

static void truncated_segment_is_ebadmsg(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	uint64_t base = 2 * SEG_BYTES, cut = SEG_BYTES / 2 + 1000;
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200];
	int rc;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	seg_path(data, base, "seg", seg, sizeof(seg));
	assert_int_equal(truncate(seg, (off_t)cut), 0);

	/* R3: the index claims bytes the file lacks. A prefix of the log, at
	 * least up to the short segment, then -EBADMSG naming the file. */
	r = open_ok(&o);
	rc = drain(r, g, 250);
	assert_int_equal(rc, -EBADMSG);
	assert_true(g->n >= cat_at_or_after((int64_t)base));
	assert_range(g, 0, g->n);
	assert_true(g->n <= cat_at_or_after((int64_t)(base + cut)));
	assert_error_at(r, seg, (int64_t)base, (int64_t)(base + cut));
	assert_int_equal(spw_reader_poll(r, collect, g, 10), -EBADMSG);
	reader_done(r, g);

	/* With SKIP_CORRUPT either the same, or the missing range skipped
	 * (counted) and the rest delivered in order: never a crash, never a
	 * record twice or out of order. */
	o.flags = SPW_READER_SKIP_CORRUPT;
	r = open_ok(&o);
	rc = drain(r, g, 250);
	if (g->bad)
		fail_msg("%s", g->err);
	assert_true(rc == -EBADMSG || rc == 0);
	assert_true(g->n >= cat_at_or_after((int64_t)base));
	for (size_t k = 0; k < cat_at_or_after((int64_t)base); k++)
		assert_int_equal(g->idx[k], k);
	for (size_t k = 1; k < g->n; k++)
		assert_true(g->idx[k] > g->idx[k - 1]);
	if (rc == 0) {
		assert_true(spw_reader_skipped(r) > 0);
		assert_int_equal(g->idx[g->n - 1], S.n - 1);
	}
	reader_done(r, g);
	o.flags = 0;

	/* Cut to nothing: the same. */
	assert_int_equal(truncate(seg, 0), 0);
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 250), -EBADMSG);
	assert_range(g, 0, cat_at_or_after((int64_t)base));
	reader_done(r, g);
}

/* An index cut short (torn entries) in a segment that later segments
 * follow: the reader must not take it for the end of the log and report
 * "nothing there" forever while the rest of the log exists (R5's spirit:
 * never a silent stop or skip in the middle). */
static void torn_index_of_sealed_segment_is_an_error_not_the_end(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], idx[1200];
	struct stat st;
	int rc;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	o.flags = SPW_READER_NO_LIVE;
	seg_path(data, 2 * SEG_BYTES, "idx", idx, sizeof(idx));
	assert_int_equal(stat(idx, &st), 0);
	assert_int_equal(truncate(idx, st.st_size / 2), 0);
	r = open_ok(&o);
	rc = drain(r, g, 250);
	assert_range(g, 0, g->n);
	if (rc == 0 && g->n < S.n)
		fail_msg("the reader stopped at %" PRId64 " with poll() == 0 (\"nothing there\") "
			 "although the log goes on to %" PRId64 " in later segments",
			 spw_reader_position(r), S.tail);
	assert_true(rc == -EBADMSG || rc == -ENOENT);
	reader_done(r, g);
}

/* The index of a middle segment gone, or shorter than its header, while
 * its .seg and later segments are there: a damaged log, not a segment being
 * born (only the last one can be that) and not the end of the log: -EBADMSG
 * at the segment's base, everything before it delivered. */
static void missing_or_short_index_of_a_middle_segment_is_an_error(void **state)
{
	static const char *const pass_name[2] = { "index gone", "index of 10 bytes" };
	uint64_t base = 2 * SEG_BYTES;

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
		struct spw_reader *r;
		struct got *g = got_new();
		char data[1024], idx[1200];

		print_message("%s\n", pass_name[pass]);
		damage_begin(&o, data, sizeof(data));
		o.flags = SPW_READER_NO_LIVE;
		seg_path(data, base, "idx", idx, sizeof(idx));
		if (pass == 0)
			assert_int_equal(unlink(idx), 0);
		else
			assert_int_equal(truncate(idx, 10), 0);
		r = open_ok(&o);
		assert_int_equal(drain(r, g, 250), -EBADMSG);
		assert_range(g, 0, cat_at_or_after((int64_t)base));
		assert_int_equal(spw_reader_position(r), (int64_t)base);
		assert_error_at(r, idx, (int64_t)base, (int64_t)base + 1);
		stays_failed(r, g, -EBADMSG, 1);
		reader_done(r, g);
	}
}

static void unlink_segment(const char *data, uint64_t base);

/* The last segment gone (its .seg and .idx) while the durable checkpoint
 * says the log went past its base: the log's end is not where the disk
 * now stops. -ENOENT there, never a clean end of the log over data that
 * was acknowledged durable (principle 2). */
static void a_log_ending_below_its_durable_checkpoint_is_enoent(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200], dir[1200];
	uint64_t base = ((uint64_t)S.tail - 1) / SEG_BYTES * SEG_BYTES, ck = 0;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	o.flags = SPW_READER_NO_LIVE;
	snprintf(dir, sizeof(dir), "%s/%s", data, TOPIC);
	assert_int_equal(seg_ckpt_load(dir, &ck), 0);
	assert_true(ck > base && base > 0);
	unlink_segment(data, base);
	seg_path(data, base, "seg", seg, sizeof(seg));
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 250), -ENOENT);
	assert_range(g, 0, cat_at_or_after((int64_t)base));
	assert_int_equal(spw_reader_position(r), (int64_t)base);
	stays_failed(r, g, -ENOENT, 1);
	reader_done(r, g);
}

/* The last segment's index cut at an entry boundary (entries lost) while
 * the durable checkpoint says the log went further: -EBADMSG at the cut,
 * never a clean end of the log. */
static void a_last_index_cut_below_the_checkpoint_is_ebadmsg(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_reader *r;
	struct got *g = got_new();
	struct seg_idx_hdr h;
	struct seg_idx_entry *e = NULL;
	char data[1024], idx[1200], dir[1200];
	uint64_t base = ((uint64_t)S.tail - 1) / SEG_BYTES * SEG_BYTES, ck = 0, cut;

	(void)state;
	damage_begin(&o, data, sizeof(data));
	o.flags = SPW_READER_NO_LIVE;
	snprintf(dir, sizeof(dir), "%s/%s", data, TOPIC);
	assert_int_equal(seg_ckpt_load(dir, &ck), 0);
	load_idx(data, base, &h, &e);
	cut = e[0].end; /* e: freed with the case (load_idx) */
	assert_true(ck > cut);
	seg_path(data, base, "idx", idx, sizeof(idx));
	assert_int_equal(truncate(idx, (off_t)(SEG_IDX_HDR_BYTES + SEG_IDX_ENTRY_BYTES)), 0);
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 250), -EBADMSG);
	assert_range(g, 0, cat_at_or_after((int64_t)cut));
	assert_int_equal(spw_reader_position(r), (int64_t)cut);
	reader_done(r, g);
}

/* --- a segment born in missing()'s window -------------------------------- */

static struct {
	char dir[1200], stash[1200]; /* the topic dir; where its files wait */
	uint64_t base, last, ckpt;   /* the segment born, the one rolled to, the checkpoint */
	bool seg_there;              /* base's .seg is there already (only its index comes) */
	bool fired;
	int64_t pos;
	int err;
} M;

/* Move the file of the segment at base into the stash or back. */
static void stash_move(uint64_t base, const char *ext, bool back)
{
	char in[1400], out[1400];
	int w;

	w = snprintf(in, sizeof(in), "%s/%020" PRIu64 ".%s", M.dir, base, ext);
	assert_true(w > 0 && (size_t)w < sizeof(in));
	w = snprintf(out, sizeof(out), "%s/%020" PRIu64 ".%s", M.stash, base, ext);
	assert_true(w > 0 && (size_t)w < sizeof(out));
	if (rename(back ? out : in, back ? in : out))
		fail_msg("rename %s: %s", back ? out : in, strerror(errno));
}

static void write_ckpt(uint64_t durable)
{
	int fd = seg_ckpt_open(M.dir);

	assert_true(fd >= 0);
	assert_int_equal(seg_ckpt_write(fd, durable), 0);
	close(fd);
}

/* In missing(), after the reader's load found no segment (or no index
 * header) at its position: what the live daemon does meanwhile. It makes
 * that segment, fills it, rolls to the next one and syncs past both. */
static void roll_in_the_window(struct spw_reader *r, uint64_t pos, int err)
{
	(void)r;
	rd_test_missing_hook = NULL;
	M.fired = true;
	M.pos = (int64_t)pos;
	M.err = err;
	if (!M.seg_there)
		stash_move(M.base, "seg", true);
	stash_move(M.base, "idx", true); /* over the empty one, if any */
	stash_move(M.last, "seg", true);
	stash_move(M.last, "idx", true);
	write_ckpt(M.ckpt);
}

/* A disk reader at the end of the log finds no segment at its position
 * (or one without its index header: being born); before missing() looks
 * again, the daemon makes it whole, rolls to the next and moves the
 * checkpoint past both. The reader reads on, the records of the new
 * segments in order, none lost or twice: neither -ENOENT nor -EBADMSG
 * (the hole that is not there; spill/reader_disk.c missing()). */
static void a_segment_born_while_the_reader_looks_is_read_not_a_hole(void **state)
{
	static const char *const pass_name[2] = { "no .seg yet", "an .idx without its header yet" };

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
		struct spw_reader *r;
		struct got *g = got_new();
		struct seg_idx_hdr h;
		struct seg_idx_entry *e = NULL;
		char data[1024], idx[1200];
		int fd, n, rc;

		print_message("%s\n", pass_name[pass]);
		damage_begin(&o, data, sizeof(data));
		o.flags = SPW_READER_NO_LIVE;
		memset(&M, 0, sizeof(M));
		snprintf(M.dir, sizeof(M.dir), "%s/%s", data, TOPIC);
		snprintf(M.stash, sizeof(M.stash), "%s/stash", data);
		assert_int_equal(mkdir(M.stash, 0755), 0);
		M.last = ((uint64_t)S.tail - 1) / SEG_BYTES * SEG_BYTES;
		M.base = M.last - SEG_BYTES;
		M.seg_there = pass == 1;
		assert_true(M.base >= SEG_BYTES);
		assert_int_equal(seg_ckpt_load(M.dir, &M.ckpt), 0);
		assert_true(M.ckpt > M.base);
		/* The segment before ends at base: the log as the daemon left
		 * it when it had synced that one and not yet made base's. */
		n = load_idx(data, M.base - SEG_BYTES, &h, &e);
		assert_int_equal(e[n - 1].end, M.base);
		if (!M.seg_there)
			stash_move(M.base, "seg", false);
		stash_move(M.base, "idx", false);
		stash_move(M.last, "seg", false);
		stash_move(M.last, "idx", false);
		if (M.seg_there) {
			seg_path(data, M.base, "idx", idx, sizeof(idx));
			fd = open(idx, O_WRONLY | O_CREAT | O_EXCL, 0644);
			assert_true(fd >= 0);
			close(fd);
		}
		write_ckpt(M.base);

		/* The end of the log for now, at base. */
		r = open_ok(&o);
		assert_int_equal(drain(r, g, 250), 0);
		assert_range(g, 0, cat_at_or_after((int64_t)M.base));
		assert_int_equal(spw_reader_position(r), (int64_t)M.base);

		/* The segment comes in the window: read, no hole. */
		rd_test_missing_hook = roll_in_the_window;
		rc = drain(r, g, 250);
		rd_test_missing_hook = NULL;
		assert_true(M.fired);
		assert_int_equal(M.pos, (int64_t)M.base);
		assert_int_equal(M.err, M.seg_there ? -EBADMSG : -ENOENT);
		if (rc < 0)
			fail_msg("poll at %" PRId64 ": %s, with the segment made before the reader "
				 "looked again (seed %#" PRIx64 ")",
				 spw_reader_position(r), strerror(-rc), S.seed);
		assert_range(g, 0, S.n);
		assert_int_equal(spw_reader_position(r), S.tail);
		reader_done(r, g);
	}
}

static void missing_middle_segment_is_enoent_never_skipped(void **state)
{
	static const char *const pass_name[3] = { "no flags", "SKIP_CORRUPT", "index gone too" };
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	uint64_t base = 2 * SEG_BYTES;
	struct spw_reader *r;
	struct got *g = got_new();
	char data[1024], seg[1200], idx[1200];

	(void)state;
	damage_begin(&o, data, sizeof(data));
	seg_path(data, base, "seg", seg, sizeof(seg));
	seg_path(data, base, "idx", idx, sizeof(idx));
	assert_int_equal(unlink(seg), 0);

	/* R5, also with SKIP_CORRUPT: -ENOENT when the reader gets there. */
	for (int pass = 0; pass < 3; pass++) {
		print_message("%s\n", pass_name[pass]);
		o.flags = pass == 1 ? SPW_READER_SKIP_CORRUPT : 0;
		if (pass == 2) /* the index gone too */
			assert_int_equal(unlink(idx), 0);
		r = open_ok(&o);
		assert_int_equal(drain(r, g, 250), -ENOENT);
		assert_range(g, 0, cat_at_or_after((int64_t)base));
		assert_error_at(r, seg, (int64_t)base, (int64_t)base + 1);
		assert_int_equal(spw_reader_position(r), (int64_t)base);
		stays_failed(r, g, -ENOENT, 1);
		reader_done(r, g);
	}
	/* Opened right at it. */
	r = open_at_fails(&o, (int64_t)base, g, -ENOENT);
	reader_done(r, g);
}

/* Retention's work: the segment at base and its index deleted. */
static void unlink_segment(const char *data, uint64_t base)
{
	char p[1200];

	seg_path(data, base, "seg", p, sizeof(p));
	assert_int_equal(unlink(p), 0);
	seg_path(data, base, "idx", p, sizeof(p));
	assert_int_equal(unlink(p), 0);
}

static void retention_deleted_start_is_erange_and_earliest_moves(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_POSITION);
	struct spw_reader *r = NULL;
	struct got *g = got_new();
	char data[1024];

	(void)state;
	damage_begin(&o, data, sizeof(data));
	assert_int_equal(spw_topic_earliest(S.env.shm, data, TOPIC), 0);
	unlink_segment(data, 0);

	/* R5: below the oldest kept byte is -ERANGE, at open. */
	assert_int_equal(spw_topic_earliest(S.env.shm, data, TOPIC), (int64_t)SEG_BYTES);
	o.position = S.pos[5];
	assert_int_equal(spw_reader_open(TOPIC, &o, &r), -ERANGE);
	assert_null(r);
	o.position = 0;
	assert_int_equal(spw_reader_open(TOPIC, &o, &r), -ERANGE);
	o.position = (int64_t)SEG_BYTES;
	expect_first(&o, cat_at_or_after((int64_t)SEG_BYTES), 3);
	o.start = SPW_START_EARLIEST;
	expect_first(&o, cat_at_or_after((int64_t)SEG_BYTES), 3);

	/* Deleted while a reader waited to get there: -ERANGE from poll. */
	o.start = SPW_START_POSITION;
	o.position = S.pos[cat_at_or_after((int64_t)SEG_BYTES + 5000)];
	r = open_ok(&o);
	unlink_segment(data, SEG_BYTES);
	assert_int_equal(spw_reader_poll(r, collect, g, 10), -ERANGE);
	assert_int_equal(g->n, 0);
	{
		int64_t ep = -1;

		assert_int_equal(spw_reader_error(r, NULL, 0, &ep), 0);
		assert_int_equal(ep, o.position);
	}
	assert_int_equal(spw_topic_earliest(S.env.shm, data, TOPIC), 2 * (int64_t)SEG_BYTES);
	reader_done(r, g);
}

/* ---------------------------------------------------------------------------
 * 5. A disk-only reader following the daemon: at each new segment it may
 * find the files just created. A half-made segment (an .idx without its
 * header yet) is "nothing there yet" like a missing one, never -EBADMSG:
 * the log is fine. A tight poll loop, so the reader is at the segment
 * boundary when the daemon rolls.
 */
#define FOLLOW_RECORDS 12000u

static int follow_producer(void *arg)
{
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint64_t rng = rdt_len_rng(S.seed, 0), n = (uint64_t)(uintptr_t)arg;
	uint8_t buf[MAX_LEN];
	int rc = -1;

	if (spw_topic_open(S.env.shm, "follow", 0, &t) || spw_producer_open(t, &p))
		goto out;
	for (uint64_t seq = 0; seq < n; seq++) {
		uint32_t len = rdt_id_len(&rng, 0, 1, MAX_LEN);

		test_id_make(buf, len, S.seed, 0, seq);
		if (spw_producer_send_wait(p, buf, len, 10 * TEST_SEC) < 0) {
			fprintf(stderr, "follow producer: send_wait of %" PRIu64 " failed\n", seq);
			goto out;
		}
		if (seq % 50 == 49)
			test_sleep_ns(200000);
	}
	rc = 0;
out:
	spw_producer_close(p);
	spw_topic_close(t);
	return rc;
}

struct follow_got {
	struct rdt_expect x;
	uint64_t n;
	bool bad;
	char err[300];
};

static int follow_got_cb(void *arg, const struct spw_record *rec)
{
	struct follow_got *f = arg;

	if (rdt_expect_check(&f->x, rec->data, rec->len, NULL, NULL, f->err, sizeof(f->err))) {
		f->bad = true;
		return 1;
	}
	f->n++;
	return 0;
}

static void disk_only_reader_following_the_daemon_never_sees_ebadmsg(void **state)
{
	uint64_t n = test_scaled(FOLLOW_RECORDS, 6000, 6000);
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct follow_got *f = rdt_keep_mem(calloc(1, sizeof(*f)));
	int64_t end = test_now_ns() + 40 * TEST_SEC;
	struct spw_reader *r;
	int rc, errors = 0, st;
	char first_err[1200] = "";
	pid_t pid;

	(void)state;
	need_log();
	assert_non_null(f);
	/* Small segments: many rolls. */
	assert_int_equal(rdt_topic_make(&S.env, "follow", 64u << 10, 128u << 10, 20), 0);
	assert_int_equal(rdt_daemon_wait_attached(&S.env, "follow", 10 * TEST_SEC), 0);
	rdt_expect_init(&f->x, S.seed, 1, MAX_LEN);
	o.flags = SPW_READER_NO_LIVE;
	assert_int_equal(spw_reader_open("follow", &o, &r), 0);
	rdt_keep_reader(r);
	pid = rdt_fork(follow_producer, (void *)(uintptr_t)n);
	while (f->n < n && !f->bad && test_now_ns() < end) {
		rc = spw_reader_poll(r, follow_got_cb, f, 1000);
		if (rc < 0 && !errors++) {
			char ef[1024] = "";
			int64_t ep = -1;

			spw_reader_error(r, ef, sizeof(ef), &ep);
			snprintf(first_err, sizeof(first_err), "%s at %" PRId64 " (file %s, position %" PRId64 ")",
				 strerror(-rc), spw_reader_position(r), ef, ep);
		}
	}
	st = test_wait(pid, 20 * TEST_SEC);
	rdt_child_reaped(pid);
	rdt_drop(r);
	if (f->bad)
		fail_msg("%s (seed %#" PRIx64 ")", f->err, S.seed);
	if (errors)
		fail_msg("%d polls failed while the reader followed the daemon on disk; the first: %s",
			 errors, first_err);
	assert_int_equal(st, 0);
	assert_int_equal(f->n, n);
	rdt_drop(f);
}

/* ---------------------------------------------------------------------------
 * 6. Without the daemon (last: it stops it)
 */
static void disk_only_reader_after_daemon_stopped(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_topic_info in;
	struct spw_reader *r;
	struct got *g = got_new();
	char noshm[1024];

	(void)state;
	need_log();
	assert_int_equal(rdt_daemon_stop(&S.env, 20 * TEST_SEC), 0);
	log_info(&in);
	assert_int_equal(in.spilled, (uint64_t)S.tail);
	assert_int_equal(in.durable, (uint64_t)S.tail);

	/* NO_LIVE with the ring there: all of it from the segments. */
	o.flags = SPW_READER_NO_LIVE;
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 500), 0);
	assert_range(g, 0, S.n);
	assert_int_equal(g->live, 0);
	assert_false(spw_reader_is_live(r));
	assert_int_equal(spw_reader_position(r), S.tail);
	assert_int_equal(spw_reader_poll_wait(r, collect, g, 10, 50 * TEST_MS), 0);
	reader_done(r, g);

	/* No ring at all: the settings come from topic.conf. */
	snprintf(noshm, sizeof(noshm), "%s/empty", S.env.shm);
	assert_int_equal(mkdir(noshm, 0755), 0);
	o.shm_dir = noshm;
	o.flags = 0;
	r = open_ok(&o);
	assert_int_equal(drain(r, g, 500), 0);
	assert_range(g, 0, S.n);
	assert_false(spw_reader_is_live(r));
	reader_done(r, g);
	assert_int_equal(spw_topic_earliest(noshm, S.env.data, TOPIC), 0);
	o.start = SPW_START_LATEST;
	r = open_ok(&o);
	assert_int_equal(spw_reader_position(r), S.tail);
	assert_int_equal(spw_reader_poll(r, collect, g, 10), 0);
	rdt_drop(r);
	o.start = SPW_START_TIME;
	o.time_ns = S.ts[S.n / 2];
	expect_first(&o, cat_first_ts(S.ts[S.n / 2]), 3);
	/* Neither ring nor data: -ENOENT. */
	o.start = SPW_START_EARLIEST;
	assert_int_equal(spw_reader_open("nosuchtopic", &o, &r), -ENOENT);
}

/* A reader of the disk alone never touches the ring's pages (the first touch
 * of each costs ~5 us on these VMs: ring/topic.c); one that goes live has
 * them all touched first, not one per record. */
static void a_disk_reader_leaves_the_ring_pages_untouched(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct got *g = got_new();
	struct spw_reader *r;

	(void)state;
	need_log();
	o.flags = SPW_READER_NO_LIVE;
	r = open_ok(&o);
	assert_non_null(r->t);
	assert_int_equal(drain(r, g, 500), 0);
	assert_range(g, 0, S.n);
	assert_false(r->t->prefaulted);
	rdt_drop(r);
	got_reset(g);
	o.flags = 0;
	o.start = SPW_START_LATEST;
	r = open_ok(&o);
	assert_false(r->t->prefaulted);
	assert_int_equal(spw_reader_poll(r, collect, g, 10), 0);
	assert_true(spw_reader_is_live(r));
	assert_true(r->t->prefaulted);
	rdt_drop(r);
}

/* --- a reclaim racing the go-live ---------------------------------------- */

#define RACE_LEN 1000u

static struct {
	struct spw_producer *p;
	uint64_t sent;
	int64_t pos_seen;
	bool fired, reclaimed;
} R;

static int race_send(uint64_t seq)
{
	uint8_t buf[RACE_LEN] = { 0 };

	memcpy(buf, &seq, sizeof(seq));
	return spw_producer_send_wait(R.p, buf, RACE_LEN, 10 * TEST_SEC) >= 0 ? 0 : -1;
}

/* Inside go_live, before the consumer opens: produce until the daemon has
 * spilled and reclaimed past the reader's position. */
static void reclaim_under_the_reader(struct spw_reader *r)
{
	int64_t end = test_now_ns() + 20 * TEST_SEC;

	rd_test_go_live_hook = NULL;
	R.fired = true;
	R.pos_seen = (int64_t)r->pos;
	/* Acquire: the daemon's reclaim bound (ring_layout.h I1). */
	while (atomic_load_explicit(&r->t->hdr->reclaimed, memory_order_acquire) <= r->pos &&
	       test_now_ns() < end)
		if (race_send(R.sent++))
			return;
	R.reclaimed = atomic_load(&r->t->hdr->reclaimed) > r->pos;
}

static int race_cb(void *arg, const struct spw_record *rec)
{
	uint64_t *next = arg, seq;

	if (rec->len != RACE_LEN)
		fail_msg("record at %lld: len %u", (long long)rec->position, rec->len);
	memcpy(&seq, rec->data, sizeof(seq));
	if (seq != *next)
		fail_msg("record at %lld: seq %llu, expected %llu", (long long)rec->position,
			 (unsigned long long)seq, (unsigned long long)*next);
	(*next)++;
	return 0;
}

/* The reader checks that its position is still in the ring, then opens a
 * consumer there; the daemon reclaims it in between (the go-live first
 * touches the ring's pages: ~80 ms for 64 MiB on these VMs). The reader
 * reads those records from the segments (R2), in order, none lost, instead
 * of failing with -ESTALE. */
static void a_reclaim_racing_the_go_live_sends_the_reader_to_the_disk(void **state)
{
	struct spw_reader_opts o = opts_base(SPW_START_EARLIEST);
	struct spw_topic *t = NULL;
	struct spw_reader *r = NULL;
	uint64_t next = 0;
	int64_t end;
	int rc = 0;

	(void)state;
	if (!S.have_daemon)
		skip();
	if (!S.env.daemon)
		assert_int_equal(rdt_daemon_start(&S.env), 0);
	assert_int_equal(rdt_topic_make(&S.env, "race", 64u << 10, 128u << 10, 20), 0);
	assert_int_equal(rdt_daemon_wait_attached(&S.env, "race", 10 * TEST_SEC), 0);
	assert_int_equal(spw_topic_open(S.env.shm, "race", 0, &t), 0);
	rdt_keep_topic(t);
	assert_int_equal(spw_producer_open(t, &R.p), 0);
	rdt_keep_producer(R.p);
	assert_int_equal(spw_reader_open("race", &o, &r), 0);
	rdt_keep_reader(r);
	rd_test_go_live_hook = reclaim_under_the_reader;
	end = test_now_ns() + 30 * TEST_SEC;
	while (next < R.sent + !R.fired && test_now_ns() < end) {
		rc = spw_reader_poll(r, race_cb, &next, 100);
		assert_true(rc >= 0);
	}
	rd_test_go_live_hook = NULL;
	assert_true(R.fired && R.reclaimed);
	assert_true(R.sent > 0 && next == R.sent);
	/* It went on live afterwards. */
	assert_int_equal(race_send(R.sent++), 0);
	while (next < R.sent && test_now_ns() < end)
		assert_true(spw_reader_poll(r, race_cb, &next, 100) >= 0);
	assert_int_equal(next, R.sent);
	assert_true(spw_reader_is_live(r));
}

RDT_MAIN(group_setup, group_teardown,
	 RDT_TEST(reader_from_earliest_crosses_segments_then_goes_live),
	 RDT_TEST(start_time_lands_on_first_record_at_or_after_t),
	 RDT_TEST(start_time_in_ring_poll_delivers_not_zero),
	 RDT_TEST(start_position_at_segment_boundary_delivers_the_record_there),
	 RDT_TEST(start_position_at_padding_delivers_the_next_lap_first),
	 RDT_TEST(stop_position_delivers_exactly_the_records_before_it),
	 RDT_TEST(stop_time_delivers_exactly_the_records_before_it),
	 RDT_TEST(max_records_delivers_exactly_that_many),
	 RDT_TEST(max_records_reached_at_end_of_log_is_done),
	 RDT_TEST(max_records_reached_is_done_after_that_poll),
	 RDT_TEST(corrupt_sealed_segment_is_ebadmsg_naming_file_and_range),
	 RDT_TEST(corrupt_range_is_skipped_with_skip_corrupt),
	 RDT_TEST(bad_record_header_is_ebadmsg_without_crc_check),
	 RDT_TEST(truncated_segment_is_ebadmsg),
	 RDT_TEST(torn_index_of_sealed_segment_is_an_error_not_the_end),
	 RDT_TEST(missing_or_short_index_of_a_middle_segment_is_an_error),
	 RDT_TEST(a_log_ending_below_its_durable_checkpoint_is_enoent),
	 RDT_TEST(a_last_index_cut_below_the_checkpoint_is_ebadmsg),
	 RDT_TEST(a_segment_born_while_the_reader_looks_is_read_not_a_hole),
	 RDT_TEST(missing_middle_segment_is_enoent_never_skipped),
	 RDT_TEST(retention_deleted_start_is_erange_and_earliest_moves),
	 RDT_TEST(disk_only_reader_following_the_daemon_never_sees_ebadmsg),
	 RDT_TEST(disk_only_reader_after_daemon_stopped),
	 RDT_TEST(a_disk_reader_leaves_the_ring_pages_untouched),
	 RDT_TEST(a_reclaim_racing_the_go_live_sends_the_reader_to_the_disk))
