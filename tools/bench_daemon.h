/* SPDX-License-Identifier: MIT */
/*
 * util.h - what `spillway bench` and bench/compare share besides hwloc and
 * the histogram: clocks, size and duration parsing, scratch directories, and
 * a private spillwayd started on them.
 */
#ifndef SPILLWAY_BENCH_UTIL_H
#define SPILLWAY_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spw_topic;

uint64_t bench_mono_ns(void);     /* CLOCK_MONOTONIC */
uint64_t bench_real_ns(void);     /* CLOCK_REALTIME (what record timestamps use) */
void bench_sleep_ns(uint64_t ns);

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Read every byte of a payload (XOR of its 8-byte words), as a consumer that
 * uses its data must: a zero-copy reader that looked only at a header would
 * never pull the payload's cache lines across. Every benchmark consumer,
 * of every system, does this once per message. */
static inline uint64_t bench_fold(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t acc = 0, w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		__builtin_memcpy(&w, p + i, 8);
		acc ^= w;
	}
	for (; i < len; i++)
		acc ^= p[i];
	return acc;
}

/* "64", "1K", "16KiB", "1M", "2G" (powers of 1024). 0 or -EINVAL. */
int bench_parse_size(const char *s, uint64_t *out);
/* "2", "1.5", "2s", "500ms", "1m" (bare numbers are seconds). 0 or -EINVAL. */
int bench_parse_seconds(const char *s, double *out);
/* "1000000", "1M", "10k" (powers of 1000). 0 or -EINVAL. */
int bench_parse_count(const char *s, uint64_t *out);

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
