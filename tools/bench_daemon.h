/* SPDX-License-Identifier: MIT */
/*
 * bench_daemon.h - scratch directories and a private spillwayd started on
 * them, for `spillway bench` (tools/cmd_bench.c) and bench/compare.
 */
#ifndef SPILLWAY_BENCH_DAEMON_H
#define SPILLWAY_BENCH_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spw_topic;

/* mkdtemp("<parent>/<prefix>.XXXXXX") into out. 0 or -errno. */
int bench_mkdtemp(const char *parent, const char *prefix, char *out, size_t len);
/* Remove a directory tree (no symlink is followed). 0 or -errno. */
int bench_rm_rf(const char *dir);

/*
 * spillwayd: $SPW_DAEMON, else `spillwayd` next to the running binary
 * (readlink /proc/self/exe), else the first in $PATH. 0 or -ENOENT.
 */
int bench_daemon_path(char *out, size_t len);

struct bench_daemon {
	pid_t pid;             /* -1 when not running */
	char log[4096];        /* its stderr */
};

/* Start `spillwayd --foreground` on the two directories, its stderr going to
 * log_path. 0 or -errno (the binary not found, fork failed). */
int bench_daemon_start(struct bench_daemon *d, const char *shm_dir, const char *data_dir,
		       const char *log_path);
/* Wait until the daemon has attached topic t (its heartbeat names it).
 * 0, -ETIMEDOUT, or -ECHILD when it died (see its log). */
int bench_daemon_wait_attach(struct bench_daemon *d, struct spw_topic *t, int64_t timeout_ns);
/* SIGTERM (the daemon spills everything, fdatasyncs and exits), wait for
 * it. Returns its exit status, or -ETIMEDOUT after timeout_ns (then
 * SIGKILL). */
int bench_daemon_stop(struct bench_daemon *d, int64_t timeout_ns);
/* The last line of the daemon's log, for an error message. */
void bench_daemon_last_log(const struct bench_daemon *d, char *buf, size_t len);

#endif
