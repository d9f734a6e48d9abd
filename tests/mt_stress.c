/* SPDX-License-Identifier: MIT */
/*
 * mt_stress.c - the threaded variant of mp_stress.c, so TSan can watch the
 * protocol (ring/ring_layout.h I1-I9): 4 producer threads, 2 consumer
 * threads and 1 reclaimer thread sharing one topic handle (one mapping, so
 * TSan sees every access at one address), the same checks (tests/support.c,
 * test_stress_*). Also once from a start position in the middle of a lap,
 * as a recreated ring has. Seeded: SPW_TEST_SEED reruns a failure.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../ring/ring_internal.h" /* the solo word's generation (I9) */
#include "support.h"
#include "support_stress.h"

/* pthread's shape of test_stress_run_role (the result stays in a->rc). */
static void *run_role(void *arg)
{
	test_stress_run_role(arg);
	return NULL;
}

static void run_threads(const char *what, uint64_t total, int64_t start_position,
			uint32_t producers, uint32_t reopen_every)
{
	enum { CONSUMERS = 2 };
	const int N = (int)producers + CONSUMERS + 1;
	uint64_t seed = test_seed(what);
	char dir[512];
	struct test_stress *s = calloc(1, sizeof(*s));
	struct test_stress_role_arg args[TEST_STRESS_MAX_ROLES];
	pthread_t th[TEST_STRESS_MAX_ROLES];
	int n, bad = 0;
	int64_t t0;

	assert_non_null(s);
	snprintf(dir, sizeof(dir), "%s/%s", test_group_dir, what);
	test_stress_init(s, dir, "mt", seed, total, producers, CONSUMERS, start_position);
	s->reopen_every = reopen_every;
	assert_int_equal(test_stress_create(s), 0);
	assert_int_equal(spw_topic_open(dir, "mt", 0, &s->topic), 0);
	n = test_stress_roles(s, args);
	assert_int_equal(n, N);

	t0 = test_now_ns();
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&th[i], NULL, run_role, &args[i]), 0);
	/* Every role gives up by itself at s->deadline_ns. */
	for (int i = 0; i < N; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (args[i].rc != 0) {
			fprintf(stderr, "[  FAILED  ] %s thread %u: %d%s\n",
				test_stress_role_name(args[i].role), args[i].id, args[i].rc,
				args[i].rc == 2 ? " (stopped: another role failed)" : "");
			bad++;
		}
	}
	test_stress_print(s, what, test_now_ns() - t0);
	if (bad)
		fail_msg("%d of %d threads failed (rerun with SPW_TEST_SEED=%#" PRIx64 ")", bad, N,
			 seed);
	if (test_stress_final_check(s, s->topic) != 0)
		fail_msg("end-to-end check failed (rerun with SPW_TEST_SEED=%#" PRIx64 ")", seed);
	if (reopen_every) {
		/* Each solo's start and end bumps the word's generation. */
		uint64_t gens = atomic_load(&s->topic->hdr->solo) / RING_SOLO_GEN_ONE;

		printf("[ solo     ] %s: %" PRIu64 " solo starts and ends\n", what, gens);
		assert_true(gens >= 4);
	}
	spw_topic_close(s->topic);
	free(s);
	assert_int_equal(spw_topic_delete(dir, "mt"), 0);
}

static void threads_deliver_every_record_once_in_producer_order(void **state)
{
	(void)state;
	run_threads("mt_stress", test_scaled(300000, 150000, 60000), 0, 4, 0);
}

/* Producers that keep closing and reopening their handles: each open alone
 * makes the producer solo (no CAS, ring/ring_layout.h I9), the next open
 * ends that solo while its owner sends. Every record still arrives once,
 * in order, intact; TSan watches the hand-over. */
static void threads_solo_producers_hand_over_without_loss(void **state)
{
	(void)state;
	run_threads("mt_stress_solo", test_scaled(200000, 100000, 40000), 0, 2, 37);
}

/* A ring recreated after a disk log starts mid-lap, 8-aligned only. */
static void threads_from_a_mid_lap_start_position(void **state)
{
	(void)state;
	run_threads("mt_stress_mid_lap", test_scaled(100000, 50000, 20000),
		    (5ll << 30) + (1 << 20) - 4088, 4, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(threads_deliver_every_record_once_in_producer_order),
		cmocka_unit_test(threads_from_a_mid_lap_start_position),
		cmocka_unit_test(threads_solo_producers_hand_over_without_loss),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
