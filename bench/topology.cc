// SPDX-License-Identifier: MIT
// topology.cc - hwloc: choose the producer and consumer PUs, pin threads to
// them, and measure the cache-line round trip between them.
//
// Choice: only PUs this process may run on (its current binding, so
// `taskset -c 2,3` is honoured). The producer (and every single-thread
// benchmark) runs on the first one; the consumer on a PU of another core,
// the one closest to it (deepest common ancestor: a shared L2 or L3 before
// another package); an SMT sibling only when there is no other core.
// --spw_cpus=A,B overrides this with OS PU indexes.
#include "bench.h"

#include <hwloc.h>

#include <vector>

namespace spwb {
namespace {

hwloc_topology_t g_topo;
hwloc_obj_t g_pu_main, g_pu_peer; // g_pu_peer NULL: no second PU

bool bind_thread(hwloc_obj_t pu)
{
	if (!pu)
		return false;
	hwloc_bitmap_t set = hwloc_bitmap_dup(pu->cpuset);
	hwloc_bitmap_singlify(set);
	int r = hwloc_set_cpubind(g_topo, set, HWLOC_CPUBIND_THREAD);
	hwloc_bitmap_free(set);
	return r == 0;
}

std::string pu_desc(hwloc_obj_t pu)
{
	if (!pu)
		return "none";
	hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(g_topo, HWLOC_OBJ_CORE, pu);
	hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(g_topo, HWLOC_OBJ_PACKAGE, pu);
	char buf[160];
	snprintf(buf, sizeof(buf), "P#%u (core L#%d, package L#%d)", pu->os_index,
		 core ? (int)core->logical_index : -1, pkg ? (int)pkg->logical_index : -1);
	return buf;
}

bool parse_cpus(const std::string &s, unsigned *a, unsigned *b)
{
	char *end;
	unsigned long x = strtoul(s.c_str(), &end, 10);
	if (end == s.c_str() || *end != ',')
		return false;
	const char *p = end + 1;
	unsigned long y = strtoul(p, &end, 10);
	if (end == p || *end)
		return false;
	*a = (unsigned)x;
	*b = (unsigned)y;
	return true;
}

bool choose_given(FILE *out)
{
	unsigned a, b;
	if (!parse_cpus(g_cfg.cpus, &a, &b)) {
		fprintf(out, "--spw_cpus=%s: expected two OS PU indexes, e.g. 0,1\n",
			g_cfg.cpus.c_str());
		return false;
	}
	g_pu_main = hwloc_get_pu_obj_by_os_index(g_topo, a);
	g_pu_peer = hwloc_get_pu_obj_by_os_index(g_topo, b);
	if (!g_pu_main || !g_pu_peer || a == b) {
		fprintf(out, "--spw_cpus=%s: need two distinct PUs of this machine\n",
			g_cfg.cpus.c_str());
		return false;
	}
	return true;
}

void choose_auto()
{
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
	std::vector<hwloc_obj_t> pus;

	if (hwloc_get_cpubind(g_topo, allowed, HWLOC_CPUBIND_PROCESS) < 0)
		hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(g_topo));
	for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(g_topo, HWLOC_OBJ_PU, nullptr); pu;
	     pu = hwloc_get_next_obj_by_type(g_topo, HWLOC_OBJ_PU, pu))
		if (hwloc_bitmap_isset(allowed, pu->os_index))
			pus.push_back(pu);
	hwloc_bitmap_free(allowed);
	if (pus.empty())
		pus.push_back(hwloc_get_obj_by_type(g_topo, HWLOC_OBJ_PU, 0));

	g_pu_main = pus[0];
	hwloc_obj_t core0 = hwloc_get_ancestor_obj_by_type(g_topo, HWLOC_OBJ_CORE, g_pu_main);
	hwloc_obj_t sibling = nullptr;
	int best_depth = -1;
	g_pu_peer = nullptr;
	for (size_t i = 1; i < pus.size(); i++) {
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(g_topo, HWLOC_OBJ_CORE, pus[i]);
		if (core0 && core == core0) {
			if (!sibling)
				sibling = pus[i];
			continue;
		}
		hwloc_obj_t anc = hwloc_get_common_ancestor_obj(g_topo, g_pu_main, pus[i]);
		if (anc->depth > best_depth) {
			best_depth = anc->depth;
			g_pu_peer = pus[i];
		}
	}
	if (!g_pu_peer)
		g_pu_peer = sibling;
}

struct alignas(128) PingLine {
	std::atomic<uint64_t> v{0};
};
constexpr uint64_t kPingAbort = ~0ull;

} // namespace

bool topo_setup(FILE *out)
{
	if (hwloc_topology_init(&g_topo) < 0 || hwloc_topology_load(g_topo) < 0) {
		fprintf(out, "hwloc: cannot load the topology\n");
		return false;
	}
	if (!g_cfg.cpus.empty()) {
		if (!choose_given(out))
			return false;
	} else {
		choose_auto();
	}
	fprintf(out, "topology: %d package(s), %d core(s), %d PU(s)\n",
		hwloc_get_nbobjs_by_type(g_topo, HWLOC_OBJ_PACKAGE),
		hwloc_get_nbobjs_by_type(g_topo, HWLOC_OBJ_CORE),
		hwloc_get_nbobjs_by_type(g_topo, HWLOC_OBJ_PU));
	bool pinned = bind_thread(g_pu_main);
	fprintf(out, "producer / single-thread benchmarks: PU %s%s\n", pu_desc(g_pu_main).c_str(),
		pinned ? "" : "  (pinning FAILED)");
	fprintf(out, "consumer:                            PU %s\n", pu_desc(g_pu_peer).c_str());
	if (g_pu_peer)
		fprintf(out, "shared between them:                 %s\n", topo_link_desc().c_str());
	else
		fprintf(out, "only one PU: producer->consumer benchmarks are skipped\n");
	return true;
}

bool topo_have_peer() { return g_pu_peer != nullptr; }
bool topo_pin_peer() { return bind_thread(g_pu_peer); }
std::string topo_main_desc() { return pu_desc(g_pu_main); }
std::string topo_peer_desc() { return pu_desc(g_pu_peer); }

std::string topo_link_desc()
{
	if (!g_pu_peer)
		return "n/a";
	hwloc_obj_t anc = hwloc_get_common_ancestor_obj(g_topo, g_pu_main, g_pu_peer);
	char type[64], buf[160];
	hwloc_obj_type_snprintf(type, sizeof(type), anc, 0);
	if (hwloc_obj_type_is_cache(anc->type))
		snprintf(buf, sizeof(buf), "%s (%llu KiB)", type,
			 (unsigned long long)(anc->attr->cache.size >> 10));
	else
		snprintf(buf, sizeof(buf), "%s (no shared cache)", type);
	return buf;
}

// One atomic on its own line (alignas(128): the adjacent-line prefetcher pulls
// pairs of lines). The main thread writes 2i+1 and waits for 2i+2; the peer
// waits for 2i+1 and writes 2i+2: each round trip moves the line there and
// back. Bare spins without _mm_pause: a pause (tens of cycles on recent
// cores) would add to every hop. A warm-up run is discarded; a run that
// takes > 10 s (threads not really on two PUs) aborts the measurement.
double topo_measure_rtt(FILE *out, std::string *runs_desc)
{
	*runs_desc = "";
	if (!g_pu_peer) {
		fprintf(out, "cache-line round trip: n/a (one PU)\n");
		return -1;
	}
	const uint64_t trips = std::max<uint64_t>(g_cfg.rtt_trips, 1);
	const uint64_t warm = std::max<uint64_t>(trips / 10, 1000);
	const uint64_t total = warm + trips * (uint64_t)g_cfg.rtt_runs;
	auto line = std::make_unique<PingLine>();
	bool peer_pinned = false;

	std::thread peer([&] {
		peer_pinned = bind_thread(g_pu_peer);
		for (uint64_t i = 0; i < total; i++) {
			uint64_t v;
			// Acquire/release on both sides: nothing rides on the
			// line but the counter; the orderings keep each wait a
			// real load and each hand-off a real store.
			while ((v = line->v.load(std::memory_order_acquire)) != 2 * i + 1)
				if (v == kPingAbort)
					return;
			line->v.store(2 * i + 2, std::memory_order_release);
		}
	});

	uint64_t i = 0;
	bool aborted = false;
	auto run = [&](uint64_t n) {
		Stall stalled;
		for (uint64_t end = i + n; i < end; i++) {
			line->v.store(2 * i + 1, std::memory_order_release);
			while (line->v.load(std::memory_order_acquire) != 2 * i + 2)
				if (stalled()) {
					aborted = true;
					line->v.store(kPingAbort, std::memory_order_release);
					return;
				}
		}
	};

	std::vector<double> ns;
	run(warm);
	for (int r = 0; r < g_cfg.rtt_runs && !aborted; r++) {
		Clock::time_point t0 = Clock::now();
		run(trips);
		Clock::time_point t1 = Clock::now();
		ns.push_back(seconds_between(t0, t1) * 1e9 / (double)trips);
	}
	peer.join();
	if (aborted || ns.empty()) {
		fprintf(out, "cache-line round trip: aborted (a run took > 10 s)\n");
		return -1;
	}
	for (double x : ns) {
		char b[32];
		snprintf(b, sizeof(b), "%s%.1f", runs_desc->empty() ? "" : " ", x);
		*runs_desc += b;
	}
	std::vector<double> sorted = ns;
	std::sort(sorted.begin(), sorted.end());
	double med = sorted[sorted.size() / 2];
	if (sorted.size() % 2 == 0)
		med = (sorted[sorted.size() / 2 - 1] + med) / 2;
	fprintf(out, "cache-line round trip %s <-> %s: median %.1f ns (%d runs of %llu trips: %s)%s\n",
		pu_desc(g_pu_main).c_str(), pu_desc(g_pu_peer).c_str(), med, g_cfg.rtt_runs,
		(unsigned long long)trips, runs_desc->c_str(),
		peer_pinned ? "" : "  (peer pinning FAILED)");
	return med;
}

} // namespace spwb
