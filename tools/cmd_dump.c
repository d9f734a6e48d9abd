/* SPDX-License-Identifier: MIT */
/*
 * cmd_dump.c - spillway dump NAME --from X [--count N]
 *
 * Records with their headers, for debugging (kafka-dump-log's job): the
 * segment files walked directly, so PADDING and ABORTED records show too,
 * then the ring past the end of the disk log (a record still being written
 * shows as CLAIMED). --from may be any position: the dump starts at the
 * first record at or after it.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

static const char usage[] =
	"usage: spillway dump NAME [--from X] [--count N] [--no-ring]\n"
	"Print topic NAME's records with their headers: position, type (DATA, PADDING,\n"
	"ABORTED, or CLAIMED for one being written), length, timestamp, a preview.\n"
	"Reads the segment files directly, then the ring past the end of the disk log.\n"
	"  --from X          earliest (default), any POSITION (the first record at or\n"
	"                    after it), or @TIME\n"
	"  --count N         stop after N records (all types count)\n"
	"  --no-ring         the segment files only\n" CLI_COMMON_HELP;

struct dctx {
	uint64_t count, n, time_ns;
	bool have_count, time_skip;
};

static int show(void *arg, const struct seg_log_rec *r)
{
	struct dctx *d = arg;
	char ts[48] = "-";

	if (d->time_skip) {
		if (r->type != SEG_LOG_DATA || r->ts < d->time_ns)
			return 0;
		d->time_skip = false;
	}
	if (d->have_count && d->n >= d->count)
		return 1;
	if (r->ts)
		cli_iso8601(r->ts, ts, sizeof(ts));
	printf("%14llu  %-7s %9u %6llu  %-30s  ", (unsigned long long)r->pos, seg_log_type(r->type),
	       r->len, (unsigned long long)r->span, ts);
	if (r->type == SEG_LOG_DATA)
		out_preview(stdout, r->data, r->len, 48);
	else if (r->type == SEG_LOG_PADDING)
		printf("(to the end of the ring lap)");
	else if (r->type == SEG_LOG_ABORTED)
		printf("(skipped by readers)");
	else if (r->type == SEG_LOG_CORRUPT)
		printf("(garbage the daemon cut out of the ring; readers skip and count it)");
	else if (r->type == SEG_LOG_CLAIMED)
		printf("(claimed, not committed yet: a record, or the rest of a batch)");
	putchar('\n');
	d->n++;
	return d->have_count && d->n >= d->count;
}

static void on_seg(void *arg, const char *file, const struct seg_idx_hdr *h, int entries)
{
	(void)arg;
	printf("# segment %s: base %llu, first %llu, %d index entries\n", file,
	       (unsigned long long)h->base, (unsigned long long)h->first, entries);
}

static void on_bad(void *arg, const char *file, uint64_t from, uint64_t to, const char *why)
{
	(void)arg;
	printf("# BAD %s: positions %llu..%llu: %s\n", file, (unsigned long long)from,
	       (unsigned long long)to, why);
}

static int dump_ring(const char *name, struct dctx *d, uint64_t disk_end, bool have_disk,
		     uint64_t from)
{
	char ring[PATH_MAX + 64];
	struct spw_topic *t;
	struct spw_topic_info in;
	uint64_t start, at = 0;
	int r;

	if (spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t))
		return CLI_OK;
	spw_topic_info(t, &in);
	start = have_disk && disk_end > in.reclaimed && disk_end <= in.tail ? disk_end : in.reclaimed;
	cli_ring_path(ring, sizeof(ring), name);
	if (from < in.tail) {
		printf("# ring %s: reclaimed %llu, tail %llu, from %llu\n", ring,
		       (unsigned long long)in.reclaimed, (unsigned long long)in.tail,
		       (unsigned long long)(from > start ? from : start));
		r = seg_log_ring_walk(t, start, from, 0, show, d, &at);
		if (r == -ESTALE)
			printf("# the ring moved on at position %llu (reclaimed while reading)\n",
			       (unsigned long long)at);
		else if (r == -EBADMSG)
			printf("# BAD %s: garbage record header at position %llu\n", ring,
			       (unsigned long long)at);
		if (r == -EBADMSG) {
			spw_topic_close(t);
			return CLI_ERR;
		}
	}
	spw_topic_close(t);
	return CLI_OK;
}

int cmd_dump(int argc, char **argv)
{
	struct where from = { 0 };
	struct dctx d = { 0 };
	struct seg_log w = { 0 };
	const char *name = NULL;
	char dir[PATH_MAX];
	bool no_ring = false;
	const struct cli_opt spec[] = {
		O_WHERE("from", &from, WHERE_ENDS | WHERE_ANY_POS),
		O_COUNT("count", &d.count, &d.have_count),
		O_FLAG("no-ring", 0, &no_ring),
		O_END,
	};
	int rc = cli_opts_topic(argc, argv, spec, usage, &name), r;

	if (rc >= 0)
		return rc;
	rc = CLI_OK;
	cli_dirs();
	if (cli_log_walker(name, dir, sizeof(dir), &w, NULL, NULL))
		return CLI_ERR;
	w.on_rec = show;
	w.on_seg = on_seg;
	w.on_bad = on_bad;
	w.arg = &d;
	if (from.kind == W_POSITION) {
		w.from = (uint64_t)from.position;
	} else if (from.kind == W_TIME) {
		d.time_ns = from.time_ns;
		d.time_skip = true;
		if (seg_log_time_pos(dir, from.time_ns, &w.from))
			w.from = UINT64_MAX; /* not on disk: the ring */
	} else if (from.kind == W_LATEST) {
		w.from = UINT64_MAX;
	}
	printf("%14s  %-7s %9s %6s  %-30s  %s\n", "POSITION", "TYPE", "LENGTH", "SPAN", "TIMESTAMP",
	       "DATA");
	if (w.from != UINT64_MAX) {
		r = seg_log_walk(&w);
		if (r) {
			cli_err("cannot list the segments of topic \"%s\" in %s: %s", name, dir,
				strerror(-r));
			return CLI_ERR;
		}
	}
	if (from.kind == W_LATEST) {
		struct spw_topic *t;
		struct spw_topic_info in;

		if (spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t) == 0) {
			spw_topic_info(t, &in);
			w.from = in.tail;
			spw_topic_close(t);
		}
	}
	if (!no_ring && !w.stopped && !(d.have_count && d.n >= d.count))
		rc = dump_ring(name, &d, w.end, w.segments > 0, w.from == UINT64_MAX ? 0 : w.from);
	if (w.bad)
		rc = CLI_ERR;
	return rc;
}
