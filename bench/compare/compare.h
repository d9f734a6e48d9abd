/* SPDX-License-Identifier: MIT */
/*
 * compare.h - the control block the comparison's parent shares with the two
 * processes of each case, and those processes' entry points (sides.c).
 *
 * Who writes what: go, stop and t0 the parent; side[i] its process (state
 * last, with release, after everything else); rtt the pinger.
 */
#ifndef SPILLWAY_COMPARE_H
#define SPILLWAY_COMPARE_H

#include "chan.h"

#include "../../tools/bench_hist.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { ST_START = 0, ST_READY, ST_DONE, ST_FAILED };

struct side {
	/* Release stores by this side (READY, DONE, FAILED); acquire loads by the
	 * parent, which then reads the fields below. */
	alignas(128) _Atomic int state;
	bool pinned;
	uint64_t count, bad, sink;
	uint64_t redelivered; /* Spillway reader: records handed out twice (skipped) */
	uint64_t t_end;
	char err[256];
};

struct ctl {
	/* Parent: release store after both sides are READY; sides acquire. */
	alignas(128) _Atomic int go;
	/* Parent: relaxed store, a request to stop sending. */
	alignas(128) _Atomic int stop;
	alignas(128) uint64_t t0; /* CLOCK_MONOTONIC at go */
	uint64_t dur_ns;          /* how long the parent lets them run */
	struct side side[2];
	struct hist rtt; /* the pinger's round trips */
};

/* Each runs in a forked child, pins itself to pu after opening its channel
 * ends, and _exit()s: it never returns. Side 0: sender / pinger / writer;
 * side 1: receiver / ponger. */
void side_tp_sender(struct ctl *c, struct chan *ch, int pu);
void side_tp_receiver(struct ctl *c, struct chan *ch, int pu);
void side_rtt_pinger(struct ctl *c, struct chan *ping, struct chan *pong, int pu);
void side_rtt_ponger(struct ctl *c, struct chan *ping, struct chan *pong, int pu);
void side_file_writer(struct ctl *c, uint32_t size, const char *path, int pu);

#endif
