/* SPDX-License-Identifier: MIT */
/*
 * chan.c - pipe, Unix socket, POSIX message queue and ZeroMQ channels, and
 * the dispatch to Spillway's (chan_spw.c). See chan.h.
 *
 * Each system gets the buffer the Spillway ring gets (cfg.buf_bytes) where
 * it lets us choose: the pipe via F_SETPIPE_SZ, the socket via SO_SNDBUF /
 * SO_RCVBUF (the kernel caps them at wmem_max / rmem_max), the queue via
 * mq_maxmsg (at most 4096 messages, within msg_max and RLIMIT_MSGQUEUE).
 * ZeroMQ keeps its defaults (high-water mark 1000 messages), its I/O threads
 * unpinned: how it is deployed; its busy mode spins with sched_yield().
 * chan->desc records what each was granted.
 */
#define _GNU_SOURCE
#include "chan.h"

#include "../../tools/bench_proc.h" /* bench_stalled */

#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#define RBUF_BYTES (256u << 10)
#define MQ_MAX_MSGS 4096

void chan_zmq_version(char *buf, size_t len)
{
#ifdef HAVE_ZMQ
	int a, b, c;

	zmq_version(&a, &b, &c);
	snprintf(buf, len, "zmq %d.%d.%d", a, b, c);
#else
	snprintf(buf, len, "zmq: not built in (libzmq3-dev missing)");
#endif
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* --- create / destroy (parent) --------------------------------------------------- */

static int create_pipe(struct chan *ch, char *err, size_t errlen)
{
	int got;

	if (pipe2(ch->fd, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	fcntl(ch->fd[1], F_SETPIPE_SZ, (int)ch->cfg.buf_bytes);
	got = fcntl(ch->fd[1], F_GETPIPE_SZ);
	snprintf(ch->desc, sizeof(ch->desc), "pipe buffer %d KiB", got / 1024);
	return 0;
}

static int create_unix(struct chan *ch, char *err, size_t errlen)
{
	int sv[2], v = (int)ch->cfg.buf_bytes, snd = 0, rcv = 0;
	socklen_t l = sizeof(snd);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	ch->fd[0] = sv[0];
	ch->fd[1] = sv[1];
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	getsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &snd, &l);
	l = sizeof(rcv);
	getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &rcv, &l);
	snprintf(ch->desc, sizeof(ch->desc), "SOCK_STREAM, SO_SNDBUF %d KiB, SO_RCVBUF %d KiB",
		 snd / 1024, rcv / 1024);
	return 0;
}

static long mq_sysctl(const char *name)
{
	char path[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/fs/mqueue/%s", name);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int create_mq(struct chan *ch, char *err, size_t errlen)
{
	struct mq_attr a = { 0 };
	long want = (long)(ch->cfg.buf_bytes / ch->cfg.size);
	mqd_t q;

	snprintf(ch->mq_name, sizeof(ch->mq_name), "/spw-compare-%d-%d", (int)getpid(), ch->id);
	mq_unlink(ch->mq_name);
	long cap = mq_sysctl("msg_max");
	struct rlimit rl;

	a.mq_maxmsg = want < 10 ? 10 : want > MQ_MAX_MSGS ? MQ_MAX_MSGS : want;
	/* Without CAP_SYS_RESOURCE the depth is capped by msg_max, and every
	 * queue of the user counts against RLIMIT_MSGQUEUE (800 KiB by default):
	 * about size + 128 bytes a message, two queues at once in a round trip. */
	if (cap >= 1 && a.mq_maxmsg > cap)
		a.mq_maxmsg = cap;
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		long fit = (long)(rl.rlim_cur / 2 / (ch->cfg.size + 128));

		if (a.mq_maxmsg > fit)
			a.mq_maxmsg = fit > 1 ? fit : 1;
	}
	a.mq_msgsize = ch->cfg.size;
	q = mq_open(ch->mq_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);
	if (q == (mqd_t)-1 && (errno == EINVAL || errno == EMFILE) && a.mq_maxmsg > 10) {
		a.mq_maxmsg = 10; /* the default depth */
		q = mq_open(ch->mq_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);
	}
	if (q == (mqd_t)-1) {
		int e = errno;

		snprintf(err, errlen,
			 "mq_open %s (%ld messages of %u bytes): %s (limits: "
			 "/proc/sys/fs/mqueue/msg_max %ld, msgsize_max %ld)",
			 ch->mq_name, a.mq_maxmsg, ch->cfg.size, strerror(e), mq_sysctl("msg_max"),
			 mq_sysctl("msgsize_max"));
		ch->mq_name[0] = '\0';
		return -e;
	}
	mq_close(q);
	snprintf(ch->desc, sizeof(ch->desc), "mq_maxmsg %ld", a.mq_maxmsg);
	return 0;
}

int chan_create(struct chan *ch, const struct chan_cfg *cfg, int id, char *err, size_t errlen)
{
	memset(ch, 0, sizeof(*ch));
	ch->cfg = *cfg;
	ch->id = id;
	ch->fd[0] = ch->fd[1] = -1;
	ch->mq = (mqd_t)-1;
	switch (cfg->sys) {
	case SYS_SPW:
		return spwc_create(ch, err, errlen);
	case SYS_PIPE:
		return create_pipe(ch, err, errlen);
	case SYS_UNIX:
		return create_unix(ch, err, errlen);
	case SYS_MQ:
		return create_mq(ch, err, errlen);
	case SYS_ZMQ:
#ifdef HAVE_ZMQ
		snprintf(ch->endpoint, sizeof(ch->endpoint), "ipc://%s/zmq-%d-%d", cfg->scratch,
			 (int)getpid(), id);
		snprintf(ch->desc, sizeof(ch->desc), "PUSH -> PULL, default high-water mark");
		return 0;
#else
		snprintf(err, errlen, "built without libzmq");
		return -ENOTSUP;
#endif
	}
	return -EINVAL;
}

void chan_parent_release(struct chan *ch)
{
	close_fd(&ch->fd[0]);
	close_fd(&ch->fd[1]);
}

void chan_destroy(struct chan *ch)
{
	chan_parent_release(ch);
	if (ch->cfg.sys == SYS_MQ && ch->mq_name[0])
		mq_unlink(ch->mq_name);
	if (ch->cfg.sys == SYS_ZMQ && ch->endpoint[0])
		unlink(ch->endpoint + strlen("ipc://"));
	if (ch->cfg.sys == SYS_SPW)
		spwc_destroy(ch);
}

/* --- open / close (child) ----------------------------------------------------------- */

#ifdef HAVE_ZMQ
static int open_zmq(struct chan *ch, char *err, size_t errlen)
{
	/* Close waits up to 5 s for the peer to take every queued message
	 * (the end marker included): under load zmq's I/O threads may lag. */
	int linger = 5000, ivl = 1, r;

	ch->zctx = zmq_ctx_new();
	if (!ch->zctx) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		return -ENOMEM;
	}
	ch->zsock = zmq_socket(ch->zctx, ch->end == CHAN_TX ? ZMQ_PUSH : ZMQ_PULL);
	if (!ch->zsock) {
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
		return -EINVAL;
	}
	zmq_setsockopt(ch->zsock, ZMQ_LINGER, &linger, sizeof(linger));
	/* Connecting before the peer bound: retry after 1 ms, not 100. */
	zmq_setsockopt(ch->zsock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	r = ch->end == CHAN_TX ? zmq_connect(ch->zsock, ch->endpoint)
			       : zmq_bind(ch->zsock, ch->endpoint);
	if (r) {
		snprintf(err, errlen, "zmq %s %s: %s", ch->end == CHAN_TX ? "connect" : "bind",
			 ch->endpoint, zmq_strerror(errno));
		return -EINVAL;
	}
	return 0;
}
#endif

int chan_open(struct chan *ch, enum chan_end end, char *err, size_t errlen)
{
	int r = 0;

	ch->end = end;
	ch->eof = false;
	switch (ch->cfg.sys) {
	case SYS_SPW:
		return spwc_open(ch, err, errlen);
	case SYS_PIPE:
	case SYS_UNIX:
		close_fd(&ch->fd[end == CHAN_TX ? 0 : 1]);
		if (ch->cfg.busy)
			r = set_nonblock(ch->fd[end == CHAN_TX ? 1 : 0]);
		if (!r && end == CHAN_RX) {
			ch->rcap = RBUF_BYTES > 4 * (size_t)ch->cfg.size ? RBUF_BYTES
									  : 4 * (size_t)ch->cfg.size;
			ch->rbuf = malloc(ch->rcap);
			r = ch->rbuf ? 0 : -ENOMEM;
		}
		break;
	case SYS_MQ: {
		struct mq_attr a;

		ch->mq = mq_open(ch->mq_name, (end == CHAN_TX ? O_WRONLY : O_RDONLY) | O_CLOEXEC |
						      (ch->cfg.busy ? O_NONBLOCK : 0));
		if (ch->mq == (mqd_t)-1 || mq_getattr(ch->mq, &a)) {
			r = -errno;
			break;
		}
		ch->mq_msgsize = a.mq_msgsize;
		ch->mbuf = malloc((size_t)a.mq_msgsize);
		r = ch->mbuf ? 0 : -ENOMEM;
		break;
	}
	case SYS_ZMQ:
#ifdef HAVE_ZMQ
		ch->mbuf = malloc(ch->cfg.size);
		r = ch->mbuf ? open_zmq(ch, err, errlen) : -ENOMEM;
		return r;
#else
		r = -ENOTSUP;
#endif
		break;
	}
	if (r)
		snprintf(err, errlen, "open: %s", strerror(-r));
	return r;
}

void chan_close(struct chan *ch)
{
	close_fd(&ch->fd[0]);
	close_fd(&ch->fd[1]);
	free(ch->rbuf);
	ch->rbuf = NULL;
	free(ch->mbuf);
	ch->mbuf = NULL;
	if (ch->mq != (mqd_t)-1)
		mq_close(ch->mq);
	ch->mq = (mqd_t)-1;
#ifdef HAVE_ZMQ
	if (ch->zsock)
		zmq_close(ch->zsock);
	if (ch->zctx)
		zmq_ctx_term(ch->zctx);
	ch->zsock = ch->zctx = NULL;
#endif
	if (ch->cfg.sys == SYS_SPW)
		spwc_close(ch);
}

/* --- send ---------------------------------------------------------------------------- */

static int send_stream(struct chan *ch, const void *data, uint32_t len)
{
	const unsigned char *p = data;
	struct bench_stall st = { 0, 0 };
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(ch->fd[1], p + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			if (bench_stalled(&st))
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

static int send_mq(struct chan *ch, const void *data, uint32_t len)
{
	struct bench_stall st = { 0, 0 };

	while (mq_send(ch->mq, data, len, 0)) {
		if (errno == EAGAIN) {
			if (bench_stalled(&st))
				return -ETIMEDOUT;
			continue;
		}
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

#ifdef HAVE_ZMQ
/* ZeroMQ moves the bytes in its own I/O thread: a bare spin on EAGAIN
 * would starve it whenever the two spinning application threads hold
 * every core (2-core machines), so its busy-poll yields the CPU. */
static void zmq_spin_yield(void)
{
	sched_yield();
}

static int send_zmq(struct chan *ch, const void *data, uint32_t len)
{
	struct bench_stall st = { 0, 0 };

	while (zmq_send(ch->zsock, data, len, ch->cfg.busy ? ZMQ_DONTWAIT : 0) < 0) {
		if (errno == EAGAIN) {
			if (bench_stalled(&st))
				return -ETIMEDOUT;
			zmq_spin_yield();
			continue;
		}
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}
#endif

int chan_send(struct chan *ch, const void *data, uint32_t len)
{
	switch (ch->cfg.sys) {
	case SYS_SPW: return spwc_send(ch, data, len);
	case SYS_PIPE:
	case SYS_UNIX: return send_stream(ch, data, len);
	case SYS_MQ: return send_mq(ch, data, len);
#ifdef HAVE_ZMQ
	case SYS_ZMQ: return send_zmq(ch, data, len);
#else
	case SYS_ZMQ: break;
#endif
	}
	return -ENOTSUP;
}

int chan_send_end(struct chan *ch)
{
	static const char nothing[1];

	if (ch->cfg.sys == SYS_PIPE || ch->cfg.sys == SYS_UNIX) {
		close_fd(&ch->fd[1]); /* the reader sees end-of-file */
		return 0;
	}
	return chan_send(ch, nothing, 0);
}

/* --- receive ---------------------------------------------------------------------------- */

/* Hand out the whole messages buffered; n counts them. True when fn said stop. */
static bool deliver_stream(struct chan *ch, chan_msg_fn fn, void *arg, int *n)
{
	while (ch->rend - ch->rstart >= ch->cfg.size) {
		const unsigned char *m = ch->rbuf + ch->rstart;

		ch->rstart += ch->cfg.size;
		(*n)++;
		if (fn(arg, m, ch->cfg.size))
			return true;
	}
	return false;
}

static int recv_stream(struct chan *ch, chan_msg_fn fn, void *arg)
{
	int n = 0;
	ssize_t r;

	if (deliver_stream(ch, fn, arg, &n) || n)
		return n;
	if (ch->rstart) {
		memmove(ch->rbuf, ch->rbuf + ch->rstart, ch->rend - ch->rstart);
		ch->rend -= ch->rstart;
		ch->rstart = 0;
	}
	r = read(ch->fd[0], ch->rbuf + ch->rend, ch->rcap - ch->rend);
	if (r > 0) {
		ch->rend += (size_t)r;
		deliver_stream(ch, fn, arg, &n);
		return n;
	}
	if (r == 0) {
		ch->eof = true;
		return ch->rend != ch->rstart ? -EPROTO : -ENODATA; /* a torn message */
	}
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

static int recv_mq(struct chan *ch, chan_msg_fn fn, void *arg)
{
	ssize_t r = mq_receive(ch->mq, (char *)ch->mbuf, (size_t)ch->mq_msgsize, NULL);

	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (r == 0) {
		ch->eof = true;
		return -ENODATA;
	}
	fn(arg, ch->mbuf, (uint32_t)r);
	return 1;
}

#ifdef HAVE_ZMQ
static int recv_zmq(struct chan *ch, chan_msg_fn fn, void *arg)
{
	int r = zmq_recv(ch->zsock, ch->mbuf, ch->cfg.size, ch->cfg.busy ? ZMQ_DONTWAIT : 0);

	if (r < 0 && errno == EAGAIN) {
		zmq_spin_yield();
		return 0;
	}
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0) {
		ch->eof = true;
		return -ENODATA;
	}
	if ((uint32_t)r > ch->cfg.size)
		return -EMSGSIZE;
	fn(arg, ch->mbuf, (uint32_t)r);
	return 1;
}
#endif

int chan_recv(struct chan *ch, chan_msg_fn fn, void *arg)
{
	if (ch->eof)
		return -ENODATA;
	switch (ch->cfg.sys) {
	case SYS_SPW: return spwc_recv(ch, fn, arg);
	case SYS_PIPE:
	case SYS_UNIX: return recv_stream(ch, fn, arg);
	case SYS_MQ: return recv_mq(ch, fn, arg);
#ifdef HAVE_ZMQ
	case SYS_ZMQ: return recv_zmq(ch, fn, arg);
#else
	case SYS_ZMQ: break;
#endif
	}
	return -ENOTSUP;
}
