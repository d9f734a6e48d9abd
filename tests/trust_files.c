/* SPDX-License-Identifier: MIT */
/*
 * trust_files.c - spillwayd (root in CI) trusts no file it did not make
 * (spill/files.c: seg_open_file, seg_dir_check, the held root fds). Links planted where it
 * expects its own ring, segment, index, topic.conf and group file point at a
 * file outside: every one is refused with an error naming the path, and the
 * target keeps its bytes. A topic dir owned by another user and a shm dir
 * writable by every user are refused with a message that says how to fix it.
 * A dir below a base (ring/paths.c ring_dir_below) is reached without links.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../spill/spill.h"
#include "support_daemon.h"
#include "daemon_case.h"

#define RING (64u << 10)
#define MAXREC 4096u
static const char precious[] = "precious bytes that are not spillway's\n";

static void make_target(const struct test_daemon *d, char *path, size_t n)
{
	int fd;

	snprintf(path, n, "%s/outside", d->root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, precious, sizeof(precious)), (ssize_t)sizeof(precious));
	close(fd);
}

static void target_unchanged(const char *path)
{
	char buf[256] = { 0 };
	struct stat st;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)sizeof(precious));
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(precious));
	close(fd);
	assert_memory_equal(buf, precious, sizeof(precious));
}

static void links_to_a_file_outside_are_never_followed(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec seg = { "seglink", RING, 4 * RING, MAXREC, 50, 0 };
	const struct test_topic_spec idx = { "idxlink", RING, 4 * RING, MAXREC, 50, 0 };
	const struct test_topic_spec conf = { "conflink", RING, 4 * RING, MAXREC, 50, 0 };
	const struct test_topic_spec ok = { "good", RING, 4 * RING, MAXREC, 50, 0 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	struct spw_reader *r = NULL;
	struct spw_reader_opts ro = { 0 };
	char target[600], link[1200], dir[1024];
	int64_t pos;

	need_daemon();
	make_target(d, target, sizeof(target));
	/* A ring name that is a link. */
	snprintf(link, sizeof(link), "%s/ringlink.ring", d->shm);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(spw_topic_open(d->shm, "ringlink", 0, &t), -ELOOP);
	/* A segment and an index that are links, planted before the daemon
	 * makes them; a topic.conf replaced by a link. */
	assert_int_equal(test_daemon_make_topic(d, &seg), 0);
	test_daemon_topic_dir(d, "seglink", dir, sizeof(dir));
	snprintf(link, sizeof(link), "%s/00000000000000000000.seg", dir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(test_daemon_make_topic(d, &idx), 0);
	test_daemon_topic_dir(d, "idxlink", dir, sizeof(dir));
	snprintf(link, sizeof(link), "%s/00000000000000000000.idx", dir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(test_daemon_make_topic(d, &conf), 0);
	test_daemon_topic_dir(d, "conflink", dir, sizeof(dir));
	snprintf(link, sizeof(link), "%s/topic.conf", dir);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(test_daemon_make_topic(d, &ok), 0);

	start_attached(d, "good");
	for (int i = 0; i < 1; i++) {
		const char *name = "idxlink"; /* seglink is refused at attach */

		assert_int_equal(spw_topic_open(d->shm, name, 0, &t), 0);
		assert_int_equal(spw_producer_open(t, &p), 0);
		pos = spw_producer_send_wait(p, "x", 1, 10 * TEST_SEC);
		assert_true(pos >= 0);
		spw_producer_close(p);
		spw_topic_close(t);
	}
	assert_int_equal(test_daemon_wait_log(d, "idxlink: opening segment for 0: Too many levels "
					      "of symbolic links", 1, scaled_s(10, 30)), 0);
	assert_true(test_daemon_log_count(d, "seglink/00000000000000000000.seg: a symbolic link "
					  "where spillwayd keeps its own file", false) >= 1);
	assert_true(test_daemon_log_count(d, "ringlink.ring: Too many levels of symbolic links",
					  false) >= 1);
	assert_true(test_daemon_log_count(d, "conflink/topic.conf: unreadable (Too many levels of "
					  "symbolic links)", false) >= 1);
	assert_int_equal(test_daemon_log_count(d, "topic conflink: attached", false), 0);

	/* A group file that is a link: a commit replaces the link, never
	 * writes through it; reading one is refused. */
	test_daemon_topic_dir(d, "good", dir, sizeof(dir));
	snprintf(link, sizeof(link), "%s/groups", dir);
	mkdir(link, 0755);
	snprintf(link, sizeof(link), "%s/groups/linked", dir);
	assert_int_equal(symlink(target, link), 0);
	{
		int64_t gp;

		assert_int_equal(spw_group_read(d->data, "good", "linked", &gp), -ELOOP);
	}
	ro.shm_dir = d->shm;
	ro.data_dir = d->data;
	assert_int_equal(spw_reader_open("good", &ro, &r), 0);
	assert_int_equal(spw_reader_commit(r, "linked"), 0);
	spw_reader_close(r);
	{
		struct stat st;

		assert_int_equal(lstat(link, &st), 0);
		assert_true(S_ISREG(st.st_mode)); /* the link itself was replaced */
	}
	/* A topic that cannot spill keeps SIGTERM waiting (30 s): kill it. */
	test_daemon_kill(d);
	target_unchanged(target);
}

static void dirs_of_other_users_are_refused_with_a_fix(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec foreign = { "foreign", RING, 4 * RING, MAXREC, 50, 0 };
	const struct test_topic_spec ok = { "good", RING, 4 * RING, MAXREC, 50, 0 };
	char dir[1024];

	need_daemon();
	assert_int_equal(test_daemon_make_topic(d, &foreign), 0);
	assert_int_equal(test_daemon_make_topic(d, &ok), 0);
	test_daemon_topic_dir(d, "foreign", dir, sizeof(dir));
	assert_int_equal(chown(dir, 12345, 12345), 0);
	start_attached(d, "good");
	assert_int_equal(test_daemon_wait_log(d, "is owned by uid 12345", 1, scaled_s(10, 30)), 0);
	assert_int_equal(test_daemon_log_count(d, "topic foreign: attached", false), 0);
	{
		int st = test_daemon_stop(d, scaled_s(20, 60));

		if (st)
			test_daemon_dump_log(d, 3000);
		assert_int_equal(st, 0);
	}
	assert_int_equal(test_daemon_log_count(d, "is owned by uid 12345", true), 1); /* once */

	/* A topic dir that is a symlink (even to a dir of ours): refused. */
	{
		const struct test_topic_spec ln = { "linkdir", RING, 4 * RING, MAXREC, 50, 0 };
		char real[1200];

		assert_int_equal(test_daemon_make_topic(d, &ln), 0);
		test_daemon_topic_dir(d, "linkdir", dir, sizeof(dir));
		snprintf(real, sizeof(real), "%s/linkdir.real", d->root);
		assert_int_equal(rename(dir, real), 0);
		assert_int_equal(symlink(real, dir), 0);
		start_attached(d, "good");
		assert_int_equal(test_daemon_wait_log(d, "linkdir is a symbolic link: refused", 1,
						      scaled_s(10, 30)), 0);
		assert_int_equal(test_daemon_log_count(d, "topic linkdir: attached", false), 0);
		assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	}

	/* A shm dir every user may write to: the daemon does not start. */
	assert_int_equal(chmod(d->shm, 0777), 0);
	assert_true(test_daemon_start(d) > 0);
	{
		int64_t deadline = test_now_ns() + scaled_s(10, 30);

		while (test_daemon_alive(d))
			assert_true(test_now_ns() < deadline);
		assert_int_equal(d->exit_status, 1);
	}
	assert_true(test_daemon_log_count(d, "writable by every user (mode 0777)", false) >= 1);
	assert_true(test_daemon_log_count(d, "chmod o-w", false) >= 1);
	assert_int_equal(chmod(d->shm, 0700), 0);
}

/* A topic dir swapped for a link while the daemon runs (after every check
 * it made at attach): the next segment it creates there is reached from
 * the data dir's held fd one component at a time (spill/files.c), so the
 * swap is refused and nothing is created at the link's target. */
static void a_dir_swapped_for_a_link_after_the_check_is_never_followed(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec sw = { "swapped", RING, 4 * RING, MAXREC, 50, 0 };
	struct spw_topic *t = NULL;
	struct spw_producer *p = NULL;
	char dir[1024], real[1200], outside[1200];
	static char rec[2000];
	int entries = 0;

	need_daemon();
	assert_int_equal(test_daemon_make_topic(d, &sw), 0);
	start_attached(d, "swapped");
	assert_int_equal(spw_topic_open(d->shm, "swapped", 0, &t), 0);
	assert_int_equal(spw_producer_open(t, &p), 0);
	assert_true(spw_producer_send_wait(p, rec, sizeof(rec), 10 * TEST_SEC) >= 0);
	assert_int_equal(spw_producer_wait_ack(p, 0, SPW_ACK_SPILLED, scaled_s(10, 30)), 0);

	test_daemon_topic_dir(d, "swapped", dir, sizeof(dir));
	snprintf(real, sizeof(real), "%s/swapped.real", d->root);
	snprintf(outside, sizeof(outside), "%s/outside.d", d->root);
	assert_int_equal(mkdir(outside, 0700), 0);
	assert_int_equal(rename(dir, real), 0);
	assert_int_equal(symlink(outside, dir), 0);
	/* Past the segment's end: the roll must open a new file there. */
	for (int i = 0; i < (int)(6 * RING / sizeof(rec)); i++)
		if (spw_producer_send_wait(p, rec, sizeof(rec), TEST_SEC / 2) < 0)
			break; /* the ring filled: it cannot spill, as it must not */
	assert_int_equal(test_daemon_wait_log(d, "swapped: opening segment for", 1,
					      scaled_s(10, 30)), 0);
	assert_true(test_daemon_log_count(d, "Too many levels of symbolic links", false) >= 1);
	{
		DIR *o = opendir(outside);
		struct dirent *de;

		assert_non_null(o);
		while ((de = readdir(o)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
		closedir(o);
	}
	assert_int_equal(entries, 0);
	spw_producer_close(p);
	spw_topic_close(t);
	test_daemon_kill(d);
}

/* Refusals are said once per ring file (daemon/topics.c refused_before), in
 * a table of MAX_TOPICS (daemon/daemon.h) names that forgets rings that are
 * gone (refused_prune). Without that, more than MAX_TOPICS refused names in a
 * daemon's life filled the table for good, and every refusal after was said
 * again at every rescan (and a settled one re-ran recovery every second). */
#define GONE_ROUNDS 7
#define GONE_PER_ROUND 40 /* 280 names in all: more than MAX_TOPICS (256) */

/* Made aside and renamed in once foreign: made in the shm dir, the daemon
 * could attach it before the chown. */
static void make_foreign_ring(const struct test_daemon *d, const char *name)
{
	struct spw_topic_config c = { .ring_bytes = RING, .segment_bytes = 4 * RING,
				      .max_record = MAXREC, .mode = 0600 };
	char stage[1100], from[1200], to[1200];

	snprintf(stage, sizeof(stage), "%s.stage", d->shm); /* same file system */
	assert_true(mkdir(stage, 0700) == 0 || errno == EEXIST);
	assert_int_equal(spw_topic_create(stage, name, &c), 0);
	snprintf(from, sizeof(from), "%s/%s.ring", stage, name);
	snprintf(to, sizeof(to), "%s/%s.ring", d->shm, name);
	assert_int_equal(chown(from, 12345, 12345), 0);
	assert_int_equal(rename(from, to), 0);
}

static void refusals_of_rings_gone_are_forgotten(void **state)
{
	struct test_daemon *d = *state;
	const struct test_topic_spec ok = { "good", RING, 4 * RING, MAXREC, 50, 0 };
	char name[64], needle[200];

	need_daemon();
	assert_int_equal(test_daemon_make_topic(d, &ok), 0);
	start_attached(d, "good");
	for (int round = 0; round < GONE_ROUNDS; round++) {
		int64_t rescans;

		for (int i = 0; i < GONE_PER_ROUND; i++) {
			snprintf(name, sizeof(name), "gone%d_%d", round, i);
			make_foreign_ring(d, name);
		}
		/* Each refused, once, before they go. */
		assert_int_equal(test_daemon_wait_log(d, "is owned by uid 12345",
						      (round + 1) * GONE_PER_ROUND, scaled_s(20, 60)),
				 0);
		for (int i = 0; i < GONE_PER_ROUND; i++) {
			snprintf(name, sizeof(name), "gone%d_%d", round, i);
			assert_int_equal(spw_topic_delete(d->shm, name), 0);
		}
		/* A rescan (every second) prunes them: wait two. */
		rescans = test_now_ns() + 2200000000ll;
		while (test_now_ns() < rescans)
			usleep(50000);
	}
	assert_int_equal(test_daemon_log_count(d, "is owned by uid 12345", false),
			 GONE_ROUNDS * GONE_PER_ROUND);
	make_foreign_ring(d, "last");
	snprintf(needle, sizeof(needle), "last.ring is owned by uid 12345");
	assert_int_equal(test_daemon_wait_log(d, needle, 1, scaled_s(10, 30)), 0);
	usleep(2500000); /* two rescans more */
	assert_int_equal(test_daemon_log_count(d, needle, false), 1);
	assert_int_equal(test_daemon_log_count(d, "topic good: attached", false), 1);
	assert_int_equal(spw_topic_delete(d->shm, "last"), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
	{
		char stage[1100];

		snprintf(stage, sizeof(stage), "%s.stage", d->shm);
		assert_int_equal(rmdir(stage), 0);
	}
}

/* Root changing a file's group or mode by path: a name swapped for a link
 * meanwhile (a group-writable data dir, a topic dir of another user) hands
 * the link's target out. seg_give works through a descriptor opened
 * without following the last component, on this user's own files only
 * (spill/group.c and `topic create --group` use it). */
static void owner_and_mode_changes_never_go_through_a_link(void **state)
{
	struct test_daemon *d = *state;
	char target[600], lnk[600], dir[600], dlnk[600], own[600];
	struct stat st;

	make_target(d, target, sizeof(target));
	assert_int_equal(chmod(target, 0600), 0);
	snprintf(lnk, sizeof(lnk), "%s/lnk", d->root);
	assert_int_equal(symlink(target, lnk), 0);
	assert_int_equal(seg_give(lnk, false, (gid_t)-1, 0666), -ELOOP);
	assert_int_equal(seg_give(lnk, true, (gid_t)-1, 0777), -ELOOP);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(dir, sizeof(dir), "%s/victim", d->root);
	snprintf(dlnk, sizeof(dlnk), "%s/groups", d->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(symlink(dir, dlnk), 0);
	assert_int_equal(seg_give(dlnk, true, (gid_t)-1, 02770), -ELOOP);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* Another user's file is not ours to give (root runs the tests). */
	if (geteuid() == 0) {
		assert_int_equal(chown(target, 65534, 65534), 0);
		assert_int_equal(seg_give(target, false, 0, 0666), -EPERM);
		assert_int_equal(stat(target, &st), 0);
		assert_true((st.st_mode & 07777) == 0600 && st.st_gid == 65534);
	}
	/* Our own: done. */
	snprintf(own, sizeof(own), "%s/own", d->root);
	assert_int_equal(mkdir(own, 0700), 0);
	assert_int_equal(seg_give(own, true, (gid_t)-1, 0750), 0);
	assert_int_equal(stat(own, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	target_unchanged(target);
}

/* ring_dir_below (spill/group.c's way to groups/ from any data dir, this
 * process holding no root): the base is followed once as named, nothing
 * below it is; dirs on the way need search permission only, as for a path
 * used as named. */
static void dirs_below_a_base_are_reached_without_links(void **state)
{
	struct test_daemon *d = *state;
	char a[600], lnk[600], lbase[600], base[64];
	int fd;

	snprintf(a, sizeof(a), "%s/a", d->root);
	snprintf(lnk, sizeof(lnk), "%s/l", d->root);
	snprintf(lbase, sizeof(lbase), "%s/lbase", d->root);
	assert_int_equal(mkdir(a, 0700), 0);
	snprintf(a, sizeof(a), "%s/a/b", d->root);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(symlink("a", lnk), 0);
	assert_int_equal(symlink(d->root, lbase), 0);

	fd = ring_dir_below(d->root, "a/b", O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ring_dir_below(d->root, "l", O_PATH), -ELOOP);
	assert_int_equal(ring_dir_below(d->root, "l/b", O_PATH), -ELOOP);
	assert_int_equal(ring_dir_below(d->root, "a/../l", O_PATH), -EINVAL);
	assert_int_equal(ring_dir_below(d->root, "", O_PATH), -EINVAL);
	assert_int_equal(ring_dir_below(d->root, "missing", O_PATH), -ENOENT);
	fd = ring_dir_below(lbase, "a//b/", O_PATH); /* the base itself: as named */
	assert_true(fd >= 0);
	close(fd);

	/* Another user with search permission only on the way (modes set
	 * outright, whatever the umask; removed before any assertion). */
	if (geteuid() == 0) {
		char t[96], g[96];
		pid_t pid;
		int st = -1;

		snprintf(base, sizeof(base), "/tmp/spw-search-XXXXXX");
		assert_non_null(mkdtemp(base));
		snprintf(t, sizeof(t), "%s/t", base);
		snprintf(g, sizeof(g), "%s/t/groups", base);
		if (mkdir(t, 0700) == 0 && mkdir(g, 0700) == 0 && chmod(g, 0777) == 0 &&
		    chmod(t, 0711) == 0 && chmod(base, 0711) == 0 && (pid = fork()) >= 0) {
			if (pid == 0) {
				int f;

				if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
					_exit(2);
				f = ring_dir_below(base, "t/groups", O_RDONLY);
				_exit(f >= 0 ? 0 : 1);
			}
			if (waitpid(pid, &st, 0) != pid)
				st = -1;
		}
		rmdir(g);
		rmdir(t);
		rmdir(base);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(links_to_a_file_outside_are_never_followed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(dirs_of_other_users_are_refused_with_a_fix, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			a_dir_swapped_for_a_link_after_the_check_is_never_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(refusals_of_rings_gone_are_forgotten, setup,
						teardown),
		cmocka_unit_test_setup_teardown(owner_and_mode_changes_never_go_through_a_link, setup,
						teardown),
		cmocka_unit_test_setup_teardown(dirs_below_a_base_are_reached_without_links, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
