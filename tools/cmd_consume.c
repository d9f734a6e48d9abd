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
	"Read topic NAME from the segment files, then live from the ring.\n"
	"  --from WHERE      earliest (default; with --group: the group's position), latest,\n"
	"                    a POSITION, or @TIME (see: spillway help positions)\n"
	"  --group G         start at group G's committed position, commit at the end\n"
	"  --count N         stop after N records\n"
	"  -f, --follow      keep waiting for new records (Ctrl-C ends it, commits --group)\n"
	"  --format F        lines (default: bytes + '\\n'), raw (bytes only), lenpfx (u32 LE\n"
	"                    length + bytes), json (one object a line: position, timestamp,\n"
	"                    length, data as UTF-8 text or base64), hex (one hex line a record)\n"
	"  --skip-corrupt    pass over a range that fails its CRC (counted, said on stderr)\n"
	"                    instead of stopping there with an error\n"
	"Without --follow it exits when caught up.\n"
	"Example: spillway consume orders --group billing --format json\n" CLI_COMMON_HELP;

struct cons {
	enum fmt fmt;
	uint64_t n;
	int werr;
};

static int on_record(void *arg, const struct spw_record *r)
{
	struct cons *c = arg;
	int e = out_record(stdout, c->fmt, r);

	if (e) {
		c->werr = e;
		return 1;
	}
	c->n++;
	return 0;
}

/* Was the followed topic deleted? The ring gone or replaced (another inode);
 * a disk-only topic: its dir gone. */
static bool deleted(const char *ring, const char *dir, const struct stat *at_open, bool had_ring)
{
	struct stat st;

	if (had_ring)
		return stat(ring, &st) || st.st_ino != at_open->st_ino || st.st_dev != at_open->st_dev;
	return stat(dir, &st) != 0;
}

int cmd_consume(int argc, char **argv)
{
	enum { FROM = OPT_FIRST_LOCAL, GROUP, COUNT, FORMAT, SKIP };
	static const struct option opts[] = {
		{ "from", required_argument, NULL, FROM },
		{ "group", required_argument, NULL, GROUP },
		{ "count", required_argument, NULL, COUNT },
		{ "follow", no_argument, NULL, 'f' },
		{ "format", required_argument, NULL, FORMAT },
		{ "skip-corrupt", no_argument, NULL, SKIP },
		CLI_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct spw_reader_opts ro = { 0 };
	struct cli_reader cr;
	struct spw_reader *r;
	struct cons c = { .fmt = FMT_LINES };
	struct where from = { 0 };
	const char *name = NULL, *group = NULL;
	char ring[PATH_MAX + 64], dir[PATH_MAX];
	struct stat st;
	uint64_t count = 0, nap = 0, checked = 0;
	bool follow = false, have_count = false, had_ring, gone = false;
	int o, rc = 0, n;

	while ((o = cli_getopt(argc, argv, "f", opts, usage, &rc)) != -1) {
		switch (o) {
		case -2: return rc;
		case FROM: if ((rc = cli_where("--from", optarg, WHERE_ENDS, &from))) return rc; break;
		case GROUP:
			if ((rc = cli_name_check("group", optarg)))
				return rc;
			group = optarg;
			break;
		case COUNT:
			if ((rc = cli_count("--count", optarg, &count)))
				return rc;
			have_count = true;
			break;
		case 'f': follow = true; break;
		case FORMAT: if ((rc = cli_format(optarg, FMT_ALL_MASK, &c.fmt))) return rc; break;
		case SKIP: ro.flags |= SPW_READER_SKIP_CORRUPT; break;
		default: return cli_usage("unexpected option");
		}
	}
	if ((rc = cli_topic_arg(argc, argv, &name)))
		return rc;
	cli_dirs();
	cli_reader_start(&from, &ro);
	if (group && from.kind == W_NONE) {
		ro.start = SPW_START_GROUP;
		ro.group = group;
	}
	cli_ring_path(ring, sizeof(ring), name);
	cli_topic_dir(dir, sizeof(dir), name);
	had_ring = stat(ring, &st) == 0;
	if (from.kind == W_POSITION && cli_position_check(name, from.position))
		return CLI_ERR;
	rc = cli_reader_open(&cr, name, &ro, on_record, &c);
	if (rc) {
		cli_reader_err(name, NULL, rc, "reading");
		return CLI_ERR;
	}
	r = cr.r;
	cli_catch_signals();
	rc = CLI_OK;
	while (!(have_count && c.n >= count)) {
		int max = have_count && count - c.n < 1024 ? (int)(count - c.n) : 1024;

		/* Never spw_reader_poll_wait: its read-only mapping cannot sleep on
		 * the futex and naps 50 us at a time (~16% of a core while idle).
		 * An idle follower backs off to 20 ms naps instead. */
		n = cli_reader_poll(&cr, max, 0);
		if (c.werr) {
			if (c.werr != EPIPE)
				cli_err("writing records of topic \"%s\": %s", name, strerror(c.werr));
			rc = CLI_ERR;
			break;
		}
		if (n < 0) {
			fflush(stdout);
			cli_reader_err(name, r, n, "reading");
			rc = CLI_ERR;
			break;
		}
		if (spw_reader_done(r) || (n == 0 && !follow))
			break;
		if (follow && n > 0) {
			fflush(stdout);
			nap = 0;
		} else if (follow) {
			struct timespec ts = { 0, (long)nap };

			nap = nap ? (nap * 2 > 20000000 ? 20000000 : nap * 2) : 100000;
			nanosleep(&ts, NULL);
		}
		if (cli_stop) {
			rc = follow ? CLI_OK : 128 + cli_stop;
			break;
		}
		if (follow && n == 0 && cli_mono_ns() - checked > 200000000) {
			checked = cli_mono_ns();
			if (!deleted(ring, dir, &st, had_ring))
				continue;
			cli_err("topic \"%s\" was deleted while following it (at position %lld); stopping",
				name, (long long)spw_reader_position(r));
			rc = CLI_ERR;
			gone = true;
			break;
		}
	}
	if (fflush(stdout) && rc == CLI_OK) {
		if (errno != EPIPE)
			cli_err("writing records of topic \"%s\": %s", name, strerror(errno));
		rc = CLI_ERR;
	}
	if (group && !c.werr && !gone) {
		int e = spw_reader_commit(r, group);

		if (e) {
			cli_err("cannot commit group \"%s\" of topic \"%s\" at position %lld: %s", group,
				name, (long long)spw_reader_position(r), strerror(-e));
			rc = rc ? rc : CLI_ERR;
		}
	}
	if (spw_reader_skipped(cr.r))
		fprintf(stderr, "spillway: skipped %llu bytes of topic \"%s\" that failed their CRC or "
			"were cut out of the ring as garbage\n",
			(unsigned long long)spw_reader_skipped(cr.r), name);
	cli_reader_close(&cr);
	return rc;
}
