/* SPDX-License-Identifier: MIT */
/*
 * cmd_bridge.c - spillway bridge kafka NAME --brokers HOST:PORT[,...]
 *                [--kafka-topic T] [--partition N] [--group G] [--from WHERE]
 *                [--timeout SEC] [-X key=value ...]
 *
 * Forwards a topic to Apache Kafka through librdkafka, at least once and
 * without a gap (docs/cli.md, "bridge kafka"):
 *  - one spw_reader (disk, then live) feeds an idempotent producer with
 *    acks=all: Kafka keeps each partition's order and drops its own retries;
 *  - every Kafka record carries the header `spillway.pos` (the record's
 *    position, in decimal ASCII) and the record's timestamp (ms);
 *  - the Spillway group (default bridge-kafka-<T>) is committed only up to
 *    records whose delivery report succeeded, in order; a restart goes on
 *    from there, so a kill -9 repeats at most what was in flight;
 *  - brokers away: librdkafka retries for ever (message.timeout.ms=0 unless
 *    -X says otherwise) and the bridge waits, blocked on the delivery queue,
 *    saying so once; the topic keeps spilling meanwhile, nothing is lost;
 *  - a broker list nobody answers, a Kafka topic that does not exist, an
 *    authentication or other fatal error: one line and exit 1 within
 *    --timeout (default 30 s); SIGTERM/SIGINT: flush, commit, exit 0.
 * With --exactly-once the producer is transactional (transactional.id
 * spillway-bridge-<T>-<partition>): records go out in transactions of at
 * most 100 ms; at start the bridge reads, read_committed, the last
 * spillway.pos Kafka holds in the partition and resumes right after it, so
 * a bridge killed at any instant and restarted writes every record once.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: spillway bridge kafka NAME --brokers HOST:PORT[,...] [--kafka-topic T]\n"
	"                             [--partition N] [--group G] [--from WHERE]\n"
	"                             [--exactly-once] [--timeout SEC] [-X key=value ...]\n"
	"Forward topic NAME to Apache Kafka, at least once, in order, without a gap.\n"
	"  --brokers LIST    bootstrap brokers (bootstrap.servers)\n"
	"  --kafka-topic T   the Kafka topic (default: NAME); it must exist\n"
	"  --partition N     the partition written (default 0)\n"
	"  --group G         the Spillway group that records what Kafka acknowledged\n"
	"                    (default bridge-kafka-T); a restart goes on from it\n"
	"  --from WHERE      where to start when the group has no position yet\n"
	"                    (default earliest; see: spillway help positions)\n"
	"  --timeout SEC     give up on brokers that never answer, at start (default 30)\n"
	"  --exactly-once    transactions; a restart resumes after the last record\n"
	"                    Kafka committed, so each record is written once\n"
	"  -X key=value      any librdkafka property (security.protocol, sasl.*, ssl.*,\n"
	"                    compression.type, linger.ms, message.timeout.ms, ...)\n"
	"Each Kafka record: the payload, the record's timestamp, and a header\n"
	"spillway.pos = its position in decimal. SIGTERM/SIGINT: flush, commit, exit 0.\n"
	"Example: spillway bridge kafka orders --brokers kafka1:9092,kafka2:9092\n" CLI_COMMON_HELP;

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
	uint64_t delivered, sent;
};

static int opt_partition(void *dst, const char *flag, const char *v)
{
	uint64_t n;
	int rc = cli_count(flag, v, &n);

	if (rc)
		return rc;
	if (n > INT32_MAX)
		return cli_usage("%s: %s is too large", flag, v);
	*(int32_t *)dst = (int32_t)n;
	return CLI_OK;
}

/* -X key=value: a librdkafka property. */
static int opt_property(void *dst, const char *flag, const char *v)
{
	struct bridge *b = dst;

	if (!strchr(v, '=') || v[0] == '=')
		return cli_usage("%s: expected key=value, got \"%s\"", flag, v);
	if (b->nx == MAX_X)
		return cli_usage("%s: at most %d properties", flag, MAX_X);
	b->x[b->nx++] = v;
	return CLI_OK;
}

static int bridge_args(int argc, char **argv, struct bridge *b)
{
	const struct cli_opt spec[] = {
		O_STR("brokers", 0, &b->brokers),
		O_STR("kafka-topic", 0, &b->ktopic),
		O_FN("partition", 0, CLI_T(int32_t, &b->partition), opt_partition),
		O_NAME("group", &b->group),
		O_WHERE("from", &b->from, WHERE_ENDS),
		O_SECONDS("timeout", &b->timeout_s, 1),
		O_FLAG("exactly-once", 0, &b->exactly_once),
		O_FN(NULL, 'X', b, opt_property),
		O_END,
	};
	int rc = cli_opts(argc, argv, spec, usage);

	if (rc >= 0)
		return rc;
	if ((rc = cli_topic_arg(argc, argv, &b->name)))
		return rc;
	if (!b->brokers)
		return cli_usage("--brokers is required (HOST:PORT[,...])");
	if (!b->ktopic)
		b->ktopic = b->name;
	if (!b->group) {
		if ((size_t)snprintf(b->group_buf, sizeof(b->group_buf), "bridge-kafka-%s",
				     b->ktopic) >= sizeof(b->group_buf) ||
		    spw_topic_name_check(b->group_buf))
			return cli_usage("the default group bridge-kafka-%s is not a valid group name: "
					 "give one with --group",
					 b->ktopic);
		b->group = b->group_buf;
	}
	return -1;
}

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

static rd_kafka_t *producer_new(struct bridge *b)
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
static int kafka_check(rd_kafka_t *rk, struct bridge *b)
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

/* Record what Kafka acknowledged in the group (only forward). */
static int commit_acked(struct bridge *b)
{
	int r;

	if (b->acked <= b->committed)
		return 0;
	r = seg_group_write(G.data_dir, b->name, b->group, b->acked);
	if (r) {
		cli_err("bridge kafka: cannot commit group \"%s\" at %lld: %s", b->group,
			(long long)b->acked, strerror(-r));
		return -1;
	}
	b->committed = b->acked;
	return 0;
}

/* Hand one record to librdkafka; a full local queue is back-pressure: serve
 * delivery reports and retry (never drop). 0, or -1 (fatal or stopped). */
static int forward(rd_kafka_t *rk, struct bridge *b, const struct spw_record *rec)
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

static void progress(struct bridge *b, struct spw_reader *r, uint64_t *last_ns, uint64_t *last_n)
{
	uint64_t now = cli_mono_ns();
	struct spw_topic *t = NULL;
	struct spw_topic_info in = { 0 };
	int64_t lag = -1;

	if (now - *last_ns < 1000000000ull)
		return;
	if (spw_topic_open(G.shm_dir, b->name, SPW_OPEN_RDONLY, &t) == 0) {
		spw_topic_info(t, &in);
		spw_topic_close(t);
		lag = (int64_t)in.tail - spw_reader_position(r);
	}
	fprintf(stderr, "\rbridge %s -> %s[%d]: %.0f records/s, %llu delivered, lag %lld bytes   ",
		b->name, b->ktopic, (int)b->partition,
		(double)(b->delivered - *last_n) * 1e9 / (double)(now - *last_ns),
		(unsigned long long)b->delivered, (long long)lag);
	*last_ns = now;
	*last_n = b->delivered;
}

/* A transaction call's error: said, and fatal for this run (a restart
 * resumes after what Kafka committed). 0 when there was none. */
static int txn_err(struct bridge *b, rd_kafka_error_t *e, const char *what)
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
static int txn_commit(rd_kafka_t *rk, struct bridge *b)
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
	if (txn_err(b, e, "commit"))
		return -1;
	b->in_txn = false;
	if (b->txn_next > b->acked)
		b->acked = b->txn_next;
	return 0;
}

static int txn_begin(rd_kafka_t *rk, struct bridge *b)
{
	if (b->in_txn)
		return 0;
	if (txn_err(b, rd_kafka_begin_transaction(rk), "begin"))
		return -1;
	b->in_txn = true;
	return 0;
}

/* --exactly-once, at start: the last spillway.pos Kafka holds (committed)
 * in the partition, or -1 when it holds none. Read with a read_committed
 * consumer from the last offsets backwards in growing windows. */
static int64_t kafka_last_pos(struct bridge *b)
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

static int bridge_loop(rd_kafka_t *rk, struct bridge *b, struct spw_reader *r)
{
	struct spw_record recs[256];
	uint64_t last_commit = cli_mono_ns(), last_ns = cli_mono_ns(), last_n = 0;
	bool tty = isatty(2);

	while (!cli_stop && !b->fatal) {
		int n = spw_reader_read(r, recs, 256, 100000000); /* 100 ms */

		if (n < 0) {
			cli_reader_err(b->name, r, n, "bridging");
			return CLI_ERR;
		}
		for (int i = 0; i < n && !b->fatal; i++) {
			if (b->skip_pos >= 0 && recs[i].position == b->skip_pos)
				continue; /* Kafka has it already (--exactly-once resume) */
			if (b->exactly_once && txn_begin(rk, b))
				break;
			if (forward(rk, b, &recs[i]))
				break;
			b->txn_next = recs[i].position + (int64_t)ring_span(recs[i].len);
		}
		b->skip_pos = -1;
		rd_kafka_poll(rk, 0);
		if (cli_mono_ns() - last_commit > (b->exactly_once ? 100000000ull : 200000000ull)) {
			if ((b->exactly_once && txn_commit(rk, b)) || commit_acked(b))
				return CLI_ERR;
			last_commit = cli_mono_ns();
		}
		if (tty)
			progress(b, r, &last_ns, &last_n);
		if (spw_reader_done(r))
			break;
	}
	return CLI_OK;
}

static int bridge_kafka(int argc, char **argv)
{
	struct bridge b = { .timeout_s = 30, .skip_pos = -1 };
	struct spw_reader_opts ro = { 0 };
	struct spw_reader *r = NULL;
	rd_kafka_t *rk;
	int64_t gp;
	int rc;

	if ((rc = bridge_args(argc, argv, &b)) >= 0)
		return rc;
	cli_dirs();
	if (!cli_topic_exists(b.name, NULL, NULL)) {
		cli_not_found(b.name);
		return CLI_ERR;
	}
	cli_catch_signals();
	rk = producer_new(&b);
	if (!rk)
		return CLI_ERR;
	if (kafka_check(rk, &b)) {
		rd_kafka_destroy(rk);
		return CLI_ERR;
	}
	/* Where to go on: with --exactly-once, right after the last record
	 * Kafka committed; else the group's position (what Kafka acknowledged
	 * before); else --from. */
	cli_reader_start(&b.from, &ro);
	if (spw_group_read(G.data_dir, b.name, b.group, &gp) == 0) {
		ro.start = SPW_START_GROUP;
		ro.group = b.group;
		b.acked = b.committed = gp;
	}
	if (b.exactly_once) {
		rd_kafka_error_t *e = rd_kafka_init_transactions(rk, (int)(b.timeout_s * 1000));
		int64_t last = e ? -2 : kafka_last_pos(&b);

		if (e)
			txn_err(&b, e, "init");
		if (last < -1) {
			cli_err("bridge kafka: %s", b.why);
			rd_kafka_destroy(rk);
			return CLI_ERR;
		}
		if (last >= 0) {
			ro.start = SPW_START_POSITION;
			ro.position = last;
			ro.group = NULL;
			b.skip_pos = last;
		}
	}
	rc = spw_reader_open(b.name, &ro, &r);
	if (rc) {
		cli_reader_err(b.name, NULL, rc, "bridging");
		rd_kafka_destroy(rk);
		return CLI_ERR;
	}
	rc = bridge_loop(rk, &b, r);
	/* Stopping (a signal, the end, or a failure): deliver what is in
	 * flight (commit the open transaction), then commit what Kafka
	 * acknowledged. */
	if (!b.fatal && b.exactly_once && txn_commit(rk, &b))
		rc = CLI_ERR;
	if (!b.fatal && rd_kafka_flush(rk, (int)(b.timeout_s * 1000)))
		cli_err("bridge kafka: %d record(s) still unacknowledged after %.0f s: not committed "
			"(a restart sends them again)",
			rd_kafka_outq_len(rk), b.timeout_s);
	rd_kafka_poll(rk, 0);
	if (commit_acked(&b))
		rc = CLI_ERR;
	if (b.fatal) {
		cli_err("bridge kafka: %s; group \"%s\" stays at %lld (a restart goes on from there)",
			b.why, b.group, (long long)b.committed);
		rc = CLI_ERR;
	}
	if (isatty(2))
		fputc('\n', stderr);
	spw_reader_close(r);
	rd_kafka_destroy(rk);
	return rc;
}

int cmd_bridge(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "kafka"))
		return bridge_kafka(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	return cli_usage("bridge: the one bridge is \"kafka\" (spillway bridge kafka --help)");
}
