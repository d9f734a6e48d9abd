/* SPDX-License-Identifier: MIT */
/*
 * bench_topo.h - hwloc for the benchmarks: which PUs to run on, pinning, and
 * the cache-line round trip between two PUs (the floor under any cross-core
 * hand-off: no queue can beat one line going there and back).
 *
 * PUs are named by their OS index (what taskset and /proc/cpuinfo call
 * them). The state is per process; after fork() the child may use it as is.
 */
#ifndef SPILLWAY_BENCH_TOPO_H
#define SPILLWAY_BENCH_TOPO_H

#include <stddef.h>
#include <stdint.h>

/* Load the machine's topology. 0 or -errno (-ENODEV: hwloc failed). */
int topo_init(void);
void topo_fini(void);

/*
 * Choose a PU for each of n roles (role i -> pus[i]). cpus NULL or "": only
 * PUs this process may run on (its binding: `taskset -c 2,3` is honoured),
 * one per core first, in hwloc's logical order (neighbours share caches),
 * SMT siblings only when the cores run out; roles wrap around when there
 * are more roles than PUs. cpus "A,B,...": those OS indexes, role i taking
 * the (i mod count)-th. Returns the number of distinct PUs used, or
 * -EINVAL with a reason in err.
 */
int topo_pick(const char *cpus, int n, int *pus, char *err, size_t errlen);

/* Pin the calling thread to one PU. 0 or -errno. */
int topo_bind_thread(int pu);

/* "P#3 (core L#1, package L#0)" */
void topo_pu_desc(int pu, char *buf, size_t len);
/* What two PUs share: "L3 (32768 KiB)", "Core (same core)", "Machine". */
void topo_link_desc(int a, int b, char *buf, size_t len);
/* "1 package(s), 2 core(s), 2 PU(s)" */
void topo_summary(char *buf, size_t len);
int topo_count_pus(void);
int topo_count_cores(void);

/*
 * Ping-pong one atomic on its own cache line between a thread pinned to a
 * and one pinned to b: `runs` timed runs of `trips` round trips after a
 * warm-up. Returns the median ns per round trip and fills per_run[0..runs)
 * when not NULL; -1 when a == b, pinning failed or a run stalled (> 10 s).
 * The calling thread's binding is restored afterwards.
 */
double topo_line_rtt(int a, int b, int runs, uint64_t trips, double *per_run);

#endif
