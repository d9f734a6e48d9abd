/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC32C (Castagnoli), the checksum of every index entry, index header,
 * checkpoint and group file (spill/FORMAT.md): the SSE4.2 instruction run
 * as three independent streams combined at the end where the CPU has it,
 * else a table.
 */
#define _GNU_SOURCE
#include "spill.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- CRC32C (Castagnoli): SSE4.2 when the CPU has it, else a table. ------- */
static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
		crc_table[i] = c;
	}
}

#if defined(__x86_64__)
#define LANE 4096u /* bytes per lane of the 3-way CRC below */
static uint64_t crc_3way(uint64_t c, const uint8_t *p);

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n && ((uintptr_t)p & 7); n--, p++)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	for (; n >= 3 * LANE; n -= 3 * LANE, p += 3 * LANE)
		c = crc_3way(c, p);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; n; n--, p++)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return (uint32_t)c;
}
#endif

#if defined(__x86_64__)
/* Three interleaved crc32q chains (the instruction has a latency of 3 and a
 * throughput of 1 a cycle, so one chain runs at a third of the speed), over
 * three consecutive lanes of LANE bytes, joined by linearity: for the raw
 * register f, f(s, A|B) = M_|B| f(s, A) ^ f(0, B), where M_n (feeding n zero
 * bytes) is a 32x32 matrix over GF(2) built once from the instruction. */
static uint32_t lane_shift[32]; /* column i: M_LANE applied to bit i */

__attribute__((target("sse4.2"))) static void lane_shift_init(void)
{
	for (int i = 0; i < 32; i++) {
		uint64_t c = 1u << i;

		for (unsigned k = 0; k < LANE; k += 8)
			c = __builtin_ia32_crc32di(c, 0);
		lane_shift[i] = (uint32_t)c;
	}
}

static uint32_t shift_lane(uint32_t v)
{
	uint32_t r = 0;

	for (int i = 0; i < 32; i++)
		r ^= lane_shift[i] & (0u - ((v >> i) & 1u));
	return r;
}

__attribute__((target("sse4.2"))) static uint64_t crc_3way(uint64_t c, const uint8_t *p)
{
	uint64_t b = 0, d = 0;
	const uint8_t *q = p + LANE, *r = p + 2 * LANE;

	for (unsigned k = 0; k < LANE; k += 8) {
		uint64_t x, y, z;

		memcpy(&x, p + k, 8);
		memcpy(&y, q + k, 8);
		memcpy(&z, r + k, 8);
		c = __builtin_ia32_crc32di(c, x);
		b = __builtin_ia32_crc32di(b, y);
		d = __builtin_ia32_crc32di(d, z);
	}
	return shift_lane(shift_lane((uint32_t)c) ^ (uint32_t)b) ^ (uint32_t)d;
}
#endif

static int crc_mode; /* 1 hw, 2 table; set once by crc_init */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2")) {
		lane_shift_init();
		crc_mode = 1;
		return;
	}
#endif
	crc_table_init();
	crc_mode = 2;
}

uint32_t seg_crc32c(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init); /* orders the tables before their use */
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_mode == 1)
		return ~crc_hw(crc, p, n);
#endif
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
