/* SPDX-License-Identifier: MIT */
/*
 * locks.c - what the kernel tells us about who is alive (ring_layout.h I2,
 * I7, I8): OFD byte locks on the ring file, the owner of a lock as
 * /proc/<pid>/fdinfo shows it, waiter counts that survive kill -9,
 * membarrier, and handles that must not cross a fork().
 *
 * An OFD lock belongs to an open file description and is released when the
 * last descriptor of it closes, which the kernel does when a process dies.
 * No PID is involved, so PID namespaces, PID reuse and containers sharing
 * /dev/shm cannot fool it. Each handle that needs a lock opens its own
 * description (ring_reopen), so two handles in one process never share one.
 */
#define _GNU_SOURCE
#include "ring_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int ring_reopen(const struct spw_topic *t)
{
	char path[64];
	struct stat a, b;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->fd);
	/* Opening the /proc link makes a new description of the same inode,
	 * even if the name was unlinked or replaced meanwhile. */
	fd = open(path, (t->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &a) || fstat(t->fd, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int lock_op(int fd, int cmd, short type, uint64_t off, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)off;
	fl->l_len = 1;
	/* l_pid must be 0 for OFD commands. */
	return fcntl(fd, cmd, fl) ? -errno : 0;
}

int ring_lock(int fd, uint64_t off, bool exclusive)
{
	struct flock fl;
	int r = lock_op(fd, F_OFD_SETLK, exclusive ? F_WRLCK : F_RDLCK, off, &fl);

	return r == -EACCES ? -EAGAIN : r;
}

void ring_unlock(int fd, uint64_t off)
{
	struct flock fl;

	lock_op(fd, F_OFD_SETLK, F_UNLCK, off, &fl);
}

int ring_lock_held(const struct spw_topic *t, uint64_t off)
{
	struct flock fl;
	/* A write-lock query conflicts with any lock another description
	 * holds there; our own t->fd never takes one. */
	int r = lock_op(t->fd, F_OFD_GETLK, F_WRLCK, off, &fl);

	if (r)
		return r;
	return fl.l_type != F_UNLCK;
}

int ring_slot_alive(const struct spw_topic *t, uint32_t i)
{
	return ring_lock_held(t, ring_slot_off(i));
}

/* The pid of a process holding an OFD lock over `range` ("START END" as
 * /proc shows it) of the file fd names, or 0. */
static uint32_t owner_pid(int fd, const char *range)
{
	struct stat st;
	char want[160], path[300], line[256];
	DIR *proc;
	struct dirent *d;
	uint32_t found = 0;

	if (fstat(fd, &st))
		return 0;
	/* /proc/<pid>/fdinfo/<fd> lists "lock: ... OFDLCK ADVISORY WRITE -1
	 * MAJ:MIN:INO START END" for each lock of that description. */
	snprintf(want, sizeof(want), "%02x:%02x:%llu %s", major(st.st_dev), minor(st.st_dev),
		 (unsigned long long)st.st_ino, range);
	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (!found && (d = readdir(proc))) {
		DIR *fds;
		struct dirent *e;
		char *end;
		long pid = strtol(d->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fdinfo", pid);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!found && (e = readdir(fds))) {
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, e->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "lock:", 5) && strstr(line, "OFDLCK") &&
				    strstr(line, want)) {
					found = (uint32_t)pid;
					break;
				}
			fclose(f);
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

uint32_t ring_lock_owner_pid(const struct spw_topic *t, uint64_t off)
{
	char range[48];

	snprintf(range, sizeof(range), "%llu %llu", (unsigned long long)off,
		 (unsigned long long)off);
	return owner_pid(t->fd, range);
}

uint32_t ring_file_lock_owner_pid(int fd)
{
	return owner_pid(fd, "0 EOF");
}

/* The lock byte of a waiter counter: the counter's own offset in the file. */
static uint64_t counter_off(const struct spw_topic *t, _Atomic uint32_t *count)
{
	return (uint64_t)((const uint8_t *)count - (const uint8_t *)t->hdr);
}

bool ring_waiter_enter(int fd, const struct spw_topic *t, _Atomic uint32_t *count)
{
	/* Shared lock first, then the count (I8): whoever sees no lock held
	 * knows every live sleeper's increment is undone or not yet made. A
	 * sleeper without the lock would have its count reset under it by the
	 * repair (a lost wake-up): it does not register at all. */
	if (fd < 0 || ring_lock(fd, counter_off(t, count), false))
		return false;
	/* seq_cst: the sleeper half of I8. */
	atomic_fetch_add_explicit(count, 1, memory_order_seq_cst);
	return true;
}

void ring_waiter_leave(int fd, const struct spw_topic *t, _Atomic uint32_t *count)
{
	/* Relaxed: a hint for wakers; the decrement comes before the unlock. */
	atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
	if (fd >= 0)
		ring_unlock(fd, counter_off(t, count));
}

/* The daemon's half: a count with no lock holder behind it belongs to dead
 * sleepers. Read it, check the lock, then CAS it to 0: a live sleeper that
 * came after the check changed the count (it increments after locking), so
 * the CAS then fails and we try again next time. */
static int repair_one(struct spw_topic *t, _Atomic uint32_t *count)
{
	/* Acquire: the value the CAS below expects. */
	uint32_t n = atomic_load_explicit(count, memory_order_acquire);

	if (n == 0 || n > 0x80000000u) /* > 2^31: an underflow, also reset */
		return n ? (atomic_compare_exchange_strong_explicit(count, &n, 0, memory_order_seq_cst,
								    memory_order_relaxed) ? 1 : 0)
			 : 0;
	if (ring_lock_held(t, counter_off(t, count)) != 0)
		return 0;
	/* seq_cst CAS: see above. */
	return atomic_compare_exchange_strong_explicit(count, &n, 0, memory_order_seq_cst,
						       memory_order_relaxed) ? 1 : 0;
}

int ring_waiters_repair(struct spw_topic *t)
{
	if (!t || t->rdonly)
		return -EINVAL;
	return repair_one(t, &t->hdr->cons_waiters) + repair_one(t, &t->hdr->prod_waiters) +
	       repair_one(t, &t->hdr->ack_waiters);
}

static int membarrier_state; /* 0 unknown, 1 registered, -errno */
static pthread_mutex_t membarrier_mu = PTHREAD_MUTEX_INITIALIZER;

int ring_membarrier_register(void)
{
	int r;

	pthread_mutex_lock(&membarrier_mu);
	if (membarrier_state == 0) {
		r = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
		membarrier_state = r ? -errno : 1;
	}
	r = membarrier_state;
	pthread_mutex_unlock(&membarrier_mu);
	return r > 0 ? 0 : r;
}

int ring_membarrier(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) ? -errno : 0;
}

/* --- fork ------------------------------------------------------------------
 * A forked child shares its parent's open file descriptions, so it would
 * keep the parent's slot locks (and group member locks) alive after the
 * parent died or let go. The child closes its copies at once, and its
 * handles are refused (ring_fork_gen). */
uint32_t ring_fork_gen __attribute__((visibility("hidden")));
static struct spw_producer *open_list;
static struct ring_held *held_list;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&open_mu);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&open_mu);
}

static void fork_child(void)
{
	for (struct spw_producer *p = open_list; p; p = p->next_open)
		if (p->fd >= 0) {
			close(p->fd);
			p->fd = -1;
		}
	for (struct ring_held *h = held_list; h; h = h->next)
		if (h->fd >= 0) {
			close(h->fd);
			h->fd = -1;
		}
	/* Relaxed: the child has one thread now. */
	ring_fork_gen++;
	pthread_mutex_unlock(&open_mu);
}

static void atfork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void ring_fork_watch(void)
{
	pthread_once(&atfork_once, atfork_init);
}

/* Held from a producer's reopen of the ring until it is on the list (and
 * in close, until its descriptor is closed): a fork() meanwhile waits, so no
 * child ever inherits a producer lock it would not close. */
void ring_producers_lock(void)
{
	ring_fork_watch();
	pthread_mutex_lock(&open_mu);
}

void ring_producers_unlock(void)
{
	pthread_mutex_unlock(&open_mu);
}

void ring_producer_register(struct spw_producer *p)
{
	p->next_open = open_list;
	open_list = p;
}

void ring_producer_unregister(struct spw_producer *p)
{
	for (struct spw_producer **pp = &open_list; *pp; pp = &(*pp)->next_open)
		if (*pp == p) {
			*pp = p->next_open;
			break;
		}
}

void ring_held_add(struct ring_held *h)
{
	h->next = held_list;
	held_list = h;
}

void ring_held_remove(struct ring_held *h)
{
	for (struct ring_held **pp = &held_list; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
}
