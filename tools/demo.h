/* SPDX-License-Identifier: MIT */
/*
 * demo.h - what `spillway demo` (tools/cmd_demo.c) shares with its forked
 * workers (tools/demo_work.c): the record layout, the latency histogram,
 * and the results block in a MAP_SHARED page every process writes its own
 * part of (the parent reads a part only after that child exited, or reads
 * the flags, which are atomics).
 */
#ifndef SPILLWAY_DEMO_H
#define SPILLWAY_DEMO_H

#include "cli.h"
#include "bench_hist.h"

#include <stdatomic.h>

#define DEMO_MAX_PRODUCERS 8
#define DEMO_MAGIC 0x44575053u /* "SPWD" */
#define DEMO_MIN_LEN 100u
#define DEMO_SPREAD 400u       /* payloads of 100..499 bytes */

/* A demo record's first 24 bytes; the rest is filler. crc is the CRC32C of
 * the whole payload with the crc field zeroed. */
struct demo_rec {
	uint32_t magic;
	uint16_t producer;
	uint16_t kind;  /* 0: data, 1: end (seq = how many data records were sent) */
	uint64_t seq;
	uint32_t len;
	uint32_t crc;
};

/* Latencies: the log-linear histogram of tools/bench_hist.c. */

struct demo_prod {
	uint64_t records, bytes;   /* data records and payload bytes sent */
	uint64_t start_ns, end_ns; /* CLOCK_REALTIME of the first and last send */
	int err;                   /* -errno of a failed send, else 0 */
};

/* A consumer's exactly-once bookkeeping, per producer sequence. */
struct demo_cons {
	uint64_t records, bytes, disk_records, live_records, segments;
	uint64_t dup, gap, bad, foreign;
	int64_t first_anomaly;                  /* position of the first bad/foreign/dup/gap, or -1 */
	uint64_t retracted;                     /* deliveries the library took back (tools/reader.c) */
	uint64_t next[DEMO_MAX_PRODUCERS];      /* next expected seq */
	uint64_t end_count[DEMO_MAX_PRODUCERS]; /* seq of the end record */
	bool end_seen[DEMO_MAX_PRODUCERS];
	uint64_t start_ns, end_ns;              /* CLOCK_MONOTONIC of its reading */
	uint64_t behind_bytes;                  /* lag at the start (lagging one) */
	uint64_t slept_ns;
	int err;
	char msg[256];
	bool exactly_once;
	struct hist lat;                        /* the live consumer only */
};

struct demo_shared {
	_Atomic int go;              /* producers start together */
	_Atomic int stop;            /* parent asks everyone to stop (failure) */
	_Atomic int producers_done;  /* producers that sent their end record */
	_Atomic int live_ready;
	struct demo_prod prod[DEMO_MAX_PRODUCERS];
	struct demo_cons live, lag;
};

struct demo_cfg {
	char shm[PATH_MAX], data[PATH_MAX];
	const char *topic;
	int producers;
	uint64_t seconds_ns, bytes;   /* production stops at either */
	uint64_t ring_bytes, segment_bytes;
};

/* The replay of a time range [t_a, t_b) after the run (tools/demo_report.c). */
struct demo_replay {
	uint64_t t_a, t_b, origin;   /* CLOCK_REALTIME; origin = production start */
	uint64_t n, bytes, elapsed_ns;
	uint64_t late, early;        /* records with ts >= t_b / below t_a */
	uint64_t noncontig;          /* a producer's sequence jumped inside the range */
	bool first_ok;               /* the first record has ts >= t_a */
	int err;
	bool ok;
};
int demo_replay(const struct demo_cfg *c, struct demo_replay *rp);
void demo_summary(const struct demo_cfg *c, const struct demo_shared *sh,
		  const struct demo_replay *rp, const struct spw_topic_info *in,
		  const struct seg_disk_usage *dl, const char *daemon_line);

/* Child bodies: each returns the exit status of the child. */
int demo_producer(const struct demo_cfg *c, struct demo_shared *sh, int id);
int demo_live(const struct demo_cfg *c, struct demo_shared *sh);
int demo_lagging(const struct demo_cfg *c, struct demo_shared *sh);

/* Check one record against the exactly-once bookkeeping. */
void demo_check(struct demo_cons *k, int producers, const struct spw_record *r);
bool demo_exactly_once(struct demo_cons *k, int producers);

#endif
