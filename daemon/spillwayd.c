/* SPDX-License-Identifier: MIT */
/*
 * spillwayd - spills every topic's ring to segment files (spill/writer.c).
 *
 * Process glue only: options and config, the data-dir lock, topic discovery
 * (inotify on the shm dir plus a periodic rescan), recovery at attach, the
 * event loop, signals (SIGTERM/SIGINT: spill all, fdatasync, exit 0;
 * SIGHUP: reread the config and each topic.conf), heartbeat and retention.
 */
#define _GNU_SOURCE
#include "../spill/writer.h"

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
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 256

struct dtopic {
	char name[SPW_NAME_MAX + 1];
	char dir[PATH_MAX];
	struct spw_topic *t;
	struct spill_stream *s;
	ino_t ino;
	uint64_t rolls_seen; /* retention runs after every segment roll too */
};

static struct {
	char data_dir[PATH_MAX];
	char shm_dir[PATH_MAX];
	char config[PATH_MAX];
	int log_level;
	bool foreground;
	struct spill_writer w;
	struct dtopic *topics[MAX_TOPICS];
	int ntopics;
	int inotify_fd, sig_fd, lock_fd;
	bool stopping;
} D = { .log_level = LOG_INFO, .inotify_fd = -1, .sig_fd = -1, .lock_fd = -1 };

static const char *level_names[] = { "error", "warn", "info", "debug" };

__attribute__((format(printf, 3, 4))) static void dlog(int level, const char *topic,
						       const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (level > D.log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ spillwayd[%d] %s: ", when, ts.tv_nsec / 1000000, (int)getpid(),
		level_names[level]);
	if (topic)
		fprintf(stderr, "topic %s: ", topic);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int parse_level(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

/* --- config file: "key = value" lines ------------------------------------- */
static int config_load(const char *path, bool at_start)
{
	char line[PATH_MAX + 64], key[64], val[PATH_MAX];
	int lineno = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		dlog(LOG_ERROR, NULL, "cannot read config %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, " %63[a-z_] = %4095s", key, val) != 2) {
			dlog(LOG_ERROR, NULL, "%s:%d: expected 'key = value'", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		if (!strcmp(key, "log_level")) {
			int l = parse_level(val);

			if (l < 0) {
				dlog(LOG_ERROR, NULL, "%s:%d: log_level is error|warn|info|debug", path,
				     lineno);
				fclose(f);
				return -EINVAL;
			}
			D.log_level = l;
		} else if (!strcmp(key, "data_dir")) {
			if (at_start)
				snprintf(D.data_dir, sizeof(D.data_dir), "%s", val);
		} else if (!strcmp(key, "shm_dir")) {
			if (at_start)
				snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", val);
		} else {
			dlog(LOG_WARN, NULL, "%s:%d: unknown key '%s' ignored", path, lineno, key);
		}
	}
	fclose(f);
	return 0;
}

/* --- topics ----------------------------------------------------------------- */
static struct dtopic *topic_find(const char *name)
{
	for (int i = 0; i < D.ntopics; i++)
		if (!strcmp(D.topics[i]->name, name))
			return D.topics[i];
	return NULL;
}

static void topic_detach(struct dtopic *dt, const char *why)
{
	dlog(LOG_INFO, dt->name, "detaching (%s); spilled up to %llu", why,
	     dt->s ? (unsigned long long)dt->s->spilled : 0ull);
	spill_stream_close(dt->s);
	spw_topic_close(dt->t);
	for (int i = 0; i < D.ntopics; i++) {
		if (D.topics[i] == dt) {
			D.topics[i] = D.topics[--D.ntopics];
			break;
		}
	}
	free(dt);
}

/* Settings for a ring found in shm: topic.conf when present, else made from
 * the ring's header. A conf that disagrees with a ring on an existing disk
 * log is refused (the segments would not match). */
static int topic_settings(struct dtopic *dt, const struct seg_recovery *rec, struct topic_conf *c)
{
	int r = seg_conf_load(dt->dir, c);

	if (r && r != -ENOENT) {
		dlog(LOG_ERROR, dt->name, "%s/%s: unreadable (%s)", dt->dir, SEG_CONF_NAME,
		     strerror(-r));
		return r;
	}
	if (!r && (c->ring_bytes != dt->t->ring_bytes ||
		   c->segment_bytes != dt->t->segment_bytes) && !rec->empty) {
		dlog(LOG_ERROR, dt->name,
		     "ring (%llu / segment %llu bytes) does not match the disk log's settings "
		     "(%llu / %llu): not spilling it",
		     (unsigned long long)dt->t->ring_bytes, (unsigned long long)dt->t->segment_bytes,
		     (unsigned long long)c->ring_bytes, (unsigned long long)c->segment_bytes);
		return -EINVAL;
	}
	c->ring_bytes = dt->t->ring_bytes;
	c->segment_bytes = dt->t->segment_bytes;
	c->max_record = dt->t->max_record;
	c->no_spill = dt->t->flags & SPW_TOPIC_NO_SPILL;
	return r == -ENOENT ? seg_conf_save(dt->dir, c) : 0;
}

/* Rings another daemon owns: said once per ring file, not at every rescan. */
static struct {
	char name[SPW_NAME_MAX + 1];
	ino_t ino;
} refused[MAX_TOPICS];
static int nrefused;

static bool refused_before(const char *name, ino_t ino)
{
	for (int i = 0; i < nrefused; i++)
		if (!strcmp(refused[i].name, name)) {
			bool same = refused[i].ino == ino;

			refused[i].ino = ino;
			return same;
		}
	if (nrefused < MAX_TOPICS) {
		snprintf(refused[nrefused].name, sizeof(refused[nrefused].name), "%s", name);
		refused[nrefused++].ino = ino;
	}
	return false;
}

static void refused_forget(const char *name)
{
	for (int i = 0; i < nrefused; i++)
		if (!strcmp(refused[i].name, name)) {
			refused[i] = refused[--nrefused];
			return;
		}
}

static void topic_attach(const char *name)
{
	struct spw_topic_info in;
	struct seg_recovery rec;
	struct topic_conf conf;
	struct dtopic *dt;
	char path[PATH_MAX + 64], err[PATH_MAX + 128] = "";
	struct stat st;
	uint64_t start;
	uint32_t owner = 0;
	int r;

	if (spw_topic_name_check(name) || topic_find(name) || D.ntopics == MAX_TOPICS)
		return;
	dt = calloc(1, sizeof(*dt));
	if (!dt)
		return;
	snprintf(dt->name, sizeof(dt->name), "%s", name);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.ring", D.shm_dir, name) >= sizeof(path) ||
	    seg_lstat(path, &st))
		goto fail_free;
	dt->ino = st.st_ino;
	r = spw_topic_open(D.shm_dir, name, 0, &dt->t);
	if (r) {
		dlog(LOG_ERROR, name, "cannot map %s: %s", path, strerror(-r));
		goto fail_free;
	}
	/* A ring of another user in our shm dir is not ours to write. */
	{
		struct stat rs;

		if (fstat(dt->t->fd, &rs) || rs.st_uid != geteuid()) {
			if (!refused_before(name, st.st_ino))
				dlog(LOG_ERROR, name, "%s is owned by uid %u, not by this daemon's user: "
				     "not attaching (remove it, or create topics as uid %u)",
				     path, (unsigned)rs.st_uid, (unsigned)geteuid());
			goto fail_close;
		}
	}
	/* One daemon per ring, whatever its data dir: before anything here
	 * touches the ring or the disk log. */
	r = spwd_own(dt->t, &owner);
	if (r) {
		if (refused_before(name, st.st_ino))
			goto fail_close;
		if (r == -EBUSY)
			dlog(LOG_ERROR, name,
			     "%s is spilled by another spillwayd (pid %u%s): not attaching; stop "
			     "that daemon or give this one another shm dir",
			     path, owner, owner ? "" : ": not visible here, another PID namespace?");
		else
			dlog(LOG_ERROR, name, "%s: cannot take ownership: %s", path, strerror(-r));
		goto fail_close;
	}
	if (seg_topic_dir(dt->dir, sizeof(dt->dir), D.data_dir, name) ||
	    ((r = seg_mkdir(dt->dir, 0700)) != 0 && r != -EEXIST)) {
		dlog(LOG_ERROR, name, "cannot create %s: %s", dt->dir, strerror(-r));
		goto fail_close;
	}
	{
		char why[PATH_MAX + 200];

		if (seg_dir_check_link(dt->dir, false, why, sizeof(why))) {
			if (!refused_before(name, st.st_ino))
				dlog(LOG_ERROR, name, "not attaching: %s", why);
			goto fail_close;
		}
	}
	r = seg_recover(dt->dir, dt->t->ring_bytes, dt->t->segment_bytes, &rec, err, sizeof(err));
	if (r) {
		dlog(LOG_ERROR, name, "%s", err);
		goto fail_close;
	}
	if (topic_settings(dt, &rec, &conf))
		goto fail_close;
	r = ring_reclaim_repair(dt->t);
	if (r < 0) {
		dlog(LOG_ERROR, name, "the ring's limit is past its reclaim bound: corrupt header");
		goto fail_close;
	}
	if (r > 0)
		dlog(LOG_WARN, name, "finished a reclaim a previous daemon left half done");
	spw_topic_info(dt->t, &in);
	start = in.reclaimed;
	if (!rec.empty) {
		if (rec.truncated)
			dlog(LOG_WARN, name, "cut a torn tail of %llu bytes; the log ends at %llu",
			     (unsigned long long)rec.truncated, (unsigned long long)rec.end);
		if (rec.idx_rebuilt)
			dlog(LOG_WARN, name,
			     "the last segment's index was empty, damaged or unreadable (a crash "
			     "right after a roll, or a bad sector): rebuilt it from the segment's "
			     "records");
		if (rec.lost_durable)
			dlog(LOG_ERROR, name,
			     "%llu bytes below the durable checkpoint %llu are gone from the last "
			     "segment (the file is shorter than its index says: disk damage or a "
			     "foreign write); the log ends at %llu",
			     (unsigned long long)rec.lost_durable, (unsigned long long)rec.checkpoint,
			     (unsigned long long)rec.end);
		if (rec.bad_ranges)
			dlog(LOG_ERROR, name,
			     "%llu range(s) of the last segment fail their CRC below the durable "
			     "checkpoint %llu (the first: positions %llu..%llu): kept, not cut; "
			     "readers get -EBADMSG there (skip with consume/replay --skip-corrupt or "
			     "SPW_READER_SKIP_CORRUPT), `spillway verify` lists them",
			     (unsigned long long)rec.bad_ranges, (unsigned long long)rec.checkpoint,
			     (unsigned long long)rec.bad_from, (unsigned long long)rec.bad_to);
		if (rec.end > in.tail) {
			dlog(LOG_ERROR, name,
			     "the disk log ends at %llu but the ring's tail is %llu: positions would "
			     "be reused; recreate the ring at the log's end (delete it and restart "
			     "spillwayd)",
			     (unsigned long long)rec.end, (unsigned long long)in.tail);
			goto fail_close;
		}
		if (rec.end < in.reclaimed) {
			dlog(LOG_ERROR, name,
			     "bytes %llu..%llu were reclaimed from the ring but are not on disk: "
			     "recording them as an aborted gap",
			     (unsigned long long)rec.end, (unsigned long long)in.reclaimed);
			r = seg_fill_gap(dt->dir, dt->t->ring_bytes, dt->t->segment_bytes, rec.end,
					 in.reclaimed);
			if (r) {
				dlog(LOG_ERROR, name, "writing the gap: %s", strerror(-r));
				goto fail_close;
			}
		} else {
			start = rec.end;
		}
	}
	spwd_set_disk_damage(dt->t, rec.bad_ranges);
	r = spill_stream_open(&D.w, dt->t, dt->dir, &conf, start, &dt->s);
	if (r) {
		dlog(LOG_ERROR, name, "cannot start spilling: %s", strerror(-r));
		goto fail_close;
	}
	spwd_heartbeat(dt->t, (uint32_t)getpid());
	refused_forget(name);
	D.topics[D.ntopics++] = dt;
	dlog(LOG_INFO, name, "attached: ring %llu bytes, spilling from %llu%s",
	     (unsigned long long)dt->t->ring_bytes, (unsigned long long)start,
	     conf.no_spill ? " (no-spill: reclaim only)" : "");
	return;
fail_close:
	spw_topic_close(dt->t);
fail_free:
	free(dt);
}

/* After a reboot (ring gone, data kept): a new ring continues at the end of
 * the disk log; a torn tail that was cut becomes an aborted gap, so no
 * position is ever reused. */
static void topic_restore(const char *name)
{
	char dir[PATH_MAX], ring[PATH_MAX + 64], err[PATH_MAX + 128] = "";
	struct spw_topic_config cfg = { 0 };
	struct seg_recovery rec;
	struct topic_conf conf;
	struct stat st;
	uint64_t start = 0;
	int r;

	if (spw_topic_name_check(name) || seg_topic_dir(dir, sizeof(dir), D.data_dir, name))
		return;
	if ((size_t)snprintf(ring, sizeof(ring), "%s/%s.ring", D.shm_dir, name) >= sizeof(ring) ||
	    seg_lstat(ring, &st) != -ENOENT || seg_conf_load(dir, &conf))
		return;
	{
		/* Not a dir of ours: do not make a ring from what it says. */
		char why[PATH_MAX + 200];

		if (seg_dir_check_link(dir, false, why, sizeof(why))) {
			dlog(LOG_ERROR, name, "not recreating the ring: %s", why);
			return;
		}
	}
	r = seg_recover(dir, conf.ring_bytes, conf.segment_bytes, &rec, err, sizeof(err));
	if (r) {
		dlog(LOG_ERROR, name, "%s", err);
		return;
	}
	if (!rec.empty) {
		start = rec.end;
		if (rec.high > rec.end) {
			dlog(LOG_WARN, name,
			     "torn tail %llu..%llu cut; recorded as an aborted gap (positions are "
			     "never reused)",
			     (unsigned long long)rec.end, (unsigned long long)rec.high);
			r = seg_fill_gap(dir, conf.ring_bytes, conf.segment_bytes, rec.end, rec.high);
			if (r) {
				dlog(LOG_ERROR, name, "writing the gap: %s", strerror(-r));
				return;
			}
			start = rec.high;
		}
	}
	cfg.ring_bytes = conf.ring_bytes;
	cfg.segment_bytes = conf.segment_bytes;
	cfg.max_record = conf.max_record;
	cfg.max_producers = conf.max_producers;
	cfg.mode = conf.mode;
	cfg.flags = conf.no_spill ? SPW_TOPIC_NO_SPILL : 0;
	cfg.start_position = start;
	r = spw_topic_create(D.shm_dir, name, &cfg);
	if (r && r != -EEXIST)
		dlog(LOG_ERROR, name, "cannot recreate the ring: %s", strerror(-r));
	else if (!r) {
		struct stat ds;

		/* A topic shared with a group gets its ring back with that group. */
		if (seg_lstat(dir, &ds) == 0 && (ds.st_mode & 0070) && ds.st_gid != getegid() &&
		    chown(ring, (uid_t)-1, ds.st_gid))
			dlog(LOG_WARN, name, "cannot give %s to group %u: %s", ring,
			     (unsigned)ds.st_gid, strerror(errno));
		dlog(LOG_INFO, name, "ring recreated after restart; the log continues at %llu",
		     (unsigned long long)start);
	}
}

static void scan_data_dir(void)
{
	DIR *d = opendir(D.data_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			topic_restore(de->d_name);
	closedir(d);
}

static bool ring_name(const char *file, char *name)
{
	size_t n = strlen(file);

	if (n <= 5 || n - 5 > SPW_NAME_MAX || strcmp(file + n - 5, ".ring"))
		return false;
	memcpy(name, file, n - 5);
	name[n - 5] = '\0';
	return spw_topic_name_check(name) == 0;
}

/* Attach new rings, detach deleted or replaced ones. */
static void rescan_shm(void)
{
	char name[SPW_NAME_MAX + 1], path[PATH_MAX + 64];
	DIR *d;
	struct dirent *de;
	struct stat st;

	for (int i = D.ntopics - 1; i >= 0; i--) {
		struct dtopic *dt = D.topics[i];

		if ((size_t)snprintf(path, sizeof(path), "%s/%s.ring", D.shm_dir, dt->name) >=
			    sizeof(path) ||
		    stat(path, &st) || st.st_ino != dt->ino)
			topic_detach(dt, "ring deleted");
	}
	d = opendir(D.shm_dir);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (ring_name(de->d_name, name))
			topic_attach(name);
	closedir(d);
}

static void drain_inotify(void)
{
	char buf[8192] __attribute__((aligned(8)));
	bool changed = false;

	for (;;) {
		ssize_t n = read(D.inotify_fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		changed = true;
	}
	if (changed)
		rescan_shm();
}

/* --- retention --------------------------------------------------------------- */
static void delete_segment(struct dtopic *dt, uint64_t base, const char *why)
{
	char p[PATH_MAX];

	if (!seg_file_path(p, sizeof(p), dt->dir, base, "seg"))
		seg_unlink(p);
	if (!seg_file_path(p, sizeof(p), dt->dir, base, "idx"))
		seg_unlink(p);
	dlog(LOG_INFO, dt->name, "retention: deleted segment %020llu (%s)", (unsigned long long)base,
	     why);
}

static void retention(struct dtopic *dt)
{
	const struct topic_conf *c = &dt->s->conf;
	uint64_t *bases, active = dt->s->spilled - dt->s->spilled % c->segment_bytes, total = 0;
	uint64_t now = ring_realtime_ns();
	size_t n, i;
	char p[PATH_MAX];
	struct stat st;

	if (c->no_spill || seg_list(dt->dir, &bases, &n))
		return;
	for (i = 0; i < n; i++)
		if (!seg_file_path(p, sizeof(p), dt->dir, bases[i], "seg") && !seg_lstat(p, &st))
			total += (uint64_t)st.st_size;
	for (i = 0; i < n && bases[i] < active; i++) {
		struct seg_idx_hdr h;
		struct seg_idx_entry *e;
		int good;
		bool old = false, big = c->retention_bytes && total > c->retention_bytes;

		if (c->retention_ms && !seg_file_path(p, sizeof(p), dt->dir, bases[i], "idx")) {
			good = seg_idx_load(p, &h, &e);
			if (good > 0)
				old = e[good - 1].max_ts + c->retention_ms * 1000000ull < now;
			free(e);
		}
		if (!old && !big)
			break;
		if (!seg_file_path(p, sizeof(p), dt->dir, bases[i], "seg") && !seg_lstat(p, &st))
			total -= (uint64_t)st.st_size < total ? (uint64_t)st.st_size : total;
		delete_segment(dt, bases[i], old ? "age" : "size");
	}
	free(bases);
}

/* --- main ------------------------------------------------------------------------ */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: spillwayd [--data-dir DIR] [--shm-dir DIR] [--foreground]\n"
		"                 [--log-level error|warn|info|debug] [--config FILE]\n"
		"Spills every Spillway topic's shared-memory ring to segment files.\n"
		"  --data-dir DIR   segments (env SPILLWAY_DATA_DIR; default /var/lib/spillway,\n"
		"                   or $XDG_STATE_HOME/spillway when not root)\n"
		"  --shm-dir DIR    rings (env SPILLWAY_SHM_DIR; default /dev/shm/spillway)\n"
		"  --foreground     do not detach (logs go to stderr either way)\n"
		"  --config FILE    'key = value' lines: data_dir, shm_dir, log_level\n"
		"Signals: TERM/INT spill everything, fdatasync, exit 0; HUP rereads the config.\n");
}

static void default_dirs(void)
{
	const char *e;

	if (!D.data_dir[0]) {
		e = getenv("SPILLWAY_DATA_DIR");
		if (e && *e)
			snprintf(D.data_dir, sizeof(D.data_dir), "%s", e);
		else if (geteuid() == 0)
			snprintf(D.data_dir, sizeof(D.data_dir), "/var/lib/spillway");
		else if ((e = getenv("XDG_STATE_HOME")) && *e)
			snprintf(D.data_dir, sizeof(D.data_dir), "%s/spillway", e);
		else
			snprintf(D.data_dir, sizeof(D.data_dir), "%s/.local/state/spillway",
				 getenv("HOME") ? getenv("HOME") : "/tmp");
	}
	if (!D.shm_dir[0])
		snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", spw_shm_dir(NULL));
}

static int take_lock(void)
{
	char path[PATH_MAX + 32], pid[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/.spillwayd.lock", D.data_dir);
	fd = seg_open_file(path, O_RDWR | O_CREAT, 0644, true);
	if (fd < 0) {
		dlog(LOG_ERROR, NULL, "cannot open lock %s: %s", path, strerror(-fd));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr,
			"spillwayd: another spillwayd (pid %s) already serves %s; one per data dir\n",
			pid[0] ? pid : "?", D.data_dir);
		close(fd);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0)
		dlog(LOG_WARN, NULL, "cannot write pid to %s", path);
	D.lock_fd = fd;
	return 0;
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;

	while (read(D.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			dlog(LOG_INFO, NULL, "SIGHUP: rereading configuration");
			if (D.config[0])
				config_load(D.config, false);
			for (int i = 0; i < D.ntopics; i++) {
				struct topic_conf c;
				struct dtopic *dt = D.topics[i];

				if (seg_conf_load(dt->dir, &c) == 0) {
					dt->s->conf.flush_ms = c.flush_ms;
					dt->s->conf.flush_bytes = c.flush_bytes;
					dt->s->conf.retention_ms = c.retention_ms;
					dt->s->conf.retention_bytes = c.retention_bytes;
					dt->s->conf.unblock_ms = c.unblock_ms;
				}
			}
		} else if (!D.stopping) {
			dlog(LOG_INFO, NULL, "signal %d: spilling everything, then exiting",
			     (int)si.ssi_signo);
			D.stopping = true;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "shm-dir", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t last_rescan = 0, last_beat = 0, last_retention = 0, stop_since = 0;
	int64_t idle_ns = 50000;
	bool failed = false;
	int c, lvl = -1, r;
	sigset_t mask;

	spill_log = dlog;
	while ((c = getopt_long(argc, argv, "d:s:fl:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': snprintf(D.data_dir, sizeof(D.data_dir), "%s", optarg); break;
		case 's': snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", optarg); break;
		case 'f': D.foreground = true; break;
		case 'l':
			lvl = parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "spillwayd: --log-level is error|warn|info|debug\n");
				return 2;
			}
			break;
		case 'c': snprintf(D.config, sizeof(D.config), "%s", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (D.config[0]) {
		char dd[PATH_MAX], sd[PATH_MAX];

		snprintf(dd, sizeof(dd), "%s", D.data_dir);
		snprintf(sd, sizeof(sd), "%s", D.shm_dir);
		if (config_load(D.config, true))
			return 1;
		if (dd[0]) /* the command line wins over the file */
			snprintf(D.data_dir, sizeof(D.data_dir), "%s", dd);
		if (sd[0])
			snprintf(D.shm_dir, sizeof(D.shm_dir), "%s", sd);
	}
	if (lvl >= 0)
		D.log_level = lvl;
	default_dirs();
	if ((r = ring_mkdir_p(D.data_dir, 0700)) || (r = ring_mkdir_p(D.shm_dir, 0700))) {
		fprintf(stderr, "spillwayd: cannot create %s or %s: %s\n", D.data_dir, D.shm_dir,
			strerror(-r));
		return 1;
	}
	/* Both must be ours and closed to other users: whoever can write there
	 * could plant links or files for this daemon (often root) to open. */
	{
		char why[PATH_MAX + 200];

		if (seg_dir_check(D.data_dir, why, sizeof(why)) ||
		    seg_dir_check(D.shm_dir, why, sizeof(why))) {
			fprintf(stderr, "spillwayd: refusing to start: %s\n", why);
			return 1;
		}
	}
	/* Held open from here on: every file below them is reached from these
	 * fds, never through a symlink (spill/files.c). */
	if ((r = seg_trust_root(D.data_dir)) || (r = seg_trust_root(D.shm_dir))) {
		fprintf(stderr, "spillwayd: cannot open %s or %s: %s\n", D.data_dir, D.shm_dir,
			strerror(-r));
		return 1;
	}
	if (take_lock())
		return 1;
	if (!D.foreground) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid > 0)
			return 0;
		setsid();
		/* flock is shared with the child through the open file. */
		char pidbuf[32];

		snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
		if (ftruncate(D.lock_fd, 0) || pwrite(D.lock_fd, pidbuf, strlen(pidbuf), 0) < 0)
			dlog(LOG_WARN, NULL, "cannot write pid to the lock file");
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			close(nul);
		}
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	D.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	D.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (D.inotify_fd >= 0 &&
	    inotify_add_watch(D.inotify_fd, D.shm_dir,
			      IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
		dlog(LOG_WARN, NULL, "inotify on %s: %s (falling back to rescans)", D.shm_dir,
		     strerror(errno));
	r = spill_writer_init(&D.w, 256, MAX_TOPICS);
	if (r) {
		dlog(LOG_ERROR, NULL, "io_uring setup failed: %s", strerror(-r));
		return 1;
	}
	dlog(LOG_INFO, NULL, "started: data %s, shm %s, io_uring (fixed files %s, fixed buffers %s)",
	     D.data_dir, D.shm_dir, D.w.fixed_files ? "yes" : "no", D.w.fixed_bufs ? "yes" : "no");
	scan_data_dir();
	rescan_shm();

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
		for (int i = 0; i < D.ntopics; i++) {
			work += spill_stream_pump(D.topics[i]->s, now, D.stopping) > 0;
			if (D.stopping)
				drained &= spill_stream_drained(D.topics[i]->s);
		}
		if (now - last_beat > 100000000ull) {
			for (int i = 0; i < D.ntopics; i++)
				spwd_heartbeat(D.topics[i]->t, (uint32_t)getpid());
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
	while (D.ntopics)
		topic_detach(D.topics[D.ntopics - 1], "shutting down");
	spill_writer_exit(&D.w);
	dlog(LOG_INFO, NULL, "stopped");
	return failed || spill_durability_failed ? 1 : 0;
}
