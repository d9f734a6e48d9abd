/* SPDX-License-Identifier: MIT */
/*
 * reader.c - one reader from disk to live (spillway.h "Readers").
 *
 * Invariants (R1-R5; tests cite them):
 *  R1 The reader's position is always a record boundary; it only moves past
 *     a record that was delivered, skipped (PADDING / ABORTED / before the
 *     start time) or, with SPW_READER_SKIP_CORRUPT, inside a bad range.
 *  R2 Live when position >= the ring's reclaim bound: the ring holds every
 *     byte from there (ring_layout.h I1). Live records are copied out of the
 *     ring and validated (I5) before the callback sees them, so a lap can
 *     neither tear a delivered record nor deliver it twice; on -ESTALE the
 *     position is the first record not delivered, and the reader continues
 *     from the segments at exactly that position.
 *  R3 On disk, bytes are delivered only from index-covered ranges whose
 *     CRC32C matched (unless SPW_READER_NO_VERIFY), and every header is
 *     bounds-checked against its range, the ring lap and max_record.
 *  R4 Segments are read with pread into the reader's buffer, a few index
 *     entries (~256 KiB, so the CRC and the walk find it in L2) at a time: on
 *     these VMs the first touch of each page of a fresh mmap costs ~5 us
 *     (shadow paging), which made mmap ~4x slower than pread (make bench).
 *  R5 A position below the oldest kept byte is -ERANGE; a segment missing
 *     while older and newer data exist is -ENOENT, never a silent skip.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RD_CHUNK (256u << 10) /* fits L2 with room: pread, CRC and walk stay hot */

struct rd_seg {
	uint64_t base;
	int fd;
	struct seg_idx_hdr hdr;
	struct seg_idx_entry *ent;
	int nent;
	char path[PATH_MAX];
};

struct spw_reader {
	char topic[SPW_NAME_MAX + 1];
	char shm_dir[PATH_MAX], data_dir[PATH_MAX], dir[PATH_MAX];
	struct spw_reader_opts o;
	uint64_t ring_bytes, segment_bytes, max_record;
	struct spw_topic *t;
	struct spw_consumer *c;
	bool live, done, time_skip;
	bool done_after; /* done after delivering the record (max_records) */
	uint64_t pos;
	struct rd_seg seg;
	uint8_t *buf;             /* page-aligned pread buffer (R4) */
	size_t buf_cap;
	uint8_t *stage;           /* a live record's copy (R2) */
	size_t stage_cap;
	uint64_t buf_from, buf_to; /* positions held and verified in buf */
	uint64_t delivered, skipped;
	char err_file[PATH_MAX];
	int64_t err_pos;
};

const char *spw_data_dir(const char *data_dir)
{
	static __thread char buf[PATH_MAX];
	const char *e;

	if (data_dir && *data_dir)
		return data_dir;
	e = getenv("SPILLWAY_DATA_DIR");
	if (e && *e)
		return e;
	if (geteuid() == 0)
		return "/var/lib/spillway";
	e = getenv("XDG_STATE_HOME");
	if (e && *e)
		snprintf(buf, sizeof(buf), "%s/spillway", e);
	else
		snprintf(buf, sizeof(buf), "%s/.local/state/spillway",
			 getenv("HOME") ? getenv("HOME") : "/tmp");
	return buf;
}

static void set_err(struct spw_reader *r, const char *file, uint64_t pos)
{
	snprintf(r->err_file, sizeof(r->err_file), "%s", file ? file : "");
	r->err_pos = (int64_t)pos;
}

static void seg_drop(struct rd_seg *g)
{
	if (g->fd >= 0)
		close(g->fd);
	free(g->ent);
	memset(g, 0, sizeof(*g));
	g->fd = -1;
}

/* The oldest position kept: the first segment's `first`, else the ring's
 * reclaim bound. */
static int64_t earliest(const char *dir, struct spw_topic *t)
{
	uint64_t *bases;
	size_t n;
	int64_t e = -ENOENT;

	if (seg_list(dir, &bases, &n) == 0 && n) {
		char p[PATH_MAX];
		struct seg_idx_hdr h;
		struct seg_idx_entry *ent;

		e = (int64_t)bases[0];
		if (!seg_file_path(p, sizeof(p), dir, bases[0], "idx") && seg_idx_load(p, &h, &ent) >= 0) {
			e = (int64_t)h.first;
			free(ent);
		}
	}
	free(bases);
	if (e < 0 && t)
		/* Acquire: pairs with reclaim's store (ring_layout.h I1). */
		e = (int64_t)atomic_load_explicit(&t->hdr->reclaimed, memory_order_acquire);
	return e;
}

int64_t spw_topic_earliest(const char *shm_dir, const char *data_dir, const char *topic)
{
	char dir[PATH_MAX];
	struct spw_topic *t = NULL;
	int64_t e;

	if (seg_topic_dir(dir, sizeof(dir), spw_data_dir(data_dir), topic))
		return -EINVAL;
	spw_topic_open(shm_dir, topic, SPW_OPEN_RDONLY, &t);
	e = earliest(dir, t);
	spw_topic_close(t);
	return e;
}

/* Open the segment holding position `pos`, with its index. */
static int seg_load(struct spw_reader *r, uint64_t pos)
{
	struct rd_seg *g = &r->seg;
	uint64_t base = pos - pos % r->segment_bytes;
	char ip[PATH_MAX];
	int n;

	if (g->fd >= 0 && g->base == base)
		return 0;
	seg_drop(g);
	if (seg_file_path(g->path, sizeof(g->path), r->dir, base, "seg") ||
	    seg_file_path(ip, sizeof(ip), r->dir, base, "idx"))
		return -ENAMETOOLONG;
	g->fd = seg_open_file(g->path, O_RDONLY, 0, false);
	if (g->fd < 0)
		return g->fd;
	{
		struct stat ist;

		/* The daemon creates the .seg, then the .idx, then writes its
		 * header: a segment being born is not an error, just not there. */
		if (stat(ip, &ist) != 0 || ist.st_size < (off_t)SEG_IDX_HDR_BYTES) {
			seg_drop(g);
			return -EAGAIN;
		}
	}
	posix_fadvise(g->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	n = seg_idx_load(ip, &g->hdr, &g->ent);
	if (n < 0 || g->hdr.base != base || g->hdr.ring_bytes != r->ring_bytes ||
	    g->hdr.segment_bytes != r->segment_bytes) {
		set_err(r, ip, pos);
		seg_drop(g);
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

/* Is there data on disk or in the ring past a missing segment at pos? */
static int missing(struct spw_reader *r, uint64_t pos)
{
	int64_t e = earliest(r->dir, r->t);
	uint64_t *bases;
	size_t n;
	bool later = false;

	if (e >= 0 && pos < (uint64_t)e) {
		set_err(r, r->seg.path, pos);
		return -ERANGE;
	}
	if (seg_list(r->dir, &bases, &n) == 0) {
		later = n && bases[n - 1] > pos;
		for (size_t i = 0; i < n; i++)
			if (bases[i] == pos - pos % r->segment_bytes)
				later = false; /* created since seg_load looked: try again */
	}
	free(bases);
	if (later) {
		set_err(r, r->seg.path, pos);
		return -ENOENT;
	}
	return 0; /* the end of the disk log: nothing yet */
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
	int i, rc;

	for (;;) {
		rc = seg_load(r, r->pos);
		if (rc == -EAGAIN)
			return 0;
		if (rc == -ENOENT)
			return missing(r, r->pos);
		if (rc)
			return rc;
		g = &r->seg;
		if (r->pos < g->hdr.first) {
			set_err(r, g->path, r->pos);
			return -ERANGE;
		}
		if ((i = entry_at(g, r->pos)) < g->nent)
			break;
		if ((g->nent ? g->ent[g->nent - 1].end : g->hdr.first) == g->base + r->segment_bytes) {
			seg_drop(g); /* complete: the next segment */
			continue;
		}
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
			if (!later)
				return 0; /* the end of the log, for now */
		}
		/* A newer segment exists: this one must be complete, unless the
		 * daemon finished it since the refresh. */
		if ((rc = seg_refresh(r)))
			return rc;
		if (entry_at(g, r->pos) < g->nent ||
		    (g->nent && g->ent[g->nent - 1].end == g->base + r->segment_bytes))
			continue;
		set_err(r, g->path, r->pos);
		return -EBADMSG; /* a torn index in the middle of the log */
	}
	*at = i;
	return 1;
}

/* Check the CRC of the entries [i, ...) that lie in the buffer (R3). A bad
 * one at r->pos: -EBADMSG, or skipped with SPW_READER_SKIP_CORRUPT (then
 * 2: fill again); a bad one later: the buffer ends before it. 0 when the
 * buffer is good up to r->buf_to. */
static int verify_buffer(struct spw_reader *r, int i, uint64_t from, uint64_t to)
{
	const struct rd_seg *g = &r->seg;
	uint64_t a = from;

	for (int k = i; k < g->nent && g->ent[k].end <= to; k++) {
		uint64_t b = g->ent[k].end;

		if (seg_crc32c(0, r->buf + (a - r->buf_from), b - a) != g->ent[k].crc_data) {
			if (a > r->pos) {
				r->buf_to = a; /* good up to the bad entry */
				return 0;
			}
			set_err(r, g->path, a);
			if (!(r->o.flags & SPW_READER_SKIP_CORRUPT))
				return -EBADMSG;
			r->skipped += b - r->pos;
			r->pos = b;
			r->buf_from = r->buf_to = 0;
			return 2;
		}
		a = b;
	}
	return 0;
}

/* Load the index entries around r->pos into the buffer and verify them
 * (R3, R4). Returns 1 when loaded, 0 at the end of what the disk has. */
static int fill(struct spw_reader *r)
{
	struct rd_seg *g = &r->seg;
	uint64_t from, to, afrom, alen;
	ssize_t got;
	int i, j, rc;

again:
	rc = locate(r, &i);
	if (rc <= 0)
		return rc;
	from = i ? g->ent[i - 1].end : g->hdr.first;
	to = g->ent[i].end;
	for (j = i + 1; j < g->nent && g->ent[j].end - from <= RD_CHUNK; j++)
		to = g->ent[j].end;
	/* Read whole pages into a page-aligned buffer: the kernel's copy out of
	 * the page cache runs at about half speed when source and destination
	 * are not equally aligned. */
	afrom = from - ((from - g->base) & 4095);
	alen = (to - afrom + 4095) & ~4095ull;
	if (alen > r->buf_cap) {
		void *nb = NULL;

		if (posix_memalign(&nb, 4096, alen))
			return -ENOMEM;
		free(r->buf);
		r->buf = nb;
		r->buf_cap = alen;
	}
	got = pread(g->fd, r->buf, alen, (off_t)(afrom - g->base));
	if (got < (ssize_t)(to - afrom)) {
		set_err(r, g->path, from);
		return got < 0 ? -errno : -EBADMSG; /* index points past the file */
	}
	r->buf_from = afrom;
	r->buf_to = to;
	if (!(r->o.flags & SPW_READER_NO_VERIFY)) {
		rc = verify_buffer(r, i, from, to);
		if (rc == 2)
			goto again; /* a corrupt range skipped */
		if (rc)
			return rc;
	}
	return 1;
}

struct ctx {
	struct spw_reader *r;
	spw_record_fn fn;
	void *arg;
	int n;
	bool stop;
};

/* Bounds, start-time filter and the user's callback. Returns non-zero to
 * stop; the reader's position is set by the caller. */
static int deliver(struct ctx *x, const struct spw_record *rec)
{
	struct spw_reader *r = x->r;
	const struct spw_reader_opts *o = &r->o;

	if ((o->stop_position && rec->position >= o->stop_position) ||
	    (o->stop_time_ns && rec->timestamp_ns >= o->stop_time_ns) ||
	    (o->max_records && r->delivered >= o->max_records)) {
		r->done = true;
		return 1;
	}
	if (r->time_skip) {
		if (rec->timestamp_ns < o->time_ns)
			return 0;
		r->time_skip = false;
	}
	r->delivered++;
	x->n++;
	if (x->fn(x->arg, rec))
		x->stop = true;
	if (o->max_records && r->delivered >= o->max_records) {
		r->done = true; /* done now, not at the next record (which may never come) */
		r->done_after = true;
	}
	return x->stop || r->done;
}


/* Span of the record whose commit word is w at pos, 0 when w is not a
 * complete record that belongs there (ring_word_check, R3). */
static uint64_t disk_span(const struct spw_reader *r, uint64_t pos, uint64_t w)
{
	int64_t span = ring_word_check(w, pos, r->ring_bytes, r->max_record);

	return span > 0 ? (uint64_t)span : 0;
}

/* Walk records in the verified buffer. */
static int disk_walk(struct spw_reader *r, struct ctx *x, int max)
{
	while (x->n < max && !r->done && !x->stop && r->pos < r->buf_to) {
		const uint8_t *p = r->buf + (r->pos - r->buf_from);
		struct seg_log_rec d;
		struct spw_record rec;

		if (seg_rec_decode(p, r->pos, r->buf_to - r->pos, r->ring_bytes, r->max_record, &d)) {
			set_err(r, r->seg.path, r->pos);
			if (!(r->o.flags & SPW_READER_SKIP_CORRUPT))
				return -EBADMSG;
			/* Skip to the end of the bad index entry. */
			uint64_t end = r->buf_to;

			for (int k = 0; k < r->seg.nent; k++)
				if (r->seg.ent[k].end > r->pos) {
					end = r->seg.ent[k].end;
					break;
				}
			r->skipped += end - r->pos;
			r->pos = end;
			continue;
		}
		if (d.type == RING_T_CORRUPT)
			r->skipped += d.span; /* garbage the daemon cut out of the ring */
		if (d.type == RING_T_DATA) {
			rec.position = (int64_t)r->pos;
			rec.timestamp_ns = d.ts;
			rec.data = d.data;
			rec.len = d.len;
			rec.flags = 0;
			deliver(x, &rec);
			if (r->done) {
				if (r->done_after)
					r->pos += d.span;
				return 0;
			}
		}
		r->pos += d.span;
	}
	return 0;
}

static bool can_go_live(struct spw_reader *r)
{
	if (!r->t || (r->o.flags & SPW_READER_NO_LIVE))
		return false;
	/* Acquire: pairs with reclaim's store (R2). */
	return r->pos >= atomic_load_explicit(&r->t->hdr->reclaimed, memory_order_acquire);
}

static int go_live(struct spw_reader *r)
{
	int rc;

	if (!r->c) {
		rc = spw_consumer_open(r->t, SPW_FROM_POSITION, (int64_t)r->pos, &r->c);
		if (rc)
			return rc;
	} else {
		rc = spw_consumer_seek(r->c, (int64_t)r->pos);
		if (rc)
			return rc;
	}
	r->live = true;
	return 0;
}

/* Live: records copied out of the ring and validated before the callback
 * sees them (R2), so a lap during the callback can neither tear what it
 * reads nor make the reader deliver the record twice. */
static int live_poll(struct spw_reader *r, struct ctx *x, int max, bool wait, int64_t timeout_ns)
{
	struct spw_record rec;
	int rc;

	while (x->n < max && !r->done && !x->stop) {
		rc = ring_consumer_next_copy(r->c, &r->stage, &r->stage_cap, &rec);
		r->pos = (uint64_t)spw_consumer_position(r->c);
		if (rc == 0 && wait && x->n == 0) {
			if (!ring_consumer_wait(r->c, timeout_ns))
				return 0;
			wait = false; /* one wait per call */
			continue;
		}
		if (rc <= 0)
			return rc;
		deliver(x, &rec);
		if (r->done && !r->done_after)
			r->pos = (uint64_t)rec.position; /* the bound: not consumed */
	}
	return 0;
}

static int poll_once(struct spw_reader *r, struct ctx *x, int max, bool wait, int64_t timeout_ns)
{
	int rc;

	while (x->n < max && !r->done && !x->stop) {
		if (!r->live && can_go_live(r)) {
			rc = go_live(r);
			if (rc)
				return rc; /* e.g. a position past the ring's tail */
			continue;
		}
		if (r->live) {
			rc = live_poll(r, x, max, wait, timeout_ns);
			if (rc == -ESTALE) { /* lapped: the segments have it (R2) */
				r->live = false;
				continue;
			}
			return rc < 0 ? rc : 0;
		}
		if (r->pos >= r->buf_to || r->pos < r->buf_from) {
			rc = fill(r);
			if (rc < 0) {
				r->buf_from = r->buf_to = 0; /* nothing unverified stays */
				return rc;
			}
			if (rc == 0) {
				if (can_go_live(r))
					continue; /* go_live above, or its error */
				return 0; /* the end of the disk log, no ring to go on with */
			}
		}
		rc = disk_walk(r, x, max);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int spw_reader_poll(struct spw_reader *r, spw_record_fn fn, void *arg, int max)
{
	struct ctx x = { r, fn, arg, 0, false };
	int rc;

	if (!r || !fn || max <= 0)
		return -EINVAL;
	rc = poll_once(r, &x, max, false, 0);
	return x.n ? x.n : rc;
}

int spw_reader_poll_wait(struct spw_reader *r, spw_record_fn fn, void *arg, int max,
			 int64_t timeout_ns)
{
	uint64_t start = ring_monotonic_ns();
	struct ctx x = { r, fn, arg, 0, false };
	int rc;

	if (!r || !fn || max <= 0)
		return -EINVAL;
	for (;;) {
		int64_t left = timeout_ns < 0 ? -1 : timeout_ns - (int64_t)(ring_monotonic_ns() - start);

		rc = poll_once(r, &x, max, true, left < 0 && timeout_ns >= 0 ? 0 : left);
		if (x.n || rc < 0 || r->done)
			return x.n ? x.n : rc;
		if (timeout_ns >= 0 && (int64_t)(ring_monotonic_ns() - start) >= timeout_ns)
			return 0;
		if (!r->live) { /* disk only, caught up: wait for the daemon */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
}

/* Is pos a record boundary (R1)? Walks the ring from its reclaim bound, or
 * the index entry holding pos on disk. 0, -EINVAL (inside a record), or
 * -errno; a walk that meets an uncommitted record before pos accepts it. */
static int check_boundary(struct spw_reader *r, uint64_t pos)
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
			if (n == 0)
				return 0;
			q = (uint64_t)sc.end;
		}
		if (q >= pos)
			return q == pos ? 0 : -EINVAL;
	}
	int rc = seg_load(r, pos);
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
			set_err(r, g->path, q);
			return -EBADMSG;
		}
		q += span;
	}
	return q == pos ? 0 : -EINVAL;
}

/* The topic's geometry: from its ring when there is one, else from
 * topic.conf (a topic only on disk). 0, -ENOENT (no such topic) or
 * -EBADMSG (a dir without a readable topic.conf). */
static int reader_geometry(struct spw_reader *r)
{
	struct topic_conf conf;
	struct stat st;

	spw_topic_open(r->shm_dir, r->topic, SPW_OPEN_RDONLY, &r->t);
	if (r->t) {
		r->ring_bytes = r->t->ring_bytes;
		r->segment_bytes = r->t->segment_bytes;
		r->max_record = r->t->max_record;
	} else if (seg_conf_load(r->dir, &conf) == 0) {
		r->ring_bytes = conf.ring_bytes;
		r->segment_bytes = conf.segment_bytes;
		r->max_record = conf.max_record ? conf.max_record : conf.ring_bytes / 4;
	} else {
		return seg_lstat(r->dir, &st) ? -ENOENT : -EBADMSG;
	}
	return 0;
}

/* A start position given (or a group's): 8-aligned, not past the tail and
 * a record boundary (R1), or -EINVAL. e: the earliest position kept. */
static int start_at(struct spw_reader *r, int64_t position, int64_t e)
{
	int rc;

	if (position < 0 || (position & 7))
		return -EINVAL;
	r->pos = (uint64_t)position;
	/* Acquire: pairs with the producers' tail CAS (a bound only). A
	 * position past the tail (a ring recreated lower) is refused. */
	if (r->t && r->pos > atomic_load_explicit(&r->t->hdr->tail, memory_order_acquire))
		return -EINVAL;
	if (e >= 0 && r->pos >= (uint64_t)e) {
		rc = check_boundary(r, r->pos);
		seg_drop(&r->seg); /* files are opened when read, not before */
		return rc;
	}
	return 0;
}

/* Where the reader starts (opts->start). 0 or -errno. */
static int reader_start(struct spw_reader *r, const struct spw_reader_opts *opts, int64_t e)
{
	int64_t gp;
	int rc;

	switch (opts->start) {
	case SPW_START_EARLIEST:
		if (e < 0)
			return (int)e;
		r->pos = (uint64_t)e;
		return 0;
	case SPW_START_LATEST:
		if (r->t) {
			/* Acquire: tail is a record boundary (I6). */
			r->pos = atomic_load_explicit(&r->t->hdr->tail, memory_order_acquire);
		} else {
			r->pos = seg_log_end(r->dir, e >= 0 ? (uint64_t)e : 0);
			r->o.flags |= SPW_READER_NO_LIVE;
		}
		return 0;
	case SPW_START_GROUP:
		rc = opts->group ? spw_group_read(r->data_dir, r->topic, opts->group, &gp) : -EINVAL;
		if (rc == -ENOENT) {
			gp = e;
			rc = gp < 0 ? (int)gp : 0;
		}
		return rc ? rc : start_at(r, gp, e);
	case SPW_START_TIME:
		r->time_skip = true;
		/* Records below the ring's bound not on disk: start in the ring.
		 * Acquire: the ring's reclaim bound (pairs with reclaim's store). */
		if (seg_log_time_pos(r->dir, opts->time_ns, &r->pos))
			r->pos = r->t ? atomic_load_explicit(&r->t->hdr->reclaimed,
							     memory_order_acquire)
				      : seg_log_end(r->dir, e >= 0 ? (uint64_t)e : 0);
		return 0;
	case SPW_START_POSITION:
		return start_at(r, opts->position, e);
	default:
		return -EINVAL;
	}
}

int spw_reader_open(const char *topic, const struct spw_reader_opts *opts, struct spw_reader **out)
{
	struct spw_reader *r;
	int64_t e;
	int rc;

	if (!topic || !opts || !out || spw_topic_name_check(topic))
		return -EINVAL;
	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->seg.fd = -1;
	r->o = *opts;
	r->o.group = NULL;
	snprintf(r->topic, sizeof(r->topic), "%s", topic);
	snprintf(r->shm_dir, sizeof(r->shm_dir), "%s", spw_shm_dir(opts->shm_dir));
	snprintf(r->data_dir, sizeof(r->data_dir), "%s", spw_data_dir(opts->data_dir));
	r->o.shm_dir = r->shm_dir;
	r->o.data_dir = r->data_dir;
	rc = seg_topic_dir(r->dir, sizeof(r->dir), r->data_dir, topic);
	if (!rc)
		rc = reader_geometry(r);
	if (rc)
		goto fail;
	e = earliest(r->dir, r->t);
	rc = reader_start(r, opts, e);
	if (!rc && e >= 0 && r->pos < (uint64_t)e)
		rc = -ERANGE;
	if (rc)
		goto fail;
	*out = r;
	return 0;
fail:
	spw_reader_close(r);
	return rc;
}

void spw_reader_close(struct spw_reader *r)
{
	if (!r)
		return;
	spw_consumer_close(r->c);
	spw_topic_close(r->t);
	seg_drop(&r->seg);
	free(r->buf);
	free(r->stage);
	free(r);
}

int64_t spw_reader_position(const struct spw_reader *r)
{
	return r ? (int64_t)r->pos : -EINVAL;
}

int spw_reader_done(const struct spw_reader *r)
{
	return r && r->done;
}

int spw_reader_is_live(const struct spw_reader *r)
{
	return r && r->live;
}

uint64_t spw_reader_skipped(const struct spw_reader *r)
{
	/* Disk spans skipped here, CORRUPT spans the live consumer passed. */
	return r ? r->skipped + (r->c ? spw_consumer_skipped(r->c) : 0) : 0;
}

int spw_reader_error(const struct spw_reader *r, char *file, size_t file_len, int64_t *position)
{
	if (!r)
		return -EINVAL;
	if (file && file_len)
		snprintf(file, file_len, "%s", r->err_file);
	if (position)
		*position = r->err_pos;
	return 0;
}

int spw_reader_commit(struct spw_reader *r, const char *group)
{
	if (!r)
		return -EINVAL;
	return seg_group_write(r->data_dir, r->topic, group, (int64_t)r->pos);
}
