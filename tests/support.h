/* SPDX-License-Identifier: MIT */
/*
 * support.h - helpers shared by the test programs (linked into each of them
 * as tests/support.c): fresh temp dirs, seeded randomness, payload patterns,
 * fork/wait, clocks, the ring file seen directly, collecting records, and
 * the record identity used by the stress and crash tests.
 *
 * Code that runs in a forked child or a thread must not use cmocka's
 * assert_* (they longjmp into the runner of the wrong process / thread): it
 * uses TEST_CHECK, which prints what failed and returns -1.
 */
#ifndef SPW_TEST_SUPPORT_H
#define SPW_TEST_SUPPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spillway.h"
#include "spillway_daemon.h" /* the daemon verbs some tests drive (spwd_*) */

/* ---------------------------------------------------------------------------
 * Scale: SPW_TEST_SCALE is "asan" or "tsan" in the sanitizer runs.
 */
enum test_scale { TEST_SCALE_NORMAL, TEST_SCALE_ASAN, TEST_SCALE_TSAN };
enum test_scale test_scale(void);
/* The value for the current scale. */
uint64_t test_scaled(uint64_t normal, uint64_t asan, uint64_t tsan);

/* ---------------------------------------------------------------------------
 * Temp dirs: a fresh directory under /dev/shm (or /tmp), removed with all
 * that is in it. The path is malloc'd; remove frees it. Both abort the
 * program on failure (a test without its own dir must not go on).
 */
char *test_tmpdir_make(void);
void test_tmpdir_remove(char *dir);
/* "<dir>/<name>.ring" into buf (size >= 4096). */
void test_ring_path(char *buf, size_t size, const char *dir, const char *name);

/* The group fixture of the cmocka programs that keep their files in one
 * temp dir: test_group_setup makes test_group_dir, test_group_teardown
 * removes it with all in it, also after a failed case (pass both to
 * cmocka_run_group_tests). */
extern char *test_group_dir;
int test_group_setup(void **state);
int test_group_teardown(void **state);

/* ---------------------------------------------------------------------------
 * Seeds and PRNG. test_seed() takes SPW_TEST_SEED when set, else the clock,
 * and prints it with the line that reruns the test with it.
 */
uint64_t test_seed(const char *what);

static inline uint64_t test_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0; the tiny modulo bias does not matter here). */
static inline uint64_t test_rand_below(uint64_t *state, uint64_t n)
{
	return test_splitmix64(state) % n;
}

/* A key from a few numbers, for test_fill. */
uint64_t test_key(uint64_t seed, uint64_t a, uint64_t b);

/* Payload pattern: len bytes from a PRNG keyed by key. test_check returns
 * len when buf holds exactly that pattern, else the first differing index. */
void test_fill(void *buf, size_t len, uint64_t key);
size_t test_check(const void *buf, size_t len, uint64_t key);

/* ---------------------------------------------------------------------------
 * Clocks.
 */
int64_t test_now_ns(void);      /* CLOCK_MONOTONIC */
int64_t test_realtime_ns(void); /* CLOCK_REALTIME */
void test_sleep_ns(int64_t ns);

#define TEST_MS (1000000ll)
#define TEST_SEC (1000000000ll)

/* ---------------------------------------------------------------------------
 * Processes. test_fork runs fn(arg) in a child and _exits with its return
 * value (0 ok). test_wait waits at most timeout_ns: it returns the exit status
 * (0..255), 128 + signal when killed by one, or -1 when the child was still
 * running at the timeout (it is then SIGKILLed and reaped).
 * test_wait_stopped waits until the child is stopped (SIGSTOP): 0, or -1 when
 * it exited / did not stop in time.
 */
pid_t test_fork(int (*fn)(void *arg), void *arg);
/* test_fork whose child never outlives the runner (PDEATHSIG SIGKILL; it
 * _exits 3 at once when the runner is already gone). */
pid_t test_fork_tied(int (*fn)(void *arg), void *arg);
/* A waitpid status as test_wait returns it: exit status, 128 + signal, -1. */
int test_exit_status(int wait_status);
/* SIGKILL a child and reap it: its status as test_exit_status's. */
int test_kill_reap(pid_t pid);
int test_wait(pid_t pid, int64_t timeout_ns);
int test_wait_stopped(pid_t pid, int64_t timeout_ns);
/* Arm the library's test seam (ring_test_hook, ring/ring_layout.h) so this
 * process stops itself (SIGSTOP) the first time one of its producers reaches
 * point (an enum ring_point); the hook is disarmed as it fires. */
void test_stop_at(int point);
/* Create topic name in test_group_dir with cfg and open it read-write: the
 * handle, or NULL after saying what failed. */
struct spw_topic *test_topic_new(const char *name, const struct spw_topic_config *cfg);
/* In a child or thread: open topic name in dir read-write (*t) and a
 * producer on it (*p). 0, or -1 after saying which failed (as TEST_CHECK). */
int test_open_producer(const char *dir, const char *name, struct spw_topic **t,
		       struct spw_producer **p);
/* Zeroed MAP_SHARED | MAP_ANONYMOUS memory, shared with children forked after. */
void *test_shared_alloc(size_t bytes);
void test_shared_free(void *p, size_t bytes);

/* ---------------------------------------------------------------------------
 * Checks for children and threads: print, then return -1 from the function.
 */
void test_report(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define TEST_CHECK(cond, ...)                                              \
	do {                                                                   \
		if (!(cond)) {                                                     \
			test_report(__FILE__, __LINE__, #cond, __VA_ARGS__);           \
			return -1;                                                     \
		}                                                                  \
	} while (0)

/* cmocka assertion that names the seed (for code under the cmocka runner). */
#define assert_seeded(cond, seed)                                          \
	do {                                                                   \
		if (!(cond))                                                       \
			fail_msg("%s:%d: %s failed (rerun with SPW_TEST_SEED=%#llx)",  \
				 __FILE__, __LINE__, #cond, (unsigned long long)(seed));       \
	} while (0)

/* ---------------------------------------------------------------------------
 * Record layout (the ring format, for tests that look at the file).
 */
#define TEST_HDR_PAGE 4096u   /* settings and counters */
#define TEST_HDR_BYTES 12288u /* + 64 producer slots of 128 B, page-rounded: data starts here */
#define TEST_TYPE_DATA 1u
#define TEST_TYPE_PADDING 2u
#define TEST_TYPE_ABORTED 3u
#define TEST_TYPE_CORRUPT 4u
#define TEST_BIT_CLAIMED (1ull << 62)
#define TEST_BIT_COMMITTED (1ull << 63)

/* A complete record's commit word at pos: both top bits, the lap tag
 * (pos / ring_bytes mod 2^22 in bits 40..61), type, length. */
static inline uint64_t test_word(uint32_t type, uint64_t len, uint64_t pos, uint64_t ring_bytes)
{
	return TEST_BIT_COMMITTED | TEST_BIT_CLAIMED | (((pos / ring_bytes) & 0x3fffffull) << 40) |
	       ((uint64_t)type << 32) | (len & 0xffffffffull);
}

static inline uint64_t test_span(uint64_t len)
{
	return (SPW_RECORD_HEADER_BYTES + len + 7) & ~7ull;
}
static inline uint32_t test_word_len(uint64_t w) { return (uint32_t)w; }
static inline uint32_t test_word_type(uint64_t w) { return (uint32_t)(w >> 32) & 0xf; }
static inline uint64_t test_word_lap(uint64_t w) { return (w >> 40) & 0x3fffffull; }

/* Map the ring file "<dir>/<name>.ring" read-write, MAP_SHARED: the header
 * page (*hdr_out, may be NULL) and the ring_bytes of data after it (return).
 * test_unmap_ring undoes it. NULL on failure (errno says why). */
uint8_t *test_map_ring(const char *dir, const char *name, uint64_t ring_bytes,
		       uint8_t **hdr_out);
void test_unmap_ring(uint8_t *data, uint64_t ring_bytes);
/* The commit word / timestamp at a position, read from a test_map_ring map. */
uint64_t test_commit_word(const uint8_t *data, uint64_t ring_bytes, uint64_t pos);
void test_set_commit_word(uint8_t *data, uint64_t ring_bytes, uint64_t pos, uint64_t w);
uint64_t test_timestamp(const uint8_t *data, uint64_t ring_bytes, uint64_t pos);

/* ---------------------------------------------------------------------------
 * Collecting records: test_collect is an spw_record_fn that appends what it
 * is handed (position, timestamp, length, a hash of the payload) to a
 * struct test_got. test_hash is the hash it uses (FNV-1a 64).
 */
#define TEST_GOT_MAX 8192
struct test_rec {
	int64_t position;
	uint64_t timestamp_ns;
	uint32_t len;
	uint64_t hash;
};
struct test_got {
	int n;          /* records handed over (may exceed TEST_GOT_MAX) */
	int stop_after; /* > 0: return non-zero from the callback for record n == stop_after */
	struct test_rec r[TEST_GOT_MAX];
};
struct test_got *test_got_new(void);
uint64_t test_hash(const void *p, size_t len);
int test_collect(void *arg, const struct spw_record *r);

/* ---------------------------------------------------------------------------
 * Record identity (stress and crash tests). A record of producer p, number
 * seq (0, 1, ... per producer):
 *   len >= 16: u32 p, u32 len, u64 seq, then test_fill(key(seed, p, seq));
 *   len <  16: p is len % 4 (producer p only sends such lengths), and all
 *              len bytes are test_fill(key(seed, p, seq)).
 * So at most TEST_ID_PRODUCERS producers.
 */
#define TEST_ID_PRODUCERS 4u
#define TEST_ID_HEAD 16u

/* A random length for producer p: uniform 0..4096, about 1 in 1000 exactly
 * max_record, short lengths moved to the class of p. Each producer draws its
 * lengths from its own stream, test_id_len_rng(seed, p), so a consumer knows
 * the exact length of every record it should get next. */
uint32_t test_id_len(uint64_t *rng, uint32_t p, uint32_t max_record);
uint64_t test_id_len_rng(uint64_t seed, uint32_t p);
void test_id_make(void *buf, uint32_t len, uint64_t seed, uint32_t p, uint64_t seq);
/* The head of a record of len >= TEST_ID_HEAD: producer, length field, seq
 * (tests/support_reader.c's identity has the same head). */
void test_id_head(const void *buf, uint32_t *p, uint32_t *len, uint64_t *seq);

/* In a child or thread: producer id sending its records in order (the
 * victims of the crash and stall tests). test_id_sender_open opens topic
 * name in dir read-write with a producer (0, or -1 as test_open_producer),
 * starts id's length stream (test_id_len_rng) and allocates buf of
 * max_record bytes; test_id_sender_next makes record seq (0, 1, ...) with
 * the next length of the stream in buf and returns that length;
 * test_id_sender_close closes both handles and frees buf. */
struct test_id_sender {
	struct spw_topic *t;
	struct spw_producer *p;
	uint8_t *buf;
	uint64_t seed, len_rng, seq;
	uint32_t id, max_record;
};
int test_id_sender_open(struct test_id_sender *s, const char *dir, const char *name,
			uint64_t seed, uint32_t id, uint32_t max_record);
uint32_t test_id_sender_next(struct test_id_sender *s);
void test_id_sender_close(struct test_id_sender *s);

/* What a consumer expects next from each producer. */
struct test_id_expect {
	uint64_t seed;
	uint32_t nproducers, max_record;
	uint64_t next_seq[TEST_ID_PRODUCERS];
	uint64_t len_rng[TEST_ID_PRODUCERS];
	uint32_t next_len[TEST_ID_PRODUCERS];
};
void test_id_expect_init(struct test_id_expect *e, uint64_t seed, uint32_t nproducers,
			 uint32_t max_record);
/* Checks one delivered record: its identity, producer order (seq is the
 * next expected one, the length the producer drew for it) and every payload
 * byte; then advances the expectation. Returns 0, or -1 after writing what
 * is wrong to err. */
int test_id_verify(struct test_id_expect *e, const void *data, uint32_t len, uint32_t *p_out,
		   char *err, size_t errsize);

#endif /* SPW_TEST_SUPPORT_H */
