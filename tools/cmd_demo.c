/* SPDX-License-Identifier: MIT */
/*
 * cmd_demo.c - `spillway demo` (make demo): the main job in one command.
 *
 * spillwayd on fresh temp dirs; a topic (16 MiB ring, 64 MiB segments); N
 * producer processes sending checksummed records; a live consumer measuring
 * end-to-end latency; a consumer that falls far behind on purpose and then
 * catches up from the segment files; a replay of a time range; a summary.
 * Every child is killed and reaped on any failure (and dies with us through
 * PR_SET_PDEATHSIG), the daemon is stopped with SIGTERM, the dirs removed.
 * Exit 0 only when both consumers saw every record exactly once.
 */
#include "demo.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: spillway demo [--producers N] [--seconds S] [--bytes SIZE] [--ring-size SIZE]\n"
	"                     [--segment-size SIZE] [--keep]\n"
	"Run the whole pipeline on temp dirs: spillwayd, producers, a live consumer (latency),\n"
	"a lagging consumer that catches up from disk, a time-range replay, then a summary.\n"
	"  --producers N       producer processes (default 3, at most 8)\n"
	"  --seconds S         produce for at most S seconds (default 8)\n"
	"  --bytes SIZE        ...or until SIZE of payload is produced (default 1G)\n"
	"  --ring-size SIZE    the topic's ring (default 16M)\n"
	"  --segment-size SIZE its segment files (default 64M)\n"
	"  --keep              keep the temp dirs (printed) instead of removing them\n"
	"spillwayd is $SPW_DAEMON, else the one next to this binary, else from PATH.\n"
	"Exit status 0 only when both consumers saw every record exactly once.\n";

struct kids {
	pid_t daemon, prod[DEMO_MAX_PRODUCERS], live, lag;
	int nprod, daemon_status;
};

static uint64_t t_origin;

static double since(void)
{
	return (double)(cli_mono_ns() - t_origin) / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* $SPW_DAEMON, else spillwayd next to /proc/self/exe, else PATH. */
static int find_daemon(char *buf, size_t n)
{
	const char *e = getenv("SPW_DAEMON"), *path = getenv("PATH");
	char self[PATH_MAX];
	ssize_t k;

	if (e && *e) {
		snprintf(buf, n, "%s", e);
		return access(buf, X_OK) ? -errno : 0;
	}
	k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (k > 0) {
		self[k] = '\0';
		snprintf(buf, n, "%s/spillwayd", dirname(self));
		if (!access(buf, X_OK))
			return 0;
	}
	while (path && *path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, n, "%.*s/spillwayd", (int)len, path);
		if (len && !access(buf, X_OK))
			return 0;
		path += len + (path[len] == ':');
	}
	return -ENOENT;
}

/* Reap pid within timeout_ns: 0 with *status, -1 on timeout. */
static int reap(pid_t pid, uint64_t timeout_ns, int *status)
{
	uint64_t end = cli_mono_ns() + timeout_ns;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return 0;
		if (cli_mono_ns() >= end)
			return -1;
		sleep_ms(5);
	}
}

static void kill_pid(pid_t *pid)
{
	int st;

	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, &st, 0);
	}
	*pid = 0;
}

static int stop_daemon(struct kids *k)
{
	int st = 0;

	if (k->daemon <= 0)
		return 0;
	kill(k->daemon, SIGTERM);
	if (reap(k->daemon, 15000000000ull, &st)) {
		kill_pid(&k->daemon);
		return -1;
	}
	k->daemon = 0;
	k->daemon_status = st;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void kill_all(struct kids *k)
{
	for (int i = 0; i < k->nprod; i++)
		kill_pid(&k->prod[i]);
	kill_pid(&k->live);
	kill_pid(&k->lag);
	stop_daemon(k);
}

enum { W_PRODUCER, W_LIVE, W_LAGGING };

static pid_t spawn(const struct demo_cfg *c, struct demo_shared *sh, int kind, int id)
{
	pid_t pid = cli_fork_tied();

	if (pid)
		return pid;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	_exit(kind == W_PRODUCER ? demo_producer(c, sh, id)
	      : kind == W_LIVE	 ? demo_live(c, sh)
				 : demo_lagging(c, sh));
}

static pid_t start_daemon(const char *bin, const struct demo_cfg *c, const char *log)
{
	pid_t pid = cli_fork_tied();

	if (pid)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nul = open("/dev/null", O_RDONLY);

	if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	execl(bin, "spillwayd", "--foreground", "--shm-dir", c->shm, "--data-dir", c->data,
	      "--log-level", "info", (char *)NULL);
	_exit(127);
}

static void show_log(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "re");

	if (!f)
		return;
	fprintf(stderr, "--- %s\n", log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* The daemon heartbeats the topic once it is spilling it. */
static int wait_attached(const struct demo_cfg *c, struct kids *k)
{
	struct spw_topic *t;
	struct spw_topic_info in;
	int st, rc = -1;

	if (spw_topic_open(c->shm, c->topic, SPW_OPEN_RDONLY, &t))
		return -1;
	for (int i = 0; i < 1000 && !cli_stop; i++) {
		spw_topic_info(t, &in);
		if (in.daemon_pid == (uint32_t)k->daemon) {
			rc = 0;
			break;
		}
		if (waitpid(k->daemon, &st, WNOHANG) == k->daemon) {
			k->daemon = 0;
			break;
		}
		sleep_ms(10);
	}
	spw_topic_close(t);
	return rc;
}

static int make_topic(const struct demo_cfg *c)
{
	struct spw_topic_config cfg = { 0 };
	struct topic_conf conf;
	char dir[PATH_MAX + SPW_NAME_MAX + 2];
	int r;

	seg_conf_defaults(&conf);
	conf.ring_bytes = c->ring_bytes;
	conf.segment_bytes = c->segment_bytes;
	conf.max_record = 4096;
	conf.retention_ms = 0; /* keep everything: the lagging consumer needs it */
	conf.flush_ms = 100;
	snprintf(dir, sizeof(dir), "%s/%s", c->data, c->topic);
	if (mkdir(dir, 0755))
		return -errno;
	if ((r = seg_conf_save(dir, &conf)))
		return r;
	cfg.ring_bytes = conf.ring_bytes;
	cfg.segment_bytes = conf.segment_bytes;
	cfg.max_record = conf.max_record;
	return spw_topic_create(c->shm, c->topic, &cfg);
}

/* Wait until spilled and durable reach the tail. */
static int wait_durable(const struct demo_cfg *c, struct spw_topic_info *in)
{
	struct spw_topic *t;
	int rc = -1;

	if (spw_topic_open(c->shm, c->topic, SPW_OPEN_RDONLY, &t))
		return -1;
	for (int i = 0; i < 2000 && !cli_stop; i++) { /* 20 s */
		spw_topic_info(t, in);
		if (in->spilled == in->tail && in->durable == in->tail) {
			rc = 0;
			break;
		}
		sleep_ms(10);
	}
	spw_topic_close(t);
	return rc;
}


/* Replay the middle fifth of the production time. */
static void replay_middle(const struct demo_cfg *c, const struct demo_shared *sh,
			  struct demo_replay *rp)
{
	uint64_t t0 = UINT64_MAX, t1 = 0;

	for (int i = 0; i < c->producers; i++) {
		t0 = sh->prod[i].start_ns < t0 ? sh->prod[i].start_ns : t0;
		t1 = sh->prod[i].end_ns > t1 ? sh->prod[i].end_ns : t1;
	}
	rp->origin = t0;
	rp->t_a = t0 + (t1 - t0) * 2 / 5;
	rp->t_b = t0 + (t1 - t0) * 3 / 5;
	demo_replay(c, rp);
}

static int opt_producers(void *dst, const char *flag, const char *v)
{
	uint64_t n;
	int rc = cli_count(flag, v, &n);

	if (rc)
		return rc;
	if (n < 1 || n > DEMO_MAX_PRODUCERS)
		return cli_usage("%s: 1 to %d", flag, DEMO_MAX_PRODUCERS);
	*(int *)dst = (int)n;
	return CLI_OK;
}

/* A bare number is seconds here, else a duration. */
static int opt_seconds(void *dst, const char *flag, const char *v)
{
	char *end;
	double secs = strtod(v, &end);
	uint64_t ms;
	int rc;

	if (end != v && !*end && secs >= 0)
		ms = (uint64_t)(secs * 1000);
	else if ((rc = cli_duration(flag, v, &ms)))
		return rc;
	*(uint64_t *)dst = ms * 1000000ull;
	return CLI_OK;
}

static int parse(int argc, char **argv, struct demo_cfg *c, bool *keep)
{
	const struct cli_opt spec[] = {
		O_FN("producers", 0, CLI_T(int, &c->producers), opt_producers),
		O_FN("seconds", 0, CLI_T(uint64_t, &c->seconds_ns), opt_seconds),
		O_SIZE("bytes", &c->bytes, NULL),
		O_SIZE("ring-size", &c->ring_bytes, NULL),
		O_SIZE("segment-size", &c->segment_bytes, NULL),
		O_FLAG("keep", 0, keep),
		O_END,
	};
	/* Global --shm-dir/--data-dir (before "demo") are ignored, as they
	 * always were; given to demo itself they are refused. */
	const char *shm_flag = G.shm_flag, *data_flag = G.data_flag;
	int rc = cli_opts(argc, argv, spec, usage);

	if (rc >= 0)
		return rc == CLI_OK ? CLI_DONE : rc;
	if (G.shm_flag != shm_flag || G.data_flag != data_flag)
		return cli_usage("the demo makes its own temporary dirs: no --shm-dir / --data-dir");
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	if (c->ring_bytes < SPW_RING_MIN_BYTES || (c->ring_bytes & (c->ring_bytes - 1)) ||
	    c->segment_bytes % c->ring_bytes || c->seconds_ns < 100000000ull ||
	    c->seconds_ns > 600000000000ull || c->bytes < (1u << 20))
		return cli_usage("need a power-of-two --ring-size >= 64K, a --segment-size that is a "
				 "multiple of it, 0.1 .. 600 --seconds, --bytes >= 1M");
	return CLI_OK;
}

/* Wait for one worker until the run's deadline. 0 when it exited 0; else
 * report why (which worker, a crash, the deadline, the daemon gone). */
static int await(const char *who, pid_t *pid, struct kids *k, uint64_t deadline)
{
	int st;

	for (;;) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			if (WIFEXITED(st) && !WEXITSTATUS(st))
				return 0;
			cli_err("the %s %s", who, WIFSIGNALED(st) ? "was killed by a signal" : "failed");
			return -1;
		}
		if (cli_stop)
			return -1;
		if (k->daemon > 0 && waitpid(k->daemon, &st, WNOHANG) == k->daemon) {
			k->daemon = 0;
			cli_err("spillwayd exited while the %s was running", who);
			return -1;
		}
		if (cli_mono_ns() >= deadline) {
			cli_err("the %s did not finish in time", who);
			return -1;
		}
		sleep_ms(5);
	}
}

/* Producers, then the consumers, all within seconds + 45 s. Returns 0, 1
 * when a consumer reported a failed check, -1 when something went wrong. */
static int run_workers(const struct demo_cfg *c, struct demo_shared *sh, struct kids *k)
{
	uint64_t deadline;
	char a[32], who[32];
	int bad = 0;

	k->live = spawn(c, sh, W_LIVE, 0);
	/* Acquire: pairs with the live consumer's release store once its
	 * reader is open at the start of the log. */
	for (int i = 0; i < 1000 && !atomic_load_explicit(&sh->live_ready, memory_order_acquire); i++)
		sleep_ms(5);
	k->lag = spawn(c, sh, W_LAGGING, 0);
	for (int i = 0; i < c->producers; i++)
		k->prod[k->nprod++] = spawn(c, sh, W_PRODUCER, i);
	cli_human(c->bytes, a, sizeof(a));
	printf("[%5.1fs] %d producers, a live consumer and a lagging one started (up to %.0f s or "
	       "%s of payload)\n",
	       since(), c->producers, (double)c->seconds_ns / 1e9, a);
	fflush(stdout);
	deadline = cli_mono_ns() + c->seconds_ns + 45000000000ull;
	/* Release: every worker exists; producers start together. */
	atomic_store_explicit(&sh->go, 1, memory_order_release);
	for (int i = 0; i < k->nprod; i++) {
		snprintf(who, sizeof(who), "producer %d", i);
		if (await(who, &k->prod[i], k, deadline)) {
			if (sh->prod[i].err)
				cli_err("producer %d: %s", i, strerror(-sh->prod[i].err));
			return -1;
		}
	}
	printf("[%5.1fs] producers done\n", since());
	fflush(stdout);
	if (await("live consumer", &k->live, k, deadline) && (k->live || cli_stop || !k->daemon))
		return -1;
	bad |= sh->live.exactly_once ? 0 : 1;
	printf("[%5.1fs] live consumer done\n", since());
	fflush(stdout);
	if (await("lagging consumer", &k->lag, k, deadline) && (k->lag || cli_stop || !k->daemon))
		return -1;
	bad |= sh->lag.exactly_once ? 0 : 1;
	printf("[%5.1fs] lagging consumer done\n", since());
	return bad;
}

/* The topic in the temp dirs and a spillwayd attached to it. 0, or -1
 * after saying why. */
static int demo_start(struct demo_cfg *c, struct kids *k, const char *bin, const char *log)
{
	char a[32], b[32];
	int rc = 0;

	if (mkdir(c->data, 0755) || (rc = make_topic(c))) {
		cli_err("cannot create the topic in %s / %s: %s", c->shm, c->data,
			strerror(rc ? -rc : errno));
		return -1;
	}
	k->daemon = start_daemon(bin, c, log);
	if (k->daemon < 0 || wait_attached(c, k)) {
		cli_err("spillwayd (%s) did not attach to the topic within 10 s", bin);
		return -1;
	}
	cli_human(c->ring_bytes, a, sizeof(a));
	cli_human(c->segment_bytes, b, sizeof(b));
	printf("spillway demo: spillwayd pid %d (%s)\n  rings in %s, segments in %s\n"
	       "  topic %s: ring %s, segments %s, records of %u..%u bytes\n",
	       (int)k->daemon, bin, c->shm, c->data, c->topic, a, b, DEMO_MIN_LEN,
	       DEMO_MIN_LEN + DEMO_SPREAD - 1);
	return 0;
}

/* Producers and consumers, then durability, the replay, the daemon's stop
 * and the summary. true when every check held. */
static bool demo_run(struct demo_cfg *c, struct demo_shared *sh, struct kids *k, bool keep)
{
	char tdir[PATH_MAX + SPW_NAME_MAX + 2], line[256];
	struct demo_replay rp = { 0 };
	struct spw_topic_info in = { 0 };
	struct seg_disk_usage dl = { 0 };
	int workers = run_workers(c, sh, k), rc;

	if (workers < 0 || cli_stop) {
		if (cli_stop)
			cli_err("interrupted");
		return false;
	}
	if (wait_durable(c, &in)) {
		cli_err("spillwayd did not make everything durable within 20 s (spilled %llu, durable "
			"%llu, tail %llu)",
			(unsigned long long)in.spilled, (unsigned long long)in.durable,
			(unsigned long long)in.tail);
		return false;
	}
	printf("[%5.1fs] everything spilled and durable\n", since());
	replay_middle(c, sh, &rp);
	printf("[%5.1fs] replay done\n", since());
	snprintf(tdir, sizeof(tdir), "%s/%s", c->data, c->topic);
	seg_disk_usage(tdir, &dl);
	rc = stop_daemon(k);
	if (rc)
		snprintf(line, sizeof(line), "did NOT stop cleanly on SIGTERM (status 0x%x)",
			 k->daemon_status);
	else
		snprintf(line, sizeof(line), "stopped on SIGTERM, exit 0; temp dirs %s",
			 keep ? "kept" : "removed");
	demo_summary(c, sh, &rp, &in, &dl, line);
	return !workers && !rc && sh->live.exactly_once && sh->lag.exactly_once && rp.ok;
}

int cmd_demo(int argc, char **argv)
{
	struct demo_cfg c = { .topic = "demo", .producers = 3, .seconds_ns = 8000000000ull,
			      .bytes = 1ull << 30, .ring_bytes = 16u << 20, .segment_bytes = 64u << 20 };
	char bin[PATH_MAX], root[] = "/tmp/spillway-demo.XXXXXX", shm[] = "/dev/shm/spillway-demo.XXXXXX";
	char log[PATH_MAX + 32];
	struct kids k = { 0 };
	struct demo_shared *sh;
	bool keep = false, ok = false;
	int rc;

	if ((rc = parse(argc, argv, &c, &keep)))
		return rc == CLI_DONE ? CLI_OK : rc;
	t_origin = cli_mono_ns();
	if (find_daemon(bin, sizeof(bin))) {
		cli_err("cannot find spillwayd: set SPW_DAEMON, or put it next to spillway or in PATH "
			"(make bins builds build/spillwayd)");
		return CLI_ERR;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || !mkdtemp(root) || !mkdtemp(shm)) {
		cli_err("cannot make the temp dirs under /tmp and /dev/shm: %s", strerror(errno));
		if (root[sizeof(root) - 2] != 'X')
			rmdir(root);
		return CLI_ERR;
	}
	hist_init(&sh->live.lat);
	snprintf(c.shm, sizeof(c.shm), "%s", shm);
	snprintf(c.data, sizeof(c.data), "%s/data", root);
	snprintf(log, sizeof(log), "%s/spillwayd.log", root);
	sh->live.first_anomaly = sh->lag.first_anomaly = -1;
	cli_catch_signals();
	ok = !demo_start(&c, &k, bin, log) && demo_run(&c, sh, &k, keep);
	/* Relaxed: a request to any worker still running; SIGKILL follows. */
	atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
	kill_all(&k);
	if (!ok)
		show_log(log);
	if (keep) {
		printf("kept: %s (data, spillwayd.log) and %s\n", root, shm);
	} else {
		cli_rmtree(root);
		cli_rmtree(shm);
	}
	printf("spillway demo: %s (%.1f s)\n", ok ? "OK" : "FAILED", since());
	munmap(sh, sizeof(*sh));
	return ok ? CLI_OK : CLI_ERR;
}
