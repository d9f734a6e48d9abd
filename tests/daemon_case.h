/* SPDX-License-Identifier: MIT */
/*
 * daemon_case.h - the cmocka fixture shared by the daemon tests
 * (crash_daemon.c, fault_daemon.c): a sandbox per case, a skip when no
 * daemon binary exists, ASan-scaled timeouts, start-and-wait-attached,
 * the usual start of a case (case_producer), a case's handles in one
 * struct (struct dcase: dcase_init, _begin, _producer, _close, _end),
 * feeds with a deadline and their end (feed_timed, spilled_then_stop), and
 * the walk of a topic's segments against a feed (walk_check,
 * check_counts).
 * Include after <cmocka.h> and support_daemon.h.
 */
#ifndef SPW_TEST_DAEMON_CASE_H
#define SPW_TEST_DAEMON_CASE_H

static inline int setup(void **state)
{
	struct test_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	test_daemon_setup(d);
	*state = d;
	return 0;
}

static inline int teardown(void **state)
{
	struct test_daemon *d = *state;

	test_daemon_teardown(d);
	free(d);
	return 0;
}

static inline void need_daemon(void)
{
	if (!test_daemon_path()) {
		print_message("spillwayd not found (SPW_DAEMON unset, no build/spillwayd): skipped\n");
		skip();
	}
}

static inline int64_t scaled_s(int64_t normal_s, int64_t asan_s)
{
	return (int64_t)test_scaled((uint64_t)normal_s, (uint64_t)asan_s, (uint64_t)asan_s) * TEST_SEC;
}

static inline void start_attached(struct test_daemon *d, const char *topic)
{
	assert_true(test_daemon_start(d) > 0);
	assert_int_equal(test_daemon_wait_attached(d, topic, scaled_s(10, 30)), 0);
}

static inline void info_of(struct spw_topic *t, struct spw_topic_info *in)
{
	assert_int_equal(spw_topic_info(t, in), 0);
}

/* The topic opened read-write in d's shm dir (*t), a producer on it (*p). */
static inline void open_producer(struct test_daemon *d, const char *topic, struct spw_topic **t,
				 struct spw_producer **p)
{
	assert_int_equal(spw_topic_open(d->shm, topic, 0, t), 0);
	assert_int_equal(spw_producer_open(*t, p), 0);
}

/* The start of a case that sends by hand: skipped without a daemon, the
 * topic made, the daemon started and attached to it, the topic opened with
 * a producer. */
static inline void case_producer(struct test_daemon *d, const struct test_topic_spec *spec,
				 struct spw_topic **t, struct spw_producer **p)
{
	need_daemon();
	assert_int_equal(test_daemon_make_topic(d, spec), 0);
	start_attached(d, spec->name);
	open_producer(d, spec->name, t, p);
}

/* The end of a case that sent by hand: the reader (may be NULL), the
 * producer and the topic closed, then the daemon stopped (SIGTERM) with exit
 * status 0. */
static inline void case_end(struct test_daemon *d, struct spw_reader *r, struct spw_producer *p,
			    struct spw_topic *t)
{
	spw_reader_close(r);
	spw_producer_close(p);
	spw_topic_close(t);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

/* One case's handles and set-up, so a case declares one struct instead of
 * the same half-dozen locals: the sandbox (d), the topic's spec and its
 * data dir (dir), the topic (t), a producer (p) and a reader (r) on it,
 * NULL until opened, a feed (f), the counters last read (in), a walk of the
 * log (w) and the seed. */
struct dcase {
	struct test_daemon *d;
	struct test_topic_spec spec;
	char dir[1024];
	struct spw_topic *t;
	struct spw_producer *p;
	struct spw_reader *r;
	struct test_feed *f;
	struct spw_topic_info in;
	struct test_seg_walk w;
	uint64_t seed;
};

/* The first step of every case: skipped without a daemon; c names the
 * sandbox in *state and the topic of spec, nothing open yet. Returns d. */
static inline struct test_daemon *dcase_init(struct dcase *c, void **state,
					     const struct test_topic_spec *spec)
{
	need_daemon();
	memset(c, 0, sizeof(*c));
	c->d = *state;
	c->spec = *spec;
	test_daemon_topic_dir(c->d, spec->name, c->dir, sizeof(c->dir));
	return c->d;
}

/* The case's topic made (topic.conf and ring), the daemon not started. */
static inline void dcase_make(struct dcase *c)
{
	assert_int_equal(test_daemon_make_topic(c->d, &c->spec), 0);
}

/* The case's topic opened read-only (c->t): for cases whose records come
 * from a feed. */
static inline void dcase_open_ro(struct dcase *c)
{
	assert_int_equal(spw_topic_open(c->d->shm, c->spec.name, SPW_OPEN_RDONLY, &c->t), 0);
}

/* The start of most cases: dcase_init; the seed printed (what names the
 * case; none when NULL) and kept in c->seed; the topic made, the daemon
 * started and attached to it. */
static inline struct test_daemon *dcase_begin(struct dcase *c, void **state,
					      const struct test_topic_spec *spec, const char *what)
{
	dcase_init(c, state, spec);
	if (what)
		c->seed = test_seed(what);
	dcase_make(c);
	start_attached(c->d, c->spec.name);
	return c->d;
}

/* dcase_init, then case_producer: the topic made, the daemon attached, the
 * topic opened with a producer (c->t, c->p). */
static inline struct test_daemon *dcase_producer(struct dcase *c, void **state,
						 const struct test_topic_spec *spec)
{
	dcase_init(c, state, spec);
	case_producer(c->d, &c->spec, &c->t, &c->p);
	return c->d;
}

/* Whatever the case opened closed (reader, producer, topic) and its feed
 * freed; the daemon is left as it is. */
static inline void dcase_close(struct dcase *c)
{
	spw_reader_close(c->r);
	spw_producer_close(c->p);
	spw_topic_close(c->t);
	if (c->f)
		test_feed_free(c->f);
	c->r = NULL;
	c->p = NULL;
	c->t = NULL;
	c->f = NULL;
}

/* dcase_close, then the daemon stopped (SIGTERM) with exit status 0. */
static inline void dcase_end(struct dcase *c)
{
	dcase_close(c);
	assert_int_equal(test_daemon_stop(c->d, scaled_s(20, 60)), 0);
}

/* A feed (test_feed_new) on topic whose send attempts time out after 50 ms
 * (counted, then sent again) and whose producers give up 60 s from now
 * (120 s under the sanitizers). */
static inline struct test_feed *feed_timed(struct test_daemon *d, const char *topic,
					   uint64_t seed, uint32_t first_id, uint32_t producers,
					   uint32_t max_record)
{
	struct test_feed *f = test_feed_new(d->shm, topic, seed, first_id, producers, max_record);

	f->timeout_ns = 50 * TEST_MS;
	f->deadline_ns = test_now_ns() + scaled_s(60, 120);
	return f;
}

/* The end of a feed: its producers all exited 0, the daemon spilled up to
 * the tail (within counter_ns), then stopped with exit status 0. in: the
 * counters read before the stop. */
static inline void spilled_then_stop(struct test_daemon *d, struct spw_topic *t,
				     int64_t counter_ns, struct spw_topic_info *in)
{
	assert_int_equal(test_daemon_wait_kids(d, scaled_s(60, 120)), 0);
	info_of(t, in);
	assert_int_equal(test_wait_counter(t, false, in->tail, counter_ns), 0);
	assert_int_equal(test_daemon_stop(d, scaled_s(20, 60)), 0);
}

/* Walk the topic's segments checking every record against the feed's
 * identity (c); on_skip, when set, gets skip_arg, which wraps c (its first
 * member). Fails the case with the walker's or the check's message. */
static inline void walk_check(struct test_daemon *d, const char *topic, struct test_seg_walk *w,
			      struct test_feed_check *c, test_seg_fn on_skip, void *skip_arg,
			      uint64_t seed)
{
	char dir[1024];
	int r;

	test_daemon_topic_dir(d, topic, dir, sizeof(dir));
	memset(w, 0, sizeof(*w));
	w->on_data = test_feed_on_data;
	w->arg = c;
	w->on_skip = on_skip;
	if (on_skip)
		w->arg = skip_arg;
	r = test_seg_walk(dir, w);
	if (r)
		fail_msg("segment walk: %d: %s%s%s (rerun with SPW_TEST_SEED=%#llx)", r, w->err,
			 c->err[0] ? ": " : "", c->err, (unsigned long long)seed);
}

/* After walk_check: every producer of the feed got all it sent across. */
static inline void check_counts(struct test_feed_check *c, const struct test_feed *f,
				uint64_t seed)
{
	for (uint32_t p = f->first_id; p < f->first_id + f->producers; p++)
		if (test_feed_check_count(c, p, atomic_load(&f->sent[p])))
			fail_msg("%s (rerun with SPW_TEST_SEED=%#llx)", c->err,
				 (unsigned long long)seed);
}

#endif
