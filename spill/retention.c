/* SPDX-License-Identifier: MIT */
/*
 * retention.c - what retention deletes, and who holds it back (docs/daemon.md,
 * "Retention"). The daemon deletes by this plan (daemon/retention.c) and
 * `spillway stat` shows it, so both tell the same story.
 *
 * A segment (below the one being written) is past retention when its newest
 * record is older than `retention`, or the log is bigger than
 * `retention_bytes`. With `retention_respect_groups` (the default) it is kept
 * while a consumer group has not read all of it, so a group a day behind does
 * not lose its data silently; a group silent for `group_expiry` holds
 * nothing. Past a cap it goes anyway: the bytes kept for groups beyond
 * `retention_bytes` over `retention_max_lag`, or a segment older than
 * `retention` + `retention_max_lag_time`. Such a deletion is "forced": the
 * group's next read says -ERANGE with the lost range, and the daemon logs and
 * counts it.
 */
#include "spill.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct holders {
	const char *dir;       /* <topic>/groups */
	uint64_t now_ns, expiry_ns;
	int64_t min_pos;       /* the slowest live group's position, or -1 */
	char name[SPW_NAME_MAX + 1];
	int err;               /* that group's file could not be read: -errno */
};

static int on_group(void *arg, const char *group, int64_t position)
{
	struct holders *h = arg;
	char p[PATH_MAX];
	struct stat st;
	int err = 0;

	/* Unreadable (another user's, damaged, a link): where that group is
	 * cannot be told, so it holds everything, as a group at the log's
	 * start would, up to the caps (principle 2: nothing deleted silently
	 * for a reader we cannot see); group_expiry still applies. */
	if (position < 0) {
		err = (int)position;
		position = 0;
	}
	if (h->expiry_ns && (size_t)snprintf(p, sizeof(p), "%s/%s", h->dir, group) < sizeof(p) &&
	    !seg_lstat(p, &st) &&
	    (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec +
			    h->expiry_ns < h->now_ns)
		return 0; /* silent longer than group_expiry: holds nothing */
	if (h->min_pos < 0 || position < h->min_pos || (position == h->min_pos && err)) {
		h->min_pos = position;
		h->err = err;
		snprintf(h->name, sizeof(h->name), "%s", group);
	}
	return 0;
}

static int plan_add(struct seg_ret_plan *p, uint64_t base, const char *why)
{
	uint64_t *b = realloc(p->bases, (p->n + 1) * sizeof(*b));
	const char **w;

	if (!b)
		return -ENOMEM;
	p->bases = b;
	w = realloc(p->why, (p->n + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	p->why = w;
	p->bases[p->n] = base;
	p->why[p->n++] = why;
	return 0;
}

/* Is segment i (its index newest timestamp) older than ms before now? A
 * segment whose records all have time 0 (spw_producer_send_at's "no time")
 * has no age: kept, as far as age goes. */
static bool older_than(const char *dir, uint64_t base, uint64_t ms, uint64_t now_ns)
{
	char ip[PATH_MAX];
	struct seg_idx_hdr h;
	struct seg_idx_entry *e = NULL;
	bool old = false;
	int k;

	if (!ms || seg_file_path(ip, sizeof(ip), dir, base, "idx"))
		return false;
	k = seg_idx_load(ip, &h, &e);
	if (k > 0 && e[k - 1].max_ts != 0)
		old = e[k - 1].max_ts + ms * 1000000ull < now_ns;
	free(e);
	return old;
}

int seg_retention_plan(const char *data_dir, const char *topic, const struct topic_conf *c,
		       uint64_t active_base, uint64_t now_ns, struct seg_ret_plan *p)
{
	char dir[PATH_MAX], sp[PATH_MAX];
	struct holders h = { .now_ns = now_ns, .min_pos = -1 };
	uint64_t *bases, total = 0;
	struct stat st;
	size_t n;
	int r;

	memset(p, 0, sizeof(*p));
	p->holder_pos = -1;
	if (c->no_spill || seg_topic_dir(dir, sizeof(dir), data_dir, topic))
		return 0;
	r = seg_list(dir, &bases, &n);
	if (r)
		return r == -ENOENT ? 0 : r;
	for (size_t i = 0; i < n; i++)
		if (!seg_file_path(sp, sizeof(sp), dir, bases[i], "seg") && !seg_lstat(sp, &st))
			total += (uint64_t)st.st_size;
	if (c->retention_respect_groups) {
		char gd[PATH_MAX + 8];

		snprintf(gd, sizeof(gd), "%s/groups", dir);
		h.dir = gd;
		h.expiry_ns = c->group_expiry_ms * 1000000ull;
		r = spw_group_list(data_dir, topic, on_group, &h);
		if (r < 0) { /* the groups dir itself: none of its groups can be seen */
			h.min_pos = 0;
			h.err = r;
			snprintf(h.name, sizeof(h.name), "groups");
		}
		r = 0;
	}
	for (size_t i = 0; i < n && bases[i] < active_base && !r; i++) {
		uint64_t end = i + 1 < n ? bases[i + 1] : active_base, size = 0;
		bool old = older_than(dir, bases[i], c->retention_ms, now_ns);
		bool big = c->retention_bytes && total > c->retention_bytes;
		bool held = h.min_pos >= 0 && (uint64_t)h.min_pos < end;

		if (!old && !big)
			break;
		if (!seg_file_path(sp, sizeof(sp), dir, bases[i], "seg") && !seg_lstat(sp, &st))
			size = (uint64_t)st.st_size;
		if (held) {
			bool over_bytes = c->retention_max_lag &&
					  total > c->retention_bytes + c->retention_max_lag;
			bool over_age = c->retention_max_lag_ms &&
					older_than(dir, bases[i],
						   c->retention_ms + c->retention_max_lag_ms, now_ns);

			if (!over_bytes && !over_age) {
				/* Kept for the group, and so is every newer one. */
				for (size_t k = i; k < n && bases[k] < active_base; k++)
					if (!seg_file_path(sp, sizeof(sp), dir, bases[k], "seg") &&
					    !seg_lstat(sp, &st) && (uint64_t)bases[k] < (uint64_t)h.min_pos)
						p->held_bytes += (uint64_t)st.st_size;
				if (!p->held_bytes)
					p->held_bytes = size;
				snprintf(p->holder, sizeof(p->holder), "%s", h.name);
				p->holder_pos = h.min_pos;
				p->holder_err = h.err;
				break;
			}
			p->forced++;
			snprintf(p->forced_group, sizeof(p->forced_group), "%s", h.name);
			r = plan_add(p, bases[i], over_bytes ? "size, past retention_max_lag"
							     : "age, past retention_max_lag_time");
		} else {
			r = plan_add(p, bases[i], old ? "age" : "size");
		}
		total -= size < total ? size : total;
	}
	free(bases);
	if (r)
		seg_ret_plan_free(p);
	return r;
}

void seg_ret_plan_free(struct seg_ret_plan *p)
{
	free(p->bases);
	free(p->why);
	p->bases = NULL;
	p->why = NULL;
	p->n = 0;
}
