/* SPDX-License-Identifier: MIT */
/*
 * bridge_kafka.c - `spillway bridge kafka` (tools/cmd_bridge.c) against
 * librdkafka's mock cluster (three brokers speaking the Kafka protocol on
 * localhost, created in this process), with a real spillwayd:
 *  - every record arrives in Kafka once, in order, with its bytes, its
 *    timestamp (ms) and the header spillway.pos = its position; SIGTERM
 *    flushes, commits the group up to what Kafka acknowledged, exits 0;
 *  - kill -9 five times at varying instants, each time restarted: no record
 *    is missing (at least once); with --exactly-once every record is in
 *    Kafka exactly once, in order, for a read_committed consumer;
 *  - all brokers down mid-stream, then back: nothing lost, in order;
 *  - brokers that never answer, a partition the Kafka topic lacks, a bad
 *    -X property: one clear line and exit 1 within the --timeout given.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "support_daemon.h"
#include "daemon_case.h"

#define RING (256u << 10)
#define MAXREC 4096u

struct mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	const char *bootstraps;
};

static void mock_start(struct mock *m, const char *topic)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(m->rk);
	m->mc = rd_kafka_mock_cluster_new(m->rk, 3); /* brokers 1, 2, 3 */
	assert_non_null(m->mc);
	m->bootstraps = rd_kafka_mock_cluster_bootstraps(m->mc);
	if (topic)
		assert_int_equal(rd_kafka_mock_topic_create(m->mc, topic, 1, 3), 0);
}

static void mock_stop(struct mock *m)
{
	rd_kafka_mock_cluster_destroy(m->mc);
	rd_kafka_destroy(m->rk);
}

/* Record i: its length, then u64 i and test_fill(i). */
static uint32_t rec_len(uint64_t i)
{
	return 8 + (uint32_t)(i * 53 % 700);
}

static void send_recs(struct spw_producer *p, uint64_t from, uint64_t to, int64_t *pos,
		      uint64_t *ts)
{
	uint8_t buf[800];

	for (uint64_t i = from; i < to; i++) {
		uint32_t len = rec_len(i);

		memcpy(buf, &i, 8);
		test_fill(buf + 8, len - 8, i + 7);
		pos[i] = spw_producer_send_wait(p, buf, len, 10 * TEST_SEC);
		assert_true(pos[i] >= 0);
	}
	(void)ts;
}

/* Run `spillway bridge kafka ...` with the sandbox's dirs; stderr to a file. */
static pid_t bridge_start(struct test_daemon *d, const char *const *args, const char *errfile)
{
	pid_t pid = fork();

	if (pid == 0) {
		const char *argv[24] = { getenv("SPW_CLI"), "bridge", "kafka" };
		int n = 3, fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		for (int i = 0; args[i] && n < 22; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		setenv("SPILLWAY_SHM_DIR", d->shm, 1);
		setenv("SPILLWAY_DATA_DIR", d->data, 1);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	return pid;
}

static int wait_status(pid_t pid, int64_t timeout_ns)
{
	int64_t end = test_now_ns() + timeout_ns;
	int st;

	while (test_now_ns() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		test_sleep_ns(20 * TEST_MS);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The bridge's command line for topic -> ktopic on mock m (extra: one more
 * flag, or NULL), and the file its stderr goes to. */
struct bargs {
	char errfile[1200], brokers[512];
	const char *argv[8];
};

static void bargs_set(struct bargs *a, const struct test_daemon *d, const struct mock *m,
		      const char *topic, const char *ktopic, const char *extra)
{
	snprintf(a->errfile, sizeof(a->errfile), "%s/bridge.err", d->root);
	snprintf(a->brokers, sizeof(a->brokers), "%s", m->bootstraps);
	a->argv[0] = topic;
	a->argv[1] = "--brokers";
	a->argv[2] = a->brokers;
	a->argv[3] = "--kafka-topic";
	a->argv[4] = ktopic;
	a->argv[5] = extra;
	a->argv[6] = NULL;
}

/* Wait until the bridge's group says Kafka acknowledged everything up to
 * `end`. */
static void wait_group(struct test_daemon *d, const char *topic, const char *group, int64_t end)
{
	int64_t until = test_now_ns() + scaled_s(30, 90), gp = -1;

	while (test_now_ns() < until) {
		if (spw_group_read(d->data, topic, group, &gp) == 0 && gp >= end)
			return;
		test_sleep_ns(20 * TEST_MS);
	}
	print_message("group %s at %lld, want %lld\n", group, (long long)gp, (long long)end);
	fail();
}

/* Everything in partition 0 of the Kafka topic, in order: the spillway.pos
 * of each message, its payload checked against record index from the
 * positions table. Returns the count. */
static int kafka_read_all(struct mock *m, const char *topic, const int64_t *pos, uint64_t n,
			  int64_t *got, int cap, bool committed)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
	rd_kafka_t *c;
	int k = 0;

	rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", "verify", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	rd_kafka_conf_set(conf, "isolation.level", committed ? "read_committed" : "read_uncommitted",
			  err, sizeof(err));
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	assert_non_null(c);
	rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	assert_int_equal(rd_kafka_assign(c, tp), 0);
	for (int64_t until = test_now_ns() + scaled_s(20, 60); test_now_ns() < until;) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 200);
		const void *hv;
		size_t hl;
		rd_kafka_headers_t *h;
		char num[24] = "";
		int64_t p;
		uint64_t i;

		if (!msg)
			continue;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(msg);
			break;
		}
		assert_int_equal(msg->err, 0);
		assert_int_equal(rd_kafka_message_headers(msg, &h), 0);
		assert_int_equal(rd_kafka_header_get_last(h, "spillway.pos", &hv, &hl), 0);
		assert_true(hl < sizeof(num));
		memcpy(num, hv, hl);
		p = strtoll(num, NULL, 10);
		assert_true(msg->len >= 8);
		memcpy(&i, msg->payload, 8);
		assert_true(i < n);
		assert_int_equal(p, pos[i]); /* the header names the record's position */
		assert_int_equal(msg->len, rec_len(i));
		{
			uint8_t want[800];

			test_fill(want, msg->len - 8, i + 7);
			assert_memory_equal((const uint8_t *)msg->payload + 8, want, msg->len - 8);
		}
		assert_true(rd_kafka_message_timestamp(msg, NULL) > 0);
		if (k < cap)
			got[k] = p;
		k++;
		rd_kafka_message_destroy(msg);
	}
	rd_kafka_topic_partition_list_destroy(tp);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return k;
}

/* A case bridging spillway topic `topic` to Kafka topic `kt`. */
struct bcase {
	struct test_daemon *d;
	const char *topic, *kt;
	struct spw_topic *t;
	struct spw_producer *p;
	struct mock m;
	struct bargs ba;
	char group[64]; /* the bridge's group: bridge-kafka-<kt> */
};

/* The start of a bridge case: skipped without the CLI (SPW_CLI); the topic
 * made (ring RING, segments 4 * RING, max_record MAXREC, flush 20 ms), the
 * daemon attached, a producer open (case_producer); a mock cluster holding
 * Kafka topic kt; the bridge's command line (extra: one more flag or NULL). */
static void bridge_case_begin(struct bcase *k, struct test_daemon *d, const char *topic,
			      const char *kt, const char *extra)
{
	const struct test_topic_spec spec = { topic, RING, 4 * RING, MAXREC, 20, 0 };

	*k = (struct bcase){ .d = d, .topic = topic, .kt = kt };
	if (!getenv("SPW_CLI"))
		skip();
	case_producer(d, &spec, &k->t, &k->p);
	mock_start(&k->m, kt);
	snprintf(k->group, sizeof(k->group), "bridge-kafka-%s", kt);
	bargs_set(&k->ba, d, &k->m, topic, kt, extra);
}

/* Start the bridge; wait until its group says Kafka has all below `end`. */
static pid_t bridge_run_to(struct bcase *k, int64_t end)
{
	pid_t b = bridge_start(k->d, k->ba.argv, k->ba.errfile);

	wait_group(k->d, k->topic, k->group, end);
	return b;
}

/* The end: the mock cluster gone, then case_end. */
static void bridge_case_end(struct bcase *k)
{
	mock_stop(&k->m);
	case_end(k->d, NULL, k->p, k->t);
}

/* SIGTERM: the bridge flushes, commits and exits 0. */
static void bridge_term(pid_t b)
{
	kill(b, SIGTERM);
	assert_int_equal(wait_status(b, scaled_s(30, 60)), 0);
}

/* Kafka topic kt holds records 0 .. n-1 once each, in order (got: room for
 * cap). */
static void kafka_once_in_order(struct mock *m, const char *kt, const int64_t *pos, uint64_t n,
				int64_t *got, int cap, bool committed)
{
	int k = kafka_read_all(m, kt, pos, n, got, cap, committed);

	assert_int_equal(k, (int)n);
	for (int i = 0; i < k; i++)
		assert_int_equal(got[i], pos[i]);
}

static void every_record_arrives_once_in_order_and_sigterm_commits(void **state)
{
	static int64_t pos[3000], got[4000];
	struct bcase k;

	bridge_case_begin(&k, *state, "bt", "kt", NULL);
	send_recs(k.p, 0, 2000, pos, NULL);
	bridge_term(bridge_run_to(&k, pos[1999] + 8));
	kafka_once_in_order(&k.m, "kt", pos, 2000, got, 4000, false); /* once each, in order */
	bridge_case_end(&k);
}

/* The bridge's stderr (its errfile) holds what: else the test fails,
 * showing what it said. */
static void bridge_said(const struct bcase *k, const char *what)
{
	char text[4096] = "";
	FILE *f = fopen(k->ba.errfile, "r");

	assert_non_null(f);
	text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
	fclose(f);
	if (!strstr(text, what))
		fail_msg("the bridge did not say \"%s\": %s", what, text);
}

/* A topic deleted under the bridge: it says so and exits 1 (it waited for
 * ever), after flushing and committing what it had sent. */
static void a_deleted_topic_ends_the_bridge(void **state)
{
	static int64_t pos[600], got[1000];
	struct bcase k;
	pid_t b;
	int64_t gp = -1;

	bridge_case_begin(&k, *state, "bdel", "kdel", NULL);
	send_recs(k.p, 0, 500, pos, NULL);
	b = bridge_run_to(&k, pos[499] + 8);
	assert_int_equal(spw_topic_delete(k.d->shm, "bdel"), 0);
	assert_int_equal(wait_status(b, scaled_s(15, 60)), 1);
	bridge_said(&k, "topic \"bdel\" was deleted while bridging it");
	assert_int_equal(spw_group_read(k.d->data, "bdel", k.group, &gp), 0);
	assert_true(gp > pos[499]);
	kafka_once_in_order(&k.m, "kdel", pos, 500, got, 1000, false);
	bridge_case_end(&k);
}

/* A group position file that cannot be read (a flipped byte): the bridge
 * says so and exits 1, and leaves the file as it was. It used to take that
 * for "no position" and start at --from: with latest, what the group had
 * not sent never reached Kafka, and its next commit wrote over the file. */
static void an_unreadable_group_position_stops_the_bridge(void **state)
{
	static int64_t pos[300];
	struct bcase k;
	char path[4096];
	uint8_t before[64], after[64], x;
	ssize_t n0, n1;
	int64_t gp;
	int fd;

	bridge_case_begin(&k, *state, "bgr", "kgr", NULL);
	send_recs(k.p, 0, 200, pos, NULL);
	bridge_term(bridge_run_to(&k, pos[199] + 8));
	snprintf(path, sizeof(path), "%s/bgr/groups/%s", k.d->data, k.group);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &x, 1, 9), 1);
	x ^= 0x40;
	assert_int_equal(pwrite(fd, &x, 1, 9), 1);
	n0 = pread(fd, before, sizeof(before), 0);
	close(fd);
	assert_int_equal(spw_group_read(k.d->data, "bgr", k.group, &gp), -EBADMSG);
	send_recs(k.p, 200, 300, pos, NULL);
	assert_int_equal(wait_status(bridge_start(k.d, k.ba.argv, k.ba.errfile), scaled_s(20, 60)),
			 1);
	bridge_said(&k, "cannot be read (Bad message: damaged, or not a group file)");
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n1 = pread(fd, after, sizeof(after), 0);
	close(fd);
	assert_int_equal(n1, n0);
	assert_memory_equal(after, before, (size_t)n0);
	bridge_case_end(&k);
}

/* Five kill -9 at whatever instant, each followed by a restart, then a final
 * run to the end; records keep coming meanwhile. At least once: no gap, and
 * within one run Kafka's order is the topic's (a restart steps back at most
 * to the group's position). Exactly once: every record once, in order, for
 * a read_committed consumer. */
static void kill9_five_times(struct test_daemon *d, bool exactly)
{
	static int64_t pos[4000], got[20000];
	static unsigned char seen[4000];
	struct bcase bc;
	uint64_t sent = 600;
	pid_t b;
	int n;

	memset(seen, 0, sizeof(seen));
	bridge_case_begin(&bc, d, exactly ? "bx" : "bk", exactly ? "kx" : "kk",
			  exactly ? "--exactly-once" : NULL);
	send_recs(bc.p, 0, sent, pos, NULL);
	for (int k = 0; k < 5; k++) {
		b = bridge_run_to(&bc, pos[sent / 2]); /* it is moving */
		send_recs(bc.p, sent, sent + 600, pos, NULL);
		sent += 600;
		test_sleep_ns((int64_t)(k * 7 % 5) * 10 * TEST_MS); /* vary the instant */
		kill(b, SIGKILL);
		assert_true(wait_status(b, scaled_s(10, 30)) != 0);
	}
	bridge_term(bridge_run_to(&bc, pos[sent - 1] + 8));
	if (exactly) {
		kafka_once_in_order(&bc.m, bc.kt, pos, sent, got, 20000, true); /* once, in order */
	} else {
		n = kafka_read_all(&bc.m, bc.kt, pos, sent, got, 20000, false);
		assert_true(n >= (int)sent);
		for (int i = 0, k = 0; i < n && i < 20000; i++) {
			while (k < (int)sent && pos[k] < got[i])
				k++;
			if (k < (int)sent && pos[k] == got[i])
				seen[k] = 1;
			else
				for (int j = 0; j < (int)sent; j++)
					if (pos[j] == got[i])
						seen[j] = 1, k = j;
		}
		for (uint64_t k = 0; k < sent; k++)
			assert_true(seen[k]); /* no gap */
	}
	bridge_case_end(&bc);
}

static void at_least_once_survives_five_kill9(void **state)
{
	kill9_five_times(*state, false);
}

static void exactly_once_survives_five_kill9(void **state)
{
	kill9_five_times(*state, true);
}

/* All three brokers down in the middle of the stream, then back: the bridge
 * waits (says so), loses nothing, and finishes in order. */
static void brokers_down_then_back_lose_nothing(void **state)
{
	static int64_t pos[3000], got[6000];
	struct bcase k;
	pid_t b;

	bridge_case_begin(&k, *state, "bd", "kd", NULL);
	send_recs(k.p, 0, 500, pos, NULL);
	b = bridge_run_to(&k, pos[499] + 8);
	for (int32_t id = 1; id <= 3; id++)
		assert_int_equal(rd_kafka_mock_broker_set_down(k.m.mc, id), 0);
	send_recs(k.p, 500, 1500, pos, NULL); /* the topic keeps taking records */
	test_sleep_ns(2 * TEST_SEC);
	{
		int64_t gp = -1;

		assert_int_equal(spw_group_read(k.d->data, "bd", "bridge-kafka-kd", &gp), 0);
		assert_true(gp <= pos[1499] + 8); /* nothing counted that Kafka did not take */
	}
	for (int32_t id = 1; id <= 3; id++)
		assert_int_equal(rd_kafka_mock_broker_set_up(k.m.mc, id), 0);
	wait_group(k.d, "bd", "bridge-kafka-kd", pos[1499] + 8);
	bridge_term(b);
	kafka_once_in_order(&k.m, "kd", pos, 1500, got, 6000, false);
	bridge_case_end(&k);
}

static int err_has(const char *file, const char *needle)
{
	char buf[4096] = "";
	FILE *f = fopen(file, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	if (!strstr(buf, needle))
		print_message("stderr: %s\n", buf);
	return strstr(buf, needle) != NULL;
}

static void unreachable_brokers_a_missing_partition_and_a_bad_property_fail_clearly(void **state)
{
	struct bcase k;
	const char *args[12];
	int64_t t0;
	pid_t b;

	/* The mock cluster (Kafka topic "one") is there from the start: the
	 * first run below names brokers that do not answer instead. */
	bridge_case_begin(&k, *state, "bf", "one", NULL);
	args[0] = "bf";
	args[1] = "--brokers";
	args[2] = "127.0.0.1:1";
	args[3] = "--timeout";
	args[4] = "2";
	args[5] = NULL;
	t0 = test_now_ns();
	b = bridge_start(k.d, args, k.ba.errfile);
	assert_int_equal(wait_status(b, scaled_s(20, 60)), 1);
	assert_true(test_now_ns() - t0 < scaled_s(15, 45));
	assert_true(err_has(k.ba.errfile, "did not answer within 2 s"));

	/* A partition the Kafka topic does not have. (The mock cluster creates
	 * any topic asked for, so a missing topic cannot be shown here; the
	 * same check reports it, tools/cmd_bridge.c kafka_check.) */
	args[2] = k.ba.brokers;
	args[5] = "--kafka-topic";
	args[6] = "one";
	args[7] = "--partition";
	args[8] = "5";
	args[9] = NULL;
	b = bridge_start(k.d, args, k.ba.errfile);
	assert_int_equal(wait_status(b, scaled_s(20, 60)), 1);
	assert_true(err_has(k.ba.errfile, "Kafka topic \"one\" has 1 partition(s): no partition 5"));
	/* A bad -X property: exit 1, named. */
	args[7] = "-X";
	args[8] = "no.such.property=1";
	b = bridge_start(k.d, args, k.ba.errfile);
	assert_int_equal(wait_status(b, scaled_s(20, 60)), 1);
	assert_true(err_has(k.ba.errfile, "no.such.property"));
	bridge_case_end(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_record_arrives_once_in_order_and_sigterm_commits,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_deleted_topic_ends_the_bridge, setup, teardown),
		cmocka_unit_test_setup_teardown(an_unreadable_group_position_stops_the_bridge, setup,
						teardown),
		cmocka_unit_test_setup_teardown(at_least_once_survives_five_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(exactly_once_survives_five_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(brokers_down_then_back_lose_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable_brokers_a_missing_partition_and_a_bad_property_fail_clearly,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
