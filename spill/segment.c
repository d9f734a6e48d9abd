/* SPDX-License-Identifier: MIT */
/*
 * segment.c - segment files: creating or reopening the active segment and its index,
 * the durable checkpoint, and gap records (spill/FORMAT.md).
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

int seg_open(const char *topic_dir, uint64_t base, uint64_t first, uint64_t ring_bytes,
	     uint64_t segment_bytes, bool prealloc, int *seg_fd, int *idx_fd,
	     uint64_t *idx_entries, struct seg_idx_entry *last)
{
	char sp[PATH_MAX], ip[PATH_MAX];
	struct seg_idx_hdr h;
	struct stat st;
	int sf, xf, r;

	if (seg_file_path(sp, sizeof(sp), topic_dir, base, "seg") ||
	    seg_file_path(ip, sizeof(ip), topic_dir, base, "idx"))
		return -ENAMETOOLONG;
	sf = seg_open_file(sp, O_RDWR | O_CREAT, 0600, true);
	if (sf < 0)
		return sf;
	xf = seg_open_file(ip, O_RDWR | O_CREAT, 0600, true);
	if (xf < 0) {
		r = xf;
		close(sf);
		return r;
	}
	/* Group and mode as the topic shares them, at every open and roll. */
	seg_share(sf, topic_dir);
	seg_share(xf, topic_dir);
	memset(last, 0, sizeof(*last));
	if (fstat(xf, &st)) {
		r = -errno;
		goto fail;
	}
	if (st.st_size < (off_t)SEG_IDX_HDR_BYTES) {
		seg_idx_hdr_init(&h, base, first, segment_bytes, ring_bytes);
		if (pwrite(xf, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || ftruncate(xf, sizeof(h))) {
			r = errno ? -errno : -EIO;
			goto fail;
		}
		/* The new names must outlive a crash as much as their bytes:
		 * a later checkpoint may speak of this segment. */
		if ((r = seg_sync_dir(topic_dir)) != 0)
			goto fail;
		*idx_entries = 0;
		last->end = first;
	} else {
		if (pread(xf, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || !seg_idx_hdr_ok(&h) ||
		    h.base != base || h.segment_bytes != segment_bytes) {
			r = -EBADMSG;
			goto fail;
		}
		*idx_entries = ((uint64_t)st.st_size - SEG_IDX_HDR_BYTES) / SEG_IDX_ENTRY_BYTES;
		last->end = h.first;
		if (*idx_entries &&
		    pread(xf, last, sizeof(*last),
			  (off_t)(SEG_IDX_HDR_BYTES + (*idx_entries - 1) * SEG_IDX_ENTRY_BYTES)) !=
			    (ssize_t)sizeof(*last)) {
			r = -EIO;
			goto fail;
		}
	}
	if (prealloc && fallocate(sf, FALLOC_FL_KEEP_SIZE, 0, (off_t)segment_bytes) &&
	    errno != EOPNOTSUPP) {
		r = -errno;
		goto fail;
	}
	*seg_fd = sf;
	*idx_fd = xf;
	return 0;
fail:
	close(sf);
	close(xf);
	return r;
}

/* CRC of a segment range read back from the file. */

/* --- the durable checkpoint ----------------------------------------------- */
struct seg_ckpt {
	uint64_t magic;
	uint64_t durable;
	uint32_t crc; /* CRC32C of the 16 bytes above */
	uint32_t zero;
};

int seg_ckpt_open(const char *topic_dir)
{
	char p[PATH_MAX];

	int fd;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", topic_dir, SEG_CKPT_NAME) >= sizeof(p))
		return -ENAMETOOLONG;
	fd = seg_open_file(p, O_RDWR | O_CREAT, 0600, true);
	if (fd >= 0)
		seg_share(fd, topic_dir);
	return fd;
}

_Static_assert(sizeof(struct seg_ckpt) == SEG_CKPT_BYTES, "checkpoint size");

void seg_ckpt_encode(void *buf, uint64_t durable)
{
	struct seg_ckpt c = { SEG_CKPT_MAGIC, durable, 0, 0 };

	c.crc = seg_crc32c(0, &c, 16);
	memcpy(buf, &c, sizeof(c));
}

int seg_ckpt_write(int fd, uint64_t durable)
{
	unsigned char c[SEG_CKPT_BYTES];

	seg_ckpt_encode(c, durable);
	/* One 24-byte write at offset 0, inside one sector: it lands whole or
	 * not at all. */
	if (pwrite(fd, c, sizeof(c), 0) != (ssize_t)sizeof(c))
		return errno ? -errno : -EIO;
	return fdatasync(fd) ? -errno : 0;
}

static int ckpt_load(const char *topic_dir, uint64_t *durable, bool own)
{
	char p[PATH_MAX];
	struct seg_ckpt c;
	ssize_t n;
	int fd;

	*durable = 0;
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", topic_dir, SEG_CKPT_NAME) >= sizeof(p))
		return -ENAMETOOLONG;
	fd = seg_open_file(p, O_RDONLY, 0, own);
	if (fd < 0)
		return fd;
	n = pread(fd, &c, sizeof(c), 0);
	close(fd);
	if (n == 0)
		return -ENOENT; /* created at attach, not written yet: none */
	if (n != (ssize_t)sizeof(c) || c.magic != SEG_CKPT_MAGIC || c.zero ||
	    c.crc != seg_crc32c(0, &c, 16))
		return -EBADMSG;
	*durable = c.durable;
	return 0;
}

int seg_ckpt_load(const char *topic_dir, uint64_t *durable)
{
	return ckpt_load(topic_dir, durable, true);
}

int seg_ckpt_peek(const char *topic_dir, uint64_t *durable)
{
	return ckpt_load(topic_dir, durable, false);
}

int seg_fill_gap(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		 uint64_t from, uint64_t to)
{
	static const uint8_t zero[4096];

	while (from < to) {
		uint64_t base = from - from % segment_bytes, lap_end = from - from % ring_bytes + ring_bytes;
		uint64_t span = to - from, entries, w;
		struct seg_idx_entry last, e;
		uint32_t crc;
		int sf, xf, r;

		if (span > lap_end - from)
			span = lap_end - from;
		if (span > (1ull << 31))
			span = 1ull << 31;
		r = seg_open(topic_dir, base, from, ring_bytes, segment_bytes, false, &sf, &xf,
			     &entries, &last);
		if (r)
			return r;
		w = ring_word(RING_T_ABORTED, span, from, ring_bytes);
		crc = seg_crc32c(0, &w, 8);
		for (uint64_t k = 8; k < span; k += sizeof(zero))
			crc = seg_crc32c(crc, zero, span - k < sizeof(zero) ? span - k : sizeof(zero));
		memset(&e, 0, sizeof(e));
		e.end = from + span;
		e.records = last.records;
		e.max_ts = last.max_ts;
		e.crc_data = crc;
		seg_idx_entry_seal(&e);
		if (ftruncate(sf, (off_t)(from + span - base)) ||
		    pwrite(sf, &w, 8, (off_t)(from - base)) != 8 ||
		    pwrite(xf, &e, sizeof(e), (off_t)(SEG_IDX_HDR_BYTES + entries * SEG_IDX_ENTRY_BYTES)) !=
			    (ssize_t)sizeof(e) ||
		    fdatasync(sf) || fdatasync(xf))
			r = errno ? -errno : -EIO;
		close(sf);
		close(xf);
		if (r)
			return r;
		from += span;
	}
	return 0;
}
