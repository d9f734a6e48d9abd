/* SPDX-License-Identifier: MIT */
/*
 * test_main.c - a stand-in for the `spillway` dispatcher, to build and try
 * `spillway bench` on its own:
 *
 *   gcc -std=gnu11 -O2 -DSPW_BENCH_STANDALONE -Iring bench/cli/[a-z]*.c \
 *       build/libspill.a build/libspillway.a -luring -lhwloc -lm -pthread \
 *       -o build/spw-bench
 *   build/spw-bench --duration 0.2
 *
 * Without -DSPW_BENCH_STANDALONE this file is empty, so a build that takes
 * all of bench/cli/ into the real `spillway` binary gets no second main().
 */
#ifdef SPW_BENCH_STANDALONE
#include "cmd_bench.h"

#include <string.h>

int main(int argc, char **argv)
{
	/* As the dispatcher will: argv[0] becomes the subcommand's name. */
	if (argc > 1 && !strcmp(argv[1], "bench"))
		argc--, argv++;
	else
		argv[0] = (char *)"bench";
	return cmd_bench(argc, argv);
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int spw_bench_test_main_unused;
#endif
