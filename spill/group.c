/* SPDX-License-Identifier: MIT */
/*
 * group.c - consumer group positions: <data>/<topic>/groups/<group>.
 *
 * The file is 32 bytes: u32 magic "SPWG", u32 version 1, u64 position,
 * u64 commit time (ns), u32 reserved, u32 CRC32C of bytes 0-27. It is
 * replaced atomically: written to a temp file, fsync'd, renamed over the old
 * one, then the directory is fsync'd. A torn write leaves either the old or
 * the new file, and a file that fails its CRC reads as -EBADMSG, never as a
 * position. Positions come from a reader (spw_reader_commit), so they are
 * always record boundaries. Beside it, groups/.<group>.reader: the lock
 * the group's one reader holds (membership, below).
 *
 * Every call works through one descriptor of groups/, reached from the data
 * dir without following a link (ring_dir_below: from the held root of the
 * CLI or the daemon, or from a library caller's data dir as named), and
 * makes, opens, renames and links its files relative to it: a groups/ or a
 * file that the topic dir's owner swapped for a symlink is refused (-ELOOP),
 * never written through, also for root using the library. What a file
 * shares (group, mode) and, made by root, whose it is come from that same
 * descriptor (gdir_give), never from a path looked up again.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GROUP_MAGIC 0x47575053u /* "SPWG" */

struct group_file {
	uint32_t magic, version;
	uint64_t position, time_ns;
	uint32_t reserved, crc;
};
_Static_assert(sizeof(struct group_file) == 32, "group file is 32 bytes");

static int group_dir(char *buf, size_t size, const char *data_dir, const char *topic)
{
	char td[PATH_MAX];
	int r = seg_topic_dir(td, sizeof(td), spw_data_dir(data_dir), topic);

	if (r)
		return r;
	if ((size_t)snprintf(buf, size, "%s/groups", td) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* groups/ of a topic, open. */
struct gdir {
	int fd;
	struct stat st;
};

/* A file or dir fd just made (O_EXCL / mkdirat: a new inode, never one
 * planted) in the directory described by dir: shared as it is (its group,
 * mode `shared` when it grants its group access, else `priv`), and made by
 * root in a user's directory, that user's (else only root could use it
 * after; the user could replace it there anyway). Best effort: a failure
 * leaves it private or root's, which refuses access, never grants it. */
static void gdir_give(int fd, const struct stat *dir, unsigned shared, unsigned priv)
{
	bool share = (dir->st_mode & 0070) != 0;

	if (share && dir->st_gid != getegid() && fchown(fd, (uid_t)-1, dir->st_gid)) {
	}
	if (fchmod(fd, share ? shared : priv)) {
	}
	if (geteuid() == 0 && dir->st_uid != 0 && fchown(fd, dir->st_uid, (gid_t)-1)) {
	}
}

/* Why name in dfd could not be opened as a directory with O_NOFOLLOW:
 * -ELOOP for a symlink, -ENOTDIR for anything else that is no dir. */
static int not_dir(int dfd, const char *name, int err)
{
	struct stat st;

	if (err == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		err = ELOOP;
	return -err;
}

/* groups/ of topic (made when missing and make: 02770 with the topic dir's
 * group when that is shared, so every member can commit, else 0700) into
 * g. 0 or -errno (-ENOENT: no groups/ or no topic dir; -ELOOP: a link, at
 * the topic dir or at groups/). */
static int gdir_open(const char *data_dir, const char *topic, bool make, struct gdir *g)
{
	const int how = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	struct stat ts;
	int tfd, r;

	if ((r = spw_topic_name_check(topic)))
		return r;
	tfd = ring_dir_below(spw_data_dir(data_dir), topic, O_PATH);
	if (tfd < 0)
		return tfd;
	g->fd = openat(tfd, "groups", how);
	r = g->fd < 0 ? errno : 0;
	if (r == ENOENT && make && fstat(tfd, &ts) == 0) {
		if (mkdirat(tfd, "groups", 0700) == 0) {
			/* The dir we made, given as the topic dir is, mode set
			 * outright (a setgid topic dir passes its bit on). Only
			 * the topic dir's owner could have put another there
			 * meanwhile: one of root's own in their topic at worst,
			 * given to them with root's files in it left root's. */
			g->fd = openat(tfd, "groups", how);
			r = g->fd < 0 ? errno : 0;
			if (!r && fstat(g->fd, &g->st) == 0 && g->st.st_uid == geteuid())
				gdir_give(g->fd, &ts, 02770, 0700);
		} else if (errno == EEXIST) {
			g->fd = openat(tfd, "groups", how); /* a member's, made meanwhile */
			r = g->fd < 0 ? errno : 0;
		} else {
			r = errno;
		}
	}
	if (r)
		r = not_dir(tfd, "groups", r);
	close(tfd);
	if (!r && fstat(g->fd, &g->st)) {
		r = -errno;
		close(g->fd);
	}
	return r;
}

/* name in g: a regular file, opened with flags (never through a link, nor
 * waiting on a FIFO planted there: O_NONBLOCK for the open only). fd or
 * -errno. */
static int gdir_file(const struct gdir *g, const char *name, int flags, unsigned mode)
{
	struct stat st;
	int fd = openat(g->fd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, (mode_t)mode);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int seg_group_write(const char *data_dir, const char *topic, const char *group, int64_t position)
{
	char tmp[SPW_NAME_MAX + 48];
	struct group_file g = { GROUP_MAGIC, 1, (uint64_t)position, ring_realtime_ns(), 0, 0 };
	struct gdir d;
	int fd, r;

	if (position < 0 || (position & 7) || spw_topic_name_check(group))
		return -EINVAL;
	/* A name per process: two writers that overlap (a lock file replaced
	 * under its holder) never rename each other's half-written file. What
	 * killed commits leave is swept when the group is next joined
	 * (sweep_tmp). */
	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.%d-%llx.tmp", group, (int)getpid(),
			     (unsigned long long)ring_realtime_ns()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((r = gdir_open(data_dir, topic, true, &d)))
		return r;
	g.crc = seg_crc32c(0, &g, offsetof(struct group_file, crc));
	fd = gdir_file(&d, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		close(d.fd);
		return fd;
	}
	gdir_give(fd, &d.st, 0640, 0600);
	errno = 0;
	if (write(fd, &g, sizeof(g)) != (ssize_t)sizeof(g) || fsync(fd))
		r = errno ? -errno : -EIO; /* a short write: no errno */
	close(fd);
	if (!r && renameat(d.fd, tmp, d.fd, group))
		r = -errno;
	if (r)
		unlinkat(d.fd, tmp, 0);
	/* The rename must outlive a crash: a position committed and then
	 * lost would make the group read records twice. */
	else if (fsync(d.fd))
		r = -errno;
	close(d.fd);
	return r;
}

static int group_load(const struct gdir *d, const char *name, int64_t *position)
{
	struct group_file g;
	struct stat st;
	int fd = gdir_file(d, name, O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return fd;
	/* Written only as a whole new file renamed into place: 32 bytes, one
	 * link. More links (a hard link to a file elsewhere, maybe another
	 * user's) or another size is not ours to trust. No link at all is the
	 * file a commit replaced just after we opened it: a whole earlier
	 * commit, as good as a read a moment sooner (a review). */
	if (fstat(fd, &st) || st.st_size != (off_t)sizeof(g) || st.st_nlink > 1) {
		close(fd);
		return -EBADMSG;
	}
	n = read(fd, &g, sizeof(g));
	close(fd);
	if (n != (ssize_t)sizeof(g) || g.magic != GROUP_MAGIC || g.version != 1 ||
	    g.crc != seg_crc32c(0, &g, offsetof(struct group_file, crc)) || (g.position & 7) ||
	    g.position > (uint64_t)INT64_MAX)
		return -EBADMSG;
	*position = (int64_t)g.position;
	return 0;
}

int spw_group_read(const char *data_dir, const char *topic, const char *group, int64_t *position)
{
	struct gdir d;
	int r;

	if (!position || spw_topic_name_check(group))
		return -EINVAL;
	if ((r = gdir_open(data_dir, topic, false, &d)))
		return r;
	r = group_load(&d, group, position);
	close(d.fd);
	return r;
}

int spw_group_list(const char *data_dir, const char *topic, spw_group_fn fn, void *arg)
{
	struct dirent *de;
	struct gdir d;
	int n = 0, r;
	DIR *dir;

	if (!fn)
		return -EINVAL;
	if ((r = gdir_open(data_dir, topic, false, &d)))
		return r == -ENOENT ? 0 : r;
	dir = fdopendir(d.fd);
	if (!dir) {
		r = -errno;
		close(d.fd);
		return r;
	}
	d.fd = dirfd(dir);
	while ((de = readdir(dir))) {
		int64_t pos;

		if (spw_topic_name_check(de->d_name))
			continue; /* ".", "..", temp files */
		r = group_load(&d, de->d_name, &pos);
		n++;
		if (fn(arg, de->d_name, r ? r : pos))
			break;
	}
	closedir(dir);
	return n;
}

/* --- membership ------------------------------------------------------------
 * A group has one reader at a time, as a Kafka partition has one member of a
 * group: the reader holds an OFD write lock on groups/.<group>.reader (a
 * name no group can have: group names never start with a dot) for as long
 * as it is the group's. The kernel drops the lock when the reader closes or
 * its process ends, however it ends (P1: death proven by the kernel, never
 * by a timeout); a stopped reader keeps it. A forked child closes its copy
 * in its fork handler (ring/locks.c), so it never holds the group for its
 * parent once it runs. The file is made whole under a temp name (its mode,
 * group and owner set) and linked into place, so nobody ever opens it half
 * made; it is never removed (removing a held one would let a second reader
 * in: a commit checks that its file is still the one there). */

/* The lock file's name in groups/: the one place of its format. */
#define MEMBER_FMT ".%s.reader"
#define MEMBER_SUFFIX ".reader"

static int member_path(char *path, size_t size, const char *dir, const char *group)
{
	return (size_t)snprintf(path, size, "%s/" MEMBER_FMT, dir, group) >= size ? -ENAMETOOLONG
										  : 0;
}

int spw_group_lock_path(char *buf, size_t size, const char *data_dir, const char *topic,
			const char *group)
{
	char dir[PATH_MAX];
	int r;

	if (!buf || spw_topic_name_check(group))
		return -EINVAL;
	r = group_dir(dir, sizeof(dir), data_dir, topic);
	return r ? r : member_path(buf, size, dir, group);
}

bool seg_group_lock_name(const char *entry, char *group, size_t size)
{
	size_t n = strlen(entry), k = strlen(MEMBER_SUFFIX);

	if (entry[0] != '.' || n < k + 2 || n - k - 1 >= size || strcmp(entry + n - k, MEMBER_SUFFIX))
		return false;
	snprintf(group, size, "%.*s", (int)(n - k - 1), entry + 1);
	return !spw_topic_name_check(group);
}

/* The member lock file `name` in d, made when missing: its descriptor,
 * O_RDWR, or -errno. */
static int member_open(const struct gdir *d, const char *name, bool make)
{
	static _Atomic unsigned seq;
	char tmp[SPW_NAME_MAX + 80];
	int fd = gdir_file(d, name, O_RDWR, 0), r;

	if (fd == -ENOENT && make) {
		/* Unique without a removal of anything: the pid, a count (relaxed:
		 * only this process's names differ by it) and the clock, for
		 * processes of one pid in other pid namespaces. A crash between
		 * this open and the link leaves a harmless .new file. */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s-%d-%u-%llx.new", name, (int)getpid(),
				     atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed),
				     (unsigned long long)ring_monotonic_ns()) >= sizeof(tmp))
			return -ENAMETOOLONG;
		fd = gdir_file(d, tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			return fd;
		/* Shared: every member must be able to lock it; made by root in
		 * a user's topic: that user must be able to lock it after us. */
		gdir_give(fd, &d->st, 0660, 0600);
		r = linkat(d->fd, tmp, d->fd, name, 0) ? -errno : 0;
		unlinkat(d->fd, tmp, 0);
		if (r) {
			close(fd);
			/* Another reader made it meanwhile: theirs. */
			return r == -EEXIST ? gdir_file(d, name, O_RDWR, 0) : r;
		}
	}
	return fd;
}

/* Does name in d still name the file fd has open? 0, or -ENOLCK. */
static int member_same(const struct gdir *d, const char *name, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) || fstatat(d->fd, name, &b, AT_SYMLINK_NOFOLLOW) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ENOLCK;
	return 0;
}

/* groups/ into d and the member lock file's name into name; with make,
 * groups/ made when missing. */
static int member_at(const char *data_dir, const char *topic, const char *group, bool make,
		     struct gdir *d, char *name, size_t size)
{
	if (spw_topic_name_check(group))
		return -EINVAL;
	if ((size_t)snprintf(name, size, MEMBER_FMT, group) >= size)
		return -ENAMETOOLONG;
	return gdir_open(data_dir, topic, make, d);
}

/* Remove the temp files of commits to group that were killed before
 * their rename (".<group>.<pid>-<ns>.tmp"): called by the group's new
 * holder, when no commit of another process should be under way (one whose
 * lock file was replaced under it then fails its rename, -ENOENT). */
static void sweep_tmp(const struct gdir *d, const char *group)
{
	size_t gl = strlen(group);
	struct dirent *de;
	DIR *dir;
	int fd = dup(d->fd);

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		const char *s = de->d_name, *e;

		if (s[0] != '.' || strncmp(s + 1, group, gl) || s[1 + gl] != '.')
			continue;
		s += 2 + gl;
		for (e = s; (*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'f') || *e == '-'; e++)
			;
		if (e > s && !strcmp(e, ".tmp"))
			unlinkat(d->fd, de->d_name, 0);
	}
	closedir(dir);
}

int seg_group_join(const char *data_dir, const char *topic, const char *group,
		   struct ring_held *h)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char name[SPW_NAME_MAX + 16];
	struct gdir d;
	int fd = -1, r;

	h->fd = -1;
	if ((r = member_at(data_dir, topic, group, true, &d, name, sizeof(name))))
		return r;
	/* Held from the open until the descriptor is on the fork list: a
	 * fork() meanwhile waits, so no child inherits a lock it keeps. */
	ring_producers_lock();
	for (int tries = 0; tries < 3; tries++) {
		fd = member_open(&d, name, true);
		if (fd < 0) {
			r = fd;
			break;
		}
		if (fcntl(fd, F_OFD_SETLK, &fl)) {
			r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
		} else if ((r = member_same(&d, name, fd)) == 0) {
			h->fd = fd;
			ring_held_add(h);
			break;
		}
		/* Busy, or the name was removed or replaced before we held it:
		 * a lock on a file nobody else opens proves nothing. */
		close(fd);
		if (r != -ENOLCK)
			break;
		r = -EAGAIN; /* replaced under us each time: try again later */
	}
	ring_producers_unlock();
	if (!r)
		sweep_tmp(&d, group); /* (not under the fork lock: a readdir) */
	close(d.fd);
	return r;
}

void seg_group_leave(struct ring_held *h)
{
	ring_producers_lock();
	ring_held_remove(h);
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	ring_producers_unlock();
}

int seg_group_still_held(const char *data_dir, const char *topic, const char *group,
			 const struct ring_held *h)
{
	char name[SPW_NAME_MAX + 16];
	struct gdir d;
	int r;

	if (h->fd < 0)
		return -ENOLCK;
	if ((r = member_at(data_dir, topic, group, false, &d, name, sizeof(name))))
		return r == -ENOENT ? -ENOLCK : r;
	r = member_same(&d, name, h->fd);
	close(d.fd);
	return r;
}

int seg_group_holder(const char *data_dir, const char *topic, const char *group, uint32_t *pid)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char name[SPW_NAME_MAX + 16];
	struct gdir d;
	int fd, r;

	if (pid)
		*pid = 0;
	if ((r = member_at(data_dir, topic, group, false, &d, name, sizeof(name))))
		return r == -ENOENT ? 0 : r;
	fd = gdir_file(&d, name, O_RDONLY, 0);
	close(d.fd);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	/* Asks, takes nothing: a reader joining meanwhile is not refused. */
	r = fcntl(fd, F_OFD_GETLK, &fl) ? -errno : fl.l_type != F_UNLCK;
	if (r == 1 && pid)
		*pid = ring_file_lock_owner_pid(fd);
	close(fd);
	return r;
}
