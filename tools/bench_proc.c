/* SPDX-License-Identifier: MIT */
/* bench_proc.c - a benchmark process's hand-off with its parent (bench_proc.h). */
#define _GNU_SOURCE
#include "bench_proc.h"

#include "spillway.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A busy sender found the ring full: true once it has been for
 * BENCH_STALL_NS (the clock read every 64 Ki spins; *t0 0 at the first). */
static bool stalled(uint64_t *spins, uint64_t *t0)
{
	if ((++*spins & 0xffff) == 0) {
		uint64_t now = mono_ns();

		if (!*t0)
			*t0 = now;
		else if (now - *t0 > BENCH_STALL_NS)
			return true;
	}
	bench_relax();
	return false;
}

int64_t bench_send_one(struct spw_producer *p, bool busy, const void *buf, uint32_t len)
{
	uint64_t spins = 0, t0 = 0;
	int64_t r;

	if (!busy)
		return spw_producer_send_wait(p, buf, len, (int64_t)BENCH_STALL_NS);
	while ((r = spw_producer_send(p, buf, len)) == -EAGAIN)
		if (stalled(&spins, &t0))
			return -ETIMEDOUT;
	return r;
}

int bench_send_batch(struct spw_producer *p, bool busy, const struct spw_msg *m, uint32_t n)
{
	uint64_t spins = 0, t0 = 0;
	uint32_t sent = 0;
	int r;

	while (sent < n) {
		r = busy ? spw_producer_send_batch(p, m + sent, n - sent, NULL)
			 : spw_producer_send_batch_wait(p, m + sent, n - sent,
							(int64_t)BENCH_STALL_NS, NULL);
		if (r > 0) {
			sent += (uint32_t)r;
			spins = t0 = 0; /* progress: the stall clock starts again */
		} else if (r != -EAGAIN)
			return r ? r : -EIO;
		else if (stalled(&spins, &t0))
			return -ETIMEDOUT;
	}
	return 0;
}

unsigned char *bench_payload(uint32_t size)
{
	unsigned char *b = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);

	if (b)
		for (uint32_t i = 0; i < size; i++)
			b[i] = (unsigned char)(i * 131u + 7u);
	return b;
}

void bench_proc_ready(_Atomic int *state, int ready, _Atomic int *go)
{
	/* Release: what the process set up before (its channels or topics
	 * open, its pinning) is visible to the parent's acquire load. */
	atomic_store_explicit(state, ready, memory_order_release);
	/* Acquire: pairs with the parent's release store of go (its start
	 * time is written before it). */
	while (!atomic_load_explicit(go, memory_order_acquire))
		bench_sleep_ns(20000);
}

void bench_proc_exit(_Atomic int *state, int final, int code)
{
	/* Release: publishes the counts, times, histogram and error text;
	 * pairs with the parent's (and consumers') acquire loads of state. */
	atomic_store_explicit(state, final, memory_order_release);
	_exit(code);
}

void bench_proc_fail(_Atomic int *state, int failed, char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	bench_proc_exit(state, failed, 1);
}
