/* SPDX-License-Identifier: MIT */
/*
 * spillway_daemon.h - the daemon's own verbs on a ring: scan, reclaim,
 * settle a stuck record, publish counters and stalls, own the ring. Private:
 * used by spill/ and daemon/ (and tests), never installed, and not exported
 * by libspillway.so (ring/libspillway.map exports spw_* only; these are
 * spwd_*). Applications use ring/spillway.h.
 */
#ifndef SPILLWAY_DAEMON_H
#define SPILLWAY_DAEMON_H

#include "spillway.h"

#ifdef __cplusplus
extern "C" {
#endif

struct spwd_scan_result {
	int64_t end;           /* end of the committed run (a record boundary) */
	uint64_t records;      /* DATA records in [from, end) */
	uint64_t max_timestamp_ns;
	int64_t stuck;         /* position of the first record not committed, or -1 */
	uint64_t stuck_header; /* its raw commit word (0: never written) */
};
/* Walk the committed records from `from` (a record boundary) for at most
 * max_bytes, stopping at the first uncommitted record or the end of the ring
 * (a run never wraps). Returns the bytes covered (end - from), or -EBADMSG at
 * garbage (out->end then names the bad position), -ESTALE if `from` was
 * reclaimed. */
int64_t spwd_scan(struct spw_topic *t, int64_t from, uint64_t max_bytes,
		       struct spwd_scan_result *out);

/* Make the ring bytes below `upto` reusable: publish the new reclaim bound,
 * zero the bytes, advance limit to upto + ring_bytes, and wake blocked
 * producers only when some wait. `upto` must be a record boundary of
 * committed records, 8-aligned, between the current bound and the tail. */
int spwd_reclaim(struct spw_topic *t, int64_t upto);

/* Look at the record at `position` (the first one scan could not pass:
 * uncommitted, or garbage) and settle it if nobody alive holds it
 * (ring_layout.h I7):
 *   SPWD_RESOLVE_NONE     it is committed (now): nothing to do
 *   SPWD_RESOLVE_LIVE     a live producer's claim holds it: wait (slot, pid)
 *   SPWD_RESOLVE_ABORTED  a dead producer's claim: now an ABORTED record
 *   SPWD_RESOLVE_CORRUPT  garbage: now a CORRUPT record up to the first
 *                        boundary that can be proven (span bytes)
 * Returns the action (>= 0) or -errno. */
enum spwd_resolve_action {
	SPWD_RESOLVE_NONE = 0,
	SPWD_RESOLVE_LIVE = 1,
	SPWD_RESOLVE_ABORTED = 2,
	SPWD_RESOLVE_CORRUPT = 3,
};
struct spwd_stall {
	int64_t position;
	int32_t slot;   /* the owning slot, -1 when none is known */
	uint32_t pid;   /* its self-reported pid (advisory) */
	uint64_t word;  /* the commit word found at position */
	uint64_t span;  /* bytes turned into the ABORTED / CORRUPT record */
};
int spwd_resolve(struct spw_topic *t, int64_t position, struct spwd_stall *out);
/* An fdatasync failed (err < 0): durable never moves again for this ring, and
 * durable acknowledgement waiters past it get err. 0 clears it (a daemon that
 * attaches anew, after recovery re-verified the log). */
int spwd_set_durable_error(struct spw_topic *t, int err);
/* The daemon cannot write segments (err < 0) or can again (0): why producers
 * wait, for stat and the CLI. */
int spwd_set_spill_error(struct spw_topic *t, int err);
/* Retention deleted segments a group had not read (past its cap), for stat. */
int spwd_add_retention_forced(struct spw_topic *t, uint64_t segments);
/* What recovery found damaged below the durable checkpoint, for stat. */
int spwd_set_disk_damage(struct spw_topic *t, uint64_t bad_ranges);
/* Publish (or clear, slot < 0) the stall the daemon is waiting on, for stat. */
int spwd_set_stall(struct spw_topic *t, int32_t slot, int64_t position, uint32_t pid,
			uint64_t since_ns);

/* Own the ring as its one spilling daemon, until spw_topic_close or the
 * process's death (an OFD write lock on the ring file: the kernel releases it
 * when the process dies). 0, or -EBUSY when another process owns it; then
 * *owner_pid names it when the kernel tells (else 0). */
int spwd_own(struct spw_topic *t, uint32_t *owner_pid);
/* Does a spillwayd own the ring now (spwd_own's lock, asked of the kernel)?
 * 1 yes (alive, or stopped: its heartbeat says which), 0 no (none ever, or
 * it exited: the kernel dropped the lock, a zombie holds none), or -errno. */
int spwd_owned(const struct spw_topic *t);

/* Counters the daemon publishes. */
enum spwd_counter { SPWD_SPILLED = 0, SPWD_DURABLE = 1 };
int spwd_set_counter(struct spw_topic *t, enum spwd_counter which, int64_t value);
/* Heartbeat: pid and CLOCK_REALTIME now; also resets waiter counts that
 * sleepers killed with -9 left behind (ring_layout.h I8). */
int spwd_heartbeat(struct spw_topic *t, uint32_t pid);

#ifdef __cplusplus
}
#endif
#endif /* SPILLWAY_DAEMON_H */
