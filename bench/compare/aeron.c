/* SPDX-License-Identifier: MIT */
/*
 * aeron.c - Aeron IPC rows (aeron.h): Aeron's C media driver (aeronmd) and
 * its C samples, run as child processes, so the rows measure Aeron as its
 * authors ship it; no Aeron code is linked into the comparison.
 *
 * Throughput: a driver (AERON_THREADING_MODE=SHARED, unpinned: one driver
 * thread rather than three on a small machine), rate_subscriber pinned to
 * the receiver's PU, then a publisher pinned to the sender's PU:
 * streaming_exclusive_publisher (try_claim, like a Spillway producer) while
 * the message fits one frame of the default 1408-byte MTU, streaming_publisher
 * (offer, fragmenting) above. A first, unmeasured publisher run warms the
 * path up; the measured one runs the duration plus STEADY_EXTRA_S and is
 * stopped with SIGINT. The rate is the subscriber's over its whole
 * once-a-second reports after it read the new publication's log once
 * (read_sub): the publisher's own "Total" includes that first pass, whose
 * page faults cost half a one-second run on some VMs.
 * Round trip: cpong pinned to the receiver's PU, cping pinned to the
 * sender's (a fresh cpong for each cping: it answers one session only): a
 * short run sizes the count, then cping's percentiles (HDR,
 * microseconds) are read back: for each percentile the first printed row at
 * or above it.
 *
 * Every child runs with a deadline (the run's expected length plus
 * grace_s); one that does not finish is killed and the row says so.
 */
#define _GNU_SOURCE
#include "aeron.h"

#include "../../tools/bench_daemon.h"
#include "../../tools/bench_proc.h"
#include "../../tools/bench_topo.h"

#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLAIM_MAX 1376 /* the default 1408-byte MTU less the 32-byte frame header */
#define START_NS 10000000000ull
/* Seconds a measured publisher runs beyond the duration: its first pass
 * through the new log (read_sub leaves it out) and the partial seconds at
 * both ends of the subscriber's reports. */
#define STEADY_EXTRA_S 3.0

void kid_reason(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status)) {
		const char *abbr = sigabbrev_np(WTERMSIG(status));

		snprintf(buf, len, "killed by signal %d (SIG%s)", WTERMSIG(status), abbr ? abbr : "?");
	} else if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(buf, len, "wait status 0x%x", status);
	}
}

/* One child process: a binary of bin_dir, its output in a file. */
struct kid {
	const char *role; /* "driver", "sender", "receiver" */
	pid_t pid;
	int status;
	uint64_t t0;
	char out[4096 + 64];
};

static int kid_start(struct kid *k, const struct aeron_cfg *a, const char *dir, const char *bin,
		     int pu, const char *const argv[])
{
	char path[4096 + 64];
	static int serial;

	snprintf(path, sizeof(path), "%s/%s", a->bin_dir, bin);
	snprintf(k->out, sizeof(k->out), "%s/%s-%d.out", a->work_dir, bin, serial++);
	k->status = 0;
	k->t0 = ring_monotonic_ns();
	fflush(NULL);
	k->pid = fork();
	if (k->pid < 0)
		return -errno;
	if (k->pid == 0) {
		int fd = open(k->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (pu >= 0 && topo_bind_thread(pu))
			_exit(125);
		setenv("AERON_DIR", dir, 1);
		setenv("AERON_DIR_DELETE_ON_START", "1", 1);
		setenv("AERON_DIR_DELETE_ON_SHUTDOWN", "1", 1);
		setenv("AERON_THREADING_MODE", "SHARED", 1);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return 0;
}

const char *aeron_term_desc(void)
{
	const char *v = getenv("AERON_IPC_TERM_BUFFER_LENGTH");

	return v && *v ? v : "64 MiB (driver default)";
}

/* Still running? Reaps it (status kept) when it has exited. */
static bool kid_alive(struct kid *k)
{
	if (k->pid <= 0)
		return false;
	if (waitpid(k->pid, &k->status, WNOHANG) == k->pid) {
		k->pid = -1;
		return false;
	}
	return true;
}

/* The last line of its output, for an error message. */
static void kid_tail(const struct kid *k, char *buf, size_t len)
{
	char tmp[512];
	FILE *f = fopen(k->out, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return;
	if (fseek(f, -(long)(sizeof(tmp) - 1), SEEK_END))
		rewind(f);
	n = fread(tmp, 1, sizeof(tmp) - 1, f);
	fclose(f);
	while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
		n--;
	tmp[n] = '\0';
	{
		const char *last = strrchr(tmp, '\n') ? strrchr(tmp, '\n') + 1 : tmp;
		size_t m = strlen(last) < len - 1 ? strlen(last) : len - 1;

		memcpy(buf, last, m);
		buf[m] = '\0';
	}
}

/* Wait until it exits or deadline (monotonic ns): 0 when it exited with
 * status 0, else -1 with err ("receiver: timeout after 12 s"). */
static int kid_wait(struct kid *k, uint64_t deadline, char *err, size_t errlen)
{
	char why[96], tail[200];

	while (kid_alive(k)) {
		if (ring_monotonic_ns() > deadline) {
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &k->status, 0);
			k->pid = -1;
			snprintf(err, errlen, "%s: timeout after %.0f s", k->role,
				 (double)(ring_monotonic_ns() - k->t0) / 1e9);
			return -1;
		}
		bench_sleep_ns(1000000);
	}
	if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 0)
		return 0;
	kid_reason(k->status, why, sizeof(why));
	kid_tail(k, tail, sizeof(tail));
	snprintf(err, errlen, "%s: %s%s%.150s", k->role, why, tail[0] ? "; said: " : "", tail);
	return -1;
}

/* SIGINT, up to grace for it to exit, then SIGKILL. Returns kid_wait's. */
static int kid_stop(struct kid *k, double grace_s, char *err, size_t errlen)
{
	int r;

	if (k->pid <= 0)
		return 0;
	if (!kid_alive(k)) /* it ended before it was asked to */
		return kid_wait(k, 0, err, errlen);
	kill(k->pid, SIGINT);
	r = kid_wait(k, ring_monotonic_ns() + (uint64_t)(grace_s * 1e9), err, errlen);
	return r;
}

/* COMPARE_FAULT=aeron-ipc:<role>:stall|crash: SIGSTOP or SIGSEGV that
 * process, to see the row fail and the run go on. */
static void maybe_fault(const struct aeron_cfg *a, const struct kid *k)
{
	char want[64];

	if (!a->fault || k->pid <= 0)
		return;
	snprintf(want, sizeof(want), "aeron-ipc:%s:", k->role);
	if (strncmp(a->fault, want, strlen(want)) != 0)
		return;
	bench_sleep_ns(50000000);
	kill(k->pid, strcmp(a->fault + strlen(want), "crash") == 0 ? SIGSEGV : SIGSTOP);
	fprintf(stderr, "compare: COMPARE_FAULT: %s the aeron-ipc %s (pid %d)\n",
		strcmp(a->fault + strlen(want), "crash") == 0 ? "SIGSEGV to" : "SIGSTOP", k->role,
		(int)k->pid);
}

/* Start the sending sample bin pinned to the first CPU, apply the fault
 * asked for, and wait for it within three times its expected run plus the
 * grace. 0, or -1 with err. */
static int sender_run(const struct aeron_cfg *a, struct kid *p, const char *dir, const char *bin,
		      const char *const argv[], bool fault, double expect_s, char *err,
		      size_t errlen)
{
	if (kid_start(p, a, dir, bin, a->pu[0], argv)) {
		snprintf(err, errlen, "sender: fork: %s", strerror(errno));
		return -1;
	}
	if (fault)
		maybe_fault(a, p);
	return kid_wait(p, p->t0 + (uint64_t)((3 * expect_s + a->grace_s) * 1e9), err, errlen);
}

static bool have(const struct aeron_cfg *a, const char *bin)
{
	char path[4096 + 64];

	snprintf(path, sizeof(path), "%s/%s", a->bin_dir, bin);
	return access(path, X_OK) == 0;
}

int aeron_check(const struct aeron_cfg *a, char *err, size_t errlen)
{
	static const char *const need[] = { "aeronmd", "rate_subscriber", "streaming_publisher",
					    "cping", "cpong" };
	size_t used = 0;

	err[0] = '\0';
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!have(a, need[i]) && used < errlen)
			used += (size_t)snprintf(err + used, errlen - used, "%s%s", used ? ", " : "",
						 need[i]);
	if (!err[0])
		return 0;
	if (used < errlen)
		snprintf(err + used, errlen - used, " missing in %s", a->bin_dir);
	return -1;
}

void aeron_version(const struct aeron_cfg *a, char *buf, size_t len)
{
	const char *const argv[] = { "aeronmd", "-v", NULL };
	struct kid k = { .role = "driver" };
	char err[256], line[512] = "", *v;
	FILE *f;

	snprintf(buf, len, "aeron: unknown version");
	if (kid_start(&k, a, "/nonexistent", "aeronmd", -1, argv) ||
	    kid_wait(&k, ring_monotonic_ns() + 5000000000ull, err, sizeof(err)))
		return;
	f = fopen(k.out, "r");
	if (f && fgets(line, sizeof(line), f) && (v = strchr(line, '<')) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(buf, len, "aeron %s", v);
	}
	if (f)
		fclose(f);
	unlink(k.out);
}

/* A driver on a fresh directory, up when its cnc.dat appears. */
static int driver_start(struct kid *d, const struct aeron_cfg *a, char *dir, size_t dirlen,
			char *err, size_t errlen)
{
	static int serial;
	const char *const argv[] = { "aeronmd", NULL };
	char cnc[4096 + 16];
	uint64_t deadline;
	struct stat st;

	d->role = "driver";
	snprintf(dir, dirlen, "%s/aeron-%d", a->work_dir, serial++);
	snprintf(cnc, sizeof(cnc), "%s/cnc.dat", dir);
	if (kid_start(d, a, dir, "aeronmd", -1, argv)) {
		snprintf(err, errlen, "driver: fork: %s", strerror(errno));
		return -1;
	}
	deadline = ring_monotonic_ns() + START_NS;
	while (stat(cnc, &st) || st.st_size == 0) {
		if (!kid_alive(d))
			return kid_wait(d, 0, err, errlen) ? -1 : (snprintf(err, errlen, "driver: exited"), -1);
		if (ring_monotonic_ns() > deadline) {
			kid_wait(d, 0, err, errlen);
			snprintf(err, errlen, "driver: timeout after %.0f s (no cnc.dat)", START_NS / 1e9);
			return -1;
		}
		bench_sleep_ns(2000000);
	}
	bench_sleep_ns(50000000); /* the conductor is running once cnc.dat is filled in */
	return 0;
}

static void driver_stop(struct kid *d, const struct aeron_cfg *a, const char *dir, char *err,
			size_t errlen)
{
	char e[256] = "";

	/* aeronmd's exit status after SIGINT is not 0: only a driver that had
	 * to be killed, or died of a signal, is a failure. */
	if (kid_stop(d, a->grace_s, e, sizeof(e)) && !WIFEXITED(d->status) && !err[0])
		snprintf(err, errlen, "%s", e);
	bench_rm_rf(dir);
}

/* Ask a subscriber / ponger to end; its failure is added to the case's. */
static void stop_peer(struct kid *k, const struct aeron_cfg *a, char *err, size_t errlen)
{
	char e[256] = "";

	size_t used = strlen(err);

	/* A receiver that died (a crash) also explains the sender's failure: both are said. */
	if (k->pid > 0 && kid_stop(k, a->grace_s, e, sizeof(e)) && used + 2 < errlen)
		snprintf(err + used, errlen - used, "%s%s", used ? "; " : "", e);
}

static void drop_output(struct kid *k)
{
	if (k->out[0])
		unlink(k->out);
}

/* A case's end: the receiver stopped, then the driver; their output
 * dropped. r, or -1 when something said an error. */
static int case_end(const struct aeron_cfg *a, const char *dir, struct kid *driver, struct kid *peer,
		    int r, char *err, size_t errlen)
{
	stop_peer(peer, a, err, errlen);
	drop_output(peer);
	if (driver->pid > 0)
		driver_stop(driver, a, dir, err, errlen);
	drop_output(driver);
	return err[0] ? -1 : r;
}

/* The publisher's lines: "Streaming N messages of payload length L bytes"
 * and "Total: Xms, R msgs/sec, ...". */
static int read_pub(const struct kid *k, uint32_t size, double *rate, char *err, size_t errlen)
{
	char line[512];
	unsigned long long n, len;
	long long ms;
	bool length_ok = false;
	FILE *f = fopen(k->out, "r");

	*rate = -1;
	if (!f) {
		snprintf(err, errlen, "sender: no output: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Streaming %llu messages of payload length %llu", &n, &len) == 2)
			length_ok = len == size;
		else
			sscanf(line, "Total: %lldms, %lf msgs/sec", &ms, rate);
	}
	fclose(f);
	if (!length_ok) {
		snprintf(err, errlen, "sender: the publisher did not take -L %u (unpatched "
			 "streaming_exclusive_publisher? see docs/aeron.md)", size);
		return -1;
	}
	if (*rate <= 0) {
		snprintf(err, errlen, "sender: no \"Total:\" line in its output");
		return -1;
	}
	return 0;
}

static int run_pub(const struct aeron_cfg *a, const char *dir, const char *bin, uint32_t size,
		   uint64_t count, double expect_s, double *rate, bool fault, char *err, size_t errlen)
{
	char len[16], cnt[24];
	const char *const argv[] = { bin, "-p", dir, "-c", "aeron:ipc", "-s", "1001",
			       "-l", "0", "-L", len, "-m", cnt, NULL };
	struct kid p = { .role = "sender" };
	int r;

	snprintf(len, sizeof(len), "%u", size);
	snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)count);
	r = sender_run(a, &p, dir, bin, argv, fault, expect_s, err, errlen);
	if (!r)
		r = read_pub(&p, size, rate, err, errlen);
	drop_output(&p);
	return r;
}

/* The measured publisher: unbounded (-m far beyond reach), stopped with
 * SIGINT after run_s. It then prints its Total as after a counted run, but
 * computed from -m, not from what it sent: only its payload length is read
 * (the -L check in read_pub). */
static int run_pub_for(const struct aeron_cfg *a, const char *dir, const char *bin, uint32_t size,
		       double run_s, char *err, size_t errlen)
{
	char len[16];
	const char *const argv[] = { bin, "-p", dir, "-c", "aeron:ipc", "-s", "1001",
			       "-l", "0", "-L", len, "-m", "1000000000000000", NULL };
	struct kid p = { .role = "sender" };
	double meaningless;
	uint64_t end;
	int r;

	snprintf(len, sizeof(len), "%u", size);
	if (kid_start(&p, a, dir, bin, a->pu[0], argv)) {
		snprintf(err, errlen, "sender: fork: %s", strerror(errno));
		return -1;
	}
	maybe_fault(a, &p);
	end = p.t0 + (uint64_t)(run_s * 1e9);
	while (ring_monotonic_ns() < end && kid_alive(&p))
		bench_sleep_ns(2000000);
	if (!kid_alive(&p)) { /* it cannot have finished 10^15 messages: it failed */
		if (!kid_wait(&p, 0, err, errlen))
			snprintf(err, errlen, "sender: exited after %.1f s of %.1f",
				 (double)(ring_monotonic_ns() - p.t0) / 1e9, run_s);
		r = -1;
	} else {
		r = kid_stop(&p, a->grace_s, err, errlen);
	}
	if (!r)
		r = read_pub(&p, size, &meaningless, err, errlen);
	drop_output(&p);
	return r;
}

/* The log of one IPC publication, three terms, in bytes. */
static double aeron_log_bytes(void)
{
	const char *v = getenv("AERON_IPC_TERM_BUFFER_LENGTH");
	char *end;
	double t = v && *v ? strtod(v, &end) : 0;

	if (t <= 0)
		return 3.0 * 64 * 1024 * 1024;
	if (*end == 'k' || *end == 'K')
		t *= 1024;
	else if (*end == 'm' || *end == 'M')
		t *= 1024 * 1024;
	else if (*end == 'g' || *end == 'G')
		t *= 1024.0 * 1024 * 1024;
	return 3 * t;
}

/* Bytes a message of size takes in the log: frames of at most CLAIM_MAX
 * payload bytes, each with its 32-byte header, aligned to 32. */
static double aeron_frame_bytes(uint32_t size)
{
	uint64_t full = size / CLAIM_MAX, rem = size % CLAIM_MAX;

	return (double)(full * ((CLAIM_MAX + 32 + 31) & ~31ull) + (rem ? (rem + 32 + 31) & ~31ull : 0));
}

/* The steady rate from rate_subscriber's once-a-second reports ("1000ms,
 * R msgs/sec, B bytes/sec, totals N messages M MB payloads") for the last
 * image it saw (the measured publication's). Left out: the seconds until
 * the subscriber has read the whole log once (each new publication maps a
 * new log, and the first pass through it pays for the page faults of both
 * processes: ~0.5 s on the VM of 2026-12-04, half a one-second run) and the
 * last report with messages (the publisher stopped in it). */
static int read_sub(const struct kid *k, uint32_t size, double *rate, char *err, size_t errlen)
{
	char line[512];
	unsigned long long ms, total, base = 0, prev = 0;
	double r_, b_, log_bytes = aeron_log_bytes(), frame = aeron_frame_bytes(size);
	double used_ms = 0, used_msgs = 0, last_ms = 0, last_msgs = 0, idle_ms = 0;
	bool image = false;
	FILE *f = fopen(k->out, "r");

	*rate = -1;
	if (!f) {
		snprintf(err, errlen, "receiver: no output: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Available image", 15) == 0) {
			/* A later image: start over from its first report. */
			image = true;
			base = prev;
			used_ms = used_msgs = last_ms = last_msgs = idle_ms = 0;
		} else if (sscanf(line, "%llums, %lf msgs/sec, %lf bytes/sec, totals %llu messages", &ms,
				  &r_, &b_, &total) == 4) {
			double msgs = total >= prev ? (double)(total - prev) : 0;

			if (!image || (double)(prev - base) * frame < log_bytes) {
				/* before the image, or in its first pass */
			} else if (msgs == 0) {
				idle_ms += (double)ms; /* a stall, if more come: or the end */
			} else {
				/* Whole seconds after the first pass; the previous ones
				 * (stalls too) are known not to be the end. */
				used_ms += last_ms + idle_ms;
				used_msgs += last_msgs;
				last_ms = (double)ms;
				last_msgs = msgs;
				idle_ms = 0;
			}
			prev = total;
		}
	}
	fclose(f);
	if (!image || used_ms < 500) {
		snprintf(err, errlen, "receiver: no steady second in its reports (%s)",
			 image ? "the run was too short" : "no image");
		return -1;
	}
	*rate = used_msgs * 1000 / used_ms;
	return 0;
}

/* The row's figure is the subscriber's steady rate (read_sub). */
int aeron_tp(const struct aeron_cfg *a, uint32_t size, double dur_s, double *rate, char *desc,
	     size_t desclen, char *err, size_t errlen)
{
	char dir[4096 + 32];
	const char *const sargv[] = { "rate_subscriber", "-p", dir, "-c", "aeron:ipc", "-s", "1001", NULL };
	struct kid d = { .role = "driver" }, s = { .role = "receiver" };
	bool claim = size <= CLAIM_MAX && have(a, "streaming_exclusive_publisher");
	const char *bin = claim ? "streaming_exclusive_publisher" : "streaming_publisher";
	double warm = 0;
	int r = -1;

	err[0] = '\0';
	*rate = -1;
	if (driver_start(&d, a, dir, sizeof(dir), err, errlen))
		goto out;
	if (kid_start(&s, a, dir, "rate_subscriber", a->pu[1], sargv)) {
		snprintf(err, errlen, "receiver: fork: %s", strerror(errno));
		goto out;
	}
	/* Warm-up, unmeasured: also makes sure the subscriber is connected. */
	if (run_pub(a, dir, bin, size, 100000, 1 + dur_s, &warm, false, err, errlen))
		goto out;
	if (!kid_alive(&s)) {
		kid_wait(&s, 0, err, errlen);
		goto out;
	}
	maybe_fault(a, &s);
	/* The first pass through the new log, then >= dur_s of whole seconds. */
	if (run_pub_for(a, dir, bin, size, dur_s + STEADY_EXTRA_S, err, errlen))
		goto out;
	stop_peer(&s, a, err, errlen); /* SIGINT: it flushes its reports and exits */
	if (!err[0])
		r = read_sub(&s, size, rate, err, errlen);
out:
	snprintf(desc, desclen, "%s (%s), term %s; the subscriber's steady rate", bin,
		 claim ? "try_claim" : "offer", aeron_term_desc());
	return case_end(a, dir, &d, &s, r, err, errlen);
}

/* cping's HDR table: "value percentile total 1/(1-p)" rows, in us. */
static int read_ping(const struct kid *k, double pct[5], double *mean_ns, char *err, size_t errlen)
{
	static const double want[4] = { 0.5, 0.9, 0.99, 0.999 };
	char line[512];
	double v, p, inv, max = -1, mean = -1;
	unsigned long long tot;
	FILE *f = fopen(k->out, "r");

	for (int i = 0; i < 5; i++)
		pct[i] = -1;
	if (!f) {
		snprintf(err, errlen, "pinger: no output: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %lf %lf %llu %lf", &v, &p, &tot, &inv) == 4) {
			for (int i = 0; i < 4; i++)
				if (pct[i] < 0 && p >= want[i] - 1e-9)
					pct[i] = v * 1000;
		} else if (sscanf(line, "#[Max = %lf", &v) == 1) {
			max = v * 1000;
		} else if (sscanf(line, "#[Mean = %lf", &v) == 1) {
			mean = v * 1000;
		}
	}
	fclose(f);
	if (max < 0 || pct[0] < 0) {
		snprintf(err, errlen, "pinger: no percentile table in its output");
		return -1;
	}
	for (int i = 1; i < 4; i++)
		if (pct[i] < 0)
			pct[i] = max;
	pct[4] = max;
	*mean_ns = mean > 0 ? mean : pct[0];
	return 0;
}

static int run_ping(const struct aeron_cfg *a, const char *dir, uint32_t size, uint64_t count,
		    uint64_t warm, double expect_s, double pct[5], double *mean_ns, bool fault,
		    char *err, size_t errlen)
{
	char len[16], cnt[24], w[24];
	const char *const argv[] = { "cping", "-p", dir, "-c", "aeron:ipc", "-C", "aeron:ipc",
			       "-L", len, "-m", cnt, "-w", w, NULL };
	struct kid p = { .role = "sender" };
	int r;

	snprintf(len, sizeof(len), "%u", size);
	snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)count);
	snprintf(w, sizeof(w), "%llu", (unsigned long long)warm);
	r = sender_run(a, &p, dir, "cping", argv, fault, expect_s, err, errlen);
	if (!r)
		r = read_ping(&p, pct, mean_ns, err, errlen);
	drop_output(&p);
	return r;
}

int aeron_rtt(const struct aeron_cfg *a, uint32_t size, double dur_s, double *est_ns,
	      double pct[5], char *err, size_t errlen)
{
	char dir[4096 + 32];
	const char *const oargv[] = { "cpong", "-p", dir, "-c", "aeron:ipc", "-C", "aeron:ipc", NULL };
	struct kid d = { .role = "driver" }, o = { .role = "receiver" };
	double mean = 0, cal[5];
	uint64_t n;
	int r = -1;

	err[0] = '\0';
	if (driver_start(&d, a, dir, sizeof(dir), err, errlen))
		goto out;
	/* cpong answers the first ping session it sees only: one cpong per cping. */
	if (*est_ns <= 0) { /* a short run sizes the count */
		if (kid_start(&o, a, dir, "cpong", a->pu[1], oargv)) {
			snprintf(err, errlen, "receiver: fork: %s", strerror(errno));
			goto out;
		}
		if (run_ping(a, dir, size, 2000, 100, 1, cal, &mean, false, err, errlen))
			goto out;
		stop_peer(&o, a, err, errlen);
		drop_output(&o);
		if (err[0])
			goto out;
		*est_ns = mean;
	}
	if (kid_start(&o, a, dir, "cpong", a->pu[1], oargv)) {
		snprintf(err, errlen, "receiver: fork: %s", strerror(errno));
		goto out;
	}
	maybe_fault(a, &o);
	n = (uint64_t)(dur_s * 1e9 / *est_ns);
	if (n < 1000)
		n = 1000;
	/* cping warms up apart: the first 1000 or a tenth, as sides.c discards. */
	r = run_ping(a, dir, size, n, n / 10 < 1000 ? n / 10 : 1000, dur_s, pct, &mean, true, err,
		     errlen);
	if (r == 0)
		*est_ns = mean;
out:
	return case_end(a, dir, &d, &o, r, err, errlen);
}
