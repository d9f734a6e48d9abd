/* SPDX-License-Identifier: MIT */
/*
 * support_stress.h - the stress roles that mp_stress (processes) and
 * mt_stress (threads) both run, so the two variants make exactly the same
 * checks (linked into every test program as tests/support_stress.c).
 */
#ifndef SPW_TEST_SUPPORT_STRESS_H
#define SPW_TEST_SUPPORT_STRESS_H

#include <stdatomic.h>
#include <stdint.h>

#include "spillway.h"
#include "support.h"

/* ---------------------------------------------------------------------------
 * Stress roles. One struct test_stress lives where all roles see it (shared
 * anonymous memory for processes, plain memory for threads). Producers send
 * per_producer records each with a mix of send_wait, send and claim/commit;
 * consumers check every record (test_id_verify) and publish their positions;
 * the reclaimer (the daemon's role) scans and reclaims up to the slowest
 * consumer, so no consumer is ever lapped. Each role returns 0, -1 when one
 * of its checks failed (it printed why), or 2 when it stopped because another
 * role failed first.
 */
#define TEST_STRESS_MAX_PRODUCERS TEST_ID_PRODUCERS
#define TEST_STRESS_MAX_CONSUMERS 4u

struct test_stress {
	/* set before any role starts */
	char dir[512];
	char name[64];
	struct spw_topic *topic; /* threads share it; NULL: each role opens its own */
	uint64_t seed;
	uint64_t per_producer;
	uint64_t ring_bytes;
	uint32_t max_record;
	uint32_t producers, consumers;
	int64_t deadline_ns;     /* CLOCK_MONOTONIC: roles give up after */
	int64_t start_realtime_ns;
	int64_t start_position;
	/* 0, or: each producer closes its handle and opens a new one after
	 * every reopen_every records (solo elections, ring/ring_layout.h I9) */
	uint32_t reopen_every;

	/* published while running */
	_Atomic int64_t consumer_pos[TEST_STRESS_MAX_CONSUMERS];
	_Atomic uint32_t consumers_done;
	_Atomic int failed;

	/* each written by its own role only, read after all roles ended */
	uint64_t sent[TEST_STRESS_MAX_PRODUCERS];
	uint64_t sent_by_claim[TEST_STRESS_MAX_PRODUCERS];
	uint64_t sent_by_batch[TEST_STRESS_MAX_PRODUCERS]; /* in spw_producer_send_batch calls */
	uint64_t timeouts[TEST_STRESS_MAX_PRODUCERS];
	uint64_t received[TEST_STRESS_MAX_CONSUMERS][TEST_STRESS_MAX_PRODUCERS];
	uint64_t bytes_received[TEST_STRESS_MAX_CONSUMERS];
	int64_t final_pos[TEST_STRESS_MAX_CONSUMERS];
	uint64_t reclaims;
	uint64_t scanned_records;
};

/* total_records is split evenly over the producers; start_position is the
 * topic's (create it with the same). */
void test_stress_init(struct test_stress *s, const char *dir, const char *name,
		      uint64_t seed, uint64_t total_records, uint32_t producers,
		      uint32_t consumers, int64_t start_position);
/* Create the topic the roles use (ring_bytes, max_record, start_position of s). */
int test_stress_create(const struct test_stress *s);
int test_stress_producer(struct test_stress *s, uint32_t id);
int test_stress_consumer(struct test_stress *s, uint32_t id);
int test_stress_reclaimer(struct test_stress *s);
/* After every role ended with 0: the end-to-end checks (counts, positions,
 * topic counters). Returns 0 or -1 after printing what is wrong. */
int test_stress_final_check(struct test_stress *s, struct spw_topic *t);
void test_stress_print(const struct test_stress *s, const char *what, int64_t elapsed_ns);

/* ---------------------------------------------------------------------------
 * Running the roles: mp_stress.c forks one process per role, mt_stress.c
 * starts one thread per role; both take the list from test_stress_roles.
 */
enum test_stress_role { TEST_STRESS_PRODUCER, TEST_STRESS_CONSUMER, TEST_STRESS_RECLAIMER };

struct test_stress_role_arg {
	struct test_stress *s;
	enum test_stress_role role;
	uint32_t id;
	int rc; /* test_stress_run_role's result, -1 until it returned */
};

#define TEST_STRESS_MAX_ROLES (TEST_STRESS_MAX_PRODUCERS + TEST_STRESS_MAX_CONSUMERS + 1)

/* Every role of s in start order (consumers, the reclaimer, producers, so
 * nothing is produced before it is watched) into args (room for
 * TEST_STRESS_MAX_ROLES): how many. */
int test_stress_roles(struct test_stress *s, struct test_stress_role_arg *args);
/* Run one role (arg is a struct test_stress_role_arg; the shape test_fork
 * wants): its result, also stored in the arg's rc. */
int test_stress_run_role(void *arg);
const char *test_stress_role_name(enum test_stress_role r);

#endif /* SPW_TEST_SUPPORT_STRESS_H */
