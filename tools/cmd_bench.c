/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - `spillway bench`: producers x consumers x record sizes on
 * this machine, with or without spilling; throughput and latency.
 *
 * One case per record size, each in fresh topics: the parent creates them,
 * forks one process per producer and consumer (tools/bench_worker.c;
 * processes, not threads: the honest IPC case), pins each to its PU, starts
 * them together and stops the producers after the duration (or they send
 * --count each).
 * Throughput is what the slowest consumer received over the time from the
 * start to its last record; latency is receipt minus the record's timestamp
 * (CLOCK_REALTIME at claim), or in --mode pingpong the round trip of a
 * record sent on one topic and echoed back on another.
 *
 * Reclaiming: without --spill the topics are SPW_TOPIC_NO_SPILL and the
 * first consumer reclaims behind all consumers (no daemon needed); with
 * --daemon a spillwayd does it instead (consumers may then be lapped: what
 * they miss is counted as lost); with --spill a spillwayd writes everything
 * to segment files under a scratch data dir and reclaims behind that, and
 * consumers are spw_readers (disk then live: they never miss a record).
 */
#define _GNU_SOURCE
#include "cli.h"

#include "bench_daemon.h"
#include "bench_options.h"
#include "bench_proc.h"
#include "bench_report.h"
#include "bench_topo.h"
#include "bench_worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RTT_RUNS 5
#define RTT_TRIPS 200000ull

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* --- setting up -------------------------------------------------------------------- */

static int setup_roles(const struct bench_opts *o, struct bench_env *e)
{
	char err[256];
	int n = 0;

	if (o->mode == BENCH_PINGPONG) {
		e->role_kind[n] = BW_PINGER, e->role_index[n++] = 0;
		e->role_kind[n] = BW_PONGER, e->role_index[n++] = 0;
	} else {
		for (int i = 0; i < o->producers; i++)
			e->role_kind[n] = BW_PRODUCER, e->role_index[n++] = i;
		for (int i = 0; i < o->consumers; i++)
			e->role_kind[n] = BW_CONSUMER, e->role_index[n++] = i;
	}
	e->nroles = n;
	e->distinct_pus = topo_pick(o->cpus, n, e->role_pu, err, sizeof(err));
	if (e->distinct_pus < 0) {
		fprintf(stderr, "spillway bench: %s\n", err);
		return -EINVAL;
	}
	/* The round trip that matters: the first producer (pinger) and the
	 * first consumer (ponger) when they are on different PUs, else the
	 * first role on another PU than the first producer's. */
	e->rtt_a = e->rtt_b = e->role_pu[0];
	for (int i = 1; i < n; i++) {
		bool consumer = e->role_kind[i] == BW_CONSUMER || e->role_kind[i] == BW_PONGER;

		if (e->role_pu[i] != e->rtt_a && (consumer || e->rtt_b == e->rtt_a)) {
			e->rtt_b = e->role_pu[i];
			if (consumer)
				break;
		}
	}
	topo_link_desc(e->rtt_a, e->rtt_b, e->link, sizeof(e->link));
	e->line_rtt_ns = topo_line_rtt(e->rtt_a, e->rtt_b, RTT_RUNS, RTT_TRIPS, NULL);
	topo_summary(e->topo, sizeof(e->topo));
	return 0;
}

static int setup_dirs(const struct bench_opts *o, struct bench_env *e)
{
	int r = bench_mkdtemp(o->shm_parent ? o->shm_parent : "/dev/shm", "spillway-bench",
			      e->shm_dir, sizeof(e->shm_dir));

	if (r) {
		fprintf(stderr, "spillway bench: cannot create a directory in %s: %s\n",
			o->shm_parent ? o->shm_parent : "/dev/shm", strerror(-r));
		return r;
	}
	if (!o->spill && !o->daemon)
		return 0;
	r = bench_mkdtemp(o->data_parent ? o->data_parent : "/var/tmp", "spillway-bench",
			  e->scratch_dir, sizeof(e->scratch_dir));
	if (r) {
		fprintf(stderr, "spillway bench: cannot create a directory in %s: %s\n",
			o->data_parent ? o->data_parent : "/var/tmp", strerror(-r));
		return r;
	}
	/* The daemon's data dir holds only topics; its log sits beside it. */
	snprintf(e->data_dir, sizeof(e->data_dir), "%s/data", e->scratch_dir);
	return 0;
}

/* --- one case ------------------------------------------------------------------------ */

struct run {
	const struct bench_opts *o;
	struct bench_env *e;
	struct bench_daemon *d;
	int serial;
};

static int make_topic(struct run *ru, const char *name, struct spw_topic **t)
{
	struct spw_topic_config cfg = { 0 };
	int r;

	cfg.ring_bytes = ru->o->ring_bytes;
	cfg.flags = ru->o->spill ? 0 : SPW_TOPIC_NO_SPILL;
	r = spw_topic_create(ru->e->shm_dir, name, &cfg);
	if (!r)
		r = spw_topic_open(ru->e->shm_dir, name, 0, t);
	if (!r && ru->d->pid > 0)
		r = bench_daemon_wait_attach(ru->d, *t, 5000000000ll);
	return r;
}

static void kill_all(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Wait for every worker; false when interrupted (then they are killed). */
static bool reap_all(pid_t *pids, int n)
{
	int left = n;

	while (left > 0) {
		for (int i = 0; i < n; i++) {
			int st;

			if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				pids[i] = -1;
				left--;
			}
		}
		if (interrupted) {
			kill_all(pids, n);
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					waitpid(pids[i], NULL, 0);
			return false;
		}
		if (left)
			bench_sleep_ns(2000000);
	}
	return true;
}

static bool any_failed(struct bw_ctl *c)
{
	for (int i = 0; i < c->nslots; i++)
		/* Acquire: pairs with the worker's fail(). */
		if (atomic_load_explicit(&c->slots[i].state, memory_order_acquire) == BW_FAILED)
			return true;
	return false;
}

/* Start everyone together, let them run, wait for the end. */
static void drive(struct run *ru, struct bw_ctl *c, pid_t *pids, struct bench_result *res)
{
	uint64_t deadline = ring_monotonic_ns() + 10000000000ull;
	bool ready = false;

	while (!ready && !interrupted && !any_failed(c) && ring_monotonic_ns() < deadline) {
		ready = true;
		for (int i = 0; i < c->nslots; i++)
			/* Acquire: pairs with ready_and_wait()'s release store. */
			ready &= atomic_load_explicit(&c->slots[i].state, memory_order_acquire) ==
				 BW_READY;
		if (!ready)
			bench_sleep_ns(1000000);
	}
	if (!ready) {
		/* Relaxed: stop only asks; the kill below ends them anyway. */
		atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
		kill_all(pids, c->nslots);
		if (!any_failed(c))
			snprintf(res->err, sizeof(res->err), "%s",
				 interrupted ? "interrupted" : "workers not ready after 10 s");
		reap_all(pids, c->nslots);
		return;
	}
	c->t0_ns = ring_monotonic_ns();
	/* Release: publishes t0_ns; pairs with the workers' acquire loads. */
	atomic_store_explicit(&c->go, 1, memory_order_release);
	if (ru->o->duration_s > 0) {
		uint64_t end = c->t0_ns + (uint64_t)(ru->o->duration_s * 1e9);

		while (!interrupted && !any_failed(c) && ring_monotonic_ns() < end)
			bench_sleep_ns(2000000);
		/* Relaxed: a request; producers publish their counts by state. */
		atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
	}
	if (!reap_all(pids, c->nslots))
		snprintf(res->err, sizeof(res->err), "interrupted");
}

static void collect(struct run *ru, struct bw_ctl *c, struct bench_result *res)
{
	uint64_t t_prod = 0, t_last = 0;
	bool have_consumer = false;

	res->all_pinned = true;
	for (int i = 0; i < c->nslots; i++) {
		struct bw_slot *s = &c->slots[i];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);
		const char *kind = s->role == BW_PRODUCER ? "producer" :
				   s->role == BW_CONSUMER ? "consumer" :
				   s->role == BW_PINGER ? "pinger" : "ponger";
		double dt = s->t_end_ns > c->t0_ns ? (double)(s->t_end_ns - c->t0_ns) / 1e9 : 0;

		res->all_pinned &= s->pinned;
		if (st != BW_DONE && !res->err[0])
			snprintf(res->err, sizeof(res->err), "%s %d: %s", kind, s->index,
				 st == BW_FAILED ? s->err : "died (killed or crashed)");
		if (s->t_end_ns > t_last)
			t_last = s->t_end_ns;
		switch (s->role) {
		case BW_PRODUCER:
			res->sent += s->records;
			if (s->t_end_ns > t_prod)
				t_prod = s->t_end_ns;
			break;
		case BW_CONSUMER:
			have_consumer = true;
			res->received[res->nconsumers] = s->records;
			res->recv_rps[res->nconsumers] = dt > 0 ? (double)s->records / dt : 0;
			if (res->nconsumers == 0 || res->recv_rps[res->nconsumers] < res->rps)
				res->rps = res->recv_rps[res->nconsumers];
			res->nconsumers++;
			res->lost += s->lost;
			res->bad += s->bad;
			res->lapped += s->lapped;
			res->clock_skew += s->clock_skew;
			res->redelivered += s->redelivered;
			hist_merge(&res->lat, &s->lat);
			break;
		case BW_PINGER:
			if (s->t_measure_ns && s->t_end_ns > s->t_measure_ns)
				dt = (double)(s->t_end_ns - s->t_measure_ns) / 1e9;
			res->sent = s->records;
			res->rps = dt > 0 ? (double)s->records / dt : 0;
			hist_merge(&res->lat, &s->lat);
			break;
		default:
			res->bad += s->bad;
			break;
		}
	}
	if (t_prod > c->t0_ns)
		res->send_rps = (double)res->sent / ((double)(t_prod - c->t0_ns) / 1e9);
	if (ru->o->mode == BENCH_THROUGHPUT && !have_consumer)
		res->rps = res->send_rps;
	res->seconds = t_last > c->t0_ns ? (double)(t_last - c->t0_ns) / 1e9 : 0;
	if (!res->err[0] && res->bad)
		snprintf(res->err, sizeof(res->err),
			 "%llu records had a wrong length or sequence number",
			 (unsigned long long)res->bad);
}

/* --spill: after the producers, until the daemon has spilled everything. */
static double spill_drain(struct spw_topic *t, uint64_t since_ns)
{
	uint64_t end = ring_monotonic_ns() + 60000000000ull;
	struct spw_topic_info in;

	while (spw_topic_info(t, &in) == 0 && in.spilled < in.tail) {
		if (interrupted || ring_monotonic_ns() > end)
			return -1;
		bench_sleep_ns(200000);
	}
	return (double)(ring_monotonic_ns() - since_ns) / 1e9;
}

static void fill_params(struct run *ru, uint32_t size, struct bw_params *p)
{
	const struct bench_opts *o = ru->o;

	memset(p, 0, sizeof(*p));
	snprintf(p->shm_dir, sizeof(p->shm_dir), "%s", ru->e->shm_dir);
	snprintf(p->data_dir, sizeof(p->data_dir), "%s", ru->e->data_dir);
	snprintf(p->topic, sizeof(p->topic), "bench-%u-%d", size, ru->serial);
	snprintf(p->topic2, sizeof(p->topic2), "bench-%u-%d-pong", size, ru->serial++);
	p->size = size;
	p->count = o->count;
	p->rate = o->rate;
	p->sample = o->sample;
	p->warmup = o->count ? (o->count / 10 < 1000 ? o->count / 10 : 1000) : 1000;
	p->duration_ns = (uint64_t)(o->duration_s * 1e9);
	p->ring_bytes = o->ring_bytes;
	p->producers = o->producers;
	p->consumers = o->consumers;
	p->busy = o->busy;
	p->backoff_ns = o->backoff_ns;
	p->batch = o->batch;
	p->caller_time = o->caller_time;
	p->reader = o->spill;
	p->self_reclaim = !o->spill && !o->daemon;
	p->lapping_ok = o->daemon;
}

/* Fork every worker; false (all reaped again) when a fork fails. */
static bool spawn_all(struct run *ru, struct bw_ctl *c, pid_t *pids, struct bench_result *res)
{
	for (int i = 0; i < ru->e->nroles; i++) {
		c->slots[i].role = ru->e->role_kind[i];
		c->slots[i].index = ru->e->role_index[i];
		c->slots[i].pu = ru->e->role_pu[i];
	}
	for (int i = 0; i < c->nslots; i++) {
		pids[i] = bw_spawn(c, i);
		if (pids[i] < 0) {
			snprintf(res->err, sizeof(res->err), "fork: %s", strerror(-pids[i]));
			kill_all(pids, i);
			for (int k = 0; k < i; k++)
				waitpid(pids[k], NULL, 0);
			return false;
		}
	}
	return true;
}

/* --spill: seconds from the start until the daemon had spilled it all. */
static void spill_result(struct bw_ctl *c, struct spw_topic *t, struct bench_result *res)
{
	uint64_t t_prod = c->t0_ns;
	double drain;

	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].t_end_ns > t_prod && c->slots[i].role != BW_CONSUMER)
			t_prod = c->slots[i].t_end_ns;
	drain = spill_drain(t, t_prod);
	if (drain >= 0)
		res->spill_drain_s = (double)(t_prod - c->t0_ns) / 1e9 + drain;
}

static void drop_topics(struct run *ru, const struct bw_params *p)
{
	char dir[8192];

	spw_topic_delete(ru->e->shm_dir, p->topic);
	spw_topic_delete(ru->e->shm_dir, p->topic2); /* -ENOENT without ping-pong */
	if (!ru->e->data_dir[0])
		return;
	snprintf(dir, sizeof(dir), "%s/%s", ru->e->data_dir, p->topic);
	bench_rm_rf(dir);
	snprintf(dir, sizeof(dir), "%s/%s", ru->e->data_dir, p->topic2);
	bench_rm_rf(dir);
}

static void run_case(struct run *ru, uint32_t size, struct bench_result *res)
{
	const struct bench_opts *o = ru->o;
	struct bw_params p;
	struct spw_topic *t1 = NULL, *t2 = NULL;
	struct bw_ctl *c = NULL;
	pid_t pids[BW_MAX_WORKERS];
	struct spw_topic_info in;
	int r;

	memset(res, 0, sizeof(*res));
	res->size = size;
	res->spill_drain_s = -1;
	hist_init(&res->lat);
	fill_params(ru, size, &p);
	if ((r = make_topic(ru, p.topic, &t1)) ||
	    (o->mode == BENCH_PINGPONG && (r = make_topic(ru, p.topic2, &t2)))) {
		char last[512] = "";

		if (ru->d->pid <= 0 && (o->spill || o->daemon))
			bench_daemon_last_log(ru->d, last, sizeof(last));
		snprintf(res->err, sizeof(res->err), "topic in %.200s: %s%s%.200s", ru->e->shm_dir,
			 strerror(-r), r == -ECHILD ? "; spillwayd died: " : "", last);
		goto out;
	}
	c = bw_ctl_new(&p, ru->e->nroles);
	if (!c) {
		snprintf(res->err, sizeof(res->err), "cannot map the control block");
		goto out;
	}
	if (!spawn_all(ru, c, pids, res))
		goto out;
	drive(ru, c, pids, res);
	collect(ru, c, res);
	if (o->spill && !res->err[0])
		spill_result(c, t1, res);
	if (ru->d->pid <= 0 && spw_topic_info(t1, &in) == 0 && in.daemon_pid)
		snprintf(res->warn, sizeof(res->warn),
			 "a spillwayd (pid %u) attached the topic too: numbers suspect", in.daemon_pid);
	res->ok = !res->err[0];
out:
	bw_ctl_free(c);
	spw_topic_close(t1);
	spw_topic_close(t2);
	drop_topics(ru, &p);
}

/* A private spillwayd on the scratch directories. 0, or 1 after saying why. */
static int start_daemon(struct bench_env *e, struct bench_daemon *d)
{
	char log[8192];
	int r;

	snprintf(log, sizeof(log), "%s/spillwayd.log", e->scratch_dir);
	bench_daemon_path(e->daemon_path, sizeof(e->daemon_path));
	r = bench_daemon_start(d, e->shm_dir, e->data_dir, log);
	if (!r)
		return 0;
	fprintf(stderr, "spillway bench: cannot start spillwayd (%s): %s; set SPW_DAEMON to its path\n",
		e->daemon_path, strerror(-r));
	return 1;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_env *e = calloc(1, sizeof(*e));
	struct bench_result *res = calloc(BENCH_MAX_SIZES, sizeof(*res));
	struct bench_daemon d = { .pid = -1 };
	struct sigaction sa = { 0 }, old_int, old_term;
	struct run ru = { &o, e, &d, 0 };
	bool help = false;
	int rc = 0, done = 0;

	if (!e || !res) {
		free(e);
		free(res);
		fprintf(stderr, "spillway bench: out of memory\n");
		return 1;
	}
	rc = bench_parse(argc, argv, &o, &help);
	if (rc || help) {
		if (help)
			bench_usage(stdout);
		goto out_free;
	}
	if (topo_init()) {
		fprintf(stderr, "spillway bench: hwloc cannot read this machine's topology\n");
		rc = 1;
		goto out_free;
	}
	if (setup_roles(&o, e)) {
		rc = 2; /* --cpus named PUs this machine lacks */
		goto out_dirs;
	}
	if (setup_dirs(&o, e)) {
		rc = 1;
		goto out_dirs;
	}
	if ((o.spill || o.daemon) && (rc = start_daemon(e, &d)) != 0)
		goto out_dirs;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (!o.json)
		bench_report_header(stdout, &o, e);
	for (int i = 0; i < o.nsizes && !interrupted; i++) {
		run_case(&ru, o.sizes[i], &res[i]);
		done++;
		if (!o.json)
			bench_report_row(stdout, &o, &res[i]);
		if (!res[i].ok) {
			fprintf(stderr, "spillway bench: size %u: %s\n", o.sizes[i], res[i].err);
			rc = 1;
		}
	}
	if (interrupted)
		rc = 1;
	if (o.json)
		bench_report_json(stdout, &o, e, res, done);
	fflush(stdout);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out_dirs:
	if (d.pid > 0 && bench_daemon_stop(&d, 30000000000ll) != 0 && !rc) {
		char last[512];

		bench_daemon_last_log(&d, last, sizeof(last));
		fprintf(stderr, "spillway bench: spillwayd did not stop cleanly: %s\n", last);
		rc = 1;
	}
	if (e->shm_dir[0])
		bench_rm_rf(e->shm_dir);
	if (e->scratch_dir[0])
		bench_rm_rf(e->scratch_dir);
	topo_fini();
out_free:
	free(e);
	free(res);
	return rc;
}
