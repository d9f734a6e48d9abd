/* SPDX-License-Identifier: MIT */
/*
 * sides.c - the two processes of a comparison case (compare.h): the same
 * loops for every system, only the channel differs.
 */
#define _GNU_SOURCE
#include "compare.h"

#include "../../tools/bench_proc.h"
#include "../../tools/bench_topo.h"

#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WARMUP_TRIPS 1000
#define FILE_BUF (1u << 20)

/* The hand-off with the parent (tools/bench_proc.h): err and count, bad,
 * t_end and the histogram are published by the state stores. */
#define side_fail(s, ...) \
	bench_proc_fail(&(s)->state, ST_FAILED, (s)->err, sizeof((s)->err), __VA_ARGS__)
#define side_done(s) bench_proc_exit(&(s)->state, ST_DONE, 0)

static void side_ready(struct ctl *c, struct side *s, int pu)
{
	s->pinned = topo_bind_thread(pu) == 0;
	bench_proc_ready(&s->state, ST_READY, &c->go);
}

static bool stop_asked(struct ctl *c)
{
	/* Relaxed: a request only; results travel by state. */
	return atomic_load_explicit(&c->stop, memory_order_relaxed) != 0;
}

/* --- throughput ---------------------------------------------------------------------- */

struct rx {
	uint32_t size;
	uint64_t next, bad, fold;
};

static int on_msg(void *arg, const void *data, uint32_t len)
{
	struct rx *x = arg;
	uint64_t seq = 0;

	if (len == x->size)
		memcpy(&seq, data, sizeof(seq));
	if (len != x->size || seq != x->next)
		x->bad++;
	x->next = seq + 1;
	x->fold ^= bench_fold(data, len);
	return 0;
}

/* The batch sender (cfg.batch not 0: the spillway-batch row): batches of
 * cfg.batch messages (<= 1024 of <= 1 MiB: compare.c parse), each with its
 * sequence number, one spwc_send_batch each. */
static uint64_t send_batches(struct ctl *c, struct side *s, struct chan *ch)
{
	uint32_t n = ch->cfg.batch, size = ch->cfg.size;
	unsigned char *buf;
	struct spw_msg *m = bench_batch_new(n, size, &buf);
	uint64_t i;
	int r;

	if (!m)
		side_fail(s, "sender: out of memory");
	for (i = 0; !stop_asked(c); i += n) {
		for (uint32_t k = 0; k < n; k++) {
			uint64_t seq = i + k;

			memcpy(buf + (size_t)k * size, &seq, sizeof(seq));
		}
		if ((r = spwc_send_batch(ch, m, n)) < 0)
			side_fail(s, "send batch at %llu: %s", (unsigned long long)i, strerror(-r));
	}
	free(m);
	free(buf);
	return i;
}

void side_tp_sender(struct ctl *c, struct chan *ch, int pu)
{
	struct side *s = &c->side[0];
	unsigned char *buf = NULL;
	char err[256];
	uint64_t i;
	int r;

	/* The batch row sends with the batch API whatever N (1 too). */
	if (!ch->cfg.batch && !(buf = bench_payload(ch->cfg.size)))
		side_fail(s, "sender: out of memory");
	if (chan_open(ch, CHAN_TX, err, sizeof(err)))
		side_fail(s, "sender: %s", err);
	side_ready(c, s, pu);
	if (ch->cfg.batch)
		i = send_batches(c, s, ch);
	else
		for (i = 0; (i & 15) || !stop_asked(c); i++) {
			memcpy(buf, &i, sizeof(i));
			if ((r = chan_send(ch, buf, ch->cfg.size)) < 0)
				side_fail(s, "send %llu: %s", (unsigned long long)i, strerror(-r));
		}
	free(buf);
	s->count = i;
	if ((r = chan_send_end(ch)) < 0)
		side_fail(s, "send the end: %s", strerror(-r));
	chan_close(ch);
	side_done(s);
}

void side_tp_receiver(struct ctl *c, struct chan *ch, int pu)
{
	struct side *s = &c->side[1];
	struct rx x = { ch->cfg.size, 0, 0, 0 };
	uint64_t count = 0, idle = 0, last = 0;
	char err[256];
	int n;

	if (chan_open(ch, CHAN_RX, err, sizeof(err)))
		side_fail(s, "receiver: %s", err);
	side_ready(c, s, pu);
	while ((n = chan_recv(ch, on_msg, &x)) != -ENODATA) {
		if (n > 0) {
			count += (uint64_t)n;
			idle = 0;
			continue;
		}
		if (n < 0)
			side_fail(s, "receive after %llu: %s", (unsigned long long)count, strerror(-n));
		if ((++idle & 0xffff) == 0) {
			uint64_t now = ring_monotonic_ns();

			if (!last || idle == 0x10000)
				last = now;
			else if (now - last > 10000000000ull)
				side_fail(s, "no message for 10 s after %llu", (unsigned long long)count);
		}
	}
	/* The end marker comes right behind the last message: its arrival
	 * ends the run (no clock read per batch: that cost the receiver as
	 * much as a small message). */
	s->t_end = ring_monotonic_ns();
	s->count = count;
	s->bad = x.bad;
	s->sink = x.fold;
	s->redelivered = ch->redelivered;
	chan_close(ch);
	side_done(s);
}

/* --- round trip ------------------------------------------------------------------------ */

struct pong {
	uint32_t size;
	uint64_t expect, bad, fold;
	uint64_t t1; /* the clock when the handler saw the pong */
	bool got;
};

static int on_pong(void *arg, const void *data, uint32_t len)
{
	struct pong *x = arg;
	uint64_t seq = 0;

	x->t1 = ring_monotonic_ns();
	if (len == x->size)
		memcpy(&seq, data, sizeof(seq));
	x->bad += len != x->size || seq != x->expect;
	x->fold ^= bench_fold(data, len);
	x->got = true;
	return 1;
}

void side_rtt_pinger(struct ctl *c, struct chan *ping, struct chan *pong, int pu)
{
	struct side *s = &c->side[0];
	unsigned char *buf = bench_payload(ping->cfg.size);
	struct pong x = { ping->cfg.size, 0, 0, 0, 0, false };
	bool warm = false;
	char err[256];
	uint64_t i;
	int r;

	if (!buf || chan_open(ping, CHAN_TX, err, sizeof(err)) ||
	    chan_open(pong, CHAN_RX, err, sizeof(err)))
		side_fail(s, "pinger: %s", buf ? err : "out of memory");
	side_ready(c, s, pu);
	for (i = 0; !stop_asked(c); i++) {
		uint64_t t0, t1;

		memcpy(buf, &i, sizeof(i));
		x.expect = i;
		x.got = false;
		/* Timed as Aeron's cping times its trips: from just before the
		 * send to the pong's handler (on_pong), not to the return of
		 * the receive call (its release and bookkeeping after the
		 * handler: ~10-60 ns more per trip on this VM, docs/HACKING.md). */
		t0 = ring_monotonic_ns();
		if ((r = chan_send(ping, buf, ping->cfg.size)) < 0)
			side_fail(s, "send ping %llu: %s", (unsigned long long)i, strerror(-r));
		while (!x.got) {
			if ((r = chan_recv(pong, on_pong, &x)) < 0)
				side_fail(s, "receive pong %llu: %s", (unsigned long long)i, strerror(-r));
			if (r == 0)
				bench_relax(); /* see side_rtt_ponger */
		}
		t1 = x.t1;
		/* Warm-up: the first 1000 round trips or the first tenth of the
		 * run, whichever ends first, are timed and then forgotten. */
		if (!warm && (i == WARMUP_TRIPS || t1 - c->t0 > c->dur_ns / 10)) {
			hist_init(&c->rtt);
			warm = true;
		}
		hist_record(&c->rtt, t1 - t0);
	}
	s->count = i;
	s->bad = x.bad;
	s->sink = x.fold;
	if ((r = chan_send_end(ping)) < 0)
		side_fail(s, "send the end: %s", strerror(-r));
	chan_close(ping);
	chan_close(pong);
	side_done(s);
}

struct echo {
	struct chan *out;
	int err;
	uint64_t n;
};

static int on_ping(void *arg, const void *data, uint32_t len)
{
	struct echo *e = arg;

	e->n++;
	e->err = chan_send(e->out, data, len);
	return 1;
}

void side_rtt_ponger(struct ctl *c, struct chan *ping, struct chan *pong, int pu)
{
	struct side *s = &c->side[1];
	struct echo e = { pong, 0, 0 };
	char err[256];
	int r;

	if (chan_open(ping, CHAN_RX, err, sizeof(err)) || chan_open(pong, CHAN_TX, err, sizeof(err)))
		side_fail(s, "ponger: %s", err);
	side_ready(c, s, pu);
	while ((r = chan_recv(ping, on_ping, &e)) != -ENODATA) {
		/* One pause after a look that found nothing (as Aeron's busy-spin
		 * idle strategy): polling again at once takes the line back from
		 * the writer in the middle of its record. Measured on Spillway,
		 * 64 B: p50 ~240 ns instead of ~261 near, ~790 instead of ~890 far
		 * (docs/HACKING.md). */
		if (r == 0)
			bench_relax();
		if (r < 0 || e.err < 0)
			side_fail(s, "echo %llu: %s", (unsigned long long)e.n, strerror(r < 0 ? -r : -e.err));
	}
	s->count = e.n;
	/* No end marker on pong: the pinger stopped reading (a zmq message to a
	 * closed peer would hold the close for its whole linger). */
	chan_close(ping);
	chan_close(pong);
	side_done(s);
}

/* --- file writer ---------------------------------------------------------------------- */

void side_file_writer(struct ctl *c, uint32_t size, const char *path, int pu)
{
	struct side *s = &c->side[0];
	unsigned char *msg = bench_payload(size), *buf = aligned_alloc(4096, FILE_BUF);
	size_t per = FILE_BUF / size, fill = 0;
	uint64_t i = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || !msg || !buf || per == 0)
		side_fail(s, "file %s: %s", path, fd < 0 ? strerror(errno) : "out of memory");
	side_ready(c, s, pu);
	for (;;) {
		memcpy(buf + fill * size, msg, size);
		memcpy(buf + fill * size, &i, sizeof(i));
		i++;
		if (++fill == per) {
			if (write(fd, buf, fill * size) != (ssize_t)(fill * size))
				side_fail(s, "write %s: %s", path, strerror(errno));
			fill = 0;
			if (stop_asked(c))
				break;
		}
	}
	if (fdatasync(fd))
		side_fail(s, "fdatasync %s: %s", path, strerror(errno));
	s->t_end = ring_monotonic_ns();
	s->count = i;
	close(fd);
	side_done(s);
}

