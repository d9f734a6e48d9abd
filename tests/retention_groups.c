/* SPDX-License-Identifier: MIT */
/*
 * retention_groups.c - retention that respects readers (spill/retention.c,
 * daemon/retention.c), with a real spillwayd and retention of 300 ms:
 *  - a group that has not read the old segments keeps them (the daemon says
 *    so, `spillway stat` names the group); a group that has read them does not;
 *  - past retention_max_lag (set in topic.conf, SIGHUP) they go anyway: the
 *    deletion is logged and counted (retention_forced), and the group's reader
 *    gets -ERANGE;
 *  - a group silent longer than group_expiry holds nothing: plain deletions,
 *    nothing forced;
 *  - segments of records sent with time 0 (spw_producer_send_at) have no age.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../spill/spill.h"
#include "support.h"
#include "support_daemon.h"
#include "daemon_case.h"

#define RING (64u << 10)
#define SEG (4 * RING)

/* topic.conf of topic: retention 300 ms, plus the given caps. */
static void set_conf(struct test_daemon *d, const char *topic, uint64_t max_lag,
		     uint64_t expiry_ms)
{
	char dir[1024];
	struct topic_conf c;

	test_daemon_topic_dir(d, topic, dir, sizeof(dir));
	assert_int_equal(seg_conf_load(dir, &c), 0);
	c.retention_ms = 300;
	c.retention_max_lag = max_lag;
	c.retention_max_lag_ms = 0;
	c.group_expiry_ms = expiry_ms;
	assert_int_equal(seg_conf_save(dir, &c), 0);
}

static bool seg_exists(struct test_daemon *d, const char *topic, uint64_t base)
{
	char dir[1024], p[1200];
	struct stat st;

	test_daemon_topic_dir(d, topic, dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/%020llu.seg", dir, (unsigned long long)base);
	return stat(p, &st) == 0;
}

static void fill(struct spw_producer *p, int n)
{
	static char buf[2000];

	for (int i = 0; i < n; i++)
		assert_true(spw_producer_send_wait(p, buf, sizeof(buf), 10 * TEST_SEC) >= 0);
}

/* The start of a case: topic (ring RING, segments SEG, max_record 4096,
 * flush 20 ms) made, its topic.conf set (set_conf: no lag cap, the given
 * group expiry); the daemon not started yet. */
static struct test_daemon *rg_begin(struct dcase *c, void **state, const char *topic,
				    uint64_t expiry_ms)
{
	const struct test_topic_spec spec = { topic, RING, SEG, 4096, 20, 0 };
	struct test_daemon *d = dcase_init(c, state, &spec);

	dcase_make(c);
	set_conf(d, topic, 0, expiry_ms);
	return d;
}

/* Then: the daemon attached to the topic, a producer on it (c->t, c->p). */
static void rg_producer(struct dcase *c)
{
	start_attached(c->d, c->spec.name);
	open_producer(c->d, c->spec.name, &c->t, &c->p);
}

static void a_lagging_group_keeps_its_segments_until_the_cap(void **state)
{
	struct dcase c;
	struct test_daemon *d = rg_begin(&c, state, "rg", 0);
	struct spw_reader_opts ro = { 0 };
	struct spw_reader *r = NULL;

	assert_int_equal(seg_group_write(d->data, "rg", "slow", 0), 0);
	rg_producer(&c);
	fill(c.p, 700); /* ~1.4 MB: five segments */
	test_sleep_ns(400 * TEST_MS); /* past retention */
	fill(c.p, 200); /* a roll: retention runs */
	assert_int_equal(test_daemon_wait_log(d, "keeping", 1, scaled_s(15, 45)), 0);
	assert_true(test_daemon_log_count(d, "for group \"slow\"", false) >= 1);
	assert_true(seg_exists(d, "rg", 0)); /* kept for "slow" */
	info_of(c.t, &c.in);
	assert_int_equal(c.in.retention_forced, 0);
	if (getenv("SPW_CLI"))
		assert_int_equal(test_daemon_cli(d, "stat rg | grep -q 'retention held back by "
						    "group \"slow\"'"),
				 0);
	/* The cap: at most one segment kept for groups past retention_bytes (0). */
	set_conf(d, "rg", SEG, 0);
	assert_int_equal(kill(d->pid, SIGHUP), 0);
	test_sleep_ns(200 * TEST_MS);
	fill(c.p, 200);
	assert_int_equal(test_daemon_wait_log(d, "had not read", 1, scaled_s(15, 45)), 0);
	assert_false(seg_exists(d, "rg", 0));
	info_of(c.t, &c.in);
	assert_true(c.in.retention_forced >= 1);
	/* The group's reader is told: -ERANGE. */
	ro.shm_dir = d->shm;
	ro.data_dir = d->data;
	ro.start = SPW_START_GROUP;
	ro.group = "slow";
	assert_int_equal(spw_reader_open("rg", &ro, &r), -ERANGE);
	dcase_end(&c);
}

static void a_group_that_read_them_or_expired_holds_nothing(void **state)
{
	struct dcase c;
	struct test_daemon *d = rg_begin(&c, state, "rx", 1000); /* group_expiry 1 s */
	char gp[1200];
	struct timeval old[2] = { { 1000000000, 0 }, { 1000000000, 0 } }; /* 2001 */
	int64_t tail;

	/* "stale": silent since 2001; "done": read everything (moved below). */
	assert_int_equal(seg_group_write(d->data, "rx", "stale", 0), 0);
	snprintf(gp, sizeof(gp), "%s/groups/stale", c.dir);
	assert_int_equal(utimes(gp, old), 0);
	rg_producer(&c);
	fill(c.p, 700);
	info_of(c.t, &c.in);
	tail = (int64_t)c.in.tail;
	assert_int_equal(seg_group_write(d->data, "rx", "done", tail), 0);
	test_sleep_ns(400 * TEST_MS);
	fill(c.p, 200);
	assert_int_equal(test_daemon_wait_log(d, "retention: deleted segment 00000000000000000000",
					      1, scaled_s(15, 45)),
			 0);
	info_of(c.t, &c.in);
	assert_int_equal(c.in.retention_forced, 0); /* nothing forced: nobody held it */
	assert_int_equal(test_daemon_log_count(d, "keeping", false), 0);
	dcase_end(&c);
}

/* A group whose file cannot be read (damaged here; another user's or a
 * link alike) was taken to hold nothing: retention deleted the segments it
 * had maybe not read, silently. It holds everything now, said in the log. */
static void a_group_whose_file_cannot_be_read_holds_everything(void **state)
{
	struct dcase c;
	struct test_daemon *d = rg_begin(&c, state, "ru", 0);
	char gp[1200];
	FILE *f;

	assert_int_equal(seg_group_write(d->data, "ru", "blurred", 0), 0);
	snprintf(gp, sizeof(gp), "%s/groups/blurred", c.dir);
	f = fopen(gp, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, 8, SEEK_SET), 0);
	assert_int_equal(fputc(0x5a, f), 0x5a); /* the position: the CRC no longer matches */
	assert_int_equal(fclose(f), 0);
	rg_producer(&c);
	fill(c.p, 700);
	test_sleep_ns(400 * TEST_MS);
	fill(c.p, 200);
	assert_int_equal(test_daemon_wait_log(d, "whose position cannot be read", 1,
					      scaled_s(15, 45)),
			 0);
	assert_true(test_daemon_log_count(d, "for group \"blurred\"", false) >= 1);
	assert_int_equal(test_daemon_log_count(d, "retention: deleted segment", false), 0);
	assert_true(seg_exists(d, "ru", 0));
	if (getenv("SPW_CLI"))
		assert_int_equal(test_daemon_cli(d, "stat ru | grep -q 'retention held back by "
						    "group \"blurred\", whose position cannot be read'"),
				 0);
	dcase_end(&c);
}

/* spw_producer_send_at, waiting out a full ring (within 10 s). */
static void fill_at(struct spw_producer *p, int n, uint64_t ts)
{
	static char buf[2000];
	int64_t give_up = test_now_ns() + 10 * TEST_SEC;
	int64_t r;

	for (int i = 0; i < n; i++) {
		while ((r = spw_producer_send_at(p, buf, sizeof(buf), ts)) == -EAGAIN &&
		       test_now_ns() < give_up)
			test_sleep_ns(TEST_MS);
		assert_true(r >= 0);
	}
}

/* Records sent with time 0 (spw_producer_send_at: "no time") have no age:
 * their segments outlive the retention age, while older segments with
 * real timestamps go. */
static void segments_without_time_have_no_age(void **state)
{
	struct dcase c;
	struct test_daemon *d = rg_begin(&c, state, "rt", 0);
	uint64_t timeless;

	rg_producer(&c);
	fill(c.p, 700); /* real timestamps: segments 0.. */
	info_of(c.t, &c.in);
	timeless = (c.in.tail + SEG - 1) / SEG * SEG; /* the first segment of time-0 records only */
	fill_at(c.p, 700, 0);
	test_sleep_ns(400 * TEST_MS); /* past retention */
	fill_at(c.p, 200, 0); /* a roll: retention runs */
	assert_int_equal(test_daemon_wait_log(d, "retention: deleted segment 00000000000000000000",
					      1, scaled_s(15, 45)),
			 0);
	fill_at(c.p, 200, 0); /* another roll, another pass */
	test_sleep_ns(300 * TEST_MS);
	assert_true(seg_exists(d, "rt", timeless));
	assert_true(seg_exists(d, "rt", timeless + SEG));
	dcase_end(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_lagging_group_keeps_its_segments_until_the_cap,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_group_that_read_them_or_expired_holds_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(segments_without_time_have_no_age, setup, teardown),
		cmocka_unit_test_setup_teardown(a_group_whose_file_cannot_be_read_holds_everything,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
