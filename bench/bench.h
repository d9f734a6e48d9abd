// SPDX-License-Identifier: MIT
// bench.h - the pieces the Spillway benchmark harness (bench/*.cc) shares.
//
// The three drivers below (run_send, run_poll, run_pc) are templates used by
// both the Spillway benchmarks and the bare baseline ring, so the two sides
// run the very same loop, payload, consumer work and timing; only the ring
// under test differs. A "Sys" provides:
//   int64_t send(const void *data, uint32_t len)   position, -EAGAIN, -errno
//   int poll(spw_record_fn fn, void *arg, int max) records delivered, -errno
//   int rewind()            consumer back to the first record (poll bench)
//   int reclaim_all()       producer thread frees everything it wrote (no reader)
//   int consumer_maintain() consumer thread, after each non-empty poll
#ifndef SPILLWAY_BENCH_H
#define SPILLWAY_BENCH_H

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

// spillway.h names a struct and a function spw_topic_info: in C++ that is
// -Wshadow's "hides constructor" warning. Harmless (we always write
// `struct spw_topic_info`); silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include "spillway.h"
#include "spillway_daemon.h"
#pragma GCC diagnostic pop

namespace spwb {

// --- configuration (spillway_bench.cc parses the --spw_* flags) ---------------
struct Config {
	uint64_t ring_bytes = 1u << 20; // every ring, Spillway's and the baseline's
	std::string shm_dir;            // the mkdtemp directory under /dev/shm
	std::string cpus;               // --spw_cpus=A,B (OS PU indexes), "" = pick
	uint64_t rtt_trips = 1000000;   // round trips per RTT run
	int rtt_runs = 7;               // RTT runs; the median is reported
	uint32_t bl_prefetch = 0;       // --spw_baseline_prefetch: bytes ahead, 0 = off
};
extern Config g_cfg;

// Records each consumer poll may deliver (spw_consumer_poll's max); the
// baseline consumer takes the same batches and publishes its tail per batch.
constexpr int kPollMax = 256;

// --- topology.cc ----------------------------------------------------------------
// Discover the machine, choose the producer and consumer PUs, pin the calling
// (main) thread to the producer PU. Prints what it chose to out. False when
// hwloc fails altogether.
bool topo_setup(FILE *out);
// True when a second PU (preferably on another core) was found.
bool topo_have_peer();
// Pin the calling thread to the consumer PU. False when that failed.
bool topo_pin_peer();
// One line each, for the context: "P#0 (core L#0, package L#0)".
std::string topo_main_desc();
std::string topo_peer_desc();
std::string topo_link_desc(); // their common ancestor, e.g. "L3 (32 MiB)"
// Ping-pong one atomic on its own cache line between the two pinned threads;
// returns the median round trip in ns (-1 when not measurable) and prints it.
double topo_measure_rtt(FILE *out, std::string *runs_desc);

// --- spillway_bench.cc ------------------------------------------------------------
// Set the "vs_baseline" counter: items/seconds divided by the median
// items_per_second of the baseline benchmark bl_name ("bl_pc/64"), when that
// one ran earlier in this process. Nothing when it did not.
void report_vs_baseline(benchmark::State &st, const std::string &bl_name,
			double items, double seconds);
// A fresh unique name for a topic or a baseline ring file.
std::string unique_name(const char *prefix);

// --- spill_benches.cc: the daemon's benchmarks and their summary -----------------
void register_spill();
void print_spill_summary(FILE *out);

// --- the benchmarks (spw_benches.cc, baseline.cc) -------------------------------
void bm_spw_send(benchmark::State &st);
void bm_spw_send_excl(benchmark::State &st);
void bm_spw_send_at(benchmark::State &st); // spw_producer_send_at: the caller's timestamp
void bm_spw_claim_commit(benchmark::State &st);
void bm_spw_poll(benchmark::State &st);
void bm_spw_peek(benchmark::State &st);
void bm_spw_pc(benchmark::State &st);
void bm_send_pair(benchmark::State &st);
void bm_send_pair_excl(benchmark::State &st);
void bm_claim_pair(benchmark::State &st); // send_pair through claim + commit
void bm_poll_pair(benchmark::State &st);  // poll of a pre-filled ring, paired with bl_poll
void bm_peek_pair(benchmark::State &st);  // the same through peek + release
void bm_bl_send(benchmark::State &st);
void bm_bl_poll(benchmark::State &st);
void bm_bl_pc(benchmark::State &st);
// "tsc ..." or "clock_gettime ...": how the baseline takes its timestamps.
std::string baseline_clock_desc();

// --- helpers --------------------------------------------------------------------
using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b)
{
	return std::chrono::duration<double>(b - a).count();
}

inline void cpu_relax() { _mm_pause(); }

// Bytes a record of len payload bytes takes in either ring: the 16-byte
// header, the payload, padding to the next 8-byte boundary.
inline uint64_t rec_span(uint32_t len)
{
	return ((uint64_t)len + SPW_RECORD_HEADER_BYTES + SPW_RECORD_ALIGN - 1) &
	       ~(uint64_t)(SPW_RECORD_ALIGN - 1);
}

// A 64-byte aligned heap buffer.
class AlignedBuf {
public:
	explicit AlignedBuf(size_t bytes)
	{
		size_t n = (std::max<size_t>(bytes, 64) + 63) & ~(size_t)63;
		p_ = static_cast<unsigned char *>(std::aligned_alloc(64, n));
		if (!p_)
			std::abort();
		std::memset(p_, 0, n);
	}
	~AlignedBuf() { std::free(p_); }
	AlignedBuf(const AlignedBuf &) = delete;
	AlignedBuf &operator=(const AlignedBuf &) = delete;
	unsigned char *get() const { return p_; }

private:
	unsigned char *p_;
};

// The producer's payload: a fixed pattern with the record's sequence number in
// the first 8 bytes (every size is >= 8).
class Payload {
public:
	explicit Payload(uint32_t len) : buf_(len)
	{
		for (uint32_t i = 0; i < len; i++)
			buf_.get()[i] = (unsigned char)(i * 131u + 7u);
	}
	void set_seq(uint64_t seq) { std::memcpy(buf_.get(), &seq, sizeof(seq)); }
	const void *data() const { return buf_.get(); }

private:
	AlignedBuf buf_;
};

// The consumer's work per record, the same for Spillway and the baseline
// (both hand records to this one callback): check the length, the sequence
// number and that a timestamp was taken, then copy the payload out - a
// consumer that uses its data reads all of it, and this makes the payload
// cache lines really travel to the consumer's core.
struct RecordCheck {
	explicit RecordCheck(uint32_t l) : len(l), scratch(l) {}
	uint32_t len;
	uint64_t next_seq = 0;
	uint64_t bad = 0;
	AlignedBuf scratch;
};

inline int check_record(void *arg, const spw_record *r)
{
	RecordCheck *k = static_cast<RecordCheck *>(arg);
	uint64_t seq;

	if (r->len != k->len || r->timestamp_ns == 0) {
		k->bad++;
		return 0;
	}
	std::memcpy(&seq, r->data, sizeof(seq));
	k->bad += seq != k->next_seq;
	k->next_seq = seq + 1;
	std::memcpy(k->scratch.get(), r->data, r->len);
	return 0;
}

// Bounds every spin-wait: true once a wait has lasted longer than ~10 s (a
// broken ring must fail the benchmark, not hang it). Reads the clock only
// every 64 Ki calls, so it costs an increment in the spin loop.
class Stall {
public:
	bool operator()()
	{
		if ((++n_ & 0xffff) != 0)
			return false;
		Clock::time_point now = Clock::now();
		if (n_ == 0x10000) {
			t0_ = now;
			return false;
		}
		return now - t0_ > std::chrono::seconds(10);
	}

private:
	uint64_t n_ = 0;
	Clock::time_point t0_{};
};

inline std::string err_text(const char *what, int64_t err)
{
	return std::string(what) + ": " + std::strerror((int)-err);
}

// One batch of n sends of the same payload (its first 8 bytes the sequence
// number): 0, or the first send's error. The loop both run_send and the
// paired driver time.
template <class SendFn>
inline int64_t send_batch(SendFn &send, Payload &pl, uint32_t len, int64_t n, uint64_t &seq)
{
	for (int64_t i = 0; i < n; i++) {
		pl.set_seq(seq++);
		int64_t r = send(pl.data(), len);
		if (r < 0)
			return r;
	}
	return 0;
}

// A ring under test in the paired driver (bm_send_pair, spw_benches.cc): one
// virtual call per batch, the batch loop itself the same inlined one.
struct PairSide {
	virtual ~PairSide() = default;
	virtual int open() = 0;
	virtual int64_t batch(Payload &pl, uint32_t len, int64_t n, uint64_t &seq) = 0;
	virtual int reclaim() = 0;
};
std::unique_ptr<PairSide> bl_pair_side();                // baseline.cc

// A pre-filled ring under test in the paired poll driver (bm_poll_pair,
// spw_benches.cc): fill it once, then each pass reads every record once
// (rewinding first) and returns how many it read, or -errno.
struct PollSide {
	virtual ~PollSide() = default;
	virtual int open() = 0;
	virtual int64_t fill(Payload &pl, uint32_t len) = 0;
	virtual int64_t pass(RecordCheck &chk) = 0;
};
std::unique_ptr<PollSide> bl_poll_side(); // baseline.cc
// peek: spw_consumer_peek + release instead of spw_consumer_poll.
std::unique_ptr<PollSide> spw_poll_side(bool peek); // spw_benches.cc

// Fill sys with records of pl until it is full: how many, or -errno.
template <class Sys> int64_t fill_ring(Sys &sys, Payload &pl, uint32_t len)
{
	int64_t filled = 0, r;

	for (;;) {
		pl.set_seq((uint64_t)filled);
		r = sys.send(pl.data(), len);
		if (r == -EAGAIN)
			return filled;
		if (r < 0)
			return r;
		filled++;
	}
}

// Read every record of a filled sys once from the start: how many, or -errno.
template <class Sys> int64_t poll_pass(Sys &sys, RecordCheck &chk)
{
	int64_t got = 0;
	int n, r = sys.rewind();

	if (r < 0)
		return r;
	chk.next_seq = 0;
	while ((n = sys.poll(check_record, &chk, kPollMax)) > 0)
		got += n;
	return n < 0 ? n : got;
}
// claim: spw_producer_claim + copy + commit instead of spw_producer_send.
std::unique_ptr<PairSide> spw_pair_side(bool exclusive, bool claim); // spw_benches.cc

// --- driver 1: one producer, no reader ------------------------------------------
// Each timed batch writes at most ring/4 bytes. Between batches, outside the
// measured time, the producer thread itself plays the reclaimer
// (Sys::reclaim_all: Spillway scans the committed run with spwd_scan and
// reclaims up to its end, which zeroes the bytes; the baseline moves its
// tail). The time is taken by hand around each batch (UseManualTime: two
// clock reads per ring/4 bytes of records), so the reclaim costs nothing
// in the figure - in production the daemon reclaims on another core. Know
// when reading the numbers: the zeroed lines are then hot in the producer's
// own cache, which flatters Spillway a little; the producer->consumer
// benchmarks carry the real cross-core cost of reclaiming.
template <class Sys, class SendFn>
void run_send(benchmark::State &st, Sys &sys, uint32_t len, SendFn send,
	      const char *bl_name)
{
	const int64_t batch = std::max<int64_t>(1, (int64_t)(g_cfg.ring_bytes / 4 / rec_span(len)));
	Payload pl(len);
	uint64_t seq = 0;
	double timed = 0;
	int64_t err = 0;

	while (st.KeepRunningBatch(batch)) {
		Clock::time_point t0 = Clock::now();
		err = send_batch(send, pl, len, batch, seq);
		Clock::time_point t1 = Clock::now();
		st.SetIterationTime(seconds_between(t0, t1));
		timed += seconds_between(t0, t1);
		if (err) {
			// -EAGAIN here means reclaim did not free a ring's worth.
			st.SkipWithError(err_text("send", err).c_str());
			break;
		}
		if ((err = sys.reclaim_all()) < 0) {
			st.SkipWithError(err_text("reclaim", err).c_str());
			break;
		}
	}
	if (err)
		return;
	st.SetItemsProcessed(st.iterations());
	st.SetBytesProcessed(st.iterations() * (int64_t)len);
	if (bl_name)
		report_vs_baseline(st, bl_name, (double)st.iterations(), timed);
}

// --- driver 2: one consumer reading pre-filled records -----------------------------
// Fill the ring once (send until -EAGAIN, untimed), then read it over and over:
// at the end, rewind to the first record (once per ring's worth of records).
// One benchmark iteration = one record delivered, in batches of kPollMax.
template <class Sys>
void run_poll(benchmark::State &st, Sys &sys, uint32_t len, const char *bl_name)
{
	Payload pl(len);
	int64_t filled = fill_ring(sys, pl, len);

	if (filled < 0) {
		st.SkipWithError(err_text("fill", filled).c_str());
		return;
	}
	if (filled == 0) {
		st.SkipWithError("fill: not one record fits");
		return;
	}

	RecordCheck chk(len);
	int64_t err = 0;
	Clock::time_point t0 = Clock::now();
	while (st.KeepRunningBatch(kPollMax)) {
		int want = kPollMax, empty = 0;
		while (want > 0) {
			int n = sys.poll(check_record, &chk, want);
			if (n > 0) {
				want -= n;
				empty = 0;
				continue;
			}
			if (n < 0 || ++empty > 1) { // empty right after a rewind: broken
				err = n < 0 ? n : -ENODATA;
				break;
			}
			if ((err = sys.rewind()) < 0)
				break;
			chk.next_seq = 0;
		}
		if (err) {
			st.SkipWithError(err_text("poll", err).c_str());
			break;
		}
	}
	Clock::time_point t1 = Clock::now();
	if (err)
		return;
	if (chk.bad) {
		st.SkipWithError("poll: records with a wrong length, sequence or timestamp");
		return;
	}
	st.SetItemsProcessed(st.iterations());
	st.SetBytesProcessed(st.iterations() * (int64_t)len);
	st.counters["filled_records"] = (double)filled;
	if (bl_name)
		report_vs_baseline(st, bl_name, (double)st.iterations(), seconds_between(t0, t1));
}

// --- driver 3: producer -> consumer on two pinned cores ----------------------------
// The benchmark thread (pinned to the producer PU at startup) sends one record
// per iteration; a consumer thread, started once per benchmark run and pinned
// to the other PU, polls them and calls Sys::consumer_maintain after each
// batch (Spillway: reclaim up to its position every ring/4 bytes). Both sides
// spin with _mm_pause, never sleep. The last iteration waits until the
// consumer has seen every record, so the measured (real) time runs from the
// first send to the last record consumed.
struct alignas(128) PcFlag {
	std::atomic<int> v{0};
};

template <class Sys>
void run_pc(benchmark::State &st, Sys &sys, uint32_t len, const char *bl_name)
{
	if (!topo_have_peer()) {
		st.SkipWithError("needs two PUs");
		return;
	}
	const int64_t total = st.max_iterations;
	PcFlag go, done, stop;
	int64_t cons_err = 0;
	bool cons_pinned = false;
	RecordCheck chk(len);

	std::thread consumer([&] {
		cons_pinned = topo_pin_peer();
		int64_t got = 0;

		// Acquire: pairs with the release store of go below; nothing is
		// published through it but the start.
		while (!go.v.load(std::memory_order_acquire))
			cpu_relax();
		while (got < total) {
			int n = sys.poll(check_record, &chk, kPollMax);
			if (n > 0) {
				got += n;
				int r = sys.consumer_maintain();
				if (r < 0) {
					cons_err = r;
					break;
				}
				continue;
			}
			if (n < 0) {
				cons_err = n;
				break;
			}
			// Relaxed: only a request to quit (the producer failed).
			if (stop.v.load(std::memory_order_relaxed))
				break;
			cpu_relax();
		}
		// Release: publishes cons_err and chk; pairs with the acquire
		// loads of done by the producer.
		done.v.store(1, std::memory_order_release);
	});

	Payload pl(len);
	int64_t i = 0;
	std::string err;
	go.v.store(1, std::memory_order_release);
	Clock::time_point t0 = Clock::now();
	for (auto _ : st) {
		int64_t r;
		Stall stalled;

		pl.set_seq((uint64_t)i);
		while ((r = sys.send(pl.data(), len)) == -EAGAIN) {
			if (done.v.load(std::memory_order_acquire) || stalled()) {
				err = "send: ring stayed full (consumer gone or stalled)";
				break;
			}
			cpu_relax();
		}
		if (err.empty() && r < 0)
			err = err_text("send", r);
		if (err.empty() && ++i == total) {
			Stall waited;
			while (!done.v.load(std::memory_order_acquire)) {
				if (waited()) {
					err = "consumer stalled before the last record";
					break;
				}
				cpu_relax();
			}
		}
		if (!err.empty()) {
			st.SkipWithError(err.c_str());
			break;
		}
	}
	Clock::time_point t1 = Clock::now();
	// Relaxed: a request to quit only; join() below is the synchronisation.
	stop.v.store(1, std::memory_order_relaxed);
	consumer.join();
	if (!err.empty())
		return;
	if (cons_err) {
		st.SkipWithError(err_text("consumer", cons_err).c_str());
		return;
	}
	if (chk.bad || chk.next_seq != (uint64_t)total) {
		st.SkipWithError("consumer: records lost, duplicated or malformed");
		return;
	}
	if (!cons_pinned)
		st.SetLabel("consumer NOT pinned");
	st.SetItemsProcessed(st.iterations());
	st.SetBytesProcessed(st.iterations() * (int64_t)len);
	if (bl_name)
		report_vs_baseline(st, bl_name, (double)st.iterations(), seconds_between(t0, t1));
}

} // namespace spwb

#endif
