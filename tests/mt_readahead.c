/* SPDX-License-Identifier: MIT */
/*
 * mt_readahead.c - the reader's read-ahead thread (spill/reader_ahead.c,
 * spill/reader.c R6), also under TSan (`make tsan` runs tests/mt_*.c).
 *
 * A log of ~4 MiB in 1 MiB segments, written by a real spillwayd, is read
 * back from disk in small chunks (rd_chunk_bytes) so that the thread reads
 * every other one. With and without SPW_READER_NO_READAHEAD the reader must
 * give the same result: every record once, in order, with its bytes, by
 * poll and by batch; and with flipped bytes in the segments, the same
 * -EBADMSG at the same position, or (SPW_READER_SKIP_CORRUPT) the same
 * records and the same skipped bytes. A thread that never gets to run
 * (held at the test seam rd_test_ahead_hook) never holds the reader up: it
 * takes every job back and reads alone; one stopped in the middle of a job
 * holds it up once (~0.5 ms), then the reader reads on alone, and gets
 * jobs again once the thread is back. Once the reader has left a segment,
 * the thread's descriptor of it is closed (retention may delete it). A reader closed with a job in
 * flight frees everything (ASan, TSan), and a reader inherited by a forked
 * child reads on without the parent's thread (not under TSan: no fork there).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"
#include "support_reader.h"
#include "daemon_case.h"
#include "../spill/reader.h" /* r->ahead, rd_chunk_bytes, rd_ahead_min_cpus */

#define RING (256u << 10)
#define SEGMENT (1u << 20)
#define MAXREC 4096u
#define NMAX 6000u
#define TOPIC "ahead"

/* Record seq: u64 seq, then test_fill(seq + 1); 8..2007 bytes. */
static uint32_t rec_len(uint64_t seq)
{
	return 8 + (uint32_t)(seq * 997 % 2000);
}

static bool rec_ok(const void *data, uint32_t len, uint64_t seq)
{
	uint8_t want[2048];
	uint64_t got;

	if (len != rec_len(seq))
		return false;
	memcpy(&got, data, 8);
	test_fill(want, len - 8, seq + 1);
	return got == seq && memcmp((const uint8_t *)data + 8, want, len - 8) == 0;
}

/* Called by read_all before it closes its reader. */
static void (*before_close)(void);

/* Records in the log (make_log). */
static uint64_t nrec;

/* The log: nrec records, all spilled, the daemon stopped (the reads are
 * disk-only, and the files no longer change). */
static void make_log(struct test_daemon *d)
{
	const struct test_topic_spec spec = { TOPIC, RING, SEGMENT, MAXREC, 20, 0 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t buf[2048];
	int64_t end = 0;

	case_producer(d, &spec, &t, &p);
	/* Until just past four segments: the last one holds one small chunk,
	 * which gives the thread no job there. */
	for (nrec = 0; end < 4 * (int64_t)SEGMENT + 2048; nrec++) {
		uint64_t seq = nrec;
		uint32_t len = rec_len(seq);

		assert_true(nrec < NMAX);
		memcpy(buf, &seq, 8);
		test_fill(buf + 8, len - 8, seq + 1);
		end = spw_producer_send_wait(p, buf, len, 10 * TEST_SEC);
		assert_true(end >= 0);
	}
	assert_int_equal(test_wait_counter(t, false, (uint64_t)end, scaled_s(10, 60)), 0);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	/* Chunks of one or two index entries (~64 KiB each): many chunks;
	 * the thread starts on one CPU, and the reader waits for every job it
	 * gave it, so the thread surely reads every other chunk. */
	rd_chunk_bytes = 96u << 10;
	rd_ahead_min_cpus = 1;
	rd_ahead_take_back = false;
	rd_ahead_give_up_ns = 0;
	rd_test_ahead_hook = NULL;
	before_close = NULL;
}

struct outcome {
	int64_t pos[NMAX + 1];
	uint64_t seq[NMAX + 1];
	size_t n;
	int rc;              /* the first error, or 0 at the end */
	int64_t err_pos;
	uint64_t skipped;
	uint64_t chunks;     /* read by the thread and delivered */
	uint64_t bad_chunks; /* ... of them, those the thread found a bad CRC in */
	uint64_t taken_back; /* jobs the reader took back from the thread */
	uint64_t given_up;   /* running jobs it stopped waiting for */
	bool bytes_ok;
};


static struct spw_reader *open_reader(struct test_daemon *d, unsigned flags)
{
	struct spw_reader_opts o = { 0 };
	struct spw_reader *r = NULL;

	o.shm_dir = d->shm;
	o.data_dir = d->data;
	o.start = SPW_START_EARLIEST;
	o.flags = SPW_READER_NO_LIVE | flags;
	assert_int_equal(spw_reader_open(TOPIC, &o, &r), 0);
	return r;
}

static void note(struct outcome *o, const struct spw_record *rec)
{
	uint64_t seq = 0;

	if (o->n > NMAX) {
		o->bytes_ok = false;
		return;
	}
	if (rec->len >= 8)
		memcpy(&seq, rec->data, 8);
	o->bytes_ok &= seq < nrec && rec_ok(rec->data, rec->len, seq);
	o->pos[o->n] = rec->position;
	o->seq[o->n++] = seq;
}

static int note_fn(void *arg, const struct spw_record *rec)
{
	note(arg, rec);
	return 0;
}

/* Read the log to its end or first error, by poll or by batch. */
static void read_all(struct test_daemon *d, unsigned flags, bool batch, struct outcome *o)
{
	static struct spw_record recs[256];
	struct spw_reader *r = open_reader(d, flags);
	int n;

	memset(o, 0, sizeof(*o));
	o->bytes_ok = true;
	for (;;) {
		if (batch) {
			n = spw_reader_read(r, recs, 256, 0);
			for (int i = 0; i < n; i++)
				note(o, &recs[i]);
		} else {
			n = spw_reader_poll(r, note_fn, o, 256);
		}
		if (n <= 0)
			break;
	}
	o->rc = n;
	assert_int_equal(spw_reader_error(r, NULL, 0, &o->err_pos), 0);
	o->skipped = spw_reader_skipped(r);
	o->chunks = r->ahead.chunks;
	o->bad_chunks = r->ahead.bad_chunks;
	o->taken_back = r->ahead.taken_back;
	o->given_up = r->ahead.given_up;
	if (before_close)
		before_close();
	spw_reader_close(r);
}

static void assert_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->pos, b->pos, a->n * sizeof(a->pos[0]));
	assert_memory_equal(a->seq, b->seq, a->n * sizeof(a->seq[0]));
	assert_true(a->bytes_ok);
	assert_true(b->bytes_ok);
	assert_int_equal(a->skipped, b->skipped);
	if (a->rc)
		assert_int_equal(a->err_pos, b->err_pos);
}

static struct outcome one, two;

static void every_record_once_in_order_with_or_without_the_thread(void **state)
{
	struct test_daemon *d = *state;

	make_log(d);
	for (int batch = 0; batch < 2; batch++) {
		read_all(d, SPW_READER_NO_READAHEAD, batch, &one);
		read_all(d, 0, batch, &two);
		assert_int_equal(one.rc, 0);
		assert_int_equal(one.n, nrec);
		for (size_t i = 0; i < nrec; i++)
			assert_int_equal(one.seq[i], i);
		assert_same(&one, &two);
		assert_int_equal(one.chunks, 0);
		assert_true(two.chunks > 10); /* the thread read a good part of it */
	}
}

/* XOR a byte in the middle of index entries k .. k + count - 1 of the
 * segment at base. */
static void flip_entries(struct test_daemon *d, uint64_t base, int k, int count)
{
	char dir[1024], idx[1100], seg[1100];
	struct seg_idx_hdr h;
	struct seg_idx_entry *ent = NULL;
	int n;

	snprintf(dir, sizeof(dir), "%s/%s", d->data, TOPIC);
	assert_int_equal(seg_file_path(idx, sizeof(idx), dir, base, "idx"), 0);
	assert_int_equal(seg_file_path(seg, sizeof(seg), dir, base, "seg"), 0);
	n = seg_idx_load(idx, &h, &ent);
	assert_true(n >= k + count);
	for (int e = k; e < k + count; e++) {
		uint64_t a = e ? ent[e - 1].end : h.first, mid = (a + ent[e].end) / 2 - base;

		assert_int_equal(rdt_xor_byte(seg, mid, 0x40), 0);
	}
	free(ent);
}

static void flipped_bytes_fail_the_same_way_with_or_without_the_thread(void **state)
{
	struct test_daemon *d = *state;

	make_log(d);
	/* Three entries in a row: whichever way the chunks fall, the thread
	 * and the reader each check at least one of them. */
	flip_entries(d, SEGMENT, 3, 3);
	for (int batch = 0; batch < 2; batch++) {
		read_all(d, SPW_READER_NO_READAHEAD, batch, &one);
		read_all(d, 0, batch, &two);
		assert_int_equal(one.rc, -EBADMSG);
		assert_true(one.err_pos >= SEGMENT);
		assert_same(&one, &two);
		assert_true(two.chunks > 0);

		read_all(d, SPW_READER_NO_READAHEAD | SPW_READER_SKIP_CORRUPT, batch, &one);
		read_all(d, SPW_READER_SKIP_CORRUPT, batch, &two);
		assert_int_equal(one.rc, 0);
		assert_true(one.skipped > 0);
		assert_true(one.n < nrec);
		assert_same(&one, &two);
		assert_true(two.chunks > 10);
	}
}

/* One flipped entry at a time, each of entries 1-8 of the segment at
 * SEGMENT (the second): the thread reads every other chunk there (setup),
 * so some flips are in its chunks and some in the reader's own, and the
 * reader fails or skips where it would alone, whoever checked the entry.
 * The flip is undone after each (a second XOR). */
static void one_flipped_entry_anywhere_fails_the_same_way_with_or_without_the_thread(void **state)
{
	struct test_daemon *d = *state;

	uint64_t found_by_thread = 0, found_by_reader = 0;

	make_log(d);
	for (int k = 1; k <= 8; k++) {
		flip_entries(d, SEGMENT, k, 1);
		read_all(d, SPW_READER_NO_READAHEAD, false, &one);
		read_all(d, 0, false, &two);
		assert_int_equal(one.rc, -EBADMSG);
		assert_same(&one, &two);
		read_all(d, SPW_READER_NO_READAHEAD | SPW_READER_SKIP_CORRUPT, false, &one);
		read_all(d, SPW_READER_SKIP_CORRUPT, false, &two);
		assert_int_equal(one.rc, 0);
		assert_true(one.skipped > 0);
		assert_same(&one, &two);
		assert_true(two.chunks > 0);
		if (two.bad_chunks)
			found_by_thread++;
		else
			found_by_reader++;
		flip_entries(d, SEGMENT, k, 1);
	}
	/* Both paths were taken: the thread's check and the reader's. */
	assert_true(found_by_thread > 0);
	assert_true(found_by_reader > 0);
	read_all(d, 0, false, &two);
	assert_int_equal(two.rc, 0);
	assert_int_equal(two.n, nrec);
}

static _Atomic int hold_thread;
static _Atomic int thread_held;
static int hold_at;

static void hold(int at)
{
	if (at != hold_at || atomic_exchange(&thread_held, 1))
		return; /* held once, at hold_at */
	while (atomic_load(&hold_thread))
		test_sleep_ns(TEST_MS);
}

static void let_go(void)
{
	/* The thread did get there (and was held); let go, it quits at the
	 * close. */
	for (int k = 0; k < 10000 && !atomic_load(&thread_held); k++)
		test_sleep_ns(TEST_MS);
	assert_true(atomic_load(&thread_held));
	atomic_store(&hold_thread, 0);
}

/* Read the log with the thread held at `at`, and without the thread. */
static void read_held(struct test_daemon *d, int at, int batch)
{
	read_all(d, SPW_READER_NO_READAHEAD, batch, &one);
	atomic_store(&hold_thread, 1);
	atomic_store(&thread_held, 0);
	hold_at = at;
	rd_test_ahead_hook = hold;
	before_close = let_go;
	read_all(d, 0, batch, &two);
	before_close = NULL;
	rd_test_ahead_hook = NULL;
	assert_int_equal(two.chunks, 0);
	assert_same(&one, &two);
}

static void a_thread_that_never_runs_never_holds_the_reader_up(void **state)
{
	struct test_daemon *d = *state;

	make_log(d);
	rd_ahead_take_back = true;
	rd_ahead_give_up_ns = 500000;
	for (int batch = 0; batch < 2; batch++) {
		read_held(d, RD_AH_AT_START, batch);
		/* Every job the thread was given, the reader took back. */
		assert_true(two.taken_back > 10);
		assert_int_equal(two.given_up, 0);
	}
}

static void a_thread_stopped_mid_job_holds_the_reader_up_once(void **state)
{
	struct test_daemon *d = *state;

	make_log(d);
	rd_ahead_give_up_ns = 500000; /* as the library has it; no take-back, so */
	for (int batch = 0; batch < 2; batch++) { /* the thread surely runs a job */
		read_held(d, RD_AH_AT_RUNNING, batch);
		/* The reader waited for its first job (~0.5 ms), then read on
		 * alone: no other job while that one runs. */
		assert_int_equal(two.given_up, 1);
	}
}

static bool all_in_order(const struct outcome *o);

static void a_thread_back_from_a_stall_gets_jobs_again(void **state)
{
	static struct spw_record recs[256];
	struct test_daemon *d = *state;
	struct spw_reader *r;
	bool released = false;
	int n;

	make_log(d);
	read_all(d, SPW_READER_NO_READAHEAD, true, &one);
	rd_ahead_give_up_ns = 500000;
	atomic_store(&hold_thread, 1);
	atomic_store(&thread_held, 0);
	hold_at = RD_AH_AT_RUNNING;
	rd_test_ahead_hook = hold;
	r = open_reader(d, 0);
	memset(&two, 0, sizeof(two));
	two.bytes_ok = true;
	while ((n = spw_reader_read(r, recs, 256, 0)) > 0) {
		for (int i = 0; i < n; i++)
			note(&two, &recs[i]);
		if (!released && r->ahead.given_up) {
			/* The reader gave up on the held job and read on; let
			 * the thread finish it (its result is dropped) and wait
			 * for its next jobs from now on. */
			released = true;
			rd_ahead_give_up_ns = 0;
			atomic_store(&hold_thread, 0);
		}
		/* Until the thread has delivered one, give it time to come back
		 * (a vCPU the host took away, ASan): a job it has not begun is
		 * taken back, so a reader that never pauses can finish first. */
		if (released && r->ahead.chunks == 0)
			test_sleep_ns(TEST_MS / 2);
	}
	two.rc = n;
	assert_true(released);
	assert_int_equal(r->ahead.given_up, 1);
	assert_true(r->ahead.chunks > 0);
	assert_same(&one, &two);
	spw_reader_close(r);
	rd_test_ahead_hook = NULL;
}



/* Segment files this process has open, other than `keep`. */
static int other_segments_open(const char *keep)
{
	char link[300], target[1100];
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	assert_non_null(dir);
	while ((e = readdir(dir))) {
		ssize_t k;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		k = readlink(link, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = '\0';
		n += strstr(target, ".seg") && strcmp(target, keep) != 0;
	}
	closedir(dir);
	return n;
}

static void the_threads_descriptor_follows_the_reader(void **state)
{
	struct test_daemon *d = *state;
	struct spw_reader *r;
	struct outcome *o = &one;

	make_log(d);
	r = open_reader(d, 0);
	memset(o, 0, sizeof(*o));
	o->bytes_ok = true;
	for (int n; (n = spw_reader_poll(r, note_fn, o, 256)) > 0;)
		;
	/* A job the thread still runs keeps its descriptor until it is done
	 * (the thread descheduled on a busy VM); the next call after that
	 * lets it go. */
	/* seq_cst: pairs with the thread's seq_cst store of DONE after its
	 * job (reader_ahead.c, post()). */
	for (int i = 0; i < 2000 && atomic_load(&r->ahead.state) == RD_AH_RUNNING; i++)
		test_sleep_ns(TEST_MS);
	assert_int_equal(spw_reader_poll(r, note_fn, o, 256), 0);
	assert_true(all_in_order(o));
	assert_true(r->ahead.chunks > 10);
	/* At the end, in the last segment (one small chunk: no job there).
	 * Retention may delete every older segment: none may stay open. */
	assert_true(r->seg.base == 4 * (uint64_t)SEGMENT);
	assert_int_equal(other_segments_open(r->seg.path), 0);
	spw_reader_close(r);
}

/* Read until the thread has delivered a few chunks: one is then out. */
static struct spw_reader *reader_with_a_job_out(struct test_daemon *d, struct outcome *o)
{
	static struct spw_record recs[64];
	struct spw_reader *r = open_reader(d, 0);

	memset(o, 0, sizeof(*o));
	o->bytes_ok = true;
	while (r->ahead.chunks < 3) {
		int n = spw_reader_read(r, recs, 64, 0);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			note(o, &recs[i]);
	}
	assert_true(r->ahead.running);
	return r;
}

static void closing_with_a_job_out_frees_everything(void **state)
{
	struct test_daemon *d = *state;

	make_log(d);
	for (int k = 0; k < 20; k++) {
		struct spw_reader *r = reader_with_a_job_out(d, &one);

		assert_true(one.bytes_ok);
		spw_reader_close(r); /* ASan: nothing leaked; TSan: no race */
	}
}

/* The rest of the log, from where the parent left off. */
static void read_rest(struct spw_reader *r, struct outcome *o)
{
	static struct spw_record recs[256];
	int n;

	while ((n = spw_reader_read(r, recs, 256, 0)) > 0)
		for (int i = 0; i < n; i++)
			note(o, &recs[i]);
	o->rc = n;
}

static bool all_in_order(const struct outcome *o)
{
	if (o->rc || o->n != nrec || !o->bytes_ok)
		return false;
	for (size_t i = 0; i < nrec; i++)
		if (o->seq[i] != i)
			return false;
	return true;
}

static struct spw_reader *forked_r;

static int child_reads_on(void *arg)
{
	struct outcome *o = arg;

	alarm(60); /* never hang the run */
	read_rest(forked_r, o);
	/* The parent's thread is not ours: the job it had was dropped, and
	 * the child started its own thread for its sequential reading. */
	if (!all_in_order(o) || !forked_r->ahead.running)
		return 1;
	spw_reader_close(forked_r);
	return 0;
}

static void a_forked_child_reads_on_without_the_parents_thread(void **state)
{
	struct test_daemon *d = *state;
	pid_t pid;

	make_log(d);
	forked_r = reader_with_a_job_out(d, &one);
	pid = test_fork(child_reads_on, &one);
	assert_true(pid > 0);
	read_rest(forked_r, &one); /* the parent too, with its thread */
	assert_true(all_in_order(&one));
	assert_int_equal(test_wait(pid, scaled_s(60, 120)), 0);
	spw_reader_close(forked_r);
}

static void cgroup_quotas_are_read_as_cpus(void **state)
{
	(void)state;
	assert_true(rd_quota_cpus("max", "100000") == 0);
	assert_true(rd_quota_cpus("-1", "100000") == 0);
	assert_true(rd_quota_cpus("200000", "100000") == 2);
	assert_true(rd_quota_cpus("150000", "100000\n") == 1.5);
	assert_true(rd_quota_cpus("50000", "100000") == 0.5);
	assert_true(rd_quota_cpus("junk", "100000") == -1);
	assert_true(rd_quota_cpus("100000", "0") == -1);
	assert_true(rd_quota_cpus("", "100000") == -1);
}

/* cgroup v1's cpu hierarchy (this project's CI machine has it), or v2's
 * root with the cpu controller on for its children; NULL when neither. */
static const char *cpu_cgroup_root(bool *v2)
{
	char ctl[256] = "";
	FILE *f;

	*v2 = false;
	if (access("/sys/fs/cgroup/cpu/cgroup.procs", W_OK) == 0 &&
	    access("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", R_OK) == 0)
		return "/sys/fs/cgroup/cpu";
	f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "r");
	if (f) {
		if (!fgets(ctl, sizeof(ctl), f))
			ctl[0] = '\0';
		fclose(f);
	}
	*v2 = true;
	return strstr(ctl, "cpu") && access("/sys/fs/cgroup/cgroup.procs", W_OK) == 0 ? "/sys/fs/cgroup"
										      : NULL;
}

static struct test_daemon *quota_d;

/* In a new cgroup with a quota of `cpus` CPUs (0: none), read the log:
 * 0 when the thread started exactly when it should (cpus 0 or >= 2). */
static int read_in_cgroup(void *arg)
{
	const char *dir = arg;
	char path[512];
	struct spw_reader *r;
	bool want;
	FILE *f;
	int n;

	alarm(60);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
		fprintf(stderr, "joining %s: %s\n", dir, strerror(errno));
		return 2;
	}
	want = !strstr(dir, ".one");
	r = open_reader(quota_d, 0);
	memset(&one, 0, sizeof(one));
	one.bytes_ok = true;
	while ((n = spw_reader_poll(r, note_fn, &one, 256)) > 0)
		;
	if (!all_in_order(&one) || r->ahead.running != want) {
		fprintf(stderr, "%s: running %d, wanted %d\n", dir, r->ahead.running, want);
		return 1;
	}
	spw_reader_close(r);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void a_one_cpu_quota_keeps_the_reader_alone(void **state)
{
	struct test_daemon *d = *state;
	char one_cpu[256], unlimited[256];
	bool v2;
	const char *root = cpu_cgroup_root(&v2);
	pid_t pid;

	if (!root || sysconf(_SC_NPROCESSORS_ONLN) < 2 || geteuid() != 0) {
		print_message("no writable cpu cgroup or one CPU: quota parsing checked only\n");
		return;
	}
	make_log(d);
	rd_ahead_min_cpus = 2;
	quota_d = d;
	snprintf(one_cpu, sizeof(one_cpu), "%s/spwtest.%d.one", root, (int)getpid());
	snprintf(unlimited, sizeof(unlimited), "%s/spwtest.%d.max", root, (int)getpid());
	assert_int_equal(mkdir(one_cpu, 0755), 0);
	assert_int_equal(mkdir(unlimited, 0755), 0);
	if (v2) {
		write_file(one_cpu, "cpu.max", "100000 100000\n");
	} else {
		write_file(one_cpu, "cpu.cfs_period_us", "100000\n");
		write_file(one_cpu, "cpu.cfs_quota_us", "100000\n");
	}
	/* With one CPU of quota the reader reads alone; without, the thread
	 * starts (the same log, the same two CPUs). */
	pid = test_fork(read_in_cgroup, one_cpu);
	assert_true(pid > 0);
	assert_int_equal(test_wait(pid, scaled_s(60, 120)), 0);
	pid = test_fork(read_in_cgroup, unlimited);
	assert_true(pid > 0);
	assert_int_equal(test_wait(pid, scaled_s(60, 120)), 0);
	assert_int_equal(rmdir(one_cpu), 0);
	assert_int_equal(rmdir(unlimited), 0);
}

int main(void)
{
	const char *scale = getenv("SPW_TEST_SCALE");
	/* TSan does not follow a fork() with threads running: the fork and
	 * cgroup cases (the last two) run in the normal and ASan builds. */
	bool tsan = scale && !strcmp(scale, "tsan");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_record_once_in_order_with_or_without_the_thread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(flipped_bytes_fail_the_same_way_with_or_without_the_thread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			one_flipped_entry_anywhere_fails_the_same_way_with_or_without_the_thread, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_thread_that_never_runs_never_holds_the_reader_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_thread_stopped_mid_job_holds_the_reader_up_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_thread_back_from_a_stall_gets_jobs_again, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_threads_descriptor_follows_the_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(closing_with_a_job_out_frees_everything, setup, teardown),
		cmocka_unit_test(cgroup_quotas_are_read_as_cpus),
		cmocka_unit_test_setup_teardown(a_one_cpu_quota_keeps_the_reader_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(a_forked_child_reads_on_without_the_parents_thread,
						setup, teardown),
	};

	return _cmocka_run_group_tests("mt_readahead", tests,
				       sizeof(tests) / sizeof(tests[0]) - (tsan ? 2 : 0), NULL, NULL);
}
