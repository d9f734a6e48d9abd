/* SPDX-License-Identifier: MIT */
/*
 * fault_garbage.c - shared memory is never trusted. Seeded garbage is
 * written straight into the ring file (our own MAP_SHARED mappings of the
 * data at hdr_bytes, of the header page and of the producer slots): over
 * commit words, over the header page's counters, over the slots, sprayed
 * anywhere; and over the immutable header or the file size before an open.
 * Consumers and scan must answer -EBADMSG (or -ESTALE below the reclaim
 * bound), name the bad position, hand out no record that is not wholly
 * inside the ring, and never crash. spwd_resolve (what the daemon does
 * there, I7) must cut the garbage out as a CORRUPT record ending exactly at
 * the next record it can prove, which readers then skip and count; after
 * the garbage is taken back everything reads as before. open must refuse a
 * garbage header with -EBADMSG (-EPROTO for another version). Many
 * iterations, each from the printed seed. Format and invariant numbers:
 * ring/ring_layout.h.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_layout.h"
#include "support.h"

#define RING (64u << 10)
#define MAXREC (16u << 10) /* ring / 4: any bit flip of it in the header is invalid */
#define MAXN 1024
#define W_DONE (TEST_BIT_COMMITTED | TEST_BIT_CLAIMED)
#define W_TAG_MASK (0x3fffffull << 40)
#define SLOT_BYTES (TEST_HDR_BYTES - TEST_HDR_PAGE) /* the 64 default slots */

struct world {
	uint64_t seed, rng;
	int iter;
	const char *cls;        /* the garbage class being checked */
	char name[32];
	struct spw_topic *t;
	uint8_t *map, *hdrp;    /* our own mappings: data (offset hdr_bytes), header page */
	uint8_t *slotp;         /* and the producer slots (offset 4096) */
	int n;                  /* DATA records in [reclaimed, tail), in order */
	int64_t pos[MAXN];
	uint32_t len[MAXN];
	uint64_t hash[MAXN];
	int n_lap0;             /* how many of them are before the padding */
	int64_t pad_pos;
	uint32_t pad_span;
	int64_t reclaimed, tail;
	uint64_t sprayed[64];   /* ring offsets of the 8-byte words spray_class hit */
	int nsprayed;
};

#define FCHECK(w, cond)                                                            \
	do {                                                                           \
		if (!(cond))                                                               \
			fail_msg("%s:%d: %s (class %s, iteration %d; rerun with "             \
				 "SPW_TEST_SEED=%#" PRIx64 ")", __FILE__, __LINE__, #cond,        \
				 (w)->cls, (w)->iter, (w)->seed);                                  \
	} while (0)

static uint64_t rnd(struct world *w, uint64_t n)
{
	return test_rand_below(&w->rng, n);
}

/* ------------------------------------------------------------------------- */
/* What a reader may be handed: checked on every delivered record. */
struct bounds_ctx {
	int64_t last;
	uint64_t n;
	int bad;
	char msg[200];
	/* When set: the records must be exactly the world's, in order, but for
	 * the one at `cut` (a position the daemon cut out as CORRUPT; 0 =
	 * none: the world never holds position 0, it is reclaimed). */
	const struct world *expect;
	int next;
	int64_t cut;
	/* When set (and expect is not): each record must sit where one of the
	 * world's does, with its length unless spray_class hit its commit word
	 * (the payload may have been sprayed too). */
	const struct world *member;
};

static bool was_sprayed(const struct world *w, int64_t pos)
{
	for (int i = 0; i < w->nsprayed; i++)
		if (w->sprayed[i] == ((uint64_t)pos & (RING - 1)))
			return true;
	return false;
}

static int bounds_cb(void *arg, const struct spw_record *r)
{
	struct bounds_ctx *b = arg;
	uint64_t off = (uint64_t)r->position & (RING - 1);
	const volatile uint8_t *d = r->data;

	if (r->len > MAXREC || off + SPW_RECORD_HEADER_BYTES + r->len > RING ||
	    r->position % 8 || r->position <= b->last) {
		snprintf(b->msg, sizeof(b->msg), "record at %" PRId64 " len %u after %" PRId64
			 " is not inside the ring", r->position, r->len, b->last);
		b->bad = 1;
		return 1;
	}
	if (r->len) /* touch both ends: outside the mapping would fault here */
		(void)(d[0] + d[r->len - 1]);
	if (b->member) {
		const struct world *w = b->member;
		int k = 0;

		while (k < w->n && w->pos[k] != r->position)
			k++;
		if (k == w->n || (w->len[k] != r->len && !was_sprayed(w, r->position))) {
			snprintf(b->msg, sizeof(b->msg), "record at %" PRId64 " len %u: the world has "
				 "no such record", r->position, r->len);
			b->bad = 1;
			return 1;
		}
	}
	if (b->expect) {
		const struct world *w = b->expect;

		if (b->cut && b->next < w->n && w->pos[b->next] == b->cut)
			b->next++;
		if (b->next >= w->n || w->pos[b->next] != r->position || w->len[b->next] != r->len ||
		    w->hash[b->next] != test_hash(r->data, r->len)) {
			snprintf(b->msg, sizeof(b->msg), "record %d at %" PRId64 " len %u is not the one "
				 "sent there", b->next, r->position, r->len);
			b->bad = 1;
			return 1;
		}
		b->next++;
	}
	b->last = r->position;
	b->n++;
	return 0;
}

/* Poll until the consumer stops; returns the last poll's result. */
static int poll_to_end(struct world *w, struct spw_consumer *c, struct bounds_ctx *b)
{
	int r = 0;

	for (int i = 0; i < 100000; i++) {
		r = spw_consumer_poll(c, bounds_cb, b, 64);
		if (b->bad)
			fail_msg("%s (class %s, iteration %d; rerun with SPW_TEST_SEED=%#" PRIx64 ")",
				 b->msg, w->cls, w->iter, w->seed);
		if (r <= 0)
			return r;
	}
	FCHECK(w, !"a consumer kept delivering past any plausible end");
	return r;
}

/* ------------------------------------------------------------------------- */
/* The world: a full 64 KiB ring whose records wrap once, behind a padding. */
static void send_rec(struct world *w, struct spw_producer *p, uint32_t len, int64_t want)
{
	static uint8_t buf[MAXREC];
	int64_t pos;

	test_fill(buf, len, test_splitmix64(&w->rng));
	pos = spw_producer_send(p, buf, len);
	if (want >= 0)
		FCHECK(w, pos == want);
	FCHECK(w, pos >= 0 && w->n < MAXN);
	w->pos[w->n] = pos;
	w->len[w->n] = len;
	w->hash[w->n] = test_hash(buf, len);
	w->n++;
	w->tail = pos + (int64_t)test_span(len);
}

static void world_make(struct world *w, uint64_t seed, int iter)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_producer *p = NULL;
	static uint8_t buf[MAXREC];
	int half;

	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->iter = iter;
	w->rng = test_key(seed, (uint64_t)iter, 0x6761726261676500ull);
	w->cls = "setup";
	snprintf(w->name, sizeof(w->name), "g%d", iter);
	FCHECK(w, spw_topic_create(test_group_dir, w->name, &cfg) == 0);
	FCHECK(w, spw_topic_open(test_group_dir, w->name, 0, &w->t) == 0);
	w->map = test_map_ring(test_group_dir, w->name, RING, &w->hdrp);
	FCHECK(w, w->map != NULL);
	{
		char path[4096];
		int fd;

		test_ring_path(path, sizeof(path), test_group_dir, w->name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		FCHECK(w, fd >= 0);
		w->slotp = mmap(NULL, SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, RING_SLOT_OFF);
		close(fd);
		FCHECK(w, w->slotp != MAP_FAILED);
	}
	FCHECK(w, spw_producer_open(w->t, &p) == 0);

	/* Lap 0: random records, leaving 64..2079 bytes before the end. */
	for (;;) {
		uint32_t len = (uint32_t)rnd(w, 2001);

		if (w->tail + (int64_t)test_span(len) > (int64_t)RING - 64)
			break;
		send_rec(w, p, len, w->tail);
	}
	/* Reclaim the first half (a committed boundary: a record's position). */
	half = w->n / 2;
	FCHECK(w, half > 4);
	w->reclaimed = w->pos[half];
	FCHECK(w, spwd_reclaim(w->t, w->reclaimed) == 0);
	memmove(w->pos, w->pos + half, (size_t)(w->n - half) * sizeof(w->pos[0]));
	memmove(w->len, w->len + half, (size_t)(w->n - half) * sizeof(w->len[0]));
	memmove(w->hash, w->hash + half, (size_t)(w->n - half) * sizeof(w->hash[0]));
	w->n -= half;
	w->n_lap0 = w->n;
	/* A record that does not fit: PADDING to the end, then lap 1 (I6). */
	w->pad_pos = w->tail;
	w->pad_span = (uint32_t)(RING - (uint64_t)w->tail);
	send_rec(w, p, w->pad_span, RING);
	/* Then more until the ring is full, some of them max size. */
	for (;;) {
		uint32_t len = rnd(w, 8) ? (uint32_t)rnd(w, 2001) : MAXREC;
		int64_t r;

		if (w->tail + (int64_t)test_span(len) > w->reclaimed + (int64_t)RING) {
			test_fill(buf, len, 1);
			r = spw_producer_send(p, buf, len);
			FCHECK(w, r == -EAGAIN);
			break;
		}
		send_rec(w, p, len, w->tail);
	}
	/* Closed: its slot is idle, nobody alive holds any position (I7). */
	spw_producer_close(p);
	FCHECK(w, test_commit_word(w->map, RING, (uint64_t)w->pad_pos) ==
			  test_word(TEST_TYPE_PADDING, w->pad_span, (uint64_t)w->pad_pos, RING));
}

static void world_end(struct world *w)
{
	test_unmap_ring(w->map, RING);
	munmap(w->hdrp, TEST_HDR_PAGE);
	munmap(w->slotp, SLOT_BYTES);
	spw_topic_close(w->t);
	FCHECK(w, spw_topic_delete(test_group_dir, w->name) == 0);
}

static struct spw_consumer *consumer_at(struct world *w, int64_t pos)
{
	struct spw_consumer *c = NULL;

	FCHECK(w, spw_consumer_open(w->t, SPW_FROM_POSITION, pos, &c) == 0);
	return c;
}

/* A consumer from the oldest record, polled to the end: it got every record
 * of the world, each as the world has it (bounds_cb, expect). Returned
 * open, for more checks. */
static struct spw_consumer *consumer_reads_all(struct world *w)
{
	struct spw_consumer *c = consumer_at(w, w->reclaimed);
	struct bounds_ctx b = { .last = -1, .expect = w };

	FCHECK(w, poll_to_end(w, c, &b) == 0 && b.n == (uint64_t)w->n);
	return c;
}

/* DATA records before position p. */
static int records_before(const struct world *w, int64_t p)
{
	int k = 0;

	while (k < w->n && w->pos[k] < p)
		k++;
	return k;
}

/* The first record boundary of p's scan run (runs never wrap, I6). */
static int64_t run_start(const struct world *w, int64_t p)
{
	return p < (int64_t)RING ? w->reclaimed : (int64_t)RING;
}

/* The format's rule for a committed word at p: its span, or 0 for garbage
 * (both DONE bits, reserved bits 36..39 zero, the lap tag of p, a known type
 * with a span that fits the lap). */
static uint64_t valid_span(uint64_t wd, int64_t p)
{
	uint64_t room = RING - ((uint64_t)p & (RING - 1)), len = test_word_len(wd);

	if ((wd & W_DONE) != W_DONE || ((wd >> 36) & 0xf) ||
	    test_word_lap(wd) != (((uint64_t)p / RING) & 0x3fffff))
		return 0;
	switch (test_word_type(wd)) {
	case TEST_TYPE_DATA:
		return len <= MAXREC && test_span(len) <= room ? test_span(len) : 0;
	case TEST_TYPE_PADDING:
		return len == room && len >= 8 && len % 8 == 0 ? len : 0;
	case TEST_TYPE_ABORTED:
	case TEST_TYPE_CORRUPT:
		return len <= room && len >= 8 && len % 8 == 0 ? len : 0;
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------------- */
/* After the garbage at p was found: spwd_resolve (nobody alive holds p)
 * turns it into a CORRUPT record of exactly `span` bytes (the records after
 * it chain to a proven boundary, so they are kept), and readers pass it:
 * every record but the one at p, the span counted as skipped. */
static void expect_cut_out(struct world *w, int64_t p, uint64_t garbage, uint64_t span)
{
	struct bounds_ctx b = { .last = -1, .expect = w, .cut = p };
	struct spw_consumer *c;
	struct spwd_stall st;
	struct spwd_scan_result s;
	int cut = records_before(w, p) < w->n && w->pos[records_before(w, p)] == p;

	FCHECK(w, spwd_resolve(w->t, p, &st) == SPWD_RESOLVE_CORRUPT);
	FCHECK(w, st.position == p && st.word == garbage && st.span == span && st.slot == -1);
	FCHECK(w, test_commit_word(w->map, RING, (uint64_t)p) ==
			  test_word(TEST_TYPE_CORRUPT, span, (uint64_t)p, RING));
	/* Settled: asked again, it is a record now. */
	FCHECK(w, spwd_resolve(w->t, p, &st) == SPWD_RESOLVE_NONE);
	c = consumer_at(w, w->reclaimed); /* a boundary again, even when p is the oldest */
	FCHECK(w, poll_to_end(w, c, &b) == 0);
	FCHECK(w, b.n == (uint64_t)(w->n - cut));
	FCHECK(w, spw_consumer_position(c) == w->tail);
	FCHECK(w, spw_consumer_skipped(c) == span);
	FCHECK(w, spwd_scan(w->t, p, RING, &s) > 0);
	FCHECK(w, s.records == (uint64_t)(records_before(w, s.end) - records_before(w, p) - cut));
	spw_consumer_close(c);
}

/* Garbage over one committed word: every reader reports -EBADMSG at it and
 * writes nothing; resolve cuts it out; once the record is put back,
 * everything reads as before. */
static void expect_badmsg_at(struct world *w, int64_t p, uint64_t garbage)
{
	struct spw_consumer *at = consumer_at(w, p), *all = consumer_at(w, w->reclaimed);
	uint64_t saved = test_commit_word(w->map, RING, (uint64_t)p);
	struct bounds_ctx b = { .last = -1, .expect = w };
	struct spwd_scan_result s;
	int before = records_before(w, p);

	FCHECK(w, valid_span(garbage, p) == 0);
	test_set_commit_word(w->map, RING, (uint64_t)p, garbage);
	FCHECK(w, spw_consumer_poll(at, bounds_cb, &b, 64) == -EBADMSG);
	FCHECK(w, spw_consumer_poll(at, bounds_cb, &b, 64) == -EBADMSG);
	FCHECK(w, spw_consumer_position(at) == p);
	FCHECK(w, b.n == 0);
	FCHECK(w, spwd_scan(w->t, p, RING, &s) == -EBADMSG);
	FCHECK(w, s.end == p);
	FCHECK(w, spwd_scan(w->t, run_start(w, p), RING, &s) == -EBADMSG);
	FCHECK(w, s.end == p);
	FCHECK(w, poll_to_end(w, all, &b) == -EBADMSG);
	FCHECK(w, spw_consumer_position(all) == p);
	FCHECK(w, b.n == (uint64_t)before);
	/* The readers wrote nothing: the garbage is still there. */
	FCHECK(w, test_commit_word(w->map, RING, (uint64_t)p) == garbage);
	expect_cut_out(w, p, garbage, valid_span(saved, p));

	test_set_commit_word(w->map, RING, (uint64_t)p, saved);
	FCHECK(w, poll_to_end(w, all, &b) == 0);
	FCHECK(w, b.n == (uint64_t)w->n);
	FCHECK(w, spw_consumer_position(all) == w->tail);
	FCHECK(w, spwd_scan(w->t, run_start(w, p), RING, &s) > 0);
	spw_consumer_close(all);
	spw_consumer_close(at);
}

static int pick_record(struct world *w)
{
	return (int)rnd(w, (uint64_t)w->n);
}

/* A complete-looking word at p: DONE bits and p's lap tag, so only the
 * type or the length can make it garbage. */
static uint64_t type_word(uint32_t type, uint64_t len, int64_t p)
{
	return test_word(type & 0xf, len, (uint64_t)p, RING);
}

static void committed_garbage_classes(struct world *w)
{
	int k = pick_record(w), last0 = w->n_lap0 - 1;
	int64_t p = w->pos[k];
	uint64_t room = RING - ((uint64_t)p & (RING - 1)), orig = test_commit_word(w->map, RING, (uint64_t)p);
	uint64_t proom = w->pad_span, lroom = RING - ((uint64_t)w->pos[last0] & (RING - 1));
	uint32_t type;

	w->cls = "DATA longer than max_record";
	expect_badmsg_at(w, p, type_word(TEST_TYPE_DATA, MAXREC + 1 + rnd(w, UINT32_MAX - MAXREC - 1), p));
	w->cls = "unknown type";
	type = (uint32_t)rnd(w, 12);
	type = type == 0 ? 0 : type + 4; /* 0 or 5..15 */
	{
		int64_t q = w->pos[pick_record(w)];

		expect_badmsg_at(w, q, type_word(type, test_splitmix64(&w->rng), q));
	}
	w->cls = "reserved bits set";
	expect_badmsg_at(w, p, orig | ((1 + rnd(w, 0xf)) << 36));
	/* The lap tag is what keeps a word written for another lap from being
	 * taken for a record of this one (I3, I4). */
	w->cls = "word of another lap";
	expect_badmsg_at(w, p, (orig & ~W_TAG_MASK) |
				       ((orig + ((1 + rnd(w, 0x3fffff)) << 40)) & W_TAG_MASK));
	w->cls = "one DONE bit only";
	expect_badmsg_at(w, p, orig & ~(rnd(w, 2) ? TEST_BIT_CLAIMED : TEST_BIT_COMMITTED));
	w->cls = "PADDING not reaching the ring end";
	{
		const uint64_t spans[] = { proom - 8, proom + 8, proom | 4, 0, 4,
					   test_splitmix64(&w->rng) & 0xffffffff };
		uint64_t sp = spans[rnd(w, sizeof(spans) / sizeof(spans[0]))];

		if (sp == proom)
			sp = proom + 8;
		expect_badmsg_at(w, w->pad_pos, type_word(TEST_TYPE_PADDING, sp, w->pad_pos));
	}
	w->cls = "ABORTED with a bad span";
	{
		const uint64_t spans[] = { 0, 4, 8 * rnd(w, room / 8) + 4, room + 8,
					   room + 8 + 8 * rnd(w, 1 << 20) };

		expect_badmsg_at(w, p, type_word(TEST_TYPE_ABORTED, spans[rnd(w, 5)], p));
	}
	w->cls = "CORRUPT with a bad span";
	{
		const uint64_t spans[] = { 0, 4, 8 * rnd(w, room / 8) + 4, room + 8,
					   room + 8 + 8 * rnd(w, 1 << 20) };

		expect_badmsg_at(w, p, type_word(TEST_TYPE_CORRUPT, spans[rnd(w, 5)], p));
	}
	w->cls = "DATA crossing the ring end";
	FCHECK(w, lroom - 15 <= MAXREC);
	expect_badmsg_at(w, w->pos[last0],
			 type_word(TEST_TYPE_DATA, lroom - 15 + rnd(w, MAXREC - (lroom - 15) + 1),
				   w->pos[last0]));
}

/* A random word: the reader's answer must be the format's (0: nothing yet,
 * and the scan calls it stuck; any other word that is not a complete record
 * of this lap: -EBADMSG, and resolve cuts exactly the record's bytes out,
 * whatever the word claims its length to be). */
static void random_word_class(struct world *w)
{
	int k = pick_record(w);
	int64_t p = w->pos[k];
	uint64_t saved = test_commit_word(w->map, RING, (uint64_t)p), g = test_splitmix64(&w->rng);
	struct spw_consumer *at = consumer_at(w, p);
	struct bounds_ctx b = { .last = -1 };
	struct spwd_scan_result s;
	int r;

	w->cls = "random commit word";
	if (rnd(w, 2)) /* half of them look complete and of this lap */
		g = (g & ~(W_TAG_MASK | (0xfull << 36))) | W_DONE |
		    ((((uint64_t)p / RING) << 40) & W_TAG_MASK);
	test_set_commit_word(w->map, RING, (uint64_t)p, g);
	r = spw_consumer_poll(at, bounds_cb, &b, 1);
	FCHECK(w, !b.bad);
	if (g == 0) {
		FCHECK(w, r == 0);
		FCHECK(w, spwd_scan(w->t, p, RING, &s) == 0);
		FCHECK(w, s.stuck == p && s.stuck_header == g);
	} else if (valid_span(g, p) == 0) {
		FCHECK(w, r == -EBADMSG);
		FCHECK(w, spwd_scan(w->t, p, RING, &s) == -EBADMSG && s.end == p);
		expect_cut_out(w, p, g, valid_span(saved, p));
	} else {
		FCHECK(w, r >= 0); /* a valid-looking header: 1 in a million */
	}
	test_set_commit_word(w->map, RING, (uint64_t)p, saved);
	spw_consumer_close(at);
}

/* Garbage below the reclaim bound: -ESTALE, whatever the bytes say (I5). */
static void stale_class(struct world *w)
{
	int j = (int)rnd(w, (uint64_t)w->n / 2), k = j + 1 + (int)rnd(w, (uint64_t)(w->n - j - 1));
	int64_t p = w->pos[j], upto = w->pos[k];
	struct spw_consumer *c = consumer_at(w, p);
	struct bounds_ctx b = { .last = -1 };
	struct spwd_scan_result s;

	w->cls = "garbage below the reclaim bound";
	FCHECK(w, spwd_reclaim(w->t, upto) == 0);
	test_set_commit_word(w->map, RING, (uint64_t)p,
			     type_word(TEST_TYPE_DATA, MAXREC + 1 + rnd(w, 1000), p));
	FCHECK(w, spw_consumer_poll(c, bounds_cb, &b, 64) == -ESTALE);
	FCHECK(w, b.n == 0 && spw_consumer_position(c) == p);
	FCHECK(w, spw_consumer_oldest(c) == upto);
	FCHECK(w, spwd_scan(w->t, p, RING, &s) == -ESTALE);
	/* Free space is zero (I3): put it back so later classes start clean. */
	test_set_commit_word(w->map, RING, (uint64_t)p, 0);
	FCHECK(w, spw_consumer_seek(c, spw_consumer_oldest(c)) == 0);
	b.expect = NULL;
	FCHECK(w, poll_to_end(w, c, &b) == 0);
	FCHECK(w, b.n == (uint64_t)(w->n - k));
	spw_consumer_close(c);
	memmove(w->pos, w->pos + k, (size_t)(w->n - k) * sizeof(w->pos[0]));
	memmove(w->len, w->len + k, (size_t)(w->n - k) * sizeof(w->len[0]));
	memmove(w->hash, w->hash + k, (size_t)(w->n - k) * sizeof(w->hash[0]));
	w->n -= k;
	w->n_lap0 = w->n_lap0 > k ? w->n_lap0 - k : 0;
	w->reclaimed = upto;
}

/* The header page's counters (lines 1..8). */
static void counter_classes(struct world *w)
{
	struct ring_hdr *h = (struct ring_hdr *)(void *)w->hdrp;
	uint64_t rec = atomic_load(&h->reclaimed), tail = atomic_load(&h->tail);
	uint64_t lim = atomic_load(&h->limit);
	static uint8_t saved[TEST_HDR_PAGE];
	struct spw_consumer *c;
	struct spw_producer *p = NULL;
	struct bounds_ctx b = { .last = -1 };
	struct spwd_scan_result s;
	int k = 1 + (int)rnd(w, (uint64_t)w->n - 1), r;
	int64_t sr;

	FCHECK(w, rec == (uint64_t)w->reclaimed && tail == (uint64_t)w->tail && lim == rec + RING);

	w->cls = "reclaimed counter moved past a reader";
	c = consumer_at(w, w->pos[0]);
	atomic_store(&h->reclaimed, (uint64_t)w->pos[k]);
	FCHECK(w, spw_consumer_poll(c, bounds_cb, &b, 64) == -ESTALE);
	FCHECK(w, spw_consumer_oldest(c) == w->pos[k]);
	FCHECK(w, spwd_scan(w->t, w->pos[0], RING, &s) == -ESTALE);
	atomic_store(&h->reclaimed, rec);
	spw_consumer_close(c);

	w->cls = "limit counter below the data";
	atomic_store(&h->limit, rnd(w, rec));
	c = consumer_at(w, w->pos[0]);
	r = spw_consumer_poll(c, bounds_cb, &b, 64);
	FCHECK(w, r == 0 || r == -ESTALE);
	FCHECK(w, spw_producer_open(w->t, &p) == 0);
	FCHECK(w, spw_producer_send(p, "x", 1) == -EAGAIN); /* claims nothing */
	FCHECK(w, atomic_load(&h->tail) == tail);
	spw_producer_close(p);
	atomic_store(&h->limit, lim);
	spw_consumer_close(c);

	w->cls = "limit and tail counters far ahead";
	atomic_store(&h->limit, 1ull << 62);
	atomic_store(&h->tail, (1ull << 62) - 8 * rnd(w, 1000));
	c = consumer_at(w, w->reclaimed);
	b = (struct bounds_ctx){ .last = -1, .expect = w };
	if (test_commit_word(w->map, RING, (uint64_t)w->tail) == 0) {
		/* Past the real tail lies zeroed memory: the commit words still
		 * rule, the readers stop there. */
		FCHECK(w, poll_to_end(w, c, &b) == 0);
		FCHECK(w, b.n == (uint64_t)w->n && spw_consumer_position(c) == w->tail);
		sr = spwd_scan(w->t, w->tail, RING, &s);
		FCHECK(w, sr == 0 && s.stuck == w->tail && s.stuck_header == 0);
	} else {
		/* The ring is exactly full: past the tail is the oldest record's
		 * lap, which only the real limit tells apart (I3). */
		b.expect = NULL;
		for (int i = 0; i < 64; i++) {
			r = spw_consumer_poll(c, bounds_cb, &b, 64);
			FCHECK(w, !b.bad && (r >= 0 || r == -EBADMSG));
		}
		FCHECK(w, b.n >= (uint64_t)w->n);
	}
	atomic_store(&h->tail, rnd(w, rec)); /* below the data */
	sr = spwd_scan(w->t, w->reclaimed, RING, &s);
	FCHECK(w, sr == -EINVAL || sr == -EBADMSG || sr >= 0);
	atomic_store(&h->tail, tail);
	atomic_store(&h->limit, lim);
	spw_consumer_close(c);

	w->cls = "random header page counters";
	memcpy(saved, w->hdrp, TEST_HDR_PAGE);
	c = consumer_at(w, w->reclaimed);
	test_fill(w->hdrp + RING_LINE, TEST_HDR_PAGE - RING_LINE, test_splitmix64(&w->rng));
	b = (struct bounds_ctx){ .last = -1 };
	r = poll_to_end(w, c, &b);
	FCHECK(w, r == 0 || r == -ESTALE || r == -EBADMSG);
	sr = spwd_scan(w->t, w->reclaimed, RING, &s);
	FCHECK(w, sr >= 0 || sr == -ESTALE || sr == -EBADMSG || sr == -EINVAL);
	{
		struct spw_topic_info info;

		FCHECK(w, spw_topic_info(w->t, &info) == 0 && info.ring_bytes == RING);
	}
	{
		struct spwd_stall st;

		/* Committed: nothing to settle, whatever the counters say. */
		sr = spwd_resolve(w->t, w->pos[0], &st);
		FCHECK(w, sr == SPWD_RESOLVE_NONE || sr == -ESTALE || sr == -EINVAL);
		FCHECK(w, test_commit_word(w->map, RING, (uint64_t)w->pos[0]) ==
				  test_word(TEST_TYPE_DATA, w->len[0], (uint64_t)w->pos[0], RING));
	}
	memcpy(w->hdrp, saved, TEST_HDR_PAGE);
	spw_consumer_close(c);
	spw_consumer_close(consumer_reads_all(w)); /* still the world it was */
}

/* Garbage in the producer slots (shared memory too): records are found by
 * their commit words, never by a slot, so consumers and scan read exactly
 * what they read before; a claim published at a position inside a record
 * may fool seek into accepting it, but the consumer then reports garbage,
 * never a record outside the ring; resolve leaves committed records alone;
 * producers still open or find no slot (-EUSERS); nothing crashes. */
static void slot_class(struct world *w)
{
	static uint8_t saved[SLOT_BYTES];
	struct spw_producer_info pi[64];
	struct spw_producer *p = NULL;
	struct spw_consumer *c;
	struct bounds_ctx b;
	struct spwd_scan_result s, clean;
	struct spwd_stall st;
	int64_t sr, clean_sr;
	int n, r;

	w->cls = "random producer slots";
	clean_sr = spwd_scan(w->t, w->reclaimed, RING, &clean);
	FCHECK(w, clean_sr > 0);
	memcpy(saved, w->slotp, SLOT_BYTES);
	test_fill(w->slotp, SLOT_BYTES, test_splitmix64(&w->rng));
	/* And some spans that start inside records, as a stale or lying
	 * producer could publish them. */
	for (int i = 0; i < 8; i++) {
		struct ring_slot *sl = (struct ring_slot *)(void *)(w->slotp + rnd(w, 64) * RING_SLOT_BYTES);
		int k = pick_record(w);
		uint64_t in = (uint64_t)w->pos[k] + 8 + 8 * rnd(w, (test_span(w->len[k]) - 8) / 8);

		atomic_store(&sl->end, in + 8 * (1 + rnd(w, 100)));
		atomic_store(&sl->claim, in | (rnd(w, 2) ? RING_SLOT_CLAIMING : 0));
	}
	c = consumer_reads_all(w);
	FCHECK(w, spw_consumer_position(c) == w->tail);
	FCHECK(w, spw_consumer_skipped(c) == 0);
	sr = spwd_scan(w->t, w->reclaimed, RING, &s);
	FCHECK(w, sr == clean_sr && s.end == clean.end && s.records == clean.records);
	for (int i = 0; i < 16; i++) {
		int k = pick_record(w);
		int64_t in = w->pos[k] + 8 + 8 * (int64_t)rnd(w, (test_span(w->len[k]) - 8) / 8);

		FCHECK(w, spw_consumer_seek(c, w->pos[k]) == 0); /* a boundary stays one */
		FCHECK(w, spwd_resolve(w->t, w->pos[k], &st) == SPWD_RESOLVE_NONE);
		r = spw_consumer_seek(c, in);
		FCHECK(w, r == 0 || r == -EINVAL);
		if (r == 0) {
			b = (struct bounds_ctx){ .last = -1 };
			r = spw_consumer_poll(c, bounds_cb, &b, 64);
			FCHECK(w, !b.bad && (r >= 0 || r == -EBADMSG));
		} else {
			FCHECK(w, spw_consumer_position(c) == w->pos[k]);
		}
	}
	FCHECK(w, spw_consumer_seek(c, w->tail) == 0);
	n = spw_topic_producers(w->t, pi, 64);
	FCHECK(w, n >= 0 && n <= 64);
	for (int i = 0; i < n; i++)
		FCHECK(w, pi[i].slot < 64 && !pi[i].alive); /* nobody holds a slot's lock */
	r = spw_producer_open(w->t, &p);
	FCHECK(w, r == 0 || r == -EUSERS);
	spw_producer_close(p);
	memcpy(w->slotp, saved, SLOT_BYTES);
	spw_consumer_close(c);
	spw_consumer_close(consumer_reads_all(w)); /* still the world it was */
}

/* Random bytes anywhere in the data: whatever happens, no record outside
 * the ring, no crash, and the answers stay in the documented set. Then the
 * daemon's way through it (writer.c: scan, resolve at garbage, scan on)
 * must reach the tail, cutting out only CORRUPT spans inside the lap and
 * below the tail, after which a consumer passes it all: records only where
 * the world has them, the cut bytes counted as skipped. */
static void spray_class(struct world *w)
{
	int spots = 1 + (int)rnd(w, 64);
	struct spw_consumer *c = consumer_at(w, w->reclaimed);
	struct bounds_ctx b = { .last = -1 };
	int64_t from = w->reclaimed, sr;
	struct spwd_scan_result s;
	int r;

	w->cls = "random bytes sprayed over the data";
	for (int i = 0; i < spots; i++) {
		uint64_t off = rnd(w, RING - 8);

		w->sprayed[w->nsprayed++] = off & ~7ull;
		if (rnd(w, 2)) {
			off &= ~7ull;
			test_set_commit_word(w->map, RING, off, test_splitmix64(&w->rng));
		} else {
			w->map[off] = (uint8_t)test_splitmix64(&w->rng);
		}
	}
	r = poll_to_end(w, c, &b);
	FCHECK(w, r == 0 || r == -EBADMSG);
	FCHECK(w, spw_consumer_position(c) >= w->reclaimed);
	for (int i = 0; i < 1000; i++) {
		sr = spwd_scan(w->t, from, RING, &s);
		FCHECK(w, sr >= 0 || sr == -EBADMSG);
		if (sr < 0)
			break;
		/* Committed records all end at or below the tail. */
		if (s.end != from + sr || s.end > w->tail)
			fail_msg("scan from %" PRId64 " returned %" PRId64 ", end %" PRId64 ", records %"
				 PRIu64 ", stuck %" PRId64 ": past the tail %" PRId64 " (iteration %d; "
				 "rerun with SPW_TEST_SEED=%#" PRIx64 ")", from, sr, s.end, s.records,
				 s.stuck, w->tail, w->iter, w->seed);
		if (sr == 0 || s.stuck >= 0)
			break;
		from = s.end;
	}
	spw_consumer_close(c);

	{
		uint64_t cut = 0;
		int rounds = 0;
		struct spwd_stall st;

		from = w->reclaimed;
		while (from < w->tail) {
			int64_t lap_end = (from & ~(int64_t)(RING - 1)) + RING;

			FCHECK(w, ++rounds < 10000);
			sr = spwd_scan(w->t, from, RING, &s);
			if (sr == -EBADMSG) {
				from = s.end; /* the good run before the garbage */
				r = spwd_resolve(w->t, from, &st);
				if (r != SPWD_RESOLVE_CORRUPT)
					fail_msg("resolve at %" PRId64 " (word %#" PRIx64 ", tail %" PRId64
						 ") returned %d, not CORRUPT: the daemon would stop here "
						 "(iteration %d; rerun with SPW_TEST_SEED=%#" PRIx64 ")",
						 from, st.word, w->tail, r, w->iter, w->seed);
				FCHECK(w, st.span >= 8 && st.span % 8 == 0);
				FCHECK(w, from + (int64_t)st.span <= w->tail);
				FCHECK(w, from + (int64_t)st.span <= lap_end);
				cut += st.span;
				continue;
			}
			FCHECK(w, sr >= 0 && s.end <= w->tail);
			from = s.end;
			if (s.stuck >= 0) {
				/* A sprayed zero word reads as a claim not committed
				 * yet; no live slot holds it, so the daemon aborts it
				 * up to the next written word. */
				r = spwd_resolve(w->t, s.stuck, &st);
				if (r != SPWD_RESOLVE_ABORTED)
					fail_msg("resolve at %" PRId64 " (zero word, tail %" PRId64
						 ") returned %d, not ABORTED: the daemon would stop "
						 "here (iteration %d; rerun with SPW_TEST_SEED=%#" PRIx64
						 ")", s.stuck, w->tail, r, w->iter, w->seed);
				FCHECK(w, s.stuck + (int64_t)st.span <= w->tail);
				continue;
			}
			FCHECK(w, sr > 0);
		}
		FCHECK(w, from == w->tail);
		/* Past the tail the ring is zero (I3) up to limit, and consumers,
		 * which know no tail, rely on that: take back what the spray
		 * wrote there. */
		for (int64_t q = w->tail; q < w->reclaimed + (int64_t)RING; q += 8)
			test_set_commit_word(w->map, RING, (uint64_t)q, 0);
		c = consumer_at(w, w->reclaimed);
		b = (struct bounds_ctx){ .last = -1, .member = w };
		FCHECK(w, poll_to_end(w, c, &b) == 0);
		FCHECK(w, spw_consumer_position(c) == w->tail);
		FCHECK(w, spw_consumer_skipped(c) == cut);
		spw_consumer_close(c);
	}
}

static void readers_survive_garbage_in_the_ring(void **state)
{
	uint64_t seed = test_seed("fault_garbage ring");
	int iters = (int)test_scaled(300, 60, 60);
	struct world *w = calloc(1, sizeof(*w));

	(void)state;
	assert_non_null(w);
	for (int i = 0; i < iters; i++) {
		world_make(w, seed, i);
		committed_garbage_classes(w);
		random_word_class(w);
		counter_classes(w);
		stale_class(w);
		slot_class(w);
		spray_class(w);
		world_end(w);
	}
	free(w);
}

/* A committed word whose span fits before the ring's end but runs past the
 * tail: no record can (the tail ends the last claim), so the daemon's scan
 * must call it garbage rather than report a run ending beyond the tail; and
 * then resolve, which the daemon calls at what scan refused, must cut it out
 * up to the tail (the only boundary it can prove there), or the daemon would
 * be left with a position that scan refuses and resolve calls settled. */
static void scan_refuses_a_record_running_past_the_tail(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t buf[100] = { 0 }, *map;
	struct spwd_scan_result s;
	struct spwd_stall st;
	int64_t r;

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, "pasttail", &cfg), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "pasttail", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 0);
	assert_int_equal(spw_producer_send(p, buf, 100), 120); /* tail 240 */
	map = test_map_ring(test_group_dir, "pasttail", RING, NULL);
	assert_non_null(map);
	spw_producer_close(p); /* nobody alive holds a position */
	p = NULL;
	for (int i = 0; i < 2; i++) {
		uint64_t wd = i == 0 ? test_word(TEST_TYPE_DATA, 1000, 120, RING)
				     : test_word(TEST_TYPE_ABORTED, 4096, 120, RING);

		test_set_commit_word(map, RING, 120, wd);
		r = spwd_scan(t, 0, RING, &s);
		if (r != -EBADMSG || s.end != 120)
			fail_msg("scan over a%s running past the tail (240) returned %" PRId64
				 ", end %" PRId64 ", not -EBADMSG at 120",
				 i == 0 ? " record" : "n ABORTED span", r, s.end);
		r = spwd_resolve(t, 120, &st);
		if (r != SPWD_RESOLVE_CORRUPT || st.span != 120)
			fail_msg("resolve at 120 over a%s running past the tail (240) returned %" PRId64
				 " (span %" PRIu64 "), not SPWD_RESOLVE_CORRUPT of 120 bytes: scan "
				 "refuses it, so spilling could not pass it",
				 i == 0 ? " record" : "n ABORTED span", r, st.span);
		assert_int_equal(test_commit_word(map, RING, 120),
				 test_word(TEST_TYPE_CORRUPT, 120, 120, RING));
		assert_int_equal(spwd_scan(t, 0, RING, &s), 240);
		assert_int_equal(s.records, 1);
	}
	test_unmap_ring(map, RING);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "pasttail"), 0);
}

/* A tail forged past the limit (a review, 2026-12-05): past the limit lie
 * the unreclaimed lap's records, which scan took for garbage for the
 * tail's lap; spillwayd cut them as CORRUPT (overwriting records not yet
 * reclaimed), reclaim stopped for good, and a huge tail made it write
 * CORRUPT spans without end. Scan now refuses the header (-EUCLEAN) and
 * touches nothing; `spillway verify` says BAD. */
static void a_tail_past_the_limit_is_garbage_not_records(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t buf[100] = { 0 }, *map, *hdrp = NULL, *before = malloc(RING);
	struct ring_hdr *h;
	struct spwd_scan_result s;
	uint64_t tail, lim;
	int64_t r;

	(void)state;
	assert_non_null(before);
	assert_int_equal(spw_topic_create(test_group_dir, "tailpast", &cfg), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "tailpast", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	while ((r = spw_producer_send(p, buf, sizeof(buf))) >= 0)
		;
	assert_int_equal(r, -EAGAIN); /* a full lap, nothing reclaimed */
	spw_producer_close(p);
	map = test_map_ring(test_group_dir, "tailpast", RING, &hdrp);
	assert_non_null(map);
	h = (struct ring_hdr *)(void *)hdrp;
	tail = atomic_load(&h->tail);
	lim = atomic_load(&h->limit);
	assert_true(tail <= lim);
	for (int k = 0; k < 2; k++) {
		atomic_store(&h->tail, k == 0 ? lim + 5 * RING : 1ull << 62);
		memcpy(before, map, RING);
		assert_int_equal(spwd_scan(t, 0, RING, &s), -EUCLEAN);
		assert_memory_equal(map, before, RING);
		if (getenv("SPW_CLI")) {
			char cmd[1600];

			snprintf(cmd, sizeof(cmd),
				 "'%s' --shm-dir '%s' --data-dir '%s/none' verify tailpast | grep -q "
				 "'^BAD .*the ring.s header breaks its invariant'",
				 getenv("SPW_CLI"), test_group_dir, test_group_dir);
			assert_int_equal(system(cmd), 0);
		}
	}
	atomic_store(&h->tail, tail);
	assert_true(spwd_scan(t, 0, RING, &s) > 0);
	test_unmap_ring(map, RING);
	free(before);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "tailpast"), 0);
}

/* ------------------------------------------------------------------------- */
/* open refuses a garbage header or file size with -EBADMSG. */
struct field {
	const char *name;
	size_t off, size;
	unsigned lo, hi; /* bits [lo, hi) any flip of which is invalid */
	int err;         /* what open says then */
};

static void open_refuses_a_garbage_header_page(void **state)
{
	static const struct field fields[] = {
		{ "magic", offsetof(struct ring_hdr, magic), 8, 0, 64, -EBADMSG },
		/* another version: a format this library cannot read */
		{ "version", offsetof(struct ring_hdr, version), 4, 0, 32, -EPROTO },
		{ "hdr_bytes", offsetof(struct ring_hdr, hdr_bytes), 4, 0, 32, -EBADMSG },
		{ "ring_bytes", offsetof(struct ring_hdr, ring_bytes), 8, 0, 64, -EBADMSG },
		/* 2 * ring: only flips below the ring's bit break the multiple */
		{ "segment_bytes", offsetof(struct ring_hdr, segment_bytes), 8, 0, 16, -EBADMSG },
		{ "max_record", offsetof(struct ring_hdr, max_record), 4, 0, 32, -EBADMSG },
		/* bit 0 is SPW_TOPIC_NO_SPILL, valid */
		{ "flags", offsetof(struct ring_hdr, flags), 4, 1, 32, -EBADMSG },
		/* 64: any other count has other hdr_bytes (or none: 0, > 4096) */
		{ "max_producers", offsetof(struct ring_hdr, max_producers), 4, 0, 32, -EBADMSG },
	};
	struct spw_topic_config cfg = { .ring_bytes = RING, .segment_bytes = 2 * RING,
					.max_record = MAXREC };
	uint64_t seed = test_seed("fault_garbage header"), rng = seed;
	int iters = (int)test_scaled(300, 60, 60);
	const off_t full = TEST_HDR_BYTES + RING;
	struct spw_topic *t = NULL;
	uint8_t page[TEST_HDR_PAGE], junk[TEST_HDR_PAGE], slots[SLOT_BYTES];
	char path[4096];
	int fd;

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, "hdr", &cfg), 0);
	test_ring_path(path, sizeof(path), test_group_dir, "hdr");
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, page, sizeof(page), 0), sizeof(page));
	assert_int_equal(pread(fd, slots, sizeof(slots), RING_SLOT_OFF), sizeof(slots));
	for (int i = 0; i < iters; i++) {
		const struct field *f = &fields[test_rand_below(&rng, sizeof(fields) / sizeof(fields[0]))];
		unsigned bit = f->lo + (unsigned)test_rand_below(&rng, f->hi - f->lo);
		uint8_t byte = page[f->off + bit / 8] ^ (uint8_t)(1u << (bit % 8));
		const off_t sizes[] = { 0, (off_t)test_rand_below(&rng, TEST_HDR_PAGE), TEST_HDR_PAGE,
					TEST_HDR_PAGE + (off_t)test_rand_below(&rng, RING),
					full - 8, full + 8, full + TEST_HDR_PAGE, 2 * full };
		int r;

		/* One bit of an immutable field. */
		assert_int_equal(pwrite(fd, &byte, 1, (off_t)(f->off + bit / 8)), 1);
		r = spw_topic_open(test_group_dir, "hdr", 0, &t);
		if (r != f->err)
			fail_msg("%s bit %u flipped: open returned %d, not %d (iteration %d, "
				 "SPW_TEST_SEED=%#" PRIx64 ")", f->name, bit, r, f->err, i, seed);
		assert_int_equal(pwrite(fd, &page[f->off + bit / 8], 1, (off_t)(f->off + bit / 8)), 1);

		/* A file of the wrong size. */
		assert_int_equal(ftruncate(fd, sizes[i % (sizeof(sizes) / sizeof(sizes[0]))]), 0);
		r = spw_topic_open(test_group_dir, "hdr", 0, &t);
		if (r != -EBADMSG)
			fail_msg("file of %lld bytes: open returned %d (SPW_TEST_SEED=%#" PRIx64 ")",
				 (long long)sizes[i % (sizeof(sizes) / sizeof(sizes[0]))], r, seed);
		assert_int_equal(ftruncate(fd, full), 0);
		assert_int_equal(pwrite(fd, page, sizeof(page), 0), sizeof(page));

		/* A whole page of garbage. */
		test_fill(junk, sizeof(junk), test_splitmix64(&rng));
		if (memcmp(junk, page, 8) == 0)
			junk[0] ^= 1;
		assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), sizeof(junk));
		assert_int_equal(spw_topic_open(test_group_dir, "hdr", 0, &t), -EBADMSG);
		assert_int_equal(pwrite(fd, page, sizeof(page), 0), sizeof(page));

		/* Garbage slots are no reason to refuse: they are shared state
		 * that nothing trusts (slot_class), not settings. */
		test_fill(junk, sizeof(junk), test_splitmix64(&rng));
		assert_int_equal(pwrite(fd, junk, sizeof(junk), RING_SLOT_OFF), sizeof(junk));
		assert_int_equal(spw_topic_open(test_group_dir, "hdr", 0, &t), 0);
		spw_topic_close(t);
		assert_int_equal(pwrite(fd, slots, sizeof(slots), RING_SLOT_OFF), sizeof(slots));

		/* Put back, it opens: each refusal was the garbage's doing. */
		assert_int_equal(spw_topic_open(test_group_dir, "hdr", 0, &t), 0);
		spw_topic_close(t);
	}
	close(fd);
	assert_int_equal(spw_topic_delete(test_group_dir, "hdr"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(readers_survive_garbage_in_the_ring),
		cmocka_unit_test(scan_refuses_a_record_running_past_the_tail),
		cmocka_unit_test(a_tail_past_the_limit_is_garbage_not_records),
		cmocka_unit_test(open_refuses_a_garbage_header_page),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
