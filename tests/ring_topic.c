/* SPDX-License-Identifier: MIT */
/*
 * ring_topic.c - topic files, one behaviour per case: create / open and the
 * header they write (ring/ring_layout.h: the settings page, the producer
 * slots, format version 2), defaults, names, sizes, max_producers, opens of
 * other versions and bad headers, -EEXIST / -ENOENT, delete with open
 * handles, the shm dir from the environment, read-only opens.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_fixture.h"
#include "ring_layout.h"
#include "support.h"

/* ------------------------------------------------------------------------- */
static void create_open_reports_config_and_header_page(void **state)
{
	struct spw_topic_config cfg = {
		.ring_bytes = 64 * KiB, .segment_bytes = 256 * KiB, .max_record = 16 * KiB,
		.mode = 0640, .flags = SPW_TOPIC_NO_SPILL, .start_position = 3 * 4096 + 8,
	};
	struct spw_topic *t = NULL;
	struct spw_topic_info info;
	const struct ring_hdr *h;
	uint8_t *data, *hdr = NULL;
	char path[4096];
	struct stat st;
	int64_t before, after;

	(void)state;
	before = test_realtime_ns();
	assert_int_equal(spw_topic_create(test_group_dir, "cfg", &cfg), 0);
	after = test_realtime_ns();
	test_ring_path(path, sizeof(path), test_group_dir, "cfg");
	assert_int_equal(stat(path, &st), 0);
	/* The header page, 64 producer slots (the default) rounded up to a
	 * page, then the data. */
	assert_int_equal(st.st_size, TEST_HDR_BYTES + 64 * KiB);
	assert_int_equal(st.st_mode & 0777, 0640);

	assert_int_equal(spw_topic_open(test_group_dir, "cfg", 0, &t), 0);
	assert_string_equal(spw_topic_name(t), "cfg");
	info = info_of(t);
	assert_int_equal(info.ring_bytes, 64 * KiB);
	assert_int_equal(info.segment_bytes, 256 * KiB);
	assert_int_equal(info.max_record, 16 * KiB);
	assert_int_equal(info.flags, SPW_TOPIC_NO_SPILL);
	assert_int_equal(info.start_position, cfg.start_position);
	assert_int_equal(info.tail, cfg.start_position);
	assert_int_equal(info.reclaimed, cfg.start_position);
	assert_int_equal(info.limit, cfg.start_position + 64 * KiB);
	assert_int_equal(info.daemon_pid, 0);
	assert_in_range(info.created_ns, (uint64_t)before, (uint64_t)after);
	assert_int_equal(info.max_producers, 64);
	assert_int_equal(info.stall_slot, -1); /* the daemon waits on nobody */
	assert_int_equal(info.corrupt_bytes, 0);
	assert_int_equal(info.aborted_claims, 0);

	/* The header page as the format says (ring_layout.h). */
	data = map_64k("cfg", &hdr);
	h = (const struct ring_hdr *)(const void *)hdr;
	assert_int_equal(h->magic, RING_MAGIC);
	assert_int_equal(h->version, RING_VERSION);
	assert_int_equal(h->hdr_bytes, TEST_HDR_BYTES);
	assert_int_equal(h->hdr_bytes, ring_hdr_bytes(64));
	assert_int_equal(h->max_producers, 64);
	assert_int_equal(h->ring_bytes, 64 * KiB);
	assert_int_equal(h->segment_bytes, 256 * KiB);
	assert_int_equal(h->max_record, 16 * KiB);
	assert_int_equal(h->flags, SPW_TOPIC_NO_SPILL);
	assert_int_equal(h->created_ns, info.created_ns);
	assert_int_equal(h->start_position, cfg.start_position);
	assert_int_equal(atomic_load(&h->tail), cfg.start_position);
	assert_int_equal(atomic_load(&h->reclaimed), cfg.start_position);
	assert_int_equal(atomic_load(&h->limit), cfg.start_position + 64 * KiB);
	/* A new ring is all zero: no record was ever written (I3). */
	for (uint64_t off = 0; off < 64 * KiB; off += 8)
		assert_int_equal(test_commit_word(data, 64 * KiB, off), 0);
	test_unmap_ring(data, 64 * KiB);
	munmap(hdr, TEST_HDR_PAGE);
	/* Every producer slot starts idle: no span published (I2). */
	{
		FILE *f = fopen(path, "rb");
		struct ring_slot sl;

		assert_non_null(f);
		for (uint32_t i = 0; i < 64; i++) {
			assert_int_equal(fseek(f, (long)ring_slot_off(i), SEEK_SET), 0);
			assert_int_equal(fread(&sl, sizeof(sl), 1, f), 1);
			assert_int_equal(atomic_load(&sl.claim), RING_SLOT_IDLE);
		}
		fclose(f);
	}
	topic_end(t, "cfg");
}

/* max_producers sizes the slot area: hdr_bytes = 4096 + the slots rounded
 * up to a page, and the data starts there. 0 is the default (64). */
static void max_producers_sizes_the_header(void **state)
{
	static const struct {
		uint32_t n, slots, hdr;
	} cases[] = {
		{ 0, 64, 4096 + 8192 },  { 1, 1, 4096 + 4096 },     { 32, 32, 4096 + 4096 },
		{ 33, 33, 4096 + 8192 }, { 4096, 4096, 4096 + 4096 * 128 },
	};
	struct spw_topic_config bad = { .ring_bytes = 64 * KiB, .max_producers = 4097 };
	char path[4096];
	struct stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spw_topic_config cfg = { .ring_bytes = 64 * KiB, .max_producers = cases[i].n };
		struct spw_topic *t = NULL;
		struct spw_producer *p = NULL;
		uint8_t *data, *hdr = NULL;

		assert_int_equal(spw_topic_create(test_group_dir, "slots", &cfg), 0);
		test_ring_path(path, sizeof(path), test_group_dir, "slots");
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, cases[i].hdr + 64 * KiB);
		assert_int_equal(spw_topic_open(test_group_dir, "slots", 0, &t), 0);
		assert_int_equal(info_of(t).max_producers, cases[i].slots);
		data = map_64k("slots", &hdr);
		assert_int_equal(((const struct ring_hdr *)(const void *)hdr)->hdr_bytes, cases[i].hdr);
		/* A record lands at the data start, wherever that is. */
		p = producer_new(t);
		assert_int_equal(send_tag(p, 100, 1), 0);
		assert_int_equal(test_commit_word(data, 64 * KiB, 0),
				 test_word(TEST_TYPE_DATA, 100, 0, 64 * KiB));
		spw_producer_close(p);
		test_unmap_ring(data, 64 * KiB);
		munmap(hdr, TEST_HDR_PAGE);
		topic_end(t, "slots");
	}
	assert_int_equal(spw_topic_create(test_group_dir, "slots", &bad), -EINVAL);
	test_ring_path(path, sizeof(path), test_group_dir, "slots");
	assert_int_equal(stat(path, &st), -1);
}

/* Overwrite bytes of the ring file's header in place (flushed, so the next
 * open sees them). */
static void put_hdr(FILE *f, long off, const void *v, size_t len)
{
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	assert_int_equal(fwrite(v, len, 1, f), 1);
	fflush(f);
}

/* A ring file of another format version is -EPROTO (recreate the topic),
 * a bad magic or a size that disagrees with the header -EBADMSG. */
static void open_refuses_other_versions_and_bad_headers(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 64 * KiB };
	struct spw_topic *t = NULL;
	char path[4096];
	uint32_t v;
	uint64_t magic;
	FILE *f;

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, "ver", &cfg), 0);
	test_ring_path(path, sizeof(path), test_group_dir, "ver");
	f = fopen(path, "r+b");
	assert_non_null(f);
	/* version 1: the format before producer slots and lap tags; version
	 * 2: before the solo word (ring/ring_layout.h I9) */
	for (v = 1; v < RING_VERSION; v++) {
		put_hdr(f, offsetof(struct ring_hdr, version), &v, 4);
		assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), -EPROTO);
		assert_null(t);
	}
	v = RING_VERSION + 1;
	put_hdr(f, offsetof(struct ring_hdr, version), &v, 4);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), -EPROTO);
	v = RING_VERSION;
	put_hdr(f, offsetof(struct ring_hdr, version), &v, 4);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), 0);
	spw_topic_close(t);
	t = NULL;
	/* hdr_bytes that does not match max_producers */
	v = TEST_HDR_PAGE;
	put_hdr(f, offsetof(struct ring_hdr, hdr_bytes), &v, 4);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), -EBADMSG);
	v = TEST_HDR_BYTES;
	put_hdr(f, offsetof(struct ring_hdr, hdr_bytes), &v, 4);
	/* a bad magic */
	magic = RING_MAGIC ^ 1;
	put_hdr(f, 0, &magic, 8);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), -EBADMSG);
	magic = RING_MAGIC;
	put_hdr(f, 0, &magic, 8);
	fclose(f);
	/* the file one page short of hdr_bytes + ring_bytes */
	assert_int_equal(truncate(path, TEST_HDR_BYTES - TEST_HDR_PAGE + 64 * KiB), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), -EBADMSG);
	assert_null(t);
	assert_int_equal(truncate(path, TEST_HDR_BYTES + 64 * KiB), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "ver", 0, &t), 0);
	topic_end(t, "ver");
}

static void create_uses_defaults_for_zero_fields(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 256 * KiB };
	struct spw_topic *t = NULL;
	struct spw_topic_info info;
	char path[4096];
	struct stat st;

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, "defaults", NULL), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "defaults", 0, &t), 0);
	info = info_of(t);
	assert_int_equal(info.ring_bytes, 64ull << 20);
	assert_int_equal(info.segment_bytes, 1ull << 30);
	assert_int_equal(info.max_record, 1u << 20);
	assert_int_equal(info.start_position, 0);
	test_ring_path(path, sizeof(path), test_group_dir, "defaults");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	topic_end(t, "defaults");

	assert_int_equal(spw_topic_create(test_group_dir, "defaults2", &cfg), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "defaults2", 0, &t), 0);
	info = info_of(t);
	assert_int_equal(info.ring_bytes, 256 * KiB);
	assert_int_equal(info.segment_bytes, 1ull << 30);
	assert_int_equal(info.max_record, 64 * KiB);
	topic_end(t, "defaults2");
}

static void topic_names_are_checked(void **state)
{
	static const char *const bad[] = { "", ".x", ".", "..", "a/b", "../x", "/abs", "a b",
					   "x\n", "caf\xc3\xa9", "\xff", "a*", "a:b", "tab\t" };
	static const char *const good[] = { "a", "0", "A-z_0.9", "x.", "x..y", "orders-2024.v1" };
	struct spw_topic_config cfg = { .ring_bytes = 64 * KiB };
	struct spw_topic *t;
	char n128[SPW_NAME_MAX + 1], n129[SPW_NAME_MAX + 2], path[4096];
	struct stat st;

	(void)state;
	memset(n128, 'n', SPW_NAME_MAX);
	n128[SPW_NAME_MAX] = '\0';
	memset(n129, 'n', SPW_NAME_MAX + 1);
	n129[SPW_NAME_MAX + 1] = '\0';
	assert_int_equal(spw_topic_name_check(NULL), -EINVAL);
	assert_int_equal(spw_topic_name_check(n129), -EINVAL);
	assert_int_equal(spw_topic_create(test_group_dir, n129, &cfg), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r[4];

		t = NULL;
		r[0] = spw_topic_name_check(bad[i]);
		r[1] = spw_topic_create(test_group_dir, bad[i], &cfg);
		r[2] = spw_topic_open(test_group_dir, bad[i], 0, &t);
		r[3] = spw_topic_delete(test_group_dir, bad[i]);
		for (int k = 0; k < 4; k++)
			if (r[k] != -EINVAL)
				fail_msg("bad name [%zu]: call %d returned %d, not -EINVAL", i, k, r[k]);
		assert_null(t);
	}
	for (size_t i = 0; i <= sizeof(good) / sizeof(good[0]); i++) {
		const char *name = i < sizeof(good) / sizeof(good[0]) ? good[i] : n128;

		assert_int_equal(spw_topic_name_check(name), 0);
		assert_int_equal(spw_topic_create(test_group_dir, name, &cfg), 0);
		test_ring_path(path, sizeof(path), test_group_dir, name);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(spw_topic_open(test_group_dir, name, 0, &t), 0);
		assert_string_equal(spw_topic_name(t), name);
		topic_end(t, name);
		assert_int_equal(stat(path, &st), -1);
	}
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void create_rejects_bad_sizes_and_leaves_nothing(void **state)
{
	static const struct spw_topic_config bad[] = {
		{ .ring_bytes = 64 * KiB + 8 },         /* not a power of two */
		{ .ring_bytes = 3 * 64 * KiB },
		{ .ring_bytes = 96 * KiB },
		{ .ring_bytes = 32 * KiB },             /* below 64 KiB */
		{ .ring_bytes = 8 },
		{ .ring_bytes = 64 * KiB, .segment_bytes = 100000 },      /* not a multiple */
		{ .ring_bytes = 64 * KiB, .segment_bytes = 32 * KiB },
		{ .ring_bytes = 64 * KiB, .segment_bytes = 64 * KiB + 8 },
		{ .ring_bytes = 64 * KiB, .max_record = 16 * KiB + 1 },   /* > ring / 4 */
		{ .ring_bytes = 64 * KiB, .max_record = UINT32_MAX },
		{ .ring_bytes = 64 * KiB, .start_position = 4 },          /* not 8-aligned */
	};
	static const struct spw_topic_config ok[] = {
		{ .ring_bytes = 64 * KiB, .segment_bytes = 3 * 64 * KiB },
		{ .ring_bytes = 64 * KiB, .max_record = 16 * KiB },
		{ .ring_bytes = 128 * KiB, .start_position = 1ull << 40 },
	};
	char dir[4096];
	struct spw_topic *t;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sizes", test_group_dir);
	assert_int_equal(spw_topic_create(dir, "ok", &ok[0]), 0); /* makes the dir */
	assert_int_equal(spw_topic_delete(dir, "ok"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = spw_topic_create(dir, "bad", &bad[i]);

		if (r != -EINVAL)
			fail_msg("bad config [%zu]: create returned %d, not -EINVAL", i, r);
	}
	assert_int_equal(dir_entries(dir), 0); /* not even a temp file */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(spw_topic_create(dir, "ok", &ok[i]), 0);
		assert_int_equal(spw_topic_open(dir, "ok", 0, &t), 0);
		assert_int_equal(info_of(t).tail, ok[i].start_position);
		spw_topic_close(t);
		assert_int_equal(spw_topic_delete(dir, "ok"), 0);
	}
	assert_int_equal(dir_entries(dir), 0);
}

static void create_twice_is_eexist_and_missing_is_enoent(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 64 * KiB };
	struct spw_topic_config other = { .ring_bytes = 128 * KiB };
	struct spw_topic *t = NULL;
	char dir[4096];

	(void)state;
	assert_int_equal(spw_topic_create(test_group_dir, "dup", &cfg), 0);
	assert_int_equal(spw_topic_create(test_group_dir, "dup", &cfg), -EEXIST);
	assert_int_equal(spw_topic_create(test_group_dir, "dup", &other), -EEXIST);
	assert_int_equal(spw_topic_open(test_group_dir, "dup", 0, &t), 0);
	assert_int_equal(info_of(t).ring_bytes, 64 * KiB); /* the first one stays */
	topic_end(t, "dup");
	t = NULL;
	assert_int_equal(spw_topic_open(test_group_dir, "nope", 0, &t), -ENOENT);
	assert_null(t);
	assert_int_equal(spw_topic_delete(test_group_dir, "nope"), -ENOENT);
	snprintf(dir, sizeof(dir), "%s/no/such/dir", test_group_dir);
	assert_int_equal(spw_topic_open(dir, "x", 0, &t), -ENOENT);
}

static void deleted_topic_is_enoent_while_open_handles_work(void **state)
{
	struct spw_topic *t = topic_new("gone", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_consumer *c = consumer_new(t, SPW_FROM_OLDEST, 0);
	struct spw_topic *t2 = NULL;
	struct test_got *g = test_got_new();
	struct spw_topic_config cfg = { .ring_bytes = 64 * KiB };

	(void)state;
	assert_int_equal(send_tag(p, 10, 1), 0);
	assert_int_equal(spw_topic_delete(test_group_dir, "gone"), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "gone", 0, &t2), -ENOENT);
	assert_int_equal(spw_topic_delete(test_group_dir, "gone"), -ENOENT);
	/* The mapping outlives the name: a consumer reads what is there; the
	 * producer is told at once that nobody will read or spill more (it
	 * wrote nothing: the tail did not move). */
	assert_int_equal(spw_topic_deleted(t), 1);
	assert_int_equal(send_tag(p, 10, 2), -EIDRM);
	{
		struct spw_claim cl;
		struct spw_msg m = { "x", 1 };

		assert_int_equal(spw_producer_claim(p, 8, &cl), -EIDRM);
		assert_int_equal(spw_producer_send_batch(p, &m, 1, NULL), -EIDRM);
		assert_int_equal(spw_producer_send_wait(p, "x", 1, -1), -EIDRM);
	}
	assert_int_equal(info_of(t).tail, 32);
	assert_int_equal(drain(c, g), 1);
	assert_int_equal(g->r[0].hash, tag_hash(10, 1));
	/* The name can be reused: a new, empty ring, not marked. */
	assert_int_equal(spw_topic_create(test_group_dir, "gone", &cfg), 0);
	assert_int_equal(spw_topic_open(test_group_dir, "gone", 0, &t2), 0);
	assert_int_equal(info_of(t2).tail, 0);
	assert_int_equal(spw_topic_deleted(t2), 0);
	assert_int_equal(send_tag(p, 10, 3), -EIDRM);
	spw_consumer_close(c);
	spw_producer_close(p);
	spw_topic_close(t);
	topic_end(t2, "gone");
	free(g);
}

static void shm_dir_comes_from_environment_when_null(void **state)
{
	struct spw_topic_config cfg = { .ring_bytes = 64 * KiB };
	const char *saved = getenv("SPILLWAY_SHM_DIR");
	char *saved_copy = saved ? strdup(saved) : NULL;
	char dir[4096], path[4096];
	struct spw_topic *t = NULL;
	struct stat st;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/env/sub", test_group_dir); /* does not exist yet */
	assert_int_equal(setenv("SPILLWAY_SHM_DIR", dir, 1), 0);
	assert_string_equal(spw_shm_dir(NULL), dir);
	assert_string_equal(spw_shm_dir("/elsewhere"), "/elsewhere");
	assert_int_equal(spw_topic_create(NULL, "envtopic", &cfg), 0);
	test_ring_path(path, sizeof(path), dir, "envtopic");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(spw_topic_open(NULL, "envtopic", 0, &t), 0);
	assert_int_equal(info_of(t).ring_bytes, 64 * KiB);
	spw_topic_close(t);
	assert_int_equal(spw_topic_delete(NULL, "envtopic"), 0);
	assert_int_equal(stat(path, &st), -1);

	assert_int_equal(unsetenv("SPILLWAY_SHM_DIR"), 0);
	assert_string_equal(spw_shm_dir(NULL), SPW_DEFAULT_SHM_DIR);
	if (saved_copy) {
		setenv("SPILLWAY_SHM_DIR", saved_copy, 1);
		free(saved_copy);
	}
}

static void readonly_topic_serves_consumers_only(void **state)
{
	struct spw_topic *t = topic_new("ro", 64 * KiB, 16 * KiB);
	struct spw_producer *p = producer_new(t);
	struct spw_topic *ro = NULL;
	struct spw_producer *p2 = NULL;
	struct spw_consumer *c;
	struct test_got *g = test_got_new();

	(void)state;
	assert_int_equal(spw_topic_open(test_group_dir, "ro", SPW_OPEN_RDONLY, &ro), 0);
	assert_true(spw_producer_open(ro, &p2) < 0);
	assert_null(p2);
	assert_true(spwd_reclaim(ro, 0) < 0);
	c = consumer_new(ro, SPW_FROM_OLDEST, 0);
	assert_int_equal(send_tag(p, 33, 7), 0);
	drain_first_is(c, g, 1, 33, 7);
	spw_consumer_close(c);
	spw_topic_close(ro);
	free(g);
	spw_producer_close(p);
	topic_end(t, "ro");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_open_reports_config_and_header_page),
		cmocka_unit_test(create_uses_defaults_for_zero_fields),
		cmocka_unit_test(max_producers_sizes_the_header),
		cmocka_unit_test(open_refuses_other_versions_and_bad_headers),
		cmocka_unit_test(topic_names_are_checked),
		cmocka_unit_test(create_rejects_bad_sizes_and_leaves_nothing),
		cmocka_unit_test(create_twice_is_eexist_and_missing_is_enoent),
		cmocka_unit_test(deleted_topic_is_enoent_while_open_handles_work),
		cmocka_unit_test(shm_dir_comes_from_environment_when_null),
		cmocka_unit_test(readonly_topic_serves_consumers_only),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
