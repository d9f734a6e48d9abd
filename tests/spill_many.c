/* SPDX-License-Identifier: MIT */
/*
 * spill_many.c - io_uring within its contract (spill/writer.c W7): 64 topics
 * spilling at once, through small segments that roll (each roll's
 * fdatasync goes through the ring), with the completion queue sized for
 * every write, index write and sync that can be in flight. Every record of
 * every topic is on disk once, in order, and durable at the end.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_daemon.h"
#include "daemon_case.h"

#define TOPICS 64
#define RING (64u << 10)
#define PRODUCERS 4

struct many {
	char shm[512];
	uint32_t per_topic;
};

static int run_producer(void *arg)
{
	struct many *m = arg;
	const char *base = getenv("SPW_MANY_FIRST");
	int first = base ? atoi(base) : 0;
	struct spw_topic *t[TOPICS / PRODUCERS];
	struct spw_producer *p[TOPICS / PRODUCERS];
	uint8_t buf[600];
	char name[32];

	for (int k = 0; k < TOPICS / PRODUCERS; k++) {
		snprintf(name, sizeof(name), "many%02d", first + k);
		TEST_CHECK(spw_topic_open(m->shm, name, 0, &t[k]) == 0, "open %s", name);
		TEST_CHECK(spw_producer_open(t[k], &p[k]) == 0, "producer %s", name);
	}
	for (uint32_t i = 0; i < m->per_topic; i++)
		for (int k = 0; k < TOPICS / PRODUCERS; k++) {
			uint32_t len = 100 + (i * 7 + (uint32_t)k) % 500;
			int64_t pos;

			memset(buf, (int)(i & 0xff), len);
			memcpy(buf, &i, sizeof(i));
			do
				pos = spw_producer_send_wait(p[k], buf, len, 100 * TEST_MS);
			while (pos == -ETIMEDOUT);
			TEST_CHECK(pos >= 0, "send %u to topic %d: %lld", i, first + k, (long long)pos);
		}
	for (int k = 0; k < TOPICS / PRODUCERS; k++) {
		spw_producer_close(p[k]);
		spw_topic_close(t[k]);
	}
	return 0;
}

struct count {
	uint32_t next;
	int bad;
};

static int on_data(void *arg, const struct test_seg_rec *r)
{
	struct count *c = arg;
	uint32_t v;

	memcpy(&v, r->data, sizeof(v));
	if (v != c->next || r->len != 100 + (v * 7 + (uint32_t)(c->bad >> 16)) % 500)
		c->bad++;
	c->next++;
	return 0;
}

static void sixty_four_topics_spill_at_once_losing_nothing(void **state)
{
	struct test_daemon *d = *state;
	struct many *m = test_shared_alloc(sizeof(*m));
	struct spw_topic *t[TOPICS];
	struct spw_topic_info in;
	char name[32], dir[1024];
	pid_t kids[PRODUCERS];

	need_daemon();
	for (int k = 0; k < TOPICS; k++) {
		struct test_topic_spec spec = { NULL, RING, 2 * RING, 4096, 20, 0 };

		snprintf(name, sizeof(name), "many%02d", k);
		spec.name = name;
		assert_int_equal(test_daemon_make_topic(d, &spec), 0);
	}
	start_attached(d, "many63");
	for (int k = 0; k < TOPICS; k++) {
		snprintf(name, sizeof(name), "many%02d", k);
		assert_int_equal(test_daemon_wait_attached(d, name, scaled_s(10, 30)), 0);
		assert_int_equal(spw_topic_open(d->shm, name, SPW_OPEN_RDONLY, &t[k]), 0);
	}
	snprintf(m->shm, sizeof(m->shm), "%s", d->shm);
	m->per_topic = (uint32_t)test_scaled(1500, 500, 500); /* 530 / 176 KB a topic: rolls */
	for (int i = 0; i < PRODUCERS; i++) {
		char first[16];

		snprintf(first, sizeof(first), "%d", i * (TOPICS / PRODUCERS));
		setenv("SPW_MANY_FIRST", first, 1);
		kids[i] = test_fork(run_producer, m);
		test_daemon_add_kid(d, kids[i]);
	}
	unsetenv("SPW_MANY_FIRST");
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(120, 300)), 0);
	for (int k = 0; k < TOPICS; k++) {
		assert_int_equal(spw_topic_info(t[k], &in), 0);
		assert_int_equal(test_wait_counter(t[k], true, in.tail, scaled_s(20, 60)), 0);
	}
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	assert_int_equal(test_daemon_log_count(d, "error", true), 0);
	for (int k = 0; k < TOPICS; k++) {
		struct test_seg_walk w;
		struct count c = { 0, 0 };
		int r;

		snprintf(name, sizeof(name), "many%02d", k);
		test_daemon_topic_dir(d, name, dir, sizeof(dir));
		memset(&w, 0, sizeof(w));
		w.on_data = on_data;
		w.arg = &c;
		c.bad = (k - (k / (TOPICS / PRODUCERS)) * (TOPICS / PRODUCERS)) << 16;
		r = test_seg_walk(dir, &w);
		if (r)
			fail_msg("%s: %s", name, w.err);
		assert_int_equal(c.bad >> 16, k % (TOPICS / PRODUCERS));
		assert_int_equal(c.bad & 0xffff, 0);
		assert_int_equal(c.next, m->per_topic);
		assert_int_equal(spw_topic_info(t[k], &in), 0);
		assert_true(w.segments >= in.tail / (2 * RING)); /* it rolled */
		assert_true(w.segments >= 2);
		assert_int_equal(w.end, in.tail);
		spw_topic_close(t[k]);
	}
	print_message("[ info     ] %d topics x %u records spilled, %d producers, every segment "
		      "verified\n", TOPICS, m->per_topic, PRODUCERS);
	test_shared_free(m, sizeof(*m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sixty_four_topics_spill_at_once_losing_nothing, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
