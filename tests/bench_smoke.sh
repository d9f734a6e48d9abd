#!/bin/bash
# tests/bench_smoke.sh - the benchmark harness (bench/, `make bench`) still
# runs: each paired benchmark (the bare ring and Spillway timed batch for
# batch, bench/spw_benches.cc) completes a few batches, checks every record
# it reads, and reports its ratio. Nothing about speed is asserted: speed is
# measured with `make bench`, never in a test (README, "Numbers").
set -euo pipefail
bin=${SPW_BENCH:?SPW_BENCH: the spillway_bench binary (make check-tests sets it)}
out=$("$bin" --benchmark_filter='^(send_pair|claim_pair|poll_pair|peek_pair)/64/' \
	--benchmark_min_time=0.01 --spw_rtt_trips=10000 2>&1) || {
	echo "$out"
	echo "bench_smoke: spillway_bench failed"
	exit 1
}
if grep -q "ERROR OCCURRED" <<<"$out"; then
	echo "$out"
	echo "bench_smoke: a benchmark reported an error"
	exit 1
fi
for b in send_pair claim_pair poll_pair peek_pair; do
	if ! grep -Eq "^$b/64/.*vs_baseline=[0-9.]+" <<<"$out"; then
		echo "$out"
		echo "bench_smoke: $b reported no ratio against the bare ring"
		exit 1
	fi
done
# The round-trip probe (bench/rtt_probe.c): a bare ring and Spillway, each
# timed three ways; a short round completes and reports every ratio.
probe=${SPW_RTT_PROBE:?SPW_RTT_PROBE: the rtt_probe binary (make check-tests sets it)}
out=$(timeout 300 "$probe" --rounds 1 --trips 2000 2>&1) || {
	echo "$out"
	echo "bench_smoke: rtt_probe failed"
	exit 1
}
if [ "$(grep -Ec '^median spillway/bare p50, timed by .*: [0-9.]+x$' <<<"$out")" != 3 ]; then
	echo "$out"
	echo "bench_smoke: rtt_probe reported no ratio for each of its three timings"
	exit 1
fi
# Its layouts mode: each bare-ring layout echoes every trip's sequence
# number back (a wrong one fails the run) and gets a ratio.
out=$(timeout 300 "$probe" --layouts --rounds 1 --trips 2000 2>&1) || {
	echo "$out"
	echo "bench_smoke: rtt_probe --layouts failed"
	exit 1
}
if [ "$(grep -Ec '^median p50 against the 80-byte layout: .* [0-9.]+x$' <<<"$out")" != 4 ]; then
	echo "$out"
	echo "bench_smoke: rtt_probe --layouts reported no ratio for each of its four other layouts"
	exit 1
fi
echo "bench_smoke: the paired benchmarks and the round-trip probe run and check their records"
