/* SPDX-License-Identifier: MIT */
/* bench_daemon.c - scratch directories and a private spillwayd (bench_daemon.h). */
#define _GNU_SOURCE
#include "bench_daemon.h"

#include "bench_proc.h"

#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_mkdtemp(const char *parent, const char *prefix, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s.XXXXXX", parent, prefix) >= len)
		return -ENAMETOOLONG;
	if (!mkdtemp(out))
		return -errno;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) ? -errno : 0;
	return unlink(path) ? -errno : 0;
}

int bench_rm_rf(const char *dir)
{
	if (!dir || !*dir || !strcmp(dir, "/"))
		return -EINVAL;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) ? -errno : 0;
}

static bool executable(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int bench_daemon_path(char *out, size_t len)
{
	const char *e = getenv("SPW_DAEMON");
	char self[PATH_MAX];
	ssize_t n;

	if (e && *e) {
		snprintf(out, len, "%s", e);
		return executable(out) ? 0 : -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/spillwayd", self) < len && executable(out))
				return 0;
		}
	}
	e = getenv("PATH");
	while (e && *e) {
		const char *colon = strchr(e, ':');
		size_t dl = colon ? (size_t)(colon - e) : strlen(e);

		if (dl && (size_t)snprintf(out, len, "%.*s/spillwayd", (int)dl, e) < len &&
		    executable(out))
			return 0;
		e = colon ? colon + 1 : NULL;
	}
	snprintf(out, len, "spillwayd");
	return -ENOENT;
}

int bench_daemon_start(struct bench_daemon *d, const char *shm_dir, const char *data_dir,
		       const char *log_path)
{
	char bin[PATH_MAX];
	int r = bench_daemon_path(bin, sizeof(bin));

	d->pid = -1;
	snprintf(d->log, sizeof(d->log), "%s", log_path);
	if (r)
		return r;
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0) {
		d->pid = -1;
		return -errno;
	}
	if (d->pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (fd >= 0)
			dup2(fd, 2);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		/* The daemon's log level: warnings and errors only. */
		execl(bin, bin, "--foreground", "--log-level", "warn", "--shm-dir", shm_dir,
		      "--data-dir", data_dir, (char *)NULL);
		dprintf(2, "spillway bench: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	return 0;
}

int bench_daemon_wait_attach(struct bench_daemon *d, struct spw_topic *t, int64_t timeout_ns)
{
	uint64_t end = ring_monotonic_ns() + (uint64_t)timeout_ns;
	struct spw_topic_info in;
	int st;

	for (;;) {
		if (spw_topic_info(t, &in) == 0 && in.daemon_pid == (uint32_t)d->pid)
			return 0;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = -1;
			return -ECHILD;
		}
		if (ring_monotonic_ns() > end)
			return -ETIMEDOUT;
		bench_sleep_ns(1000000);
	}
}

int bench_daemon_stop(struct bench_daemon *d, int64_t timeout_ns)
{
	uint64_t end = ring_monotonic_ns() + (uint64_t)timeout_ns;
	int st = 0;

	if (d->pid <= 0)
		return 0;
	kill(d->pid, SIGTERM);
	for (;;) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);

		if (r == d->pid || (r < 0 && errno != EINTR))
			break;
		if (ring_monotonic_ns() > end) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
			d->pid = -1;
			return -ETIMEDOUT;
		}
		bench_sleep_ns(200000);
	}
	d->pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void bench_daemon_last_log(const struct bench_daemon *d, char *buf, size_t len)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");

	snprintf(buf, len, "(no log)");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, len, "%s", line);
	}
	fclose(f);
}
