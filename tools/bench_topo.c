/* SPDX-License-Identifier: MIT */
/*
 * bench_topo.c - hwloc PU choice, pinning and the cache-line round trip
 * (bench_topo.h).
 *
 * The round trip follows bench/topology.cc: one 64-bit word alone on a
 * 128-byte line (the adjacent-line prefetcher pulls pairs of lines); the
 * main thread writes 2i+1 and spins for 2i+2, the peer spins for 2i+1 and
 * writes 2i+2, so each round trip moves the line there and back. Bare spins,
 * no pause instruction: a pause would add tens of cycles to every hop.
 */
#define _GNU_SOURCE
#include "bench_topo.h"

#include "ring_internal.h"

#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hwloc_topology_t topo;
static int topo_loaded;

int topo_init(void)
{
	if (topo_loaded)
		return 0;
	if (hwloc_topology_init(&topo) < 0)
		return -ENODEV;
	if (hwloc_topology_load(topo) < 0) {
		hwloc_topology_destroy(topo);
		return -ENODEV;
	}
	topo_loaded = 1;
	return 0;
}

void topo_fini(void)
{
	if (topo_loaded)
		hwloc_topology_destroy(topo);
	topo_loaded = 0;
}

static hwloc_obj_t pu_obj(int pu)
{
	return topo_loaded && pu >= 0 ? hwloc_get_pu_obj_by_os_index(topo, (unsigned)pu) : NULL;
}

int topo_count_pus(void)
{
	return topo_loaded ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU) : 0;
}

int topo_count_cores(void)
{
	return topo_loaded ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) : 0;
}

/* The PUs this process may use, one per core first, then the siblings. */
static int allowed_order(int *out, int max)
{
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
	hwloc_obj_t pu;
	int n = 0;

	if (!allowed)
		return 0;
	if (hwloc_get_cpubind(topo, allowed, HWLOC_CPUBIND_PROCESS) < 0)
		hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(topo));
	for (int pass = 0; pass < 2; pass++) {
		hwloc_obj_t last_core = NULL;

		for (pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, NULL); pu && n < max;
		     pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) {
			hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
			/* Pass 0: the first allowed PU of each core; pass 1: the rest. */
			bool first = !core || core != last_core;

			if (!hwloc_bitmap_isset(allowed, pu->os_index))
				continue;
			last_core = core;
			if ((pass == 0) == first)
				out[n++] = (int)pu->os_index;
		}
	}
	hwloc_bitmap_free(allowed);
	return n;
}

static int distinct(const int *pus, int n)
{
	int d = 0;

	for (int i = 0; i < n; i++) {
		int seen = 0;

		for (int j = 0; j < i; j++)
			seen |= pus[j] == pus[i];
		d += !seen;
	}
	return d;
}

int topo_pick(const char *cpus, int n, int *pus, char *err, size_t errlen)
{
	int list[1024], count = 0;

	if (!topo_loaded || n <= 0) {
		snprintf(err, errlen, "hwloc topology not loaded");
		return -EINVAL;
	}
	if (cpus && *cpus) {
		const char *p = cpus;

		while (*p && count < (int)(sizeof(list) / sizeof(list[0]))) {
			char *end;
			long v = strtol(p, &end, 10);

			if (end == p || v < 0 || (*end && *end != ',')) {
				snprintf(err, errlen, "--cpus %s: expected OS PU indexes, e.g. 0,1", cpus);
				return -EINVAL;
			}
			if (!pu_obj((int)v)) {
				snprintf(err, errlen, "--cpus %s: this machine has no PU %ld", cpus, v);
				return -EINVAL;
			}
			list[count++] = (int)v;
			p = *end ? end + 1 : end;
		}
	} else {
		count = allowed_order(list, (int)(sizeof(list) / sizeof(list[0])));
	}
	if (count == 0) {
		snprintf(err, errlen, "no usable PU found");
		return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		pus[i] = list[i % count];
	return distinct(pus, n);
}

int topo_bind_thread(int pu)
{
	hwloc_obj_t o = pu_obj(pu);
	hwloc_bitmap_t set;
	int r;

	if (!o)
		return -EINVAL;
	set = hwloc_bitmap_dup(o->cpuset);
	if (!set)
		return -ENOMEM;
	hwloc_bitmap_singlify(set);
	r = hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD);
	hwloc_bitmap_free(set);
	return r < 0 ? -errno : 0;
}

void topo_pu_desc(int pu, char *buf, size_t len)
{
	hwloc_obj_t o = pu_obj(pu), core, pkg;

	if (!o) {
		snprintf(buf, len, "P#%d (unknown)", pu);
		return;
	}
	core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, o);
	pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, o);
	snprintf(buf, len, "P#%d (core L#%d, package L#%d)", pu,
		 core ? (int)core->logical_index : -1, pkg ? (int)pkg->logical_index : -1);
}

void topo_link_desc(int a, int b, char *buf, size_t len)
{
	hwloc_obj_t oa = pu_obj(a), ob = pu_obj(b), anc;
	char type[64];

	if (!oa || !ob) {
		snprintf(buf, len, "n/a");
		return;
	}
	if (a == b) {
		snprintf(buf, len, "the same PU");
		return;
	}
	/* Their deepest common ancestor: the cache (or core, or package) a
	 * line passes through between them. */
	anc = hwloc_get_common_ancestor_obj(topo, oa, ob);
	if (!anc) {
		snprintf(buf, len, "n/a");
		return;
	}
	hwloc_obj_type_snprintf(type, sizeof(type), anc, 0);
	if (hwloc_obj_type_is_cache(anc->type))
		snprintf(buf, len, "%s (%llu KiB)", type,
			 (unsigned long long)(anc->attr->cache.size >> 10));
	else if (anc->type == HWLOC_OBJ_CORE)
		snprintf(buf, len, "%s (SMT siblings)", type);
	else
		snprintf(buf, len, "%s (no shared cache)", type);
}

void topo_summary(char *buf, size_t len)
{
	if (!topo_loaded) {
		snprintf(buf, len, "unknown (hwloc failed)");
		return;
	}
	snprintf(buf, len, "%d package(s), %d core(s), %d PU(s)",
		 hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE),
		 hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
		 hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU));
}

/* --- cache-line round trip ------------------------------------------------ */

#define PING_ABORT UINT64_MAX

struct ping {
	alignas(128) _Atomic uint64_t line;
	alignas(128) int peer_pu;      /* read-only after start */
	uint64_t total;                /* round trips the peer answers */
	int peer_pinned;               /* written by the peer before its first answer */
};

static void *ping_peer(void *arg)
{
	struct ping *pg = arg;

	pg->peer_pinned = topo_bind_thread(pg->peer_pu) == 0;
	for (uint64_t i = 0; i < pg->total; i++) {
		uint64_t v;

		/* Acquire/release on both sides: nothing rides on the line but
		 * the counter; the orderings keep each wait a real load and each
		 * hand-off a real store. Pairs with the main thread's release
		 * store of 2i+1 in run_trips(). */
		while ((v = atomic_load_explicit(&pg->line, memory_order_acquire)) != 2 * i + 1)
			if (v == PING_ABORT)
				return NULL;
		/* Release: pairs with run_trips()' acquire load of 2i+2. */
		atomic_store_explicit(&pg->line, 2 * i + 2, memory_order_release);
	}
	return NULL;
}

/* Trips [*i, *i + n); false when one stalled for > 10 s. */
static bool run_trips(struct ping *pg, uint64_t *i, uint64_t n)
{
	uint64_t end = *i + n, t0 = ring_monotonic_ns();

	for (; *i < end; (*i)++) {
		uint64_t spins = 0;

		/* Release: pairs with the peer's acquire load. */
		atomic_store_explicit(&pg->line, 2 * *i + 1, memory_order_release);
		/* Acquire: pairs with the peer's release store of 2i+2. */
		while (atomic_load_explicit(&pg->line, memory_order_acquire) != 2 * *i + 2) {
			if ((++spins & 0xfffff) == 0 && ring_monotonic_ns() - t0 > 10000000000ull) {
				atomic_store_explicit(&pg->line, PING_ABORT, memory_order_release);
				return false;
			}
		}
	}
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double topo_line_rtt(int a, int b, int runs, uint64_t trips, double *per_run)
{
	hwloc_bitmap_t saved;
	struct ping *pg;
	pthread_t th;
	double ns[64], med = -1;
	uint64_t i = 0, warm;
	int done = 0;
	bool ok = true;

	if (a == b || !pu_obj(a) || !pu_obj(b) || runs <= 0 || trips == 0)
		return -1;
	if (runs > 64)
		runs = 64;
	warm = trips / 10 > 1000 ? trips / 10 : 1000;
	pg = aligned_alloc(128, sizeof(*pg));
	saved = hwloc_bitmap_alloc();
	if (!pg || !saved) {
		free(pg);
		hwloc_bitmap_free(saved);
		return -1;
	}
	memset(pg, 0, sizeof(*pg));
	atomic_init(&pg->line, 0);
	pg->peer_pu = b;
	pg->total = warm + trips * (uint64_t)runs;
	hwloc_get_cpubind(topo, saved, HWLOC_CPUBIND_THREAD);
	if (topo_bind_thread(a) || pthread_create(&th, NULL, ping_peer, pg)) {
		hwloc_set_cpubind(topo, saved, HWLOC_CPUBIND_THREAD);
		hwloc_bitmap_free(saved);
		free(pg);
		return -1;
	}
	ok = run_trips(pg, &i, warm);
	for (; ok && done < runs; done++) {
		uint64_t t0 = ring_monotonic_ns();

		ok = run_trips(pg, &i, trips);
		ns[done] = (double)(ring_monotonic_ns() - t0) / (double)trips;
	}
	pthread_join(th, NULL);
	if (ok && pg->peer_pinned) {
		if (per_run)
			memcpy(per_run, ns, sizeof(double) * (size_t)runs);
		qsort(ns, (size_t)runs, sizeof(double), cmp_double);
		med = runs % 2 ? ns[runs / 2] : (ns[runs / 2 - 1] + ns[runs / 2]) / 2;
	}
	hwloc_set_cpubind(topo, saved, HWLOC_CPUBIND_THREAD);
	hwloc_bitmap_free(saved);
	free(pg);
	return med;
}
