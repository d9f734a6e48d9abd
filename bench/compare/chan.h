/* SPDX-License-Identifier: MIT */
/*
 * chan.h - one-way message channels over each system the comparison runs:
 * Spillway (live or spilling), pipe, Unix domain socket (SOCK_STREAM),
 * POSIX message queue, ZeroMQ ipc:// (PUSH -> PULL).
 *
 * Life of a channel:
 *   parent   chan_create()          before fork: pipe/socketpair/queue/topic
 *   child    chan_open(TX or RX)    the end it uses (closes the other fds)
 *   parent   chan_parent_release()  after fork: drops its copies of the fds,
 *                                   so a reader sees end-of-file
 *   child    chan_send / chan_recv, then chan_send_end (TX), chan_close
 *   parent   chan_destroy()         after the children exited
 *
 * Every send is one message of len bytes (pipe and socket: one write() per
 * message; the receiver reads in bulk and splits the byte stream into the
 * fixed-size messages). busy: non-blocking calls spun on EAGAIN; else the
 * blocking calls. The end of a run is a zero-length message (end of file
 * for the byte streams).
 */
#ifndef SPILLWAY_COMPARE_CHAN_H
#define SPILLWAY_COMPARE_CHAN_H

#include <limits.h>
#include <mqueue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spw_topic;
struct spw_producer;
struct spw_consumer;
struct spw_reader;
struct spw_msg;

enum chan_sys { SYS_SPW = 0, SYS_PIPE, SYS_UNIX, SYS_MQ, SYS_ZMQ };
enum chan_end { CHAN_TX = 0, CHAN_RX = 1 };

/* A message handed to the receiver: valid during the call only. Return 0 to
 * go on, non-zero to stop after it (the rest stays queued). */
typedef int (*chan_msg_fn)(void *arg, const void *data, uint32_t len);

struct chan_cfg {
	enum chan_sys sys;
	bool busy;
	uint32_t size;            /* every message's length */
	uint64_t buf_bytes;       /* buffer asked of the system (pipe, socket, queue, ring) */
	const char *scratch;      /* a directory for ipc:// endpoints */
	/* Spillway only */
	const char *shm_dir, *data_dir;
	bool spill;               /* a daemon spills (it must be running); else NO_SPILL */
	int64_t backoff_ns;       /* the live receiver's spw_consumer_set_backoff; 0 off */
	uint32_t batch;           /* not 0: the sender sends that many per spwc_send_batch call */
	bool no_time;             /* busy sends with time 0 (spw_producer_send_at) */
};

struct chan {
	struct chan_cfg cfg;
	int id;
	enum chan_end end;
	bool eof;
	char desc[160];           /* what the system granted: buffer sizes */
	/* pipe, unix: fd[0] the read end, fd[1] the write end */
	int fd[2];
	unsigned char *rbuf;      /* stream receiver: bytes read, not yet handed out */
	size_t rcap, rstart, rend;
	/* mq */
	char mq_name[64];
	mqd_t mq;
	long mq_msgsize;
	/* zmq */
	char endpoint[PATH_MAX + 16];
	void *zctx, *zsock;
	/* spillway */
	char topic[64];
	struct spw_topic *t;
	struct spw_producer *p;
	struct spw_consumer *c;
	struct spw_reader *r;
	int64_t reclaimed;
	int64_t next_pos;         /* reader: the position after the last record handed out */
	uint64_t redelivered;     /* reader: records it handed out twice (skipped here) */
	/* shared receive buffer (mq, zmq) */
	unsigned char *mbuf;
};

/* 0 or -errno; err says what failed. */
int chan_create(struct chan *ch, const struct chan_cfg *cfg, int id, char *err, size_t errlen);
void chan_parent_release(struct chan *ch);
void chan_destroy(struct chan *ch);

int chan_open(struct chan *ch, enum chan_end end, char *err, size_t errlen);
/* 0 or -errno (-ETIMEDOUT: the peer stopped taking messages for 10 s). */
int chan_send(struct chan *ch, const void *data, uint32_t len);
int chan_send_end(struct chan *ch);
/* Messages delivered (>= 1); 0: nothing yet (busy mode only); -ENODATA: the
 * end was reached; -errno. */
int chan_recv(struct chan *ch, chan_msg_fn fn, void *arg);
void chan_close(struct chan *ch);

/* Spillway channels (chan_spw.c), called by the functions above. */
int spwc_create(struct chan *ch, char *err, size_t errlen);
void spwc_destroy(struct chan *ch);
int spwc_open(struct chan *ch, char *err, size_t errlen);
int spwc_send(struct chan *ch, const void *data, uint32_t len);
/* All n of m, in spw_producer_send_batch calls. 0 or -errno. */
int spwc_send_batch(struct chan *ch, const struct spw_msg *m, uint32_t n);
int spwc_recv(struct chan *ch, chan_msg_fn fn, void *arg);
void spwc_close(struct chan *ch);

/* "zmq 4.3.4" or "zmq: not built in" */
void chan_zmq_version(char *buf, size_t len);

#endif
