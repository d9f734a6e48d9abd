// SPDX-License-Identifier: MIT
// spw_benches.cc - the Spillway side: a topic per benchmark run, driven by the
// shared drivers in bench.h. Pure IPC, no daemon: the benchmark itself
// reclaims, always up to a committed record boundary (the consumer's position,
// or the end of spwd_scan's committed run).
#include "bench.h"

namespace spwb {
namespace {

class SpwSys {
public:
	SpwSys() = default;
	SpwSys(const SpwSys &) = delete;
	SpwSys &operator=(const SpwSys &) = delete;
	~SpwSys()
	{
		if (c_)
			spw_consumer_close(c_);
		if (p_)
			spw_producer_close(p_);
		if (t_)
			spw_topic_close(t_);
		if (created_)
			spw_topic_delete(g_cfg.shm_dir.c_str(), name_.c_str());
	}

	// A fresh topic of g_cfg.ring_bytes with a producer and a consumer from
	// its oldest position. Returns 0 or -errno; *what names the failed call.
	int open(const char **what)
	{
		struct spw_topic_config cfg;
		struct spw_topic_info info;
		int r;

		std::memset(&cfg, 0, sizeof(cfg));
		cfg.ring_bytes = g_cfg.ring_bytes;
		cfg.flags = SPW_TOPIC_NO_SPILL;
		name_ = unique_name("spw");
		*what = "spw_topic_create";
		if ((r = spw_topic_create(g_cfg.shm_dir.c_str(), name_.c_str(), &cfg)) < 0)
			return r;
		created_ = true;
		*what = "spw_topic_open";
		if ((r = spw_topic_open(g_cfg.shm_dir.c_str(), name_.c_str(), 0, &t_)) < 0)
			return r;
		*what = "spw_topic_info";
		if ((r = spw_topic_info(t_, &info)) < 0)
			return r;
		start_ = reclaimed_ = (int64_t)info.start_position;
		*what = "spw_producer_open_flags";
		if ((r = spw_producer_open_flags(t_, exclusive_ ? SPW_PRODUCER_EXCLUSIVE : 0, &p_)) < 0)
			return r;
		*what = "spw_consumer_open";
		return spw_consumer_open(t_, SPW_FROM_OLDEST, 0, &c_);
	}

	int64_t send(const void *data, uint32_t len) { return spw_producer_send(p_, data, len); }

	// The caller's timestamp (spw_producer_send_at): no clock read.
	int64_t send_at(const void *data, uint32_t len)
	{
		return spw_producer_send_at(p_, data, len, ++ts_);
	}

	// SPW_PRODUCER_EXCLUSIVE: the topic's only producer (plain tail store).
	void set_exclusive() { exclusive_ = true; }

	// Zero copy: the same bytes as send, written by the caller in place.
	int64_t claim_commit(const void *data, uint32_t len)
	{
		struct spw_claim cl;
		int r = spw_producer_claim(p_, len, &cl);

		if (r < 0)
			return r;
		std::memcpy(cl.data, data, len);
		r = spw_producer_commit(p_, &cl);
		return r < 0 ? r : cl.position;
	}

	int poll(spw_record_fn fn, void *arg, int max)
	{
		if (!batch_)
			return spw_consumer_poll(c_, fn, arg, max);
		// Batch reading (spw_consumer_peek/release): the same check per
		// record, one lap check per batch.
		struct spw_record recs[256];
		int n = spw_consumer_peek(c_, recs, max < 256 ? max : 256);

		for (int i = 0; i < n; i++)
			fn(arg, &recs[i]);
		return n > 0 ? spw_consumer_release(c_, recs, n) : n;
	}

	// Read with spw_consumer_peek/release instead of spw_consumer_poll.
	void set_batch() { batch_ = true; }

	int rewind() { return spw_consumer_seek(c_, start_); }

	// No reader: walk the committed run from the reclaim bound (a run stops
	// at the ring's end, so up to two scans) and reclaim up to its end.
	int reclaim_all()
	{
		int64_t from = reclaimed_;

		for (;;) {
			struct spwd_scan_result sc;
			int64_t n = spwd_scan(t_, from, g_cfg.ring_bytes, &sc);
			if (n < 0)
				return (int)n;
			if (n == 0)
				break;
			from = sc.end;
		}
		if (from == reclaimed_)
			return 0;
		int r = spwd_reclaim(t_, from);
		if (r < 0)
			return r;
		reclaimed_ = from;
		return 0;
	}

	// The consumer is the reclaimer: every ring/4 bytes, up to its position
	// (a record boundary it has consumed, so committed). The producer, which
	// may not claim past reclaimed + ring_bytes, then has room again.
	int consumer_maintain()
	{
		int64_t pos = spw_consumer_position(c_);

		if (pos - reclaimed_ < (int64_t)(g_cfg.ring_bytes / 4))
			return 0;
		int r = spwd_reclaim(t_, pos);
		if (r < 0)
			return r;
		reclaimed_ = pos;
		return 0;
	}

private:
	std::string name_;
	bool created_ = false;
	bool exclusive_ = false;
	uint64_t ts_ = 1700000000000000000ull; // spw_send_at: the caller's clock
	bool batch_ = false;
	struct spw_topic *t_ = nullptr;
	struct spw_producer *p_ = nullptr;
	struct spw_consumer *c_ = nullptr;
	int64_t start_ = 0, reclaimed_ = 0;
};

bool open_or_skip(benchmark::State &st, SpwSys &sys)
{
	const char *what = "";
	int r = sys.open(&what);

	if (r < 0)
		st.SkipWithError(err_text(what, r).c_str());
	return r >= 0;
}

std::string bl_name(const char *fn, const benchmark::State &st)
{
	return std::string(fn) + "/" + std::to_string(st.range(0));
}

// One producer sending (send or claim+commit), against the bare ring's
// bl_send of the same size.
template <class Send> void send_case(benchmark::State &st, bool exclusive, Send send)
{
	SpwSys sys;
	if (exclusive)
		sys.set_exclusive();
	if (!open_or_skip(st, sys))
		return;
	run_send(st, sys, (uint32_t)st.range(0),
		 [&sys, &send](const void *d, uint32_t l) { return send(sys, d, l); },
		 bl_name("bl_send", st).c_str());
}

// One consumer of a pre-filled ring (poll, or peek/release), against bl_poll.
void poll_case(benchmark::State &st, bool batch)
{
	SpwSys sys;
	if (batch)
		sys.set_batch();
	if (!open_or_skip(st, sys))
		return;
	run_poll(st, sys, (uint32_t)st.range(0), bl_name("bl_poll", st).c_str());
}

} // namespace

void bm_spw_send(benchmark::State &st)
{
	send_case(st, false, [](SpwSys &s, const void *d, uint32_t l) { return s.send(d, l); });
}

void bm_spw_send_at(benchmark::State &st)
{
	send_case(st, false, [](SpwSys &s, const void *d, uint32_t l) { return s.send_at(d, l); });
}

void bm_spw_send_excl(benchmark::State &st)
{
	send_case(st, true, [](SpwSys &s, const void *d, uint32_t l) { return s.send(d, l); });
}

void bm_spw_claim_commit(benchmark::State &st)
{
	send_case(st, false,
		  [](SpwSys &s, const void *d, uint32_t l) { return s.claim_commit(d, l); });
}

void bm_spw_poll(benchmark::State &st)
{
	poll_case(st, false);
}

void bm_spw_peek(benchmark::State &st)
{
	poll_case(st, true);
}

void bm_spw_pc(benchmark::State &st)
{
	SpwSys sys;
	if (!open_or_skip(st, sys))
		return;
	run_pc(st, sys, (uint32_t)st.range(0), bl_name("bl_pc", st).c_str());
}

std::unique_ptr<PairSide> spw_pair_side(bool exclusive, bool claim)
{
	struct Side : PairSide {
		SpwSys sys;
		bool claim = false;
		int open() override
		{
			const char *what = "";
			return sys.open(&what);
		}
		int64_t batch(Payload &pl, uint32_t len, int64_t n, uint64_t &seq) override
		{
			if (claim) {
				auto cc = [this](const void *d, uint32_t l) {
					return sys.claim_commit(d, l);
				};
				return send_batch(cc, pl, len, n, seq);
			}
			auto send = [this](const void *d, uint32_t l) { return sys.send(d, l); };
			return send_batch(send, pl, len, n, seq);
		}
		int reclaim() override { return sys.reclaim_all(); }
	};
	auto s = std::make_unique<Side>();
	if (exclusive)
		s->sys.set_exclusive();
	s->claim = claim;
	return s;
}

std::unique_ptr<PollSide> spw_poll_side(bool peek)
{
	struct Side : PollSide {
		SpwSys sys;
		int open() override
		{
			const char *what = "";
			return sys.open(&what);
		}
		int64_t fill(Payload &pl, uint32_t len) override { return fill_ring(sys, pl, len); }
		int64_t pass(RecordCheck &chk) override { return poll_pass(sys, chk); }
	};
	auto s = std::make_unique<Side>();
	if (peek)
		s->sys.set_batch();
	return s;
}

namespace {

// The counters of a paired benchmark (send_pair, poll_pair): each side's
// rate (n records in t seconds), their ratio (vs_baseline), and the median
// of the per-pair ratios.
void pair_report(benchmark::State &st, const double n[2], const double t[2],
		 std::vector<double> &ratios)
{
	std::sort(ratios.begin(), ratios.end());
	st.counters["bl_Mps"] = n[0] / t[0] / 1e6;
	st.counters["spw_Mps"] = n[1] / t[1] / 1e6;
	st.counters["vs_baseline"] = (n[1] / t[1]) / (n[0] / t[0]);
	st.counters["pair_ratio_p50"] = ratios.empty() ? 0 : ratios[ratios.size() / 2];
	st.SetItemsProcessed(st.iterations());
}

// poll_pair/N, peek_pair/N: bl_poll/N and spw_poll/N (or spw_peek/N) timed
// pass for pass in one run, as send_pair does for sends: both rings filled
// once, then each iteration reads every record of the bare ring once and
// every record of Spillway's once, in alternating order. Counters as in
// send_pair (per-record rates, their ratio, the median per-pair ratio).
void poll_pair(benchmark::State &st, bool peek)
{
	const uint32_t len = (uint32_t)st.range(0);
	std::unique_ptr<PollSide> side[2] = {bl_poll_side(), spw_poll_side(peek)};
	const char *name[2] = {"baseline ring", "spillway topic"};
	double t[2] = {0, 0};
	int64_t filled[2] = {0, 0}, recs[2] = {0, 0};
	std::vector<double> ratios;
	Payload pl(len);
	RecordCheck chk(len);
	unsigned k = 0;

	for (int s = 0; s < 2; s++) {
		int64_t r = side[s]->open();
		if (r >= 0)
			r = filled[s] = side[s]->fill(pl, len);
		if (r <= 0) {
			st.SkipWithError(err_text(name[s], r < 0 ? r : -ENOSPC).c_str());
			return;
		}
	}
	while (st.KeepRunningBatch(filled[0] + filled[1])) {
		double dt[2];
		for (int j = 0; j < 2; j++) {
			int s = (int)((k + (unsigned)j) & 1);
			Clock::time_point t0 = Clock::now();
			int64_t r = side[s]->pass(chk);
			Clock::time_point t1 = Clock::now();
			if (r != filled[s] || chk.bad) {
				st.SkipWithError(err_text(name[s], r < 0 ? r : -EBADMSG).c_str());
				return;
			}
			dt[s] = seconds_between(t0, t1);
			recs[s] += r;
		}
		t[0] += dt[0];
		t[1] += dt[1];
		ratios.push_back((dt[0] / (double)filled[0]) / (dt[1] / (double)filled[1]));
		st.SetIterationTime(dt[0] + dt[1]);
		k++;
	}
	const double n[2] = {(double)recs[0], (double)recs[1]};
	pair_report(st, n, t, ratios);
}

// send_pair/N: spw_send/N and bl_send/N measured together, batch for batch.
// One producer, no reader, as run_send (the same batch of ring/4 bytes, the
// same untimed reclaim after it), but each iteration times one batch of the
// bare ring and one of Spillway back to back, in alternating order. This
// machine's speed moves within seconds (another guest, the host), which
// makes the ratio of two benchmarks run seconds apart swing by +-20%; here
// both see the same moments. Counters: each side's rate over all its
// batches, their ratio (vs_baseline), and the median of the per-pair ratios.
void send_pair(benchmark::State &st, bool exclusive, bool claim = false)
{
	const uint32_t len = (uint32_t)st.range(0);
	const int64_t batch = std::max<int64_t>(1, (int64_t)(g_cfg.ring_bytes / 4 / rec_span(len)));
	std::unique_ptr<PairSide> side[2] = {bl_pair_side(), spw_pair_side(exclusive, claim)};
	const char *name[2] = {"baseline ring", "spillway topic"};
	double t[2] = {0, 0};
	uint64_t seq[2] = {0, 0};
	std::vector<double> ratios;
	Payload pl(len);
	unsigned k = 0;

	for (int s = 0; s < 2; s++) {
		int r = side[s]->open();
		if (r < 0) {
			st.SkipWithError(err_text(name[s], r).c_str());
			return;
		}
	}
	while (st.KeepRunningBatch(2 * batch)) {
		double dt[2];
		for (int j = 0; j < 2; j++) {
			int s = (int)((k + (unsigned)j) & 1); // bl first, then spw first
			Clock::time_point t0 = Clock::now();
			int64_t r = side[s]->batch(pl, len, batch, seq[s]);
			Clock::time_point t1 = Clock::now();
			if (r < 0 || (r = side[s]->reclaim()) < 0) {
				st.SkipWithError(err_text(name[s], r).c_str());
				return;
			}
			dt[s] = seconds_between(t0, t1);
		}
		t[0] += dt[0];
		t[1] += dt[1];
		ratios.push_back(dt[0] / dt[1]);
		st.SetIterationTime(dt[0] + dt[1]);
		k++;
	}
	const double n[2] = {(double)seq[0], (double)seq[1]};
	pair_report(st, n, t, ratios);
}

} // namespace

void bm_send_pair(benchmark::State &st)
{
	send_pair(st, false);
}

void bm_send_pair_excl(benchmark::State &st)
{
	send_pair(st, true);
}

void bm_claim_pair(benchmark::State &st)
{
	send_pair(st, false, true);
}

void bm_poll_pair(benchmark::State &st)
{
	poll_pair(st, false);
}

void bm_peek_pair(benchmark::State &st)
{
	poll_pair(st, true);
}

} // namespace spwb
