/* SPDX-License-Identifier: MIT */
/*
 * daemon_case.h - the cmocka fixture shared by the daemon tests
 * (crash_daemon.c, fault_daemon.c): a sandbox per case, a skip when no
 * daemon binary exists, ASan-scaled timeouts, start-and-wait-attached,
 * the usual start of a case (case_begin).
 * Include after <cmocka.h> and support_daemon.h.
 */
#ifndef SPW_TEST_DAEMON_CASE_H
#define SPW_TEST_DAEMON_CASE_H

static inline int setup(void **state)
{
	struct test_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	test_daemon_setup(d);
	*state = d;
	return 0;
}

static inline int teardown(void **state)
{
	struct test_daemon *d = *state;

	test_daemon_teardown(d);
	free(d);
	return 0;
}

static inline void need_daemon(void)
{
	if (!test_daemon_path()) {
		print_message("spillwayd not found (SPW_DAEMON unset, no build/spillwayd): skipped\n");
		skip();
	}
}

static inline int64_t scaled_s(int64_t normal_s, int64_t asan_s)
{
	return (int64_t)test_scaled((uint64_t)normal_s, (uint64_t)asan_s, (uint64_t)asan_s) * TEST_SEC;
}

static inline void start_attached(struct test_daemon *d, const char *topic)
{
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_attached(d, topic, scaled_s(10, 30)), 0);
}

/* The start of most cases: skipped without a daemon, the seed printed
 * (what names the case), the topic made, the daemon started and attached
 * to it. Returns the seed. */
static inline uint64_t case_begin(struct test_daemon *d, const struct test_topic_spec *spec,
				  const char *what)
{
	uint64_t seed;

	need_daemon();
	seed = test_seed(what);
	assert_int_equal(test_daemon_make_topic(d, spec), 0);
	start_attached(d, spec->name);
	return seed;
}

static inline void info_of(struct spw_topic *t, struct spw_topic_info *in)
{
	assert_int_equal(spw_topic_info(t, in), 0);
}

#endif
