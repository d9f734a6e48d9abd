# SPDX-License-Identifier: MIT
# report.awk - bench/results/compare.md from the comparison's outputs:
#   awk -F'\t' -f report.awk -v date=... -v model=... -v cores=... -v threads=... \
#       -v kernel=... -v cmd=... compare_env.txt compare.tsv > compare.md
# compare_env.txt: key=value lines; compare.tsv: system size msgs_per_s mb_per_s
# rtt_p50_ns rtt_p99_ns status cpus line_rtt_ns tp_vs_aeron rtt_p50_vs_aeron,
# with NA where not measured; status "ok" or "failed (k of n runs): why".

function size_name(s) {
	if (s >= 1048576 && s % 1048576 == 0) return (s / 1048576) " MiB"
	if (s >= 1024 && s % 1024 == 0) return (s / 1024) " KiB"
	return s " B"
}
function rate(v) {
	if (v == "NA") return "n/a"
	if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
	if (v >= 1e3) return sprintf("%.1f k", v / 1e3)
	return sprintf("%.0f", v)
}
function mb(v) {
	if (v == "NA") return "n/a"
	return v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v)
}
function ns(v) {
	if (v == "NA" || v == "") return "n/a"
	if (v >= 1e6) return sprintf("%.2f ms", v / 1e6)
	if (v >= 1e3) return sprintf("%.2f us", v / 1e3)
	return sprintf("%.0f ns", v)
}
# "met (4.6x; goal >= 4x)" / "missed (2.3x; goal >= 4x)"
function verdict(ratio, goal) {
	return sprintf("**%s** (%.2fx; goal >= %gx)", ratio >= goal ? "met" : "missed", ratio, goal)
}
function verdict_le(ratio, goal) {
	return sprintf("**%s** (%.2fx; goal <= %gx)", ratio <= goal ? "met" : "missed", ratio, goal)
}
function peer(s) { return s !~ /^spillway/ && s !~ /^file/ }
function ratio(v) { return (v == "NA" || v == "") ? "n/a" : sprintf("%.2fx", v) }

FNR == NR {
	# compare_env.txt
	i = index($0, "=")
	if (i > 0)
		env[substr($0, 1, i - 1)] = substr($0, i + 1)
	next
}
FNR == 1 { next } # the TSV header
{
	sys = $1; size = $2
	key = sys SUBSEP size
	msgs[key] = $3; mbs[key] = $4; p50[key] = $5; p99[key] = $6
	status[key] = $7; cpus[key] = $8; probe[key] = $9; vs_tp[key] = $10; vs_rtt[key] = $11
	if ($10 != "NA" && $10 != "" || $11 != "NA" && $11 != "") have_ratio = 1
	if (!(sys in seen_sys)) { seen_sys[sys] = 1; order[++nsys] = sys }
	if (!(size in seen_size)) { seen_size[size] = 1; sizes[++nsize] = size }
}
END {
	print "# Spillway and the usual IPC: comparative benchmark"
	print ""
	printf "Measured %s with `%s`: for every case two processes (fork), pinned with hwloc to ", date, cmd
	printf "the same two PUs of different cores; messages carry a sequence number the receiver checks, and the receiver "
	printf "reads every payload byte. Throughput: %s s per run; round trip: %s s per run; ", env["duration_s"], env["rtt_duration_s"]
	printf "the median of %s runs (interleaved across systems).\n\n", env["reps"]
	printf "- **Machine:** %s, %s core(s), %s thread(s), Linux %s\n", model, cores, threads, kernel
	printf "- **Pinning:** sender / pinger on %s, receiver / ponger on %s (they share: %s)\n", env["sender_pu"], env["receiver_pu"], env["shared"]
	printf "- **Cache-line round trip** between those two PUs: %s ns (one 64-bit word ping-ponged; the floor under any cross-core hand-off)\n", env["line_rtt_ns"]
	printf "- MB/s counts payload bytes (10^6 B/s); round trips are timed with CLOCK_MONOTONIC (from just before the ping is sent to the handler that receives the pong, as Aeron's cping times them) into an HDR-style histogram.\n\n"

	print "## Results"
	print ""
	printf "| system | size | msgs/s | MB/s | RTT p50 | RTT p99 |%s CPUs (line RTT) | status |\n", have_ratio ? " msgs/s vs Aeron | RTT p50 vs Aeron |" : ""
	printf "|---|---:|---:|---:|---:|---:|%s---|---|\n", have_ratio ? "---:|---:|" : ""
	for (i = 1; i <= nsys; i++)
		for (j = 1; j <= nsize; j++) {
			k = order[i] SUBSEP sizes[j]
			if (!(k in msgs)) continue
			printf "| %s | %s | %s | %s | %s | %s |", order[i], size_name(sizes[j]), rate(msgs[k]), mb(mbs[k]), ns(p50[k]), ns(p99[k])
			if (have_ratio) printf " %s | %s |", ratio(vs_tp[k]), ratio(vs_rtt[k])
			st = status[k] == "" ? "ok" : status[k]
			gsub(/\|/, "/", st)
			printf " %s (%s ns) | %s |\n", cpus[k] == "" ? "?" : cpus[k], probe[k] == "" ? "n/a" : probe[k], st == "ok" ? "ok" : "**" st "**"
		}
	print ""
	print "CPUs: the OS indexes of the sender / pinger and the receiver / ponger; in brackets the median cache-line round trip between them, probed before each round this row ran in. A failed row (a peer that stalled, crashed or ran past its deadline) does not stop the run; only a failed Spillway case fails it."
	if (have_ratio) {
		print ""
		printf "vs Aeron: the median, over the rounds where both were measured, of this row's figure / aeron-ipc's in the same round (Aeron %s): above 1 is more messages/s, resp. a longer round trip, than Aeron.\n", env["aeron"]
	}
	print ""
	print "![Throughput by message size](compare-throughput.png)"
	print ""
	print "![Round-trip latency percentiles](compare-latency.png)"
	print ""
	if (have_ratio) {
		print "![Against Aeron IPC, round by round](compare-vs-aeron.png)"
		print ""
	}

	# --- goals ------------------------------------------------------------------
	print "## Goals"
	print ""
	print "| goal | measured | verdict |"
	print "|---|---|---|"
	s = 64; k = "spillway-live" SUBSEP s
	best = ""; bestv = 0
	for (i = 1; i <= nsys; i++) {
		kk = order[i] SUBSEP s
		if (peer(order[i]) && (kk in msgs) && msgs[kk] != "NA" && msgs[kk] + 0 > bestv) { bestv = msgs[kk] + 0; best = order[i] }
	}
	if ((k in msgs) && msgs[k] != "NA" && bestv > 0)
		printf "| Spillway live at 64 B >= 4x the throughput of the best peer | spillway-live %s msgs/s vs %s %s msgs/s | %s |\n", rate(msgs[k]), best, rate(bestv), verdict(msgs[k] / bestv, 4)
	else
		print "| Spillway live at 64 B >= 4x the throughput of the best peer | not measured | n/a |"

	best = ""; bestv = 0
	for (i = 1; i <= nsys; i++) {
		kk = order[i] SUBSEP s
		if (peer(order[i]) && order[i] ~ /-busy$/ && (kk in p50) && p50[kk] != "NA" && (bestv == 0 || p50[kk] + 0 < bestv)) { bestv = p50[kk] + 0; best = order[i] }
	}
	if ((k in p50) && p50[k] != "NA" && p50[k] > 0 && bestv > 0)
		printf "| Round-trip p50 at 64 B <= 1/4 of the best busy-polling peer | spillway-live %s vs %s %s | %s |\n", ns(p50[k]), best, ns(bestv), verdict(bestv / p50[k], 4)
	else
		print "| Round-trip p50 at 64 B <= 1/4 of the best busy-polling peer | not measured | n/a |"

	s = 16384; k = "spillway-spill" SUBSEP s; f = "file" SUBSEP s
	if ((k in mbs) && (f in mbs) && mbs[k] != "NA" && mbs[f] != "NA" && mbs[f] > 0) {
		d = env["durable_mb_per_s.spillway-spill." s]
		extra = d != "" ? sprintf("; counting the daemon's final spill and fdatasync: %s MB/s = %.2fx", mb(d), d / mbs[f]) : ""
		printf "| Spilling on at 16 KiB: producers >= 0.9x the plain file writer's bandwidth | spillway-spill %s MB/s vs file %s MB/s (file: write + fdatasync)%s | %s |\n", mb(mbs[k]), mb(mbs[f]), extra, verdict(mbs[k] / mbs[f], 0.9)
	} else
		print "| Spilling on at 16 KiB: producers >= 0.9x the plain file writer's bandwidth | not measured | n/a |"
	if (have_ratio) {
		# Against Aeron IPC (the rows' per-round ratios; p99 from the medians).
		n = split("spillway-live spillway-notime spillway-backoff spillway-batch", rows, " ")
		for (i = 1; i <= n; i++) {
			k = rows[i] SUBSEP 64
			if ((k in vs_tp) && vs_tp[k] != "NA")
				printf "| 64 B >= 1.2x Aeron IPC's msgs/s | %s %s msgs/s (median of the per-round ratios) | %s |\n", rows[i], rate(msgs[k]), verdict(vs_tp[k], 1.2)
		}
		k = "spillway-live" SUBSEP 1024
		if ((k in vs_tp) && vs_tp[k] != "NA")
			printf "| 1 KiB >= 1.5x Aeron IPC's msgs/s | spillway-live %s msgs/s | %s |\n", rate(msgs[k]), verdict(vs_tp[k], 1.5)
		k = "spillway-live" SUBSEP 64; a = "aeron-ipc" SUBSEP 64
		if ((k in vs_rtt) && vs_rtt[k] != "NA")
			printf "| Round-trip p50 at 64 B <= 1.0x Aeron IPC's | spillway-live %s vs %s | %s |\n", ns(p50[k]), ns(p50[a]), verdict_le(vs_rtt[k], 1.0)
		if ((k in p99) && (a in p99) && p99[k] != "NA" && p99[a] != "NA" && p99[a] > 0)
			printf "| Round-trip p99 at 64 B <= 0.5x Aeron IPC's | spillway-live %s vs %s (medians) | %s |\n", ns(p99[k]), ns(p99[a]), verdict_le(p99[k] / p99[a], 0.5)
	}
	print ""
	k = "spillway-live" SUBSEP 64
	if (!have_ratio)
		printf "For reference (not in this run: `make bench-compare AERON=DIR`, docs/aeron.md): on this project's 2-vCPU VM on 2026-12-04, Aeron IPC's subscriber ran 50-82 M msgs/s at 64 B and 9.1-9.3 M at 1 KiB, and its 64 B round trip took p50 0.53-0.61 us / p99 24-25 us with the two vCPUs ~400 ns apart (README, \"Against the alternatives\"). "
	printf "Spillway live in this run: %s msgs/s, p50 %s / p99 %s.\n\n", rate(msgs[k]), ns(p50[k]), ns(p99[k])

	# --- how each ran ---------------------------------------------------------------
	print "## How each system ran"
	print ""
	for (i = 1; i <= nsys; i++) {
		sys = order[i]
		printf "- **%s**: %s", sys, env["how." sys]
		g = ""
		for (j = 1; j <= nsize; j++) {
			v = env["given." sys "." sizes[j]]
			if (v != "" && index(g, v) == 0) g = g (g == "" ? "" : "; ") v
		}
		if (g != "") printf " (%s)", g
		print "."
	}
	printf "\nUnix domain sockets are SOCK_STREAM. Each system gets a buffer of about the Spillway ring's size (%s bytes) where it lets us choose; the spilling case uses a %s-byte ring and a private spillwayd with its data under %s (a disk). ZeroMQ (%s) keeps its defaults and its I/O threads are not pinned (only the application threads are).\n", env["ring_bytes"], env["spill_ring_bytes"], env["data_dir"], env["zmq"]

	section("redelivered.", "Anomalies", "The Spillway reader handed these records out twice (a live read cut short by a lap, then the same record again from disk); the receiver skipped the repeats by position:")
	section("error.", "Cases that failed (n/a above)", "")
}

# The env keys that start with prefix, as a list under a heading (nothing
# when there are none).
function section(prefix, title, intro,    key, n, i, items) {
	n = 0
	for (key in env)
		if (index(key, prefix) == 1) items[++n] = substr(key, length(prefix) + 1) ": " env[key]
	if (!n) return
	print ""
	print "## " title
	print ""
	if (intro != "") { print intro; print "" }
	for (i = 1; i <= n; i++) print "- " items[i]
}
