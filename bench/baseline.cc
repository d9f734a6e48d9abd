// SPDX-License-Identifier: MIT
// baseline.cc - the bare baseline: a minimal single-producer single-consumer
// copy ring in plain C++, the floor Spillway is measured against.
//
// Same framing as Spillway: 8-byte aligned records with a 16-byte header
// (u64 length word + u64 timestamp), a padding record when a record does not
// fit before the ring's end, the same ring size, the memory a MAP_SHARED
// mapping of a file in the same /dev/shm directory (pre-faulted, like
// spw_topic_create), counters each alone on a 128-byte line.
//
// The protocol is the classic SPSC one, nothing more:
//  1. The producer writes header and payload, then publishes head (release).
//  2. The consumer reads head (acquire) only when it has caught up with the
//     last value it saw, delivers the records below it, then publishes its
//     tail (release) once per batch of up to kPollMax records.
//  3. The producer waits for space: it reloads tail (acquire) only when its
//     cached tail says the record does not fit.
// No claim CAS, no commit word, no zeroing, no validation, no bounds checks:
// everything Spillway does beyond this is what the ratio measures.
//
// Option (--spw_baseline_prefetch=N, default off): write-prefetch two lines
// N bytes ahead of head after each record, as the library's claim() does
// 2048 bytes ahead of its tail; lets one see how much of a ratio is that
// trick rather than the protocol.
//
// Calls stay calls: send() and poll() are noinline and records are handed to
// the consumer through the same spw_record_fn callback Spillway uses, so the
// comparison is call for call (libspillway.a is not inlined into the bench).
//
// Timestamps: one per record, taken the way the library takes them
// (ring/clock.c, ring_clock_now): rdtsc scaled to CLOCK_REALTIME ns with a
// 32.32 multiplier calibrated once per process, re-synced to
// clock_gettime(CLOCK_REALTIME) every ~1 ms, never backwards; plain
// clock_gettime(CLOCK_REALTIME) when the CPU lacks an invariant TSC, as the
// library does. Using the same mechanism keeps the clock's cost out of the
// ratio (rdtsc ~12 ns vs clock_gettime ~30 ns would otherwise dominate the
// 64 B figures); re-implemented here because bench/ sees only spillway.h.
#include "bench.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <x86intrin.h>

#include <ctime>
#include <fstream>
#include <new>
#include <mutex>

namespace spwb {
namespace {

// --- the clock ---------------------------------------------------------------------
uint64_t realtime_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t monotonic_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t g_tsc_mult; // 32.32 ns per tick; 0 = use clock_gettime
std::once_flag g_tsc_once;

bool tsc_invariant()
{
	std::ifstream f("/proc/cpuinfo");
	std::string line;

	while (std::getline(f, line)) {
		if (line.compare(0, 5, "flags") != 0)
			continue;
		return line.find(" constant_tsc") != std::string::npos &&
		       line.find(" nonstop_tsc") != std::string::npos;
	}
	return false;
}

void tsc_calibrate()
{
	if (!tsc_invariant())
		return;
	uint64_t n0 = monotonic_ns(), c0 = __rdtsc(), n1;
	do
		n1 = monotonic_ns();
	while (n1 - n0 < 2000000);
	uint64_t c1 = __rdtsc();
	if (c1 > c0)
		g_tsc_mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (c1 - c0));
}

class BlClock {
public:
	BlClock()
	{
		std::call_once(g_tsc_once, tsc_calibrate);
		mult_ = g_tsc_mult;
		resync_ticks_ = mult_ ? (1000000ull << 32) / mult_ : 0;
		resync();
	}

	uint64_t now()
	{
		uint64_t ns;

		if (mult_) {
			uint64_t d = __rdtsc() - base_tsc_;
			if (__builtin_expect(d >= resync_ticks_, 0)) {
				resync();
				d = 0;
			}
			ns = base_ns_ + (uint64_t)(((unsigned __int128)d * mult_) >> 32);
		} else {
			ns = realtime_ns();
		}
		if (ns < last_ns_)
			ns = last_ns_;
		last_ns_ = ns;
		return ns;
	}

private:
	void resync()
	{
		base_tsc_ = __rdtsc();
		base_ns_ = realtime_ns();
	}
	uint64_t base_tsc_ = 0, base_ns_ = 0, last_ns_ = 0, mult_ = 0, resync_ticks_ = 0;
};

// --- the ring ------------------------------------------------------------------------
constexpr uint64_t kPadBit = 1ull << 32; // in the length word: a padding record

struct BlHeader {
	uint64_t word; // bits 0..31 payload length, or the padding's span with kPadBit
	uint64_t timestamp_ns;
};

// The control page: one writer per counter, each alone on its own line.
struct BlCtrl {
	alignas(128) std::atomic<uint64_t> head; // producer writes, consumer reads
	alignas(128) std::atomic<uint64_t> tail; // consumer writes, producer reads
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "lock-free counters");

class BlRing {
public:
	BlRing() = default;
	BlRing(const BlRing &) = delete;
	BlRing &operator=(const BlRing &) = delete;
	~BlRing()
	{
		if (map_ != MAP_FAILED)
			munmap(map_, map_bytes_);
	}

	// Map 4 KiB of control page + ring_bytes from a file in the shm dir,
	// unlinked at once (the mapping keeps it), and fault every page in.
	int open(uint64_t ring_bytes)
	{
		std::string path = g_cfg.shm_dir + "/" + unique_name("bl") + ".ring";
		int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		unlink(path.c_str());
		map_bytes_ = 4096 + ring_bytes;
		int r = ftruncate(fd, (off_t)map_bytes_) < 0 ? -errno : 0;
		if (r == 0) {
			map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_POPULATE, fd, 0);
			if (map_ == MAP_FAILED)
				r = -errno;
		}
		close(fd);
		if (r < 0)
			return r;
		std::memset(map_, 0, map_bytes_);
		ctrl = new (map_) BlCtrl;
		ctrl->head.store(0, std::memory_order_relaxed);
		ctrl->tail.store(0, std::memory_order_relaxed);
		data = static_cast<unsigned char *>(map_) + 4096;
		bytes = ring_bytes;
		mask = ring_bytes - 1;
		return 0;
	}

	BlCtrl *ctrl = nullptr;
	unsigned char *data = nullptr;
	uint64_t bytes = 0, mask = 0;

private:
	void *map_ = MAP_FAILED;
	size_t map_bytes_ = 0;
};

class BlProducer {
public:
	explicit BlProducer(BlRing &r) : r_(r), prefetch_(g_cfg.bl_prefetch) {}

	__attribute__((noinline)) int64_t send(const void *data, uint32_t len)
	{
		const uint64_t span = rec_span(len);
		uint64_t off = head_ & r_.mask;
		const uint64_t room = r_.bytes - off;
		const uint64_t need = span <= room ? span : room + span;

		if (head_ + need - tail_cache_ > r_.bytes) {
			// Acquire: pairs with the consumer's release store of tail
			// in BlConsumer::poll(); its reads below tail are done.
			tail_cache_ = r_.ctrl->tail.load(std::memory_order_acquire);
			if (head_ + need - tail_cache_ > r_.bytes)
				return -EAGAIN;
		}
		if (span > room) {
			auto *pad = reinterpret_cast<BlHeader *>(r_.data + off);
			pad->word = kPadBit | room;
			head_ += room;
			off = 0;
		}
		auto *h = reinterpret_cast<BlHeader *>(r_.data + off);
		h->timestamp_ns = clk_.now();
		h->word = len;
		std::memcpy(h + 1, data, len);
		const int64_t pos = (int64_t)head_;
		head_ += span;
		if (prefetch_) {
			__builtin_prefetch(r_.data + ((head_ + prefetch_) & r_.mask), 1, 3);
			__builtin_prefetch(r_.data + ((head_ + prefetch_ + 64) & r_.mask), 1, 3);
		}
		// Release: publishes the header and payload written above; pairs
		// with the acquire load of head in BlConsumer::poll().
		r_.ctrl->head.store(head_, std::memory_order_release);
		return pos;
	}

	// No reader: the producer thread frees what it wrote. Relaxed is
	// enough: the only reader of tail is this same thread.
	int reclaim_all()
	{
		r_.ctrl->tail.store(head_, std::memory_order_relaxed);
		return 0;
	}

private:
	BlRing &r_;
	BlClock clk_;
	uint64_t prefetch_;
	uint64_t head_ = 0, tail_cache_ = 0;
};

class BlConsumer {
public:
	explicit BlConsumer(BlRing &r) : r_(r) {}

	__attribute__((noinline)) int poll(spw_record_fn fn, void *arg, int max)
	{
		if (pos_ == head_cache_) {
			// Acquire: pairs with the producer's release store of head
			// in BlProducer::send(); the records below it are complete.
			head_cache_ = r_.ctrl->head.load(std::memory_order_acquire);
			if (pos_ == head_cache_)
				return 0;
		}
		int n = 0;
		while (pos_ != head_cache_ && n < max) {
			const auto *h = reinterpret_cast<const BlHeader *>(r_.data + (pos_ & r_.mask));
			const uint64_t w = h->word;
			if (w & kPadBit) {
				pos_ += (uint32_t)w;
				continue;
			}
			spw_record rec;
			rec.position = (int64_t)pos_;
			rec.timestamp_ns = h->timestamp_ns;
			rec.data = h + 1;
			rec.len = (uint32_t)w;
			rec.flags = 0;
			pos_ += rec_span(rec.len);
			n++;
			if (fn(arg, &rec))
				break;
		}
		// Release: our reads of the records below pos are done; pairs
		// with the acquire load of tail in BlProducer::send().
		r_.ctrl->tail.store(pos_, std::memory_order_release);
		return n;
	}

	void rewind()
	{
		pos_ = 0;
		head_cache_ = 0;
	}

private:
	BlRing &r_;
	uint64_t pos_ = 0, head_cache_ = 0;
};

// The Sys the drivers in bench.h expect.
class BlSys {
public:
	BlSys() : prod_(ring_), cons_(ring_) {}
	int open() { return ring_.open(g_cfg.ring_bytes); }
	int64_t send(const void *d, uint32_t len) { return prod_.send(d, len); }
	int poll(spw_record_fn fn, void *arg, int max) { return cons_.poll(fn, arg, max); }
	int rewind()
	{
		cons_.rewind();
		return 0;
	}
	int reclaim_all() { return prod_.reclaim_all(); }
	int consumer_maintain() { return 0; } // tail is published in poll()

private:
	BlRing ring_;
	BlProducer prod_;
	BlConsumer cons_;
};

bool open_or_skip(benchmark::State &st, BlSys &sys)
{
	int r = sys.open();
	if (r < 0)
		st.SkipWithError(err_text("baseline ring", r).c_str());
	return r >= 0;
}

} // namespace

std::unique_ptr<PairSide> bl_pair_side()
{
	struct Side : PairSide {
		BlSys sys;
		int open() override { return sys.open(); }
		int64_t batch(Payload &pl, uint32_t len, int64_t n, uint64_t &seq) override
		{
			auto send = [this](const void *d, uint32_t l) { return sys.send(d, l); };
			return send_batch(send, pl, len, n, seq);
		}
		int reclaim() override { return sys.reclaim_all(); }
	};
	return std::make_unique<Side>();
}

std::unique_ptr<PollSide> bl_poll_side()
{
	struct Side : PollSide {
		BlSys sys;
		int open() override { return sys.open(); }
		int64_t fill(Payload &pl, uint32_t len) override { return fill_ring(sys, pl, len); }
		int64_t pass(RecordCheck &chk) override { return poll_pass(sys, chk); }
	};
	return std::make_unique<Side>();
}

void bm_bl_send(benchmark::State &st)
{
	BlSys sys;
	if (!open_or_skip(st, sys))
		return;
	run_send(st, sys, (uint32_t)st.range(0),
		 [&sys](const void *d, uint32_t l) { return sys.send(d, l); }, nullptr);
}

void bm_bl_poll(benchmark::State &st)
{
	BlSys sys;
	if (!open_or_skip(st, sys))
		return;
	run_poll(st, sys, (uint32_t)st.range(0), nullptr);
}

void bm_bl_pc(benchmark::State &st)
{
	BlSys sys;
	if (!open_or_skip(st, sys))
		return;
	run_pc(st, sys, (uint32_t)st.range(0), nullptr);
}

std::string baseline_clock_desc()
{
	std::call_once(g_tsc_once, tsc_calibrate);
	return g_tsc_mult ? "tsc scaled to CLOCK_REALTIME ns, re-synced every 1 ms (the library's mechanism)"
			  : "clock_gettime(CLOCK_REALTIME) (no invariant TSC; the library falls back the same way)";
}

} // namespace spwb
