/* SPDX-License-Identifier: MIT */
/*
 * demo_work.c - the forked workers of `spillway demo`: producers that send
 * checksummed records (producer id, sequence number, CRC32C), a live
 * consumer that measures end-to-end latency from each record's timestamp,
 * and a lagging consumer that sleeps until it is far behind, then catches up
 * from the segment files and goes live. Both consumers check every record
 * and that each producer's sequence arrives exactly once, in order.
 */
#include "demo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- records ------------------------------------------------------------------------ */
static uint32_t rec_crc(const uint8_t *p, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t c = seg_crc32c(0, p, offsetof(struct demo_rec, crc));

	c = seg_crc32c(c, zero, 4);
	return seg_crc32c(c, p + sizeof(struct demo_rec), len - sizeof(struct demo_rec));
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int demo_producer(const struct demo_cfg *c, struct demo_shared *sh, int id)
{
	struct demo_prod *me = &sh->prod[id];
	uint8_t buf[DEMO_MIN_LEN + DEMO_SPREAD + 64];
	struct spw_topic *t;
	struct spw_producer *p;
	struct demo_rec h = { DEMO_MAGIC, (uint16_t)id, 0, 0, 0, 0 };
	uint64_t budget = c->bytes / (uint64_t)c->producers, deadline;
	int64_t pos;
	int r;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)mix(i * 131 + (uint64_t)id);
	if ((r = spw_topic_open(c->shm, c->topic, 0, &t)) || (r = spw_producer_open(t, &p))) {
		me->err = r;
		return 1;
	}
	/* Acquire: pairs with the parent's release store of go (all workers
	 * are forked and the consumers' readers open by then). */
	while (!atomic_load_explicit(&sh->go, memory_order_acquire)) {
		/* Relaxed: stop is a request, no data hangs on it. */
		if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
			return 1;
		sleep_ms(1);
	}
	me->start_ns = cli_now_ns();
	deadline = cli_mono_ns() + c->seconds_ns;
	/* stop is only ever a request (relaxed everywhere): nothing is read
	 * because of it. */
	for (uint64_t seq = 0;; seq++) {
		bool last = me->bytes >= budget || (seq % 64 == 0 && cli_mono_ns() >= deadline) ||
			    atomic_load_explicit(&sh->stop, memory_order_relaxed);

		h.kind = last;
		h.seq = last ? me->records : seq;
		h.len = last ? (uint32_t)sizeof(h)
			     : DEMO_MIN_LEN + (uint32_t)(mix(seq * 8 + (uint64_t)id) % DEMO_SPREAD);
		memcpy(buf + (seq & 31), &h, sizeof(h));
		h.crc = rec_crc(buf + (seq & 31), h.len);
		memcpy(buf + (seq & 31) + offsetof(struct demo_rec, crc), &h.crc, 4);
		do
			pos = spw_producer_send_wait(p, buf + (seq & 31), h.len, 1000000000);
		while (pos == -ETIMEDOUT && !atomic_load_explicit(&sh->stop, memory_order_relaxed));
		h.crc = 0;
		if (pos < 0) {
			me->err = (int)pos;
			return 1;
		}
		if (last)
			break;
		me->records++;
		me->bytes += h.len;
	}
	me->end_ns = cli_now_ns();
	/* Release: our counters above are complete; pairs with the acquire
	 * loads of producers_done in the consumers and the parent. */
	atomic_fetch_add_explicit(&sh->producers_done, 1, memory_order_release);
	spw_producer_close(p);
	spw_topic_close(t);
	return 0;
}

/* --- consumers ------------------------------------------------------------------------ */
void demo_check(struct demo_cons *k, int producers, const struct spw_record *r)
{
	struct demo_rec h;

	uint64_t before = k->dup + k->gap + k->bad + k->foreign;

	k->records++;
	k->bytes += r->len;
	if (r->len < sizeof(h)) {
		k->foreign++;
		goto out;
	}
	memcpy(&h, r->data, sizeof(h));
	if (h.magic != DEMO_MAGIC || h.producer >= producers || h.len != r->len) {
		k->foreign++;
		goto out;
	}
	if (h.crc != rec_crc(r->data, r->len)) {
		k->bad++;
		goto out;
	}
	if (h.kind == 1) {
		k->end_seen[h.producer] = true;
		k->end_count[h.producer] = h.seq;
		goto out;
	}
	if (h.seq == k->next[h.producer]) {
		k->next[h.producer]++;
	} else if (h.seq < k->next[h.producer]) {
		k->dup++;
	} else {
		k->gap += h.seq - k->next[h.producer];
		k->next[h.producer] = h.seq + 1;
	}
out:
	if (k->first_anomaly < 0 && k->dup + k->gap + k->bad + k->foreign != before)
		k->first_anomaly = r->position;
}

bool demo_exactly_once(struct demo_cons *k, int producers)
{
	bool ok = !k->dup && !k->gap && !k->bad && !k->foreign && !k->err;

	for (int i = 0; i < producers; i++)
		ok = ok && k->end_seen[i] && k->next[i] == k->end_count[i];
	k->exactly_once = ok;
	return ok;
}

static bool all_ends(const struct demo_cons *k, int producers)
{
	for (int i = 0; i < producers; i++)
		if (!k->end_seen[i])
			return false;
	return true;
}

struct cctx {
	const struct demo_cfg *c;
	struct demo_cons *k;
	struct spw_reader *r;
	bool latency;
	uint64_t last_seg;
};

static int on_record(void *arg, const struct spw_record *r)
{
	struct cctx *x = arg;
	struct demo_cons *k = x->k;

	if (x->latency) {
		uint64_t now = cli_now_ns();

		hist_record(&k->lat, now > r->timestamp_ns ? now - r->timestamp_ns : 0);
	}
	if (spw_reader_is_live(x->r)) {
		k->live_records++;
	} else {
		uint64_t seg = (uint64_t)r->position / x->c->segment_bytes;

		k->disk_records++;
		if (seg != x->last_seg)
			k->segments++;
		x->last_seg = seg;
	}
	demo_check(k, x->c->producers, r);
	return 0;
}

/* Read until every producer's end record was seen, the parent says stop, or
 * nothing arrives for 20 s after the producers finished. */
static int consume(const struct demo_cfg *c, struct demo_shared *sh, struct demo_cons *k,
		   bool latency)
{
	struct spw_reader_opts o = { 0 };
	struct cctx x = { c, k, NULL, latency, UINT64_MAX };
	struct cli_reader cr;
	uint64_t idle_since;
	int rc;

	o.shm_dir = c->shm;
	o.data_dir = c->data;
	o.start = SPW_START_EARLIEST;
	rc = cli_reader_open(&cr, c->topic, &o, on_record, &x);
	if (rc) {
		k->err = rc;
		snprintf(k->msg, sizeof(k->msg), "spw_reader_open: %s", strerror(-rc));
		return 1;
	}
	x.r = cr.r;
	/* Release: the reader is open at the start of the log; pairs with the
	 * parent's acquire load before it starts the producers. */
	if (latency)
		atomic_store_explicit(&sh->live_ready, 1, memory_order_release);
	k->start_ns = idle_since = cli_mono_ns();
	while (!all_ends(k, c->producers)) {
		int n = cli_reader_poll(&cr, 4096, 100000000);

		if (n < 0) {
			char file[PATH_MAX];
			int64_t at;

			spw_reader_error(cr.r, file, sizeof(file), &at);
			k->err = n;
			snprintf(k->msg, sizeof(k->msg), "%s at position %lld%s%.180s", strerror(-n),
				 (long long)at, file[0] ? " in " : "", file);
			break;
		}
		/* Relaxed: a request; acquire on producers_done pairs with the
		 * producers' release increment. */
		if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		if (n > 0)
			idle_since = cli_mono_ns();
		else if (atomic_load_explicit(&sh->producers_done, memory_order_acquire) ==
				 c->producers &&
			 cli_mono_ns() - idle_since > 20000000000ull) {
			snprintf(k->msg, sizeof(k->msg), "no records for 20 s after the producers ended");
			k->err = -ETIMEDOUT;
			break;
		}
	}
	k->end_ns = cli_mono_ns();
	k->retracted = cr.retracted;
	demo_exactly_once(k, c->producers);
	cli_reader_close(&cr);
	return k->exactly_once ? 0 : 1;
}

int demo_live(const struct demo_cfg *c, struct demo_shared *sh)
{
	return consume(c, sh, &sh->live, true);
}

/* Sleep until the log is half the byte budget ahead (or the producers are
 * done), then read everything from the start: the segment files first. */
int demo_lagging(const struct demo_cfg *c, struct demo_shared *sh)
{
	struct spw_topic *t;
	struct spw_topic_info in = { 0 };
	uint64_t t0 = cli_mono_ns();

	if (spw_topic_open(c->shm, c->topic, SPW_OPEN_RDONLY, &t)) {
		snprintf(sh->lag.msg, sizeof(sh->lag.msg), "cannot open the topic");
		sh->lag.err = -ENOENT;
		return 1;
	}
	for (;;) {
		spw_topic_info(t, &in);
		/* Acquire pairs with the producers' release increment; stop is a
		 * request (relaxed). */
		if (in.tail >= c->bytes / 2 ||
		    atomic_load_explicit(&sh->producers_done, memory_order_acquire) == c->producers ||
		    atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		sleep_ms(20);
	}
	spw_topic_close(t);
	sh->lag.slept_ns = cli_mono_ns() - t0;
	sh->lag.behind_bytes = in.tail;
	return consume(c, sh, &sh->lag, false);
}
