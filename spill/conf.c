/* SPDX-License-Identifier: MIT */
/*
 * conf.c - topic settings (<topic>/topic.conf, spill/FORMAT.md) and the size and
 * duration syntax the CLI and the daemon share.
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
	c->retention_respect_groups = true;
	c->retention_max_lag = 0;
	c->retention_max_lag_ms = 7ull * 24 * 3600 * 1000;
	c->group_expiry_ms = 7ull * 24 * 3600 * 1000;
}

int seg_parse_scaled(const char *s, uint64_t step, const char *units, bool bytes,
		     uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	const char *u;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && (u = strchr(units, toupper((unsigned char)*end))) != NULL) {
		for (const char *k = units; k <= u; k++)
			mul *= step;
		end++;
	}
	if (bytes && mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (bytes && (*end == 'B' || *end == 'b'))
		end++;
	if (*end || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int seg_parse_size(const char *s, uint64_t *out)
{
	return seg_parse_scaled(s, 1024, "KMGT", true, out);
}

int seg_parse_duration(const char *s, double bare_ms, double *ms)
{
	char *end;
	double v, mul;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	if (!strcmp(end, ""))
		mul = bare_ms;
	else if (!strcmp(end, "ms"))
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
	*ms = v * mul;
	return 0;
}

int seg_parse_duration_ms(const char *s, uint64_t *out)
{
	double ms;

	if (seg_parse_duration(s, 1, &ms) || ms > 1e15)
		return -EINVAL;
	*out = (uint64_t)(ms + 0.5);
	return 0;
}

int seg_conf_load(const char *topic_dir, struct topic_conf *c)
{
	return seg_conf_load_why(topic_dir, c, NULL);
}

int seg_conf_load_why(const char *topic_dir, struct topic_conf *c, unsigned *bad_line)
{
	char path[PATH_MAX], line[512], key[64], val[256];
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	if (bad_line)
		*bad_line = 0;

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
		int tail = -1;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		/* The whole line: a value followed by anything but blanks or a
		 * "# comment" ("7 days", "10 GB") is refused, not read up to its
		 * first blank. */
		if (sscanf(line, " %63[a-z_] = %255s %n", key, val, &tail) != 2 || tail < 0 ||
		    (line[tail] != '\0' && line[tail] != '#')) {
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
		if (!strcmp(key, "retention") || !strcmp(key, "flush_ms") || !strcmp(key, "unblock_ms") ||
		    !strcmp(key, "retention_max_lag_time") || !strcmp(key, "group_expiry"))
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
		else if (!strcmp(key, "retention_respect_groups")) c->retention_respect_groups = v != 0;
		else if (!strcmp(key, "retention_max_lag")) c->retention_max_lag = v;
		else if (!strcmp(key, "retention_max_lag_time")) c->retention_max_lag_ms = v;
		else if (!strcmp(key, "group_expiry")) c->group_expiry_ms = v;
		/* unknown keys are ignored: newer versions may add some */
	}
	fclose(f);
	if (r && bad_line)
		*bad_line = lineno;
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
		"flush_bytes = %llu\nunblock_ms = %llu\nmax_producers = %u\n"
		"retention_respect_groups = %d\nretention_max_lag = %llu\n"
		"retention_max_lag_time = %llums\ngroup_expiry = %llums\n",
		(unsigned long long)c->ring_bytes, (unsigned long long)c->segment_bytes,
		c->max_record, c->mode, c->no_spill, (unsigned long long)c->retention_ms,
		(unsigned long long)c->retention_bytes, (unsigned long long)c->flush_ms,
		(unsigned long long)c->flush_bytes, (unsigned long long)c->unblock_ms,
		c->max_producers, c->retention_respect_groups,
		(unsigned long long)c->retention_max_lag, (unsigned long long)c->retention_max_lag_ms,
		(unsigned long long)c->group_expiry_ms);
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
	/* The rename outlives a crash: a topic.conf lost after its ring and
	 * segments were made leaves settings that no longer match them. */
	return seg_sync_dir(topic_dir);
}

/* <topic_dir>/ring_id: "spillway ring <created_ns>\n" (FORMAT.md). */
int seg_ring_id_load(const char *topic_dir, uint64_t *created_ns)
{
	char path[PATH_MAX], buf[64], tail;
	unsigned long long v;
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", topic_dir, SEG_RING_ID_NAME) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	fd = seg_open_file(path, O_RDONLY, 0, true);
	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "spillway ring %llu%c", &v, &tail) != 2 || tail != '\n' || !v ||
	    strlen(buf) != (size_t)n)
		return -EBADMSG;
	*created_ns = v;
	return 0;
}

int seg_ring_id_save(const char *topic_dir, uint64_t created_ns)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "spillway ring %llu\n", (unsigned long long)created_ns);

	return seg_file_replace(topic_dir, SEG_RING_ID_NAME, buf, (size_t)n, true, -1);
}
