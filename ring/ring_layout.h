/* SPDX-License-Identifier: MIT */
/*
 * ring_layout.h - the ring file format and the shared-memory protocol.
 * Private to libspillway (ring/, spill/, daemon/, tests).
 *
 * File <shm_dir>/<topic>.ring = one 4096-byte header page + ring_bytes of data.
 *
 * Header page: the immutable part (written once by create, before the file is
 * linked under its name, so nobody sees a half-made header), then each shared
 * counter alone on a 128-byte line (no false sharing, adjacent-line prefetch).
 *
 * Record (8-byte aligned, never straddles the end of the ring):
 *   u64 commit word   bits  0..31 payload length (DATA) or the whole span in
 *                                 bytes (PADDING, ABORTED)
 *                     bits 32..39 type (RING_T_*)
 *                     bits 40..55 flags (reserved, 0)
 *                     bit  62     CLAIMED: the header was written by its producer
 *                     bit  63     COMMITTED: the record is complete
 *                     0 = never written (reclaimed memory is zeroed)
 *   u64 timestamp_ns  CLOCK_REALTIME at claim (absent in an 8-byte PADDING/ABORTED)
 *   payload           len bytes, then zero..7 bytes to the next 8-byte boundary
 *
 * THE PROTOCOL - numbered invariants (tests cite them):
 *  I1 tail, reclaimed, limit only grow. reclaimed <= every unconsumed record,
 *     tail <= limit == reclaimed + ring_bytes. Writers: tail = producers (CAS),
 *     reclaimed/limit/spilled/durable/heartbeat = the one daemon.
 *  I2 A producer owns [old tail, new tail) after its CAS; no one else writes
 *     there until the daemon aborts it (unblock) or reclaims it.
 *  I3 Before limit lets a producer reuse ring bytes, the daemon has (a) stored
 *     the new reclaim bound and then (b) zeroed those bytes. So a producer's
 *     claimed span is all zero until it writes its header, and a reader that
 *     sees p < limit (acquire) can never read a previous lap's header at p.
 *  I4 Header first, payload next, commit last. The header is a CAS from 0 to
 *     the CLAIMED word, the commit a CAS from the CLAIMED word to the
 *     COMMITTED word (release). Either fails only when the daemon aborted the
 *     claim meanwhile (I7): the producer gets -ECANCELED and never overwrites
 *     the ABORTED record.
 *  I5 A reader at p reads the commit word (acquire), the payload, then an
 *     acquire fence and `reclaimed`: if reclaimed > p, what it read may be
 *     torn (zeroed or overwritten): it reports -ESTALE, never the record.
 *  I6 Padding: a claim that does not fit before the ring's end covers a
 *     PADDING record to the end plus the record at offset 0, in one CAS.
 *     Records (and so segment files, whose size is a multiple of the ring)
 *     never straddle the end.
 *  I7 Unblock: a claim stuck past the timeout becomes an ABORTED record of
 *     exactly its span: from its header when written, else up to the first
 *     non-zero word before the tail (I3 says everything between is unwritten).
 *  I8 Wake-ups (Dekker pairs, all seq_cst): a sleeper increments the waiter
 *     count, then re-checks the condition; the waker changes the condition,
 *     then loads the waiter count and, only when non-zero, bumps the wake
 *     word and calls FUTEX_WAKE. Neither side can miss the other.
 */
#ifndef SPILLWAY_RING_LAYOUT_H
#define SPILLWAY_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC 0x4c57504c4c495053ull /* "SPILLPWL" little-endian */
#define RING_VERSION 1u
#define RING_HDR_BYTES 4096u
#define RING_LINE 128
#define RING_MAX_BYTES (1ull << 40)

#define RING_T_DATA 1u
#define RING_T_PADDING 2u
#define RING_T_ABORTED 3u

#define RING_W_CLAIMED (1ull << 62)
#define RING_W_COMMITTED (1ull << 63)
/* Written by unblock into the never-written words of a dead span (I7):
 * neither CLAIMED nor COMMITTED, so no header CAS from 0 succeeds on it. */
#define RING_W_POISON 0x0badc0de0badc0deull
#define RING_W_LEN(w) ((uint32_t)((w) & 0xffffffffull))
#define RING_W_TYPE(w) ((uint32_t)(((w) >> 32) & 0xffu))
#define RING_W_FLAGS(w) ((uint32_t)(((w) >> 40) & 0xffffu))
#define RING_W_MAKE(type, len) (((uint64_t)(type) << 32) | (uint64_t)(len))

struct ring_rec {
	_Atomic uint64_t commit;
	uint64_t timestamp_ns;
};

struct ring_hdr {
	/* Line 0: immutable after create (written before the file is linked). */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_bytes;
	uint64_t ring_bytes;
	uint64_t segment_bytes;
	uint32_t max_record;
	uint32_t flags;
	uint64_t created_ns;
	uint64_t start_position;

	/* Producers: CAS. Daemon: acquire load (scan/unblock bound). */
	alignas(RING_LINE) _Atomic uint64_t tail;
	/* Daemon writes (seq_cst store, I3/I5); readers load after reading. */
	alignas(RING_LINE) _Atomic uint64_t reclaimed;
	/* Daemon writes after zeroing (seq_cst, I3/I8); producers load per claim. */
	alignas(RING_LINE) _Atomic uint64_t limit;
	/* Daemon writes; tools and acknowledgement waiters read. */
	alignas(RING_LINE) _Atomic uint64_t spilled;
	alignas(RING_LINE) _Atomic uint64_t durable;
	/* Daemon heartbeat: pid then time (each relaxed: advisory only). */
	alignas(RING_LINE) _Atomic uint32_t daemon_pid;
	_Atomic uint64_t daemon_heartbeat_ns;
	/* Producers blocked on a full ring (I8 with limit). */
	alignas(RING_LINE) _Atomic uint32_t prod_wake;
	_Atomic uint32_t prod_waiters;
	/* Consumers blocked on an empty ring (I8 with the commit words). */
	alignas(RING_LINE) _Atomic uint32_t cons_wake;
	_Atomic uint32_t cons_waiters;
	/* Producers waiting for an acknowledgement (I8 with spilled/durable). */
	alignas(RING_LINE) _Atomic uint32_t ack_wake;
	_Atomic uint32_t ack_waiters;
};

_Static_assert(sizeof(struct ring_rec) == 16, "record header is 16 bytes");
_Static_assert(sizeof(struct ring_hdr) <= RING_HDR_BYTES, "header fits its page");
_Static_assert(offsetof(struct ring_hdr, tail) == 128, "tail on line 1");
_Static_assert(offsetof(struct ring_hdr, reclaimed) == 256, "reclaimed on line 2");
_Static_assert(offsetof(struct ring_hdr, limit) == 384, "limit on line 3");
_Static_assert(offsetof(struct ring_hdr, spilled) == 512, "spilled on line 4");
_Static_assert(offsetof(struct ring_hdr, durable) == 640, "durable on line 5");
_Static_assert(offsetof(struct ring_hdr, daemon_pid) == 768, "heartbeat on line 6");
_Static_assert(offsetof(struct ring_hdr, prod_wake) == 896, "producer wake on line 7");
_Static_assert(offsetof(struct ring_hdr, cons_wake) == 1024, "consumer wake on line 8");
_Static_assert(offsetof(struct ring_hdr, ack_wake) == 1152, "ack wake on line 9");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

static inline uint64_t ring_span(uint32_t len)
{
	return ((uint64_t)len + 16u + 7u) & ~7ull;
}

/* Test-only pause point: called, when set, right after a producer's tail CAS
 * and before it writes any header byte (crash tests kill it there). */
extern void (*ring_test_hook_after_claim)(void);

#endif
