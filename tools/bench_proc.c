/* SPDX-License-Identifier: MIT */
/* bench_proc.c - a benchmark process's hand-off with its parent (bench_proc.h). */
#define _GNU_SOURCE
#include "bench_proc.h"

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
