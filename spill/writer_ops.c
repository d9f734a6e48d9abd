/* SPDX-License-Identifier: MIT */
/*
 * writer_ops.c - one topic's spilling (spill/writer.c W2-W5): committed runs
 * of the ring turned into write ops (data, then its index entries), their
 * submission and completion in order, a stuck record judged (spwd_resolve),
 * segment rolls, error backoff, and reclaiming the ring behind `spilled`.
 */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* How long a record must stay uncommitted before we ask the kernel whether
 * its producer lives, and how often we ask again: a dead producer's claim
 * is settled within about this (plus one loop, <= 2 ms) of its death. */
#define STALL_CHECK_NS 5000000ull

struct spill_op *spill_op_at(struct spill_stream *s, unsigned i)
{
	return &s->ops[(s->op_head + i) % SPILL_MAX_OPS];
}

/* One index entry for the scanned run [pos, sc->end) (CRC computed here, by
 * the daemon, not by producers). */
static void add_entry(struct spill_op *op, struct spw_topic *t, uint64_t pos,
		      const struct spwd_scan_result *sc, uint64_t *records, uint64_t *max_ts, bool crc)
{
	struct seg_idx_entry *e = &op->ent[op->nent++];

	*records += sc->records;
	if (sc->max_timestamp_ns > *max_ts)
		*max_ts = sc->max_timestamp_ns;
	memset(e, 0, sizeof(*e));
	e->end = (uint64_t)sc->end;
	e->records = *records;
	e->max_ts = *max_ts;
	/* A no-spill topic writes no index: no CRC to pay for. */
	e->crc_data = crc ? seg_crc32c(0, t->data + (pos & t->mask), (size_t)((uint64_t)sc->end - pos))
			  : 0;
	seg_idx_entry_seal(e);
}

/* Spilling cannot pass pos: an uncommitted record (garbage == false) or a
 * word that is not a record. Settle it when nobody alive holds it
 * (spwd_resolve, I7); report a live producer's stall once it outlived
 * unblock_ms (the report threshold). true: scan again. */
static bool stalled(struct spill_stream *s, uint64_t pos, bool garbage, uint64_t now_ns)
{
	struct spw_topic *t = s->t;
	struct spwd_stall st;
	int r;

	if ((int64_t)pos != s->stuck_pos) {
		if (s->stall_reported)
			spwd_set_stall(t, -1, 0, 0, 0);
		s->stuck_pos = (int64_t)pos;
		s->stuck_since_ns = now_ns;
		s->stuck_checked_ns = 0;
		s->stall_reported = false;
		s->resolve_failed = false;
	}
	/* A producer is usually just between its claim and its commit: ask
	 * the kernel only once the record stayed open a while. */
	if (!garbage && (now_ns - s->stuck_since_ns < STALL_CHECK_NS ||
			 now_ns - s->stuck_checked_ns < STALL_CHECK_NS))
		return false;
	s->stuck_checked_ns = now_ns;
	r = spwd_resolve(t, (int64_t)pos, &st);
	switch (r) {
	case SPWD_RESOLVE_NONE:
		return true;
	case SPWD_RESOLVE_ABORTED:
		spill_log(LOG_WARN, s->name,
			  "claim at position %llu of producer slot %d (pid %u, as it reported) "
			  "aborted: %llu bytes; its producer died (the kernel released its lock)",
			  (unsigned long long)pos, st.slot, st.pid, (unsigned long long)st.span);
		return true;
	case SPWD_RESOLVE_CORRUPT:
		spill_log(LOG_ERROR, s->name,
			  "corrupt record header 0x%016llx at position %llu in the ring: %llu bytes "
			  "up to %llu spilled as a CORRUPT span (readers skip and count it)",
			  (unsigned long long)st.word, (unsigned long long)pos,
			  (unsigned long long)st.span, (unsigned long long)(pos + st.span));
		return true;
	case SPWD_RESOLVE_LIVE:
		if (!s->stall_reported && now_ns - s->stuck_since_ns >= s->conf.unblock_ms * 1000000ull) {
			uint32_t kpid = ring_lock_owner_pid(t, ring_slot_off((uint32_t)st.slot));
			uint64_t ms = (now_ns - s->stuck_since_ns) / 1000000ull;

			spill_log(LOG_WARN, s->name,
				  "spilling waits at position %llu: producer slot %d (pid %u per the "
				  "kernel, %u as it reported) has held it uncommitted for %llu ms; a live "
				  "producer is never aborted (stopped? in a debugger?)",
				  (unsigned long long)pos, st.slot, kpid, st.pid, (unsigned long long)ms);
			spwd_set_stall(t, st.slot, (int64_t)pos, kpid ? kpid : st.pid,
					    ring_realtime_ns() - ms * 1000000ull);
			s->stall_reported = true;
		}
		return false;
	default:
		if (!s->resolve_failed)
			spill_log(LOG_ERROR, s->name, "cannot settle position %llu: %s",
				  (unsigned long long)pos, strerror(-r));
		s->resolve_failed = true;
		return false;
	}
}

/* n more committed records walked (newest timestamp max_ts): the figures
 * for /metrics. records_walked goes back on an error's rewind and walks
 * the same records again; the exported count only ever grows. */
static void seen(struct spill_stream *s, uint64_t n, uint64_t max_ts)
{
	s->records_walked += n;
	if (s->records_walked > s->m.records_seen)
		s->m.records_seen = s->records_walked;
	if (max_ts > s->m.newest_ts_seen)
		s->m.newest_ts_seen = max_ts;
}

/* Walk the committed run from s->submitted into index entries (W2). */
static int op_build(struct spill_stream *s, struct spill_op *op, uint64_t now_ns)
{
	struct spw_topic *t = s->t;
	uint64_t pos = s->submitted, records = s->seg.sub_records, max_ts = s->seg.sub_max_ts;
	struct spwd_scan_result sc;
	int settled = 0;

	op->nent = 0;
	op->from = pos;
	while (op->nent < SPILL_OP_ENTRIES && pos - op->from < SPILL_OP_BYTES) {
		int64_t n = spwd_scan(t, (int64_t)pos, SEG_ENTRY_SPAN, &sc);

		if (n == -EBADMSG && (uint64_t)sc.end > pos) {
			/* Spill the good run before the bad header. */
			add_entry(op, t, pos, &sc, &records, &max_ts, !s->conf.no_spill);
			pos = (uint64_t)sc.end;
			continue;
		}
		if (n == -EBADMSG || (n == 0 && sc.stuck >= 0)) {
			/* Scan again after a settlement, but never loop on a
			 * position that scan and resolve judge differently. */
			if (stalled(s, n == -EBADMSG ? pos : (uint64_t)sc.stuck, n == -EBADMSG, now_ns) &&
			    ++settled < 8)
				continue;
			break;
		}
		if (n < 0) {
			/* Once per error and position: a hostile header (a tail of
			 * 0, a reclaimed past the spill position) fails the same
			 * way every loop, ~500 times a second. */
			if (s->scan_err == (int)n && s->scan_err_pos == (int64_t)pos)
				; /* said already */
			else if (n == -EUCLEAN)
				/* Relaxed loads: the figures of a message, ordering
				 * nothing (scan judged with its own acquire loads). */
				spill_log(LOG_ERROR, s->name,
					  "the ring's header is garbage: its tail %llu is past its limit "
					  "%llu (something wrote into the header); spilling stops at "
					  "%llu, and nothing in the ring is cut or reclaimed (topic "
					  "delete --keep-log makes a new ring from the disk log, losing "
					  "what was not spilled)",
					  (unsigned long long)atomic_load_explicit(&t->hdr->tail,
										   memory_order_relaxed),
					  (unsigned long long)atomic_load_explicit(&t->hdr->limit,
										   memory_order_relaxed),
					  (unsigned long long)pos);
			else
				spill_log(LOG_ERROR, s->name, "scan at %llu: %s (spilling stops here)",
					  (unsigned long long)pos, strerror((int)-n));
			s->scan_err = (int)n;
			s->scan_err_pos = (int64_t)pos;
			break;
		}
		if (n == 0)
			break;
		if (s->stall_reported && pos + (uint64_t)n > (uint64_t)s->stuck_pos) {
			spill_log(LOG_INFO, s->name, "spilling resumed at position %lld after %llu ms",
				  (long long)s->stuck_pos,
				  (unsigned long long)((now_ns - s->stuck_since_ns) / 1000000ull));
			spwd_set_stall(t, -1, 0, 0, 0);
			s->stall_reported = false;
		}
		add_entry(op, t, pos, &sc, &records, &max_ts, !s->conf.no_spill);
		pos = (uint64_t)sc.end;
		if ((pos & t->mask) == 0)
			break; /* a run never wraps */
	}
	op->to = pos;
	op->records = records;
	op->max_ts = max_ts;
	return op->nent;
}

void spill_prep_fd(struct io_uring_sqe *sqe, int slot)
{
	if (slot >= 0)
		sqe->flags |= IOSQE_FIXED_FILE;
}

static int op_submit(struct spill_stream *s, struct spill_op *op)
{
	struct spill_writer *w = s->w;
	struct spill_seg *g = &s->seg;
	struct io_uring_sqe *sd, *si;
	uint64_t off = op->from & s->t->mask, len = op->to - op->from;
	int fd_seg = g->slot_seg >= 0 ? g->slot_seg : g->fd_seg;
	int fd_idx = g->slot_idx >= 0 ? g->slot_idx : g->fd_idx;

	if (io_uring_sq_space_left(&w->ring) < 2)
		spill_writer_submit(w);
	if (io_uring_sq_space_left(&w->ring) < 2)
		return -EBUSY; /* never take half a pair: a lone SQE would go out stale */
	sd = io_uring_get_sqe(&w->ring);
	si = io_uring_get_sqe(&w->ring);
	w->inflight += 2; /* counted when queued: liburing may submit them itself */
	/* A fixed-buffer write must stay inside one registered iovec (<= 1 GiB);
	 * the rare op that crosses one is a plain write. */
	if (s->buf_slot >= 0 && off / SPILL_GIB == (off + len - 1) / SPILL_GIB)
		io_uring_prep_write_fixed(sd, fd_seg, s->t->data + off, (unsigned)len,
					  op->from - g->base, s->buf_slot + (int)(off / SPILL_GIB));
	else
		io_uring_prep_write(sd, fd_seg, s->t->data + off, (unsigned)len, op->from - g->base);
	spill_prep_fd(sd, g->slot_seg);
	sd->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data(sd, op);
	io_uring_prep_write(si, fd_idx, op->ent, (unsigned)op->nent * SEG_IDX_ENTRY_BYTES,
			    SEG_IDX_HDR_BYTES + op->entry0 * SEG_IDX_ENTRY_BYTES);
	spill_prep_fd(si, g->slot_idx);
	io_uring_sqe_set_data(si, (void *)((uintptr_t)op | 1));
	op->pending = 2;
	op->res = 0;
	return 0;
}

/* Completed prefix of ops -> spilled (W3), errors -> rewind state (W5). */
void spill_ops_advance(struct spill_stream *s)
{
	while (s->op_count) {
		struct spill_op *op = spill_op_at(s, 0);

		if (op->pending)
			return;
		if (op->res < 0) {
			if (!s->err && op->res != -EBUSY)
				s->m.write_errors++; /* once per failed attempt (a full SQ is not one) */
			if (!s->err && !s->backoff_ns)
				spill_log(LOG_ERROR, s->name,
					  "writing segment %020llu at %llu: %s; keeping the data "
					  "in the ring and retrying",
					  (unsigned long long)s->seg.base,
					  (unsigned long long)op->from, strerror(-op->res));
			s->err = op->res;
			spwd_set_spill_error(s->t, op->res);
			return;
		}
		s->spilled = op->to;
		s->m.records_spilled += op->records - s->seg.done_records;
		s->seg.done_entries = op->entry0 + (uint64_t)op->nent;
		s->seg.done_records = op->records;
		s->seg.done_max_ts = op->max_ts;
		s->op_head = (s->op_head + 1) % SPILL_MAX_OPS;
		s->op_count--;
		spwd_set_counter(s->t, SPWD_SPILLED, (int64_t)s->spilled);
		if (s->backoff_ns) {
			spill_log(LOG_INFO, s->name, "writes succeed again: spilling resumed");
			s->backoff_ns = 0;
			spwd_set_spill_error(s->t, 0);
		}
	}
}

/* Reclaim lazily: keep up to half the ring readable for live consumers,
 * all of what is spilled when producers wait (W4). */
static void reclaim(struct spill_stream *s)
{
	struct spw_topic *t = s->t;
	struct ring_hdr *h = t->hdr;
	/* Acquire loads: bounds for the walk below (I1). */
	uint64_t rec = atomic_load_explicit(&h->reclaimed, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire), target;
	/* Relaxed: a hint; reclaim itself does the seq_cst I8 check. */
	bool waiting = atomic_load_explicit(&h->prod_waiters, memory_order_relaxed) != 0;

	if (waiting || tail - rec > t->ring_bytes / 2) {
		target = waiting ? s->spilled : tail - t->ring_bytes / 4;
		if (target > s->spilled)
			target = s->spilled;
	} else {
		return;
	}
	/* Find the last record boundary <= target. */
	uint64_t pos = rec;
	struct spwd_scan_result sc;

	while (pos < target) {
		int64_t n = spwd_scan(t, (int64_t)pos, target - pos, &sc);

		if (n <= 0 || (uint64_t)sc.end > target)
			break;
		pos = (uint64_t)sc.end;
	}
	if (pos > rec)
		spwd_reclaim(t, (int64_t)pos);
}

/* W5: after an I/O error, wait for all in flight, rewind to spilled and
 * retry after a backoff that doubles up to 2 s. true: go on pumping. */
static bool error_settled(struct spill_stream *s, uint64_t now_ns)
{
	for (unsigned i = 0; i < s->op_count; i++)
		if (spill_op_at(s, i)->pending)
			return false;
	if (s->op_count) {
		s->op_count = 0;
		s->submitted = s->spilled;
		s->records_walked = s->m.records_spilled; /* walked again on the retry */
		s->seg.sub_entries = s->seg.done_entries;
		s->seg.sub_records = s->seg.done_records;
		s->seg.sub_max_ts = s->seg.done_max_ts;
		s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2 : 50000000ull;
		if (s->backoff_ns > 2000000000ull)
			s->backoff_ns = 2000000000ull;
		s->retry_ns = now_ns + s->backoff_ns;
	}
	if (now_ns < s->retry_ns)
		return false;
	s->err = 0;
	return true;
}

/* Pure IPC (no-spill): the committed run counts as handled at once. */
static int pump_no_spill(struct spill_stream *s, uint64_t now_ns)
{
	struct spill_op tmp;
	int work = 0;

	s->seg.sub_records = 0;
	while (op_build(s, &tmp, now_ns) > 0) {
		s->submitted = s->spilled = tmp.to;
		seen(s, tmp.records, tmp.max_ts);
		s->m.records_spilled += tmp.records;
		work++;
	}
	if (work)
		spwd_set_counter(s->t, SPWD_SPILLED, (int64_t)s->spilled);
	reclaim(s);
	return work;
}

/* The segment the next op writes: at the end of a full one, roll (once
 * its ops and its sync are done: the roll's fdatasync goes through the
 * ring like any other, W6, so the loop serves the other topics meanwhile;
 * a failed one is never retried into a success, spill_durable_fail: the segment
 * is then closed without one and spilling goes on); open the next. 1:
 * ready, 0: not now, -errno: opening failed (logged once, backoff set). */
static int segment_ready(struct spill_stream *s, uint64_t now_ns)
{
	int r;

	if (s->seg.fd_seg >= 0 && s->submitted == s->seg.base + s->conf.segment_bytes) {
		if (s->op_count || s->sync_inflight)
			return 0; /* its CQEs name this segment's fixed files */
		if (!s->durable_err && s->durable < s->spilled) {
			spill_sync_submit(s);
			return 0;
		}
		spill_seg_close(s, false);
		s->rolls++;
	}
	if (s->seg.fd_seg >= 0)
		return 1;
	r = seg_fault_check();
	if (!r)
		r = spill_seg_activate(s, s->submitted);
	if (!r)
		return 1;
	if (!s->err)
		s->m.write_errors++;
	if (!s->err && !s->backoff_ns)
		spill_log(LOG_ERROR, s->name, "opening segment for %llu: %s",
			  (unsigned long long)s->submitted, strerror(-r));
	s->err = r;
	spwd_set_spill_error(s->t, r);
	s->backoff_ns = s->backoff_ns ? s->backoff_ns : 50000000ull;
	s->retry_ns = now_ns + s->backoff_ns;
	return r;
}

int spill_stream_pump(struct spill_stream *s, uint64_t now_ns, bool flush_now)
{
	int work = 0, r;

	spill_ops_advance(s);
	if (s->err && !error_settled(s, now_ns))
		return 0;
	if (s->conf.no_spill)
		return pump_no_spill(s, now_ns);
	while (s->op_count < SPILL_MAX_OPS) {
		struct spill_op *op;

		r = segment_ready(s, now_ns);
		if (r < 0)
			return work;
		if (r == 0)
			break;
		op = spill_op_at(s, s->op_count);
		op->s = s;
		op->entry0 = s->seg.sub_entries;
		if (op_build(s, op, now_ns) <= 0)
			break;
		r = seg_fault_check();
		if (!r)
			r = op_submit(s, op);
		if (r) {
			op->pending = 0;
			op->res = r;
		}
		s->op_count++;
		s->submitted = op->to;
		s->seg.sub_entries += (uint64_t)op->nent;
		seen(s, op->records - s->seg.sub_records, op->max_ts);
		s->seg.sub_records = op->records;
		s->seg.sub_max_ts = op->max_ts;
		work++;
		if (r)
			break;
	}
	if (flush_now || s->spilled - s->durable >= s->conf.flush_bytes ||
	    (s->spilled > s->durable && now_ns - s->last_sync_ns >= s->conf.flush_ms * 1000000ull))
		spill_sync_submit(s);
	reclaim(s);
	return work;
}
