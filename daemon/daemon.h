/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - what the files of spillwayd share: the topics it spills, the
 * process state, the log. daemon/main.c (options, config, dirs, lock, the
 * start), daemon/topics.c (discovery, attach, recovery, detach),
 * daemon/loop.c (the event loop, signals, shutdown), daemon/retention.c,
 * daemon/metrics.c (/metrics and the textfile).
 */
#ifndef SPILLWAY_DAEMON_DAEMON_H
#define SPILLWAY_DAEMON_DAEMON_H

#include "../spill/writer.h"

#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_TOPICS 256

struct dtopic {
	char name[SPW_NAME_MAX + 1];
	char dir[PATH_MAX];
	struct spw_topic *t;
	struct spill_stream *s;
	dev_t dev;           /* the ring file's, as lstat() saw it at attach */
	ino_t ino;
	uint64_t rolls_seen; /* retention runs after every segment roll too */
	uint64_t held_said;  /* the last held size retention logged (64 MiB steps) */
	/* Set by the SIGBUS handler (loop.c): the ring file was truncated
	 * under us; the loop detaches the topic. */
	volatile sig_atomic_t truncated;
};

struct spillwayd {
	char data_dir[PATH_MAX];
	char shm_dir[PATH_MAX];
	char config[PATH_MAX];
	int log_level;
	bool foreground;
	struct spill_writer w;
	struct dtopic *topics[MAX_TOPICS];
	int ntopics;
	int inotify_fd, sig_fd, lock_fd;
	int pid_fd; /* <data>/.spillwayd.pid, OFD write-locked (main.c publish_pid); -1 none */
	bool stopping;
	char metrics_listen[128];        /* [ADDR:]PORT, "" none */
	char metrics_textfile[PATH_MAX]; /* "" none */
	uint64_t metrics_interval_ms;    /* textfile rewrites */
	bool metrics_textfile_failed;    /* said once */
};
extern struct spillwayd D;


__attribute__((format(printf, 3, 4))) void dlog(int level, const char *topic, const char *fmt,
						...);
/* main.c */
int config_load(const char *path, bool at_start);
/* topics.c */
struct dtopic *topic_find(const char *name);
void topic_detach(struct dtopic *dt, const char *why);
/* The SIGBUS guard over the rings' mappings (loop.c): 0, or -errno. */
int sigbus_guard_install(void);
void scan_data_dir(bool asked); /* asked: SIGHUP, only dirs with a .remake request */
void rescan_shm(void);
/* dlog's hook: an error said about topic while it is being attached is the
 * reason published for its refusal (<data>/.spillwayd.refused). true when
 * the attempt before on the same ring file said these very words (then
 * dlog does not log them again). */
bool topic_error_said(const char *topic, const char *msg);
/* Write that file afresh (at start: a previous daemon's is stale). */
void refused_publish(void);
void drain_inotify(void);
/* retention.c */
void retention(struct dtopic *dt);
/* metrics.c */
int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);
int metrics_start(void);        /* 0, or 1 after saying why */
void metrics_tick(uint64_t now_ns); /* every heartbeat: blocked producers */
void metrics_poll(uint64_t now_ns); /* every loop turn: serve, rewrite the textfile */
void metrics_stop(void);
/* loop.c: runs until SIGTERM/SIGINT and everything is spilled; the exit
 * status (1 when durability failed). */
int daemon_run(void);

#endif
