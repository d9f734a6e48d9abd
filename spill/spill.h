/* SPDX-License-Identifier: MIT */
/*
 * spill.h - private header of spill/: the segment and index format
 * (spill/FORMAT.md), topic settings files, recovery, and the io_uring
 * writer. Used by daemon/, tools/ and tests; not installed.
 */
#ifndef SPILLWAY_SPILL_H
#define SPILLWAY_SPILL_H

#include "../ring/ring_internal.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEG_IDX_MAGIC 0x5844495950535053ull /* "SPSPYIDX" little-endian */
#define SEG_IDX_VERSION 2u /* 2: lap-tagged commit words (ring_layout.h) */
#define SEG_IDX_HDR_BYTES 64u
#define SEG_IDX_ENTRY_BYTES 32u
#define SEG_ENTRY_SPAN (64u << 10) /* an index entry every ~64 KiB */
#define SEG_CONF_NAME "topic.conf"
/* <topic_dir>/durable: how far the log is known durable (FORMAT.md). */
#define SEG_CKPT_NAME "durable"
#define SEG_CKPT_MAGIC 0x5450434b44575053ull /* "SPWDKCPT" */
/* --- files.c: the files and directories spillway trusts ------------------ */
/* Name a root (the daemon's data dir and shm dir) and hold it open: every
 * path below it is then reached component by component from that fd with
 * O_NOFOLLOW (openat family), so no symlink below a root is ever followed.
 * 0 or -errno. A path under no root is used as named. */
int seg_trust_root(const char *dir);
/* Open a file the way spillway trusts it: never through a symlink (-ELOOP),
 * only a regular file (-EINVAL), and with own, only one owned by this
 * effective user (-EPERM). O_CLOEXEC always. fd or -errno. */
int seg_open_file(const char *path, int flags, unsigned mode, bool own);
int seg_open_dir(const char *path);            /* fd or -errno; O_NOFOLLOW below a root */
DIR *seg_opendir(const char *path);            /* NULL and errno */
int seg_sync_dir(const char *path);            /* fsync a directory: 0 or -errno */
int seg_unlink(const char *path);              /* 0 or -errno */
int seg_rename(const char *from, const char *to); /* 0 or -errno */
int seg_mkdir(const char *path, unsigned mode);  /* 0 or -errno (-EEXIST) */
int seg_lstat(const char *path, struct stat *st); /* 0 or -errno; never follows */
/* A directory spillway keeps files in: a real directory (not a symlink),
 * owned by this user, not writable by others. 0, or -errno and why[]. */
int seg_dir_check(const char *dir, char *why, size_t why_len);
/* The same; allow_link false also refuses dir itself being a symlink (a topic
 * dir: the data dir itself may be a link to a disk of ours). */
int seg_dir_check_link(const char *dir, bool allow_link, char *why, size_t why_len);
/* A topic shares its files with the group of its dir when that dir grants
 * its group access (`topic create --group G`): every file spillway writes
 * there gets that group and mode 0640, else 0600. Applied at every create. */
void seg_share(int fd, const char *topic_dir);
/* The mode for a directory spillway makes inside topic_dir: 02770 (setgid,
 * group-writable: members commit group positions) when shared, else 0700;
 * *gid its group. */
unsigned seg_share_dir_mode(const char *topic_dir, gid_t *gid);

int seg_ckpt_open(const char *topic_dir);               /* fd, or -errno */
#define SEG_CKPT_BYTES 24u
void seg_ckpt_encode(void *buf, uint64_t durable);       /* SEG_CKPT_BYTES at buf */
int seg_ckpt_write(int fd, uint64_t durable);            /* written and synced: 0 or -errno */
int seg_ckpt_load(const char *topic_dir, uint64_t *durable); /* 0, -ENOENT, -EBADMSG */

/* .idx header, 64 bytes, little-endian. */
struct seg_idx_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t entry_bytes;
	uint64_t base;           /* the segment's base position (file name) */
	uint64_t first;          /* first position with data in this segment */
	uint64_t segment_bytes;
	uint64_t ring_bytes;
	uint64_t created_ns;
	uint32_t reserved;
	uint32_t crc;            /* CRC32C of the 60 bytes before it */
};

/* .idx entry, 32 bytes: covers [previous end (or first), end). */
struct seg_idx_entry {
	uint64_t end;            /* position after the covered bytes */
	uint64_t records;        /* DATA records in the segment up to end */
	uint64_t max_ts;         /* max record timestamp in the segment up to end */
	uint32_t crc_data;       /* CRC32C of the covered segment bytes */
	uint32_t crc;            /* CRC32C of the 28 bytes before it */
};

_Static_assert(sizeof(struct seg_idx_hdr) == SEG_IDX_HDR_BYTES, "idx header size");
_Static_assert(sizeof(struct seg_idx_entry) == SEG_IDX_ENTRY_BYTES, "idx entry size");

uint32_t seg_crc32c(uint32_t crc, const void *buf, size_t n);
void seg_idx_hdr_seal(struct seg_idx_hdr *h);
void seg_idx_entry_seal(struct seg_idx_entry *e);
bool seg_idx_entry_ok(const struct seg_idx_entry *e);
/* A new index header, sealed; and the checks a header read from disk must
 * pass (magic, version, CRC, sizes, alignment). spill/index.c */
void seg_idx_hdr_init(struct seg_idx_hdr *h, uint64_t base, uint64_t first,
		      uint64_t segment_bytes, uint64_t ring_bytes);
bool seg_idx_hdr_ok(const struct seg_idx_hdr *h);

/* <data>/<topic> and <data>/<topic>/<20-digit base>.<ext> */
int seg_topic_dir(char *buf, size_t size, const char *data_dir, const char *topic);
int seg_file_path(char *buf, size_t size, const char *topic_dir, uint64_t base, const char *ext);

/* Sorted bases of the .seg files in topic_dir. *bases is malloc'd. */
int seg_list(const char *topic_dir, uint64_t **bases, size_t *n);

/* Load an index: header checked, entries up to the first bad one (torn or
 * out of order). Returns the number of good entries, or -errno. */
int seg_idx_load(const char *idx_path, struct seg_idx_hdr *hdr, struct seg_idx_entry **entries);

/* Topic settings: <data>/<topic>/topic.conf, "key = value" lines. */
struct topic_conf {
	uint64_t ring_bytes, segment_bytes;
	uint32_t max_record, mode;
	bool no_spill;
	uint64_t retention_ms;    /* 0 = keep forever */
	uint64_t retention_bytes; /* 0 = unlimited */
	uint64_t flush_ms, flush_bytes;
	uint64_t unblock_ms;      /* report a live producer's stall after this long */
	uint32_t max_producers;   /* producer slots of the ring (0 = 64) */
};
void seg_conf_defaults(struct topic_conf *c);
int seg_conf_load(const char *topic_dir, struct topic_conf *c);
int seg_conf_save(const char *topic_dir, const struct topic_conf *c);
int seg_parse_size(const char *s, uint64_t *out);     /* 64K, 1M, 2G, 1T */
int seg_parse_duration_ms(const char *s, uint64_t *out); /* 500ms, 10s, 5m, 2h, 14d; bare = ms */

/* Recovery of a topic's disk log. Checks the last segment against its index,
 * truncates a torn tail (bytes past the last entry whose CRC matches),
 * and reports where the log ends. */
struct seg_recovery {
	bool empty;         /* no segment at all */
	uint64_t end;       /* position after the last verified byte */
	uint64_t high;      /* highest position ever written (file size), >= end */
	uint64_t first;     /* oldest position kept on disk */
	size_t segments;
	uint64_t truncated; /* bytes cut from the tail */
	uint64_t checkpoint; /* durable checkpoint found (0: none): never cut below */
	uint64_t bad_ranges; /* index entries below it whose bytes fail their CRC: kept */
	uint64_t bad_from, bad_to; /* the first of them */
	uint64_t lost_durable;  /* bytes below the checkpoint that are gone (file shrank) */
	bool idx_rebuilt;       /* the last index was empty or unreadable: rebuilt from the .seg */
};
int seg_recover(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		struct seg_recovery *out, char *err, size_t errlen);

/* Fill [from, to) of the log with ABORTED records (the gap left by a torn
 * tail that consumers may have seen, or lost ring bytes): the log then
 * continues at `to` and positions are never reused. Writes the segment bytes
 * and the index entries synchronously. */
int seg_fill_gap(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		 uint64_t from, uint64_t to);

/* Create (or open) the segment + index pair for base, index header written
 * when new. Preallocates the segment (FALLOC_FL_KEEP_SIZE). */
int seg_open(const char *topic_dir, uint64_t base, uint64_t first, uint64_t ring_bytes,
	     uint64_t segment_bytes, bool prealloc, int *seg_fd, int *idx_fd,
	     uint64_t *idx_entries, struct seg_idx_entry *last);

/* Fault-injection seam for tests: when $SPILLWAY_FAULT_FILE names an
 * existing file whose content is an errno name or number (ENOSPC, EIO),
 * every segment write fails with it. Returns 0 or -errno. */
int seg_fault_check(void);
/* The fault seam for fdatasync: -EIO while the fault file says "FSYNC". */
int seg_fault_fsync(void);
/* The fault seam for io_uring_submit: -EBUSY while the fault file says
 * "SUBMIT" (every other call, so the queue still drains slowly). */
int seg_fault_submit(void);

#endif

/* Consumer groups (spill/group.c): write a position atomically. */
int seg_group_write(const char *data_dir, const char *topic, const char *group, int64_t position);

/* --- the io_uring writer (spill/writer.c) --------------------------------- */
#include <liburing.h>

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
	uint64_t rolls; /* segments closed: the daemon runs retention after each */
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
