/* SPDX-License-Identifier: MIT */
/*
 * cmd_replay.c - spillway replay NAME --from X [--to Y] [--rate N/s]
 *                [--format ...] [-o FILE]
 *
 * A bounded batch read: from X up to Y (a position or @TIME) and never past
 * the tail as it was at the start, so a busy topic cannot keep it running.
 * On a terminal, a progress bar on stderr (bytes, records, rate, ETA).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: spillway replay NAME --from X [--to Y] [--rate N/s | --speed S] [--format F]\n"
	"                       [-o FILE]\n"
	"Read a bounded range of topic NAME (disk, then ring) and exit.\n"
	"  --from X          earliest, a POSITION or @TIME (see: spillway help positions)\n"
	"  --to Y            stop before the first record at position Y / with time >= Y\n"
	"                    (default and upper bound: the tail when replay starts)\n"
	"  --rate N/s        at most N records per second\n"
	"  --speed S         at the pace of the records' timestamps: 1x (as produced),\n"
	"                    10x, 0.5x, or max (default); the lateness is said at the end\n"
	"  --max-gap DUR     with --speed: shorten silences longer than DUR (record time;\n"
	"                    default 1s; 500ms, 10s, 5m ...)\n"
	"  --format F        lines (default), raw, lenpfx, json, hex (as consume)\n"
	"  -o, --output FILE write the records to FILE instead of stdout\n"
	"  -v, --verbose     print a summary on stderr\n"
	"  --skip-corrupt    pass over a range that fails its CRC (counted, said on stderr)\n"
	"                    instead of stopping there with an error\n"
	"A progress bar (bytes, records, rate, ETA) goes to stderr when it is a terminal.\n"
	"Example: spillway replay orders --from @2026-11-24T22:00:00Z --to @2026-11-24T23:00:00Z\n"
	CLI_COMMON_HELP;

struct rep {
	FILE *out;
	enum fmt fmt;
	uint64_t n, bytes;
	int werr;
	struct cli_pace pace;
};

static int on_record(void *arg, const struct spw_record *r)
{
	struct rep *x = arg;
	int e;

	cli_pace_wait(&x->pace, r->timestamp_ns);
	e = out_record(x->out, x->fmt, r);

	if (e) {
		x->werr = e;
		return 1;
	}
	x->n++;
	x->bytes += r->len;
	return 0;
}

static int parse_rate(void *out, const char *flag, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!errno && end != s && v > 0 && (!*end || !strcmp(end, "/s"))) {
		*(double *)out = v;
		return CLI_OK;
	}
	return cli_usage("%s: bad rate \"%s\" (records per second, e.g. 1000/s)", flag, s);
}

static void progress(uint64_t done, uint64_t total, uint64_t recs, double secs, bool last)
{
	char hd[32], ht[32], hr[32], eta[32] = "";
	double frac = total ? (double)done / (double)total : 1, rate = secs > 0 ? done / secs : 0;
	int fill = (int)(frac * 30);

	if (frac > 1)
		frac = 1, fill = 30;
	cli_human(done, hd, sizeof(hd));
	cli_human(total, ht, sizeof(ht));
	cli_human((uint64_t)rate, hr, sizeof(hr));
	if (!last && rate > 0 && total > done)
		snprintf(eta, sizeof(eta), " ETA %.0fs", (double)(total - done) / rate);
	fprintf(stderr, "\r[%.*s%.*s] %3.0f%% %s / %s, %llu records, %s/s, %.0f rec/s%s\033[K", fill,
		"##############################", 30 - fill, "..............................",
		frac * 100, hd, ht, (unsigned long long)recs, hr, secs > 0 ? recs / secs : 0.0, eta);
	if (last)
		fputc('\n', stderr);
}

/* The tail now: the ring's, else the end of the disk log. */
static int64_t tail_now(const char *name)
{
	struct spw_topic *t;
	struct spw_topic_info in;
	struct seg_disk_usage dl;
	char dir[PATH_MAX];

	if (spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t) == 0) {
		spw_topic_info(t, &in);
		spw_topic_close(t);
		return (int64_t)in.tail;
	}
	if (!cli_topic_dir(dir, sizeof(dir), name) && !seg_disk_usage(dir, &dl))
		return (int64_t)dl.end;
	return 0;
}

static int run(const char *name, struct cli_reader *cr, struct rep *x, double rate, int64_t end)
{
	struct spw_reader *r = cr->r;
	bool tty = isatty(2);
	uint64_t t0 = cli_mono_ns(), last_draw = 0;
	int64_t start = spw_reader_position(r);
	uint64_t total = end > start ? (uint64_t)(end - start) : 0;
	int n;

	for (;;) {
		int max = rate > 0 && rate < 10240 ? (int)(rate / 10) + 1 : 1024;
		uint64_t now;

		n = cli_reader_poll(cr, max, 0);
		if (x->werr)
			return CLI_ERR; /* said by cmd_replay */
		if (n < 0) {
			if (tty)
				fputc('\n', stderr);
			cli_reader_err(name, r, n, "replaying");
			return CLI_ERR;
		}
		now = cli_mono_ns();
		if (tty && (now - last_draw > 100000000 || n == 0 || spw_reader_done(r))) {
			progress((uint64_t)(spw_reader_position(r) - start), total, x->n,
				 (double)(now - t0) / 1e9, false);
			last_draw = now;
		}
		if (n == 0 || spw_reader_done(r))
			break;
		if (cli_stop)
			return 128 + cli_stop;
		if (rate > 0) { /* ahead of the schedule: sleep until x->n is due */
			double due = (double)x->n / rate * 1e9, el = (double)(cli_mono_ns() - t0);

			if (due > el) {
				struct timespec ts = { (time_t)((due - el) / 1e9),
						       (long)((uint64_t)(due - el) % 1000000000ull) };

				nanosleep(&ts, NULL);
			}
		}
	}
	if (tty)
		progress((uint64_t)(spw_reader_position(r) - start), total, x->n,
			 (double)(cli_mono_ns() - t0) / 1e9, true);
	return CLI_OK;
}

struct replay_args {
	struct spw_reader_opts ro;
	struct where from, to;
	const char *name, *outpath;
	double rate, speed;
	uint64_t max_gap_ms;
	bool verbose;
};

/* Options and the topic name into a (x: the output format). -1 to go on,
 * else the exit status. */
static int replay_args(int argc, char **argv, struct replay_args *a, struct rep *x)
{
	const struct cli_opt spec[] = {
		O_READ_OUT(&a->from, &a->speed, &a->max_gap_ms, &x->fmt, &a->ro.flags),
		O_WHERE("to", &a->to, WHERE_ANY_POS),
		O_FN("rate", 0, CLI_T(double, &a->rate), parse_rate),
		O_STR("output", 'o', &a->outpath),
		O_FLAG("verbose", 'v', &a->verbose),
		O_END,
	};
	int rc = cli_opts_topic(argc, argv, spec, usage, &a->name);

	if (rc >= 0)
		return rc;
	if (a->from.kind == W_NONE)
		return cli_usage("--from is required (earliest, a POSITION or @TIME)");
	if (a->rate > 0 && a->speed > 0)
		return cli_usage("--rate and --speed exclude each other");
	if (a->from.kind == W_LATEST)
		return cli_usage("--from latest replays nothing: use earliest, a POSITION or @TIME");
	/* An empty range is a mistake, not a replay of nothing. */
	if (a->from.kind == W_POSITION && a->to.kind == W_POSITION &&
	    a->to.position <= a->from.position)
		return cli_usage("--to %lld is not after --from %lld: nothing to replay",
				 (long long)a->to.position, (long long)a->from.position);
	if (a->from.kind == W_TIME && a->to.kind == W_TIME && a->to.time_ns <= a->from.time_ns)
		return cli_usage("--to's time is not after --from's: nothing to replay");
	return -1;
}

int cmd_replay(int argc, char **argv)
{
	struct replay_args a = { .max_gap_ms = 1000 };
	struct spw_reader_opts ro;
	struct cli_reader cr;
	struct rep x = { .fmt = FMT_LINES };
	struct where from, to;
	const char *name, *outpath;
	double rate;
	int64_t end, first;
	uint64_t t0;
	bool verbose;
	int rc;

	if ((rc = replay_args(argc, argv, &a, &x)) >= 0)
		return rc;
	ro = a.ro;
	from = a.from;
	to = a.to;
	name = a.name;
	outpath = a.outpath;
	rate = a.rate;
	verbose = a.verbose;
	cli_pace_init(&x.pace, a.speed, a.max_gap_ms * 1000000ull);
	cli_dirs();
	cli_reader_start(&from, &ro);
	end = tail_now(name);
	ro.stop_position = end;
	if (to.kind == W_POSITION && to.position < end)
		ro.stop_position = end = to.position;
	/* 0 is the reader's "no bound": --to @0 (1970) stops before any record
	 * with a time, --to 0 before the first byte (nothing is read). */
	if (to.kind == W_TIME)
		ro.stop_time_ns = to.time_ns > 0 ? to.time_ns : 1;
	if (from.kind == W_POSITION && cli_position_check(name, from.position))
		return CLI_ERR;
	rc = cli_reader_open(&cr, name, &ro, on_record, &x);
	if (rc) {
		cli_reader_err(name, NULL, rc, "replaying");
		return CLI_ERR;
	}
	x.out = stdout;
	if (outpath && !(x.out = fopen(outpath, "we"))) {
		cli_err("cannot write %s: %s", outpath, strerror(errno));
		cli_reader_close(&cr);
		return CLI_ERR;
	}
	cli_catch_signals();
	first = spw_reader_position(cr.r);
	t0 = cli_mono_ns();
	rc = to.kind == W_POSITION && to.position == 0 ? CLI_OK : run(name, &cr, &x, rate, end);
	/* A write that failed, in a record or at this last flush (stdio says
	 * some only then), or the file's close: said once, naming the file. */
	errno = 0;
	if ((fflush(x.out) || ferror(x.out)) && !x.werr)
		x.werr = -(errno ? errno : EIO);
	if (outpath && fclose(x.out) && !x.werr)
		x.werr = -(errno ? errno : EIO);
	if (x.werr) {
		if (x.werr != -EPIPE)
			cli_err("writing records of topic \"%s\" to %s: %s", name,
				outpath ? outpath : "stdout", strerror(-x.werr));
		rc = CLI_ERR;
	}
	cli_pace_report(&x.pace, "replay");
	if (verbose && rc == CLI_OK)
		fprintf(stderr, "spillway replay: %llu records, %llu bytes, positions %lld..%lld, "
			"%.3f s\n",
			(unsigned long long)x.n, (unsigned long long)x.bytes, (long long)first,
			(long long)spw_reader_position(cr.r), (double)(cli_mono_ns() - t0) / 1e9);
	if (spw_reader_skipped(cr.r))
		fprintf(stderr, "spillway: skipped %llu bytes of topic \"%s\" that failed their CRC or "
			"were cut out of the ring as garbage\n",
			(unsigned long long)spw_reader_skipped(cr.r), name);
	cli_reader_close(&cr);
	return rc;
}
