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
	static const char units[] = "KMG"; /* each 1000 times the previous */
	unsigned long long v;
	uint64_t mul = 1;
	const char *u;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && (u = strchr(units, toupper((unsigned char)*end))) != NULL) {
		for (const char *k = units; k <= u; k++)
			mul *= 1000;
		end++;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mul;
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
