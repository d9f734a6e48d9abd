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
 * Each call below works in a scope of its data dir (RING_SCOPED,
 * ring/paths.c): every component under it is opened O_NOFOLLOW, so a
 * groups/ or a file that the topic dir's owner swapped for a symlink is
 * refused (-ELOOP), never written through, also where the data dir is no
 * process-wide trusted root (a library caller's: root's Python reading a
 * user's topic).
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

/* The groups dir of topic into dir (made if missing: 02770 and the topic
 * dir's group when that is shared, so every member can commit; else 0700),
 * the topic dir into td. 0 or -errno. */
static int groups_dir_make(const char *data_dir, const char *topic, char *dir, size_t size,
			   char *td, size_t tdsize)
{
	gid_t gid;
	unsigned mode;
	int r = group_dir(dir, size, data_dir, topic);

	if (r)
		return r;
	snprintf(td, tdsize, "%.*s", (int)(strlen(dir) - strlen("/groups")), dir);
	mode = seg_share_dir_mode(td, &gid);
	if ((r = seg_mkdir(dir, mode)) == 0) {
		struct ring_at at;
		int fd;

		/* Its group, and the mode mkdir's passed through the umask:
		 * best effort, but never through a name swapped for a link
		 * meanwhile (seg_give), which would hand out its target. */
		r = seg_give(dir, true, gid, (int)mode);
		if (r == -ELOOP || r == -EPERM)
			return r;
		/* Made by root in a user's topic: the user's (else only root
		 * could use its groups after this). */
		if (geteuid() == 0 && ring_at_resolve(dir, &at) == 0) {
			fd = openat(at.dfd, at.leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			ring_at_done(&at);
			if (fd >= 0) {
				seg_own_as_topic(fd, td);
				close(fd);
			}
		}
	} else if (r != -EEXIST) {
		return r;
	}
	return 0;
}

int seg_group_write(const char *data_dir, const char *topic, const char *group, int64_t position)
{
	RING_SCOPED(spw_data_dir(data_dir));
	char dir[PATH_MAX], td[PATH_MAX], path[PATH_MAX + SPW_NAME_MAX + 2],
		tmp[PATH_MAX + SPW_NAME_MAX + 32];
	struct group_file g = { GROUP_MAGIC, 1, (uint64_t)position, ring_realtime_ns(), 0, 0 };
	int fd, r;

	if (position < 0 || (position & 7) || spw_topic_name_check(group))
		return -EINVAL;
	r = groups_dir_make(data_dir, topic, dir, sizeof(dir), td, sizeof(td));
	if (r)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, group) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, group, (int)getpid()) >=
		    sizeof(tmp))
		return -ENAMETOOLONG;
	g.crc = seg_crc32c(0, &g, offsetof(struct group_file, crc));
	seg_unlink(tmp); /* a stale temp file of ours; a planted name is never followed */
	fd = seg_open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, true);
	if (fd < 0)
		return fd;
	seg_share(fd, td);
	seg_own_as_topic(fd, td);
	if (write(fd, &g, sizeof(g)) != (ssize_t)sizeof(g) || fsync(fd)) {
		r = errno ? -errno : -EIO;
		close(fd);
		seg_unlink(tmp);
		return r;
	}
	close(fd);
	if ((r = seg_rename(tmp, path)) != 0) {
		seg_unlink(tmp);
		return r;
	}
	/* The rename must outlive a crash: a position committed and then
	 * lost would make the group read records twice. */
	return seg_sync_dir(dir);
}

static int group_load(const char *path, int64_t *position)
{
	struct group_file g;
	int fd = seg_open_file(path, O_RDONLY, 0, false);
	ssize_t n;

	if (fd < 0)
		return fd;
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
	RING_SCOPED(spw_data_dir(data_dir));
	char dir[PATH_MAX], path[PATH_MAX + SPW_NAME_MAX + 2];
	int r;

	if (!position || spw_topic_name_check(group))
		return -EINVAL;
	r = group_dir(dir, sizeof(dir), data_dir, topic);
	if (r)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, group) >= sizeof(path))
		return -ENAMETOOLONG;
	return group_load(path, position);
}

int spw_group_list(const char *data_dir, const char *topic, spw_group_fn fn, void *arg)
{
	RING_SCOPED(spw_data_dir(data_dir));
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d;
	int n = 0, r;

	if (!fn)
		return -EINVAL;
	r = group_dir(dir, sizeof(dir), data_dir, topic);
	if (r)
		return r;
	d = seg_opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		int64_t pos;

		if (spw_topic_name_check(de->d_name))
			continue; /* ".", "..", temp files */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		r = group_load(path, &pos);
		n++;
		if (fn(arg, de->d_name, r ? r : pos))
			break;
	}
	closedir(d);
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

int seg_group_lock_path(char *buf, size_t size, const char *data_dir, const char *topic,
			const char *group)
{
	char dir[PATH_MAX];
	int r = group_dir(dir, sizeof(dir), data_dir, topic);

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

/* The member lock file at (at->dfd, at->leaf), made when missing (in the
 * groups dir of topic dir td): its descriptor, O_RDWR, or -errno. */
static int member_open(const struct ring_at *at, const char *td, bool make)
{
	static _Atomic unsigned seq;
	char tmp[PATH_MAX + 64]; /* at->leaf may be a whole path (ring_at_resolve) */
	struct stat st;
	gid_t gid;
	int fd = openat(at->dfd, at->leaf, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), r;

	if (fd < 0 && errno == ENOENT && make) {
		/* Unique without a removal of anything: the pid, a count (relaxed:
		 * only this process's names differ by it) and the clock, for
		 * processes of one pid in other pid namespaces. A crash between
		 * this open and the link leaves a harmless .new file. */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s-%d-%u-%llx.new", at->leaf, (int)getpid(),
				     atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed),
				     (unsigned long long)ring_monotonic_ns()) >= sizeof(tmp))
			return -ENAMETOOLONG;
		fd = openat(at->dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (seg_share_dir_mode(td, &gid) != 0700) {
			/* A shared topic: every member must be able to lock it. */
			seg_share(fd, td);
			if (fchmod(fd, 0660)) {
			}
		}
		/* Root in a user's topic: the topic's owner must be able to
		 * lock it after us. */
		seg_own_as_topic(fd, td);
		r = linkat(at->dfd, tmp, at->dfd, at->leaf, 0) ? -errno : 0;
		unlinkat(at->dfd, tmp, 0);
		if (r == -EEXIST) {
			close(fd); /* another reader made it meanwhile: theirs */
			fd = openat(at->dfd, at->leaf, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		} else if (r) {
			close(fd);
			return r;
		}
	}
	if (fd < 0)
		return -errno;
	/* A FIFO or a device planted there: O_NONBLOCK opened it without a
	 * wait; never locked. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Does (at) still name the file fd has open? 0, or -ENOLCK. */
static int member_same(const struct ring_at *at, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) || fstatat(at->dfd, at->leaf, &b, AT_SYMLINK_NOFOLLOW) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ENOLCK;
	return 0;
}

/* The member lock file's path resolved (no links on the way); with make,
 * the groups dir made when missing, and the topic dir into td. */
static int member_at(const char *data_dir, const char *topic, const char *group, bool make,
		     struct ring_at *at, char *td, size_t tdsize)
{
	char dir[PATH_MAX], path[PATH_MAX + SPW_NAME_MAX + 16];
	int r;

	if (spw_topic_name_check(group))
		return -EINVAL;
	r = make ? groups_dir_make(data_dir, topic, dir, sizeof(dir), td, tdsize)
		 : group_dir(dir, sizeof(dir), data_dir, topic);
	if (!r)
		r = member_path(path, sizeof(path), dir, group);
	return r ? r : ring_at_resolve(path, at);
}

int seg_group_join(const char *data_dir, const char *topic, const char *group,
		   struct ring_held *h)
{
	RING_SCOPED(spw_data_dir(data_dir));
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct ring_at at;
	char td[PATH_MAX];
	int fd = -1, r;

	h->fd = -1;
	if ((r = member_at(data_dir, topic, group, true, &at, td, sizeof(td))))
		return r;
	/* Held from the open until the descriptor is on the fork list: a
	 * fork() meanwhile waits, so no child inherits a lock it keeps. */
	ring_producers_lock();
	for (int tries = 0; tries < 3; tries++) {
		fd = member_open(&at, td, true);
		if (fd < 0) {
			r = fd;
			break;
		}
		if (fcntl(fd, F_OFD_SETLK, &fl)) {
			r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
		} else if ((r = member_same(&at, fd)) == 0) {
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
	ring_at_done(&at);
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
	RING_SCOPED(spw_data_dir(data_dir));
	struct ring_at at;
	char td[PATH_MAX];
	int r;

	if (h->fd < 0)
		return -ENOLCK;
	if ((r = member_at(data_dir, topic, group, false, &at, td, sizeof(td))))
		return r == -ENOENT ? -ENOLCK : r;
	r = member_same(&at, h->fd);
	ring_at_done(&at);
	return r;
}

int seg_group_holder(const char *data_dir, const char *topic, const char *group, uint32_t *pid)
{
	RING_SCOPED(spw_data_dir(data_dir));
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct ring_at at;
	char td[PATH_MAX];
	int fd, r;

	if (pid)
		*pid = 0;
	if ((r = member_at(data_dir, topic, group, false, &at, td, sizeof(td))))
		return r == -ENOENT ? 0 : r;
	fd = openat(at.dfd, at.leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	r = fd < 0 ? (errno == ENOENT ? 0 : -errno) : 0; /* before ring_at_done's close */
	ring_at_done(&at);
	if (fd < 0)
		return r;
	/* Asks, takes nothing: a reader joining meanwhile is not refused. */
	r = fcntl(fd, F_OFD_GETLK, &fl) ? -errno : fl.l_type != F_UNLCK;
	if (r == 1 && pid)
		*pid = ring_file_lock_owner_pid(fd);
	close(fd);
	return r;
}
