/* SPDX-License-Identifier: MIT */
/*
 * index.c - where the disk log lives and what its indexes say (spill/FORMAT.md):
 * topic and segment paths, the list of segments, index headers and entries
 * (built, sealed and checked; nothing read from disk is trusted).
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

void seg_idx_hdr_seal(struct seg_idx_hdr *h)
{
	h->crc = seg_crc32c(0, h, offsetof(struct seg_idx_hdr, crc));
}

void seg_idx_entry_seal(struct seg_idx_entry *e)
{
	e->crc = seg_crc32c(0, e, offsetof(struct seg_idx_entry, crc));
}

bool seg_idx_entry_ok(const struct seg_idx_entry *e)
{
	return e->crc == seg_crc32c(0, e, offsetof(struct seg_idx_entry, crc));
}

/* --- paths --------------------------------------------------------------- */
int seg_topic_dir(char *buf, size_t size, const char *data_dir, const char *topic)
{
	int r = spw_topic_name_check(topic);

	if (r)
		return r;
	if ((size_t)snprintf(buf, size, "%s/%s", data_dir, topic) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int seg_file_path(char *buf, size_t size, const char *topic_dir, uint64_t base, const char *ext)
{
	if ((size_t)snprintf(buf, size, "%s/%020llu.%s", topic_dir, (unsigned long long)base, ext) >=
	    size)
		return -ENAMETOOLONG;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int seg_list(const char *topic_dir, uint64_t **bases, size_t *n)
{
	DIR *d = seg_opendir(topic_dir);
	struct dirent *de;
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	*bases = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		size_t len = strlen(s);
		uint64_t base = 0;
		bool ok = len == 24 && strcmp(s + 20, ".seg") == 0;

		for (size_t i = 0; ok && i < 20; i++) {
			if (!isdigit((unsigned char)s[i]))
				ok = false;
			else
				base = base * 10 + (uint64_t)(s[i] - '0');
		}
		if (!ok)
			continue;
		if (cnt == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = base;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*bases = v;
	*n = cnt;
	return 0;
}

/* --- index files --------------------------------------------------------- */
/* A new index header, sealed (FORMAT.md). */
void seg_idx_hdr_init(struct seg_idx_hdr *h, uint64_t base, uint64_t first,
		      uint64_t segment_bytes, uint64_t ring_bytes)
{
	memset(h, 0, sizeof(*h));
	h->magic = SEG_IDX_MAGIC;
	h->version = SEG_IDX_VERSION;
	h->entry_bytes = SEG_IDX_ENTRY_BYTES;
	h->base = base;
	h->first = first;
	h->segment_bytes = segment_bytes;
	h->ring_bytes = ring_bytes;
	h->created_ns = ring_realtime_ns();
	seg_idx_hdr_seal(h);
}

bool seg_idx_hdr_ok(const struct seg_idx_hdr *h)
{
	return h->magic == SEG_IDX_MAGIC && h->version == SEG_IDX_VERSION &&
	       h->entry_bytes == SEG_IDX_ENTRY_BYTES &&
	       h->crc == seg_crc32c(0, h, offsetof(struct seg_idx_hdr, crc)) &&
	       h->ring_bytes && !(h->ring_bytes & (h->ring_bytes - 1)) && h->segment_bytes &&
	       h->segment_bytes % h->ring_bytes == 0 && h->base % h->segment_bytes == 0 &&
	       h->first >= h->base && h->first <= h->base + h->segment_bytes && !(h->first & 7);
}

int seg_idx_load(const char *idx_path, struct seg_idx_hdr *hdr, struct seg_idx_entry **entries)
{
	struct seg_idx_entry *e = NULL;
	struct stat st;
	size_t n, good = 0;
	uint64_t prev;
	int fd = seg_open_file(idx_path, O_RDONLY, 0, false), r;

	*entries = NULL;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || st.st_size < (off_t)SEG_IDX_HDR_BYTES ||
	    pread(fd, hdr, sizeof(*hdr), 0) != (ssize_t)sizeof(*hdr) || !seg_idx_hdr_ok(hdr)) {
		close(fd);
		return -EBADMSG;
	}
	n = ((size_t)st.st_size - SEG_IDX_HDR_BYTES) / SEG_IDX_ENTRY_BYTES;
	/* Each entry covers 8 bytes or more of its segment: an index longer
	 * than that is garbage past its last possible entry (not an allocation
	 * of its whole size). */
	if (n > hdr->segment_bytes / 8)
		n = (size_t)(hdr->segment_bytes / 8);
	if (n) {
		e = malloc(n * sizeof(*e));
		if (!e) {
			close(fd);
			return -ENOMEM;
		}
		if (pread(fd, e, n * sizeof(*e), SEG_IDX_HDR_BYTES) != (ssize_t)(n * sizeof(*e))) {
			r = -errno ? -errno : -EIO;
			free(e);
			close(fd);
			return r;
		}
	}
	close(fd);
	prev = hdr->first;
	for (good = 0; good < n; good++) {
		const struct seg_idx_entry *x = &e[good];

		if (!seg_idx_entry_ok(x) || x->end <= prev || (x->end & 7) ||
		    x->end > hdr->base + hdr->segment_bytes ||
		    (good && (x->records < e[good - 1].records || x->max_ts < e[good - 1].max_ts)))
			break;
		prev = x->end;
	}
	*entries = e;
	return (int)good;
}
