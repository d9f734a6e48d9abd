/* SPDX-License-Identifier: MIT */
/*
 * recover.c - recovery of a topic's disk log at attach: the last segment's index
 * entries checked against the bytes they cover; a torn tail beyond the
 * durable checkpoint cut; damage below it kept and reported, never cut; an
 * empty or damaged last index rebuilt record by record (spill/FORMAT.md).
 */
#define _GNU_SOURCE
#include "spill.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_crc(int fd, uint64_t off, uint64_t n, uint32_t *crc)
{
	static uint8_t buf[1 << 16];
	uint32_t c = 0;

	while (n) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		ssize_t got = pread(fd, buf, k, (off_t)off);

		if (got != (ssize_t)k)
			return got < 0 ? -errno : -EBADMSG;
		c = seg_crc32c(c, buf, k);
		off += k;
		n -= k;
	}
	*crc = c;
	return 0;
}

/* What an index held before its rebuild, kept as evidence: the ranges
 * [a, b) of its entries whose own CRC holds and whose start is known (the
 * header's first when the header holds, or when its base and first are
 * the rebuild's own though its CRC fails; else the end of the sound entry
 * just before), with their data CRCs. A rebuilt entry over the same bytes
 * takes the old CRC: bytes changed since they were indexed then stay BAD,
 * instead of being blessed by a CRC computed over them now. */
struct old_entry {
	uint64_t a, b;
	uint32_t crc;
};
struct old_index {
	struct old_entry *v;
	size_t n;
	uint64_t created_ns; /* its sound header's, kept by the rebuild; 0: none */
};

#define OLD_ENTRIES_MAX (1u << 20) /* 32 MiB of index: more is not ours */

static void old_index_load(const char *ip, uint64_t base, uint64_t first, struct old_index *o)
{
	struct seg_idx_hdr h;
	struct seg_idx_entry x;
	struct stat st;
	uint64_t prev = 0;
	bool known;
	size_t n;
	int fd = seg_open_file(ip, O_RDONLY, 0, true);

	o->v = NULL;
	o->n = 0;
	o->created_ns = 0;
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < (off_t)SEG_IDX_HDR_BYTES ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		close(fd);
		return;
	}
	known = h.base == base && (seg_idx_hdr_ok(&h) || h.first == first);
	if (h.base == base && h.first == first && seg_idx_hdr_ok(&h))
		o->created_ns = h.created_ns;
	prev = h.first;
	n = ((size_t)st.st_size - SEG_IDX_HDR_BYTES) / SEG_IDX_ENTRY_BYTES;
	if (n > OLD_ENTRIES_MAX)
		n = OLD_ENTRIES_MAX;
	o->v = calloc(n ? n : 1, sizeof(*o->v));
	for (size_t i = 0; o->v && i < n; i++) {
		bool ok = pread(fd, &x, sizeof(x), (off_t)(SEG_IDX_HDR_BYTES + i * SEG_IDX_ENTRY_BYTES)) ==
				  (ssize_t)sizeof(x) &&
			  seg_idx_entry_ok(&x) && !(x.end & 7);

		if (ok && known && x.end > prev)
			o->v[o->n++] = (struct old_entry){ prev, x.end, x.crc_data };
		known = ok;
		prev = x.end;
	}
	close(fd);
}

/* The old index's entry over exactly [a, b), or NULL: a binary search (the
 * sound entries kept are in ascending order; the rebuild asks at every
 * record boundary). */
static const struct old_entry *old_entry_of(const struct old_index *o, uint64_t a, uint64_t b)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->v[mid].a < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < o->n && o->v[lo].a == a && o->v[lo].b == b ? &o->v[lo] : NULL;
}

/* The rebuilt index, built in memory: the file is rewritten only when it
 * differs (a refused attach's recovery, run again, then changes nothing on
 * disk: daemon/topics.c, attach_settled). */
struct idx_buf {
	uint8_t *p;
	size_t n, cap;
};

static int idx_buf_put(struct idx_buf *b, const void *v, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		uint8_t *np;

		while (cap < b->n + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, v, n);
	b->n += n;
	return 0;
}

/* One index entry for the segment bytes [a, p), appended to b; its data
 * CRC the old index's for the same range, if it had one (o). */
static int put_entry(struct idx_buf *b, const uint8_t *map, uint64_t base, uint64_t a, uint64_t p,
		     uint64_t records, uint64_t max_ts, const struct old_index *o)
{
	struct seg_idx_entry e;

	memset(&e, 0, sizeof(e));
	e.end = p;
	e.records = records;
	e.max_ts = max_ts;
	e.crc_data = old_entry_of(o, a, p) ? old_entry_of(o, a, p)->crc
					   : seg_crc32c(0, map + (a - base), (size_t)(p - a));
	seg_idx_entry_seal(&e);
	return idx_buf_put(b, &e, sizeof(e));
}

/* The index file ip as b says: left alone (times too) when it holds exactly
 * those bytes, else replaced whole (seg_file_replace: a temp file beside it,
 * synced, renamed over it, the dir synced). Never rewritten in place: a
 * crash there would lose the old index, whose CRCs the next rebuild keeps
 * as evidence (old_index_load). 0 or -errno. */
static int idx_store(const char *ip, const struct idx_buf *b)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(ip, '/');
	struct stat st;
	uint8_t *cur = NULL;
	int xf = seg_open_file(ip, O_RDONLY, 0, true), r = 0;

	if (xf >= 0) {
		if (!fstat(xf, &st) && (uint64_t)st.st_size == b->n &&
		    (cur = malloc(b->n ? b->n : 1)) && pread(xf, cur, b->n, 0) == (ssize_t)b->n &&
		    !memcmp(cur, b->p, b->n))
			r = 1; /* the same: nothing to write */
		free(cur);
		close(xf);
		if (r)
			return 0;
	} else if (xf != -ENOENT) {
		return xf;
	}
	if (!slash || (size_t)snprintf(dir, sizeof(dir), "%.*s", (int)(slash - ip), ip) >=
			      sizeof(dir))
		return -ENAMETOOLONG;
	return seg_file_replace(dir, slash + 1, b->p, b->n, true, -1);
}

/* The last index is empty, short or unreadable while its segment holds
 * bytes (a crash right after a roll, before the index reached the disk):
 * rebuild it from the segment, record by record (seg_rec_decode), with
 * entries cut as the writer cuts them (<= SEG_ENTRY_SPAN, never across a
 * ring lap). Recovery then verifies it like any other. first: where the
 * log starts in this segment (the previous segment's end), or 0 to take
 * the first non-zero word. */
static int idx_rebuild(const char *sp, const char *ip, uint64_t base, uint64_t first,
		       uint64_t ring_bytes, uint64_t segment_bytes)
{
	struct seg_idx_hdr h;
	struct old_index old;
	struct idx_buf b = { 0 };
	struct stat st;
	uint8_t *map;
	uint64_t p, a, records = 0, max_ts = 0, size;
	int sf, r = 0;

	sf = seg_open_file(sp, O_RDONLY, 0, true);
	if (sf < 0)
		return sf;
	if (fstat(sf, &st) || st.st_size <= 0 || (uint64_t)st.st_size > segment_bytes) {
		close(sf);
		return -EBADMSG;
	}
	size = (uint64_t)st.st_size;
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, sf, 0);
	close(sf);
	if (map == MAP_FAILED)
		return -errno;
	if (first && (first < base || first >= base + size || (first & 7))) {
		munmap(map, size);
		return -EINVAL;
	}
	if (!first) {
		for (p = 0; p + 8 <= size; p += 8) {
			uint64_t w;

			memcpy(&w, map + p, 8);
			if (w)
				break;
		}
		first = base + p;
	}
	old_index_load(ip, base, first, &old);
	seg_idx_hdr_init(&h, base, first, segment_bytes, ring_bytes);
	if (old.created_ns) { /* the segment's birth, not the rebuild's */
		h.created_ns = old.created_ns;
		seg_idx_hdr_seal(&h);
	}
	/* The header, then the entries after it. */
	r = idx_buf_put(&b, &h, sizeof(h));
	for (p = a = first; !r && p < base + size;) {
		uint64_t lap_end = (p & ~(ring_bytes - 1)) + ring_bytes;
		struct seg_log_rec d;

		if (p > a && old_entry_of(&old, a, p)) {
			/* Cut where the old index cut: its CRC then stands. */
			r = put_entry(&b, map, base, a, p, records, max_ts, &old);
			a = p;
			continue;
		}
		if (seg_rec_decode(map + (p - base), p, base + size - p, ring_bytes,
				   SPW_RECORD_MAX_BYTES, &d))
			break; /* the end of what was written whole */
		if (p > a && p + d.span - a > SEG_ENTRY_SPAN) {
			r = put_entry(&b, map, base, a, p, records, max_ts, &old);
			a = p;
		}
		if (d.type == RING_T_DATA) {
			records++;
			if (d.ts > max_ts)
				max_ts = d.ts;
		}
		p += d.span;
		if ((p == lap_end || !(p < base + size)) && p > a) {
			/* The writer never lets an entry cross a lap. */
			r = put_entry(&b, map, base, a, p, records, max_ts, &old);
			a = p;
		}
	}
	if (!r && p > a)
		r = put_entry(&b, map, base, a, p, records, max_ts, &old);
	if (!r)
		r = idx_store(ip, &b);
	free(b.p);
	free(old.v);
	munmap(map, size);
	return r;
}

/* Links where our own files belong are refused, never followed or removed:
 * someone else put them there. (Hard links are fine, a backup made with
 * cp -al: only cutting one would reach the other name, see cut_tail.)
 * 0, or -ELOOP and err. */
static int refuse_foreign(const char *topic_dir, const uint64_t *bases, size_t n, char *err,
			  size_t errlen)
{
	static const char *const ext[] = { "seg", "idx" };
	char sp[PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			struct stat ls;

			if (seg_file_path(sp, sizeof(sp), topic_dir, bases[i], ext[k]) ||
			    seg_lstat(sp, &ls))
				continue;
			if (!S_ISREG(ls.st_mode)) {
				snprintf(err, errlen,
					 "%s: %s where spillwayd keeps its own file: refused, never "
					 "followed (remove it)",
					 sp, S_ISLNK(ls.st_mode) ? "a symbolic link" : "not a regular file");
				return -ELOOP;
			}
		}
	}
	return 0;
}

/* A segment whose creation was cut short (empty .seg, index missing or
 * shorter than its header) holds nothing: remove it. Returns how many
 * segments are left. */
static size_t drop_unborn(const char *topic_dir, const uint64_t *bases, size_t n)
{
	char sp[PATH_MAX], ip[PATH_MAX];

	while (n) {
		struct stat ss, is;

		if (seg_file_path(sp, sizeof(sp), topic_dir, bases[n - 1], "seg") ||
		    seg_file_path(ip, sizeof(ip), topic_dir, bases[n - 1], "idx") ||
		    seg_lstat(sp, &ss) || ss.st_size != 0 ||
		    (seg_lstat(ip, &is) == 0 && is.st_size >= (off_t)SEG_IDX_HDR_BYTES))
			break;
		seg_unlink(sp);
		seg_unlink(ip);
		n--;
	}
	return n;
}

/* The last segment's index, rebuilt from the segment when it is empty or
 * unreadable beside a segment with bytes (a crash right after a roll): it
 * starts where the segment before ends, or at the first written word.
 * Returns the entry count (*e allocated) or -errno. */
static int last_index(const char *topic_dir, const char *sp, const char *ip, uint64_t last,
		      size_t nseg, uint64_t ring_bytes, uint64_t segment_bytes,
		      struct seg_idx_hdr *h, struct seg_idx_entry **e, struct seg_recovery *out)
{
	int good = seg_idx_load(ip, h, e);
	uint64_t from = 0;

	/* Rebuilt only when missing or damaged: out of memory or an I/O
	 * error says nothing about the index, and the rebuild would replace
	 * it (its CRCs are evidence: old_index_load). */
	if (good >= 0 || (good != -EBADMSG && good != -ENOENT))
		return good;
	if (nseg > 1) {
		char pp[PATH_MAX];
		struct seg_idx_hdr ph;
		struct seg_idx_entry *pe = NULL;
		int pg;

		if (seg_file_path(pp, sizeof(pp), topic_dir, last - segment_bytes, "idx") == 0 &&
		    (pg = seg_idx_load(pp, &ph, &pe)) > 0 && pe[pg - 1].end == last)
			from = pe[pg - 1].end; /* else: from the first written word */
		free(pe);
	}
	{
		int r = idx_rebuild(sp, ip, last, from, ring_bytes, segment_bytes);

		if (r < 0 && r != -EBADMSG && r != -ENOENT)
			return r; /* the segment itself is unusable (-EMLINK, -EPERM, ...) */
		if (r == 0) {
			out->idx_rebuilt = true;
			good = seg_idx_load(ip, h, e);
		}
	}
	return good;
}

/* Verify every entry's bytes; the log ends after the last good one, except
 * that nothing below the durable checkpoint is ever cut: a bad CRC there is
 * damage to report (readers get -EBADMSG naming the file and position), not
 * a torn tail, and the good entries after it stay. Sets out->end and the
 * bad ranges; returns how many entries are kept. */
static int verify_entries(int sf, uint64_t size, uint64_t last, const struct seg_idx_hdr *h,
			  const struct seg_idx_entry *e, int good, struct seg_recovery *out)
{
	uint64_t prev = h->first, end = h->first;

	out->bad_ranges = 0;
	for (int i = 0; i < good; i++) {
		uint32_t crc = 0;

		if (e[i].end - last > size ||
		    file_crc(sf, prev - last, e[i].end - prev, &crc) || crc != e[i].crc_data) {
			if (e[i].end <= out->checkpoint && e[i].end - last <= size) {
				if (!out->bad_ranges++) {
					out->bad_from = prev;
					out->bad_to = e[i].end;
				}
				prev = end = e[i].end;
				continue;
			}
			good = i;
			break;
		}
		prev = end = e[i].end;
	}
	out->end = end;
	return good;
}

/* Below the checkpoint, or below what the ring says was spilled, the
 * index stops short: the index may be what is damaged. Rebuild it from the
 * records once and verify again before judging the bytes. Returns the
 * entries kept, or -errno when no index could be rebuilt: then *h, *e and
 * out are as they were, and the caller must not cut on their word. */
static int reverify_rebuilt(int sf, uint64_t size, const char *sp, const char *ip, uint64_t last,
			    uint64_t ring_bytes, uint64_t segment_bytes, struct seg_idx_hdr *h,
			    struct seg_idx_entry **e, struct seg_recovery *out)
{
	struct seg_idx_entry *ne = NULL;
	struct seg_idx_hdr nh;
	int good, r = idx_rebuild(sp, ip, last, h->first, ring_bytes, segment_bytes);

	if (r)
		return r < 0 ? r : -EIO;
	good = seg_idx_load(ip, &nh, &ne);
	if (good < 0) {
		free(ne);
		return good;
	}
	free(*e);
	*e = ne;
	*h = nh;
	out->idx_rebuilt = true;
	return verify_entries(sf, size, last, h, *e, good, out);
}

/* Cut the torn tail: the segment after out->end, the index after its good
 * entries; the segment synced when cut. 0 or -errno. */
static int cut_tail(int sf, const char *ip, uint64_t size, uint64_t last, int good,
		    struct seg_recovery *out)
{
	struct stat st;
	off_t want;
	int xf, r;

	/* A file with another name (a hard link: a backup made with cp -al, or
	 * a file planted there) is not cut: that would cut the other name's
	 * file too. -EMLINK, nothing changed. */
	if (size > out->end - last && (fstat(sf, &st) || st.st_nlink != 1))
		return -EMLINK;
	xf = seg_open_file(ip, O_RDWR, 0, true);
	if (xf < 0)
		return xf;
	want = (off_t)(SEG_IDX_HDR_BYTES + (uint64_t)good * SEG_IDX_ENTRY_BYTES);
	if (fstat(xf, &st) || (st.st_size != want && st.st_nlink != 1)) {
		close(xf);
		return -EMLINK;
	}
	if (size > out->end - last) {
		out->truncated = size - (out->end - last);
		if (ftruncate(sf, (off_t)(out->end - last))) {
			close(xf);
			return -errno;
		}
	}
	/* Only when it changes anything: a recovery that finds the index
	 * whole leaves the file (its times too) as it was, which the daemon's
	 * refused attaches rely on (daemon/topics.c, attach_settled). */
	if (st.st_size != want)
		/* Synced: the cut entries must not come back after a crash
		 * while the segment bytes they cover are gone. */
		r = ftruncate(xf, want) || fdatasync(xf) ? -errno : 0;
	else
		r = 0;
	close(xf);
	if (!r && out->truncated && fsync(sf))
		r = -errno;
	return r;
}

/* Where the kept log starts: the oldest segment's header says. */
static uint64_t log_first(const char *topic_dir, uint64_t base0)
{
	char ip[PATH_MAX];
	struct seg_idx_hdr h0;
	struct seg_idx_entry *e = NULL;
	int k;

	if (seg_file_path(ip, sizeof(ip), topic_dir, base0, "idx"))
		return base0;
	k = seg_idx_load(ip, &h0, &e);
	free(e);
	return k >= 0 ? h0.first : base0;
}

int seg_recover(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		uint64_t spilled, struct seg_recovery *out, char *err, size_t errlen)
{
	char sp[PATH_MAX], ip[PATH_MAX];
	struct seg_idx_entry *e = NULL;
	struct seg_idx_hdr h;
	uint64_t *bases = NULL, last, idx_high, size;
	size_t n;
	struct stat st;
	int r, good, sf;

	memset(out, 0, sizeof(*out));
	r = seg_list(topic_dir, &bases, &n);
	if (!r && !(r = refuse_foreign(topic_dir, bases, n, err, errlen)))
		n = drop_unborn(topic_dir, bases, n);
	if (r == -ENOENT || (!r && n == 0)) {
		free(bases);
		out->empty = true;
		return 0;
	}
	if (r) {
		free(bases);
		return r;
	}
	/* How far the log was acknowledged durable, before anything below
	 * changes a file: a checkpoint there but not trusted (a link, another
	 * owner, damaged) is no "none", which would let the steps below cut
	 * durable bytes (P2). (With no segments there is nothing to cut: the
	 * writer then fails to open it, and durable acks say why.) */
	r = seg_ckpt_load(topic_dir, &out->checkpoint);
	if (r && r != -ENOENT) {
		snprintf(err, errlen,
			 "%s/%s: %s: the durable checkpoint cannot be trusted, so recovery cannot "
			 "tell which bytes were acknowledged durable; nothing was changed. Make it "
			 "a plain file of this user again, or, if losing acknowledged-durable records "
			 "is acceptable (spillway verify shows the damage), remove it",
			 topic_dir, SEG_CKPT_NAME, r == -EBADMSG ? "damaged" : strerror(-r));
		free(bases);
		return r;
	}
	out->checkpoint = r ? 0 : out->checkpoint;
	out->segments = n;
	last = bases[n - 1];
	out->first = log_first(topic_dir, bases[0]);
	free(bases);
	if (seg_file_path(sp, sizeof(sp), topic_dir, last, "seg") ||
	    seg_file_path(ip, sizeof(ip), topic_dir, last, "idx"))
		return -ENAMETOOLONG;
	good = last_index(topic_dir, sp, ip, last, n, ring_bytes, segment_bytes, &h, &e, out);
	if (good < 0) {
		snprintf(err, errlen, "%s: unreadable index header, and no index could be rebuilt "
			 "from %s (%s)", ip, sp, strerror(-good));
		return good;
	}
	idx_high = good > 0 ? e[good - 1].end : 0;
	if (h.base != last || h.segment_bytes != segment_bytes || h.ring_bytes != ring_bytes) {
		free(e);
		snprintf(err, errlen, "%s: index header does not match the topic settings", ip);
		return -EBADMSG;
	}
	sf = seg_open_file(sp, O_RDWR, 0, true);
	if (sf < 0 || fstat(sf, &st)) {
		r = sf < 0 ? sf : -errno;
		free(e);
		if (sf >= 0)
			close(sf);
		snprintf(err, errlen, "%s: %s", sp, strerror(-r));
		return r;
	}
	size = (uint64_t)st.st_size;
	good = verify_entries(sf, size, last, &h, e, good, out);
	if ((out->checkpoint > out->end && out->checkpoint > last) ||
	    (spilled > out->end && spilled > last && last + size > out->end)) {
		int g = reverify_rebuilt(sf, size, sp, ip, last, ring_bytes, segment_bytes, &h, &e,
					 out);

		if (g >= 0) {
			good = g;
		} else if (out->checkpoint <= out->end) {
			/* Spilled (acknowledged written) bytes past the index, and
			 * no index could be made for them: cut nothing. (Past the
			 * checkpoint, the refusal below says more.) */
			snprintf(err, errlen,
				 "%s: the index ends at %llu but the ring says %llu was spilled, and "
				 "no index could be rebuilt from the segment (%s): refusing to cut "
				 "acknowledged records; see spillway verify",
				 sp, (unsigned long long)out->end, (unsigned long long)spilled,
				 strerror(-g));
			free(e);
			close(sf);
			return g;
		}
	}
	if (out->checkpoint > out->end) {
		/* Durable bytes that cannot be verified: never cut them. */
		out->lost_durable = out->checkpoint - out->end;
		snprintf(err, errlen,
			 "%s: the log verifies only up to %llu but %llu is durable (checkpoint): "
			 "refusing to cut acknowledged data; see spillway verify. To go on, restore "
			 "the damaged segment from a copy; or, to accept losing the records "
			 "acknowledged durable from %llu to %llu, remove %s/%s (recovery then cuts "
			 "the log at %llu)",
			 sp, (unsigned long long)out->end, (unsigned long long)out->checkpoint,
			 (unsigned long long)out->end, (unsigned long long)out->checkpoint, topic_dir,
			 SEG_CKPT_NAME, (unsigned long long)out->end);
		free(e);
		close(sf);
		return -EBADMSG;
	}
	out->high = last + size > out->end ? last + size : out->end;
	if (idx_high > out->high)
		out->high = idx_high;
	out->high = (out->high + 7) & ~7ull;
	r = cut_tail(sf, ip, size, last, good, out);
	free(e);
	close(sf);
	if (r == -EMLINK)
		snprintf(err, errlen, "%s: holds bytes past the verified log (%llu) that recovery "
			 "would cut, but it or its index has another name (a hard link: a backup "
			 "made with cp -al, or a file planted there): refused, nothing changed; "
			 "copy the backup instead of linking it, or remove the extra name",
			 sp, (unsigned long long)out->end);
	else if (r)
		snprintf(err, errlen, "%s: recovery failed: %s", sp, strerror(-r));
	return r;
}
