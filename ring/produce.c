/* SPDX-License-Identifier: MIT */
/*
 * produce.c - the producers: a slot held for the handle's life, then per
 * record claim, write, commit (ring_layout.h I1-I4, I6, I8).
 *
 * Per record: two release stores to our own slot line before the claim
 * (the span we are about to take, I2), one CAS on tail (the only atomic
 * read-modify-write), a release store marking the span WON, the timestamp
 * and payload, one release store of the commit word, a release store
 * marking the slot IDLE, and one load of the consumers' waiter count. No syscall, no lock, no fence on x86.
 * The only live producer (solo, I9; ring/solo.c) stores tail instead of the
 * CAS after one relaxed load of the solo word: no locked instruction.
 * spw_producer_send() and spw_producer_claim() of such a producer run a
 * lean inline claim (claim_fast) and leave everything else out of line.
 * Nobody ever takes a live claim away (I7), so nothing here needs to
 * detect that it lost its span.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void (*ring_test_hook)(enum ring_point at) __attribute__((visibility("hidden")));

/* Spin this long before sleeping on the futex: a sleep/wake costs ~20 us here. */
#define SPIN_NS 20000ull

/* May slot i be taken by a new producer? Its last claim must be settled:
 * a dead producer's unfinished claim stays attributed to its slot until the
 * daemon aborts it (I7). Loads are acquire: they pair with the owner's
 * commit store and the tail CAS. */
static bool slot_settled(const struct spw_topic *t, uint32_t i)
{
	struct ring_slot *s = &t->slots[i];
	uint64_t tail = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	/* end before claim: pairs with claim()'s store order (I2). */
	uint64_t e = atomic_load_explicit(&s->end, memory_order_acquire);
	uint64_t c = atomic_load_explicit(&s->claim, memory_order_acquire), p;

	if (c == RING_SLOT_IDLE)
		return true;
	p = c & ~7ull;
	if (e <= p || e - p > t->ring_bytes || p >= tail)
		return true; /* garbage, or a CAS that never won: nothing owned */
	return ring_span_settled(t, p, e);
}

int spw_producer_open(struct spw_topic *t, struct spw_producer **out)
{
	return spw_producer_open_flags(t, 0, out);
}

/* Lock the first free, settled slot of t through fd and make it p's: 0, or
 * -EUSERS when every slot is taken, or another -errno. */
static int take_slot(struct spw_topic *t, int fd, struct spw_producer *p)
{
	for (uint32_t i = 0; i < t->max_producers; i++) {
		int l = ring_lock(fd, ring_slot_off(i), true);

		if (l == -EAGAIN)
			continue;
		if (l < 0)
			return l;
		if (!slot_settled(t, i)) {
			ring_unlock(fd, ring_slot_off(i));
			continue;
		}
		p->slot = &t->slots[i];
		p->slot_index = i;
		return 0;
	}
	return -EUSERS;
}

int spw_producer_open_flags(struct spw_topic *t, unsigned flags, struct spw_producer **out)
{
	struct spw_producer *p;
	int fd, r;

	if (!t || !out || (flags & ~SPW_PRODUCER_EXCLUSIVE))
		return -EINVAL;
	*out = NULL;
	if (t->rdonly)
		return -EPERM;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ring_producers_lock();
	fd = ring_reopen(t);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	/* Shared, or exclusive: one exclusive producer or any number of others. */
	r = ring_lock(fd, RING_EXCL_OFF, flags & SPW_PRODUCER_EXCLUSIVE);
	if (r) {
		r = r == -EAGAIN ? -EBUSY : r;
		goto fail;
	}
	if ((r = take_slot(t, fd, p)))
		goto fail;
	/* Relaxed: we hold the slot's lock; readers treat these as advisory
	 * (pid, gen, since) or order them through our tail CAS (claim, end). */
	atomic_store_explicit(&p->slot->end, 0, memory_order_relaxed);
	atomic_store_explicit(&p->slot->claim, RING_SLOT_IDLE, memory_order_relaxed);
	atomic_store_explicit(&p->slot->pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_fetch_add_explicit(&p->slot->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&p->slot->since_ns, ring_realtime_ns(), memory_order_relaxed);
	p->t = t;
	p->fd = fd;
	p->exclusive = flags & SPW_PRODUCER_EXCLUSIVE;
	/* Acquire: nobody else moves tail while we hold the write lock; this
	 * is its last value, from the CAS or store that made it. */
	p->tail_own = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
	if (p->tail_own & 7) { /* garbage (P3): see claim_shared() */
		r = -EBADMSG;
		goto fail;
	}
	/* I8: sleeping consumers put a barrier into us with membarrier; when
	 * we cannot register for it, we pay a fence per commit instead. */
	p->fence_commit = ring_membarrier_register() != 0;
	/* I9: alone, claim without the CAS; else end another's solo. */
	r = p->exclusive ? 0 : ring_solo_open(p);
	/* Garbage (P3), as above: becoming solo reads tail again (solo.c). */
	if (!r && (p->tail_own & 7))
		r = -EBADMSG;
	if (r)
		goto fail; /* closing fd drops our slot's lock: the slot is IDLE */
	ring_clock_init(&p->clk);
	ring_producer_register(p);
	ring_producers_unlock();
	/* Relaxed: our own process's generation. */
	p->fork_gen = ring_fork_gen;
	*out = p;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	ring_producers_unlock();
	free(p);
	return r;
}

static void write_word(struct spw_topic *t, uint64_t pos, uint64_t w)
{
	/* Release: the timestamp and payload before the word (I4); pairs with
	 * the readers' acquire load of the commit word. */
	atomic_store_explicit(&ring_rec_at(t, pos)->commit, w, memory_order_release);
}

void spw_producer_close(struct spw_producer *p)
{
	if (!p)
		return;
	if (p->claim_open && p->fork_gen == ring_fork_gen) {
		/* Ours to finish: consumers skip it. */
		write_word(p->t, (uint64_t)p->claim_pos,
			   ring_word(RING_T_ABORTED, p->claim_span, (uint64_t)p->claim_pos,
				     p->t->ring_bytes));
		ring_wake_consumers(p->t);
	}
	if (p->fork_gen == ring_fork_gen) {
		/* Release: after our last record; the slot is free once fd closes. */
		atomic_store_explicit(&p->slot->claim, RING_SLOT_IDLE, memory_order_release);
		ring_solo_close(p); /* I9: the next producer to open may be solo */
	}
	ring_producers_lock();
	if (p->fd >= 0)
		close(p->fd);
	ring_producer_unregister(p);
	ring_producers_unlock();
	free(p);
}

/* The test seam: `hooked` is a constant in each inlined copy of the hot
 * path, so the copy that runs without a test hook has no check at all. */
#define HOOK(at)                                                               \
	do {                                                                   \
		if (hooked && ring_test_hook)                                  \
			ring_test_hook(at);                                    \
	} while (0)

/* The end of the span a claim at tail takes: a PADDING record to the
 * ring's end first when the record does not fit before it (I6, *pad its
 * size, else 0). */
static inline __attribute__((always_inline)) uint64_t claim_end(const struct spw_topic *t,
								 uint64_t tail, uint64_t span,
								 uint64_t *pad)
{
	uint64_t off = tail & t->mask;

	*pad = off + span > t->ring_bytes ? t->ring_bytes - off : 0;
	return tail + *pad + span;
}

/* The end of a batch's claim at tail below lim (spw_producer_send_batch):
 * a PADDING record to the ring's end first when m[0] does not fit before
 * it (I6), then as many of m[0..n) as fit before both lim and the ring's
 * end (records never straddle it), *k of them; none: *k 0. */
static inline __attribute__((always_inline)) uint64_t batch_end(const struct spw_topic *t,
								 uint64_t tail, uint64_t lim,
								 const struct spw_msg *m, uint32_t n,
								 uint64_t *pad, uint32_t *k)
{
	uint64_t off = tail & t->mask, end, room;
	uint32_t i;

	*pad = off + ring_span(m[0].len) > t->ring_bytes ? t->ring_bytes - off : 0;
	end = tail + *pad;
	room = *pad ? t->ring_bytes : t->ring_bytes - off;
	if (lim < end)
		room = 0;
	else if (lim - end < room)
		room = lim - end;
	for (i = 0; i < n; i++) {
		uint64_t span = ring_span(m[i].len);

		if (span > room)
			break;
		room -= span;
		end += span;
	}
	*k = i;
	return end;
}

/* I2: the span [tail, next) in our slot, before tail moves past it. claim
 * first, end second (release): a reader that loads end (acquire) then
 * claim never pairs our new end with an old claim; the old end with the new
 * claim is an empty span (old end <= the guess). Release (free on x86): a
 * reader that sees this claim sees our previous commit, made before it
 * (consume.c boundary()). Our own line. */
static inline __attribute__((always_inline)) void publish_span(struct ring_slot *s, uint64_t tail,
							       uint64_t next)
{
	atomic_store_explicit(&s->claim, tail | RING_SLOT_CLAIMING, memory_order_release);
	atomic_store_explicit(&s->end, next, memory_order_release);
}

/* The exclusive (or solo) producer takes [tail, next): the span in its
 * slot (I2), the solo word checked (I9), then tail stored. false: our solo
 * was ended, nothing taken, but the slot still names the guess as
 * CLAIMING: take_span() then stores IDLE before it claims shared (and
 * claim_fast()'s callers go through take_span() next). */
static inline __attribute__((always_inline)) bool excl_take(struct spw_producer *p, uint64_t tail,
							    uint64_t next, const bool hooked)
{
	struct ring_hdr *h = p->t->hdr;

	publish_span(p->slot, tail, next); /* I2, as in the shared claim */
	if (p->solo_w) {
		HOOK(RING_AT_SOLO_WORD);
		/* I9: our CLAIMING store, then the word. A compiler barrier keeps
		 * that order; the CPU's comes from the membarrier of whoever ends
		 * our solo. Relaxed load: the word's line stays shared in our
		 * cache until someone changes it. */
		atomic_signal_fence(memory_order_seq_cst);
		if (__builtin_expect(atomic_load_explicit(&h->solo, memory_order_relaxed) != p->solo_w,
				     0))
			return false;
	}
	HOOK(RING_AT_CLAIMING);
	/* Release: the slot stores before the new tail (I2), as the CAS. */
	atomic_store_explicit(&h->tail, next, memory_order_release);
	p->tail_own = next;
	return true;
}

/* I2: the span at start is ours for sure (one CAS, or the only producer's
 * store, took it): the daemon then judges this slot alone. Release: after
 * the claim. */
static inline __attribute__((always_inline)) void span_won(struct spw_producer *p, uint64_t start)
{
	atomic_store_explicit(&p->slot->claim, start | RING_SLOT_WON, memory_order_release);
}

/* The only producer (RING_EXCL_OFF's write lock, or solo: I9): the same
 * steps as the shared claim with a plain store of tail instead of the CAS.
 * 0, -EAGAIN (ring full), or 1: no longer solo, claim shared instead. */
static inline __attribute__((always_inline)) int claim_exclusive(struct spw_producer *p,
								 uint64_t span, const struct spw_msg *m,
								 uint32_t n, uint32_t *k, uint64_t *tail,
								 uint64_t *next, uint64_t *pad,
								 const bool hooked)
{
	struct spw_topic *t = p->t;

	*tail = p->tail_own;
	if (m) { /* a batch (m, n): *k of its records */
		*next = batch_end(t, *tail, p->limit_seen, m, n, pad, k);
		if (*k < n) {
			/* seq_cst: as below. */
			p->limit_seen = atomic_load_explicit(&t->hdr->limit, memory_order_seq_cst);
			*next = batch_end(t, *tail, p->limit_seen, m, n, pad, k);
			if (*k == 0)
				return -EAGAIN;
		}
	} else {
		*next = claim_end(t, *tail, span, pad);
		if (*next > p->limit_seen) {
			/* seq_cst: as in the shared claim (I3, and the re-check
			 * half of I8). */
			p->limit_seen = atomic_load_explicit(&t->hdr->limit, memory_order_seq_cst);
			if (*next > p->limit_seen)
				return -EAGAIN;
		}
	}
	return excl_take(p, *tail, *next, hooked) ? 0 : 1;
}

/* Any number of producers: take [tail, next) with the one CAS on tail,
 * the slot naming the span first (I2). 0, or -EAGAIN (ring full). */
static inline __attribute__((always_inline)) int claim_shared(struct spw_producer *p,
							      uint64_t span, const struct spw_msg *m,
							      uint32_t n, uint32_t *k, uint64_t *tail_out,
							      uint64_t *next_out, uint64_t *pad_out,
							      const bool hooked)
{
	struct spw_topic *t = p->t;
	struct ring_hdr *h = t->hdr;
	struct ring_slot *s = p->slot;
	uint64_t tail, pad, next, lim;
	bool published = false;

	/* I9: no span while a solo claim we must wait for is unsettled. */
	if (__builtin_expect(p->join_pending, 0) && !ring_solo_join_settled(p))
		return -EAGAIN;
	/* Relaxed: only the CAS's first guess; the CAS validates it. */
	tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	for (;;) {
		/* Trust no byte (P3): claims move tail by whole 8-byte spans, so
		 * an unaligned one is garbage in the header; a claim there would
		 * write a padding word across the ring's end, past the mapping. */
		if (__builtin_expect(tail & 7, 0)) {
			if (published) /* relaxed, as below: a guess that lost orders nothing */
				atomic_store_explicit(&s->claim, RING_SLOT_IDLE, memory_order_relaxed);
			return -EBADMSG;
		}
		if (!m)
			next = claim_end(t, tail, span, &pad);
		/* seq_cst: acquire pairs with reclaim's store of limit after
		 * zeroing (I3: our span reads as zero until we write it); seq_cst
		 * makes it the re-check half of I8 in claim_wait(). */
		lim = atomic_load_explicit(&h->limit, memory_order_seq_cst);
		if (m) /* a batch (m, n): *k of its records, none when full */
			next = batch_end(t, tail, lim, m, n, &pad, k);
		if (m ? *k == 0 : next > lim) {
			uint64_t fresh = atomic_load_explicit(&h->tail, memory_order_relaxed);

			if (fresh != tail) {
				tail = fresh;
				continue;
			}
			if (published) /* a guess that lost: we hold no span */
				atomic_store_explicit(&s->claim, RING_SLOT_IDLE, memory_order_relaxed);
			return -EAGAIN;
		}
		/* I2: the span we are about to take, before the CAS (which
		 * releases it with the new tail). */
		publish_span(s, tail, next);
		published = true;
		HOOK(RING_AT_CLAIMING);
		/* acq_rel CAS (a locked instruction anyway): release publishes the
		 * slot stores above with the new tail (I2); it takes [tail, next)
		 * for us. Relaxed on failure: we only retry. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &tail, next,
							  memory_order_acq_rel,
							  memory_order_relaxed))
			break;
	}
	*tail_out = tail;
	*next_out = next;
	*pad_out = pad;
	return 0;
}

/* Take the span of one record of span bytes (m NULL), or of what fits of
 * the batch m[0..n) (*k records): exclusive or shared, the slot says WON,
 * the padding of a wrapping claim written. 0 with *start where the
 * (first) record goes, or -EAGAIN (the ring is full). */
static inline __attribute__((always_inline)) int take_span(struct spw_producer *p, uint64_t span,
							   const struct spw_msg *m, uint32_t n,
							   uint32_t *k, uint64_t *start,
							   const bool hooked)
{
	struct spw_topic *t = p->t;
	uint64_t tail = 0, pad = 0, next = 0; /* (set by either claim; gcc -O1 cannot tell) */
	int r;

	if (__builtin_expect(ring_topic_gone_flag(t), 0))
		return -EIDRM; /* spw_topic_delete: nobody will read or spill it */
	if (!p->exclusive)
		r = claim_shared(p, span, m, n, k, &tail, &next, &pad, hooked);
	else if ((r = claim_exclusive(p, span, m, n, k, &tail, &next, &pad, hooked)) > 0) {
		/* I9: someone ended our solo; shared from now on. The span our
		 * slot names was a guess we did not take: IDLE (release: a
		 * newcomer waiting on it then goes on), and no plain store of
		 * tail of ours can come any more: an ENDING word naming us may
		 * go off (ring_solo_close). */
		atomic_store_explicit(&p->slot->claim, RING_SLOT_IDLE, memory_order_release);
		ring_solo_close(p);
		p->exclusive = false;
		r = claim_shared(p, span, m, n, k, &tail, &next, &pad, hooked);
	}
	if (r)
		return r; /* -EAGAIN (full), -EBADMSG (a garbage tail) */
	span_won(p, tail);
	/* No software prefetch ahead of the tail: gcc emits a read prefetch
	 * (prefetcht0) for it, and the hardware's stream prefetcher already
	 * follows the tail. Measured with the paired benchmark (make bench,
	 * send_pair, 6 alternating runs, 1 MiB ring): two prefetches 2 KiB
	 * ahead cost 2-3% at 64 B and 1-2% at 1 KiB; a 64 MiB ring showed the
	 * same or more (docs/HACKING.md). */
	HOOK(RING_AT_CLAIMED);
	if (pad) {
		/* Release store (I4, I6): consumers acquire-load it. */
		write_word(t, tail, ring_word(RING_T_PADDING, pad, tail, t->ring_bytes));
		tail += pad;
		HOOK(RING_AT_PADDED);
	}
	*start = tail;
	return 0;
}

/* The common claim of an exclusive or solo producer, inline and in
 * registers: no test hook, no padding, room below the limit it last saw,
 * its solo not ended. The same steps and helpers as claim_impl() with
 * claim_exclusive(), in the same order. false when anything is unusual:
 * nothing taken, and the caller must go the general way next, which sees
 * the same and handles it (after a solo found ended, the slot names an
 * untaken CLAIMING guess until take_span() stores IDLE; tests/ring_solo.c's
 * first case takes that way). Used by spw_producer_send and
 * spw_producer_claim: with everything else out of line the compiler keeps
 * this path in registers and stops reloading the topic after each store
 * (docs/HACKING.md: send_pair/64 0.78x -> 0.87x, claim_pair/64 0.60x ->
 * 0.65x). */
static inline __attribute__((always_inline)) bool claim_fast(struct spw_producer *p, uint32_t len,
							     const uint64_t *given_ts,
							     uint64_t *tail_out,
							     struct ring_rec **rec_out)
{
	const struct spw_topic *t;
	uint64_t ts, tail, next, span;
	struct ring_rec *rec;

	/* Plain loads of ring_test_hook (as in claim()) and ring_fork_gen (as
	 * in claim_impl()): set by tests before producers run, bumped only in
	 * a forked child. */
	t = p->t;
	if (__builtin_expect(!p->exclusive || p->claim_open || ring_test_hook != NULL ||
				     p->fork_gen != ring_fork_gen || ring_topic_gone_flag(t),
			     0))
		return false; /* (a deleted topic: take_span() says -EIDRM) */
	tail = p->tail_own;
	span = ring_span(len);
	next = tail + span;
	if (__builtin_expect(len > t->max_record || (tail & t->mask) + span > t->ring_bytes ||
				     next > p->limit_seen,
			     0))
		return false;
	rec = ring_rec_at(t, tail);
	/* before the claim, as claim_impl() */
	ts = given_ts ? *given_ts : ring_clock_now(&p->clk);
	if (__builtin_expect(!excl_take(p, tail, next, false), 0))
		return false;
	span_won(p, tail);
	rec->timestamp_ns = ts;
	*tail_out = tail;
	*rec_out = rec;
	return true;
}

/* given_ts: the caller's timestamp (spw_producer_send_at); NULL: the
 * handle's clock. */
static inline __attribute__((always_inline)) int claim_impl(struct spw_producer *p, uint32_t len,
							    const uint64_t *given_ts,
							    struct spw_claim *c, const bool hooked)
{
	uint64_t ts, tail = 0;
	struct ring_rec *rec;

	/* Relaxed: our own process's generation (bumped only in a child). */
	if (__builtin_expect(p->fork_gen != ring_fork_gen, 0))
		return -ECHILD;
	if (len > p->t->max_record)
		return -EMSGSIZE;
	/* The clock before the CAS: rdtsc then overlaps the stores still
	 * draining from the last record, instead of waiting behind the locked
	 * instruction (measured: the CAS plus a following rdtsc cost ~2x). */
	ts = given_ts ? *given_ts : ring_clock_now(&p->clk);
	{
		int r = take_span(p, ring_span(len), NULL, 0, NULL, &tail, hooked);

		if (r)
			return r;
	}
	rec = ring_rec_at(p->t, tail);
	rec->timestamp_ns = ts;
	c->data = rec + 1;
	c->len = len;
	c->reserved = 0;
	c->position = (int64_t)tail;
	c->hdr_ = rec;
	return 0;
}

/* given_ts: the caller's timestamp, NULL: the clock's. */
static int claim(struct spw_producer *p, uint32_t len, const uint64_t *given_ts,
		 struct spw_claim *c)
{
	/* Relaxed: set by tests before any producer runs. */
	if (__builtin_expect(ring_test_hook != NULL, 0))
		return claim_impl(p, len, given_ts, c, true);
	return claim_impl(p, len, given_ts, c, false);
}

/* What claim_wait tries: one record's claim, or a batch's (batch_claim). */
struct claim_try {
	uint32_t len;           /* one record: its length, c its claim, */
	struct spw_claim *c;
	const uint64_t *ts1;    /* ... the caller's timestamp or NULL (the clock's) */
	const struct spw_msg *m; /* a batch: m[0..n), k of them taken at start */
	const uint64_t *tss;     /* ... the caller's timestamps of m[0..n), or NULL */
	uint32_t n, k;
	uint64_t start, ts;      /* ts: the clock's, for all of them (tss NULL) */
};

static int batch_claim(struct spw_producer *p, struct claim_try *b);

static int try_claim(struct spw_producer *p, struct claim_try *a)
{
	return a->m ? batch_claim(p, a) : claim(p, a->len, a->ts1, a->c);
}

static int claim_wait(struct spw_producer *p, struct claim_try *a, int64_t timeout_ns)
{
	struct spw_topic *t = p->t;
	struct ring_hdr *h = t->hdr;
	uint64_t start = 0;
	int64_t left;
	uint32_t seq;
	bool registered;
	int r;

	/* Spin first: the daemon usually frees room within microseconds. The
	 * timeout counts from the first try that found no room: a call that
	 * finds room at once reads no clock here. */
	for (unsigned i = 1;; i++) {
		r = try_claim(p, a);
		if (r != -EAGAIN)
			return r;
		if (i == 1)
			start = ring_monotonic_ns();
		else if ((i & 63) == 0 && ring_monotonic_ns() - start >= SPIN_NS)
			break;
		ring_cpu_relax();
	}
	for (;;) {
		/* Acquire: the value FUTEX_WAIT compares; read before the
		 * re-check so a wake in between makes the wait return at once. */
		seq = atomic_load_explicit(&h->prod_wake, memory_order_acquire);
		/* The sleeper half of I8 (lock, then a seq_cst increment); pairs
		 * with the seq_cst load of prod_waiters in spwd_reclaim(). */
		registered = !p->join_pending && ring_waiter_enter(p->fd, t, &h->prod_waiters);
		r = try_claim(p, a);
		if (r == -EAGAIN) {
			left = ring_wait_left(timeout_ns, start);
			if (left == 0)
				r = -ETIMEDOUT;
			else
				/* Unregistered (no lock, or waiting for a solo claim
				 * to settle, I9, which wakes nobody): 1 ms naps. */
				ring_futex_wait(&h->prod_wake, seq,
						registered ? ring_gone_cap(left)
							   : (left < 0 || left > 1000000 ? 1000000 : left));
		}
		if (registered)
			ring_waiter_leave(p->fd, t, &h->prod_waiters);
		if (r != -EAGAIN)
			return r;
		if (ring_wait_topic_gone(t, &p->gone_next))
			return -EIDRM; /* nobody will ever make room */
	}
}

/* A handle with a claim open: -EBUSY, but -ECHILD first in a fork()ed
 * child (the parent's claim is not the child's to finish). Relaxed: our own
 * process's generation (bumped only in a child). */
static inline int claim_busy(const struct spw_producer *p)
{
	if (!p->claim_open)
		return 0;
	return p->fork_gen != ring_fork_gen ? -ECHILD : -EBUSY;
}

/* An open zero-copy claim c of this handle: the handle remembers it
 * (claim_check() compares at commit or abort). */
static inline __attribute__((always_inline)) void claim_opened(struct spw_producer *p,
							       const struct spw_claim *c)
{
	p->claim_open = true;
	p->claim_pos = c->position;
	p->claim_span = ring_span(c->len);
}

static __attribute__((noinline)) int claim_general(struct spw_producer *p, uint32_t len,
						   struct spw_claim *c)
{
	int r;

	if (!p || !c)
		return -EINVAL;
	if ((r = claim_busy(p)))
		return r;
	r = claim(p, len, NULL, c);
	if (!r)
		claim_opened(p, c);
	return r;
}

int spw_producer_claim(struct spw_producer *p, uint32_t len, struct spw_claim *c)
{
	struct ring_rec *rec;
	uint64_t tail;

	if (__builtin_expect(!p || !c || !claim_fast(p, len, NULL, &tail, &rec), 0))
		return claim_general(p, len, c);
	c->data = rec + 1;
	c->len = len;
	c->reserved = 0;
	c->position = (int64_t)tail;
	c->hdr_ = rec;
	claim_opened(p, c);
	return 0;
}

int spw_producer_claim_wait(struct spw_producer *p, uint32_t len, int64_t timeout_ns,
			    struct spw_claim *c)
{
	int r;

	if (!p || !c)
		return -EINVAL;
	if ((r = claim_busy(p)))
		return r;
	r = claim_wait(p, &(struct claim_try){ .len = len, .c = c }, timeout_ns);
	if (!r)
		claim_opened(p, c);
	return r;
}

/* After a commit store: wake the consumers sleeping on the ring, if any. */
static inline __attribute__((always_inline)) void commit_wake(struct spw_producer *p)
{
	/* I8: keep the waiter load after the store. A compiler barrier is
	 * enough: a sleeping consumer's membarrier supplies the CPU barrier;
	 * without membarrier we pay the fence ourselves. */
	if (__builtin_expect(p->fence_commit, 0))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
	ring_wake_consumers(p->t);
}

/* After the last commit of a claim: the slot IDLE, sleeping consumers woken. */
static inline __attribute__((always_inline)) void claim_done(struct spw_producer *p)
{
	/* I2: between records. Release: whoever sees IDLE sees the commit. */
	atomic_store_explicit(&p->slot->claim, RING_SLOT_IDLE, memory_order_release);
	commit_wake(p);
}

static inline __attribute__((always_inline)) void finish(struct spw_producer *p, uint64_t pos,
							  uint64_t w, const bool hooked)
{
	HOOK(RING_AT_BEFORE_COMMIT);
	write_word(p->t, pos, w);
	claim_done(p);
}

/* The claim c of this handle, as claim() made it? */
static int claim_check(struct spw_producer *p, struct spw_claim *c)
{
	if (!p || !c || !c->hdr_ || !p->claim_open || c->position != p->claim_pos ||
	    ring_span(c->len) != p->claim_span)
		return -EINVAL;
	if (p->fork_gen != ring_fork_gen)
		return -ECHILD;
	return 0;
}

/* Close the claim c with a commit word of `type` (DATA: the payload
 * length; ABORTED: the claimed span, readers skip it). */
static int claim_close(struct spw_producer *p, struct spw_claim *c, uint32_t type)
{
	int r = claim_check(p, c);

	if (r)
		return r;
	p->claim_open = false;
	c->hdr_ = NULL;
	finish(p, (uint64_t)c->position,
	       ring_word(type, type == RING_T_DATA ? c->len : ring_span(c->len),
			 (uint64_t)c->position, p->t->ring_bytes),
	       true);
	return 0;
}

int spw_producer_commit(struct spw_producer *p, struct spw_claim *c)
{
	return claim_close(p, c, RING_T_DATA);
}

int spw_producer_commit_at(struct spw_producer *p, struct spw_claim *c, uint64_t timestamp_ns)
{
	int r = claim_check(p, c);

	if (r)
		return r;
	/* Before the commit (I4): nobody reads the record until then. Its
	 * header found from our own claim, not from the caller's struct. */
	ring_rec_at(p->t, (uint64_t)p->claim_pos)->timestamp_ns = timestamp_ns;
	return claim_close(p, c, RING_T_DATA);
}

int spw_producer_abort(struct spw_producer *p, struct spw_claim *c)
{
	return claim_close(p, c, RING_T_ABORTED);
}

/* The payload copy of a send. Up to 64 bytes: two overlapping fixed-size
 * copies, inline, instead of a call into libc's memcpy (its PLT jump and
 * size dispatch cost a few ns of a ~15 ns send at 64 B). */
static inline __attribute__((always_inline)) void copy_payload(void *dst, const void *src,
							       uint32_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (len > 64) {
		memcpy(d, s, len);
	} else if (len >= 32) {
		__builtin_memcpy(d, s, 32);
		__builtin_memcpy(d + len - 32, s + len - 32, 32);
	} else if (len >= 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + len - 16, s + len - 16, 16);
	} else if (len >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + len - 8, s + len - 8, 8);
	} else {
		for (uint32_t i = 0; i < len; i++)
			d[i] = s[i];
	}
}

static inline __attribute__((always_inline)) int64_t
send_claimed(struct spw_producer *p, struct spw_claim *c, const void *data, uint32_t len,
	     const bool hooked)
{
	if (hooked && ring_test_hook && len >= 2) {
		memcpy(c->data, data, len / 2);
		HOOK(RING_AT_MID_PAYLOAD);
		memcpy((uint8_t *)c->data + len / 2, (const uint8_t *)data + len / 2, len - len / 2);
	} else {
		copy_payload(c->data, data, len);
	}
	finish(p, (uint64_t)c->position,
	       ring_word(RING_T_DATA, len, (uint64_t)c->position, p->t->ring_bytes), hooked);
	return c->position;
}

static __attribute__((noinline)) int64_t send_hooked(struct spw_producer *p, const void *data,
						     uint32_t len, const uint64_t *given_ts)
{
	struct spw_claim c;
	int r = claim_impl(p, len, given_ts, &c, true);

	return r ? r : send_claimed(p, &c, data, len, true);
}

/* A send's arguments: -EINVAL, or -EBUSY while the handle holds a claim. */
static inline int send_check(const struct spw_producer *p, const void *data, uint32_t len)
{
	if (!p || (!data && len))
		return -EINVAL;
	return claim_busy(p);
}

static __attribute__((noinline)) int64_t send_general(struct spw_producer *p, const void *data,
						      uint32_t len, const uint64_t *given_ts)
{
	struct spw_claim c;
	int r = send_check(p, data, len);

	if (r)
		return r;
	/* Relaxed: set by tests before any producer runs. */
	if (__builtin_expect(ring_test_hook != NULL, 0))
		return send_hooked(p, data, len, given_ts);
	r = claim_impl(p, len, given_ts, &c, false);
	if (r)
		return r;
	return send_claimed(p, &c, data, len, false);
}

/* The lean send (claim_fast), else the general one. given_ts: the
 * caller's timestamp, NULL: the clock's; a constant at each caller, so each
 * public send inlines its own path. */
static inline __attribute__((always_inline)) int64_t send_impl(struct spw_producer *p,
								const void *data, uint32_t len,
								const uint64_t *given_ts)
{
	struct ring_rec *rec;
	uint64_t tail;

	if (__builtin_expect(!p || !data || !claim_fast(p, len, given_ts, &tail, &rec), 0))
		return send_general(p, data, len, given_ts);
	copy_payload(rec + 1, data, len);
	finish(p, tail, ring_word(RING_T_DATA, len, tail, p->t->ring_bytes), false);
	return (int64_t)tail;
}

int64_t spw_producer_send(struct spw_producer *p, const void *data, uint32_t len)
{
	return send_impl(p, data, len, NULL);
}

/* With the caller's timestamp: the same paths, the clock read left out. */
int64_t spw_producer_send_at(struct spw_producer *p, const void *data, uint32_t len,
			     uint64_t timestamp_ns)
{
	return send_impl(p, data, len, &timestamp_ns);
}

/* given_ts: the caller's timestamp (spw_producer_send_wait_at), stored at
 * claim with no clock read; NULL: the clock's, read at claim. */
static int64_t send_wait(struct spw_producer *p, const void *data, uint32_t len, int64_t timeout_ns,
			 const uint64_t *given_ts)
{
	struct spw_claim c;
	int r = send_check(p, data, len);

	if (r)
		return r;
	r = claim_wait(p, &(struct claim_try){ .len = len, .c = &c, .ts1 = given_ts }, timeout_ns);
	if (r)
		return r;
	return send_claimed(p, &c, data, len, true);
}

int64_t spw_producer_send_wait(struct spw_producer *p, const void *data, uint32_t len,
			       int64_t timeout_ns)
{
	return send_wait(p, data, len, timeout_ns, NULL);
}

int64_t spw_producer_send_wait_at(struct spw_producer *p, const void *data, uint32_t len,
				  int64_t timeout_ns, uint64_t timestamp_ns)
{
	return send_wait(p, data, len, timeout_ns, &timestamp_ns);
}

/* The most records one call can send: every record spans >= 16 bytes, so
 * a ring holds at most ring_bytes / 16 (and the count must fit an int). */
static uint32_t batch_max(const struct spw_producer *p, uint32_t n)
{
	uint64_t most = p->t->ring_bytes / ring_span(0);

	if (most > INT_MAX)
		most = INT_MAX;
	return n > most ? (uint32_t)most : n;
}

/* A batch's arguments, for b (n clamped to what one call can send: only
 * those records are looked at): 0, -EINVAL, -EMSGSIZE (nothing is sent
 * then), -ECHILD, -EBUSY. */
static int batch_check(const struct spw_producer *p, const struct spw_msg *m, uint32_t n,
		       const uint64_t *tss, struct claim_try *b)
{
	if (!p || (!m && n))
		return -EINVAL;
	n = batch_max(p, n);
	*b = (struct claim_try){ .m = m, .tss = tss, .n = n };
	/* Relaxed: our own process's generation (bumped only in a child). */
	if (p->fork_gen != ring_fork_gen)
		return -ECHILD;
	for (uint32_t i = 0; i < n; i++) {
		if (!m[i].data && m[i].len)
			return -EINVAL;
		if (m[i].len > p->t->max_record)
			return -EMSGSIZE;
	}
	return claim_busy(p);
}

static inline __attribute__((always_inline)) int batch_claim_impl(struct spw_producer *p,
								  struct claim_try *b,
								  const bool hooked)
{
	/* Relaxed: our own process's generation (bumped only in a child). */
	if (__builtin_expect(p->fork_gen != ring_fork_gen, 0))
		return -ECHILD;
	/* One clock read for the batch, before the claim as in claim_impl;
	 * none when the caller gave each record's time. */
	b->ts = b->tss ? 0 : ring_clock_now(&p->clk);
	return take_span(p, 0, b->m, b->n, &b->k, &b->start, hooked);
}

static int batch_claim(struct spw_producer *p, struct claim_try *b)
{
	/* Relaxed: set by tests before any producer runs. */
	if (__builtin_expect(ring_test_hook != NULL, 0))
		return batch_claim_impl(p, b, true);
	return batch_claim_impl(p, b, false);
}

/* Write and commit the b->k records claimed at b->start, in order (each
 * commit a release store of its own, I4), then end the claim. */
static inline __attribute__((always_inline)) int batch_write(struct spw_producer *p,
							     const struct claim_try *b,
							     int64_t *positions, const bool hooked)
{
	struct spw_topic *t = p->t;
	uint64_t pos = b->start;

	for (uint32_t i = 0; i < b->k; i++) {
		struct ring_rec *rec = ring_rec_at(t, pos);
		uint32_t len = b->m[i].len;

		rec->timestamp_ns = b->tss ? b->tss[i] : b->ts;
		copy_payload(rec + 1, b->m[i].data, len);
		HOOK(RING_AT_BEFORE_COMMIT);
		write_word(t, pos, ring_word(RING_T_DATA, len, pos, t->ring_bytes));
		if (positions)
			positions[i] = (int64_t)pos;
		pos += ring_span(len);
		if (i + 1 < b->k) {
			/* I2: what is ours now starts at the next record: the
			 * daemon judges only the uncommitted rest (what a dead
			 * owner leaves, or garbage over a committed record, then
			 * ends exactly there, ring/resolve.c). Release: after the
			 * commit store. */
			atomic_store_explicit(&p->slot->claim, pos | RING_SLOT_WON,
					      memory_order_release);
			/* Each record is there once committed: a consumer asleep
			 * on it must not wait for the rest of the batch. The last
			 * one's wake comes with the IDLE store. */
			commit_wake(p);
		}
	}
	claim_done(p);
	return (int)b->k;
}

/* tss: the caller's timestamps (spw_producer_send_batch_at), NULL: the
 * clock's, one read for the batch. */
static int send_batch(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
		      const uint64_t *tss, int64_t *positions)
{
	struct claim_try b;
	int r = batch_check(p, m, n, tss, &b);

	if (r || !b.n)
		return r;
	/* Relaxed: set by tests before any producer runs. */
	if (__builtin_expect(ring_test_hook != NULL, 0)) {
		r = batch_claim_impl(p, &b, true);
		return r ? r : batch_write(p, &b, positions, true);
	}
	r = batch_claim_impl(p, &b, false);
	return r ? r : batch_write(p, &b, positions, false);
}

int spw_producer_send_batch(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
			    int64_t *positions)
{
	return send_batch(p, m, n, NULL, positions);
}

int spw_producer_send_batch_at(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
			       const uint64_t *timestamps_ns, int64_t *positions)
{
	return send_batch(p, m, n, timestamps_ns, positions);
}

static int send_batch_wait(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
			   int64_t timeout_ns, const uint64_t *tss, int64_t *positions)
{
	struct claim_try b;
	int r = batch_check(p, m, n, tss, &b);

	if (r || !b.n)
		return r;
	r = claim_wait(p, &b, timeout_ns);
	return r ? r : batch_write(p, &b, positions, true);
}

int spw_producer_send_batch_wait(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
				 int64_t timeout_ns, int64_t *positions)
{
	return send_batch_wait(p, m, n, timeout_ns, NULL, positions);
}

int spw_producer_send_batch_wait_at(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
				    int64_t timeout_ns, const uint64_t *timestamps_ns,
				    int64_t *positions)
{
	return send_batch_wait(p, m, n, timeout_ns, timestamps_ns, positions);
}
