/* SPDX-License-Identifier: MIT */
/*
 * spill_format.c - the disk format's units (spill/FORMAT.md, spill/spill.h):
 * CRC32C vectors, size and duration parsing, topic.conf, index loading,
 * recovery of a torn tail and gap records. Logs are built here by hand,
 * byte by byte from FORMAT.md (not with the daemon's writer), so the tests
 * also check that the code reads what the document says. Commit words are
 * those of ring format 2 (ring/ring_layout.h: lap-tagged, test_word), index
 * headers SEG_IDX_VERSION.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"

#include "../spill/spill.h"

#define RING (64u << 10)
#define SEGB (2u * RING)      /* two laps a segment: padding inside, segments roll */
#define ENTRY_BYTES (8u << 10) /* an index entry about every 8 KiB */
#define MAXLEN 3000u
#define MAXREC 4096u
#define NREC_MAX 4096

/* ---------------------------------------------------------------------------
 * A log built by hand.
 */
struct built {
	uint64_t start, end;          /* first position, position after the last record */
	int n;                        /* DATA records */
	uint64_t pos[NREC_MAX], ts[NREC_MAX];
	uint32_t len[NREC_MAX];
	uint64_t last_entry_start;    /* where the last index entry's range begins */
	uint64_t last_base;           /* base of the last segment */
};

struct builder {
	const char *dir;
	struct built *b;
	uint8_t seg[SEGB];
	uint64_t base, first, pos, entry_start, records, max_ts;
	struct seg_idx_entry ent[SEGB / 8];
	int nent;
	bool open;
};

/* Static: a failed assert longjmps out, and nothing must leak then. */
static struct built built_log;
static struct builder builder_state;

static int dir_setup(void **state)
{
	*state = test_tmpdir_make();
	return 0;
}

static int dir_teardown(void **state)
{
	test_tmpdir_remove(*state);
	return 0;
}

static uint64_t rec_key(uint64_t seed, int i)
{
	return test_key(seed, 0x666d74, (uint64_t)i);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* little-endian host (x86-64, aarch64 LE) */
}

static void write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void builder_flush(struct builder *w)
{
	char p[1024];
	struct seg_idx_hdr h;
	uint8_t *idx;
	size_t n = SEG_IDX_HDR_BYTES + (size_t)w->nent * SEG_IDX_ENTRY_BYTES;

	memset(&h, 0, sizeof(h));
	h.magic = SEG_IDX_MAGIC;
	h.version = SEG_IDX_VERSION;
	h.entry_bytes = SEG_IDX_ENTRY_BYTES;
	h.base = w->base;
	h.first = w->first;
	h.segment_bytes = SEGB;
	h.ring_bytes = RING;
	h.created_ns = 1700000000000000000ull;
	h.crc = seg_crc32c(0, &h, 60);
	idx = malloc(n);
	assert_non_null(idx);
	memcpy(idx, &h, sizeof(h));
	memcpy(idx + SEG_IDX_HDR_BYTES, w->ent, (size_t)w->nent * SEG_IDX_ENTRY_BYTES);
	assert_int_equal(seg_file_path(p, sizeof(p), w->dir, w->base, "idx"), 0);
	write_file(p, idx, n);
	free(idx);
	assert_int_equal(seg_file_path(p, sizeof(p), w->dir, w->base, "seg"), 0);
	write_file(p, w->seg, (size_t)(w->pos - w->base));
	w->b->last_base = w->base;
}

static void builder_entry(struct builder *w)
{
	struct seg_idx_entry *e = &w->ent[w->nent++];

	memset(e, 0, sizeof(*e));
	e->end = w->pos;
	e->records = w->records;
	e->max_ts = w->max_ts;
	e->crc_data = seg_crc32c(0, w->seg + (w->entry_start - w->base),
				 (size_t)(w->pos - w->entry_start));
	e->crc = seg_crc32c(0, e, 28);
	w->b->last_entry_start = w->entry_start;
	w->entry_start = w->pos;
}

/* Place one record of span bytes at w->pos (opening / rolling segments). */
static uint8_t *builder_place(struct builder *w, uint64_t span)
{
	uint8_t *p;

	if (!w->open) {
		w->base = w->pos - w->pos % SEGB;
		w->first = w->entry_start = w->pos;
		memset(w->seg, 0, sizeof(w->seg));
		w->nent = 0;
		w->records = w->max_ts = 0;
		w->open = true;
	}
	p = w->seg + (w->pos - w->base);
	w->pos += span;
	return p;
}

static void builder_after(struct builder *w)
{
	if (w->pos == w->base + SEGB) {
		builder_entry(w);
		builder_flush(w);
		w->open = false;
	} else if (w->pos - w->entry_start >= ENTRY_BYTES) {
		builder_entry(w);
	}
}

/* n DATA records of random lengths from start; ends with an entry. */
static void build_log(const char *dir, uint64_t start, int n, uint64_t seed, struct built *b)
{
	struct builder *w = &builder_state;
	uint64_t rng = seed;

	memset(w, 0, sizeof(*w));
	assert_true(n <= NREC_MAX);
	memset(b, 0, sizeof(*b));
	w->dir = dir;
	w->b = b;
	w->pos = b->start = start;
	for (int i = 0; i < n; i++) {
		uint32_t len = (uint32_t)test_rand_below(&rng, MAXLEN + 1);
		uint64_t span = test_span(len), room = RING - w->pos % RING;
		uint8_t *p;

		if (span > room) {
			p = builder_place(w, room);
			/* Commit words carry the lap tag of their position. */
			put_le64(p, test_word(TEST_TYPE_PADDING, room, w->pos - room, RING));
			builder_after(w);
		}
		p = builder_place(w, span);
		b->pos[i] = w->pos - span;
		b->len[i] = len;
		b->ts[i] = 1700000000000000000ull + test_rand_below(&rng, 1000000000ull);
		put_le64(p, test_word(TEST_TYPE_DATA, len, b->pos[i], RING));
		put_le64(p + 8, b->ts[i]);
		test_fill(p + 16, len, rec_key(seed, i));
		w->records++;
		if (b->ts[i] > w->max_ts)
			w->max_ts = b->ts[i];
		builder_after(w);
	}
	if (w->open) {
		if (w->pos > w->entry_start)
			builder_entry(w);
		builder_flush(w);
	}
	b->n = n;
	b->end = w->pos;
}

/* Walk callbacks: records must come back as built, in order. */
struct expect {
	const struct built *b;
	uint64_t seed;
	int next;
	uint64_t upto;  /* only records ending at or before it are expected */
	uint64_t skipped_aborted, skipped_corrupt;
	int64_t first_aborted;
};

static int expect_data(void *arg, const struct test_seg_rec *r)
{
	struct expect *x = arg;
	int i = x->next;

	if (i >= x->b->n || r->position != x->b->pos[i] || r->len != x->b->len[i] ||
	    r->timestamp_ns != x->b->ts[i] || test_check(r->data, r->len, rec_key(x->seed, i)) != r->len)
		return -EILSEQ;
	x->next++;
	return 0;
}

static int expect_skip(void *arg, const struct test_seg_rec *r)
{
	struct expect *x = arg;

	if (r->type == TEST_TYPE_ABORTED) {
		if (x->first_aborted < 0)
			x->first_aborted = (int64_t)r->position;
		x->skipped_aborted += r->span;
	}
	if (r->type == TEST_TYPE_CORRUPT)
		x->skipped_corrupt += r->span;
	return 0;
}

static int records_below(const struct built *b, uint64_t end)
{
	int k = 0;

	while (k < b->n && b->pos[k] + test_span(b->len[k]) <= end)
		k++;
	return k;
}

/* A walk w that checks each record against b (x counts what it skipped). */
static void expect_init(const struct built *b, uint64_t seed, struct test_seg_walk *w,
			struct expect *x)
{
	memset(x, 0, sizeof(*x));
	x->b = b;
	x->seed = seed;
	x->first_aborted = -1;
	memset(w, 0, sizeof(*w));
	w->on_data = expect_data;
	w->on_skip = expect_skip;
	w->arg = x;
}

/* A case on a built log: the seed, the temp dir, the log (built_log), a
 * walk of it and what the walk saw (w, x), a recovery's result (rec), the
 * path of the last segment file (sp). */
struct fcase {
	uint64_t seed;
	const char *dir;
	struct built *b;
	struct test_seg_walk w;
	struct expect x;
	struct seg_recovery rec;
	char sp[1024];
};

/* The start of such a case: the seed printed (what names the case), the
 * case's temp dir from *state; returns built_log, not built yet. */
static struct built *fcase_begin(struct fcase *c, void **state, const char *what)
{
	memset(c, 0, sizeof(*c));
	c->seed = test_seed(what);
	c->dir = *state;
	c->b = &built_log;
	return c->b;
}

/* Walk the case's log checking each record against the log as built: the
 * walk succeeds and hands over exactly nrec DATA records (c->w, c->x). */
static void fcase_walk(struct fcase *c, int nrec)
{
	int r;

	expect_init(c->b, c->seed, &c->w, &c->x);
	r = test_seg_walk(c->dir, &c->w);
	if (r)
		fail_msg("walk: %d: %s (seed %#llx)", r, c->w.err, (unsigned long long)c->seed);
	assert_int_equal(c->x.next, nrec);
}

/* ---------------------------------------------------------------------------
 * CRC32C
 */
static void crc32c_matches_known_vectors(void **state)
{
	static const char digits[] = "123456789";
	uint8_t buf[64 + 8], inc[32], dec[32];

	(void)state;
	assert_int_equal(seg_crc32c(0, digits, 9), 0xE3069283u);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(seg_crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, 32);
	assert_int_equal(seg_crc32c(0, buf, 32), 0x62A8AB43u); /* RFC 3720 B.4 */
	for (int i = 0; i < 32; i++) {
		inc[i] = (uint8_t)i;
		dec[i] = (uint8_t)(31 - i);
	}
	assert_int_equal(seg_crc32c(0, inc, 32), 0x46DD794Eu);
	assert_int_equal(seg_crc32c(0, dec, 32), 0x113FDB5Cu);
	assert_int_equal(seg_crc32c(0, buf, 0), 0u);
	/* Any alignment, and in pieces: the same value. */
	for (size_t a = 1; a < 8; a++) {
		memcpy(buf + a, digits, 9);
		assert_int_equal(seg_crc32c(0, buf + a, 9), 0xE3069283u);
	}
	for (size_t cut = 0; cut <= 9; cut++)
		assert_int_equal(seg_crc32c(seg_crc32c(0, digits, cut), digits + cut, 9 - cut),
				 0xE3069283u);
}


/* Bit-at-a-time CRC32C: the reference the fast paths are checked against. */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* The 3-way interleaved path (>= 12 KiB) and its lane joins agree with the
 * reference at every length class, alignment and split point. */
static void crc32c_large_buffers_match_the_reference(void **state)
{
	size_t n = 200000;
	uint8_t *b = malloc(n + 16);
	uint64_t seed = 0x5eedc4c;

	(void)state;
	assert_non_null(b);
	for (size_t i = 0; i < n + 16; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(seed >> 56);
	}
	static const size_t lens[] = { 0, 7, 4096, 12287, 12288, 12289, 24576 + 13, 65536, 199999 };
	for (size_t a = 0; a < 8; a++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			assert_int_equal(seg_crc32c(0, b + a, lens[i]), crc32c_ref(0, b + a, lens[i]));
	/* in two pieces, the split anywhere */
	for (size_t cut = 0; cut < 40000; cut += 4999)
		assert_int_equal(seg_crc32c(seg_crc32c(0, b, cut), b + cut, 40000 - cut),
				 crc32c_ref(0, b, 40000));
	free(b);
}

/* ---------------------------------------------------------------------------
 * Parsing
 */
struct parse_good {
	const char *s;
	uint64_t v;
};

/* A parser of spill/spill.h (named name in the messages): every good
 * string gives its value, every bad one and NULL -EINVAL. */
static void check_parser(const char *name, int (*parse)(const char *, uint64_t *),
			 const struct parse_good *good, size_t ngood, const char *const *bad,
			 size_t nbad)
{
	uint64_t v;

	for (size_t i = 0; i < ngood; i++) {
		v = 12345;
		if (parse(good[i].s, &v) != 0 || v != good[i].v)
			fail_msg("%s(\"%s\") = %llu, want %llu", name, good[i].s,
				 (unsigned long long)v, (unsigned long long)good[i].v);
	}
	for (size_t i = 0; i < nbad; i++)
		if (parse(bad[i], &v) != -EINVAL)
			fail_msg("%s(\"%s\") accepted (%llu)", name, bad[i], (unsigned long long)v);
	assert_int_equal(parse(NULL, &v), -EINVAL);
}
#define CHECK_PARSER(fn, good, bad)                                                        \
	check_parser(#fn, fn, good, sizeof(good) / sizeof(good[0]), bad, sizeof(bad) / sizeof(bad[0]))

static void parse_size_takes_suffixes_and_rejects_garbage(void **state)
{
	static const struct parse_good good[] = {
		{ "0", 0 },          { "4096", 4096 },         { "64K", 64ull << 10 },
		{ "64k", 64ull << 10 }, { "1M", 1ull << 20 },   { "2G", 2ull << 30 },
		{ "1T", 1ull << 40 }, { "64KiB", 64ull << 10 }, { "8MB", 8ull << 20 },
		{ "512B", 512 },     { "16777215T", 16777215ull << 40 },
	};
	static const char *const bad[] = {
		"", "K", "-1", "+1", " 1", "1 K", "1X", "1.5M", "1K2", "1KK", "0x10", "1Mi2",
		"16777215T1", "16777216T", "18446744073709551616", "99999999999999999999K",
	};

	(void)state;
	CHECK_PARSER(seg_parse_size, good, bad);
}

static void parse_duration_takes_units_and_rejects_garbage(void **state)
{
	static const struct parse_good good[] = {
		{ "0", 0 },       { "500", 500 },         { "500ms", 500 },     { "10s", 10000 },
		{ "5m", 300000 }, { "2h", 7200000 },      { "14d", 1209600000 }, { "1.5s", 1500 },
		{ ".5s", 500 },   { "0ms", 0 },
	};
	static const char *const bad[] = {
		"", "s", "ms", "-5", "-5s", "10x", "10 s", "10sec", "5M", "1e20", "nan", "inf",
		" 5", "5s ",
	};

	(void)state;
	CHECK_PARSER(seg_parse_duration_ms, good, bad);
}

/* ---------------------------------------------------------------------------
 * topic.conf
 */
static void write_conf(const char *dir, const char *text)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s", dir, SEG_CONF_NAME);
	write_file(p, text, strlen(text));
}

static void topic_conf_round_trips_every_key(void **state)
{
	char *dir = *state;
	struct topic_conf c, back;

	assert_int_equal(seg_conf_load(dir, &back), -ENOENT);
	seg_conf_defaults(&c);
	c.ring_bytes = 1ull << 20;
	c.segment_bytes = 3ull << 20;
	c.max_record = 12345;
	c.mode = 0640;
	c.no_spill = true;
	c.retention_ms = 90061001;
	c.retention_bytes = 7ull << 30;
	c.flush_ms = 250;
	c.flush_bytes = 123456;
	c.unblock_ms = 200;
	assert_int_equal(seg_conf_save(dir, &c), 0);
	memset(&back, 0xa5, sizeof(back));
	assert_int_equal(seg_conf_load(dir, &back), 0);
	assert_int_equal(back.ring_bytes, c.ring_bytes);
	assert_int_equal(back.segment_bytes, c.segment_bytes);
	assert_int_equal(back.max_record, c.max_record);
	assert_int_equal(back.mode, c.mode);
	assert_true(back.no_spill);
	assert_int_equal(back.retention_ms, c.retention_ms);
	assert_int_equal(back.retention_bytes, c.retention_bytes);
	assert_int_equal(back.flush_ms, c.flush_ms);
	assert_int_equal(back.flush_bytes, c.flush_bytes);
	assert_int_equal(back.unblock_ms, c.unblock_ms);

	/* Hand-written: comments, unknown keys, suffixes; missing keys default. */
	write_conf(dir, "# hand made\nring_bytes = 256K\nsegment_bytes = 1M\nmax_record = 16K\n\n"
			"future_key = 17\nunblock_ms = 1.5s\nretention = 2d\n");
	assert_int_equal(seg_conf_load(dir, &back), 0);
	assert_int_equal(back.ring_bytes, 256u << 10);
	assert_int_equal(back.max_record, 16u << 10);
	assert_int_equal(back.segment_bytes, 1u << 20);
	assert_int_equal(back.unblock_ms, 1500);
	assert_int_equal(back.retention_ms, 2ull * 86400000);
	seg_conf_defaults(&c);
	assert_int_equal(back.flush_ms, c.flush_ms);
	assert_int_equal(back.flush_bytes, c.flush_bytes);
	assert_int_equal(back.mode, c.mode);
}

static void topic_conf_garbage_gives_ebadmsg(void **state)
{
	static const char *const bad[] = {
		"this is not a conf\n",
		"ring_bytes = banana\n",
		"ring_bytes = 100000\n",                              /* not a power of two */
		"ring_bytes = 1M\nsegment_bytes = 1536K\nmax_record = 64K\n", /* not a multiple */
		"ring_bytes = 0\n",
		"ring_bytes = 1M\nsegment_bytes = 1M\nmax_record = 512K\n",   /* > ring / 4 */
		"ring_bytes = 1M\nsegment_bytes = 1M\nmax_record = 64K\nflush_bytes = 0\n",
		"mode = 999\n",
		"mode = 01777\n",
		"unblock_ms = soon\n",
		"RING_BYTES = 1M\n",
		"= 5\n",
		/* Words after the value were dropped: 7 days read as 7 ms, and
		 * retention deleted the whole log (a review, 2026-12-04). */
		"# comment\nretention = 7 days\n",
		"retention_bytes = 10 GB\n",
		"flush_ms = 50 fast\n",
	};
	char *dir = *state;
	struct topic_conf c;
	unsigned line = 99;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_conf(dir, bad[i]);
		if (seg_conf_load(dir, &c) != -EBADMSG)
			fail_msg("topic.conf \"%s\" was not refused with -EBADMSG", bad[i]);
	}
	write_conf(dir, "# comment\nretention = 7 days\n");
	assert_int_equal(seg_conf_load_why(dir, &c, &line), -EBADMSG);
	assert_int_equal(line, 2);
	write_conf(dir, "ring_bytes = 1M\nsegment_bytes = 1536K\nmax_record = 64K\n");
	assert_int_equal(seg_conf_load_why(dir, &c, &line), -EBADMSG);
	assert_int_equal(line, 0); /* the settings together */
	/* Blanks (and a CR) after the value are fine, and so is a comment
	 * (FORMAT.md: "# comments"; refusing it broke such files). */
	write_conf(dir, "retention = 7d  \t\r\nflush_ms = 50   # flush often\n");
	assert_int_equal(seg_conf_load_why(dir, &c, &line), 0);
	assert_int_equal(c.retention_ms, 7ull * 86400000);
	assert_int_equal(c.flush_ms, 50);
}

/* ---------------------------------------------------------------------------
 * Index files
 */
static void idx_path_of(const char *dir, uint64_t base, char *p, size_t n)
{
	assert_int_equal(seg_file_path(p, n, dir, base, "idx"), 0);
}

static void patch(const char *path, off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void flip_byte(const char *path, off_t off)
{
	uint8_t c;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static long fsize(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

static void copy_file(const char *from, const char *to)
{
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[65536];
	ssize_t n;

	assert_true(a >= 0 && b >= 0);
	while ((n = read(a, buf, sizeof(buf))) > 0)
		assert_int_equal(write(b, buf, (size_t)n), n);
	close(a);
	close(b);
}

/* seg_idx_load of ip gives want (entries or -errno). */
static void load_gives(const char *ip, int want)
{
	struct seg_idx_hdr h;
	struct seg_idx_entry *e = NULL;

	assert_int_equal(seg_idx_load(ip, &h, &e), want);
	free(e);
}

static void idx_load_checks_header_and_stops_at_a_bad_entry(void **state)
{
	struct fcase c;
	struct built *b = fcase_begin(&c, state, "idx_load");
	char ip[1024], orig[1100];
	struct seg_idx_hdr h;
	struct seg_idx_entry *e;
	int n, k;
	uint64_t rng = c.seed;

	build_log(c.dir, 0, 40, c.seed, b); /* one segment, several entries */
	assert_true(b->end < SEGB);
	idx_path_of(c.dir, 0, ip, sizeof(ip));
	snprintf(orig, sizeof(orig), "%s.orig", ip);
	copy_file(ip, orig);
	n = seg_idx_load(ip, &h, &e);
	assert_seeded(n >= 4, c.seed);
	assert_int_equal(h.base, 0);
	assert_int_equal(h.first, 0);
	assert_int_equal(e[n - 1].end, b->end);
	assert_int_equal(e[n - 1].records, 40);
	free(e);

	/* Header: magic, version, CRC, a file shorter than the header. */
	for (int what = 0; what < 4; what++) {
		copy_file(orig, ip);
		if (what == 0)
			flip_byte(ip, 0);
		else if (what == 1)
			flip_byte(ip, 8);
		else if (what == 2)
			flip_byte(ip, 61);
		else
			assert_int_equal(truncate(ip, 40), 0);
		e = (void *)1;
		assert_int_equal(seg_idx_load(ip, &h, &e), -EBADMSG);
		assert_null(e);
	}
	/* A header with a valid CRC but impossible sizes is refused too. */
	copy_file(orig, ip);
	{
		int fd = open(ip, O_RDONLY | O_CLOEXEC);

		assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
		close(fd);
	}
	{
		struct seg_idx_hdr v1 = h;

		/* Another version (1: commit words without lap tags), its CRC
		 * good: the records would be misread, so the index is refused. */
		v1.version = SEG_IDX_VERSION - 1;
		seg_idx_hdr_seal(&v1);
		patch(ip, 0, &v1, sizeof(v1));
		load_gives(ip, -EBADMSG);
	}
	h.segment_bytes = RING + 8;
	seg_idx_hdr_seal(&h);
	patch(ip, 0, &h, sizeof(h));
	load_gives(ip, -EBADMSG);
	unlink(ip);
	load_gives(ip, -ENOENT);

	/* A corrupted entry k: the good count stops there. */
	k = (int)test_rand_below(&rng, (uint64_t)n);
	copy_file(orig, ip);
	flip_byte(ip, (off_t)(SEG_IDX_HDR_BYTES + (size_t)k * SEG_IDX_ENTRY_BYTES +
			      test_rand_below(&rng, SEG_IDX_ENTRY_BYTES)));
	load_gives(ip, k);

	/* A torn last entry (half written): the whole ones count. */
	copy_file(orig, ip);
	assert_int_equal(truncate(ip, (off_t)(SEG_IDX_HDR_BYTES + (size_t)n * SEG_IDX_ENTRY_BYTES - 13)), 0);
	load_gives(ip, n - 1);

	/* An entry sealed with a good CRC but out of order stops the count. */
	copy_file(orig, ip);
	{
		struct seg_idx_entry x;
		int fd = open(ip, O_RDONLY);

		k = 1 + (int)test_rand_below(&rng, (uint64_t)(n - 1));
		assert_int_equal(pread(fd, &x, sizeof(x), (off_t)(SEG_IDX_HDR_BYTES + (size_t)(k - 1) * 32)),
				 32);
		close(fd);
		seg_idx_entry_seal(&x); /* a copy of entry k-1: end not increasing */
		patch(ip, (off_t)(SEG_IDX_HDR_BYTES + (size_t)k * 32), &x, sizeof(x));
		load_gives(ip, k);
	}
	/* An empty index (header only): 0 entries. */
	copy_file(orig, ip);
	assert_int_equal(truncate(ip, SEG_IDX_HDR_BYTES), 0);
	load_gives(ip, 0);
}

/* ---------------------------------------------------------------------------
 * The walker on hand-built logs
 */

/* Overwrite the commit word of the log's first record and reseal the index
 * of its segment (entry 0's data CRC; in every entry the DATA count and max
 * timestamp, cumulative over the segment, as a writer would put them:
 * record 0 counts only when word is DATA; each entry's CRC), so only the
 * record checks can object. */
static void patch_first_word(const char *dir, const struct built *b, uint64_t word)
{
	bool data0 = test_word_type(word) == TEST_TYPE_DATA;
	uint64_t records = 0, max_ts = 0;
	int i;
	struct seg_idx_hdr h;
	struct seg_idx_entry *e;
	char sp[1024], ip[1024];
	uint64_t base = b->pos[0] - b->pos[0] % SEGB;
	int fd, n;
	uint8_t *seg;

	assert_int_equal(seg_file_path(sp, sizeof(sp), dir, base, "seg"), 0);
	idx_path_of(dir, base, ip, sizeof(ip));
	patch(sp, (off_t)(b->pos[0] - base), &word, 8);
	n = seg_idx_load(ip, &h, &e);
	assert_true(n > 0);
	assert_int_equal(h.first, b->pos[0]);
	seg = malloc(SEGB);
	assert_non_null(seg);
	fd = open(sp, O_RDONLY);
	assert_int_equal(pread(fd, seg, (size_t)(e[0].end - base), 0), (ssize_t)(e[0].end - base));
	close(fd);
	e[0].crc_data = seg_crc32c(0, seg + (h.first - base), (size_t)(e[0].end - h.first));
	i = data0 ? 0 : 1;
	for (int k = 0; k < n; k++) {
		for (; i < b->n && b->pos[i] < e[k].end; i++) {
			records++;
			if (b->ts[i] > max_ts)
				max_ts = b->ts[i];
		}
		e[k].records = records;
		e[k].max_ts = max_ts;
		seg_idx_entry_seal(&e[k]);
	}
	patch(ip, SEG_IDX_HDR_BYTES, e, (size_t)n * sizeof(e[0]));
	free(seg);
	free(e);
}
static void walker_reads_a_built_log_back_and_spots_damage(void **state)
{
	struct fcase c;
	struct built *b = fcase_begin(&c, state, "walker");
	char p[1024], q[1100];
	uint64_t start = 3 * SEGB + 4096 + 8 * 37; /* the first segment starts after its base */
	int r;

	build_log(c.dir, start, 400, c.seed, b);
	fcase_walk(&c, 400);
	assert_int_equal(c.w.first, start);
	assert_int_equal(c.w.end, b->end);
	assert_int_equal(c.w.file_end, b->end);
	assert_int_equal(c.w.data_records, 400);
	assert_true(c.w.segments >= 3);
	assert_true(c.w.padding_records >= 1);
	assert_int_equal(c.w.aborted_records, 0);
	assert_int_equal(c.w.ring_bytes, RING);
	assert_int_equal(c.w.segment_bytes, SEGB);

	/* A flipped payload byte: the entry's data CRC. */
	assert_int_equal(seg_file_path(p, sizeof(p), c.dir, start - start % SEGB + SEGB, "seg"), 0);
	flip_byte(p, 5000);
	memset(&c.w, 0, sizeof(c.w));
	assert_int_equal(test_seg_walk(c.dir, &c.w), -EBADMSG);
	flip_byte(p, 5000);

	/* A missing middle segment: a gap. */
	snprintf(q, sizeof(q), "%s.away", p);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(seg_file_path(p, sizeof(p), c.dir, start - start % SEGB + SEGB, "idx"), 0);
	{
		char qi[1100];

		snprintf(qi, sizeof(qi), "%s.away", p);
		assert_int_equal(rename(p, qi), 0);
		memset(&c.w, 0, sizeof(c.w));
		assert_int_equal(test_seg_walk(c.dir, &c.w), -ERANGE);
		assert_int_equal(rename(qi, p), 0);
	}
	assert_int_equal(seg_file_path(p, sizeof(p), c.dir, start - start % SEGB + SEGB, "seg"), 0);
	assert_int_equal(rename(q, p), 0);

	/* A bad record header under a matching CRC: the header checks. A
	 * word of another lap is as bad as garbage (the lap tag). */
	{
		const uint64_t lap = b->pos[0] / RING, span0 = test_span(b->len[0]);
		const uint64_t bad[] = {
			TEST_BIT_COMMITTED | TEST_BIT_CLAIMED | (lap << 40) | (7ull << 32) | 8,
			test_word(TEST_TYPE_DATA, b->len[0], b->pos[0] - RING, RING),
			test_word(TEST_TYPE_DATA, b->len[0], b->pos[0] + RING, RING),
			test_word(TEST_TYPE_DATA, b->len[0], b->pos[0], RING) | (1ull << 37),
			test_word(TEST_TYPE_DATA, b->len[0], b->pos[0], RING) & ~TEST_BIT_CLAIMED,
			test_word(TEST_TYPE_CORRUPT, 4, b->pos[0], RING),
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			patch_first_word(c.dir, b, bad[i]);
			memset(&c.w, 0, sizeof(c.w));
			r = test_seg_walk(c.dir, &c.w);
			if (r != -EPROTO)
				fail_msg("bad word [%zu] %#llx: walk returned %d, not -EPROTO", i,
					 (unsigned long long)bad[i], r);
		}
		/* A CORRUPT span (garbage the daemon cut out) is skipped and
		 * counted; the records after it come through. */
		patch_first_word(c.dir, b, test_word(TEST_TYPE_CORRUPT, span0, b->pos[0], RING));
		expect_init(b, c.seed, &c.w, &c.x);
		c.x.next = 1;
		r = test_seg_walk(c.dir, &c.w);
		if (r)
			fail_msg("walk over a CORRUPT span: %d: %s (seed %#llx)", r, c.w.err,
				 (unsigned long long)c.seed);
		assert_int_equal(c.x.next, 400);
		assert_int_equal(c.w.data_records, 399);
		assert_int_equal(c.w.corrupt_records, 1);
		assert_int_equal(c.w.corrupt_bytes, span0);
		assert_int_equal(c.x.skipped_corrupt, span0);
		assert_int_equal(c.w.end, b->end);
		/* Back to the record as built. */
		patch_first_word(c.dir, b, test_word(TEST_TYPE_DATA, b->len[0], b->pos[0], RING));
		fcase_walk(&c, 400);
		assert_int_equal(c.w.corrupt_records, 0);
	}
}

/* ---------------------------------------------------------------------------
 * Recovery and gaps
 */

/* fcase_begin, then n records built from position 0; c->sp gets the path
 * of the last segment file. */
static struct built *build_from_zero(struct fcase *c, void **state, const char *what, int n)
{
	struct built *b = fcase_begin(c, state, what);

	build_log(c->dir, 0, n, c->seed, b);
	assert_int_equal(seg_file_path(c->sp, sizeof(c->sp), c->dir, b->last_base, "seg"), 0);
	return b;
}

/* seg_recover of dir succeeds with this end, high and truncated. */
static void recover_expect(const char *dir, struct seg_recovery *rec, uint64_t end, uint64_t high,
			   uint64_t truncated)
{
	char err[512] = "";
	int rc = seg_recover(dir, RING, SEGB, 0, rec, err, sizeof(err));

	if (rc)
		fail_msg("seg_recover: %d: %s", rc, err);
	assert_int_equal(rec->end, end);
	assert_int_equal(rec->high, high);
	assert_int_equal(rec->truncated, truncated);
}

static void recover_cuts_junk_appended_to_the_last_segment(void **state)
{
	struct fcase c;
	struct built *b = build_from_zero(&c, state, "recover_junk", 300);
	uint8_t junk[1000];
	uint64_t rng = c.seed, n = 1 + test_rand_below(&rng, sizeof(junk));
	int fd;

	test_fill(junk, sizeof(junk), c.seed);
	fd = open(c.sp, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, n), (ssize_t)n);
	close(fd);

	recover_expect(c.dir, &c.rec, b->end, (b->end + n + 7) & ~7ull, n);
	assert_false(c.rec.empty);
	assert_int_equal(c.rec.first, 0);
	assert_true(c.rec.segments >= 2);
	assert_int_equal(fsize(c.sp), (long)(b->end - b->last_base));
	fcase_walk(&c, 300);
	assert_int_equal(c.w.end, b->end);

	/* Recovering a clean log changes nothing. */
	recover_expect(c.dir, &c.rec, b->end, b->end, 0);
}

/* The ring says more was spilled than the last index covers: the records
 * are rebuilt into it, or, when no index can be written (here a directory
 * squats on the rebuild's temp name), recovery refuses and cuts nothing. It
 * cut the records the index no longer covered (a review, 2026-12-04). */
static void recover_never_cuts_spilled_records_past_a_short_index(void **state)
{
	struct fcase c;
	struct built *b = build_from_zero(&c, state, "recover_spilled", 300);
	char ip[PATH_MAX], squat[PATH_MAX + 64], err[1024] = "";
	long seg_before = fsize(c.sp), idx_before;
	const char *slash;

	assert_int_equal(seg_file_path(ip, sizeof(ip), c.dir, b->last_base, "idx"), 0);
	idx_before = fsize(ip);
	assert_true(idx_before > (long)(SEG_IDX_HDR_BYTES + SEG_IDX_ENTRY_BYTES));
	assert_int_equal(truncate(ip, idx_before - (long)SEG_IDX_ENTRY_BYTES), 0);
	slash = strrchr(ip, '/');
	snprintf(squat, sizeof(squat), "%.*s/.%s.%d.tmp", (int)(slash - ip), ip, slash + 1,
		 (int)getpid());
	assert_int_equal(mkdir(squat, 0700), 0);
	assert_true(seg_recover(c.dir, RING, SEGB, b->end, &c.rec, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "refusing to cut acknowledged records"));
	assert_int_equal(fsize(c.sp), seg_before); /* nothing cut */
	assert_int_equal(fsize(ip), idx_before - (long)SEG_IDX_ENTRY_BYTES);
	assert_int_equal(rmdir(squat), 0);
	/* With room to write it, the index is rebuilt: every record kept. */
	assert_int_equal(seg_recover(c.dir, RING, SEGB, b->end, &c.rec, err, sizeof(err)), 0);
	assert_true(c.rec.idx_rebuilt);
	assert_int_equal(c.rec.end, b->end);
	assert_int_equal(c.rec.truncated, 0);
	assert_int_equal(fsize(c.sp), seg_before);
	fcase_walk(&c, 300);
	assert_int_equal(c.w.end, b->end);
}

static void recover_cuts_a_corrupted_last_entry_and_fill_gap_covers_it(void **state)
{
	struct fcase c;
	struct built *b = build_from_zero(&c, state, "recover_corrupt", 300);
	char ip[1024];
	uint64_t rng = c.seed, cut = b->last_entry_start, at;
	int keep;

	idx_path_of(c.dir, b->last_base, ip, sizeof(ip));
	/* Damage a byte of the last entry's range (header or payload). */
	at = cut + test_rand_below(&rng, b->end - cut);
	flip_byte(c.sp, (off_t)(at - b->last_base));
	memset(&c.w, 0, sizeof(c.w));
	assert_int_equal(test_seg_walk(c.dir, &c.w), -EBADMSG);

	recover_expect(c.dir, &c.rec, cut, b->end, b->end - cut);
	assert_int_equal(fsize(c.sp), (long)(cut - b->last_base));
	keep = records_below(b, cut);
	fcase_walk(&c, keep);
	assert_int_equal(c.w.end, cut);

	/* The cut range becomes ABORTED records: the log goes on at high. */
	assert_int_equal(seg_fill_gap(c.dir, RING, SEGB, c.rec.end, c.rec.high), 0);
	fcase_walk(&c, keep);
	assert_int_equal(c.w.end, b->end);
	assert_int_equal(c.x.skipped_aborted, b->end - cut);
	assert_int_equal(c.x.first_aborted, (int64_t)cut);
	assert_int_equal(c.w.aborted_bytes, b->end - cut);
	/* And it recovers as a clean log ending at high. */
	recover_expect(c.dir, &c.rec, b->end, b->end, 0);
}

/* A segment cut short (the file lost its last bytes): the index still says
 * how far the log went, so the log must go on after that, never reuse the
 * positions (FORMAT.md: "a new ring then continues after the highest
 * position the file ever held"). */
static void recover_of_a_cut_segment_reports_the_highest_indexed_position(void **state)
{
	struct fcase c;
	struct built *b = build_from_zero(&c, state, "recover_cut", 300);
	char err[512] = "";
	uint64_t rng = c.seed, k;

	/* At least 8 bytes: less is hidden by the rounding up to 8 of high. */
	k = 8 + test_rand_below(&rng, b->end - b->last_entry_start - 7);
	assert_int_equal(truncate(c.sp, (off_t)(b->end - k - b->last_base)), 0);
	assert_int_equal(seg_recover(c.dir, RING, SEGB, 0, &c.rec, err, sizeof(err)), 0);
	assert_int_equal(c.rec.end, b->last_entry_start);
	if (c.rec.high < b->end)
		fail_msg("seg_recover: high %llu < %llu, the end of the last index entry (cut %llu "
			 "bytes): a ring recreated there would reuse positions (seed %#llx)",
			 (unsigned long long)c.rec.high, (unsigned long long)b->end,
			 (unsigned long long)k, (unsigned long long)c.seed);
}

/* Two faults in the last segment, all of it acknowledged durable: a
 * payload byte flipped in its first entry, and its index's header damaged,
 * so recovery rebuilds the index from the records. The rebuilt index must
 * not bless the flipped byte with a CRC computed over it now: the old
 * entry's CRC is kept as evidence and the range stays BAD (recovery's
 * count, the walker's data CRC mismatch). */
static void rebuilding_a_damaged_index_keeps_the_old_crcs_as_evidence(void **state)
{
	struct fcase c;
	struct built *b = build_from_zero(&c, state, "rebuild_evidence", 300);
	char ip[1024], ck[1100];
	struct seg_idx_hdr h;
	struct seg_idx_entry *e = NULL;
	uint64_t at = 0;
	int n, fd;

	idx_path_of(c.dir, b->last_base, ip, sizeof(ip));
	n = seg_idx_load(ip, &h, &e);
	assert_true(n >= 2);
	/* The middle of the first payload of >= 16 bytes in the first entry. */
	for (int i = 0; i < b->n && !at; i++)
		if (b->pos[i] >= h.first && b->pos[i] + 16 + b->len[i] <= e[0].end && b->len[i] >= 16)
			at = b->pos[i] + 16 + b->len[i] / 2;
	free(e);
	assert_true(at);
	snprintf(ck, sizeof(ck), "%s/%s", c.dir, SEG_CKPT_NAME);
	fd = open(ck, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(seg_ckpt_write(fd, b->end), 0);
	close(fd);
	flip_byte(c.sp, (off_t)(at - b->last_base));
	flip_byte(ip, 8); /* the header: its CRC fails, the index is rebuilt */

	recover_expect(c.dir, &c.rec, b->end, b->end, 0);
	assert_true(c.rec.idx_rebuilt);
	assert_int_equal(c.rec.bad_ranges, 1);
	assert_true(c.rec.bad_from <= at && at < c.rec.bad_to);
	memset(&c.w, 0, sizeof(c.w));
	assert_int_equal(test_seg_walk(c.dir, &c.w), -EBADMSG);
}

static void fill_gap_crosses_laps_and_segments_with_aborted_records(void **state)
{
	struct fcase c;
	struct built *b = fcase_begin(&c, state, "fill_gap");
	uint64_t to;

	build_log(c.dir, 0, 15, c.seed, b);
	assert_true(b->end < RING);
	to = b->end + SEGB + RING / 2 + 8 * 11; /* lap ends and a segment end inside */
	assert_int_equal(seg_fill_gap(c.dir, RING, SEGB, b->end, to), 0);
	fcase_walk(&c, 15);
	assert_int_equal(c.w.end, to);
	assert_int_equal(c.w.aborted_bytes, to - b->end);
	assert_int_equal(c.w.aborted_records, (to - 1) / RING - b->end / RING + 1); /* one a lap */
	assert_int_equal(c.w.segments, 2);
	assert_int_equal(c.w.data_records, 15);
	recover_expect(c.dir, &c.rec, to, to, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_matches_known_vectors),
		cmocka_unit_test(crc32c_large_buffers_match_the_reference),
		cmocka_unit_test(parse_size_takes_suffixes_and_rejects_garbage),
		cmocka_unit_test(parse_duration_takes_units_and_rejects_garbage),
		cmocka_unit_test_setup_teardown(topic_conf_round_trips_every_key, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(topic_conf_garbage_gives_ebadmsg, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(idx_load_checks_header_and_stops_at_a_bad_entry, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(walker_reads_a_built_log_back_and_spots_damage, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(recover_cuts_junk_appended_to_the_last_segment, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(recover_never_cuts_spilled_records_past_a_short_index, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(recover_cuts_a_corrupted_last_entry_and_fill_gap_covers_it, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(recover_of_a_cut_segment_reports_the_highest_indexed_position, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(rebuilding_a_damaged_index_keeps_the_old_crcs_as_evidence,
						dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(fill_gap_crosses_laps_and_segments_with_aborted_records, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
