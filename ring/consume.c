/* SPDX-License-Identifier: MIT */
/*
 * consume.c - live consumers: read in place, validate after reading
 * (ring_layout.h I3, I5), sleep and wake (I8).
 *
 * A consumer writes nothing that producers read (except the waiter count
 * when it goes to sleep), so it can never slow them down.
 *
 * Reading the record at p:
 *   1. p < limit (acquire; cached until passed): the previous lap's bytes at
 *      p's offset were zeroed before limit moved (I3), so a non-zero commit
 *      word there belongs to p's own lap.
 *   2. commit word (acquire): 0 is "nothing yet".
 *   3. ring_word_check(): its lap, type, and a span that fits before the
 *      end of the ring, the length within max_record; else garbage
 *      (-EBADMSG) unless lapped.
 *   4. acquire fence, then `reclaimed`: if > p, the bytes may be torn (I5):
 *      -ESTALE. The callback runs only on a validated record, and poll
 *      validates again after it returns: a record reclaimed while the callback
 *      held it is reported -ESTALE and not counted as consumed.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 50000ll /* spin before a futex sleep (~20 us sleep/wake here) */
#define SLICE_NS 100000000ll /* longest sleep before looking again anyway */

/* Sleeps that ran out their safety slice and then found a record: each one
 * is a wake-up I8 failed to deliver. Never expected; tests assert 0. */
_Atomic uint64_t ring_missed_wakes __attribute__((visibility("hidden")));

int spw_consumer_open(struct spw_topic *t, enum spw_from from, int64_t position,
		      struct spw_consumer **out)
{
	struct spw_consumer *c;
	uint64_t pos;
	int r;

	if (!t || !out)
		return -EINVAL;
	*out = NULL;
	switch (from) {
	case SPW_FROM_OLDEST:
		/* Acquire: pairs with reclaim's seq_cst store; a bound, checked
		 * again at every read (I5). */
		pos = atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire);
		break;
	case SPW_FROM_LATEST:
		/* Acquire: tail is always a record boundary (claims move it by
		 * whole spans, I6). */
		pos = atomic_load_explicit(&t->hdr->tail, memory_order_acquire);
		break;
	case SPW_FROM_POSITION:
		pos = (uint64_t)position;
		break;
	default:
		return -EINVAL;
	}
	if (from != SPW_FROM_POSITION && (pos & 7))
		return -EBADMSG; /* garbage in the header (P3): bounds move by whole spans */
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->t = t;
	/* (at a position: from the oldest, which seek's walk starts at) */
	c->pos = from == SPW_FROM_POSITION ? 0 : pos;
	c->fd = -1;
	if (from == SPW_FROM_POSITION) {
		r = spw_consumer_seek(c, position);
		if (r) {
			free(c);
			return r;
		}
	}
	*out = c;
	return 0;
}

void spw_consumer_close(struct spw_consumer *c)
{
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
}

uint64_t spw_consumer_skipped(const struct spw_consumer *c)
{
	return c ? c->skipped : 0;
}

/* Does the chain of committed records from a, a record boundary, land on
 * pos exactly? For a pos inside a slot's span [a, end): a batch
 * (spw_producer_send_batch) that committed the records before pos but has
 * not yet moved its claim to pos (I2). Below `reclaimed` records may be
 * zeroed as we walk: start, and go on, from there (a record boundary too,
 * I1; reclaim never passes an uncommitted record, so never pos). */
static bool chain_reaches(struct spw_topic *t, uint64_t a, uint64_t pos)
{
	uint64_t q = a;

	for (;;) {
		/* Acquire: pairs with reclaim's seq_cst store (I1, I5). */
		uint64_t rec = atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire);
		int64_t span;

		if (q < rec)
			q = rec;
		if (q >= pos)
			return q == pos;
		/* Acquire: pairs with the commit store (I4). */
		span = ring_check(t, q, atomic_load_explicit(&ring_rec_at(t, q)->commit,
							     memory_order_acquire));
		if (span <= 0) {
			/* Zeroed under us (reclaimed moved past q): go on from
			 * there; else the chain stops short of pos. */
			if (atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire) > q)
				continue;
			return false;
		}
		q += (uint64_t)span;
	}
}

/* (ring_internal.h) A valid-looking word at pos: is pos really where a
 * record starts, or payload bytes that read as a header for their own
 * position (any producer can send those)? Walk the chain of records from
 * `from`, a boundary the caller knows (0: reclaimed, one by I1), over
 * committed records and over the claims WON slots hold (I2; a CLAIMING
 * slot's span is a guess that may have lost its CAS: no ground to step
 * on), at most WALK_MAX steps. 1: the chain lands on pos; 0: it steps over
 * pos (inside a record: refuse); -1: it could not tell (a gap no WON slot
 * holds: a guess, a dead producer's claim not settled yet; or too far),
 * and the word is taken on trust as before this walk. */
#define WALK_MAX (1u << 20)

/* The end of the claim a WON slot holds over uncommitted q: one starting
 * at q, or, at a lap's start, a wrapped one (its padding before q, its
 * record at q, I6). 0: none. */
static uint64_t won_claim_end(const struct spw_topic *t, uint64_t q)
{
	uint64_t a, e;
	bool won;

	for (uint32_t i = 0; i < t->max_producers; i++)
		if (ring_slot_span(t, i, &a, &e, &won) && won && e > q &&
		    (a == q || ((q & t->mask) == 0 && a < q)))
			return e;
	return 0;
}

int ring_chain_lands(struct spw_topic *t, uint64_t from, uint64_t pos)
{
	uint64_t q = from;

	for (uint32_t n = 0; n < WALK_MAX; n++) {
		/* Acquire: pairs with reclaim's seq_cst store (I1, I5). */
		uint64_t rec = atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire);
		_Atomic uint64_t *word;
		int64_t span;
		uint64_t next;

		if (q < rec)
			q = rec;
		if (q >= pos)
			return q == pos;
		word = &ring_rec_at(t, q)->commit;
		/* Acquire: pairs with the commit store (I4). */
		span = ring_check(t, q, atomic_load_explicit(word, memory_order_acquire));
		if (span > 0) {
			q += (uint64_t)span;
			continue;
		}
		if (atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire) > q)
			continue; /* zeroed under us: on from the new bound */
		next = won_claim_end(t, q);
		if (!next)
			return -1;
		/* Acquire: still uncommitted after the slot said so? A batch
		 * commits in order and moves its claim only after each commit
		 * (I2): nothing past q in that claim is committed, so the jump
		 * passes no record the caller may have seen. Committed meanwhile:
		 * step over it instead. */
		if (atomic_load_explicit(word, memory_order_acquire))
			continue;
		q = next;
	}
	return -1;
}

/* Is pos a record boundary? A committed record starts there (and the chain
 * of records does not step over it: ring_chain_lands), or a claim published in
 * a slot (I2) does, or the committed records of a slot's unfinished batch
 * lead to it, or it is the tail. Anything else is inside a record (payload
 * bytes can be all zero: "nothing yet" forever). */
static bool boundary(struct spw_topic *t, uint64_t pos, uint64_t tail, uint64_t from, bool prove)
{
	_Atomic uint64_t *word = &ring_rec_at(t, pos)->commit;
	uint64_t w, a, e;
	bool won;

	if (pos == tail)
		return true;
	/* Acquire: pairs with the commit store (I4). */
	w = atomic_load_explicit(word, memory_order_acquire);
	if (w)
		return ring_check(t, pos, w) > 0 && (!prove || ring_chain_lands(t, from, pos) != 0);
	for (uint32_t i = 0; i < t->max_producers; i++) {
		/* Acquire: pairs with the tail CAS that released it (I2). */
		uint64_t cl = atomic_load_explicit(&t->slots[i].claim, memory_order_acquire);

		if ((cl & RING_SLOT_IDLE) || (cl & 7) == 0)
			continue;
		if ((cl & ~7ull) == pos)
			return true;
		/* A wrapping claim's record starts at offset 0 of the next lap. */
		if ((pos & t->mask) == 0 && (cl & ~7ull) < pos &&
		    atomic_load_explicit(&t->slots[i].end, memory_order_acquire) > pos)
			return true;
		/* Inside a batch's span: its committed records may lead here. */
		if (ring_slot_span(t, i, &a, &e, &won) && a < pos && pos < e &&
		    chain_reaches(t, a, pos))
			return true;
	}
	/* A producer that committed while we read the slots moved on: its
	 * commit store came before its next slot store (acquire above). */
	w = atomic_load_explicit(word, memory_order_acquire);
	return w && ring_check(t, pos, w) > 0 && (!prove || ring_chain_lands(t, from, pos) != 0);
}

int64_t spw_consumer_position(const struct spw_consumer *c)
{
	return c ? (int64_t)c->pos : -EINVAL;
}

int64_t spw_consumer_oldest(const struct spw_consumer *c)
{
	if (!c)
		return -EINVAL;
	/* Acquire: pairs with the seq_cst store in spwd_reclaim(). */
	return (int64_t)atomic_load_explicit(&c->t->hdr->reclaimed, memory_order_acquire);
}

/* prove: walk the chain of records to a valid-looking word at pos
 * (ring_chain_lands), from the consumer's own position when that is not
 * past pos (a boundary it reached), else from reclaimed. */
static int seek_at(struct spw_consumer *c, int64_t position, bool prove)
{
	uint64_t pos = (uint64_t)position, tail;

	if (!c || position < 0 || (pos & 7))
		return -EINVAL;
	/* Acquire loads: bounds only; reads re-validate (I5). */
	tail = atomic_load_explicit(&c->t->hdr->tail, memory_order_acquire);
	if (pos > tail)
		return -EINVAL;
	/* Acquire: pairs with reclaim's seq_cst store (I1). */
	if (pos < atomic_load_explicit(&c->t->hdr->reclaimed, memory_order_acquire))
		return -ESTALE;
	if (!boundary(c->t, pos, tail, c->pos <= pos ? c->pos : 0, prove)) {
		if (pos < atomic_load_explicit(&c->t->hdr->reclaimed, memory_order_acquire))
			return -ESTALE; /* what we looked at was being reused */
		return -EINVAL;
	}
	c->pos = pos;
	c->limit_cache = 0;
	/* A new place to read: no back-off and no empty looks carry over. */
	c->idle_until = 0;
	c->idle_pos = pos;
	c->empty_streak = 0;
	return 0;
}

int spw_consumer_seek(struct spw_consumer *c, int64_t position)
{
	return seek_at(c, position, true);
}

int ring_consumer_seek_known(struct spw_consumer *c, int64_t position)
{
	return seek_at(c, position, false);
}

/* Is p below limit? (step 1). The cached limit is only ever behind the
 * real one. */
static bool below_limit_at(struct spw_consumer *c, uint64_t p)
{
	if (p < c->limit_cache)
		return true;
	/* Acquire: pairs with the seq_cst store of limit in reclaim, after the
	 * zeroing (I3). */
	c->limit_cache = atomic_load_explicit(&c->t->hdr->limit, memory_order_acquire);
	return p < c->limit_cache;
}

static bool below_limit(struct spw_consumer *c)
{
	return below_limit_at(c, c->pos);
}

/*
 * The back-off (spw_consumer_set_backoff). A consumer that has caught up
 * with a fast producer and polls again at once reads the commit word of the
 * record the producer is about to write: its line moves to the consumer's
 * core and the producer's next stores wait for it to come back, once per
 * record. Both sides then run at the pace of cache-line transfers (measured:
 * 64 B records at 5-25 M/s instead of 25-50 M/s, docs/HACKING.md). Backing
 * off leaves the producer those lines for a while; the consumer then reads a
 * batch of lines the producer has finished with. It costs latency (a record
 * may wait up to backoff_ns), so it is off unless asked for.
 *
 * A back-off should not fill the ring: the producer would then wait for
 * room (1 KiB records at ~10 M/s fill a quarter of a 1 MiB ring in 25 us),
 * or, with a daemon reclaiming, lap the consumer. So each back-off looks at
 * what was read since the last one began (what the producer wrote
 * meanwhile): more than a quarter ring scales the back-off down in one step
 * to what would have let in a quarter ring (not below 1 us), less than a
 * sixteenth doubles it again, up to backoff_ns. The first back-off after a
 * quiet spell is the full one: that one can still let more in.
 */
#define BACKOFF_FLOOR_NS 1000ll
static bool backing_off(struct spw_consumer *c)
{
	if (__builtin_expect(c->idle_until == 0, 1))
		return false;
	if (ring_monotonic_ns() < c->idle_until)
		return true;
	c->idle_until = 0;
	return false;
}

/*
 * Waiting for small records. A consumer that has caught up spins on the
 * commit word of the next record, in the line the producer will write. A
 * record of up to two lines (64 B of payload is 80 B) usually runs into the
 * next line too, which the producer writes before the commit word: found
 * only after the commit, it is a second line transfer in a row, ~100 ns of
 * a round trip across cores here. So once a consumer has looked
 * WAIT_PREFETCH_AFTER times in a row and found nothing (the producer is
 * idle, not streaming: a streaming one is found within a look or two), and
 * the records so far were small, each look also prefetches the line after
 * the commit word's, and that line travels while the commit word does.
 * Measured (bench-compare round trip p50, spillway-live, 3 rounds
 * alternating with the build before, vCPUs far apart): 8 B 571-575 ns
 * against 611-623, 64 B 631-635 against 763, 112 B 623-651 against 803, 1 KiB
 * unchanged; the pre-filled poll_pair / peek_pair unchanged. Prefetching for
 * 1 KiB records too cost their round trip 6-10% (the prefetch takes lines
 * from a producer still writing them): hence the size test.
 * docs/HACKING.md, "Comparison history".
 */
#define WAIT_PREFETCH_AFTER 8
#define WAIT_LINE 64 /* a cache line (RING_LINE is two: the header's spacing) */
#define WAIT_PREFETCH_SPAN (2 * WAIT_LINE)

static inline void waiting_at(struct spw_consumer *c)
{
	if (c->empty_streak < WAIT_PREFETCH_AFTER) {
		c->empty_streak++;
		return;
	}
	if (c->small)
		__builtin_prefetch(ring_rec_at(c->t, (c->pos & ~(uint64_t)(WAIT_LINE - 1)) + WAIT_LINE));
}

/* n records covering bytes [from, to) were handed out: once per call, not
 * per record (a store per record cost the pre-filled poll 4%). */
static inline void handed_out(struct spw_consumer *c, uint64_t from, uint64_t to, int n)
{
	c->empty_streak = 0;
	c->small = to - from <= (uint64_t)n * WAIT_PREFETCH_SPAN;
}

/* A poll or peek found nothing: idle for the back-off, if one is set. */
static void found_nothing(struct spw_consumer *c)
{
	uint64_t moved, ring = c->t->ring_bytes;

	if (!c->backoff_ns)
		return;
	/* pos only grows between back-offs (seek resets idle_pos): no wrap. */
	moved = c->pos > c->idle_pos ? c->pos - c->idle_pos : 0;
	if (moved > ring / 4) {
		/* In 128 bits: backoff_cur <= 1e9 times up to a quarter ring. */
		int64_t scaled = (int64_t)((__uint128_t)(uint64_t)c->backoff_cur * (ring / 4) / moved);

		c->backoff_cur = scaled > BACKOFF_FLOOR_NS ? scaled : BACKOFF_FLOOR_NS;
		if (c->backoff_cur > c->backoff_ns)
			c->backoff_cur = c->backoff_ns;
	} else if (moved < ring / 16)
		c->backoff_cur = c->backoff_cur * 2 < c->backoff_ns ? c->backoff_cur * 2 : c->backoff_ns;
	c->idle_pos = c->pos;
	c->idle_until = ring_monotonic_ns() + (uint64_t)c->backoff_cur;
}

int spw_consumer_set_backoff(struct spw_consumer *c, int64_t ns)
{
	if (!c || ns < 0 || ns > SPW_CONSUMER_BACKOFF_MAX_NS)
		return -EINVAL;
	c->backoff_ns = ns;
	c->backoff_cur = ns;
	c->idle_until = 0;
	c->idle_pos = c->pos;
	return 0;
}

static int poll_once(struct spw_consumer *c, spw_record_fn fn, void *arg, int max)
{
	struct spw_topic *t = c->t;
	struct spw_record rec;
	int n = 0;

	while (n < max) {
		uint64_t p = c->pos, w, span;
		struct ring_rec *r;
		int64_t chk;
		int stop;

		if (!below_limit(c))
			return n ? n : (ring_lapped(t, p) ? -ESTALE : 0);
		r = ring_rec_at(t, p);
		/* Acquire: pairs with the producer's commit store (I4) or the
		 * padding / abort store: the payload is visible after it. */
		w = atomic_load_explicit(&r->commit, memory_order_acquire);
		chk = ring_check(t, p, w);
		if (chk == 0)
			return n ? n : (ring_lapped(t, p) ? -ESTALE : 0);
		if (chk < 0)
			return n ? n : (ring_lapped(t, p) ? -ESTALE : -EBADMSG);
		span = (uint64_t)chk;
		if (RING_W_TYPE(w) != RING_T_DATA) {
			if (ring_lapped(t, p))
				return n ? n : -ESTALE;
			if (RING_W_TYPE(w) == RING_T_CORRUPT)
				c->skipped += span;
			c->pos = p + span;
			continue;
		}
		rec.position = (int64_t)p;
		rec.timestamp_ns = r->timestamp_ns;
		rec.data = r + 1;
		rec.len = RING_W_LEN(w);
		rec.flags = 0;
		if (ring_lapped(t, p))
			return n ? n : -ESTALE;
		stop = fn(arg, &rec);
		if (ring_lapped(t, p)) /* overwritten while the callback held it: not consumed */
			return n ? n : -ESTALE;
		c->pos = p + span;
		n++;
		if (stop)
			break;
	}
	return n;
}

int spw_consumer_poll(struct spw_consumer *c, spw_record_fn fn, void *arg, int max)
{
	uint64_t from;
	int n;

	if (!c || !fn || max <= 0)
		return -EINVAL;
	if (backing_off(c))
		return 0;
	from = c->pos;
	n = poll_once(c, fn, arg, max);
	if (n == 0) {
		waiting_at(c);
		found_nothing(c);
	} else if (n > 0) {
		handed_out(c, from, c->pos, n);
	}
	return n;
}

static int peek_once(struct spw_consumer *c, struct spw_record *recs, int max)
{
	struct spw_topic *t = c->t;
	uint64_t p = c->pos;
	int n = 0;

	while (n < max) {
		uint64_t w, span;
		int64_t chk;

		if (!below_limit_at(c, p))
			break;
		/* Acquire: pairs with each producer's release commit store
		 * (I4). A plain load on x86; kept per record rather than one
		 * fence per batch so that TSan, which does not model fences,
		 * sees the pairing too. */
		w = atomic_load_explicit(&ring_rec_at(t, p)->commit, memory_order_acquire);
		chk = ring_check(t, p, w);
		if (chk <= 0) {
			if (n || p != c->pos)
				break; /* the next peek reports it */
			if (ring_lapped(t, p))
				return -ESTALE;
			return chk < 0 ? -EBADMSG : 0;
		}
		span = (uint64_t)chk;
		if (RING_W_TYPE(w) != RING_T_DATA) {
			if (n == 0) {
				/* Before any DATA record: pass over it now, as poll
				 * does (I5: only if it was not reclaimed meanwhile). */
				if (ring_lapped(t, p))
					return -ESTALE;
				if (RING_W_TYPE(w) == RING_T_CORRUPT)
					c->skipped += span;
				c->pos = p + span;
			} else if (RING_W_TYPE(w) == RING_T_CORRUPT) {
				break; /* counted when the next peek passes it */
			}
			p += span;
			continue;
		}
		recs[n].position = (int64_t)p;
		recs[n].len = RING_W_LEN(w);
		recs[n].flags = 0;
		recs[n].data = ring_rec_at(t, p) + 1;
		recs[n].timestamp_ns = ring_rec_at(t, p)->timestamp_ns;
		n++;
		p += span;
	}
	return n;
}

int spw_consumer_peek(struct spw_consumer *c, struct spw_record *recs, int max)
{
	int n;

	if (!c || !recs || max <= 0)
		return -EINVAL;
	if (backing_off(c))
		return 0;
	/* Caught up (the last look found nothing): the record found now is
	 * handed out alone, without a look at the next one's commit word. That
	 * line is usually still the producer's, and the load of it, a miss,
	 * would hold up the retirement of all the caller does with this record
	 * (a reply's stores among it) until it came back; poll's callback runs
	 * before its look ahead, so it has no such wait. Streaming (the last
	 * look found records), the batch is whole; and after a back-off
	 * (spw_consumer_set_backoff), which waited away from the line. Measured:
	 * docs/HACKING.md, "Comparison history" (the round trip of 2026-12-05). */
	if (c->empty_streak && !c->backoff_ns)
		max = 1;
	n = peek_once(c, recs, max);
	if (n == 0) {
		waiting_at(c);
		found_nothing(c);
	} else if (n > 0) {
		handed_out(c, (uint64_t)recs[0].position,
			   (uint64_t)recs[n - 1].position + ring_span(recs[n - 1].len), n);
	}
	return n;
}

int spw_consumer_release(struct spw_consumer *c, const struct spw_record *recs, int n)
{
	uint64_t end, last;

	if (!c || n < 0 || (n && !recs))
		return -EINVAL;
	if (n == 0)
		return 0;
	last = (uint64_t)recs[n - 1].position;
	end = last + ring_span(recs[n - 1].len);
	/* What peek described: at or after the position, below the limit it
	 * saw (a record there is whole, I3), 8-aligned. */
	if (recs[n - 1].position < 0 || last < c->pos || (last & 7) ||
	    (end > c->limit_cache && !below_limit_at(c, end - 1)))
		return -EINVAL;
	/* One lap check for the batch (I5): the fence inside orders every read
	 * the caller made of these records before the load of reclaimed. */
	if (ring_lapped(c->t, c->pos))
		return -ESTALE;
	c->pos = end;
	return n;
}

/* Is there something for poll to do at the consumer's position? The
 * re-check half of I8 (after the increment and the membarrier): seq_cst
 * loads, also inside below_limit() and ring_lapped() through their fences. */
static bool ready(struct spw_consumer *c)
{
	struct spw_topic *t = c->t;

	if (!below_limit(c))
		return ring_lapped(t, c->pos);
	return atomic_load_explicit(&ring_rec_at(t, c->pos)->commit, memory_order_seq_cst) != 0 ||
	       ring_lapped(t, c->pos);
}

static void consumer_sleep(struct spw_consumer *c, int64_t left_ns, bool slice, int64_t *nap_ns)
{
	struct ring_hdr *h = c->t->hdr;
	uint32_t seq;

	if (c->t->rdonly) {
		/* A read-only mapping cannot register as a waiter: nap, longer
		 * and longer (50 us .. 2 ms) while nothing comes. */
		struct timespec ts = { 0, *nap_ns };

		if (left_ns >= 0 && left_ns < ts.tv_nsec)
			ts.tv_nsec = left_ns;
		nanosleep(&ts, NULL);
		if (*nap_ns < 2000000)
			*nap_ns *= 2;
		return;
	}
	if (c->fd < 0)
		c->fd = ring_reopen(c->t); /* own description for the waiter lock */
	/* Acquire: the futex compare value, read before the re-check. */
	seq = atomic_load_explicit(&h->cons_wake, memory_order_acquire);
	/* Sleeper half of I8: lock, seq_cst increment; pairs with the load of
	 * cons_waiters in ring_wake_consumers() after a commit. Without the
	 * lock (out of descriptors): nap 1 ms, unregistered. */
	if (!ring_waiter_enter(c->fd, c->t, &h->cons_waiters)) {
		struct timespec ts = { 0, 1000000 };

		if (left_ns >= 0 && left_ns < ts.tv_nsec)
			ts.tv_nsec = left_ns;
		nanosleep(&ts, NULL);
		return;
	}
	/* Producers store their commit word without a fence: make every
	 * running producer pass a full barrier, so either it sees our count or
	 * we see its commit below. Without membarrier, sleep in 1 ms slices. */
	if (ring_membarrier() && (left_ns < 0 || left_ns > 1000000)) {
		left_ns = 1000000;
		slice = false; /* short naps by design: not a missed wake */
	}
	if (!ready(c) && ring_futex_wait(&h->cons_wake, seq, left_ns) == -ETIMEDOUT && slice &&
	    ready(c))
		/* Relaxed: a statistic. */
		atomic_fetch_add_explicit(&ring_missed_wakes, 1, memory_order_relaxed);
	ring_waiter_leave(c->fd, c->t, &h->cons_waiters);
}

int ring_consumer_wait(struct spw_consumer *c, int64_t timeout_ns)
{
	int64_t start = (int64_t)ring_monotonic_ns(), elapsed, nap = 50000;

	for (unsigned i = 1;; i++) {
		if (ready(c))
			return 1;
		if ((i & 63) != 0) {
			ring_cpu_relax();
			continue;
		}
		elapsed = (int64_t)ring_monotonic_ns() - start;
		if (timeout_ns >= 0 && elapsed >= timeout_ns)
			return 0;
		if (elapsed < SPIN_NS)
			continue;
		/* Sleep in slices of at most 100 ms: a producer that died with a
		 * claim open is settled by the daemon, which wakes us, but a
		 * bounded slice keeps any missed case from hanging us. */
		if (timeout_ns >= 0 && timeout_ns - elapsed < SLICE_NS)
			consumer_sleep(c, timeout_ns - elapsed, false, &nap);
		else
			consumer_sleep(c, SLICE_NS, true, &nap);
	}
}

/* poll_wait delivered: the producer is writing, so a back-off begun by an
 * earlier poll or peek is over. */
static int wait_done(struct spw_consumer *c, int r)
{
	if (r > 0) {
		c->idle_until = 0;
		c->empty_streak = 0; /* found records: not caught up (peek) */
	}
	return r;
}

int spw_consumer_poll_wait(struct spw_consumer *c, spw_record_fn fn, void *arg, int max,
			   int64_t timeout_ns)
{
	uint64_t start;
	int64_t left;
	int r;

	/* Waiting is this call's job: the back-off is for spinning callers. */
	if (!c || !fn || max <= 0)
		return -EINVAL;
	r = poll_once(c, fn, arg, max);
	if (r != 0)
		return wait_done(c, r);
	start = timeout_ns > 0 ? ring_monotonic_ns() : 0;
	for (;;) {
		left = ring_wait_left(timeout_ns, start);
		if (left == 0)
			return 0;
		if (!ring_consumer_wait(c, left))
			return 0;
		r = poll_once(c, fn, arg, max);
		if (r != 0)
			return wait_done(c, r);
	}
}

int ring_consumer_next_copy(struct spw_consumer *c, uint8_t **stage, size_t *cap, size_t off,
			    struct spw_record *rec)
{
	struct spw_topic *t = c->t;

	for (;;) {
		uint64_t p = c->pos, w, span;
		struct ring_rec *r;
		int64_t chk;
		uint32_t len;

		if (!below_limit(c))
			return ring_lapped(t, p) ? -ESTALE : 0;
		r = ring_rec_at(t, p);
		/* Acquire: pairs with the producer's commit store (I4). */
		w = atomic_load_explicit(&r->commit, memory_order_acquire);
		chk = ring_check(t, p, w);
		if (chk == 0)
			return ring_lapped(t, p) ? -ESTALE : 0;
		if (chk < 0)
			return ring_lapped(t, p) ? -ESTALE : -EBADMSG;
		span = (uint64_t)chk;
		if (RING_W_TYPE(w) != RING_T_DATA) {
			if (ring_lapped(t, p))
				return -ESTALE;
			if (RING_W_TYPE(w) == RING_T_CORRUPT)
				c->skipped += span;
			c->pos = p + span;
			continue;
		}
		len = RING_W_LEN(w);
		if (off + len > *cap) {
			size_t want = off + (t->max_record > len ? t->max_record : len);
			uint8_t *n = realloc(*stage, want > 2 * *cap ? want : 2 * *cap);

			if (!n)
				return -ENOMEM;
			*cap = want > 2 * *cap ? want : 2 * *cap;
			*stage = n;
		}
		rec->timestamp_ns = r->timestamp_ns;
		memcpy(*stage + off, r + 1, len);
		/* I5 on the copy: what the caller gets was intact. */
		if (ring_lapped(t, p))
			return -ESTALE;
		rec->position = (int64_t)p;
		rec->data = *stage + off;
		rec->len = len;
		rec->flags = 0;
		c->pos = p + span;
		return 1;
	}
}
