/* SPDX-License-Identifier: MIT */
/*
 * results.h - the comparison's table: the systems, one cell of repeated
 * measurements per system and size, and the files written from it
 * (results.c).
 */
#ifndef SPILLWAY_COMPARE_RESULTS_H
#define SPILLWAY_COMPARE_RESULTS_H

#include "chan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_SIZES 8
#define MAX_REPS 15

struct sysdef {
	const char *name;   /* starts with spillway, pipe, unix, mq, zmq or file */
	enum chan_sys sys;
	bool busy, spill, file;
	const char *how;    /* one line for the markdown */
	bool aeron;         /* Aeron's own binaries (aeron.c); only with --aeron */
	bool backoff;       /* the receiver sets spw_consumer_set_backoff (--backoff NS) */
	bool batch;         /* the sender uses spw_producer_send_batch (--batch N); no round trips */
	bool no_time;       /* the sender gives time 0 (spw_producer_send_at): no clock read */
};

/* Per system and size: one value per repetition (medians are reported). */
struct cell {
	int n, nrtt, ndurable;
	double rate[MAX_REPS];                       /* messages/s */
	double p50[MAX_REPS], p90[MAX_REPS], p99[MAX_REPS], p999[MAX_REPS], max[MAX_REPS];
	double durable[MAX_REPS];                    /* MB/s until spilled and fdatasync'd */
	uint64_t redelivered;                        /* Spillway reader repeats, all runs */
	int nruns, nfail;                            /* cases run (throughput and round
	                                                trip each count) and failed */
	double rrate[MAX_REPS], rp50[MAX_REPS];      /* by round: 0 not measured (ratios) */
	double probe[MAX_REPS];                      /* cache-line round trip before each
	                                                round this cell ran in, ns */
	int nprobe;
	char err[256];                               /* the first failure */
	char desc[160];                              /* what the system granted */
};

struct table {
	const struct sysdef *sys;
	size_t nsys;
	struct cell (*cells)[MAX_SIZES];             /* [nsys][MAX_SIZES] */
	const uint32_t *sizes;
	int nsizes;
	const char *only;                            /* "a,b": only those systems; NULL all */
	bool aeron;                                  /* the aeron-ipc rows were measured */
};

/* The run's settings and where it ran, for compare_env.txt. */
struct run_info {
	double dur_s, rtt_dur_s;
	int reps;
	uint64_t ring_bytes, spill_ring_bytes;
	const char *data_dir;
	int pu[2];
	const char *link;
	double line_rtt_ns;
	double grace_s;
	int64_t backoff_ns;                          /* --backoff: spillway-backoff, -batch */
	uint32_t batch;                              /* --batch: spillway-batch */
	char aeron[128];                             /* Aeron's version, "" without */
};

bool table_selected(const struct table *t, const struct sysdef *sd);
/* The median of n values; -1 when there are none. */
double median(const double *v, int n);
/* <dir>/compare.tsv, compare_latency.tsv, compare_env.txt. 0 or -1. */
int results_write(const char *dir, const struct table *t, const struct run_info *ri);

#endif
