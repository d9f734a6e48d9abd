/* SPDX-License-Identifier: MIT */
/*
 * reader_ahead.c - the reader's read-ahead thread (spill/reader.c R6).
 *
 * Replaying from the page cache, one thread's time goes to the kernel's copy
 * (pread) and to the CRC check of what it copied, one after the other: at
 * best ~0.7x a plain read() of the same files on this project's machine
 * (docs/HACKING.md, "Replay history"). A reader reading chunk after chunk
 * therefore starts one helper thread, which reads and checks every other
 * chunk into its own buffer while the reader reads and checks the one
 * between, then walks the thread's buffer in place.
 *
 * Two measured rules shape it (make bench, replay_*; HACKING "Replay
 * history"):
 *  - Each thread checks what it copied itself, while it is in its own
 *    core's cache. A thread that only copied (io_uring's worker, earlier a
 *    pthread) left the check to pull every line across: slower than one
 *    thread.
 *  - Each side writes only its own buffers. Buffers swapped between the
 *    two made every line the copy writes a transfer from the other core:
 *    the reader's own chunks ran 5x slower and whole replays at ~3 GB/s
 *    when the two vCPUs sat far apart.
 *
 * One job at a time, through `state` (struct rd_ahead in reader.h):
 *   reader                               thread
 *   IDLE: writes the job, stores JOB --> takes it (JOB -> RUNNING); preads,
 *                                        checks the CRCs (rd_crc_first_bad,
 *                                        the one check the reader's own
 *                                        chunks go through)
 *   waits for DONE, walks the        <-- stores DONE
 *   thread's buffer in place; IDLE, or the next JOB (into the thread's
 *   other buffer)
 * A job the thread has not begun when the reader needs that chunk is taken
 * back (JOB -> IDLE) and read by the reader: a thread that gets no CPU (a
 * busy machine, or the reader's own CPU) never makes the reader wait. A
 * running one is waited for at most rd_ahead_give_up_ns (0.5 ms, a few
 * chunks' time): a VM's host may take the thread's vCPU for longer (this
 * machine's steal time reached 0.8 s in a ~10 s benchmark run); the reader
 * then reads the chunk itself and the thread's result is dropped when it
 * comes. Only the chunk the reader asks for next is taken, and only from
 * the same opening of the segment (r->seg_opens) at the same position; a
 * job further on is kept, any other is taken back or, running, left to
 * finish and dropped (a pread cannot be called back; no other job is
 * given meanwhile). The thread reads through its own dup of the segment's
 * descriptor, so the reader may close and open segments while a job runs.
 *
 * It starts only for sequential reading (the second chunk in a row), when
 * the calling thread may run on at least two CPUs (the helper inherits its
 * affinity: a pinned reader reads alone) and no cgroup CPU quota is below
 * two (cgroup_cpus: a container's CPU limit), and never with
 * SPW_READER_NO_READAHEAD. A failure to start it is not an error: the reader
 * reads alone. A forked child has no such thread (ring_fork_gen): its reader
 * drops the job it inherited and may start its own.
 *
 * Waits spin (a chunk takes ~50-100 us) unless the other side last ran on
 * this CPU, then sleep on the futex; the side that changes `state` wakes
 * the other only when it said it sleeps.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AH_SPIN_NS 200000ll       /* the reader, for a running chunk */
#define AH_IDLE_SPIN_NS 100000ll  /* the thread, for the next job */

int rd_ahead_min_cpus = 2;
bool rd_ahead_take_back = true;
int64_t rd_ahead_give_up_ns = 500000; /* a few chunks' time */
void (*rd_test_ahead_hook)(int at);

void rd_ahead_init(struct rd_ahead *a)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->seq_to = UINT64_MAX; /* the first chunk is not "in a row" */
	atomic_init(&a->state, RD_AH_IDLE);
	atomic_init(&a->thread_cpu, -1);
	atomic_init(&a->reader_cpu, -1);
}

/* Wait while state is one of the `n` values in `busy`, or until give_up
 * (monotonic ns; 0: no limit); returns the state then. Spins up to spin_ns
 * unless `other_cpu` is the CPU we run on (the other side then needs it),
 * then sleeps. `sleeps` is this side's flag: seq_cst store of it, then a
 * seq_cst load of state; pairs with post()'s seq_cst store of state then
 * load of the flag, so either the poster sees the flag and wakes us, or we
 * see the new state and do not sleep. */
static uint32_t wait_while(struct rd_ahead *a, const uint32_t *busy, int n, _Atomic uint32_t *sleeps,
			   const _Atomic int *other_cpu, int64_t spin_ns, int64_t give_up)
{
	int64_t until = 0;
	uint32_t s;

	for (unsigned spin = 0;; spin++) {
		bool is_busy = false;
		int64_t now, nap;

		/* Acquire: pairs with post()'s store; the job (or result) the
		 * other side wrote before it is then ours to read. */
		s = atomic_load_explicit(&a->state, memory_order_acquire);
		for (int k = 0; k < n; k++)
			is_busy |= s == busy[k];
		if (!is_busy)
			return s;
		if (spin % 64) {
			ring_cpu_relax();
			continue;
		}
		now = (int64_t)ring_monotonic_ns();
		if (give_up && now >= give_up)
			return s;
		if (!until) /* relaxed: a hint; a wrong one costs a spin or a sleep */
			until = now + (atomic_load_explicit(other_cpu, memory_order_relaxed) == sched_getcpu()
					       ? 0 : spin_ns);
		if (now < until)
			continue;
		/* The thread sleeps until woken (a reader live for days must
		 * not wake it 10 times a second); the reader looks again every
		 * 100 ms anyway, or at give_up. */
		nap = sleeps == &a->thread_sleeps ? -1 : 100000000ll;
		if (give_up && give_up - now < 100000000ll)
			nap = give_up - now;
		atomic_store_explicit(sleeps, 1, memory_order_seq_cst);
		s = atomic_load_explicit(&a->state, memory_order_seq_cst);
		is_busy = false;
		for (int k = 0; k < n; k++)
			is_busy |= s == busy[k];
		if (is_busy)
			ring_futex_wait(&a->state, s, nap);
		/* Relaxed: our own flag; seen late it costs the other
		 * side one futex wake too many. */
		atomic_store_explicit(sleeps, 0, memory_order_relaxed);
	}
}

/* Store the new state (seq_cst, see wait_while) and wake the other side if
 * it sleeps. */
static void post(struct rd_ahead *a, uint32_t s, _Atomic uint32_t *other_sleeps)
{
	atomic_store_explicit(&a->state, s, memory_order_seq_cst);
	if (atomic_load_explicit(other_sleeps, memory_order_seq_cst))
		ring_futex_wake_all(&a->state);
}

static void *thread_main(void *arg)
{
	static const uint32_t idle[] = { RD_AH_IDLE, RD_AH_DONE };
	struct rd_ahead *a = arg;

	if (rd_test_ahead_hook)
		rd_test_ahead_hook(RD_AH_AT_START); /* a thread that gets no CPU */
	for (;;) {
		uint32_t s = wait_while(a, idle, 2, &a->thread_sleeps, &a->reader_cpu, AH_IDLE_SPIN_NS, 0);

		if (s == RD_AH_QUIT)
			return NULL;
		/* Acquire on success: pairs with post()'s seq_cst store of
		 * JOB, so the job's fields are ours until we store DONE.
		 * Failing, the reader took the job back. */
		if (s != RD_AH_JOB || !atomic_compare_exchange_strong_explicit(&a->state, &s, RD_AH_RUNNING,
									      memory_order_acquire,
									      memory_order_relaxed))
			continue;
		/* Relaxed: a hint for the reader's wait_while, nothing pairs. */
		atomic_store_explicit(&a->thread_cpu, sched_getcpu(), memory_order_relaxed);
		if (rd_test_ahead_hook)
			rd_test_ahead_hook(RD_AH_AT_RUNNING); /* ... that loses it mid-job */

		const struct rd_plan *p = &a->p;
		ssize_t got = pread(a->fd, a->buf, p->alen, (off_t)(p->afrom - a->fd_base));

		a->bad = p->j - p->i;
		if (got < 0)
			got = -errno;
		else if (got >= (ssize_t)(p->to - p->afrom) && a->verify)
			a->bad = rd_crc_first_bad(a->ent, p->j - p->i, a->buf, p->afrom, p->from);
		a->got = got;
		post(a, RD_AH_DONE, &a->reader_sleeps);
	}
}

/* Is the thread ours? In a forked child it is not (it stayed in the
 * parent): forget it and the job it had, keep the buffers. */
static bool running(struct rd_ahead *a)
{
	if (a->running && a->fork_gen != ring_fork_gen) {
		a->running = false;
		if (a->fd >= 0)
			close(a->fd);
		a->fd = -1;
		atomic_store_explicit(&a->state, RD_AH_IDLE, memory_order_relaxed); /* one thread now */
	}
	return a->running;
}

/* Take back a job the thread has not begun (JOB -> IDLE): the reader
 * reads that chunk itself. Returns the state then: IDLE, RUNNING or DONE
 * (JOB only with rd_ahead_take_back off). Acquire: a DONE seen here pairs
 * with the thread's store, so its buffer is the reader's again. */
static uint32_t take_back(struct rd_ahead *a)
{
	uint32_t s = RD_AH_JOB;

	if (!rd_ahead_take_back)
		return atomic_load_explicit(&a->state, memory_order_acquire);
	/* Acquire both ways (C11 wants success at least as strong as
	 * failure); on success the thread never read the job. */
	if (atomic_compare_exchange_strong_explicit(&a->state, &s, RD_AH_IDLE, memory_order_acquire,
						    memory_order_acquire)) {
		a->taken_back++;
		return RD_AH_IDLE;
	}
	return s;
}

/* A job the reader will not use: taken back, or its result dropped. One
 * RUNNING is left to finish: rd_ahead_next gives no other job meanwhile. */
static void drop(struct rd_ahead *a)
{
	/* Relaxed store: only the reader stores IDLE, and the thread waits
	 * for JOB or QUIT, which post() stores with seq_cst. */
	if (take_back(a) == RD_AH_DONE)
		atomic_store_explicit(&a->state, RD_AH_IDLE, memory_order_relaxed);
}

/* Is the job the chunk after the reader's current one, or further on? */
static bool ahead_of(const struct spw_reader *r, uint64_t from)
{
	return r->ahead.fd_seg == r->seg_opens && r->ahead.p.from > from;
}

double rd_quota_cpus(const char *quota, const char *period)
{
	char *end;
	double q, p;

	if (!strcmp(quota, "max") || !strcmp(quota, "-1"))
		return 0;
	q = strtod(quota, &end);
	if (end == quota || (*end && *end != '\n') || q <= 0)
		return -1;
	p = strtod(period, &end);
	if (end == period || (*end && *end != '\n') || p <= 0)
		return -1;
	return q / p;
}

/* The first line of a small file into buf (NUL-terminated): 0 or -1. */
static int read_line(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The quota of the cgroup at dir, in CPUs (0: none). v2: cpu.max holds
 * "QUOTA PERIOD"; v1: cpu.cfs_quota_us and cpu.cfs_period_us. */
static double quota_at(const char *dir, bool v2)
{
	char path[PATH_MAX + 32], q[64], p[64];

	if (v2) {
		char *sp;

		snprintf(path, sizeof(path), "%s/cpu.max", dir);
		if (read_line(path, q, sizeof(q)) || !(sp = strchr(q, ' ')))
			return 0;
		*sp = '\0';
		snprintf(p, sizeof(p), "%s", sp + 1);
	} else {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
		if (read_line(path, q, sizeof(q)))
			return 0;
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
		if (read_line(path, p, sizeof(p)))
			return 0;
	}
	return rd_quota_cpus(q, p);
}

/* Does a v1 controller list ("cpu,cpuacct") name the cpu controller? */
static bool has_cpu(const char *ctl)
{
	for (const char *t = ctl;; t++) {
		if (!strncmp(t, "cpu", 3) && (t[3] == ',' || t[3] == '\0'))
			return true;
		if (!(t = strchr(t, ',')))
			return false;
	}
}

/* The tightest CPU quota of this process's cgroup and its ancestors, v2
 * or v1 (the cpu controller's hierarchy), in CPUs; 0 when none is set or
 * none can be read. A cpuset lists CPUs the affinity check sees; a quota
 * (a container's CPU limit) does not show there. */
static double cgroup_cpus(void)
{
	char line[PATH_MAX - 64], dir[PATH_MAX];
	double best = 0;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path;
		bool v2;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path++ = '\0';
		ctl++;
		path[strcspn(path, "\n")] = '\0';
		v2 = !*ctl;
		if (!v2 && !has_cpu(ctl))
			continue; /* neither v2 nor v1's cpu controller */
		for (int k = 0; k < 2; k++) {
			static const char *const v2root[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
			static const char *const v1root[] = { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" };
			const char *root = (v2 ? v2root : v1root)[k];
			size_t rootlen = strlen(root);

			if ((size_t)snprintf(dir, sizeof(dir), "%s%s", root, strcmp(path, "/") ? path : "") >=
			    sizeof(dir))
				continue;
			for (;;) { /* this cgroup, then each ancestor up to the root */
				double c = quota_at(dir, v2);
				char *slash = strrchr(dir, '/');

				if (c > 0 && (best == 0 || c < best))
					best = c;
				if (!slash || (size_t)(slash - dir) < rootlen)
					break;
				*slash = '\0';
			}
		}
	}
	fclose(f);
	return best;
}

static bool start(struct rd_ahead *a)
{
	sigset_t all, old;
	cpu_set_t cpus;
	double quota;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) || CPU_COUNT(&cpus) < rd_ahead_min_cpus)
		return false;
	/* A quota below the CPUs needed: the two would take turns on one
	 * and spin against the quota; read alone. */
	quota = cgroup_cpus();
	if (quota > 0 && quota < rd_ahead_min_cpus) {
		a->failed = true; /* do not look again for every chunk */
		return false;
	}
	ring_fork_watch();
	/* The thread takes no signals: they stay the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	a->failed = pthread_create(&a->th, NULL, thread_main, a) != 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (a->failed)
		return false;
	pthread_setname_np(a->th, "spw-readahead");
	a->running = true;
	a->fork_gen = ring_fork_gen;
	return true;
}

bool rd_ahead_take(struct spw_reader *r, struct rd_plan *p, const uint8_t **buf, ssize_t *got,
		   int *bad, const struct seg_idx_entry **ent)
{
	static const uint32_t out[] = { RD_AH_JOB, RD_AH_RUNNING };
	struct rd_ahead *a = &r->ahead;
	uint32_t s;

	if (!running(a))
		return false;
	/* Relaxed: only the reader stores IDLE; what the thread wrote is
	 * ordered by take_back's or wait_while's acquire loads below. */
	if (atomic_load_explicit(&a->state, memory_order_relaxed) == RD_AH_IDLE)
		return false;
	if (ahead_of(r, p->from))
		return false; /* ours later */
	if (a->fd_seg != r->seg_opens || a->p.from != p->from) {
		drop(a);
		return false;
	}
	s = take_back(a);
	if (s == RD_AH_JOB || s == RD_AH_RUNNING) {
		/* Running (or, in tests, not taken back): wait, but not for
		 * a thread whose CPU went away (a VM's vCPU taken by the
		 * host, a busy machine): then read the chunk here; its result
		 * is dropped when it comes (rd_ahead_next). */
		/* Relaxed: a hint for the thread's wait_while. */
		atomic_store_explicit(&a->reader_cpu, sched_getcpu(), memory_order_relaxed);
		s = wait_while(a, out, 2, &a->reader_sleeps, &a->thread_cpu, AH_SPIN_NS,
			       rd_ahead_give_up_ns ? (int64_t)ring_monotonic_ns() + rd_ahead_give_up_ns : 0);
		if (s != RD_AH_DONE)
			a->given_up++;
	}
	if (s != RD_AH_DONE)
		return false; /* taken back, or given up on: the reader reads it */
	*buf = a->buf;
	*p = a->p;
	*got = a->got;
	*bad = a->bad;
	*ent = a->ent;
	a->chunks++;
	a->bad_chunks += a->bad < a->p.j - a->p.i;
	/* Relaxed: as in drop(); the DONE it replaces was loaded with
	 * acquire (take_back or wait_while). */
	atomic_store_explicit(&a->state, RD_AH_IDLE, memory_order_relaxed);
	return true;
}

/* Give the thread chunk q of the reader's segment. */
static void submit(struct spw_reader *r, const struct rd_plan *q)
{
	struct rd_ahead *a = &r->ahead;
	const struct rd_seg *g = &r->seg;
	int n = q->j - q->i, k;

	if (a->fd < 0 || a->fd_seg != r->seg_opens) {
		if (a->fd >= 0)
			close(a->fd);
		a->fd = fcntl(g->fd, F_DUPFD_CLOEXEC, 0);
		if (a->fd < 0)
			return;
		a->fd_base = g->base;
		a->fd_seg = r->seg_opens;
	}
	/* The thread's buffer the reader is not walking (each side writes
	 * only its own buffers: see the top of this file). */
	k = a->bufs[0] == r->cur;
	if (rd_buf_grow(&a->bufs[k], &a->caps[k], q->alen))
		return;
	a->buf = a->bufs[k];
	if (n > a->ent_cap) {
		struct seg_idx_entry *e = realloc(a->ent, (size_t)n * sizeof(*e));

		if (!e)
			return;
		a->ent = e;
		a->ent_cap = n;
	}
	memcpy(a->ent, g->ent + q->i, (size_t)n * sizeof(*a->ent));
	a->p = *q;
	a->verify = !(r->o.flags & SPW_READER_NO_VERIFY);
	atomic_store_explicit(&a->reader_cpu, sched_getcpu(), memory_order_relaxed); /* a hint */
	/* seq_cst (post): publishes the job to the thread's acquire load. */
	post(a, RD_AH_JOB, &a->thread_sleeps);
}

void rd_ahead_next(struct spw_reader *r, const struct rd_plan *p, bool took)
{
	struct rd_ahead *a = &r->ahead;
	const struct rd_seg *g = &r->seg;
	bool sequential = p->from == a->seq_to;
	struct rd_plan q;

	a->seq_to = p->to;
	if (r->o.flags & SPW_READER_NO_READAHEAD)
		return;
	if (!running(a) && (!sequential || a->failed || !start(a)))
		return;
	/* Acquire: a DONE pairs with the thread's store (its buffer is ours
	 * again). A job further on stays; one finished since it was dropped
	 * or given up on goes. */
	uint32_t s = atomic_load_explicit(&a->state, memory_order_acquire);

	if (s == RD_AH_DONE && !ahead_of(r, p->from)) {
		/* Relaxed: as in drop(). */
		atomic_store_explicit(&a->state, RD_AH_IDLE, memory_order_relaxed);
		s = RD_AH_IDLE;
	}
	if (s != RD_AH_IDLE)
		return; /* a job further on, or one still running */
	if (a->fd >= 0 && a->fd_seg != r->seg_opens) {
		/* The reader left that segment: retention may delete it, and
		 * an open descriptor would keep its blocks. */
		close(a->fd);
		a->fd = -1;
	}
	if (p->j >= g->nent)
		return;
	rd_plan_at(g, p->j, &q);
	if (took) { /* the reader reads the next one itself: the one after */
		if (q.j >= g->nent)
			return;
		rd_plan_at(g, q.j, &q);
	}
	submit(r, &q);
}

void rd_ahead_stop(struct rd_ahead *a)
{
	static const uint32_t out[] = { RD_AH_JOB, RD_AH_RUNNING };

	if (running(a)) {
		/* A running pread cannot be called back: wait for it. */
		if (take_back(a) == RD_AH_RUNNING || !rd_ahead_take_back)
			wait_while(a, out, 2, &a->reader_sleeps, &a->thread_cpu, AH_SPIN_NS, 0);
		post(a, RD_AH_QUIT, &a->thread_sleeps);
		pthread_join(a->th, NULL);
		a->running = false;
	}
	if (a->fd >= 0)
		close(a->fd);
	free(a->bufs[0]);
	free(a->bufs[1]);
	free(a->ent);
	rd_ahead_init(a);
}
