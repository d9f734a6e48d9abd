/* SPDX-License-Identifier: MIT */
/*
 * reader.c - spw_reader, as the CLI and the demo use it, around two library
 * bugs (reported; spill/reader.c and ring/consume.c are not ours to fix):
 *
 *  1. A live consumer calls the record callback, then checks whether the
 *     record was reclaimed while the callback read it; if so, poll reports
 *     -ESTALE and the reader delivers the same position again from disk. The
 *     callback has then seen torn bytes once, and the record twice.
 *     So every record is copied in the callback and handed on only once the
 *     library has kept it: when a later position arrives, or when the poll
 *     returned and the reader's position is past it. A record whose position
 *     comes again was taken back: its copy is dropped (counted in retracted).
 *
 *  2. fill() marks a chunk as buffered before checking its CRCs, and
 *     spw_reader_poll() returns the count when an error follows records in
 *     the same call: the error is dropped and the next poll walks the
 *     unverified bytes. Every error path records a file and position
 *     (spw_reader_error): a change during a poll that returned records means
 *     it failed after them; this reader then reports the error instead of
 *     polling again.
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
	int n;

	spw_reader_error(cr->r, f0, sizeof(f0), &p0);
	if (cr->failed)
		return f0[0] && stat(f0, &st) ? -ENOENT : -EBADMSG;
	n = wait_ns ? spw_reader_poll_wait(cr->r, tentative, cr, max, wait_ns)
		    : spw_reader_poll(cr->r, tentative, cr, max);
	/* Kept iff the reader moved past it (bug 1). */
	if (cr->have && cr->pend.position < spw_reader_position(cr->r))
		hand_on(cr);
	else if (cr->have)
		cr->retracted++, cr->have = false;
	if (n <= 0)
		return n;
	spw_reader_error(cr->r, f1, sizeof(f1), &p1);
	if (f1[0] && (strcmp(f0, f1) || p0 != p1))
		cr->failed = true; /* bug 2: the next call reports it */
	return n;
}
