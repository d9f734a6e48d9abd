/* SPDX-License-Identifier: MIT */
/*
 * bench_parse.h - the benchmarks' counts and durations, for `spillway bench`
 * (tools/bench_options.c) and bench/compare. Byte sizes are seg_parse_size
 * (spill/spill.h), as everywhere else.
 */
#ifndef SPILLWAY_BENCH_PARSE_H
#define SPILLWAY_BENCH_PARSE_H

#include <stdint.h>

/* "2", "1.5", "2s", "500ms", "1m" (bare numbers are seconds, fractions
 * kept). 0 or -EINVAL. */
int bench_parse_seconds(const char *s, double *out);
/* "1000000", "1M", "10k" (powers of 1000). 0 or -EINVAL. */
int bench_parse_count(const char *s, uint64_t *out);
/* A consumer back-off in ns: 0 (off) to SPW_CONSUMER_BACKOFF_MAX_NS, digits
 * only (spw_consumer_set_backoff). 0 or -EINVAL. */
int bench_parse_backoff(const char *s, int64_t *out);
/* Records per spw_producer_send_batch call: 1 to BENCH_BATCH_MAX, digits
 * only. 0 or -EINVAL. */
#define BENCH_BATCH_MAX 1024u
int bench_parse_batch(const char *s, uint32_t *out);

#endif
