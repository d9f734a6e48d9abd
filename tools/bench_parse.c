/* SPDX-License-Identifier: MIT */
/* bench_parse.c - counts and durations (bench_parse.h). */
#include "bench_parse.h"

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
	char *end;
	double v;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		v /= 1e3;
	else if (!strcmp(end, "m"))
		v *= 60;
	else if (strcmp(end, "") && strcmp(end, "s"))
		return -EINVAL;
	if (v > 1e6)
		return -EINVAL;
	*out = v;
	return 0;
}
