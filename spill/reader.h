/* SPDX-License-Identifier: MIT */
/*
 * reader.h - private to the reader (spill/reader.c: the API, live reading,
 * delivery; spill/reader_disk.c: segments, indexes, CRCs;
 * spill/reader_ahead.c: the read-ahead thread). Invariants R1-R6 are stated
 * in spill/reader.c.
 */
#ifndef SPILLWAY_SPILL_READER_H
#define SPILLWAY_SPILL_READER_H

#include "spill.h"

#include <pthread.h>
#include <sys/types.h>

#define RD_CHUNK (512u << 10) /* pread, CRC and walk stay in L2 (docs/HACKING.md, "Chunk size") */

struct rd_seg {
	uint64_t base;
	int fd;
	struct seg_idx_hdr hdr;
	struct seg_idx_entry *ent;
	int nent;
	char path[PATH_MAX];
};

/* One chunk to read (R4): index entries [i, j) of the loaded segment, the
 * bytes [from, to) they cover, read as whole pages [afrom, afrom + alen). */
struct rd_plan {
	int i, j;
	uint64_t from, to, afrom, alen;
};

/* The read-ahead thread (R6, spill/reader_ahead.c). `state` is the futex
 * word both sides wait on: IDLE (no job; the reader may write one), JOB
 * (waiting: the thread takes it, RUNNING, or the reader takes it back,
 * IDLE), RUNNING (the thread's until it stores DONE), DONE (the reader's:
 * it takes or drops the result, then stores IDLE or the next JOB), QUIT. */
enum { RD_AH_IDLE = 0, RD_AH_JOB = 1, RD_AH_RUNNING = 2, RD_AH_DONE = 3, RD_AH_QUIT = 4 };

struct rd_ahead {
	_Atomic uint32_t state;
	_Atomic uint32_t thread_sleeps, reader_sleeps; /* a side asleep on state: wake it */
	_Atomic int thread_cpu, reader_cpu; /* where each side last ran: same CPU, no spinning */
	bool running, failed;
	uint32_t fork_gen;          /* ring_fork_gen when the thread started */
	pthread_t th;
	uint64_t seq_to;            /* where the last chunk ended: sequential reads start it */
	uint64_t chunks;            /* chunks the thread read that were delivered (tests) */
	uint64_t bad_chunks;        /* ... of them, those it found a bad CRC in (tests) */
	uint64_t taken_back;        /* jobs the reader took back before the thread began */
	uint64_t given_up;          /* running jobs the reader stopped waiting for */
	/* The job: written by the reader while IDLE, read by the thread after JOB. */
	int fd;                     /* our own dup of the segment's descriptor */
	uint64_t fd_base, fd_seg;   /* its base, and r->seg_opens when dup'd */
	struct rd_plan p;
	bool verify;
	struct seg_idx_entry *ent;  /* copies of entries [p.i, p.j) */
	int ent_cap;
	uint8_t *buf;               /* the job's: one of bufs[] */
	uint8_t *bufs[2];           /* the thread's own, page-aligned: it fills one while */
	size_t caps[2];             /* the reader walks the other (never the reader's buf) */
	/* The result: written by the thread before DONE. */
	ssize_t got;                /* pread's return, or -errno */
	int bad;                    /* the first entry (from p.i) whose CRC failed, or p.j - p.i */
};

/* A group this reader is the one reader of (spill/group.c, membership). */
struct rd_member {
	struct ring_held h;
	struct rd_member *next;
	bool lost; /* its lock file was removed or replaced: -ENOLCK from now on */
	char group[SPW_NAME_MAX + 1];
};

struct spw_reader {
	char topic[SPW_NAME_MAX + 1];
	char shm_dir[PATH_MAX], data_dir[PATH_MAX], dir[PATH_MAX];
	struct spw_reader_opts o;
	/* max_record: what a disk record may hold, the format's bound for
	 * the ring (seg_max_record_bound), not topic.conf's (reader_geometry) */
	uint64_t ring_bytes, segment_bytes, max_record;
	struct spw_topic *t;
	struct spw_consumer *c;
	bool live, done, time_skip;
	bool done_after; /* done after delivering the record (max_records) */
	bool live_idle;  /* caught up: a live look found nothing before a record (live_poll) */
	uint64_t pos;
	struct rd_seg seg;
	uint64_t seg_opens;       /* segments opened so far: names one opening */
	uint8_t *buf;             /* page-aligned pread buffer (R4), the reader's own */
	size_t buf_cap;
	const uint8_t *cur;       /* where buf_from..buf_to are: buf, or a read-ahead buffer */
	uint8_t *stage;           /* live records' copies (R2): one, or a batch's */
	size_t stage_cap;
	uint64_t buf_from, buf_to; /* positions held and verified in buf */
	struct rd_ahead ahead;
	uint64_t delivered, skipped;
	char err_file[PATH_MAX];
	int64_t err_pos;
	struct rd_member *members; /* the groups it is the one reader of */
};

/* reader.c */
void rd_set_err(struct spw_reader *r, const char *file, uint64_t pos);
int64_t rd_earliest(const char *dir, struct spw_topic *t);
/* reader_disk.c */
void rd_seg_drop(struct rd_seg *g);
int rd_seg_load(struct spw_reader *r, uint64_t pos);
/* Load the index entries around r->pos into the buffer and verify them
 * (R3, R4). 1 when loaded, 0 at the end of what the disk has, or -errno. */
int rd_fill(struct spw_reader *r);
/* The chunk starting at entry i of g (R4): entries while they fit in
 * rd_chunk_bytes, at least one. */
void rd_plan_at(const struct rd_seg *g, int i, struct rd_plan *p);
/* The first of ent[0..n) whose CRC32C does not match its bytes in buf
 * (holding positions from buf_from; the entries start at from), or n (R3). */
int rd_crc_first_bad(const struct seg_idx_entry *ent, int n, const uint8_t *buf, uint64_t buf_from,
		     uint64_t from);
/* Grow a page-aligned buffer to at least n bytes: 0 or -ENOMEM. */
int rd_buf_grow(uint8_t **buf, size_t *cap, size_t n);
/* Is pos a record boundary (R1)? 0, -EINVAL (inside a record) or -errno. */
int rd_check_boundary(struct spw_reader *r, uint64_t pos);
/* Test seam (tests/spill_reader.c): called when a reader first goes live,
 * between its check that its position is still in the ring and opening a
 * consumer there, so a test can have the daemon reclaim it meanwhile. */
extern void (*rd_test_go_live_hook)(struct spw_reader *r) __attribute__((visibility("hidden")));
/* Test seam (tests/spill_reader.c): called when the segment at pos could
 * not be loaded (err as missing() gets it), before missing() reads the
 * checkpoint and lists the segments, so a test can have the daemon make
 * the segment and roll past it meanwhile. */
extern void (*rd_test_missing_hook)(struct spw_reader *r, uint64_t pos, int err)
	__attribute__((visibility("hidden")));
/* Chunk size (RD_CHUNK); tests make it small to get many chunks. */
extern size_t rd_chunk_bytes __attribute__((visibility("hidden")));

/* reader_ahead.c (R6) */
void rd_ahead_init(struct rd_ahead *a);
/* If the thread read (or is reading) the chunk p starts, wait for it and
 * take it: *buf holds it (the thread's buffer, read in place until the
 * next fill), *p becomes the job's plan (it may end earlier: the index grew
 * since), *got and *bad its results, *ent its entries (valid until the next
 * rd_ahead_next). A job for a chunk further on in the same segment is kept;
 * any other is dropped. */
bool rd_ahead_take(struct spw_reader *r, struct rd_plan *p, const uint8_t **buf, ssize_t *got,
		   int *bad, const struct seg_idx_entry **ent);
/* After chunk p was loaded good (took: by the thread): start the thread on
 * the second chunk in a row, and give it the chunk after the one the
 * reader reads itself next. */
void rd_ahead_next(struct spw_reader *r, const struct rd_plan *p, bool took);
/* Stop and join the thread, free its buffers (spw_reader_close). */
void rd_ahead_stop(struct rd_ahead *a);
/* CPUs the calling thread may run on, and the cgroup CPU quota (v2
 * cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, over the process's
 * cgroup and its ancestors), needed to start the thread (2; tests: 1). */
extern int rd_ahead_min_cpus __attribute__((visibility("hidden")));
/* A cgroup CPU quota in CPUs: quota / period; 0 for none ("max", -1);
 * -1 for text that is neither. */
double rd_quota_cpus(const char *quota, const char *period);
/* How long the reader waits for a chunk the thread has (0.5 ms; 0: for
 * ever), and whether it takes back a job the thread has not begun (true).
 * Tests set 0 and false: the thread then surely reads every other chunk. */
extern int64_t rd_ahead_give_up_ns __attribute__((visibility("hidden")));
extern bool rd_ahead_take_back __attribute__((visibility("hidden")));
/* Test seam: called by the thread when it starts, before it looks for a
 * job (a test blocks there: a thread that gets no CPU), and when it has
 * taken a job, before its pread (a thread that loses its CPU mid-job). */
enum { RD_AH_AT_START, RD_AH_AT_RUNNING };
extern void (*rd_test_ahead_hook)(int at) __attribute__((visibility("hidden")));

#endif
