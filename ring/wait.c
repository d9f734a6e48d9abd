/* SPDX-License-Identifier: MIT */
/*
 * wait.c - futex wait and wake for the ring's sleepers: consumers waiting
 * for commits, producers waiting for room, ack waiters (ring_layout.h I8).
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Shared (not PRIVATE) futexes: waiters and wakers are different processes. */
int ring_futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	long r;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tp = &ts;
	}
	r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expect, tp, NULL, 0);
	if (r < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	if (r < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

bool ring_wait_topic_gone(const struct spw_topic *t, uint64_t *next)
{
	uint64_t now;

	if (ring_topic_gone_flag(t)) /* spw_topic_delete's mark: at once */
		return true;
	now = ring_monotonic_ns();
	if (now < *next)
		return false;
	if (!*next) {
		*next = now + RING_GONE_CHECK_NS;
		return false;
	}
	*next = now + RING_GONE_CHECK_NS;
	return spw_topic_deleted(t) == 1;
}

void ring_futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void ring_wake_consumers_slow(struct spw_topic *t)
{
	/* seq_cst: a sleeper that read the old value before sleeping gets
	 * EAGAIN from FUTEX_WAIT; one that reads the new value re-checks. */
	atomic_fetch_add_explicit(&t->hdr->cons_wake, 1, memory_order_seq_cst);
	ring_futex_wake_all(&t->hdr->cons_wake);
}
