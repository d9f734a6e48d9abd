/* SPDX-License-Identifier: MIT */
/*
 * produce.c - the producers' hot path: claim, write, commit (ring_layout.h
 * I1-I4, I6, I8).
 *
 * Per record: one CAS on tail, one CAS of the CLAIMED header (from 0, so a
 * claim the daemon aborted is never overwritten), the payload, one CAS of
 * the commit word, and one load of the consumers' waiter count.
 * No syscall, no lock, no other shared write. The shared lines touched are
 * tail (read-write), limit and cons_waiters (read-mostly) and the record.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void (*ring_test_hook_after_claim)(void);

/* Spin this long before sleeping on the futex: a sleep/wake costs ~20 us here. */
#define SPIN_NS 20000ull
#define PREFETCH_BYTES 2048u

int spw_producer_open(struct spw_topic *t, struct spw_producer **out)
{
	struct spw_producer *p;

	if (!t || !out)
		return -EINVAL;
	*out = NULL;
	if (t->rdonly)
		return -EPERM;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->t = t;
	ring_clock_init(&p->clk);
	*out = p;
	return 0;
}

void spw_producer_close(struct spw_producer *p)
{
	free(p);
}

static int claim(struct spw_producer *p, uint32_t len, struct spw_claim *c)
{
	struct spw_topic *t = p->t;
	struct ring_hdr *h = t->hdr;
	uint64_t span, tail, off, pad, next, lim;
	struct ring_rec *r;

	if (len > t->max_record)
		return -EMSGSIZE;
	span = ring_span(len);
	/* Relaxed: only the CAS's first guess; the CAS validates it. */
	tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	for (;;) {
		off = tail & t->mask;
		pad = off + span > t->ring_bytes ? t->ring_bytes - off : 0; /* I6 */
		next = tail + pad + span;
		/* seq_cst: acquire pairs with reclaim's store of limit after
		 * zeroing (I3: our span reads as zero until we write it); seq_cst
		 * makes it the re-check half of I8 in claim_wait(). */
		lim = atomic_load_explicit(&h->limit, memory_order_seq_cst);
		if (next > lim) {
			uint64_t fresh = atomic_load_explicit(&h->tail, memory_order_relaxed);

			if (fresh != tail) {
				tail = fresh;
				continue;
			}
			return -EAGAIN;
		}
		/* seq_cst CAS (a locked instruction anyway): takes [tail, next)
		 * for us (I2); acquire on failure is not needed, we only retry. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &tail, next,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
	}
	/* Write-prefetch ahead of the tail: the commit CAS is a locked
	 * instruction and would otherwise wait for each cold line's fetch
	 * (rings bigger than the cache: ~120 ns a record instead of ~25). */
	__builtin_prefetch(t->data + ((next + PREFETCH_BYTES) & t->mask), 1, 3);
	__builtin_prefetch(t->data + ((next + PREFETCH_BYTES + 64) & t->mask), 1, 3);
	if (__builtin_expect(ring_test_hook_after_claim != NULL, 0))
		ring_test_hook_after_claim();
	if (pad) {
		uint64_t zero = 0;

		/* CAS from 0, release: consumers acquire-load it (I6). It fails
		 * only if the daemon already aborted this span as a dead claim
		 * (I7): its ABORTED record then covers the padding the same way,
		 * so there is nothing to do. */
		atomic_compare_exchange_strong_explicit(
			&ring_rec_at(t, tail)->commit, &zero,
			RING_W_COMMITTED | RING_W_CLAIMED | RING_W_MAKE(RING_T_PADDING, pad),
			memory_order_release, memory_order_relaxed);
		tail += pad;
	}
	r = ring_rec_at(t, tail);
	/* CAS from 0 (I4, I7): if the daemon took this claim for a dead one
	 * before we got here (we were stalled past the unblock timeout), its
	 * ABORTED word is there and we must not overwrite it: -ECANCELED, the
	 * caller resends. seq_cst (a locked instruction on x86 anyway) also
	 * keeps every payload store after it: the unblock scan treats the first
	 * non-zero word as the next header, so the header must come first. */
	{
		uint64_t zero = 0;

		if (!atomic_compare_exchange_strong_explicit(
			    &r->commit, &zero, RING_W_CLAIMED | RING_W_MAKE(RING_T_DATA, len),
			    memory_order_seq_cst, memory_order_relaxed))
			return -ECANCELED;
	}
	r->timestamp_ns = ring_clock_now(&p->clk);
	c->data = r + 1;
	c->len = len;
	c->reserved = 0;
	c->position = (int64_t)tail;
	c->hdr_ = r;
	return 0;
}

static int64_t now_ns(void)
{
	return (int64_t)ring_monotonic_ns();
}

static int claim_wait(struct spw_producer *p, uint32_t len, int64_t timeout_ns,
		      struct spw_claim *c)
{
	struct ring_hdr *h = p->t->hdr;
	int64_t start = now_ns(), left;
	uint32_t seq;
	int r;

	/* Spin first: the daemon usually frees room within microseconds. */
	for (unsigned i = 1;; i++) {
		r = claim(p, len, c);
		if (r != -EAGAIN)
			return r;
		if ((i & 63) == 0 && now_ns() - start >= (int64_t)SPIN_NS)
			break;
		ring_cpu_relax();
	}
	for (;;) {
		/* Acquire: the value FUTEX_WAIT compares; read before the
		 * re-check so a wake in between makes the wait return at once. */
		seq = atomic_load_explicit(&h->prod_wake, memory_order_acquire);
		/* seq_cst: the sleeper half of I8; pairs with the seq_cst load of
		 * prod_waiters in spw_topic_reclaim(), after its store of limit. */
		atomic_fetch_add_explicit(&h->prod_waiters, 1, memory_order_seq_cst);
		r = claim(p, len, c);
		if (r == -EAGAIN) {
			left = timeout_ns < 0 ? -1 : timeout_ns - (now_ns() - start);
			if (timeout_ns >= 0 && left <= 0)
				r = -ETIMEDOUT;
			else
				ring_futex_wait(&h->prod_wake, seq, left);
		}
		/* Relaxed: only a hint for wakers; an extra wake is harmless. */
		atomic_fetch_sub_explicit(&h->prod_waiters, 1, memory_order_relaxed);
		if (r != -EAGAIN)
			return r;
	}
}

int spw_producer_claim(struct spw_producer *p, uint32_t len, struct spw_claim *c)
{
	if (!p || !c)
		return -EINVAL;
	return claim(p, len, c);
}

int spw_producer_claim_wait(struct spw_producer *p, uint32_t len, int64_t timeout_ns,
			    struct spw_claim *c)
{
	if (!p || !c)
		return -EINVAL;
	return claim_wait(p, len, timeout_ns, c);
}

static int finish(struct spw_producer *p, struct spw_claim *c, uint64_t final)
{
	struct ring_rec *r;
	uint64_t expect;

	if (!p || !c || !c->hdr_)
		return -EINVAL;
	r = c->hdr_;
	expect = RING_W_CLAIMED | RING_W_MAKE(RING_T_DATA, c->len);
	c->hdr_ = NULL;
	/* seq_cst CAS: release publishes the header and payload to readers
	 * (pairs with their acquire load of the commit word, I4); it fails
	 * only if the daemon aborted this claim (I7); and as a full barrier it
	 * orders the commit before the waiter load in ring_wake_consumers (I8). */
	if (!atomic_compare_exchange_strong_explicit(&r->commit, &expect, final,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return -ECANCELED;
	ring_wake_consumers(p->t);
	return 0;
}

int spw_producer_commit(struct spw_producer *p, struct spw_claim *c)
{
	if (!c)
		return -EINVAL;
	return finish(p, c, RING_W_COMMITTED | RING_W_CLAIMED | RING_W_MAKE(RING_T_DATA, c->len));
}

int spw_producer_abort(struct spw_producer *p, struct spw_claim *c)
{
	if (!c)
		return -EINVAL;
	return finish(p, c, RING_W_COMMITTED | RING_W_CLAIMED |
				    RING_W_MAKE(RING_T_ABORTED, ring_span(c->len)));
}

static int64_t send_claimed(struct spw_producer *p, struct spw_claim *c, const void *data,
			    uint32_t len)
{
	int r;

	if (len)
		memcpy(c->data, data, len);
	r = finish(p, c, RING_W_COMMITTED | RING_W_CLAIMED | RING_W_MAKE(RING_T_DATA, len));
	return r ? r : c->position;
}

int64_t spw_producer_send(struct spw_producer *p, const void *data, uint32_t len)
{
	struct spw_claim c;
	int r;

	if (!p || (!data && len))
		return -EINVAL;
	r = claim(p, len, &c);
	if (r)
		return r;
	return send_claimed(p, &c, data, len);
}

int64_t spw_producer_send_wait(struct spw_producer *p, const void *data, uint32_t len,
			       int64_t timeout_ns)
{
	struct spw_claim c;
	int r;

	if (!p || (!data && len))
		return -EINVAL;
	r = claim_wait(p, len, timeout_ns, &c);
	if (r)
		return r;
	return send_claimed(p, &c, data, len);
}

int spw_producer_wait_ack(struct spw_producer *p, int64_t position, enum spw_ack level,
			  int64_t timeout_ns)
{
	struct ring_hdr *h;
	_Atomic uint64_t *counter;
	int64_t start, left;
	uint32_t seq;

	if (!p || position < 0)
		return -EINVAL;
	h = p->t->hdr;
	switch (level) {
	case SPW_ACK_COMMITTED: {
		/* Our own commit is synchronous: committed once commit returned.
		 * For another producer's record, look at its commit word. */
		struct spw_topic *t = p->t;
		uint64_t w;

		/* Acquire loads of tail and reclaimed: bounds (pair with the
		 * tail CAS and reclaim's store); the commit word decides. */
		if ((uint64_t)position >= atomic_load_explicit(&h->tail, memory_order_acquire))
			return -EINVAL;
		if ((uint64_t)position < atomic_load_explicit(&h->reclaimed, memory_order_acquire))
			return 0; /* reclaimed bytes were committed */
		/* Acquire: pairs with the commit CAS (I4). */
		w = atomic_load_explicit(&ring_rec_at(t, (uint64_t)position)->commit,
					 memory_order_acquire);
		return (w & RING_W_COMMITTED) ? 0 : -EAGAIN;
	}
	case SPW_ACK_SPILLED:
		counter = &h->spilled;
		break;
	case SPW_ACK_DURABLE:
		counter = &h->durable;
		break;
	default:
		return -EINVAL;
	}
	if (p->t->flags & SPW_TOPIC_NO_SPILL)
		return -EOPNOTSUPP;
	start = now_ns();
	for (;;) {
		/* Acquire: the futex compare value, read before the re-check. */
		seq = atomic_load_explicit(&h->ack_wake, memory_order_acquire);
		/* seq_cst: the sleeper half of I8; pairs with the seq_cst store
		 * and waiter load in spw_topic_set_counter(). */
		atomic_fetch_add_explicit(&h->ack_waiters, 1, memory_order_seq_cst);
		/* seq_cst load: spilled/durable are record boundaries, so a
		 * counter past the record's start is past its end. */
		if (atomic_load_explicit(counter, memory_order_seq_cst) > (uint64_t)position) {
			atomic_fetch_sub_explicit(&h->ack_waiters, 1, memory_order_relaxed);
			return 0;
		}
		left = timeout_ns < 0 ? -1 : timeout_ns - (now_ns() - start);
		if (timeout_ns >= 0 && left <= 0) {
			/* Relaxed: a hint for the waker only. */
			atomic_fetch_sub_explicit(&h->ack_waiters, 1, memory_order_relaxed);
			return -ETIMEDOUT;
		}
		ring_futex_wait(&h->ack_wake, seq, left);
		/* Relaxed: a hint for the waker only. */
		atomic_fetch_sub_explicit(&h->ack_waiters, 1, memory_order_relaxed);
	}
}
