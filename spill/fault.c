/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the fault seam (tests only): $SPILLWAY_FAULT_FILE names a file whose
 * first line makes the daemon fail writes (ENOSPC, EIO), fdatasyncs (FSYNC)
 * or io_uring submits (SUBMIT), so tests can prove nothing is lost.
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

/* --- segments -------------------------------------------------------------- */
/* The fault seam's word: the first line of $SPILLWAY_FAULT_FILE (tests
 * only). false when the variable is unset or the file absent (no fault). */
static bool fault_word(char *buf, size_t size)
{
	const char *p = getenv("SPILLWAY_FAULT_FILE");
	FILE *f;

	buf[0] = '\0';
	if (!p || !*p || !(f = fopen(p, "re")))
		return false;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	return true;
}

int seg_fault_check(void)
{
	char buf[32];

	if (!fault_word(buf, sizeof(buf)) || !strncmp(buf, "FSYNC", 5) ||
	    !strncmp(buf, "SUBMIT", 6))
		return 0; /* none, or fdatasync / io_uring_submit only */
	if (!strncmp(buf, "EIO", 3))
		return -EIO;
	if (isdigit((unsigned char)buf[0]))
		return -atoi(buf);
	return -ENOSPC;
}

int seg_fault_submit(void)
{
	char buf[32];

	fault_word(buf, sizeof(buf));
	return strncmp(buf, "SUBMIT", 6) ? 0 : -EBUSY;
}

int seg_fault_fsync(void)
{
	char buf[32];

	fault_word(buf, sizeof(buf));
	return strncmp(buf, "FSYNC", 5) ? 0 : -EIO;
}
