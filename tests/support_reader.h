/* SPDX-License-Identifier: MIT */
/*
 * support_reader.h - helpers for the reader / replay / consumer-group tests
 * (tests/spill_reader.c, tests/mp_reader.c, tests/crash_group.c): a sandbox
 * with a data dir under /tmp and a shm dir under /dev/shm, the daemon
 * (start, wait until attached, SIGTERM-then-SIGKILL stop), topics made with
 * a matching topic.conf, tracked child processes that are killed and reaped
 * on any failure, file surgery (copy a topic dir, flip a byte), and the
 * record identity the tests check payloads with.
 *
 * Names are rdt_* so they never collide with the other support*.c files
 * (every tests/support*.c is linked into every test program).
 *
 * Nothing here uses cmocka: failures come back as return values plus one
 * line on stderr, so both the runner and forked children can use it.
 */
#ifndef SPW_TEST_SUPPORT_READER_H
#define SPW_TEST_SUPPORT_READER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spillway.h"
#include "support.h"
#include "support_daemon.h"

/* ---------------------------------------------------------------------------
 * Sandbox and daemon.
 */
struct rdt_env {
	char *root;        /* /tmp/spwtest.XXXXXX (test_tmpdir_remove frees it) */
	char *shm;         /* /dev/shm/spwtest.XXXXXX */
	char data[512];    /* <root>/data */
	char log[512];     /* <root>/daemon.log (every run appends) */
	pid_t daemon;      /* running daemon, 0 when none */
	void *shared;      /* rdt_env_shared's memory, freed by rdt_env_finish */
	size_t shared_bytes;
};

/* The daemon binary is test_daemon_path's (support_daemon.h). */

/* Make the dirs: 0, or -1 after printing why. */
int rdt_env_setup(struct rdt_env *e);
/* Kill a daemon still running (and every tracked child), remove both dirs
 * (kept when SPW_TEST_KEEP is set, for a post-mortem). */
void rdt_env_teardown(struct rdt_env *e);

/* <data>/<topic> into buf. */
void rdt_topic_dir(const struct rdt_env *e, const char *topic, char *buf, size_t size);
/* <data>/<topic>/<20-digit base>.<ext> into buf. */
void rdt_seg_path(const struct rdt_env *e, const char *data_dir, const char *topic,
		  uint64_t base, const char *ext, char *buf, size_t size);

/* Write <data>/<topic>/topic.conf (retention 0 = keep, the given flush_ms,
 * unblock 200 ms), then create the ring with the same sizes (max_record =
 * ring / 4); a ring a starting daemon made from that topic.conf meanwhile
 * is taken as it is. 0 or -errno. */
int rdt_topic_make(const struct rdt_env *e, const char *topic, uint64_t ring_bytes,
		   uint64_t segment_bytes, uint64_t flush_ms);

/* Start the daemon with test_daemon_exec (its output appended to the log,
 * PDEATHSIG so it never outlives the test). 0, or -1. */
int rdt_daemon_start(struct rdt_env *e);
/* Wait until the ring's daemon_pid is this daemon: 0, or -1 (log dumped). */
int rdt_daemon_wait_attached(struct rdt_env *e, const char *topic, int64_t timeout_ns);
/* SIGTERM, wait up to timeout_ns, then SIGKILL. Returns the exit status
 * (0..255), 128 + signal, or -1 when it had to be killed. */
int rdt_daemon_stop(struct rdt_env *e, int64_t timeout_ns);
void rdt_daemon_dump_log(const struct rdt_env *e);
/* The end of a program's sandbox (its group teardown): every tracked child
 * killed, the daemon stopped (rdt_daemon_stop, 20 s; the log dumped unless
 * it exited 0), then rdt_env_teardown; the shared memory is freed. */
void rdt_env_finish(struct rdt_env *e);
/* The group teardown of a reader test program whose group setup stored its
 * sandbox (a struct rdt_env *) in *state: rdt_env_finish of it. Always 0. */
int rdt_group_teardown(void **state);
/* Zeroed memory shared with the children forked after (test_shared_alloc),
 * kept with the sandbox: rdt_env_finish frees it. */
void *rdt_env_shared(struct rdt_env *e, size_t bytes);

/* Wait until the topic's spilled counter is >= upto: 0, or -1. */
int rdt_wait_spilled(struct spw_topic *t, uint64_t upto, int64_t timeout_ns);

/* ---------------------------------------------------------------------------
 * Children. rdt_fork is test_fork plus PDEATHSIG(SIGKILL) and tracking;
 * rdt_children_kill SIGKILLs and reaps every tracked child still there
 * (teardown after a failed assertion). rdt_child_reaped removes one after
 * the caller reaped it.
 */
pid_t rdt_fork(int (*fn)(void *arg), void *arg);
void rdt_child_reaped(pid_t pid);
void rdt_children_kill(void);
/* The per-case teardown (cmocka_unit_test_teardown) of the reader tests:
 * whatever a failed case left open is closed (rdt_drop_all), children
 * still running are killed. Always 0. */
int rdt_case_teardown(void **state);
/* A case of a reader test program: fn with rdt_case_teardown after it. */
#define RDT_TEST(fn) cmocka_unit_test_teardown(fn, rdt_case_teardown)
/* The main() of a reader test program: its cases (RDT_TEST each) run as
 * one cmocka group with the program's group setup and teardown. */
#define RDT_MAIN(group_setup, group_teardown, ...)                                   \
	int main(void)                                                                  \
	{                                                                               \
		const struct CMUnitTest tests[] = { __VA_ARGS__ };                      \
		return cmocka_run_group_tests(tests, group_setup, group_teardown);      \
	}
/* Reap the n children, each status as test_wait's into status[] (-1 when
 * killed at the timeout). As soon as one ends with a non-zero status,
 * on_failure(index, status) runs (e.g. to tell the others to stop).
 * 0 when all exited 0, else -1. */
int rdt_wait_all(const pid_t *pids, int n, int *status, int64_t timeout_ns,
		 void (*on_failure)(int index, int status));
/* A child's failure in a run of processes that share memory: the first
 * one sets *failed and leaves its message in err (what the runner reports);
 * every one is printed to stderr as "<who>[pid]: message". */
void rdt_fail_once(_Atomic int *failed, char *err, size_t size, const char *who,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* SIGKILL one child and reap it; its status as test_wait's. */
int rdt_kill_reap(pid_t pid);

/* ---------------------------------------------------------------------------
 * Handles of the runner that a failed cmocka assertion (a longjmp out of
 * the case) would leak: kept here, closed by rdt_drop_all() in the case's
 * teardown, so LeakSanitizer reports only real leaks. rdt_keep_* return
 * their argument; rdt_drop closes (frees) one kept handle now.
 */
struct spw_reader *rdt_keep_reader(struct spw_reader *r);
struct spw_producer *rdt_keep_producer(struct spw_producer *p);
struct spw_topic *rdt_keep_topic(struct spw_topic *t);
void *rdt_keep_mem(void *p);
void rdt_drop(void *p);
void rdt_drop_all(void);

/* ---------------------------------------------------------------------------
 * Files.
 */
/* Copy the regular files of dir `from` into `to` (made when missing). */
int rdt_copy_dir(const char *from, const char *to);
/* XOR the byte at off with mask. 0 or -errno. */
int rdt_xor_byte(const char *path, uint64_t off, uint8_t mask);
/* Overwrite 8 bytes at off. */
int rdt_write_u64(const char *path, uint64_t off, uint64_t v);

/* ---------------------------------------------------------------------------
 * Record identity. A record of producer p, number seq (0, 1, ... per
 * producer), of length len (uniform 0..max_len):
 *   len >= 16: u32 p, u32 len, u64 seq, then test_fill(test_key(seed, p, seq));
 *   len <  16: all len bytes are test_fill(test_key(seed, p, seq)); producer
 *              p only draws such lengths with len % nprod == p, so the
 *              length names the producer and the expectation the seq.
 * Each producer draws its lengths from its own stream, so a consumer knows
 * the exact length of the next record of every producer: a duplicate, a lost
 * or a reordered record shows as a wrong seq or a wrong length.
 */
#define RDT_ID_HEAD TEST_ID_HEAD
#define RDT_MAX_PRODUCERS 8u

uint64_t rdt_len_rng(uint64_t seed, uint32_t p);
uint32_t rdt_id_len(uint64_t *rng, uint32_t p, uint32_t nprod, uint32_t max_len);
/* Records are made with test_id_make (support.h): the same head and payload. */
/* Is buf exactly record (p, seq) of length len? */
bool rdt_id_is(const void *buf, uint32_t len, uint64_t seed, uint32_t p, uint64_t seq);

struct rdt_expect {
	uint64_t seed;
	uint32_t nprod, max_len;
	uint64_t next_seq[RDT_MAX_PRODUCERS];
	uint64_t len_rng[RDT_MAX_PRODUCERS];
	uint32_t next_len[RDT_MAX_PRODUCERS];
};
void rdt_expect_init(struct rdt_expect *x, uint64_t seed, uint32_t nprod, uint32_t max_len);
/* Check one delivered record against what its producer must send next, then
 * advance. 0, or -1 after writing what is wrong into err. */
int rdt_expect_check(struct rdt_expect *x, const void *data, uint32_t len, uint32_t *p_out,
		     uint64_t *seq_out, char *err, size_t errsize);

/* Span of a DATA record of len payload bytes in the log. */
static inline uint64_t rdt_span(uint32_t len)
{
	return ((uint64_t)len + SPW_RECORD_HEADER_BYTES + 7u) & ~7ull;
}

#endif /* SPW_TEST_SUPPORT_READER_H */
