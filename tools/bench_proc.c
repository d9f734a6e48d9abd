/* SPDX-License-Identifier: MIT */
/* bench_proc.c - a benchmark process's hand-off with its parent (bench_proc.h). */
#define _GNU_SOURCE
#include "bench_proc.h"

#include "ring_internal.h" /* ring_monotonic_ns, the one clock */

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

bool bench_stalled(struct bench_stall *s)
{
	uint64_t now;

	if ((++s->n & 0xffff) != 0)
		return false;
	now = ring_monotonic_ns();
	if (!s->t0)
		s->t0 = now;
	return now - s->t0 > BENCH_STALL_NS;
}

struct spw_msg *bench_batch_new(uint32_t n, uint32_t size, unsigned char **buf)
{
	struct spw_msg *m = calloc(n, sizeof(*m));

	*buf = bench_payload(n * size);
	if (!m || !*buf) {
		free(m);
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	for (uint32_t k = 0; k < n; k++)
		m[k] = (struct spw_msg){ *buf + (size_t)k * size, size };
	return m;
}

/* Spin on a full ring, at most BENCH_STALL_NS; ts NULL: the library's clock. */
static int64_t send_spinning(struct spw_producer *p, const void *buf, uint32_t len,
			     const uint64_t *ts)
{
	struct bench_stall st = { 0, 0 };
	int64_t r;

	while ((r = ts ? spw_producer_send_at(p, buf, len, *ts) : spw_producer_send(p, buf, len)) ==
	       -EAGAIN) {
		if (bench_stalled(&st))
			return -ETIMEDOUT;
		bench_relax();
	}
	return r;
}

int64_t bench_send_one_at(struct spw_producer *p, bool busy, const void *buf, uint32_t len,
			  const uint64_t *ts)
{
	if (!busy)
		return ts ? spw_producer_send_wait_at(p, buf, len, (int64_t)BENCH_STALL_NS, *ts)
			  : spw_producer_send_wait(p, buf, len, (int64_t)BENCH_STALL_NS);
	return send_spinning(p, buf, len, ts);
}

int64_t bench_send_one(struct spw_producer *p, bool busy, const void *buf, uint32_t len)
{
	return bench_send_one_at(p, busy, buf, len, NULL);
}

int64_t bench_send_at(struct spw_producer *p, const void *buf, uint32_t len, uint64_t ts)
{
	return bench_send_one_at(p, true, buf, len, &ts);
}

int bench_send_batch_at(struct spw_producer *p, bool busy, const struct spw_msg *m, uint32_t n,
			const uint64_t *tss)
{
	struct bench_stall st = { 0, 0 };
	uint32_t sent = 0;
	int r;

	while (sent < n) {
		const uint64_t *t = tss ? tss + sent : NULL;

		r = busy ? spw_producer_send_batch_at(p, m + sent, n - sent, t, NULL)
			 : spw_producer_send_batch_wait_at(p, m + sent, n - sent,
							   (int64_t)BENCH_STALL_NS, t, NULL);
		if (r > 0) {
			sent += (uint32_t)r;
			st = (struct bench_stall){ 0, 0 }; /* progress: the clock starts again */
		} else if (r != -EAGAIN) {
			return r ? r : -EIO;
		} else if (bench_stalled(&st)) {
			return -ETIMEDOUT;
		} else {
			bench_relax();
		}
	}
	return 0;
}

int bench_send_batch(struct spw_producer *p, bool busy, const struct spw_msg *m, uint32_t n)
{
	return bench_send_batch_at(p, busy, m, n, NULL);
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
