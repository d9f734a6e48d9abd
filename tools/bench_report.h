/* SPDX-License-Identifier: MIT */
/*
 * bench_report.h - what one `spillway bench` run was asked, what it ran on,
 * and what it measured; printed as a table (bench_report_header,
 * bench_report_row) or as JSON (bench_report_json).
 */
#ifndef SPILLWAY_BENCH_REPORT_H
#define SPILLWAY_BENCH_REPORT_H

#include "bench_hist.h"
#include "bench_worker.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_SIZES 16

enum bench_mode { BENCH_THROUGHPUT = 0, BENCH_PINGPONG = 1 };

struct bench_opts {
	enum bench_mode mode;
	int producers, consumers;
	uint32_t sizes[BENCH_MAX_SIZES];
	int nsizes;
	double duration_s;    /* 0 when count is set */
	uint64_t count;       /* records per producer / round trips */
	uint64_t rate;        /* per producer, 0 = flat out */
	uint32_t sample;      /* timestamp latency of 1 record in `sample` */
	uint64_t ring_bytes;
	bool spill;           /* a daemon spills the topic to disk */
	bool daemon;          /* no spill, but a daemon reclaims (else consumer 0) */
	bool busy;            /* spin; else the blocking calls */
	int64_t backoff_ns;   /* consumers' spw_consumer_set_backoff; 0 off */
	uint32_t batch;       /* producers' records per spw_producer_send_batch; 1 one send each */
	bool caller_time;     /* producers give the timestamps (spw_producer_send_at) */
	bool json;
	const char *cpus;
	const char *shm_parent, *data_parent;
};

/* Where it ran. */
struct bench_env {
	char topo[128];
	int nroles;
	int role_pu[BW_MAX_WORKERS];
	int role_kind[BW_MAX_WORKERS];  /* BW_* role */
	int role_index[BW_MAX_WORKERS];
	int distinct_pus;
	char link[128];       /* what the first two roles' PUs share */
	double line_rtt_ns;   /* -1: not measured */
	int rtt_a, rtt_b;
	char shm_dir[4096], data_dir[4096];
	char scratch_dir[4096 - 64]; /* data_dir's parent: also the daemon's log */
	char daemon_path[4096];
};

struct bench_result {
	uint32_t size;
	bool ok;
	char err[512];
	char warn[256];
	bool all_pinned;
	double seconds;            /* go to the last record delivered (or sent) */
	uint64_t sent;             /* records sent, all producers (trips in ping-pong) */
	double send_rps;           /* sent / the producers' time */
	int nconsumers;
	uint64_t received[BW_MAX_WORKERS];
	double recv_rps[BW_MAX_WORKERS];
	double rps;                /* headline: the slowest consumer's rate (or the producers') */
	uint64_t lost, bad, lapped, clock_skew, redelivered;
	double spill_drain_s;      /* --spill: producers done -> all spilled; -1 n/a */
	struct hist lat;           /* timestamp latency, or ping-pong round trips */
};

void bench_report_header(FILE *f, const struct bench_opts *o, const struct bench_env *e);
void bench_report_row(FILE *f, const struct bench_opts *o, const struct bench_result *r);
void bench_report_json(FILE *f, const struct bench_opts *o, const struct bench_env *e,
		 const struct bench_result *rs, int n);
/* "1 MiB", "64 B", "16 KiB" */
void bench_fmt_bytes(char *buf, size_t len, uint64_t v);

#endif
