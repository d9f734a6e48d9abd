#!/usr/bin/env bash
# cli_bench.sh - `spillway bench`: usage errors exit 2, a short run prints the
# table and valid --json with throughput and latency percentiles, in both
# modes, with spilling off and on, with consumers that back off (--backoff)
# and with producers that send batches (--batch) or give the timestamps
# (--caller-time). (Speed itself is never asserted here.)
set -u
. "$(dirname "$0")/cli_lib.sh"

check "bench --help exits 0; bad flags and values exit 2"
expect_rc 0 "$CLI" bench --help
expect_out "usage: spillway bench"
expect_rc 2 "$CLI" bench --bogus
expect_rc 2 "$CLI" bench --size 12Q
expect_rc 2 "$CLI" bench --mode sideways
expect_rc 2 "$CLI" bench --cpus 0,999

check "a short throughput run prints a table with the size and percentiles"
expect_rc 0 "$CLI" bench --duration 0.2 --size 64
expect_out "64 B"
expect_out "p99"

check "--json is valid JSON with throughput and latency for each size"
expect_rc 0 "$CLI" bench --duration 0.2 --size 64,1K --json
python3 - "$TMP/out" <<'PY' || fail "bench --json is not the expected JSON"
import json, sys
d = json.load(open(sys.argv[1]))
txt = json.dumps(d)
for key in ("records_per_s", "p50", "p99"):
    assert key in txt, key
PY

check "--backoff: consumers back off after an empty poll and still get every record once"
for bad in -5 x 1000000001; do
	expect_rc 2 "$CLI" bench --backoff "$bad" --duration 0.1 --size 64
done
expect_rc 2 "$CLI" bench --backoff 1000 --spill --duration 0.1 --size 64
expect_rc 2 "$CLI" bench --backoff 1000 --wait --duration 0.1 --size 64
expect_err "spinning live consumers"
expect_rc 2 "$CLI" bench --backoff 1000 --mode pingpong --duration 0.1 --size 64
expect_err "every round trip would wait it out"
expect_rc 2 "$CLI" bench --backoff 1000 --consumers 0 --daemon --duration 0.1 --size 64
expect_err "needs consumers"
expect_rc 0 "$CLI" bench --backoff 20000 --consumers 2 --duration 0.3 --size 64 --json
python3 - "$TMP/out" <<'PY' || fail "bench --backoff: records lost or redelivered, or the setting not reported"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["config"]["backoff_ns"] == 20000, d["config"]
for r in d["results"]:
    assert r["lost"] == 0 and r["redelivered"] == 0, r
    assert len(r["consumers"]) == 2 and all(c["records"] > 0 for c in r["consumers"]), r
PY

check "--batch: producers send batches; every record arrives once, in both send modes"
for bad in 0 -1 x 1025; do
	expect_rc 2 "$CLI" bench --batch "$bad" --duration 0.1 --size 64
done
expect_rc 2 "$CLI" bench --batch 8 --mode pingpong --duration 0.1 --size 64
expect_err "a round trip is one record"
expect_rc 2 "$CLI" bench --batch 1024 --size 1M --ring-size 8M --duration 0.1
expect_err "over 256 MiB of records per call"
# 10007 records: the last batch of each producer is a short one.
expect_rc 0 "$CLI" bench --batch 7 --producers 2 --count 10007 --size 64,1K --json
python3 - "$TMP/out" <<'PY' || fail "bench --batch: records lost or redelivered, or the setting not reported"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["config"]["batch"] == 7, d["config"]
for r in d["results"]:
    assert r["ok"] and r["sent"] == 2 * 10007, r
    assert r["lost"] == 0 and r["redelivered"] == 0, r
    assert r["consumers"][0]["records"] == 2 * 10007, r
PY
expect_rc 0 "$CLI" bench --batch 32 --wait --count 20000 --size 64 --json
python3 - "$TMP/out" <<'PY' || fail "bench --batch --wait: records lost or redelivered"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["results"][0]
assert not d["config"]["busy"] and r["ok"] and r["lost"] == 0 and r["redelivered"] == 0, r
assert r["consumers"][0]["records"] == 20000, r
PY
expect_rc 0 "$CLI" bench --batch 16 --duration 0.2 --size 64
expect_out "batches of 16 records"

check "--caller-time: the producers' timestamps; exactly 1 record in --sample is timed"
# 2 producers x 10007 records, --sample 8: each producer stamps its records
# 0, 8, 16, ... (1251 of them), the rest carry 0; one send each and batches
# (the last batch short), spinning and waiting.
for mode in "" "--batch 7" "--wait" "--batch 7 --wait"; do
	# shellcheck disable=SC2086 # $mode is a list of flags
	expect_rc 0 "$CLI" bench --caller-time --sample 8 $mode --producers 2 --count 10007 \
		--size 64 --json
	python3 - "$TMP/out" <<'PY' || fail "bench --caller-time $mode: wrong records or samples"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["config"]["caller_time"] is True, d["config"]
r = d["results"][0]
assert r["ok"] and r["sent"] == 2 * 10007 and r["lost"] == 0, r
assert r["consumers"][0]["records"] == 2 * 10007, r
assert r["latency_ns"]["count"] == 2 * 1251, r["latency_ns"]
assert r["latency_ns"]["max"] < 60e9, r["latency_ns"]  # none timed against a 0
PY
done
expect_rc 0 "$CLI" bench --caller-time --duration 0.2 --size 64
expect_out "producers give the timestamps"
expect_rc 0 "$CLI" bench --caller-time --mode pingpong --duration 0.2 --size 64
expect_out "every record carries 0"

check "ping-pong through two topics reports round trips"
expect_rc 0 "$CLI" bench --mode pingpong --duration 0.2 --size 64
expect_out "64 B"

check "with --spill a daemon is started and stopped; nothing is left behind"
expect_rc 0 "$CLI" bench --spill --duration 0.3 --size 1K --shm-dir "$SHMROOT" --data-dir "$TMP"
expect_out "1 KiB"
pgrep -f "spillwayd.*$TMP" >/dev/null && fail "a spillwayd is still running"
done_ok
