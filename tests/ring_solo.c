/* SPDX-License-Identifier: MIT */
/*
 * ring_solo.c - the lone shared producer's claims without a CAS
 * (ring/ring_layout.h I9, ring/solo.c):
 *  - a producer that opens alone is solo; the next one to open ends that
 *    solo, and both then claim with the CAS; closing gives the word up;
 *    exclusive producers are never solo;
 *  - a solo producer stopped (SIGSTOP) inside its plain claim: before its
 *    load of the solo word (it then finds its solo ended and claims with the
 *    CAS), before or after its store of tail: a producer opening meanwhile takes no span
 *    (its sends wait with their own timeouts, nothing is overwritten), and
 *    goes on as soon as the stopped one resumes or is killed (the kernel's
 *    lock proves it dead: no timeout). Every record arrives once, intact;
 *  - a solo producer demoted while idle that then meets a full ring leaves
 *    no guessed span in its slot;
 *  - a newcomer stopped or killed right after it set the solo word ENDING
 *    (test seam RING_AT_SOLO_ENDING): the solo producer, idle, gives the word
 *    up at its next claim and claims with the CAS; a resumed newcomer goes
 *    on shared; with the solo producer dead too, the next to open finds the
 *    word ENDING, sees the dead slot settled and becomes solo itself;
 *  - a solo parent's forked child cannot use the parent's handle, and its
 *    own producer ends the parent's solo;
 *  - a process whose seccomp filter refuses membarrier() (this binary
 *    re-executed, so that nothing was registered before the filter): its
 *    open gets -EPERM while another producer is solo (that solo then ends
 *    at its next claim); alone, it opens shared, never solo, fences its
 *    commits, and its records and a consumer's timed wait work.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ring/ring_internal.h"
#include "support.h"

#define RING (1u << 20)
#define MAXREC 4096u
#define SOLO_STATE (RING_SOLO_ON | RING_SOLO_ENDING) /* test_id_len draws up to 4096 */

static struct spw_topic *topic_new(const char *name)
{
	struct spw_topic_config cfg = { .ring_bytes = RING, .max_record = MAXREC };
	struct spw_topic *t = test_topic_new(name, &cfg);

	assert_non_null(t);
	return t;
}

static bool solo_names(const struct spw_topic *t, const struct spw_producer *p)
{
	uint64_t w = atomic_load(&t->hdr->solo);

	return (w & RING_SOLO_ON) && RING_SOLO_SLOT(w) == p->slot_index;
}

struct check {
	struct test_id_expect e;
	int n, bad;
};

static int check_one(void *arg, const struct spw_record *r)
{
	struct check *k = arg;
	char err[300];

	if (test_id_verify(&k->e, r->data, r->len, NULL, err, sizeof(err))) {
		fprintf(stderr, "record at %lld: %s\n", (long long)r->position, err);
		k->bad++;
		return 1;
	}
	k->n++;
	return 0;
}

/* Every record of the topic from its start, through a consumer, checked
 * against the senders' streams (test_id_verify): how many. */
static int read_all(struct spw_topic *t, uint32_t producers, uint64_t seed)
{
	struct spw_consumer *c = NULL;
	struct check k = { .n = 0 };
	int r;

	test_id_expect_init(&k.e, seed, producers, MAXREC);
	assert_int_equal(spw_consumer_open(t, SPW_FROM_OLDEST, 0, &c), 0);
	while ((r = spw_consumer_poll(c, check_one, &k, 1000)) > 0)
		;
	assert_int_equal(r, 0);
	assert_int_equal(k.bad, 0);
	spw_consumer_close(c);
	return k.n;
}

static void a_lone_producer_is_solo_until_another_opens(void **state)
{
	struct spw_topic *t = topic_new("solo");
	struct test_id_sender a, b;
	struct spw_producer *e = NULL;
	uint64_t seed = test_seed("solo");
	uint64_t gen;

	(void)state;
	assert_int_equal(test_id_sender_open(&a, test_group_dir, "solo", seed, 0, MAXREC), 0);
	assert_true(solo_names(t, a.p) && a.p->exclusive && !a.p->join_pending);
	if (getenv("SPW_CLI")) {
		char cmd[1200];

		snprintf(cmd, sizeof(cmd),
			 "'%s' --shm-dir '%s' --data-dir '%s/none' stat solo --json | grep -q "
			 "'\"solo_slot\":%u}'",
			 getenv("SPW_CLI"), test_group_dir, test_group_dir, a.p->slot_index);
		assert_int_equal(system(cmd), 0);
	}
	for (int i = 0; i < 50; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	gen = atomic_load(&t->hdr->solo) / RING_SOLO_GEN_ONE;
	/* B opens: A's solo ends; both claim with the CAS from then on. No test
	 * hook here: A's next send takes the lean path (produce.c claim_fast),
	 * publishes its span, finds the word changed and hands over to the
	 * general path, which goes shared (the bail-out after the slot store). */
	assert_null(ring_test_hook);
	assert_int_equal(test_id_sender_open(&b, test_group_dir, "solo", seed, 1, MAXREC), 0);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	assert_true(atomic_load(&t->hdr->solo) / RING_SOLO_GEN_ONE > gen);
	assert_false(b.p->exclusive || b.p->join_pending);
	for (int i = 0; i < 50; i++) {
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
		assert_true(spw_producer_send(b.p, b.buf, test_id_sender_next(&b)) >= 0);
	}
	assert_false(a.p->exclusive); /* it noticed at its next claim */
	assert_int_equal(read_all(t, 2, seed), 150);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	/* A leaves; B stays shared (solo is decided at open). */
	test_id_sender_close(&a);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	test_id_sender_close(&b);
	/* Alone again: solo; closing gives the word up. */
	assert_int_equal(test_id_sender_open(&a, test_group_dir, "solo", seed, 0, MAXREC), 0);
	assert_true(solo_names(t, a.p));
	test_id_sender_close(&a);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	/* A demoted while idle finds the ring full at its first claim: the span
	 * it guessed from its stale tail is not left in its slot (the daemon
	 * would take that live guess for the owner of someone's dead claim). */
	assert_int_equal(test_id_sender_open(&a, test_group_dir, "solo", seed, 2, MAXREC), 0);
	assert_true(solo_names(t, a.p));
	assert_int_equal(spw_producer_open(t, &e), 0); /* ends A's solo */
	while (spw_producer_send(e, "fill", 4) >= 0)
		;
	assert_int_equal(spw_producer_send(a.p, "a", 1), -EAGAIN);
	assert_int_equal(atomic_load(&a.p->slot->claim), RING_SLOT_IDLE);
	assert_false(a.p->exclusive);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	spw_producer_close(e);
	e = NULL;
	assert_int_equal(spwd_reclaim(t, (int64_t)atomic_load(&t->hdr->tail)), 0);
	test_id_sender_close(&a);
	/* An exclusive producer never touches the word. */
	gen = atomic_load(&t->hdr->solo);
	assert_int_equal(spw_producer_open_flags(t, SPW_PRODUCER_EXCLUSIVE, &e), 0);
	assert_int_equal(atomic_load(&t->hdr->solo), gen);
	spw_producer_close(e);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "solo"), 0);
}

/* --- a solo producer stopped inside its plain claim ------------------------- */

struct stop_case {
	const char *name;
	int at;     /* RING_AT_CLAIMING (before its tail store) or RING_AT_CLAIMED */
	int resume; /* SIGCONT, else SIGKILL */
};

struct shared {
	char name[64];
	uint64_t seed;
	int at;
	_Atomic int solo;       /* the victim saw itself solo */
	_Atomic uint64_t sent;  /* records it sent before the stopped one */
};

#define BEFORE 20u
#define AFTER 30u

static int victim(void *arg)
{
	struct shared *x = arg;
	struct test_id_sender s;
	int64_t r;

	TEST_CHECK(test_id_sender_open(&s, test_group_dir, x->name, x->seed, 0, MAXREC) == 0,
		   "victim open");
	atomic_store(&x->solo, s.p->solo_w != 0);
	for (uint32_t i = 0; i < BEFORE; i++)
		TEST_CHECK(spw_producer_send(s.p, s.buf, test_id_sender_next(&s)) >= 0, "send");
	atomic_store(&x->sent, BEFORE);
	test_stop_at(x->at);
	/* Stops inside this send; after SIGCONT it goes on, then notices that
	 * its solo ended and claims with the CAS. */
	for (uint32_t i = 0; i < AFTER; i++) {
		uint32_t len = test_id_sender_next(&s);

		do
			r = spw_producer_send_wait(s.p, s.buf, len, 10 * TEST_SEC);
		while (r == -ETIMEDOUT);
		TEST_CHECK(r >= 0, "send after the stop: %lld", (long long)r);
	}
	test_id_sender_close(&s);
	return 0;
}

/* spw_topic_producers names slot as inside a claim at pos, alive. */
static bool claim_at_tail_reported(const struct spw_topic *t, uint32_t slot, uint64_t pos)
{
	struct spw_producer_info pi[8];
	int n = spw_topic_producers(t, pi, 8);

	for (int i = 0; i < n; i++)
		if (pi[i].slot == slot)
			return pi[i].alive && pi[i].claiming && pi[i].claim == (int64_t)pos;
	return false;
}

static void run_stop_case(const struct stop_case *k)
{
	struct spw_topic *t;
	struct shared *x = test_shared_alloc(sizeof(*x));
	struct test_id_sender b;
	struct spwd_stall st;
	uint64_t tail_stopped, claim_pos, rng;
	uint32_t vslot;
	uint32_t len_stopped = 0, len;
	struct spw_producer *c = NULL;
	int sent_b = 0;
	pid_t v;

	snprintf(x->name, sizeof(x->name), "%s", k->name);
	x->seed = test_seed(k->name);
	x->at = k->at;
	rng = test_id_len_rng(x->seed, 0); /* the victim's lengths, as it draws them */
	for (uint32_t i = 0; i <= BEFORE; i++)
		len_stopped = test_id_len(&rng, 0, MAXREC);
	t = topic_new(k->name);
	v = test_fork_tied(victim, x);
	assert_int_equal(test_wait_stopped(v, 30 * TEST_SEC), 0);
	assert_true(atomic_load(&x->solo));
	tail_stopped = atomic_load(&t->hdr->tail);
	/* Where its claim starts: the tail it has not stored yet, or the span
	 * its slot says it won. */
	vslot = RING_SOLO_SLOT(atomic_load(&t->hdr->solo));
	claim_pos = k->at != RING_AT_CLAIMED ? tail_stopped
					     : atomic_load(&t->slots[vslot].claim) & ~7ull;
	assert_int_equal(atomic_load(&t->slots[vslot].claim),
			 claim_pos | (k->at != RING_AT_CLAIMED ? RING_SLOT_CLAIMING : RING_SLOT_WON));
	/* B opens while the victim is inside its plain claim: it ends the solo.
	 * Before the victim's tail store (its slot still says CLAIMING), B must
	 * take no span until that claim is settled; after it (WON), B goes on. */
	assert_int_equal(test_id_sender_open(&b, test_group_dir, k->name, x->seed, 1, MAXREC), 0);
	assert_int_equal(b.p->join_pending, k->at != RING_AT_CLAIMED);
	len = test_id_sender_next(&b);
	if (b.p->join_pending) {
		/* ENDING until the claim settles; C, opening now, waits too (it
		 * must not take the word being ENDING for the end). */
		assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, RING_SOLO_ENDING);
		assert_int_equal(spw_producer_open(t, &c), 0);
		assert_true(c->join_pending);
		assert_int_equal(spw_producer_send(c, "c", 1), -EAGAIN);
		assert_int_equal(spw_producer_send(b.p, b.buf, len), -EAGAIN);
		assert_int_equal(spw_producer_send_wait(b.p, b.buf, len, 50 * TEST_MS), -ETIMEDOUT);
		assert_int_equal(atomic_load(&t->hdr->tail), tail_stopped);
		/* Nothing waits without a reason someone can see: the stopped
		 * claim at the tail, in the producer list and in stat. */
		assert_true(claim_at_tail_reported(t, vslot, tail_stopped));
		if (getenv("SPW_CLI")) {
			char cmd[1600];

			snprintf(cmd, sizeof(cmd),
				 "'%s' --shm-dir '%s' --data-dir '%s/none' stat %s | grep -q "
				 "'WAITING ON A CLAIM: producer slot %u (pid %d) is inside a claim at "
				 "the tail (%llu)'",
				 getenv("SPW_CLI"), test_group_dir, test_group_dir, k->name, vslot,
				 (int)v, (unsigned long long)tail_stopped);
			assert_int_equal(system(cmd), 0);
			snprintf(cmd, sizeof(cmd),
				 "'%s' --shm-dir '%s' --data-dir '%s/none' stat %s --prometheus | "
				 "grep -qx 'spillway_stuck_claims{topic=\"%s\"} 1'",
				 getenv("SPW_CLI"), test_group_dir, test_group_dir, k->name, k->name);
			assert_int_equal(system(cmd), 0);
		}
		spw_producer_close(c); /* (records of its own would break read_all's count) */
	} else {
		assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
		assert_true(spw_producer_send(b.p, b.buf, len) >= (int64_t)tail_stopped);
		sent_b = 1;
	}
	if (k->resume) {
		assert_int_equal(kill(v, SIGCONT), 0);
		if (!sent_b)
			assert_true(spw_producer_send_wait(b.p, b.buf, len, 30 * TEST_SEC) >= 0);
		for (uint32_t i = 1; i < AFTER; i++)
			assert_true(spw_producer_send_wait(b.p, b.buf, test_id_sender_next(&b),
							   30 * TEST_SEC) >= 0);
		assert_int_equal(test_wait(v, 30 * TEST_SEC), 0);
		assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
		test_id_sender_close(&b);
		/* Both streams complete, each record once. */
		assert_int_equal(read_all(t, 2, x->seed), BEFORE + AFTER + AFTER);
	} else {
		assert_int_equal(test_kill_reap(v), 128 + SIGKILL);
		/* Dead: B goes on at once (its lock is gone, no timeout). */
		if (!sent_b)
			assert_true(spw_producer_send(b.p, b.buf, len) >= 0);
		for (uint32_t i = 1; i < AFTER; i++)
			assert_true(spw_producer_send(b.p, b.buf, test_id_sender_next(&b)) >= 0);
		test_id_sender_close(&b);
		if (k->at == RING_AT_CLAIMED) {
			/* Its tail store happened: its span is the daemon's to
			 * abort, exactly that span, since its owner is dead. */
			assert_int_equal(spwd_resolve(t, (int64_t)claim_pos, &st),
					 SPWD_RESOLVE_ABORTED);
			assert_int_equal(st.span, test_span(len_stopped));
		}
		assert_int_equal(read_all(t, 2, x->seed), BEFORE + AFTER);
	}
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, k->name), 0);
}

static void a_newcomer_waits_for_a_stopped_solo_claim(void **state)
{
	static const struct stop_case cases[] = {
		{ "stop_before_word_resume", RING_AT_SOLO_WORD, 1 },
		{ "stop_before_word_kill", RING_AT_SOLO_WORD, 0 },
		{ "stop_before_tail_resume", RING_AT_CLAIMING, 1 },
		{ "stop_after_tail_resume", RING_AT_CLAIMED, 1 },
		{ "stop_before_tail_kill", RING_AT_CLAIMING, 0 },
		{ "stop_after_tail_kill", RING_AT_CLAIMED, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		printf("[ case     ] %s\n", cases[i].name);
		run_stop_case(&cases[i]);
	}
}

/* --- a newcomer stopped or killed in the middle of ending a solo ----------- */

#define NEWCOMER_SENDS 15

struct ending_arg {
	char name[64];
	uint64_t seed;
	uint32_t id;
};

/* Opens a producer that stops right after setting the solo word ENDING, then
 * (if resumed) sends its stream and closes. */
static int newcomer(void *arg)
{
	struct ending_arg *x = arg;
	struct test_id_sender s;

	test_stop_at(RING_AT_SOLO_ENDING);
	TEST_CHECK(test_id_sender_open(&s, test_group_dir, x->name, x->seed, x->id, MAXREC) == 0,
		   "newcomer open");
	TEST_CHECK(!s.p->exclusive && !s.p->join_pending, "the newcomer is shared, not waiting");
	for (int i = 0; i < NEWCOMER_SENDS; i++)
		TEST_CHECK(spw_producer_send(s.p, s.buf, test_id_sender_next(&s)) >= 0, "send");
	test_id_sender_close(&s);
	return 0;
}

/* A solo producer that sends 10 records, then stops while idle. */
static int idle_solo(void *arg)
{
	struct ending_arg *x = arg;
	struct test_id_sender s;

	TEST_CHECK(test_id_sender_open(&s, test_group_dir, x->name, x->seed, 0, MAXREC) == 0,
		   "solo open");
	TEST_CHECK(s.p->solo_w != 0, "alone: solo");
	for (int i = 0; i < 10; i++)
		TEST_CHECK(spw_producer_send(s.p, s.buf, test_id_sender_next(&s)) >= 0, "send");
	raise(SIGSTOP);
	return 0;
}

/* How: 0 the newcomer is killed, 1 resumed, 2 killed and the solo producer
 * (a child too) killed as well. */
static void run_ending_case(const char *name, int how)
{
	struct spw_topic *t = topic_new(name);
	struct ending_arg *x = test_shared_alloc(sizeof(*x));
	struct test_id_sender a, c;
	pid_t solo_pid = 0, n;
	uint32_t solo_slot;
	int from_a = 0, from_n = 0;

	snprintf(x->name, sizeof(x->name), "%s", name);
	x->seed = test_seed(name);
	x->id = how == 2 ? 1 : 2;
	if (how == 2) {
		solo_pid = test_fork_tied(idle_solo, x);
		assert_int_equal(test_wait_stopped(solo_pid, 30 * TEST_SEC), 0);
		from_a = 10;
	} else {
		assert_int_equal(test_id_sender_open(&a, test_group_dir, name, x->seed, 0, MAXREC), 0);
		for (int i = 0; i < 10; i++)
			assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
		from_a = 10;
	}
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, RING_SOLO_ON);
	solo_slot = RING_SOLO_SLOT(atomic_load(&t->hdr->solo));
	n = test_fork_tied(newcomer, x);
	assert_int_equal(test_wait_stopped(n, 30 * TEST_SEC), 0);
	/* Stopped with the word ENDING, naming the solo producer's slot. */
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, RING_SOLO_ENDING);
	assert_int_equal(RING_SOLO_SLOT(atomic_load(&t->hdr->solo)), solo_slot);
	if (how == 2) {
		assert_int_equal(test_kill_reap(solo_pid), 128 + SIGKILL);
		assert_int_equal(test_kill_reap(n), 128 + SIGKILL);
		/* Both dead: the next to open finds ENDING naming a dead slot,
		 * settled (idle when it died): the word goes off, and with
		 * nobody else alive, the opener is solo. */
		assert_int_equal(test_id_sender_open(&c, test_group_dir, name, x->seed, 2, MAXREC), 0);
		assert_false(c.p->join_pending);
		assert_true(solo_names(t, c.p));
		for (int i = 0; i < 20; i++)
			assert_true(spw_producer_send(c.p, c.buf, test_id_sender_next(&c)) >= 0);
		test_id_sender_close(&c);
		assert_int_equal(read_all(t, 3, x->seed), from_a + 20);
		goto out;
	}
	/* The solo producer's next claim sees the word changed: it stores
	 * IDLE, gives the word up and claims with the CAS. */
	for (int i = 0; i < 20; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	from_a += 20;
	assert_false(a.p->exclusive);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	if (how == 1) {
		/* Resumed: its wait finds the word already off; shared. */
		assert_int_equal(kill(n, SIGCONT), 0);
		assert_int_equal(test_wait(n, 30 * TEST_SEC), 0);
		from_n = NEWCOMER_SENDS;
	} else {
		assert_int_equal(test_kill_reap(n), 128 + SIGKILL);
	}
	/* Another opens while A lives: shared, nothing to wait for. */
	assert_int_equal(test_id_sender_open(&c, test_group_dir, name, x->seed, 1, MAXREC), 0);
	assert_false(c.p->join_pending || c.p->exclusive);
	for (int i = 0; i < 20; i++) {
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
		assert_true(spw_producer_send(c.p, c.buf, test_id_sender_next(&c)) >= 0);
	}
	from_a += 20;
	test_id_sender_close(&c);
	test_id_sender_close(&a);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	assert_int_equal(read_all(t, 3, x->seed), from_a + 20 + from_n);
out:
	test_shared_free(x, sizeof(*x));
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, name), 0);
}

static void a_newcomer_stopped_or_killed_while_ending_a_solo(void **state)
{
	(void)state;
	printf("[ case     ] ending_newcomer_killed\n");
	run_ending_case("ending_killed", 0);
	printf("[ case     ] ending_newcomer_resumed\n");
	run_ending_case("ending_resumed", 1);
	printf("[ case     ] ending_both_killed\n");
	run_ending_case("ending_both", 2);
}

/* --- membarrier refused by seccomp ------------------------------------------ */

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

/* This process's membarrier() calls fail with EPERM from now on (and its
 * children's): what a container's seccomp profile may do. */
static int refuse_membarrier(void)
{
#ifdef SECCOMP_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -errno;
	return syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0 && errno == EPERM ? 0 : -EIO;
#else
	return -ENOSYS;
#endif
}

#define NOBARRIER_SENDS 100

/* The re-executed binary: argv = self --no-membarrier MODE DIR NAME SEED.
 * MODE "while-solo": open must give -EPERM. MODE "alone": open shared, send
 * the stream of sender 1, read it back with a timed wait at the end. */
static int no_membarrier_main(char **argv)
{
	struct test_id_sender s;
	struct spw_consumer *c = NULL;
	struct check k = { .n = 0 };
	uint64_t seed = strtoull(argv[5], NULL, 16);
	int r;

	TEST_CHECK(refuse_membarrier() == 0, "installing the seccomp filter");
	test_group_dir = argv[3];
	if (!strcmp(argv[2], "while-solo")) {
		struct spw_topic *t = NULL;
		struct spw_producer *p = NULL;

		TEST_CHECK(spw_topic_open(test_group_dir, argv[4], 0, &t) == 0, "topic open");
		r = spw_producer_open(t, &p);
		TEST_CHECK(r == -EPERM, "open while another is solo: %d, not -EPERM", r);
		spw_topic_close(t);
		return 0;
	}
	TEST_CHECK(test_id_sender_open(&s, test_group_dir, argv[4], seed, 1, MAXREC) == 0, "open");
	TEST_CHECK(s.p->fence_commit && !s.p->exclusive && !s.p->solo_w,
		   "without membarrier: shared, fencing its commits");
	TEST_CHECK(!(atomic_load(&s.t->hdr->solo) & SOLO_STATE), "the solo word stays off");
	for (int i = 0; i < NOBARRIER_SENDS; i++)
		TEST_CHECK(spw_producer_send(s.p, s.buf, test_id_sender_next(&s)) >= 0, "send");
	/* A consumer here sleeps in 1 ms slices (it cannot send the barrier
	 * its sleep relies on, I8): the records, then a timed wait. */
	test_id_expect_init(&k.e, seed, 2, MAXREC);
	TEST_CHECK(spw_consumer_open(s.t, SPW_FROM_OLDEST, 0, &c) == 0, "consumer open");
	while ((r = spw_consumer_poll_wait(c, check_one, &k, 1000, 20 * TEST_MS)) > 0)
		;
	TEST_CHECK(k.bad == 0 && k.n >= NOBARRIER_SENDS, "%d records read, %d bad", k.n, k.bad);
	TEST_CHECK(r == 0 || r == -ETIMEDOUT, "the timed wait on an empty ring: %d", r);
	spw_consumer_close(c);
	test_id_sender_close(&s);
	return 0;
}

/* Runs this binary again as no_membarrier_main: its exit status. */
static int run_no_membarrier(const char *mode, const char *name, uint64_t seed)
{
	char seedhex[32];
	int status;
	pid_t pid;

	snprintf(seedhex, sizeof(seedhex), "%llx", (unsigned long long)seed);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "ring_solo", "--no-membarrier", mode, test_group_dir, name,
		      seedhex, (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void a_process_without_membarrier(void **state)
{
	struct spw_topic *t = topic_new("nobarrier");
	struct test_id_sender a;
	uint64_t seed = test_seed("nobarrier");

	(void)state;
#ifndef SECCOMP_ARCH
	fail_msg("no seccomp architecture constant for this CPU in tests/ring_solo.c");
#endif
	assert_int_equal(test_id_sender_open(&a, test_group_dir, "nobarrier", seed, 0, MAXREC), 0);
	for (int i = 0; i < 10; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	assert_true(solo_names(t, a.p));
	assert_int_equal(run_no_membarrier("while-solo", "nobarrier", seed), 0);
	/* It set the word ENDING before its barrier failed: A gives it up at
	 * its next claim and claims with the CAS. */
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, RING_SOLO_ENDING);
	for (int i = 0; i < 10; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	assert_false(a.p->exclusive);
	assert_int_equal(atomic_load(&t->hdr->solo) & SOLO_STATE, 0);
	test_id_sender_close(&a);
	/* Alone, without membarrier: shared, and everything arrives. */
	assert_int_equal(run_no_membarrier("alone", "nobarrier", seed), 0);
	assert_int_equal(read_all(t, 2, seed), 20 + NOBARRIER_SENDS);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "nobarrier"), 0);
}

/* --- fork ------------------------------------------------------------------ */

struct fork_arg {
	uint64_t seed;
	struct test_id_sender *parent; /* the parent's, as fork() copied it */
};

static int forked_child(void *arg)
{
	struct fork_arg *x = arg;
	struct test_id_sender s;

	/* The parent's handle is the parent's: refused here, and it must not
	 * give up the parent's solo either. */
	TEST_CHECK(spw_producer_send(x->parent->p, "no", 2) == -ECHILD, "inherited handle");
	TEST_CHECK(test_id_sender_open(&s, test_group_dir, "solofork", x->seed, 1, MAXREC) == 0,
		   "child open");
	TEST_CHECK(!s.p->exclusive, "the child is not solo while the parent lives");
	for (int i = 0; i < 40; i++)
		TEST_CHECK(spw_producer_send(s.p, s.buf, test_id_sender_next(&s)) >= 0, "child send");
	test_id_sender_close(&s);
	return 0;
}

/* A solo parent forks; the child opens its own producer (ending the parent's
 * solo across the fork: the child shares the parent's open file description
 * and so its slot lock) and sends while the parent does. */
static void a_child_of_a_solo_parent_ends_its_solo(void **state)
{
	struct spw_topic *t = topic_new("solofork");
	struct test_id_sender a;
	struct fork_arg x;
	pid_t v;

	(void)state;
	x.seed = test_seed("solofork");
	assert_int_equal(test_id_sender_open(&a, test_group_dir, "solofork", x.seed, 0, MAXREC), 0);
	assert_true(solo_names(t, a.p));
	for (int i = 0; i < 10; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	x.parent = &a;
	v = test_fork_tied(forked_child, &x);
	for (int i = 0; i < 40; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	assert_int_equal(test_wait(v, 30 * TEST_SEC), 0);
	for (int i = 0; i < 10; i++)
		assert_true(spw_producer_send(a.p, a.buf, test_id_sender_next(&a)) >= 0);
	assert_false(a.p->exclusive); /* its solo ended with the child's open */
	assert_int_equal(read_all(t, 2, x.seed), 10 + 40 + 10 + 40);
	test_id_sender_close(&a);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "solofork"), 0);
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--no-membarrier"))
		return no_membarrier_main(argv) ? 1 : 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_lone_producer_is_solo_until_another_opens),
		cmocka_unit_test(a_newcomer_waits_for_a_stopped_solo_claim),
		cmocka_unit_test(a_newcomer_stopped_or_killed_while_ending_a_solo),
		cmocka_unit_test(a_child_of_a_solo_parent_ends_its_solo),
		cmocka_unit_test(a_process_without_membarrier),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
