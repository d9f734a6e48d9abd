/* SPDX-License-Identifier: MIT */
/*
 * writer.h - private header of the daemon's io_uring writer (spill/writer*.c):
 * one io_uring for every topic, a stream per topic that scans its ring,
 * writes segments and indexes, syncs them and reclaims the ring. Used by
 * daemon/ only; needs liburing.
 */
#ifndef SPILLWAY_SPILL_WRITER_H
#define SPILLWAY_SPILL_WRITER_H

#include "metrics.h"

/* --- the io_uring writer (spill/writer.c) --------------------------------- */
#include <liburing.h>

#define SPILL_GIB (1ull << 30)  /* the largest registered buffer (W1) */
#define SPILL_MAX_OPS 8          /* in-flight write ops per topic */
#define SPILL_OP_BYTES (1u << 20) /* bytes per write op */
#define SPILL_OP_ENTRIES 32       /* index entries per op (>= OP / ENTRY_SPAN + 1) */
#define SPILL_FILE_SLOTS 1024
#define SPILL_BUF_SLOTS 1024

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
/* Where spill/ logs; the daemon points it at its logger. */
extern void (*spill_log)(int level, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct spill_writer {
	struct io_uring ring;
	bool fixed_files, fixed_bufs;
	bool nodrop;            /* IORING_FEAT_NODROP: the kernel keeps overflowed CQEs */
	unsigned cq_entries;    /* >= every completion that can be in flight (W7) */
	uint64_t submit_busy;   /* io_uring_submit said -EBUSY / -EAGAIN: retried */
	unsigned inflight;      /* requests queued or submitted, completions not yet reaped */
	int submit_err;         /* another submit error, logged once */
	uint8_t file_used[SPILL_FILE_SLOTS];
	uint8_t buf_used[SPILL_BUF_SLOTS];
};

struct spill_seg {
	uint64_t base;
	int fd_seg, fd_idx;
	int slot_seg, slot_idx;  /* fixed-file slots, -1 when not registered */
	uint64_t sub_entries, sub_records, sub_max_ts;    /* submitted */
	uint64_t done_entries, done_records, done_max_ts; /* completed prefix */
};

struct spill_stream;

struct spill_op {
	struct spill_stream *s;
	uint64_t from, to;
	uint64_t entry0, records, max_ts; /* cumulative after the op */
	int nent, pending, res;
	struct seg_idx_entry ent[SPILL_OP_ENTRIES];
};

struct spill_stream {
	struct spill_writer *w;
	struct spw_topic *t;
	char name[SPW_NAME_MAX + 1];
	char dir[PATH_MAX];
	struct topic_conf conf;
	struct spill_seg seg;     /* the active segment (fd_seg < 0: none open) */
	uint64_t submitted, spilled, durable;
	struct spill_op ops[SPILL_MAX_OPS];
	unsigned op_head, op_count;
	int buf_slot, nbufs;      /* registered ring buffers, -1 when none */
	/* flush */
	bool sync_inflight;
	int sync_pending, sync_res;
	uint64_t sync_target, last_sync_ns;
	/* faults */
	int err;                  /* sticky I/O error, retried with backoff */
	int durable_err;          /* an fdatasync failed: durable never moves again (W6) */
	int ckpt_fd;              /* <dir>/durable, rewritten after each good sync; -1 none */
	uint64_t ckpt_written;    /* the value last written there */
	int ckpt_open_err;        /* why ckpt_fd is -1 (the topic spills) */
	unsigned char ckpt_buf[SEG_CKPT_BYTES]; /* the checkpoint a sync round writes (W6) */
	uint64_t retry_ns, backoff_ns;
	/* The record spilling waits on (ring_layout.h I7): position, since
	 * when (monotonic), last liveness check, reported as a stall. */
	int64_t stuck_pos;
	uint64_t stuck_since_ns, stuck_checked_ns;
	bool stall_reported;
	bool resolve_failed;      /* resolve's error logged once */
	int64_t scan_err_pos;     /* the scan error last logged, at that position */
	int scan_err;             /* (logged again only when either changes) */
	uint64_t rolls; /* segments closed: the daemon runs retention after each */
	struct seg_metrics_spill m; /* counted for /metrics (spill/metrics.h) */
	uint64_t sync_records;      /* m.records_spilled when the sync round began */
	uint64_t records_walked;    /* m.records_seen, but rewound with submitted (W5) */
};

/* depth SQ entries; the CQ holds every completion max_streams topics can
 * have in flight at once (SPILL_MAX_OPS data + index writes and 3 syncs
 * each), so none is ever dropped, NODROP or not (W7). */
int spill_writer_init(struct spill_writer *w, unsigned depth, unsigned max_streams);
/* io_uring_submit with its result checked: 0 or -errno (logged once). */
int spill_writer_submit(struct spill_writer *w);
/* Set once any topic's fdatasync failed during this process (the daemon's
 * exit status). */
extern bool spill_durability_failed;
void spill_writer_exit(struct spill_writer *w);
/* Reap completions, waiting up to wait_ns for the first. Returns the count. */
int spill_writer_reap(struct spill_writer *w, int64_t wait_ns);

/* Start spilling topic t (mapped by the caller) from position `start`,
 * which must be the end of the verified disk log (or the ring's start for a
 * new log). */
int spill_stream_open(struct spill_writer *w, struct spw_topic *t, const char *topic_dir,
		      const struct topic_conf *conf, uint64_t start, struct spill_stream **out);
/* Submit what is committed, flush per policy (or now), unblock dead claims,
 * reclaim. Returns > 0 when it did something. */
int spill_stream_pump(struct spill_stream *s, uint64_t now_ns, bool flush_now);
/* Nothing in flight and everything committed is spilled and durable. */
bool spill_stream_drained(struct spill_stream *s);
/* Wait for in-flight I/O, fdatasync, close the files. */
void spill_stream_close(struct spill_stream *s);

/* --- between spill/writer.c, writer_ops.c and writer_sync.c only --------- */
int spill_seg_activate(struct spill_stream *s, uint64_t pos);    /* writer.c */
int spill_seg_close(struct spill_stream *s, bool sync);          /* writer.c */
struct spill_op *spill_op_at(struct spill_stream *s, unsigned i); /* writer_ops.c */
void spill_prep_fd(struct io_uring_sqe *sqe, int slot);
void spill_ops_advance(struct spill_stream *s);
int spill_durable_advance(struct spill_stream *s, uint64_t target); /* writer_sync.c */
void spill_durable_fail(struct spill_stream *s, int err);
void spill_durable_fail_what(struct spill_stream *s, const char *what, int err);
void spill_sync_recovered(struct spill_stream *s, uint64_t start);
void spill_sync_submit(struct spill_stream *s);
void spill_sync_complete(struct spill_stream *s, int res, bool ckpt_write);

#endif /* SPILLWAY_SPILL_WRITER_H */
