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
	uint64_t active = dt->s->spilled - dt->s->spilled % c->segment_bytes;
	struct seg_ret_plan p;

	if (seg_retention_plan(D.data_dir, dt->name, c, active, ring_realtime_ns(), &p))
		return;
	for (size_t i = 0; i < p.n; i++)
		delete_segment(dt, p.bases[i], p.why[i]);
	if (p.forced) {
		dlog(LOG_WARN, dt->name,
		     "retention: deleted %zu segment(s) group \"%s\" had not read (past "
		     "retention_max_lag): its next read says -ERANGE; see spillway stat",
		     p.forced, p.forced_group);
		spwd_add_retention_forced(dt->t, p.forced);
	}
	if (p.held_bytes && (dt->held_said != p.held_bytes / (64u << 20) + 1)) {
		dt->held_said = p.held_bytes / (64u << 20) + 1; /* again every 64 MiB more */
		if (p.holder_err)
			dlog(LOG_WARN, dt->name,
			     "retention: keeping %llu bytes past retention for group \"%s\", whose "
			     "position cannot be read (%s: fix or remove %s/groups/%s, or let "
			     "group_expiry or retention_max_lag end it)",
			     (unsigned long long)p.held_bytes, p.holder, strerror(-p.holder_err),
			     dt->dir, strcmp(p.holder, "groups") ? p.holder : "");
		else
			dlog(LOG_INFO, dt->name,
			     "retention: keeping %llu bytes past retention for group \"%s\" (at %lld)",
			     (unsigned long long)p.held_bytes, p.holder, (long long)p.holder_pos);
	}
	seg_ret_plan_free(&p);
}
