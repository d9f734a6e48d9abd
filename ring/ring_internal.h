/* SPDX-License-Identifier: MIT */
/* ring_internal.h - handles and helpers shared by the ring/ source files. */
#ifndef SPILLWAY_RING_INTERNAL_H
#define SPILLWAY_RING_INTERNAL_H

#include "spillway.h"
#include "spillway_daemon.h"
#include "ring_layout.h"

#include <limits.h>
#include <stdbool.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* A mapped topic. The settings are copied out of shared memory at open and
 * validated once; nothing here trusts the header page after that. */
struct spw_topic {
	struct ring_hdr *hdr;   /* shared header page */
	struct ring_slot *slots; /* max_producers producer slots (I2) */
	uint8_t *data;          /* ring_bytes of records */
	size_t map_bytes;
	uint64_t ring_bytes, mask, segment_bytes, hdr_bytes;
	uint32_t max_record, flags, max_producers;
	int fd;                 /* the ring file (O_CLOEXEC): lock queries, reopen */
	int own_fd;             /* the daemon's ownership lock (spwd_own), or -1 */
	bool rdonly;
	bool prefaulted;        /* every page touched once (topic.c touch_pages) */
	char name[SPW_NAME_MAX + 1];
	char path[PATH_MAX];    /* the ring's name as opened: spw_topic_deleted */
};

/* spw_topic_open, with the choice to map lazily (prefault false: no
 * MAP_POPULATE, no touching: for readers that may only need the header, such
 * as a disk reader); ring_topic_prefault touches every page once, later. */
int ring_topic_open(const char *shm_dir, const char *name, unsigned flags, bool prefault,
		    struct spw_topic **out);
void ring_topic_prefault(struct spw_topic *t);

/* Per-handle clock: TSC ticks turned into CLOCK_REALTIME ns, re-synced to
 * clock_gettime every ~1 ms so the error stays tiny (rdtsc ~12 ns here,
 * clock_gettime ~30 ns: the difference is the 64 B hot path's budget). */
struct ring_clock {
	uint64_t base_tsc, base_ns, last_ns;
	uint64_t mult;        /* ns per tick, 32.32 fixed point; 0: no usable TSC */
	uint64_t resync_ticks;
};

struct spw_producer {
	struct spw_topic *t;
	struct ring_slot *slot;  /* ours, locked through fd (I2) */
	uint32_t slot_index;
	uint32_t fork_gen;       /* ring_fork_gen at open: a forked child is refused */
	int fd;                  /* our own open file description of the ring */
	bool fence_commit;       /* no membarrier: a seq_cst fence after commit (I8) */
	bool exclusive;          /* tail is ours alone: SPW_PRODUCER_EXCLUSIVE, or solo */
	uint64_t solo_w;         /* solo (I9): the solo word naming us; 0 otherwise */
	uint64_t tail_own;       /* exclusive: the tail, as only we write it */
	uint64_t limit_seen;     /* exclusive: limit last loaded (it only grows) */
	/* I9: a solo claim we must see settled before taking a span: that
	 * slot's claim word as we saw it after our membarrier, and the ENDING
	 * solo word to turn off once it is. */
	bool join_pending;
	uint32_t join_slot;
	uint64_t join_claim;
	uint64_t join_word;
	bool claim_open;         /* a zero-copy claim not yet committed or aborted */
	int64_t claim_pos;       /* ... its position and span */
	uint64_t claim_span;
	struct ring_clock clk;
	struct spw_producer *next_open; /* the process's list (closed in a forked child) */
	/* When its waits next ask spw_topic_deleted (ring_wait_topic_gone):
	 * kept across calls, so waits made in short slices ask too. */
	uint64_t gone_next;
};

struct spw_consumer {
	struct spw_topic *t;
	uint64_t pos;
	uint64_t limit_cache; /* last limit seen: positions below it are safe to read (I3) */
	uint64_t skipped;     /* bytes of CORRUPT records passed over */
	int64_t backoff_ns;   /* spw_consumer_set_backoff: the longest back-off; 0 = off */
	int64_t backoff_cur;  /* the back-off now (consume.c found_nothing adapts it) */
	uint64_t idle_until;  /* monotonic ns: peek / poll return 0 until then; 0 = not idle */
	uint64_t idle_pos;    /* pos when the last back-off began */
	uint32_t empty_streak; /* looks in a row that found nothing (waiting_at) */
	bool small;           /* the last records handed out took <= 2 lines each, on average */
	int fd;               /* own description for the waiter lock (I8), -1 until needed */
};

/* Bumped in a fork()ed child (pthread_atfork): handles opened before the
 * fork belong to the parent and are refused with -ECHILD. */
extern uint32_t ring_fork_gen __attribute__((visibility("hidden")));
/* Have ring_fork_gen bumped in every forked child from now on (a producer's
 * open does it; so does a reader starting its read-ahead thread). */
void ring_fork_watch(void);

/* For the daemon at attach: finish a reclaim a killed daemon left half
 * done (reclaimed moved, limit not): zero the rest, move limit (I3).
 * 0 nothing to do, 1 repaired, -EBADMSG. */
int ring_reclaim_repair(struct spw_topic *t);

/* mkdir -p: 0 or -errno (used by ring/, daemon/ and tools/). */
int ring_mkdir_p(const char *dir, unsigned mode);

/* Has spw_topic_delete marked this ring (ring_layout.h, the header's
 * deleted word)? Relaxed: a flag, ordering nothing; its line is read-only
 * after create, so the load stays in the cache. */
static inline bool ring_topic_gone_flag(const struct spw_topic *t)
{
	return atomic_load_explicit(&t->hdr->deleted, memory_order_relaxed) != 0;
}

void ring_clock_init(struct ring_clock *c);
uint64_t ring_clock_now_slow(struct ring_clock *c);

/* CLOCK_REALTIME ns from the TSC, never backwards for one handle; inline,
 * since every claim takes one. */
static inline uint64_t ring_clock_now(struct ring_clock *c)
{
#if defined(__x86_64__)
	if (__builtin_expect(c->mult != 0, 1)) {
		uint64_t d = __rdtsc() - c->base_tsc;

		if (__builtin_expect(d < c->resync_ticks, 1)) {
			uint64_t ns = c->base_ns + (uint64_t)(((__uint128_t)d * c->mult) >> 32);

			if (ns < c->last_ns)
				ns = c->last_ns;
			c->last_ns = ns;
			return ns;
		}
	}
#endif
	return ring_clock_now_slow(c);
}
uint64_t ring_realtime_ns(void);
uint64_t ring_monotonic_ns(void);

/* What is left of a wait of timeout_ns that began at start (a
 * ring_monotonic_ns() reading): -1 for a wait without end (timeout_ns < 0),
 * else the ns left, 0 once it is over. timeout_ns 0 is over at once and
 * reads no clock, so start may then be left 0. The one rule for every
 * waiting call's timeout (produce.c, consume.c, ack.c, spill/reader.c). */
static inline int64_t ring_wait_left(int64_t timeout_ns, uint64_t start)
{
	int64_t left;

	if (timeout_ns <= 0)
		return timeout_ns < 0 ? -1 : 0;
	left = timeout_ns - (int64_t)(ring_monotonic_ns() - start);
	return left > 0 ? left : 0;
}

/* A producer's wait that may outlast its topic (nobody spills or reclaims
 * a deleted ring): it sleeps at most RING_GONE_CHECK_NS at a time
 * (ring_gone_cap) and, once that long has passed since *next (0: from now;
 * the producer's gone_next, so a caller waiting in slices of 250 ms, as the
 * CLI and Python do, is covered too), asks whether the ring was deleted or
 * replaced (spw_topic_deleted): true means end the wait with -EIDRM
 * (ring/wait.c). */
#define RING_GONE_CHECK_NS 1000000000ll
static inline int64_t ring_gone_cap(int64_t left)
{
	return left < 0 || left > RING_GONE_CHECK_NS ? RING_GONE_CHECK_NS : left;
}
bool ring_wait_topic_gone(const struct spw_topic *t, uint64_t *next);

int ring_futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t timeout_ns);
void ring_futex_wake_all(_Atomic uint32_t *word);
/* Wake the consumers sleeping on t (I8 waker side): inline, one load and a
 * branch when none sleeps (every commit pays it). */
void ring_wake_consumers_slow(struct spw_topic *t);
static inline void ring_wake_consumers(struct spw_topic *t)
{
	/* seq_cst load: the waker half of I8. The caller's change comes first:
	 * the daemon's CAS (a full barrier), or a producer's commit store
	 * followed by a compiler barrier, made visible to sleepers by their
	 * membarrier (or by the producer's own fence when it has none). Pairs
	 * with the fetch_add in consumer_sleep(). */
	if (__builtin_expect(atomic_load_explicit(&t->hdr->cons_waiters, memory_order_seq_cst) != 0,
			     0))
		ring_wake_consumers_slow(t);
}

/* For the disk-to-live reader (spill/reader.c): the next DATA record at the
 * consumer's position, copied to *stage + off (*stage grown as needed, its
 * bytes before off kept: a batch of copies shares one buffer) and validated
 * after the copy (I5), so it is never torn; advances the position. 1, 0
 * (nothing yet), -ESTALE (position left on the record), -EBADMSG, -ENOMEM. */
int ring_consumer_next_copy(struct spw_consumer *c, uint8_t **stage, size_t *cap, size_t off,
			    struct spw_record *rec);
/* Spin, then sleep until something is at the consumer's position (or it was
 * lapped): 1, or 0 after timeout_ns (< 0: forever). */
int ring_consumer_wait(struct spw_consumer *c, int64_t timeout_ns);
/* Does the chain of records from `from` (a boundary the caller knows; 0:
 * the reclaim bound) land on pos (1), step over it (0: pos is inside a
 * record), or not tell (-1: a gap no WON slot holds, or too far)? Over
 * committed records and the claims of WON slots (consume.c; seek and the
 * reader's start check, spill/reader_disk.c). */
int ring_chain_lands(struct spw_topic *t, uint64_t from, uint64_t pos);
/* spw_consumer_seek without that walk, for a position the caller knows to
 * be a record boundary (the reader going live where its disk log ended). */
int ring_consumer_seek_known(struct spw_consumer *c, int64_t position);

/* The record at ring offset off, and ring_word_check() with this topic's
 * settings (span > 0, 0 not committed yet, RING_WORD_BAD). */
static inline struct ring_rec *ring_rec_at(const struct spw_topic *t, uint64_t pos)
{
	return (struct ring_rec *)(void *)(t->data + (pos & t->mask));
}

static inline int64_t ring_check(const struct spw_topic *t, uint64_t pos, uint64_t w)
{
	return ring_word_check(w, pos, t->ring_bytes, t->max_record);
}

/* OFD locks on single bytes of the ring file (locks.c). */
int ring_reopen(const struct spw_topic *t);                  /* new description, O_CLOEXEC */
int ring_lock(int fd, uint64_t off, bool exclusive);          /* 0, -EAGAIN (taken), -errno */
void ring_unlock(int fd, uint64_t off);
int ring_lock_held(const struct spw_topic *t, uint64_t off);  /* 1 held, 0 free, -errno */
/* The pid (in our PID namespace) of a process holding the lock on off,
 * from /proc/<pid>/fdinfo; 0 when the kernel does not tell us. */
uint32_t ring_lock_owner_pid(const struct spw_topic *t, uint64_t off);
/* The same for a lock over a whole file (spill/group.c's member lock). */
uint32_t ring_file_lock_owner_pid(int fd);
/* Slot i's owner alive? (its lock held). 1, 0, -errno. */
int ring_slot_alive(const struct spw_topic *t, uint32_t i);
/* Sleeper side of I8: lock (shared) the counter's byte through fd, increment. */
/* false: no lock could be taken (no fd, EMFILE...): not registered, the
 * caller must nap instead of sleeping on the futex. */
bool ring_waiter_enter(int fd, const struct spw_topic *t, _Atomic uint32_t *count);
void ring_waiter_leave(int fd, const struct spw_topic *t, _Atomic uint32_t *count);
/* Make this process's running threads' and every registered producer's
 * stores visible: membarrier(GLOBAL_EXPEDITED). 0 or -errno. */
int ring_membarrier(void);
int ring_membarrier_register(void);
/* The daemon's repair of waiter counts left by sleepers killed with -9
 * (I8): the number of counters reset. */
int ring_waiters_repair(struct spw_topic *t);
/* Every record in [from, to) committed (or reclaimed)? */
bool ring_span_settled(const struct spw_topic *t, uint64_t from, uint64_t to);
/* The span producer slot i holds, [*from, *to), if any; *won: its CAS took
 * it (RING_SLOT_WON), else a guess before the CAS (ring/resolve.c). */
bool ring_slot_span(const struct spw_topic *t, uint32_t i, uint64_t *from, uint64_t *to,
		    bool *won);
/* I9 (solo.c): at open, with our slot locked, become the solo producer or
 * end another's solo. 0 or -errno. At close, or when a claim finds the solo
 * ended (between claims, nothing of ours in flight): give the word up. While
 * a join is pending: is that claim settled now? */
int ring_solo_open(struct spw_producer *p);
void ring_solo_close(struct spw_producer *p);
bool ring_solo_join_settled(struct spw_producer *p);
/* The process's list of open producers (closed in a forked child); the
 * register calls need ring_producers_lock held. */
void ring_producers_lock(void);
void ring_producers_unlock(void);
void ring_producer_register(struct spw_producer *p);
void ring_producer_unregister(struct spw_producer *p);
/* Other lock-holding descriptors a forked child must not keep (a consumer
 * group's member lock, spill/group.c): on the same list's terms. add/remove
 * need ring_producers_lock held; the child closes each and sets fd to -1. */
struct ring_held {
	int fd;
	struct ring_held *next;
};
void ring_held_add(struct ring_held *h);
void ring_held_remove(struct ring_held *h);

static inline void ring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* --- paths.c: paths below a held root, never through a symlink ------------ */
/* Where a path's last component lives: the directory fd that holds it (or
 * AT_FDCWD for a path under no root) and that component's name. */
struct ring_at {
	int dfd;
	char leaf[PATH_MAX];
};
int ring_root_add(const char *dir);                          /* 0 or -errno */
int ring_at_resolve(const char *path, struct ring_at *at);   /* 0 or -errno (-ELOOP) */
void ring_at_done(const struct ring_at *at);
/* The directory base/rel, opened `how` (O_RDONLY, or O_PATH: search
 * permission is then enough): below a held root that covers
 * it, from there; else base opened as named (an application's own dir, as
 * a root is) and rel's components walked O_NOFOLLOW from it. So no link
 * in rel is followed either way (-ELOOP). fd or -errno. */
int ring_dir_below(const char *base, const char *rel, int how);
int ring_unlink(const char *path);                          /* 0 or -errno */
/* openat with O_NOFOLLOW | O_CLOEXEC below a held root: fd or -errno. */
int ring_openat(const char *path, int flags, unsigned mode);
int ring_linkat(const char *from, const char *to);          /* 0 or -errno (-EEXIST) */
int ring_renameat(const char *from, const char *to);        /* 0 or -errno */

/* I5, the reader half of the seqlock: after reading what sits at pos (a
 * commit word, a payload), was it reclaimed meanwhile? The acquire fence
 * orders those reads before the load of reclaimed; it pairs with the
 * seq_cst store of reclaimed in spwd_reclaim() (ring/reclaim.c), made
 * before it zeroes (I3): whoever read a zeroed or reused byte sees the new
 * bound. The one place this check is written; consumers, the daemon's scan
 * and the CLI's ring walk (spill/walk.c) call it. */
static inline bool ring_lapped(const struct spw_topic *t, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->hdr->reclaimed, memory_order_relaxed) > pos;
}

#endif
