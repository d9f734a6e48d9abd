/* SPDX-License-Identifier: MIT */
/*
 * bench_pingpong.c - the round-trip roles of `spillway bench` (pinger and
 * ponger; tools/bench_role.h): a record there, its echo back, timed.
 */
#define _GNU_SOURCE
#include "bench_role.h"

#include <errno.h>
#include <string.h>

/* --caller-time: the timestamp every ping and pong carries (none). */
static const uint64_t zero_time;

struct pong_rx {
	uint32_t size;
	uint64_t expect;
	bool got;
	uint64_t fold;
	struct bw_slot *s;
	uint64_t t1; /* the clock as the handler saw the pong */
};

static int on_pong(void *arg, const struct spw_record *r)
{
	struct pong_rx *x = arg;
	uint64_t seq = 0;

	x->t1 = ring_monotonic_ns();
	if (r->len == x->size && r->len >= sizeof(seq))
		memcpy(&seq, r->data, sizeof(seq));
	if (r->len != x->size || seq != x->expect)
		x->s->bad++;
	x->fold ^= bench_fold(r->data, r->len);
	x->got = true;
	return 1;
}

void bw_run_pinger(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	struct spw_producer *pr = bw_open_producer(c, s, p->topic);
	unsigned char *buf = bench_payload(p->size);
	struct pong_rx x = { p->size, 0, false, 0, s, 0 };
	struct src src;
	bool warm = false;
	uint64_t i;

	if (!buf)
		fail(s, "out of memory");
	bw_src_open(s, p, p->topic2, &src);
	bw_ready_and_wait(c, s);
	for (i = 0;; i++) {
		uint64_t t0, t1, stall = 0;
		int64_t sr;

		if (p->count ? i >= p->warmup + p->count
			     : /* Relaxed: a request only. */
			     atomic_load_explicit(&c->stop, memory_order_relaxed))
			break;
		if (p->rate)
			bw_pace(s->t_start_ns, i, p->rate);
		memcpy(buf, &i, sizeof(i));
		x.expect = i;
		x.got = false;
		t0 = ring_monotonic_ns();
		/* --caller-time: the record carries 0 (no clock read; the trip is
		 * timed by t0 and t1 here). */
		sr = bench_send_one_at(pr, p->busy, buf, p->size, p->caller_time ? &zero_time : NULL);
		if (sr < 0)
			fail(s, "send ping %llu: %s", (unsigned long long)i, strerror((int)-sr));
		while (!x.got) {
			int n = bw_src_poll(&src, p->busy, on_pong, &x, 1);

			if (n < 0)
				fail(s, "poll pong %llu: %s", (unsigned long long)i, strerror(-n));
			if (n == 0)
				ring_cpu_relax(); /* see the ponger */
			if (n == 0 && (++stall & 0xffff) == 0 && ring_monotonic_ns() - t0 > STALL_NS)
				fail(s, "no pong for 10 s after ping %llu", (unsigned long long)i);
		}
		/* From just before the send to the pong's handler, as Aeron's
		 * cping and bench/compare time a trip (docs/HACKING.md). */
		t1 = x.t1;
		/* Warm-up: the first `warmup` round trips, or the first tenth of
		 * a timed run if that ends sooner, are timed and then forgotten. */
		if (!warm && (i == p->warmup ||
			      (p->duration_ns && t1 - s->t_start_ns > p->duration_ns / 10))) {
			hist_init(&s->lat);
			s->records = 0;
			s->t_measure_ns = t1;
			warm = true;
		}
		hist_record(&s->lat, t1 - t0);
		s->records++;
		if (p->self_reclaim)
			bw_src_reclaim(s, &src, bw_src_position(&src), p->ring_bytes);
	}
	s->t_end_ns = ring_monotonic_ns();
	/* The end: a zero-length ping. */
	if (bench_send_one(pr, p->busy, buf, BW_EOF_LEN) < 0)
		fail(s, "send the end marker");
	s->sink = x.fold;
	done(s);
}

struct echo {
	struct spw_producer *pr;
	bool busy, eof, caller_time;
	uint32_t size;
	int64_t err;
	struct bw_slot *s;
};

static int on_ping(void *arg, const struct spw_record *r)
{
	struct echo *e = arg;

	if (r->len == BW_EOF_LEN) {
		e->eof = true;
		return 1;
	}
	if (r->len != e->size)
		e->s->bad++;
	/* Straight from the ring into the pong topic: the one copy. */
	e->err = bench_send_one_at(e->pr, e->busy, r->data, r->len, e->caller_time ? &zero_time : NULL);
	return e->err < 0;
}

static const struct bw_slot *find_role(const struct bw_ctl *c, int role)
{
	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].role == role)
			return &c->slots[i];
	return NULL;
}

void bw_run_ponger(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	const struct bw_slot *pinger = find_role(c, BW_PINGER);
	struct echo e = { bw_open_producer(c, s, p->topic2), p->busy, false, p->caller_time, p->size, 0,
			  s };
	struct src src;
	uint64_t idle = 0, last;

	bw_src_open(s, p, p->topic, &src);
	if (!pinger)
		fail(s, "no pinger");
	bw_ready_and_wait(c, s);
	last = s->t_start_ns;
	while (!e.eof) {
		int n = bw_src_poll(&src, p->busy, on_ping, &e, 1);

		if (e.err < 0)
			fail(s, "send pong: %s", strerror((int)-e.err));
		if (n < 0)
			fail(s, "poll ping at %lld: %s", (long long)bw_src_position(&src), strerror(-n));
		if (n == 0)
			/* A pause after an empty poll: polling again at once takes the
			 * line back from the pinger in the middle of its record (round
			 * trips ~20 ns shorter near, ~100 ns far: docs/HACKING.md). */
			ring_cpu_relax();
		if (n > 0) {
			s->records++;
			if (p->self_reclaim)
				bw_src_reclaim(s, &src, bw_src_position(&src), p->ring_bytes);
			idle = 0;
			last = 0;
			continue;
		}
		if (p->busy && (++idle & 0xffff) != 0)
			continue;
		/* Acquire: the pinger's state; a failed pinger sends no end. */
		if (atomic_load_explicit(&pinger->state, memory_order_acquire) == BW_FAILED)
			break;
		uint64_t now = ring_monotonic_ns();

		if (!last)
			last = now;
		else if (now - last > STALL_NS)
			fail(s, "no ping for 10 s at position %lld", (long long)bw_src_position(&src));
	}
	s->t_end_ns = ring_monotonic_ns();
	done(s);
}
