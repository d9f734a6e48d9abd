/* SPDX-License-Identifier: MIT */
/*
 * cmd_consume.c - spillway consume NAME [--from earliest|latest|POSITION|@TIME]
 *                 [--group G] [--count N] [--follow] [--format ...]
 *
 * One spw_reader: the segment files first, then the live ring. Without
 * --follow it stops when caught up. With --group it starts at the group's
 * position (unless --from says otherwise) and commits where it stopped: the
 * first record not written out, so a second run continues exactly there.
 * A followed topic that is deleted (its ring unlinked or replaced) ends the
 * run with a message instead of a silent wait.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char usage[] =
	"usage: spillway consume NAME [--from earliest|latest|POSITION|@TIME] [--group G]\n"
	"                        [--count N] [--follow] [--format lines|raw|lenpfx|json|hex]\n"
	"                        [--speed S [--max-gap DUR]]\n"
	"Read topic NAME from the segment files, then live from the ring.\n"
	"  --from WHERE      earliest (default; with --group: the group's position), latest,\n"
	"                    a POSITION, or @TIME (see: spillway help positions)\n"
	"  --group G         start at group G's committed position, commit at the end\n"
	"  --count N         stop after N records\n"
	"  -f, --follow      keep waiting for new records (Ctrl-C ends it, commits --group)\n"
	"  --format F        lines (default: bytes + '\\n'), raw (bytes only), lenpfx (u32 LE\n"
	"                    length + bytes), json (one object a line: position, timestamp,\n"
	"                    length, data as UTF-8 text or base64), hex (one hex line a record)\n"
	"  --speed S         at the pace of the records' timestamps: 1x, 10x, 0.5x, max\n"
	"                    (default); --max-gap DUR shortens longer silences (default 1s)\n"
	"  --skip-corrupt    pass over a range that fails its CRC (counted, said on stderr)\n"
	"                    instead of stopping there with an error\n"
	"Without --follow it exits when caught up.\n"
	"Example: spillway consume orders --group billing --format json\n" CLI_COMMON_HELP;

struct cons {
	enum fmt fmt;
	uint64_t n;
	int werr;
	/* the run */
	const char *name, *group;
	uint64_t count;
	bool have_count, follow, no_ring_said;
	bool group_lost; /* its lock file removed or replaced: stop, commit nothing */
	struct where from;
	struct spw_reader_opts ro;
	struct cli_pace pace;
	double speed;
	uint64_t max_gap_ms;
};

static int on_record(void *arg, const struct spw_record *r)
{
	struct cons *c = arg;
	int e;

	cli_pace_wait(&c->pace, r->timestamp_ns);
	e = out_record(stdout, c->fmt, r);

	if (e) {
		c->werr = e;
		return 1;
	}
	c->n++;
	return 0;
}

/* Flush the records written so far; a write that failed, now or before
 * (stdio reports some only at a flush), becomes c->werr (-errno): then the
 * group is not committed past records nobody received. 0 or -1. */
static int flush_out(struct cons *c)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	if (!c->werr)
		c->werr = -(errno ? errno : EIO);
	return -1;
}

/* A write error said (not a closed pipe: whoever read it went away). */
static void say_werr(const struct cons *c)
{
	if (c->werr != -EPIPE)
		cli_err("writing records of topic \"%s\": %s%s", c->name, strerror(-c->werr),
			c->group ? "; the group was not committed" : "");
}

/* Options and the topic name into c. -1 to go on, else the exit status. */
static int consume_args(int argc, char **argv, struct cons *c)
{
	const struct cli_opt spec[] = {
		O_READ_OUT(&c->from, &c->speed, &c->max_gap_ms, &c->fmt, &c->ro.flags),
		O_NAME("group", &c->group),
		O_COUNT("count", &c->count, &c->have_count),
		O_FLAG("follow", 'f', &c->follow),
		O_END,
	};
	return cli_opts_topic(argc, argv, spec, usage, &c->name);
}

/* Poll until caught up (or, following, until stopped or the topic is
 * deleted). Returns the exit status; *gone when the topic was deleted. */
/* A follower commits its group about once a second (after flushing what it
 * wrote), not only at exit: killed (-9, a crash), it then reads again at
 * most the last second's records, not everything since it started. */
static void follow_commit(struct cons *c, struct cli_reader *cr, uint64_t *at, int64_t *pos)
{
	uint64_t now = cli_mono_ns();
	int64_t p = spw_reader_position(cr->r);
	int e;

	if (now - *at < 1000000000ull || p == *pos || flush_out(c))
		return;
	*at = now;
	e = spw_reader_commit(cr->r, c->group);
	if (e == -ENOLCK) {
		/* Another reader may hold the group now: this one stops. */
		cli_group_err(c->name, c->group, e);
		c->group_lost = true;
		return;
	}
	if (e && *pos != -2)
		cli_err("cannot commit group \"%s\" of topic \"%s\" at position %lld: %s "
			"(tried again each second, and at exit)",
			c->group, c->name, (long long)p, strerror(-e));
	*pos = e ? -2 : p; /* -2: said once */
}

/* A follower of a topic that has no ring (disk only) reads its disk log
 * only, and no ring made later: said once, not a silent wait. */
static void no_ring_said(struct cons *c)
{
	char ring[PATH_MAX + 64];
	struct stat st;

	if (c->no_ring_said || cli_ring_path(ring, sizeof(ring), c->name) || !stat(ring, &st))
		return;
	c->no_ring_said = true;
	cli_err("topic \"%s\" has no ring (%s): following its disk log only; a ring made later "
		"(spillwayd at its start, or asked by spillway topic create %s) is not read by this "
		"follower: start it again then", c->name, ring, c->name);
}

static int consume_loop(struct cons *c, struct cli_reader *cr, bool *gone)
{
	uint64_t nap = 0, checked = 0, committed_at = cli_mono_ns(), held_at = cli_mono_ns();
	int64_t committed = spw_reader_position(cr->r);

	while (!(c->have_count && c->n >= c->count)) {
		/* Still the group's one reader (at most 0.2 s of output after its
		 * lock file was removed, when another reader may hold it). */
		if (c->group && cli_mono_ns() - held_at > 200000000ull) {
			int e = spw_reader_join(cr->r, c->group);

			held_at = cli_mono_ns();
			if (e == -ENOLCK) {
				cli_group_err(c->name, c->group, e);
				c->group_lost = true;
				return CLI_ERR;
			}
		}
		int max = c->have_count && c->count - c->n < 1024 ? (int)(c->count - c->n) : 1024;
		/* Never spw_reader_poll_wait: its read-only mapping cannot sleep on
		 * the futex and naps 50 us at a time (~16% of a core while idle).
		 * An idle follower backs off to 20 ms naps instead. */
		int n = cli_reader_poll(cr, max, 0);

		if (c->follow && n > 0)
			flush_out(c);
		if (c->follow && c->group && !c->werr)
			follow_commit(c, cr, &committed_at, &committed);
		if (c->werr || c->group_lost)
			return CLI_ERR; /* said by cmd_consume, or follow_commit */
		if (n < 0) {
			fflush(stdout);
			cli_reader_err(c->name, cr->r, n, "reading");
			return CLI_ERR;
		}
		if (spw_reader_done(cr->r) || (n == 0 && !c->follow))
			return CLI_OK;
		if (c->follow && n > 0) {
			nap = 0;
		} else if (c->follow) {
			struct timespec ts = { 0, (long)nap };

			nap = nap ? (nap * 2 > 20000000 ? 20000000 : nap * 2) : 100000;
			nanosleep(&ts, NULL);
		}
		if (cli_stop)
			return c->follow ? CLI_OK : 128 + cli_stop;
		if (c->follow && n == 0 && cli_mono_ns() - checked > 200000000) {
			checked = cli_mono_ns();
			if (spw_reader_deleted(cr->r) != 1) {
				no_ring_said(c);
				continue;
			}
			cli_err("topic \"%s\" was deleted, or its ring removed or replaced, while "
				"following it (at position %lld); stopping (start again to read on)",
				c->name, (long long)spw_reader_position(cr->r));
			*gone = true;
			return CLI_ERR;
		}
	}
	return CLI_OK;
}

int cmd_consume(int argc, char **argv)
{
	struct cons c = { .fmt = FMT_LINES, .max_gap_ms = 1000 };
	struct cli_reader cr;
	bool gone = false;
	int rc;

	if ((rc = consume_args(argc, argv, &c)) >= 0)
		return rc;
	cli_pace_init(&c.pace, c.speed, c.max_gap_ms * 1000000ull);
	cli_dirs();
	cli_reader_start(&c.from, &c.ro);
	if (c.group && c.from.kind == W_NONE) {
		int64_t gpos;
		int g = spw_group_read(G.data_dir, c.name, c.group, &gpos);

		/* A group file that cannot be read is named, not taken for a
		 * damaged index or a bad start (what the reader's error says). */
		if (cli_group_unreadable(c.name, c.group, g,
					 "or read with --from earliest (or a position) to commit a "
					 "new one"))
			return CLI_ERR;
		c.ro.start = SPW_START_GROUP;
		c.ro.group = c.group;
	}
	if (c.group && !spw_topic_name_check(c.group)) {
		/* Its lock file planted as something else (a FIFO, a dir): named,
		 * not blamed on the start (what the reader's -EINVAL says). */
		char lk[PATH_MAX + SPW_NAME_MAX + 16];
		struct stat st;
		/* As the library walks it: no link on the way (-ELOOP). */
		int e = spw_group_lock_path(lk, sizeof(lk), G.data_dir, c.name, c.group);

		if (!e)
			e = seg_lstat(lk, &st);
		if (e == -ELOOP || (!e && !S_ISREG(st.st_mode))) {
			cli_group_err(c.name, c.group, e ? e : -EINVAL);
			return CLI_ERR;
		}
	}
	if (c.from.kind == W_POSITION && cli_position_check(c.name, c.from.position))
		return CLI_ERR;
	rc = cli_reader_open(&cr, c.name, &c.ro, on_record, &c);
	/* The group's one reader before the first record, whatever the start
	 * (--group with --from joins here, not at its first commit). */
	if (!rc && c.group)
		rc = spw_reader_join(cr.r, c.group);
	/* (the open's -EBUSY: SPW_START_GROUP found the group held; -ENOSPC,
	 * -EDQUOT: it could not make the group's lock file) */
	if (rc && c.group && (cr.r || rc == -EBUSY || rc == -ENOSPC || rc == -EDQUOT)) {
		cli_group_err(c.name, c.group, rc);
		cli_reader_close(&cr);
		return CLI_ERR;
	}
	if (rc) {
		cli_reader_err(c.name, NULL, rc, "reading");
		cli_reader_close(&cr);
		return CLI_ERR;
	}
	cli_catch_signals();
	rc = consume_loop(&c, &cr, &gone);
	if (flush_out(&c) || c.werr) {
		say_werr(&c);
		rc = CLI_ERR;
	}
	if (c.group && !c.werr && !gone && !c.group_lost) {
		int e = spw_reader_commit(cr.r, c.group);

		if (e == -ENOLCK || e == -EBUSY) {
			cli_group_err(c.name, c.group, e);
			rc = rc ? rc : CLI_ERR;
		} else if (e) {
			cli_err("cannot commit group \"%s\" of topic \"%s\" at position %lld: %s",
				c.group, c.name, (long long)spw_reader_position(cr.r), strerror(-e));
			rc = rc ? rc : CLI_ERR;
		}
	}
	cli_pace_report(&c.pace, "consume");
	if (spw_reader_skipped(cr.r))
		fprintf(stderr, "spillway: skipped %llu bytes of topic \"%s\" that failed their CRC or "
			"were cut out of the ring as garbage\n",
			(unsigned long long)spw_reader_skipped(cr.r), c.name);
	cli_reader_close(&cr);
	return rc;
}
