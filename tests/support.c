/* SPDX-License-Identifier: MIT */
/*
 * support.c - helpers shared by the test programs; see support.h.
 */
#define _GNU_SOURCE
#include "support.h"
#include "ring_layout.h" /* the test seam ring_test_hook */

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Scale
 */
enum test_scale test_scale(void)
{
	const char *s = getenv("SPW_TEST_SCALE");

	if (s && strcmp(s, "asan") == 0)
		return TEST_SCALE_ASAN;
	if (s && strcmp(s, "tsan") == 0)
		return TEST_SCALE_TSAN;
	return TEST_SCALE_NORMAL;
}

uint64_t test_scaled(uint64_t normal, uint64_t asan, uint64_t tsan)
{
	switch (test_scale()) {
	case TEST_SCALE_ASAN:
		return asan;
	case TEST_SCALE_TSAN:
		return tsan;
	default:
		return normal;
	}
}

/* ---------------------------------------------------------------------------
 * Temp dirs
 */
char *test_tmpdir_make(void)
{
	static const char *const bases[] = { "/dev/shm", "/tmp" };
	char path[256];

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		snprintf(path, sizeof(path), "%s/spwtest.XXXXXX", bases[i]);
		if (mkdtemp(path)) {
			char *dup = strdup(path);

			if (!dup)
				abort();
			return dup;
		}
	}
	fprintf(stderr, "test: cannot make a temp dir under /dev/shm or /tmp: %s\n",
		strerror(errno));
	abort();
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "test: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

void test_tmpdir_remove(char *dir)
{
	if (!dir)
		return;
	/* Refuse anything that is not one of ours: this is rm -rf. */
	if (!strstr(dir, "/spwtest.")) {
		fprintf(stderr, "test: refusing to remove %s\n", dir);
		abort();
	}
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

void test_ring_path(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s.ring", dir, name);
}

char *test_group_dir;

int test_group_setup(void **state)
{
	(void)state;
	test_group_dir = test_tmpdir_make();
	return 0;
}

int test_group_teardown(void **state)
{
	(void)state;
	test_tmpdir_remove(test_group_dir);
	test_group_dir = NULL;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Seeds, PRNG, patterns
 */
uint64_t test_seed(const char *what)
{
	const char *env = getenv("SPW_TEST_SEED");
	uint64_t seed;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		uint64_t st = (uint64_t)test_realtime_ns() ^ ((uint64_t)getpid() << 32);

		seed = test_splitmix64(&st);
	}
	printf("[ seed     ] %s: SPW_TEST_SEED=%#" PRIx64 "\n", what, seed);
	fflush(stdout);
	return seed;
}

uint64_t test_key(uint64_t seed, uint64_t a, uint64_t b)
{
	uint64_t st = seed + a * 0xd1b54a32d192ed03ull;
	uint64_t x = test_splitmix64(&st);

	st = x ^ (b * 0x8cb92ba72f3d8dd7ull);
	return test_splitmix64(&st);
}

void test_fill(void *buf, size_t len, uint64_t key)
{
	uint8_t *b = buf;
	uint64_t st = key, v;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		v = test_splitmix64(&st);
		memcpy(b + i, &v, 8);
	}
	if (i < len) {
		v = test_splitmix64(&st);
		memcpy(b + i, &v, len - i);
	}
}

size_t test_check(const void *buf, size_t len, uint64_t key)
{
	const uint8_t *b = buf;
	uint64_t st = key, v;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		v = test_splitmix64(&st);
		if (memcmp(b + i, &v, 8) != 0)
			break;
	}
	if (i < len) {
		uint8_t want[8];

		v = test_splitmix64(&st);
		memcpy(want, &v, 8);
		for (size_t j = 0; j < 8 && i + j < len; j++)
			if (b[i + j] != want[j])
				return i + j;
		if (i + 8 <= len)
			return i; /* unreachable: the word differed */
	}
	return len;
}

/* ---------------------------------------------------------------------------
 * Clocks
 */
static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * TEST_SEC + ts.tv_nsec;
}

int64_t test_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t test_realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

void test_sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / TEST_SEC, .tv_nsec = ns % TEST_SEC };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------------------
 * Processes
 */
static pid_t fork_run(int (*fn)(void *arg), void *arg, bool tied)
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int rc;

		if (tied) {
			/* Never outlive the runner, even when it dies on a failed check. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(3);
		}
		rc = fn(arg);
		fflush(stdout);
		fflush(stderr);
		_exit(rc == 0 ? 0 : rc == 2 ? 2 : 1);
	}
	if (pid < 0) {
		fprintf(stderr, "test: fork: %s\n", strerror(errno));
		abort();
	}
	return pid;
}

pid_t test_fork(int (*fn)(void *arg), void *arg)
{
	return fork_run(fn, arg, false);
}

pid_t test_fork_tied(int (*fn)(void *arg), void *arg)
{
	return fork_run(fn, arg, true);
}

int test_exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int test_kill_reap(pid_t pid)
{
	int st = 0;

	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return test_exit_status(st);
}

int test_wait(pid_t pid, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "test: waitpid %d: %s\n", (int)pid, strerror(errno));
			return -1;
		}
		if (test_now_ns() > end) {
			fprintf(stderr, "test: child %d still running after %.1f s: killed\n",
				(int)pid, (double)timeout_ns / TEST_SEC);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return -1;
		}
		test_sleep_ns(TEST_MS);
	}
	return test_exit_status(st);
}

int test_wait_stopped(pid_t pid, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);

		if (r == pid) {
			if (WIFSTOPPED(st))
				return 0;
			fprintf(stderr, "test: child %d ended (status %#x) instead of stopping\n",
				(int)pid, st);
			return -1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (test_now_ns() > end) {
			fprintf(stderr, "test: child %d did not stop within %.1f s\n", (int)pid,
				(double)timeout_ns / TEST_SEC);
			return -1;
		}
		test_sleep_ns(TEST_MS);
	}
}

static int stop_point;

static void stop_at_point(enum ring_point at)
{
	if ((int)at == stop_point) {
		ring_test_hook = NULL;
		raise(SIGSTOP);
	}
}

void test_stop_at(int point)
{
	stop_point = point;
	ring_test_hook = stop_at_point;
}

struct spw_topic *test_topic_new(const char *name, const struct spw_topic_config *cfg)
{
	struct spw_topic *t = NULL;
	int r = spw_topic_create(test_group_dir, name, cfg);

	if (!r)
		r = spw_topic_open(test_group_dir, name, 0, &t);
	if (r)
		fprintf(stderr, "test: topic %s in %s: %s\n", name, test_group_dir, strerror(-r));
	return t;
}

int test_open_producer(const char *dir, const char *name, struct spw_topic **t,
		       struct spw_producer **p)
{
	int r = spw_topic_open(dir, name, 0, t);

	TEST_CHECK(r == 0, "spw_topic_open %s: %d", name, r);
	r = spw_producer_open(*t, p);
	TEST_CHECK(r == 0, "spw_producer_open on %s: %d", name, r);
	return 0;
}

void *test_shared_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "test: mmap %zu shared bytes: %s\n", bytes, strerror(errno));
		abort();
	}
	return p;
}

void test_shared_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

void test_report(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[  CHECK   ] pid %d %s:%d: %s: %s\n", (int)getpid(), file, line, cond, msg);
	fflush(stderr);
}

/* ---------------------------------------------------------------------------
 * The ring file, seen directly
 */
uint8_t *test_map_ring(const char *dir, const char *name, uint64_t ring_bytes, uint8_t **hdr_out)
{
	char path[4096];
	void *data, *hdr = NULL;
	int fd, err;

	test_ring_path(path, sizeof(path), dir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* The data starts at hdr_bytes (u32 at offset 12 of the header). */
	uint32_t hdr_bytes = TEST_HDR_BYTES;

	if (pread(fd, &hdr_bytes, 4, 12) != 4 || hdr_bytes < TEST_HDR_PAGE || hdr_bytes % 4096)
		hdr_bytes = TEST_HDR_BYTES;
	data = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)hdr_bytes);
	if (data != MAP_FAILED && hdr_out) {
		hdr = mmap(NULL, TEST_HDR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (hdr == MAP_FAILED) {
			err = errno;
			munmap(data, ring_bytes);
			close(fd);
			errno = err;
			return NULL;
		}
		*hdr_out = hdr;
	}
	err = errno;
	close(fd);
	errno = err;
	return data == MAP_FAILED ? NULL : data;
}

void test_unmap_ring(uint8_t *data, uint64_t ring_bytes)
{
	if (data)
		munmap(data, ring_bytes);
}

uint64_t test_commit_word(const uint8_t *data, uint64_t ring_bytes, uint64_t pos)
{
	const uint64_t *w = (const uint64_t *)(const void *)(data + (pos & (ring_bytes - 1)));

	return le64toh(__atomic_load_n(w, __ATOMIC_ACQUIRE));
}

void test_set_commit_word(uint8_t *data, uint64_t ring_bytes, uint64_t pos, uint64_t v)
{
	uint64_t *w = (uint64_t *)(void *)(data + (pos & (ring_bytes - 1)));

	__atomic_store_n(w, htole64(v), __ATOMIC_RELEASE);
}

uint64_t test_timestamp(const uint8_t *data, uint64_t ring_bytes, uint64_t pos)
{
	uint64_t v;

	memcpy(&v, data + (pos & (ring_bytes - 1)) + 8, 8);
	return le64toh(v);
}

/* ---------------------------------------------------------------------------
 * Record identity
 */
uint32_t test_id_len(uint64_t *rng, uint32_t p, uint32_t max_record)
{
	uint64_t r = test_splitmix64(rng);
	uint32_t len;

	if (r % 1000 == 0)
		len = max_record;
	else
		len = (uint32_t)((r >> 20) % 4097);
	if (len < TEST_ID_HEAD)
		len = (len & ~3u) | p;
	return len;
}

void test_id_make(void *buf, uint32_t len, uint64_t seed, uint32_t p, uint64_t seq)
{
	uint8_t *b = buf;
	uint64_t key = test_key(seed, p, seq);

	if (len >= TEST_ID_HEAD) {
		memcpy(b, &p, 4);
		memcpy(b + 4, &len, 4);
		memcpy(b + 8, &seq, 8);
		test_fill(b + TEST_ID_HEAD, len - TEST_ID_HEAD, key);
	} else {
		test_fill(b, len, key);
	}
}

void test_id_head(const void *buf, uint32_t *p, uint32_t *len, uint64_t *seq)
{
	const uint8_t *b = buf;

	memcpy(p, b, 4);
	memcpy(len, b + 4, 4);
	memcpy(seq, b + 8, 8);
}

uint64_t test_id_len_rng(uint64_t seed, uint32_t p)
{
	return test_key(seed, p, 0x6c656e67746873ull /* "lengths" */);
}

int test_id_sender_open(struct test_id_sender *s, const char *dir, const char *name,
			uint64_t seed, uint32_t id, uint32_t max_record)
{
	*s = (struct test_id_sender){ .seed = seed, .len_rng = test_id_len_rng(seed, id),
				      .id = id, .max_record = max_record };
	s->buf = malloc(max_record ? max_record : 1);
	TEST_CHECK(s->buf, "malloc %u", max_record);
	return test_open_producer(dir, name, &s->t, &s->p);
}

uint32_t test_id_sender_next(struct test_id_sender *s)
{
	uint32_t len = test_id_len(&s->len_rng, s->id, s->max_record);

	test_id_make(s->buf, len, s->seed, s->id, s->seq++);
	return len;
}

void test_id_sender_close(struct test_id_sender *s)
{
	if (s->p)
		spw_producer_close(s->p);
	if (s->t)
		spw_topic_close(s->t);
	free(s->buf);
	s->p = NULL;
	s->t = NULL;
	s->buf = NULL;
}

void test_id_expect_init(struct test_id_expect *e, uint64_t seed, uint32_t nproducers,
			 uint32_t max_record)
{
	memset(e, 0, sizeof(*e));
	e->seed = seed;
	e->nproducers = nproducers;
	e->max_record = max_record;
	for (uint32_t p = 0; p < TEST_ID_PRODUCERS; p++) {
		e->len_rng[p] = test_id_len_rng(seed, p);
		e->next_len[p] = test_id_len(&e->len_rng[p], p, max_record);
	}
}

int test_id_verify(struct test_id_expect *e, const void *data, uint32_t len, uint32_t *p_out,
		   char *err, size_t errsize)
{
	const uint8_t *b = data;
	uint32_t p, l;
	uint64_t seq;
	size_t bad;

	if (len >= TEST_ID_HEAD) {
		test_id_head(b, &p, &l, &seq);
		if (p >= e->nproducers) {
			snprintf(err, errsize, "len %u: producer id %u out of range", len, p);
			return -1;
		}
		if (l != len) {
			snprintf(err, errsize, "producer %u seq %" PRIu64 ": length %u, payload says %u",
				 p, seq, len, l);
			return -1;
		}
		if (seq != e->next_seq[p]) {
			snprintf(err, errsize,
				 "producer %u: got seq %" PRIu64 ", expected %" PRIu64 " (%s)", p, seq,
				 e->next_seq[p], seq < e->next_seq[p] ? "duplicate or reordered" : "lost records");
			return -1;
		}
		bad = test_check(b + TEST_ID_HEAD, len - TEST_ID_HEAD, test_key(e->seed, p, seq));
		bad = bad == len - TEST_ID_HEAD ? len : bad + TEST_ID_HEAD;
	} else {
		p = len % 4;
		if (p >= e->nproducers) {
			snprintf(err, errsize, "short record of len %u: producer %u out of range", len, p);
			return -1;
		}
		seq = e->next_seq[p];
		bad = test_check(b, len, test_key(e->seed, p, seq));
	}
	if (len != e->next_len[p]) {
		snprintf(err, errsize,
			 "producer %u seq %" PRIu64 ": length %u, expected %u (lost, duplicate or reordered record)",
			 p, seq, len, e->next_len[p]);
		return -1;
	}
	if (bad != len) {
		snprintf(err, errsize, "producer %u seq %" PRIu64 " len %u: payload byte %zu is wrong",
			 p, seq, len, bad);
		return -1;
	}
	e->next_seq[p]++;
	e->next_len[p] = test_id_len(&e->len_rng[p], p, e->max_record);
	if (p_out)
		*p_out = p;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Collecting records
 */
struct test_got *test_got_new(void)
{
	struct test_got *g = calloc(1, sizeof(*g));

	if (!g)
		abort();
	return g;
}

uint64_t test_hash(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int test_collect(void *arg, const struct spw_record *r)
{
	struct test_got *g = arg;

	if (g->n < TEST_GOT_MAX) {
		struct test_rec *x = &g->r[g->n];

		x->position = r->position;
		x->timestamp_ns = r->timestamp_ns;
		x->len = r->len;
		x->hash = test_hash(r->data, r->len);
	}
	g->n++;
	return g->stop_after > 0 && g->n == g->stop_after;
}
