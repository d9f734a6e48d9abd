// SPDX-License-Identifier: MIT
// spillway_bench.cc - main() of the Spillway benchmark harness.
//
//   build/bench/spillway_bench [--spw_* flags] [google-benchmark flags]
//
// Before the benchmarks: pick two PUs with hwloc, pin the main thread to the
// first, measure the cache-line round trip between them, make a temp dir
// under /dev/shm for every topic and baseline ring (removed at exit). Then
// run, in this order so each baseline is known before its Spillway twin:
//   bl_send/N   spw_send/N   spw_send_excl/N   spw_send_at/N   spw_claim_commit/64
//   send_pair/N send_pair_excl/N claim_pair/64        the same, paired with bl_send
//                                                    one producer, no reader
//   bl_poll/N   spw_poll/N  spw_peek/N                one consumer, pre-filled
//   poll_pair/N peek_pair/N                           the same, paired with bl_poll
//                                                     (spw_peek: peek/release)
//   bl_pc/N     spw_pc/N                              producer -> consumer, 2 PUs
// Every Spillway benchmark carries a "vs_baseline" counter (its items/s over
// the baseline twin's median items/s), and a table of medians and ratios is
// printed at the end. Defaults: 5 repetitions of >= 0.3 s, aggregates only
// (medians, means, stddev, cv); any --benchmark_repetitions,
// --benchmark_min_time or --benchmark_*aggregates_only given wins.
#include "bench.h"

#include <ftw.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace spwb {

Config g_cfg;

namespace {

const int kSizes[] = {8, 64, 256, 1024, 4096};
const int kPollSizes[] = {64, 1024};
const int kClaimSizes[] = {64};

// --- the temp dir ------------------------------------------------------------------
char g_tmpdir[64];

int rm_one(const char *path, const struct stat *, int, struct FTW *)
{
	remove(path);
	return 0;
}

void remove_tmpdir()
{
	if (g_tmpdir[0])
		nftw(g_tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_tmpdir[0] = 0;
}

// Best effort on Ctrl-C / kill / a crash: nftw is not async-signal-safe, but the
// process is about to die anyway and a leaked dir in /dev/shm costs memory.
void on_signal(int sig)
{
	remove_tmpdir();
	signal(sig, SIG_DFL);
	raise(sig);
}

// --- results: medians of items/s, per "function/arg" --------------------------------
std::mutex g_res_mu; // the runs are reported on the main thread; cheap anyway
std::map<std::string, double> g_rates;

double median_of(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Wraps the display reporter google-benchmark would have made (so
// --benchmark_format still works) and keeps each benchmark's median
// items_per_second: the "median" aggregate when repetitions > 1, else the
// median of the runs it got.
class TeeReporter : public benchmark::BenchmarkReporter {
public:
	explicit TeeReporter(benchmark::BenchmarkReporter *inner) : inner_(inner) {}

	bool ReportContext(const Context &c) override { return inner_->ReportContext(c); }
	void Finalize() override { inner_->Finalize(); }

	void ReportRuns(const std::vector<Run> &runs) override
	{
		std::map<std::string, std::vector<double>> iter;
		std::map<std::string, double> med;

		for (const Run &r : runs) {
			auto c = r.counters.find("items_per_second");
			if (r.error_occurred || c == r.counters.end())
				continue;
			std::string key = r.run_name.function_name + "/" + r.run_name.args;
			if (r.run_type == Run::RT_Aggregate) {
				if (r.aggregate_name == "median")
					med[key] = c->second.value;
			} else {
				iter[key].push_back(c->second.value);
			}
		}
		{
			std::lock_guard<std::mutex> lk(g_res_mu);
			for (auto &kv : iter)
				if (!med.count(kv.first))
					g_rates[kv.first] = median_of(kv.second);
			for (auto &kv : med)
				g_rates[kv.first] = kv.second;
		}
		inner_->ReportRuns(runs);
	}

private:
	std::unique_ptr<benchmark::BenchmarkReporter> inner_;
};

double rate_of(const std::string &key)
{
	std::lock_guard<std::mutex> lk(g_res_mu);
	auto it = g_rates.find(key);
	return it == g_rates.end() ? 0 : it->second;
}

std::string fmt_rate(double r)
{
	char b[32];
	if (r <= 0)
		return "-";
	if (r >= 1e6)
		snprintf(b, sizeof(b), "%.2f M/s", r / 1e6);
	else
		snprintf(b, sizeof(b), "%.1f k/s", r / 1e3);
	return b;
}

void print_summary(FILE *out)
{
	struct Row {
		const char *what, *spw, *bl;
		const int *sizes;
		size_t n;
	};
	const Row rows[] = {
		{"send (no reader)", "spw_send", "bl_send", kSizes, 5},
		{"send, exclusive producer", "spw_send_excl", "bl_send", kSizes, 5},
		{"claim+commit", "spw_claim_commit", "bl_send", kClaimSizes, 1},
		{"poll (pre-filled)", "spw_poll", "bl_poll", kPollSizes, 2},
		{"peek+release (pre-filled)", "spw_peek", "bl_poll", kPollSizes, 2},
		{"producer->consumer", "spw_pc", "bl_pc", kSizes, 5},
	};
	bool any = false;

	for (const Row &row : rows) {
		for (size_t i = 0; i < row.n; i++) {
			std::string arg = "/" + std::to_string(row.sizes[i]);
			double s = rate_of(row.spw + arg), b = rate_of(row.bl + arg);
			if (s <= 0 && b <= 0)
				continue;
			if (!any) {
				fprintf(out, "\nSpillway vs bare SPSC baseline, median records/s (ring %llu KiB):\n",
					(unsigned long long)(g_cfg.ring_bytes >> 10));
				fprintf(out, "%-20s %6s %14s %14s %8s\n", "benchmark", "bytes", "spillway",
					"baseline", "ratio");
				any = true;
			}
			char ratio[16] = "-";
			if (s > 0 && b > 0)
				snprintf(ratio, sizeof(ratio), "%.3f", s / b);
			fprintf(out, "%-20s %6d %14s %14s %8s\n", row.what, row.sizes[i],
				fmt_rate(s).c_str(), fmt_rate(b).c_str(), ratio);
		}
	}
	fflush(out);
}

// --- flags -----------------------------------------------------------------------------
bool parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return false;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

bool starts_with(const char *s, const char *prefix)
{
	return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

void print_own_help()
{
	printf("Spillway harness flags (before google-benchmark's own):\n"
	       "  --spw_ring_bytes=N   ring size of every topic and baseline ring, a power of\n"
	       "                       two >= 64K (K/M/G suffixes); default 1M\n"
	       "  --spw_cpus=A,B       producer and consumer PUs (OS indexes); default: hwloc picks\n"
	       "                       two PUs on different cores, sharing the deepest cache\n"
	       "  --spw_rtt_trips=N    round trips per cache-line RTT run; default 1000000\n"
	       "  --spw_baseline_prefetch=N  baseline producer write-prefetches N bytes\n"
	       "                       ahead (the library does 2048); default 0 = off\n"
	       "Defaults added unless given: --benchmark_repetitions=5\n"
	       "  --benchmark_min_time=0.3 --benchmark_report_aggregates_only=true\n\n");
}

// Takes the --spw_* flags out of argv; returns false on a bad one.
bool parse_own_flags(std::vector<char *> &args)
{
	std::vector<char *> rest;
	for (char *a : args) {
		if (starts_with(a, "--spw_ring_bytes=")) {
			uint64_t v;
			if (!parse_bytes(a + 17, &v) || v < SPW_RING_MIN_BYTES || (v & (v - 1))) {
				fprintf(stderr, "%s: a power of two >= 64K, please\n", a);
				return false;
			}
			g_cfg.ring_bytes = v;
		} else if (starts_with(a, "--spw_cpus=")) {
			g_cfg.cpus = a + 11;
		} else if (starts_with(a, "--spw_rtt_trips=")) {
			uint64_t v;
			if (!parse_bytes(a + 16, &v) || v == 0) {
				fprintf(stderr, "%s: a positive count, please\n", a);
				return false;
			}
			g_cfg.rtt_trips = v;
		} else if (starts_with(a, "--spw_baseline_prefetch=")) {
			uint64_t v;
			if (!parse_bytes(a + 24, &v) || v >= g_cfg.ring_bytes) {
				fprintf(stderr, "%s: bytes ahead, below the ring size\n", a);
				return false;
			}
			g_cfg.bl_prefetch = (uint32_t)v;
		} else if (starts_with(a, "--spw_")) {
			fprintf(stderr, "unknown flag %s (try --help)\n", a);
			return false;
		} else {
			if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0)
				print_own_help();
			rest.push_back(a);
		}
	}
	args = rest;
	return true;
}

bool has_flag(const std::vector<char *> &args, const char *prefix)
{
	for (size_t i = 1; i < args.size() && args[i]; i++)
		if (starts_with(args[i], prefix))
			return true;
	return false;
}

// Console output goes to stdout; with --benchmark_format=json/csv stdout must
// stay machine-readable, so our own lines go to stderr then.
bool console_format(const std::vector<char *> &args)
{
	for (size_t i = 1; i < args.size() && args[i]; i++)
		if (starts_with(args[i], "--benchmark_format="))
			return std::strcmp(args[i] + 19, "console") == 0;
	return true;
}

void register_all()
{
	using benchmark::RegisterBenchmark;
	auto sizes = [](benchmark::internal::Benchmark *b, const int *v, size_t n) {
		for (size_t i = 0; i < n; i++)
			b->Arg(v[i]);
	};
	// No reader: manual time (reclaim between batches is not timed, see
	// run_send in bench.h).
	sizes(RegisterBenchmark("bl_send", bm_bl_send)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("spw_send", bm_spw_send)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("spw_send_excl", bm_spw_send_excl)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("spw_send_at", bm_spw_send_at)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("spw_claim_commit", bm_spw_claim_commit)->UseManualTime(),
	      kClaimSizes, 1);
	// The two above, batch for batch in one run (spw_benches.cc send_pair).
	sizes(RegisterBenchmark("send_pair", bm_send_pair)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("send_pair_excl", bm_send_pair_excl)->UseManualTime(), kSizes, 5);
	sizes(RegisterBenchmark("claim_pair", bm_claim_pair)->UseManualTime(), kClaimSizes, 1);
	sizes(RegisterBenchmark("bl_poll", bm_bl_poll)->UseRealTime(), kPollSizes, 2);
	sizes(RegisterBenchmark("spw_poll", bm_spw_poll)->UseRealTime(), kPollSizes, 2);
	sizes(RegisterBenchmark("spw_peek", bm_spw_peek)->UseRealTime(), kPollSizes, 2);
	// The two above, pass for pass with bl_poll in one run (spw_benches.cc poll_pair).
	sizes(RegisterBenchmark("poll_pair", bm_poll_pair)->UseManualTime(), kPollSizes, 2);
	sizes(RegisterBenchmark("peek_pair", bm_peek_pair)->UseManualTime(), kPollSizes, 2);
	// Two threads: wall-clock time from the first send to the last record
	// consumed (the main thread's CPU time would mean nothing).
	sizes(RegisterBenchmark("bl_pc", bm_bl_pc)->UseRealTime(), kSizes, 5);
	sizes(RegisterBenchmark("spw_pc", bm_spw_pc)->UseRealTime(), kSizes, 5);
	register_spill();
}

} // namespace

std::string unique_name(const char *prefix)
{
	static std::atomic<unsigned> n{0};
	// Relaxed: only uniqueness matters.
	return std::string(prefix) + "-" + std::to_string(n.fetch_add(1, std::memory_order_relaxed));
}

void report_vs_baseline(benchmark::State &st, const std::string &bl_name, double items,
			double seconds)
{
	double b = rate_of(bl_name);
	if (b > 0 && seconds > 0)
		st.counters["vs_baseline"] = items / seconds / b;
}

} // namespace spwb

int main(int argc, char **argv)
{
	using namespace spwb;
	std::vector<char *> args(argv, argv + argc);

	if (!parse_own_flags(args))
		return 2;
	static char rep_default[] = "--benchmark_repetitions=5";
	static char agg_default[] = "--benchmark_report_aggregates_only=true";
	// 0.3 s a repetition keeps `make bench` (25 benchmarks x 5 repetitions,
	// plus the untimed reclaims and the iteration-count probing) well under
	// 3 minutes; google-benchmark's own default is 0.5 s.
	static char time_default[] = "--benchmark_min_time=0.3";
	if (!has_flag(args, "--benchmark_repetitions"))
		args.push_back(rep_default);
	if (!has_flag(args, "--benchmark_min_time"))
		args.push_back(time_default);
	if (!has_flag(args, "--benchmark_report_aggregates_only") &&
	    !has_flag(args, "--benchmark_display_aggregates_only"))
		args.push_back(agg_default);
	FILE *info = console_format(args) ? stdout : stderr;
	int n = (int)args.size();
	args.push_back(nullptr);
	benchmark::Initialize(&n, args.data());
	if (benchmark::ReportUnrecognizedArguments(n, args.data()))
		return 2;

	std::snprintf(g_tmpdir, sizeof(g_tmpdir), "/dev/shm/spillway-bench.XXXXXX");
	if (!mkdtemp(g_tmpdir)) {
		std::fprintf(stderr, "mkdtemp %s: %s\n", g_tmpdir, std::strerror(errno));
		return 1;
	}
	g_cfg.shm_dir = g_tmpdir;
	std::atexit(remove_tmpdir);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGABRT, on_signal);

	if (!topo_setup(info))
		return 1;
	std::string rtt_runs;
	double rtt = -1;
	if (!has_flag(args, "--benchmark_list_tests"))
		rtt = topo_measure_rtt(info, &rtt_runs);
	std::fprintf(info, "topics and baseline rings: %s, ring %llu KiB\n", g_tmpdir,
		     (unsigned long long)(g_cfg.ring_bytes >> 10));
	std::fprintf(info, "baseline timestamps: %s\n\n", baseline_clock_desc().c_str());
	std::fflush(info);

	char buf[64];
	benchmark::AddCustomContext("spw_producer_pu", topo_main_desc());
	benchmark::AddCustomContext("spw_consumer_pu", topo_peer_desc());
	benchmark::AddCustomContext("spw_pus_share", topo_link_desc());
	std::snprintf(buf, sizeof(buf), "%.1f", rtt);
	benchmark::AddCustomContext("spw_cacheline_rtt_ns_median", rtt > 0 ? buf : "n/a");
	benchmark::AddCustomContext("spw_cacheline_rtt_ns_runs", rtt_runs);
	benchmark::AddCustomContext("spw_ring_bytes", std::to_string(g_cfg.ring_bytes));
	benchmark::AddCustomContext("spw_poll_max", std::to_string(kPollMax));
	benchmark::AddCustomContext("spw_baseline_clock", baseline_clock_desc());
	benchmark::AddCustomContext("spw_baseline_prefetch_bytes", std::to_string(g_cfg.bl_prefetch));
	benchmark::AddCustomContext("spw_consumer_work",
				    "check len/seq/timestamp, memcpy the payload out");

	register_all();
	TeeReporter tee(benchmark::CreateDefaultDisplayReporter());
	benchmark::RunSpecifiedBenchmarks(&tee);
	print_summary(info);
	print_spill_summary(info);
	benchmark::Shutdown();
	remove_tmpdir();
	return 0;
}
