/* SPDX-License-Identifier: MIT */
/* bench_parse.c - counts and durations (bench_parse.h). */
#include "bench_parse.h"

#include "../spill/spill.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bench_parse_count(const char *s, uint64_t *out)
{
	/* K, M, G: each 1000 times the one before (spill/conf.c). */
	return seg_parse_scaled(s, 1000, "KMG", false, out);
}

int bench_parse_backoff(const char *s, int64_t *out)
{
	uint64_t v;

	/* No K/M suffix (powers of 1000 would read as counts, not time). */
	if (seg_parse_scaled(s, 1000, "", false, &v) ||
	    v > (uint64_t)SPW_CONSUMER_BACKOFF_MAX_NS)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

int bench_parse_batch(const char *s, uint32_t *out)
{
	uint64_t v;

	if (seg_parse_scaled(s, 1000, "", false, &v) || v < 1 || v > BENCH_BATCH_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int bench_parse_seconds(const char *s, double *out)
{
	double ms;

	/* The shared syntax (spill/conf.c), a bare number in seconds. */
	if (seg_parse_duration(s, 1e3, &ms) || ms > 1e9)
		return -EINVAL;
	*out = ms / 1e3;
	return 0;
}
