/* SPDX-License-Identifier: MIT */
/*
 * clock.c - the one clock of spillway: CLOCK_REALTIME and CLOCK_MONOTONIC in
 * ns, and the producers' record timestamps (the TSC scaled to realtime where
 * it is invariant, re-synced, never backwards within one producer).
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

uint64_t ring_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ring_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* TSC calibration, once per process: ticks per ns against CLOCK_MONOTONIC
 * over ~2 ms. Only when the CPU says the TSC is constant and non-stop. */
static uint64_t tsc_mult; /* 32.32 ns per tick; 0 = use clock_gettime */
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static bool tsc_usable(void)
{
#if defined(__x86_64__)
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool constant = false, nonstop = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
#else
	return false;
#endif
}

static void tsc_calibrate(void)
{
#if defined(__x86_64__)
	uint64_t n0, n1, c0, c1;

	if (!tsc_usable())
		return;
	/* Each end bracketed by TSC reads (as in clock_resync). */
	c0 = __rdtsc();
	n0 = ring_monotonic_ns();
	c0 += (__rdtsc() - c0) / 2;
	do
		n1 = ring_monotonic_ns();
	while (n1 - n0 < 2000000);
	c1 = __rdtsc();
	n1 = ring_monotonic_ns();
	c1 += (__rdtsc() - c1) / 2;
	if (c1 > c0)
		tsc_mult = (uint64_t)(((__uint128_t)(n1 - n0) << 32) / (c1 - c0));
#endif
}

static void clock_resync(struct ring_clock *c)
{
#if defined(__x86_64__)
	/* Bracket clock_gettime between two TSC reads and keep the tightest
	 * of a few tries: a preemption between the two reads would otherwise
	 * skew every timestamp until the next re-sync. */
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 4; i++) {
		uint64_t t0 = __rdtsc(), ns = ring_realtime_ns(), t1 = __rdtsc();

		if (t1 - t0 < best) {
			best = t1 - t0;
			c->base_tsc = t0 + (t1 - t0) / 2;
			c->base_ns = ns;
		}
		if (best < 2000)
			break;
	}
#else
	c->base_ns = ring_realtime_ns();
#endif
}

void ring_clock_init(struct ring_clock *c)
{
	pthread_once(&tsc_once, tsc_calibrate);
	memset(c, 0, sizeof(*c));
	c->mult = tsc_mult;
	/* ~1 ms of ticks between re-syncs: the calibration error (~1e-5)
	 * then costs ~10 ns at worst. */
	c->resync_ticks = c->mult ? (1000000ull << 32) / c->mult : 0;
	clock_resync(c);
}

/* The slow path of ring_clock_now (ring_internal.h): a re-sync, or no TSC. */
uint64_t ring_clock_now_slow(struct ring_clock *c)
{
	uint64_t ns;

	if (c->mult) {
		clock_resync(c);
		ns = c->base_ns;
	} else {
		ns = ring_realtime_ns();
	}
	/* Never backwards within one producer (a re-sync or an NTP step). */
	if (ns < c->last_ns)
		ns = c->last_ns;
	c->last_ns = ns;
	return ns;
}
