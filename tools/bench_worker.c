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
#include "bench_role.h"

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

/* --- throughput: producers ------------------------------------------------------ */

/* --caller-time: record i's timestamp. The send's time (CLOCK_REALTIME,
 * as the consumers read it) on 1 record in p->sample, which the consumers
 * time; 0 (none) on the rest, no clock read. */
static uint64_t caller_time(const struct bw_params *p, uint64_t i)
{
	return i % (p->sample ? p->sample : 1) == 0 ? ring_realtime_ns() : 0;
}

/* The producer with --batch: up to p->batch records per call, each with
 * its own sequence number; the rate paces each batch's first record. */
static void produce_batches(struct bw_ctl *c, struct bw_slot *s, struct spw_producer *pr)
{
	const struct bw_params *p = &c->p;
	uint32_t n = p->batch, size = p->size;
	unsigned char *buf;
	/* n * size <= 256 MiB: bench_options.c */
	struct spw_msg *m = bench_batch_new(n, size, &buf);
	uint64_t *tss = p->caller_time ? calloc(n, sizeof(*tss)) : NULL;
	uint64_t base = (uint64_t)s->index << SEQ_BITS, i = 0;

	if (!m || (p->caller_time && !tss))
		fail(s, "out of memory");
	bw_ready_and_wait(c, s);
	for (;;) {
		uint32_t k = n;
		int r;

		if (p->count ? i >= p->count
			     /* Relaxed: a request only; the counts travel by state. */
			     : atomic_load_explicit(&c->stop, memory_order_relaxed))
			break;
		if (p->count && p->count - i < k)
			k = (uint32_t)(p->count - i);
		if (p->rate)
			bw_pace(s->t_start_ns, i, p->rate);
		for (uint32_t j = 0; j < k; j++) {
			uint64_t w = base | (i + j);

			memcpy(buf + (size_t)j * size, &w, sizeof(w));
			if (tss)
				tss[j] = caller_time(p, i + j);
		}
		r = bench_send_batch_at(pr, p->busy, m, k, tss);
		if (r < 0) {
			s->records = i;
			fail(s, "send a batch at record %llu to %s: %s%s", (unsigned long long)i,
			     p->topic, strerror(-r),
			     r == -ETIMEDOUT ? " (ring full for 10 s: consumers or daemon stalled)" : "");
		}
		i += k;
	}
	s->records = i;
	s->t_end_ns = ring_monotonic_ns();
	free(tss);
	free(m);
	free(buf);
	done(s);
}

static void run_producer(struct bw_ctl *c, struct bw_slot *s)
{
	const struct bw_params *p = &c->p;
	struct spw_producer *pr = bw_open_producer(c, s, p->topic);
	unsigned char *buf;
	uint64_t base = (uint64_t)s->index << SEQ_BITS, i;

	if (p->batch > 1) {
		produce_batches(c, s, pr);
		return;
	}
	buf = bench_payload(p->size);
	if (!buf)
		fail(s, "out of memory");
	bw_ready_and_wait(c, s);
	for (i = 0;; i++) {
		uint64_t w = base | i, ts;
		int64_t r;

		if (p->count ? i >= p->count
			     : ((i & 15) == 0 &&
				/* Relaxed: a request only; the counts travel by state. */
				atomic_load_explicit(&c->stop, memory_order_relaxed)))
			break;
		if (p->rate)
			bw_pace(s->t_start_ns, i, p->rate);
		memcpy(buf, &w, sizeof(w));
		ts = p->caller_time ? caller_time(p, i) : 0;
		r = bench_send_one_at(pr, p->busy, buf, p->size, p->caller_time ? &ts : NULL);
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
	bool caller_time;  /* time the records that carry one (the producers chose them) */
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
	p->sampled = x->caller_time ? r->timestamp_ns != 0 : --x->until_sample == 0;
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
	int64_t min = bw_src_position(src);

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
	bw_src_reclaim(s, src, min, c->p.ring_bytes);
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
	bw_src_open(s, p, p->topic, &src);
	x->s = s;
	x->size = p->size;
	x->sample = x->until_sample = p->sample ? p->sample : 1;
	x->producers = p->producers;
	x->lapping_ok = p->lapping_ok;
	x->caller_time = p->caller_time;
	/* Release: the start position, before READY (see reclaim_min). */
	atomic_store_explicit(&s->position, bw_src_position(&src), memory_order_release);
	bw_ready_and_wait(c, s);
	last_progress = s->t_start_ns;
	for (;;) {
		int n = bw_src_poll(&src, p->busy, on_record, x, POLL_MAX);

		if (n >= 0)
			rx_commit(x);
		else
			x->pend.valid = false; /* possibly torn: not consumed */
		if (n > 0) {
			s->t_end_ns = last_progress = ring_monotonic_ns();
			if (p->self_reclaim) {
				/* Release: everything below was read (reclaim_min). */
				atomic_store_explicit(&s->position, bw_src_position(&src),
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
			fail(s, "poll %s at position %lld: %s", p->topic, (long long)bw_src_position(&src),
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
			     (long long)bw_src_position(&src), p->topic);
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
	case BW_PINGER: bw_run_pinger(c, s); break;
	case BW_PONGER: bw_run_ponger(c, s); break;
	default: fail(s, "unknown role %d", s->role);
	}
	_exit(1);
}
