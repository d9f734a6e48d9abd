/* SPDX-License-Identifier: MIT */
/* cmd_bench.h - `spillway bench`: measure Spillway on this machine. */
#ifndef SPILLWAY_CMD_BENCH_H
#define SPILLWAY_CMD_BENCH_H

/* argv[0] is "bench". Returns the exit status: 0 success, 1 a failure,
 * 2 a usage error. Forks worker processes (and spillwayd with --spill);
 * only the calling process returns. */
int cmd_bench(int argc, char **argv);

#endif
