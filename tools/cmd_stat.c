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

struct tstat {
	struct seg_metrics m;          /* spill/metrics.c: the figures */
	struct cli_daemon_look daemon; /* m.alive is daemon.state == CLI_DAEMON_ALIVE */
	struct spw_topic_info prev;    /* the sample before, for rates */
	uint64_t prev_ns, now_ns;
	int ring_err;                  /* a ring file there that cannot be opened: -errno */
};

/* Seconds the daemon has been waiting on a live producer's claim, or -1. */
static double stall_s(const struct spw_topic_info *in)
{
	uint64_t now = ring_realtime_ns();

	if (in->stall_slot < 0 || !in->stall_since_ns)
		return -1;
	return now > in->stall_since_ns ? (double)(now - in->stall_since_ns) / 1e9 : 0;
}

/* The ring's counters (for rates); with full, everything else too. */
static void sample(struct tstat *s, bool full)
{
	s->prev = s->m.in;
	s->prev_ns = s->now_ns;
	if (full) {
		s->m.reader_pids = true;
		seg_metrics_gather(G.data_dir, &s->m);
	}
	else if (s->m.t)
		spw_topic_info(s->m.t, &s->m.in);
	s->now_ns = cli_mono_ns();
	if (s->m.t) {
		cli_daemon_look(s->m.t, &s->m.in, &s->daemon);
		s->m.hb_age = s->daemon.age_s;
		s->m.alive = s->daemon.state == CLI_DAEMON_ALIVE;
	}
}

static double rate(const struct tstat *s, uint64_t now, uint64_t before)
{
	double dt = (double)(s->now_ns - s->prev_ns) / 1e9;

	return s->m.t && s->prev_ns && dt > 0 && now >= before ? (double)(now - before) / dt : 0;
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

/* The ring's own: producers, damage, retention, errors, the stall. */
static void json_ring(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->m.in;
	const struct spw_producer_info *pi = &s->m.tail_claim;

	printf(",\"producers\":{\"live\":%d,\"max\":%u,\"blocked\":%u,\"solo_slot\":", s->m.live,
	       in->max_producers, in->producers_waiting);
	if (s->m.solo_slot >= 0)
		printf("%d}", s->m.solo_slot);
	else
		printf("null}");
	printf(",\"aborted_claims\":%llu,"
	       "\"corrupt_bytes\":%llu,\"disk_bad_ranges\":%llu,"
	       "\"retention\":{\"held_bytes\":%llu,\"held_by\":",
	       (unsigned long long)in->aborted_claims, (unsigned long long)in->corrupt_bytes,
	       (unsigned long long)in->disk_bad_ranges, (unsigned long long)s->m.held_bytes);
	if (s->m.holder[0])
		out_json_str(stdout, s->m.holder, strlen(s->m.holder));
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
	if (pi->slot != (uint32_t)-1)
		printf(",\"claim_at_tail\":{\"slot\":%u,\"pid\":%u,\"position\":%lld}", pi->slot,
		       pi->pid, (long long)pi->claim);
	else
		printf(",\"claim_at_tail\":null");
}

static void json_groups(const struct seg_metrics *m)
{
	if (m->groups_err)
		printf(",\"groups_error\":\"%s\"", strerror(-m->groups_err));
	printf(",\"groups\":[");
	for (int i = 0; i < m->ng; i++) {
		const struct seg_metrics_group *g = &m->g[i];

		printf("%s{\"group\":", i ? "," : "");
		out_json_str(stdout, g->name, strlen(g->name));
		printf(",\"reading\":%s", g->reading < 0 ? "null" : g->reading ? "true" : "false");
		if (g->reading > 0 && g->reader_pid)
			printf(",\"reader_pid\":%u", g->reader_pid);
		if (g->pos == -ENOENT)
			printf(",\"position\":null,\"lag_bytes\":null,\"lag_s\":null}");
		else if (g->pos < 0)
			printf(",\"position\":null,\"lag_bytes\":null,\"lag_s\":null,\"error\":\"%s\"}",
			       strerror((int)-g->pos));
		else if (g->lag_ns < 0)
			printf(",\"position\":%lld,\"lag_bytes\":%llu,\"lag_s\":null}",
			       (long long)g->pos, (unsigned long long)g->lag_bytes);
		else
			printf(",\"position\":%lld,\"lag_bytes\":%llu,\"lag_s\":%.3f}",
			       (long long)g->pos, (unsigned long long)g->lag_bytes,
			       (double)g->lag_ns / 1e9);
	}
	printf("]}");
}

static void print_json(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->m.in;

	printf("{\"topic\":");
	out_json_str(stdout, s->m.name, strlen(s->m.name));
	printf(",\"ring\":%s,\"tail\":%llu,\"reclaimed\":%llu,\"spilled\":%llu,\"durable\":%llu,"
	       "\"limit\":%llu",
	       s->m.t ? "true" : "false", (unsigned long long)seg_metrics_tail(&s->m),
	       (unsigned long long)(s->m.t ? in->reclaimed : s->m.dl.first),
	       (unsigned long long)(s->m.t ? in->spilled : s->m.dl.end),
	       (unsigned long long)(s->m.t ? in->durable : s->m.dl.end), (unsigned long long)in->limit);
	if (s->ring_err) {
		const char *e = strerror(-s->ring_err);

		printf(",\"ring_error\":");
		out_json_str(stdout, e, strlen(e));
	} else {
		printf(",\"ring_error\":null");
	}
	if (s->m.t)
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
	       s->m.dl.segments, (unsigned long long)s->m.dl.bytes, (unsigned long long)s->m.dl.records,
	       (unsigned long long)s->m.dl.first, (unsigned long long)s->m.dl.end);
	ts_json("oldest_timestamp", s->m.oldest_ts);
	ts_json("newest_timestamp", s->m.newest_ts);
	if (s->m.t)
		json_ring(s);
	/* Unattached: the pid is the data dir's daemon's, which refused it or
	 * has not seen it yet (the ring header's is a daemon's before). */
	if (s->m.t && s->daemon.state == CLI_DAEMON_UNATTACHED && s->daemon.pid)
		printf(",\"daemon\":{\"alive\":false,\"holds_ring\":false,\"pid\":%u,"
		       "\"heartbeat_age_s\":null", s->daemon.pid);
	else if (s->m.t && in->daemon_pid)
		printf(",\"daemon\":{\"alive\":%s,\"holds_ring\":%s,\"pid\":%u,"
		       "\"heartbeat_age_s\":%.3f",
		       s->m.alive ? "true" : "false",
		       s->daemon.state >= CLI_DAEMON_SILENT ? "true" : "false", in->daemon_pid, s->m.hb_age);
	else
		printf(",\"daemon\":{\"alive\":false,\"holds_ring\":false,\"pid\":null,"
		       "\"heartbeat_age_s\":null");
	/* Why the data dir's daemon did not attach the topic (cli_refusal). */
	if (s->m.t && s->daemon.state == CLI_DAEMON_UNATTACHED && s->daemon.why[0]) {
		printf(",\"refused\":");
		out_json_str(stdout, s->daemon.why, strlen(s->daemon.why));
		printf("}");
	} else {
		printf(",\"refused\":null}");
	}
	json_groups(&s->m);
}

/* What needs someone's attention, one line each. */
static void print_alarms(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->m.in;
	const struct spw_producer_info *pi = &s->m.tail_claim;

	if (stall_s(in) >= 0)
		printf("  STALLED: spilling waits at position %llu for %.1f s: producer slot %d "
		       "(pid %u) holds it uncommitted; a live producer is never aborted "
		       "(stopped? in a debugger?)\n",
		       (unsigned long long)in->stall_position, stall_s(in), in->stall_slot,
		       in->stall_pid);
	if (pi->slot != (uint32_t)-1)
		printf("  WAITING ON A CLAIM: producer slot %u (pid %u) is inside a claim at the "
		       "tail (%lld) that it began as the topic's only producer (stopped? in a "
		       "debugger?); producers that opened since wait for it\n",
		       pi->slot, pi->pid, (long long)pi->claim);
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
	if (s->m.held_bytes && s->m.holder_err)
		printf("  retention held back by group \"%s\", whose position cannot be read "
		       "(%s): %llu bytes kept past retention (fix or remove its file; "
		       "retention_max_lag caps it)\n",
		       s->m.holder, strerror(-s->m.holder_err), (unsigned long long)s->m.held_bytes);
	else if (s->m.held_bytes)
		printf("  retention held back by group \"%s\": %llu bytes kept past retention "
		       "(retention_max_lag caps it; topic.conf)\n",
		       s->m.holder, (unsigned long long)s->m.held_bytes);
	if (in->retention_forced)
		printf("  RETENTION FORCED: %u segment(s) deleted before a group read them (past "
		       "retention_max_lag): that group's reads say -ERANGE\n",
		       in->retention_forced);
	if (in->disk_bad_ranges)
		printf("  DISK DAMAGE: %llu range(s) of the log fail their CRC (kept; readers get "
		       "-EBADMSG there, --skip-corrupt passes them; spillway verify %s lists "
		       "them)\n",
		       (unsigned long long)in->disk_bad_ranges, s->m.name);
	if (in->aborted_claims || in->corrupt_bytes)
		printf("  aborted claims of dead producers %llu; garbage cut out of the ring "
		       "%llu bytes\n",
		       (unsigned long long)in->aborted_claims,
		       (unsigned long long)in->corrupt_bytes);
}

static void print_groups(const struct seg_metrics *m)
{
	if (m->groups_err)
		printf("  groups: cannot list the topic's groups/ dir (%s): none shown\n",
		       strerror(-m->groups_err));
	for (int i = 0; i < m->ng; i++) {
		const struct seg_metrics_group *g = &m->g[i];

		/* Its one reader (spill/group.c): being read now (by whom, when
		 * /proc tells), not, or not known. */
		char rd[128] = "";

		if (g->reading > 0 && g->reader_pid)
			snprintf(rd, sizeof(rd),
				 cli_pid_stopped(g->reader_pid) ? ", being read (pid %u, STOPPED: its "
								  "reader holds the group, reading nothing)"
								: ", being read (pid %u)",
				 g->reader_pid);
		else if (g->reading > 0)
			snprintf(rd, sizeof(rd), ", being read");
		else if (g->reading < 0)
			snprintf(rd, sizeof(rd), ", reader unknown (%s)", strerror(-g->reading));
		if (g->pos == -ENOENT)
			printf("  group %s: no position committed yet%s\n", g->name, rd);
		else if (g->pos < 0)
			printf("  group %s: unreadable (%s)%s\n", g->name, strerror((int)-g->pos), rd);
		else if (g->lag_ns < 0)
			printf("  group %s: position %lld, lag %llu bytes%s\n", g->name,
			       (long long)g->pos, (unsigned long long)g->lag_bytes, rd);
		else
			printf("  group %s: position %lld, lag %llu bytes, %.1f s%s\n", g->name,
			       (long long)g->pos, (unsigned long long)g->lag_bytes,
			       (double)g->lag_ns / 1e9, rd);
	}
}

static void print_text(const struct tstat *s)
{
	const struct spw_topic_info *in = &s->m.in;
	char a[32], b[32], c[32], o[48] = "-", n[48] = "-";

	printf("topic %s\n", s->m.name);
	if (s->m.t) {
		cli_human(in->ring_bytes, a, sizeof(a));
		printf("  tail %llu  spilled %llu  durable %llu  limit %llu  reclaimed %llu\n",
		       (unsigned long long)in->tail, (unsigned long long)in->spilled,
		       (unsigned long long)in->durable, (unsigned long long)in->limit,
		       (unsigned long long)in->reclaimed);
		cli_human((uint64_t)rate(s, in->tail, s->prev.tail), b, sizeof(b));
		cli_human((uint64_t)rate(s, in->spilled, s->prev.spilled), c, sizeof(c));
		/* (tail read before limit: an honest tail is never past it) */
		if (in->tail > in->limit)
			printf("  GARBAGE HEADER: tail %llu is past limit %llu: something wrote into "
			       "the ring's header; spillwayd does not spill past it, and producers "
			       "wait for room that never comes\n",
			       (unsigned long long)in->tail, (unsigned long long)in->limit);
		else
			printf("  ring %s, %.1f%% full; produce %s/s, spill %s/s (over %.2f s)\n", a,
			       100.0 * (double)(in->tail - in->reclaimed) / (double)in->ring_bytes, b,
			       c, (double)(s->now_ns - s->prev_ns) / 1e9);
		printf("  producers %d live of %u slots", s->m.live, in->max_producers);
		if (s->m.solo_slot >= 0)
			printf(" (slot %d is the only one: it claims without a CAS)", s->m.solo_slot);
		if (in->producers_waiting)
			printf("; %u blocked on the full ring", in->producers_waiting);
		printf("\n");
		print_alarms(s);
	} else if (s->ring_err) {
		char ring[PATH_MAX + 64];

		cli_ring_path(ring, sizeof(ring), s->m.name);
		printf("  RING UNREADABLE: %s: %s; the disk log ends at %llu\n", ring,
		       strerror(-s->ring_err), (unsigned long long)s->m.dl.end);
		if (s->ring_err == -EBADMSG || s->ring_err == -EPROTO)
			printf("  (remove it, keeping the disk log: spillway topic delete %s "
			       "--keep-log%s)\n", s->m.name, cli_dir_flags());
	} else {
		printf("  no ring (disk only); the log ends at %llu\n", (unsigned long long)s->m.dl.end);
	}
	cli_human(s->m.dl.bytes, a, sizeof(a));
	if (s->m.oldest_ts)
		cli_iso8601(s->m.oldest_ts, o, sizeof(o));
	if (s->m.newest_ts)
		cli_iso8601(s->m.newest_ts, n, sizeof(n));
	printf("  disk %zu segments, %s; oldest record %s, newest %s\n", s->m.dl.segments, a, o, n);
	if (s->m.t && s->m.alive)
		printf("  daemon alive, pid %u, heartbeat %.2f s ago\n", in->daemon_pid, s->m.hb_age);
	else if (s->m.t && (s->daemon.state == CLI_DAEMON_UNATTACHED || s->daemon.served_err)) {
		char why[CLI_WHY_BYTES];

		cli_daemon_why(&s->daemon, why, sizeof(why));
		printf("  daemon NOT %s: %s\n",
		       s->daemon.state == CLI_DAEMON_UNATTACHED ? "attached" : "known", why);
	} else if (s->m.t && s->daemon.state == CLI_DAEMON_SILENT)
		printf("  daemon pid %u holds the topic but last beat %.1f s ago: stopped or hung "
		       "(SIGSTOP? a debugger?); nothing is spilled meanwhile\n",
		       in->daemon_pid, s->m.hb_age);
	else if (s->m.t && in->daemon_pid)
		printf("  daemon NOT running: no spillwayd holds the topic (the last, pid %u, beat "
		       "%.1f s ago)\n", in->daemon_pid, s->m.hb_age);
	else if (s->m.t)
		printf("  daemon NOT running (none ever attached)\n");
	else {
		/* No ring: whether a daemon serves the data dir is its pid file's
		 * lock; it makes the ring again at its start, or when asked
		 * (topic create), unless it could not (its published reason). */
		char why[SEG_REFUSED_WHY];
		uint32_t pid = 0;
		int sv = cli_data_dir_served(&pid, NULL, 0);

		if (sv == 1 && cli_refusal(s->m.name, why, sizeof(why)) == 1)
			printf("  daemon pid %u could not make the ring again: %s\n", pid, why);
		else if (sv == 1)
			printf("  daemon pid %u serves the data dir; `spillway topic create %s` asks it "
			       "to make the ring again at the log's end (it does at its next start)\n",
			       pid, s->m.name);
		else
			printf("  daemon NOT running%s%s%s: start spillwayd to make the ring again at "
			       "the log's end\n", sv < 0 ? " (cannot tell: " : "",
			       sv < 0 ? strerror(-sv) : "", sv < 0 ? ")" : "");
	}
	print_groups(&s->m);
}

/* The Prometheus text format: the one exposition (spill/metrics.c), as
 * spillwayd's /metrics serves it. */
static void print_prom(const struct tstat *st, int n)
{
	const struct seg_metrics **m = calloc((size_t)n + 1, sizeof(*m));

	if (!m)
		return;
	for (int i = 0; i < n; i++)
		m[i] = &st[i].m;
	seg_metrics_write(stdout, m, n, NULL);
	free(m);
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
	const struct cli_opt spec[] = {
		O_FLAG("json", 0, &a->json),
		O_FLAG("prometheus", 0, &a->prom),
		O_SECONDS("watch", &a->watch, 50),
		O_END,
	};
	int rc = cli_opts(argc, argv, spec, usage);

	if (rc >= 0)
		return rc;
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
		snprintf(st[i].m.name, sizeof(st[i].m.name), "%s", names[i]);
		st[i].ring_err = spw_topic_open(G.shm_dir, names[i], SPW_OPEN_RDONLY, &st[i].m.t);
		if (st[i].ring_err == -ENOENT)
			st[i].ring_err = 0; /* disk only */
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
		spw_topic_close(st[i].m.t);
		seg_metrics_free(&st[i].m);
		if (!a.name)
			free(names[i]);
	}
	if (!a.name)
		free(names);
	free(st);
	return CLI_OK;
}
