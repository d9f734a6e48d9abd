/* SPDX-License-Identifier: MIT */
/*
 * main.c - spillwayd: spills every topic's ring to segment files (spill/writer.c).
 *
 * This file: options and the config file, the log, the data and shm dirs
 * (checked, then held: spill/files.c), the data-dir lock, daemonizing.
 * SIGTERM/SIGINT: spill all, fdatasync, exit 0; SIGHUP: reread the config
 * and each topic.conf (daemon/loop.c).
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct spillwayd D = { .log_level = LOG_INFO, .inotify_fd = -1, .sig_fd = -1, .lock_fd = -1, .pid_fd = -1,
		       .metrics_interval_ms = 15000 };

static const char *level_names[] = { "error", "warn", "info", "debug" };

void dlog(int level, const char *topic, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A topic's errors while it is being attached are its refusal's
	 * reason, published for the CLI whatever the log level; the same words
	 * at the next attempts (every rescan) are not logged again. */
	if (level == LOG_ERROR && topic && topic_error_said(topic, msg))
		return; /* said by the attach before, in the same words */
	if (level > D.log_level)
		return;
	{
		uint64_t now = ring_realtime_ns(); /* the one clock (ring/clock.c) */

		ts.tv_sec = (time_t)(now / 1000000000u);
		ts.tv_nsec = (long)(now % 1000000000u);
	}
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ spillwayd[%d] %s: ", when, ts.tv_nsec / 1000000, (int)getpid(),
		level_names[level]);
	if (topic)
		fprintf(stderr, "topic %s: ", topic);
	fputs(msg, stderr);
	fputc('\n', stderr);
}

static int parse_level(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

/* --- config file: "key = value" lines ------------------------------------- */
int config_load(const char *path, bool at_start)
{
	char line[PATH_MAX + 64], key[64], val[PATH_MAX];
	int lineno = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		dlog(LOG_ERROR, NULL, "cannot read config %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, " %63[a-z_] = %4095s", key, val) != 2) {
			dlog(LOG_ERROR, NULL, "%s:%d: expected 'key = value'", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		if (!strcmp(key, "log_level")) {
			int l = parse_level(val);

			if (l < 0) {
				dlog(LOG_ERROR, NULL, "%s:%d: log_level is error|warn|info|debug", path,
				     lineno);
				fclose(f);
				return -EINVAL;
			}
			D.log_level = l;
		} else if (!strcmp(key, "data_dir")) {
			if (at_start)
				snprintf(D.data_dir, sizeof(D.data_dir), "%s", val);
		} else if (!strcmp(key, "shm_dir")) {
			if (at_start)
				snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", val);
		} else if (!strcmp(key, "metrics_listen")) {
			if (strlen(val) >= sizeof(D.metrics_listen)) {
				dlog(LOG_ERROR, NULL, "%s:%d: metrics_listen is [ADDR:]PORT", path,
				     lineno);
				fclose(f);
				return -EINVAL;
			}
			if (at_start && !D.metrics_listen[0])
				memcpy(D.metrics_listen, val, strlen(val) + 1);
		} else if (!strcmp(key, "metrics_textfile")) {
			if (at_start && !D.metrics_textfile[0])
				snprintf(D.metrics_textfile, sizeof(D.metrics_textfile), "%s", val);
		} else {
			dlog(LOG_WARN, NULL, "%s:%d: unknown key '%s' ignored", path, lineno, key);
		}
	}
	fclose(f);
	return 0;
}

/* --- main ------------------------------------------------------------------------ */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: spillwayd [--data-dir DIR] [--shm-dir DIR] [--foreground]\n"
		"                 [--log-level error|warn|info|debug] [--config FILE]\n"
		"                 [--metrics-listen [ADDR:]PORT] [--metrics-textfile FILE]\n"
		"                 [--metrics-interval SEC]\n"
		"Spills every Spillway topic's shared-memory ring to segment files.\n"
		"  --data-dir DIR   segments (env SPILLWAY_DATA_DIR; default /var/lib/spillway,\n"
		"                   or $XDG_STATE_HOME/spillway when not root)\n"
		"  --shm-dir DIR    rings (env SPILLWAY_SHM_DIR; default /dev/shm/spillway)\n"
		"  --foreground     do not detach (logs go to stderr either way)\n"
		"  --config FILE    'key = value' lines: data_dir, shm_dir, log_level,\n"
		"                   metrics_listen, metrics_textfile\n"
		"  --metrics-listen [ADDR:]PORT\n"
		"                   serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		"                   (ADDR defaults to 127.0.0.1; [::1]:PORT for IPv6)\n"
		"  --metrics-textfile FILE\n"
		"                   write the same metrics to FILE (atomically, by rename) for\n"
		"                   node_exporter's textfile collector\n"
		"  --metrics-interval SEC\n"
		"                   how often the textfile is rewritten (default 15)\n"
		"Signals: TERM/INT spill everything, fdatasync, exit 0; HUP rereads the config.\n");
}

static void default_dirs(void)
{
	const char *e;

	if (!D.data_dir[0]) {
		e = getenv("SPILLWAY_DATA_DIR");
		if (e && *e)
			snprintf(D.data_dir, sizeof(D.data_dir), "%s", e);
		else if (geteuid() == 0)
			snprintf(D.data_dir, sizeof(D.data_dir), "/var/lib/spillway");
		else if ((e = getenv("XDG_STATE_HOME")) && *e)
			snprintf(D.data_dir, sizeof(D.data_dir), "%s/spillway", e);
		else
			snprintf(D.data_dir, sizeof(D.data_dir), "%s/.local/state/spillway",
				 getenv("HOME") ? getenv("HOME") : "/tmp");
	}
	if (!D.shm_dir[0])
		snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", spw_shm_dir(NULL));
}

/* About 5 descriptors per attached topic (ring, segment, index, checkpoint,
 * topic dir) and MAX_TOPICS topics: more than the common soft limit of 1024
 * (attaches then fail with EMFILE and are retried for ever). The soft limit
 * goes up to the hard one; a hard limit still short is said once. */
static void raise_fd_limit(void)
{
	const rlim_t want = (rlim_t)MAX_TOPICS * 6 + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur < want)
		dlog(LOG_WARN, NULL,
		     "open files limited to %llu (RLIMIT_NOFILE, hard limit %llu): about %llu "
		     "topics can be attached, not %d; raise it (LimitNOFILE= in the service, "
		     "ulimit -Hn)",
		     (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
		     (unsigned long long)(rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / 6 : 0), MAX_TOPICS);
}

/* <data>/.spillwayd.pid afresh: a temp file of ours (O_EXCL, never through
 * a link), write-locked (OFD, byte 0) before it is renamed in, so that the
 * CLI, asking F_OFD_GETLK, sees a daemon exactly while this one lives. A
 * new inode at each start: a lock someone else holds on an old one (anyone
 * who can read the file may take a read lock) neither blocks this nor
 * passes for a daemon. Advisory: a failure is logged, the daemon goes on. */
static void publish_pid(void)
{
	struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char path[PATH_MAX + 32], tmp[PATH_MAX + 48], pid[PATH_MAX + 48];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", D.data_dir, SEG_PID_NAME);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", D.data_dir, SEG_PID_NAME, (int)getpid());
	/* The pid, then the shm dir whose rings it spills: a CLI given another
	 * one can say so instead of "not attached yet" for ever. */
	{
		char real[PATH_MAX];

		snprintf(pid, sizeof(pid), "%d\n%s\n", (int)getpid(),
			 realpath(D.shm_dir, real) ? real : D.shm_dir);
	}
	seg_unlink(tmp);
	fd = seg_open_file(tmp, O_RDWR | O_CREAT | O_EXCL, 0644, true);
	if (fd < 0)
		r = fd;
	else if (fchmod(fd, 0644) || fcntl(fd, F_OFD_SETLK, &lock) ||
		 pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid))
		r = -errno;
	else
		r = seg_rename(tmp, path);
	if (r) {
		dlog(LOG_WARN, NULL, "cannot publish %s (%s): the CLI will not see this daemon",
		     path, strerror(-r));
		if (fd >= 0)
			close(fd);
		seg_unlink(tmp);
		return;
	}
	if (D.pid_fd >= 0)
		close(D.pid_fd);
	D.pid_fd = fd; /* held: the lock lives while the daemon does */
}

static int take_lock(void)
{
	char path[PATH_MAX + 32], pid[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/%s", D.data_dir, SEG_LOCK_NAME);
	fd = seg_open_file(path, O_RDWR | O_CREAT, 0600, true);
	if (fd < 0) {
		dlog(LOG_ERROR, NULL, "cannot open lock %s: %s", path, strerror(-fd));
		return -1;
	}
	/* Only this user may open it, so only this user's processes can hold
	 * a lock on it (a reader's shared flock kept spillwayd from starting
	 * while the file was 0644, as older releases made it). */
	if (fchmod(fd, 0600))
		dlog(LOG_WARN, NULL, "cannot make %s private: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr,
			"spillwayd: another spillwayd (pid %s) already serves %s; one per data dir\n",
			pid[0] ? pid : "?", D.data_dir);
		close(fd);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0)
		dlog(LOG_WARN, NULL, "cannot write pid to %s", path);
	D.lock_fd = fd;
	publish_pid();
	return 0;
}

/* --metrics-listen (M), --metrics-textfile (T), --metrics-interval (I).
 * 0, or -1 after saying why. */
static int metrics_flag(int c, const char *v)
{
	struct sockaddr_storage ss;
	socklen_t len;
	double ms;

	if (c == 'T') {
		snprintf(D.metrics_textfile, sizeof(D.metrics_textfile), "%s", v);
	} else if (c == 'M') {
		if (strlen(v) >= sizeof(D.metrics_listen) || metrics_parse_listen(v, &ss, &len)) {
			fprintf(stderr, "spillwayd: --metrics-listen \"%s\": expected [ADDR:]PORT "
				"(127.0.0.1:9464, [::1]:9464, 9464)\n", v);
			return -1;
		}
		memcpy(D.metrics_listen, v, strlen(v) + 1);
	} else {
		if (seg_parse_duration(v, 1e3, &ms) || ms < 100 || ms > 86400e3) {
			fprintf(stderr, "spillwayd: --metrics-interval: bad interval \"%s\" "
				"(seconds, 0.1 .. 86400)\n", v);
			return -1;
		}
		D.metrics_interval_ms = (uint64_t)ms;
	}
	return 0;
}

/* Options, then the config file (the command line wins over it). -1 to go
 * on, else the exit status. */
static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "shm-dir", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "metrics-listen", required_argument, NULL, 'M' },
		{ "metrics-textfile", required_argument, NULL, 'T' },
		{ "metrics-interval", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, lvl = -1;

	while ((c = getopt_long(argc, argv, "d:s:fl:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': snprintf(D.data_dir, sizeof(D.data_dir), "%s", optarg); break;
		case 's': snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", optarg); break;
		case 'f': D.foreground = true; break;
		case 'l':
			lvl = parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "spillwayd: --log-level is error|warn|info|debug\n");
				return 2;
			}
			break;
		case 'c': snprintf(D.config, sizeof(D.config), "%s", optarg); break;
		case 'M':
		case 'T':
		case 'I':
			if (metrics_flag(c, optarg))
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (D.config[0]) {
		char dd[PATH_MAX], sd[PATH_MAX];

		snprintf(dd, sizeof(dd), "%s", D.data_dir);
		snprintf(sd, sizeof(sd), "%s", D.shm_dir);
		if (config_load(D.config, true))
			return 1;
		if (dd[0]) /* the command line wins over the file */
			snprintf(D.data_dir, sizeof(D.data_dir), "%s", dd);
		if (sd[0])
			snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", sd);
	}
	if (lvl >= 0)
		D.log_level = lvl;
	default_dirs();
	return -1;
}

/* The data and shm dirs: made 0700 when missing; both must be ours and
 * closed to other users (whoever can write there could plant links or
 * files for this daemon, often root, to open); then held open, so every
 * file below them is reached from these fds, never through a symlink
 * (spill/files.c). 0, or 1 after saying why. */
static int prepare_dirs(void)
{
	char why[PATH_MAX + 200];
	int r;

	if ((r = ring_mkdir_p(D.data_dir, 0700)) || (r = ring_mkdir_p(D.shm_dir, 0700))) {
		fprintf(stderr, "spillwayd: cannot create %s or %s: %s\n", D.data_dir, D.shm_dir,
			strerror(-r));
		return 1;
	}
	if (seg_dir_check(D.data_dir, why, sizeof(why)) ||
	    seg_dir_check(D.shm_dir, why, sizeof(why))) {
		fprintf(stderr, "spillwayd: refusing to start: %s\n", why);
		return 1;
	}
	if ((r = seg_trust_root(D.data_dir)) || (r = seg_trust_root(D.shm_dir))) {
		fprintf(stderr, "spillwayd: cannot open %s or %s: %s\n", D.data_dir, D.shm_dir,
			strerror(-r));
		return 1;
	}
	return 0;
}

/* Into the background (without --foreground): the parent exits 0, the
 * child writes its pid into the lock file (the lock is shared with it
 * through the open file) and lets go of the terminal. -1 in the child
 * (go on), else the parent's exit status. */
static int daemonize(void)
{
	char pidbuf[32];
	pid_t pid = fork();
	int nul;

	if (pid < 0)
		return 1;
	if (pid > 0)
		return 0;
	setsid();
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
	if (ftruncate(D.lock_fd, 0) || pwrite(D.lock_fd, pidbuf, strlen(pidbuf), 0) < 0)
		dlog(LOG_WARN, NULL, "cannot write pid to the lock file");
	publish_pid(); /* this pid, afresh: the CLI reads it there */
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		close(nul);
	}
	return -1;
}

/* The signals spillwayd reads from a signalfd (SIGTERM, SIGINT, SIGHUP),
 * blocked into *mask. main blocks them before the pid file is published
 * (take_lock): a CLI that reads it may send SIGHUP at once, whose default
 * action would end a daemon still starting. */
static void block_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

/* Signals through a signalfd (block_signals), inotify on the shm dir (new
 * rings), the io_uring writer. 0, or 1 after saying why. */
static int setup_events(void)
{
	sigset_t mask;
	int r;

	block_signals(&mask);
	D.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	if ((r = sigbus_guard_install()))
		dlog(LOG_WARN, NULL, "no SIGBUS guard (%s): a truncated ring stops spillwayd",
		     strerror(-r));
	D.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (D.inotify_fd >= 0 &&
	    inotify_add_watch(D.inotify_fd, D.shm_dir,
			      IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
		dlog(LOG_WARN, NULL, "inotify on %s: %s (falling back to rescans)", D.shm_dir,
		     strerror(errno));
	r = spill_writer_init(&D.w, 256, MAX_TOPICS);
	if (r) {
		dlog(LOG_ERROR, NULL, "io_uring setup failed: %s", strerror(-r));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	spill_log = dlog;
	if ((r = parse_args(argc, argv)) >= 0)
		return r;
	/* The metrics socket is bound before the fork, so a bad or busy
	 * address fails the command itself (no thread: it survives the fork). */
	{
		sigset_t mask;

		block_signals(&mask); /* before take_lock publishes the pid */
	}
	if (prepare_dirs() || take_lock() || metrics_start())
		return 1;
	if (!D.foreground && (r = daemonize()) >= 0)
		return r;
	if (setup_events())
		return 1;
	raise_fd_limit();
	dlog(LOG_INFO, NULL, "started: data %s, shm %s, io_uring (fixed files %s, fixed buffers %s)",
	     D.data_dir, D.shm_dir, D.w.fixed_files ? "yes" : "no", D.w.fixed_bufs ? "yes" : "no");
	refused_publish(); /* none yet: a previous daemon's reasons are stale */
	scan_data_dir(false);
	rescan_shm();
	return daemon_run();
}
