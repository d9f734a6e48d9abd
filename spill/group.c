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
 * always record boundaries.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

int seg_group_write(const char *data_dir, const char *topic, const char *group, int64_t position)
{
	char dir[PATH_MAX], path[PATH_MAX + SPW_NAME_MAX + 2], tmp[PATH_MAX + SPW_NAME_MAX + 32];
	struct group_file g = { GROUP_MAGIC, 1, (uint64_t)position, ring_realtime_ns(), 0, 0 };
	int fd, r;

	if (position < 0 || (position & 7) || spw_topic_name_check(group))
		return -EINVAL;
	r = group_dir(dir, sizeof(dir), data_dir, topic);
	if (r)
		return r;
	{
		/* The topic dir: dir without "/groups". Shared with its group
		 * (topic create --group): 02770 and that group, so every member
		 * can commit; else private. */
		char td[PATH_MAX];
		gid_t gid;
		unsigned mode;

		snprintf(td, sizeof(td), "%.*s", (int)(strlen(dir) - strlen("/groups")), dir);
		mode = seg_share_dir_mode(td, &gid);
		if ((r = seg_mkdir(dir, mode)) == 0) {
			/* Its group, and the mode mkdir's passed through the umask:
			 * best effort, but never through a name swapped for a link
			 * meanwhile (seg_give), which would hand out its target. */
			r = seg_give(dir, true, gid, (int)mode);
			if (r == -ELOOP || r == -EPERM)
				return r;
		} else if (r != -EEXIST) {
			return r;
		}
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, group) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, group, (int)getpid()) >=
		    sizeof(tmp))
		return -ENAMETOOLONG;
	g.crc = seg_crc32c(0, &g, offsetof(struct group_file, crc));
	seg_unlink(tmp); /* a stale temp file of ours; a planted name is never followed */
	fd = seg_open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, true);
	if (fd < 0)
		return fd;
	{
		char td[PATH_MAX];

		snprintf(td, sizeof(td), "%.*s", (int)(strlen(dir) - strlen("/groups")), dir);
		seg_share(fd, td);
	}
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
