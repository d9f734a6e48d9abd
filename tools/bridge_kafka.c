/* SPDX-License-Identifier: MIT */
/*
 * bridge_kafka.c - the librdkafka side of `spillway bridge kafka`
 * (tools/bridge.h; the command itself is tools/cmd_bridge.c): the producer
 * and its configuration, delivery reports and errors, the forwarding of one
 * record with its spillway.pos header, transactions (--exactly-once) and
 * the last position Kafka holds, read back at start.
 */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A delivery report (rd_kafka_poll, this thread): records are produced in
 * position order to one partition by an idempotent producer, so reports
 * come in that order; the first failure stops the bridge, and nothing at
 * or after it is committed (at least once). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct bridge *b = opaque;
	int64_t next = (int64_t)(intptr_t)m->_private;

	(void)rk;
	if (m->err) {
		if (!b->fatal)
			snprintf(b->why, sizeof(b->why), "Kafka refused record at position %lld: %s",
				 (long long)(next - 1), rd_kafka_err2str(m->err));
		b->fatal = 1;
		return;
	}
	/* --exactly-once: acknowledged when its transaction commits. */
	if (!b->fatal && !b->exactly_once && next > b->acked)
		b->acked = next;
	b->delivered++;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct bridge *b = opaque;
	char fatal[256];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		snprintf(b->why, sizeof(b->why), "Kafka: fatal error: %s", fatal);
		b->fatal = 1;
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
		snprintf(b->why, sizeof(b->why), "Kafka: %s", reason);
		b->fatal = 1;
		return;
	}
	/* Transient (brokers down, a timeout): librdkafka retries. */
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
		cli_err("Kafka: %s (retrying; nothing is lost, the topic keeps spilling)", reason);
}

rd_kafka_t *bridge_producer_new(struct bridge *b)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];
	rd_kafka_t *rk;
	static const char *const defaults[][2] = {
		{ "enable.idempotence", "true" },
		{ "acks", "all" },
		{ "message.timeout.ms", "0" }, /* never give up on a record */
		{ "linger.ms", "5" },
		{ "client.id", "spillway-bridge" },
	};

	if (rd_kafka_conf_set(conf, "bootstrap.servers", b->brokers, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK)
		goto bad;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK)
			goto bad;
	for (int i = 0; i < b->nx; i++) {
		char key[256];
		const char *eq = strchr(b->x[i], '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - b->x[i]), b->x[i]);
		if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
			goto bad;
	}
	if (b->exactly_once) {
		char tid[512];

		snprintf(tid, sizeof(tid), "spillway-bridge-%s-%d", b->ktopic, (int)b->partition);
		/* Before -X, which may name another one. */
		if (rd_kafka_conf_set(conf, "transactional.id", tid, err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK)
			goto bad;
		for (int i = 0; i < b->nx; i++)
			if (!strncmp(b->x[i], "transactional.id=", 17) &&
			    rd_kafka_conf_set(conf, "transactional.id", b->x[i] + 17, err,
					      sizeof(err)) != RD_KAFKA_CONF_OK)
				goto bad;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_opaque(conf, b);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk)
		return rk;
	cli_err("bridge kafka: cannot create the Kafka producer: %s", err);
	return NULL;
bad:
	rd_kafka_conf_destroy(conf);
	cli_err("bridge kafka: %s", err);
	return NULL;
}

/* The brokers answer and the Kafka topic and partition exist, within the
 * timeout: 0, or -1 after saying what is wrong. */
int bridge_kafka_check(rd_kafka_t *rk, struct bridge *b)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, b->ktopic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e;
	int r = -1;

	if (!rkt) {
		cli_err("bridge kafka: bad Kafka topic name \"%s\"", b->ktopic);
		return -1;
	}
	e = rd_kafka_metadata(rk, 0, rkt, &md, (int)(b->timeout_s * 1000));
	if (e)
		cli_err("bridge kafka: brokers %s did not answer within %.0f s: %s (check --brokers "
			"and -X security settings)",
			b->brokers, b->timeout_s, rd_kafka_err2str(e));
	else if (b->fatal)
		cli_err("bridge kafka: %s", b->why);
	else if (md->topic_cnt < 1 || md->topics[0].err)
		cli_err("bridge kafka: Kafka topic \"%s\": %s (create it first, or enable "
			"auto-creation on the brokers)",
			b->ktopic,
			md->topic_cnt < 1 ? "no metadata" : rd_kafka_err2str(md->topics[0].err));
	else if (b->partition >= md->topics[0].partition_cnt)
		cli_err("bridge kafka: Kafka topic \"%s\" has %d partition(s): no partition %d",
			b->ktopic, md->topics[0].partition_cnt, (int)b->partition);
	else
		r = 0;
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return r;
}

/* Hand one record to librdkafka; a full local queue is back-pressure: serve
 * delivery reports and retry (never drop). 0, or -1 (fatal or stopped). */
int bridge_forward(rd_kafka_t *rk, struct bridge *b, const struct spw_record *rec)
{
	char pos[24];
	int64_t next = rec->position + (int64_t)ring_span(rec->len);
	bool said = false;

	snprintf(pos, sizeof(pos), "%lld", (long long)rec->position);
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(b->ktopic), RD_KAFKA_V_PARTITION(b->partition),
			RD_KAFKA_V_VALUE((void *)rec->data, rec->len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_TIMESTAMP((int64_t)(rec->timestamp_ns / 1000000)),
			RD_KAFKA_V_HEADER("spillway.pos", pos, (ssize_t)strlen(pos)),
			RD_KAFKA_V_OPAQUE((void *)(intptr_t)next), RD_KAFKA_V_END);

		if (!e) {
			b->sent++;
			return 0;
		}
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			snprintf(b->why, sizeof(b->why), "producing to Kafka: %s", rd_kafka_err2str(e));
			b->fatal = 1;
			return -1;
		}
		if (!said) {
			cli_err("bridge kafka: Kafka is not keeping up (local queue full at position "
				"%lld): waiting; nothing is lost, the topic keeps spilling",
				(long long)rec->position);
			said = true;
		}
		rd_kafka_poll(rk, 100); /* sleeps in librdkafka: no spinning */
		if (b->fatal || cli_stop)
			return -1;
	}
}

/* A transaction call's error: said, and fatal for this run (a restart
 * resumes after what Kafka committed). 0 when there was none. */
int bridge_txn_err(struct bridge *b, rd_kafka_error_t *e, const char *what)
{
	if (!e)
		return 0;
	snprintf(b->why, sizeof(b->why), "Kafka transaction: %s: %.300s%s", what,
		 rd_kafka_error_string(e),
		 rd_kafka_error_txn_requires_abort(e) ? " (aborted: nothing of it is visible)" : "");
	b->fatal = 1;
	rd_kafka_error_destroy(e);
	return -1;
}

/* Commit the open transaction: then (and only then) its records count as
 * acknowledged. Retriable errors are retried within the timeout. */
int bridge_txn_commit(rd_kafka_t *rk, struct bridge *b)
{
	rd_kafka_error_t *e;

	if (!b->in_txn)
		return 0;
	for (;;) {
		e = rd_kafka_commit_transaction(rk, (int)(b->timeout_s * 1000));
		if (!e || !rd_kafka_error_is_retriable(e))
			break;
		rd_kafka_error_destroy(e);
	}
	if (e && rd_kafka_error_txn_requires_abort(e)) {
		rd_kafka_error_t *a = rd_kafka_abort_transaction(rk, (int)(b->timeout_s * 1000));

		if (a)
			rd_kafka_error_destroy(a);
	}
	if (bridge_txn_err(b, e, "commit"))
		return -1;
	b->in_txn = false;
	if (b->txn_next > b->acked)
		b->acked = b->txn_next;
	return 0;
}

int bridge_txn_begin(rd_kafka_t *rk, struct bridge *b)
{
	if (b->in_txn)
		return 0;
	if (bridge_txn_err(b, rd_kafka_begin_transaction(rk), "begin"))
		return -1;
	b->in_txn = true;
	return 0;
}

/* --exactly-once, at start: the last spillway.pos Kafka holds (committed)
 * in the partition, or -1 when it holds none. Read with a read_committed
 * consumer from the last offsets backwards in growing windows. */
int64_t bridge_last_pos(struct bridge *b)
{
	char err[512];
	int64_t lo = 0, hi = 0, last = -1;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *c;

	rd_kafka_conf_set(conf, "bootstrap.servers", b->brokers, err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", "spillway-bridge-resume", err, sizeof(err));
	rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	for (int i = 0; i < b->nx; i++) { /* security settings apply here too */
		char key[256];
		const char *eq = strchr(b->x[i], '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - b->x[i]), b->x[i]);
		if (strncmp(key, "transactional.", 14) && strcmp(key, "enable.idempotence") &&
		    strcmp(key, "acks") && strncmp(key, "message.", 8) && strcmp(key, "linger.ms"))
			rd_kafka_conf_set(conf, key, eq + 1, err, sizeof(err));
	}
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!c) {
		snprintf(b->why, sizeof(b->why), "cannot create the Kafka consumer: %.400s", err);
		return -2;
	}
	if (rd_kafka_query_watermark_offsets(c, b->ktopic, b->partition, &lo, &hi,
					     (int)(b->timeout_s * 1000))) {
		snprintf(b->why, sizeof(b->why), "cannot read the offsets of %s[%d]", b->ktopic,
			 (int)b->partition);
		rd_kafka_destroy(c);
		return -2;
	}
	for (int64_t back = 64; last < 0 && hi > lo; back *= 16) {
		rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
		int64_t from = hi - back > lo ? hi - back : lo;
		bool eof = false;

		rd_kafka_topic_partition_list_add(tp, b->ktopic, b->partition)->offset = from;
		rd_kafka_assign(c, tp);
		rd_kafka_topic_partition_list_destroy(tp);
		for (uint64_t until = cli_mono_ns() + (uint64_t)(b->timeout_s * 1e9);
		     !eof && cli_mono_ns() < until;) {
			rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
			rd_kafka_headers_t *h;
			const void *v;
			size_t n;
			char num[24];

			if (!m)
				continue;
			eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
			if (!m->err && !rd_kafka_message_headers(m, &h) &&
			    !rd_kafka_header_get_last(h, "spillway.pos", &v, &n) && n < sizeof(num)) {
				memcpy(num, v, n);
				num[n] = '\0';
				last = strtoll(num, NULL, 10);
			}
			rd_kafka_message_destroy(m);
		}
		if (from == lo)
			break;
	}
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return last;
}
