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
 *  W7 The completion queue holds every completion that can be in flight
 *     (IORING_SETUP_CQSIZE for the most topics, ops and sync rounds), so
 *     none is dropped whether or not the kernel has IORING_FEAT_NODROP, and
 *     every io_uring_submit result is checked (-EBUSY/-EAGAIN: the entries
 *     stay queued for the next loop).
 * The code: writer.c (the io_uring, streams, completions: W1, W7),
 * writer_ops.c (W2-W5), writer_sync.c (W6).
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

/* An fdatasync failed. The kernel may already have dropped the dirty pages
 * it could not write, and a later fdatasync that succeeds says nothing about
 * them (the PostgreSQL "fsyncgate" lesson): durable never moves again for
 * this topic. Waiters for SPW_ACK_DURABLE get the error; spilling goes on
 * (spilled means written); stat and the log say what to do. */
bool spill_durability_failed;

/* Close the active segment; with sync, only once fdatasync of both files
 * succeeded (else -errno and the segment stays open: `durable` must never
 * cover bytes that did not reach the disk, W6). */
int spill_seg_close(struct spill_stream *s, bool sync)
{
	struct spill_seg *g = &s->seg;

	if (g->fd_seg < 0)
		return 0;
	if (sync) {
		int r = seg_fault_fsync();

		if (!r && (fdatasync(g->fd_seg) || fdatasync(g->fd_idx)))
			r = -errno;
		if (r) {
			spill_durable_fail(s, r);
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
int spill_seg_activate(struct spill_stream *s, uint64_t pos)
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
	int n = (int)((t->ring_bytes + SPILL_GIB - 1) / SPILL_GIB);
	int slot = slot_get(w->buf_used, SPILL_BUF_SLOTS, n);
	struct iovec iov[64];

	if (slot < 0 || n > 64)
		return;
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = t->data + (uint64_t)i * SPILL_GIB;
		iov[i].iov_len = t->ring_bytes - (uint64_t)i * SPILL_GIB < SPILL_GIB
					 ? t->ring_bytes - (uint64_t)i * SPILL_GIB
					 : SPILL_GIB;
	}
	if (io_uring_register_buffers_update_tag(&w->ring, (unsigned)slot, iov, NULL,
						 (unsigned)n) == n) {
		s->buf_slot = slot;
		s->nbufs = n;
	} else {
		memset(w->buf_used + slot, 0, (size_t)n);
	}
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
	spwd_set_spill_error(t, 0); /* this daemon has not failed a write yet */
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
		spill_durable_fail_what(s, what, s->ckpt_open_err);
	}
	if (!conf->no_spill && s->durable < start)
		spill_sync_recovered(s, start);
	/* Acquire: pairs with set_counter's store; only moved forward (I1). */
	if (start > atomic_load_explicit(&t->hdr->spilled, memory_order_acquire))
		spwd_set_counter(t, SPWD_SPILLED, (int64_t)start);
	*out = s;
	return 0;
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
		if (w->inflight)
			w->inflight--;
		if (ud & 2) { /* a sync round (W6): 3 = its checkpoint write */
			spill_sync_complete((struct spill_stream *)(ud & ~(uintptr_t)3), cqe->res, ud & 1);
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
		spill_ops_advance(s);
		if (s->err) {
			bool busy = false;

			busy = s->sync_inflight; /* its CQEs point at s */
			for (unsigned i = 0; i < s->op_count; i++)
				busy |= spill_op_at(s, i)->pending != 0;
			if (!busy)
				break;
		}
	}
	if (s->seg.fd_seg >= 0) {
		bool synced = !s->durable_err && spill_seg_close(s, true) == 0;

		if (!synced)
			spill_seg_close(s, false); /* durable stays where the disk is */
		/* The last word on how far the log is durable, made durable
		 * before it is acknowledged (W6). */
		if (synced && !s->err && !s->durable_err) {
			int r = spill_durable_advance(s, s->spilled);

			if (r)
				spill_durable_fail(s, r);
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
