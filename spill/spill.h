/* SPDX-License-Identifier: MIT */
/*
 * spill.h - private header of spill/: the segment and index format
 * (spill/FORMAT.md), the files spillway trusts, topic settings, recovery,
 * the disk walker, group positions. Used by daemon/, tools/ and tests; not
 * installed. The daemon's io_uring writer has its own spill/writer.h.
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
/* <data_dir>/.spillwayd.lock (0600): the running daemon holds a flock on it
 * (one daemon per data dir). <data_dir>/.spillwayd.pid (0644): its pid and
 * the shm dir it spills (a line each), made afresh at each start with an OFD write lock on byte 0 held for the
 * daemon's life, which the CLI asks about with F_OFD_GETLK (FORMAT.md). */
#define SEG_LOCK_NAME ".spillwayd.lock"
#define SEG_PID_NAME ".spillwayd.pid"
/* <data_dir>/.spillwayd.refused: "name<TAB>reason" per topic the running
 * daemon did not attach, rewritten whole when that changes (FORMAT.md). */
#define SEG_REFUSED_NAME ".spillwayd.refused"
#define SEG_REFUSED_WHY 400 /* bytes of a reason, NUL included */
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
/* A fingerprint of dir and the files directly in it (each one's inode, size,
 * mode, owner, links, mtime and ctime, by name; a subdir by name, inode and
 * mode): equal stamps mean nothing there changed in a way stat() sees. The
 * daemon keeps a refused attach refused until it changes. 0 or -errno. */
int seg_dir_stamp(const char *dir, uint64_t *stamp);
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
/* Give path (a directory when dir, else a regular file) group gid (-1:
 * unchanged) and mode (-1: unchanged), through a descriptor opened without
 * following any link below a root nor the last component, and only when it
 * is this user's own: never chown or chmod by path (a name swapped for a
 * link would hand the link's target out). 0, -ELOOP (a link), -EPERM (not
 * ours, or not that kind of file), or -errno. */
int seg_give(const char *path, bool dir, gid_t gid, int mode);
/* Replace dir/name with the n bytes at buf, never half-written: a temp file
 * of ours (O_EXCL, never through a link) with mode (-1: shared as seg_share
 * says) renamed over it; with sync, the file then dir fsynced. 0 or -errno. */
int seg_file_replace(const char *dir, const char *name, const void *buf, size_t n, bool sync,
		     int mode);
/* <topic_dir>/ring_id: which ring wrote the disk log (its header's created_ns),
 * so that spillwayd tells the ring that continues a log from a new one made
 * over it at a position the log already holds (FORMAT.md). Load: 0, -ENOENT,
 * -EBADMSG (not that format), or -errno (a link, another user's). */
#define SEG_RING_ID_NAME "ring_id"
/* <topic_dir>/.remake: `spillway topic delete --keep-log` asks spillwayd (on
 * SIGHUP) to make the topic's ring again at the log's end (FORMAT.md). */
#define SEG_REMAKE_NAME ".remake"
int seg_ring_id_load(const char *topic_dir, uint64_t *created_ns);
int seg_ring_id_save(const char *topic_dir, uint64_t created_ns); /* 0 or -errno; synced */

int seg_ckpt_open(const char *topic_dir);               /* fd, or -errno */
#define SEG_CKPT_BYTES 24u
void seg_ckpt_encode(void *buf, uint64_t durable);       /* SEG_CKPT_BYTES at buf */
int seg_ckpt_write(int fd, uint64_t durable);            /* written and synced: 0 or -errno */
int seg_ckpt_load(const char *topic_dir, uint64_t *durable); /* 0, -ENOENT (none, or empty), -EBADMSG */
/* The same whoever owns the file: for readers and verify, which only raise
 * an error when the log falls short of it (the daemon's recovery trusts
 * only its own: seg_ckpt_load). */
int seg_ckpt_peek(const char *topic_dir, uint64_t *durable);

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
	/* Retention that respects readers (spill/retention.c): segments a
	 * named group has not read are kept, up to the caps below. */
	bool retention_respect_groups;  /* default on */
	uint64_t retention_max_lag;     /* bytes kept past retention for groups; 0 = no cap */
	uint64_t retention_max_lag_ms;  /* age past retention for groups; 0 = no cap */
	uint64_t group_expiry_ms;       /* a group silent this long holds nothing; 0 = never */
};
void seg_conf_defaults(struct topic_conf *c);
int seg_conf_load(const char *topic_dir, struct topic_conf *c);
/* seg_conf_load, and on -EBADMSG the number of the line that is wrong in
 * *bad_line (0: the settings together, e.g. a segment size that is no
 * multiple of the ring). A line is "key = value" and nothing after the value
 * but blanks: "retention = 7 days" is refused (it is 7d), never read as 7. */
int seg_conf_load_why(const char *topic_dir, struct topic_conf *c, unsigned *bad_line);
int seg_conf_save(const char *topic_dir, const struct topic_conf *c);
int seg_parse_size(const char *s, uint64_t *out);     /* 64K, 1M, 2G, 1T */
/* A number with an optional unit letter from units (case-insensitive),
 * each step times the one before; bytes: "KiB", "KB", "B" spellings too. */
int seg_parse_scaled(const char *s, uint64_t step, const char *units, bool bytes,
		     uint64_t *out);
int seg_parse_duration_ms(const char *s, uint64_t *out); /* 500ms, 10s, 5m, 2h, 14d; bare = ms */
/* The duration syntax both use: a number and ms, s, m, h or d; a bare
 * number is in units of bare_ms. *ms unrounded; 0 or -EINVAL. */
int seg_parse_duration(const char *s, double bare_ms, double *ms);

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
/* spilled: how far a surviving ring says the log was acknowledged spilled
 * (its header's counter; 0 without a ring). Below it, or below the durable
 * checkpoint, an index that stops short is rebuilt from the segment's
 * records before anything is cut: the records are there (spilled means
 * written), the index may be what was damaged. */
int seg_recover(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		uint64_t spilled, struct seg_recovery *out, char *err, size_t errlen);

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



/* Consumer groups (spill/group.c): write a position atomically. */
int seg_group_write(const char *data_dir, const char *topic, const char *group, int64_t position);
/* A group's one reader: take its member lock into h (0; -EBUSY while
 * another reader holds it; -errno), let it go, check that the lock file is
 * still the one at its name (0, or -ENOLCK: removed or replaced, the group
 * may have another reader now), or ask whether a live reader holds it (1,
 * with its pid when /proc tells, else 0; 0 when not; -errno). */
int seg_group_join(const char *data_dir, const char *topic, const char *group,
		   struct ring_held *h);
void seg_group_leave(struct ring_held *h);
int seg_group_still_held(const char *data_dir, const char *topic, const char *group,
			 const struct ring_held *h);
int seg_group_holder(const char *data_dir, const char *topic, const char *group, uint32_t *pid);
/* Whether a groups/ entry is a lock file, with its group's name into group
 * (its path: spw_group_lock_path, spillway.h). */
bool seg_group_lock_name(const char *entry, char *group, size_t size);

/* The bound on a record's payload for a log whose max_record is not known
 * (no topic.conf, or 0 in it): a quarter ring, never above the hard cap and
 * never wrapped to 32 bits (rings go up to 2^40 bytes). */
static inline uint32_t seg_max_record_bound(uint64_t ring_bytes)
{
	return ring_bytes / 4 < SPW_RECORD_MAX_BYTES ? (uint32_t)(ring_bytes / 4) : SPW_RECORD_MAX_BYTES;
}

/* --- walk.c: the one walker of the disk log --------------------------------
 * Segments in order, each index header and entry checked, each entry's data
 * CRC, every record header (ring_word_check), the DATA counts and the
 * contiguity of segments. `spillway verify` and `dump` walk with it; the
 * reader and recovery use its record decoder (seg_rec_decode). */
enum { SEG_LOG_DATA = RING_T_DATA, SEG_LOG_PADDING = RING_T_PADDING, SEG_LOG_ABORTED = RING_T_ABORTED,
       SEG_LOG_CORRUPT = RING_T_CORRUPT,
       SEG_LOG_CLAIMED = 8 /* ring only: claimed, not committed yet */ };
struct seg_log_rec {
	uint64_t pos, span, ts; /* ts 0: none (8-byte PADDING / ABORTED) */
	uint32_t type, len;
	const uint8_t *data;    /* DATA payload, valid during the callback */
};
struct seg_log {
	/* in */
	const char *dir;         /* the topic's data dir */
	uint64_t from, to;       /* positions of interest [from, to); to 0: no bound */
	uint32_t max_record;     /* header bounds; 0: ring / 4 */
	uint64_t ring_bytes, segment_bytes; /* the topic's (topic.conf): index headers
					     * must agree; 0: not checked */
	bool walk_records;       /* check every record header (and call on_rec) */
	int (*on_rec)(void *arg, const struct seg_log_rec *r); /* non-zero stops the walk */
	void (*on_bad)(void *arg, const char *file, uint64_t from, uint64_t to, const char *why);
	void (*on_seg)(void *arg, const char *file, const struct seg_idx_hdr *h, int entries);
	void (*on_seg_end)(void *arg, const char *file, uint64_t bytes, uint64_t records, uint64_t bad);
	void *arg;
	/* out */
	uint64_t segments, entries, bytes, records, bad, unindexed;
	uint64_t bad_bytes;      /* in the BAD ranges, each byte once (they may overlap) */
	void *bad_ranges;        /* (the walk's own: the union so far, freed at its end) */
	size_t nbad_ranges;
	uint64_t first, end;     /* first position on disk, end of the verified log */
	bool stopped;            /* on_rec asked to stop */
};
/* 0 (also for a topic with no segments), or -errno when the dir cannot be
 * listed. Everything found wrong goes to on_bad and the counters. */
int seg_log_walk(struct seg_log *w);
/* The position to start at for records at or after time_ns (an index
 * entry's start): 0, or -ENOENT when the disk has nothing that recent. */
int seg_log_time_pos(const char *dir, uint64_t time_ns, uint64_t *pos);
/* Walk the ring from `start` (a record boundary >= reclaimed) to the tail;
 * records before `from` are walked, not reported. Returns 0 at the tail or
 * an uncommitted record, -ESTALE when lapped, -EBADMSG at a bad header
 * (*at names it), or what on_rec returned. */
int seg_log_ring_walk(struct spw_topic *t, uint64_t start, uint64_t from, uint64_t to,
		   int (*on_rec)(void *, const struct seg_log_rec *), void *arg, uint64_t *at);
const char *seg_log_type(uint32_t type);
/* Does a record start at pos (disk, else ring)? 0 when it does or nothing
 * near it is known; -EINVAL with the neighbouring record starts otherwise;
 * -ERANGE past the ring's tail (*before, *after: the tail);
 * -EBADMSG when pos lies in a damaged range (*before, *after: the range; why,
 * if not NULL: what is wrong, as on_bad says), where no record start can be
 * trusted. */
int seg_log_check_position(const char *dir, struct spw_topic *t, uint64_t pos, uint64_t *before,
			uint64_t *after, char *why, size_t why_len);
/* One record of the disk format from its bytes at position pos (left bytes
 * readable there): 0 and *out, or -EBADMSG when its commit word is not one
 * the format allows there (ring_word_check) or the record runs past left. */
int seg_rec_decode(const uint8_t *p, uint64_t pos, uint64_t left, uint64_t ring_bytes,
		   uint32_t max_record, struct seg_log_rec *out);
/* The end of the indexed disk log (the newest segment's last entry), or
 * fallback when there is none. */
uint64_t seg_log_end(const char *dir, uint64_t fallback);

/* --- retention.c: what retention deletes, and who holds it back -------------- */
struct seg_ret_plan {
	uint64_t *bases;      /* segments to delete, oldest first */
	const char **why;     /* "age", "size", or "... past retention_max_lag" */
	size_t n;
	size_t forced;        /* of them, ones a group had not read (it gets -ERANGE) */
	char forced_group[SPW_NAME_MAX + 1];
	uint64_t held_bytes;  /* bytes past retention kept for the slowest group */
	char holder[SPW_NAME_MAX + 1]; /* that group ("" when none holds anything) */
	int64_t holder_pos;
	int holder_err;       /* -errno: the holder's group file (or the groups
			       * dir, holder "groups") could not be read, so it
			       * holds everything (spill/retention.c on_group) */
};
/* The plan for the topic's disk log under settings c, now: segments below
 * active_base only. 0 or -errno; seg_ret_plan_free after. */
int seg_retention_plan(const char *data_dir, const char *topic, const struct topic_conf *c,
		       uint64_t active_base, uint64_t now_ns, struct seg_ret_plan *p);
void seg_ret_plan_free(struct seg_ret_plan *p);

#endif /* SPILLWAY_SPILL_H */
