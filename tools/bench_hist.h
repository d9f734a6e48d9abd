/* SPDX-License-Identifier: MIT */
/*
 * bench_hist.h - a log-linear latency histogram in the manner of
 * HdrHistogram.
 *
 * Values (nanoseconds, any uint64_t) below 2 * HIST_SUB are counted
 * exactly; above, each power of two is cut into HIST_SUB equal sub-buckets,
 * so a reported value is at most 1/HIST_SUB (0.8 %) above the true one. Recording is an index computation and one increment: no
 * allocation, no floating point.
 *
 * The struct holds no pointer: it can live in a MAP_SHARED mapping made
 * before fork(), each child filling its own, the parent merging them.
 */
#ifndef SPILLWAY_BENCH_HIST_H
#define SPILLWAY_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Index of the largest value: shift 63 - HIST_SUB_BITS, sub-bucket 2*SUB-1. */
#define HIST_BUCKETS ((64u - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min, max; /* exact; min is UINT64_MAX while empty */
	double sum;        /* for the mean */
	uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* Add everything counted in src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0 < p <= 100): the upper edge of the bucket
 * holding the ceil(p/100 * count)-th smallest value, never above max.
 * 0 for an empty histogram. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);

#endif
