/* SPDX-License-Identifier: MIT */
/*
 * support_daemon.c - running spillwayd from tests, and reading its segment
 * log back; see support_daemon.h.
 */
#define _GNU_SOURCE
#include "support_daemon.h"
#include "support.h"

#include "../spill/spill.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Sandbox
 */
const char *test_daemon_path(void)
{
	const char *p = getenv("SPW_DAEMON");

	if (p && *p)
		return access(p, X_OK) == 0 ? p : NULL;
	return access("build/spillwayd", X_OK) == 0 ? "build/spillwayd" : NULL;
}

void test_daemon_setup(struct test_daemon *d)
{
	char root[] = "/tmp/spwtest.XXXXXX";

	memset(d, 0, sizeof(*d));
	if (!mkdtemp(root)) {
		fprintf(stderr, "test: mkdtemp %s: %s\n", root, strerror(errno));
		abort();
	}
	d->root = strdup(root);
	d->shm = test_tmpdir_make();
	if (!d->root || strncmp(d->shm, "/dev/shm/", 9)) {
		fprintf(stderr, "test: no temp dir under /dev/shm (got %s)\n", d->shm);
		abort();
	}
	snprintf(d->data, sizeof(d->data), "%s/data", d->root);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->root);
	snprintf(d->fault, sizeof(d->fault), "%s/fault", d->root);
	if (mkdir(d->data, 0755)) {
		fprintf(stderr, "test: mkdir %s: %s\n", d->data, strerror(errno));
		abort();
	}
}

void test_daemon_teardown(struct test_daemon *d)
{
	for (int i = 0; i < d->nkids; i++)
		test_kill_reap(d->kids[i]);
	d->nkids = 0;
	if (d->pid > 0)
		test_daemon_kill(d);
	if (d->mounted[0]) {
		if (umount2(d->mounted, MNT_DETACH))
			fprintf(stderr, "test: umount %s: %s\n", d->mounted, strerror(errno));
		d->mounted[0] = '\0';
	}
	if (!d->root)
		return;
	test_tmpdir_remove(d->shm);
	test_tmpdir_remove(d->root);
	d->shm = d->root = NULL;
}

void test_daemon_add_kid(struct test_daemon *d, pid_t pid)
{
	if (d->nkids == (int)(sizeof(d->kids) / sizeof(d->kids[0]))) {
		fprintf(stderr, "test: too many children\n");
		abort();
	}
	d->kids[d->nkids++] = pid;
}

int test_daemon_wait_kids(struct test_daemon *d, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	int bad = 0;

	for (int i = 0; i < d->nkids; i++) {
		int64_t left = end - test_now_ns();
		int st = test_wait(d->kids[i], left > 0 ? left : 1);

		if (st != 0) {
			fprintf(stderr, "test: child %d ended with status %d\n", (int)d->kids[i], st);
			bad = -1;
		}
	}
	d->nkids = 0;
	return bad;
}

void test_daemon_reap_kid(struct test_daemon *d, pid_t pid)
{
	test_kill_reap(pid);
	for (int i = 0; i < d->nkids; i++) {
		if (d->kids[i] == pid) {
			d->kids[i] = d->kids[--d->nkids];
			break;
		}
	}
}

void test_daemon_topic_dir(const struct test_daemon *d, const char *topic, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", d->data, topic);
}

int test_daemon_make_topic(const struct test_daemon *d, const struct test_topic_spec *spec)
{
	struct spw_topic_config cfg = { 0 };
	struct topic_conf c;
	char dir[1024];
	int r;

	test_daemon_topic_dir(d, spec->name, dir, sizeof(dir));
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	seg_conf_defaults(&c);
	c.ring_bytes = spec->ring_bytes;
	c.segment_bytes = spec->segment_bytes;
	c.max_record = spec->max_record;
	if (spec->flush_ms)
		c.flush_ms = spec->flush_ms;
	if (spec->unblock_ms)
		c.unblock_ms = spec->unblock_ms;
	r = seg_conf_save(dir, &c);
	if (r)
		return r;
	cfg.ring_bytes = spec->ring_bytes;
	cfg.segment_bytes = spec->segment_bytes;
	cfg.max_record = spec->max_record;
	return spw_topic_create(d->shm, spec->name, &cfg);
}

/* ---------------------------------------------------------------------------
 * Processes
 */
static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (long)st.st_size;
}

pid_t test_daemon_exec(const char *data_dir, const char *shm_dir, const char *log_path,
			const char *log_level, const char *fault_file)
{
	const char *exe = test_daemon_path();
	pid_t parent = getpid(), pid;

	if (!exe) {
		fprintf(stderr, "test: no daemon (set SPW_DAEMON)\n");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "test: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		const char *argv[] = { exe, "--foreground", "--data-dir", data_dir, "--shm-dir",
				       shm_dir, log_level ? "--log-level" : NULL, log_level, NULL };
		int fd;

		/* A test that dies must not leave a daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		close(fd);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
		if (fault_file)
			setenv("SPILLWAY_FAULT_FILE", fault_file, 1);
		else
			unsetenv("SPILLWAY_FAULT_FILE");
		execv(exe, (char *const *)argv);
		dprintf(2, "test: exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	return pid;
}

static pid_t spawn(const struct test_daemon *d, const char *log_path)
{
	return test_daemon_exec(d->data, d->shm, log_path, d->debug ? "debug" : "info",
				d->fault_env ? d->fault : NULL);
}

pid_t test_daemon_start(struct test_daemon *d)
{
	pid_t pid;

	if (d->pid > 0) {
		fprintf(stderr, "test: a daemon (pid %d) is already running\n", (int)d->pid);
		return -1;
	}
	d->log_start = file_size(d->log);
	pid = spawn(d, d->log);
	if (pid > 0) {
		d->pid = pid;
		d->runs++;
	}
	return pid;
}

pid_t test_daemon_spawn(const struct test_daemon *d, const char *log_path)
{
	return spawn(d, log_path);
}

int test_daemon_cli(const struct test_daemon *d, const char *tail)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "SPILLWAY_SHM_DIR='%s' SPILLWAY_DATA_DIR='%s' '%s' %s", d->shm,
		 d->data, getenv("SPW_CLI"), tail);
	return system(cmd);
}

bool test_daemon_alive(struct test_daemon *d)
{
	int st;
	pid_t r;

	if (d->pid <= 0)
		return false;
	r = waitpid(d->pid, &st, WNOHANG);
	if (r == 0)
		return true;
	if (r == d->pid) {
		d->exit_status = test_exit_status(st);
		d->pid = 0;
	}
	return false;
}

int test_daemon_stop(struct test_daemon *d, int64_t timeout_ns)
{
	int st;

	if (d->pid <= 0)
		return d->exit_status;
	kill(d->pid, SIGTERM);
	st = test_wait(d->pid, timeout_ns);
	d->exit_status = st;
	d->pid = 0;
	return st;
}

void test_daemon_kill(struct test_daemon *d)
{
	if (d->pid <= 0)
		return;
	d->exit_status = test_kill_reap(d->pid);
	d->pid = 0;
}

/* ---------------------------------------------------------------------------
 * The log
 */
static char *log_read(const struct test_daemon *d, bool all, const char *path)
{
	long from = all ? 0 : d->log_start, size;
	char *buf;
	FILE *f = fopen(path ? path : d->log, "r");

	if (!f)
		return calloc(1, 1);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size < from)
		from = size;
	buf = malloc((size_t)(size - from) + 1);
	if (!buf)
		abort();
	fseek(f, from, SEEK_SET);
	size = (long)fread(buf, 1, (size_t)(size - from), f);
	buf[size] = '\0';
	fclose(f);
	return buf;
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; n++) {
		p = strchr(p, '\n');
		if (!p)
			break;
	}
	return n;
}

int test_daemon_log_count(const struct test_daemon *d, const char *needle, bool all)
{
	char *text = log_read(d, all, NULL);
	int n = count_lines(text, needle);

	free(text);
	return n;
}

void test_daemon_dump_log(const struct test_daemon *d, long max_bytes)
{
	char *text = log_read(d, true, NULL);
	size_t n = strlen(text);
	const char *from = n > (size_t)max_bytes ? text + n - max_bytes : text;

	fprintf(stderr, "---- %s%s ----\n%s---- end of log ----\n", d->log,
		from != text ? " (tail)" : "", from);
	free(text);
}

int test_daemon_wait_log(struct test_daemon *d, const char *needle, int n, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;

	for (;;) {
		if (test_daemon_log_count(d, needle, false) >= n)
			return 0;
		if (test_now_ns() > end) {
			fprintf(stderr, "test: the daemon did not log \"%s\" (x%d) within %.1f s\n",
				needle, n, (double)timeout_ns / TEST_SEC);
			test_daemon_dump_log(d, 8192);
			return -1;
		}
		test_sleep_ns(2 * TEST_MS);
	}
}

int64_t test_daemon_log_number(const struct test_daemon *d, const char *needle)
{
	char *text = log_read(d, false, NULL), *p = strstr(text, needle);
	int64_t v = -1;

	if (p)
		v = strtoll(p + strlen(needle), NULL, 10);
	free(text);
	return v;
}

int test_daemon_log_line(const struct test_daemon *d, const char *needle, char *buf,
			 size_t size)
{
	char *text = log_read(d, false, NULL), *p = strstr(text, needle);
	int r = -1;

	if (p && size) {
		size_t n = strcspn(p, "\n");

		if (n >= size)
			n = size - 1;
		memcpy(buf, p, n);
		buf[n] = '\0';
		r = 0;
	}
	free(text);
	return r;
}

int test_daemon_wait_attached(struct test_daemon *d, const char *topic, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	char needle[256];
	struct spw_topic *t = NULL;
	struct spw_topic_info in;

	snprintf(needle, sizeof(needle), "topic %s: attached", topic);
	for (;;) {
		if (!test_daemon_alive(d)) {
			fprintf(stderr, "test: the daemon exited (status %d) before attaching %s\n",
				d->exit_status, topic);
			test_daemon_dump_log(d, 8192);
			return -1;
		}
		if (test_daemon_log_count(d, needle, false) > 0)
			break;
		if (test_now_ns() > end)
			goto timeout;
		test_sleep_ns(2 * TEST_MS);
	}
	/* "attached" is logged right after the heartbeat; check it anyway. */
	for (;;) {
		if (!t && spw_topic_open(d->shm, topic, SPW_OPEN_RDONLY, &t))
			t = NULL;
		if (t && spw_topic_info(t, &in) == 0 && in.daemon_pid == (uint32_t)d->pid) {
			spw_topic_close(t);
			return 0;
		}
		if (test_now_ns() > end)
			break;
		test_sleep_ns(2 * TEST_MS);
	}
	if (t)
		spw_topic_close(t);
timeout:
	fprintf(stderr, "test: the daemon did not attach %s within %.1f s\n", topic,
		(double)timeout_ns / TEST_SEC);
	test_daemon_dump_log(d, 8192);
	return -1;
}

int test_wait_counter(struct spw_topic *t, bool durable, uint64_t upto, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	struct spw_topic_info in;

	for (;;) {
		if (spw_topic_info(t, &in))
			return -1;
		if ((durable ? in.durable : in.spilled) >= upto)
			return 0;
		if (test_now_ns() > end) {
			fprintf(stderr,
				"test: %s stayed at %llu (< %llu) for %.1f s (tail %llu, reclaimed %llu)\n",
				durable ? "durable" : "spilled",
				(unsigned long long)(durable ? in.durable : in.spilled),
				(unsigned long long)upto, (double)timeout_ns / TEST_SEC,
				(unsigned long long)in.tail, (unsigned long long)in.reclaimed);
			return -1;
		}
		test_sleep_ns(TEST_MS);
	}
}

/* ---------------------------------------------------------------------------
 * Segment-log walker
 */
#define WALK_FAIL(w, code, ...)                                          \
	do {                                                                 \
		snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);               \
		return (code);                                                   \
	} while (0)

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		close(fd);
		return r;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break; /* shrank meanwhile: what we have */
		}
		got += (size_t)n;
	}
	close(fd);
	if (r) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = got;
	return 0;
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* Walk the records of seg (base) in [from, to): one index entry's range. */
static int walk_range(struct test_seg_walk *w, const uint8_t *seg, uint64_t base, uint64_t from,
		      uint64_t to, uint64_t *records, uint64_t *max_ts)
{
	uint64_t pos = from, rb = w->ring_bytes;

	while (pos < to) {
		const uint8_t *p = seg + (pos - base);
		uint64_t word, span, room = rb - pos % rb;
		struct test_seg_rec r = { .position = pos };
		uint32_t len;
		int rc;

		if (to - pos < 8)
			WALK_FAIL(w, -EPROTO, "record at %llu: %llu bytes left before %llu",
				  (unsigned long long)pos, (unsigned long long)(to - pos),
				  (unsigned long long)to);
		word = load_le64(p);
		len = test_word_len(word);
		r.type = test_word_type(word);
		/* Both top bits, bits 36..39 zero, and the lap tag of this
		 * position: a word written for another lap does not belong here. */
		if ((word & (TEST_BIT_COMMITTED | TEST_BIT_CLAIMED)) !=
			    (TEST_BIT_COMMITTED | TEST_BIT_CLAIMED) ||
		    ((word >> 36) & 0xf) != 0)
			WALK_FAIL(w, -EPROTO, "record at %llu: commit word %#llx (flags or bits)",
				  (unsigned long long)pos, (unsigned long long)word);
		if (test_word_lap(word) != ((pos / rb) & 0x3fffff))
			WALK_FAIL(w, -EPROTO, "record at %llu: commit word %#llx has lap tag %llu, "
				  "not %llu", (unsigned long long)pos, (unsigned long long)word,
				  (unsigned long long)test_word_lap(word),
				  (unsigned long long)((pos / rb) & 0x3fffff));
		switch (r.type) {
		case TEST_TYPE_DATA:
			span = test_span(len);
			if (len > rb / 4 || span > room)
				WALK_FAIL(w, -EPROTO,
					  "DATA at %llu: len %u does not fit (%llu bytes to the lap end)",
					  (unsigned long long)pos, len, (unsigned long long)room);
			break;
		case TEST_TYPE_PADDING:
			span = len;
			if (len != room || len < 8 || (len & 7))
				WALK_FAIL(w, -EPROTO,
					  "PADDING at %llu: span %u, but %llu bytes to the lap end",
					  (unsigned long long)pos, len, (unsigned long long)room);
			break;
		case TEST_TYPE_ABORTED:
		case TEST_TYPE_CORRUPT:
			span = len;
			if (len > room || len < 8 || (len & 7))
				WALK_FAIL(w, -EPROTO, "%s at %llu: span %u (%llu to the lap end)",
					  r.type == TEST_TYPE_ABORTED ? "ABORTED" : "CORRUPT",
					  (unsigned long long)pos, len, (unsigned long long)room);
			break;
		default:
			WALK_FAIL(w, -EPROTO, "record at %llu: type %u (commit word %#llx)",
				  (unsigned long long)pos, r.type, (unsigned long long)word);
		}
		if (span > to - pos)
			WALK_FAIL(w, -EPROTO,
				  "record at %llu (span %llu) runs past the index entry end %llu",
				  (unsigned long long)pos, (unsigned long long)span,
				  (unsigned long long)to);
		r.span = span;
		r.timestamp_ns = span >= 16 ? load_le64(p + 8) : 0;
		if (r.type == TEST_TYPE_DATA) {
			r.data = p + 16;
			r.len = len;
			w->data_records++;
			w->data_bytes += len;
			(*records)++;
			if (r.timestamp_ns > *max_ts)
				*max_ts = r.timestamp_ns;
			rc = w->on_data ? w->on_data(w->arg, &r) : 0;
		} else {
			if (r.type == TEST_TYPE_ABORTED) {
				w->aborted_records++;
				w->aborted_bytes += span;
				w->last_aborted = (int64_t)pos;
			} else if (r.type == TEST_TYPE_CORRUPT) {
				w->corrupt_records++;
				w->corrupt_bytes += span;
			} else {
				w->padding_records++;
				w->padding_bytes += span;
			}
			rc = w->on_skip ? w->on_skip(w->arg, &r) : 0;
		}
		if (rc) {
			snprintf(w->err, sizeof(w->err), "callback stopped the walk at %llu (%d)",
				 (unsigned long long)pos, rc);
			return rc;
		}
		pos += span;
	}
	return 0;
}

/* One segment: its index against its bytes, then its records. */
static int walk_segment(struct test_seg_walk *w, const char *dir, uint64_t base, bool last_seg)
{
	char ip[1200], sp[1200];
	struct seg_idx_hdr h;
	struct seg_idx_entry *e = NULL;
	uint8_t *seg = NULL;
	size_t size;
	uint64_t pos, records = 0, max_ts = 0, idx_bytes;
	int good, r;

	if (seg_file_path(ip, sizeof(ip), dir, base, "idx") ||
	    seg_file_path(sp, sizeof(sp), dir, base, "seg"))
		WALK_FAIL(w, -ENAMETOOLONG, "path too long");
	/* A kill -9 inside segment creation (seg_open) leaves an empty .seg
	 * whose index is missing or shorter than its header: nothing of the
	 * log is in it. Noted, not an error for the walk (the daemon must
	 * cope with it at restart; crash_daemon.c tests that). */
	if (last_seg && file_size(sp) == 0 &&
	    (access(ip, F_OK) != 0 || file_size(ip) < (long)SEG_IDX_HDR_BYTES)) {
		w->unborn_segment = true;
		return 0;
	}
	good = seg_idx_load(ip, &h, &e);
	if (good < 0) {
		free(e);
		WALK_FAIL(w, good == -EBADMSG ? -EBADMSG : good, "%.300s: %s", ip, strerror(-good));
	}
	r = 0;
	idx_bytes = SEG_IDX_HDR_BYTES + (uint64_t)good * SEG_IDX_ENTRY_BYTES;
	if ((uint64_t)file_size(ip) != idx_bytes) {
		/* After a kill -9, the last segment's index may hold a hole
		 * (ops complete out of order, W2) and good entries after it:
		 * the log ends at the hole (FORMAT.md: "verified end"), which
		 * recovery cuts. Anywhere else it is damage. */
		if (!last_seg || (uint64_t)file_size(ip) < idx_bytes) {
			snprintf(w->err, sizeof(w->err),
				 "%.300s: entry %d fails its CRC or order (%ld bytes of index)", ip,
				 good, file_size(ip));
			r = -EBADMSG;
			goto out;
		}
		w->torn_index_bytes = (uint64_t)file_size(ip) - idx_bytes;
	}
	if (h.base != base) {
		snprintf(w->err, sizeof(w->err), "%.300s: base %llu in the header", ip,
			 (unsigned long long)h.base);
		r = -EBADMSG;
		goto out;
	}
	if (w->segments == 0) {
		w->ring_bytes = h.ring_bytes;
		w->segment_bytes = h.segment_bytes;
		w->first = w->end = h.first;
	} else if (h.ring_bytes != w->ring_bytes || h.segment_bytes != w->segment_bytes) {
		snprintf(w->err, sizeof(w->err), "%.300s: ring/segment bytes differ from the first", ip);
		r = -EBADMSG;
		goto out;
	} else if (h.first != w->end || base != w->end) {
		snprintf(w->err, sizeof(w->err),
			 "gap: the log ends at %llu, the next segment %020llu starts at %llu",
			 (unsigned long long)w->end, (unsigned long long)base,
			 (unsigned long long)h.first);
		r = -ERANGE;
		goto out;
	}
	w->segments++;
	r = read_whole(sp, &seg, &size);
	if (r) {
		snprintf(w->err, sizeof(w->err), "%.300s: %s", sp, strerror(-r));
		goto out;
	}
	if (size > w->segment_bytes) {
		snprintf(w->err, sizeof(w->err), "%.300s: %zu bytes, more than a segment", sp, size);
		r = -EBADMSG;
		goto out;
	}
	pos = h.first;
	for (int i = 0; i < good; i++) {
		uint32_t crc;

		if (e[i].end - base > size) {
			snprintf(w->err, sizeof(w->err), "%.300s: entry %d ends at %llu, past the file (%zu)",
				 ip, i, (unsigned long long)e[i].end, size);
			r = -EBADMSG;
			goto out;
		}
		crc = seg_crc32c(0, seg + (pos - base), (size_t)(e[i].end - pos));
		if (crc != e[i].crc_data) {
			snprintf(w->err, sizeof(w->err),
				 "%.300s: bytes %llu..%llu fail their CRC (entry %d: %#x, data %#x)", sp,
				 (unsigned long long)pos, (unsigned long long)e[i].end, i,
				 e[i].crc_data, crc);
			r = -EBADMSG;
			goto out;
		}
		r = walk_range(w, seg, base, pos, e[i].end, &records, &max_ts);
		if (r)
			goto out;
		if (e[i].records != records || e[i].max_ts != max_ts) {
			snprintf(w->err, sizeof(w->err),
				 "%.300s: entry %d says %llu records / max ts %llu, the bytes hold %llu / %llu",
				 ip, i, (unsigned long long)e[i].records,
				 (unsigned long long)e[i].max_ts, (unsigned long long)records,
				 (unsigned long long)max_ts);
			r = -EBADMSG;
			goto out;
		}
		w->last_entry_start = pos;
		pos = e[i].end;
		w->entries++;
	}
	w->last_base = base;
	w->end = pos;
	w->file_end = base + size;
	if (!last_seg && pos != base + w->segment_bytes) {
		snprintf(w->err, sizeof(w->err),
			 "gap: segment %020llu ends at %llu, not full, and a later one exists",
			 (unsigned long long)base, (unsigned long long)pos);
		r = -ERANGE;
	}
out:
	free(seg);
	free(e);
	return r;
}

int test_seg_walk(const char *topic_dir, struct test_seg_walk *w)
{
	uint64_t *bases = NULL;
	size_t n = 0;
	int r;

	w->ring_bytes = w->segment_bytes = w->first = w->end = w->file_end = 0;
	w->last_base = w->last_entry_start = w->torn_index_bytes = 0;
	w->unborn_segment = false;
	w->segments = w->entries = w->data_records = w->data_bytes = 0;
	w->aborted_records = w->aborted_bytes = w->padding_records = w->padding_bytes = 0;
	w->corrupt_records = w->corrupt_bytes = 0;
	w->last_aborted = -1;
	w->err[0] = '\0';
	r = seg_list(topic_dir, &bases, &n);
	if (r == -ENOENT)
		return 0;
	if (r)
		WALK_FAIL(w, r, "%.300s: %s", topic_dir, strerror(-r));
	for (size_t i = 0; i < n && !r; i++)
		r = walk_segment(w, topic_dir, bases[i], i + 1 == n);
	free(bases);
	return r;
}

/* ---------------------------------------------------------------------------
 * Feeds
 */
struct test_feed *test_feed_new(const char *shm, const char *name, uint64_t seed,
				uint32_t first_id, uint32_t producers, uint32_t max_record)
{
	struct test_feed *f = test_shared_alloc(sizeof(*f));

	snprintf(f->shm, sizeof(f->shm), "%s", shm);
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->seed = seed;
	f->first_id = first_id;
	f->producers = producers;
	f->max_record = max_record;
	f->per_producer = UINT64_MAX;
	f->timeout_ns = 100 * TEST_MS;
	f->deadline_ns = test_now_ns() + 120 * TEST_SEC;
	if (first_id + producers > TEST_ID_PRODUCERS)
		abort();
	return f;
}

void test_feed_free(struct test_feed *f)
{
	test_shared_free(f, sizeof(*f));
}

/* One record, resent until it is committed (never skipped: W5 says nothing
 * is dropped, so the walk must find every seq). Only a blocked send (a
 * timeout) is tried again: the daemon never takes a live producer's claim
 * away (ring_layout.h I7), so a commit cannot fail and any other error is
 * a failure of the test. */
static int feed_send(struct test_feed *f, struct spw_producer *p, uint32_t id, const void *buf,
		     uint32_t len, bool by_claim)
{
	for (;;) {
		struct spw_claim c;
		int64_t r;

		TEST_CHECK(test_now_ns() < f->deadline_ns, "producer %u: deadline passed at seq %llu",
			   id, (unsigned long long)atomic_load(&f->sent[id]));
		if (by_claim) {
			r = spw_producer_claim_wait(p, len, f->timeout_ns, &c);
			if (r == 0) {
				memcpy(c.data, buf, len);
				r = spw_producer_commit(p, &c);
			}
		} else {
			r = spw_producer_send_wait(p, buf, len, f->timeout_ns);
		}
		if (r >= 0)
			return 0;
		TEST_CHECK(r == -ETIMEDOUT, "producer %u: send of %u bytes: %s", id, len,
			   strerror((int)-r));
		atomic_fetch_add(&f->timeouts[id], 1);
	}
}

int test_feed_producer(struct test_feed *f, uint32_t id)
{
	uint64_t len_rng = test_id_len_rng(f->seed, id), mode_rng = test_key(f->seed, id, 0x6d6f6465);
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	uint8_t *buf = malloc(f->max_record ? f->max_record : 1);
	int r, rc = -1;

	TEST_CHECK(buf, "malloc");
	/* Do not outlive a test that died. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	r = spw_topic_open(f->shm, f->name, 0, &t);
	if (r) {
		test_report(__FILE__, __LINE__, "open", "topic %s: %s", f->name, strerror(-r));
		goto out;
	}
	r = spw_producer_open(t, &p);
	if (r) {
		test_report(__FILE__, __LINE__, "open", "producer: %s", strerror(-r));
		goto out;
	}
	for (uint64_t seq = 0; seq < f->per_producer && !atomic_load(&f->stop); seq++) {
		uint32_t len = test_id_len(&len_rng, id, f->max_record);
		bool by_claim = test_rand_below(&mode_rng, 4) == 0;

		test_id_make(buf, len, f->seed, id, seq);
		if (feed_send(f, p, id, buf, len, by_claim))
			goto out;
		/* seq_cst: the parent reads it after the stop or the child's exit. */
		atomic_store(&f->sent[id], seq + 1);
		if (f->pace_ns)
			test_sleep_ns(f->pace_ns);
	}
	rc = 0;
out:
	spw_producer_close(p);
	if (t)
		spw_topic_close(t);
	free(buf);
	return rc;
}

struct feed_arg {
	struct test_feed *f;
	uint32_t id;
};

static int feed_child(void *arg)
{
	struct feed_arg *a = arg;

	return test_feed_producer(a->f, a->id);
}

void test_feed_start(struct test_feed *f, struct test_daemon *d)
{
	for (uint32_t i = 0; i < f->producers; i++) {
		struct feed_arg a = { f, f->first_id + i };

		test_daemon_add_kid(d, test_fork(feed_child, &a));
	}
}

uint64_t test_feed_total(const struct test_feed *f, _Atomic uint64_t *counts)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < f->producers; i++)
		n += atomic_load(&counts[f->first_id + i]);
	return n;
}

void test_feed_check_init(struct test_feed_check *c, uint64_t seed, uint32_t nproducers,
			  uint32_t max_record)
{
	memset(c, 0, sizeof(*c));
	test_id_expect_init(&c->e, seed, nproducers, max_record);
}

int test_feed_on_data(void *arg, const struct test_seg_rec *r)
{
	struct test_feed_check *c = arg;
	char why[200];

	if (test_id_verify(&c->e, r->data, r->len, NULL, why, sizeof(why))) {
		snprintf(c->err, sizeof(c->err), "record at %llu (len %u): %s",
			 (unsigned long long)r->position, r->len, why);
		return -EILSEQ;
	}
	c->records++;
	return 0;
}

int test_feed_check_count(struct test_feed_check *c, uint32_t p, uint64_t sent)
{
	if (c->e.next_seq[p] == sent)
		return 0;
	snprintf(c->err, sizeof(c->err), "producer %u: %llu records committed, %llu in the segments",
		 p, (unsigned long long)sent, (unsigned long long)c->e.next_seq[p]);
	return -1;
}
