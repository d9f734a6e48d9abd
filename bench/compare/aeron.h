/* SPDX-License-Identifier: MIT */
/*
 * aeron.h - Aeron IPC (aeron:ipc) rows for the comparison, measured with
 * Aeron's own C media driver and C samples (docs/aeron.md says how to build
 * them), run as child processes pinned to the same two PUs as every other
 * system, each with a deadline (aeron.c).
 *
 * Also the child-process helpers the rest of the comparison uses to say why
 * a process failed (kid_reason).
 */
#ifndef SPILLWAY_COMPARE_AERON_H
#define SPILLWAY_COMPARE_AERON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct aeron_cfg {
	const char *bin_dir;  /* aeronmd, rate_subscriber, streaming_*publisher, cping, cpong */
	const char *work_dir; /* for the driver's directory and the children's output (tmpfs) */
	int pu[2];            /* sender / pinger, receiver / ponger */
	double grace_s;       /* a child still running this long after its run should have ended: killed */
	const char *fault;    /* COMPARE_FAULT: "aeron-ipc:receiver:stall" etc., or NULL */
};

/* Missing binaries: -1 with err naming them; else 0. */
int aeron_check(const struct aeron_cfg *a, char *err, size_t errlen);
/* "aeron 1.48.0-SNAPSHOT (git abcdef)" from `aeronmd -v`. */
void aeron_version(const struct aeron_cfg *a, char *buf, size_t len);

/* Throughput: *rate in messages/s, the subscriber's rate over >= dur_s of
 * whole seconds after its first pass through the publication's log (the
 * publisher runs dur_s + 3 s). 0, or -1 with err. */
int aeron_tp(const struct aeron_cfg *a, uint32_t size, double dur_s, double *rate, char *desc,
	     size_t desclen, char *err, size_t errlen);
/* Round trips for dur_s: pct = p50, p90, p99, p99.9, max in ns. *est_ns
 * carries the p50 between calls. 0, or -1 with err. */
int aeron_rtt(const struct aeron_cfg *a, uint32_t size, double dur_s, double *est_ns,
	      double pct[5], char *err, size_t errlen);

/* The IPC term length the drivers run with: AERON_IPC_TERM_BUFFER_LENGTH
 * from the environment (aeronmd reads it; the children inherit it), else
 * "64 MiB (driver default)". Spillway's rows run with --ring-size: the two
 * are reported side by side (docs/aeron.md, "Buffer sizes"). */
const char *aeron_term_desc(void);

/* "exited with status 3", "killed by signal 11 (SIGSEGV)". */
void kid_reason(int status, char *buf, size_t len);

#endif
