/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - a topic's figures, gathered once (seg_metrics_gather) and
 * written in the Prometheus text format (seg_metrics_write): the one
 * place both `spillway stat --prometheus` and spillwayd's /metrics take
 * them from. Names follow the Prometheus conventions: base units (bytes,
 * seconds), counters end in _total. docs/metrics.md lists them.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include "../ring/spillway_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int seg_disk_usage(const char *dir, struct seg_disk_usage *d)
{
	uint64_t *bases;
	size_t n;
	int r;

	memset(d, 0, sizeof(*d));
	r = seg_list(dir, &bases, &n);
	if (r)
		return r == -ENOENT ? 0 : r;
	d->segments = n;
	d->any = n > 0;
	for (size_t i = 0; i < n; i++) {
		char p[PATH_MAX];
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		struct stat st;
		int k;

		if (!seg_file_path(p, sizeof(p), dir, bases[i], "seg") && !seg_lstat(p, &st))
			d->bytes += (uint64_t)st.st_size;
		if (seg_file_path(p, sizeof(p), dir, bases[i], "idx"))
			continue;
		k = seg_idx_load(p, &h, &e);
		if (k < 0)
			continue;
		if (i == 0)
			d->first = h.first;
		d->end = k ? e[k - 1].end : h.first;
		if (k) {
			d->records += e[k - 1].records;
			if (e[k - 1].max_ts > d->newest_ts)
				d->newest_ts = e[k - 1].max_ts;
		}
		free(e);
	}
	free(bases);
	return 0;
}

uint64_t seg_metrics_tail(const struct seg_metrics *m)
{
	return m->t ? m->in.tail : m->dl.end;
}

static int add_group(void *arg, const char *group, int64_t pos)
{
	struct seg_metrics *m = arg;
	struct seg_metrics_group *ng = realloc(m->g, (size_t)(m->ng + 1) * sizeof(*ng));

	if (!ng)
		return 1;
	m->g = ng;
	ng += m->ng++;
	memset(ng, 0, sizeof(*ng));
	snprintf(ng->name, sizeof(ng->name), "%s", group);
	ng->pos = pos;
	ng->lag_ns = -1;
	return 0;
}

/* Whether each group is being read (its one reader, spill/group.c), and
 * the groups a reader holds before its first commit (no position file yet:
 * pos -ENOENT). dir: the topic's data dir. */
static void held_groups(const char *data_dir, const char *dir, struct seg_metrics *m)
{
	char gd[PATH_MAX + 8], name[SPW_NAME_MAX + 1];
	struct dirent *de;
	DIR *d;

	for (int i = 0; i < m->ng; i++)
		m->g[i].reading = seg_group_holder(data_dir, m->name, m->g[i].name,
						   m->reader_pids ? &m->g[i].reader_pid : NULL);
	if ((size_t)snprintf(gd, sizeof(gd), "%s/groups", dir) >= sizeof(gd) || !(d = seg_opendir(gd)))
		return;
	while ((de = readdir(d))) {
		bool listed = false;
		uint32_t pid;

		if (!seg_group_lock_name(de->d_name, name, sizeof(name)))
			continue;
		for (int i = 0; i < m->ng && !listed; i++)
			listed = !strcmp(m->g[i].name, name);
		if (listed ||
		    seg_group_holder(data_dir, m->name, name, m->reader_pids ? &pid : NULL) != 1 ||
		    add_group(m, name, -ENOENT))
			continue;
		m->g[m->ng - 1].reading = 1;
		m->g[m->ng - 1].reader_pid = m->reader_pids ? pid : 0;
	}
	closedir(d);
}

/* What decoding a record needs: the ring's geometry (the ring's own, else
 * the topic.conf's). */
struct geom {
	uint64_t ring_bytes, segment_bytes;
	uint32_t max_record;
};

static int geom_of(const char *dir, const struct seg_metrics *m, struct geom *g)
{
	struct topic_conf c;

	if (m->t) {
		g->ring_bytes = m->in.ring_bytes;
		g->segment_bytes = m->in.segment_bytes;
	} else if (seg_conf_load(dir, &c)) {
		return -ENOENT;
	} else {
		g->ring_bytes = c.ring_bytes;
		g->segment_bytes = c.segment_bytes;
	}
	/* Disk records: the format's bound, as readers hold them (a lowered
	 * max_record leaves older records readable: spill/reader.c). */
	g->max_record = g->ring_bytes ? seg_max_record_bound(g->ring_bytes) : 0;
	return g->ring_bytes && g->segment_bytes ? 0 : -EINVAL;
}

/* The record at pos read where it lies, without a reader (which would map
 * the whole ring): in the ring while it is still there (its commit word
 * checked, then I5: not reclaimed meanwhile), else its header in its
 * segment file, decoded as the walker does. 1 with *r (r->data unset), 0
 * when no committed record starts there, -errno. */
static int rec_at(const char *dir, const struct seg_metrics *m, const struct geom *g,
		  uint64_t pos, struct seg_log_rec *r)
{
	uint8_t hdr[16];
	char path[PATH_MAX];
	uint64_t base = pos - pos % g->segment_bytes;
	ssize_t n;
	int fd;

	if (m->t && pos >= m->in.reclaimed) {
		struct spw_topic *t = m->t;
		/* Acquire: pairs with the commit store (I4). */
		uint64_t w = atomic_load_explicit(&ring_rec_at(t, pos)->commit,
						  memory_order_acquire);
		int64_t span = ring_check(t, pos, w);

		r->pos = pos;
		r->span = span > 0 ? (uint64_t)span : 0;
		r->type = RING_W_TYPE(w);
		r->ts = span >= 16 ? ring_rec_at(t, pos)->timestamp_ns : 0;
		if (!ring_lapped(t, pos))
			return span > 0;
		/* reclaimed meanwhile: it is on disk now */
	}
	if (seg_file_path(path, sizeof(path), dir, base, "seg"))
		return -ENAMETOOLONG;
	fd = seg_open_file(path, O_RDONLY, 0, false);
	if (fd < 0)
		return fd;
	n = pread(fd, hdr, sizeof(hdr), (off_t)(pos - base));
	close(fd);
	if (n < 8)
		return 0;
	/* The header only: the record may run on past it (to the segment's
	 * end); with fewer than 16 bytes read, it must end there. */
	return seg_rec_decode(hdr, pos, n == 16 ? g->segment_bytes - (pos - base) : (uint64_t)n,
			      g->ring_bytes, g->max_record, r)
		       ? 0
		       : 1;
}

/* The timestamp of the first DATA record at or after pos (a record
 * boundary; PADDING and ABORTED records passed over), a figure, not a read:
 * no CRC. 0 when unknown. */
static uint64_t ts_at(const char *dir, const struct seg_metrics *m, const struct geom *g,
		      uint64_t pos)
{
	struct seg_log_rec r;

	for (int i = 0; i < 4 && pos < seg_metrics_tail(m); i++) {
		if (rec_at(dir, m, g, pos, &r) <= 0 || !r.span)
			return 0;
		if (r.type == RING_T_DATA)
			return r.ts;
		pos += r.span;
	}
	return 0;
}

/* The newest record time: the ring's committed run past what is on disk
 * (spillwayd knows it: the newest it walked; the CLI walks what is not
 * spilled yet, at most a ring). */
static uint64_t newest_in_ring(const struct seg_metrics *m)
{
	uint64_t newest = 0;

	if (m->spill)
		return m->spill->newest_ts_seen;
	int64_t from = (int64_t)(m->in.spilled > m->in.reclaimed ? m->in.spilled : m->in.reclaimed);

	for (int i = 0; m->t && i < 4 && (uint64_t)from < m->in.tail; i++) {
		struct spwd_scan_result sc;
		int64_t n = spwd_scan(m->t, from, m->in.ring_bytes, &sc);

		if (n <= 0)
			break;
		if (sc.max_timestamp_ns > newest)
			newest = sc.max_timestamp_ns;
		from = sc.end;
	}
	return newest;
}

/* Is pi a live producer inside a claim at the tail: the topic's only
 * producer stopped before moving it, which producers that opened since
 * wait for (ring/ring_layout.h I9; spw_topic_producers reports it)? */
static bool at_tail(const struct spw_producer_info *pi, uint64_t tail)
{
	return pi->alive && pi->claiming && pi->claim == (int64_t)tail;
}

/* Producers holding a slot with the kernel's word for it (ring/locks.c),
 * and in *held (slot -1: none) the one inside a claim at the tail. */
static int count_live(struct spw_topic *t, uint32_t max, uint64_t tail,
		      struct spw_producer_info *held)
{
	struct spw_producer_info *pi = calloc(max ? max : 1, sizeof(*pi));
	int n, live = 0;

	held->slot = (uint32_t)-1;
	if (!pi)
		return 0;
	n = spw_topic_producers(t, pi, (int)max);
	for (int i = 0; i < n; i++) {
		live += pi[i].alive;
		if (at_tail(&pi[i], tail))
			*held = pi[i];
	}
	free(pi);
	return live;
}

int seg_claim_at_tail(struct spw_topic *t, struct spw_producer_info *out)
{
	struct spw_topic_info in;

	if (!t || spw_topic_info(t, &in))
		return 0;
	count_live(t, in.max_producers, in.tail, out);
	return out->slot != (uint32_t)-1;
}

/* The slot of the producer claiming without a CAS (ring/ring_layout.h I9),
 * -1 when none: advisory, read once. */
static int solo_slot(const struct spw_topic *t)
{
	/* Relaxed: a report for people; the word's users order it themselves. */
	uint64_t w = atomic_load_explicit(&t->hdr->solo, memory_order_relaxed);

	return (w & RING_SOLO_ON) && RING_SOLO_SLOT(w) < t->max_producers ? (int)RING_SOLO_SLOT(w)
									  : -1;
}

/* Who holds retention back, as the daemon's plan says (spill/retention.c). */
static void held_back(const char *data_dir, const char *dir, struct seg_metrics *m, uint64_t now)
{
	struct topic_conf conf;
	struct seg_ret_plan p;

	m->held_bytes = 0;
	m->holder[0] = '\0';
	if (!m->t || seg_conf_load(dir, &conf) ||
	    seg_retention_plan(data_dir, m->name, &conf,
			       m->in.spilled - m->in.spilled % conf.segment_bytes, now, &p))
		return;
	m->held_bytes = p.held_bytes;
	m->holder_err = p.holder_err;
	snprintf(m->holder, sizeof(m->holder), "%s", p.holder);
	seg_ret_plan_free(&p);
}

void seg_metrics_free(struct seg_metrics *m)
{
	free(m->g);
	m->g = NULL;
	m->ng = 0;
}

int seg_metrics_gather(const char *data_dir, struct seg_metrics *m)
{
	char dir[PATH_MAX];
	uint64_t now = ring_realtime_ns(), tail;
	struct geom g;
	bool geom;
	int r;

	seg_metrics_free(m);
	m->solo_slot = -1;
	m->tail_claim.slot = (uint32_t)-1;
	if (m->t) {
		spw_topic_info(m->t, &m->in);
		m->live = count_live(m->t, m->in.max_producers, m->in.tail, &m->tail_claim);
		m->solo_slot = solo_slot(m->t);
	}
	if ((r = seg_topic_dir(dir, sizeof(dir), data_dir, m->name)))
		return r;
	r = seg_disk_usage(dir, &m->dl);
	geom = geom_of(dir, m, &g) == 0;
	/* (a groups/ that is a link or a file: said, not shown as no groups) */
	m->groups_err = spw_group_list(data_dir, m->name, add_group, m);
	if (m->groups_err > 0)
		m->groups_err = 0;
	held_groups(data_dir, dir, m);
	held_back(data_dir, dir, m, now);
	m->oldest_ts = !geom ? 0 : ts_at(dir, m, &g, m->dl.any ? m->dl.first : m->in.reclaimed);
	m->newest_ts = newest_in_ring(m);
	if (m->dl.newest_ts > m->newest_ts)
		m->newest_ts = m->dl.newest_ts;
	tail = seg_metrics_tail(m);
	for (int i = 0; i < m->ng; i++) {
		struct seg_metrics_group *gr = &m->g[i];
		uint64_t ts, from;

		if (gr->pos < 0)
			continue;
		gr->lag_bytes = tail > (uint64_t)gr->pos ? tail - (uint64_t)gr->pos : 0;
		/* A group behind retention: its oldest unread record is the
		 * oldest kept. */
		from = m->dl.any && (uint64_t)gr->pos < m->dl.first ? m->dl.first : (uint64_t)gr->pos;
		if (!gr->lag_bytes)
			gr->lag_ns = 0;
		else if (geom && (ts = ts_at(dir, m, &g, from)))
			gr->lag_ns = now > ts ? (int64_t)(now - ts) : 0;
	}
	return r;
}

/* --- the exposition -------------------------------------------------------- */
enum {
	M_PRODUCED, M_SPILLED, M_DURABLE, M_RECLAIMED, M_REC_SEEN, M_REC_SPILLED, M_REC_DURABLE,
	M_RING, M_FILL, M_PRODUCERS, M_WAITING, M_BLOCKED_FOR, M_BLOCKED_TOTAL, M_STUCK,
	M_STALL, M_ABORTED, M_CORRUPT, M_WRITE_ERR, M_SYNC_ERR, M_SPILL_FAILING, M_DURABLE_FAILED,
	M_BAD_RANGES, M_FORCED, M_HELD, M_SEGS, M_DISK, M_OLDEST, M_NEWEST, M_UP, M_HB, M_COUNT
};

/* src: where a family's value comes from; a topic without it has no sample. */
enum { ANY, RING, SPILL };

static const struct {
	const char *name, *type, *help;
	int src;
} fam[M_COUNT] = {
	{ "spillway_produced_bytes_total", "counter",
	  "Bytes produced: the log's tail position (positions count bytes from the log's start).",
	  ANY },
	{ "spillway_spilled_bytes_total", "counter", "Bytes written to segment files.", ANY },
	{ "spillway_durable_bytes_total", "counter",
	  "Bytes known durable (fdatasync succeeded, checkpoint written).", ANY },
	{ "spillway_reclaimed_bytes_total", "counter",
	  "Bytes the ring has made reusable (the oldest position still in the ring).", RING },
	{ "spillway_produced_records_total", "counter",
	  "Committed records spillwayd has walked since it started (what it has seen produced).",
	  SPILL },
	{ "spillway_spilled_records_total", "counter",
	  "Records written to segment files since spillwayd started.", SPILL },
	{ "spillway_durable_records_total", "counter",
	  "Records made durable since spillwayd started.", SPILL },
	{ "spillway_ring_size_bytes", "gauge", "Size of the shared-memory ring.", RING },
	{ "spillway_ring_fill_ratio", "gauge",
	  "Share of the ring holding records not yet reclaimed (0..1).", RING },
	{ "spillway_producers", "gauge", "Producers alive (holding a slot's lock).", RING },
	{ "spillway_producers_blocked", "gauge",
	  "Producers asleep now on a full ring (send_wait, claim_wait).", RING },
	{ "spillway_producers_blocked_seconds", "gauge",
	  "How long producers have been blocked on the full ring without a break (0: none).",
	  SPILL },
	{ "spillway_producers_blocked_seconds_total", "counter",
	  "Time with at least one producer blocked on the full ring, since spillwayd started.",
	  SPILL },
	{ "spillway_stuck_claims", "gauge",
	  "1 while spilling waits on a live producer's uncommitted record (never aborted), or "
	  "newer producers wait on the only producer's claim at the tail.", RING },
	{ "spillway_stall_seconds", "gauge",
	  "How long spilling has waited on that record (0: not stalled).", RING },
	{ "spillway_aborted_claims_total", "counter",
	  "Claims of dead producers the daemon aborted.", RING },
	{ "spillway_corrupt_bytes_total", "counter",
	  "Garbage bytes the daemon cut out of the ring.", RING },
	{ "spillway_disk_write_errors_total", "counter",
	  "Failed segment writes or opens (each retried with backoff), since spillwayd started.",
	  SPILL },
	{ "spillway_disk_sync_errors_total", "counter",
	  "Failed fdatasyncs or checkpoint writes, since spillwayd started.", SPILL },
	{ "spillway_spill_failing", "gauge",
	  "1 while spillwayd cannot write the segments (the log says why).", RING },
	{ "spillway_durability_failed", "gauge",
	  "1 once an fdatasync failed: durable no longer moves until spillwayd restarts.", RING },
	{ "spillway_disk_bad_ranges", "gauge",
	  "Damaged index entries recovery kept (spillway verify lists them).", RING },
	{ "spillway_retention_forced_deletions_total", "counter",
	  "Segments deleted past retention_max_lag before a group read them.", RING },
	{ "spillway_retention_held_bytes", "gauge",
	  "Bytes kept past retention for the slowest consumer group.", RING },
	{ "spillway_disk_segments", "gauge", "Segment files on disk.", ANY },
	{ "spillway_disk_bytes", "gauge", "Bytes in segment files on disk.", ANY },
	{ "spillway_oldest_record_timestamp_seconds", "gauge", "Time of the oldest record kept.",
	  ANY },
	{ "spillway_newest_record_timestamp_seconds", "gauge", "Time of the newest record.", ANY },
	{ "spillway_daemon_up", "gauge", "1 when a live spillwayd serves the topic.", ANY },
	{ "spillway_daemon_heartbeat_age_seconds", "gauge", "Age of the last spillwayd heartbeat.",
	  RING },
};

static bool value(const struct seg_metrics *m, int f, long double *v)
{
	const struct spw_topic_info *in = &m->in;
	const struct seg_metrics_spill *s = m->spill;
	uint64_t now = ring_realtime_ns();

	if ((fam[f].src == RING && !m->t) || (fam[f].src == SPILL && !s))
		return false;
	switch (f) {
	case M_PRODUCED: *v = seg_metrics_tail(m); break;
	case M_SPILLED: *v = m->t ? in->spilled : m->dl.end; break;
	case M_DURABLE: *v = m->t ? in->durable : m->dl.end; break;
	case M_RECLAIMED: *v = in->reclaimed; break;
	case M_REC_SEEN: *v = s->records_seen; break;
	case M_REC_SPILLED: *v = s->records_spilled; break;
	case M_REC_DURABLE: *v = s->records_durable; break;
	case M_RING: *v = in->ring_bytes; break;
	case M_FILL: *v = (long double)(in->tail - in->reclaimed) / in->ring_bytes; break;
	case M_PRODUCERS: *v = m->live; break;
	case M_WAITING: *v = in->producers_waiting; break;
	case M_BLOCKED_FOR:
		*v = s->blocked_since_ns ? (ring_monotonic_ns() - s->blocked_since_ns) / 1e9L : 0;
		break;
	case M_BLOCKED_TOTAL:
		*v = (s->blocked_ns_total +
		      (s->blocked_since_ns ? ring_monotonic_ns() - s->blocked_since_ns : 0)) / 1e9L;
		break;
	case M_STUCK: *v = in->stall_slot >= 0 || m->tail_claim.slot != (uint32_t)-1; break;
	case M_STALL:
		*v = in->stall_slot >= 0 && in->stall_since_ns && now > in->stall_since_ns
			     ? (now - in->stall_since_ns) / 1e9L
			     : 0;
		break;
	case M_ABORTED: *v = in->aborted_claims; break;
	case M_CORRUPT: *v = in->corrupt_bytes; break;
	case M_WRITE_ERR: *v = s->write_errors; break;
	case M_SYNC_ERR: *v = s->sync_errors; break;
	case M_SPILL_FAILING: *v = in->spill_error != 0; break;
	case M_DURABLE_FAILED: *v = in->durable_error != 0; break;
	case M_BAD_RANGES: *v = in->disk_bad_ranges; break;
	case M_FORCED: *v = in->retention_forced; break;
	case M_HELD: *v = m->held_bytes; break;
	case M_SEGS: *v = m->dl.segments; break;
	case M_DISK: *v = m->dl.bytes; break;
	case M_OLDEST: *v = m->oldest_ts / 1e9L; return m->oldest_ts != 0;
	case M_NEWEST: *v = m->newest_ts / 1e9L; return m->newest_ts != 0;
	case M_UP: *v = m->alive; break;
	case M_HB: *v = m->hb_age; return in->daemon_pid != 0 && m->hb_age >= 0;
	default: return false;
	}
	return true;
}

static void num(FILE *f, long double v)
{
	if (v >= 0 && v < 1.8e19L && v == (long double)(unsigned long long)v)
		fprintf(f, "%llu\n", (unsigned long long)v);
	else
		fprintf(f, "%.9Lf\n", v);
}

/* A label value: \, " and newline escaped (names are checked, but a group
 * file's name comes from a directory listing). */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void groups(FILE *f, const struct seg_metrics *const *m, int n)
{
	static const char *const names[3] = { "spillway_group_position_bytes",
					      "spillway_group_lag_bytes",
					      "spillway_group_lag_seconds" };
	static const char *const helps[3] = {
		"Committed position of a consumer group.",
		"Bytes between a group's committed position and the log's tail.",
		"Age of the oldest record a group has not read yet (0: caught up).",
	};

	for (int k = 0; k < 3; k++) {
		head(f, names[k], "gauge", helps[k]);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < m[i]->ng; j++) {
				const struct seg_metrics_group *g = &m[i]->g[j];

				if (g->pos < 0 || (k == 2 && g->lag_ns < 0))
					continue;
				fprintf(f, "%s{topic=\"", names[k]);
				label(f, m[i]->name);
				fputs("\",group=\"", f);
				label(f, g->name);
				fputs("\"} ", f);
				num(f, k == 0 ? (long double)g->pos
				       : k == 1 ? (long double)g->lag_bytes
						: g->lag_ns / 1e9L);
			}
	}
}

static void proc(FILE *f, const struct seg_metrics_proc *p)
{
	head(f, "spillway_daemon_topics", "gauge", "Topics spillwayd spills.");
	fprintf(f, "spillway_daemon_topics %d\n", p->topics);
	head(f, "spillway_daemon_io_uring_entries", "gauge",
	     "Size of spillwayd's io_uring submission queue.");
	fprintf(f, "spillway_daemon_io_uring_entries %u\n", p->uring_entries);
	head(f, "spillway_daemon_io_uring_inflight", "gauge",
	     "io_uring requests submitted and not yet completed (the queue depth in use).");
	fprintf(f, "spillway_daemon_io_uring_inflight %u\n", p->uring_inflight);
	head(f, "spillway_daemon_io_uring_submit_busy_total", "counter",
	     "io_uring submits the kernel refused for now (retried at the next loop).");
	fprintf(f, "spillway_daemon_io_uring_submit_busy_total %llu\n",
		(unsigned long long)p->uring_submit_busy);
	head(f, "spillway_daemon_start_time_seconds", "gauge", "When spillwayd started.");
	fprintf(f, "spillway_daemon_start_time_seconds ");
	num(f, p->start_time_ns / 1e9L);
}

void seg_metrics_write(FILE *f, const struct seg_metrics *const *m, int n,
		       const struct seg_metrics_proc *p)
{
	long double v;

	head(f, "spillway_build_info", "gauge", "Spillway's version (the value is always 1).");
	fprintf(f, "spillway_build_info{version=\"%d.%d.%d\"} 1\n", SPW_VERSION_MAJOR,
		SPW_VERSION_MINOR, SPW_VERSION_PATCH);
	for (int k = 0; k < M_COUNT; k++) {
		bool any = false;

		for (int i = 0; i < n; i++) {
			if (!value(m[i], k, &v))
				continue;
			if (!any)
				head(f, fam[k].name, fam[k].type, fam[k].help);
			any = true;
			fprintf(f, "%s{topic=\"", fam[k].name);
			label(f, m[i]->name);
			fputs("\"} ", f);
			num(f, v);
		}
	}
	groups(f, m, n);
	if (p)
		proc(f, p);
}
