/* SPDX-License-Identifier: MIT */
/*
 * loop.c - spillwayd's event loop, its signals and its shutdown.
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
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * A ring file truncated under us (by a process with write access to it):
 * touching its lost pages raises SIGBUS, which would kill the daemon and
 * stop every topic. The handler puts a private zero page over the faulting
 * page when it lies in a ring's mapping (the access then reads zeros:
 * nothing committed there) and flags the topic; the loop detaches it before
 * its next pump, saying why. The daemon's ring accesses all run on this
 * thread, between changes to D.topics, so the handler reads a consistent
 * list. A SIGBUS anywhere else is not ours: the default action is restored
 * and the access faults again, fatally, as it would have.
 */
static long sigbus_page;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	for (int i = 0; i < D.ntopics; i++) {
		struct spw_topic *t = D.topics[i]->t;
		uintptr_t lo = (uintptr_t)t->hdr, page = a & ~(uintptr_t)(sigbus_page - 1);

		if (a >= lo && a - lo < t->map_bytes &&
		    mmap((void *)page, (size_t)sigbus_page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
			D.topics[i]->truncated = 1;
			return;
		}
	}
	signal(sig, SIG_DFL);
}

int sigbus_guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigbus_page = sysconf(_SC_PAGESIZE);
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

/* Topics whose ring was truncated under us (on_sigbus) are detached. */
static void detach_truncated(void)
{
	for (int i = D.ntopics - 1; i >= 0; i--)
		if (D.topics[i]->truncated) {
			dlog(LOG_ERROR, D.topics[i]->name,
			     "the ring file was truncated under spillwayd (its lost pages raised "
			     "SIGBUS and read as zeros); the disk log is kept: recreate the ring "
			     "(delete it; spillwayd recreates it at the log's end)");
			topic_detach(D.topics[i], "ring truncated");
		}
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;

	while (read(D.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			dlog(LOG_INFO, NULL, "SIGHUP: rereading configuration; making the rings "
			     "asked for (spillway topic delete --keep-log)");
			/* Deleted rings detached first (their in-flight writes
			 * done), then the rings asked for made again. */
			rescan_shm();
			scan_data_dir(true);
			if (D.config[0])
				config_load(D.config, false);
			for (int i = 0; i < D.ntopics; i++) {
				struct topic_conf c;
				struct dtopic *dt = D.topics[i];
				unsigned bad = 0;
				int r = seg_conf_load_why(dt->dir, &c, &bad);

				if (r && r != -ENOENT)
					dlog(LOG_ERROR, dt->name, "%s/%s%s%.0u: %s; its settings stay "
					     "as they were", dt->dir, SEG_CONF_NAME,
					     bad ? " line " : "", bad,
					     bad ? "not \"key = value\" with a value it can read"
						 : strerror(-r));
				if (r == 0) {
					dt->s->conf.flush_ms = c.flush_ms;
					dt->s->conf.flush_bytes = c.flush_bytes;
					dt->s->conf.retention_ms = c.retention_ms;
					dt->s->conf.retention_bytes = c.retention_bytes;
					dt->s->conf.unblock_ms = c.unblock_ms;
					dt->s->conf.retention_respect_groups =
						c.retention_respect_groups;
					dt->s->conf.retention_max_lag = c.retention_max_lag;
					dt->s->conf.retention_max_lag_ms = c.retention_max_lag_ms;
					dt->s->conf.group_expiry_ms = c.group_expiry_ms;
				}
			}
		} else if (!D.stopping) {
			dlog(LOG_INFO, NULL, "signal %d: spilling everything, then exiting",
			     (int)si.ssi_signo);
			D.stopping = true;
		}
	}
}

/* The event loop: topics appear (inotify, a rescan every second) and are
 * pumped; heartbeats every 100 ms; retention every 5 s and after each roll;
 * on SIGTERM/SIGINT everything is spilled and synced (at most 30 s), then
 * the topics are detached. Returns the exit status. */
int daemon_run(void)
{
	uint64_t last_rescan = 0, last_beat = 0, last_retention = 0, stop_since = 0;
	int64_t idle_ns = 50000;
	bool failed = false;

	for (;;) {
		uint64_t now = ring_monotonic_ns();
		int work = 0;
		bool drained = true;

		handle_signals();
		if (D.inotify_fd >= 0)
			drain_inotify();
		if (now - last_rescan > 1000000000ull) {
			rescan_shm();
			last_rescan = now;
		}
		detach_truncated();
		for (int i = 0; i < D.ntopics; i++) {
			work += spill_stream_pump(D.topics[i]->s, now, D.stopping) > 0;
			if (D.stopping)
				drained &= spill_stream_drained(D.topics[i]->s);
		}
		if (now - last_beat > 100000000ull) {
			for (int i = 0; i < D.ntopics; i++)
				spwd_heartbeat(D.topics[i]->t, (uint32_t)getpid());
			metrics_tick(now);
			last_beat = now;
		}
		for (int i = 0; i < D.ntopics; i++) {
			struct dtopic *dt = D.topics[i];

			if (now - last_retention > 5000000000ull || dt->s->rolls != dt->rolls_seen) {
				dt->rolls_seen = dt->s->rolls;
				retention(dt);
			}
		}
		if (now - last_retention > 5000000000ull)
			last_retention = now;
		metrics_poll(now);
		if (D.stopping) {
			if (!stop_since)
				stop_since = now;
			if (drained || now - stop_since > 30000000000ull)
				break;
		}
		idle_ns = work ? 50000 : (idle_ns * 2 > 2000000 ? 2000000 : idle_ns * 2);
		spill_writer_reap(&D.w, work ? 0 : idle_ns);
	}
	for (int i = 0; i < D.ntopics; i++)
		if (D.topics[i]->s->durable_err) {
			dlog(LOG_ERROR, D.topics[i]->name,
			     "stopping with durability failed (an fdatasync returned %s): exit status 1",
			     strerror(-D.topics[i]->s->durable_err));
			failed = true;
		}
	metrics_stop(); /* the textfile's last figures, while the topics are there */
	while (D.ntopics)
		topic_detach(D.topics[D.ntopics - 1], "shutting down");
	spill_writer_exit(&D.w);
	dlog(LOG_INFO, NULL, "stopped");
	return failed || spill_durability_failed ? 1 : 0;
}
