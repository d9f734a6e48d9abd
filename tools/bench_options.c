/* SPDX-License-Identifier: MIT */
/* bench_options.c - `spillway bench` command line (bench_options.h). */
#define _GNU_SOURCE
#include "bench_options.h"

#include "bench_parse.h"

#include "../spill/spill.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define IPC_RING_BYTES (1ull << 20)
#define SPILL_RING_BYTES (64ull << 20)
#define BATCH_BUF_MAX (256ull << 20) /* a producer's buffer for one --batch */

void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: spillway bench [options]\n"
		"Measure Spillway on this machine: one process per producer and consumer,\n"
		"pinned with hwloc; throughput (records/s, MB/s) and latency percentiles.\n"
		"  --mode throughput|pingpong  producers -> consumers (default), or round trips\n"
		"                     through two topics (one pinger, one ponger)\n"
		"  --producers N      producer processes (default 1, at most 32)\n"
		"  --consumers N      consumer processes, each reading every record (default 1;\n"
		"                     0 needs --spill or --daemon: someone must reclaim)\n"
		"  --size LIST        record payload sizes, e.g. 64,1K,16K (default); repeatable\n"
		"  --duration SEC     per size: 2 (default), 0.5, 500ms\n"
		"  --count N          instead: records per producer (round trips), e.g. 1M\n"
		"  --rate N           records (round trips) per second per producer; 0 = flat out\n"
		"  --spill            a private spillwayd spills the topic to disk meanwhile\n"
		"  --daemon           no spilling, but a spillwayd reclaims (not consumer 0)\n"
		"  --ring-size BYTES  ring per topic (default 1M; 64M with --spill)\n"
		"  --busy | --wait    spin on poll/send (default), or the blocking calls that\n"
		"                     sleep on a futex (default with --spill: leaves the daemon\n"
		"                     a CPU on small machines)\n"
		"  --backoff NS       a consumer whose poll found nothing looks again only up to\n"
		"                     NS ns later (spw_consumer_set_backoff, 0 to 1e9): more\n"
		"                     records/s from a fast producer, up to NS more latency\n"
		"                     (default 0: off; spinning throughput consumers only: not\n"
		"                     with --spill, --wait, --mode pingpong or --consumers 0)\n"
		"  --batch N          producers send N records per call (spw_producer_send_batch,\n"
		"                     1 to 1024; default 1: spw_producer_send): one claim and one\n"
		"                     clock read per batch; throughput mode only\n"
		"  --sample N         timestamp latency of 1 record in N (default 16; 1 = all;\n"
		"                     reading the clock costs ~20-30 ns a record)\n"
		"  --caller-time      producers give each record its timestamp (spw_producer_send_at,\n"
		"                     _batch_at): the library reads no clock; 1 record in N\n"
		"                     (--sample) carries the time of its send, the others 0, and\n"
		"                     latency is that of those records\n"
		"  --cpus A,B,...     OS PU numbers for producers then consumers (default:\n"
		"                     one core each, neighbours first, within this process's binding)\n"
		"  --shm-dir DIR      rings go in a fresh directory inside DIR (default /dev/shm)\n"
		"  --data-dir DIR     segments go in a fresh directory inside DIR (default /var/tmp)\n"
		"  --json             one JSON document on stdout instead of the table\n"
		"spillwayd is found as $SPW_DAEMON, next to this binary, or in $PATH.\n"
		"Exit status: 0 success, 1 a failure, 2 a usage error.\n");
}

static int add_sizes(struct bench_opts *o, const char *list)
{
	char buf[256], *save = NULL, *tok;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (seg_parse_size(tok, &v) || v < 8 || v > SPW_RECORD_MAX_BYTES ||
		    o->nsizes == BENCH_MAX_SIZES)
			return -EINVAL;
		o->sizes[o->nsizes++] = (uint32_t)v;
	}
	return 0;
}

static int int_arg(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Returns 0, or 2 after printing the usage error. */
/* What the switch learns besides the fields of bench_opts. */
struct seen {
	int busy;      /* -1: not given */
	int sample;
	bool duration;
};

/* One option; NULL, or what is wrong with it. */
static const char *one_option(int c, const char *arg, struct bench_opts *o, struct seen *sn)
{
	uint64_t v;

	switch (c) {
	case 'm':
		if (!strcmp(arg, "throughput"))
			o->mode = BENCH_THROUGHPUT;
		else if (!strcmp(arg, "pingpong"))
			o->mode = BENCH_PINGPONG;
		else
			return "--mode is throughput or pingpong";
		return NULL;
	case 'p':
		return int_arg(arg, 1, 32, &o->producers) ? "--producers: 1 to 32" : NULL;
	case 'c':
		return int_arg(arg, 0, 32, &o->consumers) ? "--consumers: 0 to 32" : NULL;
	case 's':
		return add_sizes(o, arg) ? "--size: sizes of at least 8 bytes (the sequence "
					   "number), e.g. 64,1K,16K; at most 16"
					 : NULL;
	case 'd':
		sn->duration = true;
		return bench_parse_seconds(arg, &o->duration_s) || o->duration_s <= 0
			       ? "--duration: seconds, e.g. 2, 0.5, 500ms"
			       : NULL;
	case 'n':
		return bench_parse_count(arg, &o->count) || !o->count
			       ? "--count: a positive number, e.g. 1000000 or 1M"
			       : NULL;
	case 'r':
		return bench_parse_count(arg, &o->rate) ? "--rate: records per second, e.g. 100k"
							: NULL;
	case 'R':
		if (seg_parse_size(arg, &v) || v < SPW_RING_MIN_BYTES || (v & (v - 1)))
			return "--ring-size: a power of two >= 64K, e.g. 1M";
		o->ring_bytes = v;
		return NULL;
	case 'a':
		return int_arg(arg, 1, 1 << 20, &sn->sample) ? "--sample: 1 to 1048576" : NULL;
	case 'B':
		return bench_parse_backoff(arg, &o->backoff_ns)
			       ? "--backoff: nanoseconds, 0 (off) to 1000000000"
			       : NULL;
	case 'K':
		return bench_parse_batch(arg, &o->batch) ? "--batch: records per call, 1 to 1024"
							 : NULL;
	case 'S': o->spill = true; return NULL;
	case 'D': o->daemon = true; return NULL;
	case 'b': sn->busy = 1; return NULL;
	case 'w': sn->busy = 0; return NULL;
	case 'C': o->cpus = arg; return NULL;
	case 'H': o->shm_parent = arg; return NULL;
	case 'A': o->data_parent = arg; return NULL;
	case 'j': o->json = true; return NULL;
	case 'T': o->caller_time = true; return NULL;
	}
	return "unknown option or missing value";
}

/* Options that contradict each other; NULL when none do. */
static const char *conflicts(const struct bench_opts *o, const struct seen *sn)
{
	if (sn->duration && o->count)
		return "--duration and --count exclude each other";
	if (o->spill && o->daemon)
		return "--spill already runs a daemon; --daemon is for no-spill topics";
	if (o->mode == BENCH_THROUGHPUT && o->consumers == 0 && !o->spill && !o->daemon)
		return "--consumers 0 needs --spill or --daemon (without consumers, someone must "
		       "reclaim the ring)";
	if (o->backoff_ns && (o->spill || sn->busy == 0))
		return "--backoff is for spinning live consumers: not with --spill or --wait";
	if (o->backoff_ns && o->mode == BENCH_PINGPONG)
		return "--backoff is for throughput: in --mode pingpong every round trip would wait it out";
	if (o->backoff_ns && o->consumers == 0)
		return "--backoff needs consumers (--consumers 0 has none to back off)";
	if (o->batch > 1 && o->mode == BENCH_PINGPONG)
		return "--batch is for throughput: a round trip is one record";
	if (o->mode == BENCH_PINGPONG && (o->producers != 1 || o->consumers != 1))
		return "--mode pingpong runs one pinger and one ponger: leave --producers and "
		       "--consumers at 1";
	return NULL;
}

/* Defaults for what was not given; 2 when a size does not fit the ring. */
static int finish(struct bench_opts *o, const struct seen *sn)
{
	if (o->count)
		o->duration_s = 0;
	if (!o->nsizes) {
		o->sizes[0] = 64;
		o->sizes[1] = 1024;
		o->sizes[2] = 16384;
		o->nsizes = 3;
	}
	if (!o->ring_bytes)
		o->ring_bytes = o->spill ? SPILL_RING_BYTES : IPC_RING_BYTES;
	o->busy = sn->busy >= 0 ? sn->busy : !o->spill;
	o->sample = (uint32_t)sn->sample;
	for (int i = 0; i < o->nsizes; i++) {
		char rb[32];

		if ((uint64_t)o->batch * o->sizes[i] > BATCH_BUF_MAX) {
			fprintf(stderr,
				"spillway bench: --batch %u of --size %u is over %u MiB of records "
				"per call; lower one of them\n",
				o->batch, o->sizes[i], (unsigned)(BATCH_BUF_MAX >> 20));
			return 2;
		}
		if (o->sizes[i] <= o->ring_bytes / 4)
			continue;
		bench_fmt_bytes(rb, sizeof(rb), o->ring_bytes);
		fprintf(stderr,
			"spillway bench: --size %u exceeds the largest record of a %s ring (a "
			"quarter of it); raise --ring-size\n",
			o->sizes[i], rb);
		return 2;
	}
	return 0;
}

int bench_parse(int argc, char **argv, struct bench_opts *o, bool *help)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "producers", required_argument, NULL, 'p' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "spill", no_argument, NULL, 'S' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "busy", no_argument, NULL, 'b' },
		{ "wait", no_argument, NULL, 'w' },
		{ "sample", required_argument, NULL, 'a' },
		{ "backoff", required_argument, NULL, 'B' },
		{ "batch", required_argument, NULL, 'K' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "shm-dir", required_argument, NULL, 'H' },
		{ "data-dir", required_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'j' },
		{ "caller-time", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct seen sn = { -1, 16, false };
	const char *bad = NULL, *at = NULL;
	int c;

	memset(o, 0, sizeof(*o));
	o->producers = o->consumers = 1;
	o->duration_s = 2;
	o->batch = 1;
	optind = 0; /* GNU: a full reset; the dispatcher may have used getopt */
	opterr = 0;
	while (!bad && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			*help = true;
			return 0;
		}
		bad = one_option(c, optarg, o, &sn);
		at = argv[optind - 1 > 0 ? optind - 1 : 0];
	}
	if (!bad && optind < argc) {
		bad = "unexpected argument";
		at = argv[optind];
	}
	if (!bad && (bad = conflicts(o, &sn)) != NULL)
		at = NULL;
	if (bad) {
		fprintf(stderr, "spillway bench: %s%s%s%s\nTry 'spillway bench --help'.\n", bad,
			at ? " (got " : "", at ? at : "", at ? ")" : "");
		return 2;
	}
	return finish(o, &sn);
}
