/* SPDX-License-Identifier: MIT */
/*
 * reader_disk.c - the reader's disk side (spill/reader.c R1, R3-R5): which
 * segment and index entry hold a position, reading a chunk of entries with
 * pread, their CRCs, missing segments and torn indexes, record boundaries.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rd_seg_drop(struct rd_seg *g)
{
	if (g->fd >= 0)
		close(g->fd);
	free(g->ent);
	memset(g, 0, sizeof(*g));
	g->fd = -1;
}

/* Open the segment holding position `pos`, with its index. */
int rd_seg_load(struct spw_reader *r, uint64_t pos)
{
	struct rd_seg *g = &r->seg;
	uint64_t base = pos - pos % r->segment_bytes;
	char ip[PATH_MAX];
	int n;

	if (g->fd >= 0 && g->base == base)
		return 0;
	rd_seg_drop(g);
	if (seg_file_path(g->path, sizeof(g->path), r->dir, base, "seg") ||
	    seg_file_path(ip, sizeof(ip), r->dir, base, "idx"))
		return -ENAMETOOLONG;
	g->fd = seg_open_file(g->path, O_RDONLY, 0, false);
	if (g->fd < 0)
		return g->fd;
	r->seg_opens++;
	{
		struct stat ist;

		/* The daemon creates the .seg, then the .idx, then writes its
		 * header: a segment being born (locate() tells it from a damaged
		 * one, missing()). */
		if (stat(ip, &ist) != 0 || ist.st_size < (off_t)SEG_IDX_HDR_BYTES) {
			rd_seg_drop(g);
			return -EAGAIN;
		}
	}
	posix_fadvise(g->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	n = seg_idx_load(ip, &g->hdr, &g->ent);
	if (n < 0 || g->hdr.base != base || g->hdr.ring_bytes != r->ring_bytes ||
	    g->hdr.segment_bytes != r->segment_bytes) {
		rd_set_err(r, ip, pos);
		rd_seg_drop(g);
		return n < 0 && n != -EBADMSG ? n : -EBADMSG;
	}
	g->base = base;
	g->nent = n;
	return 0;
}

/* Re-read the index of the segment being written. */
static int seg_refresh(struct spw_reader *r)
{
	struct rd_seg *g = &r->seg;
	struct seg_idx_entry *ent;
	struct seg_idx_hdr h;
	char ip[PATH_MAX];
	int n;

	if (seg_file_path(ip, sizeof(ip), r->dir, g->base, "idx"))
		return -ENAMETOOLONG;
	n = seg_idx_load(ip, &h, &ent);
	if (n < 0)
		return n;
	free(g->ent);
	g->ent = ent;
	g->nent = n;
	return 0;
}

void (*rd_test_missing_hook)(struct spw_reader *r, uint64_t pos, int err)
	__attribute__((visibility("hidden")));

/* The segment at pos cannot be read: its .seg is missing (err -ENOENT) or
 * its .idx is missing or shorter than its header (err -EBADMSG). Below the
 * earliest segment kept: -ERANGE (retention moved past). With a later
 * segment on disk, or below the durable checkpoint (principle 2: what was
 * acknowledged durable is on disk): err, a hole in the log, never taken for
 * its end (R5). Else 0: the end of the disk log for now (the last segment
 * may be being born: the daemon creates the .seg, then the .idx, then
 * writes its header). */
static int missing(struct spw_reader *r, uint64_t pos, int err)
{
	uint64_t base = pos - pos % r->segment_bytes, *bases, ckpt;
	char file[PATH_MAX];
	size_t n;
	bool durable, later = false;
	int64_t e;

	if (rd_test_missing_hook)
		rd_test_missing_hook(r, pos, err);
	/* The checkpoint first: one past pos was published after pos's bytes
	 * and index were synced, so they were there before we look. */
	durable = seg_ckpt_peek(r->dir, &ckpt) == 0 && ckpt > pos;
	e = rd_earliest(r->dir, r->t);
	if (e >= 0 && pos < (uint64_t)e) {
		rd_set_err(r, r->seg.path, pos);
		return -ERANGE;
	}
	if (seg_list(r->dir, &bases, &n) == 0) {
		later = n && bases[n - 1] > base;
		for (size_t i = 0; err == -ENOENT && i < n; i++)
			if (bases[i] == base)
				later = false; /* created since seg_load looked: try again */
	}
	free(bases);
	if (!later && !durable)
		return 0; /* the end of the disk log: nothing yet */
	/* A later segment or the checkpoint proves pos's segment was made
	 * whole before we listed: it may have been only since we loaded. */
	if (rd_seg_load(r, pos) == 0)
		return 0;
	if (err == -ENOENT || seg_file_path(file, sizeof(file), r->dir, base, "idx"))
		rd_set_err(r, r->seg.path, pos);
	else
		rd_set_err(r, file, pos);
	return err;
}

/* The index entry holding r->pos in the loaded segment, or g->nent. */
static int entry_at(const struct rd_seg *g, uint64_t pos)
{
	int i;

	for (i = 0; i < g->nent && g->ent[i].end <= pos; i++)
		;
	return i;
}

/* Position the reader's segment at the entry holding r->pos (R4): loads
 * segments, moves past complete ones, re-reads the index of the one being
 * written. Returns 1 and *at, 0 at the end of what the disk has, or
 * -errno (a torn index in the middle of the log: -EBADMSG). */
static int locate(struct spw_reader *r, int *at)
{
	struct rd_seg *g;
	uint64_t ckpt;
	bool durable;
	int i = 0, rc;

	for (;;) {
		rc = rd_seg_load(r, r->pos);
		if (rc == -EAGAIN)
			return missing(r, r->pos, -EBADMSG);
		if (rc == -ENOENT)
			return missing(r, r->pos, -ENOENT);
		if (rc)
			return rc;
		g = &r->seg;
		if (r->pos < g->hdr.first) {
			rd_set_err(r, g->path, r->pos);
			return -ERANGE;
		}
		if ((i = entry_at(g, r->pos)) < g->nent)
			break;
		if ((g->nent ? g->ent[g->nent - 1].end : g->hdr.first) == g->base + r->segment_bytes) {
			rd_seg_drop(g); /* complete: the next segment */
			continue;
		}
		/* The checkpoint before the refresh: what it says is durable
		 * was indexed before it moved, so the refresh must show it. */
		durable = seg_ckpt_peek(r->dir, &ckpt) == 0 && ckpt > r->pos;
		if ((rc = seg_refresh(r)))
			return rc;
		if ((i = entry_at(g, r->pos)) < g->nent)
			break;
		{
			uint64_t *bases;
			size_t nb;
			bool later = false;

			if (seg_list(r->dir, &bases, &nb) == 0)
				later = nb && bases[nb - 1] > g->base;
			free(bases);
			if (!later && !durable)
				return 0; /* the end of the log, for now */
		}
		/* A newer segment exists, or the checkpoint is past pos: this
		 * one must reach further, unless the daemon finished it since
		 * the refresh. */
		if ((rc = seg_refresh(r)))
			return rc;
		if (entry_at(g, r->pos) < g->nent ||
		    (g->nent && g->ent[g->nent - 1].end == g->base + r->segment_bytes))
			continue;
		rd_set_err(r, g->path, r->pos);
		return -EBADMSG; /* a torn index in the log (below the checkpoint) */
	}
	*at = i;
	return 1;
}

size_t rd_chunk_bytes = RD_CHUNK;

void rd_plan_at(const struct rd_seg *g, int i, struct rd_plan *p)
{
	int j;

	p->i = i;
	p->from = i ? g->ent[i - 1].end : g->hdr.first;
	p->to = g->ent[i].end;
	for (j = i + 1; j < g->nent && g->ent[j].end - p->from <= rd_chunk_bytes; j++)
		p->to = g->ent[j].end;
	p->j = j;
	/* Whole pages into a page-aligned buffer: the kernel's copy out of
	 * the page cache runs at about half speed when source and destination
	 * are not equally aligned. */
	p->afrom = p->from - ((p->from - g->base) & 4095);
	p->alen = (p->to - p->afrom + 4095) & ~4095ull;
}

int rd_crc_first_bad(const struct seg_idx_entry *ent, int n, const uint8_t *buf, uint64_t buf_from,
		     uint64_t from)
{
	uint64_t a = from;
	int k;

	for (k = 0; k < n; k++) {
		if (seg_crc32c(0, buf + (a - buf_from), ent[k].end - a) != ent[k].crc_data)
			break;
		a = ent[k].end;
	}
	return k;
}

int rd_buf_grow(uint8_t **buf, size_t *cap, size_t n)
{
	void *nb = NULL;

	if (n <= *cap)
		return 0;
	if (posix_memalign(&nb, 4096, n))
		return -ENOMEM;
	free(*buf);
	*buf = nb;
	*cap = n;
	return 0;
}

/* Entry k of chunk p (entries ent, from p.i) failed its CRC (R3). Later in
 * the chunk: the buffer ends before it (0). At r->pos: -EBADMSG, or skipped
 * with SPW_READER_SKIP_CORRUPT (2: fill again). */
static int bad_entry(struct spw_reader *r, const struct rd_plan *p, const struct seg_idx_entry *ent,
		     int k)
{
	uint64_t a = k ? ent[k - 1].end : p->from, b = ent[k].end;

	if (a > r->pos) {
		r->buf_to = a; /* good up to the bad entry */
		return 0;
	}
	rd_set_err(r, r->seg.path, a);
	if (!(r->o.flags & SPW_READER_SKIP_CORRUPT))
		return -EBADMSG;
	r->skipped += b - r->pos;
	r->pos = b;
	r->buf_from = r->buf_to = 0;
	return 2;
}

/* Load the index entries around r->pos into the buffer and verify them
 * (R3, R4), or take them from the read-ahead thread (R6). Returns 1 when
 * loaded, 0 at the end of what the disk has. */
int rd_fill(struct spw_reader *r)
{
	struct rd_seg *g = &r->seg;
	const struct seg_idx_entry *ent;
	const uint8_t *buf;
	struct rd_plan p;
	ssize_t got;
	int i = 0, bad, rc;
	bool took;

again:
	rc = locate(r, &i);
	if (rc <= 0)
		return rc;
	rd_plan_at(g, i, &p);
	took = rd_ahead_take(r, &p, &buf, &got, &bad, &ent);
	if (!took) {
		if ((rc = rd_buf_grow(&r->buf, &r->buf_cap, p.alen)))
			return rc;
		buf = r->buf;
		ent = g->ent + p.i;
		bad = p.j - p.i;
		got = pread(g->fd, r->buf, p.alen, (off_t)(p.afrom - g->base));
		if (got < 0)
			got = -errno;
		else if (got >= (ssize_t)(p.to - p.afrom) && !(r->o.flags & SPW_READER_NO_VERIFY))
			bad = rd_crc_first_bad(ent, p.j - p.i, r->buf, p.afrom, p.from);
	}
	if (got < 0) {
		rd_set_err(r, g->path, p.from);
		return (int)got;
	}
	if (got < (ssize_t)(p.to - p.afrom)) {
		/* The file ends inside the chunk (cut short under its index):
		 * the entries read whole are checked and delivered, the first
		 * cut one is bad as a CRC failure is (R3: an error there, or
		 * skipped with SPW_READER_SKIP_CORRUPT, entry by entry). */
		uint64_t have = p.afrom + (uint64_t)got;
		int whole = 0;

		while (whole < p.j - p.i && ent[whole].end <= have)
			whole++;
		bad = r->o.flags & SPW_READER_NO_VERIFY
			      ? whole
			      : rd_crc_first_bad(ent, whole, buf, p.afrom, p.from);
	}
	r->cur = buf;
	r->buf_from = p.afrom;
	r->buf_to = p.to;
	if (bad < p.j - p.i) {
		rc = bad_entry(r, &p, ent, bad);
		if (rc == 2)
			goto again; /* a corrupt range skipped */
		return rc ? rc : 1;
	}
	rd_ahead_next(r, &p, took);
	return 1;
}

/* Span of the record whose commit word is w at pos, 0 when w is not a
 * complete record that belongs there (ring_word_check, R3). */
static uint64_t disk_span(const struct spw_reader *r, uint64_t pos, uint64_t w)
{
	int64_t span = ring_word_check(w, pos, r->ring_bytes, r->max_record);

	return span > 0 ? (uint64_t)span : 0;
}

/* Is pos a record boundary (R1)? Walks the ring from its reclaim bound, or
 * the index entry holding pos on disk. 0, -EINVAL (inside a record), or
 * -errno. A scan that meets an uncommitted record before pos goes on over
 * the claims WON slots hold (ring_chain_lands); only a gap no WON slot
 * holds (a dead producer's, not settled yet) leaves pos taken on trust. */
int rd_check_boundary(struct spw_reader *r, uint64_t pos)
{
	struct spwd_scan_result sc;
	int64_t n;

	/* Acquire loads of reclaimed: pair with reclaim's seq_cst store; the
	 * scan re-validates what it reads (I5). */
	if (r->t && pos >= atomic_load_explicit(&r->t->hdr->reclaimed, memory_order_acquire)) {
		uint64_t q = atomic_load_explicit(&r->t->hdr->reclaimed, memory_order_acquire);

		while (q < pos) {
			n = spwd_scan(r->t, (int64_t)q, pos - q, &sc);
			if (n == -ESTALE) /* reclaimed meanwhile: it is on disk now */
				break;
			if (n < 0)
				return (int)n;
			if ((uint64_t)sc.end > pos)
				return -EINVAL;
			if (n == 0) { /* an open claim at sc.end: over it, if a WON slot holds it */
				int l = ring_chain_lands(r->t, (uint64_t)sc.end, pos);

				if (l != 0)
					return 0; /* landed, or cannot tell: as before */
				/* Reclaimed past pos meanwhile: on disk now (below). */
				if (pos >= atomic_load_explicit(&r->t->hdr->reclaimed,
								memory_order_acquire))
					return -EINVAL;
				break; /* (q < pos: to the disk check) */
			}
			q = (uint64_t)sc.end;
		}
		if (q >= pos)
			return q == pos ? 0 : -EINVAL;
	}
	int rc = rd_seg_load(r, pos);
	struct rd_seg *g = &r->seg;
	int i;

	if (rc)
		return rc == -ENOENT ? 0 : rc; /* missing: poll reports it */
	for (i = 0; i < g->nent && g->ent[i].end <= pos; i++)
		;
	if (i == g->nent)
		return 0; /* past the index: the end of the log */
	uint64_t from = i ? g->ent[i - 1].end : g->hdr.first, q = from;

	while (q < pos) {
		uint64_t w;

		if (pread(g->fd, &w, 8, (off_t)(q - g->base)) != 8)
			return -EBADMSG;
		uint64_t span = disk_span(r, q, w);

		if (!span) {
			rd_set_err(r, g->path, q);
			return -EBADMSG;
		}
		q += span;
	}
	return q == pos ? 0 : -EINVAL;
}
