/* SPDX-License-Identifier: MIT */
/* bench_options.h - `spillway bench` command line: parsing and usage. */
#ifndef SPILLWAY_BENCH_OPTIONS_H
#define SPILLWAY_BENCH_OPTIONS_H

#include "bench_report.h"

#include <stdbool.h>
#include <stdio.h>

void bench_usage(FILE *f);
/* Fill o from argv (argv[0] is "bench"), defaults for what is not given.
 * Returns 0 (with *help set for --help), or 2 after printing a usage error
 * on stderr. */
int bench_parse(int argc, char **argv, struct bench_opts *o, bool *help);

#endif
