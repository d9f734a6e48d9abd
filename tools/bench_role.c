/* SPDX-License-Identifier: MIT */
/*
 * bench_role.c - the helpers every `spillway bench` worker role uses
 * (tools/bench_role.h).
 */
#define _GNU_SOURCE
#include "bench_role.h"

#include <errno.h>
#include <string.h>

void bw_ready_and_wait(struct bw_ctl *c, struct bw_slot *s)
{
	/* READY after the topics are open; go comes after t0_ns. */
	bench_proc_ready(&s->state, BW_READY, &c->go);
	s->t_start_ns = ring_monotonic_ns();
}

/* Open topic's source for the worker of slot sl, or fail it. */
void bw_src_open(struct bw_slot *sl, const struct bw_params *p, const char *topic,
		     struct src *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	if (p->reader) {
		struct spw_reader_opts o = { 0 };

		o.shm_dir = p->shm_dir;
		o.data_dir = p->data_dir;
		o.start = SPW_START_EARLIEST;
		r = spw_reader_open(topic, &o, &s->r);
	} else {
		r = spw_topic_open(p->shm_dir, topic, 0, &s->t);
		if (!r)
			r = spw_consumer_open(s->t, SPW_FROM_OLDEST, 0, &s->c);
		if (!r && p->backoff_ns)
			r = spw_consumer_set_backoff(s->c, p->backoff_ns);
	}
	if (r)
		fail(sl, "open a %s on %s: %s", p->reader ? "reader" : "consumer", topic,
		     strerror(-r));
}

int bw_src_poll(struct src *s, bool busy, spw_record_fn fn, void *arg, int max)
{
	if (s->r)
		return busy ? spw_reader_poll(s->r, fn, arg, max)
			    : spw_reader_poll_wait(s->r, fn, arg, max, WAIT_SLICE_NS);
	return busy ? spw_consumer_poll(s->c, fn, arg, max)
		    : spw_consumer_poll_wait(s->c, fn, arg, max, WAIT_SLICE_NS);
}

int64_t bw_src_position(const struct src *s)
{
	return s->r ? spw_reader_position(s->r) : spw_consumer_position(s->c);
}

/* Reclaim up to upto when it is a quarter ring past the last bound. */
void bw_src_reclaim(struct bw_slot *sl, struct src *s, int64_t upto, uint64_t ring_bytes)
{
	int r;

	if (upto - s->reclaimed < (int64_t)(ring_bytes / 4))
		return;
	r = spwd_reclaim(s->t, upto);
	if (r)
		fail(sl, "reclaim up to %lld: %s", (long long)upto, strerror(-r));
	s->reclaimed = upto;
}

void bw_pace(uint64_t t0, uint64_t i, uint64_t rate)
{
	uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)rate);

	while (ring_monotonic_ns() < due)
		bench_relax();
}

struct spw_producer *bw_open_producer(struct bw_ctl *c, struct bw_slot *s, const char *topic)
{
	struct spw_topic *t;
	struct spw_producer *p;
	int r = spw_topic_open(c->p.shm_dir, topic, 0, &t);

	if (r)
		fail(s, "open topic %s in %s: %s", topic, c->p.shm_dir, strerror(-r));
	r = spw_producer_open(t, &p);
	if (r)
		fail(s, "producer on %s: %s", topic, strerror(-r));
	return p;
}
