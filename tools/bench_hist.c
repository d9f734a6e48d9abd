/* SPDX-License-Identifier: MIT */
/*
 * bench_hist.c - log-linear histogram (bench_hist.h).
 *
 * Index of a value v:
 *   v < SUB:  v itself (exact).
 *   else:     k = floor(log2 v) >= SUB_BITS, shift = k - SUB_BITS,
 *             sub = v >> shift (in [SUB, 2*SUB)), index = shift*SUB + sub.
 * Consecutive powers of two thus occupy consecutive runs of SUB indexes,
 * and the bucket at index i covers [sub << shift, ((sub + 1) << shift) - 1].
 */
#include "bench_hist.h"

#include <math.h>
#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	unsigned k, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	k = 63u - (unsigned)__builtin_clzll(v);
	shift = k - HIST_SUB_BITS;
	return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The largest value that lands in bucket i. */
static uint64_t bucket_top(unsigned i)
{
	unsigned shift;
	uint64_t sub;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	sub = i - (uint64_t)shift * HIST_SUB;
	return ((sub + 1) << shift) - 1;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->counts[bucket_of(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	if (p >= 100.0)
		return h->max;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t top = bucket_top(i);

			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
