/* SPDX-License-Identifier: MIT */
/*
 * files.c - the files and directories spillway trusts (docs/daemon.md,
 * "Files it trusts").
 *
 * A process names its roots once (the daemon: its data dir and shm dir;
 * seg_trust_root) and holds each open. Every path below a root is then
 * reached from that directory fd one component at a time with openat()
 * and O_NOFOLLOW (the walk is ring/paths.c, shared with the ring files),
 * so a symlink swapped in for any component (a topic dir, groups/, a
 * file) after it was checked is refused (-ELOOP), never followed: the
 * check and the use cannot be told apart by a race.
 * A path under no root (a CLI reading a data dir it was given) is opened
 * as named, still with O_NOFOLLOW on its last component.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int seg_trust_root(const char *dir)
{
	return ring_root_add(dir);
}

int seg_open_file(const char *path, int flags, unsigned mode, bool own)
{
	struct stat st;
	/* O_NONBLOCK: a FIFO planted there must not hang us in open().
	 * -ELOOP: a symlink, refused. */
	int fd = ring_openat(path, flags | O_NONBLOCK, mode), r = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st))
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (own && st.st_uid != geteuid())
		r = -EPERM;
	else if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		r = -errno;
	else
		return fd;
	close(fd);
	return r;
}

int seg_open_dir(const char *path)
{
	struct ring_at at;
	int fd, r = ring_at_resolve(path, &at);

	if (r)
		return r;
	/* A root itself (no parent walked) is opened as named, like at
	 * registration; anything below one never through a symlink. */
	fd = openat(at.dfd, at.leaf,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | (at.dfd == AT_FDCWD ? 0 : O_NOFOLLOW));
	r = fd < 0 ? (errno == ENOTDIR && at.dfd != AT_FDCWD ? -ELOOP : -errno) : fd;
	ring_at_done(&at);
	return r;
}

DIR *seg_opendir(const char *path)
{
	int fd = seg_open_dir(path);
	DIR *d;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return d;
}

int seg_sync_dir(const char *path)
{
	int fd = seg_open_dir(path), r = 0;

	if (fd < 0)
		return fd;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

int seg_unlink(const char *path)
{
	return ring_unlink(path);
}

int seg_rename(const char *from, const char *to)
{
	return ring_renameat(from, to);
}

int seg_mkdir(const char *path, unsigned mode)
{
	struct ring_at at;
	int r = ring_at_resolve(path, &at);

	if (r)
		return r;
	r = mkdirat(at.dfd, at.leaf, (mode_t)mode) ? -errno : 0;
	ring_at_done(&at);
	return r;
}

int seg_lstat(const char *path, struct stat *st)
{
	struct ring_at at;
	int r = ring_at_resolve(path, &at);

	if (r)
		return r;
	r = fstatat(at.dfd, at.leaf, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	ring_at_done(&at);
	return r;
}

/* One step of FNV-1a over n bytes. */
static uint64_t stamp_mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t stamp_stat(uint64_t h, const struct stat *st)
{
	const uint64_t f[] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_mode,
			       (uint64_t)st->st_uid, (uint64_t)st->st_nlink, (uint64_t)st->st_size,
			       (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
			       (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec };

	return stamp_mix(h, f, sizeof(f));
}

int seg_dir_stamp(const char *dir, uint64_t *stamp)
{
	uint64_t h = 0xcbf29ce484222325ull, sum = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = seg_opendir(dir);

	if (!d)
		return -errno;
	if (fstat(dirfd(d), &st)) {
		int r = -errno;

		closedir(d);
		return r;
	}
	h = stamp_stat(h, &st);
	/* Each entry hashed alone and the hashes added: readdir's order does
	 * not matter. An entry gone between readdir and fstatat counts by
	 * name alone (the dir's own times changed with it anyway). A subdir
	 * (groups/) counts by name, inode and mode only: what happens inside
	 * it (a consumer group committing) is not a change of this dir. */
	while ((de = readdir(d))) {
		uint64_t e = stamp_mix(0xcbf29ce484222325ull, de->d_name, strlen(de->d_name) + 1);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			if (S_ISDIR(st.st_mode)) {
				const uint64_t f[] = { (uint64_t)st.st_ino, (uint64_t)st.st_mode };

				e = stamp_mix(e, f, sizeof(f));
			} else {
				e = stamp_stat(e, &st);
			}
		}
		sum += e;
	}
	closedir(d);
	*stamp = stamp_mix(h, &sum, sizeof(sum));
	return 0;
}

/* --- directories: who owns them, who may write them ----------------------- */
int seg_dir_check(const char *dir, char *why, size_t why_len)
{
	return seg_dir_check_link(dir, true, why, why_len);
}

int seg_dir_check_link(const char *dir, bool allow_link, char *why, size_t why_len)
{
	struct stat st;
	int r = seg_lstat(dir, &st);

	if (r) {
		if (r == -ELOOP || r == -ENOTDIR)
			snprintf(why, why_len,
				 "a component of %s is a symbolic link or not a directory: refused, "
				 "never followed",
				 dir);
		return r;
	}
	if (S_ISLNK(st.st_mode) && !allow_link) {
		snprintf(why, why_len, "%s is a symbolic link: refused, never followed (remove it)",
			 dir);
		return -ELOOP;
	}
	if (S_ISLNK(st.st_mode) && stat(dir, &st) == 0 && st.st_uid != geteuid()) {
		snprintf(why, why_len, "%s is a symlink to a directory owned by uid %u", dir,
			 (unsigned)st.st_uid);
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, why_len,
			 "%s is owned by uid %u, not by this user (uid %u): another user could plant "
			 "files there; chown it, or use a directory of your own",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(why, why_len,
			 "%s is writable by every user (mode %04o): another user could plant files "
			 "there; chmod o-w it",
			 dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* --- sharing with the topic's group ---------------------------------------- */
void seg_share(int fd, const char *topic_dir)
{
	struct stat st;
	bool shared;

	if (seg_lstat(topic_dir, &st) || !S_ISDIR(st.st_mode))
		return;
	shared = (st.st_mode & 0070) != 0;
	/* Best effort: root or a member of the group may; a failure leaves
	 * the file private, which only refuses access, never grants it. */
	if (shared && st.st_gid != getegid() && fchown(fd, (uid_t)-1, st.st_gid)) {
	}
	if (fchmod(fd, shared ? 0640 : 0600)) {
	}
}

int seg_give(const char *path, bool dir, gid_t gid, int mode)
{
	struct ring_at at;
	struct stat st;
	int fd, r = ring_at_resolve(path, &at);

	if (r)
		return r;
	/* Never through a link, even as the last component: root changing
	 * the owner or mode of what a link points to hands it out. */
	fd = openat(at.dfd, at.leaf,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (dir ? O_DIRECTORY : 0));
	r = fd < 0 ? (errno == ENOTDIR || errno == ELOOP ? -ELOOP : -errno) : 0;
	ring_at_done(&at);
	if (r)
		return r;
	if (fstat(fd, &st))
		r = -errno;
	else if ((dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) || st.st_uid != geteuid())
		r = -EPERM;
	else if (gid != (gid_t)-1 && gid != st.st_gid && fchown(fd, (uid_t)-1, gid))
		r = -errno;
	else if (mode >= 0 && fchmod(fd, (mode_t)mode))
		r = -errno;
	close(fd);
	return r;
}

int seg_file_replace(const char *dir, const char *name, const void *buf, size_t n, bool sync,
		     int mode)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, r = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid()) >=
		    sizeof(tmp))
		return -ENAMETOOLONG;
	seg_unlink(tmp); /* a stale temp file of ours; a planted name is never followed */
	fd = seg_open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, true);
	if (fd < 0)
		return fd;
	if (mode >= 0 && fchmod(fd, (mode_t)mode))
		r = -errno;
	else if (mode < 0)
		seg_share(fd, dir);
	for (size_t done = 0; !r && done < n;) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);

		if (w < 0 && errno != EINTR)
			r = -errno;
		else if (w == 0)
			r = -EIO; /* (a full disk says ENOSPC at the next write) */
		else if (w > 0)
			done += (size_t)w;
	}
	if (!r && sync && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r)
		r = seg_rename(tmp, path);
	if (r)
		seg_unlink(tmp);
	else if (sync)
		r = seg_sync_dir(dir);
	return r;
}
