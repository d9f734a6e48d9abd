/* SPDX-License-Identifier: MIT */
/*
 * ring_fixture.h - the cmocka side of the ring unit programs (ring_units.c,
 * ring_topic.c, ring_wait.c): topics in the program's temp dir
 * (test_group_dir of support.h), topic / handle constructors that assert,
 * tagged payloads (test_fill of a tag) and their hashes, draining a
 * consumer. Include after
 * <cmocka.h> and support.h; everything is static, one copy per program.
 */
#ifndef SPW_TEST_RING_FIXTURE_H
#define SPW_TEST_RING_FIXTURE_H

#include <stdlib.h>

#include "support.h"

#define KiB 1024u
/* Complete records' commit words at pos of a ring of `ring` bytes: the lap
 * tag of pos is part of the word (ring_layout.h). */
#define W_DATA(len, pos, ring) test_word(TEST_TYPE_DATA, (len), (pos), (ring))
#define W_PAD(span, pos, ring) test_word(TEST_TYPE_PADDING, (span), (pos), (ring))
#define W_ABORTED(span, pos, ring) test_word(TEST_TYPE_ABORTED, (span), (pos), (ring))

static inline struct spw_topic *topic_new(const char *name, uint64_t ring_bytes, uint32_t max_record)
{
	struct spw_topic_config cfg = { .ring_bytes = ring_bytes, .max_record = max_record };
	struct spw_topic *t = NULL;

	assert_int_equal(spw_topic_create(test_group_dir, name, &cfg), 0);
	assert_int_equal(spw_topic_open(test_group_dir, name, 0, &t), 0);
	assert_non_null(t);
	return t;
}

static inline void topic_end(struct spw_topic *t, const char *name)
{
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, name), 0);
}

static inline struct spw_producer *producer_new(struct spw_topic *t)
{
	struct spw_producer *p = NULL;

	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_non_null(p);
	return p;
}

static inline struct spw_consumer *consumer_new(struct spw_topic *t, enum spw_from from, int64_t pos)
{
	struct spw_consumer *c = NULL;

	assert_int_equal(spw_consumer_open(t, from, pos, &c), 0);
	assert_non_null(c);
	return c;
}

/* The handles most cases start with: a topic of 64 KiB (max_record 16 KiB),
 * a producer, a consumer from the oldest record and a collector. */
struct ring_case {
	const char *name;
	struct spw_topic *t;
	struct spw_producer *p;
	struct spw_consumer *c;
	struct test_got *g;
};

static inline struct ring_case case_open(const char *name)
{
	struct ring_case k = { .name = name };

	k.t = topic_new(name, 64 * KiB, 16 * KiB);
	k.g = test_got_new();
	k.p = producer_new(k.t);
	k.c = consumer_new(k.t, SPW_FROM_OLDEST, 0);
	return k;
}

/* Close all of it and delete the topic. */
static inline void case_close(struct ring_case *k)
{
	free(k->g);
	spw_consumer_close(k->c);
	spw_producer_close(k->p);
	topic_end(k->t, k->name);
}

/* The data of the 64 KiB ring of topic name, mapped (test_map_ring). */
static inline uint8_t *map_64k(const char *name, uint8_t **hdr_out)
{
	uint8_t *data = test_map_ring(test_group_dir, name, 64 * KiB, hdr_out);

	assert_non_null(data);
	return data;
}

/* The commit word at pos of the 64 KiB ring of topic name (mapped for the
 * look). */
static inline uint64_t word_64k(const char *name, uint64_t pos)
{
	uint8_t *data = map_64k(name, NULL);
	uint64_t w = test_commit_word(data, 64 * KiB, pos);

	test_unmap_ring(data, 64 * KiB);
	return w;
}

/* Send len bytes of the pattern `tag`. */
static inline int64_t send_tag(struct spw_producer *p, uint32_t len, uint64_t tag)
{
	uint8_t *buf = malloc(len ? len : 1);
	int64_t r;

	assert_non_null(buf);
	test_fill(buf, len, tag);
	r = spw_producer_send(p, buf, len);
	free(buf);
	return r;
}

static inline uint64_t tag_hash(uint32_t len, uint64_t tag)
{
	uint8_t *buf = malloc(len ? len : 1);
	uint64_t h;

	assert_non_null(buf);
	test_fill(buf, len, tag);
	h = test_hash(buf, len);
	free(buf);
	return h;
}

/* Poll until nothing is left; every call must succeed. */
static inline int drain(struct spw_consumer *c, struct test_got *g)
{
	int r;

	do {
		r = spw_consumer_poll(c, test_collect, g, 1000);
		assert_true(r >= 0);
	} while (r > 0);
	return g->n;
}

/* g emptied, then c polled to the end into it: n records, the first of
 * them tag's pattern of len bytes. */
static inline void drain_first_is(struct spw_consumer *c, struct test_got *g, int n, uint32_t len,
				  uint64_t tag)
{
	g->n = 0;
	assert_int_equal(drain(c, g), n);
	assert_int_equal(g->r[0].hash, tag_hash(len, tag));
}

static inline struct spw_topic_info info_of(struct spw_topic *t)
{
	struct spw_topic_info info;

	assert_int_equal(spw_topic_info(t, &info), 0);
	return info;
}

/* Fill a 64 KiB ring exactly: 64 records of span 1024 (I1: tail == limit). */
static inline void fill_64k(struct spw_producer *p, int64_t first)
{
	for (int i = 0; i < 64; i++)
		assert_int_equal(send_tag(p, 1008, (uint64_t)i), first + i * 1024);
}

#endif /* SPW_TEST_RING_FIXTURE_H */
