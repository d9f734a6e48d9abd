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
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include <map>
#include <memory>
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
			// Dies with the bench; never holds the bench's stdout open.
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			dup2(nul, 1);
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

// direct: O_DIRECT writes of the same 1 MiB blocks (what the daemon would do
// if it bypassed the page cache), for the buffered-vs-direct decision.
void bm_plain_write(benchmark::State &st, bool direct)
{
	std::string dir = make_data_dir();
	void *mem = nullptr;
	if (posix_memalign(&mem, 4096, 1u << 20)) {
		st.SkipWithError("no memory");
		return;
	}
	memset(mem, 'x', 1u << 20);
	struct Buf {
		void *p;
		size_t size() const { return 1u << 20; }
		char *data() const { return static_cast<char *>(p); }
		~Buf() { free(p); }
	} buf{mem};
	for (auto _ : st) {
		std::string f = dir + "/" + unique_name("plain");
		double t0 = now_s();
		int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0600);
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
		record(direct ? "direct_write_Bps" : "plain_write_Bps", kSpillBytes / dt);
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


// --- replay (issue "One reader from disk to live", 5) ---------------------------
// A log of kSpillBytes in 1 KiB records is produced and spilled once; then each
// repetition reads it back: with spw_reader (disk only, CRCs checked) and with a
// plain sequential read() of the same .seg files in 1 MiB blocks; warm (page
// cache) and cold (posix_fadvise DONTNEED on every file first).
struct ReplayLog {
	std::unique_ptr<Setup> s;
	std::vector<std::string> files;
	bool ok = false;
};
ReplayLog *g_replay;

ReplayLog *replay_log()
{
	if (g_replay)
		return g_replay;
	g_replay = new ReplayLog;
	g_replay->s.reset(new Setup(true));
	Setup &s = *g_replay->s;
	if (!s.ok || !s.produce(kSpillBytes, 1024) || !s.wait_counter(true, 120))
		return g_replay;
	std::string dir = s.data + "/" + s.name;
	std::string cmd = "ls " + dir + "/*.seg";
	FILE *p = popen(cmd.c_str(), "r");
	char line[4096];
	while (p && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		g_replay->files.push_back(line);
	}
	if (p)
		pclose(p);
	// Wait for the kernel to write the log back: a flusher still writing
	// it would take CPU from whichever replay runs first.
	for (auto &f : g_replay->files) {
		int fd = open(f.c_str(), O_RDONLY);
		if (fd >= 0) {
			fdatasync(fd);
			close(fd);
		}
	}
	g_replay->ok = !g_replay->files.empty();
	return g_replay;
}

void evict(const std::vector<std::string> &files)
{
	for (auto &f : files) {
		int fd = open(f.c_str(), O_RDONLY);
		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
}

int count_rec(void *arg, const struct spw_record *r)
{
	uint64_t *c = static_cast<uint64_t *>(arg);
	c[0]++;
	c[1] += r->len;
	return 0;
}

// The same files read through a fresh read-only mmap each time (summing one
// word per 64 bytes): the mmap-vs-pread decision for the reader (R4).
void bm_replay_mmap(benchmark::State &st)
{
	ReplayLog *L = replay_log();
	if (!L->ok) {
		st.SkipWithError("could not build the log");
		return;
	}
	for (auto _ : st) {
		uint64_t bytes = 0, sum = 0;
		double t0 = now_s();
		for (auto &f : L->files) {
			int fd = open(f.c_str(), O_RDONLY);
			struct stat sb;
			if (fd < 0 || fstat(fd, &sb)) {
				if (fd >= 0)
					close(fd);
				continue;
			}
			void *m = mmap(nullptr, (size_t)sb.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
			close(fd);
			if (m == MAP_FAILED)
				continue;
			const uint64_t *w = static_cast<const uint64_t *>(m);
			for (size_t i = 0; i < (size_t)sb.st_size / 8; i += 8)
				sum += w[i];
			munmap(m, (size_t)sb.st_size);
			bytes += (uint64_t)sb.st_size;
		}
		benchmark::DoNotOptimize(sum);
		double dt = now_s() - t0;
		st.SetIterationTime(dt);
		st.counters["GBps"] = bytes / dt / 1e9;
		record("read_mmap_warm", bytes / dt);
	}
}

// Plain sequential read() of the files in 1 MiB blocks: the bytes read.
uint64_t read_plain(const std::vector<std::string> &files, std::vector<char> &buf)
{
	uint64_t bytes = 0;
	for (auto &f : files) {
		int fd = open(f.c_str(), O_RDONLY);
		ssize_t n;
		if (fd < 0)
			continue;
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		while ((n = read(fd, buf.data(), buf.size())) > 0)
			bytes += (uint64_t)n;
		close(fd);
	}
	return bytes;
}

// The whole log through spw_reader, disk only: the bytes covered (or -errno);
// *recs gets the records delivered.
int64_t read_spw(ReplayLog *L, unsigned flags, uint64_t *recs, bool batch = false)
{
	spw_reader_opts o{};
	o.shm_dir = L->s->shm.c_str();
	o.data_dir = L->s->data.c_str();
	o.start = SPW_START_EARLIEST;
	o.flags = SPW_READER_NO_LIVE | flags;
	spw_reader *r;
	int n = spw_reader_open(L->s->name.c_str(), &o, &r);
	if (n)
		return n;
	uint64_t c[2] = {0, 0};
	if (batch) {
		// spw_reader_read: no callback per record.
		static spw_record batch_recs[4096];
		while ((n = spw_reader_read(r, batch_recs, 4096, 0)) > 0)
			for (int i = 0; i < n; i++) {
				c[0]++;
				c[1] += batch_recs[i].len;
			}
	} else {
		while ((n = spw_reader_poll(r, count_rec, c, 4096)) > 0)
			;
	}
	int64_t bytes = spw_reader_position(r);
	spw_reader_close(r);
	*recs = c[0];
	return n < 0 ? n : bytes;
}

// Replay runs unpinned, as a batch reader would: the benchmark thread is
// pinned to one PU at startup, and a pinned reader never starts its
// read-ahead thread (spill/reader_ahead.c). Restores the pinning after.
struct Unpinned {
	cpu_set_t old;
	bool ok;
	Unpinned()
	{
		cpu_set_t all;
		CPU_ZERO(&all);
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &all);
		ok = sched_getaffinity(0, sizeof(old), &old) == 0 && sched_setaffinity(0, sizeof(all), &all) == 0;
	}
	~Unpinned()
	{
		if (ok)
			sched_setaffinity(0, sizeof(old), &old);
	}
};

// A busy machine: one thread spinning (unpinned, like the reader) for as
// long as it lives, so the reader and its read-ahead thread share the CPUs.
struct Hog {
	std::atomic<bool> stop{false};
	std::thread th;
	explicit Hog(bool on)
	{
		if (on)
			th = std::thread([this] {
				while (!stop.load(std::memory_order_relaxed))
					_mm_pause();
			});
	}
	~Hog()
	{
		stop = true;
		if (th.joinable())
			th.join();
	}
};

void bm_replay(benchmark::State &st, bool plain, bool cold, unsigned flags = 0, bool batch = false,
	       bool busy = false)
{
	Unpinned unpinned;
	Hog hog(busy);
	ReplayLog *L = replay_log();
	if (!L->ok) {
		st.SkipWithError("could not build the log");
		return;
	}
	std::vector<char> buf(1u << 20);
	for (auto _ : st) {
		if (cold)
			evict(L->files);
		uint64_t bytes = 0, recs = 0;
		double t0 = now_s();
		if (plain) {
			bytes = read_plain(L->files, buf);
		} else {
			int64_t b = read_spw(L, flags, &recs, batch);
			if (b < 0) {
				st.SkipWithError("reader failed");
				break;
			}
			bytes = (uint64_t)b;
		}
		double dt = now_s() - t0;
		st.SetIterationTime(dt);
		st.counters["GBps"] = bytes / dt / 1e9;
		if (!plain)
			st.counters["Mrec_per_s"] = recs / dt / 1e6;
		record(std::string(plain                              ? "read_plain"
				   : (flags & SPW_READER_NO_VERIFY)    ? "read_spwnv"
				   : (flags & SPW_READER_NO_READAHEAD) ? "read_spw1"
				   : batch                             ? "read_spwb"
								       : "read_spw") +
			       (busy ? "_busy" : "") + (cold ? "_cold" : "_warm"),
		       bytes / dt);
	}
}

// Cold reads, both ways in one iteration, the order alternating between
// repetitions: the VM's disk is a file on the host, whose own cache makes a
// second cold read of the same blocks faster than the first.
void bm_replay_cold_pair(benchmark::State &st)
{
	Unpinned unpinned;
	static int rep;
	for (auto _ : st) {
		bool plain_first = (rep++ & 1) == 0;
		double total = 0;
		for (int k = 0; k < 2; k++) {
			bool plain = (k == 0) == plain_first;
			ReplayLog *L = replay_log();
			if (!L->ok) {
				st.SkipWithError("could not build the log");
				return;
			}
			evict(L->files);
			double t0 = now_s();
			uint64_t bytes = 0;
			if (plain) {
				std::vector<char> buf(1u << 20);
				bytes = read_plain(L->files, buf);
			} else {
				uint64_t recs;
				int64_t b = read_spw(L, 0, &recs);
				if (b < 0) {
					st.SkipWithError("reader failed");
					return;
				}
				bytes = (uint64_t)b;
			}
			double dt = now_s() - t0;
			total += dt;
			st.counters[plain ? "plain_GBps" : "spw_GBps"] = bytes / dt / 1e9;
			record(plain ? "read_plain_cold" : "read_spw_cold", bytes / dt);
		}
		st.SetIterationTime(total);
	}
}

// Catch-up: a producer writes 1 KiB records flat out while spillwayd spills;
// a reader that starts at the beginning once ~half the log exists reads from
// disk until it is live. Its rate while behind, over the producers' rate.
void bm_catchup(benchmark::State &st, unsigned flags)
{
	for (auto _ : st) {
		Setup s(true);
		if (!s.ok) {
			st.SkipWithError("daemon setup failed");
			break;
		}
		pid_t child = fork();
		if (child == 0) {
			// Handles opened before a fork are refused in the child
			// (-ECHILD, ring/locks.c): the producer opens its own.
			spw_topic *ct = nullptr;
			if (spw_topic_open(s.shm.c_str(), s.name.c_str(), 0, &ct) || spw_producer_open(ct, &s.p))
				_exit(1);
			_exit(s.produce(kSpillBytes, 1024) ? 0 : 1);
		}
		// Let half the log be written first.
		struct spw_topic_info in;
		double p0 = now_s();
		do {
			usleep(1000);
			spw_topic_info(s.t, &in);
		} while (in.tail < kSpillBytes / 2 && now_s() - p0 < 60);
		double prod_rate = in.tail / (now_s() - p0);
		spw_reader_opts o{};
		o.shm_dir = s.shm.c_str();
		o.data_dir = s.data.c_str();
		o.start = SPW_START_EARLIEST;
		o.flags = flags;
		spw_reader *r;
		if (spw_reader_open(s.name.c_str(), &o, &r)) {
			st.SkipWithError("reader open failed");
			kill(child, SIGKILL);
			waitpid(child, nullptr, 0);
			break;
		}
		uint64_t c[2] = {0, 0};
		double t0 = now_s();
		while (!spw_reader_is_live(r) && now_s() - t0 < 60)
			if (spw_reader_poll(r, count_rec, c, 4096) < 0)
				break;
		double dt = now_s() - t0;
		uint64_t caught = (uint64_t)spw_reader_position(r);
		spw_reader_close(r);
		int stat = 0;
		waitpid(child, &stat, 0);
		st.SetIterationTime(dt);
		double rate = caught / dt;
		st.counters["catchup_MBps"] = rate / 1e6;
		st.counters["producer_MBps"] = prod_rate / 1e6;
		st.counters["ratio"] = rate / prod_rate;
		std::string k = flags ? "catchup1_" : "catchup_";
		record(k + "ratio", rate / prod_rate);
		record(k + "Bps", rate);
		record(k + "prod_Bps", prod_rate);
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
	RegisterBenchmark("spill_plain_write", [](benchmark::State &s) { bm_plain_write(s, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("spill_direct_write", [](benchmark::State &s) { bm_plain_write(s, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("spill_daemon", bm_spill_daemon)->Iterations(1)->UseManualTime();
	RegisterBenchmark("prod_nospill", [](benchmark::State &s) { bm_prod(s, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("prod_spill", [](benchmark::State &s) { bm_prod(s, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("lat_nospill", [](benchmark::State &s) { bm_lat(s, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("lat_spill", [](benchmark::State &s) { bm_lat(s, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_plain_warm", [](benchmark::State &s) { bm_replay(s, true, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_spw_warm", [](benchmark::State &s) { bm_replay(s, false, false); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_spw_batch_warm",
			  [](benchmark::State &s) { bm_replay(s, false, false, 0, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_spw_1thread_warm",
			  [](benchmark::State &s) { bm_replay(s, false, false, SPW_READER_NO_READAHEAD); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_busy_spw_warm",
			  [](benchmark::State &s) { bm_replay(s, false, false, 0, false, true); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_busy_spw_1thread_warm", [](benchmark::State &s) {
		bm_replay(s, false, false, SPW_READER_NO_READAHEAD, false, true);
	})->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_spw_noverify_warm",
			  [](benchmark::State &s) { bm_replay(s, false, false, SPW_READER_NO_VERIFY); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_mmap_warm", bm_replay_mmap)->Iterations(1)->UseManualTime();
	RegisterBenchmark("replay_cold_pair", bm_replay_cold_pair)->Iterations(1)->UseManualTime();
	RegisterBenchmark("catchup", [](benchmark::State &s) { bm_catchup(s, 0); })
		->Iterations(1)->UseManualTime();
	RegisterBenchmark("catchup_1thread",
			  [](benchmark::State &s) { bm_catchup(s, SPW_READER_NO_READAHEAD); })
		->Iterations(1)->UseManualTime();
}

void print_spill_summary(FILE *out)
{
	delete g_replay; // stops its daemon, removes its dirs
	g_replay = nullptr;
	double plain = median(g_spill["plain_write_Bps"]), spill = median(g_spill["spill_Bps"]);
	double pn = median(g_spill["prod_nospill_Bps"]), ps = median(g_spill["prod_spill_Bps"]);
	double ln = median(g_spill["lat_nospill_p99_ns"]), ls = median(g_spill["lat_spill_p99_ns"]);
	if (plain <= 0 && pn <= 0 && ln <= 0 && g_spill.empty())
		return;
	std::fprintf(out, "\nspill (medians; data dir %s)\n", g_data_root.c_str());
	double direct = median(g_spill["direct_write_Bps"]);
	if (plain > 0 && direct > 0)
		std::fprintf(out, "  plain writer          %8.0f MB/s buffered+fdatasync vs %8.0f MB/s O_DIRECT\n",
			     plain / 1e6, direct / 1e6);
	if (plain > 0 && spill > 0)
		std::fprintf(out, "  spill throughput      %8.0f MB/s vs plain writer %8.0f MB/s: %.2fx (goal >= 0.9x)\n",
			     spill / 1e6, plain / 1e6, spill / plain);
	if (pn > 0 && ps > 0) {
		double lim = std::min(pn, plain > 0 ? plain : pn);
		std::fprintf(out, "  producers, spilling   %8.0f MB/s; ring alone %8.0f MB/s; vs min(ring, disk): %.2fx (goal >= 0.9x)\n",
			     ps / 1e6, pn / 1e6, ps / lim);
	}
	double rpw = median(g_spill["read_plain_warm"]), rsw = median(g_spill["read_spw_warm"]);
	double rpc = median(g_spill["read_plain_cold"]), rsc = median(g_spill["read_spw_cold"]);
	if (rpw > 0 && rsw > 0)
		std::fprintf(out, "  replay (page cache)   %8.0f MB/s vs plain read %8.0f MB/s: %.2fx (goal >= 0.9x)\n",
			     rsw / 1e6, rpw / 1e6, rsw / rpw);
	double rbw = median(g_spill["read_spwb_warm"]);
	if (rbw > 0 && rpw > 0)
		std::fprintf(out, "  replay, batch read    %8.0f MB/s vs plain read %8.0f MB/s: %.2fx (spw_reader_read)\n",
			     rbw / 1e6, rpw / 1e6, rbw / rpw);
	double r1 = median(g_spill["read_spw1_warm"]);
	if (r1 > 0 && rpw > 0)
		std::fprintf(out, "  replay, one thread    %8.0f MB/s vs plain read %8.0f MB/s: %.2fx (SPW_READER_NO_READAHEAD)\n",
			     r1 / 1e6, rpw / 1e6, r1 / rpw);
	double rbu = median(g_spill["read_spw_busy_warm"]), rb1 = median(g_spill["read_spw1_busy_warm"]);
	if (rbu > 0 && rb1 > 0)
		std::fprintf(out, "  replay, CPU busy      %8.0f MB/s vs one thread %8.0f MB/s: %.2fx (a spinning thread on the side)\n",
			     rbu / 1e6, rb1 / 1e6, rbu / rb1);
	double rnv = median(g_spill["read_spwnv_warm"]);
	if (rnv > 0 && rpw > 0)
		std::fprintf(out, "  replay, no CRC check  %8.0f MB/s vs plain read %8.0f MB/s: %.2fx\n",
			     rnv / 1e6, rpw / 1e6, rnv / rpw);
	double rmw = median(g_spill["read_mmap_warm"]);
	if (rmw > 0)
		std::fprintf(out, "  fresh mmap read       %8.0f MB/s (pread: %.0f MB/s) - why the reader uses pread\n",
			     rmw / 1e6, rpw / 1e6);
	if (rpc > 0 && rsc > 0)
		std::fprintf(out, "  replay (cold)         %8.0f MB/s vs plain read %8.0f MB/s: %.2fx (goal >= 0.9x)\n",
			     rsc / 1e6, rpc / 1e6, rsc / rpc);
	for (const char *k : {"catchup_", "catchup1_"}) {
		double cr = median(g_spill[std::string(k) + "ratio"]);
		if (cr > 0)
			std::fprintf(out, "  catch-up%s %8.0f MB/s vs producers %8.0f MB/s: %.2fx (goal >= 2x)\n",
				     k[7] == '1' ? ", one thread" : "             ",
				     median(g_spill[std::string(k) + "Bps"]) / 1e6,
				     median(g_spill[std::string(k) + "prod_Bps"]) / 1e6, cr);
	}
	if (ln > 0 && ls > 0)
		std::fprintf(out, "  send p99 latency      %8.0f ns spilling vs %8.0f ns not: %.2fx (goal <= 1.2x); p50 %.0f vs %.0f ns\n",
			     ls, ln, ls / ln, median(g_spill["lat_spill_p50_ns"]),
			     median(g_spill["lat_nospill_p50_ns"]));
}

} // namespace spwb
