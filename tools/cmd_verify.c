/* SPDX-License-Identifier: MIT */
/*
 * cmd_verify.c - spillway verify NAME [--from X] [--to Y]
 *
 * Every index entry's data CRC, every record header inside, the record
 * counts the index claims, the segments' contiguity and (without --to) the
 * durable checkpoint reached (spill/walk.c), then the headers of the ring's
 * records past the disk log. Prints each bad range
 * (file, positions, why) and a summary; exit 1 when anything is bad.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

static const char usage[] =
	"usage: spillway verify NAME [--from X] [--to Y] [--quiet]\n"
	"Check topic NAME's disk log: each index entry's CRC over its segment bytes, every\n"
	"record header, the record counts, the segments' contiguity, that the log reaches\n"
	"its durable checkpoint (without --to); then the headers of the ring's records not\n"
	"yet on disk. Prints every bad range (file, positions).\n"
	"  --from X, --to Y  only the entries overlapping [X, Y) (positions or @TIME)\n"
	"  -q, --quiet       only the bad ranges and the summary\n"
	"Exit status: 0 clean, 1 corruption found (or the topic is missing), 2 usage.\n"
	CLI_COMMON_HELP;

struct vctx {
	bool quiet;
};

static void on_bad(void *arg, const char *file, uint64_t from, uint64_t to, const char *why)
{
	(void)arg;
	if (to > from)
		printf("BAD %s: positions %llu..%llu (%llu bytes): %s\n", file, (unsigned long long)from,
		       (unsigned long long)to, (unsigned long long)(to - from), why);
	else
		printf("BAD %s: at position %llu: %s\n", file, (unsigned long long)from, why);
}

static void on_seg_end(void *arg, const char *file, uint64_t bytes, uint64_t records, uint64_t nbad)
{
	const struct vctx *v = arg;

	if (!v->quiet || nbad)
		printf("%s %s: %llu bytes, %llu records%s\n", nbad ? "bad" : "ok ", file,
		       (unsigned long long)bytes, (unsigned long long)records,
		       nbad ? " (see BAD above)" : "");
}

static int where_pos(const struct where *w, const char *dir, uint64_t *pos, bool end)
{
	switch (w->kind) {
	case W_POSITION:
		*pos = (uint64_t)w->position;
		return 0;
	case W_TIME:
		if (seg_log_time_pos(dir, w->time_ns, pos))
			*pos = end ? 0 : UINT64_MAX; /* nothing that recent on disk */
		return 0;
	default:
		*pos = 0;
		return 0;
	}
}

/* The ring's records past the disk log: headers only (the ring has no CRCs). */
/* t: the ring, opened before the disk was walked (NULL: none), and
 * reclaimed its reclaim bound read then (read after, a running daemon's
 * progress meanwhile would look lost). Closes t. */
static int verify_ring(struct spw_topic *t, const char *name, uint64_t disk_end,
		       uint64_t unindexed, bool have_disk, uint64_t reclaimed, uint64_t *bytes)
{
	struct spw_topic_info in;
	struct spwd_scan_result sc;
	int64_t from;

	*bytes = 0;
	if (!t)
		return 0;
	spw_topic_info(t, &in);
	/* The ring reclaimed only what was spilled (written): those bytes
	 * belong on disk. Past the indexed end but in the file: readers stop
	 * there until spillwayd's recovery indexes them; past the file too:
	 * acknowledged records are gone. */
	if (have_disk && reclaimed > disk_end + unindexed) {
		char ring[PATH_MAX + 64];

		cli_ring_path(ring, sizeof(ring), name);
		printf("BAD %s: positions %llu..%llu were reclaimed from the ring (spilled) but are "
		       "not on disk\n", ring, (unsigned long long)(disk_end + unindexed),
		       (unsigned long long)reclaimed);
		spw_topic_close(t);
		return 1;
	}
	if (have_disk && reclaimed > disk_end)
		printf("note: positions %llu..%llu left the ring but are not indexed yet: readers "
		       "reach them once spillwayd indexes them (at once when it runs; at its next "
		       "start after a crash)\n",
		       (unsigned long long)disk_end, (unsigned long long)reclaimed);
	/* The header's counters as I1 has them (ring_layout.h): reclaimed <=
	 * tail <= limit, 8-aligned. spw_topic_info reads tail, reclaimed, then
	 * limit: a reclaim in between can put reclaimed past the tail it read,
	 * so a state is BAD only when it stays so, read again. */
	for (int i = 0; i < 3 && (in.tail > in.limit || in.reclaimed > in.tail ||
				  ((in.tail | in.reclaimed) & 7));
	     i++)
		spw_topic_info(t, &in);
	if (in.tail > in.limit || in.reclaimed > in.tail || ((in.tail | in.reclaimed) & 7)) {
		char ring[PATH_MAX + 64];

		cli_ring_path(ring, sizeof(ring), name);
		printf("BAD %s: the ring's header breaks its invariant: reclaimed %llu, tail %llu, "
		       "limit %llu (garbage written into the header)\n",
		       ring, (unsigned long long)in.reclaimed, (unsigned long long)in.tail,
		       (unsigned long long)in.limit);
		spw_topic_close(t);
		return 1;
	}
	from = (int64_t)(have_disk && disk_end > in.reclaimed ? disk_end : in.reclaimed);
	for (int i = 0; i < 1024 && (uint64_t)from < in.tail; i++) {
		int64_t n = spwd_scan(t, from, in.ring_bytes, &sc);

		if (n == -ESTALE) { /* reclaimed meanwhile: it is on disk now */
			spw_topic_info(t, &in);
			from = (int64_t)in.reclaimed;
			continue;
		}
		if (n == -EBADMSG || n == -EUCLEAN || n == -EINVAL) {
			char ring[PATH_MAX + 64];

			cli_ring_path(ring, sizeof(ring), name);
			if (n == -EBADMSG)
				printf("BAD %s: at position %lld: garbage record header in the ring\n",
				       ring, (long long)sc.end);
			else
				printf("BAD %s: at position %lld: the ring's header is garbage (%s)\n",
				       ring, (long long)from,
				       n == -EUCLEAN ? "its tail is past its limit"
						     : "the walk's start is past the tail or unaligned");
			spw_topic_close(t);
			return 1;
		}
		if (n <= 0)
			break; /* a record being written, or the tail */
		*bytes += (uint64_t)n;
		from = sc.end;
	}
	spw_topic_close(t);
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	struct where from = { 0 }, to = { 0 };
	struct vctx v = { false };
	struct seg_log w = { 0 };
	const char *name = NULL;
	char dir[PATH_MAX], hb[32];
	uint64_t ring_bytes = 0, reclaimed = 0;
	struct spw_topic *t;
	bool has_ring, has_data;
	const struct cli_opt spec[] = {
		O_WHERE("from", &from, WHERE_ENDS | WHERE_ANY_POS),
		O_WHERE("to", &to, WHERE_ANY_POS),
		O_FLAG("quiet", 'q', &v.quiet),
		O_END,
	};
	int rc = cli_opts_topic(argc, argv, spec, usage, &name), r, ring_bad = 0;
	bool ring_unreadable = false;

	if (rc >= 0)
		return rc;
	cli_dirs();
	if (cli_log_walker(name, dir, sizeof(dir), &w, &has_ring, &has_data))
		return CLI_ERR;
	w.on_bad = on_bad;
	w.on_seg_end = on_seg_end;
	w.arg = &v;
	where_pos(&from, dir, &w.from, false);
	where_pos(&to, dir, &w.to, true);
	if (from.kind == W_LATEST)
		w.from = UINT64_MAX;
	if ((r = spw_topic_open(G.shm_dir, name, SPW_OPEN_RDONLY, &t)) == 0) {
		struct spw_topic_info in;

		spw_topic_info(t, &in);
		reclaimed = in.reclaimed; /* before the walk: see verify_ring */
	} else {
		char ring[PATH_MAX + 64];

		t = NULL;
		/* A ring there that cannot be opened is no clean log: what it
		 * holds unspilled, and where the log goes on, cannot be told. */
		if (r != -ENOENT) {
			cli_ring_path(ring, sizeof(ring), name);
			printf("BAD %s: cannot be opened: %s%s\n", ring, strerror(-r),
			       r == -EBADMSG ? " (a damaged header)" : "");
			ring_unreadable = true;
		}
	}
	r = seg_log_walk(&w);
	if (r) {
		cli_err("cannot list the segments of topic \"%s\" in %s: %s", name, dir, strerror(-r));
		spw_topic_close(t);
		return CLI_ERR;
	}
	if (!to.kind && from.kind != W_LATEST)
		ring_bad = verify_ring(t, name, w.end, w.unindexed, w.segments > 0, reclaimed,
				       &ring_bytes);
	else
		spw_topic_close(t);
	cli_human(w.bytes, hb, sizeof(hb));
	printf("verified topic %s: %llu segments, %llu bytes (%s), %llu records checked; ring: "
	       "%llu bytes of headers past the disk log",
	       name, (unsigned long long)w.segments, (unsigned long long)w.bytes, hb,
	       (unsigned long long)w.records, (unsigned long long)ring_bytes);
	if (w.unindexed)
		printf("; %llu bytes written but not indexed yet", (unsigned long long)w.unindexed);
	ring_bad += ring_unreadable;
	if (w.bad || ring_bad)
		printf("; %llu BAD ranges (%llu bytes)\n", (unsigned long long)(w.bad + (uint64_t)ring_bad),
		       (unsigned long long)w.bad_bytes);
	else
		printf("; clean\n");
	return w.bad || ring_bad ? CLI_ERR : CLI_OK;
}
