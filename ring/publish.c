/* SPDX-License-Identifier: MIT */
/*
 * publish.c - what the daemon publishes in the ring header for everyone to see
 * (ring_layout.h I1, I8): ownership of the ring, spilled and durable, the
 * stall it waits on, durability and disk damage, the heartbeat; and the
 * producer slots as stat shows them. One daemon per topic: these fields have
 * this single writer.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


int spwd_own(struct spw_topic *t, uint32_t *owner_pid)
{
	int fd, r;

	if (owner_pid)
		*owner_pid = 0;
	if (!t || t->rdonly)
		return -EINVAL;
	if (t->own_fd >= 0)
		return 0;
	fd = ring_reopen(t);
	if (fd < 0)
		return fd;
	r = ring_lock(fd, RING_DAEMON_OFF, true);
	if (r) {
		close(fd);
		if (r == -EAGAIN) {
			if (owner_pid)
				*owner_pid = ring_lock_owner_pid(t, RING_DAEMON_OFF);
			return -EBUSY;
		}
		return r;
	}
	t->own_fd = fd;
	return 0;
}

int spwd_owned(const struct spw_topic *t)
{
	if (!t)
		return -EINVAL;
	if (t->own_fd >= 0)
		return 1; /* we are the daemon: no need to ask */
	return ring_lock_held(t, RING_DAEMON_OFF);
}

/* After a seq_cst store of what acknowledgement waiters wait on (a counter,
 * durable_err): this seq_cst load of the waiter count is the waker half of
 * I8 for spw_producer_wait_ack(), whose waiters register, then re-check. */
static void wake_ack_waiters(struct spw_topic *t)
{
	if (atomic_load_explicit(&t->hdr->ack_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&t->hdr->ack_wake, 1, memory_order_seq_cst);
		ring_futex_wake_all(&t->hdr->ack_wake);
	}
}

int spwd_set_durable_error(struct spw_topic *t, int err)
{
	if (!t || t->rdonly || err > 0)
		return -EINVAL;
	/* seq_cst store, then the waiter load (wake_ack_waiters). */
	atomic_store_explicit(&t->hdr->durable_err, err, memory_order_seq_cst);
	wake_ack_waiters(t);
	return 0;
}

int spwd_set_disk_damage(struct spw_topic *t, uint64_t bad_ranges)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: an advisory report for stat. */
	atomic_store_explicit(&t->hdr->disk_bad_ranges, bad_ranges, memory_order_relaxed);
	return 0;
}

int spwd_set_spill_error(struct spw_topic *t, int err)
{
	if (!t || t->rdonly || err > 0)
		return -EINVAL;
	/* Relaxed: advisory, for stat and for producers that wait. */
	atomic_store_explicit(&t->hdr->spill_err, err, memory_order_relaxed);
	return 0;
}

int spwd_add_retention_forced(struct spw_topic *t, uint64_t segments)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: an advisory count for stat; one daemon writes it. */
	atomic_fetch_add_explicit(&t->hdr->retention_forced, segments, memory_order_relaxed);
	return 0;
}

int spwd_set_stall(struct spw_topic *t, int32_t slot, int64_t position, uint32_t pid,
			uint64_t since_ns)
{
	struct ring_hdr *h;

	if (!t || t->rdonly)
		return -EINVAL;
	h = t->hdr;
	/* Relaxed: an advisory report for stat; torn combinations are
	 * harmless (stat shows what it reads). */
	atomic_store_explicit(&h->stall_pos, slot >= 0 ? (uint64_t)position : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_pid, slot >= 0 ? pid : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_since_ns, slot >= 0 ? since_ns : 0, memory_order_relaxed);
	atomic_store_explicit(&h->stall_slot, slot >= 0 ? slot : -1, memory_order_relaxed);
	return 0;
}

int spw_topic_producers(const struct spw_topic *t, struct spw_producer_info *out, int max)
{
	int n = 0;

	if (!t || (!out && max) || max < 0)
		return -EINVAL;
	/* Acquire: as in resolve (I2). */
	uint64_t tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	/* Relaxed: advisory, which slot is or was solo (I9). */
	uint64_t solo = atomic_load_explicit(&t->hdr->solo, memory_order_relaxed);

	for (uint32_t i = 0; i < t->max_producers && n < max; i++) {
		uint64_t a = 0, b = 0;
		bool won = false, span = ring_slot_span(t, i, &a, &b, &won);
		int alive = ring_slot_alive(t, i);
		struct spw_producer_info *o = &out[n];

		if (alive <= 0 && !span)
			continue;
		if (alive <= 0 && ring_span_settled(t, a, b))
			continue; /* a dead slot matters only while its claim is unsettled */
		memset(o, 0, sizeof(*o));
		o->slot = i;
		/* Relaxed: advisory fields. */
		o->pid = atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed);
		o->since_ns = atomic_load_explicit(&t->slots[i].since_ns, memory_order_relaxed);
		o->alive = alive > 0;
		o->claim = span ? (int64_t)a : -1;
		o->end = span ? (int64_t)b : -1;
		/* Claiming: a span its CAS took (WON) that is not all committed
		 * yet. A CLAIMING guess owns nothing for sure: not reported,
		 * except the solo producer's at the tail (I9): it is inside its
		 * claim, and producers that opened since wait for it. */
		o->claiming = span && !ring_span_settled(t, a, b) &&
			      (won || (a == tail && (solo & (RING_SOLO_ON | RING_SOLO_ENDING)) &&
				       RING_SOLO_SLOT(solo) == i));
		n++;
	}
	return n;
}

int spwd_set_counter(struct spw_topic *t, enum spwd_counter which, int64_t value)
{
	_Atomic uint64_t *c;

	if (!t || value < 0 || t->rdonly)
		return -EINVAL;
	switch (which) {
	case SPWD_SPILLED:
		c = &t->hdr->spilled;
		break;
	case SPWD_DURABLE:
		c = &t->hdr->durable;
		break;
	default:
		return -EINVAL;
	}
	/* Relaxed load: the daemon is the single writer (I1). */
	if ((uint64_t)value < atomic_load_explicit(c, memory_order_relaxed))
		return -EINVAL;
	/* seq_cst (release would do for the data): pairs with the acquire
	 * loads of acknowledgement waiters and tools; the bytes below value are
	 * on disk before it is published. */
	atomic_store_explicit(c, (uint64_t)value, memory_order_seq_cst);
	wake_ack_waiters(t);
	return 0;
}

int spwd_heartbeat(struct spw_topic *t, uint32_t pid)
{
	if (!t || t->rdonly)
		return -EINVAL;
	/* Relaxed: advisory values for tools, no data hangs on them. */
	atomic_store_explicit(&t->hdr->daemon_pid, pid, memory_order_relaxed);
	atomic_store_explicit(&t->hdr->daemon_heartbeat_ns, ring_realtime_ns(), memory_order_relaxed);
	ring_waiters_repair(t);
	return 0;
}
