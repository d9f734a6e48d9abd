/* SPDX-License-Identifier: MIT */
/*
 * bench_worker.c - producer, consumer, pinger and ponger processes
 * (bench_worker.h).
 *
 * Records: the first 8 bytes are (producer index << 48 | sequence), the
 * rest a fixed pattern. Consumers check the length and that each producer's
 * sequence goes up by one, and read every payload byte (bench_fold).
 *
 * Reclaiming without a daemon (params.self_reclaim): the topic is
 * SPW_TOPIC_NO_SPILL and consumer 0 plays the daemon's part: whenever the
 * lowest position of all consumers (published in their slots) is a quarter
 * ring past what it last reclaimed, it reclaims up to there. A position is a
 * record boundary below which that consumer has read everything, so the
 * minimum is one too (what spwd_reclaim() requires). Producers that
 * find the ring full spin (busy) or sleep on its futex until then.
 */
#define _GNU_SOURCE
#include "bench_worker.h"

#include "bench_proc.h"
#include "bench_topo.h"

#include "ring_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define POLL_MAX 256
#define WAIT_SLICE_NS 10000000ll    /* blocking polls return after 10 ms idle */
#define STALL_NS 10000000000ull     /* no progress for 10 s: broken */
#define TAIL_GRACE_NS 2000000000ull /* producers done, nothing new for 2 s: missing */
#define SEQ_BITS 48
#define SEQ_MASK ((1ull << SEQ_BITS) - 1)

struct bw_ctl *bw_ctl_new(const struct bw_params *p, int n)
{
	size_t bytes = sizeof(struct bw_ctl) + (size_t)n * sizeof(struct bw_slot);
	struct bw_ctl *c;

	if (n <= 0 || n > BW_MAX_WORKERS)
		return NULL;
	c = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	/* Fresh anonymous memory is zero: go, stop, every state STARTING. */
	c->p = *p;
	c->nslots = n;
	for (int i = 0; i < n; i++)
		hist_init(&c->slots[i].lat);
	return c;
}

void bw_ctl_free(struct bw_ctl *c)
{
	if (c)
		munmap(c, sizeof(struct bw_ctl) + (size_t)c->nslots * sizeof(struct bw_slot));
}

/* --- helpers every role uses ------------------------------------------------ */

/* The hand-off with the parent (tools/bench_proc.h): err and the counts,
 * times and histogram are published by the state stores. */
#define fail(s, ...) \
	bench_proc_fail(&(s)->state, BW_FAILED, (s)->err, sizeof((s)->err), __VA_ARGS__)
#define done(s) bench_proc_exit(&(s)->state, BW_DONE, 0)

static void ready_and_wait(struct bw_ctl *c, struct bw_slot *s)
{
	/* READY after the topics are open; go comes after t0_ns. */
	bench_proc_ready(&s->state, BW_READY, &c->go);
	s->t_start_ns = ring_monotonic_ns();
}

/* Where a consumer reads: a live consumer, or a reader (disk then live). */
struct src {
	struct spw_topic *t;
	struct spw_consumer *c;
	struct spw_reader *r;
	int64_t reclaimed; /* the bound this process last reclaimed to */
};

/* Open topic's source for the worker of slot sl, or fail it. */
static void src_open(struct bw_slot *sl, const struct bw_params *p, const char *topic,
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
	}
	if (r)
		fail(sl, "open a %s on %s: %s", p->reader ? "reader" : "consumer", topic,
		     strerror(-r));
}

static int src_poll(struct src *s, bool busy, spw_record_fn fn, void *arg, int max)
{
	if (s->r)
		return busy ? spw_reader_poll(s->r, fn, arg, max)
			    : spw_reader_poll_wait(s->r, fn, arg, max, WAIT_SLICE_NS);
	return busy ? spw_consumer_poll(s->c, fn, arg, max)
		    : spw_consumer_poll_wait(s->c, fn, arg, max, WAIT_SLICE_NS);
}

static int64_t src_position(const struct src *s)
{
	return s->r ? spw_reader_position(s->r) : spw_consumer_position(s->c);
}

/* Reclaim up to upto when it is a quarter ring past the last bound. */
static void src_reclaim(struct bw_slot *sl, struct src *s, int64_t upto, uint64_t ring_bytes)
{
	int r;

	if (upto - s->reclaimed < (int64_t)(ring_bytes / 4))
		return;
	r = spwd_reclaim(s->t, upto);
	if (r)
		fail(sl, "reclaim up to %lld: %s", (long long)upto, strerror(-r));
	s->reclaimed = upto;
}

/* Send one record: spin on a full ring (busy) or sleep on its futex. */
static int64_t send_one(struct spw_producer *p, bool busy, const void *buf, uint32_t len)
{
	uint64_t spins = 0, t0 = 0;
	int64_t r;

	if (!busy)
		return spw_producer_send_wait(p, buf, len, (int64_t)STALL_NS);
	while ((r = spw_producer_send(p, buf, len)) == -EAGAIN) {
		if ((++spins & 0xffff) == 0) {
			uint64_t now = ring_monotonic_ns();

			if (!t0)
				t0 = now;
			else if (now - t0 > STALL_NS)
				return -ETIMEDOUT;
		}
		bench_relax();
	}
	return r;
}

static void pace(uint64_t t0, uint64_t i, uint64_t rate)
{
	uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)rate);

	while (ring_monotonic_ns() < due)
		bench_relax();
}

static struct spw_producer *open_producer(struct bw_ctl *c, struct bw_slot *s, const char *topic)
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

/* --- throughput: producers ------------------------------------------------------ */

static void run_producer(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	struct spw_producer *pr = open_producer(c, s, p->topic);
	unsigned char *buf = bench_payload(p->size);
	uint64_t base = (uint64_t)s->index << SEQ_BITS, i;

	if (!buf)
		fail(s, "out of memory");
	ready_and_wait(c, s);
	for (i = 0;; i++) {
		uint64_t w = base | i;
		int64_t r;

		if (p->count ? i >= p->count
			     : ((i & 15) == 0 &&
				/* Relaxed: a request only; the counts travel by state. */
				atomic_load_explicit(&c->stop, memory_order_relaxed)))
			break;
		if (p->rate)
			pace(s->t_start_ns, i, p->rate);
		memcpy(buf, &w, sizeof(w));
		r = send_one(pr, p->busy, buf, p->size);
		if (r < 0) {
			s->records = i;
			fail(s, "send record %llu to %s: %s%s", (unsigned long long)i, p->topic,
			     strerror((int)-r),
			     r == -ETIMEDOUT ? " (ring full for 10 s: consumers or daemon stalled)" : "");
		}
	}
	s->records = i;
	s->t_end_ns = ring_monotonic_ns();
	done(s);
}

/* --- throughput: consumers -------------------------------------------------------- */

/*
 * A record is only consumed once the poll that delivered it has returned
 * without -ESTALE: when the ring laps the consumer while the callback reads
 * a record (a daemon reclaiming, --daemon), poll reports -ESTALE and the
 * bytes the callback saw may be torn. So each record's effect waits in
 * `pend` until the next record or the end of the poll commits it, and an
 * -ESTALE drops it.
 */
struct rx_pending {
	bool valid, sampled;
	uint32_t len;
	uint64_t word;       /* producer << 48 | sequence */
	uint64_t now, ts;    /* the latency sample */
};

struct rx {
	struct bw_slot *s;
	uint32_t size, sample, until_sample;
	int producers;
	bool lapping_ok;
	uint64_t fold;
	uint64_t next[BW_MAX_WORKERS]; /* next sequence expected per producer */
	int64_t next_pos;              /* after the last record taken */
	struct rx_pending pend;
};

static void rx_commit(struct rx *x)
{
	struct rx_pending *p = &x->pend;
	struct bw_slot *s = x->s;
	uint64_t k = p->word >> SEQ_BITS, seq = p->word & SEQ_MASK;

	if (!p->valid)
		return;
	p->valid = false;
	s->records++;
	if (p->len != x->size || k >= (uint64_t)x->producers) {
		s->bad++;
	} else if (seq == x->next[k]) {
		x->next[k]++;
	} else if (seq > x->next[k]) {
		/* A gap: lapped (records reclaimed before we read them) or lost. */
		if (x->lapping_ok)
			s->lost += seq - x->next[k];
		else
			s->bad++;
		x->next[k] = seq + 1;
	} else {
		s->bad++; /* a duplicate or out of order */
	}
	if (!p->sampled)
		return;
	if (p->now >= p->ts) {
		hist_record(&s->lat, p->now - p->ts);
	} else {
		s->clock_skew++;
		hist_record(&s->lat, 0);
	}
}

static int on_record(void *arg, const struct spw_record *r)
{
	struct rx *x = arg;
	struct rx_pending *p = &x->pend;

	/* A reader lapped while live re-reads from disk the record whose
	 * callback the lap cut short: it arrives twice. Positions only grow:
	 * take each once, count the repeats. */
	if (r->position < x->next_pos) {
		x->s->redelivered++;
		return 0;
	}
	x->next_pos = r->position + 1;
	rx_commit(x);
	p->valid = true;
	p->len = r->len;
	p->word = 0;
	if (r->len >= sizeof(p->word))
		memcpy(&p->word, r->data, sizeof(p->word));
	x->fold ^= bench_fold(r->data, r->len);
	p->sampled = --x->until_sample == 0;
	if (p->sampled) {
		x->until_sample = x->sample;
		p->now = ring_realtime_ns();
		p->ts = r->timestamp_ns;
	}
	return 0;
}

/* Every producer DONE and each one's records seen? FAILED counts as done:
 * the parent reports it. */
static bool all_seen(struct bw_ctl *c, const struct rx *x, bool *producers_done)
{
	bool seen = true;

	*producers_done = true;
	for (int i = 0; i < c->nslots; i++) {
		struct bw_slot *ps = &c->slots[i];
		/* Acquire: pairs with done()'s release store: records is final. */
		int st = atomic_load_explicit(&ps->state, memory_order_acquire);

		if (ps->role != BW_PRODUCER)
			continue;
		if (st != BW_DONE && st != BW_FAILED)
			*producers_done = seen = false;
		else if (st == BW_DONE && x->next[ps->index] < ps->records)
			seen = false;
	}
	return seen;
}

/* Consumer 0 without a daemon: reclaim to the lowest consumer position. */
static void reclaim_min(struct bw_ctl *c, struct bw_slot *s, struct src *src)
{
	int64_t min = src_position(src);

	for (int i = 0; i < c->nslots; i++) {
		struct bw_slot *o = &c->slots[i];

		if (o->role != BW_CONSUMER || o == s)
			continue;
		/* Acquire: pairs with that consumer's release store below: it
		 * has finished reading everything under the position. */
		int64_t p = atomic_load_explicit(&o->position, memory_order_acquire);

		if (p < min)
			min = p;
	}
	src_reclaim(s, src, min, c->p.ring_bytes);
}

static void run_consumer(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	struct rx *x = calloc(1, sizeof(*x));
	struct src src;
	uint64_t idle = 0, last_progress;
	bool producers_done = false;

	if (!x)
		fail(s, "out of memory");
	src_open(s, p, p->topic, &src);
	x->s = s;
	x->size = p->size;
	x->sample = x->until_sample = p->sample ? p->sample : 1;
	x->producers = p->producers;
	x->lapping_ok = p->lapping_ok;
	/* Release: the start position, before READY (see reclaim_min). */
	atomic_store_explicit(&s->position, src_position(&src), memory_order_release);
	ready_and_wait(c, s);
	last_progress = s->t_start_ns;
	for (;;) {
		int n = src_poll(&src, p->busy, on_record, x, POLL_MAX);

		if (n >= 0)
			rx_commit(x);
		else
			x->pend.valid = false; /* possibly torn: not consumed */
		if (n > 0) {
			s->t_end_ns = last_progress = ring_monotonic_ns();
			if (p->self_reclaim) {
				/* Release: everything below was read (reclaim_min). */
				atomic_store_explicit(&s->position, src_position(&src),
						      memory_order_release);
				if (s->index == 0)
					reclaim_min(c, s, &src);
			}
			continue;
		}
		if (n == -ESTALE && p->lapping_ok && src.c) {
			s->lapped++;
			if (spw_consumer_seek(src.c, spw_consumer_oldest(src.c)) == 0)
				continue;
		}
		if (n < 0)
			fail(s, "poll %s at position %lld: %s", p->topic, (long long)src_position(&src),
			     strerror(-n));
		if (p->busy && (++idle & 63) != 0) {
			bench_relax();
			continue;
		}
		if (p->self_reclaim && s->index == 0)
			reclaim_min(c, s, &src);
		if (all_seen(c, x, &producers_done))
			break;
		uint64_t now = ring_monotonic_ns();

		if (producers_done && now - last_progress > TAIL_GRACE_NS)
			break;
		if (now - last_progress > STALL_NS)
			fail(s, "no record for 10 s at position %lld of %s",
			     (long long)src_position(&src), p->topic);
	}
	/* Records never seen (lapped at the very end, or lost). */
	for (int i = 0; i < c->nslots; i++) {
		struct bw_slot *ps = &c->slots[i];

		if (ps->role == BW_PRODUCER &&
		    atomic_load_explicit(&ps->state, memory_order_acquire) == BW_DONE &&
		    x->next[ps->index] < ps->records) {
			if (!p->lapping_ok)
				fail(s, "%llu records of producer %d never arrived",
				     (unsigned long long)(ps->records - x->next[ps->index]), ps->index);
			s->lost += ps->records - x->next[ps->index];
		}
	}
	s->sink = x->fold; /* keeps the payload reads from being optimised away */
	done(s);
}

/* --- ping-pong ------------------------------------------------------------------ */

struct pong_rx {
	uint32_t size;
	uint64_t expect;
	bool got;
	uint64_t fold;
	struct bw_slot *s;
};

static int on_pong(void *arg, const struct spw_record *r)
{
	struct pong_rx *x = arg;
	uint64_t seq = 0;

	if (r->len == x->size && r->len >= sizeof(seq))
		memcpy(&seq, r->data, sizeof(seq));
	if (r->len != x->size || seq != x->expect)
		x->s->bad++;
	x->fold ^= bench_fold(r->data, r->len);
	x->got = true;
	return 1;
}

static void run_pinger(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	struct spw_producer *pr = open_producer(c, s, p->topic);
	unsigned char *buf = bench_payload(p->size);
	struct pong_rx x = { p->size, 0, false, 0, s };
	struct src src;
	bool warm = false;
	uint64_t i;

	if (!buf)
		fail(s, "out of memory");
	src_open(s, p, p->topic2, &src);
	ready_and_wait(c, s);
	for (i = 0;; i++) {
		uint64_t t0, t1, stall = 0;
		int64_t sr;

		if (p->count ? i >= p->warmup + p->count
			     : /* Relaxed: a request only. */
			     atomic_load_explicit(&c->stop, memory_order_relaxed))
			break;
		if (p->rate)
			pace(s->t_start_ns, i, p->rate);
		memcpy(buf, &i, sizeof(i));
		x.expect = i;
		x.got = false;
		t0 = ring_monotonic_ns();
		sr = send_one(pr, p->busy, buf, p->size);
		if (sr < 0)
			fail(s, "send ping %llu: %s", (unsigned long long)i, strerror((int)-sr));
		while (!x.got) {
			int n = src_poll(&src, p->busy, on_pong, &x, 1);

			if (n < 0)
				fail(s, "poll pong %llu: %s", (unsigned long long)i, strerror(-n));
			if (n == 0 && (++stall & 0xffff) == 0 && ring_monotonic_ns() - t0 > STALL_NS)
				fail(s, "no pong for 10 s after ping %llu", (unsigned long long)i);
		}
		t1 = ring_monotonic_ns();
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
			src_reclaim(s, &src, src_position(&src), p->ring_bytes);
	}
	s->t_end_ns = ring_monotonic_ns();
	/* The end: a zero-length ping. */
	if (send_one(pr, p->busy, buf, BW_EOF_LEN) < 0)
		fail(s, "send the end marker");
	s->sink = x.fold;
	done(s);
}

struct echo {
	struct spw_producer *pr;
	bool busy, eof;
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
	e->err = send_one(e->pr, e->busy, r->data, r->len);
	return e->err < 0;
}

static const struct bw_slot *find_role(const struct bw_ctl *c, int role)
{
	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].role == role)
			return &c->slots[i];
	return NULL;
}

static void run_ponger(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	const struct bw_slot *pinger = find_role(c, BW_PINGER);
	struct echo e = { open_producer(c, s, p->topic2), p->busy, false, p->size, 0, s };
	struct src src;
	uint64_t idle = 0, last;

	src_open(s, p, p->topic, &src);
	if (!pinger)
		fail(s, "no pinger");
	ready_and_wait(c, s);
	last = s->t_start_ns;
	while (!e.eof) {
		int n = src_poll(&src, p->busy, on_ping, &e, 1);

		if (e.err < 0)
			fail(s, "send pong: %s", strerror((int)-e.err));
		if (n < 0)
			fail(s, "poll ping at %lld: %s", (long long)src_position(&src), strerror(-n));
		if (n > 0) {
			s->records++;
			if (p->self_reclaim)
				src_reclaim(s, &src, src_position(&src), p->ring_bytes);
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
			fail(s, "no ping for 10 s at position %lld", (long long)src_position(&src));
	}
	s->t_end_ns = ring_monotonic_ns();
	done(s);
}

pid_t bw_spawn(struct bw_ctl *c, int i)
{
	struct bw_slot *s = &c->slots[i];
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	s->pinned = topo_bind_thread(s->pu) == 0;
	switch (s->role) {
	case BW_PRODUCER: run_producer(c, s); break;
	case BW_CONSUMER: run_consumer(c, s); break;
	case BW_PINGER: run_pinger(c, s); break;
	case BW_PONGER: run_ponger(c, s); break;
	default: fail(s, "unknown role %d", s->role);
	}
	_exit(1);
}
