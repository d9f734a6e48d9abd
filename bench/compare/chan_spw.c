/* SPDX-License-Identifier: MIT */
/*
 * chan_spw.c - a Spillway topic as a one-way channel (chan.h).
 *
 * Live (cfg.spill false): a SPW_TOPIC_NO_SPILL topic and no daemon; the
 * receiver reclaims behind itself every quarter ring (the daemon's job,
 * done on the receiver's core), the sender spins (busy) or sleeps on the
 * ring's futex (spw_producer_send_wait) while the ring is full.
 * Spilling (cfg.spill true): a normal topic that the running spillwayd
 * spills and reclaims; the receiver is an spw_reader (disk then live: it
 * never misses a record even when lapped).
 * Receiving is zero copy: the record is read in the ring. Spinning, the
 * batch APIs deliver (peek/release, spw_reader_read); waiting, poll_wait.
 */
#define _GNU_SOURCE
#include "chan.h"

#include "../../tools/bench_proc.h"

#include "ring_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define POLL_MAX 256
#define WAIT_SLICE_NS 10000000ll

int spwc_create(struct chan *ch, char *err, size_t errlen)
{
	struct spw_topic_config cfg = { 0 };
	int r;

	snprintf(ch->topic, sizeof(ch->topic), "compare-%d-%d", (int)getpid(), ch->id);
	cfg.ring_bytes = ch->cfg.buf_bytes;
	cfg.flags = ch->cfg.spill ? 0 : SPW_TOPIC_NO_SPILL;
	r = spw_topic_create(ch->cfg.shm_dir, ch->topic, &cfg);
	if (!r)
		r = spw_topic_open(ch->cfg.shm_dir, ch->topic, 0, &ch->t);
	if (r) {
		snprintf(err, errlen, "topic %s in %s: %s", ch->topic, ch->cfg.shm_dir, strerror(-r));
		ch->topic[0] = '\0';
		return r;
	}
	snprintf(ch->desc, sizeof(ch->desc), "ring %llu KiB, %s",
		 (unsigned long long)(ch->cfg.buf_bytes >> 10),
		 ch->cfg.spill ? "spilled by spillwayd, reader receives"
			       : "no spill, the receiver reclaims");
	return 0;
}

void spwc_destroy(struct chan *ch)
{
	if (ch->t)
		spw_topic_close(ch->t);
	ch->t = NULL;
	if (ch->topic[0])
		spw_topic_delete(ch->cfg.shm_dir, ch->topic);
}

int spwc_open(struct chan *ch, char *err, size_t errlen)
{
	int r;

	/* The parent's mapping came along through fork(); take our own. */
	ch->t = NULL;
	ch->reclaimed = 0;
	ch->next_pos = 0;
	ch->redelivered = 0;
	if (ch->end == CHAN_RX && ch->cfg.spill) {
		struct spw_reader_opts o = { 0 };

		o.shm_dir = ch->cfg.shm_dir;
		o.data_dir = ch->cfg.data_dir;
		o.start = SPW_START_EARLIEST;
		r = spw_reader_open(ch->topic, &o, &ch->r);
		if (r)
			snprintf(err, errlen, "reader on %s: %s", ch->topic, strerror(-r));
		return r;
	}
	r = spw_topic_open(ch->cfg.shm_dir, ch->topic, 0, &ch->t);
	if (!r)
		/* The one producer: exclusive (a plain store of tail, no locked
		 * instruction per send), as Aeron's exclusive publication. */
		r = ch->end == CHAN_TX ? spw_producer_open_flags(ch->t, SPW_PRODUCER_EXCLUSIVE, &ch->p)
				       : spw_consumer_open(ch->t, SPW_FROM_OLDEST, 0, &ch->c);
	if (!r && ch->end == CHAN_RX && ch->cfg.backoff_ns)
		r = spw_consumer_set_backoff(ch->c, ch->cfg.backoff_ns);
	if (r)
		snprintf(err, errlen, "%s on %s: %s", ch->end == CHAN_TX ? "producer" : "consumer",
			 ch->topic, strerror(-r));
	return r;
}

void spwc_close(struct chan *ch)
{
	spw_producer_close(ch->p);
	spw_consumer_close(ch->c);
	spw_reader_close(ch->r);
	spw_topic_close(ch->t);
	ch->p = NULL;
	ch->c = NULL;
	ch->r = NULL;
	ch->t = NULL;
}

int spwc_send(struct chan *ch, const void *data, uint32_t len)
{
	int64_t r = ch->cfg.no_time && ch->cfg.busy ? bench_send_at(ch->p, data, len, 0)
						    : bench_send_one(ch->p, ch->cfg.busy, data, len);

	return r < 0 ? (int)r : 0;
}

int spwc_send_batch(struct chan *ch, const struct spw_msg *m, uint32_t n)
{
	return bench_send_batch(ch->p, ch->cfg.busy, m, n);
}

struct spw_rx {
	struct chan *ch;
	chan_msg_fn fn;
	void *arg;
	int n;
};

static int on_record(void *arg, const struct spw_record *r)
{
	struct spw_rx *x = arg;

	/* A reader lapped while live re-reads from disk the record whose
	 * callback the lap cut short: it arrives twice. Positions only grow:
	 * hand each one out once, count the repeats. */
	if (r->position < x->ch->next_pos) {
		x->ch->redelivered++;
		return 0;
	}
	x->ch->next_pos = r->position + 1;
	if (r->len == 0) {
		x->ch->eof = true;
		return 1;
	}
	x->n++;
	return x->fn(x->arg, r->data, r->len);
}

/* The batch APIs (no callback per record from the library): a reader's
 * spw_reader_read, or the live consumer's peek, then release of what was
 * handed out (the payloads are read in the ring before the release). */
static int recv_batch(struct spw_rx *x, bool busy)
{
	struct spw_record recs[POLL_MAX];
	int n, k = 0;

	if (x->ch->r)
		n = spw_reader_read(x->ch->r, recs, POLL_MAX, busy ? 0 : WAIT_SLICE_NS);
	else
		n = spw_consumer_peek(x->ch->c, recs, POLL_MAX);
	if (n <= 0)
		return n;
	while (k < n && !on_record(x, &recs[k]))
		k++;
	if (k < n)
		k++; /* the record that stopped it (the end) was taken too */
	return x->ch->r ? k : spw_consumer_release(x->ch->c, recs, k);
}

int spwc_recv(struct chan *ch, chan_msg_fn fn, void *arg)
{
	struct spw_rx x = { ch, fn, arg, 0 };
	bool busy = ch->cfg.busy;
	int r;

	if (busy || ch->r)
		r = recv_batch(&x, busy);
	else
		r = spw_consumer_poll_wait(ch->c, on_record, &x, POLL_MAX, WAIT_SLICE_NS);
	if (r < 0)
		return r;
	if (ch->c) {
		/* No daemon: free what we read, a quarter ring at a time. The
		 * position is a record boundary below which all was read. */
		int64_t pos = spw_consumer_position(ch->c);

		if (pos - ch->reclaimed >= (int64_t)(ch->cfg.buf_bytes / 4) ||
		    (ch->eof && pos > ch->reclaimed)) {
			int e = spwd_reclaim(ch->t, pos);

			if (e)
				return e;
			ch->reclaimed = pos;
		}
	}
	if (x.n)
		return x.n;
	return ch->eof ? -ENODATA : 0;
}
