/* SPDX-License-Identifier: MIT */
/*
 * writer_sync.c - how far the log is durable (spill/writer.c W6): sync
 * rounds through io_uring (segment, index, then the linked checkpoint),
 * their completions, the syncs outside a round (attach, close), and a
 * failed fdatasync that freezes durable for good.
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

/* Move durable to target outside the io_uring round (attach, close): the
 * checkpoint recovery never cuts below is written and synced first (W6). */
int spill_durable_advance(struct spill_stream *s, uint64_t target)
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
	if (target == s->spilled)
		s->m.records_durable = s->m.records_spilled;
	spwd_set_counter(s->t, SPWD_DURABLE, (int64_t)s->durable);
	return 0;
}

void spill_durable_fail_what(struct spill_stream *s, const char *what, int err)
{
	s->m.sync_errors++;
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

void spill_durable_fail(struct spill_stream *s, int err)
{
	spill_durable_fail_what(s, "fdatasync", err);
}

/* What recovery kept beyond durable (a previous run wrote it, maybe in
 * several segments closed without a sync) is synced here, every segment
 * of it, before durable may move past it (W6). */
void spill_sync_recovered(struct spill_stream *s, uint64_t start)
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
		r = spill_durable_advance(s, start);
	if (r)
		spill_durable_fail(s, r);
}

void spill_sync_submit(struct spill_stream *s)
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
	w->inflight += need; /* each completes once, submitted or cancelled */
	io_uring_prep_fsync(a, g->slot_seg >= 0 ? g->slot_seg : g->fd_seg, IORING_FSYNC_DATASYNC);
	spill_prep_fd(a, g->slot_seg);
	io_uring_prep_fsync(b, g->slot_idx >= 0 ? g->slot_idx : g->fd_idx, IORING_FSYNC_DATASYNC);
	spill_prep_fd(b, g->slot_idx);
	io_uring_sqe_set_data(a, (void *)((uintptr_t)s | 2));
	io_uring_sqe_set_data(b, (void *)((uintptr_t)s | 2));
	s->sync_target = s->spilled;
	s->sync_records = s->m.records_spilled;
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

/* One completion of a sync round (W6); ckpt_write: the checkpoint's write
 * (else an fdatasync). The round's last one moves durable, or fails it. */
void spill_sync_complete(struct spill_stream *s, int res, bool ckpt_write)
{
	if (ckpt_write && res >= 0 && res != (int)SEG_CKPT_BYTES)
		res = -EIO;
	else if (!ckpt_write && res >= 0)
		res = seg_fault_fsync();
	/* The first real error, not the -ECANCELED of the linked requests it
	 * cut short. */
	if (res < 0 && (!s->sync_res || s->sync_res == -ECANCELED))
		s->sync_res = res;
	if (--s->sync_pending)
		return;
	s->sync_inflight = false;
	if (s->sync_res) {
		spill_durable_fail(s, s->sync_res);
	} else if (!s->durable_err && s->sync_target > s->durable) {
		if (s->ckpt_fd >= 0)
			s->ckpt_written = s->sync_target;
		s->durable = s->sync_target;
		s->m.records_durable = s->sync_records;
		spwd_set_counter(s->t, SPWD_DURABLE, (int64_t)s->durable);
	}
}
