#!/usr/bin/env bash
# bench_compare.sh - `make bench-compare` survives a bad peer (bench/compare/,
# README "Against the alternatives"): a peer that stalls (SIGSTOP), crashes or
# never comes up becomes a row marked failed with the reason, the rest of the
# run goes on and the run exits 0; a Spillway case that fails makes it exit 1.
# Every row says where it ran (the CPUs and the cache-line probe before its
# round), and the report (report.awk) shows a failed row as failed. Aeron is
# played by stand-in programs that fail (no Aeron build is needed). Tiny runs
# (0.2 s): the figures themselves are never checked here.
set -u
. "$(dirname "$0")/cli_lib.sh"

ROOT=$(cd "$HERE/.." && pwd)
BUILD_DIR=$(cd "$(dirname "$CLI")" && pwd)
BIN=$BUILD_DIR/bench/compare

check "bench/compare/run.sh --build-only builds the comparison"
(cd "$ROOT" && BUILD=$BUILD_DIR bash bench/compare/run.sh --build-only) >"$TMP/out" 2>"$TMP/err" ||
	fail "bench/compare/run.sh --build-only failed"
[ -x "$BIN" ] || fail "no $BIN"

# compare_run OUTDIR ARGS...: a 0.2 s run of one round at 64 B; exit status in RC.
compare_run() {
	local out=$1
	shift
	mkdir -p "$out"
	run "$BIN" --out "$out" --duration 0.2 --rtt-duration 0.1 --reps 1 --sizes 64 --timeout 2 "$@"
}

# row OUTDIR SYSTEM: that system's line of compare.tsv (fields: system size
# msgs_per_s mb_per_s rtt_p50_ns rtt_p99_ns status cpus line_rtt_ns ...).
row() {
	awk -F'\t' -v s="$2" '$1 == s && $2 == 64' "$1/compare.tsv"
}

# status_is OUTDIR SYSTEM TEXT: its status field starts with TEXT.
status_is() {
	row "$1" "$2" | awk -F'\t' -v t="$3" 'index($7, t) == 1 { ok = 1 } END { exit !ok }' ||
		fail "$2: status is not \"$3...\": $(row "$1" "$2" | cut -f7)"
}

# placed OUTDIR SYSTEM: the row names two CPUs and a probe figure in ns.
placed() {
	row "$1" "$2" | awk -F'\t' '$8 ~ /^[0-9]+,[0-9]+$/ && $9 ~ /^[0-9]+(\.[0-9]+)?$/ { ok = 1 }
		END { exit !ok }' || fail "$2: no CPUs or probe figure: $(row "$1" "$2" | cut -f8,9)"
}

check "a stalled peer (SIGSTOP) is killed at the timeout, its row failed, the run exit 0"
COMPARE_FAULT=pipe:receiver:stall compare_run "$TMP/stall" --only spillway-live,pipe
[ "$RC" -eq 0 ] || fail "a failed peer made the run exit $RC"
status_is "$TMP/stall" pipe "failed"
row "$TMP/stall" pipe | grep -qF "timeout after 2 s" || fail "pipe: no timeout reason"
status_is "$TMP/stall" spillway-live "ok"
placed "$TMP/stall" pipe
placed "$TMP/stall" spillway-live
grep -qF "FAILED (the run goes on)" "$TMP/out" || fail "no progress line for the failed row"

check "Aeron that does not come up (stand-ins exiting 3): failed rows with what it said, exit 0"
mkdir -p "$TMP/fake-aeron"
for b in aeronmd rate_subscriber streaming_exclusive_publisher streaming_publisher cping cpong; do
	printf '#!/bin/sh\necho "stand-in %s: broken" >&2\nexit 3\n' "$b" >"$TMP/fake-aeron/$b"
	chmod +x "$TMP/fake-aeron/$b"
done
compare_run "$TMP/aeron" --only spillway-live,aeron-ipc --aeron "$TMP/fake-aeron"
[ "$RC" -eq 0 ] || fail "a failed Aeron made the run exit $RC"
status_is "$TMP/aeron" aeron-ipc "failed"
row "$TMP/aeron" aeron-ipc | grep -qF "exited with status 3" || fail "aeron-ipc: no exit status"
row "$TMP/aeron" aeron-ipc | grep -qF "stand-in aeronmd: broken" || fail "aeron-ipc: not what it said"
status_is "$TMP/aeron" spillway-live "ok"
# No ratio against a failed Aeron (NA), rather than a made-up one.
row "$TMP/aeron" spillway-live | awk -F'\t' '$10 == "NA" { ok = 1 } END { exit !ok }' ||
	fail "a ratio against an Aeron that did not run"

check "a crashed Spillway case is a failed row too, and the run exits 1"
COMPARE_FAULT=spillway-live:receiver:crash compare_run "$TMP/crash" --only spillway-live,pipe
[ "$RC" -eq 1 ] || fail "a failed Spillway case: exit $RC, wanted 1"
status_is "$TMP/crash" spillway-live "failed"
row "$TMP/crash" spillway-live | grep -qF "SIGSEGV" || fail "spillway-live: no signal in the reason"
status_is "$TMP/crash" pipe "ok"

check "the report marks failed rows failed, with the reason"
awk -F'\t' -f "$ROOT/bench/compare/report.awk" -v date=now -v model=cpu -v cores=2 -v threads=2 \
	-v kernel=k -v cmd="make bench-compare" "$TMP/crash/compare_env.txt" "$TMP/crash/compare.tsv" \
	>"$TMP/report.md" || fail "report.awk failed"
grep -E '^\| spillway-live \| 64 B .*\*\*failed .*SIGSEGV' "$TMP/report.md" >/dev/null ||
	fail "the report does not show spillway-live failed"
grep -E '^\| pipe \| 64 B .*\| ok \|$' "$TMP/report.md" >/dev/null || fail "the report lost the pipe row"

echo "ok: bench_compare.sh"
