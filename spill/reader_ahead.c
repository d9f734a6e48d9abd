/* SPDX-License-Identifier: MIT */
/*
 * reader_ahead.c - the reader's read-ahead (spill/reader.c R4): while the
 * caller checks the CRCs of one chunk and walks its records, a helper
 * thread already preads the next chunk of the same segment into a second
 * page-aligned buffer; the next fill takes that buffer instead of reading.
 * The copy out of the page cache (or the wait for the disk) then overlaps
 * the CRC and the walk, on the other core. The bytes taken are verified
 * exactly as if read in place (R3). One thread per reader, started at its
 * first disk fill, stopped at spw_reader_close; without it (thread creation
 * failed) the reader reads as before.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *ahead_main(void *arg)
{
	struct rd_ahead *a = arg;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		int fd;
		uint64_t off;
		size_t len;
		uint8_t *buf;
		ssize_t got;
		int err;

		while (!a->busy && !a->quit)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->quit)
			break;
		fd = a->fd;
		off = a->afrom - a->base;
		len = a->alen;
		buf = a->buf;
		pthread_mutex_unlock(&a->mu);
		got = pread(fd, buf, len, (off_t)off);
		err = got < 0 ? errno : 0;
		pthread_mutex_lock(&a->mu);
		a->got = got;
		a->err = err;
		a->busy = false;
		a->ready = true;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Wait for a request in flight; the lock is held on return. */
static void ahead_settle(struct rd_ahead *a)
{
	pthread_mutex_lock(&a->mu);
	while (a->busy)
		pthread_cond_wait(&a->cv, &a->mu);
}

void rd_ahead_start(struct rd_ahead *a, int fd, uint64_t base, uint64_t afrom, size_t alen)
{
	if (!a->started) {
		if (a->failed)
			return;
		pthread_mutex_init(&a->mu, NULL);
		pthread_cond_init(&a->cv, NULL);
		if (pthread_create(&a->th, NULL, ahead_main, a)) {
			a->failed = true; /* read in place, as without read-ahead */
			pthread_cond_destroy(&a->cv);
			pthread_mutex_destroy(&a->mu);
			return;
		}
		a->started = true;
	}
	ahead_settle(a);
	a->ready = false;
	if (alen > a->cap) {
		void *nb = NULL;

		if (posix_memalign(&nb, 4096, alen)) {
			pthread_mutex_unlock(&a->mu);
			return;
		}
		free(a->buf);
		a->buf = nb;
		a->cap = alen;
	}
	a->fd = fd;
	a->base = base;
	a->afrom = afrom;
	a->alen = alen;
	a->busy = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

bool rd_ahead_take(struct rd_ahead *a, uint64_t base, uint64_t afrom, size_t alen, uint8_t **buf,
		   size_t *cap, ssize_t *got, int *err)
{
	bool hit;

	if (!a->started)
		return false;
	ahead_settle(a);
	hit = a->ready && a->base == base && a->afrom == afrom && a->alen == alen;
	a->ready = false;
	if (hit) {
		uint8_t *b = *buf;
		size_t c = *cap;

		*buf = a->buf;
		*cap = a->cap;
		a->buf = b;
		a->cap = c;
		*got = a->got;
		*err = a->err;
	}
	pthread_mutex_unlock(&a->mu);
	return hit;
}

void rd_ahead_idle(struct rd_ahead *a)
{
	if (!a || !a->started)
		return;
	ahead_settle(a);
	a->ready = false; /* its fd is about to close */
	pthread_mutex_unlock(&a->mu);
}

void rd_ahead_stop(struct rd_ahead *a)
{
	if (a->started) {
		ahead_settle(a);
		a->quit = true;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->th, NULL);
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		a->started = false;
	}
	free(a->buf);
	a->buf = NULL;
	a->cap = 0;
}
