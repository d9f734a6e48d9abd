/* SPDX-License-Identifier: MIT */
/*
 * retention.c - retention: segments older than a topic's retention or beyond its
 * byte limit are deleted, oldest first, never the one being written.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- retention --------------------------------------------------------------- */
static void delete_segment(struct dtopic *dt, uint64_t base, const char *why)
{
	char p[PATH_MAX];

	if (!seg_file_path(p, sizeof(p), dt->dir, base, "seg"))
		seg_unlink(p);
	if (!seg_file_path(p, sizeof(p), dt->dir, base, "idx"))
		seg_unlink(p);
	dlog(LOG_INFO, dt->name, "retention: deleted segment %020llu (%s)", (unsigned long long)base,
	     why);
}

void retention(struct dtopic *dt)
{
	const struct topic_conf *c = &dt->s->conf;
	uint64_t *bases, active = dt->s->spilled - dt->s->spilled % c->segment_bytes, total = 0;
	uint64_t now = ring_realtime_ns();
	size_t n, i;
	char p[PATH_MAX];
	struct stat st;

	if (c->no_spill || seg_list(dt->dir, &bases, &n))
		return;
	for (i = 0; i < n; i++)
		if (!seg_file_path(p, sizeof(p), dt->dir, bases[i], "seg") && !seg_lstat(p, &st))
			total += (uint64_t)st.st_size;
	for (i = 0; i < n && bases[i] < active; i++) {
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		int good;
		bool old = false, big = c->retention_bytes && total > c->retention_bytes;

		if (c->retention_ms && !seg_file_path(p, sizeof(p), dt->dir, bases[i], "idx")) {
			good = seg_idx_load(p, &h, &e);
			if (good > 0)
				old = e[good - 1].max_ts + c->retention_ms * 1000000ull < now;
			free(e);
		}
		if (!old && !big)
			break;
		if (!seg_file_path(p, sizeof(p), dt->dir, bases[i], "seg") && !seg_lstat(p, &st))
			total -= (uint64_t)st.st_size < total ? (uint64_t)st.st_size : total;
		delete_segment(dt, bases[i], old ? "age" : "size");
	}
	free(bases);
}
