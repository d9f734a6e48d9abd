/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - what is known about a topic, gathered in one place and
 * written in one format: the Prometheus text exposition (version 0.0.4)
 * that `spillway stat --prometheus` prints and spillwayd serves at
 * /metrics (daemon/metrics.c). The metric list is docs/metrics.md.
 * Private to spill/, daemon/ and tools/ (not installed).
 */
#ifndef SPILLWAY_SPILL_METRICS_H
#define SPILLWAY_SPILL_METRICS_H

#include "spill.h"

#include <stdio.h>

/* The segment files of a topic dir: how many, their bytes, the log range
 * they cover, their records and newest timestamp (from the indexes). */
struct seg_disk_usage {
	size_t segments;
	uint64_t bytes, first, end, newest_ts, records;
	bool any;
};
/* 0 (a missing dir is an empty log) or -errno. */
int seg_disk_usage(const char *topic_dir, struct seg_disk_usage *d);

struct seg_metrics_group {
	char name[SPW_NAME_MAX + 1];
	int64_t pos;       /* committed position, or -errno when unreadable */
	uint64_t lag_bytes;
	int64_t lag_ns;    /* age of the oldest record it has not read (0: caught up; -1 unknown) */
	int reading;       /* 1: its one reader holds it now (spill/group.c); 0; -errno */
	uint32_t reader_pid; /* that reader's process when /proc tells, else 0 */
};

/* What spillwayd alone knows of a topic it spills (since it started). */
struct seg_metrics_spill {
	uint64_t records_seen;      /* committed records it has walked (submitted) */
	uint64_t records_spilled, records_durable;
	uint64_t write_errors, sync_errors;
	uint64_t blocked_ns_total;  /* time with >= 1 producer asleep on the full ring */
	uint64_t blocked_since_ns;  /* monotonic start of the current such time, 0: none */
	uint64_t newest_ts_seen;    /* the newest record timestamp it walked */
};

struct seg_metrics {
	char name[SPW_NAME_MAX + 1];
	struct spw_topic *t;          /* the ring, when one is mapped; else disk only */
	struct spw_topic_info in;     /* (t) */
	int live;                     /* (t) producers whose slot lock the kernel holds */
	/* (t) the producer inside a claim at the tail that newer producers wait
	 * on (the only one, stopped: I9); slot (uint32_t)-1 when none */
	struct spw_producer_info tail_claim;
	int solo_slot;                /* (t) the slot of the solo producer (I9), -1: none */
	bool alive;                   /* a spillwayd serves it (set by the caller) */
	double hb_age;                /* its heartbeat's age, s (-1: none ever) */
	struct seg_disk_usage dl;
	uint64_t oldest_ts, newest_ts; /* record timestamps, ns; 0 unknown */
	struct seg_metrics_group *g;
	int ng;
	int groups_err;               /* groups/ could not be listed (-errno): none shown */
	/* Set by the caller: find the pid of each group's reader (a walk of
	 * /proc/<pid>/fdinfo per held group: the CLI's stat, not the daemon's
	 * metrics endpoint, which does not show it). */
	bool reader_pids;
	uint64_t held_bytes;          /* kept past retention for the slowest group */
	char holder[SPW_NAME_MAX + 1];
	int holder_err;               /* its position unreadable (-errno): holds all */
	const struct seg_metrics_spill *spill; /* spillwayd's own, or NULL */
};

/* spillwayd's own figures, or NULL from the CLI. */
struct seg_metrics_proc {
	int topics;
	unsigned uring_entries;   /* submission queue size */
	unsigned uring_inflight;  /* requests submitted and not yet completed */
	uint64_t uring_submit_busy;
	uint64_t start_time_ns;   /* CLOCK_REALTIME */
};

/* Fill m from the ring (m->t, may be NULL) and the topic's files under
 * data_dir, reading records where they lie (no reader is opened: cheap
 * enough for the daemon's loop): m->name, m->t and m->spill must be set;
 * m->alive and m->hb_age are the caller's. Frees what a previous gather of m allocated. 0 or -errno
 * (what could be read is filled either way). */
int seg_metrics_gather(const char *data_dir, struct seg_metrics *m);
void seg_metrics_free(struct seg_metrics *m);
/* The same tail_claim for a topic alone (produce's blocked message): 1 with
 * *out filled, else 0. */
int seg_claim_at_tail(struct spw_topic *t, struct spw_producer_info *out);
/* The bytes-position the log ends at: the ring's tail, or the disk's end. */
uint64_t seg_metrics_tail(const struct seg_metrics *m);

/* The exposition of n topics (each family's HELP and TYPE once) plus
 * spillway_build_info and, when p, the daemon's own. */
void seg_metrics_write(FILE *f, const struct seg_metrics *const *m, int n,
		       const struct seg_metrics_proc *p);

#endif
