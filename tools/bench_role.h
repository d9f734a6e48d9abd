/* SPDX-License-Identifier: MIT */
/*
 * bench_role.h - what the worker roles of `spillway bench` share
 * (tools/bench_role.c): the hand-off with the parent, where a consumer
 * reads (a live consumer or a reader), sending with back-pressure, pacing.
 * The roles: tools/bench_worker.c (producers, consumers, the spawn) and
 * tools/bench_pingpong.c (pinger, ponger).
 */
#ifndef SPILLWAY_TOOLS_BENCH_ROLE_H
#define SPILLWAY_TOOLS_BENCH_ROLE_H

#include "bench_worker.h"

#include "bench_proc.h"

#include "ring_internal.h"

#define POLL_MAX 256
#define WAIT_SLICE_NS 10000000ll    /* blocking polls return after 10 ms idle */
#define STALL_NS BENCH_STALL_NS      /* no progress for 10 s: broken (bench_proc.h) */
#define TAIL_GRACE_NS 2000000000ull /* producers done, nothing new for 2 s: missing */
#define SEQ_BITS 48
#define SEQ_MASK ((1ull << SEQ_BITS) - 1)

/* The hand-off with the parent (tools/bench_proc.h): err and the counts,
 * times and histogram are published by the state stores. */
#define fail(s, ...) \
	bench_proc_fail(&(s)->state, BW_FAILED, (s)->err, sizeof((s)->err), __VA_ARGS__)
#define done(s) bench_proc_exit(&(s)->state, BW_DONE, 0)

/* Where a consumer reads: a live consumer, or a reader (disk then live). */
struct src {
	struct spw_topic *t;
	struct spw_consumer *c;
	struct spw_reader *r;
	int64_t reclaimed; /* the bound this process last reclaimed to */
};

void bw_ready_and_wait(struct bw_ctl *c, struct bw_slot *s);
/* Open topic's source for the worker of slot sl, or fail it. */
void bw_src_open(struct bw_slot *sl, const struct bw_params *p, const char *topic,
		 struct src *s);
int bw_src_poll(struct src *s, bool busy, spw_record_fn fn, void *arg, int max);
int64_t bw_src_position(const struct src *s);
/* Reclaim up to upto when it is a quarter ring past the last bound. */
void bw_src_reclaim(struct bw_slot *sl, struct src *s, int64_t upto, uint64_t ring_bytes);
void bw_pace(uint64_t t0, uint64_t i, uint64_t rate);
struct spw_producer *bw_open_producer(struct bw_ctl *c, struct bw_slot *s, const char *topic);

/* tools/bench_pingpong.c */
void bw_run_pinger(struct bw_ctl *c, struct bw_slot *s);
void bw_run_ponger(struct bw_ctl *c, struct bw_slot *s);

#endif
