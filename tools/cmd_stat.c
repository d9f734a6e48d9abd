/* SPDX-License-Identifier: MIT */
/*
 * cmd_stat.c - spillway stat [NAME] [--json | --prometheus] [--watch SEC]
 *
 * Per topic: the ring's counters (tail, reclaimed, spilled, durable, limit),
 * fill, rates (two samples ~200 ms apart, or between --watch ticks), the
 * disk log (segments, bytes, oldest and newest record times), the daemon's
 * heartbeat, and each consumer group's position and lag in bytes.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
	"usage: spillway stat [NAME] [--json | --prometheus] [--watch SEC]\n"
	"Counters, rates, disk usage, daemon heartbeat and group lag of one topic, or of all.\n"
	"  --json            one JSON object per topic (a list without NAME); keys include\n"
	"                    topic, tail, spilled, durable, limit, daemon, groups, rates\n"
	"  --prometheus      the Prometheus text exposition format\n"
	"  --watch SEC       print again every SEC seconds (rates between ticks); Ctrl-C ends\n"
	"Rates come from two samples 200 ms apart (or the --watch interval).\n" CLI_COMMON_HELP;

struct grp {
	char name[SPW_NAME_MAX + 1];
	int64_t pos;
};

struct tstat {
	char name[SPW_NAME_MAX + 1];
	struct spw_topic *t;
	struct spw_topic_info in, prev;
	uint64_t prev_ns, now_ns;
	bool alive;
	int live;               /* producers holding a slot */
	double hb_age;
	struct disk_log dl;
	uint64_t oldest_ts, newest_ts;
	struct grp *g;
	int ng;
	uint64_t held_bytes;            /* kept past retention for the slowest group */
	char holder[SPW_NAME_MAX + 1];
};

static int add_group(void *arg, const char *group, int64_t pos)
{
	struct tstat *s = arg;
	struct grp *ng = realloc(s->g, (size_t)(s->ng + 1) * sizeof(*ng));

	if (!ng)
		return 1;
	s->g = ng;
	snprintf(ng[s->ng].name, sizeof(ng[s->ng].name), "%s", group);
	ng[s->ng++].pos = pos;
	return 0;
}

static int first_ts(void *arg, const struct spw_record *r)
{
	*(uint64_t *)arg = r->timestamp_ns;
	return 1;
}

/* The newest record time: the disk's, or the ring's committed run past it. */
static uint64_t newest_in_ring(struct tstat *s)
{
	uint64_t newest = 0;
	int64_t from = (int64_t)(s->in.spilled > s->in.reclaimed ? s->in.spilled : s->in.reclaimed);

	if (!s->t)
		return 0;
	for (int i = 0; i < 4 && (uint64_t)from < s->in.tail; i++) {
		struct spwd_scan_result sc;
		int64_t n = spwd_scan(s->t, from, s->in.ring_bytes, &sc);

		if (n <= 0)
			break;
		if (sc.max_timestamp_ns > newest)
			newest = sc.max_timestamp_ns;
		from = sc.end;
	}
	return newest;
}

/* Producers holding a slot with the kernel's word for it (ring/locks.c). */
static int count_live(struct spw_topic *t)
{
	struct spw_topic_info in;
	struct spw_producer_info *pi;
	int n, live = 0;

	if (spw_topic_info(t, &in) || !(pi = calloc(in.max_producers, sizeof(*pi))))
		return 0;
	n = spw_topic_producers(t, pi, (int)in.max_producers);
	for (int i = 0; i < n; i++)
		live += pi[i].alive;
	free(pi);
	return live;
}

/* Seconds the daemon has been waiting on a live producer's claim, or -1. */
static double stall_s(const struct spw_topic_info *in)
{
	uint64_t now = ring_realtime_ns();

	if (in->stall_slot < 0 || !in->stall_since_ns)
		return -1;
	return now > in->stall_since_ns ? (double)(now - in->stall_since_ns) / 1e9 : 0;
}

static void sample(struct tstat *s, bool full)
{
	char dir[PATH_MAX];
	struct spw_reader_opts ro = { 0 };
	struct spw_reader *r;

	if (s->t) {
		s->prev = s->in;
		s->prev_ns = s->now_ns;
		spw_topic_info(s->t, &s->in);
		s->now_ns = cli_mono_ns();
		s->live = count_live(s->t);
		s->alive = cli_daemon_alive(&s->in, &s->hb_age);
	}
	if (!full)
		return;
	cli_topic_dir(dir, sizeof(dir), s->name);
	cli_disk_log(dir, &s->dl);
	free(s->g);
	s->g = NULL;
	s->ng = 0;
	spw_group_list(G.data_dir, s->name, add_group, s);
	{
		/* Who holds retention back, as the daemon's plan says
		 * (spill/retention.c). */
		struct topic_conf conf;
		struct seg_ret_plan p;

		s->held_bytes = 0;
		s->holder[0] = '\0';
		if (s->t && seg_conf_load(dir, &conf) == 0 &&
		    seg_retention_plan(G.data_dir, s->name, &conf,
				       s->in.spilled - s->in.spilled % conf.segment_bytes,
				       cli_now_ns(), &p) == 0) {
			s->held_bytes = p.held_bytes;
			snprintf(s->holder, sizeof(s->holder), "%s", p.holder);
			seg_ret_plan_free(&p);
		}
	}
	s->oldest_ts = 0;
	ro.shm_dir = G.shm_dir;
	ro.data_dir = G.data_dir;
	ro.flags = SPW_READER_NO_VERIFY | SPW_READER_SKIP_CORRUPT;
	if (spw_reader_open(s->name, &ro, &r) == 0) {
		spw_reader_poll(r, first_ts, &s->oldest_ts, 1);
		spw_reader_close(r);
	}
	s->newest_ts = newest_in_ring(s);
	if (s->dl.newest_ts > s->newest_ts)
		s->newest_ts = s->dl.newest_ts;
}

static uint64_t tail_of(const struct tstat *s)
{
	return s->t ? s->in.tail : s->dl.end;
}

static double rate(const struct tstat *s, uint64_t now, uint64_t before)
{
	double dt = (double)(s->now_ns - s->prev_ns) / 1e9;

	return s->t && s->prev_ns && dt > 0 && now >= before ? (double)(now - before) / dt : 0;
}

static void ts_json(const char *key, uint64_t ns)
{
	char iso[48];

	if (!ns) {
		printf(",\"%s_ns\":null,\"%s\":null", key, key);
		return;
	}
	cli_iso8601(ns, iso, sizeof(iso));
	printf(",\"%s_ns\":%llu,\"%s\":\"%s\"", key, (unsigned long long)ns, key, iso);
}

static void print_json(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->in;

	printf("{\"topic\":");
	out_json_str(stdout, s->name, strlen(s->name));
	printf(",\"ring\":%s,\"tail\":%llu,\"reclaimed\":%llu,\"spilled\":%llu,\"durable\":%llu,"
	       "\"limit\":%llu",
	       s->t ? "true" : "false", (unsigned long long)tail_of(s),
	       (unsigned long long)(s->t ? in->reclaimed : s->dl.first),
	       (unsigned long long)(s->t ? in->spilled : s->dl.end),
	       (unsigned long long)(s->t ? in->durable : s->dl.end), (unsigned long long)in->limit);
	if (s->t)
		printf(",\"ring_bytes\":%llu,\"segment_bytes\":%llu,\"max_record\":%u,\"no_spill\":%s,"
		       "\"fill_pct\":%.2f",
		       (unsigned long long)in->ring_bytes, (unsigned long long)in->segment_bytes,
		       in->max_record, in->flags & SPW_TOPIC_NO_SPILL ? "true" : "false",
		       100.0 * (double)(in->tail - in->reclaimed) / (double)in->ring_bytes);
	printf(",\"rates\":{\"interval_s\":%.3f,\"produce_bytes_per_s\":%.0f,"
	       "\"spill_bytes_per_s\":%.0f,\"durable_bytes_per_s\":%.0f}",
	       s->prev_ns ? (double)(s->now_ns - s->prev_ns) / 1e9 : 0.0,
	       rate(s, in->tail, s->prev.tail), rate(s, in->spilled, s->prev.spilled),
	       rate(s, in->durable, s->prev.durable));
	printf(",\"segments\":{\"count\":%zu,\"bytes\":%llu,\"records\":%llu,\"first\":%llu,"
	       "\"end\":%llu}",
	       s->dl.segments, (unsigned long long)s->dl.bytes, (unsigned long long)s->dl.records,
	       (unsigned long long)s->dl.first, (unsigned long long)s->dl.end);
	ts_json("oldest_timestamp", s->oldest_ts);
	ts_json("newest_timestamp", s->newest_ts);
	if (s->t) {
		printf(",\"producers\":{\"live\":%d,\"max\":%u},\"aborted_claims\":%llu,"
		       "\"corrupt_bytes\":%llu,\"disk_bad_ranges\":%llu,"
		       "\"retention\":{\"held_bytes\":%llu,\"held_by\":",
		       s->live, in->max_producers,
		       (unsigned long long)in->aborted_claims, (unsigned long long)in->corrupt_bytes,
		       (unsigned long long)in->disk_bad_ranges, (unsigned long long)s->held_bytes);
		if (s->holder[0])
			out_json_str(stdout, s->holder, strlen(s->holder));
		else
			printf("null");
		printf(",\"forced_deletions\":%u},\"spill_error\":", in->retention_forced);
		if (in->spill_error)
			out_json_str(stdout, strerror(-in->spill_error), strlen(strerror(-in->spill_error)));
		else
			printf("null");
		printf(",\"durable_error\":");
		if (in->durable_error)
			out_json_str(stdout, strerror(-in->durable_error), strlen(strerror(-in->durable_error)));
		else
			printf("null");
		if (stall_s(in) >= 0)
			printf(",\"stall\":{\"slot\":%d,\"position\":%llu,\"pid\":%u,\"seconds\":%.3f}",
			       in->stall_slot, (unsigned long long)in->stall_position, in->stall_pid,
			       stall_s(in));
		else
			printf(",\"stall\":null");
	}
	if (s->t && in->daemon_pid)
		printf(",\"daemon\":{\"alive\":%s,\"pid\":%u,\"heartbeat_age_s\":%.3f}",
		       s->alive ? "true" : "false", in->daemon_pid, s->hb_age);
	else
		printf(",\"daemon\":{\"alive\":false,\"pid\":null,\"heartbeat_age_s\":null}");
	printf(",\"groups\":[");
	for (int i = 0; i < s->ng; i++) {
		printf("%s{\"group\":", i ? "," : "");
		out_json_str(stdout, s->g[i].name, strlen(s->g[i].name));
		if (s->g[i].pos < 0)
			printf(",\"position\":null,\"lag_bytes\":null,\"error\":\"%s\"}",
			       strerror((int)-s->g[i].pos));
		else
			printf(",\"position\":%lld,\"lag_bytes\":%llu}", (long long)s->g[i].pos,
			       tail_of(s) > (uint64_t)s->g[i].pos
				       ? (unsigned long long)(tail_of(s) - (uint64_t)s->g[i].pos)
				       : 0ull);
	}
	printf("]}");
}

static void print_text(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->in;
	char a[32], b[32], c[32], o[48] = "-", n[48] = "-";

	printf("topic %s\n", s->name);
	if (s->t) {
		cli_human(in->ring_bytes, a, sizeof(a));
		printf("  tail %llu  spilled %llu  durable %llu  limit %llu  reclaimed %llu\n",
		       (unsigned long long)in->tail, (unsigned long long)in->spilled,
		       (unsigned long long)in->durable, (unsigned long long)in->limit,
		       (unsigned long long)in->reclaimed);
		cli_human((uint64_t)rate(s, in->tail, s->prev.tail), b, sizeof(b));
		cli_human((uint64_t)rate(s, in->spilled, s->prev.spilled), c, sizeof(c));
		printf("  ring %s, %.1f%% full; produce %s/s, spill %s/s (over %.2f s)\n", a,
		       100.0 * (double)(in->tail - in->reclaimed) / (double)in->ring_bytes, b, c,
		       (double)(s->now_ns - s->prev_ns) / 1e9);
		printf("  producers %d live of %u slots\n", s->live, in->max_producers);
		if (stall_s(in) >= 0)
			printf("  STALLED: spilling waits at position %llu for %.1f s: producer slot %d "
			       "(pid %u) holds it uncommitted; a live producer is never aborted "
			       "(stopped? in a debugger?)\n",
			       (unsigned long long)in->stall_position, stall_s(in), in->stall_slot,
			       in->stall_pid);
		if (in->durable_error)
			printf("  DURABILITY FAILED: %s %s; durable stays at %llu and durable "
			       "acknowledgements fail (the daemon log says more; fix it, then restart "
			       "spillwayd)\n",
			       in->durable_error == -EIO || in->durable_error == -ENOSPC ||
					       in->durable_error == -EDQUOT
				       ? "an fdatasync returned"
				       : "the durable checkpoint could not be kept:",
			       strerror(-in->durable_error), (unsigned long long)in->durable);
		if (in->spill_error)
			printf("  SPILL ERROR: spillwayd cannot write the segments: %s (producers wait "
			       "once the ring is full; it retries)\n",
			       strerror(-in->spill_error));
		if (s->held_bytes)
			printf("  retention held back by group \"%s\": %llu bytes kept past retention "
			       "(retention_max_lag caps it; topic.conf)\n",
			       s->holder, (unsigned long long)s->held_bytes);
		if (in->retention_forced)
			printf("  RETENTION FORCED: %u segment(s) deleted before a group read them (past "
			       "retention_max_lag): that group's reads say -ERANGE\n",
			       in->retention_forced);
		if (in->disk_bad_ranges)
			printf("  DISK DAMAGE: %llu range(s) of the log fail their CRC (kept; readers get "
			       "-EBADMSG there, --skip-corrupt passes them; spillway verify %s lists "
			       "them)\n",
			       (unsigned long long)in->disk_bad_ranges, s->name);
		if (in->aborted_claims || in->corrupt_bytes)
			printf("  aborted claims of dead producers %llu; garbage cut out of the ring "
			       "%llu bytes\n",
			       (unsigned long long)in->aborted_claims,
			       (unsigned long long)in->corrupt_bytes);
	} else {
		printf("  no ring (disk only); the log ends at %llu\n", (unsigned long long)s->dl.end);
	}
	cli_human(s->dl.bytes, a, sizeof(a));
	if (s->oldest_ts)
		cli_iso8601(s->oldest_ts, o, sizeof(o));
	if (s->newest_ts)
		cli_iso8601(s->newest_ts, n, sizeof(n));
	printf("  disk %zu segments, %s; oldest record %s, newest %s\n", s->dl.segments, a, o, n);
	if (s->t && s->alive)
		printf("  daemon alive, pid %u, heartbeat %.2f s ago\n", in->daemon_pid, s->hb_age);
	else if (s->t && in->daemon_pid)
		printf("  daemon NOT running (pid %u, last heartbeat %.1f s ago)\n", in->daemon_pid,
		       s->hb_age);
	else
		printf("  daemon NOT running (none ever attached)\n");
	for (int i = 0; i < s->ng; i++) {
		if (s->g[i].pos < 0)
			printf("  group %s: unreadable (%s)\n", s->g[i].name, strerror((int)-s->g[i].pos));
		else
			printf("  group %s: position %lld, lag %llu bytes\n", s->g[i].name,
			       (long long)s->g[i].pos,
			       tail_of(s) > (uint64_t)s->g[i].pos
				       ? (unsigned long long)(tail_of(s) - (uint64_t)s->g[i].pos)
				       : 0ull);
	}
}

/* --- Prometheus text format: each family's HELP and TYPE once, then a
 * sample per topic (and per group). */
enum { M_TAIL, M_RECLAIMED, M_SPILLED, M_DURABLE, M_LIMIT, M_RING, M_FILL, M_PROD, M_SPILL,
       M_SEGS, M_DISK, M_OLDEST, M_NEWEST, M_UP, M_HB, M_PRODUCERS, M_STALL, M_ABORTED,
       M_CORRUPT, M_COUNT };

static const struct {
	const char *name, *type, *help;
	bool ring_only;
} fam[M_COUNT] = {
	{ "spillway_tail_bytes", "counter", "Next free position of the log (bytes produced).", false },
	{ "spillway_reclaimed_bytes", "counter", "Oldest position still in the ring.", true },
	{ "spillway_spilled_bytes", "counter", "Position up to which the log is in segment files.",
	  false },
	{ "spillway_durable_bytes", "counter", "Position up to which the log is fdatasync'd.", false },
	{ "spillway_limit_bytes", "gauge", "Producers may not claim past this position.", true },
	{ "spillway_ring_size_bytes", "gauge", "Size of the shared-memory ring.", true },
	{ "spillway_ring_fill_ratio", "gauge", "Share of the ring holding unreclaimed records (0..1).",
	  true },
	{ "spillway_produce_bytes_per_second", "gauge", "Tail growth over the sampling interval.", true },
	{ "spillway_spill_bytes_per_second", "gauge", "Spilled growth over the sampling interval.", true },
	{ "spillway_segments", "gauge", "Segment files on disk.", false },
	{ "spillway_segment_files_bytes", "gauge", "Bytes in segment files on disk.", false },
	{ "spillway_oldest_record_timestamp_seconds", "gauge", "Time of the oldest record kept.", false },
	{ "spillway_newest_record_timestamp_seconds", "gauge", "Time of the newest record.", false },
	{ "spillway_daemon_up", "gauge", "1 when a spillwayd heartbeat is under 2 s old.", false },
	{ "spillway_daemon_heartbeat_age_seconds", "gauge", "Age of the last spillwayd heartbeat.", true },
	{ "spillway_producers", "gauge", "Producers alive (holding a slot's lock).", true },
	{ "spillway_stall_seconds", "gauge",
	  "How long spilling has waited on a live producer's uncommitted record (0: not stalled).",
	  true },
	{ "spillway_aborted_claims_total", "counter", "Claims of dead producers the daemon aborted.",
	  true },
	{ "spillway_corrupt_bytes_total", "counter", "Garbage bytes the daemon cut out of the ring.",
	  true },
};

static bool prom_value(const struct tstat *s, int m, long double *v)
{
	const struct spw_topic_info *in = &s->in;

	if (fam[m].ring_only && !s->t)
		return false;
	switch (m) {
	case M_TAIL: *v = tail_of(s); break;
	case M_RECLAIMED: *v = in->reclaimed; break;
	case M_SPILLED: *v = s->t ? in->spilled : s->dl.end; break;
	case M_DURABLE: *v = s->t ? in->durable : s->dl.end; break;
	case M_LIMIT: *v = in->limit; break;
	case M_RING: *v = in->ring_bytes; break;
	case M_FILL: *v = (long double)(in->tail - in->reclaimed) / in->ring_bytes; break;
	case M_PROD: *v = rate(s, in->tail, s->prev.tail); break;
	case M_SPILL: *v = rate(s, in->spilled, s->prev.spilled); break;
	case M_SEGS: *v = s->dl.segments; break;
	case M_DISK: *v = s->dl.bytes; break;
	case M_OLDEST: *v = s->oldest_ts / 1e9L; return s->oldest_ts != 0;
	case M_NEWEST: *v = s->newest_ts / 1e9L; return s->newest_ts != 0;
	case M_UP: *v = s->alive; break;
	case M_HB: *v = s->hb_age; return in->daemon_pid != 0;
	case M_PRODUCERS: *v = s->live; break;
	case M_STALL: *v = stall_s(in) > 0 ? stall_s(in) : 0; break;
	case M_ABORTED: *v = in->aborted_claims; break;
	case M_CORRUPT: *v = in->corrupt_bytes; break;
	default: return false;
	}
	return true;
}

static void prom_num(long double v)
{
	if (v == (long double)(unsigned long long)v)
		printf("%llu\n", (unsigned long long)v);
	else
		printf("%.6Lf\n", v);
}

static void print_prom(const struct tstat *st, int n)
{
	long double v;

	for (int m = 0; m < M_COUNT; m++) {
		printf("# HELP %s %s\n# TYPE %s %s\n", fam[m].name, fam[m].help, fam[m].name,
		       fam[m].type);
		for (int i = 0; i < n; i++) {
			if (!prom_value(&st[i], m, &v))
				continue;
			printf("%s{topic=\"%s\"} ", fam[m].name, st[i].name);
			prom_num(v);
		}
	}
	printf("# HELP spillway_group_position_bytes Committed position of a consumer group.\n"
	       "# TYPE spillway_group_position_bytes gauge\n");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < st[i].ng; k++)
			if (st[i].g[k].pos >= 0)
				printf("spillway_group_position_bytes{topic=\"%s\",group=\"%s\"} %lld\n",
				       st[i].name, st[i].g[k].name, (long long)st[i].g[k].pos);
	printf("# HELP spillway_group_lag_bytes Bytes between a group's position and the tail.\n"
	       "# TYPE spillway_group_lag_bytes gauge\n");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < st[i].ng; k++)
			if (st[i].g[k].pos >= 0)
				printf("spillway_group_lag_bytes{topic=\"%s\",group=\"%s\"} %llu\n",
				       st[i].name, st[i].g[k].name,
				       tail_of(&st[i]) > (uint64_t)st[i].g[k].pos
					       ? (unsigned long long)(tail_of(&st[i]) -
								      (uint64_t)st[i].g[k].pos)
					       : 0ull);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

struct stat_args {
	const char *name; /* one topic, or NULL: all */
	bool json, prom;
	double watch;     /* seconds between samples; 0: once */
};

static int stat_args(int argc, char **argv, struct stat_args *a)
{
	enum { JSON = OPT_FIRST_LOCAL, PROM, WATCH };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, JSON },
		{ "prometheus", no_argument, NULL, PROM },
		{ "watch", required_argument, NULL, WATCH },
		CLI_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	double ms;
	int o, rc = 0;

	while ((o = cli_getopt(argc, argv, "", opts, usage, &rc)) != -1) {
		switch (o) {
		case -2: return rc;
		case JSON: a->json = true; break;
		case PROM: a->prom = true; break;
		case WATCH:
			/* The shared duration syntax (spill/conf.c), bare = seconds. */
			if (seg_parse_duration(optarg, 1e3, &ms) || ms < 50 || ms > 86400e3)
				return cli_usage("--watch: bad interval \"%s\" (seconds, 0.05 .. 86400)",
						 optarg);
			a->watch = ms / 1e3;
			break;
		default: return cli_usage("unexpected option");
		}
	}
	if (a->json && a->prom)
		return cli_usage("--json and --prometheus exclude each other");
	if (optind < argc && (rc = cli_topic_arg(argc, argv, &a->name)))
		return rc;
	return -1;
}

/* One sample of every topic, in the format asked for. */
static void stat_print(const struct stat_args *a, struct tstat *st, int n, int tick)
{
	if (a->prom) {
		print_prom(st, n);
	} else if (a->json) {
		if (!a->name)
			printf("[");
		for (int i = 0; i < n; i++) {
			printf("%s", i ? "," : "");
			print_json(&st[i]);
		}
		printf(a->name ? "\n" : "]\n");
	} else {
		if (a->watch) {
			char now[48];

			cli_iso8601(cli_now_ns(), now, sizeof(now));
			printf("%s-- %s\n", tick ? "\n" : "", now);
		}
		if (!n)
			printf("no topics in %s or %s\n", G.shm_dir, G.data_dir);
		for (int i = 0; i < n; i++)
			print_text(&st[i]);
	}
	fflush(stdout);
}

int cmd_stat(int argc, char **argv)
{
	struct stat_args a = { 0 };
	struct tstat *st = NULL;
	char **names = NULL, *one[1];
	int rc, n;

	if ((rc = stat_args(argc, argv, &a)) >= 0)
		return rc;
	cli_dirs();
	if (a.name) {
		if (!cli_topic_exists(a.name, NULL, NULL)) {
			cli_not_found(a.name);
			return CLI_ERR;
		}
		one[0] = (char *)a.name;
		names = one;
		n = 1;
	} else if ((n = cli_topic_names(&names)) < 0) {
		return CLI_ERR;
	}
	st = calloc((size_t)n + 1, sizeof(*st));
	if (!st)
		return CLI_ERR;
	for (int i = 0; i < n; i++) {
		snprintf(st[i].name, sizeof(st[i].name), "%s", names[i]);
		spw_topic_open(G.shm_dir, names[i], SPW_OPEN_RDONLY, &st[i].t);
		sample(&st[i], false);
	}
	cli_catch_signals();
	sleep_ns(200000000);
	for (int tick = 0; !cli_stop; tick++) {
		for (int i = 0; i < n; i++)
			sample(&st[i], true);
		stat_print(&a, st, n, tick);
		if (!a.watch)
			break;
		sleep_ns((uint64_t)(a.watch * 1e9));
	}
	for (int i = 0; i < n; i++) {
		spw_topic_close(st[i].t);
		free(st[i].g);
		if (!a.name)
			free(names[i]);
	}
	if (!a.name)
		free(names);
	free(st);
	return CLI_OK;
}
