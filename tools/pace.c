/* SPDX-License-Identifier: MIT */
/*
 * pace.c - delivering records at the pace of their timestamps (replay and
 * consume --speed): record k is handed on at
 *     wall(first) + (ts(k) - ts(first) - shortened gaps) / speed,
 * sleeping on CLOCK_MONOTONIC with an absolute deadline, so lateness never
 * accumulates; a gap between two records longer than --max-gap (record
 * time) is shortened to it. How late each record went out is kept in a
 * log-linear histogram (tools/bench_hist.c) and reported at the end.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_parse_speed(const char *s, double *speed)
{
	char *end;
	double v;

	if (!strcmp(s, "max")) {
		*speed = 0;
		return CLI_OK;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v > 0) || v > 1e6 || !isfinite(v) ||
	    (*end && strcmp(end, "x")))
		return cli_usage("--speed: bad speed \"%s\" (1x, 10x, 0.5x or max)", s);
	*speed = v;
	return CLI_OK;
}

void cli_pace_init(struct cli_pace *p, double speed, uint64_t max_gap_ns)
{
	memset(p, 0, sizeof(*p));
	p->speed = speed;
	p->max_gap_ns = max_gap_ns;
	hist_init(&p->late);
}

void cli_pace_wait(struct cli_pace *p, uint64_t ts)
{
	uint64_t target, now;

	if (p->speed <= 0)
		return;
	if (!p->started) {
		p->started = true;
		p->base_rec = p->prev_rec = ts;
		p->base_wall = cli_mono_ns();
		hist_record(&p->late, 0);
		return;
	}
	if (ts > p->prev_rec && ts - p->prev_rec > p->max_gap_ns)
		p->cut += ts - p->prev_rec - p->max_gap_ns; /* a long silence, shortened */
	if (ts > p->prev_rec)
		p->prev_rec = ts;
	/* A record older than the one before (two producers' clocks) goes at once. */
	target = p->base_wall;
	if (ts > p->base_rec + p->cut)
		target += (uint64_t)((double)(ts - p->base_rec - p->cut) / p->speed);
	now = cli_mono_ns();
	if (target > now && !cli_stop) {
		struct timespec d = { (time_t)(target / 1000000000u), (long)(target % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR && !cli_stop)
			;
		now = cli_mono_ns();
	}
	hist_record(&p->late, now > target ? now - target : 0);
}

void cli_pace_report(const struct cli_pace *p, const char *cmd)
{
	char a[32], b[32], c[32];

	if (p->speed <= 0 || !p->late.count)
		return;
	cli_fmt_ns(a, sizeof(a), (double)hist_percentile(&p->late, 50));
	cli_fmt_ns(b, sizeof(b), (double)hist_percentile(&p->late, 99));
	cli_fmt_ns(c, sizeof(c), (double)p->late.max);
	fprintf(stderr, "spillway %s: paced at %gx: %llu records, lateness p50 %s, p99 %s, max %s\n",
		cmd, p->speed, (unsigned long long)p->late.count, a, b, c);
}
