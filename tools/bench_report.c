/* SPDX-License-Identifier: MIT */
/* bench_report.c - `spillway bench` output: a table, or one JSON document
 * (bench_report.h). */
#include "bench_report.h"
#include "cli.h"

#include "bench_topo.h"

#include <string.h>

static const double pcts[] = { 50, 90, 99, 99.9 };
static const char *const pct_names[] = { "p50", "p90", "p99", "p99.9" };
#define NPCT (sizeof(pcts) / sizeof(pcts[0]))

void bench_fmt_bytes(char *buf, size_t len, uint64_t v)
{
	if (v >= (1ull << 30) && v % (1ull << 30) == 0)
		snprintf(buf, len, "%llu GiB", (unsigned long long)(v >> 30));
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(buf, len, "%llu MiB", (unsigned long long)(v >> 20));
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(buf, len, "%llu KiB", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu B", (unsigned long long)v);
}

static void fmt_rate(char *buf, size_t len, double r)
{
	if (r >= 1e6)
		snprintf(buf, len, "%.2f M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, len, "%.1f k", r / 1e3);
	else
		snprintf(buf, len, "%.0f", r);
}

static const char *role_name(int kind)
{
	switch (kind) {
	case BW_PRODUCER: return "producer";
	case BW_CONSUMER: return "consumer";
	case BW_PINGER: return "pinger";
	default: return "ponger";
	}
}

static const char *reclaim_desc(const struct bench_opts *o)
{
	if (o->spill)
		return "spilling to disk (spillwayd; consumers are readers)";
	if (o->daemon)
		return "no spill, spillwayd reclaims (consumers may be lapped)";
	return o->mode == BENCH_PINGPONG ? "no spill, each reader reclaims"
					 : "no spill, consumer 0 reclaims";
}

void bench_report_header(FILE *f, const struct bench_opts *o, const struct bench_env *e)
{
	char rb[32], run[64], desc[160];

	bench_fmt_bytes(rb, sizeof(rb), o->ring_bytes);
	if (o->count)
		snprintf(run, sizeof(run), "%llu %s", (unsigned long long)o->count,
			 o->mode == BENCH_PINGPONG ? "round trips" : "records per producer");
	else
		snprintf(run, sizeof(run), "%g s per size", o->duration_s);
	if (o->mode == BENCH_PINGPONG)
		fprintf(f, "spillway bench: ping-pong through two topics, %s, ring %s, %s, %s\n", run,
			rb, reclaim_desc(o), o->busy ? "busy-polling" : "blocking calls");
	else
		fprintf(f, "spillway bench: %d producer(s) x %d consumer(s), %s, ring %s, %s, %s\n",
			o->producers, o->consumers, run, rb, reclaim_desc(o),
			o->busy ? "busy-polling" : "blocking calls");
	if (o->rate)
		fprintf(f, "rate: %llu per second per producer\n", (unsigned long long)o->rate);
	if (o->backoff_ns)
		fprintf(f, "consumers back off %lld ns after a poll that found nothing\n",
			(long long)o->backoff_ns);
	if (o->batch > 1)
		fprintf(f, "producers send batches of %u records (spw_producer_send_batch%s)\n",
			o->batch, o->caller_time ? "_at" : "");
	if (o->caller_time)
		fprintf(f, "producers give the timestamps (spw_producer_send_at): no clock read in the "
			   "library; %s\n",
			o->mode == BENCH_PINGPONG ? "every record carries 0"
						  : "1 record in --sample carries its send time, the rest 0");
	fprintf(f, "machine: %s\npinning:", e->topo);
	for (int i = 0; i < e->nroles; i++) {
		topo_pu_desc(e->role_pu[i], desc, sizeof(desc));
		fprintf(f, "%s %s %d on %s", i ? "," : "", role_name(e->role_kind[i]),
			e->role_index[i], desc);
	}
	fputc('\n', f);
	if (e->distinct_pus < e->nroles)
		fprintf(f, "note: %d processes share %d PU(s): expect time-sharing, not parallelism\n",
			e->nroles, e->distinct_pus);
	if (e->line_rtt_ns > 0)
		fprintf(f, "cache-line round trip P#%d <-> P#%d (sharing %s): %.1f ns\n", e->rtt_a,
			e->rtt_b, e->link, e->line_rtt_ns);
	else
		fprintf(f, "cache-line round trip: n/a (one PU, or pinning failed)\n");
	if (o->mode == BENCH_PINGPONG)
		fprintf(f, "latency: round trip (from just before the send to the handler that sees the echo from the second topic)\n");
	else if (o->consumers)
		fprintf(f, "latency: receipt - record timestamp (CLOCK_REALTIME %s), 1 record in %u;\n"
			   "         flat out, that is mostly queueing in a full ring (--rate: below saturation)\n",
			o->caller_time ? "read before the send" : "at claim", o->sample);
	fprintf(f, "\n%8s %11s %9s", "size", o->mode == BENCH_PINGPONG ? "trips/s" : "records/s",
		"MB/s");
	for (size_t i = 0; i < NPCT; i++)
		fprintf(f, " %9s", pct_names[i]);
	fprintf(f, " %9s  %s\n", "max", "notes");
	fflush(f);
}

void bench_report_row(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	char sz[32], rate[32], v[32];
	double mbps = r->rps * r->size / 1e6;

	bench_fmt_bytes(sz, sizeof(sz), r->size);
	fmt_rate(rate, sizeof(rate), r->rps);
	if (o->mode == BENCH_PINGPONG)
		fprintf(f, "%8s %11s %9s", sz, rate, "-");
	else
		fprintf(f, "%8s %11s %9.1f", sz, rate, mbps);
	for (size_t i = 0; i < NPCT; i++) {
		if (r->lat.count) {
			cli_fmt_ns(v, sizeof(v), (double)hist_percentile(&r->lat, pcts[i]));
			fprintf(f, " %9s", v);
		} else {
			fprintf(f, " %9s", "-");
		}
	}
	if (r->lat.count) {
		cli_fmt_ns(v, sizeof(v), (double)r->lat.max);
		fprintf(f, " %9s ", v);
	} else {
		fprintf(f, " %9s ", "-");
	}
	if (!r->ok)
		fprintf(f, " FAILED: %s", r->err);
	if (r->nconsumers > 1) {
		fmt_rate(rate, sizeof(rate), r->send_rps);
		fprintf(f, " sent %s/s, slowest consumer shown;", rate);
	}
	if (r->lost || r->lapped)
		fprintf(f, " lost %llu (lapped %llu times);", (unsigned long long)r->lost,
			(unsigned long long)r->lapped);
	if (r->redelivered)
		fprintf(f, " %llu records handed out twice by the reader (skipped);",
			(unsigned long long)r->redelivered);
	if (r->clock_skew)
		fprintf(f, " %llu receipts before their timestamp (clock skew);",
			(unsigned long long)r->clock_skew);
	if (r->spill_drain_s > 0 && o->mode == BENCH_THROUGHPUT)
		fprintf(f, " all spilled %.2f s after the start (%.1f MB/s to the files);",
			r->spill_drain_s, (double)r->sent * r->size / 1e6 / r->spill_drain_s);
	else if (r->spill_drain_s > 0)
		fprintf(f, " all spilled %.2f s after the start;", r->spill_drain_s);
	if (!r->all_pinned)
		fprintf(f, " pinning FAILED for some process;");
	if (r->warn[0])
		fprintf(f, " %s;", r->warn);
	fputc('\n', f);
	fflush(f);
}

/* --- JSON ------------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (v != v || v < -1e300 || v > 1e300)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void json_env(FILE *f, const struct bench_opts *o, const struct bench_env *e)
{
	char desc[160];

	fprintf(f, "  \"config\": {\"mode\": \"%s\", \"producers\": %d, \"consumers\": %d, ",
		o->mode == BENCH_PINGPONG ? "pingpong" : "throughput", o->producers, o->consumers);
	fprintf(f, "\"duration_s\": ");
	json_num(f, o->duration_s);
	fprintf(f, ", \"count\": %llu, \"rate\": %llu, \"ring_bytes\": %llu, \"spill\": %s, "
		   "\"daemon\": %s, \"busy\": %s, \"backoff_ns\": %lld, \"batch\": %u, "
		   "\"caller_time\": %s, \"latency_sample\": %u, \"reclaim\": ",
		(unsigned long long)o->count, (unsigned long long)o->rate,
		(unsigned long long)o->ring_bytes, o->spill ? "true" : "false",
		o->daemon ? "true" : "false", o->busy ? "true" : "false", (long long)o->backoff_ns,
		o->batch, o->caller_time ? "true" : "false", o->sample);
	json_str(f, reclaim_desc(o));
	fprintf(f, ", \"shm_dir\": ");
	json_str(f, e->shm_dir);
	if (e->data_dir[0]) {
		fprintf(f, ", \"data_dir\": ");
		json_str(f, e->data_dir);
		fprintf(f, ", \"spillwayd\": ");
		json_str(f, e->daemon_path);
	}
	fprintf(f, "},\n  \"topology\": {\"machine\": ");
	json_str(f, e->topo);
	fprintf(f, ", \"distinct_pus\": %d, \"roles\": [", e->distinct_pus);
	for (int i = 0; i < e->nroles; i++) {
		topo_pu_desc(e->role_pu[i], desc, sizeof(desc));
		fprintf(f, "%s{\"role\": \"%s\", \"index\": %d, \"pu\": %d, \"desc\": ", i ? ", " : "",
			role_name(e->role_kind[i]), e->role_index[i], e->role_pu[i]);
		json_str(f, desc);
		fputc('}', f);
	}
	fprintf(f, "],\n    \"cache_line_rtt\": {\"pu_a\": %d, \"pu_b\": %d, \"shared\": ", e->rtt_a,
		e->rtt_b);
	json_str(f, e->link);
	fprintf(f, ", \"ns\": ");
	json_num(f, e->line_rtt_ns > 0 ? e->line_rtt_ns : 0.0 / 0.0);
	fprintf(f, "}},\n");
}

static void json_result(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	fprintf(f, "    {\"size\": %u, \"ok\": %s", r->size, r->ok ? "true" : "false");
	if (!r->ok) {
		fprintf(f, ", \"error\": ");
		json_str(f, r->err);
	}
	fprintf(f, ", \"seconds\": ");
	json_num(f, r->seconds);
	fprintf(f, ", \"%s\": %llu, \"%s_per_s\": ", o->mode == BENCH_PINGPONG ? "trips" : "sent",
		(unsigned long long)r->sent, o->mode == BENCH_PINGPONG ? "trips" : "records");
	json_num(f, r->rps);
	if (o->mode == BENCH_THROUGHPUT) {
		fprintf(f, ", \"mb_per_s\": ");
		json_num(f, r->rps * r->size / 1e6);
		fprintf(f, ", \"sent_per_s\": ");
		json_num(f, r->send_rps);
		fprintf(f, ", \"consumers\": [");
		for (int i = 0; i < r->nconsumers; i++) {
			fprintf(f, "%s{\"records\": %llu, \"records_per_s\": ", i ? ", " : "",
				(unsigned long long)r->received[i]);
			json_num(f, r->recv_rps[i]);
			fputc('}', f);
		}
		fprintf(f, "], \"lost\": %llu, \"lapped\": %llu, \"clock_skew\": %llu, "
			   "\"redelivered\": %llu",
			(unsigned long long)r->lost, (unsigned long long)r->lapped,
			(unsigned long long)r->clock_skew, (unsigned long long)r->redelivered);
	}
	if (r->spill_drain_s > 0) {
		fprintf(f, ", \"spilled_after_s\": ");
		json_num(f, r->spill_drain_s);
	}
	fprintf(f, ", \"latency_ns\": {\"kind\": \"%s\", \"count\": %llu",
		o->mode == BENCH_PINGPONG ? "round_trip" : "from_timestamp",
		(unsigned long long)r->lat.count);
	if (r->lat.count) {
		static const char *const keys[] = { "p50", "p90", "p99", "p999" };

		for (size_t i = 0; i < NPCT; i++)
			fprintf(f, ", \"%s\": %llu", keys[i],
				(unsigned long long)hist_percentile(&r->lat, pcts[i]));
		fprintf(f, ", \"min\": %llu, \"max\": %llu, \"mean\": ",
			(unsigned long long)r->lat.min, (unsigned long long)r->lat.max);
		json_num(f, hist_mean(&r->lat));
	}
	fprintf(f, "}, \"all_pinned\": %s}", r->all_pinned ? "true" : "false");
}

void bench_report_json(FILE *f, const struct bench_opts *o, const struct bench_env *e,
		 const struct bench_result *rs, int n)
{
	fprintf(f, "{\n  \"spillway_bench\": 1,\n");
	json_env(f, o, e);
	fprintf(f, "  \"results\": [\n");
	for (int i = 0; i < n; i++) {
		json_result(f, o, &rs[i]);
		fprintf(f, "%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}
