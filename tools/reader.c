/* SPDX-License-Identifier: MIT */
/*
 * reader.c - spw_reader, as the CLI and the demo use it, with two checks
 * that stay as a belt-and-braces guard (and as a live test in `make demo`):
 *
 *  1. A record whose position comes again after a lap would have been
 *     delivered twice. spill/reader.c now copies and validates live records
 *     before its callback (R2), so this cannot happen; the wrapper still
 *     hands each record on only once the reader has moved past it and counts
 *     any repeat in `retracted` (the demo prints it when non-zero).
 *  2. An error after records in the same poll: spw_reader_poll returns the
 *     count, and the next poll reports the error (the reader drops the
 *     unverified chunk). The wrapper notices that spw_reader_error changed
 *     during the poll and makes the next call fail even if that poll does
 *     not report it; when it does, its error is the one returned. A change
 *     that came with bytes skipped as corrupt (--skip-corrupt) is no error:
 *     the reader records where it skipped and goes on.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void hand_on(struct cli_reader *cr)
{
	if (cr->have && !cr->stop)
		cr->stop = cr->fn(cr->arg, &cr->pend);
	cr->have = false;
}

static int tentative(void *arg, const struct spw_record *rec)
{
	struct cli_reader *cr = arg;

	if (cr->have) {
		if (rec->position > cr->pend.position)
			hand_on(cr);
		else
			cr->retracted++, cr->have = false;
	}
	if (rec->len > cr->cap) {
		uint8_t *nb = realloc(cr->buf, rec->len);

		if (!nb)
			return 1;
		cr->buf = nb;
		cr->cap = rec->len;
	}
	static const uint8_t none[1];

	if (rec->len)
		memcpy(cr->buf, rec->data, rec->len);
	cr->pend = *rec;
	cr->pend.data = rec->len ? cr->buf : none;
	cr->have = true;
	return cr->stop;
}

int cli_reader_open(struct cli_reader *cr, const char *topic, const struct spw_reader_opts *o,
		    spw_record_fn fn, void *arg)
{
	memset(cr, 0, sizeof(*cr));
	cr->fn = fn;
	cr->arg = arg;
	cr->skip_corrupt = o && (o->flags & SPW_READER_SKIP_CORRUPT);
	return spw_reader_open(topic, o, &cr->r);
}

void cli_reader_close(struct cli_reader *cr)
{
	spw_reader_close(cr->r);
	free(cr->buf);
	cr->r = NULL;
	cr->buf = NULL;
}

int cli_reader_poll(struct cli_reader *cr, int max, int64_t wait_ns)
{
	char f0[PATH_MAX], f1[PATH_MAX];
	int64_t p0, p1;
	struct stat st;
	uint64_t skipped = spw_reader_skipped(cr->r);
	int n;

	spw_reader_error(cr->r, f0, sizeof(f0), &p0);
	n = wait_ns ? spw_reader_poll_wait(cr->r, tentative, cr, max, wait_ns)
		    : spw_reader_poll(cr->r, tentative, cr, max);
	/* Kept iff the reader moved past it (bug 1). */
	if (cr->have && cr->pend.position < spw_reader_position(cr->r))
		hand_on(cr);
	else if (cr->have)
		cr->retracted++, cr->have = false;
	if (cr->failed)
		/* The poll after the one that recorded an error (check 2): its
		 * own error is the true one (a reader lapped past a no-spill ring
		 * records where it was, then gets -ERANGE: not a missing
		 * segment); if it reports none, say what was recorded. */
		return n < 0 ? n : f0[0] && stat(f0, &st) ? -ENOENT : -EBADMSG;
	if (n <= 0)
		return n;
	spw_reader_error(cr->r, f1, sizeof(f1), &p1);
	/* A range skipped as corrupt (SPW_READER_SKIP_CORRUPT only) is recorded
	 * as the last error too, but the reader went on past it: no error. */
	if (f1[0] && (strcmp(f0, f1) || p0 != p1) &&
	    !(cr->skip_corrupt && spw_reader_skipped(cr->r) != skipped))
		cr->failed = true; /* bug 2: the next call reports it */
	return n;
}
