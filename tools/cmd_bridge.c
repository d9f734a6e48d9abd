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
#include "bridge.h"

#include <errno.h>
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
	int rc = cli_opts_topic(argc, argv, spec, usage, &b->name);

	if (rc >= 0)
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

/* Still the group's one reader? Its lock file removed or replaced (another
 * reader, another bridge, may hold the group now): fatal, nothing more is
 * sent or committed. 0 or -1. */
static int still_ours(struct bridge *b)
{
	char lk[PATH_MAX + SPW_NAME_MAX + 16];
	int r = seg_group_still_held(G.data_dir, b->name, b->group, &b->member);

	if (!r)
		return 0;
	/* The file's name in the topic's groups/ (the whole path may not fit). */
	if (!b->fatal && !spw_group_lock_path(lk, sizeof(lk), G.data_dir, b->name, b->group))
		snprintf(b->why, sizeof(b->why),
			 "group \"%s\" of topic \"%s\" lost: its lock file groups/%.160s was removed "
			 "or replaced, so another reader may hold it now (%s)",
			 b->group, b->name, strrchr(lk, '/') + 1, strerror(-r));
	b->fatal = 1;
	return -1;
}

/* Record what Kafka acknowledged in the group (only forward). */
static int commit_acked(struct bridge *b)
{
	int r;

	if (b->acked <= b->committed)
		return 0;
	if (still_ours(b))
		return -1;
	r = seg_group_write(G.data_dir, b->name, b->group, b->acked);
	if (r) {
		cli_err("bridge kafka: cannot commit group \"%s\" at %lld: %s", b->group,
			(long long)b->acked, strerror(-r));
		return -1;
	}
	b->committed = b->acked;
	return 0;
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

static int bridge_loop(rd_kafka_t *rk, struct bridge *b, struct spw_reader *r)
{
	struct spw_record recs[256];
	uint64_t last_commit = cli_mono_ns(), last_ns = cli_mono_ns(), last_n = 0, looked = 0;
	bool tty = isatty(2);

	while (!cli_stop && !b->fatal) {
		int n = spw_reader_read(r, recs, 256, 100000000); /* 100 ms */

		if (n < 0) {
			cli_reader_err(b->name, r, n, "bridging");
			return CLI_ERR;
		}
		if (n > 0 && still_ours(b))
			return CLI_ERR; /* said by bridge_stop (b->why) */
		for (int i = 0; i < n && !b->fatal; i++) {
			if (b->skip_pos >= 0 && recs[i].position == b->skip_pos)
				continue; /* Kafka has it already (--exactly-once resume) */
			if (b->exactly_once && bridge_txn_begin(rk, b))
				break;
			if (bridge_forward(rk, b, &recs[i]))
				break;
			b->txn_next = recs[i].position + (int64_t)ring_span(recs[i].len);
		}
		b->skip_pos = -1;
		rd_kafka_poll(rk, 0);
		if (cli_mono_ns() - last_commit > (b->exactly_once ? 100000000ull : 200000000ull)) {
			if ((b->exactly_once && bridge_txn_commit(rk, b)) || commit_acked(b))
				return CLI_ERR;
			last_commit = cli_mono_ns();
		}
		if (tty)
			progress(b, r, &last_ns, &last_n);
		if (spw_reader_done(r))
			break;
		/* A deleted topic sends nothing more: say so, rather than wait
		 * for ever (what was sent is flushed and committed after us). */
		if (n == 0 && cli_mono_ns() - looked > 1000000000ull) {
			looked = cli_mono_ns();
			if (spw_reader_deleted(r) == 1) {
				cli_err("bridge kafka: topic \"%s\" was deleted while bridging it (at "
					"position %lld); stopping",
					b->name, (long long)spw_reader_position(r));
				return CLI_ERR;
			}
		}
	}
	return CLI_OK;
}

/* Where to go on: with --exactly-once, right after the last record Kafka
 * committed; else the group's position (what Kafka acknowledged before);
 * else --from. 0, or -1 after saying why. */
static int resume_from(rd_kafka_t *rk, struct bridge *b, struct spw_reader_opts *ro)
{
	int64_t gp, last;
	rd_kafka_error_t *e;
	int g;

	cli_reader_start(&b->from, ro);
	/* Read with the group held (bridge_kafka): a position, not
	 * SPW_START_GROUP, whose reader would try to take the group again. */
	g = spw_group_read(G.data_dir, b->name, b->group, &gp);
	if (g == 0) {
		ro->start = SPW_START_POSITION;
		ro->position = gp;
		b->acked = b->committed = gp;
	} else if (cli_group_unreadable(b->name, b->group, g,
					"and the bridge then starts at --from (what this group "
					"already sent to Kafka is not known any more)")) {
		/* Not --from in its place: with latest, what the group had not
		 * sent would never reach Kafka, and the file would be gone. */
		return -1;
	}
	if (!b->exactly_once)
		return 0;
	e = rd_kafka_init_transactions(rk, (int)(b->timeout_s * 1000));
	last = e ? -2 : bridge_last_pos(b);
	if (e)
		bridge_txn_err(b, e, "init");
	if (last < -1) {
		cli_err("bridge kafka: %s", b->why);
		return -1;
	}
	if (last >= 0) {
		ro->start = SPW_START_POSITION;
		ro->position = last;
		ro->group = NULL;
		b->skip_pos = last;
	}
	return 0;
}

/* Stopping (a signal, the end, or a failure): deliver what is in flight
 * (commit the open transaction), then commit what Kafka acknowledged.
 * The exit status, from the loop's rc. */
static int bridge_stop(rd_kafka_t *rk, struct bridge *b, int rc)
{
	if (!b->fatal && b->exactly_once && bridge_txn_commit(rk, b))
		rc = CLI_ERR;
	if (!b->fatal && rd_kafka_flush(rk, (int)(b->timeout_s * 1000)))
		cli_err("bridge kafka: %d record(s) still unacknowledged after %.0f s: not committed "
			"(a restart sends them again)",
			rd_kafka_outq_len(rk), b->timeout_s);
	rd_kafka_poll(rk, 0);
	if (commit_acked(b))
		rc = CLI_ERR;
	if (b->fatal) {
		cli_err("bridge kafka: %s; group \"%s\" stays at %lld (a restart goes on from there)",
			b->why, b->group, (long long)b->committed);
		rc = CLI_ERR;
	}
	if (isatty(2))
		fputc('\n', stderr);
	return rc;
}

static int bridge_kafka(int argc, char **argv)
{
	struct bridge b = { .timeout_s = 30, .skip_pos = -1, .member = { -1, NULL } };
	struct spw_reader_opts ro = { 0 };
	struct spw_reader *r = NULL;
	rd_kafka_t *rk;
	int rc;

	if ((rc = bridge_args(argc, argv, &b)) >= 0)
		return rc;
	cli_dirs();
	if (!cli_topic_exists(b.name, NULL, NULL)) {
		cli_not_found(b.name);
		return CLI_ERR;
	}
	/* The group's one reader before anything else: a second bridge of this
	 * topic and group must not start a Kafka producer (with --exactly-once,
	 * its transactional id would fence the running bridge's). Bridges with
	 * other groups into the same partition are not stopped (docs/bridge.md). */
	rc = seg_group_join(G.data_dir, b.name, b.group, &b.member);
	if (rc) {
		cli_group_err(b.name, b.group, rc);
		return CLI_ERR;
	}
	cli_catch_signals();
	rk = bridge_producer_new(&b);
	if (!rk) {
		seg_group_leave(&b.member);
		return CLI_ERR;
	}
	if (bridge_kafka_check(rk, &b) || resume_from(rk, &b, &ro)) {
		rd_kafka_destroy(rk);
		seg_group_leave(&b.member);
		return CLI_ERR;
	}
	rc = spw_reader_open(b.name, &ro, &r);
	if (rc) {
		cli_reader_err(b.name, NULL, rc, "bridging");
		rd_kafka_destroy(rk);
		seg_group_leave(&b.member);
		return CLI_ERR;
	}
	rc = bridge_stop(rk, &b, bridge_loop(rk, &b, r));
	spw_reader_close(r);
	rd_kafka_destroy(rk);
	seg_group_leave(&b.member);
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
