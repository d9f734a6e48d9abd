// SPDX-License-Identifier: MIT
// spill_benches.cc - the daemon's benchmarks (issue "The spill daemon", 6):
//
//  spill_plain_write   the baseline: one file written sequentially with
//                      write(2) in 1 MiB blocks (the daemon's op size), then
//                      fdatasync, in the same directory as the segments.
//  spill_daemon        the same bytes produced into a topic as 1 KiB records
//                      as fast as the ring allows while spillwayd spills;
//                      time from the first send to durable == tail (so the
//                      final fdatasync is counted on both sides).
//  prod_nospill /      producer throughput (1 KiB records, blocking sends)
//  prod_spill          with the daemon only reclaiming (a no-spill topic: the
//                      ring's rate) and with it spilling to disk.
//  lat_nospill /       per-send latency percentiles of a producer paced at
//  lat_spill           ~200 MB/s of 256 B records (below the disk's rate, so
//                      it measures interference, not back-pressure).
//
// spillwayd is found through $SPW_DAEMON, else next to this binary's
// directory (build/bench/../spillwayd). Data goes to a temp dir under
// $SPW_BENCH_DATA_DIR or /var/tmp (a disk, not tmpfs).
#include "bench.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include <map>
#include <vector>

namespace spwb {
namespace {

constexpr uint64_t kSpillBytes = 512ull << 20;
constexpr uint64_t kRingBytes = 64ull << 20;
std::string g_data_root;
std::map<std::string, std::vector<double>> g_spill; // name -> per-run values

std::string daemon_path()
{
	const char *e = std::getenv("SPW_DAEMON");
	if (e && *e)
		return e;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return "spillwayd";
	self[n] = '\0';
	std::string s(self);
	s = s.substr(0, s.rfind('/'));
	return s + "/../spillwayd";
}

void rm_rf(const std::string &dir)
{
	std::string cmd = "rm -rf '" + dir + "'";
	if (std::system(cmd.c_str()) != 0)
		std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}

std::string make_data_dir()
{
	if (g_data_root.empty()) {
		const char *e = std::getenv("SPW_BENCH_DATA_DIR");
		std::string t = std::string(e && *e ? e : "/var/tmp") + "/spillway-bench.XXXXXX";
		std::vector<char> buf(t.begin(), t.end());
		buf.push_back('\0');
		if (!mkdtemp(buf.data()))
			return "";
		g_data_root = buf.data();
		std::atexit([] { rm_rf(g_data_root); });
	}
	std::string d = g_data_root + "/" + unique_name("d");
	mkdir(d.c_str(), 0755);
	return d;
}

struct Daemon {
	pid_t pid = -1;
	bool start(const std::string &data, const std::string &shm)
	{
		std::string bin = daemon_path();
		pid = fork();
		if (pid == 0) {
			int nul = open("/dev/null", O_WRONLY);
			dup2(nul, 2);
			execl(bin.c_str(), bin.c_str(), "--foreground", "--log-level", "error",
			      "--data-dir", data.c_str(), "--shm-dir", shm.c_str(), (char *)nullptr);
			_exit(127);
		}
		return pid > 0;
	}
	void stop()
	{
		if (pid <= 0)
			return;
		kill(pid, SIGTERM);
		int st;
		waitpid(pid, &st, 0);
		pid = -1;
	}
	~Daemon() { stop(); }
};

double now_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// A topic in its own shm dir, attached by a daemon on its own data dir.
struct Setup {
	std::string shm, data, name = "b";
	Daemon d;
	spw_topic *t = nullptr;
	spw_producer *p = nullptr;
	bool ok = false;

	Setup(bool spill)
	{
		shm = g_cfg.shm_dir + "/" + unique_name("s");
		data = make_data_dir();
		if (data.empty() || mkdir(shm.c_str(), 0755))
			return;
		spw_topic_config c{};
		c.ring_bytes = kRingBytes;
		c.segment_bytes = 1ull << 30;
		c.flags = spill ? 0 : SPW_TOPIC_NO_SPILL;
		if (spw_topic_create(shm.c_str(), name.c_str(), &c) ||
		    spw_topic_open(shm.c_str(), name.c_str(), 0, &t) || spw_producer_open(t, &p) ||
		    !d.start(data, shm))
			return;
		struct spw_topic_info in;
		for (int i = 0; i < 500; i++) {
			spw_topic_info(t, &in);
			if (in.daemon_pid)
				break;
			usleep(10000);
		}
		ok = in.daemon_pid != 0;
	}
	~Setup()
	{
		d.stop();
		spw_producer_close(p);
		spw_topic_close(t);
		spw_topic_delete(shm.c_str(), name.c_str());
		rmdir(shm.c_str());
		rm_rf(data);
	}
	// Blocking 1 KiB sends of `bytes` payload; false on an error.
	bool produce(uint64_t bytes, uint32_t rec)
	{
		std::vector<char> buf(rec, 'x');
		for (uint64_t done = 0; done < bytes; done += rec)
			if (spw_producer_send_wait(p, buf.data(), rec, 10000000000ll) < 0)
				return false;
		return true;
	}
	bool wait_counter(bool durable, double timeout_s)
	{
		struct spw_topic_info in;
		double end = now_s() + timeout_s;
		do {
			spw_topic_info(t, &in);
			if ((durable ? in.durable : in.spilled) >= in.tail)
				return true;
			usleep(200);
		} while (now_s() < end);
		return false;
	}
};

void record(const std::string &name, double v) { g_spill[name].push_back(v); }

void bm_plain_write(benchmark::State &st)
{
	std::string dir = make_data_dir();
	std::vector<char> buf(1u << 20, 'x');
	for (auto _ : st) {
		std::string f = dir + "/" + unique_name("plain");
		double t0 = now_s();
		int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		bool ok = fd >= 0;
		for (uint64_t done = 0; ok && done < kSpillBytes; done += buf.size())
			ok = write(fd, buf.data(), buf.size()) == (ssize_t)buf.size();
		ok = ok && fdatasync(fd) == 0;
		double dt = now_s() - t0;
		if (fd >= 0)
			close(fd);
		unlink(f.c_str());
		if (!ok) {
			st.SkipWithError("plain write failed");
			break;
		}
		st.SetIterationTime(dt);
		record("plain_write_Bps", kSpillBytes / dt);
	}
	st.SetBytesProcessed((int64_t)(kSpillBytes * st.iterations()));
	rm_rf(dir);
}

void bm_spill_daemon(benchmark::State &st)
{
	for (auto _ : st) {
		Setup s(true);
		if (!s.ok) {
			st.SkipWithError("daemon setup failed");
			break;
		}
		double t0 = now_s();
		bool ok = s.produce(kSpillBytes, 1024) && s.wait_counter(true, 120);
		double dt = now_s() - t0;
		if (!ok) {
			st.SkipWithError("spill did not complete");
			break;
		}
		st.SetIterationTime(dt);
		record("spill_Bps", kSpillBytes / dt);
	}
	st.SetBytesProcessed((int64_t)(kSpillBytes * st.iterations()));
}

void bm_prod(benchmark::State &st, bool spill)
{
	for (auto _ : st) {
		Setup s(spill);
		if (!s.ok) {
			st.SkipWithError("daemon setup failed");
			break;
		}
		double t0 = now_s();
		bool ok = s.produce(kSpillBytes, 1024);
		double dt = now_s() - t0;
		if (!ok) {
			st.SkipWithError("produce failed");
			break;
		}
		st.SetIterationTime(dt);
		record(spill ? "prod_spill_Bps" : "prod_nospill_Bps", kSpillBytes / dt);
	}
	st.SetBytesProcessed((int64_t)(kSpillBytes * st.iterations()));
}

void bm_lat(benchmark::State &st, bool spill)
{
	const uint32_t rec = 256;
	const uint64_t n = 400000;               // 100 MiB, ~0.5 s
	const double gap_ns = rec / 0.2;          // ~200 MB/s
	for (auto _ : st) {
		Setup s(spill);
		if (!s.ok) {
			st.SkipWithError("daemon setup failed");
			break;
		}
		std::vector<char> buf(rec, 'y');
		std::vector<uint64_t> lat(n);
		// TSC ticks per ns from a short calibration.
		double c0 = now_s();
		uint64_t k0 = __rdtsc();
		usleep(20000);
		double ticks_per_ns = (double)(__rdtsc() - k0) / ((now_s() - c0) * 1e9);
		uint64_t next = __rdtsc();
		uint64_t gap = (uint64_t)(gap_ns * ticks_per_ns);
		double t0 = now_s();
		bool ok = true;
		for (uint64_t i = 0; i < n && ok; i++) {
			while (__rdtsc() < next)
				_mm_pause();
			next += gap;
			uint64_t a = __rdtsc();
			ok = spw_producer_send_wait(s.p, buf.data(), rec, 10000000000ll) >= 0;
			lat[i] = __rdtsc() - a;
		}
		double dt = now_s() - t0;
		if (!ok) {
			st.SkipWithError("send failed");
			break;
		}
		std::sort(lat.begin(), lat.end());
		double p50 = lat[n / 2] / ticks_per_ns, p99 = lat[n * 99 / 100] / ticks_per_ns;
		double p999 = lat[n * 999 / 1000] / ticks_per_ns;
		st.SetIterationTime(dt);
		st.counters["p50_ns"] = p50;
		st.counters["p99_ns"] = p99;
		st.counters["p999_ns"] = p999;
		record(spill ? "lat_spill_p99_ns" : "lat_nospill_p99_ns", p99);
		record(spill ? "lat_spill_p50_ns" : "lat_nospill_p50_ns", p50);
	}
}

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

} // namespace

void register_spill()
{
	using benchmark::RegisterBenchmark;
	// One long iteration per repetition: each run is a whole 512 MiB job.
	RegisterBenchmark("spill_plain_write", bm_plain_write)->Iterations(1)->UseManualTime();
	RegisterBenchmark("spill_daemon", bm_spill_daemon)->Iterations(1)->UseManualTime();
	RegisterBenchmark("prod_nospill", [](benchmark::State &s) { bm_prod(s, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("prod_spill", [](benchmark::State &s) { bm_prod(s, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("lat_nospill", [](benchmark::State &s) { bm_lat(s, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("lat_spill", [](benchmark::State &s) { bm_lat(s, true); })
		->Iterations(1)->UseManualTime();
}

void print_spill_summary(FILE *out)
{
	double plain = median(g_spill["plain_write_Bps"]), spill = median(g_spill["spill_Bps"]);
	double pn = median(g_spill["prod_nospill_Bps"]), ps = median(g_spill["prod_spill_Bps"]);
	double ln = median(g_spill["lat_nospill_p99_ns"]), ls = median(g_spill["lat_spill_p99_ns"]);
	if (plain <= 0 && pn <= 0 && ln <= 0)
		return;
	std::fprintf(out, "\nspill (medians; data dir %s)\n", g_data_root.c_str());
	if (plain > 0 && spill > 0)
		std::fprintf(out, "  spill throughput      %8.0f MB/s vs plain writer %8.0f MB/s: %.2fx (goal >= 0.9x)\n",
			     spill / 1e6, plain / 1e6, spill / plain);
	if (pn > 0 && ps > 0) {
		double lim = std::min(pn, plain > 0 ? plain : pn);
		std::fprintf(out, "  producers, spilling   %8.0f MB/s; ring alone %8.0f MB/s; vs min(ring, disk): %.2fx (goal >= 0.9x)\n",
			     ps / 1e6, pn / 1e6, ps / lim);
	}
	if (ln > 0 && ls > 0)
		std::fprintf(out, "  send p99 latency      %8.0f ns spilling vs %8.0f ns not: %.2fx (goal <= 1.2x); p50 %.0f vs %.0f ns\n",
			     ls, ln, ls / ln, median(g_spill["lat_spill_p50_ns"]),
			     median(g_spill["lat_nospill_p50_ns"]));
}

} // namespace spwb
