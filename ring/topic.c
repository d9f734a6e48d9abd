/* SPDX-License-Identifier: MIT */
/*
 * topic.c - topic files: names, directories, create / open / close / delete.
 *
 * Create is atomic: the ring is built and pre-faulted under a temporary name
 * (topic names never start with '.', so ".<name>.<pid>.tmp" cannot collide)
 * and then link()ed to <name>.ring, which fails with EEXIST if another
 * creator won. Nobody ever maps a half-written header.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *spw_shm_dir(const char *shm_dir)
{
	const char *env;

	if (shm_dir && *shm_dir)
		return shm_dir;
	env = getenv("SPILLWAY_SHM_DIR");
	if (env && *env)
		return env;
	return SPW_DEFAULT_SHM_DIR;
}

int spw_topic_name_check(const char *name)
{
	size_t n = 0;

	if (!name || name[0] == '.' || name[0] == '\0')
		return -EINVAL;
	for (const char *s = name; *s; s++, n++) {
		char ch = *s;

		if (n >= SPW_NAME_MAX)
			return -EINVAL;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return -EINVAL;
	}
	return 0;
}

static int ring_path(char *buf, size_t size, const char *shm_dir, const char *name)
{
	int r = spw_topic_name_check(name);

	if (r)
		return r;
	if ((size_t)snprintf(buf, size, "%s/%s.ring", spw_shm_dir(shm_dir), name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Fills defaults and checks every constraint of the header's comment. */
static int config_resolve(const struct spw_topic_config *in, struct spw_topic_config *out)
{
	struct spw_topic_config c = { 0 };

	if (in)
		c = *in;
	if (!c.ring_bytes)
		c.ring_bytes = 64ull << 20;
	if (!is_pow2(c.ring_bytes) || c.ring_bytes < SPW_RING_MIN_BYTES ||
	    c.ring_bytes > RING_MAX_BYTES)
		return -EINVAL;
	if (!c.segment_bytes)
		c.segment_bytes = c.ring_bytes > (1ull << 30) ? c.ring_bytes : 1ull << 30;
	if (c.segment_bytes % c.ring_bytes)
		return -EINVAL;
	if (!c.max_record)
		c.max_record = (uint32_t)(c.ring_bytes / 4 < (1u << 20) ? c.ring_bytes / 4 : (1u << 20));
	if (c.max_record > c.ring_bytes / 4 || c.max_record > SPW_RECORD_MAX_BYTES)
		return -EINVAL;
	if (!c.mode)
		c.mode = 0600;
	if (c.mode & ~0777u)
		return -EINVAL;
	if (c.flags & ~SPW_TOPIC_NO_SPILL)
		return -EINVAL;
	if (c.start_position & 7 || c.start_position > (uint64_t)INT64_MAX / 2)
		return -EINVAL;
	if (!c.max_producers)
		c.max_producers = RING_PRODUCERS_DEFAULT;
	if (c.max_producers > RING_PRODUCERS_MAX)
		return -EINVAL;
	*out = c;
	return 0;
}

int ring_mkdir_p(const char *dir, unsigned mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, dir, n + 1);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Allocate every page now: the first touch of fresh tmpfs memory costs
 * ~0.6 GB/s here and must not land on the first producer. */
static int prefault(int fd, uint64_t bytes)
{
	int r = posix_fallocate(fd, 0, (off_t)bytes);

	if (r == 0)
		return 0;
	if (r != EOPNOTSUPP && r != EINVAL)
		return -r;
	if (ftruncate(fd, (off_t)bytes))
		return -errno;
	return 1; /* the caller touches the pages through its mapping */
}

/* A new ring's header, producer slots idle (the file is all zero). */
static void ring_hdr_init(void *map, const struct spw_topic_config *c)
{
	struct ring_hdr *h = map;

	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->hdr_bytes = (uint32_t)ring_hdr_bytes(c->max_producers);
	h->max_producers = c->max_producers;
	h->ring_bytes = c->ring_bytes;
	h->segment_bytes = c->segment_bytes;
	h->max_record = c->max_record;
	h->flags = c->flags;
	h->created_ns = ring_realtime_ns();
	h->start_position = c->start_position;
	/* Relaxed: nobody else can map the file before link() below, and
	 * munmap + link order these stores before any open of the name. */
	atomic_store_explicit(&h->tail, c->start_position, memory_order_relaxed);
	atomic_store_explicit(&h->reclaimed, c->start_position, memory_order_relaxed);
	atomic_store_explicit(&h->spilled, c->start_position, memory_order_relaxed);
	atomic_store_explicit(&h->durable, c->start_position, memory_order_relaxed);
	atomic_store_explicit(&h->limit, c->start_position + c->ring_bytes, memory_order_relaxed);
	atomic_store_explicit(&h->stall_slot, -1, memory_order_relaxed);
	for (uint32_t i = 0; i < c->max_producers; i++) {
		struct ring_slot *sl = (struct ring_slot *)(void *)((uint8_t *)map + ring_slot_off(i));

		atomic_store_explicit(&sl->claim, RING_SLOT_IDLE, memory_order_relaxed);
	}
}

int spw_topic_create(const char *shm_dir, const char *name, const struct spw_topic_config *cfg)
{
	struct spw_topic_config c;
	char path[PATH_MAX], tmp[PATH_MAX];
	uint64_t size;
	void *map;
	int fd, r;

	r = ring_path(path, sizeof(path), shm_dir, name);
	if (r)
		return r;
	r = config_resolve(cfg, &c);
	if (r)
		return r;
	/* A new shm dir: 0700, or group-traversable when the ring is shared
	 * with a group (an existing one is left as it is). */
	r = ring_mkdir_p(spw_shm_dir(shm_dir), (c.mode & 0060) ? 0750 : 0700);
	if (r)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", spw_shm_dir(shm_dir), name,
			     (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;

	/* Below a held root (the daemon's shm dir), reached from its fd
	 * (ring/paths.c); O_EXCL never follows a planted name. */
	fd = ring_openat(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return fd;
	size = ring_hdr_bytes(c.max_producers) + c.ring_bytes;
	r = prefault(fd, size);
	if (r < 0)
		goto fail;
	if (fchmod(fd, c.mode)) {
		r = -errno;
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/* Write every byte once, even after fallocate: on these VMs the first
	 * write to a page the hypervisor has not backed yet costs far more than
	 * the guest's page fault (~0.6 GB/s), and it must be paid here. */
	memset(map, 0, size);

	ring_hdr_init(map, &c);
	munmap(map, size);

	r = ring_linkat(tmp, path);
fail:
	ring_unlink(tmp);
	close(fd);
	return r;
}

/* Tell the producers of the ring open at fd that it is gone (the header's
 * deleted word, ring_layout.h): best effort, through pwrite rather than a
 * mapping (a file cut short meanwhile gives an error, not SIGBUS). A file
 * that is not a ring of this version is left as it is. */
static void mark_deleted(int fd)
{
	const uint32_t one = 1;
	struct ring_hdr h;
	struct stat st;
	ssize_t w;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
	    h.magic != RING_MAGIC || h.version != RING_VERSION)
		return;
	w = pwrite(fd, &one, sizeof(one), offsetof(struct ring_hdr, deleted));
	(void)w; /* best effort: the unlink is what deleted it */
}

int spw_topic_delete(const char *shm_dir, const char *name)
{
	char path[PATH_MAX];
	int fd, r = ring_path(path, sizeof(path), shm_dir, name);

	if (r)
		return r;
	/* Opened before the unlink and marked only after it succeeded: a
	 * delete that fails leaves its producers sending. O_NONBLOCK: a FIFO
	 * planted there must not hold the delete up. No write permission on
	 * the file: no mark (waits still find the unlink, spw_topic_deleted). */
	fd = ring_openat(path, O_RDWR | O_NONBLOCK, 0);
	r = ring_unlink(path);
	if (fd >= 0) {
		if (!r)
			mark_deleted(fd);
		close(fd);
	}
	return r;
}

/* Read one byte of every page through this process's new mapping. Measured
 * on these VMs (shadow-paged guests): the first access to each page through a
 * new mapping costs ~5 us even with MAP_POPULATE and no guest page fault
 * (~0.8 GB/s for a write stream); paying it here keeps it off the first
 * records. A read is enough, and cannot disturb concurrent writers. */
static void touch_pages(const void *map, size_t bytes)
{
	const volatile uint8_t *b = map;
	long page = sysconf(_SC_PAGESIZE);

	for (size_t o = 0; o < bytes; o += (size_t)page)
		(void)b[o];
}

/* Everything the rest of the library relies on, checked once. */
static int header_check(const struct ring_hdr *h, uint64_t file_bytes)
{
	if (h->magic != RING_MAGIC)
		return -EBADMSG;
	if (h->version != RING_VERSION)
		return -EPROTO; /* a ring of another format version: recreate it */
	if (!h->max_producers || h->max_producers > RING_PRODUCERS_MAX ||
	    h->hdr_bytes != ring_hdr_bytes(h->max_producers))
		return -EBADMSG;
	if (!is_pow2(h->ring_bytes) || h->ring_bytes < SPW_RING_MIN_BYTES ||
	    h->ring_bytes > RING_MAX_BYTES || file_bytes != h->hdr_bytes + h->ring_bytes)
		return -EBADMSG;
	if (!h->segment_bytes || h->segment_bytes % h->ring_bytes)
		return -EBADMSG;
	if (!h->max_record || h->max_record > h->ring_bytes / 4 ||
	    h->max_record > SPW_RECORD_MAX_BYTES || (h->flags & ~SPW_TOPIC_NO_SPILL))
		return -EBADMSG;
	return 0;
}

void ring_topic_prefault(struct spw_topic *t)
{
	if (t && !t->prefaulted) {
		touch_pages(t->hdr, t->map_bytes);
		t->prefaulted = true;
	}
}

int spw_topic_open(const char *shm_dir, const char *name, unsigned flags, struct spw_topic **out)
{
	return ring_topic_open(shm_dir, name, flags, true, out);
}

int ring_topic_open(const char *shm_dir, const char *name, unsigned flags, bool prefault,
		    struct spw_topic **out)
{
	char path[PATH_MAX];
	struct ring_hdr hdr;
	struct spw_topic *t;
	struct stat st;
	void *map;
	int fd, r, prot;

	if (!out || (flags & ~SPW_OPEN_RDONLY))
		return -EINVAL;
	*out = NULL;
	r = ring_path(path, sizeof(path), shm_dir, name);
	if (r)
		return r;
	/* Never through a symlink, only a regular file: a ring name planted as a
	 * link must not make a writer (the daemon zeroes reclaimed bytes) write
	 * to what it points at. */
	fd = ring_openat(path, (flags & SPW_OPEN_RDONLY) ? O_RDONLY : O_RDWR, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		r = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out_close;
	}
	if ((uint64_t)st.st_size < RING_PAGE ||
	    pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		r = -EBADMSG;
		goto out_close;
	}
	r = header_check(&hdr, (uint64_t)st.st_size);
	if (r)
		goto out_close;

	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto out_close;
	}
	prot = (flags & SPW_OPEN_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
	map = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED | (prefault ? MAP_POPULATE : 0), fd,
		   0);
	if (map == MAP_FAILED) {
		r = -errno;
		free(t);
		goto out_close;
	}
	if (prefault)
		touch_pages(map, (size_t)st.st_size);
	t->prefaulted = prefault;
	t->hdr = map;
	t->hdr_bytes = hdr.hdr_bytes;
	t->slots = (struct ring_slot *)(void *)((uint8_t *)map + RING_SLOT_OFF);
	t->max_producers = hdr.max_producers;
	t->data = (uint8_t *)map + hdr.hdr_bytes;
	t->map_bytes = (size_t)st.st_size;
	/* From the validated copy, never from the shared page again. */
	t->ring_bytes = hdr.ring_bytes;
	t->mask = hdr.ring_bytes - 1;
	t->segment_bytes = hdr.segment_bytes;
	t->max_record = hdr.max_record;
	t->flags = hdr.flags;
	t->rdonly = flags & SPW_OPEN_RDONLY;
	snprintf(t->name, sizeof(t->name), "%s", name);
	/* Absolute: spw_topic_deleted looks it up again later, maybe after
	 * the process changed its working dir. */
	if (path[0] == '/' || !getcwd(t->path, sizeof(t->path)) ||
	    (size_t)snprintf(t->path + strlen(t->path), sizeof(t->path) - strlen(t->path), "/%s",
			     path) >= sizeof(t->path) - strlen(t->path))
		snprintf(t->path, sizeof(t->path), "%s", path);
	t->fd = fd; /* kept: lock queries and per-handle reopen (locks.c) */
	t->own_fd = -1;
	*out = t;
	return 0;
out_close:
	close(fd);
	return r;
}

void spw_topic_close(struct spw_topic *t)
{
	if (!t)
		return;
	munmap(t->hdr, t->map_bytes);
	if (t->own_fd >= 0)
		close(t->own_fd);
	close(t->fd);
	free(t);
}

int spw_topic_deleted(const struct spw_topic *t)
{
	struct stat at, now;

	if (!t)
		return -EINVAL;
	if (ring_topic_gone_flag(t))
		return 1;
	if (fstat(t->fd, &at))
		return -errno;
	/* lstat: a symlink put in its place is another file too. */
	if (lstat(t->path, &now))
		return errno == ENOENT || errno == ENOTDIR ? 1 : -errno;
	return now.st_ino != at.st_ino || now.st_dev != at.st_dev;
}

const char *spw_topic_name(const struct spw_topic *t)
{
	return t ? t->name : NULL;
}

int spw_topic_info(const struct spw_topic *t, struct spw_topic_info *o)
{
	struct ring_hdr *h;

	if (!t || !o)
		return -EINVAL;
	h = t->hdr;
	memset(o, 0, sizeof(*o));
	o->ring_bytes = t->ring_bytes;
	o->segment_bytes = t->segment_bytes;
	o->max_record = t->max_record;
	o->flags = t->flags;
	o->created_ns = h->created_ns;
	o->start_position = h->start_position;
	/* Acquire loads: a snapshot for display and for tools; each pairs with
	 * its writer's release/seq_cst store. */
	o->tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	o->reclaimed = atomic_load_explicit(&h->reclaimed, memory_order_acquire);
	o->spilled = atomic_load_explicit(&h->spilled, memory_order_acquire);
	o->durable = atomic_load_explicit(&h->durable, memory_order_acquire);
	o->limit = atomic_load_explicit(&h->limit, memory_order_acquire);
	o->daemon_pid = atomic_load_explicit(&h->daemon_pid, memory_order_relaxed);
	o->daemon_heartbeat_ns =
		atomic_load_explicit(&h->daemon_heartbeat_ns, memory_order_relaxed);
	o->max_producers = t->max_producers;
	/* Relaxed: the daemon's advisory stall report (ring_layout.h). */
	o->stall_slot = atomic_load_explicit(&h->stall_slot, memory_order_relaxed);
	o->stall_position = atomic_load_explicit(&h->stall_pos, memory_order_relaxed);
	o->stall_pid = atomic_load_explicit(&h->stall_pid, memory_order_relaxed);
	o->stall_since_ns = atomic_load_explicit(&h->stall_since_ns, memory_order_relaxed);
	o->corrupt_bytes = atomic_load_explicit(&h->corrupt_bytes, memory_order_relaxed);
	o->aborted_claims = atomic_load_explicit(&h->aborted_claims, memory_order_relaxed);
	/* Acquire: pairs with spwd_set_durable_error's store. */
	o->durable_error = atomic_load_explicit(&h->durable_err, memory_order_acquire);
	/* Relaxed: advisory. */
	o->disk_bad_ranges = atomic_load_explicit(&h->disk_bad_ranges, memory_order_relaxed);
	o->spill_error = atomic_load_explicit(&h->spill_err, memory_order_relaxed);
	/* Relaxed: a count for display (the I8 handshake reads it seq_cst). */
	o->producers_waiting = atomic_load_explicit(&h->prod_waiters, memory_order_relaxed);
	{
		/* Relaxed: advisory, as it is written. */
		uint64_t f = atomic_load_explicit(&h->retention_forced, memory_order_relaxed);

		o->retention_forced = f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
	}
	return 0;
}
