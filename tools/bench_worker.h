/* SPDX-License-Identifier: MIT */
/*
 * bench_worker.h - the processes of one `spillway bench` case.
 *
 * The parent maps one control block (MAP_SHARED | MAP_ANONYMOUS), fills the
 * parameters and one slot per worker, and forks each worker. A worker pins
 * itself, opens its topics, says READY, spins until `go`, runs its role and
 * leaves its counts, times, latency histogram and any error in its slot,
 * then _exit()s.
 *
 * Who writes what in the block:
 *   go, stop, params, slot role/index/pu   the parent (before fork or before go)
 *   slot state, counts, times, hist, err   that slot's worker
 *   slot position                          that slot's consumer, read by the
 *                                          consumer that reclaims (slot of
 *                                          consumer 0) when no daemon does
 * A worker's counts are published by its release store of state = DONE;
 * readers load state with acquire before reading them.
 */
#ifndef SPILLWAY_BENCH_WORKER_H
#define SPILLWAY_BENCH_WORKER_H

#include "bench_hist.h"

#include "spillway.h"
#include "spillway_daemon.h"

#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BW_MAX_WORKERS 64
#define BW_EOF_LEN 0u /* a zero-length record: end of a ping-pong */

enum bw_role { BW_PRODUCER = 0, BW_CONSUMER = 1, BW_PINGER = 2, BW_PONGER = 3 };
enum bw_state { BW_STARTING = 0, BW_READY = 1, BW_DONE = 2, BW_FAILED = 3 };

struct bw_params {
	char shm_dir[PATH_MAX];
	char data_dir[PATH_MAX];     /* spill: where the daemon writes (readers need it) */
	char topic[SPW_NAME_MAX + 1];  /* throughput: the topic; ping-pong: ping */
	char topic2[SPW_NAME_MAX + 1]; /* ping-pong: pong */
	uint32_t size;               /* payload bytes per record, >= 8 */
	uint64_t count;              /* per producer / round trips; 0: until stop */
	uint64_t rate;               /* records (trips) per second per producer; 0: flat out */
	uint32_t sample;             /* record the latency of one record in `sample` */
	uint64_t warmup;             /* ping-pong: first round trips not recorded */
	uint64_t duration_ns;        /* 0 with a count */
	uint64_t ring_bytes;
	int producers, consumers;
	bool busy;                   /* spin on poll/send; else the blocking calls */
	int64_t backoff_ns;          /* consumers: spw_consumer_set_backoff; 0 off */
	uint32_t batch;              /* producers: records per spw_producer_send_batch; <= 1 one send each */
	bool caller_time;            /* producers give the timestamps: the send's time on
				      * 1 record in `sample`, 0 on the rest; consumers time
				      * those (throughput), ping-pong sends 0 */
	bool reader;                 /* consumers are spw_readers (disk then live) */
	bool self_reclaim;           /* consumer 0 reclaims behind all consumers */
	bool lapping_ok;             /* a daemon reclaims: count lapped records as lost */
};

struct bw_slot {
	/* Consumer: its next position; release store by it, acquire loads by
	 * the reclaiming consumer (a position below which it has read all). */
	alignas(128) _Atomic int64_t position;
	/* Release store by the worker (READY, DONE, FAILED); acquire loads by
	 * the parent and by consumers waiting for producers to finish. */
	alignas(128) _Atomic int state;
	int role, index, pu;
	bool pinned;
	uint64_t records;  /* producer: sent; consumer: received; pinger: trips timed */
	uint64_t lost;     /* consumer: records skipped by a lap or missing at the end */
	uint64_t bad;      /* consumer: wrong length or sequence (duplicate / reordered) */
	uint64_t lapped;   /* consumer: -ESTALE seen */
	uint64_t clock_skew; /* consumer: receipt time before the record's timestamp */
	uint64_t redelivered; /* consumer: records a reader handed out twice (skipped) */
	uint64_t t_start_ns, t_end_ns; /* CLOCK_MONOTONIC: start, last record */
	uint64_t t_measure_ns; /* pinger: the end of the warm-up (0: none) */
	uint64_t sink;     /* the payload fold, so that reading it is not optimised away */
	char err[256];
	struct hist lat;   /* consumer: timestamp latency; pinger: round trips */
};

struct bw_ctl {
	/* Parent: release store of 1 after every worker is READY; workers
	 * acquire-load it. t0_ns is written before it. */
	alignas(128) _Atomic int go;
	/* Parent: relaxed store, a request to stop sending (duration mode). */
	alignas(128) _Atomic int stop;
	alignas(128) uint64_t t0_ns;
	struct bw_params p;
	int nslots;
	struct bw_slot slots[];
};

/* Map a control block for n workers, parameters copied in. NULL on failure. */
struct bw_ctl *bw_ctl_new(const struct bw_params *p, int n);
void bw_ctl_free(struct bw_ctl *c);
/* Fork the worker of slot i (role, index, pu set by the caller). The child
 * never returns. -errno on a fork failure. */
pid_t bw_spawn(struct bw_ctl *c, int i);

#endif
