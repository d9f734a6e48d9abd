/* SPDX-License-Identifier: MIT */
/*
 * bench_proc.h - what a forked benchmark process does around its work, the
 * same for `spillway bench` (tools/bench_worker.c) and bench/compare
 * (bench/compare/sides.c): the hand-off with its parent through a shared
 * control block (READY, go, then DONE or FAILED), waiting, the payload
 * senders send and reading every byte of it.
 *
 * The hand-off: the process release-stores its state after everything it
 * publishes (counts, times, histogram, error text); the parent acquire-loads
 * the state before reading those. The parent release-stores go once every
 * process is READY; processes acquire-load it.
 */
#ifndef SPILLWAY_BENCH_PROC_H
#define SPILLWAY_BENCH_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void bench_sleep_ns(uint64_t ns);

/* A sender's side, the same in both benchmarks: send one record, or all n
 * of a batch (spw_producer_send_batch calls until every one went), spinning
 * on a full ring (busy) or sleeping on its futex. The position (one record),
 * 0 (a batch), or -errno: -ETIMEDOUT once the ring stayed full for
 * BENCH_STALL_NS (the consumers or the daemon stalled). */
#define BENCH_STALL_NS 10000000000ull
struct spw_producer;
struct spw_msg;
int64_t bench_send_one(struct spw_producer *p, bool busy, const void *buf, uint32_t len);
/* bench_send_one spinning, with the given timestamp (spw_producer_send_at). */
int64_t bench_send_at(struct spw_producer *p, const void *buf, uint32_t len, uint64_t ts);
int bench_send_batch(struct spw_producer *p, bool busy, const struct spw_msg *m, uint32_t n);
/* The two with the caller's timestamps (spw_producer_send_at / _wait_at,
 * spw_producer_send_batch_at / _wait_at): *ts, resp. tss[0..n); NULL: the
 * library's clock, as above. */
int64_t bench_send_one_at(struct spw_producer *p, bool busy, const void *buf, uint32_t len,
			  const uint64_t *ts);
int bench_send_batch_at(struct spw_producer *p, bool busy, const struct spw_msg *m, uint32_t n,
			const uint64_t *tss);

/* Bounds a spin on EAGAIN (any system's): true once it has lasted
 * BENCH_STALL_NS. Reads the clock every 64 Ki calls only. Start it zeroed;
 * zero it again on progress. */
struct bench_stall {
	uint64_t n, t0;
};
bool bench_stalled(struct bench_stall *s);

/* A batch for a sender: n messages of size bytes, m[k] over the k-th slice
 * of one payload buffer (*buf, bench_payload's pattern; free both). NULL
 * when out of memory. */
struct spw_msg *bench_batch_new(uint32_t n, uint32_t size, unsigned char **buf);

/* A buffer of size bytes (64-byte aligned; free() it) filled with the fixed
 * pattern every benchmark sender sends. NULL when out of memory. */
unsigned char *bench_payload(uint32_t size);

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Read every byte of a payload (XOR of its 8-byte words), as a consumer that
 * uses its data must: a zero-copy reader that looked only at a header would
 * never pull the payload's cache lines across. Every benchmark consumer,
 * of every system, does this once per message. Four independent XORs per
 * 32 bytes: with one, each 8 bytes waited for the last (128 in a row per
 * KiB, ~60 ns on this project's VM), and the loop's speed, a large part of
 * a 1 KiB receiver's time, moved by ~20% with where the linker put it
 * (docs/HACKING.md, "Comparison history"). The result is the same XOR. */
static inline uint64_t bench_fold(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, w0, w1, w2, w3;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		__builtin_memcpy(&w0, p + i, 8);
		__builtin_memcpy(&w1, p + i + 8, 8);
		__builtin_memcpy(&w2, p + i + 16, 8);
		__builtin_memcpy(&w3, p + i + 24, 8);
		a0 ^= w0;
		a1 ^= w1;
		a2 ^= w2;
		a3 ^= w3;
	}
	for (; i + 8 <= len; i += 8) {
		__builtin_memcpy(&w0, p + i, 8);
		a0 ^= w0;
	}
	for (; i < len; i++)
		a0 ^= p[i];
	return a0 ^ a1 ^ a2 ^ a3;
}

/* Store `ready` in *state, then nap (not spin: the parent needs a CPU to
 * see everyone ready) until the parent sets *go. */
void bench_proc_ready(_Atomic int *state, int ready, _Atomic int *go);
/* Store `final` (DONE) in *state, publishing what the process wrote before,
 * and _exit(code). */
__attribute__((noreturn)) void bench_proc_exit(_Atomic int *state, int final, int code);
/* Format the error into err[0..len), store `failed` in *state (publishing
 * err) and _exit(1). */
__attribute__((format(printf, 5, 6), noreturn)) void
bench_proc_fail(_Atomic int *state, int failed, char *err, size_t len, const char *fmt, ...);

#endif
