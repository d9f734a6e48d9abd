#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bridge_bench.sh - records/s and MB/s that `spillway bridge kafka` forwards
# into a local Kafka (librdkafka's mock cluster, bench/kafka_mock.c, one broker
# on localhost), for 64 B and 1 KiB records, at least once and exactly once.
# The records are in the topic (spilled) before the bridge starts; the clock
# runs from the bridge's start until its group has no lag. Run alone, after
# `make`:  bash bench/bridge_bench.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500000}
B=$PWD/build
TMP=$(mktemp -d /var/tmp/spw-bb.XXXXXX)
SHM=$(mktemp -d /dev/shm/spw-bb.XXXXXX)
export SPILLWAY_SHM_DIR=$SHM/s SPILLWAY_DATA_DIR=$TMP/d
cc -O2 bench/kafka_mock.c -lrdkafka -o "$TMP/kafka_mock"
"$B/spillwayd" --foreground --data-dir "$SPILLWAY_DATA_DIR" --shm-dir "$SPILLWAY_SHM_DIR" 2>/dev/null &
DPID=$!
cleanup() { kill "$DPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP" "$SHM"; }
trap cleanup EXIT
now() { date +%s.%N; }
for size in 64 1024; do
	for mode in at-least-once exactly-once; do
		t=bb$size${mode%%-*}
		"$B/spillway" topic create "$t" --ring-size 64M >/dev/null
		python3 -c "import sys; l=b'x'*($size-1)+b'\n'; sys.stdout.buffer.write(l*$N)" |
			"$B/spillway" produce "$t" >/dev/null
		coproc MOCK { "$TMP/kafka_mock" "k$t"; }
		read -r boot <&"${MOCK[0]}"
		flag=""
		[ "$mode" = exactly-once ] && flag=--exactly-once
		t0=$(now)
		"$B/spillway" bridge kafka "$t" --brokers "$boot" --kafka-topic "k$t" $flag 2>"$TMP/err" &
		BP=$!
		until "$B/spillway" stat "$t" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
d = d[0] if isinstance(d, list) else d
g = [x for x in d.get("groups", []) if x["group"].startswith("bridge-kafka")]
sys.exit(0 if g and g[0].get("lag_bytes") == 0 else 1)'; do sleep 0.05; done
		t1=$(now)
		kill -TERM $BP
		wait $BP || { echo "bridge failed:"; cat "$TMP/err"; exit 1; }
		exec {MOCK[1]}>&-
		wait "$MOCK_PID" 2>/dev/null || true
		python3 -c "n=$N; s=$size; dt=$t1-$t0; print('%5d B  %-13s %8.0f k records/s  %7.1f MB/s  (%d records in %.2f s)' % (s, '$mode', n/dt/1e3, n*s/dt/1e6, n, dt))"
	done
done
