/* SPDX-License-Identifier: MIT */
/*
 * compare.c - Spillway against the other ways two processes on one Linux
 * host pass messages: pipe, Unix socket, POSIX message queue, ZeroMQ
 * ipc://, and a plain sequential file writer for the disk side.
 *
 * Every case is two processes forked from here, pinned to two PUs of
 * different cores with hwloc (the same two for every system), running the
 * very same loops (chan.h hides the system):
 *   throughput  the sender sends fixed-size messages, each carrying a
 *               sequence number, for the duration; the receiver checks each
 *               sequence number and reads every payload byte. Rate =
 *               messages received / (start to the last one received).
 *   round trip  the pinger sends one message and waits for the ponger's
 *               echo on a second channel, for the duration; each round trip
 *               timed (CLOCK_MONOTONIC) into an HDR-style histogram; the
 *               first 1000 (or the first tenth of the run) are discarded.
 *   file        one process appends the same messages to a file through a
 *               1 MiB buffer (write(2) per MiB), fdatasync at the end,
 *               counted in the time.
 * Each case runs --reps times (interleaved with the other systems); the
 * median of each figure is reported. Results go to <out>/compare.tsv,
 * <out>/compare_latency.tsv (percentile blocks for gnuplot) and
 * <out>/compare_env.txt (machine, pinning, what each system was given);
 * bench/compare/run.sh turns them into the markdown and the plots.
 *
 * The program: compare.c (options, the cases, the parent's side of each
 * run), sides.c (the forked processes), chan.c + chan_spw.c (the systems),
 * results.c (medians and files); hwloc, the histogram, the process
 * hand-off, the parsers and the daemon helpers are `spillway bench`'s
 * (tools/bench_topo.c, bench_hist.c, bench_proc.c, bench_parse.c,
 * bench_daemon.c), linked in by bench/compare/run.sh.
 */
#define _GNU_SOURCE
#include "aeron.h"
#include "compare.h"
#include "results.h"

#include "../../tools/bench_daemon.h"
#include "../../tools/bench_hist.h"
#include "../../tools/bench_parse.h"
#include "../../tools/bench_proc.h"
#include "../../tools/bench_topo.h"

#include "../../spill/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


static const struct sysdef systems[] = {
	{ "spillway-live", SYS_SPW, true, false, false,
	  "an exclusive producer's spw_producer_send / spw_consumer_peek+release (batches of <= 256), both "
	  "spinning; no-spill topic, the receiver reclaims", false, false, false, false },
	{ "spillway-notime", SYS_SPW, true, false, false,
	  "as spillway-live, and each record's timestamp is the sender's (0: none, as Aeron's "
	  "records have none) through spw_producer_send_at: no clock read per send",
	  false, false, false, true },
	{ "spillway-backoff", SYS_SPW, true, false, false,
	  "as spillway-live, and the receiver backs off after a peek that found nothing "
	  "(spw_consumer_set_backoff, --backoff NS): throughput over latency", false, true, false, false },
	{ "spillway-batch", SYS_SPW, true, false, false,
	  "as spillway-backoff, and the producer sends batches (spw_producer_send_batch, --batch N, "
	  "default 32): one claim and one clock read per batch; no round trips (one message per "
	  "trip)",
	  false, true, true, false },
	{ "spillway-wait", SYS_SPW, false, false, false,
	  "an exclusive producer's spw_producer_send_wait / spw_consumer_poll_wait (spin up to ~20-50 us, "
	  "then futex sleep)", false, false, false, false },
	{ "spillway-spill", SYS_SPW, false, true, false,
	  "spillwayd spills to disk meanwhile; an exclusive producer's send_wait; the receiver is an "
	  "spw_reader (spw_reader_read batches)", false, false, false, false },
	{ "pipe", SYS_PIPE, false, false, false, "blocking write() per message, read() up to 256 KiB", false, false, false, false },
	{ "pipe-busy", SYS_PIPE, true, false, false, "O_NONBLOCK both ends, spinning on EAGAIN", false, false, false, false },
	{ "unix", SYS_UNIX, false, false, false,
	  "socketpair(AF_UNIX, SOCK_STREAM), blocking write() per message, read() up to 256 KiB", false, false, false, false },
	{ "unix-busy", SYS_UNIX, true, false, false, "SOCK_STREAM, O_NONBLOCK both ends, spinning", false, false, false, false },
	{ "mq", SYS_MQ, false, false, false, "blocking mq_send / mq_receive", false, false, false, false },
	{ "mq-busy", SYS_MQ, true, false, false, "O_NONBLOCK queue, spinning on EAGAIN", false, false, false, false },
	{ "zmq", SYS_ZMQ, false, false, false, "PUSH -> PULL over ipc://, blocking zmq_send / zmq_recv", false, false, false, false },
	{ "zmq-busy", SYS_ZMQ, true, false, false,
	  "ZMQ_DONTWAIT, spinning on EAGAIN with sched_yield() (a bare spin starves zmq's I/O threads)", false, false, false, false },
	{ "file", SYS_SPW, false, false, true,
	  "one process, write() of 1 MiB buffers of messages, fdatasync at the end (counted)", false, false, false, false },
	/* Only with --aeron DIR (bench/compare/aeron.c). */
	{ "aeron-ipc", SYS_SPW, true, false, false,
	  "Aeron's C media driver and C samples over aeron:ipc: streaming_exclusive_publisher "
	  "(try_claim) or, above one 1408-byte MTU frame, streaming_publisher (offer) -> "
	  "rate_subscriber; cping / cpong for round trips; the subscribers do not check sequence "
	  "numbers; driver AERON_THREADING_MODE=SHARED, unpinned, otherwise Aeron's defaults",
	  true, false, false, false },
};
#define NSYS (sizeof(systems) / sizeof(systems[0]))

static struct {
	double dur_s, rtt_dur_s;
	int reps;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	const char *cpus, *out_dir, *data_parent, *only;
	const char *aeron_dir; /* --aeron DIR: Aeron's C binaries; NULL no Aeron rows */
	const char *fault;     /* $COMPARE_FAULT "system:sender|receiver:stall|crash" */
	int64_t backoff_ns;    /* --backoff: spillway-backoff's receiver */
	uint32_t batch;        /* --batch: spillway-batch's messages per call */
	double grace_s;        /* --timeout: a side still running this long after the run: killed */
	uint64_t ring_bytes, spill_ring_bytes;
	int pu[2];
	char shm_dir[4096], scratch[4096 - 64];
	struct aeron_cfg aeron;
	double aeron_est_rtt[MAX_SIZES];
} G = { .dur_s = 1, .rtt_dur_s = 0.5, .reps = 3, .ring_bytes = 1u << 20,
	.spill_ring_bytes = 64u << 20, .grace_s = 20, .backoff_ns = 50000, .batch = 32 };

static struct cell cells[NSYS][MAX_SIZES];

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* --- running one case ------------------------------------------------------------------ */

static struct ctl *ctl_new(void)
{
	struct ctl *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);

	if (c == MAP_FAILED)
		return NULL;
	hist_init(&c->rtt); /* the rest is zero: go, stop, both states START */
	return c;
}

static void ctl_free(struct ctl *c)
{
	if (c)
		munmap(c, sizeof(*c));
}

struct job {
	int kind; /* 0 throughput, 1 round trip, 2 file */
	struct chan *a, *b;
	uint32_t size;
	const char *path;
	const char *sys; /* the system's name, for COMPARE_FAULT */
};

static pid_t spawn(struct ctl *c, const struct job *j, int side)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (j->kind == 2)
		side_file_writer(c, j->size, j->path, G.pu[0]);
	else if (j->kind == 0 && side == 0)
		side_tp_sender(c, j->a, G.pu[0]);
	else if (j->kind == 0)
		side_tp_receiver(c, j->a, G.pu[1]);
	else if (side == 0)
		side_rtt_pinger(c, j->a, j->b, G.pu[0]);
	else
		side_rtt_ponger(c, j->a, j->b, G.pu[1]);
	_exit(1);
}

static int side_state(struct ctl *c, int i)
{
	/* Acquire: pairs with the side's release store; its fields are then final. */
	return atomic_load_explicit(&c->side[i].state, memory_order_acquire);
}

static bool any_failed(struct ctl *c, int nsides)
{
	for (int i = 0; i < nsides; i++)
		if (side_state(c, i) == ST_FAILED)
			return true;
	return false;
}

/* Both sides READY within 10 s (none failed, no interrupt)? */
static bool wait_ready(struct ctl *c, int nsides)
{
	uint64_t deadline = ring_monotonic_ns() + 10000000000ull;

	while (!interrupted && !any_failed(c, nsides) && ring_monotonic_ns() < deadline) {
		int ready = 0;

		for (int i = 0; i < nsides; i++)
			ready += side_state(c, i) == ST_READY;
		if (ready == nsides)
			return true;
		bench_sleep_ns(1000000);
	}
	return false;
}

/* How each child ended: reaped status, and whether we killed it at the deadline. */
struct ended {
	int status;
	bool killed;
};

/* Wait for the children; SIGKILL the ones still there at deadline (or at
 * an interrupt). */
static void reap(pid_t *pids, int n, uint64_t deadline, struct ended *how)
{
	int left = 0;

	for (int i = 0; i < n; i++)
		left += pids[i] > 0;
	while (left > 0) {
		for (int i = 0; i < n; i++)
			if (pids[i] > 0 && waitpid(pids[i], &how[i].status, WNOHANG) == pids[i]) {
				pids[i] = -1;
				left--;
			}
		if (left && (interrupted || ring_monotonic_ns() > deadline)) {
			for (int i = 0; i < n; i++)
				if (pids[i] > 0) {
					kill(pids[i], SIGKILL);
					how[i].killed = true;
				}
			deadline = UINT64_MAX;
		}
		if (left)
			bench_sleep_ns(1000000);
	}
}

/* COMPARE_FAULT=<system>:<sender|receiver>:<stall|crash>: SIGSTOP or
 * SIGSEGV that side once the run has started, to see its row fail and the
 * run go on. */
static void maybe_fault(const struct job *j, const pid_t *pids, int nsides)
{
	char want[96];

	if (!G.fault || !j->sys)
		return;
	for (int i = 0; i < nsides; i++) {
		snprintf(want, sizeof(want), "%s:%s:", j->sys, i ? "receiver" : "sender");
		if (strncmp(G.fault, want, strlen(want)) == 0 && pids[i] > 0) {
			bool crash = strcmp(G.fault + strlen(want), "crash") == 0;

			kill(pids[i], crash ? SIGSEGV : SIGSTOP);
			fprintf(stderr, "compare: COMPARE_FAULT: %s the %s %s (pid %d)\n",
				crash ? "SIGSEGV to" : "SIGSTOP", j->sys, i ? "receiver" : "sender",
				(int)pids[i]);
		}
	}
}

/* Append "<role>: <why>" for one side that did not finish cleanly. */
static void side_why(struct ctl *c, int i, const struct ended *how, bool ready_timeout,
		     double ran_s, char *err, size_t errlen)
{
	int st = side_state(c, i);
	size_t used = strlen(err);
	char why[320];

	if (st == ST_DONE)
		return;
	if (st == ST_FAILED)
		snprintf(why, sizeof(why), "%s", c->side[i].err);
	else if (how->killed && interrupted)
		snprintf(why, sizeof(why), "interrupted");
	else if (how->killed && ready_timeout)
		snprintf(why, sizeof(why), "timeout after 10 s (not ready)");
	else if (how->killed)
		snprintf(why, sizeof(why), "timeout after %.0f s", ran_s);
	else
		kid_reason(how->status, why, sizeof(why));
	if (used < errlen)
		snprintf(err + used, errlen - used, "%s%s: %s", used ? "; " : "",
			 i ? "receiver" : "sender", why);
}

/* Fork the sides, start them together, stop them after dur_s, wait: each
 * side has until dur_s + G.grace_s after the start to exit, or is killed.
 * 0, or -1 with err set (every side that failed, and why). */
static int run_job(struct ctl *c, const struct job *j, double dur_s, char *err, size_t errlen)
{
	int nsides = j->kind == 2 ? 1 : 2, forked = 0;
	pid_t pids[2] = { -1, -1 };
	struct ended how[2] = { { 0, false }, { 0, false } };
	bool started = false, ready_timeout = false;
	uint64_t t_fork = ring_monotonic_ns();

	for (int i = 0; i < nsides; i++) {
		pids[i] = spawn(c, j, i);
		if (pids[i] < 0) {
			snprintf(err, errlen, "fork: %s", strerror(errno));
			break;
		}
		forked++;
	}
	if (j->a)
		chan_parent_release(j->a); /* the readers must see end-of-file */
	if (j->b)
		chan_parent_release(j->b);
	if (forked == nsides && wait_ready(c, nsides)) {
		uint64_t end;

		bench_sleep_ns(20000000); /* let a zmq connect complete */
		c->dur_ns = (uint64_t)(dur_s * 1e9);
		c->t0 = ring_monotonic_ns();
		/* Release: publishes t0 and dur_ns; pairs with the sides' acquire loads. */
		atomic_store_explicit(&c->go, 1, memory_order_release);
		started = true;
		maybe_fault(j, pids, nsides);
		end = c->t0 + c->dur_ns;
		while (!interrupted && ring_monotonic_ns() < end && !any_failed(c, nsides))
			bench_sleep_ns(2000000);
	} else if (forked == nsides && !interrupted && !any_failed(c, nsides)) {
		ready_timeout = true;
	}
	/* Relaxed: a request; the sides publish their results by state. */
	atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
	reap(pids, nsides, started ? c->t0 + c->dur_ns + (uint64_t)(G.grace_s * 1e9) : 0, how);
	if (!err[0])
		for (int i = 0; i < nsides; i++)
			side_why(c, i, &how[i], ready_timeout,
				 (double)(ring_monotonic_ns() - t_fork) / 1e9, err, errlen);
	if (!err[0] && !(c->side[0].pinned && (nsides == 1 || c->side[1].pinned)))
		snprintf(err, errlen, "pinning failed");
	return err[0] ? -1 : 0;
}

/* A private spillwayd on a fresh data dir, for one spilling case. */
struct spill {
	struct bench_daemon d;
	char data[4096];
};

static int spill_begin(struct spill *s, char *err, size_t errlen)
{
	static int serial;
	char log[4096 + 64];
	int r;

	snprintf(s->data, sizeof(s->data), "%s/data-%d", G.scratch, serial);
	snprintf(log, sizeof(log), "%s/spillwayd-%d.log", G.scratch, serial++);
	r = bench_daemon_start(&s->d, G.shm_dir, s->data, log);
	if (r)
		snprintf(err, errlen, "cannot start spillwayd (set SPW_DAEMON): %s", strerror(-r));
	return r;
}

static int spill_attach(struct spill *s, struct chan *ch, char *err, size_t errlen)
{
	int r = bench_daemon_wait_attach(&s->d, ch->t, 5000000000ll);
	char last[512];

	if (r) {
		bench_daemon_last_log(&s->d, last, sizeof(last));
		snprintf(err, errlen, "spillwayd did not attach %s: %s; log: %.300s", ch->topic,
			 strerror(-r), last);
	}
	return r;
}

/* SIGTERM: the daemon spills the rest, fdatasyncs, exits. */
static void spill_end(struct spill *s)
{
	if (s->d.pid > 0)
		bench_daemon_stop(&s->d, 60000000000ll);
	bench_rm_rf(s->data);
}

static void chan_cfg_for(const struct sysdef *sd, uint32_t size, struct chan_cfg *cfg,
			 const char *data_dir)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->sys = sd->sys;
	cfg->busy = sd->busy;
	cfg->size = size;
	cfg->spill = sd->spill;
	cfg->buf_bytes = sd->spill ? G.spill_ring_bytes : G.ring_bytes;
	cfg->scratch = G.scratch;
	cfg->shm_dir = G.shm_dir;
	cfg->data_dir = data_dir;
	cfg->backoff_ns = sd->backoff ? G.backoff_ns : 0;
	cfg->batch = sd->batch ? G.batch : 0;
	cfg->no_time = sd->no_time;
}

static void record_err(const struct sysdef *sd, uint32_t size, struct cell *cl, const char *what,
		       const char *err)
{
	cl->nfail++;
	if (!cl->err[0])
		snprintf(cl->err, sizeof(cl->err), "%s: %.200s", what, err);
	fprintf(stderr, "compare: %s, %u B, %s: %s\n", sd->name, size, what, err);
}

/* Throughput: messages received over the time to the last one; for the
 * spilling case also the rate until the daemon had it all on disk (it
 * spills the rest and fdatasyncs when stopped). */
static void tp_result(const struct sysdef *sd, uint32_t size, struct ctl *c, struct cell *cl,
		      struct spill *sp, char *err, size_t errlen)
{
	struct side *tx = &c->side[0], *rx = &c->side[1];
	double secs = (double)(rx->t_end - c->t0) / 1e9;

	cl->redelivered += rx->redelivered;

	if (rx->count != tx->count || rx->bad || secs <= 0) {
		snprintf(err, errlen, "sent %llu, received %llu, %llu out of sequence",
			 (unsigned long long)tx->count, (unsigned long long)rx->count,
			 (unsigned long long)rx->bad);
		return;
	}
	if (cl->n < MAX_REPS)
		cl->rate[cl->n++] = (double)rx->count / secs;
	if (sd->spill && cl->ndurable < MAX_REPS) {
		spill_end(sp);
		secs = (double)(ring_monotonic_ns() - c->t0) / 1e9;
		cl->durable[cl->ndurable++] = (double)tx->count * size / 1e6 / secs;
	}
}

static void rtt_result(struct ctl *c, struct cell *cl, char *err, size_t errlen)
{
	int k;

	if (c->side[0].bad) {
		snprintf(err, errlen, "%llu pongs out of sequence", (unsigned long long)c->side[0].bad);
		return;
	}
	if (!c->rtt.count) {
		snprintf(err, errlen, "no round trip completed");
		return;
	}
	if (cl->nrtt >= MAX_REPS)
		return;
	k = cl->nrtt++;
	cl->p50[k] = (double)hist_percentile(&c->rtt, 50);
	cl->p90[k] = (double)hist_percentile(&c->rtt, 90);
	cl->p99[k] = (double)hist_percentile(&c->rtt, 99);
	cl->p999[k] = (double)hist_percentile(&c->rtt, 99.9);
	cl->max[k] = (double)c->rtt.max;
}

static void case_channels(const struct sysdef *sd, uint32_t size, struct cell *cl, bool rtt)
{
	struct chan a, b;
	struct chan_cfg cfg;
	struct spill sp = { .d = { .pid = -1 } };
	struct ctl *c = ctl_new();
	struct job j = { rtt ? 1 : 0, &a, rtt ? &b : NULL, size, NULL, sd->name };
	char err[512] = "";
	bool have_a = false, have_b = false;

	cl->nruns++;
	if (!c) {
		record_err(sd, size, cl, rtt ? "round trip" : "throughput", "mmap failed");
		return;
	}
	if (sd->spill && spill_begin(&sp, err, sizeof(err)))
		goto out;
	chan_cfg_for(sd, size, &cfg, sp.data);
	if (chan_create(&a, &cfg, 2 * (int)(sd - systems), err, sizeof(err)))
		goto out;
	have_a = true;
	if (rtt && chan_create(&b, &cfg, 2 * (int)(sd - systems) + 1, err, sizeof(err)))
		goto out;
	have_b = rtt;
	if (sd->spill && (spill_attach(&sp, &a, err, sizeof(err)) ||
			  (rtt && spill_attach(&sp, &b, err, sizeof(err)))))
		goto out;
	snprintf(cl->desc, sizeof(cl->desc), "%s", a.desc);
	if (run_job(c, &j, rtt ? G.rtt_dur_s : G.dur_s, err, sizeof(err)))
		goto out;
	if (!rtt)
		tp_result(sd, size, c, cl, &sp, err, sizeof(err));
	else
		rtt_result(c, cl, err, sizeof(err));
out:
	if (err[0])
		record_err(sd, size, cl, rtt ? "round trip" : "throughput", err);
	if (sd->spill)
		spill_end(&sp);
	if (have_a)
		chan_destroy(&a);
	if (have_b)
		chan_destroy(&b);
	ctl_free(c);
}

static void case_file(const struct sysdef *sd, uint32_t size, struct cell *cl)
{
	struct ctl *c = ctl_new();
	char path[4096 + 32], err[512] = "";
	struct job j = { 2, NULL, NULL, size, path, "file" };

	cl->nruns++;
	if (!c)
		return;
	snprintf(path, sizeof(path), "%s/plain-%u", G.scratch, size);
	snprintf(cl->desc, sizeof(cl->desc), "write(2) of 1 MiB buffers + fdatasync in %.100s",
		 G.data_parent ? G.data_parent : "/var/tmp");
	if (run_job(c, &j, G.dur_s, err, sizeof(err)) == 0 && cl->n < MAX_REPS)
		cl->rate[cl->n++] = (double)c->side[0].count / ((double)(c->side[0].t_end - c->t0) / 1e9);
	if (err[0])
		record_err(sd, size, cl, "file", err);
	unlink(path);
	ctl_free(c);
}

/* Aeron's driver and samples (aeron.c), same sizes, same PUs. */
static void case_aeron(const struct sysdef *sd, int z, struct cell *cl, bool rtt)
{
	char err[512] = "";
	double pct[5];

	cl->nruns++;
	if (!rtt) {
		double rate;

		if (aeron_tp(&G.aeron, G.sizes[z], G.dur_s, &rate, cl->desc,
			     sizeof(cl->desc), err, sizeof(err)) == 0 && cl->n < MAX_REPS)
			cl->rate[cl->n++] = rate;
	} else if (aeron_rtt(&G.aeron, G.sizes[z], G.rtt_dur_s, &G.aeron_est_rtt[z], pct, err,
			     sizeof(err)) == 0 && cl->nrtt < MAX_REPS) {
		int k = cl->nrtt++;

		cl->p50[k] = pct[0];
		cl->p90[k] = pct[1];
		cl->p99[k] = pct[2];
		cl->p999[k] = pct[3];
		cl->max[k] = pct[4];
	}
	if (err[0])
		record_err(sd, G.sizes[z], cl, rtt ? "round trip" : "throughput", err);
}

/* --- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: compare --out DIR [--duration SEC] [--rtt-duration SEC] [--reps N]\n"
		"               [--sizes 64,1K,16K] [--cpus A,B] [--data-dir DIR] [--only a,b]\n"
		"               [--ring-size 1M] [--spill-ring-size 64M] [--timeout SEC]\n"
		"               [--aeron DIR] [--backoff NS] [--batch N]\n"
		"Spillway vs pipe, Unix socket, POSIX mq, ZeroMQ ipc:// and a file writer:\n"
		"throughput and round trips between two pinned processes. Writes DIR/compare.tsv,\n"
		"DIR/compare_latency.tsv, DIR/compare_env.txt. Systems:");
	for (size_t s = 0; s < NSYS; s++)
		fprintf(f, " %s", systems[s].name);
	fprintf(f, "\nspillwayd (for spillway-spill): $SPW_DAEMON, next to this binary, or $PATH.\n"
		   "--aeron DIR adds aeron-ipc (Aeron's aeronmd, rate_subscriber,\n"
		   "streaming_[exclusive_]publisher, cping, cpong from DIR; docs/aeron.md).\n"
		   "--backoff NS (50000): spillway-backoff's receiver, after a peek that found\n"
		   "nothing, does not look again for up to NS ns (spw_consumer_set_backoff;\n"
		   "0: off, the row is then spillway-live again).\n"
		   "--batch N (32, 1-1024): spillway-batch's sender sends N messages per\n"
		   "spw_producer_send_batch call (its receiver is spillway-backoff's).\n"
		   "--timeout SEC (20): a process still running SEC after its run should have\n"
		   "ended is killed and its row marked failed. A failed peer never fails the\n"
		   "run; a failed Spillway case does (exit 1).\n"
		   "COMPARE_FAULT=<system>:<sender|receiver>:<stall|crash> stops (SIGSTOP) or\n"
		   "crashes (SIGSEGV) that process after the start, to test the above.\n");
}

static int parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rtt-duration", required_argument, NULL, 'r' },
		{ "reps", required_argument, NULL, 'n' },
		{ "sizes", required_argument, NULL, 's' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "only", required_argument, NULL, 'O' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "spill-ring-size", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "aeron", required_argument, NULL, 'A' },
		{ "backoff", required_argument, NULL, 'B' },
		{ "batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char buf[256], *save, *tok;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': G.out_dir = optarg; break;
		case 'd':
			if (bench_parse_seconds(optarg, &G.dur_s) || G.dur_s <= 0)
				return 2;
			break;
		case 'r':
			if (bench_parse_seconds(optarg, &G.rtt_dur_s) || G.rtt_dur_s <= 0)
				return 2;
			break;
		case 'n':
			G.reps = atoi(optarg);
			if (G.reps < 1 || G.reps > MAX_REPS)
				return 2;
			break;
		case 's':
			snprintf(buf, sizeof(buf), "%s", optarg);
			G.nsizes = 0;
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				uint64_t v;

				if (seg_parse_size(tok, &v) || v < 8 || v > (1u << 20) ||
				    G.nsizes == MAX_SIZES)
					return 2;
				G.sizes[G.nsizes++] = (uint32_t)v;
			}
			break;
		case 'c': G.cpus = optarg; break;
		case 'D': G.data_parent = optarg; break;
		case 'O': G.only = optarg; break;
		case 'A': G.aeron_dir = optarg; break;
		case 'B':
			if (bench_parse_backoff(optarg, &G.backoff_ns))
				return 2;
			break;
		case 'b':
			if (bench_parse_batch(optarg, &G.batch))
				return 2;
			break;
		case 'T':
			if (bench_parse_seconds(optarg, &G.grace_s) || G.grace_s <= 0)
				return 2;
			break;
		case 'R':
		case 'S': {
			uint64_t v;

			if (seg_parse_size(optarg, &v) || v < SPW_RING_MIN_BYTES || (v & (v - 1)))
				return 2;
			*(c == 'R' ? &G.ring_bytes : &G.spill_ring_bytes) = v;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: return 2;
		}
	}
	if (optind < argc || !G.out_dir)
		return 2;
	/* The results' directory, made now (as mkdir -p would, one level) and
	 * checked: a run must not end with nowhere to write. */
	if (mkdir(G.out_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "compare: --out %s: %s\n", G.out_dir, strerror(errno));
		return 2;
	}
	if (access(G.out_dir, W_OK | X_OK)) {
		fprintf(stderr, "compare: --out %s: %s\n", G.out_dir, strerror(errno));
		return 2;
	}
	if (!G.nsizes) {
		G.sizes[0] = 64;
		G.sizes[1] = 1024;
		G.sizes[2] = 16384;
		G.nsizes = 3;
	}
	for (int z = 0; z < G.nsizes; z++)
		if (G.sizes[z] > G.ring_bytes / 4)
			return 2;
	return 0;
}

static void progress(int rep, const struct sysdef *sd, uint32_t size, const struct cell *cl,
		     bool failed_now)
{
	printf("rep %d/%d %6u B  %-15s", rep + 1, G.reps, size, sd->name);
	if (failed_now) {
		printf(" FAILED (the run goes on): %s\n", cl->err);
		fflush(stdout);
		return;
	}
	if (cl->n)
		printf(" %10.3f M msgs/s %9.1f MB/s", cl->rate[cl->n - 1] / 1e6,
		       cl->rate[cl->n - 1] * size / 1e6);
	if (cl->nrtt)
		printf("   rtt p50 %8.0f ns  p99 %8.0f ns", cl->p50[cl->nrtt - 1], cl->p99[cl->nrtt - 1]);
	printf("\n");
	fflush(stdout);
}

/* Limits, hwloc, the two PUs, scratch directories. 0, or the exit status. */
static int setup(char *link, size_t linklen, double *line_rtt)
{
	struct rlimit rl;
	char err[256];
	int r;

	/* POSIX queues count against RLIMIT_MSGQUEUE (800 KiB by default): as
	 * much as we may (the hard limit; more needs CAP_SYS_RESOURCE). */
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	signal(SIGPIPE, SIG_IGN); /* a dead reader: EPIPE, reported */
	if (topo_init()) {
		fprintf(stderr, "compare: hwloc cannot read the topology\n");
		return 1;
	}
	r = topo_pick(G.cpus, 2, G.pu, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "compare: %s\n", err);
		return 2;
	}
	if (r < 2)
		fprintf(stderr, "compare: only one PU: both processes share it\n");
	topo_link_desc(G.pu[0], G.pu[1], link, linklen);
	*line_rtt = topo_line_rtt(G.pu[0], G.pu[1], 7, 200000, NULL);
	printf("sender P#%d, receiver P#%d (sharing %s); cache-line round trip %.1f ns\n", G.pu[0],
	       G.pu[1], link, *line_rtt);
	if ((r = bench_mkdtemp("/dev/shm", "spw-compare", G.shm_dir, sizeof(G.shm_dir))) ||
	    (r = bench_mkdtemp(G.data_parent ? G.data_parent : "/var/tmp", "spw-compare", G.scratch,
			       sizeof(G.scratch)))) {
		fprintf(stderr, "compare: scratch directories: %s\n", strerror(-r));
		if (G.shm_dir[0])
			bench_rm_rf(G.shm_dir);
		return 1;
	}
	return 0;
}

static bool runs(const struct table *t, const struct sysdef *sd)
{
	return table_selected(t, sd) && (!sd->aeron || G.aeron_dir);
}

/* One system, one size, one round: its cases, and what this round gave
 * (kept by round for the ratios against Aeron). */
static void run_case(const struct sysdef *sd, int z, int rep, double probe)
{
	struct cell *cl = &cells[sd - systems][z];
	int n0 = cl->n, r0 = cl->nrtt, f0 = cl->nfail;

	if (sd->file) {
		case_file(sd, G.sizes[z], cl);
	} else if (sd->aeron) {
		case_aeron(sd, z, cl, false);
		case_aeron(sd, z, cl, true);
	} else {
		case_channels(sd, G.sizes[z], cl, false);
		if (!sd->batch) /* a round trip is one message: no batch */
			case_channels(sd, G.sizes[z], cl, true);
	}
	if (cl->n > n0)
		cl->rrate[rep] = cl->rate[cl->n - 1];
	if (cl->nrtt > r0)
		cl->rp50[rep] = cl->p50[cl->nrtt - 1];
	if (probe > 0 && cl->nprobe < MAX_REPS)
		cl->probe[cl->nprobe++] = probe;
	progress(rep, sd, G.sizes[z], cl, cl->nfail > f0);
}

/* Every case, repetitions outermost: a disturbance hits one run of many
 * systems rather than every run of one. A round (one repetition of one
 * size) starts with the cache-line round-trip probe between the two PUs, so
 * every row records the placement it ran with; with Aeron, its case runs
 * first in odd rounds and last in even ones, so that neither it nor the
 * Spillway cases always run just after the same neighbour. */
static void run_all(const struct table *t)
{
	for (int rep = 0; rep < G.reps && !interrupted; rep++)
		for (int z = 0; z < G.nsizes && !interrupted; z++) {
			double probe = topo_line_rtt(G.pu[0], G.pu[1], 3, 100000, NULL);

			printf("round %d/%d %6u B  cache-line round trip %.1f ns\n", rep + 1, G.reps,
			       G.sizes[z], probe);
			for (int pass = 0; pass < 3 && !interrupted; pass++)
				for (size_t s = 0; s < NSYS && !interrupted; s++) {
					const struct sysdef *sd = &systems[s];
					/* pass 0: Aeron in odd rounds; 1: the rest; 2: Aeron in even */
					bool want = sd->aeron ? pass == (rep % 2 ? 0 : 2) : pass == 1;

					if (want && runs(t, sd))
						run_case(sd, z, rep, probe);
				}
		}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	struct table t = { systems, NSYS, cells, G.sizes, 0, NULL, false };
	struct run_info ri = { 0 };
	char link[128];
	int failed = 0, r;

	if (parse(argc, argv)) {
		usage(stderr);
		return 2;
	}
	t.nsizes = G.nsizes;
	t.only = G.only;
	t.aeron = G.aeron_dir != NULL;
	G.fault = getenv("COMPARE_FAULT");
	if (G.fault && !*G.fault)
		G.fault = NULL;
	if ((r = setup(link, sizeof(link), &ri.line_rtt_ns)) != 0)
		return r;
	if (G.aeron_dir) {
		char err[512];

		G.aeron = (struct aeron_cfg){ G.aeron_dir, G.shm_dir, { G.pu[0], G.pu[1] }, G.grace_s,
					      G.fault };
		if (aeron_check(&G.aeron, err, sizeof(err))) {
			fprintf(stderr, "compare: --aeron: %s\n", err);
			bench_rm_rf(G.shm_dir);
			bench_rm_rf(G.scratch);
			return 2;
		}
		aeron_version(&G.aeron, ri.aeron, sizeof(ri.aeron));
		printf("aeron-ipc: %s from %s\n", ri.aeron, G.aeron_dir);
	}
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	run_all(&t);
	/* Only Spillway's own failures fail the run: a peer that stalled,
	 * crashed or timed out is a row marked failed (results.c). */
	for (size_t s = 0; s < NSYS; s++)
		for (int z = 0; z < G.nsizes; z++)
			if (strncmp(systems[s].name, "spillway", 8) == 0 && cells[s][z].nfail) {
				fprintf(stderr, "compare: %s, %u B failed: %s\n", systems[s].name,
					G.sizes[z], cells[s][z].err);
				failed = 1;
			}
	ri.dur_s = G.dur_s;
	ri.rtt_dur_s = G.rtt_dur_s;
	ri.reps = G.reps;
	ri.ring_bytes = G.ring_bytes;
	ri.spill_ring_bytes = G.spill_ring_bytes;
	ri.backoff_ns = G.backoff_ns;
	ri.batch = G.batch;
	ri.data_dir = G.data_parent ? G.data_parent : "/var/tmp";
	ri.pu[0] = G.pu[0];
	ri.pu[1] = G.pu[1];
	ri.link = link;
	ri.grace_s = G.grace_s;
	if (results_write(G.out_dir, &t, &ri))
		failed = 1;
	bench_rm_rf(G.shm_dir);
	bench_rm_rf(G.scratch);
	topo_fini();
	if (interrupted)
		fprintf(stderr, "compare: interrupted\n");
	return failed || interrupted ? 1 : 0;
}
