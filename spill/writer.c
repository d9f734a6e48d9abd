/* SPDX-License-Identifier: MIT */
/*
 * writer.c - spill a topic's ring to segment files with io_uring.
 *
 * Invariants (W1-W6; tests cite them):
 *  W1 Bytes are written straight from the ring mapping (a registered buffer
 *     when the kernel allows), segment fds are fixed files when it allows.
 *  W2 An op covers a committed run [from, to) of at most SPILL_OP_BYTES that
 *     never crosses the end of the ring (nor so of a segment). It is a linked
 *     pair: the data write, then the write of its index entries. Up to
 *     SPILL_MAX_OPS ops are in flight per topic; they complete in any order.
 *  W3 `spilled` advances over the completed prefix of ops only, and only
 *     after both the data and the index entries are in the files (page
 *     cache): a kill -9 of the daemon loses nothing the ring has reclaimed.
 *  W4 The ring is reclaimed only below `spilled` (I1 of ring_layout.h).
 *  W5 On an I/O error the stream stops submitting, waits for every op in
 *     flight, rewinds to `spilled` and retries with backoff: nothing is
 *     dropped, producers feel back-pressure when the ring fills.
 *  W6 `durable` = the `spilled` value captured when a sync round was
 *     submitted, set when the whole round completed: fdatasync of the
 *     segment and of its index, then (linked, so only after both succeed)
 *     the checkpoint <dir>/durable written with that value and synced.
 *     So the checkpoint on disk is never behind an acknowledged durable,
 *     and recovery (which never cuts below it) never drops such a record.
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

static void default_log(int level, const char *topic, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	va_list ap;

	if (level > LOG_INFO)
		return;
	fprintf(stderr, "spillway: %s: %s: ", names[level], topic ? topic : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void (*spill_log)(int level, const char *topic, const char *fmt, ...) = default_log;

#define GIB (1ull << 30)

int spill_writer_init(struct spill_writer *w, unsigned depth, unsigned max_streams)
{
	struct io_uring_params p;
	unsigned need = max_streams * (2 * SPILL_MAX_OPS + 3) + 16, cq = 1;
	int r;

	memset(w, 0, sizeof(*w));
	while (cq < need || cq < 2 * depth)
		cq <<= 1;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	r = io_uring_queue_init_params(depth, &w->ring, &p);
	if (r)
		return r;
	w->cq_entries = p.cq_entries;
	w->nodrop = p.features & IORING_FEAT_NODROP;
	if (w->cq_entries < need) {
		io_uring_queue_exit(&w->ring);
		return -ENOMEM; /* the kernel clamped the CQ below what we need */
	}
	w->fixed_files = io_uring_register_files_sparse(&w->ring, SPILL_FILE_SLOTS) == 0;
	w->fixed_bufs = io_uring_register_buffers_sparse(&w->ring, SPILL_BUF_SLOTS) == 0;
	return 0;
}

void spill_writer_exit(struct spill_writer *w)
{
	io_uring_queue_exit(&w->ring);
}

static int slot_get(uint8_t *used, int n, int count)
{
	for (int i = 0; i + count <= n; i++) {
		int k = 0;

		while (k < count && !used[i + k])
			k++;
		if (k == count) {
			memset(used + i, 1, (size_t)count);
			return i;
		}
		i += k;
	}
	return -1;
}

static void files_set(struct spill_writer *w, struct spill_seg *g)
{
	int fds[2] = { g->fd_seg, g->fd_idx };

	g->slot_seg = g->slot_idx = -1;
	if (!w->fixed_files)
		return;
	int slot = slot_get(w->file_used, SPILL_FILE_SLOTS, 2);

	if (slot < 0)
		return;
	if (io_uring_register_files_update(&w->ring, (unsigned)slot, fds, 2) != 2) {
		memset(w->file_used + slot, 0, 2);
		return;
	}
	g->slot_seg = slot;
	g->slot_idx = slot + 1;
}

static void files_clear(struct spill_writer *w, struct spill_seg *g)
{
	int fds[2] = { -1, -1 };

	if (g->slot_seg >= 0) {
		io_uring_register_files_update(&w->ring, (unsigned)g->slot_seg, fds, 2);
		memset(w->file_used + g->slot_seg, 0, 2);
	}
	g->slot_seg = g->slot_idx = -1;
}

/* Move durable to target outside the io_uring round (attach, close): the
 * checkpoint recovery never cuts below is written and synced first (W6). */
static int durable_advance_sync(struct spill_stream *s, uint64_t target)
{
	int r = 0;

	if (s->durable_err || target <= s->durable)
		return 0;
	if (s->ckpt_fd >= 0 && target > s->ckpt_written) {
		r = seg_ckpt_write(s->ckpt_fd, target);
		if (!r)
			r = seg_fault_fsync();
		if (r)
			return r;
		s->ckpt_written = target;
	}
	s->durable = target;
	spwd_set_counter(s->t, SPWD_DURABLE, (int64_t)s->durable);
	return 0;
}

/* An fdatasync failed. The kernel may already have dropped the dirty pages
 * it could not write, and a later fdatasync that succeeds says nothing about
 * them (the PostgreSQL "fsyncgate" lesson): durable never moves again for
 * this topic. Waiters for SPW_ACK_DURABLE get the error; spilling goes on
 * (spilled means written); stat and the log say what to do. */
bool spill_durability_failed;

static void durable_fail_what(struct spill_stream *s, const char *what, int err)
{
	spill_durability_failed = true;
	if (s->durable_err)
		return;
	s->durable_err = err;
	spill_log(LOG_ERROR, s->name,
		  "%s failed: %s; durable stays at %llu for good (bytes after it were "
		  "written but may not be on disk: they are never acknowledged durable); "
		  "check the disk, then restart spillwayd",
		  what, strerror(-err), (unsigned long long)s->durable);
	spwd_set_durable_error(s->t, err);
}

static void durable_fail(struct spill_stream *s, int err)
{
	durable_fail_what(s, "fdatasync", err);
}

/* Close the active segment; with sync, only once fdatasync of both files
 * succeeded (else -errno and the segment stays open: `durable` must never
 * cover bytes that did not reach the disk, W6). */
static int seg_close(struct spill_stream *s, bool sync)
{
	struct spill_seg *g = &s->seg;

	if (g->fd_seg < 0)
		return 0;
	if (sync) {
		int r = seg_fault_fsync();

		if (!r && (fdatasync(g->fd_seg) || fdatasync(g->fd_idx)))
			r = -errno;
		if (r) {
			durable_fail(s, r);
			return r;
		}
	}
	files_clear(s->w, g);
	close(g->fd_seg);
	close(g->fd_idx);
	g->fd_seg = g->fd_idx = -1;
	return 0;
}

/* Open the segment holding `pos` (preallocated); -errno on failure. */
static int seg_activate(struct spill_stream *s, uint64_t pos)
{
	struct spill_seg *g = &s->seg;
	uint64_t base = pos - pos % s->conf.segment_bytes, entries;
	struct seg_idx_entry last;
	int r;

	r = seg_open(s->dir, base, pos, s->conf.ring_bytes, s->conf.segment_bytes, true, &g->fd_seg,
		     &g->fd_idx, &entries, &last);
	if (r) {
		g->fd_seg = g->fd_idx = -1;
		return r;
	}
	if (last.end != pos) {
		spill_log(LOG_ERROR, s->name,
			  "segment %020llu ends at %llu but the log continues at %llu",
			  (unsigned long long)base, (unsigned long long)last.end,
			  (unsigned long long)pos);
		close(g->fd_seg);
		close(g->fd_idx);
		g->fd_seg = g->fd_idx = -1;
		return -EBADMSG;
	}
	g->base = base;
	g->sub_entries = g->done_entries = entries;
	g->sub_records = g->done_records = last.records;
	g->sub_max_ts = g->done_max_ts = last.max_ts;
	files_set(s->w, g);
	return 0;
}

/* W1: register the ring mapping as fixed buffers, in <= 1 GiB iovecs (one
 * iovec over 1 GiB is refused with -EFAULT). Without a free slot the
 * stream writes from plain buffers. */
static void register_ring(struct spill_writer *w, struct spill_stream *s)
{
	struct spw_topic *t = s->t;
	int n = (int)((t->ring_bytes + GIB - 1) / GIB);
	int slot = slot_get(w->buf_used, SPILL_BUF_SLOTS, n);
	struct iovec iov[64];

	if (slot < 0 || n > 64)
		return;
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = t->data + (uint64_t)i * GIB;
		iov[i].iov_len = t->ring_bytes - (uint64_t)i * GIB < GIB
					 ? t->ring_bytes - (uint64_t)i * GIB
					 : GIB;
	}
	if (io_uring_register_buffers_update_tag(&w->ring, (unsigned)slot, iov, NULL,
						 (unsigned)n) == n) {
		s->buf_slot = slot;
		s->nbufs = n;
	} else {
		memset(w->buf_used + slot, 0, (size_t)n);
	}
}

/* What recovery kept beyond durable (a previous run wrote it, maybe in
 * several segments closed without a sync) is synced here, every segment
 * of it, before durable may move past it (W6). */
static void sync_recovered(struct spill_stream *s, uint64_t start)
{
	uint64_t b = s->durable - s->durable % s->conf.segment_bytes;
	int r = 0;

	for (; !r && b < start; b += s->conf.segment_bytes) {
		char sp[PATH_MAX], ip[PATH_MAX];
		int sf, xf;

		if (seg_file_path(sp, sizeof(sp), s->dir, b, "seg") ||
		    seg_file_path(ip, sizeof(ip), s->dir, b, "idx"))
			break;
		sf = seg_open_file(sp, O_RDONLY, 0, true);
		xf = seg_open_file(ip, O_RDONLY, 0, true);
		if (sf >= 0 && xf >= 0 && (fdatasync(sf) || fdatasync(xf)))
			r = -errno;
		else if ((sf < 0 && sf != -ENOENT) || (xf < 0 && xf != -ENOENT))
			r = sf < 0 ? sf : xf;
		if (sf >= 0)
			close(sf);
		if (xf >= 0)
			close(xf);
	}
	if (!r)
		r = seg_fault_fsync();
	if (!r)
		r = durable_advance_sync(s, start);
	if (r)
		durable_fail(s, r);
}

int spill_stream_open(struct spill_writer *w, struct spw_topic *t, const char *topic_dir,
		      const struct topic_conf *conf, uint64_t start, struct spill_stream **out)
{
	struct spill_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->w = w;
	s->t = t;
	snprintf(s->name, sizeof(s->name), "%s", spw_topic_name(t));
	snprintf(s->dir, sizeof(s->dir), "%s", topic_dir);
	s->conf = *conf;
	s->conf.ring_bytes = t->ring_bytes;
	s->conf.segment_bytes = t->segment_bytes;
	s->submitted = s->spilled = s->durable = start;
	s->seg.fd_seg = s->seg.fd_idx = -1;
	s->seg.slot_seg = s->seg.slot_idx = -1;
	s->buf_slot = -1;
	s->stuck_pos = -1;
	s->last_sync_ns = ring_monotonic_ns();
	s->ckpt_fd = -1;
	if (!conf->no_spill) {
		int fd = seg_ckpt_open(topic_dir);

		s->ckpt_fd = fd < 0 ? -1 : fd;
		s->ckpt_open_err = fd < 0 ? fd : 0;
	}
	if (w->fixed_bufs && !conf->no_spill)
		register_ring(w, s);
	/* A new daemon starts from what recovery verified: an fdatasync
	 * failure of a previous run is cleared (W6). */
	spwd_set_durable_error(t, 0);
	/* Acquire: the published counters, to continue from (I1). */
	s->durable = atomic_load_explicit(&t->hdr->durable, memory_order_acquire);
	if (s->durable > start)
		s->durable = start;
	if (!conf->no_spill && s->ckpt_fd < 0) {
		/* Without its checkpoint recovery could not tell durable bytes
		 * from a torn tail: nothing more is acknowledged durable. */
		char what[PATH_MAX + 64];

		snprintf(what, sizeof(what), "opening the checkpoint %s/%s", topic_dir,
			 SEG_CKPT_NAME);
		durable_fail_what(s, what, s->ckpt_open_err);
	}
	if (!conf->no_spill && s->durable < start)
		sync_recovered(s, start);
	/* Acquire: pairs with set_counter's store; only moved forward (I1). */
	if (start > atomic_load_explicit(&t->hdr->spilled, memory_order_acquire))
		spwd_set_counter(t, SPWD_SPILLED, (int64_t)start);
	*out = s;
	return 0;
}

static struct spill_op *op_at(struct spill_stream *s, unsigned i)
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

/* How long a record must stay uncommitted before we ask the kernel whether
 * its producer lives, and how often we ask again: a dead producer's claim
 * is settled within about this (plus one loop, <= 2 ms) of its death. */
#define STALL_CHECK_NS 5000000ull

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
			spill_log(LOG_ERROR, s->name, "scan at %llu: %s", (unsigned long long)pos,
				  strerror((int)-n));
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

static void prep_fd(struct io_uring_sqe *sqe, int slot)
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
	/* A fixed-buffer write must stay inside one registered iovec (<= 1 GiB);
	 * the rare op that crosses one is a plain write. */
	if (s->buf_slot >= 0 && off / GIB == (off + len - 1) / GIB)
		io_uring_prep_write_fixed(sd, fd_seg, s->t->data + off, (unsigned)len,
					  op->from - g->base, s->buf_slot + (int)(off / GIB));
	else
		io_uring_prep_write(sd, fd_seg, s->t->data + off, (unsigned)len, op->from - g->base);
	prep_fd(sd, g->slot_seg);
	sd->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data(sd, op);
	io_uring_prep_write(si, fd_idx, op->ent, (unsigned)op->nent * SEG_IDX_ENTRY_BYTES,
			    SEG_IDX_HDR_BYTES + op->entry0 * SEG_IDX_ENTRY_BYTES);
	prep_fd(si, g->slot_idx);
	io_uring_sqe_set_data(si, (void *)((uintptr_t)op | 1));
	op->pending = 2;
	op->res = 0;
	return 0;
}

/* Completed prefix of ops -> spilled (W3), errors -> rewind state (W5). */
static void ops_advance(struct spill_stream *s)
{
	while (s->op_count) {
		struct spill_op *op = op_at(s, 0);

		if (op->pending)
			return;
		if (op->res < 0) {
			if (!s->err && !s->backoff_ns)
				spill_log(LOG_ERROR, s->name,
					  "writing segment %020llu at %llu: %s; keeping the data "
					  "in the ring and retrying",
					  (unsigned long long)s->seg.base,
					  (unsigned long long)op->from, strerror(-op->res));
			s->err = op->res;
			return;
		}
		s->spilled = op->to;
		s->seg.done_entries = op->entry0 + (uint64_t)op->nent;
		s->seg.done_records = op->records;
		s->seg.done_max_ts = op->max_ts;
		s->op_head = (s->op_head + 1) % SPILL_MAX_OPS;
		s->op_count--;
		spwd_set_counter(s->t, SPWD_SPILLED, (int64_t)s->spilled);
		if (s->backoff_ns) {
			spill_log(LOG_INFO, s->name, "writes succeed again: spilling resumed");
			s->backoff_ns = 0;
		}
	}
}

int spill_writer_submit(struct spill_writer *w)
{
	static unsigned flip;
	int r = (seg_fault_submit() && (flip++ & 1)) ? -EBUSY : io_uring_submit(&w->ring);

	if (r >= 0)
		return 0;
	if (r == -EBUSY || r == -EAGAIN || r == -EINTR) {
		/* The SQEs stay queued; the next submit (every loop) sends them. */
		if (w->submit_busy++ == 0)
			spill_log(LOG_INFO, NULL, "io_uring_submit: %s: the entries stay queued and go "
				  "out at the next loop (said once)", strerror(-r));
		return 0;
	}
	if (!w->submit_err)
		spill_log(LOG_ERROR, NULL, "io_uring_submit: %s", strerror(-r));
	w->submit_err = r;
	return r;
}

int spill_writer_reap(struct spill_writer *w, int64_t wait_ns)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int r;

	spill_writer_submit(w);
	if (wait_ns > 0) {
		struct __kernel_timespec ts = { .tv_sec = wait_ns / 1000000000,
						.tv_nsec = wait_ns % 1000000000 };

		r = io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts);
		if (r && r != -ETIME && r != -EINTR)
			return r;
	}
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);

		n++;
		if (cqe->user_data == LIBURING_UDATA_TIMEOUT)
			continue; /* liburing's own timeout on kernels without EXT_ARG */
		if (ud & 2) { /* a sync round (W6): 3 = its checkpoint write */
			struct spill_stream *s = (struct spill_stream *)(ud & ~(uintptr_t)3);
			int res = cqe->res;

			if ((ud & 1) && res >= 0 && res != (int)SEG_CKPT_BYTES)
				res = -EIO;
			else if (!(ud & 1) && res >= 0)
				res = seg_fault_fsync();
			/* The first real error, not the -ECANCELED of the linked
			 * requests it cut short. */
			if (res < 0 && (!s->sync_res || s->sync_res == -ECANCELED))
				s->sync_res = res;
			if (--s->sync_pending == 0) {
				s->sync_inflight = false;
				if (s->sync_res) {
					durable_fail(s, s->sync_res);
				} else if (!s->durable_err && s->sync_target > s->durable) {
					if (s->ckpt_fd >= 0)
						s->ckpt_written = s->sync_target;
					s->durable = s->sync_target;
					spwd_set_counter(s->t, SPWD_DURABLE, (int64_t)s->durable);
				}
			}
			continue;
		}
		struct spill_op *op = (struct spill_op *)(ud & ~(uintptr_t)3);
		int expect = (ud & 1) ? op->nent * (int)SEG_IDX_ENTRY_BYTES : (int)(op->to - op->from);
		int res = cqe->res >= 0 && cqe->res != expect ? -EIO : cqe->res;

		if (res < 0 && (op->res == 0 || op->res == -ECANCELED))
			op->res = res;
		op->pending--;
	}
	io_uring_cq_advance(&w->ring, n);
	return (int)n;
}

static void sync_submit(struct spill_stream *s)
{
	struct spill_writer *w = &s->w[0];
	struct spill_seg *g = &s->seg;
	struct io_uring_sqe *a, *b;
	unsigned need = s->ckpt_fd >= 0 ? 4 : 2;

	if (g->fd_seg < 0 || s->sync_inflight || s->spilled <= s->durable || s->durable_err)
		return;
	if (io_uring_sq_space_left(&w->ring) < need)
		spill_writer_submit(w);
	if (io_uring_sq_space_left(&w->ring) < need)
		return; /* retried at the next pump */
	a = io_uring_get_sqe(&w->ring);
	b = io_uring_get_sqe(&w->ring);
	io_uring_prep_fsync(a, g->slot_seg >= 0 ? g->slot_seg : g->fd_seg, IORING_FSYNC_DATASYNC);
	prep_fd(a, g->slot_seg);
	io_uring_prep_fsync(b, g->slot_idx >= 0 ? g->slot_idx : g->fd_idx, IORING_FSYNC_DATASYNC);
	prep_fd(b, g->slot_idx);
	io_uring_sqe_set_data(a, (void *)((uintptr_t)s | 2));
	io_uring_sqe_set_data(b, (void *)((uintptr_t)s | 2));
	s->sync_target = s->spilled;
	if (need == 4) {
		/* Linked: the checkpoint is written, then synced, only after
		 * both data syncs succeeded; a failure cancels the rest (W6). */
		struct io_uring_sqe *c = io_uring_get_sqe(&w->ring), *d = io_uring_get_sqe(&w->ring);

		seg_ckpt_encode(s->ckpt_buf, s->sync_target);
		io_uring_prep_write(c, s->ckpt_fd, s->ckpt_buf, SEG_CKPT_BYTES, 0);
		io_uring_prep_fsync(d, s->ckpt_fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(c, (void *)((uintptr_t)s | 3));
		io_uring_sqe_set_data(d, (void *)((uintptr_t)s | 2));
		a->flags |= IOSQE_IO_LINK;
		b->flags |= IOSQE_IO_LINK;
		c->flags |= IOSQE_IO_LINK;
	}
	s->sync_inflight = true;
	s->sync_pending = (int)need;
	s->sync_res = 0;
	s->last_sync_ns = ring_monotonic_ns();
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
		if (op_at(s, i)->pending)
			return false;
	if (s->op_count) {
		s->op_count = 0;
		s->submitted = s->spilled;
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
 * a failed one is never retried into a success, durable_fail: the segment
 * is then closed without one and spilling goes on); open the next. 1:
 * ready, 0: not now, -errno: opening failed (logged once, backoff set). */
static int segment_ready(struct spill_stream *s, uint64_t now_ns)
{
	int r;

	if (s->seg.fd_seg >= 0 && s->submitted == s->seg.base + s->conf.segment_bytes) {
		if (s->op_count || s->sync_inflight)
			return 0; /* its CQEs name this segment's fixed files */
		if (!s->durable_err && s->durable < s->spilled) {
			sync_submit(s);
			return 0;
		}
		seg_close(s, false);
		s->rolls++;
	}
	if (s->seg.fd_seg >= 0)
		return 1;
	r = seg_fault_check();
	if (!r)
		r = seg_activate(s, s->submitted);
	if (!r)
		return 1;
	if (!s->err && !s->backoff_ns)
		spill_log(LOG_ERROR, s->name, "opening segment for %llu: %s",
			  (unsigned long long)s->submitted, strerror(-r));
	s->err = r;
	s->backoff_ns = s->backoff_ns ? s->backoff_ns : 50000000ull;
	s->retry_ns = now_ns + s->backoff_ns;
	return r;
}

int spill_stream_pump(struct spill_stream *s, uint64_t now_ns, bool flush_now)
{
	int work = 0, r;

	ops_advance(s);
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
		op = op_at(s, s->op_count);
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
		s->seg.sub_records = op->records;
		s->seg.sub_max_ts = op->max_ts;
		work++;
		if (r)
			break;
	}
	if (flush_now || s->spilled - s->durable >= s->conf.flush_bytes ||
	    (s->spilled > s->durable && now_ns - s->last_sync_ns >= s->conf.flush_ms * 1000000ull))
		sync_submit(s);
	reclaim(s);
	return work;
}

bool spill_stream_drained(struct spill_stream *s)
{
	struct spwd_scan_result sc;
	int64_t n = spwd_scan(s->t, (int64_t)s->submitted, 1, &sc);

	return s->op_count == 0 && !s->sync_inflight && n <= 0 &&
	       (s->conf.no_spill || s->durable == s->spilled || s->durable_err);
}

void spill_stream_close(struct spill_stream *s)
{
	if (!s)
		return;
	while (s->op_count || s->sync_inflight) {
		spill_writer_reap(s->w, 10000000);
		ops_advance(s);
		if (s->err) {
			bool busy = false;

			busy = s->sync_inflight; /* its CQEs point at s */
			for (unsigned i = 0; i < s->op_count; i++)
				busy |= op_at(s, i)->pending != 0;
			if (!busy)
				break;
		}
	}
	if (s->seg.fd_seg >= 0) {
		bool synced = !s->durable_err && seg_close(s, true) == 0;

		if (!synced)
			seg_close(s, false); /* durable stays where the disk is */
		/* The last word on how far the log is durable, made durable
		 * before it is acknowledged (W6). */
		if (synced && !s->err && !s->durable_err) {
			int r = durable_advance_sync(s, s->spilled);

			if (r)
				durable_fail(s, r);
		}
	}
	if (s->ckpt_fd >= 0)
		close(s->ckpt_fd);
	if (s->buf_slot >= 0) {
		struct iovec iov[64] = { { 0 } };

		io_uring_register_buffers_update_tag(&s->w->ring, (unsigned)s->buf_slot, iov, NULL,
						     (unsigned)s->nbufs);
		memset(s->w->buf_used + s->buf_slot, 0, (size_t)s->nbufs);
	}
	free(s);
}
