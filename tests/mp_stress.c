/* SPDX-License-Identifier: MIT */
/*
 * mp_stress.c - the multi-process stress test: 4 producer processes, 2
 * consumer processes and 1 reclaimer process (the daemon's role) on a 1 MiB
 * ring, millions of records of random sizes 0..4096 (about 1 in 1000 of
 * max_record = 64 KiB), sent with send_wait, send and claim/commit. Every
 * consumer checks every record: its producer's order, its length and every
 * payload byte; at the end each got every record exactly once (tests/
 * support.c, test_stress_*). Seeded: the seed is printed, SPW_TEST_SEED
 * reruns it. mt_stress.c is the same with threads (and runs under TSan).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "../ring/ring_internal.h" /* the solo word's generation (I9) */
#include "support.h"
#include "support_stress.h"

static void run_processes(const char *what, uint64_t total, uint32_t producers, uint32_t consumers,
			  int64_t start_position, uint32_t reopen_every)
{
	uint64_t seed = test_seed(what);
	char dir[512];
	struct test_stress *s = test_shared_alloc(sizeof(*s));
	struct test_stress_role_arg args[TEST_STRESS_MAX_ROLES];
	pid_t pids[TEST_STRESS_MAX_ROLES];
	int status[TEST_STRESS_MAX_ROLES], n, bad = 0;
	struct spw_topic *t = NULL;
	int64_t t0;

	snprintf(dir, sizeof(dir), "%s/%s", test_group_dir, what);
	test_stress_init(s, dir, "mp", seed, total, producers, consumers, start_position);
	s->reopen_every = reopen_every;
	assert_int_equal(test_stress_create(s), 0);
	n = test_stress_roles(s, args);

	t0 = test_now_ns();
	for (int i = 0; i < n; i++)
		pids[i] = test_fork(test_stress_run_role, &args[i]);
	/* The roles give up at s->deadline_ns; a child hung past it (and a
	 * grace) is killed and counts as failed. */
	for (int i = 0; i < n; i++) {
		int64_t left = s->deadline_ns - test_now_ns() + 60 * TEST_SEC;

		status[i] = test_wait(pids[i], left > 0 ? left : 0);
		if (status[i] != 0) {
			fprintf(stderr, "[  FAILED  ] %s %u (pid %d): status %d%s\n",
				test_stress_role_name(args[i].role), args[i].id, (int)pids[i],
				status[i],
				status[i] == 2 ? " (stopped: another role failed)" :
				status[i] > 128 ? " (killed by a signal)" : "");
			bad++;
		}
	}
	test_stress_print(s, "processes", test_now_ns() - t0);
	if (bad)
		fail_msg("%d of %d processes failed (rerun with SPW_TEST_SEED=%#" PRIx64 ")", bad, n,
			 seed);
	assert_int_equal(spw_topic_open(dir, "mp", 0, &t), 0);
	if (test_stress_final_check(s, t) != 0)
		fail_msg("end-to-end check failed (rerun with SPW_TEST_SEED=%#" PRIx64 ")", seed);
	if (reopen_every) {
		/* Each solo's start and end bumps the word's generation. */
		uint64_t gens = atomic_load(&t->hdr->solo) / RING_SOLO_GEN_ONE;

		printf("[ solo     ] %s: %" PRIu64 " solo starts and ends\n", what, gens);
		assert_true(gens >= 4);
	}
	spw_topic_close(t);
	test_shared_free(s, sizeof(*s));
	assert_int_equal(spw_topic_delete(dir, "mp"), 0);
}

static void processes_deliver_every_record_once_in_producer_order(void **state)
{
	(void)state;
	run_processes("mp_stress", test_scaled(5000000, 400000, 400000), 4, 2, 0, 0);
}

/* Producer processes that keep reopening their handles, so solo elections
 * (ring/ring_layout.h I9) begin and end across processes while records
 * flow: the membarrier reaches another process's producer. */
static void processes_hand_solo_over_without_loss(void **state)
{
	(void)state;
	run_processes("mp_stress_solo", test_scaled(600000, 200000, 200000), 3, 1, 0, 29);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(processes_deliver_every_record_once_in_producer_order),
		cmocka_unit_test(processes_hand_solo_over_without_loss),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
