/* SPDX-License-Identifier: MIT */
/*
 * ack.c - spw_producer_wait_ack: a producer waits until its record is
 * committed (a look at the commit word, then naps), spilled or durable (the
 * daemon's counters, with the ack futex: the sleeper half of ring_layout.h
 * I8, paired with ring/publish.c).
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <time.h>

/* The one clock (ring/clock.c), signed for the timeout arithmetic. */

/* Committed yet? 1 yes, 0 not yet, -EINVAL beyond the tail. */
static int committed(struct spw_topic *t, uint64_t pos)
{
	struct ring_hdr *h = t->hdr;
	uint64_t w;
	int64_t span;

	/* Acquire loads of tail and reclaimed: bounds (pair with the tail CAS
	 * and reclaim's store); the commit word decides. */
	if (pos >= atomic_load_explicit(&h->tail, memory_order_acquire) || (pos & 7))
		return -EINVAL;
	if (pos < atomic_load_explicit(&h->reclaimed, memory_order_acquire))
		return 1; /* reclaimed bytes were committed */
	/* Acquire: pairs with the commit store (I4). */
	w = atomic_load_explicit(&ring_rec_at(t, pos)->commit, memory_order_acquire);
	span = ring_check(t, pos, w);
	if (span > 0)
		return 1;
	if (pos < atomic_load_explicit(&h->reclaimed, memory_order_acquire))
		return 1; /* reclaimed while we looked */
	return span == 0 ? 0 : -EBADMSG;
}

static int wait_committed(struct spw_producer *p, uint64_t pos, int64_t timeout_ns)
{
	uint64_t start = timeout_ns > 0 ? ring_monotonic_ns() : 0;
	long nap = 1000;

	for (unsigned i = 0;; i++) {
		int r = committed(p->t, pos);
		int64_t left;

		if (r)
			return r > 0 ? 0 : r;
		left = ring_wait_left(timeout_ns, start);
		if (left == 0)
			return -ETIMEDOUT;
		if (i < 64) {
			ring_cpu_relax();
			continue;
		}
		/* Another producer's commit has no futex of its own: nap, up
		 * to 1 ms, never past the timeout. */
		struct timespec ts = { 0, nap };

		if (left >= 0 && left < nap)
			ts.tv_nsec = left;
		nanosleep(&ts, NULL);
		if (nap < 1000000)
			nap *= 2;
	}
}

/* Where a spilled or durable acknowledgement of position stands: 0 there,
 * 1 not yet, or the -errno a failed fdatasync left (durable). */
static int ack_state(struct ring_hdr *h, _Atomic uint64_t *counter, enum spw_ack level,
		     int64_t position)
{
	int32_t e;

	/* seq_cst load: spilled/durable are record boundaries, so a counter
	 * past the record's start is past its end. */
	if (atomic_load_explicit(counter, memory_order_seq_cst) > (uint64_t)position)
		return 0;
	/* seq_cst: after the counter; pairs with set_durable_error (I8). */
	if (level != SPW_ACK_DURABLE || !atomic_load_explicit(&h->durable_err, memory_order_seq_cst))
		return 1;
	/* Relaxed: the same word again. A -errno, as the daemon stores it;
	 * anything else is garbage in shared memory, never handed out as a
	 * count (1 would read as "wait"). */
	e = atomic_load_explicit(&h->durable_err, memory_order_relaxed);
	return e < 0 && e >= -4095 ? e : -EIO;
}

int spw_producer_wait_ack(struct spw_producer *p, int64_t position, enum spw_ack level,
			  int64_t timeout_ns)
{
	struct spw_topic *t;
	struct ring_hdr *h;
	_Atomic uint64_t *counter;
	uint64_t start;
	int64_t left;
	uint32_t seq;

	if (!p || position < 0)
		return -EINVAL;
	t = p->t;
	h = t->hdr;
	switch (level) {
	case SPW_ACK_COMMITTED:
		return wait_committed(p, (uint64_t)position, timeout_ns);
	case SPW_ACK_SPILLED:
		counter = &h->spilled;
		break;
	case SPW_ACK_DURABLE:
		counter = &h->durable;
		break;
	default:
		return -EINVAL;
	}
	if (t->flags & SPW_TOPIC_NO_SPILL)
		return -EOPNOTSUPP;
	/* Relaxed: our own process's generation. */
	if (p->fork_gen != ring_fork_gen)
		return -ECHILD;
	/* Acquire: tail only grows (pairs with the claim's CAS or store); a
	 * position not claimed yet, or inside a record, is never spilled: say
	 * so, as committed() does, instead of waiting for ever. */
	if ((uint64_t)position >= atomic_load_explicit(&h->tail, memory_order_acquire) ||
	    (position & 7))
		return -EINVAL;
	start = timeout_ns > 0 ? ring_monotonic_ns() : 0;
	for (;;) {
		/* Acquire: the futex compare value, read before the re-check. */
		seq = atomic_load_explicit(&h->ack_wake, memory_order_acquire);
		/* The sleeper half of I8; pairs with the seq_cst store and waiter
		 * load in spwd_set_counter(). */
		bool registered = ring_waiter_enter(p->fd, t, &h->ack_waiters);
		int r = ack_state(h, counter, level, position);

		/* Not there (looked at just now, after any wake), the ring gone
		 * (spw_topic_delete's mark at once; an unlink within a second),
		 * and no daemon holds it any more (or we cannot tell): it never
		 * will be. While one does, it may still write and sync what it
		 * has as it lets the ring go (spill_stream_close): with
		 * --keep-log that is kept, and an -EIDRM would have the caller
		 * send it twice (a review). Looked at once more after the lock
		 * was found free: the daemon's last counter store came before
		 * its release. */
		if (r == 1 && ring_wait_topic_gone(t, &p->gone_next) && spwd_owned(t) != 1) {
			r = ack_state(h, counter, level, position);
			if (r == 1)
				r = -EIDRM;
		}
		left = ring_wait_left(timeout_ns, start);
		if (r == 1 && left == 0)
			r = -ETIMEDOUT;
		if (r == 1)
			/* Unregistered (no lock): 1 ms naps, never a lost wake. */
			ring_futex_wait(&h->ack_wake, seq,
					registered ? ring_gone_cap(left)
						   : (left < 0 || left > 1000000 ? 1000000 : left));
		if (registered)
			ring_waiter_leave(p->fd, t, &h->ack_waiters);
		if (r != 1)
			return r;
	}
}
