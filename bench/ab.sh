#!/bin/bash
# bench/ab.sh - A/B rounds of two builds of spillway_bench, alternating so both
# see the same vCPU placements (each round prints its cache-line round trip).
#   bench/ab.sh OLD_BENCH NEW_BENCH [ROUNDS] [FILTER]
# e.g. after `git worktree add /tmp/old <commit> && make -C /tmp/old build/bench/spillway_bench`:
#   bench/ab.sh /tmp/old/build/bench/spillway_bench build/bench/spillway_bench 3
# Prints one line per round and side: round trip, then items/s and the ratio to
# the bare baseline of each matching benchmark (medians of 5 repetitions).
set -euo pipefail
old=${1:?usage: bench/ab.sh OLD_BENCH NEW_BENCH [ROUNDS] [FILTER]}
new=${2:?usage: bench/ab.sh OLD_BENCH NEW_BENCH [ROUNDS] [FILTER]}
rounds=${3:-3}
filter=${4:-'^(bl_send|spw_send|spw_send_excl|spw_claim_commit)/64/'}
for ((r = 1; r <= rounds; r++)); do
	for side in old new; do
		bin=$old
		[ "$side" = new ] && bin=$new
		printf 'round %d %-3s ' "$r" "$side"
		"$bin" --benchmark_filter="$filter" --benchmark_repetitions=5 2>&1 |
			grep -E 'round trip|_median ' | grep -v '^spw_cacheline' |
			grep -oE 'round trip .*: median [0-9.]+ ns|^[a-z_]+/[0-9]+/[a-z_]+_median|items_per_second=[0-9.]+[kMG]?|vs_baseline=[0-9.]+' |
			sed -E 's/round trip .*: median/rtt/; s/\/[a-z_]+_median//' | tr '\n' ' '
		echo
	done
done
