/* SPDX-License-Identifier: MIT */
/*
 * ring_layout.h - the ring file format and the shared-memory protocol.
 * Private to libspillway (ring/, spill/, daemon/, tools/, tests).
 *
 * File <shm_dir>/<topic>.ring = hdr_bytes of header (one 4096-byte page of
 * settings and counters, then the producer slots, rounded up to a page) and
 * ring_bytes of data. Format version 3 (the solo word, I9, is new in it;
 * rings of versions 1 and 2 get -EPROTO: recreate them).
 *
 * Header page: the immutable part (written once by create, before the file is
 * linked under its name, so nobody sees a half-made header), then each shared
 * counter alone on a 128-byte line (no false sharing, adjacent-line prefetch).
 *
 * Producer slots (RING_SLOT_OFF + i * 128, i < max_producers): one per open
 * producer handle. The handle holds an OFD write lock on the slot's first
 * byte of the file for as long as it lives; the kernel drops it when the
 * process dies (its open file description closes), so F_OFD_GETLK proves a
 * slot's owner dead or alive without a PID and across PID namespaces.
 *
 * Record (8-byte aligned, never straddles the end of the ring):
 *   u64 commit word   bits  0..31 payload length (DATA) or the whole span in
 *                                 bytes (PADDING, ABORTED, CORRUPT)
 *                     bits 32..35 type (RING_T_*)
 *                     bits 36..39 reserved, 0
 *                     bits 40..61 lap tag: (position / ring_bytes) mod 2^22
 *                     bits 62, 63 DONE: both set in every complete record
 *                     0 = not committed yet (reclaimed memory is zeroed)
 *   u64 timestamp_ns  CLOCK_REALTIME at claim (absent in an 8-byte span)
 *   payload           len bytes, then zero..7 bytes to the next 8-byte boundary
 * The same bytes are what segment files hold (spill/FORMAT.md), and
 * ring_word_check() below is the one validator of a commit word, for the
 * ring, the daemon, recovery, the disk reader, dump and verify.
 *
 * THE PROTOCOL - numbered invariants (tests cite them):
 *  I1 tail, reclaimed, limit only grow. reclaimed <= every unconsumed record,
 *     tail <= limit == reclaimed + ring_bytes. Writers: tail = producers (CAS;
 *     a store by the only producer: exclusive, or solo, I9),
 *     reclaimed/limit/spilled/durable/heartbeat/stall = the one daemon.
 *  I2 Before its tail CAS, a producer publishes in its slot the span it is
 *     about to take: claim = guess | RING_SLOT_CLAIMING (guess = the tail
 *     value its CAS expects), then end (release; readers load end, then
 *     claim); the CAS (release) orders both before the new tail. So anyone who reads tail (acquire) and then
 *     the slots sees, for every position below that tail, the slot of the
 *     producer that owns it (or a later claim of the same slot, which that
 *     producer made only after committing the earlier one). A producer owns
 *     [guess, end) after a successful CAS, then says so (claim = start |
 *     RING_SLOT_WON), and stores RING_SLOT_IDLE (release) after its last
 *     commit. A span holds one record, or a batch's records
 *     (spw_producer_send_batch), committed one by one in order; after each
 *     commit but the last the owner stores claim = next record | WON
 *     (release, after the commit), so the slot names only the uncommitted
 *     rest [claim, end): a dead owner's rest is aborted exactly, and garbage
 *     over one of its committed records is cut up to that claim (I7). A
 *     reader that looks between a commit and that store finds the next
 *     record by the chain of committed records from the older claim
 *     (consume.c boundary()).
 *     Nobody else writes in its span while its owner lives: a live claim is
 *     never taken away. An exclusive
 *     producer (the only one: RING_EXCL_OFF's write lock) does the same with
 *     a release store of tail instead of the CAS.
 *  I3 Before limit lets a producer reuse ring bytes, the daemon has (a) stored
 *     the new reclaim bound and then (b) zeroed those bytes. So a claimed
 *     span is all zero until its owner writes it, and a reader that
 *     sees p < limit (acquire) can never read a previous lap's header at p.
 *  I4 A record's commit word is written once, by a release store after the
 *     timestamp and payload: 0 until then. The padding of a wrapping claim
 *     is a release store of its own, before the record at offset 0.
 *     (The lap tag makes a word written for another lap invalid here.)
 *  I5 A reader at p reads the commit word (acquire), the payload, then an
 *     acquire fence and `reclaimed`: if reclaimed > p, what it read may be
 *     torn (zeroed or overwritten): it reports -ESTALE, never the record.
 *  I6 Padding: a claim that does not fit before the ring's end covers a
 *     PADDING record to the end plus the record at offset 0, in one CAS.
 *     Records (and so segment files, whose size is a multiple of the ring)
 *     never straddle the end.
 *  I7 Only the dead are aborted. The daemon turns the uncommitted record at
 *     p into an ABORTED record only when its owner is dead: every WON slot
 *     whose span holds p (honestly exactly one can; a forged second one
 *     never outvotes a live one), else every CLAIMING slot whose span
 *     holds p (a stale guess is only more careful) has its OFD lock free; and
 *     then exactly over the dead slot's span (or, for a slot reused since, up to the next boundary a
 *     slot or the tail proves). A word at p that fails ring_word_check() is
 *     garbage: when no live slot holds p, the daemon replaces it by a
 *     CORRUPT record that ends at the first boundary it can prove (a slot's
 *     claim, the tail, the lap end, or the start of a chain of valid
 *     records reaching one of those); readers skip and count it. Both are
 *     a CAS from the word the daemon judged, so a commit in between wins.
 *  I8 Wake-ups: a sleeper takes a shared OFD lock on its waiter counter's
 *     byte, increments the count (seq_cst), re-checks, sleeps, decrements,
 *     unlocks. The waker changes the condition, then loads the count and,
 *     only when non-zero, bumps the wake word and calls FUTEX_WAKE. For
 *     limit and spilled/durable (the daemon) both sides are seq_cst. For
 *     commits the producer pays no fence: a sleeping consumer issues
 *     membarrier(GLOBAL_EXPEDITED) between its increment and its re-check,
 *     which puts a full barrier into every running producer (producers
 *     register for it at open; one that cannot uses a seq_cst fence).
 *     A count left behind by a sleeper killed with -9 is reset by the
 *     daemon when nobody holds the byte's lock any more (ring_waiters_repair).
 *  I9 Solo: a shared producer that is the only live one claims like an
 *     exclusive producer (a release store of tail, no locked instruction)
 *     while the solo word names it. It becomes solo at open only: it CASes
 *     the word from off to ON with its slot, then checks that no other slot
 *     is locked (F_OFD_GETLK), and turns the word off again if one is. Each
 *     claim publishes its span in its slot (I2), then, after a compiler
 *     barrier, loads the word: changed means it is solo no longer and it
 *     takes the span with the CAS instead. A producer that opens while the
 *     word is ON CASes it to ENDING (same slot), then calls
 *     membarrier(GLOBAL_EXPEDITED): that puts a full barrier into the solo
 *     producer, so either its load sees the change, or its CLAIMING store
 *     (made before that load) is visible to the newcomer, who then takes no
 *     span until that claim is settled (the slot's claim word changes, the
 *     tail moves past its start, or its owner is dead), and only then
 *     turns the word off. So off means no plain store of tail can still
 *     come; whoever opens while the word says ENDING does the barrier and
 *     the wait itself (the one who set it may have died). A solo producer
 *     turns the word off when it closes, and when it finds its solo ended
 *     (it then stores IDLE in its slot first: the guess it published is
 *     not taken). A newcomer whose membarrier fails gets the error from
 *     open (it cannot tell). Exclusive producers never touch the word.
 */
#ifndef SPILLWAY_RING_LAYOUT_H
#define SPILLWAY_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC 0x4c57504c4c495053ull /* "SPILLPWL" little-endian */
#define RING_VERSION 3u
#define RING_PAGE 4096u
#define RING_LINE 128
#define RING_MAX_BYTES (1ull << 40)

#define RING_SLOT_OFF RING_PAGE  /* slots start on the second page */
#define RING_SLOT_BYTES 128u
#define RING_PRODUCERS_DEFAULT 64u
#define RING_PRODUCERS_MAX 4096u

#define RING_T_DATA 1u
#define RING_T_PADDING 2u
#define RING_T_ABORTED 3u
#define RING_T_CORRUPT 4u /* bytes the daemon could not parse, kept and skipped */

#define RING_W_DONE (3ull << 62)
#define RING_W_TAG_SHIFT 40
#define RING_W_TAG_MASK 0x3fffffull
#define RING_W_LEN(w) ((uint32_t)((w) & 0xffffffffull))
#define RING_W_TYPE(w) ((uint32_t)(((w) >> 32) & 0xfu))
#define RING_W_RSVD(w) ((uint32_t)(((w) >> 36) & 0xfu))
#define RING_W_TAG(w) (((w) >> RING_W_TAG_SHIFT) & RING_W_TAG_MASK)

/* The solo word (I9): ON or ENDING | slot << 2 | generation << 14; 0 in
 * the low bits: nobody is solo and no solo claim can be in flight. */
#define RING_SOLO_ON 1ull
#define RING_SOLO_ENDING 2ull
#define RING_SOLO_SLOT_SHIFT 2
#define RING_SOLO_SLOT(w) ((uint32_t)(((w) >> RING_SOLO_SLOT_SHIFT) & 0xfffu))
#define RING_SOLO_GEN_ONE (1ull << 14)
#define RING_SOLO_GEN(w) ((w) & ~(RING_SOLO_GEN_ONE - 1))

/* Slot claim word: a position (8-aligned) with these low bits. */
#define RING_SLOT_CLAIMING 1ull /* guess | CLAIMING: span published, CAS not known won (I2) */
#define RING_SLOT_IDLE 2ull     /* no span: between records (stored after each commit) */
#define RING_SLOT_WON 4ull      /* start | WON: the CAS took [start, end): the owner, for sure */

struct ring_rec {
	_Atomic uint64_t commit;
	uint64_t timestamp_ns;
};

struct ring_slot {
	/* The owning producer writes (release stores, published with its tail
	 * CAS: I2);
	 * the daemon and tools read (acquire, after an acquire load of tail). */
	_Atomic uint64_t claim;
	_Atomic uint64_t end;
	/* Advisory, for people: what the owner says of itself. Never used to
	 * decide liveness (principle: the kernel's lock decides). */
	_Atomic uint32_t pid;
	_Atomic uint32_t gen;       /* bumped each time the slot is taken */
	_Atomic uint64_t since_ns;  /* CLOCK_REALTIME when taken */
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
	uint32_t max_producers;
	/* 0; 1 once spw_topic_delete removed the ring (stored through pwrite
	 * on a descriptor opened before the unlink, once the unlink succeeded;
	 * never reset): producers then refuse
	 * to send (-EIDRM) instead of writing records nobody will read or
	 * spill. The only word of line 0 written after create; readers load
	 * it relaxed (a flag: it orders nothing), and its one changing byte
	 * cannot tear. */
	_Atomic uint32_t deleted;

	/* Producers: CAS. Daemon: acquire load (scan/resolve bound). */
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
	/* The daemon's view of a stalled spill (for stat; relaxed, advisory):
	 * position of an uncommitted record held by a live producer, its slot,
	 * since when (CLOCK_REALTIME), 0 / -1 / 0 when none; and what it
	 * skipped as garbage so far. */
	alignas(RING_LINE) _Atomic uint64_t stall_pos;
	_Atomic int32_t stall_slot;
	_Atomic uint32_t stall_pid;
	_Atomic uint64_t stall_since_ns;
	_Atomic uint64_t corrupt_bytes;
	_Atomic uint64_t aborted_claims;
	/* 0, or the -errno of an fdatasync that failed: durable is frozen and
	 * SPW_ACK_DURABLE waiters past it get this error (daemon writes,
	 * seq_cst; waiters load it with durable). */
	_Atomic int32_t durable_err;
	/* Index entries below the durable checkpoint whose bytes failed their
	 * CRC at the daemon's last recovery (kept, not cut): relaxed, for stat. */
	_Atomic uint64_t disk_bad_ranges;
	/* Segments retention deleted although a consumer group had not read
	 * them (past retention_max_lag, spill/retention.c): relaxed, for stat.
	 * Zero in rings made before it existed: the layout is unchanged. */
	_Atomic uint64_t retention_forced;
	/* The daemon cannot write this topic's segments (-errno, e.g. -ENOSPC),
	 * 0 once writes succeed again: why producers wait (stat, the CLI).
	 * Relaxed: advisory. */
	_Atomic int32_t spill_err;
	/* I9: the solo word (ring/solo.c). Producers read it with a relaxed
	 * load per claim while they are solo, and change it by CAS at open and
	 * close only. Its own line: read-only in the steady state. */
	alignas(RING_LINE) _Atomic uint64_t solo;
};

_Static_assert(sizeof(struct ring_rec) == 16, "record header is 16 bytes");
_Static_assert(sizeof(struct ring_slot) <= RING_SLOT_BYTES, "slot fits its line");
_Static_assert(sizeof(struct ring_hdr) <= RING_PAGE, "header fits its page");
_Static_assert(offsetof(struct ring_hdr, tail) == 128, "tail on line 1");
_Static_assert(offsetof(struct ring_hdr, reclaimed) == 256, "reclaimed on line 2");
_Static_assert(offsetof(struct ring_hdr, limit) == 384, "limit on line 3");
_Static_assert(offsetof(struct ring_hdr, spilled) == 512, "spilled on line 4");
_Static_assert(offsetof(struct ring_hdr, durable) == 640, "durable on line 5");
_Static_assert(offsetof(struct ring_hdr, daemon_pid) == 768, "heartbeat on line 6");
_Static_assert(offsetof(struct ring_hdr, prod_wake) == 896, "producer wake on line 7");
_Static_assert(offsetof(struct ring_hdr, cons_wake) == 1024, "consumer wake on line 8");
_Static_assert(offsetof(struct ring_hdr, ack_wake) == 1152, "ack wake on line 9");
_Static_assert(offsetof(struct ring_hdr, stall_pos) == 1280, "stall on line 10");
_Static_assert(offsetof(struct ring_hdr, solo) == 1408, "solo word on line 11");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

static inline uint64_t ring_span(uint32_t len)
{
	return ((uint64_t)len + 16u + 7u) & ~7ull;
}

/* Header bytes for a ring with n producer slots: page-aligned, so the data
 * starts on a page (registered io_uring buffers, mmap). */
static inline uint64_t ring_hdr_bytes(uint32_t max_producers)
{
	return RING_SLOT_OFF + (((uint64_t)max_producers * RING_SLOT_BYTES + RING_PAGE - 1) &
				~(uint64_t)(RING_PAGE - 1));
}

/* Every producer holds a shared OFD lock on this byte of the ring file, an
 * exclusive producer (SPW_PRODUCER_EXCLUSIVE) a write lock: so either one
 * exclusive producer or any number of shared ones (I2). */
#define RING_EXCL_OFF 128u /* the tail's offset: the word the lock protects */
/* The spilling daemon holds a write lock on this byte (daemon_pid's) for as
 * long as it owns the ring: one daemon per ring, whatever its data dir. */
#define RING_DAEMON_OFF 768u

/* The file offset of slot i: also the byte its owner's OFD lock covers. */
static inline uint64_t ring_slot_off(uint32_t i)
{
	return RING_SLOT_OFF + (uint64_t)i * RING_SLOT_BYTES;
}

static inline uint64_t ring_lap_tag(uint64_t pos, uint64_t ring_bytes)
{
	/* ring_bytes is a power of two >= 64 KiB: a shift, not a division. */
	return (pos >> __builtin_ctzll(ring_bytes)) & RING_W_TAG_MASK;
}

/* The commit word of a complete record of `type` and `len` at pos. */
static inline uint64_t ring_word(uint32_t type, uint64_t len, uint64_t pos, uint64_t ring_bytes)
{
	return RING_W_DONE | (ring_lap_tag(pos, ring_bytes) << RING_W_TAG_SHIFT) |
	       ((uint64_t)type << 32) | (len & 0xffffffffull);
}

#define RING_WORD_BAD (-1)

/*
 * THE record-header validator. w is the commit word found at position pos
 * of a log whose ring is ring_bytes (a power of two) with max_record.
 * Returns the record's span (> 0) when w is a complete record that belongs
 * at pos (its lap, its type, a length that fits before the end of the lap),
 * 0 when w is 0 (not committed yet), RING_WORD_BAD otherwise.
 */
static inline int64_t ring_word_check(uint64_t w, uint64_t pos, uint64_t ring_bytes,
				      uint32_t max_record)
{
	uint64_t room = ring_bytes - (pos & (ring_bytes - 1)), span;
	uint32_t len = RING_W_LEN(w);

	if (w == 0)
		return 0;
	if ((w & RING_W_DONE) != RING_W_DONE || RING_W_RSVD(w) != 0 || (pos & 7) ||
	    RING_W_TAG(w) != ring_lap_tag(pos, ring_bytes))
		return RING_WORD_BAD;
	switch (RING_W_TYPE(w)) {
	case RING_T_DATA:
		if (len > max_record)
			return RING_WORD_BAD;
		span = ring_span(len);
		return span <= room ? (int64_t)span : RING_WORD_BAD;
	case RING_T_PADDING: /* always runs exactly to the end of the ring (I6) */
		return (len == room && len >= 8 && (len & 7) == 0) ? (int64_t)len : RING_WORD_BAD;
	case RING_T_ABORTED:
	case RING_T_CORRUPT:
		return (len <= room && len >= 8 && (len & 7) == 0) ? (int64_t)len : RING_WORD_BAD;
	default:
		return RING_WORD_BAD;
	}
}

/* Test seam: when set, producers call it at each of these points of a
 * claim (and of an open that ends a solo), so a test can stop (SIGSTOP) or
 * kill the process exactly there. */
enum ring_point {
	RING_AT_CLAIMING = 1, /* span published in the slot, before the tail CAS */
	RING_AT_CLAIMED,      /* right after the tail CAS */
	RING_AT_PADDED,       /* after writing the padding of a wrapping claim */
	RING_AT_MID_PAYLOAD,  /* half of a send's payload copied */
	RING_AT_BEFORE_COMMIT, /* payload written, commit word not yet */
	RING_AT_SOLO_WORD,    /* solo (I9): span published, the solo word not loaded yet */
	RING_AT_SOLO_ENDING   /* open (I9): the solo word set ENDING, the wait not begun */
};
extern void (*ring_test_hook)(enum ring_point at) __attribute__((visibility("hidden")));

#endif
