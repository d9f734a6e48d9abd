/* SPDX-License-Identifier: MIT */
/*
 * support_stress.c - the stress roles; see support_stress.h.
 */
#define _GNU_SOURCE
#include "support_stress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Stress roles
 */
void test_stress_init(struct test_stress *s, const char *dir, const char *name, uint64_t seed,
		      uint64_t total_records, uint32_t producers, uint32_t consumers,
		      int64_t start_position)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->seed = seed;
	s->producers = producers;
	s->consumers = consumers;
	s->per_producer = total_records / producers;
	s->ring_bytes = 1u << 20;
	s->max_record = 64u << 10;
	s->deadline_ns = test_now_ns() + 300 * TEST_SEC;
	s->start_realtime_ns = test_realtime_ns() - TEST_SEC;
	s->start_position = start_position;
	for (uint32_t c = 0; c < TEST_STRESS_MAX_CONSUMERS; c++)
		atomic_init(&s->consumer_pos[c], s->start_position);
	atomic_init(&s->consumers_done, 0);
	atomic_init(&s->failed, 0);
}

int test_stress_create(const struct test_stress *s)
{
	struct spw_topic_config cfg = {
		.ring_bytes = s->ring_bytes,
		.max_record = s->max_record,
		.start_position = (uint64_t)s->start_position,
	};

	return spw_topic_create(s->dir, s->name, &cfg);
}

/* Relaxed: the flag only makes the other roles give up early; what failed
 * is in the failing role's exit status / return value. */
static int others_failed(struct test_stress *s)
{
	return atomic_load_explicit(&s->failed, memory_order_relaxed);
}

static int expired(const struct test_stress *s)
{
	return test_now_ns() > s->deadline_ns;
}

static int open_topic(struct test_stress *s, struct spw_topic **own, struct spw_topic **t)
{
	int r;

	*own = NULL;
	*t = s->topic;
	if (*t)
		return 0;
	r = spw_topic_open(s->dir, s->name, 0, own);
	TEST_CHECK(r == 0, "spw_topic_open(%s, %s): %d", s->dir, s->name, r);
	*t = *own;
	return 0;
}

/* The end of a role: the topic it opened itself (own, from open_topic; may
 * be NULL) closed, a failure (rc < 0) published to the other roles. */
static int finish_role(struct test_stress *s, struct spw_topic *own, int rc)
{
	if (own)
		spw_topic_close(own);
	if (rc < 0)
		atomic_store_explicit(&s->failed, 1, memory_order_relaxed);
	return rc;
}

static int produce_claim(struct test_stress *s, struct spw_producer *p, uint32_t id,
			 uint32_t len, uint64_t seq, int64_t *pos)
{
	struct spw_claim c;
	int r = spw_producer_claim(p, len, &c);

	while (r == -EAGAIN || r == -ETIMEDOUT) {
		if (others_failed(s))
			return 2;
		TEST_CHECK(!expired(s), "producer %u: ring full until the deadline (seq %" PRIu64 ")",
			   id, seq);
		r = spw_producer_claim_wait(p, len, 100 * TEST_MS, &c);
		if (r == -ETIMEDOUT)
			s->timeouts[id]++;
	}
	TEST_CHECK(r == 0, "producer %u seq %" PRIu64 ": claim(%u): %d", id, seq, len, r);
	TEST_CHECK(c.len == len && c.data != NULL, "producer %u: claim gave len %u data %p for %u",
		   id, c.len, c.data, len);
	test_id_make(c.data, len, s->seed, id, seq);
	r = spw_producer_commit(p, &c);
	TEST_CHECK(r == 0, "producer %u seq %" PRIu64 ": commit at %" PRId64 ": %d", id, seq,
		   c.position, r);
	s->sent_by_claim[id]++;
	*pos = c.position;
	return 0;
}

static int produce_send(struct test_stress *s, struct spw_producer *p, uint32_t id,
			uint32_t len, uint64_t seq, int blocking, uint8_t *buf, int64_t *pos)
{
	int64_t r;

	test_id_make(buf, len, s->seed, id, seq);
	r = blocking ? -EAGAIN : spw_producer_send(p, buf, len);
	while (r == -EAGAIN || r == -ETIMEDOUT) {
		if (others_failed(s))
			return 2;
		TEST_CHECK(!expired(s), "producer %u: ring full until the deadline (seq %" PRIu64 ")",
			   id, seq);
		r = spw_producer_send_wait(p, buf, len, 100 * TEST_MS);
		if (r == -ETIMEDOUT)
			s->timeouts[id]++;
	}
	TEST_CHECK(r >= 0, "producer %u seq %" PRIu64 ": send%s(%u): %" PRId64, id, seq,
		   blocking ? "_wait" : "", len, r);
	*pos = r;
	return 0;
}

/* Records seq .. seq + k - 1 (lengths lens) in spw_producer_send_batch_wait
 * calls (a batch may go in parts), each in its own slice of buf. */
#define STRESS_BATCH 4
static int produce_batch(struct test_stress *s, struct spw_producer *p, uint32_t id,
			 const uint32_t *lens, uint64_t seq, uint32_t k, uint8_t *buf, int64_t *pos)
{
	struct spw_msg m[STRESS_BATCH];
	uint32_t sent = 0;

	for (uint32_t i = 0; i < k; i++) {
		uint8_t *b = buf + (size_t)i * s->max_record;

		test_id_make(b, lens[i], s->seed, id, seq + i);
		m[i] = (struct spw_msg){ b, lens[i] };
	}
	while (sent < k) {
		int r = spw_producer_send_batch_wait(p, m + sent, k - sent, 100 * TEST_MS, pos + sent);

		if (r == -ETIMEDOUT) {
			if (others_failed(s))
				return 2;
			TEST_CHECK(!expired(s), "producer %u: ring full until the deadline (seq %" PRIu64
				   ")", id, seq + sent);
			s->timeouts[id]++;
			continue;
		}
		TEST_CHECK(r > 0 && (uint32_t)r <= k - sent, "producer %u seq %" PRIu64
			   ": send_batch_wait(%u): %d", id, seq + sent, k - sent, r);
		sent += (uint32_t)r;
	}
	s->sent_by_batch[id] += k;
	return 0;
}

/* Close the producer and open a new one on t (the churn of reopen_every). */
static int reopen(struct spw_topic *t, struct spw_producer **pp, uint32_t id, uint64_t seq)
{
	int r;

	spw_producer_close(*pp);
	*pp = NULL;
	r = spw_producer_open(t, pp);
	TEST_CHECK(r == 0, "producer %u: reopen after seq %" PRIu64 ": %d", id, seq, r);
	return 0;
}

static int produce(struct test_stress *s, struct spw_topic *t, struct spw_producer **pp,
		   uint32_t id, uint8_t *buf)
{
	uint64_t mode_rng = test_key(s->seed, id, 0x6d6f646573ull /* "modes" */);
	uint64_t len_rng = test_id_len_rng(s->seed, id);
	int64_t last = s->start_position - 1;

	for (uint64_t seq = 0; seq < s->per_producer; seq++) {
		uint32_t lens[STRESS_BATCH] = { test_id_len(&len_rng, id, s->max_record) }, k = 1;
		unsigned mode = (unsigned)test_rand_below(&mode_rng, 5);
		int64_t pos[STRESS_BATCH] = { -1 };
		int r;

		if (others_failed(s))
			return 2;
		if (mode == 4) { /* a batch of the next up to 4 records */
			while (k < STRESS_BATCH && seq + k < s->per_producer)
				lens[k++] = test_id_len(&len_rng, id, s->max_record);
			r = produce_batch(s, *pp, id, lens, seq, k, buf, pos);
		} else if (mode == 3) {
			r = produce_claim(s, *pp, id, lens[0], seq, &pos[0]);
		} else {
			r = produce_send(s, *pp, id, lens[0], seq, mode < 2, buf, &pos[0]);
		}
		if (r)
			return r;
		for (uint32_t i = 0; i < k; i++) {
			/* Positions are 8-aligned and one producer's grow (claims
			 * are ordered by the tail). */
			TEST_CHECK(pos[i] % SPW_RECORD_ALIGN == 0 && pos[i] > last,
				   "producer %u seq %" PRIu64 ": position %" PRId64 " after %" PRId64,
				   id, seq + i, pos[i], last);
			last = pos[i];
			if (s->reopen_every && (seq + i) % s->reopen_every == s->reopen_every - 1 &&
			    reopen(t, pp, id, seq + i))
				return -1;
		}
		seq += k - 1;
		s->sent[id] = seq + 1;
	}
	return 0;
}

int test_stress_producer(struct test_stress *s, uint32_t id)
{
	struct spw_topic *own, *t;
	struct spw_producer *p = NULL;
	uint8_t *buf;
	int r;

	if (open_topic(s, &own, &t))
		return finish_role(s, NULL, -1);
	buf = malloc((size_t)STRESS_BATCH * s->max_record);
	r = spw_producer_open(t, &p);
	if (r != 0 || !buf) {
		test_report(__FILE__, __LINE__, "spw_producer_open", "producer %u: %d", id, r);
		r = -1;
	} else {
		r = produce(s, t, &p, id, buf);
	}
	if (p)
		spw_producer_close(p);
	free(buf);
	return finish_role(s, own, r);
}

struct consume_ctx {
	struct test_stress *s;
	struct test_id_expect expect;
	uint64_t received[TEST_ID_PRODUCERS];
	uint64_t calls, bytes;
	int64_t last_pos;
	int failed;
	char msg[400];
};

static int consume_one(void *arg, const struct spw_record *r)
{
	struct consume_ctx *x = arg;
	const struct test_stress *s = x->s;
	uint64_t off = (uint64_t)r->position & (s->ring_bytes - 1);
	uint32_t p = 0;
	char err[300];

	x->calls++;
	if (r->position <= x->last_pos || r->position % SPW_RECORD_ALIGN != 0) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 " after %" PRId64,
			 r->position, x->last_pos);
		goto bad;
	}
	if (r->len > s->max_record || off + SPW_RECORD_HEADER_BYTES + r->len > s->ring_bytes) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 " len %u crosses the ring end",
			 r->position, r->len);
		goto bad;
	}
	if (r->timestamp_ns < (uint64_t)s->start_realtime_ns ||
	    r->timestamp_ns > (uint64_t)test_realtime_ns() + TEST_SEC) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 ": timestamp %" PRIu64
			 " outside the test run", r->position, r->timestamp_ns);
		goto bad;
	}
	if (test_id_verify(&x->expect, r->data, r->len, &p, err, sizeof(err)) != 0) {
		snprintf(x->msg, sizeof(x->msg), "record at %" PRId64 ": %s", r->position, err);
		goto bad;
	}
	x->received[p]++;
	x->bytes += r->len;
	x->last_pos = r->position;
	return 0;
bad:
	x->failed = 1;
	return 1;
}

static int consume(struct test_stress *s, struct spw_consumer *c, uint32_t id,
		   struct consume_ctx *x)
{
	uint64_t want = (uint64_t)s->producers * s->per_producer, got = 0;
	int n;

	while (got < want) {
		uint64_t calls = x->calls;

		if (others_failed(s))
			return 2;
		TEST_CHECK(!expired(s), "consumer %u: %" PRIu64 " of %" PRIu64
			   " records at the deadline, position %" PRId64, id, got, want,
			   spw_consumer_position(c));
		n = spw_consumer_poll_wait(c, consume_one, x, 64, 100 * TEST_MS);
		TEST_CHECK(!x->failed, "consumer %u: %s (seed %#" PRIx64 ")", id, x->msg, s->seed);
		TEST_CHECK(n >= 0, "consumer %u: poll_wait at %" PRId64 ": %d", id,
			   spw_consumer_position(c), n);
		TEST_CHECK((uint64_t)n == x->calls - calls, "consumer %u: poll_wait returned %d for %"
			   PRIu64 " records delivered", id, n, x->calls - calls);
		got += (uint64_t)n;
		/* Release: our reads of the records below this position happened
		 * before; pairs with the acquire load in the reclaimer, which then
		 * lets them be zeroed and reused. */
		atomic_store_explicit(&s->consumer_pos[id], spw_consumer_position(c),
				      memory_order_release);
	}
	/* Every producer has committed all it will: nothing more may come. */
	n = spw_consumer_poll(c, consume_one, x, 64);
	TEST_CHECK(n == 0 && !x->failed, "consumer %u: %d records after the last expected one (%s)",
		   id, n, x->failed ? x->msg : "extra records");
	return 0;
}

int test_stress_consumer(struct test_stress *s, uint32_t id)
{
	struct spw_topic *own, *t;
	struct spw_consumer *c = NULL;
	struct consume_ctx *x;
	int r;

	if (open_topic(s, &own, &t))
		return finish_role(s, NULL, -1);
	x = calloc(1, sizeof(*x));
	if (!x)
		abort();
	x->s = s;
	x->last_pos = s->start_position - 1;
	test_id_expect_init(&x->expect, s->seed, s->producers, s->max_record);
	/* Half open from the oldest, half from the start position: before any
	 * reclaim both are the start. */
	if (id % 2)
		r = spw_consumer_open(t, SPW_FROM_POSITION, s->start_position, &c);
	else
		r = spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c);
	if (r != 0) {
		test_report(__FILE__, __LINE__, "spw_consumer_open", "consumer %u: %d", id, r);
		r = -1;
	} else if (spw_consumer_position(c) != s->start_position) {
		test_report(__FILE__, __LINE__, "position == start", "consumer %u opened at %" PRId64,
			    id, spw_consumer_position(c));
		r = -1;
	} else {
		r = consume(s, c, id, x);
	}
	if (r == 0) {
		memcpy(s->received[id], x->received, sizeof(x->received));
		s->bytes_received[id] = x->bytes;
		s->final_pos[id] = spw_consumer_position(c);
		atomic_store_explicit(&s->consumer_pos[id], s->final_pos[id], memory_order_release);
		/* Release: received/final_pos above are written before the
		 * reclaimer (acquire) sees this consumer done. */
		atomic_fetch_add_explicit(&s->consumers_done, 1, memory_order_release);
	}
	if (c)
		spw_consumer_close(c);
	free(x);
	return finish_role(s, own, r);
}

/* The daemon's walk: everything below `upto` is committed, so scan must
 * cover [from, upto) exactly, in runs that stop only at the ring end. */
static int scan_to(struct test_stress *s, struct spw_topic *t, int64_t from, int64_t upto)
{
	while (from < upto) {
		struct spwd_scan_result sc;
		int64_t n = spwd_scan(t, from, (uint64_t)(upto - from), &sc);

		TEST_CHECK(n > 0 && sc.end == from + n && sc.end <= upto,
			   "scan from %" PRId64 " to %" PRId64 ": %" PRId64 " (end %" PRId64 ")", from,
			   upto, n, sc.end);
		s->scanned_records += sc.records;
		from = sc.end;
	}
	return 0;
}

static int reclaim_loop(struct test_stress *s, struct spw_topic *t)
{
	int64_t done_pos = s->start_position;

	for (;;) {
		/* Acquire: pairs with the consumers' release increment, so their
		 * final positions are visible below once all are done. */
		uint32_t done = atomic_load_explicit(&s->consumers_done, memory_order_acquire);
		int64_t m = INT64_MAX;
		int r;

		if (others_failed(s))
			return 2;
		for (uint32_t c = 0; c < s->consumers; c++) {
			int64_t pos = atomic_load_explicit(&s->consumer_pos[c], memory_order_acquire);

			m = pos < m ? pos : m;
		}
		if (m > done_pos) {
			if (scan_to(s, t, done_pos, m))
				return -1;
			r = spwd_reclaim(t, m);
			TEST_CHECK(r == 0, "reclaim(%" PRId64 ") from %" PRId64 ": %d", m, done_pos, r);
			s->reclaims++;
			done_pos = m;
		} else if (done == s->consumers) {
			return 0;
		} else {
			TEST_CHECK(!expired(s), "reclaimer: no end by the deadline (at %" PRId64 ")",
				   done_pos);
			test_sleep_ns(20000);
		}
	}
}

int test_stress_reclaimer(struct test_stress *s)
{
	struct spw_topic *own, *t;
	int r;

	if (open_topic(s, &own, &t))
		return finish_role(s, NULL, -1);
	r = reclaim_loop(s, t);
	return finish_role(s, own, r);
}

int test_stress_final_check(struct test_stress *s, struct spw_topic *t)
{
	uint64_t total = (uint64_t)s->producers * s->per_producer;
	struct spw_topic_info info;
	int r = spw_topic_info(t, &info);

	TEST_CHECK(r == 0, "spw_topic_info: %d", r);
	for (uint32_t p = 0; p < s->producers; p++)
		TEST_CHECK(s->sent[p] == s->per_producer, "producer %u sent %" PRIu64 " of %" PRIu64,
			   p, s->sent[p], s->per_producer);
	for (uint32_t c = 0; c < s->consumers; c++) {
		for (uint32_t p = 0; p < s->producers; p++)
			TEST_CHECK(s->received[c][p] == s->per_producer,
				   "consumer %u got %" PRIu64 " records of producer %u, sent %" PRIu64, c,
				   s->received[c][p], p, s->per_producer);
		TEST_CHECK(s->bytes_received[c] == s->bytes_received[0],
			   "consumers 0 and %u got different byte counts", c);
		TEST_CHECK(s->final_pos[c] == (int64_t)info.tail,
			   "consumer %u ended at %" PRId64 ", tail %" PRIu64, c, s->final_pos[c], info.tail);
	}
	TEST_CHECK(s->scanned_records == total, "scan counted %" PRIu64 " DATA records of %" PRIu64,
		   s->scanned_records, total);
	TEST_CHECK(info.reclaimed == info.tail && info.limit == info.tail + info.ring_bytes,
		   "at the end: tail %" PRIu64 " reclaimed %" PRIu64 " limit %" PRIu64, info.tail,
		   info.reclaimed, info.limit);
	return 0;
}

void test_stress_print(const struct test_stress *s, const char *what, int64_t elapsed_ns)
{
	uint64_t claims = 0, batched = 0, timeouts = 0;
	uint64_t total = (uint64_t)s->producers * s->per_producer;
	double sec = (double)elapsed_ns / TEST_SEC;

	for (uint32_t p = 0; p < s->producers; p++) {
		claims += s->sent_by_claim[p];
		batched += s->sent_by_batch[p];
		timeouts += s->timeouts[p];
	}
	printf("[ stress   ] %s: %" PRIu64 " records (%" PRIu64 " by claim, %" PRIu64 " in batches), "
	       "%.1f MiB payload, "
	       "%u producers, %u consumers, %" PRIu64 " reclaims, %" PRIu64 " wait timeouts, "
	       "%.2f s (%.0f records/s)\n",
	       what, total, claims, batched, (double)s->bytes_received[0] / (1 << 20), s->producers,
	       s->consumers, s->reclaims, timeouts, sec, sec > 0 ? (double)total / sec : 0.0);
	fflush(stdout);
}

/* ---------------------------------------------------------------------------
 * Running the roles
 */
int test_stress_roles(struct test_stress *s, struct test_stress_role_arg *args)
{
	int n = 0;

	for (uint32_t i = 0; i < s->consumers; i++)
		args[n++] = (struct test_stress_role_arg){ s, TEST_STRESS_CONSUMER, i, -1 };
	args[n++] = (struct test_stress_role_arg){ s, TEST_STRESS_RECLAIMER, 0, -1 };
	for (uint32_t i = 0; i < s->producers; i++)
		args[n++] = (struct test_stress_role_arg){ s, TEST_STRESS_PRODUCER, i, -1 };
	return n;
}

int test_stress_run_role(void *arg)
{
	struct test_stress_role_arg *a = arg;

	switch (a->role) {
	case TEST_STRESS_PRODUCER:
		a->rc = test_stress_producer(a->s, a->id);
		break;
	case TEST_STRESS_CONSUMER:
		a->rc = test_stress_consumer(a->s, a->id);
		break;
	default:
		a->rc = test_stress_reclaimer(a->s);
		break;
	}
	return a->rc;
}

const char *test_stress_role_name(enum test_stress_role r)
{
	return r == TEST_STRESS_PRODUCER ? "producer" :
	       r == TEST_STRESS_CONSUMER ? "consumer" : "reclaimer";
}
