/* SPDX-License-Identifier: MIT */
/*
 * rtt_probe.c - the 64 B round trip of a bare ring against Spillway's, two
 * processes pinned to two PUs (tools/bench_topo.c), rounds alternating, each
 * trip timed three ways. Built by `make bench`; run it alone:
 *
 *   build/bench/rtt_probe [--trips N] [--rounds R] [--cpus A,B] [--layouts]
 *
 * The bare ring: 80-byte records (a commit word, a timestamp, 64 B), the
 * commit word stored last with release, the reader spinning on it with a
 * pause between looks and prefetching the record's second line while it
 * waits, as Spillway's consumer does. Spillway: an exclusive producer's
 * spw_producer_send, spw_consumer_peek and release, 1 MiB no-spill rings
 * that the reader reclaims every quarter ring (as bench/compare does).
 *
 * Each trip is timed from just before the send to the reply's arrival by:
 * rdtsc at both ends; clock_gettime at both ends (as bench/compare and
 * Aeron's cping time it); rdtsc at the start and lfence + rdtsc at the end
 * (the fence waits for every older load). A gap between the first and the
 * other two is a load still in flight when the reply was found: what held
 * up Spillway's round trip until a peek after an empty look handed out one
 * record alone (docs/HACKING.md, "Comparison history", 2026-12-05).
 *
 * --layouts runs bare rings only, in the layouts of struct layout below,
 * rounds alternating, timed with clock_gettime: what a record's layout and
 * store order are worth against the 80-byte record (docs/HACKING.md,
 * "Comparison history", "Record layouts").
 */
#define _GNU_SOURCE
#include "spillway.h"
#include "spillway_daemon.h"

#include "../tools/bench_topo.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define RING (1u << 20)
#define PAYLOAD 64u
#define SPAN 80u /* a commit word, a timestamp, 64 B: as a Spillway record */

enum { T_TSC, T_GETTIME, T_FENCED, T_N };
static const char *const tname[T_N] = { "rdtsc", "clock_gettime", "lfence at the end" };

static uint64_t G_trips = 200000;
/* Set by the run's deadline (on_alarm): the waits below give up. */
static volatile sig_atomic_t G_expired;
static double G_tsc_ns = 1.0; /* ns per TSC tick, measured at start */

static inline uint64_t tsc(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static inline uint64_t tsc_fenced(void)
{
#if defined(__x86_64__)
	_mm_lfence();
#endif
	return tsc();
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void relax(void)
{
#if defined(__x86_64__)
	_mm_pause();
#endif
}

static void calibrate(void)
{
	uint64_t n0 = mono_ns(), c0 = tsc(), n1, c1;

	do
		n1 = mono_ns();
	while (n1 - n0 < 20000000);
	c1 = tsc();
	G_tsc_ns = c1 > c0 ? (double)(n1 - n0) / (double)(c1 - c0) : 1.0;
}

/* --- the bare ring ----------------------------------------------------------------- */

/* How a bare ring lays out and writes its records (--layouts). */
struct layout {
	const char *name;
	uint32_t span, payload; /* payload: 64, or 48 (one line with the header) */
	bool demote;            /* cldemote the record's lines after the commit */
	bool tail_first;        /* the payload's second line stored first */
	bool no_prefetch;       /* the reader does not prefetch the second line */
};

static const struct layout G_layouts[] = {
	{ "80 B, stores in order", SPAN, PAYLOAD, false, false, false },
	{ "64 B, one line (48 B payload)", 64, 48, false, false, false },
	{ "80 B, reader not prefetching", SPAN, PAYLOAD, false, false, true },
	{ "80 B, second line stored first", SPAN, PAYLOAD, false, true, false },
	{ "80 B, lines demoted (cldemote)", SPAN, PAYLOAD, true, false, false },
};
#define N_LAYOUTS (sizeof(G_layouts) / sizeof(G_layouts[0]))

struct bare {
	uint8_t *ring;
	uint64_t pos;
	const struct layout *l;
};

/* CLDEMOTE: a hint to move the line to the shared cache; a NOP on x86
 * processors without it (its opcode is in the hint-NOP space). */
static inline void demote(const void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("cldemote (%0)" ::"r"(p) : "memory");
#else
	(void)p;
#endif
}

/* The payload, in 16-byte stores in order (as the library's copy). */
static inline void put_payload(uint8_t *d, const uint8_t *pl, uint32_t n, bool tail_first)
{
	/* The bytes from the record's second line on, when tail_first. */
	uint32_t head = tail_first ? (uint32_t)(64 - ((uintptr_t)d & 63)) : n;

	if (head >= n)
		head = n;
	for (uint32_t o = head & ~15u; o < n; o += 16)
		memcpy(d + o, pl + o, 16);
	for (uint32_t o = 0; o < (head & ~15u); o += 16)
		memcpy(d + o, pl + o, 16);
}

static void bare_put(struct bare *b, uint64_t seq, const uint8_t *pl)
{
	const struct layout *l = b->l;
	uint8_t *r;

	if (b->pos % RING + l->span > RING)
		b->pos += RING - b->pos % RING;
	r = b->ring + b->pos % RING;
	if (!l->tail_first)
		memcpy(r + 8, &(uint64_t){ tsc() }, 8);
	put_payload(r + 16, pl, l->payload, l->tail_first);
	if (l->tail_first) /* after the second line: the first line's stores last */
		memcpy(r + 8, &(uint64_t){ tsc() }, 8);
	/* Release: the payload before the word; pairs with bare_get's acquire. */
	__atomic_store_n((uint64_t *)(void *)r, seq, __ATOMIC_RELEASE);
	if (l->demote) {
		demote(r);
		demote(r + l->span - 1);
	}
	b->pos += l->span;
}

/* The payload of record seq, or NULL past the run's deadline. */
static const uint8_t *bare_get(struct bare *b, uint64_t seq)
{
	const uint8_t *r;
	int looks = 0;

	if (b->pos % RING + b->l->span > RING)
		b->pos += RING - b->pos % RING;
	r = b->ring + b->pos % RING;
	/* Acquire: pairs with bare_put's release store of the word. */
	while (__atomic_load_n((const uint64_t *)(const void *)r, __ATOMIC_ACQUIRE) != seq) {
		if (++looks > 8 && !b->l->no_prefetch)
			__builtin_prefetch((const void *)(((uintptr_t)r & ~(uintptr_t)63) + 64));
		if (G_expired)
			return NULL;
		relax();
	}
	b->pos += b->l->span;
	return r + 16;
}

/* --- Spillway ------------------------------------------------------------------------ */

struct spw_side {
	struct spw_topic *tx_t, *rx_t;
	struct spw_producer *p;
	struct spw_consumer *c;
	int64_t reclaimed;
};

static int spw_side_open(struct spw_side *s, const char *shm, const char *tx, const char *rx)
{
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = spw_topic_open(shm, tx, 0, &s->tx_t)) ||
	    (r = spw_producer_open_flags(s->tx_t, SPW_PRODUCER_EXCLUSIVE, &s->p)) ||
	    (r = spw_topic_open(shm, rx, 0, &s->rx_t)) ||
	    (r = spw_consumer_open(s->rx_t, SPW_FROM_OLDEST, 0, &s->c)))
		fprintf(stderr, "rtt_probe: opening %s/%s: %s\n", tx, rx, strerror(-r));
	return r;
}

static void spw_side_close(struct spw_side *s)
{
	spw_consumer_close(s->c);
	spw_producer_close(s->p);
	spw_topic_close(s->rx_t);
	spw_topic_close(s->tx_t);
}

/* One record, its payload copied to out; no daemon: reclaim behind us. */
static int spw_get(struct spw_side *s, uint8_t *out)
{
	struct spw_record rec[256];
	int n;

	while ((n = spw_consumer_peek(s->c, rec, 256)) == 0) {
		if (G_expired)
			return -ETIMEDOUT;
		relax();
	}
	if (n < 0)
		return n;
	memcpy(out, rec[0].data, rec[0].len < PAYLOAD ? rec[0].len : PAYLOAD);
	/* The trips are one record each: never more than one here. */
	n = spw_consumer_release(s->c, rec, 1);
	if (n < 0)
		return n;
	if (spw_consumer_position(s->c) - s->reclaimed >= (int64_t)(RING / 4)) {
		s->reclaimed = spw_consumer_position(s->c);
		return spwd_reclaim(s->rx_t, s->reclaimed);
	}
	return 0;
}

/* --- one round ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p50 and p99 of lat[skip..n) in ns (ticks scaled by mult). */
static void pcts(uint64_t *lat, uint64_t n, double mult, double *p50, double *p99)
{
	uint64_t skip = n / 10, m = n - skip;

	qsort(lat + skip, m, sizeof(*lat), cmp_u64);
	*p50 = (double)lat[skip + m / 2] * mult;
	*p99 = (double)lat[skip + m * 99 / 100] * mult;
}

/* Round trips of one kind timed with `how`: a bare ring in G_layouts[kind],
 * or Spillway (kind < 0); the ponger is a child on pus[1]. 0, or -errno. */
static int round_trips(int kind, int how, const int pus[2], const char *shm, double *p50,
		       double *p99)
{
	const bool bare = kind >= 0;
	const struct layout *l = bare ? &G_layouts[kind] : NULL;
	uint8_t *rings[2] = { NULL, NULL };
	uint64_t *lat = malloc(G_trips * sizeof(uint64_t));
	uint8_t pl[PAYLOAD] = { 1 }, in[PAYLOAD];
	struct spw_topic_config cfg = { .ring_bytes = RING, .flags = SPW_TOPIC_NO_SPILL };
	int r = 0, st;
	pid_t kid;

	if (!lat)
		return -ENOMEM;
	if (bare) {
		for (int i = 0; i < 2; i++) {
			void *m = mmap(NULL, RING, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

			if (m == MAP_FAILED) {
				r = -errno;
				goto out; /* the one mapped before is unmapped there */
			}
			rings[i] = m;
		}
	} else {
		spw_topic_delete(shm, "ping");
		spw_topic_delete(shm, "pong");
		if ((r = spw_topic_create(shm, "ping", &cfg)) || (r = spw_topic_create(shm, "pong", &cfg))) {
			fprintf(stderr, "rtt_probe: topics in %s: %s\n", shm, strerror(-r));
			free(lat);
			return r;
		}
	}
	kid = fork();
	if (kid < 0) {
		r = -errno;
		goto out;
	}
	if (kid == 0) {
		struct bare a = { rings[0], 0, l }, b = { rings[1], 0, l };
		struct spw_side s;

		/* Gone with the pinger, whatever ends it (its deadline below). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		topo_bind_thread(pus[1]);
		if (!bare && spw_side_open(&s, shm, "pong", "ping"))
			_exit(1);
		for (uint64_t i = 1; i <= G_trips; i++) {
			if (bare) {
				const uint8_t *ping = bare_get(&a, i);

				if (!ping) /* (never here: the deadline is the pinger's) */
					_exit(1);
				memcpy(in, ping, l->payload);
				bare_put(&b, i, in);
			} else if (spw_get(&s, in) || spw_producer_send(s.p, in, PAYLOAD) < 0) {
				_exit(1);
			}
		}
		if (!bare)
			spw_side_close(&s);
		_exit(0);
	}
	topo_bind_thread(pus[0]);
	{
		struct bare a = { rings[0], 0, l }, b = { rings[1], 0, l };
		struct spw_side s;

		if (!bare && (r = spw_side_open(&s, shm, "ping", "pong"))) {
			kill(kid, SIGKILL);
			waitpid(kid, NULL, 0);
			goto out;
		}
		for (uint64_t i = 1; i <= G_trips && !r; i++) {
			uint64_t t0, t1, got;

			memcpy(pl, &i, sizeof(i)); /* echoed back: checked below */
			t0 = how == T_GETTIME ? mono_ns() : tsc();

			if (bare) {
				const uint8_t *back;

				bare_put(&a, i, pl);
				if ((back = bare_get(&b, i)))
					memcpy(in, back, l->payload);
				else
					r = -ETIMEDOUT;
			} else {
				int64_t sent = spw_producer_send(s.p, pl, PAYLOAD);

				r = sent < 0 ? (int)sent : spw_get(&s, in);
			}
			t1 = how == T_GETTIME ? mono_ns() : how == T_FENCED ? tsc_fenced() : tsc();
			lat[i - 1] = t1 - t0;
			memcpy(&got, in, sizeof(got));
			if (r)
				break;
			if (got != i) {
				fprintf(stderr, "rtt_probe: trip %llu came back as %llu\n",
					(unsigned long long)i, (unsigned long long)got);
				r = -EBADMSG;
			}
		}
		if (!bare)
			spw_side_close(&s);
	}
	if (r)
		kill(kid, SIGKILL); /* it waits for trips that will not come */
	if (waitpid(kid, &st, 0) == kid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !r)
		r = -EIO;
	if (!r)
		pcts(lat, G_trips, how == T_GETTIME ? 1.0 : G_tsc_ns, p50, p99);
out:
	for (int i = 0; i < 2; i++)
		if (rings[i])
			munmap(rings[i], RING);
	if (!bare) {
		spw_topic_delete(shm, "ping");
		spw_topic_delete(shm, "pong");
	}
	free(lat);
	return r;
}

/* A run past its deadline: its ponger died or stalled (the pinger would
 * spin on for ever); the pinger's waits give up and it cleans up. */
static void on_alarm(int sig)
{
	(void)sig;
	G_expired = 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One run of round trips of kind, under the run's deadline; the reason on
 * stderr when it failed. */
static int timed_run(int kind, int how, const int pus[2], const char *shm, double *p50,
		     double *p99)
{
	int r;

	alarm(120 + (unsigned)(G_trips / 1000000)); /* a million trips: under 1 s */
	r = round_trips(kind, how, pus, shm, p50, p99);
	alarm(0);
	if (r)
		fprintf(stderr, "rtt_probe: %s\n",
			r == -ETIMEDOUT ? "a run passed its deadline: its ponger died or stalled"
					: strerror(-r));
	return r;
}

/* --layouts: the bare ring in each layout, the order rotating round by
 * round, each p50 against the 80-byte layout's of the same round. */
static int run_layouts(int rounds, const int pus[2], const char *shm)
{
	double ratio[N_LAYOUTS][64];

	for (int k = 0; k < rounds; k++) {
		double p50[N_LAYOUTS], p99[N_LAYOUTS];

		printf("round %d: cache-line round trip %.1f ns\n", k + 1,
		       topo_line_rtt(pus[0], pus[1], 3, 100000, NULL));
		for (size_t j = 0; j < N_LAYOUTS; j++) {
			size_t i = (j + (size_t)k) % N_LAYOUTS;

			if (timed_run((int)i, T_GETTIME, pus, shm, &p50[i], &p99[i]))
				return 1;
		}
		for (size_t i = 0; i < N_LAYOUTS; i++) {
			ratio[i][k] = p50[i] / p50[0];
			printf("  %-32s p50 %6.0f  p99 %6.0f  %.2fx\n", G_layouts[i].name, p50[i],
			       p99[i], ratio[i][k]);
		}
	}
	for (size_t i = 1; i < N_LAYOUTS; i++) {
		qsort(ratio[i], (size_t)rounds, sizeof(double), cmp_double);
		printf("median p50 against the 80-byte layout: %-32s %.2fx\n", G_layouts[i].name,
		       ratio[i][rounds / 2]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "trips", required_argument, NULL, 't' },
					      { "rounds", required_argument, NULL, 'r' },
					      { "cpus", required_argument, NULL, 'c' },
					      { "layouts", no_argument, NULL, 'l' },
					      { NULL, 0, NULL, 0 } };
	char shm[] = "/dev/shm/spillway-rtt-probe.XXXXXX", err[256], desc[256];
	const char *cpus = NULL;
	int rounds = 4, pus[2], o;
	bool layouts = false;
	double ratio[T_N][64];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 't')
			G_trips = strtoull(optarg, NULL, 10);
		else if (o == 'r')
			rounds = atoi(optarg);
		else if (o == 'c')
			cpus = optarg;
		else if (o == 'l')
			layouts = true;
		else
			return 2;
	}
	if (G_trips < 100 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "rtt_probe: --trips >= 100, --rounds 1-64\n");
		return 2;
	}
	if (topo_init() || topo_pick(cpus, 2, pus, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtt_probe: %s\n", cpus ? err : "hwloc failed");
		return 1;
	}
	if (!mkdtemp(shm)) {
		perror("rtt_probe: mkdtemp");
		return 1;
	}
	calibrate();
	signal(SIGALRM, on_alarm);
	topo_link_desc(pus[0], pus[1], desc, sizeof(desc));
	printf("rtt_probe: %s round trips, pinger on P#%d, ponger on P#%d (%s); %llu trips a "
	       "run, the first tenth dropped; p50 / p99 in ns\n",
	       layouts ? "bare-ring layouts' (timed by clock_gettime)" : "64 B", pus[0], pus[1],
	       desc, (unsigned long long)G_trips);
	if (layouts) {
		o = run_layouts(rounds, pus, shm);
		rmdir(shm);
		topo_fini();
		return o;
	}
	for (int k = 0; k < rounds; k++) {
		printf("round %d: cache-line round trip %.1f ns\n", k + 1,
		       topo_line_rtt(pus[0], pus[1], 3, 100000, NULL));
		for (int how = 0; how < T_N; how++) {
			double b50, b99, s50, s99;
			/* Alternate which goes first, round by round. */
			bool bare_first = k % 2 == 0;
			int r;

			r = timed_run(bare_first ? 0 : -1, how, pus, shm, bare_first ? &b50 : &s50,
				      bare_first ? &b99 : &s99);
			if (!r)
				r = timed_run(bare_first ? -1 : 0, how, pus, shm, bare_first ? &s50 : &b50,
					      bare_first ? &s99 : &b99);
			if (r) {
				rmdir(shm);
				return 1;
			}
			ratio[how][k] = s50 / b50;
			printf("  timed by %-17s bare %6.0f / %6.0f   spillway %6.0f / %6.0f   "
			       "spillway/bare p50 %.2fx\n",
			       tname[how], b50, b99, s50, s99, ratio[how][k]);
		}
	}
	for (int how = 0; how < T_N; how++) {
		qsort(ratio[how], (size_t)rounds, sizeof(double), cmp_double);
		printf("median spillway/bare p50, timed by %s: %.2fx\n", tname[how],
		       ratio[how][rounds / 2]);
	}
	rmdir(shm);
	topo_fini();
	return 0;
}
