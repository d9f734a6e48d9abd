/* SPDX-License-Identifier: MIT */
/*
 * walk.c - the one walker of the disk log, trusting nothing (spill/FORMAT.md):
 * each index header, each entry's own CRC and order, each entry's data CRC
 * over the segment bytes, every record header inside a verified entry (type,
 * bits, bounds, the ring lap), the DATA count the index claims, and the
 * contiguity of the segments. verify reports what is wrong; dump shows the
 * records, PADDING and ABORTED included. Also the ring's records past the
 * disk log, read in place and validated after reading (ring_layout.h I5).
 * seg_rec_decode is the one decoder of a record's bytes on disk: this walk,
 * the reader (spill/reader.c) and index rebuilding (spill/recover.c) use it.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *seg_log_type(uint32_t type)
{
	switch (type) {
	case SEG_LOG_DATA: return "DATA";
	case SEG_LOG_PADDING: return "PADDING";
	case SEG_LOG_ABORTED: return "ABORTED";
	case SEG_LOG_CORRUPT: return "CORRUPT";
	case SEG_LOG_CLAIMED: return "CLAIMED";
	default: return "?";
	}
}

/* Bytes of [from, to) not in a range reported before, which joins them:
 * one loss seen two ways (a torn index, the checkpoint past it) is counted
 * once in bad_bytes. The ranges stay sorted and disjoint. */
static uint64_t bad_new_bytes(struct seg_log *w, uint64_t from, uint64_t to)
{
	uint64_t(*v)[2] = w->bad_ranges, covered = 0, len = to > from ? to - from : 0;
	size_t n = w->nbad_ranges, i = 0, j;

	if (!len)
		return 0;
	while (i < n && v[i][1] < from)
		i++;
	for (j = i; j < n && v[j][0] <= to; j++) {
		uint64_t a = v[j][0] > from ? v[j][0] : from, b = v[j][1] < to ? v[j][1] : to;

		covered += b > a ? b - a : 0;
	}
	if (j > i) { /* [i, j) overlap or touch it: they merge into one */
		from = v[i][0] < from ? v[i][0] : from;
		to = v[j - 1][1] > to ? v[j - 1][1] : to;
		memmove(&v[i + 1], &v[j], (n - j) * sizeof(*v));
		n -= j - i - 1;
	} else {
		uint64_t(*nv)[2] = realloc(v, (n + 1) * sizeof(*v));

		if (!nv)
			return len; /* counted, not remembered */
		v = nv;
		memmove(&v[i + 1], &v[i], (n - i) * sizeof(*v));
		n++;
	}
	v[i][0] = from;
	v[i][1] = to;
	w->bad_ranges = v;
	w->nbad_ranges = n;
	return len - covered;
}

static void bad(struct seg_log *w, const char *file, uint64_t from, uint64_t to, const char *why)
{
	w->bad++;
	w->bad_bytes += bad_new_bytes(w, from, to);
	if (w->on_bad)
		w->on_bad(w->arg, file, from, to, why);
}

int seg_rec_decode(const uint8_t *p, uint64_t pos, uint64_t left, uint64_t ring_bytes,
		   uint32_t max_record, struct seg_log_rec *out)
{
	uint64_t word;
	int64_t span;

	if (left < 8)
		return -EBADMSG;
	memcpy(&word, p, 8);
	span = ring_word_check(word, pos, ring_bytes, max_record);
	if (span <= 0 || (uint64_t)span > left)
		return -EBADMSG;
	out->pos = pos;
	out->span = (uint64_t)span;
	out->type = RING_W_TYPE(word);
	out->len = out->type == RING_T_DATA ? RING_W_LEN(word) : (uint32_t)span;
	out->ts = 0;
	if (span >= 16)
		memcpy(&out->ts, p + 8, 8);
	out->data = out->type == RING_T_DATA ? p + 16 : NULL;
	return 0;
}

/* Records of one verified index entry [a, b), bytes in buf. Returns the
 * DATA count, or -1 after reporting a bad header; *stop when on_rec said so. */
static int64_t walk_entry(struct seg_log *w, const char *file, const struct seg_idx_hdr *h,
			  const uint8_t *buf, uint64_t a, uint64_t b)
{
	uint64_t p = a, n = 0;
	char why[160];

	while (p < b) {
		const uint8_t *q = buf + (p - a);
		struct seg_log_rec r;
		uint64_t word;

		memcpy(&word, q, 8);
		if (seg_rec_decode(q, p, b - p, h->ring_bytes, w->max_record, &r)) {
			snprintf(why, sizeof(why),
				 "bad record header 0x%016llx at position %llu (type %u, length %u)",
				 (unsigned long long)word, (unsigned long long)p, RING_W_TYPE(word),
				 RING_W_LEN(word));
			bad(w, file, p, b, why);
			return -1;
		}
		if (r.type == RING_T_CORRUPT) {
			/* Readers skip it: never clean, whatever its CRC says. */
			snprintf(why, sizeof(why),
				 "CORRUPT span: garbage spillwayd cut out of the ring (readers skip "
				 "these %llu bytes)", (unsigned long long)r.span);
			bad(w, file, p, p + r.span, why);
		}
		n += r.type == RING_T_DATA;
		if (w->on_rec && p >= w->from && (!w->to || p < w->to) && !w->stopped &&
		    w->on_rec(w->arg, &r))
			w->stopped = true;
		p += r.span;
	}
	return (int64_t)n;
}

/* One index entry of a segment and where it stands. */
struct entry_ref {
	const char *file;
	const struct seg_idx_hdr *h;
	const struct seg_idx_entry *e;
	int i;
	uint64_t records; /* DATA records the entry says it covers */
	uint64_t indexed_end; /* where the segment's last entry ends */
};

/* One index entry [a, e->end): its bytes read and CRC-checked, then (with
 * walk_records) every record header and the DATA count. Returns non-zero
 * when the segment's walk cannot go on (truncated file, short read, no
 * memory); a bad CRC or header is reported and the walk goes on. */
static int walk_one_entry(struct seg_log *w, int fd, uint64_t file_bytes,
			  const struct entry_ref *x, uint64_t a, uint8_t **buf, size_t *cap,
			  uint64_t *seg_bytes, uint64_t *seg_recs)
{
	uint64_t b = x->e->end, base = x->h->base;
	char why[256];
	uint32_t crc;
	int64_t n;

	if (b - base > file_bytes) {
		/* The walk of this segment ends here: every indexed byte from
		 * this entry on is lost, not only this entry's. */
		snprintf(why, sizeof(why), "the index covers up to %llu but the file ends at "
			 "%llu (truncated?)",
			 (unsigned long long)x->indexed_end, (unsigned long long)(base + file_bytes));
		bad(w, x->file, a, x->indexed_end > b ? x->indexed_end : b, why);
		return -1;
	}
	if (b - a > *cap) {
		uint8_t *nb = realloc(*buf, b - a);

		if (!nb) {
			/* Never a silent skip: unchecked is not clean. */
			snprintf(why, sizeof(why), "cannot allocate %llu bytes to check this entry",
				 (unsigned long long)(b - a));
			bad(w, x->file, a, b, why);
			return -1;
		}
		*buf = nb;
		*cap = b - a;
	}
	if (pread(fd, *buf, b - a, (off_t)(a - base)) != (ssize_t)(b - a)) {
		bad(w, x->file, a, x->indexed_end > b ? x->indexed_end : b,
		    "short read (the rest of the segment is not checked)");
		return -1;
	}
	w->entries++;
	crc = seg_crc32c(0, *buf, b - a);
	if (crc != x->e->crc_data) {
		snprintf(why, sizeof(why), "data CRC mismatch in index entry %d (index %08x, "
			 "data %08x)",
			 x->i, x->e->crc_data, crc);
		bad(w, x->file, a, b, why);
		return 0;
	}
	w->bytes += b - a;
	*seg_bytes += b - a;
	if (!w->walk_records)
		return 0;
	n = walk_entry(w, x->file, x->h, *buf, a, b);
	if (n >= 0 && (uint64_t)n != x->records) {
		snprintf(why, sizeof(why), "index entry %d says %llu records, the bytes hold %lld",
			 x->i, (unsigned long long)x->records, (long long)n);
		bad(w, x->file, a, b, why);
	}
	if (n > 0) {
		w->records += (uint64_t)n;
		*seg_recs += (uint64_t)n;
	}
	return 0;
}

/* One segment: its index, then each entry. Returns the end of its verified
 * log (the position the next segment must start at). */
static uint64_t walk_segment(struct seg_log *w, uint64_t base, uint8_t **buf, size_t *cap)
{
	char sp[PATH_MAX], ip[PATH_MAX], why[256];
	struct seg_idx_entry *e = NULL;
	struct seg_idx_hdr h;
	struct stat st, ist;
	uint64_t a, seg_bytes = 0, seg_recs = 0, bad0 = w->bad;
	bool have_ist;
	int k, fd, total;

	seg_file_path(sp, sizeof(sp), w->dir, base, "seg");
	seg_file_path(ip, sizeof(ip), w->dir, base, "idx");
	k = seg_idx_load(ip, &h, &e);
	if (k < 0 || h.base != base) {
		snprintf(why, sizeof(why), "index unreadable: %s",
			 k < 0 ? (k == -EBADMSG ? "bad header (magic, version or CRC)" : strerror(-k))
			       : "header names another base");
		bad(w, ip, base, base, why);
		free(e);
		return 0;
	}
	if ((w->ring_bytes && h.ring_bytes != w->ring_bytes) ||
	    (w->segment_bytes && h.segment_bytes != w->segment_bytes)) {
		/* Readers and the daemon go by the topic's settings: a header
		 * that disagrees (re-sealed after an edit?) is unusable. */
		snprintf(why, sizeof(why), "index header says ring %llu / segment %llu bytes, the "
			 "topic's settings (topic.conf) %llu / %llu",
			 (unsigned long long)h.ring_bytes, (unsigned long long)h.segment_bytes,
			 (unsigned long long)w->ring_bytes, (unsigned long long)w->segment_bytes);
		bad(w, ip, base, base, why);
		free(e);
		return 0;
	}
	if (!w->max_record)
		w->max_record = seg_max_record_bound(h.ring_bytes);
	if (w->on_seg && (!k || e[k - 1].end > w->from))
		w->on_seg(w->arg, sp, &h, k);
	have_ist = !seg_lstat(ip, &ist);
	total = !have_ist ? k : (int)((ist.st_size - SEG_IDX_HDR_BYTES) / SEG_IDX_ENTRY_BYTES);
	fd = seg_open_file(sp, O_RDONLY, 0, false);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(why, sizeof(why), "segment file unreadable: %s",
			 strerror(fd < 0 ? -fd : errno));
		bad(w, sp, h.first, k ? e[k - 1].end : h.first, why);
		if (fd >= 0)
			close(fd);
		free(e);
		return k ? e[k - 1].end : h.first;
	}
	{
		/* spillwayd refuses a segment or index not owned by the topic
		 * dir's owner (its user): say so here too, not "clean". */
		struct stat ds;

		if (!stat(w->dir, &ds) &&
		    (st.st_uid != ds.st_uid || (have_ist && ist.st_uid != ds.st_uid))) {
			snprintf(why, sizeof(why), "owned by uid %u, not by the topic dir's owner "
				 "(uid %u): spillwayd refuses it",
				 (unsigned)(st.st_uid != ds.st_uid ? st.st_uid : ist.st_uid),
				 (unsigned)ds.st_uid);
			bad(w, st.st_uid != ds.st_uid ? sp : ip, h.first,
			    k ? e[k - 1].end : h.first, why);
		}
	}
	a = h.first;
	for (int i = 0; i < k && !w->stopped; i++) {
		uint64_t b = e[i].end;

		if (w->to && a >= w->to)
			break;
		if (b > w->from) {
			struct entry_ref ref = { sp, &h, &e[i], i, e[i].records - (i ? e[i - 1].records : 0),
						 e[k - 1].end };

			if (walk_one_entry(w, fd, (uint64_t)st.st_size, &ref, a, buf, cap, &seg_bytes,
					   &seg_recs))
				break;
		}
		a = b;
	}
	if (k < total && !w->stopped) {
		snprintf(why, sizeof(why), "index entry %d of %d is torn or out of order (its own CRC "
			 "or its order fails); nothing after it is covered",
			 k, total);
		bad(w, ip, k ? e[k - 1].end : h.first, base + (uint64_t)st.st_size, why);
	} else if ((uint64_t)st.st_size > (k ? e[k - 1].end : h.first) - base) {
		/* (With no entry yet, everything past the header's first.) */
		w->unindexed += (uint64_t)st.st_size - ((k ? e[k - 1].end : h.first) - base);
	}
	if (w->on_seg_end)
		w->on_seg_end(w->arg, sp, seg_bytes, seg_recs, w->bad - bad0);
	a = k ? e[k - 1].end : h.first;
	close(fd);
	free(e);
	return a;
}

/* Principle 2: what the durable checkpoint acknowledged (ckpt_rc, ckpt:
 * seg_ckpt_peek() before the walk, so a daemon moving it meanwhile is never
 * ahead of what was walked) must be on disk and indexed. A log that ends
 * below it lost acknowledged data; a damaged checkpoint leaves recovery
 * blind to what was acknowledged. Both are BAD, never clean. */
static void check_durable(struct seg_log *w, int ckpt_rc, uint64_t ckpt)
{
	char why[300], p[PATH_MAX];

	if (ckpt_rc == -ENOENT || (!ckpt_rc && ckpt <= w->end))
		return; /* none, or covered */
	snprintf(p, sizeof(p), "%s/%s", w->dir, SEG_CKPT_NAME);
	if (ckpt_rc == -EBADMSG) {
		bad(w, p, 0, 0, "the durable checkpoint is damaged (magic, zero field or CRC): "
				"how far the log was acknowledged durable is unknown");
		return;
	}
	if (ckpt_rc) { /* a link, not a regular file, unreadable: the daemon refuses it too */
		snprintf(why, sizeof(why), "the durable checkpoint cannot be read (%s): how far the "
			 "log was acknowledged durable is unknown", strerror(-ckpt_rc));
		bad(w, p, 0, 0, why);
		return;
	}
	snprintf(why, sizeof(why), "acknowledged durable up to %llu (the checkpoint), but the "
		 "indexed log ends at %llu: segments or index entries are missing",
		 (unsigned long long)ckpt, (unsigned long long)w->end);
	bad(w, p, w->end, ckpt, why);
}

int seg_log_walk(struct seg_log *w)
{
	uint64_t *bases, expect = 0, ckpt;
	uint8_t *buf = NULL;
	size_t n, cap = 0;
	bool have = false;
	char why[200], p[PATH_MAX];
	int ckpt_rc = seg_ckpt_peek(w->dir, &ckpt), r = seg_list(w->dir, &bases, &n);

	if (r)
		return r == -ENOENT ? 0 : r;
	for (size_t i = 0; i < n && !w->stopped; i++) {
		uint64_t end;
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		int k;

		if (w->to && bases[i] >= w->to)
			break;
		seg_file_path(p, sizeof(p), w->dir, bases[i], "idx");
		k = seg_idx_load(p, &h, &e);
		free(e);
		if (k >= 0 && have && h.first != expect) {
			snprintf(why, sizeof(why), "gap: positions %llu..%llu are in no segment (the "
				 "previous one ends early, or a file is missing)",
				 (unsigned long long)expect, (unsigned long long)h.first);
			seg_file_path(p, sizeof(p), w->dir, bases[i], "seg");
			bad(w, p, expect, h.first, why);
		}
		if (k >= 0 && !w->segments)
			w->first = h.first;
		w->segments++;
		end = walk_segment(w, bases[i], &buf, &cap);
		have = end != 0;
		expect = end;
		if (end)
			w->end = end;
	}
	free(bases);
	free(buf);
	if (!w->to && !w->stopped)
		check_durable(w, ckpt_rc, ckpt);
	free(w->bad_ranges);
	w->bad_ranges = NULL;
	w->nbad_ranges = 0;
	return 0;
}

int seg_log_time_pos(const char *dir, uint64_t t, uint64_t *pos)
{
	uint64_t *bases;
	size_t n;
	int rc = -ENOENT;

	if (seg_list(dir, &bases, &n))
		return -ENOENT;
	for (size_t s = 0; s < n && rc; s++) {
		char ip[PATH_MAX];
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		int k, lo = 0, hi;

		if (seg_file_path(ip, sizeof(ip), dir, bases[s], "idx"))
			continue;
		k = seg_idx_load(ip, &h, &e);
		if (k > 0 && e[k - 1].max_ts >= t) {
			/* max_ts is cumulative: the first entry reaching t. */
			for (hi = k - 1; lo < hi;) {
				int mid = (lo + hi) / 2;

				if (e[mid].max_ts >= t)
					hi = mid;
				else
					lo = mid + 1;
			}
			*pos = lo ? e[lo - 1].end : h.first;
			rc = 0;
		}
		if (k >= 0)
			free(e);
	}
	free(bases);
	return rc;
}

uint64_t seg_log_end(const char *dir, uint64_t fallback)
{
	uint64_t *bases, end = fallback;
	size_t n;

	if (seg_list(dir, &bases, &n) == 0 && n) {
		char ip[PATH_MAX];
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		int k;

		if (!seg_file_path(ip, sizeof(ip), dir, bases[n - 1], "idx") &&
		    (k = seg_idx_load(ip, &h, &e)) >= 0) {
			end = k ? e[k - 1].end : h.first;
			free(e);
		}
	}
	free(bases);
	return end;
}

int seg_log_ring_walk(struct spw_topic *t, uint64_t start, uint64_t from, uint64_t to,
		   int (*on_rec)(void *, const struct seg_log_rec *), void *arg, uint64_t *at)
{
	uint8_t *copy = malloc(t->max_record ? t->max_record : 1);
	uint64_t p = start;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	/* Acquire: tail is a record boundary; everything below was claimed. */
	while (p < atomic_load_explicit(&t->hdr->tail, memory_order_acquire) && (!to || p < to)) {
		/* Acquire: pairs with the producer's commit store (I4). */
		uint64_t w = atomic_load_explicit(&ring_rec_at(t, p)->commit, memory_order_acquire);
		struct seg_log_rec r = { .pos = p };
		int64_t chk = ring_check(t, p, w);

		*at = p;
		if (chk == 0) {
			struct spw_producer_info *pi = calloc(t->max_producers, sizeof(*pi));
			int n = pi ? spw_topic_producers(t, pi, (int)t->max_producers) : 0;

			/* In flight: show the claim a producer slot holds, then stop.
			 * Its span may hold several records (the rest of a batch):
			 * no length is known. */
			for (int i = 0; i < n && p >= from; i++)
				if (pi[i].claiming && pi[i].claim <= (int64_t)p && pi[i].end > (int64_t)p) {
					r.type = SEG_LOG_CLAIMED;
					r.span = (uint64_t)pi[i].end - p;
					r.len = 0;
					rc = on_rec(arg, &r);
					break;
				}
			free(pi);
			break;
		}
		if (chk < 0) {
			rc = -EBADMSG;
			break;
		}
		r.span = (uint64_t)chk;
		r.type = RING_W_TYPE(w);
		r.len = r.type == RING_T_DATA ? RING_W_LEN(w) : (uint32_t)r.span;
		if (r.span >= 16)
			r.ts = ring_rec_at(t, p)->timestamp_ns;
		if (r.type == RING_T_DATA) {
			memcpy(copy, ring_rec_at(t, p) + 1, r.len);
			r.data = copy;
		}
		/* I5: the bytes just copied count only if p was not reclaimed. */
		if (ring_lapped(t, p)) {
			rc = -ESTALE;
			break;
		}
		if (p >= from && (rc = on_rec(arg, &r)))
			break;
		p += r.span;
	}
	if (!rc)
		*at = p;
	free(copy);
	return rc;
}

/* --- is POSITION a record boundary? ------------------------------------------ */
struct bctx {
	uint64_t pos, before, after;
	uint64_t bad_from, bad_to; /* a damaged range holding pos, */
	char bad_why[96];          /* and what is wrong there */
	bool hit, have_after, in_bad;
};

static void boundary_bad(void *arg, const char *file, uint64_t from, uint64_t to, const char *why)
{
	struct bctx *b = arg;

	(void)file;
	if (!b->in_bad && from <= b->pos && b->pos < to) {
		b->in_bad = true;
		b->bad_from = from;
		b->bad_to = to;
		snprintf(b->bad_why, sizeof(b->bad_why), "%s", why);
	}
}

static int boundary_rec(void *arg, const struct seg_log_rec *r)
{
	struct bctx *b = arg;

	if (r->pos == b->pos) {
		b->hit = true;
		return 1;
	}
	if (r->pos < b->pos) {
		b->before = r->pos;
		return 0;
	}
	b->after = r->pos;
	b->have_after = true;
	return 1;
}

int seg_log_check_position(const char *dir, struct spw_topic *t, uint64_t pos, uint64_t *before,
			uint64_t *after, char *why, size_t why_len)
{
	struct bctx b = { .pos = pos };
	struct seg_log w = { 0 };
	struct spw_topic_info in = { 0 };
	uint64_t at;

	w.dir = dir;
	w.from = pos > (1u << 20) ? pos - (1u << 20) : 0;
	w.walk_records = true; /* up to the first record past pos: boundary_rec stops it */
	w.on_rec = boundary_rec;
	w.on_bad = boundary_bad;
	w.arg = &b;
	if (t)
		spw_topic_info(t, &in);
	if (t && pos == in.tail)
		return 0;
	if (t && pos > in.tail) {
		*before = *after = in.tail;
		return -ERANGE;
	}
	seg_log_walk(&w);
	if (b.in_bad && !b.hit) {
		*before = b.bad_from;
		*after = b.bad_to;
		if (why)
			snprintf(why, why_len, "%s", b.bad_why);
		return -EBADMSG;
	}
	if (!b.hit && !b.have_after && t && pos >= in.reclaimed && pos < in.tail) {
		uint64_t start = w.segments && w.end > in.reclaimed && w.end <= pos ? w.end : in.reclaimed;

		seg_log_ring_walk(t, start, start, 0, boundary_rec, &b, &at);
	}
	*before = b.before;
	*after = b.have_after ? b.after : t ? in.tail : w.end;
	return b.hit || (!b.have_after && !b.before) ? 0 : -EINVAL;
}
