/* SPDX-License-Identifier: MIT */
/*
 * topics.c - the topics spillwayd spills: discovery (inotify on the shm dir and a
 * rescan), attach (ownership, trust checks, recovery, the stream), rings
 * recreated from the data dir after a restart, detach.
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
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- topics ----------------------------------------------------------------- */
struct dtopic *topic_find(const char *name)
{
	for (int i = 0; i < D.ntopics; i++)
		if (!strcmp(D.topics[i]->name, name))
			return D.topics[i];
	return NULL;
}

void topic_detach(struct dtopic *dt, const char *why)
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
	unsigned bad = 0;
	int r = seg_conf_load_why(dt->dir, c, &bad);

	if (r && r != -ENOENT) {
		if (bad)
			dlog(LOG_ERROR, dt->name, "%s/%s line %u: not \"key = value\" with a "
			     "value it can read (sizes like 64M, durations like 7d, no blanks "
			     "inside; a # comment may follow): not attaching", dt->dir, SEG_CONF_NAME,
			     bad);
		else
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
	if (r == -ENOENT) {
		int w = seg_conf_save(dt->dir, c);

		if (w)
			dlog(LOG_ERROR, dt->name, "cannot write %s/%s: %s: not attaching (retried)",
			     dt->dir, SEG_CONF_NAME, strerror(-w));
		return w;
	}
	return r;
}

/* Rings refused (another daemon owns them, a header that does not check
 * out, a reclaim bound past any gap we fill): said once per ring file, not
 * at every rescan. An entry goes when its ring attaches or is gone
 * (refused_prune). */
static struct {
	char name[SPW_NAME_MAX + 1];
	/* The errors the last attempt said (CRC32C of each; topic_error_said)
	 * on ring file said_ino and the topic dir's files as said_stamp: the
	 * same words are not logged again while only the ring's counters move
	 * (producers writing into a refused ring); other words, another ring
	 * file or a change in the topic dir are. */
	ino_t said_ino;
	uint64_t said_stamp;
	uint32_t said[8], now[8];
	int nsaid, nnow;
	char why[SEG_REFUSED_WHY]; /* the last reason said ("" none), published */
	bool restoring;        /* its ring could not be made again (topic_restore):
				* kept while its topic dir is there, not its ring */
	bool settled;          /* refused after recovery, on exactly this: */
	struct attach_key {
		uint64_t dev, ino; /* the ring file, */
		uint64_t ring_bytes, segment_bytes, start_position, tail, reclaimed, limit;
		uint64_t disk;     /* the topic dir's files (seg_dir_stamp) */
	} key;
} refused[MAX_TOPICS];
static int nrefused;

/* name's entry, made when missing (-1: the table is full). */
static int refused_entry(const char *name)
{
	for (int i = 0; i < nrefused; i++)
		if (!strcmp(refused[i].name, name))
			return i;
	if (nrefused == MAX_TOPICS)
		return -1;
	memset(&refused[nrefused], 0, sizeof(refused[nrefused]));
	snprintf(refused[nrefused].name, sizeof(refused[nrefused].name), "%s", name);
	return nrefused++;
}

/* The topic being attached (its ring file's inode), and the last error
 * said about it meanwhile: its refusal's reason (refused_note). */
static const char *attaching;
static ino_t attaching_ino;
static uint64_t attaching_stamp;
static char attach_why[SEG_REFUSED_WHY];

static void attach_begin(const char *name, ino_t ino)
{
	char dir[PATH_MAX];
	int i = refused_entry(name);

	attaching = name;
	attaching_ino = ino;
	attaching_stamp = 0;
	if (!seg_topic_dir(dir, sizeof(dir), D.data_dir, name))
		seg_dir_stamp(dir, &attaching_stamp);
	attach_why[0] = '\0';
	if (i >= 0)
		refused[i].nnow = 0;
}

bool topic_error_said(const char *topic, const char *msg)
{
	uint32_t h = seg_crc32c(0, msg, strlen(msg));
	bool again = false;
	int i;

	if (!attaching || strcmp(topic, attaching))
		return false;
	if ((i = refused_entry(topic)) < 0) {
		/* The table is full (over MAX_TOPICS refused rings): say it once,
		 * not each ring's refusal at every rescan. */
		static bool full_said;

		if (!full_said)
			dlog(LOG_WARN, NULL, "more than %d rings refused: their refusals are no longer "
			     "logged (remove the rings that should not be there)", MAX_TOPICS);
		full_said = true;
		return true;
	}
	snprintf(attach_why, sizeof(attach_why), "%s", msg);
	if (refused[i].said_ino == attaching_ino && refused[i].said_stamp == attaching_stamp)
		for (int k = 0; k < refused[i].nsaid && !again; k++)
			again = refused[i].said[k] == h;
	if (refused[i].nnow < 8)
		refused[i].now[refused[i].nnow++] = h;
	return again;
}

/* <data>/.spillwayd.refused afresh: a line "name<TAB>reason" per refused
 * ring with a reason, so that `spillway stat` can say why a topic is not
 * attached (tools/topics.c cli_refusal). Advisory: replaced whole
 * (seg_file_replace), not synced; a failure is logged once and changes
 * nothing else. */
void refused_publish(void)
{
	static bool failed;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	int r = -ENOMEM;

	if (f) {
		for (int i = 0; i < nrefused; i++) {
			if (!refused[i].why[0])
				continue;
			/* One line each: no tab or control byte inside a reason. */
			for (char *c = refused[i].why; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = ' ';
			fprintf(f, "%s\t%s\n", refused[i].name, refused[i].why);
		}
		if (fclose(f) == 0)
			/* 0644, as the pid file: who may see the daemon runs may
			 * see why it refused a topic (the data dir's mode rules). */
			r = seg_file_replace(D.data_dir, SEG_REFUSED_NAME, buf, n, false, 0644);
		free(buf);
	}
	if (r && !failed)
		dlog(LOG_WARN, NULL, "cannot write %s/%s (why topics are not attached, for the "
		     "CLI): %s", D.data_dir, SEG_REFUSED_NAME, strerror(-r));
	failed = r != 0;
}

/* Forget the refusals of rings that are gone from the shm dir. */
static void refused_prune(void)
{
	char path[PATH_MAX + 64];
	struct stat st;
	bool said = false;

	for (int i = nrefused - 1; i >= 0; i--)
		if (refused[i].restoring
			    ? (seg_topic_dir(path, sizeof(path), D.data_dir, refused[i].name) ||
			       seg_lstat(path, &st) == -ENOENT)
			    : ((size_t)snprintf(path, sizeof(path), "%s/%s.ring", D.shm_dir,
						refused[i].name) < sizeof(path) &&
			       seg_lstat(path, &st) == -ENOENT)) {
			said |= refused[i].why[0] != '\0';
			refused[i] = refused[--nrefused];
		}
	if (said)
		refused_publish();
}

static void refused_forget(const char *name)
{
	for (int i = 0; i < nrefused; i++)
		if (!strcmp(refused[i].name, name)) {
			bool said = refused[i].why[0] != '\0';

			refused[i] = refused[--nrefused];
			if (said)
				refused_publish();
			return;
		}
}

/* An attach of name failed: keep what was said as its reason (a refusal
 * said before and silent now keeps the reason it had). */
static void refused_note(const char *name)
{
	int i = refused_entry(name);

	if (i < 0)
		return;
	/* A settled attempt says nothing (attach_settled): what was said
	 * before stays what is not said again. */
	if (refused[i].nnow) {
		memcpy(refused[i].said, refused[i].now, sizeof(refused[i].said));
		refused[i].nsaid = refused[i].nnow;
		refused[i].said_ino = attaching_ino;
		refused[i].said_stamp = attaching_stamp;
	}
	if (!attach_why[0] || !strcmp(refused[i].why, attach_why))
		return;
	snprintf(refused[i].why, sizeof(refused[i].why), "%s", attach_why);
	refused_publish();
}

/* What an attach decides on once it has claimed the ring: the ring file,
 * its header's bounds and the topic dir's files. 0, or -errno (no key: the
 * attach is then never settled). */
static int attach_key_of(const struct dtopic *dt, const struct stat *st, struct attach_key *k)
{
	struct spw_topic_info in;

	memset(k, 0, sizeof(*k));
	spw_topic_info(dt->t, &in);
	k->dev = (uint64_t)st->st_dev;
	k->ino = (uint64_t)st->st_ino;
	k->ring_bytes = in.ring_bytes;
	k->segment_bytes = in.segment_bytes;
	k->start_position = in.start_position;
	k->tail = in.tail;
	k->reclaimed = in.reclaimed;
	k->limit = in.limit;
	return seg_dir_stamp(dt->dir, &k->disk);
}

/* An attach refused after recovery on this very key: it would be refused
 * again, after recovery's CRC pass over the last segment (tens of ms a
 * second for a 1 GiB segment) and the same message. */
static bool attach_settled(const char *name, const struct attach_key *k)
{
	for (int i = 0; i < nrefused; i++)
		if (!strcmp(refused[i].name, name))
			return refused[i].settled && !memcmp(&refused[i].key, k, sizeof(*k));
	return false;
}

/* Errors that may pass with nothing changed in the ring or the disk log
 * (memory, space, a device's bad moment, a file system remounted writable):
 * retried at every rescan. */
static bool attach_transient(int err)
{
	return err == -ENOMEM || err == -ENOSPC || err == -EDQUOT || err == -EIO || err == -EINTR ||
	       err == -EAGAIN || err == -EMFILE || err == -ENFILE || err == -EBUSY || err == -EROFS;
}

/* The attach of name was refused with err after recovery. Settled (not
 * tried again until the ring file, its bounds or the topic dir's files
 * change) when err is no passing one and nothing changed while it ran:
 * before is the key from before recovery, which may itself have cut or
 * rebuilt files (then the next rescan runs it once more and settles). */
static void attach_refused(const struct dtopic *dt, const struct stat *st,
			   const struct attach_key *before, int before_ok, int err)
{
	struct attach_key after;
	int i;

	if (before_ok || attach_transient(err) || attach_key_of(dt, st, &after) ||
	    memcmp(before, &after, sizeof(after)) || (i = refused_entry(dt->name)) < 0)
		return;
	refused[i].settled = true;
	refused[i].key = after;
}

/* The ring and its topic dir are this daemon's to spill: a ring of ours
 * (not another user's), owned by no other spillwayd, and a topic dir of
 * ours that is no symlink. 0, or -1 after saying why (once per ring file). */
static int attach_claim(struct dtopic *dt, const char *path)
{
	char why[PATH_MAX + 200];
	uint32_t owner = 0;
	struct stat rs;
	int r;

	/* A ring of another user in our shm dir is not ours to write. */
	if (fstat(dt->t->fd, &rs) || rs.st_uid != geteuid()) {
		dlog(LOG_ERROR, dt->name, "%s is owned by uid %u, not by this daemon's user: "
			   "not attaching (chown it to uid %u once nothing writes it; removing it "
			   "loses what it holds unspilled)",
			   path, (unsigned)rs.st_uid, (unsigned)geteuid());
		return -1;
	}
	/* One daemon per ring, whatever its data dir: before anything here
	 * touches the ring or the disk log. */
	r = spwd_own(dt->t, &owner);
	if (r) {
		if (r == -EBUSY)
			dlog(LOG_ERROR, dt->name,
				   "%s is spilled by another spillwayd (pid %u%s): not attaching; "
				   "stop that daemon or give this one another shm dir",
				   path, owner,
				   owner ? "" : ": not visible here, another PID namespace?");
		else
			dlog(LOG_ERROR, dt->name, "%s: cannot take ownership: %s", path,
				   strerror(-r));
		return -1;
	}
	if (seg_topic_dir(dt->dir, sizeof(dt->dir), D.data_dir, dt->name) ||
	    ((r = seg_mkdir(dt->dir, 0700)) != 0 && r != -EEXIST)) {
		dlog(LOG_ERROR, dt->name, "cannot create %s: %s", dt->dir, strerror(-r));
		return -1;
	}
	if (seg_dir_check_link(dt->dir, false, why, sizeof(why))) {
		dlog(LOG_ERROR, dt->name, "not attaching: %s", why);
		return -1;
	}
	return 0;
}

/* What recovery did, in the log. */
static void recovery_report(const char *name, const struct seg_recovery *rec)
{
	if (rec->truncated)
		dlog(LOG_WARN, name, "cut a torn tail of %llu bytes; the log ends at %llu",
		     (unsigned long long)rec->truncated, (unsigned long long)rec->end);
	if (rec->idx_rebuilt)
		dlog(LOG_WARN, name,
		     "the last segment's index was empty, damaged or unreadable (a crash "
		     "right after a roll, or a bad sector): rebuilt it from the segment's "
		     "records");
	if (rec->lost_durable)
		dlog(LOG_ERROR, name,
		     "%llu bytes below the durable checkpoint %llu are gone from the last "
		     "segment (the file is shorter than its index says: disk damage or a "
		     "foreign write); the log ends at %llu",
		     (unsigned long long)rec->lost_durable, (unsigned long long)rec->checkpoint,
		     (unsigned long long)rec->end);
	if (rec->bad_ranges)
		dlog(LOG_ERROR, name,
		     "%llu range(s) of the last segment fail their CRC below the durable "
		     "checkpoint %llu (the first: positions %llu..%llu): kept, not cut; "
		     "readers get -EBADMSG there (skip with consume/replay --skip-corrupt or "
		     "SPW_READER_SKIP_CORRUPT), `spillway verify` lists them",
		     (unsigned long long)rec->bad_ranges, (unsigned long long)rec->checkpoint,
		     (unsigned long long)rec->bad_from, (unsigned long long)rec->bad_to);
}

/* The largest gap attach records (seg_fill_gap: a lap a step, each with a
 * CRC pass and two fdatasyncs; seconds): 256 laps, at most 64 GiB, and
 * always at least a segment and a lap, as much as recovery can cut (only
 * the last segment's unverified tail: say an fdatasync error froze the
 * checkpoint while spilling went on). A reclaim bound further past the
 * disk log is a corrupt header, and filling it would hold the daemon's
 * loop, every topic's, for minutes or for ever. */
#define GAP_MAX_LAPS 256u
#define GAP_MAX_BYTES (64ull << 30)

static uint64_t gap_max(const struct spw_topic *t)
{
	uint64_t laps = t->ring_bytes * GAP_MAX_LAPS, most = laps < GAP_MAX_BYTES ? laps : GAP_MAX_BYTES;

	return most > t->segment_bytes + t->ring_bytes ? most : t->segment_bytes + t->ring_bytes;
}

/* A ring made over a kept disk log by another than spillwayd (a C program's
 * spw_topic_create after a reboot) starts where it was told, maybe at 0:
 * below the log's end its positions are the log's, and spilling from the
 * log's end would leave its first records off the disk while their spilled
 * acknowledgements succeed, and readers would read the old records there.
 * The log names the ring that wrote it (<topic>/ring_id: the header's
 * created_ns, never compared as a time); another ring must start at or
 * past the log's end (spillwayd's own topic_restore makes it so). A log
 * without ring_id (older releases) is taken as this ring's. 0, or -errno
 * after saying why. */
static int attach_same_ring(struct dtopic *dt, const struct seg_recovery *rec)
{
	uint64_t id = 0, created = dt->t->hdr->created_ns, start = dt->t->hdr->start_position;
	int r;

	if (rec->empty || start >= rec->end)
		return 0;
	r = seg_ring_id_load(dt->dir, &id);
	if (r == -ENOENT || (!r && id == created))
		return 0;
	if (r) {
		dlog(LOG_ERROR, dt->name, "%s/%s: %s: cannot tell whether this ring wrote the disk "
		     "log; not attaching (remove the file if the ring is the one that wrote it)",
		     dt->dir, SEG_RING_ID_NAME, strerror(-r));
		return r;
	}
	dlog(LOG_ERROR, dt->name,
	     "the ring starts at %llu but another ring wrote the disk log, which ends at %llu "
	     "(%s/%s names it): positions would be reused and this ring's first records would "
	     "never reach disk; not attaching. Remove the ring (spillway topic delete %s "
	     "--keep-log: spillwayd makes it again at the log's end), or create it with a start "
	     "position of %llu or more; only if this very ring wrote the log (a downgrade to a "
	     "release without ring_id and back), remove %s",
	     (unsigned long long)start, (unsigned long long)rec->end, dt->dir, SEG_RING_ID_NAME,
	     dt->name, (unsigned long long)rec->end, SEG_RING_ID_NAME);
	return -EEXIST;
}

/* Before this ring's first byte is spilled: the disk log names it
 * (attach_same_ring), durably, since segments written after it may
 * survive a power loss; a ring_id that cannot be written is removed (a
 * log without one is any ring's) rather than left naming the ring before.
 * 0, or -errno after saying why. */
static int attach_mark_ring(struct dtopic *dt)
{
	uint64_t id = 0, created = dt->t->hdr->created_ns;
	char path[PATH_MAX + 16];
	int r;

	if (seg_ring_id_load(dt->dir, &id) == 0 && id == created)
		return 0;
	r = seg_ring_id_save(dt->dir, created);
	if (!r)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dt->dir, SEG_RING_ID_NAME);
	dlog(LOG_WARN, dt->name, "cannot write %s: %s (removing it: a ring made over this log "
	     "later is then not told from this one)", path, strerror(-r));
	r = seg_unlink(path);
	if (r && r != -ENOENT) {
		dlog(LOG_ERROR, dt->name, "cannot remove %s: %s: not attaching", path, strerror(-r));
		return r;
	}
	return seg_sync_dir(dt->dir) == 0 ? 0 : -EIO;
}

/* Where spilling continues: the end of the recovered disk log, checked
 * against the ring; bytes the ring reclaimed that never reached the disk
 * become an aborted gap (positions are never reused) up to the bounds
 * above. 0 and *start, or -errno after saying why. */
static int attach_start(struct dtopic *dt, const struct seg_recovery *rec, uint64_t *start)
{
	struct spw_topic_info in;
	int r = ring_reclaim_repair(dt->t);

	if (r < 0) {
		spw_topic_info(dt->t, &in);
		dlog(LOG_ERROR, dt->name,
		     "the ring's header is corrupt: its limit %llu is not between its reclaim bound "
		     "%llu and that plus the ring (%llu); nothing in the ring was changed; not "
		     "attached. The disk log is kept: delete the ring and restart spillwayd to "
		     "recreate it at the log's end",
		     (unsigned long long)in.limit, (unsigned long long)in.reclaimed,
		     (unsigned long long)(in.reclaimed + in.ring_bytes));
		return r;
	}
	if (r > 0)
		dlog(LOG_WARN, dt->name, "finished a reclaim a previous daemon left half done");
	spw_topic_info(dt->t, &in);
	*start = in.reclaimed;
	if (rec->empty)
		return 0;
	recovery_report(dt->name, rec);
	if (rec->end > in.tail) {
		dlog(LOG_ERROR, dt->name,
		     "the disk log ends at %llu but the ring's tail is %llu: positions would "
		     "be reused; recreate the ring at the log's end (delete it and restart "
		     "spillwayd)",
		     (unsigned long long)rec->end, (unsigned long long)in.tail);
		return -EBADMSG;
	}
	if (rec->end >= in.reclaimed) {
		*start = rec->end;
		return 0;
	}
	if (in.reclaimed - rec->end > gap_max(dt->t)) {
		dlog(LOG_ERROR, dt->name,
		     "the ring says %llu was reclaimed, %llu bytes past the disk log's end %llu: "
		     "a corrupt ring header, or more lost than attach records as a gap (%llu "
		     "bytes); not attached. The disk log is kept: delete the ring and restart "
		     "spillwayd to recreate it at the log's end",
		     (unsigned long long)in.reclaimed, (unsigned long long)(in.reclaimed - rec->end),
		     (unsigned long long)rec->end, (unsigned long long)gap_max(dt->t));
		return -EBADMSG;
	}
	dlog(LOG_ERROR, dt->name,
	     "bytes %llu..%llu were reclaimed from the ring but are not on disk: "
	     "recording them as an aborted gap",
	     (unsigned long long)rec->end, (unsigned long long)in.reclaimed);
	r = seg_fill_gap(dt->dir, dt->t->ring_bytes, dt->t->segment_bytes, rec->end, in.reclaimed);
	if (r)
		dlog(LOG_ERROR, dt->name, "writing the gap: %s", strerror(-r));
	return r;
}

static void topic_attach(const char *name)
{
	struct seg_recovery rec;
	struct topic_conf conf;
	struct attach_key key;
	struct dtopic *dt;
	char path[PATH_MAX + 64], err[PATH_MAX + 128] = "";
	struct stat st;
	uint64_t start;
	int r, key_r;

	if (spw_topic_name_check(name) || topic_find(name) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s.ring", D.shm_dir, name) >= sizeof(path) ||
	    seg_lstat(path, &st))
		return;
	/* Errors said from here on are this attempt's: its refusal's reason,
	 * and not logged again while the next attempts say the same. */
	attach_begin(name, st.st_ino);
	if (D.ntopics == MAX_TOPICS) {
		dlog(LOG_ERROR, name, "not attaching: this spillwayd spills %d topics, its most; run "
		     "another spillwayd (its own shm and data dirs) for more", MAX_TOPICS);
		attaching = NULL;
		refused_note(name);
		return;
	}
	dt = calloc(1, sizeof(*dt));
	if (!dt) {
		attaching = NULL;
		return;
	}
	snprintf(dt->name, sizeof(dt->name), "%s", name);
	dt->dev = st.st_dev;
	dt->ino = st.st_ino;
	r = spw_topic_open(D.shm_dir, name, 0, &dt->t);
	if (r) {
		dlog(LOG_ERROR, name, "cannot map %s: %s", path, strerror(-r));
		goto fail_free;
	}
	if (attach_claim(dt, path))
		goto fail_close;
	/* Refused on this very ring and disk log before: silent, no recovery. */
	key_r = attach_key_of(dt, &st, &key);
	if (!key_r && attach_settled(name, &key))
		goto fail_close;
	dlog(LOG_DEBUG, name, "recovering the disk log in %s", dt->dir);
	{
		struct spw_topic_info in;

		/* The ring's acknowledged-spilled bound: recovery rebuilds a
		 * short index below it rather than cut (spill/spill.h). */
		spw_topic_info(dt->t, &in);
		r = seg_recover(dt->dir, dt->t->ring_bytes, dt->t->segment_bytes, in.spilled, &rec,
				err, sizeof(err));
	}
	if (r)
		dlog(LOG_ERROR, name, "%s", err);
	else if (!(r = topic_settings(dt, &rec, &conf)) && !(r = attach_same_ring(dt, &rec)))
		r = attach_start(dt, &rec, &start);
	if (r) {
		attach_refused(dt, &st, &key, key_r, r);
		goto fail_close;
	}
	spwd_set_disk_damage(dt->t, rec.bad_ranges);
	if ((r = attach_mark_ring(dt))) {
		attach_refused(dt, &st, &key, key_r, r);
		goto fail_close;
	}
	r = spill_stream_open(&D.w, dt->t, dt->dir, &conf, start, &dt->s);
	if (r) {
		dlog(LOG_ERROR, name, "cannot start spilling: %s", strerror(-r));
		goto fail_close;
	}
	spwd_heartbeat(dt->t, (uint32_t)getpid());
	attaching = NULL;
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
	attaching = NULL;
	refused_note(name);
	{
		int i = refused_entry(name);

		if (i >= 0) /* a ring's refusal now, no more a failed restore's */
			refused[i].restoring = false;
	}
}

/* Give the ring just created at path to group gid, as root: through the
 * file opened without following a symlink and checked to be the daemon's
 * own regular file with one link, never by path (someone who can write the
 * shm dir could swap the name for a link to /etc/shadow in between). */
static int ring_give_group(const char *path, gid_t gid)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		r = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1)
		r = -EPERM;
	else if (fchown(fd, (uid_t)-1, gid))
		r = -errno;
	close(fd);
	return r;
}

/* After a reboot (ring gone, data kept): a new ring continues at the end of
 * the disk log; a torn tail that was cut becomes an aborted gap, so no
 * position is ever reused. */
/* The ring of topic dir `dir` made again at the log's end: 0, or -1 after
 * saying why (the reason published: topic_restore). */
static int restore_ring(const char *name, const char *dir, const char *ring)
{
	char err[PATH_MAX + 128] = "", why[PATH_MAX + 200];
	struct spw_topic_config cfg = { 0 };
	struct seg_recovery rec;
	struct topic_conf conf;
	struct stat ds;
	uint64_t start = 0;
	int r;

	if ((r = seg_conf_load(dir, &conf))) {
		uint64_t *bases = NULL;
		size_t n = 0;

		seg_list(dir, &bases, &n);
		free(bases);
		if (!n)
			return 0; /* no log: not a topic dir to make a ring for */
		dlog(LOG_ERROR, name, "not recreating the ring: %s/%s: %s", dir, SEG_CONF_NAME,
		     r == -EBADMSG ? "a line or value it cannot read" : strerror(-r));
		return -1;
	}
	/* Not a dir of ours: do not make a ring from what it says. */
	if (seg_dir_check_link(dir, false, why, sizeof(why))) {
		dlog(LOG_ERROR, name, "not recreating the ring: %s", why);
		return -1;
	}
	r = seg_recover(dir, conf.ring_bytes, conf.segment_bytes, 0, &rec, err, sizeof(err));
	if (r) {
		dlog(LOG_ERROR, name, "not recreating the ring: %s", err);
		return -1;
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
				dlog(LOG_ERROR, name, "not recreating the ring: writing the gap: %s",
				     strerror(-r));
				return -1;
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
	if (r == -EEXIST)
		return 0; /* made meanwhile (topic create): attached by the rescan */
	if (r) {
		dlog(LOG_ERROR, name, "cannot recreate the ring: %s", strerror(-r));
		return -1;
	}
	/* A topic shared with a group gets its ring back with that group. */
	if (seg_lstat(dir, &ds) == 0 && (ds.st_mode & 0070) && ds.st_gid != getegid() &&
	    (r = ring_give_group(ring, ds.st_gid)))
		dlog(LOG_WARN, name, "cannot give %s to group %u: %s", ring, (unsigned)ds.st_gid,
		     strerror(-r));
	dlog(LOG_INFO, name, "ring made again; the log continues at %llu", (unsigned long long)start);
	return 0;
}

/* A topic dir with a disk log but no ring (after a reboot, or `spillway
 * topic delete --keep-log`): a new ring continues at the end of the disk
 * log; a torn tail that was cut becomes an aborted gap, so no position is
 * ever reused. At start every such dir; on SIGHUP (asked) only those with
 * a <topic>/.remake request, which goes once the ring is made: a ring a
 * program deleted (spw_topic_delete) is not brought back behind its back,
 * nor one `spillway topic delete` is removing with its dir. A failure's
 * reason is published as a refusal's (the CLI says it) until the ring is
 * made or the dir goes (refused_prune). */
static void topic_restore(const char *name, bool asked)
{
	char dir[PATH_MAX], ring[PATH_MAX + 64], mark[PATH_MAX + 16];
	struct stat st;
	int i;

	if (spw_topic_name_check(name) || seg_topic_dir(dir, sizeof(dir), D.data_dir, name) ||
	    (size_t)snprintf(ring, sizeof(ring), "%s/%s.ring", D.shm_dir, name) >= sizeof(ring) ||
	    (size_t)snprintf(mark, sizeof(mark), "%s/%s", dir, SEG_REMAKE_NAME) >= sizeof(mark))
		return;
	if (topic_find(name) || seg_lstat(ring, &st) != -ENOENT) {
		/* It has a ring: a request for one is met (a stale one would
		 * bring back a ring a program deletes later, at a SIGHUP). */
		seg_unlink(mark);
		return;
	}
	if (asked && seg_lstat(mark, &st))
		return;
	attach_begin(name, 0);
	if (restore_ring(name, dir, ring)) {
		attaching = NULL;
		refused_note(name);
		if ((i = refused_entry(name)) >= 0)
			refused[i].restoring = true;
		return;
	}
	attaching = NULL;
	refused_forget(name);
	seg_unlink(mark);
}

void scan_data_dir(bool asked)
{
	DIR *d = opendir(D.data_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			topic_restore(de->d_name, asked);
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
void rescan_shm(void)
{
	char name[SPW_NAME_MAX + 1], path[PATH_MAX + 64];
	DIR *d;
	struct dirent *de;
	struct stat st;

	for (int i = D.ntopics - 1; i >= 0; i--) {
		struct dtopic *dt = D.topics[i];
		int r;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s.ring", D.shm_dir, dt->name) >=
		    sizeof(path))
			continue;
		/* Gone, a link or another file there: detach. Any other error
		 * (out of fds or memory for a moment) proves nothing: keep it. */
		r = seg_lstat(path, &st);
		if ((r == 0 && (st.st_ino != dt->ino || st.st_dev != dt->dev)) || r == -ENOENT ||
		    r == -ELOOP || r == -ENOTDIR)
			topic_detach(dt, "ring deleted or replaced");
	}
	refused_prune();
	d = opendir(D.shm_dir);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (ring_name(de->d_name, name))
			topic_attach(name);
	closedir(d);
}

void drain_inotify(void)
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
