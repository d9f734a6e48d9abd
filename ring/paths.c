/* SPDX-License-Identifier: MIT */
/*
 * paths.c - paths below a directory this process trusts (its roots: the
 * daemon's data dir and shm dir, docs/daemon.md "Files it trusts").
 *
 * A root is opened once and held. Every path below it is reached from that
 * fd one component at a time with openat() and O_NOFOLLOW, so a symlink
 * swapped in for any component after it was checked is refused (-ELOOP),
 * never followed: a check and the use that follows cannot be raced. A path
 * under no root (an application naming its own dirs) is used as named,
 * still O_NOFOLLOW on its last component where the caller asks.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RING_ROOTS 4

static struct {
	char path[PATH_MAX];
	size_t len;
	int fd;
} roots[RING_ROOTS];
static unsigned nroots;
/* Registration only (at start); walks read the entries without it, after
 * an acquire load of nroots. */
static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;

int ring_root_add(const char *dir)
{
	size_t len = strlen(dir);
	int fd, r = 0;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 0 || len >= PATH_MAX)
		return -EINVAL;
	/* The root itself may be a symlink (a data dir on another disk): it
	 * is followed once, here, and checked by its user (spill/files.c seg_dir_check). */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&roots_lock);
	for (unsigned i = 0; i < nroots; i++) {
		if (roots[i].len == len && !memcmp(roots[i].path, dir, len)) {
			/* Held already: keep that fd (a walk may be using it). */
			close(fd);
			goto out;
		}
	}
	if (nroots == RING_ROOTS) {
		close(fd);
		r = -ENOSPC;
		goto out;
	}
	memcpy(roots[nroots].path, dir, len);
	roots[nroots].path[len] = '\0';
	roots[nroots].len = len;
	roots[nroots].fd = fd;
	/* Release: the entry above before the count that shows it; pairs with
	 * the acquire load in ring_at_resolve (entries are never changed). */
	__atomic_store_n(&nroots, nroots + 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&roots_lock);
	return r;
}

/* Walk rest's components below the directory fd (ours: consumed), each
 * but the leaf opened O_PATH (search permission is enough, as for a path
 * used as named) and O_NOFOLLOW: the leaf's dir into at. */
static int walk(int fd, const char *rest, struct ring_at *at)
{
	for (;;) {
		size_t n;
		int next;

		rest += strspn(rest, "/");
		n = strcspn(rest, "/");
		if (n == 0 || n > NAME_MAX || (n == 1 && rest[0] == '.') ||
		    (n == 2 && rest[0] == '.' && rest[1] == '.')) {
			close(fd);
			return n > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
		}
		memcpy(at->leaf, rest, n);
		at->leaf[n] = '\0';
		rest += n;
		if (rest[strspn(rest, "/")] == '\0')
			break; /* the leaf */
		next = openat(fd, at->leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return errno == ENOTDIR ? -ELOOP : -errno; /* a symlink there: refused */
		fd = next;
	}
	at->dfd = fd;
	return 0;
}

/* Components between the root and the leaf are opened O_NOFOLLOW; "." and
 * ".." below a root are refused (-EINVAL); a trailing '/' is allowed. A
 * path under no root, or a root itself, is used as named. */
int ring_at_resolve(const char *path, struct ring_at *at)
{
	const char *rest = NULL;
	int fd = -1;

	at->dfd = AT_FDCWD;
	for (unsigned i = 0; i < __atomic_load_n(&nroots, __ATOMIC_ACQUIRE); i++) {
		const char *tail = path + roots[i].len;

		if (!strncmp(path, roots[i].path, roots[i].len) && *tail == '/' &&
		    tail[strspn(tail, "/")] != '\0' && (!rest || tail + 1 > rest)) {
			rest = tail + 1;
			fd = roots[i].fd;
		}
	}
	if (!rest) {
		if ((size_t)snprintf(at->leaf, sizeof(at->leaf), "%s", path) >= sizeof(at->leaf))
			return -ENAMETOOLONG;
		return 0;
	}
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return walk(fd, rest, at);
}

int ring_dir_below(const char *base, const char *rel, int how)
{
	char path[PATH_MAX];
	struct ring_at at;
	int fd, r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", base, rel) >= sizeof(path))
		return -ENAMETOOLONG;
	if ((r = ring_at_resolve(path, &at)))
		return r;
	if (at.dfd == AT_FDCWD) {
		/* Under no held root: base as named (as a root is, once), the
		 * rest without a link. */
		fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if ((r = walk(fd, rel, &at)))
			return r;
	}
	fd = openat(at.dfd, at.leaf, how | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = fd >= 0 ? fd : errno == ENOTDIR || errno == ELOOP ? -ELOOP : -errno;
	ring_at_done(&at);
	return r;
}

void ring_at_done(const struct ring_at *at)
{
	if (at->dfd >= 0)
		close(at->dfd);
}


int ring_unlink(const char *path)
{
	struct ring_at at;
	int r = ring_at_resolve(path, &at);

	if (r)
		return r;
	r = unlinkat(at.dfd, at.leaf, 0) ? -errno : 0;
	ring_at_done(&at);
	return r;
}

int ring_openat(const char *path, int flags, unsigned mode)
{
	struct ring_at at;
	int fd, r = ring_at_resolve(path, &at);

	if (r)
		return r;
	fd = openat(at.dfd, at.leaf, flags | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
	r = fd < 0 ? -errno : fd;
	ring_at_done(&at);
	return r;
}

/* A two-path call (linkat, renameat) with both paths below their roots. */
static int at_pair(const char *from, const char *to, bool link)
{
	struct ring_at a1, a2;
	int r = ring_at_resolve(from, &a1);

	if (r)
		return r;
	r = ring_at_resolve(to, &a2);
	if (!r) {
		r = (link ? linkat(a1.dfd, a1.leaf, a2.dfd, a2.leaf, 0)
			  : renameat(a1.dfd, a1.leaf, a2.dfd, a2.leaf))
			    ? -errno
			    : 0;
		ring_at_done(&a2);
	}
	ring_at_done(&a1);
	return r;
}

int ring_linkat(const char *from, const char *to)
{
	/* linkat never replaces an existing name (-EEXIST). */
	return at_pair(from, to, true);
}

int ring_renameat(const char *from, const char *to)
{
	return at_pair(from, to, false);
}
