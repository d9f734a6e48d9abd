/* SPDX-License-Identifier: MIT */
/*
 * reader.c - one reader from disk to live (spillway.h "Readers").
 *
 * Invariants (R1-R6; tests cite them):
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
 *  R4 Segments are read with pread into the reader's buffer, index entries
 *     up to ~1 MiB at a time (rd_plan_at; the CRC and the walk then find
 *     them in cache; measured ~8% faster than 256 KiB, make bench replay):
 *     on these VMs the first touch of each page of a fresh mmap costs ~5 us
 *     (shadow paging), which made mmap ~4x slower than pread (make bench).
 *  R5 A position below the oldest kept byte is -ERANGE; a segment missing
 *     while older and newer data exist is -ENOENT, never a silent skip.
 *  R6 Reading chunk after chunk, a reader that may use two CPUs has a
 *     read-ahead thread read and check every other chunk (reader_ahead.c):
 *     the same plan (rd_plan_at), the same CRC check (rd_crc_first_bad) and
 *     the same error handling as the reader's own chunks, so R3-R5 hold
 *     whichever thread read a chunk; a job the thread has not begun is
 *     taken back, never waited for, and one it runs at most ~0.5 ms.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

void rd_set_err(struct spw_reader *r, const char *file, uint64_t pos)
{
	snprintf(r->err_file, sizeof(r->err_file), "%s", file ? file : "");
	r->err_pos = (int64_t)pos;
}

/* The oldest position kept: the first segment's `first`, else the ring's
 * reclaim bound. */
int64_t rd_earliest(const char *dir, struct spw_topic *t)
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
	ring_topic_open(shm_dir, topic, SPW_OPEN_RDONLY, false, &t); /* the header only */
	e = rd_earliest(dir, t);
	spw_topic_close(t);
	return e;
}

struct ctx {
	struct spw_reader *r;
	spw_record_fn fn;
	void *arg;
	int n;
	bool stop;
	/* spw_reader_read: records go to out[] instead of fn. A batch is all
	 * from one verified disk buffer, or all live copies in r->stage (their
	 * data holds offsets until the batch ends: the stage may move as it
	 * grows). */
	struct spw_record *out;
	size_t staged;
	bool live_batch;
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
	if (x->out)
		x->out[x->n] = *rec;
	else if (x->fn(x->arg, rec))
		x->stop = true;
	x->n++;
	if (o->max_records && r->delivered >= o->max_records) {
		r->done = true; /* done now, not at the next record (which may never come) */
		r->done_after = true;
	}
	return x->stop || r->done;
}


/* Walk records in the verified buffer. */
static int disk_walk(struct spw_reader *r, struct ctx *x, int max)
{
	while (x->n < max && !r->done && !x->stop && r->pos < r->buf_to) {
		const uint8_t *p = r->cur + (r->pos - r->buf_from);
		struct seg_log_rec d;
		struct spw_record rec;

		if (seg_rec_decode(p, r->pos, r->buf_to - r->pos, r->ring_bytes, r->max_record, &d)) {
			rd_set_err(r, r->seg.path, r->pos);
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

void (*rd_test_go_live_hook)(struct spw_reader *r) __attribute__((visibility("hidden")));

static int go_live(struct spw_reader *r)
{
	int rc;

	if (!r->c) {
		/* Opened lazily (reader_geometry): the first touch of each page
		 * costs ~5 us on shadow-paged VMs; pay it now, not per record. */
		ring_topic_prefault(r->t);
		if (rd_test_go_live_hook)
			rd_test_go_live_hook(r);
		rc = spw_consumer_open(r->t, SPW_FROM_OLDEST, 0, &r->c);
		if (rc)
			return rc;
	}
	/* r->pos is a boundary: where the disk log (CRC-checked) left off, or
	 * a start rd_check_boundary proved. No walk of the ring's chain here:
	 * it would cost O(ring) per switch to live (a review). */
	rc = ring_consumer_seek_known(r->c, (int64_t)r->pos);
	if (rc)
		return rc;
	r->live = true;
	r->live_idle = false;
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
		bool alone;
		int before;

		rc = ring_consumer_next_copy(r->c, &r->stage, &r->stage_cap, x->out ? x->staged : 0,
					     &rec);
		r->pos = (uint64_t)spw_consumer_position(r->c);
		/* A look that found nothing before this call found any: caught
		 * up (the empty look that ends a batch is not: streaming). */
		if (rc == 0 && x->n == 0)
			r->live_idle = true;
		if (rc == 0 && wait && x->n == 0) {
			if (!ring_consumer_wait(r->c, timeout_ns))
				return 0;
			wait = false; /* one wait per call */
			continue;
		}
		if (rc == -EBADMSG) /* garbage in the ring at r->pos: name the ring file */
			rd_set_err(r, r->t->path, r->pos);
		if (rc <= 0)
			return rc;
		/* A batch for the caller (spw_reader_read) right after a look
		 * that found nothing: the record found now goes out alone, for
		 * spw_consumer_peek's reason (ring/consume.c): a look at the next
		 * one would be a miss that holds up the caller's work with it. */
		alone = x->out && r->live_idle;
		r->live_idle = false;
		before = x->n;
		if (x->out) {
			/* The offset for now, the pointer when the batch ends. */
			rec.data = (const void *)(uintptr_t)x->staged;
			x->staged += rec.len;
			deliver(x, &rec);
			x->live_batch |= x->n > before;
		} else {
			deliver(x, &rec);
		}
		if (r->done && !r->done_after)
			r->pos = (uint64_t)rec.position; /* the bound: not consumed */
		if (alone && x->n > before)
			break; /* (one deliver() filtered out, before the start time, does not end it) */
	}
	return 0;
}

static int poll_once(struct spw_reader *r, struct ctx *x, int max, bool wait, int64_t timeout_ns)
{
	int rc;

	while (x->n < max && !r->done && !x->stop) {
		if (!r->live && can_go_live(r)) {
			if (x->out && x->n)
				return 0; /* a batch is all disk or all live */
			rc = go_live(r);
			if (rc == -ESTALE)
				continue; /* reclaimed since the check (R2): the disk has it */
			if (rc)
				return rc; /* e.g. a position past the ring's tail */
			continue;
		}
		if (r->live) {
			rc = live_poll(r, x, max, wait, timeout_ns);
			if (rc == -ESTALE) { /* lapped: the segments have it (R2) */
				r->live = false;
				r->live_idle = false;
				if (x->out && x->n)
					return 0;
				continue;
			}
			return rc < 0 ? rc : 0;
		}
		if (r->pos >= r->buf_to || r->pos < r->buf_from) {
			if (x->out && x->n)
				return 0; /* the batch's records point into this buffer */
			rc = rd_fill(r);
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
	struct ctx x = { .r = r, .fn = fn, .arg = arg };
	int rc;

	if (!r || !fn || max <= 0)
		return -EINVAL;
	rc = poll_once(r, &x, max, false, 0);
	return x.n ? x.n : rc;
}

int spw_reader_poll_wait(struct spw_reader *r, spw_record_fn fn, void *arg, int max,
			 int64_t timeout_ns)
{
	/* The clock only for a bounded wait (~25 ns a read on this project's
	 * VM, per call). */
	uint64_t start = timeout_ns > 0 ? ring_monotonic_ns() : 0;
	struct ctx x = { .r = r, .fn = fn, .arg = arg };
	int rc;

	if (!r || !fn || max <= 0)
		return -EINVAL;
	for (;;) {
		int64_t left = ring_wait_left(timeout_ns, start);

		rc = poll_once(r, &x, max, true, left);
		if (x.n || rc < 0 || r->done)
			return x.n ? x.n : rc;
		if (ring_wait_left(timeout_ns, start) == 0)
			return 0;
		if (!r->live) { /* disk only, caught up: wait for the daemon */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
}

int spw_reader_read(struct spw_reader *r, struct spw_record *recs, int max, int64_t timeout_ns)
{
	struct ctx x = { .r = r, .out = recs };
	uint64_t start = timeout_ns > 0 ? ring_monotonic_ns() : 0; /* as in poll_wait */
	int rc;

	if (!r || !recs || max <= 0)
		return -EINVAL;
	for (;;) {
		int64_t left = ring_wait_left(timeout_ns, start);

		rc = poll_once(r, &x, max, timeout_ns != 0, left);
		if (x.n || rc < 0 || r->done || ring_wait_left(timeout_ns, start) == 0)
			break;
		if (!r->live) { /* disk only, caught up: wait for the daemon */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
	if (x.live_batch) /* live copies: offsets into the stage become pointers */
		for (int i = 0; i < x.n; i++)
			recs[i].data = r->stage + (uintptr_t)recs[i].data;
	return x.n ? x.n : rc;
}

/* The topic's geometry: from its ring when there is one, else from
 * topic.conf (a topic only on disk). 0, -ENOENT (no such topic),
 * -EBADMSG (a dir without a readable topic.conf), or the error opening a
 * ring that is there (-EBADMSG, -EPROTO, -EACCES...). */
static int reader_geometry(struct spw_reader *r)
{
	struct topic_conf conf;
	struct stat st;

	/* Lazily: a disk reader may never touch the ring's data (go_live
	 * prefaults it before reading live). */
	int tr = ring_topic_open(r->shm_dir, r->topic, SPW_OPEN_RDONLY, false, &r->t);

	/* A ring there that cannot be opened (a damaged header, another format,
	 * no permission) is said, not read past: the disk log alone would end
	 * the read early and silently. */
	if (tr && tr != -ENOENT)
		return tr;
	if (r->t) {
		r->ring_bytes = r->t->ring_bytes;
		r->segment_bytes = r->t->segment_bytes;
	} else if (seg_conf_load(r->dir, &conf) == 0) {
		r->ring_bytes = conf.ring_bytes;
		r->segment_bytes = conf.segment_bytes;
	} else {
		return seg_lstat(r->dir, &st) ? -ENOENT : -EBADMSG;
	}
	/* Disk records are held to the format's bound for the log's ring, not
	 * to today's max_record: one lowered in topic.conf (a ring recreated
	 * with it) leaves the records written before it readable. The CRC per
	 * index entry, not this bound, tells a record from garbage. */
	r->max_record = seg_max_record_bound(r->ring_bytes);
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
		rc = rd_check_boundary(r, r->pos);
		rd_seg_drop(&r->seg); /* files are opened when read, not before */
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
		/* The group's one reader first, then its position: no other
		 * reader commits it between our read and our reading. A reader
		 * that cannot take the lock (a read-only file system, no write
		 * access to the groups dir or the lock file, no topic data dir
		 * yet) reads from the position without holding the group, as
		 * before groups had one reader: its join and commit fail so. */
		rc = opts->group ? spw_reader_join(r, opts->group) : -EINVAL;
		if (rc == -EROFS || rc == -EACCES || rc == -EPERM || rc == -ENOENT) {
			/* ... but never while another reader holds it, nor when
			 * that cannot be told (a lock file we cannot open). */
			int h = seg_group_holder(r->data_dir, r->topic, opts->group, NULL);

			rc = h == 1 ? -EBUSY : h < 0 ? h : 0;
		}
		if (!rc)
			rc = spw_group_read(r->data_dir, r->topic, opts->group, &gp);
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
	rd_ahead_init(&r->ahead);
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
	e = rd_earliest(r->dir, r->t);
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
	rd_ahead_stop(&r->ahead);
	spw_consumer_close(r->c);
	spw_topic_close(r->t);
	rd_seg_drop(&r->seg);
	while (r->members) {
		struct rd_member *m = r->members;

		r->members = m->next;
		seg_group_leave(&m->h);
		free(m);
	}
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

int spw_reader_deleted(const struct spw_reader *r)
{
	struct stat now;

	if (!r)
		return -EINVAL;
	/* No ring when opened: a topic only on disk is gone with its dir. */
	if (!r->t)
		return stat(r->dir, &now) ? (errno == ENOENT ? 1 : -errno) : 0;
	return spw_topic_deleted(r->t);
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

int spw_reader_join(struct spw_reader *r, const char *group)
{
	struct rd_member *m;
	int rc;

	if (!r || !group || spw_topic_name_check(group))
		return -EINVAL;
	for (m = r->members; m; m = m->next)
		if (!strcmp(m->group, group)) {
			/* Lost (its lock file removed or replaced: another reader
			 * may have it now), or closed in a forked child
			 * (ring/locks.c): never taken back behind the user. */
			if (m->lost)
				return -ENOLCK;
			if (m->h.fd < 0)
				return -ECHILD;
			rc = seg_group_still_held(r->data_dir, r->topic, group, &m->h);
			if (rc == -ENOLCK) {
				seg_group_leave(&m->h);
				m->lost = true;
			}
			return rc;
		}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	rc = seg_group_join(r->data_dir, r->topic, group, &m->h);
	if (rc) {
		free(m);
		return rc;
	}
	snprintf(m->group, sizeof(m->group), "%s", group);
	m->next = r->members;
	r->members = m;
	return 0;
}

int spw_reader_commit(struct spw_reader *r, const char *group)
{
	/* The group's one reader, still (join checks that its lock file was
	 * not removed or replaced: then another reader may hold the group,
	 * and this one lets it go for good, -ENOLCK). */
	int rc = spw_reader_join(r, group);

	if (rc)
		return rc;
	return seg_group_write(r->data_dir, r->topic, group, (int64_t)r->pos);
}
