/* SPDX-License-Identifier: MIT */
/*
 * cli_reader.c - the CLI's reader wrapper (tools/reader.c, compiled in here
 * to reach its statics) reports the reader's own error after a poll that
 * delivered records and then recorded one (its check 2):
 *  - a follower lapped past a no-spill ring in the middle of a poll (the
 *    ring reclaimed from inside its callback, as the daemon does while a
 *    slow follower writes to a full pipe) gets -ERANGE at the next call,
 *    what `consume` turns into "N bytes lost", not -ENOENT ("segment ...
 *    is missing"), which tests/cli_data.sh saw about 1 run in 12 before.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../tools/reader.c"
#include "support.h"

#include <errno.h>
#include <stdio.h>

struct lap {
	struct spw_topic *t;
	int n;
};

/* Each record handed on; at the third, everything written is reclaimed:
 * the reader, still inside this poll, is lapped. */
static int on_record(void *arg, const struct spw_record *r)
{
	struct lap *x = arg;

	(void)r;
	if (++x->n == 3)
		assert_int_equal(spwd_reclaim(x->t, (int64_t)atomic_load(&x->t->hdr->tail)), 0);
	return 0;
}

static void a_lap_inside_a_poll_is_reported_as_a_lap(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 1u << 16, .max_record = 1024,
					.flags = SPW_TOPIC_NO_SPILL };
	struct spw_topic *t = test_topic_new("lapcli", &cfg);
	struct spw_producer *p = NULL;
	struct spw_reader_opts o = { 0 };
	struct cli_reader cr;
	struct lap x = { 0 };
	char none[PATH_MAX], file[PATH_MAX];
	int64_t pos;
	int n;

	(void)state;
	assert_non_null(t);
	assert_int_equal(spw_producer_open(t, &p), 0);
	for (int i = 0; i < 50; i++)
		assert_true(spw_producer_send(p, "record", 6) >= 0);
	x.t = t;
	snprintf(none, sizeof(none), "%s/none", test_group_dir); /* no disk log */
	o.shm_dir = test_group_dir;
	o.data_dir = none;
	o.start = SPW_START_EARLIEST;
	assert_int_equal(cli_reader_open(&cr, "lapcli", &o, on_record, &x), 0);
	/* Records, then the lap inside the same poll: the count now. */
	n = cli_reader_poll(&cr, 1000, 0);
	assert_true(n > 3);
	assert_true(cr.failed);
	/* The next call: the reader's own error, a lap below the ring. */
	n = cli_reader_poll(&cr, 1000, 0);
	assert_int_equal(n, -ERANGE);
	spw_reader_error(cr.r, file, sizeof(file), &pos);
	assert_true(pos >= 0 && pos < (int64_t)atomic_load(&t->hdr->reclaimed));
	cli_reader_close(&cr);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "lapcli"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_lap_inside_a_poll_is_reported_as_a_lap),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
