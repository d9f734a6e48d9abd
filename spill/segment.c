/* SPDX-License-Identifier: MIT */
/*
 * segment.c - the disk log's format (spill/FORMAT.md): CRC32C, paths,
 * index files, topic settings, recovery of a torn tail, gap records.
 * Nothing read from disk is trusted: every header and entry is checked
 * (magic, CRC, order, bounds) before use.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <ctype.h>
#include <pthread.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- CRC32C (Castagnoli): SSE4.2 when the CPU has it, else a table. ------- */
static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
		crc_table[i] = c;
	}
}

#if defined(__x86_64__)
#define LANE 4096u /* bytes per lane of the 3-way CRC below */
static uint64_t crc_3way(uint64_t c, const uint8_t *p);

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n && ((uintptr_t)p & 7); n--, p++)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	for (; n >= 3 * LANE; n -= 3 * LANE, p += 3 * LANE)
		c = crc_3way(c, p);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; n; n--, p++)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return (uint32_t)c;
}
#endif

#if defined(__x86_64__)
/* Three interleaved crc32q chains (the instruction has a latency of 3 and a
 * throughput of 1 a cycle, so one chain runs at a third of the speed), over
 * three consecutive lanes of LANE bytes, joined by linearity: for the raw
 * register f, f(s, A|B) = M_|B| f(s, A) ^ f(0, B), where M_n (feeding n zero
 * bytes) is a 32x32 matrix over GF(2) built once from the instruction. */
static uint32_t lane_shift[32]; /* column i: M_LANE applied to bit i */

__attribute__((target("sse4.2"))) static void lane_shift_init(void)
{
	for (int i = 0; i < 32; i++) {
		uint64_t c = 1u << i;

		for (unsigned k = 0; k < LANE; k += 8)
			c = __builtin_ia32_crc32di(c, 0);
		lane_shift[i] = (uint32_t)c;
	}
}

static uint32_t shift_lane(uint32_t v)
{
	uint32_t r = 0;

	for (int i = 0; i < 32; i++)
		r ^= lane_shift[i] & (0u - ((v >> i) & 1u));
	return r;
}

__attribute__((target("sse4.2"))) static uint64_t crc_3way(uint64_t c, const uint8_t *p)
{
	uint64_t b = 0, d = 0;
	const uint8_t *q = p + LANE, *r = p + 2 * LANE;

	for (unsigned k = 0; k < LANE; k += 8) {
		uint64_t x, y, z;

		memcpy(&x, p + k, 8);
		memcpy(&y, q + k, 8);
		memcpy(&z, r + k, 8);
		c = __builtin_ia32_crc32di(c, x);
		b = __builtin_ia32_crc32di(b, y);
		d = __builtin_ia32_crc32di(d, z);
	}
	return shift_lane(shift_lane((uint32_t)c) ^ (uint32_t)b) ^ (uint32_t)d;
}
#endif

static int crc_mode; /* 1 hw, 2 table; set once by crc_init */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2")) {
		lane_shift_init();
		crc_mode = 1;
		return;
	}
#endif
	crc_table_init();
	crc_mode = 2;
}

uint32_t seg_crc32c(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init); /* orders the tables before their use */
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_mode == 1)
		return ~crc_hw(crc, p, n);
#endif
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

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
static void idx_hdr_init(struct seg_idx_hdr *h, uint64_t base, uint64_t first,
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

static bool idx_hdr_ok(const struct seg_idx_hdr *h)
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
	    pread(fd, hdr, sizeof(*hdr), 0) != (ssize_t)sizeof(*hdr) || !idx_hdr_ok(hdr)) {
		close(fd);
		return -EBADMSG;
	}
	n = ((size_t)st.st_size - SEG_IDX_HDR_BYTES) / SEG_IDX_ENTRY_BYTES;
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

/* --- topic settings -------------------------------------------------------- */
void seg_conf_defaults(struct topic_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->ring_bytes = 64ull << 20;
	c->segment_bytes = 1ull << 30;
	c->max_record = 1u << 20;
	c->mode = 0600;
	c->retention_ms = 14ull * 24 * 3600 * 1000;
	c->flush_ms = 1000;
	c->flush_bytes = 64ull << 20;
	c->unblock_ms = 1000;
	c->max_producers = 64;
}

int seg_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	case 'B': break;
	default: return -EINVAL;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int seg_parse_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	double v, mul;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	if (!strcmp(end, "") || !strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s"))
		mul = 1e3;
	else if (!strcmp(end, "m"))
		mul = 60e3;
	else if (!strcmp(end, "h"))
		mul = 3600e3;
	else if (!strcmp(end, "d"))
		mul = 86400e3;
	else
		return -EINVAL;
	if (v * mul > 1e15)
		return -EINVAL;
	*out = (uint64_t)(v * mul + 0.5);
	return 0;
}

int seg_conf_load(const char *topic_dir, struct topic_conf *c)
{
	char path[PATH_MAX], line[512], key[64], val[256];
	FILE *f;
	int r = 0;

	seg_conf_defaults(c);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", topic_dir, SEG_CONF_NAME) >= sizeof(path))
		return -ENAMETOOLONG;
	{
		int fd = seg_open_file(path, O_RDONLY, 0, false);

		if (fd < 0)
			return fd;
		f = fdopen(fd, "r");
		if (!f) {
			close(fd);
			return -ENOMEM;
		}
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t v;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, " %63[a-z_] = %255s", key, val) != 2) {
			r = -EBADMSG;
			break;
		}
		if (!strcmp(key, "mode")) {
			char *end;

			v = strtoull(val, &end, 8);
			if (*end || v > 0777) {
				r = -EBADMSG;
				break;
			}
			c->mode = (uint32_t)v;
			continue;
		}
		if (!strcmp(key, "retention") || !strcmp(key, "flush_ms") || !strcmp(key, "unblock_ms"))
			r = seg_parse_duration_ms(val, &v);
		else
			r = seg_parse_size(val, &v);
		if (r) {
			r = -EBADMSG;
			break;
		}
		if (!strcmp(key, "ring_bytes")) c->ring_bytes = v;
		else if (!strcmp(key, "segment_bytes")) c->segment_bytes = v;
		else if (!strcmp(key, "max_record")) c->max_record = (uint32_t)v;
		else if (!strcmp(key, "no_spill")) c->no_spill = v != 0;
		else if (!strcmp(key, "retention")) c->retention_ms = v;
		else if (!strcmp(key, "retention_bytes")) c->retention_bytes = v;
		else if (!strcmp(key, "flush_ms")) c->flush_ms = v;
		else if (!strcmp(key, "flush_bytes")) c->flush_bytes = v;
		else if (!strcmp(key, "unblock_ms")) c->unblock_ms = v;
		else if (!strcmp(key, "max_producers")) c->max_producers = v <= 4096 ? (uint32_t)v : 0;
		/* unknown keys are ignored: newer versions may add some */
	}
	fclose(f);
	if (!r && (!c->ring_bytes || (c->ring_bytes & (c->ring_bytes - 1)) ||
		   !c->segment_bytes || c->segment_bytes % c->ring_bytes ||
		   c->max_record > c->ring_bytes / 4 || !c->flush_bytes || !c->max_producers))
		r = -EBADMSG;
	return r;
}

int seg_conf_save(const char *topic_dir, const struct topic_conf *c)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", topic_dir, SEG_CONF_NAME) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%d", topic_dir, SEG_CONF_NAME, (int)getpid()) >=
		    sizeof(tmp))
		return -ENAMETOOLONG;
	/* O_EXCL through O_NOFOLLOW: a name planted there is never followed;
	 * a stale temp file of ours is removed first. */
	seg_unlink(tmp);
	fd = seg_open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, true);
	if (fd < 0)
		return fd;
	seg_share(fd, topic_dir);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		seg_unlink(tmp);
		return -ENOMEM;
	}
	fprintf(f,
		"# spillway topic settings (spill/FORMAT.md)\n"
		"ring_bytes = %llu\nsegment_bytes = %llu\nmax_record = %u\nmode = %03o\n"
		"no_spill = %d\nretention = %llums\nretention_bytes = %llu\nflush_ms = %llu\n"
		"flush_bytes = %llu\nunblock_ms = %llu\nmax_producers = %u\n",
		(unsigned long long)c->ring_bytes, (unsigned long long)c->segment_bytes,
		c->max_record, c->mode, c->no_spill, (unsigned long long)c->retention_ms,
		(unsigned long long)c->retention_bytes, (unsigned long long)c->flush_ms,
		(unsigned long long)c->flush_bytes, (unsigned long long)c->unblock_ms,
		c->max_producers);
	if (fflush(f) || fsync(fileno(f))) {
		int e = errno;

		fclose(f);
		seg_unlink(tmp);
		return -e;
	}
	fclose(f);
	{
		int r = seg_rename(tmp, path);

		if (r) {
			seg_unlink(tmp);
			return r;
		}
	}
	return 0;
}

/* --- segments -------------------------------------------------------------- */
/* The fault seam's word: the first line of $SPILLWAY_FAULT_FILE (tests
 * only). false when the variable is unset or the file absent (no fault). */
static bool fault_word(char *buf, size_t size)
{
	const char *p = getenv("SPILLWAY_FAULT_FILE");
	FILE *f;

	buf[0] = '\0';
	if (!p || !*p || !(f = fopen(p, "re")))
		return false;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	return true;
}

int seg_fault_check(void)
{
	char buf[32];

	if (!fault_word(buf, sizeof(buf)) || !strncmp(buf, "FSYNC", 5) ||
	    !strncmp(buf, "SUBMIT", 6))
		return 0; /* none, or fdatasync / io_uring_submit only */
	if (!strncmp(buf, "EIO", 3))
		return -EIO;
	if (isdigit((unsigned char)buf[0]))
		return -atoi(buf);
	return -ENOSPC;
}

int seg_fault_submit(void)
{
	char buf[32];

	fault_word(buf, sizeof(buf));
	return strncmp(buf, "SUBMIT", 6) ? 0 : -EBUSY;
}

int seg_fault_fsync(void)
{
	char buf[32];

	fault_word(buf, sizeof(buf));
	return strncmp(buf, "FSYNC", 5) ? 0 : -EIO;
}

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
		idx_hdr_init(&h, base, first, segment_bytes, ring_bytes);
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
		if (pread(xf, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || !idx_hdr_ok(&h) ||
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

/* One index entry for the segment bytes [a, p), appended at xf's offset. */
static int put_entry(int xf, const uint8_t *map, uint64_t base, uint64_t a, uint64_t p,
		     uint64_t records, uint64_t max_ts)
{
	struct seg_idx_entry e;

	memset(&e, 0, sizeof(e));
	e.end = p;
	e.records = records;
	e.max_ts = max_ts;
	e.crc_data = seg_crc32c(0, map + (a - base), (size_t)(p - a));
	seg_idx_entry_seal(&e);
	return write(xf, &e, sizeof(e)) == (ssize_t)sizeof(e) ? 0 : (errno ? -errno : -EIO);
}

/* The last index is empty, short or unreadable while its segment holds
 * bytes (a crash right after a roll, before the index reached the disk):
 * rebuild it from the segment, record by record (ring_word_check), with
 * entries cut as the writer cuts them (<= SEG_ENTRY_SPAN, never across a
 * ring lap). Recovery then verifies it like any other. first: where the
 * log starts in this segment (the previous segment's end), or 0 to take
 * the first non-zero word. */
static int idx_rebuild(const char *sp, const char *ip, uint64_t base, uint64_t first,
		       uint64_t ring_bytes, uint64_t segment_bytes)
{
	struct seg_idx_hdr h;
	struct stat st;
	uint8_t *map;
	uint64_t p, a, records = 0, max_ts = 0, size;
	int sf, xf, r = 0;

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
	xf = seg_open_file(ip, O_RDWR | O_CREAT, 0600, true);
	if (xf < 0 || ftruncate(xf, 0)) {
		r = xf < 0 ? xf : -errno;
		if (xf >= 0)
			close(xf);
		munmap(map, size);
		return r;
	}
	idx_hdr_init(&h, base, first, segment_bytes, ring_bytes);
	/* The header, then the entries with write() after it. */
	if (write(xf, &h, sizeof(h)) != (ssize_t)sizeof(h))
		r = errno ? -errno : -EIO;
	for (p = a = first; !r && p < base + size;) {
		uint64_t w, lap_end = (p & ~(ring_bytes - 1)) + ring_bytes, ts = 0;
		int64_t span;

		memcpy(&w, map + (p - base), 8);
		span = ring_word_check(w, p, ring_bytes, SPW_RECORD_MAX_BYTES);
		if (span <= 0 || p + (uint64_t)span > base + size)
			break; /* the end of what was written whole */
		if (p > a && p + (uint64_t)span - a > SEG_ENTRY_SPAN) {
			r = put_entry(xf, map, base, a, p, records, max_ts);
			a = p;
		}
		if (RING_W_TYPE(w) == RING_T_DATA) {
			records++;
			if (span >= 16)
				memcpy(&ts, map + (p - base) + 8, 8);
			if (ts > max_ts)
				max_ts = ts;
		}
		p += (uint64_t)span;
		if ((p == lap_end || !(p < base + size)) && p > a) {
			/* The writer never lets an entry cross a lap. */
			r = put_entry(xf, map, base, a, p, records, max_ts);
			a = p;
		}
	}
	if (!r && p > a)
		r = put_entry(xf, map, base, a, p, records, max_ts);
	if (!r && fdatasync(xf))
		r = -errno;
	close(xf);
	munmap(map, size);
	return r;
}

int seg_recover(const char *topic_dir, uint64_t ring_bytes, uint64_t segment_bytes,
		struct seg_recovery *out, char *err, size_t errlen)
{
	char sp[PATH_MAX], ip[PATH_MAX];
	struct seg_idx_entry *e = NULL;
	struct seg_idx_hdr h, h0;
	uint64_t *bases = NULL, last, end, prev, idx_high;
	size_t n;
	struct stat st;
	int r, good, sf = -1;
	bool rebuilt_once = false, said = false;

	memset(out, 0, sizeof(*out));
	r = seg_list(topic_dir, &bases, &n);
	if (r == -ENOENT || (!r && n == 0)) {
		free(bases);
		out->empty = true;
		return 0;
	}
	if (r)
		return r;
	/* Links where our own files belong are refused, never followed or
	 * removed: someone else put them there. */
	for (size_t i = 0; i < n; i++) {
		static const char *const ext[] = { "seg", "idx" };

		for (int k = 0; k < 2; k++) {
			struct stat ls;

			if (seg_file_path(sp, sizeof(sp), topic_dir, bases[i], ext[k]) == 0 &&
			    seg_lstat(sp, &ls) == 0 && !S_ISREG(ls.st_mode)) {
				snprintf(err, errlen,
					 "%s: %s where spillwayd keeps its own file: refused, never "
					 "followed (remove it)",
					 sp, S_ISLNK(ls.st_mode) ? "a symbolic link" : "not a regular file");
				free(bases);
				return -ELOOP;
			}
		}
	}
	/* A segment whose creation was cut short (empty .seg, index missing or
	 * shorter than its header) holds nothing: remove it. */
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
	if (n == 0) {
		free(bases);
		out->empty = true;
		return 0;
	}
	out->segments = n;
	last = bases[n - 1];
	/* The oldest segment's header names where the kept log starts. */
	if (seg_file_path(ip, sizeof(ip), topic_dir, bases[0], "idx") == 0) {
		good = seg_idx_load(ip, &h0, &e);
		free(e);
		e = NULL;
		out->first = good >= 0 ? h0.first : bases[0];
	}
	free(bases);
	if (seg_file_path(sp, sizeof(sp), topic_dir, last, "seg") ||
	    seg_file_path(ip, sizeof(ip), topic_dir, last, "idx"))
		return -ENAMETOOLONG;
	good = seg_idx_load(ip, &h, &e);
	if (good < 0) {
		/* An empty or unreadable last index beside a segment with bytes:
		 * rebuild it rather than refuse the topic. It starts where the
		 * segment before ends (or at the first written word). */
		uint64_t from = 0;

		if (out->segments > 1) {
			char pp[PATH_MAX];
			struct seg_idx_hdr ph;
			struct seg_idx_entry *pe = NULL;
			int pg;

			if (seg_file_path(pp, sizeof(pp), topic_dir, last - segment_bytes, "idx") == 0 &&
			    (pg = seg_idx_load(pp, &ph, &pe)) > 0 && pe[pg - 1].end == last)
				from = pe[pg - 1].end; /* else: from the first written word */
			free(pe);
		}
		if (idx_rebuild(sp, ip, last, from, ring_bytes, segment_bytes) == 0) {
			out->idx_rebuilt = true;
			good = seg_idx_load(ip, &h, &e);
		}
	}
	idx_high = good > 0 ? e[good - 1].end : 0;
	if (good < 0) {
		snprintf(err, errlen, "%s: unreadable index header (%s)", ip, strerror(-good));
		return good;
	}
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
	/* Verify every entry's bytes; the log ends after the last good one,
	 * except that nothing below the durable checkpoint is ever cut: a bad
	 * CRC there is damage to report (readers get -EBADMSG naming the file
	 * and position), not a torn tail, and the good entries after it stay. */
	if (seg_ckpt_load(topic_dir, &out->checkpoint))
		out->checkpoint = 0;
verify:
	prev = h.first;
	end = h.first;
	out->bad_ranges = 0;
	for (int i = 0; i < good; i++) {
		uint32_t crc = 0;

		if (e[i].end - last > (uint64_t)st.st_size ||
		    file_crc(sf, prev - last, e[i].end - prev, &crc) || crc != e[i].crc_data) {
			if (e[i].end <= out->checkpoint && e[i].end - last <= (uint64_t)st.st_size) {
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
	if (out->checkpoint > end && !rebuilt_once && out->checkpoint > last) {
		/* Below the checkpoint the index stops short: the index may be
		 * what is damaged. Rebuild it from the records once and verify
		 * again before judging the bytes. */
		rebuilt_once = true;
		free(e);
		e = NULL;
		if (idx_rebuild(sp, ip, last, h.first, ring_bytes, segment_bytes) == 0 &&
		    (good = seg_idx_load(ip, &h, &e)) >= 0) {
			out->idx_rebuilt = true;
			goto verify;
		}
		good = 0;
	}
	if (out->checkpoint > end) {
		/* Durable bytes that cannot be verified: never cut them. */
		out->lost_durable = out->checkpoint - end;
		snprintf(err, errlen,
			 "%s: the log verifies only up to %llu but %llu is durable (checkpoint): "
			 "refusing to cut acknowledged data; see spillway verify, then move the "
			 "damaged segment away (or restore it) to continue",
			 sp, (unsigned long long)end, (unsigned long long)out->checkpoint);
		said = true;
		r = -EBADMSG;
		goto out;
	}
	out->high = last + (uint64_t)st.st_size > end ? last + (uint64_t)st.st_size : end;
	if (idx_high > out->high)
		out->high = idx_high;
	out->high = (out->high + 7) & ~7ull;
	if ((uint64_t)st.st_size > end - last) {
		out->truncated = (uint64_t)st.st_size - (end - last);
		if (ftruncate(sf, (off_t)(end - last))) {
			r = -errno;
			goto out;
		}
	}
	{
		int xf = seg_open_file(ip, O_RDWR, 0, true);

		r = xf < 0 ? xf
			   : ftruncate(xf, (off_t)(SEG_IDX_HDR_BYTES + (uint64_t)good * SEG_IDX_ENTRY_BYTES))
				     ? -errno
				     : 0;
		if (xf >= 0)
			close(xf);
	}
	if (!r && out->truncated && fsync(sf))
		r = -errno;
out:
	free(e);
	close(sf);
	if (r && !said)
		snprintf(err, errlen, "%s: recovery failed: %s", sp, strerror(-r));
	return r;
}

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

int seg_ckpt_load(const char *topic_dir, uint64_t *durable)
{
	char p[PATH_MAX];
	struct seg_ckpt c;
	ssize_t n;
	int fd;

	*durable = 0;
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", topic_dir, SEG_CKPT_NAME) >= sizeof(p))
		return -ENAMETOOLONG;
	fd = seg_open_file(p, O_RDONLY, 0, true);
	if (fd < 0)
		return fd;
	n = pread(fd, &c, sizeof(c), 0);
	close(fd);
	if (n != (ssize_t)sizeof(c) || c.magic != SEG_CKPT_MAGIC || c.zero ||
	    c.crc != seg_crc32c(0, &c, 16))
		return -EBADMSG;
	*durable = c.durable;
	return 0;
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
