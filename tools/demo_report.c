/* SPDX-License-Identifier: MIT */
/*
 * demo_report.c - the end of `spillway demo`: replay a time range with a
 * bounded reader (SPW_START_TIME + stop_time_ns) and check what it returns,
 * then the summary.
 */
#include "demo.h"

#include <string.h>

struct rctx {
	struct demo_replay *rp;
	int producers;
	bool seen[DEMO_MAX_PRODUCERS];
	uint64_t last[DEMO_MAX_PRODUCERS];
};

static int on_replay(void *arg, const struct spw_record *r)
{
	struct rctx *x = arg;
	struct demo_replay *rp = x->rp;
	struct demo_rec h;

	if (!rp->n)
		rp->first_ok = r->timestamp_ns >= rp->t_a;
	rp->n++;
	rp->bytes += r->len;
	rp->late += r->timestamp_ns >= rp->t_b;
	rp->early += r->timestamp_ns < rp->t_a;
	if (r->len < sizeof(h))
		return 0;
	memcpy(&h, r->data, sizeof(h));
	if (h.magic != DEMO_MAGIC || h.producer >= x->producers || h.kind)
		return 0;
	/* The range is contiguous in positions, so each producer's records in
	 * it are consecutive sequence numbers. */
	if (x->seen[h.producer] && h.seq != x->last[h.producer] + 1)
		rp->noncontig++;
	x->seen[h.producer] = true;
	x->last[h.producer] = h.seq;
	return 0;
}

int demo_replay(const struct demo_cfg *c, struct demo_replay *rp)
{
	struct spw_reader_opts o = { 0 };
	struct cli_reader cr;
	struct rctx x = { .rp = rp, .producers = c->producers };
	uint64_t t0 = cli_mono_ns();
	int n;

	o.shm_dir = c->shm;
	o.data_dir = c->data;
	o.start = SPW_START_TIME;
	o.time_ns = rp->t_a;
	o.stop_time_ns = rp->t_b;
	rp->err = cli_reader_open(&cr, c->topic, &o, on_replay, &x);
	if (rp->err)
		return rp->err;
	do
		n = cli_reader_poll(&cr, 4096, 0);
	while (n > 0 && !spw_reader_done(cr.r));
	rp->err = n < 0 ? n : 0;
	rp->elapsed_ns = cli_mono_ns() - t0;
	cli_reader_close(&cr);
	rp->ok = !rp->err && rp->n && rp->first_ok && !rp->late && !rp->noncontig;
	return rp->err;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(uint64_t v, char *buf, size_t n)
{
	char tmp[32];
	int len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), o = 0;

	for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *dur(uint64_t ns, char *buf, size_t n)
{
	if (ns < 1000)
		snprintf(buf, n, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, n, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, n, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, n, "%.2f s", (double)ns / 1e9);
	return buf;
}

static void cons_line(const char *who, const struct demo_cons *k)
{
	printf("%s %s", who, k->exactly_once ? "yes" : "NO");
	if (k->retracted)
		printf(" (%llu deliveries taken back by the reader after a lap, see tools/reader.c)",
		       (unsigned long long)k->retracted);
	if (!k->exactly_once)
		printf(" (%llu duplicates, %llu missing, %llu bad CRC, %llu foreign, first at "
		       "position %lld%s%s)",
		       (unsigned long long)k->dup, (unsigned long long)k->gap,
		       (unsigned long long)k->bad, (unsigned long long)k->foreign,
		       (long long)k->first_anomaly, k->msg[0] ? "; " : "", k->msg);
}

void demo_summary(const struct demo_cfg *c, const struct demo_shared *sh,
		  const struct demo_replay *rp, const struct spw_topic_info *in,
		  const struct seg_disk_usage *dl, const char *daemon_line)
{
	uint64_t recs = 0, bytes = 0, t_start = UINT64_MAX, t_end = 0;
	char a[32], b[32], d[32], e[32], f[32];
	double secs;
	const struct hist *h = &sh->live.lat;

	for (int i = 0; i < c->producers; i++) {
		const struct demo_prod *p = &sh->prod[i];

		recs += p->records;
		bytes += p->bytes;
		if (p->start_ns < t_start)
			t_start = p->start_ns;
		if (p->end_ns > t_end)
			t_end = p->end_ns;
	}
	secs = t_end > t_start ? (double)(t_end - t_start) / 1e9 : 0;
	printf("\nsummary\n");
	printf("  records       %s from %d producers in %.2f s: %s records/s, %.3f GB/s of "
	       "payload (%.3f GB/s of log)\n",
	       grouped(recs, a, sizeof(a)), c->producers, secs,
	       grouped(secs > 0 ? (uint64_t)((double)recs / secs) : 0, b, sizeof(b)),
	       secs > 0 ? (double)bytes / secs / 1e9 : 0, secs > 0 ? (double)in->tail / secs / 1e9 : 0);
	printf("  latency       live consumer, record timestamp to delivery (%s records, producers "
	       "flat out, so queueing included): p50 %s, p99 %s, p99.9 %s, max %s\n",
	       grouped(h->count, a, sizeof(a)), dur(hist_percentile(h, 50), b, sizeof(b)),
	       dur(hist_percentile(h, 99), d, sizeof(d)), dur(hist_percentile(h, 99.9), e, sizeof(e)),
	       dur(h->max, f, sizeof(f)));
	cli_human(sh->lag.behind_bytes, a, sizeof(a));
	printf("  lagging       slept %.1f s until %s behind, then read %s records from disk "
	       "across %llu segments and %s live, in %.2f s\n",
	       (double)sh->lag.slept_ns / 1e9, a, grouped(sh->lag.disk_records, b, sizeof(b)),
	       (unsigned long long)sh->lag.segments, grouped(sh->lag.live_records, d, sizeof(d)),
	       (double)(sh->lag.end_ns - sh->lag.start_ns) / 1e9);
	cli_human(rp->bytes, a, sizeof(a));
	printf("  replay        [+%.2f s, +%.2f s) of production: %s records, %s in %s; ",
	       (double)(rp->t_a - rp->origin) / 1e9, (double)(rp->t_b - rp->origin) / 1e9,
	       grouped(rp->n, b, sizeof(b)), a, dur(rp->elapsed_ns, d, sizeof(d)));
	if (rp->ok)
		printf("all in range, sequences contiguous\n");
	else
		printf("FAILED (%s%llu late, first in range: %s, %llu sequence jumps)\n",
		       rp->err ? strerror(-rp->err) : "", (unsigned long long)rp->late,
		       rp->first_ok ? "yes" : "no", (unsigned long long)rp->noncontig);
	cli_human(dl->bytes, a, sizeof(a));
	printf("  disk          spilled %s bytes, durable %s bytes; %zu segments, %s\n",
	       grouped(in->spilled, b, sizeof(b)), grouped(in->durable, d, sizeof(d)), dl->segments, a);
	printf("  exactly once  ");
	cons_line("live consumer:", &sh->live);
	cons_line(", lagging consumer:", &sh->lag);
	printf(" (per producer sequence, every CRC checked)\n");
	printf("  daemon        %s\n", daemon_line);
}
