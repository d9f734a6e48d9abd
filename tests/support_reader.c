/* SPDX-License-Identifier: MIT */
/*
 * support_reader.c - see support_reader.h.
 */
#define _GNU_SOURCE
#include "support_reader.h"
#include "support.h"
#include "support_daemon.h"
#include "../spill/spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Children
 */
#define MAX_CHILDREN 128
static pid_t children[MAX_CHILDREN];

static void child_track(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (!children[i]) {
			children[i] = pid;
			return;
		}
	fprintf(stderr, "rdt: more than %d tracked children\n", MAX_CHILDREN);
}

void rdt_child_reaped(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

int rdt_kill_reap(pid_t pid)
{
	int st = test_kill_reap(pid);

	rdt_child_reaped(pid);
	return st;
}

void rdt_children_kill(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i])
			rdt_kill_reap(children[i]);
}

void rdt_fail_once(_Atomic int *failed, char *err, size_t size, const char *who,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_exchange(failed, 1) == 0)
		snprintf(err, size, "%s", msg);
	fprintf(stderr, "%s[%d]: %s\n", who, (int)getpid(), msg);
}

int rdt_case_teardown(void **state)
{
	(void)state;
	rdt_children_kill();
	rdt_drop_all();
	return 0;
}

int rdt_wait_all(const pid_t *pids, int n, int *status, int64_t timeout_ns,
		 void (*on_failure)(int index, int status))
{
	int64_t end = test_now_ns() + timeout_ns;
	int left = n, worst = 0;

	for (int i = 0; i < n; i++)
		status[i] = -2;
	while (left) {
		bool progress = false;

		for (int i = 0; i < n; i++) {
			int st;

			if (status[i] != -2 || waitpid(pids[i], &st, WNOHANG) != pids[i])
				continue;
			status[i] = test_exit_status(st);
			rdt_child_reaped(pids[i]);
			left--;
			progress = true;
			if (status[i] != 0) {
				worst = -1;
				if (on_failure)
					on_failure(i, status[i]);
			}
		}
		if (!left)
			break;
		if (test_now_ns() > end) {
			for (int i = 0; i < n; i++)
				if (status[i] == -2) {
					fprintf(stderr, "rdt: child %d still running after %.1f s: killed\n",
						(int)pids[i], (double)timeout_ns / TEST_SEC);
					status[i] = rdt_kill_reap(pids[i]);
					if (on_failure)
						on_failure(i, -1);
				}
			return -1;
		}
		if (!progress)
			test_sleep_ns(TEST_MS);
	}
	return worst;
}

pid_t rdt_fork(int (*fn)(void *arg), void *arg)
{
	pid_t pid = test_fork_tied(fn, arg);

	child_track(pid);
	return pid;
}

/* ---------------------------------------------------------------------------
 * Sandbox and daemon
 */
int rdt_env_setup(struct rdt_env *e)
{
	char a[] = "/tmp/spwtest.XXXXXX", b[] = "/dev/shm/spwtest.XXXXXX";

	memset(e, 0, sizeof(*e));
	if (!mkdtemp(a) || !mkdtemp(b)) {
		fprintf(stderr, "rdt: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	e->root = strdup(a);
	e->shm = strdup(b);
	if (!e->root || !e->shm)
		abort();
	snprintf(e->data, sizeof(e->data), "%s/data", e->root);
	snprintf(e->log, sizeof(e->log), "%s/daemon.log", e->root);
	if (mkdir(e->data, 0755)) {
		fprintf(stderr, "rdt: mkdir %s: %s\n", e->data, strerror(errno));
		return -1;
	}
	return 0;
}

void rdt_env_teardown(struct rdt_env *e)
{
	rdt_children_kill();
	if (e->daemon) {
		rdt_kill_reap(e->daemon);
		e->daemon = 0;
	}
	if (e->root && getenv("SPW_TEST_KEEP") && *getenv("SPW_TEST_KEEP")) {
		fprintf(stderr, "rdt: SPW_TEST_KEEP: kept %s and %s\n", e->root, e->shm);
		free(e->root);
		free(e->shm);
	} else {
		if (e->root)
			test_tmpdir_remove(e->root);
		if (e->shm)
			test_tmpdir_remove(e->shm);
	}
	e->root = e->shm = NULL;
}

void rdt_topic_dir(const struct rdt_env *e, const char *topic, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", e->data, topic);
}

void rdt_seg_path(const struct rdt_env *e, const char *data_dir, const char *topic,
		  uint64_t base, const char *ext, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/%020" PRIu64 ".%s", data_dir ? data_dir : e->data, topic, base,
		 ext);
}

int rdt_topic_make(const struct rdt_env *e, const char *topic, uint64_t ring_bytes,
		   uint64_t segment_bytes, uint64_t flush_ms)
{
	struct spw_topic_config cfg = { 0 };
	struct topic_conf c;
	char dir[1024];
	int r;

	rdt_topic_dir(e, topic, dir, sizeof(dir));
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	seg_conf_defaults(&c);
	c.ring_bytes = ring_bytes;
	c.segment_bytes = segment_bytes;
	c.max_record = (uint32_t)(ring_bytes / 4);
	c.retention_ms = 0;
	c.flush_ms = flush_ms;
	c.unblock_ms = 200;
	r = seg_conf_save(dir, &c);
	if (r)
		return r;
	cfg.ring_bytes = ring_bytes;
	cfg.segment_bytes = segment_bytes;
	cfg.max_record = (uint32_t)(ring_bytes / 4);
	r = spw_topic_create(e->shm, topic, &cfg);
	if (r == -EEXIST) {
		/* A daemon still starting up may have made the ring from the
		 * topic.conf just written (it recreates rings of data dirs that
		 * have none): the same ring, as long as the sizes match. */
		struct spw_topic *t = NULL;
		struct spw_topic_info in;

		r = spw_topic_open(e->shm, topic, SPW_OPEN_RDONLY, &t);
		if (!r)
			r = spw_topic_info(t, &in);
		if (!r && (in.ring_bytes != ring_bytes || in.segment_bytes != segment_bytes ||
			   in.tail != 0))
			r = -EEXIST;
		spw_topic_close(t);
	}
	return r;
}

int rdt_daemon_start(struct rdt_env *e)
{
	pid_t pid = test_daemon_exec(e->data, e->shm, e->log, NULL, NULL);

	if (pid < 0)
		return -1;
	e->daemon = pid;
	return 0;
}

void rdt_daemon_dump_log(const struct rdt_env *e)
{
	char buf[4096];
	FILE *f = fopen(e->log, "re");
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", e->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of log ----\n");
	fclose(f);
}

void rdt_env_finish(struct rdt_env *e)
{
	rdt_children_kill();
	if (e->daemon && rdt_daemon_stop(e, 20 * TEST_SEC) != 0)
		rdt_daemon_dump_log(e);
	rdt_env_teardown(e);
	test_shared_free(e->shared, e->shared_bytes);
	e->shared = NULL;
}

int rdt_group_teardown(void **state)
{
	rdt_env_finish(*state);
	return 0;
}

void *rdt_env_shared(struct rdt_env *e, size_t bytes)
{
	e->shared = test_shared_alloc(bytes);
	e->shared_bytes = bytes;
	return e->shared;
}

int rdt_daemon_wait_attached(struct rdt_env *e, const char *topic, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	struct spw_topic *t = NULL;
	struct spw_topic_info in;
	int st, rc = -1;

	if (!e->daemon) {
		fprintf(stderr, "rdt: no daemon running to attach %s\n", topic);
		return -1;
	}
	if (spw_topic_open(e->shm, topic, SPW_OPEN_RDONLY, &t)) {
		fprintf(stderr, "rdt: cannot open topic %s\n", topic);
		return -1;
	}
	while (test_now_ns() < end) {
		if (waitpid(e->daemon, &st, WNOHANG) == e->daemon) {
			fprintf(stderr, "rdt: the daemon exited (status %d)\n", test_exit_status(st));
			e->daemon = 0;
			break;
		}
		if (spw_topic_info(t, &in) == 0 && in.daemon_pid == (uint32_t)e->daemon) {
			rc = 0;
			break;
		}
		test_sleep_ns(5 * TEST_MS);
	}
	spw_topic_close(t);
	if (rc) {
		fprintf(stderr, "rdt: the daemon did not attach %s\n", topic);
		rdt_daemon_dump_log(e);
	}
	return rc;
}

int rdt_daemon_stop(struct rdt_env *e, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	int st;

	if (!e->daemon)
		return -1;
	kill(e->daemon, SIGTERM);
	for (;;) {
		pid_t r = waitpid(e->daemon, &st, WNOHANG);

		if (r == e->daemon) {
			e->daemon = 0;
			return test_exit_status(st);
		}
		if (r < 0 && errno != EINTR)
			break;
		if (test_now_ns() > end)
			break;
		test_sleep_ns(2 * TEST_MS);
	}
	fprintf(stderr, "rdt: the daemon ignored SIGTERM for %.1f s: killed\n",
		(double)timeout_ns / TEST_SEC);
	rdt_kill_reap(e->daemon);
	e->daemon = 0;
	return -1;
}

int rdt_wait_spilled(struct spw_topic *t, uint64_t upto, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	struct spw_topic_info in;

	while (test_now_ns() < end) {
		if (spw_topic_info(t, &in) == 0 && in.spilled >= upto)
			return 0;
		test_sleep_ns(TEST_MS);
	}
	fprintf(stderr, "rdt: spilled stayed below %" PRIu64 "\n", upto);
	return -1;
}

/* ---------------------------------------------------------------------------
 * Kept handles
 */
enum kind { K_NONE, K_READER, K_PRODUCER, K_MEM, K_TOPIC };
#define MAX_KEPT 256
static struct {
	void *p;
	enum kind k;
} kept[MAX_KEPT];

static void *keep(void *p, enum kind k)
{
	if (!p)
		return p;
	for (int i = 0; i < MAX_KEPT; i++)
		if (!kept[i].p) {
			kept[i].p = p;
			kept[i].k = k;
			return p;
		}
	fprintf(stderr, "rdt: more than %d kept handles\n", MAX_KEPT);
	abort();
}

struct spw_reader *rdt_keep_reader(struct spw_reader *r) { return keep(r, K_READER); }
struct spw_producer *rdt_keep_producer(struct spw_producer *p) { return keep(p, K_PRODUCER); }
struct spw_topic *rdt_keep_topic(struct spw_topic *t) { return keep(t, K_TOPIC); }
void *rdt_keep_mem(void *p)
{
	if (!p)
		abort(); /* out of memory in a test: nothing sensible to do */
	return keep(p, K_MEM);
}

static void release(int i)
{
	switch (kept[i].k) {
	case K_READER: spw_reader_close(kept[i].p); break;
	case K_PRODUCER: spw_producer_close(kept[i].p); break;
	case K_TOPIC: spw_topic_close(kept[i].p); break;
	case K_MEM: free(kept[i].p); break;
	default: break;
	}
	kept[i].p = NULL;
	kept[i].k = K_NONE;
}

void rdt_drop(void *p)
{
	if (!p)
		return;
	for (int i = 0; i < MAX_KEPT; i++)
		if (kept[i].p == p) {
			release(i);
			return;
		}
	fprintf(stderr, "rdt: dropping a handle that was never kept\n");
	abort();
}

void rdt_drop_all(void)
{
	/* Readers and producers before the topics they use. */
	for (enum kind k = K_READER; k <= K_TOPIC; k++)
		for (int i = 0; i < MAX_KEPT; i++)
			if (kept[i].p && kept[i].k == k)
				release(i);
}

/* ---------------------------------------------------------------------------
 * Files
 */
static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, r = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	if (n < 0)
		r = -errno;
	close(in);
	close(out);
	return r;
}

int rdt_copy_dir(const char *from, const char *to)
{
	char a[2048], b[2048];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r = 0;

	if (mkdir(to, 0755) && errno != EEXIST)
		return -errno;
	d = opendir(from);
	if (!d)
		return -errno;
	while (!r && (de = readdir(d))) {
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		if (stat(a, &st) || !S_ISREG(st.st_mode))
			continue;
		r = copy_file(a, b);
	}
	closedir(d);
	return r;
}

int rdt_xor_byte(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;
	uint8_t c;

	if (fd < 0)
		return -errno;
	if (pread(fd, &c, 1, (off_t)off) != 1)
		r = -EIO;
	c ^= mask;
	if (!r && pwrite(fd, &c, 1, (off_t)off) != 1)
		r = -EIO;
	close(fd);
	return r;
}

int rdt_write_u64(const char *path, uint64_t off, uint64_t v)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (pwrite(fd, &v, 8, (off_t)off) != 8)
		r = -EIO;
	close(fd);
	return r;
}

/* ---------------------------------------------------------------------------
 * Record identity
 */
uint64_t rdt_len_rng(uint64_t seed, uint32_t p)
{
	return test_key(seed, p, 0x72646c656e73ull /* "rdlens" */);
}

uint32_t rdt_id_len(uint64_t *rng, uint32_t p, uint32_t nprod, uint32_t max_len)
{
	uint32_t len = (uint32_t)(test_splitmix64(rng) % ((uint64_t)max_len + 1));

	if (len < RDT_ID_HEAD) /* the length class names the producer */
		len = len - len % nprod + p < RDT_ID_HEAD ? len - len % nprod + p : p;
	return len;
}

bool rdt_id_is(const void *buf, uint32_t len, uint64_t seed, uint32_t p, uint64_t seq)
{
	const uint8_t *b = buf;
	uint64_t key = test_key(seed, p, seq), s;
	uint32_t q, l;

	if (len < RDT_ID_HEAD)
		return test_check(b, len, key) == len;
	test_id_head(b, &q, &l, &s);
	return q == p && l == len && s == seq &&
	       test_check(b + RDT_ID_HEAD, len - RDT_ID_HEAD, key) == len - RDT_ID_HEAD;
}

void rdt_expect_init(struct rdt_expect *x, uint64_t seed, uint32_t nprod, uint32_t max_len)
{
	memset(x, 0, sizeof(*x));
	x->seed = seed;
	x->nprod = nprod;
	x->max_len = max_len;
	for (uint32_t p = 0; p < nprod && p < RDT_MAX_PRODUCERS; p++) {
		x->len_rng[p] = rdt_len_rng(seed, p);
		x->next_len[p] = rdt_id_len(&x->len_rng[p], p, nprod, max_len);
	}
}

int rdt_expect_check(struct rdt_expect *x, const void *data, uint32_t len, uint32_t *p_out,
		     uint64_t *seq_out, char *err, size_t errsize)
{
	const uint8_t *b = data;
	uint32_t p, l;
	uint64_t seq;

	if (len >= RDT_ID_HEAD) {
		test_id_head(b, &p, &l, &seq);
		if (p >= x->nprod || l != len) {
			snprintf(err, errsize, "len %u: bad identity (producer %u, length field %u)",
				 len, p, l);
			return -1;
		}
		if (seq != x->next_seq[p]) {
			snprintf(err, errsize, "producer %u: got seq %" PRIu64 ", expected %" PRIu64 " (%s)",
				 p, seq, x->next_seq[p],
				 seq < x->next_seq[p] ? "duplicate or reordered" : "records lost");
			return -1;
		}
	} else {
		p = len % x->nprod;
		seq = x->next_seq[p];
	}
	if (len != x->next_len[p]) {
		snprintf(err, errsize,
			 "producer %u seq %" PRIu64 ": length %u, expected %u (lost, duplicate or "
			 "reordered record)",
			 p, seq, len, x->next_len[p]);
		return -1;
	}
	if (!rdt_id_is(data, len, x->seed, p, seq)) {
		snprintf(err, errsize, "producer %u seq %" PRIu64 " len %u: payload is wrong", p, seq,
			 len);
		return -1;
	}
	x->next_seq[p]++;
	x->next_len[p] = rdt_id_len(&x->len_rng[p], p, x->nprod, x->max_len);
	if (p_out)
		*p_out = p;
	if (seq_out)
		*seq_out = seq;
	return 0;
}
