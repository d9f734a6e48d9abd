/* SPDX-License-Identifier: MIT */
/*
 * cmd_topic.c - spillway topic create | list | describe | delete.
 *
 * create writes <data>/<topic>/topic.conf before it links the ring, so a
 * running spillwayd, which attaches as soon as the ring appears, finds the
 * retention and flush settings already there. delete unlinks the ring (the
 * daemon detaches) and then removes the topic's data dir.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char topic_usage[] =
	"usage: spillway topic create NAME [options]   create a topic (see: topic create --help)\n"
	"       spillway topic list                    every topic: ring, tail, fill, disk, daemon\n"
	"       spillway topic describe NAME           settings, counters, files, groups\n"
	"       spillway topic delete NAME             remove the ring and the topic's data dir\n"
	"       spillway topic delete NAME --keep-log  remove the ring only (spillwayd remakes it)\n"
	CLI_COMMON_HELP;

static const char create_usage[] =
	"usage: spillway topic create NAME [options]\n"
	"Create a topic: its ring in the shm dir, its settings in <data-dir>/NAME/topic.conf\n"
	"(written first, so a running spillwayd uses them when it attaches).\n"
	"  --ring-size SIZE        ring bytes, a power of two >= 64K (default 64M)\n"
	"  --segment-size SIZE     segment file bytes, a multiple of the ring size\n"
	"                          (default 1G, or the ring size when larger)\n"
	"  --max-record SIZE       largest record, at most ring/4 (default 1M or ring/4)\n"
	"  --retention DURATION    delete segments older than this (default 14d; 0 = keep)\n"
	"  --retention-bytes SIZE  delete the oldest segments beyond this total (0 = no limit)\n"
	"  --flush-ms DURATION     fdatasync at least this often (default 1000 ms)\n"
	"  --flush-bytes SIZE      ...or after this many bytes (default 64M)\n"
	"  --max-producers N       producer handles open at once, 1..4096 (default 64)\n"
	"  --unblock-ms DURATION   report a live producer that holds a claim open this long\n"
	"                          (log and stat; it is never aborted; default 1000 ms)\n"
	"  --no-spill              pure IPC: spillwayd reclaims the ring without writing segments\n"
	"  --mode OCTAL            file mode of the ring (default 0600; 0660 with --group)\n"
	"  --group GROUP           unix group owning the ring and the data dir\n"
	"Example: spillway topic create orders --ring-size 256M --retention 7d\n" CLI_COMMON_HELP;

static const char list_usage[] =
	"usage: spillway topic list\n"
	"Every topic (rings in the shm dir, topic dirs in the data dir): ring size, tail,\n"
	"ring fill, bytes not yet spilled, segment files, disk use, the daemon's pid.\n" CLI_COMMON_HELP;

static const char name_usage[] = "usage: spillway topic %s NAME\n%s\n" CLI_COMMON_HELP;

struct create_args {
	struct topic_conf conf;
	bool have_ring, have_seg, have_max;
	const char *group;
	gid_t gid;
};

/* --group G: a group name or number; dst the create_args. */
static int opt_group(void *dst, const char *flag, const char *s)
{
	struct create_args *a = dst;
	struct group *g = getgrnam(s);
	char *end;
	unsigned long v;

	if (g) {
		a->gid = g->gr_gid;
	} else {
		v = strtoul(s, &end, 10);
		if (!*s || *end)
			return cli_usage("%s: no such group \"%s\"", flag, s);
		a->gid = (gid_t)v;
	}
	a->group = s;
	return CLI_OK;
}

static int opt_max_record(void *dst, const char *flag, const char *s)
{
	uint64_t v;
	int rc = cli_size(flag, s, &v);

	if (rc)
		return rc;
	if (v == 0 || v > SPW_RECORD_MAX_BYTES)
		return cli_usage("%s: %s is out of range (1 .. 1G-1)", flag, s);
	*(uint32_t *)dst = (uint32_t)v;
	return CLI_OK;
}

/* A whole number 1..max in base into a uint32_t. */
static int bounded(const char *flag, const char *s, int base, unsigned long max,
		   const char *what, uint32_t *out)
{
	char *end;
	unsigned long n = strtoul(s, &end, base);

	if (!*s || *end || n == 0 || n > max)
		return cli_usage("%s: \"%s\" is not %s", flag, s, what);
	*out = (uint32_t)n;
	return CLI_OK;
}

static int opt_max_producers(void *dst, const char *flag, const char *s)
{
	return bounded(flag, s, 10, 4096, "a number in 1..4096", dst);
}

static int opt_mode(void *dst, const char *flag, const char *s)
{
	return bounded(flag, s, 8, 0777, "an octal mode (e.g. 0600 or 0660)", dst);
}

static int create_opts(int argc, char **argv, struct create_args *a, const char **name)
{
	struct topic_conf *c = &a->conf;
	const struct cli_opt spec[] = {
		O_SIZE("ring-size", &c->ring_bytes, &a->have_ring),
		O_SIZE("segment-size", &c->segment_bytes, &a->have_seg),
		{ "max-record", 0, CLI_O_FN, CLI_T(uint32_t, &c->max_record), 0, &a->have_max,
		  opt_max_record },
		O_DURATION("retention", &c->retention_ms),
		O_SIZE("retention-bytes", &c->retention_bytes, NULL),
		O_DURATION("flush-ms", &c->flush_ms),
		O_SIZE("flush-bytes", &c->flush_bytes, NULL),
		O_DURATION("unblock-ms", &c->unblock_ms),
		O_FN("max-producers", 0, CLI_T(uint32_t, &c->max_producers), opt_max_producers),
		O_FLAG("no-spill", 0, &c->no_spill),
		O_FN("mode", 0, CLI_T(uint32_t, &c->mode), opt_mode),
		O_FN("group", 0, a, opt_group),
		O_END,
	};
	int rc;

	seg_conf_defaults(c);
	if ((rc = cli_opts(argc, argv, spec, create_usage)) >= 0)
		return rc == CLI_OK ? CLI_DONE : rc;
	return cli_topic_arg(argc, argv, name);
}

/* The library's defaults and rules (spillway.h, struct spw_topic_config),
 * checked here so a bad value is a usage error naming the flag. */
static int create_check(struct create_args *a)
{
	struct topic_conf *c = &a->conf;

	if (c->ring_bytes < SPW_RING_MIN_BYTES || (c->ring_bytes & (c->ring_bytes - 1)) ||
	    c->ring_bytes > (1ull << 40))
		return cli_usage("--ring-size: %llu is not a power of two between 64K and 1T",
				 (unsigned long long)c->ring_bytes);
	if (!a->have_seg)
		c->segment_bytes = c->ring_bytes > (1ull << 30) ? c->ring_bytes : 1ull << 30;
	if (!c->segment_bytes || c->segment_bytes % c->ring_bytes)
		return cli_usage("--segment-size: %llu is not a multiple of the ring size %llu",
				 (unsigned long long)c->segment_bytes,
				 (unsigned long long)c->ring_bytes);
	if (!a->have_max)
		c->max_record = (uint32_t)(c->ring_bytes / 4 < (1u << 20) ? c->ring_bytes / 4 : 1u << 20);
	if (c->max_record > c->ring_bytes / 4)
		return cli_usage("--max-record: %u is over a quarter of the ring (%llu); use a "
				 "bigger --ring-size",
				 c->max_record, (unsigned long long)c->ring_bytes / 4);
	if (!c->flush_bytes)
		return cli_usage("--flush-bytes: must be at least 1");
	return CLI_OK;
}

static int remake_ring(const char *name, const char *dir, bool must);

/* Is the name taken: a ring (true after saying so), or a disk log without
 * one (true and *remake: its ring is asked for, remake_ring)? */
static bool create_taken(const char *name, const char *ring, const char *dir, bool *remake)
{
	uint64_t *bases = NULL;
	size_t nseg = 0;
	struct stat st;

	if (!stat(ring, &st)) {
		cli_err("topic \"%s\" already exists in %s (delete it first: spillway topic delete %s%s)",
			name, G.shm_dir, name, cli_dir_flags());
		return true;
	}
	if (!seg_list(dir, &bases, &nseg) && nseg) {
		free(bases);
		*remake = true;
		printf("topic %s has a disk log in %s (%zu segments) but no ring: asking spillwayd to "
		       "make it again at the log's end, with the settings of its topic.conf (to "
		       "start afresh, delete the topic, log and all, first: spillway topic delete "
		       "%s%s)\n", name, dir, nseg, name, cli_dir_flags());
		return true;
	}
	free(bases);
	return false;
}

/* Who may reach the new topic. Shared with a group: the ring (its own
 * mode), the topic dir (0750, so members reach topic.conf and the
 * segments, which spillwayd makes 0640 with the dir's group, spill/files.c
 * seg_share), topic.conf, and the groups dir (02770, setgid: members commit
 * group positions, every group file gets G). Else the topic dir is 0700.
 * 0, or -1 after saying why. */
static int create_share(const char *name, const struct create_args *a, const char *ring,
			const char *dir, const char *conf)
{
	char gd[PATH_MAX + 16];

	int r;

	/* Every change through seg_give: a descriptor, never a path a link
	 * could have taken meanwhile (the shm or data dir may be writable by
	 * the group: its members could swap a name as root chowns it). */
	if (!a->group) {
		if (!(r = seg_give(dir, true, (gid_t)-1, 0700)))
			return 0;
		cli_err("cannot make %s private: %s", dir, strerror(-r));
		return -1;
	}
	if ((r = seg_give(ring, false, a->gid, -1)) || (r = seg_give(dir, true, a->gid, 0750)) ||
	    (r = seg_give(conf, false, a->gid, 0640))) {
		cli_err("topic \"%s\" created, but cannot give it to group %s: %s (run as root or "
			"as a member of the group)",
			name, a->group, strerror(-r));
		return -1;
	}
	snprintf(gd, sizeof(gd), "%s/groups", dir);
	if (((r = seg_mkdir(gd, 02770)) && r != -EEXIST) || (r = seg_give(gd, true, a->gid, 02770))) {
		cli_err("topic \"%s\" created, but cannot make %s for group %s: %s", name, gd,
			a->group, strerror(-r));
		return -1;
	}
	return 0;
}

/* A spillwayd starting (or on SIGHUP) makes the ring of a topic dir that
 * has a topic.conf and no ring: between our topic.conf and our ring it may
 * have made this one from the conf we just wrote. Ours, then, when it is
 * that: our sizes, an empty log at 0, nothing sent. */
static bool made_by_daemon(const char *name, const struct spw_topic_config *cfg)
{
	struct spw_topic *t;
	struct spw_topic_info in;
	struct stat rs, ds;
	bool daemons;

	if (spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t))
		return false;
	spw_topic_info(t, &in);
	/* The daemon's: owned by its data dir's owner (not planted by another
	 * user of a shared shm dir). */
	daemons = !fstat(t->fd, &rs) && !stat(G.data_dir, &ds) && rs.st_uid == ds.st_uid;
	spw_topic_close(t);
	return daemons && in.ring_bytes == cfg->ring_bytes && in.segment_bytes == cfg->segment_bytes &&
	       in.max_record == cfg->max_record && in.max_producers == cfg->max_producers &&
	       in.start_position == 0 && in.tail == 0 &&
	       (in.flags & SPW_TOPIC_NO_SPILL) == (cfg->flags & SPW_TOPIC_NO_SPILL);
}

static int topic_create(int argc, char **argv)
{
	struct create_args a = { 0 };
	struct spw_topic_config cfg = { 0 };
	char dir[PATH_MAX], ring[PATH_MAX + 64], conf[PATH_MAX + 16], hr[32], hs[32], hm[32];
	const char *name = NULL;
	struct stat st;
	bool made_dir, remake = false;
	int rc, r;

	if ((rc = create_opts(argc, argv, &a, &name)) || (rc = create_check(&a)))
		return rc == CLI_DONE ? CLI_OK : rc;
	cli_dirs();
	if (cli_ring_path(ring, sizeof(ring), name) || cli_topic_dir(dir, sizeof(dir), name)) {
		cli_err("topic \"%s\": the shm or data dir path is too long", name);
		return CLI_ERR;
	}
	if (create_taken(name, ring, dir, &remake)) {
		if (!remake)
			return CLI_ERR;
		/* Its settings are its topic.conf's (the log was written with
		 * them): options asking for others are refused, not ignored. */
		for (int i = 1; i < argc; i++)
			if (argv[i][0] == '-' && strncmp(argv[i], "--shm-dir", 9) &&
			    strncmp(argv[i], "--data-dir", 10)) {
				cli_err("topic \"%s\" has a disk log (with the settings of %s/%s): %s "
					"cannot change them; run topic create %s without options to ask "
					"for its ring, or delete the topic, log and all, first",
					name, dir, SEG_CONF_NAME, argv[i], name);
				return CLI_USAGE;
			}
		return remake_ring(name, dir, true);
	}
	made_dir = stat(dir, &st) != 0;
	r = ring_mkdir_p(dir, 0755);
	if (r) {
		cli_err("cannot create the data dir %s for topic \"%s\": %s (check --data-dir / "
			"SPILLWAY_DATA_DIR)",
			dir, name, strerror(-r));
		return CLI_ERR;
	}
	snprintf(conf, sizeof(conf), "%s/%s", dir, SEG_CONF_NAME);
	r = seg_conf_save(dir, &a.conf);
	if (r) {
		cli_err("cannot write %s: %s", conf, strerror(-r));
		goto undo;
	}
	cfg.ring_bytes = a.conf.ring_bytes;
	cfg.segment_bytes = a.conf.segment_bytes;
	cfg.max_record = a.conf.max_record;
	cfg.max_producers = a.conf.max_producers;
	cfg.mode = a.conf.mode;
	cfg.flags = a.conf.no_spill ? SPW_TOPIC_NO_SPILL : 0;
	r = spw_topic_create(G.shm_dir, name, &cfg);
	if (r == -EEXIST && made_by_daemon(name, &cfg)) {
		r = 0;
	} else if (r == -EEXIST) {
		cli_err("topic \"%s\" was created meanwhile by someone else in %s", name, G.shm_dir);
		return CLI_ERR; /* its conf is the one we just wrote: same name, their ring */
	}
	if (r) {
		cli_err("cannot create the ring %s: %s%s", ring, strerror(-r),
			r == -ENOTDIR ? " (check --shm-dir / SPILLWAY_SHM_DIR)"
			: r == -ENOSPC ? " (the shm filesystem is full: use a smaller --ring-size)"
				       : "");
		goto undo;
	}
	if (create_share(name, &a, ring, dir, conf))
		return CLI_ERR;
	cli_human(a.conf.ring_bytes, hr, sizeof(hr));
	cli_human(a.conf.segment_bytes, hs, sizeof(hs));
	cli_human(a.conf.max_record, hm, sizeof(hm));
	printf("created topic %s: ring %s (%s), segments %s in %s, max record %s%s\n", name, hr,
	       ring, hs, dir, hm, a.conf.no_spill ? ", no spill" : "");
	return CLI_OK;
undo:
	unlink(conf);
	if (made_dir)
		rmdir(dir);
	return CLI_ERR;
}

/* --- list ------------------------------------------------------------------------------ */
static int topic_list(int argc, char **argv)
{
	static const struct cli_opt none[] = { O_END };
	char **names = NULL;
	int rc, n;

	if ((rc = cli_opts(argc, argv, none, list_usage)) >= 0)
		return rc;
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	cli_dirs();
	n = cli_topic_names(&names);
	if (n < 0)
		return CLI_ERR;
	printf("%-20s %9s %14s %6s %12s %8s %10s  %s\n", "NAME", "RING", "TAIL", "FILL", "UNSPILLED",
	       "SEGMENTS", "DISK", "DAEMON");
	for (int i = 0; i < n; i++) {
		struct spw_topic *t = NULL;
		struct spw_topic_info in;
		struct cli_daemon_look d;
		struct seg_disk_usage dl;
		char dir[PATH_MAX], hr[32] = "-", hd[32], tail[24] = "-", fill[16] = "-",
					     uns[24] = "-", dm[32] = "-";
		int r;

		if (!cli_topic_dir(dir, sizeof(dir), names[i]))
			seg_disk_usage(dir, &dl);
		if ((r = spw_topic_open(G.shm_dir, names[i], SPW_OPEN_RDONLY, &t)) == 0) {
			spw_topic_info(t, &in);
			cli_human(in.ring_bytes, hr, sizeof(hr));
			snprintf(tail, sizeof(tail), "%llu", (unsigned long long)in.tail);
			snprintf(fill, sizeof(fill), "%.1f%%",
				 100.0 * (double)(in.tail - in.reclaimed) / (double)in.ring_bytes);
			snprintf(uns, sizeof(uns), "%llu", (unsigned long long)(in.tail - in.spilled));
			cli_daemon_look(t, &in, &d);
			switch (d.state) {
			case CLI_DAEMON_ALIVE:
				snprintf(dm, sizeof(dm), "pid %u", d.pid);
				break;
			case CLI_DAEMON_SILENT: /* stopped or hung: topic describe says more */
				snprintf(dm, sizeof(dm), "pid %u silent", d.pid);
				break;
			case CLI_DAEMON_UNATTACHED: /* stat says why (the daemon's reason) */
				snprintf(dm, sizeof(dm), "pid %u %s", d.pid,
					 d.other_shm			? "other shm dir"
					 : d.why[0] && !d.why_hidden ? "refused"
								       : "not attached");
				break;
			default:
				snprintf(dm, sizeof(dm), "none");
			}
			spw_topic_close(t);
		} else {
			/* (bad): a ring file there that cannot be opened (stat says why) */
			snprintf(hr, sizeof(hr), r == -ENOENT ? "(none)" : "(bad)");
			if (dl.any)
				snprintf(tail, sizeof(tail), "%llu", (unsigned long long)dl.end);
		}
		cli_human(dl.bytes, hd, sizeof(hd));
		printf("%-20s %9s %14s %6s %12s %8zu %10s  %s\n", names[i], hr, tail, fill, uns,
		       dl.segments, hd, dm);
		free(names[i]);
	}
	free(names);
	return CLI_OK;
}

/* --- describe / delete ---------------------------------------------------------------- */
static int name_opts(int argc, char **argv, const char *what, const char *help, const char **name)
{
	static const struct cli_opt none[] = { O_END };
	char usage[1024];
	int rc;

	snprintf(usage, sizeof(usage), name_usage, what, help);
	if ((rc = cli_opts(argc, argv, none, usage)) >= 0)
		return rc == CLI_OK ? CLI_DONE : rc;
	if ((rc = cli_topic_arg(argc, argv, name)))
		return rc;
	cli_dirs();
	return CLI_OK;
}

static int print_group(void *arg, const char *group, int64_t pos)
{
	const uint64_t *tail = arg;

	if (pos < 0)
		printf("  group %-18s unreadable (%s)\n", group, strerror((int)-pos));
	else
		printf("  group %-18s position %lld, lag %lld bytes\n", group, (long long)pos,
		       *tail > (uint64_t)pos ? (long long)(*tail - (uint64_t)pos) : 0ll);
	return 0;
}

/* describe's ring lines: the file, its sizes, positions and the daemon. */
static void describe_ring(struct spw_topic *t, const char *ring, struct spw_topic_info *in)
{
	char h1[32], h2[32], h3[32], when[48], why[CLI_WHY_BYTES];
	struct stat st = { 0 };
	struct cli_daemon_look d;

	spw_topic_info(t, in);
	stat(ring, &st);
	cli_human(in->ring_bytes, h1, sizeof(h1));
	cli_human(in->segment_bytes, h2, sizeof(h2));
	cli_human(in->max_record, h3, sizeof(h3));
	cli_iso8601(in->created_ns, when, sizeof(when));
	printf("  ring        %s (%s, mode %04o, uid %u, gid %u)\n", ring, h1,
	       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
	printf("  created     %s\n", when);
	printf("  segments    %s each, max record %s, %s\n", h2, h3,
	       in->flags & SPW_TOPIC_NO_SPILL ? "no spill (pure IPC)" : "spilled to disk");
	printf("  positions   start %llu, reclaimed %llu, tail %llu, limit %llu (ring %.1f%% "
	       "full)\n",
	       (unsigned long long)in->start_position, (unsigned long long)in->reclaimed,
	       (unsigned long long)in->tail, (unsigned long long)in->limit,
	       100.0 * (double)(in->tail - in->reclaimed) / (double)in->ring_bytes);
	printf("  spilled     %llu (%llu behind the tail), durable %llu\n",
	       (unsigned long long)in->spilled, (unsigned long long)(in->tail - in->spilled),
	       (unsigned long long)in->durable);
	cli_daemon_look(t, in, &d);
	switch (d.state) {
	case CLI_DAEMON_ALIVE:
		printf("  daemon      spillwayd pid %u, heartbeat %.2f s ago\n", d.pid, d.age_s);
		break;
	case CLI_DAEMON_SILENT:
		printf("  daemon      spillwayd pid %u holds it, SILENT: last beat %.1f s ago (stopped "
		       "or hung?)\n", d.pid, d.age_s);
		break;
	default:
		cli_daemon_why(&d, why, sizeof(why));
		printf("  daemon      none: %s\n", why);
	}
}

/* describe's settings and disk lines. */
static void describe_files(const char *dir, const struct seg_disk_usage *dl)
{
	struct topic_conf c;
	char h1[32], h2[32];
	unsigned bad = 0;
	int cr = seg_conf_load_why(dir, &c, &bad);

	if (cr == 0) {
		cli_human(c.flush_bytes, h1, sizeof(h1));
		cli_human(c.retention_bytes, h2, sizeof(h2));
		printf("  settings    %s/%s: retention %llu ms, retention bytes %s, flush %llu ms or "
		       "%s, stall report after %llu ms, %u producer slots\n",
		       dir, SEG_CONF_NAME, (unsigned long long)c.retention_ms,
		       c.retention_bytes ? h2 : "unlimited", (unsigned long long)c.flush_ms, h1,
		       (unsigned long long)c.unblock_ms, c.max_producers);
	} else {
		printf("  settings    %s/%s: %s%s%.0u\n", dir, SEG_CONF_NAME, strerror(-cr),
		       bad ? " at line " : "", bad);
	}
	cli_human(dl->bytes, h1, sizeof(h1));
	printf("  disk        %s: %zu segments, %s, %llu records", dir, dl->segments, h1,
	       (unsigned long long)dl->records);
	if (dl->any)
		printf(", positions %llu .. %llu", (unsigned long long)dl->first,
		       (unsigned long long)dl->end);
	printf("\n");
}

static int topic_describe(int argc, char **argv)
{
	const char *name = NULL;
	char dir[PATH_MAX], ring[PATH_MAX + 64];
	struct spw_topic *t = NULL;
	struct spw_topic_info in = { 0 };
	struct seg_disk_usage dl;
	bool has_ring, has_data;
	int rc;

	if ((rc = name_opts(argc, argv, "describe", "Settings, counters, files and groups of a topic.",
			    &name)))
		return rc == CLI_DONE ? CLI_OK : rc;
	if (!cli_topic_exists(name, &has_ring, &has_data)) {
		cli_not_found(name);
		return CLI_ERR;
	}
	if (has_ring && cli_topic_open(name, SPW_OPEN_RDONLY, &t))
		return CLI_ERR;
	cli_ring_path(ring, sizeof(ring), name);
	cli_topic_dir(dir, sizeof(dir), name);
	seg_disk_usage(dir, &dl);
	printf("topic %s\n", name);
	if (t)
		describe_ring(t, ring, &in);
	else
		printf("  ring        none (the log is on disk only; spillwayd recreates the ring)\n");
	describe_files(dir, &dl);
	if ((rc = spw_group_list(G.data_dir, name, print_group, t ? &in.tail : &dl.end)) < 0)
		printf("  groups      cannot list %s/groups (%s)\n", dir, strerror(-rc));
	spw_topic_close(t);
	return CLI_OK;
}

static const char delete_usage[] =
	"usage: spillway topic delete NAME [--keep-log]\n"
	"Remove the topic's ring and its data dir (segments, groups, settings).\n"
	"Processes that have the ring mapped keep it until they close it.\n"
	"  --keep-log   remove the ring only (a damaged one, or one of an older release):\n"
	"               the disk log stays, and spillwayd makes the ring again at its end\n"
	"               (asked here with SIGHUP when it runs; else when it starts)\n"
	CLI_COMMON_HELP;

/* The ring of name removed, its disk log kept: ask the data dir's daemon
 * to make the ring again at the log's end (SIGHUP: daemon/loop.c) and say
 * what came of it. */
/* Is pid a spillwayd (its command name), so that signalling it is asking
 * the daemon and no one else? Another PID namespace's number is not. */
static bool is_spillwayd(uint32_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	if (!(f = fopen(path, "re")))
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, "spillwayd");
}

/* A topic with a disk log and no ring: ask the data dir's daemon to make
 * the ring again at the log's end (<topic>/.remake, then SIGHUP:
 * daemon/topics.c topic_restore) and say what came of it. must (topic
 * create): CLI_ERR unless the ring was made; else (delete --keep-log, done
 * already) CLI_OK when it could not even be asked for. */
static int remake_ring(const char *name, const char *dir, bool must)
{
	char mark[PATH_MAX + 16], why[SEG_REFUSED_WHY];
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	uint32_t pid = 0;
	int fd, sv;

	snprintf(mark, sizeof(mark), "%s/%s", dir, SEG_REMAKE_NAME);
	fd = seg_open_file(mark, O_WRONLY | O_CREAT, 0600, false);
	if (fd < 0) {
		printf("spillwayd makes the ring again at the log's end at its next start (cannot "
		       "ask a running one: %s: %s)\n", mark, strerror(-fd));
		return must ? CLI_ERR : CLI_OK;
	}
	close(fd);
	sv = cli_data_dir_served(&pid, NULL, 0);
	if (sv != 1 || !pid) {
		if (sv < 0)
			printf("spillwayd makes the ring again at the log's end on SIGHUP or at its "
			       "start (whether one runs cannot be told: %s)\n", strerror(-sv));
		else
			printf("start spillwayd: it makes the ring again at the log's end\n");
		return must ? CLI_ERR : CLI_OK;
	}
	if (!is_spillwayd(pid) || kill((pid_t)pid, SIGHUP)) {
		printf("spillwayd (pid %u) makes the ring again at the log's end on SIGHUP or at its "
		       "next start (not signalled: %s)\n", pid,
		       is_spillwayd(pid) ? strerror(errno)
					 : "that pid is not a spillwayd here (another PID namespace?)");
		return must ? CLI_ERR : CLI_OK;
	}
	for (int i = 0; i < 50 && spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t); i++)
		usleep(100000);
	if (!t) {
		if (cli_refusal(name, why, sizeof(why)) == 1)
			cli_err("spillwayd (pid %u) did not make the ring again: %s", pid, why);
		else
			cli_err("spillwayd (pid %u) did not make the ring again within 5 s (its log "
				"says why)", pid);
		return CLI_ERR;
	}
	spw_topic_info(t, &in);
	spw_topic_close(t);
	printf("spillwayd (pid %u) made the ring again: the log continues at %llu\n", pid,
	       (unsigned long long)in.start_position);
	return CLI_OK;
}

static int topic_delete(int argc, char **argv)
{
	const char *name = NULL;
	char dir[PATH_MAX];
	struct stat st;
	bool has_ring, has_data, keep_log = false;
	const struct cli_opt spec[] = { O_FLAG("keep-log", 0, &keep_log), O_END };
	int rc, r;

	if ((rc = cli_opts(argc, argv, spec, delete_usage)) >= 0)
		return rc;
	if ((rc = cli_topic_arg(argc, argv, &name)))
		return rc;
	cli_dirs();
	cli_topic_dir(dir, sizeof(dir), name);
	cli_topic_exists(name, &has_ring, &has_data);
	if (!has_ring && stat(dir, &st)) {
		cli_not_found(name);
		return CLI_ERR;
	}
	if (keep_log && !has_ring) {
		char ring[PATH_MAX + 64];

		cli_ring_path(ring, sizeof(ring), name);
		if (stat(ring, &st)) {
			cli_err("topic \"%s\" has no ring to delete (its disk log is in %s)", name, dir);
			return CLI_ERR;
		}
	}
	r = spw_topic_delete(G.shm_dir, name);
	if (r && r != -ENOENT) {
		cli_err("cannot delete the ring of topic \"%s\" in %s: %s", name, G.shm_dir, strerror(-r));
		return CLI_ERR;
	}
	if (keep_log) {
		printf("deleted the ring of topic %s; its disk log in %s is kept\n", name, dir);
		return remake_ring(name, dir, false);
	}
	/* A daemon that was spilling may still close (and fdatasync) its files
	 * in there for a moment: retry while the dir keeps reappearing. */
	for (int i = 0; i < 20; i++) {
		r = cli_rmtree(dir);
		if (stat(dir, &st))
			break;
		usleep(100000);
	}
	if (!stat(dir, &st)) {
		cli_err("ring deleted, but cannot remove the data dir %s of topic \"%s\": %s", dir, name,
			strerror(r ? -r : EBUSY));
		return CLI_ERR;
	}
	printf("deleted topic %s\n", name);
	return CLI_OK;
}

int cmd_topic(int argc, char **argv)
{
	static const struct {
		const char *name, *cmd;
		int (*fn)(int, char **);
	} subs[] = {
		{ "create", "topic create", topic_create },
		{ "list", "topic list", topic_list },
		{ "describe", "topic describe", topic_describe },
		{ "delete", "topic delete", topic_delete },
	};

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(topic_usage, stdout);
			return CLI_OK;
		}
		fputs(topic_usage, stderr);
		return CLI_USAGE;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!strcmp(argv[1], subs[i].name)) {
			G.cmd = subs[i].cmd;
			return subs[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_usage("unknown topic command \"%s\" (create, list, describe, delete)", argv[1]);
}
