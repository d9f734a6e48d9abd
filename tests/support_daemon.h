/* SPDX-License-Identifier: MIT */
/*
 * support_daemon.h - helpers for the tests that run spillwayd (linked into
 * every test program with tests/support.c): a sandbox of temp dirs, start /
 * stop / kill of the daemon with its stderr in a log file, waits on the
 * daemon's log and on the ring's counters, and a walker that reads a
 * topic's segment log back and checks it against spill/FORMAT.md.
 *
 * Everything here but test_feed_producer runs in the cmocka runner's
 * process: failures come back as return values plus a message on stderr, so
 * the caller's assert_* names the case. test_feed_producer runs in forked
 * children and reports with TEST_CHECK (support.h).
 */
#ifndef SPW_TEST_SUPPORT_DAEMON_H
#define SPW_TEST_SUPPORT_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spillway.h"
#include "support.h"

/* ---------------------------------------------------------------------------
 * The daemon under test. SPW_DAEMON names it (make check-tests exports the
 * absolute path of build/spillwayd); without it, build/spillwayd relative to
 * the working directory. NULL when neither is an executable file: the caller
 * skips.
 */
const char *test_daemon_path(void);

/* A sandbox: root = /tmp/spwtest.XXXXXX holding data/ (the data dir) and the
 * log files; shm = /dev/shm/spwtest.XXXXXX (the shm dir). */
struct test_daemon {
	char *root, *shm;       /* malloc'd, removed by test_daemon_teardown */
	char data[512];         /* <root>/data */
	char log[512];          /* <root>/daemon.log: every run appends to it */
	char fault[512];        /* <root>/fault: the SPILLWAY_FAULT_FILE path */
	bool fault_env;         /* pass SPILLWAY_FAULT_FILE=<fault> to the daemon */
	bool debug;             /* --log-level debug */
	pid_t pid;              /* the running daemon, 0 when none */
	int exit_status;        /* of the last run reaped: as test_wait's */
	long log_start;         /* size of the log when the current run started */
	int runs;               /* daemons started so far */
	pid_t kids[16];         /* other children (producers): killed by teardown */
	int nkids;
	char mounted[512];      /* a mount point teardown unmounts ("" = none) */
};

/* Make the dirs (aborts on failure, like test_tmpdir_make). */
void test_daemon_setup(struct test_daemon *d);
/* SIGKILL the children and a daemon still running, unmount d->mounted,
 * remove both dirs with all in them. Safe to call after a failed assert
 * (it is the cmocka teardown's job). */
void test_daemon_teardown(struct test_daemon *d);
/* Remember a child for teardown; wait for all of them (0 when every one
 * exited 0 within the timeout, else -1 after saying which did not). */
void test_daemon_add_kid(struct test_daemon *d, pid_t pid);
int test_daemon_wait_kids(struct test_daemon *d, int64_t timeout_ns);
/* SIGKILL one child, reap it and forget it. */
void test_daemon_reap_kid(struct test_daemon *d, pid_t pid);

/* <data>/<topic> into buf. */
void test_daemon_topic_dir(const struct test_daemon *d, const char *topic, char *buf,
			   size_t size);

/* Write the topic's topic.conf in the data dir (so the daemon uses our
 * flush_ms / unblock_ms; 0 = the defaults), then create its ring in the shm
 * dir with the same sizes. Returns 0 or -errno. */
struct test_topic_spec {
	const char *name;
	uint64_t ring_bytes, segment_bytes;
	uint32_t max_record;
	uint64_t flush_ms, unblock_ms;
};
int test_daemon_make_topic(const struct test_daemon *d, const struct test_topic_spec *spec);

/* fork + exec the daemon (--foreground --data-dir --shm-dir, stdout and
 * stderr appended to d->log; it dies with the test through PDEATHSIG).
 * Returns its pid, or -1. */
pid_t test_daemon_start(struct test_daemon *d);
/* The one way the tests start spillwayd (test_daemon_start, and
 * rdt_daemon_start of tests/support_reader.c): fork + exec it on data_dir and
 * shm_dir with --foreground (and --log-level log_level unless NULL), stdin
 * /dev/null, stdout and stderr appended to log_path, SPILLWAY_FAULT_FILE set
 * to fault_file (unset when NULL); it dies with the test through
 * PDEATHSIG. Returns its pid, or -1. */
pid_t test_daemon_exec(const char *data_dir, const char *shm_dir, const char *log_path,
		       const char *log_level, const char *fault_file);
/* Start a daemon that is not d's own (a second one on the same dirs), its
 * output to log_path. */
pid_t test_daemon_spawn(const struct test_daemon *d, const char *log_path);

/* Wait until the current run logged "topic <topic>: attached", then until
 * the ring's daemon_pid is this run's pid. 0, or -1 (timeout, or the daemon
 * exited: the log is dumped to stderr). */
int test_daemon_wait_attached(struct test_daemon *d, const char *topic, int64_t timeout_ns);

/* SIGTERM, then wait: the exit status (0..255), 128 + signal, or -1 when it
 * was still running at the timeout (then SIGKILLed). */
int test_daemon_stop(struct test_daemon *d, int64_t timeout_ns);
/* SIGKILL and reap. */
void test_daemon_kill(struct test_daemon *d);
/* Run the CLI (SPW_CLI, which the caller checked is set) with d's dirs in
 * SPILLWAY_SHM_DIR / SPILLWAY_DATA_DIR: the shell command
 * "'<SPW_CLI>' <tail>" (tail: its arguments, maybe a pipe on). What
 * system() returns (0: the command, the pipe's last, exited 0). */
int test_daemon_cli(const struct test_daemon *d, const char *tail);
/* Still running (not exited, not a zombie)? */
bool test_daemon_alive(struct test_daemon *d);

/* Lines of the log containing needle: since the first run (all = true) or
 * in the current run only. */
int test_daemon_log_count(const struct test_daemon *d, const char *needle, bool all);
/* Wait until the current run's log holds needle at least n times: 0 or -1. */
int test_daemon_wait_log(struct test_daemon *d, const char *needle, int n, int64_t timeout_ns);
/* The position N of the current run's first line "...needle<N>...", or -1. */
int64_t test_daemon_log_number(const struct test_daemon *d, const char *needle);
/* The current run's first line holding needle, from needle on, without its
 * newline, into buf: 0, or -1 when there is none. */
int test_daemon_log_line(const struct test_daemon *d, const char *needle, char *buf,
			 size_t size);
/* Copy the log (the last max_bytes of it) to stderr, for failure reports. */
void test_daemon_dump_log(const struct test_daemon *d, long max_bytes);

/* Wait until the ring's spilled (or durable) counter is >= upto: 0 or -1. */
int test_wait_counter(struct spw_topic *t, bool durable, uint64_t upto, int64_t timeout_ns);

/* ---------------------------------------------------------------------------
 * Segment-log walker. Reads <topic_dir>/<base>.seg in base order, checks
 * each index (header, every entry's own CRC and its data CRC over the
 * segment bytes, the cumulative counts), that the segments are contiguous
 * (each one's first == the end of the one before, every segment but the last
 * full), walks the records (commit word per FORMAT.md, every length
 * bounds-checked, index entry ends on record boundaries) and hands each DATA
 * record to on_data, each PADDING / ABORTED / CORRUPT record to on_skip when
 * set. A commit word must carry the lap tag of its position (test_word).
 */
struct test_seg_rec {
	uint64_t position;
	uint64_t timestamp_ns; /* 0 for an 8-byte PADDING / ABORTED */
	const void *data;      /* payload (DATA), valid during the callback */
	uint32_t len;          /* payload length (DATA) */
	uint32_t type;         /* TEST_TYPE_DATA / _PADDING / _ABORTED / _CORRUPT */
	uint64_t span;         /* bytes the record covers */
};
/* Return 0 to go on; anything else stops the walk, which returns it. */
typedef int (*test_seg_fn)(void *arg, const struct test_seg_rec *r);

struct test_seg_walk {
	/* in */
	test_seg_fn on_data, on_skip; /* either may be NULL */
	void *arg;
	/* out */
	uint64_t ring_bytes, segment_bytes; /* from the first index header */
	uint64_t first;            /* first position of the log */
	uint64_t end;              /* position after the last verified byte */
	uint64_t file_end;         /* base + size of the last .seg */
	uint64_t last_base;        /* base of the last segment */
	uint64_t last_entry_start; /* where the last index entry's range begins */
	uint64_t torn_index_bytes; /* last .idx bytes after its first bad entry (a
				    * kill -9 can leave them; recovery cuts them) */
	uint64_t segments, entries;
	uint64_t data_records, data_bytes;
	uint64_t aborted_records, aborted_bytes;
	uint64_t padding_records, padding_bytes;
	uint64_t corrupt_records, corrupt_bytes; /* garbage the daemon cut out of the ring */
	int64_t last_aborted;      /* position of the last ABORTED record, or -1 */
	bool unborn_segment;       /* the last .seg is empty and its index missing
				    * or shorter than a header (kill -9 in seg_open) */
	char err[512];             /* why the walk failed */
};

/* Returns 0 (an empty or missing log also gives 0, with segments == 0),
 * -ERANGE on a gap between segments, -EBADMSG on a bad index header, a
 * torn entry (except at the end of the last index: torn_index_bytes) or a
 * data CRC mismatch, -EPROTO on a bad record header or a
 * record that does not fit, -errno on I/O errors, or what a callback
 * returned. w->err says what and where. */
int test_seg_walk(const char *topic_dir, struct test_seg_walk *w);

/* ---------------------------------------------------------------------------
 * Feeds: producer processes sending identified records (support.h's record
 * identity: producer id, seq, length from the producer's own stream, payload
 * pattern), so a walk of the segments can check every record arrived once,
 * in producer order, intact. A blocked send (timeout) is counted and the
 * same record sent again: nothing is skipped. Any other error fails the
 * producer (the daemon never aborts a live claim, ring_layout.h I7). The
 * struct lives in shared memory (test_feed_new).
 */
struct test_feed {
	char shm[512];
	char name[SPW_NAME_MAX + 1];
	uint64_t seed;
	uint32_t first_id, producers; /* ids first_id .. first_id + producers - 1 (< 4) */
	uint32_t max_record;          /* the topic's: lengths go up to it */
	uint64_t per_producer;        /* records each sends at most */
	int64_t pace_ns;              /* sleep after each record (0: none) */
	int64_t timeout_ns;           /* per send attempt */
	int64_t deadline_ns;          /* CLOCK_MONOTONIC: a producer fails after it */
	_Atomic int stop;             /* the parent: stop after the current record */
	_Atomic uint64_t sent[TEST_ID_PRODUCERS];     /* committed, per producer id */
	_Atomic uint64_t timeouts[TEST_ID_PRODUCERS]; /* send attempts timed out */
	/* Commits the daemon aborted: always 0 since ring format 2 (a live
	 * claim is never taken away; a feed producer fails on any error but a
	 * timeout). Kept for the callers that check it stays so. */
	_Atomic uint64_t canceled[TEST_ID_PRODUCERS];
};
struct test_feed *test_feed_new(const char *shm, const char *name, uint64_t seed,
				uint32_t first_id, uint32_t producers, uint32_t max_record);
void test_feed_free(struct test_feed *f);
/* A producer's body (in a child): 0, or -1 after printing what failed. */
int test_feed_producer(struct test_feed *f, uint32_t id);
/* Fork every producer of the feed, registered with d as kids. */
void test_feed_start(struct test_feed *f, struct test_daemon *d);
uint64_t test_feed_total(const struct test_feed *f, _Atomic uint64_t *counts);

/* Checking a walk against a feed: pass test_feed_on_data as on_data and a
 * struct test_feed_check as arg. nproducers covers ids 0 .. n-1 (a victim
 * producer may use an id below first_id). */
struct test_feed_check {
	struct test_id_expect e;
	uint64_t records;
	char err[256];
};
void test_feed_check_init(struct test_feed_check *c, uint64_t seed, uint32_t nproducers,
			  uint32_t max_record);
int test_feed_on_data(void *arg, const struct test_seg_rec *r);
/* After the walk: producer p's records all arrived (next seq == sent). */
int test_feed_check_count(struct test_feed_check *c, uint32_t p, uint64_t sent);

#endif /* SPW_TEST_SUPPORT_DAEMON_H */
