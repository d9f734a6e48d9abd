/* SPDX-License-Identifier: MIT */
/*
 * bridge.h - `spillway bridge kafka`: its state, shared by tools/cmd_bridge.c
 * (the command: options, the read loop, the group commit) and
 * tools/bridge_kafka.c (the librdkafka side: the producer, delivery
 * reports, transactions, the last position Kafka holds).
 */
#ifndef SPILLWAY_TOOLS_BRIDGE_H
#define SPILLWAY_TOOLS_BRIDGE_H

#include "cli.h"

#include <librdkafka/rdkafka.h>

#define MAX_X 64

struct bridge {
	const char *name, *brokers, *ktopic, *group;
	char group_buf[SPW_NAME_MAX + 1];
	int32_t partition;
	double timeout_s;
	bool exactly_once, in_txn;
	int64_t txn_next;   /* the position after the last record of the open transaction */
	struct where from;
	const char *x[MAX_X];
	int nx;
	/* delivery state, touched only from rd_kafka_poll on this thread */
	int64_t acked;      /* the position after the last record Kafka acknowledged */
	int64_t committed;  /* what the group file says */
	int64_t skip_pos;   /* --exactly-once: the record Kafka has last, skipped once */
	int fatal;          /* a delivery failed: stop, commit nothing past it */
	char why[512];
	struct ring_held member; /* the group's one reader (spill/group.c) */
	uint64_t delivered, sent;
};

/* tools/bridge_kafka.c. The producer, configured (idempotent, acks=all, or
 * transactional with --exactly-once; -X properties last), or NULL after
 * saying why. */
rd_kafka_t *bridge_producer_new(struct bridge *b);
/* The brokers answer and the topic and partition exist, within --timeout.
 * 0, or -1 after saying why. */
int bridge_kafka_check(rd_kafka_t *rk, struct bridge *b);
/* One record to librdkafka (a full queue is waited out). 0 or -1 (fatal). */
int bridge_forward(rd_kafka_t *rk, struct bridge *b, const struct spw_record *rec);
/* A transaction call's error: said in b->why and fatal; 0 when e is NULL. */
int bridge_txn_err(struct bridge *b, rd_kafka_error_t *e, const char *what);
int bridge_txn_begin(rd_kafka_t *rk, struct bridge *b);
/* Commit the open transaction; its records then count as acknowledged. */
int bridge_txn_commit(rd_kafka_t *rk, struct bridge *b);
/* The last spillway.pos Kafka holds committed in the partition, -1 none,
 * < -1 on error (b->why). */
int64_t bridge_last_pos(struct bridge *b);

#endif
